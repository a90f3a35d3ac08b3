/* dashboard: see dashboard.h. */
#include "dashboard.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "usbip_log.h"
#include "web_crypto.h"
#include "web_server.h"
#include "webui.h"

#ifndef USBIP_VERSION
#define USBIP_VERSION "dev"
#endif

/* The gzipped page, generated from web/dist/index.html.gz (empty if it was
 * not built). */
extern const unsigned char dashboard_page[];
extern const size_t dashboard_page_len;

static const char *TAG = "dashboard";

struct dashboard {
    webui_t *ui;
    web_server_t *web;
};

static void system_info(void *ctx, webui_system_info_t *out)
{
    (void)ctx;
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (f && fscanf(f, "%lu %lu", &size, &resident) == 2) {
        out->has_rss = true;
        out->rss_bytes = (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
    }
    if (f) {
        fclose(f);
    }
}

dashboard_t *dashboard_start(usbip_server_t *srv, const char *address, uint16_t port,
                             uint16_t usbip_port, usbip_netloop_waker_t *waker)
{
    dashboard_t *d = calloc(1, sizeof *d);
    if (!d) {
        return NULL;
    }
    const web_server_config_t wcfg = {
        .listen_address = address,
        .port = port,
        .page_gz = dashboard_page_len ? dashboard_page : NULL,
        .page_gz_len = dashboard_page_len,
        .waker = waker,
    };
    if (web_server_start(&wcfg, &d->web) != USBIP_OK) {
        free(d);
        return NULL;
    }
    static char hostname[64];
    if (gethostname(hostname, sizeof hostname - 1) != 0) {
        hostname[0] = '\0';
    }
    const webui_port_t port_hooks = {
        .version = USBIP_VERSION,
        .platform = "posix",
        .hostname = hostname,
        .usbip_port = usbip_port,
        .pbkdf2_iterations = 200000,
        .random = web_crypto_random,
        .pbkdf2_sha256 = web_crypto_pbkdf2_sha256,
        .system_info = system_info,
        .broadcast = web_server_broadcast,
        .ctx = d->web,
    };
    if (webui_create(srv, &port_hooks, &d->ui) != USBIP_OK) {
        web_server_stop(d->web);
        free(d);
        return NULL;
    }
    if (!dashboard_page_len) {
        USBIP_LOGW(TAG, "the page was not built (tools/build-web.sh): serving the API only");
    }
    return d;
}

uint16_t dashboard_port(const dashboard_t *d) { return web_server_port(d->web); }

int dashboard_poll(dashboard_t *d, uint64_t now_ms)
{
    web_server_process(d->web, d->ui);
    return webui_tick(d->ui, now_ms);
}

void dashboard_stop(dashboard_t *d)
{
    if (d) {
        web_server_stop(d->web);
        webui_destroy(d->ui);
        free(d);
    }
}
