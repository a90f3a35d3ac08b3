/*
 * usbip-server: the USB/IP server as a Linux/macOS userspace daemon, serving
 * built-in virtual devices. Same core and same network loop (usbip_netloop)
 * as the ESP32-P4 firmware.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "control_server.h"
#include "dashboard.h"
#include "device_set.h"
#include "fd_util.h"
#include "file_store.h"
#include "options.h"
#include "usbip_log.h"
#include "usbip_netloop.h"
#include "usbip_server.h"

static const char *TAG = "usbip-server";
static const char *const DEFAULT_DEVICES[] = {"keyboard", "serial", "storage", "zero"};

/* Signal handlers reach the loop through these. */
static usbip_netloop_t *volatile s_loop;
static usbip_netloop_waker_t s_waker = {.read_fd = -1, .write_fd = -1};

static void on_signal(int signo)
{
    (void)signo;
    usbip_netloop_t *loop = s_loop;
    if (loop) {
        usbip_netloop_stop(loop);
    }
}

static void install_signal_handlers(void)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void log_to_stderr(void *ctx, usbip_log_level_t level, const char *tag,
                          const char *message)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "%02d:%02d:%02d.%03ld %-5s %s: %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
            ts.tv_nsec / 1000000, usbip_log_level_name(level), tag, message);
}

static uint64_t clock_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static device_set_t *s_devices;

static void on_device_freed(void *ctx, usbip_device_t *dev)
{
    (void)ctx;
    if (s_devices) {
        device_set_on_freed(s_devices, dev);
    }
}

/* Command-line --access/--allow override the stored settings (and are saved). */
static int apply_access_options(usbip_server_t *srv, const options_t *opts)
{
    if (!opts->access_mode && !opts->allow) {
        return 0;
    }
    usbip_settings_t settings = *usbip_server_settings(srv);
    char err[160];
    if (opts->access_mode) {
        usbip_access_mode_parse(opts->access_mode, &settings.acl.mode);
    }
    if (opts->allow && usbip_acl_set_list(&settings.acl, opts->allow, err, sizeof err) != USBIP_OK) {
        fprintf(stderr, "usbip-server: invalid --allow: %s\n", err);
        return -1;
    }
    if (usbip_server_apply_settings(srv, &settings) != USBIP_OK) {
        fprintf(stderr, "usbip-server: cannot save the settings to %s\n", opts->settings_path);
        return -1;
    }
    return 0;
}

static int plug_devices(device_set_t *devices, const options_t *opts)
{
    if (opts->no_devices) {
        return 0;
    }
    size_t count = opts->device_count ? opts->device_count : 4;
    for (size_t i = 0; i < count; i++) {
        const char *spec = opts->device_count ? opts->devices[i].spec : DEFAULT_DEVICES[i];
        char busid[32], err[256];
        if (device_set_plug(devices, spec, busid, err, sizeof err) != USBIP_OK) {
            fprintf(stderr, "usbip-server: %s\n", err);
            return -1;
        }
    }
    return 0;
}

static void print_banner(usbip_server_t *srv, device_set_t *devices, const options_t *opts,
                         uint16_t port)
{
    char list[2048];
    device_set_list(devices, list, sizeof list);
    const char *host = opts->listen_address ? opts->listen_address : "<this host>";
    const usbip_settings_t *settings = usbip_server_settings(srv);
    printf("usbip-server listening on %s port %u (access %s)\n", host, (unsigned)port,
           usbip_access_mode_name(settings->acl.mode));
    printf("Devices (bus id, kind, VID:PID, state):\n%s", list[0] ? list : "  (none)\n");
    printf("From a Linux client:\n"
           "  usbip --tcp-port %u list -r %s\n"
           "  sudo modprobe vhci-hcd && sudo usbip --tcp-port %u attach -r %s -b 1-1\n",
           (unsigned)port, host, (unsigned)port, host);
    if (opts->control_path) {
        printf("Control: %s ctl --control %s list\n", "usbip-server", opts->control_path);
    }
    printf("Stop with Ctrl-C.\n");
    fflush(stdout);
}

/* The waker is a pipe: completions never come from another thread here, but
 * the signal handler rings it to stop the loop. */
static int open_waker(void)
{
    int fds[2];
    if (pipe(fds) < 0) {
        fprintf(stderr, "usbip-server: pipe: %s\n", strerror(errno));
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        fd_set_nonblocking(fd_set_cloexec(fds[i]));
    }
    usbip_netloop_waker_init(&s_waker, fds[0], fds[1]);
    return 0;
}

static void close_waker(void)
{
    if (s_waker.read_fd >= 0) {
        close(s_waker.read_fd);
        close(s_waker.write_fd);
    }
    s_waker.read_fd = s_waker.write_fd = -1;
}

static dashboard_t *s_dashboard;
static int s_dashboard_timeout_ms = -1;

/* The loop's device hook: virtual devices, then the dashboard (queued API
 * requests, bandwidth sampling, WebSocket updates). */
static void poll_devices(void *ctx, uint64_t now_ms)
{
    device_set_poll(ctx, now_ms);
    if (s_dashboard) {
        s_dashboard_timeout_ms = dashboard_poll(s_dashboard, now_ms);
    }
}

static int devices_next_timeout_ms(void *ctx, uint64_t now_ms)
{
    int devices = device_set_next_timeout_ms(ctx, now_ms);
    if (!s_dashboard || s_dashboard_timeout_ms < 0) {
        return devices;
    }
    return devices < 0 || s_dashboard_timeout_ms < devices ? s_dashboard_timeout_ms : devices;
}

static int start_dashboard(usbip_server_t *srv, const options_t *opts)
{
    if (!opts->http) {
        return 0;
    }
    const char *address = opts->http_address ? opts->http_address
                          : opts->listen_address && !strchr(opts->listen_address, ':')
                              ? opts->listen_address
                              : "0.0.0.0";
    s_dashboard = dashboard_start(srv, address, opts->http_port, usbip_netloop_port(s_loop),
                                  &s_waker);
    if (!s_dashboard) {
        fprintf(stderr, "usbip-server: cannot serve the dashboard on %s port %u\n", address,
                (unsigned)opts->http_port);
        return -1;
    }
    printf("Dashboard: http://%s:%u/\n", strcmp(address, "0.0.0.0") ? address : "127.0.0.1",
           (unsigned)dashboard_port(s_dashboard));
    return 0;
}

static usbip_err_t create_loop(usbip_server_t *srv, const options_t *opts,
                               control_server_t *control)
{
    usbip_netloop_config_t cfg;
    usbip_netloop_config_default(&cfg);
    cfg.server = srv;
    cfg.waker = &s_waker;
    cfg.listen_address = opts->listen_address;
    cfg.port = opts->port;
    cfg.listen_backlog = 16;
    cfg.poll_devices = poll_devices;
    cfg.next_timeout_ms = devices_next_timeout_ms;
    cfg.device_ctx = s_devices;
    if (control) {
        cfg.extra = (usbip_netloop_extra_t){.fill = control_server_fill,
                                            .ready = control_server_ready,
                                            .ctx = control,
                                            .max_fds = CONTROL_SERVER_MAX_FDS};
    }
    usbip_netloop_t *loop = NULL;
    usbip_err_t err = usbip_netloop_create(&cfg, &loop);
    s_loop = loop;
    return err;
}

static int run(const options_t *opts)
{
    usbip_file_store_t *file_store = NULL;
    usbip_store_t store;
    if (opts->settings_path &&
        usbip_file_store_open(opts->settings_path, &file_store, &store) != USBIP_OK) {
        fprintf(stderr, "usbip-server: cannot use settings file %s (see the log above)\n",
                opts->settings_path);
        return 1;
    }
    /* Write it once now, so an unwritable place fails at start, not at the first change. */
    if (file_store && store.ops->commit(store.ctx) != USBIP_OK) {
        fprintf(stderr, "usbip-server: cannot write settings file %s (see the log above)\n",
                opts->settings_path);
        usbip_file_store_close(file_store);
        return 1;
    }
    usbip_server_config_t cfg;
    usbip_server_config_default(&cfg);
    cfg.limits = opts->limits;
    cfg.max_clients = opts->max_clients;
    cfg.store = file_store ? &store : NULL;
    cfg.device_freed = on_device_freed;
    char err[256] = "";
    usbip_server_t *srv = NULL;
    control_server_t *control = NULL;
    int status = 1;
    int control_fd = -1;
    if (usbip_server_create(&cfg, &srv, err, sizeof err) != USBIP_OK) {
        fprintf(stderr, "usbip-server: %s\n", err[0] ? err : "cannot start the server");
        goto out;
    }
    if (apply_access_options(srv, opts) != 0 || device_set_create(srv, &s_devices) != USBIP_OK ||
        plug_devices(s_devices, opts) != 0) {
        goto out;
    }
    if (opts->control_path && (control_fd = control_listen(opts->control_path)) < 0) {
        goto out;
    }
    if (control_fd >= 0 && !(control = control_server_create(control_fd, srv, s_devices))) {
        goto out;
    }
    if (open_waker() != 0 || create_loop(srv, opts, control) != USBIP_OK) {
        goto out;
    }
    if (start_dashboard(srv, opts) != 0) {
        goto out;
    }
    install_signal_handlers();
    print_banner(srv, s_devices, opts, usbip_netloop_port(s_loop));
    usbip_netloop_run(s_loop);
    if (usbip_netloop_stopping(s_loop)) {
        USBIP_LOGI(TAG, "shut down cleanly");
        status = 0;
    }
out:
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    dashboard_stop(s_dashboard); /* after the loop: its workers wait on the loop */
    s_dashboard = NULL;
    usbip_netloop_destroy(s_loop);
    s_loop = NULL;
    close_waker();
    control_server_destroy(control);
    device_set_destroy(s_devices);
    s_devices = NULL;
    usbip_server_destroy(srv);
    if (control_fd >= 0) {
        close(control_fd);
        unlink(opts->control_path);
    }
    usbip_file_store_close(file_store);
    return status;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "ctl") == 0) {
        return control_client_main(argc - 1, argv + 1);
    }
    options_t opts;
    switch (options_parse(argc, argv, &opts)) {
    case OPTIONS_EXIT_OK: return 0;
    case OPTIONS_EXIT_ERROR: return 2;
    case OPTIONS_RUN: break;
    }
    usbip_log_set_sink(log_to_stderr, NULL);
    usbip_log_set_level((usbip_log_level_t)opts.log_level);
    usbip_clock_set(clock_ms, NULL);
    return run(&opts);
}
