/* RFC 5424 message text and RFC 6587 octet-counting frames. */
#include <stdio.h>
#include <string.h>

#include "usbip_syslog.h"

#define NILVALUE "-"
#define WALL_CLOCK_SET_US (1577836800LL * 1000000LL) /* 2020-01-01T00:00:00Z */
#define MAX_TIME_MS 253402300799999ULL              /* 9999-12-31T23:59:59.999Z */

usbip_syslog_severity_t usbip_syslog_severity_from_esp(char letter)
{
    switch (letter) {
    case 'E':
        return USBIP_SYSLOG_SEV_ERR;
    case 'W':
        return USBIP_SYSLOG_SEV_WARNING;
    case 'I':
        return USBIP_SYSLOG_SEV_INFO;
    case 'D':
    case 'V':
        return USBIP_SYSLOG_SEV_DEBUG;
    default:
        return USBIP_SYSLOG_SEV_NOTICE;
    }
}

usbip_syslog_severity_t usbip_syslog_severity_from_usbip(usbip_log_level_t level)
{
    switch (level) {
    case USBIP_LOG_ERROR:
        return USBIP_SYSLOG_SEV_ERR;
    case USBIP_LOG_WARN:
        return USBIP_SYSLOG_SEV_WARNING;
    case USBIP_LOG_INFO:
        return USBIP_SYSLOG_SEV_INFO;
    case USBIP_LOG_DEBUG:
        return USBIP_SYSLOG_SEV_DEBUG;
    default:
        return USBIP_SYSLOG_SEV_NOTICE;
    }
}

/* Days since 1970-01-01 -> proleptic Gregorian date, by 400-year eras
 * (March-based years so the leap day is the last day of a year). */
static void civil_from_days(uint64_t days, unsigned *year, unsigned *month, unsigned *day)
{
    uint64_t z = days + 719468u; /* days since 0000-03-01 */
    uint64_t era = z / 146097u;
    uint64_t doe = z - era * 146097u;                                  /* [0, 146096] */
    uint64_t yoe = (doe - doe / 1460u + doe / 36524u - doe / 146096u) / 365u; /* [0, 399] */
    uint64_t doy = doe - (365u * yoe + yoe / 4u - yoe / 100u);        /* [0, 365] */
    uint64_t mp = (5u * doy + 2u) / 153u;                              /* [0, 11], 0 = March */
    uint64_t d = doy - (153u * mp + 2u) / 5u + 1u;
    uint64_t m = mp < 10u ? mp + 3u : mp - 9u;
    uint64_t y = yoe + era * 400u + (m <= 2u ? 1u : 0u);
    *year = (unsigned)y;
    *month = (unsigned)m;
    *day = (unsigned)d;
}

bool usbip_syslog_format_time(uint64_t time_ms, char *out, size_t out_len)
{
    if (!out || out_len == 0) {
        return false;
    }
    if (out_len < 25 || time_ms > MAX_TIME_MS) {
        snprintf(out, out_len, "%s", NILVALUE);
        return false;
    }
    uint64_t secs = time_ms / 1000u;
    unsigned ms = (unsigned)(time_ms % 1000u);
    unsigned sod = (unsigned)(secs % 86400u);
    unsigned year, month, day;
    civil_from_days(secs / 86400u, &year, &month, &day);
    snprintf(out, out_len, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ", year, month, day, sod / 3600u,
             (sod / 60u) % 60u, sod % 60u, ms);
    return true;
}

bool usbip_syslog_wall_ms(int64_t event_mono_us, int64_t now_mono_us, int64_t now_wall_us,
                          uint64_t *out_ms)
{
    if (!out_ms || now_wall_us < WALL_CLOCK_SET_US) {
        return false;
    }
    /* event_mono_us <= now_mono_us normally; tolerate either order. */
    int64_t age_us = now_mono_us - event_mono_us;
    if (age_us > now_wall_us) {
        return false;
    }
    int64_t wall_us = now_wall_us - age_us;
    if (wall_us < 0) {
        return false;
    }
    *out_ms = (uint64_t)wall_us / 1000u;
    return true;
}

/* ---- MSG sanitising ------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s (n bytes available), 0 if none. */
static size_t utf8_sequence_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) {
            lo = 0xA0; /* no overlong forms */
        } else if (c == 0xED) {
            hi = 0x9F; /* no UTF-16 surrogates */
        }
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) {
            lo = 0x90;
        } else if (c == 0xF4) {
            hi = 0x8F; /* nothing above U+10FFFF */
        }
    } else {
        return 0;
    }
    if (n < need || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
    }
    return need;
}

/* Bytes taken by the escape sequence starting with ESC at s[0]. */
static size_t escape_len(const unsigned char *s, size_t n)
{
    if (n < 2) {
        return n; /* a lone ESC at the end */
    }
    if (s[1] == '[') {
        size_t i = 2;
        while (i < n && s[i] >= 0x30 && s[i] <= 0x3F) { /* parameter bytes */
            i++;
        }
        while (i < n && s[i] >= 0x20 && s[i] <= 0x2F) { /* intermediate bytes */
            i++;
        }
        if (i < n && s[i] >= 0x40 && s[i] <= 0x7E) { /* final byte */
            return i + 1;
        }
        return i; /* malformed or cut: drop what looked like the sequence */
    }
    if (s[1] >= 0x40 && s[1] <= 0x5F) {
        return 2; /* two-byte escape (Fe) */
    }
    return 1; /* just the ESC */
}

size_t usbip_syslog_sanitize(const char *in, size_t in_len, char *out, size_t out_max)
{
    if (!in || !out) {
        return 0;
    }
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0, o = 0;
    bool pending_space = false; /* from CR/LF, written only before more text */
    while (i < in_len) {
        unsigned char c = s[i];
        const unsigned char *piece = &s[i];
        size_t piece_len = 1;
        unsigned char replacement = 0; /* nonzero: write this byte instead of the piece */
        if (c == 0x1B) {
            i += escape_len(&s[i], in_len - i);
            continue;
        }
        if (c == '\n' || c == '\r') {
            pending_space = o > 0;
            i++;
            continue;
        }
        if (c == '\t') {
            replacement = ' ';
        } else if (c < 0x20 || c == 0x7F) {
            replacement = '?';
        } else if (c >= 0x80) {
            piece_len = utf8_sequence_len(&s[i], in_len - i);
            if (piece_len == 0) {
                piece_len = 1;
                replacement = '?';
            }
        }
        size_t out_len = replacement ? 1 : piece_len;
        size_t need = out_len + (pending_space ? 1 : 0);
        if (out_max - o < need) {
            break; /* never split a character */
        }
        if (pending_space) {
            out[o++] = ' ';
            pending_space = false;
        }
        if (replacement) {
            out[o++] = (char)replacement;
        } else {
            memcpy(&out[o], piece, piece_len);
            o += piece_len;
        }
        i += piece_len;
    }
    return o;
}

/* ---- Frame --------------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t cap;
    size_t len;
    bool overflow;
} writer_t;

static void put_bytes(writer_t *w, const char *data, size_t n)
{
    if (w->overflow || w->cap - w->len < n) {
        w->overflow = true;
        return;
    }
    memcpy(&w->buf[w->len], data, n);
    w->len += n;
}

static void put_str(writer_t *w, const char *s)
{
    put_bytes(w, s, strlen(s));
}

static size_t bounded_len(const char *s, size_t max)
{
    size_t n = 0;
    while (n < max && s[n] != '\0') {
        n++;
    }
    return n;
}

/* A header field: PRINTUSASCII only, at most max characters, "-" if empty. */
static void put_field(writer_t *w, const char *value, size_t max)
{
    size_t n = value ? bounded_len(value, max) : 0;
    if (n == 0) {
        put_str(w, NILVALUE);
        return;
    }
    if (w->overflow || w->cap - w->len < n) {
        w->overflow = true;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)value[i];
        w->buf[w->len++] = (c >= 33 && c <= 126) ? (char)c : '_';
    }
}

static size_t decimal_digits(size_t v)
{
    size_t digits = 1;
    while (v >= 10) {
        v /= 10;
        digits++;
    }
    return digits;
}

usbip_err_t usbip_syslog_frame(const usbip_syslog_record_t *rec, char *buf, size_t cap,
                               size_t *frame_len)
{
    if (frame_len) {
        *frame_len = 0;
    }
    if (!rec || !buf || !frame_len || rec->facility > USBIP_SYSLOG_FACILITY_MAX ||
        (unsigned)rec->severity > USBIP_SYSLOG_SEV_DEBUG || (!rec->msg && rec->msg_len > 0)) {
        return USBIP_ERR_INVALID_ARG;
    }
    /* SYSLOG-MSG is written after room for the widest MSG-LEN prefix, then
     * moved down next to the prefix it actually needs. */
    size_t reserve = decimal_digits(cap) + 1;
    if (cap <= reserve) {
        return USBIP_ERR_INVALID_SIZE;
    }
    writer_t w = {.buf = buf + reserve, .cap = cap - reserve, .len = 0, .overflow = false};

    char text[32];
    snprintf(text, sizeof text, "<%u>1 ", rec->facility * 8u + (unsigned)rec->severity);
    put_str(&w, text);
    if (rec->has_time) {
        usbip_syslog_format_time(rec->time_ms, text, sizeof text);
    } else {
        snprintf(text, sizeof text, "%s", NILVALUE);
    }
    put_str(&w, text);
    put_str(&w, " ");
    put_field(&w, rec->hostname, USBIP_SYSLOG_HOSTNAME_MAX);
    put_str(&w, " ");
    put_field(&w, rec->app_name, USBIP_SYSLOG_APP_NAME_MAX);
    put_str(&w, " ");
    put_field(&w, rec->procid, USBIP_SYSLOG_PROCID_MAX);
    put_str(&w, " ");
    put_field(&w, rec->msgid, USBIP_SYSLOG_MSGID_MAX);
    put_str(&w, " " NILVALUE); /* STRUCTURED-DATA */
    if (w.overflow) {
        return USBIP_ERR_INVALID_SIZE;
    }

    /* " " + [BOM] + MSG, only when MSG has something to say. */
    size_t msg_max = rec->msg_max ? rec->msg_max : USBIP_SYSLOG_MSG_MAX_DEFAULT;
    size_t extra = 1 + (rec->utf8_bom ? 3 : 0);
    if (rec->msg_len > 0 && w.cap - w.len > extra) {
        size_t room = w.cap - w.len - extra;
        if (room > msg_max) {
            room = msg_max;
        }
        char *msg_at = &w.buf[w.len + extra];
        size_t n = usbip_syslog_sanitize(rec->msg, rec->msg_len, msg_at, room);
        if (n > 0) {
            w.buf[w.len] = ' ';
            if (rec->utf8_bom) {
                memcpy(&w.buf[w.len + 1], "\xEF\xBB\xBF", 3);
            }
            w.len += extra + n;
        }
    }

    size_t prefix = decimal_digits(w.len) + 1;
    memmove(buf + prefix, w.buf, w.len);
    snprintf(text, sizeof text, "%zu ", w.len);
    memcpy(buf, text, prefix);
    *frame_len = prefix + w.len;
    if (*frame_len < cap) {
        buf[*frame_len] = '\0';
    }
    return USBIP_OK;
}
