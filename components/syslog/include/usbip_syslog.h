/*
 * usbip_syslog: RFC 5424 syslog messages with RFC 6587 octet-counting
 * framing, the pieces that turn ESP-IDF console output into them, and the
 * bounded per-connection send queue. Pure C11: no allocation, no clock, no
 * sockets; the firmware's remote_syslog component supplies those.
 *
 * Frame layout (RFC 6587 section 3.4.1, RFC 5424 section 6):
 *
 *   MSG-LEN SP "<" PRI ">1" SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP "-" [SP MSG]
 *
 * - MSG-LEN is the exact number of bytes that follow the space.
 * - PRI = facility * 8 + severity.
 * - TIMESTAMP is "YYYY-MM-DDThh:mm:ss.sssZ" (UTC, milliseconds) or "-".
 * - Header fields keep PRINTUSASCII (33..126) only: other bytes become '_';
 *   empty or NULL fields are "-"; each is cut to its RFC 5424 maximum.
 * - STRUCTURED-DATA is always "-".
 * - MSG is sanitised (usbip_syslog_sanitize) and cut to msg_max bytes on a
 *   UTF-8 character boundary. By default it is sent as MSG-ANY, without a
 *   BOM (ESP log text is ASCII in practice, and a BOM shows up as garbage in
 *   `nc`); set utf8_bom to send MSG-UTF8 with the BOM instead.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "usbip_err.h"
#include "usbip_log.h"

#ifdef __cplusplus
extern "C" {
#endif

/* RFC 5424 field limits (section 6). */
#define USBIP_SYSLOG_HOSTNAME_MAX 255
#define USBIP_SYSLOG_APP_NAME_MAX 48
#define USBIP_SYSLOG_PROCID_MAX 128
#define USBIP_SYSLOG_MSGID_MAX 32

/* Default cap on MSG bytes; truncation keeps the frame valid. */
#define USBIP_SYSLOG_MSG_MAX_DEFAULT 480

/* Longest possible frame without MSG: "65535 " + "<191>1 " + 24-byte
 * timestamp + the four header fields at their maxima + their spaces + "-"
 * + the space before MSG + a BOM. A buffer of HEADER_MAX + msg_max bytes
 * never truncates below msg_max. */
#define USBIP_SYSLOG_HEADER_MAX                                                          \
    (6 + 7 + 24 + 1 + USBIP_SYSLOG_HOSTNAME_MAX + 1 + USBIP_SYSLOG_APP_NAME_MAX + 1 +      \
     USBIP_SYSLOG_PROCID_MAX + 1 + USBIP_SYSLOG_MSGID_MAX + 1 + 1 + 1 + 3)
#define USBIP_SYSLOG_FRAME_MAX (USBIP_SYSLOG_HEADER_MAX + USBIP_SYSLOG_MSG_MAX_DEFAULT)

/* Facilities used here (RFC 5424 table 1); any 0..23 is accepted. */
#define USBIP_SYSLOG_FACILITY_USER 1
#define USBIP_SYSLOG_FACILITY_LOCAL0 16
#define USBIP_SYSLOG_FACILITY_MAX 23

typedef enum {
    USBIP_SYSLOG_SEV_EMERG = 0,
    USBIP_SYSLOG_SEV_ALERT = 1,
    USBIP_SYSLOG_SEV_CRIT = 2,
    USBIP_SYSLOG_SEV_ERR = 3,
    USBIP_SYSLOG_SEV_WARNING = 4,
    USBIP_SYSLOG_SEV_NOTICE = 5,
    USBIP_SYSLOG_SEV_INFO = 6,
    USBIP_SYSLOG_SEV_DEBUG = 7,
} usbip_syslog_severity_t;

/* ESP log letter -> severity: E err, W warning, I info, D and V debug;
 * anything else (console output without an ESP prefix) is notice. */
usbip_syslog_severity_t usbip_syslog_severity_from_esp(char letter);

/* usbip_log level -> severity: ERROR err, WARN warning, INFO info, DEBUG
 * debug; out-of-range values are notice. */
usbip_syslog_severity_t usbip_syslog_severity_from_usbip(usbip_log_level_t level);

/* One message. Strings may be NULL (= "-"). msg need not be NUL-terminated. */
typedef struct {
    unsigned facility;               /* 0..23, e.g. USBIP_SYSLOG_FACILITY_LOCAL0 */
    usbip_syslog_severity_t severity; /* 0..7 */
    bool has_time;                   /* false: TIMESTAMP is "-" */
    uint64_t time_ms;                /* Unix epoch milliseconds, UTC; years > 9999 give "-" */
    const char *hostname;
    const char *app_name;
    const char *procid;              /* e.g. the FreeRTOS task name */
    const char *msgid;               /* e.g. the ESP log tag */
    const char *msg;
    size_t msg_len;
    size_t msg_max;                  /* cap on MSG bytes (BOM excluded); 0 = default */
    bool utf8_bom;                   /* prefix a non-empty MSG with EF BB BF */
} usbip_syslog_record_t;

/* Write one framed message into buf (cap bytes) and set *frame_len to its
 * length. MSG is cut to what fits (never below a whole UTF-8 character), so
 * the frame is always valid; a NUL follows it when there is room.
 * INVALID_ARG: rec/buf/frame_len NULL, facility > 23 or severity > 7.
 * INVALID_SIZE: cap cannot hold the frame even with an empty MSG (*frame_len
 * is then 0). */
usbip_err_t usbip_syslog_frame(const usbip_syslog_record_t *rec, char *buf, size_t cap,
                               size_t *frame_len);

/* Render Unix epoch milliseconds as "YYYY-MM-DDThh:mm:ss.sssZ" into out
 * (>= 25 bytes, NUL-terminated). false (out = "-") when out is too small or
 * the year is past 9999. */
bool usbip_syslog_format_time(uint64_t time_ms, char *out, size_t out_len);

/* Wall-clock time of something stamped with a monotonic clock: the wall
 * clock and the monotonic clock are sampled together now (both in us), and
 * the event happened at event_mono_us. false when the wall clock is not set
 * yet (before 2020-01-01, i.e. no SNTP) or the result would be negative. */
bool usbip_syslog_wall_ms(int64_t event_mono_us, int64_t now_mono_us, int64_t now_wall_us,
                          uint64_t *out_ms);

/* Copy in[0..in_len) to out as syslog MSG text and return the bytes written
 * (at most out_max, no NUL added):
 * - ANSI escape sequences are removed (CSI "ESC [ params final", two-byte
 *   "ESC X"; an unfinished one at the end is dropped);
 * - CR and LF are folded into one space between text and dropped at either
 *   end, so "text\n" gives "text"; TAB becomes a space;
 * - other control bytes (0x00-0x1F, 0x7F) and bytes that are not part of a
 *   valid UTF-8 sequence become '?'; valid UTF-8 is kept;
 * - output stops before a character that would not fit. */
size_t usbip_syslog_sanitize(const char *in, size_t in_len, char *out, size_t out_max);

/* ---- ESP-IDF console lines ---------------------------------------------- */

/* A line as ESP_LOGx prints it: "[color]L (time) tag: text[reset]\n", with
 * time either ticks "1234", "hh:mm:ss.sss" or "YYYY-MM-DD hh:mm:ss.sss", or
 * absent ("L tag: text"). Pointers point into the parsed input. */
typedef struct {
    char level;          /* 'E', 'W', 'I', 'D', 'V'; 0 when not an ESP log line */
    const char *tag;     /* NULL when none */
    size_t tag_len;
    const char *text;    /* the message: without the prefix and the trailing newline */
    size_t text_len;
} usbip_syslog_esp_line_t;

/* Split an ESP log line. true when the prefix was recognised; otherwise
 * level is 0, tag NULL and text the whole line (leading escapes skipped,
 * trailing CR/LF dropped). Colour codes left in text are for
 * usbip_syslog_sanitize. line may be NULL only when len is 0. */
bool usbip_syslog_parse_esp_line(const char *line, size_t len, usbip_syslog_esp_line_t *out);

/* true when data begins like an ESP log line ("[ESC[..m]L (" or "[ESC[..m]L tag: "):
 * lets a reader end an unfinished line when a new one starts. */
bool usbip_syslog_looks_like_line_start(const char *data, size_t len);

/* Joins console output written in pieces (ESP log V2 prints prefix, text
 * and newline with three calls; code may print a line in parts) into lines.
 * A line is complete when a piece ends with '\n'. Bytes past the storage
 * are dropped (truncated is set); the newline test still sees them. */
typedef struct {
    char *buf;
    size_t cap;
    size_t len;
    bool truncated;
} usbip_syslog_assembler_t;

void usbip_syslog_assembler_init(usbip_syslog_assembler_t *a, char *storage, size_t cap);
/* Append a piece; true when the pending text is now a complete line. */
bool usbip_syslog_assembler_add(usbip_syslog_assembler_t *a, const char *data, size_t len);
/* Pending text (complete or not) and its length; NULL/0 when empty. */
const char *usbip_syslog_assembler_text(const usbip_syslog_assembler_t *a, size_t *len);
bool usbip_syslog_assembler_pending(const usbip_syslog_assembler_t *a);
void usbip_syslog_assembler_clear(usbip_syslog_assembler_t *a);

/* ---- Bounded send queue of frames --------------------------------------- */

/* A byte ring of whole frames for one TCP connection plus a ring of their
 * lengths. Whatever the connection has received is always a prefix of the
 * frames pushed in order, minus whole dropped frames:
 * - push never blocks: when full, the oldest whole frames are dropped and
 *   counted. A frame already partly sent is never dropped (its remaining
 *   bytes stay at the head); if only it is left and there is still no room,
 *   the new frame is dropped instead;
 * - peek/consume send from the head; a partial send just advances it;
 * - after a reconnect, discard_partial() drops the rest of a frame that was
 *   partly sent on the old connection, so the new one starts on a frame. */
typedef struct {
    uint8_t *buf;
    size_t cap;
    uint16_t *lens;     /* frame lengths, ring of lens_cap */
    size_t lens_cap;
    size_t head;        /* index of the first unsent byte */
    size_t used;        /* unsent bytes */
    size_t rec_head;    /* index in lens of the head frame */
    size_t rec_count;   /* frames held, including a partly sent head */
    size_t head_sent;   /* bytes of the head frame already consumed */
    uint32_t dropped;   /* whole frames dropped (saturates) */
} usbip_syslog_queue_t;

/* INVALID_ARG if q/buf/lens is NULL, cap is 0 or lens_cap < 2. */
usbip_err_t usbip_syslog_queue_init(usbip_syslog_queue_t *q, uint8_t *buf, size_t cap,
                                    uint16_t *lens, size_t lens_cap);
/* Queue a copy of frame. OK when queued (possibly after dropping older
 * frames); INVALID_SIZE when len is 0, over 65535 or over the capacity, and
 * NO_MEM when a partly sent head leaves no room: both drop (and count) the
 * new frame. */
usbip_err_t usbip_syslog_queue_push(usbip_syslog_queue_t *q, const void *frame, size_t len);
/* Contiguous unsent bytes at the head (*data set), 0 when empty. */
size_t usbip_syslog_queue_peek(const usbip_syslog_queue_t *q, const uint8_t **data);
/* Mark n bytes (<= usbip_syslog_queue_bytes) as sent. */
void usbip_syslog_queue_consume(usbip_syslog_queue_t *q, size_t n);
/* Drop the unsent rest of a partly sent head frame (counted as dropped). */
void usbip_syslog_queue_discard_partial(usbip_syslog_queue_t *q);
void usbip_syslog_queue_clear(usbip_syslog_queue_t *q);
size_t usbip_syslog_queue_bytes(const usbip_syslog_queue_t *q);
size_t usbip_syslog_queue_frames(const usbip_syslog_queue_t *q);
uint32_t usbip_syslog_queue_dropped(const usbip_syslog_queue_t *q);

/* ---- Reconnect backoff --------------------------------------------------- */

/* Doubling delay between connection attempts: min, 2*min, ... capped at max. */
typedef struct {
    uint32_t min_ms;
    uint32_t max_ms;
    uint32_t next_ms;
} usbip_syslog_backoff_t;

void usbip_syslog_backoff_init(usbip_syslog_backoff_t *b, uint32_t min_ms, uint32_t max_ms);
/* Delay before the next attempt after a failure; doubles the following one. */
uint32_t usbip_syslog_backoff_next(usbip_syslog_backoff_t *b);
/* After a successful connection: the next failure waits min_ms again. */
void usbip_syslog_backoff_reset(usbip_syslog_backoff_t *b);

#ifdef __cplusplus
}
#endif
