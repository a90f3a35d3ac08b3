/*
 * web_ws: the /ws clients. The server task builds each update once
 * (web_ws_broadcast) and queues a reference to it on every client; the httpd
 * task writes the queues out in a work item (httpd_queue_work +
 * httpd_ws_send_frame_async). A client that stops reading only ever holds
 * MAX_QUEUED_FRAMES; beyond, its queue is dropped and the server task sends
 * it a fresh snapshot once it has caught up (as the daemon's binding does).
 *
 * Threads. The table is guarded by s_lock. Slots are taken and freed only in
 * the httpd task (handshake, close hook), which is also the only writer to
 * the sockets; the server task only queues frames and sets flags. So while
 * the flush work item (httpd task) sends with the lock released, its slot
 * cannot change owner: the close hook runs in the same task.
 *
 * Lost work items. Without CONFIG_HTTPD_QUEUE_WORK_BLOCKING a work item is a
 * datagram to the server's control socket, which lwIP drops silently when
 * that socket's queue is full. The flush work item is therefore idempotent
 * and owns nothing: frames stay in the queues, and a flush that has not run
 * after FLUSH_REQUEUE_US is simply queued again by the next update.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "esp_heap_caps.h"
#include "esp_log.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/semphr.h"
#include "sdkconfig.h"
#include "web_internal.h"

/* With this option httpd_queue_work() waits (portMAX_DELAY) until the httpd
 * task has run the previous work item (httpd_main.c). The server task queues
 * flushes, so it would wait for a flush stuck on a browser that stopped
 * reading (send_wait_timeout per frame) or for an API request that is itself
 * waiting for the server task: the USB/IP server must never wait on httpd. */
#if CONFIG_HTTPD_QUEUE_WORK_BLOCKING
#error "web_dashboard needs CONFIG_HTTPD_QUEUE_WORK_BLOCKING off (the server task must not wait for httpd)"
#endif

static const char *TAG = WEB_TAG;

#define MAX_QUEUED_FRAMES 8 /* per client; beyond, it gets a fresh snapshot */
#define FLUSH_REQUEUE_US (2 * 1000 * 1000)

/* One update, shared by every client it is queued on. */
typedef struct {
    uint32_t refs; /* under s_lock */
    size_t len;
    char text[];
} frame_t;

typedef struct {
    int fd;      /* -1: free slot */
    bool joined; /* registered; the server task has not announced it to the engine yet */
    bool resync; /* fell behind: its queue was dropped, a snapshot is due */
    bool failed; /* a send failed: the socket is shut down, the close hook will follow */
    uint8_t head;
    uint8_t count;
    frame_t *queue[MAX_QUEUED_FRAMES];
} client_t;

static SemaphoreHandle_t s_lock;
static client_t *s_clients;
static size_t s_max_clients;
static httpd_handle_t s_httpd;
static bool s_flush_pending;       /* under s_lock */
static int64_t s_flush_queued_us;  /* under s_lock */

static void lock(void) { xSemaphoreTake(s_lock, portMAX_DELAY); }
static void unlock(void) { xSemaphoreGive(s_lock); }

/* ---- frames and queues (callers hold s_lock, except frame_new) ---- */

/* Updates are a few KiB each and there may be several per client: PSRAM
 * first, internal RAM only if there is no PSRAM left. */
static frame_t *frame_new(const char *text, size_t len)
{
    frame_t *f = heap_caps_malloc_prefer(sizeof *f + len, 2,
                                         (uint32_t)(MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT),
                                         (uint32_t)MALLOC_CAP_DEFAULT);
    if (f) {
        f->refs = 1;
        f->len = len;
        memcpy(f->text, text, len);
    }
    return f;
}

static void frame_unref(frame_t *f)
{
    if (--f->refs == 0) {
        heap_caps_free(f);
    }
}

static void client_push(client_t *c, frame_t *f)
{
    c->queue[(c->head + c->count) % MAX_QUEUED_FRAMES] = f;
    c->count++;
    f->refs++;
}

static frame_t *client_pop(client_t *c)
{
    frame_t *f = c->queue[c->head];
    c->head = (uint8_t)((c->head + 1) % MAX_QUEUED_FRAMES);
    c->count--;
    return f;
}

static void client_drop_frames(client_t *c)
{
    while (c->count) {
        frame_unref(client_pop(c));
    }
    c->head = 0;
}

static client_t *client_by_fd(int fd)
{
    for (size_t i = 0; i < s_max_clients; i++) {
        if (s_clients[i].fd == fd) {
            return &s_clients[i];
        }
    }
    return NULL;
}

/* ---- the writer (httpd task) ---- */

static bool send_frame(int fd, const frame_t *f)
{
    /* Not a WebSocket any more (a close frame arrived, the session is
     * closing): nothing to send to. */
    if (httpd_ws_get_fd_info(s_httpd, fd) != HTTPD_WS_CLIENT_WEBSOCKET) {
        return false;
    }
    httpd_ws_frame_t frame = {
        .final = true,
        .fragmented = false,
        .type = HTTPD_WS_TYPE_TEXT,
        .payload = (uint8_t *)f->text,
        .len = f->len,
    };
    if (httpd_ws_send_frame_async(s_httpd, fd, &frame) != ESP_OK) {
        return false;
    }
    /* Browsers send nothing on this socket: without this the LRU purge
     * (lru_purge_enable) would pick a live dashboard first. */
    (void)httpd_sess_update_lru_counter(s_httpd, fd);
    return true;
}

static void schedule_flush(void);

/* Work item: one frame per client, so a slow client delays the others by at
 * most one send (send_wait_timeout); what is left goes in a new work item.
 * Not a loop until every queue is empty: this task also serves every HTTP
 * request, handshake and close, and a browser that reads just fast enough
 * to keep its queue from running dry (updates come every 500 ms) would keep
 * it here for good. Between work items the server's select loop runs. */
static void flush_work(void *arg)
{
    (void)arg;
    lock();
    s_flush_pending = false; /* frames queued from now on queue a new flush */
    unlock();
    bool more = false;
    for (size_t i = 0; i < s_max_clients; i++) {
        lock();
        client_t *c = &s_clients[i];
        if (c->fd < 0 || c->failed || c->count == 0) {
            unlock();
            continue;
        }
        const int fd = c->fd;
        frame_t *f = client_pop(c);
        unlock();
        const bool sent = send_frame(fd, f);
        lock();
        frame_unref(f);
        if (!sent && c->fd == fd) {
            c->failed = true;
            client_drop_frames(c);
        }
        if (c->count > 0) {
            more = true;
        }
        unlock();
        if (!sent) {
            /* A frame may be half written: the stream is unusable. Shut
             * it down and let the server close it the usual way (it sees
             * the end of stream, then the close hook removes the slot);
             * the fd itself stays valid until then, so it cannot be
             * reused under our feet. */
            ESP_LOGI(TAG, "WebSocket client on socket %d is gone or stopped reading: closing it",
                     fd);
            shutdown(fd, SHUT_RDWR);
        }
    }
    if (more) {
        schedule_flush(); /* a datagram to our own control socket: does not block */
    }
}

/* Any task: make sure a flush is on its way. */
static void schedule_flush(void)
{
    if (!s_httpd) {
        return;
    }
    const int64_t now = esp_timer_get_time();
    bool queue = false;
    lock();
    if (!s_flush_pending || now - s_flush_queued_us > FLUSH_REQUEUE_US) {
        s_flush_pending = true;
        s_flush_queued_us = now;
        queue = true;
    }
    unlock();
    if (queue && httpd_queue_work(s_httpd, flush_work, NULL) != ESP_OK) {
        lock();
        s_flush_pending = false; /* the next update tries again */
        unlock();
    }
}

/* ---- the interface ---- */

esp_err_t web_ws_init(size_t max_clients)
{
    s_lock = xSemaphoreCreateMutex();
    s_clients = calloc(max_clients, sizeof *s_clients);
    if (!s_lock || !s_clients) {
        if (s_lock) {
            vSemaphoreDelete(s_lock);
            s_lock = NULL;
        }
        free(s_clients);
        s_clients = NULL;
        return ESP_ERR_NO_MEM;
    }
    for (size_t i = 0; i < max_clients; i++) {
        s_clients[i].fd = -1;
    }
    s_max_clients = max_clients;
    return ESP_OK;
}

void web_ws_attach(httpd_handle_t httpd) { s_httpd = httpd; }

bool web_ws_add(int fd)
{
    lock();
    client_t *c = client_by_fd(fd); /* a stale entry for a reused fd */
    if (!c) {
        c = client_by_fd(-1);
    }
    if (c) {
        client_drop_frames(c);
        memset(c, 0, sizeof *c);
        c->fd = fd;
        c->joined = true;
    }
    unlock();
    if (c) {
        ESP_LOGD(TAG, "WebSocket client on socket %d", fd);
    }
    return c != NULL;
}

void web_ws_remove(int fd)
{
    if (!s_clients) {
        return;
    }
    lock();
    client_t *c = client_by_fd(fd);
    if (c) {
        client_drop_frames(c);
        memset(c, 0, sizeof *c);
        c->fd = -1;
    }
    unlock();
}

void web_ws_serve(webui_t *ui)
{
    if (!s_clients) {
        return;
    }
    bool joined = false;
    bool resync = false;
    lock();
    for (size_t i = 0; i < s_max_clients; i++) {
        client_t *c = &s_clients[i];
        if (c->fd < 0 || c->failed) {
            continue;
        }
        if (c->joined) {
            c->joined = false; /* from now on it gets the broadcasts */
            joined = true;
        }
        resync |= c->resync;
    }
    unlock();
    if (joined) {
        webui_ws_client_joined(ui); /* the next push carries everything */
    }
    if (!resync) {
        return;
    }
    size_t len = 0;
    char *text = webui_ws_snapshot(ui, &len);
    frame_t *f = text ? frame_new(text, len) : NULL;
    free(text);
    if (!f) {
        return; /* out of memory: tried again next turn */
    }
    lock();
    for (size_t i = 0; i < s_max_clients; i++) {
        client_t *c = &s_clients[i];
        if (c->fd >= 0 && !c->failed && c->resync) {
            client_drop_frames(c);
            client_push(c, f);
            c->resync = false;
        }
    }
    frame_unref(f);
    unlock();
    schedule_flush();
}

void web_ws_broadcast(void *ctx, const char *text, size_t len)
{
    (void)ctx;
    if (!s_clients) {
        return;
    }
    frame_t *f = NULL;
    bool queued = false;
    bool no_memory = false;
    lock();
    for (size_t i = 0; i < s_max_clients; i++) {
        client_t *c = &s_clients[i];
        if (c->fd < 0 || c->joined || c->resync || c->failed) {
            continue; /* gone, or a full picture is coming anyway */
        }
        if (c->count >= MAX_QUEUED_FRAMES) {
            client_drop_frames(c); /* a slow browser: catch up with one snapshot */
            c->resync = true;
            continue;
        }
        if (!f && !no_memory) {
            f = frame_new(text, len);
            no_memory = f == NULL;
        }
        if (!f) {
            /* Out of memory. The engine counts this update as delivered (it
             * moves past its events and, after a join, stops sending
             * everything: webui.c push_update), so the next one would not
             * repeat them: catch up with a snapshot (retried every turn). */
            c->resync = true;
            continue;
        }
        client_push(c, f);
        queued = true;
    }
    if (f) {
        frame_unref(f); /* our own reference: the queues hold theirs */
    }
    unlock();
    if (queued) {
        schedule_flush();
    }
}
