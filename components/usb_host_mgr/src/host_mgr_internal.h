/*
 * Shared state of usb_host_mgr's two halves: usb_client_task.c (the USB
 * client task: library events, devices, the transfer engine) and
 * usb_backend.c (the server task: the core's backend ops, the transfer
 * pool, delivery of events). See usb_host_mgr.h for the threading rules.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "device_registry.h"
#include "freertos/FreeRTOS.h"
#include "freertos/queue.h"
#include "freertos/semphr.h"
#include "te_engine.h"
#include "te_pool.h"
#include "usb/usb_host.h"
#include "usb_desc.h"
#include "usb_host_mgr.h"

/* Client events the library may queue for us between two turns (it drops
 * events for a full queue: a lost DEV_GONE would leave a zombie device). */
#define HM_CLIENT_EVENTS 64

/* Two transfer shapes at most per iso URB (te_plan: full chunks + tail). */
#define HM_ISO_SHAPES 2

typedef struct hm_device hm_device_t;

/* One entry of the transfer pool: held by a URB from alloc_buffer() to
 * free_buffer(). */
typedef struct {
    te_urb_t te;                  /* engine state (client task) */
    usb_transfer_t *transfer;     /* bulk/interrupt/control, and the iso URB buffer */
    usb_transfer_t *iso[HM_ISO_SHAPES]; /* iso transfers, kept for reuse */
    usb_transfer_t *in_flight;    /* the one the library has, or NULL */
    usbip_urb_t *urb;
    hm_device_t *dev;
    uint8_t *side_buffer;         /* a URB larger than the transfer (chunked through it) */
    uint32_t generation;          /* bumped at each alloc: a late unlink is ignored */
} hm_slot_t;

struct hm_device {
    usbip_device_t usbip;         /* first: the core's view (server task after arrival) */
    te_device_t te;               /* client task */
    usb_desc_config_t cfg;        /* active configuration, read-only after arrival */
    usb_device_handle_t handle;
    uint8_t address;
    uint8_t mps0;
    uint8_t ports[USBIP_MAX_PORT_DEPTH];
    size_t depth;
    char name[USBIP_BUSID_SIZE];  /* bus id, for log lines */
    size_t index;                 /* table slot and pool account */
    /* client task */
    bool gone;                    /* DEV_GONE received */
    bool detach_pending;          /* session ended: release interfaces when idle */
    bool release_requested;       /* the core let go: close and free when idle */
    /* server task */
    bool registered;              /* in the core's registry */
    bool awaiting_registry;       /* refused for now (bus id still held): retried */
};

typedef enum {
    HM_CMD_ATTACH,   /* claim the interfaces; answered through sync_done */
    HM_CMD_DETACH,   /* session over: release the interfaces once idle */
    HM_CMD_SUBMIT,
    HM_CMD_CANCEL,
    HM_CMD_RELEASE,  /* the core no longer references the device */
    HM_CMD_POWER_CYCLE, /* root port off and on again */
} hm_cmd_kind_t;

typedef struct {
    hm_cmd_kind_t kind;
    hm_device_t *dev;
    hm_slot_t *slot;
    uint32_t generation;
} hm_cmd_t;

typedef enum {
    HM_EVT_ARRIVED,
    HM_EVT_GONE,
    HM_EVT_FREED,    /* closed by the client task: the server frees the memory */
    HM_EVT_REFUSED,  /* not exportable: text says why, for the event log */
    HM_EVT_URB_DONE,
} hm_evt_kind_t;

#define HM_EVT_TEXT_SIZE 160

typedef struct {
    hm_evt_kind_t kind;
    hm_device_t *dev;
    hm_slot_t *slot;
    char text[HM_EVT_TEXT_SIZE];
} hm_evt_t;

typedef struct {
    usb_host_mgr_config_t cfg;
    usb_host_client_handle_t client;
    QueueHandle_t commands;       /* server -> client task */
    QueueHandle_t events;         /* client task -> server */
    SemaphoreHandle_t sync_done;  /* ATTACH answered */
    te_result_t sync_result;

    /* transfer pool */
    hm_slot_t *slots;
    size_t num_slots;
    hm_slot_t **free_slots;       /* server task */
    size_t num_free;
    te_pool_t pool;               /* server task */
    te_pool_account_t *accounts;

    /* server task: devices the registry refused for now, retried */
    hm_device_t **awaiting;       /* [max_devices] */
    bool retry_awaiting;

    /* client task */
    hm_device_t **devices;        /* [max_devices] */
    hm_slot_t **returned;         /* transfers back from the library, in order */
    size_t num_returned;
    uint8_t new_addresses[HM_CLIENT_EVENTS];
    size_t num_new;
    usb_device_handle_t gone_handles[HM_CLIENT_EVENTS];
    size_t num_gone;
    uint8_t deferred_addresses[HM_CLIENT_EVENTS]; /* arrived while the table was full */
    size_t num_deferred;
} hm_state_t;

extern hm_state_t g_hm;

extern const usbip_backend_ops_t hm_backend_ops; /* usb_backend.c */
extern const te_host_ops_t hm_engine_ops;        /* usb_client_task.c */

/* usb_backend.c */
esp_err_t hm_pool_create(void);

/* usb_client_task.c */
esp_err_t hm_client_task_start(void);
/* Queue a command and wake the client task. False if the queue is full. */
bool hm_send_command(const hm_cmd_t *cmd);
/* Queue an event for the server task and ring its waker. */
void hm_send_event(const hm_evt_t *evt);
