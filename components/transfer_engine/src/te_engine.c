/*
 * te_engine: per-endpoint URB queues, chunked transfers, unlink by flush,
 * error recovery and the special control requests (behaviour described in
 * te_engine.h). Single-threaded: the glue calls every entry point from the
 * USB client task, outside library callbacks.
 *
 * Every entry point ends with pump_all(), which starts whatever may run
 * now; the helpers below only change state and never pump themselves, so
 * no path re-enters the queues it is walking.
 */
#include "te_engine.h"

#include <string.h>

#include "usbip_log.h"

#define TAG "usb-engine"

/* Special request phases. */
enum {
    SC_QUIESCE = 0, /* SET_CONFIGURATION: end URBs of the next interface */
    SC_RESET_ALT,   /* ... and bring it back to its default alternate setting */
    SC_SENT,        /* ... internal SET_INTERFACE in flight */
    SI_QUIESCE,     /* SET_INTERFACE: end URBs of the interface */
    SI_SWITCH,      /* ... release, claim the new setting, send the request */
    SI_SENT,        /* ... the client's request in flight */
    CH_QUIESCE,     /* CLEAR_HALT: stop the interface's endpoints (URBs wait) */
    CH_RECLAIM,     /* ... fresh pipes (DATA0), send the request */
    CH_SENT,        /* ... the client's request in flight */
    CH_SIBLINGS,    /* ... CLEAR_FEATURE(HALT) to the other bulk/interrupt endpoints */
    CH_SIBLING_SENT,
};

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static const char *name_of(const te_device_t *dev)
{
    return dev->name ? dev->name : "usb";
}

const char *te_result_name(te_result_t r)
{
    switch (r) {
    case TE_OK: return "OK";
    case TE_ERR_NOT_FOUND: return "NOT_FOUND";
    case TE_ERR_NO_RESOURCES: return "NO_RESOURCES";
    case TE_ERR_INVALID_STATE: return "INVALID_STATE";
    case TE_ERR_FAILED: return "FAILED";
    }
    return "UNKNOWN";
}

static int32_t submit_errno(te_result_t r)
{
    switch (r) {
    case TE_OK: return 0;
    case TE_ERR_NOT_FOUND:
    case TE_ERR_INVALID_STATE: return USBIP_EPIPE;
    case TE_ERR_NO_RESOURCES: return TE_ENOMEM;
    default: return USBIP_EPROTO;
    }
}

/* Errno of a transfer that did not complete; a gone device's leftovers
 * are all -ESHUTDOWN. */
static int32_t failure_errno(const te_device_t *dev, te_usb_status_t status)
{
    if (dev->gone && (status == TE_USB_CANCELED || status == TE_USB_NO_DEVICE)) {
        return USBIP_ESHUTDOWN;
    }
    return te_status_to_errno(status);
}

/* ---- endpoints and FIFOs ---- */

static te_endpoint_t *endpoint_of(te_device_t *dev, uint8_t address)
{
    const uint8_t number = address & 0x0fu;
    if (number == 0) {
        return &dev->ep0;
    }
    return &dev->eps[number | ((address & 0x80u) ? 16u : 0u)];
}

static uint8_t interface_number(const te_device_t *dev, uint8_t index)
{
    return dev->cfg->interface_numbers[index];
}

static void fifo_append(te_endpoint_t *ep, te_urb_t *u)
{
    u->next = NULL;
    u->prev = ep->tail;
    if (ep->tail) {
        ep->tail->next = u;
    } else {
        ep->head = u;
    }
    ep->tail = u;
}

static void fifo_remove(te_endpoint_t *ep, te_urb_t *u)
{
    if (u->prev) {
        u->prev->next = u->next;
    } else {
        ep->head = u->next;
    }
    if (u->next) {
        u->next->prev = u->prev;
    } else {
        ep->tail = u->prev;
    }
    u->prev = u->next = NULL;
}

/* Which endpoints have pipes, from the claimed interfaces and their alts. */
static void refresh_endpoints(te_device_t *dev)
{
    for (unsigned k = 1; k < 32; k++) {
        if ((k & 15u) == 0) {
            continue;
        }
        dev->eps[k].claimed = false;
        dev->eps[k].interface_index = -1;
    }
    for (uint8_t i = 0; i < dev->cfg->num_interfaces; i++) {
        if (!dev->claimed[i]) {
            continue;
        }
        const usb_desc_altsetting_t *alt =
            usb_desc_find_alt(dev->cfg, interface_number(dev, i), dev->alts[i]);
        for (unsigned e = 0; alt && e < alt->num_endpoints; e++) {
            const usb_desc_endpoint_t *d = usb_desc_alt_endpoint(dev->cfg, alt, e);
            te_endpoint_t *ep = endpoint_of(dev, d->address);
            if (ep == &dev->ep0 || ep->claimed) {
                continue;
            }
            ep->claimed = true;
            ep->interface_index = (int8_t)i;
            ep->info = usb_desc_endpoint_info(d);
        }
    }
}

/* ---- ending URBs ---- */

static uint32_t iso_sum(const usbip_urb_t *urb)
{
    uint32_t sum = 0;
    for (uint32_t i = 0; i < urb->num_iso_packets; i++) {
        sum += urb->iso[i].actual_length;
    }
    return sum;
}

static void end_urb(te_device_t *dev, te_urb_t *u, int32_t status)
{
    usbip_urb_t *urb = u->urb;
    if (urb->type == USBIP_XFER_ISOCHRONOUS) {
        if (u->iso_done < urb->num_iso_packets) {
            te_iso_fail(urb->iso, u->iso_done, urb->num_iso_packets - u->iso_done,
                        status ? status : USBIP_ECONNRESET);
        }
        urb->actual_length = iso_sum(urb);
        int32_t errors = 0;
        for (uint32_t i = 0; i < urb->num_iso_packets; i++) {
            errors += urb->iso[i].status != 0;
        }
        urb->error_count = errors;
    } else {
        urb->actual_length = u->done;
        urb->error_count = 0;
    }
    urb->status = status;
    urb->start_frame_out = 0;
    fifo_remove(u->ep, u);
    u->state = TE_URB_IDLE;
    dev->urbs--;
    dev->ops->complete(dev->ops_ctx, u);
}

/* ---- halting and flushing a pipe ---- */

static void request_flush(te_device_t *dev, te_endpoint_t *ep)
{
    if (dev->gone || ep->flushing || ep->needs_clear || ep->in_library == 0) {
        return;
    }
    te_result_t r = dev->ops->halt(dev->ops_ctx, dev, ep->address);
    if (r != TE_OK) {
        USBIP_LOGW(TAG, "%s: halt of endpoint 0x%02x failed (%s): its transfers complete normally",
                   name_of(dev), ep->address, te_result_name(r));
        return;
    }
    r = dev->ops->flush(dev->ops_ctx, dev, ep->address);
    if (r != TE_OK) {
        USBIP_LOGW(TAG, "%s: flush of endpoint 0x%02x failed (%s): resuming it", name_of(dev),
                   ep->address, te_result_name(r));
        r = dev->ops->clear(dev->ops_ctx, dev, ep->address);
        if (r != TE_OK) {
            USBIP_LOGE(TAG, "%s: endpoint 0x%02x stays halted: clear failed (%s)", name_of(dev),
                       ep->address, te_result_name(r));
        }
        return;
    }
    ep->flushing = true;
}

/* Unlink on an endpoint: the library can only halt the whole pipe, and it
 * reports 0 bytes for every transfer the halt stops, the one that was
 * moving data included. So the pipe is halted only once the URB to cancel
 * is the oldest one in the library: the transfers behind it have not
 * started, and run again from their first byte without loss or repetition.
 * Until then the cancel waits (the session has answered the unlink). */
static void flush_if_oldest_cancelled(te_device_t *dev, te_endpoint_t *ep)
{
    for (te_urb_t *u = ep->head; u; u = u->next) {
        if (u->state == TE_URB_IN_LIBRARY) {
            if (u->cancel_requested) {
                request_flush(dev, ep);
            }
            return;
        }
    }
}

/* The last transfer of a halted pipe came back: make it active again. */
static void clear_if_drained(te_device_t *dev, te_endpoint_t *ep)
{
    if (ep->in_library != 0 || !(ep->flushing || ep->needs_clear)) {
        return;
    }
    if (!dev->gone) {
        te_result_t r = dev->ops->clear(dev->ops_ctx, dev, ep->address);
        if (r != TE_OK) {
            USBIP_LOGW(TAG, "%s: clear of endpoint 0x%02x failed (%s)", name_of(dev), ep->address,
                       te_result_name(r));
        }
    }
    ep->flushing = false;
    ep->needs_clear = false;
}

/* ---- starting transfers ---- */

static uint16_t mps_of(const te_urb_t *u)
{
    return u->urb->max_packet_size ? u->urb->max_packet_size : u->ep->info.max_packet_size;
}

static te_shape_t shape_of(const te_urb_t *u)
{
    const usbip_urb_t *urb = u->urb;
    const uint16_t mps = mps_of(u);
    te_shape_t s = {
        .type = urb->type,
        .dir_in = urb->dir_in,
        .length = urb->length,
        .mps = mps,
        .flags = urb->flags,
        .max_chunk = te_max_chunk(urb->type, urb->dir_in, mps, u->capacity),
    };
    return s;
}

/* Hand t to the library with the buffer filled; false if the URB ended. */
static bool submit_transfer(te_device_t *dev, te_urb_t *u, const te_transfer_t *t)
{
    usbip_urb_t *urb = u->urb;
    uint8_t *buf = dev->ops->transfer_buffer(dev->ops_ctx, u, t);
    if (!buf) {
        end_urb(dev, u, TE_ENOMEM);
        return false;
    }
    if (!urb->dir_in) {
        if (t->type == USBIP_XFER_ISOCHRONOUS) {
            te_iso_pack_out(urb->buffer, urb->iso, t->iso_first, t->iso_count, buf);
        } else if (t->length && buf != urb->buffer + t->offset) {
            /* memmove: a resumed zero-copy URB moves its own tail forward */
            memmove(buf, urb->buffer + t->offset, t->length);
        }
    }
    te_result_t r = dev->ops->submit(dev->ops_ctx, u, t);
    if (r == TE_ERR_INVALID_STATE && u->ep->in_library > 0) {
        /* The library halts a pipe the moment a transfer fails, but tells us
         * only at its next event turn: the failed transfer is still ours to
         * hear about. Wait for it and the clear that follows, so that this
         * URB keeps its place behind it. */
        u->ep->needs_clear = true;
        return false;
    }
    if (r != TE_OK) {
        USBIP_LOGW(TAG, "%s: submit to endpoint 0x%02x failed (%s)", name_of(dev), t->ep_address,
                   te_result_name(r));
        end_urb(dev, u, submit_errno(r));
        return false;
    }
    u->xfer = *t;
    u->xfer_buffer = buf;
    u->state = TE_URB_IN_LIBRARY;
    u->ep->in_library++;
    return true;
}

static bool start_iso(te_device_t *dev, te_urb_t *u)
{
    usbip_urb_t *urb = u->urb;
    const uint16_t mps = mps_of(u);
    if (u->iso_done == 0 && u->iso_layout.packets_per_chunk == 0) {
        usbip_err_t err = te_iso_layout(urb->iso, urb->num_iso_packets, urb->dir_in, mps,
                                        (uint8_t)urb->interval, &u->iso_layout);
        if (err != USBIP_OK) {
            USBIP_LOGW(TAG, "%s: iso endpoint 0x%02x: bInterval %d cannot be scheduled",
                       name_of(dev), urb->ep_address, (int)urb->interval);
            end_urb(dev, u, USBIP_EINVAL);
            return false;
        }
    }
    if (urb->num_iso_packets == 0 || u->iso_done >= urb->num_iso_packets) {
        end_urb(dev, u, 0);
        return false;
    }
    const uint32_t per = u->iso_layout.packets_per_chunk;
    te_transfer_t t = {
        .type = USBIP_XFER_ISOCHRONOUS,
        .ep_address = urb->ep_address,
        .iso_first = u->iso_done,
        .iso_count = te_iso_chunk_packets(&u->iso_layout, u->iso_done / per),
    };
    for (uint32_t i = t.iso_first; i < t.iso_first + t.iso_count; i++) {
        t.num_bytes += te_iso_request_length(&urb->iso[i], mps, urb->dir_in);
    }
    t.last = t.iso_first + t.iso_count == urb->num_iso_packets;
    return submit_transfer(dev, u, &t);
}

static bool start_data(te_device_t *dev, te_urb_t *u)
{
    const te_shape_t s = shape_of(u);
    if (s.mps == 0) {
        end_urb(dev, u, USBIP_EINVAL);
        return false;
    }
    if (s.max_chunk == 0 && s.length > 0) {
        USBIP_LOGW(TAG, "%s: endpoint 0x%02x: wMaxPacketSize %u exceeds the %u-byte transfer buffer",
                   name_of(dev), u->urb->ep_address, (unsigned)s.mps, (unsigned)u->capacity);
        end_urb(dev, u, TE_ENOMEM);
        return false;
    }
    te_chunk_t c;
    if (!te_next_chunk(&s, u->done, &c)) {
        end_urb(dev, u, u->status);
        return false;
    }
    te_transfer_t t = {
        .type = s.type,
        .ep_address = u->urb->ep_address,
        .num_bytes = c.num_bytes,
        .zero_packet = c.zero_packet,
        .offset = c.offset,
        .length = c.length,
        .last = c.last,
    };
    return submit_transfer(dev, u, &t);
}

static bool start_next_transfer(te_device_t *dev, te_urb_t *u)
{
    if (u->urb->type == USBIP_XFER_ISOCHRONOUS) {
        return start_iso(dev, u);
    }
    return start_data(dev, u);
}

/* Run what may run on a bulk/interrupt/iso endpoint, in FIFO order. */
static void pump_endpoint(te_device_t *dev, te_endpoint_t *ep)
{
    if (dev->gone || ep->flushing || ep->needs_clear || ep->held) {
        return;
    }
    te_urb_t *u = ep->head;
    while (u && !ep->needs_clear) {
        te_urb_t *next = u->next;
        if (u->state == TE_URB_IN_LIBRARY) {
            if (!u->xfer.last) {
                return; /* its next chunk must go before anything behind it */
            }
        } else if (u->cancel_requested) {
            end_urb(dev, u, u->cancel_status);
        } else if (!ep->claimed) {
            end_urb(dev, u, USBIP_EPIPE); /* endpoint not in the current alt setting */
        } else if (start_next_transfer(dev, u) && !u->xfer.last) {
            return;
        }
        u = next;
    }
}

/* ---- control transfers ---- */

/* Start a control transfer for u with this setup packet; internal ones have
 * no data stage. Returns 0 or the errno it failed with (u not ended). */
static int32_t start_control(te_device_t *dev, te_urb_t *u, const uint8_t setup[8],
                             bool internal)
{
    usbip_urb_t *urb = u->urb;
    const bool in = (setup[0] & 0x80u) != 0;
    const uint32_t data = internal ? 0 : le16(&setup[6]);
    if (data > urb->length && !internal) {
        USBIP_LOGW(TAG, "%s: control request wLength %u exceeds the URB's %u-byte buffer",
                   name_of(dev), (unsigned)data, (unsigned)urb->length);
        return USBIP_EINVAL;
    }
    te_transfer_t t = {
        .type = USBIP_XFER_CONTROL,
        .ep_address = 0,
        .num_bytes = TE_SETUP_SIZE + (in ? te_round_up_to_mps(data, dev->mps0) : data),
        .length = data,
        .last = true,
        .internal = internal,
    };
    uint8_t *buf = dev->ops->transfer_buffer(dev->ops_ctx, u, &t);
    if (!buf) {
        return TE_ENOMEM;
    }
    memcpy(buf, setup, TE_SETUP_SIZE);
    if (!in && data && buf + TE_SETUP_SIZE != urb->buffer) {
        memcpy(buf + TE_SETUP_SIZE, urb->buffer, data);
    }
    te_result_t r = dev->ops->submit(dev->ops_ctx, u, &t);
    if (r != TE_OK) {
        USBIP_LOGW(TAG, "%s: control transfer submit failed (%s)", name_of(dev),
                   te_result_name(r));
        return submit_errno(r);
    }
    u->xfer = t;
    u->xfer_buffer = buf;
    if (u->state != TE_URB_SPECIAL) {
        u->state = TE_URB_IN_LIBRARY;
    }
    dev->ep0.in_library++;
    return 0;
}

/* Data stage bytes of a finished control transfer, IN data copied out. */
static uint32_t control_data_done(te_urb_t *u, uint32_t actual, int32_t *status)
{
    uint32_t data = actual > TE_SETUP_SIZE ? actual - TE_SETUP_SIZE : 0;
    if (data > u->xfer.length) {
        data = u->xfer.length;
        if (*status == 0) {
            *status = USBIP_EOVERFLOW;
        }
    }
    usbip_urb_t *urb = u->urb;
    if (urb->dir_in && data && u->xfer_buffer + TE_SETUP_SIZE != urb->buffer) {
        memcpy(urb->buffer, u->xfer_buffer + TE_SETUP_SIZE, data);
    }
    return data;
}

/* ---- special requests ---- */

static void special_run(te_device_t *dev);

static bool interface_idle(const te_device_t *dev, uint8_t index)
{
    for (unsigned k = 1; k < 32; k++) {
        const te_endpoint_t *ep = &dev->eps[k];
        if ((k & 15u) && ep->interface_index == (int8_t)index && ep->in_library) {
            return false;
        }
    }
    return true;
}

/* Stop an interface's endpoints: they stay held until the request ends.
 * fail_status != 0 ends their URBs with it; 0 keeps them for later. */
static void quiesce(te_device_t *dev, uint8_t index, int32_t fail_status)
{
    for (unsigned k = 1; k < 32; k++) {
        te_endpoint_t *ep = &dev->eps[k];
        if ((k & 15u) == 0 || !ep->claimed || ep->interface_index != (int8_t)index) {
            continue;
        }
        ep->held = true;
        for (te_urb_t *u = ep->head, *next; u; u = next) {
            next = u->next;
            if (fail_status == 0) {
                continue;
            }
            if (u->state == TE_URB_WAITING) {
                end_urb(dev, u, fail_status);
            } else if (u->state == TE_URB_IN_LIBRARY) {
                u->cancel_requested = true;
                u->cancel_status = fail_status;
            }
        }
        request_flush(dev, ep);
    }
}

/* Release and claim an interface at `to`; on failure claim `from` again.
 * to == from gives fresh pipes (data toggles back to DATA0). */
static te_result_t switch_alt(te_device_t *dev, uint8_t index, uint8_t to, uint8_t from)
{
    const uint8_t number = interface_number(dev, index);
    te_result_t r = dev->ops->release(dev->ops_ctx, dev, number);
    if (r != TE_OK) {
        USBIP_LOGW(TAG, "%s: release of interface %u failed (%s)", name_of(dev), number,
                   te_result_name(r));
        return r;
    }
    dev->claimed[index] = false;
    r = dev->ops->claim(dev->ops_ctx, dev, number, to);
    if (r == TE_OK) {
        dev->alts[index] = to;
        dev->claimed[index] = true;
    } else {
        USBIP_LOGW(TAG, "%s: claim of interface %u alt %u failed (%s)", name_of(dev), number, to,
                   te_result_name(r));
        te_result_t back = dev->ops->claim(dev->ops_ctx, dev, number, from);
        if (back == TE_OK) {
            dev->claimed[index] = true;
        } else {
            USBIP_LOGE(TAG, "%s: interface %u unusable: claim of alt %u failed too (%s)",
                       name_of(dev), number, from, te_result_name(back));
        }
    }
    refresh_endpoints(dev);
    return r;
}

static void special_finish(te_device_t *dev, int32_t status)
{
    te_urb_t *u = dev->special.urb;
    for (unsigned k = 1; k < 32; k++) {
        dev->eps[k].held = false;
    }
    memset(&dev->special, 0, sizeof dev->special);
    u->alts_valid = true;
    memcpy(u->alts, dev->alts, sizeof u->alts);
    u->done = 0;
    end_urb(dev, u, status);
}

/* Wait for the interface being worked on to drain; true if it already is. */
static bool wait_idle(te_device_t *dev)
{
    if (interface_idle(dev, dev->special.index)) {
        return true;
    }
    dev->special.waiting_idle = true;
    return false;
}

static void set_config_run(te_device_t *dev)
{
    te_special_t *sp = &dev->special;
    for (;;) {
        if (dev->gone) {
            special_finish(dev, USBIP_ESHUTDOWN);
            return;
        }
        if (sp->phase == SC_QUIESCE) {
            if (sp->next >= dev->cfg->num_interfaces) {
                special_finish(dev, 0);
                return;
            }
            sp->index = sp->next;
            quiesce(dev, sp->index, USBIP_ESHUTDOWN);
            sp->phase = SC_RESET_ALT;
            if (!wait_idle(dev)) {
                return;
            }
        }
        /* SC_RESET_ALT */
        const uint8_t index = sp->index, target = dev->default_alts[index];
        sp->next++;
        sp->phase = SC_QUIESCE;
        if (!dev->claimed[index] || dev->alts[index] == target) {
            continue;
        }
        if (switch_alt(dev, index, target, dev->alts[index]) != TE_OK) {
            continue;
        }
        const uint8_t number = interface_number(dev, index);
        const uint8_t setup[8] = {0x01, 0x0b, target, 0, number, 0, 0, 0};
        if (start_control(dev, sp->urb, setup, true) == 0) {
            sp->phase = SC_SENT;
            return;
        }
    }
}

static void set_interface_run(te_device_t *dev)
{
    te_special_t *sp = &dev->special;
    if (sp->phase == SI_QUIESCE) {
        quiesce(dev, sp->index, USBIP_ESHUTDOWN);
        sp->phase = SI_SWITCH;
        if (!wait_idle(dev)) {
            return;
        }
    }
    /* SI_SWITCH */
    if (dev->gone) {
        special_finish(dev, USBIP_ESHUTDOWN);
        return;
    }
    te_result_t r = switch_alt(dev, sp->index, sp->new_alt, sp->old_alt);
    if (r != TE_OK) {
        special_finish(dev, r == TE_ERR_NO_RESOURCES ? TE_ENOSPC : USBIP_EPIPE);
        return;
    }
    int32_t err = start_control(dev, sp->urb, sp->urb->urb->setup, false);
    if (err) {
        switch_alt(dev, sp->index, sp->old_alt, sp->new_alt);
        special_finish(dev, err);
        return;
    }
    sp->phase = SI_SENT;
}

static void clear_halt_siblings(te_device_t *dev)
{
    te_special_t *sp = &dev->special;
    const usb_desc_altsetting_t *alt = usb_desc_find_alt(
        dev->cfg, interface_number(dev, sp->index), dev->alts[sp->index]);
    while (!dev->gone && alt && sp->next < alt->num_endpoints) {
        const usb_desc_endpoint_t *d = usb_desc_alt_endpoint(dev->cfg, alt, sp->next++);
        const unsigned type = d->attributes & 0x3u;
        if (d->address == sp->target_ep ||
            (type != USBIP_XFER_BULK && type != USBIP_XFER_INTERRUPT)) {
            continue;
        }
        const uint8_t setup[8] = {0x02, 0x01, 0, 0, d->address, 0, 0, 0};
        if (start_control(dev, sp->urb, setup, true) == 0) {
            sp->phase = CH_SIBLING_SENT;
            return;
        }
    }
    special_finish(dev, dev->gone && sp->status == 0 ? USBIP_ESHUTDOWN : sp->status);
}

static void clear_halt_run(te_device_t *dev)
{
    te_special_t *sp = &dev->special;
    if (sp->phase == CH_QUIESCE) {
        quiesce(dev, sp->index, 0);
        sp->phase = CH_RECLAIM;
        if (!wait_idle(dev)) {
            return;
        }
    }
    if (sp->phase == CH_RECLAIM) {
        if (dev->gone) {
            special_finish(dev, USBIP_ESHUTDOWN);
            return;
        }
        const uint8_t alt = dev->alts[sp->index];
        if (switch_alt(dev, sp->index, alt, alt) != TE_OK) {
            special_finish(dev, USBIP_EPIPE);
            return;
        }
        int32_t err = start_control(dev, sp->urb, sp->urb->urb->setup, false);
        if (err) {
            special_finish(dev, err);
            return;
        }
        sp->phase = CH_SENT;
        return;
    }
    if (sp->phase == CH_SIBLINGS) {
        clear_halt_siblings(dev);
    }
}

static void special_run(te_device_t *dev)
{
    switch (dev->special.kind) {
    case TE_SPECIAL_SET_CONFIG: set_config_run(dev); break;
    case TE_SPECIAL_SET_INTERFACE: set_interface_run(dev); break;
    case TE_SPECIAL_CLEAR_HALT: clear_halt_run(dev); break;
    case TE_SPECIAL_NONE: break;
    }
}

/* The control transfer of a running special request came back. */
static void special_transfer_done(te_device_t *dev, te_usb_status_t status)
{
    te_special_t *sp = &dev->special;
    const uint8_t number = interface_number(dev, sp->index);
    switch (sp->phase) {
    case SC_SENT:
        if (status != TE_USB_COMPLETED) {
            USBIP_LOGW(TAG, "%s: SET_INTERFACE(%u, %u) after SET_CONFIGURATION: %s",
                       name_of(dev), number, dev->alts[sp->index], te_usb_status_name(status));
        }
        sp->phase = SC_QUIESCE;
        set_config_run(dev);
        return;
    case SI_SENT:
        if (status == TE_USB_COMPLETED) {
            special_finish(dev, 0);
        } else if (status == TE_USB_STALL && usb_desc_alt_count(dev->cfg, number) == 1) {
            USBIP_LOGI(TAG, "%s: interface %u stalled SET_INTERFACE; it has one alt setting, "
                       "so that is fine (as Linux)", name_of(dev), number);
            special_finish(dev, 0);
        } else {
            if (!dev->gone) {
                switch_alt(dev, sp->index, sp->old_alt, sp->new_alt);
            }
            special_finish(dev, failure_errno(dev, status));
        }
        return;
    case CH_SENT:
        sp->status = status == TE_USB_COMPLETED ? 0 : failure_errno(dev, status);
        sp->phase = CH_SIBLINGS;
        sp->next = 0;
        clear_halt_siblings(dev);
        return;
    case CH_SIBLING_SENT:
        if (status != TE_USB_COMPLETED) {
            USBIP_LOGD(TAG, "%s: CLEAR_FEATURE(HALT) to a sibling endpoint: %s", name_of(dev),
                       te_usb_status_name(status));
        }
        sp->phase = CH_SIBLINGS;
        clear_halt_siblings(dev);
        return;
    default:
        USBIP_LOGE(TAG, "%s: unexpected control completion in phase %u", name_of(dev), sp->phase);
        return;
    }
}

/* Forward a request that needs no special handling after all. */
static void forward_plain(te_device_t *dev, te_urb_t *u)
{
    memset(&dev->special, 0, sizeof dev->special);
    u->state = TE_URB_WAITING;
    int32_t err = start_control(dev, u, u->urb->setup, false);
    if (err) {
        end_urb(dev, u, err);
    }
}

static void special_start(te_device_t *dev, te_urb_t *u)
{
    te_special_t *sp = &dev->special;
    const uint8_t *setup = u->urb->setup;
    const uint16_t value = le16(&setup[2]), index = le16(&setup[4]);
    memset(sp, 0, sizeof *sp);
    sp->urb = u;
    u->state = TE_URB_SPECIAL;
    switch (u->urb->control_kind) {
    case USBIP_CONTROL_SET_CONFIGURATION:
        if (value != dev->cfg->configuration_value) {
            USBIP_LOGW(TAG, "%s: SET_CONFIGURATION %u refused: only the active configuration %u "
                       "is supported (ESP-IDF cannot switch)", name_of(dev), value,
                       dev->cfg->configuration_value);
            special_finish(dev, USBIP_EPIPE);
            return;
        }
        sp->kind = TE_SPECIAL_SET_CONFIG;
        sp->phase = SC_QUIESCE;
        set_config_run(dev);
        return;
    case USBIP_CONTROL_SET_INTERFACE: {
        const int i = index <= 0xff ? usb_desc_interface_index(dev->cfg, (uint8_t)index) : -1;
        if (i < 0 || value > 0xff || !dev->claimed[i] ||
            !usb_desc_find_alt(dev->cfg, (uint8_t)index, (uint8_t)value)) {
            USBIP_LOGW(TAG, "%s: SET_INTERFACE(%u, %u): no such interface/alt setting",
                       name_of(dev), index, value);
            special_finish(dev, USBIP_EPIPE);
            return;
        }
        sp->kind = TE_SPECIAL_SET_INTERFACE;
        sp->index = (uint8_t)i;
        sp->new_alt = (uint8_t)value;
        sp->old_alt = dev->alts[i];
        sp->phase = SI_QUIESCE;
        set_interface_run(dev);
        return;
    }
    case USBIP_CONTROL_CLEAR_HALT: {
        const uint8_t ep = (uint8_t)index;
        const te_endpoint_t *target = (index <= 0xff && (ep & 0x0fu)) ? endpoint_of(dev, ep) : NULL;
        if (!target || !target->claimed || target->interface_index < 0) {
            forward_plain(dev, u);
            return;
        }
        sp->kind = TE_SPECIAL_CLEAR_HALT;
        sp->index = (uint8_t)target->interface_index;
        sp->target_ep = ep;
        sp->phase = CH_QUIESCE;
        clear_halt_run(dev);
        return;
    }
    case USBIP_CONTROL_RESET_DEVICE:
        USBIP_LOGW(TAG, "%s: port reset requested: not supported by the ESP-IDF v5.5 host "
                   "library (no per-device reset); answered -EPIPE", name_of(dev));
        special_finish(dev, USBIP_EPIPE);
        return;
    case USBIP_CONTROL_PLAIN:
    default:
        forward_plain(dev, u);
        return;
    }
}

/* Start the next control URB if EP0 is free. */
static void pump_ep0(te_device_t *dev)
{
    te_endpoint_t *ep = &dev->ep0;
    while (ep->head && !dev->special.urb && ep->head->state == TE_URB_WAITING) {
        te_urb_t *u = ep->head;
        if (dev->gone) {
            end_urb(dev, u, USBIP_ESHUTDOWN);
        } else if (u->urb->control_kind == USBIP_CONTROL_PLAIN) {
            int32_t err = start_control(dev, u, u->urb->setup, false);
            if (err) {
                end_urb(dev, u, err);
            }
        } else {
            special_start(dev, u);
        }
    }
}

static void pump_all(te_device_t *dev)
{
    pump_ep0(dev);
    for (unsigned k = 1; k < 32; k++) {
        if ((k & 15u) && dev->eps[k].head) {
            pump_endpoint(dev, &dev->eps[k]);
        }
    }
}

/* ---- completions ---- */

static void data_transfer_done(te_device_t *dev, te_urb_t *u, te_usb_status_t status,
                               uint32_t actual)
{
    usbip_urb_t *urb = u->urb;
    const te_transfer_t *t = &u->xfer;
    const uint32_t landed = actual < t->num_bytes ? actual : t->num_bytes;
    if (urb->dir_in && landed && u->xfer_buffer != urb->buffer + t->offset) {
        memcpy(urb->buffer + t->offset, u->xfer_buffer, landed < t->length ? landed : t->length);
    }
    if (status == TE_USB_COMPLETED) {
        const te_shape_t s = shape_of(u);
        const te_chunk_t c = {.offset = t->offset, .length = t->length,
                              .num_bytes = t->num_bytes, .last = t->last};
        if (te_chunk_finish(&s, &c, actual, &u->done, &u->status)) {
            end_urb(dev, u, u->status);
        } else if (u->cancel_requested || dev->gone) {
            end_urb(dev, u, u->cancel_requested ? u->cancel_status : USBIP_ESHUTDOWN);
        }
        return;
    }
    const uint32_t partial = landed < t->length ? landed : t->length;
    u->done += partial;
    if (status == TE_USB_CANCELED && !dev->gone && !u->cancel_requested) {
        /* Flushed as a bystander: resume after its last byte. Two IN cases
         * end here instead, with what arrived (status 0, a short read): a
         * partial packet (the device ended the transfer before the halt),
         * and a zero-copy URB, whose next transfer would land on top of the
         * bytes already received (the transfer buffer is the URB buffer). */
        const uint16_t mps = mps_of(u);
        const bool zero_copy = u->xfer_buffer == urb->buffer;
        if (urb->dir_in && partial && ((mps && partial % mps) || zero_copy)) {
            end_urb(dev, u, u->status);
        }
        return;
    }
    if (status == TE_USB_CANCELED && u->cancel_requested) {
        end_urb(dev, u, u->cancel_status);
        return;
    }
    end_urb(dev, u, failure_errno(dev, status));
}

static void iso_transfer_done(te_device_t *dev, te_urb_t *u, te_usb_status_t status,
                              const te_iso_result_t *iso)
{
    usbip_urb_t *urb = u->urb;
    const te_transfer_t *t = &u->xfer;
    if (status == TE_USB_COMPLETED && iso) {
        te_iso_unpack(urb->iso, t->iso_first, t->iso_count, iso, u->xfer_buffer, urb->buffer,
                      mps_of(u), urb->dir_in);
        u->iso_done += t->iso_count;
        if (u->iso_done >= urb->num_iso_packets) {
            end_urb(dev, u, 0);
        } else if (u->cancel_requested || dev->gone) {
            end_urb(dev, u, u->cancel_requested ? u->cancel_status : USBIP_ESHUTDOWN);
        }
        return;
    }
    if (status == TE_USB_CANCELED && !dev->gone && !u->cancel_requested) {
        return; /* flushed as a bystander: the whole transfer runs again */
    }
    end_urb(dev, u, (status == TE_USB_CANCELED && u->cancel_requested) ? u->cancel_status
                                                                         : failure_errno(dev, status));
}

static void control_transfer_done(te_device_t *dev, te_urb_t *u, te_usb_status_t status,
                                  uint32_t actual)
{
    if (dev->special.urb == u) {
        special_transfer_done(dev, status);
        return;
    }
    int32_t err = u->status;
    u->done = control_data_done(u, actual, &err);
    end_urb(dev, u, status == TE_USB_COMPLETED ? err : failure_errno(dev, status));
}

void te_transfer_done(te_device_t *dev, te_urb_t *u, te_usb_status_t status, uint32_t actual,
                      const te_iso_result_t *iso)
{
    if (u->state != TE_URB_IN_LIBRARY && u->state != TE_URB_SPECIAL) {
        USBIP_LOGE(TAG, "%s: completion of a transfer the engine did not start", name_of(dev));
        return;
    }
    te_endpoint_t *ep = u->ep;
    if (ep->in_library) {
        ep->in_library--;
    }
    if (ep == &dev->ep0) {
        control_transfer_done(dev, u, status, actual);
    } else {
        if (te_status_halts_pipe(status)) {
            ep->needs_clear = true; /* the library halted it and flushed its queue */
        }
        u->state = TE_URB_WAITING;
        if (u->urb->type == USBIP_XFER_ISOCHRONOUS) {
            iso_transfer_done(dev, u, status, iso);
        } else {
            data_transfer_done(dev, u, status, actual);
        }
        clear_if_drained(dev, ep);
        flush_if_oldest_cancelled(dev, ep);
        te_special_t *sp = &dev->special;
        if (sp->urb && sp->waiting_idle && interface_idle(dev, sp->index)) {
            sp->waiting_idle = false;
            special_run(dev);
        }
    }
    pump_all(dev);
}

/* ---- device lifecycle and URB entry points ---- */

void te_device_init(te_device_t *dev, const usb_desc_config_t *cfg, const uint8_t *alts,
                    uint8_t mps0, const te_host_ops_t *ops, void *ops_ctx, void *user)
{
    memset(dev, 0, sizeof *dev);
    dev->cfg = cfg;
    dev->mps0 = mps0 ? mps0 : 8;
    if (alts) {
        memcpy(dev->alts, alts, sizeof dev->alts);
    } else {
        usb_desc_default_alts(cfg, dev->alts);
    }
    usb_desc_default_alts(cfg, dev->default_alts);
    dev->ops = ops;
    dev->ops_ctx = ops_ctx;
    dev->user = user;
    dev->ep0.interface_index = -1;
    for (unsigned k = 0; k < 32; k++) {
        dev->eps[k].address = (uint8_t)((k & 15u) | ((k & 16u) ? 0x80u : 0u));
        dev->eps[k].interface_index = -1;
    }
}

te_result_t te_device_attach(te_device_t *dev)
{
    te_result_t first_error = TE_OK;
    for (uint8_t i = 0; i < dev->cfg->num_interfaces; i++) {
        if (dev->claimed[i]) {
            continue;
        }
        te_result_t r = dev->ops->claim(dev->ops_ctx, dev, interface_number(dev, i), dev->alts[i]);
        if (r != TE_OK) {
            USBIP_LOGW(TAG, "%s: claim of interface %u alt %u failed (%s)", name_of(dev),
                       interface_number(dev, i), dev->alts[i], te_result_name(r));
            first_error = r;
            break;
        }
        dev->claimed[i] = true;
    }
    if (first_error != TE_OK) {
        te_device_detach(dev);
        return first_error;
    }
    for (unsigned k = 1; k < 32; k++) {
        dev->eps[k].flushing = dev->eps[k].needs_clear = dev->eps[k].held = false;
    }
    refresh_endpoints(dev);
    dev->attached = true;
    return TE_OK;
}

void te_device_detach(te_device_t *dev)
{
    if (!te_device_idle(dev)) {
        USBIP_LOGE(TAG, "%s: detach with %u URB(s) still in the engine", name_of(dev),
                   (unsigned)dev->urbs);
    }
    for (uint8_t i = 0; i < dev->cfg->num_interfaces; i++) {
        if (!dev->claimed[i]) {
            continue;
        }
        te_result_t r = dev->ops->release(dev->ops_ctx, dev, interface_number(dev, i));
        if (r == TE_OK) {
            dev->claimed[i] = false;
        } else {
            USBIP_LOGW(TAG, "%s: release of interface %u failed (%s)", name_of(dev),
                       interface_number(dev, i), te_result_name(r));
        }
    }
    refresh_endpoints(dev);
    dev->attached = false;
}

void te_device_gone(te_device_t *dev)
{
    dev->gone = true;
    te_endpoint_t *eps[33];
    unsigned n = 0;
    eps[n++] = &dev->ep0;
    for (unsigned k = 1; k < 32; k++) {
        if (k & 15u) {
            eps[n++] = &dev->eps[k];
        }
    }
    for (unsigned i = 0; i < n; i++) {
        for (te_urb_t *u = eps[i]->head, *next; u; u = next) {
            next = u->next;
            if (u->state == TE_URB_WAITING) {
                end_urb(dev, u, USBIP_ESHUTDOWN);
            }
        }
    }
    te_special_t *sp = &dev->special;
    if (sp->urb && sp->waiting_idle && interface_idle(dev, sp->index)) {
        sp->waiting_idle = false;
        special_run(dev);
    }
    pump_all(dev);
}

bool te_device_idle(const te_device_t *dev)
{
    return dev->urbs == 0;
}

void te_urb_submit(te_device_t *dev, te_urb_t *u, usbip_urb_t *urb, uint32_t capacity)
{
    memset(u, 0, sizeof *u);
    u->urb = urb;
    u->dev = dev;
    u->capacity = capacity;
    u->state = TE_URB_WAITING;
    u->ep = endpoint_of(dev, urb->ep_address);
    fifo_append(u->ep, u);
    dev->urbs++;
    if (dev->gone) {
        end_urb(dev, u, USBIP_ESHUTDOWN);
        return;
    }
    if (urb->type == USBIP_XFER_INTERRUPT && urb->length == 0) {
        /* The controller's interrupt descriptor list cannot hold an empty
         * transfer (v5.5 hcd_dwc.c would index entry -1). */
        USBIP_LOGW(TAG, "%s: zero-length interrupt transfer on endpoint 0x%02x: not supported",
                   name_of(dev), urb->ep_address);
        end_urb(dev, u, USBIP_EINVAL);
        return;
    }
    pump_all(dev);
}

void te_urb_cancel(te_device_t *dev, te_urb_t *u)
{
    if (u->state == TE_URB_IDLE || u->dev != dev) {
        return; /* already finished: its completion is on its way */
    }
    if (u->state == TE_URB_WAITING) {
        end_urb(dev, u, USBIP_ECONNRESET);
    } else if (u->ep != &dev->ep0 && u->state == TE_URB_IN_LIBRARY) {
        u->cancel_requested = true;
        u->cancel_status = USBIP_ECONNRESET;
        flush_if_oldest_cancelled(dev, u->ep);
    }
    /* A started control transfer cannot be cancelled: it completes normally. */
    pump_all(dev);
}
