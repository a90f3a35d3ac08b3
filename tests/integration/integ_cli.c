/* The daemon's command line: --help, invalid flags (exit 2 naming the flag),
 * start-up failures (exit 1 with the reason, no leak on the way out: the
 * binary runs under ASan), and the ctl client's own errors. */
#include <stdlib.h>
#include <string.h>

#include "integ_util.h"

static int run(const char *const *args, char *out, size_t outlen)
{
    const char *argv[32];
    size_t n = 0;
    argv[n++] = it_daemon_path();
    for (size_t i = 0; args[i] && n < 31; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    return it_exec(argv, out, outlen, 15000);
}

static void expect_exit(const char *const *args, int status, const char *needle, int line)
{
    char out[8192];
    int rc = run(args, out, sizeof out);
    if (rc != status || !strstr(out, needle) || strstr(out, "Sanitizer") ||
        strstr(out, "runtime error")) {
        it_fail(__FILE__, line, "%s ...: exit %d (want %d), output lacks \"%s\" or has a "
                "sanitizer report:\n%s", args[0], rc, status, needle, out);
    }
}

#define EXPECT_EXIT(status, needle, ...)                                       \
    do {                                                                       \
        const char *const args_[] = {__VA_ARGS__, NULL};                       \
        expect_exit(args_, status, needle, __LINE__);                          \
    } while (0)

static void help_and_invalid_flags(daemon_t *d)
{
    (void)d;
    EXPECT_EXIT(0, "--max-urb-size SIZE", "--help");
    EXPECT_EXIT(0, "ctl --control PATH", "-h");
    EXPECT_EXIT(2, "invalid value \"70000\" for --port", "--port", "70000");
    EXPECT_EXIT(2, "invalid value \"x\" for --port", "--port", "x");
    EXPECT_EXIT(2, "invalid value \"70000\" for --http", "--http", "70000");
    EXPECT_EXIT(2, "invalid value \"999.0.0.1\" for --http-listen", "--http-listen",
                "999.0.0.1");
    EXPECT_EXIT(2, "for --max-urbs", "--max-urbs", "0");
    EXPECT_EXIT(2, "for --max-urb-size", "--max-urb-size", "3G");
    EXPECT_EXIT(2, "for --max-bytes-in-flight", "--max-bytes-in-flight", "12Q");
    EXPECT_EXIT(2, "for --max-iso-packets", "--max-iso-packets", "1025");
    EXPECT_EXIT(2, "for --max-clients", "--max-clients", "0");
    EXPECT_EXIT(2, "for --access", "--access", "ajar");
    EXPECT_EXIT(2, "for --log-level", "--log-level", "loud");
    EXPECT_EXIT(2, "unexpected argument \"extra\"", "--port", "0", "extra");
    EXPECT_EXIT(2, "--help", "--frobnicate");
}

static void startup_failures(daemon_t *d)
{
    char port[16];
    snprintf(port, sizeof port, "%u", d->port);
    /* The runner's daemon holds this port. */
    EXPECT_EXIT(1, "Address already in use", "--listen", "127.0.0.1", "--port", port);
    EXPECT_EXIT(1, "cannot serve the dashboard on 127.0.0.1 port", "--listen", "127.0.0.1",
                "--port", "0", "--http", port);
    EXPECT_EXIT(1, "cannot resolve listen address \"999.1.1.1\"", "--listen", "999.1.1.1",
                "--port", "0");
    EXPECT_EXIT(1, "unknown kind \"mouse\"", "--listen", "127.0.0.1", "--port", "0", "--device",
                "mouse");
    EXPECT_EXIT(1, "multiple of 512", "--listen", "127.0.0.1", "--port", "0", "--device",
                "storage:size=1000");
    EXPECT_EXIT(1, "cannot create the device", "--listen", "127.0.0.1", "--port", "0",
                "--device", "storage:image=/nonexistent/disk.img");
    EXPECT_EXIT(1, "cannot create the device", "--listen", "127.0.0.1", "--port", "0",
                "--device", "keyboard:text=caf\xc3\xa9");
    EXPECT_EXIT(1, "invalid --allow", "--listen", "127.0.0.1", "--port", "0", "--allow",
                "300.1.2.3");
    /* A settings file that cannot be written, with settings to save. */
    EXPECT_EXIT(1, "cannot write settings file /nonexistent/dir/settings.conf", "--listen",
                "127.0.0.1", "--port", "0", "--access", "closed", "--settings",
                "/nonexistent/dir/settings.conf");
    /* A settings file with a bad value, and one that is not key=value. */
    char bad[256];
    snprintf(bad, sizeof bad, "%s/bad.conf", d->dir);
    FILE *f = fopen(bad, "w");
    REQUIRE(f);
    fputs("acl_mode=sideways\n", f);
    fclose(f);
    EXPECT_EXIT(1, "\"acl_mode\" = \"sideways\": expected \"open\" or \"closed\"", "--listen",
                "127.0.0.1", "--port", "0", "--settings", bad);
    f = fopen(bad, "w");
    REQUIRE(f);
    fputs("garbage line\n", f);
    fclose(f);
    EXPECT_EXIT(1, "bad.conf:1: expected key=value", "--listen", "127.0.0.1", "--port", "0",
                "--settings", bad);
    char long_path[200];
    memset(long_path, 'x', sizeof long_path - 1);
    long_path[0] = '/';
    long_path[sizeof long_path - 1] = '\0';
    EXPECT_EXIT(1, "too long", "--listen", "127.0.0.1", "--port", "0", "--control", long_path);
    /* The runner's daemon is unharmed. */
    it_dev_t devs[8];
    CHECK_EQ(it_devlist(d, devs, 8), 4);
}

static void ctl_client_errors(daemon_t *d)
{
    EXPECT_EXIT(2, "usage: usbip-server ctl", "ctl");
    EXPECT_EXIT(2, "usage: usbip-server ctl", "ctl", "--control", d->ctl_path);
    EXPECT_EXIT(1, "cannot connect to control socket", "ctl", "--control", "/nonexistent.sock",
                "list");
    EXPECT_EXIT(1, "error: unknown command \"bogus\"", "ctl", "--control", d->ctl_path, "bogus");
    EXPECT_EXIT(1, "error: plug needs a device spec", "ctl", "--control", d->ctl_path, "plug");
    EXPECT_EXIT(0, "1-4 zero 0525:a4a0 available", "ctl", "--control", d->ctl_path, "list");
}

static const char *s_client_tool;

/* The project's own usbip-client tool against the daemon. */
static void usbip_client_tool(daemon_t *d)
{
    if (!s_client_tool) {
        printf("  skipped: no usbip-client path given (argv[2])\n");
        return;
    }
    char port[16], out[8192];
    snprintf(port, sizeof port, "%u", d->port);
    const char *list[] = {s_client_tool, "--port", port, "list", NULL};
    CHECK_EQ(it_exec(list, out, sizeof out, 15000), 0);
    CHECK_CONTAINS(out, "1-4: 0525:a4a0  speed high (480 Mbit/s)");
    CHECK_CONTAINS(out, "interface 0: class 08/06/50 (mass storage)");
    CHECK_CONTAINS(out, "4 devices exported");
    const char *import[] = {s_client_tool, "--port", port, "import", "1-2", NULL};
    CHECK_EQ(it_exec(import, out, sizeof out, 15000), 0);
    CHECK_CONTAINS(out, "idVendor 0x1209 idProduct 0x5502");
    /* Released when the tool exits. */
    CHECK(it_wait_listed(d, BUSID_SERIAL, true, 3000));
    const char *missing[] = {s_client_tool, "--port", port, "import", "9-9", NULL};
    CHECK_EQ(it_exec(missing, out, sizeof out, 15000), 1);
    CHECK_CONTAINS(out, "NODEV");
    const char *usage[] = {s_client_tool, "--port", "70000", "list", NULL};
    CHECK_EQ(it_exec(usage, out, sizeof out, 15000), 2);
}

int main(int argc, char **argv)
{
    it_init(argc, argv, 170);
    s_client_tool = argc > 2 ? argv[2] : NULL;
    it_run("help_and_invalid_flags", help_and_invalid_flags, NULL);
    it_run("startup_failures", startup_failures, NULL);
    it_run("ctl_client_errors", ctl_client_errors, NULL);
    it_run("usbip_client_tool", usbip_client_tool, NULL);
    return it_finish();
}
