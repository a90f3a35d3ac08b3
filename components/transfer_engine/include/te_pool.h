/*
 * te_pool: fair sharing of the preallocated transfer objects between the
 * imported devices.
 *
 * Every URB in the backend holds one pool entry (its usb_transfer_t) from
 * alloc_buffer() to free_buffer(). One greedy device (a network adapter
 * keeping 60 bulk IN URBs queued) must not starve the others, whose
 * sessions would then wait with nothing in flight. Each active (imported)
 * device is owed `reserve` entries: a device below its reserve may always
 * take a free entry; above it, only if what stays free still covers what
 * the other active devices are owed. Counting only, no storage; the caller
 * serialises calls (the server task owns the pool).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint32_t held;
    bool active;
} te_pool_account_t;

typedef struct {
    uint32_t total;
    uint32_t free;
    uint32_t reserve;
    te_pool_account_t *accounts;
    size_t num_accounts;
} te_pool_t;

/* reserve = max(1, total / (2 * devices)): half the pool is guaranteed. */
uint32_t te_pool_default_reserve(uint32_t total, size_t devices);

void te_pool_init(te_pool_t *pool, uint32_t total, te_pool_account_t *accounts,
                  size_t num_accounts, uint32_t reserve);
/* An account starts (import) or stops (end of session) being owed its reserve. */
void te_pool_set_active(te_pool_t *pool, size_t account, bool active);
/* Take one entry for `account`; false means wait (WOULD_BLOCK). */
bool te_pool_take(te_pool_t *pool, size_t account);
void te_pool_give(te_pool_t *pool, size_t account);
/* Entries still owed to active accounts other than `account`. */
uint32_t te_pool_owed_to_others(const te_pool_t *pool, size_t account);

#ifdef __cplusplus
}
#endif
