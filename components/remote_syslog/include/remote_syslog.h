/*
 * remote_syslog (ESP-IDF only): ESP log output as RFC 5424 syslog over TCP
 * with octet-counting framing (RFC 6587), to every client connected to
 * listen_port (1514) and, when configured, to a remote collector; WARN and
 * ERROR lines are also kept in the event log.
 *
 * Threads: remote_syslog_start() and remote_syslog_set_collector() from any
 * task; remote_syslog_process() only from the task that owns cfg->events
 * (the server task). The log hook never blocks and never logs. See README.md.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "esp_err.h"
#include "event_log.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *hostname;   /* RFC 5424 HOSTNAME, e.g. the mDNS name; NULL = "-" (copied) */
    const char *app_name;   /* RFC 5424 APP-NAME, e.g. "usbip"; NULL = "-" (copied) */
    uint16_t listen_port;   /* 1514; 0 = no listening socket */
    const char *collector;  /* "host:port" / "[v6]:port"; NULL or "" = none (copied) */
    usbip_event_log_t *events; /* WARN/ERROR lines go here; NULL = not kept */
    void (*wake)(void *ctx);   /* called (from the syslog task) after queueing
                                  an event: must not block; NULL = none */
    void *wake_ctx;
} remote_syslog_config_t;

/* Create the ring buffer, the event queue and the syslog task, then install
 * the log hook (esp_log_set_vprintf; the previous handler keeps printing to
 * the console). ESP_ERR_INVALID_ARG: cfg NULL or collector malformed;
 * ESP_ERR_INVALID_STATE: already started; ESP_ERR_NO_MEM. */
esp_err_t remote_syslog_start(const remote_syslog_config_t *cfg);

/* Server task only: move queued WARN/ERROR lines into cfg->events
 * (ERROR -> USBIP_EVENT_ERROR, WARN -> USBIP_EVENT_INFO "warning: ...").
 * Does at most a bounded batch and calls wake again if more remain. */
void remote_syslog_process(void);

/* Change the collector at runtime: "host:port", "[v6]:port", NULL or "" =
 * none. The syslog task reconnects within one loop (<= 50 ms).
 * ESP_ERR_INVALID_ARG if malformed, ESP_ERR_INVALID_STATE before start. */
esp_err_t remote_syslog_set_collector(const char *collector);

typedef struct {
    uint32_t lines;              /* lines formatted and fanned out */
    uint32_t hook_dropped;       /* hook calls lost: ring full, ISR/critical/no scheduler */
    uint32_t hook_truncated;     /* hook calls cut to REMOTE_SYSLOG_LINE_MAX */
    uint32_t client_dropped;     /* frames dropped for slow clients (all, ever) */
    uint32_t collector_dropped;  /* frames dropped for the collector */
    uint32_t events_dropped;     /* WARN/ERROR lines not queued for the event log (all, ever) */
    uint32_t clients_refused;    /* connections closed because all slots were busy */
    uint8_t clients;             /* connected now */
    bool collector_connected;
} remote_syslog_stats_t;

/* Counters for the dashboard; any task. Zeroes *out before start. */
void remote_syslog_get_stats(remote_syslog_stats_t *out);

#ifdef __cplusplus
}
#endif
