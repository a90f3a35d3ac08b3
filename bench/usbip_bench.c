/*
 * usbip_bench: throughput and latency of a USB/IP server, measured with the
 * project's client library against a Gadget Zero (a usbip-server virtual
 * device here, a real g_zero gadget behind the firmware).
 *
 *   usbip_bench [--host H] [--port P] [--busid 1-4] [--seconds S] [--json FILE]
 *
 * Prints a table and, with --json, writes the same figures as JSON. It is a
 * measurement, not a test: nothing here passes or fails on a number.
 *  - bulk IN and bulk OUT: MB/s with 1, 4 and 16 URBs of 16 KiB and 64 KiB in flight;
 *  - control: round trips per second and median/p99 latency of GET_DESCRIPTOR.
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "usbip_client.h"

#define MAX_DEPTH 16
#define MAX_SIZE (64 * 1024)
#define CONTROL_ROUNDS 2000

typedef struct {
    const char *host;
    uint16_t port;
    const char *busid;
    double seconds;
    const char *json;
} options_t;

typedef struct {
    const char *name;
    bool dir_in;
    uint32_t size;
    int depth;
    double mb_per_s;
    uint64_t urbs;
} bulk_result_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static usbip_client_t *open_device(const options_t *o)
{
    usbip_client_t *c = NULL;
    if (usbip_client_connect(o->host, o->port, 5000, &c) != USBIP_OK) {
        fprintf(stderr, "usbip_bench: cannot connect to %s:%u\n", o->host, o->port);
        return NULL;
    }
    if (usbip_client_import(c, o->busid, NULL, NULL) != USBIP_OK) {
        fprintf(stderr, "usbip_bench: import of %s failed: %s\n", o->busid,
                usbip_client_last_error(c));
        usbip_client_close(c);
        return NULL;
    }
    return c;
}

/* Gadget Zero's sink checks the "mod63" pattern of 512-byte packets. */
static void fill_pattern(uint8_t *p, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++) {
        p[i] = (uint8_t)((i % 512u) % 63u);
    }
}

static bool run_bulk(const options_t *o, bulk_result_t *r)
{
    usbip_client_t *c = open_device(o);
    if (!c) {
        return false;
    }
    static uint8_t buffers[MAX_DEPTH][MAX_SIZE];
    usbip_client_urb_t urbs[MAX_DEPTH];
    for (int i = 0; i < r->depth; i++) {
        if (!r->dir_in) {
            fill_pattern(buffers[i], r->size);
        }
        urbs[i] = (usbip_client_urb_t){.ep = 1, .dir_in = r->dir_in, .buffer = buffers[i],
                                       .length = r->size};
        if (usbip_client_submit(c, &urbs[i]) != USBIP_OK) {
            usbip_client_close(c);
            return false;
        }
    }
    uint64_t bytes = 0, done_urbs = 0;
    const double start = now_s(), end = start + o->seconds;
    bool ok = true;
    size_t in_flight = (size_t)r->depth;
    while (in_flight > 0) {
        usbip_client_urb_t *done = NULL;
        if (usbip_client_wait(c, &done, NULL, NULL) != USBIP_OK || !done || done->status != 0) {
            ok = false;
            break;
        }
        bytes += done->actual_length;
        done_urbs++;
        in_flight--;
        if (now_s() < end) {
            if (usbip_client_submit(c, done) != USBIP_OK) {
                ok = false;
                break;
            }
            in_flight++;
        }
    }
    const double elapsed = now_s() - start;
    r->mb_per_s = ok ? (double)bytes / 1e6 / elapsed : 0;
    r->urbs = done_urbs;
    usbip_client_close(c);
    return ok;
}

static int compare_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static bool run_control(const options_t *o, double *per_s, double *median_us, double *p99_us)
{
    usbip_client_t *c = open_device(o);
    if (!c) {
        return false;
    }
    static double lat[CONTROL_ROUNDS];
    uint8_t desc[18];
    const double start = now_s();
    for (int i = 0; i < CONTROL_ROUNDS; i++) {
        const double t0 = now_s();
        int32_t status = -1;
        if (usbip_client_control(c, 0x80, 6, 0x0100, 0, desc, sizeof desc, &status, NULL) !=
                USBIP_OK || status != 0) {
            usbip_client_close(c);
            return false;
        }
        lat[i] = (now_s() - t0) * 1e6;
    }
    *per_s = CONTROL_ROUNDS / (now_s() - start);
    qsort(lat, CONTROL_ROUNDS, sizeof lat[0], compare_double);
    *median_us = lat[CONTROL_ROUNDS / 2];
    *p99_us = lat[CONTROL_ROUNDS * 99 / 100];
    usbip_client_close(c);
    return true;
}

static bool parse_args(int argc, char **argv, options_t *o)
{
    *o = (options_t){.host = "127.0.0.1", .port = 3240, .busid = "1-4", .seconds = 2.0};
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "usbip_bench: %s needs a value\n", argv[i]);
            return false;
        }
        if (strcmp(argv[i], "--host") == 0) {
            o->host = v;
        } else if (strcmp(argv[i], "--port") == 0) {
            o->port = (uint16_t)atoi(v);
        } else if (strcmp(argv[i], "--busid") == 0) {
            o->busid = v;
        } else if (strcmp(argv[i], "--seconds") == 0) {
            o->seconds = atof(v);
        } else if (strcmp(argv[i], "--json") == 0) {
            o->json = v;
        } else {
            fprintf(stderr, "usbip_bench: unknown option %s\n", argv[i]);
            return false;
        }
        i++;
    }
    if (o->port == 0 || o->seconds <= 0) {
        fprintf(stderr, "usbip_bench: --port must be 1..65535 and --seconds positive\n");
        return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    options_t o;
    if (!parse_args(argc, argv, &o)) {
        return 2;
    }
    static const uint32_t sizes[] = {16384, 65536};
    static const int depths[] = {1, 4, 16};
    bulk_result_t results[2 * 2 * 3];
    size_t n = 0;
    printf("%-9s %8s %6s %10s %10s\n", "bulk", "size", "depth", "MB/s", "URBs");
    for (int dir = 0; dir < 2; dir++) {
        for (size_t s = 0; s < 2; s++) {
            for (size_t d = 0; d < 3; d++) {
                bulk_result_t *r = &results[n++];
                *r = (bulk_result_t){.name = dir ? "out" : "in", .dir_in = dir == 0,
                                     .size = sizes[s], .depth = depths[d]};
                if (!run_bulk(&o, r)) {
                    fprintf(stderr, "usbip_bench: bulk %s failed\n", r->name);
                    return 1;
                }
                printf("%-9s %8" PRIu32 " %6d %10.1f %10" PRIu64 "\n", r->name, r->size,
                       r->depth, r->mb_per_s, r->urbs);
            }
        }
    }
    double per_s = 0, median = 0, p99 = 0;
    if (!run_control(&o, &per_s, &median, &p99)) {
        fprintf(stderr, "usbip_bench: control round trips failed\n");
        return 1;
    }
    printf("control GET_DESCRIPTOR: %.0f/s, median %.0f us, p99 %.0f us\n", per_s, median, p99);
    if (o.json) {
        FILE *f = fopen(o.json, "w");
        if (!f) {
            perror(o.json);
            return 1;
        }
        fprintf(f, "{\n  \"server\": \"%s:%u\",\n  \"busid\": \"%s\",\n  \"seconds_each\": %.1f,\n"
                   "  \"bulk\": [\n", o.host, o.port, o.busid, o.seconds);
        for (size_t i = 0; i < n; i++) {
            fprintf(f, "    {\"dir\": \"%s\", \"size\": %" PRIu32 ", \"depth\": %d, "
                       "\"mb_per_s\": %.1f, \"urbs\": %" PRIu64 "}%s\n",
                    results[i].name, results[i].size, results[i].depth, results[i].mb_per_s,
                    results[i].urbs, i + 1 < n ? "," : "");
        }
        fprintf(f, "  ],\n  \"control\": {\"per_s\": %.0f, \"median_us\": %.0f, "
                   "\"p99_us\": %.0f}\n}\n", per_s, median, p99);
        fclose(f);
    }
    return 0;
}
