/*
 * web_server: the dashboard over HTTP and WebSocket on the host (CivetWeb).
 *
 * CivetWeb answers on its own worker threads, but the core belongs to the
 * server loop's thread. So a worker queues each API request here, rings the
 * loop's waker and waits; the loop calls web_server_process(), which runs
 * webui_handle() and wakes the worker to send the reply. WebSocket frames
 * go the other way through a sender thread, so a slow browser never holds
 * up the loop. The page itself (a gzipped bundle) is served by the workers
 * without involving the loop.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "usbip_err.h"
#include "usbip_netloop.h"
#include "webui.h"

typedef struct {
    const char *listen_address; /* numeric IPv4, e.g. "127.0.0.1" or "0.0.0.0" */
    uint16_t port;              /* 0: pick a free one (see web_server_port) */
    const uint8_t *page_gz;     /* the dashboard bundle (gzip); NULL: a notice page */
    size_t page_gz_len;
    usbip_netloop_waker_t *waker;
} web_server_config_t;

typedef struct web_server web_server_t;

/* Start listening. IO with a log line naming the address if it cannot. */
usbip_err_t web_server_start(const web_server_config_t *cfg, web_server_t **out);
uint16_t web_server_port(const web_server_t *ws);

/* Loop thread: answer queued requests and greet new WebSocket clients. */
void web_server_process(web_server_t *ws, webui_t *ui);

/* webui_port_t.broadcast (loop thread): queue a frame for every WebSocket
 * client; ctx is the web_server_t. */
void web_server_broadcast(void *ctx, const char *text, size_t len);

/* Stop serving; waiting workers get 503. Any thread but a worker. */
void web_server_stop(web_server_t *ws);
