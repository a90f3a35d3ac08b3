/*
 * web_dashboard: see web_dashboard.h. This file holds the HTTP side (server
 * start, handlers, replies) and the hand-over of API requests to the server
 * task; web_ws.c holds the WebSocket clients, web_hooks.c the engine's hooks.
 *
 * A request's life: the httpd task reads the body (at most WEBUI_MAX_BODY),
 * copies what the engine needs (method, path, query, Cookie, X-CSRF-Token,
 * peer) into a heap block, appends it to the pending list, rings the loop's
 * waker and waits on the block's semaphore. web_dashboard_process() (server
 * task) takes the whole list, runs webui_handle() on each entry and gives the
 * semaphore; the httpd task then sends the reply and frees the block.
 */
#include "web_dashboard.h"

#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "access_control.h"
#include "esp_app_desc.h"
#include "esp_heap_caps.h"
#include "esp_http_server.h"
#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "freertos/semphr.h"
#include "http_parser.h" /* http_method_str */
#include "sdkconfig.h"
#include "web_internal.h"
#include "webui.h"

#ifndef CONFIG_HTTPD_WS_SUPPORT
#error "the dashboard's /ws needs CONFIG_HTTPD_WS_SUPPORT=y (sdkconfig.defaults)"
#endif

static const char *TAG = WEB_TAG;

/* ---- sizing ---- */

/* Socket budget. esp_http_server holds max_open_sockets + 3 lwIP sockets
 * (listener and the two ends of its control socket) and refuses to start
 * when that exceeds CONFIG_LWIP_MAX_SOCKETS (httpd_start). The other users:
 * the USB/IP listener, its clients and one being refused, and the remote
 * syslog listener, its 3 clients and the collector connection. The eventfd
 * waker is not an lwIP socket; mDNS and DHCP use lwIP's raw API. With the
 * largest CONFIG_USBIP_MAX_CLIENTS (8) and LWIP_MAX_SOCKETS 24 this leaves 6
 * HTTP sessions: a browser's few parallel connections plus one /ws per tab.
 * lru_purge_enable closes the least recently used session when all 6 are
 * taken (live /ws sessions stay fresh: every frame sent counts as use). */
#define HTTP_MAX_OPEN_SOCKETS 6
#define HTTPD_INTERNAL_SOCKETS 3
#define USBIP_SOCKETS (1 + CONFIG_USBIP_MAX_CLIENTS + 1)
#define SYSLOG_SOCKETS (1 + 3 + 1)
_Static_assert(USBIP_SOCKETS + SYSLOG_SOCKETS + HTTP_MAX_OPEN_SOCKETS + HTTPD_INTERNAL_SOCKETS <=
                   CONFIG_LWIP_MAX_SOCKETS,
               "CONFIG_LWIP_MAX_SOCKETS too small for USB/IP, syslog and the dashboard");

/* Handlers: "/", "/index.html", "/ws", and the "/api/" wildcard and
 * "/metrics" for any method (5, room to spare). Response headers set here:
 * at most 7 (the page). */
#define HTTP_MAX_URI_HANDLERS 10
#define HTTP_MAX_RESP_HEADERS 10

/* Bytes. The handlers and the WebSocket writer run here, and every log
 * line passes through the remote syslog hook on this stack. */
#define HTTPD_STACK_BYTES 6144

/* How long the httpd task waits for the server task to pick a request up
 * (a PBKDF2 login takes a fraction of a second; the loop turns far faster). */
#define REQUEST_TIMEOUT_MS 15000
/* Receive timeouts (recv_wait_timeout, 5 s, each) tolerated while reading a body. */
#define BODY_RECV_RETRIES 2
/* Above this a too-large body is not drained: the connection is closed. */
#define DRAIN_LIMIT_BYTES (64u * 1024u)
/* A browser never sends on /ws; anything bigger than a close frame is abuse. */
#define WS_IGNORED_FRAME_MAX 125

/* ---- the embedded page (EMBED_FILES .../web/dist/index.html.gz) ---- */

extern const uint8_t page_gz_start[] asm("_binary_index_html_gz_start");
extern const uint8_t page_gz_end[] asm("_binary_index_html_gz_end");

/* Same policy as the daemon's binding (host/web/src/web_server.c). */
static const char PAGE_CSP[] =
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

/* ---- state ---- */

typedef enum {
    REQ_QUEUED,  /* in the pending list */
    REQ_RUNNING, /* taken by the server task: it will answer */
    REQ_DONE,
} req_state_t;

typedef struct pending {
    struct pending *next;
    req_state_t state;          /* under s_dash->lock */
    SemaphoreHandle_t answered; /* given by the server task once resp is set */
    webui_request_t req;
    webui_response_t resp;
    usbip_ip_addr_t peer;
    char *cookie; /* malloc'd header copies, or NULL */
    char *csrf;
    char status_line[32];
    char uri[HTTPD_MAX_URI_LEN + 1]; /* path, then the query after a NUL */
    char body[WEBUI_MAX_BODY];
} pending_t;

typedef struct {
    web_dashboard_config_t cfg;
    char hostname[64];
    httpd_handle_t httpd;
    SemaphoreHandle_t lock;
    pending_t *head; /* FIFO, under lock */
    pending_t *tail;
    /* Server task only: */
    webui_t *ui;
    bool ui_failure_logged;
    bool has_deadline;
    uint64_t deadline_ms; /* when webui_tick() wants to run again */
} dashboard_t;

static dashboard_t *s_dash;

/* ---- replies (httpd task) ---- */

static const char *status_line(int status, char *buf, size_t len)
{
    switch (status) {
    case 200: return "200 OK";
    case 400: return "400 Bad Request";
    case 401: return "401 Unauthorized";
    case 403: return "403 Forbidden";
    case 404: return "404 Not Found";
    case 405: return "405 Method Not Allowed";
    case 413: return "413 Content Too Large";
    case 429: return "429 Too Many Requests";
    case 500: return "500 Internal Server Error";
    case 501: return "501 Not Implemented";
    case 503: return "503 Service Unavailable";
    default:
        snprintf(buf, len, "%03d %s", status, status >= 500 ? "Server Error" : "Status");
        return buf;
    }
}

/* On every reply, as the daemon's binding does. */
static void set_common_headers(httpd_req_t *req)
{
    httpd_resp_set_hdr(req, "X-Content-Type-Options", "nosniff");
    httpd_resp_set_hdr(req, "X-Frame-Options", "DENY");
    httpd_resp_set_hdr(req, "Referrer-Policy", "no-referrer");
}

/* A JSON reply made here, without the engine. */
static esp_err_t reply_local(httpd_req_t *req, const char *status, const char *json, bool close)
{
    httpd_resp_set_status(req, status);
    httpd_resp_set_type(req, "application/json");
    httpd_resp_set_hdr(req, "Cache-Control", "no-store");
    set_common_headers(req);
    if (close) {
        httpd_resp_set_hdr(req, "Connection", "close");
    }
    return httpd_resp_send(req, json, HTTPD_RESP_USE_STRLEN);
}

static esp_err_t send_engine_reply(httpd_req_t *req, pending_t *p)
{
    httpd_resp_set_status(req, status_line(p->resp.status, p->status_line, sizeof p->status_line));
    httpd_resp_set_type(req, p->resp.content_type ? p->resp.content_type : "application/json");
    httpd_resp_set_hdr(req, "Cache-Control", "no-store");
    set_common_headers(req);
    if (p->resp.set_cookie[0]) {
        httpd_resp_set_hdr(req, "Set-Cookie", p->resp.set_cookie);
    }
    return httpd_resp_send(req, p->resp.body ? p->resp.body : "", (ssize_t)p->resp.body_len);
}

/* ---- the page ---- */

static esp_err_t page_handler(httpd_req_t *req)
{
    const size_t len = (size_t)(page_gz_end - page_gz_start);
    httpd_resp_set_type(req, "text/html; charset=utf-8");
    httpd_resp_set_hdr(req, "Content-Encoding", "gzip");
    httpd_resp_set_hdr(req, "Vary", "Accept-Encoding");
    httpd_resp_set_hdr(req, "Cache-Control", "no-cache");
    httpd_resp_set_hdr(req, "Content-Security-Policy", PAGE_CSP);
    set_common_headers(req);
    return httpd_resp_send(req, (const char *)page_gz_start, (ssize_t)len);
}

/* ---- API requests: copied, queued to the server task, answered ---- */

/* The method's name ("GET", "DELETE", ...): every method reaches the engine
 * (HTTP_ANY below), which answers 405 for those an endpoint does not take. */
static const char *method_name(int method)
{
    return http_method_str((enum http_method)method);
}

/* A header's value, malloc'd; NULL when absent, empty or out of memory. */
static char *header_copy(httpd_req_t *req, const char *name)
{
    const size_t len = httpd_req_get_hdr_value_len(req, name);
    if (len == 0) {
        return NULL;
    }
    char *value = malloc(len + 1);
    if (value && httpd_req_get_hdr_value_str(req, name, value, len + 1) != ESP_OK) {
        free(value);
        value = NULL;
    }
    return value;
}

/* The client's address. The server listens on an IPv6 socket when lwIP has
 * IPv6 (the default), so IPv4 clients show as ::ffff:a.b.c.d: those are
 * reported as the IPv4 address, as the access control and event log expect. */
static bool peer_address(int fd, usbip_ip_addr_t *out)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) != 0) {
        return false;
    }
    memset(out, 0, sizeof *out);
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
        out->family = 4;
        memcpy(out->bytes, &sin->sin_addr, 4); /* network order */
        return true;
    }
#if CONFIG_LWIP_IPV6
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
        usbip_ip_addr_t v6;
        memset(&v6, 0, sizeof v6);
        v6.family = 6;
        memcpy(v6.bytes, &sin6->sin6_addr, 16);
        if (!usbip_ip_addr_is_v4_mapped(&v6, out)) {
            *out = v6;
        }
        return true;
    }
#endif
    return false;
}

static bool read_body(httpd_req_t *req, char *buf, size_t want)
{
    size_t got = 0;
    int timeouts = 0;
    while (got < want) {
        const int n = httpd_req_recv(req, buf + got, want - got);
        if (n == HTTPD_SOCK_ERR_TIMEOUT && ++timeouts <= BODY_RECV_RETRIES) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        got += (size_t)n;
    }
    return true;
}

static void pending_free(pending_t *p)
{
    if (!p) {
        return;
    }
    webui_response_free(&p->resp);
    free(p->cookie);
    free(p->csrf);
    if (p->answered) {
        vSemaphoreDelete(p->answered);
    }
    heap_caps_free(p);
}

/* Copy what the engine reads; everything points into p. */
static void fill_request(httpd_req_t *req, pending_t *p, size_t body_len)
{
    snprintf(p->uri, sizeof p->uri, "%s", req->uri);
    char *query = strchr(p->uri, '?');
    if (query) {
        *query++ = '\0';
    }
    p->cookie = header_copy(req, "Cookie");
    p->csrf = header_copy(req, "X-CSRF-Token");
    p->req = (webui_request_t){
        .method = method_name(req->method),
        .path = p->uri,
        .query = query,
        .body = p->body,
        .body_len = body_len,
        .cookie = p->cookie,
        .csrf = p->csrf,
        .peer = peer_address(httpd_req_to_sockfd(req), &p->peer) ? &p->peer : NULL,
    };
}

static void unlink_pending(dashboard_t *d, pending_t *p)
{
    pending_t *prev = NULL;
    for (pending_t *it = d->head; it; prev = it, it = it->next) {
        if (it != p) {
            continue;
        }
        if (prev) {
            prev->next = p->next;
        } else {
            d->head = p->next;
        }
        if (d->tail == p) {
            d->tail = prev;
        }
        p->next = NULL;
        return;
    }
}

/* Queue p for the server task and wait for its answer. False: not picked up
 * in time (p is back in our hands, unanswered). */
static bool run_on_server_task(dashboard_t *d, pending_t *p)
{
    xSemaphoreTake(d->lock, portMAX_DELAY);
    p->state = REQ_QUEUED;
    p->next = NULL;
    if (d->tail) {
        d->tail->next = p;
    } else {
        d->head = p;
    }
    d->tail = p;
    xSemaphoreGive(d->lock);
    d->cfg.wake(d->cfg.wake_ctx);

    if (xSemaphoreTake(p->answered, pdMS_TO_TICKS(REQUEST_TIMEOUT_MS)) == pdTRUE) {
        return true;
    }
    xSemaphoreTake(d->lock, portMAX_DELAY);
    const bool still_queued = p->state == REQ_QUEUED;
    if (still_queued) {
        unlink_pending(d, p);
    }
    xSemaphoreGive(d->lock);
    if (still_queued) {
        ESP_LOGW(TAG, "%s %s: the server task did not take the request within %d s", p->req.method,
                 p->req.path, REQUEST_TIMEOUT_MS / 1000);
        return false;
    }
    /* Taken: the server task is answering it right now and will give. */
    xSemaphoreTake(p->answered, portMAX_DELAY);
    return true;
}

static esp_err_t reply_too_large(httpd_req_t *req)
{
    char json[96];
    snprintf(json, sizeof json, "{\"error\":\"request body over %u bytes\",\"field\":\"body\"}",
             (unsigned)WEBUI_MAX_BODY);
    esp_err_t err = reply_local(req, "413 Content Too Large", json, true);
    /* A moderate excess is drained by the server after we return, so the
     * browser reads the reply; a huge one is cut off by closing. */
    return err == ESP_OK && req->content_len <= DRAIN_LIMIT_BYTES ? ESP_OK : ESP_FAIL;
}

static esp_err_t api_handler(httpd_req_t *req)
{
    dashboard_t *d = s_dash;
    if (req->content_len > WEBUI_MAX_BODY) {
        return reply_too_large(req);
    }
    /* ~5 KiB, for the time of one request: PSRAM first. */
    pending_t *p = heap_caps_calloc_prefer(1, sizeof *p, 2,
                                           (uint32_t)(MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT),
                                           (uint32_t)MALLOC_CAP_DEFAULT);
    if (p) {
        p->answered = xSemaphoreCreateBinary();
    }
    if (!p || !p->answered) {
        pending_free(p);
        return reply_local(req, "503 Service Unavailable", "{\"error\":\"out of memory\"}", false);
    }
    if (!read_body(req, p->body, req->content_len)) {
        pending_free(p);
        return ESP_FAIL; /* the connection broke or stalled: close it */
    }
    fill_request(req, p, req->content_len);
    esp_err_t err;
    if (run_on_server_task(d, p)) {
        err = send_engine_reply(req, p);
    } else {
        err = reply_local(req, "503 Service Unavailable",
                          "{\"error\":\"the server is busy, try again\"}", false);
    }
    pending_free(p);
    return err;
}

/* ---- WebSocket ---- */

static esp_err_t ws_handler(httpd_req_t *req)
{
    if (req->method == HTTP_GET) {
        /* Called right after the handshake, or for a plain GET without
         * "Upgrade: websocket" (no handshake then). */
        const int fd = httpd_req_to_sockfd(req);
        if (httpd_ws_get_fd_info(req->handle, fd) != HTTPD_WS_CLIENT_WEBSOCKET) {
            return reply_local(req, "400 Bad Request",
                               "{\"error\":\"WebSocket upgrade required\"}", false);
        }
        if (!web_ws_add(fd)) {
            ESP_LOGW(TAG, "no WebSocket slot for socket %d", fd);
            return ESP_FAIL; /* closes it */
        }
        s_dash->cfg.wake(s_dash->cfg.wake_ctx); /* the server task announces it */
        return ESP_OK;
    }
    /* A data frame: the socket is read-only, so read it and drop it. Control
     * frames (ping, close) are answered by the server itself. */
    httpd_ws_frame_t frame;
    memset(&frame, 0, sizeof frame);
    esp_err_t err = httpd_ws_recv_frame(req, &frame, 0); /* header only: the length */
    if (err != ESP_OK || frame.len == 0) {
        return err;
    }
    if (frame.len > WS_IGNORED_FRAME_MAX) {
        return ESP_FAIL;
    }
    uint8_t payload[WS_IGNORED_FRAME_MAX];
    frame.payload = payload;
    return httpd_ws_recv_frame(req, &frame, sizeof payload);
}

/* Session close hook: every session, not only /ws. esp_http_server leaves
 * closing the socket to this hook once one is set. */
static void on_session_close(httpd_handle_t hd, int sockfd)
{
    (void)hd;
    web_ws_remove(sockfd);
    close(sockfd);
}

/* ---- the server task's side ---- */

static void create_engine(dashboard_t *d)
{
    webui_port_t port;
    memset(&port, 0, sizeof port);
    port.version = esp_app_get_description()->version;
    port.platform = "esp32p4";
    port.hostname = d->hostname;
    port.usbip_port = d->cfg.usbip_port;
    port.pbkdf2_iterations = d->cfg.pbkdf2_iterations;
    web_hooks_fill(&port);
    port.broadcast = web_ws_broadcast;
    port.ctx = NULL;
    const usbip_err_t err = webui_create(d->cfg.server, &port, &d->ui);
    if (err != USBIP_OK) {
        d->ui = NULL;
        if (!d->ui_failure_logged) {
            ESP_LOGE(TAG, "webui_create: %s: answering 503 until it succeeds", usbip_err_name(err));
            d->ui_failure_logged = true;
        }
    }
}

static void reply_unavailable(webui_response_t *resp)
{
    static const char body[] = "{\"error\":\"the dashboard is out of memory\"}";
    memset(resp, 0, sizeof *resp);
    resp->status = 503;
    resp->content_type = "application/json";
    resp->body = malloc(sizeof body);
    if (resp->body) {
        memcpy(resp->body, body, sizeof body);
        resp->body_len = sizeof body - 1;
    }
}

void web_dashboard_process(uint64_t now_ms)
{
    dashboard_t *d = s_dash;
    if (!d) {
        return;
    }
    if (!d->ui) {
        create_engine(d);
    }

    xSemaphoreTake(d->lock, portMAX_DELAY);
    pending_t *list = d->head;
    d->head = d->tail = NULL;
    for (pending_t *p = list; p; p = p->next) {
        p->state = REQ_RUNNING;
    }
    xSemaphoreGive(d->lock);
    for (pending_t *p = list, *next; p; p = next) {
        next = p->next; /* p belongs to the httpd task again once answered */
        if (d->ui) {
            webui_handle(d->ui, &p->req, &p->resp);
        } else {
            reply_unavailable(&p->resp);
        }
        xSemaphoreTake(d->lock, portMAX_DELAY);
        p->state = REQ_DONE;
        xSemaphoreGive(d->lock);
        xSemaphoreGive(p->answered);
    }

    if (d->ui) {
        web_ws_serve(d->ui);
        const int wait_ms = webui_tick(d->ui, now_ms);
        d->deadline_ms = now_ms + (uint64_t)(wait_ms > 0 ? wait_ms : 0);
        d->has_deadline = true;
    }
}

int web_dashboard_next_timeout_ms(uint64_t now_ms)
{
    const dashboard_t *d = s_dash;
    if (!d || !d->has_deadline) {
        return -1;
    }
    if (d->deadline_ms <= now_ms) {
        return 0;
    }
    const uint64_t wait = d->deadline_ms - now_ms;
    return wait > INT_MAX ? INT_MAX : (int)wait;
}

/* ---- start ---- */

static esp_err_t register_handlers(httpd_handle_t h)
{
    /* Any method, not only GET/POST/PUT: for the others esp_http_server
     * would answer 405 itself, with an HTML body, where docs/api.md (and the
     * daemon) give the engine's JSON error. */
    static const char *const api_uris[] = {"/api/*", "/metrics"};
    esp_err_t err = ESP_OK;
    for (size_t u = 0; err == ESP_OK && u < sizeof api_uris / sizeof api_uris[0]; u++) {
        const httpd_uri_t uri = {
            .uri = api_uris[u],
            .method = HTTP_ANY,
            .handler = api_handler,
            .user_ctx = NULL,
        };
        err = httpd_register_uri_handler(h, &uri);
    }
    static const char *const page_uris[] = {"/", "/index.html"};
    for (size_t u = 0; err == ESP_OK && u < sizeof page_uris / sizeof page_uris[0]; u++) {
        const httpd_uri_t uri = {
            .uri = page_uris[u],
            .method = HTTP_GET,
            .handler = page_handler,
            .user_ctx = NULL,
        };
        err = httpd_register_uri_handler(h, &uri);
    }
    if (err == ESP_OK) {
        const httpd_uri_t ws = {
            .uri = "/ws",
            .method = HTTP_GET,
            .handler = ws_handler,
            .user_ctx = NULL,
            .is_websocket = true,
            .handle_ws_control_frames = false,
            .supported_subprotocol = NULL,
        };
        err = httpd_register_uri_handler(h, &ws);
    }
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "httpd_register_uri_handler: %s", esp_err_to_name(err));
    }
    return err;
}

esp_err_t web_dashboard_start(const web_dashboard_config_t *cfg)
{
    if (!cfg || !cfg->server || !cfg->wake || cfg->port == 0 || s_dash) {
        ESP_LOGE(TAG, "invalid configuration (server, wake and port required; start once)");
        return ESP_ERR_INVALID_ARG;
    }
    dashboard_t *d = calloc(1, sizeof *d);
    if (!d) {
        return ESP_ERR_NO_MEM;
    }
    d->cfg = *cfg;
    snprintf(d->hostname, sizeof d->hostname, "%s", cfg->hostname ? cfg->hostname : "");
    d->cfg.hostname = d->hostname;
    d->lock = xSemaphoreCreateMutex();
    esp_err_t err = d->lock ? web_ws_init(HTTP_MAX_OPEN_SOCKETS) : ESP_ERR_NO_MEM;
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "no memory for the dashboard");
        if (d->lock) {
            vSemaphoreDelete(d->lock);
        }
        free(d);
        return err;
    }
    /* Visible to the handlers before the first request can arrive. */
    s_dash = d;

    httpd_config_t hc = HTTPD_DEFAULT_CONFIG();
    hc.server_port = cfg->port;
    hc.stack_size = HTTPD_STACK_BYTES;
    hc.max_open_sockets = HTTP_MAX_OPEN_SOCKETS;
    hc.max_uri_handlers = HTTP_MAX_URI_HANDLERS;
    hc.max_resp_headers = HTTP_MAX_RESP_HEADERS;
    hc.lru_purge_enable = true;
    /* Browsers that vanish (a laptop lid closed) free their session. */
    hc.keep_alive_enable = true;
    hc.keep_alive_idle = 15;
    hc.keep_alive_interval = 5;
    hc.keep_alive_count = 3;
    hc.close_fn = on_session_close;
    hc.uri_match_fn = httpd_uri_match_wildcard;
    err = httpd_start(&d->httpd, &hc);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "httpd_start on port %u: %s", (unsigned)cfg->port, esp_err_to_name(err));
        /* The WebSocket table and lock stay allocated (no teardown API);
         * s_dash stays NULL, so the rest is inert. */
        s_dash = NULL;
        vSemaphoreDelete(d->lock);
        free(d);
        return err;
    }
    web_ws_attach(d->httpd);
    err = register_handlers(d->httpd);
    if (err != ESP_OK) {
        httpd_stop(d->httpd); /* calls the close hook for open sessions: none yet */
        web_ws_attach(NULL);
        s_dash = NULL;
        vSemaphoreDelete(d->lock);
        free(d);
        return err;
    }
    ESP_LOGI(TAG, "dashboard on port %u (%u KiB page, %d HTTP sessions)", (unsigned)cfg->port,
             (unsigned)((page_gz_end - page_gz_start + 1023) / 1024), HTTP_MAX_OPEN_SOCKETS);
    return ESP_OK;
}
