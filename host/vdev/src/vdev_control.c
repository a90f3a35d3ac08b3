/* The framework's side of endpoint 0: standard requests, configuration and
 * alt setting changes, and the endpoint tables derived from descriptors. */
#include <string.h>

#include "vdev_internal.h"

#define LANGID_EN_US 0x0409u

/* ---- configuration and endpoint tables ---- */

const vdev_config_desc_t *vdev_find_configuration(const vdev_t *dev, uint8_t value)
{
    for (size_t i = 0; i < dev->num_configs; i++) {
        if (dev->configs[i].bytes[5] == value) {
            return &dev->configs[i];
        }
    }
    return NULL;
}

static void record_endpoint(vdev_t *dev, const uint8_t *d, uint8_t interface)
{
    uint8_t address = d[2];
    uint8_t num = address & 0x0f;
    uint16_t max_packet = vdev_get_le16(&d[4]);
    usbip_endpoint_info_t *info = (address & 0x80) ? &dev->device.ep_in[num]
                                                   : &dev->device.ep_out[num];
    info->present = true;
    info->type = (usbip_xfer_type_t)(d[3] & 0x03);
    info->max_packet_size = max_packet & 0x7ff;
    info->mult = (uint8_t)(((max_packet >> 11) & 0x03) + 1);
    info->interval = d[6];
    if (address & 0x80) {
        dev->ep_interface_in[num] = interface;
    } else {
        dev->ep_interface_out[num] = interface;
    }
}

void vdev_apply_configuration(vdev_t *dev)
{
    usbip_device_t *d = &dev->device;
    memset(d->interfaces, 0, sizeof d->interfaces);
    memset(d->ep_in, 0, sizeof d->ep_in);
    memset(d->ep_out, 0, sizeof d->ep_out);
    d->record.bConfigurationValue = dev->config_value;
    d->record.bNumInterfaces = 0;

    const vdev_config_desc_t *config = vdev_find_configuration(dev, dev->config_value);
    if (dev->config_value == 0 || !config) {
        return; /* unconfigured: no interfaces, only ep 0 */
    }
    d->record.bNumInterfaces = config->bytes[4];

    /* Endpoints belong to the interface descriptor before them; only those
     * of each interface's current alt setting are live. */
    bool in_current_alt = false;
    uint8_t interface = 0;
    vdev_desc_iter_t it;
    vdev_desc_iter_init(&it, config->bytes, config->len);
    for (const uint8_t *desc; (desc = vdev_desc_iter_next(&it)) != NULL;) {
        if (desc[1] == VDEV_DT_INTERFACE && desc[0] >= VDEV_INTERFACE_DESC_SIZE) {
            interface = desc[2];
            in_current_alt = interface < USBIP_MAX_INTERFACES && desc[3] == dev->alt[interface];
            if (in_current_alt) {
                d->interfaces[interface].bInterfaceClass = desc[5];
                d->interfaces[interface].bInterfaceSubClass = desc[6];
                d->interfaces[interface].bInterfaceProtocol = desc[7];
            }
        } else if (desc[1] == VDEV_DT_ENDPOINT && desc[0] >= VDEV_ENDPOINT_DESC_SIZE &&
                   in_current_alt) {
            record_endpoint(dev, desc, interface);
        }
    }
}

/* Does the current configuration have this interface (and alt setting)? */
static bool has_alt_setting(const vdev_t *dev, uint16_t interface, uint16_t alt)
{
    const vdev_config_desc_t *config = vdev_find_configuration(dev, dev->config_value);
    if (dev->config_value == 0 || !config) {
        return false;
    }
    vdev_desc_iter_t it;
    vdev_desc_iter_init(&it, config->bytes, config->len);
    for (const uint8_t *desc; (desc = vdev_desc_iter_next(&it)) != NULL;) {
        if (desc[1] == VDEV_DT_INTERFACE && desc[2] == interface && desc[3] == alt) {
            return true;
        }
    }
    return false;
}

static bool interface_exists(const vdev_t *dev, uint16_t interface)
{
    return interface < USBIP_MAX_INTERFACES && has_alt_setting(dev, interface, dev->alt[interface]);
}

/* Bits of an endpoint address other than direction and number. */
static bool bad_endpoint_address(uint16_t ep_address) { return (ep_address & ~0x8fu) != 0; }

static void clear_all_halts(vdev_t *dev)
{
    memset(dev->halted_in, 0, sizeof dev->halted_in);
    memset(dev->halted_out, 0, sizeof dev->halted_out);
}

static void configuration_changed(vdev_t *dev)
{
    vdev_apply_configuration(dev);
    dev->dirty = true;
    if (dev->ops->configuration_changed) {
        dev->ops->configuration_changed(dev);
    }
}

static int set_configuration(vdev_t *dev, uint16_t value)
{
    if (value != 0 && (value > 0xff || !vdev_find_configuration(dev, (uint8_t)value))) {
        vdev_log(dev, USBIP_LOG_WARN, "SET_CONFIGURATION %u: no such configuration", value);
        return USBIP_EPIPE;
    }
    dev->config_value = (uint8_t)value;
    memset(dev->alt, 0, sizeof dev->alt);
    clear_all_halts(dev);
    configuration_changed(dev);
    vdev_log(dev, USBIP_LOG_INFO, "configuration %u", value);
    return 0;
}

static int set_interface(vdev_t *dev, uint16_t interface, uint16_t alt)
{
    if (interface >= USBIP_MAX_INTERFACES || !has_alt_setting(dev, interface, alt)) {
        vdev_log(dev, USBIP_LOG_WARN, "SET_INTERFACE %u alt %u: no such alt setting",
                 interface, alt);
        return USBIP_EPIPE;
    }
    dev->alt[interface] = (uint8_t)alt;
    /* Selecting an alt setting resets its endpoints, halt included. */
    for (unsigned num = 1; num < USBIP_MAX_ENDPOINTS; num++) {
        if (dev->ep_interface_in[num] == interface) {
            dev->halted_in[num] = false;
        }
        if (dev->ep_interface_out[num] == interface) {
            dev->halted_out[num] = false;
        }
    }
    configuration_changed(dev);
    vdev_log(dev, USBIP_LOG_INFO, "interface %u alt setting %u", interface, alt);
    return 0;
}

void vdev_reset(vdev_t *dev, vdev_reset_t why)
{
    dev->config_value = dev->default_config;
    memset(dev->alt, 0, sizeof dev->alt);
    clear_all_halts(dev);
    dev->remote_wakeup = false;
    vdev_apply_configuration(dev);
    dev->dirty = true;
    if (dev->ops->reset) {
        dev->ops->reset(dev, why);
    }
}

/* ---- endpoint halt ---- */

/* The halt bit of an endpoint of the current configuration; NULL if the
 * endpoint does not exist (ep 0 has none: it only stalls one request). */
static bool *halt_bit(vdev_t *dev, uint16_t ep_address)
{
    uint8_t num = ep_address & 0x0f;
    bool dir_in = (ep_address & 0x80) != 0;
    if (num == 0 || bad_endpoint_address(ep_address) ||
        !usbip_device_endpoint(&dev->device, num, dir_in)) {
        return NULL;
    }
    return dir_in ? &dev->halted_in[num] : &dev->halted_out[num];
}

static int set_endpoint_halt(vdev_t *dev, uint16_t ep_address, bool halt)
{
    if ((ep_address & 0x0f) == 0 && !bad_endpoint_address(ep_address)) {
        return 0; /* ep 0 is never halted for good */
    }
    bool *bit = halt_bit(dev, ep_address);
    if (!bit) {
        return USBIP_EPIPE;
    }
    *bit = halt;
    dev->dirty = true;
    if (!halt) {
        vdev_log(dev, USBIP_LOG_DEBUG, "cleared halt on ep 0x%02x", ep_address);
    }
    return 0;
}

/* ---- standard requests ---- */

static int get_status(vdev_t *dev, const vdev_setup_t *s, uint8_t *data, uint32_t room,
                      uint32_t *actual)
{
    uint8_t status[2] = {0, 0};
    switch (s->bmRequestType & USB_RECIP_MASK) {
    case USB_RECIP_DEVICE:
        status[0] = dev->remote_wakeup ? 0x02 : 0x00; /* bit 0 self-powered: no */
        break;
    case USB_RECIP_INTERFACE:
        if (!interface_exists(dev, s->wIndex)) {
            return USBIP_EPIPE;
        }
        break;
    case USB_RECIP_ENDPOINT:
        if ((s->wIndex & 0x0f) != 0 || bad_endpoint_address(s->wIndex)) {
            const bool *bit = halt_bit(dev, s->wIndex);
            if (!bit) {
                return USBIP_EPIPE;
            }
            status[0] = *bit ? 0x01 : 0x00;
        }
        break;
    default:
        return USBIP_EPIPE;
    }
    *actual = vdev_reply(data, room, status, sizeof status);
    return 0;
}

static int set_or_clear_feature(vdev_t *dev, const vdev_setup_t *s, bool set)
{
    switch (s->bmRequestType & USB_RECIP_MASK) {
    case USB_RECIP_DEVICE:
        if (s->wValue == USB_FEATURE_DEVICE_REMOTE_WAKEUP) {
            dev->remote_wakeup = set;
            return 0;
        }
        return USBIP_EPIPE; /* TEST_MODE and the rest */
    case USB_RECIP_ENDPOINT:
        if (s->wValue == USB_FEATURE_ENDPOINT_HALT) {
            return set_endpoint_halt(dev, s->wIndex, set);
        }
        return USBIP_EPIPE;
    default:
        return USBIP_EPIPE;
    }
}

static int get_string_descriptor(vdev_t *dev, uint8_t index, uint8_t *data, uint32_t room,
                                 uint32_t *actual)
{
    uint8_t desc[256];
    size_t len;
    switch (index) {
    case 0:
        desc[0] = 4;
        desc[1] = VDEV_DT_STRING;
        vdev_put_le16(&desc[2], LANGID_EN_US);
        len = 4;
        break;
    case 1:
        len = vdev_desc_build_string(desc, sizeof desc, dev->device.manufacturer);
        break;
    case 2:
        len = vdev_desc_build_string(desc, sizeof desc, dev->device.product);
        break;
    case 3:
        len = vdev_desc_build_string(desc, sizeof desc, dev->serial);
        break;
    default:
        return USBIP_EPIPE;
    }
    *actual = vdev_reply(data, room, desc, len);
    return 0;
}

static int get_descriptor(vdev_t *dev, const vdev_setup_t *s, uint8_t *data, uint32_t room,
                          uint32_t *actual)
{
    uint8_t type = (uint8_t)(s->wValue >> 8);
    uint8_t index = (uint8_t)s->wValue;
    switch (type) {
    case VDEV_DT_DEVICE:
        *actual = vdev_reply(data, room, dev->device_desc, sizeof dev->device_desc);
        return 0;
    case VDEV_DT_CONFIG:
        if (index >= dev->num_configs) {
            return USBIP_EPIPE;
        }
        *actual = vdev_reply(data, room, dev->configs[index].bytes, dev->configs[index].len);
        return 0;
    case VDEV_DT_OTHER_SPEED_CONFIG: {
        if (index >= dev->num_configs) {
            return USBIP_EPIPE;
        }
        vdev_config_desc_t other;
        vdev_desc_other_speed(&dev->configs[index], &other);
        *actual = vdev_reply(data, room, other.bytes, other.len);
        return 0;
    }
    case VDEV_DT_STRING:
        return get_string_descriptor(dev, index, data, room, actual);
    case VDEV_DT_DEVICE_QUALIFIER: {
        uint8_t qualifier[VDEV_QUALIFIER_DESC_SIZE];
        vdev_desc_build_qualifier(qualifier, dev->device_desc);
        *actual = vdev_reply(data, room, qualifier, sizeof qualifier);
        return 0;
    }
    default:
        return USBIP_EPIPE; /* BOS and others a USB 2.0 device does not have */
    }
}

/* Standard requests the framework answers; VDEV_CONTROL_UNHANDLED for the
 * kind's own (e.g. GET_DESCRIPTOR of a HID report descriptor). */
static int standard_request(vdev_t *dev, const vdev_setup_t *s, uint8_t *data, uint32_t len,
                            uint32_t *actual)
{
    uint8_t recipient = s->bmRequestType & USB_RECIP_MASK;
    switch (s->bRequest) {
    case USB_REQ_GET_STATUS:
        return get_status(dev, s, data, len, actual);
    case USB_REQ_CLEAR_FEATURE:
        return set_or_clear_feature(dev, s, false);
    case USB_REQ_SET_FEATURE:
        return set_or_clear_feature(dev, s, true);
    case USB_REQ_SET_ADDRESS:
        return 0; /* the address lives on the client's virtual bus */
    case USB_REQ_GET_DESCRIPTOR:
        if (recipient != USB_RECIP_DEVICE) {
            return VDEV_CONTROL_UNHANDLED;
        }
        return get_descriptor(dev, s, data, len, actual);
    case USB_REQ_GET_CONFIGURATION:
        *actual = vdev_reply(data, len, &dev->config_value, 1);
        return 0;
    case USB_REQ_SET_CONFIGURATION:
        return set_configuration(dev, s->wValue);
    case USB_REQ_GET_INTERFACE:
        if (!interface_exists(dev, s->wIndex)) {
            return USBIP_EPIPE;
        }
        *actual = vdev_reply(data, len, &dev->alt[s->wIndex], 1);
        return 0;
    case USB_REQ_SET_INTERFACE:
        return set_interface(dev, s->wIndex, s->wValue);
    default:
        return VDEV_CONTROL_UNHANDLED;
    }
}

static int plain_request(vdev_t *dev, const vdev_setup_t *s, uint8_t *data, uint32_t len,
                         uint32_t *actual)
{
    int status = VDEV_CONTROL_UNHANDLED;
    if ((s->bmRequestType & USB_TYPE_MASK) == USB_TYPE_STANDARD) {
        status = standard_request(dev, s, data, len, actual);
    }
    if (status == VDEV_CONTROL_UNHANDLED && dev->ops->control) {
        status = dev->ops->control(dev, s, data, len, actual);
    }
    if (status == VDEV_CONTROL_UNHANDLED) {
        vdev_log(dev, USBIP_LOG_DEBUG,
                 "stall unsupported request type 0x%02x req 0x%02x value 0x%04x index 0x%04x",
                 s->bmRequestType, s->bRequest, s->wValue, s->wIndex);
        status = USBIP_EPIPE;
    }
    return status;
}

static void decode_setup(const uint8_t raw[8], vdev_setup_t *s)
{
    s->bmRequestType = raw[0];
    s->bRequest = raw[1];
    s->wValue = vdev_get_le16(&raw[2]);
    s->wIndex = vdev_get_le16(&raw[4]);
    s->wLength = vdev_get_le16(&raw[6]);
}

void vdev_run_control(vdev_t *dev, usbip_urb_t *urb)
{
    vdev_setup_t s;
    decode_setup(urb->setup, &s);
    /* The data stage is what both the setup packet and the URB allow. */
    uint32_t len = vdev_min_u32(s.wLength, urb->length);
    uint32_t actual = 0;
    int status;
    if (urb->type != USBIP_XFER_CONTROL) {
        status = USBIP_EPIPE;
    } else {
        switch (urb->control_kind) {
        case USBIP_CONTROL_SET_CONFIGURATION:
            status = set_configuration(dev, s.wValue);
            break;
        case USBIP_CONTROL_SET_INTERFACE:
            status = set_interface(dev, s.wIndex, s.wValue);
            break;
        case USBIP_CONTROL_CLEAR_HALT:
            status = set_endpoint_halt(dev, s.wIndex, false);
            break;
        case USBIP_CONTROL_RESET_DEVICE:
            vdev_log(dev, USBIP_LOG_INFO, "port reset");
            vdev_reset(dev, VDEV_RESET_PORT);
            status = 0;
            break;
        case USBIP_CONTROL_PLAIN:
        default:
            status = plain_request(dev, &s, urb->buffer, len, &actual);
            break;
        }
    }
    urb->status = status;
    if (status != 0) {
        actual = 0;
    } else if (!(s.bmRequestType & USB_DIR_IN)) {
        actual = len; /* an OUT data stage is taken whole */
    }
    urb->actual_length = actual;
}
