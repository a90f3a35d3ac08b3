/*
 * settings_store: the settings the server persists (access mode, allowlist,
 * syslog target, and the firmware's hostname and IPv4 configuration) and the
 * small key/value store interface they are kept in:
 * a text file on the host, NVS on the firmware. Keys follow NVS rules
 * ([a-z0-9_], at most 15 characters); values are strings of at most 511 bytes.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "access_control.h"
#include "usbip_err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define USBIP_STORE_KEY_MAX 15    /* characters, without the NUL */
#define USBIP_STORE_VALUE_MAX 511 /* bytes, without the NUL */

typedef struct {
    /* value: buffer of *len bytes; on success *len = string length (without
     * NUL). NOT_FOUND if absent; INVALID_SIZE if the buffer is too small. */
    usbip_err_t (*get)(void *ctx, const char *key, char *value, size_t *len);
    /* INVALID_ARG for a bad key, INVALID_SIZE for a value over 511 bytes. */
    usbip_err_t (*set)(void *ctx, const char *key, const char *value);
    /* NOT_FOUND if absent. */
    usbip_err_t (*erase)(void *ctx, const char *key);
    /* Make earlier sets and erases durable. */
    usbip_err_t (*commit)(void *ctx);
} usbip_store_ops_t;

typedef struct {
    const usbip_store_ops_t *ops;
    void *ctx;
} usbip_store_t;

#define USBIP_SYSLOG_TARGET_SIZE 64
#define USBIP_HOSTNAME_SIZE 33 /* 32 characters and the NUL (esp_netif's limit) */

typedef enum {
    USBIP_NET_DHCP = 0,   /* "dhcp" */
    USBIP_NET_STATIC = 1, /* "static" */
} usbip_net_mode_t;

/* The firmware's IPv4 configuration (the host daemon ignores it). Unset
 * addresses have family 0 and are stored as "". */
typedef struct {
    usbip_net_mode_t mode;   /* key "net_mode": "dhcp" (default) or "static" */
    usbip_ip_addr_t address; /* key "net_ip": IPv4, required when static */
    usbip_ip_addr_t netmask; /* key "net_mask": contiguous IPv4 mask, required when static */
    usbip_ip_addr_t gateway; /* key "net_gw": IPv4 inside address/netmask, or unset */
    usbip_ip_addr_t dns;     /* key "net_dns": IPv4 or unset */
} usbip_net_settings_t;

typedef struct {
    /* Keys "acl_mode" ("open"/"closed") and "acl_list" (the text of
     * usbip_acl_format_list). A list longer than one value continues in
     * "acl_list_2" .. "acl_list_4", split between entries. */
    usbip_acl_t acl;
    /* Key "syslog_target": "host:port", "[ipv6]:port" or "" (off). */
    char syslog_target[USBIP_SYSLOG_TARGET_SIZE];
    /* Key "hostname": DHCP and mDNS name, 1-32 of [A-Za-z0-9-] not starting
     * or ending with '-'; "" = the firmware's configured default. */
    char hostname[USBIP_HOSTNAME_SIZE];
    usbip_net_settings_t net;
} usbip_settings_t;

/* Open mode, empty allowlist, no syslog, default hostname, DHCP. */
void usbip_settings_defaults(usbip_settings_t *s);

/* Replace *s with the defaults overlaid by what the store holds (missing keys
 * keep their default). A stored value that does not parse, or a failing
 * store, is an error naming the key and value in errbuf, e.g.
 * `setting "acl_mode" = "bogus": expected "open" or "closed"`; *s is then
 * untouched. */
usbip_err_t usbip_settings_load(usbip_settings_t *s, const usbip_store_t *store, char *errbuf,
                                size_t errlen);

/* Set every key, erase unused "acl_list_N" continuations, then commit.
 * INVALID_ARG (logged) if *s holds something load would refuse. */
usbip_err_t usbip_settings_save(const usbip_settings_t *s, const usbip_store_t *store);

/* Check a syslog target "host:port" / "[ipv6]:port" / "" and split it. host
 * (host_len bytes, may be NULL) receives the host without brackets, *port (may
 * be NULL) the port; "" gives "" and 0. On INVALID_ARG *reason (may be NULL)
 * says why, e.g. "port must be 1-65535". Host names are [A-Za-z0-9.-]. */
usbip_err_t usbip_syslog_target_parse(const char *text, char *host, size_t host_len,
                                      uint16_t *port, const char **reason);

/* Check a hostname ("" allowed: the default). On INVALID_ARG *reason (may
 * be NULL) says why. */
usbip_err_t usbip_hostname_check(const char *hostname, const char **reason);

/* Check a network configuration: static needs address and netmask (IPv4,
 * contiguous mask, address neither the network nor the broadcast address
 * unless /31 or /32), a gateway inside that subnet; every set address is
 * IPv4. On INVALID_ARG *reason (may be NULL) names the field and why, e.g.
 * "net_gw is outside net_ip/net_mask". */
usbip_err_t usbip_net_settings_check(const usbip_net_settings_t *net, const char **reason);

#ifdef __cplusplus
}
#endif
