/*
 * control_server: the daemon's control socket as extra descriptors of the
 * network loop (usbip_netloop_extra_t): the listening Unix socket plus up to
 * CONTROL_SERVER_MAX_CONNS connections, each served without blocking (see
 * control.h) and closed after CONTROL_IDLE_MS without progress.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/poll.h>

#include "device_set.h"
#include "usbip_server.h"

#define CONTROL_SERVER_MAX_CONNS 8
/* Descriptors fill() may add: the listener and every connection. */
#define CONTROL_SERVER_MAX_FDS (1 + CONTROL_SERVER_MAX_CONNS)

typedef struct control_server control_server_t;

/* listen_fd: from control_listen(); owned by the caller. NULL on no memory. */
control_server_t *control_server_create(int listen_fd, usbip_server_t *srv,
                                        device_set_t *devices);
/* Closes the connections (not the listening socket). */
void control_server_destroy(control_server_t *cs);

/* usbip_netloop_extra_t hooks; ctx is the control_server_t. */
size_t control_server_fill(void *ctx, struct pollfd *fds, size_t max);
void control_server_ready(void *ctx, const struct pollfd *fds, size_t count, uint64_t now_ms);
