/*
 * usb_host_mgr: start-up and the USB Host Library's daemon task. See
 * usb_host_mgr.h; the two halves are usb_client_task.c and usb_backend.c.
 */
#include "usb_host_mgr.h"

#include <string.h>

#include "esp_intr_alloc.h"
#include "esp_log.h"
#include "freertos/task.h"
#include "host_mgr_internal.h"

static const char *TAG = "usb_host_mgr";

/* The daemon runs enumeration and relays control transfers, so it sits just
 * above the client task, with it on core 0: after an EP0 STALL it clears
 * the pipe before the client task can submit the next control transfer. */
#define DAEMON_TASK_CORE 0
#define DAEMON_TASK_PRIORITY 13
#define DAEMON_TASK_STACK_BYTES 4096

hm_state_t g_hm;

static void daemon_task(void *arg)
{
    (void)arg;
    for (;;) {
        uint32_t flags = 0;
        /* NO_CLIENTS / ALL_FREE matter only when uninstalling: we never do. */
        usb_host_lib_handle_events(portMAX_DELAY, &flags);
    }
}

static esp_err_t create_queues(void)
{
    const size_t pool = g_hm.cfg.transfer_pool_size;
    const size_t devices = g_hm.cfg.max_devices;
    /* Commands: a submit and an unlink per pool entry, attach/detach/release
     * per device. Events: one completion per pool entry, arrival, departure
     * and freeing per device, and room for a burst of refusals. */
    g_hm.commands = xQueueCreate(2 * pool + 3 * devices + 8, sizeof(hm_cmd_t));
    g_hm.events = xQueueCreate(pool + 4 * devices + HM_CLIENT_EVENTS, sizeof(hm_evt_t));
    g_hm.sync_done = xSemaphoreCreateBinary();
    return g_hm.commands && g_hm.events && g_hm.sync_done ? ESP_OK : ESP_ERR_NO_MEM;
}

static esp_err_t check_config(const usb_host_mgr_config_t *cfg)
{
    if (!cfg || !cfg->server || !cfg->wake || cfg->max_devices == 0 ||
        cfg->transfer_pool_size == 0 || cfg->transfer_buffer_size < 4096) {
        ESP_LOGE(TAG, "invalid configuration (server, wake, devices, pool, buffer >= 4096)");
        return ESP_ERR_INVALID_ARG;
    }
    return ESP_OK;
}

esp_err_t usb_host_mgr_start(const usb_host_mgr_config_t *cfg)
{
    esp_err_t err = check_config(cfg);
    if (err != ESP_OK) {
        return err;
    }
    if (g_hm.commands) {
        return ESP_ERR_INVALID_STATE; /* started already */
    }
    g_hm.cfg = *cfg;
    err = create_queues();
    if (err != ESP_OK) {
        return err;
    }
    const usb_host_config_t host_cfg = {
        .skip_phy_setup = false,      /* the library sets up the internal UTMI PHY */
        .root_port_unpowered = false, /* devices may enumerate at once */
        .intr_flags = ESP_INTR_FLAG_LEVEL1,
    };
    err = usb_host_install(&host_cfg);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "usb_host_install: %s", esp_err_to_name(err));
        return err;
    }
    if (xTaskCreatePinnedToCore(daemon_task, "usb_daemon", DAEMON_TASK_STACK_BYTES, NULL,
                                DAEMON_TASK_PRIORITY, NULL, DAEMON_TASK_CORE) != pdPASS) {
        return ESP_ERR_NO_MEM;
    }
    err = hm_pool_create();
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "transfer pool of %u x %u bytes: %s", (unsigned)cfg->transfer_pool_size,
                 (unsigned)cfg->transfer_buffer_size, esp_err_to_name(err));
        return err;
    }
    err = hm_client_task_start();
    if (err != ESP_OK) {
        return err;
    }
    ESP_LOGI(TAG, "USB host ready: up to %u devices, %u transfers of %u bytes",
             (unsigned)cfg->max_devices, (unsigned)cfg->transfer_pool_size,
             (unsigned)cfg->transfer_buffer_size);
    return ESP_OK;
}
