/*
 * usbip_netloop: the server's socket loop. The Linux/macOS daemon and the
 * ESP32-P4 firmware (lwIP sockets through the ESP-IDF VFS) run this same code.
 *
 * One thread (a FreeRTOS task on the firmware) owns the loop and everything
 * it calls: the core (usbip_server and its sessions) is touched from that
 * thread only. Each iteration the loop
 *  - calls the port's device hook (backend completions, hot-plug), flushes
 *    replies, closes what must close and frees finished sessions;
 *  - sleeps in poll() until a socket is ready, the device hook's next timer
 *    is due, or another thread rings the waker;
 *  - accepts connections: one the server refuses (access control, too many
 *    clients) is accepted and closed at once, the server logging why and
 *    recording a client_refused event;
 *  - makes each connection non-blocking with TCP_NODELAY and keepalive,
 *    reads straight into the buffer its session offers and stops reading a
 *    session that offers none (TCP flow control then pushes back on that
 *    client only), and writes each batch of replies with one sendmsg;
 *  - polls the port's own extra descriptors (the daemon's control socket).
 * usbip_netloop_stop() (any thread, or a signal handler) ends the loop: every
 * session is closed and the loop waits, bounded, for the backend to hand
 * back their URBs.
 *
 * Threads other than the loop's never call into the core: they queue their
 * work where the device hook will find it and call usbip_netloop_wake().
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/poll.h>

#include "usbip_err.h"
#include "usbip_server.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The loop's doorbell: a descriptor the loop polls and other threads make
 * readable by writing 8 bytes to write_fd. On a POSIX host a pipe (read end,
 * write end, both O_NONBLOCK); on ESP-IDF an eventfd (the same descriptor
 * twice; ESP-IDF eventfds accept only 8-byte reads and writes). */
typedef struct {
    int read_fd;
    int write_fd;
    atomic_bool pending; /* a wake is on its way: a burst of wakes writes once */
} usbip_netloop_waker_t;

void usbip_netloop_waker_init(usbip_netloop_waker_t *waker, int read_fd, int write_fd);

/* Ring the waker (a usbip_netloop_waker_t *). Callable from any thread or
 * task and from a signal handler; never blocks. The void * matches the wake
 * callbacks other components take ("void (*wake)(void *ctx)"). */
void usbip_netloop_wake(void *waker);

/* The port's own descriptors, polled with the sockets. */
typedef struct {
    /* Write up to max entries (fd, events) to add to this iteration's poll
     * set; return how many. */
    size_t (*fill)(void *ctx, struct pollfd *fds, size_t max);
    /* After every poll, also one that timed out: the same entries with
     * revents set (all 0 on a timeout), so the port can run its timers. */
    void (*ready)(void *ctx, const struct pollfd *fds, size_t count, uint64_t now_ms);
    void *ctx;
    size_t max_fds;
} usbip_netloop_extra_t;

typedef struct {
    usbip_server_t *server;       /* required */
    usbip_netloop_waker_t *waker; /* required, initialised, owned by the port */
    /* Numeric IPv4 or IPv6 address to listen on; NULL: every address
     * (IPv6 dual-stack where the stack has IPv6, else IPv4). */
    const char *listen_address;
    uint16_t port; /* 0: any free port, see usbip_netloop_port() */
    int listen_backlog;

    /* The device side, called on the loop's thread (both optional):
     * poll_devices delivers backend completions and device arrivals and
     * departures; next_timeout_ms says how many ms until poll_devices must
     * run again (negative: only when woken). */
    void (*poll_devices)(void *ctx, uint64_t now_ms);
    int (*next_timeout_ms)(void *ctx, uint64_t now_ms);
    void *device_ctx;

    usbip_netloop_extra_t extra; /* fill == NULL: none */

    int max_wait_ms;    /* longest single poll(), so timers run even if no one wakes us */
    size_t read_budget; /* bytes read from one connection per iteration: fairness */
    /* TCP keepalive, so a vanished client frees its device: seconds idle
     * before the first probe, seconds between probes, probes lost before the
     * connection is dropped. 0 leaves the system's value. */
    int keepalive_idle_s;
    int keepalive_interval_s;
    int keepalive_count;
    uint32_t shutdown_grace_ms; /* how long shutdown waits for URBs to come back */
} usbip_netloop_config_t;

/* Backlog 8, poll at most 1000 ms, 1 MiB read budget, keepalive 15 s idle,
 * 5 s interval, 3 probes, 3000 ms shutdown grace. */
void usbip_netloop_config_default(usbip_netloop_config_t *cfg);

typedef struct usbip_netloop usbip_netloop_t;

/* Open the listening socket. Errors are logged naming the address and the
 * reason: INVALID_ARG (bad config or address), IO (cannot listen), NO_MEM. */
usbip_err_t usbip_netloop_create(const usbip_netloop_config_t *cfg, usbip_netloop_t **out);

/* Serve until usbip_netloop_stop(), then usbip_netloop_shutdown(). Returns
 * early (after shutting down) only if poll() fails or memory runs out, which
 * is logged. */
void usbip_netloop_run(usbip_netloop_t *loop);

/* One iteration, sleeping at most max_wait_ms (negative: until something
 * happens). False on a fatal error (logged). For tests and for ports that
 * interleave other work. */
bool usbip_netloop_step(usbip_netloop_t *loop, int max_wait_ms);

/* Ask run() to end. Any thread, or a signal handler. */
void usbip_netloop_stop(usbip_netloop_t *loop);
bool usbip_netloop_stopping(const usbip_netloop_t *loop);

/* Close the listener and every connection, end every session and wait up to
 * shutdown_grace_ms for the backend to return their URBs. Runs once. */
void usbip_netloop_shutdown(usbip_netloop_t *loop);

/* After shutdown (or instead of it, at exit). The waker is the port's. */
void usbip_netloop_destroy(usbip_netloop_t *loop);

/* The port actually bound (useful with port 0). */
uint16_t usbip_netloop_port(const usbip_netloop_t *loop);

/* Connections whose socket is still open. */
size_t usbip_netloop_connection_count(const usbip_netloop_t *loop);

#ifdef __cplusplus
}
#endif
