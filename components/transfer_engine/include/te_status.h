/*
 * te_status: USB transfer outcomes as the ESP-IDF USB Host Library reports
 * them, and their Linux errno for USB/IP (usbip-protocol ref §2.4).
 *
 * te_usb_status_t mirrors usb_transfer_status_t (usb/usb_types_stack.h)
 * value for value; the ESP glue checks that with static asserts, so a status
 * can be passed across by value. Portable: no ESP-IDF includes.
 *
 *   COMPLETED -> 0
 *   ERROR     -> -EPROTO    (excessive errors: no response, CRC, bit stuffing)
 *   TIMED_OUT -> -ETIMEDOUT (the library does not produce it today)
 *   CANCELED  -> -ECONNRESET (unlinked)
 *   STALL     -> -EPIPE     (ep0: protocol stall; other endpoints: halted)
 *   OVERFLOW  -> -EOVERFLOW (babble: more data than the transfer asked for)
 *   SKIPPED   -> -EXDEV     (iso packet not sent/received in its frame)
 *   NO_DEVICE -> -ENODEV    (device removed)
 * URBs the backend ends itself because the device or an endpoint goes away
 * (unplug, SET_INTERFACE, SET_CONFIGURATION) get -ESHUTDOWN, as a Linux HCD
 * gives URBs flushed from a disabled endpoint.
 */
#pragma once

#include <stdint.h>

#include "usbip_proto.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TE_USB_COMPLETED = 0,
    TE_USB_ERROR,
    TE_USB_TIMED_OUT,
    TE_USB_CANCELED,
    TE_USB_STALL,
    TE_USB_OVERFLOW,
    TE_USB_SKIPPED,
    TE_USB_NO_DEVICE,
} te_usb_status_t;

/* errnos the core does not define */
#define TE_ENOMEM (-12)
#define TE_ENOSPC (-28) /* no host channel / FIFO room for the alternate setting */

/* Status of a whole transfer (non-iso, or an iso transfer that failed as a
 * whole) as a negative Linux errno; unknown values give -EPROTO. */
int32_t te_status_to_errno(te_usb_status_t status);
/* Status of one iso packet: COMPLETED 0, SKIPPED -EXDEV, others as above. */
int32_t te_iso_packet_errno(te_usb_status_t status);
/* True when the library halts the pipe after this status (and flushes the
 * rest of its queue): STALL, ERROR, OVERFLOW, TIMED_OUT. */
int te_status_halts_pipe(te_usb_status_t status);
const char *te_usb_status_name(te_usb_status_t status);

#ifdef __cplusplus
}
#endif
