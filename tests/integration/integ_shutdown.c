/* 14: clean shutdown. SIGTERM (and SIGINT) with every kind of session
 * active: URBs pending in each device, a client in the middle of a header,
 * an idle OP-phase connection and a client that stopped reading. The daemon
 * exits 0 promptly, with no sanitizer report, and every client sees EOF. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "integ_util.h"

enum { NCLIENTS = 7 };

typedef struct {
    usbip_client_t *c[NCLIENTS];
} sessions_t;

/* Fill a client's socket with 1 MiB IN submits it never reads the replies of. */
static bool flood(usbip_client_t *c)
{
    const int fd = usbip_client_fd(c);
    uint8_t hdr[48];
    uint32_t seq = 1;
    uint64_t deadline = it_now_ms() + 30000;
    size_t off = 48;
    while (it_now_ms() < deadline) {
        if (off == 48) {
            it_urb_header(hdr, 1, seq++, usbip_client_devid(c), 1, 1, 0, 1024 * 1024, 0, 0, 0,
                          NULL);
            off = 0;
        }
        ssize_t n = send(fd, hdr + off, 48 - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            if (poll(&pfd, 1, 300) == 0) {
                return true;
            }
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        return false;
    }
    return false;
}

static bool start_sessions(daemon_t *d, sessions_t *s)
{
    memset(s, 0, sizeof *s);
    static const char *const busids[4] = {"1-1", "1-2", "1-3", "1-4"};
    for (int i = 0; i < 4; i++) {
        s->c[i] = it_import(d, busids[i], NULL);
        if (!s->c[i]) {
            return false;
        }
    }
    uint32_t actual = 0;
    /* zero: loopback, IN URBs waiting for data. */
    if (it_control(s->c[3], 0x00, 9, 2, 0, NULL, 0, &actual) != 0) {
        return false;
    }
    usbip_client_urb_t *urbs = it_malloc(12 * sizeof *urbs);
    uint8_t *bufs = it_malloc(12 * 4096);
    if (!urbs || !bufs) {
        return false;
    }
    for (int i = 0; i < 12; i++) {
        int dev = i % 4;
        /* keyboard reports, serial IN, storage IN before a CBW, loopback IN */
        urbs[i] = (usbip_client_urb_t){.ep = 1, .dir_in = true, .buffer = bufs + 4096 * i,
                                       .length = dev == 0 ? 8 : 4096};
        if (!it_submit(s->c[dev], &urbs[i])) {
            return false;
        }
    }
    /* An idle OP-phase connection and one stopped half-way through a header. */
    s->c[4] = it_connect(d);
    s->c[5] = it_connect(d);
    if (!s->c[4] || !s->c[5] ||
        usbip_client_send_raw(s->c[5], (const uint8_t[]){0x01, 0x11, 0x80}, 3) != USBIP_OK) {
        return false;
    }
    /* A second Gadget Zero client that stopped reading. */
    if (!daemon_ctl_ok(d, "plug zero", NULL, 0)) {
        return false;
    }
    s->c[6] = it_import(d, "1-5", NULL);
    if (!s->c[6] || !flood(s->c[6])) {
        it_fail(__FILE__, __LINE__, "could not make a stuck client");
        return false;
    }
    char out[4096];
    if (!daemon_ctl_ok(d, "sessions", out, sizeof out)) {
        return false;
    }
    return strstr(out, "device=1-5") != NULL;
}

static void shutdown_with(daemon_t *d, int signo)
{
    sessions_t s;
    REQUIRE(start_sessions(d, &s));
    size_t mark = daemon_log_mark(d);
    uint64_t start = it_now_ms();
    REQUIRE(daemon_stop_signal(d, signo));
    uint64_t took = it_now_ms() - start;
    printf("  exit 0 %llu ms after signal %d\n", (unsigned long long)took, signo);
    CHECK(took < 5000);
    CHECK(daemon_log_wait(d, mark, "shut down cleanly", 0));
    CHECK(!daemon_log_wait(d, mark, "still waiting for their device", 0));
    for (int i = 0; i < NCLIENTS; i++) {
        CHECK(it_expect_closed(s.c[i], 2000, NULL));
    }
    /* The control socket is removed. */
    usbip_client_t *late = NULL;
    CHECK(usbip_client_connect("127.0.0.1", d->port, 1000, &late) != USBIP_OK);
    usbip_client_close(late);
    char out[256];
    CHECK(daemon_ctl(d, "list", out, sizeof out) != 0);
}

static void shutdown_sigterm(daemon_t *d) { shutdown_with(d, SIGTERM); }
static void shutdown_sigint(daemon_t *d) { shutdown_with(d, SIGINT); }

/* Idle daemons: after one DEVLIST, and with no device at all. */
static void shutdown_idle(daemon_t *d)
{
    it_dev_t devs[8];
    CHECK_EQ(it_devlist(d, devs, 8), 4);
    REQUIRE(daemon_stop(d));
}

static void shutdown_no_devices(daemon_t *d)
{
    it_dev_t devs[8];
    CHECK_EQ(it_devlist(d, devs, 8), 0);
    usbip_client_t *c = it_connect(d);
    REQUIRE(c);
    uint32_t status = 0;
    CHECK_EQ(usbip_client_import(c, "1-1", NULL, &status), USBIP_ERR_NOT_FOUND);
    REQUIRE(daemon_stop(d));
}

int main(int argc, char **argv)
{
    it_init(argc, argv, 150);
    it_run("shutdown_sigterm", shutdown_sigterm, NULL);
    it_run("shutdown_sigint", shutdown_sigint, NULL);
    it_run("shutdown_idle", shutdown_idle, NULL);
    static const char *const none[] = {"--no-devices", NULL};
    it_run("shutdown_no_devices", shutdown_no_devices, none);
    return it_finish();
}
