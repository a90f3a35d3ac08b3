/*
 * fuzz_proto: every decoder of usbip_proto (and the small helpers next to
 * it) on arbitrary bytes, with encode -> decode round trips and independent
 * reference computations that abort() on any mismatch.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device_registry.h"
#include "usbip_backend.h"
#include "usbip_proto.h"

#define FAIL(...)                                                        \
    do {                                                                 \
        fprintf(stderr, "fuzz_proto: " __VA_ARGS__);                     \
        fprintf(stderr, " (%s:%d)\n", __FILE__, __LINE__);               \
        abort();                                                         \
    } while (0)

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void check_op_header(const uint8_t *d, size_t n)
{
    usbip_op_header_t hdr;
    usbip_err_t err = usbip_op_header_decode(d, n, &hdr);
    if (n < 8) {
        if (err != USBIP_ERR_NEED_MORE) {
            FAIL("op header: %zu bytes decoded", n);
        }
        return;
    }
    if (err != USBIP_OK) {
        FAIL("op header refused");
    }
    uint8_t out[8];
    usbip_op_header_encode(out, &hdr);
    if (memcmp(out, d, 8) != 0) {
        FAIL("op header round trip");
    }
    if (usbip_version_supported(hdr.version) != (hdr.version == 0x0111 || hdr.version == 0x0100)) {
        FAIL("version_supported(0x%04x)", hdr.version);
    }
}

static void check_busid(const uint8_t *d, size_t n)
{
    if (n < 32) {
        return;
    }
    char busid[32];
    usbip_field_error_t ferr = {0};
    usbip_err_t err = usbip_import_busid_decode(d, busid, &ferr);
    size_t len = strnlen((const char *)d, 32);
    if (len == 0 || len == 32) {
        if (err != USBIP_ERR_INVALID_ARG || !ferr.field || strcmp(ferr.field, "busid") != 0) {
            FAIL("busid of length %zu accepted", len);
        }
        return;
    }
    if (err != USBIP_OK || strlen(busid) != len || memcmp(busid, d, len) != 0) {
        FAIL("busid decode");
    }
    for (size_t i = len; i < 32; i++) {
        if (busid[i] != 0) {
            FAIL("busid not zero-filled");
        }
    }
    uint8_t req[40];
    usbip_import_request_encode(req, 0x0111, busid);
    char again[32];
    if (usbip_import_busid_decode(req + 8, again, NULL) != USBIP_OK ||
        memcmp(again, busid, 32) != 0) {
        FAIL("import request round trip");
    }
}

static void check_device_record(const uint8_t *d, size_t n)
{
    if (n < USBIP_DEVICE_RECORD_SIZE) {
        return;
    }
    usbip_device_record_t dev, dev2;
    usbip_device_record_decode(d, &dev);
    if (strlen(dev.path) > 255 || strlen(dev.busid) > 31) {
        FAIL("record strings not terminated");
    }
    uint8_t out[USBIP_DEVICE_RECORD_SIZE];
    usbip_device_record_encode(out, &dev);
    /* numeric fields byte for byte */
    if (memcmp(out + 0x120, d + 0x120, 0x18) != 0) {
        FAIL("record numeric round trip");
    }
    if (be32(out + 0x120) != dev.busnum || out[0x137] != dev.bNumInterfaces) {
        FAIL("record offsets");
    }
    /* strings up to their NUL, zero after */
    size_t plen = strlen(dev.path), blen = strlen(dev.busid);
    if (memcmp(out, d, plen) != 0 || memcmp(out + 0x100, d + 0x100, blen) != 0) {
        FAIL("record strings");
    }
    for (size_t i = plen; i < 256; i++) {
        if (out[i]) {
            FAIL("path not zero-filled");
        }
    }
    usbip_device_record_decode(out, &dev2);
    if (strcmp(dev.path, dev2.path) != 0 || strcmp(dev.busid, dev2.busid) != 0 ||
        dev.busnum != dev2.busnum || dev.devnum != dev2.devnum || dev.speed != dev2.speed ||
        dev.idVendor != dev2.idVendor || dev.idProduct != dev2.idProduct ||
        dev.bcdDevice != dev2.bcdDevice || dev.bNumInterfaces != dev2.bNumInterfaces) {
        FAIL("record decode(encode(x))");
    }
    usbip_interface_record_t intf;
    usbip_interface_record_decode(d, &intf);
    uint8_t iout[4];
    usbip_interface_record_encode(iout, &intf);
    if (memcmp(iout, d, 3) != 0 || iout[3] != 0) {
        FAIL("interface round trip");
    }
}

static void check_urb_header(const uint8_t *d, size_t n)
{
    usbip_urb_header_t hdr, hdr2;
    usbip_field_error_t ferr = {0};
    usbip_err_t err = usbip_urb_header_decode(d, n, &hdr, &ferr);
    if (n < 48) {
        if (err != USBIP_ERR_NEED_MORE) {
            FAIL("urb header: %zu bytes decoded", n);
        }
        return;
    }
    const uint32_t command = be32(d);
    if (command < 1 || command > 4) {
        if (err != USBIP_ERR_PROTOCOL || !ferr.field || strcmp(ferr.field, "command") != 0 ||
            ferr.value != (int64_t)command) {
            FAIL("command %u accepted", command);
        }
        return;
    }
    if (err != USBIP_OK || hdr.command != command || hdr.seqnum != be32(d + 4) ||
        hdr.devid != be32(d + 8) || hdr.direction != be32(d + 12) || hdr.ep != be32(d + 16)) {
        FAIL("urb header fields");
    }
    uint8_t out[48];
    usbip_urb_header_encode(out, &hdr);
    /* the bytes a command carries survive; the rest is encoded as zero */
    const size_t carried = command == USBIP_CMD_SUBMIT ? 48 : command == USBIP_RET_SUBMIT ? 0x28 : 0x18;
    if (memcmp(out, d, carried) != 0) {
        FAIL("urb header round trip (command %u)", command);
    }
    for (size_t i = carried; i < 48; i++) {
        if (out[i]) {
            FAIL("urb header padding (command %u)", command);
        }
    }
    if (usbip_urb_header_decode(out, 48, &hdr2, NULL) != USBIP_OK ||
        memcmp(&hdr.u, &hdr2.u, sizeof hdr.u) != 0) {
        FAIL("urb header decode(encode(x))");
    }

    if (command == USBIP_CMD_SUBMIT) {
        const usbip_submit_limits_t lim = {
            .max_transfer_length = (d[0x2c] << 8 | d[0x2d]) * 16u,
            .max_iso_packets = (d[0x2e] & 0x7) ? 1024 : (d[0x2f] & 0x3f),
        };
        const bool iso = d[0x2b] & 1;
        err = usbip_cmd_submit_check(&hdr, iso, &lim, &ferr);
        const int32_t len = hdr.u.submit.transfer_buffer_length;
        const int32_t npk = hdr.u.submit.number_of_packets;
        const bool ok = hdr.direction <= 1 && hdr.ep <= 15 && len >= 0 &&
                        (uint32_t)len <= lim.max_transfer_length &&
                        (!iso || (npk >= 0 && (uint32_t)npk <= lim.max_iso_packets));
        if ((err == USBIP_OK) != ok) {
            FAIL("cmd_submit_check disagrees (dir %u ep %u len %d npk %d iso %d)", hdr.direction,
                 hdr.ep, len, npk, iso);
        }
        if (!ok && !ferr.field) {
            FAIL("cmd_submit_check names no field");
        }
    }
}

static void check_iso(const uint8_t *d, size_t n)
{
    usbip_iso_packet_t p[64], q[64];
    size_t count = n / 16 < 64 ? n / 16 : 64;
    memcpy(p, d, count * 16);
    memcpy(q, d, count * 16);
    usbip_iso_packets_from_wire(p, count);
    uint64_t max_end = 0;
    for (size_t i = 0; i < count; i++) {
        if (p[i].offset != be32(d + 16 * i) || p[i].length != be32(d + 16 * i + 4) ||
            p[i].actual_length != be32(d + 16 * i + 8) ||
            p[i].status != (int32_t)be32(d + 16 * i + 12)) {
            FAIL("iso from_wire");
        }
        uint64_t end = (uint64_t)p[i].offset + p[i].length;
        if (end > max_end) {
            max_end = end;
        }
    }
    const uint32_t buffer_length = n >= 4 ? be32(d + n - 4) : 0;
    usbip_field_error_t ferr = {0};
    usbip_err_t err = usbip_iso_packets_check(p, count, buffer_length, &ferr);
    if ((err == USBIP_OK) != (max_end <= buffer_length)) {
        FAIL("iso check disagrees");
    }
    usbip_iso_packets_to_wire(p, count);
    if (memcmp(p, q, count * 16) != 0) {
        FAIL("iso round trip");
    }
}

static uint32_t ref_mask(uint32_t flags, bool in, bool bulk, bool iso)
{
    uint32_t keep = 0x0004 | 0x0080 | 0x0100 | 0x0200;
    if (bulk && !in) {
        keep |= 0x0040;
    }
    if (!iso && in) {
        keep |= 0x0001;
    }
    if (iso) {
        keep |= 0x0002;
    }
    return flags & keep;
}

static usbip_control_kind_t ref_kind(const uint8_t s[8])
{
    const unsigned value = s[2] | (unsigned)s[3] << 8;
    if (s[0] == 0x00 && s[1] == 0x09) {
        return USBIP_CONTROL_SET_CONFIGURATION;
    }
    if (s[0] == 0x01 && s[1] == 0x0b) {
        return USBIP_CONTROL_SET_INTERFACE;
    }
    if (s[0] == 0x02 && s[1] == 0x01 && value == 0) {
        return USBIP_CONTROL_CLEAR_HALT;
    }
    if (s[0] == 0x23 && s[1] == 0x03 && value == 4) {
        return USBIP_CONTROL_RESET_DEVICE;
    }
    return USBIP_CONTROL_PLAIN;
}

static void check_helpers(const uint8_t *d, size_t n)
{
    if (n >= 8) {
        if (usbip_control_kind_of(d) != ref_kind(d)) {
            FAIL("control_kind_of");
        }
    }
    if (n >= 5) {
        const uint32_t flags = be32(d);
        const bool in = d[4] & 1, bulk = d[4] & 2, iso = d[4] & 4;
        if (usbip_transfer_flags_mask(flags, in, bulk, iso) != ref_mask(flags, in, bulk, iso)) {
            FAIL("transfer_flags_mask");
        }
    }
    size_t ndev = n < 64 ? n : 64;
    size_t want = 12;
    for (size_t i = 0; i < ndev; i++) {
        want += 312 + (size_t)d[i] * 4;
    }
    if (usbip_devlist_reply_size(d, ndev) != want) {
        FAIL("devlist_reply_size");
    }
    if (n >= 2) {
        char busid[USBIP_BUSID_SIZE];
        const size_t depth = d[1] % 10;
        const uint8_t *ports = d + 2;
        const size_t avail = n - 2;
        if (depth <= avail) {
            usbip_err_t err = usbip_busid_format(d[0] == 0xff ? 256 : d[0], ports, depth, busid);
            bool valid = d[0] != 0 && d[0] != 0xff && depth >= 1 && depth <= USBIP_MAX_PORT_DEPTH;
            for (size_t i = 0; i < depth && valid; i++) {
                valid = ports[i] != 0;
            }
            if ((err == USBIP_OK) != valid) {
                FAIL("busid_format validity");
            }
            if (err == USBIP_OK) {
                char want_id[64];
                int len = snprintf(want_id, sizeof want_id, "%u-", (unsigned)d[0]);
                for (size_t i = 0; i < depth; i++) {
                    len += snprintf(want_id + len, sizeof want_id - (size_t)len,
                                    i ? ".%u" : "%u", ports[i]);
                }
                if (strcmp(busid, want_id) != 0 || strlen(busid) >= USBIP_BUSID_SIZE) {
                    FAIL("busid_format \"%s\" != \"%s\"", busid, want_id);
                }
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_op_header(data, size);
    check_busid(data, size);
    if (size > 8) {
        check_busid(data + 8, size - 8); /* as it sits in OP_REQ_IMPORT */
    }
    check_device_record(data, size);
    if (size > 12) {
        check_device_record(data + 12, size - 12); /* first OP_REP_DEVLIST record */
    }
    check_urb_header(data, size);
    if (size > 48) {
        check_iso(data + 48, size - 48); /* descriptors after a header */
    }
    check_iso(data, size);
    check_helpers(data, size);
    return 0;
}
