/* 4: interrupt transfers: Gadget Zero interrupt IN/OUT, and the keyboard's
 * boot reports decoded back to the text it was configured with. */
#include <stdlib.h>
#include <string.h>

#include "integ_util.h"

#define KEYBOARD_TEXT "Hi, usb/IP 42!\tA-Z_ok?\n"

static void zero_interrupt(daemon_t *d)
{
    usbip_client_t *c = it_import(d, BUSID_ZERO, NULL);
    REQUIRE(c);
    enum { N = 8 };
    usbip_client_urb_t urbs[N];
    for (int i = 0; i < N; i++) {
        uint32_t len = i == N - 1 ? 200 : 64;
        urbs[i] = (usbip_client_urb_t){.ep = 2, .dir_in = true, .length = len, .interval = 1};
        urbs[i].buffer = it_malloc(len);
        REQUIRE(urbs[i].buffer);
        REQUIRE(it_submit(c, &urbs[i]));
    }
    for (int i = 0; i < N; i++) {
        usbip_client_urb_t *done = NULL;
        REQUIRE(it_wait(c, &done, NULL, NULL));
        CHECK(done == &urbs[i]);
        CHECK_EQ(done->status, 0);
        CHECK_EQ(done->actual_length, done->length);
        /* wMaxPacketSize 64: the pattern restarts every 64 bytes. */
        CHECK_EQ(it_pattern_mismatch(done->buffer, done->actual_length, 64), -1);
    }
    uint8_t out[128];
    it_fill_pattern(out, sizeof out, 64);
    uint32_t actual = 0;
    CHECK_EQ(it_transfer(c, 2, false, out, 64, &actual), 0);
    CHECK_EQ(actual, 64);
    CHECK_EQ(it_transfer(c, 2, false, out, 128, &actual), 0);
    CHECK_EQ(actual, 128);
    out[70] ^= 1;
    CHECK_EQ(it_transfer(c, 2, false, out, 128, &actual), -32);
    /* No interrupt endpoint 4 on this device. */
    CHECK_EQ(it_transfer(c, 4, true, out, 64, &actual), -32);
}

/* US layout, HID usage table 10: keycode -> character. */
static char decode_key(uint8_t modifier, uint8_t key)
{
    static const char plain[] = "-=[]\\#;'`,./";  /* 0x2d .. 0x38 */
    static const char shifted[] = "_+{}|~:\"~<>?";
    static const char digits_shifted[] = "!@#$%^&*()"; /* 0x1e .. 0x27 */
    bool shift = (modifier & 0x22) != 0;
    if (key >= 0x04 && key <= 0x1d) {
        return (char)((shift ? 'A' : 'a') + (key - 0x04));
    }
    if (key >= 0x1e && key <= 0x27) {
        return shift ? digits_shifted[key - 0x1e] : (key == 0x27 ? '0' : (char)('1' + key - 0x1e));
    }
    switch (key) {
    case 0x28: return '\n';
    case 0x2b: return '\t';
    case 0x2c: return ' ';
    default: break;
    }
    if (key >= 0x2d && key <= 0x38 && key != 0x32) {
        return shift ? shifted[key - 0x2d] : plain[key - 0x2d];
    }
    return '\0';
}

/* Read reports (several IN URBs in flight) until len characters are typed. */
static bool read_typed_text(usbip_client_t *c, char *text, size_t len)
{
    /* URBs left pending when this returns must outlive it. */
    enum { N = 4 };
    usbip_client_urb_t *urbs = it_malloc(N * sizeof *urbs);
    uint8_t *reports = it_malloc(N * 8);
    if (!urbs || !reports) {
        return false;
    }
    for (int i = 0; i < N; i++) {
        urbs[i] = (usbip_client_urb_t){.ep = 1, .dir_in = true, .buffer = reports + 8 * i,
                                       .length = 8};
        if (!it_submit(c, &urbs[i])) {
            return false;
        }
    }
    size_t typed = 0;
    bool key_down = false;
    int reports_seen = 0;
    while ((typed < len || key_down) && reports_seen < 1000) {
        usbip_client_urb_t *done = NULL;
        if (!it_wait(c, &done, NULL, NULL) || !done) {
            return false;
        }
        reports_seen++;
        const uint8_t *r = done->buffer;
        if (done->status != 0 || done->actual_length != 8) {
            it_fail(__FILE__, __LINE__, "report %d: status %d actual %u", reports_seen,
                    done->status, done->actual_length);
            return false;
        }
        static const uint8_t released[8] = {0};
        if (memcmp(r, released, 8) == 0) {
            if (!key_down) {
                it_fail(__FILE__, __LINE__, "report %d: release without a press", reports_seen);
                return false;
            }
            key_down = false;
        } else {
            /* Boot report: modifiers, reserved 0, one key, five unused keys. */
            bool shape_ok = r[1] == 0 && r[3] == 0 && r[4] == 0 && r[5] == 0 && r[6] == 0 &&
                            r[7] == 0 && (r[0] & ~0x22u) == 0;
            char ch = decode_key(r[0], r[2]);
            if (key_down || !shape_ok || ch == '\0') {
                it_fail(__FILE__, __LINE__,
                        "report %d: %02x %02x %02x %02x %02x %02x %02x %02x is not one key press",
                        reports_seen, r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
                return false;
            }
            text[typed++] = ch;
            key_down = true;
        }
        /* Keep N URBs queued while more reports must come (the last
         * release is the only one we still need once the text is in). */
        if (typed < len || key_down) {
            if (!it_submit(c, done)) {
                return false;
            }
        }
    }
    text[typed] = '\0';
    return typed == len && !key_down;
}

static void keyboard_types_text(daemon_t *d)
{
    usbip_client_t *c = it_import(d, BUSID_KEYBOARD, NULL);
    REQUIRE(c);
    uint32_t actual = 0;
    REQUIRE_EQ(it_control(c, 0x00, 9, 1, 0, NULL, 0, &actual), 0);
    size_t mark = daemon_log_mark(d);
    const size_t len = strlen(KEYBOARD_TEXT);
    char text[128];
    uint64_t start = it_now_ms();
    REQUIRE(read_typed_text(c, text, len));
    CHECK_STR(text, KEYBOARD_TEXT);
    /* At most one report per 10 ms: 2 reports per character. */
    CHECK(it_now_ms() - start >= (2 * len - 2) * 10 - 20);
    char expect[64];
    snprintf(expect, sizeof expect, "typed %zu characters", len);
    CHECK(daemon_log_wait(d, mark, expect, 2000));
    char out[512];
    REQUIRE(daemon_ctl_ok(d, "status 1-1", out, sizeof out));
    snprintf(expect, sizeof expect, "typed %zu/%zu chars", len, len);
    CHECK_CONTAINS(out, expect);
    /* Whatever is still in flight stays pending: the keyboard is idle. */
    CHECK(it_no_reply_within(c, 300));
    it_close(c);

    /* A new session types the text again from the start. */
    c = it_import(d, BUSID_KEYBOARD, NULL);
    REQUIRE(c);
    REQUIRE(read_typed_text(c, text, len));
    CHECK_STR(text, KEYBOARD_TEXT);
}

int main(int argc, char **argv)
{
    it_init(argc, argv, 150);
    it_run("zero_interrupt", zero_interrupt, NULL);
    static const char *const keyboard_flags[] = {
        "--device", "keyboard:text=" KEYBOARD_TEXT, "--device", "zero", NULL};
    it_run("keyboard_types_text", keyboard_types_text, keyboard_flags);
    return it_finish();
}
