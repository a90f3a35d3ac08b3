/*
 * usbip-client: command-line front end of libusbip_client. Lists the devices
 * a USB/IP server exports, or imports one and reads its device descriptor,
 * to check a server by hand without the Linux vhci driver.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "usbip_client.h"

#define EXIT_USAGE 2

typedef struct {
    const char *host;
    uint16_t port;
    int timeout_ms;
    const char *command;
    const char *busid;
    long endpoint;  /* read: bulk IN endpoint number */
    long seconds;   /* read: how long */
} options_t;

static void print_usage(FILE *out)
{
    fprintf(out,
            "Usage: usbip-client [OPTIONS] COMMAND\n"
            "\n"
            "Talk to a USB/IP server (TCP) without the kernel driver.\n"
            "\n"
            "Commands:\n"
            "  list           list the exported devices: busid, VID:PID, speed, device\n"
            "                 class and the class of each interface (the protocol carries\n"
            "                 ids only, no product strings)\n"
            "  import BUSID   import the device BUSID, print its device record, then read\n"
            "                 its device descriptor with a control GET_DESCRIPTOR and print\n"
            "                 it; the device is released when the tool exits\n"
            "  read BUSID     import BUSID and read its bulk IN endpoint (--endpoint, default\n"
            "                 1) for --seconds (default 10) with 4 URBs of 16 KiB in flight,\n"
            "                 printing the rate each second (a Gadget Zero source, a quick\n"
            "                 throughput check)\n"
            "\n"
            "Options:\n"
            "  --host H       server name or IPv4/IPv6 address (default 127.0.0.1)\n"
            "  --port P       server TCP port (default %u)\n"
            "  --timeout MS   limit for connecting and for each reply, in ms (default %d)\n"
            "  --endpoint N   read: the bulk IN endpoint number 1..15 (default 1)\n"
            "  --seconds S    read: duration 1..3600 (default 10)\n"
            "  -h, --help     show this help\n"
            "\n"
            "Exit status: 0 on success, 1 if talking to the server failed (the message\n"
            "names what failed), 2 on a usage error.\n",
            USBIP_CLIENT_DEFAULT_PORT, USBIP_CLIENT_DEFAULT_TIMEOUT_MS);
}

static bool parse_number(const char *text, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min || value > max) {
        return false;
    }
    *out = value;
    return true;
}

/* Returns -1 to go on, otherwise the exit status. */
static int parse_options(int argc, char **argv, options_t *opt)
{
    *opt = (options_t){.host = "127.0.0.1", .port = USBIP_CLIENT_DEFAULT_PORT,
                       .timeout_ms = USBIP_CLIENT_DEFAULT_TIMEOUT_MS, .endpoint = 1,
                       .seconds = 10};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *arg = argv[i];
        long value = 0;
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            print_usage(stdout);
            return EXIT_SUCCESS;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "usbip-client: option %s needs a value (see --help)\n", arg);
            return EXIT_USAGE;
        }
        const char *val = argv[++i];
        if (strcmp(arg, "--host") == 0) {
            opt->host = val;
        } else if (strcmp(arg, "--port") == 0) {
            if (!parse_number(val, 1, 65535, &value)) {
                fprintf(stderr, "usbip-client: --port '%s' is not a port number 1..65535\n", val);
                return EXIT_USAGE;
            }
            opt->port = (uint16_t)value;
        } else if (strcmp(arg, "--timeout") == 0) {
            if (!parse_number(val, 1, 3600000, &value)) {
                fprintf(stderr, "usbip-client: --timeout '%s' is not a number of ms 1..3600000\n",
                        val);
                return EXIT_USAGE;
            }
            opt->timeout_ms = (int)value;
        } else if (strcmp(arg, "--endpoint") == 0) {
            if (!parse_number(val, 1, 15, &opt->endpoint)) {
                fprintf(stderr, "usbip-client: --endpoint '%s' is not an endpoint 1..15\n", val);
                return EXIT_USAGE;
            }
        } else if (strcmp(arg, "--seconds") == 0) {
            if (!parse_number(val, 1, 3600, &opt->seconds)) {
                fprintf(stderr, "usbip-client: --seconds '%s' is not a number 1..3600\n", val);
                return EXIT_USAGE;
            }
        } else {
            fprintf(stderr, "usbip-client: unknown option '%s' (see --help)\n", arg);
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "usbip-client: missing command: list or import BUSID (see --help)\n");
        return EXIT_USAGE;
    }
    opt->command = argv[i++];
    if (strcmp(opt->command, "import") == 0 || strcmp(opt->command, "read") == 0) {
        if (i >= argc) {
            fprintf(stderr, "usbip-client: %s needs a BUSID, e.g. '%s 1-1'\n", opt->command,
                    opt->command);
            return EXIT_USAGE;
        }
        opt->busid = argv[i++];
    } else if (strcmp(opt->command, "list") != 0) {
        fprintf(stderr, "usbip-client: unknown command '%s' (see --help)\n", opt->command);
        return EXIT_USAGE;
    }
    if (i < argc) {
        fprintf(stderr, "usbip-client: unexpected argument '%s'\n", argv[i]);
        return EXIT_USAGE;
    }
    return -1;
}

static const char *speed_name(uint32_t speed)
{
    switch (speed) {
    case USBIP_SPEED_LOW: return "low (1.5 Mbit/s)";
    case USBIP_SPEED_FULL: return "full (12 Mbit/s)";
    case USBIP_SPEED_HIGH: return "high (480 Mbit/s)";
    case USBIP_SPEED_WIRELESS: return "wireless";
    case USBIP_SPEED_SUPER: return "super (5 Gbit/s)";
    case USBIP_SPEED_SUPER_PLUS: return "super+ (10 Gbit/s)";
    default: return "unknown";
    }
}

static const char *class_name(uint8_t cls)
{
    switch (cls) {
    case 0x00: return "per interface";
    case 0x01: return "audio";
    case 0x02: return "communications";
    case 0x03: return "HID";
    case 0x05: return "physical";
    case 0x06: return "image";
    case 0x07: return "printer";
    case 0x08: return "mass storage";
    case 0x09: return "hub";
    case 0x0a: return "CDC data";
    case 0x0b: return "smart card";
    case 0x0e: return "video";
    case 0x0f: return "personal healthcare";
    case 0xdc: return "diagnostic";
    case 0xe0: return "wireless controller";
    case 0xef: return "miscellaneous";
    case 0xfe: return "application specific";
    case 0xff: return "vendor specific";
    default: return "other";
    }
}

static void print_device_record(const usbip_device_record_t *dev)
{
    printf("%s: %04x:%04x  speed %s\n", dev->busid, dev->idVendor, dev->idProduct,
           speed_name(dev->speed));
    printf("    path %s\n", dev->path);
    printf("    busnum %" PRIu32 " devnum %" PRIu32 "  bcdDevice %x.%02x\n", dev->busnum,
           dev->devnum, dev->bcdDevice >> 8, dev->bcdDevice & 0xff);
    printf("    class %02x/%02x/%02x (%s)  configuration %u of %u  interfaces %u\n",
           dev->bDeviceClass, dev->bDeviceSubClass, dev->bDeviceProtocol,
           class_name(dev->bDeviceClass), dev->bConfigurationValue, dev->bNumConfigurations,
           dev->bNumInterfaces);
}

static void print_listed_device(void *arg, const usbip_device_record_t *dev,
                                const usbip_interface_record_t *intfs, size_t nintf)
{
    (void)arg;
    print_device_record(dev);
    for (size_t i = 0; i < nintf; i++) {
        printf("    interface %zu: class %02x/%02x/%02x (%s)\n", i, intfs[i].bInterfaceClass,
               intfs[i].bInterfaceSubClass, intfs[i].bInterfaceProtocol,
               class_name(intfs[i].bInterfaceClass));
    }
}

static int report_failure(usbip_client_t *c, const char *what, usbip_err_t err)
{
    fprintf(stderr, "usbip-client: %s failed (%s): %s\n", what, usbip_err_name(err),
            usbip_client_last_error(c));
    return EXIT_FAILURE;
}

static int run_list(usbip_client_t *c)
{
    size_t ndev = 0;
    usbip_err_t err = usbip_client_devlist(c, print_listed_device, NULL, &ndev);
    if (err != USBIP_OK) {
        return report_failure(c, "DEVLIST", err);
    }
    printf("%zu device%s exported\n", ndev, ndev == 1 ? "" : "s");
    return EXIT_SUCCESS;
}

static uint16_t le16_at(const uint8_t *b) { return (uint16_t)(b[0] | b[1] << 8); }

static void print_device_descriptor(const uint8_t *d, uint32_t len)
{
    printf("Device descriptor (%" PRIu32 " bytes):\n", len);
    if (len < 18 || d[0] < 18 || d[1] != 0x01) {
        printf("    malformed: bLength %u bDescriptorType 0x%02x\n", len ? d[0] : 0u,
               len > 1 ? d[1] : 0u);
        return;
    }
    printf("    bcdUSB %x.%02x  class %02x/%02x/%02x (%s)  bMaxPacketSize0 %u\n", d[3], d[2],
           d[4], d[5], d[6], class_name(d[4]), d[7]);
    printf("    idVendor 0x%04x idProduct 0x%04x bcdDevice %x.%02x\n", le16_at(d + 8),
           le16_at(d + 10), d[13], d[12]);
    printf("    iManufacturer %u iProduct %u iSerialNumber %u  bNumConfigurations %u\n", d[14],
           d[15], d[16], d[17]);
}

static int run_import(usbip_client_t *c, const char *busid)
{
    usbip_device_record_t dev;
    uint32_t op_status = 0;
    usbip_err_t err = usbip_client_import(c, busid, &dev, &op_status);
    if (err != USBIP_OK) {
        return report_failure(c, "IMPORT", err);
    }
    printf("Imported (devid 0x%08" PRIx32 "):\n", usbip_client_devid(c));
    print_device_record(&dev);

    uint8_t descriptor[18];
    int32_t status = 0;
    uint32_t actual = 0;
    /* GET_DESCRIPTOR(DEVICE): IN, standard, to device. */
    err = usbip_client_control(c, 0x80, 0x06, 0x0100, 0, descriptor, sizeof descriptor, &status,
                               &actual);
    if (err != USBIP_OK) {
        return report_failure(c, "GET_DESCRIPTOR(DEVICE)", err);
    }
    if (status != 0) {
        fprintf(stderr, "usbip-client: GET_DESCRIPTOR(DEVICE) failed: URB status %" PRId32 "%s\n",
                status, status == USBIP_EPIPE ? " (EPIPE: stalled)" : "");
        return EXIT_FAILURE;
    }
    print_device_descriptor(descriptor, actual);
    return EXIT_SUCCESS;
}

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Keep READ_URBS bulk IN URBs in flight until the time is up. */
static int run_read(usbip_client_t *c, const options_t *opt)
{
    enum { READ_URBS = 4, READ_SIZE = 16384 };
    usbip_err_t err = usbip_client_import(c, opt->busid, NULL, NULL);
    if (err != USBIP_OK) {
        return report_failure(c, "IMPORT", err);
    }
    static uint8_t buffers[READ_URBS][READ_SIZE];
    usbip_client_urb_t urbs[READ_URBS];
    for (int i = 0; i < READ_URBS; i++) {
        urbs[i] = (usbip_client_urb_t){.ep = (uint8_t)opt->endpoint, .dir_in = true,
                                       .buffer = buffers[i], .length = READ_SIZE};
        if ((err = usbip_client_submit(c, &urbs[i])) != USBIP_OK) {
            return report_failure(c, "CMD_SUBMIT", err);
        }
    }
    const uint64_t start = monotonic_ms(), end = start + (uint64_t)opt->seconds * 1000u;
    uint64_t total = 0, second_bytes = 0, next_report = start + 1000;
    for (;;) {
        usbip_client_urb_t *done = NULL;
        if ((err = usbip_client_wait(c, &done, NULL, NULL)) != USBIP_OK || !done) {
            return report_failure(c, "waiting for RET_SUBMIT", err);
        }
        if (done->status != 0) {
            fprintf(stderr, "usbip-client: bulk IN ep %ld failed: URB status %" PRId32 "\n",
                    opt->endpoint, done->status);
            return EXIT_FAILURE;
        }
        total += done->actual_length;
        second_bytes += done->actual_length;
        const uint64_t now = monotonic_ms();
        if (now >= next_report) {
            printf("%6.1f s  %8.2f MB/s\n", (double)(now - start) / 1000.0,
                   (double)second_bytes / 1e6 / ((double)(now - next_report + 1000) / 1000.0));
            fflush(stdout);
            second_bytes = 0;
            next_report = now + 1000;
        }
        if (now >= end) {
            break;
        }
        if ((err = usbip_client_submit(c, done)) != USBIP_OK) {
            return report_failure(c, "CMD_SUBMIT", err);
        }
    }
    const double secs = (double)(monotonic_ms() - start) / 1000.0;
    printf("read %" PRIu64 " bytes in %.1f s: %.2f MB/s\n", total, secs,
           (double)total / 1e6 / secs);
    return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
    options_t opt;
    int exit_status = parse_options(argc, argv, &opt);
    if (exit_status >= 0) {
        return exit_status;
    }

    usbip_client_t *c = NULL;
    usbip_err_t err = usbip_client_connect(opt.host, opt.port, opt.timeout_ms, &c);
    if (err != USBIP_OK) {
        return report_failure(NULL, "connect", err);
    }
    usbip_client_set_timeout(c, opt.timeout_ms);
    if (strcmp(opt.command, "list") == 0) {
        exit_status = run_list(c);
    } else if (strcmp(opt.command, "read") == 0) {
        exit_status = run_read(c, &opt);
    } else {
        exit_status = run_import(c, opt.busid);
    }
    usbip_client_close(c);
    return exit_status;
}
