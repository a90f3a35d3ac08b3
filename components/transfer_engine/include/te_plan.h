/*
 * te_plan: how one URB maps onto transfers the ESP32-P4 controller accepts.
 * Pure arithmetic over the URB's shape; no state, no I/O.
 *
 * Bulk and interrupt URBs larger than one transfer buffer are split into
 * chunks run one after the other through the same transfer object:
 *  - chunk size = the transfer buffer rounded down to a multiple of the
 *    endpoint's wMaxPacketSize, at most TE_BULK_MAX_CHUNK for bulk (the
 *    controller's bulk descriptor has a 17-bit size: < 128 KiB) and at most
 *    TE_INTR_MAX_PACKETS_IN/OUT packets for interrupt (32-entry descriptor
 *    list; OUT keeps one entry for a zero-length packet);
 *  - IN chunks ask for a multiple of wMaxPacketSize (the library requires
 *    it), so the last one is rounded up; the result is clamped to what the
 *    URB asked for and a device that sent more gets -EOVERFLOW (babble, as
 *    Linux reports it);
 *  - a short IN chunk ends the URB early (status 0: the session turns it
 *    into -EREMOTEIO when SHORT_NOT_OK is set, so the rule lives in one
 *    place);
 *  - ZERO_PACKET: the last OUT chunk carries USB_TRANSFER_FLAG_ZERO_PACK
 *    when the URB length is a non-zero multiple of wMaxPacketSize (a 0-byte
 *    OUT transfer already is the zero-length packet).
 *
 * Isochronous URBs: USB/IP packets sit at arbitrary offsets; the library
 * wants them back to back, each IN packet a multiple of wMaxPacketSize, and
 * at most TE_ISO_MAX_SLOTS (packets x interval in (micro)frames) per
 * transfer. Larger URBs are split into chunks of equal packet count plus a
 * tail (a transfer's packet count is fixed when it is allocated, so two
 * shapes at most).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "te_status.h"
#include "usbip_backend.h"
#include "usbip_err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TE_BULK_MAX_CHUNK       (64u * 1024u)
#define TE_INTR_MAX_PACKETS_IN  32u
#define TE_INTR_MAX_PACKETS_OUT 31u
/* v5.5 hcd_dwc.c rejects packets x interval > 64 and asserts above 61. */
#define TE_ISO_MAX_SLOTS        61u
#define TE_SETUP_SIZE           8u

uint32_t te_round_up_to_mps(uint32_t len, uint16_t mps);

/* Largest data chunk for a bulk/interrupt URB through a transfer buffer of
 * `capacity` bytes; 0 when not even one packet fits (or mps is 0). */
uint32_t te_max_chunk(usbip_xfer_type_t type, bool dir_in, uint16_t mps, uint32_t capacity);

/* What one bulk/interrupt URB looks like to the planner. */
typedef struct {
    usbip_xfer_type_t type; /* BULK or INTERRUPT */
    bool dir_in;
    uint32_t length;        /* transfer_buffer_length */
    uint16_t mps;           /* wMaxPacketSize bits 0..10 */
    uint32_t flags;         /* USBIP_URB_* (ZERO_PACKET matters) */
    uint32_t max_chunk;     /* te_max_chunk() */
} te_shape_t;

typedef struct {
    uint32_t offset;     /* first URB byte this chunk covers */
    uint32_t length;     /* URB bytes it covers */
    uint32_t num_bytes;  /* bytes the transfer asks for (IN: rounded up to mps) */
    bool zero_packet;    /* set USB_TRANSFER_FLAG_ZERO_PACK */
    bool last;           /* no chunk follows if this one completes in full */
} te_chunk_t;

/* The chunk that starts after `done` URB bytes. False when nothing is left
 * to transfer (done == length and no zero-length packet is owed). A URB of
 * length 0 has one chunk of 0 bytes. Resuming at done == length owes a
 * 0-byte chunk when the URB needs its zero-length packet. */
bool te_next_chunk(const te_shape_t *s, uint32_t done, te_chunk_t *out);

/* Account a chunk that completed (status COMPLETED) with `actual` bytes:
 * adds min(actual, chunk length) to *done, sets *status_out to -EOVERFLOW
 * when the device sent more than the chunk covers (else leaves it), and
 * returns true when the URB is finished (last chunk, or a short IN chunk). */
bool te_chunk_finish(const te_shape_t *s, const te_chunk_t *c, uint32_t actual, uint32_t *done,
                     int32_t *status_out);

/* ---- isochronous ---- */

/* (Micro)frames between packets for bInterval (1..16): 2^(bInterval-1). */
uint32_t te_iso_interval_slots(uint8_t binterval);
/* Bytes the transfer reserves for one packet: IN rounded up to mps. */
uint32_t te_iso_request_length(const usbip_iso_packet_t *p, uint16_t mps, bool dir_in);

typedef struct {
    uint32_t packets_per_chunk; /* packet count of every chunk but the tail */
    uint32_t full_chunks;       /* chunks of packets_per_chunk packets */
    uint32_t tail_packets;      /* packets of the last, smaller chunk (0: none) */
    uint32_t chunk_bytes;       /* largest byte count of a full chunk */
    uint32_t tail_bytes;        /* byte count of the tail chunk */
} te_iso_layout_t;

/* Split n packets. NOT_SUPPORTED when one packet already exceeds
 * TE_ISO_MAX_SLOTS (bInterval too large for the controller's list);
 * n == 0 gives an empty layout (the URB completes at once). */
usbip_err_t te_iso_layout(const usbip_iso_packet_t *packets, uint32_t n, bool dir_in,
                          uint16_t mps, uint8_t binterval, te_iso_layout_t *out);
/* Packets in chunk k of a layout (0 past the end). */
uint32_t te_iso_chunk_packets(const te_iso_layout_t *l, uint32_t k);

/* Copy OUT packets [first, first+count) from the URB buffer (at their
 * USB/IP offsets) to dst back to back. Returns the bytes written. */
uint32_t te_iso_pack_out(const uint8_t *urb_buffer, const usbip_iso_packet_t *packets,
                         uint32_t first, uint32_t count, uint8_t *dst);

/* Result of one packet as the library reported it. */
typedef struct {
    te_usb_status_t status;
    uint32_t actual;
} te_iso_result_t;

/* Store the results of packets [first, first+count) into the URB's
 * descriptors (actual clamped to the packet length: a longer one is
 * -EOVERFLOW) and, for IN, copy each packet's data from the back-to-back
 * transfer buffer `src` (packet i at the sum of the earlier packets'
 * request lengths) to its USB/IP offset in urb_buffer. */
void te_iso_unpack(usbip_iso_packet_t *packets, uint32_t first, uint32_t count,
                   const te_iso_result_t *results, const uint8_t *src, uint8_t *urb_buffer,
                   uint16_t mps, bool dir_in);

/* Mark packets [first, first+count) as failed with `status` (errno), 0 bytes. */
void te_iso_fail(usbip_iso_packet_t *packets, uint32_t first, uint32_t count, int32_t status);

#ifdef __cplusplus
}
#endif
