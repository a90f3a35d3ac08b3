/*
 * te_topology: where a USB device sits, as USB/IP bus ids need it.
 *
 * The ESP32-P4 host has one root port. We call it port 1 of bus 1, so a
 * device on the root port is "1-1" and a device on port 3 of a hub plugged
 * into the root port is "1-1.3": stable across re-enumeration (the USB
 * address is not). The ESP-IDF library reports, per device, its parent hub
 * (NULL for the root port) and the parent port number (0 on the root port,
 * 1-based on hubs); the port glue walks that chain leaf to root and this
 * module turns it into the root-to-leaf path the registry formats.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "usbip_err.h"
#include "usbip_proto.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TE_ROOT_PORT 1u
#define TE_BUSNUM    1u

/* Library speeds (usb_speed_t: LOW 0, FULL 1, HIGH 2) as USB/IP speeds. */
usbip_speed_t te_speed_to_usbip(int library_speed);

/* hub_ports[0..hops) are the parent port numbers from the leaf upwards (the
 * port of the hub the device is plugged into first); the root port itself
 * is implied. Fills ports[] root to leaf: {1, hub ports...} and *depth.
 * INVALID_ARG when a hub port is 0 or the path is deeper than max_depth. */
usbip_err_t te_port_path(const uint8_t *hub_ports, size_t hops, uint8_t *ports,
                         size_t max_depth, size_t *depth);

/* A full/low speed device behind a high speed hub needs a transaction
 * translator, which the v5.5 library does not implement: such a device is
 * reported and not exported. device_speed/hub_speed are USB/IP speeds;
 * hub_speed UNKNOWN means "on the root port". */
bool te_needs_transaction_translator(usbip_speed_t device_speed, usbip_speed_t hub_speed);

#ifdef __cplusplus
}
#endif
