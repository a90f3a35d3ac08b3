/*
 * usbip_netloop: see the header. Written against POSIX sockets with the
 * differences of lwIP as ESP-IDF v5.5 ships it kept in the "platform" block:
 * no FD_CLOEXEC on sockets, MSG_NOSIGNAL defined but refused by
 * lwip_sendmsg (EOPNOTSUPP), IPv6 only when CONFIG_LWIP_IPV6 is set, and
 * poll() built on select() (no POLLHUP; fds must be below FD_SETSIZE).
 */
#include "usbip_netloop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "usbip_log.h"

/* ---- platform ---- */

#if defined(ESP_PLATFORM)
#include "sdkconfig.h"
#define NETLOOP_LWIP 1
#ifdef CONFIG_LWIP_IPV6
#define NETLOOP_IPV6 1
#else
#define NETLOOP_IPV6 0 /* lwIP then has no sockaddr_in6 and AF_INET6 == AF_UNSPEC */
#endif
#else
#include <sys/uio.h>
#define NETLOOP_LWIP 0
#define NETLOOP_IPV6 1
#endif

#if NETLOOP_LWIP
/* lwip_sendmsg accepts only MSG_DONTWAIT and MSG_MORE; lwIP raises no SIGPIPE. */
#define SEND_FLAGS 0
#elif defined(MSG_NOSIGNAL)
#define SEND_FLAGS MSG_NOSIGNAL
#else
#define SEND_FLAGS 0 /* macOS: SO_NOSIGPIPE is set on each connection instead */
#endif

static const char *TAG = "netloop";

#define MAX_IOV 64
#define ACCEPTS_PER_WAKEUP 16
#define ACCEPT_PAUSE_MS 100     /* out of descriptors: let sessions end first */
#define SHUTDOWN_POLL_MS 10     /* shutdown re-runs the device hook at least this often */
#define REFUSED_DRAIN_BYTES 4096
#define WAKER_DRAIN_READS 64

typedef struct {
    int fd; /* -1 once closed; the session may still wait for its URBs */
    usbip_session_t *session;
} connection_t;

struct usbip_netloop {
    usbip_netloop_config_t cfg;
    int listen_fd;
    uint16_t port;
    uint64_t accept_paused_until_ms;
    atomic_bool stop;
    bool shut_down;

    connection_t **conns;
    size_t conn_count;
    size_t conn_capacity;

    /* This iteration's poll set: waker, listener, connections, extras. */
    struct pollfd *pollfds;
    size_t pollfd_capacity;
    size_t polled_conns;
    size_t first_extra;
    size_t extra_count;

    /* Scratch for one sendmsg, here rather than on a small task stack. */
    usbip_iovec_t out[MAX_IOV];
    struct iovec iov[MAX_IOV];
};

enum { PFD_WAKER, PFD_LISTENER, PFD_FIRST_CONN };

/* ---- waker ---- */

void usbip_netloop_waker_init(usbip_netloop_waker_t *waker, int read_fd, int write_fd)
{
    waker->read_fd = read_fd;
    waker->write_fd = write_fd;
    atomic_init(&waker->pending, false);
}

void usbip_netloop_wake(void *ctx)
{
    usbip_netloop_waker_t *waker = ctx;
    if (atomic_exchange(&waker->pending, true)) {
        return; /* not drained yet: the loop will see this work too */
    }
    int saved_errno = errno; /* we may be in a signal handler */
    const uint64_t one = 1;
    ssize_t n = write(waker->write_fd, &one, sizeof one);
    if (n != (ssize_t)sizeof one && errno != EAGAIN && errno != EWOULDBLOCK) {
        atomic_store(&waker->pending, false); /* broken: let the next wake try again */
    }
    errno = saved_errno;
}

/* Clear pending before reading: a wake from now on writes again, so no wake
 * can be lost between the read and the work the loop does next. Reads stop
 * at a short read, an error, or a zero value (an ESP-IDF eventfd returns 0
 * instead of EAGAIN once drained). */
static void drain_waker(usbip_netloop_waker_t *waker)
{
    atomic_store(&waker->pending, false);
    for (int i = 0; i < WAKER_DRAIN_READS; i++) {
        uint64_t value = 0;
        if (read(waker->read_fd, &value, sizeof value) != (ssize_t)sizeof value || value == 0) {
            return;
        }
    }
}

/* ---- socket helpers ---- */

static void set_cloexec(int fd)
{
#if !NETLOOP_LWIP
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0) {
        fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    }
#else
    (void)fd; /* no exec on the firmware */
#endif
}

static bool set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL, 0);
    return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

static void set_int_option(int fd, int level, int name, const char *what, int value)
{
    if (setsockopt(fd, level, name, &value, sizeof value) < 0) {
        USBIP_LOGD(TAG, "setsockopt %s: %s", what, strerror(errno));
    }
}

/* Replies go out as soon as they are written (no Nagle delay on small
 * RET_SUBMITs), and keepalive notices a client that vanished without a FIN
 * so its session ends and the device is released. */
static void tune_connection(const usbip_netloop_t *loop, int fd)
{
    set_int_option(fd, IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY", 1);
    set_int_option(fd, SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE", 1);
#if defined(TCP_KEEPIDLE)
    if (loop->cfg.keepalive_idle_s > 0) {
        set_int_option(fd, IPPROTO_TCP, TCP_KEEPIDLE, "TCP_KEEPIDLE", loop->cfg.keepalive_idle_s);
    }
#elif defined(TCP_KEEPALIVE)
    if (loop->cfg.keepalive_idle_s > 0) { /* macOS spelling of TCP_KEEPIDLE */
        set_int_option(fd, IPPROTO_TCP, TCP_KEEPALIVE, "TCP_KEEPALIVE", loop->cfg.keepalive_idle_s);
    }
#endif
#if defined(TCP_KEEPINTVL)
    if (loop->cfg.keepalive_interval_s > 0) {
        set_int_option(fd, IPPROTO_TCP, TCP_KEEPINTVL, "TCP_KEEPINTVL",
                       loop->cfg.keepalive_interval_s);
    }
#endif
#if defined(TCP_KEEPCNT)
    if (loop->cfg.keepalive_count > 0) {
        set_int_option(fd, IPPROTO_TCP, TCP_KEEPCNT, "TCP_KEEPCNT", loop->cfg.keepalive_count);
    }
#endif
#if defined(SO_NOSIGPIPE) && !NETLOOP_LWIP
    set_int_option(fd, SOL_SOCKET, SO_NOSIGPIPE, "SO_NOSIGPIPE", 1);
#endif
}

static bool peer_address(int fd, usbip_ip_addr_t *peer)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0) {
        return false;
    }
    memset(peer, 0, sizeof *peer);
    if (ss.ss_family == AF_INET) {
        peer->family = 4;
        memcpy(peer->bytes, &((struct sockaddr_in *)&ss)->sin_addr, 4);
        return true;
    }
#if NETLOOP_IPV6
    if (ss.ss_family == AF_INET6) {
        peer->family = 6;
        memcpy(peer->bytes, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
        return true;
    }
#endif
    errno = EAFNOSUPPORT;
    return false;
}

/* ---- listening ---- */

typedef struct {
    struct sockaddr_storage ss;
    socklen_t len;
} socket_address_t;

static void any_ipv4(socket_address_t *a, uint16_t port)
{
    memset(a, 0, sizeof *a);
    struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr.s_addr = htonl(INADDR_ANY);
    a->len = sizeof *sin;
}

#if NETLOOP_IPV6
static void any_ipv6(socket_address_t *a, uint16_t port)
{
    memset(a, 0, sizeof *a); /* all-zero sin6_addr is "::" */
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    a->len = sizeof *sin6;
}
#endif

/* Numeric only: no resolver to block in, and the same on both ports. */
static bool parse_address(const char *text, uint16_t port, socket_address_t *a)
{
    memset(a, 0, sizeof *a);
    struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
    if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        a->len = sizeof *sin;
        return true;
    }
#if NETLOOP_IPV6
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
    if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        a->len = sizeof *sin6;
        return true;
    }
#endif
    return false;
}

/* A listening socket on a, or -1 with errno set. An IPv6 wildcard also
 * takes IPv4 clients (they appear as ::ffff:a.b.c.d). */
static int listen_on(const socket_address_t *a, int backlog)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    set_cloexec(fd);
    /* A restarted server may bind while old connections sit in TIME_WAIT. */
    set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR", 1);
#if NETLOOP_IPV6 && defined(IPV6_V6ONLY)
    if (a->ss.ss_family == AF_INET6) {
        set_int_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY", 0);
    }
#endif
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, backlog) < 0 ||
        !set_nonblocking(fd)) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static uint16_t bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        return 0;
    }
#if NETLOOP_IPV6
    if (ss.ss_family == AF_INET6) {
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
#endif
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int listen_everywhere(const usbip_netloop_config_t *cfg)
{
    socket_address_t a;
#if NETLOOP_IPV6
    any_ipv6(&a, cfg->port);
    int fd = listen_on(&a, cfg->listen_backlog);
    if (fd >= 0) {
        return fd;
    }
    USBIP_LOGD(TAG, "no IPv6 listener (%s): IPv4 only", strerror(errno));
#endif
    any_ipv4(&a, cfg->port);
    return listen_on(&a, cfg->listen_backlog);
}

static usbip_err_t open_listener(usbip_netloop_t *loop)
{
    const usbip_netloop_config_t *cfg = &loop->cfg;
    int fd;
    if (cfg->listen_address) {
        socket_address_t a;
        if (!parse_address(cfg->listen_address, cfg->port, &a)) {
            USBIP_LOGE(TAG, "cannot resolve listen address \"%s\": not a numeric IPv4 or IPv6 "
                            "address", cfg->listen_address);
            return USBIP_ERR_INVALID_ARG;
        }
        fd = listen_on(&a, cfg->listen_backlog);
    } else {
        fd = listen_everywhere(cfg);
    }
    if (fd < 0) {
        USBIP_LOGE(TAG, "cannot listen on %s port %u: %s",
                   cfg->listen_address ? cfg->listen_address : "all addresses",
                   (unsigned)cfg->port, strerror(errno));
        return USBIP_ERR_IO;
    }
    loop->listen_fd = fd;
    loop->port = bound_port(fd);
    return USBIP_OK;
}

/* ---- connections ---- */

static bool grow_connections(usbip_netloop_t *loop)
{
    if (loop->conn_count < loop->conn_capacity) {
        return true;
    }
    size_t capacity = loop->conn_capacity ? loop->conn_capacity * 2 : 8;
    connection_t **conns = realloc(loop->conns, capacity * sizeof *conns);
    if (!conns) {
        return false;
    }
    loop->conns = conns;
    loop->conn_capacity = capacity;
    return true;
}

/* A refused client gets a plain end of stream. Closing with its first
 * request still unread would make the stack answer with a reset, so send
 * our FIN first and drop what already arrived. */
static void close_refused(int fd)
{
    shutdown(fd, SHUT_WR);
    char scratch[256];
    for (size_t dropped = 0; dropped < REFUSED_DRAIN_BYTES;) {
        ssize_t n = recv(fd, scratch, sizeof scratch, 0);
        if (n <= 0) {
            break;
        }
        dropped += (size_t)n;
    }
    close(fd);
}

static void admit_connection(usbip_netloop_t *loop, int fd)
{
    set_cloexec(fd);
    usbip_ip_addr_t peer;
    if (!peer_address(fd, &peer)) {
        USBIP_LOGD(TAG, "connection gone before it was served: %s", strerror(errno));
        close(fd);
        return;
    }
    if (!set_nonblocking(fd)) {
        USBIP_LOGW(TAG, "cannot make a connection non-blocking (%s): closed", strerror(errno));
        close(fd);
        return;
    }
    tune_connection(loop, fd);
    connection_t *conn = calloc(1, sizeof *conn);
    if (!conn || !grow_connections(loop)) {
        USBIP_LOGE(TAG, "out of memory: connection closed");
        free(conn);
        close_refused(fd);
        return;
    }
    conn->fd = fd;
    if (usbip_server_accept(loop->cfg.server, &peer, conn, &conn->session) != USBIP_OK) {
        /* Refused (access control, too many clients): the server logged why
         * and recorded the event. */
        free(conn);
        close_refused(fd);
        return;
    }
    loop->conns[loop->conn_count++] = conn;
}

static bool out_of_descriptors(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

static void accept_pending(usbip_netloop_t *loop)
{
    for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
        int fd = accept(loop->listen_fd, NULL, NULL);
        if (fd >= 0) {
            admit_connection(loop, fd);
            continue;
        }
        if (out_of_descriptors(errno)) {
            /* The pending connection stays queued; polling the listener now
             * would spin. Try again when sessions may have ended. */
            USBIP_LOGW(TAG, "accept: %s: not accepting for %d ms", strerror(errno),
                       ACCEPT_PAUSE_MS);
            loop->accept_paused_until_ms = usbip_now_ms() + ACCEPT_PAUSE_MS;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                   errno != ECONNABORTED) {
            USBIP_LOGW(TAG, "accept: %s", strerror(errno));
        }
        return;
    }
}

static void close_connection(usbip_netloop_t *loop, connection_t *conn)
{
    if (conn->fd < 0) {
        return;
    }
    close(conn->fd);
    conn->fd = -1;
    usbip_server_connection_closed(loop->cfg.server, conn->session);
}

static bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

/* Read into the buffer the session offers until it offers none, the socket
 * is empty, or this connection's share of the iteration is used up. */
static void read_connection(usbip_netloop_t *loop, connection_t *conn)
{
    size_t budget = loop->cfg.read_budget;
    while (budget > 0 && conn->fd >= 0) {
        uint8_t *buf = NULL;
        size_t space = usbip_session_read_space(conn->session, &buf);
        if (space == 0) {
            return;
        }
        ssize_t n = recv(conn->fd, buf, space, 0);
        if (n > 0) {
            budget -= (size_t)n < budget ? (size_t)n : budget;
            if (usbip_session_input(conn->session, (size_t)n) != USBIP_OK) {
                close_connection(loop, conn); /* the session logged the field and value */
            }
        } else if (n == 0) {
            USBIP_LOGD(TAG, "%s closed the connection", usbip_session_peer(conn->session));
            close_connection(loop, conn);
        } else if (errno == EINTR) {
            continue;
        } else {
            if (!would_block(errno)) {
                USBIP_LOGI(TAG, "%s: receive failed: %s", usbip_session_peer(conn->session),
                           strerror(errno));
                close_connection(loop, conn);
            }
            return;
        }
    }
}

/* Write pending replies, each batch of PDUs in one sendmsg, until all are
 * out or the socket is full. */
static void flush_connection(usbip_netloop_t *loop, connection_t *conn)
{
    while (conn->fd >= 0) {
        size_t count = usbip_session_output(conn->session, loop->out, MAX_IOV);
        if (count == 0) {
            return;
        }
        for (size_t i = 0; i < count; i++) {
            loop->iov[i].iov_base = (void *)loop->out[i].base;
            loop->iov[i].iov_len = loop->out[i].len;
        }
        struct msghdr msg;
        memset(&msg, 0, sizeof msg);
        msg.msg_iov = loop->iov;
        msg.msg_iovlen = count; /* int on lwIP and macOS; count <= MAX_IOV */
        ssize_t n = sendmsg(conn->fd, &msg, SEND_FLAGS);
        if (n > 0) {
            usbip_session_output_done(conn->session, (size_t)n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            if (n < 0 && !would_block(errno)) {
                USBIP_LOGI(TAG, "%s: send failed: %s", usbip_session_peer(conn->session),
                           strerror(errno));
                close_connection(loop, conn);
            }
            return;
        }
    }
}

static bool has_output(connection_t *conn)
{
    usbip_iovec_t one;
    return usbip_session_output(conn->session, &one, 1) > 0;
}

/* usbip_server_reap callback: the session of this connection is gone. */
static void free_connection(void *ctx, void *user)
{
    usbip_netloop_t *loop = ctx;
    for (size_t i = 0; i < loop->conn_count; i++) {
        if (loop->conns[i] == user) {
            loop->conns[i] = loop->conns[--loop->conn_count];
            break;
        }
    }
    free(user);
}

/* ---- the loop ---- */

void usbip_netloop_config_default(usbip_netloop_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->listen_backlog = 8;
    cfg->max_wait_ms = 1000;
    cfg->read_budget = 1024u * 1024u;
    cfg->keepalive_idle_s = 15;
    cfg->keepalive_interval_s = 5;
    cfg->keepalive_count = 3;
    cfg->shutdown_grace_ms = 3000;
}

static bool config_valid(const usbip_netloop_config_t *cfg)
{
    if (!cfg->server || !cfg->waker || cfg->waker->read_fd < 0 || cfg->waker->write_fd < 0) {
        USBIP_LOGE(TAG, "config: server and an initialised waker are required");
        return false;
    }
    if ((cfg->extra.fill == NULL) != (cfg->extra.ready == NULL)) {
        USBIP_LOGE(TAG, "config: extra descriptors need both fill and ready");
        return false;
    }
    if (cfg->read_budget == 0 || cfg->listen_backlog <= 0 || cfg->max_wait_ms < 0) {
        USBIP_LOGE(TAG, "config: read_budget and listen_backlog must be > 0, max_wait_ms >= 0");
        return false;
    }
    return true;
}

usbip_err_t usbip_netloop_create(const usbip_netloop_config_t *cfg, usbip_netloop_t **out)
{
    if (!cfg || !out || !config_valid(cfg)) {
        return USBIP_ERR_INVALID_ARG;
    }
    usbip_netloop_t *loop = calloc(1, sizeof *loop);
    if (!loop) {
        return USBIP_ERR_NO_MEM;
    }
    loop->cfg = *cfg;
    loop->listen_fd = -1;
    atomic_init(&loop->stop, false);
    usbip_err_t err = open_listener(loop);
    loop->cfg.listen_address = NULL; /* the caller's string, needed only to open */
    if (err != USBIP_OK) {
        free(loop);
        return err;
    }
    *out = loop;
    return USBIP_OK;
}

uint16_t usbip_netloop_port(const usbip_netloop_t *loop) { return loop->port; }

size_t usbip_netloop_connection_count(const usbip_netloop_t *loop)
{
    size_t open = 0;
    for (size_t i = 0; i < loop->conn_count; i++) {
        open += loop->conns[i]->fd >= 0;
    }
    return open;
}

void usbip_netloop_stop(usbip_netloop_t *loop)
{
    atomic_store(&loop->stop, true);
    usbip_netloop_wake(loop->cfg.waker);
}

bool usbip_netloop_stopping(const usbip_netloop_t *loop)
{
    return atomic_load(&((usbip_netloop_t *)loop)->stop);
}

static void poll_devices(usbip_netloop_t *loop)
{
    if (loop->cfg.poll_devices) {
        loop->cfg.poll_devices(loop->cfg.device_ctx, usbip_now_ms());
    }
}

/* Deliver completions, flush replies, close what must close, free what finished. */
static void service_sessions(usbip_netloop_t *loop)
{
    poll_devices(loop);
    for (size_t i = 0; i < loop->conn_count; i++) {
        connection_t *conn = loop->conns[i];
        flush_connection(loop, conn);
        if (conn->fd >= 0 && usbip_session_wants_close(conn->session)) {
            close_connection(loop, conn);
        }
    }
    usbip_server_reap(loop->cfg.server, free_connection, loop);
}

static short connection_events(connection_t *conn)
{
    if (conn->fd < 0) {
        return 0;
    }
    uint8_t *unused;
    short events = 0;
    if (usbip_session_read_space(conn->session, &unused) > 0) {
        events |= POLLIN;
    }
    if (has_output(conn)) {
        events |= POLLOUT;
    }
    return events;
}

static bool reserve_pollfds(usbip_netloop_t *loop, size_t need)
{
    if (need <= loop->pollfd_capacity) {
        return true;
    }
    struct pollfd *pfds = realloc(loop->pollfds, need * sizeof *pfds);
    if (!pfds) {
        return false;
    }
    loop->pollfds = pfds;
    loop->pollfd_capacity = need;
    return true;
}

static bool accepting(const usbip_netloop_t *loop, uint64_t now)
{
    return loop->listen_fd >= 0 && now >= loop->accept_paused_until_ms;
}

/* A connection that wants nothing gets fd -1, which poll() skips: a session
 * at a limit is not read, and one with nothing to send is not woken for
 * POLLOUT. */
static bool build_pollfds(usbip_netloop_t *loop, size_t *nfds)
{
    size_t need = PFD_FIRST_CONN + loop->conn_count + loop->cfg.extra.max_fds;
    if (!reserve_pollfds(loop, need)) {
        return false;
    }
    struct pollfd *pfds = loop->pollfds;
    size_t n = 0;
    pfds[n++] = (struct pollfd){.fd = loop->cfg.waker->read_fd, .events = POLLIN};
    pfds[n++] = (struct pollfd){.fd = accepting(loop, usbip_now_ms()) ? loop->listen_fd : -1,
                                .events = POLLIN};
    for (size_t i = 0; i < loop->conn_count; i++) {
        short events = connection_events(loop->conns[i]);
        pfds[n++] = (struct pollfd){.fd = events ? loop->conns[i]->fd : -1, .events = events};
    }
    loop->polled_conns = loop->conn_count;
    loop->first_extra = n;
    loop->extra_count = 0;
    if (loop->cfg.extra.fill) {
        size_t extra = loop->cfg.extra.fill(loop->cfg.extra.ctx, pfds + n, loop->cfg.extra.max_fds);
        loop->extra_count = extra < loop->cfg.extra.max_fds ? extra : loop->cfg.extra.max_fds;
    }
    *nfds = n + loop->extra_count;
    return true;
}

static int min_timeout(int a, int b)
{
    if (a < 0) {
        return b;
    }
    return b < 0 || a < b ? a : b;
}

static int poll_timeout(const usbip_netloop_t *loop, int max_wait_ms)
{
    uint64_t now = usbip_now_ms();
    int timeout = max_wait_ms;
    if (loop->cfg.next_timeout_ms) {
        timeout = min_timeout(timeout, loop->cfg.next_timeout_ms(loop->cfg.device_ctx, now));
    }
    if (loop->listen_fd >= 0 && now < loop->accept_paused_until_ms) {
        timeout = min_timeout(timeout, (int)(loop->accept_paused_until_ms - now));
    }
    return timeout;
}

static void handle_events(usbip_netloop_t *loop)
{
    const struct pollfd *pfds = loop->pollfds;
    if (pfds[PFD_WAKER].revents) {
        drain_waker(loop->cfg.waker);
    }
    /* Connections before accepting, which may grow (and move) the array. */
    for (size_t i = 0; i < loop->polled_conns && i < loop->conn_count; i++) {
        short revents = pfds[PFD_FIRST_CONN + i].revents;
        connection_t *conn = loop->conns[i];
        if (revents & (POLLIN | POLLHUP | POLLERR)) {
            read_connection(loop, conn); /* a hang-up or error shows as recv() 0 or -1 */
        }
        if (revents & POLLOUT) {
            flush_connection(loop, conn);
        }
    }
    if (pfds[PFD_LISTENER].revents & (POLLIN | POLLERR)) {
        accept_pending(loop);
    }
    if (loop->cfg.extra.ready) {
        loop->cfg.extra.ready(loop->cfg.extra.ctx, pfds + loop->first_extra, loop->extra_count,
                              usbip_now_ms());
    }
}

bool usbip_netloop_step(usbip_netloop_t *loop, int max_wait_ms)
{
    service_sessions(loop);
    size_t nfds = 0;
    if (!build_pollfds(loop, &nfds)) {
        USBIP_LOGE(TAG, "out of memory for the poll set");
        return false;
    }
    int rc = poll(loop->pollfds, (nfds_t)nfds, poll_timeout(loop, max_wait_ms));
    if (rc < 0) {
        if (errno == EINTR) {
            return true;
        }
        USBIP_LOGE(TAG, "poll: %s", strerror(errno));
        return false;
    }
    handle_events(loop); /* also after a timeout: the extras' timers */
    return true;
}

void usbip_netloop_run(usbip_netloop_t *loop)
{
    while (!atomic_load(&loop->stop)) {
        if (!usbip_netloop_step(loop, loop->cfg.max_wait_ms)) {
            USBIP_LOGE(TAG, "the network loop cannot go on: shutting down");
            break;
        }
    }
    usbip_netloop_shutdown(loop);
}

/* Sleep until woken (a completion) or timeout_ms. */
static void wait_for_wake(usbip_netloop_t *loop, int timeout_ms)
{
    struct pollfd pfd = {.fd = loop->cfg.waker->read_fd, .events = POLLIN};
    if (poll(&pfd, 1, timeout_ms) > 0) {
        drain_waker(loop->cfg.waker);
    }
}

static void close_listener(usbip_netloop_t *loop)
{
    if (loop->listen_fd >= 0) {
        close(loop->listen_fd);
        loop->listen_fd = -1;
    }
}

void usbip_netloop_shutdown(usbip_netloop_t *loop)
{
    if (loop->shut_down) {
        return;
    }
    loop->shut_down = true;
    close_listener(loop);
    usbip_server_close_all(loop->cfg.server, "server shutting down");
    for (size_t i = 0; i < loop->conn_count; i++) {
        close_connection(loop, loop->conns[i]);
    }
    const uint64_t deadline = usbip_now_ms() + loop->cfg.shutdown_grace_ms;
    for (;;) {
        service_sessions(loop);
        uint64_t now = usbip_now_ms();
        if (usbip_server_session_count(loop->cfg.server) == 0 || now >= deadline) {
            break;
        }
        int timeout = min_timeout((int)(deadline - now), SHUTDOWN_POLL_MS);
        if (loop->cfg.next_timeout_ms) {
            timeout = min_timeout(loop->cfg.next_timeout_ms(loop->cfg.device_ctx, now), timeout);
        }
        wait_for_wake(loop, timeout);
    }
    size_t left = usbip_server_session_count(loop->cfg.server);
    if (left > 0) {
        USBIP_LOGW(TAG, "%zu session(s) still waiting for their device at shutdown", left);
    }
}

void usbip_netloop_destroy(usbip_netloop_t *loop)
{
    if (!loop) {
        return;
    }
    close_listener(loop);
    for (size_t i = 0; i < loop->conn_count; i++) {
        if (loop->conns[i]->fd >= 0) {
            close(loop->conns[i]->fd);
        }
        free(loop->conns[i]);
    }
    free(loop->conns);
    free(loop->pollfds);
    free(loop);
}
