/*
 * webui: creation, the request router, JSON replies and the WebSocket push.
 * See webui.h.
 */
#include "webui.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usbip_log.h"
#include "webui_internal.h"

static const char *TAG = "webui";

usbip_err_t webui_create(usbip_server_t *server, const webui_port_t *port, webui_t **out)
{
    if (!server || !port || !port->random || !port->pbkdf2_sha256 || !out) {
        return USBIP_ERR_INVALID_ARG;
    }
    webui_t *ui = calloc(1, sizeof *ui);
    if (!ui) {
        return USBIP_ERR_NO_MEM;
    }
    ui->server = server;
    ui->port = *port;
    if (!ui->port.pbkdf2_iterations) {
        ui->port.pbkdf2_iterations = 100000;
    }
    ui->history_count = usbip_server_registry(server)->capacity;
    ui->history = calloc(ui->history_count, sizeof *ui->history);
    if (!ui->history) {
        free(ui);
        return USBIP_ERR_NO_MEM;
    }
    ui->started_ms = usbip_now_ms();
    ui->push_everything = true;
    webui_auth_load(ui);
    *out = ui;
    return USBIP_OK;
}

void webui_destroy(webui_t *ui)
{
    if (ui) {
        free(ui->history);
        free(ui);
    }
}

void webui_response_free(webui_response_t *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
}

/* ---- replies ---- */

static void set_body(webui_response_t *resp, int status, const char *type, char *body,
                     size_t len)
{
    resp->status = status;
    resp->content_type = type;
    resp->body = body;
    resp->body_len = len;
}

static const char OUT_OF_MEMORY[] = "{\"error\":\"out of memory\"}";

static void reply_out_of_memory(webui_response_t *resp)
{
    char *copy = malloc(sizeof OUT_OF_MEMORY);
    if (copy) {
        memcpy(copy, OUT_OF_MEMORY, sizeof OUT_OF_MEMORY);
    }
    set_body(resp, 500, "application/json", copy, copy ? sizeof OUT_OF_MEMORY - 1 : 0);
}

void webui_reply_json(webui_response_t *resp, int status, json_writer_t *w)
{
    size_t len = 0;
    char *text = json_write_finish(w, &len);
    if (!text) {
        reply_out_of_memory(resp);
        return;
    }
    set_body(resp, status, "application/json", text, len);
}

void webui_reply_error(webui_response_t *resp, int status, const char *field, const char *fmt,
                       ...)
{
    char message[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    json_writer_t w;
    json_write_init(&w, 0);
    json_write_object_begin(&w);
    json_write_kv_string(&w, "error", message);
    if (field) {
        json_write_kv_string(&w, "field", field);
    }
    json_write_object_end(&w);
    webui_reply_json(resp, status, &w);
}

void webui_reply_ok(webui_response_t *resp)
{
    json_writer_t w;
    json_write_init(&w, 0);
    json_write_object_begin(&w);
    json_write_kv_bool(&w, "ok", true);
    json_write_object_end(&w);
    webui_reply_json(resp, 200, &w);
}

bool webui_parse_body(const webui_request_t *req, json_doc_t *doc, json_token_t *tokens,
                      size_t max, webui_response_t *resp)
{
    if (!req->body || req->body_len == 0) {
        webui_reply_error(resp, 400, "body", "a JSON object is required");
        return false;
    }
    if (!json_read_parse(doc, req->body, req->body_len, tokens, max)) {
        webui_reply_error(resp, 400, "body", "invalid JSON at byte %zu: %s", doc->error_at,
                          doc->error);
        return false;
    }
    if (doc->tokens[0].type != JSON_OBJECT) {
        webui_reply_error(resp, 400, "body", "a JSON object is required");
        return false;
    }
    return true;
}

/* ---- read-only endpoints ---- */

typedef void (*view_fn_t)(webui_t *ui, json_writer_t *w);

static void reply_view(webui_t *ui, webui_response_t *resp, view_fn_t view)
{
    json_writer_t w;
    json_write_init(&w, 0);
    json_write_object_begin(&w);
    view(ui, &w);
    json_write_object_end(&w);
    webui_reply_json(resp, 200, &w);
}

/* Value of `name` in a query string ("since=12&x=y"), as an unsigned number. */
static bool query_uint(const char *query, const char *name, uint64_t *out)
{
    const size_t n = strlen(name);
    for (const char *p = query; p && *p;) {
        if (strncmp(p, name, n) == 0 && p[n] == '=') {
            char *end = NULL;
            unsigned long long v = strtoull(p + n + 1, &end, 10);
            if (end == p + n + 1 || (*end && *end != '&')) {
                return false;
            }
            *out = v;
            return true;
        }
        p = strchr(p, '&');
        p = p ? p + 1 : NULL;
    }
    *out = 0;
    return true;
}

static void reply_events(webui_t *ui, const webui_request_t *req, webui_response_t *resp)
{
    uint64_t since = 0;
    if (!query_uint(req->query, "since", &since)) {
        webui_reply_error(resp, 400, "since", "since must be an event id (a whole number)");
        return;
    }
    json_writer_t w;
    json_write_init(&w, 0);
    json_write_object_begin(&w);
    uint64_t next = since;
    webui_write_events(ui, &w, since, 100, &next);
    json_write_kv_uint(&w, "next", next);
    json_write_object_end(&w);
    webui_reply_json(resp, 200, &w);
}

static void reply_metrics(webui_t *ui, webui_response_t *resp)
{
    size_t len = 0;
    char *text = webui_metrics_text(ui, &len);
    if (!text) {
        reply_out_of_memory(resp);
        return;
    }
    set_body(resp, 200, "text/plain; version=0.0.4", text, len);
}

/* ---- actions ---- */

static usbip_registry_entry_t *entry_by_busid(webui_t *ui, const char *busid)
{
    return usbip_registry_find(usbip_server_registry(ui->server), busid);
}

static void action_disconnect(webui_t *ui, const char *id_text, webui_response_t *resp)
{
    char *end = NULL;
    unsigned long id = strtoul(id_text, &end, 10);
    usbip_session_t *s = (*id_text && *end == '\0') ? usbip_server_find_session(ui->server,
                                                                                (uint32_t)id)
                                                    : NULL;
    if (!s) {
        webui_reply_error(resp, 404, "id", "no connected client %s", id_text);
        return;
    }
    usbip_session_request_close(s, "ended from the dashboard");
    usbip_event_log_add(usbip_server_events(ui->server), USBIP_EVENT_INFO, NULL,
                        usbip_session_peer(s), "session ended from the dashboard");
    webui_reply_ok(resp);
}

static void action_export(webui_t *ui, const webui_request_t *req, const char *busid,
                          webui_response_t *resp)
{
    usbip_registry_entry_t *entry = entry_by_busid(ui, busid);
    if (!entry) {
        webui_reply_error(resp, 404, "busid", "no device %s", busid);
        return;
    }
    json_token_t tokens[8];
    json_doc_t doc;
    if (!webui_parse_body(req, &doc, tokens, 8, resp)) {
        return;
    }
    bool exported;
    if (!json_read_bool(&doc, json_read_member(&doc, 0, "exported"), &exported)) {
        webui_reply_error(resp, 400, "exported", "exported must be true or false");
        return;
    }
    usbip_registry_set_exported(entry, exported);
    usbip_event_log_add(usbip_server_events(ui->server), USBIP_EVENT_SETTINGS, busid, NULL,
                        "%s from the dashboard", exported ? "exported" : "hidden");
    webui_reply_ok(resp);
}

static void action_reset(webui_t *ui, const char *busid, webui_response_t *resp)
{
    if (!entry_by_busid(ui, busid)) {
        webui_reply_error(resp, 404, "busid", "no device %s", busid);
        return;
    }
    if (!ui->port.reset_device) {
        webui_reply_error(resp, 501, NULL, "this server cannot reset devices");
        return;
    }
    usbip_err_t err = ui->port.reset_device(ui->port.ctx, busid);
    if (err != USBIP_OK) {
        webui_reply_error(resp, 500, "busid", "reset of %s failed: %s", busid,
                          usbip_err_name(err));
        return;
    }
    webui_reply_ok(resp);
}

static void action_system(webui_t *ui, usbip_err_t (*hook)(void *), const char *what,
                          webui_response_t *resp)
{
    if (!hook) {
        webui_reply_error(resp, 501, NULL, "%s is not available on this server", what);
        return;
    }
    usbip_err_t err = hook(ui->port.ctx);
    if (err != USBIP_OK) {
        webui_reply_error(resp, 500, NULL, "%s failed: %s", what, usbip_err_name(err));
        return;
    }
    usbip_event_log_add(usbip_server_events(ui->server), USBIP_EVENT_INFO, NULL, NULL,
                        "%s requested from the dashboard", what);
    webui_reply_ok(resp);
}

/* "/api/devices/1-1.3/export" -> busid "1-1.3", verb "export". */
static bool split_item(const char *rest, char *item, size_t item_len, const char **verb)
{
    const char *slash = strchr(rest, '/');
    if (!slash || slash == rest || (size_t)(slash - rest) >= item_len || strchr(slash + 1, '/')) {
        return false;
    }
    memcpy(item, rest, (size_t)(slash - rest));
    item[slash - rest] = '\0';
    *verb = slash + 1;
    return true;
}

static bool route_action(webui_t *ui, const webui_request_t *req, webui_response_t *resp)
{
    const char *path = req->path;
    char item[48];
    const char *verb = NULL;
    if (strncmp(path, "/api/clients/", 13) == 0 && split_item(path + 13, item, sizeof item, &verb) &&
        strcmp(verb, "disconnect") == 0) {
        if (webui_authorize_change(ui, req, resp)) {
            action_disconnect(ui, item, resp);
        }
        return true;
    }
    if (strncmp(path, "/api/devices/", 13) == 0 && split_item(path + 13, item, sizeof item, &verb) &&
        (strcmp(verb, "export") == 0 || strcmp(verb, "reset") == 0)) {
        if (webui_authorize_change(ui, req, resp)) {
            if (verb[0] == 'e') {
                action_export(ui, req, item, resp);
            } else {
                action_reset(ui, item, resp);
            }
        }
        return true;
    }
    if (strcmp(path, "/api/system/reboot") == 0 || strcmp(path, "/api/system/factory-reset") == 0) {
        if (webui_authorize_change(ui, req, resp)) {
            const bool reboot = path[12] == 'r';
            action_system(ui, reboot ? ui->port.reboot : ui->port.factory_reset,
                          reboot ? "reboot" : "factory reset", resp);
        }
        return true;
    }
    return false;
}

/* ---- the router ---- */

typedef struct {
    const char *path;
    view_fn_t view;
} view_route_t;

static const view_route_t VIEWS[] = {
    {"/api/status", webui_write_status},       {"/api/devices", webui_write_devices},
    {"/api/clients", webui_write_clients},     {"/api/bandwidth", webui_write_bandwidth},
    {"/api/settings", webui_write_settings},
};

static bool is(const webui_request_t *req, const char *method, const char *path)
{
    return strcmp(req->method, method) == 0 && strcmp(req->path, path) == 0;
}

static bool handle_get(webui_t *ui, const webui_request_t *req, webui_response_t *resp)
{
    for (size_t i = 0; i < sizeof VIEWS / sizeof VIEWS[0]; i++) {
        if (is(req, "GET", VIEWS[i].path)) {
            reply_view(ui, resp, VIEWS[i].view);
            return true;
        }
    }
    if (is(req, "GET", "/api/events")) {
        reply_events(ui, req, resp);
    } else if (is(req, "GET", "/api/session")) {
        webui_handle_session(ui, req, resp);
    } else if (is(req, "GET", "/metrics")) {
        reply_metrics(ui, resp);
    } else {
        return false;
    }
    return true;
}

static bool handle_change(webui_t *ui, const webui_request_t *req, webui_response_t *resp)
{
    if (is(req, "POST", "/api/login")) {
        webui_handle_login(ui, req, resp);
    } else if (is(req, "POST", "/api/logout")) {
        webui_handle_logout(ui, req, resp);
    } else if (is(req, "POST", "/api/password")) {
        webui_handle_password(ui, req, resp);
    } else if (is(req, "PUT", "/api/settings")) {
        if (webui_authorize_change(ui, req, resp)) {
            webui_handle_put_settings(ui, req, resp);
        }
    } else if (strcmp(req->method, "POST") == 0) {
        return route_action(ui, req, resp);
    } else {
        return false;
    }
    return true;
}

/* Paths that exist, for telling 405 from 404. */
static bool known_path(const char *path)
{
    static const char *const PATHS[] = {"/api/status", "/api/devices", "/api/clients",
                                        "/api/bandwidth", "/api/settings", "/api/events",
                                        "/api/session", "/metrics", "/api/login",
                                        "/api/logout", "/api/password"};
    for (size_t i = 0; i < sizeof PATHS / sizeof PATHS[0]; i++) {
        if (strcmp(path, PATHS[i]) == 0) {
            return true;
        }
    }
    return strncmp(path, "/api/devices/", 13) == 0 || strncmp(path, "/api/clients/", 13) == 0 ||
           strncmp(path, "/api/system/", 12) == 0;
}

void webui_handle(webui_t *ui, const webui_request_t *req, webui_response_t *resp)
{
    memset(resp, 0, sizeof *resp);
    if (!req->method || !req->path) {
        webui_reply_error(resp, 400, NULL, "malformed request");
        return;
    }
    if (req->body_len > WEBUI_MAX_BODY) {
        webui_reply_error(resp, 413, "body", "request body over %u bytes", WEBUI_MAX_BODY);
        return;
    }
    if (handle_get(ui, req, resp) || handle_change(ui, req, resp)) {
        return;
    }
    if (known_path(req->path)) {
        webui_reply_error(resp, 405, NULL, "method %s not allowed on %s", req->method,
                          req->path);
    } else {
        webui_reply_error(resp, 404, "path", "no such endpoint: %s", req->path);
    }
}

/* ---- WebSocket push ---- */

/* FNV-1a over the parts of a frame that are not the bandwidth, to push only
 * on change. */
static uint32_t hash_text(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    }
    return h;
}

static char *build_frame(webui_t *ui, bool everything, uint64_t since_event, size_t *len,
                         uint32_t *state_hash, uint64_t *next_event)
{
    json_writer_t w;
    json_write_init(&w, 0);
    json_write_object_begin(&w);
    json_write_kv_string(&w, "type", "update");
    json_write_key(&w, "status");
    json_write_object_begin(&w);
    webui_write_status(ui, &w);
    json_write_object_end(&w);
    /* The status holds the uptime, new every second: the change test looks
     * at devices and clients only (their counters move with traffic). */
    const size_t state_start = w.len;
    webui_write_devices(ui, &w);
    webui_write_clients(ui, &w);
    const size_t state_end = w.len;
    *state_hash = w.failed ? 0 : hash_text(w.buf + state_start, state_end - state_start);
    const uint64_t from = everything ? 0 : since_event;
    webui_write_events(ui, &w, from, everything ? 50 : 100, next_event);
    json_write_key(&w, "bandwidth");
    json_write_object_begin(&w);
    webui_write_bandwidth_now(ui, &w);
    json_write_object_end(&w);
    json_write_object_end(&w);
    return json_write_finish(&w, len);
}

char *webui_ws_snapshot(webui_t *ui, size_t *len)
{
    uint32_t hash;
    uint64_t next;
    return build_frame(ui, true, 0, len, &hash, &next);
}

void webui_ws_client_joined(webui_t *ui) { ui->push_everything = true; }

static void push_update(webui_t *ui)
{
    uint32_t hash = 0;
    uint64_t next = ui->pushed_event_id;
    size_t len = 0;
    char *frame = build_frame(ui, ui->push_everything, ui->pushed_event_id, &len, &hash, &next);
    if (!frame) {
        USBIP_LOGW(TAG, "no memory for a dashboard update");
        return;
    }
    /* A new event or a new bandwidth second also makes a frame worth sending. */
    const bool changed = ui->push_everything || next != ui->pushed_event_id ||
                         ui->sample_serial != ui->pushed_sample_serial ||
                         hash != ui->pushed_hash;
    if (changed && ui->port.broadcast) {
        ui->port.broadcast(ui->port.ctx, frame, len);
    }
    free(frame);
    ui->push_everything = false;
    ui->pushed_event_id = next;
    ui->pushed_sample_serial = ui->sample_serial;
    ui->pushed_hash = hash;
}

int webui_tick(webui_t *ui, uint64_t now_ms)
{
    if (now_ms >= ui->next_sample_ms) {
        webui_sample_bandwidth(ui);
        ui->sample_serial++;
        ui->next_sample_ms = (ui->next_sample_ms ? ui->next_sample_ms : now_ms) + 1000;
        if (ui->next_sample_ms <= now_ms) {
            ui->next_sample_ms = now_ms + 1000; /* we were late: do not catch up */
        }
    }
    if (now_ms >= ui->next_push_ms) {
        push_update(ui);
        ui->next_push_ms = now_ms + WEBUI_PUSH_INTERVAL_MS;
    }
    const uint64_t next = ui->next_sample_ms < ui->next_push_ms ? ui->next_sample_ms
                                                                : ui->next_push_ms;
    return next > now_ms ? (int)(next - now_ms) : 0;
}
