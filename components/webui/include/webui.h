/*
 * webui: the dashboard's HTTP API, /metrics and WebSocket updates (docs/api.md),
 * as a protocol engine that never touches a socket. A port binds it to its
 * HTTP server (CivetWeb in the daemon, esp_http_server on the firmware) and
 * hands each request to webui_handle() on the server's own thread (the one
 * that owns the core), together with the port's hooks: crypto, system
 * information and actions only the port can take.
 *
 * Security model: no default password; until one is set, only reads are
 * allowed. Passwords are stored as salted PBKDF2-HMAC-SHA256. A login gives
 * an HttpOnly SameSite=Strict cookie and a CSRF token that every POST/PUT
 * must carry in X-CSRF-Token. A failed login locks logins for 1 s, doubling
 * per further failure up to 60 s, during which no hash is computed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "access_control.h"
#include "usbip_err.h"
#include "usbip_server.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WEBUI_MAX_BODY      4096u /* request bodies; larger: 413 */
#define WEBUI_HISTORY_S     300u  /* bandwidth samples kept per device */
#define WEBUI_MAX_SESSIONS  8u
#define WEBUI_PASSWORD_MIN  8u
#define WEBUI_PASSWORD_MAX  64u
#define WEBUI_STORE_KEY_PASSWORD "admin_pw"

typedef struct {
    /* memory: the daemon reports rss_bytes, the firmware the heaps */
    bool has_rss;
    uint64_t rss_bytes;
    bool has_heaps;
    uint64_t heap_free, heap_min_free, psram_free;
    /* network link, where the port knows it */
    bool has_link;
    bool link_up;
    uint32_t speed_mbps;
    char ipv4[16];
} webui_system_info_t;

typedef struct {
    const char *version;   /* "0.4.0" */
    const char *platform;  /* "posix" or "esp32p4" */
    const char *hostname;  /* shown in the header; may be NULL */
    uint16_t usbip_port;
    uint32_t pbkdf2_iterations; /* new password hashes; 0: 100000 */

    /* Crypto. random(): cryptographically strong bytes. pbkdf2_sha256():
     * PBKDF2-HMAC-SHA256 with a 32-byte output; false on failure. */
    void (*random)(void *ctx, uint8_t *buf, size_t len);
    bool (*pbkdf2_sha256)(void *ctx, const char *password, const uint8_t *salt,
                          size_t salt_len, uint32_t iterations, uint8_t out[32]);
    /* Optional hooks (NULL: the feature is absent, 501 for actions). */
    void (*system_info)(void *ctx, webui_system_info_t *out);
    usbip_err_t (*reset_device)(void *ctx, const char *busid);
    usbip_err_t (*reboot)(void *ctx);        /* schedule a restart after the reply */
    usbip_err_t (*factory_reset)(void *ctx); /* erase settings, then restart */
    /* WebSocket push: send text to every connected /ws client. */
    void (*broadcast)(void *ctx, const char *text, size_t len);
    void *ctx;
} webui_port_t;

typedef struct {
    const char *method;    /* "GET", "POST", "PUT", ... */
    const char *path;      /* "/api/status": no query string */
    const char *query;     /* after '?', or NULL */
    const char *body;      /* may be NULL when body_len is 0 */
    size_t body_len;
    const char *cookie;    /* the Cookie header, or NULL */
    const char *csrf;      /* the X-CSRF-Token header, or NULL */
    const usbip_ip_addr_t *peer;
} webui_request_t;

typedef struct {
    int status;               /* HTTP status */
    const char *content_type; /* static string */
    char *body;               /* malloc'd; webui_response_free() */
    size_t body_len;
    char set_cookie[192];     /* a Set-Cookie value, or "" */
} webui_response_t;

typedef struct webui webui_t;

usbip_err_t webui_create(usbip_server_t *server, const webui_port_t *port, webui_t **out);
void webui_destroy(webui_t *ui);

/* Answer one request. Always fills resp (an error is a JSON 4xx/5xx). */
void webui_handle(webui_t *ui, const webui_request_t *req, webui_response_t *resp);
void webui_response_free(webui_response_t *resp);

/* Call from the server's thread every loop turn: samples bandwidth once a
 * second and pushes a WebSocket update at most every 500 ms when something
 * changed. Returns ms until it wants to run again. */
int webui_tick(webui_t *ui, uint64_t now_ms);

/* A WebSocket client connected: the next push carries everything. */
void webui_ws_client_joined(webui_t *ui);

/* The full update frame (what a newly joined client gets), for the port to
 * send to one client; free() it. NULL if out of memory. */
char *webui_ws_snapshot(webui_t *ui, size_t *len);

#ifdef __cplusplus
}
#endif
