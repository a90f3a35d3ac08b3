/*
 * usb_host_mgr (ESP-IDF only): the ESP32-P4 USB host backend of the USB/IP
 * core. It runs the ESP-IDF USB Host Library (a daemon task and one client
 * task, both on core 0), turns enumerated devices into exportable
 * usbip_device_t's with bus ids from their port path, and drives their URBs
 * through the portable transfer engine (components/transfer_engine), which
 * holds every rule worth testing: chunking, unlink by halt + flush, the
 * special control requests, device removal.
 *
 * Threads: the USB client task owns the library client and the engine; the
 * server task owns the core. They talk through two FreeRTOS queues: commands
 * (import, end of session, submit, unlink, device freed) from the server
 * task, and events (device arrived / gone / refused, URB finished) back to
 * it, each followed by a ring of the server loop's waker. Only
 * usb_host_mgr_process() and the backend ops (called by the sessions) run
 * in the server task.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "esp_err.h"
#include "usbip_backend.h"
#include "usbip_server.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    usbip_server_t *server;
    /* Rings the server loop (usbip_netloop_wake) from the USB client task. */
    void (*wake)(void *ctx);
    void *wake_ctx;
    size_t max_devices;            /* devices served at once (CONFIG_USBIP_MAX_DEVICES) */
    size_t transfer_pool_size;     /* transfer objects allocated up front */
    size_t transfer_buffer_size;   /* data bytes of each: the largest URB served in one piece */
} usb_host_mgr_config_t;

/* Install the USB Host Library, allocate the transfer pool and start the
 * daemon and client tasks. Devices already plugged in are picked up too.
 * ESP_ERR_NO_MEM, or the library's own error (logged). Call once. */
esp_err_t usb_host_mgr_start(const usb_host_mgr_config_t *cfg);

/* Server task: deliver what the USB client task handed over (devices
 * arriving or leaving, finished URBs). Cheap when there is nothing. */
void usb_host_mgr_process(void);

/* The registry's device_freed hook (usbip_server_config_t.device_freed):
 * the core no longer references dev, so the USB side may close it. Only
 * for devices of this backend; server task. */
void usb_host_mgr_device_freed(void *ctx, usbip_device_t *dev);

/* Power-cycle the root port (the dashboard's device reset): v5.5 has no
 * per-device reset, so every device on the port, hubs included, leaves and
 * enumerates again. Server task; returns at once, the work runs in the USB
 * client task. ESP_ERR_INVALID_STATE before usb_host_mgr_start(). */
esp_err_t usb_host_mgr_power_cycle(void);

#ifdef __cplusplus
}
#endif
