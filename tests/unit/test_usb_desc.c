/*
 * Unit tests of usb_desc: descriptor parsing into the USB/IP device view,
 * with real-world shaped descriptors (a CDC-ACM + mass storage composite,
 * a USB Audio Class 1 headset with alternate settings and a high-bandwidth
 * iso endpoint) and malformed ones.
 */
#include <string.h>

#include "sample_descriptors.h"
#include "test_harness.h"
#include "usb_desc.h"

TEST(composite_cdc_msc_device_view)
{
    usb_desc_config_t cfg;
    REQUIRE(usb_desc_parse_config(CDC_MSC_CONFIG, sizeof CDC_MSC_CONFIG, &cfg) == USBIP_OK);
    CHECK_EQ_INT(cfg.problems, 0);
    CHECK_EQ_INT(cfg.configuration_value, 1);
    CHECK_EQ_INT(cfg.num_interfaces, 3);
    CHECK_EQ_INT(cfg.num_altsettings, 3);
    CHECK_EQ_INT(cfg.num_endpoints, 5);

    usbip_device_t dev;
    memset(&dev, 0, sizeof dev);
    REQUIRE(usb_desc_device_record(CDC_MSC_DEVICE, sizeof CDC_MSC_DEVICE, USBIP_SPEED_HIGH,
                                   &dev.record) == USBIP_OK);
    CHECK_EQ_INT(dev.record.idVendor, 0xcafe);
    CHECK_EQ_INT(dev.record.idProduct, 0x4001);
    CHECK_EQ_INT(dev.record.bcdDevice, 0x0100);
    CHECK_EQ_INT(dev.record.bDeviceClass, 0xef);
    CHECK_EQ_INT(dev.record.bDeviceSubClass, 0x02);
    CHECK_EQ_INT(dev.record.bDeviceProtocol, 0x01);
    CHECK_EQ_INT(dev.record.bNumConfigurations, 1);
    CHECK_EQ_INT(dev.record.speed, USBIP_SPEED_HIGH);
    CHECK_EQ_INT(usb_desc_max_packet_size0(CDC_MSC_DEVICE, sizeof CDC_MSC_DEVICE), 64);

    usb_desc_fill_device(&cfg, NULL, 64, &dev);
    CHECK_EQ_INT(dev.record.bConfigurationValue, 1);
    CHECK_EQ_INT(dev.record.bNumInterfaces, 3);
    CHECK_EQ_INT(dev.interfaces[0].bInterfaceClass, 0x02);
    CHECK_EQ_INT(dev.interfaces[0].bInterfaceSubClass, 0x02);
    CHECK_EQ_INT(dev.interfaces[1].bInterfaceClass, 0x0a);
    CHECK_EQ_INT(dev.interfaces[2].bInterfaceClass, 0x08);
    CHECK_EQ_INT(dev.interfaces[2].bInterfaceSubClass, 0x06);
    CHECK_EQ_INT(dev.interfaces[2].bInterfaceProtocol, 0x50);

    CHECK(dev.ep_in[0].present && dev.ep_in[0].type == USBIP_XFER_CONTROL);
    CHECK_EQ_INT(dev.ep_out[0].max_packet_size, 64);
    CHECK(dev.ep_in[1].present);
    CHECK_EQ_INT(dev.ep_in[1].type, USBIP_XFER_INTERRUPT);
    CHECK_EQ_INT(dev.ep_in[1].max_packet_size, 8);
    CHECK_EQ_INT(dev.ep_in[1].interval, 16);
    CHECK(!dev.ep_out[1].present);
    CHECK_EQ_INT(dev.ep_out[2].type, USBIP_XFER_BULK);
    CHECK_EQ_INT(dev.ep_out[2].max_packet_size, 512);
    CHECK_EQ_INT(dev.ep_out[2].mult, 1);
    CHECK_EQ_INT(dev.ep_in[2].type, USBIP_XFER_BULK);
    CHECK(dev.ep_out[3].present && dev.ep_in[3].present);
    CHECK(!dev.ep_in[4].present);

    const uint8_t alts[USB_DESC_MAX_INTERFACES] = {0};
    CHECK_EQ_INT(usb_desc_endpoint_owner(&cfg, alts, 0x81), 0);
    CHECK_EQ_INT(usb_desc_endpoint_owner(&cfg, alts, 0x02), 1);
    CHECK_EQ_INT(usb_desc_endpoint_owner(&cfg, alts, 0x83), 2);
    CHECK_EQ_INT(usb_desc_endpoint_owner(&cfg, alts, 0x84), -1);
    CHECK_EQ_INT(usb_desc_endpoint_owner(&cfg, alts, 0x01), -1); /* direction matters */
    CHECK_EQ_INT(usb_desc_interface_index(&cfg, 2), 2);
    CHECK_EQ_INT(usb_desc_interface_index(&cfg, 7), -1);
    CHECK_EQ_INT(usb_desc_alt_count(&cfg, 1), 1);
}

TEST(audio_alt_settings_and_iso_endpoints)
{
    usb_desc_config_t cfg;
    REQUIRE(usb_desc_parse_config(UAC_CONFIG, sizeof UAC_CONFIG, &cfg) == USBIP_OK);
    CHECK_EQ_INT(cfg.problems, 0);
    CHECK_EQ_INT(cfg.num_interfaces, 3);
    CHECK_EQ_INT(cfg.num_altsettings, 6);
    CHECK_EQ_INT(usb_desc_alt_count(&cfg, 0), 1);
    CHECK_EQ_INT(usb_desc_alt_count(&cfg, 1), 3);
    CHECK_EQ_INT(usb_desc_alt_count(&cfg, 2), 2);
    CHECK(usb_desc_find_alt(&cfg, 1, 2) != NULL);
    CHECK(usb_desc_find_alt(&cfg, 1, 3) == NULL);
    CHECK(usb_desc_find_alt(&cfg, 5, 0) == NULL);

    usbip_device_t dev;
    memset(&dev, 0, sizeof dev);
    REQUIRE(usb_desc_device_record(UAC_DEVICE, sizeof UAC_DEVICE, USBIP_SPEED_FULL,
                                   &dev.record) == USBIP_OK);
    CHECK_EQ_INT(dev.record.idVendor, 0x0d8c);

    /* Alt 0 everywhere: the zero-bandwidth settings have no endpoints. */
    uint8_t alts[USB_DESC_MAX_INTERFACES];
    usb_desc_default_alts(&cfg, alts);
    CHECK_EQ_INT(alts[0] + alts[1] + alts[2], 0);
    usb_desc_fill_device(&cfg, alts, 64, &dev);
    CHECK(!dev.ep_out[1].present);
    CHECK(!dev.ep_in[2].present);
    CHECK_EQ_INT(dev.interfaces[1].bInterfaceSubClass, 0x02);

    /* Streaming: playback alt 2, capture alt 1. */
    alts[1] = 2;
    alts[2] = 1;
    usb_desc_fill_device(&cfg, alts, 64, &dev);
    CHECK(dev.ep_out[1].present);
    CHECK_EQ_INT(dev.ep_out[1].type, USBIP_XFER_ISOCHRONOUS);
    CHECK_EQ_INT(dev.ep_out[1].max_packet_size, 288);
    CHECK_EQ_INT(dev.ep_out[1].interval, 1);
    CHECK(dev.ep_in[2].present);
    CHECK_EQ_INT(dev.ep_in[2].type, USBIP_XFER_ISOCHRONOUS);
    CHECK_EQ_INT(dev.ep_in[2].max_packet_size, 1024);
    CHECK_EQ_INT(dev.ep_in[2].mult, 3);
    CHECK_EQ_INT(dev.ep_in[2].interval, 4);
    CHECK_EQ_INT(usb_desc_endpoint_owner(&cfg, alts, 0x01), 1);
    CHECK_EQ_INT(usb_desc_endpoint_owner(&cfg, alts, 0x82), 2);

    alts[1] = 1;
    usb_desc_fill_device(&cfg, alts, 64, &dev);
    CHECK_EQ_INT(dev.ep_out[1].max_packet_size, 200);

    const usb_desc_altsetting_t *a = usb_desc_find_alt(&cfg, 2, 1);
    REQUIRE(a != NULL);
    const usb_desc_endpoint_t *ep = usb_desc_alt_endpoint(&cfg, a, 0);
    REQUIRE(ep != NULL);
    CHECK_EQ_INT(ep->address, 0x82);
    CHECK_EQ_INT(ep->max_packet_size, 0x1400);
    CHECK(usb_desc_alt_endpoint(&cfg, a, 1) == NULL);
}

TEST(bad_headers_are_refused)
{
    usb_desc_config_t cfg;
    const uint8_t short_buf[5] = {0x09, 0x02, 0x09, 0x00, 0x00};
    CHECK(usb_desc_parse_config(short_buf, sizeof short_buf, &cfg) == USBIP_ERR_INVALID_ARG);
    uint8_t hdr[9] = {0x09, 0x02, 0x09, 0x00, 0x00, 0x01, 0x00, 0x80, 0x32};
    CHECK(usb_desc_parse_config(hdr, sizeof hdr, &cfg) == USBIP_OK);
    CHECK_EQ_INT(cfg.num_interfaces, 0);
    hdr[1] = 0x04; /* not a configuration */
    CHECK(usb_desc_parse_config(hdr, sizeof hdr, &cfg) == USBIP_ERR_INVALID_ARG);
    hdr[1] = 0x02;
    hdr[0] = 0x08; /* bLength too small */
    CHECK(usb_desc_parse_config(hdr, sizeof hdr, &cfg) == USBIP_ERR_INVALID_ARG);
    hdr[0] = 0x09;
    hdr[2] = 0x04; /* wTotalLength smaller than the header */
    CHECK(usb_desc_parse_config(hdr, sizeof hdr, &cfg) == USBIP_ERR_INVALID_ARG);
    CHECK(usb_desc_parse_config(NULL, 9, &cfg) == USBIP_ERR_INVALID_ARG);
}

TEST(zero_length_descriptor_stops_the_walk)
{
    uint8_t buf[sizeof CDC_MSC_CONFIG];
    memcpy(buf, CDC_MSC_CONFIG, sizeof buf);
    buf[52] = 0x00; /* bLength of the data interface (offset 52) */
    usb_desc_config_t cfg;
    REQUIRE(usb_desc_parse_config(buf, sizeof buf, &cfg) == USBIP_OK);
    CHECK(cfg.problems & USB_DESC_PROBLEM_BAD_LENGTH);
    CHECK_EQ_INT(cfg.num_interfaces, 1); /* the comm interface before it survives */
    CHECK_EQ_INT(cfg.num_endpoints, 1);
    CHECK(cfg.problems & USB_DESC_PROBLEM_INTERFACE_COUNT);
}

TEST(descriptor_running_past_the_end)
{
    uint8_t buf[sizeof CDC_MSC_CONFIG];
    memcpy(buf, CDC_MSC_CONFIG, sizeof buf);
    buf[91] = 0x20; /* last endpoint claims 32 bytes, 7 remain */
    usb_desc_config_t cfg;
    REQUIRE(usb_desc_parse_config(buf, sizeof buf, &cfg) == USBIP_OK);
    CHECK(cfg.problems & USB_DESC_PROBLEM_BAD_LENGTH);
    CHECK_EQ_INT(cfg.num_endpoints, 4);
    CHECK(cfg.problems & USB_DESC_PROBLEM_ENDPOINT_COUNT);
}

TEST(total_length_beyond_the_buffer_or_short_of_it)
{
    usb_desc_config_t cfg;
    /* The buffer ends in the middle of the MSC interface. */
    REQUIRE(usb_desc_parse_config(CDC_MSC_CONFIG, 80, &cfg) == USBIP_OK);
    CHECK(cfg.problems & USB_DESC_PROBLEM_TRUNCATED);
    CHECK(cfg.problems & USB_DESC_PROBLEM_BAD_LENGTH);
    CHECK_EQ_INT(cfg.num_interfaces, 2);

    /* wTotalLength shorter than the buffer: bytes after it are not read. */
    uint8_t buf[sizeof CDC_MSC_CONFIG + 7];
    memcpy(buf, CDC_MSC_CONFIG, sizeof CDC_MSC_CONFIG);
    const uint8_t extra[7] = {0x07, 0x05, 0x84, 0x02, 0x00, 0x02, 0x00};
    memcpy(buf + sizeof CDC_MSC_CONFIG, extra, sizeof extra);
    REQUIRE(usb_desc_parse_config(buf, sizeof buf, &cfg) == USBIP_OK);
    CHECK_EQ_INT(cfg.problems, 0);
    CHECK_EQ_INT(cfg.num_endpoints, 5);
}

TEST(orphan_bad_and_duplicate_descriptors)
{
    const uint8_t buf[] = {
        0x09, 0x02, 0x35, 0x00, 0x02, 0x01, 0x00, 0x80, 0x32,
        0x07, 0x05, 0x81, 0x02, 0x40, 0x00, 0x00,             /* orphan endpoint */
        0x09, 0x04, 0x00, 0x00, 0x03, 0xff, 0x00, 0x00, 0x00,
        0x07, 0x05, 0x80, 0x02, 0x40, 0x00, 0x00,             /* endpoint number 0 */
        0x05, 0x05, 0x82, 0x02, 0x40,                         /* short endpoint */
        0x07, 0x05, 0x02, 0x02, 0x40, 0x00, 0x00,
        0x09, 0x04, 0x00, 0x00, 0x01, 0xff, 0x00, 0x00, 0x00, /* duplicate alt */
    };
    usb_desc_config_t cfg;
    REQUIRE(usb_desc_parse_config(buf, sizeof buf, &cfg) == USBIP_OK);
    CHECK(cfg.problems & USB_DESC_PROBLEM_ORPHAN_ENDPOINT);
    CHECK(cfg.problems & USB_DESC_PROBLEM_BAD_ENDPOINT);
    CHECK(cfg.problems & USB_DESC_PROBLEM_DUPLICATE_ALT);
    CHECK(cfg.problems & USB_DESC_PROBLEM_ENDPOINT_COUNT); /* 3 declared, 1 usable */
    CHECK(cfg.problems & USB_DESC_PROBLEM_INTERFACE_COUNT);
    CHECK_EQ_INT(cfg.num_altsettings, 1);
    CHECK_EQ_INT(cfg.num_endpoints, 1);
    CHECK_EQ_INT(cfg.endpoints[0].address, 0x02);

    char text[200];
    usb_desc_problems_text(cfg.problems, text, sizeof text);
    CHECK(strstr(text, "endpoint outside an interface") != NULL);
    CHECK(strstr(text, "duplicate alternate setting") != NULL);
    char tiny[12];
    usb_desc_problems_text(cfg.problems, tiny, sizeof tiny);
    CHECK(strlen(tiny) < sizeof tiny);
}

TEST(short_interface_and_duplicate_endpoint)
{
    const uint8_t buf[] = {
        0x09, 0x02, 0x2c, 0x00, 0x01, 0x01, 0x00, 0x80, 0x32,
        0x05, 0x04, 0x00, 0x00, 0x01,                         /* short interface */
        0x07, 0x05, 0x81, 0x03, 0x08, 0x00, 0x0a,             /* ignored with it */
        0x09, 0x04, 0x01, 0x00, 0x02, 0x03, 0x00, 0x00, 0x00,
        0x07, 0x05, 0x81, 0x03, 0x08, 0x00, 0x0a,
        0x07, 0x05, 0x81, 0x03, 0x10, 0x00, 0x0a,             /* same address again */
    };
    usb_desc_config_t cfg;
    REQUIRE(usb_desc_parse_config(buf, sizeof buf, &cfg) == USBIP_OK);
    CHECK(cfg.problems & USB_DESC_PROBLEM_SHORT_INTERFACE);
    CHECK(cfg.problems & USB_DESC_PROBLEM_DUPLICATE_EP);
    CHECK(!(cfg.problems & USB_DESC_PROBLEM_ORPHAN_ENDPOINT));
    CHECK_EQ_INT(cfg.num_interfaces, 1);
    CHECK_EQ_INT(cfg.interface_numbers[0], 1);
    CHECK_EQ_INT(cfg.num_endpoints, 1);
    CHECK_EQ_INT(cfg.endpoints[0].max_packet_size, 8);
}

TEST(too_many_alt_settings_are_dropped)
{
    static uint8_t buf[9 + 70 * 9];
    const size_t total = sizeof buf;
    memset(buf, 0, sizeof buf);
    const uint8_t hdr[9] = {0x09, 0x02, (uint8_t)total, (uint8_t)(total >> 8), 1, 1, 0, 0x80, 50};
    memcpy(buf, hdr, sizeof hdr);
    for (int i = 0; i < 70; i++) {
        uint8_t *d = &buf[9 + 9 * i];
        d[0] = 9;
        d[1] = 4;
        d[2] = 0;
        d[3] = (uint8_t)i;
        d[5] = 0x0e;
    }
    usb_desc_config_t cfg;
    REQUIRE(usb_desc_parse_config(buf, sizeof buf, &cfg) == USBIP_OK);
    CHECK(cfg.problems & USB_DESC_PROBLEM_TOO_MANY);
    CHECK_EQ_INT(cfg.num_altsettings, USB_DESC_MAX_ALTSETTINGS);
    CHECK_EQ_INT(usb_desc_alt_count(&cfg, 0), USB_DESC_MAX_ALTSETTINGS);
}

TEST(interface_without_alt_zero_defaults_to_its_first)
{
    const uint8_t buf[] = {
        0x09, 0x02, 0x20, 0x00, 0x01, 0x01, 0x00, 0x80, 0x32,
        0x09, 0x04, 0x00, 0x02, 0x01, 0xff, 0x00, 0x00, 0x00,
        0x07, 0x05, 0x81, 0x02, 0x40, 0x00, 0x00,
        0x07, 0x24, 0x00, 0x00, 0x00, 0x00, 0x00,             /* class-specific: skipped */
    };
    usb_desc_config_t cfg;
    REQUIRE(usb_desc_parse_config(buf, sizeof buf, &cfg) == USBIP_OK);
    CHECK_EQ_INT(cfg.problems, 0);
    uint8_t alts[USB_DESC_MAX_INTERFACES];
    usb_desc_default_alts(&cfg, alts);
    CHECK_EQ_INT(alts[0], 2);
    usbip_device_t dev;
    memset(&dev, 0, sizeof dev);
    usb_desc_fill_device(&cfg, alts, 0, &dev);
    CHECK(dev.ep_in[1].present);
    CHECK_EQ_INT(dev.ep_in[0].max_packet_size, 64); /* unknown MPS0 falls back to 64 */
    /* With alt 0 requested (missing), the class still comes from the first alt. */
    usb_desc_fill_device(&cfg, NULL, 8, &dev);
    CHECK_EQ_INT(dev.interfaces[0].bInterfaceClass, 0xff);
    CHECK(!dev.ep_in[1].present);
}

TEST(endpoint_info_decodes_max_packet_size)
{
    const usb_desc_endpoint_t plain = {.address = 0x81, .attributes = 0x02,
                                       .max_packet_size = 0x0200, .interval = 0};
    usbip_endpoint_info_t info = usb_desc_endpoint_info(&plain);
    CHECK(info.present);
    CHECK_EQ_INT(info.type, USBIP_XFER_BULK);
    CHECK_EQ_INT(info.max_packet_size, 512);
    CHECK_EQ_INT(info.mult, 1);
    const usb_desc_endpoint_t hb2 = {.attributes = 0x0d, .max_packet_size = 0x0c00 | 0x0400};
    info = usb_desc_endpoint_info(&hb2);
    CHECK_EQ_INT(info.type, USBIP_XFER_ISOCHRONOUS);
    CHECK_EQ_INT(info.max_packet_size, 1024);
    CHECK_EQ_INT(info.mult, 2);
    const usb_desc_endpoint_t reserved = {.attributes = 0x03, .max_packet_size = 0x1840};
    info = usb_desc_endpoint_info(&reserved);
    CHECK_EQ_INT(info.mult, 1); /* bits 11..12 == 3 is reserved */
    CHECK_EQ_INT(info.max_packet_size, 64);
}

TEST(device_descriptor_checks)
{
    usbip_device_record_t rec;
    memset(&rec, 0, sizeof rec);
    CHECK(usb_desc_device_record(CDC_MSC_DEVICE, 17, USBIP_SPEED_HIGH, &rec) ==
          USBIP_ERR_INVALID_ARG);
    uint8_t bad[18];
    memcpy(bad, CDC_MSC_DEVICE, sizeof bad);
    bad[1] = 0x02;
    CHECK(usb_desc_device_record(bad, sizeof bad, USBIP_SPEED_HIGH, &rec) == USBIP_ERR_INVALID_ARG);
    bad[1] = 0x01;
    bad[0] = 0x08;
    CHECK(usb_desc_device_record(bad, sizeof bad, USBIP_SPEED_HIGH, &rec) == USBIP_ERR_INVALID_ARG);
    CHECK_EQ_INT(usb_desc_max_packet_size0(bad, 7), 0);
}

TEST(string_descriptors_to_utf8)
{
    char out[32];
    const uint8_t ascii[] = {0x0a, 0x03, 'E', 0, 'S', 0, 'P', 0, '3', 0};
    CHECK_EQ_INT(usb_desc_string_utf8(ascii, sizeof ascii, out, sizeof out), 4);
    CHECK_STR(out, "ESP3");

    /* "Caf\u00e9 \U0001F600" with a control character and a lone surrogate. */
    const uint8_t mixed[] = {0x16, 0x03, 'C', 0, 'a', 0, 'f', 0, 0xe9, 0, 0x20, 0,
                             0x3d, 0xd8, 0x00, 0xde, 0x07, 0x00, 0x00, 0xdc, 'x', 0};
    CHECK_EQ_INT(usb_desc_string_utf8(mixed, sizeof mixed, out, sizeof out), 13);
    CHECK_STR(out, "Caf\xc3\xa9 \xf0\x9f\x98\x80??x");

    /* Truncation never splits a character. */
    char small[9];
    CHECK_EQ_INT(usb_desc_string_utf8(mixed, sizeof mixed, small, sizeof small), 6);
    CHECK_STR(small, "Caf\xc3\xa9 ");

    /* bLength beyond the buffer: only the buffer is read; odd byte dropped. */
    const uint8_t cut[] = {0x20, 0x03, 'A', 0, 'B'};
    CHECK_EQ_INT(usb_desc_string_utf8(cut, sizeof cut, out, sizeof out), 1);
    CHECK_STR(out, "A");

    const uint8_t not_string[] = {0x04, 0x02, 'A', 0};
    CHECK_EQ_INT(usb_desc_string_utf8(not_string, sizeof not_string, out, sizeof out), 0);
    CHECK_STR(out, "");
    CHECK_EQ_INT(usb_desc_string_utf8(NULL, 4, out, sizeof out), 0);
    CHECK_EQ_INT(usb_desc_string_utf8(ascii, sizeof ascii, out, 0), 0);
}

TEST_MAIN("usb_desc",
          TEST_ENTRY(composite_cdc_msc_device_view),
          TEST_ENTRY(audio_alt_settings_and_iso_endpoints),
          TEST_ENTRY(bad_headers_are_refused),
          TEST_ENTRY(zero_length_descriptor_stops_the_walk),
          TEST_ENTRY(descriptor_running_past_the_end),
          TEST_ENTRY(total_length_beyond_the_buffer_or_short_of_it),
          TEST_ENTRY(orphan_bad_and_duplicate_descriptors),
          TEST_ENTRY(short_interface_and_duplicate_endpoint),
          TEST_ENTRY(too_many_alt_settings_are_dropped),
          TEST_ENTRY(interface_without_alt_zero_defaults_to_its_first),
          TEST_ENTRY(endpoint_info_decodes_max_packet_size),
          TEST_ENTRY(device_descriptor_checks),
          TEST_ENTRY(string_descriptors_to_utf8))
