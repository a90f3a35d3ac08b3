/*
 * mdns_advert: network_mgr's mDNS records (hostname, _usbip._tcp with TXT
 * protocol/board/devices, _http._tcp). mdns binds itself to the "ETH_DEF"
 * netif (CONFIG_MDNS_PREDEF_NETIF_ETH) and announces once it has an address.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "esp_err.h"

esp_err_t mdns_advert_start(const char *hostname, uint16_t usbip_port, uint16_t http_port,
                            const char *board);
/* "devices" TXT item; no-op when unchanged or mDNS did not start. */
void mdns_advert_set_device_count(size_t count);
