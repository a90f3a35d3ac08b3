#include "usbip_session.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usbip_log.h"
#include "usbip_proto.h"

static const char *TAG = "session";

#define MAX_OP_REPLY_DEVICES 255u
#define DISCARD_CHUNK 1024u
#define USBIP_ENOMEM (-12)
#define SET_ADDRESS_REQUEST 5u

/* ---- data structures ---- */

typedef enum { REPLY_URB, REPLY_UNLINK, REPLY_OP } reply_kind_t;

/* One PDU waiting for the writer: up to three segments (header, payload,
 * iso descriptors) that go out in one writev. */
typedef struct reply {
    struct reply *next;
    reply_kind_t kind;
    usbip_iovec_t seg[3];
    size_t nseg;
    size_t total;
} reply_t;

typedef enum {
    SLOT_FREE,
    SLOT_RECEIVING,     /* header accepted, payload or iso descriptors arriving */
    SLOT_IN_BACKEND,    /* submitted, completion pending */
    SLOT_REPLY_QUEUED,  /* RET_SUBMIT queued or being written */
    SLOT_UNLINKED,      /* answered by RET_UNLINK(-ECONNRESET): completion is dropped */
} slot_state_t;

typedef struct {
    usbip_urb_t urb; /* what the backend sees */
    reply_t reply;
    slot_state_t state;
    uint32_t seqnum;
    bool has_buffer;
    bool answer_locally;     /* refused or handled here: never reaches the backend */
    int32_t local_status;
    uint32_t reserved_bytes; /* counted in bytes_in_flight */
    uint32_t iso_capacity;   /* entries allocated at urb.iso, reused across URBs */
    uint8_t ret_header[USBIP_URB_HEADER_SIZE];
} urb_slot_t;

typedef struct {
    reply_t reply;
    bool in_use;
    uint8_t pdu[USBIP_URB_HEADER_SIZE];
} unlink_reply_t;

typedef enum {
    IN_OP_HEADER,   /* op_common */
    IN_OP_BUSID,    /* the busid of OP_REQ_IMPORT */
    IN_URB_HEADER,  /* a 48-byte URB PDU header */
    IN_ADMIT,       /* header decoded, waiting for a slot, bytes or a buffer */
    IN_OUT_DATA,    /* OUT payload into the transfer buffer */
    IN_ISO_DESC,    /* iso descriptors into the slot's iso array */
    IN_DISCARD,     /* payload of a refused URB */
    IN_NONE,        /* nothing more is read */
} input_state_t;

struct usbip_session {
    usbip_session_config_t cfg;
    const usbip_session_env_t *env;
    usbip_session_state_t state;

    /* imported device */
    usbip_registry_entry_t *entry;
    usbip_device_t *dev;
    uint32_t devid;
    uint16_t op_version;

    /* URB pool and limits */
    urb_slot_t *slots;
    unlink_reply_t *unlinks;
    uint32_t slots_busy;
    uint32_t in_backend;
    uint64_t bytes_in_flight;

    /* output queue, written in order by one writer */
    reply_t *out_head;
    reply_t *out_tail;
    size_t out_offset; /* bytes of out_head already written */
    reply_t op_reply;
    uint8_t *op_buf;

    /* input parser */
    input_state_t in_state;
    uint8_t hdr[USBIP_URB_HEADER_SIZE];
    size_t hdr_have;
    size_t hdr_need;
    usbip_urb_header_t pending;
    /* The endpoint as it was when the pending header was read: the header's
     * checks and the stream framing (iso descriptors or not) depend on it,
     * so admission uses this copy even if SET_INTERFACE changed the table
     * while the header waited for a slot. */
    usbip_endpoint_info_t pending_ep;
    uint32_t pending_iso_packets; /* descriptors that follow the pending header */
    bool pending_ep_present;
    urb_slot_t *cur;
    size_t data_have;
    size_t data_need;
    uint8_t scratch[DISCARD_CHUNK];

    /* ending */
    bool fatal;
    bool close_requested;
    bool close_after_flush;

    usbip_stats_t stats;
    uint64_t connected_ms;
};

/* ---- helpers ---- */

static urb_slot_t *slot_of(usbip_urb_t *urb)
{
    return (urb_slot_t *)((char *)urb - offsetof(urb_slot_t, urb));
}

/* Count into the session's and the device's statistics at once. */
static void stats_add(usbip_session_t *s, size_t field_offset, uint64_t n)
{
    *(uint64_t *)((char *)&s->stats + field_offset) += n;
    if (s->entry) {
        *(uint64_t *)((char *)&s->entry->stats + field_offset) += n;
    }
}
#define STATS_ADD(s, field, n) stats_add((s), offsetof(usbip_stats_t, field), (n))

static const char *busid_of(const usbip_session_t *s)
{
    return s->dev ? s->dev->record.busid : NULL;
}

static usbip_err_t protocol_error(usbip_session_t *s, const char *field, int64_t value,
                                  const char *why)
{
    USBIP_LOGW(TAG, "%s: closing connection: %s %lld (0x%x): %s", s->cfg.peer, field,
               (long long)value, (unsigned)(uint32_t)value, why);
    if (s->env->events) {
        usbip_event_log_add(s->env->events, USBIP_EVENT_ERROR, busid_of(s), s->cfg.peer,
                            "protocol error: %s %lld (0x%x): %s", field, (long long)value,
                            (unsigned)(uint32_t)value, why);
    }
    STATS_ADD(s, errors, 1);
    s->fatal = true;
    s->in_state = IN_NONE;
    return USBIP_ERR_PROTOCOL;
}

static void expect_header(usbip_session_t *s, input_state_t state, size_t need)
{
    s->in_state = state;
    s->hdr_have = 0;
    s->hdr_need = need;
}

static int32_t urb_status_of(usbip_err_t err)
{
    switch (err) {
    case USBIP_ERR_INVALID_ARG:
    case USBIP_ERR_INVALID_SIZE: return USBIP_EINVAL;
    case USBIP_ERR_NO_MEM:
    case USBIP_ERR_WOULD_BLOCK: return USBIP_ENOMEM;
    case USBIP_ERR_NOT_FOUND:
    case USBIP_ERR_INVALID_STATE:
    case USBIP_ERR_NOT_SUPPORTED: return USBIP_EPIPE;
    default: return USBIP_EPROTO;
    }
}

/* ---- output queue ---- */

static void queue_reply(usbip_session_t *s, reply_t *r)
{
    r->next = NULL;
    r->total = 0;
    for (size_t i = 0; i < r->nseg; i++) {
        r->total += r->seg[i].len;
    }
    if (s->out_tail) {
        s->out_tail->next = r;
    } else {
        s->out_head = r;
    }
    s->out_tail = r;
}

static void queue_op_reply(usbip_session_t *s, uint8_t *buf, size_t len)
{
    s->op_buf = buf;
    s->op_reply.kind = REPLY_OP;
    s->op_reply.seg[0] = (usbip_iovec_t){buf, len};
    s->op_reply.nseg = 1;
    queue_reply(s, &s->op_reply);
}

/* An OP reply made of op_common alone: refusals, after which we close. */
static void reply_op_status(usbip_session_t *s, uint16_t code, uint32_t status)
{
    uint8_t *buf = malloc(USBIP_OP_HEADER_SIZE);
    if (!buf) {
        s->fatal = true;
        return;
    }
    const usbip_op_header_t hdr = {.version = s->op_version, .code = code, .status = status};
    usbip_op_header_encode(buf, &hdr);
    queue_op_reply(s, buf, USBIP_OP_HEADER_SIZE);
    s->close_after_flush = true;
    s->in_state = IN_NONE;
}

/* ---- URB slots ---- */

static urb_slot_t *take_free_slot(usbip_session_t *s)
{
    for (uint32_t i = 0; i < s->cfg.limits.max_urbs; i++) {
        if (s->slots[i].state == SLOT_FREE) {
            s->slots_busy++;
            return &s->slots[i];
        }
    }
    return NULL;
}

static void release_slot(usbip_session_t *s, urb_slot_t *slot)
{
    if (slot->has_buffer) {
        s->dev->ops->free_buffer(s->dev->ctx, &slot->urb);
        slot->has_buffer = false;
    }
    s->bytes_in_flight -= slot->reserved_bytes;
    slot->reserved_bytes = 0;
    slot->state = SLOT_FREE;
    s->slots_busy--;
}

static urb_slot_t *find_slot_by_seqnum(usbip_session_t *s, uint32_t seqnum)
{
    for (uint32_t i = 0; i < s->cfg.limits.max_urbs; i++) {
        urb_slot_t *slot = &s->slots[i];
        if ((slot->state == SLOT_IN_BACKEND || slot->state == SLOT_REPLY_QUEUED) &&
            slot->seqnum == seqnum) {
            return slot;
        }
    }
    return NULL;
}

static unlink_reply_t *take_unlink_reply(usbip_session_t *s)
{
    for (uint32_t i = 0; i < s->cfg.limits.max_urbs; i++) {
        if (!s->unlinks[i].in_use) {
            s->unlinks[i].in_use = true;
            return &s->unlinks[i];
        }
    }
    return NULL;
}

static usbip_err_t ensure_iso_capacity(urb_slot_t *slot, uint32_t n)
{
    if (slot->iso_capacity >= n) {
        return USBIP_OK;
    }
    usbip_iso_packet_t *iso = realloc(slot->urb.iso, n * sizeof *iso);
    if (!iso) {
        return USBIP_ERR_NO_MEM;
    }
    slot->urb.iso = iso;
    slot->iso_capacity = n;
    return USBIP_OK;
}

/* ---- RET_SUBMIT ---- */

/* Pack iso IN data: packet i's actual bytes move from iso[i].offset to the
 * running total. Destinations never pass sources, so a forward memmove is
 * safe in place. Returns the packed length. */
static uint32_t pack_iso_in_data(usbip_urb_t *urb)
{
    uint32_t packed = 0;
    for (uint32_t i = 0; i < urb->num_iso_packets; i++) {
        const usbip_iso_packet_t *p = &urb->iso[i];
        if (p->actual_length && p->offset != packed) {
            memmove(urb->buffer + packed, urb->buffer + p->offset, p->actual_length);
        }
        packed += p->actual_length;
    }
    return packed;
}

/* Iso results: clamp each packet, count errors, sum the lengths. */
static uint32_t settle_iso_packets(usbip_urb_t *urb, int32_t *error_count)
{
    uint32_t sum = 0;
    int32_t errors = 0;
    for (uint32_t i = 0; i < urb->num_iso_packets; i++) {
        usbip_iso_packet_t *p = &urb->iso[i];
        if (p->actual_length > p->length) {
            p->actual_length = p->length;
        }
        /* Packets may overlap (a client's choice): the packed reply must
         * still fit in the transfer buffer, so the running sum never
         * passes urb->length. */
        if (p->actual_length > urb->length - sum) {
            p->actual_length = urb->length - sum;
        }
        if (p->status != 0) {
            errors++;
        }
        sum += p->actual_length;
    }
    *error_count = errors;
    return sum;
}

static void queue_ret_submit(usbip_session_t *s, urb_slot_t *slot)
{
    usbip_urb_t *urb = &slot->urb;
    /* Iso actual_length is always the sum of the packets (0 without any),
     * whatever the backend put in urb->actual_length. */
    const bool iso = urb->type == USBIP_XFER_ISOCHRONOUS;
    int32_t status = urb->status;
    int32_t error_count = 0;
    uint32_t actual = urb->actual_length;

    if (iso) {
        actual = settle_iso_packets(urb, &error_count);
        if (urb->dir_in) {
            pack_iso_in_data(urb);
        }
    } else {
        if (actual > urb->length) {
            USBIP_LOGD(TAG, "%s: backend returned %u bytes for a %u-byte URB; clamped",
                       s->cfg.peer, (unsigned)actual, (unsigned)urb->length);
            actual = urb->length;
        }
        if (urb->dir_in && status == 0 && actual < urb->length &&
            (urb->flags & USBIP_URB_SHORT_NOT_OK)) {
            status = USBIP_EREMOTEIO;
        }
    }

    const usbip_urb_header_t ret = {
        .command = USBIP_RET_SUBMIT,
        .seqnum = slot->seqnum,
        .u.ret_submit = {
            .status = status,
            .actual_length = (int32_t)actual,
            .start_frame = iso ? urb->start_frame_out : 0,
            .number_of_packets = iso ? (int32_t)urb->num_iso_packets : 0,
            .error_count = iso ? error_count : 0,
        },
    };
    usbip_urb_header_encode(slot->ret_header, &ret);

    reply_t *r = &slot->reply;
    r->kind = REPLY_URB;
    r->nseg = 0;
    r->seg[r->nseg++] = (usbip_iovec_t){slot->ret_header, USBIP_URB_HEADER_SIZE};
    if (urb->dir_in && actual > 0) {
        r->seg[r->nseg++] = (usbip_iovec_t){urb->buffer, actual};
    }
    if (iso && urb->num_iso_packets > 0) {
        usbip_iso_packets_to_wire(urb->iso, urb->num_iso_packets);
        r->seg[r->nseg++] =
            (usbip_iovec_t){urb->iso, urb->num_iso_packets * (size_t)USBIP_ISO_DESC_SIZE};
    }

    if (status != 0) {
        STATS_ADD(s, urbs_failed, 1);
    }
    STATS_ADD(s, bytes_in, urb->dir_in ? actual : 0);
    STATS_ADD(s, bytes_out, urb->dir_in ? 0 : actual);
    slot->state = SLOT_REPLY_QUEUED;
    queue_reply(s, r);
}

/* A URB answered without reaching the device (refused, or handled here).
 * Iso descriptors are still echoed: vhci needs the same packet count back. */
static void answer_locally(usbip_session_t *s, urb_slot_t *slot, int32_t status)
{
    usbip_urb_t *urb = &slot->urb;
    urb->status = status;
    urb->actual_length = 0;
    for (uint32_t i = 0; i < urb->num_iso_packets; i++) {
        urb->iso[i].actual_length = 0;
        urb->iso[i].status = status;
    }
    queue_ret_submit(s, slot);
}

/* ---- CMD_SUBMIT ---- */

static void fill_urb_request(urb_slot_t *slot, const usbip_urb_header_t *hdr,
                             const usbip_endpoint_info_t *ep, uint32_t iso_packets)
{
    const usbip_cmd_submit_t *cmd = &hdr->u.submit;
    const bool dir_in = hdr->direction == USBIP_DIR_IN;
    usbip_urb_t *urb = &slot->urb;
    const usbip_xfer_type_t type =
        ep ? ep->type : (iso_packets ? USBIP_XFER_ISOCHRONOUS : USBIP_XFER_BULK);
    const bool is_iso = type == USBIP_XFER_ISOCHRONOUS;

    urb->ep_address = (uint8_t)(hdr->ep | (dir_in ? 0x80u : 0u));
    urb->type = type;
    urb->dir_in = dir_in;
    urb->flags = usbip_transfer_flags_mask(cmd->transfer_flags, dir_in,
                                           type == USBIP_XFER_BULK, is_iso);
    urb->length = (uint32_t)cmd->transfer_buffer_length;
    if (type == USBIP_XFER_CONTROL) {
        memcpy(urb->setup, cmd->setup, sizeof urb->setup);
        urb->control_kind = usbip_control_kind_of(cmd->setup);
    } else {
        memset(urb->setup, 0, sizeof urb->setup);
        urb->control_kind = USBIP_CONTROL_PLAIN;
    }
    urb->max_packet_size = ep ? ep->max_packet_size : 0;
    urb->start_frame = cmd->start_frame;
    urb->interval = ep ? ep->interval : 0;
    urb->num_iso_packets = iso_packets;
    urb->buffer = NULL;
    urb->buffer_size = 0;
    urb->backend_priv = NULL;
    urb->status = 0;
    urb->actual_length = 0;
    urb->start_frame_out = 0;
    urb->error_count = 0;
    slot->seqnum = hdr->seqnum;
    slot->has_buffer = false;
    slot->answer_locally = false;
    slot->local_status = 0;
    slot->reserved_bytes = 0;
}

static bool is_set_address(const usbip_urb_t *urb)
{
    return urb->type == USBIP_XFER_CONTROL && urb->setup[0] == 0x00 &&
           urb->setup[1] == SET_ADDRESS_REQUEST;
}

static void submit_to_backend(usbip_session_t *s, urb_slot_t *slot)
{
    slot->state = SLOT_IN_BACKEND;
    s->in_backend++;
    STATS_ADD(s, urbs_submitted, 1);
    usbip_err_t err = s->dev->ops->submit(s->dev->ctx, &slot->urb);
    if (err != USBIP_OK) {
        s->in_backend--;
        USBIP_LOGD(TAG, "%s: submit to ep 0x%02x failed: %s", s->cfg.peer,
                   slot->urb.ep_address, usbip_err_name(err));
        answer_locally(s, slot, urb_status_of(err));
    }
}

/* Every byte of input for a URB has arrived: run it. */
static void dispatch_urb(usbip_session_t *s, urb_slot_t *slot)
{
    expect_header(s, IN_URB_HEADER, USBIP_URB_HEADER_SIZE);
    if (slot->answer_locally) {
        answer_locally(s, slot, slot->local_status);
    } else {
        submit_to_backend(s, slot);
    }
}

static void after_out_data(usbip_session_t *s, urb_slot_t *slot)
{
    if (slot->urb.num_iso_packets > 0) {
        s->cur = slot;
        s->in_state = IN_ISO_DESC;
        s->data_have = 0;
        s->data_need = slot->urb.num_iso_packets * (size_t)USBIP_ISO_DESC_SIZE;
        return;
    }
    dispatch_urb(s, slot);
}

static usbip_err_t after_iso_descriptors(usbip_session_t *s, urb_slot_t *slot)
{
    usbip_field_error_t ferr = {0};
    usbip_iso_packets_from_wire(slot->urb.iso, slot->urb.num_iso_packets);
    if (usbip_iso_packets_check(slot->urb.iso, slot->urb.num_iso_packets, slot->urb.length,
                                &ferr) != USBIP_OK) {
        return protocol_error(s, ferr.field, ferr.value,
                              "iso packet outside transfer_buffer_length");
    }
    for (uint32_t i = 0; i < slot->urb.num_iso_packets; i++) {
        slot->urb.iso[i].actual_length = 0;
        slot->urb.iso[i].status = 0;
    }
    dispatch_urb(s, slot);
    return USBIP_OK;
}

/* Start reading the URB's payload: into the transfer buffer, or into the
 * scratch buffer when the URB is refused (the bytes must still be consumed
 * to stay in step with the stream). */
static void begin_payload(usbip_session_t *s, urb_slot_t *slot)
{
    slot->state = SLOT_RECEIVING;
    const uint32_t payload = slot->urb.dir_in ? 0 : slot->urb.length;
    if (payload == 0) {
        after_out_data(s, slot);
        return;
    }
    s->cur = slot;
    s->in_state = slot->has_buffer ? IN_OUT_DATA : IN_DISCARD;
    s->data_have = 0;
    s->data_need = payload;
}

static void refuse(urb_slot_t *slot, int32_t status)
{
    slot->answer_locally = true;
    slot->local_status = status;
}

/* How many iso descriptors follow a CMD_SUBMIT header. A client sends them
 * only for what it believes is an iso pipe, so for an endpoint we do not
 * have (e.g. an alt setting the client assumes) a plausible count means
 * descriptors follow; on other endpoints number_of_packets is junk. */
static uint32_t iso_packets_following(const usbip_urb_header_t *hdr,
                                      const usbip_endpoint_info_t *ep,
                                      const usbip_submit_limits_t *limits)
{
    const int32_t n = hdr->u.submit.number_of_packets;
    if (ep) {
        return ep->type == USBIP_XFER_ISOCHRONOUS ? (uint32_t)n : 0;
    }
    return n >= 1 && (uint32_t)n <= limits->max_iso_packets ? (uint32_t)n : 0;
}

/* Try to start the pending CMD_SUBMIT. Returns false to wait for resources. */
static bool admit_submit(usbip_session_t *s)
{
    const usbip_urb_header_t *hdr = &s->pending;
    const uint32_t length = (uint32_t)hdr->u.submit.transfer_buffer_length;
    if (s->bytes_in_flight > 0 && s->bytes_in_flight + length > s->cfg.limits.max_bytes_in_flight) {
        return false;
    }
    urb_slot_t *slot = take_free_slot(s);
    if (!slot) {
        return false;
    }
    const bool dir_in = hdr->direction == USBIP_DIR_IN;
    const usbip_endpoint_info_t *ep = s->pending_ep_present ? &s->pending_ep : NULL;
    fill_urb_request(slot, hdr, ep, s->pending_iso_packets);

    if (slot->urb.num_iso_packets > 0 &&
        ensure_iso_capacity(slot, slot->urb.num_iso_packets) != USBIP_OK) {
        release_slot(s, slot);
        protocol_error(s, "number_of_packets", slot->urb.num_iso_packets,
                       "no memory for the iso descriptors");
        return true;
    }
    if (!ep) {
        USBIP_LOGD(TAG, "%s: no endpoint %u %s on %s: stall", s->cfg.peer, (unsigned)hdr->ep,
                   dir_in ? "IN" : "OUT", busid_of(s));
        refuse(slot, USBIP_EPIPE);
    } else if (is_set_address(&slot->urb)) {
        refuse(slot, 0); /* vhci never forwards it; acknowledge as a no-op */
    } else {
        usbip_err_t err = s->dev->ops->alloc_buffer(s->dev->ctx, &slot->urb);
        if (err == USBIP_ERR_WOULD_BLOCK) {
            slot->state = SLOT_RECEIVING;
            release_slot(s, slot);
            return false;
        }
        if (err != USBIP_OK) {
            refuse(slot, urb_status_of(err));
        } else {
            slot->has_buffer = true;
            slot->reserved_bytes = length;
            s->bytes_in_flight += length;
        }
    }
    begin_payload(s, slot);
    return true;
}

/* ---- CMD_UNLINK ---- */

static void queue_ret_unlink(usbip_session_t *s, unlink_reply_t *u, uint32_t seqnum,
                             int32_t status)
{
    const usbip_urb_header_t ret = {
        .command = USBIP_RET_UNLINK,
        .seqnum = seqnum,
        .u.ret_unlink.status = status,
    };
    usbip_urb_header_encode(u->pdu, &ret);
    u->reply.kind = REPLY_UNLINK;
    u->reply.seg[0] = (usbip_iovec_t){u->pdu, USBIP_URB_HEADER_SIZE};
    u->reply.nseg = 1;
    queue_reply(s, &u->reply);
}

/* The unlink race (ref §3.4): a victim still in the backend is cancelled and
 * answered -ECONNRESET at once, its completion dropped later. A victim whose
 * RET_SUBMIT is already queued or written gets RET_UNLINK(0) behind it. */
static bool admit_unlink(usbip_session_t *s)
{
    unlink_reply_t *u = take_unlink_reply(s);
    if (!u) {
        return false;
    }
    const uint32_t unlink_seqnum = s->pending.seqnum;
    urb_slot_t *victim = find_slot_by_seqnum(s, s->pending.u.unlink.victim_seqnum);
    /* This CMD_UNLINK is admitted: leave IN_ADMIT before calling the
     * backend, whose cancel() may complete the victim at once, and the
     * completion path must not admit this same CMD_UNLINK a second time. */
    expect_header(s, IN_URB_HEADER, USBIP_URB_HEADER_SIZE);
    if (victim && victim->state == SLOT_IN_BACKEND) {
        victim->state = SLOT_UNLINKED;
        s->dev->ops->cancel(s->dev->ctx, &victim->urb);
        STATS_ADD(s, urbs_unlinked, 1);
        queue_ret_unlink(s, u, unlink_seqnum, USBIP_ECONNRESET);
    } else {
        queue_ret_unlink(s, u, unlink_seqnum, 0);
    }
    return true;
}

static void try_admit_pending(usbip_session_t *s)
{
    if (s->in_state != IN_ADMIT) {
        return;
    }
    if (s->pending.command == USBIP_CMD_UNLINK) {
        admit_unlink(s);
    } else {
        admit_submit(s);
    }
}

static usbip_err_t handle_urb_header(usbip_session_t *s)
{
    usbip_field_error_t ferr = {0};
    usbip_urb_header_t *hdr = &s->pending;
    if (usbip_urb_header_decode(s->hdr, USBIP_URB_HEADER_SIZE, hdr, &ferr) != USBIP_OK) {
        return protocol_error(s, ferr.field, ferr.value, "unknown command");
    }
    if (hdr->command != USBIP_CMD_SUBMIT && hdr->command != USBIP_CMD_UNLINK) {
        return protocol_error(s, "command", hdr->command, "a client may send only CMD_SUBMIT or CMD_UNLINK");
    }
    if (hdr->devid != s->devid) {
        return protocol_error(s, "devid", hdr->devid, "does not match the imported device");
    }
    if (hdr->command == USBIP_CMD_SUBMIT) {
        if (hdr->direction > USBIP_DIR_IN) {
            return protocol_error(s, "direction", hdr->direction, "must be 0 (OUT) or 1 (IN)");
        }
        if (hdr->ep >= USBIP_MAX_ENDPOINTS) {
            return protocol_error(s, "ep", hdr->ep, "must be 0..15");
        }
        const usbip_endpoint_info_t *ep =
            usbip_device_endpoint(s->dev, (uint8_t)hdr->ep, hdr->direction == USBIP_DIR_IN);
        s->pending_ep_present = ep != NULL;
        if (ep) {
            s->pending_ep = *ep;
        }
        const bool is_iso = ep && ep->type == USBIP_XFER_ISOCHRONOUS;
        const usbip_submit_limits_t limits = {
            .max_transfer_length = s->cfg.limits.max_urb_size,
            .max_iso_packets = s->cfg.limits.max_iso_packets,
        };
        if (usbip_cmd_submit_check(hdr, is_iso, &limits, &ferr) != USBIP_OK) {
            char why[64];
            snprintf(why, sizeof why, "outside this session's limits 0..%u",
                     (unsigned)(strcmp(ferr.field, "number_of_packets") == 0
                                    ? limits.max_iso_packets
                                    : limits.max_transfer_length));
            return protocol_error(s, ferr.field, ferr.value, why);
        }
        s->pending_iso_packets = iso_packets_following(hdr, ep, &limits);
    }
    s->in_state = IN_ADMIT;
    try_admit_pending(s);
    return USBIP_OK;
}

/* ---- OP requests ---- */

static bool peer_allowed(usbip_session_t *s)
{
    return !s->env->peer_allowed || s->env->peer_allowed(s->env->ctx, s);
}

typedef struct {
    uint8_t *cursor;
} devlist_writer_t;

static void write_devlist_entry(void *arg, usbip_registry_entry_t *entry)
{
    devlist_writer_t *w = arg;
    const usbip_device_t *dev = entry->dev;
    usbip_device_record_encode(w->cursor, &dev->record);
    w->cursor += USBIP_DEVICE_RECORD_SIZE;
    const uint8_t nintf = dev->record.bNumInterfaces;
    for (uint8_t i = 0; i < nintf && i < USBIP_MAX_INTERFACES; i++) {
        usbip_interface_record_encode(w->cursor, &dev->interfaces[i]);
        w->cursor += USBIP_INTERFACE_RECORD_SIZE;
    }
}

static size_t listed_size(usbip_registry_t *reg, uint32_t *ndev)
{
    size_t size = USBIP_DEVLIST_REPLY_HEADER_SIZE;
    *ndev = 0;
    for (size_t i = 0; i < reg->capacity; i++) {
        const usbip_registry_entry_t *e = &reg->entries[i];
        if (e->used && e->exported && e->state == USBIP_DEV_AVAILABLE) {
            uint8_t nintf = e->dev->record.bNumInterfaces;
            if (nintf > USBIP_MAX_INTERFACES) {
                nintf = USBIP_MAX_INTERFACES;
                e->dev->record.bNumInterfaces = nintf; /* keep count and bytes in agreement */
            }
            size += USBIP_DEVICE_RECORD_SIZE + nintf * (size_t)USBIP_INTERFACE_RECORD_SIZE;
            (*ndev)++;
        }
    }
    return size;
}

static void handle_devlist(usbip_session_t *s)
{
    if (!peer_allowed(s)) {
        USBIP_LOGW(TAG, "%s: DEVLIST refused by access control", s->cfg.peer);
        if (s->env->events) {
            usbip_event_log_add(s->env->events, USBIP_EVENT_CLIENT_REFUSED, NULL, s->cfg.peer,
                                "device list refused by access control");
        }
        reply_op_status(s, USBIP_OP_REP_DEVLIST, USBIP_ST_NA);
        return;
    }
    uint32_t ndev = 0;
    const size_t size = listed_size(s->env->registry, &ndev);
    uint8_t *buf = malloc(size);
    if (!buf) {
        reply_op_status(s, USBIP_OP_REP_DEVLIST, USBIP_ST_ERROR);
        return;
    }
    const usbip_op_header_t hdr = {.version = s->op_version, .code = USBIP_OP_REP_DEVLIST};
    usbip_op_header_encode(buf, &hdr);
    buf[8] = (uint8_t)(ndev >> 24);
    buf[9] = (uint8_t)(ndev >> 16);
    buf[10] = (uint8_t)(ndev >> 8);
    buf[11] = (uint8_t)ndev;
    devlist_writer_t w = {.cursor = buf + USBIP_DEVLIST_REPLY_HEADER_SIZE};
    usbip_registry_for_each_listed(s->env->registry, write_devlist_entry, &w);
    queue_op_reply(s, buf, size);
    s->close_after_flush = true; /* one request per connection, as Linux usbipd */
    s->in_state = IN_NONE;
    USBIP_LOGI(TAG, "%s: listed %u device(s)", s->cfg.peer, (unsigned)ndev);
}

static void refuse_import(usbip_session_t *s, const char *busid, uint32_t status,
                          const char *why)
{
    USBIP_LOGW(TAG, "%s: IMPORT of busid \"%s\" refused: %s", s->cfg.peer, busid, why);
    if (s->env->events) {
        usbip_event_log_add(s->env->events, USBIP_EVENT_CLIENT_REFUSED, busid, s->cfg.peer,
                            "import refused: %s", why);
    }
    reply_op_status(s, USBIP_OP_REP_IMPORT, status);
}

/* A malformed busid as text for the log: printable ASCII, '?' for the rest. */
static void printable_busid(const uint8_t raw[USBIP_BUSID_SIZE], char out[USBIP_BUSID_SIZE])
{
    for (size_t i = 0; i + 1 < USBIP_BUSID_SIZE; i++) {
        out[i] = raw[i] >= 0x20 && raw[i] < 0x7f ? (char)raw[i] : '?';
    }
    out[USBIP_BUSID_SIZE - 1] = '\0';
}

static void handle_import(usbip_session_t *s)
{
    char busid[USBIP_BUSID_SIZE];
    usbip_field_error_t ferr = {0};
    if (usbip_import_busid_decode(s->hdr + USBIP_OP_HEADER_SIZE, busid, &ferr) != USBIP_OK) {
        printable_busid(s->hdr + USBIP_OP_HEADER_SIZE, busid);
        refuse_import(s, busid, USBIP_ST_NODEV, "busid is empty or not NUL-terminated");
        return;
    }
    if (!peer_allowed(s)) {
        refuse_import(s, busid, USBIP_ST_NA, "access control");
        return;
    }
    usbip_registry_entry_t *entry = usbip_registry_find(s->env->registry, busid);
    if (!entry) {
        refuse_import(s, busid, USBIP_ST_NODEV, "no such device");
        return;
    }
    usbip_err_t err = usbip_registry_claim(s->env->registry, entry, s);
    if (err == USBIP_ERR_BUSY) {
        refuse_import(s, busid, USBIP_ST_DEV_BUSY, "device is in use by another session");
        return;
    }
    if (err != USBIP_OK) {
        refuse_import(s, busid, USBIP_ST_NODEV, "device is not exported");
        return;
    }
    usbip_device_t *dev = entry->dev;
    err = dev->ops->attach(dev->ctx);
    if (err != USBIP_OK) {
        usbip_registry_release(s->env->registry, entry, s);
        refuse_import(s, busid, USBIP_ST_NA, usbip_err_name(err));
        return;
    }
    uint8_t *buf = malloc(USBIP_IMPORT_REPLY_SIZE);
    if (!buf) {
        dev->ops->detach(dev->ctx);
        usbip_registry_release(s->env->registry, entry, s);
        reply_op_status(s, USBIP_OP_REP_IMPORT, USBIP_ST_ERROR);
        return;
    }
    s->entry = entry;
    s->dev = dev;
    s->devid = (dev->record.busnum << 16) | dev->record.devnum;
    const usbip_op_header_t hdr = {.version = s->op_version, .code = USBIP_OP_REP_IMPORT};
    usbip_op_header_encode(buf, &hdr);
    usbip_device_record_encode(buf + USBIP_OP_HEADER_SIZE, &dev->record);
    queue_op_reply(s, buf, USBIP_IMPORT_REPLY_SIZE);
    s->state = USBIP_SESSION_URB;
    expect_header(s, IN_URB_HEADER, USBIP_URB_HEADER_SIZE);
    if (s->env->events) {
        usbip_event_log_add(s->env->events, USBIP_EVENT_IMPORT, busid, s->cfg.peer,
                            "imported %04x:%04x", dev->record.idVendor, dev->record.idProduct);
    }
}

static usbip_err_t handle_op_header(usbip_session_t *s)
{
    usbip_op_header_t hdr;
    usbip_op_header_decode(s->hdr, USBIP_OP_HEADER_SIZE, &hdr);
    if (!usbip_version_supported(hdr.version)) {
        return protocol_error(s, "version", hdr.version,
                              "unsupported USB/IP version (0x0100 and 0x0111 are accepted)");
    }
    s->op_version = hdr.version;
    switch (hdr.code) {
    case USBIP_OP_REQ_DEVLIST:
        handle_devlist(s);
        return USBIP_OK;
    case USBIP_OP_REQ_IMPORT:
        s->in_state = IN_OP_BUSID;
        s->hdr_need = USBIP_IMPORT_REQUEST_SIZE;
        return USBIP_OK;
    default:
        return protocol_error(s, "code", hdr.code, "unknown OP request");
    }
}

/* ---- the port's interface ---- */

void usbip_session_limits_default(usbip_session_limits_t *limits)
{
    limits->max_urbs = 64;
    limits->max_bytes_in_flight = 16u * 1024 * 1024;
    limits->max_urb_size = 1024u * 1024;
    limits->max_iso_packets = USBIP_MAX_ISO_PACKETS;
}

usbip_err_t usbip_session_limits_check(const usbip_session_limits_t *limits, char *errbuf,
                                       size_t errlen)
{
    const char *why = NULL;
    if (limits->max_urbs == 0 || limits->max_urbs > 4096) {
        why = "max URBs in flight must be 1..4096";
    } else if (limits->max_urb_size == 0 || limits->max_urb_size > 0x7fffffffu) {
        why = "max URB size must be 1..2147483647 bytes";
    } else if (limits->max_bytes_in_flight < limits->max_urb_size) {
        why = "max bytes in flight must be at least the max URB size";
    } else if (limits->max_iso_packets > USBIP_MAX_ISO_PACKETS) {
        why = "max iso packets must be 0..1024";
    }
    if (why) {
        if (errbuf && errlen) {
            snprintf(errbuf, errlen, "%s", why);
        }
        return USBIP_ERR_INVALID_ARG;
    }
    return USBIP_OK;
}

static void direct_complete(usbip_urb_t *urb)
{
    usbip_session_urb_completed(urb->complete_ctx, urb);
}

usbip_err_t usbip_session_create(const usbip_session_config_t *cfg, usbip_session_t **out)
{
    if (!cfg || !cfg->env || !cfg->env->registry || !out ||
        usbip_session_limits_check(&cfg->limits, NULL, 0) != USBIP_OK) {
        return USBIP_ERR_INVALID_ARG;
    }
    usbip_session_t *s = calloc(1, sizeof *s);
    if (!s) {
        return USBIP_ERR_NO_MEM;
    }
    s->slots = calloc(cfg->limits.max_urbs, sizeof *s->slots);
    s->unlinks = calloc(cfg->limits.max_urbs, sizeof *s->unlinks);
    if (!s->slots || !s->unlinks) {
        free(s->slots);
        free(s->unlinks);
        free(s);
        return USBIP_ERR_NO_MEM;
    }
    s->cfg = *cfg;
    s->cfg.peer[sizeof s->cfg.peer - 1] = '\0';
    s->env = cfg->env;
    s->state = USBIP_SESSION_OP;
    s->connected_ms = usbip_now_ms();
    for (uint32_t i = 0; i < cfg->limits.max_urbs; i++) {
        s->slots[i].urb.complete = s->env->complete ? s->env->complete : direct_complete;
        s->slots[i].urb.complete_ctx = s;
    }
    expect_header(s, IN_OP_HEADER, USBIP_OP_HEADER_SIZE);
    *out = s;
    return USBIP_OK;
}

void usbip_session_destroy(usbip_session_t *s)
{
    if (!s) {
        return;
    }
    if (s->state != USBIP_SESSION_DONE) {
        usbip_session_close(s);
    }
    for (uint32_t i = 0; i < s->cfg.limits.max_urbs; i++) {
        free(s->slots[i].urb.iso);
    }
    free(s->op_buf);
    free(s->slots);
    free(s->unlinks);
    free(s);
}

size_t usbip_session_read_space(usbip_session_t *s, uint8_t **buf)
{
    if (s->fatal || s->close_requested || s->state >= USBIP_SESSION_CLOSING) {
        return 0;
    }
    switch (s->in_state) {
    case IN_OP_HEADER:
    case IN_OP_BUSID:
    case IN_URB_HEADER:
        *buf = s->hdr + s->hdr_have;
        return s->hdr_need - s->hdr_have;
    case IN_OUT_DATA:
        *buf = s->cur->urb.buffer + s->data_have;
        return s->data_need - s->data_have;
    case IN_ISO_DESC:
        *buf = (uint8_t *)s->cur->urb.iso + s->data_have;
        return s->data_need - s->data_have;
    case IN_DISCARD: {
        size_t left = s->data_need - s->data_have;
        *buf = s->scratch;
        return left < sizeof s->scratch ? left : sizeof s->scratch;
    }
    case IN_ADMIT:
        try_admit_pending(s);
        return s->in_state == IN_ADMIT ? 0 : usbip_session_read_space(s, buf);
    case IN_NONE:
        return 0;
    }
    return 0;
}

static usbip_err_t header_complete(usbip_session_t *s)
{
    switch (s->in_state) {
    case IN_OP_HEADER: return handle_op_header(s);
    case IN_OP_BUSID:
        s->in_state = IN_NONE;
        handle_import(s);
        return USBIP_OK;
    default: return handle_urb_header(s);
    }
}

usbip_err_t usbip_session_input(usbip_session_t *s, size_t n)
{
    if (s->fatal) {
        return USBIP_ERR_PROTOCOL;
    }
    switch (s->in_state) {
    case IN_OP_HEADER:
    case IN_OP_BUSID:
    case IN_URB_HEADER:
        s->hdr_have += n;
        return s->hdr_have < s->hdr_need ? USBIP_OK : header_complete(s);
    case IN_OUT_DATA:
    case IN_DISCARD:
        s->data_have += n;
        if (s->data_have == s->data_need) {
            after_out_data(s, s->cur);
        }
        return USBIP_OK;
    case IN_ISO_DESC:
        s->data_have += n;
        return s->data_have < s->data_need ? USBIP_OK : after_iso_descriptors(s, s->cur);
    default:
        return USBIP_ERR_INVALID_STATE;
    }
}

size_t usbip_session_output(usbip_session_t *s, usbip_iovec_t *iov, size_t max_iov)
{
    size_t count = 0;
    size_t skip = s->out_offset;
    for (reply_t *r = s->out_head; r && count < max_iov; r = r->next) {
        for (size_t i = 0; i < r->nseg && count < max_iov; i++) {
            const usbip_iovec_t *seg = &r->seg[i];
            if (skip >= seg->len) {
                skip -= seg->len;
                continue;
            }
            iov[count].base = (const uint8_t *)seg->base + skip;
            iov[count].len = seg->len - skip;
            skip = 0;
            count++;
        }
    }
    return count;
}

/* r leaves the queue: written (sent), or dropped at close (not sent). */
static void reply_written(usbip_session_t *s, reply_t *r, bool sent)
{
    switch (r->kind) {
    case REPLY_URB: {
        urb_slot_t *slot = (urb_slot_t *)((char *)r - offsetof(urb_slot_t, reply));
        if (sent) {
            STATS_ADD(s, urbs_completed, 1);
        }
        release_slot(s, slot);
        break;
    }
    case REPLY_UNLINK:
        ((unlink_reply_t *)r)->in_use = false;
        break;
    case REPLY_OP:
        free(s->op_buf);
        s->op_buf = NULL;
        break;
    }
}

void usbip_session_output_done(usbip_session_t *s, size_t n)
{
    while (n > 0 && s->out_head) {
        reply_t *r = s->out_head;
        const size_t left = r->total - s->out_offset;
        if (n < left) {
            s->out_offset += n;
            return;
        }
        n -= left;
        s->out_offset = 0;
        s->out_head = r->next;
        if (!s->out_head) {
            s->out_tail = NULL;
        }
        reply_written(s, r, true);
    }
    try_admit_pending(s);
}

static void finish_close(usbip_session_t *s)
{
    if (s->entry) {
        s->dev->ops->detach(s->dev->ctx);
        if (s->env->events) {
            usbip_event_log_add(s->env->events, USBIP_EVENT_RELEASE, s->dev->record.busid,
                                s->cfg.peer, "released");
        }
        usbip_registry_release(s->env->registry, s->entry, s);
        s->entry = NULL;
    }
    s->state = USBIP_SESSION_DONE;
}

void usbip_session_urb_completed(usbip_session_t *s, usbip_urb_t *urb)
{
    urb_slot_t *slot = slot_of(urb);
    s->in_backend--;
    if (slot->state == SLOT_UNLINKED || s->state == USBIP_SESSION_CLOSING) {
        release_slot(s, slot);
        if (s->state == USBIP_SESSION_CLOSING && s->in_backend == 0) {
            finish_close(s);
        } else {
            try_admit_pending(s);
        }
        return;
    }
    queue_ret_submit(s, slot);
}

bool usbip_session_wants_close(const usbip_session_t *s)
{
    return s->fatal || s->close_requested || (s->close_after_flush && !s->out_head);
}

void usbip_session_request_close(usbip_session_t *s, const char *reason)
{
    if (!s->close_requested && s->state < USBIP_SESSION_CLOSING) {
        USBIP_LOGI(TAG, "%s: closing connection: %s", s->cfg.peer, reason);
    }
    s->close_requested = true;
}

static void drop_output(usbip_session_t *s)
{
    while (s->out_head) {
        reply_t *r = s->out_head;
        s->out_head = r->next;
        reply_written(s, r, false);
    }
    s->out_tail = NULL;
    s->out_offset = 0;
}

void usbip_session_close(usbip_session_t *s)
{
    if (s->state >= USBIP_SESSION_CLOSING) {
        return;
    }
    s->state = USBIP_SESSION_CLOSING;
    s->in_state = IN_NONE;
    drop_output(s);
    for (uint32_t i = 0; i < s->cfg.limits.max_urbs; i++) {
        urb_slot_t *slot = &s->slots[i];
        if (slot->state == SLOT_RECEIVING) {
            release_slot(s, slot);
        } else if (slot->state == SLOT_IN_BACKEND) {
            s->dev->ops->cancel(s->dev->ctx, &slot->urb);
        }
    }
    if (s->in_backend == 0) {
        finish_close(s);
    }
}

bool usbip_session_finished(const usbip_session_t *s) { return s->state == USBIP_SESSION_DONE; }

usbip_session_state_t usbip_session_state(const usbip_session_t *s) { return s->state; }

const char *usbip_session_peer(const usbip_session_t *s) { return s->cfg.peer; }

void *usbip_session_user(const usbip_session_t *s) { return s->cfg.user; }

const usbip_stats_t *usbip_session_stats(const usbip_session_t *s) { return &s->stats; }

usbip_registry_entry_t *usbip_session_device(const usbip_session_t *s) { return s->entry; }

uint32_t usbip_session_urbs_in_flight(const usbip_session_t *s) { return s->slots_busy; }

uint64_t usbip_session_connected_ms(const usbip_session_t *s) { return s->connected_ms; }
