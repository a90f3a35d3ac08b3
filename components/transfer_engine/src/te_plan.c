/*
 * te_plan: chunking of bulk/interrupt URBs and the iso packet layout
 * (rules in te_plan.h).
 */
#include "te_plan.h"

#include <string.h>

uint32_t te_round_up_to_mps(uint32_t len, uint16_t mps)
{
    if (mps == 0) {
        return len;
    }
    const uint64_t rounded = ((uint64_t)len + mps - 1) / mps * mps;
    return rounded > UINT32_MAX ? UINT32_MAX / mps * mps : (uint32_t)rounded;
}

uint32_t te_max_chunk(usbip_xfer_type_t type, bool dir_in, uint16_t mps, uint32_t capacity)
{
    if (mps == 0) {
        return 0;
    }
    uint32_t packets = capacity / mps;
    if (type == USBIP_XFER_BULK) {
        const uint32_t limit = TE_BULK_MAX_CHUNK / mps;
        packets = packets < limit ? packets : limit;
    } else if (type == USBIP_XFER_INTERRUPT) {
        const uint32_t limit = dir_in ? TE_INTR_MAX_PACKETS_IN : TE_INTR_MAX_PACKETS_OUT;
        packets = packets < limit ? packets : limit;
    } else {
        return 0;
    }
    return packets * mps;
}

static bool zero_packet_owed(const te_shape_t *s)
{
    return !s->dir_in && (s->flags & USBIP_URB_ZERO_PACKET) && s->length > 0 && s->mps != 0 &&
           s->length % s->mps == 0;
}

bool te_next_chunk(const te_shape_t *s, uint32_t done, te_chunk_t *out)
{
    memset(out, 0, sizeof *out);
    if (s->length == 0) {
        out->last = true; /* one 0-byte transfer: a zero-length packet for OUT */
        return done == 0;
    }
    if (done >= s->length) {
        if (!zero_packet_owed(s)) {
            return false;
        }
        out->offset = s->length; /* resumed right before the owed ZLP */
        out->last = true;
        return true;
    }
    if (s->max_chunk == 0) {
        return false;
    }
    const uint32_t left = s->length - done;
    out->offset = done;
    out->length = left < s->max_chunk ? left : s->max_chunk;
    out->last = out->length == left;
    out->num_bytes = s->dir_in ? te_round_up_to_mps(out->length, s->mps) : out->length;
    out->zero_packet = out->last && zero_packet_owed(s);
    return true;
}

bool te_chunk_finish(const te_shape_t *s, const te_chunk_t *c, uint32_t actual, uint32_t *done,
                     int32_t *status_out)
{
    (void)s;
    if (actual > c->length) {
        if (*status_out == 0) {
            *status_out = USBIP_EOVERFLOW;
        }
        actual = c->length;
    }
    *done += actual;
    return c->last || actual < c->length;
}

/* ---- isochronous ---- */

uint32_t te_iso_interval_slots(uint8_t binterval)
{
    if (binterval == 0) {
        binterval = 1;
    }
    if (binterval > 16) {
        binterval = 16;
    }
    return 1u << (binterval - 1u);
}

uint32_t te_iso_request_length(const usbip_iso_packet_t *p, uint16_t mps, bool dir_in)
{
    return dir_in ? te_round_up_to_mps(p->length, mps) : p->length;
}

static uint64_t iso_bytes(const usbip_iso_packet_t *packets, uint32_t first, uint32_t count,
                          uint16_t mps, bool dir_in)
{
    uint64_t sum = 0;
    for (uint32_t i = first; i < first + count; i++) {
        sum += te_iso_request_length(&packets[i], mps, dir_in);
    }
    return sum;
}

usbip_err_t te_iso_layout(const usbip_iso_packet_t *packets, uint32_t n, bool dir_in,
                          uint16_t mps, uint8_t binterval, te_iso_layout_t *out)
{
    memset(out, 0, sizeof *out);
    if (n == 0) {
        return USBIP_OK;
    }
    if (mps == 0) {
        return USBIP_ERR_INVALID_ARG;
    }
    uint32_t per = TE_ISO_MAX_SLOTS / te_iso_interval_slots(binterval);
    if (per == 0) {
        return USBIP_ERR_NOT_SUPPORTED;
    }
    per = per < n ? per : n;
    out->packets_per_chunk = per;
    out->full_chunks = n / per;
    out->tail_packets = n % per;
    uint64_t largest = 0;
    for (uint32_t k = 0; k < out->full_chunks; k++) {
        const uint64_t bytes = iso_bytes(packets, k * per, per, mps, dir_in);
        largest = bytes > largest ? bytes : largest;
    }
    const uint64_t tail = iso_bytes(packets, out->full_chunks * per, out->tail_packets, mps, dir_in);
    if (largest > UINT32_MAX || tail > UINT32_MAX) {
        return USBIP_ERR_INVALID_SIZE;
    }
    out->chunk_bytes = (uint32_t)largest;
    out->tail_bytes = (uint32_t)tail;
    return USBIP_OK;
}

uint32_t te_iso_chunk_packets(const te_iso_layout_t *l, uint32_t k)
{
    if (k < l->full_chunks) {
        return l->packets_per_chunk;
    }
    return k == l->full_chunks ? l->tail_packets : 0;
}

uint32_t te_iso_pack_out(const uint8_t *urb_buffer, const usbip_iso_packet_t *packets,
                         uint32_t first, uint32_t count, uint8_t *dst)
{
    uint32_t pos = 0;
    for (uint32_t i = first; i < first + count; i++) {
        if (packets[i].length) {
            memcpy(dst + pos, urb_buffer + packets[i].offset, packets[i].length);
        }
        pos += packets[i].length;
    }
    return pos;
}

void te_iso_unpack(usbip_iso_packet_t *packets, uint32_t first, uint32_t count,
                   const te_iso_result_t *results, const uint8_t *src, uint8_t *urb_buffer,
                   uint16_t mps, bool dir_in)
{
    uint32_t pos = 0;
    for (uint32_t i = 0; i < count; i++) {
        usbip_iso_packet_t *p = &packets[first + i];
        uint32_t actual = results[i].actual;
        int32_t status = te_iso_packet_errno(results[i].status);
        if (actual > p->length) {
            actual = p->length;
            status = status ? status : USBIP_EOVERFLOW;
        }
        if (dir_in && actual) {
            memcpy(urb_buffer + p->offset, src + pos, actual);
        }
        p->actual_length = actual;
        p->status = status;
        pos += te_iso_request_length(p, mps, dir_in);
    }
}

void te_iso_fail(usbip_iso_packet_t *packets, uint32_t first, uint32_t count, int32_t status)
{
    for (uint32_t i = first; i < first + count; i++) {
        packets[i].actual_length = 0;
        packets[i].status = status;
    }
}
