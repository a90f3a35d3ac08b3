/*
 * network_mgr: see the header. The order of network_mgr_start() matters:
 * the hostname, the static address and flow control are set after the
 * driver is installed and before Ethernet starts, so the first DHCP request
 * already carries the name and the PHY advertises PAUSE in its first
 * auto-negotiation.
 */
#include "network_mgr.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "esp_eth.h"
#include "esp_eth_mac_esp.h"
#include "esp_eth_netif_glue.h"
#include "esp_event.h"
#include "esp_log.h"
#include "esp_netif.h"
#include "freertos/FreeRTOS.h"
#include "freertos/queue.h"
#include "mdns_advert.h"

static const char *TAG = "network_mgr";

#define EVENT_QUEUE_LENGTH 16

typedef enum {
    NETWORK_LINK_UP,
    NETWORK_LINK_DOWN,
    NETWORK_GOT_IP,
    NETWORK_LOST_IP,
} network_event_kind_t;

typedef struct {
    network_event_kind_t kind;
    esp_netif_ip_info_t ip; /* NETWORK_GOT_IP */
    eth_speed_t speed;      /* NETWORK_LINK_UP */
    eth_duplex_t duplex;    /* NETWORK_LINK_UP */
} network_event_t;

static esp_netif_t *s_netif;
static esp_eth_handle_t s_eth;
static QueueHandle_t s_events;
static volatile uint32_t s_events_dropped; /* written by the event task only */
static uint32_t s_events_dropped_reported;
static void (*s_wake)(void *ctx);
static void *s_wake_ctx;

/* The link as the handled events left it (server task only). */
static bool s_link_up;
static uint32_t s_link_mbps;
static char s_link_ipv4[IP4ADDR_STRLEN_MAX];
_Static_assert(IP4ADDR_STRLEN_MAX <= 16, "network_mgr_get_link() hands out char[16]");

static esp_err_t logged(esp_err_t err, const char *what)
{
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "%s: %s", what, esp_err_to_name(err));
    }
    return err;
}

/* ---- events: default event loop task -> queue -> server task ---- */

static void queue_event(const network_event_t *event)
{
    if (xQueueSend(s_events, event, 0) != pdTRUE) {
        s_events_dropped++;
    }
    if (s_wake) {
        s_wake(s_wake_ctx);
    }
}

static void on_eth_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    (void)arg;
    (void)base;
    network_event_t event = {.kind = NETWORK_LINK_DOWN};
    if (id == ETHERNET_EVENT_CONNECTED) {
        esp_eth_handle_t eth = *(esp_eth_handle_t *)data;
        event.kind = NETWORK_LINK_UP;
        logged(esp_eth_ioctl(eth, ETH_CMD_G_SPEED, &event.speed), "ETH_CMD_G_SPEED");
        logged(esp_eth_ioctl(eth, ETH_CMD_G_DUPLEX_MODE, &event.duplex), "ETH_CMD_G_DUPLEX_MODE");
    } else if (id != ETHERNET_EVENT_DISCONNECTED) {
        return; /* START/STOP: nothing for the event log */
    }
    queue_event(&event);
}

static void on_ip_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    (void)arg;
    (void)base;
    network_event_t event = {.kind = NETWORK_LOST_IP};
    if (id == IP_EVENT_ETH_GOT_IP) {
        const ip_event_got_ip_t *got = data;
        event.kind = NETWORK_GOT_IP;
        event.ip = got->ip_info;
        /* Not logged here: the Ethernet glue's own got-IP action already logs
         * "eth ip: ..." (esp_netif_action_got_ip), the event-log entry made
         * from this is echoed again, and every log line in this task goes
         * through the syslog hook on the event task's small stack
         * (CONFIG_ESP_SYSTEM_EVENT_TASK_STACK_SIZE, 2304 bytes by default). */
    }
    queue_event(&event);
}

static void log_event(usbip_event_log_t *log, const network_event_t *event)
{
    char ip[IP4ADDR_STRLEN_MAX], mask[IP4ADDR_STRLEN_MAX], gw[IP4ADDR_STRLEN_MAX];
    switch (event->kind) {
    case NETWORK_LINK_UP:
        usbip_event_log_add(log, USBIP_EVENT_INFO, NULL, NULL, "ethernet link up, %s Mbps %s duplex",
                            event->speed == ETH_SPEED_100M ? "100" : "10",
                            event->duplex == ETH_DUPLEX_FULL ? "full" : "half");
        break;
    case NETWORK_LINK_DOWN:
        usbip_event_log_add(log, USBIP_EVENT_INFO, NULL, NULL, "ethernet link down");
        break;
    case NETWORK_GOT_IP:
        esp_ip4addr_ntoa(&event->ip.ip, ip, sizeof ip);
        esp_ip4addr_ntoa(&event->ip.netmask, mask, sizeof mask);
        esp_ip4addr_ntoa(&event->ip.gw, gw, sizeof gw);
        usbip_event_log_add(log, USBIP_EVENT_INFO, NULL, NULL, "IPv4 %s netmask %s gateway %s", ip,
                            mask, gw);
        break;
    case NETWORK_LOST_IP:
        usbip_event_log_add(log, USBIP_EVENT_ERROR, NULL, NULL, "IPv4 address lost");
        break;
    }
}

static void track_link(const network_event_t *event)
{
    switch (event->kind) {
    case NETWORK_LINK_UP:
        s_link_up = true;
        s_link_mbps = event->speed == ETH_SPEED_100M ? 100 : 10;
        break;
    case NETWORK_LINK_DOWN:
        s_link_up = false;
        s_link_mbps = 0;
        break;
    case NETWORK_GOT_IP:
        esp_ip4addr_ntoa(&event->ip.ip, s_link_ipv4, sizeof s_link_ipv4);
        break;
    case NETWORK_LOST_IP:
        s_link_ipv4[0] = '\0';
        break;
    }
}

void network_mgr_process(usbip_event_log_t *events)
{
    if (!s_events) {
        return;
    }
    network_event_t event;
    while (xQueueReceive(s_events, &event, 0) == pdTRUE) {
        track_link(&event);
        log_event(events, &event);
    }
    uint32_t dropped = s_events_dropped;
    if (dropped != s_events_dropped_reported) {
        usbip_event_log_add(events, USBIP_EVENT_ERROR, NULL, NULL,
                            "%u network event(s) lost: queue full",
                            (unsigned)(dropped - s_events_dropped_reported));
        s_events_dropped_reported = dropped;
    }
}

void network_mgr_set_device_count(size_t count) { mdns_advert_set_device_count(count); }

esp_err_t network_mgr_get_link(bool *up, uint32_t *mbps, char ipv4[16])
{
    if (!s_events) {
        return ESP_ERR_INVALID_STATE;
    }
    if (up) {
        *up = s_link_up;
    }
    if (mbps) {
        *mbps = s_link_mbps;
    }
    if (ipv4) {
        snprintf(ipv4, 16, "%s", s_link_ipv4);
    }
    return ESP_OK;
}

/* ---- bring-up ---- */

static esp_err_t install_ethernet(const network_mgr_eth_pins_t *pins)
{
    eth_mac_config_t mac_config = ETH_MAC_DEFAULT_CONFIG();
    eth_esp32_emac_config_t emac_config = ETH_ESP32_EMAC_DEFAULT_CONFIG();
    emac_config.smi_gpio.mdc_num = pins->mdc_gpio;
    emac_config.smi_gpio.mdio_num = pins->mdio_gpio;
    emac_config.interface = EMAC_DATA_INTERFACE_RMII;
    /* The 50 MHz RMII clock comes from the board's oscillator/PHY into the P4. */
    emac_config.clock_config.rmii.clock_mode = EMAC_CLK_EXT_IN;
    emac_config.clock_config.rmii.clock_gpio = pins->ref_clk_gpio;
    emac_config.emac_dataif_gpio.rmii.tx_en_num = pins->tx_en_gpio;
    emac_config.emac_dataif_gpio.rmii.txd0_num = pins->txd0_gpio;
    emac_config.emac_dataif_gpio.rmii.txd1_num = pins->txd1_gpio;
    emac_config.emac_dataif_gpio.rmii.crs_dv_num = pins->crs_dv_gpio;
    emac_config.emac_dataif_gpio.rmii.rxd0_num = pins->rxd0_gpio;
    emac_config.emac_dataif_gpio.rmii.rxd1_num = pins->rxd1_gpio;
    esp_eth_mac_t *mac = esp_eth_mac_new_esp32(&emac_config, &mac_config);

    eth_phy_config_t phy_config = ETH_PHY_DEFAULT_CONFIG();
    phy_config.phy_addr = pins->phy_addr;
    phy_config.reset_gpio_num = pins->phy_reset_gpio; /* the default (5) is an ESP32 pin */
    esp_eth_phy_t *phy = esp_eth_phy_new_ip101(&phy_config);
    if (!mac || !phy) {
        ESP_LOGE(TAG, "cannot create the EMAC (%s) or the IP101 PHY (%s): check the pins",
                 mac ? "ok" : "failed", phy ? "ok" : "failed");
        if (mac) {
            mac->del(mac);
        }
        if (phy) {
            phy->del(phy);
        }
        return ESP_FAIL;
    }
    esp_eth_config_t eth_config = ETH_DEFAULT_CONFIG(mac, phy);
    esp_err_t err = logged(esp_eth_driver_install(&eth_config, &s_eth), "esp_eth_driver_install");
    if (err != ESP_OK) {
        /* The driver takes ownership only on success (esp_eth.c frees just
         * its own state on failure). */
        mac->del(mac);
        phy->del(phy);
    }
    return err;
}

/* 802.3x PAUSE: the MAC honours pause frames and the PHY advertises the
 * ability, so a busy switch port slows us down instead of dropping frames.
 * esp_eth reads the argument as bool for the MAC and as uint32_t for the
 * PHY: a zeroed uint32_t holding 1 is both. Effective only if the link
 * partner advertises PAUSE too. */
static esp_err_t enable_flow_control(void)
{
    uint32_t on = 1;
    return logged(esp_eth_ioctl(s_eth, ETH_CMD_S_FLOW_CTRL, &on), "ETH_CMD_S_FLOW_CTRL");
}

static void to_esp_ip4(const usbip_ip_addr_t *a, esp_ip4_addr_t *out)
{
    esp_netif_set_ip4_addr(out, a->bytes[0], a->bytes[1], a->bytes[2], a->bytes[3]);
}

static esp_err_t apply_static_ipv4(const usbip_net_settings_t *net)
{
    esp_err_t err = esp_netif_dhcpc_stop(s_netif);
    if (err != ESP_OK && err != ESP_ERR_ESP_NETIF_DHCP_ALREADY_STOPPED) {
        return logged(err, "esp_netif_dhcpc_stop");
    }
    esp_netif_ip_info_t info;
    memset(&info, 0, sizeof info);
    to_esp_ip4(&net->address, &info.ip);
    to_esp_ip4(&net->netmask, &info.netmask);
    if (net->gateway.family == 4) {
        to_esp_ip4(&net->gateway, &info.gw);
    }
    err = logged(esp_netif_set_ip_info(s_netif, &info), "esp_netif_set_ip_info");
    if (err == ESP_OK && net->dns.family == 4) {
        esp_netif_dns_info_t dns;
        memset(&dns, 0, sizeof dns);
        dns.ip.type = ESP_IPADDR_TYPE_V4;
        to_esp_ip4(&net->dns, &dns.ip.u_addr.ip4);
        err = logged(esp_netif_set_dns_info(s_netif, ESP_NETIF_DNS_MAIN, &dns),
                     "esp_netif_set_dns_info");
    }
    if (err == ESP_OK) {
        ESP_LOGI(TAG, "static IPv4 " IPSTR " netmask " IPSTR, IP2STR(&info.ip),
                 IP2STR(&info.netmask));
    }
    return err;
}

static esp_err_t create_netif(void)
{
    esp_err_t err = logged(esp_netif_init(), "esp_netif_init");
    if (err != ESP_OK) {
        return err;
    }
    err = esp_event_loop_create_default();
    if (err != ESP_OK && err != ESP_ERR_INVALID_STATE) { /* INVALID_STATE: already created */
        return logged(err, "esp_event_loop_create_default");
    }
    esp_netif_config_t netif_config = ESP_NETIF_DEFAULT_ETH(); /* key "ETH_DEF", DHCP client */
    s_netif = esp_netif_new(&netif_config);
    if (!s_netif) {
        ESP_LOGE(TAG, "esp_netif_new failed");
        return ESP_FAIL;
    }
    return ESP_OK;
}

static esp_err_t register_handlers(void)
{
    esp_err_t err = logged(esp_event_handler_instance_register(ETH_EVENT, ESP_EVENT_ANY_ID,
                                                               on_eth_event, NULL, NULL),
                           "register ETH_EVENT handler");
    if (err == ESP_OK) {
        err = logged(esp_event_handler_instance_register(IP_EVENT, IP_EVENT_ETH_GOT_IP,
                                                         on_ip_event, NULL, NULL),
                     "register IP_EVENT_ETH_GOT_IP handler");
    }
    if (err == ESP_OK) {
        err = logged(esp_event_handler_instance_register(IP_EVENT, IP_EVENT_ETH_LOST_IP,
                                                         on_ip_event, NULL, NULL),
                     "register IP_EVENT_ETH_LOST_IP handler");
    }
    return err;
}

static esp_err_t configure_addressing(const network_mgr_config_t *cfg)
{
    esp_err_t err = logged(esp_netif_set_hostname(s_netif, cfg->hostname), "esp_netif_set_hostname");
    if (err == ESP_OK && cfg->net && cfg->net->mode == USBIP_NET_STATIC) {
        err = apply_static_ipv4(cfg->net);
    }
    return err;
}

static esp_err_t attach_and_start(void)
{
    esp_eth_netif_glue_handle_t glue = esp_eth_new_netif_glue(s_eth);
    if (!glue) {
        ESP_LOGE(TAG, "esp_eth_new_netif_glue failed");
        return ESP_FAIL;
    }
    esp_err_t err = logged(esp_netif_attach(s_netif, glue), "esp_netif_attach");
    if (err == ESP_OK) {
        err = logged(esp_eth_start(s_eth), "esp_eth_start");
    }
    return err;
}

esp_err_t network_mgr_start(const network_mgr_config_t *cfg)
{
    if (!cfg || !cfg->hostname || s_events) {
        return ESP_ERR_INVALID_ARG;
    }
    s_wake = cfg->wake;
    s_wake_ctx = cfg->wake_ctx;
    s_events = xQueueCreate(EVENT_QUEUE_LENGTH, sizeof(network_event_t));
    if (!s_events) {
        ESP_LOGE(TAG, "no memory for the event queue");
        return ESP_ERR_NO_MEM;
    }
    esp_err_t err = create_netif();
    if (err == ESP_OK) {
        err = register_handlers();
    }
    if (err == ESP_OK) {
        err = install_ethernet(&cfg->eth);
    }
    if (err == ESP_OK) {
        err = enable_flow_control();
    }
    if (err == ESP_OK) {
        err = configure_addressing(cfg);
    }
    if (err == ESP_OK &&
        mdns_advert_start(cfg->hostname, cfg->usbip_port, cfg->http_port, cfg->board) != ESP_OK) {
        ESP_LOGW(TAG, "continuing without mDNS: find the board by its DHCP lease or serial log");
    }
    if (err == ESP_OK) {
        err = attach_and_start();
    }
    if (err == ESP_OK) {
        ESP_LOGI(TAG, "ethernet started as \"%s\" (%s)", cfg->hostname,
                 cfg->net && cfg->net->mode == USBIP_NET_STATIC ? "static IPv4" : "DHCP");
    }
    return err;
}
