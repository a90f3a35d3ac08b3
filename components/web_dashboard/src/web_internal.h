/*
 * web_dashboard internals: the WebSocket clients (web_ws.c) and the engine's
 * port hooks (web_hooks.c), used by web_dashboard.c.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esp_err.h"
#include "esp_http_server.h"
#include "webui.h"

#define WEB_TAG "web_dashboard"

/* ---- web_ws.c ---- */

/* Allocate the client table (one slot per HTTP session) and its lock. Before
 * httpd_start(): the close hook may run as soon as the server accepts. */
esp_err_t web_ws_init(size_t max_clients);

/* The running server, for httpd_queue_work(). After httpd_start(). */
void web_ws_attach(httpd_handle_t httpd);

/* httpd task, after a handshake on /ws: register fd (false: table full). */
bool web_ws_add(int fd);

/* httpd task (the session close hook): forget fd and its queued frames. */
void web_ws_remove(int fd);

/* Server task: new clients make the next push carry everything
 * (webui_ws_client_joined); clients that fell behind get a snapshot. */
void web_ws_serve(webui_t *ui);

/* Server task: webui_port_t.broadcast. */
void web_ws_broadcast(void *ctx, const char *text, size_t len);

/* ---- web_hooks.c ---- */

/* Fill the crypto, system information and action hooks of port. */
void web_hooks_fill(webui_port_t *port);
