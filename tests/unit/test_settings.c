#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file_store.h"
#include "settings_store.h"
#include "test_harness.h"
#include "usbip_log.h"

/* ---- temp dir and log capture -------------------------------------------- */

static char s_dir[256];
static char s_path[300];

static void make_temp_dir(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(s_dir, sizeof s_dir, "%s/usbip_settings_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(s_dir)) {
        perror("mkdtemp");
        exit(2);
    }
    snprintf(s_path, sizeof s_path, "%s/settings.conf", s_dir);
}

static void remove_temp_dir(void)
{
    DIR *d = opendir(s_dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
                char p[600];
                snprintf(p, sizeof p, "%s/%s", s_dir, de->d_name);
                unlink(p);
            }
        }
        closedir(d);
    }
    rmdir(s_dir);
}

static size_t files_in_temp_dir(void)
{
    size_t n = 0;
    DIR *d = opendir(s_dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    }
    if (d) {
        closedir(d);
    }
    return n;
}

static void write_file(const char *text)
{
    FILE *f = fopen(s_path, "w");
    if (!f) {
        perror(s_path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

static char *read_file(void)
{
    static char buf[8192];
    buf[0] = '\0';
    FILE *f = fopen(s_path, "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    return buf;
}

static char s_last_log[512];
static void capture_sink(void *ctx, usbip_log_level_t level, const char *tag, const char *message)
{
    (void)ctx;
    (void)level;
    snprintf(s_last_log, sizeof s_last_log, "%s: %s", tag, message);
}

static void begin(void)
{
    make_temp_dir();
    s_last_log[0] = '\0';
    usbip_log_set_sink(capture_sink, NULL);
}

static void end(void)
{
    usbip_log_set_sink(NULL, NULL);
    remove_temp_dir();
}

/* ---- tests ----------------------------------------------------------------- */

TEST(defaults)
{
    usbip_settings_t s;
    memset(&s, 0x5A, sizeof s);
    usbip_settings_defaults(&s);
    CHECK_EQ_INT(s.acl.mode, USBIP_ACCESS_OPEN);
    CHECK_EQ_INT(s.acl.count, 0);
    CHECK_STR(s.syslog_target, "");
}

TEST(missing_file_is_empty_store)
{
    begin();
    usbip_file_store_t *fs = NULL;
    usbip_store_t store;
    REQUIRE(usbip_file_store_open(s_path, &fs, &store) == USBIP_OK);
    char value[32];
    size_t len = sizeof value;
    CHECK_EQ_INT(store.ops->get(store.ctx, "acl_mode", value, &len), USBIP_ERR_NOT_FOUND);

    usbip_settings_t s;
    usbip_settings_defaults(&s);
    s.acl.mode = USBIP_ACCESS_CLOSED; /* load starts from the defaults */
    char err[256];
    CHECK_EQ_INT(usbip_settings_load(&s, &store, err, sizeof err), USBIP_OK);
    CHECK_EQ_INT(s.acl.mode, USBIP_ACCESS_OPEN);
    CHECK_EQ_INT(s.acl.count, 0);
    CHECK_STR(s.syslog_target, "");
    usbip_file_store_close(fs);
    CHECK_EQ_INT(files_in_temp_dir(), 0); /* opening does not create the file */
    end();
}

TEST(settings_round_trip)
{
    begin();
    usbip_file_store_t *fs = NULL;
    usbip_store_t store;
    REQUIRE(usbip_file_store_open(s_path, &fs, &store) == USBIP_OK);

    usbip_settings_t saved;
    usbip_settings_defaults(&saved);
    saved.acl.mode = USBIP_ACCESS_CLOSED;
    REQUIRE(usbip_acl_set_list(&saved.acl, "10.0.0.0/8, ::1, 192.168.1.5, fe80::/10", NULL, 0) ==
            USBIP_OK);
    snprintf(saved.syslog_target, sizeof saved.syslog_target, "logs.example.net:514");
    CHECK_EQ_INT(usbip_settings_save(&saved, &store), USBIP_OK);
    usbip_file_store_close(fs);

    struct stat st;
    REQUIRE(stat(s_path, &st) == 0);
    CHECK_EQ_INT(st.st_mode & 0777, 0600);
    CHECK_EQ_INT(files_in_temp_dir(), 1); /* no temporary file left behind */

    REQUIRE(usbip_file_store_open(s_path, &fs, &store) == USBIP_OK);
    usbip_settings_t loaded;
    usbip_settings_defaults(&loaded);
    char err[256];
    CHECK_EQ_INT(usbip_settings_load(&loaded, &store, err, sizeof err), USBIP_OK);
    CHECK_STR(err, "");
    CHECK_EQ_INT(loaded.acl.mode, USBIP_ACCESS_CLOSED);
    CHECK_EQ_INT(loaded.acl.count, 4);
    char list[256];
    usbip_acl_format_list(&loaded.acl, list, sizeof list);
    CHECK_STR(list, "10.0.0.0/8,::1,192.168.1.5,fe80::/10");
    CHECK_STR(loaded.syslog_target, "logs.example.net:514");
    usbip_file_store_close(fs);

    const char *text = read_file();
    CHECK(strstr(text, "\nacl_mode=closed\n") != NULL);
    CHECK(strstr(text, "\nacl_list=10.0.0.0/8,::1,192.168.1.5,fe80::/10\n") != NULL);
    CHECK(strstr(text, "\nsyslog_target=logs.example.net:514\n") != NULL);
    end();
}

TEST(long_allowlist_spans_several_keys)
{
    begin();
    usbip_file_store_t *fs = NULL;
    usbip_store_t store;
    REQUIRE(usbip_file_store_open(s_path, &fs, &store) == USBIP_OK);

    /* 32 of the longest entries: ~1.4 KB, more than one 511-byte value. */
    usbip_settings_t saved;
    usbip_settings_defaults(&saved);
    char text[2048] = "";
    size_t used = 0;
    for (int i = 0; i < USBIP_ACL_MAX_ENTRIES; i++) {
        used += (size_t)snprintf(text + used, sizeof text - used,
                                 "ffff:ffff:ffff:ffff:ffff:ffff:%04x:ff00/120 ", 0xff00 + i);
    }
    REQUIRE(usbip_acl_set_list(&saved.acl, text, NULL, 0) == USBIP_OK);
    REQUIRE(saved.acl.count == USBIP_ACL_MAX_ENTRIES);
    CHECK_EQ_INT(usbip_settings_save(&saved, &store), USBIP_OK);
    char value[USBIP_STORE_VALUE_MAX + 1];
    size_t len = sizeof value;
    CHECK_EQ_INT(store.ops->get(store.ctx, "acl_list_2", value, &len), USBIP_OK);
    usbip_file_store_close(fs);

    REQUIRE(usbip_file_store_open(s_path, &fs, &store) == USBIP_OK);
    usbip_settings_t loaded;
    char err[256];
    CHECK_EQ_INT(usbip_settings_load(&loaded, &store, err, sizeof err), USBIP_OK);
    REQUIRE(loaded.acl.count == USBIP_ACL_MAX_ENTRIES);
    CHECK(memcmp(loaded.acl.entries, saved.acl.entries, sizeof saved.acl.entries) == 0);

    /* A shorter list afterwards erases the continuation keys. */
    REQUIRE(usbip_acl_set_list(&loaded.acl, "10.0.0.1", NULL, 0) == USBIP_OK);
    CHECK_EQ_INT(usbip_settings_save(&loaded, &store), USBIP_OK);
    len = sizeof value;
    CHECK_EQ_INT(store.ops->get(store.ctx, "acl_list_2", value, &len), USBIP_ERR_NOT_FOUND);
    usbip_file_store_close(fs);
    CHECK(strstr(read_file(), "acl_list_2") == NULL);
    end();
}

TEST(corrupted_value_is_named)
{
    begin();
    usbip_file_store_t *fs = NULL;
    usbip_store_t store;
    usbip_settings_t s;
    char err[256];

    write_file("acl_mode=bogus\n");
    REQUIRE(usbip_file_store_open(s_path, &fs, &store) == USBIP_OK);
    usbip_settings_defaults(&s);
    snprintf(s.syslog_target, sizeof s.syslog_target, "keep.me:514");
    CHECK_EQ_INT(usbip_settings_load(&s, &store, err, sizeof err), USBIP_ERR_INVALID_ARG);
    CHECK_STR(err, "setting \"acl_mode\" = \"bogus\": expected \"open\" or \"closed\"");
    CHECK_STR(s.syslog_target, "keep.me:514"); /* untouched */
    usbip_file_store_close(fs);

    write_file("acl_mode=closed\nacl_list=10.0.0.1, 10.0.0.300/8\n");
    REQUIRE(usbip_file_store_open(s_path, &fs, &store) == USBIP_OK);
    usbip_settings_defaults(&s);
    CHECK_EQ_INT(usbip_settings_load(&s, &store, err, sizeof err), USBIP_ERR_INVALID_ARG);
    CHECK_STR(err, "setting \"acl_list\": allowlist entry \"10.0.0.300/8\": invalid IPv4 address");
    CHECK_EQ_INT(s.acl.mode, USBIP_ACCESS_OPEN); /* untouched, though acl_mode was fine */
    usbip_file_store_close(fs);

    write_file("syslog_target=logs:99999\n");
    REQUIRE(usbip_file_store_open(s_path, &fs, &store) == USBIP_OK);
    CHECK_EQ_INT(usbip_settings_load(&s, &store, err, sizeof err), USBIP_ERR_INVALID_ARG);
    CHECK_STR(err, "setting \"syslog_target\" = \"logs:99999\": port must be 1-65535");
    usbip_file_store_close(fs);

    /* A value the file store holds but that cannot be a setting (too long). */
    char big[700] = "syslog_target=";
    memset(big + strlen(big), 'a', 300);
    strcat(big, ":514\n");
    write_file(big);
    REQUIRE(usbip_file_store_open(s_path, &fs, &store) == USBIP_OK);
    CHECK_EQ_INT(usbip_settings_load(&s, &store, err, sizeof err), USBIP_ERR_INVALID_ARG);
    CHECK(strstr(err, "setting \"syslog_target\" = \"aaaa") == err);
    CHECK(strstr(err, "...\": longer than 63 characters") != NULL);
    usbip_file_store_close(fs);
    end();
}

TEST(malformed_line_names_path_and_line)
{
    begin();
    usbip_file_store_t *fs = (usbip_file_store_t *)&fs; /* must be reset */
    usbip_store_t store;
    char want[400];

    write_file("# settings\n\nacl_mode=open\nthis line has no equals sign\n");
    CHECK_EQ_INT(usbip_file_store_open(s_path, &fs, &store), USBIP_ERR_INVALID_ARG);
    CHECK(fs == NULL);
    snprintf(want, sizeof want, "file_store: %s:4: expected key=value", s_path);
    CHECK_STR(s_last_log, want);

    write_file("acl_mode=open\r\nsyslog_target=a\\qb\n");
    CHECK_EQ_INT(usbip_file_store_open(s_path, &fs, &store), USBIP_ERR_INVALID_ARG);
    snprintf(want, sizeof want, "%s:2: unknown escape", s_path);
    CHECK(strstr(s_last_log, want) != NULL);

    write_file("Acl_Mode=open\n");
    CHECK_EQ_INT(usbip_file_store_open(s_path, &fs, &store), USBIP_ERR_INVALID_ARG);
    snprintf(want, sizeof want, "%s:1: invalid key", s_path);
    CHECK(strstr(s_last_log, want) != NULL);

    write_file("a_key_of_sixteen=1\n");
    CHECK_EQ_INT(usbip_file_store_open(s_path, &fs, &store), USBIP_ERR_INVALID_ARG);
    CHECK(strstr(s_last_log, ":1: invalid key") != NULL);

    write_file("=value\n");
    CHECK_EQ_INT(usbip_file_store_open(s_path, &fs, &store), USBIP_ERR_INVALID_ARG);

    write_file("key=ends in backslash\\\n");
    CHECK_EQ_INT(usbip_file_store_open(s_path, &fs, &store), USBIP_ERR_INVALID_ARG);
    CHECK(strstr(s_last_log, ":1: value ends with a lone backslash") != NULL);

    /* Comments, blank lines and CRLF endings are fine. */
    write_file("  # comment\r\n\t\r\nacl_mode=closed\r\n");
    REQUIRE(usbip_file_store_open(s_path, &fs, &store) == USBIP_OK);
    char value[16];
    size_t len = sizeof value;
    CHECK_EQ_INT(store.ops->get(store.ctx, "acl_mode", value, &len), USBIP_OK);
    CHECK_STR(value, "closed");
    CHECK_EQ_INT(len, 6);
    usbip_file_store_close(fs);
    end();
}

TEST(commit_escapes_and_replaces_atomically)
{
    begin();
    /* An existing, world-readable file with a comment and an old value. */
    write_file("# hand-written\nold_key=old\n");
    chmod(s_path, 0644);
    struct stat before;
    REQUIRE(stat(s_path, &before) == 0);

    usbip_file_store_t *fs = NULL;
    usbip_store_t store;
    REQUIRE(usbip_file_store_open(s_path, &fs, &store) == USBIP_OK);
    CHECK_EQ_INT(store.ops->set(store.ctx, "note", "line1\nline2\\end\r"), USBIP_OK);
    CHECK_EQ_INT(store.ops->set(store.ctx, "empty", ""), USBIP_OK);
    CHECK_EQ_INT(store.ops->erase(store.ctx, "old_key"), USBIP_OK);
    CHECK_EQ_INT(store.ops->erase(store.ctx, "old_key"), USBIP_ERR_NOT_FOUND);

    /* Nothing reaches the file before commit. */
    CHECK(strstr(read_file(), "old_key=old") != NULL);
    CHECK_EQ_INT(store.ops->commit(store.ctx), USBIP_OK);
    usbip_file_store_close(fs);

    struct stat after;
    REQUIRE(stat(s_path, &after) == 0);
    CHECK_EQ_INT(after.st_mode & 0777, 0600);
    CHECK(after.st_ino != before.st_ino); /* replaced by rename, not rewritten in place */
    CHECK_EQ_INT(files_in_temp_dir(), 1);

    const char *text = read_file();
    CHECK(strstr(text, "\nnote=line1\\nline2\\\\end\\r\n") != NULL);
    CHECK(strstr(text, "\nempty=\n") != NULL);
    CHECK(strstr(text, "old_key") == NULL);
    CHECK(strstr(text, "hand-written") == NULL);

    REQUIRE(usbip_file_store_open(s_path, &fs, &store) == USBIP_OK);
    char value[64];
    size_t len = sizeof value;
    CHECK_EQ_INT(store.ops->get(store.ctx, "note", value, &len), USBIP_OK);
    CHECK_STR(value, "line1\nline2\\end\r");
    CHECK_EQ_INT(len, strlen("line1\nline2\\end\r"));
    len = sizeof value;
    CHECK_EQ_INT(store.ops->get(store.ctx, "empty", value, &len), USBIP_OK);
    CHECK_EQ_INT(len, 0);
    len = sizeof value;
    CHECK_EQ_INT(store.ops->get(store.ctx, "old_key", value, &len), USBIP_ERR_NOT_FOUND);
    usbip_file_store_close(fs);
    end();
}

TEST(uncommitted_changes_are_dropped)
{
    begin();
    usbip_file_store_t *fs = NULL;
    usbip_store_t store;
    REQUIRE(usbip_file_store_open(s_path, &fs, &store) == USBIP_OK);
    CHECK_EQ_INT(store.ops->set(store.ctx, "acl_mode", "closed"), USBIP_OK);
    char value[16];
    size_t len = sizeof value;
    CHECK_EQ_INT(store.ops->get(store.ctx, "acl_mode", value, &len), USBIP_OK); /* visible */
    usbip_file_store_close(fs);

    REQUIRE(usbip_file_store_open(s_path, &fs, &store) == USBIP_OK);
    len = sizeof value;
    CHECK_EQ_INT(store.ops->get(store.ctx, "acl_mode", value, &len), USBIP_ERR_NOT_FOUND);
    usbip_file_store_close(fs);
    end();
}

TEST(keys_and_values_are_checked)
{
    begin();
    usbip_file_store_t *fs = NULL;
    usbip_store_t store;
    REQUIRE(usbip_file_store_open(s_path, &fs, &store) == USBIP_OK);

    CHECK_EQ_INT(store.ops->set(store.ctx, "abcdefghijklmnop", "x"), USBIP_ERR_INVALID_ARG);
    CHECK(strstr(s_last_log, "abcdefghijklmnop") != NULL);
    CHECK_EQ_INT(store.ops->set(store.ctx, "abcdefghijklmno", "x"), USBIP_OK); /* 15 */
    CHECK_EQ_INT(store.ops->set(store.ctx, "", "x"), USBIP_ERR_INVALID_ARG);
    CHECK_EQ_INT(store.ops->set(store.ctx, "Upper", "x"), USBIP_ERR_INVALID_ARG);
    CHECK_EQ_INT(store.ops->set(store.ctx, "has space", "x"), USBIP_ERR_INVALID_ARG);
    CHECK_EQ_INT(store.ops->set(store.ctx, "a=b", "x"), USBIP_ERR_INVALID_ARG);
    CHECK_EQ_INT(store.ops->set(store.ctx, NULL, "x"), USBIP_ERR_INVALID_ARG);
    CHECK_EQ_INT(store.ops->set(store.ctx, "k", NULL), USBIP_ERR_INVALID_ARG);

    char value[USBIP_STORE_VALUE_MAX + 2];
    memset(value, 'v', sizeof value - 1);
    value[sizeof value - 1] = '\0'; /* 512 bytes */
    CHECK_EQ_INT(store.ops->set(store.ctx, "k", value), USBIP_ERR_INVALID_SIZE);
    value[USBIP_STORE_VALUE_MAX] = '\0'; /* 511 bytes */
    CHECK_EQ_INT(store.ops->set(store.ctx, "k", value), USBIP_OK);

    char small[8];
    size_t len = sizeof small;
    CHECK_EQ_INT(store.ops->get(store.ctx, "k", small, &len), USBIP_ERR_INVALID_SIZE);
    len = sizeof small;
    CHECK_EQ_INT(store.ops->get(store.ctx, "abcdefghijklmnop", small, &len), USBIP_ERR_INVALID_ARG);
    CHECK_EQ_INT(store.ops->erase(store.ctx, "abcdefghijklmnop"), USBIP_ERR_INVALID_ARG);
    CHECK_EQ_INT(store.ops->erase(store.ctx, "absent"), USBIP_ERR_NOT_FOUND);

    /* A value over 511 bytes in the file is refused at open. */
    usbip_file_store_close(fs);
    char line[700] = "k=";
    memset(line + 2, 'v', 512);
    strcpy(line + 514, "\n");
    write_file(line);
    CHECK_EQ_INT(usbip_file_store_open(s_path, &fs, &store), USBIP_ERR_INVALID_ARG);
    CHECK(strstr(s_last_log, ":1: value longer than 511 bytes") != NULL);
    end();
}

TEST(save_refuses_invalid_settings)
{
    begin();
    usbip_file_store_t *fs = NULL;
    usbip_store_t store;
    REQUIRE(usbip_file_store_open(s_path, &fs, &store) == USBIP_OK);
    usbip_settings_t s;
    usbip_settings_defaults(&s);
    snprintf(s.syslog_target, sizeof s.syslog_target, "no-port");
    CHECK_EQ_INT(usbip_settings_save(&s, &store), USBIP_ERR_INVALID_ARG);
    CHECK(strstr(s_last_log, "syslog_target \"no-port\"") != NULL);
    usbip_settings_defaults(&s);
    s.acl.mode = (usbip_access_mode_t)5;
    CHECK_EQ_INT(usbip_settings_save(&s, &store), USBIP_ERR_INVALID_ARG);
    CHECK_EQ_INT(usbip_settings_save(&s, NULL), USBIP_ERR_INVALID_ARG);
    usbip_file_store_close(fs);
    CHECK_EQ_INT(files_in_temp_dir(), 0);
    end();
}

static bool target_ok(const char *text, const char *want_host, unsigned want_port)
{
    char host[64];
    uint16_t port;
    const char *reason = NULL;
    if (usbip_syslog_target_parse(text, host, sizeof host, &port, &reason) != USBIP_OK) {
        fprintf(stderr, "  \"%s\" refused: %s\n", text, reason);
        return false;
    }
    return strcmp(host, want_host) == 0 && port == want_port;
}

TEST(syslog_target_parse)
{
    CHECK(target_ok("", "", 0));
    CHECK(target_ok("logs.example.net:514", "logs.example.net", 514));
    CHECK(target_ok("10.0.0.2:6514", "10.0.0.2", 6514));
    CHECK(target_ok("[::1]:514", "::1", 514));
    CHECK(target_ok("[fe80::1]:65535", "fe80::1", 65535));

    const char *bad[] = {"host", "host:", "host:0", "host:65536", "host:05", ":514", "::1:514",
                         "[::1]514", "[::1", "[10.0.0.1]:514", "10.0.0.300:514", "bad host:514",
                         "host:51x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *reason = NULL;
        if (usbip_syslog_target_parse(bad[i], NULL, 0, NULL, &reason) == USBIP_OK || !reason) {
            fprintf(stderr, "  accepted bad syslog target \"%s\"\n", bad[i]);
            test_failures_in_case++;
        }
    }
    const char *reason = NULL;
    CHECK_EQ_INT(usbip_syslog_target_parse("::1:514", NULL, 0, NULL, &reason),
                 USBIP_ERR_INVALID_ARG);
    CHECK(strstr(reason, "brackets") != NULL);
}

/* ---- hostname and network (the firmware's settings) ---- */

static usbip_ip_addr_t ipv4(const char *text)
{
    usbip_ip_addr_t a;
    memset(&a, 0, sizeof a);
    if (usbip_ip_addr_parse(text, &a) != USBIP_OK) {
        fprintf(stderr, "  bad test address %s\n", text);
        test_failures_in_case++;
    }
    return a;
}

static usbip_net_settings_t static_net(const char *ip, const char *mask, const char *gw)
{
    usbip_net_settings_t net;
    memset(&net, 0, sizeof net);
    net.mode = USBIP_NET_STATIC;
    net.address = ipv4(ip);
    net.netmask = ipv4(mask);
    if (gw) {
        net.gateway = ipv4(gw);
    }
    return net;
}

TEST(network_defaults_are_dhcp_and_default_hostname)
{
    usbip_settings_t s;
    memset(&s, 0x5A, sizeof s);
    usbip_settings_defaults(&s);
    CHECK_STR(s.hostname, "");
    CHECK_EQ_INT(s.net.mode, USBIP_NET_DHCP);
    CHECK_EQ_INT(s.net.address.family, 0);
    CHECK_EQ_INT(s.net.dns.family, 0);
    CHECK_EQ_INT(usbip_net_settings_check(&s.net, NULL), USBIP_OK);
}

TEST(network_settings_round_trip)
{
    begin();
    usbip_file_store_t *fs = NULL;
    usbip_store_t store;
    REQUIRE(usbip_file_store_open(s_path, &fs, &store) == USBIP_OK);
    usbip_settings_t saved;
    usbip_settings_defaults(&saved);
    snprintf(saved.hostname, sizeof saved.hostname, "bench-usbip-2");
    saved.net = static_net("192.168.10.50", "255.255.255.0", "192.168.10.1");
    saved.net.dns = ipv4("192.168.10.2");
    CHECK_EQ_INT(usbip_settings_save(&saved, &store), USBIP_OK);
    usbip_file_store_close(fs);

    const char *text = read_file();
    CHECK(strstr(text, "\nhostname=bench-usbip-2\n") != NULL);
    CHECK(strstr(text, "\nnet_mode=static\n") != NULL);
    CHECK(strstr(text, "\nnet_ip=192.168.10.50\n") != NULL);
    CHECK(strstr(text, "\nnet_mask=255.255.255.0\n") != NULL);
    CHECK(strstr(text, "\nnet_gw=192.168.10.1\n") != NULL);
    CHECK(strstr(text, "\nnet_dns=192.168.10.2\n") != NULL);

    REQUIRE(usbip_file_store_open(s_path, &fs, &store) == USBIP_OK);
    usbip_settings_t loaded;
    usbip_settings_defaults(&loaded);
    char err[256];
    CHECK_EQ_INT(usbip_settings_load(&loaded, &store, err, sizeof err), USBIP_OK);
    CHECK_STR(err, "");
    CHECK_STR(loaded.hostname, "bench-usbip-2");
    CHECK_EQ_INT(loaded.net.mode, USBIP_NET_STATIC);
    CHECK(usbip_ip_addr_equal(&loaded.net.address, &saved.net.address));
    CHECK(usbip_ip_addr_equal(&loaded.net.netmask, &saved.net.netmask));
    CHECK(usbip_ip_addr_equal(&loaded.net.gateway, &saved.net.gateway));
    CHECK(usbip_ip_addr_equal(&loaded.net.dns, &saved.net.dns));
    usbip_file_store_close(fs);

    /* Back to DHCP: unset addresses are stored empty and load unset. */
    REQUIRE(usbip_file_store_open(s_path, &fs, &store) == USBIP_OK);
    usbip_settings_defaults(&saved);
    CHECK_EQ_INT(usbip_settings_save(&saved, &store), USBIP_OK);
    usbip_file_store_close(fs);
    CHECK(strstr(read_file(), "\nnet_ip=\n") != NULL);
    REQUIRE(usbip_file_store_open(s_path, &fs, &store) == USBIP_OK);
    CHECK_EQ_INT(usbip_settings_load(&loaded, &store, err, sizeof err), USBIP_OK);
    CHECK_EQ_INT(loaded.net.mode, USBIP_NET_DHCP);
    CHECK_EQ_INT(loaded.net.address.family, 0);
    CHECK_STR(loaded.hostname, "");
    usbip_file_store_close(fs);
    end();
}

/* Load text as a settings file and expect it refused with exactly want. */
static void expect_load_error(const char *text, const char *want)
{
    usbip_file_store_t *fs = NULL;
    usbip_store_t store;
    write_file(text);
    if (usbip_file_store_open(s_path, &fs, &store) != USBIP_OK) {
        fprintf(stderr, "  cannot open store for \"%s\"\n", text);
        test_failures_in_case++;
        return;
    }
    usbip_settings_t s;
    usbip_settings_defaults(&s);
    snprintf(s.hostname, sizeof s.hostname, "kept");
    char err[256] = "";
    CHECK_EQ_INT(usbip_settings_load(&s, &store, err, sizeof err), USBIP_ERR_INVALID_ARG);
    CHECK_STR(err, want);
    CHECK_STR(s.hostname, "kept"); /* untouched */
    usbip_file_store_close(fs);
}

TEST(bad_network_values_are_named)
{
    begin();
    expect_load_error("hostname=-bad\n",
                      "setting \"hostname\" = \"-bad\": a hostname must not start or end with '-'");
    expect_load_error("hostname=has_underscore\n",
                      "setting \"hostname\" = \"has_underscore\": a hostname may hold only "
                      "letters, digits and '-'");
    expect_load_error("hostname=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", /* 33 */
                      "setting \"hostname\" = \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\": longer than "
                      "32 characters");
    expect_load_error("net_mode=manual\n",
                      "setting \"net_mode\" = \"manual\": expected \"dhcp\" or \"static\"");
    expect_load_error("net_ip=10.0.0.300\n",
                      "setting \"net_ip\" = \"10.0.0.300\": expected an IPv4 address");
    expect_load_error("net_dns=::1\n", "setting \"net_dns\" = \"::1\": expected an IPv4 address");
    expect_load_error("net_mode=static\nnet_ip=10.0.0.5\n",
                      "setting \"net_mode\" = \"static\": static addressing needs net_ip and "
                      "net_mask");
    expect_load_error("net_mode=static\nnet_ip=10.0.0.5\nnet_mask=255.255.255.0\n"
                      "net_gw=10.0.1.1\n",
                      "setting \"net_mode\" = \"static\": net_gw is outside net_ip/net_mask or "
                      "equal to net_ip");
    /* DHCP keeps a half-typed static configuration without complaint. */
    usbip_file_store_t *fs = NULL;
    usbip_store_t store;
    write_file("net_mode=dhcp\nnet_ip=10.0.0.5\n");
    REQUIRE(usbip_file_store_open(s_path, &fs, &store) == USBIP_OK);
    usbip_settings_t s;
    char err[256];
    CHECK_EQ_INT(usbip_settings_load(&s, &store, err, sizeof err), USBIP_OK);
    CHECK_EQ_INT(s.net.address.family, 4);
    usbip_file_store_close(fs);
    end();
}

TEST(network_check_rules)
{
    usbip_net_settings_t net = static_net("10.1.2.3", "255.0.0.0", "10.0.0.1");
    CHECK_EQ_INT(usbip_net_settings_check(&net, NULL), USBIP_OK);
    net = static_net("192.168.1.7", "255.255.255.255", NULL); /* /32: no gateway needed */
    CHECK_EQ_INT(usbip_net_settings_check(&net, NULL), USBIP_OK);
    net = static_net("192.168.1.0", "255.255.255.254", NULL); /* /31 point-to-point */
    CHECK_EQ_INT(usbip_net_settings_check(&net, NULL), USBIP_OK);

    const char *reason = NULL;
    net = static_net("192.168.1.7", "255.0.255.0", NULL);
    CHECK_EQ_INT(usbip_net_settings_check(&net, &reason), USBIP_ERR_INVALID_ARG);
    CHECK(reason && strstr(reason, "contiguous") != NULL);
    net = static_net("192.168.1.0", "255.255.255.0", NULL);
    CHECK_EQ_INT(usbip_net_settings_check(&net, &reason), USBIP_ERR_INVALID_ARG);
    CHECK(reason && strstr(reason, "network or broadcast") != NULL);
    net = static_net("192.168.1.255", "255.255.255.0", NULL);
    CHECK_EQ_INT(usbip_net_settings_check(&net, &reason), USBIP_ERR_INVALID_ARG);
    net = static_net("0.0.0.0", "255.255.255.255", NULL);
    CHECK_EQ_INT(usbip_net_settings_check(&net, &reason), USBIP_ERR_INVALID_ARG);
    net = static_net("192.168.1.7", "255.255.255.0", "192.168.1.7");
    CHECK_EQ_INT(usbip_net_settings_check(&net, &reason), USBIP_ERR_INVALID_ARG);
    net = static_net("192.168.1.7", "255.255.255.0", NULL);
    net.dns = ipv4("fe80::1");
    CHECK_EQ_INT(usbip_net_settings_check(&net, &reason), USBIP_ERR_INVALID_ARG);
    CHECK(reason && strstr(reason, "IPv4") != NULL);
    net.dns.family = 0;
    net.mode = (usbip_net_mode_t)7;
    CHECK_EQ_INT(usbip_net_settings_check(&net, &reason), USBIP_ERR_INVALID_ARG);

    CHECK_EQ_INT(usbip_hostname_check("", NULL), USBIP_OK);
    CHECK_EQ_INT(usbip_hostname_check("usbip-esp32p4", NULL), USBIP_OK);
    CHECK_EQ_INT(usbip_hostname_check("a", NULL), USBIP_OK);
    CHECK_EQ_INT(usbip_hostname_check("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL), USBIP_OK); /* 32 */
    CHECK_EQ_INT(usbip_hostname_check("trailing-", NULL), USBIP_ERR_INVALID_ARG);
    CHECK_EQ_INT(usbip_hostname_check("dot.ted", NULL), USBIP_ERR_INVALID_ARG);
    CHECK_EQ_INT(usbip_hostname_check(NULL, NULL), USBIP_ERR_INVALID_ARG);
}

TEST(save_refuses_invalid_network_settings)
{
    begin();
    usbip_file_store_t *fs = NULL;
    usbip_store_t store;
    REQUIRE(usbip_file_store_open(s_path, &fs, &store) == USBIP_OK);
    usbip_settings_t s;
    usbip_settings_defaults(&s);
    s.net = static_net("10.0.0.5", "255.255.255.0", "10.9.9.9");
    CHECK_EQ_INT(usbip_settings_save(&s, &store), USBIP_ERR_INVALID_ARG);
    CHECK(strstr(s_last_log, "network settings: net_gw is outside") != NULL);
    usbip_settings_defaults(&s);
    memset(s.hostname, 'x', sizeof s.hostname); /* not NUL-terminated */
    CHECK_EQ_INT(usbip_settings_save(&s, &store), USBIP_ERR_INVALID_ARG);
    CHECK(strstr(s_last_log, "longer than 32 characters") != NULL);
    usbip_file_store_close(fs);
    CHECK_EQ_INT(files_in_temp_dir(), 0); /* nothing was committed */
    end();
}

TEST_MAIN("settings", TEST_ENTRY(defaults), TEST_ENTRY(missing_file_is_empty_store),
          TEST_ENTRY(settings_round_trip), TEST_ENTRY(long_allowlist_spans_several_keys),
          TEST_ENTRY(corrupted_value_is_named), TEST_ENTRY(malformed_line_names_path_and_line),
          TEST_ENTRY(commit_escapes_and_replaces_atomically),
          TEST_ENTRY(uncommitted_changes_are_dropped), TEST_ENTRY(keys_and_values_are_checked),
          TEST_ENTRY(save_refuses_invalid_settings), TEST_ENTRY(syslog_target_parse),
          TEST_ENTRY(network_defaults_are_dhcp_and_default_hostname),
          TEST_ENTRY(network_settings_round_trip), TEST_ENTRY(bad_network_values_are_named),
          TEST_ENTRY(network_check_rules), TEST_ENTRY(save_refuses_invalid_network_settings))
