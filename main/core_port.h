/*
 * core_port: what the portable core needs from the firmware. Its log sink
 * (usbip_log -> ESP_LOG, so core messages share the console, the log level
 * settings and the remote syslog capture) and its millisecond clock
 * (esp_timer), plus the network loop's waker (an ESP-IDF eventfd).
 */
#pragma once

#include "esp_err.h"
#include "usbip_netloop.h"

/* Install the log sink and the clock. Before anything calls into the core. */
void core_port_install(void);

/* Register the eventfd VFS (if nobody did yet) and make the waker's eventfd. */
esp_err_t core_port_open_waker(usbip_netloop_waker_t *waker);
