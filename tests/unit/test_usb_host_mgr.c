/*
 * test_usb_host_mgr: the firmware's USB host backend (components/usb_host_mgr,
 * the real source files) on the host, end to end: the client library over
 * loopback TCP -> the shared network loop -> sessions -> usb_host_mgr's
 * backend ops -> its command queue -> the USB client task -> the transfer
 * engine -> a simulated ESP-IDF v5.5 USB Host Library (tests/esp_sim) ->
 * virtual USB devices. FreeRTOS tasks and queues are POSIX threads here.
 *
 * What the firmware cannot show on this machine, this does: devices found
 * and given bus ids through hubs, a full-speed device behind a high-speed
 * hub refused, interfaces claimed only while imported, URBs larger than a
 * transfer buffer chunked, SET_CONFIGURATION/SET_INTERFACE handled, unlink
 * by halt + flush, unplug while imported, and nothing left claimed, open or
 * allocated afterwards.
 *
 * usb_host_mgr_start() runs once per process (the library is installed
 * once), so the tests share one fixture and run in the order listed.
 */
#define _POSIX_C_SOURCE 200809L

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "host_mgr_internal.h"
#include "test_harness.h"
#include "usb_host_mgr.h"
#include "usb_host_sim.h"
#include "usbip_client.h"
#include "usbip_log.h"
#include "usbip_netloop.h"
#include "usbip_server.h"
#include "vdev.h"

#define POOL_SIZE   16
#define BUFFER_SIZE 16384 /* small, so a 64 KiB bulk URB is chunked */

/* ---- fixture: the server loop in a thread; the test locks it to look ---- */

static struct {
    usbip_server_t *srv;
    usbip_netloop_waker_t waker;
    usbip_netloop_t *loop;
    pthread_t thread;
    pthread_mutex_t core_lock;
    atomic_bool stop;
    uint16_t port;
    int zero_id, keyboard_id, hub_id;
} F = {.core_lock = PTHREAD_MUTEX_INITIALIZER};

static void poll_devices(void *ctx, uint64_t now)
{
    (void)ctx, (void)now;
    usb_host_mgr_process();
}

static void *loop_thread(void *arg)
{
    (void)arg;
    while (!atomic_load(&F.stop)) {
        pthread_mutex_lock(&F.core_lock);
        usbip_netloop_step(F.loop, 10);
        pthread_mutex_unlock(&F.core_lock);
    }
    return NULL;
}

static bool start_fixture(void)
{
    usbip_clock_set(test_clock_hook, NULL);
    usbip_server_config_t scfg;
    usbip_server_config_default(&scfg);
    scfg.max_devices = 4;
    scfg.device_freed = usb_host_mgr_device_freed;
    char err[256];
    if (usbip_server_create(&scfg, &F.srv, err, sizeof err) != USBIP_OK) {
        return false;
    }
    int fds[2];
    if (pipe(fds) < 0) {
        return false;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
    }
    usbip_netloop_waker_init(&F.waker, fds[0], fds[1]);
    usbip_netloop_config_t cfg;
    usbip_netloop_config_default(&cfg);
    cfg.server = F.srv;
    cfg.waker = &F.waker;
    cfg.listen_address = "127.0.0.1";
    cfg.port = 0;
    cfg.poll_devices = poll_devices;
    if (usbip_netloop_create(&cfg, &F.loop) != USBIP_OK) {
        return false;
    }
    F.port = usbip_netloop_port(F.loop);
    const usb_host_mgr_config_t mcfg = {
        .server = F.srv,
        .wake = usbip_netloop_wake,
        .wake_ctx = &F.waker,
        .max_devices = 4,
        .transfer_pool_size = POOL_SIZE,
        .transfer_buffer_size = BUFFER_SIZE,
    };
    if (usb_host_mgr_start(&mcfg) != ESP_OK) {
        return false;
    }
    return pthread_create(&F.thread, NULL, loop_thread, NULL) == 0;
}

/* ---- helpers ---- */

typedef struct {
    char busids[8][USBIP_BUSID_SIZE];
    size_t count;
} listing_t;

static void collect(void *arg, const usbip_device_record_t *dev,
                    const usbip_interface_record_t *intfs, size_t nintf)
{
    listing_t *l = arg;
    if (l->count < 8) {
        snprintf(l->busids[l->count++], USBIP_BUSID_SIZE, "%s", dev->busid);
    }
}

static listing_t devlist(void)
{
    listing_t l = {0};
    usbip_client_t *c = NULL;
    if (usbip_client_connect("127.0.0.1", F.port, 2000, &c) == USBIP_OK) {
        usbip_client_devlist(c, collect, &l, NULL);
        usbip_client_close(c);
    }
    return l;
}

static bool listed(const listing_t *l, const char *busid)
{
    for (size_t i = 0; i < l->count; i++) {
        if (strcmp(l->busids[i], busid) == 0) {
            return true;
        }
    }
    return false;
}

/* DEVLIST until `busid` is (or is no longer) there, up to 5 s. */
static bool wait_listed(const char *busid, bool want)
{
    for (int i = 0; i < 250; i++) {
        listing_t l = devlist();
        if (listed(&l, busid) == want) {
            return true;
        }
        test_sleep_ms(20);
    }
    return false;
}

static usbip_client_t *import(const char *busid)
{
    usbip_client_t *c = NULL;
    if (usbip_client_connect("127.0.0.1", F.port, 5000, &c) != USBIP_OK) {
        return NULL;
    }
    if (usbip_client_import(c, busid, NULL, NULL) != USBIP_OK) {
        usbip_client_close(c);
        return NULL;
    }
    return c;
}

static usb_host_sim_stats_t sim_stats(void)
{
    usb_host_sim_stats_t s;
    usb_host_sim_stats(&s);
    return s;
}

/* Wait for the USB side to settle (interfaces released, devices closed). */
static bool wait_claimed(int interfaces)
{
    for (int i = 0; i < 250 && sim_stats().interfaces_claimed != interfaces; i++) {
        test_sleep_ms(20);
    }
    return sim_stats().interfaces_claimed == interfaces;
}

static bool event_logged(usbip_event_type_t type, const char *text)
{
    usbip_event_t events[64];
    pthread_mutex_lock(&F.core_lock);
    size_t n = usbip_event_log_read(usbip_server_events(F.srv), 0, events, 64);
    pthread_mutex_unlock(&F.core_lock);
    for (size_t i = 0; i < n; i++) {
        if (events[i].type == type && strstr(events[i].message, text)) {
            return true;
        }
    }
    return false;
}

static vdev_t *make_vdev(vdev_kind_t kind, uint32_t keyboard_delay_ms)
{
    vdev_config_t cfg = {.kind = kind, .keyboard_delay_ms = keyboard_delay_ms,
                         .storage_size = 1024 * 1024};
    vdev_t *v = NULL;
    return vdev_create(&cfg, &v) == USBIP_OK ? v : NULL;
}

/* ---- tests ---- */

TEST(devices_get_bus_ids_from_their_port_path)
{
    /* A hub on the root port with the Gadget Zero on its port 1, both there
     * before the server starts (found by the start-up scan or by NEW_DEV),
     * and a keyboard plugged into port 3 later. */
    vdev_t *zero = make_vdev(VDEV_ZERO, 0);
    vdev_t *keyboard = make_vdev(VDEV_KEYBOARD, 600000); /* never types during the test */
    REQUIRE(zero && keyboard);
    F.hub_id = usb_host_sim_add_hub(0, 0, USB_SPEED_HIGH);
    F.zero_id = usb_host_sim_plug(zero, F.hub_id, 1, USB_SPEED_HIGH);
    REQUIRE(start_fixture());
    CHECK(wait_listed("1-1.1", true));
    F.keyboard_id = usb_host_sim_plug(keyboard, F.hub_id, 3, USB_SPEED_HIGH);
    CHECK(wait_listed("1-1.3", true));
    listing_t l = devlist();
    CHECK_EQ_INT(l.count, 2); /* the hub itself is never exported */
    CHECK(!listed(&l, "1-1"));
    CHECK_EQ_INT(sim_stats().devices_open, 2);
    /* Idle devices hold no host channel: nothing claimed until import. */
    CHECK_EQ_INT(sim_stats().interfaces_claimed, 0);
}

TEST(full_speed_device_behind_high_speed_hub_is_refused_and_logged)
{
    /* v5.5 refuses it before enumeration (its own log line, which reaches
     * the event log on the firmware through the log capture). */
    vdev_t *serial = make_vdev(VDEV_SERIAL, 0);
    REQUIRE(serial);
    int id = usb_host_sim_plug(serial, F.hub_id, 2, USB_SPEED_FULL);
    REQUIRE(id > 0);
    test_sleep_ms(200);
    listing_t listing = devlist();
    CHECK(!listed(&listing, "1-1.2"));
    usb_host_sim_unplug(id);
    /* A library that enumerates it anyway meets the glue's own check. */
    usb_host_sim_enumerate_behind_tt(true);
    serial = make_vdev(VDEV_SERIAL, 0);
    REQUIRE(serial);
    id = usb_host_sim_plug(serial, F.hub_id, 2, USB_SPEED_FULL);
    REQUIRE(id > 0);
    bool logged = false;
    for (int i = 0; i < 250 && !logged; i++) {
        logged = event_logged(USBIP_EVENT_ERROR, "transaction translator");
        test_sleep_ms(20);
    }
    CHECK(logged);
    CHECK(event_logged(USBIP_EVENT_ERROR, "1-1.2: full-speed device behind a high-speed hub"));
    listing_t l = devlist();
    CHECK(!listed(&l, "1-1.2"));
    usb_host_sim_unplug(id);
    usb_host_sim_enumerate_behind_tt(false);
    for (int i = 0; i < 250 && sim_stats().devices_present != 2; i++) {
        test_sleep_ms(20);
    }
    CHECK_EQ_INT(sim_stats().devices_present, 2);
}

TEST(import_without_free_host_channels_is_refused_cleanly)
{
    const int channels = sim_stats().channels_free;
    usb_host_sim_set_free_channels(2); /* the Gadget Zero needs 4 */
    usbip_client_t *c = NULL;
    REQUIRE(usbip_client_connect("127.0.0.1", F.port, 5000, &c) == USBIP_OK);
    uint32_t op_status = 0;
    CHECK_EQ_INT(usbip_client_import(c, "1-1.1", NULL, &op_status), USBIP_ERR_IO);
    CHECK(op_status != 0);
    usbip_client_close(c);
    CHECK_EQ_INT(sim_stats().interfaces_claimed, 0); /* nothing left half claimed */
    CHECK_EQ_INT(sim_stats().channels_free, 2);
    usb_host_sim_set_free_channels(channels);
    c = import("1-1.1"); /* with channels back it works */
    CHECK(c != NULL);
    if (c) {
        usbip_client_close(c);
    }
    CHECK(wait_claimed(0));
}

TEST(import_claims_and_control_requests_work)
{
    usbip_client_t *c = import("1-1.1");
    REQUIRE(c);
    CHECK(wait_claimed(1));
    uint8_t desc[18] = {0};
    int32_t status = -1;
    uint32_t actual = 0;
    CHECK_EQ_INT(usbip_client_control(c, 0x80, 6, 0x0100, 0, desc, 18, &status, &actual),
                 USBIP_OK);
    CHECK_EQ_INT(status, 0);
    CHECK_EQ_INT(actual, 18);
    CHECK_EQ_INT(desc[1], 1);
    CHECK_EQ_INT(desc[8] | (desc[9] << 8), 0x0525); /* Gadget Zero's idVendor */
    /* The active configuration is answered locally; another one cannot be
     * selected with the v5.5 library: a true error, as a refusing device. */
    CHECK_EQ_INT(usbip_client_control(c, 0x00, 9, 1, 0, NULL, 0, &status, NULL), USBIP_OK);
    CHECK_EQ_INT(status, 0);
    CHECK_EQ_INT(usbip_client_control(c, 0x00, 9, 2, 0, NULL, 0, &status, NULL), USBIP_OK);
    CHECK_EQ_INT(status, USBIP_EPIPE);
    usbip_client_close(c);
    CHECK(wait_claimed(0));
}

TEST(bulk_urbs_larger_than_a_transfer_are_chunked_and_reassembled)
{
    usbip_client_t *c = import("1-1.1");
    REQUIRE(c);
    enum { LEN = 65536 };
    uint8_t *buf = malloc(LEN);
    REQUIRE(buf);
    for (uint32_t i = 0; i < LEN; i++) {
        buf[i] = (uint8_t)((i % 512u) % 63u); /* what the sink expects */
    }
    int32_t status = -1;
    uint32_t actual = 0;
    CHECK_EQ_INT(usbip_client_transfer(c, 1, false, buf, LEN, &status, &actual), USBIP_OK);
    CHECK_EQ_INT(status, 0);
    CHECK_EQ_INT(actual, LEN);
    memset(buf, 0xee, LEN);
    CHECK_EQ_INT(usbip_client_transfer(c, 1, true, buf, LEN, &status, &actual), USBIP_OK);
    CHECK_EQ_INT(status, 0);
    CHECK_EQ_INT(actual, LEN);
    uint32_t bad = 0;
    for (uint32_t i = 0; i < LEN; i++) {
        bad += buf[i] != (uint8_t)((i % 512u) % 63u);
    }
    CHECK_EQ_INT(bad, 0);
    /* A 100-byte IN request goes to the controller as one 512-byte packet
     * (IN lengths must be multiples of wMaxPacketSize); the source fills it,
     * so the result is clamped to the 100 bytes asked for and reported as
     * babble, -EOVERFLOW, as a Linux host controller reports it. */
    CHECK_EQ_INT(usbip_client_transfer(c, 1, true, buf, 100, &status, &actual), USBIP_OK);
    CHECK_EQ_INT(status, USBIP_EOVERFLOW);
    CHECK_EQ_INT(actual, 100);
    CHECK_EQ_INT(buf[99], 99 % 63);
    free(buf);
    usbip_client_close(c);
    CHECK(wait_claimed(0));
}

TEST(set_interface_switches_to_iso_and_back)
{
    usbip_client_t *c = import("1-1.1");
    REQUIRE(c);
    int32_t status = -1;
    CHECK_EQ_INT(usbip_client_control(c, 0x01, 11, 1, 0, NULL, 0, &status, NULL), USBIP_OK);
    CHECK_EQ_INT(status, 0);
    enum { PACKETS = 8, MPS = 1024 };
    uint8_t *buf = calloc(PACKETS, MPS);
    usbip_iso_packet_t iso[PACKETS];
    for (uint32_t i = 0; i < PACKETS; i++) {
        iso[i] = (usbip_iso_packet_t){.offset = i * MPS, .length = MPS};
    }
    usbip_client_urb_t urb = {.ep = 3, .dir_in = true, .buffer = buf, .length = PACKETS * MPS,
                              .interval = 4, .num_iso_packets = PACKETS, .iso = iso,
                              .flags = USBIP_URB_ISO_ASAP};
    CHECK_EQ_INT(usbip_client_submit(c, &urb), USBIP_OK);
    usbip_client_urb_t *done = NULL;
    CHECK_EQ_INT(usbip_client_wait(c, &done, NULL, NULL), USBIP_OK);
    CHECK(done == &urb);
    CHECK_EQ_INT(urb.status, 0);
    CHECK_EQ_INT(urb.actual_length, PACKETS * MPS);
    CHECK_EQ_INT(urb.error_count, 0);
    CHECK_EQ_INT(buf[MPS + 1], 1); /* each packet restarts the pattern */
    CHECK_EQ_INT(usbip_client_control(c, 0x01, 11, 0, 0, NULL, 0, &status, NULL), USBIP_OK);
    CHECK_EQ_INT(status, 0);
    /* Back at alt 0 the iso endpoint is gone: stalled by the session. */
    CHECK_EQ_INT(usbip_client_submit(c, &urb), USBIP_OK);
    CHECK_EQ_INT(usbip_client_wait(c, &done, NULL, NULL), USBIP_OK);
    CHECK_EQ_INT(urb.status, USBIP_EPIPE);
    free(buf);
    usbip_client_close(c);
    CHECK(wait_claimed(0));
}

TEST(unlink_of_a_pending_urb_halts_and_flushes_only_that_endpoint)
{
    usbip_client_t *c = import("1-1.3");
    REQUIRE(c);
    const usb_host_sim_stats_t before = sim_stats();
    uint8_t report[8];
    usbip_client_urb_t urb = {.ep = 1, .dir_in = true, .buffer = report, .length = 8,
                              .interval = 4};
    CHECK_EQ_INT(usbip_client_submit(c, &urb), USBIP_OK);
    test_sleep_ms(100); /* in the library, waiting for a key that does not come */
    CHECK_EQ_INT(usbip_client_unlink(c, &urb, NULL), USBIP_OK);
    usbip_client_urb_t *done = NULL;
    int32_t unlink_status = 1;
    CHECK_EQ_INT(usbip_client_wait(c, &done, &unlink_status, NULL), USBIP_OK);
    CHECK(done == &urb);
    CHECK(urb.unlinked);
    CHECK_EQ_INT(unlink_status, USBIP_ECONNRESET);
    /* The session answers the unlink at once; the USB side stops the
     * transfer right after: halt, flush (it comes back CANCELED), clear. */
    usb_host_sim_stats_t after = sim_stats();
    for (int i = 0; i < 250 && after.clears == before.clears; i++) {
        test_sleep_ms(20);
        after = sim_stats();
    }
    CHECK_EQ_INT(after.halts - before.halts, 1);
    CHECK_EQ_INT(after.flushes - before.flushes, 1);
    CHECK_EQ_INT(after.clears - before.clears, 1);
    /* The endpoint works again after the unlink. */
    CHECK_EQ_INT(usbip_client_submit(c, &urb), USBIP_OK);
    test_sleep_ms(50);
    CHECK_EQ_INT(usbip_client_unlink(c, &urb, NULL), USBIP_OK);
    CHECK_EQ_INT(usbip_client_wait(c, &done, &unlink_status, NULL), USBIP_OK);
    CHECK_EQ_INT(unlink_status, USBIP_ECONNRESET);
    usbip_client_close(c);
    CHECK(wait_claimed(0));
}

TEST(clear_halt_after_a_stall_resets_pipe_and_device)
{
    usbip_client_t *c = import("1-1.1");
    REQUIRE(c);
    const usb_host_sim_stats_t before = sim_stats();
    uint8_t buf[512];
    int32_t status = -1;
    uint32_t actual = 0;
    /* SET_FEATURE(ENDPOINT_HALT) on bulk IN: the device stalls it... */
    CHECK_EQ_INT(usbip_client_control(c, 0x02, 3, 0, 0x81, NULL, 0, &status, NULL), USBIP_OK);
    CHECK_EQ_INT(status, 0);
    CHECK_EQ_INT(usbip_client_transfer(c, 1, true, buf, sizeof buf, &status, &actual), USBIP_OK);
    CHECK_EQ_INT(status, USBIP_EPIPE); /* ...and the library halts the pipe */
    /* CLEAR_FEATURE(ENDPOINT_HALT): halt, flush, re-claim (fresh pipes at
     * DATA0), the request to the device, and the pipe runs again. */
    CHECK_EQ_INT(usbip_client_control(c, 0x02, 1, 0, 0x81, NULL, 0, &status, NULL), USBIP_OK);
    CHECK_EQ_INT(status, 0);
    CHECK_EQ_INT(usbip_client_transfer(c, 1, true, buf, sizeof buf, &status, &actual), USBIP_OK);
    CHECK_EQ_INT(status, 0);
    CHECK_EQ_INT(actual, sizeof buf);
    CHECK_EQ_INT(sim_stats().submits_invalid, before.submits_invalid);

    /* Several URBs queued on a stalled endpoint: the first fails and halts
     * the pipe at once, the next submits race with that halt. Each gets
     * -EPIPE, in submission order, none overtakes the one ahead. */
    const int raced_before = sim_stats().submits_to_halted_pipe;
    CHECK_EQ_INT(usbip_client_control(c, 0x02, 3, 0, 0x81, NULL, 0, &status, NULL), USBIP_OK);
    enum { N = 4 };
    usbip_client_urb_t urbs[N];
    uint8_t bufs[N][512];
    for (int i = 0; i < N; i++) {
        urbs[i] = (usbip_client_urb_t){.ep = 1, .dir_in = true, .buffer = bufs[i],
                                       .length = 512};
        CHECK_EQ_INT(usbip_client_submit(c, &urbs[i]), USBIP_OK);
    }
    for (int i = 0; i < N; i++) {
        usbip_client_urb_t *done = NULL;
        CHECK_EQ_INT(usbip_client_wait(c, &done, NULL, NULL), USBIP_OK);
        CHECK(done == &urbs[i]);
        CHECK_EQ_INT(urbs[i].status, USBIP_EPIPE);
    }
    CHECK(sim_stats().submits_to_halted_pipe > raced_before); /* the race did happen */
    CHECK_EQ_INT(usbip_client_control(c, 0x02, 1, 0, 0x81, NULL, 0, &status, NULL), USBIP_OK);
    CHECK_EQ_INT(usbip_client_transfer(c, 1, true, buf, sizeof buf, &status, &actual), USBIP_OK);
    CHECK_EQ_INT(status, 0);
    usbip_client_close(c);
    CHECK(wait_claimed(0));
}

TEST(unlink_of_one_urb_leaves_the_others_of_its_endpoint_queued)
{
    usbip_client_t *c = import("1-1.3");
    REQUIRE(c);
    uint8_t report_a[8], report_b[8];
    usbip_client_urb_t a = {.ep = 1, .dir_in = true, .buffer = report_a, .length = 8,
                            .interval = 4};
    usbip_client_urb_t b = a;
    b.buffer = report_b;
    CHECK_EQ_INT(usbip_client_submit(c, &a), USBIP_OK);
    CHECK_EQ_INT(usbip_client_submit(c, &b), USBIP_OK);
    test_sleep_ms(100);
    /* Unlinking b flushes the whole endpoint in the library; a must be
     * resubmitted and stay pending, not completed. */
    CHECK_EQ_INT(usbip_client_unlink(c, &b, NULL), USBIP_OK);
    usbip_client_urb_t *done = NULL;
    int32_t unlink_status = 1;
    CHECK_EQ_INT(usbip_client_wait(c, &done, &unlink_status, NULL), USBIP_OK);
    CHECK(done == &b);
    CHECK_EQ_INT(unlink_status, USBIP_ECONNRESET);
    usbip_client_set_timeout(c, 300);
    CHECK_EQ_INT(usbip_client_wait(c, &done, &unlink_status, NULL), USBIP_ERR_IO);
    CHECK(usbip_client_timed_out(c));
    usbip_client_set_timeout(c, 5000);
    CHECK_EQ_INT(usbip_client_urbs_in_flight(c), 1);
    CHECK_EQ_INT(usbip_client_unlink(c, &a, NULL), USBIP_OK);
    CHECK_EQ_INT(usbip_client_wait(c, &done, &unlink_status, NULL), USBIP_OK);
    CHECK(done == &a);
    CHECK_EQ_INT(unlink_status, USBIP_ECONNRESET);
    usbip_client_close(c);
    CHECK(wait_claimed(0));
}

TEST(unplug_while_imported_ends_the_session_and_frees_everything)
{
    usbip_client_t *c = import("1-1.3");
    REQUIRE(c);
    CHECK(wait_claimed(1));
    uint8_t report[8];
    usbip_client_urb_t urb = {.ep = 1, .dir_in = true, .buffer = report, .length = 8,
                              .interval = 4};
    CHECK_EQ_INT(usbip_client_submit(c, &urb), USBIP_OK);
    test_sleep_ms(50);
    usb_host_sim_unplug(F.keyboard_id);
    CHECK(usbip_client_wait_closed(c, 5000));
    usbip_client_close(c);
    CHECK(wait_listed("1-1.3", false));
    CHECK(wait_claimed(0));
    for (int i = 0; i < 250 && sim_stats().devices_open != 1; i++) {
        test_sleep_ms(20);
    }
    CHECK_EQ_INT(sim_stats().devices_open, 1); /* only the Gadget Zero */
    CHECK(event_logged(USBIP_EVENT_DEVICE_REMOVED, "while imported"));
    listing_t l = devlist();
    CHECK(listed(&l, "1-1.1"));
}

TEST(unplug_of_an_idle_device_closes_it)
{
    usb_host_sim_unplug(F.zero_id);
    CHECK(wait_listed("1-1.1", false));
    for (int i = 0; i < 250 && sim_stats().devices_present != 0; i++) {
        test_sleep_ms(20);
    }
    CHECK_EQ_INT(sim_stats().devices_present, 0);
    CHECK_EQ_INT(sim_stats().devices_open, 0);
}

TEST(power_cycle_takes_every_device_off_the_port)
{
    vdev_t *serial = make_vdev(VDEV_SERIAL, 0);
    REQUIRE(serial);
    usb_host_sim_plug(serial, F.hub_id, 4, USB_SPEED_HIGH);
    CHECK(wait_listed("1-1.4", true));
    usbip_client_t *c = import("1-1.4");
    CHECK(c != NULL);
    CHECK_EQ_INT(usb_host_mgr_power_cycle(), ESP_OK);
    if (c) {
        CHECK(usbip_client_wait_closed(c, 5000)); /* its session ends with the device */
        usbip_client_close(c);
    }
    CHECK(wait_listed("1-1.4", false));
    CHECK_EQ_INT(sim_stats().power_cycles, 1);
}

TEST(everything_is_returned_at_the_end)
{
    for (int i = 0; i < 250 && sim_stats().devices_present != 0; i++) {
        test_sleep_ms(20);
    }
    const usb_host_sim_stats_t s = sim_stats();
    CHECK_EQ_INT(s.devices_present, 0);
    CHECK_EQ_INT(s.devices_open, 0);
    CHECK_EQ_INT(s.interfaces_claimed, 0);
    CHECK_EQ_INT(s.transfers_in_flight, 0);
    CHECK_EQ_INT(s.channels_free, 16 - 2); /* all back but the hub's two */
    pthread_mutex_lock(&F.core_lock); /* the pool belongs to the server task */
    CHECK_EQ_INT(g_hm.num_free, POOL_SIZE);
    CHECK_EQ_INT(g_hm.pool.free, POOL_SIZE);
    pthread_mutex_unlock(&F.core_lock);
    CHECK_EQ_INT(s.submits_invalid, 0); /* the engine never broke a library rule */
    atomic_store(&F.stop, true);
    pthread_join(F.thread, NULL);
    usbip_netloop_shutdown(F.loop);
    usbip_netloop_destroy(F.loop);
}

TEST_MAIN("usb_host_mgr", TEST_ENTRY(devices_get_bus_ids_from_their_port_path),
          TEST_ENTRY(full_speed_device_behind_high_speed_hub_is_refused_and_logged),
          TEST_ENTRY(import_without_free_host_channels_is_refused_cleanly),
          TEST_ENTRY(import_claims_and_control_requests_work),
          TEST_ENTRY(bulk_urbs_larger_than_a_transfer_are_chunked_and_reassembled),
          TEST_ENTRY(set_interface_switches_to_iso_and_back),
          TEST_ENTRY(unlink_of_a_pending_urb_halts_and_flushes_only_that_endpoint),
          TEST_ENTRY(clear_halt_after_a_stall_resets_pipe_and_device),
          TEST_ENTRY(unlink_of_one_urb_leaves_the_others_of_its_endpoint_queued),
          TEST_ENTRY(unplug_while_imported_ends_the_session_and_frees_everything),
          TEST_ENTRY(unplug_of_an_idle_device_closes_it),
          TEST_ENTRY(power_cycle_takes_every_device_off_the_port),
          TEST_ENTRY(everything_is_returned_at_the_end))
