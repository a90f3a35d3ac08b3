/*
 * Unit tests of the virtual USB devices (host/vdev), driven through their
 * usbip_backend_ops_t exactly as a session drives them: alloc_buffer, fill
 * the request fields, submit, vdev_poll, check the completion.
 */
#define _POSIX_C_SOURCE 200809L /* mkstemp, ftruncate, pread */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_harness.h"
#include "usbip_backend.h"
#include "vdev.h"

/* ---- a minimal "session" ---- */

typedef struct {
    usbip_urb_t urb;
    vdev_t *dev;
    int completions;
    bool pending; /* submitted, not completed yet */
    usbip_iso_packet_t iso[8];
    bool resubmit_once; /* the complete callback submits the URB again */
} test_urb_t;

static bool g_in_submit;       /* inside ops->submit or ops->cancel */
static int g_sync_completions; /* completions delivered from inside them: must stay 0 */

static void submit_or_fail(test_urb_t *t);

static void on_complete(usbip_urb_t *urb)
{
    test_urb_t *t = urb->complete_ctx;
    if (g_in_submit) {
        g_sync_completions++;
    }
    t->completions++;
    t->pending = false;
    if (t->resubmit_once) {
        t->resubmit_once = false;
        submit_or_fail(t);
    }
}

static const usbip_backend_ops_t *ops_of(vdev_t *dev) { return vdev_device(dev)->ops; }
static void *ctx_of(vdev_t *dev) { return vdev_device(dev)->ctx; }

static test_urb_t *new_urb(vdev_t *dev, uint8_t ep_address, usbip_xfer_type_t type,
                           uint32_t length)
{
    test_urb_t *t = calloc(1, sizeof *t);
    t->dev = dev;
    t->urb.ep_address = ep_address;
    t->urb.type = type;
    t->urb.dir_in = (ep_address & 0x80) != 0;
    t->urb.length = length;
    t->urb.complete = on_complete;
    t->urb.complete_ctx = t;
    if (ops_of(dev)->alloc_buffer(ctx_of(dev), &t->urb) != USBIP_OK) {
        free(t);
        return NULL;
    }
    return t;
}

static void free_urb(test_urb_t *t)
{
    if (t) {
        ops_of(t->dev)->free_buffer(ctx_of(t->dev), &t->urb);
        free(t);
    }
}

static usbip_err_t submit(test_urb_t *t)
{
    g_in_submit = true;
    usbip_err_t err = ops_of(t->dev)->submit(ctx_of(t->dev), &t->urb);
    g_in_submit = false;
    if (err == USBIP_OK) {
        t->pending = true;
    }
    return err;
}

static void submit_or_fail(test_urb_t *t)
{
    usbip_err_t err = submit(t);
    CHECK_EQ_INT(err, USBIP_OK);
}

static void cancel(test_urb_t *t)
{
    g_in_submit = true;
    ops_of(t->dev)->cancel(ctx_of(t->dev), &t->urb);
    g_in_submit = false;
}

static void attach(vdev_t *dev) { CHECK_EQ_INT(ops_of(dev)->attach(ctx_of(dev)), USBIP_OK); }
static void detach(vdev_t *dev) { ops_of(dev)->detach(ctx_of(dev)); }

static vdev_t *create(const vdev_config_t *cfg)
{
    vdev_t *dev = NULL;
    CHECK_EQ_INT(vdev_create(cfg, &dev), USBIP_OK);
    return dev;
}

static vdev_t *create_kind(vdev_kind_t kind)
{
    vdev_config_t cfg = {.kind = kind};
    if (kind == VDEV_STORAGE) {
        cfg.storage_size = 1024 * 1024;
    }
    return create(&cfg);
}

/* ---- control transfers ---- */

static void fill_setup(uint8_t setup[8], uint8_t type, uint8_t req, uint16_t value,
                       uint16_t index, uint16_t length)
{
    setup[0] = type;
    setup[1] = req;
    setup[2] = (uint8_t)value;
    setup[3] = (uint8_t)(value >> 8);
    setup[4] = (uint8_t)index;
    setup[5] = (uint8_t)(index >> 8);
    setup[6] = (uint8_t)length;
    setup[7] = (uint8_t)(length >> 8);
}

/* One control transfer, start to completion. IN data goes to data (room
 * length), OUT data comes from it. Returns the URB status. */
static int control(vdev_t *dev, uint8_t type, uint8_t req, uint16_t value, uint16_t index,
                   uint16_t length, void *data, uint32_t *actual)
{
    bool in = (type & 0x80) != 0;
    test_urb_t *t = new_urb(dev, in ? 0x80 : 0x00, USBIP_XFER_CONTROL, length);
    if (!t) {
        return -999;
    }
    fill_setup(t->urb.setup, type, req, value, index, length);
    t->urb.control_kind = usbip_control_kind_of(t->urb.setup);
    if (!in && length) {
        memcpy(t->urb.buffer, data, length);
    }
    submit_or_fail(t);
    CHECK_EQ_INT(t->completions, 0);
    vdev_poll(dev, 0);
    CHECK_EQ_INT(t->completions, 1);
    int status = t->urb.status;
    if (in && data) {
        memcpy(data, t->urb.buffer, t->urb.actual_length);
    }
    if (actual) {
        *actual = t->urb.actual_length;
    }
    free_urb(t);
    return status;
}

static int get_descriptor(vdev_t *dev, uint8_t type, uint8_t index, uint16_t length,
                          uint8_t *out, uint32_t *actual)
{
    return control(dev, 0x80, 6, (uint16_t)(type << 8 | index), 0, length, out, actual);
}

static int set_configuration(vdev_t *dev, uint16_t value)
{
    return control(dev, 0x00, 9, value, 0, 0, NULL, NULL);
}

static int set_interface(vdev_t *dev, uint16_t interface, uint16_t alt)
{
    return control(dev, 0x01, 11, alt, interface, 0, NULL, NULL);
}

static int clear_halt(vdev_t *dev, uint8_t ep)
{
    return control(dev, 0x02, 1, 0, ep, 0, NULL, NULL);
}

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- data transfers ---- */

/* One non-control transfer, start to completion; returns the status. */
static int transfer(vdev_t *dev, uint8_t ep, usbip_xfer_type_t type, void *data,
                    uint32_t length, uint32_t *actual)
{
    test_urb_t *t = new_urb(dev, ep, type, length);
    bool in = (ep & 0x80) != 0;
    if (!in && length) {
        memcpy(t->urb.buffer, data, length);
    }
    submit_or_fail(t);
    vdev_poll(dev, 0);
    CHECK_EQ_INT(t->completions, 1);
    int status = t->urb.status;
    if (in && data) {
        memcpy(data, t->urb.buffer, t->urb.actual_length);
    }
    if (actual) {
        *actual = t->urb.actual_length;
    }
    free_urb(t);
    return status;
}

static uint32_t g_rng = 0x12345678u;

static void fill_random(uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        g_rng ^= g_rng << 13;
        g_rng ^= g_rng >> 17;
        g_rng ^= g_rng << 5;
        p[i] = (uint8_t)g_rng;
    }
}

/* ---- descriptors against the device record and endpoint tables ---- */

typedef struct {
    bool in_current_alt;
    int interfaces;   /* alt 0 interface descriptors */
    int endpoints;    /* endpoint descriptors of current alt settings */
    int bad_endpoint; /* endpoint descriptors that disagree with the tables */
} config_walk_t;

static void walk_config(const usbip_device_t *d, const uint8_t *cfg, size_t len,
                        const uint8_t *alts, config_walk_t *w)
{
    memset(w, 0, sizeof *w);
    for (size_t pos = 0; pos + 2 <= len && cfg[pos] >= 2; pos += cfg[pos]) {
        const uint8_t *desc = &cfg[pos];
        if (desc[1] == 4) {
            w->interfaces += desc[3] == 0;
            w->in_current_alt = desc[3] == alts[desc[2]];
            if (w->in_current_alt) {
                const usbip_interface_record_t *r = &d->interfaces[desc[2]];
                if (r->bInterfaceClass != desc[5] || r->bInterfaceSubClass != desc[6] ||
                    r->bInterfaceProtocol != desc[7]) {
                    w->bad_endpoint++;
                }
            }
        } else if (desc[1] == 5 && w->in_current_alt) {
            w->endpoints++;
            const usbip_endpoint_info_t *ep =
                usbip_device_endpoint(d, desc[2] & 0x0f, (desc[2] & 0x80) != 0);
            if (!ep || ep->type != (desc[3] & 3) || ep->max_packet_size != le16(&desc[4]) ||
                ep->interval != desc[6]) {
                w->bad_endpoint++;
            }
        }
    }
}

static int count_table_endpoints(const usbip_device_t *d)
{
    int n = 0;
    for (unsigned i = 0; i < USBIP_MAX_ENDPOINTS; i++) {
        n += d->ep_in[i].present + d->ep_out[i].present;
    }
    return n;
}

/* The device's descriptors parse and agree with what vdev_device() says. */
static void check_descriptors(vdev_t *dev, const uint8_t *alts)
{
    const usbip_device_t *d = vdev_device(dev);
    uint8_t buf[512];
    uint32_t actual = 0;

    CHECK_EQ_INT(get_descriptor(dev, 1, 0, 64, buf, &actual), 0);
    CHECK_EQ_INT(actual, 18);
    CHECK_EQ_INT(buf[7], 64); /* bMaxPacketSize0 at High Speed */
    CHECK_EQ_INT(le16(&buf[8]), d->record.idVendor);
    CHECK_EQ_INT(le16(&buf[10]), d->record.idProduct);
    CHECK_EQ_INT(buf[4], d->record.bDeviceClass);
    CHECK_EQ_INT(buf[17], d->record.bNumConfigurations);
    CHECK_EQ_INT(d->record.speed, USBIP_SPEED_HIGH);
    CHECK_EQ_INT(d->record.busid[0], 0);
    CHECK(d->ops != NULL && d->ctx != NULL);

    /* Truncated to wLength: the host's first 8-byte read. */
    CHECK_EQ_INT(get_descriptor(dev, 1, 0, 8, buf, &actual), 0);
    CHECK_EQ_INT(actual, 8);

    for (uint8_t index = 0; index < d->record.bNumConfigurations; index++) {
        CHECK_EQ_INT(get_descriptor(dev, 2, index, 9, buf, &actual), 0);
        CHECK_EQ_INT(actual, 9);
        uint16_t total = le16(&buf[2]);
        REQUIRE(total <= sizeof buf);
        /* What it would be at full speed: same size, type 7, FS packet sizes. */
        CHECK_EQ_INT(get_descriptor(dev, 7, index, sizeof buf, buf, &actual), 0);
        CHECK_EQ_INT(actual, total);
        CHECK_EQ_INT(buf[1], 7);
        for (size_t pos = 0; pos + 7 <= actual && buf[pos] >= 2; pos += buf[pos]) {
            if (buf[pos + 1] == 5) {
                CHECK(le16(&buf[pos + 4]) <= ((buf[pos + 3] & 3) == 1 ? 1023 : 64));
            }
        }
        CHECK_EQ_INT(get_descriptor(dev, 2, index, sizeof buf, buf, &actual), 0);
        CHECK_EQ_INT(actual, total);
        if (buf[5] != d->record.bConfigurationValue) {
            continue;
        }
        config_walk_t w;
        walk_config(d, buf, actual, alts, &w);
        CHECK_EQ_INT(w.interfaces, buf[4]);
        CHECK_EQ_INT(buf[4], d->record.bNumInterfaces);
        CHECK_EQ_INT(w.bad_endpoint, 0);
        CHECK_EQ_INT(w.endpoints, count_table_endpoints(d));
    }
    CHECK_EQ_INT(get_descriptor(dev, 2, d->record.bNumConfigurations, 9, buf, &actual),
                 USBIP_EPIPE);

    /* Strings: language table, then the product name in UTF-16LE. */
    CHECK_EQ_INT(get_descriptor(dev, 3, 0, 255, buf, &actual), 0);
    CHECK_EQ_INT(actual, 4);
    CHECK_EQ_INT(le16(&buf[2]), 0x0409);
    CHECK_EQ_INT(get_descriptor(dev, 3, 2, 255, buf, &actual), 0);
    size_t n = strlen(d->product);
    CHECK_EQ_INT(actual, 2 + 2 * n);
    for (size_t i = 0; i < n && 2 + 2 * i < actual; i++) {
        CHECK_EQ_INT(buf[2 + 2 * i], d->product[i]);
    }
    CHECK_EQ_INT(get_descriptor(dev, 3, 3, 255, buf, &actual), 0); /* serial number */
    CHECK(actual >= 2 + 2 * 12);
    CHECK_EQ_INT(get_descriptor(dev, 3, 9, 255, buf, &actual), USBIP_EPIPE);

    CHECK_EQ_INT(get_descriptor(dev, 6, 0, 10, buf, &actual), 0); /* device qualifier */
    CHECK_EQ_INT(actual, 10);
    CHECK_EQ_INT(buf[1], 6);
}

static const uint8_t k_alt0[USBIP_MAX_INTERFACES];

/* ================= tests ================= */

TEST(kind_names)
{
    CHECK_STR(vdev_kind_name(VDEV_KEYBOARD), "keyboard");
    CHECK_STR(vdev_kind_name(VDEV_SERIAL), "serial");
    CHECK_STR(vdev_kind_name(VDEV_STORAGE), "storage");
    CHECK_STR(vdev_kind_name(VDEV_ZERO), "zero");
    for (int k = VDEV_KEYBOARD; k <= VDEV_ZERO; k++) {
        CHECK_EQ_INT(vdev_kind_parse(vdev_kind_name((vdev_kind_t)k)), k);
    }
    CHECK_EQ_INT(vdev_kind_parse("mouse"), -1);
    CHECK_EQ_INT(vdev_kind_parse(NULL), -1);
}

TEST(bad_configs_are_refused)
{
    vdev_t *dev = (vdev_t *)1;
    vdev_config_t cfg = {.kind = (vdev_kind_t)42};
    CHECK_EQ_INT(vdev_create(&cfg, &dev), USBIP_ERR_INVALID_ARG);
    CHECK(dev == NULL);
    cfg = (vdev_config_t){.kind = VDEV_STORAGE, .storage_size = 1000};
    CHECK_EQ_INT(vdev_create(&cfg, &dev), USBIP_ERR_INVALID_ARG);
    cfg = (vdev_config_t){.kind = VDEV_STORAGE, .storage_image = "/nonexistent/disk.img"};
    CHECK_EQ_INT(vdev_create(&cfg, &dev), USBIP_ERR_IO);
    cfg = (vdev_config_t){.kind = VDEV_KEYBOARD, .keyboard_text = "bell\a"};
    CHECK_EQ_INT(vdev_create(&cfg, &dev), USBIP_ERR_INVALID_ARG);
    CHECK_EQ_INT(vdev_create(NULL, &dev), USBIP_ERR_INVALID_ARG);
}

TEST(descriptors_match_tables)
{
    for (int k = VDEV_KEYBOARD; k <= VDEV_ZERO; k++) {
        vdev_t *dev = create_kind((vdev_kind_t)k);
        REQUIRE(dev);
        const usbip_device_t *d = vdev_device(dev);
        CHECK_EQ_INT(d->record.bConfigurationValue, 1);
        CHECK(d->manufacturer[0] != '\0' && d->product[0] != '\0');
        attach(dev);
        check_descriptors(dev, k_alt0);
        detach(dev);
        vdev_destroy(dev);
    }
}

TEST(device_ids)
{
    static const struct {
        vdev_kind_t kind;
        uint16_t vid, pid;
        uint8_t num_interfaces, class0;
    } expect[] = {
        {VDEV_KEYBOARD, 0x1209, 0x5501, 1, 0x03},
        {VDEV_SERIAL, 0x1209, 0x5502, 2, 0x02},
        {VDEV_STORAGE, 0x1209, 0x5503, 1, 0x08},
        {VDEV_ZERO, 0x0525, 0xa4a0, 1, 0xff},
    };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        vdev_t *dev = create_kind(expect[i].kind);
        REQUIRE(dev);
        const usbip_device_t *d = vdev_device(dev);
        CHECK_EQ_INT(d->record.idVendor, expect[i].vid);
        CHECK_EQ_INT(d->record.idProduct, expect[i].pid);
        CHECK_EQ_INT(d->record.bNumInterfaces, expect[i].num_interfaces);
        CHECK_EQ_INT(d->interfaces[0].bInterfaceClass, expect[i].class0);
        vdev_destroy(dev);
    }
}

TEST(standard_requests)
{
    vdev_t *dev = create_kind(VDEV_STORAGE);
    REQUIRE(dev);
    attach(dev);
    uint8_t buf[8];
    uint32_t actual;
    CHECK_EQ_INT(control(dev, 0x80, 0, 0, 0, 2, buf, &actual), 0); /* GET_STATUS device */
    CHECK_EQ_INT(actual, 2);
    CHECK_EQ_INT(control(dev, 0x80, 8, 0, 0, 1, buf, &actual), 0); /* GET_CONFIGURATION */
    CHECK_EQ_INT(buf[0], 1);
    CHECK_EQ_INT(control(dev, 0x00, 5, 7, 0, 0, NULL, NULL), 0);   /* SET_ADDRESS */
    CHECK_EQ_INT(control(dev, 0x81, 10, 0, 0, 1, buf, &actual), 0); /* GET_INTERFACE */
    CHECK_EQ_INT(buf[0], 0);
    CHECK_EQ_INT(control(dev, 0x81, 10, 0, 5, 1, buf, &actual), USBIP_EPIPE);
    CHECK_EQ_INT(control(dev, 0x80, 0x77, 0, 0, 4, buf, &actual), USBIP_EPIPE); /* unknown */
    CHECK_EQ_INT(control(dev, 0xc0, 0x01, 0, 0, 4, buf, &actual), USBIP_EPIPE); /* vendor */

    /* SET_FEATURE(ENDPOINT_HALT), GET_STATUS shows it, URBs stall, CLEAR_HALT. */
    CHECK_EQ_INT(control(dev, 0x02, 3, 0, 0x81, 0, NULL, NULL), 0);
    CHECK_EQ_INT(control(dev, 0x82, 0, 0, 0x81, 2, buf, &actual), 0);
    CHECK_EQ_INT(buf[0], 1);
    CHECK_EQ_INT(transfer(dev, 0x81, USBIP_XFER_BULK, NULL, 13, NULL), USBIP_EPIPE);
    CHECK_EQ_INT(clear_halt(dev, 0x81), 0);
    CHECK_EQ_INT(control(dev, 0x82, 0, 0, 0x81, 2, buf, &actual), 0);
    CHECK_EQ_INT(buf[0], 0);
    CHECK_EQ_INT(clear_halt(dev, 0x85), USBIP_EPIPE); /* no such endpoint */

    /* Invalid configuration; SET_CONFIGURATION 0 unconfigures. */
    CHECK_EQ_INT(set_configuration(dev, 7), USBIP_EPIPE);
    CHECK_EQ_INT(set_configuration(dev, 0), 0);
    CHECK_EQ_INT(vdev_device(dev)->record.bConfigurationValue, 0);
    CHECK_EQ_INT(vdev_device(dev)->record.bNumInterfaces, 0);
    CHECK(usbip_device_endpoint(vdev_device(dev), 1, true) == NULL);
    CHECK_EQ_INT(transfer(dev, 0x81, USBIP_XFER_BULK, NULL, 13, NULL), USBIP_EPIPE);
    CHECK_EQ_INT(set_configuration(dev, 1), 0);
    CHECK(usbip_device_endpoint(vdev_device(dev), 1, true) != NULL);

    /* Port reset: back to the default state. */
    CHECK_EQ_INT(control(dev, 0x23, 3, 4, 1, 0, NULL, NULL), 0);
    CHECK_EQ_INT(vdev_device(dev)->record.bConfigurationValue, 1);
    detach(dev);
    vdev_destroy(dev);
}

/* ---- keyboard ---- */

/* Take the next report: submit an IN URB and poll at now. */
static bool next_key_report(vdev_t *dev, test_urb_t *t, uint64_t now, uint8_t report[8])
{
    if (!t->pending) {
        submit_or_fail(t);
    }
    vdev_poll(dev, now);
    if (t->completions == 0) {
        return false;
    }
    CHECK_EQ_INT(t->urb.status, 0);
    CHECK_EQ_INT(t->urb.actual_length, 8);
    memcpy(report, t->urb.buffer, 8);
    t->completions = 0;
    return true;
}

TEST(keyboard_types_text)
{
    vdev_config_t cfg = {.kind = VDEV_KEYBOARD, .keyboard_text = "Hi!\n"};
    vdev_t *dev = create(&cfg);
    REQUIRE(dev);
    attach(dev);
    /* HID report descriptor and class requests, as usbhid sends them. */
    uint8_t buf[128];
    uint32_t actual;
    CHECK_EQ_INT(control(dev, 0x81, 6, 0x2200, 0, sizeof buf, buf, &actual), 0);
    CHECK_EQ_INT(actual, 63);
    CHECK_EQ_INT(buf[0], 0x05);
    CHECK_EQ_INT(buf[actual - 1], 0xc0);
    CHECK_EQ_INT(control(dev, 0x81, 6, 0x2100, 0, 9, buf, &actual), 0);
    CHECK_EQ_INT(actual, 9);
    CHECK_EQ_INT(le16(&buf[7]), 63);
    CHECK_EQ_INT(control(dev, 0x21, 0x0a, 0, 0, 0, NULL, NULL), 0); /* SET_IDLE 0 */
    CHECK_EQ_INT(control(dev, 0x21, 0x0b, 0, 0, 0, NULL, NULL), 0); /* SET_PROTOCOL boot */
    CHECK_EQ_INT(control(dev, 0xa1, 0x03, 0, 0, 1, buf, &actual), 0);
    CHECK_EQ_INT(buf[0], 0);
    uint8_t leds = 0x02;
    CHECK_EQ_INT(control(dev, 0x21, 0x09, 0x0200, 0, 1, &leds, NULL), 0); /* caps lock LED */
    CHECK_EQ_INT(control(dev, 0xa1, 0x01, 0x0200, 0, 1, buf, &actual), 0);
    CHECK_EQ_INT(buf[0], 0x02);

    static const uint8_t expect[][2] = { /* modifier, key code */
        {0x02, 0x0b}, {0, 0}, /* H */
        {0x00, 0x0c}, {0, 0}, /* i */
        {0x02, 0x1e}, {0, 0}, /* ! */
        {0x00, 0x28}, {0, 0}, /* Enter */
    };
    test_urb_t *t = new_urb(dev, 0x81, USBIP_XFER_INTERRUPT, 8);
    uint64_t now = 1000;
    uint8_t report[8];
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        if (i > 0) {
            /* Paced: nothing until 10 ms after the previous report. */
            CHECK(!next_key_report(dev, t, now + 5, report));
            CHECK_EQ_INT(vdev_next_timeout_ms(dev, now + 5), 5);
            now += 10;
        }
        REQUIRE(next_key_report(dev, t, now, report));
        CHECK_EQ_INT(report[0], expect[i][0]);
        CHECK_EQ_INT(report[2], expect[i][1]);
        CHECK_EQ_INT(report[1] | report[3] | report[4] | report[5] | report[6] | report[7], 0);
    }
    /* Done typing: the URB stays pending until cancelled. */
    CHECK(!next_key_report(dev, t, now + 1000, report));
    CHECK_EQ_INT(vdev_next_timeout_ms(dev, now + 1000), -1);
    cancel(t);
    CHECK_EQ_INT(t->completions, 0);
    CHECK_EQ_INT(vdev_next_timeout_ms(dev, now + 1000), 0);
    vdev_poll(dev, now + 1000);
    CHECK_EQ_INT(t->completions, 1);
    CHECK_EQ_INT(t->urb.status, USBIP_ECONNRESET);
    detach(dev);

    /* A new session types the text again. */
    attach(dev);
    t->completions = 0;
    REQUIRE(next_key_report(dev, t, 5000, report));
    CHECK_EQ_INT(report[2], 0x0b);
    char status[128];
    vdev_describe(dev, status, sizeof status);
    CHECK(strstr(status, "0/4") != NULL);
    cancel(t);
    vdev_poll(dev, 5000);
    detach(dev);
    free_urb(t);
    vdev_destroy(dev);
}

/* ---- serial ---- */

TEST(serial_line_state)
{
    vdev_t *dev = create_kind(VDEV_SERIAL);
    REQUIRE(dev);
    attach(dev);
    uint8_t coding[7];
    uint32_t actual;
    CHECK_EQ_INT(control(dev, 0xa1, 0x21, 0, 0, 7, coding, &actual), 0);
    CHECK_EQ_INT(actual, 7);
    CHECK_EQ_INT(le32(coding), 115200);
    CHECK_EQ_INT(coding[4], 0);
    CHECK_EQ_INT(coding[5], 0);
    CHECK_EQ_INT(coding[6], 8);

    const uint8_t new_coding[7] = {0x80, 0x25, 0, 0, 2, 2, 7}; /* 9600 7E2 */
    CHECK_EQ_INT(control(dev, 0x21, 0x20, 0, 0, 7, (void *)new_coding, NULL), 0);
    CHECK_EQ_INT(control(dev, 0x21, 0x22, 0x0001, 0, 0, NULL, NULL), 0); /* DTR only */
    vdev_serial_state_t st;
    REQUIRE(vdev_serial_state(dev, &st));
    CHECK_EQ_INT(st.baud, 9600);
    CHECK_EQ_INT(st.data_bits, 7);
    CHECK_EQ_INT(st.parity, 2);
    CHECK_EQ_INT(st.stop_bits, 2);
    CHECK(st.dtr && !st.rts);
    char status[128];
    vdev_describe(dev, status, sizeof status);
    CHECK_STR(status, "line 9600 7E2 dtr=1 rts=0");

    CHECK_EQ_INT(control(dev, 0x21, 0x22, 0x0003, 0, 0, NULL, NULL), 0);
    CHECK_EQ_INT(control(dev, 0x21, 0x23, 250, 0, 0, NULL, NULL), 0); /* SEND_BREAK */
    REQUIRE(vdev_serial_state(dev, &st));
    CHECK(st.dtr && st.rts);
    const uint8_t bad_coding[7] = {0x80, 0x25, 0, 0, 9, 0, 8};
    CHECK_EQ_INT(control(dev, 0x21, 0x20, 0, 0, 7, (void *)bad_coding, NULL), USBIP_EPIPE);

    /* A new session starts from the defaults. */
    detach(dev);
    attach(dev);
    REQUIRE(vdev_serial_state(dev, &st));
    CHECK_EQ_INT(st.baud, 115200);
    CHECK(!st.dtr && !st.rts);
    vdev_describe(dev, status, sizeof status);
    CHECK_STR(status, "line 115200 8N1 dtr=0 rts=0");

    vdev_t *other = create_kind(VDEV_ZERO);
    REQUIRE(other);
    CHECK(!vdev_serial_state(other, &st));
    vdev_destroy(other);
    detach(dev);
    vdev_destroy(dev);
}

TEST(serial_echo)
{
    vdev_t *dev = create_kind(VDEV_SERIAL);
    REQUIRE(dev);
    attach(dev);
    /* Notifications: pending until cancelled. A read waits for data. */
    test_urb_t *notify = new_urb(dev, 0x82, USBIP_XFER_INTERRUPT, 16);
    test_urb_t *rd = new_urb(dev, 0x81, USBIP_XFER_BULK, 512);
    submit_or_fail(notify);
    submit_or_fail(rd);
    vdev_poll(dev, 0);
    CHECK_EQ_INT(rd->completions, 0);
    CHECK_EQ_INT(notify->completions, 0);
    CHECK_EQ_INT(vdev_next_timeout_ms(dev, 0), -1);

    uint8_t msg[100];
    fill_random(msg, sizeof msg);
    CHECK_EQ_INT(transfer(dev, 0x01, USBIP_XFER_BULK, msg, sizeof msg, NULL), 0);
    CHECK_EQ_INT(rd->completions, 1);
    CHECK_EQ_INT(rd->urb.status, 0);
    CHECK_EQ_INT(rd->urb.actual_length, sizeof msg);
    CHECK(memcmp(rd->urb.buffer, msg, sizeof msg) == 0);

    /* More than the 64 KiB FIFO in one URB: the write completes once reads
     * have drained enough, and the bytes come back in order. */
    const uint32_t big = 100 * 1024;
    uint8_t *data = malloc(big), *back = malloc(big);
    fill_random(data, big);
    test_urb_t *wr = new_urb(dev, 0x01, USBIP_XFER_BULK, big);
    memcpy(wr->urb.buffer, data, big);
    submit_or_fail(wr);
    vdev_poll(dev, 0);
    CHECK_EQ_INT(wr->completions, 0);
    uint32_t got = 0;
    for (int i = 0; i < 100 && got < big; i++) {
        uint32_t n = 0;
        CHECK_EQ_INT(transfer(dev, 0x81, USBIP_XFER_BULK, back + got, 16384, &n), 0);
        got += n;
    }
    CHECK_EQ_INT(got, big);
    CHECK_EQ_INT(wr->completions, 1);
    CHECK_EQ_INT(wr->urb.actual_length, big);
    CHECK(memcmp(data, back, big) == 0);

    cancel(notify);
    vdev_poll(dev, 0);
    CHECK_EQ_INT(notify->completions, 1);
    CHECK_EQ_INT(notify->urb.status, USBIP_ECONNRESET);
    detach(dev);
    free(data);
    free(back);
    free_urb(wr);
    free_urb(rd);
    free_urb(notify);
    vdev_destroy(dev);
}

/* ---- storage ---- */

typedef struct {
    int status;        /* CSW bCSWStatus, or -1 if the CSW was not valid */
    uint32_t residue;
    uint32_t data_actual;
    int data_urb_status;
} bot_result_t;

static uint32_t g_tag = 1;

static void build_cbw(uint8_t cbw[31], uint32_t tag, uint32_t length, bool in, const uint8_t *cdb,
                      uint8_t cdb_len)
{
    memset(cbw, 0, 31);
    cbw[0] = 0x55, cbw[1] = 0x53, cbw[2] = 0x42, cbw[3] = 0x43; /* "USBC" */
    cbw[4] = (uint8_t)tag, cbw[5] = (uint8_t)(tag >> 8);
    cbw[6] = (uint8_t)(tag >> 16), cbw[7] = (uint8_t)(tag >> 24);
    cbw[8] = (uint8_t)length, cbw[9] = (uint8_t)(length >> 8);
    cbw[10] = (uint8_t)(length >> 16), cbw[11] = (uint8_t)(length >> 24);
    cbw[12] = in ? 0x80 : 0x00;
    cbw[14] = cdb_len;
    memcpy(&cbw[15], cdb, cdb_len);
}

/* One SCSI command over Bulk-Only: the CBW, the data phase split in URBs of
 * chunk bytes, and the CSW are all submitted at once, as an asynchronous
 * host may, then polled. */
static bot_result_t bot_command(vdev_t *dev, const uint8_t *cdb, uint8_t cdb_len, bool in,
                                uint8_t *data, uint32_t length, uint32_t chunk)
{
    bot_result_t r = {.status = -1};
    uint32_t tag = g_tag++;
    test_urb_t *cbw = new_urb(dev, 0x02, USBIP_XFER_BULK, 31);
    build_cbw(cbw->urb.buffer, tag, length, in, cdb, cdb_len);
    test_urb_t *urbs[64];
    size_t n = 0;
    for (uint32_t off = 0; off < length && n < 64; off += chunk) {
        uint32_t len = length - off < chunk ? length - off : chunk;
        urbs[n] = new_urb(dev, in ? 0x81 : 0x02, USBIP_XFER_BULK, len);
        if (!in) {
            memcpy(urbs[n]->urb.buffer, data + off, len);
        }
        n++;
    }
    test_urb_t *csw = new_urb(dev, 0x81, USBIP_XFER_BULK, 13);
    submit_or_fail(cbw);
    for (size_t i = 0; i < n; i++) {
        submit_or_fail(urbs[i]);
    }
    submit_or_fail(csw);
    vdev_poll(dev, 0);
    /* Whatever went wrong, no URB may stay with the device once freed. */
    test_urb_t *all[66] = {cbw, csw};
    memcpy(&all[2], urbs, n * sizeof urbs[0]);
    int still_pending = 0;
    for (size_t i = 0; i < n + 2; i++) {
        if (all[i]->pending) {
            still_pending++;
            cancel(all[i]);
        }
    }
    CHECK_EQ_INT(still_pending, 0);
    vdev_poll(dev, 0);

    CHECK_EQ_INT(cbw->completions, 1);
    uint32_t off = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ_INT(urbs[i]->completions, 1);
        if (urbs[i]->urb.status != 0) {
            r.data_urb_status = urbs[i]->urb.status;
        }
        if (in) {
            memcpy(data + off, urbs[i]->urb.buffer, urbs[i]->urb.actual_length);
        }
        off += urbs[i]->urb.actual_length;
        free_urb(urbs[i]);
    }
    r.data_actual = off;
    CHECK_EQ_INT(csw->completions, 1);
    const uint8_t *c = csw->urb.buffer;
    if (csw->urb.status == 0 && csw->urb.actual_length == 13 && le32(c) == 0x53425355u &&
        le32(&c[4]) == tag) {
        r.status = c[12];
        r.residue = le32(&c[8]);
    }
    free_urb(cbw);
    free_urb(csw);
    return r;
}

static void rw10_cdb(uint8_t cdb[10], uint8_t op, uint32_t lba, uint16_t blocks)
{
    memset(cdb, 0, 10);
    cdb[0] = op;
    cdb[2] = (uint8_t)(lba >> 24), cdb[3] = (uint8_t)(lba >> 16);
    cdb[4] = (uint8_t)(lba >> 8), cdb[5] = (uint8_t)lba;
    cdb[7] = (uint8_t)(blocks >> 8), cdb[8] = (uint8_t)blocks;
}

static void request_sense(vdev_t *dev, uint8_t *key, uint8_t *asc)
{
    const uint8_t cdb[6] = {0x03, 0, 0, 0, 18, 0};
    uint8_t sense[18] = {0};
    bot_result_t r = bot_command(dev, cdb, 6, true, sense, 18, 18);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(sense[0], 0x70);
    *key = sense[2] & 0x0f;
    *asc = sense[12];
}

TEST(storage_inquiry_and_capacity)
{
    vdev_t *dev = create_kind(VDEV_STORAGE);
    REQUIRE(dev);
    attach(dev);
    uint8_t buf[64];
    uint32_t actual;
    CHECK_EQ_INT(control(dev, 0xa1, 0xfe, 0, 0, 1, buf, &actual), 0); /* Get Max LUN */
    CHECK_EQ_INT(actual, 1);
    CHECK_EQ_INT(buf[0], 0);

    const uint8_t inquiry[6] = {0x12, 0, 0, 0, 36, 0};
    bot_result_t r = bot_command(dev, inquiry, 6, true, buf, 36, 36);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(r.residue, 0);
    CHECK_EQ_INT(r.data_actual, 36);
    CHECK_EQ_INT(buf[0], 0x00);
    CHECK(memcmp(&buf[8], "usbip   ", 8) == 0);

    const uint8_t vpd80[6] = {0x12, 1, 0x80, 0, 64, 0};
    r = bot_command(dev, vpd80, 6, true, buf, 64, 64);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(buf[1], 0x80);
    CHECK_EQ_INT(r.data_actual, 4u + buf[3]);
    CHECK_EQ_INT(r.residue, 64 - r.data_actual);

    const uint8_t tur[6] = {0};
    r = bot_command(dev, tur, 6, false, NULL, 0, 512);
    CHECK_EQ_INT(r.status, 0);

    const uint8_t cap10[10] = {0x25};
    r = bot_command(dev, cap10, 10, true, buf, 8, 8);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(be32(buf), 2047); /* 1 MiB / 512 - 1 */
    CHECK_EQ_INT(be32(&buf[4]), 512);

    const uint8_t cap16[16] = {0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32};
    r = bot_command(dev, cap16, 16, true, buf, 32, 32);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(be32(buf), 0);
    CHECK_EQ_INT(be32(&buf[4]), 2047);
    CHECK_EQ_INT(be32(&buf[8]), 512);

    const uint8_t mode_sense[6] = {0x1a, 0, 0x3f, 0, 192, 0};
    r = bot_command(dev, mode_sense, 6, true, buf, 192, 192);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(r.data_actual, 24);
    CHECK_EQ_INT(r.residue, 192 - 24);
    CHECK_EQ_INT(buf[0], 23);
    CHECK_EQ_INT(buf[2] & 0x80, 0); /* not write-protected */
    CHECK_EQ_INT(buf[4], 0x08);

    const uint8_t mode_sense10[10] = {0x5a, 0, 0x08, 0, 0, 0, 0, 0, 64, 0};
    r = bot_command(dev, mode_sense10, 10, true, buf, 64, 64);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(r.data_actual, 28);

    const uint8_t formats[10] = {0x23, 0, 0, 0, 0, 0, 0, 0, 252, 0};
    r = bot_command(dev, formats, 10, true, buf, 252, 252);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(r.data_actual, 12);
    CHECK_EQ_INT(be32(&buf[4]), 2048);

    char status[128];
    vdev_describe(dev, status, sizeof status);
    CHECK_STR(status, "1 MiB RAM");
    detach(dev);
    vdev_destroy(dev);
}

TEST(storage_default_size)
{
    vdev_config_t cfg = {.kind = VDEV_STORAGE};
    vdev_t *dev = create(&cfg);
    REQUIRE(dev);
    char status[128];
    vdev_describe(dev, status, sizeof status);
    CHECK_STR(status, "64 MiB RAM");
    vdev_destroy(dev);
}

static void write_then_read(vdev_t *dev, uint32_t lba, uint16_t blocks, uint32_t write_chunk,
                            uint32_t read_chunk)
{
    uint32_t len = blocks * 512u;
    uint8_t *data = malloc(len), *back = calloc(1, len);
    fill_random(data, len);
    uint8_t cdb[10];
    rw10_cdb(cdb, 0x2a, lba, blocks);
    bot_result_t r = bot_command(dev, cdb, 10, false, data, len, write_chunk);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(r.residue, 0);
    rw10_cdb(cdb, 0x28, lba, blocks);
    r = bot_command(dev, cdb, 10, true, back, len, read_chunk);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(r.residue, 0);
    CHECK_EQ_INT(r.data_actual, len);
    CHECK(memcmp(data, back, len) == 0);
    free(data);
    free(back);
}

TEST(storage_write_read)
{
    vdev_t *dev = create_kind(VDEV_STORAGE);
    REQUIRE(dev);
    attach(dev);
    /* Linux-like: 120 KiB URBs; then odd splits not aligned to blocks. */
    write_then_read(dev, 10, 300, 120 * 1024, 64 * 1024);
    write_then_read(dev, 2000, 48, 4096 + 512, 1000);
    write_then_read(dev, 0, 1, 512, 512);

    /* READ(16)/WRITE(16) address the same blocks. */
    uint8_t data[1024], back[1024];
    fill_random(data, sizeof data);
    uint8_t cdb[16] = {0x8a};
    cdb[9] = 100, cdb[13] = 2;
    CHECK_EQ_INT(bot_command(dev, cdb, 16, false, data, 1024, 1024).status, 0);
    uint8_t cdb10[10];
    rw10_cdb(cdb10, 0x28, 100, 2);
    CHECK_EQ_INT(bot_command(dev, cdb10, 10, true, back, 1024, 1024).status, 0);
    CHECK(memcmp(data, back, sizeof data) == 0);
    cdb[0] = 0x88;
    memset(back, 0, sizeof back);
    CHECK_EQ_INT(bot_command(dev, cdb, 16, true, back, 1024, 1024).status, 0);
    CHECK(memcmp(data, back, sizeof data) == 0);

    /* Beyond the end: CHECK CONDITION, LBA OUT OF RANGE, no data. */
    rw10_cdb(cdb10, 0x28, 2047, 2);
    bot_result_t r = bot_command(dev, cdb10, 10, true, back, 1024, 1024);
    CHECK_EQ_INT(r.status, 1);
    CHECK_EQ_INT(r.data_actual, 0);
    CHECK_EQ_INT(r.residue, 1024);
    uint8_t key, asc;
    request_sense(dev, &key, &asc);
    CHECK_EQ_INT(key, 0x05);
    CHECK_EQ_INT(asc, 0x21);
    rw10_cdb(cdb10, 0x2a, 4000, 2);
    r = bot_command(dev, cdb10, 10, false, data, 1024, 512);
    CHECK_EQ_INT(r.status, 1);
    CHECK_EQ_INT(r.residue, 1024);

    /* Other commands the Linux sd driver sends. */
    const uint8_t sync[10] = {0x35};
    CHECK_EQ_INT(bot_command(dev, sync, 10, false, NULL, 0, 512).status, 0);
    const uint8_t prevent[6] = {0x1e, 0, 0, 0, 1, 0};
    CHECK_EQ_INT(bot_command(dev, prevent, 6, false, NULL, 0, 512).status, 0);
    const uint8_t start[6] = {0x1b, 0, 0, 0, 1, 0};
    CHECK_EQ_INT(bot_command(dev, start, 6, false, NULL, 0, 512).status, 0);
    rw10_cdb(cdb10, 0x2f, 0, 16);
    CHECK_EQ_INT(bot_command(dev, cdb10, 10, false, NULL, 0, 512).status, 0);
    detach(dev);
    vdev_destroy(dev);
}

TEST(storage_unknown_command)
{
    vdev_t *dev = create_kind(VDEV_STORAGE);
    REQUIRE(dev);
    attach(dev);
    uint8_t buf[64];
    const uint8_t unknown[12] = {0xd9};
    bot_result_t r = bot_command(dev, unknown, 12, true, buf, 64, 64);
    CHECK_EQ_INT(r.status, 1);
    CHECK_EQ_INT(r.residue, 64);
    CHECK_EQ_INT(r.data_actual, 0); /* an empty data completion before the CSW */
    uint8_t key, asc;
    request_sense(dev, &key, &asc);
    CHECK_EQ_INT(key, 0x05);
    CHECK_EQ_INT(asc, 0x20);
    /* Sense was read: it is clear now. */
    request_sense(dev, &key, &asc);
    CHECK_EQ_INT(key, 0);

    /* Unknown data-out command: the data is consumed anyway. */
    fill_random(buf, sizeof buf);
    r = bot_command(dev, unknown, 12, false, buf, 64, 64);
    CHECK_EQ_INT(r.status, 1);
    CHECK_EQ_INT(r.residue, 64);
    CHECK_EQ_INT(r.data_actual, 64);
    detach(dev);
    vdev_destroy(dev);
}

TEST(storage_host_device_mismatch)
{
    vdev_t *dev = create_kind(VDEV_STORAGE);
    REQUIRE(dev);
    attach(dev);
    static uint8_t buf[2048];
    uint8_t cdb[10];
    /* The host expects more than one block: the data ends short. */
    rw10_cdb(cdb, 0x28, 0, 1);
    bot_result_t r = bot_command(dev, cdb, 10, true, buf, 2048, 2048);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(r.data_actual, 512);
    CHECK_EQ_INT(r.residue, 1536);
    /* The host expects less than the blocks addressed: phase error. */
    rw10_cdb(cdb, 0x28, 0, 4);
    r = bot_command(dev, cdb, 10, true, buf, 1024, 1024);
    CHECK_EQ_INT(r.status, 2);
    /* Opposite directions: phase error, no data moved. */
    const uint8_t inquiry[6] = {0x12, 0, 0, 0, 36, 0};
    r = bot_command(dev, inquiry, 6, false, buf, 36, 36);
    CHECK_EQ_INT(r.status, 2);
    CHECK_EQ_INT(r.residue, 36);
    /* Data the command does not expect: a zero-length data-in. */
    const uint8_t tur[6] = {0};
    r = bot_command(dev, tur, 6, true, buf, 64, 64);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(r.data_actual, 0);
    CHECK_EQ_INT(r.residue, 64);
    /* LUN 1 does not exist. */
    test_urb_t *cbw = new_urb(dev, 0x02, USBIP_XFER_BULK, 31);
    test_urb_t *csw = new_urb(dev, 0x81, USBIP_XFER_BULK, 13);
    build_cbw(cbw->urb.buffer, 77, 0, false, tur, 6);
    cbw->urb.buffer[13] = 1;
    submit_or_fail(cbw);
    submit_or_fail(csw);
    vdev_poll(dev, 0);
    CHECK_EQ_INT(csw->completions, 1);
    CHECK_EQ_INT(csw->urb.buffer[12], 1);
    free_urb(cbw);
    free_urb(csw);
    uint8_t key, asc;
    request_sense(dev, &key, &asc);
    CHECK_EQ_INT(key, 0x05);
    CHECK_EQ_INT(asc, 0x25);
    detach(dev);
    vdev_destroy(dev);
}

TEST(storage_bad_cbw_stalls)
{
    vdev_t *dev = create_kind(VDEV_STORAGE);
    REQUIRE(dev);
    attach(dev);
    uint8_t junk[31];
    memset(junk, 0xaa, sizeof junk);
    CHECK_EQ_INT(transfer(dev, 0x02, USBIP_XFER_BULK, junk, 31, NULL), 0);
    CHECK_EQ_INT(transfer(dev, 0x81, USBIP_XFER_BULK, NULL, 13, NULL), USBIP_EPIPE);
    CHECK_EQ_INT(transfer(dev, 0x02, USBIP_XFER_BULK, junk, 31, NULL), USBIP_EPIPE);
    uint8_t st[2];
    uint32_t actual;
    CHECK_EQ_INT(control(dev, 0x82, 0, 0, 0x02, 2, st, &actual), 0);
    CHECK_EQ_INT(st[0], 1);

    /* Reset recovery: class reset, then clear both halts. */
    CHECK_EQ_INT(control(dev, 0x21, 0xff, 0, 0, 0, NULL, NULL), 0);
    CHECK_EQ_INT(clear_halt(dev, 0x81), 0);
    CHECK_EQ_INT(clear_halt(dev, 0x02), 0);
    const uint8_t tur[6] = {0};
    CHECK_EQ_INT(bot_command(dev, tur, 6, false, NULL, 0, 512).status, 0);

    /* A CBW of the wrong length is just as invalid. */
    uint8_t cbw[31];
    build_cbw(cbw, 99, 0, false, tur, 6);
    CHECK_EQ_INT(transfer(dev, 0x02, USBIP_XFER_BULK, cbw, 30, NULL), 0);
    CHECK_EQ_INT(transfer(dev, 0x81, USBIP_XFER_BULK, NULL, 13, NULL), USBIP_EPIPE);
    /* A port reset recovers as well. */
    CHECK_EQ_INT(control(dev, 0x23, 3, 4, 1, 0, NULL, NULL), 0);
    CHECK_EQ_INT(bot_command(dev, tur, 6, false, NULL, 0, 512).status, 0);
    detach(dev);
    vdev_destroy(dev);
}

TEST(storage_file_image)
{
    char path[] = "/tmp/test_vdev_XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    REQUIRE(ftruncate(fd, 256 * 1024) == 0);

    vdev_config_t cfg = {.kind = VDEV_STORAGE, .storage_image = path};
    vdev_t *dev = create(&cfg);
    if (!dev) {
        close(fd);
        unlink(path);
        REQUIRE(dev);
    }
    attach(dev);
    char status[128];
    vdev_describe(dev, status, sizeof status);
    CHECK(strncmp(status, "256 KiB image /tmp/test_vdev_", 29) == 0);
    uint8_t buf[16];
    const uint8_t cap10[10] = {0x25};
    CHECK_EQ_INT(bot_command(dev, cap10, 10, true, buf, 8, 8).status, 0);
    CHECK_EQ_INT(be32(buf), 511);
    write_then_read(dev, 7, 20, 4096, 8192);

    uint8_t block[512];
    fill_random(block, sizeof block);
    uint8_t cdb[10];
    rw10_cdb(cdb, 0x2a, 3, 1);
    CHECK_EQ_INT(bot_command(dev, cdb, 10, false, block, 512, 512).status, 0);
    detach(dev);
    vdev_destroy(dev);

    uint8_t on_disk[512];
    CHECK_EQ_INT(pread(fd, on_disk, sizeof on_disk, 3 * 512), 512);
    CHECK(memcmp(block, on_disk, sizeof block) == 0);

    /* An image whose size is not whole blocks is refused. */
    REQUIRE(ftruncate(fd, 1000) == 0);
    CHECK_EQ_INT(vdev_create(&cfg, &dev), USBIP_ERR_INVALID_ARG);
    close(fd);
    unlink(path);
}

/* ---- zero ---- */

static uint8_t mod63(uint32_t i, uint32_t max_packet) { return (uint8_t)((i % max_packet) % 63); }

static bool is_pattern(const uint8_t *p, uint32_t len, uint32_t max_packet)
{
    for (uint32_t i = 0; i < len; i++) {
        if (p[i] != mod63(i, max_packet)) {
            return false;
        }
    }
    return true;
}

TEST(zero_source_sink)
{
    vdev_t *dev = create_kind(VDEV_ZERO);
    REQUIRE(dev);
    attach(dev);
    static uint8_t buf[4096];
    uint32_t actual;
    CHECK_EQ_INT(transfer(dev, 0x81, USBIP_XFER_BULK, buf, 3000, &actual), 0);
    CHECK_EQ_INT(actual, 3000);
    CHECK(is_pattern(buf, 3000, 512));
    CHECK_EQ_INT(transfer(dev, 0x82, USBIP_XFER_INTERRUPT, buf, 200, &actual), 0);
    CHECK_EQ_INT(actual, 200);
    CHECK(is_pattern(buf, 200, 64));

    for (uint32_t i = 0; i < sizeof buf; i++) {
        buf[i] = mod63(i, 512);
    }
    CHECK_EQ_INT(transfer(dev, 0x01, USBIP_XFER_BULK, buf, 4096, &actual), 0);
    CHECK_EQ_INT(actual, 4096);
    buf[1234] ^= 0xff;
    CHECK_EQ_INT(transfer(dev, 0x01, USBIP_XFER_BULK, buf, 4096, NULL), USBIP_EPIPE);
    for (uint32_t i = 0; i < 128; i++) {
        buf[i] = mod63(i, 64);
    }
    CHECK_EQ_INT(transfer(dev, 0x02, USBIP_XFER_INTERRUPT, buf, 128, NULL), 0);
    char status[128];
    vdev_describe(dev, status, sizeof status);
    CHECK_STR(status, "config 1 alt 0, pattern errors 1");

    /* Wrong transfer type for the endpoint, or no such endpoint: stall. */
    CHECK_EQ_INT(transfer(dev, 0x81, USBIP_XFER_INTERRUPT, buf, 64, NULL), USBIP_EPIPE);
    CHECK_EQ_INT(transfer(dev, 0x83, USBIP_XFER_ISOCHRONOUS, buf, 64, NULL), USBIP_EPIPE);
    detach(dev);
    vdev_destroy(dev);
}

TEST(zero_vendor_control)
{
    vdev_t *dev = create_kind(VDEV_ZERO);
    REQUIRE(dev);
    attach(dev);
    uint8_t data[1000], back[1000];
    uint32_t actual;
    fill_random(data, sizeof data);
    CHECK_EQ_INT(control(dev, 0x40, 0x5b, 0, 0, sizeof data, data, NULL), 0);
    CHECK_EQ_INT(control(dev, 0xc0, 0x5c, 0, 0, sizeof back, back, &actual), 0);
    CHECK_EQ_INT(actual, sizeof back);
    CHECK(memcmp(data, back, sizeof data) == 0);
    CHECK_EQ_INT(control(dev, 0xc0, 0x5c, 0, 0, 10, back, &actual), 0);
    CHECK_EQ_INT(actual, 10);
    static uint8_t too_big[5000];
    CHECK_EQ_INT(control(dev, 0x40, 0x5b, 0, 0, sizeof too_big, too_big, NULL), USBIP_EPIPE);
    detach(dev);
    vdev_destroy(dev);
}

TEST(zero_alt_setting_and_iso)
{
    vdev_t *dev = create_kind(VDEV_ZERO);
    REQUIRE(dev);
    attach(dev);
    const usbip_device_t *d = vdev_device(dev);
    CHECK(!d->ep_in[3].present && !d->ep_out[3].present);
    CHECK_EQ_INT(set_interface(dev, 0, 1), 0);
    REQUIRE(d->ep_in[3].present && d->ep_out[3].present);
    CHECK_EQ_INT(d->ep_in[3].type, USBIP_XFER_ISOCHRONOUS);
    CHECK_EQ_INT(d->ep_in[3].max_packet_size, 1024);
    CHECK_EQ_INT(d->ep_out[3].interval, 4);
    CHECK(d->ep_in[1].present); /* the bulk pair is still there */
    static const uint8_t alt1[USBIP_MAX_INTERFACES] = {1};
    check_descriptors(dev, alt1);
    uint8_t alt = 9;
    uint32_t actual;
    CHECK_EQ_INT(control(dev, 0x81, 10, 0, 0, 1, &alt, &actual), 0);
    CHECK_EQ_INT(alt, 1);
    CHECK_EQ_INT(set_interface(dev, 0, 2), USBIP_EPIPE);
    CHECK_EQ_INT(set_interface(dev, 1, 0), USBIP_EPIPE);

    /* Iso IN: every packet full, each restarting the pattern. */
    static const uint32_t lengths[3] = {1024, 300, 700};
    test_urb_t *t = new_urb(dev, 0x83, USBIP_XFER_ISOCHRONOUS, 2048);
    t->urb.num_iso_packets = 3;
    t->urb.iso = t->iso;
    uint32_t off = 0;
    for (int i = 0; i < 3; i++) {
        t->iso[i].offset = off;
        t->iso[i].length = lengths[i];
        off += lengths[i];
    }
    submit_or_fail(t);
    vdev_poll(dev, 0);
    CHECK_EQ_INT(t->completions, 1);
    CHECK_EQ_INT(t->urb.status, 0);
    CHECK_EQ_INT(t->urb.error_count, 0);
    CHECK_EQ_INT(t->urb.actual_length, 2024);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(t->iso[i].actual_length, lengths[i]);
        CHECK_EQ_INT(t->iso[i].status, 0);
        CHECK(is_pattern(t->urb.buffer + t->iso[i].offset, lengths[i], 1024));
    }
    free_urb(t);

    /* Iso OUT: packets checked one by one; packet 1 is corrupted. */
    t = new_urb(dev, 0x03, USBIP_XFER_ISOCHRONOUS, 2048);
    t->urb.num_iso_packets = 3;
    t->urb.iso = t->iso;
    off = 0;
    for (int i = 0; i < 3; i++) {
        t->iso[i].offset = off;
        t->iso[i].length = lengths[i];
        for (uint32_t j = 0; j < lengths[i]; j++) {
            t->urb.buffer[off + j] = mod63(j, 1024);
        }
        off += lengths[i];
    }
    t->urb.buffer[1024 + 17] ^= 1;
    submit_or_fail(t);
    vdev_poll(dev, 0);
    CHECK_EQ_INT(t->completions, 1);
    CHECK_EQ_INT(t->urb.status, 0);
    CHECK_EQ_INT(t->urb.error_count, 1);
    CHECK_EQ_INT(t->urb.actual_length, 2024);
    CHECK_EQ_INT(t->iso[0].status, 0);
    CHECK(t->iso[1].status != 0);
    CHECK_EQ_INT(t->iso[2].status, 0);
    CHECK_EQ_INT(t->iso[1].actual_length, 300);
    free_urb(t);

    char status[128];
    vdev_describe(dev, status, sizeof status);
    CHECK_STR(status, "config 1 alt 1, pattern errors 1");
    /* Back to alt 0: the iso endpoints are gone. */
    CHECK_EQ_INT(set_interface(dev, 0, 0), 0);
    CHECK(!d->ep_in[3].present);
    detach(dev);
    vdev_destroy(dev);
}

TEST(zero_loopback_config)
{
    vdev_t *dev = create_kind(VDEV_ZERO);
    REQUIRE(dev);
    attach(dev);
    const usbip_device_t *d = vdev_device(dev);
    CHECK_EQ_INT(set_configuration(dev, 3), USBIP_EPIPE);
    CHECK_EQ_INT(d->record.bConfigurationValue, 1);
    CHECK_EQ_INT(set_configuration(dev, 2), 0);
    CHECK_EQ_INT(d->record.bConfigurationValue, 2);
    CHECK(d->ep_in[1].present && d->ep_out[1].present);
    CHECK(!d->ep_in[2].present && !d->ep_out[2].present);
    check_descriptors(dev, k_alt0);
    uint8_t cfg = 0;
    CHECK_EQ_INT(control(dev, 0x80, 8, 0, 0, 1, &cfg, NULL), 0);
    CHECK_EQ_INT(cfg, 2);

    /* Read first: it waits for the write. */
    test_urb_t *rd = new_urb(dev, 0x81, USBIP_XFER_BULK, 4096);
    submit_or_fail(rd);
    vdev_poll(dev, 0);
    CHECK_EQ_INT(rd->completions, 0);
    uint8_t data[3000];
    fill_random(data, sizeof data);
    CHECK_EQ_INT(transfer(dev, 0x01, USBIP_XFER_BULK, data, sizeof data, NULL), 0);
    CHECK_EQ_INT(rd->completions, 1);
    CHECK_EQ_INT(rd->urb.actual_length, sizeof data);
    CHECK(memcmp(rd->urb.buffer, data, sizeof data) == 0);
    /* Short with URB_SHORT_NOT_OK: -EREMOTEIO, data still delivered. */
    rd->urb.flags = USBIP_URB_SHORT_NOT_OK;
    submit_or_fail(rd);
    CHECK_EQ_INT(transfer(dev, 0x01, USBIP_XFER_BULK, data, 100, NULL), 0);
    CHECK_EQ_INT(rd->completions, 2);
    CHECK_EQ_INT(rd->urb.status, USBIP_EREMOTEIO);
    CHECK_EQ_INT(rd->urb.actual_length, 100);
    free_urb(rd);

    /* The interrupt endpoints do not exist in this configuration. */
    CHECK_EQ_INT(transfer(dev, 0x82, USBIP_XFER_INTERRUPT, data, 64, NULL), USBIP_EPIPE);
    char status[128];
    vdev_describe(dev, status, sizeof status);
    CHECK_STR(status, "config 2 alt 0, pattern errors 0");
    /* A new session starts in the default configuration. */
    detach(dev);
    attach(dev);
    CHECK_EQ_INT(d->record.bConfigurationValue, 1);
    detach(dev);
    vdev_destroy(dev);
}

TEST(cancel_and_ordering)
{
    vdev_t *dev = create_kind(VDEV_ZERO);
    REQUIRE(dev);
    attach(dev);
    REQUIRE(set_configuration(dev, 2) == 0);
    test_urb_t *a = new_urb(dev, 0x81, USBIP_XFER_BULK, 10);
    test_urb_t *b = new_urb(dev, 0x81, USBIP_XFER_BULK, 10);
    test_urb_t *c = new_urb(dev, 0x81, USBIP_XFER_BULK, 10);
    submit_or_fail(a);
    submit_or_fail(b);
    submit_or_fail(c);
    CHECK_EQ_INT(vdev_next_timeout_ms(dev, 0), 0);
    vdev_poll(dev, 0);
    CHECK_EQ_INT(a->completions + b->completions + c->completions, 0);
    CHECK_EQ_INT(vdev_next_timeout_ms(dev, 0), -1);

    /* Cancel the middle one: it completes alone, deferred to the poll. */
    cancel(b);
    CHECK_EQ_INT(b->completions, 0);
    vdev_poll(dev, 0);
    CHECK_EQ_INT(b->completions, 1);
    CHECK_EQ_INT(b->urb.status, USBIP_ECONNRESET);
    cancel(b); /* already completed: nothing happens */
    vdev_poll(dev, 0);
    CHECK_EQ_INT(b->completions, 1);

    /* The others complete in submission order. */
    uint8_t data[20];
    for (int i = 0; i < 20; i++) {
        data[i] = (uint8_t)i;
    }
    CHECK_EQ_INT(transfer(dev, 0x01, USBIP_XFER_BULK, data, 20, NULL), 0);
    CHECK_EQ_INT(a->completions, 1);
    CHECK_EQ_INT(c->completions, 1);
    CHECK_EQ_INT(a->urb.buffer[0], 0);
    CHECK_EQ_INT(c->urb.buffer[0], 10);

    /* A complete callback that resubmits: served on the next poll only. */
    REQUIRE(set_configuration(dev, 1) == 0);
    a->completions = 0;
    a->resubmit_once = true;
    submit_or_fail(a);
    vdev_poll(dev, 0);
    CHECK_EQ_INT(a->completions, 1);
    CHECK_EQ_INT(vdev_next_timeout_ms(dev, 0), 0);
    vdev_poll(dev, 0);
    CHECK_EQ_INT(a->completions, 2);
    CHECK_EQ_INT(a->urb.status, 0);
    CHECK(is_pattern(a->urb.buffer, 10, 512));
    detach(dev);
    free_urb(a);
    free_urb(b);
    free_urb(c);
    vdev_destroy(dev);
}

TEST(unplug)
{
    vdev_t *dev = create_kind(VDEV_SERIAL);
    REQUIRE(dev);
    attach(dev);
    test_urb_t *rd = new_urb(dev, 0x81, USBIP_XFER_BULK, 64);
    test_urb_t *notify = new_urb(dev, 0x82, USBIP_XFER_INTERRUPT, 16);
    submit_or_fail(rd);
    submit_or_fail(notify);
    vdev_poll(dev, 0);
    vdev_unplug(dev);
    CHECK(vdev_unplugged(dev));
    CHECK_EQ_INT(rd->completions, 0);
    CHECK_EQ_INT(vdev_next_timeout_ms(dev, 0), 0);
    vdev_poll(dev, 0);
    CHECK_EQ_INT(rd->completions, 1);
    CHECK_EQ_INT(rd->urb.status, USBIP_ESHUTDOWN);
    CHECK_EQ_INT(notify->completions, 1);
    CHECK_EQ_INT(notify->urb.status, USBIP_ESHUTDOWN);
    CHECK_EQ_INT(submit(rd), USBIP_ERR_INVALID_STATE);
    vdev_poll(dev, 0);
    CHECK_EQ_INT(rd->completions, 1);
    detach(dev);
    CHECK_EQ_INT(ops_of(dev)->attach(ctx_of(dev)), USBIP_ERR_INVALID_STATE);
    char status[64];
    vdev_describe(dev, status, sizeof status);
    CHECK_STR(status, "unplugged");
    free_urb(rd);
    free_urb(notify);
    vdev_destroy(dev);
}

TEST(alloc_buffer_sizes)
{
    vdev_t *dev = create_kind(VDEV_ZERO);
    REQUIRE(dev);
    test_urb_t *t = new_urb(dev, 0x81, USBIP_XFER_BULK, 0);
    REQUIRE(t);
    CHECK(t->urb.buffer != NULL);
    CHECK(t->urb.buffer_size >= 1);
    free_urb(t);
    t = new_urb(dev, 0x81, USBIP_XFER_BULK, 200000);
    REQUIRE(t);
    CHECK(t->urb.buffer_size >= 200000);
    free_urb(t);
    vdev_destroy(dev);
}

TEST(no_synchronous_completions)
{
    CHECK_EQ_INT(g_sync_completions, 0);
}

TEST_MAIN("vdev", TEST_ENTRY(kind_names), TEST_ENTRY(bad_configs_are_refused),
          TEST_ENTRY(descriptors_match_tables), TEST_ENTRY(device_ids),
          TEST_ENTRY(standard_requests), TEST_ENTRY(keyboard_types_text),
          TEST_ENTRY(serial_line_state), TEST_ENTRY(serial_echo),
          TEST_ENTRY(storage_inquiry_and_capacity), TEST_ENTRY(storage_default_size),
          TEST_ENTRY(storage_write_read), TEST_ENTRY(storage_unknown_command),
          TEST_ENTRY(storage_host_device_mismatch), TEST_ENTRY(storage_bad_cbw_stalls), TEST_ENTRY(storage_file_image),
          TEST_ENTRY(zero_source_sink), TEST_ENTRY(zero_vendor_control),
          TEST_ENTRY(zero_alt_setting_and_iso), TEST_ENTRY(zero_loopback_config),
          TEST_ENTRY(cancel_and_ordering), TEST_ENTRY(unplug), TEST_ENTRY(alloc_buffer_sizes),
          TEST_ENTRY(no_synchronous_completions))
