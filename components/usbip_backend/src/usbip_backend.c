#include "usbip_backend.h"

#include <stddef.h>

usbip_control_kind_t usbip_control_kind_of(const uint8_t setup[8])
{
    const uint8_t request_type = setup[0];
    const uint8_t request = setup[1];
    const uint16_t value = (uint16_t)(setup[2] | (setup[3] << 8));

    /* The Linux stub matches bmRequestType exactly (ref §4.1). */
    if (request_type == 0x00 && request == 9) {
        return USBIP_CONTROL_SET_CONFIGURATION;
    }
    if (request_type == 0x01 && request == 11) {
        return USBIP_CONTROL_SET_INTERFACE;
    }
    if (request_type == 0x02 && request == 1 && value == 0) {
        return USBIP_CONTROL_CLEAR_HALT;
    }
    if (request_type == 0x23 && request == 3 && value == 4) {
        return USBIP_CONTROL_RESET_DEVICE;
    }
    return USBIP_CONTROL_PLAIN;
}

const usbip_endpoint_info_t *usbip_device_endpoint(const usbip_device_t *dev, uint8_t ep,
                                                   bool dir_in)
{
    if (ep >= USBIP_MAX_ENDPOINTS) {
        return NULL;
    }
    const usbip_endpoint_info_t *info = dir_in ? &dev->ep_in[ep] : &dev->ep_out[ep];
    if (ep == 0 && !info->present) {
        /* Every device has its default control pipe, described or not. */
        static const usbip_endpoint_info_t default_control = {
            .present = true, .type = USBIP_XFER_CONTROL, .max_packet_size = 64, .mult = 1};
        return &default_control;
    }
    return info->present ? info : NULL;
}
