/*
 * device_set: the daemon's virtual devices, plugged into bus 1 at ports
 * 1, 2, ... of a virtual root hub, and their hot-plug lifecycle. A device
 * unplugged while imported is destroyed only after its session has let go.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "usbip_server.h"
#include "vdev.h"

#define DEVICE_SET_MAX 16

typedef struct device_set device_set_t;

usbip_err_t device_set_create(usbip_server_t *srv, device_set_t **out);
/* Unplugs and destroys everything; call after every session is reaped. */
void device_set_destroy(device_set_t *ds);

/* Add a device from a spec ("keyboard:text=hi", "storage:size=16M",
 * "storage:image=disk.img", "serial", "zero"). busid_out gets "1-N".
 * Errors name the spec part that was wrong in errbuf. */
usbip_err_t device_set_plug(device_set_t *ds, const char *spec, char busid_out[32],
                            char *errbuf, size_t errlen);
usbip_err_t device_set_unplug(device_set_t *ds, const char *busid, char *errbuf, size_t errlen);

/* The registry no longer references dev (usbip_server_config_t.device_freed). */
void device_set_on_freed(device_set_t *ds, usbip_device_t *dev);

/* Deliver virtual device completions and timers, then destroy devices the
 * registry released. */
void device_set_poll(device_set_t *ds, uint64_t now_ms);
int device_set_next_timeout_ms(const device_set_t *ds, uint64_t now_ms);

/* One line per device: "1-2 serial 1209:5502 available". */
void device_set_list(const device_set_t *ds, char *buf, size_t len);
/* The device's own state line (vdev_describe); NOT_FOUND for an unknown busid. */
usbip_err_t device_set_describe(const device_set_t *ds, const char *busid, char *buf, size_t len);
