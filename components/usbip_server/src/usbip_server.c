#include "usbip_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usbip_log.h"

static const char *TAG = "server";

typedef struct {
    usbip_session_t *session;
    uint32_t id; /* 1, 2, 3, ... in order of connection: the dashboard's client id */
    usbip_ip_addr_t peer;
    char peer_text[USBIP_IP_ADDR_TEXT_SIZE];
    bool socket_closed;
} session_record_t;

struct usbip_server {
    usbip_server_config_t cfg;
    usbip_registry_t registry;
    usbip_registry_entry_t *entries;
    usbip_event_log_t events;
    usbip_event_t *event_slots;
    usbip_settings_t settings;
    usbip_session_env_t env;
    session_record_t *sessions;
    size_t session_count;
    uint32_t next_session_id;
};

void usbip_server_config_default(usbip_server_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_devices = 16;
    cfg->max_clients = 16;
    cfg->event_capacity = 256;
    usbip_session_limits_default(&cfg->limits);
}

static session_record_t *record_of(const usbip_server_t *srv, const usbip_session_t *session)
{
    for (size_t i = 0; i < srv->session_count; i++) {
        if (srv->sessions[i].session == session) {
            return &srv->sessions[i];
        }
    }
    return NULL;
}

static bool session_peer_allowed(void *ctx, usbip_session_t *session)
{
    usbip_server_t *srv = ctx;
    const session_record_t *rec = record_of(srv, session);
    return rec && usbip_acl_allows(&srv->settings.acl, &rec->peer);
}

static void on_device_gone(void *ctx, usbip_registry_entry_t *entry, void *owner)
{
    (void)ctx;
    (void)entry;
    usbip_session_request_close(owner, "the imported device was removed");
}

static void on_device_freed(void *ctx, usbip_device_t *dev)
{
    usbip_server_t *srv = ctx;
    if (srv->cfg.device_freed) {
        srv->cfg.device_freed(srv->cfg.ctx, dev);
    }
}

static usbip_err_t load_settings(usbip_server_t *srv, char *errbuf, size_t errlen)
{
    usbip_settings_defaults(&srv->settings);
    if (!srv->cfg.store) {
        return USBIP_OK;
    }
    return usbip_settings_load(&srv->settings, srv->cfg.store, errbuf, errlen);
}

usbip_err_t usbip_server_create(const usbip_server_config_t *cfg, usbip_server_t **out,
                                char *errbuf, size_t errlen)
{
    if (usbip_session_limits_check(&cfg->limits, errbuf, errlen) != USBIP_OK) {
        return USBIP_ERR_INVALID_ARG;
    }
    if (cfg->max_devices == 0 || cfg->max_clients == 0 || cfg->event_capacity == 0) {
        snprintf(errbuf, errlen, "max devices, max clients and event capacity must be > 0");
        return USBIP_ERR_INVALID_ARG;
    }
    usbip_server_t *srv = calloc(1, sizeof *srv);
    if (!srv) {
        return USBIP_ERR_NO_MEM;
    }
    srv->cfg = *cfg;
    srv->entries = calloc(cfg->max_devices, sizeof *srv->entries);
    srv->event_slots = calloc(cfg->event_capacity, sizeof *srv->event_slots);
    srv->sessions = calloc(cfg->max_clients, sizeof *srv->sessions);
    if (!srv->entries || !srv->event_slots || !srv->sessions) {
        usbip_server_destroy(srv);
        return USBIP_ERR_NO_MEM;
    }
    const usbip_registry_hooks_t hooks = {
        .device_gone = on_device_gone,
        .device_freed = on_device_freed,
        .ctx = srv,
    };
    usbip_registry_init(&srv->registry, srv->entries, cfg->max_devices, &hooks);
    usbip_event_log_init(&srv->events, srv->event_slots, cfg->event_capacity);
    usbip_err_t err = load_settings(srv, errbuf, errlen);
    if (err != USBIP_OK) {
        usbip_server_destroy(srv);
        return err;
    }
    srv->env = (usbip_session_env_t){
        .registry = &srv->registry,
        .events = &srv->events,
        .peer_allowed = session_peer_allowed,
        .ctx = srv,
        .complete = cfg->complete,
    };
    *out = srv;
    return USBIP_OK;
}

void usbip_server_destroy(usbip_server_t *srv)
{
    if (!srv) {
        return;
    }
    for (size_t i = 0; i < srv->session_count; i++) {
        usbip_session_destroy(srv->sessions[i].session);
    }
    free(srv->entries);
    free(srv->event_slots);
    free(srv->sessions);
    free(srv);
}

usbip_registry_t *usbip_server_registry(usbip_server_t *srv) { return &srv->registry; }

usbip_event_log_t *usbip_server_events(usbip_server_t *srv) { return &srv->events; }

const usbip_settings_t *usbip_server_settings(const usbip_server_t *srv) { return &srv->settings; }

usbip_err_t usbip_server_add_device(usbip_server_t *srv, usbip_device_t *dev, uint32_t busnum,
                                    const uint8_t *ports, size_t depth)
{
    usbip_registry_entry_t *entry = NULL;
    usbip_err_t err = usbip_registry_add(&srv->registry, dev, busnum, ports, depth, &entry);
    if (err != USBIP_OK) {
        return err;
    }
    usbip_event_log_add(&srv->events, USBIP_EVENT_DEVICE_ADDED, dev->record.busid, NULL,
                        "%04x:%04x %s", dev->record.idVendor, dev->record.idProduct,
                        dev->product[0] ? dev->product : "device");
    return USBIP_OK;
}

void usbip_server_remove_device(usbip_server_t *srv, usbip_device_t *dev)
{
    usbip_registry_entry_t *entry = usbip_registry_find_device(&srv->registry, dev);
    if (!entry || entry->state == USBIP_DEV_GONE) {
        return;
    }
    usbip_event_log_add(&srv->events, USBIP_EVENT_DEVICE_REMOVED, dev->record.busid, NULL,
                        "%04x:%04x removed%s", dev->record.idVendor, dev->record.idProduct,
                        entry->state == USBIP_DEV_IMPORTED ? " while imported" : "");
    usbip_registry_remove(&srv->registry, entry);
}

usbip_err_t usbip_server_accept(usbip_server_t *srv, const usbip_ip_addr_t *peer, void *user,
                                usbip_session_t **out)
{
    char peer_text[USBIP_IP_ADDR_TEXT_SIZE];
    usbip_ip_addr_format(peer, peer_text, sizeof peer_text);
    if (!usbip_acl_allows(&srv->settings.acl, peer)) {
        usbip_event_log_add(&srv->events, USBIP_EVENT_CLIENT_REFUSED, NULL, peer_text,
                            "connection refused by access control");
        return USBIP_ERR_DENIED;
    }
    if (srv->session_count >= srv->cfg.max_clients) {
        usbip_event_log_add(&srv->events, USBIP_EVENT_CLIENT_REFUSED, NULL, peer_text,
                            "connection refused: %zu clients already connected",
                            srv->cfg.max_clients);
        return USBIP_ERR_BUSY;
    }
    usbip_session_config_t scfg = {
        .limits = srv->cfg.limits,
        .env = &srv->env,
        .user = user,
    };
    snprintf(scfg.peer, sizeof scfg.peer, "%s", peer_text);
    usbip_session_t *session = NULL;
    usbip_err_t err = usbip_session_create(&scfg, &session);
    if (err != USBIP_OK) {
        USBIP_LOGE(TAG, "%s: cannot create a session: %s", peer_text, usbip_err_name(err));
        return err;
    }
    session_record_t *rec = &srv->sessions[srv->session_count++];
    *rec = (session_record_t){.session = session, .id = ++srv->next_session_id, .peer = *peer};
    memcpy(rec->peer_text, peer_text, sizeof peer_text);
    usbip_event_log_add(&srv->events, USBIP_EVENT_CLIENT_CONNECT, NULL, peer_text, "connected");
    *out = session;
    return USBIP_OK;
}

void usbip_server_connection_closed(usbip_server_t *srv, usbip_session_t *session)
{
    session_record_t *rec = record_of(srv, session);
    if (!rec || rec->socket_closed) {
        return;
    }
    rec->socket_closed = true;
    usbip_session_close(session);
    usbip_event_log_add(&srv->events, USBIP_EVENT_CLIENT_DISCONNECT, NULL, rec->peer_text,
                        "disconnected");
}

size_t usbip_server_reap(usbip_server_t *srv, void (*on_freed)(void *ctx, void *user),
                         void *ctx)
{
    size_t i = 0;
    while (i < srv->session_count) {
        session_record_t *rec = &srv->sessions[i];
        if (!rec->socket_closed || !usbip_session_finished(rec->session)) {
            i++;
            continue;
        }
        void *user = usbip_session_user(rec->session);
        usbip_session_destroy(rec->session);
        *rec = srv->sessions[--srv->session_count];
        if (on_freed) {
            on_freed(ctx, user);
        }
    }
    return srv->session_count;
}

void usbip_server_close_all(usbip_server_t *srv, const char *reason)
{
    for (size_t i = 0; i < srv->session_count; i++) {
        usbip_session_request_close(srv->sessions[i].session, reason);
    }
}

size_t usbip_server_session_count(const usbip_server_t *srv) { return srv->session_count; }

usbip_session_t *usbip_server_session_at(const usbip_server_t *srv, size_t index)
{
    return index < srv->session_count ? srv->sessions[index].session : NULL;
}

const usbip_ip_addr_t *usbip_server_session_peer(const usbip_server_t *srv,
                                                 const usbip_session_t *session)
{
    const session_record_t *rec = record_of(srv, session);
    return rec ? &rec->peer : NULL;
}

uint32_t usbip_server_session_id(const usbip_server_t *srv, const usbip_session_t *session)
{
    const session_record_t *rec = record_of(srv, session);
    return rec ? rec->id : 0;
}

usbip_session_t *usbip_server_find_session(const usbip_server_t *srv, uint32_t id)
{
    for (size_t i = 0; i < srv->session_count; i++) {
        if (srv->sessions[i].id == id && !srv->sessions[i].socket_closed) {
            return srv->sessions[i].session;
        }
    }
    return NULL;
}

const usbip_store_t *usbip_server_store(const usbip_server_t *srv) { return srv->cfg.store; }

static void close_sessions_no_longer_allowed(usbip_server_t *srv)
{
    for (size_t i = 0; i < srv->session_count; i++) {
        session_record_t *rec = &srv->sessions[i];
        if (rec->socket_closed || usbip_acl_allows(&srv->settings.acl, &rec->peer)) {
            continue;
        }
        usbip_event_log_add(&srv->events, USBIP_EVENT_CLIENT_REFUSED, NULL, rec->peer_text,
                            "session closed: no longer allowed by access control");
        usbip_session_request_close(rec->session, "no longer allowed by access control");
    }
}

usbip_err_t usbip_server_apply_settings(usbip_server_t *srv, const usbip_settings_t *settings)
{
    if (srv->cfg.store) {
        usbip_err_t err = usbip_settings_save(settings, srv->cfg.store);
        if (err != USBIP_OK) {
            usbip_event_log_add(&srv->events, USBIP_EVENT_ERROR, NULL, NULL,
                                "settings could not be saved: %s", usbip_err_name(err));
            return err;
        }
    }
    srv->settings = *settings;
    char list[256];
    usbip_acl_format_list(&srv->settings.acl, list, sizeof list);
    usbip_event_log_add(&srv->events, USBIP_EVENT_SETTINGS, NULL, NULL,
                        "access %s, allowlist [%s]",
                        usbip_access_mode_name(srv->settings.acl.mode), list);
    close_sessions_no_longer_allowed(srv);
    return USBIP_OK;
}
