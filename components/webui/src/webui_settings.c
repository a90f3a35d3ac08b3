/*
 * webui_settings: PUT /api/settings. The body is any subset of the GET
 * shape; it is checked as a whole (the first bad field is named), then
 * saved and applied through usbip_server_apply_settings(), which closes
 * live sessions the new access control refuses.
 */
#include <stdio.h>
#include <string.h>

#include "settings_store.h"
#include "webui_internal.h"

#define MAX_TOKENS 128
#define FIELD_TEXT 96

typedef struct {
    const json_doc_t *doc;
    webui_response_t *resp;
    usbip_settings_t *s;
    bool reboot_needed;
} edit_t;

static bool bad(edit_t *e, const char *field, const char *why, const char *value)
{
    if (value) {
        webui_reply_error(e->resp, 400, field, "%s: \"%s\"", why, value);
    } else {
        webui_reply_error(e->resp, 400, field, "%s", why);
    }
    return false;
}

/* Only the keys listed may appear in object `obj`. */
static bool only_keys(edit_t *e, int obj, const char *prefix, const char *const *keys,
                      size_t n)
{
    for (uint32_t i = 0; i < e->doc->tokens[obj].children; i++) {
        int k = json_read_member_key(e->doc, obj, i);
        bool known = false;
        for (size_t j = 0; j < n && !known; j++) {
            known = json_read_string_is(e->doc, k, keys[j]);
        }
        if (!known) {
            char name[FIELD_TEXT] = "?";
            json_read_string(e->doc, k, name, sizeof name);
            char field[2 * FIELD_TEXT];
            snprintf(field, sizeof field, "%s%s", prefix, name);
            return bad(e, field, "unknown setting", NULL);
        }
    }
    return true;
}

/* A string member into out; absent is fine (false only on a bad value). */
static bool read_text(edit_t *e, int obj, const char *key, const char *field, char *out,
                      size_t out_len, bool *present)
{
    int v = json_read_member(e->doc, obj, key);
    *present = v >= 0;
    if (v < 0) {
        return true;
    }
    if (!json_read_string(e->doc, v, out, out_len)) {
        return bad(e, field, "must be a string (at most a few hundred characters)", NULL);
    }
    return true;
}

static bool edit_hostname(edit_t *e)
{
    char name[USBIP_HOSTNAME_SIZE + 8];
    bool present;
    if (!read_text(e, 0, "hostname", "hostname", name, sizeof name, &present) || !present) {
        return !e->resp->status;
    }
    const char *reason = NULL;
    if (name[0] && usbip_hostname_check(name, &reason) != USBIP_OK) {
        return bad(e, "hostname", reason ? reason : "invalid hostname", name);
    }
    const size_t len = strlen(name);
    if (len >= sizeof e->s->hostname) {
        return bad(e, "hostname", "longer than 32 characters", name);
    }
    if (strcmp(name, e->s->hostname) != 0) {
        memcpy(e->s->hostname, name, len + 1);
        e->reboot_needed = true;
    }
    return true;
}

static bool edit_address(edit_t *e, int obj, const char *key, usbip_ip_addr_t *out)
{
    char field[32], text[USBIP_IP_ADDR_TEXT_SIZE + 8];
    snprintf(field, sizeof field, "network.%s", key);
    bool present;
    if (!read_text(e, obj, key, field, text, sizeof text, &present)) {
        return false;
    }
    if (!present) {
        return true;
    }
    usbip_ip_addr_t a;
    memset(&a, 0, sizeof a);
    if (text[0] && (usbip_ip_addr_parse(text, &a) != USBIP_OK || a.family != 4)) {
        return bad(e, field, "not an IPv4 address", text);
    }
    *out = a;
    return true;
}

static bool edit_network(edit_t *e)
{
    int obj = json_read_member(e->doc, 0, "network");
    if (obj < 0) {
        return true;
    }
    if (e->doc->tokens[obj].type != JSON_OBJECT) {
        return bad(e, "network", "must be an object", NULL);
    }
    static const char *const keys[] = {"mode", "address", "netmask", "gateway", "dns"};
    if (!only_keys(e, obj, "network.", keys, 5)) {
        return false;
    }
    usbip_net_settings_t net = e->s->net;
    char mode[16];
    bool present;
    if (!read_text(e, obj, "mode", "network.mode", mode, sizeof mode, &present)) {
        return false;
    }
    if (present) {
        if (strcmp(mode, "dhcp") != 0 && strcmp(mode, "static") != 0) {
            return bad(e, "network.mode", "must be \"dhcp\" or \"static\"", mode);
        }
        net.mode = mode[0] == 's' ? USBIP_NET_STATIC : USBIP_NET_DHCP;
    }
    if (!edit_address(e, obj, "address", &net.address) ||
        !edit_address(e, obj, "netmask", &net.netmask) ||
        !edit_address(e, obj, "gateway", &net.gateway) || !edit_address(e, obj, "dns", &net.dns)) {
        return false;
    }
    const char *reason = NULL;
    if (usbip_net_settings_check(&net, &reason) != USBIP_OK) {
        return bad(e, "network", reason ? reason : "inconsistent network settings", NULL);
    }
    if (memcmp(&net, &e->s->net, sizeof net) != 0) {
        e->s->net = net;
        e->reboot_needed = true;
    }
    return true;
}

static bool edit_allowlist(edit_t *e, int arr, usbip_acl_t *acl)
{
    if (e->doc->tokens[arr].type != JSON_ARRAY) {
        return bad(e, "access.allow", "must be an array of addresses or CIDR ranges", NULL);
    }
    if (e->doc->tokens[arr].children > USBIP_ACL_MAX_ENTRIES) {
        char why[64];
        snprintf(why, sizeof why, "at most %d entries", USBIP_ACL_MAX_ENTRIES);
        return bad(e, "access.allow", why, NULL);
    }
    char list[USBIP_ACL_LIST_TEXT_SIZE + USBIP_ACL_MAX_ENTRIES] = "";
    size_t used = 0;
    for (uint32_t i = 0; i < e->doc->tokens[arr].children; i++) {
        char field[32], text[USBIP_CIDR_TEXT_SIZE + 8];
        snprintf(field, sizeof field, "access.allow[%u]", (unsigned)i);
        if (!json_read_string(e->doc, json_read_element(e->doc, arr, i), text, sizeof text)) {
            return bad(e, field, "must be an address or CIDR range (a string)", NULL);
        }
        usbip_cidr_t cidr;
        const char *reason = NULL;
        if (usbip_cidr_parse_reason(text, &cidr, &reason) != USBIP_OK) {
            return bad(e, field, reason ? reason : "not an address or CIDR range", text);
        }
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? "," : "", text);
    }
    char why[160];
    if (usbip_acl_set_list(acl, list, why, sizeof why) != USBIP_OK) {
        return bad(e, "access.allow", why, NULL);
    }
    return true;
}

static bool edit_access(edit_t *e)
{
    int obj = json_read_member(e->doc, 0, "access");
    if (obj < 0) {
        return true;
    }
    if (e->doc->tokens[obj].type != JSON_OBJECT) {
        return bad(e, "access", "must be an object", NULL);
    }
    static const char *const keys[] = {"mode", "allow"};
    if (!only_keys(e, obj, "access.", keys, 2)) {
        return false;
    }
    usbip_acl_t acl = e->s->acl;
    char mode[16];
    bool present;
    if (!read_text(e, obj, "mode", "access.mode", mode, sizeof mode, &present)) {
        return false;
    }
    if (present && usbip_access_mode_parse(mode, &acl.mode) != USBIP_OK) {
        return bad(e, "access.mode", "must be \"open\" or \"closed\"", mode);
    }
    int allow = json_read_member(e->doc, obj, "allow");
    if (allow >= 0 && !edit_allowlist(e, allow, &acl)) {
        return false;
    }
    e->s->acl = acl;
    return true;
}

static bool edit_syslog(edit_t *e)
{
    int obj = json_read_member(e->doc, 0, "syslog");
    if (obj < 0) {
        return true;
    }
    if (e->doc->tokens[obj].type != JSON_OBJECT) {
        return bad(e, "syslog", "must be an object", NULL);
    }
    static const char *const keys[] = {"target"};
    if (!only_keys(e, obj, "syslog.", keys, 1)) {
        return false;
    }
    char target[USBIP_SYSLOG_TARGET_SIZE + 8];
    bool present;
    if (!read_text(e, obj, "target", "syslog.target", target, sizeof target, &present) ||
        !present) {
        return !e->resp->status;
    }
    char host[USBIP_SYSLOG_TARGET_SIZE];
    uint16_t port;
    const char *reason = NULL;
    if (target[0] &&
        usbip_syslog_target_parse(target, host, sizeof host, &port, &reason) != USBIP_OK) {
        return bad(e, "syslog.target", reason ? reason : "expected host:port", target);
    }
    if (strlen(target) >= sizeof e->s->syslog_target) {
        return bad(e, "syslog.target", "too long", target);
    }
    if (strcmp(target, e->s->syslog_target) != 0) {
        memcpy(e->s->syslog_target, target, strlen(target) + 1); /* length checked above */
        e->reboot_needed = true;
    }
    return true;
}

void webui_handle_put_settings(webui_t *ui, const webui_request_t *req, webui_response_t *resp)
{
    json_token_t tokens[MAX_TOKENS];
    json_doc_t doc;
    if (!webui_parse_body(req, &doc, tokens, MAX_TOKENS, resp)) {
        return;
    }
    usbip_settings_t settings = *usbip_server_settings(ui->server);
    edit_t e = {.doc = &doc, .resp = resp, .s = &settings};
    static const char *const keys[] = {"hostname", "network", "access", "syslog"};
    if (!only_keys(&e, 0, "", keys, 4) || !edit_hostname(&e) || !edit_network(&e) ||
        !edit_access(&e) || !edit_syslog(&e)) {
        return;
    }
    usbip_err_t err = usbip_server_apply_settings(ui->server, &settings);
    if (err != USBIP_OK) {
        webui_reply_error(resp, 500, NULL, "settings could not be saved: %s",
                          usbip_err_name(err));
        return;
    }
    json_writer_t w;
    json_write_init(&w, 0);
    json_write_object_begin(&w);
    json_write_kv_bool(&w, "ok", true);
    json_write_kv_bool(&w, "reboot_needed", e.reboot_needed);
    json_write_object_end(&w);
    webui_reply_json(resp, 200, &w);
}
