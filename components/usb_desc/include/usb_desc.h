/*
 * usb_desc: USB device and configuration descriptors, parsed into what the
 * USB/IP core needs.
 *
 * A configuration descriptor (the whole wTotalLength blob, as the ESP-IDF
 * USB Host Library caches it at enumeration) is walked once into an index of
 * interfaces, alternate settings and endpoints. From that index and the
 * current alternate setting of each interface we derive the core's view of
 * a device: the DEVLIST record, the interface records and the ep_in/ep_out
 * tables the session classifies URBs with (usbip_backend.h).
 *
 * Every length is checked: a descriptor shorter than 2 bytes or running past
 * min(wTotalLength, buffer) ends the walk; what was parsed before it is kept
 * and the defect is reported in usb_desc_config_t.problems, the way Linux
 * tolerates trailing junk. Pure C, no allocation, no ESP-IDF includes.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "usbip_backend.h"
#include "usbip_err.h"
#include "usbip_proto.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Descriptor types (USB 2.0 table 9-5). */
#define USB_DESC_TYPE_DEVICE    0x01u
#define USB_DESC_TYPE_CONFIG    0x02u
#define USB_DESC_TYPE_STRING    0x03u
#define USB_DESC_TYPE_INTERFACE 0x04u
#define USB_DESC_TYPE_ENDPOINT  0x05u

#define USB_DESC_DEVICE_SIZE    18u
#define USB_DESC_CONFIG_SIZE    9u
#define USB_DESC_INTERFACE_SIZE 9u
#define USB_DESC_ENDPOINT_SIZE  7u

#define USB_DESC_CLASS_HUB 0x09u

/* Index limits. A UVC camera with a dozen alternate settings or a composite
 * device with 8 functions fits with room to spare; anything beyond is
 * dropped and flagged USB_DESC_PROBLEM_TOO_MANY. */
#define USB_DESC_MAX_INTERFACES  USBIP_MAX_INTERFACES
#define USB_DESC_MAX_ALTSETTINGS 64u
#define USB_DESC_MAX_ENDPOINTS   128u

/* Defects tolerated while parsing (bits of usb_desc_config_t.problems). */
#define USB_DESC_PROBLEM_TRUNCATED       0x001u /* wTotalLength larger than the buffer */
#define USB_DESC_PROBLEM_BAD_LENGTH      0x002u /* bLength < 2 or past the end: walk stopped */
#define USB_DESC_PROBLEM_ORPHAN_ENDPOINT 0x004u /* endpoint before any interface */
#define USB_DESC_PROBLEM_BAD_ENDPOINT    0x008u /* short endpoint descriptor or endpoint 0 */
#define USB_DESC_PROBLEM_DUPLICATE_ALT   0x010u /* same interface/alt twice: later one ignored */
#define USB_DESC_PROBLEM_TOO_MANY        0x020u /* an index limit above was reached */
#define USB_DESC_PROBLEM_ENDPOINT_COUNT  0x040u /* bNumEndpoints disagrees with what follows */
#define USB_DESC_PROBLEM_SHORT_INTERFACE 0x080u /* interface descriptor shorter than 9 bytes */
#define USB_DESC_PROBLEM_INTERFACE_COUNT 0x100u /* bNumInterfaces disagrees with what follows */
#define USB_DESC_PROBLEM_DUPLICATE_EP    0x200u /* one endpoint address twice in one alt */

typedef struct {
    uint8_t address;          /* bEndpointAddress (bit 7 = IN) */
    uint8_t attributes;       /* bmAttributes (bits 0..1 = transfer type) */
    uint16_t max_packet_size; /* wMaxPacketSize as found (bits 11..12 = extra transactions) */
    uint8_t interval;         /* bInterval */
} usb_desc_endpoint_t;

typedef struct {
    uint8_t number;           /* bInterfaceNumber */
    uint8_t alt;              /* bAlternateSetting */
    uint8_t cls, subclass, protocol;
    uint8_t num_endpoints;    /* endpoint descriptors found (not the declared count) */
    uint16_t first_endpoint;  /* index of the first one in usb_desc_config_t.endpoints */
} usb_desc_altsetting_t;

typedef struct {
    uint8_t configuration_value; /* bConfigurationValue */
    uint8_t attributes;          /* bmAttributes */
    uint8_t declared_interfaces; /* bNumInterfaces as declared */
    uint8_t num_interfaces;      /* distinct interface numbers found */
    uint8_t interface_numbers[USB_DESC_MAX_INTERFACES]; /* in order of first appearance */
    uint16_t num_altsettings;
    usb_desc_altsetting_t altsettings[USB_DESC_MAX_ALTSETTINGS];
    uint16_t num_endpoints;
    usb_desc_endpoint_t endpoints[USB_DESC_MAX_ENDPOINTS];
    uint32_t problems;           /* USB_DESC_PROBLEM_* */
} usb_desc_config_t;

/* Parse a configuration descriptor of len bytes (len may exceed
 * wTotalLength; only wTotalLength bytes are read). INVALID_ARG (and *out
 * zeroed) when the 9-byte header itself is unusable: len < 9, bLength < 9,
 * bDescriptorType != 2 or wTotalLength < 9. Otherwise OK, with tolerated
 * defects in out->problems. */
usbip_err_t usb_desc_parse_config(const uint8_t *buf, size_t len, usb_desc_config_t *out);

/* One line naming the problem bits ("truncated, bad length"), for logs. */
void usb_desc_problems_text(uint32_t problems, char *out, size_t out_len);

/* Position of interface `number` in interface_numbers[], or -1. */
int usb_desc_interface_index(const usb_desc_config_t *cfg, uint8_t number);
/* The alternate setting (number, alt), or NULL. */
const usb_desc_altsetting_t *usb_desc_find_alt(const usb_desc_config_t *cfg, uint8_t number,
                                               uint8_t alt);
/* How many alternate settings interface `number` has (0 if none). */
unsigned usb_desc_alt_count(const usb_desc_config_t *cfg, uint8_t number);
/* Endpoint i (0-based) of an alternate setting. */
const usb_desc_endpoint_t *usb_desc_alt_endpoint(const usb_desc_config_t *cfg,
                                                 const usb_desc_altsetting_t *alt, unsigned i);

/* Initial alternate settings: alts[i] = 0 when interface index i has an
 * alternate setting 0, else its first one (a malformed but seen case). */
void usb_desc_default_alts(const usb_desc_config_t *cfg, uint8_t alts[USB_DESC_MAX_INTERFACES]);

/* The core's view of one endpoint: type = bmAttributes bits 0..1,
 * max_packet_size = wMaxPacketSize bits 0..10, mult = bits 11..12 + 1
 * (1 when the field holds 3, which USB 2.0 reserves), interval = bInterval. */
usbip_endpoint_info_t usb_desc_endpoint_info(const usb_desc_endpoint_t *ep);

/* Interface index (into interface_numbers[]) whose current alternate
 * setting has endpoint ep_address, or -1. alts[i] is the current alternate
 * setting of interface index i. */
int usb_desc_endpoint_owner(const usb_desc_config_t *cfg, const uint8_t *alts,
                            uint8_t ep_address);

/* Fill the device record fields that come from an 18-byte device
 * descriptor, plus speed: idVendor, idProduct, bcdDevice, class triple,
 * bNumConfigurations. Leaves busid/busnum/devnum/path alone (the registry
 * sets them) and bConfigurationValue/bNumInterfaces (usb_desc_fill_device).
 * INVALID_ARG if len < 18, bLength < 18 or bDescriptorType != 1. */
usbip_err_t usb_desc_device_record(const uint8_t *desc, size_t len, usbip_speed_t speed,
                                   usbip_device_record_t *rec);

/* bMaxPacketSize0 of a device descriptor (0 if it is too short). */
uint8_t usb_desc_max_packet_size0(const uint8_t *desc, size_t len);

/* Configuration-dependent parts of an exportable device: record
 * bConfigurationValue and bNumInterfaces, interfaces[] (class triple of the
 * current alternate setting, or of the interface's first one if the current
 * is missing), and ep_in/ep_out rebuilt from scratch: endpoint 0 as a
 * control endpoint of max_packet_size0, then the endpoints of each
 * interface's current alternate setting (alts[i] for interface index i;
 * NULL means alternate setting 0 everywhere). An endpoint address claimed
 * twice keeps its first owner. */
void usb_desc_fill_device(const usb_desc_config_t *cfg, const uint8_t *alts,
                          uint8_t max_packet_size0, usbip_device_t *dev);

/* A string descriptor (UTF-16LE, bLength first) as UTF-8 into out
 * (NUL-terminated, truncated at a character boundary). Control characters
 * and unpaired surrogates become '?'. Returns the bytes written (without
 * the NUL); 0 for a malformed descriptor. */
size_t usb_desc_string_utf8(const uint8_t *desc, size_t len, char *out, size_t out_len);

#ifdef __cplusplus
}
#endif
