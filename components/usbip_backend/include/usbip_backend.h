/*
 * usbip_backend: the interface between the USB/IP core and a USB device
 * implementation (ESP-IDF USB Host Library, libusb, or a virtual device).
 *
 * A device is described by usbip_device_t (what DEVLIST/IMPORT report and the
 * endpoint table the session uses to classify URBs) and driven through
 * usbip_backend_ops_t. Contract, shaped for the ESP-IDF host library:
 *  - submit() never completes the URB synchronously; exactly one completion
 *    follows every successful submit(), through usbip_urb_t.complete, from any
 *    thread. The port marshals it into the session's context.
 *  - cancel() asks for an early completion (status USBIP_ECONNRESET) and may
 *    take effect later or not at all (e.g. control transfers); it never
 *    blocks. A backend that can only cancel a whole endpoint must resubmit
 *    the sibling URBs it cancelled as a side effect.
 *  - URBs of one endpoint complete in submission order.
 *  - alloc_buffer() gives each URB its payload buffer (DMA-capable on the
 *    firmware); it returns USBIP_ERR_WOULD_BLOCK when its pool is empty, and
 *    the session retries after the next completion.
 *  - Control URBs with control_kind != PLAIN are standard requests the
 *    backend must execute itself (not blindly forward), once, reporting the
 *    true status, and then update the device's endpoint table.
 *  - Backend status values are negative Linux errnos (USBIP_E*, usbip_proto.h).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "usbip_err.h"
#include "usbip_proto.h"

#ifdef __cplusplus
extern "C" {
#endif

#define USBIP_MAX_INTERFACES 16u

/* Transfer types, numbered as in bmAttributes of an endpoint descriptor. */
typedef enum {
    USBIP_XFER_CONTROL = 0,
    USBIP_XFER_ISOCHRONOUS = 1,
    USBIP_XFER_BULK = 2,
    USBIP_XFER_INTERRUPT = 3,
} usbip_xfer_type_t;

/* Standard control requests the Linux stub intercepts (ref §4.1). */
typedef enum {
    USBIP_CONTROL_PLAIN = 0,           /* forwarded to the device as is */
    USBIP_CONTROL_SET_CONFIGURATION,   /* 0x00, 9: wValue = configuration */
    USBIP_CONTROL_SET_INTERFACE,       /* 0x01, 11: wIndex = intf, wValue = alt */
    USBIP_CONTROL_CLEAR_HALT,          /* 0x02, 1, wValue 0: wIndex = ep address */
    USBIP_CONTROL_RESET_DEVICE,        /* 0x23, 3, wValue 4: SET_FEATURE(PORT_RESET) */
} usbip_control_kind_t;

typedef struct {
    bool present;
    usbip_xfer_type_t type;
    uint16_t max_packet_size; /* wMaxPacketSize bits 0..10 */
    uint8_t mult;             /* 1..3 transactions per microframe (HS iso/interrupt) */
    uint8_t interval;         /* bInterval */
} usbip_endpoint_info_t;

typedef struct usbip_urb usbip_urb_t;
typedef void (*usbip_urb_complete_fn_t)(usbip_urb_t *urb);

/* One URB as the backend sees it. The session owns the memory; fields marked
 * "request" are read-only for the backend, "result" are written by it
 * before it calls complete(urb). */
struct usbip_urb {
    /* request */
    uint8_t ep_address;      /* endpoint number | 0x80 for IN; ep0 uses the data-stage dir */
    usbip_xfer_type_t type;
    bool dir_in;
    uint32_t flags;          /* USBIP_URB_* after usbip_transfer_flags_mask() */
    uint32_t length;         /* transfer_buffer_length */
    uint8_t setup[8];        /* control only, raw USB little-endian */
    usbip_control_kind_t control_kind;
    uint16_t max_packet_size;
    int32_t start_frame;
    int32_t interval;
    uint32_t num_iso_packets;
    usbip_iso_packet_t *iso; /* num_iso_packets entries, host order; backend sets
                                actual_length and status of each */
    uint8_t *buffer;         /* from alloc_buffer(); IN data lands at offset 0
                                (iso: packet i at iso[i].offset) */
    uint32_t buffer_size;    /* capacity the backend gave, >= length */
    void *backend_priv;      /* free for the backend's use */

    /* result */
    int32_t status;          /* 0 or negative errno */
    uint32_t actual_length;  /* bytes transferred (iso: sum of packets) */
    int32_t start_frame_out;
    int32_t error_count;     /* iso: packets with nonzero status */

    /* set by the session: call exactly once per submitted URB */
    usbip_urb_complete_fn_t complete;
    void *complete_ctx;      /* the session's; backends leave it alone */
};

typedef struct {
    /* Called on IMPORT: claim what the device needs. An error refuses the
     * import (OP_REP_IMPORT status ST_NA). */
    usbip_err_t (*attach)(void *ctx);
    /* Called when the session ends, after every submitted URB completed:
     * release interfaces and reset per-session state. */
    void (*detach)(void *ctx);
    usbip_err_t (*alloc_buffer)(void *ctx, usbip_urb_t *urb);
    void (*free_buffer)(void *ctx, usbip_urb_t *urb);
    /* Start the transfer; on error nothing was started and no completion follows. */
    usbip_err_t (*submit)(void *ctx, usbip_urb_t *urb);
    void (*cancel)(void *ctx, usbip_urb_t *urb);
} usbip_backend_ops_t;

/* An exportable device: its DEVLIST record, interfaces, current endpoint
 * table and backend. The backend owns it and keeps the endpoint table and
 * record.bConfigurationValue current across SET_CONFIGURATION/SET_INTERFACE. */
typedef struct {
    usbip_device_record_t record; /* busid/busnum/devnum are set by the registry */
    usbip_interface_record_t interfaces[USBIP_MAX_INTERFACES];
    usbip_endpoint_info_t ep_in[USBIP_MAX_ENDPOINTS];  /* index = endpoint number */
    usbip_endpoint_info_t ep_out[USBIP_MAX_ENDPOINTS];
    char manufacturer[64]; /* for the dashboard; may be empty */
    char product[64];
    const usbip_backend_ops_t *ops;
    void *ctx;
} usbip_device_t;

/* Classify a control request from its raw setup packet. */
usbip_control_kind_t usbip_control_kind_of(const uint8_t setup[8]);

/* Look up the endpoint a URB addresses; ep 0 is always a control endpoint. */
const usbip_endpoint_info_t *usbip_device_endpoint(const usbip_device_t *dev, uint8_t ep,
                                                   bool dir_in);

#ifdef __cplusplus
}
#endif
