/* The device framework: lifecycle, backend ops, URB queues and delivery. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdev_internal.h"

static const vdev_kind_ops_t *const s_kinds[] = {
    [VDEV_KEYBOARD] = &vdev_keyboard_kind,
    [VDEV_SERIAL] = &vdev_serial_kind,
    [VDEV_STORAGE] = &vdev_storage_kind,
    [VDEV_ZERO] = &vdev_zero_kind,
};
#define NUM_KINDS (sizeof s_kinds / sizeof s_kinds[0])

/* Serial numbers differ between devices of one process, so that a host
 * seeing two of them can tell them apart. */
static unsigned s_instances;

static const usbip_backend_ops_t s_backend_ops;

/* ---- kinds ---- */

const char *vdev_kind_name(vdev_kind_t kind)
{
    return (unsigned)kind < NUM_KINDS ? s_kinds[kind]->name : "?";
}

int vdev_kind_parse(const char *name)
{
    for (size_t i = 0; name && i < NUM_KINDS; i++) {
        if (strcmp(name, s_kinds[i]->name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

vdev_kind_t vdev_kind(const vdev_t *dev) { return dev->kind; }

/* ---- helpers for the kinds ---- */

void vdev_log(const vdev_t *dev, usbip_log_level_t level, const char *fmt, ...)
{
    if (level > usbip_log_get_level()) {
        return;
    }
    char message[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    const char *busid = dev->device.record.busid;
    if (busid[0]) {
        usbip_logf(level, dev->ops->name, "%s (%s)", message, busid);
    } else {
        usbip_logf(level, dev->ops->name, "%s", message);
    }
}

static void copy_string(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

void vdev_set_identity(vdev_t *dev, const vdev_identity_t *id)
{
    usbip_device_record_t *r = &dev->device.record;
    r->speed = USBIP_SPEED_HIGH;
    r->idVendor = id->vid;
    r->idProduct = id->pid;
    r->bcdDevice = id->bcd_device;
    r->bDeviceClass = id->device_class;
    r->bDeviceSubClass = id->device_subclass;
    r->bDeviceProtocol = id->device_protocol;
    copy_string(dev->device.manufacturer, sizeof dev->device.manufacturer, id->manufacturer);
    copy_string(dev->device.product, sizeof dev->device.product, id->product);
    /* 12 hex digits: what Bulk-Only Transport asks of a serial number. */
    snprintf(dev->serial, sizeof dev->serial, "%04X%08X", id->pid, ++s_instances);
}

/* The device descriptor depends on the configuration count, so it is
 * rebuilt as configurations are added. */
static void build_device_descriptor(vdev_t *dev)
{
    const usbip_device_record_t *r = &dev->device.record;
    const vdev_device_desc_info_t info = {
        .vid = r->idVendor,
        .pid = r->idProduct,
        .bcd_device = r->bcdDevice,
        .device_class = r->bDeviceClass,
        .device_subclass = r->bDeviceSubClass,
        .device_protocol = r->bDeviceProtocol,
        .max_packet_size0 = VDEV_EP0_MAX_PACKET,
        .num_configurations = (uint8_t)dev->num_configs,
    };
    vdev_desc_build_device(dev->device_desc, &info);
    dev->device.record.bNumConfigurations = (uint8_t)dev->num_configs;
}

usbip_err_t vdev_add_configuration(vdev_t *dev, const vdev_config_desc_t *config)
{
    if (config->overflow || dev->num_configs >= VDEV_MAX_CONFIGS) {
        vdev_log(dev, USBIP_LOG_ERROR, "configuration descriptor does not fit");
        return USBIP_ERR_INVALID_SIZE;
    }
    dev->configs[dev->num_configs++] = *config;
    if (dev->num_configs == 1) {
        dev->default_config = config->bytes[5];
    }
    build_device_descriptor(dev);
    return USBIP_OK;
}

uint32_t vdev_reply(uint8_t *data, uint32_t room, const void *src, size_t len)
{
    uint32_t n = len < room ? (uint32_t)len : room;
    if (n) {
        memcpy(data, src, n);
    }
    return n;
}

vdev_step_t vdev_fifo_step_out(vdev_fifo_t *fifo, vdev_xfer_t *x)
{
    usbip_urb_t *urb = x->urb;
    uint32_t left = urb->length - x->progress;
    size_t pushed = left ? vdev_fifo_push(fifo, urb->buffer + x->progress, left) : 0;
    x->progress += (uint32_t)pushed;
    if (x->progress == urb->length) {
        urb->actual_length = urb->length;
        return VDEV_STEP_DONE;
    }
    return pushed ? VDEV_STEP_PROGRESS : VDEV_STEP_WAIT;
}

vdev_step_t vdev_fifo_step_in(vdev_fifo_t *fifo, vdev_xfer_t *x)
{
    usbip_urb_t *urb = x->urb;
    if (urb->length > 0 && vdev_fifo_count(fifo) == 0) {
        return VDEV_STEP_WAIT;
    }
    urb->actual_length = (uint32_t)vdev_fifo_pop(fifo, urb->buffer, urb->length);
    return VDEV_STEP_DONE;
}

/* ---- queues ---- */

vdev_queue_t *vdev_queue(vdev_t *dev, uint8_t ep_address)
{
    uint8_t num = ep_address & 0x0f;
    if (num == 0) {
        return &dev->queue_out[0];
    }
    return (ep_address & 0x80) ? &dev->queue_in[num] : &dev->queue_out[num];
}

bool vdev_queue_has_urb(const vdev_t *dev, uint8_t ep_address)
{
    return vdev_queue((vdev_t *)dev, ep_address)->head != NULL;
}

static void queue_push(vdev_queue_t *q, vdev_xfer_t *x)
{
    x->next = NULL;
    if (q->tail) {
        q->tail->next = x;
    } else {
        q->head = x;
    }
    q->tail = x;
}

static vdev_xfer_t *queue_pop(vdev_queue_t *q)
{
    vdev_xfer_t *x = q->head;
    if (x) {
        q->head = x->next;
        if (!q->head) {
            q->tail = NULL;
        }
        x->next = NULL;
    }
    return x;
}

/* Unlink the transfer of urb from q; NULL if it is not there. */
static vdev_xfer_t *queue_remove_urb(vdev_queue_t *q, const usbip_urb_t *urb)
{
    vdev_xfer_t *prev = NULL;
    for (vdev_xfer_t *x = q->head; x; prev = x, x = x->next) {
        if (x->urb != urb) {
            continue;
        }
        if (prev) {
            prev->next = x->next;
        } else {
            q->head = x->next;
        }
        if (q->tail == x) {
            q->tail = prev;
        }
        x->next = NULL;
        return x;
    }
    return NULL;
}

/* ---- results ---- */

static void set_iso_results(usbip_urb_t *urb, uint32_t actual, int32_t status)
{
    for (uint32_t i = 0; i < urb->num_iso_packets && urb->iso; i++) {
        urb->iso[i].actual_length = actual;
        urb->iso[i].status = status;
    }
    urb->error_count = status ? (int32_t)urb->num_iso_packets : 0;
}

/* Complete a URB the device never finished: cancelled, unplugged, halted. */
static void abort_urb(vdev_xfer_t *x, int32_t status)
{
    usbip_urb_t *urb = x->urb;
    urb->status = status;
    /* Bytes a URB served in pieces already moved are real. */
    urb->actual_length = x->progress;
    if (urb->type == USBIP_XFER_ISOCHRONOUS) {
        set_iso_results(urb, 0, USBIP_EXDEV); /* Linux's "packet not transferred" */
    }
}

static void move_to_finished(vdev_t *dev, vdev_xfer_t *x) { queue_push(&dev->finished, x); }

void vdev_halt_endpoint(vdev_t *dev, uint8_t ep_address)
{
    uint8_t num = ep_address & 0x0f;
    if (num == 0) {
        return; /* a control endpoint stall only concerns one request */
    }
    if (ep_address & 0x80) {
        dev->halted_in[num] = true;
    } else {
        dev->halted_out[num] = true;
    }
    dev->dirty = true;
}

/* ---- serving the queues ---- */

static bool endpoint_halted(const vdev_t *dev, uint8_t ep_address)
{
    uint8_t num = ep_address & 0x0f;
    return (ep_address & 0x80) ? dev->halted_in[num] : dev->halted_out[num];
}

/* One step on the oldest URB of a data endpoint, after the checks every
 * endpoint shares. */
static vdev_step_t step_data_urb(vdev_t *dev, vdev_xfer_t *x)
{
    usbip_urb_t *urb = x->urb;
    bool dir_in = (urb->ep_address & 0x80) != 0;
    const usbip_endpoint_info_t *ep =
        usbip_device_endpoint(&dev->device, urb->ep_address & 0x0f, dir_in);
    if (!ep || ep->type != urb->type) {
        abort_urb(x, USBIP_EPIPE); /* no such endpoint in this configuration */
        return VDEV_STEP_DONE;
    }
    if (endpoint_halted(dev, urb->ep_address)) {
        abort_urb(x, USBIP_EPIPE);
        return VDEV_STEP_DONE;
    }
    return dev->ops->step(dev, x, ep);
}

/* A short IN completion is an error when the URB asked for that, as an HCD
 * reports it (Linux scatter-gather reads rely on it to stop early). */
static void apply_short_not_ok(usbip_urb_t *urb)
{
    bool in = (urb->ep_address & 0x80) != 0 || (urb->type == USBIP_XFER_CONTROL && urb->dir_in);
    if (in && urb->type != USBIP_XFER_ISOCHRONOUS && urb->status == 0 &&
        urb->actual_length < urb->length && (urb->flags & USBIP_URB_SHORT_NOT_OK)) {
        urb->status = USBIP_EREMOTEIO;
    }
}

/* Serve one queue from its head, in order; true if anything moved. */
static bool serve_queue(vdev_t *dev, vdev_queue_t *q, bool control)
{
    bool moved = false;
    while (q->head) {
        vdev_xfer_t *x = q->head;
        vdev_step_t step;
        if (control) {
            vdev_run_control(dev, x->urb);
            step = VDEV_STEP_DONE;
        } else {
            step = step_data_urb(dev, x);
        }
        if (step == VDEV_STEP_WAIT) {
            break;
        }
        moved = true;
        if (step == VDEV_STEP_PROGRESS) {
            break; /* other endpoints may have to move first (e.g. drain a FIFO) */
        }
        apply_short_not_ok(x->urb);
        move_to_finished(dev, queue_pop(q));
    }
    return moved;
}

/* Serve every queue until nothing can move any more: one endpoint's progress
 * can unblock another (echo FIFO, storage phases, a CLEAR_HALT). Bounded:
 * every round that moves consumes a queued URB or some of its bytes. */
static void serve_all(vdev_t *dev)
{
    bool moved;
    do {
        dev->dirty = false;
        moved = serve_queue(dev, &dev->queue_out[0], true);
        for (unsigned num = 1; num < USBIP_MAX_ENDPOINTS; num++) {
            moved |= serve_queue(dev, &dev->queue_out[num], false);
            moved |= serve_queue(dev, &dev->queue_in[num], false);
        }
    } while (moved);
}

/* Hand over the results finished so far. Complete callbacks may submit or
 * cancel: new results wait for the next poll, so this always ends. */
static void deliver_finished(vdev_t *dev)
{
    vdev_queue_t batch = dev->finished;
    dev->finished.head = dev->finished.tail = NULL;
    vdev_xfer_t *x;
    while ((x = queue_pop(&batch)) != NULL) {
        usbip_urb_t *urb = x->urb;
        free(x);
        urb->backend_priv = NULL;
        urb->complete(urb);
    }
}

void vdev_poll(vdev_t *dev, uint64_t now_ms)
{
    dev->now_ms = now_ms;
    if (!dev->unplugged) {
        serve_all(dev);
    }
    deliver_finished(dev);
}

int vdev_next_timeout_ms(const vdev_t *dev, uint64_t now_ms)
{
    if (dev->finished.head || dev->dirty) {
        return 0;
    }
    if (dev->unplugged || !dev->ops->next_timeout_ms) {
        return -1;
    }
    return dev->ops->next_timeout_ms(dev, now_ms);
}

/* Every held URB (not yet finished) completes with status. */
static void abort_all(vdev_t *dev, int32_t status)
{
    for (unsigned num = 0; num < USBIP_MAX_ENDPOINTS; num++) {
        vdev_queue_t *queues[2] = {&dev->queue_out[num], &dev->queue_in[num]};
        for (int i = 0; i < 2; i++) {
            vdev_xfer_t *x;
            while ((x = queue_pop(queues[i])) != NULL) {
                abort_urb(x, status);
                move_to_finished(dev, x);
            }
        }
    }
}

void vdev_unplug(vdev_t *dev)
{
    if (dev->unplugged) {
        return;
    }
    vdev_log(dev, USBIP_LOG_INFO, "unplugged");
    dev->unplugged = true;
    abort_all(dev, USBIP_ESHUTDOWN);
}

bool vdev_unplugged(const vdev_t *dev) { return dev->unplugged; }

/* ---- backend ops ---- */

static usbip_err_t op_attach(void *ctx)
{
    vdev_t *dev = ctx;
    if (dev->unplugged) {
        return USBIP_ERR_INVALID_STATE;
    }
    vdev_reset(dev, VDEV_RESET_SESSION);
    return USBIP_OK;
}

static void op_detach(void *ctx)
{
    vdev_t *dev = ctx;
    vdev_reset(dev, VDEV_RESET_SESSION);
}

static usbip_err_t op_alloc_buffer(void *ctx, usbip_urb_t *urb)
{
    (void)ctx;
    size_t size = urb->length ? urb->length : 1;
    urb->buffer = malloc(size);
    if (!urb->buffer) {
        urb->buffer_size = 0;
        return USBIP_ERR_NO_MEM;
    }
    urb->buffer_size = (uint32_t)size;
    return USBIP_OK;
}

static void op_free_buffer(void *ctx, usbip_urb_t *urb)
{
    (void)ctx;
    free(urb->buffer);
    urb->buffer = NULL;
    urb->buffer_size = 0;
}

static usbip_err_t op_submit(void *ctx, usbip_urb_t *urb)
{
    vdev_t *dev = ctx;
    if (dev->unplugged) {
        return USBIP_ERR_INVALID_STATE;
    }
    bool buffer_ok = urb->length == 0 || (urb->buffer && urb->buffer_size >= urb->length);
    if (!urb->complete || !buffer_ok) {
        return USBIP_ERR_INVALID_ARG;
    }
    if (urb->type == USBIP_XFER_ISOCHRONOUS && urb->num_iso_packets && !urb->iso) {
        return USBIP_ERR_INVALID_ARG;
    }
    vdev_xfer_t *x = calloc(1, sizeof *x);
    if (!x) {
        return USBIP_ERR_NO_MEM;
    }
    x->urb = urb;
    urb->backend_priv = x;
    urb->status = 0;
    urb->actual_length = 0;
    urb->error_count = 0;
    urb->start_frame_out = urb->start_frame;
    queue_push(vdev_queue(dev, urb->ep_address), x);
    dev->dirty = true;
    return USBIP_OK;
}

static void op_cancel(void *ctx, usbip_urb_t *urb)
{
    vdev_t *dev = ctx;
    vdev_xfer_t *x = queue_remove_urb(vdev_queue(dev, urb->ep_address), urb);
    if (!x) {
        return; /* already finished (or never ours): its completion stands */
    }
    /* Like usb_unlink_urb, the cancelled URB completes on its own: URBs
     * behind it on the endpoint keep their order among themselves. */
    abort_urb(x, USBIP_ECONNRESET);
    move_to_finished(dev, x);
}

static const usbip_backend_ops_t s_backend_ops = {
    .attach = op_attach,
    .detach = op_detach,
    .alloc_buffer = op_alloc_buffer,
    .free_buffer = op_free_buffer,
    .submit = op_submit,
    .cancel = op_cancel,
};

/* ---- lifecycle ---- */

usbip_err_t vdev_create(const vdev_config_t *cfg, vdev_t **out)
{
    if (!cfg || !out) {
        return USBIP_ERR_INVALID_ARG;
    }
    *out = NULL;
    if ((unsigned)cfg->kind >= NUM_KINDS) {
        USBIP_LOGE("vdev", "unknown virtual device kind %d", (int)cfg->kind);
        return USBIP_ERR_INVALID_ARG;
    }
    vdev_t *dev = calloc(1, sizeof *dev);
    if (!dev) {
        return USBIP_ERR_NO_MEM;
    }
    dev->kind = cfg->kind;
    dev->ops = s_kinds[cfg->kind];
    dev->device.ops = &s_backend_ops;
    dev->device.ctx = dev;
    usbip_err_t err = dev->ops->create(dev, cfg);
    if (err != USBIP_OK) {
        if (dev->ops->destroy) {
            dev->ops->destroy(dev);
        }
        free(dev);
        return err;
    }
    vdev_reset(dev, VDEV_RESET_SESSION);
    *out = dev;
    return USBIP_OK;
}

static void free_queue(vdev_queue_t *q, unsigned *count)
{
    vdev_xfer_t *x;
    while ((x = queue_pop(q)) != NULL) {
        x->urb->backend_priv = NULL;
        free(x);
        (*count)++;
    }
}

void vdev_destroy(vdev_t *dev)
{
    if (!dev) {
        return;
    }
    unsigned dropped = 0;
    for (unsigned num = 0; num < USBIP_MAX_ENDPOINTS; num++) {
        free_queue(&dev->queue_in[num], &dropped);
        free_queue(&dev->queue_out[num], &dropped);
    }
    free_queue(&dev->finished, &dropped);
    if (dropped) {
        vdev_log(dev, USBIP_LOG_WARN, "destroyed with %u URBs never completed", dropped);
    }
    if (dev->ops->destroy) {
        dev->ops->destroy(dev);
    }
    free(dev);
}

usbip_device_t *vdev_device(vdev_t *dev) { return &dev->device; }

void vdev_describe(const vdev_t *dev, char *buf, size_t len)
{
    if (!buf || len == 0) {
        return;
    }
    buf[0] = '\0';
    if (dev->unplugged) {
        snprintf(buf, len, "unplugged");
    } else if (dev->ops->describe) {
        dev->ops->describe(dev, buf, len);
    }
}
