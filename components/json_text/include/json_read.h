/*
 * json_read: parse JSON text into a flat array of tokens (no allocation:
 * the caller gives the array), then look values up by key. Strict RFC 8259:
 * one top-level value, no trailing commas, no comments, nesting at most
 * JSON_READ_MAX_DEPTH. Strings stay escaped in the text until
 * json_read_string() decodes them.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define JSON_READ_MAX_DEPTH 16

typedef enum {
    JSON_OBJECT,
    JSON_ARRAY,
    JSON_STRING,
    JSON_NUMBER,
    JSON_TRUE,
    JSON_FALSE,
    JSON_NULL,
} json_type_t;

typedef struct {
    json_type_t type;
    uint32_t start, end; /* text span; strings: inside the quotes */
    uint32_t children;   /* objects: members (key + value pairs), arrays: elements */
    uint32_t next;       /* index of the token after this one and everything inside it */
} json_token_t;

typedef struct {
    const char *text;
    size_t len;
    json_token_t *tokens;
    size_t count, max;
    size_t error_at;     /* byte offset of a syntax error */
    const char *error;   /* what was wrong, or NULL */
} json_doc_t;

/* False with doc->error / doc->error_at set on a syntax error or when the
 * text needs more than max tokens. Token 0 is the top-level value. */
bool json_read_parse(json_doc_t *doc, const char *text, size_t len, json_token_t *tokens,
                     size_t max);

/* The value of member `key` of object token `obj`, or -1. */
int json_read_member(const json_doc_t *doc, int obj, const char *key);
/* Element i of array token `arr`, or -1. */
int json_read_element(const json_doc_t *doc, int arr, uint32_t i);
/* For iterating an object: the key token of member i (its value follows it). */
int json_read_member_key(const json_doc_t *doc, int obj, uint32_t i);

/* Decode string token `tok` into out (NUL-terminated, UTF-8). False if it
 * is not a string, has a bad escape, holds a NUL, or does not fit. */
bool json_read_string(const json_doc_t *doc, int tok, char *out, size_t out_len);
/* Compare string token `tok` with s without decoding (escapes never match). */
bool json_read_string_is(const json_doc_t *doc, int tok, const char *s);
/* A non-negative integer up to max. */
bool json_read_uint(const json_doc_t *doc, int tok, uint64_t max, uint64_t *out);
bool json_read_bool(const json_doc_t *doc, int tok, bool *out);

#ifdef __cplusplus
}
#endif
