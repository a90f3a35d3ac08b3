#include "event_log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "usbip_log.h"

static const char *const TAG = "event";

static const char *const s_type_names[] = {
    [USBIP_EVENT_DEVICE_ADDED] = "device_added",
    [USBIP_EVENT_DEVICE_REMOVED] = "device_removed",
    [USBIP_EVENT_IMPORT] = "import",
    [USBIP_EVENT_RELEASE] = "release",
    [USBIP_EVENT_CLIENT_CONNECT] = "client_connect",
    [USBIP_EVENT_CLIENT_REFUSED] = "client_refused",
    [USBIP_EVENT_CLIENT_DISCONNECT] = "client_disconnect",
    [USBIP_EVENT_SETTINGS] = "settings",
    [USBIP_EVENT_ERROR] = "error",
    [USBIP_EVENT_INFO] = "info",
};

const char *usbip_event_type_name(usbip_event_type_t type)
{
    size_t index = (size_t)type;
    if (index < sizeof s_type_names / sizeof s_type_names[0] && s_type_names[index]) {
        return s_type_names[index];
    }
    return "unknown";
}

usbip_err_t usbip_event_log_init(usbip_event_log_t *log, usbip_event_t *storage, size_t capacity)
{
    if (!log) {
        USBIP_LOGE(TAG, "event_log_init: log is NULL");
        return USBIP_ERR_INVALID_ARG;
    }
    if (!storage || capacity == 0) {
        USBIP_LOGE(TAG, "event_log_init: storage %s with capacity %zu is unusable",
                   storage ? "given" : "NULL", capacity);
        return USBIP_ERR_INVALID_ARG;
    }
    log->slots = storage;
    log->capacity = capacity;
    log->next_id = 1;
    log->count = 0;
    return USBIP_OK;
}

/* A cut made by truncation may split a multi-byte UTF-8 character; drop the
 * partial tail so the dashboard's JSON stays valid UTF-8. */
static void trim_partial_utf8(char *text)
{
    size_t len = strlen(text);
    size_t lead = len;
    size_t continuation = 0;
    while (lead > 0 && ((unsigned char)text[lead - 1] & 0xC0) == 0x80 && continuation < 3) {
        lead--;
        continuation++;
    }
    if (lead == 0) {
        return;
    }
    unsigned char first = (unsigned char)text[lead - 1];
    size_t expected;
    if ((first & 0xE0) == 0xC0) {
        expected = 1;
    } else if ((first & 0xF0) == 0xE0) {
        expected = 2;
    } else if ((first & 0xF8) == 0xF0) {
        expected = 3;
    } else {
        return; /* ASCII or not a lead byte: nothing of ours to repair */
    }
    if (continuation < expected) {
        text[lead - 1] = '\0';
    }
}

/* Events end up in single log lines and syslog records: a newline or escape
 * sequence smuggled in through a busid or peer name must not split them. */
static void replace_control_chars(char *text)
{
    for (; *text; text++) {
        unsigned char c = (unsigned char)*text;
        if (c < 0x20 || c == 0x7F) {
            *text = '?';
        }
    }
}

static void copy_field(char *dst, size_t size, const char *src)
{
    int needed = snprintf(dst, size, "%s", src ? src : "");
    if (needed >= 0 && (size_t)needed >= size) {
        trim_partial_utf8(dst);
    }
    replace_control_chars(dst);
}

static usbip_event_t *slot_for_id(const usbip_event_log_t *log, uint64_t id)
{
    return &log->slots[(id - 1) % log->capacity];
}

static uint64_t oldest_id(const usbip_event_log_t *log)
{
    return log->next_id - log->count;
}

static void echo_to_log(const usbip_event_t *ev)
{
    usbip_log_level_t level = ev->type == USBIP_EVENT_ERROR ? USBIP_LOG_ERROR : USBIP_LOG_INFO;
    usbip_logf(level, TAG, "#%llu %s%s%s%s%s: %s", (unsigned long long)ev->id,
               usbip_event_type_name(ev->type), ev->busid[0] ? " busid=" : "", ev->busid,
               ev->peer[0] ? " peer=" : "", ev->peer, ev->message);
}

uint64_t usbip_event_log_add(usbip_event_log_t *log, usbip_event_type_t type, const char *busid,
                             const char *peer, const char *fmt, ...)
{
    if (!log || log->next_id == 0 || !log->slots) {
        return 0;
    }
    usbip_event_t *ev = slot_for_id(log, log->next_id);
    ev->id = log->next_id;
    ev->time_ms = usbip_now_ms();
    ev->type = type;
    copy_field(ev->busid, sizeof ev->busid, busid);
    copy_field(ev->peer, sizeof ev->peer, peer);

    ev->message[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        int needed = vsnprintf(ev->message, sizeof ev->message, fmt, ap);
        va_end(ap);
        if (needed < 0) {
            ev->message[0] = '\0';
        } else if ((size_t)needed >= sizeof ev->message) {
            trim_partial_utf8(ev->message);
        }
        replace_control_chars(ev->message);
    }

    log->next_id++;
    if (log->count < log->capacity) {
        log->count++;
    }
    echo_to_log(ev);
    return ev->id;
}

size_t usbip_event_log_read(const usbip_event_log_t *log, uint64_t after_id, usbip_event_t *out,
                            size_t max)
{
    if (!log || log->next_id == 0 || !out || max == 0 || log->count == 0) {
        return 0;
    }
    if (after_id >= log->next_id - 1) {
        return 0; /* nothing newer (also covers a reader from before a restart) */
    }
    uint64_t first = oldest_id(log);
    /* Events up to oldest_id - 1 are gone: start at the oldest still held. */
    if (after_id >= first) {
        first = after_id + 1;
    }
    size_t copied = 0;
    for (uint64_t id = first; id < log->next_id && copied < max; id++) {
        out[copied++] = *slot_for_id(log, id);
    }
    return copied;
}

uint64_t usbip_event_log_last_id(const usbip_event_log_t *log)
{
    if (!log || log->next_id == 0 || log->count == 0) {
        return 0;
    }
    return log->next_id - 1;
}
