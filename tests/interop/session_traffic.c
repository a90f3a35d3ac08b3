/*
 * session_traffic: drive one varied USB/IP session against usbip-server for
 * the tshark interop test, and print how many PDUs of each kind it put on
 * the wire so the capture can be checked against it.
 *
 *   session_traffic PORT [KEYBOARD_TEXT_LENGTH] [--pipelined]
 *
 * Expects the daemon's devices 1-1 keyboard (short text), 1-2 serial,
 * 1-4 Gadget Zero. Traffic: DEVLIST; a refused IMPORT (busy); IMPORT of
 * Gadget Zero with control (descriptors, a stall, vendor requests), bulk IN
 * and OUT (one URB in flight at a time, or 8 with --pipelined: tshark 4.0's
 * dissector misreads a RET_SUBMIT that shares a TCP segment with an earlier
 * PDU, see tshark_session.sh), interrupt IN/OUT, SET_INTERFACE and
 * iso IN/OUT; IMPORT of the serial port with class requests and echo; IMPORT
 * of the keyboard with its reports and an UNLINK of a pending URB and of a
 * completed one. Every reply is checked; exit status 0 only if all is well.
 *
 * Last line on stdout:
 *   counts OP_REQ_DEVLIST=a OP_REP_DEVLIST=b OP_REQ_IMPORT=c OP_REP_IMPORT=d
 *          CMD_SUBMIT=e RET_SUBMIT=f CMD_UNLINK=g RET_UNLINK=h
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usbip_client.h"

static unsigned s_req_devlist, s_rep_devlist, s_req_import, s_rep_import;
static unsigned s_cmd_submit, s_ret_submit, s_cmd_unlink, s_ret_unlink;
static bool s_pipelined;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "session_traffic: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void ok(usbip_client_t *c, usbip_err_t err, const char *what)
{
    if (err != USBIP_OK) {
        die("%s: %s: %s", what, usbip_err_name(err), usbip_client_last_error(c));
    }
}

static usbip_client_t *connect_to(uint16_t port)
{
    usbip_client_t *c = NULL;
    if (usbip_client_connect("127.0.0.1", port, 5000, &c) != USBIP_OK) {
        die("connect: %s", usbip_client_last_error(NULL));
    }
    return c;
}

static usbip_client_t *import(uint16_t port, const char *busid)
{
    usbip_client_t *c = connect_to(port);
    s_req_import++;
    ok(c, usbip_client_import(c, busid, NULL, NULL), busid);
    s_rep_import++;
    return c;
}

static void submit(usbip_client_t *c, usbip_client_urb_t *u)
{
    ok(c, usbip_client_submit(c, u), "submit");
    s_cmd_submit++;
}

/* Wait for one RET_SUBMIT that completes u with the expected status. */
static void wait_for(usbip_client_t *c, usbip_client_urb_t *u, int32_t status)
{
    usbip_client_urb_t *done = NULL;
    ok(c, usbip_client_wait(c, &done, NULL, NULL), "wait");
    s_ret_submit++;
    if (done != u || u->status != status) {
        die("ep %u: completion %p status %d, expected %p status %d", u->ep, (void *)done,
            done ? done->status : 0, (void *)u, status);
    }
}

static uint32_t control(usbip_client_t *c, uint8_t type, uint8_t req, uint16_t value,
                        uint16_t index, void *data, uint16_t len, int32_t want_status)
{
    int32_t status = 0;
    uint32_t actual = 0;
    ok(c, usbip_client_control(c, type, req, value, index, data, len, &status, &actual),
       "control");
    s_cmd_submit++;
    s_ret_submit++;
    if (status != want_status) {
        die("control %02x %02x %04x: status %d, expected %d", type, req, value, status,
            want_status);
    }
    return actual;
}

static void fill_pattern(uint8_t *p, size_t len, unsigned maxp)
{
    for (size_t i = 0; i < len; i++) {
        p[i] = (uint8_t)((i % maxp) % 63u);
    }
}

static void check_pattern(const uint8_t *p, size_t len, unsigned maxp, const char *what)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != (uint8_t)((i % maxp) % 63u)) {
            die("%s: byte %zu off the pattern", what, i);
        }
    }
}

static void zero_session(uint16_t port)
{
    usbip_client_t *c = import(port, "1-4");

    /* A second IMPORT of the same device: refused with DEV_BUSY (8-byte reply). */
    usbip_client_t *busy = connect_to(port);
    uint32_t st = 0;
    s_req_import++;
    if (usbip_client_import(busy, "1-4", NULL, &st) != USBIP_ERR_BUSY || st != 2) {
        die("second IMPORT of 1-4 was not refused as busy (status %u)", st);
    }
    s_rep_import++;
    usbip_client_close(busy);

    /* Control: descriptors, a stall, vendor write/read-back. */
    uint8_t buf[4096];
    if (control(c, 0x80, 6, 0x0100, 0, buf, 18, 0) != 18) {
        die("device descriptor");
    }
    control(c, 0x80, 6, 0x0200, 0, buf, 255, 0);
    control(c, 0x80, 6, 0x0302, 0x0409, buf, 255, 0);
    control(c, 0x80, 6, 0x0309, 0x0409, buf, 255, -32);
    uint8_t vendor[64];
    fill_pattern(vendor, sizeof vendor, 7);
    control(c, 0x40, 0x5b, 0, 0, vendor, sizeof vendor, 0);
    if (control(c, 0xc0, 0x5c, 0, 0, buf, sizeof buf, 0) != sizeof vendor ||
        memcmp(buf, vendor, sizeof vendor) != 0) {
        die("vendor read-back");
    }

    /* Bulk IN and OUT of 16 KiB, and a 64 KiB IN. One URB at a time unless
     * --pipelined (see tshark_session.sh for why). */
    static uint8_t in[4][16384], out[16384], big[65536];
    fill_pattern(out, sizeof out, 512);
    usbip_client_urb_t urbs[8];
    int in_flight = s_pipelined ? 8 : 1;
    for (int first = 0; first < 8; first += in_flight) {
        for (int i = first; i < first + in_flight; i++) {
            bool dir_in = i % 2 == 0;
            urbs[i] = (usbip_client_urb_t){.ep = 1, .dir_in = dir_in, .length = 16384,
                                           .buffer = dir_in ? (void *)in[i / 2] : (void *)out};
            submit(c, &urbs[i]);
        }
        for (int i = first; i < first + in_flight; i++) {
            usbip_client_urb_t *done = NULL;
            ok(c, usbip_client_wait(c, &done, NULL, NULL), "bulk wait");
            s_ret_submit++;
            if (!done || done->status != 0 || done->actual_length != 16384) {
                die("bulk URB failed");
            }
            if (done->dir_in) {
                check_pattern(done->buffer, 16384, 512, "bulk IN");
            }
        }
    }
    usbip_client_urb_t bigin = {.ep = 1, .dir_in = true, .buffer = big, .length = sizeof big};
    submit(c, &bigin);
    wait_for(c, &bigin, 0);
    check_pattern(big, sizeof big, 512, "bulk IN 64 KiB");

    /* Interrupt IN and OUT. */
    uint8_t report[64];
    usbip_client_urb_t iin = {.ep = 2, .dir_in = true, .buffer = report, .length = 64};
    submit(c, &iin);
    wait_for(c, &iin, 0);
    check_pattern(report, 64, 64, "interrupt IN");
    usbip_client_urb_t iout = {.ep = 2, .dir_in = false, .buffer = report, .length = 64};
    submit(c, &iout);
    wait_for(c, &iout, 0);

    /* Iso on alt setting 1: 8 packets IN, 8 packets OUT. */
    control(c, 0x01, 11, 1, 0, NULL, 0, 0);
    static uint8_t iso_buf[8 * 1024];
    usbip_iso_packet_t iso[8];
    for (int i = 0; i < 8; i++) {
        iso[i] = (usbip_iso_packet_t){.offset = (uint32_t)i * 1024, .length = 1024 - 100u * i};
    }
    usbip_client_urb_t isoin = {.ep = 3, .dir_in = true, .buffer = iso_buf,
                                .length = sizeof iso_buf, .flags = 0x2, .interval = 4,
                                .num_iso_packets = 8, .iso = iso};
    submit(c, &isoin);
    wait_for(c, &isoin, 0);
    for (int i = 0; i < 8; i++) {
        if (iso[i].actual_length != iso[i].length || iso[i].status != 0) {
            die("iso IN packet %d", i);
        }
        check_pattern(iso_buf + i * 1024, iso[i].length, 1024, "iso IN");
    }
    for (int i = 0; i < 8; i++) {
        fill_pattern(iso_buf + i * 1024, 1024, 1024);
    }
    usbip_client_urb_t isoout = {.ep = 3, .dir_in = false, .buffer = iso_buf,
                                 .length = sizeof iso_buf, .flags = 0x2, .interval = 4,
                                 .num_iso_packets = 8, .iso = iso};
    submit(c, &isoout);
    wait_for(c, &isoout, 0);
    if (isoout.error_count != 0) {
        die("iso OUT: %d packet errors", isoout.error_count);
    }
    control(c, 0x01, 11, 0, 0, NULL, 0, 0);
    usbip_client_close(c);
}

static void serial_session(uint16_t port)
{
    usbip_client_t *c = import(port, "1-2");
    uint8_t coding[7] = {0x80, 0x25, 0, 0, 0, 2, 7};
    control(c, 0x21, 0x20, 0, 0, coding, 7, 0);
    control(c, 0x21, 0x22, 1, 0, NULL, 0, 0);
    uint8_t back[7];
    control(c, 0xa1, 0x21, 0, 0, back, 7, 0);
    const char text[] = "hello over usbip";
    usbip_client_urb_t tx = {.ep = 1, .dir_in = false, .buffer = (void *)text,
                             .length = sizeof text};
    submit(c, &tx);
    wait_for(c, &tx, 0);
    char rx[64] = {0};
    usbip_client_urb_t urx = {.ep = 1, .dir_in = true, .buffer = rx, .length = sizeof rx};
    submit(c, &urx);
    wait_for(c, &urx, 0);
    if (urx.actual_length != sizeof text || memcmp(rx, text, sizeof text) != 0) {
        die("serial echo");
    }
    usbip_client_close(c);
}

static void keyboard_session(uint16_t port, unsigned text_len)
{
    usbip_client_t *c = import(port, "1-1");
    control(c, 0x00, 9, 1, 0, NULL, 0, 0);
    uint8_t report[8];
    for (unsigned i = 0; i < 2 * text_len; i++) {
        usbip_client_urb_t u = {.ep = 1, .dir_in = true, .buffer = report, .length = 8,
                                .interval = 4};
        submit(c, &u);
        wait_for(c, &u, 0);
    }
    /* The keyboard is idle: this one stays pending until unlinked. */
    usbip_client_urb_t pending = {.ep = 1, .dir_in = true, .buffer = report, .length = 8,
                                  .interval = 4};
    submit(c, &pending);
    usbip_client_set_timeout(c, 300);
    usbip_client_urb_t *done = NULL;
    if (usbip_client_wait(c, &done, NULL, NULL) == USBIP_OK || !usbip_client_timed_out(c)) {
        die("the idle keyboard answered");
    }
    usbip_client_set_timeout(c, 10000);
    uint32_t unlink_seq = 0;
    ok(c, usbip_client_unlink(c, &pending, &unlink_seq), "unlink");
    s_cmd_unlink++;
    int32_t ustatus = 0;
    ok(c, usbip_client_wait(c, &done, &ustatus, NULL), "unlink wait");
    s_ret_unlink++;
    if (done != &pending || ustatus != -104) {
        die("RET_UNLINK status %d", ustatus);
    }
    /* Unlink of a URB that already completed: RET_UNLINK(0). */
    uint8_t desc[18];
    usbip_client_urb_t g = {.ep = 0, .dir_in = true, .buffer = desc, .length = 18,
                            .setup = {0x80, 6, 0, 1, 0, 0, 18, 0}};
    submit(c, &g);
    wait_for(c, &g, 0);
    ok(c, usbip_client_unlink_seqnum(c, g.seqnum, &unlink_seq), "unlink completed");
    s_cmd_unlink++;
    ok(c, usbip_client_wait(c, &done, &ustatus, NULL), "unlink wait");
    s_ret_unlink++;
    if (done != NULL || ustatus != 0) {
        die("RET_UNLINK for a completed URB: status %d", ustatus);
    }
    usbip_client_close(c);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [KEYBOARD_TEXT_LENGTH] [--pipelined]\n", argv[0]);
        return 2;
    }
    uint16_t port = (uint16_t)atoi(argv[1]);
    unsigned text_len = argc > 2 ? (unsigned)atoi(argv[2]) : 2;
    s_pipelined = argc > 3 && strcmp(argv[3], "--pipelined") == 0;

    usbip_client_t *c = connect_to(port);
    size_t ndev = 0;
    s_req_devlist++;
    ok(c, usbip_client_devlist(c, NULL, NULL, &ndev), "DEVLIST");
    s_rep_devlist++;
    usbip_client_close(c);
    if (ndev < 3) {
        die("DEVLIST: %zu devices", ndev);
    }
    zero_session(port);
    serial_session(port);
    keyboard_session(port, text_len);
    printf("counts OP_REQ_DEVLIST=%u OP_REP_DEVLIST=%u OP_REQ_IMPORT=%u OP_REP_IMPORT=%u "
           "CMD_SUBMIT=%u RET_SUBMIT=%u CMD_UNLINK=%u RET_UNLINK=%u\n",
           s_req_devlist, s_rep_devlist, s_req_import, s_rep_import, s_cmd_submit, s_ret_submit,
           s_cmd_unlink, s_ret_unlink);
    return 0;
}
