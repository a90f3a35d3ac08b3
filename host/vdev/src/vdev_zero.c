/* Virtual Gadget Zero (Linux g_zero, 0525:a4a0), the device Linux usbtest
 * drives.
 *
 * Configuration 1, source/sink: IN endpoints produce the "mod63" pattern
 * (byte i = (i % wMaxPacketSize) % 63, restarting with each URB, or with
 * each packet for iso) and OUT endpoints check it. Alt setting 1 adds the
 * iso pair. Configuration 2, loopback: bulk OUT data comes back on bulk IN.
 * Vendor requests 0x5b/0x5c write and read back a control buffer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdev_internal.h"

#define ZERO_VID 0x0525u
#define ZERO_PID 0xa4a0u

#define SOURCE_SINK_CONFIG 1u
#define LOOPBACK_CONFIG    2u

#define EP_BULK_IN  0x81u
#define EP_BULK_OUT 0x01u
#define EP_INT_IN   0x82u
#define EP_INT_OUT  0x02u
#define EP_ISO_IN   0x83u
#define EP_ISO_OUT  0x03u

#define INT_MAX_PACKET 64u
#define INT_INTERVAL   1u    /* HS: every microframe */
#define ISO_MAX_PACKET 1024u
/* HS iso bInterval 4 = every 2^(4-1) microframes = 1 ms: a sane pace for
 * packets that cross a network (bInterval 1 would ask for 8000/s). */
#define ISO_INTERVAL   4u

#define PATTERN_MODULUS 63u
#define LOOPBACK_FIFO_SIZE (64u * 1024u)

/* g_zero vendor requests (drivers/usb/gadget/function/f_sourcesink.c). */
#define ZERO_REQ_WRITE_BUFFER 0x5bu
#define ZERO_REQ_READ_BUFFER  0x5cu
#define ZERO_CONTROL_BUFFER   4096u

typedef struct {
    vdev_fifo_t loopback;
    uint8_t control_buffer[ZERO_CONTROL_BUFFER];
    uint32_t control_length;
    unsigned pattern_errors; /* OUT URBs or iso packets that broke the pattern */
} zero_t;

/* ---- source/sink ---- */

static uint8_t pattern_byte(uint32_t i, uint16_t max_packet)
{
    return (uint8_t)((i % max_packet) % PATTERN_MODULUS);
}

static void fill_pattern(uint8_t *p, uint32_t len, uint16_t max_packet)
{
    for (uint32_t i = 0; i < len; i++) {
        p[i] = pattern_byte(i, max_packet);
    }
}

/* Offset of the first byte off the pattern, or -1 if all match. */
static int64_t pattern_mismatch(const uint8_t *p, uint32_t len, uint16_t max_packet)
{
    for (uint32_t i = 0; i < len; i++) {
        if (p[i] != pattern_byte(i, max_packet)) {
            return i;
        }
    }
    return -1;
}

static void count_pattern_error(vdev_t *dev, zero_t *z, uint8_t ep, int64_t offset)
{
    z->pattern_errors++;
    /* The first few say where it went wrong; after that only the count grows. */
    if (z->pattern_errors <= 5) {
        vdev_log(dev, USBIP_LOG_WARN, "ep 0x%02x: data off the pattern at byte %lld", ep,
                 (long long)offset);
    }
}

static vdev_step_t source(usbip_urb_t *urb, const usbip_endpoint_info_t *ep)
{
    fill_pattern(urb->buffer, urb->length, ep->max_packet_size);
    urb->actual_length = urb->length;
    return VDEV_STEP_DONE;
}

static vdev_step_t sink(vdev_t *dev, zero_t *z, usbip_urb_t *urb,
                        const usbip_endpoint_info_t *ep)
{
    int64_t bad = pattern_mismatch(urb->buffer, urb->length, ep->max_packet_size);
    if (bad >= 0) {
        count_pattern_error(dev, z, urb->ep_address, bad);
        urb->status = USBIP_EPIPE;
    }
    urb->actual_length = urb->length;
    return VDEV_STEP_DONE;
}

/* Iso: each packet on its own, pattern restarting at its offset. */
static vdev_step_t iso_source_or_sink(vdev_t *dev, zero_t *z, usbip_urb_t *urb,
                                      const usbip_endpoint_info_t *ep, bool in)
{
    urb->actual_length = 0;
    urb->error_count = 0;
    for (uint32_t i = 0; i < urb->num_iso_packets; i++) {
        usbip_iso_packet_t *pkt = &urb->iso[i];
        pkt->actual_length = 0;
        pkt->status = 0;
        if (pkt->offset > urb->length || pkt->length > urb->length - pkt->offset) {
            pkt->status = USBIP_EINVAL; /* outside the buffer: the session should not let it by */
        } else if (in) {
            fill_pattern(urb->buffer + pkt->offset, pkt->length, ep->max_packet_size);
            pkt->actual_length = pkt->length;
        } else {
            int64_t bad = pattern_mismatch(urb->buffer + pkt->offset, pkt->length,
                                           ep->max_packet_size);
            if (bad >= 0) {
                count_pattern_error(dev, z, urb->ep_address, pkt->offset + bad);
                pkt->status = USBIP_EILSEQ;
            }
            pkt->actual_length = pkt->length;
        }
        if (pkt->status != 0) {
            urb->error_count++;
        }
        urb->actual_length += pkt->actual_length;
    }
    return VDEV_STEP_DONE;
}

static vdev_step_t zero_step(vdev_t *dev, vdev_xfer_t *x, const usbip_endpoint_info_t *ep)
{
    zero_t *z = dev->state;
    usbip_urb_t *urb = x->urb;
    bool in = (urb->ep_address & 0x80) != 0;
    if (dev->config_value == LOOPBACK_CONFIG) {
        return in ? vdev_fifo_step_in(&z->loopback, x) : vdev_fifo_step_out(&z->loopback, x);
    }
    if (ep->type == USBIP_XFER_ISOCHRONOUS) {
        return iso_source_or_sink(dev, z, urb, ep, in);
    }
    return in ? source(urb, ep) : sink(dev, z, urb, ep);
}

/* ---- control ---- */

static int zero_control(vdev_t *dev, const vdev_setup_t *s, uint8_t *data, uint32_t len,
                        uint32_t *actual)
{
    zero_t *z = dev->state;
    if ((s->bmRequestType & ~USB_DIR_IN) != (USB_TYPE_VENDOR | USB_RECIP_DEVICE)) {
        return VDEV_CONTROL_UNHANDLED;
    }
    if (s->wLength > ZERO_CONTROL_BUFFER) {
        return USBIP_EPIPE;
    }
    bool in = (s->bmRequestType & USB_DIR_IN) != 0;
    if (!in && s->bRequest == ZERO_REQ_WRITE_BUFFER) {
        if (len) {
            memcpy(z->control_buffer, data, len);
        }
        z->control_length = len;
        return 0;
    }
    if (in && s->bRequest == ZERO_REQ_READ_BUFFER) {
        *actual = vdev_reply(data, len, z->control_buffer, z->control_length);
        return 0;
    }
    return VDEV_CONTROL_UNHANDLED;
}

/* ---- lifecycle ---- */

static void zero_configuration_changed(vdev_t *dev)
{
    zero_t *z = dev->state;
    vdev_fifo_clear(&z->loopback);
}

/* pattern_errors is kept for the device's lifetime, so "status" still
 * shows them after the test's session ended. */
static void zero_reset(vdev_t *dev, vdev_reset_t why)
{
    zero_t *z = dev->state;
    vdev_fifo_clear(&z->loopback);
    z->control_length = 0;
}

static void add_source_sink_endpoints(vdev_config_desc_t *c)
{
    vdev_desc_endpoint(c, EP_BULK_IN, USBIP_XFER_BULK, VDEV_BULK_MAX_PACKET, 0);
    vdev_desc_endpoint(c, EP_BULK_OUT, USBIP_XFER_BULK, VDEV_BULK_MAX_PACKET, 0);
    vdev_desc_endpoint(c, EP_INT_IN, USBIP_XFER_INTERRUPT, INT_MAX_PACKET, INT_INTERVAL);
    vdev_desc_endpoint(c, EP_INT_OUT, USBIP_XFER_INTERRUPT, INT_MAX_PACKET, INT_INTERVAL);
}

static usbip_err_t add_configurations(vdev_t *dev)
{
    vdev_config_desc_t c;
    vdev_desc_config_begin(&c, SOURCE_SINK_CONFIG, 0, 100);
    vdev_desc_interface(&c, 0, 0, 0xff, 0, 0);
    add_source_sink_endpoints(&c);
    vdev_desc_interface(&c, 0, 1, 0xff, 0, 0);
    add_source_sink_endpoints(&c);
    vdev_desc_endpoint(&c, EP_ISO_IN, USBIP_XFER_ISOCHRONOUS, ISO_MAX_PACKET, ISO_INTERVAL);
    vdev_desc_endpoint(&c, EP_ISO_OUT, USBIP_XFER_ISOCHRONOUS, ISO_MAX_PACKET, ISO_INTERVAL);
    vdev_desc_config_end(&c);
    usbip_err_t err = vdev_add_configuration(dev, &c);
    if (err != USBIP_OK) {
        return err;
    }

    vdev_desc_config_begin(&c, LOOPBACK_CONFIG, 0, 100);
    vdev_desc_interface(&c, 0, 0, 0xff, 0, 0);
    vdev_desc_endpoint(&c, EP_BULK_IN, USBIP_XFER_BULK, VDEV_BULK_MAX_PACKET, 0);
    vdev_desc_endpoint(&c, EP_BULK_OUT, USBIP_XFER_BULK, VDEV_BULK_MAX_PACKET, 0);
    vdev_desc_config_end(&c);
    return vdev_add_configuration(dev, &c);
}

static usbip_err_t zero_create(vdev_t *dev, const vdev_config_t *cfg)
{
    zero_t *z = calloc(1, sizeof *z);
    if (!z || !vdev_fifo_init(&z->loopback, LOOPBACK_FIFO_SIZE)) {
        free(z);
        return USBIP_ERR_NO_MEM;
    }
    dev->state = z;
    const vdev_identity_t id = {
        .vid = ZERO_VID, .pid = ZERO_PID, .bcd_device = 0x0100,
        .device_class = 0xff,
        .manufacturer = VDEV_MANUFACTURER, .product = "Gadget Zero",
    };
    vdev_set_identity(dev, &id);
    return add_configurations(dev);
}

static void zero_destroy(vdev_t *dev)
{
    zero_t *z = dev->state;
    if (z) {
        vdev_fifo_free(&z->loopback);
        free(z);
        dev->state = NULL;
    }
}

static void zero_describe(const vdev_t *dev, char *buf, size_t len)
{
    const zero_t *z = dev->state;
    snprintf(buf, len, "config %u alt %u, pattern errors %u", dev->config_value, dev->alt[0],
             z->pattern_errors);
}

const vdev_kind_ops_t vdev_zero_kind = {
    .name = "zero",
    .create = zero_create,
    .destroy = zero_destroy,
    .reset = zero_reset,
    .configuration_changed = zero_configuration_changed,
    .control = zero_control,
    .step = zero_step,
    .describe = zero_describe,
};
