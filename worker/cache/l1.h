/* L1: the per-worker memory cache. Sharded (a mutex per shard, so responder threads
 * rarely meet), LRU eviction, a TTL per entry, bounded in entries and in bytes.
 * Values are copied in and out: a reader never holds a pointer into the cache, so an
 * entry can be replaced or evicted at any time without reference counting.
 * Owner: the worker (one per process), shared by its responder and cache-update threads. */
#ifndef DM_L1_H
#define DM_L1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct dm_l1 dm_l1;

#define DM_L1_KEY_MAX 96

typedef struct {
    size_t max_entries; /* 0: cache disabled (every get misses, puts are dropped) */
    size_t max_bytes;   /* sum of value sizes */
} dm_l1_limits;

dm_l1 *dm_l1_create(dm_l1_limits limits);
void dm_l1_destroy(dm_l1 *c);
/* New limits apply to later puts; entries over the new bounds are evicted at once. */
void dm_l1_set_limits(dm_l1 *c, dm_l1_limits limits);

/* Copies the value into a malloc'd buffer (*out, *len; caller frees). false on a miss or
 * an expired entry (which is dropped). A hit moves the entry to the front of the LRU. */
bool dm_l1_get(dm_l1 *c, const char *key, int64_t now_ms, void **out, size_t *len);
/* Inserts or replaces. ttl_ms <= 0 or a value larger than max_bytes: not stored. */
void dm_l1_put(dm_l1 *c, const char *key, const void *value, size_t len, int64_t now_ms,
               int64_t ttl_ms);
void dm_l1_del(dm_l1 *c, const char *key);
/* Drops every entry (the worker may have missed updates to any of them). */
void dm_l1_clear(dm_l1 *c);

/* Read-modify-write under the shard lock: fn receives the current value (NULL when
 * absent or expired) and returns the new one via *out and *out_len (malloc'd, taken over by
 * the cache), or returns false to delete the entry. Used to merge a fresh write into a
 * cached list without a window where another thread sees half of it. The entry keeps
 * its expiry unless it was absent (then nothing is stored: updates never create). */
typedef bool (*dm_l1_update_fn)(const void *cur, size_t cur_len, void **out, size_t *out_len,
                                void *ctx);
void dm_l1_update(dm_l1 *c, const char *key, int64_t now_ms, dm_l1_update_fn fn, void *ctx);

typedef struct {
    size_t entries, bytes;
    uint64_t hits, misses, evictions, expirations;
} dm_l1_stats;
dm_l1_stats dm_l1_get_stats(dm_l1 *c);

#endif
