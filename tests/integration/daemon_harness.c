#define _GNU_SOURCE /* mkdtemp, strdup */

#include "daemon_harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <time.h>
#include <unistd.h>

int it_case_failures;

static const char *s_exe;
static int s_failed_cases, s_passed_cases;
static const char *s_case_name = "";
static daemon_t *s_current; /* for the alarm handler */

#define MAX_TRACKED 256
static usbip_client_t *s_clients[MAX_TRACKED];
static void *s_buffers[MAX_TRACKED];

/* ---------------------------------------------------------------- misc */

uint64_t it_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void it_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void it_fail(const char *file, int line, const char *fmt, ...)
{
    const char *base = strrchr(file, '/');
    fprintf(stderr, "  [%s] %s:%d: ", s_case_name, base ? base + 1 : file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    it_case_failures++;
}

static char *read_file(const char *path, size_t from, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    if (size < 0 || (size_t)size < from) {
        from = 0;
    }
    size_t len = size > 0 ? (size_t)size - from : 0;
    char *buf = malloc(len + 1);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    fseek(f, (long)from, SEEK_SET);
    len = fread(buf, 1, len, f);
    buf[len] = '\0';
    fclose(f);
    if (len_out) {
        *len_out = len;
    }
    return buf;
}

/* ---------------------------------------------------------------- log */

size_t daemon_log_mark(const daemon_t *d)
{
    struct stat st;
    return stat(d->log_path, &st) == 0 ? (size_t)st.st_size : 0;
}

bool daemon_log_wait(const daemon_t *d, size_t mark, const char *needle, int timeout_ms)
{
    uint64_t deadline = it_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        char *text = read_file(d->log_path, mark, NULL);
        bool found = text && strstr(text, needle);
        free(text);
        if (found) {
            return true;
        }
        if (it_now_ms() >= deadline) {
            return false;
        }
        it_sleep_ms(20);
    }
}

void daemon_log_dump(const daemon_t *d, size_t from)
{
    char *text = read_file(d->log_path, from, NULL);
    fprintf(stderr, "----- daemon log (%s) -----\n%s----- end of daemon log -----\n",
            d->log_path, text ? text : "(unreadable)\n");
    free(text);
}

static bool log_has_sanitizer_report(const daemon_t *d)
{
    char *text = read_file(d->log_path, 0, NULL);
    bool bad = text && (strstr(text, "AddressSanitizer") || strstr(text, "LeakSanitizer") ||
                        strstr(text, "runtime error:") || strstr(text, "UndefinedBehavior"));
    free(text);
    return bad;
}

/* ---------------------------------------------------------------- daemon */

static bool make_dir(daemon_t *d)
{
    if (d->dir[0]) {
        return true;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(d->dir, sizeof d->dir, "%s/usbip-integ-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(d->dir)) {
        it_fail(__FILE__, __LINE__, "mkdtemp %s: %s", d->dir, strerror(errno));
        d->dir[0] = '\0';
        return false;
    }
    snprintf(d->ctl_path, sizeof d->ctl_path, "%s/ctl.sock", d->dir);
    snprintf(d->log_path, sizeof d->log_path, "%s/daemon.log", d->dir);
    snprintf(d->out_path, sizeof d->out_path, "%s/daemon.out", d->dir);
    return true;
}

static void remove_dir(daemon_t *d)
{
    if (!d->dir[0]) {
        return;
    }
    DIR *dir = opendir(d->dir);
    if (dir) {
        struct dirent *e;
        while ((e = readdir(dir)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue;
            }
            char path[512];
            snprintf(path, sizeof path, "%s/%s", d->dir, e->d_name);
            unlink(path);
        }
        closedir(dir);
    }
    rmdir(d->dir);
    d->dir[0] = '\0';
}

/* Wait (bounded) for the child to exit; true with *status if it did. */
static bool wait_exit(pid_t pid, int timeout_ms, int *status)
{
    uint64_t deadline = it_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid) {
            return true;
        }
        if (r < 0 && errno != EINTR) {
            return false;
        }
        if (it_now_ms() >= deadline) {
            return false;
        }
        it_sleep_ms(5);
    }
}

static bool parse_banner(daemon_t *d)
{
    char *text = read_file(d->out_path, 0, NULL);
    if (!text) {
        return false;
    }
    bool ok = false;
    const char *line = strstr(text, "usbip-server listening on ");
    const char *nl = line ? strchr(line, '\n') : NULL;
    if (line && nl) {
        snprintf(d->banner, sizeof d->banner, "%.*s", (int)(nl - line), line);
        const char *p = strstr(d->banner, " port ");
        unsigned port = 0;
        if (p && sscanf(p, " port %u", &port) == 1 && port > 0 && port < 65536) {
            d->port = (uint16_t)port;
            ok = true;
        }
    }
    free(text);
    return ok;
}

static bool spawn(daemon_t *d)
{
    const char *argv[64];
    size_t n = 0;
    argv[n++] = d->exe;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--control";
    argv[n++] = d->ctl_path;
    for (size_t i = 0; i < d->nextra && n < 62; i++) {
        argv[n++] = d->extra[i];
    }
    argv[n] = NULL;

    unlink(d->out_path);
    d->port = 0;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        it_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
        return false;
    }
    if (pid == 0) {
#ifdef __linux__
        /* If the test program dies (a crash, a sanitizer abort), so does its daemon. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
        int out = open(d->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open(d->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int null = open("/dev/null", O_RDONLY);
        if (out < 0 || err < 0 || null < 0) {
            _exit(126);
        }
        dup2(null, 0);
        dup2(out, 1);
        dup2(err, 2);
        execv(d->exe, (char *const *)argv);
        dprintf(2, "exec %s: %s\n", d->exe, strerror(errno));
        _exit(127);
    }
    d->pid = pid;
    s_current = d;
    uint64_t deadline = it_now_ms() + 20000;
    while (!parse_banner(d)) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            d->pid = 0;
            it_fail(__FILE__, __LINE__, "usbip-server exited at start (status 0x%x)", status);
            daemon_log_dump(d, 0);
            return false;
        }
        if (it_now_ms() >= deadline) {
            it_fail(__FILE__, __LINE__, "no banner from usbip-server within 20 s");
            kill(pid, SIGKILL);
            wait_exit(pid, 5000, &status);
            d->pid = 0;
            daemon_log_dump(d, 0);
            return false;
        }
        it_sleep_ms(10);
    }
    return true;
}

bool daemon_startv(daemon_t *d, const char *const *extra, size_t n)
{
    d->exe = s_exe;
    if (!make_dir(d)) {
        return false;
    }
    d->nextra = 0;
    for (size_t i = 0; i < n && extra && extra[i]; i++) {
        if (d->nextra < sizeof d->extra / sizeof d->extra[0]) {
            snprintf(d->extra[d->nextra++], sizeof d->extra[0], "%s", extra[i]);
        }
    }
    return spawn(d);
}

bool daemon_start(daemon_t *d, const char *const *extra)
{
    size_t n = 0;
    while (extra && extra[n]) {
        n++;
    }
    return daemon_startv(d, extra, n);
}

bool daemon_stop(daemon_t *d) { return daemon_stop_signal(d, SIGTERM); }

bool daemon_stop_signal(daemon_t *d, int signo)
{
    if (d->pid <= 0) {
        return true;
    }
    bool ok = true;
    int status = 0;
    kill(d->pid, signo);
    if (!wait_exit(d->pid, 20000, &status)) {
        it_fail(__FILE__, __LINE__, "usbip-server did not exit within 20 s of signal %d", signo);
        kill(d->pid, SIGKILL);
        wait_exit(d->pid, 5000, &status);
        ok = false;
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (WIFSIGNALED(status)) {
            it_fail(__FILE__, __LINE__, "usbip-server killed by signal %d after signal %d",
                    WTERMSIG(status), signo);
        } else {
            it_fail(__FILE__, __LINE__,
                    "usbip-server exit status %d after signal %d (sanitizer report?)",
                    WEXITSTATUS(status), signo);
        }
        ok = false;
    }
    d->pid = 0;
    if (log_has_sanitizer_report(d)) {
        it_fail(__FILE__, __LINE__, "sanitizer report in the daemon log");
        ok = false;
    }
    return ok;
}

bool daemon_restart(daemon_t *d)
{
    if (!daemon_stop(d)) {
        return false;
    }
    return spawn(d);
}

bool daemon_restart_with(daemon_t *d, const char *const *extra)
{
    if (!daemon_stop(d)) {
        return false;
    }
    return daemon_start(d, extra);
}

int it_exec(const char *const argv[], char *out, size_t outlen, int timeout_ms)
{
    if (out && outlen) {
        out[0] = '\0';
    }
    int fds[2];
    if (pipe(fds) != 0) {
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0) {
            dup2(null, 0);
        }
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    size_t used = 0;
    uint64_t deadline = it_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        uint64_t now = it_now_ms();
        if (now >= deadline) {
            break;
        }
        int left = (int)(deadline - now);
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        if (poll(&pfd, 1, left) <= 0) {
            continue;
        }
        char buf[1024];
        ssize_t r = read(fds[0], buf, sizeof buf);
        if (r <= 0) {
            break;
        }
        if (out && used + 1 < outlen) {
            size_t take = (size_t)r < outlen - 1 - used ? (size_t)r : outlen - 1 - used;
            memcpy(out + used, buf, take);
            used += take;
            out[used] = '\0';
        }
    }
    close(fds[0]);
    int status = 0;
    if (!wait_exit(pid, 5000, &status)) {
        kill(pid, SIGKILL);
        wait_exit(pid, 2000, &status);
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int daemon_ctl(daemon_t *d, const char *cmd, char *out, size_t outlen)
{
    char words[1024];
    snprintf(words, sizeof words, "%s", cmd);
    const char *argv[40];
    size_t n = 0;
    argv[n++] = d->exe;
    argv[n++] = "ctl";
    argv[n++] = "--control";
    argv[n++] = d->ctl_path;
    for (char *save = NULL, *w = strtok_r(words, " ", &save); w && n < 38;
         w = strtok_r(NULL, " ", &save)) {
        argv[n++] = w;
    }
    argv[n] = NULL;
    return it_exec(argv, out, outlen, 10000);
}

const char *it_daemon_path(void) { return s_exe; }

bool daemon_ctl_ok(daemon_t *d, const char *cmd, char *out, size_t outlen)
{
    char local[4096];
    if (!out) {
        out = local;
        outlen = sizeof local;
    }
    int rc = daemon_ctl(d, cmd, out, outlen);
    if (rc != 0 || strncmp(out, "ok", 2) != 0) {
        it_fail(__FILE__, __LINE__, "ctl %s: exit %d, reply \"%s\"", cmd, rc, out);
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------- runner */

static void on_alarm(int signo)
{
    (void)signo;
    static const char msg[] = "\nFATAL: test program timed out (alarm); killing the daemon\n";
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    (void)ignored;
    if (s_current && s_current->pid > 0) {
        kill(s_current->pid, SIGKILL);
    }
    _exit(3);
}

void it_init(int argc, char **argv, unsigned alarm_seconds)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH-TO-usbip-server\n", argv[0]);
        exit(2);
    }
    s_exe = argv[1];
    if (access(s_exe, X_OK) != 0) {
        fprintf(stderr, "%s: %s is not executable\n", argv[0], s_exe);
        exit(2);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    alarm(alarm_seconds);
    setvbuf(stdout, NULL, _IOLBF, 0);
}

void *it_malloc(size_t size)
{
    for (size_t i = 0; i < MAX_TRACKED; i++) {
        if (!s_buffers[i]) {
            s_buffers[i] = calloc(1, size ? size : 1);
            return s_buffers[i];
        }
    }
    return NULL;
}

static void track_client(usbip_client_t *c)
{
    for (size_t i = 0; i < MAX_TRACKED; i++) {
        if (!s_clients[i]) {
            s_clients[i] = c;
            return;
        }
    }
}

void it_close(usbip_client_t *c)
{
    for (size_t i = 0; c && i < MAX_TRACKED; i++) {
        if (s_clients[i] == c) {
            s_clients[i] = NULL;
        }
    }
    usbip_client_close(c);
}

usbip_client_t *it_connect(daemon_t *d)
{
    usbip_client_t *c = NULL;
    usbip_err_t err = usbip_client_connect("127.0.0.1", d->port, 5000, &c);
    if (err != USBIP_OK) {
        it_fail(__FILE__, __LINE__, "connect to port %u: %s", d->port,
                usbip_client_last_error(NULL));
        return NULL;
    }
    usbip_client_set_timeout(c, 10000);
    track_client(c);
    return c;
}

usbip_client_t *it_import(daemon_t *d, const char *busid, usbip_device_record_t *rec)
{
    uint64_t deadline = it_now_ms() + 3000;
    for (;;) {
        usbip_client_t *c = it_connect(d);
        if (!c) {
            return NULL;
        }
        uint32_t status = 0;
        usbip_err_t err = usbip_client_import(c, busid, rec, &status);
        if (err == USBIP_OK) {
            return c;
        }
        char msg[300];
        snprintf(msg, sizeof msg, "%s", usbip_client_last_error(c));
        it_close(c);
        if (err != USBIP_ERR_BUSY || it_now_ms() >= deadline) {
            it_fail(__FILE__, __LINE__, "IMPORT %s: %s", busid, msg);
            return NULL;
        }
        it_sleep_ms(20);
    }
}

static void release_tracked(void)
{
    for (size_t i = 0; i < MAX_TRACKED; i++) {
        if (s_clients[i]) {
            usbip_client_close(s_clients[i]);
            s_clients[i] = NULL;
        }
        free(s_buffers[i]);
        s_buffers[i] = NULL;
    }
}

void it_run(const char *name, void (*fn)(daemon_t *d), const char *const *flags)
{
    s_case_name = name;
    it_case_failures = 0;
    printf("---- %s\n", name);
    uint64_t start = it_now_ms();
    daemon_t d;
    memset(&d, 0, sizeof d);
    if (daemon_start(&d, flags)) {
        fn(&d);
    }
    release_tracked();
    int before_stop = it_case_failures;
    daemon_stop(&d);
    if ((it_case_failures > 0 || getenv("IT_SHOW_LOGS")) && d.log_path[0]) {
        if (before_stop == it_case_failures) {
            fprintf(stderr, "  daemon banner: %s\n", d.banner);
        }
        daemon_log_dump(&d, 0);
    }
    s_current = NULL;
    remove_dir(&d);
    if (it_case_failures == 0) {
        s_passed_cases++;
        printf("ok   %s (%llu ms)\n", name, (unsigned long long)(it_now_ms() - start));
    } else {
        s_failed_cases++;
        printf("FAIL %s (%d failures)\n", name, it_case_failures);
    }
}

int it_finish(void)
{
    printf("%d passed, %d failed\n", s_passed_cases, s_failed_cases);
    return s_failed_cases == 0 ? 0 : 1;
}
