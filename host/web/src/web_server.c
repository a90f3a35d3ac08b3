/* web_server: see web_server.h. */
#include "web_server.h"

#include <civetweb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access_control.h"
#include "usbip_log.h"

static const char *TAG = "web";

#define MAX_QUEUED_FRAMES 8 /* per WebSocket client; beyond, it gets a fresh snapshot */

typedef struct pending_request {
    struct pending_request *next;
    webui_request_t req;
    webui_response_t resp;
    bool done;
} pending_request_t;

typedef struct frame {
    struct frame *next;
    size_t len;
    char text[];
} frame_t;

typedef struct ws_client {
    struct ws_client *next;
    struct mg_connection *conn;
    frame_t *frames, *frames_tail;
    size_t queued;
    bool greet;   /* needs a full snapshot first */
    bool writing; /* the sender thread is writing to conn */
    bool closed;
} ws_client_t;

struct web_server {
    web_server_config_t cfg;
    struct mg_context *ctx;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    pending_request_t *requests, *requests_tail;
    ws_client_t *clients;
    bool stopping;
    pthread_t sender;
    bool sender_started;
    uint16_t port;
};

static const char NOTICE_PAGE[] =
    "<!doctype html><meta charset=utf-8><title>usbip-server</title>"
    "<p>The dashboard page was not built into this server. Run <code>tools/build-web.sh</code> "
    "and build again; the JSON API is at <a href=/api/status>/api/status</a>.</p>";

/* ---- replies ---- */

static void send_reply(struct mg_connection *conn, int status, const char *type,
                       const char *extra_headers, const void *body, size_t len)
{
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
              "X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n"
              "Referrer-Policy: no-referrer\r\n%s\r\n",
              status, mg_get_response_code_text(conn, status), type, len,
              extra_headers ? extra_headers : "");
    if (len) {
        mg_write(conn, body, len);
    }
}

static int serve_page(struct mg_connection *conn, web_server_t *ws)
{
    static const char headers[] =
        "Cache-Control: no-cache\r\n"
        "Content-Security-Policy: default-src 'self'; script-src 'self' 'unsafe-inline'; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'\r\n";
    if (!ws->cfg.page_gz) {
        send_reply(conn, 200, "text/html; charset=utf-8", headers, NOTICE_PAGE,
                   sizeof NOTICE_PAGE - 1);
        return 200;
    }
    char all[sizeof headers + 64];
    snprintf(all, sizeof all, "%sContent-Encoding: gzip\r\nVary: Accept-Encoding\r\n", headers);
    send_reply(conn, 200, "text/html; charset=utf-8", all, ws->cfg.page_gz, ws->cfg.page_gz_len);
    return 200;
}

/* ---- API requests: queued to the loop thread ---- */

static bool read_body(struct mg_connection *conn, long long declared, char *buf, size_t cap,
                      size_t *len)
{
    *len = 0;
    if (declared < 0) {
        declared = 0; /* no Content-Length: no body (chunked bodies are not accepted) */
    }
    if ((unsigned long long)declared > cap) {
        return false;
    }
    while (*len < (size_t)declared) {
        int n = mg_read(conn, buf + *len, (size_t)declared - *len);
        if (n <= 0) {
            return false;
        }
        *len += (size_t)n;
    }
    return true;
}

/* Queue the request for the loop and wait for its answer. */
static void run_on_loop(web_server_t *ws, pending_request_t *p)
{
    pthread_mutex_lock(&ws->lock);
    if (ws->stopping) {
        pthread_mutex_unlock(&ws->lock);
        return;
    }
    if (ws->requests_tail) {
        ws->requests_tail->next = p;
    } else {
        ws->requests = p;
    }
    ws->requests_tail = p;
    pthread_mutex_unlock(&ws->lock);
    usbip_netloop_wake(ws->cfg.waker);
    pthread_mutex_lock(&ws->lock);
    while (!p->done && !ws->stopping) {
        pthread_cond_wait(&ws->changed, &ws->lock);
    }
    pthread_mutex_unlock(&ws->lock);
}

static int serve_api(struct mg_connection *conn, void *cbdata)
{
    web_server_t *ws = cbdata;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    const char *path = ri->local_uri ? ri->local_uri : "/";
    if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
        return serve_page(conn, ws);
    }
    static char too_large[] = "{\"error\":\"request body over 4096 bytes\",\"field\":\"body\"}";
    char body[WEBUI_MAX_BODY];
    size_t body_len = 0;
    if (!read_body(conn, ri->content_length, body, sizeof body, &body_len)) {
        send_reply(conn, 413, "application/json", "Connection: close\r\n", too_large,
                   sizeof too_large - 1);
        return 413;
    }
    usbip_ip_addr_t peer;
    memset(&peer, 0, sizeof peer);
    usbip_ip_addr_parse(ri->remote_addr, &peer);
    pending_request_t p = {
        .req = {.method = ri->request_method, .path = path, .query = ri->query_string,
                .body = body, .body_len = body_len, .cookie = mg_get_header(conn, "Cookie"),
                .csrf = mg_get_header(conn, "X-CSRF-Token"), .peer = &peer},
    };
    run_on_loop(ws, &p);
    if (!p.done) {
        static const char stopping[] = "{\"error\":\"the server is stopping\"}";
        send_reply(conn, 503, "application/json", NULL, stopping, sizeof stopping - 1);
        return 503;
    }
    char headers[320] = "Cache-Control: no-store\r\n";
    if (p.resp.set_cookie[0]) {
        size_t used = strlen(headers);
        snprintf(headers + used, sizeof headers - used, "Set-Cookie: %s\r\n",
                 p.resp.set_cookie);
    }
    send_reply(conn, p.resp.status, p.resp.content_type, headers, p.resp.body,
               p.resp.body_len);
    const int status = p.resp.status;
    webui_response_free(&p.resp);
    return status;
}

void web_server_process(web_server_t *ws, webui_t *ui)
{
    pthread_mutex_lock(&ws->lock);
    pending_request_t *list = ws->requests;
    ws->requests = ws->requests_tail = NULL;
    pthread_mutex_unlock(&ws->lock);
    for (pending_request_t *p = list, *next; p; p = next) {
        next = p->next;
        webui_handle(ui, &p->req, &p->resp);
        pthread_mutex_lock(&ws->lock);
        p->done = true; /* the worker owns p again from here */
        pthread_cond_broadcast(&ws->changed);
        pthread_mutex_unlock(&ws->lock);
    }
    /* New WebSocket clients get the whole picture first. */
    bool greeted = false;
    pthread_mutex_lock(&ws->lock);
    for (ws_client_t *c = ws->clients; c; c = c->next) {
        if (!c->greet || c->closed) {
            continue;
        }
        size_t len = 0;
        char *snapshot = webui_ws_snapshot(ui, &len);
        frame_t *f = snapshot ? malloc(sizeof *f + len) : NULL;
        if (f) {
            for (frame_t *old = c->frames, *n; old; old = n) { /* superseded */
                n = old->next;
                free(old);
            }
            f->next = NULL;
            f->len = len;
            memcpy(f->text, snapshot, len);
            c->frames = c->frames_tail = f;
            c->queued = 1;
            c->greet = false;
            greeted = true;
        }
        free(snapshot);
    }
    if (greeted) {
        pthread_cond_broadcast(&ws->changed);
    }
    pthread_mutex_unlock(&ws->lock);
}

/* ---- WebSocket ---- */

static void drop_frames(ws_client_t *c)
{
    for (frame_t *f = c->frames, *n; f; f = n) {
        n = f->next;
        free(f);
    }
    c->frames = c->frames_tail = NULL;
    c->queued = 0;
}

void web_server_broadcast(void *ctx, const char *text, size_t len)
{
    web_server_t *ws = ctx;
    pthread_mutex_lock(&ws->lock);
    for (ws_client_t *c = ws->clients; c; c = c->next) {
        if (c->closed || c->greet) {
            continue; /* a snapshot is coming anyway */
        }
        if (c->queued >= MAX_QUEUED_FRAMES) {
            drop_frames(c); /* a slow browser: catch up with one snapshot */
            c->greet = true;
            continue;
        }
        frame_t *f = malloc(sizeof *f + len);
        if (!f) {
            continue;
        }
        f->next = NULL;
        f->len = len;
        memcpy(f->text, text, len);
        if (c->frames_tail) {
            c->frames_tail->next = f;
        } else {
            c->frames = f;
        }
        c->frames_tail = f;
        c->queued++;
    }
    pthread_cond_broadcast(&ws->changed);
    pthread_mutex_unlock(&ws->lock);
}

static frame_t *next_frame(web_server_t *ws, ws_client_t **client)
{
    for (ws_client_t *c = ws->clients; c; c = c->next) {
        if (!c->closed && c->frames) {
            frame_t *f = c->frames;
            c->frames = f->next;
            if (!c->frames) {
                c->frames_tail = NULL;
            }
            c->queued--;
            *client = c;
            return f;
        }
    }
    return NULL;
}

/* Writes frames outside the loop thread: a browser that stops reading
 * blocks this thread, not the USB/IP server. */
static void *sender_main(void *arg)
{
    web_server_t *ws = arg;
    pthread_mutex_lock(&ws->lock);
    while (!ws->stopping) {
        ws_client_t *c = NULL;
        frame_t *f = next_frame(ws, &c);
        if (!f) {
            pthread_cond_wait(&ws->changed, &ws->lock);
            continue;
        }
        c->writing = true;
        pthread_mutex_unlock(&ws->lock);
        mg_lock_connection(c->conn);
        int n = mg_websocket_write(c->conn, MG_WEBSOCKET_OPCODE_TEXT, f->text, f->len);
        mg_unlock_connection(c->conn);
        free(f);
        pthread_mutex_lock(&ws->lock);
        c->writing = false;
        if (n <= 0) {
            c->closed = true; /* its close handler removes it */
        }
        pthread_cond_broadcast(&ws->changed);
    }
    pthread_mutex_unlock(&ws->lock);
    return NULL;
}

static int ws_connect(const struct mg_connection *conn, void *cbdata)
{
    (void)conn, (void)cbdata;
    return 0; /* accept */
}

static void ws_ready(struct mg_connection *conn, void *cbdata)
{
    web_server_t *ws = cbdata;
    ws_client_t *c = calloc(1, sizeof *c);
    if (!c) {
        return;
    }
    c->conn = conn;
    c->greet = true;
    pthread_mutex_lock(&ws->lock);
    c->next = ws->clients;
    ws->clients = c;
    pthread_mutex_unlock(&ws->lock);
    usbip_netloop_wake(ws->cfg.waker);
}

static int ws_data(struct mg_connection *conn, int bits, char *data, size_t len, void *cbdata)
{
    (void)conn, (void)data, (void)len, (void)cbdata;
    /* Read-only socket: keep it open unless the browser closes it. */
    return (bits & 0x0f) != MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE;
}

static void ws_close(const struct mg_connection *conn, void *cbdata)
{
    web_server_t *ws = cbdata;
    pthread_mutex_lock(&ws->lock);
    for (ws_client_t **link = &ws->clients; *link; link = &(*link)->next) {
        ws_client_t *c = *link;
        if (c->conn != conn) {
            continue;
        }
        c->closed = true;
        while (c->writing) { /* the connection is freed once we return */
            pthread_cond_wait(&ws->changed, &ws->lock);
        }
        *link = c->next;
        drop_frames(c);
        free(c);
        break;
    }
    pthread_mutex_unlock(&ws->lock);
}

/* ---- lifecycle ---- */

static int log_message(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    USBIP_LOGW(TAG, "%s", message);
    return 1;
}

usbip_err_t web_server_start(const web_server_config_t *cfg, web_server_t **out)
{
    web_server_t *ws = calloc(1, sizeof *ws);
    if (!ws) {
        return USBIP_ERR_NO_MEM;
    }
    ws->cfg = *cfg;
    pthread_mutex_init(&ws->lock, NULL);
    pthread_cond_init(&ws->changed, NULL);
    char listen[64];
    snprintf(listen, sizeof listen, "%s:%u", cfg->listen_address ? cfg->listen_address : "0.0.0.0",
             (unsigned)cfg->port);
    const char *options[] = {"listening_ports", listen, "num_threads", "4",
                             "request_timeout_ms", "10000", "enable_keep_alive", "yes", NULL};
    struct mg_callbacks callbacks;
    memset(&callbacks, 0, sizeof callbacks);
    callbacks.log_message = log_message;
    mg_init_library(0);
    ws->ctx = mg_start(&callbacks, ws, options);
    if (!ws->ctx) {
        USBIP_LOGE(TAG, "cannot serve the dashboard on %s (address in use or invalid)", listen);
        free(ws);
        return USBIP_ERR_IO;
    }
    struct mg_server_port ports[1];
    if (mg_get_server_ports(ws->ctx, 1, ports) > 0) {
        ws->port = (uint16_t)ports[0].port;
    }
    mg_set_request_handler(ws->ctx, "/", serve_api, ws);
    mg_set_websocket_handler(ws->ctx, "/ws", ws_connect, ws_ready, ws_data, ws_close, ws);
    ws->sender_started = pthread_create(&ws->sender, NULL, sender_main, ws) == 0;
    if (!ws->sender_started) {
        web_server_stop(ws);
        return USBIP_ERR_NO_MEM;
    }
    *out = ws;
    return USBIP_OK;
}

uint16_t web_server_port(const web_server_t *ws) { return ws->port; }

void web_server_stop(web_server_t *ws)
{
    if (!ws) {
        return;
    }
    pthread_mutex_lock(&ws->lock);
    ws->stopping = true;
    pthread_cond_broadcast(&ws->changed);
    pthread_mutex_unlock(&ws->lock);
    if (ws->sender_started) {
        pthread_join(ws->sender, NULL);
    }
    mg_stop(ws->ctx); /* waits for the workers, which see `stopping` */
    for (ws_client_t *c = ws->clients, *n; c; c = n) {
        n = c->next;
        drop_frames(c);
        free(c);
    }
    pthread_mutex_destroy(&ws->lock);
    pthread_cond_destroy(&ws->changed);
    free(ws);
}
