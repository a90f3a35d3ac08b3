/*
 * vdev_internal: the framework the four virtual devices share.
 *
 * The framework (vdev_core.c, vdev_control.c) implements the backend
 * contract once: per-endpoint queues of pending URBs, deferred delivery from
 * vdev_poll, cancel and unplug, halt bits, the standard control requests,
 * and the endpoint tables derived from the device's own configuration
 * descriptors. A device kind only supplies descriptors and a few hooks
 * (vdev_kind_ops_t): its class/vendor control requests and a step function
 * that tries to make progress on the oldest URB of one of its endpoints.
 */
#pragma once

#include "usbip_log.h"
#include "vdev.h"
#include "vdev_desc.h"
#include "vdev_fifo.h"

#define VDEV_MAX_CONFIGS     2u
#define VDEV_EP0_MAX_PACKET  64u
#define VDEV_BULK_MAX_PACKET 512u /* High-Speed */

/* Standard requests (USB 2.0 table 9-4). */
#define USB_REQ_GET_STATUS        0x00u
#define USB_REQ_CLEAR_FEATURE     0x01u
#define USB_REQ_SET_FEATURE       0x03u
#define USB_REQ_SET_ADDRESS       0x05u
#define USB_REQ_GET_DESCRIPTOR    0x06u
#define USB_REQ_GET_CONFIGURATION 0x08u
#define USB_REQ_SET_CONFIGURATION 0x09u
#define USB_REQ_GET_INTERFACE     0x0au
#define USB_REQ_SET_INTERFACE     0x0bu

#define USB_FEATURE_ENDPOINT_HALT        0u
#define USB_FEATURE_DEVICE_REMOTE_WAKEUP 1u

/* Fields of bmRequestType. */
#define USB_DIR_IN          0x80u
#define USB_TYPE_MASK       0x60u
#define USB_TYPE_STANDARD   0x00u
#define USB_TYPE_CLASS      0x20u
#define USB_TYPE_VENDOR     0x40u
#define USB_RECIP_MASK      0x1fu
#define USB_RECIP_DEVICE    0x00u
#define USB_RECIP_INTERFACE 0x01u
#define USB_RECIP_ENDPOINT  0x02u

/* A control hook's answer when the request is none of its business. */
#define VDEV_CONTROL_UNHANDLED 1

/* One submitted URB while the device holds it. */
typedef struct vdev_xfer {
    struct vdev_xfer *next;
    usbip_urb_t *urb;
    uint32_t progress; /* bytes already handled, for URBs served in pieces */
} vdev_xfer_t;

typedef struct {
    vdev_xfer_t *head, *tail;
} vdev_queue_t;

/* A decoded setup packet. */
typedef struct {
    uint8_t bmRequestType;
    uint8_t bRequest;
    uint16_t wValue;
    uint16_t wIndex;
    uint16_t wLength;
} vdev_setup_t;

/* What a step on the oldest URB of an endpoint achieved. */
typedef enum {
    VDEV_STEP_WAIT,     /* nothing possible now; try again after other activity */
    VDEV_STEP_PROGRESS, /* part of the URB handled (xfer->progress moved), not finished */
    VDEV_STEP_DONE,     /* result written into the URB: complete it */
} vdev_step_t;

typedef enum {
    VDEV_RESET_SESSION, /* attach or detach: everything back to a fresh plug-in */
    VDEV_RESET_PORT,    /* USB port reset within a session */
} vdev_reset_t;

typedef struct {
    const char *name;
    /* Build descriptors (vdev_set_identity, vdev_add_configuration) and
     * allocate dev->state. Log and return an error on a bad config. */
    usbip_err_t (*create)(vdev_t *dev, const vdev_config_t *cfg);
    void (*destroy)(vdev_t *dev);
    /* Back to the default state; runs after the framework reset its own. */
    void (*reset)(vdev_t *dev, vdev_reset_t why);
    /* The configuration or an alt setting changed (optional). */
    void (*configuration_changed)(vdev_t *dev);
    /* Class and vendor requests, and standard ones the framework leaves
     * (e.g. GET_DESCRIPTOR to an interface). data holds len bytes: the OUT
     * data, or room for the IN reply; set *actual. Returns 0, USBIP_EPIPE
     * or VDEV_CONTROL_UNHANDLED (stalled by the framework). */
    int (*control)(vdev_t *dev, const vdev_setup_t *setup, uint8_t *data, uint32_t len,
                   uint32_t *actual);
    /* Try to progress the oldest URB of a non-control endpoint; the
     * framework already checked that the endpoint exists with this type
     * and is not halted. On DONE fill urb->status/actual_length (and iso
     * results); the framework zeroed them at submit. */
    vdev_step_t (*step)(vdev_t *dev, vdev_xfer_t *xfer, const usbip_endpoint_info_t *ep);
    /* Milliseconds until a timed step is due, -1 if none (optional). */
    int (*next_timeout_ms)(const vdev_t *dev, uint64_t now_ms);
    void (*describe)(const vdev_t *dev, char *buf, size_t len);
} vdev_kind_ops_t;

extern const vdev_kind_ops_t vdev_keyboard_kind;
extern const vdev_kind_ops_t vdev_serial_kind;
extern const vdev_kind_ops_t vdev_storage_kind;
extern const vdev_kind_ops_t vdev_zero_kind;

struct vdev {
    vdev_kind_t kind;
    const vdev_kind_ops_t *ops;
    void *state; /* the kind's own */
    usbip_device_t device;

    /* Descriptors */
    uint8_t device_desc[VDEV_DEVICE_DESC_SIZE];
    vdev_config_desc_t configs[VDEV_MAX_CONFIGS];
    size_t num_configs;
    char serial[24];

    /* USB state */
    uint8_t default_config;                /* value after a reset */
    uint8_t config_value;                  /* 0 = unconfigured */
    uint8_t alt[USBIP_MAX_INTERFACES];     /* current alt setting per interface */
    uint8_t ep_interface_in[USBIP_MAX_ENDPOINTS];
    uint8_t ep_interface_out[USBIP_MAX_ENDPOINTS];
    bool halted_in[USBIP_MAX_ENDPOINTS];
    bool halted_out[USBIP_MAX_ENDPOINTS];
    bool remote_wakeup;

    /* URBs held: queue_out[0] is the control queue, whatever the direction. */
    vdev_queue_t queue_in[USBIP_MAX_ENDPOINTS];
    vdev_queue_t queue_out[USBIP_MAX_ENDPOINTS];
    vdev_queue_t finished; /* results written, waiting for vdev_poll to deliver */
    bool dirty;            /* something may progress: serve the queues */
    bool unplugged;
    uint64_t now_ms;       /* time of the current vdev_poll */
};

/* ---- for device kinds (vdev_core.c) ---- */

typedef struct {
    uint16_t vid, pid, bcd_device;
    uint8_t device_class, device_subclass, device_protocol;
    const char *manufacturer;
    const char *product;
} vdev_identity_t;

#define VDEV_MANUFACTURER "usbip-esp32p4"

/* Fill the record, strings and serial number. Call before adding configs. */
void vdev_set_identity(vdev_t *dev, const vdev_identity_t *id);
/* Add a finished configuration descriptor; the first one added is the
 * default configuration. */
usbip_err_t vdev_add_configuration(vdev_t *dev, const vdev_config_desc_t *config);

/* The queue of an endpoint address (0x00 or 0x80 = control). */
vdev_queue_t *vdev_queue(vdev_t *dev, uint8_t ep_address);
bool vdev_queue_has_urb(const vdev_t *dev, uint8_t ep_address);

/* Halt an endpoint: its URBs complete with USBIP_EPIPE until CLEAR_HALT. */
void vdev_halt_endpoint(vdev_t *dev, uint8_t ep_address);

/* Steps of a FIFO-backed pair of bulk endpoints (serial echo, loopback):
 * OUT pushes the URB's bytes, waiting for room when the FIFO is full; IN
 * waits for data and completes with what there is, up to its length. */
vdev_step_t vdev_fifo_step_out(vdev_fifo_t *fifo, vdev_xfer_t *x);
vdev_step_t vdev_fifo_step_in(vdev_fifo_t *fifo, vdev_xfer_t *x);

/* Copy an IN reply truncated to the room available; returns bytes copied. */
uint32_t vdev_reply(uint8_t *data, uint32_t room, const void *src, size_t len);

/* USBIP_LOG* tagged with the kind name, plus the busid once it has one. */
void vdev_log(const vdev_t *dev, usbip_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- framework internals shared by vdev_core.c and vdev_control.c ---- */

/* Execute the control URB at the head of the control queue. */
void vdev_run_control(vdev_t *dev, usbip_urb_t *urb);
/* Rebuild record, interfaces[] and the endpoint tables from the current
 * configuration descriptor and alt settings. */
void vdev_apply_configuration(vdev_t *dev);
/* Framework and kind state back to default. */
void vdev_reset(vdev_t *dev, vdev_reset_t why);
const vdev_config_desc_t *vdev_find_configuration(const vdev_t *dev, uint8_t value);

static inline uint16_t vdev_get_be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t vdev_get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void vdev_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void vdev_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t vdev_min_u32(uint32_t a, uint32_t b) { return a < b ? a : b; }
