#include "server_loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "fd_util.h"
#include "usbip_log.h"

static const char *TAG = "loop";

#define MAX_LISTENERS 2
#define MAX_IOV 64
#define READ_BUDGET_PER_WAKEUP (1024u * 1024u) /* fairness between connections */
#define SHUTDOWN_GRACE_MS 3000
#define MAX_CONTROL_CONNS 8

typedef struct {
    int fd;
    usbip_session_t *session;
} connection_t;

struct server_loop {
    usbip_server_t *srv;
    device_set_t *devices;
    int listen_fds[MAX_LISTENERS];
    size_t listen_count;
    int control_fd;
    control_conn_t *ctl_conns[MAX_CONTROL_CONNS];
    size_t ctl_count;
    size_t ctl_first_pollfd; /* index of ctl_conns[0] in pollfds */
    size_t ctl_polled;       /* control connections in the last pollfd set */
    int wake_pipe[2];
    volatile sig_atomic_t stop;
    uint16_t port;
    connection_t **conns;
    size_t conn_count;
    size_t conn_capacity;
    struct pollfd *pollfds;
};

uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- listening ---- */

static int listen_on(const struct addrinfo *ai, bool v6only)
{
    int fd = socket_cloexec(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) {
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6) {
        int v6 = v6only ? 1 : 0;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof v6);
    }
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 16) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    fd_set_nonblocking(fd);
    return fd;
}

static uint16_t bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        return 0;
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static usbip_err_t open_listeners(server_loop_t *loop, const char *address, uint16_t port)
{
    char port_text[8];
    snprintf(port_text, sizeof port_text, "%u", (unsigned)port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    hints.ai_family = address ? AF_UNSPEC : AF_INET6;
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(address, port_text, &hints, &res);
    if (rc != 0 && !address) {
        hints.ai_family = AF_INET; /* no IPv6 on this host */
        rc = getaddrinfo(NULL, port_text, &hints, &res);
    }
    if (rc != 0) {
        USBIP_LOGE(TAG, "cannot resolve listen address \"%s\": %s", address ? address : "*",
                   gai_strerror(rc));
        return USBIP_ERR_INVALID_ARG;
    }
    int fd = listen_on(res, false);
    if (fd < 0 && !address && res->ai_family == AF_INET6) {
        freeaddrinfo(res);
        hints.ai_family = AF_INET;
        if (getaddrinfo(NULL, port_text, &hints, &res) == 0) {
            fd = listen_on(res, false);
        }
    }
    int saved = errno;
    freeaddrinfo(res);
    if (fd < 0) {
        USBIP_LOGE(TAG, "cannot listen on %s port %u: %s", address ? address : "all addresses",
                   (unsigned)port, strerror(saved));
        return USBIP_ERR_IO;
    }
    loop->listen_fds[loop->listen_count++] = fd;
    loop->port = bound_port(fd);
    return USBIP_OK;
}

/* ---- connections ---- */

static bool peer_address(int fd, usbip_ip_addr_t *peer)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0) {
        return false;
    }
    memset(peer, 0, sizeof *peer);
    if (ss.ss_family == AF_INET) {
        peer->family = 4;
        memcpy(peer->bytes, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    } else {
        peer->family = 6;
        memcpy(peer->bytes, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    }
    return true;
}

static void tune_socket(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    fd_set_nonblocking(fd);
}

static bool grow_connections(server_loop_t *loop)
{
    if (loop->conn_count < loop->conn_capacity) {
        return true;
    }
    size_t capacity = loop->conn_capacity ? loop->conn_capacity * 2 : 16;
    connection_t **conns = realloc(loop->conns, capacity * sizeof *conns);
    if (!conns) {
        return false;
    }
    loop->conns = conns;
    loop->conn_capacity = capacity;
    return true;
}

static void accept_connection(server_loop_t *loop, int listen_fd)
{
    int fd = accept_cloexec(listen_fd);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            USBIP_LOGW(TAG, "accept: %s", strerror(errno));
        }
        return;
    }
    usbip_ip_addr_t peer;
    connection_t *conn = calloc(1, sizeof *conn);
    if (!conn || !peer_address(fd, &peer) || !grow_connections(loop)) {
        free(conn);
        close(fd);
        return;
    }
    tune_socket(fd);
    conn->fd = fd;
    usbip_err_t err = usbip_server_accept(loop->srv, &peer, conn, &conn->session);
    if (err != USBIP_OK) {
        /* Refused (access control or too many clients): the event log says why. */
        free(conn);
        close(fd);
        return;
    }
    loop->conns[loop->conn_count++] = conn;
}

static void close_connection(server_loop_t *loop, connection_t *conn)
{
    if (conn->fd < 0) {
        return;
    }
    close(conn->fd);
    conn->fd = -1;
    usbip_server_connection_closed(loop->srv, conn->session);
}

static void read_connection(server_loop_t *loop, connection_t *conn)
{
    size_t budget = READ_BUDGET_PER_WAKEUP;
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
                close_connection(loop, conn);
            }
        } else if (n == 0) {
            USBIP_LOGD(TAG, "%s closed the connection", usbip_session_peer(conn->session));
            close_connection(loop, conn);
        } else if (errno == EINTR) {
            continue;
        } else {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                USBIP_LOGI(TAG, "%s: receive failed: %s", usbip_session_peer(conn->session),
                           strerror(errno));
                close_connection(loop, conn);
            }
            return;
        }
    }
}

/* Write pending replies: each batch of PDUs leaves in one sendmsg. */
static void flush_connection(server_loop_t *loop, connection_t *conn)
{
    while (conn->fd >= 0) {
        usbip_iovec_t out[MAX_IOV];
        size_t count = usbip_session_output(conn->session, out, MAX_IOV);
        if (count == 0) {
            return;
        }
        struct iovec iov[MAX_IOV];
        for (size_t i = 0; i < count; i++) {
            iov[i].iov_base = (void *)out[i].base;
            iov[i].iov_len = out[i].len;
        }
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = count};
        ssize_t n = sendmsg(conn->fd, &msg, MSG_NOSIGNAL);
        if (n > 0) {
            usbip_session_output_done(conn->session, (size_t)n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
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

static void free_connection(void *ctx, void *user)
{
    server_loop_t *loop = ctx;
    for (size_t i = 0; i < loop->conn_count; i++) {
        if (loop->conns[i] == user) {
            loop->conns[i] = loop->conns[--loop->conn_count];
            break;
        }
    }
    free(user);
}

/* ---- the loop ---- */

usbip_err_t server_loop_create(usbip_server_t *srv, device_set_t *devices, const char *address,
                               uint16_t port, int control_fd, server_loop_t **out)
{
    server_loop_t *loop = calloc(1, sizeof *loop);
    if (!loop) {
        return USBIP_ERR_NO_MEM;
    }
    loop->srv = srv;
    loop->devices = devices;
    loop->control_fd = control_fd;
    loop->wake_pipe[0] = loop->wake_pipe[1] = -1;
    if (pipe(loop->wake_pipe) < 0) {
        free(loop);
        return USBIP_ERR_IO;
    }
    for (int i = 0; i < 2; i++) {
        fd_set_nonblocking(fd_set_cloexec(loop->wake_pipe[i]));
    }
    usbip_err_t err = open_listeners(loop, address, port);
    if (err != USBIP_OK) {
        server_loop_destroy(loop);
        return err;
    }
    *out = loop;
    return USBIP_OK;
}

uint16_t server_loop_port(const server_loop_t *loop) { return loop->port; }

void server_loop_stop(server_loop_t *loop)
{
    loop->stop = 1;
    char byte = 1;
    ssize_t ignored = write(loop->wake_pipe[1], &byte, 1);
    (void)ignored;
}

/* Deliver completions, flush replies, close what must close, free what finished. */
static void service_sessions(server_loop_t *loop)
{
    device_set_poll(loop->devices, monotonic_ms());
    for (size_t i = 0; i < loop->conn_count; i++) {
        connection_t *conn = loop->conns[i];
        flush_connection(loop, conn);
        if (conn->fd >= 0 && usbip_session_wants_close(conn->session)) {
            close_connection(loop, conn);
        }
    }
    usbip_server_reap(loop->srv, free_connection, loop);
}

static size_t build_pollfds(server_loop_t *loop)
{
    size_t need = 2 + loop->listen_count + loop->conn_count + loop->ctl_count;
    struct pollfd *pfds = realloc(loop->pollfds, need * sizeof *pfds);
    if (!pfds) {
        return 0;
    }
    loop->pollfds = pfds;
    size_t n = 0;
    pfds[n++] = (struct pollfd){.fd = loop->wake_pipe[0], .events = POLLIN};
    pfds[n++] = (struct pollfd){.fd = loop->control_fd, .events = POLLIN};
    for (size_t i = 0; i < loop->listen_count; i++) {
        pfds[n++] = (struct pollfd){.fd = loop->listen_fds[i], .events = POLLIN};
    }
    for (size_t i = 0; i < loop->conn_count; i++) {
        connection_t *conn = loop->conns[i];
        uint8_t *unused;
        short events = 0;
        if (conn->fd >= 0 && usbip_session_read_space(conn->session, &unused) > 0) {
            events |= POLLIN;
        }
        if (conn->fd >= 0 && has_output(conn)) {
            events |= POLLOUT;
        }
        pfds[n++] = (struct pollfd){.fd = events ? conn->fd : -1, .events = events};
    }
    loop->ctl_first_pollfd = n;
    loop->ctl_polled = loop->ctl_count;
    for (size_t i = 0; i < loop->ctl_count; i++) {
        control_conn_t *c = loop->ctl_conns[i];
        pfds[n++] = (struct pollfd){.fd = control_conn_fd(c), .events = control_conn_events(c)};
    }
    return n;
}

static void remove_control_conn(server_loop_t *loop, size_t i)
{
    control_conn_close(loop->ctl_conns[i]);
    loop->ctl_conns[i] = loop->ctl_conns[--loop->ctl_count];
    loop->ctl_conns[loop->ctl_count] = NULL;
}

/* Control connections: serve the ready ones, drop the idle ones, accept new
 * ones. Each does non-blocking I/O only, so a slow control client never
 * holds up the USB/IP sessions. */
static void handle_control(server_loop_t *loop, short listen_revents)
{
    const uint64_t now = monotonic_ms();
    /* Backwards: removing swaps in the last entry, which is already done. */
    for (size_t i = loop->ctl_polled; i-- > 0;) {
        short revents = loop->pollfds[loop->ctl_first_pollfd + i].revents;
        if (revents && !control_conn_service(loop->ctl_conns[i], revents, now, loop->srv,
                                             loop->devices)) {
            remove_control_conn(loop, i);
        }
    }
    for (size_t i = loop->ctl_count; i-- > 0;) {
        if (control_conn_expired(loop->ctl_conns[i], now)) {
            USBIP_LOGW(TAG, "control connection idle for %d ms: closed", CONTROL_IDLE_MS);
            remove_control_conn(loop, i);
        }
    }
    if (!(listen_revents & POLLIN)) {
        return;
    }
    control_conn_t *c;
    while ((c = control_accept(loop->control_fd, now)) != NULL) {
        if (loop->ctl_count == MAX_CONTROL_CONNS) {
            USBIP_LOGW(TAG, "more than %d control connections at once: refused",
                       MAX_CONTROL_CONNS);
            control_conn_close(c);
            continue;
        }
        loop->ctl_conns[loop->ctl_count++] = c;
        /* Most commands are already there: serve at once. */
        if (!control_conn_service(c, POLLIN, now, loop->srv, loop->devices)) {
            remove_control_conn(loop, loop->ctl_count - 1);
        }
    }
}

static void handle_events(server_loop_t *loop)
{
    struct pollfd *pfds = loop->pollfds;
    if (pfds[0].revents) {
        char drain[16];
        while (read(loop->wake_pipe[0], drain, sizeof drain) > 0) {
        }
    }
    size_t first_conn = 2 + loop->listen_count;
    /* Connections first: accepting may reorder the connection array. */
    size_t conn_fds = loop->ctl_first_pollfd - first_conn;
    for (size_t i = 0; i < conn_fds && i < loop->conn_count; i++) {
        short revents = pfds[first_conn + i].revents;
        connection_t *conn = loop->conns[i];
        if (revents & (POLLIN | POLLHUP | POLLERR)) {
            read_connection(loop, conn);
        }
        if (revents & POLLOUT) {
            flush_connection(loop, conn);
        }
    }
    for (size_t i = 0; i < loop->listen_count; i++) {
        if (pfds[2 + i].revents & POLLIN) {
            accept_connection(loop, loop->listen_fds[i]);
        }
    }
    handle_control(loop, pfds[1].revents);
}

static int poll_timeout(server_loop_t *loop)
{
    int timeout = device_set_next_timeout_ms(loop->devices, monotonic_ms());
    return timeout < 0 || timeout > 1000 ? 1000 : timeout;
}

static void shut_down_sessions(server_loop_t *loop)
{
    for (size_t i = 0; i < loop->listen_count; i++) {
        close(loop->listen_fds[i]);
    }
    loop->listen_count = 0;
    usbip_server_close_all(loop->srv, "server shutting down");
    for (size_t i = 0; i < loop->conn_count; i++) {
        close_connection(loop, loop->conns[i]);
    }
    const uint64_t deadline = monotonic_ms() + SHUTDOWN_GRACE_MS;
    while (usbip_server_session_count(loop->srv) > 0 && monotonic_ms() < deadline) {
        service_sessions(loop);
        if (usbip_server_session_count(loop->srv) > 0) {
            poll(NULL, 0, 2);
        }
    }
    if (usbip_server_session_count(loop->srv) > 0) {
        USBIP_LOGW(TAG, "%zu session(s) still waiting for their device at shutdown",
                   usbip_server_session_count(loop->srv));
    }
}

void server_loop_run(server_loop_t *loop)
{
    while (!loop->stop) {
        service_sessions(loop);
        size_t nfds = build_pollfds(loop);
        if (nfds == 0) {
            USBIP_LOGE(TAG, "out of memory");
            break;
        }
        int rc = poll(loop->pollfds, nfds, poll_timeout(loop));
        if (rc < 0 && errno != EINTR) {
            USBIP_LOGE(TAG, "poll: %s", strerror(errno));
            break;
        }
        if (rc > 0) {
            handle_events(loop);
        } else if (loop->ctl_count > 0) {
            handle_control(loop, 0); /* idle timeouts */
        }
    }
    shut_down_sessions(loop);
}

void server_loop_destroy(server_loop_t *loop)
{
    if (!loop) {
        return;
    }
    for (size_t i = 0; i < loop->listen_count; i++) {
        close(loop->listen_fds[i]);
    }
    for (size_t i = 0; i < loop->conn_count; i++) {
        if (loop->conns[i]->fd >= 0) {
            close(loop->conns[i]->fd);
        }
        free(loop->conns[i]);
    }
    for (size_t i = 0; i < loop->ctl_count; i++) {
        control_conn_close(loop->ctl_conns[i]);
    }
    if (loop->wake_pipe[0] >= 0) {
        close(loop->wake_pipe[0]);
        close(loop->wake_pipe[1]);
    }
    free(loop->conns);
    free(loop->pollfds);
    free(loop);
}
