/* Bounded per-connection queue of whole frames, and the reconnect backoff. */
#include <string.h>

#include "usbip_syslog.h"

static void count_drop(usbip_syslog_queue_t *q)
{
    if (q->dropped != UINT32_MAX) {
        q->dropped++;
    }
}

static size_t next_rec(const usbip_syslog_queue_t *q, size_t index)
{
    return (index + 1) % q->lens_cap;
}

usbip_err_t usbip_syslog_queue_init(usbip_syslog_queue_t *q, uint8_t *buf, size_t cap,
                                    uint16_t *lens, size_t lens_cap)
{
    if (!q || !buf || !lens || cap == 0 || lens_cap < 2) {
        return USBIP_ERR_INVALID_ARG;
    }
    memset(q, 0, sizeof *q);
    q->buf = buf;
    q->cap = cap;
    q->lens = lens;
    q->lens_cap = lens_cap;
    return USBIP_OK;
}

/* Drop the head frame; nothing of it was sent. */
static void drop_head(usbip_syslog_queue_t *q)
{
    size_t len = q->lens[q->rec_head];
    q->head = (q->head + len) % q->cap;
    q->used -= len;
    q->rec_head = next_rec(q, q->rec_head);
    q->rec_count--;
    count_drop(q);
}

/* The head frame is partly sent: drop the frame behind it instead, moving
 * the head's unsent bytes forward over it so the ring stays contiguous. */
static void drop_second(usbip_syslog_queue_t *q)
{
    size_t second = next_rec(q, q->rec_head);
    size_t len2 = q->lens[second];
    size_t rest = q->lens[q->rec_head] - q->head_sent;
    for (size_t i = rest; i-- > 0;) { /* backwards: the regions overlap */
        q->buf[(q->head + len2 + i) % q->cap] = q->buf[(q->head + i) % q->cap];
    }
    q->head = (q->head + len2) % q->cap;
    q->used -= len2;
    q->lens[second] = q->lens[q->rec_head]; /* the head now lives in slot "second" */
    q->rec_head = second;
    q->rec_count--;
    count_drop(q);
}

usbip_err_t usbip_syslog_queue_push(usbip_syslog_queue_t *q, const void *frame, size_t len)
{
    if (!q || !q->buf || (!frame && len > 0)) {
        return USBIP_ERR_INVALID_ARG;
    }
    if (len == 0) {
        return USBIP_ERR_INVALID_SIZE;
    }
    if (len > UINT16_MAX || len > q->cap) {
        count_drop(q);
        return USBIP_ERR_INVALID_SIZE;
    }
    while (q->cap - q->used < len || q->rec_count == q->lens_cap) {
        if (q->head_sent == 0) {
            drop_head(q);
        } else if (q->rec_count >= 2) {
            drop_second(q);
        } else {
            count_drop(q); /* only the partly sent frame is left: it stays */
            return USBIP_ERR_NO_MEM;
        }
    }
    size_t tail = (q->head + q->used) % q->cap;
    size_t first = q->cap - tail < len ? q->cap - tail : len;
    memcpy(&q->buf[tail], frame, first);
    memcpy(q->buf, (const uint8_t *)frame + first, len - first);
    q->lens[(q->rec_head + q->rec_count) % q->lens_cap] = (uint16_t)len;
    q->rec_count++;
    q->used += len;
    return USBIP_OK;
}

size_t usbip_syslog_queue_peek(const usbip_syslog_queue_t *q, const uint8_t **data)
{
    if (data) {
        *data = NULL;
    }
    if (!q || q->used == 0) {
        return 0;
    }
    if (data) {
        *data = &q->buf[q->head];
    }
    size_t to_end = q->cap - q->head;
    return q->used < to_end ? q->used : to_end;
}

void usbip_syslog_queue_consume(usbip_syslog_queue_t *q, size_t n)
{
    if (!q) {
        return;
    }
    if (n > q->used) {
        n = q->used;
    }
    while (n > 0) {
        size_t rest = q->lens[q->rec_head] - q->head_sent;
        size_t step = n < rest ? n : rest;
        q->head = (q->head + step) % q->cap;
        q->used -= step;
        q->head_sent += step;
        n -= step;
        if (q->head_sent == q->lens[q->rec_head]) {
            q->head_sent = 0;
            q->rec_head = next_rec(q, q->rec_head);
            q->rec_count--;
        }
    }
    if (q->used == 0) {
        q->head = 0; /* keep the next frames contiguous */
    }
}

void usbip_syslog_queue_discard_partial(usbip_syslog_queue_t *q)
{
    if (!q || q->head_sent == 0) {
        return;
    }
    size_t rest = q->lens[q->rec_head] - q->head_sent;
    q->head = (q->head + rest) % q->cap;
    q->used -= rest;
    q->head_sent = 0;
    q->rec_head = next_rec(q, q->rec_head);
    q->rec_count--;
    if (q->used == 0) {
        q->head = 0;
    }
    count_drop(q);
}

void usbip_syslog_queue_clear(usbip_syslog_queue_t *q)
{
    if (!q) {
        return;
    }
    q->head = 0;
    q->used = 0;
    q->rec_head = 0;
    q->rec_count = 0;
    q->head_sent = 0;
}

size_t usbip_syslog_queue_bytes(const usbip_syslog_queue_t *q)
{
    return q ? q->used : 0;
}

size_t usbip_syslog_queue_frames(const usbip_syslog_queue_t *q)
{
    return q ? q->rec_count : 0;
}

uint32_t usbip_syslog_queue_dropped(const usbip_syslog_queue_t *q)
{
    return q ? q->dropped : 0;
}

void usbip_syslog_backoff_init(usbip_syslog_backoff_t *b, uint32_t min_ms, uint32_t max_ms)
{
    if (!b) {
        return;
    }
    b->min_ms = min_ms ? min_ms : 1;
    b->max_ms = max_ms < b->min_ms ? b->min_ms : max_ms;
    b->next_ms = b->min_ms;
}

uint32_t usbip_syslog_backoff_next(usbip_syslog_backoff_t *b)
{
    if (!b) {
        return 0;
    }
    uint32_t delay = b->next_ms;
    b->next_ms = delay > b->max_ms / 2 ? b->max_ms : delay * 2;
    return delay;
}

void usbip_syslog_backoff_reset(usbip_syslog_backoff_t *b)
{
    if (b) {
        b->next_ms = b->min_ms;
    }
}
