/*
 * Unit tests of the protocol codec (usbip_proto) and the backend helpers
 * (usbip_control_kind_of, usbip_device_endpoint): exact byte layouts written
 * out by hand from the offsets in the protocol notes, round trips, short
 * input, and the checks a server applies.
 */
#include <stdlib.h>
#include <string.h>

#include "test_harness.h"
#include "usbip_backend.h"
#include "usbip_proto.h"

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

/* ---- op_common ---- */

TEST(op_header_layout_and_round_trip)
{
    const uint8_t req[8] = {0x01, 0x11, 0x80, 0x05, 0x00, 0x00, 0x00, 0x00};
    usbip_op_header_t hdr;
    CHECK(usbip_op_header_decode(req, 8, &hdr) == USBIP_OK);
    CHECK_EQ_INT(hdr.version, 0x0111);
    CHECK_EQ_INT(hdr.code, USBIP_OP_REQ_DEVLIST);
    CHECK_EQ_INT(hdr.status, 0);

    const usbip_op_header_t rep = {.version = 0x0100, .code = USBIP_OP_REP_IMPORT,
                                   .status = USBIP_ST_NODEV};
    uint8_t out[8];
    usbip_op_header_encode(out, &rep);
    const uint8_t want[8] = {0x01, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x04};
    CHECK(memcmp(out, want, 8) == 0);

    const uint8_t big[8] = {0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10};
    CHECK(usbip_op_header_decode(big, 8, &hdr) == USBIP_OK);
    CHECK_EQ_INT(hdr.version, 0xfedc);
    CHECK_EQ_INT(hdr.code, 0xba98);
    CHECK_EQ_INT(hdr.status, 0x76543210u);
    usbip_op_header_encode(out, &hdr);
    CHECK(memcmp(out, big, 8) == 0);
}

TEST(op_header_short_input_needs_more)
{
    const uint8_t req[8] = {0x01, 0x11, 0x80, 0x05, 0, 0, 0, 0};
    usbip_op_header_t hdr;
    for (size_t n = 0; n < 8; n++) {
        CHECK(usbip_op_header_decode(req, n, &hdr) == USBIP_ERR_NEED_MORE);
    }
}

TEST(version_supported_is_exactly_0100_and_0111)
{
    CHECK(usbip_version_supported(0x0111));
    CHECK(usbip_version_supported(0x0100));
    CHECK(!usbip_version_supported(0x0110));
    CHECK(!usbip_version_supported(0x0112));
    CHECK(!usbip_version_supported(0x1101));
    CHECK(!usbip_version_supported(0x0000));
    CHECK(!usbip_version_supported(0x0200));
}

/* ---- OP_REQ_IMPORT ---- */

TEST(import_request_layout_is_op_common_plus_zero_filled_busid)
{
    uint8_t out[40];
    memset(out, 0xcc, sizeof out);
    usbip_import_request_encode(out, 0x0111, "1-1.3");
    const uint8_t want[40] = {0x01, 0x11, 0x80, 0x03, 0, 0, 0, 0, '1', '-', '1', '.', '3'};
    CHECK(memcmp(out, want, 40) == 0);

    /* a busid too long for the field is cut to 31 characters and a NUL */
    usbip_import_request_encode(out, 0x0100, "1-1.2.3.4.5.6.7.8.9.10.11.12.13.14.15");
    CHECK_EQ_INT(out[0], 0x01);
    CHECK_EQ_INT(out[1], 0x00);
    CHECK(memcmp(out + 8, "1-1.2.3.4.5.6.7.8.9.10.11.12.13", 31) == 0);
    CHECK_EQ_INT(out[39], 0);
}

TEST(import_busid_decode_accepts_nul_terminated_and_zero_fills)
{
    uint8_t raw[32];
    memset(raw, 0, sizeof raw);
    memcpy(raw, "2-4.1.2", 7);
    raw[8] = 'x'; /* junk after the NUL is not copied */
    char busid[32];
    memset(busid, 0x55, sizeof busid);
    usbip_field_error_t ferr = {0};
    CHECK(usbip_import_busid_decode(raw, busid, &ferr) == USBIP_OK);
    CHECK_STR(busid, "2-4.1.2");
    CHECK(all_zero((const uint8_t *)busid + 7, 25));

    /* 31 characters and a NUL is the longest */
    memset(raw, 'a', 31);
    raw[31] = 0;
    CHECK(usbip_import_busid_decode(raw, busid, &ferr) == USBIP_OK);
    CHECK_EQ_INT(strlen(busid), 31);
}

TEST(import_busid_without_nul_or_empty_is_an_error_naming_busid)
{
    uint8_t raw[32];
    char busid[32];
    usbip_field_error_t ferr = {0};
    memset(raw, '1', sizeof raw);
    CHECK(usbip_import_busid_decode(raw, busid, &ferr) == USBIP_ERR_INVALID_ARG);
    CHECK_STR(ferr.field, "busid");
    CHECK_EQ_INT(ferr.value, 32);

    memset(raw, 0, sizeof raw);
    raw[5] = 'z'; /* starts with a NUL: empty */
    ferr = (usbip_field_error_t){0};
    CHECK(usbip_import_busid_decode(raw, busid, &ferr) == USBIP_ERR_INVALID_ARG);
    CHECK_STR(ferr.field, "busid");
    CHECK_EQ_INT(ferr.value, 0);
}

/* ---- usbip_usb_device / usbip_usb_interface ---- */

static void hand_device_record(uint8_t raw[312])
{
    memset(raw, 0, 312);
    strcpy((char *)raw, "/sys/devices/pci0000:00/usb2/2-4"); /* path at 0x000 */
    memcpy(raw + 0x100, "2-4.1.2", 7);                   /* busid at 0x100 */
    const uint8_t tail[] = {
        0x00, 0x00, 0x00, 0x02, /* 0x120 busnum */
        0x00, 0x00, 0x00, 0x0a, /* 0x124 devnum */
        0x00, 0x00, 0x00, 0x05, /* 0x128 speed SUPER */
        0x1d, 0x6b,             /* 0x12c idVendor */
        0x01, 0x04,             /* 0x12e idProduct */
        0x05, 0x10,             /* 0x130 bcdDevice */
        0xef, 0x02, 0x01,       /* 0x132 class, subclass, protocol */
        0x01, 0x02, 0x03,       /* 0x135 bConfigurationValue, bNumConfigurations, bNumInterfaces */
    };
    memcpy(raw + 0x120, tail, sizeof tail);
}

static usbip_device_record_t hand_device_struct(void)
{
    usbip_device_record_t dev;
    memset(&dev, 0, sizeof dev);
    strcpy(dev.path, "/sys/devices/pci0000:00/usb2/2-4");
    strcpy(dev.busid, "2-4.1.2");
    dev.busnum = 2;
    dev.devnum = 10;
    dev.speed = USBIP_SPEED_SUPER;
    dev.idVendor = 0x1d6b;
    dev.idProduct = 0x0104;
    dev.bcdDevice = 0x0510;
    dev.bDeviceClass = 0xef;
    dev.bDeviceSubClass = 0x02;
    dev.bDeviceProtocol = 0x01;
    dev.bConfigurationValue = 1;
    dev.bNumConfigurations = 2;
    dev.bNumInterfaces = 3;
    return dev;
}

TEST(device_record_layout_matches_offsets_0x100_to_0x137)
{
    uint8_t want[312], out[312];
    hand_device_record(want);
    usbip_device_record_t dev = hand_device_struct();
    memset(out, 0xcc, sizeof out);
    usbip_device_record_encode(out, &dev);
    CHECK(memcmp(out, want, 312) == 0);
    for (size_t i = 0; i < 312; i++) {
        if (out[i] != want[i]) {
            fprintf(stderr, "  first difference at offset 0x%zx\n", i);
            break;
        }
    }
}

TEST(device_record_decode_and_round_trip)
{
    uint8_t raw[312], again[312];
    hand_device_record(raw);
    usbip_device_record_t dev;
    memset(&dev, 0xaa, sizeof dev);
    usbip_device_record_decode(raw, &dev);
    const usbip_device_record_t want = hand_device_struct();
    CHECK_STR(dev.path, want.path);
    CHECK_STR(dev.busid, want.busid);
    CHECK_EQ_INT(dev.busnum, 2);
    CHECK_EQ_INT(dev.devnum, 10);
    CHECK_EQ_INT(dev.speed, 5);
    CHECK_EQ_INT(dev.idVendor, 0x1d6b);
    CHECK_EQ_INT(dev.idProduct, 0x0104);
    CHECK_EQ_INT(dev.bcdDevice, 0x0510);
    CHECK_EQ_INT(dev.bDeviceClass, 0xef);
    CHECK_EQ_INT(dev.bDeviceSubClass, 0x02);
    CHECK_EQ_INT(dev.bDeviceProtocol, 0x01);
    CHECK_EQ_INT(dev.bConfigurationValue, 1);
    CHECK_EQ_INT(dev.bNumConfigurations, 2);
    CHECK_EQ_INT(dev.bNumInterfaces, 3);
    usbip_device_record_encode(again, &dev);
    CHECK(memcmp(again, raw, 312) == 0);
}

TEST(device_record_decode_forces_nul_termination)
{
    uint8_t raw[312];
    memset(raw, 'a', sizeof raw);
    usbip_device_record_t dev;
    usbip_device_record_decode(raw, &dev);
    CHECK_EQ_INT(strlen(dev.path), 255);
    CHECK_EQ_INT(strlen(dev.busid), 31);
}

TEST(interface_record_is_three_bytes_and_a_zero_pad)
{
    const usbip_interface_record_t intf = {0x03, 0x01, 0x02};
    uint8_t out[4] = {0xcc, 0xcc, 0xcc, 0xcc};
    usbip_interface_record_encode(out, &intf);
    const uint8_t want[4] = {0x03, 0x01, 0x02, 0x00};
    CHECK(memcmp(out, want, 4) == 0);
    const uint8_t raw[4] = {0x08, 0x06, 0x50, 0xff};
    usbip_interface_record_t back;
    usbip_interface_record_decode(raw, &back);
    CHECK_EQ_INT(back.bInterfaceClass, 0x08);
    CHECK_EQ_INT(back.bInterfaceSubClass, 0x06);
    CHECK_EQ_INT(back.bInterfaceProtocol, 0x50);
}

TEST(devlist_reply_size_counts_records_and_interfaces)
{
    const uint8_t nintf[3] = {2, 0, 3};
    CHECK_EQ_INT(usbip_devlist_reply_size(nintf, 0), 12);
    CHECK_EQ_INT(usbip_devlist_reply_size(nintf, 1), 12 + 312 + 8);
    CHECK_EQ_INT(usbip_devlist_reply_size(nintf, 3), 12 + 3 * 312 + 5 * 4);
    CHECK_EQ_INT(USBIP_IMPORT_REPLY_SIZE, 0x140);
}

/* ---- URB PDUs ---- */

static const uint8_t kCmdSubmit[48] = {
    0x00, 0x00, 0x00, 0x01, /* 0x00 command CMD_SUBMIT */
    0x00, 0x00, 0x00, 0x2a, /* 0x04 seqnum */
    0x00, 0x01, 0x00, 0x02, /* 0x08 devid */
    0x00, 0x00, 0x00, 0x01, /* 0x0c direction IN */
    0x00, 0x00, 0x00, 0x00, /* 0x10 ep 0 */
    0x00, 0x00, 0x02, 0x01, /* 0x14 transfer_flags */
    0x00, 0x00, 0x04, 0x00, /* 0x18 transfer_buffer_length 1024 */
    0xff, 0xff, 0xff, 0xff, /* 0x1c start_frame -1 */
    0xff, 0xff, 0xff, 0xff, /* 0x20 number_of_packets -1 */
    0x00, 0x00, 0x00, 0x04, /* 0x24 interval */
    0x80, 0x06, 0x00, 0x01, 0x00, 0x00, 0x40, 0x00, /* 0x28 setup, raw */
};

TEST(cmd_submit_layout_offsets_0x00_to_0x28_and_raw_setup)
{
    usbip_urb_header_t hdr;
    usbip_field_error_t ferr = {0};
    CHECK(usbip_urb_header_decode(kCmdSubmit, 48, &hdr, &ferr) == USBIP_OK);
    CHECK_EQ_INT(hdr.command, USBIP_CMD_SUBMIT);
    CHECK_EQ_INT(hdr.seqnum, 42);
    CHECK_EQ_INT(hdr.devid, 0x00010002);
    CHECK_EQ_INT(hdr.direction, USBIP_DIR_IN);
    CHECK_EQ_INT(hdr.ep, 0);
    CHECK_EQ_INT(hdr.u.submit.transfer_flags, 0x201);
    CHECK_EQ_INT(hdr.u.submit.transfer_buffer_length, 1024);
    CHECK_EQ_INT(hdr.u.submit.start_frame, -1);
    CHECK_EQ_INT(hdr.u.submit.number_of_packets, -1);
    CHECK_EQ_INT(hdr.u.submit.interval, 4);
    /* setup stays USB little-endian: wLength 0x0040 is bytes 6..7 = 40 00 */
    CHECK(memcmp(hdr.u.submit.setup, kCmdSubmit + 0x28, 8) == 0);
    CHECK_EQ_INT(hdr.u.submit.setup[6] | (hdr.u.submit.setup[7] << 8), 0x40);
    uint8_t out[48];
    usbip_urb_header_encode(out, &hdr);
    CHECK(memcmp(out, kCmdSubmit, 48) == 0);
}

TEST(ret_submit_layout)
{
    usbip_urb_header_t hdr;
    memset(&hdr, 0, sizeof hdr);
    hdr.command = USBIP_RET_SUBMIT;
    hdr.seqnum = 0x01020304;
    hdr.u.ret_submit.status = USBIP_EPIPE;
    hdr.u.ret_submit.actual_length = 18;
    hdr.u.ret_submit.start_frame = 0x100;
    hdr.u.ret_submit.number_of_packets = 3;
    hdr.u.ret_submit.error_count = 1;
    uint8_t out[48];
    memset(out, 0xcc, sizeof out);
    usbip_urb_header_encode(out, &hdr);
    const uint8_t want[48] = {
        0x00, 0x00, 0x00, 0x03, 0x01, 0x02, 0x03, 0x04, /* command, seqnum */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,             /* devid, direction, ep */
        0xff, 0xff, 0xff, 0xe0,                         /* 0x14 status -32 */
        0x00, 0x00, 0x00, 0x12,                         /* 0x18 actual_length */
        0x00, 0x00, 0x01, 0x00,                         /* 0x1c start_frame */
        0x00, 0x00, 0x00, 0x03,                         /* 0x20 number_of_packets */
        0x00, 0x00, 0x00, 0x01,                         /* 0x24 error_count */
        0, 0, 0, 0, 0, 0, 0, 0,                         /* 0x28 zero */
    };
    CHECK(memcmp(out, want, 48) == 0);
    usbip_urb_header_t back;
    usbip_field_error_t ferr;
    CHECK(usbip_urb_header_decode(out, 48, &back, &ferr) == USBIP_OK);
    CHECK_EQ_INT(back.command, USBIP_RET_SUBMIT);
    CHECK_EQ_INT(back.seqnum, 0x01020304);
    CHECK_EQ_INT(back.u.ret_submit.status, -32);
    CHECK_EQ_INT(back.u.ret_submit.actual_length, 18);
    CHECK_EQ_INT(back.u.ret_submit.start_frame, 0x100);
    CHECK_EQ_INT(back.u.ret_submit.number_of_packets, 3);
    CHECK_EQ_INT(back.u.ret_submit.error_count, 1);
}

TEST(cmd_unlink_and_ret_unlink_layout)
{
    const uint8_t cmd[48] = {
        0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x63, /* command, own seqnum 99 */
        0x00, 0x03, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, /* devid, 0, 0 */
        0x00, 0x00, 0x00, 0x62,                         /* 0x14 victim seqnum 98 */
    };
    usbip_urb_header_t hdr;
    usbip_field_error_t ferr;
    CHECK(usbip_urb_header_decode(cmd, 48, &hdr, &ferr) == USBIP_OK);
    CHECK_EQ_INT(hdr.command, USBIP_CMD_UNLINK);
    CHECK_EQ_INT(hdr.seqnum, 99);
    CHECK_EQ_INT(hdr.devid, 0x00030001);
    CHECK_EQ_INT(hdr.u.unlink.victim_seqnum, 98);
    uint8_t out[48];
    usbip_urb_header_encode(out, &hdr);
    CHECK(memcmp(out, cmd, 48) == 0);

    memset(&hdr, 0, sizeof hdr);
    hdr.command = USBIP_RET_UNLINK;
    hdr.seqnum = 99;
    hdr.u.ret_unlink.status = USBIP_ECONNRESET;
    memset(out, 0xcc, sizeof out);
    usbip_urb_header_encode(out, &hdr);
    const uint8_t ret[48] = {
        0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x63, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0xff, 0xff, 0xff, 0x98, /* -104 */
    };
    CHECK(memcmp(out, ret, 48) == 0);
    CHECK(usbip_urb_header_decode(ret, 48, &hdr, &ferr) == USBIP_OK);
    CHECK_EQ_INT(hdr.u.ret_unlink.status, -104);
}

TEST(urb_header_short_input_needs_more_and_unknown_command_names_command)
{
    usbip_urb_header_t hdr;
    usbip_field_error_t ferr = {0};
    for (size_t n = 0; n < 48; n += 7) {
        CHECK(usbip_urb_header_decode(kCmdSubmit, n, &hdr, &ferr) == USBIP_ERR_NEED_MORE);
    }
    CHECK(usbip_urb_header_decode(kCmdSubmit, 47, &hdr, &ferr) == USBIP_ERR_NEED_MORE);
    const uint32_t bad[] = {0, 5, 7, 0x01000000u};
    for (size_t i = 0; i < 4; i++) {
        uint8_t raw[48];
        memcpy(raw, kCmdSubmit, 48);
        raw[0] = (uint8_t)(bad[i] >> 24);
        raw[3] = (uint8_t)bad[i];
        ferr = (usbip_field_error_t){0};
        CHECK(usbip_urb_header_decode(raw, 48, &hdr, &ferr) == USBIP_ERR_PROTOCOL);
        CHECK_STR(ferr.field, "command");
        CHECK_EQ_INT(ferr.value, bad[i]);
    }
}

/* ---- iso descriptors ---- */

TEST(iso_descriptors_are_big_endian_u32_offset_length_actual_status)
{
    const uint8_t raw[32] = {
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x0a,
        0xff, 0xff, 0xff, 0xee, /* -18 */
        0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x03, 0x00,
        0x00, 0x00, 0x00, 0x00,
    };
    usbip_iso_packet_t p[2];
    memcpy(p, raw, 32);
    usbip_iso_packets_from_wire(p, 2);
    CHECK_EQ_INT(p[0].offset, 0);
    CHECK_EQ_INT(p[0].length, 192);
    CHECK_EQ_INT(p[0].actual_length, 10);
    CHECK_EQ_INT(p[0].status, USBIP_EXDEV);
    CHECK_EQ_INT(p[1].offset, 192);
    CHECK_EQ_INT(p[1].length, 768);
    CHECK_EQ_INT(p[1].actual_length, 768);
    CHECK_EQ_INT(p[1].status, 0);
    usbip_iso_packets_to_wire(p, 2);
    CHECK(memcmp(p, raw, 32) == 0);
}

TEST(iso_packets_check_every_packet_inside_the_buffer)
{
    usbip_iso_packet_t p[3] = {{0, 100, 0, 0}, {100, 100, 0, 0}, {200, 56, 0, 0}};
    usbip_field_error_t ferr = {0};
    CHECK(usbip_iso_packets_check(p, 3, 256, &ferr) == USBIP_OK);
    CHECK(usbip_iso_packets_check(p, 3, 255, &ferr) == USBIP_ERR_INVALID_SIZE);
    CHECK_STR(ferr.field, "iso_packet.offset+length");
    CHECK_EQ_INT(ferr.value, 256);
    /* no 32-bit wrap-around */
    p[1].offset = 0xffffffffu;
    p[1].length = 2;
    CHECK(usbip_iso_packets_check(p, 3, 1024, &ferr) == USBIP_ERR_INVALID_SIZE);
    CHECK_EQ_INT(ferr.value, 0x100000001LL);
    CHECK(usbip_iso_packets_check(p, 0, 0, &ferr) == USBIP_OK);
}

/* ---- submit checks ---- */

static usbip_urb_header_t submit_hdr(uint32_t dir, uint32_t ep, int32_t len, int32_t npk)
{
    usbip_urb_header_t h;
    memset(&h, 0, sizeof h);
    h.command = USBIP_CMD_SUBMIT;
    h.direction = dir;
    h.ep = ep;
    h.u.submit.transfer_buffer_length = len;
    h.u.submit.number_of_packets = npk;
    return h;
}

static void expect_check(usbip_urb_header_t h, bool iso, usbip_err_t want, const char *field,
                         int64_t value)
{
    const usbip_submit_limits_t lim = {.max_transfer_length = 1024, .max_iso_packets = 16};
    usbip_field_error_t ferr = {0};
    usbip_err_t err = usbip_cmd_submit_check(&h, iso, &lim, &ferr);
    CHECK_EQ_INT(err, want);
    if (field) {
        CHECK_STR(ferr.field, field);
        CHECK_EQ_INT(ferr.value, value);
    }
}

TEST(cmd_submit_check_limits)
{
    expect_check(submit_hdr(0, 0, 0, 0), false, USBIP_OK, NULL, 0);
    expect_check(submit_hdr(1, 15, 1024, -1), false, USBIP_OK, NULL, 0);
    expect_check(submit_hdr(1, 1, 8, 0xffff), false, USBIP_OK, NULL, 0); /* junk on non-iso */
    expect_check(submit_hdr(2, 1, 8, 0), false, USBIP_ERR_PROTOCOL, "direction", 2);
    expect_check(submit_hdr(0xffffffffu, 1, 8, 0), false, USBIP_ERR_PROTOCOL, "direction",
                 0xffffffffLL);
    expect_check(submit_hdr(1, 16, 8, 0), false, USBIP_ERR_PROTOCOL, "ep", 16);
    expect_check(submit_hdr(0, 1, -1, 0), false, USBIP_ERR_INVALID_SIZE,
                 "transfer_buffer_length", -1);
    expect_check(submit_hdr(0, 1, 1025, 0), false, USBIP_ERR_INVALID_SIZE,
                 "transfer_buffer_length", 1025);
    expect_check(submit_hdr(0, 1, INT32_MIN, 0), false, USBIP_ERR_INVALID_SIZE,
                 "transfer_buffer_length", INT32_MIN);
    expect_check(submit_hdr(1, 4, 64, 16), true, USBIP_OK, NULL, 0);
    expect_check(submit_hdr(1, 4, 64, 0), true, USBIP_OK, NULL, 0);
    expect_check(submit_hdr(1, 4, 64, 17), true, USBIP_ERR_INVALID_SIZE, "number_of_packets", 17);
    expect_check(submit_hdr(1, 4, 64, -1), true, USBIP_ERR_INVALID_SIZE, "number_of_packets", -1);
}

TEST(transfer_flags_mask_table)
{
    struct {
        uint32_t flags;
        bool dir_in, bulk, iso;
        uint32_t want;
    } t[] = {
        {0x0041, false, true, false, 0x0040},  /* bulk OUT keeps ZERO_PACKET */
        {0x0041, true, true, false, 0x0001},   /* bulk IN keeps SHORT_NOT_OK only */
        {0x0041, false, false, false, 0x0000}, /* control/interrupt OUT: neither */
        {0x0041, true, false, false, 0x0001},  /* interrupt IN: SHORT_NOT_OK */
        {0x0043, true, false, true, 0x0002},   /* iso IN: ISO_ASAP, no SHORT_NOT_OK */
        {0x0043, false, false, true, 0x0002},  /* iso OUT: ISO_ASAP */
        {0x0002, true, true, false, 0x0000},   /* ISO_ASAP means nothing on bulk */
        {0x0384, false, false, false, 0x0384}, /* NO_DMA_MAP, NO_INTERRUPT, FREE_BUFFER, DIR_IN */
        {0x00fc0000u | 0x40000u, true, true, false, 0}, /* DMA_MAP_* host artefacts */
        {0xffffffffu, true, false, false, 0x0385},
        {0xffffffffu, false, true, false, 0x03c4},
        {0xffffffffu, true, false, true, 0x0386},
        {0, true, true, false, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        uint32_t got = usbip_transfer_flags_mask(t[i].flags, t[i].dir_in, t[i].bulk, t[i].iso);
        if (got != t[i].want) {
            fprintf(stderr, "  row %zu: flags 0x%x -> 0x%x, want 0x%x\n", i, t[i].flags, got,
                    t[i].want);
        }
        CHECK_EQ_INT(got, t[i].want);
    }
}

/* ---- control requests (usbip_backend) ---- */

TEST(control_kind_of_matches_exactly)
{
    struct {
        uint8_t setup[8];
        usbip_control_kind_t want;
    } t[] = {
        {{0x00, 0x09, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00}, USBIP_CONTROL_SET_CONFIGURATION},
        {{0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, USBIP_CONTROL_SET_CONFIGURATION},
        {{0x01, 0x0b, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00}, USBIP_CONTROL_SET_INTERFACE},
        {{0x02, 0x01, 0x00, 0x00, 0x81, 0x00, 0x00, 0x00}, USBIP_CONTROL_CLEAR_HALT},
        {{0x23, 0x03, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00}, USBIP_CONTROL_RESET_DEVICE},
        /* non-matches */
        {{0x80, 0x09, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00}, USBIP_CONTROL_PLAIN}, /* IN, bRequest 9 */
        {{0x20, 0x09, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00}, USBIP_CONTROL_PLAIN}, /* class */
        {{0x21, 0x09, 0x00, 0x02, 0x00, 0x00, 0x01, 0x00}, USBIP_CONTROL_PLAIN}, /* HID SET_REPORT */
        {{0x81, 0x0b, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00}, USBIP_CONTROL_PLAIN},
        {{0x02, 0x01, 0x01, 0x00, 0x81, 0x00, 0x00, 0x00}, USBIP_CONTROL_PLAIN}, /* wValue != 0 */
        {{0x02, 0x01, 0x00, 0x01, 0x81, 0x00, 0x00, 0x00}, USBIP_CONTROL_PLAIN}, /* wValue 0x100 */
        {{0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, USBIP_CONTROL_PLAIN}, /* device feature */
        {{0x02, 0x03, 0x00, 0x00, 0x81, 0x00, 0x00, 0x00}, USBIP_CONTROL_PLAIN}, /* SET_FEATURE(HALT) */
        {{0x23, 0x03, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00}, USBIP_CONTROL_PLAIN}, /* other feature */
        {{0x23, 0x03, 0x04, 0x01, 0x01, 0x00, 0x00, 0x00}, USBIP_CONTROL_PLAIN}, /* wValue 0x104 */
        {{0x23, 0x01, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00}, USBIP_CONTROL_PLAIN}, /* CLEAR port reset */
        {{0xa3, 0x03, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00}, USBIP_CONTROL_PLAIN},
        {{0x00, 0x05, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00}, USBIP_CONTROL_PLAIN}, /* SET_ADDRESS */
        {{0x80, 0x06, 0x00, 0x01, 0x00, 0x00, 0x12, 0x00}, USBIP_CONTROL_PLAIN}, /* GET_DESCRIPTOR */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        usbip_control_kind_t got = usbip_control_kind_of(t[i].setup);
        if (got != t[i].want) {
            fprintf(stderr, "  row %zu: %02x %02x -> %d, want %d\n", i, t[i].setup[0],
                    t[i].setup[1], (int)got, (int)t[i].want);
        }
        CHECK_EQ_INT(got, t[i].want);
    }
}

TEST(device_endpoint_lookup_defaults_ep0_and_refuses_absent_or_out_of_range)
{
    usbip_device_t dev;
    memset(&dev, 0, sizeof dev);
    dev.ep_in[1] = (usbip_endpoint_info_t){.present = true, .type = USBIP_XFER_BULK,
                                           .max_packet_size = 512};
    const usbip_endpoint_info_t *ep0 = usbip_device_endpoint(&dev, 0, true);
    REQUIRE(ep0 != NULL);
    CHECK(ep0->type == USBIP_XFER_CONTROL);
    CHECK_EQ_INT(ep0->max_packet_size, 64);
    CHECK(usbip_device_endpoint(&dev, 0, false) != NULL);
    CHECK(usbip_device_endpoint(&dev, 1, true) == &dev.ep_in[1]);
    CHECK(usbip_device_endpoint(&dev, 1, false) == NULL);
    CHECK(usbip_device_endpoint(&dev, 2, true) == NULL);
    CHECK(usbip_device_endpoint(&dev, 16, true) == NULL);
    CHECK(usbip_device_endpoint(&dev, 255, false) == NULL);
    /* a described ep0 is used as described */
    dev.ep_out[0] = (usbip_endpoint_info_t){.present = true, .type = USBIP_XFER_CONTROL,
                                            .max_packet_size = 8};
    CHECK(usbip_device_endpoint(&dev, 0, false) == &dev.ep_out[0]);
}

TEST_MAIN("proto",
          TEST_ENTRY(op_header_layout_and_round_trip),
          TEST_ENTRY(op_header_short_input_needs_more),
          TEST_ENTRY(version_supported_is_exactly_0100_and_0111),
          TEST_ENTRY(import_request_layout_is_op_common_plus_zero_filled_busid),
          TEST_ENTRY(import_busid_decode_accepts_nul_terminated_and_zero_fills),
          TEST_ENTRY(import_busid_without_nul_or_empty_is_an_error_naming_busid),
          TEST_ENTRY(device_record_layout_matches_offsets_0x100_to_0x137),
          TEST_ENTRY(device_record_decode_and_round_trip),
          TEST_ENTRY(device_record_decode_forces_nul_termination),
          TEST_ENTRY(interface_record_is_three_bytes_and_a_zero_pad),
          TEST_ENTRY(devlist_reply_size_counts_records_and_interfaces),
          TEST_ENTRY(cmd_submit_layout_offsets_0x00_to_0x28_and_raw_setup),
          TEST_ENTRY(ret_submit_layout),
          TEST_ENTRY(cmd_unlink_and_ret_unlink_layout),
          TEST_ENTRY(urb_header_short_input_needs_more_and_unknown_command_names_command),
          TEST_ENTRY(iso_descriptors_are_big_endian_u32_offset_length_actual_status),
          TEST_ENTRY(iso_packets_check_every_packet_inside_the_buffer),
          TEST_ENTRY(cmd_submit_check_limits),
          TEST_ENTRY(transfer_flags_mask_table),
          TEST_ENTRY(control_kind_of_matches_exactly),
          TEST_ENTRY(device_endpoint_lookup_defaults_ep0_and_refuses_absent_or_out_of_range))
