/*
 * core_port: see core_port.h.
 */
#include "core_port.h"

#include <errno.h>
#include <string.h>

#include "esp_log.h"
#include "esp_timer.h"
#include "esp_vfs_eventfd.h"
#include "usbip_log.h"

static const char *TAG = "core_port";

/* eventfds this firmware may open; ours is one. */
#define EVENTFD_MAX 4

/* The core formats the message; ESP_LOG adds level, time and tag, and
 * filters by tag at run time (esp_log_level_set). */
static void log_to_esp(void *ctx, usbip_log_level_t level, const char *tag, const char *message)
{
    (void)ctx;
    switch (level) {
    case USBIP_LOG_ERROR: ESP_LOGE(tag, "%s", message); break;
    case USBIP_LOG_WARN: ESP_LOGW(tag, "%s", message); break;
    case USBIP_LOG_INFO: ESP_LOGI(tag, "%s", message); break;
    default: ESP_LOGD(tag, "%s", message); break;
    }
}

static uint64_t esp_timer_ms(void *ctx)
{
    (void)ctx;
    return (uint64_t)(esp_timer_get_time() / 1000);
}

void core_port_install(void)
{
    usbip_log_set_sink(log_to_esp, NULL);
    usbip_clock_set(esp_timer_ms, NULL);
}

esp_err_t core_port_open_waker(usbip_netloop_waker_t *waker)
{
    esp_vfs_eventfd_config_t config = {.max_fds = EVENTFD_MAX};
    esp_err_t err = esp_vfs_eventfd_register(&config);
    if (err != ESP_OK && err != ESP_ERR_INVALID_STATE) { /* INVALID_STATE: already registered */
        ESP_LOGE(TAG, "esp_vfs_eventfd_register: %s", esp_err_to_name(err));
        return err;
    }
    /* Flags 0: the ESP-IDF eventfd accepts only EFD_SUPPORT_ISR (anything
     * else is EINVAL), and its read never blocks anyway: once drained it
     * still returns 8 bytes, holding the value 0 (vfs_eventfd.c
     * event_read). Writers are tasks, not ISRs, so EFD_SUPPORT_ISR is not
     * needed. */
    int fd = eventfd(0, 0);
    if (fd < 0) {
        ESP_LOGE(TAG, "eventfd: %s", strerror(errno));
        return ESP_FAIL;
    }
    usbip_netloop_waker_init(waker, fd, fd);
    return ESP_OK;
}
