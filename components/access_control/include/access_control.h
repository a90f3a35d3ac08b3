/*
 * access_control: who may talk to the server. In open mode everyone may; in
 * closed mode only peers inside an allowlist of IPv4/IPv6 addresses and CIDR
 * ranges. Also the address and CIDR parsing/formatting the allowlist needs,
 * written without the socket library so it runs unchanged on the firmware.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "usbip_err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest text usbip_ip_addr_format / usbip_cidr_format produce, with NUL:
 * "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128" fits. */
#define USBIP_IP_ADDR_TEXT_SIZE 46
#define USBIP_CIDR_TEXT_SIZE 50

typedef struct {
    uint8_t family;    /* 4 or 6 */
    uint8_t bytes[16]; /* network order; IPv4 in bytes[0..3], the rest zero */
} usbip_ip_addr_t;

/* Dotted-quad IPv4 ("192.168.1.7"; no leading zeros, which other parsers read
 * as octal) or IPv6 with "::" compression and an optional embedded IPv4 tail
 * ("::ffff:1.2.3.4"); no zone ids. INVALID_ARG on anything else. */
usbip_err_t usbip_ip_addr_parse(const char *text, usbip_ip_addr_t *out);

/* Canonical text: IPv4 dotted; IPv6 per RFC 5952 (lowercase, longest run of
 * two or more zero groups compressed, IPv4-mapped as "::ffff:a.b.c.d").
 * Truncated to len (always NUL-terminated when len > 0). */
void usbip_ip_addr_format(const usbip_ip_addr_t *addr, char *buf, size_t len);

/* addr = a.b.c.d given as the host-order integer 0xaabbccdd. */
void usbip_ip_addr_from_ipv4(uint32_t host_order, usbip_ip_addr_t *out);

/* True for ::ffff:a.b.c.d; *ipv4 (if not NULL) receives the IPv4 address. */
bool usbip_ip_addr_is_v4_mapped(const usbip_ip_addr_t *addr, usbip_ip_addr_t *ipv4);

bool usbip_ip_addr_equal(const usbip_ip_addr_t *a, const usbip_ip_addr_t *b);

typedef struct {
    usbip_ip_addr_t addr; /* bits beyond prefix_len are zero */
    uint8_t prefix_len;   /* 0..32 for IPv4, 0..128 for IPv6 */
} usbip_cidr_t;

/* "10.0.0.0/8", "192.168.1.7" (= /32), "::1" (= /128), "fe80::/10". A prefix
 * beyond 32/128, a missing or non-decimal prefix, or junk is INVALID_ARG.
 * Host bits beyond the prefix are cleared ("10.1.2.3/8" -> 10.0.0.0/8). */
usbip_err_t usbip_cidr_parse(const char *text, usbip_cidr_t *out);

/* Like usbip_cidr_parse, and on failure *reason (if not NULL) says why, e.g.
 * "invalid IPv4 address" or "prefix length above 32". */
usbip_err_t usbip_cidr_parse_reason(const char *text, usbip_cidr_t *out, const char **reason);

/* "10.0.0.0/8"; single hosts (/32, /128) without the suffix. */
void usbip_cidr_format(const usbip_cidr_t *cidr, char *buf, size_t len);

/* True if addr lies inside cidr. An IPv4-mapped IPv6 address (::ffff:a.b.c.d)
 * matches IPv4 ranges, and an IPv4 address matches IPv6 ranges as its mapped
 * form (so ::ffff:0:0/96 covers all IPv4), because a dual-stack socket may
 * report the same client either way. */
bool usbip_cidr_contains(const usbip_cidr_t *cidr, const usbip_ip_addr_t *addr);

typedef enum {
    USBIP_ACCESS_OPEN = 0,
    USBIP_ACCESS_CLOSED = 1,
} usbip_access_mode_t;

#define USBIP_ACL_MAX_ENTRIES 32

typedef struct {
    usbip_access_mode_t mode;
    size_t count;
    usbip_cidr_t entries[USBIP_ACL_MAX_ENTRIES];
} usbip_acl_t;

/* Open mode, empty list. */
void usbip_acl_init(usbip_acl_t *acl);

/* Open: everyone. Closed: only peers inside an entry (loopback is not
 * special: add 127.0.0.1 / ::1 to allow it). */
bool usbip_acl_allows(const usbip_acl_t *acl, const usbip_ip_addr_t *peer);

/* Replace the allowlist from text such as "10.0.0.0/8, ::1,192.168.1.5"
 * (entries separated by commas and/or whitespace; "" = empty list; exact
 * duplicates are kept once). The mode is not touched. On error the acl is
 * unchanged and errbuf (if not NULL) names the entry and the reason, e.g.
 * `allowlist entry "10.0.0.300/8": invalid IPv4 address`. More than
 * USBIP_ACL_MAX_ENTRIES entries is INVALID_SIZE. */
usbip_err_t usbip_acl_set_list(usbip_acl_t *acl, const char *text, char *errbuf, size_t errlen);

/* Write "10.0.0.0/8,::1" (canonical forms, comma-separated, "" when empty)
 * truncated to len; returns the length needed without the NUL, like
 * snprintf, so a result >= len means the text was cut. */
size_t usbip_acl_format_list(const usbip_acl_t *acl, char *buf, size_t len);

/* Longest text usbip_acl_format_list can need, with the NUL. */
#define USBIP_ACL_LIST_TEXT_SIZE (USBIP_ACL_MAX_ENTRIES * USBIP_CIDR_TEXT_SIZE)

/* "open" or "closed" (exactly); INVALID_ARG otherwise. */
usbip_err_t usbip_access_mode_parse(const char *text, usbip_access_mode_t *out);

/* "open", "closed", or "unknown". */
const char *usbip_access_mode_name(usbip_access_mode_t mode);

#ifdef __cplusplus
}
#endif
