/*
 * usbip_log: the core's logging hook and clock.
 *
 * The core never prints or reads a clock by itself: the port installs a log
 * sink (stderr on the host, ESP_LOG on the firmware) and a millisecond clock.
 * Without a sink, messages at INFO and above go to stderr on hosted builds.
 */
#pragma once

#include <stdarg.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    USBIP_LOG_ERROR = 0,
    USBIP_LOG_WARN = 1,
    USBIP_LOG_INFO = 2,
    USBIP_LOG_DEBUG = 3,
} usbip_log_level_t;

typedef void (*usbip_log_sink_t)(void *ctx, usbip_log_level_t level, const char *tag,
                                 const char *message);
typedef uint64_t (*usbip_clock_fn_t)(void *ctx);

/* Install the sink (NULL restores the default) and the highest level passed to it. */
void usbip_log_set_sink(usbip_log_sink_t sink, void *ctx);
void usbip_log_set_level(usbip_log_level_t max_level);
usbip_log_level_t usbip_log_get_level(void);

/* Parse "error", "warn", "info" or "debug"; returns -1 on anything else. */
int usbip_log_level_parse(const char *name);
const char *usbip_log_level_name(usbip_log_level_t level);

void usbip_logf(usbip_log_level_t level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define USBIP_LOGE(tag, ...) usbip_logf(USBIP_LOG_ERROR, tag, __VA_ARGS__)
#define USBIP_LOGW(tag, ...) usbip_logf(USBIP_LOG_WARN, tag, __VA_ARGS__)
#define USBIP_LOGI(tag, ...) usbip_logf(USBIP_LOG_INFO, tag, __VA_ARGS__)
#define USBIP_LOGD(tag, ...) usbip_logf(USBIP_LOG_DEBUG, tag, __VA_ARGS__)

/* Monotonic milliseconds from the port's clock (0 until one is installed). */
void usbip_clock_set(usbip_clock_fn_t clock, void *ctx);
uint64_t usbip_now_ms(void);

#ifdef __cplusplus
}
#endif
