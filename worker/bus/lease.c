#include "lease.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "util/log.h"

struct dm_lease {
    dm_bus *bus;
    char key[64], holder[96];
    bool held;
    uint64_t rev;       /* of our last write, while held */
    int64_t renewed_ms; /* monotonic */
    int64_t next_repair_ms;
};

dm_lease *dm_lease_create(dm_bus *bus, const char *durable, const char *holder)
{
    dm_lease *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    l->bus = bus;
    snprintf(l->key, sizeof l->key, "%s", durable);
    snprintf(l->holder, sizeof l->holder, "%s", holder);
    return l;
}

static bool claim(dm_lease *l)
{
    kvStore *kv = l->bus->leases;
    /* Read first: all workers but the holder ask twice a second, and while the lease is
     * held a read is their one request (a create first failed, then read: two). */
    kvEntry *e = NULL;
    natsStatus s = kvStore_Get(&e, kv, l->key);
    if (s == NATS_OK) {
        /* Free when its holder released it (an empty value), or ours already: a renewal
         * that failed while NATS was away must not lock this worker out of its own lease
         * until it expires. */
        int n = kvEntry_ValueLen(e);
        bool free_now = n == 0 || ((size_t)n == strlen(l->holder) &&
                                   memcmp(kvEntry_Value(e), l->holder, (size_t)n) == 0);
        uint64_t last = kvEntry_Revision(e);
        kvEntry_Destroy(e);
        return free_now && kvStore_UpdateString(&l->rev, kv, l->key, l->holder, last) == NATS_OK;
    }
    /* Absent (expired, or never taken): the first to create it holds it. */
    if (s == NATS_NOT_FOUND && kvStore_CreateString(&l->rev, kv, l->key, l->holder) == NATS_OK)
        return true;
    if (dm_mono_ms() < l->next_repair_ms)
        return false;
    /* Neither read nor created: an election, another worker's create just before ours, or
     * the bucket itself is gone (deleted, or a server that lost it), and then no candle
     * would ever be written again. A read of a gone bucket is not always NOT_FOUND: its
     * direct get has no responders. */
    l->next_repair_ms = dm_mono_ms() + 2000;
    if (!dm_bus_recreate_leases_if_gone(l->bus))
        return false;
    DM_WARN("lease", "%s: the lease bucket was missing: created again", l->key);
    return kvStore_CreateString(&l->rev, kv, l->key, l->holder) == NATS_OK;
}

bool dm_lease_hold(dm_lease *l, bool *taken)
{
    if (taken)
        *taken = false;
    if (l->bus->leases == NULL)
        return true; /* no bucket (an old server): every worker writes, as before */
    int64_t now = dm_mono_ms();
    if (l->held && now - l->renewed_ms < DM_LEASE_RENEW_MS)
        return true;
    if (l->held) {
        if (kvStore_UpdateString(&l->rev, l->bus->leases, l->key, l->holder, l->rev) == NATS_OK) {
            l->renewed_ms = now;
            return true;
        }
        DM_WARN("lease", "%s: lease not renewed (NATS did not answer, or another worker took it): "
                         "not writing until it is held again", l->key);
        l->held = false;
        return false;
    }
    if (claim(l)) {
        l->held = true;
        l->renewed_ms = now;
        if (taken)
            *taken = true;
        DM_INFO("lease", "%s: this worker writes it now", l->key);
    }
    return l->held;
}

bool dm_lease_exclusive(const dm_lease *l)
{
    return l->bus->leases != NULL;
}

void dm_lease_release(dm_lease *l)
{
    if (l == NULL || !l->held || l->bus->leases == NULL)
        return;
    uint64_t rev = 0;
    /* Conditional on our revision: a lease that already passed to another stays theirs. */
    kvStore_Update(&rev, l->bus->leases, l->key, NULL, 0, l->rev);
    l->held = false;
}

void dm_lease_destroy(dm_lease *l)
{
    if (l == NULL)
        return;
    dm_lease_release(l);
    free(l);
}
