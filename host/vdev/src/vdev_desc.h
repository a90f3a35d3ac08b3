/*
 * vdev_desc: build USB descriptors as byte arrays, and walk them again.
 *
 * A configuration descriptor is built by appending interface, endpoint and
 * class descriptors; the builder counts each interface's endpoints and the
 * configuration's interfaces itself and patches wTotalLength at the end, so
 * the counts can never disagree with what was appended. The framework later
 * derives the endpoint tables by walking the very same bytes.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VDEV_DESC_CONFIG_MAX 256u

/* Descriptor types (USB 2.0 table 9-5, plus IAD and the class ones we use). */
#define VDEV_DT_DEVICE           0x01u
#define VDEV_DT_CONFIG           0x02u
#define VDEV_DT_STRING           0x03u
#define VDEV_DT_INTERFACE        0x04u
#define VDEV_DT_ENDPOINT         0x05u
#define VDEV_DT_DEVICE_QUALIFIER 0x06u
#define VDEV_DT_OTHER_SPEED_CONFIG 0x07u
#define VDEV_DT_IAD              0x0bu
#define VDEV_DT_HID              0x21u
#define VDEV_DT_HID_REPORT       0x22u
#define VDEV_DT_CS_INTERFACE     0x24u

#define VDEV_DEVICE_DESC_SIZE    18u
#define VDEV_QUALIFIER_DESC_SIZE 10u
#define VDEV_CONFIG_DESC_SIZE    9u
#define VDEV_INTERFACE_DESC_SIZE 9u
#define VDEV_ENDPOINT_DESC_SIZE  7u

/* bmAttributes of a configuration: bit 7 is reserved and always set. */
#define VDEV_CONFIG_ATTR_ONE 0x80u

typedef struct {
    uint16_t vid, pid, bcd_device;
    uint8_t device_class, device_subclass, device_protocol;
    uint8_t max_packet_size0;
    uint8_t num_configurations;
} vdev_device_desc_info_t;

void vdev_desc_build_device(uint8_t out[VDEV_DEVICE_DESC_SIZE],
                            const vdev_device_desc_info_t *info);
/* The qualifier mirrors the device descriptor (what the device would look
 * like at the other speed). */
void vdev_desc_build_qualifier(uint8_t out[VDEV_QUALIFIER_DESC_SIZE],
                               const uint8_t device[VDEV_DEVICE_DESC_SIZE]);

/* A string descriptor from ASCII text (UTF-16LE); returns its length. */
size_t vdev_desc_build_string(uint8_t *out, size_t cap, const char *ascii);

typedef struct {
    uint8_t bytes[VDEV_DESC_CONFIG_MAX];
    uint16_t len;
    uint16_t interface_at; /* offset of the newest interface descriptor, 0 = none */
    bool overflow;         /* a builder bug: the descriptor did not fit */
} vdev_config_desc_t;

void vdev_desc_config_begin(vdev_config_desc_t *c, uint8_t config_value, uint8_t attributes,
                            uint16_t max_power_ma);
void vdev_desc_interface(vdev_config_desc_t *c, uint8_t number, uint8_t alt, uint8_t cls,
                         uint8_t subclass, uint8_t protocol);
void vdev_desc_endpoint(vdev_config_desc_t *c, uint8_t address, uint8_t type,
                        uint16_t max_packet_size, uint8_t interval);
void vdev_desc_iad(vdev_config_desc_t *c, uint8_t first_interface, uint8_t count, uint8_t cls,
                   uint8_t subclass, uint8_t protocol);
/* Any other descriptor (class-specific), given whole including bLength. */
void vdev_desc_append(vdev_config_desc_t *c, const uint8_t *desc, size_t len);
void vdev_desc_config_end(vdev_config_desc_t *c);

/* The configuration as the device would describe it at full speed, for
 * GET_DESCRIPTOR(OTHER_SPEED_CONFIGURATION): same layout, descriptor type 7,
 * full-speed packet sizes and intervals. */
void vdev_desc_other_speed(const vdev_config_desc_t *high_speed, vdev_config_desc_t *full_speed);

/* Walk the descriptors of a configuration one by one. */
typedef struct {
    const uint8_t *bytes;
    size_t len, pos;
} vdev_desc_iter_t;

void vdev_desc_iter_init(vdev_desc_iter_t *it, const uint8_t *bytes, size_t len);
/* The next descriptor, or NULL at the end or at a malformed one. */
const uint8_t *vdev_desc_iter_next(vdev_desc_iter_t *it);

static inline uint16_t vdev_get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline void vdev_put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
