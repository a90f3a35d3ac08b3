/* 1: OP_REP_DEVLIST bytes and records of the four default devices, IMPORT of
 * each, busy on a second IMPORT, release when the importer goes away. */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "integ_util.h"

typedef struct {
    const char *busid;
    uint32_t devnum;
    uint16_t vid, pid;
    uint8_t cls, subclass, protocol;
    uint8_t num_configs;
    uint8_t nintf;
    uint8_t intf[2][3];
} expected_dev_t;

static const expected_dev_t EXPECTED[4] = {
    {"1-1", 1, 0x1209, 0x5501, 0x00, 0x00, 0x00, 1, 1, {{0x03, 0x01, 0x01}}},
    {"1-2", 2, 0x1209, 0x5502, 0xef, 0x02, 0x01, 1, 2, {{0x02, 0x02, 0x01}, {0x0a, 0x00, 0x00}}},
    {"1-3", 3, 0x1209, 0x5503, 0x00, 0x00, 0x00, 1, 1, {{0x08, 0x06, 0x50}}},
    {"1-4", 4, 0x0525, 0xa4a0, 0xff, 0x00, 0x00, 2, 1, {{0xff, 0x00, 0x00}}},
};

static void check_record(const usbip_device_record_t *r, const expected_dev_t *e)
{
    CHECK_STR(r->busid, e->busid);
    CHECK_EQ(r->busnum, 1);
    CHECK_EQ(r->devnum, e->devnum);
    CHECK_EQ(r->speed, 3); /* high speed */
    CHECK_EQ(r->idVendor, e->vid);
    CHECK_EQ(r->idProduct, e->pid);
    CHECK_EQ(r->bcdDevice, 0x0100);
    CHECK_EQ(r->bDeviceClass, e->cls);
    CHECK_EQ(r->bDeviceSubClass, e->subclass);
    CHECK_EQ(r->bDeviceProtocol, e->protocol);
    CHECK_EQ(r->bConfigurationValue, 1);
    CHECK_EQ(r->bNumConfigurations, e->num_configs);
    CHECK_EQ(r->bNumInterfaces, e->nintf);
    size_t plen = strlen(r->path), blen = strlen(e->busid);
    CHECK(plen > blen + 1 && r->path[0] == '/' && strcmp(r->path + plen - blen, e->busid) == 0 &&
          r->path[plen - blen - 1] == '/');
}

/* The whole OP_REP_DEVLIST read raw: exact length, big-endian fields,
 * interface records with their padding byte, then EOF. */
static void devlist_raw_bytes(daemon_t *d)
{
    usbip_client_t *c = it_connect(d);
    REQUIRE(c);
    static const uint8_t req[8] = {0x01, 0x11, 0x80, 0x05, 0, 0, 0, 0};
    REQUIRE_OK(c, usbip_client_send_raw(c, req, sizeof req));
    const size_t expected_len = 12 + 4 * 312 + 5 * 4;
    uint8_t *buf = it_malloc(expected_len);
    REQUIRE_OK(c, usbip_client_recv_raw(c, buf, expected_len));
    size_t extra = 0;
    CHECK(it_expect_closed(c, 3000, &extra));
    CHECK_EQ(extra, 0);

    CHECK_EQ(it_be16(buf + 0), 0x0111);
    CHECK_EQ(it_be16(buf + 2), 0x0005);
    CHECK_EQ(it_be32(buf + 4), 0);
    CHECK_EQ(it_be32(buf + 8), 4);
    const uint8_t *p = buf + 12;
    for (int i = 0; i < 4; i++) {
        const expected_dev_t *e = &EXPECTED[i];
        /* path: NUL-terminated and zero-filled */
        size_t plen = strnlen((const char *)p, 256);
        CHECK(plen > 0 && plen < 256);
        for (size_t k = plen; k < 256; k++) {
            if (p[k] != 0) {
                it_fail(__FILE__, __LINE__, "device %d: path byte %zu is 0x%02x, not 0", i, k,
                        p[k]);
                break;
            }
        }
        CHECK_STR((const char *)p + 0x100, e->busid);
        for (size_t k = strlen(e->busid); k < 32; k++) {
            CHECK_EQ(p[0x100 + k], 0);
        }
        CHECK_EQ(it_be32(p + 0x120), 1);
        CHECK_EQ(it_be32(p + 0x124), e->devnum);
        CHECK_EQ(it_be32(p + 0x128), 3);
        CHECK_EQ(it_be16(p + 0x12c), e->vid);
        CHECK_EQ(it_be16(p + 0x12e), e->pid);
        CHECK_EQ(it_be16(p + 0x130), 0x0100);
        CHECK_EQ(p[0x132], e->cls);
        CHECK_EQ(p[0x133], e->subclass);
        CHECK_EQ(p[0x134], e->protocol);
        CHECK_EQ(p[0x135], 1);
        CHECK_EQ(p[0x136], e->num_configs);
        CHECK_EQ(p[0x137], e->nintf);
        p += 312;
        for (int k = 0; k < e->nintf; k++) {
            CHECK_EQ(p[0], e->intf[k][0]);
            CHECK_EQ(p[1], e->intf[k][1]);
            CHECK_EQ(p[2], e->intf[k][2]);
            CHECK_EQ(p[3], 0);
            p += 4;
        }
    }
}

static void devlist_records(daemon_t *d)
{
    it_dev_t devs[8];
    int n = it_devlist(d, devs, 8);
    REQUIRE_EQ(n, 4);
    for (int i = 0; i < 4; i++) {
        const it_dev_t *dev = it_find_dev(devs, n, EXPECTED[i].busid);
        REQUIRE(dev);
        check_record(&dev->rec, &EXPECTED[i]);
        REQUIRE_EQ(dev->nintf, EXPECTED[i].nintf);
        for (size_t k = 0; k < dev->nintf; k++) {
            CHECK_EQ(dev->intf[k].bInterfaceClass, EXPECTED[i].intf[k][0]);
            CHECK_EQ(dev->intf[k].bInterfaceSubClass, EXPECTED[i].intf[k][1]);
            CHECK_EQ(dev->intf[k].bInterfaceProtocol, EXPECTED[i].intf[k][2]);
        }
    }
}

static void import_each_device(daemon_t *d)
{
    usbip_client_t *c[4];
    for (int i = 0; i < 4; i++) {
        usbip_device_record_t rec;
        c[i] = it_import(d, EXPECTED[i].busid, &rec);
        REQUIRE(c[i]);
        check_record(&rec, &EXPECTED[i]);
        CHECK_EQ(usbip_client_devid(c[i]), (1u << 16) | EXPECTED[i].devnum);
        /* The URB phase works: GET_DESCRIPTOR(device) names the same ids. */
        uint8_t desc[18] = {0};
        uint32_t actual = 0;
        CHECK_EQ(it_control(c[i], 0x80, 6, 0x0100, 0, desc, 18, &actual), 0);
        CHECK_EQ(actual, 18);
        CHECK_EQ(it_le16(desc + 8), EXPECTED[i].vid);
        CHECK_EQ(it_le16(desc + 10), EXPECTED[i].pid);
    }
    /* Imported devices leave the list (as newer Linux usbipd does). */
    it_dev_t devs[8];
    CHECK_EQ(it_devlist(d, devs, 8), 0);
    char out[4096];
    REQUIRE(daemon_ctl_ok(d, "list", out, sizeof out));
    CHECK_CONTAINS(out, "1-1 keyboard 1209:5501 imported");
    CHECK_CONTAINS(out, "1-2 serial 1209:5502 imported");
    CHECK_CONTAINS(out, "1-3 storage 1209:5503 imported");
    CHECK_CONTAINS(out, "1-4 zero 0525:a4a0 imported");
    REQUIRE(daemon_ctl_ok(d, "sessions", out, sizeof out));
    CHECK_CONTAINS(out, "127.0.0.1 device=1-3");
    for (int i = 0; i < 4; i++) {
        it_close(c[i]);
    }
    for (int i = 0; i < 4; i++) {
        CHECK(it_wait_listed(d, EXPECTED[i].busid, true, 3000));
    }
}

static void import_busy_then_release(daemon_t *d)
{
    usbip_client_t *a = it_import(d, BUSID_ZERO, NULL);
    REQUIRE(a);
    REQUIRE(it_zero_in_ok(a, 4096));

    /* Second IMPORT through the library: ST_DEV_BUSY. */
    usbip_client_t *b = it_connect(d);
    REQUIRE(b);
    uint32_t status = 99;
    CHECK_EQ(usbip_client_import(b, BUSID_ZERO, NULL, &status), USBIP_ERR_BUSY);
    CHECK_EQ(status, 2);
    CHECK(it_expect_closed(b, 3000, NULL));
    it_close(b);

    /* And raw: exactly the 8-byte op_common, then close. */
    b = it_connect(d);
    REQUIRE(b);
    uint8_t req[40] = {0x01, 0x11, 0x80, 0x03};
    memcpy(req + 8, BUSID_ZERO, strlen(BUSID_ZERO));
    REQUIRE_OK(b, usbip_client_send_raw(b, req, sizeof req));
    uint8_t rep[8];
    REQUIRE_OK(b, usbip_client_recv_raw(b, rep, sizeof rep));
    static const uint8_t busy[8] = {0x01, 0x11, 0x00, 0x03, 0, 0, 0, 2};
    CHECK(memcmp(rep, busy, 8) == 0);
    size_t extra = 99;
    CHECK(it_expect_closed(b, 3000, &extra));
    CHECK_EQ(extra, 0);
    it_close(b);

    /* The importer still works, and the device is not listed. */
    CHECK(it_zero_in_ok(a, 4096));
    it_dev_t devs[8];
    int n = it_devlist(d, devs, 8);
    CHECK_EQ(n, 3);
    CHECK(!it_find_dev(devs, n, BUSID_ZERO));

    /* The importer goes: the device comes back and can be imported again. */
    it_close(a);
    CHECK(it_wait_listed(d, BUSID_ZERO, true, 3000));
    a = it_import(d, BUSID_ZERO, NULL);
    REQUIRE(a);
    CHECK(it_zero_in_ok(a, 65536));
}

/* OP_REP_IMPORT read raw: 8 + 312 bytes, busid at 0x108, no interface
 * records; then the URB phase is silent until asked. */
static void import_raw_reply(daemon_t *d)
{
    usbip_client_t *c = it_connect(d);
    REQUIRE(c);
    uint8_t req[40] = {0x01, 0x11, 0x80, 0x03};
    memcpy(req + 8, BUSID_SERIAL, strlen(BUSID_SERIAL));
    /* Sent in two pieces, as Linux `usbip attach` does (8 + 32). */
    REQUIRE_OK(c, usbip_client_send_raw(c, req, 8));
    it_sleep_ms(50);
    REQUIRE_OK(c, usbip_client_send_raw(c, req + 8, 32));
    uint8_t rep[320];
    REQUIRE_OK(c, usbip_client_recv_raw(c, rep, sizeof rep));
    CHECK_EQ(it_be16(rep + 0), 0x0111);
    CHECK_EQ(it_be16(rep + 2), 0x0003);
    CHECK_EQ(it_be32(rep + 4), 0);
    CHECK_STR((const char *)rep + 0x108, BUSID_SERIAL);
    CHECK_EQ(it_be32(rep + 0x128), 1);
    CHECK_EQ(it_be32(rep + 0x12c), 2);
    CHECK_EQ(it_be16(rep + 0x134), 0x1209);
    CHECK_EQ(it_be16(rep + 0x136), 0x5502);
    CHECK_EQ(rep[0x13f], 2); /* bNumInterfaces, but no interface records follow */
    struct pollfd pfd = {.fd = usbip_client_fd(c), .events = POLLIN};
    CHECK_EQ(poll(&pfd, 1, 300), 0);

    /* A raw GET_DESCRIPTOR(device) on the imported connection. */
    uint8_t hdr[48];
    const uint8_t setup[8] = {0x80, 6, 0x00, 0x01, 0, 0, 18, 0};
    it_urb_header(hdr, 1, 0x1234, (1u << 16) | 2, 1, 0, 0x200, 18, 0, 0, 0, setup);
    REQUIRE_OK(c, usbip_client_send_raw(c, hdr, sizeof hdr));
    uint8_t ret[48 + 18];
    REQUIRE_OK(c, usbip_client_recv_raw(c, ret, sizeof ret));
    CHECK_EQ(it_be32(ret + 0x00), 3);
    CHECK_EQ(it_be32(ret + 0x04), 0x1234);
    CHECK_EQ(it_be32(ret + 0x08), 0); /* devid, direction, ep zeroed in RET */
    CHECK_EQ(it_be32(ret + 0x0c), 0);
    CHECK_EQ(it_be32(ret + 0x10), 0);
    CHECK_EQ(it_be32(ret + 0x14), 0);  /* status */
    CHECK_EQ(it_be32(ret + 0x18), 18); /* actual_length */
    CHECK_EQ(it_be32(ret + 0x20), 0);  /* number_of_packets: 0 on non-iso */
    CHECK_EQ(ret[48], 18);
    CHECK_EQ(ret[49], 1);
    CHECK_EQ(it_le16(ret + 48 + 8), 0x1209);
    CHECK_EQ(it_le16(ret + 48 + 10), 0x5502);
}

static void import_unknown_busid(daemon_t *d)
{
    usbip_client_t *c = it_connect(d);
    REQUIRE(c);
    uint32_t status = 0;
    CHECK_EQ(usbip_client_import(c, "7-7", NULL, &status), USBIP_ERR_NOT_FOUND);
    CHECK_EQ(status, 4);
    CHECK(it_expect_closed(c, 3000, NULL));
}

/* Version 0x0100 requests are answered with the version echoed. */
static void devlist_version_0100(daemon_t *d)
{
    usbip_client_t *c = it_connect(d);
    REQUIRE(c);
    usbip_client_set_op_version(c, 0x0100);
    size_t n = 0;
    REQUIRE_OK(c, usbip_client_devlist(c, NULL, NULL, &n));
    CHECK_EQ(n, 4);
}

/* IMPORT and the first CMD_SUBMIT in one write, as a pipelining client may
 * send them: both are answered, in order. */
static void import_and_submit_in_one_write(daemon_t *d)
{
    usbip_client_t *c = it_connect(d);
    REQUIRE(c);
    uint8_t req[40 + 48] = {0x01, 0x11, 0x80, 0x03};
    memcpy(req + 8, BUSID_ZERO, strlen(BUSID_ZERO));
    const uint8_t setup[8] = {0x80, 6, 0x00, 0x01, 0, 0, 18, 0};
    it_urb_header(req + 40, 1, 77, (1u << 16) | 4, 1, 0, 0, 18, 0, 0, 0, setup);
    REQUIRE_OK(c, usbip_client_send_raw(c, req, sizeof req));
    uint8_t rep[320 + 48 + 18];
    REQUIRE_OK(c, usbip_client_recv_raw(c, rep, sizeof rep));
    CHECK_EQ(it_be32(rep + 4), 0);
    CHECK_STR((const char *)rep + 0x108, BUSID_ZERO);
    const uint8_t *ret = rep + 320;
    CHECK_EQ(it_be32(ret + 0), 3);
    CHECK_EQ(it_be32(ret + 4), 77);
    CHECK_EQ(it_be32(ret + 0x14), 0);
    CHECK_EQ(it_be32(ret + 0x18), 18);
    CHECK_EQ(it_le16(ret + 48 + 8), 0x0525);
}

/* A CMD_SUBMIT and its OUT payload trickling in one byte per write. */
static void submit_byte_by_byte(daemon_t *d)
{
    usbip_client_t *c = it_import(d, BUSID_ZERO, NULL);
    REQUIRE(c);
    uint8_t req[48 + 100];
    it_urb_header(req, 1, 5, usbip_client_devid(c), 0, 0, 0, 100, 0, 0, 0,
                  (const uint8_t[8]){0x40, 0x5b, 0, 0, 0, 0, 100, 0});
    it_fill_random(req + 48, 100, 3);
    for (size_t i = 0; i < sizeof req; i++) {
        REQUIRE_OK(c, usbip_client_send_raw(c, req + i, 1));
        if (i % 16 == 0) {
            it_sleep_ms(2);
        }
    }
    uint8_t ret[48];
    REQUIRE_OK(c, usbip_client_recv_raw(c, ret, sizeof ret));
    CHECK_EQ(it_be32(ret + 0), 3);
    CHECK_EQ(it_be32(ret + 4), 5);
    CHECK_EQ(it_be32(ret + 0x14), 0);
    CHECK_EQ(it_be32(ret + 0x18), 100); /* OUT: bytes taken, and no data follows */
    uint8_t back[100];
    uint32_t actual = 0;
    CHECK_EQ(it_control(c, 0xc0, 0x5c, 0, 0, back, 100, &actual), 0);
    CHECK_EQ(actual, 100);
    CHECK(memcmp(back, req + 48, 100) == 0);
}

int main(int argc, char **argv)
{
    it_init(argc, argv, 150);
    it_run("devlist_raw_bytes", devlist_raw_bytes, NULL);
    it_run("devlist_records", devlist_records, NULL);
    it_run("import_each_device", import_each_device, NULL);
    it_run("import_busy_then_release", import_busy_then_release, NULL);
    it_run("import_raw_reply", import_raw_reply, NULL);
    it_run("import_unknown_busid", import_unknown_busid, NULL);
    it_run("devlist_version_0100", devlist_version_0100, NULL);
    it_run("import_and_submit_in_one_write", import_and_submit_in_one_write, NULL);
    it_run("submit_byte_by_byte", submit_byte_by_byte, NULL);
    return it_finish();
}
