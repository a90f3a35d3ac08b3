/* 2: control transfers on ep 0 of every device: device, configuration,
 * string, qualifier and HID descriptors, standard requests, stalls, and the
 * Gadget Zero vendor requests 0x5b/0x5c. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "integ_util.h"

typedef struct {
    const char *busid;
    uint16_t vid, pid;
    uint8_t cls, subclass, protocol;
    uint8_t num_configs;
    const char *product;
    /* Descriptor walk of each configuration, as summarize() prints it. */
    const char *configs[2];
    uint8_t config_values[2];
    uint8_t num_interfaces[2];
} expected_t;

static const expected_t DEVICES[4] = {
    {"1-1", 0x1209, 0x5501, 0, 0, 0, 1, "Virtual Keyboard",
     {"I0.0 03/01/01 n1; D21; E81 3 8 4"}, {1}, {1}},
    {"1-2", 0x1209, 0x5502, 0xef, 0x02, 0x01, 1, "Virtual Serial Port",
     {"A0+2 02/02/01; I0.0 02/02/01 n1; D24; D24; D24; D24; E82 3 16 9; "
      "I1.0 0a/00/00 n2; E81 2 512 0; E01 2 512 0"},
     {1}, {2}},
    {"1-3", 0x1209, 0x5503, 0, 0, 0, 1, "Virtual Disk",
     {"I0.0 08/06/50 n2; E81 2 512 0; E02 2 512 0"}, {1}, {1}},
    {"1-4", 0x0525, 0xa4a0, 0xff, 0, 0, 2, "Gadget Zero",
     {"I0.0 ff/00/00 n4; E81 2 512 0; E01 2 512 0; E82 3 64 1; E02 3 64 1; "
      "I0.1 ff/00/00 n6; E81 2 512 0; E01 2 512 0; E82 3 64 1; E02 3 64 1; "
      "E83 1 1024 4; E03 1 1024 4",
      "I0.0 ff/00/00 n2; E81 2 512 0; E01 2 512 0"},
     {1, 2}, {1, 1}},
};

/* One line describing every descriptor after the configuration header.
 * False if the descriptors do not tile the buffer exactly. */
static bool summarize(const uint8_t *p, size_t len, char *out, size_t outlen)
{
    size_t pos = p[0], used = 0;
    out[0] = '\0';
    while (pos < len) {
        const uint8_t *d = p + pos;
        if (d[0] < 2 || pos + d[0] > len) {
            return false;
        }
        char item[64];
        switch (d[1]) {
        case 4:
            snprintf(item, sizeof item, "I%u.%u %02x/%02x/%02x n%u", d[2], d[3], d[5], d[6], d[7],
                     d[4]);
            break;
        case 5:
            snprintf(item, sizeof item, "E%02x %u %u %u", d[2], d[3] & 3u, it_le16(d + 4), d[6]);
            break;
        case 0x0b:
            snprintf(item, sizeof item, "A%u+%u %02x/%02x/%02x", d[2], d[3], d[4], d[5], d[6]);
            break;
        default:
            snprintf(item, sizeof item, "D%02x", d[1]);
            break;
        }
        used += (size_t)snprintf(out + used, outlen - used, "%s%s", used ? "; " : "", item);
        pos += d[0];
    }
    return pos == len;
}

static void string_descriptor(usbip_client_t *c, uint8_t index, char *out, size_t outlen)
{
    uint8_t buf[255] = {0};
    uint32_t actual = 0;
    out[0] = '\0';
    int32_t st = it_control(c, 0x80, 6, (uint16_t)(0x0300 | index), 0x0409, buf, 255, &actual);
    CHECK_EQ(st, 0);
    CHECK_EQ(actual, buf[0]);
    CHECK_EQ(buf[1], 3);
    size_t n = 0;
    for (size_t i = 2; i + 1 < actual && n + 1 < outlen; i += 2) {
        CHECK_EQ(buf[i + 1], 0); /* plain ASCII in UTF-16LE */
        out[n++] = (char)buf[i];
    }
    out[n] = '\0';
}

static void check_device(daemon_t *d, const expected_t *e)
{
    usbip_client_t *c = it_import(d, e->busid, NULL);
    REQUIRE(c);

    /* Device descriptor, whole and truncated to 8 bytes. */
    uint8_t dev[64] = {0};
    uint32_t actual = 0;
    REQUIRE_EQ(it_control(c, 0x80, 6, 0x0100, 0, dev, 64, &actual), 0);
    REQUIRE_EQ(actual, 18);
    CHECK_EQ(dev[0], 18);
    CHECK_EQ(dev[1], 1);
    CHECK_EQ(it_le16(dev + 2), 0x0200);
    CHECK_EQ(dev[4], e->cls);
    CHECK_EQ(dev[5], e->subclass);
    CHECK_EQ(dev[6], e->protocol);
    CHECK_EQ(dev[7], 64);
    CHECK_EQ(it_le16(dev + 8), e->vid);
    CHECK_EQ(it_le16(dev + 10), e->pid);
    CHECK_EQ(it_le16(dev + 12), 0x0100);
    CHECK_EQ(dev[14], 1);
    CHECK_EQ(dev[15], 2);
    CHECK_EQ(dev[16], 3);
    CHECK_EQ(dev[17], e->num_configs);
    uint8_t first8[18];
    memset(first8, 0xee, sizeof first8);
    CHECK_EQ(it_control(c, 0x80, 6, 0x0100, 0, first8, 8, &actual), 0);
    CHECK_EQ(actual, 8);
    CHECK(memcmp(first8, dev, 8) == 0);
    CHECK_EQ(first8[8], 0xee);

    /* Every configuration: header first, then the whole thing. */
    for (uint8_t i = 0; i < e->num_configs; i++) {
        uint8_t head[9] = {0};
        REQUIRE_EQ(it_control(c, 0x80, 6, (uint16_t)(0x0200 | i), 0, head, 9, &actual), 0);
        REQUIRE_EQ(actual, 9);
        CHECK_EQ(head[0], 9);
        CHECK_EQ(head[1], 2);
        CHECK_EQ(head[4], e->num_interfaces[i]);
        CHECK_EQ(head[5], e->config_values[i]);
        CHECK(head[7] & 0x80);
        uint16_t total = it_le16(head + 2);
        REQUIRE(total > 9 && total <= 1024);
        uint8_t *cfg = it_malloc(1024);
        REQUIRE(cfg);
        REQUIRE_EQ(it_control(c, 0x80, 6, (uint16_t)(0x0200 | i), 0, cfg, 1024, &actual), 0);
        REQUIRE_EQ(actual, total);
        CHECK(memcmp(cfg, head, 9) == 0);
        char summary[1024];
        CHECK(summarize(cfg, total, summary, sizeof summary));
        CHECK_STR(summary, e->configs[i]);
        /* Other-speed configuration: same layout, type 7. */
        uint8_t other[9] = {0};
        CHECK_EQ(it_control(c, 0x80, 6, (uint16_t)(0x0700 | i), 0, other, 9, &actual), 0);
        CHECK_EQ(other[1], 7);
        CHECK_EQ(it_le16(other + 2), total);
    }
    /* A configuration index past the last one stalls. */
    uint8_t scratch[64];
    CHECK_EQ(it_control(c, 0x80, 6, (uint16_t)(0x0200 | e->num_configs), 0, scratch, 9, &actual),
             -32);
    CHECK_EQ(actual, 0);

    /* Strings: language ids, manufacturer, product, serial number. */
    uint8_t lang[4] = {0};
    CHECK_EQ(it_control(c, 0x80, 6, 0x0300, 0, lang, 255, &actual), 0);
    CHECK_EQ(actual, 4);
    CHECK(lang[0] == 4 && lang[1] == 3 && lang[2] == 0x09 && lang[3] == 0x04);
    char text[128];
    string_descriptor(c, 1, text, sizeof text);
    CHECK_STR(text, "usbip-esp32p4");
    string_descriptor(c, 2, text, sizeof text);
    CHECK_STR(text, e->product);
    string_descriptor(c, 3, text, sizeof text);
    CHECK_EQ(strlen(text), 12);
    for (size_t i = 0; i < strlen(text); i++) {
        CHECK(isxdigit((unsigned char)text[i]));
    }
    /* An unknown string stalls; ep 0 recovers at the next SETUP. */
    CHECK_EQ(it_control(c, 0x80, 6, 0x0309, 0x0409, scratch, 255, &actual), -32);

    /* Device qualifier, GET_STATUS, GET_CONFIGURATION. */
    uint8_t q[10] = {0};
    CHECK_EQ(it_control(c, 0x80, 6, 0x0600, 0, q, 10, &actual), 0);
    CHECK_EQ(actual, 10);
    CHECK(q[0] == 10 && q[1] == 6 && it_le16(q + 2) == 0x0200 && q[8] == e->num_configs);
    uint8_t status[2] = {0xff, 0xff};
    CHECK_EQ(it_control(c, 0x80, 0, 0, 0, status, 2, &actual), 0);
    CHECK_EQ(actual, 2);
    CHECK(status[0] == 0 && status[1] == 0);
    uint8_t config = 0;
    CHECK_EQ(it_control(c, 0x80, 8, 0, 0, &config, 1, &actual), 0);
    CHECK_EQ(actual, 1);
    CHECK_EQ(config, 1);
    /* SET_ADDRESS is acknowledged as a no-op. */
    CHECK_EQ(it_control(c, 0x00, 5, 7, 0, NULL, 0, &actual), 0);
    CHECK_EQ(it_control(c, 0x80, 6, 0x0100, 0, dev, 18, &actual), 0);
    CHECK_EQ(actual, 18);
}

static void descriptors_keyboard(daemon_t *d) { check_device(d, &DEVICES[0]); }
static void descriptors_serial(daemon_t *d) { check_device(d, &DEVICES[1]); }
static void descriptors_storage(daemon_t *d) { check_device(d, &DEVICES[2]); }
static void descriptors_zero(daemon_t *d) { check_device(d, &DEVICES[3]); }

static void keyboard_hid_descriptors(daemon_t *d)
{
    usbip_client_t *c = it_import(d, BUSID_KEYBOARD, NULL);
    REQUIRE(c);
    uint8_t hid[9] = {0};
    uint32_t actual = 0;
    CHECK_EQ(it_control(c, 0x81, 6, 0x2100, 0, hid, 9, &actual), 0);
    CHECK_EQ(actual, 9);
    CHECK(hid[0] == 9 && hid[1] == 0x21 && it_le16(hid + 2) == 0x0111 && hid[5] == 1 &&
          hid[6] == 0x22);
    uint16_t report_len = it_le16(hid + 7);
    uint8_t report[256] = {0};
    CHECK_EQ(it_control(c, 0x81, 6, 0x2200, 0, report, 256, &actual), 0);
    CHECK_EQ(actual, report_len);
    static const uint8_t start[] = {0x05, 0x01, 0x09, 0x06, 0xa1, 0x01};
    CHECK(memcmp(report, start, sizeof start) == 0);
    CHECK(actual > 0 && report[actual - 1] == 0xc0);
    /* HID class: SET_IDLE, GET_IDLE, SET/GET_PROTOCOL, SET_REPORT (LEDs). */
    CHECK_EQ(it_control(c, 0x21, 0x0a, 0x7d00, 0, NULL, 0, &actual), 0);
    uint8_t one = 0;
    CHECK_EQ(it_control(c, 0xa1, 0x02, 0, 0, &one, 1, &actual), 0);
    CHECK_EQ(one, 0x7d);
    CHECK_EQ(it_control(c, 0x21, 0x0b, 0, 0, NULL, 0, &actual), 0);
    CHECK_EQ(it_control(c, 0xa1, 0x03, 0, 0, &one, 1, &actual), 0);
    CHECK_EQ(one, 0);
    uint8_t leds = 0x02;
    size_t mark = daemon_log_mark(d);
    CHECK_EQ(it_control(c, 0x21, 0x09, 0x0200, 0, &leds, 1, &actual), 0);
    CHECK(daemon_log_wait(d, mark, "LEDs num=0 caps=1 scroll=0", 2000));
    char out[512];
    CHECK(daemon_ctl_ok(d, "status 1-1", out, sizeof out));
    CHECK_CONTAINS(out, "leds 0x02");
    CHECK_CONTAINS(out, "boot protocol");
}

static void zero_vendor_requests(daemon_t *d)
{
    usbip_client_t *c = it_import(d, BUSID_ZERO, NULL);
    REQUIRE(c);
    uint8_t *data = it_malloc(4096), *back = it_malloc(4096);
    REQUIRE(data && back);
    const uint16_t sizes[] = {100, 1, 64, 4096, 0};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        uint16_t n = sizes[k];
        it_fill_random(data, n, 1234u + n);
        uint32_t actual = 0;
        CHECK_EQ(it_control(c, 0x40, 0x5b, 0, 0, data, n, &actual), 0);
        CHECK_EQ(actual, n);
        memset(back, 0xee, 4096);
        CHECK_EQ(it_control(c, 0xc0, 0x5c, 0, 0, back, 4096, &actual), 0);
        CHECK_EQ(actual, n);
        CHECK(memcmp(back, data, n) == 0);
        /* Reading less than was written returns just that much. */
        if (n > 10) {
            memset(back, 0xee, 4096);
            CHECK_EQ(it_control(c, 0xc0, 0x5c, 0, 0, back, 10, &actual), 0);
            CHECK_EQ(actual, 10);
            CHECK(memcmp(back, data, 10) == 0 && back[10] == 0xee);
        }
    }
    /* Larger than the 4 KiB buffer, and an unknown vendor request: stall. */
    uint8_t *big = it_malloc(4097);
    REQUIRE(big);
    uint32_t actual = 0;
    CHECK_EQ(it_control(c, 0x40, 0x5b, 0, 0, big, 4097, &actual), -32);
    CHECK_EQ(it_control(c, 0xc0, 0x77, 0, 0, back, 16, &actual), -32);
    CHECK_EQ(it_control(c, 0xc0, 0x5c, 0, 0, back, 4096, &actual), 0);
}

/* transfer_buffer_length and wLength disagree: the server reads exactly
 * transfer_buffer_length OUT bytes, never returns more IN bytes than
 * transfer_buffer_length, and stays in step. */
static void control_lengths_disagree(daemon_t *d)
{
    usbip_client_t *c = it_import(d, BUSID_ZERO, NULL);
    REQUIRE(c);
    const uint32_t devid = usbip_client_devid(c);
    /* OUT: wLength 10, 20 bytes of payload. */
    uint8_t req[48 + 20];
    it_urb_header(req, 1, 0x500, devid, 0, 0, 0, 20, 0, 0, 0,
                  (const uint8_t[8]){0x40, 0x5b, 0, 0, 0, 0, 10, 0});
    for (int i = 0; i < 20; i++) {
        req[48 + i] = (uint8_t)(0xa0 + i);
    }
    REQUIRE_OK(c, usbip_client_send_raw(c, req, sizeof req));
    uint8_t ret[48 + 255];
    REQUIRE_OK(c, usbip_client_recv_raw(c, ret, 48));
    CHECK_EQ(it_be32(ret + 0), 3);
    CHECK_EQ(it_be32(ret + 4), 0x500);
    CHECK_EQ(it_be32(ret + 0x14), 0);
    CHECK(it_be32(ret + 0x18) <= 20);
    /* IN: wLength 255 (device descriptor is 18), buffer of 8. */
    uint8_t hdr[48];
    it_urb_header(hdr, 1, 0x501, devid, 1, 0, 0, 8, 0, 0, 0,
                  (const uint8_t[8]){0x80, 6, 0, 1, 0, 0, 255, 0});
    REQUIRE_OK(c, usbip_client_send_raw(c, hdr, sizeof hdr));
    REQUIRE_OK(c, usbip_client_recv_raw(c, ret, 48));
    CHECK_EQ(it_be32(ret + 4), 0x501);
    CHECK_EQ(it_be32(ret + 0x14), 0);
    uint32_t got = it_be32(ret + 0x18);
    REQUIRE(got <= 8);
    REQUIRE_OK(c, usbip_client_recv_raw(c, ret + 48, got));
    CHECK(got == 8 && ret[48] == 18 && ret[49] == 1);
    /* Still in step: the vendor buffer holds the first 10 bytes sent. */
    uint8_t back[64] = {0};
    uint32_t actual = 0;
    CHECK_EQ(it_control(c, 0xc0, 0x5c, 0, 0, back, 64, &actual), 0);
    CHECK_EQ(actual, 10);
    CHECK(back[0] == 0xa0 && back[9] == 0xa9);
}

int main(int argc, char **argv)
{
    it_init(argc, argv, 150);
    it_run("descriptors_keyboard", descriptors_keyboard, NULL);
    it_run("descriptors_serial", descriptors_serial, NULL);
    it_run("descriptors_storage", descriptors_storage, NULL);
    it_run("descriptors_zero", descriptors_zero, NULL);
    it_run("keyboard_hid_descriptors", keyboard_hid_descriptors, NULL);
    it_run("zero_vendor_requests", zero_vendor_requests, NULL);
    it_run("control_lengths_disagree", control_lengths_disagree, NULL);
    return it_finish();
}
