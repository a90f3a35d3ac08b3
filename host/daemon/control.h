/*
 * control: the daemon's Unix-socket control interface (one command per
 * connection, a text reply, then close) and the `usbip-server ctl` client.
 * Used for hot-plug tests and by people operating the daemon.
 */
#pragma once

#include <stddef.h>

#include "device_set.h"
#include "usbip_server.h"

/* Bind and listen on path (an old socket file there is replaced). -1 on error. */
int control_listen(const char *path);

/* Accept one control connection on listen_fd, run its command, reply, close. */
void control_handle(int listen_fd, usbip_server_t *srv, device_set_t *devices);

/* Run one command line and write the reply ("ok ..." or "error: ...") into reply. */
void control_execute(const char *line, usbip_server_t *srv, device_set_t *devices, char *reply,
                     size_t reply_len);

/* `usbip-server ctl --control PATH COMMAND...`: exit status 0 if the reply starts "ok". */
int control_client_main(int argc, char **argv);
