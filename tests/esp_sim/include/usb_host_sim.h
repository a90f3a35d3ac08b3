/*
 * usb_host_sim: a simulated ESP-IDF v5.5 USB Host Library for host tests of
 * the firmware glue. The "USB devices" behind it are the project's virtual
 * devices (host/vdev), enumerated the way the library does (descriptors and
 * strings cached, SET_CONFIGURATION 1 sent) and driven with the library's
 * rules enforced: claimed interfaces only, IN lengths a multiple of
 * wMaxPacketSize, a pipe halted and its queue flushed after a STALL,
 * halt/flush/clear, release refused while transfers are in flight, close
 * refused while interfaces are claimed, callbacks only from
 * usb_host_client_handle_events(), DEV_GONE to clients that opened the
 * device. Plain hubs can be added to build port paths.
 *
 * The test thread may call the usb_host_sim_* functions at any time; they
 * take the simulator's lock, which every vdev call is made under.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "usb/usb_host.h"
#include "vdev.h"

/* A hub (never reported to clients, as with hub support on) at `port` of
 * `parent_hub` (0: the root port). Returns its id (> 0). */
int usb_host_sim_add_hub(int parent_hub, uint8_t port, usb_speed_t speed);

/* Plug dev (ownership passes to the simulator) at `port` of hub `parent_hub`
 * (0: the root port) with the given speed. Enumeration happens in the
 * client task; returns a device id (> 0) or -1. */
int usb_host_sim_plug(vdev_t *dev, int parent_hub, uint8_t port, usb_speed_t speed);

/* Unplug: in-flight transfers end with NO_DEVICE, then DEV_GONE. */
void usb_host_sim_unplug(int device_id);

/* Enumerate full/low-speed devices behind a high-speed hub (which v5.5
 * refuses), to reach the glue's own check. */
void usb_host_sim_enumerate_behind_tt(bool yes);

/* Host channels left (16 at start, minus EP0 per device, 2 per hub, one
 * per claimed endpoint), for running out on purpose. */
void usb_host_sim_set_free_channels(int channels);

typedef struct {
    int devices_present;   /* plugged and not yet freed */
    int devices_open;      /* opened by the client */
    int interfaces_claimed;
    int transfers_in_flight;
    int transfers_allocated;
    int submits_invalid;   /* submits breaking the library's rules (INVALID_ARG...) */
    int submits_to_halted_pipe; /* INVALID_STATE: pipe halted or device gone */
    int halts, flushes, clears;
    int channels_free;
    int power_cycles;
} usb_host_sim_stats_t;

void usb_host_sim_stats(usb_host_sim_stats_t *out);
