/*
 * json_write: build JSON text into a growable buffer. Commas and nesting
 * are tracked for the caller; strings are escaped (control characters as
 * \u00XX, invalid UTF-8 bytes as U+FFFD). A failed allocation or a nesting
 * deeper than JSON_WRITE_MAX_DEPTH marks the writer failed: later calls do
 * nothing and json_write_finish() returns NULL.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define JSON_WRITE_MAX_DEPTH 16

typedef struct {
    char *buf;
    size_t len, cap, limit;
    bool failed;
    int depth;
    bool first[JSON_WRITE_MAX_DEPTH]; /* no element yet at this depth */
    bool after_key;
} json_writer_t;

/* limit: the largest text accepted (0: 1 MiB). */
void json_write_init(json_writer_t *w, size_t limit);
void json_write_object_begin(json_writer_t *w);
void json_write_object_end(json_writer_t *w);
void json_write_array_begin(json_writer_t *w);
void json_write_array_end(json_writer_t *w);
void json_write_key(json_writer_t *w, const char *key);
void json_write_string(json_writer_t *w, const char *s);
void json_write_string_n(json_writer_t *w, const char *s, size_t n);
void json_write_int(json_writer_t *w, int64_t v);
void json_write_uint(json_writer_t *w, uint64_t v);
void json_write_double(json_writer_t *w, double v, int decimals);
void json_write_bool(json_writer_t *w, bool v);
void json_write_null(json_writer_t *w);
/* Raw text the caller vouches for (a number or a complete JSON value). */
void json_write_raw(json_writer_t *w, const char *text, size_t n);

/* Shorthands for "key": value members. */
void json_write_kv_string(json_writer_t *w, const char *key, const char *s);
void json_write_kv_uint(json_writer_t *w, const char *key, uint64_t v);
void json_write_kv_int(json_writer_t *w, const char *key, int64_t v);
void json_write_kv_bool(json_writer_t *w, const char *key, bool v);

/* The NUL-terminated text (the caller frees it) and its length, or NULL if
 * anything failed (then everything was freed). */
char *json_write_finish(json_writer_t *w, size_t *len);
/* Drop the text (on an error path). */
void json_write_discard(json_writer_t *w);

#ifdef __cplusplus
}
#endif
