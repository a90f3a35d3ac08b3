/* json_read: see json_read.h. Recursive descent, depth-limited. */
#include "json_read.h"

#include <string.h>

typedef struct {
    json_doc_t *doc;
    size_t pos;
} parser_t;

static bool fail(parser_t *p, const char *what)
{
    if (!p->doc->error) {
        p->doc->error = what;
        p->doc->error_at = p->pos;
    }
    return false;
}

static void skip_space(parser_t *p)
{
    while (p->pos < p->doc->len) {
        const char c = p->doc->text[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            return;
        }
        p->pos++;
    }
}

static int new_token(parser_t *p, json_type_t type)
{
    json_doc_t *d = p->doc;
    if (d->count >= d->max) {
        fail(p, "too many values");
        return -1;
    }
    json_token_t *t = &d->tokens[d->count];
    memset(t, 0, sizeof *t);
    t->type = type;
    t->start = (uint32_t)p->pos;
    return (int)d->count++;
}

static bool parse_value(parser_t *p, int depth);

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool parse_string(parser_t *p)
{
    p->pos++; /* opening quote */
    int tok = new_token(p, JSON_STRING);
    if (tok < 0) {
        return false;
    }
    const char *s = p->doc->text;
    while (p->pos < p->doc->len) {
        const unsigned char c = (unsigned char)s[p->pos];
        if (c == '"') {
            p->doc->tokens[tok].end = (uint32_t)p->pos;
            p->doc->tokens[tok].next = (uint32_t)p->doc->count;
            p->pos++;
            return true;
        }
        if (c < 0x20) {
            return fail(p, "control character in a string");
        }
        if (c == '\\') {
            if (++p->pos >= p->doc->len) {
                break;
            }
            const char e = s[p->pos];
            if (e == 'u') {
                for (int i = 1; i <= 4; i++) {
                    if (p->pos + (size_t)i >= p->doc->len || !is_hex(s[p->pos + (size_t)i])) {
                        return fail(p, "bad \\u escape");
                    }
                }
                p->pos += 4;
            } else if (!strchr("\"\\/bfnrt", e) || e == '\0') {
                return fail(p, "bad escape");
            }
        }
        p->pos++;
    }
    return fail(p, "unterminated string");
}

static bool parse_number(parser_t *p)
{
    int tok = new_token(p, JSON_NUMBER);
    if (tok < 0) {
        return false;
    }
    const char *s = p->doc->text;
    const size_t n = p->doc->len;
    size_t i = p->pos;
    if (i < n && s[i] == '-') {
        i++;
    }
    if (i < n && s[i] == '0') {
        i++;
    } else if (i < n && s[i] >= '1' && s[i] <= '9') {
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
    } else {
        return fail(p, "bad number");
    }
    if (i < n && s[i] == '.') {
        size_t digits = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
        if (i == digits) {
            return fail(p, "bad number");
        }
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) {
            i++;
        }
        size_t digits = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
        if (i == digits) {
            return fail(p, "bad number");
        }
    }
    p->pos = i;
    p->doc->tokens[tok].end = (uint32_t)i;
    p->doc->tokens[tok].next = (uint32_t)p->doc->count;
    return true;
}

static bool parse_literal(parser_t *p, const char *word, json_type_t type)
{
    const size_t n = strlen(word);
    if (p->pos + n > p->doc->len || memcmp(p->doc->text + p->pos, word, n) != 0) {
        return fail(p, "unexpected character");
    }
    int tok = new_token(p, type);
    if (tok < 0) {
        return false;
    }
    p->pos += n;
    p->doc->tokens[tok].end = (uint32_t)p->pos;
    p->doc->tokens[tok].next = (uint32_t)p->doc->count;
    return true;
}

/* Object or array: members/elements separated by commas. */
static bool parse_container(parser_t *p, int depth, bool object)
{
    if (depth >= JSON_READ_MAX_DEPTH) {
        return fail(p, "nested too deep");
    }
    int tok = new_token(p, object ? JSON_OBJECT : JSON_ARRAY);
    if (tok < 0) {
        return false;
    }
    const char close = object ? '}' : ']';
    p->pos++;
    skip_space(p);
    uint32_t children = 0;
    if (p->pos < p->doc->len && p->doc->text[p->pos] == close) {
        p->pos++;
    } else {
        for (;;) {
            skip_space(p);
            if (object) {
                if (p->pos >= p->doc->len || p->doc->text[p->pos] != '"') {
                    return fail(p, "expected a member name");
                }
                if (!parse_string(p)) {
                    return false;
                }
                skip_space(p);
                if (p->pos >= p->doc->len || p->doc->text[p->pos] != ':') {
                    return fail(p, "expected ':'");
                }
                p->pos++;
            }
            if (!parse_value(p, depth + 1)) {
                return false;
            }
            children++;
            skip_space(p);
            if (p->pos < p->doc->len && p->doc->text[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->pos < p->doc->len && p->doc->text[p->pos] == close) {
                p->pos++;
                break;
            }
            return fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    json_token_t *t = &p->doc->tokens[tok];
    t->end = (uint32_t)p->pos;
    t->children = children;
    t->next = (uint32_t)p->doc->count;
    return true;
}

static bool parse_value(parser_t *p, int depth)
{
    skip_space(p);
    if (p->pos >= p->doc->len) {
        return fail(p, "unexpected end");
    }
    switch (p->doc->text[p->pos]) {
    case '{': return parse_container(p, depth, true);
    case '[': return parse_container(p, depth, false);
    case '"': return parse_string(p);
    case 't': return parse_literal(p, "true", JSON_TRUE);
    case 'f': return parse_literal(p, "false", JSON_FALSE);
    case 'n': return parse_literal(p, "null", JSON_NULL);
    default: return parse_number(p);
    }
}

bool json_read_parse(json_doc_t *doc, const char *text, size_t len, json_token_t *tokens,
                     size_t max)
{
    memset(doc, 0, sizeof *doc);
    doc->text = text;
    doc->len = len;
    doc->tokens = tokens;
    doc->max = max;
    parser_t p = {.doc = doc};
    if (len > UINT32_MAX / 2) {
        return fail(&p, "text too long");
    }
    if (!parse_value(&p, 0)) {
        return false;
    }
    skip_space(&p);
    if (p.pos != len) {
        return fail(&p, "text after the value");
    }
    return true;
}

static bool valid(const json_doc_t *doc, int tok, json_type_t type)
{
    return tok >= 0 && (size_t)tok < doc->count && doc->tokens[tok].type == type;
}

int json_read_member_key(const json_doc_t *doc, int obj, uint32_t i)
{
    if (!valid(doc, obj, JSON_OBJECT) || i >= doc->tokens[obj].children) {
        return -1;
    }
    uint32_t k = (uint32_t)obj + 1;
    for (uint32_t n = 0; n < i; n++) {
        k = doc->tokens[k + 1].next; /* past the key and its value */
    }
    return (int)k;
}

int json_read_member(const json_doc_t *doc, int obj, const char *key)
{
    if (!valid(doc, obj, JSON_OBJECT)) {
        return -1;
    }
    for (uint32_t i = 0; i < doc->tokens[obj].children; i++) {
        int k = json_read_member_key(doc, obj, i);
        if (json_read_string_is(doc, k, key)) {
            return k + 1;
        }
    }
    return -1;
}

int json_read_element(const json_doc_t *doc, int arr, uint32_t i)
{
    if (!valid(doc, arr, JSON_ARRAY) || i >= doc->tokens[arr].children) {
        return -1;
    }
    uint32_t k = (uint32_t)arr + 1;
    for (uint32_t n = 0; n < i; n++) {
        k = doc->tokens[k].next;
    }
    return (int)k;
}

bool json_read_string_is(const json_doc_t *doc, int tok, const char *s)
{
    if (!valid(doc, tok, JSON_STRING)) {
        return false;
    }
    const json_token_t *t = &doc->tokens[tok];
    const size_t n = t->end - t->start;
    return strlen(s) == n && memcmp(doc->text + t->start, s, n) == 0;
}

static unsigned hex_value(char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}

static size_t put_utf8(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static uint32_t read_hex4(const char *s)
{
    return (hex_value(s[0]) << 12) | (hex_value(s[1]) << 8) | (hex_value(s[2]) << 4) |
           hex_value(s[3]);
}

bool json_read_string(const json_doc_t *doc, int tok, char *out, size_t out_len)
{
    if (!valid(doc, tok, JSON_STRING) || out_len == 0) {
        return false;
    }
    const json_token_t *t = &doc->tokens[tok];
    const char *s = doc->text;
    size_t o = 0;
    for (uint32_t i = t->start; i < t->end;) {
        char buf[4];
        size_t n = 1;
        if (s[i] != '\\') {
            buf[0] = s[i++];
        } else {
            const char e = s[i + 1];
            i += 2;
            if (e == 'u') {
                uint32_t cp = read_hex4(s + i);
                i += 4;
                if (cp >= 0xd800 && cp <= 0xdbff && i + 6 <= t->end && s[i] == '\\' &&
                    s[i + 1] == 'u') {
                    const uint32_t low = read_hex4(s + i + 2);
                    if (low >= 0xdc00 && low <= 0xdfff) {
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
                        i += 6;
                    }
                }
                if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff)) {
                    return false; /* a NUL or a lone surrogate */
                }
                n = put_utf8(cp, buf);
            } else {
                static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
                buf[0] = to[strchr(from, e) - from];
            }
        }
        if (o + n >= out_len) {
            return false;
        }
        memcpy(out + o, buf, n);
        o += n;
    }
    out[o] = '\0';
    return true;
}

bool json_read_uint(const json_doc_t *doc, int tok, uint64_t max, uint64_t *out)
{
    if (!valid(doc, tok, JSON_NUMBER)) {
        return false;
    }
    const json_token_t *t = &doc->tokens[tok];
    uint64_t v = 0;
    for (uint32_t i = t->start; i < t->end; i++) {
        const char c = doc->text[i];
        if (c < '0' || c > '9') {
            return false; /* negative, fraction or exponent */
        }
        if ((uint64_t)(c - '0') > max || v > (max - (uint64_t)(c - '0')) / 10) {
            return false;
        }
        v = v * 10 + (uint64_t)(c - '0');
    }
    *out = v;
    return true;
}

bool json_read_bool(const json_doc_t *doc, int tok, bool *out)
{
    if (tok < 0 || (size_t)tok >= doc->count) {
        return false;
    }
    if (doc->tokens[tok].type == JSON_TRUE || doc->tokens[tok].type == JSON_FALSE) {
        *out = doc->tokens[tok].type == JSON_TRUE;
        return true;
    }
    return false;
}
