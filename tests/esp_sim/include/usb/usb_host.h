/*
 * esp_sim: the ESP-IDF v5.5 USB Host Library API as the firmware glue
 * (components/usb_host_mgr) uses it: the same names, types, field names and
 * values as components/usb/include/usb/usb_host.h, usb_types_stack.h and
 * usb_types_ch9.h of v5.5, restated here so that the glue compiles on the
 * host against tests/esp_sim/src/usb_host_sim.c. Only what the glue needs.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "esp_err.h"
#include "esp_intr_alloc.h"
#include "freertos/FreeRTOS.h"

#define USB_DEVICE_DESC_SIZE 18
#define USB_CONFIG_DESC_SIZE 9

/* Chapter 9 descriptors: packed structs overlaid with their raw bytes. */
typedef union {
    struct __attribute__((packed)) {
        uint8_t bLength;
        uint8_t bDescriptorType;
        uint16_t bcdUSB;
        uint8_t bDeviceClass;
        uint8_t bDeviceSubClass;
        uint8_t bDeviceProtocol;
        uint8_t bMaxPacketSize0;
        uint16_t idVendor;
        uint16_t idProduct;
        uint16_t bcdDevice;
        uint8_t iManufacturer;
        uint8_t iProduct;
        uint8_t iSerialNumber;
        uint8_t bNumConfigurations;
    };
    uint8_t val[USB_DEVICE_DESC_SIZE];
} usb_device_desc_t;

typedef union {
    struct __attribute__((packed)) {
        uint8_t bLength;
        uint8_t bDescriptorType;
        uint16_t wTotalLength;
        uint8_t bNumInterfaces;
        uint8_t bConfigurationValue;
        uint8_t iConfiguration;
        uint8_t bmAttributes;
        uint8_t bMaxPower;
    };
    uint8_t val[USB_CONFIG_DESC_SIZE];
} usb_config_desc_t;

typedef union {
    struct __attribute__((packed)) {
        uint8_t bLength;
        uint8_t bDescriptorType;
        uint16_t wData[];
    };
    uint8_t val[2];
} usb_str_desc_t;

typedef enum {
    USB_SPEED_LOW = 0,
    USB_SPEED_FULL,
    USB_SPEED_HIGH,
} usb_speed_t;

typedef struct usb_device_handle_s *usb_device_handle_t;

typedef struct {
    struct {
        usb_device_handle_t dev_hdl; /* NULL on the root port */
        uint8_t port_num;            /* 0 on the root port */
    } parent;
    usb_speed_t speed;
    uint8_t dev_addr;
    uint8_t bMaxPacketSize0;
    uint8_t bConfigurationValue;
    const usb_str_desc_t *str_desc_manufacturer;
    const usb_str_desc_t *str_desc_product;
    const usb_str_desc_t *str_desc_serial_num;
} usb_device_info_t;

typedef enum {
    USB_TRANSFER_STATUS_COMPLETED,
    USB_TRANSFER_STATUS_ERROR,
    USB_TRANSFER_STATUS_TIMED_OUT,
    USB_TRANSFER_STATUS_CANCELED,
    USB_TRANSFER_STATUS_STALL,
    USB_TRANSFER_STATUS_OVERFLOW,
    USB_TRANSFER_STATUS_SKIPPED,
    USB_TRANSFER_STATUS_NO_DEVICE,
} usb_transfer_status_t;

typedef struct {
    int num_bytes;
    int actual_num_bytes;
    usb_transfer_status_t status;
} usb_isoc_packet_desc_t;

typedef struct usb_transfer_s usb_transfer_t;
typedef void (*usb_transfer_cb_t)(usb_transfer_t *transfer);

struct usb_transfer_s {
    uint8_t *const data_buffer;
    const size_t data_buffer_size;
    int num_bytes;
    int actual_num_bytes;
    uint32_t flags;
    usb_device_handle_t device_handle;
    uint8_t bEndpointAddress;
    usb_transfer_status_t status;
    uint32_t timeout_ms;
    usb_transfer_cb_t callback;
    void *context;
    const int num_isoc_packets;
    usb_isoc_packet_desc_t isoc_packet_desc[];
};

#define USB_TRANSFER_FLAG_ZERO_PACK 0x01

typedef struct usb_host_client_handle_s *usb_host_client_handle_t;

#define USB_HOST_LIB_EVENT_FLAGS_NO_CLIENTS 0x01
#define USB_HOST_LIB_EVENT_FLAGS_ALL_FREE   0x02

typedef enum {
    USB_HOST_CLIENT_EVENT_NEW_DEV,
    USB_HOST_CLIENT_EVENT_DEV_GONE,
} usb_host_client_event_t;

typedef struct {
    usb_host_client_event_t event;
    union {
        struct {
            uint8_t address;
        } new_dev;
        struct {
            usb_device_handle_t dev_hdl;
        } dev_gone;
    };
} usb_host_client_event_msg_t;

typedef void (*usb_host_client_event_cb_t)(const usb_host_client_event_msg_t *msg, void *arg);
typedef bool (*usb_host_enum_filter_cb_t)(const usb_device_desc_t *dev_desc,
                                          uint8_t *bConfigurationValue);

typedef struct {
    bool skip_phy_setup;
    bool root_port_unpowered;
    int intr_flags;
    usb_host_enum_filter_cb_t enum_filter_cb;
    struct {
        uint32_t nptx_fifo_lines;
        uint32_t ptx_fifo_lines;
        uint32_t rx_fifo_lines;
    } fifo_settings_custom;
    unsigned peripheral_map; /* v5.5.1 and later */
} usb_host_config_t;

typedef struct {
    bool is_synchronous;
    int max_num_event_msg;
    union {
        struct {
            usb_host_client_event_cb_t client_event_callback;
            void *callback_arg;
        } async;
    };
} usb_host_client_config_t;

esp_err_t usb_host_install(const usb_host_config_t *config);
esp_err_t usb_host_lib_handle_events(TickType_t timeout_ticks, uint32_t *event_flags_ret);
esp_err_t usb_host_lib_set_root_port_power(bool enable);
esp_err_t usb_host_client_register(const usb_host_client_config_t *client_config,
                                   usb_host_client_handle_t *client_hdl_ret);
esp_err_t usb_host_client_deregister(usb_host_client_handle_t client_hdl);
esp_err_t usb_host_client_handle_events(usb_host_client_handle_t client_hdl,
                                        TickType_t timeout_ticks);
esp_err_t usb_host_client_unblock(usb_host_client_handle_t client_hdl);
esp_err_t usb_host_device_open(usb_host_client_handle_t client_hdl, uint8_t dev_addr,
                               usb_device_handle_t *dev_hdl_ret);
esp_err_t usb_host_device_close(usb_host_client_handle_t client_hdl,
                                usb_device_handle_t dev_hdl);
esp_err_t usb_host_device_addr_list_fill(int list_len, uint8_t *dev_addr_list,
                                         int *num_dev_ret);
esp_err_t usb_host_device_info(usb_device_handle_t dev_hdl, usb_device_info_t *dev_info);
esp_err_t usb_host_get_device_descriptor(usb_device_handle_t dev_hdl,
                                         const usb_device_desc_t **device_desc);
esp_err_t usb_host_get_active_config_descriptor(usb_device_handle_t dev_hdl,
                                                const usb_config_desc_t **config_desc);
esp_err_t usb_host_interface_claim(usb_host_client_handle_t client_hdl,
                                   usb_device_handle_t dev_hdl, uint8_t bInterfaceNumber,
                                   uint8_t bAlternateSetting);
esp_err_t usb_host_interface_release(usb_host_client_handle_t client_hdl,
                                     usb_device_handle_t dev_hdl, uint8_t bInterfaceNumber);
esp_err_t usb_host_endpoint_halt(usb_device_handle_t dev_hdl, uint8_t bEndpointAddress);
esp_err_t usb_host_endpoint_flush(usb_device_handle_t dev_hdl, uint8_t bEndpointAddress);
esp_err_t usb_host_endpoint_clear(usb_device_handle_t dev_hdl, uint8_t bEndpointAddress);
esp_err_t usb_host_transfer_alloc(size_t data_buffer_size, int num_isoc_packets,
                                  usb_transfer_t **transfer);
esp_err_t usb_host_transfer_free(usb_transfer_t *transfer);
esp_err_t usb_host_transfer_submit(usb_transfer_t *transfer);
esp_err_t usb_host_transfer_submit_control(usb_host_client_handle_t client_hdl,
                                           usb_transfer_t *transfer);
