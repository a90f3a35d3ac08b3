/*
 * web_dashboard (ESP-IDF only): the dashboard of docs/api.md on the
 * firmware. esp_http_server serves the embedded page, the JSON API,
 * /metrics and the /ws push; the portable engine (components/webui) answers.
 *
 * Threads. The httpd task parses requests, queues each one for the server
 * task, rings the loop's waker and waits; web_dashboard_process(), called by
 * the server task (the owner of the core), runs webui_handle() and hands the
 * reply back, which the httpd task then sends. WebSocket updates are built in
 * the server task and written by the httpd task (httpd_queue_work), so a
 * browser that stops reading never blocks the USB/IP server: its frames pile
 * up to a limit, then are dropped and it gets a fresh snapshot instead.
 */
#pragma once

#include <stdint.h>

#include "esp_err.h"
#include "usbip_server.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    usbip_server_t *server;
    uint16_t port;              /* HTTP port (CONFIG_USBIP_DASHBOARD_PORT) */
    uint16_t usbip_port;        /* shown in /api/status */
    const char *hostname;       /* shown in the page header; copied */
    uint32_t pbkdf2_iterations; /* for new password hashes */
    /* Rings the server loop (usbip_netloop_wake) from the httpd task. */
    void (*wake)(void *ctx);
    void *wake_ctx;
} web_dashboard_config_t;

/* Start the HTTP server. Call once, after the network is up (lwIP) and before
 * the server task starts; the engine itself is created by the first
 * web_dashboard_process(). Logged errors: ESP_ERR_INVALID_ARG, ESP_ERR_NO_MEM
 * or esp_http_server's own (e.g. the port is taken). */
esp_err_t web_dashboard_start(const web_dashboard_config_t *cfg);

/* Server task, every loop turn: answer the queued requests, greet new
 * WebSocket clients, sample bandwidth and push updates. No-op before a
 * successful web_dashboard_start(). */
void web_dashboard_process(uint64_t now_ms);

/* Server task: ms until web_dashboard_process() wants to run again even if
 * nothing wakes the loop (the 500 ms pushes, the 1 s samples); -1: never. */
int web_dashboard_next_timeout_ms(uint64_t now_ms);

#ifdef __cplusplus
}
#endif
