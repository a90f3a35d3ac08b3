/*
 * mdns_advert: see mdns_advert.h. Uses the espressif/mdns 1.x API; every
 * mdns call is thread-safe (it queues to the mdns task).
 */
#include "mdns_advert.h"

#include <stdbool.h>
#include <stdio.h>

#include "esp_log.h"
#include "mdns.h"

static const char *TAG = "mdns_advert";

#define USBIP_SERVICE "_usbip"
#define HTTP_SERVICE "_http"
#define TCP_PROTO "_tcp"
/* The USB/IP protocol version the server speaks (OP_* version 0x0111). */
#define USBIP_PROTOCOL_VERSION "1.1.1"

static bool s_started;
static size_t s_device_count;

static esp_err_t logged(esp_err_t err, const char *what)
{
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "%s: %s", what, esp_err_to_name(err));
    }
    return err;
}

static esp_err_t add_usbip_service(uint16_t port, const char *board)
{
    mdns_txt_item_t txt[] = {
        {"protocol", USBIP_PROTOCOL_VERSION},
        {"board", board ? board : ""}, /* mdns strdup()s every value */
        {"devices", "0"},
    };
    return logged(mdns_service_add(NULL, USBIP_SERVICE, TCP_PROTO, port, txt,
                                   sizeof txt / sizeof txt[0]),
                  "mdns_service_add(_usbip._tcp)");
}

static esp_err_t add_http_service(uint16_t port)
{
    mdns_txt_item_t txt[] = {{"path", "/"}};
    return logged(mdns_service_add(NULL, HTTP_SERVICE, TCP_PROTO, port, txt,
                                   sizeof txt / sizeof txt[0]),
                  "mdns_service_add(_http._tcp)");
}

esp_err_t mdns_advert_start(const char *hostname, uint16_t usbip_port, uint16_t http_port,
                            const char *board)
{
    esp_err_t err = logged(mdns_init(), "mdns_init");
    if (err == ESP_OK) {
        err = logged(mdns_hostname_set(hostname), "mdns_hostname_set");
    }
    if (err == ESP_OK) {
        /* Instance name: what avahi-browse and Bonjour browsers show. */
        err = logged(mdns_instance_name_set(hostname), "mdns_instance_name_set");
    }
    if (err == ESP_OK) {
        err = add_usbip_service(usbip_port, board);
    }
    if (err == ESP_OK && http_port != 0) {
        err = add_http_service(http_port);
    }
    s_started = err == ESP_OK;
    if (s_started) {
        ESP_LOGI(TAG, "advertising %s.local: _usbip._tcp port %u%s", hostname,
                 (unsigned)usbip_port, http_port ? ", _http._tcp" : "");
    }
    return err;
}

void mdns_advert_set_device_count(size_t count)
{
    if (!s_started || count == s_device_count) {
        return;
    }
    char text[12];
    snprintf(text, sizeof text, "%u", (unsigned)count);
    /* Remembered even when the update fails: this runs on every server loop
     * iteration, and retrying at once would log an error each time, which
     * remote_syslog turns into an event that wakes the loop again (a busy
     * loop). The next change of the count retries. */
    s_device_count = count;
    logged(mdns_service_txt_item_set(USBIP_SERVICE, TCP_PROTO, "devices", text),
           "mdns_service_txt_item_set(devices)");
}
