#include "device_set.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "usbip_log.h"

static const char *TAG = "devices";

#define VIRTUAL_BUS 1u

typedef enum {
    SLOT_EMPTY,
    SLOT_PLUGGED,
    SLOT_UNPLUGGED, /* waiting for the registry to release it */
    SLOT_FREED,     /* released: destroy at the next poll */
} slot_state_t;

typedef struct {
    slot_state_t state;
    vdev_t *vdev;
    vdev_kind_t kind;
    uint8_t port;
} device_slot_t;

struct device_set {
    usbip_server_t *srv;
    device_slot_t slots[DEVICE_SET_MAX];
};

usbip_err_t device_set_create(usbip_server_t *srv, device_set_t **out)
{
    device_set_t *ds = calloc(1, sizeof *ds);
    if (!ds) {
        return USBIP_ERR_NO_MEM;
    }
    ds->srv = srv;
    *out = ds;
    return USBIP_OK;
}

static bool port_in_use(const device_set_t *ds, uint8_t port)
{
    for (size_t i = 0; i < DEVICE_SET_MAX; i++) {
        if (ds->slots[i].state != SLOT_EMPTY && ds->slots[i].port == port) {
            return true;
        }
    }
    return false;
}

static uint8_t lowest_free_port(const device_set_t *ds)
{
    for (uint8_t port = 1; port <= DEVICE_SET_MAX; port++) {
        if (!port_in_use(ds, port)) {
            return port;
        }
    }
    return 0;
}

static device_slot_t *empty_slot(device_set_t *ds)
{
    for (size_t i = 0; i < DEVICE_SET_MAX; i++) {
        if (ds->slots[i].state == SLOT_EMPTY) {
            return &ds->slots[i];
        }
    }
    return NULL;
}

/* Split "KIND:key=value,key=value" into a vdev_config_t. "text" takes the
 * rest of the spec, commas included, so keyboard text can hold any text. */
static usbip_err_t parse_spec(const char *spec, vdev_config_t *cfg, char *text_store,
                              size_t text_size, char *path_store, size_t path_size, char *errbuf,
                              size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    char kind[32];
    const char *colon = strchr(spec, ':');
    size_t kind_len = colon ? (size_t)(colon - spec) : strlen(spec);
    if (kind_len == 0 || kind_len >= sizeof kind) {
        snprintf(errbuf, errlen, "device spec \"%s\": missing or too long kind", spec);
        return USBIP_ERR_INVALID_ARG;
    }
    memcpy(kind, spec, kind_len);
    kind[kind_len] = '\0';
    int parsed_kind = vdev_kind_parse(kind);
    if (parsed_kind < 0) {
        snprintf(errbuf, errlen,
                 "device spec \"%s\": unknown kind \"%s\" (keyboard, serial, storage, zero)",
                 spec, kind);
        return USBIP_ERR_INVALID_ARG;
    }
    cfg->kind = (vdev_kind_t)parsed_kind;
    const char *p = colon ? colon + 1 : NULL;
    while (p && *p) {
        const char *eq = strchr(p, '=');
        if (!eq) {
            snprintf(errbuf, errlen, "device spec \"%s\": \"%s\" is not KEY=VALUE", spec, p);
            return USBIP_ERR_INVALID_ARG;
        }
        size_t key_len = (size_t)(eq - p);
        const char *value = eq + 1;
        if (key_len == 4 && strncmp(p, "text", 4) == 0 && cfg->kind == VDEV_KEYBOARD) {
            snprintf(text_store, text_size, "%s", value);
            cfg->keyboard_text = text_store;
            break;
        }
        const char *comma = strchr(value, ',');
        size_t value_len = comma ? (size_t)(comma - value) : strlen(value);
        char value_buf[256];
        if (value_len >= sizeof value_buf) {
            snprintf(errbuf, errlen, "device spec \"%s\": value too long", spec);
            return USBIP_ERR_INVALID_ARG;
        }
        memcpy(value_buf, value, value_len);
        value_buf[value_len] = '\0';
        if (key_len == 5 && strncmp(p, "delay", 5) == 0 && cfg->kind == VDEV_KEYBOARD) {
            uint64_t delay = 0;
            if (!options_parse_size(value_buf, &delay) || delay > 600000) {
                snprintf(errbuf, errlen,
                         "device spec \"%s\": delay \"%s\" must be 0..600000 milliseconds",
                         spec, value_buf);
                return USBIP_ERR_INVALID_ARG;
            }
            cfg->keyboard_delay_ms = (uint32_t)delay;
        } else if (key_len == 4 && strncmp(p, "size", 4) == 0 && cfg->kind == VDEV_STORAGE) {
            if (!options_parse_size(value_buf, &cfg->storage_size) || cfg->storage_size == 0 ||
                cfg->storage_size % 512 != 0) {
                snprintf(errbuf, errlen,
                         "device spec \"%s\": size \"%s\" must be a multiple of 512 such as 64M",
                         spec, value_buf);
                return USBIP_ERR_INVALID_ARG;
            }
        } else if (key_len == 5 && strncmp(p, "image", 5) == 0 && cfg->kind == VDEV_STORAGE) {
            snprintf(path_store, path_size, "%s", value_buf);
            cfg->storage_image = path_store;
        } else {
            snprintf(errbuf, errlen, "device spec \"%s\": unknown option \"%.*s\" for %s", spec,
                     (int)key_len, p, kind);
            return USBIP_ERR_INVALID_ARG;
        }
        p = comma ? comma + 1 : NULL;
    }
    return USBIP_OK;
}

usbip_err_t device_set_plug(device_set_t *ds, const char *spec, char busid_out[32],
                            char *errbuf, size_t errlen)
{
    char text[256];
    char path[256];
    vdev_config_t cfg;
    usbip_err_t err = parse_spec(spec, &cfg, text, sizeof text, path, sizeof path, errbuf, errlen);
    if (err != USBIP_OK) {
        return err;
    }
    device_slot_t *slot = empty_slot(ds);
    uint8_t port = lowest_free_port(ds);
    if (!slot || port == 0) {
        snprintf(errbuf, errlen, "no free port: at most %d devices", DEVICE_SET_MAX);
        return USBIP_ERR_NO_MEM;
    }
    vdev_t *vdev = NULL;
    err = vdev_create(&cfg, &vdev);
    if (err != USBIP_OK) {
        snprintf(errbuf, errlen, "device spec \"%s\": cannot create the device: %s", spec,
                 usbip_err_name(err));
        return err;
    }
    err = usbip_server_add_device(ds->srv, vdev_device(vdev), VIRTUAL_BUS, &port, 1);
    if (err != USBIP_OK) {
        vdev_destroy(vdev);
        snprintf(errbuf, errlen, "cannot register the device: %s", usbip_err_name(err));
        return err;
    }
    *slot = (device_slot_t){.state = SLOT_PLUGGED, .vdev = vdev, .kind = cfg.kind, .port = port};
    snprintf(busid_out, 32, "%s", vdev_device(vdev)->record.busid);
    USBIP_LOGI(TAG, "plugged %s at %s", vdev_kind_name(cfg.kind), busid_out);
    return USBIP_OK;
}

static device_slot_t *slot_by_busid(device_set_t *ds, const char *busid)
{
    for (size_t i = 0; i < DEVICE_SET_MAX; i++) {
        device_slot_t *slot = &ds->slots[i];
        if (slot->state == SLOT_PLUGGED &&
            strcmp(vdev_device(slot->vdev)->record.busid, busid) == 0) {
            return slot;
        }
    }
    return NULL;
}

usbip_err_t device_set_unplug(device_set_t *ds, const char *busid, char *errbuf, size_t errlen)
{
    device_slot_t *slot = slot_by_busid(ds, busid);
    if (!slot) {
        snprintf(errbuf, errlen, "no device at bus id \"%s\"", busid);
        return USBIP_ERR_NOT_FOUND;
    }
    slot->state = SLOT_UNPLUGGED;
    vdev_unplug(slot->vdev);
    USBIP_LOGI(TAG, "unplugged %s", busid);
    /* May call device_set_on_freed at once when nobody imported it. */
    usbip_server_remove_device(ds->srv, vdev_device(slot->vdev));
    return USBIP_OK;
}

void device_set_on_freed(device_set_t *ds, usbip_device_t *dev)
{
    for (size_t i = 0; i < DEVICE_SET_MAX; i++) {
        device_slot_t *slot = &ds->slots[i];
        if (slot->state != SLOT_EMPTY && vdev_device(slot->vdev) == dev) {
            /* Not destroyed here: we may be inside this device's own vdev_poll. */
            slot->state = SLOT_FREED;
        }
    }
}

void device_set_poll(device_set_t *ds, uint64_t now_ms)
{
    for (size_t i = 0; i < DEVICE_SET_MAX; i++) {
        device_slot_t *slot = &ds->slots[i];
        if (slot->state == SLOT_PLUGGED || slot->state == SLOT_UNPLUGGED) {
            vdev_poll(slot->vdev, now_ms);
        }
    }
    for (size_t i = 0; i < DEVICE_SET_MAX; i++) {
        device_slot_t *slot = &ds->slots[i];
        if (slot->state == SLOT_FREED) {
            vdev_destroy(slot->vdev);
            *slot = (device_slot_t){0};
        }
    }
}

int device_set_next_timeout_ms(const device_set_t *ds, uint64_t now_ms)
{
    int timeout = -1;
    for (size_t i = 0; i < DEVICE_SET_MAX; i++) {
        const device_slot_t *slot = &ds->slots[i];
        if (slot->state == SLOT_FREED) {
            return 0;
        }
        if (slot->state == SLOT_PLUGGED || slot->state == SLOT_UNPLUGGED) {
            int t = vdev_next_timeout_ms(slot->vdev, now_ms);
            if (t >= 0 && (timeout < 0 || t < timeout)) {
                timeout = t;
            }
        }
    }
    return timeout;
}

void device_set_list(const device_set_t *ds, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    usbip_registry_t *reg = usbip_server_registry(ds->srv);
    for (size_t i = 0; i < DEVICE_SET_MAX && used < len; i++) {
        const device_slot_t *slot = &ds->slots[i];
        if (slot->state != SLOT_PLUGGED) {
            continue;
        }
        usbip_device_t *dev = vdev_device(slot->vdev);
        const usbip_registry_entry_t *entry = usbip_registry_find_device(reg, dev);
        int n = snprintf(buf + used, len - used, "%s %s %04x:%04x %s\n", dev->record.busid,
                         vdev_kind_name(slot->kind), dev->record.idVendor,
                         dev->record.idProduct,
                         entry ? usbip_dev_state_name(entry->state) : "unregistered");
        used += n > 0 ? (size_t)n : 0;
    }
}

usbip_err_t device_set_describe(const device_set_t *ds, const char *busid, char *buf, size_t len)
{
    const device_slot_t *slot = slot_by_busid((device_set_t *)ds, busid);
    if (!slot) {
        return USBIP_ERR_NOT_FOUND;
    }
    vdev_describe(slot->vdev, buf, len);
    return USBIP_OK;
}

void device_set_destroy(device_set_t *ds)
{
    if (!ds) {
        return;
    }
    for (size_t i = 0; i < DEVICE_SET_MAX; i++) {
        device_slot_t *slot = &ds->slots[i];
        if (slot->state == SLOT_PLUGGED) {
            usbip_server_remove_device(ds->srv, vdev_device(slot->vdev));
        }
    }
    for (size_t i = 0; i < DEVICE_SET_MAX; i++) {
        if (ds->slots[i].state != SLOT_EMPTY) {
            vdev_destroy(ds->slots[i].vdev);
        }
    }
    free(ds);
}
