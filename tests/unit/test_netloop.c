/*
 * test_netloop: the shared socket loop over real loopback TCP, against a
 * server with one virtual Gadget Zero device (bus id 1-1).
 *
 * Two ways to drive it: single-threaded with usbip_netloop_step() and raw
 * sockets (refusals, wake-ups, extra descriptors), or with the loop running
 * in its own thread while the test uses the blocking client library (a client
 * that stops reading, shutdown with sessions). The core is only ever touched
 * by the loop's thread; the test reads the server's state after joining it.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "test_harness.h"
#include "usbip_client.h"
#include "usbip_log.h"
#include "usbip_netloop.h"
#include "usbip_server.h"
#include "vdev.h"

/* ---- fixture: server + zero device + loop on 127.0.0.1, any port ---- */

typedef struct {
    usbip_server_t *srv;
    vdev_t *zero;
    usbip_netloop_waker_t waker;
    usbip_netloop_t *loop;
    atomic_int device_polls;
    pthread_t thread;
    bool threaded;
} fixture_t;

static void poll_devices(void *ctx, uint64_t now)
{
    fixture_t *f = ctx;
    atomic_fetch_add(&f->device_polls, 1);
    vdev_poll(f->zero, now);
}

static int next_timeout(void *ctx, uint64_t now)
{
    fixture_t *f = ctx;
    return vdev_next_timeout_ms(f->zero, now);
}

static bool setup_with(fixture_t *f, size_t max_clients, const usbip_netloop_extra_t *extra)
{
    memset(f, 0, sizeof *f);
    usbip_clock_set(test_clock_hook, NULL);
    usbip_server_config_t scfg;
    usbip_server_config_default(&scfg);
    scfg.max_clients = max_clients;
    char err[256];
    if (usbip_server_create(&scfg, &f->srv, err, sizeof err) != USBIP_OK) {
        return false;
    }
    vdev_config_t vcfg = {.kind = VDEV_ZERO};
    const uint8_t port = 1;
    if (vdev_create(&vcfg, &f->zero) != USBIP_OK ||
        usbip_server_add_device(f->srv, vdev_device(f->zero), 1, &port, 1) != USBIP_OK) {
        return false;
    }
    int fds[2];
    if (pipe(fds) < 0) {
        return false;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
    }
    usbip_netloop_waker_init(&f->waker, fds[0], fds[1]);
    usbip_netloop_config_t cfg;
    usbip_netloop_config_default(&cfg);
    cfg.server = f->srv;
    cfg.waker = &f->waker;
    cfg.listen_address = "127.0.0.1";
    cfg.port = 0;
    cfg.poll_devices = poll_devices;
    cfg.next_timeout_ms = next_timeout;
    cfg.device_ctx = f;
    cfg.shutdown_grace_ms = 2000;
    if (extra) {
        cfg.extra = *extra;
    }
    return usbip_netloop_create(&cfg, &f->loop) == USBIP_OK;
}

static bool setup(fixture_t *f, size_t max_clients) { return setup_with(f, max_clients, NULL); }

static void *loop_thread(void *arg)
{
    fixture_t *f = arg;
    usbip_netloop_run(f->loop);
    return NULL;
}

static bool start_thread(fixture_t *f)
{
    f->threaded = pthread_create(&f->thread, NULL, loop_thread, f) == 0;
    return f->threaded;
}

/* Stop the loop thread; after this the test may look at the server. */
static void join_thread(fixture_t *f)
{
    if (f->threaded) {
        usbip_netloop_stop(f->loop);
        pthread_join(f->thread, NULL);
        f->threaded = false;
    }
}

static void teardown(fixture_t *f)
{
    join_thread(f);
    if (f->loop) {
        usbip_netloop_shutdown(f->loop);
        usbip_netloop_destroy(f->loop);
    }
    if (f->srv && f->zero) {
        usbip_server_remove_device(f->srv, vdev_device(f->zero));
    }
    usbip_server_destroy(f->srv);
    vdev_destroy(f->zero);
    if (f->waker.read_fd > 0) {
        close(f->waker.read_fd);
        close(f->waker.write_fd);
    }
    usbip_clock_set(NULL, NULL);
}

/* ---- raw sockets ---- */

static int connect_raw(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* True if the server ended the connection (EOF or reset) by now. */
static bool peer_closed(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, 0) <= 0) {
        return false;
    }
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

/* Step the loop until cond(arg) holds or timeout_ms passes. */
static bool step_until(fixture_t *f, bool (*cond)(void *), void *arg, int timeout_ms)
{
    const uint64_t deadline = test_now_ms() + (uint64_t)timeout_ms;
    while (!cond(arg)) {
        if (test_now_ms() >= deadline || !usbip_netloop_step(f->loop, 20)) {
            return false;
        }
    }
    return true;
}

static bool one_connection(void *arg) { return usbip_netloop_connection_count(arg) == 1; }
static bool fd_closed(void *arg) { return peer_closed(*(int *)arg); }

/* The newest event of this type contains text. */
static bool has_event(usbip_server_t *srv, usbip_event_type_t type, const char *text)
{
    usbip_event_t events[64];
    size_t n = usbip_event_log_read(usbip_server_events(srv), 0, events, 64);
    for (size_t i = n; i-- > 0;) {
        if (events[i].type == type) {
            return strstr(events[i].message, text) != NULL;
        }
    }
    return false;
}

/* ---- refusals ---- */

TEST(client_beyond_max_clients_is_accepted_then_closed)
{
    fixture_t f;
    REQUIRE(setup(&f, 1));
    uint16_t port = usbip_netloop_port(f.loop);
    CHECK(port != 0);
    int first = connect_raw(port);
    REQUIRE(first >= 0);
    CHECK(step_until(&f, one_connection, f.loop, 2000));

    int second = connect_raw(port);
    REQUIRE(second >= 0);
    CHECK(step_until(&f, fd_closed, &second, 2000));
    CHECK(has_event(f.srv, USBIP_EVENT_CLIENT_REFUSED, "1 clients already connected"));
    CHECK_EQ_INT(usbip_netloop_connection_count(f.loop), 1);
    CHECK(!peer_closed(first)); /* the admitted client keeps its connection */

    close(first);
    close(second);
    teardown(&f);
}

TEST(client_outside_the_allowlist_is_closed)
{
    fixture_t f;
    REQUIRE(setup(&f, 4));
    usbip_settings_t settings = *usbip_server_settings(f.srv);
    settings.acl.mode = USBIP_ACCESS_CLOSED; /* empty allowlist: nobody */
    REQUIRE(usbip_server_apply_settings(f.srv, &settings) == USBIP_OK);

    int fd = connect_raw(usbip_netloop_port(f.loop));
    REQUIRE(fd >= 0);
    CHECK(step_until(&f, fd_closed, &fd, 2000));
    CHECK(has_event(f.srv, USBIP_EVENT_CLIENT_REFUSED, "refused by access control"));
    CHECK_EQ_INT(usbip_netloop_connection_count(f.loop), 0);
    close(fd);
    teardown(&f);
}

/* ---- wake-ups ---- */

static void *wake_later(void *arg)
{
    test_sleep_ms(100);
    usbip_netloop_wake(arg);
    return NULL;
}

TEST(wake_runs_the_device_hook_at_once)
{
    fixture_t f;
    REQUIRE(setup(&f, 4));
    REQUIRE(usbip_netloop_step(f.loop, 0)); /* settle */

    /* A burst of wakes: one write, one prompt iteration. */
    for (int i = 0; i < 1000; i++) {
        usbip_netloop_wake(&f.waker);
    }
    int polls = atomic_load(&f.device_polls);
    uint64_t t0 = test_now_ms();
    REQUIRE(usbip_netloop_step(f.loop, 5000));
    CHECK(test_now_ms() - t0 < 1000);
    REQUIRE(usbip_netloop_step(f.loop, 0)); /* the hook runs at the top of a step */
    CHECK(atomic_load(&f.device_polls) > polls);

    /* Drained: nothing left to wake the next poll early. */
    t0 = test_now_ms();
    REQUIRE(usbip_netloop_step(f.loop, 150));
    CHECK(test_now_ms() - t0 >= 120);

    /* From another thread while the loop sleeps in poll(). */
    pthread_t waker;
    REQUIRE(pthread_create(&waker, NULL, wake_later, &f.waker) == 0);
    t0 = test_now_ms();
    REQUIRE(usbip_netloop_step(f.loop, 10000));
    uint64_t slept = test_now_ms() - t0;
    pthread_join(waker, NULL);
    CHECK(slept >= 50 && slept < 2000);
    teardown(&f);
}

/* ---- extra descriptors ---- */

typedef struct {
    int fd;
    int ready_calls;
    short last_revents;
    size_t last_count;
} extra_probe_t;

static size_t probe_fill(void *ctx, struct pollfd *fds, size_t max)
{
    extra_probe_t *p = ctx;
    if (max < 1) {
        return 0;
    }
    fds[0] = (struct pollfd){.fd = p->fd, .events = POLLIN};
    return 1;
}

static void probe_ready(void *ctx, const struct pollfd *fds, size_t count, uint64_t now)
{
    (void)now;
    extra_probe_t *p = ctx;
    p->ready_calls++;
    p->last_count = count;
    p->last_revents = count ? fds[0].revents : 0;
    if (p->last_revents & POLLIN) {
        char c;
        (void)!read(p->fd, &c, 1);
    }
}

TEST(extra_descriptors_are_polled_with_the_sockets)
{
    int sp[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0);
    extra_probe_t probe = {.fd = sp[0]};
    usbip_netloop_extra_t extra = {
        .fill = probe_fill, .ready = probe_ready, .ctx = &probe, .max_fds = 1};
    fixture_t f;
    REQUIRE(setup_with(&f, 4, &extra));

    REQUIRE(usbip_netloop_step(f.loop, 30)); /* times out: ready() still runs, for timers */
    CHECK_EQ_INT(probe.ready_calls, 1);
    CHECK_EQ_INT(probe.last_count, 1);
    CHECK_EQ_INT(probe.last_revents, 0);

    REQUIRE(write(sp[1], "x", 1) == 1);
    uint64_t t0 = test_now_ms();
    REQUIRE(usbip_netloop_step(f.loop, 5000));
    CHECK(test_now_ms() - t0 < 1000);
    CHECK_EQ_INT(probe.ready_calls, 2);
    CHECK(probe.last_revents & POLLIN);
    teardown(&f);
    close(sp[0]);
    close(sp[1]);
}

/* ---- a client that stops reading ---- */

#define STUCK_URBS 60
#define STUCK_URB_SIZE (256u * 1024u) /* 15 MiB of replies: more than loopback buffers hold */

static bool devlist_answers(uint16_t port)
{
    usbip_client_t *c = NULL;
    if (usbip_client_connect("127.0.0.1", port, 3000, &c) != USBIP_OK) {
        return false;
    }
    usbip_client_set_timeout(c, 3000);
    size_t ndev = 99;
    bool ok = usbip_client_devlist(c, NULL, NULL, &ndev) == USBIP_OK;
    usbip_client_close(c);
    return ok && ndev == 0; /* the one device is imported, hence not listed */
}

TEST(client_that_never_reads_does_not_block_others)
{
    fixture_t f;
    REQUIRE(setup(&f, 4));
    uint16_t port = usbip_netloop_port(f.loop);
    REQUIRE(start_thread(&f));

    usbip_client_t *stuck = NULL;
    REQUIRE(usbip_client_connect("127.0.0.1", port, 3000, &stuck) == USBIP_OK);
    REQUIRE(usbip_client_import(stuck, "1-1", NULL, NULL) == USBIP_OK);
    static usbip_client_urb_t urbs[STUCK_URBS];
    uint8_t *buffers = malloc((size_t)STUCK_URBS * STUCK_URB_SIZE);
    REQUIRE(buffers != NULL);
    for (int i = 0; i < STUCK_URBS; i++) {
        urbs[i] = (usbip_client_urb_t){.ep = 1, .dir_in = true,
                                       .buffer = buffers + (size_t)i * STUCK_URB_SIZE,
                                       .length = STUCK_URB_SIZE};
        CHECK(usbip_client_submit(stuck, &urbs[i]) == USBIP_OK);
    }
    test_sleep_ms(300); /* the server fills the stuck connection's socket */

    uint64_t t0 = test_now_ms();
    CHECK(devlist_answers(port));
    CHECK(devlist_answers(port));
    CHECK(test_now_ms() - t0 < 3000);

    /* The server really was held up: not all replies fit in the socket... */
    int queued = 0;
    CHECK(ioctl(usbip_client_fd(stuck), FIONREAD, &queued) == 0);
    CHECK((size_t)queued < (size_t)STUCK_URBS * STUCK_URB_SIZE);
    /* ...and once the client reads again every reply arrives, in full. */
    usbip_client_set_timeout(stuck, 5000);
    for (int i = 0; i < STUCK_URBS; i++) {
        usbip_client_urb_t *done = NULL;
        usbip_err_t rc = usbip_client_wait(stuck, &done, NULL, NULL);
        CHECK(rc == USBIP_OK && done != NULL);
        if (rc != USBIP_OK || !done) {
            break;
        }
        CHECK_EQ_INT(done->status, 0);
        CHECK_EQ_INT(done->actual_length, STUCK_URB_SIZE);
    }

    usbip_client_close(stuck);
    join_thread(&f);
    CHECK_EQ_INT(usbip_server_session_count(f.srv), 0);
    free(buffers);
    teardown(&f);
}

/* ---- end of connections ---- */

static bool no_sessions(void *arg) { return usbip_server_session_count(arg) == 0; }

TEST(client_closing_frees_its_session)
{
    fixture_t f;
    REQUIRE(setup(&f, 4));
    int fd = connect_raw(usbip_netloop_port(f.loop));
    REQUIRE(fd >= 0);
    CHECK(step_until(&f, one_connection, f.loop, 2000));
    CHECK_EQ_INT(usbip_server_session_count(f.srv), 1);
    close(fd);
    CHECK(step_until(&f, no_sessions, f.srv, 2000));
    CHECK_EQ_INT(usbip_netloop_connection_count(f.loop), 0);
    CHECK(has_event(f.srv, USBIP_EVENT_CLIENT_DISCONNECT, "disconnected"));
    teardown(&f);
}

TEST(shutdown_ends_sessions_with_urbs_in_flight)
{
    fixture_t f;
    REQUIRE(setup(&f, 4));
    uint16_t port = usbip_netloop_port(f.loop);
    REQUIRE(start_thread(&f));

    usbip_client_t *c = NULL;
    REQUIRE(usbip_client_connect("127.0.0.1", port, 3000, &c) == USBIP_OK);
    REQUIRE(usbip_client_import(c, "1-1", NULL, NULL) == USBIP_OK);
    static uint8_t data[4][64 * 1024];
    static usbip_client_urb_t urbs[4];
    for (int i = 0; i < 4; i++) {
        urbs[i] = (usbip_client_urb_t){.ep = 1, .dir_in = true, .buffer = data[i],
                                       .length = sizeof data[i]};
        REQUIRE(usbip_client_submit(c, &urbs[i]) == USBIP_OK);
    }
    usbip_client_urb_t *done = NULL;
    CHECK(usbip_client_wait(c, &done, NULL, NULL) == USBIP_OK && done != NULL);

    join_thread(&f); /* stop: run() shuts down before it returns */
    CHECK_EQ_INT(usbip_server_session_count(f.srv), 0);
    CHECK(has_event(f.srv, USBIP_EVENT_CLIENT_DISCONNECT, "disconnected"));
    CHECK(usbip_client_wait_closed(c, 2000));
    usbip_client_close(c);

    /* The device is free again for the next server run. */
    usbip_registry_entry_t *entry = usbip_registry_find(usbip_server_registry(f.srv), "1-1");
    CHECK(entry != NULL && entry->state == USBIP_DEV_AVAILABLE);
    teardown(&f);
}

/* ---- configuration ---- */

TEST(bad_listen_address_is_refused)
{
    usbip_clock_set(test_clock_hook, NULL);
    usbip_server_config_t scfg;
    usbip_server_config_default(&scfg);
    usbip_server_t *srv = NULL;
    char err[128];
    REQUIRE(usbip_server_create(&scfg, &srv, err, sizeof err) == USBIP_OK);
    usbip_netloop_waker_t waker;
    usbip_netloop_waker_init(&waker, 0, 1);
    usbip_netloop_config_t cfg;
    usbip_netloop_config_default(&cfg);
    cfg.server = srv;
    cfg.waker = &waker;
    cfg.listen_address = "localhost"; /* names are not resolved */
    usbip_netloop_t *loop = NULL;
    CHECK_EQ_INT(usbip_netloop_create(&cfg, &loop), USBIP_ERR_INVALID_ARG);
    cfg.listen_address = "999.1.1.1";
    CHECK_EQ_INT(usbip_netloop_create(&cfg, &loop), USBIP_ERR_INVALID_ARG);
    cfg.listen_address = NULL;
    cfg.waker = NULL;
    CHECK_EQ_INT(usbip_netloop_create(&cfg, &loop), USBIP_ERR_INVALID_ARG);
    CHECK(loop == NULL);
    usbip_server_destroy(srv);
    usbip_clock_set(NULL, NULL);
}

TEST_MAIN("netloop",
          TEST_ENTRY(client_beyond_max_clients_is_accepted_then_closed),
          TEST_ENTRY(client_outside_the_allowlist_is_closed),
          TEST_ENTRY(wake_runs_the_device_hook_at_once),
          TEST_ENTRY(extra_descriptors_are_polled_with_the_sockets),
          TEST_ENTRY(client_that_never_reads_does_not_block_others),
          TEST_ENTRY(client_closing_frees_its_session),
          TEST_ENTRY(shutdown_ends_sessions_with_urbs_in_flight),
          TEST_ENTRY(bad_listen_address_is_refused))
