/*
 * The USB client task: the one task that calls the USB Host Library's
 * client API (the library asks for all calls of a client from one task).
 *
 * Each turn: usb_host_client_handle_events() runs the library callbacks,
 * which only record what happened (a transfer is still "in flight" for the
 * library while its callback runs, so nothing may be resubmitted or
 * released there); then the records are fed to the transfer engine, device
 * arrivals and departures are handled, and the server task's commands run.
 * A command wakes this task with usb_host_client_unblock().
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esp_cache.h"
#include "esp_heap_caps.h"
#include "esp_log.h"
#include "freertos/task.h"
#include "host_mgr_internal.h"
#include "te_plan.h"
#include "te_status.h"
#include "te_topology.h"

static const char *TAG = "usb_client";

/* Core 0 with the library's daemon task; the server task has core 1. Above
 * the server task so the bus is refilled before more URBs are read. */
#define CLIENT_TASK_CORE 0
#define CLIENT_TASK_PRIORITY 12
#define CLIENT_TASK_STACK_BYTES 6144
#define SETTLE_RETRY_MS 50
#define POWER_OFF_MS 500 /* long enough for devices to see the disconnect */

/* te_usb_status_t is passed across by value. */
_Static_assert(TE_USB_COMPLETED == (int)USB_TRANSFER_STATUS_COMPLETED, "status");
_Static_assert(TE_USB_ERROR == (int)USB_TRANSFER_STATUS_ERROR, "status");
_Static_assert(TE_USB_TIMED_OUT == (int)USB_TRANSFER_STATUS_TIMED_OUT, "status");
_Static_assert(TE_USB_CANCELED == (int)USB_TRANSFER_STATUS_CANCELED, "status");
_Static_assert(TE_USB_STALL == (int)USB_TRANSFER_STATUS_STALL, "status");
_Static_assert(TE_USB_OVERFLOW == (int)USB_TRANSFER_STATUS_OVERFLOW, "status");
_Static_assert(TE_USB_SKIPPED == (int)USB_TRANSFER_STATUS_SKIPPED, "status");
_Static_assert(TE_USB_NO_DEVICE == (int)USB_TRANSFER_STATUS_NO_DEVICE, "status");
_Static_assert(USBIP_MAX_PORT_DEPTH >= 2, "port path");

/* ---- queues between the tasks ---- */

bool hm_send_command(const hm_cmd_t *cmd)
{
    if (xQueueSend(g_hm.commands, cmd, 0) != pdTRUE) {
        return false;
    }
    usb_host_client_unblock(g_hm.client);
    return true;
}

void hm_send_event(const hm_evt_t *evt)
{
    /* Sized for every pool entry and device at once: a full queue is a bug,
     * and blocking here could deadlock with a server task waiting in
     * op_attach(), so drop and say so. */
    if (xQueueSend(g_hm.events, evt, 0) != pdTRUE) {
        ESP_LOGE(TAG, "event queue full: event %d dropped", (int)evt->kind);
        return;
    }
    g_hm.cfg.wake(g_hm.cfg.wake_ctx);
}

static void send_refusal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void send_refusal(const char *fmt, ...)
{
    hm_evt_t evt = {.kind = HM_EVT_REFUSED};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(evt.text, sizeof evt.text, fmt, ap);
    va_end(ap);
    ESP_LOGW(TAG, "%s", evt.text);
    hm_send_event(&evt);
}

/* ---- the engine's library operations ---- */

static hm_slot_t *slot_of(te_urb_t *u)
{
    return (hm_slot_t *)((char *)u - offsetof(hm_slot_t, te));
}

static hm_device_t *owner_of(te_device_t *dev)
{
    return dev->user;
}

static te_result_t result_of(esp_err_t err)
{
    switch (err) {
    case ESP_OK: return TE_OK;
    case ESP_ERR_NOT_FOUND: return TE_ERR_NOT_FOUND;
    case ESP_ERR_NO_MEM:
    case ESP_ERR_NOT_SUPPORTED: /* hcd_pipe_alloc: no free channel, or MPS over the FIFO */
        return TE_ERR_NO_RESOURCES;
    case ESP_ERR_INVALID_STATE: return TE_ERR_INVALID_STATE;
    default: return TE_ERR_FAILED;
    }
}

static te_result_t lib_claim(void *ctx, te_device_t *dev, uint8_t interface, uint8_t alt)
{
    return result_of(usb_host_interface_claim(g_hm.client, owner_of(dev)->handle, interface, alt));
}

static te_result_t lib_release(void *ctx, te_device_t *dev, uint8_t interface)
{
    return result_of(usb_host_interface_release(g_hm.client, owner_of(dev)->handle, interface));
}

static te_result_t lib_halt(void *ctx, te_device_t *dev, uint8_t ep)
{
    return result_of(usb_host_endpoint_halt(owner_of(dev)->handle, ep));
}

static te_result_t lib_flush(void *ctx, te_device_t *dev, uint8_t ep)
{
    return result_of(usb_host_endpoint_flush(owner_of(dev)->handle, ep));
}

static te_result_t lib_clear(void *ctx, te_device_t *dev, uint8_t ep)
{
    return result_of(usb_host_endpoint_clear(owner_of(dev)->handle, ep));
}

/* An iso transfer with exactly `packets` packets and at least `bytes` of
 * buffer: the packet count is fixed at allocation, so the two shapes an iso
 * URB uses are kept per pool entry and reallocated only when the shape
 * changes (a new stream), never per URB in a steady stream. */
static usb_transfer_t *iso_transfer(hm_slot_t *slot, uint32_t packets, uint32_t bytes)
{
    for (int i = 0; i < HM_ISO_SHAPES; i++) {
        usb_transfer_t *t = slot->iso[i];
        if (t && (uint32_t)t->num_isoc_packets == packets && t->data_buffer_size >= bytes) {
            return t;
        }
    }
    /* Replace the one that does not match the URB's other shape. */
    const uint32_t other = slot->te.iso_layout.packets_per_chunk == packets
                               ? slot->te.iso_layout.tail_packets
                               : slot->te.iso_layout.packets_per_chunk;
    int victim = 0;
    if (slot->iso[0] && (uint32_t)slot->iso[0]->num_isoc_packets == other) {
        victim = 1;
    }
    usb_host_transfer_free(slot->iso[victim]);
    slot->iso[victim] = NULL;
    if (usb_host_transfer_alloc(bytes ? bytes : 1, (int)packets, &slot->iso[victim]) != ESP_OK) {
        ESP_LOGW(TAG, "no memory for an iso transfer of %u packets, %u bytes",
                 (unsigned)packets, (unsigned)bytes);
        slot->iso[victim] = NULL;
    }
    return slot->iso[victim];
}

static usb_transfer_t *transfer_for(hm_slot_t *slot, const te_transfer_t *t)
{
    if (t->type == USBIP_XFER_ISOCHRONOUS) {
        uint32_t bytes = slot->te.iso_layout.chunk_bytes;
        return iso_transfer(slot, t->iso_count, t->num_bytes > bytes ? t->num_bytes : bytes);
    }
    return slot->transfer;
}

static uint8_t *lib_transfer_buffer(void *ctx, te_urb_t *u, const te_transfer_t *t)
{
    usb_transfer_t *x = transfer_for(slot_of(u), t);
    return x ? x->data_buffer : NULL;
}

static void transfer_returned(usb_transfer_t *transfer);

static te_result_t lib_submit(void *ctx, te_urb_t *u, const te_transfer_t *t)
{
    hm_slot_t *slot = slot_of(u);
    usb_transfer_t *x = transfer_for(slot, t);
    if (!x) {
        return TE_ERR_NO_RESOURCES;
    }
    const usbip_urb_t *urb = slot->urb;
    x->num_bytes = (int)t->num_bytes;
    x->flags = t->zero_packet ? USB_TRANSFER_FLAG_ZERO_PACK : 0;
    x->device_handle = slot->dev->handle;
    x->bEndpointAddress = t->ep_address;
    x->callback = transfer_returned;
    x->context = slot;
    x->timeout_ms = 0; /* not supported by the library */
    for (uint32_t i = 0; t->type == USBIP_XFER_ISOCHRONOUS && i < t->iso_count; i++) {
        x->isoc_packet_desc[i].num_bytes = (int)te_iso_request_length(
            &urb->iso[t->iso_first + i], urb->max_packet_size, urb->dir_in);
    }
    if (urb->dir_in && t->type != USBIP_XFER_CONTROL && t->num_bytes) {
        /* The library writes the cache back only before OUT and control
         * transfers. A pool buffer last written by the CPU (OUT data of an
         * earlier URB, unpacked iso packets) may hold dirty lines; written
         * back during the DMA they would overwrite what the device sends. */
        esp_cache_msync(x->data_buffer, t->num_bytes,
                        ESP_CACHE_MSYNC_FLAG_DIR_C2M | ESP_CACHE_MSYNC_FLAG_UNALIGNED);
    }
    esp_err_t err = t->type == USBIP_XFER_CONTROL
                        ? usb_host_transfer_submit_control(g_hm.client, x)
                        : usb_host_transfer_submit(x);
    if (err != ESP_OK) {
        if (err != ESP_ERR_INVALID_STATE) { /* a halted pipe: the engine decides */
            ESP_LOGW(TAG, "%s: submit to ep 0x%02x, %u bytes: %s", slot->dev->name,
                     t->ep_address, (unsigned)t->num_bytes, esp_err_to_name(err));
        }
        return result_of(err);
    }
    slot->in_flight = x;
    return TE_OK;
}

static void lib_complete(void *ctx, te_urb_t *u)
{
    const hm_evt_t evt = {.kind = HM_EVT_URB_DONE, .slot = slot_of(u)};
    hm_send_event(&evt);
}

const te_host_ops_t hm_engine_ops = {
    .claim = lib_claim,
    .release = lib_release,
    .transfer_buffer = lib_transfer_buffer,
    .submit = lib_submit,
    .halt = lib_halt,
    .flush = lib_flush,
    .clear = lib_clear,
    .complete = lib_complete,
};

/* ---- library callbacks: record only ---- */

static void transfer_returned(usb_transfer_t *transfer)
{
    if (g_hm.num_returned < g_hm.num_slots) {
        g_hm.returned[g_hm.num_returned++] = transfer->context;
    } else {
        /* Each pool entry has at most one transfer in the library. */
        ESP_LOGE(TAG, "more transfers returned than the pool holds");
    }
}

/* The arrays hold as many events as the library queues for us per turn. */
static void client_event(const usb_host_client_event_msg_t *msg, void *arg)
{
    if (msg->event == USB_HOST_CLIENT_EVENT_NEW_DEV && g_hm.num_new < HM_CLIENT_EVENTS) {
        g_hm.new_addresses[g_hm.num_new++] = msg->new_dev.address;
    } else if (msg->event == USB_HOST_CLIENT_EVENT_DEV_GONE && g_hm.num_gone < HM_CLIENT_EVENTS) {
        g_hm.gone_handles[g_hm.num_gone++] = msg->dev_gone.dev_hdl;
    }
}

/* ---- transfers back from the library ---- */

static void feed_returned_transfer(hm_slot_t *slot)
{
    usb_transfer_t *x = slot->in_flight;
    slot->in_flight = NULL;
    if (!x) {
        return;
    }
    /* At most TE_ISO_MAX_SLOTS packets per transfer (te_plan). */
    te_iso_result_t iso[TE_ISO_MAX_SLOTS];
    const bool is_iso = x->num_isoc_packets > 0;
    const int packets = x->num_isoc_packets < (int)TE_ISO_MAX_SLOTS ? x->num_isoc_packets
                                                                    : (int)TE_ISO_MAX_SLOTS;
    for (int i = 0; i < packets; i++) {
        iso[i].status = (te_usb_status_t)x->isoc_packet_desc[i].status;
        iso[i].actual = (uint32_t)x->isoc_packet_desc[i].actual_num_bytes;
    }
    te_transfer_done(&slot->dev->te, &slot->te, (te_usb_status_t)x->status,
                     (uint32_t)x->actual_num_bytes, is_iso ? iso : NULL);
}

static void feed_returned_transfers(void)
{
    /* Feeding may submit again, and a submit cannot return inside this
     * loop (callbacks run only in usb_host_client_handle_events). */
    for (size_t i = 0; i < g_hm.num_returned; i++) {
        feed_returned_transfer(g_hm.returned[i]);
    }
    g_hm.num_returned = 0;
}

/* ---- devices ---- */

static hm_device_t *find_by_handle(usb_device_handle_t handle)
{
    for (size_t i = 0; i < g_hm.cfg.max_devices; i++) {
        if (g_hm.devices[i] && g_hm.devices[i]->handle == handle) {
            return g_hm.devices[i];
        }
    }
    return NULL;
}

static hm_device_t *find_by_address(uint8_t address)
{
    for (size_t i = 0; i < g_hm.cfg.max_devices; i++) {
        if (g_hm.devices[i] && g_hm.devices[i]->address == address && !g_hm.devices[i]->gone) {
            return g_hm.devices[i];
        }
    }
    return NULL;
}

static int free_index(void)
{
    for (size_t i = 0; i < g_hm.cfg.max_devices; i++) {
        if (!g_hm.devices[i]) {
            return (int)i;
        }
    }
    return -1;
}

/* Port path root to leaf by walking the parent hubs; the parent speed is
 * what decides whether a transaction translator would be needed. The hubs
 * are not opened by us (the library's hub driver holds them open while
 * their children exist), which usb_host_device_info() does not check. */
static esp_err_t locate(usb_device_handle_t handle, const usb_device_info_t *info,
                        hm_device_t *dev, usbip_speed_t *hub_speed)
{
    uint8_t hub_ports[USBIP_MAX_PORT_DEPTH];
    size_t hops = 0;
    *hub_speed = USBIP_SPEED_UNKNOWN;
    usb_device_handle_t parent = info->parent.dev_hdl;
    uint8_t port = info->parent.port_num;
    while (parent) {
        if (hops == USBIP_MAX_PORT_DEPTH) {
            return ESP_ERR_INVALID_SIZE;
        }
        hub_ports[hops++] = port;
        usb_device_info_t hub;
        if (usb_host_device_info(parent, &hub) != ESP_OK) {
            return ESP_FAIL;
        }
        if (hops == 1) {
            *hub_speed = te_speed_to_usbip(hub.speed);
        }
        parent = hub.parent.dev_hdl;
        port = hub.parent.port_num;
    }
    if (te_port_path(hub_ports, hops, dev->ports, USBIP_MAX_PORT_DEPTH, &dev->depth) !=
        USBIP_OK) {
        return ESP_ERR_INVALID_SIZE;
    }
    return usbip_busid_format(TE_BUSNUM, dev->ports, dev->depth, dev->name) == USBIP_OK
               ? ESP_OK
               : ESP_ERR_INVALID_SIZE;
}

static void copy_string(const usb_str_desc_t *desc, char *out, size_t out_len)
{
    out[0] = '\0';
    if (desc) {
        usb_desc_string_utf8((const uint8_t *)desc, desc->bLength, out, out_len);
    }
}

/* Descriptors cached at enumeration -> the core's device. */
static esp_err_t describe(hm_device_t *dev, const usb_device_info_t *info)
{
    const usb_device_desc_t *dd = NULL;
    const usb_config_desc_t *cd = NULL;
    if (usb_host_get_device_descriptor(dev->handle, &dd) != ESP_OK ||
        usb_host_get_active_config_descriptor(dev->handle, &cd) != ESP_OK || !dd || !cd) {
        return ESP_ERR_NOT_FOUND;
    }
    const usbip_speed_t speed = te_speed_to_usbip(info->speed);
    if (usb_desc_device_record((const uint8_t *)dd, USB_DEVICE_DESC_SIZE, speed,
                               &dev->usbip.record) != USBIP_OK ||
        usb_desc_parse_config((const uint8_t *)cd, cd->wTotalLength, &dev->cfg) != USBIP_OK) {
        return ESP_ERR_INVALID_RESPONSE;
    }
    if (dev->cfg.problems) {
        char text[96];
        usb_desc_problems_text(dev->cfg.problems, text, sizeof text);
        ESP_LOGW(TAG, "%s: configuration descriptor defects tolerated: %s", dev->name, text);
    }
    dev->mps0 = info->bMaxPacketSize0;
    uint8_t alts[USB_DESC_MAX_INTERFACES];
    usb_desc_default_alts(&dev->cfg, alts);
    usb_desc_fill_device(&dev->cfg, alts, dev->mps0, &dev->usbip);
    copy_string(info->str_desc_manufacturer, dev->usbip.manufacturer,
                sizeof dev->usbip.manufacturer);
    copy_string(info->str_desc_product, dev->usbip.product, sizeof dev->usbip.product);
    dev->usbip.ops = &hm_backend_ops;
    dev->usbip.ctx = dev;
    te_device_init(&dev->te, &dev->cfg, alts, dev->mps0, &hm_engine_ops, NULL, dev);
    dev->te.name = dev->name;
    return ESP_OK;
}

static const char *speed_name(usbip_speed_t speed)
{
    switch (speed) {
    case USBIP_SPEED_LOW: return "low";
    case USBIP_SPEED_FULL: return "full";
    case USBIP_SPEED_HIGH: return "high";
    default: return "unknown";
    }
}

/* Whether this device can be served; if not, says why (event log). */
static bool exportable(const hm_device_t *dev, const usb_device_info_t *info,
                       usbip_speed_t hub_speed)
{
    const usbip_speed_t speed = te_speed_to_usbip(info->speed);
    if (te_needs_transaction_translator(speed, hub_speed)) {
        send_refusal("%s: %s-speed device behind a high-speed hub: not supported (no "
                     "transaction translator in the ESP32-P4 host); plug it in directly",
                     dev->name, speed_name(speed));
        return false;
    }
    if (dev->usbip.record.bDeviceClass == USB_DESC_CLASS_HUB) {
        return false; /* hubs are managed by the library, never exported */
    }
    return true;
}

static void device_arrived(uint8_t address)
{
    if (find_by_address(address)) {
        return; /* reported twice: by the start-up scan and by an event */
    }
    usb_device_handle_t handle;
    esp_err_t err = usb_host_device_open(g_hm.client, address, &handle);
    if (err != ESP_OK) {
        ESP_LOGW(TAG, "device at address %u: open failed: %s", address, esp_err_to_name(err));
        return;
    }
    const int index = free_index();
    hm_device_t *dev = index < 0 ? NULL
                                 : heap_caps_calloc(1, sizeof *dev,
                                                    MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT);
    if (!dev && index >= 0) {
        dev = calloc(1, sizeof *dev);
    }
    if (!dev) {
        usb_host_device_close(g_hm.client, handle);
        if (index < 0 && g_hm.num_deferred < HM_CLIENT_EVENTS) {
            /* Served as soon as a device leaves the table. */
            g_hm.deferred_addresses[g_hm.num_deferred++] = address;
            send_refusal("USB device at address %u waits: CONFIG_USBIP_MAX_DEVICES (%u) "
                         "devices already served", address, (unsigned)g_hm.cfg.max_devices);
        } else {
            send_refusal("USB device at address %u ignored: out of memory", address);
        }
        return;
    }
    dev->handle = handle;
    dev->address = address;
    dev->index = (size_t)index;
    usb_device_info_t info;
    usbip_speed_t hub_speed = USBIP_SPEED_UNKNOWN;
    err = usb_host_device_info(handle, &info);
    if (err == ESP_OK) {
        err = locate(handle, &info, dev, &hub_speed);
    }
    if (err == ESP_OK) {
        err = describe(dev, &info);
    }
    if (err != ESP_OK || !exportable(dev, &info, hub_speed)) {
        if (err != ESP_OK) {
            send_refusal("USB device at address %u ignored: %s (port path or descriptors)",
                         address, esp_err_to_name(err));
        }
        usb_host_device_close(g_hm.client, handle);
        free(dev);
        return;
    }
    g_hm.devices[index] = dev;
    ESP_LOGI(TAG, "%s: %04x:%04x %s %s, %s speed", dev->name, dev->usbip.record.idVendor,
             dev->usbip.record.idProduct, dev->usbip.manufacturer, dev->usbip.product,
             speed_name(te_speed_to_usbip(info.speed)));
    const hm_evt_t evt = {.kind = HM_EVT_ARRIVED, .dev = dev};
    hm_send_event(&evt);
}

/* Devices that arrived while the table was full, now that a slot is free. */
static void retry_deferred_arrivals(void)
{
    const size_t n = g_hm.num_deferred;
    uint8_t addresses[HM_CLIENT_EVENTS];
    memcpy(addresses, g_hm.deferred_addresses, n);
    g_hm.num_deferred = 0;
    for (size_t i = 0; i < n; i++) {
        device_arrived(addresses[i]); /* defers it again if still full */
    }
}

/* Release the interfaces once the engine is idle after a session, and
 * close and free the device once the core has let go of it too. True while
 * something is left to do (the loop then retries on a short timeout). */
static bool settle(hm_device_t *dev)
{
    if (!te_device_idle(&dev->te)) {
        return true;
    }
    if (dev->detach_pending) {
        te_device_detach(&dev->te);
        dev->detach_pending = false;
    }
    if (!dev->release_requested) {
        return false;
    }
    te_device_detach(&dev->te); /* after a session's detach: releases nothing */
    esp_err_t err = usb_host_device_close(g_hm.client, dev->handle);
    if (err == ESP_ERR_INVALID_STATE) {
        /* An interface release failed (library events still pending for
         * an endpoint after an unplug): try again on the next turn. */
        return true;
    }
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "%s: close failed: %s", dev->name, esp_err_to_name(err));
    }
    g_hm.devices[dev->index] = NULL;
    /* The server task frees it: events about it may still be queued there. */
    const hm_evt_t evt = {.kind = HM_EVT_FREED, .dev = dev};
    hm_send_event(&evt);
    retry_deferred_arrivals();
    return false;
}

static void device_left(usb_device_handle_t handle)
{
    hm_device_t *dev = find_by_handle(handle);
    if (!dev || dev->gone) {
        return;
    }
    ESP_LOGI(TAG, "%s: unplugged", dev->name);
    dev->gone = true;
    te_device_gone(&dev->te);
    const hm_evt_t evt = {.kind = HM_EVT_GONE, .dev = dev};
    hm_send_event(&evt);
}

static void scan_present_devices(void)
{
    uint8_t addresses[32];
    int count = 0;
    if (usb_host_device_addr_list_fill(sizeof addresses, addresses, &count) != ESP_OK) {
        return;
    }
    for (int i = 0; i < count && i < (int)sizeof addresses; i++) {
        device_arrived(addresses[i]);
    }
}

/* ---- commands from the server task ---- */

static te_result_t attach(hm_device_t *dev)
{
    if (dev->gone) {
        return TE_ERR_INVALID_STATE;
    }
    if (dev->detach_pending && te_device_idle(&dev->te)) {
        te_device_detach(&dev->te); /* the previous session's release */
        dev->detach_pending = false;
    }
    if (dev->detach_pending) {
        ESP_LOGW(TAG, "%s: previous session still has transfers in the library", dev->name);
        return TE_ERR_INVALID_STATE;
    }
    return te_device_attach(&dev->te);
}

/* Devices leave (DEV_GONE) while the port is off and enumerate again after. */
static void power_cycle_root_port(void)
{
    esp_err_t err = usb_host_lib_set_root_port_power(false);
    if (err == ESP_OK) {
        vTaskDelay(pdMS_TO_TICKS(POWER_OFF_MS));
        err = usb_host_lib_set_root_port_power(true);
    }
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "root port power cycle failed: %s", esp_err_to_name(err));
    } else {
        ESP_LOGI(TAG, "root port power-cycled");
    }
}

static void run_command(const hm_cmd_t *cmd)
{
    hm_device_t *dev = cmd->dev;
    switch (cmd->kind) {
    case HM_CMD_ATTACH:
        g_hm.sync_result = attach(dev);
        xSemaphoreGive(g_hm.sync_done);
        break;
    case HM_CMD_DETACH:
        dev->detach_pending = true;
        break; /* settled after the commands */
    case HM_CMD_SUBMIT: {
        hm_slot_t *slot = cmd->slot;
        const usbip_urb_t *urb = slot->urb;
        const uint32_t capacity =
            (uint32_t)slot->transfer->data_buffer_size -
            (urb->type == USBIP_XFER_CONTROL ? TE_SETUP_SIZE : 0);
        te_urb_submit(&dev->te, &slot->te, slot->urb, capacity);
        break;
    }
    case HM_CMD_CANCEL:
        if (cmd->slot->generation == cmd->generation) {
            te_urb_cancel(&dev->te, &cmd->slot->te);
        }
        break;
    case HM_CMD_RELEASE:
        dev->release_requested = true;
        break; /* settled after the commands: dev may be freed there */
    case HM_CMD_POWER_CYCLE:
        power_cycle_root_port();
        break;
    }
}

/* ---- the task ---- */

/* How long the next wait for library events may be. */
static TickType_t settle_all(void)
{
    bool pending = false;
    for (size_t i = 0; i < g_hm.cfg.max_devices; i++) {
        hm_device_t *dev = g_hm.devices[i];
        if (dev && (dev->detach_pending || dev->release_requested)) {
            pending |= settle(dev);
        }
    }
    return pending ? pdMS_TO_TICKS(SETTLE_RETRY_MS) : portMAX_DELAY;
}

static void client_task(void *arg)
{
    SemaphoreHandle_t started = arg;
    const usb_host_client_config_t client_cfg = {
        .is_synchronous = false, /* the only mode the library has */
        .max_num_event_msg = HM_CLIENT_EVENTS,
        .async = {.client_event_callback = client_event, .callback_arg = NULL},
    };
    /* Registered here: every client call of ours comes from this task. */
    esp_err_t err = usb_host_client_register(&client_cfg, &g_hm.client);
    g_hm.sync_result = err == ESP_OK ? TE_OK : TE_ERR_FAILED;
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "usb_host_client_register: %s", esp_err_to_name(err));
    }
    xSemaphoreGive(started);
    if (err != ESP_OK) {
        vTaskDelete(NULL);
        return;
    }
    scan_present_devices();
    TickType_t wait = portMAX_DELAY;
    for (;;) {
        usb_host_client_handle_events(g_hm.client, wait);
        feed_returned_transfers();
        for (size_t i = 0; i < g_hm.num_gone; i++) {
            device_left(g_hm.gone_handles[i]);
        }
        g_hm.num_gone = 0;
        for (size_t i = 0; i < g_hm.num_new; i++) {
            device_arrived(g_hm.new_addresses[i]);
        }
        g_hm.num_new = 0;
        hm_cmd_t cmd;
        while (xQueueReceive(g_hm.commands, &cmd, 0) == pdTRUE) {
            run_command(&cmd);
        }
        wait = settle_all();
    }
}

esp_err_t hm_client_task_start(void)
{
    g_hm.devices = calloc(g_hm.cfg.max_devices, sizeof *g_hm.devices);
    g_hm.returned = calloc(g_hm.num_slots, sizeof *g_hm.returned);
    if (!g_hm.devices || !g_hm.returned) {
        return ESP_ERR_NO_MEM;
    }
    if (xTaskCreatePinnedToCore(client_task, "usb_client", CLIENT_TASK_STACK_BYTES,
                                g_hm.sync_done, CLIENT_TASK_PRIORITY, NULL,
                                CLIENT_TASK_CORE) != pdPASS) {
        return ESP_ERR_NO_MEM;
    }
    xSemaphoreTake(g_hm.sync_done, portMAX_DELAY);
    return g_hm.sync_result == TE_OK ? ESP_OK : ESP_FAIL;
}
