/* 9: malformed clients. Each bad input arrives on its own connection while a
 * second session (the serial port) does successful transfers before and
 * after; the bad connection is closed without a reply (or gets the one reply
 * the protocol defines), the daemon log names the field and value, and the
 * device the bad client had imported comes back. Daemon: --max-urb-size 256K. */
#include <stdlib.h>
#include <string.h>

#include "integ_util.h"

#define MAX_URB_SIZE (256 * 1024)

static uint32_t s_seed = 1;

/* A session on Gadget Zero, for bad input in the URB phase. */
static usbip_client_t *import_zero(daemon_t *d)
{
    return it_import(d, BUSID_ZERO, NULL);
}

/* Send raw bytes; the server must close the connection without a byte. */
static void send_expect_silent_close(usbip_client_t *c, const void *buf, size_t len)
{
    usbip_err_t err = usbip_client_send_raw(c, buf, len);
    if (err != USBIP_OK) {
        it_fail(__FILE__, __LINE__, "send: %s", usbip_client_last_error(c));
        return;
    }
    size_t bytes = 0;
    CHECK(it_expect_closed(c, 3000, &bytes));
    CHECK_EQ(bytes, 0);
}

static void submit_header_expect_close(daemon_t *d, uint32_t command, uint32_t devid_delta,
                                       uint32_t direction, uint32_t ep, int32_t length,
                                       int32_t npackets)
{
    usbip_client_t *c = import_zero(d);
    REQUIRE(c);
    uint8_t hdr[48];
    it_urb_header(hdr, command, 0x100, usbip_client_devid(c) + devid_delta, direction, ep, 0,
                  length, 0, npackets, 0, NULL);
    send_expect_silent_close(c, hdr, sizeof hdr);
}

/* ---- the bad inputs ---- */

static void op_truncated_header(daemon_t *d)
{
    usbip_client_t *c = it_connect(d);
    REQUIRE(c);
    const uint8_t half[4] = {0x01, 0x11, 0x80, 0x05};
    REQUIRE_OK(c, usbip_client_send_raw(c, half, sizeof half));
    it_sleep_ms(100);
    it_close(c);
    /* The same in the URB phase, with the device imported. */
    c = import_zero(d);
    REQUIRE(c);
    uint8_t hdr[48];
    it_urb_header(hdr, 1, 1, usbip_client_devid(c), 1, 1, 0, 512, 0, 0, 0, NULL);
    REQUIRE_OK(c, usbip_client_send_raw(c, hdr, 20));
    it_sleep_ms(100);
    it_close(c);
    /* And mid OUT payload. */
    c = import_zero(d);
    REQUIRE(c);
    uint8_t out[48 + 1000];
    it_urb_header(out, 1, 1, usbip_client_devid(c), 0, 1, 0, 4096, 0, 0, 0, NULL);
    it_fill_pattern(out + 48, 1000, 512);
    REQUIRE_OK(c, usbip_client_send_raw(c, out, sizeof out));
    it_sleep_ms(100);
    it_close(c);
}

static void op_unknown_code(daemon_t *d)
{
    usbip_client_t *c = it_connect(d);
    REQUIRE(c);
    const uint8_t req[8] = {0x01, 0x11, 0x12, 0x34, 0, 0, 0, 0};
    send_expect_silent_close(c, req, sizeof req);
}

static void op_wrong_version(daemon_t *d)
{
    usbip_client_t *c = it_connect(d);
    REQUIRE(c);
    const uint8_t req[8] = {0x02, 0x00, 0x80, 0x05, 0, 0, 0, 0};
    send_expect_silent_close(c, req, sizeof req);
}

static void op_wrong_version_import(daemon_t *d)
{
    usbip_client_t *c = it_connect(d);
    REQUIRE(c);
    uint8_t req[40] = {0x02, 0x00, 0x80, 0x03};
    memcpy(req + 8, BUSID_ZERO, 3);
    send_expect_silent_close(c, req, sizeof req);
}

static void urb_unknown_command(daemon_t *d) { submit_header_expect_close(d, 5, 0, 1, 1, 8, 0); }

static void urb_ret_submit_from_client(daemon_t *d)
{
    submit_header_expect_close(d, 3, 0, 1, 1, 8, 0);
}

static void urb_wrong_devid(daemon_t *d) { submit_header_expect_close(d, 1, 99, 1, 1, 512, 0); }

static void urb_unlink_wrong_devid(daemon_t *d)
{
    submit_header_expect_close(d, 2, 0x00010000u, 0, 0, 0, 0);
}

static void urb_ep16(daemon_t *d) { submit_header_expect_close(d, 1, 0, 1, 16, 512, 0); }

static void urb_direction2(daemon_t *d) { submit_header_expect_close(d, 1, 0, 2, 1, 512, 0); }

static void urb_too_long(daemon_t *d)
{
    submit_header_expect_close(d, 1, 0, 1, 1, MAX_URB_SIZE + 1, 0);
}

static void urb_negative_length(daemon_t *d) { submit_header_expect_close(d, 1, 0, 0, 1, -1, 0); }

/* number_of_packets above 1024 on the iso endpoint (alt setting 1). */
static void urb_iso_1025_packets(daemon_t *d)
{
    usbip_client_t *c = import_zero(d);
    REQUIRE(c);
    uint32_t actual = 0;
    REQUIRE_EQ(it_control(c, 0x01, 11, 1, 0, NULL, 0, &actual), 0);
    uint8_t hdr[48];
    it_urb_header(hdr, 1, 0x100, usbip_client_devid(c), 1, 3, 0x2, 1025 * 8, 0, 1025, 4, NULL);
    send_expect_silent_close(c, hdr, sizeof hdr);
}

/* An iso descriptor reaching past transfer_buffer_length. */
static void urb_iso_packet_outside_buffer(daemon_t *d)
{
    usbip_client_t *c = import_zero(d);
    REQUIRE(c);
    uint32_t actual = 0;
    REQUIRE_EQ(it_control(c, 0x01, 11, 1, 0, NULL, 0, &actual), 0);
    uint8_t req[48 + 2 * 16] = {0};
    it_urb_header(req, 1, 0x100, usbip_client_devid(c), 1, 3, 0x2, 2048, 0, 2, 4, NULL);
    it_put_be32(req + 48 + 0, 0);
    it_put_be32(req + 48 + 4, 1024);
    it_put_be32(req + 48 + 16 + 0, 1536);
    it_put_be32(req + 48 + 16 + 4, 1024); /* 1536 + 1024 > 2048 */
    send_expect_silent_close(c, req, sizeof req);
}

/* A protocol error while URBs are in flight in the device. */
static void urb_bad_header_with_urbs_in_flight(daemon_t *d)
{
    usbip_client_t *c = import_zero(d);
    REQUIRE(c);
    uint32_t actual = 0;
    REQUIRE_EQ(it_control(c, 0x00, 9, 2, 0, NULL, 0, &actual), 0); /* loopback: INs wait */
    uint8_t *bufs = it_malloc(8 * 4096);
    REQUIRE(bufs);
    usbip_client_urb_t *urbs = it_malloc(8 * sizeof *urbs);
    REQUIRE(urbs);
    for (int i = 0; i < 8; i++) {
        urbs[i] = (usbip_client_urb_t){.ep = 1, .dir_in = true, .buffer = bufs + i * 4096,
                                       .length = 4096};
        REQUIRE(it_submit(c, &urbs[i]));
    }
    CHECK(it_no_reply_within(c, 200));
    uint8_t hdr[48];
    it_urb_header(hdr, 1, 0x999, usbip_client_devid(c), 1, 16, 0, 8, 0, 0, 0, NULL);
    send_expect_silent_close(c, hdr, sizeof hdr);
}

static void import_unknown_busid(daemon_t *d)
{
    usbip_client_t *c = it_connect(d);
    REQUIRE(c);
    uint8_t req[40] = {0x01, 0x11, 0x80, 0x03};
    memcpy(req + 8, "9-9", 3);
    REQUIRE_OK(c, usbip_client_send_raw(c, req, sizeof req));
    uint8_t rep[8];
    REQUIRE_OK(c, usbip_client_recv_raw(c, rep, sizeof rep));
    static const uint8_t nodev[8] = {0x01, 0x11, 0x00, 0x03, 0, 0, 0, 4};
    CHECK(memcmp(rep, nodev, 8) == 0);
    size_t extra = 0;
    CHECK(it_expect_closed(c, 3000, &extra));
    CHECK_EQ(extra, 0);
}

static void import_busid_not_terminated(daemon_t *d)
{
    usbip_client_t *c = it_connect(d);
    REQUIRE(c);
    uint8_t req[40] = {0x01, 0x11, 0x80, 0x03};
    memset(req + 8, '1', 32);
    REQUIRE_OK(c, usbip_client_send_raw(c, req, sizeof req));
    uint8_t rep[8];
    REQUIRE_OK(c, usbip_client_recv_raw(c, rep, sizeof rep));
    CHECK_EQ(it_be16(rep + 2), 0x0003);
    CHECK_EQ(it_be32(rep + 4), 4);
    size_t extra = 0;
    CHECK(it_expect_closed(c, 3000, &extra));
    CHECK_EQ(extra, 0);
}

/* ---- the frame around each ---- */

static int count_sessions(daemon_t *d)
{
    char out[4096];
    if (!daemon_ctl_ok(d, "sessions", out, sizeof out)) {
        return -1;
    }
    int n = 0;
    for (const char *p = strchr(out, '\n'); p && p[1]; p = strchr(p + 1, '\n')) {
        n++;
    }
    return n;
}

static void with_good_session(daemon_t *d, void (*bad)(daemon_t *), const char *needle)
{
    usbip_client_t *good = it_import(d, BUSID_SERIAL, NULL);
    REQUIRE(good);
    REQUIRE(it_serial_echo_ok(good, 3000, s_seed++));
    size_t mark = daemon_log_mark(d);
    int failures = it_case_failures;
    bad(d);
    if (needle && !daemon_log_wait(d, mark, needle, 3000)) {
        it_fail(__FILE__, __LINE__, "daemon log lacks \"%s\"", needle);
    }
    /* The other session never noticed. */
    CHECK(it_serial_echo_ok(good, 3000, s_seed++));
    /* The bad connection is gone and the zero device is free again. */
    CHECK(it_wait_listed(d, BUSID_ZERO, true, 3000));
    uint64_t deadline = it_now_ms() + 3000;
    int sessions = -1;
    while ((sessions = count_sessions(d)) != 1 && it_now_ms() < deadline) {
        it_sleep_ms(20);
    }
    CHECK_EQ(sessions, 1);
    usbip_client_t *z = it_import(d, BUSID_ZERO, NULL);
    CHECK(z && it_zero_in_ok(z, 64 * 1024));
    it_close(z);
    CHECK(it_serial_echo_ok(good, 3000, s_seed++));
    if (it_case_failures != failures) {
        daemon_log_dump(d, mark);
    }
}

#define BAD_CASE(fn, needle) \
    static void case_##fn(daemon_t *d) { with_good_session(d, fn, needle); }

BAD_CASE(op_truncated_header, NULL)
BAD_CASE(op_unknown_code, "closing connection: code 4660")
BAD_CASE(op_wrong_version, "closing connection: version 512")
BAD_CASE(op_wrong_version_import, "closing connection: version 512")
BAD_CASE(urb_unknown_command, "closing connection: command 5")
BAD_CASE(urb_ret_submit_from_client, "closing connection: command 3")
BAD_CASE(urb_wrong_devid, "closing connection: devid 65639") /* 0x10004 + 99 */
BAD_CASE(urb_unlink_wrong_devid, "closing connection: devid 131076")
BAD_CASE(urb_ep16, "closing connection: ep 16")
BAD_CASE(urb_direction2, "closing connection: direction 2")
BAD_CASE(urb_too_long, "closing connection: transfer_buffer_length 262145")
BAD_CASE(urb_negative_length, "closing connection: transfer_buffer_length -1")
BAD_CASE(urb_iso_1025_packets, "closing connection: number_of_packets 1025")
BAD_CASE(urb_iso_packet_outside_buffer, "iso packet outside transfer_buffer_length")
BAD_CASE(urb_bad_header_with_urbs_in_flight, "closing connection: ep 16")
BAD_CASE(import_unknown_busid, "IMPORT of busid \"9-9\" refused: no such device")
BAD_CASE(import_busid_not_terminated, "refused: busid is empty or not NUL-terminated")

int main(int argc, char **argv)
{
    it_init(argc, argv, 170);
    static const char *const flags[] = {"--max-urb-size", "256K", NULL};
#define RUN(fn) it_run(#fn, case_##fn, flags)
    RUN(op_truncated_header);
    RUN(op_unknown_code);
    RUN(op_wrong_version);
    RUN(op_wrong_version_import);
    RUN(urb_unknown_command);
    RUN(urb_ret_submit_from_client);
    RUN(urb_wrong_devid);
    RUN(urb_unlink_wrong_devid);
    RUN(urb_ep16);
    RUN(urb_direction2);
    RUN(urb_too_long);
    RUN(urb_negative_length);
    RUN(urb_iso_1025_packets);
    RUN(urb_iso_packet_outside_buffer);
    RUN(urb_bad_header_with_urbs_in_flight);
    RUN(import_unknown_busid);
    RUN(import_busid_not_terminated);
    return it_finish();
}
