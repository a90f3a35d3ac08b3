/* IPv4/IPv6 address and CIDR text handling, without the socket library
 * (inet_pton and friends are missing or differ on the firmware's libc). */
#include <stdio.h>
#include <string.h>

#include "access_control.h"

#define IPV4_BYTES 4
#define IPV6_BYTES 16
#define IPV6_GROUPS 8

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static bool span_has(const char *s, size_t len, char wanted)
{
    return memchr(s, wanted, len) != NULL;
}

/* Exactly four decimal parts 0..255 separated by dots. Leading zeros are
 * refused: inet_aton and browsers read "010" as octal 8, and an allowlist
 * must not mean different things to different readers. */
static bool parse_ipv4_span(const char *s, size_t len, uint8_t out[IPV4_BYTES])
{
    size_t pos = 0;
    for (int part = 0; part < IPV4_BYTES; part++) {
        if (part > 0) {
            if (pos >= len || s[pos] != '.') {
                return false;
            }
            pos++;
        }
        size_t start = pos;
        unsigned value = 0;
        while (pos < len && is_digit(s[pos]) && pos - start < 3) {
            value = value * 10 + (unsigned)(s[pos] - '0');
            pos++;
        }
        size_t digits = pos - start;
        if (digits == 0 || value > 255 || (digits > 1 && s[start] == '0')) {
            return false;
        }
        out[part] = (uint8_t)value;
    }
    return pos == len;
}

/* Reads up to 5 hex digits at s[*pos] (5 so that an over-long group is seen
 * and refused); returns how many, value in *value. */
static size_t scan_hex_group(const char *s, size_t len, size_t *pos, unsigned *value)
{
    size_t digits = 0;
    *value = 0;
    while (*pos < len && digits < 5 && hex_value(s[*pos]) >= 0) {
        *value = (*value << 4) | (unsigned)hex_value(s[*pos]);
        (*pos)++;
        digits++;
    }
    return digits;
}

/* Spread the groups read so far over 16 bytes, filling the "::" gap (if
 * any, at group index gap) with zeros. */
static void expand_ipv6_groups(const uint16_t *groups, size_t ngroups, int gap,
                               uint8_t out[IPV6_BYTES])
{
    uint16_t full[IPV6_GROUPS] = {0};
    if (gap < 0) {
        memcpy(full, groups, sizeof full);
    } else {
        size_t head = (size_t)gap;
        size_t tail = ngroups - head;
        memcpy(full, groups, head * sizeof groups[0]);
        memcpy(full + IPV6_GROUPS - tail, groups + head, tail * sizeof groups[0]);
    }
    for (size_t i = 0; i < IPV6_GROUPS; i++) {
        out[2 * i] = (uint8_t)(full[i] >> 8);
        out[2 * i + 1] = (uint8_t)(full[i] & 0xFF);
    }
}

/* RFC 4291 section 2.2 text forms: x:x:x:x:x:x:x:x with at most one "::",
 * optionally ending in a dotted IPv4 address that stands for two groups. */
static bool parse_ipv6_span(const char *s, size_t len, uint8_t out[IPV6_BYTES])
{
    uint16_t groups[IPV6_GROUPS];
    size_t ngroups = 0;
    int gap = -1; /* group index where "::" stands */
    size_t pos = 0;

    if (len >= 2 && s[0] == ':' && s[1] == ':') {
        gap = 0;
        pos = 2;
    } else if (len > 0 && s[0] == ':') {
        return false;
    }
    while (pos < len) {
        size_t start = pos;
        unsigned value;
        size_t digits = scan_hex_group(s, len, &pos, &value);
        if (pos < len && s[pos] == '.') {
            uint8_t v4[IPV4_BYTES];
            if (ngroups > IPV6_GROUPS - 2 || !parse_ipv4_span(s + start, len - start, v4)) {
                return false;
            }
            groups[ngroups++] = (uint16_t)(v4[0] << 8 | v4[1]);
            groups[ngroups++] = (uint16_t)(v4[2] << 8 | v4[3]);
            pos = len;
            break;
        }
        if (digits == 0 || digits > 4 || ngroups == IPV6_GROUPS) {
            return false;
        }
        groups[ngroups++] = (uint16_t)value;
        if (pos == len) {
            break;
        }
        if (s[pos] != ':') {
            return false; /* junk, or a zone id such as "%eth0" */
        }
        pos++;
        if (pos < len && s[pos] == ':') {
            if (gap >= 0) {
                return false; /* a second "::" would be ambiguous */
            }
            gap = (int)ngroups;
            pos++;
        } else if (pos == len) {
            return false; /* a lone trailing ':' */
        }
    }
    /* "::" stands for at least one zero group. */
    if (gap >= 0 ? ngroups > IPV6_GROUPS - 1 : ngroups != IPV6_GROUPS) {
        return false;
    }
    expand_ipv6_groups(groups, ngroups, gap, out);
    return true;
}

/* Parse an address held in s[0..len-1]; *reason says why it failed. */
static usbip_err_t parse_addr_span(const char *s, size_t len, usbip_ip_addr_t *out,
                                   const char **reason)
{
    usbip_ip_addr_t addr;
    memset(&addr, 0, sizeof addr);
    if (len == 0) {
        *reason = "missing address";
        return USBIP_ERR_INVALID_ARG;
    }
    if (span_has(s, len, ':')) {
        addr.family = 6;
        if (!parse_ipv6_span(s, len, addr.bytes)) {
            *reason = "invalid IPv6 address";
            return USBIP_ERR_INVALID_ARG;
        }
    } else if (span_has(s, len, '.')) {
        addr.family = 4;
        if (!parse_ipv4_span(s, len, addr.bytes)) {
            *reason = "invalid IPv4 address";
            return USBIP_ERR_INVALID_ARG;
        }
    } else {
        *reason = "not an IPv4 or IPv6 address";
        return USBIP_ERR_INVALID_ARG;
    }
    *out = addr;
    return USBIP_OK;
}

usbip_err_t usbip_ip_addr_parse(const char *text, usbip_ip_addr_t *out)
{
    const char *reason;
    if (!text || !out) {
        return USBIP_ERR_INVALID_ARG;
    }
    return parse_addr_span(text, strlen(text), out, &reason);
}

void usbip_ip_addr_from_ipv4(uint32_t host_order, usbip_ip_addr_t *out)
{
    if (!out) {
        return;
    }
    memset(out, 0, sizeof *out);
    out->family = 4;
    out->bytes[0] = (uint8_t)(host_order >> 24);
    out->bytes[1] = (uint8_t)(host_order >> 16);
    out->bytes[2] = (uint8_t)(host_order >> 8);
    out->bytes[3] = (uint8_t)host_order;
}

static const uint8_t s_v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};

bool usbip_ip_addr_is_v4_mapped(const usbip_ip_addr_t *addr, usbip_ip_addr_t *ipv4)
{
    if (!addr || addr->family != 6 ||
        memcmp(addr->bytes, s_v4_mapped_prefix, sizeof s_v4_mapped_prefix) != 0) {
        return false;
    }
    if (ipv4) {
        usbip_ip_addr_t v4;
        memset(&v4, 0, sizeof v4);
        v4.family = 4;
        memcpy(v4.bytes, addr->bytes + 12, IPV4_BYTES);
        *ipv4 = v4;
    }
    return true;
}

static void ipv4_to_mapped(const usbip_ip_addr_t *v4, usbip_ip_addr_t *out)
{
    usbip_ip_addr_t mapped;
    memset(&mapped, 0, sizeof mapped);
    mapped.family = 6;
    memcpy(mapped.bytes, s_v4_mapped_prefix, sizeof s_v4_mapped_prefix);
    memcpy(mapped.bytes + 12, v4->bytes, IPV4_BYTES);
    *out = mapped;
}

bool usbip_ip_addr_equal(const usbip_ip_addr_t *a, const usbip_ip_addr_t *b)
{
    if (!a || !b || a->family != b->family) {
        return false;
    }
    size_t n = a->family == 4 ? IPV4_BYTES : IPV6_BYTES;
    return memcmp(a->bytes, b->bytes, n) == 0;
}

/* RFC 5952 section 4: find the longest run (first one on a tie) of two or
 * more zero groups; *start = 8 if there is none. */
static void longest_zero_run(const uint16_t groups[IPV6_GROUPS], size_t *start, size_t *run)
{
    *start = IPV6_GROUPS;
    *run = 0;
    for (size_t i = 0; i < IPV6_GROUPS;) {
        size_t j = i;
        while (j < IPV6_GROUPS && groups[j] == 0) {
            j++;
        }
        if (j - i >= 2 && j - i > *run) {
            *start = i;
            *run = j - i;
        }
        i = j > i ? j : i + 1;
    }
}

static void format_ipv6(const uint8_t bytes[IPV6_BYTES], char out[USBIP_IP_ADDR_TEXT_SIZE])
{
    uint16_t groups[IPV6_GROUPS];
    for (size_t i = 0; i < IPV6_GROUPS; i++) {
        groups[i] = (uint16_t)(bytes[2 * i] << 8 | bytes[2 * i + 1]);
    }
    size_t gap_start, gap_len;
    longest_zero_run(groups, &gap_start, &gap_len);

    size_t used = 0;
    for (size_t i = 0; i < IPV6_GROUPS;) {
        if (i == gap_start) {
            used += (size_t)snprintf(out + used, USBIP_IP_ADDR_TEXT_SIZE - used, "::");
            i += gap_len;
            continue;
        }
        bool after_gap = gap_len > 0 && i == gap_start + gap_len;
        used += (size_t)snprintf(out + used, USBIP_IP_ADDR_TEXT_SIZE - used, "%s%x",
                                 i > 0 && !after_gap ? ":" : "", groups[i]);
        i++;
    }
}

/* Format into a buffer big enough for any address, so callers' short
 * buffers only ever see a clean truncation. */
static void format_addr_full(const usbip_ip_addr_t *addr, char out[USBIP_IP_ADDR_TEXT_SIZE])
{
    usbip_ip_addr_t v4;
    if (!addr || (addr->family != 4 && addr->family != 6)) {
        snprintf(out, USBIP_IP_ADDR_TEXT_SIZE, "?");
    } else if (addr->family == 4) {
        snprintf(out, USBIP_IP_ADDR_TEXT_SIZE, "%u.%u.%u.%u", addr->bytes[0], addr->bytes[1],
                 addr->bytes[2], addr->bytes[3]);
    } else if (usbip_ip_addr_is_v4_mapped(addr, &v4)) {
        /* RFC 5952 section 5 */
        snprintf(out, USBIP_IP_ADDR_TEXT_SIZE, "::ffff:%u.%u.%u.%u", v4.bytes[0], v4.bytes[1],
                 v4.bytes[2], v4.bytes[3]);
    } else {
        format_ipv6(addr->bytes, out);
    }
}

void usbip_ip_addr_format(const usbip_ip_addr_t *addr, char *buf, size_t len)
{
    if (!buf || len == 0) {
        return;
    }
    char text[USBIP_IP_ADDR_TEXT_SIZE];
    format_addr_full(addr, text);
    snprintf(buf, len, "%s", text);
}

static unsigned max_prefix(uint8_t family) { return family == 4 ? 32 : 128; }

static void clear_host_bits(uint8_t bytes[IPV6_BYTES], unsigned prefix_len)
{
    for (unsigned i = 0; i < IPV6_BYTES; i++) {
        unsigned first_bit = i * 8;
        if (prefix_len <= first_bit) {
            bytes[i] = 0;
        } else if (prefix_len < first_bit + 8) {
            bytes[i] &= (uint8_t)(0xFF << (first_bit + 8 - prefix_len));
        }
    }
}

/* Decimal 0..999 without sign or leading zeros; false on anything else. */
static bool parse_prefix_span(const char *s, size_t len, unsigned *out)
{
    if (len == 0 || len > 3 || (len > 1 && s[0] == '0')) {
        return false;
    }
    unsigned value = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i])) {
            return false;
        }
        value = value * 10 + (unsigned)(s[i] - '0');
    }
    *out = value;
    return true;
}

usbip_err_t usbip_cidr_parse_reason(const char *text, usbip_cidr_t *out, const char **reason)
{
    const char *ignored;
    if (!reason) {
        reason = &ignored;
    }
    if (!text || !out) {
        *reason = "missing text or output";
        return USBIP_ERR_INVALID_ARG;
    }
    size_t len = strlen(text);
    const char *slash = memchr(text, '/', len);
    size_t addr_len = slash ? (size_t)(slash - text) : len;

    usbip_cidr_t cidr;
    memset(&cidr, 0, sizeof cidr);
    usbip_err_t err = parse_addr_span(text, addr_len, &cidr.addr, reason);
    if (err != USBIP_OK) {
        return err;
    }
    unsigned limit = max_prefix(cidr.addr.family);
    unsigned prefix = limit;
    if (slash && !parse_prefix_span(slash + 1, len - addr_len - 1, &prefix)) {
        *reason = "invalid prefix length";
        return USBIP_ERR_INVALID_ARG;
    }
    if (prefix > limit) {
        *reason = limit == 32 ? "prefix length above 32" : "prefix length above 128";
        return USBIP_ERR_INVALID_ARG;
    }
    cidr.prefix_len = (uint8_t)prefix;
    clear_host_bits(cidr.addr.bytes, prefix);
    *out = cidr;
    return USBIP_OK;
}

usbip_err_t usbip_cidr_parse(const char *text, usbip_cidr_t *out)
{
    return usbip_cidr_parse_reason(text, out, NULL);
}

void usbip_cidr_format(const usbip_cidr_t *cidr, char *buf, size_t len)
{
    if (!buf || len == 0) {
        return;
    }
    if (!cidr) {
        snprintf(buf, len, "?");
        return;
    }
    char text[USBIP_IP_ADDR_TEXT_SIZE];
    format_addr_full(&cidr->addr, text);
    if (cidr->prefix_len == max_prefix(cidr->addr.family)) {
        snprintf(buf, len, "%s", text);
    } else {
        snprintf(buf, len, "%s/%u", text, (unsigned)cidr->prefix_len);
    }
}

static bool prefix_matches(const uint8_t *net, const uint8_t *addr, unsigned prefix_len)
{
    unsigned whole_bytes = prefix_len / 8;
    unsigned rest_bits = prefix_len % 8;
    if (memcmp(net, addr, whole_bytes) != 0) {
        return false;
    }
    if (rest_bits == 0) {
        return true;
    }
    uint8_t mask = (uint8_t)(0xFF << (8 - rest_bits));
    return (net[whole_bytes] & mask) == (addr[whole_bytes] & mask);
}

bool usbip_cidr_contains(const usbip_cidr_t *cidr, const usbip_ip_addr_t *addr)
{
    if (!cidr || !addr) {
        return false;
    }
    uint8_t family = cidr->addr.family;
    if ((family != 4 && family != 6) || cidr->prefix_len > max_prefix(family)) {
        return false;
    }
    usbip_ip_addr_t peer = *addr;
    if (family == 4 && peer.family == 6) {
        if (!usbip_ip_addr_is_v4_mapped(addr, &peer)) {
            return false;
        }
    } else if (family == 6 && peer.family == 4) {
        ipv4_to_mapped(addr, &peer);
    } else if (peer.family != family) {
        return false;
    }
    return prefix_matches(cidr->addr.bytes, peer.bytes, cidr->prefix_len);
}
