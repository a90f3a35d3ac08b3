/*
 * usbip_server: the server without its sockets. It ties together the device
 * registry, access control, the event log, the persisted settings and the
 * live sessions, and applies the policies that span them: who may connect,
 * how many clients at once, closing a session whose device went away or
 * whose client a settings change no longer allows.
 *
 * A port (host daemon, firmware) owns the sockets: it calls
 * usbip_server_accept() for each new connection, drives each session's
 * byte streams, calls usbip_server_connection_closed() when the socket is
 * gone and usbip_server_reap() to free finished sessions.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "access_control.h"
#include "device_registry.h"
#include "event_log.h"
#include "settings_store.h"
#include "usbip_err.h"
#include "usbip_session.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    size_t max_devices;            /* registry capacity, default 16 */
    size_t max_clients;            /* connections at once, default 16 */
    size_t event_capacity;         /* event log ring, default 256 */
    usbip_session_limits_t limits; /* per session */
    const usbip_store_t *store;    /* settings persistence; NULL keeps them in memory */
    /* How backend completions reach the session (see usbip_session_env_t). */
    usbip_urb_complete_fn_t complete;
    /* The port frees the device's backend once the registry lets it go. */
    void (*device_freed)(void *ctx, usbip_device_t *dev);
    void *ctx;
} usbip_server_config_t;

void usbip_server_config_default(usbip_server_config_t *cfg);

typedef struct usbip_server usbip_server_t;

/* Loads the settings from the store (an unreadable setting is an error that
 * names the key, reported in errbuf). */
usbip_err_t usbip_server_create(const usbip_server_config_t *cfg, usbip_server_t **out,
                                char *errbuf, size_t errlen);
/* Sessions must all be reaped first. */
void usbip_server_destroy(usbip_server_t *srv);

usbip_registry_t *usbip_server_registry(usbip_server_t *srv);
usbip_event_log_t *usbip_server_events(usbip_server_t *srv);
const usbip_settings_t *usbip_server_settings(const usbip_server_t *srv);

/* A device appeared / went away (port-side hot-plug). */
usbip_err_t usbip_server_add_device(usbip_server_t *srv, usbip_device_t *dev, uint32_t busnum,
                                    const uint8_t *ports, size_t depth);
void usbip_server_remove_device(usbip_server_t *srv, usbip_device_t *dev);

/* A new connection. DENIED (access control) or BUSY (max clients): the port
 * closes the socket; the refusal is logged and recorded as an event. */
usbip_err_t usbip_server_accept(usbip_server_t *srv, const usbip_ip_addr_t *peer, void *user,
                                usbip_session_t **out);
/* The port closed the session's socket. */
void usbip_server_connection_closed(usbip_server_t *srv, usbip_session_t *session);
/* Destroy finished sessions; for each, on_freed(ctx, user) lets the port
 * free its per-connection data. Returns how many sessions remain. */
size_t usbip_server_reap(usbip_server_t *srv, void (*on_freed)(void *ctx, void *user),
                         void *ctx);
/* Ask every session to end (shutdown). */
void usbip_server_close_all(usbip_server_t *srv, const char *reason);

size_t usbip_server_session_count(const usbip_server_t *srv);
usbip_session_t *usbip_server_session_at(const usbip_server_t *srv, size_t index);
const usbip_ip_addr_t *usbip_server_session_peer(const usbip_server_t *srv,
                                                 const usbip_session_t *session);

/* The dashboard's id of a session (1, 2, ... in order of connection), and
 * the open session with that id (NULL if none). */
uint32_t usbip_server_session_id(const usbip_server_t *srv, const usbip_session_t *session);
usbip_session_t *usbip_server_find_session(const usbip_server_t *srv, uint32_t id);

/* The settings store (NULL when settings live in memory only). */
const usbip_store_t *usbip_server_store(const usbip_server_t *srv);

/* Replace the settings: persisted through the store, then applied at once;
 * live sessions whose client the new access control refuses are closed. */
usbip_err_t usbip_server_apply_settings(usbip_server_t *srv, const usbip_settings_t *settings);

#ifdef __cplusplus
}
#endif
