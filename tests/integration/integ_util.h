/*
 * integ_util: client-side helpers shared by the integration tests: device
 * lists, transfers that record failures, Gadget Zero patterns, a serial echo
 * round trip used as "the other session still works", raw URB headers
 * (encoded here, independently of the code under test) and EOF checks.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon_harness.h"

/* Default devices and their bus ids. */
#define BUSID_KEYBOARD "1-1"
#define BUSID_SERIAL   "1-2"
#define BUSID_STORAGE  "1-3"
#define BUSID_ZERO     "1-4"

#define IT_MAX_INTF 8

typedef struct {
    usbip_device_record_t rec;
    usbip_interface_record_t intf[IT_MAX_INTF];
    size_t nintf;
} it_dev_t;

/* DEVLIST on a new connection: up to max devices into out. -1 on failure
 * (recorded). */
int it_devlist(daemon_t *d, it_dev_t *out, size_t max);
const it_dev_t *it_find_dev(const it_dev_t *devs, int n, const char *busid);
/* Poll DEVLIST until busid is (or is not) listed; false on timeout. */
bool it_wait_listed(daemon_t *d, const char *busid, bool listed, int timeout_ms);

/* Gadget Zero source/sink pattern: byte i = (i % max_packet) % 63. */
void it_fill_pattern(uint8_t *p, size_t len, unsigned max_packet);
/* Offset of the first byte off the pattern, -1 if none. */
long it_pattern_mismatch(const uint8_t *p, size_t len, unsigned max_packet);
void it_fill_random(uint8_t *p, size_t len, uint32_t seed);

/* Synchronous transfers: return the URB status, or IT_XFER_FAILED (after
 * recording a failure) when the client library itself failed. */
#define IT_XFER_FAILED INT32_MIN
int32_t it_control(usbip_client_t *c, uint8_t bmRequestType, uint8_t bRequest, uint16_t wValue,
                   uint16_t wIndex, void *data, uint16_t wLength, uint32_t *actual);
int32_t it_transfer(usbip_client_t *c, uint8_t ep, bool dir_in, void *data, uint32_t length,
                    uint32_t *actual);

/* Submit; records a failure and returns false if the library refuses. */
bool it_submit(usbip_client_t *c, usbip_client_urb_t *urb);
/* Next completion (RET_SUBMIT or RET_UNLINK); NULL plus a recorded failure
 * when the library fails. *done_unlink_status/seqnum as usbip_client_wait. */
bool it_wait(usbip_client_t *c, usbip_client_urb_t **done, int32_t *unlink_status,
             uint32_t *unlink_seqnum);
/* True if no PDU arrives within ms (the client stays usable). */
bool it_no_reply_within(usbip_client_t *c, int ms);

/* Serial echo: len random bytes OUT on ep 1, read back on ep 1 IN. */
bool it_serial_echo_ok(usbip_client_t *serial, size_t len, uint32_t seed);
/* Gadget Zero (config 1): bulk IN of len bytes carries the pattern. */
bool it_zero_in_ok(usbip_client_t *zero, uint32_t len);

/* Big-endian helpers and a raw 48-byte URB header. */
void it_put_be32(uint8_t *p, uint32_t v);
void it_put_be16(uint8_t *p, uint16_t v);
uint32_t it_be32(const uint8_t *p);
uint16_t it_be16(const uint8_t *p);
uint16_t it_le16(const uint8_t *p);
void it_urb_header(uint8_t out[48], uint32_t command, uint32_t seqnum, uint32_t devid,
                   uint32_t direction, uint32_t ep, uint32_t word5, int32_t length,
                   int32_t start_frame, int32_t number_of_packets, int32_t interval,
                   const uint8_t setup[8]);

/* Read and count whatever arrives until EOF. True if the server closed the
 * connection within timeout_ms; *bytes (optional) gets the byte count. */
bool it_expect_closed(usbip_client_t *c, int timeout_ms, size_t *bytes);
