/*
 * vdev: virtual USB devices for the Linux daemon and the tests.
 *
 * Four devices, each a complete usbip_device_t with its own backend:
 *  - keyboard: HID boot keyboard that types a text once per session;
 *  - serial:   CDC-ACM port that echoes what it is sent;
 *  - storage:  USB mass storage (Bulk-Only Transport, SCSI) on a RAM disk
 *              or a disk image file;
 *  - zero:     Linux Gadget Zero compatible source/sink and loopback, for
 *              usbtest and throughput tests.
 *
 * Nothing happens behind the caller's back: submit() only queues a URB, and
 * every completion is delivered from vdev_poll(), which the daemon's
 * single-threaded event loop calls every iteration (use
 * vdev_next_timeout_ms() to know how long it may sleep). None of these
 * functions are thread-safe; call them all from that one thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "usbip_backend.h"
#include "usbip_err.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vdev vdev_t;

typedef enum {
    VDEV_KEYBOARD,
    VDEV_SERIAL,
    VDEV_STORAGE,
    VDEV_ZERO,
} vdev_kind_t;

#define VDEV_KEYBOARD_DEFAULT_TEXT "Hello from usbip-esp32p4\n"
#define VDEV_STORAGE_DEFAULT_SIZE  (64ull * 1024 * 1024)
#define VDEV_STORAGE_BLOCK_SIZE    512u

typedef struct {
    vdev_kind_t kind;
    /* VDEV_KEYBOARD: text it types once per session (NULL = the default);
     * printable ASCII, newline and tab only. */
    const char *keyboard_text;
    /* VDEV_KEYBOARD: milliseconds from import to the first key, so a client
     * has time to open its input device (0 = type at once). */
    uint32_t keyboard_delay_ms;
    /* VDEV_STORAGE: path of a disk image opened read-write, NULL = RAM disk. */
    const char *storage_image;
    /* VDEV_STORAGE: bytes of a RAM disk (0 = 64 MiB), a multiple of 512.
     * Ignored for a file image, which uses its file size. */
    uint64_t storage_size;
} vdev_config_t;

/* Create a device. On a bad configuration it logs one line saying what is
 * wrong and returns INVALID_ARG (IO if the image cannot be opened, NO_MEM). */
usbip_err_t vdev_create(const vdev_config_t *cfg, vdev_t **out);

/* Free the device: only after detach (no URB in flight) or before any attach. */
void vdev_destroy(vdev_t *dev);

/* The exportable device: record (ids, class, speed, configuration,
 * interfaces), interfaces[], the endpoint tables of the current
 * configuration and alt settings, strings, and ops/ctx. busid, busnum,
 * devnum and path are left zero for the registry to set. */
usbip_device_t *vdev_device(vdev_t *dev);

vdev_kind_t vdev_kind(const vdev_t *dev);

/* "keyboard", "serial", "storage", "zero" ("?" for anything else). */
const char *vdev_kind_name(vdev_kind_t kind);

/* The vdev_kind_t named by name, or -1 if unknown. */
int vdev_kind_parse(const char *name);

/* Deliver deferred completions and do timed work (keyboard typing pace).
 * Complete callbacks run from here and may submit or cancel again; what they
 * submit is served on the next call. */
void vdev_poll(vdev_t *dev, uint64_t now_ms);

/* Milliseconds until vdev_poll has work (0 = now, -1 = nothing pending). */
int vdev_next_timeout_ms(const vdev_t *dev, uint64_t now_ms);

/* Simulated unplug: every pending URB completes with USBIP_ESHUTDOWN (on the
 * next vdev_poll), and from now on submit() and attach() fail with
 * USBIP_ERR_INVALID_STATE. There is no re-plug: destroy the device. */
void vdev_unplug(vdev_t *dev);
bool vdev_unplugged(const vdev_t *dev);

/* Serial line state. stop_bits, parity and data_bits are the CDC
 * SET_LINE_CODING values: stop_bits 0 = 1, 1 = 1.5, 2 = 2 stop bits;
 * parity 0 none, 1 odd, 2 even, 3 mark, 4 space. */
typedef struct {
    uint32_t baud;
    uint8_t stop_bits, parity, data_bits;
    bool dtr, rts;
} vdev_serial_state_t;

/* False (and *out untouched) if dev is not a serial device. */
bool vdev_serial_state(const vdev_t *dev, vdev_serial_state_t *out);

/* One-line human summary of the device state for the "status" command, e.g.
 * serial "line 115200 8N1 dtr=1 rts=0", storage "64 MiB RAM",
 * zero "config 1 alt 0, pattern errors 0". Always NUL-terminated. */
void vdev_describe(const vdev_t *dev, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
