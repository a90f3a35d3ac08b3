/*
 * control_server: see the header. fill() lists the listener first, then the
 * connections in order; ready() gets that same list back, so entry i + 1 is
 * connection i as it was when fill() ran.
 */
#include "control_server.h"

#include <stdlib.h>

#include "control.h"
#include "usbip_log.h"

static const char *TAG = "control";

struct control_server {
    int listen_fd;
    usbip_server_t *srv;
    device_set_t *devices;
    control_conn_t *conns[CONTROL_SERVER_MAX_CONNS];
    size_t count;
    size_t polled; /* connections in the last fill() */
};

control_server_t *control_server_create(int listen_fd, usbip_server_t *srv,
                                        device_set_t *devices)
{
    control_server_t *cs = calloc(1, sizeof *cs);
    if (cs) {
        cs->listen_fd = listen_fd;
        cs->srv = srv;
        cs->devices = devices;
    }
    return cs;
}

void control_server_destroy(control_server_t *cs)
{
    if (!cs) {
        return;
    }
    for (size_t i = 0; i < cs->count; i++) {
        control_conn_close(cs->conns[i]);
    }
    free(cs);
}

size_t control_server_fill(void *ctx, struct pollfd *fds, size_t max)
{
    control_server_t *cs = ctx;
    size_t n = 0;
    if (n < max) {
        fds[n++] = (struct pollfd){.fd = cs->listen_fd, .events = POLLIN};
    }
    cs->polled = 0;
    for (size_t i = 0; i < cs->count && n < max; i++) {
        control_conn_t *c = cs->conns[i];
        fds[n++] = (struct pollfd){.fd = control_conn_fd(c), .events = control_conn_events(c)};
        cs->polled++;
    }
    return n;
}

static void remove_conn(control_server_t *cs, size_t i)
{
    control_conn_close(cs->conns[i]);
    cs->conns[i] = cs->conns[--cs->count];
    cs->conns[cs->count] = NULL;
}

/* Serve the ready connections and drop the finished ones. Backwards:
 * removing swaps in the last entry, which is already done. */
static void serve_ready(control_server_t *cs, const struct pollfd *conn_fds, size_t polled,
                        uint64_t now_ms)
{
    for (size_t i = polled < cs->polled ? polled : cs->polled; i-- > 0;) {
        short revents = conn_fds[i].revents;
        if (revents && !control_conn_service(cs->conns[i], revents, now_ms, cs->srv, cs->devices)) {
            remove_conn(cs, i);
        }
    }
}

static void drop_idle(control_server_t *cs, uint64_t now_ms)
{
    for (size_t i = cs->count; i-- > 0;) {
        if (control_conn_expired(cs->conns[i], now_ms)) {
            USBIP_LOGW(TAG, "control connection idle for %d ms: closed", CONTROL_IDLE_MS);
            remove_conn(cs, i);
        }
    }
}

static void accept_new(control_server_t *cs, uint64_t now_ms)
{
    control_conn_t *c;
    while ((c = control_accept(cs->listen_fd, now_ms)) != NULL) {
        if (cs->count == CONTROL_SERVER_MAX_CONNS) {
            USBIP_LOGW(TAG, "more than %d control connections at once: refused",
                       CONTROL_SERVER_MAX_CONNS);
            control_conn_close(c);
            continue;
        }
        cs->conns[cs->count++] = c;
        /* Most commands are already there: serve at once. */
        if (!control_conn_service(c, POLLIN, now_ms, cs->srv, cs->devices)) {
            remove_conn(cs, cs->count - 1);
        }
    }
}

void control_server_ready(void *ctx, const struct pollfd *fds, size_t count, uint64_t now_ms)
{
    control_server_t *cs = ctx;
    short listen_revents = count > 0 ? fds[0].revents : 0;
    if (count > 1) {
        serve_ready(cs, fds + 1, count - 1, now_ms);
    }
    drop_idle(cs, now_ms);
    if (listen_revents & POLLIN) {
        accept_new(cs, now_ms);
    }
}
