/*
 * server_task: the task that owns the USB/IP core. It runs the shared
 * network loop (usbip_netloop) on core 1 and, every iteration, the work
 * other tasks queued for it: USB completions and device arrivals/departures
 * (usb_host_mgr_process), captured warnings (remote_syslog_process) and
 * network events (network_mgr_process), then keeps the mDNS device count and
 * runs the dashboard (web_dashboard_process: API requests, WebSocket pushes).
 */
#pragma once

#include <stdint.h>

#include "esp_err.h"
#include "usbip_netloop.h"
#include "usbip_server.h"

/* Open the listening socket on port and start the task. */
esp_err_t server_task_start(usbip_server_t *server, usbip_netloop_waker_t *waker, uint16_t port);
