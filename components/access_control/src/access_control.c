#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "access_control.h"

/* Longest entry text worth parsing: the longest valid spelling
 * ("0000:...:ffff:255.255.255.255/128") is 49 characters. */
#define ENTRY_TEXT_MAX 63
/* How much of a bad entry an error message quotes. */
#define QUOTE_MAX 48

void usbip_acl_init(usbip_acl_t *acl)
{
    if (acl) {
        memset(acl, 0, sizeof *acl);
        acl->mode = USBIP_ACCESS_OPEN;
    }
}

bool usbip_acl_allows(const usbip_acl_t *acl, const usbip_ip_addr_t *peer)
{
    if (!acl) {
        return false;
    }
    if (acl->mode == USBIP_ACCESS_OPEN) {
        return true;
    }
    size_t count = acl->count <= USBIP_ACL_MAX_ENTRIES ? acl->count : USBIP_ACL_MAX_ENTRIES;
    for (size_t i = 0; i < count; i++) {
        if (usbip_cidr_contains(&acl->entries[i], peer)) {
            return true;
        }
    }
    return false;
}

/* Copy an entry for quoting in an error message: printable ASCII only (the
 * message ends up in logs and web pages) and cut short with "..." if long. */
static void quote_entry(const char *s, size_t len, char out[QUOTE_MAX + 4])
{
    size_t shown = len > QUOTE_MAX ? QUOTE_MAX : len;
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = (c >= 0x20 && c < 0x7F && c != '"') ? (char)c : '?';
    }
    strcpy(out + shown, len > shown ? "..." : "");
}

static bool is_separator(char c)
{
    return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool cidr_equal(const usbip_cidr_t *a, const usbip_cidr_t *b)
{
    return a->prefix_len == b->prefix_len && usbip_ip_addr_equal(&a->addr, &b->addr);
}

static bool list_has(const usbip_cidr_t *list, size_t count, const usbip_cidr_t *cidr)
{
    for (size_t i = 0; i < count; i++) {
        if (cidr_equal(&list[i], cidr)) {
            return true;
        }
    }
    return false;
}

/* Parse one entry s[0..len-1]; on error fill errbuf naming it. */
static usbip_err_t parse_entry(const char *s, size_t len, usbip_cidr_t *out, char *errbuf,
                               size_t errlen)
{
    char quoted[QUOTE_MAX + 4];
    const char *reason = "too long to be an address";
    usbip_err_t err = USBIP_ERR_INVALID_ARG;
    if (len <= ENTRY_TEXT_MAX) {
        char entry[ENTRY_TEXT_MAX + 1];
        memcpy(entry, s, len);
        entry[len] = '\0';
        err = usbip_cidr_parse_reason(entry, out, &reason);
    }
    if (err != USBIP_OK) {
        quote_entry(s, len, quoted);
        usbip_errbuf_printf(errbuf, errlen, "allowlist entry \"%s\": %s", quoted, reason);
    }
    return err;
}

usbip_err_t usbip_acl_set_list(usbip_acl_t *acl, const char *text, char *errbuf, size_t errlen)
{
    if (errbuf && errlen > 0) {
        errbuf[0] = '\0';
    }
    if (!acl || !text) {
        usbip_errbuf_printf(errbuf, errlen, "allowlist: %s is NULL", acl ? "text" : "acl");
        return USBIP_ERR_INVALID_ARG;
    }
    /* Build the new list aside so a bad entry leaves the acl as it was. */
    usbip_cidr_t parsed[USBIP_ACL_MAX_ENTRIES];
    size_t count = 0;
    const char *p = text;
    for (;;) {
        while (*p && is_separator(*p)) {
            p++;
        }
        if (!*p) {
            break;
        }
        const char *start = p;
        while (*p && !is_separator(*p)) {
            p++;
        }
        usbip_cidr_t cidr;
        usbip_err_t err = parse_entry(start, (size_t)(p - start), &cidr, errbuf, errlen);
        if (err != USBIP_OK) {
            return err;
        }
        if (list_has(parsed, count, &cidr)) {
            continue;
        }
        if (count == USBIP_ACL_MAX_ENTRIES) {
            char quoted[QUOTE_MAX + 4];
            quote_entry(start, (size_t)(p - start), quoted);
            usbip_errbuf_printf(errbuf, errlen,
                      "allowlist entry \"%s\": more than %d entries (the limit)", quoted,
                      USBIP_ACL_MAX_ENTRIES);
            return USBIP_ERR_INVALID_SIZE;
        }
        parsed[count++] = cidr;
    }
    memcpy(acl->entries, parsed, count * sizeof parsed[0]);
    acl->count = count;
    return USBIP_OK;
}

size_t usbip_acl_format_list(const usbip_acl_t *acl, char *buf, size_t len)
{
    size_t needed = 0;
    if (buf && len > 0) {
        buf[0] = '\0';
    }
    if (!acl) {
        return 0;
    }
    size_t count = acl->count <= USBIP_ACL_MAX_ENTRIES ? acl->count : USBIP_ACL_MAX_ENTRIES;
    for (size_t i = 0; i < count; i++) {
        char entry[USBIP_CIDR_TEXT_SIZE];
        usbip_cidr_format(&acl->entries[i], entry, sizeof entry);
        const char *sep = i > 0 ? "," : "";
        if (buf && needed < len) {
            snprintf(buf + needed, len - needed, "%s%s", sep, entry);
        }
        needed += strlen(sep) + strlen(entry);
    }
    return needed;
}

usbip_err_t usbip_access_mode_parse(const char *text, usbip_access_mode_t *out)
{
    if (!text || !out) {
        return USBIP_ERR_INVALID_ARG;
    }
    if (strcmp(text, "open") == 0) {
        *out = USBIP_ACCESS_OPEN;
    } else if (strcmp(text, "closed") == 0) {
        *out = USBIP_ACCESS_CLOSED;
    } else {
        return USBIP_ERR_INVALID_ARG;
    }
    return USBIP_OK;
}

const char *usbip_access_mode_name(usbip_access_mode_t mode)
{
    switch (mode) {
    case USBIP_ACCESS_OPEN: return "open";
    case USBIP_ACCESS_CLOSED: return "closed";
    }
    return "unknown";
}
