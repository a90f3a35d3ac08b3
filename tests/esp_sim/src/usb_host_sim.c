/*
 * usb_host_sim: see usb_host_sim.h. One client, one lock: every call into
 * a vdev is made with the lock held (the vdevs are single-threaded), from
 * the daemon task (enumeration) or the client task (transfers).
 *
 * Where the v5.5 library's behaviour matters to the glue, the sim follows
 * it: enumeration by the daemon, before or after the client registers;
 * NEW_DEV for hubs too; full/low-speed devices behind a high-speed hub
 * refused before enumeration; 16 host channels (EP0 of each device, two
 * per hub, one per claimed endpoint; claim fails ESP_ERR_NOT_SUPPORTED);
 * a failed transfer halts its pipe at once (a submit before the client
 * hears of it gets INVALID_STATE) and the queue behind it comes back
 * CANCELED; halt returns the running transfer CANCELED and keeps the
 * others for flush or clear; stopped and failed transfers report 0 bytes;
 * transfer callbacks before events in a turn.
 */
#define _POSIX_C_SOURCE 200809L

#include "usb_host_sim.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "usb_desc.h"
#include "usbip_backend.h"
#include "usbip_proto.h"

#define SIM_MAX_DEVICES 32
#define SIM_MAX_EVENTS  64
#define SIM_POLL_MS     2
#define SETUP_SIZE      8
#define SIM_HOST_CHANNELS 16 /* the P4's high-speed controller */
#define SIM_CACHE_LINE  64

/* A hub as the library sees it (hub class, one interrupt IN endpoint). */
static const uint8_t HUB_DEVICE_DESC[18] = {18, 1, 0x00, 0x02, 9, 0, 1, 64, 0x09, 0x12,
                                            0x34, 0x56, 0x00, 0x01, 0, 0, 0, 1};
static const uint8_t HUB_CONFIG_DESC[25] = {9, 2, 25, 0, 1, 1, 0, 0xe0, 0,
                                            9, 4, 0, 0, 1, 9, 0, 0, 0,
                                            7, 5, 0x81, 3, 1, 0, 12};

typedef struct sim_dev sim_dev_t;

typedef enum { PIPE_ACTIVE, PIPE_HALTED } pipe_state_t;

typedef struct sim_xfer sim_xfer_t;

typedef struct {
    pipe_state_t state;
    bool flushing_after_error; /* the library flushes the queue behind a failed transfer */
    int in_flight;             /* at the vdev */
    sim_xfer_t *running;       /* halted while running: comes back CANCELED, not parked */
} sim_pipe_t;

/* A transfer object: the sim's bookkeeping followed by the usb_transfer_t
 * (whose flexible array of iso descriptors ends the allocation). */
struct sim_xfer {
    struct sim_xfer *next; /* done list or parked list */
    sim_dev_t *dev;
    uint8_t ep;
    bool in_flight;        /* submitted and not yet returned to the client */
    bool at_vdev;
    usbip_urb_t urb;
    usbip_iso_packet_t *iso;
    usb_transfer_t *t;
};

struct sim_dev {
    int id;
    bool used, is_hub;
    sim_dev_t *parent;
    uint8_t port;
    usb_speed_t speed;
    vdev_t *vdev;
    uint8_t address;
    bool enumerated, refused, gone, unplugged_vdev, gone_reported, open;
    int channels;          /* host channels it holds */
    usb_device_desc_t ddesc;
    uint8_t *config;
    usb_desc_config_t parsed;
    usb_str_desc_t *manufacturer, *product;
    int claimed_alt[USB_DESC_MAX_INTERFACES]; /* by interface number; -1 none */
    sim_pipe_t pipes[32];                     /* [number | (IN ? 16 : 0)] */
    sim_xfer_t *parked, *parked_tail;         /* halted by usb_host_endpoint_halt */
};

typedef struct {
    usb_host_client_event_msg_t msg;
} sim_event_t;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool installed;
    bool client_registered;
    bool unblocked;
    usb_host_client_config_t client_cfg;
    sim_dev_t devs[SIM_MAX_DEVICES];
    uint8_t next_address;
    sim_xfer_t *done, *done_tail;
    sim_event_t events[SIM_MAX_EVENTS];
    int num_events;
    int channels_free;
    bool enumerate_behind_tt;
    usb_host_sim_stats_t stats;
} S = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .next_address = 1,
       .channels_free = SIM_HOST_CHANNELS};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static sim_dev_t *dev_of(usb_device_handle_t h) { return (sim_dev_t *)h; }
static usb_device_handle_t handle_of(sim_dev_t *d) { return (usb_device_handle_t)d; }
static unsigned pipe_index(uint8_t ep) { return (ep & 0x0fu) | ((ep & 0x80u) ? 16u : 0u); }

static sim_dev_t *new_dev(void)
{
    for (int i = 0; i < SIM_MAX_DEVICES; i++) {
        if (!S.devs[i].used) {
            memset(&S.devs[i], 0, sizeof S.devs[i]);
            S.devs[i].used = true;
            S.devs[i].id = i + 1;
            for (unsigned k = 0; k < USB_DESC_MAX_INTERFACES; k++) {
                S.devs[i].claimed_alt[k] = -1;
            }
            return &S.devs[i];
        }
    }
    return NULL;
}

static void push_event(const usb_host_client_event_msg_t *msg);

static sim_dev_t *dev_by_id(int id)
{
    return id > 0 && id <= SIM_MAX_DEVICES && S.devs[id - 1].used ? &S.devs[id - 1] : NULL;
}

/* ---- test-side API ---- */

int usb_host_sim_add_hub(int parent_hub, uint8_t port, usb_speed_t speed)
{
    pthread_mutex_lock(&S.lock);
    sim_dev_t *d = new_dev();
    int id = -1;
    if (d) {
        d->is_hub = true;
        d->parent = dev_by_id(parent_hub);
        d->port = d->parent ? port : 0;
        d->speed = speed;
        memcpy(d->ddesc.val, HUB_DEVICE_DESC, sizeof HUB_DEVICE_DESC);
        d->config = malloc(sizeof HUB_CONFIG_DESC);
        memcpy(d->config, HUB_CONFIG_DESC, sizeof HUB_CONFIG_DESC);
        usb_desc_parse_config(d->config, sizeof HUB_CONFIG_DESC, &d->parsed);
        d->channels = 2; /* its EP0 and its status endpoint, held by the hub driver */
        S.channels_free -= 2;
        d->enumerated = true;
        d->address = S.next_address++;
        id = d->id;
        usb_host_client_event_msg_t msg = {.event = USB_HOST_CLIENT_EVENT_NEW_DEV};
        msg.new_dev.address = d->address;
        push_event(&msg);
    }
    pthread_mutex_unlock(&S.lock);
    return id;
}

void usb_host_sim_enumerate_behind_tt(bool yes)
{
    pthread_mutex_lock(&S.lock);
    S.enumerate_behind_tt = yes;
    pthread_mutex_unlock(&S.lock);
}

void usb_host_sim_set_free_channels(int channels)
{
    pthread_mutex_lock(&S.lock);
    S.channels_free = channels;
    pthread_mutex_unlock(&S.lock);
}

int usb_host_sim_plug(vdev_t *vdev, int parent_hub, uint8_t port, usb_speed_t speed)
{
    pthread_mutex_lock(&S.lock);
    sim_dev_t *d = new_dev();
    int id = -1;
    if (d) {
        d->vdev = vdev;
        d->parent = dev_by_id(parent_hub);
        d->port = d->parent ? port : 0;
        d->speed = speed;
        id = d->id;
        S.stats.devices_present++;
        pthread_cond_broadcast(&S.wake);
    }
    pthread_mutex_unlock(&S.lock);
    return id;
}

void usb_host_sim_unplug(int device_id)
{
    pthread_mutex_lock(&S.lock);
    sim_dev_t *d = dev_by_id(device_id);
    if (d && !d->is_hub) {
        d->gone = true;
        pthread_cond_broadcast(&S.wake);
    }
    pthread_mutex_unlock(&S.lock);
}

void usb_host_sim_stats(usb_host_sim_stats_t *out)
{
    pthread_mutex_lock(&S.lock);
    *out = S.stats;
    out->channels_free = S.channels_free;
    pthread_mutex_unlock(&S.lock);
}

/* ---- synchronous control requests during enumeration ---- */

static void sync_done(usbip_urb_t *urb) { *(bool *)urb->complete_ctx = true; }

static int vdev_request(sim_dev_t *d, uint8_t type, uint8_t request, uint16_t value,
                        uint16_t index, uint8_t *data, uint16_t length)
{
    usbip_device_t *u = vdev_device(d->vdev);
    bool finished = false;
    usbip_urb_t urb = {
        .ep_address = 0, .type = USBIP_XFER_CONTROL, .dir_in = (type & 0x80u) != 0,
        .length = length, .buffer = data, .buffer_size = length,
        .max_packet_size = 64, .complete = sync_done, .complete_ctx = &finished,
        .setup = {type, request, (uint8_t)value, (uint8_t)(value >> 8), (uint8_t)index,
                  (uint8_t)(index >> 8), (uint8_t)length, (uint8_t)(length >> 8)},
    };
    urb.control_kind = usbip_control_kind_of(urb.setup);
    if (u->ops->submit(u->ctx, &urb) != USBIP_OK) {
        return -1;
    }
    for (int i = 0; i < 1000 && !finished; i++) {
        vdev_poll(d->vdev, now_ms());
    }
    return finished && urb.status == 0 ? (int)urb.actual_length : -1;
}

static usb_str_desc_t *read_string(sim_dev_t *d, uint8_t index)
{
    if (!index) {
        return NULL;
    }
    uint8_t buf[255];
    int n = vdev_request(d, 0x80, 6, (uint16_t)(0x0300u | index), 0x0409, buf, sizeof buf);
    if (n < 2 || buf[0] > n) {
        return NULL;
    }
    usb_str_desc_t *s = malloc(buf[0]);
    if (s) {
        memcpy(s, buf, buf[0]);
    }
    return s;
}

/* What the library does before NEW_DEV: descriptors, strings, address,
 * SET_CONFIGURATION 1. */
static bool enumerate(sim_dev_t *d)
{
    usbip_device_t *u = vdev_device(d->vdev);
    if (u->ops->attach(u->ctx) != USBIP_OK) {
        return false;
    }
    uint8_t head[9];
    if (vdev_request(d, 0x80, 6, 0x0100, 0, d->ddesc.val, USB_DEVICE_DESC_SIZE) !=
            USB_DEVICE_DESC_SIZE ||
        vdev_request(d, 0x80, 6, 0x0200, 0, head, sizeof head) != (int)sizeof head) {
        return false;
    }
    const uint16_t total = (uint16_t)(head[2] | (head[3] << 8));
    d->config = malloc(total);
    if (!d->config || vdev_request(d, 0x80, 6, 0x0200, 0, d->config, total) != total ||
        usb_desc_parse_config(d->config, total, &d->parsed) != USBIP_OK) {
        return false;
    }
    d->manufacturer = read_string(d, d->ddesc.iManufacturer);
    d->product = read_string(d, d->ddesc.iProduct);
    if (vdev_request(d, 0x00, 9, d->parsed.configuration_value, 0, NULL, 0) != 0) {
        return false;
    }
    d->address = S.next_address++;
    d->enumerated = true;
    return true;
}

static void push_event(const usb_host_client_event_msg_t *msg)
{
    if (!S.client_registered) {
        return;
    }
    if (S.num_events < SIM_MAX_EVENTS && S.num_events < S.client_cfg.max_num_event_msg) {
        S.events[S.num_events++].msg = *msg;
    }
    /* else: dropped, as the library drops events for a full client queue */
}

static void free_dev(sim_dev_t *d)
{
    S.channels_free += d->channels;
    if (d->vdev) {
        vdev_destroy(d->vdev);
    }
    free(d->config);
    free(d->manufacturer);
    free(d->product);
    S.stats.devices_present--;
    memset(d, 0, sizeof *d);
}

/* ---- transfers ---- */

static usb_transfer_status_t status_of(int32_t err)
{
    switch (err) {
    case 0: return USB_TRANSFER_STATUS_COMPLETED;
    case USBIP_EPIPE: return USB_TRANSFER_STATUS_STALL;
    case USBIP_ECONNRESET: return USB_TRANSFER_STATUS_CANCELED;
    case USBIP_EOVERFLOW: return USB_TRANSFER_STATUS_OVERFLOW;
    case USBIP_ESHUTDOWN:
    case USBIP_ENODEV: return USB_TRANSFER_STATUS_NO_DEVICE;
    case USBIP_EXDEV: return USB_TRANSFER_STATUS_SKIPPED;
    default: return USB_TRANSFER_STATUS_ERROR;
    }
}

static void return_to_client(sim_xfer_t *x, usb_transfer_status_t status)
{
    x->t->status = status;
    x->next = NULL;
    if (S.done_tail) {
        S.done_tail->next = x;
    } else {
        S.done = x;
    }
    S.done_tail = x;
}

static void park(sim_dev_t *d, sim_xfer_t *x)
{
    x->next = NULL;
    if (d->parked_tail) {
        d->parked_tail->next = x;
    } else {
        d->parked = x;
    }
    d->parked_tail = x;
}

/* Transfers the sim has handed to vdevs, to find those of one pipe. */
static sim_xfer_t *s_live[1024];
static size_t s_live_count;

static void live_add(sim_xfer_t *x)
{
    if (s_live_count < sizeof s_live / sizeof s_live[0]) {
        s_live[s_live_count++] = x;
    }
}

static void live_remove(sim_xfer_t *x)
{
    for (size_t i = 0; i < s_live_count; i++) {
        if (s_live[i] == x) {
            memmove(&s_live[i], &s_live[i + 1], (s_live_count - i - 1) * sizeof s_live[0]);
            s_live_count--;
            return;
        }
    }
}

/* Every in-flight transfer of the pipe: the vdev ends each with
 * -ECONNRESET on its next poll unless it finished already. */
static void cancel_at_vdev(sim_dev_t *d, uint8_t ep)
{
    usbip_device_t *u = vdev_device(d->vdev);
    for (size_t i = 0; i < s_live_count; i++) {
        if (s_live[i]->dev == d && s_live[i]->ep == ep) {
            u->ops->cancel(u->ctx, &s_live[i]->urb);
        }
    }
}

static void vdev_finished(usbip_urb_t *urb)
{
    sim_xfer_t *x = urb->complete_ctx;
    sim_dev_t *d = x->dev;
    sim_pipe_t *p = &d->pipes[pipe_index(x->ep)];
    x->at_vdev = false;
    live_remove(x);
    p->in_flight--;
    S.stats.transfers_in_flight--;
    const bool control = urb->type == USBIP_XFER_CONTROL;
    x->t->actual_num_bytes = (int)urb->actual_length + (control ? SETUP_SIZE : 0);
    for (uint32_t i = 0; i < urb->num_iso_packets; i++) {
        x->t->isoc_packet_desc[i].actual_num_bytes = (int)x->iso[i].actual_length;
        x->t->isoc_packet_desc[i].status = status_of(x->iso[i].status);
    }
    usb_transfer_status_t status = status_of(urb->status);
    const bool was_running = p->running == x;
    if (was_running) {
        p->running = NULL;
    }
    if (d->gone) {
        status = USB_TRANSFER_STATUS_NO_DEVICE;
    } else if (status == USB_TRANSFER_STATUS_CANCELED && !p->flushing_after_error &&
               !was_running) {
        park(d, x); /* queued when usb_host_endpoint_halt came: waits for flush or clear */
        return;
    } else if (p->flushing_after_error && status != USB_TRANSFER_STATUS_COMPLETED) {
        status = USB_TRANSFER_STATUS_CANCELED;
    }
    if (status != USB_TRANSFER_STATUS_COMPLETED) {
        x->t->actual_num_bytes = 0; /* as the v5.5 HCD reports any failed or stopped transfer */
    }
    if (!control && (status == USB_TRANSFER_STATUS_STALL || status == USB_TRANSFER_STATUS_ERROR ||
                     status == USB_TRANSFER_STATUS_OVERFLOW)) {
        /* The library halts the pipe and flushes what is queued behind. */
        p->state = PIPE_HALTED;
        p->flushing_after_error = true;
        cancel_at_vdev(d, x->ep);
    }
    if (p->in_flight == 0) {
        p->flushing_after_error = false;
    }
    return_to_client(x, status);
}

static const usb_desc_endpoint_t *find_endpoint(sim_dev_t *d, uint8_t ep)
{
    for (unsigned i = 0; i < d->parsed.num_interfaces; i++) {
        const uint8_t number = d->parsed.interface_numbers[i];
        if (d->claimed_alt[number] < 0) {
            continue;
        }
        const usb_desc_altsetting_t *alt =
            usb_desc_find_alt(&d->parsed, number, (uint8_t)d->claimed_alt[number]);
        for (unsigned e = 0; alt && e < alt->num_endpoints; e++) {
            const usb_desc_endpoint_t *desc = usb_desc_alt_endpoint(&d->parsed, alt, e);
            if (desc->address == ep) {
                return desc;
            }
        }
    }
    return NULL;
}

static esp_err_t to_vdev(sim_xfer_t *x)
{
    usbip_device_t *u = vdev_device(x->dev->vdev);
    x->urb.complete = vdev_finished;
    x->urb.complete_ctx = x;
    x->urb.status = 0;
    x->urb.actual_length = 0;
    if (u->ops->submit(u->ctx, &x->urb) != USBIP_OK) {
        return ESP_ERR_INVALID_STATE;
    }
    x->at_vdev = true;
    x->in_flight = true;
    live_add(x);
    x->dev->pipes[pipe_index(x->ep)].in_flight++;
    S.stats.transfers_in_flight++;
    return ESP_OK;
}

/* The oldest transfer of a pipe still at the vdev: the one on the bus. */
static sim_xfer_t *running_on(sim_dev_t *d, uint8_t ep)
{
    for (size_t i = 0; i < s_live_count; i++) {
        if (s_live[i]->dev == d && s_live[i]->ep == ep) {
            return s_live[i];
        }
    }
    return NULL;
}

static esp_err_t refuse(esp_err_t err)
{
    if (err == ESP_ERR_INVALID_STATE) {
        S.stats.submits_to_halted_pipe++;
    } else {
        S.stats.submits_invalid++;
    }
    return err;
}

/* The USB/IP view of one library transfer, checked by the library's rules. */
static esp_err_t prepare(sim_xfer_t *x, bool control)
{
    usb_transfer_t *t = x->t;
    sim_dev_t *d = dev_of(t->device_handle);
    if (!d || !d->open || !t->callback || t->num_bytes < 0 ||
        (size_t)t->num_bytes > t->data_buffer_size) {
        return ESP_ERR_INVALID_ARG;
    }
    if (x->in_flight) {
        return ESP_ERR_NOT_FINISHED;
    }
    memset(&x->urb, 0, sizeof x->urb);
    x->dev = d;
    x->ep = t->bEndpointAddress;
    usbip_urb_t *urb = &x->urb;
    if (control) {
        if (t->bEndpointAddress != 0 || t->num_bytes < SETUP_SIZE) {
            return ESP_ERR_INVALID_ARG;
        }
        memcpy(urb->setup, t->data_buffer, SETUP_SIZE);
        const uint16_t wlength = (uint16_t)(urb->setup[6] | (urb->setup[7] << 8));
        urb->dir_in = (urb->setup[0] & 0x80u) != 0;
        const int data = t->num_bytes - SETUP_SIZE;
        if (urb->dir_in ? data < wlength : data != wlength) {
            return ESP_ERR_INVALID_ARG;
        }
        urb->type = USBIP_XFER_CONTROL;
        urb->control_kind = usbip_control_kind_of(urb->setup);
        urb->length = wlength;
        urb->buffer = t->data_buffer + SETUP_SIZE;
        urb->buffer_size = (uint32_t)t->data_buffer_size - SETUP_SIZE;
        urb->max_packet_size = d->ddesc.bMaxPacketSize0;
        x->ep = 0;
        return d->gone ? ESP_ERR_INVALID_STATE : ESP_OK;
    }
    const usb_desc_endpoint_t *ep = find_endpoint(d, t->bEndpointAddress);
    if (!ep) {
        return ESP_ERR_NOT_FOUND;
    }
    if (d->gone || d->pipes[pipe_index(x->ep)].state == PIPE_HALTED) {
        return ESP_ERR_INVALID_STATE;
    }
    const usbip_endpoint_info_t info = usb_desc_endpoint_info(ep);
    urb->ep_address = ep->address;
    urb->type = info.type;
    urb->dir_in = (ep->address & 0x80u) != 0;
    urb->flags = (t->flags & USB_TRANSFER_FLAG_ZERO_PACK) ? USBIP_URB_ZERO_PACKET : 0;
    urb->length = (uint32_t)t->num_bytes;
    urb->buffer = t->data_buffer;
    urb->buffer_size = (uint32_t)t->data_buffer_size;
    urb->max_packet_size = info.max_packet_size;
    urb->interval = info.interval;
    if (info.type == USBIP_XFER_ISOCHRONOUS) {
        if (t->num_isoc_packets <= 0) {
            return ESP_ERR_INVALID_ARG;
        }
        uint32_t offset = 0;
        for (int i = 0; i < t->num_isoc_packets; i++) {
            const int n = t->isoc_packet_desc[i].num_bytes;
            if (n < 0 || (urb->dir_in && info.max_packet_size && n % info.max_packet_size)) {
                return ESP_ERR_INVALID_ARG;
            }
            x->iso[i] = (usbip_iso_packet_t){.offset = offset, .length = (uint32_t)n};
            offset += (uint32_t)n;
        }
        if (offset != (uint32_t)t->num_bytes) {
            return ESP_ERR_INVALID_ARG;
        }
        urb->num_iso_packets = (uint32_t)t->num_isoc_packets;
        urb->iso = x->iso;
    } else if (urb->dir_in && info.max_packet_size && t->num_bytes % info.max_packet_size) {
        return ESP_ERR_INVALID_ARG;
    } else if (info.type == USBIP_XFER_INTERRUPT && t->num_bytes == 0) {
        return ESP_ERR_INVALID_ARG; /* the real HCD corrupts its descriptor list */
    }
    return ESP_OK;
}

/* ---- library API ---- */

/* The sim's record pointer sits after the iso descriptors, pointer-aligned
 * (so that LeakSanitizer, which scans aligned words, sees it). */
static size_t record_offset(size_t packets)
{
    const size_t end = sizeof(usb_transfer_t) + packets * sizeof(usb_isoc_packet_desc_t);
    return (end + sizeof(void *) - 1) / sizeof(void *) * sizeof(void *);
}

esp_err_t usb_host_transfer_alloc(size_t size, int num_isoc_packets, usb_transfer_t **out)
{
    if (num_isoc_packets < 0 || !out) {
        return ESP_ERR_INVALID_ARG;
    }
    const size_t n = (size_t)num_isoc_packets;
    size = (size + SIM_CACHE_LINE - 1) / SIM_CACHE_LINE * SIM_CACHE_LINE; /* as the library */
    sim_xfer_t *x = calloc(1, sizeof *x);
    uint8_t *buffer = malloc(size ? size : 1);
    usb_transfer_t *t = calloc(1, record_offset(n) + sizeof(sim_xfer_t *));
    usbip_iso_packet_t *iso = n ? calloc(n, sizeof *iso) : NULL;
    if (!x || !buffer || !t || (n && !iso)) {
        free(x), free(buffer), free(t), free(iso);
        return ESP_ERR_NO_MEM;
    }
    const usb_transfer_t init = {.data_buffer = buffer, .data_buffer_size = size,
                                 .num_isoc_packets = num_isoc_packets};
    memcpy(t, &init, sizeof init);
    memcpy((uint8_t *)t + record_offset(n), &x, sizeof x);
    x->t = t;
    x->iso = iso;
    pthread_mutex_lock(&S.lock);
    S.stats.transfers_allocated++;
    pthread_mutex_unlock(&S.lock);
    *out = t;
    return ESP_OK;
}

static sim_xfer_t *record_of(usb_transfer_t *t)
{
    sim_xfer_t *x;
    memcpy(&x, (uint8_t *)t + record_offset((size_t)t->num_isoc_packets), sizeof x);
    return x;
}

esp_err_t usb_host_transfer_free(usb_transfer_t *t)
{
    if (!t) {
        return ESP_OK;
    }
    sim_xfer_t *x = record_of(t);
    if (x->in_flight) {
        /* The library frees it anyway: a use-after-free on hardware. */
        fprintf(stderr, "usb_host_sim: usb_host_transfer_free of a transfer in flight\n");
        abort();
    }
    free(t->data_buffer);
    free(x->iso);
    free(x);
    free(t);
    pthread_mutex_lock(&S.lock);
    S.stats.transfers_allocated--;
    pthread_mutex_unlock(&S.lock);
    return ESP_OK;
}

static esp_err_t submit(usb_transfer_t *t, bool control)
{
    pthread_mutex_lock(&S.lock);
    sim_xfer_t *x = record_of(t);
    esp_err_t err = prepare(x, control);
    if (err == ESP_OK) {
        err = to_vdev(x);
    }
    if (err == ESP_OK) {
        /* The controller works while the client goes on: the transfer may
         * finish (or fail and halt its pipe) before the client's next turn. */
        vdev_poll(x->dev->vdev, now_ms());
    }
    if (err != ESP_OK) {
        refuse(err);
    }
    pthread_mutex_unlock(&S.lock);
    return err;
}

esp_err_t usb_host_transfer_submit(usb_transfer_t *t) { return submit(t, false); }

esp_err_t usb_host_transfer_submit_control(usb_host_client_handle_t client, usb_transfer_t *t)
{
    return submit(t, true);
}

esp_err_t usb_host_install(const usb_host_config_t *config)
{
    pthread_mutex_lock(&S.lock);
    esp_err_t err = S.installed ? ESP_ERR_INVALID_STATE : ESP_OK;
    S.installed = true;
    pthread_mutex_unlock(&S.lock);
    return err;
}

static void enumerate_new_devices(void);

/* The daemon enumerates new devices, as the library's does. */
esp_err_t usb_host_lib_handle_events(TickType_t timeout, uint32_t *flags)
{
    *flags = 0;
    const uint64_t start = now_ms();
    do {
        pthread_mutex_lock(&S.lock);
        enumerate_new_devices();
        pthread_mutex_unlock(&S.lock);
        struct timespec ts = {.tv_nsec = SIM_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    } while (now_ms() - start < (timeout == portMAX_DELAY ? 100u : timeout));
    return ESP_ERR_TIMEOUT;
}

/* Power off: every device (and hub) leaves; power on: nothing comes back in
 * this simulation (its vdevs are gone), so tests count the departures. */
esp_err_t usb_host_lib_set_root_port_power(bool enable)
{
    pthread_mutex_lock(&S.lock);
    if (!enable) {
        for (int i = 0; i < SIM_MAX_DEVICES; i++) {
            if (S.devs[i].used && !S.devs[i].is_hub) {
                S.devs[i].gone = true;
            }
        }
        S.stats.power_cycles++;
        pthread_cond_broadcast(&S.wake);
    }
    pthread_mutex_unlock(&S.lock);
    return ESP_OK;
}

esp_err_t usb_host_client_register(const usb_host_client_config_t *cfg,
                                   usb_host_client_handle_t *out)
{
    if (!cfg || cfg->is_synchronous || cfg->max_num_event_msg <= 0 ||
        !cfg->async.client_event_callback) {
        return ESP_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&S.lock);
    S.client_cfg = *cfg;
    S.client_registered = true;
    pthread_mutex_unlock(&S.lock);
    *out = (usb_host_client_handle_t)&S;
    return ESP_OK;
}

esp_err_t usb_host_client_deregister(usb_host_client_handle_t client)
{
    pthread_mutex_lock(&S.lock);
    S.client_registered = false;
    pthread_mutex_unlock(&S.lock);
    return ESP_OK;
}

esp_err_t usb_host_client_unblock(usb_host_client_handle_t client)
{
    pthread_mutex_lock(&S.lock);
    S.unblocked = true;
    pthread_cond_broadcast(&S.wake);
    pthread_mutex_unlock(&S.lock);
    return ESP_OK;
}

static void release_parked(sim_dev_t *d, uint8_t ep, usb_transfer_status_t status)
{
    sim_xfer_t **link = &d->parked;
    d->parked_tail = NULL;
    while (*link) {
        sim_xfer_t *x = *link;
        if (ep == 0xff || x->ep == ep) {
            *link = x->next;
            return_to_client(x, status);
        } else {
            d->parked_tail = x;
            link = &x->next;
        }
    }
}

static bool needs_translator(const sim_dev_t *d)
{
    return d->parent && d->parent->speed == USB_SPEED_HIGH && d->speed != USB_SPEED_HIGH;
}

/* Lock held. */
static void enumerate_new_devices(void)
{
    for (int i = 0; i < SIM_MAX_DEVICES; i++) {
        sim_dev_t *d = &S.devs[i];
        if (!d->used || d->is_hub || d->enumerated || d->refused || d->gone) {
            continue;
        }
        if (needs_translator(d) && !S.enumerate_behind_tt) {
            fprintf(stderr, "usb_host_sim: device on port %u of a high-speed hub: transaction "
                    "translator (TT) is not supported\n", d->port);
            d->refused = true;
            continue;
        }
        if (S.channels_free < 1) {
            fprintf(stderr, "usb_host_sim: no free channel to enumerate a device\n");
            d->refused = true;
            continue;
        }
        if (!enumerate(d)) {
            d->refused = true;
            continue;
        }
        d->channels = 1; /* its EP0 pipe */
        S.channels_free--;
        usb_host_client_event_msg_t msg = {.event = USB_HOST_CLIENT_EVENT_NEW_DEV};
        msg.new_dev.address = d->address;
        push_event(&msg);
    }
}

/* One turn of the bus: unplug, run the vdevs. Lock held. */
static void run_devices(void)
{
    for (int i = 0; i < SIM_MAX_DEVICES; i++) {
        sim_dev_t *d = &S.devs[i];
        if (!d->used || d->is_hub) {
            continue;
        }
        if (!d->enumerated) {
            if (d->gone) {
                free_dev(d); /* unplugged before (or instead of) enumeration */
            }
            continue;
        }
        if (d->gone && !d->unplugged_vdev) {
            vdev_unplug(d->vdev);
            d->unplugged_vdev = true;
            release_parked(d, 0xff, USB_TRANSFER_STATUS_NO_DEVICE);
        }
        vdev_poll(d->vdev, now_ms());
        int in_flight = 0;
        for (unsigned k = 0; k < 32; k++) {
            in_flight += d->pipes[k].in_flight;
        }
        if (d->gone && !d->gone_reported && in_flight == 0) {
            d->gone_reported = true;
            if (d->open) {
                usb_host_client_event_msg_t msg = {.event = USB_HOST_CLIENT_EVENT_DEV_GONE};
                msg.dev_gone.dev_hdl = handle_of(d);
                push_event(&msg);
            } else {
                free_dev(d);
            }
        }
    }
}

esp_err_t usb_host_client_handle_events(usb_host_client_handle_t client, TickType_t timeout)
{
    const uint64_t start = now_ms();
    pthread_mutex_lock(&S.lock);
    for (;;) {
        run_devices();
        if (S.done || S.num_events || S.unblocked) {
            break;
        }
        const uint64_t waited = now_ms() - start;
        if (timeout != portMAX_DELAY && waited >= timeout) {
            pthread_mutex_unlock(&S.lock);
            return ESP_ERR_TIMEOUT;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += SIM_POLL_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&S.wake, &S.lock, &ts);
    }
    S.unblocked = false;
    sim_xfer_t *done = S.done;
    S.done = S.done_tail = NULL;
    sim_event_t events[SIM_MAX_EVENTS];
    const int num_events = S.num_events;
    memcpy(events, S.events, (size_t)num_events * sizeof events[0]);
    S.num_events = 0;
    for (sim_xfer_t *x = done; x; x = x->next) {
        x->in_flight = false;
    }
    const usb_host_client_config_t cfg = S.client_cfg;
    pthread_mutex_unlock(&S.lock);
    /* Callbacks run here, in the client's task, and nowhere else. */
    while (done) {
        sim_xfer_t *next = done->next;
        done->t->callback(done->t);
        done = next;
    }
    for (int i = 0; i < num_events; i++) {
        cfg.async.client_event_callback(&events[i].msg, cfg.async.callback_arg);
    }
    return ESP_OK;
}

esp_err_t usb_host_device_addr_list_fill(int list_len, uint8_t *list, int *num)
{
    pthread_mutex_lock(&S.lock);
    int n = 0;
    for (int i = 0; i < SIM_MAX_DEVICES; i++) {
        const sim_dev_t *d = &S.devs[i];
        if (d->used && d->enumerated && !d->gone && n < list_len) {
            list[n++] = d->address;
        }
    }
    *num = n;
    pthread_mutex_unlock(&S.lock);
    return ESP_OK;
}

esp_err_t usb_host_device_open(usb_host_client_handle_t client, uint8_t addr,
                               usb_device_handle_t *out)
{
    pthread_mutex_lock(&S.lock);
    esp_err_t err = ESP_ERR_NOT_FOUND;
    for (int i = 0; i < SIM_MAX_DEVICES; i++) {
        sim_dev_t *d = &S.devs[i];
        if (d->used && d->enumerated && !d->gone && d->address == addr) {
            err = d->open ? ESP_ERR_INVALID_STATE : ESP_OK;
            if (err == ESP_OK) {
                d->open = true;
                S.stats.devices_open++;
                *out = handle_of(d);
            }
            break;
        }
    }
    pthread_mutex_unlock(&S.lock);
    return err;
}

esp_err_t usb_host_device_close(usb_host_client_handle_t client, usb_device_handle_t h)
{
    pthread_mutex_lock(&S.lock);
    sim_dev_t *d = dev_of(h);
    esp_err_t err = ESP_OK;
    for (unsigned k = 0; k < USB_DESC_MAX_INTERFACES; k++) {
        if (d->claimed_alt[k] >= 0) {
            err = ESP_ERR_INVALID_STATE; /* interfaces still claimed */
        }
    }
    if (!d->open) {
        err = ESP_ERR_NOT_FOUND;
    }
    if (err == ESP_OK) {
        d->open = false;
        S.stats.devices_open--;
        if (d->gone && d->gone_reported) {
            free_dev(d);
        }
    }
    pthread_mutex_unlock(&S.lock);
    return err;
}

esp_err_t usb_host_device_info(usb_device_handle_t h, usb_device_info_t *info)
{
    pthread_mutex_lock(&S.lock);
    sim_dev_t *d = dev_of(h);
    memset(info, 0, sizeof *info);
    info->parent.dev_hdl = d->parent ? handle_of(d->parent) : NULL;
    info->parent.port_num = d->port;
    info->speed = d->speed;
    info->dev_addr = d->address;
    info->bMaxPacketSize0 = d->is_hub ? 64 : d->ddesc.bMaxPacketSize0;
    info->bConfigurationValue = d->is_hub ? 1 : d->parsed.configuration_value;
    info->str_desc_manufacturer = d->manufacturer;
    info->str_desc_product = d->product;
    pthread_mutex_unlock(&S.lock);
    return ESP_OK;
}

esp_err_t usb_host_get_device_descriptor(usb_device_handle_t h, const usb_device_desc_t **out)
{
    *out = &dev_of(h)->ddesc;
    return ESP_OK;
}

esp_err_t usb_host_get_active_config_descriptor(usb_device_handle_t h,
                                                const usb_config_desc_t **out)
{
    *out = (const usb_config_desc_t *)dev_of(h)->config;
    return *out ? ESP_OK : ESP_ERR_INVALID_STATE;
}

esp_err_t usb_host_interface_claim(usb_host_client_handle_t client, usb_device_handle_t h,
                                   uint8_t number, uint8_t alt)
{
    pthread_mutex_lock(&S.lock);
    sim_dev_t *d = dev_of(h);
    esp_err_t err = ESP_OK;
    if (!d->open || number >= USB_DESC_MAX_INTERFACES || d->claimed_alt[number] >= 0) {
        err = ESP_ERR_INVALID_STATE;
    } else if (!usb_desc_find_alt(&d->parsed, number, alt)) {
        err = ESP_ERR_NOT_FOUND;
    } else if (usb_desc_find_alt(&d->parsed, number, alt)->num_endpoints > S.channels_free) {
        err = ESP_ERR_NOT_SUPPORTED; /* hcd_pipe_alloc: no free channel */
    } else {
        d->claimed_alt[number] = alt;
        S.stats.interfaces_claimed++;
        const usb_desc_altsetting_t *a = usb_desc_find_alt(&d->parsed, number, alt);
        S.channels_free -= a->num_endpoints;
        d->channels += a->num_endpoints;
        for (unsigned e = 0; e < a->num_endpoints; e++) {
            sim_pipe_t *p = &d->pipes[pipe_index(usb_desc_alt_endpoint(&d->parsed, a, e)->address)];
            p->state = PIPE_ACTIVE; /* a new pipe */
            p->flushing_after_error = false;
        }
    }
    pthread_mutex_unlock(&S.lock);
    return err;
}

esp_err_t usb_host_interface_release(usb_host_client_handle_t client, usb_device_handle_t h,
                                     uint8_t number)
{
    pthread_mutex_lock(&S.lock);
    sim_dev_t *d = dev_of(h);
    esp_err_t err = ESP_OK;
    if (number >= USB_DESC_MAX_INTERFACES || d->claimed_alt[number] < 0) {
        err = ESP_ERR_NOT_FOUND;
    } else {
        const usb_desc_altsetting_t *a =
            usb_desc_find_alt(&d->parsed, number, (uint8_t)d->claimed_alt[number]);
        for (unsigned e = 0; a && e < a->num_endpoints; e++) {
            const uint8_t ep = usb_desc_alt_endpoint(&d->parsed, a, e)->address;
            bool parked = false;
            for (sim_xfer_t *x = d->parked; x; x = x->next) {
                parked |= x->ep == ep;
            }
            if (d->pipes[pipe_index(ep)].in_flight || parked) {
                err = ESP_ERR_INVALID_STATE; /* transfers still on the pipe */
            }
        }
        if (err == ESP_OK) {
            d->claimed_alt[number] = -1;
            S.stats.interfaces_claimed--;
            S.channels_free += a ? a->num_endpoints : 0;
            d->channels -= a ? a->num_endpoints : 0;
        }
    }
    pthread_mutex_unlock(&S.lock);
    return err;
}

static esp_err_t pipe_command(usb_device_handle_t h, uint8_t ep, int command)
{
    pthread_mutex_lock(&S.lock);
    sim_dev_t *d = dev_of(h);
    esp_err_t err = ESP_OK;
    sim_pipe_t *p = &d->pipes[pipe_index(ep)];
    if ((ep & 0x0fu) == 0) {
        err = ESP_ERR_INVALID_ARG; /* EP0 is not accepted, as in v5.5 */
    } else if (!find_endpoint(d, ep)) {
        err = ESP_ERR_NOT_FOUND;
    } else if (command == 0) { /* halt: the running transfer stops and comes back */
        S.stats.halts++;
        p->state = PIPE_HALTED;
        if (!d->gone) {
            p->running = running_on(d, ep);
            cancel_at_vdev(d, ep);
        }
    } else if (command == 2 && d->gone) {
        err = ESP_ERR_INVALID_STATE; /* clear needs a live port */
    } else if (p->state != PIPE_HALTED) {
        err = ESP_ERR_INVALID_STATE;
    } else if (command == 1) { /* flush: every transfer back as CANCELED */
        S.stats.flushes++;
        for (int i = 0; i < 1000 && p->in_flight; i++) {
            vdev_poll(d->vdev, now_ms()); /* the cancelled ones come back */
        }
        release_parked(d, ep, USB_TRANSFER_STATUS_CANCELED);
    } else { /* clear: parked transfers run again */
        S.stats.clears++;
        p->state = PIPE_ACTIVE;
        p->flushing_after_error = false;
        sim_xfer_t *again = NULL;
        sim_xfer_t **tail = &again;
        sim_xfer_t **link = &d->parked;
        d->parked_tail = NULL;
        while (*link) {
            sim_xfer_t *x = *link;
            if (x->ep == ep) {
                *link = x->next;
                x->next = NULL;
                *tail = x;
                tail = &x->next;
            } else {
                d->parked_tail = x;
                link = &x->next;
            }
        }
        for (sim_xfer_t *x = again, *next; x; x = next) {
            next = x->next;
            x->in_flight = false;
            to_vdev(x);
        }
    }
    pthread_mutex_unlock(&S.lock);
    return err;
}

esp_err_t usb_host_endpoint_halt(usb_device_handle_t h, uint8_t ep) { return pipe_command(h, ep, 0); }
esp_err_t usb_host_endpoint_flush(usb_device_handle_t h, uint8_t ep) { return pipe_command(h, ep, 1); }
esp_err_t usb_host_endpoint_clear(usb_device_handle_t h, uint8_t ep) { return pipe_command(h, ep, 2); }
