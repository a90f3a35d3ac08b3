/*
 * fd_util: small POSIX helpers the daemon shares (portable to macOS, which
 * lacks accept4, pipe2 and SOCK_CLOEXEC).
 */
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* SIGPIPE is ignored process-wide instead */
#endif

static inline int fd_set_cloexec(int fd)
{
    if (fd >= 0) {
        fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
    }
    return fd;
}

static inline int fd_set_nonblocking(int fd)
{
    if (fd >= 0) {
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    }
    return fd;
}

static inline int socket_cloexec(int domain, int type, int protocol)
{
    return fd_set_cloexec(socket(domain, type, protocol));
}

static inline int accept_cloexec(int listen_fd)
{
    return fd_set_cloexec(accept(listen_fd, NULL, NULL));
}
