/* Unit tests of components/syslog: RFC 5424 frames with octet counting,
 * ESP console line parsing, line assembly, the per-connection queue. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_harness.h"
#include "usbip_syslog.h"

/* ---- helpers -------------------------------------------------------------- */

/* Check the octet-counting prefix of frame[0..len): "N SP" with N == the
 * bytes that follow. Returns the offset of SYSLOG-MSG, 0 if invalid. */
static size_t frame_body_offset(const char *frame, size_t len)
{
    size_t i = 0, n = 0;
    if (len == 0 || frame[0] < '1' || frame[0] > '9') {
        return 0;
    }
    while (i < len && frame[i] >= '0' && frame[i] <= '9') {
        n = n * 10 + (size_t)(frame[i] - '0');
        i++;
    }
    if (i >= len || frame[i] != ' ' || n != len - i - 1) {
        return 0;
    }
    return i + 1;
}

static usbip_syslog_record_t base_record(void)
{
    usbip_syslog_record_t r;
    memset(&r, 0, sizeof r);
    r.facility = USBIP_SYSLOG_FACILITY_LOCAL0;
    r.severity = USBIP_SYSLOG_SEV_ERR;
    r.has_time = true;
    r.time_ms = 1700000000123ULL;
    r.hostname = "usbip-p4";
    r.app_name = "usbip";
    r.procid = "main";
    r.msgid = "usb_host";
    r.msg = "device gone";
    r.msg_len = strlen(r.msg);
    return r;
}

static char g_frame[USBIP_SYSLOG_FRAME_MAX + 64];

static size_t frame_of(const usbip_syslog_record_t *r)
{
    size_t len = 0;
    usbip_err_t err = usbip_syslog_frame(r, g_frame, sizeof g_frame, &len);
    CHECK_EQ_INT(err, USBIP_OK);
    return len;
}

/* The n-th space-separated field of the SYSLOG-MSG in g_frame (0 = PRI+VERSION). */
static void header_field(size_t frame_len, int index, char *out, size_t out_len)
{
    size_t at = frame_body_offset(g_frame, frame_len);
    out[0] = '\0';
    if (at == 0) {
        return;
    }
    for (int f = 0; f < index; f++) {
        const char *sp = memchr(g_frame + at, ' ', frame_len - at);
        if (!sp) {
            return;
        }
        at = (size_t)(sp - g_frame) + 1;
    }
    size_t end = at;
    while (end < frame_len && g_frame[end] != ' ') {
        end++;
    }
    snprintf(out, out_len, "%.*s", (int)(end - at), g_frame + at);
}

/* ---- frames --------------------------------------------------------------- */

TEST(frame_exact_bytes)
{
    usbip_syslog_record_t r = base_record();
    size_t len = frame_of(&r);
    const char *want = "74 <131>1 2023-11-14T22:13:20.123Z usbip-p4 usbip main usb_host - device gone";
    CHECK_EQ_INT(len, strlen(want));
    CHECK(memcmp(g_frame, want, strlen(want)) == 0);
    CHECK_EQ_INT(g_frame[len], '\0'); /* NUL after it when there is room */
}

TEST(frame_nil_fields)
{
    usbip_syslog_record_t r;
    memset(&r, 0, sizeof r);
    r.facility = USBIP_SYSLOG_FACILITY_USER;
    r.severity = USBIP_SYSLOG_SEV_INFO;
    size_t len = frame_of(&r);
    CHECK_EQ_INT(len, 20);
    CHECK_STR(g_frame, "17 <14>1 - - - - - -");

    /* Empty strings are NILVALUE too; an empty MSG adds no trailing space. */
    r.hostname = "";
    r.app_name = "";
    r.procid = "";
    r.msgid = "";
    r.msg = "";
    len = frame_of(&r);
    CHECK_STR(g_frame, "17 <14>1 - - - - - -");
}

TEST(frame_pri_values)
{
    usbip_syslog_record_t r = base_record();
    for (unsigned facility = 0; facility <= 23; facility++) {
        for (unsigned sev = 0; sev <= 7; sev++) {
            r.facility = facility;
            r.severity = (usbip_syslog_severity_t)sev;
            size_t len = frame_of(&r);
            char want[16], got[16];
            snprintf(want, sizeof want, "<%u>1", facility * 8 + sev);
            header_field(len, 0, got, sizeof got);
            CHECK_STR(got, want);
        }
    }
    size_t len = 99;
    r.facility = 24;
    CHECK_EQ_INT(usbip_syslog_frame(&r, g_frame, sizeof g_frame, &len), USBIP_ERR_INVALID_ARG);
    CHECK_EQ_INT(len, 0);
    r.facility = USBIP_SYSLOG_FACILITY_LOCAL0;
    r.severity = (usbip_syslog_severity_t)8;
    CHECK_EQ_INT(usbip_syslog_frame(&r, g_frame, sizeof g_frame, &len), USBIP_ERR_INVALID_ARG);
    r.severity = USBIP_SYSLOG_SEV_INFO;
    CHECK_EQ_INT(usbip_syslog_frame(NULL, g_frame, sizeof g_frame, &len), USBIP_ERR_INVALID_ARG);
    CHECK_EQ_INT(usbip_syslog_frame(&r, NULL, sizeof g_frame, &len), USBIP_ERR_INVALID_ARG);
    CHECK_EQ_INT(usbip_syslog_frame(&r, g_frame, sizeof g_frame, NULL), USBIP_ERR_INVALID_ARG);
    /* local0.info = 134, user.err = 11, local0.debug = 135 */
    r.severity = USBIP_SYSLOG_SEV_INFO;
    len = frame_of(&r);
    CHECK(strncmp(g_frame + frame_body_offset(g_frame, len), "<134>1 ", 7) == 0);
}

TEST(severity_maps)
{
    CHECK_EQ_INT(usbip_syslog_severity_from_esp('E'), 3);
    CHECK_EQ_INT(usbip_syslog_severity_from_esp('W'), 4);
    CHECK_EQ_INT(usbip_syslog_severity_from_esp('I'), 6);
    CHECK_EQ_INT(usbip_syslog_severity_from_esp('D'), 7);
    CHECK_EQ_INT(usbip_syslog_severity_from_esp('V'), 7);
    CHECK_EQ_INT(usbip_syslog_severity_from_esp(0), 5);
    CHECK_EQ_INT(usbip_syslog_severity_from_esp('x'), 5);
    CHECK_EQ_INT(usbip_syslog_severity_from_usbip(USBIP_LOG_ERROR), 3);
    CHECK_EQ_INT(usbip_syslog_severity_from_usbip(USBIP_LOG_WARN), 4);
    CHECK_EQ_INT(usbip_syslog_severity_from_usbip(USBIP_LOG_INFO), 6);
    CHECK_EQ_INT(usbip_syslog_severity_from_usbip(USBIP_LOG_DEBUG), 7);
    CHECK_EQ_INT(usbip_syslog_severity_from_usbip((usbip_log_level_t)9), 5);
}

TEST(frame_header_field_limits)
{
    static char host[301], app[61], procid[201], msgid[41];
    memset(host, 'h', 300);
    memset(app, 'a', 60);
    memset(procid, 'p', 200);
    memset(msgid, 'm', 40);
    usbip_syslog_record_t r = base_record();
    r.hostname = host;
    r.app_name = app;
    r.procid = procid;
    r.msgid = msgid;
    size_t len = frame_of(&r);
    CHECK(frame_body_offset(g_frame, len) != 0);
    char field[400];
    header_field(len, 2, field, sizeof field);
    CHECK_EQ_INT(strlen(field), 255);
    header_field(len, 3, field, sizeof field);
    CHECK_EQ_INT(strlen(field), 48);
    header_field(len, 4, field, sizeof field);
    CHECK_EQ_INT(strlen(field), 128);
    header_field(len, 5, field, sizeof field);
    CHECK_EQ_INT(strlen(field), 32);
    header_field(len, 6, field, sizeof field);
    CHECK_STR(field, "-"); /* STRUCTURED-DATA */

    /* Only PRINTUSASCII in header fields: space, control, DEL, non-ASCII. */
    r = base_record();
    r.procid = "USB host";
    r.msgid = "t\tag\x7f\xc3\xa9";
    r.hostname = "a\nb";
    len = frame_of(&r);
    header_field(len, 2, field, sizeof field);
    CHECK_STR(field, "a_b");
    header_field(len, 4, field, sizeof field);
    CHECK_STR(field, "USB_host");
    header_field(len, 5, field, sizeof field);
    CHECK_STR(field, "t_ag___");
}

TEST(frame_header_max_fits)
{
    /* All fields at their maxima plus a full MSG fit USBIP_SYSLOG_FRAME_MAX. */
    static char host[256], app[49], procid[129], msgid[33], msg[600];
    memset(host, 'h', 255);
    memset(app, 'a', 48);
    memset(procid, 'p', 128);
    memset(msgid, 'm', 32);
    memset(msg, 'x', 599);
    usbip_syslog_record_t r = base_record();
    r.hostname = host;
    r.app_name = app;
    r.procid = procid;
    r.msgid = msgid;
    r.msg = msg;
    r.msg_len = 599;
    r.utf8_bom = true;
    static char buf[USBIP_SYSLOG_FRAME_MAX];
    size_t len = 0;
    CHECK_EQ_INT(usbip_syslog_frame(&r, buf, sizeof buf, &len), USBIP_OK);
    size_t at = frame_body_offset(buf, len);
    REQUIRE(at != 0);
    const char *bom = memchr(buf, 0xEF, len);
    REQUIRE(bom != NULL);
    CHECK_EQ_INT(len - (size_t)(bom + 3 - buf), USBIP_SYSLOG_MSG_MAX_DEFAULT);
}

TEST(timestamp_format)
{
    char out[32];
    CHECK(usbip_syslog_format_time(0, out, sizeof out));
    CHECK_STR(out, "1970-01-01T00:00:00.000Z");
    CHECK(usbip_syslog_format_time(1700000000123ULL, out, sizeof out));
    CHECK_STR(out, "2023-11-14T22:13:20.123Z");
    CHECK(usbip_syslog_format_time(1709251199999ULL, out, sizeof out));
    CHECK_STR(out, "2024-02-29T23:59:59.999Z");
    CHECK(usbip_syslog_format_time(951868800000ULL, out, sizeof out));
    CHECK_STR(out, "2000-03-01T00:00:00.000Z");
    CHECK(usbip_syslog_format_time(946684799000ULL, out, sizeof out));
    CHECK_STR(out, "1999-12-31T23:59:59.000Z");
    CHECK(usbip_syslog_format_time(4107499200000ULL, out, sizeof out));
    CHECK_STR(out, "2100-02-28T12:00:00.000Z");
    CHECK(usbip_syslog_format_time(253402300799999ULL, out, sizeof out));
    CHECK_STR(out, "9999-12-31T23:59:59.999Z");
    CHECK(!usbip_syslog_format_time(253402300800000ULL, out, sizeof out));
    CHECK_STR(out, "-");
    CHECK(!usbip_syslog_format_time(0, out, 24)); /* needs 25 with the NUL */
    CHECK_STR(out, "-");

    usbip_syslog_record_t r = base_record();
    r.has_time = false;
    size_t len = frame_of(&r);
    char field[40];
    header_field(len, 1, field, sizeof field);
    CHECK_STR(field, "-");
    r.has_time = true;
    r.time_ms = UINT64_MAX;
    len = frame_of(&r);
    header_field(len, 1, field, sizeof field);
    CHECK_STR(field, "-");
}

TEST(wall_clock)
{
    uint64_t ms = 0;
    /* Wall clock still near 1970 (no SNTP): no timestamp. */
    CHECK(!usbip_syslog_wall_ms(1000000, 2000000, 5000000, &ms));
    /* Set: event 1.5 s before now. */
    int64_t now_wall = 1700000000123000LL;
    CHECK(usbip_syslog_wall_ms(10000000, 11500000, now_wall, &ms));
    CHECK_EQ_INT(ms, 1700000000123ULL - 1500);
    /* An event stamped after the sample (raced) is still fine. */
    CHECK(usbip_syslog_wall_ms(12000000, 11500000, now_wall, &ms));
    CHECK_EQ_INT(ms, 1700000000123ULL + 500);
    CHECK(!usbip_syslog_wall_ms(0, 1, now_wall, NULL));
}

TEST(frame_truncates_msg_keeping_len_exact)
{
    static char msg[1000];
    memset(msg, 'a', sizeof msg);
    usbip_syslog_record_t r = base_record();
    r.msg = msg;
    r.msg_len = sizeof msg;
    size_t len = frame_of(&r);
    size_t at = frame_body_offset(g_frame, len);
    REQUIRE(at != 0);
    const char *sd = strstr(g_frame + at, " - ");
    REQUIRE(sd != NULL);
    CHECK_EQ_INT(len - (size_t)(sd + 3 - g_frame), USBIP_SYSLOG_MSG_MAX_DEFAULT);

    r.msg_max = 10;
    len = frame_of(&r);
    CHECK(frame_body_offset(g_frame, len) != 0);
    CHECK(len >= 10 && memcmp(g_frame + len - 11, " aaaaaaaaaa", 11) == 0);

    /* Every buffer size from "header only" up: the frame always fits, is
     * valid, and MSG-LEN counts the bytes exactly, across the 2- and 3-digit
     * MSG-LEN boundaries. */
    r.msg_max = 0;
    r.hostname = "h";
    r.app_name = NULL;
    r.procid = NULL;
    r.msgid = NULL;
    r.has_time = false;
    static char buf[300];
    int fitted = 0;
    for (size_t cap = 1; cap <= sizeof buf; cap++) {
        size_t flen = 12345;
        usbip_err_t err = usbip_syslog_frame(&r, buf, cap, &flen);
        if (err != USBIP_OK) {
            CHECK_EQ_INT(err, USBIP_ERR_INVALID_SIZE);
            CHECK_EQ_INT(flen, 0);
            CHECK(!fitted); /* once it fits, larger buffers fit too */
            continue;
        }
        fitted++;
        CHECK(flen <= cap);
        CHECK(frame_body_offset(buf, flen) != 0);
    }
    CHECK(fitted > 250);
}

TEST(frame_msg_len_digit_boundaries)
{
    /* SYSLOG-MSG of exactly 9, 10, 99, 100 bytes. Base "<14>1 - - - - - -"
     * is 17 bytes; " " + n message bytes make it 18 + n. */
    static char msg[200];
    memset(msg, 'z', sizeof msg);
    usbip_syslog_record_t r;
    memset(&r, 0, sizeof r);
    r.facility = 1;
    r.severity = USBIP_SYSLOG_SEV_INFO;
    r.msg = msg;
    size_t wants[] = {99, 100, 101, 999 - 0};
    for (size_t i = 0; i < 3; i++) {
        r.msg_len = wants[i] - 18;
        size_t len = frame_of(&r);
        char prefix[8];
        snprintf(prefix, sizeof prefix, "%zu ", wants[i]);
        CHECK(strncmp(g_frame, prefix, strlen(prefix)) == 0);
        CHECK_EQ_INT(len, strlen(prefix) + wants[i]);
    }
    /* Buffer of exactly the frame length: fits, no NUL written past it. */
    r.msg_len = 100 - 18;
    char exact[104];
    size_t len = 0;
    CHECK_EQ_INT(usbip_syslog_frame(&r, exact, sizeof exact, &len), USBIP_OK);
    CHECK_EQ_INT(len, 104);
    CHECK(frame_body_offset(exact, len) != 0);
}

TEST(frame_truncation_keeps_utf8_whole)
{
    usbip_syslog_record_t r = base_record();
    r.msg = "ab\xE2\x82\xAC"; /* "ab€" */
    r.msg_len = 5;
    r.msg_max = 4;
    size_t len = frame_of(&r);
    CHECK(len > 3 && memcmp(g_frame + len - 3, " ab", 3) == 0);
    r.msg_max = 5;
    len = frame_of(&r);
    CHECK(len > 6 && memcmp(g_frame + len - 6, " ab\xE2\x82\xAC", 6) == 0);
}

TEST(frame_too_small)
{
    usbip_syslog_record_t r = base_record();
    size_t len = 7;
    char small[20];
    CHECK_EQ_INT(usbip_syslog_frame(&r, small, sizeof small, &len), USBIP_ERR_INVALID_SIZE);
    CHECK_EQ_INT(len, 0);
    CHECK_EQ_INT(usbip_syslog_frame(&r, small, 0, &len), USBIP_ERR_INVALID_SIZE);
    CHECK_EQ_INT(usbip_syslog_frame(&r, small, 1, &len), USBIP_ERR_INVALID_SIZE);
}

TEST(frame_bom_and_empty_msg)
{
    usbip_syslog_record_t r = base_record();
    r.utf8_bom = true;
    r.msg = "caf\xC3\xA9";
    r.msg_len = 5;
    size_t len = frame_of(&r);
    CHECK(memcmp(g_frame + len - 9, " \xEF\xBB\xBF" "caf\xC3\xA9", 9) == 0);
    CHECK(frame_body_offset(g_frame, len) != 0);

    /* A MSG that sanitises to nothing: no " MSG" part, no BOM. */
    r.msg = "\x1b[0m\r\n";
    r.msg_len = strlen(r.msg);
    len = frame_of(&r);
    CHECK(len > 3 && memcmp(g_frame + len - 3, "t -", 3) == 0);
    r.msg = NULL;
    r.msg_len = 3;
    CHECK_EQ_INT(usbip_syslog_frame(&r, g_frame, sizeof g_frame, &len), USBIP_ERR_INVALID_ARG);
}

TEST(frame_strips_esp_colors)
{
    usbip_syslog_record_t r = base_record();
    r.msg = "\x1b[0;31mboom\x1b[0m\n";
    r.msg_len = strlen(r.msg);
    size_t len = frame_of(&r);
    CHECK(len > 5 && memcmp(g_frame + len - 5, " boom", 5) == 0);
    CHECK(memchr(g_frame, 0x1B, len) == NULL);
}

/* ---- sanitising ----------------------------------------------------------- */

static const char *sanitized(const char *in, size_t in_len, size_t out_max)
{
    static char out[256];
    size_t n = usbip_syslog_sanitize(in, in_len, out, out_max);
    out[n] = '\0';
    return out;
}
#define SAN(s) sanitized((s), sizeof(s) - 1, 200)

TEST(sanitize_escapes)
{
    CHECK_STR(SAN("\x1b[0;31mE (12) tag: hi\x1b[0m\n"), "E (12) tag: hi");
    CHECK_STR(SAN("a\x1b[1;33;44mb\x1b[0mc"), "abc");
    CHECK_STR(SAN("a\x1b[?25lb"), "ab");        /* private parameter bytes */
    CHECK_STR(SAN("a\x1b[1 qb"), "ab");          /* intermediate byte */
    CHECK_STR(SAN("x\x1b[0;3"), "x");            /* cut at the end */
    CHECK_STR(SAN("x\x1b"), "x");                /* lone ESC at the end */
    CHECK_STR(SAN("x\x1b" "Dy"), "xy");          /* two-byte escape */
    CHECK_STR(SAN("x\x1b" "cy"), "xcy");         /* ESC alone dropped */
    CHECK_STR(SAN("a\x1b[31\x01mb"), "a?mb");    /* malformed: stops at the bad byte */
}

TEST(sanitize_controls_and_newlines)
{
    CHECK_STR(SAN("a\tb\x01" "c\x7f"), "a b?c?");
    CHECK_STR(SAN("line1\r\nline2\n"), "line1 line2");
    CHECK_STR(SAN("\n\nx\n\n\ny\n"), "x y");
    CHECK_STR(SAN("trailing  \n"), "trailing  ");
    CHECK_STR(sanitized("a\0b", 3, 200), "a?b");
    CHECK_STR(SAN(""), "");
    CHECK_EQ_INT(usbip_syslog_sanitize(NULL, 3, (char[4]){0}, 4), 0);
}

TEST(sanitize_utf8)
{
    CHECK_STR(SAN("caf\xc3\xa9"), "caf\xc3\xa9");
    CHECK_STR(SAN("\xf0\x9f\x98\x80!"), "\xf0\x9f\x98\x80!");
    CHECK_STR(SAN("\xe2\x82\xac"), "\xe2\x82\xac");
    CHECK_STR(SAN("\xff\xc3("), "?\?(");
    CHECK_STR(SAN("\xed\xa0\x80"), "???");     /* surrogate */
    CHECK_STR(SAN("\xe0\x80\x80"), "???");     /* overlong */
    CHECK_STR(SAN("\xc0\xaf"), "??");          /* overlong 2-byte */
    CHECK_STR(SAN("\xf4\x90\x80\x80"), "????"); /* above U+10FFFF */
    CHECK_STR(SAN("a\xe2\x82"), "a??");        /* cut sequence */
}

TEST(sanitize_limits)
{
    CHECK_STR(sanitized("abcdef", 6, 3), "abc");
    CHECK_STR(sanitized("ab\xc3\xa9", 4, 3), "ab");  /* no half character */
    CHECK_STR(sanitized("ab\ncd", 5, 3), "ab");      /* no dangling space */
    CHECK_STR(sanitized("ab\ncd", 5, 4), "ab c");
    CHECK_STR(sanitized("abc", 3, 0), "");
}

/* ---- ESP lines ------------------------------------------------------------ */

static bool parse(const char *line, usbip_syslog_esp_line_t *out)
{
    return usbip_syslog_parse_esp_line(line, strlen(line), out);
}

static void check_parts(const usbip_syslog_esp_line_t *p, char level, const char *tag,
                        const char *text)
{
    CHECK_EQ_INT(p->level, level);
    if (tag) {
        REQUIRE(p->tag != NULL);
        CHECK_EQ_INT(p->tag_len, strlen(tag));
        CHECK(strncmp(p->tag, tag, p->tag_len) == 0);
    } else {
        CHECK(p->tag == NULL);
        CHECK_EQ_INT(p->tag_len, 0);
    }
    CHECK_EQ_INT(p->text_len, strlen(text));
    CHECK(strncmp(p->text, text, p->text_len) == 0);
}

TEST(parse_esp_plain)
{
    usbip_syslog_esp_line_t p;
    CHECK(parse("I (1234) usb: device 1-1 added\n", &p));
    check_parts(&p, 'I', "usb", "device 1-1 added");
    CHECK(parse("D (0) t: \n", &p));
    check_parts(&p, 'D', "t", "");
    CHECK(parse("V (7) x:y: z\r\n", &p));
    check_parts(&p, 'V', "x", "y: z");
}

TEST(parse_esp_colors)
{
    usbip_syslog_esp_line_t p;
    CHECK(parse("\x1b[0;31mE (99) event: #3 error: boom\x1b[0m\n", &p));
    check_parts(&p, 'E', "event", "#3 error: boom\x1b[0m");
    char clean[64];
    size_t n = usbip_syslog_sanitize(p.text, p.text_len, clean, sizeof clean - 1);
    clean[n] = '\0';
    CHECK_STR(clean, "#3 error: boom");
    CHECK(parse("\x1b[0;33mW (5) usbip: slow\x1b[0m\n", &p));
    check_parts(&p, 'W', "usbip", "slow\x1b[0m");
}

TEST(parse_esp_time_formats)
{
    usbip_syslog_esp_line_t p;
    CHECK(parse("W (12:34:56.789) wifi: hi", &p));
    check_parts(&p, 'W', "wifi", "hi");
    CHECK(parse("D (2025-01-02 03:04:05.678) tag: x\n", &p));
    check_parts(&p, 'D', "tag", "x");
    CHECK(parse("V tag: text without time", &p)); /* log V2 with timestamps off */
    check_parts(&p, 'V', "tag", "text without time");
    CHECK(parse("I (5) no tag here\n", &p)); /* V2 with a NULL tag */
    check_parts(&p, 'I', NULL, "no tag here");
    CHECK(parse("I (5)", &p));
    check_parts(&p, 'I', NULL, "");
}

TEST(parse_esp_blob_style)
{
    usbip_syslog_esp_line_t p;
    CHECK(parse("I (588) wifi:mode : sta (aa:bb:cc:dd:ee:ff)\n", &p));
    check_parts(&p, 'I', "wifi", "mode : sta (aa:bb:cc:dd:ee:ff)");
    CHECK(parse("I (1) USB host: port 1\n", &p));
    check_parts(&p, 'I', "USB host", "port 1");
}

TEST(parse_not_esp_lines)
{
    usbip_syslog_esp_line_t p;
    CHECK(!parse("hello world\n", &p));
    check_parts(&p, 0, NULL, "hello world");
    CHECK(!parse("I am here\n", &p)); /* no time and no tag */
    check_parts(&p, 0, NULL, "I am here");
    CHECK(!parse("Ex (1) t: x", &p));
    CHECK(!parse("E", &p));
    CHECK(!parse("I (123 unterminated: x", &p));
    CHECK(!parse("I (12)x: y", &p));
    CHECK(!parse("X (12) t: y", &p));
    CHECK(!parse("\x1b[0;32mplain\x1b[0m\n", &p));
    check_parts(&p, 0, NULL, "plain\x1b[0m");
    CHECK(!parse("", &p));
    check_parts(&p, 0, NULL, "");
    CHECK(!usbip_syslog_parse_esp_line(NULL, 0, &p));
    CHECK_EQ_INT(p.text_len, 0);
    CHECK(!usbip_syslog_parse_esp_line("I (1) t: x", 10, NULL));
    /* A tag longer than 48 characters is not taken as a tag. */
    CHECK(parse("I (1) this sentence is very long and has a colon way out here: x", &p));
    CHECK(p.tag == NULL);
}

static bool starts_line(const char *s)
{
    return usbip_syslog_looks_like_line_start(s, strlen(s));
}

TEST(line_start_detection)
{
    CHECK(starts_line("I (12) t: x"));
    CHECK(starts_line("\x1b[0;31mE (1"));
    CHECK(starts_line("W tag: x"));
    CHECK(!starts_line("\x1b[0m\n")); /* V2's closing piece */
    CHECK(!starts_line("hello"));
    CHECK(!starts_line("I am"));
    CHECK(!starts_line("I "));
    CHECK(!usbip_syslog_looks_like_line_start(NULL, 0));
}

/* ---- assembler ------------------------------------------------------------ */

TEST(assembler_joins_v2_pieces)
{
    char storage[128];
    usbip_syslog_assembler_t a;
    usbip_syslog_assembler_init(&a, storage, sizeof storage);
    CHECK(!usbip_syslog_assembler_pending(&a));
    const char *p1 = "\x1b[0;32mI (10) app: ";
    CHECK(!usbip_syslog_assembler_add(&a, p1, strlen(p1)));
    CHECK(usbip_syslog_assembler_pending(&a));
    CHECK(!usbip_syslog_assembler_add(&a, "hello", 5));
    CHECK(usbip_syslog_assembler_add(&a, "\x1b[0m\n", 5));
    size_t len = 0;
    const char *text = usbip_syslog_assembler_text(&a, &len);
    REQUIRE(text != NULL);
    usbip_syslog_esp_line_t p;
    CHECK(usbip_syslog_parse_esp_line(text, len, &p));
    check_parts(&p, 'I', "app", "hello\x1b[0m");
    usbip_syslog_assembler_clear(&a);
    CHECK(!usbip_syslog_assembler_pending(&a));
    CHECK(usbip_syslog_assembler_text(&a, &len) == NULL);
    CHECK_EQ_INT(len, 0);

    /* Log V1: one piece per line. */
    CHECK(usbip_syslog_assembler_add(&a, "E (1) t: x\n", 11));
    CHECK(!usbip_syslog_assembler_add(&a, NULL, 0));
}

TEST(assembler_truncates)
{
    char storage[8];
    usbip_syslog_assembler_t a;
    usbip_syslog_assembler_init(&a, storage, sizeof storage);
    CHECK(!usbip_syslog_assembler_add(&a, "0123456", 7));
    CHECK(usbip_syslog_assembler_add(&a, "789abc\n", 7)); /* newline seen though not stored */
    size_t len = 0;
    const char *text = usbip_syslog_assembler_text(&a, &len);
    CHECK_EQ_INT(len, 8);
    CHECK(text && memcmp(text, "01234567", 8) == 0);
    CHECK(a.truncated);
    usbip_syslog_assembler_clear(&a);
    CHECK(!a.truncated);
}

/* ---- queue ---------------------------------------------------------------- */

/* Drain everything, at most chunk bytes per "send". */
static size_t drain(usbip_syslog_queue_t *q, char *out, size_t out_cap, size_t chunk)
{
    size_t got = 0;
    for (;;) {
        const uint8_t *data;
        size_t n = usbip_syslog_queue_peek(q, &data);
        if (n == 0) {
            break;
        }
        if (n > chunk) {
            n = chunk;
        }
        if (got + n > out_cap) {
            break;
        }
        memcpy(out + got, data, n);
        got += n;
        usbip_syslog_queue_consume(q, n);
    }
    return got;
}

TEST(queue_init_checks)
{
    usbip_syslog_queue_t q;
    uint8_t buf[16];
    uint16_t lens[4];
    CHECK_EQ_INT(usbip_syslog_queue_init(NULL, buf, 16, lens, 4), USBIP_ERR_INVALID_ARG);
    CHECK_EQ_INT(usbip_syslog_queue_init(&q, NULL, 16, lens, 4), USBIP_ERR_INVALID_ARG);
    CHECK_EQ_INT(usbip_syslog_queue_init(&q, buf, 0, lens, 4), USBIP_ERR_INVALID_ARG);
    CHECK_EQ_INT(usbip_syslog_queue_init(&q, buf, 16, NULL, 4), USBIP_ERR_INVALID_ARG);
    CHECK_EQ_INT(usbip_syslog_queue_init(&q, buf, 16, lens, 1), USBIP_ERR_INVALID_ARG);
    CHECK_EQ_INT(usbip_syslog_queue_init(&q, buf, 16, lens, 2), USBIP_OK);
    const uint8_t *data = (const uint8_t *)"x";
    CHECK_EQ_INT(usbip_syslog_queue_peek(&q, &data), 0);
    CHECK(data == NULL);
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "x", 0), USBIP_ERR_INVALID_SIZE);
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, NULL, 1), USBIP_ERR_INVALID_ARG);
    CHECK_EQ_INT(usbip_syslog_queue_dropped(&q), 0);
}

TEST(queue_fifo_partial_sends)
{
    usbip_syslog_queue_t q;
    uint8_t buf[64];
    uint16_t lens[8];
    REQUIRE(usbip_syslog_queue_init(&q, buf, sizeof buf, lens, 8) == USBIP_OK);
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "5 aaaaa", 7), USBIP_OK);
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "3 bbb", 5), USBIP_OK);
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "1 c", 3), USBIP_OK);
    CHECK_EQ_INT(usbip_syslog_queue_frames(&q), 3);
    CHECK_EQ_INT(usbip_syslog_queue_bytes(&q), 15);
    char out[64];
    size_t got = drain(&q, out, sizeof out, 2); /* sends of 2 bytes: splits every frame */
    CHECK_EQ_INT(got, 15);
    CHECK(memcmp(out, "5 aaaaa3 bbb1 c", 15) == 0);
    CHECK_EQ_INT(usbip_syslog_queue_frames(&q), 0);
    CHECK_EQ_INT(usbip_syslog_queue_dropped(&q), 0);
    usbip_syslog_queue_consume(&q, 5); /* over-consume is harmless */
    CHECK_EQ_INT(usbip_syslog_queue_bytes(&q), 0);
}

TEST(queue_drops_oldest_whole_frames)
{
    usbip_syslog_queue_t q;
    uint8_t buf[32];
    uint16_t lens[8];
    REQUIRE(usbip_syslog_queue_init(&q, buf, sizeof buf, lens, 8) == USBIP_OK);
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "8 AAAAAAAA", 10), USBIP_OK);
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "8 BBBBBBBB", 10), USBIP_OK);
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "8 CCCCCCCC", 10), USBIP_OK);
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "8 DDDDDDDD", 10), USBIP_OK); /* A goes */
    CHECK_EQ_INT(usbip_syslog_queue_dropped(&q), 1);
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "18 EEEEEEEEEEEEEEEEEE", 21), USBIP_OK); /* B, C go */
    CHECK_EQ_INT(usbip_syslog_queue_dropped(&q), 3);
    char out[64];
    size_t got = drain(&q, out, sizeof out, 7);
    CHECK_EQ_INT(got, 31);
    CHECK(memcmp(out, "8 DDDDDDDD18 EEEEEEEEEEEEEEEEEE", 31) == 0);

    /* Too big for the ring: the new frame is dropped, the rest stays. */
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "1 x", 3), USBIP_OK);
    static const char big[33] = {0};
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, big, 33), USBIP_ERR_INVALID_SIZE);
    CHECK_EQ_INT(usbip_syslog_queue_dropped(&q), 4);
    CHECK_EQ_INT(usbip_syslog_queue_frames(&q), 1);
}

TEST(queue_keeps_partly_sent_head)
{
    usbip_syslog_queue_t q;
    uint8_t buf[32];
    uint16_t lens[8];
    REQUIRE(usbip_syslog_queue_init(&q, buf, sizeof buf, lens, 8) == USBIP_OK);
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "8 AAAAAAAA", 10), USBIP_OK);
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "8 BBBBBBBB", 10), USBIP_OK);
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "8 CCCCCCCC", 10), USBIP_OK);
    char out[64];
    size_t got = 0;
    const uint8_t *data;
    size_t n = usbip_syslog_queue_peek(&q, &data);
    REQUIRE(n >= 4);
    memcpy(out, data, 4); /* the connection took "8 AA" */
    got = 4;
    usbip_syslog_queue_consume(&q, 4);

    /* Needs 13 bytes, 6 free: B (not the partly sent A) is dropped. */
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "10 DDDDDDDDDD", 13), USBIP_OK);
    CHECK_EQ_INT(usbip_syslog_queue_dropped(&q), 1);
    got += drain(&q, out + got, sizeof out - got, 3);
    CHECK_EQ_INT(got, 33);
    CHECK(memcmp(out, "8 AAAAAAAA8 CCCCCCCC10 DDDDDDDDDD", 33) == 0);

    /* The unsent rest of the head (14 bytes) is longer than the frame
     * dropped behind it (5): the move overlaps, and wraps the ring end. */
    usbip_syslog_queue_clear(&q);
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "8 ........", 10), USBIP_OK);
    usbip_syslog_queue_consume(&q, 10); /* ring start moves to 0 again; force a wrap: */
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "18 ..................", 21), USBIP_OK);
    usbip_syslog_queue_consume(&q, 21);
    q.head = 20; /* empty queue; start the next frames near the end of the ring */
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "13 abcdefghijklm", 16), USBIP_OK);
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "2 xy", 4), USBIP_OK);
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "7 0123456", 9), USBIP_OK);
    usbip_syslog_queue_consume(&q, 2); /* "13" sent */
    uint32_t before = usbip_syslog_queue_dropped(&q);
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "5 ZZZZZ", 7), USBIP_OK); /* 3 free: drops "2 xy" */
    CHECK_EQ_INT(usbip_syslog_queue_dropped(&q), before + 1);
    got = drain(&q, out, sizeof out, 5);
    CHECK_EQ_INT(got, 14 + 9 + 7);
    CHECK(memcmp(out, " abcdefghijklm7 01234565 ZZZZZ", 30) == 0);
}

TEST(queue_partly_sent_head_alone)
{
    usbip_syslog_queue_t q;
    uint8_t buf[20];
    uint16_t lens[4];
    REQUIRE(usbip_syslog_queue_init(&q, buf, sizeof buf, lens, 4) == USBIP_OK);
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "13 AAAAAAAAAAAAA", 16), USBIP_OK);
    usbip_syslog_queue_consume(&q, 5);
    /* 11 unsent bytes of A; 9 free; B needs 15: B is refused, A stays. */
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "12 BBBBBBBBBBBB", 15), USBIP_ERR_NO_MEM);
    CHECK_EQ_INT(usbip_syslog_queue_dropped(&q), 1);
    CHECK_EQ_INT(usbip_syslog_queue_bytes(&q), 11);
    char out[32];
    size_t got = drain(&q, out, sizeof out, 100);
    CHECK_EQ_INT(got, 11);
    CHECK(memcmp(out, "AAAAAAAAAAA", 11) == 0);
    /* Once A is out, the same push fits. */
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "12 BBBBBBBBBBBB", 15), USBIP_OK);
}

TEST(queue_frame_count_limit)
{
    usbip_syslog_queue_t q;
    uint8_t buf[64];
    uint16_t lens[2];
    REQUIRE(usbip_syslog_queue_init(&q, buf, sizeof buf, lens, 2) == USBIP_OK);
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "1 a", 3), USBIP_OK);
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "1 b", 3), USBIP_OK);
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "1 c", 3), USBIP_OK);
    CHECK_EQ_INT(usbip_syslog_queue_dropped(&q), 1);
    usbip_syslog_queue_consume(&q, 1); /* "b" partly sent */
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "1 d", 3), USBIP_OK); /* drops c */
    CHECK_EQ_INT(usbip_syslog_queue_dropped(&q), 2);
    char out[16];
    size_t got = drain(&q, out, sizeof out, 1);
    CHECK_EQ_INT(got, 5);
    CHECK(memcmp(out, " b1 d", 5) == 0);
}

TEST(queue_discard_partial_after_reconnect)
{
    usbip_syslog_queue_t q;
    uint8_t buf[32];
    uint16_t lens[4];
    REQUIRE(usbip_syslog_queue_init(&q, buf, sizeof buf, lens, 4) == USBIP_OK);
    usbip_syslog_queue_discard_partial(&q); /* nothing partial: no-op */
    CHECK_EQ_INT(usbip_syslog_queue_dropped(&q), 0);
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "5 aaaaa", 7), USBIP_OK);
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "3 bbb", 5), USBIP_OK);
    usbip_syslog_queue_consume(&q, 3);
    usbip_syslog_queue_discard_partial(&q);
    CHECK_EQ_INT(usbip_syslog_queue_dropped(&q), 1);
    char out[16];
    size_t got = drain(&q, out, sizeof out, 100);
    CHECK_EQ_INT(got, 5);
    CHECK(memcmp(out, "3 bbb", 5) == 0);
    CHECK_EQ_INT(usbip_syslog_queue_push(&q, "1 c", 3), USBIP_OK);
    usbip_syslog_queue_clear(&q);
    CHECK_EQ_INT(usbip_syslog_queue_bytes(&q), 0);
    CHECK_EQ_INT(usbip_syslog_queue_frames(&q), 0);
}

/* The invariant under stress: real frames of random sizes, random partial
 * sends, wrap-around, drops and reconnects. Every connection's byte stream
 * must parse as whole octet-counted frames (a dead connection may end in a
 * partial one), sequence numbers only increase, and every frame is either
 * received whole or counted as dropped. */
static uint32_t rng_state = 12345;
static uint32_t rng(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return rng_state >> 8;
}

typedef struct {
    char buf[4096];
    size_t len;
    long last_seq;
    long whole;
    int bad;
} receiver_t;

#define STRESS_STEPS 20000
static size_t stress_mlen[STRESS_STEPS];

/* The frame for sequence number seq: deterministic, so the receiver can
 * compare every byte. */
static size_t stress_frame(long seq, char *frame, size_t cap)
{
    static char msg[400];
    size_t mlen = stress_mlen[seq];
    int head = snprintf(msg, sizeof msg, "seq=%ld ", seq);
    for (size_t k = 0; k < mlen; k++) {
        msg[head + (int)k] = (char)('a' + (seq + (long)k) % 26);
    }
    usbip_syslog_record_t r;
    memset(&r, 0, sizeof r);
    r.facility = USBIP_SYSLOG_FACILITY_LOCAL0;
    r.severity = USBIP_SYSLOG_SEV_INFO;
    r.hostname = "h";
    r.msg = msg;
    r.msg_len = (size_t)head + mlen;
    size_t flen = 0;
    if (usbip_syslog_frame(&r, frame, cap, &flen) != USBIP_OK) {
        return 0;
    }
    return flen;
}

/* Consume whole frames from the receiver's buffer. */
static void receiver_parse(receiver_t *r)
{
    size_t at = 0;
    while (at < r->len) {
        size_t i = at, n = 0;
        while (i < r->len && r->buf[i] >= '0' && r->buf[i] <= '9') {
            n = n * 10 + (size_t)(r->buf[i] - '0');
            i++;
        }
        if (i >= r->len) {
            break; /* prefix not complete yet */
        }
        if (i == at || r->buf[i] != ' ') {
            r->bad++;
            r->len = 0;
            return;
        }
        if (r->len - i - 1 < n) {
            break; /* body not complete yet */
        }
        const char *body = r->buf + i + 1;
        const char *seq_at = NULL;
        for (size_t k = 0; k + 4 <= n; k++) {
            if (memcmp(body + k, "seq=", 4) == 0) {
                seq_at = body + k + 4;
                break;
            }
        }
        long seq = seq_at ? strtol(seq_at, NULL, 10) : -1;
        if (!seq_at || seq <= r->last_seq || seq >= STRESS_STEPS) {
            r->bad++;
        } else {
            static char want[USBIP_SYSLOG_FRAME_MAX];
            size_t want_len = stress_frame(seq, want, sizeof want);
            if (want_len != i + 1 + n - at || memcmp(want, r->buf + at, want_len) != 0) {
                r->bad++; /* every byte of the frame as pushed */
            }
        }
        r->last_seq = seq;
        r->whole++;
        at = i + 1 + n;
    }
    memmove(r->buf, r->buf + at, r->len - at);
    r->len -= at;
}

TEST(queue_stress_invariant)
{
    usbip_syslog_queue_t q;
    static uint8_t buf[1000];
    static uint16_t lens[16];
    REQUIRE(usbip_syslog_queue_init(&q, buf, sizeof buf, lens, 16) == USBIP_OK);
    static receiver_t rx;
    memset(&rx, 0, sizeof rx);
    rx.last_seq = -1;
    long pushed = 0, refused = 0, whole_total = 0;
    static char frame[USBIP_SYSLOG_FRAME_MAX];
    for (int step = 0; step < STRESS_STEPS; step++) {
        uint32_t action = rng() % 10;
        if (action < 5) {
            stress_mlen[pushed] = rng() % 300;
            size_t flen = stress_frame(pushed, frame, sizeof frame);
            REQUIRE(flen > 0);
            if (usbip_syslog_queue_push(&q, frame, flen) != USBIP_OK) {
                refused++;
            }
            pushed++;
        } else if (action < 9) {
            const uint8_t *data;
            size_t n = usbip_syslog_queue_peek(&q, &data);
            if (n > 0) {
                size_t take = 1 + rng() % n;
                if (take > 200) {
                    take = 200;
                }
                REQUIRE(rx.len + take <= sizeof rx.buf);
                memcpy(rx.buf + rx.len, data, take);
                rx.len += take;
                usbip_syslog_queue_consume(&q, take);
                receiver_parse(&rx);
            }
        } else if (rng() % 20 == 0) {
            /* the connection dies; a new one starts on a frame boundary */
            usbip_syslog_queue_discard_partial(&q);
            whole_total += rx.whole;
            long last = rx.last_seq;
            memset(&rx, 0, sizeof rx);
            rx.last_seq = last;
        }
    }
    /* Drain the rest. */
    for (;;) {
        const uint8_t *data;
        size_t n = usbip_syslog_queue_peek(&q, &data);
        if (n == 0) {
            break;
        }
        REQUIRE(rx.len + n <= sizeof rx.buf);
        memcpy(rx.buf + rx.len, data, n);
        rx.len += n;
        usbip_syslog_queue_consume(&q, n);
        receiver_parse(&rx);
    }
    whole_total += rx.whole;
    CHECK_EQ_INT(rx.bad, 0);
    CHECK_EQ_INT(rx.len, 0);
    CHECK_EQ_INT(whole_total + (long)usbip_syslog_queue_dropped(&q), pushed);
    CHECK(usbip_syslog_queue_dropped(&q) > 0); /* the test did exercise drops */
    CHECK(refused <= (long)usbip_syslog_queue_dropped(&q));
    CHECK(pushed > 5000);
}

/* ---- backoff -------------------------------------------------------------- */

TEST(backoff_doubles_to_cap)
{
    usbip_syslog_backoff_t b;
    usbip_syslog_backoff_init(&b, 1000, 30000);
    uint32_t want[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        CHECK_EQ_INT(usbip_syslog_backoff_next(&b), want[i]);
    }
    usbip_syslog_backoff_reset(&b);
    CHECK_EQ_INT(usbip_syslog_backoff_next(&b), 1000);
    usbip_syslog_backoff_init(&b, 0, 0);
    CHECK_EQ_INT(usbip_syslog_backoff_next(&b), 1);
    CHECK_EQ_INT(usbip_syslog_backoff_next(&b), 1);
    usbip_syslog_backoff_init(&b, 3000000000u, 4000000000u); /* no overflow */
    CHECK_EQ_INT(usbip_syslog_backoff_next(&b), 3000000000u);
    CHECK_EQ_INT(usbip_syslog_backoff_next(&b), 4000000000u);
}

TEST_MAIN("syslog", TEST_ENTRY(frame_exact_bytes), TEST_ENTRY(frame_nil_fields),
          TEST_ENTRY(frame_pri_values), TEST_ENTRY(severity_maps),
          TEST_ENTRY(frame_header_field_limits), TEST_ENTRY(frame_header_max_fits),
          TEST_ENTRY(timestamp_format), TEST_ENTRY(wall_clock),
          TEST_ENTRY(frame_truncates_msg_keeping_len_exact),
          TEST_ENTRY(frame_msg_len_digit_boundaries), TEST_ENTRY(frame_truncation_keeps_utf8_whole),
          TEST_ENTRY(frame_too_small), TEST_ENTRY(frame_bom_and_empty_msg),
          TEST_ENTRY(frame_strips_esp_colors), TEST_ENTRY(sanitize_escapes),
          TEST_ENTRY(sanitize_controls_and_newlines), TEST_ENTRY(sanitize_utf8),
          TEST_ENTRY(sanitize_limits), TEST_ENTRY(parse_esp_plain), TEST_ENTRY(parse_esp_colors),
          TEST_ENTRY(parse_esp_time_formats), TEST_ENTRY(parse_esp_blob_style),
          TEST_ENTRY(parse_not_esp_lines), TEST_ENTRY(line_start_detection),
          TEST_ENTRY(assembler_joins_v2_pieces), TEST_ENTRY(assembler_truncates),
          TEST_ENTRY(queue_init_checks), TEST_ENTRY(queue_fifo_partial_sends),
          TEST_ENTRY(queue_drops_oldest_whole_frames), TEST_ENTRY(queue_keeps_partly_sent_head),
          TEST_ENTRY(queue_partly_sent_head_alone), TEST_ENTRY(queue_frame_count_limit),
          TEST_ENTRY(queue_discard_partial_after_reconnect), TEST_ENTRY(queue_stress_invariant),
          TEST_ENTRY(backoff_doubles_to_cap))
