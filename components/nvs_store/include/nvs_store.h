/*
 * nvs_store (ESP-IDF only): the server's settings store (usbip_store_t, see
 * settings_store.h) kept in NVS, namespace "usbip" of the default "nvs"
 * partition. Values are NVS strings; keys follow the same rules on both
 * sides (at most 15 characters), values at most 511 bytes.
 *
 * nvs_store_open() initialises NVS flash if needed (a partition that is full
 * or was written by a newer NVS format is erased and initialised again: the
 * settings are lost, the device still boots with defaults) and opens the
 * namespace. Errors are logged with esp_err_to_name() and mapped to
 * usbip_err_t: NOT_FOUND for a missing key, INVALID_ARG for a bad key,
 * INVALID_SIZE for a value too long or a buffer too small, NO_MEM when NVS
 * is full, IO for anything else.
 *
 * Single instance; call from one task at a time (the core calls it from the
 * server task, app_main before that task starts).
 */
#pragma once

#include "esp_err.h"
#include "settings_store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NVS_STORE_NAMESPACE "usbip"

/* Fill *out with the store's ops and context. */
esp_err_t nvs_store_open(usbip_store_t *out);
void nvs_store_close(void);

/* Factory reset: erase every key of the namespace (all settings, the admin
 * password) and commit. Same task rule as the store; the running server
 * keeps its settings in memory until it restarts. ESP_ERR_INVALID_STATE when
 * the store is not open, else NVS's error (logged). */
esp_err_t nvs_store_erase_all(void);

#ifdef __cplusplus
}
#endif
