/*
 * usbip_proto: encode and decode every USB/IP PDU (OP_REQ/REP_DEVLIST,
 * OP_REQ/REP_IMPORT, CMD/RET_SUBMIT, CMD/RET_UNLINK, iso descriptors).
 *
 * Pure functions over caller-provided buffers: no allocation, no I/O, every
 * length checked. All multi-byte wire fields are big-endian except setup[8],
 * which is carried raw (USB little-endian). See docs/protocol.md.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "usbip_err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Versions a request may carry; a reply echoes the request's version. */
#define USBIP_VERSION_0100 0x0100u
#define USBIP_VERSION_0111 0x0111u

/* op_common codes */
#define USBIP_OP_REQ_DEVLIST 0x8005u
#define USBIP_OP_REP_DEVLIST 0x0005u
#define USBIP_OP_REQ_IMPORT  0x8003u
#define USBIP_OP_REP_IMPORT  0x0003u

/* op_common status values */
#define USBIP_ST_OK       0u
#define USBIP_ST_NA       1u /* export failed */
#define USBIP_ST_DEV_BUSY 2u /* already imported */
#define USBIP_ST_DEV_ERR  3u /* device in error state */
#define USBIP_ST_NODEV    4u /* unknown busid */
#define USBIP_ST_ERROR    5u

/* URB PDU commands */
#define USBIP_CMD_SUBMIT 1u
#define USBIP_CMD_UNLINK 2u
#define USBIP_RET_SUBMIT 3u
#define USBIP_RET_UNLINK 4u

#define USBIP_DIR_OUT 0u
#define USBIP_DIR_IN  1u

/* Sizes on the wire */
#define USBIP_OP_HEADER_SIZE        8u
#define USBIP_PATH_SIZE             256u
#define USBIP_BUSID_SIZE            32u
#define USBIP_DEVICE_RECORD_SIZE    312u
#define USBIP_INTERFACE_RECORD_SIZE 4u
#define USBIP_IMPORT_REQUEST_SIZE   (USBIP_OP_HEADER_SIZE + USBIP_BUSID_SIZE)
#define USBIP_IMPORT_REPLY_SIZE     (USBIP_OP_HEADER_SIZE + USBIP_DEVICE_RECORD_SIZE)
#define USBIP_DEVLIST_REPLY_HEADER_SIZE (USBIP_OP_HEADER_SIZE + 4u)
#define USBIP_URB_HEADER_SIZE       48u
#define USBIP_ISO_DESC_SIZE         16u

/* Largest iso packet count the Linux stub accepts (USBIP_MAX_ISO_PACKETS). */
#define USBIP_MAX_ISO_PACKETS 1024u
#define USBIP_MAX_ENDPOINTS   16u

/* transfer_flags bits (USBIP_URB_* ABI) */
#define USBIP_URB_SHORT_NOT_OK        0x0001u
#define USBIP_URB_ISO_ASAP            0x0002u
#define USBIP_URB_NO_TRANSFER_DMA_MAP 0x0004u
#define USBIP_URB_ZERO_PACKET         0x0040u
#define USBIP_URB_NO_INTERRUPT        0x0080u
#define USBIP_URB_FREE_BUFFER         0x0100u
#define USBIP_URB_DIR_IN              0x0200u

/* usbip_usb_device.speed */
typedef enum {
    USBIP_SPEED_UNKNOWN = 0,
    USBIP_SPEED_LOW = 1,
    USBIP_SPEED_FULL = 2,
    USBIP_SPEED_HIGH = 3,
    USBIP_SPEED_WIRELESS = 4,
    USBIP_SPEED_SUPER = 5,
    USBIP_SPEED_SUPER_PLUS = 6,
} usbip_speed_t;

/* Negative Linux (asm-generic) errno values used in URB status fields. */
#define USBIP_ENOENT     (-2)
#define USBIP_EXDEV      (-18)
#define USBIP_ENODEV     (-19)
#define USBIP_EINVAL     (-22)
#define USBIP_EPIPE      (-32)
#define USBIP_ETIME      (-62)
#define USBIP_ENOSR      (-63)
#define USBIP_ECOMM      (-70)
#define USBIP_EPROTO     (-71)
#define USBIP_EOVERFLOW  (-75)
#define USBIP_EILSEQ     (-84)
#define USBIP_ECONNRESET (-104)
#define USBIP_ESHUTDOWN  (-108)
#define USBIP_ETIMEDOUT  (-110)
#define USBIP_EREMOTEIO  (-121)

/* When a decoder refuses input it names the offending field and value. */
typedef struct {
    const char *field; /* e.g. "version", "ep", "transfer_buffer_length" */
    int64_t value;
} usbip_field_error_t;

typedef struct {
    uint16_t version;
    uint16_t code;
    uint32_t status;
} usbip_op_header_t;

typedef struct {
    char path[USBIP_PATH_SIZE];   /* NUL-terminated */
    char busid[USBIP_BUSID_SIZE]; /* NUL-terminated, e.g. "1-1.3" */
    uint32_t busnum;
    uint32_t devnum;
    uint32_t speed; /* usbip_speed_t */
    uint16_t idVendor;
    uint16_t idProduct;
    uint16_t bcdDevice;
    uint8_t bDeviceClass;
    uint8_t bDeviceSubClass;
    uint8_t bDeviceProtocol;
    uint8_t bConfigurationValue;
    uint8_t bNumConfigurations;
    uint8_t bNumInterfaces;
} usbip_device_record_t;

typedef struct {
    uint8_t bInterfaceClass;
    uint8_t bInterfaceSubClass;
    uint8_t bInterfaceProtocol;
} usbip_interface_record_t;

typedef struct {
    uint32_t transfer_flags;
    int32_t transfer_buffer_length;
    int32_t start_frame;
    int32_t number_of_packets;
    int32_t interval;
    uint8_t setup[8];
} usbip_cmd_submit_t;

/* A decoded 48-byte URB PDU header of any of the four commands. */
typedef struct {
    uint32_t command;
    uint32_t seqnum;
    uint32_t devid;
    uint32_t direction;
    uint32_t ep;
    union {
        usbip_cmd_submit_t submit;                                /* CMD_SUBMIT */
        struct { uint32_t victim_seqnum; } unlink;                /* CMD_UNLINK */
        struct {                                                  /* RET_SUBMIT */
            int32_t status, actual_length, start_frame, number_of_packets, error_count;
        } ret_submit;
        struct { int32_t status; } ret_unlink;                    /* RET_UNLINK */
    } u;
} usbip_urb_header_t;

/* One iso packet descriptor, host byte order. Same size as on the wire so an
 * array can be received raw and converted in place. */
typedef struct {
    uint32_t offset;
    uint32_t length;
    uint32_t actual_length;
    int32_t status;
} usbip_iso_packet_t;

/* True for the versions this server speaks (0x0100 and 0x0111). */
bool usbip_version_supported(uint16_t version);

/* ---- OP messages ---- */

/* Decode op_common. NEED_MORE if len < 8. Does not judge version or code. */
usbip_err_t usbip_op_header_decode(const uint8_t *buf, size_t len, usbip_op_header_t *out);
void usbip_op_header_encode(uint8_t out[USBIP_OP_HEADER_SIZE], const usbip_op_header_t *hdr);

/* Decode the 32-byte busid that follows an OP_REQ_IMPORT header.
 * INVALID_ARG (field "busid") if it is empty or has no NUL within 32 bytes. */
usbip_err_t usbip_import_busid_decode(const uint8_t buf[USBIP_BUSID_SIZE],
                                      char busid[USBIP_BUSID_SIZE], usbip_field_error_t *err);
void usbip_import_request_encode(uint8_t out[USBIP_IMPORT_REQUEST_SIZE], uint16_t version,
                                 const char *busid);

void usbip_device_record_encode(uint8_t out[USBIP_DEVICE_RECORD_SIZE],
                                const usbip_device_record_t *dev);
/* Decode a device record; path and busid are forced NUL-terminated. */
void usbip_device_record_decode(const uint8_t in[USBIP_DEVICE_RECORD_SIZE],
                                usbip_device_record_t *dev);
void usbip_interface_record_encode(uint8_t out[USBIP_INTERFACE_RECORD_SIZE],
                                   const usbip_interface_record_t *intf);
void usbip_interface_record_decode(const uint8_t in[USBIP_INTERFACE_RECORD_SIZE],
                                   usbip_interface_record_t *intf);

/* Size of a whole OP_REP_DEVLIST for devices with the given interface counts. */
size_t usbip_devlist_reply_size(const uint8_t *num_interfaces, size_t ndev);

/* ---- URB PDUs ---- */

/* Decode a 48-byte URB header. NEED_MORE if len < 48; PROTOCOL (field
 * "command") for an unknown command. Field values are not range-checked
 * here: see usbip_cmd_submit_check(). */
usbip_err_t usbip_urb_header_decode(const uint8_t *buf, size_t len, usbip_urb_header_t *out,
                                    usbip_field_error_t *err);
/* Encode any of the four commands from hdr (fields of other commands ignored;
 * RETs carry devid, direction and ep as given, which servers set to 0). */
void usbip_urb_header_encode(uint8_t out[USBIP_URB_HEADER_SIZE], const usbip_urb_header_t *hdr);

/* Limits a server applies to CMD_SUBMIT before accepting it. */
typedef struct {
    uint32_t max_transfer_length; /* bytes */
    uint32_t max_iso_packets;     /* <= USBIP_MAX_ISO_PACKETS */
} usbip_submit_limits_t;

/* Range checks on a CMD_SUBMIT that do not depend on the device: direction
 * 0/1, ep 0..15, 0 <= transfer_buffer_length <= limit, and for an iso
 * endpoint (is_iso) 0 <= number_of_packets <= limit. On non-iso endpoints
 * number_of_packets is junk and is ignored. */
usbip_err_t usbip_cmd_submit_check(const usbip_urb_header_t *hdr, bool is_iso,
                                   const usbip_submit_limits_t *limits,
                                   usbip_field_error_t *err);

/* Convert n descriptors received raw from the wire to host order, or back. */
void usbip_iso_packets_from_wire(usbip_iso_packet_t *packets, size_t n);
void usbip_iso_packets_to_wire(usbip_iso_packet_t *packets, size_t n);

/* Check iso request descriptors against the transfer buffer: every packet
 * lies inside it (offset + length <= buffer_length). */
usbip_err_t usbip_iso_packets_check(const usbip_iso_packet_t *packets, size_t n,
                                    uint32_t buffer_length, usbip_field_error_t *err);

/* Keep only the transfer_flags bits that mean something for this URB, as the
 * Linux stub does; unknown bits are dropped, never rejected. */
uint32_t usbip_transfer_flags_mask(uint32_t flags, bool dir_in, bool is_bulk, bool is_iso);

#ifdef __cplusplus
}
#endif
