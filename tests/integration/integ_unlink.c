/* 7: CMD_UNLINK: a pending URB is answered by RET_UNLINK(-ECONNRESET) and
 * never by a RET_SUBMIT; a completed or unknown victim gets RET_UNLINK(0);
 * under a race every URB is answered exactly once. */
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "integ_util.h"

/* Type the whole (short) text so that the keyboard is idle. */
static bool drain_keyboard(usbip_client_t *c, size_t chars)
{
    for (size_t i = 0; i < 2 * chars; i++) {
        uint8_t report[8];
        uint32_t actual = 0;
        if (it_transfer(c, 1, true, report, 8, &actual) != 0 || actual != 8) {
            it_fail(__FILE__, __LINE__, "keyboard report %zu failed", i);
            return false;
        }
    }
    return true;
}

static void unlink_pending_interrupt(daemon_t *d)
{
    usbip_client_t *c = it_import(d, BUSID_KEYBOARD, NULL);
    REQUIRE(c);
    REQUIRE(drain_keyboard(c, 2));

    uint8_t report[8];
    usbip_client_urb_t u = {.ep = 1, .dir_in = true, .buffer = report, .length = 8};
    REQUIRE(it_submit(c, &u));
    CHECK(it_no_reply_within(c, 300)); /* the idle keyboard holds it */
    uint32_t unlink_seq = 0;
    REQUIRE_OK(c, usbip_client_unlink(c, &u, &unlink_seq));
    CHECK(unlink_seq > u.seqnum);
    usbip_client_urb_t *done = NULL;
    int32_t ustatus = 0;
    uint32_t useq = 0;
    REQUIRE(it_wait(c, &done, &ustatus, &useq));
    CHECK(done == &u);
    CHECK(u.unlinked);
    CHECK_EQ(u.status, -104);
    CHECK_EQ(ustatus, -104);
    CHECK_EQ(useq, unlink_seq);
    /* No RET_SUBMIT for the victim, ever. */
    CHECK(it_no_reply_within(c, 500));

    /* A victim that already completed: RET_UNLINK(0). */
    uint8_t desc[18];
    usbip_client_urb_t g = {.ep = 0, .dir_in = true, .buffer = desc, .length = 18,
                            .setup = {0x80, 6, 0, 1, 0, 0, 18, 0}};
    REQUIRE(it_submit(c, &g));
    REQUIRE(it_wait(c, &done, NULL, NULL));
    CHECK(done == &g);
    CHECK_EQ(g.status, 0);
    REQUIRE_OK(c, usbip_client_unlink_seqnum(c, g.seqnum, &unlink_seq));
    REQUIRE(it_wait(c, &done, &ustatus, &useq));
    CHECK(done == NULL);
    CHECK_EQ(ustatus, 0);
    CHECK_EQ(useq, unlink_seq);
    /* A seqnum never submitted: RET_UNLINK(0) as well. */
    REQUIRE_OK(c, usbip_client_unlink_seqnum(c, 0x00dead00u, &unlink_seq));
    REQUIRE(it_wait(c, &done, &ustatus, &useq));
    CHECK(done == NULL);
    CHECK_EQ(ustatus, 0);
    CHECK_EQ(useq, unlink_seq);
    CHECK(it_no_reply_within(c, 200));
    uint32_t actual = 0;
    CHECK_EQ(it_control(c, 0x80, 6, 0x0100, 0, desc, 18, &actual), 0);
    CHECK_EQ(actual, 18);
}

/* The same raw: exact RET_UNLINK bytes. */
static void unlink_wire_format(daemon_t *d)
{
    usbip_client_t *c = it_import(d, BUSID_KEYBOARD, NULL);
    REQUIRE(c);
    REQUIRE(drain_keyboard(c, 2));
    const uint32_t devid = usbip_client_devid(c);
    uint8_t pdu[48];
    it_urb_header(pdu, 1, 0x7001, devid, 1, 1, 0x200, 8, -1, 0, 4, NULL);
    REQUIRE_OK(c, usbip_client_send_raw(c, pdu, 48));
    struct pollfd pfd = {.fd = usbip_client_fd(c), .events = POLLIN};
    CHECK_EQ(poll(&pfd, 1, 300), 0);
    it_urb_header(pdu, 2, 0x7002, devid, 0, 0, 0x7001, 0, 0, 0, 0, NULL);
    REQUIRE_OK(c, usbip_client_send_raw(c, pdu, 48));
    uint8_t rep[48];
    REQUIRE_OK(c, usbip_client_recv_raw(c, rep, 48));
    uint8_t expect[48] = {0};
    it_put_be32(expect + 0x00, 4);
    it_put_be32(expect + 0x04, 0x7002);
    it_put_be32(expect + 0x14, (uint32_t)-104);
    CHECK(memcmp(rep, expect, 48) == 0);
    CHECK_EQ(poll(&pfd, 1, 500), 0);
}

/* Serial IN URBs wait for data: unlinking the middle one cancels only it;
 * the others keep their order and get the data. */
static void unlink_middle_of_queue(daemon_t *d)
{
    usbip_client_t *c = it_import(d, BUSID_SERIAL, NULL);
    REQUIRE(c);
    enum { N = 6, VICTIM = 3, CHUNK = 100 };
    usbip_client_urb_t rx[N];
    uint8_t bufs[N][CHUNK];
    for (int i = 0; i < N; i++) {
        rx[i] = (usbip_client_urb_t){.ep = 1, .dir_in = true, .buffer = bufs[i], .length = CHUNK};
        REQUIRE(it_submit(c, &rx[i]));
    }
    CHECK(it_no_reply_within(c, 200));
    uint32_t unlink_seq = 0;
    REQUIRE_OK(c, usbip_client_unlink(c, &rx[VICTIM], &unlink_seq));
    usbip_client_urb_t *done = NULL;
    int32_t ustatus = 0;
    REQUIRE(it_wait(c, &done, &ustatus, NULL));
    CHECK(done == &rx[VICTIM]);
    CHECK_EQ(ustatus, -104);
    /* Exactly enough data for the five others. */
    uint8_t data[(N - 1) * CHUNK];
    it_fill_random(data, sizeof data, 31);
    usbip_client_urb_t tx = {.ep = 1, .dir_in = false, .buffer = data, .length = sizeof data};
    REQUIRE(it_submit(c, &tx));
    int next = 0;
    for (int i = 0; i < N; i++) { /* N - 1 IN URBs and the OUT */
        REQUIRE(it_wait(c, &done, NULL, NULL));
        REQUIRE(done);
        if (done == &tx) {
            CHECK_EQ(tx.status, 0);
            continue;
        }
        if (next == VICTIM) {
            next++;
        }
        CHECK(done == &rx[next]);
        CHECK_EQ(done->status, 0);
        CHECK_EQ(done->actual_length, CHUNK);
        int slot = next < VICTIM ? next : next - 1;
        CHECK(memcmp(done->buffer, data + slot * CHUNK, CHUNK) == 0);
        next++;
    }
    CHECK(it_no_reply_within(c, 200));
}

/* Submit and unlink at once: each URB ends exactly once, by RET_SUBMIT
 * (then RET_UNLINK(0) after it) or by RET_UNLINK(-ECONNRESET). */
static void race_round(usbip_client_t *c, bool unlink_right_after_submit)
{
    enum { N = 48 };
    usbip_client_urb_t urbs[N];
    uint32_t unlink_seq[N];
    bool completed[N] = {false};
    bool unlinked_reply[N] = {false};
    for (int i = 0; i < N; i++) {
        urbs[i] = (usbip_client_urb_t){.ep = (uint8_t)(i % 3 == 0 ? 2 : 1), .dir_in = true,
                                       .length = i % 3 == 0 ? 64 : 32768};
        urbs[i].buffer = it_malloc(urbs[i].length);
        REQUIRE(urbs[i].buffer);
        REQUIRE(it_submit(c, &urbs[i]));
        if (unlink_right_after_submit) {
            REQUIRE_OK(c, usbip_client_unlink(c, &urbs[i], &unlink_seq[i]));
        }
    }
    int by_submit = 0, by_unlink = 0;
    if (!unlink_right_after_submit) {
        /* Give the server time to complete them (replies not read yet),
         * then unlink them all: mostly RET_SUBMIT then RET_UNLINK(0). */
        it_sleep_ms(100);
        for (int i = 0; i < N; i++) {
            REQUIRE_OK(c, usbip_client_unlink_seqnum(c, urbs[i].seqnum, &unlink_seq[i]));
        }
    }
    for (int k = 0; k < 3 * N; k++) {
        if (usbip_client_urbs_in_flight(c) == 0 && usbip_client_unlinks_in_flight(c) == 0) {
            break;
        }
        usbip_client_urb_t *done = NULL;
        int32_t ustatus = 0;
        uint32_t useq = 0;
        REQUIRE(it_wait(c, &done, &ustatus, &useq));
        if (useq != 0) {
            int i = 0;
            while (i < N && unlink_seq[i] != useq) {
                i++;
            }
            REQUIRE(i < N);
            CHECK(!unlinked_reply[i]);
            unlinked_reply[i] = true;
            if (ustatus == 0) {
                CHECK(completed[i]); /* its RET_SUBMIT came first */
                CHECK(done == NULL);
            } else {
                CHECK_EQ(ustatus, -104);
                CHECK(done == &urbs[i]);
                CHECK(!completed[i]);
                completed[i] = true;
                by_unlink++;
            }
        } else {
            REQUIRE(done >= urbs && done < urbs + N);
            int i = (int)(done - urbs);
            CHECK(!completed[i]);
            completed[i] = true;
            CHECK_EQ(done->status, 0);
            CHECK_EQ(done->actual_length, done->length);
            CHECK_EQ(it_pattern_mismatch(done->buffer, done->actual_length,
                                         i % 3 == 0 ? 64 : 512), -1);
            by_submit++;
        }
    }
    CHECK_EQ(by_submit + by_unlink, N);
    for (int i = 0; i < N; i++) {
        CHECK(completed[i] && unlinked_reply[i]);
    }
    CHECK(it_no_reply_within(c, 300));
    printf("  race (%s): %d completed, %d unlinked\n",
           unlink_right_after_submit ? "interleaved" : "unlinks 100 ms later", by_submit, by_unlink);
}

/* Submit and unlink at once: each URB ends exactly once, by RET_SUBMIT
 * (then RET_UNLINK(0) after it) or by RET_UNLINK(-ECONNRESET). */
static void unlink_race(daemon_t *d)
{
    usbip_client_t *c = it_import(d, BUSID_ZERO, NULL);
    REQUIRE(c);
    race_round(c, true);
    race_round(c, false);
    race_round(c, true);
    CHECK(it_zero_in_ok(c, 4096));
}

int main(int argc, char **argv)
{
    it_init(argc, argv, 150);
    static const char *const flags[] = {"--device", "keyboard:text=ab", "--device", "serial",
                                        "--device", "storage:size=1M", "--device", "zero", NULL};
    it_run("unlink_pending_interrupt", unlink_pending_interrupt, flags);
    it_run("unlink_wire_format", unlink_wire_format, flags);
    it_run("unlink_middle_of_queue", unlink_middle_of_queue, flags);
    it_run("unlink_race", unlink_race, flags);
    return it_finish();
}
