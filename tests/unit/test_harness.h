/*
 * test_harness: a minimal unit-test runner. Each test is a function; CHECK
 * records a failure with file:line and goes on, REQUIRE returns from the
 * test. TEST_MAIN runs them all and prints "N passed, N failed".
 */
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    void (*fn)(void);
} test_case_t;

extern int test_failures_in_case;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            test_failures_in_case++;                                                \
        }                                                                           \
    } while (0)

#define REQUIRE(cond)                                                                 \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "  %s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond); \
            test_failures_in_case++;                                                  \
            return;                                                                   \
        }                                                                             \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                              \
    do {                                                                                \
        long long va_ = (long long)(a), vb_ = (long long)(b);                           \
        if (va_ != vb_) {                                                               \
            fprintf(stderr, "  %s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__, \
                    __LINE__, #a, #b, va_, vb_);                                        \
            test_failures_in_case++;                                                    \
        }                                                                               \
    } while (0)

#define CHECK_STR(a, b)                                                                 \
    do {                                                                                \
        const char *sa_ = (a), *sb_ = (b);                                              \
        if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0) {                                    \
            fprintf(stderr, "  %s:%d: CHECK failed: %s == %s (\"%s\" != \"%s\")\n",      \
                    __FILE__, __LINE__, #a, #b, sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)"); \
            test_failures_in_case++;                                                    \
        }                                                                               \
    } while (0)

#define TEST(name) static void name(void)
#define TEST_ENTRY(name) {#name, name}

int test_run_all(const char *suite, const test_case_t *cases, size_t count);

/* Monotonic milliseconds, a sleep, and the same clock in the shape of
 * usbip_clock_set()'s hook, for tests that run real loops and threads. */
uint64_t test_now_ms(void);
void test_sleep_ms(int ms);
uint64_t test_clock_hook(void *ctx);

#define TEST_MAIN(suite, ...)                                                 \
    int main(void)                                                            \
    {                                                                         \
        static const test_case_t cases_[] = {__VA_ARGS__};                    \
        return test_run_all(suite, cases_, sizeof cases_ / sizeof cases_[0]); \
    }
