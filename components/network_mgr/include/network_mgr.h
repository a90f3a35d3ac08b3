/*
 * network_mgr (ESP-IDF only): the firmware's network. Ethernet through the
 * P4's internal EMAC and an IP101 PHY over RMII (50 MHz reference clock from
 * the PHY side, into the P4), 802.3x flow control, IPv4 by DHCP or a static
 * address, the hostname (sent in DHCP and used for mDNS), and mDNS records:
 * _usbip._tcp on the USB/IP port with TXT protocol/board/devices, and
 * _http._tcp for the dashboard.
 *
 * Threads. network_mgr_start() runs in app_main. Link and address events
 * arrive in the default event loop's task, which must not touch the core:
 * they are queued here and the port's wake callback is rung; the server task
 * then calls network_mgr_process() to turn them into event-log entries and
 * to update the link state that network_mgr_get_link() reports.
 * network_mgr_set_device_count() and network_mgr_get_link() are called from
 * the server task too.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esp_err.h"
#include "event_log.h"
#include "settings_store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* RMII wiring. GPIO numbers; -1 for none (phy_reset_gpio) or "detect"
 * (phy_addr). Only the IO_MUX pins the P4 EMAC offers work (see README). */
typedef struct {
    int mdc_gpio;
    int mdio_gpio;
    int tx_en_gpio;
    int txd0_gpio;
    int txd1_gpio;
    int crs_dv_gpio;
    int rxd0_gpio;
    int rxd1_gpio;
    int ref_clk_gpio; /* 50 MHz REF_CLK input */
    int phy_reset_gpio;
    int phy_addr;
} network_mgr_eth_pins_t;

typedef struct {
    network_mgr_eth_pins_t eth;
    const char *hostname;            /* required; 1-32 of [A-Za-z0-9-] */
    const usbip_net_settings_t *net; /* NULL: DHCP */
    uint16_t usbip_port;             /* _usbip._tcp */
    uint16_t http_port;              /* _http._tcp; 0: not advertised */
    const char *board;               /* TXT "board" */
    void (*wake)(void *ctx);         /* rung after an event was queued */
    void *wake_ctx;
} network_mgr_config_t;

/* Bring up netif, the Ethernet driver and mDNS, then start Ethernet. An mDNS
 * failure is logged and tolerated (the server works without it); any other
 * failure is returned. The strings are copied. */
esp_err_t network_mgr_start(const network_mgr_config_t *cfg);

/* Server task: move queued link/IP events into the event log. */
void network_mgr_process(usbip_event_log_t *events);

/* Server task: update the "devices" TXT item of _usbip._tcp when it changed. */
void network_mgr_set_device_count(size_t count);

/* Server task: the link as the events network_mgr_process() has handled so
 * far describe it: *up, *mbps (10 or 100; 0 while down) and ipv4 (dotted,
 * "" without an address). ESP_ERR_INVALID_STATE before network_mgr_start(). */
esp_err_t network_mgr_get_link(bool *up, uint32_t *mbps, char ipv4[16]);

#ifdef __cplusplus
}
#endif
