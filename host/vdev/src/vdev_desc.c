#include "vdev_desc.h"

#include <string.h>

#define USB_BCD_2_0 0x0200u

void vdev_desc_build_device(uint8_t out[VDEV_DEVICE_DESC_SIZE],
                            const vdev_device_desc_info_t *info)
{
    out[0] = VDEV_DEVICE_DESC_SIZE;
    out[1] = VDEV_DT_DEVICE;
    vdev_put_le16(&out[2], USB_BCD_2_0);
    out[4] = info->device_class;
    out[5] = info->device_subclass;
    out[6] = info->device_protocol;
    out[7] = info->max_packet_size0;
    vdev_put_le16(&out[8], info->vid);
    vdev_put_le16(&out[10], info->pid);
    vdev_put_le16(&out[12], info->bcd_device);
    out[14] = 1; /* iManufacturer */
    out[15] = 2; /* iProduct */
    out[16] = 3; /* iSerialNumber */
    out[17] = info->num_configurations;
}

void vdev_desc_build_qualifier(uint8_t out[VDEV_QUALIFIER_DESC_SIZE],
                               const uint8_t device[VDEV_DEVICE_DESC_SIZE])
{
    out[0] = VDEV_QUALIFIER_DESC_SIZE;
    out[1] = VDEV_DT_DEVICE_QUALIFIER;
    memcpy(&out[2], &device[2], 6); /* bcdUSB, class, subclass, protocol, bMaxPacketSize0 */
    out[8] = device[17];            /* bNumConfigurations */
    out[9] = 0;
}

size_t vdev_desc_build_string(uint8_t *out, size_t cap, const char *ascii)
{
    size_t chars = strlen(ascii);
    if (chars > 126) {
        chars = 126; /* bLength is one byte */
    }
    size_t len = 2 + 2 * chars;
    if (len > cap) {
        return 0;
    }
    out[0] = (uint8_t)len;
    out[1] = VDEV_DT_STRING;
    for (size_t i = 0; i < chars; i++) {
        out[2 + 2 * i] = (uint8_t)ascii[i];
        out[3 + 2 * i] = 0;
    }
    return len;
}

/* Reserve n bytes at the end of the configuration, or flag an overflow. */
static uint8_t *config_grow(vdev_config_desc_t *c, size_t n)
{
    if (c->overflow || c->len + n > sizeof c->bytes) {
        c->overflow = true;
        return NULL;
    }
    uint8_t *p = &c->bytes[c->len];
    c->len = (uint16_t)(c->len + n);
    return p;
}

void vdev_desc_config_begin(vdev_config_desc_t *c, uint8_t config_value, uint8_t attributes,
                            uint16_t max_power_ma)
{
    memset(c, 0, sizeof *c);
    uint8_t *p = config_grow(c, VDEV_CONFIG_DESC_SIZE);
    p[0] = VDEV_CONFIG_DESC_SIZE;
    p[1] = VDEV_DT_CONFIG;
    p[5] = config_value;
    p[6] = 0; /* iConfiguration */
    p[7] = (uint8_t)(VDEV_CONFIG_ATTR_ONE | attributes);
    p[8] = (uint8_t)(max_power_ma / 2); /* bMaxPower is in 2 mA units */
}

void vdev_desc_interface(vdev_config_desc_t *c, uint8_t number, uint8_t alt, uint8_t cls,
                         uint8_t subclass, uint8_t protocol)
{
    uint16_t at = c->len;
    uint8_t *p = config_grow(c, VDEV_INTERFACE_DESC_SIZE);
    if (!p) {
        return;
    }
    p[0] = VDEV_INTERFACE_DESC_SIZE;
    p[1] = VDEV_DT_INTERFACE;
    p[2] = number;
    p[3] = alt;
    p[4] = 0; /* bNumEndpoints: counted by vdev_desc_endpoint */
    p[5] = cls;
    p[6] = subclass;
    p[7] = protocol;
    p[8] = 0; /* iInterface */
    c->interface_at = at;
    if (alt == 0) {
        c->bytes[4]++; /* bNumInterfaces counts interfaces, not alt settings */
    }
}

void vdev_desc_endpoint(vdev_config_desc_t *c, uint8_t address, uint8_t type,
                        uint16_t max_packet_size, uint8_t interval)
{
    uint8_t *p = config_grow(c, VDEV_ENDPOINT_DESC_SIZE);
    if (!p || c->interface_at == 0) {
        c->overflow = true; /* an endpoint outside an interface is a builder bug */
        return;
    }
    p[0] = VDEV_ENDPOINT_DESC_SIZE;
    p[1] = VDEV_DT_ENDPOINT;
    p[2] = address;
    p[3] = type;
    vdev_put_le16(&p[4], max_packet_size);
    p[6] = interval;
    c->bytes[c->interface_at + 4]++;
}

void vdev_desc_iad(vdev_config_desc_t *c, uint8_t first_interface, uint8_t count, uint8_t cls,
                   uint8_t subclass, uint8_t protocol)
{
    const uint8_t iad[8] = {8, VDEV_DT_IAD, first_interface, count, cls, subclass, protocol, 0};
    vdev_desc_append(c, iad, sizeof iad);
}

void vdev_desc_append(vdev_config_desc_t *c, const uint8_t *desc, size_t len)
{
    uint8_t *p = config_grow(c, len);
    if (p) {
        memcpy(p, desc, len);
    }
}

void vdev_desc_config_end(vdev_config_desc_t *c)
{
    vdev_put_le16(&c->bytes[2], c->len);
}

/* HS intervals count 2^(n-1) microframes, FS interrupt ones milliseconds
 * and FS iso ones 2^(n-1) frames (USB 2.0 table 9-13). */
static uint8_t full_speed_interval(uint8_t type, uint8_t hs_interval)
{
    unsigned exponent = hs_interval ? hs_interval - 1u : 0u;
    if (type == 1) { /* isochronous */
        return (uint8_t)(exponent > 3 ? exponent - 3 + 1 : 1);
    }
    if (type == 3) { /* interrupt */
        unsigned ms = exponent > 3 ? 1u << (exponent - 3) : 1u;
        return (uint8_t)(ms > 255 ? 255 : ms);
    }
    return 0;
}

static uint16_t full_speed_max_packet(uint8_t type, uint16_t hs_max_packet)
{
    uint16_t size = hs_max_packet & 0x7ff;
    uint16_t limit = type == 1 ? 1023 : 64; /* iso, or bulk/interrupt */
    return size < limit ? size : limit;
}

void vdev_desc_other_speed(const vdev_config_desc_t *high_speed, vdev_config_desc_t *full_speed)
{
    *full_speed = *high_speed;
    full_speed->bytes[1] = VDEV_DT_OTHER_SPEED_CONFIG;
    vdev_desc_iter_t it;
    vdev_desc_iter_init(&it, full_speed->bytes, full_speed->len);
    for (const uint8_t *d; (d = vdev_desc_iter_next(&it)) != NULL;) {
        if (d[1] == VDEV_DT_ENDPOINT && d[0] >= VDEV_ENDPOINT_DESC_SIZE) {
            uint8_t *ep = &full_speed->bytes[d - full_speed->bytes];
            uint8_t type = ep[3] & 0x03;
            vdev_put_le16(&ep[4], full_speed_max_packet(type, vdev_get_le16(&ep[4])));
            ep[6] = full_speed_interval(type, ep[6]);
        }
    }
}

void vdev_desc_iter_init(vdev_desc_iter_t *it, const uint8_t *bytes, size_t len)
{
    it->bytes = bytes;
    it->len = len;
    it->pos = 0;
}

const uint8_t *vdev_desc_iter_next(vdev_desc_iter_t *it)
{
    if (it->pos + 2 > it->len) {
        return NULL;
    }
    const uint8_t *d = &it->bytes[it->pos];
    if (d[0] < 2 || it->pos + d[0] > it->len) {
        return NULL;
    }
    it->pos += d[0];
    return d;
}
