/*
 * fake_backend: a recording usbip_backend_ops_t for the session, server and
 * fuzz tests, plus byte helpers that build client PDUs, feed them into a
 * session (whole or in random chunks) and parse its replies back.
 *
 * The fake never completes a URB inside submit() or cancel(): the test (or
 * the fuzzer) completes each one explicitly with fake_complete(), which calls
 * urb->complete(urb) like a port delivering a backend completion.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "device_registry.h"
#include "event_log.h"
#include "usbip_backend.h"
#include "usbip_proto.h"
#include "usbip_session.h"

/* Endpoint layout of the fake device (fake_backend_init). */
#define FAKE_EP_BULK_IN   1 /* bulk IN, mps 512 */
#define FAKE_EP_BULK_OUT  2 /* bulk OUT, mps 512 */
#define FAKE_EP_INTR_IN   3 /* interrupt IN, mps 8, bInterval 4 */
#define FAKE_EP_ISO_IN    4 /* iso IN, mps 192 */
#define FAKE_EP_ISO_OUT   5 /* iso OUT, mps 192 */
#define FAKE_EP_MISSING   9 /* no such endpoint in either direction */

#define FAKE_COPY_MAX 4096u /* OUT payload bytes remembered per submission */

/* What the backend saw at submit() time (the URB itself is reused later). */
typedef struct {
    usbip_urb_t *urb;
    uint8_t ep_address;
    usbip_xfer_type_t type;
    bool dir_in;
    uint32_t flags;
    uint32_t length;
    uint8_t setup[8];
    usbip_control_kind_t control_kind;
    int32_t start_frame;
    int32_t interval;
    uint32_t num_iso_packets;
    usbip_iso_packet_t iso0; /* first iso descriptor as handed to the backend */
    uint8_t *out_data;       /* copy of up to FAKE_COPY_MAX OUT bytes */
    uint32_t out_copied;
    bool completed;
    bool cancelled;
} fake_submission_t;

typedef struct {
    usbip_device_t dev;

    /* behaviour, set by the test */
    usbip_err_t attach_result; /* OK by default */
    void (*attach_hook)(void *ctx); /* called inside attach(), may be NULL */
    void *attach_hook_ctx;
    usbip_err_t submit_result; /* returned by submit(); OK by default */
    usbip_err_t alloc_result;  /* returned by alloc_buffer(); OK by default */
    bool complete_in_cancel;   /* cancel() completes the URB at once (-ECONNRESET) */

    /* records */
    int attach_calls;
    int detach_calls;
    int alloc_calls;
    int free_calls;
    int submit_calls; /* including failed ones */
    int cancel_calls;
    int buffers_live;
    size_t pending;            /* submitted and not completed */
    size_t pending_at_detach;  /* pending when detach() ran */
    int control_kind_count[5]; /* per usbip_control_kind_t, successful submits */
    fake_submission_t *subs;   /* successful submits, in order */
    size_t nsubs;
    size_t subs_cap;
    usbip_urb_t **cancels; /* cancel() arguments, in order */
    size_t ncancels;
    size_t cancels_cap;
} fake_backend_t;

/* The default device: HIGH speed, 1234:5678, two interfaces, the endpoints
 * listed above. Not yet in any registry. */
void fake_backend_init(fake_backend_t *fb);
/* Frees the records (the URBs must all be completed). */
void fake_backend_free(fake_backend_t *fb);

/* Submission record of urb's latest submit, or NULL. */
fake_submission_t *fake_find_submission(fake_backend_t *fb, const usbip_urb_t *urb);
/* The n-th pending (submitted, not completed) URB in submission order. */
usbip_urb_t *fake_pending_urb(fake_backend_t *fb, size_t n);
/* Submission record of the n-th submit ever. */
fake_submission_t *fake_submission(fake_backend_t *fb, size_t n);

/* Complete a non-iso URB: set status and actual_length, copy data (may be
 * NULL) into the transfer buffer (at most buffer_size bytes), then call
 * urb->complete(urb). */
void fake_complete(fake_backend_t *fb, usbip_urb_t *urb, int32_t status,
                   uint32_t actual_length, const void *data);
/* Complete an iso URB: packet i gets actual[i] and status[i] (status may be
 * NULL for all 0); when IN, packet i's buffer bytes at iso[i].offset are
 * filled with (i + 1) so packing can be checked. actual_length is their sum. */
void fake_complete_iso(fake_backend_t *fb, usbip_urb_t *urb, int32_t status,
                       const uint32_t *actual, const int32_t *pkt_status);

/* ---- building client byte streams ---- */

typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
} fake_buf_t;

void fake_buf_free(fake_buf_t *b);
void fake_buf_reset(fake_buf_t *b);
void fake_buf_bytes(fake_buf_t *b, const void *p, size_t n);
void fake_buf_fill(fake_buf_t *b, uint8_t value, size_t n);
void fake_buf_op(fake_buf_t *b, uint16_t version, uint16_t code);
void fake_buf_import(fake_buf_t *b, uint16_t version, const char *busid);
/* CMD_SUBMIT header only; the caller appends OUT data and iso descriptors. */
void fake_buf_submit(fake_buf_t *b, uint32_t seqnum, uint32_t devid, uint32_t direction,
                     uint32_t ep, uint32_t flags, int32_t length, int32_t number_of_packets,
                     const uint8_t setup[8]);
void fake_buf_unlink(fake_buf_t *b, uint32_t seqnum, uint32_t devid, uint32_t victim);
/* Iso descriptors (host order in, big-endian out). */
void fake_buf_iso(fake_buf_t *b, const usbip_iso_packet_t *packets, size_t n);

/* ---- a session wired to a registry holding one fake device ---- */

#define FAKE_MAX_RETS 8192
#define FAKE_MAX_DIRS 8192

/* One reply parsed from the session's output. */
typedef struct {
    usbip_urb_header_t hdr;
    uint8_t raw[USBIP_URB_HEADER_SIZE];
    const uint8_t *data; /* into the harness output buffer */
    uint32_t data_len;
    const uint8_t *iso_raw; /* number_of_packets wire descriptors */
    uint32_t iso_count;
} fake_ret_t;

typedef struct {
    fake_backend_t fb;
    usbip_registry_t reg;
    usbip_registry_entry_t entries[4];
    usbip_registry_entry_t *entry; /* the fake device's */
    usbip_event_log_t events;
    usbip_event_t event_slots[64];
    usbip_session_env_t env;
    usbip_session_config_t cfg;
    usbip_session_t *s;
    bool deny;       /* peer_allowed answers false */
    int gone_calls;  /* registry device_gone hook */
    int freed_calls; /* registry device_freed hook */
    bool close_on_gone; /* the gone hook asks the owner session to close */

    /* everything the session wrote, in order */
    uint8_t *out;
    size_t out_len;
    size_t out_cap;
    size_t parsed; /* bytes of out already parsed as URB replies */

    /* direction of each CMD_SUBMIT seqnum, for parsing RET_SUBMIT */
    uint32_t dir_seq[FAKE_MAX_DIRS];
    uint8_t dir_in[FAKE_MAX_DIRS];
    size_t ndirs;

    uint32_t rng;
    usbip_err_t last_input_err;

    /* log capture (usbip_log_set_sink), WARN and above plus INFO */
    char log[8192];
    size_t log_len;
} fake_harness_t;

/* Registry with the fake device at bus 3, ports {1, 4} ("3-1.4", devnum 1,
 * devid 0x00030001) and a session with the given limits (NULL: defaults). */
void fake_harness_init(fake_harness_t *h, const usbip_session_limits_t *limits);
/* Close the session, complete whatever the backend still holds, destroy, and
 * free everything. Returns false if the session did not finish or a buffer
 * or URB leaked (callers CHECK it). */
bool fake_harness_done(fake_harness_t *h);

#define FAKE_BUSID "3-1.4"
#define FAKE_DEVID 0x00030001u

/* Remember that CMD_SUBMIT seqnum goes IN (true) or OUT. */
void fake_note_dir(fake_harness_t *h, uint32_t seqnum, bool dir_in);

/* Feed bytes: chunk 0 = as much as the session takes per call, otherwise
 * random pieces of 1..chunk bytes. Stops when the session offers no read
 * space. Returns how many bytes were consumed; h->last_input_err keeps the
 * last error from usbip_session_input. */
size_t fake_feed(fake_harness_t *h, const void *bytes, size_t len, size_t chunk);
size_t fake_feed_buf(fake_harness_t *h, const fake_buf_t *b, size_t chunk);
/* Collect output: max_write 0 = everything at once, otherwise writes of at
 * most max_write bytes (random 1..max_write) from an iovec list of random
 * length (1..8 entries), until nothing is pending or
 * limit bytes were taken (0 = no limit). Returns bytes collected. */
size_t fake_drain(fake_harness_t *h, size_t max_write, size_t limit);
/* Skip n bytes of collected output (an OP reply) before URB parsing. */
void fake_skip_output(fake_harness_t *h, size_t n);
/* Parse the collected, not yet parsed output as RET_SUBMIT/RET_UNLINK PDUs.
 * Returns how many were parsed; stops at an incomplete PDU. */
size_t fake_parse_rets(fake_harness_t *h, fake_ret_t *rets, size_t max);

/* Feed OP_REQ_IMPORT for FAKE_BUSID and collect the 0x140-byte reply. */
bool fake_import(fake_harness_t *h);

/* True if the captured log contains needle. */
bool fake_log_contains(const fake_harness_t *h, const char *needle);
void fake_log_clear(fake_harness_t *h);

uint32_t fake_rand(uint32_t *state);
