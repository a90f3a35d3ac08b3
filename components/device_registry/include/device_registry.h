/*
 * device_registry: the exportable devices and who holds them.
 *
 * Each device gets a stable bus id from its physical port path ("1-1",
 * "1-1.3"), a devnum in 1..255 (the Linux client narrows it to 8 bits), and
 * a state. Import is exclusive to one owner (a session) and ends with that
 * owner. A device that goes away while imported stays in the table, hidden,
 * until its owner releases it; the port is told when each device may be freed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "usbip_backend.h"
#include "usbip_err.h"
#include "usbip_stats.h"

#ifdef __cplusplus
extern "C" {
#endif

#define USBIP_MAX_PORT_DEPTH 7 /* USB allows 5 hub tiers below the root port */

typedef enum {
    USBIP_DEV_AVAILABLE = 0, /* listed and importable */
    USBIP_DEV_IMPORTED,      /* held by a session */
    USBIP_DEV_GONE,          /* unplugged while imported: waits for release */
} usbip_dev_state_t;

typedef struct {
    bool used;
    usbip_dev_state_t state;
    bool exported;  /* false: hidden from DEVLIST and refused at IMPORT */
    usbip_device_t *dev;
    void *owner;    /* the session holding it, when IMPORTED or GONE */
    usbip_stats_t stats;
    uint64_t added_ms;
} usbip_registry_entry_t;

typedef struct {
    /* A device was unplugged while imported: the owner must end its session
     * (which later releases the device). */
    void (*device_gone)(void *ctx, usbip_registry_entry_t *entry, void *owner);
    /* The registry no longer references dev: the port may destroy it. */
    void (*device_freed)(void *ctx, usbip_device_t *dev);
    void *ctx;
} usbip_registry_hooks_t;

typedef struct {
    usbip_registry_entry_t *entries;
    size_t capacity;
    usbip_registry_hooks_t hooks;
} usbip_registry_t;

/* entries: caller-provided storage for capacity devices. */
usbip_err_t usbip_registry_init(usbip_registry_t *reg, usbip_registry_entry_t *entries,
                                size_t capacity, const usbip_registry_hooks_t *hooks);

/* "1-1.3" from bus 1 and port path {1, 3}. INVALID_ARG for depth 0 or over
 * USBIP_MAX_PORT_DEPTH, port numbers 0 or over 255, busnum 0 or over 255. */
usbip_err_t usbip_busid_format(uint32_t busnum, const uint8_t *ports, size_t depth,
                               char out[USBIP_BUSID_SIZE]);

/* Add a device at a port path: fills dev->record busid, busnum, devnum, path.
 * BUSY if that bus id is taken, NO_MEM if the table or the 255 devnums are
 * full. Hubs (class 9) are refused with NOT_SUPPORTED: they are never
 * exported. */
usbip_err_t usbip_registry_add(usbip_registry_t *reg, usbip_device_t *dev, uint32_t busnum,
                               const uint8_t *ports, size_t depth,
                               usbip_registry_entry_t **out);

/* The device was unplugged. Available: freed at once. Imported: marked
 * GONE and the owner is told through hooks.device_gone. */
void usbip_registry_remove(usbip_registry_t *reg, usbip_registry_entry_t *entry);

/* A listed device (AVAILABLE or IMPORTED, not GONE) by bus id, or NULL. */
usbip_registry_entry_t *usbip_registry_find(usbip_registry_t *reg, const char *busid);
usbip_registry_entry_t *usbip_registry_find_device(usbip_registry_t *reg,
                                                   const usbip_device_t *dev);

/* Exclusive import. NOT_FOUND if gone or unexported, BUSY if held. */
usbip_err_t usbip_registry_claim(usbip_registry_t *reg, usbip_registry_entry_t *entry,
                                 void *owner);
/* End of the owner's session; frees a GONE entry. */
void usbip_registry_release(usbip_registry_t *reg, usbip_registry_entry_t *entry, void *owner);

/* Export or hide a device (dashboard action). Hiding does not end an import. */
void usbip_registry_set_exported(usbip_registry_entry_t *entry, bool exported);

/* Devices a DEVLIST reply lists: exported and AVAILABLE (as newer Linux
 * usbipd, imported devices are left out). Calls fn for each, in table order. */
size_t usbip_registry_for_each_listed(usbip_registry_t *reg,
                                      void (*fn)(void *arg, usbip_registry_entry_t *entry),
                                      void *arg);

const char *usbip_dev_state_name(usbip_dev_state_t state);

#ifdef __cplusplus
}
#endif
