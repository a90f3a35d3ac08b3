/*
 * Unit tests of the session engine (usbip_session) against a recording fake
 * backend. One test per rule of the protocol crib-sheet, sections 1-4; each
 * test is named after the rule it checks and compares concrete bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "fake_backend.h"
#include "test_harness.h"
#include "usbip_log.h"

/* ---- helpers ---- */

static fake_harness_t *setup(const usbip_session_limits_t *limits)
{
    fake_harness_t *h = calloc(1, sizeof *h);
    if (!h) {
        abort();
    }
    fake_harness_init(h, limits);
    return h;
}

static void teardown(fake_harness_t *h)
{
    CHECK(fake_harness_done(h));
    free(h);
}

static uint32_t be32_at(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint16_t be16_at(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

/* Append a CMD_SUBMIT for the fake device and remember its direction. */
static void cmd_submit(fake_harness_t *h, fake_buf_t *b, uint32_t seq, uint32_t dir, uint32_t ep,
                       uint32_t flags, int32_t len, int32_t npk, const uint8_t *setup)
{
    fake_note_dir(h, seq, dir == USBIP_DIR_IN);
    fake_buf_submit(b, seq, FAKE_DEVID, dir, ep, flags, len, npk, setup);
}

/* Feed one simple URB (OUT payload filled with 0xA5), whole. */
static size_t submit_simple(fake_harness_t *h, uint32_t seq, uint32_t dir, uint32_t ep,
                            int32_t len)
{
    fake_buf_t b = {0};
    cmd_submit(h, &b, seq, dir, ep, 0, len, 0, NULL);
    if (dir == USBIP_DIR_OUT && len > 0) {
        fake_buf_fill(&b, 0xA5, (size_t)len);
    }
    size_t fed = fake_feed_buf(h, &b, 0);
    fake_buf_free(&b);
    return fed;
}

static size_t drain_and_parse(fake_harness_t *h, fake_ret_t *rets, size_t max)
{
    fake_drain(h, 0, 0);
    return fake_parse_rets(h, rets, max);
}

static size_t pending_output(fake_harness_t *h)
{
    usbip_iovec_t iov[16];
    size_t n = usbip_session_output(h->s, iov, 16);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += iov[i].len;
    }
    return total;
}

static size_t read_space(fake_harness_t *h)
{
    uint8_t *p = NULL;
    return usbip_session_read_space(h->s, &p);
}

/* ======================= OP phase (ref §1) ======================= */

TEST(devlist_reply_layout_counts_records_and_exactly_bNumInterfaces_interfaces)
{
    fake_harness_t *h = setup(NULL);
    /* second device: three interfaces, listed */
    fake_backend_t fb2, fb3, fb4;
    fake_backend_init(&fb2);
    fake_backend_init(&fb3);
    fake_backend_init(&fb4);
    fb2.dev.record.bNumInterfaces = 3;
    fb2.dev.record.idVendor = 0xabcd;
    fb2.dev.interfaces[0] = (usbip_interface_record_t){0xff, 0x01, 0x02};
    fb2.dev.interfaces[1] = (usbip_interface_record_t){0x0a, 0x00, 0x00};
    fb2.dev.interfaces[2] = (usbip_interface_record_t){0x02, 0x02, 0x01};
    const uint8_t p2[] = {2}, p3[] = {3}, p4[] = {4};
    usbip_registry_entry_t *e3 = NULL, *e4 = NULL;
    REQUIRE(usbip_registry_add(&h->reg, &fb2.dev, 1, p2, 1, NULL) == USBIP_OK);
    REQUIRE(usbip_registry_add(&h->reg, &fb3.dev, 1, p3, 1, &e3) == USBIP_OK);
    REQUIRE(usbip_registry_add(&h->reg, &fb4.dev, 1, p4, 1, &e4) == USBIP_OK);
    /* imported by someone else, and unexported: neither is listed */
    REQUIRE(usbip_registry_claim(&h->reg, e3, (void *)&fb3) == USBIP_OK);
    usbip_registry_set_exported(e4, false);

    fake_buf_t b = {0};
    fake_buf_op(&b, USBIP_VERSION_0111, USBIP_OP_REQ_DEVLIST);
    CHECK_EQ_INT(fake_feed_buf(h, &b, 0), 8);
    fake_drain(h, 0, 0);

    const size_t rec1 = 0x0C, intf1 = rec1 + 0x138, rec2 = intf1 + 2 * 4, end = rec2 + 0x138 + 3 * 4;
    REQUIRE(h->out_len == end);
    const uint8_t *o = h->out;
    const uint8_t hdr[12] = {0x01, 0x11, 0x00, 0x05, 0, 0, 0, 0, 0, 0, 0, 2};
    CHECK(memcmp(o, hdr, 12) == 0);
    /* first record: the harness device at 3-1.4 */
    CHECK_STR((const char *)o + rec1, "/sys/devices/platform/usbip-esp32p4/usb3/3-1.4");
    CHECK(all_zero(o + rec1 + strlen("/sys/devices/platform/usbip-esp32p4/usb3/3-1.4"),
                   256 - strlen("/sys/devices/platform/usbip-esp32p4/usb3/3-1.4")));
    CHECK(memcmp(o + rec1 + 0x100, "3-1.4", 6) == 0);
    CHECK(all_zero(o + rec1 + 0x106, 32 - 6));
    const uint8_t tail1[] = {0, 0, 0, 3,  0, 0, 0, 1,  0, 0, 0, 3,  0x12, 0x34, 0x56, 0x78,
                             0x01, 0x02, 0xef, 0x02, 0x01, 0x01, 0x01, 0x02,
                             /* interfaces, each padded with a zero byte */
                             3, 1, 2, 0,  8, 6, 0x50, 0};
    CHECK(memcmp(o + rec1 + 0x120, tail1, sizeof tail1) == 0);
    /* second record: 1-2, devnum 1 on bus 1, three interfaces */
    CHECK(memcmp(o + rec2 + 0x100, "1-2", 4) == 0);
    CHECK_EQ_INT(be32_at(o + rec2 + 0x120), 1);
    CHECK_EQ_INT(be32_at(o + rec2 + 0x124), 1);
    CHECK_EQ_INT(be16_at(o + rec2 + 0x12c), 0xabcd);
    CHECK_EQ_INT(o[rec2 + 0x137], 3);
    const uint8_t intf2[] = {0xff, 1, 2, 0, 0x0a, 0, 0, 0, 2, 2, 1, 0};
    CHECK(memcmp(o + rec2 + 0x138, intf2, sizeof intf2) == 0);
    /* the busid of the hidden devices appears nowhere */
    for (size_t i = 0; i + 4 <= h->out_len; i++) {
        CHECK(memcmp(o + i, "1-3", 4) != 0 && memcmp(o + i, "1-4", 4) != 0);
    }
    CHECK_EQ_INT(h->fb.attach_calls, 0);
    fake_buf_free(&b);
    usbip_registry_release(&h->reg, e3, (void *)&fb3);
    teardown(h);
}

TEST(devlist_closes_after_the_reply_is_written)
{
    fake_harness_t *h = setup(NULL);
    fake_buf_t b = {0};
    fake_buf_op(&b, USBIP_VERSION_0111, USBIP_OP_REQ_DEVLIST);
    fake_feed_buf(h, &b, 3);
    CHECK(!usbip_session_wants_close(h->s)); /* reply not written yet */
    CHECK_EQ_INT(read_space(h), 0);          /* one request per connection */
    fake_drain(h, 100, 0);                   /* in partial writes */
    CHECK_EQ_INT(h->out_len, 12 + 0x138 + 8);
    CHECK(usbip_session_wants_close(h->s));
    fake_buf_free(&b);
    teardown(h);
}

TEST(devlist_with_no_device_reports_zero)
{
    fake_harness_t *h = setup(NULL);
    usbip_registry_set_exported(h->entry, false);
    fake_buf_t b = {0};
    fake_buf_op(&b, USBIP_VERSION_0111, USBIP_OP_REQ_DEVLIST);
    fake_feed_buf(h, &b, 0);
    fake_drain(h, 0, 0);
    const uint8_t want[12] = {0x01, 0x11, 0x00, 0x05, 0, 0, 0, 0, 0, 0, 0, 0};
    CHECK_EQ_INT(h->out_len, 12);
    CHECK(h->out_len == 12 && memcmp(h->out, want, 12) == 0);
    fake_buf_free(&b);
    teardown(h);
}

TEST(version_0100_accepted_and_echoed_in_the_reply)
{
    fake_harness_t *h = setup(NULL);
    fake_buf_t b = {0};
    fake_buf_op(&b, USBIP_VERSION_0100, USBIP_OP_REQ_DEVLIST);
    fake_feed_buf(h, &b, 0);
    fake_drain(h, 0, 0);
    REQUIRE(h->out_len >= 12);
    const uint8_t want[8] = {0x01, 0x00, 0x00, 0x05, 0, 0, 0, 0};
    CHECK(memcmp(h->out, want, 8) == 0);
    teardown(h);

    h = setup(NULL);
    fake_buf_reset(&b);
    fake_buf_import(&b, USBIP_VERSION_0100, FAKE_BUSID);
    fake_feed_buf(h, &b, 0);
    fake_drain(h, 0, 0);
    REQUIRE(h->out_len == USBIP_IMPORT_REPLY_SIZE);
    const uint8_t want_imp[8] = {0x01, 0x00, 0x00, 0x03, 0, 0, 0, 0};
    CHECK(memcmp(h->out, want_imp, 8) == 0);
    fake_buf_free(&b);
    teardown(h);
}

TEST(version_0111_accepted_and_echoed_in_the_reply)
{
    fake_harness_t *h = setup(NULL);
    fake_buf_t b = {0};
    fake_buf_import(&b, USBIP_VERSION_0111, FAKE_BUSID);
    fake_feed_buf(h, &b, 0);
    fake_drain(h, 0, 0);
    REQUIRE(h->out_len == USBIP_IMPORT_REPLY_SIZE);
    const uint8_t want[8] = {0x01, 0x11, 0x00, 0x03, 0, 0, 0, 0};
    CHECK(memcmp(h->out, want, 8) == 0);
    fake_buf_free(&b);
    teardown(h);
}

TEST(other_version_gets_no_reply_and_closes_logging_version_and_value)
{
    const uint16_t versions[] = {0x0200, 0x0110, 0x0000, 0x1101};
    const char *const logged[] = {"version 512", "version 272", "version 0", "version 4353"};
    for (size_t i = 0; i < 4; i++) {
        fake_harness_t *h = setup(NULL);
        fake_buf_t b = {0};
        fake_buf_op(&b, versions[i], USBIP_OP_REQ_DEVLIST);
        fake_feed_buf(h, &b, 0);
        CHECK(usbip_session_wants_close(h->s));
        CHECK_EQ_INT(pending_output(h), 0);
        CHECK_EQ_INT(read_space(h), 0);
        CHECK(fake_log_contains(h, logged[i]));
        fake_buf_free(&b);
        teardown(h);
    }
}

TEST(unknown_op_code_closes_without_reply)
{
    const uint16_t codes[] = {0x8002, 0x8004, 0x0005, 0x1234};
    for (size_t i = 0; i < 4; i++) {
        fake_harness_t *h = setup(NULL);
        fake_buf_t b = {0};
        fake_buf_op(&b, USBIP_VERSION_0111, codes[i]);
        fake_feed_buf(h, &b, 0);
        CHECK(usbip_session_wants_close(h->s));
        CHECK_EQ_INT(pending_output(h), 0);
        CHECK(fake_log_contains(h, "code"));
        fake_buf_free(&b);
        teardown(h);
    }
}

static size_t g_output_at_attach;

static void attach_hook_count_output(void *ctx)
{
    g_output_at_attach = pending_output(ctx);
}

TEST(import_success_is_0x140_bytes_busid_equal_devid_and_attach_before_reply)
{
    fake_harness_t *h = setup(NULL);
    h->fb.attach_hook = attach_hook_count_output;
    h->fb.attach_hook_ctx = h;
    g_output_at_attach = 12345;
    fake_buf_t b = {0};
    fake_buf_import(&b, USBIP_VERSION_0111, FAKE_BUSID);
    CHECK_EQ_INT(fake_feed_buf(h, &b, 0), 40);
    CHECK_EQ_INT(h->fb.attach_calls, 1);
    CHECK_EQ_INT(g_output_at_attach, 0); /* nothing was queued when attach ran */
    fake_drain(h, 0, 0);
    REQUIRE(h->out_len == 0x140);
    const uint8_t *o = h->out;
    const uint8_t hdr[8] = {0x01, 0x11, 0x00, 0x03, 0, 0, 0, 0};
    CHECK(memcmp(o, hdr, 8) == 0);
    CHECK(memcmp(o + 0x108, b.data + 8, 32) == 0); /* busid over all 32 bytes */
    CHECK_EQ_INT(be32_at(o + 0x128), 3);           /* busnum */
    CHECK_EQ_INT(be32_at(o + 0x12c), 1);           /* devnum */
    CHECK_EQ_INT((be32_at(o + 0x128) << 16) | be32_at(o + 0x12c), FAKE_DEVID);
    CHECK_EQ_INT(be32_at(o + 0x130), USBIP_SPEED_HIGH);
    CHECK_EQ_INT(be16_at(o + 0x134), 0x1234);
    CHECK_EQ_INT(be16_at(o + 0x136), 0x5678);
    CHECK_EQ_INT(o[0x13f], 2); /* bNumInterfaces, but no interface records follow */
    CHECK(!usbip_session_wants_close(h->s));
    CHECK(usbip_session_state(h->s) == USBIP_SESSION_URB);
    CHECK(h->entry->state == USBIP_DEV_IMPORTED && h->entry->owner == h->s);
    CHECK(usbip_session_device(h->s) == h->entry);
    CHECK_EQ_INT(read_space(h), 48); /* the next thing read is a URB header */
    fake_buf_free(&b);
    teardown(h);
    /* teardown released the device */
}

static void check_import_refusal(fake_harness_t *h, uint8_t status)
{
    fake_drain(h, 0, 0);
    const uint8_t want[8] = {0x01, 0x11, 0x00, 0x03, 0, 0, 0, status};
    CHECK_EQ_INT(h->out_len, 8);
    CHECK(h->out_len == 8 && memcmp(h->out, want, 8) == 0);
    CHECK(usbip_session_wants_close(h->s));
    CHECK(usbip_session_state(h->s) == USBIP_SESSION_OP);
}

TEST(import_unknown_busid_answers_st_nodev_in_8_bytes_then_closes)
{
    fake_harness_t *h = setup(NULL);
    fake_buf_t b = {0};
    fake_buf_import(&b, USBIP_VERSION_0111, "3-1.5");
    fake_feed_buf(h, &b, 0);
    CHECK(!usbip_session_wants_close(h->s)); /* the refusal must be written first */
    check_import_refusal(h, USBIP_ST_NODEV);
    CHECK_EQ_INT(h->fb.attach_calls, 0);
    CHECK(h->entry->state == USBIP_DEV_AVAILABLE);
    fake_buf_free(&b);
    teardown(h);
}

TEST(import_busid_without_nul_answers_st_nodev)
{
    fake_harness_t *h = setup(NULL);
    fake_buf_t b = {0};
    fake_buf_op(&b, USBIP_VERSION_0111, USBIP_OP_REQ_IMPORT);
    fake_buf_fill(&b, '1', 32);
    fake_feed_buf(h, &b, 0);
    check_import_refusal(h, USBIP_ST_NODEV);
    CHECK_EQ_INT(h->fb.attach_calls, 0);
    fake_buf_free(&b);
    teardown(h);
}

TEST(import_of_device_imported_by_another_session_answers_st_dev_busy)
{
    fake_harness_t *h = setup(NULL);
    int other;
    REQUIRE(usbip_registry_claim(&h->reg, h->entry, &other) == USBIP_OK);
    fake_buf_t b = {0};
    fake_buf_import(&b, USBIP_VERSION_0111, FAKE_BUSID);
    fake_feed_buf(h, &b, 0);
    check_import_refusal(h, USBIP_ST_DEV_BUSY);
    CHECK_EQ_INT(h->fb.attach_calls, 0);
    CHECK(h->entry->owner == &other);
    usbip_registry_release(&h->reg, h->entry, &other);
    fake_buf_free(&b);
    teardown(h);
}

TEST(import_denied_by_access_control_answers_st_na)
{
    fake_harness_t *h = setup(NULL);
    h->deny = true;
    fake_buf_t b = {0};
    fake_buf_import(&b, USBIP_VERSION_0111, FAKE_BUSID);
    fake_feed_buf(h, &b, 0);
    check_import_refusal(h, USBIP_ST_NA);
    CHECK_EQ_INT(h->fb.attach_calls, 0);
    CHECK(h->entry->state == USBIP_DEV_AVAILABLE);
    fake_buf_free(&b);
    teardown(h);
}

TEST(devlist_denied_by_access_control_answers_st_na)
{
    fake_harness_t *h = setup(NULL);
    h->deny = true;
    fake_buf_t b = {0};
    fake_buf_op(&b, USBIP_VERSION_0111, USBIP_OP_REQ_DEVLIST);
    fake_feed_buf(h, &b, 0);
    fake_drain(h, 0, 0);
    const uint8_t want[8] = {0x01, 0x11, 0x00, 0x05, 0, 0, 0, 1};
    CHECK(h->out_len == 8 && memcmp(h->out, want, 8) == 0);
    CHECK(usbip_session_wants_close(h->s));
    fake_buf_free(&b);
    teardown(h);
}

TEST(import_attach_failure_answers_st_na_and_releases_the_device)
{
    fake_harness_t *h = setup(NULL);
    h->fb.attach_result = USBIP_ERR_IO;
    fake_buf_t b = {0};
    fake_buf_import(&b, USBIP_VERSION_0111, FAKE_BUSID);
    fake_feed_buf(h, &b, 0);
    check_import_refusal(h, USBIP_ST_NA);
    CHECK_EQ_INT(h->fb.attach_calls, 1);
    CHECK_EQ_INT(h->fb.detach_calls, 0);
    CHECK(h->entry->state == USBIP_DEV_AVAILABLE);
    CHECK(h->entry->owner == NULL);
    CHECK(usbip_session_device(h->s) == NULL);
    fake_buf_free(&b);
    teardown(h);
}

TEST(import_split_across_reads_8_plus_32_works)
{
    fake_harness_t *h = setup(NULL);
    fake_buf_t b = {0};
    fake_buf_import(&b, USBIP_VERSION_0111, FAKE_BUSID);
    CHECK_EQ_INT(fake_feed(h, b.data, 8, 0), 8);
    CHECK_EQ_INT(read_space(h), 32);
    CHECK_EQ_INT(h->fb.attach_calls, 0);
    CHECK_EQ_INT(fake_feed(h, b.data + 8, 32, 0), 32);
    CHECK_EQ_INT(h->fb.attach_calls, 1);
    fake_drain(h, 0, 0);
    CHECK_EQ_INT(h->out_len, 0x140);
    teardown(h);

    /* and one byte at a time */
    h = setup(NULL);
    CHECK_EQ_INT(fake_feed(h, b.data, 40, 1), 40);
    fake_drain(h, 0, 0);
    CHECK_EQ_INT(h->out_len, 0x140);
    CHECK(usbip_session_state(h->s) == USBIP_SESSION_URB);
    fake_buf_free(&b);
    teardown(h);
}

/* ======================= URB phase (ref §2) ======================= */

TEST(out_reply_carries_no_data_and_actual_length_is_bytes_accepted)
{
    const size_t chunks[] = {0, 1, 13};
    for (size_t c = 0; c < 3; c++) {
        fake_harness_t *h = setup(NULL);
        REQUIRE(fake_import(h));
        fake_buf_t b = {0};
        cmd_submit(h, &b, 5, USBIP_DIR_OUT, FAKE_EP_BULK_OUT, 0, 100, 0, NULL);
        for (int i = 0; i < 100; i++) {
            uint8_t v = (uint8_t)(i * 7);
            fake_buf_bytes(&b, &v, 1);
        }
        CHECK_EQ_INT(fake_feed_buf(h, &b, chunks[c]), 148);
        REQUIRE(h->fb.nsubs == 1);
        fake_submission_t *sub = fake_submission(&h->fb, 0);
        CHECK_EQ_INT(sub->ep_address, 0x02);
        CHECK(!sub->dir_in);
        CHECK(sub->type == USBIP_XFER_BULK);
        CHECK_EQ_INT(sub->length, 100);
        CHECK(sub->out_copied == 100 && memcmp(sub->out_data, b.data + 48, 100) == 0);
        fake_complete(&h->fb, sub->urb, 0, 60, NULL);
        fake_drain(h, chunks[c] ? 5 : 0, 0);
        CHECK_EQ_INT(h->out_len - h->parsed, 48); /* header only */
        fake_ret_t r[2];
        REQUIRE(fake_parse_rets(h, r, 2) == 1);
        CHECK_EQ_INT(r[0].hdr.command, USBIP_RET_SUBMIT);
        CHECK_EQ_INT(r[0].hdr.seqnum, 5);
        CHECK_EQ_INT(r[0].hdr.u.ret_submit.status, 0);
        CHECK_EQ_INT(r[0].hdr.u.ret_submit.actual_length, 60);
        fake_buf_free(&b);
        teardown(h);
    }
}

TEST(in_reply_carries_exactly_actual_length_bytes)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    CHECK_EQ_INT(submit_simple(h, 9, USBIP_DIR_IN, FAKE_EP_BULK_IN, 512), 48);
    REQUIRE(h->fb.nsubs == 1);
    CHECK_EQ_INT(fake_submission(&h->fb, 0)->ep_address, 0x81);
    const uint8_t data[13] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13};
    fake_complete(&h->fb, fake_pending_urb(&h->fb, 0), 0, 13, data);
    fake_drain(h, 0, 0);
    CHECK_EQ_INT(h->out_len - h->parsed, 48 + 13);
    fake_ret_t r[2];
    REQUIRE(fake_parse_rets(h, r, 2) == 1);
    CHECK_EQ_INT(r[0].hdr.u.ret_submit.actual_length, 13);
    CHECK(r[0].data_len == 13 && memcmp(r[0].data, data, 13) == 0);
    teardown(h);
}

TEST(in_actual_length_above_length_is_clamped)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    submit_simple(h, 9, USBIP_DIR_IN, FAKE_EP_BULK_IN, 16);
    uint8_t data[40];
    memset(data, 0x5a, sizeof data);
    fake_complete(&h->fb, fake_pending_urb(&h->fb, 0), 0, 40, data);
    fake_drain(h, 0, 0);
    CHECK_EQ_INT(h->out_len - h->parsed, 48 + 16);
    fake_ret_t r[2];
    REQUIRE(fake_parse_rets(h, r, 2) == 1);
    CHECK_EQ_INT(r[0].hdr.u.ret_submit.actual_length, 16);
    CHECK_EQ_INT(r[0].hdr.u.ret_submit.status, 0);
    teardown(h);
}

TEST(short_not_ok_short_in_is_eremoteio_with_the_data_still_sent)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    fake_buf_t b = {0};
    cmd_submit(h, &b, 1, USBIP_DIR_IN, FAKE_EP_BULK_IN, USBIP_URB_SHORT_NOT_OK, 64, 0, NULL);
    cmd_submit(h, &b, 2, USBIP_DIR_IN, FAKE_EP_BULK_IN, 0, 64, 0, NULL);
    cmd_submit(h, &b, 3, USBIP_DIR_IN, FAKE_EP_BULK_IN, USBIP_URB_SHORT_NOT_OK, 64, 0, NULL);
    fake_feed_buf(h, &b, 0);
    REQUIRE(h->fb.nsubs == 3);
    uint8_t data[64];
    memset(data, 0x33, sizeof data);
    fake_complete(&h->fb, fake_submission(&h->fb, 0)->urb, 0, 10, data);
    fake_complete(&h->fb, fake_submission(&h->fb, 1)->urb, 0, 10, data);
    fake_complete(&h->fb, fake_submission(&h->fb, 2)->urb, 0, 64, data);
    fake_ret_t r[4];
    REQUIRE(drain_and_parse(h, r, 4) == 3);
    CHECK_EQ_INT(r[0].hdr.u.ret_submit.status, USBIP_EREMOTEIO);
    CHECK_EQ_INT(r[0].hdr.u.ret_submit.actual_length, 10);
    CHECK(r[0].data_len == 10 && r[0].data[0] == 0x33 && r[0].data[9] == 0x33);
    CHECK_EQ_INT(r[1].hdr.u.ret_submit.status, 0); /* no flag: short is fine */
    CHECK_EQ_INT(r[1].data_len, 10);
    CHECK_EQ_INT(r[2].hdr.u.ret_submit.status, 0); /* full length with the flag */
    CHECK_EQ_INT(r[2].data_len, 64);
    fake_buf_free(&b);
    teardown(h);
}

TEST(junk_number_of_packets_is_ignored_on_bulk_interrupt_and_control)
{
    const int32_t junk[] = {-1, 5, 0xffff};
    const uint32_t eps[] = {FAKE_EP_BULK_IN, FAKE_EP_INTR_IN, 0};
    const uint8_t get_desc[8] = {0x80, 0x06, 0x00, 0x01, 0x00, 0x00, 0x12, 0x00};
    for (size_t j = 0; j < 3; j++) {
        fake_harness_t *h = setup(NULL);
        REQUIRE(fake_import(h));
        fake_buf_t b = {0};
        for (size_t e = 0; e < 3; e++) {
            cmd_submit(h, &b, (uint32_t)(10 + e), USBIP_DIR_IN, eps[e], 0, 18, junk[j],
                       eps[e] == 0 ? get_desc : NULL);
        }
        /* an OUT URB right behind: it must be read as the next header */
        cmd_submit(h, &b, 20, USBIP_DIR_OUT, FAKE_EP_BULK_OUT, 0, 4, junk[j], NULL);
        fake_buf_bytes(&b, "\x01\x02\x03\x04", 4);
        CHECK_EQ_INT(fake_feed_buf(h, &b, 0), b.len);
        CHECK(!usbip_session_wants_close(h->s));
        REQUIRE(h->fb.nsubs == 4);
        for (size_t e = 0; e < 4; e++) {
            CHECK_EQ_INT(fake_submission(&h->fb, e)->num_iso_packets, 0);
        }
        CHECK(fake_submission(&h->fb, 2)->type == USBIP_XFER_CONTROL);
        CHECK(memcmp(fake_submission(&h->fb, 3)->out_data, "\x01\x02\x03\x04", 4) == 0);
        for (size_t e = 0; e < 4; e++) {
            fake_complete(&h->fb, fake_submission(&h->fb, e)->urb, 0, 0, NULL);
        }
        fake_ret_t r[5];
        REQUIRE(drain_and_parse(h, r, 5) == 4);
        for (size_t e = 0; e < 4; e++) {
            CHECK_EQ_INT(r[e].hdr.u.ret_submit.number_of_packets, 0);
            CHECK_EQ_INT(r[e].hdr.u.ret_submit.error_count, 0);
            CHECK_EQ_INT(r[e].hdr.u.ret_submit.start_frame, 0);
        }
        CHECK_EQ_INT(h->parsed, h->out_len); /* no descriptors followed */
        fake_buf_free(&b);
        teardown(h);
    }
}

TEST(ret_devid_direction_and_ep_are_zero)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    submit_simple(h, 1, USBIP_DIR_IN, FAKE_EP_BULK_IN, 8);
    submit_simple(h, 2, USBIP_DIR_OUT, FAKE_EP_BULK_OUT, 8);
    fake_buf_t b = {0};
    fake_buf_unlink(&b, 3, FAKE_DEVID, 1);
    fake_feed_buf(h, &b, 0);
    fake_complete(&h->fb, fake_submission(&h->fb, 1)->urb, 0, 8, NULL);
    fake_complete(&h->fb, fake_submission(&h->fb, 0)->urb, USBIP_ECONNRESET, 0, NULL);
    fake_ret_t r[4];
    REQUIRE(drain_and_parse(h, r, 4) == 2);
    for (size_t i = 0; i < 2; i++) {
        CHECK(all_zero(r[i].raw + 0x08, 12)); /* devid, direction, ep */
        CHECK(all_zero(r[i].raw + 0x28, 8));  /* no setup in a RET */
    }
    CHECK_EQ_INT(r[0].hdr.command, USBIP_RET_UNLINK);
    CHECK(all_zero(r[0].raw + 0x18, 48 - 0x18));
    CHECK_EQ_INT(r[1].hdr.command, USBIP_RET_SUBMIT);
    fake_buf_free(&b);
    teardown(h);
}

TEST(seqnum_is_echoed_exactly)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    const uint32_t seqs[] = {0xdeadbeefu, 0x80000001u, 0u, 7u};
    for (size_t i = 0; i < 4; i++) {
        submit_simple(h, seqs[i], USBIP_DIR_OUT, FAKE_EP_BULK_OUT, 1);
    }
    for (size_t i = 0; i < 4; i++) {
        fake_complete(&h->fb, fake_submission(&h->fb, i)->urb, 0, 1, NULL);
    }
    fake_ret_t r[5];
    REQUIRE(drain_and_parse(h, r, 5) == 4);
    for (size_t i = 0; i < 4; i++) {
        CHECK_EQ_INT(r[i].hdr.seqnum, seqs[i]);
        CHECK_EQ_INT(be32_at(r[i].raw + 4), seqs[i]);
    }
    teardown(h);
}

TEST(transfer_flags_masked_like_the_linux_stub_never_rejected)
{
    struct {
        uint32_t dir, ep, flags, want;
    } cases[] = {
        /* ZERO_PACKET kept on bulk OUT; SHORT_NOT_OK, ISO_ASAP, DMA_MAP_SG dropped */
        {USBIP_DIR_OUT, FAKE_EP_BULK_OUT, 0x40u | 0x1u | 0x2u | 0x40000u, 0x40u},
        /* bulk IN: SHORT_NOT_OK and DIR_IN kept, ZERO_PACKET dropped */
        {USBIP_DIR_IN, FAKE_EP_BULK_IN, 0x40u | 0x1u | 0x200u | 0x800000u, 0x201u},
        /* interrupt IN: SHORT_NOT_OK kept, ZERO_PACKET dropped */
        {USBIP_DIR_IN, FAKE_EP_INTR_IN, 0x1u | 0x40u, 0x1u},
        /* control OUT: ZERO_PACKET and SHORT_NOT_OK dropped, NO_INTERRUPT kept */
        {USBIP_DIR_OUT, 0, 0x40u | 0x1u | 0x80u, 0x80u},
        /* every unknown bit at once: only the four always-kept bits survive */
        {USBIP_DIR_OUT, FAKE_EP_BULK_OUT, 0xffffffffu, 0x4u | 0x40u | 0x80u | 0x100u | 0x200u},
    };
    const size_t n = sizeof cases / sizeof cases[0];
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    fake_buf_t b = {0};
    const uint8_t get_status[8] = {0x00, 0x00, 0, 0, 0, 0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        cmd_submit(h, &b, (uint32_t)i + 1, cases[i].dir, cases[i].ep, cases[i].flags, 0, 0,
                   cases[i].ep == 0 ? get_status : NULL);
    }
    CHECK_EQ_INT(fake_feed_buf(h, &b, 0), b.len);
    REQUIRE(h->fb.nsubs == n);
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ_INT(fake_submission(&h->fb, i)->flags, cases[i].want);
        fake_complete(&h->fb, fake_submission(&h->fb, i)->urb, 0, 0, NULL);
    }
    fake_ret_t r[8];
    REQUIRE(drain_and_parse(h, r, 8) == n);
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ_INT(r[i].hdr.u.ret_submit.status, 0);
    }
    fake_buf_free(&b);
    teardown(h);
}

TEST(iso_in_data_packed_back_to_back_descriptors_echoed_sum_and_error_count)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    fake_buf_t b = {0};
    const usbip_iso_packet_t req[3] = {{0, 192, 0, 0}, {192, 192, 0, 0}, {384, 192, 0, 0}};
    cmd_submit(h, &b, 40, USBIP_DIR_IN, FAKE_EP_ISO_IN, USBIP_URB_ISO_ASAP, 576, 3, NULL);
    fake_buf_iso(&b, req, 3);
    CHECK_EQ_INT(fake_feed_buf(h, &b, 5), 48 + 48);
    REQUIRE(h->fb.nsubs == 1);
    fake_submission_t *sub = fake_submission(&h->fb, 0);
    CHECK(sub->type == USBIP_XFER_ISOCHRONOUS);
    CHECK_EQ_INT(sub->num_iso_packets, 3);
    CHECK_EQ_INT(sub->flags, USBIP_URB_ISO_ASAP);
    CHECK_EQ_INT(sub->iso0.offset, 0);
    CHECK_EQ_INT(sub->iso0.length, 192);
    CHECK_EQ_INT(sub->urb->iso[2].offset, 384);
    const uint32_t actual[3] = {10, 0, 250}; /* the last one is clamped to 192 */
    const int32_t status[3] = {0, USBIP_EXDEV, 0};
    fake_complete_iso(&h->fb, sub->urb, 0, actual, status);
    fake_ret_t r[2];
    REQUIRE(drain_and_parse(h, r, 2) == 1);
    CHECK_EQ_INT(r[0].hdr.u.ret_submit.status, 0);
    CHECK_EQ_INT(r[0].hdr.u.ret_submit.actual_length, 10 + 192);
    CHECK_EQ_INT(r[0].hdr.u.ret_submit.number_of_packets, 3);
    CHECK_EQ_INT(r[0].hdr.u.ret_submit.error_count, 1);
    CHECK_EQ_INT(r[0].hdr.u.ret_submit.start_frame, 77);
    REQUIRE(r[0].data_len == 202);
    for (size_t i = 0; i < 10; i++) {
        CHECK_EQ_INT(r[0].data[i], 1);
    }
    for (size_t i = 10; i < 202; i++) {
        CHECK_EQ_INT(r[0].data[i], 3);
    }
    REQUIRE(r[0].iso_count == 3);
    const uint8_t want_desc[48] = {
        0, 0, 0, 0,    0, 0, 0, 192, 0, 0, 0, 10,  0, 0, 0, 0,
        0, 0, 0, 192,  0, 0, 0, 192, 0, 0, 0, 0,   0xff, 0xff, 0xff, 0xee, /* -18 */
        0, 0, 1, 0x80, 0, 0, 0, 192, 0, 0, 0, 192, 0, 0, 0, 0,
    };
    CHECK(memcmp(r[0].iso_raw, want_desc, 48) == 0);
    CHECK_EQ_INT(h->parsed, h->out_len);
    fake_buf_free(&b);
    teardown(h);
}

TEST(iso_out_actual_length_is_the_sum_and_no_data_is_sent)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    fake_buf_t b = {0};
    const usbip_iso_packet_t req[2] = {{0, 100, 0, 0}, {100, 100, 0, 0}};
    cmd_submit(h, &b, 41, USBIP_DIR_OUT, FAKE_EP_ISO_OUT, 0, 200, 2, NULL);
    fake_buf_fill(&b, 0x11, 100);
    fake_buf_fill(&b, 0x22, 100);
    fake_buf_iso(&b, req, 2);
    CHECK_EQ_INT(fake_feed_buf(h, &b, 17), 48 + 200 + 32);
    REQUIRE(h->fb.nsubs == 1);
    fake_submission_t *sub = fake_submission(&h->fb, 0);
    CHECK(sub->out_data[0] == 0x11 && sub->out_data[199] == 0x22);
    const uint32_t actual[2] = {100, 50};
    fake_complete_iso(&h->fb, sub->urb, 0, actual, NULL);
    fake_ret_t r[2];
    REQUIRE(drain_and_parse(h, r, 2) == 1);
    CHECK_EQ_INT(r[0].hdr.u.ret_submit.actual_length, 150);
    CHECK_EQ_INT(r[0].hdr.u.ret_submit.number_of_packets, 2);
    CHECK_EQ_INT(r[0].data_len, 0);
    CHECK_EQ_INT(h->out_len - USBIP_IMPORT_REPLY_SIZE, 48 + 32);
    REQUIRE(r[0].iso_count == 2);
    CHECK_EQ_INT(be32_at(r[0].iso_raw + 16), 100);     /* offset echoed */
    CHECK_EQ_INT(be32_at(r[0].iso_raw + 16 + 8), 50);  /* actual */
    fake_buf_free(&b);
    teardown(h);
}

TEST(iso_overlapping_packets_never_reply_beyond_the_buffer)
{
    /* Three packets all at offset 0 of a 100-byte buffer: a backend filling
     * each one must not make the reply claim (or pack) 300 bytes. */
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    fake_buf_t b = {0};
    const usbip_iso_packet_t req[3] = {{0, 100, 0, 0}, {0, 100, 0, 0}, {0, 100, 0, 0}};
    cmd_submit(h, &b, 42, USBIP_DIR_IN, FAKE_EP_ISO_IN, 0, 100, 3, NULL);
    fake_buf_iso(&b, req, 3);
    fake_feed_buf(h, &b, 0);
    REQUIRE(h->fb.nsubs == 1);
    const uint32_t actual[3] = {100, 100, 100};
    fake_complete_iso(&h->fb, fake_submission(&h->fb, 0)->urb, 0, actual, NULL);
    fake_ret_t r[2];
    REQUIRE(drain_and_parse(h, r, 2) == 1);
    const int32_t total = r[0].hdr.u.ret_submit.actual_length;
    CHECK(total >= 0 && total <= 100);
    uint32_t sum = 0;
    for (uint32_t i = 0; i < r[0].iso_count; i++) {
        sum += be32_at(r[0].iso_raw + 16 * i + 8);
    }
    CHECK_EQ_INT(sum, total); /* vhci: descriptor sum must equal actual_length */
    fake_buf_free(&b);
    teardown(h);
}

TEST(iso_urb_without_packets_reports_actual_length_as_the_empty_sum)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    submit_simple(h, 60, USBIP_DIR_IN, FAKE_EP_ISO_IN, 64); /* number_of_packets 0 */
    REQUIRE(h->fb.nsubs == 1);
    CHECK_EQ_INT(fake_submission(&h->fb, 0)->num_iso_packets, 0);
    uint8_t data[64] = {0};
    fake_complete(&h->fb, fake_submission(&h->fb, 0)->urb, 0, 40, data); /* a confused backend */
    fake_ret_t r[2];
    REQUIRE(drain_and_parse(h, r, 2) == 1);
    CHECK_EQ_INT(r[0].hdr.u.ret_submit.actual_length, 0);
    CHECK_EQ_INT(r[0].hdr.u.ret_submit.number_of_packets, 0);
    CHECK_EQ_INT(r[0].data_len, 0);
    CHECK_EQ_INT(h->out_len - h->parsed, 0);
    teardown(h);
}

TEST(iso_packet_outside_the_buffer_closes_naming_the_field)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    fake_buf_t b = {0};
    const usbip_iso_packet_t req[2] = {{0, 100, 0, 0}, {100, 100, 0, 0}};
    cmd_submit(h, &b, 43, USBIP_DIR_IN, FAKE_EP_ISO_IN, 0, 150, 2, NULL);
    fake_buf_iso(&b, req, 2);
    fake_feed_buf(h, &b, 0);
    CHECK(usbip_session_wants_close(h->s));
    CHECK(h->last_input_err != USBIP_OK);
    CHECK_EQ_INT(h->fb.nsubs, 0);
    CHECK(fake_log_contains(h, "iso_packet.offset+length 200"));
    CHECK_EQ_INT(h->entry->stats.errors, 1);
    fake_buf_free(&b);
    teardown(h);
}

TEST(iso_packets_over_the_limit_close_naming_number_of_packets)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    fake_buf_t b = {0};
    cmd_submit(h, &b, 44, USBIP_DIR_IN, FAKE_EP_ISO_IN, 0, 1025 * 8, 1025, NULL);
    fake_feed_buf(h, &b, 0);
    CHECK(usbip_session_wants_close(h->s));
    CHECK(fake_log_contains(h, "number_of_packets 1025"));
    CHECK_EQ_INT(h->fb.alloc_calls, 0);
    teardown(h);

    /* 1024 is still fine, -1 on an iso endpoint is not */
    h = setup(NULL);
    REQUIRE(fake_import(h));
    fake_buf_reset(&b);
    cmd_submit(h, &b, 45, USBIP_DIR_IN, FAKE_EP_ISO_IN, 0, 1024, 1024, NULL);
    for (uint32_t i = 0; i < 1024; i++) {
        const usbip_iso_packet_t p = {i, 1, 0, 0};
        fake_buf_iso(&b, &p, 1);
    }
    cmd_submit(h, &b, 46, USBIP_DIR_IN, FAKE_EP_ISO_IN, 0, 0, -1, NULL);
    fake_feed_buf(h, &b, 0);
    CHECK_EQ_INT(h->fb.nsubs, 1);
    CHECK(usbip_session_wants_close(h->s));
    CHECK(fake_log_contains(h, "number_of_packets -1"));
    fake_buf_free(&b);
    teardown(h);
}

TEST(special_requests_reach_the_backend_once_with_their_kind_and_true_status)
{
    struct {
        uint8_t setup[8];
        usbip_control_kind_t kind;
        int32_t status;
    } cases[] = {
        {{0x00, 0x09, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00}, USBIP_CONTROL_SET_CONFIGURATION, 0},
        {{0x01, 0x0b, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00}, USBIP_CONTROL_SET_INTERFACE, 0},
        {{0x02, 0x01, 0x00, 0x00, 0x81, 0x00, 0x00, 0x00}, USBIP_CONTROL_CLEAR_HALT, 0},
        {{0x23, 0x03, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00}, USBIP_CONTROL_RESET_DEVICE, 0},
        /* a failing one: the backend's status goes back as is */
        {{0x01, 0x0b, 0x07, 0x00, 0x01, 0x00, 0x00, 0x00}, USBIP_CONTROL_SET_INTERFACE, USBIP_EPIPE},
        {{0x00, 0x09, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00}, USBIP_CONTROL_SET_CONFIGURATION, USBIP_EPROTO},
        /* plain requests stay plain */
        {{0x80, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00}, USBIP_CONTROL_PLAIN, 0},
        {{0x02, 0x01, 0x01, 0x00, 0x81, 0x00, 0x00, 0x00}, USBIP_CONTROL_PLAIN, 0},
    };
    const size_t n = sizeof cases / sizeof cases[0];
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    for (size_t i = 0; i < n; i++) {
        fake_buf_t b = {0};
        cmd_submit(h, &b, (uint32_t)(100 + i), USBIP_DIR_OUT, 0, 0, 0, 0, cases[i].setup);
        fake_feed_buf(h, &b, 0);
        fake_buf_free(&b);
        REQUIRE(h->fb.nsubs == i + 1);
        fake_submission_t *sub = fake_submission(&h->fb, i);
        CHECK_EQ_INT(sub->control_kind, cases[i].kind);
        CHECK(sub->type == USBIP_XFER_CONTROL);
        CHECK(memcmp(sub->setup, cases[i].setup, 8) == 0);
        fake_complete(&h->fb, sub->urb, cases[i].status, 0, NULL);
        fake_ret_t r[2];
        REQUIRE(drain_and_parse(h, r, 2) == 1); /* answered exactly once */
        CHECK_EQ_INT(r[0].hdr.seqnum, 100 + i);
        CHECK_EQ_INT(r[0].hdr.u.ret_submit.status, cases[i].status);
        CHECK_EQ_INT(r[0].hdr.u.ret_submit.actual_length, 0);
    }
    CHECK_EQ_INT(h->fb.submit_calls, n);
    CHECK_EQ_INT(h->fb.control_kind_count[USBIP_CONTROL_SET_CONFIGURATION], 2);
    CHECK_EQ_INT(h->fb.control_kind_count[USBIP_CONTROL_SET_INTERFACE], 2);
    CHECK_EQ_INT(h->fb.control_kind_count[USBIP_CONTROL_CLEAR_HALT], 1);
    CHECK_EQ_INT(h->fb.control_kind_count[USBIP_CONTROL_RESET_DEVICE], 1);
    CHECK_EQ_INT(h->fb.control_kind_count[USBIP_CONTROL_PLAIN], 2);
    teardown(h);
}

TEST(set_address_is_answered_locally_with_status_0_never_reaching_the_backend)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    fake_buf_t b = {0};
    const uint8_t set_address[8] = {0x00, 0x05, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00};
    cmd_submit(h, &b, 200, USBIP_DIR_OUT, 0, 0, 0, 0, set_address);
    fake_feed_buf(h, &b, 0);
    CHECK_EQ_INT(h->fb.submit_calls, 0);
    CHECK_EQ_INT(h->fb.alloc_calls, 0);
    fake_ret_t r[2];
    REQUIRE(drain_and_parse(h, r, 2) == 1);
    CHECK_EQ_INT(r[0].hdr.seqnum, 200);
    CHECK_EQ_INT(r[0].hdr.u.ret_submit.status, 0);
    CHECK_EQ_INT(r[0].hdr.u.ret_submit.actual_length, 0);
    CHECK_EQ_INT(usbip_session_urbs_in_flight(h->s), 0);
    fake_buf_free(&b);
    teardown(h);
}

TEST(unknown_endpoint_consumes_out_payload_replies_epipe_and_stays_in_sync)
{
    const size_t chunks[] = {0, 1, 9};
    for (size_t c = 0; c < 3; c++) {
        fake_harness_t *h = setup(NULL);
        REQUIRE(fake_import(h));
        fake_buf_t b = {0};
        cmd_submit(h, &b, 300, USBIP_DIR_OUT, FAKE_EP_MISSING, 0, 3000, 0, NULL);
        fake_buf_fill(&b, 0xEE, 3000); /* bigger than the session's discard chunk */
        cmd_submit(h, &b, 301, USBIP_DIR_IN, FAKE_EP_BULK_OUT, 0, 8, 0, NULL); /* OUT-only ep */
        cmd_submit(h, &b, 302, USBIP_DIR_OUT, FAKE_EP_BULK_OUT, 0, 2, 0, NULL);
        fake_buf_bytes(&b, "\x5a\x5b", 2);
        CHECK_EQ_INT(fake_feed_buf(h, &b, chunks[c]), b.len);
        CHECK(!usbip_session_wants_close(h->s));
        REQUIRE(h->fb.nsubs == 1); /* only the valid one */
        CHECK(memcmp(fake_submission(&h->fb, 0)->out_data, "\x5a\x5b", 2) == 0);
        fake_complete(&h->fb, fake_submission(&h->fb, 0)->urb, 0, 2, NULL);
        fake_ret_t r[4];
        REQUIRE(drain_and_parse(h, r, 4) == 3);
        CHECK_EQ_INT(r[0].hdr.seqnum, 300);
        CHECK_EQ_INT(r[0].hdr.u.ret_submit.status, USBIP_EPIPE);
        CHECK_EQ_INT(r[0].hdr.u.ret_submit.actual_length, 0);
        CHECK_EQ_INT(r[1].hdr.seqnum, 301);
        CHECK_EQ_INT(r[1].hdr.u.ret_submit.status, USBIP_EPIPE);
        CHECK_EQ_INT(r[2].hdr.seqnum, 302);
        CHECK_EQ_INT(r[2].hdr.u.ret_submit.status, 0);
        CHECK_EQ_INT(r[2].hdr.u.ret_submit.actual_length, 2);
        fake_buf_free(&b);
        teardown(h);
    }
}

TEST(iso_urb_to_a_missing_endpoint_consumes_its_descriptors_and_echoes_them)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    fake_buf_t b = {0};
    const usbip_iso_packet_t req[4] = {
        {0, 100, 0, 0}, {100, 100, 0, 0}, {200, 100, 0, 0}, {300, 100, 0, 0}};
    /* The client believes ep 9 IN is iso (e.g. an alt setting we do not have). */
    cmd_submit(h, &b, 70, USBIP_DIR_IN, FAKE_EP_MISSING, USBIP_URB_ISO_ASAP, 400, 4, NULL);
    fake_buf_iso(&b, req, 4);
    /* A non-iso URB to the same missing endpoint with junk -1: no descriptors. */
    cmd_submit(h, &b, 71, USBIP_DIR_IN, FAKE_EP_MISSING, 0, 8, -1, NULL);
    cmd_submit(h, &b, 72, USBIP_DIR_OUT, FAKE_EP_BULK_OUT, 0, 2, 0, NULL);
    fake_buf_bytes(&b, "\x01\x02", 2);
    CHECK_EQ_INT(fake_feed_buf(h, &b, 7), b.len);
    CHECK(!usbip_session_wants_close(h->s));
    REQUIRE(h->fb.nsubs == 1);
    fake_complete(&h->fb, fake_submission(&h->fb, 0)->urb, 0, 2, NULL);
    fake_ret_t r[4];
    REQUIRE(drain_and_parse(h, r, 4) == 3);
    CHECK_EQ_INT(r[0].hdr.seqnum, 70);
    CHECK_EQ_INT(r[0].hdr.u.ret_submit.status, USBIP_EPIPE);
    CHECK_EQ_INT(r[0].hdr.u.ret_submit.number_of_packets, 4);
    CHECK_EQ_INT(r[0].hdr.u.ret_submit.actual_length, 0);
    REQUIRE(r[0].iso_count == 4);
    usbip_iso_packet_t echoed[4];
    memcpy(echoed, r[0].iso_raw, sizeof echoed);
    usbip_iso_packets_from_wire(echoed, 4);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(echoed[i].offset, req[i].offset);
        CHECK_EQ_INT(echoed[i].length, req[i].length);
        CHECK_EQ_INT(echoed[i].actual_length, 0);
        CHECK_EQ_INT(echoed[i].status, USBIP_EPIPE);
    }
    CHECK_EQ_INT(r[1].hdr.seqnum, 71);
    CHECK_EQ_INT(r[1].hdr.u.ret_submit.status, USBIP_EPIPE);
    CHECK_EQ_INT(r[1].hdr.u.ret_submit.number_of_packets, 0);
    CHECK_EQ_INT(r[2].hdr.seqnum, 72);
    CHECK_EQ_INT(r[2].hdr.u.ret_submit.status, 0);
    fake_buf_free(&b);
    teardown(h);
}

static void check_fatal_header(void (*build)(fake_harness_t *h, fake_buf_t *b),
                               const char *logged, const usbip_session_limits_t *limits)
{
    fake_harness_t *h = setup(limits);
    REQUIRE(fake_import(h));
    fake_buf_t b = {0};
    build(h, &b);
    fake_buf_fill(&b, 0, 48); /* whatever follows is never read */
    size_t fed = fake_feed_buf(h, &b, 0);
    CHECK_EQ_INT(fed, 48);
    CHECK(h->last_input_err == USBIP_ERR_PROTOCOL);
    CHECK(usbip_session_wants_close(h->s));
    CHECK_EQ_INT(read_space(h), 0);
    CHECK_EQ_INT(h->fb.submit_calls, 0);
    CHECK_EQ_INT(pending_output(h), 0);
    if (!fake_log_contains(h, logged)) {
        fprintf(stderr, "  log lacks \"%s\":\n%s", logged, h->log);
        CHECK(false);
    }
    fake_buf_free(&b);
    teardown(h);
}

static void build_bad_devid(fake_harness_t *h, fake_buf_t *b)
{
    (void)h;
    fake_buf_submit(b, 1, 0x00030002u, USBIP_DIR_IN, 1, 0, 8, 0, NULL);
}
static void build_bad_devid_unlink(fake_harness_t *h, fake_buf_t *b)
{
    (void)h;
    fake_buf_unlink(b, 1, 0x00010003u, 5);
}
static void build_ep16(fake_harness_t *h, fake_buf_t *b)
{
    (void)h;
    fake_buf_submit(b, 1, FAKE_DEVID, USBIP_DIR_IN, 16, 0, 8, 0, NULL);
}
static void build_dir2(fake_harness_t *h, fake_buf_t *b)
{
    (void)h;
    fake_buf_submit(b, 1, FAKE_DEVID, 2, 1, 0, 8, 0, NULL);
}
static void build_len_over(fake_harness_t *h, fake_buf_t *b)
{
    (void)h;
    fake_buf_submit(b, 1, FAKE_DEVID, USBIP_DIR_IN, 1, 0, 4097, 0, NULL);
}
static void build_len_negative(fake_harness_t *h, fake_buf_t *b)
{
    (void)h;
    fake_buf_submit(b, 1, FAKE_DEVID, USBIP_DIR_OUT, 2, 0, -1, 0, NULL);
}
static void build_cmd7(fake_harness_t *h, fake_buf_t *b)
{
    (void)h;
    uint8_t raw[48] = {0, 0, 0, 7, 0, 0, 0, 1, 0, 3, 0, 1};
    fake_buf_bytes(b, raw, 48);
}
static void build_ret_submit(fake_harness_t *h, fake_buf_t *b)
{
    (void)h;
    uint8_t raw[48] = {0, 0, 0, 3, 0, 0, 0, 1, 0, 3, 0, 1};
    fake_buf_bytes(b, raw, 48);
}
static void build_ret_unlink(fake_harness_t *h, fake_buf_t *b)
{
    (void)h;
    uint8_t raw[48] = {0, 0, 0, 4, 0, 0, 0, 1, 0, 3, 0, 1};
    fake_buf_bytes(b, raw, 48);
}

TEST(devid_mismatch_closes_naming_devid)
{
    check_fatal_header(build_bad_devid, "devid 196610", NULL); /* 0x00030002 */
    check_fatal_header(build_bad_devid_unlink, "devid 65539", NULL); /* unlinks too */
}

TEST(ep_16_closes_naming_ep) { check_fatal_header(build_ep16, "ep 16", NULL); }

TEST(direction_2_closes_naming_direction) { check_fatal_header(build_dir2, "direction 2", NULL); }

TEST(transfer_buffer_length_beyond_max_urb_size_or_negative_closes_naming_the_field)
{
    usbip_session_limits_t lim;
    usbip_session_limits_default(&lim);
    lim.max_urb_size = 4096;
    check_fatal_header(build_len_over, "transfer_buffer_length 4097", &lim);
    check_fatal_header(build_len_negative, "transfer_buffer_length -1", NULL);
}

TEST(unknown_command_and_ret_commands_from_the_client_close)
{
    check_fatal_header(build_cmd7, "command 7", NULL);
    check_fatal_header(build_ret_submit, "command 3", NULL);
    check_fatal_header(build_ret_unlink, "command 4", NULL);
}

TEST(truncated_header_then_eof_does_not_crash_and_close_works)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    fake_buf_t b = {0};
    cmd_submit(h, &b, 1, USBIP_DIR_IN, 1, 0, 8, 0, NULL);
    CHECK_EQ_INT(fake_feed(h, b.data, 20, 0), 20);
    CHECK_EQ_INT(read_space(h), 28);
    usbip_session_close(h->s);
    CHECK(usbip_session_finished(h->s));
    CHECK_EQ_INT(read_space(h), 0);
    CHECK_EQ_INT(h->fb.detach_calls, 1);
    CHECK(h->entry->state == USBIP_DEV_AVAILABLE);
    teardown(h);

    /* EOF in the middle of an OUT payload: the buffer goes back */
    h = setup(NULL);
    REQUIRE(fake_import(h));
    fake_buf_reset(&b);
    cmd_submit(h, &b, 2, USBIP_DIR_OUT, FAKE_EP_BULK_OUT, 0, 100, 0, NULL);
    fake_buf_fill(&b, 1, 40);
    CHECK_EQ_INT(fake_feed_buf(h, &b, 0), 88);
    CHECK_EQ_INT(h->fb.buffers_live, 1);
    usbip_session_close(h->s);
    CHECK_EQ_INT(h->fb.buffers_live, 0);
    CHECK_EQ_INT(h->fb.submit_calls, 0);
    CHECK(usbip_session_finished(h->s));
    fake_buf_free(&b);
    teardown(h);

    /* EOF before any request */
    h = setup(NULL);
    CHECK_EQ_INT(fake_feed(h, "\x01\x11\x80", 3, 0), 3);
    usbip_session_close(h->s);
    CHECK(usbip_session_finished(h->s));
    teardown(h);
}

/* The endpoint table may change (SET_INTERFACE) between reading a URB header
 * and admitting the URB after a stall: the framing decided at the header
 * (iso descriptors follow or not) must hold, or the stream desynchronises
 * and unchecked packet counts reach the allocator. */
TEST(endpoint_table_change_while_a_header_waits_keeps_the_framing_non_iso_to_iso)
{
    usbip_session_limits_t lim;
    usbip_session_limits_default(&lim);
    lim.max_urbs = 1;
    fake_harness_t *h = setup(&lim);
    h->fb.dev.ep_in[FAKE_EP_ISO_IN].present = false; /* alt setting 0 */
    REQUIRE(fake_import(h));
    const uint8_t set_alt1[8] = {0x01, 0x0b, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00};
    fake_buf_t b = {0};
    cmd_submit(h, &b, 1, USBIP_DIR_OUT, 0, 0, 0, 0, set_alt1);
    /* The client already believes alt 1 is active, so iso descriptors follow. */
    cmd_submit(h, &b, 2, USBIP_DIR_IN, FAKE_EP_ISO_IN, 0, 64, 3, NULL);
    const usbip_iso_packet_t req[3] = {{0, 16, 0, 0}, {16, 16, 0, 0}, {32, 32, 0, 0}};
    fake_buf_iso(&b, req, 3);
    cmd_submit(h, &b, 3, USBIP_DIR_IN, FAKE_EP_BULK_IN, 0, 8, 0, NULL);
    CHECK_EQ_INT(fake_feed_buf(h, &b, 0), 96); /* the second header waits for the slot */
    REQUIRE(h->fb.nsubs == 1);
    /* the backend executes SET_INTERFACE and updates its table */
    h->fb.dev.ep_in[FAKE_EP_ISO_IN].present = true;
    fake_complete(&h->fb, fake_submission(&h->fb, 0)->urb, 0, 0, NULL);
    size_t fed = 96;
    fake_ret_t r[4];
    size_t nr = 0;
    for (int i = 0; i < 4; i++) {
        nr += drain_and_parse(h, r + nr, 4 - nr);
        fed += fake_feed(h, b.data + fed, b.len - fed, 0);
    }
    CHECK(!usbip_session_wants_close(h->s));
    CHECK_EQ_INT(fed, b.len);
    REQUIRE(nr == 2);
    CHECK_EQ_INT(r[1].hdr.seqnum, 2);
    CHECK_EQ_INT(r[1].hdr.u.ret_submit.status, USBIP_EPIPE); /* no such endpoint when sent */
    CHECK_EQ_INT(r[1].hdr.u.ret_submit.number_of_packets, 3); /* its descriptors echoed */
    CHECK_EQ_INT(r[1].iso_count, 3);
    REQUIRE(h->fb.nsubs == 2);
    CHECK_EQ_INT(fake_submission(&h->fb, 1)->ep_address, 0x81); /* seq 3 went through */
    fake_buf_free(&b);
    teardown(h);
}

TEST(endpoint_table_change_while_a_header_waits_keeps_the_framing_iso_to_non_iso)
{
    usbip_session_limits_t lim;
    usbip_session_limits_default(&lim);
    lim.max_urbs = 1;
    fake_harness_t *h = setup(&lim);
    REQUIRE(fake_import(h));
    const uint8_t set_alt0[8] = {0x01, 0x0b, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00};
    fake_buf_t b = {0};
    cmd_submit(h, &b, 1, USBIP_DIR_OUT, 0, 0, 0, 0, set_alt0);
    cmd_submit(h, &b, 2, USBIP_DIR_IN, FAKE_EP_ISO_IN, 0, 64, 2, NULL);
    const usbip_iso_packet_t req[2] = {{0, 32, 0, 0}, {32, 32, 0, 0}};
    fake_buf_iso(&b, req, 2);
    cmd_submit(h, &b, 3, USBIP_DIR_IN, FAKE_EP_BULK_IN, 0, 8, 0, NULL);
    CHECK_EQ_INT(fake_feed_buf(h, &b, 0), 96);
    h->fb.dev.ep_in[FAKE_EP_ISO_IN].present = false; /* alt 0: the iso endpoint is gone */
    fake_complete(&h->fb, fake_submission(&h->fb, 0)->urb, 0, 0, NULL);
    size_t fed = 96;
    for (int i = 0; i < 6; i++) {
        fake_drain(h, 0, 0);
        fed += fake_feed(h, b.data + fed, b.len - fed, 0);
        usbip_urb_t *urb = fake_pending_urb(&h->fb, 0);
        if (urb && urb->num_iso_packets) {
            const uint32_t actual[2] = {0, 0};
            fake_complete_iso(&h->fb, urb, USBIP_ESHUTDOWN, actual, NULL);
        }
    }
    CHECK(!usbip_session_wants_close(h->s));
    CHECK_EQ_INT(fed, b.len);
    REQUIRE(h->fb.nsubs >= 2);
    CHECK_EQ_INT(fake_submission(&h->fb, h->fb.nsubs - 1)->ep_address, 0x81);
    fake_buf_free(&b);
    teardown(h);
}

/* ======================= UNLINK (ref §3) ======================= */

TEST(unlink_race_completion_after_unlink_cancels_and_drops_the_late_completion)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    submit_simple(h, 10, USBIP_DIR_IN, FAKE_EP_INTR_IN, 8);
    REQUIRE(h->fb.nsubs == 1);
    usbip_urb_t *victim = fake_submission(&h->fb, 0)->urb;
    fake_buf_t b = {0};
    fake_buf_unlink(&b, 11, FAKE_DEVID, 10);
    CHECK_EQ_INT(fake_feed_buf(h, &b, 0), 48);
    CHECK_EQ_INT(h->fb.cancel_calls, 1);
    CHECK(h->fb.ncancels == 1 && h->fb.cancels[0] == victim);
    /* RET_UNLINK is queued at once, before the backend gives the URB back */
    fake_ret_t r[4];
    REQUIRE(drain_and_parse(h, r, 4) == 1);
    CHECK_EQ_INT(r[0].hdr.command, USBIP_RET_UNLINK);
    CHECK_EQ_INT(r[0].hdr.seqnum, 11);
    CHECK_EQ_INT(r[0].hdr.u.ret_unlink.status, USBIP_ECONNRESET);
    const uint8_t want[24] = {0, 0, 0, 4, 0, 0, 0, 11, 0, 0, 0, 0,
                              0, 0, 0, 0, 0, 0, 0, 0,  0xff, 0xff, 0xff, 0x98};
    CHECK(memcmp(r[0].raw, want, 24) == 0);
    CHECK_EQ_INT(h->fb.buffers_live, 1); /* still the backend's */
    /* the late completion (even a successful one with data) is dropped */
    fake_complete(&h->fb, victim, 0, 8, "abcdefgh");
    CHECK_EQ_INT(pending_output(h), 0);
    CHECK_EQ_INT(h->fb.buffers_live, 0);
    CHECK_EQ_INT(usbip_session_urbs_in_flight(h->s), 0);
    CHECK_EQ_INT(usbip_session_stats(h->s)->urbs_unlinked, 1);
    /* and the stream goes on */
    submit_simple(h, 12, USBIP_DIR_IN, FAKE_EP_INTR_IN, 8);
    fake_complete(&h->fb, fake_pending_urb(&h->fb, 0), 0, 1, "z");
    REQUIRE(drain_and_parse(h, r, 4) == 1);
    CHECK_EQ_INT(r[0].hdr.seqnum, 12);
    for (size_t i = 0; i + 8 <= h->out_len; i += 4) {
        /* no RET_SUBMIT for seqnum 10 anywhere in the output */
        CHECK(!(be32_at(h->out + i) == USBIP_RET_SUBMIT && be32_at(h->out + i + 4) == 10));
    }
    fake_buf_free(&b);
    teardown(h);
}

TEST(unlink_race_completion_before_unlink_sends_ret_submit_then_ret_unlink_0)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    submit_simple(h, 20, USBIP_DIR_IN, FAKE_EP_BULK_IN, 64);
    fake_complete(&h->fb, fake_pending_urb(&h->fb, 0), 0, 4, "data");
    fake_buf_t b = {0};
    fake_buf_unlink(&b, 21, FAKE_DEVID, 20);
    fake_feed_buf(h, &b, 0);
    CHECK_EQ_INT(h->fb.cancel_calls, 0);
    fake_ret_t r[4];
    REQUIRE(drain_and_parse(h, r, 4) == 2);
    CHECK_EQ_INT(r[0].hdr.command, USBIP_RET_SUBMIT);
    CHECK_EQ_INT(r[0].hdr.seqnum, 20);
    CHECK(r[0].data_len == 4 && memcmp(r[0].data, "data", 4) == 0);
    CHECK_EQ_INT(r[1].hdr.command, USBIP_RET_UNLINK);
    CHECK_EQ_INT(r[1].hdr.seqnum, 21);
    CHECK_EQ_INT(r[1].hdr.u.ret_unlink.status, 0);
    CHECK_EQ_INT(usbip_session_stats(h->s)->urbs_unlinked, 0);
    fake_buf_free(&b);
    teardown(h);
}

TEST(unlink_while_ret_submit_partially_written_sends_it_whole_then_ret_unlink_0)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    submit_simple(h, 30, USBIP_DIR_IN, FAKE_EP_BULK_IN, 100);
    uint8_t data[100];
    for (int i = 0; i < 100; i++) {
        data[i] = (uint8_t)i;
    }
    fake_complete(&h->fb, fake_pending_urb(&h->fb, 0), 0, 100, data);
    CHECK_EQ_INT(fake_drain(h, 0, 30), 30); /* part of the header */
    fake_buf_t b = {0};
    fake_buf_unlink(&b, 31, FAKE_DEVID, 30);
    fake_feed_buf(h, &b, 0);
    CHECK_EQ_INT(h->fb.cancel_calls, 0);
    CHECK_EQ_INT(fake_drain(h, 0, 50), 50); /* into the payload */
    fake_feed_buf(h, &b, 0);                /* a second unlink of the same victim */
    fake_ret_t r[4];
    REQUIRE(drain_and_parse(h, r, 4) == 3);
    CHECK_EQ_INT(r[0].hdr.seqnum, 30);
    CHECK(r[0].data_len == 100 && memcmp(r[0].data, data, 100) == 0);
    CHECK_EQ_INT(r[1].hdr.command, USBIP_RET_UNLINK);
    CHECK_EQ_INT(r[1].hdr.u.ret_unlink.status, 0);
    CHECK_EQ_INT(r[2].hdr.command, USBIP_RET_UNLINK);
    CHECK_EQ_INT(r[2].hdr.u.ret_unlink.status, 0);
    fake_buf_free(&b);
    teardown(h);
}

TEST(unlink_of_unknown_victim_answers_ret_unlink_0)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    submit_simple(h, 40, USBIP_DIR_IN, FAKE_EP_BULK_IN, 8);
    fake_buf_t b = {0};
    fake_buf_unlink(&b, 41, FAKE_DEVID, 999);
    fake_feed_buf(h, &b, 0);
    CHECK_EQ_INT(h->fb.cancel_calls, 0);
    fake_ret_t r[4];
    REQUIRE(drain_and_parse(h, r, 4) == 1);
    CHECK_EQ_INT(r[0].hdr.command, USBIP_RET_UNLINK);
    CHECK_EQ_INT(r[0].hdr.seqnum, 41);
    CHECK_EQ_INT(r[0].hdr.u.ret_unlink.status, 0);
    /* unlinking the same URB twice: the second finds nothing in flight */
    fake_buf_reset(&b);
    fake_buf_unlink(&b, 42, FAKE_DEVID, 40);
    fake_buf_unlink(&b, 43, FAKE_DEVID, 40);
    fake_feed_buf(h, &b, 0);
    CHECK_EQ_INT(h->fb.cancel_calls, 1);
    REQUIRE(drain_and_parse(h, r, 4) == 2);
    CHECK_EQ_INT(r[0].hdr.u.ret_unlink.status, USBIP_ECONNRESET);
    CHECK_EQ_INT(r[1].hdr.u.ret_unlink.status, 0);
    fake_buf_free(&b);
    teardown(h);
}

TEST(unlink_of_a_locally_answered_urb_follows_its_ret_submit)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    submit_simple(h, 50, USBIP_DIR_IN, FAKE_EP_MISSING, 8); /* -EPIPE at once */
    fake_buf_t b = {0};
    fake_buf_unlink(&b, 51, FAKE_DEVID, 50);
    fake_feed_buf(h, &b, 0);
    fake_ret_t r[4];
    REQUIRE(drain_and_parse(h, r, 4) == 2);
    CHECK_EQ_INT(r[0].hdr.command, USBIP_RET_SUBMIT);
    CHECK_EQ_INT(r[0].hdr.u.ret_submit.status, USBIP_EPIPE);
    CHECK_EQ_INT(r[1].hdr.command, USBIP_RET_UNLINK);
    CHECK_EQ_INT(r[1].hdr.u.ret_unlink.status, 0);
    CHECK_EQ_INT(h->fb.cancel_calls, 0);
    fake_buf_free(&b);
    teardown(h);
}

static int count_release_events(fake_harness_t *h)
{
    usbip_event_t ev[64];
    size_t n = usbip_event_log_read(&h->events, 0, ev, 64);
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        count += ev[i].type == USBIP_EVENT_RELEASE;
    }
    return count;
}

TEST(backend_completing_inside_cancel_is_tolerated_by_unlink_and_close)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    h->fb.complete_in_cancel = true;
    submit_simple(h, 1, USBIP_DIR_IN, FAKE_EP_INTR_IN, 8);
    submit_simple(h, 2, USBIP_DIR_IN, FAKE_EP_BULK_IN, 8);
    submit_simple(h, 3, USBIP_DIR_IN, FAKE_EP_BULK_IN, 8);
    fake_buf_t b = {0};
    fake_buf_unlink(&b, 4, FAKE_DEVID, 1);
    fake_feed_buf(h, &b, 0);
    CHECK_EQ_INT(h->fb.pending, 2);
    fake_ret_t r[4];
    REQUIRE(drain_and_parse(h, r, 4) == 1); /* RET_UNLINK only: the completion was dropped */
    CHECK_EQ_INT(r[0].hdr.command, USBIP_RET_UNLINK);
    CHECK_EQ_INT(r[0].hdr.u.ret_unlink.status, USBIP_ECONNRESET);
    usbip_session_close(h->s);
    CHECK_EQ_INT(h->fb.pending, 0);
    CHECK_EQ_INT(h->fb.detach_calls, 1);
    CHECK_EQ_INT(h->fb.pending_at_detach, 0);
    CHECK(usbip_session_finished(h->s));
    CHECK(h->entry->state == USBIP_DEV_AVAILABLE);
    CHECK_EQ_INT(count_release_events(h), 1);
    fake_buf_free(&b);
    teardown(h);
}

/* ======================= ordering (ref §2.6) ======================= */

TEST(replies_go_out_in_completion_order)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    submit_simple(h, 1, USBIP_DIR_IN, FAKE_EP_BULK_IN, 8);
    submit_simple(h, 2, USBIP_DIR_IN, FAKE_EP_INTR_IN, 8);
    submit_simple(h, 3, USBIP_DIR_OUT, FAKE_EP_BULK_OUT, 8);
    REQUIRE(h->fb.nsubs == 3);
    fake_complete(&h->fb, fake_submission(&h->fb, 2)->urb, 0, 8, NULL);
    fake_complete(&h->fb, fake_submission(&h->fb, 0)->urb, 0, 2, "ab");
    fake_complete(&h->fb, fake_submission(&h->fb, 1)->urb, 0, 1, "c");
    fake_ret_t r[4];
    REQUIRE(drain_and_parse(h, r, 4) == 3);
    CHECK_EQ_INT(r[0].hdr.seqnum, 3);
    CHECK_EQ_INT(r[1].hdr.seqnum, 1);
    CHECK(r[1].data_len == 2 && memcmp(r[1].data, "ab", 2) == 0);
    CHECK_EQ_INT(r[2].hdr.seqnum, 2);
    CHECK(r[2].data_len == 1 && r[2].data[0] == 'c');
    teardown(h);
}

TEST(per_endpoint_order_is_preserved_when_the_backend_completes_in_order)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    fake_buf_t b = {0};
    for (uint32_t i = 0; i < 6; i++) {
        cmd_submit(h, &b, 1000 + i * 2, USBIP_DIR_IN, FAKE_EP_BULK_IN, 0, 4, 0, NULL);
        cmd_submit(h, &b, 1001 + i * 2, USBIP_DIR_OUT, FAKE_EP_BULK_OUT, 0, 1, 0, NULL);
        fake_buf_fill(&b, (uint8_t)i, 1);
    }
    fake_feed_buf(h, &b, 3);
    REQUIRE(h->fb.nsubs == 12);
    /* all OUT first, then all IN, each endpoint in submission order */
    for (size_t i = 1; i < 12; i += 2) {
        CHECK_EQ_INT(fake_submission(&h->fb, i)->out_data[0], i / 2);
        fake_complete(&h->fb, fake_submission(&h->fb, i)->urb, 0, 1, NULL);
    }
    for (size_t i = 0; i < 12; i += 2) {
        fake_complete(&h->fb, fake_submission(&h->fb, i)->urb, 0, 4, "wxyz");
    }
    fake_ret_t r[13];
    REQUIRE(drain_and_parse(h, r, 13) == 12);
    for (uint32_t i = 0; i < 6; i++) {
        CHECK_EQ_INT(r[i].hdr.seqnum, 1001 + i * 2);
        CHECK_EQ_INT(r[6 + i].hdr.seqnum, 1000 + i * 2);
    }
    fake_buf_free(&b);
    teardown(h);
}

/* ======================= limits ======================= */

TEST(at_max_urbs_no_read_space_until_a_reply_is_written)
{
    usbip_session_limits_t lim;
    usbip_session_limits_default(&lim);
    lim.max_urbs = 4;
    fake_harness_t *h = setup(&lim);
    REQUIRE(fake_import(h));
    fake_buf_t b = {0};
    for (uint32_t i = 1; i <= 6; i++) {
        cmd_submit(h, &b, i, USBIP_DIR_IN, FAKE_EP_BULK_IN, 0, 8, 0, NULL);
    }
    /* four admitted, the fifth header read and held */
    CHECK_EQ_INT(fake_feed_buf(h, &b, 0), 5 * 48);
    CHECK_EQ_INT(h->fb.nsubs, 4);
    CHECK_EQ_INT(read_space(h), 0);
    CHECK_EQ_INT(usbip_session_urbs_in_flight(h->s), 4);
    /* a completion alone does not free the slot: its reply is not written */
    fake_complete(&h->fb, fake_submission(&h->fb, 0)->urb, 0, 0, NULL);
    CHECK_EQ_INT(read_space(h), 0);
    CHECK_EQ_INT(h->fb.nsubs, 4);
    /* half the reply written: still held */
    fake_drain(h, 0, 20);
    CHECK_EQ_INT(read_space(h), 0);
    fake_drain(h, 0, 0);
    CHECK_EQ_INT(h->fb.nsubs, 5); /* the held URB went in */
    CHECK_EQ_INT(read_space(h), 48);
    CHECK_EQ_INT(fake_feed(h, b.data + 5 * 48, 48, 0), 48);
    CHECK_EQ_INT(read_space(h), 0);
    CHECK_EQ_INT(h->fb.nsubs, 5);
    fake_buf_free(&b);
    teardown(h);
}

TEST(bytes_in_flight_limit_stops_reading_until_a_reply_is_written)
{
    usbip_session_limits_t lim;
    usbip_session_limits_default(&lim);
    lim.max_bytes_in_flight = 1024;
    lim.max_urb_size = 1024;
    fake_harness_t *h = setup(&lim);
    REQUIRE(fake_import(h));
    fake_buf_t b = {0};
    cmd_submit(h, &b, 1, USBIP_DIR_IN, FAKE_EP_BULK_IN, 0, 600, 0, NULL);
    cmd_submit(h, &b, 2, USBIP_DIR_OUT, FAKE_EP_BULK_OUT, 0, 600, 0, NULL);
    fake_buf_fill(&b, 0x77, 600);
    CHECK_EQ_INT(fake_feed_buf(h, &b, 0), 96);
    CHECK_EQ_INT(h->fb.nsubs, 1);
    CHECK_EQ_INT(h->fb.alloc_calls, 1);
    CHECK_EQ_INT(read_space(h), 0);
    fake_complete(&h->fb, fake_submission(&h->fb, 0)->urb, 0, 0, NULL);
    CHECK_EQ_INT(read_space(h), 0);
    fake_drain(h, 0, 0);
    CHECK_EQ_INT(read_space(h), 600);
    CHECK_EQ_INT(fake_feed(h, b.data + 96, 600, 0), 600);
    REQUIRE(h->fb.nsubs == 2);
    CHECK(fake_submission(&h->fb, 1)->out_data[599] == 0x77);
    fake_buf_free(&b);
    teardown(h);
}

TEST(alloc_buffer_would_block_stalls_then_resumes_after_a_completion)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    submit_simple(h, 1, USBIP_DIR_IN, FAKE_EP_BULK_IN, 8);
    REQUIRE(h->fb.nsubs == 1);
    h->fb.alloc_result = USBIP_ERR_WOULD_BLOCK;
    fake_buf_t b = {0};
    cmd_submit(h, &b, 2, USBIP_DIR_OUT, FAKE_EP_BULK_OUT, 0, 5, 0, NULL);
    fake_buf_bytes(&b, "hello", 5);
    cmd_submit(h, &b, 3, USBIP_DIR_IN, FAKE_EP_BULK_IN, 0, 8, 0, NULL);
    CHECK_EQ_INT(fake_feed_buf(h, &b, 0), 48); /* header read, payload waits */
    CHECK_EQ_INT(read_space(h), 0);
    CHECK_EQ_INT(h->fb.nsubs, 1);
    CHECK_EQ_INT(pending_output(h), 0); /* nothing dropped or refused */
    /* the pool refills when the backend returns the first URB */
    h->fb.alloc_result = USBIP_OK;
    fake_complete(&h->fb, fake_submission(&h->fb, 0)->urb, 0, 0, NULL);
    CHECK_EQ_INT(fake_feed(h, b.data + 48, b.len - 48, 0), b.len - 48);
    REQUIRE(h->fb.nsubs == 3);
    CHECK(memcmp(fake_submission(&h->fb, 1)->out_data, "hello", 5) == 0);
    fake_complete(&h->fb, fake_submission(&h->fb, 1)->urb, 0, 5, NULL);
    fake_complete(&h->fb, fake_submission(&h->fb, 2)->urb, 0, 0, NULL);
    fake_ret_t r[4];
    REQUIRE(drain_and_parse(h, r, 4) == 3);
    CHECK_EQ_INT(r[0].hdr.seqnum, 1);
    CHECK_EQ_INT(r[1].hdr.seqnum, 2);
    CHECK_EQ_INT(r[1].hdr.u.ret_submit.actual_length, 5);
    CHECK_EQ_INT(r[2].hdr.seqnum, 3);
    fake_buf_free(&b);
    teardown(h);
}

TEST(submit_failure_answers_the_urb_and_keeps_going)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    h->fb.submit_result = USBIP_ERR_NOT_FOUND;
    submit_simple(h, 1, USBIP_DIR_IN, FAKE_EP_BULK_IN, 8);
    h->fb.submit_result = USBIP_OK;
    submit_simple(h, 2, USBIP_DIR_IN, FAKE_EP_BULK_IN, 8);
    CHECK_EQ_INT(h->fb.submit_calls, 2);
    CHECK_EQ_INT(h->fb.nsubs, 1);
    CHECK_EQ_INT(h->fb.pending, 1);
    fake_complete(&h->fb, fake_pending_urb(&h->fb, 0), 0, 0, NULL);
    fake_ret_t r[3];
    REQUIRE(drain_and_parse(h, r, 3) == 2);
    CHECK_EQ_INT(h->fb.buffers_live, 0);
    CHECK_EQ_INT(r[0].hdr.seqnum, 1);
    CHECK_EQ_INT(r[0].hdr.u.ret_submit.status, USBIP_EPIPE);
    CHECK_EQ_INT(r[1].hdr.seqnum, 2);
    CHECK_EQ_INT(r[1].hdr.u.ret_submit.status, 0);
    teardown(h);
}

/* A long random run under tight limits: stalls on slots, bytes and buffers,
 * input and output in random pieces, completions in random order per
 * endpoint... and every seqnum is still answered exactly once, with the
 * right bytes. */
TEST(stream_stays_in_sync_after_stalls_and_every_seqnum_is_answered_once)
{
    usbip_session_limits_t lim;
    usbip_session_limits_default(&lim);
    lim.max_urbs = 3;
    lim.max_bytes_in_flight = 700;
    lim.max_urb_size = 512;
    fake_harness_t *h = setup(&lim);
    REQUIRE(fake_import(h));
    enum { N = 300 };
    static uint32_t lens[N];
    static uint8_t dirs[N];
    static int answered[N];
    memset(answered, 0, sizeof answered);
    fake_buf_t b = {0};
    uint32_t rng = 0xC0FFEEu;
    for (uint32_t i = 0; i < N; i++) {
        dirs[i] = (uint8_t)(fake_rand(&rng) & 1);
        lens[i] = fake_rand(&rng) % 513;
        cmd_submit(h, &b, 5000 + i, dirs[i], dirs[i] ? FAKE_EP_BULK_IN : FAKE_EP_BULK_OUT, 0,
                   (int32_t)lens[i], 0, NULL);
        if (!dirs[i]) {
            fake_buf_fill(&b, (uint8_t)i, lens[i]);
        }
    }
    size_t fed = 0;
    size_t rounds = 0;
    size_t nrets = 0;
    static fake_ret_t r[64];
    while ((fed < b.len || h->fb.pending > 0 || pending_output(h) > 0) && rounds < 100000) {
        rounds++;
        h->fb.alloc_result = (fake_rand(&rng) % 4 == 0) ? USBIP_ERR_WOULD_BLOCK : USBIP_OK;
        fed += fake_feed(h, b.data + fed, b.len - fed, 1 + fake_rand(&rng) % 200);
        /* complete the oldest pending URB (per-endpoint order) now and then */
        if (h->fb.pending > 0 && fake_rand(&rng) % 2) {
            usbip_urb_t *urb = fake_pending_urb(&h->fb, 0);
            fake_submission_t *sub = fake_find_submission(&h->fb, urb);
            uint8_t data[512];
            memset(data, (uint8_t)sub->length, sizeof data);
            fake_complete(&h->fb, urb, 0, sub->length, data);
        }
        if (fake_rand(&rng) % 3 == 0) {
            fake_drain(h, 64, 1 + fake_rand(&rng) % 300);
        }
        size_t n;
        while ((n = fake_parse_rets(h, r, 64)) > 0) {
            for (size_t k = 0; k < n; k++) {
                uint32_t i = r[k].hdr.seqnum - 5000;
                REQUIRE(r[k].hdr.command == USBIP_RET_SUBMIT && i < N);
                answered[i]++;
                CHECK_EQ_INT(r[k].hdr.u.ret_submit.actual_length, lens[i]);
                CHECK_EQ_INT(r[k].data_len, dirs[i] ? lens[i] : 0);
                if (dirs[i] && lens[i]) {
                    CHECK_EQ_INT(r[k].data[lens[i] - 1], (uint8_t)lens[i]);
                }
                nrets++;
            }
        }
        REQUIRE(!usbip_session_wants_close(h->s));
    }
    CHECK_EQ_INT(fed, b.len);
    CHECK_EQ_INT(nrets, N);
    for (uint32_t i = 0; i < N; i++) {
        CHECK_EQ_INT(answered[i], 1);
    }
    /* OUT payloads reached the backend intact */
    size_t k = 0;
    for (uint32_t i = 0; i < N; i++) {
        if (!dirs[i]) {
            while (k < h->fb.nsubs && fake_submission(&h->fb, k)->dir_in) {
                k++;
            }
            REQUIRE(k < h->fb.nsubs);
            fake_submission_t *sub = fake_submission(&h->fb, k++);
            CHECK_EQ_INT(sub->length, lens[i]);
            if (lens[i]) {
                CHECK(sub->out_data[0] == (uint8_t)i && sub->out_data[lens[i] - 1] == (uint8_t)i);
            }
        }
    }
    CHECK_EQ_INT(h->fb.nsubs, N);
    fake_buf_free(&b);
    teardown(h);
}

TEST(client_that_never_reads_output_makes_the_session_stop_reading)
{
    usbip_session_limits_t lim;
    usbip_session_limits_default(&lim);
    lim.max_urbs = 4;
    fake_harness_t *h = setup(&lim);
    REQUIRE(fake_import(h));
    fake_buf_t b = {0};
    for (uint32_t i = 1; i <= 20; i++) {
        cmd_submit(h, &b, i, USBIP_DIR_IN, FAKE_EP_BULK_IN, 0, 8, 0, NULL);
    }
    size_t fed = fake_feed_buf(h, &b, 0);
    for (int round = 0; round < 3; round++) {
        usbip_urb_t *urb;
        while ((urb = fake_pending_urb(&h->fb, 0)) != NULL) {
            fake_complete(&h->fb, urb, 0, 8, "12345678");
        }
        fed += fake_feed(h, b.data + fed, b.len - fed, 0);
    }
    CHECK_EQ_INT(fed, 5 * 48);       /* four URBs and one held header */
    CHECK_EQ_INT(h->fb.nsubs, 4);    /* all answered, none written */
    CHECK_EQ_INT(read_space(h), 0);
    CHECK_EQ_INT(pending_output(h), 4 * (48 + 8));
    fake_buf_free(&b);
    teardown(h);
}

/* ======================= close ======================= */

TEST(close_cancels_urbs_detaches_after_the_last_completion_and_releases_the_device)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    submit_simple(h, 1, USBIP_DIR_IN, FAKE_EP_INTR_IN, 8);
    submit_simple(h, 2, USBIP_DIR_IN, FAKE_EP_BULK_IN, 64);
    submit_simple(h, 3, USBIP_DIR_OUT, FAKE_EP_BULK_OUT, 16);
    submit_simple(h, 4, USBIP_DIR_IN, FAKE_EP_BULK_IN, 8);
    REQUIRE(h->fb.nsubs == 4);
    fake_complete(&h->fb, fake_submission(&h->fb, 3)->urb, 0, 8, NULL); /* reply queued */
    usbip_session_close(h->s);
    CHECK_EQ_INT(h->fb.cancel_calls, 3);
    CHECK_EQ_INT(h->fb.detach_calls, 0);
    CHECK(!usbip_session_finished(h->s));
    CHECK(usbip_session_state(h->s) == USBIP_SESSION_CLOSING);
    CHECK_EQ_INT(pending_output(h), 0); /* nothing more is written */
    CHECK_EQ_INT(read_space(h), 0);
    CHECK(h->entry->state == USBIP_DEV_IMPORTED);
    fake_complete(&h->fb, fake_submission(&h->fb, 1)->urb, USBIP_ECONNRESET, 0, NULL);
    fake_complete(&h->fb, fake_submission(&h->fb, 0)->urb, 0, 8, "late....");
    CHECK_EQ_INT(h->fb.detach_calls, 0);
    CHECK(!usbip_session_finished(h->s));
    fake_complete(&h->fb, fake_submission(&h->fb, 2)->urb, USBIP_ECONNRESET, 0, NULL);
    CHECK_EQ_INT(h->fb.detach_calls, 1);
    CHECK_EQ_INT(h->fb.pending_at_detach, 0);
    CHECK(usbip_session_finished(h->s));
    CHECK(h->entry->state == USBIP_DEV_AVAILABLE && h->entry->owner == NULL);
    CHECK_EQ_INT(h->fb.buffers_live, 0);
    CHECK_EQ_INT(pending_output(h), 0);
    usbip_session_close(h->s); /* twice is harmless */
    CHECK_EQ_INT(h->fb.detach_calls, 1);
    teardown(h);
}

TEST(close_with_unlinked_urb_still_in_backend_waits_for_it)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    submit_simple(h, 1, USBIP_DIR_IN, FAKE_EP_INTR_IN, 8);
    fake_buf_t b = {0};
    fake_buf_unlink(&b, 2, FAKE_DEVID, 1);
    fake_feed_buf(h, &b, 0);
    usbip_session_close(h->s);
    CHECK_EQ_INT(h->fb.detach_calls, 0);
    CHECK(!usbip_session_finished(h->s));
    fake_complete(&h->fb, fake_submission(&h->fb, 0)->urb, USBIP_ECONNRESET, 0, NULL);
    CHECK_EQ_INT(h->fb.detach_calls, 1);
    CHECK(usbip_session_finished(h->s));
    fake_buf_free(&b);
    teardown(h);
}

TEST(device_gone_while_imported_makes_the_session_want_close)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    submit_simple(h, 1, USBIP_DIR_IN, FAKE_EP_BULK_IN, 8);
    CHECK(!usbip_session_wants_close(h->s));
    usbip_registry_remove(&h->reg, h->entry);
    CHECK_EQ_INT(h->gone_calls, 1);
    CHECK(usbip_session_wants_close(h->s));
    CHECK_EQ_INT(read_space(h), 0);
    CHECK_EQ_INT(h->freed_calls, 0); /* still held by the session */
    usbip_session_close(h->s);
    CHECK_EQ_INT(h->fb.cancel_calls, 1);
    CHECK_EQ_INT(h->freed_calls, 0);
    fake_complete(&h->fb, fake_pending_urb(&h->fb, 0), USBIP_ENODEV, 0, NULL);
    CHECK_EQ_INT(h->fb.detach_calls, 1);
    CHECK_EQ_INT(h->freed_calls, 1); /* freed after detach, on release */
    CHECK(!h->entry->used);
    CHECK(usbip_session_finished(h->s));
    teardown(h);
}

TEST(stats_count_urbs_and_bytes_per_session_and_per_device)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    submit_simple(h, 1, USBIP_DIR_IN, FAKE_EP_BULK_IN, 100);
    submit_simple(h, 2, USBIP_DIR_OUT, FAKE_EP_BULK_OUT, 30);
    submit_simple(h, 3, USBIP_DIR_IN, FAKE_EP_BULK_IN, 10);
    submit_simple(h, 4, USBIP_DIR_IN, FAKE_EP_INTR_IN, 8);
    fake_buf_t b = {0};
    fake_buf_unlink(&b, 5, FAKE_DEVID, 4);
    fake_feed_buf(h, &b, 0);
    uint8_t data[100] = {0};
    fake_complete(&h->fb, fake_submission(&h->fb, 0)->urb, 0, 40, data);
    fake_complete(&h->fb, fake_submission(&h->fb, 1)->urb, 0, 30, NULL);
    fake_complete(&h->fb, fake_submission(&h->fb, 2)->urb, USBIP_EPIPE, 0, NULL);
    fake_complete(&h->fb, fake_submission(&h->fb, 3)->urb, USBIP_ECONNRESET, 0, NULL);
    fake_drain(h, 0, 0);
    const usbip_stats_t *st[2] = {usbip_session_stats(h->s), &h->entry->stats};
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(st[i]->urbs_submitted, 4);
        CHECK_EQ_INT(st[i]->urbs_completed, 3);
        CHECK_EQ_INT(st[i]->urbs_unlinked, 1);
        CHECK_EQ_INT(st[i]->urbs_failed, 1);
        CHECK_EQ_INT(st[i]->bytes_in, 40);
        CHECK_EQ_INT(st[i]->bytes_out, 30);
        CHECK_EQ_INT(st[i]->errors, 0);
    }
    fake_buf_free(&b);
    teardown(h);
}

TEST(replies_dropped_at_close_are_not_counted_as_completed)
{
    fake_harness_t *h = setup(NULL);
    REQUIRE(fake_import(h));
    submit_simple(h, 1, USBIP_DIR_IN, FAKE_EP_BULK_IN, 8);
    fake_complete(&h->fb, fake_pending_urb(&h->fb, 0), 0, 8, "abcdefgh");
    usbip_session_close(h->s); /* the RET_SUBMIT was never written */
    CHECK(usbip_session_finished(h->s));
    CHECK_EQ_INT(usbip_session_stats(h->s)->urbs_completed, 0);
    CHECK_EQ_INT(h->entry->stats.urbs_completed, 0);
    teardown(h);
}

TEST_MAIN("session",
          TEST_ENTRY(devlist_reply_layout_counts_records_and_exactly_bNumInterfaces_interfaces),
          TEST_ENTRY(devlist_closes_after_the_reply_is_written),
          TEST_ENTRY(devlist_with_no_device_reports_zero),
          TEST_ENTRY(version_0100_accepted_and_echoed_in_the_reply),
          TEST_ENTRY(version_0111_accepted_and_echoed_in_the_reply),
          TEST_ENTRY(other_version_gets_no_reply_and_closes_logging_version_and_value),
          TEST_ENTRY(unknown_op_code_closes_without_reply),
          TEST_ENTRY(import_success_is_0x140_bytes_busid_equal_devid_and_attach_before_reply),
          TEST_ENTRY(import_unknown_busid_answers_st_nodev_in_8_bytes_then_closes),
          TEST_ENTRY(import_busid_without_nul_answers_st_nodev),
          TEST_ENTRY(import_of_device_imported_by_another_session_answers_st_dev_busy),
          TEST_ENTRY(import_denied_by_access_control_answers_st_na),
          TEST_ENTRY(devlist_denied_by_access_control_answers_st_na),
          TEST_ENTRY(import_attach_failure_answers_st_na_and_releases_the_device),
          TEST_ENTRY(import_split_across_reads_8_plus_32_works),
          TEST_ENTRY(out_reply_carries_no_data_and_actual_length_is_bytes_accepted),
          TEST_ENTRY(in_reply_carries_exactly_actual_length_bytes),
          TEST_ENTRY(in_actual_length_above_length_is_clamped),
          TEST_ENTRY(short_not_ok_short_in_is_eremoteio_with_the_data_still_sent),
          TEST_ENTRY(junk_number_of_packets_is_ignored_on_bulk_interrupt_and_control),
          TEST_ENTRY(ret_devid_direction_and_ep_are_zero),
          TEST_ENTRY(seqnum_is_echoed_exactly),
          TEST_ENTRY(transfer_flags_masked_like_the_linux_stub_never_rejected),
          TEST_ENTRY(iso_in_data_packed_back_to_back_descriptors_echoed_sum_and_error_count),
          TEST_ENTRY(iso_out_actual_length_is_the_sum_and_no_data_is_sent),
          TEST_ENTRY(iso_overlapping_packets_never_reply_beyond_the_buffer),
          TEST_ENTRY(iso_urb_without_packets_reports_actual_length_as_the_empty_sum),
          TEST_ENTRY(iso_packet_outside_the_buffer_closes_naming_the_field),
          TEST_ENTRY(iso_packets_over_the_limit_close_naming_number_of_packets),
          TEST_ENTRY(special_requests_reach_the_backend_once_with_their_kind_and_true_status),
          TEST_ENTRY(set_address_is_answered_locally_with_status_0_never_reaching_the_backend),
          TEST_ENTRY(unknown_endpoint_consumes_out_payload_replies_epipe_and_stays_in_sync),
          TEST_ENTRY(iso_urb_to_a_missing_endpoint_consumes_its_descriptors_and_echoes_them),
          TEST_ENTRY(devid_mismatch_closes_naming_devid),
          TEST_ENTRY(ep_16_closes_naming_ep),
          TEST_ENTRY(direction_2_closes_naming_direction),
          TEST_ENTRY(transfer_buffer_length_beyond_max_urb_size_or_negative_closes_naming_the_field),
          TEST_ENTRY(unknown_command_and_ret_commands_from_the_client_close),
          TEST_ENTRY(truncated_header_then_eof_does_not_crash_and_close_works),
          TEST_ENTRY(endpoint_table_change_while_a_header_waits_keeps_the_framing_non_iso_to_iso),
          TEST_ENTRY(endpoint_table_change_while_a_header_waits_keeps_the_framing_iso_to_non_iso),
          TEST_ENTRY(unlink_race_completion_after_unlink_cancels_and_drops_the_late_completion),
          TEST_ENTRY(unlink_race_completion_before_unlink_sends_ret_submit_then_ret_unlink_0),
          TEST_ENTRY(unlink_while_ret_submit_partially_written_sends_it_whole_then_ret_unlink_0),
          TEST_ENTRY(unlink_of_unknown_victim_answers_ret_unlink_0),
          TEST_ENTRY(unlink_of_a_locally_answered_urb_follows_its_ret_submit),
          TEST_ENTRY(backend_completing_inside_cancel_is_tolerated_by_unlink_and_close),
          TEST_ENTRY(replies_go_out_in_completion_order),
          TEST_ENTRY(per_endpoint_order_is_preserved_when_the_backend_completes_in_order),
          TEST_ENTRY(at_max_urbs_no_read_space_until_a_reply_is_written),
          TEST_ENTRY(bytes_in_flight_limit_stops_reading_until_a_reply_is_written),
          TEST_ENTRY(alloc_buffer_would_block_stalls_then_resumes_after_a_completion),
          TEST_ENTRY(submit_failure_answers_the_urb_and_keeps_going),
          TEST_ENTRY(stream_stays_in_sync_after_stalls_and_every_seqnum_is_answered_once),
          TEST_ENTRY(client_that_never_reads_output_makes_the_session_stop_reading),
          TEST_ENTRY(close_cancels_urbs_detaches_after_the_last_completion_and_releases_the_device),
          TEST_ENTRY(close_with_unlinked_urb_still_in_backend_waits_for_it),
          TEST_ENTRY(device_gone_while_imported_makes_the_session_want_close),
          TEST_ENTRY(stats_count_urbs_and_bytes_per_session_and_per_device),
          TEST_ENTRY(replies_dropped_at_close_are_not_counted_as_completed))
