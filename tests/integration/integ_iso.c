/* 5: isochronous transfers on Gadget Zero alt setting 1 (ep 3 IN/OUT,
 * wMaxPacketSize 1024): packing of IN data, echoed offsets, per-packet
 * pattern and status, checked through the library and raw on the wire. */
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "integ_util.h"

#define NPKT 8
static const uint32_t LENGTHS[NPKT] = {1024, 512, 100, 1024, 0, 1, 1023, 700};
#define SLOT 1024u /* packet i at offset i * SLOT: gaps between short packets */

static usbip_client_t *import_alt1(daemon_t *d)
{
    usbip_client_t *c = it_import(d, BUSID_ZERO, NULL);
    if (!c) {
        return NULL;
    }
    uint32_t actual = 0;
    uint8_t alt = 0xff;
    CHECK_EQ(it_control(c, 0x81, 10, 0, 0, &alt, 1, &actual), 0); /* GET_INTERFACE */
    CHECK_EQ(alt, 0);
    if (it_control(c, 0x01, 11, 1, 0, NULL, 0, &actual) != 0) { /* SET_INTERFACE 0 alt 1 */
        it_fail(__FILE__, __LINE__, "SET_INTERFACE alt 1 failed");
        return NULL;
    }
    CHECK_EQ(it_control(c, 0x81, 10, 0, 0, &alt, 1, &actual), 0);
    CHECK_EQ(alt, 1);
    return c;
}

static uint32_t sum_lengths(void)
{
    uint32_t sum = 0;
    for (int i = 0; i < NPKT; i++) {
        sum += LENGTHS[i];
    }
    return sum;
}

static void iso_in(daemon_t *d)
{
    usbip_client_t *c = import_alt1(d);
    REQUIRE(c);
    char out[512];
    CHECK(daemon_ctl_ok(d, "status 1-4", out, sizeof out));
    CHECK_CONTAINS(out, "config 1 alt 1");
    uint8_t *buf = it_malloc(NPKT * SLOT);
    REQUIRE(buf);
    memset(buf, 0xee, NPKT * SLOT);
    usbip_iso_packet_t iso[NPKT];
    for (int i = 0; i < NPKT; i++) {
        iso[i] = (usbip_iso_packet_t){.offset = (uint32_t)i * SLOT, .length = LENGTHS[i]};
    }
    usbip_client_urb_t u = {.ep = 3, .dir_in = true, .buffer = buf, .length = NPKT * SLOT,
                            .flags = 0x0002, .interval = 4, .num_iso_packets = NPKT, .iso = iso};
    REQUIRE(it_submit(c, &u));
    usbip_client_urb_t *done = NULL;
    REQUIRE(it_wait(c, &done, NULL, NULL));
    REQUIRE(done == &u);
    CHECK_EQ(u.status, 0);
    CHECK_EQ(u.actual_length, sum_lengths());
    CHECK_EQ(u.error_count, 0);
    for (int i = 0; i < NPKT; i++) {
        CHECK_EQ(iso[i].actual_length, LENGTHS[i]);
        CHECK_EQ(iso[i].status, 0);
        const uint8_t *p = buf + i * SLOT;
        /* The pattern restarts with each packet (wMaxPacketSize 1024). */
        CHECK_EQ(it_pattern_mismatch(p, LENGTHS[i], 1024), -1);
        for (uint32_t k = LENGTHS[i]; k < SLOT; k++) {
            if (p[k] != 0xee) {
                it_fail(__FILE__, __LINE__, "packet %d: byte %u past its data was written", i, k);
                break;
            }
        }
    }
}

/* The same request raw: RET_SUBMIT header, IN data packed back to back,
 * then the descriptors with offset and length echoed. */
static void iso_in_wire_format(daemon_t *d)
{
    usbip_client_t *c = import_alt1(d);
    REQUIRE(c);
    const uint32_t devid = usbip_client_devid(c);
    uint8_t req[48 + NPKT * 16];
    it_urb_header(req, 1, 0x4242, devid, 1, 3, 0x0202, NPKT * SLOT, 0, NPKT, 4, NULL);
    for (int i = 0; i < NPKT; i++) {
        uint8_t *desc = req + 48 + 16 * i;
        it_put_be32(desc + 0, (uint32_t)i * SLOT);
        it_put_be32(desc + 4, LENGTHS[i]);
        it_put_be32(desc + 8, 0);
        it_put_be32(desc + 12, 0);
    }
    REQUIRE_OK(c, usbip_client_send_raw(c, req, sizeof req));
    const uint32_t sum = sum_lengths();
    const size_t reply_len = 48 + sum + NPKT * 16;
    uint8_t *rep = it_malloc(reply_len);
    REQUIRE(rep);
    REQUIRE_OK(c, usbip_client_recv_raw(c, rep, reply_len));
    CHECK_EQ(it_be32(rep + 0x00), 3);
    CHECK_EQ(it_be32(rep + 0x04), 0x4242);
    CHECK_EQ(it_be32(rep + 0x08), 0);
    CHECK_EQ(it_be32(rep + 0x0c), 0);
    CHECK_EQ(it_be32(rep + 0x10), 0);
    CHECK_EQ(it_be32(rep + 0x14), 0);       /* status */
    CHECK_EQ(it_be32(rep + 0x18), sum);     /* actual_length = sum of the packets */
    CHECK_EQ(it_be32(rep + 0x20), NPKT);    /* number_of_packets echoed */
    CHECK_EQ(it_be32(rep + 0x24), 0);       /* error_count */
    const uint8_t *data = rep + 48;
    size_t pos = 0;
    for (int i = 0; i < NPKT; i++) {
        CHECK_EQ(it_pattern_mismatch(data + pos, LENGTHS[i], 1024), -1);
        pos += LENGTHS[i];
    }
    const uint8_t *desc = rep + 48 + sum;
    for (int i = 0; i < NPKT; i++) {
        CHECK_EQ(it_be32(desc + 16 * i + 0), (uint32_t)i * SLOT);
        CHECK_EQ(it_be32(desc + 16 * i + 4), LENGTHS[i]);
        CHECK_EQ(it_be32(desc + 16 * i + 8), LENGTHS[i]);
        CHECK_EQ(it_be32(desc + 16 * i + 12), 0);
    }
    /* Nothing after it. */
    struct pollfd pfd = {.fd = usbip_client_fd(c), .events = POLLIN};
    CHECK_EQ(poll(&pfd, 1, 200), 0);

    /* Iso OUT, raw: the reply carries descriptors and no data. */
    uint8_t *out = it_malloc(48 + NPKT * SLOT + NPKT * 16);
    REQUIRE(out);
    it_urb_header(out, 1, 0x4244, devid, 0, 3, 0x0002, NPKT * SLOT, 0, NPKT, 4, NULL);
    for (int i = 0; i < NPKT; i++) {
        it_fill_pattern(out + 48 + i * SLOT, SLOT, 1024);
        uint8_t *dsc = out + 48 + NPKT * SLOT + 16 * i;
        memset(dsc, 0, 16);
        it_put_be32(dsc + 0, (uint32_t)i * SLOT);
        it_put_be32(dsc + 4, LENGTHS[i]);
    }
    REQUIRE_OK(c, usbip_client_send_raw(c, out, 48 + NPKT * SLOT + NPKT * 16));
    uint8_t orep[48 + NPKT * 16];
    REQUIRE_OK(c, usbip_client_recv_raw(c, orep, sizeof orep));
    CHECK_EQ(it_be32(orep + 0x00), 3);
    CHECK_EQ(it_be32(orep + 0x04), 0x4244);
    CHECK_EQ(it_be32(orep + 0x14), 0);
    CHECK_EQ(it_be32(orep + 0x18), sum);
    CHECK_EQ(it_be32(orep + 0x20), NPKT);
    CHECK_EQ(it_be32(orep + 0x24), 0);
    for (int i = 0; i < NPKT; i++) {
        const uint8_t *dsc = orep + 48 + 16 * i;
        CHECK_EQ(it_be32(dsc + 0), (uint32_t)i * SLOT);
        CHECK_EQ(it_be32(dsc + 4), LENGTHS[i]);
        CHECK_EQ(it_be32(dsc + 8), LENGTHS[i]);
        CHECK_EQ(it_be32(dsc + 12), 0);
    }
    CHECK_EQ(poll(&pfd, 1, 200), 0);
}

static void iso_out(daemon_t *d)
{
    usbip_client_t *c = import_alt1(d);
    REQUIRE(c);
    uint8_t *buf = it_malloc(NPKT * SLOT);
    REQUIRE(buf);
    usbip_iso_packet_t iso[NPKT];
    for (int i = 0; i < NPKT; i++) {
        iso[i] = (usbip_iso_packet_t){.offset = (uint32_t)i * SLOT, .length = LENGTHS[i]};
        it_fill_pattern(buf + i * SLOT, SLOT, 1024);
    }
    usbip_client_urb_t u = {.ep = 3, .dir_in = false, .buffer = buf, .length = NPKT * SLOT,
                            .flags = 0x0002, .num_iso_packets = NPKT, .iso = iso};
    REQUIRE(it_submit(c, &u));
    usbip_client_urb_t *done = NULL;
    REQUIRE(it_wait(c, &done, NULL, NULL));
    REQUIRE(done == &u);
    CHECK_EQ(u.status, 0);
    CHECK_EQ(u.error_count, 0);
    CHECK_EQ(u.actual_length, sum_lengths());
    for (int i = 0; i < NPKT; i++) {
        CHECK_EQ(iso[i].actual_length, LENGTHS[i]);
        CHECK_EQ(iso[i].status, 0);
    }
    /* Packet 6 off the pattern: only that packet fails (-EILSEQ). */
    buf[6 * SLOT + 500] ^= 0x01;
    REQUIRE(it_submit(c, &u));
    REQUIRE(it_wait(c, &done, NULL, NULL));
    REQUIRE(done == &u);
    CHECK_EQ(u.status, 0);
    CHECK_EQ(u.error_count, 1);
    for (int i = 0; i < NPKT; i++) {
        CHECK_EQ(iso[i].status, i == 6 ? -84 : 0);
    }
    char out[512];
    CHECK(daemon_ctl_ok(d, "status 1-4", out, sizeof out));
    CHECK_CONTAINS(out, "pattern errors 1");
}

/* Many iso URBs in flight in both directions, and the 1024-packet maximum. */
static void iso_many_in_flight(daemon_t *d)
{
    usbip_client_t *c = import_alt1(d);
    REQUIRE(c);
    enum { N = 16, P = 32, PLEN = 192 };
    usbip_client_urb_t urbs[N];
    usbip_iso_packet_t *iso = it_malloc(sizeof *iso * N * P);
    REQUIRE(iso);
    for (int i = 0; i < N; i++) {
        bool in = i % 2 == 0;
        uint8_t *buf = it_malloc(P * PLEN);
        REQUIRE(buf);
        for (int k = 0; k < P; k++) {
            iso[i * P + k] = (usbip_iso_packet_t){.offset = (uint32_t)k * PLEN, .length = PLEN};
            if (!in) {
                it_fill_pattern(buf + k * PLEN, PLEN, 1024);
            }
        }
        urbs[i] = (usbip_client_urb_t){.ep = 3, .dir_in = in, .buffer = buf, .length = P * PLEN,
                                       .flags = 0x0002, .num_iso_packets = P,
                                       .iso = iso + i * P};
        REQUIRE(it_submit(c, &urbs[i]));
    }
    for (int i = 0; i < N; i++) {
        usbip_client_urb_t *done = NULL;
        REQUIRE(it_wait(c, &done, NULL, NULL));
        REQUIRE(done >= urbs && done < urbs + N);
        CHECK_EQ(done->status, 0);
        CHECK_EQ(done->error_count, 0);
        CHECK_EQ(done->actual_length, P * PLEN);
        if (done->dir_in) {
            for (int k = 0; k < P; k++) {
                CHECK_EQ(it_pattern_mismatch((uint8_t *)done->buffer + k * PLEN, PLEN, 1024), -1);
            }
        }
    }
    /* 1024 packets of 3 bytes. */
    enum { MAXP = 1024 };
    usbip_iso_packet_t *many = it_malloc(sizeof *many * MAXP);
    uint8_t *buf = it_malloc(MAXP * 3);
    REQUIRE(many && buf);
    for (int k = 0; k < MAXP; k++) {
        many[k] = (usbip_iso_packet_t){.offset = (uint32_t)k * 3, .length = 3};
    }
    usbip_client_urb_t u = {.ep = 3, .dir_in = true, .buffer = buf, .length = MAXP * 3,
                            .flags = 0x0002, .num_iso_packets = MAXP, .iso = many};
    REQUIRE(it_submit(c, &u));
    usbip_client_urb_t *done = NULL;
    REQUIRE(it_wait(c, &done, NULL, NULL));
    REQUIRE(done == &u);
    CHECK_EQ(u.status, 0);
    CHECK_EQ(u.actual_length, MAXP * 3);
    for (int k = 0; k < MAXP; k++) {
        CHECK(buf[k * 3] == 0 && buf[k * 3 + 1] == 1 && buf[k * 3 + 2] == 2);
    }
    /* Back to alt 0: the iso endpoint is gone, bulk still works. */
    uint32_t actual = 0;
    CHECK_EQ(it_control(c, 0x01, 11, 0, 0, NULL, 0, &actual), 0);
    CHECK(it_zero_in_ok(c, 2048));
}

/* --max-iso-packets 16: 16 packets pass, 17 close the connection. */
static void iso_packet_limit(daemon_t *d)
{
    usbip_client_t *c = import_alt1(d);
    REQUIRE(c);
    uint8_t buf[17 * 64];
    usbip_iso_packet_t iso[17];
    for (int i = 0; i < 17; i++) {
        iso[i] = (usbip_iso_packet_t){.offset = (uint32_t)i * 64, .length = 64};
    }
    usbip_client_urb_t u = {.ep = 3, .dir_in = true, .buffer = buf, .length = 16 * 64,
                            .flags = 0x2, .num_iso_packets = 16, .iso = iso};
    REQUIRE(it_submit(c, &u));
    usbip_client_urb_t *done = NULL;
    REQUIRE(it_wait(c, &done, NULL, NULL));
    CHECK(done == &u && u.status == 0 && u.actual_length == 16 * 64);
    size_t mark = daemon_log_mark(d);
    u = (usbip_client_urb_t){.ep = 3, .dir_in = true, .buffer = buf, .length = 17 * 64,
                             .flags = 0x2, .num_iso_packets = 17, .iso = iso};
    REQUIRE(it_submit(c, &u));
    size_t bytes = 0;
    CHECK(it_expect_closed(c, 3000, &bytes));
    CHECK_EQ(bytes, 0);
    CHECK(daemon_log_wait(d, mark, "closing connection: number_of_packets 17", 2000));
}

int main(int argc, char **argv)
{
    it_init(argc, argv, 150);
    it_run("iso_in", iso_in, NULL);
    it_run("iso_in_wire_format", iso_in_wire_format, NULL);
    it_run("iso_out", iso_out, NULL);
    it_run("iso_many_in_flight", iso_many_in_flight, NULL);
    static const char *const limit[] = {"--max-iso-packets", "16", NULL};
    it_run("iso_packet_limit", iso_packet_limit, limit);
    return it_finish();
}
