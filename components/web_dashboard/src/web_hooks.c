/*
 * web_hooks: what the engine asks of the firmware (webui_port_t), all called
 * in the server task: random bytes from the hardware RNG, PBKDF2 from
 * mbedTLS, heap and link figures, and the actions only the firmware can take
 * (power-cycle the USB port, reboot, factory reset).
 */
#include <stdio.h>
#include <string.h>

#include "esp_heap_caps.h"
#include "esp_log.h"
#include "esp_random.h"
#include "esp_system.h"
#include "esp_timer.h"
#include "mbedtls/md.h"
#include "mbedtls/pkcs5.h"
#include "network_mgr.h"
#include "nvs_store.h"
#include "usb_host_mgr.h"
#include "web_internal.h"

#if !defined(MBEDTLS_PKCS5_C)
#error "the dashboard's password hashing needs PBKDF2: set CONFIG_MBEDTLS_PKCS5_C=y"
#endif

static const char *TAG = WEB_TAG;

/* Long enough for the reply to reach the browser (the httpd task sends it
 * right after the server task answers), short enough to feel immediate. */
#define RESTART_DELAY_MS 500

#define PBKDF2_OUTPUT_BYTES 32 /* webui_port_t.pbkdf2_sha256: out[32] */

static esp_timer_handle_t s_restart_timer;

/* ---- crypto ---- */

/* On the P4 the RNG's SAR ADC noise source stays enabled after boot, so
 * these are true random bytes (ESP-IDF "Random Number Generation"). */
static void web_random(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    esp_fill_random(buf, len);
}

static bool web_pbkdf2_sha256(void *ctx, const char *password, const uint8_t *salt,
                              size_t salt_len, uint32_t iterations,
                              uint8_t out[PBKDF2_OUTPUT_BYTES])
{
    (void)ctx;
    const int rc = mbedtls_pkcs5_pbkdf2_hmac_ext(MBEDTLS_MD_SHA256,
                                                 (const unsigned char *)password,
                                                 strlen(password), salt, salt_len,
                                                 (unsigned int)iterations,
                                                 PBKDF2_OUTPUT_BYTES, out);
    if (rc != 0) {
        ESP_LOGE(TAG, "mbedtls_pkcs5_pbkdf2_hmac_ext: -0x%04x", (unsigned)-rc);
    }
    return rc == 0;
}

/* ---- system information ---- */

static void web_system_info(void *ctx, webui_system_info_t *out)
{
    (void)ctx;
    /* Byte-addressable internal RAM: what plain malloc() and task stacks
     * draw from (PSRAM only serves large malloc()s, see sdkconfig.defaults). */
    const uint32_t internal = MALLOC_CAP_INTERNAL | MALLOC_CAP_8BIT;
    out->has_heaps = true;
    out->heap_free = heap_caps_get_free_size(internal);
    out->heap_min_free = heap_caps_get_minimum_free_size(internal);
    out->psram_free = heap_caps_get_free_size(MALLOC_CAP_SPIRAM);

    bool up = false;
    uint32_t mbps = 0;
    char ipv4[16] = "";
    if (network_mgr_get_link(&up, &mbps, ipv4) == ESP_OK) {
        out->has_link = true;
        out->link_up = up;
        out->speed_mbps = mbps;
        snprintf(out->ipv4, sizeof out->ipv4, "%s", ipv4);
    }
}

/* ---- actions ---- */

static usbip_err_t from_esp_err(esp_err_t err)
{
    switch (err) {
    case ESP_OK: return USBIP_OK;
    case ESP_ERR_NO_MEM: return USBIP_ERR_NO_MEM;
    case ESP_ERR_INVALID_STATE: return USBIP_ERR_INVALID_STATE;
    case ESP_ERR_NOT_SUPPORTED: return USBIP_ERR_NOT_SUPPORTED;
    case ESP_ERR_TIMEOUT: return USBIP_ERR_WOULD_BLOCK;
    default: return USBIP_ERR_IO;
    }
}

/* v5.5's USB host library cannot reset one device: the whole root port is
 * powered off and on, so every device behind it leaves and comes back. */
static usbip_err_t web_reset_device(void *ctx, const char *busid)
{
    (void)ctx;
    ESP_LOGI(TAG, "reset of %s requested: power-cycling the USB port (every device re-enumerates)",
             busid);
    const esp_err_t err = usb_host_mgr_power_cycle();
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "usb_host_mgr_power_cycle: %s", esp_err_to_name(err));
    }
    return from_esp_err(err);
}

/* esp_timer task (small stack): nothing but the restart itself. */
static void restart_now(void *arg)
{
    (void)arg;
    esp_restart();
}

static esp_err_t ensure_restart_timer(void)
{
    if (s_restart_timer) {
        return ESP_OK;
    }
    const esp_timer_create_args_t args = {
        .callback = restart_now,
        .arg = NULL,
        .dispatch_method = ESP_TIMER_TASK,
        .name = "web_restart",
        .skip_unhandled_events = false,
    };
    const esp_err_t err = esp_timer_create(&args, &s_restart_timer);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "esp_timer_create: %s", esp_err_to_name(err));
        s_restart_timer = NULL;
    }
    return err;
}

/* Restart RESTART_DELAY_MS from now, after the reply has gone out. */
static esp_err_t schedule_restart(void)
{
    esp_err_t err = ensure_restart_timer();
    if (err != ESP_OK) {
        return err;
    }
    err = esp_timer_start_once(s_restart_timer, (uint64_t)RESTART_DELAY_MS * 1000u);
    if (err == ESP_ERR_INVALID_STATE) {
        return ESP_OK; /* already running: a restart is on its way */
    }
    if (err == ESP_OK) {
        ESP_LOGI(TAG, "restarting in %d ms, as asked from the dashboard", RESTART_DELAY_MS);
    } else {
        ESP_LOGE(TAG, "esp_timer_start_once: %s", esp_err_to_name(err));
    }
    return err;
}

static usbip_err_t web_reboot(void *ctx)
{
    (void)ctx;
    return from_esp_err(schedule_restart());
}

static usbip_err_t web_factory_reset(void *ctx)
{
    (void)ctx;
    /* The timer first: settings erased but no restart would leave the
     * running server and the store disagreeing. */
    esp_err_t err = ensure_restart_timer();
    if (err == ESP_OK) {
        err = nvs_store_erase_all(); /* settings, allowlist, admin password */
    }
    if (err == ESP_OK) {
        ESP_LOGW(TAG, "factory reset: settings and admin password erased");
        err = schedule_restart();
    }
    return from_esp_err(err);
}

void web_hooks_fill(webui_port_t *port)
{
    port->random = web_random;
    port->pbkdf2_sha256 = web_pbkdf2_sha256;
    port->system_info = web_system_info;
    port->reset_device = web_reset_device;
    port->reboot = web_reboot;
    port->factory_reset = web_factory_reset;
}
