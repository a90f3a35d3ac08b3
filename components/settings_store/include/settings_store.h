/*
 * settings_store: the settings the server persists (access mode, allowlist,
 * syslog target) and the small key/value store interface they are kept in:
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

typedef struct {
    /* Keys "acl_mode" ("open"/"closed") and "acl_list" (the text of
     * usbip_acl_format_list). A list longer than one value continues in
     * "acl_list_2" .. "acl_list_4", split between entries. */
    usbip_acl_t acl;
    /* Key "syslog_target": "host:port", "[ipv6]:port" or "" (off). */
    char syslog_target[USBIP_SYSLOG_TARGET_SIZE];
} usbip_settings_t;

/* Open mode, empty allowlist, no syslog. */
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

#ifdef __cplusplus
}
#endif
