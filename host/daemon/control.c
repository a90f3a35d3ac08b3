#include "control.h"
#include "fd_util.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "usbip_log.h"

static const char *TAG = "control";

#define CONTROL_LINE_MAX 1024
#define CONTROL_REPLY_MAX 16384
#define CONTROL_CLIENT_TIMEOUT_S 10

static bool fill_unix_address(const char *path, struct sockaddr_un *addr)
{
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof addr->sun_path) {
        return false;
    }
    strcpy(addr->sun_path, path);
    return true;
}

int control_listen(const char *path)
{
    struct sockaddr_un addr;
    if (!fill_unix_address(path, &addr)) {
        USBIP_LOGE(TAG, "control socket path \"%s\" is too long", path);
        return -1;
    }
    int fd = socket_cloexec(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) {
        USBIP_LOGE(TAG, "socket: %s", strerror(errno));
        return -1;
    }
    unlink(path);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 8) < 0) {
        USBIP_LOGE(TAG, "cannot listen on control socket \"%s\": %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    fd_set_nonblocking(fd); /* the poll loop accepts; never block it */
    return fd;
}

static void reply_printf(char *reply, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reply_printf(char *reply, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reply, len, fmt, ap);
    va_end(ap);
}

static void list_sessions(usbip_server_t *srv, char *reply, size_t len)
{
    size_t used = (size_t)snprintf(reply, len, "ok\n");
    for (size_t i = 0; i < usbip_server_session_count(srv) && used < len; i++) {
        usbip_session_t *s = usbip_server_session_at(srv, i);
        const usbip_stats_t *st = usbip_session_stats(s);
        const usbip_registry_entry_t *entry = usbip_session_device(s);
        int n = snprintf(reply + used, len - used,
                         "%s device=%s urbs=%" PRIu64 " in=%" PRIu64 " out=%" PRIu64
                         " errors=%" PRIu64 "\n",
                         usbip_session_peer(s), entry ? entry->dev->record.busid : "-",
                         st->urbs_completed, st->bytes_in, st->bytes_out, st->errors);
        used += n > 0 ? (size_t)n : 0;
    }
}

static void list_events(usbip_server_t *srv, const char *after, char *reply, size_t len)
{
    uint64_t after_id = after ? strtoull(after, NULL, 10) : 0;
    usbip_event_t events[32];
    size_t n = usbip_event_log_read(usbip_server_events(srv), after_id, events, 32);
    size_t used = (size_t)snprintf(reply, len, "ok\n");
    for (size_t i = 0; i < n && used < len; i++) {
        int w = snprintf(reply + used, len - used, "%" PRIu64 " %s busid=%s peer=%s %s\n",
                         events[i].id, usbip_event_type_name(events[i].type),
                         events[i].busid[0] ? events[i].busid : "-",
                         events[i].peer[0] ? events[i].peer : "-", events[i].message);
        used += w > 0 ? (size_t)w : 0;
    }
}

static void change_access(usbip_server_t *srv, const char *verb, const char *arg, char *reply,
                          size_t len)
{
    usbip_settings_t settings = *usbip_server_settings(srv);
    char err[160] = "";
    if (strcmp(verb, "access") == 0) {
        if (!arg || usbip_access_mode_parse(arg, &settings.acl.mode) != USBIP_OK) {
            reply_printf(reply, len, "error: access takes open or closed, not \"%s\"\n",
                         arg ? arg : "");
            return;
        }
    } else if (usbip_acl_set_list(&settings.acl, arg ? arg : "", err, sizeof err) != USBIP_OK) {
        reply_printf(reply, len, "error: %s\n", err);
        return;
    }
    usbip_err_t rc = usbip_server_apply_settings(srv, &settings);
    if (rc != USBIP_OK) {
        reply_printf(reply, len, "error: settings not saved: %s\n", usbip_err_name(rc));
        return;
    }
    reply_printf(reply, len, "ok\n");
}

void control_execute(const char *line, usbip_server_t *srv, device_set_t *devices, char *reply,
                     size_t reply_len)
{
    char verb[32] = "";
    const char *arg = NULL;
    size_t verb_len = strcspn(line, " ");
    if (verb_len == 0 || verb_len >= sizeof verb) {
        reply_printf(reply, reply_len, "error: empty or unknown command\n");
        return;
    }
    memcpy(verb, line, verb_len);
    if (line[verb_len] == ' ') {
        arg = line + verb_len + 1;
    }
    char err[256] = "";
    if (strcmp(verb, "list") == 0) {
        size_t used = (size_t)snprintf(reply, reply_len, "ok\n");
        device_set_list(devices, reply + used, reply_len - used);
    } else if (strcmp(verb, "plug") == 0) {
        char busid[32];
        if (!arg || device_set_plug(devices, arg, busid, err, sizeof err) != USBIP_OK) {
            reply_printf(reply, reply_len, "error: %s\n", arg ? err : "plug needs a device spec");
        } else {
            reply_printf(reply, reply_len, "ok %s\n", busid);
        }
    } else if (strcmp(verb, "unplug") == 0) {
        if (!arg || device_set_unplug(devices, arg, err, sizeof err) != USBIP_OK) {
            reply_printf(reply, reply_len, "error: %s\n", arg ? err : "unplug needs a bus id");
        } else {
            reply_printf(reply, reply_len, "ok\n");
        }
    } else if (strcmp(verb, "status") == 0) {
        char state[256];
        if (!arg || device_set_describe(devices, arg, state, sizeof state) != USBIP_OK) {
            reply_printf(reply, reply_len, "error: no device at bus id \"%s\"\n", arg ? arg : "");
        } else {
            reply_printf(reply, reply_len, "ok %s\n", state);
        }
    } else if (strcmp(verb, "sessions") == 0) {
        list_sessions(srv, reply, reply_len);
    } else if (strcmp(verb, "events") == 0) {
        list_events(srv, arg, reply, reply_len);
    } else if (strcmp(verb, "access") == 0 || strcmp(verb, "allow") == 0) {
        change_access(srv, verb, arg, reply, reply_len);
    } else {
        reply_printf(reply, reply_len, "error: unknown command \"%s\" (see --help)\n", verb);
    }
}

struct control_conn {
    int fd;
    char line[CONTROL_LINE_MAX];
    size_t line_len;
    char *reply; /* NULL while the command line is being read */
    size_t reply_len, reply_sent;
    uint64_t deadline_ms;
};

control_conn_t *control_accept(int listen_fd, uint64_t now_ms)
{
    int fd = accept_cloexec(listen_fd);
    if (fd < 0) {
        return NULL;
    }
    control_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return NULL;
    }
    fd_set_nonblocking(fd);
    c->fd = fd;
    c->deadline_ms = now_ms + CONTROL_IDLE_MS;
    return c;
}

int control_conn_fd(const control_conn_t *c) { return c->fd; }

short control_conn_events(const control_conn_t *c) { return c->reply ? POLLOUT : POLLIN; }

bool control_conn_expired(const control_conn_t *c, uint64_t now_ms)
{
    return now_ms >= c->deadline_ms;
}

void control_conn_close(control_conn_t *c)
{
    if (!c) {
        return;
    }
    close(c->fd);
    free(c->reply);
    free(c);
}

/* The line is complete (newline, EOF, or full): run it and start the reply. */
static bool run_command(control_conn_t *c, usbip_server_t *srv, device_set_t *devices)
{
    c->line[c->line_len] = '\0';
    if (c->line_len == 0) {
        return false; /* nothing asked */
    }
    c->reply = malloc(CONTROL_REPLY_MAX);
    if (!c->reply) {
        return false;
    }
    USBIP_LOGD(TAG, "command: %s", c->line);
    control_execute(c->line, srv, devices, c->reply, CONTROL_REPLY_MAX);
    c->reply_len = strlen(c->reply);
    c->reply_sent = 0;
    return true;
}

static bool read_command(control_conn_t *c, usbip_server_t *srv, device_set_t *devices)
{
    for (;;) {
        char *nl = memchr(c->line, '\n', c->line_len);
        if (nl) {
            c->line_len = (size_t)(nl - c->line);
            return run_command(c, srv, devices);
        }
        if (c->line_len + 1 >= sizeof c->line) {
            return run_command(c, srv, devices); /* over-long: run what fits */
        }
        ssize_t n = read(c->fd, c->line + c->line_len, sizeof c->line - 1 - c->line_len);
        if (n > 0) {
            c->line_len += (size_t)n;
        } else if (n == 0) {
            return run_command(c, srv, devices); /* EOF ends the line too */
        } else if (errno == EINTR) {
            continue;
        } else {
            return errno == EAGAIN || errno == EWOULDBLOCK;
        }
    }
}

static bool write_reply(control_conn_t *c)
{
    while (c->reply_sent < c->reply_len) {
        ssize_t n = send(c->fd, c->reply + c->reply_sent, c->reply_len - c->reply_sent,
                         MSG_NOSIGNAL);
        if (n > 0) {
            c->reply_sent += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
        }
    }
    return false; /* all sent: done */
}

bool control_conn_service(control_conn_t *c, short revents, uint64_t now_ms,
                          usbip_server_t *srv, device_set_t *devices)
{
    if (revents & (POLLERR | POLLNVAL)) {
        return false;
    }
    bool more;
    if (!c->reply) {
        more = read_command(c, srv, devices);
        if (more && c->reply) {
            more = write_reply(c); /* usually fits at once */
        }
    } else {
        more = write_reply(c);
    }
    if (more) {
        c->deadline_ms = now_ms + CONTROL_IDLE_MS;
    }
    return more;
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n <= 0) {
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

int control_client_main(int argc, char **argv)
{
    const char *path = NULL;
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "--control") == 0) {
        path = argv[i + 1];
        i += 2;
    }
    if (!path || i >= argc) {
        fprintf(stderr, "usage: usbip-server ctl --control PATH COMMAND [ARGS...]\n"
                        "commands: list, plug SPEC, unplug BUSID, status BUSID, sessions,\n"
                        "          access open|closed, allow LIST, events [AFTER_ID]\n");
        return 2;
    }
    char line[CONTROL_LINE_MAX] = "";
    for (; i < argc; i++) {
        if (strlen(line) + strlen(argv[i]) + 2 >= sizeof line) {
            fprintf(stderr, "usbip-server ctl: command too long\n");
            return 2;
        }
        strcat(line, argv[i]);
        strcat(line, i + 1 < argc ? " " : "\n");
    }
    struct sockaddr_un addr;
    int fd = socket_cloexec(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || !fill_unix_address(path, &addr) ||
        connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        fprintf(stderr, "usbip-server ctl: cannot connect to control socket \"%s\": %s\n", path,
                strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return 1;
    }
    /* A daemon that does not answer must not hang the tool. */
    struct timeval timeout = {.tv_sec = CONTROL_CLIENT_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    write_all(fd, line, strlen(line));
    char buf[4096];
    bool ok = false, first = true;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        if (first) {
            ok = n >= 2 && strncmp(buf, "ok", 2) == 0;
            first = false;
        }
        fwrite(buf, 1, (size_t)n, stdout);
    }
    if (n < 0) {
        fprintf(stderr, "usbip-server ctl: no complete reply from \"%s\" within %d s: %s\n", path,
                CONTROL_CLIENT_TIMEOUT_S, strerror(errno));
        ok = false;
    }
    close(fd);
    return ok ? 0 : 1;
}
