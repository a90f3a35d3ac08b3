#include "fake_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usbip_log.h"

/* ---- the backend ---- */

static usbip_err_t fake_attach(void *ctx)
{
    fake_backend_t *fb = ctx;
    fb->attach_calls++;
    if (fb->attach_hook) {
        fb->attach_hook(fb->attach_hook_ctx);
    }
    return fb->attach_result;
}

static void fake_detach(void *ctx)
{
    fake_backend_t *fb = ctx;
    fb->detach_calls++;
    fb->pending_at_detach = fb->pending;
}

static usbip_err_t fake_alloc_buffer(void *ctx, usbip_urb_t *urb)
{
    fake_backend_t *fb = ctx;
    fb->alloc_calls++;
    if (fb->alloc_result != USBIP_OK) {
        return fb->alloc_result;
    }
    /* Exactly length bytes, so ASan sees any access beyond the URB. */
    urb->buffer = malloc(urb->length ? urb->length : 1);
    if (!urb->buffer) {
        return USBIP_ERR_NO_MEM;
    }
    urb->buffer_size = urb->length;
    fb->buffers_live++;
    return USBIP_OK;
}

static void fake_free_buffer(void *ctx, usbip_urb_t *urb)
{
    fake_backend_t *fb = ctx;
    fb->free_calls++;
    fb->buffers_live--;
    free(urb->buffer);
    urb->buffer = NULL;
    urb->buffer_size = 0;
}

static usbip_err_t fake_submit(void *ctx, usbip_urb_t *urb)
{
    fake_backend_t *fb = ctx;
    fb->submit_calls++;
    if (fb->submit_result != USBIP_OK) {
        return fb->submit_result;
    }
    if (fb->nsubs == fb->subs_cap) {
        size_t cap = fb->subs_cap ? fb->subs_cap * 2 : 64;
        fake_submission_t *subs = realloc(fb->subs, cap * sizeof *subs);
        if (!subs) {
            abort();
        }
        fb->subs = subs;
        fb->subs_cap = cap;
    }
    fake_submission_t *rec = &fb->subs[fb->nsubs++];
    memset(rec, 0, sizeof *rec);
    rec->urb = urb;
    rec->ep_address = urb->ep_address;
    rec->type = urb->type;
    rec->dir_in = urb->dir_in;
    rec->flags = urb->flags;
    rec->length = urb->length;
    memcpy(rec->setup, urb->setup, 8);
    rec->control_kind = urb->control_kind;
    rec->start_frame = urb->start_frame;
    rec->interval = urb->interval;
    rec->num_iso_packets = urb->num_iso_packets;
    if (urb->num_iso_packets > 0 && urb->iso) {
        rec->iso0 = urb->iso[0];
    }
    if (!urb->dir_in && urb->length > 0 && urb->buffer) {
        rec->out_copied = urb->length < FAKE_COPY_MAX ? urb->length : FAKE_COPY_MAX;
        rec->out_data = malloc(rec->out_copied);
        if (!rec->out_data) {
            abort();
        }
        memcpy(rec->out_data, urb->buffer, rec->out_copied);
    }
    if ((unsigned)urb->control_kind < 5) {
        fb->control_kind_count[urb->control_kind]++;
    }
    fb->pending++;
    return USBIP_OK;
}

static void fake_cancel(void *ctx, usbip_urb_t *urb)
{
    fake_backend_t *fb = ctx;
    fb->cancel_calls++;
    if (fb->ncancels == fb->cancels_cap) {
        size_t cap = fb->cancels_cap ? fb->cancels_cap * 2 : 32;
        usbip_urb_t **c = realloc(fb->cancels, cap * sizeof *c);
        if (!c) {
            abort();
        }
        fb->cancels = c;
        fb->cancels_cap = cap;
    }
    fb->cancels[fb->ncancels++] = urb;
    fake_submission_t *rec = fake_find_submission(fb, urb);
    if (rec && !rec->completed) {
        rec->cancelled = true;
        if (fb->complete_in_cancel) {
            fake_complete(fb, urb, USBIP_ECONNRESET, 0, NULL);
        }
    }
}

static const usbip_backend_ops_t s_fake_ops = {
    .attach = fake_attach,
    .detach = fake_detach,
    .alloc_buffer = fake_alloc_buffer,
    .free_buffer = fake_free_buffer,
    .submit = fake_submit,
    .cancel = fake_cancel,
};

static void set_ep(usbip_endpoint_info_t *ep, usbip_xfer_type_t type, uint16_t mps,
                   uint8_t interval)
{
    ep->present = true;
    ep->type = type;
    ep->max_packet_size = mps;
    ep->mult = 1;
    ep->interval = interval;
}

void fake_backend_init(fake_backend_t *fb)
{
    memset(fb, 0, sizeof *fb);
    usbip_device_t *d = &fb->dev;
    d->record.speed = USBIP_SPEED_HIGH;
    d->record.idVendor = 0x1234;
    d->record.idProduct = 0x5678;
    d->record.bcdDevice = 0x0102;
    d->record.bDeviceClass = 0xef;
    d->record.bDeviceSubClass = 0x02;
    d->record.bDeviceProtocol = 0x01;
    d->record.bConfigurationValue = 1;
    d->record.bNumConfigurations = 1;
    d->record.bNumInterfaces = 2;
    d->interfaces[0] = (usbip_interface_record_t){3, 1, 2};
    d->interfaces[1] = (usbip_interface_record_t){8, 6, 0x50};
    set_ep(&d->ep_in[0], USBIP_XFER_CONTROL, 64, 0);
    set_ep(&d->ep_out[0], USBIP_XFER_CONTROL, 64, 0);
    set_ep(&d->ep_in[FAKE_EP_BULK_IN], USBIP_XFER_BULK, 512, 0);
    set_ep(&d->ep_out[FAKE_EP_BULK_OUT], USBIP_XFER_BULK, 512, 0);
    set_ep(&d->ep_in[FAKE_EP_INTR_IN], USBIP_XFER_INTERRUPT, 8, 4);
    set_ep(&d->ep_in[FAKE_EP_ISO_IN], USBIP_XFER_ISOCHRONOUS, 192, 1);
    set_ep(&d->ep_out[FAKE_EP_ISO_OUT], USBIP_XFER_ISOCHRONOUS, 192, 1);
    snprintf(d->product, sizeof d->product, "Fake device");
    d->ops = &s_fake_ops;
    d->ctx = fb;
}

void fake_backend_free(fake_backend_t *fb)
{
    for (size_t i = 0; i < fb->nsubs; i++) {
        free(fb->subs[i].out_data);
    }
    free(fb->subs);
    free(fb->cancels);
    fb->subs = NULL;
    fb->cancels = NULL;
    fb->nsubs = fb->subs_cap = fb->ncancels = fb->cancels_cap = 0;
}

fake_submission_t *fake_find_submission(fake_backend_t *fb, const usbip_urb_t *urb)
{
    for (size_t i = fb->nsubs; i-- > 0;) {
        if (fb->subs[i].urb == urb) {
            return &fb->subs[i];
        }
    }
    return NULL;
}

fake_submission_t *fake_submission(fake_backend_t *fb, size_t n)
{
    return n < fb->nsubs ? &fb->subs[n] : NULL;
}

usbip_urb_t *fake_pending_urb(fake_backend_t *fb, size_t n)
{
    for (size_t i = 0; i < fb->nsubs; i++) {
        if (!fb->subs[i].completed) {
            if (n == 0) {
                return fb->subs[i].urb;
            }
            n--;
        }
    }
    return NULL;
}

static void mark_completed(fake_backend_t *fb, usbip_urb_t *urb)
{
    for (size_t i = 0; i < fb->nsubs; i++) {
        if (fb->subs[i].urb == urb && !fb->subs[i].completed) {
            fb->subs[i].completed = true;
            fb->pending--;
            return;
        }
    }
    fprintf(stderr, "fake_backend: completing a URB that is not pending\n");
    abort();
}

void fake_complete(fake_backend_t *fb, usbip_urb_t *urb, int32_t status,
                   uint32_t actual_length, const void *data)
{
    mark_completed(fb, urb);
    urb->status = status;
    urb->actual_length = actual_length;
    if (data && urb->buffer) {
        uint32_t n = actual_length < urb->buffer_size ? actual_length : urb->buffer_size;
        memcpy(urb->buffer, data, n);
    }
    urb->complete(urb);
}

void fake_complete_iso(fake_backend_t *fb, usbip_urb_t *urb, int32_t status,
                       const uint32_t *actual, const int32_t *pkt_status)
{
    mark_completed(fb, urb);
    uint32_t sum = 0;
    int32_t errors = 0;
    for (uint32_t i = 0; i < urb->num_iso_packets; i++) {
        usbip_iso_packet_t *p = &urb->iso[i];
        p->actual_length = actual[i];
        p->status = pkt_status ? pkt_status[i] : 0;
        if (p->status) {
            errors++;
        }
        sum += actual[i];
        if (urb->dir_in && urb->buffer) {
            uint32_t n = actual[i] < p->length ? actual[i] : p->length;
            if ((uint64_t)p->offset + n <= urb->buffer_size) {
                memset(urb->buffer + p->offset, (int)(i + 1), n);
            }
        }
    }
    urb->status = status;
    urb->actual_length = sum;
    urb->error_count = errors;
    urb->start_frame_out = 77;
    urb->complete(urb);
}

/* ---- byte builders ---- */

void fake_buf_free(fake_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void fake_buf_reset(fake_buf_t *b) { b->len = 0; }

static uint8_t *buf_grow(fake_buf_t *b, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) {
            cap *= 2;
        }
        uint8_t *p = realloc(b->data, cap);
        if (!p) {
            abort();
        }
        b->data = p;
        b->cap = cap;
    }
    uint8_t *at = b->data + b->len;
    b->len += n;
    return at;
}

void fake_buf_bytes(fake_buf_t *b, const void *p, size_t n)
{
    if (n) {
        memcpy(buf_grow(b, n), p, n);
    }
}

void fake_buf_fill(fake_buf_t *b, uint8_t value, size_t n)
{
    if (n) {
        memset(buf_grow(b, n), value, n);
    }
}

void fake_buf_op(fake_buf_t *b, uint16_t version, uint16_t code)
{
    const usbip_op_header_t hdr = {.version = version, .code = code};
    usbip_op_header_encode(buf_grow(b, USBIP_OP_HEADER_SIZE), &hdr);
}

void fake_buf_import(fake_buf_t *b, uint16_t version, const char *busid)
{
    usbip_import_request_encode(buf_grow(b, USBIP_IMPORT_REQUEST_SIZE), version, busid);
}

void fake_buf_submit(fake_buf_t *b, uint32_t seqnum, uint32_t devid, uint32_t direction,
                     uint32_t ep, uint32_t flags, int32_t length, int32_t number_of_packets,
                     const uint8_t setup[8])
{
    usbip_urb_header_t hdr = {
        .command = USBIP_CMD_SUBMIT,
        .seqnum = seqnum,
        .devid = devid,
        .direction = direction,
        .ep = ep,
        .u.submit = {
            .transfer_flags = flags,
            .transfer_buffer_length = length,
            .start_frame = -1,
            .number_of_packets = number_of_packets,
            .interval = 0,
        },
    };
    if (setup) {
        memcpy(hdr.u.submit.setup, setup, 8);
    }
    usbip_urb_header_encode(buf_grow(b, USBIP_URB_HEADER_SIZE), &hdr);
}

void fake_buf_unlink(fake_buf_t *b, uint32_t seqnum, uint32_t devid, uint32_t victim)
{
    const usbip_urb_header_t hdr = {
        .command = USBIP_CMD_UNLINK,
        .seqnum = seqnum,
        .devid = devid,
        .u.unlink.victim_seqnum = victim,
    };
    usbip_urb_header_encode(buf_grow(b, USBIP_URB_HEADER_SIZE), &hdr);
}

void fake_buf_iso(fake_buf_t *b, const usbip_iso_packet_t *packets, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        usbip_iso_packet_t p = packets[i];
        usbip_iso_packets_to_wire(&p, 1);
        fake_buf_bytes(b, &p, sizeof p);
    }
}

/* ---- harness ---- */

uint32_t fake_rand(uint32_t *state)
{
    /* xorshift32 */
    uint32_t x = *state ? *state : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

static void log_sink(void *ctx, usbip_log_level_t level, const char *tag, const char *message)
{
    fake_harness_t *h = ctx;
    int n = snprintf(h->log + h->log_len, sizeof h->log - h->log_len, "%s %s: %s\n",
                     usbip_log_level_name(level), tag, message);
    if (n > 0) {
        h->log_len += (size_t)n;
        if (h->log_len >= sizeof h->log) {
            h->log_len = 0; /* wrap: tests look at recent lines */
            h->log[0] = '\0';
        }
    }
}

static bool harness_peer_allowed(void *ctx, usbip_session_t *session)
{
    (void)session;
    fake_harness_t *h = ctx;
    return !h->deny;
}

static void harness_gone(void *ctx, usbip_registry_entry_t *entry, void *owner)
{
    (void)entry;
    fake_harness_t *h = ctx;
    h->gone_calls++;
    if (h->close_on_gone && owner) {
        usbip_session_request_close(owner, "device removed");
    }
}

static void harness_freed(void *ctx, usbip_device_t *dev)
{
    (void)dev;
    fake_harness_t *h = ctx;
    h->freed_calls++;
}

void fake_harness_init(fake_harness_t *h, const usbip_session_limits_t *limits)
{
    memset(h, 0, sizeof *h);
    h->rng = 0x12345678u;
    h->close_on_gone = true;
    usbip_log_set_sink(log_sink, h);
    fake_backend_init(&h->fb);
    const usbip_registry_hooks_t hooks = {
        .device_gone = harness_gone,
        .device_freed = harness_freed,
        .ctx = h,
    };
    usbip_registry_init(&h->reg, h->entries, 4, &hooks);
    const uint8_t ports[] = {1, 4};
    if (usbip_registry_add(&h->reg, &h->fb.dev, 3, ports, 2, &h->entry) != USBIP_OK) {
        abort();
    }
    usbip_event_log_init(&h->events, h->event_slots, 64);
    h->env = (usbip_session_env_t){
        .registry = &h->reg,
        .events = &h->events,
        .peer_allowed = harness_peer_allowed,
        .ctx = h,
    };
    if (limits) {
        h->cfg.limits = *limits;
    } else {
        usbip_session_limits_default(&h->cfg.limits);
    }
    h->cfg.env = &h->env;
    snprintf(h->cfg.peer, sizeof h->cfg.peer, "192.0.2.7");
    if (usbip_session_create(&h->cfg, &h->s) != USBIP_OK) {
        abort();
    }
}

bool fake_harness_done(fake_harness_t *h)
{
    bool ok = true;
    if (h->s) {
        usbip_session_close(h->s);
        usbip_urb_t *urb;
        while ((urb = fake_pending_urb(&h->fb, 0)) != NULL) {
            fake_complete(&h->fb, urb, USBIP_ECONNRESET, 0, NULL);
        }
        if (!usbip_session_finished(h->s)) {
            fprintf(stderr, "  harness: session not finished after close\n");
            ok = false;
        }
        usbip_session_destroy(h->s);
        h->s = NULL;
    }
    if (h->fb.buffers_live != 0) {
        fprintf(stderr, "  harness: %d transfer buffers leaked\n", h->fb.buffers_live);
        ok = false;
    }
    if (h->fb.pending != 0) {
        fprintf(stderr, "  harness: %zu URBs still in the backend\n", h->fb.pending);
        ok = false;
    }
    if (h->fb.detach_calls != h->fb.attach_calls - (h->fb.attach_result != USBIP_OK ? h->fb.attach_calls : 0)) {
        fprintf(stderr, "  harness: attach %d, detach %d\n", h->fb.attach_calls,
                h->fb.detach_calls);
        ok = false;
    }
    fake_backend_free(&h->fb);
    free(h->out);
    h->out = NULL;
    usbip_log_set_sink(NULL, NULL);
    return ok;
}

void fake_note_dir(fake_harness_t *h, uint32_t seqnum, bool dir_in)
{
    for (size_t i = 0; i < h->ndirs; i++) {
        if (h->dir_seq[i] == seqnum) {
            h->dir_in[i] = dir_in;
            return;
        }
    }
    if (h->ndirs < FAKE_MAX_DIRS) {
        h->dir_seq[h->ndirs] = seqnum;
        h->dir_in[h->ndirs] = dir_in;
        h->ndirs++;
    }
}

static bool seq_is_in(const fake_harness_t *h, uint32_t seqnum)
{
    for (size_t i = 0; i < h->ndirs; i++) {
        if (h->dir_seq[i] == seqnum) {
            return h->dir_in[i];
        }
    }
    return false;
}

size_t fake_feed(fake_harness_t *h, const void *bytes, size_t len, size_t chunk)
{
    const uint8_t *p = bytes;
    size_t done = 0;
    h->last_input_err = USBIP_OK;
    while (done < len) {
        uint8_t *dst = NULL;
        size_t space = usbip_session_read_space(h->s, &dst);
        if (space == 0) {
            break;
        }
        size_t n = len - done;
        if (n > space) {
            n = space;
        }
        if (chunk) {
            size_t piece = 1 + fake_rand(&h->rng) % chunk;
            if (n > piece) {
                n = piece;
            }
        }
        memcpy(dst, p + done, n);
        done += n;
        usbip_err_t err = usbip_session_input(h->s, n);
        if (err != USBIP_OK) {
            h->last_input_err = err;
            break;
        }
    }
    return done;
}

size_t fake_feed_buf(fake_harness_t *h, const fake_buf_t *b, size_t chunk)
{
    return fake_feed(h, b->data, b->len, chunk);
}

static void out_append(fake_harness_t *h, const void *p, size_t n)
{
    if (h->out_len + n > h->out_cap) {
        size_t cap = h->out_cap ? h->out_cap : 4096;
        while (cap < h->out_len + n) {
            cap *= 2;
        }
        uint8_t *o = realloc(h->out, cap);
        if (!o) {
            abort();
        }
        h->out = o;
        h->out_cap = cap;
    }
    memcpy(h->out + h->out_len, p, n);
    h->out_len += n;
}

size_t fake_drain(fake_harness_t *h, size_t max_write, size_t limit)
{
    size_t total = 0;
    for (;;) {
        usbip_iovec_t iov[8];
        /* partial writes also come with short iovec lists */
        const size_t max_iov = max_write ? 1 + fake_rand(&h->rng) % 8 : 8;
        size_t n = usbip_session_output(h->s, iov, max_iov);
        if (n == 0) {
            break;
        }
        size_t budget = SIZE_MAX;
        if (max_write) {
            budget = 1 + fake_rand(&h->rng) % max_write;
        }
        if (limit && budget > limit - total) {
            budget = limit - total;
        }
        size_t wrote = 0;
        for (size_t i = 0; i < n && wrote < budget; i++) {
            size_t take = iov[i].len;
            if (take > budget - wrote) {
                take = budget - wrote;
            }
            out_append(h, iov[i].base, take);
            wrote += take;
        }
        usbip_session_output_done(h->s, wrote);
        total += wrote;
        if (wrote == 0 || (limit && total >= limit)) {
            break;
        }
    }
    return total;
}

void fake_skip_output(fake_harness_t *h, size_t n) { h->parsed += n; }

size_t fake_parse_rets(fake_harness_t *h, fake_ret_t *rets, size_t max)
{
    size_t count = 0;
    while (count < max && h->out_len - h->parsed >= USBIP_URB_HEADER_SIZE) {
        const uint8_t *p = h->out + h->parsed;
        fake_ret_t r;
        memset(&r, 0, sizeof r);
        usbip_field_error_t ferr;
        if (usbip_urb_header_decode(p, USBIP_URB_HEADER_SIZE, &r.hdr, &ferr) != USBIP_OK) {
            fprintf(stderr, "  harness: undecodable reply at output offset %zu\n", h->parsed);
            break;
        }
        memcpy(r.raw, p, USBIP_URB_HEADER_SIZE);
        size_t need = USBIP_URB_HEADER_SIZE;
        if (r.hdr.command == USBIP_RET_SUBMIT) {
            if (seq_is_in(h, r.hdr.seqnum) && r.hdr.u.ret_submit.actual_length > 0) {
                r.data_len = (uint32_t)r.hdr.u.ret_submit.actual_length;
            }
            if (r.hdr.u.ret_submit.number_of_packets > 0) {
                r.iso_count = (uint32_t)r.hdr.u.ret_submit.number_of_packets;
            }
        }
        need += r.data_len + (size_t)r.iso_count * USBIP_ISO_DESC_SIZE;
        if (h->out_len - h->parsed < need) {
            break;
        }
        r.data = p + USBIP_URB_HEADER_SIZE;
        r.iso_raw = r.data + r.data_len;
        h->parsed += need;
        rets[count++] = r;
    }
    return count;
}

bool fake_import(fake_harness_t *h)
{
    fake_buf_t b = {0};
    fake_buf_import(&b, USBIP_VERSION_0111, FAKE_BUSID);
    size_t fed = fake_feed_buf(h, &b, 0);
    fake_buf_free(&b);
    size_t before = h->out_len;
    fake_drain(h, 0, 0);
    if (fed != USBIP_IMPORT_REQUEST_SIZE || h->out_len - before != USBIP_IMPORT_REPLY_SIZE) {
        return false;
    }
    fake_skip_output(h, USBIP_IMPORT_REPLY_SIZE);
    return usbip_session_state(h->s) == USBIP_SESSION_URB;
}

bool fake_log_contains(const fake_harness_t *h, const char *needle)
{
    return strstr(h->log, needle) != NULL;
}

void fake_log_clear(fake_harness_t *h)
{
    h->log_len = 0;
    h->log[0] = '\0';
}
