/* 13: clients that die mid-transfer: a child process SIGKILLed with URBs in
 * flight and half an OUT payload sent, and a socket reset (RST) with URBs
 * pending in the device. The daemon keeps serving others and releases the
 * device. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integ_util.h"

static int count_sessions(daemon_t *d)
{
    char out[4096];
    if (!daemon_ctl_ok(d, "sessions", out, sizeof out)) {
        return -1;
    }
    int n = 0;
    for (const char *p = strchr(out, '\n'); p && p[1]; p = strchr(p + 1, '\n')) {
        n++;
    }
    return n;
}

static void check_recovered(daemon_t *d, usbip_client_t *good)
{
    CHECK(it_wait_listed(d, BUSID_ZERO, true, 3000));
    uint64_t deadline = it_now_ms() + 3000;
    int sessions;
    while ((sessions = count_sessions(d)) != 1 && it_now_ms() < deadline) {
        it_sleep_ms(20);
    }
    CHECK_EQ(sessions, 1);
    usbip_client_t *z = it_import(d, BUSID_ZERO, NULL);
    CHECK(z && it_zero_in_ok(z, 256 * 1024));
    it_close(z);
    CHECK(it_serial_echo_ok(good, 4096, 77));
}

/* The child: import zero, put URBs in flight both ways, start a 1 MiB OUT
 * and stop in the middle of its payload, then die by SIGKILL. It reports
 * progress through the pipe: 'I' imported, 'S' about to die. */
static void child_main(uint16_t port, int report_fd)
{
    usbip_client_t *c = NULL;
    if (usbip_client_connect("127.0.0.1", port, 5000, &c) != USBIP_OK ||
        usbip_client_import(c, BUSID_ZERO, NULL, NULL) != USBIP_OK) {
        _exit(10);
    }
    if (write(report_fd, "I", 1) != 1) {
        _exit(11);
    }
    static uint8_t in_bufs[32][65536];
    static uint8_t pattern[65536];
    it_fill_pattern(pattern, sizeof pattern, 512);
    static usbip_client_urb_t urbs[48];
    for (int i = 0; i < 48; i++) {
        bool in = i < 32;
        urbs[i] = (usbip_client_urb_t){.ep = 1, .dir_in = in, .length = 65536,
                                       .buffer = in ? in_bufs[i] : pattern};
        if (usbip_client_submit(c, &urbs[i]) != USBIP_OK) {
            _exit(12);
        }
    }
    static uint8_t big[48 + 512 * 1024];
    it_urb_header(big, 1, 100000, usbip_client_devid(c), 0, 1, 0, 1024 * 1024, 0, 0, 0, NULL);
    it_fill_pattern(big + 48, 512 * 1024, 512);
    if (usbip_client_send_raw(c, big, sizeof big) != USBIP_OK) {
        _exit(13);
    }
    if (write(report_fd, "S", 1) != 1) {
        _exit(14);
    }
    raise(SIGKILL);
    _exit(15);
}

static void killed_process_mid_transfer(daemon_t *d)
{
    usbip_client_t *good = it_import(d, BUSID_SERIAL, NULL);
    REQUIRE(good);
    REQUIRE(it_serial_echo_ok(good, 4096, 1));
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        alarm(20);
        child_main(d->port, fds[1]);
    }
    close(fds[1]);
    char progress[4] = {0};
    size_t got = 0;
    while (got < 2) {
        ssize_t n = read(fds[0], progress + got, 2 - got);
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    close(fds[0]);
    int status = 0;
    uint64_t deadline = it_now_ms() + 20000;
    while (waitpid(pid, &status, WNOHANG) != pid) {
        if (it_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        it_sleep_ms(10);
    }
    CHECK_STR(progress, "IS");
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    check_recovered(d, good);
}

/* RST from the client while URBs wait in the device (loopback IN with
 * nothing looped) and an OUT payload is half sent. */
static void reset_with_urbs_pending(daemon_t *d)
{
    usbip_client_t *good = it_import(d, BUSID_SERIAL, NULL);
    REQUIRE(good);
    usbip_client_t *c = it_import(d, BUSID_ZERO, NULL);
    REQUIRE(c);
    uint32_t actual = 0;
    REQUIRE_EQ(it_control(c, 0x00, 9, 2, 0, NULL, 0, &actual), 0);
    usbip_client_urb_t *urbs = it_malloc(16 * sizeof *urbs);
    uint8_t *bufs = it_malloc(16 * 4096);
    REQUIRE(urbs && bufs);
    for (int i = 0; i < 16; i++) {
        urbs[i] = (usbip_client_urb_t){.ep = 1, .dir_in = true, .buffer = bufs + 4096 * i,
                                       .length = 4096};
        REQUIRE(it_submit(c, &urbs[i]));
    }
    CHECK(it_no_reply_within(c, 200));
    uint8_t *half = it_malloc(48 + 100000);
    REQUIRE(half);
    it_urb_header(half, 1, 5000, usbip_client_devid(c), 0, 1, 0, 200000, 0, 0, 0, NULL);
    REQUIRE_OK(c, usbip_client_send_raw(c, half, 48 + 100000));
    it_sleep_ms(100);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(usbip_client_fd(c), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    it_close(c);
    CHECK(it_serial_echo_ok(good, 4096, 2));
    check_recovered(d, good);
    char out[256];
    REQUIRE(daemon_ctl_ok(d, "status 1-4", out, sizeof out));
    CHECK_CONTAINS(out, "config 1 alt 0"); /* back to the default state */
}

/* Many short-lived killed clients in a row. */
static void many_abrupt_clients(daemon_t *d)
{
    usbip_client_t *good = it_import(d, BUSID_SERIAL, NULL);
    REQUIRE(good);
    for (int round = 0; round < 20; round++) {
        usbip_client_t *c = it_import(d, BUSID_ZERO, NULL);
        REQUIRE(c);
        usbip_client_urb_t *urbs = it_malloc(8 * sizeof *urbs);
        uint8_t *bufs = it_malloc(8 * 16384);
        REQUIRE(urbs && bufs);
        for (int i = 0; i < 8; i++) {
            urbs[i] = (usbip_client_urb_t){.ep = (uint8_t)(i % 2 ? 2 : 1), .dir_in = true,
                                           .buffer = bufs + 16384 * i,
                                           .length = i % 2 ? 64 : 16384};
            REQUIRE(it_submit(c, &urbs[i]));
        }
        if (round % 2) {
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            setsockopt(usbip_client_fd(c), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        it_close(c);
    }
    check_recovered(d, good);
}

int main(int argc, char **argv)
{
    it_init(argc, argv, 150);
    it_run("killed_process_mid_transfer", killed_process_mid_transfer, NULL);
    it_run("reset_with_urbs_pending", reset_with_urbs_pending, NULL);
    it_run("many_abrupt_clients", many_abrupt_clients, NULL);
    return it_finish();
}
