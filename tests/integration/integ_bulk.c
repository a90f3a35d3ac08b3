/* 3: bulk transfers: Gadget Zero source/sink with many URBs in flight,
 * loopback (configuration 2) with 1 MiB URBs, transfer flags, and the serial
 * port's echo. */
#include <stdlib.h>
#include <string.h>

#include "integ_util.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

static void zero_source_in_flight(daemon_t *d)
{
    usbip_client_t *c = it_import(d, BUSID_ZERO, NULL);
    REQUIRE(c);
    enum { N = 16 };
    usbip_client_urb_t urbs[N];
    for (int i = 0; i < N; i++) {
        urbs[i] = (usbip_client_urb_t){.ep = 1, .dir_in = true, .length = 64 * KIB};
        urbs[i].buffer = it_malloc(64 * KIB);
        REQUIRE(urbs[i].buffer);
        memset(urbs[i].buffer, 0xee, 64 * KIB);
        REQUIRE(it_submit(c, &urbs[i]));
    }
    CHECK_EQ(usbip_client_urbs_in_flight(c), N);
    for (int i = 0; i < N; i++) {
        usbip_client_urb_t *done = NULL;
        REQUIRE(it_wait(c, &done, NULL, NULL));
        REQUIRE(done);
        /* One endpoint completes in submission order. */
        CHECK(done == &urbs[i]);
        CHECK_EQ(done->status, 0);
        CHECK_EQ(done->actual_length, 64 * KIB);
        CHECK_EQ(it_pattern_mismatch(done->buffer, done->actual_length, 512), -1);
    }
    /* A 1 MiB URB (the default --max-urb-size) and odd sizes. */
    CHECK(it_zero_in_ok(c, MIB));
    CHECK(it_zero_in_ok(c, 1));
    CHECK(it_zero_in_ok(c, 513));
    /* A zero-length IN completes at once with nothing. */
    uint32_t actual = 99;
    CHECK_EQ(it_transfer(c, 1, true, NULL, 0, &actual), 0);
    CHECK_EQ(actual, 0);
}

static void zero_sink_out(daemon_t *d)
{
    usbip_client_t *c = it_import(d, BUSID_ZERO, NULL);
    REQUIRE(c);
    enum { N = 16 };
    uint8_t *pattern = it_malloc(64 * KIB);
    REQUIRE(pattern);
    it_fill_pattern(pattern, 64 * KIB, 512);
    usbip_client_urb_t urbs[N];
    for (int i = 0; i < N; i++) {
        urbs[i] = (usbip_client_urb_t){.ep = 1, .dir_in = false, .buffer = pattern,
                                       .length = 64 * KIB};
        REQUIRE(it_submit(c, &urbs[i]));
    }
    for (int i = 0; i < N; i++) {
        usbip_client_urb_t *done = NULL;
        REQUIRE(it_wait(c, &done, NULL, NULL));
        CHECK(done == &urbs[i]);
        CHECK_EQ(done->status, 0);
        CHECK_EQ(done->actual_length, 64 * KIB);
    }
    uint32_t actual = 0;
    CHECK_EQ(it_transfer(c, 1, false, pattern, 1000, &actual), 0);
    CHECK_EQ(actual, 1000);
    CHECK_EQ(it_transfer(c, 1, false, NULL, 0, &actual), 0); /* a real ZLP */
    char out[512];
    REQUIRE(daemon_ctl_ok(d, "status 1-4", out, sizeof out));
    CHECK_CONTAINS(out, "pattern errors 0");

    /* One byte off the pattern: the sink stalls the URB. */
    uint8_t *bad = it_malloc(4096);
    REQUIRE(bad);
    it_fill_pattern(bad, 4096, 512);
    bad[1000] ^= 0x55;
    size_t mark = daemon_log_mark(d);
    CHECK_EQ(it_transfer(c, 1, false, bad, 4096, &actual), -32);
    CHECK(daemon_log_wait(d, mark, "data off the pattern at byte 1000", 2000));
    REQUIRE(daemon_ctl_ok(d, "status 1-4", out, sizeof out));
    CHECK_CONTAINS(out, "pattern errors 1");
    /* After CLEAR_FEATURE(ENDPOINT_HALT) the endpoint takes the pattern again. */
    CHECK_EQ(it_control(c, 0x02, 1, 0, 0x01, NULL, 0, &actual), 0);
    CHECK_EQ(it_transfer(c, 1, false, pattern, 4096, &actual), 0);
    CHECK_EQ(actual, 4096);
}

/* IN and OUT URBs on both bulk endpoints in flight at once. */
static void zero_mixed_directions(daemon_t *d)
{
    usbip_client_t *c = it_import(d, BUSID_ZERO, NULL);
    REQUIRE(c);
    enum { N = 24 };
    uint8_t *pattern = it_malloc(32 * KIB);
    REQUIRE(pattern);
    it_fill_pattern(pattern, 32 * KIB, 512);
    usbip_client_urb_t urbs[N];
    for (int i = 0; i < N; i++) {
        bool in = i % 2 == 0;
        uint32_t len = (uint32_t)(1 + i) * 1024u + (uint32_t)i;
        urbs[i] = (usbip_client_urb_t){.ep = 1, .dir_in = in, .length = len};
        urbs[i].buffer = in ? it_malloc(len) : pattern;
        REQUIRE(urbs[i].buffer);
        REQUIRE(it_submit(c, &urbs[i]));
    }
    bool seen[N] = {false};
    int last_in = -1, last_out = -1;
    for (int i = 0; i < N; i++) {
        usbip_client_urb_t *done = NULL;
        REQUIRE(it_wait(c, &done, NULL, NULL));
        REQUIRE(done >= urbs && done < urbs + N);
        int k = (int)(done - urbs);
        CHECK(!seen[k]);
        seen[k] = true;
        /* Per endpoint (and direction) the order holds. */
        if (done->dir_in) {
            CHECK(k > last_in);
            last_in = k;
            CHECK_EQ(it_pattern_mismatch(done->buffer, done->actual_length, 512), -1);
        } else {
            CHECK(k > last_out);
            last_out = k;
        }
        CHECK_EQ(done->status, 0);
        CHECK_EQ(done->actual_length, done->length);
    }
}

static void zero_loopback(daemon_t *d)
{
    usbip_client_t *c = it_import(d, BUSID_ZERO, NULL);
    REQUIRE(c);
    uint32_t actual = 0;
    REQUIRE_EQ(it_control(c, 0x00, 9, 2, 0, NULL, 0, &actual), 0);
    uint8_t config = 0;
    CHECK_EQ(it_control(c, 0x80, 8, 0, 0, &config, 1, &actual), 0);
    CHECK_EQ(config, 2);
    char out[512];
    CHECK(daemon_ctl_ok(d, "status 1-4", out, sizeof out));
    CHECK_CONTAINS(out, "config 2");
    /* Configuration 2 has no interrupt endpoints. */
    uint8_t scratch[64];
    CHECK_EQ(it_transfer(c, 2, true, scratch, 64, &actual), -32);

    /* Small round trip. */
    uint8_t *data = it_malloc(MIB), *back = it_malloc(MIB + 4096);
    REQUIRE(data && back);
    it_fill_random(data, 1000, 7);
    CHECK_EQ(it_transfer(c, 1, false, data, 1000, &actual), 0);
    CHECK_EQ(actual, 1000);
    CHECK_EQ(it_transfer(c, 1, true, back, 4096, &actual), 0);
    CHECK_EQ(actual, 1000);
    CHECK(memcmp(back, data, 1000) == 0);

    /* SHORT_NOT_OK on a short IN: -EREMOTEIO, and the data still comes. */
    it_fill_random(data, 100, 8);
    CHECK_EQ(it_transfer(c, 1, false, data, 100, &actual), 0);
    usbip_client_urb_t u = {.ep = 1, .dir_in = true, .buffer = back, .length = 4096,
                            .flags = 0x0001};
    REQUIRE(it_submit(c, &u));
    usbip_client_urb_t *done = NULL;
    REQUIRE(it_wait(c, &done, NULL, NULL));
    CHECK(done == &u);
    CHECK_EQ(u.status, -121);
    CHECK_EQ(u.actual_length, 100);
    CHECK(memcmp(back, data, 100) == 0);

    /* 1 MiB OUT in one URB against a 64 KiB FIFO, read back by 1 MiB IN
     * URBs that each complete with what the FIFO holds. */
    it_fill_random(data, MIB, 9);
    usbip_client_urb_t out_urb = {.ep = 1, .dir_in = false, .buffer = data, .length = MIB};
    usbip_client_urb_t in_urb = {.ep = 1, .dir_in = true, .buffer = back, .length = MIB};
    REQUIRE(it_submit(c, &in_urb));
    REQUIRE(it_submit(c, &out_urb));
    size_t got = 0;
    bool out_done = false;
    int rounds = 0;
    while ((!out_done || got < MIB) && rounds++ < 10000) {
        REQUIRE(it_wait(c, &done, NULL, NULL));
        REQUIRE(done);
        if (done == &out_urb) {
            CHECK_EQ(out_urb.status, 0);
            CHECK_EQ(out_urb.actual_length, MIB);
            out_done = true;
            continue;
        }
        REQUIRE(done == &in_urb);
        REQUIRE_EQ(in_urb.status, 0);
        REQUIRE(in_urb.actual_length > 0 && got + in_urb.actual_length <= MIB);
        got += in_urb.actual_length;
        if (got < MIB) {
            in_urb = (usbip_client_urb_t){.ep = 1, .dir_in = true, .buffer = back + got,
                                          .length = MIB};
            REQUIRE(it_submit(c, &in_urb));
        }
    }
    CHECK(out_done);
    REQUIRE_EQ(got, MIB);
    CHECK(memcmp(back, data, MIB) == 0);

    /* Back to source/sink. */
    CHECK_EQ(it_control(c, 0x00, 9, 1, 0, NULL, 0, &actual), 0);
    CHECK(it_zero_in_ok(c, 4096));
}

static void serial_echo(daemon_t *d)
{
    usbip_client_t *c = it_import(d, BUSID_SERIAL, NULL);
    REQUIRE(c);
    const size_t sizes[] = {1, 511, 512, 4096, 65536};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        CHECK(it_serial_echo_ok(c, sizes[i], (uint32_t)(100 + i)));
    }
    /* An IN waiting for data stays pending until the OUT arrives. */
    uint8_t in[4096], out[100];
    it_fill_random(out, sizeof out, 55);
    usbip_client_urb_t rx = {.ep = 1, .dir_in = true, .buffer = in, .length = sizeof in};
    REQUIRE(it_submit(c, &rx));
    CHECK(it_no_reply_within(c, 200));
    usbip_client_urb_t tx = {.ep = 1, .dir_in = false, .buffer = out, .length = sizeof out};
    REQUIRE(it_submit(c, &tx));
    for (int i = 0; i < 2; i++) {
        usbip_client_urb_t *done = NULL;
        REQUIRE(it_wait(c, &done, NULL, NULL));
        REQUIRE(done == &rx || done == &tx);
        CHECK_EQ(done->status, 0);
        CHECK_EQ(done->actual_length, 100);
    }
    CHECK(memcmp(in, out, sizeof out) == 0);
}

/* More than the 64 KiB echo FIFO in one OUT URB, drained by IN URBs in
 * flight at the same time. */
static void serial_echo_pipelined(daemon_t *d)
{
    usbip_client_t *c = it_import(d, BUSID_SERIAL, NULL);
    REQUIRE(c);
    const size_t total = 300 * KIB;
    uint8_t *data = it_malloc(total), *back = it_malloc(total);
    REQUIRE(data && back);
    it_fill_random(data, total, 77);
    enum { NIN = 4 };
    usbip_client_urb_t rx[NIN];
    size_t chunk = 16 * KIB, got = 0;
    uint8_t *staging[NIN];
    for (int i = 0; i < NIN; i++) {
        staging[i] = it_malloc(chunk);
        REQUIRE(staging[i]);
        rx[i] = (usbip_client_urb_t){.ep = 1, .dir_in = true, .buffer = staging[i],
                                     .length = (uint32_t)chunk};
        REQUIRE(it_submit(c, &rx[i]));
    }
    usbip_client_urb_t tx = {.ep = 1, .dir_in = false, .buffer = data, .length = (uint32_t)total};
    REQUIRE(it_submit(c, &tx));
    bool tx_done = false;
    int rounds = 0;
    while ((!tx_done || got < total) && rounds++ < 100000) {
        usbip_client_urb_t *done = NULL;
        REQUIRE(it_wait(c, &done, NULL, NULL));
        REQUIRE(done);
        if (done == &tx) {
            CHECK_EQ(tx.status, 0);
            CHECK_EQ(tx.actual_length, total);
            tx_done = true;
            continue;
        }
        REQUIRE(done >= rx && done < rx + NIN);
        REQUIRE_EQ(done->status, 0);
        REQUIRE(got + done->actual_length <= total);
        /* IN URBs of one endpoint complete in order, so data stays in order. */
        memcpy(back + got, done->buffer, done->actual_length);
        got += done->actual_length;
        if (got < total) {
            int k = (int)(done - rx);
            rx[k] = (usbip_client_urb_t){.ep = 1, .dir_in = true, .buffer = staging[k],
                                         .length = (uint32_t)chunk};
            REQUIRE(it_submit(c, &rx[k]));
        }
    }
    CHECK(tx_done);
    REQUIRE_EQ(got, total);
    CHECK(memcmp(back, data, total) == 0);
    /* The IN URBs still in flight are drained by more data. */
    size_t pending = usbip_client_urbs_in_flight(c);
    if (pending > 0) {
        uint8_t *more = it_malloc(pending * chunk);
        REQUIRE(more);
        it_fill_random(more, pending * chunk, 78);
        REQUIRE(it_submit(c, &(usbip_client_urb_t){.ep = 1, .dir_in = false, .buffer = more,
                                                  .length = (uint32_t)(pending * chunk)}));
        while (usbip_client_urbs_in_flight(c) > 0) {
            usbip_client_urb_t *done = NULL;
            REQUIRE(it_wait(c, &done, NULL, NULL));
            REQUIRE(done);
            CHECK_EQ(done->status, 0);
        }
    }
}

/* Tight limits (--max-urbs 2, --max-bytes-in-flight 96K, 64 KiB URBs): the
 * session reads no more than it may run, but every URB is served, in order. */
static void limits_queue_never_drop(daemon_t *d)
{
    usbip_client_t *c = it_import(d, BUSID_ZERO, NULL);
    REQUIRE(c);
    enum { N = 40 };
    usbip_client_urb_t *urbs = it_malloc(N * sizeof *urbs);
    uint8_t *pattern = it_malloc(64 * KIB);
    REQUIRE(urbs && pattern);
    it_fill_pattern(pattern, 64 * KIB, 512);
    for (int i = 0; i < N; i++) {
        bool in = i % 3 != 0;
        urbs[i] = (usbip_client_urb_t){.ep = 1, .dir_in = in, .length = 64 * KIB,
                                       .buffer = in ? it_malloc(64 * KIB) : pattern};
        REQUIRE(urbs[i].buffer);
        REQUIRE(it_submit(c, &urbs[i]));
    }
    int last_in = -1, last_out = -1;
    for (int i = 0; i < N; i++) {
        usbip_client_urb_t *done = NULL;
        REQUIRE(it_wait(c, &done, NULL, NULL));
        REQUIRE(done >= urbs && done < urbs + N);
        int k = (int)(done - urbs);
        int *last = done->dir_in ? &last_in : &last_out;
        CHECK(k > *last);
        *last = k;
        CHECK_EQ(done->status, 0);
        CHECK_EQ(done->actual_length, 64 * KIB);
        if (done->dir_in) {
            CHECK_EQ(it_pattern_mismatch(done->buffer, 64 * KIB, 512), -1);
        }
    }
    CHECK(it_zero_in_ok(c, 64 * KIB));
}

/* ctl sessions counts what went through the session. */
static void session_counters(daemon_t *d)
{
    usbip_client_t *c = it_import(d, BUSID_ZERO, NULL);
    REQUIRE(c);
    uint8_t buf[4096];
    uint32_t actual = 0;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(it_transfer(c, 1, true, buf, 1000, &actual), 0);
    }
    it_fill_pattern(buf, 512, 512);
    CHECK_EQ(it_transfer(c, 1, false, buf, 512, &actual), 0);
    CHECK_EQ(it_transfer(c, 1, false, buf, 512, &actual), 0);
    char out[4096];
    REQUIRE(daemon_ctl_ok(d, "sessions", out, sizeof out));
    CHECK_CONTAINS(out, "127.0.0.1 device=1-4 urbs=5 in=3000 out=1024 errors=0");
    printf("  %s", out);
}

int main(int argc, char **argv)
{
    it_init(argc, argv, 150);
    it_run("zero_source_in_flight", zero_source_in_flight, NULL);
    it_run("zero_sink_out", zero_sink_out, NULL);
    it_run("zero_mixed_directions", zero_mixed_directions, NULL);
    it_run("zero_loopback", zero_loopback, NULL);
    it_run("serial_echo", serial_echo, NULL);
    it_run("serial_echo_pipelined", serial_echo_pipelined, NULL);
    it_run("session_counters", session_counters, NULL);
    static const char *const tight[] = {"--max-urbs", "2", "--max-urb-size", "64K",
                                        "--max-bytes-in-flight", "96K", NULL};
    it_run("limits_queue_never_drop", limits_queue_never_drop, tight);
    return it_finish();
}
