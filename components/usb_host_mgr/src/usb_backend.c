/*
 * The server-task half of usb_host_mgr: the core's backend ops for USB host
 * devices, the transfer pool, and delivery of what the USB client task
 * reports (usb_host_mgr_process). Nothing here calls the USB Host Library:
 * every USB operation is a command to the client task.
 */
#include <stdlib.h>
#include <string.h>

#include "esp_heap_caps.h"
#include "esp_log.h"
#include "host_mgr_internal.h"
#include "te_plan.h"
#include "te_topology.h"
#include "usbip_server.h"

static const char *TAG = "usb_backend";

/* ---- the transfer pool ---- */

esp_err_t hm_pool_create(void)
{
    const size_t n = g_hm.cfg.transfer_pool_size;
    g_hm.slots = calloc(n, sizeof *g_hm.slots);
    g_hm.free_slots = calloc(n, sizeof *g_hm.free_slots);
    g_hm.accounts = calloc(g_hm.cfg.max_devices, sizeof *g_hm.accounts);
    g_hm.awaiting = calloc(g_hm.cfg.max_devices, sizeof *g_hm.awaiting);
    if (!g_hm.slots || !g_hm.free_slots || !g_hm.accounts || !g_hm.awaiting) {
        return ESP_ERR_NO_MEM;
    }
    for (size_t i = 0; i < n; i++) {
        /* DMA-capable, cache aligned; in PSRAM with
         * CONFIG_USB_HOST_DWC_DMA_CAP_MEMORY_IN_PSRAM (sdkconfig.defaults). */
        esp_err_t err = usb_host_transfer_alloc(g_hm.cfg.transfer_buffer_size, 0,
                                                &g_hm.slots[i].transfer);
        if (err != ESP_OK) {
            ESP_LOGE(TAG, "transfer %u of %u (%u bytes): %s", (unsigned)i + 1, (unsigned)n,
                     (unsigned)g_hm.cfg.transfer_buffer_size, esp_err_to_name(err));
            return err;
        }
        g_hm.free_slots[g_hm.num_free++] = &g_hm.slots[i];
    }
    g_hm.num_slots = n;
    te_pool_init(&g_hm.pool, (uint32_t)n, g_hm.accounts, g_hm.cfg.max_devices,
                 te_pool_default_reserve((uint32_t)n, g_hm.cfg.max_devices));
    return ESP_OK;
}

static hm_device_t *device_of(void *ctx)
{
    return ctx;
}

/* Control URBs put their data right after the 8 setup bytes, so the
 * transfer needs no copy; others start at the buffer. */
static uint32_t data_offset(const usbip_urb_t *urb)
{
    return urb->type == USBIP_XFER_CONTROL ? TE_SETUP_SIZE : 0;
}

/* Data bytes the controller may write for this URB: IN control data
 * stages are asked for in whole packets of bMaxPacketSize0. */
static uint32_t bytes_needed(const hm_device_t *dev, const usbip_urb_t *urb)
{
    if (urb->type == USBIP_XFER_CONTROL && urb->dir_in) {
        return te_round_up_to_mps(urb->length, dev->mps0);
    }
    return urb->length;
}

/* A URB's buffer: the pool transfer's own when it fits (zero copy), else,
 * for bulk/interrupt/iso, a buffer of its own that the engine moves through
 * the transfer chunk by chunk. A control request must fit in one transfer. */
static usbip_err_t give_buffer(hm_slot_t *slot, usbip_urb_t *urb)
{
    usb_transfer_t *t = slot->transfer;
    const uint32_t room = (uint32_t)t->data_buffer_size - data_offset(urb);
    if (bytes_needed(slot->dev, urb) <= room) {
        urb->buffer = t->data_buffer + data_offset(urb);
        urb->buffer_size = room;
        return USBIP_OK;
    }
    if (urb->type == USBIP_XFER_CONTROL) {
        ESP_LOGW(TAG, "control request with %u data bytes: over the %u-byte transfer buffer "
                 "(CONFIG_USBIP_TRANSFER_BUFFER_SIZE)", (unsigned)urb->length, (unsigned)room);
        return USBIP_ERR_INVALID_SIZE;
    }
    slot->side_buffer = heap_caps_malloc(urb->length, MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT);
    if (!slot->side_buffer) {
        slot->side_buffer = malloc(urb->length);
    }
    if (!slot->side_buffer) {
        ESP_LOGW(TAG, "no memory for a %u-byte URB", (unsigned)urb->length);
        return USBIP_ERR_NO_MEM;
    }
    urb->buffer = slot->side_buffer;
    urb->buffer_size = urb->length;
    return USBIP_OK;
}

static usbip_err_t op_alloc_buffer(void *ctx, usbip_urb_t *urb)
{
    hm_device_t *dev = device_of(ctx);
    if (!te_pool_take(&g_hm.pool, dev->index)) {
        return USBIP_ERR_WOULD_BLOCK; /* retried after the next completion */
    }
    hm_slot_t *slot = g_hm.free_slots[--g_hm.num_free];
    slot->urb = urb;
    slot->dev = dev;
    slot->side_buffer = NULL;
    slot->generation++;
    usbip_err_t err = give_buffer(slot, urb);
    if (err != USBIP_OK) {
        g_hm.free_slots[g_hm.num_free++] = slot;
        te_pool_give(&g_hm.pool, dev->index);
        return err;
    }
    urb->backend_priv = slot;
    return USBIP_OK;
}

static void op_free_buffer(void *ctx, usbip_urb_t *urb)
{
    hm_device_t *dev = device_of(ctx);
    hm_slot_t *slot = urb->backend_priv;
    if (!slot) {
        return;
    }
    free(slot->side_buffer); /* heap_caps_malloc memory goes back through free() too */
    slot->side_buffer = NULL;
    slot->urb = NULL;
    slot->generation++;
    urb->backend_priv = NULL;
    urb->buffer = NULL;
    urb->buffer_size = 0;
    g_hm.free_slots[g_hm.num_free++] = slot;
    te_pool_give(&g_hm.pool, dev->index);
}

static usbip_err_t op_submit(void *ctx, usbip_urb_t *urb)
{
    hm_slot_t *slot = urb->backend_priv;
    if (!slot) {
        return USBIP_ERR_INVALID_ARG;
    }
    const hm_cmd_t cmd = {.kind = HM_CMD_SUBMIT, .dev = device_of(ctx), .slot = slot,
                          .generation = slot->generation};
    /* The queue holds a submit and an unlink for every pool entry, so this
     * only fails if the client task is stuck. */
    return hm_send_command(&cmd) ? USBIP_OK : USBIP_ERR_NO_MEM;
}

static void op_cancel(void *ctx, usbip_urb_t *urb)
{
    hm_slot_t *slot = urb->backend_priv;
    if (!slot) {
        return;
    }
    const hm_cmd_t cmd = {.kind = HM_CMD_CANCEL, .dev = device_of(ctx), .slot = slot,
                          .generation = slot->generation};
    if (!hm_send_command(&cmd)) {
        ESP_LOGW(TAG, "%s: unlink dropped: command queue full", device_of(ctx)->name);
    }
}

static usbip_err_t attach_error(te_result_t r)
{
    switch (r) {
    case TE_OK: return USBIP_OK;
    case TE_ERR_NO_RESOURCES: return USBIP_ERR_NO_MEM; /* out of host channels */
    case TE_ERR_INVALID_STATE: return USBIP_ERR_BUSY;
    case TE_ERR_NOT_FOUND: return USBIP_ERR_NOT_FOUND;
    default: return USBIP_ERR_IO;
    }
}

/* IMPORT: the interfaces are claimed now, not while the device is idle (the
 * P4 has 16 host channels for every device and hub together). The session
 * needs the answer, so this waits for the client task, which never waits
 * for us in return (its events go to a queue sized never to fill). */
static usbip_err_t op_attach(void *ctx)
{
    hm_device_t *dev = device_of(ctx);
    const hm_cmd_t cmd = {.kind = HM_CMD_ATTACH, .dev = dev};
    if (!hm_send_command(&cmd)) {
        return USBIP_ERR_BUSY;
    }
    xSemaphoreTake(g_hm.sync_done, portMAX_DELAY);
    usbip_err_t err = attach_error(g_hm.sync_result);
    if (err == USBIP_OK) {
        te_pool_set_active(&g_hm.pool, dev->index, true);
    } else {
        ESP_LOGW(TAG, "%s: import refused: %s", dev->name, te_result_name(g_hm.sync_result));
    }
    return err;
}

static void op_detach(void *ctx)
{
    hm_device_t *dev = device_of(ctx);
    te_pool_set_active(&g_hm.pool, dev->index, false);
    const hm_cmd_t cmd = {.kind = HM_CMD_DETACH, .dev = dev};
    if (!hm_send_command(&cmd)) {
        ESP_LOGE(TAG, "%s: detach dropped: command queue full", dev->name);
    }
}

const usbip_backend_ops_t hm_backend_ops = {
    .attach = op_attach,
    .detach = op_detach,
    .alloc_buffer = op_alloc_buffer,
    .free_buffer = op_free_buffer,
    .submit = op_submit,
    .cancel = op_cancel,
};

/* ---- delivery in the server task ---- */

static void release_device(hm_device_t *dev)
{
    const hm_cmd_t cmd = {.kind = HM_CMD_RELEASE, .dev = dev};
    if (!hm_send_command(&cmd)) {
        ESP_LOGE(TAG, "%s: release dropped: command queue full", dev->name);
    }
}

static void stop_awaiting(hm_device_t *dev)
{
    for (size_t i = 0; i < g_hm.cfg.max_devices; i++) {
        if (g_hm.awaiting[i] == dev) {
            g_hm.awaiting[i] = NULL;
        }
    }
    dev->awaiting_registry = false;
}

static void await_registry(hm_device_t *dev)
{
    for (size_t i = 0; i < g_hm.cfg.max_devices; i++) {
        if (!g_hm.awaiting[i]) {
            g_hm.awaiting[i] = dev;
            dev->awaiting_registry = true;
            return;
        }
    }
    release_device(dev); /* cannot happen: one entry per device slot */
}

/* Register the device. A refusal that lasts (a hub, a path the registry
 * cannot hold) gives it back; one that passes (its bus id still held by a
 * session whose device was unplugged there, a full table) keeps it waiting
 * for the next device the registry frees. */
static void try_register(hm_device_t *dev)
{
    usbip_err_t err = usbip_server_add_device(g_hm.cfg.server, &dev->usbip, TE_BUSNUM,
                                              dev->ports, dev->depth);
    if (err == USBIP_OK) {
        stop_awaiting(dev);
        dev->registered = true;
        return;
    }
    const bool lasting = err != USBIP_ERR_BUSY && err != USBIP_ERR_NO_MEM;
    if (!dev->awaiting_registry || lasting) {
        ESP_LOGW(TAG, "%s: %04x:%04x not exported%s: %s", dev->name, dev->usbip.record.idVendor,
                 dev->usbip.record.idProduct, lasting ? "" : " yet", usbip_err_name(err));
    }
    if (lasting) {
        stop_awaiting(dev);
        release_device(dev);
    } else if (!dev->awaiting_registry) {
        await_registry(dev);
    }
}

static void retry_awaiting(void)
{
    g_hm.retry_awaiting = false;
    for (size_t i = 0; i < g_hm.cfg.max_devices; i++) {
        if (g_hm.awaiting[i]) {
            try_register(g_hm.awaiting[i]);
        }
    }
}

static void device_gone(hm_device_t *dev)
{
    if (dev->awaiting_registry) {
        stop_awaiting(dev);
        release_device(dev);
    } else if (dev->registered) {
        /* The registry frees it now (idle) or when its session ends, and
         * then calls usb_host_mgr_device_freed(). */
        usbip_server_remove_device(g_hm.cfg.server, &dev->usbip);
    }
}

static void urb_done(hm_slot_t *slot)
{
    hm_device_t *dev = slot->dev;
    if (slot->te.alts_valid) {
        /* SET_INTERFACE/SET_CONFIGURATION changed the endpoints the session
         * classifies URBs by: rebuild the table before it sees the reply. */
        usb_desc_fill_device(&dev->cfg, slot->te.alts, dev->mps0, &dev->usbip);
    }
    usbip_urb_t *urb = slot->urb;
    urb->complete(urb);
}

void usb_host_mgr_process(void)
{
    if (!g_hm.events) {
        return; /* not started */
    }
    hm_evt_t evt;
    while (xQueueReceive(g_hm.events, &evt, 0) == pdTRUE) {
        switch (evt.kind) {
        case HM_EVT_ARRIVED: try_register(evt.dev); break;
        case HM_EVT_GONE: device_gone(evt.dev); break;
        case HM_EVT_FREED: free(evt.dev); break; /* the last event about it */
        case HM_EVT_URB_DONE: urb_done(evt.slot); break;
        case HM_EVT_REFUSED:
            usbip_event_log_add(usbip_server_events(g_hm.cfg.server), USBIP_EVENT_ERROR, NULL,
                                NULL, "%s", evt.text);
            break;
        }
    }
    if (g_hm.retry_awaiting) {
        retry_awaiting();
    }
}

void usb_host_mgr_device_freed(void *ctx, usbip_device_t *usbip)
{
    (void)ctx;
    hm_device_t *dev = (hm_device_t *)usbip; /* usbip is the first member */
    dev->registered = false;
    release_device(dev);
    /* Its bus id and table entry are free: a device waiting for either may
     * now be registered (after this hook: the registry is mid-call). */
    g_hm.retry_awaiting = true;
}

esp_err_t usb_host_mgr_power_cycle(void)
{
    if (!g_hm.commands) {
        return ESP_ERR_INVALID_STATE;
    }
    const hm_cmd_t cmd = {.kind = HM_CMD_POWER_CYCLE};
    return hm_send_command(&cmd) ? ESP_OK : ESP_ERR_NO_MEM;
}
