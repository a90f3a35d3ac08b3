#include <string.h>

#include "access_control.h"
#include "test_harness.h"

static usbip_ip_addr_t addr(const char *text)
{
    usbip_ip_addr_t a;
    memset(&a, 0, sizeof a);
    if (usbip_ip_addr_parse(text, &a) != USBIP_OK) {
        fprintf(stderr, "  test setup: cannot parse %s\n", text);
        test_failures_in_case++;
    }
    return a;
}

static usbip_cidr_t cidr(const char *text)
{
    usbip_cidr_t c;
    memset(&c, 0, sizeof c);
    if (usbip_cidr_parse(text, &c) != USBIP_OK) {
        fprintf(stderr, "  test setup: cannot parse %s\n", text);
        test_failures_in_case++;
    }
    return c;
}

static const char *format_addr(const char *text)
{
    static char buf[USBIP_IP_ADDR_TEXT_SIZE];
    usbip_ip_addr_t a = addr(text);
    usbip_ip_addr_format(&a, buf, sizeof buf);
    return buf;
}

static const char *format_cidr(const char *text)
{
    static char buf[USBIP_CIDR_TEXT_SIZE];
    usbip_cidr_t c = cidr(text);
    usbip_cidr_format(&c, buf, sizeof buf);
    return buf;
}

static bool parses(const char *text)
{
    usbip_ip_addr_t a;
    return usbip_ip_addr_parse(text, &a) == USBIP_OK;
}

TEST(ipv4_parse_valid)
{
    usbip_ip_addr_t a = addr("192.168.1.7");
    CHECK_EQ_INT(a.family, 4);
    CHECK_EQ_INT(a.bytes[0], 192);
    CHECK_EQ_INT(a.bytes[1], 168);
    CHECK_EQ_INT(a.bytes[2], 1);
    CHECK_EQ_INT(a.bytes[3], 7);
    CHECK_EQ_INT(a.bytes[4], 0);
    CHECK(parses("0.0.0.0"));
    CHECK(parses("255.255.255.255"));
}

TEST(ipv4_parse_invalid)
{
    const char *bad[] = {"1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.256", "01.2.3.4", "1.2.3.04",
                         "1..3.4", ".1.2.3", "1.2.3.", "1.2.3.4444", "a.b.c.d", "1.2.3.-4",
                         "+1.2.3.4", " 1.2.3.4", "1.2.3.4 ", "", "localhost", "1234"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parses(bad[i])) {
            fprintf(stderr, "  accepted bad IPv4 \"%s\"\n", bad[i]);
            test_failures_in_case++;
        }
    }
    usbip_ip_addr_t a;
    CHECK_EQ_INT(usbip_ip_addr_parse(NULL, &a), USBIP_ERR_INVALID_ARG);
    CHECK_EQ_INT(usbip_ip_addr_parse("1.2.3.4", NULL), USBIP_ERR_INVALID_ARG);
}

TEST(ipv6_parse_valid)
{
    usbip_ip_addr_t a = addr("::1");
    CHECK_EQ_INT(a.family, 6);
    CHECK_EQ_INT(a.bytes[15], 1);
    CHECK_EQ_INT(a.bytes[0], 0);

    a = addr("2001:db8::ff00:42:8329");
    static const uint8_t want[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                     0, 0, 0xff, 0x00, 0x00, 0x42, 0x83, 0x29};
    CHECK(memcmp(a.bytes, want, 16) == 0);

    a = addr("::ffff:10.0.0.1");
    static const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1};
    CHECK(memcmp(a.bytes, mapped, 16) == 0);

    const char *good[] = {"::", "1::", "fe80::1", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::",
                          "::2:3:4:5:6:7:8", "1:2:3:4:5:6:1.2.3.4", "::1.2.3.4", "2001:DB8::A",
                          "0000:0000:0000:0000:0000:0000:0000:0001"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (!parses(good[i])) {
            fprintf(stderr, "  refused good IPv6 \"%s\"\n", good[i]);
            test_failures_in_case++;
        }
    }
}

TEST(ipv6_parse_invalid)
{
    const char *bad[] = {"::1::", "1:2:3:4:5:6:7:8:9", ":::", "1:", ":1", "12345::", "fe80::1%eth0",
                         "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7", "::1.2.3",
                         "::1.2.3.4:5", "::256.1.1.1", "g::1", "1:2:3:4:5:6:7:1.2.3.4",
                         "1::2::3", "[::1]", "::1 ", "1:2:3:4:5:6:7:8%1", ":", "1.2.3.4::"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parses(bad[i])) {
            fprintf(stderr, "  accepted bad IPv6 \"%s\"\n", bad[i]);
            test_failures_in_case++;
        }
    }
}

TEST(format_is_canonical)
{
    CHECK_STR(format_addr("10.0.0.1"), "10.0.0.1");
    CHECK_STR(format_addr("2001:0DB8:0000:0000:0000:0000:0000:0001"), "2001:db8::1");
    CHECK_STR(format_addr("0:0:0:0:0:0:0:0"), "::");
    CHECK_STR(format_addr("0:0:0:0:0:0:0:1"), "::1");
    CHECK_STR(format_addr("1:0:0:0:0:0:0:0"), "1::");
    /* Longest run wins; on a tie the first; a single zero group stays. */
    CHECK_STR(format_addr("1:0:0:1:0:0:0:1"), "1:0:0:1::1");
    CHECK_STR(format_addr("1:0:0:2:0:0:3:4"), "1::2:0:0:3:4");
    CHECK_STR(format_addr("1:0:2:3:4:5:6:7"), "1:0:2:3:4:5:6:7");
    CHECK_STR(format_addr("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");
    CHECK_STR(format_addr("FE80::ABCD:0:0:1"), "fe80::abcd:0:0:1");
    CHECK_STR(format_addr("::ffff:a00:1"), "::ffff:10.0.0.1");
    CHECK_STR(format_addr("::ffff:10.0.0.1"), "::ffff:10.0.0.1");
    CHECK_STR(format_addr("::1.2.3.4"), "::102:304");
    CHECK_STR(format_addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
              "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
}

TEST(format_round_trips)
{
    const char *texts[] = {"10.0.0.1", "255.255.255.255", "::", "::1", "fe80::1",
                           "2001:db8::ff00:42:8329", "1:2:3:4:5:6:7:8", "::ffff:192.0.2.1",
                           "1:0:0:1::1", "1::"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        usbip_ip_addr_t a = addr(texts[i]), b;
        char buf[USBIP_IP_ADDR_TEXT_SIZE];
        usbip_ip_addr_format(&a, buf, sizeof buf);
        CHECK_STR(buf, texts[i]);
        REQUIRE(usbip_ip_addr_parse(buf, &b) == USBIP_OK);
        CHECK(usbip_ip_addr_equal(&a, &b));
    }
}

TEST(format_truncates_safely)
{
    usbip_ip_addr_t a = addr("192.168.100.200");
    char buf[6];
    memset(buf, 'Z', sizeof buf);
    usbip_ip_addr_format(&a, buf, sizeof buf);
    CHECK_STR(buf, "192.1");
    usbip_ip_addr_format(&a, buf, 0); /* must not write */
    CHECK_STR(buf, "192.1");
}

TEST(from_ipv4_host_order)
{
    usbip_ip_addr_t a;
    char buf[USBIP_IP_ADDR_TEXT_SIZE];
    usbip_ip_addr_from_ipv4(0xC0A80107u, &a);
    usbip_ip_addr_format(&a, buf, sizeof buf);
    CHECK_STR(buf, "192.168.1.7");
    usbip_ip_addr_t b = addr("192.168.1.7");
    CHECK(usbip_ip_addr_equal(&a, &b));
}

TEST(cidr_parse_and_format)
{
    CHECK_STR(format_cidr("10.0.0.0/8"), "10.0.0.0/8");
    CHECK_STR(format_cidr("10.1.2.3/8"), "10.0.0.0/8"); /* host bits cleared */
    CHECK_STR(format_cidr("10.0.0.255/25"), "10.0.0.128/25");
    CHECK_STR(format_cidr("192.168.1.7"), "192.168.1.7");
    CHECK_STR(format_cidr("192.168.1.7/32"), "192.168.1.7");
    CHECK_STR(format_cidr("0.0.0.0/0"), "0.0.0.0/0");
    CHECK_STR(format_cidr("1.2.3.4/0"), "0.0.0.0/0");
    CHECK_STR(format_cidr("::1"), "::1");
    CHECK_STR(format_cidr("::1/128"), "::1");
    CHECK_STR(format_cidr("fe80::/10"), "fe80::/10");
    CHECK_STR(format_cidr("febf:ffff::1/10"), "fe80::/10");
    CHECK_STR(format_cidr("::/0"), "::/0");
    CHECK_STR(format_cidr("2001:db8:1234::/48"), "2001:db8:1234::/48");
    CHECK_STR(format_cidr("::ffff:10.0.0.1"), "::ffff:10.0.0.1");
    CHECK_STR(format_cidr("::ffff:0:0/96"), "::ffff:0.0.0.0/96");

    usbip_cidr_t c = cidr("192.168.1.7");
    CHECK_EQ_INT(c.prefix_len, 32);
    c = cidr("::1");
    CHECK_EQ_INT(c.prefix_len, 128);
    c = cidr("fe80::/10");
    CHECK_EQ_INT(c.prefix_len, 10);
    CHECK_EQ_INT(c.addr.family, 6);
}

TEST(cidr_parse_invalid)
{
    const char *bad[] = {"/33",         "/129",         "10.0.0.0/33", "::/129",     "fe80::/200",
                         "10.0.0.0/",   "10.0.0.0/8/8", "10.0.0.0/ 8", "10.0.0.0/08", "10.0.0.0/-1",
                         "10.0.0.0/1a", "10.0.0.0/+8",  "1.2.3/8",     "::1::/64",   "",
                         "/",           "10.0.0.0/1000", "abc"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        usbip_cidr_t c;
        if (usbip_cidr_parse(bad[i], &c) == USBIP_OK) {
            fprintf(stderr, "  accepted bad CIDR \"%s\"\n", bad[i]);
            test_failures_in_case++;
        }
    }
    usbip_cidr_t c;
    const char *reason = NULL;
    CHECK_EQ_INT(usbip_cidr_parse_reason("10.0.0.300/8", &c, &reason), USBIP_ERR_INVALID_ARG);
    CHECK_STR(reason, "invalid IPv4 address");
    CHECK_EQ_INT(usbip_cidr_parse_reason("10.0.0.0/33", &c, &reason), USBIP_ERR_INVALID_ARG);
    CHECK_STR(reason, "prefix length above 32");
    CHECK_EQ_INT(usbip_cidr_parse_reason("::/129", &c, &reason), USBIP_ERR_INVALID_ARG);
    CHECK_STR(reason, "prefix length above 128");
    CHECK_EQ_INT(usbip_cidr_parse_reason("/33", &c, &reason), USBIP_ERR_INVALID_ARG);
    CHECK_STR(reason, "missing address");
    CHECK_EQ_INT(usbip_cidr_parse_reason("::1::", &c, &reason), USBIP_ERR_INVALID_ARG);
    CHECK_STR(reason, "invalid IPv6 address");
    CHECK_EQ_INT(usbip_cidr_parse_reason("10.0.0.0/x", &c, &reason), USBIP_ERR_INVALID_ARG);
    CHECK_STR(reason, "invalid prefix length");
    CHECK_EQ_INT(usbip_cidr_parse_reason("host", &c, &reason), USBIP_ERR_INVALID_ARG);
    CHECK_STR(reason, "not an IPv4 or IPv6 address");
}

static bool contains(const char *range, const char *address)
{
    usbip_cidr_t c = cidr(range);
    usbip_ip_addr_t a = addr(address);
    return usbip_cidr_contains(&c, &a);
}

TEST(cidr_contains)
{
    CHECK(contains("10.0.0.0/8", "10.255.1.1"));
    CHECK(contains("10.0.0.0/8", "10.0.0.0"));
    CHECK(!contains("10.0.0.0/8", "11.0.0.1"));
    CHECK(!contains("10.0.0.0/8", "9.255.255.255"));
    CHECK(contains("192.168.1.128/25", "192.168.1.200"));
    CHECK(!contains("192.168.1.128/25", "192.168.1.127"));
    CHECK(contains("192.168.1.7", "192.168.1.7"));
    CHECK(!contains("192.168.1.7", "192.168.1.8"));
    CHECK(contains("fe80::/10", "fe80::1"));
    CHECK(contains("fe80::/10", "febf::1"));
    CHECK(!contains("fe80::/10", "fec0::1"));
    CHECK(contains("::1", "::1"));
    CHECK(!contains("::1", "::2"));
    CHECK(contains("2001:db8::/32", "2001:db8:ffff::5"));
    CHECK(!contains("2001:db8::/32", "2001:db9::5"));
}

TEST(cidr_contains_zero_prefix)
{
    CHECK(contains("0.0.0.0/0", "1.2.3.4"));
    CHECK(contains("0.0.0.0/0", "255.255.255.255"));
    CHECK(contains("0.0.0.0/0", "::ffff:1.2.3.4"));
    CHECK(!contains("0.0.0.0/0", "2001:db8::1"));
    CHECK(contains("::/0", "2001:db8::1"));
    CHECK(contains("::/0", "::"));
    CHECK(contains("::/0", "1.2.3.4")); /* as ::ffff:1.2.3.4 */
}

TEST(cidr_contains_ipv4_mapped_both_ways)
{
    /* A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d. */
    CHECK(contains("10.0.0.0/8", "::ffff:10.0.0.1"));
    CHECK(!contains("10.0.0.0/8", "::ffff:11.0.0.1"));
    CHECK(contains("192.168.1.7", "::ffff:192.168.1.7"));
    /* An IPv4-compatible (not mapped) address is not IPv4. */
    CHECK(!contains("10.0.0.0/8", "::10.0.0.1"));
    CHECK(!contains("10.0.0.0/8", "ffff::a00:1"));
    /* And an IPv4 peer matches mapped IPv6 entries. */
    CHECK(contains("::ffff:0:0/96", "10.0.0.1"));
    CHECK(contains("::ffff:10.0.0.0/104", "10.200.0.1"));
    CHECK(!contains("::ffff:10.0.0.0/104", "11.0.0.1"));
    CHECK(contains("::ffff:10.0.0.1", "10.0.0.1"));
    CHECK(!contains("fe80::/10", "10.0.0.1"));
    CHECK(!contains("::1", "127.0.0.1"));
}

TEST(acl_open_allows_everyone)
{
    usbip_acl_t acl;
    usbip_acl_init(&acl);
    CHECK_EQ_INT(acl.mode, USBIP_ACCESS_OPEN);
    CHECK_EQ_INT(acl.count, 0);
    usbip_ip_addr_t a = addr("203.0.113.9"), b = addr("2001:db8::1");
    CHECK(usbip_acl_allows(&acl, &a));
    CHECK(usbip_acl_allows(&acl, &b));
    /* The list does not restrict an open server. */
    REQUIRE(usbip_acl_set_list(&acl, "10.0.0.0/8", NULL, 0) == USBIP_OK);
    CHECK(usbip_acl_allows(&acl, &a));
}

TEST(acl_closed_allows_only_listed)
{
    usbip_acl_t acl;
    usbip_acl_init(&acl);
    acl.mode = USBIP_ACCESS_CLOSED;
    usbip_ip_addr_t lo4 = addr("127.0.0.1"), lo6 = addr("::1");
    /* Closed and empty: nobody, loopback included. */
    CHECK(!usbip_acl_allows(&acl, &lo4));
    CHECK(!usbip_acl_allows(&acl, &lo6));

    char err[128];
    REQUIRE(usbip_acl_set_list(&acl, "10.0.0.0/8, ::1,192.168.1.5", err, sizeof err) == USBIP_OK);
    CHECK_STR(err, "");
    CHECK_EQ_INT(acl.count, 3);
    usbip_ip_addr_t in1 = addr("10.9.8.7"), in2 = addr("192.168.1.5");
    usbip_ip_addr_t in3 = addr("::ffff:10.1.1.1");
    usbip_ip_addr_t out1 = addr("192.168.1.6"), out2 = addr("2001:db8::1");
    CHECK(usbip_acl_allows(&acl, &in1));
    CHECK(usbip_acl_allows(&acl, &in2));
    CHECK(usbip_acl_allows(&acl, &in3));
    CHECK(usbip_acl_allows(&acl, &lo6));
    CHECK(!usbip_acl_allows(&acl, &lo4));
    CHECK(!usbip_acl_allows(&acl, &out1));
    CHECK(!usbip_acl_allows(&acl, &out2));
    CHECK(!usbip_acl_allows(&acl, NULL));
    CHECK(!usbip_acl_allows(NULL, &in1));
}

TEST(acl_set_list_separators_and_format)
{
    usbip_acl_t acl;
    usbip_acl_init(&acl);
    char buf[256];
    REQUIRE(usbip_acl_set_list(&acl, "  10.1.2.3/8,,::1  192.168.1.5\t2001:DB8::/32, ", NULL, 0) ==
            USBIP_OK);
    CHECK_EQ_INT(acl.count, 4);
    size_t n = usbip_acl_format_list(&acl, buf, sizeof buf);
    CHECK_STR(buf, "10.0.0.0/8,::1,192.168.1.5,2001:db8::/32");
    CHECK_EQ_INT(n, strlen("10.0.0.0/8,::1,192.168.1.5,2001:db8::/32"));

    /* Exact duplicates (after canonicalising) are kept once. */
    REQUIRE(usbip_acl_set_list(&acl, "10.0.0.0/8 10.9.9.9/8 ::1 0::1", NULL, 0) == USBIP_OK);
    CHECK_EQ_INT(acl.count, 2);

    REQUIRE(usbip_acl_set_list(&acl, "", NULL, 0) == USBIP_OK);
    CHECK_EQ_INT(acl.count, 0);
    CHECK_EQ_INT(usbip_acl_format_list(&acl, buf, sizeof buf), 0);
    CHECK_STR(buf, "");
    REQUIRE(usbip_acl_set_list(&acl, " , \t", NULL, 0) == USBIP_OK);
    CHECK_EQ_INT(acl.count, 0);
}

TEST(acl_format_list_reports_needed_length)
{
    usbip_acl_t acl;
    usbip_acl_init(&acl);
    REQUIRE(usbip_acl_set_list(&acl, "10.0.0.0/8,::1", NULL, 0) == USBIP_OK);
    char small[6];
    size_t needed = usbip_acl_format_list(&acl, small, sizeof small);
    CHECK_EQ_INT(needed, strlen("10.0.0.0/8,::1"));
    CHECK_STR(small, "10.0.");
    CHECK_EQ_INT(usbip_acl_format_list(&acl, NULL, 0), needed);
}

TEST(acl_set_list_errors_name_the_entry)
{
    usbip_acl_t acl;
    usbip_acl_init(&acl);
    REQUIRE(usbip_acl_set_list(&acl, "172.16.0.0/12", NULL, 0) == USBIP_OK);
    char err[128];

    CHECK_EQ_INT(usbip_acl_set_list(&acl, "10.0.0.0/8, 10.0.0.300/8", err, sizeof err),
                 USBIP_ERR_INVALID_ARG);
    CHECK_STR(err, "allowlist entry \"10.0.0.300/8\": invalid IPv4 address");
    /* Unchanged on error. */
    CHECK_EQ_INT(acl.count, 1);
    char buf[64];
    usbip_acl_format_list(&acl, buf, sizeof buf);
    CHECK_STR(buf, "172.16.0.0/12");

    CHECK_EQ_INT(usbip_acl_set_list(&acl, "::1 fe80::/129", err, sizeof err),
                 USBIP_ERR_INVALID_ARG);
    CHECK_STR(err, "allowlist entry \"fe80::/129\": prefix length above 128");
    CHECK_EQ_INT(usbip_acl_set_list(&acl, "::1::", err, sizeof err), USBIP_ERR_INVALID_ARG);
    CHECK_STR(err, "allowlist entry \"::1::\": invalid IPv6 address");
    CHECK_EQ_INT(usbip_acl_set_list(&acl, "example.com", err, sizeof err), USBIP_ERR_INVALID_ARG);
    CHECK_STR(err, "allowlist entry \"example.com\": invalid IPv4 address");
    CHECK_EQ_INT(usbip_acl_set_list(&acl, "10.0.0.0/33", err, sizeof err), USBIP_ERR_INVALID_ARG);
    CHECK_STR(err, "allowlist entry \"10.0.0.0/33\": prefix length above 32");

    /* Long junk is quoted short; control characters are not echoed. */
    char junk[200];
    memset(junk, 'q', sizeof junk - 1);
    junk[sizeof junk - 1] = '\0';
    junk[3] = '\x01';
    char big_err[200];
    CHECK_EQ_INT(usbip_acl_set_list(&acl, junk, big_err, sizeof big_err), USBIP_ERR_INVALID_ARG);
    CHECK(strstr(big_err, "allowlist entry \"qqq?qqq") == big_err);
    CHECK(strstr(big_err, "...\": too long to be an address") != NULL);

    /* A tiny errbuf is still NUL-terminated. */
    char tiny[8];
    CHECK_EQ_INT(usbip_acl_set_list(&acl, "nope", tiny, sizeof tiny), USBIP_ERR_INVALID_ARG);
    CHECK_STR(tiny, "allowli");
    CHECK_EQ_INT(acl.count, 1);

    CHECK_EQ_INT(usbip_acl_set_list(&acl, NULL, err, sizeof err), USBIP_ERR_INVALID_ARG);
    CHECK_STR(err, "allowlist: text is NULL");
}

TEST(acl_set_list_too_long)
{
    usbip_acl_t acl;
    usbip_acl_init(&acl);
    char text[1024] = "";
    size_t used = 0;
    for (int i = 0; i < USBIP_ACL_MAX_ENTRIES; i++) {
        used += (size_t)snprintf(text + used, sizeof text - used, "10.0.0.%d,", i);
    }
    char err[128];
    REQUIRE(usbip_acl_set_list(&acl, text, err, sizeof err) == USBIP_OK);
    CHECK_EQ_INT(acl.count, USBIP_ACL_MAX_ENTRIES);

    snprintf(text + used, sizeof text - used, "10.0.1.0/24");
    CHECK_EQ_INT(usbip_acl_set_list(&acl, text, err, sizeof err), USBIP_ERR_INVALID_SIZE);
    CHECK_STR(err, "allowlist entry \"10.0.1.0/24\": more than 32 entries (the limit)");
    CHECK_EQ_INT(acl.count, USBIP_ACL_MAX_ENTRIES);
}

TEST(access_mode_names)
{
    usbip_access_mode_t mode = USBIP_ACCESS_OPEN;
    CHECK_EQ_INT(usbip_access_mode_parse("closed", &mode), USBIP_OK);
    CHECK_EQ_INT(mode, USBIP_ACCESS_CLOSED);
    CHECK_EQ_INT(usbip_access_mode_parse("open", &mode), USBIP_OK);
    CHECK_EQ_INT(mode, USBIP_ACCESS_OPEN);
    CHECK_EQ_INT(usbip_access_mode_parse("Open", &mode), USBIP_ERR_INVALID_ARG);
    CHECK_EQ_INT(usbip_access_mode_parse("", &mode), USBIP_ERR_INVALID_ARG);
    CHECK_EQ_INT(usbip_access_mode_parse(NULL, &mode), USBIP_ERR_INVALID_ARG);
    CHECK_STR(usbip_access_mode_name(USBIP_ACCESS_OPEN), "open");
    CHECK_STR(usbip_access_mode_name(USBIP_ACCESS_CLOSED), "closed");
    CHECK_STR(usbip_access_mode_name((usbip_access_mode_t)7), "unknown");
}

TEST_MAIN("access_control", TEST_ENTRY(ipv4_parse_valid), TEST_ENTRY(ipv4_parse_invalid),
          TEST_ENTRY(ipv6_parse_valid), TEST_ENTRY(ipv6_parse_invalid),
          TEST_ENTRY(format_is_canonical), TEST_ENTRY(format_round_trips),
          TEST_ENTRY(format_truncates_safely), TEST_ENTRY(from_ipv4_host_order),
          TEST_ENTRY(cidr_parse_and_format), TEST_ENTRY(cidr_parse_invalid),
          TEST_ENTRY(cidr_contains), TEST_ENTRY(cidr_contains_zero_prefix),
          TEST_ENTRY(cidr_contains_ipv4_mapped_both_ways), TEST_ENTRY(acl_open_allows_everyone),
          TEST_ENTRY(acl_closed_allows_only_listed), TEST_ENTRY(acl_set_list_separators_and_format),
          TEST_ENTRY(acl_format_list_reports_needed_length),
          TEST_ENTRY(acl_set_list_errors_name_the_entry), TEST_ENTRY(acl_set_list_too_long),
          TEST_ENTRY(access_mode_names))
