/*
 * Unit tests of the server composition (usbip_server): access control at
 * accept, the client limit, settings applied and persisted through a fake
 * store, and device removal while imported. Sessions are driven through
 * their byte interface with fake backends.
 */
#include <stdlib.h>
#include <string.h>

#include "fake_backend.h"
#include "test_harness.h"
#include "usbip_log.h"
#include "usbip_server.h"

/* ---- an in-memory usbip_store_t ---- */

#define STORE_KEYS 16

typedef struct {
    char key[STORE_KEYS][USBIP_STORE_KEY_MAX + 1];
    char value[STORE_KEYS][USBIP_STORE_VALUE_MAX + 1];
    bool used[STORE_KEYS];
    int sets;
    int commits;
    usbip_err_t fail_set; /* OK: sets succeed */
} mem_store_t;

static int store_find(mem_store_t *m, const char *key)
{
    for (int i = 0; i < STORE_KEYS; i++) {
        if (m->used[i] && strcmp(m->key[i], key) == 0) {
            return i;
        }
    }
    return -1;
}

static usbip_err_t store_get(void *ctx, const char *key, char *value, size_t *len)
{
    mem_store_t *m = ctx;
    int i = store_find(m, key);
    if (i < 0) {
        return USBIP_ERR_NOT_FOUND;
    }
    size_t n = strlen(m->value[i]);
    if (n + 1 > *len) {
        return USBIP_ERR_INVALID_SIZE;
    }
    memcpy(value, m->value[i], n + 1);
    *len = n;
    return USBIP_OK;
}

static usbip_err_t store_set(void *ctx, const char *key, const char *value)
{
    mem_store_t *m = ctx;
    if (m->fail_set != USBIP_OK) {
        return m->fail_set;
    }
    m->sets++;
    int i = store_find(m, key);
    for (int j = 0; i < 0 && j < STORE_KEYS; j++) {
        if (!m->used[j]) {
            i = j;
            m->used[j] = true;
            snprintf(m->key[j], sizeof m->key[j], "%s", key);
        }
    }
    if (i < 0) {
        return USBIP_ERR_NO_MEM;
    }
    snprintf(m->value[i], sizeof m->value[i], "%s", value);
    return USBIP_OK;
}

static usbip_err_t store_erase(void *ctx, const char *key)
{
    mem_store_t *m = ctx;
    int i = store_find(m, key);
    if (i < 0) {
        return USBIP_ERR_NOT_FOUND;
    }
    m->used[i] = false;
    return USBIP_OK;
}

static usbip_err_t store_commit(void *ctx)
{
    mem_store_t *m = ctx;
    m->commits++;
    return USBIP_OK;
}

static const usbip_store_ops_t s_store_ops = {store_get, store_set, store_erase, store_commit};

static const char *store_value(mem_store_t *m, const char *key)
{
    int i = store_find(m, key);
    return i < 0 ? NULL : m->value[i];
}

/* ---- fixture ---- */

typedef struct {
    mem_store_t mem;
    usbip_store_t store;
    usbip_server_t *srv;
    int freed;
    usbip_device_t *freed_dev[8];
    int reaped;
    void *reaped_user[8];
} fixture_t;

static void on_device_freed(void *ctx, usbip_device_t *dev)
{
    fixture_t *f = ctx;
    if (f->freed < 8) {
        f->freed_dev[f->freed] = dev;
    }
    f->freed++;
}

static void on_session_freed(void *ctx, void *user)
{
    fixture_t *f = ctx;
    if (f->reaped < 8) {
        f->reaped_user[f->reaped] = user;
    }
    f->reaped++;
}

static void quiet_sink(void *ctx, usbip_log_level_t level, const char *tag, const char *msg)
{
    (void)ctx;
    (void)level;
    (void)tag;
    (void)msg;
}

static fixture_t *fixture_new(size_t max_clients)
{
    fixture_t *f = calloc(1, sizeof *f);
    usbip_log_set_sink(quiet_sink, NULL);
    f->store = (usbip_store_t){&s_store_ops, &f->mem};
    usbip_server_config_t cfg;
    usbip_server_config_default(&cfg);
    cfg.max_clients = max_clients;
    cfg.store = &f->store;
    cfg.device_freed = on_device_freed;
    cfg.ctx = f;
    char err[160];
    if (usbip_server_create(&cfg, &f->srv, err, sizeof err) != USBIP_OK) {
        fprintf(stderr, "server_create: %s\n", err);
        abort();
    }
    return f;
}

static void fixture_free(fixture_t *f)
{
    usbip_server_destroy(f->srv);
    free(f);
    usbip_log_set_sink(NULL, NULL);
}

static usbip_ip_addr_t ip(const char *text)
{
    usbip_ip_addr_t a;
    if (usbip_ip_addr_parse(text, &a) != USBIP_OK) {
        abort();
    }
    return a;
}

/* Events of a type since id after, counted; *last gets the latest message. */
static int count_events(usbip_server_t *srv, usbip_event_type_t type, const char **peer,
                        char *last, size_t last_len)
{
    static usbip_event_t ev[256];
    size_t n = usbip_event_log_read(usbip_server_events(srv), 0, ev, 256);
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].type == type) {
            count++;
            if (peer) {
                *peer = ev[i].peer;
            }
            if (last) {
                snprintf(last, last_len, "%s", ev[i].message);
            }
        }
    }
    return count;
}

static size_t feed(usbip_session_t *s, const uint8_t *p, size_t len)
{
    size_t done = 0;
    while (done < len) {
        uint8_t *dst;
        size_t space = usbip_session_read_space(s, &dst);
        if (space == 0) {
            break;
        }
        size_t n = len - done < space ? len - done : space;
        memcpy(dst, p + done, n);
        done += n;
        if (usbip_session_input(s, n) != USBIP_OK) {
            break;
        }
    }
    return done;
}

static size_t drain(usbip_session_t *s, uint8_t *out, size_t cap)
{
    size_t total = 0;
    usbip_iovec_t iov[8];
    size_t n;
    while ((n = usbip_session_output(s, iov, 8)) > 0) {
        size_t wrote = 0;
        for (size_t i = 0; i < n; i++) {
            if (out && total + wrote + iov[i].len <= cap) {
                memcpy(out + total + wrote, iov[i].base, iov[i].len);
            }
            wrote += iov[i].len;
        }
        usbip_session_output_done(s, wrote);
        total += wrote;
    }
    return total;
}

static bool import(usbip_session_t *s, const char *busid, uint8_t *status)
{
    uint8_t req[40], rep[0x140];
    usbip_import_request_encode(req, USBIP_VERSION_0111, busid);
    if (feed(s, req, 40) != 40) {
        return false;
    }
    size_t n = drain(s, rep, sizeof rep);
    *status = n >= 8 ? rep[7] : 0xff;
    return n == 0x140;
}

/* ---- tests ---- */

TEST(accept_in_closed_mode_refuses_peers_outside_the_allowlist)
{
    fixture_t *f = fixture_new(4);
    usbip_settings_t st = *usbip_server_settings(f->srv);
    st.acl.mode = USBIP_ACCESS_CLOSED;
    REQUIRE(usbip_acl_set_list(&st.acl, "10.0.0.0/8, ::1", NULL, 0) == USBIP_OK);
    REQUIRE(usbip_server_apply_settings(f->srv, &st) == USBIP_OK);

    usbip_session_t *s = NULL;
    const usbip_ip_addr_t outsider = ip("192.168.1.5");
    CHECK(usbip_server_accept(f->srv, &outsider, NULL, &s) == USBIP_ERR_DENIED);
    CHECK(s == NULL);
    CHECK_EQ_INT(usbip_server_session_count(f->srv), 0);
    const char *peer = NULL;
    CHECK_EQ_INT(count_events(f->srv, USBIP_EVENT_CLIENT_REFUSED, &peer, NULL, 0), 1);
    CHECK_STR(peer, "192.168.1.5");

    const usbip_ip_addr_t insider = ip("10.1.2.3");
    CHECK(usbip_server_accept(f->srv, &insider, NULL, &s) == USBIP_OK);
    REQUIRE(s != NULL);
    CHECK_STR(usbip_session_peer(s), "10.1.2.3");
    CHECK(usbip_ip_addr_equal(usbip_server_session_peer(f->srv, s), &insider));
    CHECK_EQ_INT(count_events(f->srv, USBIP_EVENT_CLIENT_CONNECT, &peer, NULL, 0), 1);
    CHECK_STR(peer, "10.1.2.3");
    const usbip_ip_addr_t v6 = ip("::1");
    CHECK(usbip_server_accept(f->srv, &v6, NULL, &s) == USBIP_OK);
    CHECK_EQ_INT(usbip_server_session_count(f->srv), 2);

    for (size_t i = usbip_server_session_count(f->srv); i-- > 0;) {
        usbip_server_connection_closed(f->srv, usbip_server_session_at(f->srv, i));
    }
    CHECK_EQ_INT(usbip_server_reap(f->srv, NULL, NULL), 0);
    fixture_free(f);
}

TEST(accept_beyond_max_clients_is_busy_until_one_is_reaped)
{
    fixture_t *f = fixture_new(2);
    const usbip_ip_addr_t a = ip("10.0.0.1");
    usbip_session_t *s1 = NULL, *s2 = NULL, *s3 = NULL;
    int u1, u2, u3;
    CHECK(usbip_server_accept(f->srv, &a, &u1, &s1) == USBIP_OK);
    CHECK(usbip_server_accept(f->srv, &a, &u2, &s2) == USBIP_OK);
    CHECK(usbip_server_accept(f->srv, &a, &u3, &s3) == USBIP_ERR_BUSY);
    CHECK(s3 == NULL);
    char msg[128] = "";
    CHECK_EQ_INT(count_events(f->srv, USBIP_EVENT_CLIENT_REFUSED, NULL, msg, sizeof msg), 1);
    CHECK(strstr(msg, "2 clients") != NULL);
    /* a closed but unreaped session still counts */
    usbip_server_connection_closed(f->srv, s1);
    CHECK(usbip_server_accept(f->srv, &a, &u3, &s3) == USBIP_ERR_BUSY);
    CHECK_EQ_INT(usbip_server_reap(f->srv, on_session_freed, f), 1);
    CHECK_EQ_INT(f->reaped, 1);
    CHECK(f->reaped_user[0] == &u1);
    CHECK(usbip_server_accept(f->srv, &a, &u3, &s3) == USBIP_OK);
    CHECK(usbip_session_user(s3) == &u3);
    CHECK_EQ_INT(count_events(f->srv, USBIP_EVENT_CLIENT_DISCONNECT, NULL, NULL, 0), 1);
    usbip_server_connection_closed(f->srv, s2);
    usbip_server_connection_closed(f->srv, s3);
    CHECK_EQ_INT(usbip_server_reap(f->srv, on_session_freed, f), 0);
    CHECK_EQ_INT(f->reaped, 3);
    fixture_free(f);
}

TEST(apply_settings_closes_sessions_no_longer_allowed_and_keeps_the_others)
{
    fixture_t *f = fixture_new(4);
    const usbip_ip_addr_t in = ip("10.1.1.1"), out = ip("192.168.0.9");
    usbip_session_t *s_in = NULL, *s_out = NULL;
    REQUIRE(usbip_server_accept(f->srv, &in, NULL, &s_in) == USBIP_OK);
    REQUIRE(usbip_server_accept(f->srv, &out, NULL, &s_out) == USBIP_OK);
    usbip_settings_t st;
    usbip_settings_defaults(&st);
    st.acl.mode = USBIP_ACCESS_CLOSED;
    REQUIRE(usbip_acl_set_list(&st.acl, "10.0.0.0/8", NULL, 0) == USBIP_OK);
    snprintf(st.syslog_target, sizeof st.syslog_target, "logs.example:514");
    CHECK(usbip_server_apply_settings(f->srv, &st) == USBIP_OK);
    CHECK(usbip_session_wants_close(s_out));
    CHECK(!usbip_session_wants_close(s_in));
    uint8_t *p;
    CHECK_EQ_INT(usbip_session_read_space(s_out, &p), 0);
    CHECK_EQ_INT(usbip_session_read_space(s_in, &p), 8);
    /* persisted */
    CHECK_STR(store_value(&f->mem, "acl_mode"), "closed");
    CHECK_STR(store_value(&f->mem, "acl_list"), "10.0.0.0/8");
    CHECK_STR(store_value(&f->mem, "syslog_target"), "logs.example:514");
    CHECK_EQ_INT(f->mem.commits, 1);
    /* and in effect */
    CHECK(usbip_server_settings(f->srv)->acl.mode == USBIP_ACCESS_CLOSED);
    CHECK_STR(usbip_server_settings(f->srv)->syslog_target, "logs.example:514");
    char msg[128] = "";
    CHECK_EQ_INT(count_events(f->srv, USBIP_EVENT_SETTINGS, NULL, msg, sizeof msg), 1);
    CHECK(strstr(msg, "closed") != NULL && strstr(msg, "10.0.0.0/8") != NULL);
    const char *peer = NULL;
    CHECK_EQ_INT(count_events(f->srv, USBIP_EVENT_CLIENT_REFUSED, &peer, NULL, 0), 1);
    CHECK_STR(peer, "192.168.0.9");

    /* a server created on the same store starts with these settings */
    usbip_server_config_t cfg;
    usbip_server_config_default(&cfg);
    cfg.store = &f->store;
    usbip_server_t *again = NULL;
    char err[160];
    REQUIRE(usbip_server_create(&cfg, &again, err, sizeof err) == USBIP_OK);
    CHECK(usbip_server_settings(again)->acl.mode == USBIP_ACCESS_CLOSED);
    CHECK_EQ_INT(usbip_server_settings(again)->acl.count, 1);
    CHECK(usbip_server_accept(again, &out, NULL, &s_out) == USBIP_ERR_DENIED);
    usbip_server_destroy(again);

    for (size_t i = usbip_server_session_count(f->srv); i-- > 0;) {
        usbip_server_connection_closed(f->srv, usbip_server_session_at(f->srv, i));
    }
    CHECK_EQ_INT(usbip_server_reap(f->srv, NULL, NULL), 0);
    fixture_free(f);
}

TEST(apply_settings_that_cannot_be_saved_changes_nothing)
{
    fixture_t *f = fixture_new(4);
    const usbip_ip_addr_t out = ip("192.168.0.9");
    usbip_session_t *s = NULL;
    REQUIRE(usbip_server_accept(f->srv, &out, NULL, &s) == USBIP_OK);
    f->mem.fail_set = USBIP_ERR_IO;
    usbip_settings_t st;
    usbip_settings_defaults(&st);
    st.acl.mode = USBIP_ACCESS_CLOSED;
    CHECK(usbip_server_apply_settings(f->srv, &st) == USBIP_ERR_IO);
    CHECK(usbip_server_settings(f->srv)->acl.mode == USBIP_ACCESS_OPEN);
    CHECK(!usbip_session_wants_close(s));
    CHECK_EQ_INT(count_events(f->srv, USBIP_EVENT_ERROR, NULL, NULL, 0), 1);
    CHECK_EQ_INT(f->mem.commits, 0);
    usbip_server_connection_closed(f->srv, s);
    CHECK_EQ_INT(usbip_server_reap(f->srv, NULL, NULL), 0);
    fixture_free(f);
}

TEST(create_with_an_unreadable_setting_fails_naming_the_key)
{
    mem_store_t mem;
    memset(&mem, 0, sizeof mem);
    usbip_store_t store = {&s_store_ops, &mem};
    REQUIRE(store_set(&mem, "acl_mode", "bogus") == USBIP_OK);
    usbip_server_config_t cfg;
    usbip_server_config_default(&cfg);
    cfg.store = &store;
    usbip_server_t *srv = NULL;
    char err[160] = "";
    usbip_log_set_sink(quiet_sink, NULL);
    CHECK(usbip_server_create(&cfg, &srv, err, sizeof err) != USBIP_OK);
    CHECK(strstr(err, "acl_mode") != NULL);
    cfg.max_clients = 0;
    CHECK(usbip_server_create(&cfg, &srv, err, sizeof err) == USBIP_ERR_INVALID_ARG);
    usbip_log_set_sink(NULL, NULL);
}

TEST(device_removal_while_imported_closes_that_session_only)
{
    fixture_t *f = fixture_new(4);
    fake_backend_t *fa = calloc(1, sizeof *fa), *fb = calloc(1, sizeof *fb);
    fake_backend_init(fa);
    fake_backend_init(fb);
    const uint8_t p1[] = {1}, p2[] = {2};
    REQUIRE(usbip_server_add_device(f->srv, &fa->dev, 1, p1, 1) == USBIP_OK);
    REQUIRE(usbip_server_add_device(f->srv, &fb->dev, 1, p2, 1) == USBIP_OK);
    CHECK_EQ_INT(count_events(f->srv, USBIP_EVENT_DEVICE_ADDED, NULL, NULL, 0), 2);
    const usbip_ip_addr_t a = ip("10.0.0.1"), b = ip("10.0.0.2");
    usbip_session_t *sa = NULL, *sb = NULL;
    int ua, ub;
    REQUIRE(usbip_server_accept(f->srv, &a, &ua, &sa) == USBIP_OK);
    REQUIRE(usbip_server_accept(f->srv, &b, &ub, &sb) == USBIP_OK);
    uint8_t status;
    REQUIRE(import(sa, "1-1", &status));
    REQUIRE(import(sb, "1-2", &status));
    CHECK_EQ_INT(fa->attach_calls, 1);
    CHECK_EQ_INT(fb->attach_calls, 1);
    /* one URB in flight on device A */
    fake_buf_t buf = {0};
    fake_buf_submit(&buf, 1, 0x00010001u, USBIP_DIR_IN, FAKE_EP_INTR_IN, 0, 8, 0, NULL);
    CHECK_EQ_INT(feed(sa, buf.data, buf.len), 48);
    REQUIRE(fa->pending == 1);

    usbip_server_remove_device(f->srv, &fa->dev);
    CHECK(usbip_session_wants_close(sa));
    CHECK(!usbip_session_wants_close(sb));
    CHECK_EQ_INT(f->freed, 0);
    char msg[128] = "";
    CHECK_EQ_INT(count_events(f->srv, USBIP_EVENT_DEVICE_REMOVED, NULL, msg, sizeof msg), 1);
    CHECK(strstr(msg, "while imported") != NULL);
    usbip_server_remove_device(f->srv, &fa->dev); /* twice: nothing more */
    CHECK_EQ_INT(count_events(f->srv, USBIP_EVENT_DEVICE_REMOVED, NULL, NULL, 0), 1);

    /* the port closes A's socket: the URB is cancelled, then returns */
    usbip_server_connection_closed(f->srv, sa);
    CHECK_EQ_INT(fa->cancel_calls, 1);
    CHECK_EQ_INT(usbip_server_reap(f->srv, on_session_freed, f), 2); /* not finished yet */
    fake_complete(fa, fake_pending_urb(fa, 0), USBIP_ENODEV, 0, NULL);
    CHECK_EQ_INT(fa->detach_calls, 1);
    CHECK_EQ_INT(f->freed, 1);
    CHECK(f->freed_dev[0] == &fa->dev);
    CHECK_EQ_INT(usbip_server_reap(f->srv, on_session_freed, f), 1);
    CHECK(f->reaped == 1 && f->reaped_user[0] == &ua);
    CHECK(usbip_server_session_at(f->srv, 0) == sb);
    CHECK(usbip_registry_find(usbip_server_registry(f->srv), "1-1") == NULL);
    CHECK(usbip_registry_find(usbip_server_registry(f->srv), "1-2") != NULL);

    /* removing an available device frees it at once */
    usbip_server_connection_closed(f->srv, sb);
    CHECK_EQ_INT(fb->detach_calls, 1);
    CHECK_EQ_INT(usbip_server_reap(f->srv, on_session_freed, f), 0);
    usbip_server_remove_device(f->srv, &fb->dev);
    CHECK_EQ_INT(f->freed, 2);
    CHECK(f->freed_dev[1] == &fb->dev);

    fake_buf_free(&buf);
    fake_backend_free(fa);
    fake_backend_free(fb);
    free(fa);
    free(fb);
    fixture_free(f);
}

TEST(import_through_the_server_honours_access_control_changes)
{
    fixture_t *f = fixture_new(4);
    fake_backend_t *fa = calloc(1, sizeof *fa);
    fake_backend_init(fa);
    const uint8_t p1[] = {1};
    REQUIRE(usbip_server_add_device(f->srv, &fa->dev, 1, p1, 1) == USBIP_OK);
    const usbip_ip_addr_t a = ip("10.0.0.1");
    usbip_session_t *s = NULL;
    REQUIRE(usbip_server_accept(f->srv, &a, NULL, &s) == USBIP_OK);
    /* the allowlist changes before the client sends its request: the session
     * is asked to close and reads nothing more, so nothing is imported */
    usbip_settings_t st;
    usbip_settings_defaults(&st);
    st.acl.mode = USBIP_ACCESS_CLOSED;
    REQUIRE(usbip_server_apply_settings(f->srv, &st) == USBIP_OK);
    CHECK(usbip_session_wants_close(s));
    uint8_t status = 0;
    CHECK(!import(s, "1-1", &status));
    CHECK_EQ_INT(fa->attach_calls, 0);
    usbip_server_connection_closed(f->srv, s);
    CHECK_EQ_INT(usbip_server_reap(f->srv, NULL, NULL), 0);
    fake_backend_free(fa);
    free(fa);
    fixture_free(f);
}

TEST(add_device_refuses_hubs_and_close_all_asks_every_session)
{
    fixture_t *f = fixture_new(4);
    fake_backend_t *hub = calloc(1, sizeof *hub);
    fake_backend_init(hub);
    hub->dev.record.bDeviceClass = 0x09;
    const uint8_t p1[] = {1};
    CHECK(usbip_server_add_device(f->srv, &hub->dev, 1, p1, 1) == USBIP_ERR_NOT_SUPPORTED);
    CHECK_EQ_INT(count_events(f->srv, USBIP_EVENT_DEVICE_ADDED, NULL, NULL, 0), 0);
    const usbip_ip_addr_t a = ip("10.0.0.1");
    usbip_session_t *s1 = NULL, *s2 = NULL;
    REQUIRE(usbip_server_accept(f->srv, &a, NULL, &s1) == USBIP_OK);
    REQUIRE(usbip_server_accept(f->srv, &a, NULL, &s2) == USBIP_OK);
    usbip_server_close_all(f->srv, "shutdown");
    CHECK(usbip_session_wants_close(s1));
    CHECK(usbip_session_wants_close(s2));
    usbip_server_connection_closed(f->srv, s1);
    usbip_server_connection_closed(f->srv, s2);
    CHECK_EQ_INT(usbip_server_reap(f->srv, NULL, NULL), 0);
    fake_backend_free(hub);
    free(hub);
    fixture_free(f);
}

TEST_MAIN("server",
          TEST_ENTRY(accept_in_closed_mode_refuses_peers_outside_the_allowlist),
          TEST_ENTRY(accept_beyond_max_clients_is_busy_until_one_is_reaped),
          TEST_ENTRY(apply_settings_closes_sessions_no_longer_allowed_and_keeps_the_others),
          TEST_ENTRY(apply_settings_that_cannot_be_saved_changes_nothing),
          TEST_ENTRY(create_with_an_unreadable_setting_fails_naming_the_key),
          TEST_ENTRY(device_removal_while_imported_closes_that_session_only),
          TEST_ENTRY(import_through_the_server_honours_access_control_changes),
          TEST_ENTRY(add_device_refuses_hubs_and_close_all_asks_every_session))
