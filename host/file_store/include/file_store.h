/*
 * file_store: the host port's settings store (usbip_store_t) kept in a UTF-8
 * text file, one "key=value" per line. Lines starting with '#' are comments
 * (not kept when the file is rewritten); in values a newline is written "\n",
 * a carriage return "\r" and a backslash "\\". Keys are [a-z0-9_], at most 15
 * characters, values at most 511 bytes, as on the firmware's NVS.
 *
 * Entries live in memory; get/set/erase work there and commit() rewrites the
 * whole file atomically (temporary file in the same directory, fsync, rename)
 * with mode 0600. Not thread-safe: the owner serialises calls.
 */
#pragma once

#include "settings_store.h"
#include "usbip_err.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct usbip_file_store usbip_file_store_t;

/* Read path (a missing file is an empty store) and fill *out and, if not
 * NULL, *store_out. A malformed line is INVALID_ARG and logged as
 * "path:line: reason"; an unreadable file is IO; NO_MEM if allocation fails. */
usbip_err_t usbip_file_store_open(const char *path, usbip_file_store_t **out,
                                  usbip_store_t *store_out);

/* Free the store (uncommitted changes are dropped). NULL is fine. */
void usbip_file_store_close(usbip_file_store_t *fs);

#ifdef __cplusplus
}
#endif
