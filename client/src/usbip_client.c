/*
 * usbip_client: blocking USB/IP client over TCP. See usbip_client.h.
 *
 * All socket I/O goes through recv_exact() and send_all(), which use
 * non-blocking calls (MSG_DONTWAIT) and poll() so that every wait is bounded
 * by a deadline, while the descriptor itself stays blocking for callers that
 * use usbip_client_fd() directly.
 */
#include "usbip_client.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "usbip_log.h"

#define TAG "usbip_client"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* macOS: SO_NOSIGPIPE is set on the socket instead */
#endif

/* How many URBs answered by RET_UNLINK(-ECONNRESET) are remembered, so that a
 * late RET_SUBMIT for one of them gets a precise error message. */
#define CANCELLED_MEMORY 256u
#define ERROR_SIZE 256u

typedef enum {
    STATE_FRESH,    /* connected, OP phase */
    STATE_IMPORTED, /* URB phase */
    STATE_DONE,     /* the server closes after this OP exchange */
    STATE_BROKEN,   /* stream position lost after a failure */
} client_state_t;

typedef struct {
    uint32_t seqnum; /* of the CMD_UNLINK; 0 = free slot */
    uint32_t victim_seqnum;
} pending_unlink_t;

struct usbip_client {
    int fd;
    int timeout_ms;
    uint16_t op_version;
    client_state_t state;
    bool timed_out;
    uint32_t devid;
    uint32_t next_seqnum;

    /* URBs in flight, open addressing on seqnum (home slot = seqnum mod size,
     * linear probing, no early stop on empty slots since removals leave holes). */
    usbip_client_urb_t *urbs[USBIP_CLIENT_MAX_IN_FLIGHT];
    size_t n_urbs;
    pending_unlink_t unlinks[USBIP_CLIENT_MAX_IN_FLIGHT];
    size_t n_unlinks;

    uint32_t cancelled[CANCELLED_MEMORY];
    size_t cancelled_next;

    char error[ERROR_SIZE];
    char broken_reason[ERROR_SIZE];
};

/* The connect error has no client to live in. */
static _Thread_local char s_connect_error[ERROR_SIZE];

/* ---------------------------------------------------------------- errors */

static usbip_err_t fail(usbip_client_t *c, usbip_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static usbip_err_t fail(usbip_client_t *c, usbip_err_t err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof c->error, fmt, ap);
    va_end(ap);
    c->timed_out = false;
    USBIP_LOGD(TAG, "%s: %s", usbip_err_name(err), c->error);
    return err;
}

static usbip_err_t connect_fail(usbip_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static usbip_err_t connect_fail(usbip_err_t err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s_connect_error, sizeof s_connect_error, fmt, ap);
    va_end(ap);
    USBIP_LOGD(TAG, "%s: %s", usbip_err_name(err), s_connect_error);
    return err;
}

/* Once the stream position is lost no PDU can be parsed any more. */
static void mark_broken(usbip_client_t *c)
{
    if (c->state != STATE_BROKEN) {
        c->state = STATE_BROKEN;
        memcpy(c->broken_reason, c->error, sizeof c->broken_reason);
    }
}

static usbip_err_t require_state(usbip_client_t *c, client_state_t wanted, const char *what)
{
    if (c->state == wanted) {
        return USBIP_OK;
    }
    switch (c->state) {
    case STATE_BROKEN:
        return fail(c, USBIP_ERR_INVALID_STATE, "%s: connection unusable after earlier error: %s",
                    what, c->broken_reason);
    case STATE_DONE:
        return fail(c, USBIP_ERR_INVALID_STATE,
                    "%s: the server closes this connection after DEVLIST or a refused "
                    "IMPORT; connect again", what);
    case STATE_IMPORTED:
        return fail(c, USBIP_ERR_INVALID_STATE,
                    "%s: not allowed after IMPORT (connection is in the URB phase)", what);
    case STATE_FRESH:
        return fail(c, USBIP_ERR_INVALID_STATE, "%s: no device imported on this connection",
                    what);
    }
    return USBIP_ERR_INVALID_STATE;
}

/* ------------------------------------------------------------- time, I/O */

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A deadline of -1 means "never". */
static int64_t deadline_after(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : monotonic_ms() + timeout_ms;
}

static int remaining_ms(int64_t deadline)
{
    if (deadline < 0) {
        return -1;
    }
    int64_t left = deadline - monotonic_ms();
    if (left <= 0) {
        return 0;
    }
    return left > INT32_MAX ? INT32_MAX : (int)left;
}

/* Wait until fd is ready for events. 1 = ready, 0 = deadline passed, -1 = errno. */
static int poll_until(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, remaining_ms(deadline));
        if (n > 0) {
            return 1;
        }
        if (n == 0) {
            return 0;
        }
        if (errno != EINTR) {
            return -1;
        }
    }
}

/* Read exactly len bytes. *got (if non-NULL) tells how far it came, so that
 * callers know whether the stream position is lost. what names the data in
 * messages (NULL: no prefix). */
static usbip_err_t recv_exact(usbip_client_t *c, void *buf, size_t len, const char *what,
                              size_t *got)
{
    uint8_t *p = buf;
    size_t done = 0;
    int64_t deadline = deadline_after(c->timeout_ms);
    const char *sep = what ? ": " : "";
    what = what ? what : "";
    usbip_err_t err = USBIP_OK;

    while (done < len) {
        ssize_t n = recv(c->fd, p + done, len - done, MSG_DONTWAIT);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n == 0) {
            err = done == 0
                ? fail(c, USBIP_ERR_IO, "%s%sconnection closed by server", what, sep)
                : fail(c, USBIP_ERR_IO, "%s%sconnection closed by server after %zu of %zu bytes",
                       what, sep, done, len);
            break;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            err = fail(c, USBIP_ERR_IO, "%s%sreceive failed after %zu of %zu bytes: %s", what, sep,
                       done, len, strerror(errno));
            break;
        }
        int ready = poll_until(c->fd, POLLIN, deadline);
        if (ready == 0) {
            err = fail(c, USBIP_ERR_IO, "%s%stimed out after %d ms with %zu of %zu bytes received",
                       what, sep, c->timeout_ms, done, len);
            c->timed_out = true;
            break;
        }
        if (ready < 0) {
            err = fail(c, USBIP_ERR_IO, "%s%spoll failed: %s", what, sep, strerror(errno));
            break;
        }
    }
    if (got) {
        *got = done;
    }
    return err;
}

/* Send all bytes of iov[0..iovcnt) (at most 4 entries). *sent as in recv_exact. */
static usbip_err_t send_all(usbip_client_t *c, const struct iovec *iov_in, int iovcnt,
                            const char *what, size_t *sent)
{
    struct iovec iov[4];
    size_t total = 0, done = 0;
    int first = 0;
    int64_t deadline = deadline_after(c->timeout_ms);
    usbip_err_t err = USBIP_OK;

    if (iovcnt > 4) {
        return fail(c, USBIP_ERR_INVALID_ARG, "%s: too many buffers", what);
    }
    for (int i = 0; i < iovcnt; i++) {
        iov[i] = iov_in[i];
        total += iov[i].iov_len;
    }
    while (done < total) {
        struct msghdr msg = {.msg_iov = iov + first, .msg_iovlen = (size_t)(iovcnt - first)};
        ssize_t n = sendmsg(c->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0) {
            size_t left = (size_t)n;
            done += left;
            /* Drop what went out from the front of the vector. */
            while (first < iovcnt && left >= iov[first].iov_len) {
                left -= iov[first].iov_len;
                first++;
            }
            if (first < iovcnt) {
                iov[first].iov_base = (uint8_t *)iov[first].iov_base + left;
                iov[first].iov_len -= left;
            }
            continue;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            err = fail(c, USBIP_ERR_IO, "%s: send failed after %zu of %zu bytes: %s", what, done,
                       total, strerror(errno));
            break;
        }
        int ready = poll_until(c->fd, POLLOUT, deadline);
        if (ready == 0) {
            err = fail(c, USBIP_ERR_IO, "%s: timed out after %d ms with %zu of %zu bytes sent",
                       what, c->timeout_ms, done, total);
            c->timed_out = true;
            break;
        }
        if (ready < 0) {
            err = fail(c, USBIP_ERR_IO, "%s: poll failed: %s", what, strerror(errno));
            break;
        }
    }
    if (sent) {
        *sent = done;
    }
    return err;
}

static usbip_err_t send_buffer(usbip_client_t *c, const void *buf, size_t len, const char *what,
                               size_t *sent)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    return send_all(c, &iov, 1, what, sent);
}

/* ------------------------------------------------------------ connecting */

static void format_address(const struct sockaddr *sa, socklen_t len, char *out, size_t size)
{
    char host[INET6_ADDRSTRLEN];
    if (getnameinfo(sa, len, host, sizeof host, NULL, 0, NI_NUMERICHOST) != 0) {
        snprintf(out, size, "?");
    } else if (sa->sa_family == AF_INET6) {
        snprintf(out, size, "[%s]", host);
    } else {
        snprintf(out, size, "%s", host);
    }
}

static void set_blocking(int fd, bool blocking)
{
    int flags = fcntl(fd, F_GETFL, 0);
    if (flags >= 0) {
        fcntl(fd, F_SETFL, blocking ? flags & ~O_NONBLOCK : flags | O_NONBLOCK);
    }
}

/* Connect fd to one address before the deadline. 0 or an errno (ETIMEDOUT). */
static int connect_one(int fd, const struct addrinfo *ai, int64_t deadline)
{
    set_blocking(fd, false);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS && errno != EINTR) {
            return errno;
        }
        int ready = poll_until(fd, POLLOUT, deadline);
        if (ready == 0) {
            return ETIMEDOUT;
        }
        if (ready < 0) {
            return errno;
        }
        int so_error = 0;
        socklen_t optlen = sizeof so_error;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &optlen) != 0) {
            return errno;
        }
        if (so_error != 0) {
            return so_error;
        }
    }
    set_blocking(fd, true);
    return 0;
}

static void configure_socket(int fd)
{
    int one = 1;
    /* URB PDUs are small and latency-bound: do not let Nagle hold them back. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
#ifdef SO_NOSIGPIPE
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
    fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static usbip_client_t *client_new(int fd)
{
    usbip_client_t *c = calloc(1, sizeof *c);
    if (!c) {
        return NULL;
    }
    c->fd = fd;
    c->timeout_ms = USBIP_CLIENT_DEFAULT_TIMEOUT_MS;
    c->op_version = USBIP_VERSION_0111;
    c->state = STATE_FRESH;
    c->next_seqnum = 1;
    return c;
}

/* Try each resolved address in turn until one connects; all share one
 * deadline. Returns the connected descriptor or -1 with the error recorded. */
static int connect_first_address(const struct addrinfo *list, const char *host, uint16_t port,
                                 int timeout_ms, usbip_err_t *err)
{
    int64_t deadline = deadline_after(timeout_ms);
    *err = connect_fail(USBIP_ERR_IO, "connect: host '%s' has no address", host);
    for (const struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        char addr[INET6_ADDRSTRLEN + 2];
        format_address(ai->ai_addr, ai->ai_addrlen, addr, sizeof addr);
        int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            *err = connect_fail(USBIP_ERR_IO, "connect to %s:%u: socket: %s", addr,
                                (unsigned)port, strerror(errno));
            continue;
        }
        int result = connect_one(fd, ai, deadline);
        if (result == 0) {
            return fd;
        }
        close(fd);
        if (result == ETIMEDOUT) {
            *err = connect_fail(USBIP_ERR_IO, "connect to %s:%u: timed out after %d ms", addr,
                                (unsigned)port, timeout_ms);
        } else {
            *err = connect_fail(USBIP_ERR_IO, "connect to %s:%u: %s", addr, (unsigned)port,
                                strerror(result));
        }
        if (remaining_ms(deadline) == 0) {
            break;
        }
    }
    return -1;
}

usbip_err_t usbip_client_connect(const char *host, uint16_t port, int timeout_ms,
                                 usbip_client_t **out)
{
    if (!out) {
        return connect_fail(USBIP_ERR_INVALID_ARG, "connect: out is NULL");
    }
    *out = NULL;
    if (!host || !*host) {
        return connect_fail(USBIP_ERR_INVALID_ARG, "connect: host is empty");
    }

    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *list = NULL;
    int gai = getaddrinfo(host, service, &hints, &list);
    if (gai != 0) {
        return connect_fail(USBIP_ERR_IO, "connect: cannot resolve host '%s': %s", host,
                            gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
    }
    usbip_err_t err = USBIP_OK;
    int fd = connect_first_address(list, host, port, timeout_ms, &err);
    freeaddrinfo(list);
    if (fd < 0) {
        return err;
    }

    configure_socket(fd);
    usbip_client_t *c = client_new(fd);
    if (!c) {
        close(fd);
        return connect_fail(USBIP_ERR_NO_MEM, "connect: out of memory for the client");
    }
    s_connect_error[0] = '\0';
    *out = c;
    return USBIP_OK;
}

void usbip_client_close(usbip_client_t *c)
{
    if (!c) {
        return;
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    free(c);
}

int usbip_client_fd(const usbip_client_t *c) { return c ? c->fd : -1; }

void usbip_client_set_timeout(usbip_client_t *c, int timeout_ms)
{
    if (c) {
        c->timeout_ms = timeout_ms;
    }
}

const char *usbip_client_last_error(const usbip_client_t *c)
{
    const char *message = c ? c->error : s_connect_error;
    return message[0] ? message : "no error";
}

bool usbip_client_timed_out(const usbip_client_t *c) { return c && c->timed_out; }

void usbip_client_set_op_version(usbip_client_t *c, uint16_t version)
{
    if (c) {
        c->op_version = version;
    }
}

uint32_t usbip_client_devid(const usbip_client_t *c) { return c ? c->devid : 0; }

void usbip_client_set_devid(usbip_client_t *c, uint32_t devid)
{
    if (c) {
        c->devid = devid;
    }
}

/* -------------------------------------------------------------- OP phase */

static const char *op_status_name(uint32_t status)
{
    switch (status) {
    case USBIP_ST_OK: return "OK";
    case USBIP_ST_NA: return "NA: export failed";
    case USBIP_ST_DEV_BUSY: return "DEV_BUSY: already imported";
    case USBIP_ST_DEV_ERR: return "DEV_ERR: device in error state";
    case USBIP_ST_NODEV: return "NODEV: unknown busid";
    case USBIP_ST_ERROR: return "ERROR";
    default: return "unknown status";
    }
}

static usbip_err_t send_op_request(usbip_client_t *c, uint16_t code, const char *what)
{
    uint8_t buf[USBIP_OP_HEADER_SIZE];
    usbip_op_header_t hdr = {.version = c->op_version, .code = code, .status = 0};
    usbip_op_header_encode(buf, &hdr);
    return send_buffer(c, buf, sizeof buf, what, NULL);
}

/* Read an op_common reply and check its code and version echo. */
static usbip_err_t recv_op_reply(usbip_client_t *c, uint16_t expected_code, const char *what,
                                 usbip_op_header_t *hdr)
{
    uint8_t buf[USBIP_OP_HEADER_SIZE];
    usbip_err_t err = recv_exact(c, buf, sizeof buf, what, NULL);
    if (err != USBIP_OK) {
        return err;
    }
    err = usbip_op_header_decode(buf, sizeof buf, hdr);
    if (err != USBIP_OK) {
        return fail(c, USBIP_ERR_PROTOCOL, "%s: undecodable op_common (%s)", what,
                    usbip_err_name(err));
    }
    if (hdr->code != expected_code) {
        return fail(c, USBIP_ERR_PROTOCOL, "%s: code 0x%04x, expected 0x%04x", what, hdr->code,
                    expected_code);
    }
    if (hdr->version != c->op_version) {
        return fail(c, USBIP_ERR_PROTOCOL, "%s: version 0x%04x, expected 0x%04x (echo of request)",
                    what, hdr->version, c->op_version);
    }
    return USBIP_OK;
}

static uint32_t be32_at(const uint8_t b[4])
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* One device record and its interface records, then the callback. */
static usbip_err_t recv_devlist_entry(usbip_client_t *c, uint32_t index, uint32_t ndev,
                                      usbip_client_device_cb cb, void *arg)
{
    char what[96];
    uint8_t record[USBIP_DEVICE_RECORD_SIZE];
    uint8_t intf_bytes[255 * USBIP_INTERFACE_RECORD_SIZE];
    usbip_interface_record_t intfs[255];
    usbip_device_record_t dev;

    snprintf(what, sizeof what, "DEVLIST reply: device %" PRIu32 " of %" PRIu32, index + 1, ndev);
    usbip_err_t err = recv_exact(c, record, sizeof record, what, NULL);
    if (err != USBIP_OK) {
        return err;
    }
    usbip_device_record_decode(record, &dev);

    size_t nintf = dev.bNumInterfaces;
    snprintf(what, sizeof what, "DEVLIST reply: interfaces of device %" PRIu32 " (%s)", index + 1,
             dev.busid);
    err = recv_exact(c, intf_bytes, nintf * USBIP_INTERFACE_RECORD_SIZE, what, NULL);
    if (err != USBIP_OK) {
        return err;
    }
    for (size_t i = 0; i < nintf; i++) {
        usbip_interface_record_decode(intf_bytes + i * USBIP_INTERFACE_RECORD_SIZE, &intfs[i]);
    }
    if (cb) {
        cb(arg, &dev, intfs, nintf);
    }
    return USBIP_OK;
}

usbip_err_t usbip_client_devlist(usbip_client_t *c, usbip_client_device_cb cb, void *arg,
                                 size_t *ndev_out)
{
    if (ndev_out) {
        *ndev_out = 0;
    }
    if (!c) {
        return USBIP_ERR_INVALID_ARG;
    }
    usbip_err_t err = require_state(c, STATE_FRESH, "DEVLIST");
    if (err != USBIP_OK) {
        return err;
    }
    /* Whatever happens next, the server ends the connection after this. */
    c->state = STATE_DONE;

    err = send_op_request(c, USBIP_OP_REQ_DEVLIST, "DEVLIST request");
    if (err != USBIP_OK) {
        return err;
    }
    usbip_op_header_t hdr;
    err = recv_op_reply(c, USBIP_OP_REP_DEVLIST, "DEVLIST reply", &hdr);
    if (err != USBIP_OK) {
        return err;
    }
    if (hdr.status != USBIP_ST_OK) {
        return fail(c, USBIP_ERR_IO, "DEVLIST reply: status %" PRIu32 " (%s)", hdr.status,
                    op_status_name(hdr.status));
    }
    uint8_t count[4];
    err = recv_exact(c, count, sizeof count, "DEVLIST reply: device count", NULL);
    if (err != USBIP_OK) {
        return err;
    }
    uint32_t ndev = be32_at(count);
    for (uint32_t i = 0; i < ndev; i++) {
        err = recv_devlist_entry(c, i, ndev, cb, arg);
        if (err != USBIP_OK) {
            return err;
        }
        if (ndev_out) {
            *ndev_out = i + 1;
        }
    }
    return USBIP_OK;
}

static usbip_err_t import_refusal(uint32_t status)
{
    switch (status) {
    case USBIP_ST_DEV_BUSY: return USBIP_ERR_BUSY;
    case USBIP_ST_NODEV: return USBIP_ERR_NOT_FOUND;
    default: return USBIP_ERR_IO;
    }
}

usbip_err_t usbip_client_import(usbip_client_t *c, const char *busid,
                                usbip_device_record_t *dev_out, uint32_t *op_status)
{
    if (op_status) {
        *op_status = 0;
    }
    if (!c) {
        return USBIP_ERR_INVALID_ARG;
    }
    if (!busid || busid[0] == '\0' || strnlen(busid, USBIP_BUSID_SIZE) >= USBIP_BUSID_SIZE) {
        return fail(c, USBIP_ERR_INVALID_ARG, "IMPORT: busid must be 1 to %u characters",
                    USBIP_BUSID_SIZE - 1);
    }
    usbip_err_t err = require_state(c, STATE_FRESH, "IMPORT");
    if (err != USBIP_OK) {
        return err;
    }
    /* Until the reply proves otherwise, the server will close after it. */
    c->state = STATE_DONE;

    uint8_t request[USBIP_IMPORT_REQUEST_SIZE];
    usbip_import_request_encode(request, c->op_version, busid);
    err = send_buffer(c, request, sizeof request, "IMPORT request", NULL);
    if (err != USBIP_OK) {
        return err;
    }
    usbip_op_header_t hdr;
    err = recv_op_reply(c, USBIP_OP_REP_IMPORT, "IMPORT reply", &hdr);
    if (err != USBIP_OK) {
        return err;
    }
    if (op_status) {
        *op_status = hdr.status;
    }
    if (hdr.status != USBIP_ST_OK) {
        return fail(c, import_refusal(hdr.status), "IMPORT of '%s' refused: status %" PRIu32 " (%s)",
                    busid, hdr.status, op_status_name(hdr.status));
    }

    uint8_t record[USBIP_DEVICE_RECORD_SIZE];
    err = recv_exact(c, record, sizeof record, "IMPORT reply: device record", NULL);
    if (err != USBIP_OK) {
        return err;
    }
    usbip_device_record_t dev;
    usbip_device_record_decode(record, &dev);
    if (strncmp(dev.busid, busid, USBIP_BUSID_SIZE) != 0) {
        return fail(c, USBIP_ERR_PROTOCOL, "IMPORT reply: busid '%s' differs from requested '%s'",
                    dev.busid, busid);
    }
    c->devid = dev.busnum << 16 | (dev.devnum & 0xffffu);
    c->state = STATE_IMPORTED;
    if (dev_out) {
        *dev_out = dev;
    }
    return USBIP_OK;
}

/* ----------------------------------------------------- in-flight tables */

static size_t home_slot(uint32_t seqnum) { return seqnum & (USBIP_CLIENT_MAX_IN_FLIGHT - 1); }

_Static_assert((USBIP_CLIENT_MAX_IN_FLIGHT & (USBIP_CLIENT_MAX_IN_FLIGHT - 1)) == 0,
               "table size must be a power of two");

static void urb_table_insert(usbip_client_t *c, usbip_client_urb_t *urb)
{
    for (size_t i = 0, slot = home_slot(urb->seqnum); i < USBIP_CLIENT_MAX_IN_FLIGHT;
         i++, slot = home_slot((uint32_t)slot + 1)) {
        if (!c->urbs[slot]) {
            c->urbs[slot] = urb;
            c->n_urbs++;
            return;
        }
    }
}

/* Slot of the URB in flight with seqnum, or -1. */
static long urb_table_find(const usbip_client_t *c, uint32_t seqnum)
{
    if (c->n_urbs == 0) {
        return -1;
    }
    for (size_t i = 0, slot = home_slot(seqnum); i < USBIP_CLIENT_MAX_IN_FLIGHT;
         i++, slot = home_slot((uint32_t)slot + 1)) {
        if (c->urbs[slot] && c->urbs[slot]->seqnum == seqnum) {
            return (long)slot;
        }
    }
    return -1;
}

static usbip_client_urb_t *urb_table_take(usbip_client_t *c, uint32_t seqnum)
{
    long slot = urb_table_find(c, seqnum);
    if (slot < 0) {
        return NULL;
    }
    usbip_client_urb_t *urb = c->urbs[slot];
    c->urbs[slot] = NULL;
    c->n_urbs--;
    return urb;
}

static void unlink_table_insert(usbip_client_t *c, uint32_t seqnum, uint32_t victim_seqnum)
{
    for (size_t i = 0, slot = home_slot(seqnum); i < USBIP_CLIENT_MAX_IN_FLIGHT;
         i++, slot = home_slot((uint32_t)slot + 1)) {
        if (c->unlinks[slot].seqnum == 0) {
            c->unlinks[slot] = (pending_unlink_t){seqnum, victim_seqnum};
            c->n_unlinks++;
            return;
        }
    }
}

/* Remove the pending CMD_UNLINK with seqnum; false if there is none. */
static bool unlink_table_take(usbip_client_t *c, uint32_t seqnum, uint32_t *victim_seqnum)
{
    if (c->n_unlinks == 0 || seqnum == 0) {
        return false;
    }
    for (size_t i = 0, slot = home_slot(seqnum); i < USBIP_CLIENT_MAX_IN_FLIGHT;
         i++, slot = home_slot((uint32_t)slot + 1)) {
        if (c->unlinks[slot].seqnum == seqnum) {
            *victim_seqnum = c->unlinks[slot].victim_seqnum;
            c->unlinks[slot].seqnum = 0;
            c->n_unlinks--;
            return true;
        }
    }
    return false;
}

static void remember_cancelled(usbip_client_t *c, uint32_t seqnum)
{
    c->cancelled[c->cancelled_next] = seqnum;
    c->cancelled_next = (c->cancelled_next + 1) % CANCELLED_MEMORY;
}

static bool was_cancelled(const usbip_client_t *c, uint32_t seqnum)
{
    for (size_t i = 0; i < CANCELLED_MEMORY; i++) {
        if (c->cancelled[i] == seqnum && seqnum != 0) {
            return true;
        }
    }
    return false;
}

/* Seqnums are shared by CMD_SUBMIT and CMD_UNLINK and are never 0. */
static uint32_t take_seqnum(usbip_client_t *c)
{
    uint32_t seqnum = c->next_seqnum++;
    if (c->next_seqnum == 0) {
        c->next_seqnum = 1;
    }
    return seqnum;
}

size_t usbip_client_urbs_in_flight(const usbip_client_t *c) { return c ? c->n_urbs : 0; }

size_t usbip_client_unlinks_in_flight(const usbip_client_t *c) { return c ? c->n_unlinks : 0; }

/* ---------------------------------------------------- submit and unlink */

static usbip_err_t check_urb_request(usbip_client_t *c, const usbip_client_urb_t *urb)
{
    if (urb->ep >= USBIP_MAX_ENDPOINTS) {
        return fail(c, USBIP_ERR_INVALID_ARG, "submit: ep %u out of range 0..15", urb->ep);
    }
    if (urb->length > INT32_MAX) {
        return fail(c, USBIP_ERR_INVALID_ARG, "submit: length %" PRIu32 " exceeds INT32_MAX",
                    urb->length);
    }
    if (urb->length > 0 && !urb->buffer) {
        return fail(c, USBIP_ERR_INVALID_ARG, "submit: buffer is NULL with length %" PRIu32,
                    urb->length);
    }
    if (urb->num_iso_packets > USBIP_MAX_ISO_PACKETS) {
        return fail(c, USBIP_ERR_INVALID_ARG, "submit: num_iso_packets %" PRIu32 " exceeds %u",
                    urb->num_iso_packets, USBIP_MAX_ISO_PACKETS);
    }
    if (urb->num_iso_packets > 0) {
        if (!urb->iso) {
            return fail(c, USBIP_ERR_INVALID_ARG, "submit: iso is NULL with %" PRIu32 " packets",
                        urb->num_iso_packets);
        }
        usbip_field_error_t field = {0};
        if (usbip_iso_packets_check(urb->iso, urb->num_iso_packets, urb->length, &field) !=
            USBIP_OK) {
            return fail(c, USBIP_ERR_INVALID_ARG,
                        "submit: iso packets do not fit the %" PRIu32 "-byte buffer: %s = %" PRId64,
                        urb->length, field.field ? field.field : "?", field.value);
        }
    }
    return USBIP_OK;
}

static void encode_cmd_submit(const usbip_client_t *c, const usbip_client_urb_t *urb,
                              uint8_t out[USBIP_URB_HEADER_SIZE])
{
    usbip_urb_header_t hdr = {
        .command = USBIP_CMD_SUBMIT,
        .seqnum = urb->seqnum,
        .devid = c->devid,
        .direction = urb->dir_in ? USBIP_DIR_IN : USBIP_DIR_OUT,
        .ep = urb->ep,
    };
    hdr.u.submit.transfer_flags = urb->flags;
    hdr.u.submit.transfer_buffer_length = (int32_t)urb->length;
    hdr.u.submit.start_frame = urb->start_frame;
    hdr.u.submit.number_of_packets = (int32_t)urb->num_iso_packets;
    hdr.u.submit.interval = urb->interval;
    memcpy(hdr.u.submit.setup, urb->setup, sizeof hdr.u.submit.setup);
    usbip_urb_header_encode(out, &hdr);
}

/* Request descriptors in wire order; results fields go out as 0. */
static usbip_iso_packet_t *iso_request_to_wire(const usbip_client_urb_t *urb)
{
    usbip_iso_packet_t *wire = malloc(urb->num_iso_packets * sizeof *wire);
    if (!wire) {
        return NULL;
    }
    for (uint32_t i = 0; i < urb->num_iso_packets; i++) {
        wire[i] = (usbip_iso_packet_t){.offset = urb->iso[i].offset, .length = urb->iso[i].length};
    }
    usbip_iso_packets_to_wire(wire, urb->num_iso_packets);
    return wire;
}

static void reset_results(usbip_client_urb_t *urb)
{
    urb->status = 0;
    urb->actual_length = 0;
    urb->error_count = 0;
    urb->start_frame_out = 0;
    urb->unlinked = false;
}

usbip_err_t usbip_client_submit(usbip_client_t *c, usbip_client_urb_t *urb)
{
    if (!c) {
        return USBIP_ERR_INVALID_ARG;
    }
    if (!urb) {
        return fail(c, USBIP_ERR_INVALID_ARG, "submit: urb is NULL");
    }
    usbip_err_t err = require_state(c, STATE_IMPORTED, "submit");
    if (err != USBIP_OK) {
        return err;
    }
    err = check_urb_request(c, urb);
    if (err != USBIP_OK) {
        return err;
    }
    if (c->n_urbs >= USBIP_CLIENT_MAX_IN_FLIGHT) {
        return fail(c, USBIP_ERR_WOULD_BLOCK, "submit: %u URBs already in flight; wait for one",
                    USBIP_CLIENT_MAX_IN_FLIGHT);
    }

    usbip_iso_packet_t *iso_wire = NULL;
    if (urb->num_iso_packets > 0) {
        iso_wire = iso_request_to_wire(urb);
        if (!iso_wire) {
            return fail(c, USBIP_ERR_NO_MEM, "submit: out of memory for iso descriptors");
        }
    }

    reset_results(urb);
    urb->seqnum = take_seqnum(c);
    uint8_t header[USBIP_URB_HEADER_SIZE];
    encode_cmd_submit(c, urb, header);

    struct iovec iov[3];
    int iovcnt = 0;
    iov[iovcnt++] = (struct iovec){.iov_base = header, .iov_len = sizeof header};
    if (!urb->dir_in && urb->length > 0) {
        iov[iovcnt++] = (struct iovec){.iov_base = urb->buffer, .iov_len = urb->length};
    }
    if (iso_wire) {
        iov[iovcnt++] = (struct iovec){.iov_base = iso_wire,
                                       .iov_len = urb->num_iso_packets * USBIP_ISO_DESC_SIZE};
    }

    char what[48];
    snprintf(what, sizeof what, "CMD_SUBMIT seqnum %" PRIu32, urb->seqnum);
    size_t sent = 0;
    err = send_all(c, iov, iovcnt, what, &sent);
    free(iso_wire);
    if (err != USBIP_OK) {
        if (sent > 0) {
            mark_broken(c);
        }
        return err;
    }
    urb_table_insert(c, urb);
    return USBIP_OK;
}

usbip_err_t usbip_client_unlink_seqnum(usbip_client_t *c, uint32_t victim_seqnum,
                                       uint32_t *unlink_seqnum_out)
{
    if (!c) {
        return USBIP_ERR_INVALID_ARG;
    }
    usbip_err_t err = require_state(c, STATE_IMPORTED, "unlink");
    if (err != USBIP_OK) {
        return err;
    }
    if (c->n_unlinks >= USBIP_CLIENT_MAX_IN_FLIGHT) {
        return fail(c, USBIP_ERR_WOULD_BLOCK,
                    "unlink: %u CMD_UNLINKs already await RET_UNLINK; wait for one",
                    USBIP_CLIENT_MAX_IN_FLIGHT);
    }
    /* direction and ep are 0 in CMD_UNLINK, as the Linux vhci driver sends them. */
    usbip_urb_header_t hdr = {
        .command = USBIP_CMD_UNLINK,
        .seqnum = take_seqnum(c),
        .devid = c->devid,
    };
    hdr.u.unlink.victim_seqnum = victim_seqnum;
    uint8_t header[USBIP_URB_HEADER_SIZE];
    usbip_urb_header_encode(header, &hdr);

    char what[64];
    snprintf(what, sizeof what, "CMD_UNLINK seqnum %" PRIu32 " (victim %" PRIu32 ")", hdr.seqnum,
             victim_seqnum);
    size_t sent = 0;
    err = send_buffer(c, header, sizeof header, what, &sent);
    if (err != USBIP_OK) {
        if (sent > 0) {
            mark_broken(c);
        }
        return err;
    }
    unlink_table_insert(c, hdr.seqnum, victim_seqnum);
    if (unlink_seqnum_out) {
        *unlink_seqnum_out = hdr.seqnum;
    }
    return USBIP_OK;
}

usbip_err_t usbip_client_unlink(usbip_client_t *c, usbip_client_urb_t *victim,
                                uint32_t *unlink_seqnum_out)
{
    if (!c) {
        return USBIP_ERR_INVALID_ARG;
    }
    if (!victim) {
        return fail(c, USBIP_ERR_INVALID_ARG, "unlink: victim is NULL");
    }
    long slot = urb_table_find(c, victim->seqnum);
    if (slot < 0 || c->urbs[slot] != victim) {
        return fail(c, USBIP_ERR_NOT_FOUND, "unlink: URB seqnum %" PRIu32 " is not in flight",
                    victim->seqnum);
    }
    return usbip_client_unlink_seqnum(c, victim->seqnum, unlink_seqnum_out);
}

/* ------------------------------------------------------------- replies */

/* Check the reply's iso descriptors against the request and the header. */
static usbip_err_t check_iso_reply(usbip_client_t *c, const usbip_client_urb_t *urb,
                                   const usbip_iso_packet_t *reply, uint32_t actual_length)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < urb->num_iso_packets; i++) {
        if (reply[i].actual_length > urb->iso[i].length) {
            return fail(c, USBIP_ERR_PROTOCOL,
                        "RET_SUBMIT seqnum %" PRIu32 ": iso packet %" PRIu32
                        " actual_length %" PRIu32 " > its length %" PRIu32,
                        urb->seqnum, i, reply[i].actual_length, urb->iso[i].length);
        }
        sum += reply[i].actual_length;
    }
    if (sum != actual_length) {
        return fail(c, USBIP_ERR_PROTOCOL,
                    "RET_SUBMIT seqnum %" PRIu32 ": sum of iso actual_length %" PRIu64
                    " != actual_length %" PRIu32,
                    urb->seqnum, sum, actual_length);
    }
    return USBIP_OK;
}

/* Iso reply: packed IN data, then the descriptors. The data of packet i goes
 * back to the offset it had in the request. */
static usbip_err_t recv_iso_reply(usbip_client_t *c, usbip_client_urb_t *urb,
                                  uint32_t actual_length)
{
    uint32_t data_len = urb->dir_in ? actual_length : 0;
    size_t desc_bytes = (size_t)urb->num_iso_packets * USBIP_ISO_DESC_SIZE;
    uint8_t *scratch = malloc(desc_bytes + data_len);
    if (!scratch) {
        return fail(c, USBIP_ERR_NO_MEM, "RET_SUBMIT seqnum %" PRIu32 ": out of memory (%zu bytes)",
                    urb->seqnum, desc_bytes + data_len);
    }
    usbip_iso_packet_t *reply = (usbip_iso_packet_t *)(void *)scratch;
    uint8_t *packed = scratch + desc_bytes;

    char what[64];
    snprintf(what, sizeof what, "RET_SUBMIT seqnum %" PRIu32 ": iso data", urb->seqnum);
    usbip_err_t err = recv_exact(c, packed, data_len, what, NULL);
    if (err == USBIP_OK) {
        snprintf(what, sizeof what, "RET_SUBMIT seqnum %" PRIu32 ": iso descriptors", urb->seqnum);
        err = recv_exact(c, reply, desc_bytes, what, NULL);
    }
    if (err == USBIP_OK) {
        usbip_iso_packets_from_wire(reply, urb->num_iso_packets);
        err = check_iso_reply(c, urb, reply, actual_length);
    }
    if (err == USBIP_OK) {
        uint8_t *dest = urb->buffer;
        size_t pos = 0;
        for (uint32_t i = 0; i < urb->num_iso_packets; i++) {
            if (urb->dir_in && reply[i].actual_length > 0) {
                memcpy(dest + urb->iso[i].offset, packed + pos, reply[i].actual_length);
                pos += reply[i].actual_length;
            }
            urb->iso[i].actual_length = reply[i].actual_length;
            urb->iso[i].status = reply[i].status;
        }
    }
    free(scratch);
    return err;
}

static usbip_err_t handle_ret_submit(usbip_client_t *c, const usbip_urb_header_t *hdr,
                                     usbip_client_urb_t **done)
{
    uint32_t seqnum = hdr->seqnum;
    usbip_client_urb_t *urb = urb_table_take(c, seqnum);
    if (!urb) {
        if (was_cancelled(c, seqnum)) {
            return fail(c, USBIP_ERR_PROTOCOL,
                        "RET_SUBMIT seqnum %" PRIu32
                        ": URB was already answered by RET_UNLINK(-ECONNRESET)",
                        seqnum);
        }
        return fail(c, USBIP_ERR_PROTOCOL,
                    "RET_SUBMIT seqnum %" PRIu32 ": unknown seqnum (no CMD_SUBMIT in flight)",
                    seqnum);
    }

    int32_t actual = hdr->u.ret_submit.actual_length;
    if (actual < 0 || (uint32_t)actual > urb->length) {
        return fail(c, USBIP_ERR_PROTOCOL,
                    "RET_SUBMIT seqnum %" PRIu32 ": actual_length %" PRId32
                    " outside 0..transfer_buffer_length %" PRIu32 " (%s)",
                    seqnum, actual, urb->length, urb->dir_in ? "IN" : "OUT");
    }
    if (urb->num_iso_packets > 0) {
        int32_t npackets = hdr->u.ret_submit.number_of_packets;
        if (npackets < 0 || (uint32_t)npackets != urb->num_iso_packets) {
            return fail(c, USBIP_ERR_PROTOCOL,
                        "RET_SUBMIT seqnum %" PRIu32 ": number_of_packets %" PRId32
                        " != %" PRIu32 " in CMD_SUBMIT",
                        seqnum, npackets, urb->num_iso_packets);
        }
        usbip_err_t err = recv_iso_reply(c, urb, (uint32_t)actual);
        if (err != USBIP_OK) {
            return err;
        }
    } else if (urb->dir_in && actual > 0) {
        char what[48];
        snprintf(what, sizeof what, "RET_SUBMIT seqnum %" PRIu32 ": IN data", seqnum);
        usbip_err_t err = recv_exact(c, urb->buffer, (size_t)actual, what, NULL);
        if (err != USBIP_OK) {
            return err;
        }
    }

    urb->status = hdr->u.ret_submit.status;
    urb->actual_length = (uint32_t)actual;
    urb->start_frame_out = hdr->u.ret_submit.start_frame;
    urb->error_count = hdr->u.ret_submit.error_count;
    urb->unlinked = false;
    *done = urb;
    return USBIP_OK;
}

static usbip_err_t handle_ret_unlink(usbip_client_t *c, const usbip_urb_header_t *hdr,
                                     usbip_client_urb_t **done, int32_t *unlink_status,
                                     uint32_t *unlink_seqnum)
{
    uint32_t victim_seqnum = 0;
    if (!unlink_table_take(c, hdr->seqnum, &victim_seqnum)) {
        return fail(c, USBIP_ERR_PROTOCOL,
                    "RET_UNLINK seqnum %" PRIu32 ": unknown seqnum (no CMD_UNLINK in flight)",
                    hdr->seqnum);
    }
    int32_t status = hdr->u.ret_unlink.status;
    if (unlink_status) {
        *unlink_status = status;
    }
    if (unlink_seqnum) {
        *unlink_seqnum = hdr->seqnum;
    }
    if (status != USBIP_ECONNRESET) {
        /* 0: the victim completed before; its RET_SUBMIT already came. */
        return USBIP_OK;
    }
    usbip_client_urb_t *victim = urb_table_take(c, victim_seqnum);
    if (!victim) {
        return fail(c, USBIP_ERR_PROTOCOL,
                    "RET_UNLINK seqnum %" PRIu32 ": status -ECONNRESET but victim seqnum %" PRIu32
                    " is not in flight (already completed or never submitted)",
                    hdr->seqnum, victim_seqnum);
    }
    reset_results(victim);
    victim->status = USBIP_ECONNRESET;
    victim->unlinked = true;
    if (victim->iso) {
        for (uint32_t i = 0; i < victim->num_iso_packets; i++) {
            victim->iso[i].actual_length = 0;
            victim->iso[i].status = 0;
        }
    }
    remember_cancelled(c, victim_seqnum);
    *done = victim;
    return USBIP_OK;
}

static const char *urb_command_name(uint32_t command)
{
    switch (command) {
    case USBIP_CMD_SUBMIT: return "CMD_SUBMIT";
    case USBIP_CMD_UNLINK: return "CMD_UNLINK";
    case USBIP_RET_SUBMIT: return "RET_SUBMIT";
    case USBIP_RET_UNLINK: return "RET_UNLINK";
    default: return "?";
    }
}

/* Read and decode the next URB header. A timeout before its first byte
 * leaves the stream intact; anything else breaks it. */
static usbip_err_t recv_urb_header(usbip_client_t *c, usbip_urb_header_t *hdr)
{
    uint8_t buf[USBIP_URB_HEADER_SIZE];
    size_t got = 0;
    usbip_err_t err = recv_exact(c, buf, sizeof buf, "waiting for RET_SUBMIT/RET_UNLINK", &got);
    if (err != USBIP_OK) {
        if (got > 0 || !c->timed_out) {
            mark_broken(c);
        }
        return err;
    }
    usbip_field_error_t field = {0};
    err = usbip_urb_header_decode(buf, sizeof buf, hdr, &field);
    if (err != USBIP_OK) {
        if (!field.field || strcmp(field.field, "command") == 0) {
            fail(c, USBIP_ERR_PROTOCOL,
                 "unknown command 0x%08" PRIx32 " in URB header; a previous reply may have "
                 "carried unexpected data", be32_at(buf));
        } else {
            fail(c, USBIP_ERR_PROTOCOL, "undecodable URB header: %s = %" PRId64, field.field,
                 field.value);
        }
        mark_broken(c);
        return USBIP_ERR_PROTOCOL;
    }
    if (hdr->command != USBIP_RET_SUBMIT && hdr->command != USBIP_RET_UNLINK) {
        fail(c, USBIP_ERR_PROTOCOL, "unexpected command %" PRIu32 " (%s) from server, seqnum %" PRIu32,
             hdr->command, urb_command_name(hdr->command), hdr->seqnum);
        mark_broken(c);
        return USBIP_ERR_PROTOCOL;
    }
    return USBIP_OK;
}

usbip_err_t usbip_client_wait(usbip_client_t *c, usbip_client_urb_t **done,
                              int32_t *unlink_status, uint32_t *unlink_seqnum)
{
    if (done) {
        *done = NULL;
    }
    if (unlink_status) {
        *unlink_status = 0;
    }
    if (unlink_seqnum) {
        *unlink_seqnum = 0;
    }
    if (!c) {
        return USBIP_ERR_INVALID_ARG;
    }
    if (!done) {
        return fail(c, USBIP_ERR_INVALID_ARG, "wait: done is NULL");
    }
    /* Waiting with nothing in flight is allowed: a test may want to see that
     * no reply comes, and any reply that does is reported as unknown. */
    usbip_err_t err = require_state(c, STATE_IMPORTED, "wait");
    if (err != USBIP_OK) {
        return err;
    }
    usbip_urb_header_t hdr;
    err = recv_urb_header(c, &hdr);
    if (err != USBIP_OK) {
        return err;
    }
    if (hdr.command == USBIP_RET_SUBMIT) {
        err = handle_ret_submit(c, &hdr, done);
    } else {
        err = handle_ret_unlink(c, &hdr, done, unlink_status, unlink_seqnum);
    }
    if (err != USBIP_OK) {
        mark_broken(c);
    }
    return err;
}

/* ------------------------------------------------------ synchronous URBs */

static usbip_err_t run_sync(usbip_client_t *c, usbip_client_urb_t *urb, const char *what,
                            int32_t *status, uint32_t *actual)
{
    if (status) {
        *status = 0;
    }
    if (actual) {
        *actual = 0;
    }
    usbip_err_t err = require_state(c, STATE_IMPORTED, what);
    if (err != USBIP_OK) {
        return err;
    }
    if (c->n_urbs > 0 || c->n_unlinks > 0) {
        return fail(c, USBIP_ERR_INVALID_STATE,
                    "%s: synchronous call with %zu URBs and %zu unlinks in flight", what,
                    c->n_urbs, c->n_unlinks);
    }
    err = usbip_client_submit(c, urb);
    if (err != USBIP_OK) {
        return err;
    }
    usbip_client_urb_t *done = NULL;
    err = usbip_client_wait(c, &done, NULL, NULL);
    if (err == USBIP_OK && done != urb) {
        /* Only an unlink could complete with nothing but urb in flight. */
        err = fail(c, USBIP_ERR_PROTOCOL, "%s: reply did not complete seqnum %" PRIu32, what,
                   urb->seqnum);
    }
    if (err != USBIP_OK) {
        /* urb lives on the caller's stack: forget it, and since its reply may
         * still arrive, give up on the stream. */
        urb_table_take(c, urb->seqnum);
        mark_broken(c);
        return err;
    }
    if (status) {
        *status = urb->status;
    }
    if (actual) {
        *actual = urb->actual_length;
    }
    return USBIP_OK;
}

usbip_err_t usbip_client_control(usbip_client_t *c, uint8_t bmRequestType, uint8_t bRequest,
                                 uint16_t wValue, uint16_t wIndex, void *data, uint16_t wLength,
                                 int32_t *status, uint32_t *actual)
{
    if (!c) {
        return USBIP_ERR_INVALID_ARG;
    }
    usbip_client_urb_t urb = {
        .ep = 0,
        .dir_in = (bmRequestType & 0x80) != 0,
        .buffer = data,
        .length = wLength,
        /* The setup packet is little-endian on the wire, as on USB. */
        .setup = {bmRequestType, bRequest, (uint8_t)(wValue & 0xff), (uint8_t)(wValue >> 8),
                  (uint8_t)(wIndex & 0xff), (uint8_t)(wIndex >> 8), (uint8_t)(wLength & 0xff),
                  (uint8_t)(wLength >> 8)},
    };
    return run_sync(c, &urb, "control transfer", status, actual);
}

usbip_err_t usbip_client_transfer(usbip_client_t *c, uint8_t ep, bool dir_in, void *data,
                                  uint32_t length, int32_t *status, uint32_t *actual)
{
    if (!c) {
        return USBIP_ERR_INVALID_ARG;
    }
    usbip_client_urb_t urb = {.ep = ep, .dir_in = dir_in, .buffer = data, .length = length};
    return run_sync(c, &urb, "transfer", status, actual);
}

/* ------------------------------------------------------------ raw access */

usbip_err_t usbip_client_send_raw(usbip_client_t *c, const void *buf, size_t len)
{
    if (!c) {
        return USBIP_ERR_INVALID_ARG;
    }
    if (!buf && len > 0) {
        return fail(c, USBIP_ERR_INVALID_ARG, "send_raw: buffer is NULL");
    }
    return send_buffer(c, buf, len, "send_raw", NULL);
}

usbip_err_t usbip_client_recv_raw(usbip_client_t *c, void *buf, size_t len)
{
    if (!c) {
        return USBIP_ERR_INVALID_ARG;
    }
    if (!buf && len > 0) {
        return fail(c, USBIP_ERR_INVALID_ARG, "recv_raw: buffer is NULL");
    }
    return recv_exact(c, buf, len, NULL, NULL);
}

bool usbip_client_wait_closed(usbip_client_t *c, int timeout_ms)
{
    if (!c) {
        return false;
    }
    int64_t deadline = deadline_after(timeout_ms);
    uint8_t discard[4096];
    for (;;) {
        ssize_t n = recv(c->fd, discard, sizeof discard, MSG_DONTWAIT);
        if (n == 0) {
            return true;
        }
        if (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
            /* ECONNRESET and friends: the server is gone too. */
            return true;
        }
        /* Data or EINTR: go on reading, but a chatty peer must not keep us
         * here past the deadline. */
        int ready = n < 0 && errno != EINTR ? poll_until(c->fd, POLLIN, deadline)
                                            : (remaining_ms(deadline) == 0 ? 0 : 1);
        if (ready == 0) {
            fail(c, USBIP_ERR_IO, "wait_closed: connection still open after %d ms", timeout_ms);
            c->timed_out = true;
            return false;
        }
        if (ready < 0) {
            fail(c, USBIP_ERR_IO, "wait_closed: poll failed: %s", strerror(errno));
            return false;
        }
    }
}
