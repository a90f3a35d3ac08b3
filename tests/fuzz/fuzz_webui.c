/*
 * fuzz_webui: the dashboard API engine on arbitrary requests. The first
 * byte picks the endpoint, the rest is the body (or the query string).
 * A logged-in session with its CSRF token is set up once, so the bodies of
 * state-changing requests reach their parsers. Any crash, leak, undefined
 * behaviour or reply that is not a status with a body is a finding.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usbip_server.h"
#include "webui.h"

/* Cheap stand-ins: fuzzing looks at parsing, not at cryptography. */
static void fake_random(void *ctx, uint8_t *buf, size_t len)
{
    static uint8_t n;
    for (size_t i = 0; i < len; i++) {
        buf[i] = n++;
    }
}

static bool fake_pbkdf2(void *ctx, const char *password, const uint8_t *salt, size_t salt_len,
                        uint32_t iterations, uint8_t out[32])
{
    memset(out, 0, 32);
    for (size_t i = 0; password[i]; i++) {
        out[i % 32] ^= (uint8_t)password[i];
    }
    return true;
}

static webui_t *s_ui;
static char s_cookie[128], s_csrf[64];

static void handle(const char *method, const char *path, const char *query, const char *body,
                   size_t len, webui_response_t *resp)
{
    const webui_request_t req = {.method = method, .path = path, .query = query, .body = body,
                                 .body_len = len, .cookie = s_cookie, .csrf = s_csrf};
    webui_handle(s_ui, &req, resp);
}

static void setup(void)
{
    usbip_server_config_t cfg;
    usbip_server_config_default(&cfg);
    usbip_server_t *srv = NULL;
    if (usbip_server_create(&cfg, &srv, NULL, 0) != USBIP_OK) {
        abort();
    }
    const webui_port_t port = {.random = fake_random, .pbkdf2_sha256 = fake_pbkdf2,
                               .pbkdf2_iterations = 1};
    if (webui_create(srv, &port, &s_ui) != USBIP_OK) {
        abort();
    }
    webui_response_t resp;
    static const char pw[] = "{\"new\":\"fuzzing pw\"}";
    handle("POST", "/api/password", NULL, pw, sizeof pw - 1, &resp);
    webui_response_free(&resp);
    static const char login[] = "{\"password\":\"fuzzing pw\"}";
    handle("POST", "/api/login", NULL, login, sizeof login - 1, &resp);
    const char *csrf = strstr(resp.body ? resp.body : "", "\"csrf\":\"");
    if (resp.status != 200 || !csrf) {
        abort();
    }
    snprintf(s_csrf, sizeof s_csrf, "%.*s", (int)strcspn(csrf + 8, "\""), csrf + 8);
    snprintf(s_cookie, sizeof s_cookie, "%.*s", (int)strcspn(resp.set_cookie, ";"),
             resp.set_cookie);
    webui_response_free(&resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_ui) {
        setup();
    }
    if (size == 0) {
        return 0;
    }
    static const struct {
        const char *method, *path;
        bool query;
    } targets[] = {
        {"PUT", "/api/settings", false},   {"POST", "/api/devices/1-1/export", false},
        {"POST", "/api/password", false},  {"GET", "/api/events", true},
        {"POST", "/api/clients/1/disconnect", false},
    };
    const size_t t = data[0] % (sizeof targets / sizeof targets[0]);
    char *text = malloc(size); /* NUL-terminated copy of the rest */
    if (!text) {
        return 0;
    }
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    webui_response_t resp;
    handle(targets[t].method, targets[t].path, targets[t].query ? text : NULL,
           targets[t].query ? NULL : text, targets[t].query ? 0 : size - 1, &resp);
    if (resp.status < 200 || resp.status > 599 || !resp.body || !resp.content_type) {
        abort();
    }
    webui_response_free(&resp);
    free(text);
    return 0;
}
