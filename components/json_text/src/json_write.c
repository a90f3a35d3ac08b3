/* json_write: see json_write.h. */
#include "json_write.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_LIMIT (1024u * 1024u)

void json_write_init(json_writer_t *w, size_t limit)
{
    memset(w, 0, sizeof *w);
    w->limit = limit ? limit : DEFAULT_LIMIT;
    w->first[0] = true;
}

static void append(json_writer_t *w, const char *s, size_t n)
{
    if (w->failed) {
        return;
    }
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n + 1) {
            cap *= 2;
        }
        char *grown = cap <= w->limit + 1 ? realloc(w->buf, cap) : NULL;
        if (!grown) {
            w->failed = true;
            return;
        }
        w->buf = grown;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

/* A comma before every element but the first at this depth (a member's
 * value follows its key with no comma). */
static void begin_value(json_writer_t *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (!w->first[w->depth]) {
        append(w, ",", 1);
    }
    w->first[w->depth] = false;
}

static void open_nested(json_writer_t *w, char c)
{
    begin_value(w);
    if (w->depth + 1 >= JSON_WRITE_MAX_DEPTH) {
        w->failed = true;
        return;
    }
    append(w, &c, 1);
    w->first[++w->depth] = true;
}

static void close_nested(json_writer_t *w, char c)
{
    if (w->depth == 0) {
        w->failed = true;
        return;
    }
    w->depth--;
    append(w, &c, 1);
}

void json_write_object_begin(json_writer_t *w) { open_nested(w, '{'); }
void json_write_object_end(json_writer_t *w) { close_nested(w, '}'); }
void json_write_array_begin(json_writer_t *w) { open_nested(w, '['); }
void json_write_array_end(json_writer_t *w) { close_nested(w, ']'); }

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t min;
    if (s[0] < 0x80) {
        return 1;
    } else if ((s[0] & 0xe0) == 0xc0) {
        len = 2, min = 0x80;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3, min = 0x800;
    } else if ((s[0] & 0xf8) == 0xf0) {
        len = 4, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n) {
        return 0;
    }
    uint32_t cp = s[0] & (0x7fu >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return len;
}

static void append_escaped(json_writer_t *w, const char *s, size_t n)
{
    append(w, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        const unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            const char esc[2] = {'\\', (char)c};
            append(w, esc, 2);
            i++;
        } else if (c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            append(w, esc, 6);
            i++;
        } else {
            size_t len = utf8_sequence(p + i, n - i);
            if (len == 0) {
                append(w, "\xef\xbf\xbd", 3); /* U+FFFD for a byte that is not UTF-8 */
                i++;
            } else {
                append(w, s + i, len);
                i += len;
            }
        }
    }
    append(w, "\"", 1);
}

void json_write_key(json_writer_t *w, const char *key)
{
    begin_value(w);
    append_escaped(w, key, strlen(key));
    append(w, ":", 1);
    w->after_key = true;
}

void json_write_string_n(json_writer_t *w, const char *s, size_t n)
{
    begin_value(w);
    append_escaped(w, s, n);
}

void json_write_string(json_writer_t *w, const char *s)
{
    if (!s) {
        json_write_null(w);
        return;
    }
    json_write_string_n(w, s, strlen(s));
}

void json_write_int(json_writer_t *w, int64_t v)
{
    char text[24];
    int n = snprintf(text, sizeof text, "%" PRId64, v);
    begin_value(w);
    append(w, text, (size_t)n);
}

void json_write_uint(json_writer_t *w, uint64_t v)
{
    char text[24];
    int n = snprintf(text, sizeof text, "%" PRIu64, v);
    begin_value(w);
    append(w, text, (size_t)n);
}

void json_write_double(json_writer_t *w, double v, int decimals)
{
    char text[48];
    int n = snprintf(text, sizeof text, "%.*f", decimals, v);
    begin_value(w);
    if (n <= 0 || (size_t)n >= sizeof text || v != v) {
        append(w, "null", 4); /* NaN or too large: JSON has no such number */
    } else {
        append(w, text, (size_t)n);
    }
}

void json_write_bool(json_writer_t *w, bool v)
{
    begin_value(w);
    append(w, v ? "true" : "false", v ? 4 : 5);
}

void json_write_null(json_writer_t *w)
{
    begin_value(w);
    append(w, "null", 4);
}

void json_write_raw(json_writer_t *w, const char *text, size_t n)
{
    begin_value(w);
    append(w, text, n);
}

void json_write_kv_string(json_writer_t *w, const char *key, const char *s)
{
    json_write_key(w, key);
    json_write_string(w, s);
}

void json_write_kv_uint(json_writer_t *w, const char *key, uint64_t v)
{
    json_write_key(w, key);
    json_write_uint(w, v);
}

void json_write_kv_int(json_writer_t *w, const char *key, int64_t v)
{
    json_write_key(w, key);
    json_write_int(w, v);
}

void json_write_kv_bool(json_writer_t *w, const char *key, bool v)
{
    json_write_key(w, key);
    json_write_bool(w, v);
}

char *json_write_finish(json_writer_t *w, size_t *len)
{
    if (w->failed || w->depth != 0 || !w->buf) {
        json_write_discard(w);
        return NULL;
    }
    char *text = w->buf;
    if (len) {
        *len = w->len;
    }
    w->buf = NULL;
    return text;
}

void json_write_discard(json_writer_t *w)
{
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
    w->failed = true;
}
