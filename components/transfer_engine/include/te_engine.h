/*
 * te_engine: everything the ESP backend does with a URB between submit()
 * and its completion, as a portable state machine.
 *
 * The USB Host Library operations are reached through te_host_ops_t (the
 * ESP glue implements them with usb_host_*; the unit tests with a simulated
 * library). All engine calls, and all ops it makes, happen in one task (the
 * USB client task on the firmware), never inside a library callback: the
 * glue records callbacks and feeds them in with te_chunk_done() after
 * usb_host_client_handle_events() returns, because the library still counts
 * a transfer as in flight while its callback runs (release would fail).
 *
 * Per endpoint, URBs form a FIFO in submission order and reach the library
 * in that order; a URB still needing chunks after the one in flight holds
 * back the URBs behind it, so chunks of different URBs never interleave.
 *
 * Cancel (unlink): a URB not in the library completes at once with
 * -ECONNRESET. One in the library can only be stopped by halting and
 * flushing its whole endpoint, and the library then reports 0 bytes for
 * every stopped transfer, even the one that was moving data. So the halt
 * waits until the URB to cancel is the oldest of its endpoint in the
 * library (the session has already answered the unlink): then only the
 * victim was running; it completes with -ECONNRESET and the URBs behind it,
 * which had not started, return to the FIFO and are resubmitted in order
 * once the pipe is cleared. (Should a library report partial progress of a
 * stopped transfer, a bystander resumes after its last transferred byte.)
 * Control transfers cannot be cancelled once started: the cancel is a
 * no-op and the completion comes normally.
 *
 * Errors: after STALL/ERROR/OVERFLOW the library halts the pipe and flushes
 * the rest of its queue (a submit racing with that halt is refused with
 * INVALID_STATE: the URB waits for the clear instead of failing). The failed URB completes with its errno; the ones
 * flushed with it come back CANCELED and are resubmitted in order after
 * usb_host_endpoint_clear(), as on Linux where the queue keeps running (a
 * still-halted device answers each with STALL, i.e. -EPIPE).
 *
 * EP0: one control URB at a time (the library runs them one at a time
 * anyway); special requests run there as small sequences:
 *  - SET_CONFIGURATION to the active value: answered here (status 0) and
 *    treated as a reset: URBs still queued on any endpoint end with
 *    -ESHUTDOWN, interfaces not at alternate setting 0 are switched back
 *    (release, claim 0, SET_INTERFACE sent). Not sent to the device, so no
 *    data toggle changes on either side. Any other value: -EPIPE (the v5.5
 *    library cannot change configuration; -EPIPE is what a refusing device
 *    produces, so class drivers handle it).
 *  - SET_INTERFACE: URBs of the interface end with -ESHUTDOWN, interface
 *    released and claimed at the new alternate setting (on failure the old
 *    one is claimed again: -ENOSPC), then the request itself goes to the
 *    device. A STALL is ignored when the interface has one alternate setting
 *    (as Linux does); otherwise the old setting is restored and -EPIPE
 *    returned. Unknown interface/alternate setting: -EPIPE.
 *  - CLEAR_FEATURE(ENDPOINT_HALT) on a claimed endpoint: the interface's
 *    endpoints are halted and flushed (their URBs wait), the interface is
 *    released and claimed again at the same setting (fresh pipes start at
 *    DATA0: endpoint_clear does not reset the host data toggle), the
 *    request goes to the device, and every other bulk/interrupt endpoint of
 *    the interface also gets CLEAR_FEATURE(ENDPOINT_HALT) so its device
 *    toggle is DATA0 too; then the waiting URBs run. On endpoint 0 or an
 *    unknown endpoint the request is just forwarded.
 *  - SET_FEATURE(PORT_RESET): -EPIPE; v5.5 has no per-device reset (the
 *    dashboard can power-cycle the root port: usb_host_mgr_reset_device).
 *
 * Zero-length interrupt URBs end with -EINVAL (the controller cannot run
 * them).
 *
 * Device gone: URBs not in the library end with -ESHUTDOWN, the ones in it
 * as their transfers return (NO_DEVICE -> -ESHUTDOWN, never resubmitted);
 * later submits end at once with -ESHUTDOWN.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "te_plan.h"
#include "te_status.h"
#include "usb_desc.h"
#include "usbip_backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TE_OK = 0,
    TE_ERR_NOT_FOUND,     /* no such interface/alternate setting/endpoint */
    TE_ERR_NO_RESOURCES,  /* no host channel, FIFO room or memory */
    TE_ERR_INVALID_STATE, /* pipe halted, transfers in flight, device not open */
    TE_ERR_FAILED,        /* anything else */
} te_result_t;

typedef struct te_urb te_urb_t;
typedef struct te_device te_device_t;

/* One transfer the engine asks the library to run. */
typedef struct {
    usbip_xfer_type_t type;
    uint8_t ep_address;      /* 0 for control */
    uint32_t num_bytes;      /* control: 8 + data stage (IN data rounded up to MPS0) */
    bool zero_packet;        /* USB_TRANSFER_FLAG_ZERO_PACK */
    uint32_t offset, length; /* bulk/interrupt: URB bytes covered */
    bool last;
    uint32_t iso_first, iso_count; /* iso: packets of urb->iso in this transfer */
    bool internal;           /* control request the engine sends on its own */
} te_transfer_t;

typedef struct {
    te_result_t (*claim)(void *ctx, te_device_t *dev, uint8_t interface, uint8_t alt);
    te_result_t (*release)(void *ctx, te_device_t *dev, uint8_t interface);
    /* The data buffer of the transfer object that will carry t (the glue
     * picks it: the URB's pool transfer, or an iso transfer with exactly
     * t->iso_count packets); NULL if there is none. The engine then fills
     * it (setup packet, OUT data) before submit(). */
    uint8_t *(*transfer_buffer)(void *ctx, te_urb_t *u, const te_transfer_t *t);
    /* Submit t with the buffer returned above; iso packet lengths are
     * te_iso_request_length() of urb->iso[iso_first + i]. */
    te_result_t (*submit)(void *ctx, te_urb_t *u, const te_transfer_t *t);
    te_result_t (*halt)(void *ctx, te_device_t *dev, uint8_t ep_address);
    te_result_t (*flush)(void *ctx, te_device_t *dev, uint8_t ep_address);
    te_result_t (*clear)(void *ctx, te_device_t *dev, uint8_t ep_address);
    /* The URB is finished: urb->status, actual_length (and iso packets) are
     * final and, after a special request, u->alts_valid/u->alts say which
     * alternate settings the device now uses. The engine no longer touches
     * u or its URB. */
    void (*complete)(void *ctx, te_urb_t *u);
} te_host_ops_t;

typedef enum {
    TE_URB_IDLE = 0,   /* not in the engine */
    TE_URB_WAITING,    /* queued, nothing in the library */
    TE_URB_IN_LIBRARY, /* one transfer of it is in the library */
    TE_URB_SPECIAL,    /* running a special request sequence on EP0 */
} te_urb_state_t;

typedef struct te_endpoint te_endpoint_t;

/* Per-URB engine state; the glue embeds it in its pool entry. */
struct te_urb {
    usbip_urb_t *urb;
    te_device_t *dev;
    te_endpoint_t *ep;
    te_urb_t *prev, *next;   /* endpoint FIFO */
    te_urb_state_t state;
    bool cancel_requested;
    int32_t cancel_status;
    int32_t status;          /* result so far (e.g. -EOVERFLOW), final at completion */
    uint32_t capacity;       /* data bytes of the URB's pool transfer (chunk size) */
    uint32_t done;           /* bulk/interrupt/control: bytes transferred */
    uint32_t iso_done;       /* iso: packets finished */
    te_iso_layout_t iso_layout;
    te_transfer_t xfer;      /* the transfer in the library (or last one) */
    uint8_t *xfer_buffer;
    /* special requests: the alternate settings in effect at completion */
    bool alts_valid;
    uint8_t alts[USB_DESC_MAX_INTERFACES];
};

struct te_endpoint {
    te_urb_t *head, *tail;
    uint32_t in_library;     /* transfers submitted and not yet returned */
    uint8_t address;
    bool claimed;            /* its interface is claimed at an alt that has it */
    int8_t interface_index;  /* owner in cfg->interface_numbers, -1 */
    usbip_endpoint_info_t info;
    bool flushing;           /* we halted+flushed it; clear when empty */
    bool needs_clear;        /* the library halted it after an error */
    bool held;               /* a special request keeps it from running */
};

typedef enum {
    TE_SPECIAL_NONE = 0,
    TE_SPECIAL_SET_CONFIG,
    TE_SPECIAL_SET_INTERFACE,
    TE_SPECIAL_CLEAR_HALT,
} te_special_kind_t;

typedef struct {
    te_urb_t *urb;           /* EP0 URB running the sequence, NULL when none */
    te_special_kind_t kind;
    uint8_t phase;
    uint8_t index;           /* interface index being worked on */
    uint8_t new_alt, old_alt;
    uint8_t target_ep;       /* CLEAR_HALT: endpoint address */
    uint8_t next;            /* iteration cursor (interfaces / sibling endpoints) */
    int32_t status;          /* the request's own result */
    bool waiting_idle;       /* waiting for the interface's transfers to return */
} te_special_t;

struct te_device {
    const usb_desc_config_t *cfg; /* the active configuration (owned by the glue) */
    const char *name;             /* for log lines, e.g. the bus id */
    uint8_t mps0;
    uint8_t alts[USB_DESC_MAX_INTERFACES];     /* current alternate setting per interface index */
    uint8_t default_alts[USB_DESC_MAX_INTERFACES]; /* what SET_CONFIGURATION returns to */
    bool claimed[USB_DESC_MAX_INTERFACES];
    bool attached;
    bool gone;
    te_endpoint_t ep0;
    te_endpoint_t eps[32];   /* [number | (IN ? 16 : 0)], number 1..15 */
    te_special_t special;
    uint32_t urbs;           /* URBs in the engine */
    const te_host_ops_t *ops;
    void *ops_ctx;
    void *user;              /* the glue's device */
};

/* alts: initial alternate settings (usb_desc_default_alts), kept across
 * sessions since the device keeps them. */
void te_device_init(te_device_t *dev, const usb_desc_config_t *cfg, const uint8_t *alts,
                    uint8_t mps0, const te_host_ops_t *ops, void *ops_ctx, void *user);

/* Claim every interface at its current alternate setting. On failure the
 * ones claimed are released again and the first error is returned. */
te_result_t te_device_attach(te_device_t *dev);
/* Release every claimed interface. Call only when te_device_idle(). */
void te_device_detach(te_device_t *dev);
/* The device was unplugged (see the header comment). */
void te_device_gone(te_device_t *dev);
bool te_device_idle(const te_device_t *dev);

/* Take a URB (the session's, after alloc_buffer). capacity = data bytes of
 * the pool transfer behind it (the bulk/interrupt chunk size derives from
 * it). The URB may end inside this call (device gone, invalid request),
 * always through ops->complete, which the glue turns into a queued
 * completion delivered later in the session's task. */
void te_urb_submit(te_device_t *dev, te_urb_t *u, usbip_urb_t *urb, uint32_t capacity);
void te_urb_cancel(te_device_t *dev, te_urb_t *u);

/* The transfer of u came back. actual: bytes as the library counts them
 * (control: including the 8 setup bytes). iso: iso_count results. */
void te_transfer_done(te_device_t *dev, te_urb_t *u, te_usb_status_t status, uint32_t actual,
                      const te_iso_result_t *iso);

const char *te_result_name(te_result_t r);

#ifdef __cplusplus
}
#endif
