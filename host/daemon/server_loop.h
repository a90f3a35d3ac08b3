/*
 * server_loop: the daemon's single-threaded poll() loop. It owns the
 * listening and connection sockets and moves bytes between them and the
 * sessions: reads straight into the buffers a session offers, writes each
 * batch of replies with one sendmsg, and stops reading a session that
 * offers no space (TCP flow control then pushes back on the client).
 */
#pragma once

#include <signal.h>
#include <stdint.h>

#include "device_set.h"
#include "usbip_server.h"

typedef struct server_loop server_loop_t;

/* Listen on address:port (NULL address: all addresses, IPv6 dual-stack if
 * available). The error names the address and the reason. */
usbip_err_t server_loop_create(usbip_server_t *srv, device_set_t *devices, const char *address,
                               uint16_t port, int control_fd, server_loop_t **out);
/* Serve until server_loop_stop(); then close every session cleanly. */
void server_loop_run(server_loop_t *loop);
/* Async-signal-safe. */
void server_loop_stop(server_loop_t *loop);
void server_loop_destroy(server_loop_t *loop);

/* The port actually bound (useful with port 0). */
uint16_t server_loop_port(const server_loop_t *loop);

uint64_t monotonic_ms(void);
