/*
 * usbip_session: the USB/IP protocol engine for one TCP connection.
 *
 * It never touches a socket. The port asks where to put incoming bytes
 * (usbip_session_read_space), reports how many arrived (usbip_session_input),
 * collects reply bytes as an iovec list for one writev
 * (usbip_session_output), and reports what was written
 * (usbip_session_output_done). Backend completions are handed in with
 * usbip_session_urb_completed, in the session's own context.
 *
 * The session owns its URB table (a pool sized at creation), decides the
 * unlink race, keeps replies in completion order for a single writer, and
 * applies its limits by not offering read space: at a limit it stops reading
 * the socket and lets TCP push back; it never drops or desynchronises.
 * OUT payload is read straight into the backend's transfer buffer and IN
 * payload is written straight from it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "device_registry.h"
#include "event_log.h"
#include "usbip_backend.h"
#include "usbip_err.h"
#include "usbip_stats.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint32_t max_urbs;            /* URBs in flight, default 64 */
    uint64_t max_bytes_in_flight; /* payload bytes admitted and not yet answered, default 16 MiB */
    uint32_t max_urb_size;        /* largest transfer_buffer_length, default 1 MiB */
    uint32_t max_iso_packets;     /* per URB, default 1024 (at most USBIP_MAX_ISO_PACKETS) */
} usbip_session_limits_t;

void usbip_session_limits_default(usbip_session_limits_t *limits);
/* INVALID_ARG with a message in errbuf when a limit is zero or inconsistent. */
usbip_err_t usbip_session_limits_check(const usbip_session_limits_t *limits, char *errbuf,
                                       size_t errlen);

typedef struct usbip_session usbip_session_t;

typedef struct {
    usbip_registry_t *registry;
    usbip_event_log_t *events; /* may be NULL */
    /* Access control at DEVLIST and IMPORT; NULL allows everyone. */
    bool (*peer_allowed)(void *ctx, usbip_session_t *session);
    void *ctx;
    /* How backend completions reach usbip_session_urb_completed. NULL: the
     * backend calls it directly (single-threaded ports). A threaded port
     * installs a function that queues the URB to the session's thread. */
    usbip_urb_complete_fn_t complete;
} usbip_session_env_t;

typedef struct {
    usbip_session_limits_t limits;
    const usbip_session_env_t *env;
    char peer[48];  /* printable peer address, for logs and events */
    void *user;     /* the port's per-connection data */
} usbip_session_config_t;

typedef struct {
    const void *base;
    size_t len;
} usbip_iovec_t;

typedef enum {
    USBIP_SESSION_OP,      /* before DEVLIST/IMPORT */
    USBIP_SESSION_URB,     /* device imported: URB traffic */
    USBIP_SESSION_CLOSING, /* waiting for the backend to return URBs */
    USBIP_SESSION_DONE,    /* may be destroyed */
} usbip_session_state_t;

usbip_err_t usbip_session_create(const usbip_session_config_t *cfg, usbip_session_t **out);
/* Only once usbip_session_finished() is true (or before any import). */
void usbip_session_destroy(usbip_session_t *s);

/* Where the next incoming bytes go and how many are wanted; 0 means do not
 * read now (a limit is reached, output must drain first, or the session
 * ends). The pointer stays valid until the next call into the session. */
size_t usbip_session_read_space(usbip_session_t *s, uint8_t **buf);
/* n bytes were written at the read_space pointer. An error means the
 * connection must be closed (the reason is logged, naming field and value). */
usbip_err_t usbip_session_input(usbip_session_t *s, size_t n);

/* Fill iov with the pending reply bytes (several PDUs at once when they
 * fit); returns the number of entries, 0 if nothing is pending. */
size_t usbip_session_output(usbip_session_t *s, usbip_iovec_t *iov, size_t max_iov);
/* n bytes from the last usbip_session_output were written. */
void usbip_session_output_done(usbip_session_t *s, size_t n);

/* Backend completion, in the session's context. */
void usbip_session_urb_completed(usbip_session_t *s, usbip_urb_t *urb);

/* True when the port should close the socket now: a protocol error, a reply
 * after which the connection ends (DEVLIST, failed IMPORT) fully written,
 * or usbip_session_request_close(). */
bool usbip_session_wants_close(const usbip_session_t *s);
/* Ask for the connection to end (device gone, access revoked, shutdown). */
void usbip_session_request_close(usbip_session_t *s, const char *reason);
/* The socket is closed: cancel what is in flight and release the device
 * once the backend has returned every URB. */
void usbip_session_close(usbip_session_t *s);
bool usbip_session_finished(const usbip_session_t *s);

usbip_session_state_t usbip_session_state(const usbip_session_t *s);
const char *usbip_session_peer(const usbip_session_t *s);
void *usbip_session_user(const usbip_session_t *s);
const usbip_stats_t *usbip_session_stats(const usbip_session_t *s);
/* The imported device's registry entry, or NULL. */
usbip_registry_entry_t *usbip_session_device(const usbip_session_t *s);
uint32_t usbip_session_urbs_in_flight(const usbip_session_t *s);
uint64_t usbip_session_connected_ms(const usbip_session_t *s);

#ifdef __cplusplus
}
#endif
