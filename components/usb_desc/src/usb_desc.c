/*
 * usb_desc: configuration descriptor walk and the derived USB/IP device view.
 * See usb_desc.h for the rules; every read below is bounds-checked against
 * min(wTotalLength, buffer length).
 */
#include "usb_desc.h"

#include <stdio.h>
#include <string.h>

static uint16_t get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

/* ---- configuration walk ---- */

typedef enum {
    OWNER_NONE,    /* no interface yet: an endpoint here is an orphan */
    OWNER_SKIP,    /* the current interface was dropped: ignore its endpoints */
    OWNER_CURRENT, /* endpoints belong to altsettings[current] */
} owner_state_t;

typedef struct {
    usb_desc_config_t *cfg;
    owner_state_t owner;
    uint16_t current;                              /* index into altsettings */
    uint8_t declared_eps[USB_DESC_MAX_ALTSETTINGS]; /* bNumEndpoints of each alt */
} walk_t;

static int find_alt_index(const usb_desc_config_t *cfg, uint8_t number, uint8_t alt)
{
    for (uint16_t i = 0; i < cfg->num_altsettings; i++) {
        if (cfg->altsettings[i].number == number && cfg->altsettings[i].alt == alt) {
            return i;
        }
    }
    return -1;
}

static bool remember_interface_number(usb_desc_config_t *cfg, uint8_t number)
{
    for (uint8_t i = 0; i < cfg->num_interfaces; i++) {
        if (cfg->interface_numbers[i] == number) {
            return true;
        }
    }
    if (cfg->num_interfaces >= USB_DESC_MAX_INTERFACES) {
        return false;
    }
    cfg->interface_numbers[cfg->num_interfaces++] = number;
    return true;
}

static void walk_interface(walk_t *w, const uint8_t *d, uint8_t blen)
{
    usb_desc_config_t *cfg = w->cfg;
    if (blen < USB_DESC_INTERFACE_SIZE) {
        cfg->problems |= USB_DESC_PROBLEM_SHORT_INTERFACE;
        w->owner = OWNER_SKIP;
        return;
    }
    const uint8_t number = d[2], alt = d[3];
    if (find_alt_index(cfg, number, alt) >= 0) {
        cfg->problems |= USB_DESC_PROBLEM_DUPLICATE_ALT;
        w->owner = OWNER_SKIP;
        return;
    }
    if (cfg->num_altsettings >= USB_DESC_MAX_ALTSETTINGS ||
        !remember_interface_number(cfg, number)) {
        cfg->problems |= USB_DESC_PROBLEM_TOO_MANY;
        w->owner = OWNER_SKIP;
        return;
    }
    usb_desc_altsetting_t *a = &cfg->altsettings[cfg->num_altsettings];
    a->number = number;
    a->alt = alt;
    a->cls = d[5];
    a->subclass = d[6];
    a->protocol = d[7];
    a->num_endpoints = 0;
    a->first_endpoint = cfg->num_endpoints;
    w->declared_eps[cfg->num_altsettings] = d[4];
    w->current = cfg->num_altsettings++;
    w->owner = OWNER_CURRENT;
}

static bool alt_has_endpoint(const usb_desc_config_t *cfg, const usb_desc_altsetting_t *a,
                             uint8_t address)
{
    for (unsigned i = 0; i < a->num_endpoints; i++) {
        if (cfg->endpoints[a->first_endpoint + i].address == address) {
            return true;
        }
    }
    return false;
}

static void walk_endpoint(walk_t *w, const uint8_t *d, uint8_t blen)
{
    usb_desc_config_t *cfg = w->cfg;
    if (w->owner == OWNER_NONE) {
        cfg->problems |= USB_DESC_PROBLEM_ORPHAN_ENDPOINT;
        return;
    }
    if (w->owner == OWNER_SKIP) {
        return;
    }
    /* Bits 4..6 of bEndpointAddress are reserved: keep number and direction. */
    const uint8_t address = (uint8_t)(d[2] & 0x8fu);
    if (blen < USB_DESC_ENDPOINT_SIZE || (address & 0x0fu) == 0) {
        cfg->problems |= USB_DESC_PROBLEM_BAD_ENDPOINT;
        return;
    }
    usb_desc_altsetting_t *a = &cfg->altsettings[w->current];
    if (alt_has_endpoint(cfg, a, address)) {
        cfg->problems |= USB_DESC_PROBLEM_DUPLICATE_EP;
        return;
    }
    if (cfg->num_endpoints >= USB_DESC_MAX_ENDPOINTS || a->num_endpoints == UINT8_MAX) {
        cfg->problems |= USB_DESC_PROBLEM_TOO_MANY;
        return;
    }
    usb_desc_endpoint_t *ep = &cfg->endpoints[cfg->num_endpoints++];
    ep->address = address;
    ep->attributes = d[3];
    ep->max_packet_size = get_le16(&d[4]);
    ep->interval = d[6];
    a->num_endpoints++;
}

static void check_declared_counts(const walk_t *w)
{
    usb_desc_config_t *cfg = w->cfg;
    for (uint16_t i = 0; i < cfg->num_altsettings; i++) {
        if (w->declared_eps[i] != cfg->altsettings[i].num_endpoints) {
            cfg->problems |= USB_DESC_PROBLEM_ENDPOINT_COUNT;
        }
    }
    if (cfg->declared_interfaces != cfg->num_interfaces) {
        cfg->problems |= USB_DESC_PROBLEM_INTERFACE_COUNT;
    }
}

usbip_err_t usb_desc_parse_config(const uint8_t *buf, size_t len, usb_desc_config_t *out)
{
    memset(out, 0, sizeof *out);
    if (!buf || len < USB_DESC_CONFIG_SIZE || buf[0] < USB_DESC_CONFIG_SIZE ||
        buf[1] != USB_DESC_TYPE_CONFIG) {
        return USBIP_ERR_INVALID_ARG;
    }
    const uint16_t total = get_le16(&buf[2]);
    if (total < USB_DESC_CONFIG_SIZE) {
        return USBIP_ERR_INVALID_ARG;
    }
    size_t end = total;
    if (end > len) {
        end = len;
        out->problems |= USB_DESC_PROBLEM_TRUNCATED;
    }
    out->declared_interfaces = buf[4];
    out->configuration_value = buf[5];
    out->attributes = buf[7];

    walk_t w = {.cfg = out, .owner = OWNER_NONE};
    size_t pos = buf[0];
    if (pos > end) {
        out->problems |= USB_DESC_PROBLEM_BAD_LENGTH;
    }
    while (pos < end) {
        const uint8_t *d = &buf[pos];
        if (end - pos < 2 || d[0] < 2 || d[0] > end - pos) {
            out->problems |= USB_DESC_PROBLEM_BAD_LENGTH;
            break;
        }
        if (d[1] == USB_DESC_TYPE_INTERFACE) {
            walk_interface(&w, d, d[0]);
        } else if (d[1] == USB_DESC_TYPE_ENDPOINT) {
            walk_endpoint(&w, d, d[0]);
        }
        pos += d[0];
    }
    check_declared_counts(&w);
    return USBIP_OK;
}

void usb_desc_problems_text(uint32_t problems, char *out, size_t out_len)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } names[] = {
        {USB_DESC_PROBLEM_TRUNCATED, "truncated"},
        {USB_DESC_PROBLEM_BAD_LENGTH, "bad descriptor length"},
        {USB_DESC_PROBLEM_ORPHAN_ENDPOINT, "endpoint outside an interface"},
        {USB_DESC_PROBLEM_BAD_ENDPOINT, "bad endpoint descriptor"},
        {USB_DESC_PROBLEM_DUPLICATE_ALT, "duplicate alternate setting"},
        {USB_DESC_PROBLEM_TOO_MANY, "too many interfaces/alternate settings/endpoints"},
        {USB_DESC_PROBLEM_ENDPOINT_COUNT, "bNumEndpoints mismatch"},
        {USB_DESC_PROBLEM_SHORT_INTERFACE, "short interface descriptor"},
        {USB_DESC_PROBLEM_INTERFACE_COUNT, "bNumInterfaces mismatch"},
        {USB_DESC_PROBLEM_DUPLICATE_EP, "duplicate endpoint address"},
    };
    if (!out || out_len == 0) {
        return;
    }
    out[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(problems & names[i].bit)) {
            continue;
        }
        int n = snprintf(out + used, out_len - used, "%s%s", used ? ", " : "", names[i].name);
        if (n < 0 || (size_t)n >= out_len - used) {
            return; /* truncated: what fits is there */
        }
        used += (size_t)n;
    }
}

/* ---- lookups ---- */

int usb_desc_interface_index(const usb_desc_config_t *cfg, uint8_t number)
{
    for (uint8_t i = 0; i < cfg->num_interfaces; i++) {
        if (cfg->interface_numbers[i] == number) {
            return i;
        }
    }
    return -1;
}

const usb_desc_altsetting_t *usb_desc_find_alt(const usb_desc_config_t *cfg, uint8_t number,
                                               uint8_t alt)
{
    int i = find_alt_index(cfg, number, alt);
    return i < 0 ? NULL : &cfg->altsettings[i];
}

unsigned usb_desc_alt_count(const usb_desc_config_t *cfg, uint8_t number)
{
    unsigned n = 0;
    for (uint16_t i = 0; i < cfg->num_altsettings; i++) {
        n += cfg->altsettings[i].number == number;
    }
    return n;
}

const usb_desc_endpoint_t *usb_desc_alt_endpoint(const usb_desc_config_t *cfg,
                                                 const usb_desc_altsetting_t *alt, unsigned i)
{
    if (!alt || i >= alt->num_endpoints) {
        return NULL;
    }
    return &cfg->endpoints[alt->first_endpoint + i];
}

static const usb_desc_altsetting_t *first_alt_of(const usb_desc_config_t *cfg, uint8_t number)
{
    for (uint16_t i = 0; i < cfg->num_altsettings; i++) {
        if (cfg->altsettings[i].number == number) {
            return &cfg->altsettings[i];
        }
    }
    return NULL;
}

void usb_desc_default_alts(const usb_desc_config_t *cfg, uint8_t alts[USB_DESC_MAX_INTERFACES])
{
    memset(alts, 0, USB_DESC_MAX_INTERFACES);
    for (uint8_t i = 0; i < cfg->num_interfaces; i++) {
        const uint8_t number = cfg->interface_numbers[i];
        if (!usb_desc_find_alt(cfg, number, 0)) {
            const usb_desc_altsetting_t *first = first_alt_of(cfg, number);
            alts[i] = first ? first->alt : 0;
        }
    }
}

usbip_endpoint_info_t usb_desc_endpoint_info(const usb_desc_endpoint_t *ep)
{
    const unsigned extra = (ep->max_packet_size >> 11) & 0x3u;
    usbip_endpoint_info_t info = {
        .present = true,
        .type = (usbip_xfer_type_t)(ep->attributes & 0x3u),
        .max_packet_size = (uint16_t)(ep->max_packet_size & 0x7ffu),
        .mult = (uint8_t)(extra == 3 ? 1 : extra + 1),
        .interval = ep->interval,
    };
    return info;
}

static const usb_desc_altsetting_t *current_alt(const usb_desc_config_t *cfg,
                                                const uint8_t *alts, uint8_t index)
{
    return usb_desc_find_alt(cfg, cfg->interface_numbers[index], alts ? alts[index] : 0);
}

int usb_desc_endpoint_owner(const usb_desc_config_t *cfg, const uint8_t *alts,
                            uint8_t ep_address)
{
    for (uint8_t i = 0; i < cfg->num_interfaces; i++) {
        const usb_desc_altsetting_t *a = current_alt(cfg, alts, i);
        if (a && alt_has_endpoint(cfg, a, ep_address)) {
            return i;
        }
    }
    return -1;
}

/* ---- the USB/IP device view ---- */

usbip_err_t usb_desc_device_record(const uint8_t *desc, size_t len, usbip_speed_t speed,
                                   usbip_device_record_t *rec)
{
    if (!desc || len < USB_DESC_DEVICE_SIZE || desc[0] < USB_DESC_DEVICE_SIZE ||
        desc[1] != USB_DESC_TYPE_DEVICE) {
        return USBIP_ERR_INVALID_ARG;
    }
    rec->speed = (uint32_t)speed;
    rec->bDeviceClass = desc[4];
    rec->bDeviceSubClass = desc[5];
    rec->bDeviceProtocol = desc[6];
    rec->idVendor = get_le16(&desc[8]);
    rec->idProduct = get_le16(&desc[10]);
    rec->bcdDevice = get_le16(&desc[12]);
    rec->bNumConfigurations = desc[17];
    return USBIP_OK;
}

uint8_t usb_desc_max_packet_size0(const uint8_t *desc, size_t len)
{
    return (desc && len >= 8) ? desc[7] : 0;
}

static void add_endpoint(usbip_device_t *dev, const usb_desc_endpoint_t *ep)
{
    usbip_endpoint_info_t *table = (ep->address & 0x80u) ? dev->ep_in : dev->ep_out;
    usbip_endpoint_info_t *slot = &table[ep->address & 0x0fu];
    if (!slot->present) {
        *slot = usb_desc_endpoint_info(ep);
    }
}

void usb_desc_fill_device(const usb_desc_config_t *cfg, const uint8_t *alts,
                          uint8_t max_packet_size0, usbip_device_t *dev)
{
    dev->record.bConfigurationValue = cfg->configuration_value;
    dev->record.bNumInterfaces = cfg->num_interfaces;
    memset(dev->interfaces, 0, sizeof dev->interfaces);
    memset(dev->ep_in, 0, sizeof dev->ep_in);
    memset(dev->ep_out, 0, sizeof dev->ep_out);
    const usbip_endpoint_info_t ep0 = {
        .present = true, .type = USBIP_XFER_CONTROL,
        .max_packet_size = max_packet_size0 ? max_packet_size0 : 64, .mult = 1};
    dev->ep_in[0] = ep0;
    dev->ep_out[0] = ep0;
    for (uint8_t i = 0; i < cfg->num_interfaces && i < USBIP_MAX_INTERFACES; i++) {
        const usb_desc_altsetting_t *a = current_alt(cfg, alts, i);
        const usb_desc_altsetting_t *described = a ? a : first_alt_of(cfg, cfg->interface_numbers[i]);
        if (described) {
            dev->interfaces[i].bInterfaceClass = described->cls;
            dev->interfaces[i].bInterfaceSubClass = described->subclass;
            dev->interfaces[i].bInterfaceProtocol = described->protocol;
        }
        for (unsigned e = 0; a && e < a->num_endpoints; e++) {
            add_endpoint(dev, &cfg->endpoints[a->first_endpoint + e]);
        }
    }
}

/* ---- strings ---- */

static size_t utf8_encode(uint32_t cp, char buf[4])
{
    if (cp < 0x80) {
        buf[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        buf[0] = (char)(0xc0 | (cp >> 6));
        buf[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        buf[0] = (char)(0xe0 | (cp >> 12));
        buf[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        buf[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    buf[0] = (char)(0xf0 | (cp >> 18));
    buf[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    buf[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    buf[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Next code point of UTF-16LE units[0..n); *used = units consumed. */
static uint32_t utf16_next(const uint8_t *units, size_t n, size_t *used)
{
    const uint16_t u = get_le16(units);
    *used = 1;
    if (u >= 0xd800 && u <= 0xdbff && n >= 2) {
        const uint16_t low = get_le16(units + 2);
        if (low >= 0xdc00 && low <= 0xdfff) {
            *used = 2;
            return 0x10000u + (((uint32_t)u - 0xd800u) << 10) + (low - 0xdc00u);
        }
    }
    if (u >= 0xd800 && u <= 0xdfff) {
        return '?'; /* unpaired surrogate */
    }
    if (u < 0x20 || u == 0x7f) {
        return '?';
    }
    return u;
}

size_t usb_desc_string_utf8(const uint8_t *desc, size_t len, char *out, size_t out_len)
{
    if (!out || out_len == 0) {
        return 0;
    }
    out[0] = '\0';
    if (!desc || len < 2 || desc[0] < 2 || desc[1] != USB_DESC_TYPE_STRING) {
        return 0;
    }
    const size_t avail = desc[0] < len ? desc[0] : len;
    const size_t units = (avail - 2) / 2;
    size_t written = 0;
    for (size_t i = 0; i < units;) {
        size_t used;
        const uint32_t cp = utf16_next(&desc[2 + 2 * i], units - i, &used);
        char enc[4];
        const size_t k = utf8_encode(cp, enc);
        if (written + k >= out_len) {
            break;
        }
        memcpy(out + written, enc, k);
        written += k;
        i += used;
    }
    out[written] = '\0';
    return written;
}
