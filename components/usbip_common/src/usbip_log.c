#include "usbip_log.h"

#include <stdio.h>
#include <string.h>

static usbip_log_sink_t s_sink;
static void *s_sink_ctx;
static usbip_log_level_t s_max_level = USBIP_LOG_INFO;
static usbip_clock_fn_t s_clock;
static void *s_clock_ctx;

static const char *const s_level_names[] = {"error", "warn", "info", "debug"};

void usbip_log_set_sink(usbip_log_sink_t sink, void *ctx)
{
    s_sink = sink;
    s_sink_ctx = ctx;
}

void usbip_log_set_level(usbip_log_level_t max_level) { s_max_level = max_level; }

usbip_log_level_t usbip_log_get_level(void) { return s_max_level; }

int usbip_log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++) {
        if (name && strcmp(name, s_level_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

const char *usbip_log_level_name(usbip_log_level_t level)
{
    return (unsigned)level < 4 ? s_level_names[level] : "?";
}

void usbip_logf(usbip_log_level_t level, const char *tag, const char *fmt, ...)
{
    if (level > s_max_level) {
        return;
    }
    char message[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    if (s_sink) {
        s_sink(s_sink_ctx, level, tag, message);
    } else {
        fprintf(stderr, "%s %s: %s\n", usbip_log_level_name(level), tag, message);
    }
}

void usbip_clock_set(usbip_clock_fn_t clock, void *ctx)
{
    s_clock = clock;
    s_clock_ctx = ctx;
}

uint64_t usbip_now_ms(void) { return s_clock ? s_clock(s_clock_ctx) : 0; }
