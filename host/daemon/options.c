#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access_control.h"
#include "usbip_log.h"

enum {
    OPT_MAX_URBS = 256,
    OPT_MAX_BYTES,
    OPT_MAX_URB_SIZE,
    OPT_MAX_ISO,
    OPT_MAX_CLIENTS,
    OPT_ACCESS,
    OPT_ALLOW,
    OPT_SETTINGS,
    OPT_CONTROL,
    OPT_LOG_LEVEL,
    OPT_NO_DEVICES,
    OPT_HTTP,
    OPT_HTTP_LISTEN,
};

static const struct option long_options[] = {
    {"listen", required_argument, NULL, 'l'},
    {"port", required_argument, NULL, 'p'},
    {"device", required_argument, NULL, 'd'},
    {"no-devices", no_argument, NULL, OPT_NO_DEVICES},
    {"max-urbs", required_argument, NULL, OPT_MAX_URBS},
    {"max-bytes-in-flight", required_argument, NULL, OPT_MAX_BYTES},
    {"max-urb-size", required_argument, NULL, OPT_MAX_URB_SIZE},
    {"max-iso-packets", required_argument, NULL, OPT_MAX_ISO},
    {"max-clients", required_argument, NULL, OPT_MAX_CLIENTS},
    {"access", required_argument, NULL, OPT_ACCESS},
    {"allow", required_argument, NULL, OPT_ALLOW},
    {"settings", required_argument, NULL, OPT_SETTINGS},
    {"control", required_argument, NULL, OPT_CONTROL},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"http", required_argument, NULL, OPT_HTTP},
    {"http-listen", required_argument, NULL, OPT_HTTP_LISTEN},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

void options_print_help(const char *prog)
{
    printf(
        "Usage: %s [OPTIONS]\n"
        "       %s ctl --control PATH COMMAND [ARGS...]\n"
        "\n"
        "A USB/IP server: exports USB devices to USB/IP clients (Linux `usbip attach`,\n"
        "usbip-win2). This host build serves built-in virtual devices.\n"
        "\n"
        "Network:\n"
        "  -l, --listen ADDR          address to listen on (default: all addresses, IPv6\n"
        "                             dual-stack, else IPv4)\n"
        "  -p, --port PORT            TCP port (default 3240; 0 picks a free port, which\n"
        "                             the first line on stdout reports)\n"
        "\n"
        "Devices (bus 1, ports 1, 2, ... in the order given; default: all four):\n"
        "  -d, --device SPEC          add a virtual device; SPEC is KIND[:KEY=VALUE,...]\n"
        "                               keyboard[:delay=MS][,text=TEXT]\n"
        "                                                       HID boot keyboard typing TEXT\n"
        "                                                       MS after import (text last)\n"
        "                               serial                  CDC-ACM port echoing its input\n"
        "                               storage[:size=SIZE|:image=FILE]\n"
        "                                                       mass storage on a RAM disk\n"
        "                                                       (default 64M) or a disk image\n"
        "                               zero                    Gadget Zero source/sink/loopback\n"
        "      --no-devices           start with no device (add them with `ctl plug`)\n"
        "\n"
        "Limits per session:\n"
        "      --max-urbs N           URBs in flight (default 64)\n"
        "      --max-bytes-in-flight SIZE  payload admitted and not yet answered (default 16M)\n"
        "      --max-urb-size SIZE    largest URB (default 1M)\n"
        "      --max-iso-packets N    iso packets per URB (default 1024, at most 1024)\n"
        "      --max-clients N        connections at once (default 16)\n"
        "  At a limit a session stops reading its socket until replies drain.\n"
        "\n"
        "Access control (saved to the settings file when given):\n"
        "      --access open|closed   open: anyone; closed: only the allowlist\n"
        "      --allow LIST           allowlist: addresses and CIDR ranges, comma separated\n"
        "                             (e.g. 127.0.0.1,10.0.0.0/8,::1)\n"
        "      --settings FILE        persist settings in FILE (default: memory only)\n"
        "\n"
        "Dashboard (web page, JSON API, /metrics, WebSocket; docs/api.md):\n"
        "      --http PORT            serve it on PORT (0: any free port); off by default\n"
        "      --http-listen ADDR     IPv4 address for it (default: --listen, else 0.0.0.0)\n"
        "  Changes need an admin password: the page asks to set one on first use.\n"
        "\n"
        "Operation:\n"
        "      --control PATH         listen for control commands on a Unix socket\n"
        "      --log-level LEVEL      error, warn, info (default) or debug\n"
        "  -h, --help                 this help\n"
        "\n"
        "Control commands (`%s ctl --control PATH COMMAND`):\n"
        "  list                       devices with bus id, kind and state\n"
        "  plug SPEC                  add a virtual device (SPEC as for --device)\n"
        "  unplug BUSID               remove a device; an importing session is closed\n"
        "  status BUSID               the device's state (serial line coding, DTR/RTS, ...)\n"
        "  sessions                   connected clients with their counters\n"
        "  access open|closed         change the access mode (applies to live sessions)\n"
        "  allow LIST                 replace the allowlist (applies to live sessions)\n"
        "  events [AFTER_ID]          the event log\n"
        "\n"
        "SIGINT or SIGTERM shuts the server down cleanly.\n",
        prog, prog, prog);
}

bool options_parse_size(const char *text, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno || end == text || text[0] == '-') {
        return false;
    }
    uint64_t scale = 1;
    switch (*end) {
    case '\0': break;
    case 'K': case 'k': scale = 1024ull; end++; break;
    case 'M': case 'm': scale = 1024ull * 1024; end++; break;
    case 'G': case 'g': scale = 1024ull * 1024 * 1024; end++; break;
    default: return false;
    }
    if (*end != '\0' || value > UINT64_MAX / scale) {
        return false;
    }
    *out = value * scale;
    return true;
}

static bool parse_uint(const char *text, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno || end == text || *end != '\0' || text[0] == '-' || value > max) {
        return false;
    }
    *out = value;
    return true;
}

static options_result_t bad_value(const char *flag, const char *value, const char *expected)
{
    fprintf(stderr, "usbip-server: invalid value \"%s\" for %s: expected %s\n", value, flag,
            expected);
    return OPTIONS_EXIT_ERROR;
}

static void set_defaults(options_t *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->port = 3240;
    usbip_session_limits_default(&opts->limits);
    opts->max_clients = 16;
    opts->log_level = USBIP_LOG_INFO;
}

static options_result_t parse_one(int opt, const char *arg, options_t *opts)
{
    uint64_t value = 0;
    switch (opt) {
    case 'l': opts->listen_address = arg; break;
    case 'p':
        if (!parse_uint(arg, 65535, &value)) {
            return bad_value("--port", arg, "a port number 0..65535 (0: any free port)");
        }
        opts->port = (uint16_t)value;
        break;
    case 'd':
        if (opts->device_count == OPTIONS_MAX_DEVICES) {
            return bad_value("--device", arg, "at most 16 devices");
        }
        if (strlen(arg) >= sizeof opts->devices[0].spec) {
            return bad_value("--device", arg, "a spec shorter than 256 characters");
        }
        strcpy(opts->devices[opts->device_count++].spec, arg);
        break;
    case OPT_NO_DEVICES: opts->no_devices = true; break;
    case OPT_MAX_URBS:
        if (!parse_uint(arg, 4096, &value) || value == 0) {
            return bad_value("--max-urbs", arg, "a number 1..4096");
        }
        opts->limits.max_urbs = (uint32_t)value;
        break;
    case OPT_MAX_BYTES:
        if (!options_parse_size(arg, &value) || value == 0) {
            return bad_value("--max-bytes-in-flight", arg, "a size such as 16M");
        }
        opts->limits.max_bytes_in_flight = value;
        break;
    case OPT_MAX_URB_SIZE:
        if (!options_parse_size(arg, &value) || value == 0 || value > 0x7fffffff) {
            return bad_value("--max-urb-size", arg, "a size from 1 to 2G-1, such as 1M");
        }
        opts->limits.max_urb_size = (uint32_t)value;
        break;
    case OPT_MAX_ISO:
        if (!parse_uint(arg, USBIP_MAX_ISO_PACKETS, &value)) {
            return bad_value("--max-iso-packets", arg, "a number 0..1024");
        }
        opts->limits.max_iso_packets = (uint32_t)value;
        break;
    case OPT_MAX_CLIENTS:
        if (!parse_uint(arg, 1024, &value) || value == 0) {
            return bad_value("--max-clients", arg, "a number 1..1024");
        }
        opts->max_clients = (size_t)value;
        break;
    case OPT_ACCESS:
        if (strcmp(arg, "open") != 0 && strcmp(arg, "closed") != 0) {
            return bad_value("--access", arg, "open or closed");
        }
        opts->access_mode = arg;
        break;
    case OPT_ALLOW: opts->allow = arg; break;
    case OPT_SETTINGS: opts->settings_path = arg; break;
    case OPT_CONTROL: opts->control_path = arg; break;
    case OPT_HTTP:
        if (!parse_uint(arg, 65535, &value)) {
            return bad_value("--http", arg, "a port number 0..65535 (0: any free port)");
        }
        opts->http = true;
        opts->http_port = (uint16_t)value;
        break;
    case OPT_HTTP_LISTEN: {
        usbip_ip_addr_t addr;
        if (usbip_ip_addr_parse(arg, &addr) != USBIP_OK || addr.family != 4) {
            return bad_value("--http-listen", arg, "a numeric IPv4 address such as 127.0.0.1");
        }
        opts->http_address = arg;
        break;
    }
    case OPT_LOG_LEVEL: {
        int level = usbip_log_level_parse(arg);
        if (level < 0) {
            return bad_value("--log-level", arg, "error, warn, info or debug");
        }
        opts->log_level = level;
        break;
    }
    default: return OPTIONS_EXIT_ERROR;
    }
    return OPTIONS_RUN;
}

options_result_t options_parse(int argc, char **argv, options_t *opts)
{
    set_defaults(opts);
    optind = 1;
    for (;;) {
        int opt = getopt_long(argc, argv, "l:p:d:h", long_options, NULL);
        if (opt == -1) {
            break;
        }
        if (opt == 'h') {
            options_print_help(argv[0]);
            return OPTIONS_EXIT_OK;
        }
        if (opt == '?') {
            fprintf(stderr, "Try `%s --help'.\n", argv[0]);
            return OPTIONS_EXIT_ERROR;
        }
        if (parse_one(opt, optarg, opts) != OPTIONS_RUN) {
            return OPTIONS_EXIT_ERROR;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "usbip-server: unexpected argument \"%s\"; try --help\n", argv[optind]);
        return OPTIONS_EXIT_ERROR;
    }
    char errbuf[128];
    if (usbip_session_limits_check(&opts->limits, errbuf, sizeof errbuf) != USBIP_OK) {
        fprintf(stderr, "usbip-server: invalid limits: %s\n", errbuf);
        return OPTIONS_EXIT_ERROR;
    }
    return OPTIONS_RUN;
}
