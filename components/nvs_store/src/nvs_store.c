/*
 * nvs_store: usbip_store_t on an NVS namespace. See the header.
 */
#include "nvs_store.h"

#include <stdbool.h>
#include <string.h>

#include "esp_log.h"
#include "nvs.h"
#include "nvs_flash.h"

static const char *TAG = "nvs_store";

static nvs_handle_t s_handle;
static bool s_open;

/* Same key rules as the host's file store, so a setting valid on one port
 * is valid on the other. */
static bool key_valid(const char *key)
{
    size_t len = key ? strlen(key) : 0;
    if (len == 0 || len > USBIP_STORE_KEY_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = key[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
            return false;
        }
    }
    return true;
}

static usbip_err_t map_error(esp_err_t err)
{
    switch (err) {
    case ESP_OK: return USBIP_OK;
    case ESP_ERR_NVS_NOT_FOUND: return USBIP_ERR_NOT_FOUND;
    case ESP_ERR_NVS_INVALID_NAME:
    case ESP_ERR_NVS_KEY_TOO_LONG: return USBIP_ERR_INVALID_ARG;
    case ESP_ERR_NVS_INVALID_LENGTH:
    case ESP_ERR_NVS_VALUE_TOO_LONG: return USBIP_ERR_INVALID_SIZE;
    case ESP_ERR_NVS_NOT_ENOUGH_SPACE:
    case ESP_ERR_NO_MEM: return USBIP_ERR_NO_MEM;
    default: return USBIP_ERR_IO;
    }
}

/* Log a failure (a missing key is not one) and map it. */
static usbip_err_t failed(const char *what, const char *key, esp_err_t err)
{
    if (err != ESP_ERR_NVS_NOT_FOUND) {
        ESP_LOGE(TAG, "%s \"%s\": %s", what, key, esp_err_to_name(err));
    }
    return map_error(err);
}

static usbip_err_t store_get(void *ctx, const char *key, char *value, size_t *len)
{
    (void)ctx;
    if (!key_valid(key) || !value || !len) {
        return USBIP_ERR_INVALID_ARG;
    }
    size_t needed = 0; /* with the NUL */
    esp_err_t err = nvs_get_str(s_handle, key, NULL, &needed);
    if (err != ESP_OK) {
        return failed("reading length of", key, err);
    }
    if (needed == 0 || needed > *len) {
        return USBIP_ERR_INVALID_SIZE;
    }
    size_t size = *len;
    err = nvs_get_str(s_handle, key, value, &size);
    if (err != ESP_OK) {
        return failed("reading", key, err);
    }
    *len = strlen(value);
    return USBIP_OK;
}

static usbip_err_t store_set(void *ctx, const char *key, const char *value)
{
    (void)ctx;
    if (!key_valid(key) || !value) {
        ESP_LOGE(TAG, "not setting \"%s\": invalid key or no value", key ? key : "(null)");
        return USBIP_ERR_INVALID_ARG;
    }
    if (strlen(value) > USBIP_STORE_VALUE_MAX) {
        ESP_LOGE(TAG, "not setting \"%s\": value longer than %d bytes", key,
                 USBIP_STORE_VALUE_MAX);
        return USBIP_ERR_INVALID_SIZE;
    }
    esp_err_t err = nvs_set_str(s_handle, key, value);
    return err == ESP_OK ? USBIP_OK : failed("setting", key, err);
}

static usbip_err_t store_erase(void *ctx, const char *key)
{
    (void)ctx;
    if (!key_valid(key)) {
        return USBIP_ERR_INVALID_ARG;
    }
    esp_err_t err = nvs_erase_key(s_handle, key);
    return err == ESP_OK ? USBIP_OK : failed("erasing", key, err);
}

static usbip_err_t store_commit(void *ctx)
{
    (void)ctx;
    esp_err_t err = nvs_commit(s_handle);
    return err == ESP_OK ? USBIP_OK : failed("committing", NVS_STORE_NAMESPACE, err);
}

static const usbip_store_ops_t s_ops = {
    .get = store_get,
    .set = store_set,
    .erase = store_erase,
    .commit = store_commit,
};

/* A full partition or one from a newer NVS format cannot be used as it is;
 * erasing it loses the settings but lets the device boot with defaults. */
static esp_err_t init_flash(void)
{
    esp_err_t err = nvs_flash_init();
    if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND) {
        ESP_LOGW(TAG, "NVS partition unusable (%s): erasing it, settings back to defaults",
                 esp_err_to_name(err));
        err = nvs_flash_erase();
        if (err != ESP_OK) {
            ESP_LOGE(TAG, "nvs_flash_erase: %s", esp_err_to_name(err));
            return err;
        }
        err = nvs_flash_init();
    }
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "nvs_flash_init: %s", esp_err_to_name(err));
    }
    return err;
}

esp_err_t nvs_store_open(usbip_store_t *out)
{
    if (!out) {
        return ESP_ERR_INVALID_ARG;
    }
    if (!s_open) {
        esp_err_t err = init_flash();
        if (err != ESP_OK) {
            return err;
        }
        err = nvs_open(NVS_STORE_NAMESPACE, NVS_READWRITE, &s_handle);
        if (err != ESP_OK) {
            ESP_LOGE(TAG, "nvs_open(\"%s\"): %s", NVS_STORE_NAMESPACE, esp_err_to_name(err));
            return err;
        }
        s_open = true;
    }
    *out = (usbip_store_t){.ops = &s_ops, .ctx = NULL};
    return ESP_OK;
}

void nvs_store_close(void)
{
    if (s_open) {
        nvs_close(s_handle);
        s_open = false;
    }
}

esp_err_t nvs_store_erase_all(void)
{
    if (!s_open) {
        ESP_LOGE(TAG, "erasing \"%s\": the store is not open", NVS_STORE_NAMESPACE);
        return ESP_ERR_INVALID_STATE;
    }
    esp_err_t err = nvs_erase_all(s_handle);
    if (err == ESP_OK) {
        err = nvs_commit(s_handle);
    }
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "erasing \"%s\": %s", NVS_STORE_NAMESPACE, esp_err_to_name(err));
    }
    return err;
}
