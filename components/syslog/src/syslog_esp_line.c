/* ESP-IDF console lines: prefix parsing and joining lines printed in pieces. */
#include <string.h>

#include "usbip_syslog.h"

/* Longest tag we look for a ':' in; longer "tags" are taken as text. */
#define TAG_SEARCH_MAX 48
/* Longest "(...)" timestamp: "(YYYY-MM-DD hh:mm:ss.sss)" is 25. */
#define TIME_SEARCH_MAX 40

static bool is_level_letter(char c)
{
    return c == 'E' || c == 'W' || c == 'I' || c == 'D' || c == 'V';
}

/* Offset of the first byte after the ANSI CSI sequences at the start. */
static size_t skip_leading_escapes(const char *s, size_t len)
{
    size_t i = 0;
    while (len - i >= 2 && s[i] == 0x1B && s[i + 1] == '[') {
        size_t j = i + 2;
        while (j < len && ((unsigned char)s[j] >= 0x20 && (unsigned char)s[j] <= 0x3F)) {
            j++;
        }
        if (j < len && (unsigned char)s[j] >= 0x40 && (unsigned char)s[j] <= 0x7E) {
            i = j + 1;
        } else {
            break; /* not a complete sequence: leave it to the sanitiser */
        }
    }
    return i;
}

/* Index of the first ':' in s[from..from+TAG_SEARCH_MAX) before end or a
 * line break, or end when none. */
static size_t find_tag_colon(const char *s, size_t from, size_t end)
{
    size_t limit = end - from > TAG_SEARCH_MAX ? from + TAG_SEARCH_MAX : end;
    for (size_t i = from; i < limit; i++) {
        if (s[i] == ':') {
            return i;
        }
        if (s[i] == '\n' || s[i] == '\r') {
            break;
        }
    }
    return end;
}

bool usbip_syslog_parse_esp_line(const char *line, size_t len, usbip_syslog_esp_line_t *out)
{
    if (!out) {
        return false;
    }
    memset(out, 0, sizeof *out);
    if (!line) {
        out->text = "";
        return false;
    }
    size_t start = skip_leading_escapes(line, len);
    size_t end = len;
    while (end > start && (line[end - 1] == '\n' || line[end - 1] == '\r')) {
        end--;
    }
    out->text = line + start;
    out->text_len = end - start;

    if (end - start < 3 || !is_level_letter(line[start]) || line[start + 1] != ' ') {
        return false;
    }
    size_t pos = start + 2;
    bool has_time = false;
    if (line[pos] == '(') {
        size_t limit = end - pos > TIME_SEARCH_MAX ? pos + TIME_SEARCH_MAX : end;
        size_t close = pos + 1;
        while (close < limit && line[close] != ')' && line[close] != '(') {
            close++;
        }
        if (close >= limit || line[close] != ')') {
            return false;
        }
        pos = close + 1;
        if (pos < end) {
            if (line[pos] != ' ') {
                return false;
            }
            pos++;
        }
        has_time = true;
    }

    size_t colon = find_tag_colon(line, pos, end);
    if (colon < end && colon > pos) {
        out->tag = line + pos;
        out->tag_len = colon - pos;
        pos = colon + 1;
        if (pos < end && line[pos] == ' ') {
            pos++;
        }
    } else if (!has_time) {
        return false; /* "X something" without time or tag is ordinary text */
    }
    out->level = line[start];
    out->text = line + pos;
    out->text_len = end - pos;
    return true;
}

bool usbip_syslog_looks_like_line_start(const char *data, size_t len)
{
    if (!data) {
        return false;
    }
    size_t i = skip_leading_escapes(data, len);
    if (len - i < 3 || !is_level_letter(data[i]) || data[i + 1] != ' ') {
        return false;
    }
    if (data[i + 2] == '(') {
        return true;
    }
    size_t colon = find_tag_colon(data, i + 2, len);
    return colon < len && colon > i + 2;
}

void usbip_syslog_assembler_init(usbip_syslog_assembler_t *a, char *storage, size_t cap)
{
    if (!a) {
        return;
    }
    a->buf = storage;
    a->cap = storage ? cap : 0;
    a->len = 0;
    a->truncated = false;
}

bool usbip_syslog_assembler_add(usbip_syslog_assembler_t *a, const char *data, size_t len)
{
    if (!a || !data || len == 0) {
        return false;
    }
    size_t room = a->cap - a->len;
    size_t copy = len < room ? len : room;
    if (copy > 0) {
        memcpy(&a->buf[a->len], data, copy);
        a->len += copy;
    }
    if (copy < len) {
        a->truncated = true;
    }
    return data[len - 1] == '\n';
}

const char *usbip_syslog_assembler_text(const usbip_syslog_assembler_t *a, size_t *len)
{
    if (len) {
        *len = a ? a->len : 0;
    }
    return a && a->len > 0 ? a->buf : NULL;
}

bool usbip_syslog_assembler_pending(const usbip_syslog_assembler_t *a)
{
    return a && a->len > 0;
}

void usbip_syslog_assembler_clear(usbip_syslog_assembler_t *a)
{
    if (a) {
        a->len = 0;
        a->truncated = false;
    }
}
