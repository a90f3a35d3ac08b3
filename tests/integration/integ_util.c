#include "integ_util.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ---------------------------------------------------------------- devlist */

typedef struct {
    it_dev_t *out;
    size_t max, n;
} devlist_ctx_t;

static void collect(void *arg, const usbip_device_record_t *dev,
                    const usbip_interface_record_t *intfs, size_t nintf)
{
    devlist_ctx_t *ctx = arg;
    if (ctx->n >= ctx->max) {
        return;
    }
    it_dev_t *d = &ctx->out[ctx->n++];
    memset(d, 0, sizeof *d);
    d->rec = *dev;
    d->nintf = nintf;
    for (size_t i = 0; i < nintf && i < IT_MAX_INTF; i++) {
        d->intf[i] = intfs[i];
    }
}

int it_devlist(daemon_t *d, it_dev_t *out, size_t max)
{
    usbip_client_t *c = it_connect(d);
    if (!c) {
        return -1;
    }
    devlist_ctx_t ctx = {.out = out, .max = max};
    size_t ndev = 0;
    usbip_err_t err = usbip_client_devlist(c, collect, &ctx, &ndev);
    if (err != USBIP_OK) {
        it_fail(__FILE__, __LINE__, "DEVLIST: %s", usbip_client_last_error(c));
        it_close(c);
        return -1;
    }
    /* The server ends the connection after the reply. */
    if (!it_expect_closed(c, 3000, NULL)) {
        it_fail(__FILE__, __LINE__, "DEVLIST: connection still open 3 s after the reply");
    }
    it_close(c);
    return (int)ndev;
}

const it_dev_t *it_find_dev(const it_dev_t *devs, int n, const char *busid)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(devs[i].rec.busid, busid) == 0) {
            return &devs[i];
        }
    }
    return NULL;
}

bool it_wait_listed(daemon_t *d, const char *busid, bool listed, int timeout_ms)
{
    uint64_t deadline = it_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        it_dev_t devs[16];
        int n = it_devlist(d, devs, 16);
        if (n >= 0 && (it_find_dev(devs, n, busid) != NULL) == listed) {
            return true;
        }
        if (n < 0 || it_now_ms() >= deadline) {
            return false;
        }
        it_sleep_ms(20);
    }
}

/* ---------------------------------------------------------------- data */

void it_fill_pattern(uint8_t *p, size_t len, unsigned max_packet)
{
    for (size_t i = 0; i < len; i++) {
        p[i] = (uint8_t)((i % max_packet) % 63u);
    }
}

long it_pattern_mismatch(const uint8_t *p, size_t len, unsigned max_packet)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != (uint8_t)((i % max_packet) % 63u)) {
            return (long)i;
        }
    }
    return -1;
}

void it_fill_random(uint8_t *p, size_t len, uint32_t seed)
{
    uint32_t x = seed ? seed : 0x9e3779b9u;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)(x >> 24);
    }
}

/* ---------------------------------------------------------------- transfers */

int32_t it_control(usbip_client_t *c, uint8_t bmRequestType, uint8_t bRequest, uint16_t wValue,
                   uint16_t wIndex, void *data, uint16_t wLength, uint32_t *actual)
{
    int32_t status = 0;
    uint32_t got = 0;
    usbip_err_t err =
        usbip_client_control(c, bmRequestType, bRequest, wValue, wIndex, data, wLength, &status,
                             &got);
    if (actual) {
        *actual = got;
    }
    if (err != USBIP_OK) {
        it_fail(__FILE__, __LINE__, "control %02x %02x %04x %04x %u: %s: %s", bmRequestType,
                bRequest, wValue, wIndex, wLength, usbip_err_name(err),
                usbip_client_last_error(c));
        return IT_XFER_FAILED;
    }
    return status;
}

int32_t it_transfer(usbip_client_t *c, uint8_t ep, bool dir_in, void *data, uint32_t length,
                    uint32_t *actual)
{
    int32_t status = 0;
    uint32_t got = 0;
    usbip_err_t err = usbip_client_transfer(c, ep, dir_in, data, length, &status, &got);
    if (actual) {
        *actual = got;
    }
    if (err != USBIP_OK) {
        it_fail(__FILE__, __LINE__, "transfer ep %u %s %u bytes: %s: %s", ep,
                dir_in ? "IN" : "OUT", length, usbip_err_name(err), usbip_client_last_error(c));
        return IT_XFER_FAILED;
    }
    return status;
}

bool it_submit(usbip_client_t *c, usbip_client_urb_t *urb)
{
    usbip_err_t err = usbip_client_submit(c, urb);
    if (err != USBIP_OK) {
        it_fail(__FILE__, __LINE__, "submit ep %u %s %u bytes: %s: %s", urb->ep,
                urb->dir_in ? "IN" : "OUT", urb->length, usbip_err_name(err),
                usbip_client_last_error(c));
        return false;
    }
    return true;
}

bool it_wait(usbip_client_t *c, usbip_client_urb_t **done, int32_t *unlink_status,
             uint32_t *unlink_seqnum)
{
    usbip_err_t err = usbip_client_wait(c, done, unlink_status, unlink_seqnum);
    if (err != USBIP_OK) {
        it_fail(__FILE__, __LINE__, "wait: %s: %s", usbip_err_name(err),
                usbip_client_last_error(c));
        return false;
    }
    return true;
}

bool it_no_reply_within(usbip_client_t *c, int ms)
{
    usbip_client_set_timeout(c, ms);
    usbip_client_urb_t *done = NULL;
    int32_t ustatus = 0;
    uint32_t useq = 0;
    usbip_err_t err = usbip_client_wait(c, &done, &ustatus, &useq);
    bool silent = err != USBIP_OK && usbip_client_timed_out(c);
    usbip_client_set_timeout(c, 10000);
    if (!silent) {
        if (err == USBIP_OK) {
            it_fail(__FILE__, __LINE__,
                    "unexpected reply within %d ms: %s seqnum %u status %d (unlink %u/%d)", ms,
                    done ? "RET_SUBMIT" : "RET_UNLINK", done ? done->seqnum : useq,
                    done ? done->status : ustatus, useq, ustatus);
        } else {
            it_fail(__FILE__, __LINE__, "waiting for silence: %s", usbip_client_last_error(c));
        }
    }
    return silent;
}

bool it_serial_echo_ok(usbip_client_t *serial, size_t len, uint32_t seed)
{
    uint8_t *out = malloc(len ? len : 1);
    uint8_t *in = malloc(len + 4096);
    bool ok = out && in;
    if (ok) {
        it_fill_random(out, len, seed);
        uint32_t actual = 0;
        int32_t st = it_transfer(serial, 1, false, out, (uint32_t)len, &actual);
        if (st != 0 || actual != len) {
            it_fail(__FILE__, __LINE__, "serial echo OUT %zu: status %d actual %u", len, st,
                    actual);
            ok = false;
        }
        size_t got = 0;
        while (ok && got < len) {
            /* Ask for more than is left: the echo must never add bytes. */
            st = it_transfer(serial, 1, true, in + got, (uint32_t)(len - got + 4096), &actual);
            if (st != 0 || actual == 0 || got + actual > len) {
                it_fail(__FILE__, __LINE__, "serial echo IN after %zu/%zu: status %d actual %u",
                        got, len, st, actual);
                ok = false;
                break;
            }
            got += actual;
        }
        if (ok && memcmp(in, out, len) != 0) {
            it_fail(__FILE__, __LINE__, "serial echo: %zu bytes came back different", len);
            ok = false;
        }
    }
    free(out);
    free(in);
    return ok;
}

bool it_zero_in_ok(usbip_client_t *zero, uint32_t len)
{
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        return false;
    }
    uint32_t actual = 0;
    int32_t st = it_transfer(zero, 1, true, buf, len, &actual);
    long bad = st == 0 ? it_pattern_mismatch(buf, actual, 512) : -1;
    bool ok = st == 0 && actual == len && bad < 0;
    if (!ok) {
        it_fail(__FILE__, __LINE__, "zero bulk IN %u: status %d actual %u mismatch at %ld", len,
                st, actual, bad);
    }
    free(buf);
    return ok;
}

/* ---------------------------------------------------------------- raw */

void it_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void it_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

uint32_t it_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint16_t it_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

uint16_t it_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

void it_urb_header(uint8_t out[48], uint32_t command, uint32_t seqnum, uint32_t devid,
                   uint32_t direction, uint32_t ep, uint32_t word5, int32_t length,
                   int32_t start_frame, int32_t number_of_packets, int32_t interval,
                   const uint8_t setup[8])
{
    memset(out, 0, 48);
    it_put_be32(out + 0x00, command);
    it_put_be32(out + 0x04, seqnum);
    it_put_be32(out + 0x08, devid);
    it_put_be32(out + 0x0c, direction);
    it_put_be32(out + 0x10, ep);
    it_put_be32(out + 0x14, word5);
    it_put_be32(out + 0x18, (uint32_t)length);
    it_put_be32(out + 0x1c, (uint32_t)start_frame);
    it_put_be32(out + 0x20, (uint32_t)number_of_packets);
    it_put_be32(out + 0x24, (uint32_t)interval);
    if (setup) {
        memcpy(out + 0x28, setup, 8);
    }
}

bool it_expect_closed(usbip_client_t *c, int timeout_ms, size_t *bytes)
{
    int fd = usbip_client_fd(c);
    size_t total = 0;
    uint64_t deadline = it_now_ms() + (uint64_t)timeout_ms;
    bool closed = false;
    for (;;) {
        uint8_t buf[65536];
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            total += (size_t)n;
            if (it_now_ms() >= deadline) {
                break; /* a server that keeps talking is not closing */
            }
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            closed = true; /* EOF, or reset */
            break;
        }
        uint64_t now = it_now_ms();
        if (now >= deadline) {
            break;
        }
        int left = (int)(deadline - now);
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        poll(&pfd, 1, left);
    }
    if (bytes) {
        *bytes = total;
    }
    return closed;
}
