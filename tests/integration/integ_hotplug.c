/* 11: hot-plug through the control socket. Unplugging an imported device
 * closes its session within a second and removes it from DEVLIST; plugging
 * adds a device at the lowest free port. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "integ_util.h"

static void unplug_imported_device(daemon_t *d)
{
    usbip_client_t *other = it_import(d, BUSID_SERIAL, NULL);
    REQUIRE(other);
    usbip_client_t *c = it_import(d, BUSID_ZERO, NULL);
    REQUIRE(c);
    REQUIRE(it_zero_in_ok(c, 4096));
    /* Loopback with nothing to loop: these IN URBs stay in the device. */
    uint32_t actual = 0;
    REQUIRE_EQ(it_control(c, 0x00, 9, 2, 0, NULL, 0, &actual), 0);
    usbip_client_urb_t *urbs = it_malloc(4 * sizeof *urbs);
    uint8_t *bufs = it_malloc(4 * 512);
    REQUIRE(urbs && bufs);
    for (int i = 0; i < 4; i++) {
        urbs[i] = (usbip_client_urb_t){.ep = 1, .dir_in = true, .buffer = bufs + 512 * i,
                                       .length = 512};
        REQUIRE(it_submit(c, &urbs[i]));
    }
    CHECK(it_no_reply_within(c, 200));

    size_t mark = daemon_log_mark(d);
    uint64_t start = it_now_ms();
    char out[4096];
    REQUIRE(daemon_ctl_ok(d, "unplug 1-4", out, sizeof out));
    /* The session ends. Pending URBs may first come back with -ESHUTDOWN
     * (valid RET_SUBMITs, in order), then EOF. */
    usbip_client_set_timeout(c, 1000);
    int returned = 0;
    for (;;) {
        usbip_client_urb_t *done = NULL;
        usbip_err_t err = usbip_client_wait(c, &done, NULL, NULL);
        if (err != USBIP_OK) {
            CHECK(!usbip_client_timed_out(c));
            CHECK_CONTAINS(usbip_client_last_error(c), "connection closed by server");
            break;
        }
        REQUIRE(returned < 4 && done == &urbs[returned]);
        CHECK_EQ(done->status, -108);
        CHECK_EQ(done->actual_length, 0);
        returned++;
    }
    CHECK(it_expect_closed(c, 1000, NULL));
    uint64_t took = it_now_ms() - start;
    CHECK(took <= 1000);
    printf("  connection closed %llu ms after unplug (%d URBs returned with -ESHUTDOWN first)\n",
           (unsigned long long)took, returned);
    CHECK(daemon_log_wait(d, mark, "closing connection: the imported device was removed", 2000));
    CHECK(daemon_log_wait(d, mark, "device_removed busid=1-4: 0525:a4a0 removed while imported",
                          2000));
    it_close(c);

    /* Gone from DEVLIST (1-2 is imported too) and from ctl list; the other
     * session is fine. */
    it_dev_t devs[8];
    int n = it_devlist(d, devs, 8);
    CHECK_EQ(n, 2);
    CHECK(!it_find_dev(devs, n, BUSID_ZERO));
    REQUIRE(daemon_ctl_ok(d, "list", out, sizeof out));
    CHECK(strstr(out, "1-4") == NULL);
    CHECK(it_serial_echo_ok(other, 2000, 3));
    usbip_client_t *late = it_connect(d);
    REQUIRE(late);
    uint32_t status = 0;
    CHECK_EQ(usbip_client_import(late, BUSID_ZERO, NULL, &status), USBIP_ERR_NOT_FOUND);
    CHECK_EQ(status, 4);
    it_close(late);

    /* Plug a new Gadget Zero: once the old one is released it gets 1-4 back. */
    uint64_t deadline = it_now_ms() + 3000;
    for (;;) {
        REQUIRE(daemon_ctl_ok(d, "plug zero", out, sizeof out));
        if (strcmp(out, "ok 1-4\n") == 0 || it_now_ms() >= deadline) {
            break;
        }
        /* Took another port while 1-4 was still being released: undo. */
        char busid[32] = "", cmd[64];
        sscanf(out, "ok %31s", busid);
        snprintf(cmd, sizeof cmd, "unplug %s", busid);
        REQUIRE(daemon_ctl_ok(d, cmd, NULL, 0));
        it_sleep_ms(50);
    }
    CHECK_STR(out, "ok 1-4\n");
    CHECK(it_wait_listed(d, BUSID_ZERO, true, 2000));
    n = it_devlist(d, devs, 8);
    const it_dev_t *z = it_find_dev(devs, n, BUSID_ZERO);
    REQUIRE(z);
    CHECK_EQ(z->rec.idVendor, 0x0525);
    CHECK_EQ(z->rec.idProduct, 0xa4a0);
    CHECK_EQ(z->rec.devnum, 4);
    c = it_import(d, BUSID_ZERO, NULL);
    REQUIRE(c);
    CHECK(it_zero_in_ok(c, 65536));
    REQUIRE(daemon_ctl_ok(d, "status 1-4", out, sizeof out));
    CHECK_CONTAINS(out, "config 1 alt 0");
}

static void unplug_and_plug_idle(daemon_t *d)
{
    char out[4096];
    /* Not imported: it goes at once. */
    REQUIRE(daemon_ctl_ok(d, "unplug 1-1", out, sizeof out));
    it_dev_t devs[8];
    int n = it_devlist(d, devs, 8);
    CHECK_EQ(n, 3);
    CHECK(!it_find_dev(devs, n, BUSID_KEYBOARD));
    /* Unknown bus id, missing argument, bad spec: errors, exit status 1. */
    CHECK_EQ(daemon_ctl(d, "unplug 1-1", out, sizeof out), 1);
    CHECK_CONTAINS(out, "error: no device at bus id \"1-1\"");
    CHECK_EQ(daemon_ctl(d, "plug mouse", out, sizeof out), 1);
    CHECK_CONTAINS(out, "unknown kind \"mouse\"");
    CHECK_EQ(daemon_ctl(d, "plug storage:size=1000", out, sizeof out), 1);
    CHECK_CONTAINS(out, "multiple of 512");
    CHECK_EQ(daemon_ctl(d, "frobnicate", out, sizeof out), 1);
    CHECK_CONTAINS(out, "unknown command");

    /* Plug fills the lowest free port first, then the next. */
    uint64_t deadline = it_now_ms() + 3000;
    while (daemon_ctl(d, "plug keyboard:text=xy", out, sizeof out) == 0 &&
           strcmp(out, "ok 1-1\n") != 0 && it_now_ms() < deadline) {
        char busid[32] = "", cmd[64];
        sscanf(out, "ok %31s", busid);
        snprintf(cmd, sizeof cmd, "unplug %s", busid);
        daemon_ctl(d, cmd, NULL, 0);
        it_sleep_ms(50);
    }
    CHECK_STR(out, "ok 1-1\n");
    REQUIRE(daemon_ctl_ok(d, "plug storage:size=1M", out, sizeof out));
    CHECK_STR(out, "ok 1-5\n");
    n = it_devlist(d, devs, 8);
    CHECK_EQ(n, 5);
    const it_dev_t *s = it_find_dev(devs, n, "1-5");
    REQUIRE(s);
    CHECK_EQ(s->rec.idProduct, 0x5503);
    CHECK_EQ(s->rec.devnum, 5);
    /* The new keyboard types its own text. */
    usbip_client_t *c = it_import(d, BUSID_KEYBOARD, NULL);
    REQUIRE(c);
    uint8_t r[8];
    uint32_t actual = 0;
    CHECK_EQ(it_transfer(c, 1, true, r, 8, &actual), 0);
    CHECK_EQ(r[2], 0x1b); /* 'x' */
    REQUIRE(daemon_ctl_ok(d, "events", out, sizeof out));
    CHECK_CONTAINS(out, "device_added busid=1-5");
    CHECK_CONTAINS(out, "device_removed busid=1-1");
}

/* Unplug several devices while each is imported and busy; all sessions end
 * and the daemon stays healthy. */
static void unplug_all_while_busy(daemon_t *d)
{
    static const char *const busids[4] = {"1-1", "1-2", "1-3", "1-4"};
    usbip_client_t *c[4];
    for (int i = 0; i < 4; i++) {
        c[i] = it_import(d, busids[i], NULL);
        REQUIRE(c[i]);
    }
    /* Pending or busy URBs: keyboard report, serial IN, storage IN before any
     * CBW, zero IN. */
    usbip_client_urb_t *urbs = it_malloc(4 * sizeof *urbs);
    uint8_t *bufs = it_malloc(4 * 64 * 1024);
    REQUIRE(urbs && bufs);
    for (int i = 0; i < 4; i++) {
        urbs[i] = (usbip_client_urb_t){.ep = 1, .dir_in = true, .buffer = bufs + i * 65536,
                                       .length = i == 0 ? 8 : 65536};
        REQUIRE(it_submit(c[i], &urbs[i]));
    }
    char out[256], cmd[64];
    for (int i = 0; i < 4; i++) {
        snprintf(cmd, sizeof cmd, "unplug %s", busids[i]);
        REQUIRE(daemon_ctl_ok(d, cmd, out, sizeof out));
    }
    for (int i = 0; i < 4; i++) {
        CHECK(it_expect_closed(c[i], 2000, NULL));
    }
    it_dev_t devs[8];
    CHECK_EQ(it_devlist(d, devs, 8), 0);
    REQUIRE(daemon_ctl_ok(d, "list", out, sizeof out));
    CHECK_STR(out, "ok\n");
    REQUIRE(daemon_ctl_ok(d, "plug serial", out, sizeof out));
    char busid[32] = "";
    sscanf(out, "ok %31s", busid);
    usbip_client_t *s = it_import(d, busid, NULL);
    REQUIRE(s);
    CHECK(it_serial_echo_ok(s, 1000, 4));
}

static int control_connect(daemon_t *d)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t len = strlen(d->ctl_path);
    if (len >= sizeof a.sun_path) {
        return -1;
    }
    memcpy(a.sun_path, d->ctl_path, len + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Read until EOF (bounded); returns the text, "" on timeout. */
static void control_read_all(int fd, char *out, size_t len, int timeout_ms)
{
    size_t used = 0;
    out[0] = '\0';
    uint64_t deadline = it_now_ms() + (uint64_t)timeout_ms;
    while (it_now_ms() < deadline && used + 1 < len) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)(deadline - it_now_ms())) <= 0) {
            continue;
        }
        ssize_t n = read(fd, out + used, len - 1 - used);
        if (n <= 0) {
            return;
        }
        used += (size_t)n;
        out[used] = '\0';
    }
}

/* Control clients that are slow to send (or never do) must not hold up the
 * USB/IP sessions or other control clients; idle ones are dropped. */
static void control_socket_never_blocks(daemon_t *d)
{
    usbip_client_t *c = it_import(d, BUSID_ZERO, NULL);
    REQUIRE(c);
    int idle = control_connect(d);
    REQUIRE(idle >= 0);
    uint64_t idle_since = it_now_ms();
    it_sleep_ms(50);
    /* Transfers stay fast with an idle control client connected. */
    uint64_t worst = 0;
    for (int i = 0; i < 20; i++) {
        uint64_t t0 = it_now_ms();
        CHECK(it_zero_in_ok(c, 4096));
        uint64_t dt = it_now_ms() - t0;
        worst = dt > worst ? dt : worst;
    }
    printf("  worst transfer with an idle control client: %llu ms\n", (unsigned long long)worst);
    CHECK(worst < 300);
    /* Other control clients are served meanwhile. */
    char out[4096];
    uint64_t t0 = it_now_ms();
    CHECK(daemon_ctl_ok(d, "list", out, sizeof out));
    CHECK(it_now_ms() - t0 < 500);
    /* A command in pieces, ended by EOF instead of a newline. */
    int slow = control_connect(d);
    REQUIRE(slow >= 0);
    CHECK_EQ(write(slow, "sta", 3), 3);
    it_sleep_ms(100);
    CHECK(it_zero_in_ok(c, 4096));
    CHECK_EQ(write(slow, "tus 1-4", 7), 7);
    shutdown(slow, SHUT_WR);
    control_read_all(slow, out, sizeof out, 2000);
    close(slow);
    CHECK_STR(out, "ok config 1 alt 0, pattern errors 0\n");
    /* The idle one is closed after 5 s without a command. */
    int left = 5600 - (int)(it_now_ms() - idle_since);
    control_read_all(idle, out, sizeof out, left > 0 ? left : 1);
    char byte;
    errno = 0;
    ssize_t n = recv(idle, &byte, 1, MSG_DONTWAIT);
    CHECK(n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK));
    CHECK(it_now_ms() - idle_since >= 4500);
    close(idle);
    CHECK(it_zero_in_ok(c, 4096));
    CHECK(daemon_ctl_ok(d, "list", out, sizeof out));
}

int main(int argc, char **argv)
{
    it_init(argc, argv, 150);
    it_run("unplug_imported_device", unplug_imported_device, NULL);
    it_run("unplug_and_plug_idle", unplug_and_plug_idle, NULL);
    it_run("unplug_all_while_busy", unplug_all_while_busy, NULL);
    it_run("control_socket_never_blocks", control_socket_never_blocks, NULL);
    return it_finish();
}
