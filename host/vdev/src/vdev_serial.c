/* Virtual CDC-ACM serial port: what is written to bulk OUT comes back on bulk
 * IN through a FIFO; line coding and control lines are kept and logged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdev_internal.h"

#define SERIAL_PID          0x5502u
#define SERIAL_EP_NOTIFY    0x82u
#define SERIAL_EP_DATA_IN   0x81u
#define SERIAL_EP_DATA_OUT  0x01u
#define SERIAL_NOTIFY_SIZE  16u
/* HS interrupt bInterval 9 = every 2^(9-1) microframes = 32 ms: the
 * notification endpoint never sends anything anyway. */
#define SERIAL_NOTIFY_INTERVAL 9u
#define SERIAL_FIFO_SIZE    (64u * 1024u)

#define COMM_INTERFACE 0u
#define DATA_INTERFACE 1u

/* CDC PSTN class requests (PSTN 1.2 section 6.3). */
#define CDC_SET_LINE_CODING        0x20u
#define CDC_GET_LINE_CODING        0x21u
#define CDC_SET_CONTROL_LINE_STATE 0x22u
#define CDC_SEND_BREAK             0x23u
#define LINE_CODING_SIZE           7u

#define DEFAULT_BAUD 115200u

typedef struct {
    vdev_serial_state_t line;
    vdev_fifo_t echo;
} serial_t;

/* ---- echo ---- */

static vdev_step_t serial_step(vdev_t *dev, vdev_xfer_t *x, const usbip_endpoint_info_t *ep)
{
    serial_t *sp = dev->state;
    switch (x->urb->ep_address) {
    case SERIAL_EP_DATA_OUT:
        return vdev_fifo_step_out(&sp->echo, x);
    case SERIAL_EP_DATA_IN:
        return vdev_fifo_step_in(&sp->echo, x);
    default:
        return VDEV_STEP_WAIT; /* notifications: no state change ever to report */
    }
}

/* ---- line state ---- */

static const char *stop_bits_name(uint8_t format)
{
    switch (format) {
    case 0: return "1";
    case 1: return "1.5";
    case 2: return "2";
    default: return "?";
    }
}

static char parity_letter(uint8_t parity)
{
    static const char letters[] = "NOEMS";
    return parity < 5 ? letters[parity] : '?';
}

/* e.g. "115200 8N1" */
static void format_line_coding(const vdev_serial_state_t *l, char *buf, size_t len)
{
    snprintf(buf, len, "%u %u%c%s", (unsigned)l->baud, l->data_bits, parity_letter(l->parity),
             stop_bits_name(l->stop_bits));
}

static bool line_coding_valid(uint8_t stop_bits, uint8_t parity, uint8_t data_bits)
{
    bool data_ok = (data_bits >= 5 && data_bits <= 8) || data_bits == 16;
    return stop_bits <= 2 && parity <= 4 && data_ok;
}

static int set_line_coding(vdev_t *dev, serial_t *sp, const uint8_t *data, uint32_t len)
{
    if (len < LINE_CODING_SIZE || !line_coding_valid(data[4], data[5], data[6])) {
        vdev_log(dev, USBIP_LOG_WARN, "rejected invalid line coding");
        return USBIP_EPIPE;
    }
    sp->line.baud = (uint32_t)data[0] | ((uint32_t)data[1] << 8) | ((uint32_t)data[2] << 16) |
                    ((uint32_t)data[3] << 24);
    sp->line.stop_bits = data[4];
    sp->line.parity = data[5];
    sp->line.data_bits = data[6];
    char coding[32];
    format_line_coding(&sp->line, coding, sizeof coding);
    vdev_log(dev, USBIP_LOG_INFO, "line coding %s", coding);
    return 0;
}

static uint32_t get_line_coding(const serial_t *sp, uint8_t *data, uint32_t len)
{
    uint8_t coding[LINE_CODING_SIZE] = {
        (uint8_t)sp->line.baud,          (uint8_t)(sp->line.baud >> 8),
        (uint8_t)(sp->line.baud >> 16),  (uint8_t)(sp->line.baud >> 24),
        sp->line.stop_bits,              sp->line.parity,
        sp->line.data_bits,
    };
    return vdev_reply(data, len, coding, sizeof coding);
}

static void set_control_lines(vdev_t *dev, serial_t *sp, uint16_t value)
{
    sp->line.dtr = (value & 0x01) != 0;
    sp->line.rts = (value & 0x02) != 0;
    vdev_log(dev, USBIP_LOG_INFO, "DTR=%d RTS=%d", sp->line.dtr, sp->line.rts);
}

static void send_break(vdev_t *dev, uint16_t duration_ms)
{
    if (duration_ms == 0xffff) {
        vdev_log(dev, USBIP_LOG_INFO, "break on");
    } else if (duration_ms == 0) {
        vdev_log(dev, USBIP_LOG_INFO, "break off");
    } else {
        vdev_log(dev, USBIP_LOG_INFO, "break %u ms", duration_ms);
    }
}

static int serial_control(vdev_t *dev, const vdev_setup_t *s, uint8_t *data, uint32_t len,
                          uint32_t *actual)
{
    serial_t *sp = dev->state;
    bool to_comm_interface = (s->bmRequestType & USB_RECIP_MASK) == USB_RECIP_INTERFACE &&
                             s->wIndex == COMM_INTERFACE;
    if ((s->bmRequestType & USB_TYPE_MASK) != USB_TYPE_CLASS || !to_comm_interface) {
        return VDEV_CONTROL_UNHANDLED;
    }
    switch (s->bRequest) {
    case CDC_SET_LINE_CODING:
        return set_line_coding(dev, sp, data, len);
    case CDC_GET_LINE_CODING:
        *actual = get_line_coding(sp, data, len);
        return 0;
    case CDC_SET_CONTROL_LINE_STATE:
        set_control_lines(dev, sp, s->wValue);
        return 0;
    case CDC_SEND_BREAK:
        send_break(dev, s->wValue);
        return 0;
    default:
        return VDEV_CONTROL_UNHANDLED;
    }
}

/* ---- lifecycle ---- */

static void serial_reset(vdev_t *dev, vdev_reset_t why)
{
    serial_t *sp = dev->state;
    sp->line = (vdev_serial_state_t){
        .baud = DEFAULT_BAUD, .stop_bits = 0, .parity = 0, .data_bits = 8,
        .dtr = false, .rts = false,
    };
    vdev_fifo_clear(&sp->echo);
}

static void add_cdc_functional_descriptors(vdev_config_desc_t *c)
{
    const uint8_t header[] = {5, VDEV_DT_CS_INTERFACE, 0x00, 0x10, 0x01}; /* CDC 1.10 */
    /* Call management: handled on the comm interface only, data interface 1. */
    const uint8_t call_management[] = {5, VDEV_DT_CS_INTERFACE, 0x01, 0x00, DATA_INTERFACE};
    /* ACM: line coding/control line state (bit 1) and SEND_BREAK (bit 2). */
    const uint8_t acm[] = {4, VDEV_DT_CS_INTERFACE, 0x02, 0x06};
    const uint8_t union_desc[] = {5, VDEV_DT_CS_INTERFACE, 0x06, COMM_INTERFACE, DATA_INTERFACE};
    vdev_desc_append(c, header, sizeof header);
    vdev_desc_append(c, call_management, sizeof call_management);
    vdev_desc_append(c, acm, sizeof acm);
    vdev_desc_append(c, union_desc, sizeof union_desc);
}

static usbip_err_t serial_create(vdev_t *dev, const vdev_config_t *cfg)
{
    serial_t *sp = calloc(1, sizeof *sp);
    if (!sp || !vdev_fifo_init(&sp->echo, SERIAL_FIFO_SIZE)) {
        free(sp);
        return USBIP_ERR_NO_MEM;
    }
    dev->state = sp;

    /* Class EF/02/01: the functions are described by an IAD. */
    const vdev_identity_t id = {
        .vid = 0x1209, .pid = SERIAL_PID, .bcd_device = 0x0100,
        .device_class = 0xef, .device_subclass = 0x02, .device_protocol = 0x01,
        .manufacturer = VDEV_MANUFACTURER, .product = "Virtual Serial Port",
    };
    vdev_set_identity(dev, &id);

    vdev_config_desc_t c;
    vdev_desc_config_begin(&c, 1, 0, 100);
    vdev_desc_iad(&c, COMM_INTERFACE, 2, 0x02, 0x02, 0x01);
    vdev_desc_interface(&c, COMM_INTERFACE, 0, 0x02, 0x02, 0x01); /* CDC ACM, AT commands */
    add_cdc_functional_descriptors(&c);
    vdev_desc_endpoint(&c, SERIAL_EP_NOTIFY, USBIP_XFER_INTERRUPT, SERIAL_NOTIFY_SIZE,
                       SERIAL_NOTIFY_INTERVAL);
    vdev_desc_interface(&c, DATA_INTERFACE, 0, 0x0a, 0x00, 0x00); /* CDC data */
    vdev_desc_endpoint(&c, SERIAL_EP_DATA_IN, USBIP_XFER_BULK, VDEV_BULK_MAX_PACKET, 0);
    vdev_desc_endpoint(&c, SERIAL_EP_DATA_OUT, USBIP_XFER_BULK, VDEV_BULK_MAX_PACKET, 0);
    vdev_desc_config_end(&c);
    return vdev_add_configuration(dev, &c);
}

static void serial_destroy(vdev_t *dev)
{
    serial_t *sp = dev->state;
    if (sp) {
        vdev_fifo_free(&sp->echo);
        free(sp);
        dev->state = NULL;
    }
}

static void serial_describe(const vdev_t *dev, char *buf, size_t len)
{
    const serial_t *sp = dev->state;
    char coding[32];
    format_line_coding(&sp->line, coding, sizeof coding);
    snprintf(buf, len, "line %s dtr=%d rts=%d", coding, sp->line.dtr, sp->line.rts);
}

bool vdev_serial_state(const vdev_t *dev, vdev_serial_state_t *out)
{
    if (!dev || dev->kind != VDEV_SERIAL || !out) {
        return false;
    }
    *out = ((const serial_t *)dev->state)->line;
    return true;
}

const vdev_kind_ops_t vdev_serial_kind = {
    .name = "serial",
    .create = serial_create,
    .destroy = serial_destroy,
    .reset = serial_reset,
    .control = serial_control,
    .step = serial_step,
    .describe = serial_describe,
};
