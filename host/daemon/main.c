/*
 * usbip-server: the USB/IP server as a Linux/macOS userspace daemon, serving
 * built-in virtual devices. Same core as the ESP32-P4 firmware.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "device_set.h"
#include "file_store.h"
#include "options.h"
#include "server_loop.h"
#include "usbip_log.h"
#include "usbip_server.h"

static const char *TAG = "usbip-server";
static const char *const DEFAULT_DEVICES[] = {"keyboard", "serial", "storage", "zero"};

static server_loop_t *s_loop;

static void on_signal(int signo)
{
    (void)signo;
    if (s_loop) {
        server_loop_stop(s_loop);
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
    return monotonic_ms();
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
    if (server_loop_create(srv, s_devices, opts->listen_address, opts->port, control_fd,
                           &s_loop) != USBIP_OK) {
        goto out;
    }
    install_signal_handlers();
    print_banner(srv, s_devices, opts, server_loop_port(s_loop));
    server_loop_run(s_loop);
    USBIP_LOGI(TAG, "shut down cleanly");
    status = 0;
out:
    server_loop_destroy(s_loop);
    s_loop = NULL;
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
