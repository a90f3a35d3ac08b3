/*
 * test_webui: the dashboard API engine (components/webui) against a real
 * server with a virtual Gadget Zero, real PBKDF2 (OpenSSL) and a clock the
 * test moves: every read endpoint's shape, the security rules (no default
 * password, login, cookie, CSRF, slow-down), settings validation naming the
 * field, actions, /metrics, WebSocket frames.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "json_read.h"
#include "test_harness.h"
#include "usbip_log.h"
#include "usbip_server.h"
#include "vdev.h"
#include "web_crypto.h"
#include "webui.h"

static uint64_t s_now = 1000000;
static uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return s_now;
}

typedef struct {
    usbip_server_t *srv;
    vdev_t *zero;
    webui_t *ui;
    char frames[4][16384];
    int nframes;
    char cookie[128];
    char csrf[64];
    bool reboot_called;
} fixture_t;

static fixture_t F;

static void broadcast(void *ctx, const char *text, size_t len)
{
    (void)ctx;
    if (F.nframes < 4 && len < sizeof F.frames[0]) {
        memcpy(F.frames[F.nframes], text, len);
        F.frames[F.nframes][len] = '\0';
    }
    F.nframes++;
}

static usbip_err_t reboot_hook(void *ctx)
{
    (void)ctx;
    F.reboot_called = true;
    return USBIP_OK;
}

/* A store in memory, to see what webui persists. */
static char s_store_key[16], s_store_value[512];
static usbip_err_t mem_get(void *ctx, const char *key, char *value, size_t *len)
{
    if (strcmp(key, s_store_key) != 0) {
        return USBIP_ERR_NOT_FOUND;
    }
    if (strlen(s_store_value) + 1 > *len) {
        return USBIP_ERR_INVALID_SIZE;
    }
    strcpy(value, s_store_value);
    *len = strlen(value);
    return USBIP_OK;
}
static usbip_err_t mem_set(void *ctx, const char *key, const char *value)
{
    if (strcmp(key, "admin_pw") == 0) {
        snprintf(s_store_key, sizeof s_store_key, "%s", key);
        snprintf(s_store_value, sizeof s_store_value, "%s", value);
    }
    return USBIP_OK;
}
static usbip_err_t mem_erase(void *ctx, const char *key) { return USBIP_ERR_NOT_FOUND; }
static usbip_err_t mem_commit(void *ctx) { return USBIP_OK; }
static const usbip_store_ops_t MEM_OPS = {mem_get, mem_set, mem_erase, mem_commit};
static usbip_store_t s_store = {&MEM_OPS, NULL};

static bool setup(void)
{
    memset(&F, 0, sizeof F);
    s_store_key[0] = s_store_value[0] = '\0';
    usbip_clock_set(fake_clock, NULL);
    usbip_server_config_t cfg;
    usbip_server_config_default(&cfg);
    cfg.store = &s_store;
    if (usbip_server_create(&cfg, &F.srv, NULL, 0) != USBIP_OK) {
        return false;
    }
    vdev_config_t vcfg = {.kind = VDEV_ZERO};
    const uint8_t ports[2] = {1, 3};
    if (vdev_create(&vcfg, &F.zero) != USBIP_OK ||
        usbip_server_add_device(F.srv, vdev_device(F.zero), 1, ports, 2) != USBIP_OK) {
        return false;
    }
    const webui_port_t port = {
        .version = "9.9.9", .platform = "test", .hostname = "bench", .usbip_port = 3240,
        .pbkdf2_iterations = 1000, /* fast tests; the daemon uses 200000 */
        .random = web_crypto_random, .pbkdf2_sha256 = web_crypto_pbkdf2_sha256,
        .reboot = reboot_hook, .broadcast = broadcast,
    };
    return webui_create(F.srv, &port, &F.ui) == USBIP_OK;
}

static void teardown(void)
{
    webui_destroy(F.ui);
    usbip_server_remove_device(F.srv, vdev_device(F.zero));
    usbip_server_destroy(F.srv);
    vdev_destroy(F.zero);
    usbip_clock_set(NULL, NULL);
}

typedef struct {
    webui_response_t resp;
    json_doc_t doc;
    json_token_t tokens[512];
    bool json;
} reply_t;

static reply_t *call(const char *method, const char *path, const char *body, bool with_csrf)
{
    static reply_t r;
    webui_response_free(&r.resp);
    memset(&r, 0, sizeof r);
    const char *query = strchr(path, '?');
    char bare[128];
    snprintf(bare, sizeof bare, "%.*s", query ? (int)(query - path) : (int)strlen(path), path);
    usbip_ip_addr_t peer;
    usbip_ip_addr_parse("192.0.2.7", &peer);
    const webui_request_t req = {
        .method = method, .path = bare, .query = query ? query + 1 : NULL,
        .body = body, .body_len = body ? strlen(body) : 0,
        .cookie = F.cookie[0] ? F.cookie : NULL, .csrf = with_csrf ? F.csrf : NULL,
        .peer = &peer,
    };
    webui_handle(F.ui, &req, &r.resp);
    if (r.resp.content_type && strcmp(r.resp.content_type, "application/json") == 0) {
        r.json = json_read_parse(&r.doc, r.resp.body, r.resp.body_len, r.tokens, 512);
        if (!r.json) {
            fprintf(stderr, "  not JSON: %.*s\n", (int)r.resp.body_len, r.resp.body);
        }
    }
    return &r;
}

static int member(reply_t *r, const char *dotted)
{
    int tok = 0;
    char name[64];
    for (const char *p = dotted; tok >= 0 && *p;) {
        size_t n = strcspn(p, ".");
        snprintf(name, sizeof name, "%.*s", (int)n, p);
        tok = json_read_member(&r->doc, tok, name);
        p += n + (p[n] == '.');
    }
    return tok;
}

static const char *text_of(reply_t *r, const char *dotted)
{
    static char out[256];
    out[0] = '\0';
    if (!json_read_string(&r->doc, member(r, dotted), out, sizeof out)) {
        strcpy(out, "(absent)");
    }
    return out;
}

static uint64_t uint_of(reply_t *r, const char *dotted)
{
    uint64_t v = 0;
    json_read_uint(&r->doc, member(r, dotted), UINT64_MAX, &v);
    return v;
}

static bool error_names(reply_t *r, int status, const char *field)
{
    if (r->resp.status != status || !r->json || strcmp(text_of(r, "field"), field) != 0) {
        fprintf(stderr, "  got %d %.*s (wanted %d naming %s)\n", r->resp.status,
                (int)r->resp.body_len, r->resp.body, status, field);
        return false;
    }
    return true;
}

static bool set_password_and_login(const char *password)
{
    char body[128];
    snprintf(body, sizeof body, "{\"new\":\"%s\"}", password);
    if (call("POST", "/api/password", body, false)->resp.status != 200) {
        return false;
    }
    snprintf(body, sizeof body, "{\"password\":\"%s\"}", password);
    reply_t *r = call("POST", "/api/login", body, false);
    if (r->resp.status != 200) {
        return false;
    }
    snprintf(F.csrf, sizeof F.csrf, "%s", text_of(r, "csrf"));
    const char *cookie = r->resp.set_cookie;
    snprintf(F.cookie, sizeof F.cookie, "theme=dark; %.*s", (int)strcspn(cookie, ";"), cookie);
    return true;
}

/* ---- reads ---- */

TEST(status_devices_and_settings_shapes)
{
    REQUIRE(setup());
    reply_t *r = call("GET", "/api/status", NULL, false);
    CHECK_EQ_INT(r->resp.status, 200);
    REQUIRE(r->json);
    CHECK_STR(text_of(r, "version"), "9.9.9");
    CHECK_STR(text_of(r, "hostname"), "bench");
    CHECK_EQ_INT(uint_of(r, "devices"), 1);
    CHECK_EQ_INT(uint_of(r, "usbip_port"), 3240);
    bool set = true;
    CHECK(json_read_bool(&r->doc, member(r, "password_set"), &set) && !set);

    r = call("GET", "/api/devices", NULL, false);
    REQUIRE(r->json);
    int dev = json_read_element(&r->doc, member(r, "devices"), 0);
    REQUIRE(dev >= 0);
    char busid[16];
    CHECK(json_read_string(&r->doc, json_read_member(&r->doc, dev, "busid"), busid, sizeof busid));
    CHECK_STR(busid, "1-1.3");
    int path = json_read_member(&r->doc, dev, "path");
    uint64_t port = 0;
    CHECK(json_read_uint(&r->doc, json_read_element(&r->doc, path, 1), 255, &port) && port == 3);
    CHECK(json_read_string_is(&r->doc, json_read_member(&r->doc, dev, "vid"), "0525"));
    CHECK(json_read_string_is(&r->doc, json_read_member(&r->doc, dev, "state"), "available"));
    CHECK(json_read_string_is(&r->doc, json_read_member(&r->doc, dev, "speed"), "high"));

    r = call("GET", "/api/settings", NULL, false);
    REQUIRE(r->json);
    CHECK_STR(text_of(r, "access.mode"), "open");
    CHECK_STR(text_of(r, "network.mode"), "dhcp");
    CHECK_EQ_INT(call("GET", "/api/clients", NULL, false)->resp.status, 200);
    teardown();
}

TEST(events_are_read_incrementally)
{
    REQUIRE(setup());
    reply_t *r = call("GET", "/api/events", NULL, false);
    REQUIRE(r->json);
    const uint64_t next = uint_of(r, "next");
    CHECK(next >= 1); /* device_added */
    usbip_event_log_add(usbip_server_events(F.srv), USBIP_EVENT_INFO, NULL, NULL, "hello");
    char path[64];
    snprintf(path, sizeof path, "/api/events?since=%llu", (unsigned long long)next);
    r = call("GET", path, NULL, false);
    REQUIRE(r->json);
    int events = member(r, "events");
    CHECK_EQ_INT(r->doc.tokens[events].children, 1);
    CHECK(json_read_string_is(&r->doc, json_read_member(&r->doc, json_read_element(&r->doc, events, 0),
                                                        "message"), "hello"));
    CHECK_EQ_INT(uint_of(r, "next"), next + 1);
    CHECK(error_names(call("GET", "/api/events?since=abc", NULL, false), 400, "since"));
    teardown();
}

TEST(bandwidth_history_and_metrics)
{
    REQUIRE(setup());
    usbip_registry_entry_t *e = usbip_registry_find(usbip_server_registry(F.srv), "1-1.3");
    REQUIRE(e);
    webui_tick(F.ui, s_now); /* first sample: the baseline */
    e->stats.bytes_in += 5000;
    e->stats.bytes_out += 700;
    s_now += 1000;
    webui_tick(F.ui, s_now);
    reply_t *r = call("GET", "/api/bandwidth", NULL, false);
    REQUIRE(r->json);
    int in = json_read_member(&r->doc, json_read_member(&r->doc, member(r, "devices"), "1-1.3"),
                              "in");
    REQUIRE(in >= 0);
    CHECK_EQ_INT(r->doc.tokens[in].children, 2);
    uint64_t v = 0;
    CHECK(json_read_uint(&r->doc, json_read_element(&r->doc, in, 1), UINT64_MAX, &v) &&
          v == 5000);
    r = call("GET", "/metrics", NULL, false);
    CHECK_EQ_INT(r->resp.status, 200);
    CHECK(strstr(r->resp.body, "usbip_device_bytes_in_total{busid=\"1-1.3\"} 5000\n") != NULL);
    CHECK(strstr(r->resp.body, "# TYPE usbip_device_bytes_out_total counter\n") != NULL);
    CHECK(strstr(r->resp.body, "usbip_devices 1\n") != NULL);
    teardown();
}

TEST(websocket_frames_only_on_change)
{
    REQUIRE(setup());
    webui_tick(F.ui, s_now);
    CHECK_EQ_INT(F.nframes, 1); /* the first frame carries everything */
    CHECK(strstr(F.frames[0], "\"type\":\"update\"") && strstr(F.frames[0], "\"1-1.3\""));
    s_now += 500;
    webui_tick(F.ui, s_now);
    CHECK_EQ_INT(F.nframes, 1); /* nothing changed, no new second */
    usbip_event_log_add(usbip_server_events(F.srv), USBIP_EVENT_INFO, NULL, NULL, "news");
    s_now += 100; /* not yet 500 ms since the last push */
    webui_tick(F.ui, s_now);
    CHECK_EQ_INT(F.nframes, 1);
    s_now += 400;
    webui_tick(F.ui, s_now);
    CHECK_EQ_INT(F.nframes, 2);
    CHECK(strstr(F.frames[1], "news") != NULL);
    CHECK(strstr(F.frames[1], "device_added") == NULL); /* only what is new */
    size_t len = 0;
    char *snap = webui_ws_snapshot(F.ui, &len);
    CHECK(snap && strstr(snap, "device_added") && strstr(snap, "news"));
    free(snap);
    teardown();
}

/* ---- security ---- */

TEST(no_default_password_changes_refused_until_one_is_set)
{
    REQUIRE(setup());
    CHECK(error_names(call("PUT", "/api/settings", "{\"access\":{\"mode\":\"closed\"}}", false),
                      403, "password"));
    CHECK(error_names(call("POST", "/api/login", "{\"password\":\"whatever1\"}", false), 403,
                      "password"));
    CHECK(error_names(call("POST", "/api/password", "{\"new\":\"short\"}", false), 400, "new"));
    CHECK_EQ_INT(call("POST", "/api/password", "{\"new\":\"correct horse\"}", false)->resp.status,
                 200);
    /* stored salted and slow, never in clear */
    CHECK(strncmp(s_store_value, "pbkdf2-sha256$1000$", 19) == 0);
    CHECK(strstr(s_store_value, "correct") == NULL);
    /* a second "first" password is no longer possible without logging in */
    CHECK_EQ_INT(call("POST", "/api/password", "{\"new\":\"attacker pw\"}", false)->resp.status,
                 401);
    teardown();
}

TEST(login_cookie_and_csrf)
{
    REQUIRE(setup());
    REQUIRE(set_password_and_login("correct horse"));
    reply_t *r = call("POST", "/api/login", "{\"password\":\"correct horse\"}", false);
    CHECK(strstr(r->resp.set_cookie, "HttpOnly") && strstr(r->resp.set_cookie, "SameSite=Strict"));
    r = call("GET", "/api/session", NULL, false);
    bool in = false;
    CHECK(json_read_bool(&r->doc, member(r, "logged_in"), &in) && in);
    CHECK(error_names(call("PUT", "/api/settings", "{\"hostname\":\"lab\"}", false), 403,
                      "X-CSRF-Token"));
    CHECK_EQ_INT(call("PUT", "/api/settings", "{\"hostname\":\"lab\"}", true)->resp.status, 200);
    char saved_cookie[128];
    strcpy(saved_cookie, F.cookie);
    F.cookie[0] = '\0';
    CHECK(error_names(call("PUT", "/api/settings", "{\"hostname\":\"lab\"}", true), 401,
                      "session"));
    strcpy(F.cookie, "usbip_session=0123456789abcdef0123456789abcdef0123456789abcdef");
    CHECK_EQ_INT(call("PUT", "/api/settings", "{}", true)->resp.status, 401);
    strcpy(F.cookie, saved_cookie);
    s_now += 13ull * 3600 * 1000; /* idle past 12 hours */
    CHECK_EQ_INT(call("PUT", "/api/settings", "{}", true)->resp.status, 401);
    teardown();
}

TEST(failed_logins_are_slowed_down)
{
    REQUIRE(setup());
    REQUIRE(set_password_and_login("correct horse"));
    CHECK(error_names(call("POST", "/api/login", "{\"password\":\"guess one\"}", false), 401,
                      "password"));
    reply_t *r = call("POST", "/api/login", "{\"password\":\"correct horse\"}", false);
    CHECK_EQ_INT(r->resp.status, 429); /* locked even for the right one */
    CHECK_EQ_INT(uint_of(r, "retry_after_s"), 1);
    s_now += 1000;
    CHECK_EQ_INT(call("POST", "/api/login", "{\"password\":\"guess two\"}", false)->resp.status,
                 401);
    r = call("POST", "/api/login", "{\"password\":\"guess three\"}", false);
    CHECK_EQ_INT(r->resp.status, 429);
    CHECK_EQ_INT(uint_of(r, "retry_after_s"), 2); /* doubled */
    s_now += 2000;
    CHECK_EQ_INT(call("POST", "/api/login", "{\"password\":\"correct horse\"}", false)->resp.status,
                 200);
    teardown();
}

TEST(password_change_needs_the_current_one_and_ends_other_sessions)
{
    REQUIRE(setup());
    REQUIRE(set_password_and_login("correct horse"));
    CHECK(error_names(call("POST", "/api/password",
                           "{\"current\":\"wrong one\",\"new\":\"battery staple\"}", true),
                      403, "current"));
    s_now += 2000;
    CHECK_EQ_INT(call("POST", "/api/password",
                      "{\"current\":\"correct horse\",\"new\":\"battery staple\"}", true)
                     ->resp.status,
                 200);
    CHECK_EQ_INT(call("PUT", "/api/settings", "{}", true)->resp.status, 200); /* still ours */
    CHECK_EQ_INT(call("POST", "/api/login", "{\"password\":\"correct horse\"}", false)->resp.status,
                 401);
    teardown();
}

/* ---- settings ---- */

TEST(settings_are_validated_field_by_field)
{
    REQUIRE(setup());
    REQUIRE(set_password_and_login("correct horse"));
    CHECK(error_names(call("PUT", "/api/settings", "{\"colour\":1}", true), 400, "colour"));
    CHECK(error_names(call("PUT", "/api/settings", "{\"access\":{\"mode\":\"ajar\"}}", true), 400,
                      "access.mode"));
    CHECK(error_names(call("PUT", "/api/settings",
                           "{\"access\":{\"allow\":[\"10.0.0.0/8\",\"10.0.0.300\"]}}", true),
                      400, "access.allow[1]"));
    CHECK(error_names(call("PUT", "/api/settings", "{\"network\":{\"mode\":\"static\"}}", true),
                      400, "network"));
    CHECK(error_names(call("PUT", "/api/settings",
                           "{\"network\":{\"address\":\"10.0.0\"}}", true),
                      400, "network.address"));
    CHECK(error_names(call("PUT", "/api/settings", "{\"hostname\":\"-bad-\"}", true), 400,
                      "hostname"));
    CHECK(error_names(call("PUT", "/api/settings", "{\"syslog\":{\"target\":\"nohost\"}}", true),
                      400, "syslog.target"));
    CHECK(error_names(call("PUT", "/api/settings", "{\"access\":", true), 400, "body"));
    /* nothing above was applied */
    CHECK_EQ_INT(usbip_server_settings(F.srv)->acl.count, 0);
    reply_t *r = call("PUT", "/api/settings",
                      "{\"access\":{\"mode\":\"closed\",\"allow\":[\"192.0.2.0/24\",\"::1\"]},"
                      "\"network\":{\"mode\":\"static\",\"address\":\"192.168.1.50\","
                      "\"netmask\":\"255.255.255.0\",\"gateway\":\"192.168.1.1\"}}",
                      true);
    CHECK_EQ_INT(r->resp.status, 200);
    bool reboot = false;
    CHECK(json_read_bool(&r->doc, member(r, "reboot_needed"), &reboot) && reboot);
    const usbip_settings_t *s = usbip_server_settings(F.srv);
    CHECK_EQ_INT(s->acl.mode, USBIP_ACCESS_CLOSED);
    CHECK_EQ_INT(s->acl.count, 2);
    CHECK_EQ_INT(s->net.mode, USBIP_NET_STATIC);
    r = call("GET", "/api/settings", NULL, false);
    CHECK_STR(text_of(r, "network.address"), "192.168.1.50");
    teardown();
}

/* ---- actions and routing ---- */

TEST(actions_and_errors)
{
    REQUIRE(setup());
    REQUIRE(set_password_and_login("correct horse"));
    CHECK_EQ_INT(call("POST", "/api/devices/1-1.3/export", "{\"exported\":false}", true)
                     ->resp.status,
                 200);
    usbip_registry_entry_t *e = usbip_registry_find(usbip_server_registry(F.srv), "1-1.3");
    CHECK(e && !e->exported);
    CHECK(error_names(call("POST", "/api/devices/1-1.3/export", "{\"exported\":1}", true), 400,
                      "exported"));
    CHECK(error_names(call("POST", "/api/devices/9-9/export", "{\"exported\":true}", true), 404,
                      "busid"));
    CHECK_EQ_INT(call("POST", "/api/devices/1-1.3/reset", NULL, true)->resp.status, 501);
    CHECK(error_names(call("POST", "/api/clients/42/disconnect", NULL, true), 404, "id"));
    CHECK_EQ_INT(call("POST", "/api/system/reboot", NULL, true)->resp.status, 200);
    CHECK(F.reboot_called);
    CHECK_EQ_INT(call("POST", "/api/system/factory-reset", NULL, true)->resp.status, 501);
    CHECK_EQ_INT(call("POST", "/api/system/reboot", NULL, false)->resp.status, 403); /* no CSRF */
    CHECK(error_names(call("GET", "/api/nothing", NULL, false), 404, "path"));
    CHECK_EQ_INT(call("DELETE", "/api/status", NULL, false)->resp.status, 405);
    char big[WEBUI_MAX_BODY + 2];
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK(error_names(call("PUT", "/api/settings", big, true), 413, "body"));
    teardown();
}

TEST_MAIN("webui", TEST_ENTRY(status_devices_and_settings_shapes),
          TEST_ENTRY(events_are_read_incrementally), TEST_ENTRY(bandwidth_history_and_metrics),
          TEST_ENTRY(websocket_frames_only_on_change),
          TEST_ENTRY(no_default_password_changes_refused_until_one_is_set),
          TEST_ENTRY(login_cookie_and_csrf), TEST_ENTRY(failed_logins_are_slowed_down),
          TEST_ENTRY(password_change_needs_the_current_one_and_ends_other_sessions),
          TEST_ENTRY(settings_are_validated_field_by_field), TEST_ENTRY(actions_and_errors))
