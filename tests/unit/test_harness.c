#define _POSIX_C_SOURCE 200809L

#include "test_harness.h"

#include <time.h>

int test_failures_in_case;

int test_run_all(const char *suite, const test_case_t *cases, size_t count)
{
    int passed = 0, failed = 0;
    for (size_t i = 0; i < count; i++) {
        test_failures_in_case = 0;
        cases[i].fn();
        if (test_failures_in_case == 0) {
            passed++;
            printf("ok   %s.%s\n", suite, cases[i].name);
        } else {
            failed++;
            printf("FAIL %s.%s\n", suite, cases[i].name);
        }
    }
    printf("%s: %d passed, %d failed\n", suite, passed, failed);
    return failed == 0 ? 0 : 1;
}

uint64_t test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void test_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

uint64_t test_clock_hook(void *ctx)
{
    (void)ctx;
    return test_now_ms();
}
