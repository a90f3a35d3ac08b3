/*
 * webui_views: the JSON the API reads return (docs/api.md), the Prometheus
 * text of /metrics, and the per-second bandwidth sampling. All of it reads
 * the core's counters; nothing here is on the USB data path.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usbip_log.h"
#include "usbip_session.h"
#include "webui_internal.h"

#define EVENT_CHUNK 8 /* events read at a time: usbip_event_t is large */

static const char *speed_name(uint32_t speed)
{
    switch (speed) {
    case USBIP_SPEED_LOW: return "low";
    case USBIP_SPEED_FULL: return "full";
    case USBIP_SPEED_HIGH: return "high";
    case USBIP_SPEED_SUPER: return "super";
    case USBIP_SPEED_SUPER_PLUS: return "super-plus";
    default: return "unknown";
    }
}

static void write_hex_member(json_writer_t *w, const char *key, unsigned value, int digits)
{
    char text[8];
    snprintf(text, sizeof text, "%0*x", digits, value);
    json_write_kv_string(w, key, text);
}

/* ---- status ---- */

void webui_write_status(webui_t *ui, json_writer_t *w)
{
    const uint64_t now = usbip_now_ms();
    json_write_kv_string(w, "version", ui->port.version ? ui->port.version : "");
    json_write_kv_string(w, "platform", ui->port.platform ? ui->port.platform : "");
    json_write_kv_string(w, "hostname", ui->port.hostname ? ui->port.hostname : "");
    json_write_kv_uint(w, "uptime_s", (now - ui->started_ms) / 1000);
    webui_system_info_t info;
    memset(&info, 0, sizeof info);
    if (ui->port.system_info) {
        ui->port.system_info(ui->port.ctx, &info);
    }
    json_write_key(w, "memory");
    json_write_object_begin(w);
    if (info.has_rss) {
        json_write_kv_uint(w, "rss_bytes", info.rss_bytes);
    }
    if (info.has_heaps) {
        json_write_kv_uint(w, "heap_free", info.heap_free);
        json_write_kv_uint(w, "heap_min_free", info.heap_min_free);
        json_write_kv_uint(w, "psram_free", info.psram_free);
    }
    json_write_object_end(w);
    if (info.has_link) {
        json_write_key(w, "link");
        json_write_object_begin(w);
        json_write_kv_bool(w, "up", info.link_up);
        json_write_kv_uint(w, "speed_mbps", info.speed_mbps);
        json_write_kv_string(w, "ipv4", info.ipv4);
        json_write_object_end(w);
    }
    json_write_kv_uint(w, "usbip_port", ui->port.usbip_port);
    const usbip_registry_t *reg = usbip_server_registry(ui->server);
    size_t devices = 0;
    for (size_t i = 0; i < reg->capacity; i++) {
        devices += reg->entries[i].used && reg->entries[i].state != USBIP_DEV_GONE;
    }
    json_write_kv_uint(w, "devices", devices);
    json_write_kv_uint(w, "clients", usbip_server_session_count(ui->server));
    json_write_kv_bool(w, "password_set", webui_password_set(ui));
}

/* ---- devices ---- */

/* "1-1.3" -> [1, 3]: the ports after the bus number. */
static void write_path(json_writer_t *w, const char *busid)
{
    json_write_key(w, "path");
    json_write_array_begin(w);
    const char *p = strchr(busid, '-');
    while (p && *++p) {
        json_write_uint(w, strtoul(p, NULL, 10));
        p = strchr(p, '.');
    }
    json_write_array_end(w);
}

static const char *state_name(usbip_dev_state_t state)
{
    switch (state) {
    case USBIP_DEV_AVAILABLE: return "available";
    case USBIP_DEV_IMPORTED: return "in_use";
    default: return "gone";
    }
}

static void write_client_ref(webui_t *ui, json_writer_t *w, const usbip_registry_entry_t *e)
{
    json_write_key(w, "client");
    if (e->state == USBIP_DEV_AVAILABLE || !e->owner) {
        json_write_null(w);
        return;
    }
    json_write_object_begin(w);
    json_write_kv_uint(w, "id", usbip_server_session_id(ui->server, e->owner));
    json_write_kv_string(w, "address", usbip_session_peer(e->owner));
    json_write_object_end(w);
}

static void write_device(webui_t *ui, json_writer_t *w, const usbip_registry_entry_t *e)
{
    const usbip_device_t *dev = e->dev;
    const usbip_device_record_t *r = &dev->record;
    json_write_object_begin(w);
    json_write_kv_string(w, "busid", r->busid);
    write_path(w, r->busid);
    write_hex_member(w, "vid", r->idVendor, 4);
    write_hex_member(w, "pid", r->idProduct, 4);
    json_write_kv_string(w, "manufacturer", dev->manufacturer);
    json_write_kv_string(w, "product", dev->product);
    json_write_kv_string(w, "speed", speed_name(r->speed));
    write_hex_member(w, "class", r->bDeviceClass, 2);
    json_write_key(w, "interfaces");
    json_write_array_begin(w);
    for (unsigned i = 0; i < r->bNumInterfaces && i < USBIP_MAX_INTERFACES; i++) {
        json_write_object_begin(w);
        write_hex_member(w, "class", dev->interfaces[i].bInterfaceClass, 2);
        write_hex_member(w, "subclass", dev->interfaces[i].bInterfaceSubClass, 2);
        write_hex_member(w, "protocol", dev->interfaces[i].bInterfaceProtocol, 2);
        json_write_object_end(w);
    }
    json_write_array_end(w);
    json_write_kv_string(w, "state", state_name(e->state));
    json_write_kv_bool(w, "exported", e->exported);
    write_client_ref(ui, w, e);
    json_write_key(w, "stats");
    json_write_object_begin(w);
    json_write_kv_uint(w, "urbs", e->stats.urbs_submitted);
    json_write_kv_uint(w, "bytes_in", e->stats.bytes_in);
    json_write_kv_uint(w, "bytes_out", e->stats.bytes_out);
    json_write_kv_uint(w, "errors", e->stats.errors + e->stats.urbs_failed);
    json_write_object_end(w);
    json_write_object_end(w);
}

void webui_write_devices(webui_t *ui, json_writer_t *w)
{
    const usbip_registry_t *reg = usbip_server_registry(ui->server);
    json_write_key(w, "devices");
    json_write_array_begin(w);
    for (size_t i = 0; i < reg->capacity; i++) {
        if (reg->entries[i].used) {
            write_device(ui, w, &reg->entries[i]);
        }
    }
    json_write_array_end(w);
}

/* ---- clients ---- */

void webui_write_clients(webui_t *ui, json_writer_t *w)
{
    const uint64_t now = usbip_now_ms();
    json_write_key(w, "clients");
    json_write_array_begin(w);
    for (size_t i = 0; i < usbip_server_session_count(ui->server); i++) {
        usbip_session_t *s = usbip_server_session_at(ui->server, i);
        if (usbip_session_state(s) == USBIP_SESSION_DONE) {
            continue;
        }
        const usbip_stats_t *st = usbip_session_stats(s);
        const usbip_registry_entry_t *e = usbip_session_device(s);
        json_write_object_begin(w);
        json_write_kv_uint(w, "id", usbip_server_session_id(ui->server, s));
        json_write_kv_string(w, "address", usbip_session_peer(s));
        json_write_key(w, "busid");
        json_write_string(w, e ? e->dev->record.busid : NULL);
        json_write_kv_uint(w, "connected_s", (now - usbip_session_connected_ms(s)) / 1000);
        json_write_kv_uint(w, "urbs", st->urbs_submitted);
        json_write_kv_uint(w, "bytes_in", st->bytes_in);
        json_write_kv_uint(w, "bytes_out", st->bytes_out);
        json_write_kv_uint(w, "errors", st->errors + st->urbs_failed);
        json_write_object_end(w);
    }
    json_write_array_end(w);
}

/* ---- events ---- */

void webui_write_events(webui_t *ui, json_writer_t *w, uint64_t since, size_t max,
                        uint64_t *next)
{
    const usbip_event_log_t *log = usbip_server_events(ui->server);
    const uint64_t now = usbip_now_ms();
    /* Asked for the newest `max` only when starting from 0 with a cap
     * (the first WebSocket frame): skip ahead. */
    uint64_t newest = usbip_event_log_last_id(log);
    if (since == 0 && newest > max) {
        since = newest - max;
    }
    *next = since;
    usbip_event_t *chunk = malloc(EVENT_CHUNK * sizeof *chunk);
    json_write_key(w, "events");
    json_write_array_begin(w);
    size_t written = 0;
    while (chunk && written < max) {
        size_t want = max - written < EVENT_CHUNK ? max - written : EVENT_CHUNK;
        size_t n = usbip_event_log_read(log, *next, chunk, want);
        for (size_t i = 0; i < n; i++) {
            const usbip_event_t *e = &chunk[i];
            json_write_object_begin(w);
            json_write_kv_uint(w, "id", e->id);
            json_write_key(w, "time_s");
            json_write_double(w, (double)e->time_ms / 1000.0, 3);
            json_write_kv_uint(w, "age_s", now >= e->time_ms ? (now - e->time_ms) / 1000 : 0);
            json_write_kv_string(w, "type", usbip_event_type_name(e->type));
            json_write_kv_string(w, "busid", e->busid);
            json_write_kv_string(w, "peer", e->peer);
            json_write_kv_string(w, "message", e->message);
            json_write_object_end(w);
            *next = e->id;
        }
        written += n;
        if (n < want) {
            break;
        }
    }
    if (!chunk) {
        w->failed = true;
    }
    free(chunk);
    json_write_array_end(w);
}

/* ---- bandwidth ---- */

void webui_sample_bandwidth(webui_t *ui)
{
    const usbip_registry_t *reg = usbip_server_registry(ui->server);
    for (size_t i = 0; i < ui->history_count && i < reg->capacity; i++) {
        const usbip_registry_entry_t *e = &reg->entries[i];
        webui_history_t *h = &ui->history[i];
        if (!e->used) {
            h->dev = NULL;
            continue;
        }
        if (h->dev != e->dev) { /* a new device in this entry: start over */
            memset(h, 0, sizeof *h);
            h->dev = e->dev;
            h->last_in = e->stats.bytes_in;
            h->last_out = e->stats.bytes_out;
        }
        const uint64_t din = e->stats.bytes_in - h->last_in;
        const uint64_t dout = e->stats.bytes_out - h->last_out;
        h->last_in = e->stats.bytes_in;
        h->last_out = e->stats.bytes_out;
        h->in[h->head] = din > UINT32_MAX ? UINT32_MAX : (uint32_t)din;
        h->out[h->head] = dout > UINT32_MAX ? UINT32_MAX : (uint32_t)dout;
        h->head = (h->head + 1) % WEBUI_HISTORY_S;
        if (h->count < WEBUI_HISTORY_S) {
            h->count++;
        }
    }
}

static void write_series(json_writer_t *w, const char *key, const webui_history_t *h,
                         const uint32_t *ring)
{
    json_write_key(w, key);
    json_write_array_begin(w);
    const uint32_t first = (h->head + WEBUI_HISTORY_S - h->count) % WEBUI_HISTORY_S;
    for (uint32_t k = 0; k < h->count; k++) {
        json_write_uint(w, ring[(first + k) % WEBUI_HISTORY_S]);
    }
    json_write_array_end(w);
}

void webui_write_bandwidth(webui_t *ui, json_writer_t *w)
{
    json_write_kv_uint(w, "interval_s", 1);
    json_write_key(w, "devices");
    json_write_object_begin(w);
    for (size_t i = 0; i < ui->history_count; i++) {
        const webui_history_t *h = &ui->history[i];
        if (!h->dev) {
            continue;
        }
        json_write_key(w, h->dev->record.busid);
        json_write_object_begin(w);
        write_series(w, "in", h, h->in);
        write_series(w, "out", h, h->out);
        json_write_object_end(w);
    }
    json_write_object_end(w);
}

void webui_write_bandwidth_now(webui_t *ui, json_writer_t *w)
{
    json_write_kv_uint(w, "t", ui->sample_serial);
    json_write_key(w, "devices");
    json_write_object_begin(w);
    for (size_t i = 0; i < ui->history_count; i++) {
        const webui_history_t *h = &ui->history[i];
        if (!h->dev || h->count == 0) {
            continue;
        }
        const uint32_t last = (h->head + WEBUI_HISTORY_S - 1) % WEBUI_HISTORY_S;
        json_write_key(w, h->dev->record.busid);
        json_write_array_begin(w);
        json_write_uint(w, h->in[last]);
        json_write_uint(w, h->out[last]);
        json_write_array_end(w);
    }
    json_write_object_end(w);
}

/* ---- settings ---- */

static void write_address(json_writer_t *w, const char *key, const usbip_ip_addr_t *a)
{
    char text[USBIP_IP_ADDR_TEXT_SIZE] = "";
    if (a->family == 4 || a->family == 6) {
        usbip_ip_addr_format(a, text, sizeof text);
    }
    json_write_kv_string(w, key, text);
}

void webui_write_settings(webui_t *ui, json_writer_t *w)
{
    const usbip_settings_t *s = usbip_server_settings(ui->server);
    json_write_kv_string(w, "hostname", s->hostname);
    json_write_key(w, "network");
    json_write_object_begin(w);
    json_write_kv_string(w, "mode", s->net.mode == USBIP_NET_STATIC ? "static" : "dhcp");
    write_address(w, "address", &s->net.address);
    write_address(w, "netmask", &s->net.netmask);
    write_address(w, "gateway", &s->net.gateway);
    write_address(w, "dns", &s->net.dns);
    json_write_object_end(w);
    json_write_key(w, "access");
    json_write_object_begin(w);
    json_write_kv_string(w, "mode", usbip_access_mode_name(s->acl.mode));
    json_write_key(w, "allow");
    json_write_array_begin(w);
    for (size_t i = 0; i < s->acl.count; i++) {
        char text[USBIP_CIDR_TEXT_SIZE];
        usbip_cidr_format(&s->acl.entries[i], text, sizeof text);
        json_write_string(w, text);
    }
    json_write_array_end(w);
    json_write_object_end(w);
    json_write_key(w, "syslog");
    json_write_object_begin(w);
    json_write_kv_string(w, "target", s->syslog_target);
    json_write_object_end(w);
}

/* ---- /metrics ---- */

typedef struct {
    char *buf;
    size_t len, cap;
    bool failed;
} text_t;

static void text_printf(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_printf(text_t *t, const char *fmt, ...)
{
    if (t->failed) {
        return;
    }
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if (t->buf && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap * 2 : 4096;
        while (cap < t->len + (size_t)n + 1) {
            cap *= 2;
        }
        char *grown = realloc(t->buf, cap);
        if (!grown) {
            t->failed = true;
            return;
        }
        t->buf = grown;
        t->cap = cap;
    }
}

static void metric_header(text_t *t, const char *name, const char *type, const char *help)
{
    text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Label values: the ones we emit are bus ids and addresses, but escape the
 * three characters the format reserves anyway. */
static void label_escape(const char *in, char *out, size_t out_len)
{
    size_t o = 0;
    for (; *in && o + 2 < out_len; in++) {
        if (*in == '\\' || *in == '"' || *in == '\n') {
            out[o++] = '\\';
            out[o++] = *in == '\n' ? 'n' : *in;
        } else {
            out[o++] = *in;
        }
    }
    out[o] = '\0';
}

/* The counters exported per device and per client, from usbip_stats_t
 * ("in" is device to client). */
static const struct {
    const char *name;  /* usbip_{device,client}_<name>_total */
    const char *device_help, *client_help;
    size_t offset;
} COUNTERS[] = {
    {"urbs", "URBs submitted to the device", "URBs the client submitted",
     offsetof(usbip_stats_t, urbs_submitted)},
    {"bytes_in", "payload bytes from the device to clients", "payload bytes sent to the client",
     offsetof(usbip_stats_t, bytes_in)},
    {"bytes_out", "payload bytes from clients to the device",
     "payload bytes received from the client", offsetof(usbip_stats_t, bytes_out)},
    {"errors", "failed URBs and refused requests", "failed URBs and protocol errors",
     offsetof(usbip_stats_t, errors)},
};
#define NUM_COUNTERS (sizeof COUNTERS / sizeof COUNTERS[0])

static uint64_t counter_value(const usbip_stats_t *st, size_t c)
{
    uint64_t v = *(const uint64_t *)((const char *)st + COUNTERS[c].offset);
    return COUNTERS[c].offset == offsetof(usbip_stats_t, errors) ? v + st->urbs_failed : v;
}

static void device_metrics(webui_t *ui, text_t *t)
{
    const usbip_registry_t *reg = usbip_server_registry(ui->server);
    for (size_t c = 0; c < NUM_COUNTERS; c++) {
        char name[64];
        snprintf(name, sizeof name, "usbip_device_%s_total", COUNTERS[c].name);
        metric_header(t, name, "counter", COUNTERS[c].device_help);
        for (size_t i = 0; i < reg->capacity; i++) {
            const usbip_registry_entry_t *e = &reg->entries[i];
            if (e->used) {
                char busid[64];
                label_escape(e->dev->record.busid, busid, sizeof busid);
                text_printf(t, "%s{busid=\"%s\"} %" PRIu64 "\n", name, busid,
                            counter_value(&e->stats, c));
            }
        }
    }
}

static void client_metrics(webui_t *ui, text_t *t)
{
    for (size_t c = 0; c < NUM_COUNTERS; c++) {
        char name[64];
        snprintf(name, sizeof name, "usbip_client_%s_total", COUNTERS[c].name);
        metric_header(t, name, "counter", COUNTERS[c].client_help);
        for (size_t i = 0; i < usbip_server_session_count(ui->server); i++) {
            usbip_session_t *s = usbip_server_session_at(ui->server, i);
            char peer[96];
            label_escape(usbip_session_peer(s), peer, sizeof peer);
            text_printf(t, "%s{client=\"%" PRIu32 "\",address=\"%s\"} %" PRIu64 "\n", name,
                        usbip_server_session_id(ui->server, s), peer,
                        counter_value(usbip_session_stats(s), c));
        }
    }
}

char *webui_metrics_text(webui_t *ui, size_t *len)
{
    text_t t = {0};
    const usbip_registry_t *reg = usbip_server_registry(ui->server);
    size_t devices = 0;
    for (size_t i = 0; i < reg->capacity; i++) {
        devices += reg->entries[i].used && reg->entries[i].state != USBIP_DEV_GONE;
    }
    metric_header(&t, "usbip_up", "gauge", "1 while the server runs");
    text_printf(&t, "usbip_up 1\n");
    metric_header(&t, "usbip_uptime_seconds", "gauge", "seconds since the server started");
    text_printf(&t, "usbip_uptime_seconds %" PRIu64 "\n",
                (usbip_now_ms() - ui->started_ms) / 1000);
    metric_header(&t, "usbip_devices", "gauge", "USB devices present");
    text_printf(&t, "usbip_devices %zu\n", devices);
    metric_header(&t, "usbip_clients", "gauge", "USB/IP connections");
    text_printf(&t, "usbip_clients %zu\n", usbip_server_session_count(ui->server));
    device_metrics(ui, &t);
    client_metrics(ui, &t);
    if (t.failed) {
        free(t.buf);
        return NULL;
    }
    *len = t.len;
    return t.buf;
}
