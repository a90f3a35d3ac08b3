/*
 * control: the daemon's Unix-socket control interface (one command per
 * connection, a text reply, then close) and the `usbip-server ctl` client.
 * Used for hot-plug tests and by people operating the daemon.
 *
 * Control connections are served by the daemon's poll loop without ever
 * blocking it: a client that is slow to send its command or to read the
 * reply holds only its own connection (closed after CONTROL_IDLE_MS).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "device_set.h"
#include "usbip_server.h"

/* Bind and listen on path (an old socket file there is replaced). -1 on error. */
int control_listen(const char *path);

/* A control connection: reads one command line, runs it, writes the reply. */
typedef struct control_conn control_conn_t;

#define CONTROL_IDLE_MS 5000 /* a connection that makes no progress this long is closed */

/* Accept one pending connection on the (non-blocking) listening socket;
 * NULL if there is none or on error. */
control_conn_t *control_accept(int listen_fd, uint64_t now_ms);
int control_conn_fd(const control_conn_t *c);
/* poll() events the connection waits for (POLLIN or POLLOUT). */
short control_conn_events(const control_conn_t *c);
/* Do the I/O poll() reported ready; runs the command once its line is
 * complete. False when the connection is finished (reply sent, peer gone,
 * or idle past its deadline): then control_conn_close() it. */
bool control_conn_service(control_conn_t *c, short revents, uint64_t now_ms,
                          usbip_server_t *srv, device_set_t *devices);
bool control_conn_expired(const control_conn_t *c, uint64_t now_ms);
void control_conn_close(control_conn_t *c);

/* Run one command line and write the reply ("ok ..." or "error: ...") into reply. */
void control_execute(const char *line, usbip_server_t *srv, device_set_t *devices, char *reply,
                     size_t reply_len);

/* `usbip-server ctl --control PATH COMMAND...`: exit status 0 if the reply starts "ok". */
int control_client_main(int argc, char **argv);
