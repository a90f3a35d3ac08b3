/* Shared state of the webui component's files (see webui.h). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "json_read.h"
#include "json_write.h"
#include "webui.h"

#define WEBUI_TOKEN_BYTES 24
#define WEBUI_TOKEN_HEX   (2 * WEBUI_TOKEN_BYTES + 1)
#define WEBUI_SESSION_IDLE_MS (12ull * 3600 * 1000)
#define WEBUI_PUSH_INTERVAL_MS 500u

typedef struct {
    bool used;
    char token[WEBUI_TOKEN_HEX];
    char csrf[WEBUI_TOKEN_HEX];
    uint64_t last_used_ms;
} webui_login_t;

/* Bandwidth of one registry entry: a ring of per-second samples. */
typedef struct {
    const usbip_device_t *dev; /* the device the samples belong to */
    uint64_t last_in, last_out;
    uint32_t in[WEBUI_HISTORY_S], out[WEBUI_HISTORY_S];
    uint32_t count, head; /* samples held; index of the next one */
} webui_history_t;

struct webui {
    usbip_server_t *server;
    webui_port_t port;
    uint64_t started_ms;
    /* auth */
    char password_record[160]; /* "pbkdf2-sha256$iter$salt$hash", "" when none */
    webui_login_t logins[WEBUI_MAX_SESSIONS];
    uint32_t failed_logins;
    uint64_t logins_locked_until_ms;
    /* bandwidth */
    webui_history_t *history; /* one per registry entry */
    size_t history_count;
    uint64_t next_sample_ms;
    uint64_t sample_serial; /* seconds sampled */
    /* push */
    uint64_t next_push_ms;
    uint64_t pushed_event_id;
    uint64_t pushed_sample_serial;
    uint32_t pushed_hash;
    bool push_everything;
};

/* Responses */
void webui_reply_json(webui_response_t *resp, int status, json_writer_t *w);
void webui_reply_error(webui_response_t *resp, int status, const char *field, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));
void webui_reply_ok(webui_response_t *resp);

/* Auth (webui_auth.c) */
void webui_auth_load(webui_t *ui);
bool webui_password_set(const webui_t *ui);
/* The logged-in session of this request, or NULL (refreshes its idle time). */
webui_login_t *webui_session_of(webui_t *ui, const webui_request_t *req, uint64_t now);
/* State-changing request: true when allowed, else resp is filled. */
bool webui_authorize_change(webui_t *ui, const webui_request_t *req, webui_response_t *resp);
void webui_handle_login(webui_t *ui, const webui_request_t *req, webui_response_t *resp);
void webui_handle_logout(webui_t *ui, const webui_request_t *req, webui_response_t *resp);
void webui_handle_password(webui_t *ui, const webui_request_t *req, webui_response_t *resp);
void webui_handle_session(webui_t *ui, const webui_request_t *req, webui_response_t *resp);

/* Views (webui_views.c): members written into an open object */
void webui_write_status(webui_t *ui, json_writer_t *w);
void webui_write_devices(webui_t *ui, json_writer_t *w);
void webui_write_clients(webui_t *ui, json_writer_t *w);
void webui_write_events(webui_t *ui, json_writer_t *w, uint64_t since, size_t max,
                        uint64_t *next);
void webui_write_bandwidth(webui_t *ui, json_writer_t *w);
void webui_write_bandwidth_now(webui_t *ui, json_writer_t *w);
void webui_write_settings(webui_t *ui, json_writer_t *w);
char *webui_metrics_text(webui_t *ui, size_t *len);
void webui_sample_bandwidth(webui_t *ui);

/* Settings (webui_settings.c) */
void webui_handle_put_settings(webui_t *ui, const webui_request_t *req, webui_response_t *resp);

/* Parse a JSON request body; on failure resp is a 400 naming the position. */
bool webui_parse_body(const webui_request_t *req, json_doc_t *doc, json_token_t *tokens,
                      size_t max, webui_response_t *resp);
