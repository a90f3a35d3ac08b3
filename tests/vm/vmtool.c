/*
 * vmtool: small checks run inside the test VM against devices the kernel's
 * USB/IP client (vhci-hcd) attached. Built static on the host and copied
 * into the guest's initramfs.
 *
 *   vmtool zero DEVNODE         Gadget Zero through usbfs: vendor control
 *                               requests, bulk, interrupt and iso (alt 1) in
 *                               both directions with checked data, then the
 *                               loopback configuration
 *   vmtool flood DEVNODE        keep 16 bulk IN URBs in flight on Gadget Zero
 *                               until killed (to kill a client mid-transfer)
 *   vmtool keys NAME SECONDS    print the text typed by the input device NAME
 *                               (ends 2 s after the last key, or at SECONDS)
 *   vmtool modem TTY DTR RTS    set the tty's DTR and RTS lines (0 or 1)
 *   vmtool echo TTY BYTES       write BYTES bytes to the tty, read them back
 *
 * Each prints what it checked and exits 0 only if every check passed.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/input.h>
#include <linux/usbdevice_fs.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define ZERO_BULK_MPS 512
#define ZERO_INTR_MPS 64
#define ZERO_ISO_MPS 1024
#define TIMEOUT_MS 5000

static int failures;

#define EXPECT(cond, ...)                                   \
    do {                                                    \
        if (!(cond)) {                                      \
            fprintf(stderr, "vmtool: FAILED: " __VA_ARGS__); \
            fprintf(stderr, "\n");                          \
            failures++;                                     \
        }                                                   \
    } while (0)

/* Linux usbtest / f_sourcesink "mod63" pattern, restarting at each packet. */
static uint8_t pattern_byte(size_t i, size_t mps) { return (uint8_t)((i % mps) % 63); }

static void fill_pattern(uint8_t *buf, size_t len, size_t mps)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = pattern_byte(i, mps);
    }
}

static size_t pattern_mismatch(const uint8_t *buf, size_t len, size_t mps)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != pattern_byte(i, mps)) {
            return i;
        }
    }
    return len;
}

/* ---- usbfs ---- */

static int control(int fd, uint8_t type, uint8_t request, uint16_t value, uint16_t index,
                   void *data, uint16_t length)
{
    struct usbdevfs_ctrltransfer ct = {
        .bRequestType = type, .bRequest = request, .wValue = value, .wIndex = index,
        .wLength = length, .timeout = TIMEOUT_MS, .data = data,
    };
    return ioctl(fd, USBDEVFS_CONTROL, &ct);
}

static int bulk(int fd, unsigned ep, void *data, unsigned len)
{
    struct usbdevfs_bulktransfer bt = {.ep = ep, .len = len, .timeout = TIMEOUT_MS, .data = data};
    return ioctl(fd, USBDEVFS_BULK, &bt);
}

static void check_vendor_requests(int fd)
{
    uint8_t out[256], in[256] = {0};
    for (size_t i = 0; i < sizeof out; i++) {
        out[i] = (uint8_t)(i * 7 + 3);
    }
    int w = control(fd, 0x40, 0x5b, 0, 0, out, sizeof out);
    int r = control(fd, 0xc0, 0x5c, 0, 0, in, sizeof in);
    EXPECT(w == (int)sizeof out && r == (int)sizeof in && memcmp(in, out, sizeof in) == 0,
           "vendor 0x5b/0x5c round trip (write %d, read %d: %s)", w, r, strerror(errno));
    printf("zero: vendor requests 0x5b/0x5c: %d bytes round trip\n", r);
}

/* Bulk or interrupt: several transfers each way with the pattern checked. */
static void check_stream(int fd, const char *kind, unsigned ep_in, unsigned ep_out, size_t mps,
                         size_t chunk, int count)
{
    uint8_t *buf = malloc(chunk);
    size_t bytes_in = 0, bytes_out = 0;
    for (int i = 0; i < count; i++) {
        fill_pattern(buf, chunk, mps);
        int n = bulk(fd, ep_out, buf, (unsigned)chunk);
        EXPECT(n == (int)chunk, "%s OUT 0x%02x: %d of %zu bytes (%s)", kind, ep_out, n, chunk,
               strerror(errno));
        bytes_out += n > 0 ? (size_t)n : 0;
        memset(buf, 0xff, chunk);
        n = bulk(fd, ep_in, buf, (unsigned)chunk);
        EXPECT(n == (int)chunk, "%s IN 0x%02x: %d of %zu bytes (%s)", kind, ep_in, n, chunk,
               strerror(errno));
        if (n > 0) {
            size_t bad = pattern_mismatch(buf, (size_t)n, mps);
            EXPECT(bad == (size_t)n, "%s IN 0x%02x: pattern differs at byte %zu", kind, ep_in, bad);
            bytes_in += (size_t)n;
        }
    }
    /* A wrong pattern must be refused by the sink with a stall. */
    memset(buf, 0x55, chunk);
    int n = bulk(fd, ep_out, buf, (unsigned)chunk);
    EXPECT(n < 0 && errno == EPIPE, "%s OUT with a wrong pattern: %d (%s), want EPIPE", kind, n,
           strerror(errno));
    unsigned ep = ep_out;
    EXPECT(ioctl(fd, USBDEVFS_CLEAR_HALT, &ep) == 0, "%s CLEAR_HALT 0x%02x: %s", kind, ep_out,
           strerror(errno));
    free(buf);
    printf("zero: %s: %zu bytes OUT, %zu bytes IN, pattern checked; bad data stalled\n", kind,
           bytes_out, bytes_in);
}

static struct usbdevfs_urb *iso_urb(unsigned ep, int packets, size_t packet_len)
{
    struct usbdevfs_urb *urb =
        calloc(1, sizeof *urb + (size_t)packets * sizeof(struct usbdevfs_iso_packet_desc));
    urb->type = USBDEVFS_URB_TYPE_ISO;
    urb->endpoint = (unsigned char)ep;
    urb->flags = USBDEVFS_URB_ISO_ASAP;
    urb->buffer_length = (int)(packets * packet_len);
    urb->buffer = calloc(1, (size_t)urb->buffer_length);
    urb->number_of_packets = packets;
    for (int i = 0; i < packets; i++) {
        urb->iso_frame_desc[i].length = (unsigned)packet_len;
    }
    return urb;
}

static struct usbdevfs_urb *submit_and_reap(int fd, struct usbdevfs_urb *urb)
{
    if (ioctl(fd, USBDEVFS_SUBMITURB, urb) < 0) {
        EXPECT(false, "iso submit to 0x%02x: %s", urb->endpoint, strerror(errno));
        return NULL;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    if (poll(&pfd, 1, TIMEOUT_MS) <= 0) {
        EXPECT(false, "iso URB on 0x%02x did not complete in %d ms", urb->endpoint, TIMEOUT_MS);
        ioctl(fd, USBDEVFS_DISCARDURB, urb);
    }
    void *done = NULL;
    if (ioctl(fd, USBDEVFS_REAPURB, &done) < 0 || done != urb) {
        EXPECT(false, "iso reap on 0x%02x: %s", urb->endpoint, strerror(errno));
        return NULL;
    }
    return urb;
}

static void check_iso(int fd)
{
    struct usbdevfs_setinterface alt1 = {.interface = 0, .altsetting = 1};
    EXPECT(ioctl(fd, USBDEVFS_SETINTERFACE, &alt1) == 0, "SET_INTERFACE alt 1: %s",
           strerror(errno));
    const int packets = 8;
    size_t in_bytes = 0;
    for (int round = 0; round < 4; round++) {
        struct usbdevfs_urb *urb = iso_urb(0x83, packets, ZERO_ISO_MPS);
        if (submit_and_reap(fd, urb)) {
            EXPECT(urb->status == 0 && urb->error_count == 0, "iso IN: status %d, errors %d",
                   urb->status, urb->error_count);
            uint8_t *p = urb->buffer;
            for (int i = 0; i < packets; i++) {
                struct usbdevfs_iso_packet_desc *d = &urb->iso_frame_desc[i];
                EXPECT(d->status == 0 && d->actual_length == ZERO_ISO_MPS,
                       "iso IN packet %d: status %d, %u bytes", i, d->status, d->actual_length);
                size_t bad = pattern_mismatch(p, d->actual_length, ZERO_ISO_MPS);
                EXPECT(bad == d->actual_length, "iso IN packet %d: pattern differs at %zu", i, bad);
                in_bytes += d->actual_length;
                p += ZERO_ISO_MPS;
            }
        }
        free(urb->buffer);
        free(urb);
    }
    size_t out_bytes = 0;
    for (int round = 0; round < 4; round++) {
        struct usbdevfs_urb *urb = iso_urb(0x03, packets, ZERO_ISO_MPS);
        for (int i = 0; i < packets; i++) {
            fill_pattern((uint8_t *)urb->buffer + i * ZERO_ISO_MPS, ZERO_ISO_MPS, ZERO_ISO_MPS);
        }
        if (submit_and_reap(fd, urb)) {
            EXPECT(urb->status == 0 && urb->error_count == 0, "iso OUT: status %d, errors %d",
                   urb->status, urb->error_count);
            out_bytes += (size_t)urb->actual_length;
        }
        free(urb->buffer);
        free(urb);
    }
    printf("zero: iso alt 1: %zu bytes IN (pattern checked per packet), %zu bytes OUT\n",
           in_bytes, out_bytes);
}

static void check_loopback(int fd)
{
    unsigned intf = 0, config = 2;
    ioctl(fd, USBDEVFS_RELEASEINTERFACE, &intf);
    EXPECT(ioctl(fd, USBDEVFS_SETCONFIGURATION, &config) == 0, "SET_CONFIGURATION 2: %s",
           strerror(errno));
    EXPECT(ioctl(fd, USBDEVFS_CLAIMINTERFACE, &intf) == 0, "claim in config 2: %s",
           strerror(errno));
    uint8_t out[4096], in[4096];
    for (size_t i = 0; i < sizeof out; i++) {
        out[i] = (uint8_t)(rand() & 0xff);
    }
    int w = bulk(fd, 0x01, out, sizeof out);
    int r = bulk(fd, 0x81, in, sizeof in);
    EXPECT(w == (int)sizeof out && r == (int)sizeof in && memcmp(in, out, sizeof in) == 0,
           "loopback: wrote %d, read %d", w, r);
    printf("zero: loopback (configuration 2): %d random bytes came back\n", r);
}

static int cmd_zero(const char *devnode)
{
    int fd = open(devnode, O_RDWR);
    if (fd < 0) {
        fprintf(stderr, "vmtool: cannot open %s: %s\n", devnode, strerror(errno));
        return 1;
    }
    unsigned intf = 0, config = 1;
    /* Start from source/sink whatever an earlier run left (loopback is config 2). */
    EXPECT(ioctl(fd, USBDEVFS_SETCONFIGURATION, &config) == 0, "SET_CONFIGURATION 1: %s",
           strerror(errno));
    EXPECT(ioctl(fd, USBDEVFS_CLAIMINTERFACE, &intf) == 0, "claim interface 0: %s",
           strerror(errno));
    check_vendor_requests(fd);
    check_stream(fd, "bulk", 0x81, 0x01, ZERO_BULK_MPS, 64 * 1024, 16);
    check_stream(fd, "interrupt", 0x82, 0x02, ZERO_INTR_MPS, ZERO_INTR_MPS, 16);
    check_iso(fd);
    check_loopback(fd);
    close(fd);
    return failures ? 1 : 0;
}

static int cmd_flood(const char *devnode)
{
    int fd = open(devnode, O_RDWR);
    unsigned intf = 0;
    if (fd < 0 || ioctl(fd, USBDEVFS_CLAIMINTERFACE, &intf) < 0) {
        fprintf(stderr, "vmtool: cannot open and claim %s: %s\n", devnode, strerror(errno));
        return 1;
    }
    enum { URBS = 16, LEN = 64 * 1024 };
    static struct usbdevfs_urb urbs[URBS];
    static uint8_t buffers[URBS][LEN];
    for (int i = 0; i < URBS; i++) {
        urbs[i] = (struct usbdevfs_urb){
            .type = USBDEVFS_URB_TYPE_BULK, .endpoint = 0x81, .buffer = buffers[i],
            .buffer_length = LEN};
        if (ioctl(fd, USBDEVFS_SUBMITURB, &urbs[i]) < 0) {
            fprintf(stderr, "vmtool: submit: %s\n", strerror(errno));
            return 1;
        }
    }
    printf("flood: %d bulk IN URBs in flight on %s\n", URBS, devnode);
    fflush(stdout);
    for (unsigned long done = 0;; done++) {
        struct usbdevfs_urb *urb = NULL;
        if (ioctl(fd, USBDEVFS_REAPURB, &urb) < 0 || ioctl(fd, USBDEVFS_SUBMITURB, urb) < 0) {
            fprintf(stderr, "vmtool: flood stopped after %lu URBs: %s\n", done, strerror(errno));
            return 1;
        }
    }
}

/* ---- keyboard ---- */

static int find_input_device(const char *name)
{
    for (int i = 0; i < 32; i++) {
        char path[64], dev_name[256] = "";
        snprintf(path, sizeof path, "/dev/input/event%d", i);
        int fd = open(path, O_RDONLY | O_NONBLOCK);
        if (fd < 0) {
            continue;
        }
        ioctl(fd, EVIOCGNAME(sizeof dev_name), dev_name);
        if (strstr(dev_name, name)) {
            return fd;
        }
        close(fd);
    }
    return -1;
}

/* Linux key codes of the characters the virtual keyboard types. */
static char key_to_char(int code, bool shift)
{
    static const char *const rows[][2] = {
        {"1234567890-=", "!@#$%^&*()_+"}, /* KEY_1 (2) .. KEY_EQUAL (13) */
        {"qwertyuiop[]", "QWERTYUIOP{}"}, /* KEY_Q (16) .. KEY_RIGHTBRACE (27) */
        {"asdfghjkl;'`", "ASDFGHJKL:\"~"}, /* KEY_A (30) .. KEY_GRAVE (41) */
        {"\\zxcvbnm,./", "|ZXCVBNM<>?"},   /* KEY_BACKSLASH (43) .. KEY_SLASH (53) */
    };
    static const int first[] = {2, 16, 30, 43};
    for (int r = 0; r < 4; r++) {
        int idx = code - first[r];
        if (idx >= 0 && idx < (int)strlen(rows[r][0])) {
            return rows[r][shift ? 1 : 0][idx];
        }
    }
    switch (code) {
    case KEY_SPACE: return ' ';
    case KEY_ENTER: return '\n';
    case KEY_TAB: return '\t';
    default: return '?';
    }
}

static int cmd_keys(const char *name, int seconds)
{
    int fd = -1;
    for (int waited = 0; fd < 0 && waited < seconds * 10; waited++) {
        fd = find_input_device(name);
        if (fd < 0) {
            usleep(100000);
        }
    }
    if (fd < 0) {
        fprintf(stderr, "vmtool: no input device named \"%s\"\n", name);
        return 1;
    }
    char text[1024];
    size_t len = 0;
    bool shift = false;
    time_t deadline = time(NULL) + seconds;
    int idle_ms = 0;
    while (time(NULL) < deadline && len + 1 < sizeof text && !(len > 0 && idle_ms >= 2000)) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 200) <= 0) {
            idle_ms += 200;
            continue;
        }
        idle_ms = 0;
        struct input_event ev;
        while (read(fd, &ev, sizeof ev) == (ssize_t)sizeof ev) {
            if (ev.type != EV_KEY) {
                continue;
            }
            if (ev.code == KEY_LEFTSHIFT || ev.code == KEY_RIGHTSHIFT) {
                shift = ev.value != 0;
            } else if (ev.value == 1 && len + 1 < sizeof text) {
                text[len++] = key_to_char(ev.code, shift);
            }
        }
    }
    text[len] = '\0';
    fputs(text, stdout);
    close(fd);
    return 0;
}

/* ---- serial ---- */

static int open_tty_raw(const char *tty)
{
    int fd = open(tty, O_RDWR | O_NOCTTY);
    if (fd < 0) {
        fprintf(stderr, "vmtool: cannot open %s: %s\n", tty, strerror(errno));
        return -1;
    }
    struct termios t;
    tcgetattr(fd, &t);
    cfmakeraw(&t);
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    tcsetattr(fd, TCSANOW, &t);
    return fd;
}

static int cmd_modem(const char *tty, int dtr, int rts)
{
    int fd = open_tty_raw(tty);
    if (fd < 0) {
        return 1;
    }
    int set = (dtr ? TIOCM_DTR : 0) | (rts ? TIOCM_RTS : 0);
    int clear = (dtr ? 0 : TIOCM_DTR) | (rts ? 0 : TIOCM_RTS);
    int rc = ioctl(fd, TIOCMBIS, &set) | ioctl(fd, TIOCMBIC, &clear);
    /* Keep the lines as set: without HUPCL, close does not drop DTR. */
    struct termios t;
    tcgetattr(fd, &t);
    t.c_cflag &= ~(tcflag_t)HUPCL;
    tcsetattr(fd, TCSANOW, &t);
    close(fd);
    printf("modem: %s DTR=%d RTS=%d (%s)\n", tty, dtr, rts, rc == 0 ? "set" : strerror(errno));
    return rc == 0 ? 0 : 1;
}

static int cmd_echo(const char *tty, size_t count)
{
    int fd = open_tty_raw(tty);
    if (fd < 0) {
        return 1;
    }
    uint8_t *out = malloc(count), *in = calloc(1, count);
    for (size_t i = 0; i < count; i++) {
        out[i] = (uint8_t)(rand() & 0xff);
    }
    size_t written = 0, got = 0;
    time_t deadline = time(NULL) + 10;
    while (got < count && time(NULL) < deadline) {
        if (written < count) {
            ssize_t n = write(fd, out + written, count - written < 512 ? count - written : 512);
            written += n > 0 ? (size_t)n : 0;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) > 0) {
            ssize_t n = read(fd, in + got, count - got);
            got += n > 0 ? (size_t)n : 0;
        }
    }
    EXPECT(got == count && memcmp(in, out, count) == 0, "echo on %s: wrote %zu, read back %zu%s",
           tty, written, got, got == count ? " but the bytes differ" : "");
    printf("echo: %s: %zu of %zu bytes came back\n", tty, got, count);
    free(out);
    free(in);
    close(fd);
    return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    srand((unsigned)time(NULL));
    if (argc == 3 && strcmp(argv[1], "zero") == 0) {
        return cmd_zero(argv[2]);
    }
    if (argc == 3 && strcmp(argv[1], "flood") == 0) {
        return cmd_flood(argv[2]);
    }
    if (argc == 4 && strcmp(argv[1], "keys") == 0) {
        return cmd_keys(argv[2], atoi(argv[3]));
    }
    if (argc == 5 && strcmp(argv[1], "modem") == 0) {
        return cmd_modem(argv[2], atoi(argv[3]), atoi(argv[4]));
    }
    if (argc == 4 && strcmp(argv[1], "echo") == 0) {
        return cmd_echo(argv[2], (size_t)strtoul(argv[3], NULL, 10));
    }
    fprintf(stderr, "usage: vmtool zero DEVNODE | flood DEVNODE | keys NAME SECONDS | "
                    "modem TTY DTR RTS | echo TTY BYTES\n");
    return 2;
}
