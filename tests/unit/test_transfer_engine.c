/*
 * Unit tests of transfer_engine: the pure planners (status mapping, chunks,
 * iso layout, pool fairness, bus id paths) and the engine driven against a
 * simulated ESP-IDF USB Host Library that behaves as v5.5 does: transfers of
 * one endpoint complete in order, halt+flush hands every queued transfer
 * back CANCELED, STALL/ERROR halt the pipe and flush the rest of its queue,
 * submit to a halted pipe fails, release fails while transfers are out.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "test_harness.h"
#include "sample_descriptors.h"
#include "transfer_engine.h"

/* ---- one URB with its pool entry ---- */

#define MAX_SLOTS 16
#define BUF_SIZE 8192

typedef struct {
    te_urb_t te;
    usbip_urb_t urb;
    usbip_iso_packet_t iso[16];
    uint8_t session[BUF_SIZE]; /* the session's buffer when staged */
    uint8_t xfer[BUF_SIZE];    /* the pool transfer's DMA buffer */
    uint8_t iso_xfer[BUF_SIZE];
    uint8_t *last_buffer;
    uint32_t iso_counts[8];    /* iso_count of each transfer buffer asked for */
    int n_iso;
    int id;
} slot_t;

/* ---- the simulated library ---- */

typedef struct {
    slot_t *slot;
    te_transfer_t t;
    uint8_t *buf;
} flight_t;

typedef struct {
    slot_t *slot;
    te_usb_status_t status;
    uint32_t actual;
} handback_t;

typedef struct {
    te_device_t dev;
    usb_desc_config_t cfg;
    uint32_t capacity;
    int claimed_alt[8];
    bool halted[256];
    flight_t q[256][16];
    int qn[256];
    handback_t back[64];
    int nback;
    char log[128][64];
    int nlog;
    te_result_t claim_result[8][8];
    bool release_fails[8];
    int done_id[64];
    int32_t done_status[64];
    uint32_t done_actual[64];
    int ndone;
    uint32_t flush_partial;
    slot_t slots[MAX_SLOTS];
} fake_t;

static fake_t F;

static slot_t *slot_of(te_urb_t *u)
{
    return (slot_t *)((char *)u - offsetof(slot_t, te));
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
    if (F.nlog >= 128) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(F.log[F.nlog++], sizeof F.log[0], fmt, ap);
    va_end(ap);
}

static const usb_desc_altsetting_t *alt_of_interface(uint8_t number)
{
    if (number >= 8 || F.claimed_alt[number] < 0) {
        return NULL;
    }
    return usb_desc_find_alt(&F.cfg, number, (uint8_t)F.claimed_alt[number]);
}

static bool ep_claimed(uint8_t ep)
{
    for (uint8_t n = 0; n < 8; n++) {
        const usb_desc_altsetting_t *a = alt_of_interface(n);
        for (unsigned e = 0; a && e < a->num_endpoints; e++) {
            if (usb_desc_alt_endpoint(&F.cfg, a, e)->address == ep) {
                return true;
            }
        }
    }
    return false;
}

static bool ep_busy(uint8_t ep)
{
    if (F.qn[ep]) {
        return true;
    }
    for (int i = 0; i < F.nback; i++) {
        if (F.back[i].slot->te.xfer.ep_address == ep) {
            return true;
        }
    }
    return false;
}

static te_result_t f_claim(void *ctx, te_device_t *dev, uint8_t intf, uint8_t alt)
{
    note("claim %u %u", intf, alt);
    if (intf >= 8 || alt >= 8) {
        return TE_ERR_NOT_FOUND;
    }
    if (F.claim_result[intf][alt] != TE_OK) {
        return F.claim_result[intf][alt];
    }
    if (F.claimed_alt[intf] >= 0) {
        return TE_ERR_INVALID_STATE;
    }
    if (!usb_desc_find_alt(&F.cfg, intf, alt)) {
        return TE_ERR_NOT_FOUND;
    }
    F.claimed_alt[intf] = alt;
    return TE_OK;
}

static te_result_t f_release(void *ctx, te_device_t *dev, uint8_t intf)
{
    note("release %u", intf);
    if (intf >= 8 || F.claimed_alt[intf] < 0) {
        return TE_ERR_NOT_FOUND;
    }
    if (F.release_fails[intf]) {
        return TE_ERR_INVALID_STATE;
    }
    const usb_desc_altsetting_t *a = alt_of_interface(intf);
    for (unsigned e = 0; a && e < a->num_endpoints; e++) {
        if (ep_busy(usb_desc_alt_endpoint(&F.cfg, a, e)->address)) {
            return TE_ERR_INVALID_STATE;
        }
    }
    F.claimed_alt[intf] = -1;
    return TE_OK;
}

static uint8_t *f_buffer(void *ctx, te_urb_t *u, const te_transfer_t *t)
{
    slot_t *s = slot_of(u);
    if (t->type == USBIP_XFER_ISOCHRONOUS) {
        if (s->n_iso < 8) {
            s->iso_counts[s->n_iso++] = t->iso_count;
        }
        s->last_buffer = s->iso_xfer;
    } else {
        s->last_buffer = s->xfer;
    }
    return s->last_buffer;
}

static te_result_t f_submit(void *ctx, te_urb_t *u, const te_transfer_t *t)
{
    slot_t *s = slot_of(u);
    const uint8_t ep = t->ep_address;
    if (t->type == USBIP_XFER_CONTROL) {
        const uint8_t *b = s->last_buffer;
        note("ctrl %02x %02x v%04x i%04x n%u", b[0], b[1], b[2] | (b[3] << 8), b[4] | (b[5] << 8),
             (unsigned)t->num_bytes);
    } else {
        if (!ep_claimed(ep)) {
            return TE_ERR_NOT_FOUND;
        }
        if (F.halted[ep]) {
            return TE_ERR_INVALID_STATE;
        }
        note("submit %02x %u%s", ep, (unsigned)t->num_bytes, t->zero_packet ? " zlp" : "");
    }
    F.q[ep][F.qn[ep]++] = (flight_t){s, *t, s->last_buffer};
    return TE_OK;
}

static te_result_t f_halt(void *ctx, te_device_t *dev, uint8_t ep)
{
    note("halt %02x", ep);
    if (!ep_claimed(ep)) {
        return TE_ERR_NOT_FOUND;
    }
    F.halted[ep] = true;
    return TE_OK;
}

/* Hand every transfer still queued on ep back as CANCELED. */
static void hand_back_queue(uint8_t ep, uint32_t first_actual)
{
    for (int i = 0; i < F.qn[ep]; i++) {
        F.back[F.nback++] = (handback_t){F.q[ep][i].slot, TE_USB_CANCELED, i == 0 ? first_actual : 0};
    }
    F.qn[ep] = 0;
}

static te_result_t f_flush(void *ctx, te_device_t *dev, uint8_t ep)
{
    note("flush %02x", ep);
    if (!F.halted[ep]) {
        return TE_ERR_INVALID_STATE;
    }
    hand_back_queue(ep, F.flush_partial);
    return TE_OK;
}

static te_result_t f_clear(void *ctx, te_device_t *dev, uint8_t ep)
{
    note("clear %02x", ep);
    if (!F.halted[ep]) {
        return TE_ERR_INVALID_STATE;
    }
    F.halted[ep] = false;
    return TE_OK;
}

static void f_complete(void *ctx, te_urb_t *u)
{
    slot_t *s = slot_of(u);
    F.done_id[F.ndone] = s->id;
    F.done_status[F.ndone] = s->urb.status;
    F.done_actual[F.ndone] = s->urb.actual_length;
    F.ndone++;
}

static const te_host_ops_t OPS = {
    .claim = f_claim,
    .release = f_release,
    .transfer_buffer = f_buffer,
    .submit = f_submit,
    .halt = f_halt,
    .flush = f_flush,
    .clear = f_clear,
    .complete = f_complete,
};

/* Deliver handed-back transfers, as the next usb_host_client_handle_events(). */
static void deliver(void)
{
    while (F.nback > 0) {
        handback_t h = F.back[0];
        memmove(&F.back[0], &F.back[1], (size_t)(F.nback - 1) * sizeof F.back[0]);
        F.nback--;
        te_transfer_done(&F.dev, &h.slot->te, h.status, h.actual, NULL);
    }
}

/* The library finishes the oldest transfer of ep (IN data lands in its buffer). */
static void finish_iso(uint8_t ep, te_usb_status_t status, uint32_t actual, const uint8_t *data,
                       uint32_t len, const te_iso_result_t *iso)
{
    if (F.qn[ep] == 0) {
        CHECK(!"no transfer in flight on that endpoint");
        return;
    }
    flight_t f = F.q[ep][0];
    memmove(&F.q[ep][0], &F.q[ep][1], (size_t)(F.qn[ep] - 1) * sizeof F.q[ep][0]);
    F.qn[ep]--;
    if (data) {
        memcpy(f.buf, data, len);
    }
    if ((ep & 0x0fu) && te_status_halts_pipe(status)) {
        F.halted[ep] = true;
        hand_back_queue(ep, 0);
    }
    te_transfer_done(&F.dev, &f.slot->te, status, actual, iso);
    deliver();
}

static void finish(uint8_t ep, te_usb_status_t status, uint32_t actual, const uint8_t *data,
                   uint32_t len)
{
    finish_iso(ep, status, actual, data, len, NULL);
}

static void setup_device(const uint8_t *config, size_t len, const uint8_t *alts)
{
    memset(&F, 0, sizeof F);
    for (int i = 0; i < 8; i++) {
        F.claimed_alt[i] = -1;
    }
    F.capacity = 1024;
    usb_desc_parse_config(config, len, &F.cfg);
    te_device_init(&F.dev, &F.cfg, alts, 64, &OPS, NULL, NULL);
    F.dev.name = "1-1";
}

static bool attach(void)
{
    bool ok = te_device_attach(&F.dev) == TE_OK;
    F.nlog = 0;
    return ok;
}

static usbip_endpoint_info_t endpoint_info(uint8_t ep)
{
    usbip_device_t view;
    memset(&view, 0, sizeof view);
    usb_desc_fill_device(&F.cfg, F.dev.alts, 64, &view);
    const usbip_endpoint_info_t *info =
        usbip_device_endpoint(&view, ep & 0x0fu, (ep & 0x80u) != 0);
    usbip_endpoint_info_t none = {0};
    return info ? *info : none;
}

/* A bulk/interrupt/iso URB; zero_copy: its buffer is the pool transfer's. */
static slot_t *data_urb(int id, uint8_t ep, uint32_t length, bool zero_copy, uint32_t flags)
{
    slot_t *s = &F.slots[id];
    memset(s, 0, sizeof *s);
    s->id = id;
    usbip_urb_t *u = &s->urb;
    const usbip_endpoint_info_t info = endpoint_info(ep);
    u->ep_address = ep;
    u->dir_in = (ep & 0x80u) != 0;
    u->type = info.type;
    u->max_packet_size = info.max_packet_size;
    u->interval = info.interval;
    u->flags = flags;
    u->length = length;
    u->buffer = zero_copy ? s->xfer : s->session;
    u->buffer_size = BUF_SIZE;
    u->iso = s->iso;
    for (uint32_t i = 0; !u->dir_in && i < length; i++) {
        u->buffer[i] = (uint8_t)(i * 7u + (unsigned)id);
    }
    return s;
}

static slot_t *control_urb(int id, const uint8_t setup[8], uint32_t length)
{
    slot_t *s = &F.slots[id];
    memset(s, 0, sizeof *s);
    s->id = id;
    usbip_urb_t *u = &s->urb;
    memcpy(u->setup, setup, 8);
    u->type = USBIP_XFER_CONTROL;
    u->dir_in = (setup[0] & 0x80u) != 0;
    u->ep_address = u->dir_in ? 0x80 : 0x00;
    u->control_kind = usbip_control_kind_of(setup);
    u->max_packet_size = 64;
    u->length = length;
    u->buffer = s->xfer + TE_SETUP_SIZE; /* zero copy, as the ESP glue does */
    u->buffer_size = BUF_SIZE - TE_SETUP_SIZE;
    return s;
}

static void submit(slot_t *s)
{
    te_urb_submit(&F.dev, &s->te, &s->urb, F.capacity);
}

static int done_index(int id)
{
    for (int i = 0; i < F.ndone; i++) {
        if (F.done_id[i] == id) {
            return i;
        }
    }
    return -1;
}

static int32_t done_status(int id)
{
    int i = done_index(id);
    return i < 0 ? 999 : F.done_status[i];
}

static uint32_t done_actual(int id)
{
    int i = done_index(id);
    return i < 0 ? 0xffffffffu : F.done_actual[i];
}

static bool log_is(const char *const *lines, int n)
{
    bool ok = F.nlog == n;
    for (int i = 0; ok && i < n; i++) {
        ok = strcmp(F.log[i], lines[i]) == 0;
    }
    if (!ok) {
        fprintf(stderr, "  log was (%d lines):\n", F.nlog);
        for (int i = 0; i < F.nlog; i++) {
            fprintf(stderr, "    %s\n", F.log[i]);
        }
    }
    return ok;
}
#define LOG_IS(...)                                                     \
    do {                                                                \
        static const char *const expected_[] = {__VA_ARGS__};           \
        CHECK(log_is(expected_, (int)(sizeof expected_ / sizeof expected_[0]))); \
    } while (0)

static void fill(uint8_t *p, uint32_t n, uint8_t seed)
{
    for (uint32_t i = 0; i < n; i++) {
        p[i] = (uint8_t)(seed + i * 3u);
    }
}

/* ================= pure planners ================= */

TEST(status_to_errno)
{
    CHECK_EQ_INT(te_status_to_errno(TE_USB_COMPLETED), 0);
    CHECK_EQ_INT(te_status_to_errno(TE_USB_ERROR), USBIP_EPROTO);
    CHECK_EQ_INT(te_status_to_errno(TE_USB_TIMED_OUT), USBIP_ETIMEDOUT);
    CHECK_EQ_INT(te_status_to_errno(TE_USB_CANCELED), USBIP_ECONNRESET);
    CHECK_EQ_INT(te_status_to_errno(TE_USB_STALL), USBIP_EPIPE);
    CHECK_EQ_INT(te_status_to_errno(TE_USB_OVERFLOW), USBIP_EOVERFLOW);
    CHECK_EQ_INT(te_status_to_errno(TE_USB_SKIPPED), USBIP_EXDEV);
    CHECK_EQ_INT(te_status_to_errno(TE_USB_NO_DEVICE), USBIP_ENODEV);
    CHECK_EQ_INT(te_status_to_errno((te_usb_status_t)42), USBIP_EPROTO);
    CHECK_EQ_INT(te_iso_packet_errno(TE_USB_SKIPPED), USBIP_EXDEV);
    CHECK(te_status_halts_pipe(TE_USB_STALL) && te_status_halts_pipe(TE_USB_ERROR) &&
          te_status_halts_pipe(TE_USB_OVERFLOW));
    CHECK(!te_status_halts_pipe(TE_USB_CANCELED) && !te_status_halts_pipe(TE_USB_NO_DEVICE));
    CHECK_STR(te_usb_status_name(TE_USB_STALL), "STALL");
}

TEST(chunk_sizes)
{
    CHECK_EQ_INT(te_round_up_to_mps(0, 512), 0);
    CHECK_EQ_INT(te_round_up_to_mps(1, 512), 512);
    CHECK_EQ_INT(te_round_up_to_mps(512, 512), 512);
    CHECK_EQ_INT(te_round_up_to_mps(513, 512), 1024);
    CHECK_EQ_INT(te_round_up_to_mps(100, 0), 100);
    CHECK_EQ_INT(te_max_chunk(USBIP_XFER_BULK, true, 512, 16384), 16384);
    CHECK_EQ_INT(te_max_chunk(USBIP_XFER_BULK, false, 512, 200000), 65536);
    CHECK_EQ_INT(te_max_chunk(USBIP_XFER_BULK, true, 512, 1000), 512);
    CHECK_EQ_INT(te_max_chunk(USBIP_XFER_BULK, true, 512, 100), 0);
    CHECK_EQ_INT(te_max_chunk(USBIP_XFER_BULK, true, 0, 100), 0);
    CHECK_EQ_INT(te_max_chunk(USBIP_XFER_INTERRUPT, true, 64, 16384), 32 * 64);
    CHECK_EQ_INT(te_max_chunk(USBIP_XFER_INTERRUPT, false, 64, 16384), 31 * 64);
    CHECK_EQ_INT(te_max_chunk(USBIP_XFER_ISOCHRONOUS, true, 64, 16384), 0);
}

TEST(chunk_plan_and_zero_length_packet)
{
    te_shape_t s = {.type = USBIP_XFER_BULK, .dir_in = false, .length = 2048, .mps = 512,
                    .flags = USBIP_URB_ZERO_PACKET, .max_chunk = 1024};
    te_chunk_t c;
    REQUIRE(te_next_chunk(&s, 0, &c));
    CHECK(c.offset == 0 && c.length == 1024 && c.num_bytes == 1024 && !c.zero_packet && !c.last);
    REQUIRE(te_next_chunk(&s, 1024, &c));
    CHECK(c.offset == 1024 && c.length == 1024 && c.zero_packet && c.last);
    REQUIRE(te_next_chunk(&s, 2048, &c)); /* resumed right before the ZLP */
    CHECK(c.offset == 2048 && c.length == 0 && !c.zero_packet && c.last);
    s.flags = 0;
    CHECK(!te_next_chunk(&s, 2048, &c));
    s.flags = USBIP_URB_ZERO_PACKET;
    s.length = 1500; /* not a multiple of MPS: it ends with a short packet anyway */
    REQUIRE(te_next_chunk(&s, 0, &c));
    CHECK(!c.zero_packet && !c.last && c.length == 1024);
    REQUIRE(te_next_chunk(&s, 1024, &c));
    CHECK(!c.zero_packet && c.last && c.length == 476);
    s.length = 0; /* a 0-byte OUT is itself the zero-length packet */
    REQUIRE(te_next_chunk(&s, 0, &c));
    CHECK(c.length == 0 && c.num_bytes == 0 && !c.zero_packet && c.last);

    te_shape_t in = {.type = USBIP_XFER_BULK, .dir_in = true, .length = 1000, .mps = 512,
                     .max_chunk = 16384};
    REQUIRE(te_next_chunk(&in, 0, &c));
    CHECK(c.length == 1000 && c.num_bytes == 1024 && c.last);
    uint32_t done = 0;
    int32_t status = 0;
    CHECK(te_chunk_finish(&in, &c, 1024, &done, &status)); /* babble past the URB */
    CHECK_EQ_INT(done, 1000);
    CHECK_EQ_INT(status, USBIP_EOVERFLOW);

    in.length = 3000;
    in.max_chunk = 1024;
    REQUIRE(te_next_chunk(&in, 0, &c));
    done = 0;
    status = 0;
    CHECK(!te_chunk_finish(&in, &c, 1024, &done, &status));
    CHECK(te_chunk_finish(&in, &c, 600, &done, &status)); /* short: the URB ends */
    CHECK_EQ_INT(done, 1624);
    CHECK_EQ_INT(status, 0);
}

TEST(iso_layout_and_packing)
{
    CHECK_EQ_INT(te_iso_interval_slots(1), 1);
    CHECK_EQ_INT(te_iso_interval_slots(4), 8);
    CHECK_EQ_INT(te_iso_interval_slots(0), 1);
    CHECK_EQ_INT(te_iso_interval_slots(20), 32768);

    usbip_iso_packet_t p[100];
    for (uint32_t i = 0; i < 100; i++) {
        p[i] = (usbip_iso_packet_t){.offset = i * 200, .length = 150 + i};
    }
    te_iso_layout_t l;
    REQUIRE(te_iso_layout(p, 10, true, 128, 4, &l) == USBIP_OK);
    CHECK_EQ_INT(l.packets_per_chunk, 7);
    CHECK_EQ_INT(l.full_chunks, 1);
    CHECK_EQ_INT(l.tail_packets, 3);
    CHECK_EQ_INT(l.chunk_bytes, 7 * 256);
    CHECK_EQ_INT(l.tail_bytes, 3 * 256);
    CHECK_EQ_INT(te_iso_chunk_packets(&l, 0), 7);
    CHECK_EQ_INT(te_iso_chunk_packets(&l, 1), 3);
    CHECK_EQ_INT(te_iso_chunk_packets(&l, 2), 0);
    REQUIRE(te_iso_layout(p, 100, false, 1024, 1, &l) == USBIP_OK);
    CHECK_EQ_INT(l.packets_per_chunk, TE_ISO_MAX_SLOTS);
    CHECK_EQ_INT(l.tail_packets, 39);
    uint32_t expect = 0;
    for (uint32_t i = 0; i < 61; i++) {
        expect += 150 + i; /* OUT packets are not rounded */
    }
    CHECK_EQ_INT(l.chunk_bytes, expect);
    CHECK(te_iso_layout(p, 3, true, 128, 7, &l) == USBIP_ERR_NOT_SUPPORTED); /* 64 slots */
    CHECK(te_iso_layout(p, 0, true, 128, 1, &l) == USBIP_OK && l.packets_per_chunk == 0);
    CHECK(te_iso_layout(p, 3, true, 0, 1, &l) == USBIP_ERR_INVALID_ARG);

    /* OUT: from USB/IP offsets to back to back. */
    uint8_t urb_buf[1000], out[1000];
    fill(urb_buf, sizeof urb_buf, 1);
    usbip_iso_packet_t q[3] = {{.offset = 600, .length = 50}, {.offset = 0, .length = 100},
                               {.offset = 300, .length = 0}};
    CHECK_EQ_INT(te_iso_pack_out(urb_buf, q, 0, 3, out), 150);
    CHECK(memcmp(out, urb_buf + 600, 50) == 0);
    CHECK(memcmp(out + 50, urb_buf, 100) == 0);

    /* IN: from back to back (each slot rounded to MPS) to USB/IP offsets. */
    uint8_t src[3 * 64], dst[1000];
    memset(dst, 0, sizeof dst);
    fill(src, sizeof src, 9);
    usbip_iso_packet_t r[3] = {{.offset = 500, .length = 40}, {.offset = 0, .length = 64},
                               {.offset = 200, .length = 30}};
    const te_iso_result_t res[3] = {{TE_USB_COMPLETED, 40}, {TE_USB_SKIPPED, 0},
                                    {TE_USB_COMPLETED, 64}};
    te_iso_unpack(r, 0, 3, res, src, dst, 64, true);
    CHECK(memcmp(dst + 500, src, 40) == 0);
    CHECK(memcmp(dst + 200, src + 128, 30) == 0);
    CHECK(r[0].actual_length == 40 && r[0].status == 0);
    CHECK(r[1].actual_length == 0 && r[1].status == USBIP_EXDEV);
    CHECK(r[2].actual_length == 30 && r[2].status == USBIP_EOVERFLOW);
    te_iso_fail(r, 1, 2, USBIP_ESHUTDOWN);
    CHECK(r[2].status == USBIP_ESHUTDOWN && r[2].actual_length == 0 && r[0].status == 0);
}

TEST(pool_reserves_a_share_per_imported_device)
{
    CHECK_EQ_INT(te_pool_default_reserve(32, 8), 2);
    CHECK_EQ_INT(te_pool_default_reserve(4, 8), 1);
    CHECK_EQ_INT(te_pool_default_reserve(32, 0), 32);
    te_pool_account_t acc[3];
    te_pool_t pool;
    te_pool_init(&pool, 8, acc, 3, 2);
    te_pool_set_active(&pool, 0, true);
    te_pool_set_active(&pool, 1, true);
    for (int i = 0; i < 6; i++) {
        CHECK(te_pool_take(&pool, 0));
    }
    CHECK(!te_pool_take(&pool, 0)); /* the last two are device 1's reserve */
    CHECK_EQ_INT(te_pool_owed_to_others(&pool, 0), 2);
    CHECK(te_pool_take(&pool, 1));
    CHECK(te_pool_take(&pool, 1));
    CHECK(!te_pool_take(&pool, 1)); /* empty */
    te_pool_give(&pool, 0);
    CHECK(te_pool_take(&pool, 1)); /* nobody else is owed anything now */
    CHECK_EQ_INT(pool.free, 0);
    te_pool_give(&pool, 1);
    te_pool_set_active(&pool, 1, false);
    te_pool_give(&pool, 1);
    te_pool_give(&pool, 1);
    CHECK(te_pool_take(&pool, 0) && te_pool_take(&pool, 0) && te_pool_take(&pool, 0));
    te_pool_give(&pool, 2); /* nothing held: ignored */
    CHECK(!te_pool_take(&pool, 7)); /* unknown account */
    CHECK_EQ_INT(pool.free, 0);
}

TEST(port_paths_speeds_and_translators)
{
    uint8_t ports[7];
    size_t depth = 0;
    REQUIRE(te_port_path(NULL, 0, ports, 7, &depth) == USBIP_OK);
    CHECK(depth == 1 && ports[0] == 1);
    const uint8_t hops[2] = {3, 2}; /* port 3 of a hub on port 2 of the root's hub */
    REQUIRE(te_port_path(hops, 2, ports, 7, &depth) == USBIP_OK);
    CHECK(depth == 3 && ports[0] == 1 && ports[1] == 2 && ports[2] == 3);
    const uint8_t zero[1] = {0};
    CHECK(te_port_path(zero, 1, ports, 7, &depth) == USBIP_ERR_INVALID_ARG);
    const uint8_t deep[7] = {1, 1, 1, 1, 1, 1, 1};
    CHECK(te_port_path(deep, 7, ports, 7, &depth) == USBIP_ERR_INVALID_ARG);
    CHECK(te_port_path(deep, 6, ports, 7, &depth) == USBIP_OK && depth == 7);
    CHECK_EQ_INT(te_speed_to_usbip(0), USBIP_SPEED_LOW);
    CHECK_EQ_INT(te_speed_to_usbip(1), USBIP_SPEED_FULL);
    CHECK_EQ_INT(te_speed_to_usbip(2), USBIP_SPEED_HIGH);
    CHECK_EQ_INT(te_speed_to_usbip(9), USBIP_SPEED_UNKNOWN);
    CHECK(te_needs_transaction_translator(USBIP_SPEED_FULL, USBIP_SPEED_HIGH));
    CHECK(te_needs_transaction_translator(USBIP_SPEED_LOW, USBIP_SPEED_HIGH));
    CHECK(!te_needs_transaction_translator(USBIP_SPEED_FULL, USBIP_SPEED_UNKNOWN));
    CHECK(!te_needs_transaction_translator(USBIP_SPEED_LOW, USBIP_SPEED_FULL));
    CHECK(!te_needs_transaction_translator(USBIP_SPEED_HIGH, USBIP_SPEED_HIGH));
}

/* ================= bulk and interrupt ================= */

TEST(zero_copy_out_is_one_transfer)
{
    setup_device(CDC_MSC_CONFIG, sizeof CDC_MSC_CONFIG, NULL);
    REQUIRE(attach());
    slot_t *a = data_urb(1, 0x02, 700, true, 0);
    submit(a);
    LOG_IS("submit 02 700");
    CHECK(F.q[0x02][0].buf == a->urb.buffer);
    finish(0x02, TE_USB_COMPLETED, 700, NULL, 0);
    CHECK_EQ_INT(done_status(1), 0);
    CHECK_EQ_INT(done_actual(1), 700);
    CHECK(te_device_idle(&F.dev));
}

TEST(large_in_urb_is_chunked_and_reassembled)
{
    setup_device(CDC_MSC_CONFIG, sizeof CDC_MSC_CONFIG, NULL);
    REQUIRE(attach());
    slot_t *a = data_urb(1, 0x82, 3000, false, 0);
    submit(a);
    uint8_t dev_data[3000];
    fill(dev_data, sizeof dev_data, 5);
    CHECK_EQ_INT(F.qn[0x82], 1);
    finish(0x82, TE_USB_COMPLETED, 1024, dev_data, 1024);
    finish(0x82, TE_USB_COMPLETED, 1024, dev_data + 1024, 1024);
    CHECK_EQ_INT(F.q[0x82][0].t.length, 952);
    finish(0x82, TE_USB_COMPLETED, 952, dev_data + 2048, 952);
    LOG_IS("submit 82 1024", "submit 82 1024", "submit 82 1024");
    CHECK_EQ_INT(done_status(1), 0);
    CHECK_EQ_INT(done_actual(1), 3000);
    CHECK(memcmp(a->session, dev_data, 3000) == 0);
}

TEST(short_in_chunk_ends_the_urb)
{
    setup_device(CDC_MSC_CONFIG, sizeof CDC_MSC_CONFIG, NULL);
    REQUIRE(attach());
    slot_t *a = data_urb(1, 0x82, 3000, false, USBIP_URB_SHORT_NOT_OK);
    submit(a);
    finish(0x82, TE_USB_COMPLETED, 600, NULL, 0);
    CHECK_EQ_INT(done_status(1), 0); /* the session turns it into -EREMOTEIO */
    CHECK_EQ_INT(done_actual(1), 600);
    CHECK_EQ_INT(F.qn[0x82], 0);
    LOG_IS("submit 82 1024");
}

TEST(in_length_rounded_up_and_babble_clamped)
{
    setup_device(CDC_MSC_CONFIG, sizeof CDC_MSC_CONFIG, NULL);
    REQUIRE(attach());
    slot_t *a = data_urb(1, 0x81, 5, true, 0); /* interrupt IN, MPS 8 */
    submit(a);
    LOG_IS("submit 81 8");
    finish(0x81, TE_USB_COMPLETED, 8, NULL, 0);
    CHECK_EQ_INT(done_status(1), USBIP_EOVERFLOW);
    CHECK_EQ_INT(done_actual(1), 5);
}

TEST(zero_packet_only_on_the_last_out_chunk)
{
    setup_device(CDC_MSC_CONFIG, sizeof CDC_MSC_CONFIG, NULL);
    REQUIRE(attach());
    slot_t *a = data_urb(1, 0x02, 2048, false, USBIP_URB_ZERO_PACKET);
    submit(a);
    CHECK(memcmp(a->xfer, a->session, 1024) == 0);
    finish(0x02, TE_USB_COMPLETED, 1024, NULL, 0);
    CHECK(memcmp(a->xfer, a->session + 1024, 1024) == 0);
    finish(0x02, TE_USB_COMPLETED, 1024, NULL, 0);
    slot_t *b = data_urb(2, 0x02, 1000, false, USBIP_URB_ZERO_PACKET);
    submit(b);
    finish(0x02, TE_USB_COMPLETED, 1000, NULL, 0);
    slot_t *c = data_urb(3, 0x02, 0, true, USBIP_URB_ZERO_PACKET);
    submit(c);
    finish(0x02, TE_USB_COMPLETED, 0, NULL, 0);
    LOG_IS("submit 02 1024", "submit 02 1024 zlp", "submit 02 1000", "submit 02 0");
    CHECK_EQ_INT(done_actual(1), 2048);
    CHECK_EQ_INT(done_actual(2), 1000);
    CHECK_EQ_INT(done_status(3), 0);
}

TEST(urbs_behind_a_chunked_one_wait_their_turn)
{
    setup_device(CDC_MSC_CONFIG, sizeof CDC_MSC_CONFIG, NULL);
    REQUIRE(attach());
    slot_t *a = data_urb(1, 0x02, 3000, false, 0);
    slot_t *b = data_urb(2, 0x02, 100, true, 0);
    submit(a);
    submit(b);
    CHECK_EQ_INT(F.qn[0x02], 1);
    finish(0x02, TE_USB_COMPLETED, 1024, NULL, 0);
    CHECK_EQ_INT(F.qn[0x02], 1);
    finish(0x02, TE_USB_COMPLETED, 1024, NULL, 0);
    CHECK_EQ_INT(F.qn[0x02], 2); /* A's last chunk, then B */
    CHECK(F.q[0x02][0].slot == a && F.q[0x02][1].slot == b);
    finish(0x02, TE_USB_COMPLETED, 952, NULL, 0);
    finish(0x02, TE_USB_COMPLETED, 100, NULL, 0);
    CHECK(done_index(1) == 0 && done_index(2) == 1);
    CHECK_EQ_INT(done_actual(1), 3000);
}

TEST(unlink_of_the_oldest_flushes_and_resubmits_the_others_in_order)
{
    setup_device(CDC_MSC_CONFIG, sizeof CDC_MSC_CONFIG, NULL);
    REQUIRE(attach());
    slot_t *a = data_urb(1, 0x82, 512, true, 0);
    slot_t *b = data_urb(2, 0x82, 512, true, 0);
    slot_t *c = data_urb(3, 0x82, 512, true, 0);
    submit(a);
    submit(b);
    submit(c);
    F.nlog = 0;
    te_urb_cancel(&F.dev, &a->te);
    LOG_IS("halt 82", "flush 82");
    CHECK_EQ_INT(F.ndone, 0); /* nothing completes inside cancel */
    deliver();
    LOG_IS("halt 82", "flush 82", "clear 82", "submit 82 512", "submit 82 512");
    CHECK_EQ_INT(done_status(1), USBIP_ECONNRESET);
    CHECK(F.q[0x82][0].slot == b && F.q[0x82][1].slot == c);
    uint8_t d[512];
    fill(d, sizeof d, 77);
    finish(0x82, TE_USB_COMPLETED, 512, d, 512);
    finish(0x82, TE_USB_COMPLETED, 100, NULL, 0);
    CHECK(done_index(1) == 0 && done_index(2) == 1 && done_index(3) == 2);
    CHECK_EQ_INT(done_actual(3), 100);
    CHECK(memcmp(b->urb.buffer, d, 512) == 0);
    te_urb_cancel(&F.dev, &b->te); /* already finished: nothing happens */
    CHECK_EQ_INT(F.ndone, 3);
    CHECK(te_device_idle(&F.dev));
}

TEST(unlink_behind_a_running_urb_waits_until_it_is_the_oldest)
{
    /* Halting now would stop A, whose bytes the library would report as 0:
     * B's cancel waits until A is back. */
    setup_device(CDC_MSC_CONFIG, sizeof CDC_MSC_CONFIG, NULL);
    REQUIRE(attach());
    slot_t *a = data_urb(1, 0x02, 512, true, 0);
    slot_t *b = data_urb(2, 0x02, 512, true, 0);
    slot_t *c = data_urb(3, 0x02, 512, true, 0);
    submit(a);
    submit(b);
    submit(c);
    F.nlog = 0;
    te_urb_cancel(&F.dev, &b->te);
    deliver();
    CHECK_EQ_INT(F.nlog, 0);
    CHECK_EQ_INT(F.ndone, 0);
    finish(0x02, TE_USB_COMPLETED, 512, NULL, 0); /* A done: now B is the oldest */
    LOG_IS("halt 02", "flush 02", "clear 02", "submit 02 512");
    CHECK_EQ_INT(done_status(1), 0);
    CHECK_EQ_INT(done_actual(1), 512);
    CHECK_EQ_INT(done_status(2), USBIP_ECONNRESET);
    CHECK(F.q[0x02][0].slot == c);
    finish(0x02, TE_USB_COMPLETED, 512, NULL, 0);
    CHECK(done_index(1) == 0 && done_index(2) == 1 && done_index(3) == 2);

    /* The one ahead completing with the victim already finished by the
     * device: no halt at all, the completion stands. */
    setup_device(CDC_MSC_CONFIG, sizeof CDC_MSC_CONFIG, NULL);
    REQUIRE(attach());
    a = data_urb(1, 0x82, 512, true, 0);
    b = data_urb(2, 0x82, 512, true, 0);
    submit(a);
    submit(b);
    te_urb_cancel(&F.dev, &b->te);
    F.nlog = 0;
    finish(0x82, TE_USB_STALL, 0, NULL, 0); /* A fails: the library flushes B */
    CHECK_EQ_INT(done_status(1), USBIP_EPIPE);
    CHECK_EQ_INT(done_status(2), USBIP_ECONNRESET);
    LOG_IS("clear 82");
    CHECK(te_device_idle(&F.dev));
}

TEST(a_stopped_bystander_resumes_after_the_bytes_it_moved)
{
    /* CLEAR_FEATURE(HALT) on 0x82 halts its sibling 0x02 too; were the
     * library to report what the running OUT transfer moved, it resumes
     * there. */
    setup_device(CDC_MSC_CONFIG, sizeof CDC_MSC_CONFIG, NULL);
    REQUIRE(attach());
    slot_t *a = data_urb(1, 0x02, 1000, false, 0);
    submit(a);
    F.flush_partial = 512;
    F.nlog = 0;
    const uint8_t clear_82[8] = {0x02, 0x01, 0x00, 0x00, 0x82, 0x00, 0x00, 0x00};
    submit(control_urb(2, clear_82, 0));
    deliver();
    finish(0x00, TE_USB_COMPLETED, 8, NULL, 0); /* CLEAR_FEATURE 0x82 */
    finish(0x00, TE_USB_COMPLETED, 8, NULL, 0); /* CLEAR_FEATURE 0x02 (sibling) */
    CHECK_EQ_INT(done_status(2), 0);
    CHECK_STR(F.log[F.nlog - 1], "submit 02 488");
    CHECK(memcmp(a->xfer, a->session + 512, 488) == 0);
    finish(0x02, TE_USB_COMPLETED, 488, NULL, 0);
    CHECK_EQ_INT(done_status(1), 0);
    CHECK_EQ_INT(done_actual(1), 1000);
}

TEST(submit_racing_with_a_library_halt_waits_for_the_clear)
{
    /* The library halted 0x82 after A failed but has not said so yet: the
     * submit of C is refused with INVALID_STATE. C must not fail (and
     * overtake A's completion); it waits for the clear. */
    setup_device(CDC_MSC_CONFIG, sizeof CDC_MSC_CONFIG, NULL);
    REQUIRE(attach());
    slot_t *a = data_urb(1, 0x82, 512, true, 0);
    submit(a);
    F.halted[0x82] = true;
    slot_t *c = data_urb(3, 0x82, 512, true, 0);
    F.nlog = 0;
    submit(c);
    CHECK_EQ_INT(F.ndone, 0);
    F.halted[0x82] = false;  /* finish() halts it again with the STALL */
    finish(0x82, TE_USB_STALL, 0, NULL, 0);
    CHECK_EQ_INT(done_status(1), USBIP_EPIPE);
    CHECK(F.q[0x82][0].slot == c);
    finish(0x82, TE_USB_COMPLETED, 512, NULL, 0);
    CHECK_EQ_INT(done_status(3), 0);
    CHECK(done_index(1) == 0 && done_index(3) == 1);
}

TEST(zero_length_interrupt_urb_is_refused)
{
    setup_device(CDC_MSC_CONFIG, sizeof CDC_MSC_CONFIG, NULL);
    REQUIRE(attach());
    F.nlog = 0;
    submit(data_urb(1, 0x81, 0, true, 0));
    CHECK_EQ_INT(done_status(1), USBIP_EINVAL);
    CHECK_EQ_INT(F.nlog, 0); /* nothing reached the library */
    submit(data_urb(2, 0x02, 0, true, 0)); /* bulk: a zero-length packet is fine */
    LOG_IS("submit 02 0");
}

TEST(stall_fails_one_urb_and_the_queue_goes_on)
{
    setup_device(CDC_MSC_CONFIG, sizeof CDC_MSC_CONFIG, NULL);
    REQUIRE(attach());
    slot_t *a = data_urb(1, 0x82, 512, true, 0);
    slot_t *b = data_urb(2, 0x82, 512, true, 0);
    slot_t *c = data_urb(3, 0x82, 512, true, 0);
    submit(a);
    submit(b);
    submit(c);
    F.nlog = 0;
    finish(0x82, TE_USB_STALL, 0, NULL, 0);
    CHECK_EQ_INT(done_status(1), USBIP_EPIPE);
    LOG_IS("clear 82", "submit 82 512", "submit 82 512");
    CHECK(F.q[0x82][0].slot == b && F.q[0x82][1].slot == c);
    finish(0x82, TE_USB_STALL, 0, NULL, 0); /* the device is still halted */
    CHECK_EQ_INT(done_status(2), USBIP_EPIPE);
    finish(0x82, TE_USB_COMPLETED, 512, NULL, 0);
    CHECK_EQ_INT(done_status(3), 0);
    CHECK(done_index(1) == 0 && done_index(2) == 1 && done_index(3) == 2);
    CHECK(!F.halted[0x82]);
}

TEST(cancel_before_the_library_has_it)
{
    setup_device(CDC_MSC_CONFIG, sizeof CDC_MSC_CONFIG, NULL);
    REQUIRE(attach());
    slot_t *a = data_urb(1, 0x02, 3000, false, 0);
    slot_t *b = data_urb(2, 0x02, 100, true, 0);
    submit(a);
    submit(b); /* waits behind A's chunks */
    F.nlog = 0;
    te_urb_cancel(&F.dev, &b->te);
    CHECK_EQ_INT(done_status(2), USBIP_ECONNRESET);
    CHECK_EQ_INT(F.nlog, 0); /* no halt needed */
    finish(0x02, TE_USB_COMPLETED, 1024, NULL, 0);
    te_urb_cancel(&F.dev, &a->te); /* between chunks: in the library again */
    deliver();
    CHECK_EQ_INT(done_status(1), USBIP_ECONNRESET);
    CHECK_EQ_INT(done_actual(1), 1024);
    CHECK(te_device_idle(&F.dev));
    CHECK(!F.halted[0x02]);
}

/* ================= control ================= */

TEST(control_one_at_a_time_and_not_cancellable)
{
    setup_device(CDC_MSC_CONFIG, sizeof CDC_MSC_CONFIG, NULL);
    REQUIRE(attach());
    const uint8_t get_dev[8] = {0x80, 0x06, 0x00, 0x01, 0x00, 0x00, 0x12, 0x00};
    slot_t *a = control_urb(1, get_dev, 18);
    slot_t *b = control_urb(2, get_dev, 18);
    slot_t *c = control_urb(3, get_dev, 18);
    submit(a);
    submit(b);
    submit(c);
    LOG_IS("ctrl 80 06 v0100 i0000 n72");
    te_urb_cancel(&F.dev, &a->te); /* started: completes normally */
    te_urb_cancel(&F.dev, &b->te); /* queued: ends at once */
    CHECK_EQ_INT(done_status(2), USBIP_ECONNRESET);
    uint8_t reply[8 + 18];
    memcpy(reply, get_dev, 8);
    fill(reply + 8, 18, 40);
    finish(0x00, TE_USB_COMPLETED, 8 + 18, reply, sizeof reply);
    CHECK_EQ_INT(done_status(1), 0);
    CHECK_EQ_INT(done_actual(1), 18);
    CHECK(memcmp(a->urb.buffer, reply + 8, 18) == 0);
    CHECK_EQ_INT(F.qn[0], 1); /* C now */
    finish(0x00, TE_USB_STALL, 8, NULL, 0);
    CHECK_EQ_INT(done_status(3), USBIP_EPIPE);

    const uint8_t too_long[8] = {0x80, 0x06, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01};
    slot_t *d = control_urb(4, too_long, 64); /* wLength 256 > 64-byte buffer */
    submit(d);
    CHECK_EQ_INT(done_status(4), USBIP_EINVAL);
    CHECK(te_device_idle(&F.dev));
}

/* ================= special requests ================= */

static const uint8_t SET_INTF_1_1[8] = {0x01, 0x0b, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00};
static const uint8_t SET_INTF_1_0[8] = {0x01, 0x0b, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00};
static const uint8_t SET_INTF_1_2[8] = {0x01, 0x0b, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00};

TEST(set_interface_reclaims_and_sends_the_request)
{
    setup_device(UAC_CONFIG, sizeof UAC_CONFIG, NULL);
    REQUIRE(attach());
    slot_t *s = control_urb(1, SET_INTF_1_1, 0);
    submit(s);
    LOG_IS("release 1", "claim 1 1", "ctrl 01 0b v0001 i0001 n8");
    CHECK_EQ_INT(F.ndone, 0);
    finish(0x00, TE_USB_COMPLETED, 8, NULL, 0);
    CHECK_EQ_INT(done_status(1), 0);
    CHECK(s->te.alts_valid && s->te.alts[1] == 1 && s->te.alts[0] == 0);
    CHECK_EQ_INT(F.claimed_alt[1], 1);
    /* Its iso endpoint works now. */
    slot_t *iso = data_urb(2, 0x01, 200, false, 0);
    iso->urb.num_iso_packets = 1;
    iso->iso[0] = (usbip_iso_packet_t){.offset = 0, .length = 200};
    F.nlog = 0;
    submit(iso);
    LOG_IS("submit 01 200");
}

TEST(set_interface_ends_the_urbs_of_the_interface)
{
    setup_device(UAC_CONFIG, sizeof UAC_CONFIG, (const uint8_t[16]){0, 1, 0});
    REQUIRE(attach());
    slot_t *iso = data_urb(1, 0x01, 200, false, 0);
    iso->urb.num_iso_packets = 1;
    iso->iso[0] = (usbip_iso_packet_t){.offset = 0, .length = 200};
    submit(iso);
    F.nlog = 0;
    slot_t *s = control_urb(2, SET_INTF_1_0, 0);
    submit(s);
    LOG_IS("halt 01", "flush 01");
    deliver();
    CHECK_EQ_INT(done_status(1), USBIP_ESHUTDOWN);
    CHECK_EQ_INT(iso->iso[0].status, USBIP_ESHUTDOWN);
    LOG_IS("halt 01", "flush 01", "clear 01", "release 1", "claim 1 0",
           "ctrl 01 0b v0000 i0001 n8");
    finish(0x00, TE_USB_COMPLETED, 8, NULL, 0);
    CHECK_EQ_INT(done_status(2), 0);
    CHECK(s->te.alts[1] == 0);
    /* A URB for the endpoint that no longer exists. */
    slot_t *late = data_urb(3, 0x01, 200, false, 0);
    late->urb.type = USBIP_XFER_ISOCHRONOUS;
    late->urb.max_packet_size = 200;
    late->urb.num_iso_packets = 1;
    late->iso[0] = (usbip_iso_packet_t){.offset = 0, .length = 200};
    submit(late);
    CHECK_EQ_INT(done_status(3), USBIP_EPIPE);
}

TEST(set_interface_without_resources_keeps_the_old_setting)
{
    setup_device(UAC_CONFIG, sizeof UAC_CONFIG, NULL);
    REQUIRE(attach());
    F.claim_result[1][2] = TE_ERR_NO_RESOURCES; /* no host channel / FIFO room */
    submit(control_urb(1, SET_INTF_1_2, 0));
    LOG_IS("release 1", "claim 1 2", "claim 1 0");
    CHECK_EQ_INT(done_status(1), TE_ENOSPC);
    CHECK_EQ_INT(F.claimed_alt[1], 0);
    CHECK(F.slots[1].te.alts[1] == 0);
}

TEST(set_interface_stall)
{
    setup_device(UAC_CONFIG, sizeof UAC_CONFIG, NULL);
    REQUIRE(attach());
    submit(control_urb(1, SET_INTF_1_1, 0));
    finish(0x00, TE_USB_STALL, 8, NULL, 0); /* refused: back to alt 0 */
    LOG_IS("release 1", "claim 1 1", "ctrl 01 0b v0001 i0001 n8", "release 1", "claim 1 0");
    CHECK_EQ_INT(done_status(1), USBIP_EPIPE);
    CHECK_EQ_INT(F.claimed_alt[1], 0);
    /* Interface 0 has a single setting: a stall is fine, as on Linux. */
    const uint8_t set_intf_0_0[8] = {0x01, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    submit(control_urb(2, set_intf_0_0, 0));
    finish(0x00, TE_USB_STALL, 8, NULL, 0);
    CHECK_EQ_INT(done_status(2), 0);
    /* No such alternate setting or interface: refused without touching anything. */
    F.nlog = 0;
    const uint8_t bad_alt[8] = {0x01, 0x0b, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00};
    const uint8_t bad_intf[8] = {0x01, 0x0b, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00};
    submit(control_urb(3, bad_alt, 0));
    submit(control_urb(4, bad_intf, 0));
    CHECK_EQ_INT(done_status(3), USBIP_EPIPE);
    CHECK_EQ_INT(done_status(4), USBIP_EPIPE);
    CHECK_EQ_INT(F.nlog, 0);
}

TEST(set_configuration_is_a_local_reset)
{
    setup_device(UAC_CONFIG, sizeof UAC_CONFIG, (const uint8_t[16]){0, 1, 1});
    REQUIRE(attach());
    const uint8_t set_config_1[8] = {0x00, 0x09, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00};
    slot_t *s = control_urb(1, set_config_1, 0);
    submit(s);
    LOG_IS("release 1", "claim 1 0", "ctrl 01 0b v0000 i0001 n8");
    finish(0x00, TE_USB_COMPLETED, 8, NULL, 0);
    LOG_IS("release 1", "claim 1 0", "ctrl 01 0b v0000 i0001 n8",
           "release 2", "claim 2 0", "ctrl 01 0b v0000 i0002 n8");
    finish(0x00, TE_USB_STALL, 8, NULL, 0); /* logged, not fatal */
    CHECK_EQ_INT(done_status(1), 0);
    CHECK(s->te.alts_valid && s->te.alts[1] == 0 && s->te.alts[2] == 0);
    /* Another configuration: the library cannot switch, so it is refused. */
    F.nlog = 0;
    const uint8_t set_config_2[8] = {0x00, 0x09, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00};
    submit(control_urb(2, set_config_2, 0));
    CHECK_EQ_INT(done_status(2), USBIP_EPIPE);
    CHECK_EQ_INT(F.nlog, 0);
}

TEST(set_configuration_ends_queued_urbs)
{
    setup_device(CDC_MSC_CONFIG, sizeof CDC_MSC_CONFIG, NULL);
    REQUIRE(attach());
    submit(data_urb(1, 0x82, 512, true, 0));
    const uint8_t set_config_1[8] = {0x00, 0x09, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00};
    F.nlog = 0;
    submit(control_urb(2, set_config_1, 0));
    deliver();
    LOG_IS("halt 82", "flush 82", "clear 82");
    CHECK_EQ_INT(done_status(1), USBIP_ESHUTDOWN);
    CHECK_EQ_INT(done_status(2), 0);
    /* The endpoints run again afterwards. */
    F.nlog = 0;
    submit(data_urb(3, 0x82, 512, true, 0));
    LOG_IS("submit 82 512");
}

TEST(clear_halt_gives_fresh_pipes_and_resets_sibling_toggles)
{
    setup_device(CDC_MSC_CONFIG, sizeof CDC_MSC_CONFIG, NULL);
    REQUIRE(attach());
    slot_t *out = data_urb(1, 0x02, 512, true, 0);
    submit(out);
    F.nlog = 0;
    const uint8_t clear_82[8] = {0x02, 0x01, 0x00, 0x00, 0x82, 0x00, 0x00, 0x00};
    slot_t *s = control_urb(2, clear_82, 0);
    submit(s);
    deliver();
    LOG_IS("halt 02", "flush 02", "clear 02", "release 1", "claim 1 0",
           "ctrl 02 01 v0000 i0082 n8");
    CHECK_EQ_INT(done_index(1), -1); /* the OUT URB waits, it is not failed */
    finish(0x00, TE_USB_COMPLETED, 8, NULL, 0);
    LOG_IS("halt 02", "flush 02", "clear 02", "release 1", "claim 1 0",
           "ctrl 02 01 v0000 i0082 n8", "ctrl 02 01 v0000 i0002 n8");
    finish(0x00, TE_USB_STALL, 8, NULL, 0); /* sibling result: logged only */
    CHECK_EQ_INT(done_status(2), 0);
    CHECK_EQ_INT(F.nlog, 8);
    CHECK_STR(F.log[7], "submit 02 512");
    finish(0x02, TE_USB_COMPLETED, 512, NULL, 0);
    CHECK_EQ_INT(done_status(1), 0);

    /* The device refuses the request: its status is the URB's. */
    const uint8_t clear_83[8] = {0x02, 0x01, 0x00, 0x00, 0x83, 0x00, 0x00, 0x00};
    submit(control_urb(3, clear_83, 0));
    finish(0x00, TE_USB_STALL, 8, NULL, 0);
    finish(0x00, TE_USB_COMPLETED, 8, NULL, 0); /* CLEAR_FEATURE to 0x03 */
    CHECK_EQ_INT(done_status(3), USBIP_EPIPE);
}

TEST(clear_halt_of_ep0_or_unknown_endpoint_is_forwarded)
{
    setup_device(CDC_MSC_CONFIG, sizeof CDC_MSC_CONFIG, NULL);
    REQUIRE(attach());
    const uint8_t clear_0[8] = {0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    const uint8_t clear_85[8] = {0x02, 0x01, 0x00, 0x00, 0x85, 0x00, 0x00, 0x00};
    submit(control_urb(1, clear_0, 0));
    finish(0x00, TE_USB_COMPLETED, 8, NULL, 0);
    submit(control_urb(2, clear_85, 0));
    finish(0x00, TE_USB_STALL, 8, NULL, 0);
    LOG_IS("ctrl 02 01 v0000 i0000 n8", "ctrl 02 01 v0000 i0085 n8");
    CHECK_EQ_INT(done_status(1), 0);
    CHECK_EQ_INT(done_status(2), USBIP_EPIPE);
}

TEST(port_reset_is_refused)
{
    setup_device(CDC_MSC_CONFIG, sizeof CDC_MSC_CONFIG, NULL);
    REQUIRE(attach());
    const uint8_t reset[8] = {0x23, 0x03, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00};
    submit(control_urb(1, reset, 0));
    CHECK_EQ_INT(done_status(1), USBIP_EPIPE);
    CHECK_EQ_INT(F.nlog, 0);
}

/* ================= lifecycle ================= */

TEST(device_gone_ends_every_urb)
{
    setup_device(CDC_MSC_CONFIG, sizeof CDC_MSC_CONFIG, NULL);
    REQUIRE(attach());
    submit(data_urb(1, 0x82, 3000, false, 0));
    submit(data_urb(2, 0x82, 512, true, 0)); /* waiting behind 1 */
    const uint8_t get_dev[8] = {0x80, 0x06, 0x00, 0x01, 0x00, 0x00, 0x12, 0x00};
    submit(control_urb(3, get_dev, 18));
    submit(control_urb(4, get_dev, 18));
    te_device_gone(&F.dev);
    CHECK_EQ_INT(done_status(2), USBIP_ESHUTDOWN);
    CHECK_EQ_INT(done_status(4), USBIP_ESHUTDOWN);
    CHECK_EQ_INT(done_index(1), -1);
    finish(0x82, TE_USB_NO_DEVICE, 0, NULL, 0);
    finish(0x00, TE_USB_CANCELED, 0, NULL, 0);
    CHECK_EQ_INT(done_status(1), USBIP_ESHUTDOWN);
    CHECK_EQ_INT(done_status(3), USBIP_ESHUTDOWN);
    submit(data_urb(5, 0x82, 512, true, 0));
    CHECK_EQ_INT(done_status(5), USBIP_ESHUTDOWN);
    CHECK(te_device_idle(&F.dev));
    F.nlog = 0;
    te_device_detach(&F.dev);
    LOG_IS("release 0", "release 1", "release 2");
    CHECK(F.claimed_alt[0] < 0 && F.claimed_alt[1] < 0 && F.claimed_alt[2] < 0);
}

TEST(device_gone_during_a_special_request)
{
    setup_device(UAC_CONFIG, sizeof UAC_CONFIG, (const uint8_t[16]){0, 1, 0});
    REQUIRE(attach());
    slot_t *iso = data_urb(1, 0x01, 200, false, 0);
    iso->urb.num_iso_packets = 1;
    iso->iso[0] = (usbip_iso_packet_t){.offset = 0, .length = 200};
    submit(iso);
    submit(control_urb(2, SET_INTF_1_0, 0)); /* waits for the iso transfer to return */
    te_device_gone(&F.dev);
    deliver();
    CHECK_EQ_INT(done_status(1), USBIP_ESHUTDOWN);
    CHECK_EQ_INT(done_status(2), USBIP_ESHUTDOWN);
    CHECK(te_device_idle(&F.dev));
}

TEST(attach_failure_releases_what_was_claimed)
{
    setup_device(CDC_MSC_CONFIG, sizeof CDC_MSC_CONFIG, NULL);
    F.claim_result[2][0] = TE_ERR_NO_RESOURCES; /* out of host channels */
    CHECK(te_device_attach(&F.dev) == TE_ERR_NO_RESOURCES);
    LOG_IS("claim 0 0", "claim 1 0", "claim 2 0", "release 0", "release 1");
    CHECK(F.claimed_alt[0] < 0 && F.claimed_alt[1] < 0);
    CHECK(!F.dev.attached);
}

TEST(detach_keeps_an_interface_whose_release_failed)
{
    setup_device(CDC_MSC_CONFIG, sizeof CDC_MSC_CONFIG, NULL);
    REQUIRE(attach());
    F.release_fails[1] = true;
    te_device_detach(&F.dev);
    CHECK(!F.dev.claimed[0] && F.dev.claimed[1] && !F.dev.claimed[2]);
    F.release_fails[1] = false;
    F.nlog = 0;
    CHECK(te_device_attach(&F.dev) == TE_OK);
    LOG_IS("claim 0 0", "claim 2 0");
}

/* ================= isochronous ================= */

TEST(iso_in_packets_land_at_their_offsets)
{
    setup_device(UAC_CONFIG, sizeof UAC_CONFIG, (const uint8_t[16]){0, 0, 1});
    REQUIRE(attach());
    slot_t *s = data_urb(1, 0x82, 3000, false, 0); /* MPS 1024, bInterval 4 */
    s->urb.num_iso_packets = 3;
    s->iso[0] = (usbip_iso_packet_t){.offset = 0, .length = 900};
    s->iso[1] = (usbip_iso_packet_t){.offset = 1000, .length = 900};
    s->iso[2] = (usbip_iso_packet_t){.offset = 2000, .length = 900};
    submit(s);
    LOG_IS("submit 82 3072");
    uint8_t dev_data[3072];
    memset(dev_data, 0, sizeof dev_data);
    memset(dev_data, 0xa1, 900);
    memset(dev_data + 1024, 0xb2, 100);
    const te_iso_result_t res[3] = {{TE_USB_COMPLETED, 900}, {TE_USB_COMPLETED, 100},
                                    {TE_USB_SKIPPED, 0}};
    finish_iso(0x82, TE_USB_COMPLETED, 1000, dev_data, sizeof dev_data, res);
    CHECK_EQ_INT(done_status(1), 0);
    CHECK_EQ_INT(done_actual(1), 1000);
    CHECK_EQ_INT(s->urb.error_count, 1);
    CHECK(s->iso[0].actual_length == 900 && s->iso[0].status == 0);
    CHECK(s->iso[1].actual_length == 100 && s->iso[1].status == 0);
    CHECK(s->iso[2].actual_length == 0 && s->iso[2].status == USBIP_EXDEV);
    CHECK(s->session[0] == 0xa1 && s->session[899] == 0xa1);
    CHECK(s->session[1000] == 0xb2 && s->session[1099] == 0xb2);
}

TEST(iso_out_is_packed_and_split_by_interval)
{
    setup_device(UAC_CONFIG, sizeof UAC_CONFIG, (const uint8_t[16]){0, 1, 1});
    REQUIRE(attach());
    slot_t *out = data_urb(1, 0x01, 1000, false, 0); /* MPS 200, bInterval 1 */
    out->urb.num_iso_packets = 3;
    out->iso[0] = (usbip_iso_packet_t){.offset = 0, .length = 100};
    out->iso[1] = (usbip_iso_packet_t){.offset = 300, .length = 50};
    out->iso[2] = (usbip_iso_packet_t){.offset = 600, .length = 200};
    submit(out);
    LOG_IS("submit 01 350");
    CHECK(memcmp(out->iso_xfer, out->session, 100) == 0);
    CHECK(memcmp(out->iso_xfer + 100, out->session + 300, 50) == 0);
    CHECK(memcmp(out->iso_xfer + 150, out->session + 600, 200) == 0);
    const te_iso_result_t ok3[3] = {{TE_USB_COMPLETED, 100}, {TE_USB_COMPLETED, 50},
                                    {TE_USB_COMPLETED, 200}};
    finish_iso(0x01, TE_USB_COMPLETED, 350, NULL, 0, ok3);
    CHECK_EQ_INT(done_actual(1), 350);

    /* 10 IN packets at bInterval 4 (8 microframes each): 7 + 3 per transfer. */
    slot_t *in = data_urb(2, 0x82, 8000, false, 0);
    in->urb.num_iso_packets = 10;
    for (int i = 0; i < 10; i++) {
        in->iso[i] = (usbip_iso_packet_t){.offset = (uint32_t)i * 800, .length = 700};
    }
    F.nlog = 0;
    submit(in);
    te_iso_result_t all[7];
    for (int i = 0; i < 7; i++) {
        all[i] = (te_iso_result_t){TE_USB_COMPLETED, 10};
    }
    finish_iso(0x82, TE_USB_COMPLETED, 70, NULL, 0, all);
    finish_iso(0x82, TE_USB_COMPLETED, 30, NULL, 0, all);
    LOG_IS("submit 82 7168", "submit 82 3072");
    CHECK(in->n_iso == 2 && in->iso_counts[0] == 7 && in->iso_counts[1] == 3);
    CHECK_EQ_INT(done_actual(2), 100);
}

TEST(iso_edge_cases)
{
    setup_device(UAC_CONFIG, sizeof UAC_CONFIG, (const uint8_t[16]){0, 0, 1});
    REQUIRE(attach());
    slot_t *none = data_urb(1, 0x82, 0, false, 0);
    submit(none); /* 0 packets: nothing to schedule */
    CHECK_EQ_INT(done_status(1), 0);
    slot_t *slow = data_urb(2, 0x82, 1024, false, 0);
    slow->urb.interval = 8; /* 128 microframes: beyond the controller's list */
    slow->urb.num_iso_packets = 1;
    slow->iso[0] = (usbip_iso_packet_t){.offset = 0, .length = 1024};
    submit(slow);
    CHECK_EQ_INT(done_status(2), USBIP_EINVAL);
    CHECK_EQ_INT(slow->iso[0].status, USBIP_EINVAL);
    /* An unlinked iso URB: packets not run carry the unlink status. */
    slot_t *a = data_urb(3, 0x82, 2048, false, 0);
    a->urb.num_iso_packets = 2;
    a->iso[0] = (usbip_iso_packet_t){.offset = 0, .length = 1024};
    a->iso[1] = (usbip_iso_packet_t){.offset = 1024, .length = 1024};
    submit(a);
    te_urb_cancel(&F.dev, &a->te);
    deliver();
    CHECK_EQ_INT(done_status(3), USBIP_ECONNRESET);
    CHECK(a->iso[0].status == USBIP_ECONNRESET && a->iso[1].status == USBIP_ECONNRESET);
    CHECK(te_device_idle(&F.dev));
}

TEST_MAIN("transfer_engine",
          TEST_ENTRY(status_to_errno),
          TEST_ENTRY(chunk_sizes),
          TEST_ENTRY(chunk_plan_and_zero_length_packet),
          TEST_ENTRY(iso_layout_and_packing),
          TEST_ENTRY(pool_reserves_a_share_per_imported_device),
          TEST_ENTRY(port_paths_speeds_and_translators),
          TEST_ENTRY(zero_copy_out_is_one_transfer),
          TEST_ENTRY(large_in_urb_is_chunked_and_reassembled),
          TEST_ENTRY(short_in_chunk_ends_the_urb),
          TEST_ENTRY(in_length_rounded_up_and_babble_clamped),
          TEST_ENTRY(zero_packet_only_on_the_last_out_chunk),
          TEST_ENTRY(urbs_behind_a_chunked_one_wait_their_turn),
          TEST_ENTRY(unlink_of_the_oldest_flushes_and_resubmits_the_others_in_order),
          TEST_ENTRY(unlink_behind_a_running_urb_waits_until_it_is_the_oldest),
          TEST_ENTRY(a_stopped_bystander_resumes_after_the_bytes_it_moved),
          TEST_ENTRY(submit_racing_with_a_library_halt_waits_for_the_clear),
          TEST_ENTRY(zero_length_interrupt_urb_is_refused),
          TEST_ENTRY(stall_fails_one_urb_and_the_queue_goes_on),
          TEST_ENTRY(cancel_before_the_library_has_it),
          TEST_ENTRY(control_one_at_a_time_and_not_cancellable),
          TEST_ENTRY(set_interface_reclaims_and_sends_the_request),
          TEST_ENTRY(set_interface_ends_the_urbs_of_the_interface),
          TEST_ENTRY(set_interface_without_resources_keeps_the_old_setting),
          TEST_ENTRY(set_interface_stall),
          TEST_ENTRY(set_configuration_is_a_local_reset),
          TEST_ENTRY(set_configuration_ends_queued_urbs),
          TEST_ENTRY(clear_halt_gives_fresh_pipes_and_resets_sibling_toggles),
          TEST_ENTRY(clear_halt_of_ep0_or_unknown_endpoint_is_forwarded),
          TEST_ENTRY(port_reset_is_refused),
          TEST_ENTRY(device_gone_ends_every_urb),
          TEST_ENTRY(device_gone_during_a_special_request),
          TEST_ENTRY(attach_failure_releases_what_was_claimed),
          TEST_ENTRY(detach_keeps_an_interface_whose_release_failed),
          TEST_ENTRY(iso_in_packets_land_at_their_offsets),
          TEST_ENTRY(iso_out_is_packed_and_split_by_interval),
          TEST_ENTRY(iso_edge_cases))
