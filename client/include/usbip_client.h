/*
 * usbip_client: a small blocking USB/IP client over TCP, for tests,
 * benchmarks and the usbip-client tool.
 *
 * It speaks both phases of the protocol: the OP phase (DEVLIST, IMPORT) and,
 * after a successful IMPORT, the URB phase (CMD_SUBMIT / CMD_UNLINK with their
 * RET_* replies), with several URBs in flight at once. It checks what the
 * server sends and, when the server breaks a rule, fails with
 * USBIP_ERR_PROTOCOL and a message naming the field. Raw send/receive calls
 * let protocol tests put arbitrary bytes on the wire.
 *
 * One client is one TCP connection. A client is not thread-safe: use it from
 * one thread at a time. Every blocking call is bounded by a timeout and fails
 * with USBIP_ERR_IO when it expires; usbip_client_last_error() then says what
 * was being waited for.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "usbip_err.h"
#include "usbip_proto.h"

#ifdef __cplusplus
extern "C" {
#endif

#define USBIP_CLIENT_DEFAULT_PORT       3240u
#define USBIP_CLIENT_DEFAULT_TIMEOUT_MS 10000
/* URBs (and, separately, CMD_UNLINKs) one client keeps in flight at most. */
#define USBIP_CLIENT_MAX_IN_FLIGHT 1024u

typedef struct usbip_client usbip_client_t;

/* ---- Connection ---- */

/* Connect to host (name or IPv4/IPv6 literal) within timeout_ms (< 0: no
 * limit), trying every address the name resolves to. Sets TCP_NODELAY.
 * On failure *out is NULL and usbip_client_last_error(NULL) says why. */
usbip_err_t usbip_client_connect(const char *host, uint16_t port, int timeout_ms,
                                 usbip_client_t **out);
/* Close the socket and free the client (NULL is fine). Buffers of URBs still
 * in flight are not touched afterwards. */
void usbip_client_close(usbip_client_t *c);
int usbip_client_fd(const usbip_client_t *c);

/* Limit for each blocking read or write of one PDU (or PDU part), in ms;
 * < 0 waits forever. Default USBIP_CLIENT_DEFAULT_TIMEOUT_MS. */
void usbip_client_set_timeout(usbip_client_t *c, int timeout_ms);

/* Human message of the last failure on c, naming what was wrong. With
 * c == NULL: the last usbip_client_connect() failure of the calling thread. */
const char *usbip_client_last_error(const usbip_client_t *c);
/* True if the last failure on c was a timeout. When usbip_client_wait() times
 * out before any byte of a reply arrived the client stays usable, so a test
 * can check that "no reply comes". */
bool usbip_client_timed_out(const usbip_client_t *c);

/* Version put into OP requests (default USBIP_VERSION_0111). Replies must
 * echo it. */
void usbip_client_set_op_version(usbip_client_t *c, uint16_t version);

/* ---- OP phase ---- */

/* OP_REQ_DEVLIST: cb is called once per exported device with its interface
 * records; *ndev_out (if non-NULL) gets the number of devices delivered.
 * The server closes the connection after the reply, so the client can no
 * longer IMPORT or submit afterwards (only raw calls, wait_closed, close). */
typedef void (*usbip_client_device_cb)(void *arg, const usbip_device_record_t *dev,
                                       const usbip_interface_record_t *intfs, size_t nintf);
usbip_err_t usbip_client_devlist(usbip_client_t *c, usbip_client_device_cb cb, void *arg,
                                 size_t *ndev_out);

/* OP_REQ_IMPORT of busid. On success *dev_out (if non-NULL) gets the device
 * record, whose busid must echo the request, and the connection enters the
 * URB phase with devid = busnum << 16 | devnum. *op_status (if non-NULL)
 * always gets the raw reply status. A refusal maps status 2 (DEV_BUSY) to
 * USBIP_ERR_BUSY, 4 (NODEV) to USBIP_ERR_NOT_FOUND, and 1, 3, 5 or any other
 * to USBIP_ERR_IO; the server then closes the connection. */
usbip_err_t usbip_client_import(usbip_client_t *c, const char *busid,
                                usbip_device_record_t *dev_out, uint32_t *op_status);

/* devid put into URB PDUs: the imported one, or one set for protocol tests. */
uint32_t usbip_client_devid(const usbip_client_t *c);
void usbip_client_set_devid(usbip_client_t *c, uint32_t devid);

/* ---- URB phase (after a successful import) ---- */

typedef struct {
    /* request, set by the caller */
    uint8_t ep;      /* 0..15 */
    bool dir_in;
    uint32_t flags;  /* transfer_flags */
    uint8_t setup[8]; /* control only, raw (USB little-endian) */
    void *buffer;    /* OUT: data to send; IN: where data lands. Caller-owned,
                        valid until the URB completes */
    uint32_t length; /* transfer_buffer_length, at most INT32_MAX */
    int32_t interval, start_frame;
    uint32_t num_iso_packets; /* > 0 only for iso endpoints, <= USBIP_MAX_ISO_PACKETS */
    usbip_iso_packet_t *iso;  /* caller-owned, num_iso_packets entries: offset and
                                 length in, actual_length and status out; keep it
                                 unchanged while the URB is in flight */
    /* results, written by the library */
    uint32_t seqnum;
    int32_t status;   /* negative Linux errno, 0 on success */
    uint32_t actual_length;
    int32_t error_count, start_frame_out;
    bool unlinked;    /* completed by RET_UNLINK(-ECONNRESET) instead of RET_SUBMIT */
    void *user;       /* free for the caller */
} usbip_client_urb_t;

/* Send CMD_SUBMIT (+ OUT data + iso descriptors) in one write and assign
 * urb->seqnum. The URB is in flight until usbip_client_wait() returns it.
 * USBIP_ERR_WOULD_BLOCK when USBIP_CLIENT_MAX_IN_FLIGHT URBs are in flight. */
usbip_err_t usbip_client_submit(usbip_client_t *c, usbip_client_urb_t *urb);

/* Send CMD_UNLINK for victim, which must be in flight (else
 * USBIP_ERR_NOT_FOUND). *unlink_seqnum_out (if non-NULL) gets the seqnum of
 * the CMD_UNLINK, which its RET_UNLINK carries. */
usbip_err_t usbip_client_unlink(usbip_client_t *c, usbip_client_urb_t *victim,
                                uint32_t *unlink_seqnum_out);
/* Same, naming the victim by seqnum only, in flight or not (for tests that
 * unlink something already completed or never submitted). */
usbip_err_t usbip_client_unlink_seqnum(usbip_client_t *c, uint32_t victim_seqnum,
                                       uint32_t *unlink_seqnum_out);

/* Read the next RET_SUBMIT or RET_UNLINK and match it by seqnum.
 *  - RET_SUBMIT: fills the URB's results (IN data into its buffer, iso
 *    packets spread back to their offsets) and sets *done to it.
 *  - RET_UNLINK: *unlink_seqnum / *unlink_status (if non-NULL) get its seqnum
 *    and status. With status -ECONNRESET the victim completes here: *done is
 *    the victim, with status -ECONNRESET and unlinked = true. With any other
 *    status *done is NULL (0: the victim had already completed by RET_SUBMIT).
 * For a RET_SUBMIT both unlink outputs are set to 0.
 * USBIP_ERR_PROTOCOL, naming the field, if the server breaks a rule: unknown
 * command, unknown seqnum, RET_SUBMIT after RET_UNLINK(-ECONNRESET), IN
 * actual_length > length, iso packet count or length mismatch. After any
 * failure except a timeout before the first byte, the stream position is lost
 * and only raw calls, wait_closed and close remain usable. */
usbip_err_t usbip_client_wait(usbip_client_t *c, usbip_client_urb_t **done,
                              int32_t *unlink_status, uint32_t *unlink_seqnum);

/* Number of URBs in flight and of CMD_UNLINKs awaiting their RET_UNLINK. */
size_t usbip_client_urbs_in_flight(const usbip_client_t *c);
size_t usbip_client_unlinks_in_flight(const usbip_client_t *c);

/* ---- Synchronous conveniences ----
 * They submit one URB and wait for it, so nothing else may be in flight
 * (USBIP_ERR_INVALID_STATE otherwise). They return USBIP_OK when the URB
 * completed, whatever its status: *status gets the URB status and *actual
 * the actual_length (both optional). If the wait fails, the client becomes
 * unusable for URBs (the reply could still arrive later). */
usbip_err_t usbip_client_control(usbip_client_t *c, uint8_t bmRequestType, uint8_t bRequest,
                                 uint16_t wValue, uint16_t wIndex, void *data, uint16_t wLength,
                                 int32_t *status, uint32_t *actual);
/* Bulk or interrupt transfer on ep. */
usbip_err_t usbip_client_transfer(usbip_client_t *c, uint8_t ep, bool dir_in, void *data,
                                  uint32_t length, int32_t *status, uint32_t *actual);

/* ---- Raw access for protocol tests ---- */

/* Send len bytes as they are. */
usbip_err_t usbip_client_send_raw(usbip_client_t *c, const void *buf, size_t len);
/* Receive exactly len bytes. EOF: USBIP_ERR_IO with last error
 * "connection closed by server". */
usbip_err_t usbip_client_recv_raw(usbip_client_t *c, void *buf, size_t len);
/* True if the server closed the connection (EOF or reset) within timeout_ms;
 * whatever arrives before is read and discarded. */
bool usbip_client_wait_closed(usbip_client_t *c, int timeout_ms);

#ifdef __cplusplus
}
#endif
