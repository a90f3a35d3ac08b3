/*
 * event_log: a bounded ring of structured events (devices added/removed,
 * imports, client connections, settings changes, errors) kept for the
 * dashboard and echoed to the log.
 *
 * The caller provides the slot storage; when the ring is full the oldest
 * event is overwritten. Every event gets an id (1, 2, 3, ...) so a reader can
 * ask for "everything after the last id I saw" and notice a gap when it fell
 * behind. Not thread-safe: the owner serialises calls.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "usbip_err.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    USBIP_EVENT_DEVICE_ADDED,
    USBIP_EVENT_DEVICE_REMOVED,
    USBIP_EVENT_IMPORT,
    USBIP_EVENT_RELEASE,
    USBIP_EVENT_CLIENT_CONNECT,
    USBIP_EVENT_CLIENT_REFUSED,
    USBIP_EVENT_CLIENT_DISCONNECT,
    USBIP_EVENT_SETTINGS,
    USBIP_EVENT_ERROR,
    USBIP_EVENT_INFO,
} usbip_event_type_t;

#define USBIP_EVENT_BUSID_SIZE 32
#define USBIP_EVENT_PEER_SIZE 48
#define USBIP_EVENT_MESSAGE_SIZE 128

typedef struct {
    uint64_t id;      /* 1, 2, 3, ... in order of addition */
    uint64_t time_ms; /* usbip_now_ms() when added */
    usbip_event_type_t type;
    char busid[USBIP_EVENT_BUSID_SIZE];     /* "" when not about a device */
    char peer[USBIP_EVENT_PEER_SIZE];       /* "" when not about a client */
    char message[USBIP_EVENT_MESSAGE_SIZE]; /* NUL-terminated, truncated */
} usbip_event_t;

/* Public so it can be a static; treat the fields as private. */
typedef struct {
    usbip_event_t *slots;
    size_t capacity;
    uint64_t next_id; /* id the next event gets; 0 = not initialised */
    size_t count;     /* events held, <= capacity */
} usbip_event_log_t;

/* Use storage[0..capacity-1] for the ring. INVALID_ARG if log or storage is
 * NULL or capacity is 0. */
usbip_err_t usbip_event_log_init(usbip_event_log_t *log, usbip_event_t *storage, size_t capacity);

/* Append an event (the oldest is overwritten when full) and echo it through
 * usbip_logf with tag "event" (ERROR events at USBIP_LOG_ERROR, others at
 * USBIP_LOG_INFO). busid and peer may be NULL; strings that do not fit are
 * truncated and control characters become '?'. Returns the new id, or 0 if
 * log is NULL or not initialised. */
uint64_t usbip_event_log_add(usbip_event_log_t *log, usbip_event_type_t type, const char *busid,
                             const char *peer, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Copy up to max events with id > after_id into out, oldest first; returns
 * how many. Events already overwritten are skipped, so the caller sees a gap
 * in the ids. */
size_t usbip_event_log_read(const usbip_event_log_t *log, uint64_t after_id, usbip_event_t *out,
                            size_t max);

/* Id of the newest event, 0 if none was ever added. */
uint64_t usbip_event_log_last_id(const usbip_event_log_t *log);

/* snake_case name: "device_added", "client_refused", ...; "unknown" otherwise. */
const char *usbip_event_type_name(usbip_event_type_t type);

#ifdef __cplusplus
}
#endif
