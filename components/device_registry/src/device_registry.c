#include "device_registry.h"

#include <stdio.h>
#include <string.h>

#include "usbip_log.h"

static const char *TAG = "registry";

usbip_err_t usbip_registry_init(usbip_registry_t *reg, usbip_registry_entry_t *entries,
                                size_t capacity, const usbip_registry_hooks_t *hooks)
{
    if (!reg || !entries || capacity == 0) {
        return USBIP_ERR_INVALID_ARG;
    }
    memset(entries, 0, capacity * sizeof *entries);
    reg->entries = entries;
    reg->capacity = capacity;
    memset(&reg->hooks, 0, sizeof reg->hooks);
    if (hooks) {
        reg->hooks = *hooks;
    }
    return USBIP_OK;
}

usbip_err_t usbip_busid_format(uint32_t busnum, const uint8_t *ports, size_t depth,
                               char out[USBIP_BUSID_SIZE])
{
    if (busnum == 0 || busnum > 255 || depth == 0 || depth > USBIP_MAX_PORT_DEPTH) {
        return USBIP_ERR_INVALID_ARG;
    }
    int len = snprintf(out, USBIP_BUSID_SIZE, "%u-", (unsigned)busnum);
    for (size_t i = 0; i < depth; i++) {
        if (ports[i] == 0) {
            return USBIP_ERR_INVALID_ARG;
        }
        len += snprintf(out + len, USBIP_BUSID_SIZE - (size_t)len, i == 0 ? "%u" : ".%u",
                        (unsigned)ports[i]);
    }
    return USBIP_OK; /* 3 + 7 * 4 characters at most: always fits in 32 */
}

static bool devnum_in_use(const usbip_registry_t *reg, uint32_t busnum, uint32_t devnum)
{
    for (size_t i = 0; i < reg->capacity; i++) {
        const usbip_registry_entry_t *e = &reg->entries[i];
        if (e->used && e->dev->record.busnum == busnum && e->dev->record.devnum == devnum) {
            return true;
        }
    }
    return false;
}

static uint32_t lowest_free_devnum(const usbip_registry_t *reg, uint32_t busnum)
{
    for (uint32_t devnum = 1; devnum <= 255; devnum++) {
        if (!devnum_in_use(reg, busnum, devnum)) {
            return devnum;
        }
    }
    return 0;
}

static usbip_registry_entry_t *find_by_busid(usbip_registry_t *reg, const char *busid,
                                             bool include_gone)
{
    for (size_t i = 0; i < reg->capacity; i++) {
        usbip_registry_entry_t *e = &reg->entries[i];
        if (e->used && (include_gone || e->state != USBIP_DEV_GONE) &&
            strncmp(e->dev->record.busid, busid, USBIP_BUSID_SIZE) == 0) {
            return e;
        }
    }
    return NULL;
}

static usbip_registry_entry_t *free_slot(usbip_registry_t *reg)
{
    for (size_t i = 0; i < reg->capacity; i++) {
        if (!reg->entries[i].used) {
            return &reg->entries[i];
        }
    }
    return NULL;
}

usbip_err_t usbip_registry_add(usbip_registry_t *reg, usbip_device_t *dev, uint32_t busnum,
                               const uint8_t *ports, size_t depth,
                               usbip_registry_entry_t **out)
{
    char busid[USBIP_BUSID_SIZE];
    usbip_err_t err = usbip_busid_format(busnum, ports, depth, busid);
    if (err != USBIP_OK) {
        USBIP_LOGE(TAG, "invalid port path for bus %u (depth %zu)", (unsigned)busnum, depth);
        return err;
    }
    if (dev->record.bDeviceClass == 0x09) {
        USBIP_LOGI(TAG, "%s is a hub: hubs are never exported", busid);
        return USBIP_ERR_NOT_SUPPORTED;
    }
    /* A GONE entry still holds its bus id until released: a device replugged
     * in the same port before that waits for the old session to end. */
    if (find_by_busid(reg, busid, true)) {
        USBIP_LOGW(TAG, "bus id %s is already registered", busid);
        return USBIP_ERR_BUSY;
    }
    usbip_registry_entry_t *entry = free_slot(reg);
    uint32_t devnum = lowest_free_devnum(reg, busnum);
    if (!entry || devnum == 0) {
        USBIP_LOGE(TAG, "no room for %s: the registry holds at most %zu devices", busid,
                   reg->capacity);
        return USBIP_ERR_NO_MEM;
    }
    memcpy(dev->record.busid, busid, USBIP_BUSID_SIZE);
    dev->record.busnum = busnum;
    dev->record.devnum = devnum;
    snprintf(dev->record.path, USBIP_PATH_SIZE, "/sys/devices/platform/usbip-esp32p4/usb%u/%s",
             (unsigned)busnum, busid);
    memset(entry, 0, sizeof *entry);
    entry->used = true;
    entry->exported = true;
    entry->state = USBIP_DEV_AVAILABLE;
    entry->dev = dev;
    entry->added_ms = usbip_now_ms();
    if (out) {
        *out = entry;
    }
    return USBIP_OK;
}

static void free_entry(usbip_registry_t *reg, usbip_registry_entry_t *entry)
{
    usbip_device_t *dev = entry->dev;
    memset(entry, 0, sizeof *entry);
    if (reg->hooks.device_freed) {
        reg->hooks.device_freed(reg->hooks.ctx, dev);
    }
}

void usbip_registry_remove(usbip_registry_t *reg, usbip_registry_entry_t *entry)
{
    if (!entry->used || entry->state == USBIP_DEV_GONE) {
        return;
    }
    if (entry->state == USBIP_DEV_AVAILABLE) {
        free_entry(reg, entry);
        return;
    }
    entry->state = USBIP_DEV_GONE;
    if (reg->hooks.device_gone) {
        reg->hooks.device_gone(reg->hooks.ctx, entry, entry->owner);
    }
}

usbip_registry_entry_t *usbip_registry_find(usbip_registry_t *reg, const char *busid)
{
    return find_by_busid(reg, busid, false);
}

usbip_registry_entry_t *usbip_registry_find_device(usbip_registry_t *reg,
                                                   const usbip_device_t *dev)
{
    for (size_t i = 0; i < reg->capacity; i++) {
        if (reg->entries[i].used && reg->entries[i].dev == dev) {
            return &reg->entries[i];
        }
    }
    return NULL;
}

usbip_err_t usbip_registry_claim(usbip_registry_t *reg, usbip_registry_entry_t *entry,
                                 void *owner)
{
    (void)reg;
    if (!entry->used || entry->state == USBIP_DEV_GONE || !entry->exported) {
        return USBIP_ERR_NOT_FOUND;
    }
    if (entry->state == USBIP_DEV_IMPORTED) {
        return USBIP_ERR_BUSY;
    }
    entry->state = USBIP_DEV_IMPORTED;
    entry->owner = owner;
    return USBIP_OK;
}

void usbip_registry_release(usbip_registry_t *reg, usbip_registry_entry_t *entry, void *owner)
{
    if (!entry->used || entry->owner != owner) {
        return;
    }
    entry->owner = NULL;
    if (entry->state == USBIP_DEV_GONE) {
        free_entry(reg, entry);
    } else {
        entry->state = USBIP_DEV_AVAILABLE;
    }
}

void usbip_registry_set_exported(usbip_registry_entry_t *entry, bool exported)
{
    entry->exported = exported;
}

size_t usbip_registry_for_each_listed(usbip_registry_t *reg,
                                      void (*fn)(void *arg, usbip_registry_entry_t *entry),
                                      void *arg)
{
    size_t count = 0;
    for (size_t i = 0; i < reg->capacity; i++) {
        usbip_registry_entry_t *e = &reg->entries[i];
        if (e->used && e->exported && e->state == USBIP_DEV_AVAILABLE) {
            if (fn) {
                fn(arg, e);
            }
            count++;
        }
    }
    return count;
}

const char *usbip_dev_state_name(usbip_dev_state_t state)
{
    switch (state) {
    case USBIP_DEV_AVAILABLE: return "available";
    case USBIP_DEV_IMPORTED: return "imported";
    case USBIP_DEV_GONE: return "gone";
    }
    return "?";
}
