#include "usbip_proto.h"

#include <string.h>

/* ---- byte order helpers: the wire is big-endian ---- */

static uint16_t get_be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

static uint32_t get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void field_error(usbip_field_error_t *err, const char *field, int64_t value)
{
    if (err) {
        err->field = field;
        err->value = value;
    }
}

/* Copy a NUL-terminated string into a zero-filled fixed-size wire field. */
static void put_fixed_string(uint8_t *dst, size_t size, const char *src)
{
    memset(dst, 0, size);
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
}

static void get_fixed_string(char *dst, size_t size, const uint8_t *src)
{
    memcpy(dst, src, size);
    dst[size - 1] = '\0';
}

bool usbip_version_supported(uint16_t version)
{
    return version == USBIP_VERSION_0111 || version == USBIP_VERSION_0100;
}

/* ---- OP messages ---- */

usbip_err_t usbip_op_header_decode(const uint8_t *buf, size_t len, usbip_op_header_t *out)
{
    if (len < USBIP_OP_HEADER_SIZE) {
        return USBIP_ERR_NEED_MORE;
    }
    out->version = get_be16(buf);
    out->code = get_be16(buf + 2);
    out->status = get_be32(buf + 4);
    return USBIP_OK;
}

void usbip_op_header_encode(uint8_t out[USBIP_OP_HEADER_SIZE], const usbip_op_header_t *hdr)
{
    put_be16(out, hdr->version);
    put_be16(out + 2, hdr->code);
    put_be32(out + 4, hdr->status);
}

usbip_err_t usbip_import_busid_decode(const uint8_t buf[USBIP_BUSID_SIZE],
                                      char busid[USBIP_BUSID_SIZE], usbip_field_error_t *err)
{
    size_t n = strnlen((const char *)buf, USBIP_BUSID_SIZE);
    if (n == 0 || n == USBIP_BUSID_SIZE) {
        field_error(err, "busid", (int64_t)n);
        return USBIP_ERR_INVALID_ARG;
    }
    memcpy(busid, buf, n);
    memset(busid + n, 0, USBIP_BUSID_SIZE - n);
    return USBIP_OK;
}

void usbip_import_request_encode(uint8_t out[USBIP_IMPORT_REQUEST_SIZE], uint16_t version,
                                 const char *busid)
{
    const usbip_op_header_t hdr = {.version = version, .code = USBIP_OP_REQ_IMPORT};
    usbip_op_header_encode(out, &hdr);
    put_fixed_string(out + USBIP_OP_HEADER_SIZE, USBIP_BUSID_SIZE, busid);
}

void usbip_device_record_encode(uint8_t out[USBIP_DEVICE_RECORD_SIZE],
                                const usbip_device_record_t *dev)
{
    put_fixed_string(out, USBIP_PATH_SIZE, dev->path);
    put_fixed_string(out + 0x100, USBIP_BUSID_SIZE, dev->busid);
    put_be32(out + 0x120, dev->busnum);
    put_be32(out + 0x124, dev->devnum);
    put_be32(out + 0x128, dev->speed);
    put_be16(out + 0x12c, dev->idVendor);
    put_be16(out + 0x12e, dev->idProduct);
    put_be16(out + 0x130, dev->bcdDevice);
    out[0x132] = dev->bDeviceClass;
    out[0x133] = dev->bDeviceSubClass;
    out[0x134] = dev->bDeviceProtocol;
    out[0x135] = dev->bConfigurationValue;
    out[0x136] = dev->bNumConfigurations;
    out[0x137] = dev->bNumInterfaces;
}

void usbip_device_record_decode(const uint8_t in[USBIP_DEVICE_RECORD_SIZE],
                                usbip_device_record_t *dev)
{
    get_fixed_string(dev->path, USBIP_PATH_SIZE, in);
    get_fixed_string(dev->busid, USBIP_BUSID_SIZE, in + 0x100);
    dev->busnum = get_be32(in + 0x120);
    dev->devnum = get_be32(in + 0x124);
    dev->speed = get_be32(in + 0x128);
    dev->idVendor = get_be16(in + 0x12c);
    dev->idProduct = get_be16(in + 0x12e);
    dev->bcdDevice = get_be16(in + 0x130);
    dev->bDeviceClass = in[0x132];
    dev->bDeviceSubClass = in[0x133];
    dev->bDeviceProtocol = in[0x134];
    dev->bConfigurationValue = in[0x135];
    dev->bNumConfigurations = in[0x136];
    dev->bNumInterfaces = in[0x137];
}

void usbip_interface_record_encode(uint8_t out[USBIP_INTERFACE_RECORD_SIZE],
                                   const usbip_interface_record_t *intf)
{
    out[0] = intf->bInterfaceClass;
    out[1] = intf->bInterfaceSubClass;
    out[2] = intf->bInterfaceProtocol;
    out[3] = 0; /* padding */
}

void usbip_interface_record_decode(const uint8_t in[USBIP_INTERFACE_RECORD_SIZE],
                                   usbip_interface_record_t *intf)
{
    intf->bInterfaceClass = in[0];
    intf->bInterfaceSubClass = in[1];
    intf->bInterfaceProtocol = in[2];
}

size_t usbip_devlist_reply_size(const uint8_t *num_interfaces, size_t ndev)
{
    size_t size = USBIP_DEVLIST_REPLY_HEADER_SIZE;
    for (size_t i = 0; i < ndev; i++) {
        size += USBIP_DEVICE_RECORD_SIZE + (size_t)num_interfaces[i] * USBIP_INTERFACE_RECORD_SIZE;
    }
    return size;
}

/* ---- URB PDUs ---- */

usbip_err_t usbip_urb_header_decode(const uint8_t *buf, size_t len, usbip_urb_header_t *out,
                                    usbip_field_error_t *err)
{
    if (len < USBIP_URB_HEADER_SIZE) {
        return USBIP_ERR_NEED_MORE;
    }
    memset(out, 0, sizeof *out);
    out->command = get_be32(buf);
    out->seqnum = get_be32(buf + 0x04);
    out->devid = get_be32(buf + 0x08);
    out->direction = get_be32(buf + 0x0c);
    out->ep = get_be32(buf + 0x10);
    switch (out->command) {
    case USBIP_CMD_SUBMIT:
        out->u.submit.transfer_flags = get_be32(buf + 0x14);
        out->u.submit.transfer_buffer_length = (int32_t)get_be32(buf + 0x18);
        out->u.submit.start_frame = (int32_t)get_be32(buf + 0x1c);
        out->u.submit.number_of_packets = (int32_t)get_be32(buf + 0x20);
        out->u.submit.interval = (int32_t)get_be32(buf + 0x24);
        memcpy(out->u.submit.setup, buf + 0x28, 8);
        return USBIP_OK;
    case USBIP_CMD_UNLINK:
        out->u.unlink.victim_seqnum = get_be32(buf + 0x14);
        return USBIP_OK;
    case USBIP_RET_SUBMIT:
        out->u.ret_submit.status = (int32_t)get_be32(buf + 0x14);
        out->u.ret_submit.actual_length = (int32_t)get_be32(buf + 0x18);
        out->u.ret_submit.start_frame = (int32_t)get_be32(buf + 0x1c);
        out->u.ret_submit.number_of_packets = (int32_t)get_be32(buf + 0x20);
        out->u.ret_submit.error_count = (int32_t)get_be32(buf + 0x24);
        return USBIP_OK;
    case USBIP_RET_UNLINK:
        out->u.ret_unlink.status = (int32_t)get_be32(buf + 0x14);
        return USBIP_OK;
    default:
        field_error(err, "command", out->command);
        return USBIP_ERR_PROTOCOL;
    }
}

void usbip_urb_header_encode(uint8_t out[USBIP_URB_HEADER_SIZE], const usbip_urb_header_t *hdr)
{
    memset(out, 0, USBIP_URB_HEADER_SIZE);
    put_be32(out, hdr->command);
    put_be32(out + 0x04, hdr->seqnum);
    put_be32(out + 0x08, hdr->devid);
    put_be32(out + 0x0c, hdr->direction);
    put_be32(out + 0x10, hdr->ep);
    switch (hdr->command) {
    case USBIP_CMD_SUBMIT:
        put_be32(out + 0x14, hdr->u.submit.transfer_flags);
        put_be32(out + 0x18, (uint32_t)hdr->u.submit.transfer_buffer_length);
        put_be32(out + 0x1c, (uint32_t)hdr->u.submit.start_frame);
        put_be32(out + 0x20, (uint32_t)hdr->u.submit.number_of_packets);
        put_be32(out + 0x24, (uint32_t)hdr->u.submit.interval);
        memcpy(out + 0x28, hdr->u.submit.setup, 8);
        break;
    case USBIP_CMD_UNLINK:
        put_be32(out + 0x14, hdr->u.unlink.victim_seqnum);
        break;
    case USBIP_RET_SUBMIT:
        put_be32(out + 0x14, (uint32_t)hdr->u.ret_submit.status);
        put_be32(out + 0x18, (uint32_t)hdr->u.ret_submit.actual_length);
        put_be32(out + 0x1c, (uint32_t)hdr->u.ret_submit.start_frame);
        put_be32(out + 0x20, (uint32_t)hdr->u.ret_submit.number_of_packets);
        put_be32(out + 0x24, (uint32_t)hdr->u.ret_submit.error_count);
        break;
    case USBIP_RET_UNLINK:
        put_be32(out + 0x14, (uint32_t)hdr->u.ret_unlink.status);
        break;
    default:
        break;
    }
}

usbip_err_t usbip_cmd_submit_check(const usbip_urb_header_t *hdr, bool is_iso,
                                   const usbip_submit_limits_t *limits,
                                   usbip_field_error_t *err)
{
    const usbip_cmd_submit_t *s = &hdr->u.submit;
    if (hdr->direction != USBIP_DIR_OUT && hdr->direction != USBIP_DIR_IN) {
        field_error(err, "direction", hdr->direction);
        return USBIP_ERR_PROTOCOL;
    }
    if (hdr->ep >= USBIP_MAX_ENDPOINTS) {
        field_error(err, "ep", hdr->ep);
        return USBIP_ERR_PROTOCOL;
    }
    if (s->transfer_buffer_length < 0 ||
        (uint32_t)s->transfer_buffer_length > limits->max_transfer_length) {
        field_error(err, "transfer_buffer_length", s->transfer_buffer_length);
        return USBIP_ERR_INVALID_SIZE;
    }
    if (is_iso && (s->number_of_packets < 0 ||
                   (uint32_t)s->number_of_packets > limits->max_iso_packets)) {
        field_error(err, "number_of_packets", s->number_of_packets);
        return USBIP_ERR_INVALID_SIZE;
    }
    return USBIP_OK;
}

void usbip_iso_packets_from_wire(usbip_iso_packet_t *packets, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *raw = (const uint8_t *)&packets[i];
        usbip_iso_packet_t host = {
            .offset = get_be32(raw),
            .length = get_be32(raw + 4),
            .actual_length = get_be32(raw + 8),
            .status = (int32_t)get_be32(raw + 12),
        };
        packets[i] = host;
    }
}

void usbip_iso_packets_to_wire(usbip_iso_packet_t *packets, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        usbip_iso_packet_t host = packets[i];
        uint8_t *raw = (uint8_t *)&packets[i];
        put_be32(raw, host.offset);
        put_be32(raw + 4, host.length);
        put_be32(raw + 8, host.actual_length);
        put_be32(raw + 12, (uint32_t)host.status);
    }
}

usbip_err_t usbip_iso_packets_check(const usbip_iso_packet_t *packets, size_t n,
                                    uint32_t buffer_length, usbip_field_error_t *err)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t end = (uint64_t)packets[i].offset + packets[i].length;
        if (end > buffer_length) {
            field_error(err, "iso_packet.offset+length", (int64_t)end);
            return USBIP_ERR_INVALID_SIZE;
        }
    }
    return USBIP_OK;
}

uint32_t usbip_transfer_flags_mask(uint32_t flags, bool dir_in, bool is_bulk, bool is_iso)
{
    /* Same policy as the Linux stub's masking_bogus_flags(). */
    uint32_t allowed = USBIP_URB_NO_TRANSFER_DMA_MAP | USBIP_URB_NO_INTERRUPT |
                       USBIP_URB_DIR_IN | USBIP_URB_FREE_BUFFER;
    if (is_bulk && !dir_in) {
        allowed |= USBIP_URB_ZERO_PACKET;
    }
    if (!is_iso && dir_in) {
        allowed |= USBIP_URB_SHORT_NOT_OK;
    }
    if (is_iso) {
        allowed |= USBIP_URB_ISO_ASAP;
    }
    return flags & allowed;
}
