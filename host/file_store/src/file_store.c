#define _POSIX_C_SOURCE 200809L

#include "file_store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "usbip_log.h"

static const char *const TAG = "file_store";

typedef struct {
    char key[USBIP_STORE_KEY_MAX + 1];
    char *value; /* malloc'd, NUL-terminated */
} entry_t;

struct usbip_file_store {
    char *path;
    entry_t *entries;
    size_t count;
    size_t capacity;
};

/* ---- keys and entries ---------------------------------------------------- */

static bool key_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static bool key_span_ok(const char *key, size_t len)
{
    if (len == 0 || len > USBIP_STORE_KEY_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!key_char_ok(key[i])) {
            return false;
        }
    }
    return true;
}

static bool key_ok(const char *key)
{
    return key && key_span_ok(key, strnlen(key, USBIP_STORE_KEY_MAX + 1));
}

static entry_t *find_entry(usbip_file_store_t *fs, const char *key)
{
    for (size_t i = 0; i < fs->count; i++) {
        if (strcmp(fs->entries[i].key, key) == 0) {
            return &fs->entries[i];
        }
    }
    return NULL;
}

/* Store key=value, taking ownership of value (freed on failure). */
static usbip_err_t put_entry(usbip_file_store_t *fs, const char *key, char *value)
{
    entry_t *existing = find_entry(fs, key);
    if (existing) {
        free(existing->value);
        existing->value = value;
        return USBIP_OK;
    }
    if (fs->count == fs->capacity) {
        size_t capacity = fs->capacity ? fs->capacity * 2 : 8;
        entry_t *grown = realloc(fs->entries, capacity * sizeof *grown);
        if (!grown) {
            free(value);
            return USBIP_ERR_NO_MEM;
        }
        fs->entries = grown;
        fs->capacity = capacity;
    }
    entry_t *e = &fs->entries[fs->count++];
    snprintf(e->key, sizeof e->key, "%s", key);
    e->value = value;
    return USBIP_OK;
}

/* ---- the usbip_store_ops_t ----------------------------------------------- */

static usbip_err_t fs_get(void *ctx, const char *key, char *value, size_t *len)
{
    usbip_file_store_t *fs = ctx;
    if (!fs || !key_ok(key) || !value || !len) {
        return USBIP_ERR_INVALID_ARG;
    }
    entry_t *e = find_entry(fs, key);
    if (!e) {
        return USBIP_ERR_NOT_FOUND;
    }
    size_t value_len = strlen(e->value);
    if (value_len + 1 > *len) {
        return USBIP_ERR_INVALID_SIZE;
    }
    memcpy(value, e->value, value_len + 1);
    *len = value_len;
    return USBIP_OK;
}

static usbip_err_t fs_set(void *ctx, const char *key, const char *value)
{
    usbip_file_store_t *fs = ctx;
    if (!fs || !value) {
        return USBIP_ERR_INVALID_ARG;
    }
    if (!key_ok(key)) {
        USBIP_LOGE(TAG, "set: invalid key \"%.*s\" (use [a-z0-9_], at most %d characters)",
                   USBIP_STORE_KEY_MAX + 8, key ? key : "(null)", USBIP_STORE_KEY_MAX);
        return USBIP_ERR_INVALID_ARG;
    }
    if (strnlen(value, USBIP_STORE_VALUE_MAX + 1) > USBIP_STORE_VALUE_MAX) {
        USBIP_LOGE(TAG, "set \"%s\": value longer than %d bytes", key, USBIP_STORE_VALUE_MAX);
        return USBIP_ERR_INVALID_SIZE;
    }
    char *copy = strdup(value);
    if (!copy) {
        return USBIP_ERR_NO_MEM;
    }
    return put_entry(fs, key, copy);
}

static usbip_err_t fs_erase(void *ctx, const char *key)
{
    usbip_file_store_t *fs = ctx;
    if (!fs || !key_ok(key)) {
        return USBIP_ERR_INVALID_ARG;
    }
    entry_t *e = find_entry(fs, key);
    if (!e) {
        return USBIP_ERR_NOT_FOUND;
    }
    free(e->value);
    size_t index = (size_t)(e - fs->entries);
    /* Keep the order so the file does not reshuffle on every save. */
    memmove(e, e + 1, (fs->count - index - 1) * sizeof *e);
    fs->count--;
    return USBIP_OK;
}

/* ---- writing ------------------------------------------------------------- */

static bool write_escaped(FILE *f, const char *value)
{
    for (const char *p = value; *p; p++) {
        const char *escape = NULL;
        switch (*p) {
        case '\\': escape = "\\\\"; break;
        case '\n': escape = "\\n"; break;
        case '\r': escape = "\\r"; break;
        default: break;
        }
        if (escape ? fputs(escape, f) == EOF : fputc(*p, f) == EOF) {
            return false;
        }
    }
    return true;
}

static bool write_entries(FILE *f, const usbip_file_store_t *fs)
{
    if (fputs("# USB/IP server settings, written by the server (comments are not kept).\n"
              "# One key=value per line; in values \\n is a newline, \\\\ a backslash.\n",
              f) == EOF) {
        return false;
    }
    for (size_t i = 0; i < fs->count; i++) {
        if (fprintf(f, "%s=", fs->entries[i].key) < 0 || !write_escaped(f, fs->entries[i].value) ||
            fputc('\n', f) == EOF) {
            return false;
        }
    }
    return true;
}

/* A rename is only durable once the directory holding it is synced. */
static void sync_parent_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, sizeof dir, ".");
    } else if (slash == path) {
        snprintf(dir, sizeof dir, "/");
    } else {
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0 || fsync(fd) != 0) {
        USBIP_LOGW(TAG, "%s: syncing the directory failed: %s", dir, strerror(errno));
    }
    if (fd >= 0) {
        close(fd);
    }
}

static usbip_err_t fs_commit(void *ctx)
{
    usbip_file_store_t *fs = ctx;
    if (!fs) {
        return USBIP_ERR_INVALID_ARG;
    }
    /* The temporary file sits next to the target so rename() stays within
     * one file system and replaces the file atomically. */
    size_t tmp_size = strlen(fs->path) + sizeof ".tmp.XXXXXX";
    char *tmp_path = malloc(tmp_size);
    if (!tmp_path) {
        return USBIP_ERR_NO_MEM;
    }
    snprintf(tmp_path, tmp_size, "%s.tmp.XXXXXX", fs->path);
    int fd = mkstemp(tmp_path); /* creates the file with mode 0600 */
    if (fd < 0) {
        USBIP_LOGE(TAG, "%s: cannot create a temporary file: %s", fs->path, strerror(errno));
        free(tmp_path);
        return USBIP_ERR_IO;
    }
    FILE *f = fdopen(fd, "w");
    bool ok = f != NULL && fchmod(fd, S_IRUSR | S_IWUSR) == 0 && write_entries(f, fs) &&
              fflush(f) == 0 && fsync(fd) == 0;
    int saved_errno = errno;
    if (f ? fclose(f) != 0 : close(fd) != 0) {
        ok = false;
        saved_errno = errno;
    }
    if (ok && rename(tmp_path, fs->path) != 0) {
        ok = false;
        saved_errno = errno;
    }
    if (!ok) {
        USBIP_LOGE(TAG, "%s: writing settings failed: %s", fs->path, strerror(saved_errno));
        unlink(tmp_path);
        free(tmp_path);
        return USBIP_ERR_IO;
    }
    free(tmp_path);
    sync_parent_dir(fs->path);
    return USBIP_OK;
}

static const usbip_store_ops_t s_file_store_ops = {
    .get = fs_get,
    .set = fs_set,
    .erase = fs_erase,
    .commit = fs_commit,
};

/* ---- reading ------------------------------------------------------------- */

/* Undo write_escaped on text[0..len-1] into a new string. *reason says why
 * it failed; NULL result with *reason NULL means out of memory. */
static char *unescape_value(const char *text, size_t len, const char **reason)
{
    *reason = NULL;
    char *out = malloc(len + 1);
    if (!out) {
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] != '\\') {
            out[n++] = text[i];
            continue;
        }
        char next = i + 1 < len ? text[++i] : '\0';
        switch (next) {
        case '\\': out[n++] = '\\'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        default:
            *reason = next ? "unknown escape in value (only \\n, \\r and \\\\)"
                           : "value ends with a lone backslash";
            free(out);
            return NULL;
        }
    }
    out[n] = '\0';
    if (n > USBIP_STORE_VALUE_MAX) {
        *reason = "value longer than 511 bytes";
        free(out);
        return NULL;
    }
    return out;
}

static bool is_blank_or_comment(const char *line)
{
    while (*line == ' ' || *line == '\t') {
        line++;
    }
    return *line == '\0' || *line == '#';
}

/* Parse one line (newline already removed) into the store. */
static usbip_err_t load_line(usbip_file_store_t *fs, const char *line, size_t len,
                             unsigned line_no)
{
    const char *reason = NULL;
    if (strlen(line) != len) {
        reason = "line contains a NUL byte";
    } else if (is_blank_or_comment(line)) {
        return USBIP_OK;
    }
    const char *equals = reason ? NULL : strchr(line, '=');
    if (!reason && !equals) {
        reason = "expected key=value";
    }
    if (!reason && !key_span_ok(line, (size_t)(equals - line))) {
        reason = "invalid key (use [a-z0-9_], at most 15 characters)";
    }
    if (!reason) {
        char key[USBIP_STORE_KEY_MAX + 1];
        snprintf(key, sizeof key, "%.*s", (int)(equals - line), line);
        char *value = unescape_value(equals + 1, len - (size_t)(equals + 1 - line), &reason);
        if (value) {
            return put_entry(fs, key, value);
        }
        if (!reason) {
            return USBIP_ERR_NO_MEM;
        }
    }
    USBIP_LOGE(TAG, "%s:%u: %s", fs->path, line_no, reason);
    return USBIP_ERR_INVALID_ARG;
}

static usbip_err_t load_file(usbip_file_store_t *fs, FILE *f)
{
    char *line = NULL;
    size_t line_cap = 0;
    unsigned line_no = 0;
    usbip_err_t err = USBIP_OK;
    ssize_t got;
    while (err == USBIP_OK && (got = getline(&line, &line_cap, f)) >= 0) {
        size_t len = (size_t)got;
        line_no++;
        if (len > 0 && line[len - 1] == '\n') {
            line[--len] = '\0';
        }
        if (len > 0 && line[len - 1] == '\r') {
            line[--len] = '\0'; /* tolerate a file edited on Windows */
        }
        err = load_line(fs, line, len, line_no);
    }
    if (err == USBIP_OK && ferror(f)) {
        USBIP_LOGE(TAG, "%s: read failed: %s", fs->path, strerror(errno));
        err = USBIP_ERR_IO;
    }
    free(line);
    return err;
}

usbip_err_t usbip_file_store_open(const char *path, usbip_file_store_t **out,
                                  usbip_store_t *store_out)
{
    if (!path || !out || path[0] == '\0') {
        USBIP_LOGE(TAG, "open: %s", !out ? "out is NULL" : "empty or NULL path");
        return USBIP_ERR_INVALID_ARG;
    }
    *out = NULL;
    usbip_file_store_t *fs = calloc(1, sizeof *fs);
    if (!fs || !(fs->path = strdup(path))) {
        free(fs);
        return USBIP_ERR_NO_MEM;
    }
    usbip_err_t err = USBIP_OK;
    FILE *f = fopen(path, "r");
    if (f) {
        err = load_file(fs, f);
        fclose(f);
    } else if (errno != ENOENT) {
        USBIP_LOGE(TAG, "%s: cannot open: %s", path, strerror(errno));
        err = USBIP_ERR_IO;
    }
    if (err != USBIP_OK) {
        usbip_file_store_close(fs);
        return err;
    }
    *out = fs;
    if (store_out) {
        store_out->ops = &s_file_store_ops;
        store_out->ctx = fs;
    }
    return USBIP_OK;
}

void usbip_file_store_close(usbip_file_store_t *fs)
{
    if (!fs) {
        return;
    }
    for (size_t i = 0; i < fs->count; i++) {
        free(fs->entries[i].value);
    }
    free(fs->entries);
    free(fs->path);
    free(fs);
}
