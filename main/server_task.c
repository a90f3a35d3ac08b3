/*
 * server_task: see server_task.h.
 */
#include "server_task.h"

#include "esp_log.h"
#include "esp_system.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "network_mgr.h"
#include "remote_syslog.h"
#include "usb_host_mgr.h"
#include "web_dashboard.h"

static const char *TAG = "server_task";

/* Pinned away from core 0, where the default event loop task, mdns and the
 * USB host tasks are pinned (lwIP and the EMAC receive task are unpinned by
 * default and may run on either core). Above mdns (1) and below the EMAC
 * receive task (15) and lwIP (18), so the stack keeps feeding us. Bytes, not
 * words, on ESP-IDF. */
#define SERVER_TASK_CORE 1
#define SERVER_TASK_PRIORITY 10
#define SERVER_TASK_STACK_BYTES 12288

static usbip_netloop_t *s_loop;

/* Devices present (listed or imported), for the mDNS TXT record. */
static size_t device_count(usbip_server_t *server)
{
    const usbip_registry_t *reg = usbip_server_registry(server);
    size_t count = 0;
    for (size_t i = 0; i < reg->capacity; i++) {
        count += reg->entries[i].used && reg->entries[i].state != USBIP_DEV_GONE;
    }
    return count;
}

/* The loop's device hook: everything other tasks handed over since the last
 * iteration, run here because only this task may touch the core. The
 * dashboard comes last, so its replies and pushes see the rest applied. */
static void poll_devices(void *ctx, uint64_t now_ms)
{
    usbip_server_t *server = ctx;
    usb_host_mgr_process();
    remote_syslog_process();
    network_mgr_process(usbip_server_events(server));
    network_mgr_set_device_count(device_count(server));
    web_dashboard_process(now_ms);
}

/* The loop's timer hook: the dashboard's 1 s bandwidth samples and 500 ms
 * pushes must happen when no socket, USB event or request wakes the loop. */
static int next_timeout_ms(void *ctx, uint64_t now_ms)
{
    (void)ctx;
    return web_dashboard_next_timeout_ms(now_ms);
}

static void server_task(void *arg)
{
    (void)arg;
    ESP_LOGI(TAG, "serving USB/IP on port %u", (unsigned)usbip_netloop_port(s_loop));
    usbip_netloop_run(s_loop);
    /* Nothing stops the loop on purpose: it ended because poll() failed or
     * memory ran out. A server that no longer listens is useless; restart. */
    ESP_LOGE(TAG, "network loop ended: restarting");
    esp_restart();
}

esp_err_t server_task_start(usbip_server_t *server, usbip_netloop_waker_t *waker, uint16_t port)
{
    usbip_netloop_config_t cfg;
    usbip_netloop_config_default(&cfg);
    cfg.server = server;
    cfg.waker = waker;
    cfg.port = port;
    cfg.poll_devices = poll_devices;
    cfg.next_timeout_ms = next_timeout_ms;
    cfg.device_ctx = server;
    /* USB completions wake the loop; this bounds how long mDNS and the event
     * log may lag when nothing else happens. */
    cfg.max_wait_ms = 1000;
    usbip_err_t err = usbip_netloop_create(&cfg, &s_loop);
    if (err != USBIP_OK) {
        ESP_LOGE(TAG, "cannot listen on port %u: %s", (unsigned)port, usbip_err_name(err));
        return ESP_FAIL;
    }
    BaseType_t created = xTaskCreatePinnedToCore(server_task, "usbip_server",
                                                 SERVER_TASK_STACK_BYTES, NULL,
                                                 SERVER_TASK_PRIORITY, NULL, SERVER_TASK_CORE);
    if (created != pdPASS) {
        ESP_LOGE(TAG, "cannot create the server task");
        usbip_netloop_destroy(s_loop);
        s_loop = NULL;
        return ESP_ERR_NO_MEM;
    }
    return ESP_OK;
}
