/*
 * te_pool: reserve-based fair share of the transfer pool (see te_pool.h).
 */
#include "te_pool.h"

#include <string.h>

uint32_t te_pool_default_reserve(uint32_t total, size_t devices)
{
    if (devices == 0) {
        return total;
    }
    const uint64_t reserve = total / (2u * (uint64_t)devices);
    return reserve ? (uint32_t)reserve : 1u;
}

void te_pool_init(te_pool_t *pool, uint32_t total, te_pool_account_t *accounts,
                  size_t num_accounts, uint32_t reserve)
{
    pool->total = total;
    pool->free = total;
    pool->reserve = reserve;
    pool->accounts = accounts;
    pool->num_accounts = num_accounts;
    memset(accounts, 0, num_accounts * sizeof *accounts);
}

void te_pool_set_active(te_pool_t *pool, size_t account, bool active)
{
    if (account < pool->num_accounts) {
        pool->accounts[account].active = active;
    }
}

uint32_t te_pool_owed_to_others(const te_pool_t *pool, size_t account)
{
    uint32_t owed = 0;
    for (size_t i = 0; i < pool->num_accounts; i++) {
        const te_pool_account_t *a = &pool->accounts[i];
        if (i != account && a->active && a->held < pool->reserve) {
            owed += pool->reserve - a->held;
        }
    }
    return owed;
}

bool te_pool_take(te_pool_t *pool, size_t account)
{
    if (account >= pool->num_accounts || pool->free == 0) {
        return false;
    }
    te_pool_account_t *a = &pool->accounts[account];
    if (a->held >= pool->reserve && pool->free <= te_pool_owed_to_others(pool, account)) {
        return false;
    }
    a->held++;
    pool->free--;
    return true;
}

void te_pool_give(te_pool_t *pool, size_t account)
{
    if (account >= pool->num_accounts || pool->accounts[account].held == 0) {
        return;
    }
    pool->accounts[account].held--;
    pool->free++;
}
