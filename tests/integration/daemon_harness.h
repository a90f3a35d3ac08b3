/*
 * daemon_harness: integration tests run the real usbip-server as a child
 * process and talk to it over TCP on loopback with the client library.
 *
 * - daemon_start() runs it with --listen 127.0.0.1 --port 0 --control
 *   <tmpdir>/ctl.sock plus per-test flags, reads the port from the banner and
 *   sends its stderr to <tmpdir>/daemon.log.
 * - daemon_stop() sends SIGTERM and requires exit status 0 (under ASan a leak
 *   or any sanitizer report makes it fail) and prints the daemon log whenever
 *   the test case failed (or always, with IT_SHOW_LOGS set in the environment).
 * - daemon_ctl() runs `usbip-server ctl --control <sock> ...`.
 * - Every wait is bounded: client library timeouts, bounded polling loops,
 *   and an alarm() for the whole program.
 *
 * A test program calls it_init(argc, argv) (argv[1] is the daemon binary),
 * runs its cases with it_run() and returns it_finish(). A case gets a fresh
 * daemon; clients made with it_connect()/it_import() and buffers from
 * it_malloc() are released when the case ends, even after a REQUIRE.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "usbip_client.h"

/* ---------------------------------------------------------------- checks */

extern int it_case_failures;

void it_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define CHECK(cond)                                                  \
    do {                                                             \
        if (!(cond)) {                                               \
            it_fail(__FILE__, __LINE__, "CHECK failed: %s", #cond);  \
        }                                                            \
    } while (0)

#define REQUIRE(cond)                                                  \
    do {                                                               \
        if (!(cond)) {                                                 \
            it_fail(__FILE__, __LINE__, "REQUIRE failed: %s", #cond);  \
            return;                                                    \
        }                                                              \
    } while (0)

#define CHECK_EQ(a, b)                                                                   \
    do {                                                                                 \
        long long a_ = (long long)(a), b_ = (long long)(b);                              \
        if (a_ != b_) {                                                                  \
            it_fail(__FILE__, __LINE__, "CHECK failed: %s == %s (%lld != %lld)", #a, #b, \
                    a_, b_);                                                             \
        }                                                                                \
    } while (0)

#define REQUIRE_EQ(a, b)                                                                   \
    do {                                                                                   \
        long long a_ = (long long)(a), b_ = (long long)(b);                                \
        if (a_ != b_) {                                                                    \
            it_fail(__FILE__, __LINE__, "REQUIRE failed: %s == %s (%lld != %lld)", #a, #b, \
                    a_, b_);                                                               \
            return;                                                                        \
        }                                                                                  \
    } while (0)

#define CHECK_STR(a, b)                                                                  \
    do {                                                                                 \
        const char *sa_ = (a), *sb_ = (b);                                               \
        if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0) {                                     \
            it_fail(__FILE__, __LINE__, "CHECK failed: %s == %s (\"%s\" != \"%s\")", #a, \
                    #b, sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");                     \
        }                                                                                \
    } while (0)

#define CHECK_CONTAINS(hay, needle)                                                        \
    do {                                                                                   \
        const char *h_ = (hay), *n_ = (needle);                                            \
        if (!h_ || !strstr(h_, n_)) {                                                      \
            it_fail(__FILE__, __LINE__, "CHECK failed: \"%s\" contains \"%s\"",            \
                    h_ ? h_ : "(null)", n_);                                               \
        }                                                                                  \
    } while (0)

/* Library call that must return USBIP_OK; otherwise the case ends with the
 * library's message. */
#define REQUIRE_OK(c, call)                                                             \
    do {                                                                                \
        usbip_err_t e_ = (call);                                                        \
        if (e_ != USBIP_OK) {                                                           \
            it_fail(__FILE__, __LINE__, "%s -> %s: %s", #call, usbip_err_name(e_),      \
                    usbip_client_last_error(c));                                        \
            return;                                                                     \
        }                                                                               \
    } while (0)

/* ---------------------------------------------------------------- daemon */

typedef struct {
    const char *exe;
    pid_t pid;
    uint16_t port;
    char dir[128];      /* private temporary directory */
    char ctl_path[192]; /* control socket */
    char log_path[192]; /* daemon stderr (appended across restarts) */
    char out_path[192]; /* daemon stdout (banner) */
    char banner[256];   /* first line of stdout */
    char extra[24][256]; /* flags of the last start, for restarts */
    size_t nextra;
} daemon_t;

/* Start the daemon with extra flags (NULL-terminated list, may be NULL).
 * On failure records a failure, prints the log and returns false. */
bool daemon_start(daemon_t *d, const char *const *extra);
bool daemon_startv(daemon_t *d, const char *const *extra, size_t n);
/* SIGTERM, wait (bounded); true if the exit status was 0 and the log holds
 * no sanitizer report. Records a failure otherwise. */
bool daemon_stop(daemon_t *d);
/* Same with another signal (SIGINT). */
bool daemon_stop_signal(daemon_t *d, int signo);
/* Stop (checked) and start again with the same directory and flags. */
bool daemon_restart(daemon_t *d);
/* Stop (checked) and start again in the same directory with other flags. */
bool daemon_restart_with(daemon_t *d, const char *const *extra);

/* Run `usbip-server ctl --control PATH <words of cmd>`; out gets its stdout
 * and stderr. Returns the exit status (-1 if it could not run). */
int daemon_ctl(daemon_t *d, const char *cmd, char *out, size_t outlen);
/* Same, recording a failure unless it exits 0 with a reply starting "ok". */
bool daemon_ctl_ok(daemon_t *d, const char *cmd, char *out, size_t outlen);

/* Byte offset of the end of the daemon log now, to look only at what follows. */
size_t daemon_log_mark(const daemon_t *d);
/* True once the log after mark contains needle (polls up to timeout_ms). */
bool daemon_log_wait(const daemon_t *d, size_t mark, const char *needle, int timeout_ms);
void daemon_log_dump(const daemon_t *d, size_t from);

/* ---------------------------------------------------------------- runner */

void it_init(int argc, char **argv, unsigned alarm_seconds);
/* Run one case against a fresh daemon started with flags (NULL = none). */
void it_run(const char *name, void (*fn)(daemon_t *d), const char *const *flags);
int it_finish(void);

/* Resources released at the end of the case. */
void *it_malloc(size_t size);
usbip_client_t *it_connect(daemon_t *d);
/* Connect and IMPORT busid; retries while the device is still busy (a
 * session that just ended may not have released it yet), up to 3 s. */
usbip_client_t *it_import(daemon_t *d, const char *busid, usbip_device_record_t *rec);
void it_close(usbip_client_t *c);

/* Run argv (argv[0] a path) with stdin from /dev/null; out gets stdout and
 * stderr. Returns the exit status, -1 if it could not run, was killed or
 * outlived timeout_ms. */
int it_exec(const char *const argv[], char *out, size_t outlen, int timeout_ms);
/* The usbip-server binary under test (argv[1]). */
const char *it_daemon_path(void);

uint64_t it_now_ms(void);
void it_sleep_ms(int ms);
