/* Virtual HID boot keyboard: types a text once per session on interrupt IN
 * 0x81, one key-down report then one all-released report per character, at
 * most one report per KEY_REPORT_PERIOD_MS. */
#define _POSIX_C_SOURCE 200809L /* strdup */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdev_internal.h"

#define KEYBOARD_PID      0x5501u
#define KEYBOARD_EP_IN    0x81u
#define REPORT_SIZE       8u
#define KEY_REPORT_PERIOD_MS 10u
/* HS interrupt bInterval 4 = every 2^(4-1) microframes = 1 ms. */
#define KEYBOARD_INTERVAL 4u

/* HID class requests (HID 1.11 section 7.2). */
#define HID_GET_REPORT   0x01u
#define HID_GET_IDLE     0x02u
#define HID_GET_PROTOCOL 0x03u
#define HID_SET_REPORT   0x09u
#define HID_SET_IDLE     0x0au
#define HID_SET_PROTOCOL 0x0bu

#define HID_REPORT_INPUT  1u
#define HID_REPORT_OUTPUT 2u

#define HID_PROTOCOL_BOOT   0u
#define HID_PROTOCOL_REPORT 1u

#define MOD_LEFT_SHIFT 0x02u

/* The boot keyboard report descriptor of HID 1.11 appendix B.1: 8 modifier
 * bits, a reserved byte, 5 LED bits (+3 padding) out, 6 key codes in. */
static const uint8_t s_report_descriptor[] = {
    0x05, 0x01,       /* Usage Page (Generic Desktop) */
    0x09, 0x06,       /* Usage (Keyboard) */
    0xa1, 0x01,       /* Collection (Application) */
    0x05, 0x07,       /*   Usage Page (Keyboard/Keypad) */
    0x19, 0xe0,       /*   Usage Minimum (Left Control) */
    0x29, 0xe7,       /*   Usage Maximum (Right GUI) */
    0x15, 0x00,       /*   Logical Minimum (0) */
    0x25, 0x01,       /*   Logical Maximum (1) */
    0x75, 0x01,       /*   Report Size (1) */
    0x95, 0x08,       /*   Report Count (8) */
    0x81, 0x02,       /*   Input (Data, Variable, Absolute): modifiers */
    0x95, 0x01,       /*   Report Count (1) */
    0x75, 0x08,       /*   Report Size (8) */
    0x81, 0x01,       /*   Input (Constant): reserved byte */
    0x95, 0x05,       /*   Report Count (5) */
    0x75, 0x01,       /*   Report Size (1) */
    0x05, 0x08,       /*   Usage Page (LEDs) */
    0x19, 0x01,       /*   Usage Minimum (Num Lock) */
    0x29, 0x05,       /*   Usage Maximum (Kana) */
    0x91, 0x02,       /*   Output (Data, Variable, Absolute): LEDs */
    0x95, 0x01,       /*   Report Count (1) */
    0x75, 0x03,       /*   Report Size (3) */
    0x91, 0x01,       /*   Output (Constant): padding */
    0x95, 0x06,       /*   Report Count (6) */
    0x75, 0x08,       /*   Report Size (8) */
    0x15, 0x00,       /*   Logical Minimum (0) */
    0x25, 0x65,       /*   Logical Maximum (101) */
    0x05, 0x07,       /*   Usage Page (Keyboard/Keypad) */
    0x19, 0x00,       /*   Usage Minimum (0) */
    0x29, 0x65,       /*   Usage Maximum (101) */
    0x81, 0x00,       /*   Input (Data, Array): key codes */
    0xc0,             /* End Collection */
};

typedef struct {
    char *text;
    size_t text_len;
    size_t typed;           /* characters fully typed (pressed and released) */
    bool key_down;          /* the next report releases text[typed] */
    uint64_t next_report_ms;
    uint32_t delay_ms;      /* from import to the first key */
    uint8_t last_report[REPORT_SIZE];
    uint8_t leds;
    uint8_t protocol;
    uint8_t idle_rate;      /* 4 ms units, as SET_IDLE sent it */
    uint8_t hid_desc[9];    /* as embedded in the configuration descriptor */
} keyboard_t;

/* ---- text to key codes (HID usage table 10, US layout) ---- */

typedef struct {
    uint8_t modifier;
    uint8_t keycode;
} keystroke_t;

static bool punctuation_key(char c, keystroke_t *k)
{
    static const char plain[] = "-=[]\\;'`,./";
    static const char shifted[] = "_+{}|:\"~<>?";
    static const uint8_t codes[] = {0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x33,
                                    0x34, 0x35, 0x36, 0x37, 0x38};
    static const char shifted_digits[] = ")!@#$%^&*("; /* shift + 0..9 */
    const char *p;
    if (c != '\0' && (p = strchr(plain, c)) != NULL) {
        *k = (keystroke_t){0, codes[p - plain]};
        return true;
    }
    if (c != '\0' && (p = strchr(shifted, c)) != NULL) {
        *k = (keystroke_t){MOD_LEFT_SHIFT, codes[p - shifted]};
        return true;
    }
    if (c != '\0' && (p = strchr(shifted_digits, c)) != NULL) {
        int digit = (int)(p - shifted_digits);
        *k = (keystroke_t){MOD_LEFT_SHIFT, (uint8_t)(digit == 0 ? 0x27 : 0x1e + digit - 1)};
        return true;
    }
    return false;
}

static bool ascii_to_key(char c, keystroke_t *k)
{
    if (c >= 'a' && c <= 'z') {
        *k = (keystroke_t){0, (uint8_t)(0x04 + (c - 'a'))};
    } else if (c >= 'A' && c <= 'Z') {
        *k = (keystroke_t){MOD_LEFT_SHIFT, (uint8_t)(0x04 + (c - 'A'))};
    } else if (c >= '1' && c <= '9') {
        *k = (keystroke_t){0, (uint8_t)(0x1e + (c - '1'))};
    } else if (c == '0') {
        *k = (keystroke_t){0, 0x27};
    } else if (c == '\n') {
        *k = (keystroke_t){0, 0x28}; /* Enter */
    } else if (c == '\t') {
        *k = (keystroke_t){0, 0x2b};
    } else if (c == ' ') {
        *k = (keystroke_t){0, 0x2c};
    } else {
        return punctuation_key(c, k);
    }
    return true;
}

/* ---- typing ---- */

static bool typing_done(const keyboard_t *kb) { return kb->typed >= kb->text_len; }

/* The next report of the text: press text[typed], or release it. */
static void next_report(keyboard_t *kb, uint8_t report[REPORT_SIZE])
{
    memset(report, 0, REPORT_SIZE);
    if (!kb->key_down) {
        keystroke_t k = {0};
        ascii_to_key(kb->text[kb->typed], &k); /* validated at create */
        report[0] = k.modifier;
        report[2] = k.keycode;
        kb->key_down = true;
    } else {
        kb->key_down = false;
        kb->typed++;
    }
}

static vdev_step_t keyboard_step(vdev_t *dev, vdev_xfer_t *x, const usbip_endpoint_info_t *ep)
{
    keyboard_t *kb = dev->state;
    usbip_urb_t *urb = x->urb;
    if (urb->ep_address != KEYBOARD_EP_IN) {
        return VDEV_STEP_WAIT;
    }
    /* An idle keyboard holds the URB until the client cancels it. */
    if (typing_done(kb) || dev->now_ms < kb->next_report_ms) {
        return VDEV_STEP_WAIT;
    }
    next_report(kb, kb->last_report);
    kb->next_report_ms = dev->now_ms + KEY_REPORT_PERIOD_MS;
    urb->actual_length = vdev_reply(urb->buffer, urb->length, kb->last_report, REPORT_SIZE);
    if (typing_done(kb)) {
        vdev_log(dev, USBIP_LOG_INFO, "typed %zu characters", kb->text_len);
    }
    return VDEV_STEP_DONE;
}

static int keyboard_next_timeout(const vdev_t *dev, uint64_t now_ms)
{
    const keyboard_t *kb = dev->state;
    if (typing_done(kb) || !vdev_queue_has_urb(dev, KEYBOARD_EP_IN)) {
        return -1;
    }
    if (kb->next_report_ms <= now_ms) {
        return 0;
    }
    return (int)(kb->next_report_ms - now_ms);
}

/* ---- control ---- */

static void log_leds(vdev_t *dev, uint8_t leds)
{
    vdev_log(dev, USBIP_LOG_INFO, "LEDs num=%u caps=%u scroll=%u", leds & 1u, (leds >> 1) & 1u,
             (leds >> 2) & 1u);
}

static int hid_class_request(vdev_t *dev, const vdev_setup_t *s, uint8_t *data, uint32_t len,
                             uint32_t *actual)
{
    keyboard_t *kb = dev->state;
    uint8_t report_type = (uint8_t)(s->wValue >> 8);
    switch (s->bRequest) {
    case HID_GET_REPORT:
        if (report_type == HID_REPORT_INPUT) {
            *actual = vdev_reply(data, len, kb->last_report, REPORT_SIZE);
        } else if (report_type == HID_REPORT_OUTPUT) {
            *actual = vdev_reply(data, len, &kb->leds, 1);
        } else {
            return USBIP_EPIPE;
        }
        return 0;
    case HID_SET_REPORT:
        if (report_type != HID_REPORT_OUTPUT || len < 1) {
            return USBIP_EPIPE;
        }
        kb->leds = data[0];
        log_leds(dev, kb->leds);
        return 0;
    case HID_GET_IDLE:
        *actual = vdev_reply(data, len, &kb->idle_rate, 1);
        return 0;
    case HID_SET_IDLE:
        kb->idle_rate = (uint8_t)(s->wValue >> 8);
        return 0;
    case HID_GET_PROTOCOL:
        *actual = vdev_reply(data, len, &kb->protocol, 1);
        return 0;
    case HID_SET_PROTOCOL:
        if (s->wValue > HID_PROTOCOL_REPORT) {
            return USBIP_EPIPE;
        }
        kb->protocol = (uint8_t)s->wValue; /* both protocols use the boot report layout */
        return 0;
    default:
        return VDEV_CONTROL_UNHANDLED;
    }
}

/* GET_DESCRIPTOR addressed to the HID interface: report or HID descriptor. */
static int hid_get_descriptor(vdev_t *dev, const vdev_setup_t *s, uint8_t *data, uint32_t len,
                              uint32_t *actual)
{
    keyboard_t *kb = dev->state;
    switch (s->wValue >> 8) {
    case VDEV_DT_HID_REPORT:
        *actual = vdev_reply(data, len, s_report_descriptor, sizeof s_report_descriptor);
        return 0;
    case VDEV_DT_HID:
        *actual = vdev_reply(data, len, kb->hid_desc, sizeof kb->hid_desc);
        return 0;
    default:
        return USBIP_EPIPE;
    }
}

static int keyboard_control(vdev_t *dev, const vdev_setup_t *s, uint8_t *data, uint32_t len,
                            uint32_t *actual)
{
    if ((s->bmRequestType & USB_RECIP_MASK) != USB_RECIP_INTERFACE || s->wIndex != 0) {
        return VDEV_CONTROL_UNHANDLED;
    }
    uint8_t type = s->bmRequestType & USB_TYPE_MASK;
    if (type == USB_TYPE_STANDARD && s->bRequest == USB_REQ_GET_DESCRIPTOR) {
        return hid_get_descriptor(dev, s, data, len, actual);
    }
    if (type == USB_TYPE_CLASS) {
        return hid_class_request(dev, s, data, len, actual);
    }
    return VDEV_CONTROL_UNHANDLED;
}

/* ---- lifecycle ---- */

static void keyboard_reset(vdev_t *dev, vdev_reset_t why)
{
    keyboard_t *kb = dev->state;
    if (why == VDEV_RESET_SESSION) {
        kb->typed = 0; /* type the text again for the next client */
        kb->key_down = false;
        kb->next_report_ms = usbip_now_ms() + kb->delay_ms;
    } else if (kb->key_down) {
        /* A port reset releases the held key; its character already counted. */
        kb->key_down = false;
        kb->typed++;
    }
    memset(kb->last_report, 0, sizeof kb->last_report);
    kb->leds = 0;
    kb->protocol = HID_PROTOCOL_REPORT;
    kb->idle_rate = 0;
}

static usbip_err_t check_text(const char *text)
{
    for (size_t i = 0; text[i]; i++) {
        keystroke_t k;
        if (!ascii_to_key(text[i], &k)) {
            USBIP_LOGE("keyboard", "cannot type character 0x%02x at offset %zu of the text",
                       (unsigned char)text[i], i);
            return USBIP_ERR_INVALID_ARG;
        }
    }
    return USBIP_OK;
}

static void build_hid_descriptor(uint8_t out[9])
{
    out[0] = 9;
    out[1] = VDEV_DT_HID;
    vdev_put_le16(&out[2], 0x0111); /* bcdHID 1.11 */
    out[4] = 0;                     /* bCountryCode: not localized */
    out[5] = 1;                     /* one class descriptor: */
    out[6] = VDEV_DT_HID_REPORT;
    vdev_put_le16(&out[7], sizeof s_report_descriptor);
}

static usbip_err_t keyboard_create(vdev_t *dev, const vdev_config_t *cfg)
{
    const char *text = cfg->keyboard_text ? cfg->keyboard_text : VDEV_KEYBOARD_DEFAULT_TEXT;
    usbip_err_t err = check_text(text);
    if (err != USBIP_OK) {
        return err;
    }
    keyboard_t *kb = calloc(1, sizeof *kb);
    if (!kb || !(kb->text = strdup(text))) {
        free(kb);
        return USBIP_ERR_NO_MEM;
    }
    kb->text_len = strlen(text);
    kb->delay_ms = cfg->keyboard_delay_ms;
    dev->state = kb;
    build_hid_descriptor(kb->hid_desc);

    const vdev_identity_t id = {
        .vid = 0x1209, .pid = KEYBOARD_PID, .bcd_device = 0x0100,
        .manufacturer = VDEV_MANUFACTURER, .product = "Virtual Keyboard",
    };
    vdev_set_identity(dev, &id);

    vdev_config_desc_t c;
    vdev_desc_config_begin(&c, 1, 0, 100);
    vdev_desc_interface(&c, 0, 0, 0x03, 0x01, 0x01); /* HID, boot interface, keyboard */
    vdev_desc_append(&c, kb->hid_desc, sizeof kb->hid_desc);
    vdev_desc_endpoint(&c, KEYBOARD_EP_IN, USBIP_XFER_INTERRUPT, REPORT_SIZE, KEYBOARD_INTERVAL);
    vdev_desc_config_end(&c);
    return vdev_add_configuration(dev, &c);
}

static void keyboard_destroy(vdev_t *dev)
{
    keyboard_t *kb = dev->state;
    if (kb) {
        free(kb->text);
        free(kb);
        dev->state = NULL;
    }
}

static void keyboard_describe(const vdev_t *dev, char *buf, size_t len)
{
    const keyboard_t *kb = dev->state;
    snprintf(buf, len, "typed %zu/%zu chars, leds 0x%02x, %s protocol", kb->typed, kb->text_len,
             kb->leds, kb->protocol == HID_PROTOCOL_BOOT ? "boot" : "report");
}

const vdev_kind_ops_t vdev_keyboard_kind = {
    .name = "keyboard",
    .create = keyboard_create,
    .destroy = keyboard_destroy,
    .reset = keyboard_reset,
    .control = keyboard_control,
    .step = keyboard_step,
    .next_timeout_ms = keyboard_next_timeout,
    .describe = keyboard_describe,
};
