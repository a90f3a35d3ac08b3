/*
 * webui_auth: the admin password (salted PBKDF2-HMAC-SHA256 in the settings
 * store), login sessions with a cookie and a CSRF token, and the slow-down
 * of failed logins. See webui.h for the model.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usbip_log.h"
#include "webui_internal.h"

static const char *TAG = "webui";

#define SALT_BYTES 16
#define HASH_BYTES 32
#define COOKIE_NAME "usbip_session"
#define LOCK_MAX_S 60u

/* ---- hex and constant-time compare ---- */

static void to_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static bool from_hex(const char *text, size_t text_len, uint8_t *out, size_t n)
{
    if (text_len != 2 * n) {
        return false;
    }
    for (size_t i = 0; i < 2 * n; i++) {
        const char c = text[i];
        int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (v < 0) {
            return false;
        }
        out[i / 2] = (uint8_t)((i % 2) ? (out[i / 2] | v) : (v << 4));
    }
    return true;
}

/* Equal strings of equal length, in time that does not depend on where
 * they differ (tokens and hashes). */
static bool same_secret(const char *a, const char *b)
{
    const size_t n = strlen(a);
    if (n != strlen(b)) {
        return false;
    }
    unsigned diff = 0;
    for (size_t i = 0; i < n; i++) {
        diff |= (unsigned char)a[i] ^ (unsigned char)b[i];
    }
    return diff == 0;
}

static void new_token(webui_t *ui, char out[WEBUI_TOKEN_HEX])
{
    uint8_t raw[WEBUI_TOKEN_BYTES];
    ui->port.random(ui->port.ctx, raw, sizeof raw);
    to_hex(raw, sizeof raw, out);
}

/* ---- the stored password ---- */

void webui_auth_load(webui_t *ui)
{
    ui->password_record[0] = '\0';
    const usbip_store_t *store = usbip_server_store(ui->server);
    if (!store) {
        return;
    }
    size_t len = sizeof ui->password_record;
    usbip_err_t err = store->ops->get(store->ctx, WEBUI_STORE_KEY_PASSWORD, ui->password_record,
                                      &len);
    if (err != USBIP_OK) {
        ui->password_record[0] = '\0';
        if (err != USBIP_ERR_NOT_FOUND) {
            USBIP_LOGW(TAG, "stored admin password unreadable (%s): none set",
                       usbip_err_name(err));
        }
    }
}

bool webui_password_set(const webui_t *ui) { return ui->password_record[0] != '\0'; }

/* "pbkdf2-sha256$ITER$SALT$HASH" -> parts; false if malformed. */
static bool parse_record(const char *record, uint32_t *iterations, uint8_t salt[SALT_BYTES],
                         char hash_hex[2 * HASH_BYTES + 1])
{
    static const char prefix[] = "pbkdf2-sha256$";
    if (strncmp(record, prefix, sizeof prefix - 1) != 0) {
        return false;
    }
    const char *p = record + sizeof prefix - 1;
    char *end = NULL;
    unsigned long iter = strtoul(p, &end, 10);
    if (end == p || *end != '$' || iter == 0 || iter > 10000000ul) {
        return false;
    }
    const char *salt_hex = end + 1;
    const char *dollar = strchr(salt_hex, '$');
    if (!dollar || !from_hex(salt_hex, (size_t)(dollar - salt_hex), salt, SALT_BYTES) ||
        strlen(dollar + 1) != 2 * HASH_BYTES) {
        return false;
    }
    memcpy(hash_hex, dollar + 1, 2 * HASH_BYTES + 1);
    *iterations = (uint32_t)iter;
    return true;
}

static bool password_matches(webui_t *ui, const char *password)
{
    uint32_t iterations;
    uint8_t salt[SALT_BYTES], hash[HASH_BYTES];
    char expected[2 * HASH_BYTES + 1], actual[2 * HASH_BYTES + 1];
    if (!parse_record(ui->password_record, &iterations, salt, expected)) {
        USBIP_LOGE(TAG, "stored admin password record is malformed");
        return false;
    }
    if (!ui->port.pbkdf2_sha256(ui->port.ctx, password, salt, sizeof salt, iterations, hash)) {
        return false;
    }
    to_hex(hash, sizeof hash, actual);
    return same_secret(actual, expected);
}

static usbip_err_t store_password(webui_t *ui, const char *password)
{
    uint8_t salt[SALT_BYTES], hash[HASH_BYTES];
    ui->port.random(ui->port.ctx, salt, sizeof salt);
    if (!ui->port.pbkdf2_sha256(ui->port.ctx, password, salt, sizeof salt,
                                ui->port.pbkdf2_iterations, hash)) {
        return USBIP_ERR_IO;
    }
    char salt_hex[2 * SALT_BYTES + 1], hash_hex[2 * HASH_BYTES + 1];
    to_hex(salt, sizeof salt, salt_hex);
    to_hex(hash, sizeof hash, hash_hex);
    char record[sizeof ui->password_record];
    snprintf(record, sizeof record, "pbkdf2-sha256$%" PRIu32 "$%s$%s",
             ui->port.pbkdf2_iterations, salt_hex, hash_hex);
    const usbip_store_t *store = usbip_server_store(ui->server);
    if (store) {
        usbip_err_t err = store->ops->set(store->ctx, WEBUI_STORE_KEY_PASSWORD, record);
        if (err == USBIP_OK) {
            err = store->ops->commit(store->ctx);
        }
        if (err != USBIP_OK) {
            return err;
        }
    }
    memcpy(ui->password_record, record, sizeof record);
    return USBIP_OK;
}

/* ---- sessions ---- */

/* The value of our cookie in a Cookie header, copied into out. */
static bool cookie_token(const char *header, char out[WEBUI_TOKEN_HEX])
{
    const size_t name_len = sizeof COOKIE_NAME - 1;
    for (const char *p = header; p && *p;) {
        while (*p == ' ' || *p == ';') {
            p++;
        }
        if (strncmp(p, COOKIE_NAME, name_len) == 0 && p[name_len] == '=') {
            const char *v = p + name_len + 1;
            size_t n = strcspn(v, "; ");
            if (n == 0 || n >= WEBUI_TOKEN_HEX) {
                return false;
            }
            memcpy(out, v, n);
            out[n] = '\0';
            return true;
        }
        p = strchr(p, ';');
    }
    return false;
}

webui_login_t *webui_session_of(webui_t *ui, const webui_request_t *req, uint64_t now)
{
    char token[WEBUI_TOKEN_HEX];
    if (!req->cookie || !cookie_token(req->cookie, token)) {
        return NULL;
    }
    for (size_t i = 0; i < WEBUI_MAX_SESSIONS; i++) {
        webui_login_t *l = &ui->logins[i];
        if (!l->used || !same_secret(l->token, token)) {
            continue;
        }
        if (now - l->last_used_ms > WEBUI_SESSION_IDLE_MS) {
            l->used = false; /* expired */
            return NULL;
        }
        l->last_used_ms = now;
        return l;
    }
    return NULL;
}

static webui_login_t *new_session(webui_t *ui, uint64_t now)
{
    webui_login_t *slot = &ui->logins[0];
    for (size_t i = 0; i < WEBUI_MAX_SESSIONS; i++) {
        webui_login_t *l = &ui->logins[i];
        if (!l->used) {
            slot = l;
            break;
        }
        if (l->last_used_ms < slot->last_used_ms) {
            slot = l; /* full: the least recently used one goes */
        }
    }
    slot->used = true;
    slot->last_used_ms = now;
    new_token(ui, slot->token);
    new_token(ui, slot->csrf);
    return slot;
}

static void end_sessions_except(webui_t *ui, const webui_login_t *keep)
{
    for (size_t i = 0; i < WEBUI_MAX_SESSIONS; i++) {
        if (&ui->logins[i] != keep) {
            ui->logins[i].used = false;
        }
    }
}

bool webui_authorize_change(webui_t *ui, const webui_request_t *req, webui_response_t *resp)
{
    if (!webui_password_set(ui)) {
        webui_reply_error(resp, 403, "password",
                          "set an admin password first: changes are refused until one exists");
        return false;
    }
    webui_login_t *l = webui_session_of(ui, req, usbip_now_ms());
    if (!l) {
        webui_reply_error(resp, 401, "session", "log in first");
        return false;
    }
    if (!req->csrf || !same_secret(l->csrf, req->csrf)) {
        webui_reply_error(resp, 403, "X-CSRF-Token", "missing or wrong CSRF token");
        return false;
    }
    return true;
}

/* ---- failed-login slow-down ---- */

/* True (and a 429 in resp) while logins are locked after failures. */
static bool logins_locked(webui_t *ui, uint64_t now, webui_response_t *resp)
{
    if (now >= ui->logins_locked_until_ms) {
        return false;
    }
    const uint64_t wait_s = (ui->logins_locked_until_ms - now + 999) / 1000;
    json_writer_t w;
    json_write_init(&w, 0);
    json_write_object_begin(&w);
    json_write_kv_string(&w, "error", "too many failed logins: wait before trying again");
    json_write_kv_string(&w, "field", "password");
    json_write_kv_uint(&w, "retry_after_s", wait_s);
    json_write_object_end(&w);
    webui_reply_json(resp, 429, &w);
    return true;
}

static void login_failed(webui_t *ui, uint64_t now, const webui_request_t *req)
{
    ui->failed_logins++;
    const uint32_t shift = ui->failed_logins > 7 ? 6 : ui->failed_logins - 1;
    uint64_t lock_s = 1ull << shift;
    if (lock_s > LOCK_MAX_S) {
        lock_s = LOCK_MAX_S;
    }
    ui->logins_locked_until_ms = now + lock_s * 1000;
    char peer[USBIP_IP_ADDR_TEXT_SIZE] = "";
    if (req->peer) {
        usbip_ip_addr_format(req->peer, peer, sizeof peer);
    }
    usbip_event_log_add(usbip_server_events(ui->server), USBIP_EVENT_ERROR, NULL, peer,
                        "dashboard login failed (%" PRIu32 " in a row): logins locked for %us",
                        ui->failed_logins, (unsigned)lock_s);
}

/* ---- endpoints ---- */

static bool read_password(const json_doc_t *doc, const char *key, char *out, size_t out_len)
{
    return json_read_string(doc, json_read_member(doc, 0, key), out, out_len);
}

static void reply_login(webui_response_t *resp, const webui_login_t *l)
{
    json_writer_t w;
    json_write_init(&w, 0);
    json_write_object_begin(&w);
    json_write_kv_string(&w, "csrf", l->csrf);
    json_write_object_end(&w);
    webui_reply_json(resp, 200, &w);
    snprintf(resp->set_cookie, sizeof resp->set_cookie,
             COOKIE_NAME "=%s; Path=/; HttpOnly; SameSite=Strict", l->token);
}

void webui_handle_login(webui_t *ui, const webui_request_t *req, webui_response_t *resp)
{
    const uint64_t now = usbip_now_ms();
    if (!webui_password_set(ui)) {
        webui_reply_error(resp, 403, "password", "no admin password is set yet: set one first");
        return;
    }
    if (logins_locked(ui, now, resp)) {
        return;
    }
    json_token_t tokens[8];
    json_doc_t doc;
    char password[4 * WEBUI_PASSWORD_MAX + 1];
    if (!webui_parse_body(req, &doc, tokens, 8, resp)) {
        return;
    }
    if (!read_password(&doc, "password", password, sizeof password)) {
        webui_reply_error(resp, 400, "password", "password must be a string");
        return;
    }
    if (!password_matches(ui, password)) {
        login_failed(ui, now, req);
        webui_reply_error(resp, 401, "password", "wrong password");
        return;
    }
    ui->failed_logins = 0;
    reply_login(resp, new_session(ui, now));
}

void webui_handle_logout(webui_t *ui, const webui_request_t *req, webui_response_t *resp)
{
    webui_login_t *l = webui_session_of(ui, req, usbip_now_ms());
    if (l) {
        l->used = false;
    }
    webui_reply_ok(resp);
    snprintf(resp->set_cookie, sizeof resp->set_cookie,
             COOKIE_NAME "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
}

/* Characters, not bytes: UTF-8 continuation bytes do not count. */
static size_t utf8_length(const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        n += ((unsigned char)*s & 0xc0u) != 0x80u;
    }
    return n;
}

void webui_handle_password(webui_t *ui, const webui_request_t *req, webui_response_t *resp)
{
    const uint64_t now = usbip_now_ms();
    const bool first = !webui_password_set(ui);
    if (!first && !webui_authorize_change(ui, req, resp)) {
        return;
    }
    json_token_t tokens[8];
    json_doc_t doc;
    char current[4 * WEBUI_PASSWORD_MAX + 1], fresh[4 * WEBUI_PASSWORD_MAX + 1];
    if (!webui_parse_body(req, &doc, tokens, 8, resp)) {
        return;
    }
    if (!read_password(&doc, "new", fresh, sizeof fresh)) {
        webui_reply_error(resp, 400, "new", "new must be a string of %u to %u characters",
                          WEBUI_PASSWORD_MIN, WEBUI_PASSWORD_MAX);
        return;
    }
    const size_t length = utf8_length(fresh);
    if (length < WEBUI_PASSWORD_MIN || length > WEBUI_PASSWORD_MAX) {
        webui_reply_error(resp, 400, "new", "the password must have %u to %u characters, not %zu",
                          WEBUI_PASSWORD_MIN, WEBUI_PASSWORD_MAX, length);
        return;
    }
    if (!first) {
        if (logins_locked(ui, now, resp)) {
            return;
        }
        if (!read_password(&doc, "current", current, sizeof current) ||
            !password_matches(ui, current)) {
            login_failed(ui, now, req);
            webui_reply_error(resp, 403, "current", "the current password is wrong");
            return;
        }
    }
    usbip_err_t err = store_password(ui, fresh);
    if (err != USBIP_OK) {
        webui_reply_error(resp, 500, "new", "the password could not be saved: %s",
                          usbip_err_name(err));
        return;
    }
    end_sessions_except(ui, first ? NULL : webui_session_of(ui, req, now));
    usbip_event_log_add(usbip_server_events(ui->server), USBIP_EVENT_SETTINGS, NULL, NULL,
                        first ? "admin password set" : "admin password changed");
    webui_reply_ok(resp);
}

void webui_handle_session(webui_t *ui, const webui_request_t *req, webui_response_t *resp)
{
    webui_login_t *l = webui_session_of(ui, req, usbip_now_ms());
    json_writer_t w;
    json_write_init(&w, 0);
    json_write_object_begin(&w);
    json_write_kv_bool(&w, "password_set", webui_password_set(ui));
    json_write_kv_bool(&w, "logged_in", l != NULL);
    if (l) {
        json_write_kv_string(&w, "csrf", l->csrf);
    }
    json_write_object_end(&w);
    webui_reply_json(resp, 200, &w);
}
