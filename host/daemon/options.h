/*
 * options: the usbip-server command line, parsed into one struct with every
 * default in one place.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "usbip_session.h"

#define OPTIONS_MAX_DEVICES 16
#define OPTIONS_MAX_ALLOW 32

typedef struct {
    char spec[256]; /* "keyboard", "storage:size=16M", "keyboard:text=hi" ... */
} device_spec_t;

typedef struct {
    const char *listen_address; /* NULL: all addresses (IPv6 dual-stack, else IPv4) */
    uint16_t port;
    device_spec_t devices[OPTIONS_MAX_DEVICES];
    size_t device_count;
    bool no_devices;            /* --no-devices: start empty (hot-plug tests) */
    usbip_session_limits_t limits;
    size_t max_clients;
    const char *access_mode;    /* NULL: keep the stored setting */
    const char *allow;          /* comma list; NULL: keep the stored setting */
    const char *settings_path;  /* NULL: settings live in memory only */
    const char *control_path;   /* NULL: no control socket */
    bool http;                  /* --http given: serve the dashboard */
    uint16_t http_port;         /* 0: any free port (printed at start) */
    const char *http_address;   /* NULL: the --listen address, else 0.0.0.0 */
    int log_level;              /* usbip_log_level_t */
} options_t;

typedef enum { OPTIONS_RUN, OPTIONS_EXIT_OK, OPTIONS_EXIT_ERROR } options_result_t;

/* Parse argv; prints --help or the error naming the bad flag and value. */
options_result_t options_parse(int argc, char **argv, options_t *opts);
void options_print_help(const char *prog);

/* "64M", "1G", "4096", "512K" -> bytes. false on junk or overflow. */
bool options_parse_size(const char *text, uint64_t *out);
