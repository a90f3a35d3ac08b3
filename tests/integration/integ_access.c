/* 12: access control: closed mode refuses 127.0.0.1 until the allowlist
 * holds it; a change closes live sessions it no longer allows; settings
 * given with --settings survive a restart. */
#include <string.h>

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

int main(int argc, char **argv)
{
    it_init(argc, argv, 150);
    it_run("closed_mode_allowlist_and_persistence", closed_mode_allowlist_and_persistence, NULL);
    it_run("memory_only_settings", memory_only_settings, NULL);
    return it_finish();
}
