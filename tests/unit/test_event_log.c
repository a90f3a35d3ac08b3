#include <string.h>

#include "event_log.h"
#include "test_harness.h"
#include "usbip_log.h"

static uint64_t fake_now;
static uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return fake_now;
}

typedef struct {
    int calls;
    usbip_log_level_t level;
    char tag[16];
    char message[256];
} captured_log_t;

static void capture_sink(void *ctx, usbip_log_level_t level, const char *tag, const char *message)
{
    captured_log_t *cap = ctx;
    cap->calls++;
    cap->level = level;
    snprintf(cap->tag, sizeof cap->tag, "%s", tag);
    snprintf(cap->message, sizeof cap->message, "%s", message);
}

/* Keep test output quiet and inspectable. */
static captured_log_t s_log;
static void quiet_log(void)
{
    memset(&s_log, 0, sizeof s_log);
    usbip_log_set_sink(capture_sink, &s_log);
}

TEST(init_rejects_bad_storage)
{
    quiet_log();
    usbip_event_log_t log;
    usbip_event_t slots[2];
    CHECK_EQ_INT(usbip_event_log_init(NULL, slots, 2), USBIP_ERR_INVALID_ARG);
    CHECK_EQ_INT(usbip_event_log_init(&log, NULL, 2), USBIP_ERR_INVALID_ARG);
    CHECK_EQ_INT(usbip_event_log_init(&log, slots, 0), USBIP_ERR_INVALID_ARG);
    CHECK(strstr(s_log.message, "capacity 0") != NULL);
    CHECK_EQ_INT(usbip_event_log_add(NULL, USBIP_EVENT_INFO, NULL, NULL, "x"), 0);
    usbip_log_set_sink(NULL, NULL);
}

TEST(ids_start_at_one_and_increase)
{
    quiet_log();
    usbip_event_log_t log;
    usbip_event_t slots[4];
    REQUIRE(usbip_event_log_init(&log, slots, 4) == USBIP_OK);
    CHECK_EQ_INT(usbip_event_log_last_id(&log), 0);
    usbip_event_t out[4];
    CHECK_EQ_INT(usbip_event_log_read(&log, 0, out, 4), 0);

    CHECK_EQ_INT(usbip_event_log_add(&log, USBIP_EVENT_INFO, NULL, NULL, "one"), 1);
    CHECK_EQ_INT(usbip_event_log_add(&log, USBIP_EVENT_INFO, NULL, NULL, "two"), 2);
    CHECK_EQ_INT(usbip_event_log_add(&log, USBIP_EVENT_INFO, NULL, NULL, "three"), 3);
    CHECK_EQ_INT(usbip_event_log_last_id(&log), 3);

    size_t n = usbip_event_log_read(&log, 0, out, 4);
    REQUIRE(n == 3);
    CHECK_EQ_INT(out[0].id, 1);
    CHECK_STR(out[0].message, "one");
    CHECK_EQ_INT(out[2].id, 3);
    CHECK_STR(out[2].message, "three");
    usbip_log_set_sink(NULL, NULL);
}

TEST(fields_are_filled)
{
    quiet_log();
    usbip_clock_set(fake_clock, NULL);
    fake_now = 12345;
    usbip_event_log_t log;
    usbip_event_t slots[2];
    REQUIRE(usbip_event_log_init(&log, slots, 2) == USBIP_OK);
    usbip_event_log_add(&log, USBIP_EVENT_IMPORT, "1-1.3", "10.0.0.7:40000", "imported by %s (%d)",
                        "client", 42);
    fake_now = 20000;
    usbip_event_log_add(&log, USBIP_EVENT_SETTINGS, NULL, NULL, "mode closed");

    usbip_event_t out[2];
    REQUIRE(usbip_event_log_read(&log, 0, out, 2) == 2);
    CHECK_EQ_INT(out[0].time_ms, 12345);
    CHECK_EQ_INT(out[0].type, USBIP_EVENT_IMPORT);
    CHECK_STR(out[0].busid, "1-1.3");
    CHECK_STR(out[0].peer, "10.0.0.7:40000");
    CHECK_STR(out[0].message, "imported by client (42)");
    CHECK_EQ_INT(out[1].time_ms, 20000);
    CHECK_STR(out[1].busid, "");
    CHECK_STR(out[1].peer, "");
    usbip_clock_set(NULL, NULL);
    usbip_log_set_sink(NULL, NULL);
}

TEST(full_ring_overwrites_oldest)
{
    quiet_log();
    usbip_event_log_t log;
    usbip_event_t slots[3];
    REQUIRE(usbip_event_log_init(&log, slots, 3) == USBIP_OK);
    for (int i = 1; i <= 5; i++) {
        CHECK_EQ_INT(usbip_event_log_add(&log, USBIP_EVENT_INFO, NULL, NULL, "event %d", i), i);
    }
    CHECK_EQ_INT(usbip_event_log_last_id(&log), 5);

    usbip_event_t out[8];
    size_t n = usbip_event_log_read(&log, 0, out, 8);
    REQUIRE(n == 3);
    CHECK_EQ_INT(out[0].id, 3);
    CHECK_STR(out[0].message, "event 3");
    CHECK_EQ_INT(out[1].id, 4);
    CHECK_EQ_INT(out[2].id, 5);
    CHECK_STR(out[2].message, "event 5");

    /* Keep going round several times: the slot arithmetic must hold. */
    for (int i = 6; i <= 100; i++) {
        usbip_event_log_add(&log, USBIP_EVENT_INFO, NULL, NULL, "event %d", i);
    }
    n = usbip_event_log_read(&log, 0, out, 8);
    REQUIRE(n == 3);
    CHECK_EQ_INT(out[0].id, 98);
    CHECK_STR(out[0].message, "event 98");
    CHECK_EQ_INT(out[2].id, 100);
    usbip_log_set_sink(NULL, NULL);
}

TEST(read_after_id_and_gaps)
{
    quiet_log();
    usbip_event_log_t log;
    usbip_event_t slots[3];
    REQUIRE(usbip_event_log_init(&log, slots, 3) == USBIP_OK);
    for (int i = 1; i <= 5; i++) {
        usbip_event_log_add(&log, USBIP_EVENT_INFO, NULL, NULL, "event %d", i);
    }
    usbip_event_t out[8];

    /* Reader last saw 1; 2 was overwritten: it gets 3.. and sees the gap. */
    size_t n = usbip_event_log_read(&log, 1, out, 8);
    REQUIRE(n == 3);
    CHECK_EQ_INT(out[0].id, 3);

    n = usbip_event_log_read(&log, 3, out, 8);
    REQUIRE(n == 2);
    CHECK_EQ_INT(out[0].id, 4);
    CHECK_EQ_INT(out[1].id, 5);

    CHECK_EQ_INT(usbip_event_log_read(&log, 5, out, 8), 0);
    CHECK_EQ_INT(usbip_event_log_read(&log, 1000, out, 8), 0);
    CHECK_EQ_INT(usbip_event_log_read(&log, UINT64_MAX, out, 8), 0);

    /* max limits the count, oldest first. */
    n = usbip_event_log_read(&log, 0, out, 2);
    REQUIRE(n == 2);
    CHECK_EQ_INT(out[0].id, 3);
    CHECK_EQ_INT(out[1].id, 4);
    CHECK_EQ_INT(usbip_event_log_read(&log, 0, out, 0), 0);
    CHECK_EQ_INT(usbip_event_log_read(&log, 0, NULL, 8), 0);
    usbip_log_set_sink(NULL, NULL);
}

TEST(long_strings_are_truncated)
{
    quiet_log();
    usbip_event_log_t log;
    usbip_event_t slots[2];
    REQUIRE(usbip_event_log_init(&log, slots, 2) == USBIP_OK);

    char long_text[400];
    memset(long_text, 'x', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    usbip_event_log_add(&log, USBIP_EVENT_INFO, long_text, long_text, "%s", long_text);
    usbip_event_t out[1];
    REQUIRE(usbip_event_log_read(&log, 0, out, 1) == 1);
    CHECK_EQ_INT(strlen(out[0].busid), sizeof out[0].busid - 1);
    CHECK_EQ_INT(strlen(out[0].peer), sizeof out[0].peer - 1);
    CHECK_EQ_INT(strlen(out[0].message), sizeof out[0].message - 1);

    /* A cut through a multi-byte UTF-8 character drops the partial bytes. */
    char utf8[200];
    memset(utf8, 'a', 126);
    strcpy(utf8 + 126, "\xc3\xa9 and more"); /* "é" would occupy bytes 126..127 */
    usbip_event_log_add(&log, USBIP_EVENT_INFO, NULL, NULL, "%s", utf8);
    REQUIRE(usbip_event_log_read(&log, 1, out, 1) == 1);
    CHECK_EQ_INT(strlen(out[0].message), 126);
    usbip_log_set_sink(NULL, NULL);
}

TEST(control_characters_are_replaced)
{
    quiet_log();
    usbip_event_log_t log;
    usbip_event_t slots[1];
    REQUIRE(usbip_event_log_init(&log, slots, 1) == USBIP_OK);
    usbip_event_log_add(&log, USBIP_EVENT_ERROR, "1-1\n", "peer\x1b[31m", "line1\nline2");
    usbip_event_t out[1];
    REQUIRE(usbip_event_log_read(&log, 0, out, 1) == 1);
    CHECK_STR(out[0].busid, "1-1?");
    CHECK_STR(out[0].peer, "peer?[31m");
    CHECK_STR(out[0].message, "line1?line2");
    usbip_log_set_sink(NULL, NULL);
}

TEST(events_are_echoed_to_the_log)
{
    quiet_log();
    usbip_event_log_t log;
    usbip_event_t slots[2];
    REQUIRE(usbip_event_log_init(&log, slots, 2) == USBIP_OK);

    usbip_event_log_add(&log, USBIP_EVENT_CLIENT_REFUSED, NULL, "10.1.2.3", "not in allowlist");
    CHECK_EQ_INT(s_log.calls, 1);
    CHECK_EQ_INT(s_log.level, USBIP_LOG_INFO);
    CHECK_STR(s_log.tag, "event");
    CHECK(strstr(s_log.message, "client_refused") != NULL);
    CHECK(strstr(s_log.message, "10.1.2.3") != NULL);
    CHECK(strstr(s_log.message, "not in allowlist") != NULL);

    usbip_event_log_add(&log, USBIP_EVENT_ERROR, "2-1", NULL, "device stalled");
    CHECK_EQ_INT(s_log.calls, 2);
    CHECK_EQ_INT(s_log.level, USBIP_LOG_ERROR);
    CHECK(strstr(s_log.message, "2-1") != NULL);
    CHECK(strstr(s_log.message, "device stalled") != NULL);
    usbip_log_set_sink(NULL, NULL);
}

TEST(type_names)
{
    CHECK_STR(usbip_event_type_name(USBIP_EVENT_DEVICE_ADDED), "device_added");
    CHECK_STR(usbip_event_type_name(USBIP_EVENT_DEVICE_REMOVED), "device_removed");
    CHECK_STR(usbip_event_type_name(USBIP_EVENT_IMPORT), "import");
    CHECK_STR(usbip_event_type_name(USBIP_EVENT_RELEASE), "release");
    CHECK_STR(usbip_event_type_name(USBIP_EVENT_CLIENT_CONNECT), "client_connect");
    CHECK_STR(usbip_event_type_name(USBIP_EVENT_CLIENT_REFUSED), "client_refused");
    CHECK_STR(usbip_event_type_name(USBIP_EVENT_CLIENT_DISCONNECT), "client_disconnect");
    CHECK_STR(usbip_event_type_name(USBIP_EVENT_SETTINGS), "settings");
    CHECK_STR(usbip_event_type_name(USBIP_EVENT_ERROR), "error");
    CHECK_STR(usbip_event_type_name(USBIP_EVENT_INFO), "info");
    CHECK_STR(usbip_event_type_name((usbip_event_type_t)99), "unknown");
    CHECK_STR(usbip_event_type_name((usbip_event_type_t)-1), "unknown");
}

TEST_MAIN("event_log", TEST_ENTRY(init_rejects_bad_storage),
          TEST_ENTRY(ids_start_at_one_and_increase), TEST_ENTRY(fields_are_filled),
          TEST_ENTRY(full_ring_overwrites_oldest), TEST_ENTRY(read_after_id_and_gaps),
          TEST_ENTRY(long_strings_are_truncated), TEST_ENTRY(control_characters_are_replaced),
          TEST_ENTRY(events_are_echoed_to_the_log), TEST_ENTRY(type_names))
