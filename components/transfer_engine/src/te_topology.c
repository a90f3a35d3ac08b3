/*
 * te_topology: port paths for bus ids, speeds, transaction translator check.
 */
#include "te_topology.h"

usbip_speed_t te_speed_to_usbip(int library_speed)
{
    switch (library_speed) {
    case 0: return USBIP_SPEED_LOW;
    case 1: return USBIP_SPEED_FULL;
    case 2: return USBIP_SPEED_HIGH;
    default: return USBIP_SPEED_UNKNOWN;
    }
}

usbip_err_t te_port_path(const uint8_t *hub_ports, size_t hops, uint8_t *ports,
                         size_t max_depth, size_t *depth)
{
    if (hops + 1 > max_depth) {
        return USBIP_ERR_INVALID_ARG;
    }
    ports[0] = TE_ROOT_PORT;
    for (size_t i = 0; i < hops; i++) {
        const uint8_t port = hub_ports[hops - 1 - i]; /* reverse: root side first */
        if (port == 0) {
            return USBIP_ERR_INVALID_ARG;
        }
        ports[1 + i] = port;
    }
    *depth = hops + 1;
    return USBIP_OK;
}

bool te_needs_transaction_translator(usbip_speed_t device_speed, usbip_speed_t hub_speed)
{
    const bool slow_device = device_speed == USBIP_SPEED_LOW || device_speed == USBIP_SPEED_FULL;
    return slow_device && hub_speed == USBIP_SPEED_HIGH;
}
