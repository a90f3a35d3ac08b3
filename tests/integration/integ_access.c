/* 12: access control: closed mode refuses 127.0.0.1 until the allowlist
 * holds it; a change closes live sessions it no longer allows; settings
 * given with --settings survive a restart. */
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "integ_util.h"

/* A connection from 127.0.0.1 is accepted by TCP, then closed at once
 * without a byte; DEVLIST on it fails. */
static void expect_refused(daemon_t *d, int line)
{
    usbip_client_t *c = NULL;
    if (usbip_client_connect("127.0.0.1", d->port, 3000, &c) != USBIP_OK) {
        return; /* refused at connect: fine too */
    }
    size_t bytes = 99;
    bool closed = it_expect_closed(c, 2000, &bytes);
    if (!closed || bytes != 0) {
        it_fail(__FILE__, line, "connection not refused (closed %d, %zu bytes)", closed, bytes);
    }
    usbip_client_close(c);
    if (usbip_client_connect("127.0.0.1", d->port, 3000, &c) == USBIP_OK) {
        if (usbip_client_devlist(c, NULL, NULL, NULL) == USBIP_OK) {
            it_fail(__FILE__, line, "DEVLIST answered for a refused peer");
        }
        usbip_client_close(c);
    }
}

static void closed_mode_allowlist_and_persistence(daemon_t *d)
{
    char settings[256], out[8192];
    snprintf(settings, sizeof settings, "%s/settings.conf", d->dir);
    const char *closed_flags[] = {"--access", "closed", "--allow", "10.0.0.0/8",
                                  "--settings", settings, NULL};
    REQUIRE(daemon_restart_with(d, closed_flags));
    CHECK_CONTAINS(d->banner, "(access closed)");
    expect_refused(d, __LINE__);
    REQUIRE(daemon_ctl_ok(d, "events", out, sizeof out));
    CHECK_CONTAINS(out, "client_refused busid=- peer=127.0.0.1 connection refused by access control");

    /* Allow 127.0.0.1: DEVLIST, IMPORT and transfers work. */
    REQUIRE(daemon_ctl_ok(d, "allow 127.0.0.1", out, sizeof out));
    it_dev_t devs[8];
    CHECK_EQ(it_devlist(d, devs, 8), 4);
    usbip_client_t *zero = it_import(d, BUSID_ZERO, NULL);
    REQUIRE(zero);
    CHECK(it_zero_in_ok(zero, 65536));
    usbip_client_t *serial = it_import(d, BUSID_SERIAL, NULL);
    REQUIRE(serial);
    CHECK(it_serial_echo_ok(serial, 1000, 1));
    usbip_client_t *idle = it_connect(d); /* connected, no request yet */
    REQUIRE(idle);

    /* Replace the allowlist: every live session from 127.0.0.1 ends. */
    size_t mark = daemon_log_mark(d);
    uint64_t start = it_now_ms();
    REQUIRE(daemon_ctl_ok(d, "allow 10.0.0.1", out, sizeof out));
    CHECK(it_expect_closed(zero, 1000, NULL));
    CHECK(it_expect_closed(serial, 1000, NULL));
    CHECK(it_expect_closed(idle, 1000, NULL));
    CHECK(it_now_ms() - start <= 1500);
    CHECK(daemon_log_wait(d, mark, "closing connection: no longer allowed by access control",
                          2000));
    REQUIRE(daemon_ctl_ok(d, "events", out, sizeof out));
    CHECK_CONTAINS(out, "session closed: no longer allowed by access control");
    CHECK_CONTAINS(out, "access closed, allowlist [10.0.0.1]");
    expect_refused(d, __LINE__);
    /* Both devices were released. */
    REQUIRE(daemon_ctl_ok(d, "list", out, sizeof out));
    CHECK_CONTAINS(out, "1-2 serial 1209:5502 available");
    CHECK_CONTAINS(out, "1-4 zero 0525:a4a0 available");

    /* Invalid changes are refused and change nothing. */
    CHECK_EQ(daemon_ctl(d, "allow 300.1.2.3", out, sizeof out), 1);
    CHECK_CONTAINS(out, "error:");
    CHECK_EQ(daemon_ctl(d, "access ajar", out, sizeof out), 1);
    CHECK_CONTAINS(out, "error: access takes open or closed");

    /* Restart with only --settings: still closed, allowlist [10.0.0.1]. */
    const char *settings_only[] = {"--settings", settings, NULL};
    REQUIRE(daemon_restart_with(d, settings_only));
    CHECK_CONTAINS(d->banner, "(access closed)");
    expect_refused(d, __LINE__);
    /* A CIDR range that holds 127.0.0.1, with an IPv6 entry. */
    REQUIRE(daemon_ctl_ok(d, "allow 127.0.0.0/8,::1", out, sizeof out));
    CHECK_EQ(it_devlist(d, devs, 8), 4);
    REQUIRE(daemon_restart(d));
    CHECK_CONTAINS(d->banner, "(access closed)");
    CHECK_EQ(it_devlist(d, devs, 8), 4);

    /* Open mode lets everyone in, and is remembered too. */
    REQUIRE(daemon_ctl_ok(d, "allow 10.0.0.1", out, sizeof out));
    expect_refused(d, __LINE__);
    REQUIRE(daemon_ctl_ok(d, "access open", out, sizeof out));
    CHECK_EQ(it_devlist(d, devs, 8), 4);
    REQUIRE(daemon_restart(d));
    CHECK_CONTAINS(d->banner, "(access open)");
    zero = it_import(d, BUSID_ZERO, NULL);
    REQUIRE(zero);
    CHECK(it_zero_in_ok(zero, 4096));
    /* Closing with an allowlist that lacks us ends the session at once. */
    REQUIRE(daemon_ctl_ok(d, "access closed", out, sizeof out));
    CHECK(it_expect_closed(zero, 1000, NULL));
}

/* Without --settings nothing is written and a restart starts open. */
static void memory_only_settings(daemon_t *d)
{
    const char *closed_flags[] = {"--access", "closed", "--allow", "::1", NULL};
    REQUIRE(daemon_restart_with(d, closed_flags));
    CHECK_CONTAINS(d->banner, "(access closed)");
    expect_refused(d, __LINE__);
    REQUIRE(daemon_restart_with(d, NULL));
    CHECK_CONTAINS(d->banner, "(access open)");
    it_dev_t devs[8];
    CHECK_EQ(it_devlist(d, devs, 8), 4);
}

static bool ipv6_loopback_available(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0) {
        return false;
    }
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

/* DEVLIST from host: true if answered, false if the connection was refused. */
static bool devlist_from(daemon_t *d, const char *host, int line)
{
    usbip_client_t *c = NULL;
    if (usbip_client_connect(host, d->port, 3000, &c) != USBIP_OK) {
        it_fail(__FILE__, line, "connect to %s: %s", host, usbip_client_last_error(NULL));
        return false;
    }
    size_t n = 0;
    bool ok = usbip_client_devlist(c, NULL, NULL, &n) == USBIP_OK && n == 4;
    usbip_client_close(c);
    return ok;
}

/* Dual-stack listener: IPv4 peers arrive as ::ffff:a.b.c.d and must still
 * match IPv4 entries; ::1 matches only IPv6 entries. */
static void dual_stack_peers(daemon_t *d)
{
    if (!ipv6_loopback_available()) {
        printf("  skipped: no IPv6 loopback on this host\n");
        return;
    }
    const char *flags[] = {"--listen", "::", "--access", "closed", "--allow", "::1", NULL};
    REQUIRE(daemon_restart_with(d, flags));
    CHECK(devlist_from(d, "::1", __LINE__));
    CHECK(!devlist_from(d, "127.0.0.1", __LINE__));
    char out[4096];
    REQUIRE(daemon_ctl_ok(d, "allow 127.0.0.0/8", out, sizeof out));
    CHECK(devlist_from(d, "127.0.0.1", __LINE__));
    CHECK(!devlist_from(d, "::1", __LINE__));
    REQUIRE(daemon_ctl_ok(d, "events", out, sizeof out));
    CHECK_CONTAINS(out, "peer=::ffff:127.0.0.1 connected");
    CHECK_CONTAINS(out, "peer=::1 connection refused by access control");
    /* An imported session over IPv6 is closed when ::1 leaves the list. */
    REQUIRE(daemon_ctl_ok(d, "allow ::1", out, sizeof out));
    usbip_client_t *c = NULL;
    REQUIRE(usbip_client_connect("::1", d->port, 3000, &c) == USBIP_OK);
    CHECK(usbip_client_import(c, BUSID_ZERO, NULL, NULL) == USBIP_OK);
    REQUIRE(daemon_ctl_ok(d, "allow 127.0.0.1", out, sizeof out));
    CHECK(it_expect_closed(c, 1000, NULL));
    usbip_client_close(c);
}

/* --max-clients 2: a third connection is closed at once; a slot frees up
 * when a client leaves. */
static void max_clients(daemon_t *d)
{
    const char *flags[] = {"--max-clients", "2", NULL};
    REQUIRE(daemon_restart_with(d, flags));
    usbip_client_t *a = it_import(d, BUSID_ZERO, NULL);
    usbip_client_t *b = it_import(d, BUSID_SERIAL, NULL);
    REQUIRE(a && b);
    usbip_client_t *c = it_connect(d);
    REQUIRE(c);
    size_t bytes = 99;
    CHECK(it_expect_closed(c, 2000, &bytes));
    CHECK_EQ(bytes, 0);
    char out[4096];
    REQUIRE(daemon_ctl_ok(d, "events", out, sizeof out));
    CHECK_CONTAINS(out, "connection refused: 2 clients already connected");
    CHECK(it_zero_in_ok(a, 4096));
    it_close(b);
    /* The slot frees once the daemon has seen b go. */
    bool served = false;
    uint64_t deadline = it_now_ms() + 3000;
    while (!served && it_now_ms() < deadline) {
        usbip_client_t *e = it_connect(d);
        REQUIRE(e);
        served = usbip_client_devlist(e, NULL, NULL, NULL) == USBIP_OK;
        it_close(e);
        if (!served) {
            it_sleep_ms(20);
        }
    }
    CHECK(served);
}

int main(int argc, char **argv)
{
    it_init(argc, argv, 150);
    it_run("closed_mode_allowlist_and_persistence", closed_mode_allowlist_and_persistence, NULL);
    it_run("memory_only_settings", memory_only_settings, NULL);
    it_run("dual_stack_peers", dual_stack_peers, NULL);
    it_run("max_clients", max_clients, NULL);
    return it_finish();
}
