/*
 * remote_syslog: the ESP-IDF side of remote syslog. Formatting, parsing and
 * the per-connection queues are the host-tested components/syslog; this file
 * only holds the log hook, the syslog task and its sockets. See README.md.
 *
 * Checked against ESP-IDF v5.5 headers (see README.md for paths/commits):
 * esp_log_set_vprintf (esp_log_write.h), xRingbufferCreate/Send/Receive/
 * ReturnItem (freertos/ringbuf.h), xPortInIsrContext/xPortCanYield
 * (riscv portmacro.h), esp_timer_get_time (esp_timer.h), pcTaskGetName,
 * xTaskGetSchedulerState, xTaskGetCurrentTaskHandle, xTaskCreatePinnedToCore
 * (freertos/task.h), xQueueCreate/Send/Receive (freertos/queue.h), BSD
 * sockets through lwIP + VFS (sys/socket.h, netdb.h, select, fcntl).
 */
#include "remote_syslog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "esp_log.h"
#include "esp_log_write.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/queue.h"
#include "freertos/ringbuf.h"
#include "freertos/task.h"
#include "netdb.h"
#include "netinet/in.h"
#include "netinet/tcp.h"
#include "sys/socket.h"

#include "settings_store.h"
#include "usbip_syslog.h"

/* ---- Tunables (override with -D in the component's compile options) ------ */

#ifndef REMOTE_SYSLOG_LINE_MAX
#define REMOTE_SYSLOG_LINE_MAX 256 /* bytes of one hook call kept; on the caller's stack */
#endif
#ifndef REMOTE_SYSLOG_RING_BYTES
#define REMOTE_SYSLOG_RING_BYTES 8192 /* hook -> task ring (no-split items) */
#endif
#ifndef REMOTE_SYSLOG_MAX_CLIENTS
#define REMOTE_SYSLOG_MAX_CLIENTS 3 /* each costs one lwIP socket */
#endif
#ifndef REMOTE_SYSLOG_CLIENT_QUEUE_BYTES
#define REMOTE_SYSLOG_CLIENT_QUEUE_BYTES 6144
#endif
#ifndef REMOTE_SYSLOG_COLLECTOR_QUEUE_BYTES
#define REMOTE_SYSLOG_COLLECTOR_QUEUE_BYTES 12288 /* also the backlog while disconnected */
#endif
#ifndef REMOTE_SYSLOG_TASK_PRIO
#define REMOTE_SYSLOG_TASK_PRIO 2 /* below the USB/IP, USB and lwIP tasks */
#endif
#ifndef REMOTE_SYSLOG_TASK_STACK
#define REMOTE_SYSLOG_TASK_STACK 6144 /* bytes; getaddrinfo + its own ESP_LOG calls */
#endif

#define RS_FACILITY USBIP_SYSLOG_FACILITY_LOCAL0
#define RS_MSG_MAX 480
#define RS_QUEUE_FRAMES 128
#define RS_EVENT_QUEUE_LEN 16
#define RS_EVENT_BATCH 16
#define RS_EVENT_TAG_SIZE 24
#define RS_TASK_NAME_SIZE 16
#define RS_RING_BUDGET 32           /* ring items per loop before the sockets get a turn */
#define RS_IDLE_WAIT_MS 50          /* ring wait when nothing is waiting to be sent */
#define RS_SEND_WAIT_MS 20          /* select wait when something is */
#define RS_LINE_FLUSH_MS 200        /* an unfinished line is emitted after this */
#define RS_CONNECT_TIMEOUT_MS 5000
#define RS_CLIENT_STALL_MS 60000    /* no send progress for this long: drop the client */
#define RS_BACKOFF_MIN_MS 1000
#define RS_BACKOFF_MAX_MS 30000
#define RS_LISTEN_RETRY_MS 5000
#define RS_NOTICE_INTERVAL_MS 1000  /* at most one "N dropped" notice per sink per second */
#define RS_KEEPALIVE_IDLE_S 30
#define RS_KEEPALIVE_INTERVAL_S 10
#define RS_KEEPALIVE_COUNT 3
#define RS_EVENT_TAG "event"        /* event_log echoes its events with this tag */

static const char *const TAG = "remote_syslog";

/* ---- Hook -> task items ---------------------------------------------------- */

#define RS_FLAG_NO_EVENT 0x01u /* logged while remote_syslog_process() ran: no event */

typedef struct {
    int64_t mono_us;               /* esp_timer_get_time() at the hook call */
    uint8_t flags;
    char task[RS_TASK_NAME_SIZE];  /* caller's task name, NUL-terminated */
    char text[REMOTE_SYSLOG_LINE_MAX];
} rs_item_t;

typedef struct {
    char level; /* 'E' or 'W' */
    char tag[RS_EVENT_TAG_SIZE];
    char text[USBIP_EVENT_MESSAGE_SIZE];
} rs_event_t;

/* ---- Sinks ----------------------------------------------------------------- */

typedef struct {
    int fd; /* -1 = free / not connected */
    usbip_syslog_queue_t q;
    uint32_t reported_drops;
    int64_t last_notice_us;
    int64_t last_progress_us; /* last send progress, or when the queue was last empty */
} rs_sink_t;

typedef enum { COL_OFF, COL_WAIT, COL_CONNECTING, COL_CONNECTED } rs_col_state_t;

/* ---- State ------------------------------------------------------------------ */

static bool s_started;
static RingbufHandle_t s_ring;
static QueueHandle_t s_evq;
static TaskHandle_t s_task;
static _Atomic(vprintf_like_t) s_prev_vprintf;
static _Atomic(TaskHandle_t) s_process_task;

static char s_hostname[USBIP_SYSLOG_HOSTNAME_MAX + 1];
static char s_app_name[USBIP_SYSLOG_APP_NAME_MAX + 1];
static uint16_t s_listen_port;
static usbip_event_log_t *s_events;
static void (*s_wake)(void *ctx);
static void *s_wake_ctx;

static _Atomic uint32_t s_hook_dropped, s_hook_truncated, s_events_dropped, s_lines;
static _Atomic uint32_t s_clients_refused, s_client_dropped_total, s_col_dropped_total;
static _Atomic uint8_t s_client_count;
static _Atomic bool s_collector_up;

/* set_collector (any task) -> syslog task */
static portMUX_TYPE s_col_mux = portMUX_INITIALIZER_UNLOCKED;
static char s_col_pending[USBIP_SYSLOG_TARGET_SIZE];
static bool s_col_changed;

/* Syslog task only from here on. */
static rs_sink_t s_clients[REMOTE_SYSLOG_MAX_CLIENTS];
static uint8_t s_client_bufs[REMOTE_SYSLOG_MAX_CLIENTS][REMOTE_SYSLOG_CLIENT_QUEUE_BYTES];
static uint16_t s_client_lens[REMOTE_SYSLOG_MAX_CLIENTS][RS_QUEUE_FRAMES];
static rs_sink_t s_col;
static uint8_t s_col_buf[REMOTE_SYSLOG_COLLECTOR_QUEUE_BYTES];
static uint16_t s_col_lens[RS_QUEUE_FRAMES];
static rs_col_state_t s_col_state;
static char s_col_target[USBIP_SYSLOG_TARGET_SIZE];
static char s_col_host[USBIP_SYSLOG_TARGET_SIZE];
static uint16_t s_col_port;
static usbip_syslog_backoff_t s_col_backoff;
static int64_t s_col_next_try_us, s_col_deadline_us;
static bool s_col_failure_logged;

static int s_listen_fd = -1;
static int64_t s_listen_retry_us;
static bool s_listen_failure_logged;

static char s_line_buf[REMOTE_SYSLOG_LINE_MAX * 2];
static usbip_syslog_assembler_t s_line;
static int64_t s_line_mono_us;
static uint8_t s_line_flags;
static char s_line_task[RS_TASK_NAME_SIZE];
static int64_t s_line_started_us;

static uint32_t s_hook_reported;
static int64_t s_hook_notice_us;
static char s_frame[USBIP_SYSLOG_FRAME_MAX];

/* Server task only (remote_syslog_process). s_events_dropped itself only
 * grows, so remote_syslog_get_stats() reports every loss, not just the ones
 * not yet turned into an event. */
static uint32_t s_events_reported;

static void count(_Atomic uint32_t *counter)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

static void copy_text(char *dst, size_t size, const char *src, size_t len)
{
    if (size == 0) {
        return;
    }
    if (!src) {
        len = 0;
    }
    if (len >= size) {
        len = size - 1;
    }
    if (len > 0) {
        memcpy(dst, src, len);
    }
    dst[len] = '\0';
}

/* ---- The log hook --------------------------------------------------------
 * Runs in whichever task logs, possibly several at once: only its stack,
 * atomics and the ring buffer (which has its own spinlock). Never blocks,
 * never logs; outside a normal task context it only counts a drop. */

static void rs_capture(const char *fmt, va_list args)
{
    RingbufHandle_t ring = s_ring;
    if (!ring || !fmt) {
        return;
    }
    if (xPortInIsrContext() || !xPortCanYield() ||
        xTaskGetSchedulerState() != taskSCHEDULER_RUNNING) {
        count(&s_hook_dropped);
        return;
    }
    rs_item_t item;
    int n = vsnprintf(item.text, sizeof item.text, fmt, args);
    if (n <= 0) {
        return;
    }
    size_t len = (size_t)n;
    if (len >= sizeof item.text) {
        len = sizeof item.text - 1;
        size_t flen = strlen(fmt);
        if (flen > 0 && fmt[flen - 1] == '\n') {
            item.text[len - 1] = '\n'; /* keep the line ending a line */
        }
        count(&s_hook_truncated);
    }
    item.mono_us = esp_timer_get_time();
    item.flags = xTaskGetCurrentTaskHandle() == atomic_load(&s_process_task) ? RS_FLAG_NO_EVENT : 0;
    const char *name = pcTaskGetName(NULL);
    copy_text(item.task, sizeof item.task, name, name ? strlen(name) : 0);
    if (xRingbufferSend(ring, &item, offsetof(rs_item_t, text) + len, 0) != pdTRUE) {
        count(&s_hook_dropped);
    }
}

static int rs_vprintf(const char *fmt, va_list args)
{
    va_list copy;
    va_copy(copy, args);
    rs_capture(fmt, copy);
    va_end(copy);
    vprintf_like_t prev = atomic_load(&s_prev_vprintf);
    return prev ? prev(fmt, args) : vprintf(fmt, args);
}

/* ---- Sockets ---------------------------------------------------------------- */

static bool rs_set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL, 0);
    return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

static void rs_set_keepalive(int fd)
{
    int one = 1, idle = RS_KEEPALIVE_IDLE_S, interval = RS_KEEPALIVE_INTERVAL_S,
        probes = RS_KEEPALIVE_COUNT;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes);
}

static bool rs_would_block(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK || err == EINPROGRESS;
}

/* Send what the socket takes. false when the connection failed. */
static bool rs_sink_send(rs_sink_t *sink, int64_t now)
{
    for (;;) {
        const uint8_t *data;
        size_t n = usbip_syslog_queue_peek(&sink->q, &data);
        if (n == 0) {
            sink->last_progress_us = now;
            return true;
        }
        ssize_t sent = send(sink->fd, data, n, MSG_DONTWAIT);
        if (sent > 0) {
            usbip_syslog_queue_consume(&sink->q, (size_t)sent);
            sink->last_progress_us = now;
            continue;
        }
        if (sent < 0 && rs_would_block(errno)) {
            return true;
        }
        return false;
    }
}

/* Read and discard whatever the peer sends. false on EOF or error. */
static bool rs_sink_drain_input(rs_sink_t *sink)
{
    char scratch[64];
    for (int i = 0; i < 4; i++) {
        ssize_t n = recv(sink->fd, scratch, sizeof scratch, MSG_DONTWAIT);
        if (n > 0) {
            continue;
        }
        if (n < 0 && rs_would_block(errno)) {
            return true;
        }
        return false; /* 0 = closed by the peer */
    }
    return true;
}

static void rs_sink_reset(rs_sink_t *sink, int64_t now)
{
    usbip_syslog_queue_clear(&sink->q);
    sink->q.dropped = 0;
    sink->reported_drops = 0;
    sink->last_notice_us = now;
    sink->last_progress_us = now;
}

/* ---- Listener and clients ----------------------------------------------------- */

static void rs_listener_open(int64_t now)
{
    if (s_listen_port == 0 || s_listen_fd >= 0 || now < s_listen_retry_us) {
        return;
    }
    int fd = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in addr;
        memset(&addr, 0, sizeof addr);
        addr.sin_family = AF_INET;
        addr.sin_port = htons(s_listen_port);
        addr.sin_addr.s_addr = htonl(INADDR_ANY);
        if (rs_set_nonblocking(fd) && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
            listen(fd, 2) == 0) {
            s_listen_fd = fd;
            ESP_LOGI(TAG, "syslog (RFC 5424, octet-counted) on tcp port %u", s_listen_port);
            return;
        }
    }
    int err = errno;
    if (fd >= 0) {
        close(fd);
    }
    s_listen_retry_us = now + (int64_t)RS_LISTEN_RETRY_MS * 1000;
    if (!s_listen_failure_logged) {
        s_listen_failure_logged = true;
        ESP_LOGE(TAG, "cannot listen on tcp port %u (errno %d); retrying every %d s",
                 s_listen_port, err, RS_LISTEN_RETRY_MS / 1000);
    }
}

static void rs_client_close(rs_sink_t *c, const char *why)
{
    if (c->fd < 0) {
        return;
    }
    close(c->fd);
    c->fd = -1;
    atomic_fetch_sub(&s_client_count, 1);
    ESP_LOGI(TAG, "syslog client left (%s)", why);
}

static void rs_accept(int64_t now)
{
    struct sockaddr_storage peer;
    socklen_t peer_len = sizeof peer;
    int fd = accept(s_listen_fd, (struct sockaddr *)&peer, &peer_len);
    if (fd < 0) {
        return;
    }
    rs_sink_t *slot = NULL;
    for (size_t i = 0; i < REMOTE_SYSLOG_MAX_CLIENTS; i++) {
        if (s_clients[i].fd < 0) {
            slot = &s_clients[i];
            break;
        }
    }
    if (!slot || !rs_set_nonblocking(fd)) {
        close(fd); /* a prompt close rather than a connection that never gets data */
        count(&s_clients_refused);
        /* INFO, not WARN: repeated connection attempts must not flood the event log. */
        ESP_LOGI(TAG, "syslog client refused: %s", slot ? "socket setup failed" : "all slots busy");
        return;
    }
    rs_set_keepalive(fd);
    rs_sink_reset(slot, now);
    slot->fd = fd;
    atomic_fetch_add(&s_client_count, 1);
    char addr[20] = "?";
    if (peer.ss_family == AF_INET) {
        struct sockaddr_in v4;
        memcpy(&v4, &peer, sizeof v4);
        const uint8_t *b = (const uint8_t *)&v4.sin_addr.s_addr; /* network order */
        snprintf(addr, sizeof addr, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
    }
    ESP_LOGI(TAG, "syslog client %s connected", addr);
}

/* ---- Collector -------------------------------------------------------------- */

static void rs_collector_close(void)
{
    if (s_col.fd >= 0) {
        close(s_col.fd);
        s_col.fd = -1;
    }
    atomic_store(&s_collector_up, false);
}

static void rs_collector_fail(int64_t now, const char *why, int err)
{
    bool was_up = s_col_state == COL_CONNECTED;
    rs_collector_close();
    /* Whatever part of a frame went to the old connection is lost with it;
     * the next connection must start on a frame boundary. */
    usbip_syslog_queue_discard_partial(&s_col.q);
    uint32_t delay_ms = usbip_syslog_backoff_next(&s_col_backoff);
    s_col_next_try_us = now + (int64_t)delay_ms * 1000;
    s_col_state = COL_WAIT;
    if (!s_col_failure_logged) { /* once per outage: WARN also lands in the event log */
        s_col_failure_logged = true;
        ESP_LOGW(TAG, "collector %s %s: %s (errno %d); retrying every 1-%d s", s_col_target,
                 was_up ? "lost" : "unreachable", why, err, RS_BACKOFF_MAX_MS / 1000);
    }
}

static void rs_collector_up(void)
{
    s_col_state = COL_CONNECTED;
    atomic_store(&s_collector_up, true);
    usbip_syslog_backoff_reset(&s_col_backoff);
    ESP_LOGI(TAG, "collector %s connected", s_col_target);
    s_col_failure_logged = false;
}

static void rs_collector_connect(int64_t now)
{
    char port_text[8];
    snprintf(port_text, sizeof port_text, "%u", s_col_port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    struct addrinfo *res = NULL;
    /* Blocks for DNS names (not for IP literals); see README "Limits". */
    int rc = getaddrinfo(s_col_host, port_text, &hints, &res);
    if (rc != 0 || !res) {
        if (res) {
            freeaddrinfo(res);
        }
        rs_collector_fail(now, "cannot resolve host", rc);
        return;
    }
    int fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
    if (fd < 0 || !rs_set_nonblocking(fd)) {
        int err = errno;
        if (fd >= 0) {
            close(fd);
        }
        freeaddrinfo(res);
        rs_collector_fail(now, "socket", err);
        return;
    }
    rs_set_keepalive(fd);
    int r = connect(fd, res->ai_addr, res->ai_addrlen);
    int err = errno;
    freeaddrinfo(res);
    s_col.fd = fd;
    if (r == 0) {
        rs_collector_up();
    } else if (err == EINPROGRESS) {
        s_col_state = COL_CONNECTING;
        s_col_deadline_us = now + (int64_t)RS_CONNECT_TIMEOUT_MS * 1000;
    } else {
        rs_collector_fail(now, "connect", err);
    }
}

static void rs_collector_apply_change(int64_t now)
{
    char text[USBIP_SYSLOG_TARGET_SIZE];
    bool changed;
    portENTER_CRITICAL(&s_col_mux);
    changed = s_col_changed;
    if (changed) {
        memcpy(text, s_col_pending, sizeof text);
        s_col_changed = false;
    }
    portEXIT_CRITICAL(&s_col_mux);
    if (!changed || strcmp(text, s_col_target) == 0) {
        return;
    }
    rs_collector_close();
    rs_sink_reset(&s_col, now); /* frames queued for the old target are not sent */
    memcpy(s_col_target, text, sizeof s_col_target);
    s_col_failure_logged = false;
    usbip_syslog_backoff_reset(&s_col_backoff);
    if (text[0] == '\0' ||
        usbip_syslog_target_parse(text, s_col_host, sizeof s_col_host, &s_col_port, NULL) !=
            USBIP_OK) {
        s_col_state = COL_OFF;
        ESP_LOGI(TAG, "no syslog collector");
        return;
    }
    s_col_state = COL_WAIT;
    s_col_next_try_us = now;
    ESP_LOGI(TAG, "syslog collector %s", s_col_target);
}

static void rs_collector_step(int64_t now)
{
    if (s_col_state == COL_WAIT && now >= s_col_next_try_us) {
        rs_collector_connect(now);
    } else if (s_col_state == COL_CONNECTING && now >= s_col_deadline_us) {
        rs_collector_fail(now, "connect timeout", ETIMEDOUT);
    }
}

/* ---- Lines -> frames -> sinks ------------------------------------------------ */

static void rs_push(rs_sink_t *sink, const char *frame, size_t len)
{
    uint32_t before = usbip_syslog_queue_dropped(&sink->q);
    usbip_syslog_queue_push(&sink->q, frame, len);
    uint32_t lost = usbip_syslog_queue_dropped(&sink->q) - before;
    if (lost > 0) {
        atomic_fetch_add_explicit(sink == &s_col ? &s_col_dropped_total : &s_client_dropped_total,
                                  lost, memory_order_relaxed);
    }
}

static void rs_fanout(const char *frame, size_t len)
{
    for (size_t i = 0; i < REMOTE_SYSLOG_MAX_CLIENTS; i++) {
        if (s_clients[i].fd >= 0) {
            rs_push(&s_clients[i], frame, len);
        }
    }
    if (s_col_state != COL_OFF) {
        rs_push(&s_col, frame, len); /* buffered while (re)connecting */
    }
}

static bool rs_wall_ms(int64_t mono_us, uint64_t *out_ms)
{
    struct timeval tv;
    if (gettimeofday(&tv, NULL) != 0) {
        return false;
    }
    int64_t wall_us = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
    return usbip_syslog_wall_ms(mono_us, esp_timer_get_time(), wall_us, out_ms);
}

/* A notice from remote_syslog itself (not through ESP_LOG, so no loop). */
static size_t rs_notice_frame(const char *text)
{
    usbip_syslog_record_t rec;
    memset(&rec, 0, sizeof rec);
    rec.facility = RS_FACILITY;
    rec.severity = USBIP_SYSLOG_SEV_NOTICE;
    rec.has_time = rs_wall_ms(esp_timer_get_time(), &rec.time_ms);
    rec.hostname = s_hostname;
    rec.app_name = s_app_name;
    rec.msgid = TAG;
    rec.msg = text;
    rec.msg_len = strlen(text);
    size_t len = 0;
    return usbip_syslog_frame(&rec, s_frame, sizeof s_frame, &len) == USBIP_OK ? len : 0;
}

static void rs_queue_event(char level, const char *tag, const char *text, size_t text_len)
{
    rs_event_t ev;
    ev.level = level;
    copy_text(ev.tag, sizeof ev.tag, tag, strlen(tag));
    size_t n = usbip_syslog_sanitize(text, text_len, ev.text, sizeof ev.text - 1);
    ev.text[n] = '\0';
    if (xQueueSend(s_evq, &ev, 0) != pdTRUE) {
        count(&s_events_dropped);
        return;
    }
    if (s_wake) {
        s_wake(s_wake_ctx);
    }
}

static void rs_emit_line(const char *text, size_t len)
{
    usbip_syslog_esp_line_t line;
    bool is_esp = usbip_syslog_parse_esp_line(text, len, &line);
    char tag[USBIP_SYSLOG_MSGID_MAX + 1];
    copy_text(tag, sizeof tag, line.tag, line.tag_len);

    usbip_syslog_record_t rec;
    memset(&rec, 0, sizeof rec);
    rec.facility = RS_FACILITY;
    rec.severity = usbip_syslog_severity_from_esp(line.level);
    rec.has_time = rs_wall_ms(s_line_mono_us, &rec.time_ms);
    rec.hostname = s_hostname;
    rec.app_name = s_app_name;
    rec.procid = s_line_task;
    rec.msgid = tag;
    rec.msg = line.text;
    rec.msg_len = line.text_len;
    rec.msg_max = RS_MSG_MAX;
    size_t frame_len = 0;
    if (usbip_syslog_frame(&rec, s_frame, sizeof s_frame, &frame_len) == USBIP_OK) {
        rs_fanout(s_frame, frame_len);
        count(&s_lines);
    }

    if (is_esp && (line.level == 'E' || line.level == 'W') &&
        !(s_line_flags & RS_FLAG_NO_EVENT) && strcmp(tag, RS_EVENT_TAG) != 0) {
        rs_queue_event(line.level, tag, line.text, line.text_len);
    }
}

static void rs_emit_pending(void)
{
    size_t len = 0;
    const char *text = usbip_syslog_assembler_text(&s_line, &len);
    if (text && len > 0) {
        rs_emit_line(text, len);
    }
    usbip_syslog_assembler_clear(&s_line);
}

/* raw: one ring item (4-byte aligned only, so the header is copied out
 * rather than read in place); text_len bytes of text follow the header. */
static void rs_take_piece(const uint8_t *raw, size_t text_len, int64_t now)
{
    rs_item_t hdr;
    memcpy(&hdr, raw, offsetof(rs_item_t, text));
    hdr.task[sizeof hdr.task - 1] = '\0';
    const char *text = (const char *)raw + offsetof(rs_item_t, text);
    if (usbip_syslog_assembler_pending(&s_line) &&
        usbip_syslog_looks_like_line_start(text, text_len)) {
        rs_emit_pending(); /* a new line began before the old one ended */
    }
    if (!usbip_syslog_assembler_pending(&s_line)) {
        s_line_mono_us = hdr.mono_us;
        s_line_flags = hdr.flags;
        copy_text(s_line_task, sizeof s_line_task, hdr.task, strlen(hdr.task));
        s_line_started_us = now;
    } else {
        s_line_flags |= hdr.flags;
    }
    if (usbip_syslog_assembler_add(&s_line, text, text_len)) {
        rs_emit_pending();
    }
}

/* Returns true when it used its whole budget (the ring likely has more). */
static bool rs_drain_ring(TickType_t first_wait)
{
    TickType_t wait = first_wait;
    int took = 0;
    for (int i = 0; i < RS_RING_BUDGET; i++) {
        size_t size = 0;
        void *item = xRingbufferReceive(s_ring, &size, wait);
        if (!item) {
            break;
        }
        wait = 0;
        took++;
        if (size > offsetof(rs_item_t, text) && size <= sizeof(rs_item_t)) {
            rs_take_piece(item, size - offsetof(rs_item_t, text), esp_timer_get_time());
        }
        vRingbufferReturnItem(s_ring, item);
    }
    return took == RS_RING_BUDGET;
}

static void rs_notices(int64_t now)
{
    char text[120];
    uint32_t hook_dropped = atomic_load(&s_hook_dropped);
    if (hook_dropped != s_hook_reported &&
        now - s_hook_notice_us >= (int64_t)RS_NOTICE_INTERVAL_MS * 1000) {
        snprintf(text, sizeof text,
                 "%u log lines lost before the syslog task (ring full or ISR/critical context)",
                 (unsigned)(hook_dropped - s_hook_reported));
        s_hook_reported = hook_dropped;
        s_hook_notice_us = now;
        size_t len = rs_notice_frame(text);
        if (len > 0) {
            rs_fanout(s_frame, len);
        }
    }
    rs_sink_t *sinks[REMOTE_SYSLOG_MAX_CLIENTS + 1];
    size_t count_sinks = 0;
    for (size_t i = 0; i < REMOTE_SYSLOG_MAX_CLIENTS; i++) {
        if (s_clients[i].fd >= 0) {
            sinks[count_sinks++] = &s_clients[i];
        }
    }
    if (s_col_state != COL_OFF) {
        sinks[count_sinks++] = &s_col;
    }
    for (size_t i = 0; i < count_sinks; i++) {
        rs_sink_t *sink = sinks[i];
        uint32_t dropped = usbip_syslog_queue_dropped(&sink->q);
        if (dropped == sink->reported_drops ||
            now - sink->last_notice_us < (int64_t)RS_NOTICE_INTERVAL_MS * 1000) {
            continue;
        }
        snprintf(text, sizeof text, "%u syslog messages dropped for this connection (too slow%s)",
                 (unsigned)(dropped - sink->reported_drops),
                 sink == &s_col ? " or disconnected" : "");
        sink->reported_drops = dropped;
        sink->last_notice_us = now;
        size_t len = rs_notice_frame(text);
        if (len > 0) {
            rs_push(sink, s_frame, len);
        }
    }
}

/* ---- The task ------------------------------------------------------------------- */

static bool rs_want_write(void)
{
    for (size_t i = 0; i < REMOTE_SYSLOG_MAX_CLIENTS; i++) {
        if (s_clients[i].fd >= 0 && usbip_syslog_queue_bytes(&s_clients[i].q) > 0) {
            return true;
        }
    }
    return s_col_state == COL_CONNECTING ||
           (s_col_state == COL_CONNECTED && usbip_syslog_queue_bytes(&s_col.q) > 0);
}

static void rs_track_fd(int fd, fd_set *set, int *max_fd)
{
    FD_SET(fd, set);
    if (fd > *max_fd) {
        *max_fd = fd;
    }
}

static void rs_service_sockets(uint32_t wait_ms, int64_t now)
{
    fd_set rfds, wfds;
    FD_ZERO(&rfds);
    FD_ZERO(&wfds);
    int max_fd = -1;
    if (s_listen_fd >= 0) {
        rs_track_fd(s_listen_fd, &rfds, &max_fd);
    }
    for (size_t i = 0; i < REMOTE_SYSLOG_MAX_CLIENTS; i++) {
        rs_sink_t *c = &s_clients[i];
        if (c->fd < 0) {
            continue;
        }
        rs_track_fd(c->fd, &rfds, &max_fd);
        if (usbip_syslog_queue_bytes(&c->q) > 0) {
            rs_track_fd(c->fd, &wfds, &max_fd);
        }
    }
    if (s_col_state == COL_CONNECTING) {
        rs_track_fd(s_col.fd, &wfds, &max_fd);
    } else if (s_col_state == COL_CONNECTED) {
        rs_track_fd(s_col.fd, &rfds, &max_fd);
        if (usbip_syslog_queue_bytes(&s_col.q) > 0) {
            rs_track_fd(s_col.fd, &wfds, &max_fd);
        }
    }
    if (max_fd < 0) {
        if (wait_ms > 0) {
            vTaskDelay(pdMS_TO_TICKS(wait_ms));
        }
        return;
    }
    struct timeval tv;
    tv.tv_sec = 0;
    tv.tv_usec = (long)wait_ms * 1000;
    int ready = select(max_fd + 1, &rfds, &wfds, NULL, &tv);
    if (ready < 0) {
        vTaskDelay(pdMS_TO_TICKS(10)); /* never spin on a persistent error */
        return;
    }

    if (ready > 0 && s_listen_fd >= 0 && FD_ISSET(s_listen_fd, &rfds)) {
        rs_accept(now);
    }
    for (size_t i = 0; i < REMOTE_SYSLOG_MAX_CLIENTS; i++) {
        rs_sink_t *c = &s_clients[i];
        if (c->fd < 0) {
            continue;
        }
        if (ready > 0 && FD_ISSET(c->fd, &rfds) && !rs_sink_drain_input(c)) {
            rs_client_close(c, "closed");
            continue;
        }
        if (ready > 0 && FD_ISSET(c->fd, &wfds) && !rs_sink_send(c, now)) {
            rs_client_close(c, "send failed");
            continue;
        }
        if (usbip_syslog_queue_bytes(&c->q) == 0) {
            c->last_progress_us = now;
        } else if (now - c->last_progress_us > (int64_t)RS_CLIENT_STALL_MS * 1000) {
            rs_client_close(c, "stalled");
        }
    }
    if (s_col_state == COL_CONNECTING && ready > 0 && FD_ISSET(s_col.fd, &wfds)) {
        int so_error = 0;
        socklen_t so_len = sizeof so_error;
        if (getsockopt(s_col.fd, SOL_SOCKET, SO_ERROR, &so_error, &so_len) == 0 && so_error == 0) {
            rs_collector_up();
        } else {
            rs_collector_fail(now, "connect", so_error);
        }
    } else if (s_col_state == COL_CONNECTED && ready > 0) {
        if (FD_ISSET(s_col.fd, &rfds) && !rs_sink_drain_input(&s_col)) {
            rs_collector_fail(now, "closed by the collector", 0);
        } else if (FD_ISSET(s_col.fd, &wfds) && !rs_sink_send(&s_col, now)) {
            rs_collector_fail(now, "send", errno);
        }
    }
}

static void rs_task(void *arg)
{
    (void)arg;
    for (;;) {
        int64_t now = esp_timer_get_time();
        rs_collector_apply_change(now);
        rs_listener_open(now);
        rs_collector_step(now);

        /* Block on the ring only when no socket is waiting to be written. */
        bool busy = rs_want_write();
        bool more = rs_drain_ring(busy ? 0 : pdMS_TO_TICKS(RS_IDLE_WAIT_MS));
        now = esp_timer_get_time();
        if (usbip_syslog_assembler_pending(&s_line) &&
            now - s_line_started_us >= (int64_t)RS_LINE_FLUSH_MS * 1000) {
            rs_emit_pending(); /* a line that never got its newline */
        }
        rs_notices(now);
        rs_service_sockets(!more && rs_want_write() ? RS_SEND_WAIT_MS : 0, now);
    }
}

/* ---- Public API --------------------------------------------------------------- */

esp_err_t remote_syslog_start(const remote_syslog_config_t *cfg)
{
    if (!cfg) {
        return ESP_ERR_INVALID_ARG;
    }
    if (s_started) {
        return ESP_ERR_INVALID_STATE;
    }
    const char *collector = cfg->collector ? cfg->collector : "";
    if (usbip_syslog_target_parse(collector, NULL, 0, NULL, NULL) != USBIP_OK) {
        return ESP_ERR_INVALID_ARG;
    }
    copy_text(s_hostname, sizeof s_hostname, cfg->hostname,
              cfg->hostname ? strlen(cfg->hostname) : 0);
    copy_text(s_app_name, sizeof s_app_name, cfg->app_name,
              cfg->app_name ? strlen(cfg->app_name) : 0);
    s_listen_port = cfg->listen_port;
    s_events = cfg->events;
    s_wake = cfg->wake;
    s_wake_ctx = cfg->wake_ctx;

    int64_t now = esp_timer_get_time();
    for (size_t i = 0; i < REMOTE_SYSLOG_MAX_CLIENTS; i++) {
        s_clients[i].fd = -1;
        usbip_syslog_queue_init(&s_clients[i].q, s_client_bufs[i], sizeof s_client_bufs[i],
                                s_client_lens[i], RS_QUEUE_FRAMES);
    }
    s_col.fd = -1;
    usbip_syslog_queue_init(&s_col.q, s_col_buf, sizeof s_col_buf, s_col_lens, RS_QUEUE_FRAMES);
    rs_sink_reset(&s_col, now);
    s_col_state = COL_OFF;
    s_col_target[0] = '\0';
    usbip_syslog_backoff_init(&s_col_backoff, RS_BACKOFF_MIN_MS, RS_BACKOFF_MAX_MS);
    usbip_syslog_assembler_init(&s_line, s_line_buf, sizeof s_line_buf);
    s_hook_notice_us = now;

    portENTER_CRITICAL(&s_col_mux);
    copy_text(s_col_pending, sizeof s_col_pending, collector, strlen(collector));
    s_col_changed = true;
    portEXIT_CRITICAL(&s_col_mux);

    s_ring = xRingbufferCreate(REMOTE_SYSLOG_RING_BYTES, RINGBUF_TYPE_NOSPLIT);
    s_evq = xQueueCreate(RS_EVENT_QUEUE_LEN, sizeof(rs_event_t));
    if (!s_ring || !s_evq ||
        xTaskCreatePinnedToCore(rs_task, "syslog", REMOTE_SYSLOG_TASK_STACK, NULL,
                                REMOTE_SYSLOG_TASK_PRIO, &s_task, tskNO_AFFINITY) != pdPASS) {
        if (s_ring) {
            vRingbufferDelete(s_ring);
            s_ring = NULL;
        }
        if (s_evq) {
            vQueueDelete(s_evq);
            s_evq = NULL;
        }
        return ESP_ERR_NO_MEM;
    }
    s_started = true;

    /* Until the swap returns the real previous handler, lines still reach
     * the console through plain vprintf (ESP-IDF's default). */
    atomic_store(&s_prev_vprintf, &vprintf);
    vprintf_like_t previous = esp_log_set_vprintf(&rs_vprintf);
    atomic_store(&s_prev_vprintf, previous);
    return ESP_OK;
}

void remote_syslog_process(void)
{
    if (!s_started) {
        return;
    }
    /* Lines this task logs meanwhile (event_log echoes each event) must not
     * come back as events. */
    atomic_store(&s_process_task, xTaskGetCurrentTaskHandle());
    rs_event_t ev;
    for (int i = 0; i < RS_EVENT_BATCH && xQueueReceive(s_evq, &ev, 0) == pdTRUE; i++) {
        if (!s_events) {
            continue;
        }
        bool error = ev.level == 'E';
        usbip_event_log_add(s_events, error ? USBIP_EVENT_ERROR : USBIP_EVENT_INFO, NULL, NULL,
                            "%s%s%s%s", error ? "" : "warning: ", ev.tag, ev.tag[0] ? ": " : "",
                            ev.text);
    }
    uint32_t dropped = atomic_load(&s_events_dropped);
    uint32_t lost = dropped - s_events_reported;
    s_events_reported = dropped;
    if (lost > 0 && s_events) {
        usbip_event_log_add(s_events, USBIP_EVENT_INFO, NULL, NULL,
                            "%u warning/error log lines not recorded (queue full)",
                            (unsigned)lost);
    }
    atomic_store(&s_process_task, (TaskHandle_t)NULL);
    if (uxQueueMessagesWaiting(s_evq) > 0 && s_wake) {
        s_wake(s_wake_ctx); /* the rest next time round */
    }
}

esp_err_t remote_syslog_set_collector(const char *collector)
{
    const char *text = collector ? collector : "";
    if (usbip_syslog_target_parse(text, NULL, 0, NULL, NULL) != USBIP_OK) {
        return ESP_ERR_INVALID_ARG;
    }
    if (!s_started) {
        return ESP_ERR_INVALID_STATE;
    }
    portENTER_CRITICAL(&s_col_mux);
    copy_text(s_col_pending, sizeof s_col_pending, text, strlen(text));
    s_col_changed = true;
    portEXIT_CRITICAL(&s_col_mux);
    return ESP_OK;
}

void remote_syslog_get_stats(remote_syslog_stats_t *out)
{
    if (!out) {
        return;
    }
    memset(out, 0, sizeof *out);
    if (!s_started) {
        return;
    }
    out->lines = atomic_load(&s_lines);
    out->hook_dropped = atomic_load(&s_hook_dropped);
    out->hook_truncated = atomic_load(&s_hook_truncated);
    out->client_dropped = atomic_load(&s_client_dropped_total);
    out->collector_dropped = atomic_load(&s_col_dropped_total);
    out->events_dropped = atomic_load(&s_events_dropped);
    out->clients_refused = atomic_load(&s_clients_refused);
    out->clients = atomic_load(&s_client_count);
    out->collector_connected = atomic_load(&s_collector_up);
}
