/*
 * fuzz_session: arbitrary client bytes into a session whose fake backend
 * completes URBs deterministically (statuses, short and overlong lengths,
 * iso packet results, SET_INTERFACE switching the iso endpoints on and off,
 * alloc_buffer WOULD_BLOCK and submit failures), with output drained in
 * random pieces, then the connection closed.
 *
 * The schedule comes from a PRNG seeded with a hash of the input, so every
 * input replays exactly. A shadow parser follows the bytes the session
 * consumed and checks every reply it wrote:
 *  - the OP reply has the right layout and echoes version and busid;
 *  - every RET_SUBMIT answers an outstanding CMD_SUBMIT of that seqnum, has
 *    devid/direction/ep zero, 0 <= actual_length <= transfer_buffer_length,
 *    IN data of exactly actual_length bytes, number_of_packets equal to the
 *    CMD's on iso and 0 otherwise, descriptors summing to actual_length;
 *  - every RET_UNLINK answers a CMD_UNLINK, with status 0 or -104, and a
 *    victim answered -104 never gets a RET_SUBMIT (nor had one before);
 *  - after close the backend got every URB back, detach ran, no buffer leaked.
 * ASan/UBSan/LSan catch the rest.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_backend.h"
#include "usbip_log.h"

#define FAIL(...)                                                  \
    do {                                                           \
        fprintf(stderr, "fuzz_session: " __VA_ARGS__);             \
        fprintf(stderr, " (%s:%d)\n", __FILE__, __LINE__);         \
        abort();                                                   \
    } while (0)

/* ---- shadow of what the session consumed ---- */

typedef struct {
    uint32_t seq;
    bool in;
    bool iso;
    int32_t len;
    int32_t npk;
    bool answered; /* its RET_SUBMIT was seen */
    bool killed;   /* answered by RET_UNLINK(-104) */
} shadow_cmd_t;

typedef struct {
    uint32_t seq;
    int victim; /* index into cmds, -1 when ambiguous or unknown */
    bool answered;
} shadow_unlink_t;

typedef enum { SH_OP, SH_BUSID, SH_OP_DONE, SH_URB } shadow_phase_t;

typedef struct {
    shadow_phase_t phase;
    uint8_t hdr[48];
    size_t have;
    size_t need;
    size_t skip; /* payload and descriptor bytes still to pass */
    uint32_t max_iso_packets; /* the session's limit */
    uint16_t version;
    uint16_t code;
    uint8_t busid[32];
    shadow_cmd_t *cmds;
    size_t ncmds;
    size_t cap;
    shadow_unlink_t *unlinks;
    size_t nunlinks;
    size_t ucap;
    /* output checking */
    size_t pos;
    bool op_reply_done;
    bool closed_after_op; /* nothing may follow the OP reply */
    bool unparseable;     /* a seqnum reused ambiguously: stop checking */
} shadow_t;

static fake_harness_t g_h;
static shadow_t g_sh;

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void shadow_reset(shadow_t *sh)
{
    free(sh->cmds);
    free(sh->unlinks);
    memset(sh, 0, sizeof *sh);
    sh->need = 8;
}

static void add_cmd(shadow_t *sh, const shadow_cmd_t *c)
{
    if (sh->ncmds == sh->cap) {
        sh->cap = sh->cap ? sh->cap * 2 : 64;
        sh->cmds = realloc(sh->cmds, sh->cap * sizeof *sh->cmds);
        if (!sh->cmds) {
            abort();
        }
    }
    sh->cmds[sh->ncmds++] = *c;
}

static void add_unlink(shadow_t *sh, const shadow_unlink_t *u)
{
    if (sh->nunlinks == sh->ucap) {
        sh->ucap = sh->ucap ? sh->ucap * 2 : 32;
        sh->unlinks = realloc(sh->unlinks, sh->ucap * sizeof *sh->unlinks);
        if (!sh->unlinks) {
            abort();
        }
    }
    sh->unlinks[sh->nunlinks++] = *u;
}

/* A URB header the session accepted: record what its reply must look like. */
static void shadow_urb_header(shadow_t *sh, const usbip_device_t *dev)
{
    const uint32_t command = be32(sh->hdr);
    const uint32_t seq = be32(sh->hdr + 4);
    if (command == USBIP_CMD_UNLINK) {
        const uint32_t victim_seq = be32(sh->hdr + 0x14);
        int victim = -1;
        int candidates = 0;
        for (size_t i = 0; i < sh->ncmds; i++) {
            if (sh->cmds[i].seq == victim_seq && !sh->cmds[i].answered && !sh->cmds[i].killed) {
                victim = (int)i;
                candidates++;
            }
        }
        const shadow_unlink_t u = {.seq = seq, .victim = candidates == 1 ? victim : -1};
        add_unlink(sh, &u);
        return;
    }
    if (command != USBIP_CMD_SUBMIT) {
        return; /* the session closes on it */
    }
    const uint32_t dir = be32(sh->hdr + 0x0c), ep = be32(sh->hdr + 0x10);
    if (dir > 1 || ep > 15) {
        return;
    }
    const usbip_endpoint_info_t *info = usbip_device_endpoint(dev, (uint8_t)ep, dir == 1);
    const int32_t npk = (int32_t)be32(sh->hdr + 0x20);
    /* Iso descriptors follow for an iso endpoint, and for a missing one when
     * the count is plausible (the client believes it is iso). */
    const bool missing_iso = !info && npk >= 1 && (uint32_t)npk <= sh->max_iso_packets;
    shadow_cmd_t c = {
        .seq = seq,
        .in = dir == 1,
        .iso = (info && info->type == USBIP_XFER_ISOCHRONOUS) || missing_iso,
        .len = (int32_t)be32(sh->hdr + 0x18),
        .npk = npk,
    };
    if (c.len < 0 || (c.iso && c.npk < 0)) {
        return; /* refused: the session closes */
    }
    add_cmd(sh, &c);
    sh->skip = (c.in ? 0 : (size_t)c.len) + (c.iso ? (size_t)c.npk * 16 : 0);
}

/* The session consumed these bytes, in order. */
static void shadow_consume(shadow_t *sh, const uint8_t *p, size_t n, const usbip_device_t *dev)
{
    while (n > 0) {
        if (sh->skip > 0) {
            size_t k = n < sh->skip ? n : sh->skip;
            sh->skip -= k;
            p += k;
            n -= k;
            continue;
        }
        if (sh->phase == SH_OP_DONE) {
            FAIL("the session read %zu bytes after its only OP request", n);
        }
        size_t k = sh->need - sh->have;
        if (k > n) {
            k = n;
        }
        memcpy(sh->hdr + sh->have, p, k);
        sh->have += k;
        p += k;
        n -= k;
        if (sh->have < sh->need) {
            continue;
        }
        switch (sh->phase) {
        case SH_OP:
            sh->version = (uint16_t)(sh->hdr[0] << 8 | sh->hdr[1]);
            sh->code = (uint16_t)(sh->hdr[2] << 8 | sh->hdr[3]);
            if (sh->code == USBIP_OP_REQ_IMPORT) {
                sh->phase = SH_BUSID;
                sh->need = 40;
            } else {
                sh->phase = SH_OP_DONE;
            }
            break;
        case SH_BUSID:
            memcpy(sh->busid, sh->hdr + 8, 32);
            sh->phase = SH_URB; /* if the import failed, nothing more is read */
            sh->have = 0;
            sh->need = 48;
            break;
        case SH_URB:
            shadow_urb_header(sh, dev);
            sh->have = 0;
            break;
        case SH_OP_DONE:
            break;
        }
    }
}

/* ---- output checking ---- */

static bool check_op_reply(shadow_t *sh, const uint8_t *o, size_t avail)
{
    if (avail < 8) {
        return false;
    }
    const uint16_t version = (uint16_t)(o[0] << 8 | o[1]);
    const uint16_t code = (uint16_t)(o[2] << 8 | o[3]);
    const uint32_t status = be32(o + 4);
    if (version != sh->version) {
        FAIL("reply version 0x%04x, request 0x%04x", version, sh->version);
    }
    if (sh->code == USBIP_OP_REQ_DEVLIST) {
        if (code != USBIP_OP_REP_DEVLIST) {
            FAIL("DEVLIST answered with code 0x%04x", code);
        }
        sh->closed_after_op = true;
        if (status != 0) {
            sh->pos += 8;
            return true;
        }
        if (avail < 12) {
            return false;
        }
        const uint32_t ndev = be32(o + 8);
        size_t at = 12;
        for (uint32_t i = 0; i < ndev; i++) {
            if (avail < at + 312) {
                return false;
            }
            at += 312 + (size_t)o[at + 0x137] * 4;
        }
        if (avail < at) {
            return false;
        }
        sh->pos += at;
        return true;
    }
    if (sh->code != USBIP_OP_REQ_IMPORT || code != USBIP_OP_REP_IMPORT) {
        FAIL("reply code 0x%04x to request 0x%04x", code, sh->code);
    }
    if (status != 0) {
        sh->closed_after_op = true;
        sh->pos += 8;
        return true;
    }
    if (avail < 0x140) {
        return false;
    }
    /* Clients compare the busid as a string over the 32 bytes (Linux:
     * strncmp(..., SYSFS_BUS_ID_SIZE)); the reply's is zero-filled. */
    if (strncmp((const char *)o + 0x108, (const char *)sh->busid, 32) != 0) {
        FAIL("REP_IMPORT busid differs from the request");
    }
    for (size_t i = strnlen((const char *)o + 0x108, 32); i < 32; i++) {
        if (o[0x108 + i]) {
            FAIL("REP_IMPORT busid not zero-filled");
        }
    }
    if (((be32(o + 0x128) << 16) | be32(o + 0x12c)) != FAKE_DEVID) {
        FAIL("REP_IMPORT devid");
    }
    sh->pos += 0x140;
    return true;
}

static bool check_urb_reply(shadow_t *sh, const uint8_t *o, size_t avail)
{
    if (avail < 48) {
        return false;
    }
    const uint32_t command = be32(o), seq = be32(o + 4);
    for (size_t i = 8; i < 20; i++) {
        if (o[i]) {
            FAIL("RET with nonzero devid/direction/ep");
        }
    }
    if (command == USBIP_RET_UNLINK) {
        for (size_t i = 0x18; i < 48; i++) {
            if (o[i]) {
                FAIL("RET_UNLINK with nonzero padding");
            }
        }
        const int32_t status = (int32_t)be32(o + 0x14);
        if (status != 0 && status != USBIP_ECONNRESET) {
            FAIL("RET_UNLINK status %d", status);
        }
        shadow_unlink_t *u = NULL;
        for (size_t i = 0; i < sh->nunlinks; i++) {
            if (sh->unlinks[i].seq == seq && !sh->unlinks[i].answered) {
                u = &sh->unlinks[i];
                break;
            }
        }
        if (!u) {
            FAIL("RET_UNLINK seqnum %u answers no CMD_UNLINK", seq);
        }
        u->answered = true;
        if (status == USBIP_ECONNRESET && u->victim >= 0) {
            shadow_cmd_t *v = &sh->cmds[u->victim];
            if (v->answered) {
                FAIL("seqnum %u got RET_SUBMIT and then RET_UNLINK(-104)", v->seq);
            }
            v->killed = true;
        }
        sh->pos += 48;
        return true;
    }
    if (command != USBIP_RET_SUBMIT) {
        FAIL("reply command %u", command);
    }
    shadow_cmd_t *c = NULL;
    for (size_t i = 0; i < sh->ncmds; i++) {
        shadow_cmd_t *k = &sh->cmds[i];
        if (k->seq != seq || k->answered || k->killed) {
            continue;
        }
        if (!c) {
            c = k;
        } else if (c->in != k->in || c->iso != k->iso || c->len != k->len || c->npk != k->npk) {
            sh->unparseable = true; /* a reused seqnum: cannot tell which CMD this answers */
            return false;
        }
    }
    if (!c) {
        FAIL("RET_SUBMIT seqnum %u answers nothing outstanding (late RET after unlink?)", seq);
    }
    const int32_t actual = (int32_t)be32(o + 0x18);
    const int32_t npk = (int32_t)be32(o + 0x20);
    if (actual < 0 || actual > c->len) {
        FAIL("RET_SUBMIT actual_length %d for length %d", actual, c->len);
    }
    if (npk != (c->iso ? c->npk : 0)) {
        FAIL("RET_SUBMIT number_of_packets %d, CMD %d (iso %d)", npk, c->npk, c->iso);
    }
    if (!c->iso && (be32(o + 0x1c) != 0 || be32(o + 0x24) != 0)) {
        FAIL("non-iso RET_SUBMIT with start_frame/error_count");
    }
    for (size_t i = 0x28; i < 48; i++) {
        if (o[i]) {
            FAIL("RET_SUBMIT with setup bytes");
        }
    }
    const size_t data = c->in ? (size_t)actual : 0;
    const size_t need = 48 + data + (size_t)npk * 16;
    if (avail < need) {
        return false;
    }
    if (c->iso) {
        uint64_t sum = 0;
        int32_t errors = 0;
        for (int32_t i = 0; i < npk; i++) {
            const uint8_t *dsc = o + 48 + data + 16 * (size_t)i;
            if (be32(dsc + 8) > be32(dsc + 4)) {
                FAIL("iso packet %d actual %u > length %u", i, be32(dsc + 8), be32(dsc + 4));
            }
            sum += be32(dsc + 8);
            errors += be32(dsc + 12) != 0;
        }
        if (sum != (uint64_t)actual) {
            FAIL("iso descriptors sum %llu, actual_length %d", (unsigned long long)sum, actual);
        }
        if ((int32_t)be32(o + 0x24) != errors) {
            FAIL("error_count %d, failed packets %d", (int32_t)be32(o + 0x24), errors);
        }
    }
    c->answered = true;
    sh->pos += need;
    return true;
}

static void check_output(shadow_t *sh, const fake_harness_t *h)
{
    while (!sh->unparseable && sh->pos < h->out_len) {
        const uint8_t *o = h->out + sh->pos;
        const size_t avail = h->out_len - sh->pos;
        if (!sh->op_reply_done) {
            if (!check_op_reply(sh, o, avail)) {
                return;
            }
            sh->op_reply_done = true;
            continue;
        }
        if (sh->closed_after_op) {
            FAIL("%zu bytes written after a closing OP reply", avail);
        }
        if (!check_urb_reply(sh, o, avail)) {
            return;
        }
    }
}

/* ---- deterministic backend behaviour ---- */

static const int32_t kStatuses[] = {0, 0, 0, 0, USBIP_EPIPE, USBIP_EPROTO, USBIP_ESHUTDOWN,
                                    USBIP_ENODEV, USBIP_ETIMEDOUT, USBIP_EOVERFLOW};

static void complete_one(fake_harness_t *h, uint32_t *rng)
{
    size_t n = h->fb.pending;
    if (n == 0) {
        return;
    }
    /* mostly the oldest (per-endpoint order), sometimes any */
    size_t pick = fake_rand(rng) % 4 == 0 ? fake_rand(rng) % n : 0;
    usbip_urb_t *urb = fake_pending_urb(&h->fb, pick);
    fake_submission_t *sub = fake_find_submission(&h->fb, urb);
    int32_t status = sub->cancelled && fake_rand(rng) % 2
                         ? USBIP_ECONNRESET
                         : kStatuses[fake_rand(rng) % (sizeof kStatuses / sizeof kStatuses[0])];
    if (urb->num_iso_packets > 0) {
        uint32_t *actual = malloc(urb->num_iso_packets * sizeof *actual);
        int32_t *pst = malloc(urb->num_iso_packets * sizeof *pst);
        if (!actual || !pst) {
            abort();
        }
        for (uint32_t i = 0; i < urb->num_iso_packets; i++) {
            actual[i] = fake_rand(rng) % (urb->iso[i].length + 8);
            pst[i] = fake_rand(rng) % 5 == 0 ? USBIP_EXDEV : 0;
        }
        fake_complete_iso(&h->fb, urb, status == USBIP_ECONNRESET ? status : 0, actual, pst);
        free(actual);
        free(pst);
        return;
    }
    if (urb->control_kind == USBIP_CONTROL_SET_INTERFACE && status == 0) {
        /* a backend updates its endpoint table: alt 0 has no iso endpoints */
        const bool on = urb->setup[2] != 0;
        h->fb.dev.ep_in[FAKE_EP_ISO_IN].present = on;
        h->fb.dev.ep_out[FAKE_EP_ISO_OUT].present = on;
    }
    uint32_t actual = fake_rand(rng) % (urb->length + 16); /* sometimes too long */
    uint8_t pattern[256];
    memset(pattern, (int)(actual & 0xff), sizeof pattern);
    if (urb->dir_in && urb->buffer) {
        for (uint32_t off = 0; off < urb->buffer_size && off < actual; off += sizeof pattern) {
            uint32_t k = urb->buffer_size - off < sizeof pattern ? urb->buffer_size - off
                                                                 : (uint32_t)sizeof pattern;
            memcpy(urb->buffer + off, pattern, k);
        }
    }
    fake_complete(&h->fb, urb, status, actual, NULL);
}

static uint32_t hash_input(const uint8_t *d, size_t n)
{
    uint32_t x = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        x = (x ^ d[i]) * 16777619u;
    }
    return x ? x : 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t rng = hash_input(data, size);
    usbip_session_limits_t lim;
    usbip_session_limits_default(&lim);
    lim.max_urbs = 1 + fake_rand(&rng) % 8;
    lim.max_urb_size = 64 * 1024;
    lim.max_bytes_in_flight = lim.max_urb_size * (1 + fake_rand(&rng) % 3);
    lim.max_iso_packets = fake_rand(&rng) % 4 == 0 ? 8 : USBIP_MAX_ISO_PACKETS;

    fake_harness_t *h = &g_h;
    fake_harness_init(h, &lim);
    if (fake_rand(&rng) % 8 == 0) {
        h->deny = true;
    }
    h->fb.complete_in_cancel = fake_rand(&rng) % 4 == 0;
    shadow_t *sh = &g_sh;
    shadow_reset(sh);
    sh->max_iso_packets = lim.max_iso_packets;

    size_t fed = 0;
    int idle = 0;
    for (int round = 0; round < 100000 && idle < 16; round++) {
        bool progress = false;
        h->fb.alloc_result = fake_rand(&rng) % 8 == 0 ? USBIP_ERR_WOULD_BLOCK : USBIP_OK;
        h->fb.submit_result = fake_rand(&rng) % 32 == 0 ? USBIP_ERR_IO : USBIP_OK;
        if (fed < size) {
            size_t chunk = fake_rand(&rng) % 4 == 0 ? size - fed : 1 + fake_rand(&rng) % 64;
            if (chunk > size - fed) {
                chunk = size - fed;
            }
            size_t took = fake_feed(h, data + fed, chunk, fake_rand(&rng) % 2 ? 0 : 7);
            shadow_consume(sh, data + fed, took, &h->fb.dev);
            fed += took;
            progress |= took > 0;
        }
        if (h->fb.pending > 0 && fake_rand(&rng) % 3 != 0) {
            complete_one(h, &rng);
            progress = true;
        }
        if (fake_rand(&rng) % 2) {
            size_t limit = fake_rand(&rng) % 3 == 0 ? 0 : 1 + fake_rand(&rng) % 500;
            progress |= fake_drain(h, 1 + fake_rand(&rng) % 128, limit) > 0;
            check_output(sh, h);
        }
        if (usbip_session_wants_close(h->s)) {
            break;
        }
        idle = progress ? 0 : idle + 1;
    }
    /* a last drain unless the session wants to close at once */
    if (!usbip_session_wants_close(h->s) || fake_rand(&rng) % 2) {
        fake_drain(h, 0, 0);
        check_output(sh, h);
    }

    usbip_session_close(h->s);
    if (usbip_session_output(h->s, (usbip_iovec_t[1]){{0}}, 1) != 0) {
        FAIL("output pending after close");
    }
    uint8_t *dummy;
    if (usbip_session_read_space(h->s, &dummy) != 0) {
        FAIL("read space after close");
    }
    if (h->fb.detach_calls != 0 && h->fb.pending != 0) {
        FAIL("detach before the last URB came back");
    }
    if (!fake_harness_done(h)) {
        FAIL("session did not finish cleanly");
    }
    if (g_h.fb.pending_at_detach != 0) {
        FAIL("detach ran with URBs in the backend");
    }
    free(sh->cmds);
    free(sh->unlinks);
    sh->cmds = NULL;
    sh->unlinks = NULL;
    return 0;
}
