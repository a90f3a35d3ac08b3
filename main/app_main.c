/*
 * app_main: the firmware's start-up, in dependency order.
 *
 *  1. core port: log sink and clock, so the core can log from here on;
 *  2. settings from NVS (defaults if NVS is unusable: the server still runs);
 *  3. the USB/IP server (registry, access control, event log, sessions);
 *  4. the loop's waker (an eventfd), which every producer below rings;
 *  5. network: Ethernet, DHCP or static IPv4, hostname, mDNS;
 *  6. USB host (devices appear in the server from the server task);
 *  7. remote syslog;
 *  8. the dashboard's HTTP server (its engine is created by the server task);
 *  9. the server task on core 1, which from then on owns the core.
 *
 * A failure in 1-5 or 9 leaves no useful server: it is logged and the chip
 * restarts after a pause (so a boot loop stays readable on the console).
 * USB host, syslog and dashboard failures are logged and the server runs
 * without them.
 */
#include <stdio.h>
#include <string.h>

#include "core_port.h"
#include "esp_log.h"
#include "esp_system.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "network_mgr.h"
#include "nvs_store.h"
#include "remote_syslog.h"
#include "sdkconfig.h"
#include "server_task.h"
#include "usb_host_mgr.h"
#include "usbip_netloop.h"
#include "usbip_server.h"
#include "web_dashboard.h"

static const char *TAG = "app_main";

#define BOARD_NAME "ESP32-P4-Nano"
#define SYSLOG_LISTEN_PORT 1514
#define RESTART_DELAY_MS 5000

#define DEFAULT_HOSTNAME "usbip-esp32p4"

/* Every listener needs its own TCP port: lwIP refuses a second listener on
 * the same address and port (tcp_listen: ERR_USE), even with SO_REUSEADDR.
 * The dashboard listens first, so on the USB/IP port the server task could
 * not listen and the chip would restart over and over (restart_after). */
#if CONFIG_USBIP_DASHBOARD_PORT == CONFIG_USBIP_TCP_PORT || \
    CONFIG_USBIP_DASHBOARD_PORT == SYSLOG_LISTEN_PORT
#error "CONFIG_USBIP_DASHBOARD_PORT must differ from CONFIG_USBIP_TCP_PORT and the syslog port"
#endif

static usbip_netloop_waker_t s_waker;
static usbip_store_t s_store;
static char s_hostname[USBIP_HOSTNAME_SIZE];

__attribute__((noreturn)) static void restart_after(const char *what)
{
    ESP_LOGE(TAG, "%s failed: restarting in %d s", what, RESTART_DELAY_MS / 1000);
    vTaskDelay(pdMS_TO_TICKS(RESTART_DELAY_MS));
    esp_restart();
}

/* A stored setting that does not parse must not brick the board: the
 * settings are reset to defaults (logged, and recorded as an event). */
static usbip_server_t *create_server_resetting_bad_settings(usbip_server_config_t *cfg)
{
    char why[160] = "";
    usbip_server_t *server = NULL;
    usbip_err_t rc = usbip_server_create(cfg, &server, why, sizeof why);
    if (rc == USBIP_OK) {
        return server;
    }
    if (!cfg->store || rc == USBIP_ERR_NO_MEM) {
        ESP_LOGE(TAG, "usbip_server_create: %s %s", usbip_err_name(rc), why);
        return NULL;
    }
    ESP_LOGE(TAG, "stored settings refused (%s): resetting them to defaults", why);
    usbip_settings_t defaults;
    usbip_settings_defaults(&defaults);
    if (usbip_settings_save(&defaults, cfg->store) != USBIP_OK) {
        cfg->store = NULL; /* logged by the save: run on defaults, unsaved */
    }
    rc = usbip_server_create(cfg, &server, NULL, 0);
    if (rc != USBIP_OK) {
        ESP_LOGE(TAG, "usbip_server_create: %s", usbip_err_name(rc));
        return NULL;
    }
    usbip_event_log_add(usbip_server_events(server), USBIP_EVENT_ERROR, NULL, NULL,
                        "stored settings were invalid and were reset: %s", why);
    return server;
}

static usbip_server_t *create_server(void)
{
    usbip_server_config_t cfg;
    usbip_server_config_default(&cfg);
    cfg.max_devices = CONFIG_USBIP_MAX_DEVICES;
    cfg.max_clients = CONFIG_USBIP_MAX_CLIENTS;
    /* Every device comes from usb_host_mgr: it must hear when the registry
     * lets one go, or the USB side never closes it. cfg.complete stays NULL:
     * URB completions already reach the sessions on the server task
     * (usb_host_mgr_process), which is the "called directly" case. */
    cfg.device_freed = usb_host_mgr_device_freed;
    cfg.ctx = NULL;
    esp_err_t err = nvs_store_open(&s_store);
    if (err == ESP_OK) {
        cfg.store = &s_store;
    } else {
        ESP_LOGE(TAG, "settings store unavailable (%s): running on defaults, changes not saved",
                 esp_err_to_name(err));
    }
    return create_server_resetting_bad_settings(&cfg);
}

/* The stored hostname, else the configured one. Copied: from the server
 * task's start on, the settings belong to that task. */
static void choose_hostname(const usbip_settings_t *settings)
{
    const char *name = settings->hostname[0] ? settings->hostname : CONFIG_USBIP_HOSTNAME;
    const char *reason = NULL;
    if (name[0] == '\0' || usbip_hostname_check(name, &reason) != USBIP_OK) {
        ESP_LOGE(TAG, "hostname \"%s\" unusable (%s): using \"%s\"", name,
                 reason ? reason : "empty", DEFAULT_HOSTNAME);
        name = DEFAULT_HOSTNAME;
    }
    snprintf(s_hostname, sizeof s_hostname, "%s", name);
}

static esp_err_t start_network(const usbip_settings_t *settings)
{
    const network_mgr_config_t cfg = {
        .eth = {
            .mdc_gpio = CONFIG_USBIP_ETH_MDC_GPIO,
            .mdio_gpio = CONFIG_USBIP_ETH_MDIO_GPIO,
            .tx_en_gpio = CONFIG_USBIP_ETH_TX_EN_GPIO,
            .txd0_gpio = CONFIG_USBIP_ETH_TXD0_GPIO,
            .txd1_gpio = CONFIG_USBIP_ETH_TXD1_GPIO,
            .crs_dv_gpio = CONFIG_USBIP_ETH_CRS_DV_GPIO,
            .rxd0_gpio = CONFIG_USBIP_ETH_RXD0_GPIO,
            .rxd1_gpio = CONFIG_USBIP_ETH_RXD1_GPIO,
            .ref_clk_gpio = CONFIG_USBIP_ETH_REF_CLK_GPIO,
            .phy_reset_gpio = CONFIG_USBIP_ETH_PHY_RST_GPIO,
            .phy_addr = CONFIG_USBIP_ETH_PHY_ADDR,
        },
        .hostname = s_hostname,
        .net = &settings->net,
        .usbip_port = CONFIG_USBIP_TCP_PORT,
        .http_port = CONFIG_USBIP_DASHBOARD_PORT,
        .board = BOARD_NAME,
        .wake = usbip_netloop_wake,
        .wake_ctx = &s_waker,
    };
    return network_mgr_start(&cfg);
}

static void start_usb_host(usbip_server_t *server)
{
    const usb_host_mgr_config_t cfg = {
        .server = server,
        .wake = usbip_netloop_wake,
        .wake_ctx = &s_waker,
        .max_devices = CONFIG_USBIP_MAX_DEVICES,
        .transfer_pool_size = CONFIG_USBIP_TRANSFER_POOL_SIZE,
        .transfer_buffer_size = CONFIG_USBIP_TRANSFER_BUFFER_SIZE,
    };
    esp_err_t err = usb_host_mgr_start(&cfg);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "usb_host_mgr_start: %s: serving no USB devices", esp_err_to_name(err));
    }
}

static void start_remote_syslog(usbip_server_t *server, const usbip_settings_t *settings)
{
    const remote_syslog_config_t cfg = {
        .hostname = s_hostname,
        .app_name = "usbip",
        .listen_port = SYSLOG_LISTEN_PORT,
        .collector = settings->syslog_target,
        .events = usbip_server_events(server),
        .wake = usbip_netloop_wake,
        .wake_ctx = &s_waker,
    };
    esp_err_t err = remote_syslog_start(&cfg);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "remote_syslog_start: %s: no remote log", esp_err_to_name(err));
    }
}

static void start_dashboard(usbip_server_t *server)
{
    const web_dashboard_config_t cfg = {
        .server = server,
        .port = CONFIG_USBIP_DASHBOARD_PORT,
        .usbip_port = CONFIG_USBIP_TCP_PORT,
        .hostname = s_hostname,
        .pbkdf2_iterations = CONFIG_USBIP_DASHBOARD_PBKDF2_ITERATIONS,
        .wake = usbip_netloop_wake,
        .wake_ctx = &s_waker,
    };
    esp_err_t err = web_dashboard_start(&cfg);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "web_dashboard_start: %s: no dashboard", esp_err_to_name(err));
        return;
    }
    if (CONFIG_USBIP_DASHBOARD_PORT == 80) {
        ESP_LOGI(TAG, "dashboard: http://%s.local/", s_hostname);
    } else {
        ESP_LOGI(TAG, "dashboard: http://%s.local:%d/", s_hostname, CONFIG_USBIP_DASHBOARD_PORT);
    }
}

void app_main(void)
{
    core_port_install();
    usbip_server_t *server = create_server();
    if (!server) {
        restart_after("creating the USB/IP server");
    }
    /* Read only until the server task starts, which then owns the settings. */
    const usbip_settings_t *settings = usbip_server_settings(server);
    choose_hostname(settings);
    if (core_port_open_waker(&s_waker) != ESP_OK) {
        restart_after("creating the wake-up eventfd");
    }
    if (start_network(settings) != ESP_OK) {
        restart_after("starting the network");
    }
    start_usb_host(server);
    start_remote_syslog(server, settings);
    start_dashboard(server);
    if (server_task_start(server, &s_waker, CONFIG_USBIP_TCP_PORT) != ESP_OK) {
        restart_after("starting the server task");
    }
    ESP_LOGI(TAG, "%s.local ready: USB/IP port %d, up to %d clients and %d devices", s_hostname,
             CONFIG_USBIP_TCP_PORT, CONFIG_USBIP_MAX_CLIENTS, CONFIG_USBIP_MAX_DEVICES);
}
