/*
 * dashboard: the daemon's web dashboard, the portable webui engine behind
 * the CivetWeb server (host/web), with the daemon's hooks: OpenSSL crypto,
 * memory use from /proc. Runs on the server loop's thread except for the
 * HTTP workers inside host/web.
 */
#pragma once

#include <stdint.h>

#include "usbip_netloop.h"
#include "usbip_server.h"

typedef struct dashboard dashboard_t;

/* NULL (logged) if it cannot listen. */
dashboard_t *dashboard_start(usbip_server_t *srv, const char *address, uint16_t port,
                             uint16_t usbip_port, usbip_netloop_waker_t *waker);
uint16_t dashboard_port(const dashboard_t *d);
/* Loop thread, every turn: answers queued requests, samples, pushes.
 * Returns ms until it wants to run again. */
int dashboard_poll(dashboard_t *d, uint64_t now_ms);
void dashboard_stop(dashboard_t *d);
