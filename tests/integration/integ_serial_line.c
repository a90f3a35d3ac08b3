/* 8: CDC-ACM class requests: SET/GET_LINE_CODING and SET_CONTROL_LINE_STATE
 * reach the device (ctl status and the daemon log show them), invalid
 * codings stall, and the line state resets when the session ends. */
#include <string.h>

#include "integ_util.h"

static void line_coding_and_control_lines(daemon_t *d)
{
    usbip_client_t *c = it_import(d, BUSID_SERIAL, NULL);
    REQUIRE(c);
    char out[512];
    REQUIRE(daemon_ctl_ok(d, "status 1-2", out, sizeof out));
    CHECK_STR(out, "ok line 115200 8N1 dtr=0 rts=0\n");

    size_t mark = daemon_log_mark(d);
    /* 9600 baud, 1 stop bit (0), even parity (2), 7 data bits. */
    uint8_t coding[7] = {0x80, 0x25, 0x00, 0x00, 0, 2, 7};
    uint32_t actual = 0;
    CHECK_EQ(it_control(c, 0x21, 0x20, 0, 0, coding, 7, &actual), 0);
    CHECK_EQ(actual, 7);
    CHECK_EQ(it_control(c, 0x21, 0x22, 0x0001, 0, NULL, 0, &actual), 0); /* DTR=1 RTS=0 */
    uint8_t back[7] = {0};
    CHECK_EQ(it_control(c, 0xa1, 0x21, 0, 0, back, 7, &actual), 0);
    CHECK_EQ(actual, 7);
    CHECK(memcmp(back, coding, 7) == 0);
    REQUIRE(daemon_ctl_ok(d, "status 1-2", out, sizeof out));
    CHECK_STR(out, "ok line 9600 7E1 dtr=1 rts=0\n");
    CHECK(daemon_log_wait(d, mark, "line coding 9600 7E1 (1-2)", 2000));
    CHECK(daemon_log_wait(d, mark, "DTR=1 RTS=0 (1-2)", 2000));

    /* 9 data bits is no CDC coding: stall, state unchanged. */
    uint8_t bad[7] = {0x00, 0xc2, 0x01, 0x00, 0, 0, 9};
    CHECK_EQ(it_control(c, 0x21, 0x20, 0, 0, bad, 7, &actual), -32);
    /* Addressed to the data interface: not a CDC request there. */
    CHECK_EQ(it_control(c, 0x21, 0x20, 0, 1, coding, 7, &actual), -32);
    CHECK_EQ(it_control(c, 0x21, 0x22, 0x0003, 0, NULL, 0, &actual), 0); /* DTR=1 RTS=1 */
    REQUIRE(daemon_ctl_ok(d, "status 1-2", out, sizeof out));
    CHECK_STR(out, "ok line 9600 7E1 dtr=1 rts=1\n");

    /* 115200 8O2 and the lines down, then a break. */
    uint8_t coding2[7] = {0x00, 0xc2, 0x01, 0x00, 2, 1, 8};
    CHECK_EQ(it_control(c, 0x21, 0x20, 0, 0, coding2, 7, &actual), 0);
    CHECK_EQ(it_control(c, 0x21, 0x22, 0x0002, 0, NULL, 0, &actual), 0);
    mark = daemon_log_mark(d);
    CHECK_EQ(it_control(c, 0x21, 0x23, 250, 0, NULL, 0, &actual), 0);
    CHECK(daemon_log_wait(d, mark, "break 250 ms", 2000));
    REQUIRE(daemon_ctl_ok(d, "status 1-2", out, sizeof out));
    CHECK_STR(out, "ok line 115200 8O2 dtr=0 rts=1\n");

    /* The echo still works with the new line settings. */
    CHECK(it_serial_echo_ok(c, 3000, 5));

    /* The session ends: the port is back to its defaults. */
    it_close(c);
    CHECK(it_wait_listed(d, BUSID_SERIAL, true, 3000));
    REQUIRE(daemon_ctl_ok(d, "status 1-2", out, sizeof out));
    CHECK_STR(out, "ok line 115200 8N1 dtr=0 rts=0\n");
    /* status of an unknown bus id fails. */
    CHECK_EQ(daemon_ctl(d, "status 9-9", out, sizeof out), 1);
    CHECK_CONTAINS(out, "error: no device at bus id \"9-9\"");
}

int main(int argc, char **argv)
{
    it_init(argc, argv, 120);
    it_run("line_coding_and_control_lines", line_coding_and_control_lines, NULL);
    return it_finish();
}
