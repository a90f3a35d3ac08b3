#include "settings_store.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "usbip_log.h"

static const char *const TAG = "settings";

#define KEY_ACL_MODE "acl_mode"
#define KEY_SYSLOG_TARGET "syslog_target"
#define KEY_HOSTNAME "hostname"
#define KEY_NET_MODE "net_mode"
/* A full allowlist can need ~1.6 KB of text, more than one store value holds,
 * so it continues over further keys. 10 entries of at most 49 characters
 * always fit one value, so 4 keys cover USBIP_ACL_MAX_ENTRIES. */
#define ACL_LIST_KEYS 4
static const char *const s_acl_list_keys[ACL_LIST_KEYS] = {"acl_list", "acl_list_2",
                                                           "acl_list_3", "acl_list_4"};

/* The firmware's IPv4 addresses, each under its own key; "" = unset. */
static const struct {
    const char *key;
    size_t offset; /* of the usbip_ip_addr_t in usbip_net_settings_t */
} s_net_addresses[] = {
    {"net_ip", offsetof(usbip_net_settings_t, address)},
    {"net_mask", offsetof(usbip_net_settings_t, netmask)},
    {"net_gw", offsetof(usbip_net_settings_t, gateway)},
    {"net_dns", offsetof(usbip_net_settings_t, dns)},
};
#define NET_ADDRESS_KEYS (sizeof s_net_addresses / sizeof s_net_addresses[0])

static usbip_ip_addr_t *net_address(usbip_net_settings_t *net, size_t i)
{
    return (usbip_ip_addr_t *)((char *)net + s_net_addresses[i].offset);
}

static const usbip_ip_addr_t *net_address_const(const usbip_net_settings_t *net, size_t i)
{
    return (const usbip_ip_addr_t *)((const char *)net + s_net_addresses[i].offset);
}

#define VALUE_BUF_SIZE (USBIP_STORE_VALUE_MAX + 1)
/* How much of a bad value an error message quotes. */
#define QUOTE_MAX 64

void usbip_settings_defaults(usbip_settings_t *s)
{
    if (!s) {
        return;
    }
    memset(s, 0, sizeof *s);
    usbip_acl_init(&s->acl);
}

/* A stored value is quoted in messages shown in logs and web pages: keep it
 * printable and short. */
static void quote_value(const char *value, char out[QUOTE_MAX + 4])
{
    size_t len = strlen(value);
    size_t shown = len > QUOTE_MAX ? QUOTE_MAX : len;
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)value[i];
        out[i] = (c >= 0x20 && c < 0x7F && c != '"') ? (char)c : '?';
    }
    strcpy(out + shown, len > shown ? "..." : "");
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static bool is_host_name_char(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
           c == '-';
}

/* Host name or dotted IPv4 in s[0..len-1]; digits-and-dots must be a valid
 * IPv4 address, since a resolver would read "10.0.0.300" oddly. */
static bool host_name_ok(const char *s, size_t len, const char **reason)
{
    bool only_digits_and_dots = true;
    for (size_t i = 0; i < len; i++) {
        if (!is_host_name_char(s[i])) {
            *reason = "host name may hold only letters, digits, '.' and '-'";
            return false;
        }
        only_digits_and_dots = only_digits_and_dots && (is_digit(s[i]) || s[i] == '.');
    }
    if (only_digits_and_dots) {
        char text[USBIP_SYSLOG_TARGET_SIZE];
        usbip_ip_addr_t addr;
        snprintf(text, sizeof text, "%.*s", (int)len, s);
        if (usbip_ip_addr_parse(text, &addr) != USBIP_OK) {
            *reason = "invalid IPv4 address";
            return false;
        }
    }
    return true;
}

static bool ipv6_host_ok(const char *s, size_t len, const char **reason)
{
    char text[USBIP_SYSLOG_TARGET_SIZE];
    usbip_ip_addr_t addr;
    snprintf(text, sizeof text, "%.*s", (int)len, s);
    if (usbip_ip_addr_parse(text, &addr) != USBIP_OK || addr.family != 6) {
        *reason = "invalid IPv6 address in brackets";
        return false;
    }
    return true;
}

/* Decimal 1..65535 without sign or leading zeros. */
static bool parse_port(const char *s, uint16_t *out)
{
    size_t len = strlen(s);
    if (len == 0 || len > 5 || s[0] == '0') {
        return false;
    }
    unsigned long value = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i])) {
            return false;
        }
        value = value * 10 + (unsigned long)(s[i] - '0');
    }
    if (value > 65535) {
        return false;
    }
    *out = (uint16_t)value;
    return true;
}

usbip_err_t usbip_syslog_target_parse(const char *text, char *host, size_t host_len,
                                      uint16_t *port, const char **reason)
{
    const char *ignored;
    if (!reason) {
        reason = &ignored;
    }
    if (host && host_len > 0) {
        host[0] = '\0';
    }
    if (port) {
        *port = 0;
    }
    if (!text) {
        *reason = "missing text";
        return USBIP_ERR_INVALID_ARG;
    }
    size_t len = strlen(text);
    if (len == 0) {
        return USBIP_OK; /* syslog off */
    }
    if (len >= USBIP_SYSLOG_TARGET_SIZE) {
        *reason = "longer than 63 characters";
        return USBIP_ERR_INVALID_ARG;
    }

    const char *host_start = text;
    const char *colon;
    size_t host_chars;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close) {
            *reason = "'[' without ']'";
            return USBIP_ERR_INVALID_ARG;
        }
        host_start = text + 1;
        host_chars = (size_t)(close - host_start);
        if (!ipv6_host_ok(host_start, host_chars, reason)) {
            return USBIP_ERR_INVALID_ARG;
        }
        colon = close + 1;
        if (*colon != ':') {
            *reason = "expected \"host:port\"";
            return USBIP_ERR_INVALID_ARG;
        }
    } else {
        colon = strchr(text, ':');
        if (!colon) {
            *reason = "expected \"host:port\"";
            return USBIP_ERR_INVALID_ARG;
        }
        if (strchr(colon + 1, ':')) {
            *reason = "an IPv6 host needs brackets, e.g. \"[::1]:514\"";
            return USBIP_ERR_INVALID_ARG;
        }
        host_chars = (size_t)(colon - text);
        if (host_chars == 0) {
            *reason = "missing host";
            return USBIP_ERR_INVALID_ARG;
        }
        if (!host_name_ok(text, host_chars, reason)) {
            return USBIP_ERR_INVALID_ARG;
        }
    }

    uint16_t port_value;
    if (!parse_port(colon + 1, &port_value)) {
        *reason = "port must be 1-65535";
        return USBIP_ERR_INVALID_ARG;
    }
    if (host && host_len > 0) {
        if (host_chars >= host_len) {
            *reason = "host does not fit the caller's buffer";
            return USBIP_ERR_INVALID_SIZE;
        }
        memcpy(host, host_start, host_chars);
        host[host_chars] = '\0';
    }
    if (port) {
        *port = port_value;
    }
    return USBIP_OK;
}

/* ---- hostname and network checks ---- */

static bool is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

usbip_err_t usbip_hostname_check(const char *hostname, const char **reason)
{
    const char *ignored;
    if (!reason) {
        reason = &ignored;
    }
    if (!hostname) {
        *reason = "missing text";
        return USBIP_ERR_INVALID_ARG;
    }
    size_t len = 0;
    while (len < USBIP_HOSTNAME_SIZE && hostname[len] != '\0') {
        if (!is_alnum(hostname[len]) && hostname[len] != '-') {
            *reason = "a hostname may hold only letters, digits and '-'";
            return USBIP_ERR_INVALID_ARG;
        }
        len++;
    }
    if (len == USBIP_HOSTNAME_SIZE) {
        *reason = "longer than 32 characters";
        return USBIP_ERR_INVALID_ARG;
    }
    if (len > 0 && (hostname[0] == '-' || hostname[len - 1] == '-')) {
        *reason = "a hostname must not start or end with '-'";
        return USBIP_ERR_INVALID_ARG;
    }
    return USBIP_OK;
}

static uint32_t ipv4_value(const usbip_ip_addr_t *a)
{
    return (uint32_t)a->bytes[0] << 24 | (uint32_t)a->bytes[1] << 16 |
           (uint32_t)a->bytes[2] << 8 | (uint32_t)a->bytes[3];
}

/* 1s then 0s, at least one 1 (255.255.255.0 yes, 255.0.255.0 no). */
static bool mask_contiguous(uint32_t mask)
{
    uint32_t host_bits = ~mask;
    return mask != 0 && (host_bits & (host_bits + 1)) == 0;
}

static bool static_address_ok(const usbip_net_settings_t *net, const char **reason)
{
    if (net->address.family != 4 || net->netmask.family != 4) {
        *reason = "static addressing needs net_ip and net_mask";
        return false;
    }
    uint32_t address = ipv4_value(&net->address), mask = ipv4_value(&net->netmask);
    if (!mask_contiguous(mask)) {
        *reason = "net_mask is not a contiguous netmask";
        return false;
    }
    /* /31 and /32 have no network or broadcast address to avoid. */
    bool has_broadcast = (~mask) > 1;
    if (address == 0 ||
        (has_broadcast && ((address & ~mask) == 0 || (address & ~mask) == ~mask))) {
        *reason = "net_ip is the network or broadcast address of its subnet";
        return false;
    }
    if (net->gateway.family == 4) {
        uint32_t gateway = ipv4_value(&net->gateway);
        if ((gateway & mask) != (address & mask) || gateway == address) {
            *reason = "net_gw is outside net_ip/net_mask or equal to net_ip";
            return false;
        }
    }
    return true;
}

usbip_err_t usbip_net_settings_check(const usbip_net_settings_t *net, const char **reason)
{
    const char *ignored;
    if (!reason) {
        reason = &ignored;
    }
    if (!net) {
        *reason = "missing settings";
        return USBIP_ERR_INVALID_ARG;
    }
    if (net->mode != USBIP_NET_DHCP && net->mode != USBIP_NET_STATIC) {
        *reason = "net_mode must be dhcp or static";
        return USBIP_ERR_INVALID_ARG;
    }
    for (size_t i = 0; i < NET_ADDRESS_KEYS; i++) {
        uint8_t family = net_address_const(net, i)->family;
        if (family != 0 && family != 4) {
            *reason = "network addresses must be IPv4";
            return USBIP_ERR_INVALID_ARG;
        }
    }
    if (net->mode == USBIP_NET_STATIC && !static_address_ok(net, reason)) {
        return USBIP_ERR_INVALID_ARG;
    }
    return USBIP_OK;
}

static const char *net_mode_name(usbip_net_mode_t mode)
{
    return mode == USBIP_NET_STATIC ? "static" : "dhcp";
}

static bool store_usable(const usbip_store_t *store)
{
    return store && store->ops && store->ops->get && store->ops->set && store->ops->erase &&
           store->ops->commit;
}

/* Read key into value (VALUE_BUF_SIZE bytes, NUL-terminated). NOT_FOUND is
 * returned quietly; anything else failing is described in errbuf. */
static usbip_err_t read_value(const usbip_store_t *store, const char *key,
                              char value[VALUE_BUF_SIZE], char *errbuf, size_t errlen)
{
    size_t len = VALUE_BUF_SIZE;
    usbip_err_t err = store->ops->get(store->ctx, key, value, &len);
    if (err == USBIP_ERR_NOT_FOUND) {
        return err;
    }
    if (err == USBIP_ERR_INVALID_SIZE || (err == USBIP_OK && len >= VALUE_BUF_SIZE)) {
        usbip_errbuf_printf(errbuf, errlen, "setting \"%s\": stored value is longer than %d bytes", key,
                  USBIP_STORE_VALUE_MAX);
        return USBIP_ERR_INVALID_SIZE;
    }
    if (err != USBIP_OK) {
        usbip_errbuf_printf(errbuf, errlen, "setting \"%s\": reading the store failed (%s)", key,
                  usbip_err_name(err));
        return err;
    }
    value[len] = '\0';
    return USBIP_OK;
}

static usbip_err_t load_acl_mode(usbip_settings_t *s, const usbip_store_t *store, char *errbuf,
                                 size_t errlen)
{
    char value[VALUE_BUF_SIZE];
    usbip_err_t err = read_value(store, KEY_ACL_MODE, value, errbuf, errlen);
    if (err != USBIP_OK) {
        return err == USBIP_ERR_NOT_FOUND ? USBIP_OK : err;
    }
    if (usbip_access_mode_parse(value, &s->acl.mode) != USBIP_OK) {
        char quoted[QUOTE_MAX + 4];
        quote_value(value, quoted);
        usbip_errbuf_printf(errbuf, errlen, "setting \"%s\" = \"%s\": expected \"open\" or \"closed\"",
                  KEY_ACL_MODE, quoted);
        return USBIP_ERR_INVALID_ARG;
    }
    return USBIP_OK;
}

/* Append the entries of one stored part of the list to acl. */
static usbip_err_t add_acl_list_part(usbip_acl_t *acl, const char *key, const char *value,
                                     char *errbuf, size_t errlen)
{
    usbip_acl_t part;
    char why[160];
    usbip_acl_init(&part);
    usbip_err_t err = usbip_acl_set_list(&part, value, why, sizeof why);
    if (err != USBIP_OK) {
        usbip_errbuf_printf(errbuf, errlen, "setting \"%s\": %s", key, why);
        return err;
    }
    if (acl->count + part.count > USBIP_ACL_MAX_ENTRIES) {
        usbip_errbuf_printf(errbuf, errlen, "setting \"%s\": allowlist has more than %d entries in total",
                  key, USBIP_ACL_MAX_ENTRIES);
        return USBIP_ERR_INVALID_SIZE;
    }
    memcpy(&acl->entries[acl->count], part.entries, part.count * sizeof part.entries[0]);
    acl->count += part.count;
    return USBIP_OK;
}

static usbip_err_t load_acl_list(usbip_settings_t *s, const usbip_store_t *store, char *errbuf,
                                 size_t errlen)
{
    char value[VALUE_BUF_SIZE];
    for (size_t i = 0; i < ACL_LIST_KEYS; i++) {
        usbip_err_t err = read_value(store, s_acl_list_keys[i], value, errbuf, errlen);
        if (err == USBIP_ERR_NOT_FOUND) {
            return USBIP_OK; /* the list ends at the first missing part */
        }
        if (err == USBIP_OK) {
            err = add_acl_list_part(&s->acl, s_acl_list_keys[i], value, errbuf, errlen);
        }
        if (err != USBIP_OK) {
            return err;
        }
    }
    return USBIP_OK;
}

static usbip_err_t load_syslog_target(usbip_settings_t *s, const usbip_store_t *store,
                                      char *errbuf, size_t errlen)
{
    char value[VALUE_BUF_SIZE];
    const char *reason = "invalid";
    usbip_err_t err = read_value(store, KEY_SYSLOG_TARGET, value, errbuf, errlen);
    if (err != USBIP_OK) {
        return err == USBIP_ERR_NOT_FOUND ? USBIP_OK : err;
    }
    if (usbip_syslog_target_parse(value, NULL, 0, NULL, &reason) != USBIP_OK) {
        char quoted[QUOTE_MAX + 4];
        quote_value(value, quoted);
        usbip_errbuf_printf(errbuf, errlen, "setting \"%s\" = \"%s\": %s", KEY_SYSLOG_TARGET, quoted,
                  reason);
        return USBIP_ERR_INVALID_ARG;
    }
    /* The parse above checked that it fits. */
    memcpy(s->syslog_target, value, strlen(value) + 1);
    return USBIP_OK;
}

static usbip_err_t bad_value(const char *key, const char *value, const char *reason,
                             char *errbuf, size_t errlen)
{
    char quoted[QUOTE_MAX + 4];
    quote_value(value, quoted);
    usbip_errbuf_printf(errbuf, errlen, "setting \"%s\" = \"%s\": %s", key, quoted, reason);
    return USBIP_ERR_INVALID_ARG;
}

static usbip_err_t load_hostname(usbip_settings_t *s, const usbip_store_t *store, char *errbuf,
                                 size_t errlen)
{
    char value[VALUE_BUF_SIZE];
    const char *reason = "invalid";
    usbip_err_t err = read_value(store, KEY_HOSTNAME, value, errbuf, errlen);
    if (err != USBIP_OK) {
        return err == USBIP_ERR_NOT_FOUND ? USBIP_OK : err;
    }
    if (usbip_hostname_check(value, &reason) != USBIP_OK) {
        return bad_value(KEY_HOSTNAME, value, reason, errbuf, errlen);
    }
    memcpy(s->hostname, value, strlen(value) + 1); /* the check bounded its length */
    return USBIP_OK;
}

static usbip_err_t load_net_mode(usbip_net_settings_t *net, const usbip_store_t *store,
                                 char *errbuf, size_t errlen)
{
    char value[VALUE_BUF_SIZE];
    usbip_err_t err = read_value(store, KEY_NET_MODE, value, errbuf, errlen);
    if (err != USBIP_OK) {
        return err == USBIP_ERR_NOT_FOUND ? USBIP_OK : err;
    }
    if (strcmp(value, "dhcp") == 0) {
        net->mode = USBIP_NET_DHCP;
    } else if (strcmp(value, "static") == 0) {
        net->mode = USBIP_NET_STATIC;
    } else {
        return bad_value(KEY_NET_MODE, value, "expected \"dhcp\" or \"static\"", errbuf, errlen);
    }
    return USBIP_OK;
}

/* Missing or "" leaves the address unset (family 0). */
static usbip_err_t load_ipv4(const char *key, usbip_ip_addr_t *out, const usbip_store_t *store,
                             char *errbuf, size_t errlen)
{
    char value[VALUE_BUF_SIZE];
    usbip_err_t err = read_value(store, key, value, errbuf, errlen);
    if (err != USBIP_OK) {
        return err == USBIP_ERR_NOT_FOUND ? USBIP_OK : err;
    }
    if (value[0] == '\0') {
        return USBIP_OK;
    }
    if (usbip_ip_addr_parse(value, out) != USBIP_OK || out->family != 4) {
        memset(out, 0, sizeof *out);
        return bad_value(key, value, "expected an IPv4 address", errbuf, errlen);
    }
    return USBIP_OK;
}

static usbip_err_t load_net(usbip_settings_t *s, const usbip_store_t *store, char *errbuf,
                            size_t errlen)
{
    usbip_err_t err = load_net_mode(&s->net, store, errbuf, errlen);
    for (size_t i = 0; i < NET_ADDRESS_KEYS && err == USBIP_OK; i++) {
        err = load_ipv4(s_net_addresses[i].key, net_address(&s->net, i), store, errbuf, errlen);
    }
    const char *reason = "invalid";
    if (err == USBIP_OK && usbip_net_settings_check(&s->net, &reason) != USBIP_OK) {
        return bad_value(KEY_NET_MODE, net_mode_name(s->net.mode), reason, errbuf, errlen);
    }
    return err;
}

usbip_err_t usbip_settings_load(usbip_settings_t *s, const usbip_store_t *store, char *errbuf,
                                size_t errlen)
{
    usbip_errbuf_printf(errbuf, errlen, "%s", "");
    /* Loading only reads, so a read-only store will do. */
    if (!s || !store || !store->ops || !store->ops->get) {
        usbip_errbuf_printf(errbuf, errlen, "settings: %s", s ? "store has no get operation" : "s is NULL");
        return USBIP_ERR_INVALID_ARG;
    }
    /* Fill a copy so a bad value leaves *s as it was. */
    usbip_settings_t loaded;
    usbip_settings_defaults(&loaded);
    usbip_err_t err = load_acl_mode(&loaded, store, errbuf, errlen);
    if (err == USBIP_OK) {
        err = load_acl_list(&loaded, store, errbuf, errlen);
    }
    if (err == USBIP_OK) {
        err = load_syslog_target(&loaded, store, errbuf, errlen);
    }
    if (err == USBIP_OK) {
        err = load_hostname(&loaded, store, errbuf, errlen);
    }
    if (err == USBIP_OK) {
        err = load_net(&loaded, store, errbuf, errlen);
    }
    if (err == USBIP_OK) {
        *s = loaded;
    }
    return err;
}

static usbip_err_t set_value(const usbip_store_t *store, const char *key, const char *value)
{
    usbip_err_t err = store->ops->set(store->ctx, key, value);
    if (err != USBIP_OK) {
        USBIP_LOGE(TAG, "saving setting \"%s\" failed: %s", key, usbip_err_name(err));
    }
    return err;
}

static usbip_err_t erase_value(const usbip_store_t *store, const char *key)
{
    usbip_err_t err = store->ops->erase(store->ctx, key);
    if (err == USBIP_ERR_NOT_FOUND) {
        return USBIP_OK;
    }
    if (err != USBIP_OK) {
        USBIP_LOGE(TAG, "erasing setting \"%s\" failed: %s", key, usbip_err_name(err));
    }
    return err;
}

/* Store one part of the list under the next free acl_list key. */
static usbip_err_t save_acl_list_part(const usbip_store_t *store, size_t *keys_used,
                                      const char *part)
{
    if (*keys_used == ACL_LIST_KEYS) {
        /* Unreachable with USBIP_ACL_MAX_ENTRIES entries; see ACL_LIST_KEYS. */
        USBIP_LOGE(TAG, "not saving: allowlist needs more than %d keys", ACL_LIST_KEYS);
        return USBIP_ERR_INVALID_SIZE;
    }
    return set_value(store, s_acl_list_keys[(*keys_used)++], part);
}

/* Write the list as comma-separated parts of at most one value each, split
 * between entries, then erase the parts a longer earlier list left behind. */
static usbip_err_t save_acl_list(const usbip_acl_t *acl, const usbip_store_t *store)
{
    char part[VALUE_BUF_SIZE];
    size_t used = 0;
    size_t keys_used = 0;
    usbip_err_t err = USBIP_OK;
    part[0] = '\0';
    for (size_t i = 0; i < acl->count && err == USBIP_OK; i++) {
        char entry[USBIP_CIDR_TEXT_SIZE];
        usbip_cidr_format(&acl->entries[i], entry, sizeof entry);
        size_t entry_len = strlen(entry);
        if (used > 0 && used + 1 + entry_len > USBIP_STORE_VALUE_MAX) {
            err = save_acl_list_part(store, &keys_used, part);
            used = 0;
        }
        used += (size_t)snprintf(part + used, sizeof part - used, "%s%s", used ? "," : "", entry);
    }
    if (err == USBIP_OK) {
        err = save_acl_list_part(store, &keys_used, part);
    }
    for (size_t i = keys_used; i < ACL_LIST_KEYS && err == USBIP_OK; i++) {
        err = erase_value(store, s_acl_list_keys[i]);
    }
    return err;
}

static bool settings_valid(const usbip_settings_t *s)
{
    const char *reason = "";
    if (s->acl.mode != USBIP_ACCESS_OPEN && s->acl.mode != USBIP_ACCESS_CLOSED) {
        USBIP_LOGE(TAG, "not saving: acl mode %d is neither open nor closed", (int)s->acl.mode);
        return false;
    }
    if (s->acl.count > USBIP_ACL_MAX_ENTRIES) {
        USBIP_LOGE(TAG, "not saving: acl count %zu is above %d", s->acl.count,
                   USBIP_ACL_MAX_ENTRIES);
        return false;
    }
    if (memchr(s->syslog_target, '\0', sizeof s->syslog_target) == NULL ||
        usbip_syslog_target_parse(s->syslog_target, NULL, 0, NULL, &reason) != USBIP_OK) {
        USBIP_LOGE(TAG, "not saving: syslog_target \"%.*s\": %s", (int)sizeof s->syslog_target,
                   s->syslog_target, reason[0] ? reason : "not NUL-terminated");
        return false;
    }
    if (usbip_hostname_check(s->hostname, &reason) != USBIP_OK) {
        USBIP_LOGE(TAG, "not saving: hostname \"%.*s\": %s", (int)sizeof s->hostname, s->hostname,
                   reason);
        return false;
    }
    if (usbip_net_settings_check(&s->net, &reason) != USBIP_OK) {
        USBIP_LOGE(TAG, "not saving: network settings: %s", reason);
        return false;
    }
    return true;
}

static usbip_err_t save_net(const usbip_net_settings_t *net, const usbip_store_t *store)
{
    usbip_err_t err = set_value(store, KEY_NET_MODE, net_mode_name(net->mode));
    for (size_t i = 0; i < NET_ADDRESS_KEYS && err == USBIP_OK; i++) {
        char text[USBIP_IP_ADDR_TEXT_SIZE] = "";
        const usbip_ip_addr_t *a = net_address_const(net, i);
        if (a->family == 4) {
            usbip_ip_addr_format(a, text, sizeof text);
        }
        err = set_value(store, s_net_addresses[i].key, text);
    }
    return err;
}

usbip_err_t usbip_settings_save(const usbip_settings_t *s, const usbip_store_t *store)
{
    if (!s || !store_usable(store)) {
        USBIP_LOGE(TAG, "not saving: %s", s ? "store has missing operations" : "settings are NULL");
        return USBIP_ERR_INVALID_ARG;
    }
    if (!settings_valid(s)) {
        return USBIP_ERR_INVALID_ARG;
    }
    usbip_err_t err = set_value(store, KEY_ACL_MODE, usbip_access_mode_name(s->acl.mode));
    if (err == USBIP_OK) {
        err = save_acl_list(&s->acl, store);
    }
    if (err == USBIP_OK) {
        err = set_value(store, KEY_SYSLOG_TARGET, s->syslog_target);
    }
    if (err == USBIP_OK) {
        err = set_value(store, KEY_HOSTNAME, s->hostname);
    }
    if (err == USBIP_OK) {
        err = save_net(&s->net, store);
    }
    if (err == USBIP_OK) {
        err = store->ops->commit(store->ctx);
        if (err != USBIP_OK) {
            USBIP_LOGE(TAG, "committing settings failed: %s", usbip_err_name(err));
        }
    }
    return err;
}
