#include "l1.h"

#include "util/hash.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Bounds are global, not per-shard budgets: a per-shard budget of max/16 would refuse a
 * value between max_bytes/16 and max_bytes, and with a small max_entries would hold up to
 * 16 times as many entries as asked. So the entry and byte totals are global atomics,
 * and eviction takes the tail of whichever shard holds the globally least recently used
 * entry (every touch stamps the entry from one global clock). The evicting thread holds
 * one shard lock at a time, so shards never wait for each other and cannot deadlock. */
#define L1_SHARDS 16
#define L1_SHARD_BITS 4
#define L1_MIN_BUCKETS 16
#define L1_CACHE_LINE 64

typedef struct entry {
    struct entry *chain;       /* next in the bucket */
    struct entry *prev, *next; /* LRU list: head is the most recently used */
    uint64_t hash;
    uint64_t used; /* global clock at the last touch: orders shard tails against each other */
    int64_t expires_at;
    void *value;
    size_t len;
    char key[]; /* NUL-terminated, shorter than DM_L1_KEY_MAX */
} entry;

typedef struct {
    alignas(L1_CACHE_LINE) pthread_mutex_t mu; /* own line: shards must not share one */
    entry **buckets;
    size_t nbuckets, count, bytes;
    entry *head, *tail;
    /* Stamp of the tail, UINT64_MAX when empty. Written under mu, read without it by
     * evictors choosing a shard: a stale read only picks a slightly less old victim. */
    atomic_uint_least64_t tail_used;
    uint64_t hits, misses, evictions, expirations;
} shard;

struct dm_l1 {
    shard shards[L1_SHARDS];
    atomic_size_t max_entries, max_bytes;
    atomic_size_t entries, bytes; /* totals over the shards, changed under the shard lock */
    atomic_uint_least64_t clock;
};

/* FNV-1a, then the murmur3 finalizer: FNV's low bits mix poorly and we take the shard
 * from the top bits and the bucket from the bottom ones. */
static uint64_t hash_key(const char *key, size_t n)
{
    uint64_t h = dm_fnv1a(key, n);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static shard *shard_of(dm_l1 *c, uint64_t h) { return &c->shards[h >> (64 - L1_SHARD_BITS)]; }

static size_t load_size(atomic_size_t *a) { return atomic_load_explicit(a, memory_order_relaxed); }

static bool disabled(dm_l1 *c) { return load_size(&c->max_entries) == 0; }

static bool over_bounds(dm_l1 *c)
{
    return load_size(&c->entries) > load_size(&c->max_entries) ||
           load_size(&c->bytes) > load_size(&c->max_bytes);
}

static bool expired(const entry *e, int64_t now_ms) { return now_ms >= e->expires_at; }

static int64_t expiry(int64_t now_ms, int64_t ttl_ms)
{
    return now_ms > INT64_MAX - ttl_ms ? INT64_MAX : now_ms + ttl_ms;
}

/* ---- per-shard structures; every function below expects sh->mu held ---- */

static void note_tail(shard *sh)
{
    atomic_store_explicit(&sh->tail_used, sh->tail ? sh->tail->used : UINT64_MAX,
                          memory_order_relaxed);
}

static void lru_unlink(shard *sh, entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        sh->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        sh->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(shard *sh, entry *e)
{
    e->prev = NULL;
    e->next = sh->head;
    if (sh->head)
        sh->head->prev = e;
    sh->head = e;
    if (sh->tail == NULL)
        sh->tail = e;
}

/* Stamps are taken under the shard lock from a clock that only grows, so within a shard
 * the LRU list is ordered by stamp and its tail carries the shard's oldest one. */
static void push_used(dm_l1 *c, shard *sh, entry *e)
{
    e->used = atomic_fetch_add_explicit(&c->clock, 1, memory_order_relaxed);
    lru_push_front(sh, e);
    note_tail(sh);
}

static void touch(dm_l1 *c, shard *sh, entry *e)
{
    lru_unlink(sh, e);
    push_used(c, sh, e);
}

static entry **find_slot(shard *sh, uint64_t h, const char *key)
{
    entry **p = &sh->buckets[h & (sh->nbuckets - 1)];
    while (*p && ((*p)->hash != h || strcmp((*p)->key, key) != 0))
        p = &(*p)->chain;
    return p;
}

static void account(dm_l1 *c, shard *sh, size_t entries_in, size_t entries_out, size_t bytes_in,
                    size_t bytes_out)
{
    sh->count = sh->count + entries_in - entries_out;
    sh->bytes = sh->bytes + bytes_in - bytes_out;
    atomic_fetch_add_explicit(&c->entries, entries_in, memory_order_relaxed);
    atomic_fetch_sub_explicit(&c->entries, entries_out, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->bytes, bytes_in, memory_order_relaxed);
    atomic_fetch_sub_explicit(&c->bytes, bytes_out, memory_order_relaxed);
}

static void remove_at(dm_l1 *c, shard *sh, entry **slot)
{
    entry *e = *slot;
    *slot = e->chain;
    lru_unlink(sh, e);
    note_tail(sh);
    account(c, sh, 0, 1, 0, e->len);
    free(e->value);
    free(e);
}

static void remove_entry(dm_l1 *c, shard *sh, entry *e)
{
    remove_at(c, sh, find_slot(sh, e->hash, e->key));
}

/* Load factor 1; when the bigger table cannot be had, chains just grow longer. */
static void maybe_grow(shard *sh)
{
    if (sh->count < sh->nbuckets)
        return;
    size_t n = sh->nbuckets * 2;
    entry **b = calloc(n, sizeof *b);
    if (b == NULL)
        return;
    for (size_t i = 0; i < sh->nbuckets; i++) {
        entry *e = sh->buckets[i];
        while (e) {
            entry *next = e->chain;
            e->chain = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(sh->buckets);
    sh->buckets = b;
    sh->nbuckets = n;
}

/* Finds a live entry; an expired one met here is dropped and counted. */
static entry *lookup(dm_l1 *c, shard *sh, uint64_t h, const char *key, int64_t now_ms)
{
    entry **slot = find_slot(sh, h, key);
    if (*slot == NULL)
        return NULL;
    if (expired(*slot, now_ms)) {
        remove_at(c, sh, slot);
        sh->expirations++;
        return NULL;
    }
    return *slot;
}

/* ---- eviction across shards; called with no shard lock held ---- */

static shard *oldest_shard(dm_l1 *c)
{
    shard *best = NULL;
    uint64_t best_used = UINT64_MAX;
    for (int i = 0; i < L1_SHARDS; i++) {
        uint64_t u = atomic_load_explicit(&c->shards[i].tail_used, memory_order_relaxed);
        if (u < best_used) {
            best_used = u;
            best = &c->shards[i];
        }
    }
    return best;
}

/* Bounds are re-checked under the victim's lock, but two threads evicting at once may
 * each take one entry for the same overshoot: the cache can dip just under its bounds,
 * never stay over them once the puts have returned. */
static void enforce_bounds(dm_l1 *c)
{
    while (over_bounds(c)) {
        shard *sh = oldest_shard(c);
        if (sh == NULL)
            return;
        pthread_mutex_lock(&sh->mu);
        if (sh->tail && over_bounds(c)) {
            remove_entry(c, sh, sh->tail);
            sh->evictions++;
        }
        pthread_mutex_unlock(&sh->mu);
    }
}

/* ---- public API ---- */

static void set_limits(dm_l1 *c, dm_l1_limits limits)
{
    atomic_store_explicit(&c->max_entries, limits.max_entries, memory_order_relaxed);
    atomic_store_explicit(&c->max_bytes, limits.max_bytes, memory_order_relaxed);
}

dm_l1 *dm_l1_create(dm_l1_limits limits)
{
    dm_l1 *c = aligned_alloc(L1_CACHE_LINE, sizeof *c);
    if (c == NULL)
        return NULL;
    memset(c, 0, sizeof *c);
    for (int i = 0; i < L1_SHARDS; i++) {
        shard *sh = &c->shards[i];
        sh->buckets = calloc(L1_MIN_BUCKETS, sizeof *sh->buckets);
        if (sh->buckets == NULL || pthread_mutex_init(&sh->mu, NULL) != 0) {
            free(sh->buckets);
            while (--i >= 0) {
                pthread_mutex_destroy(&c->shards[i].mu);
                free(c->shards[i].buckets);
            }
            free(c);
            return NULL;
        }
        sh->nbuckets = L1_MIN_BUCKETS;
        atomic_init(&sh->tail_used, UINT64_MAX);
    }
    set_limits(c, limits);
    return c;
}

void dm_l1_destroy(dm_l1 *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < L1_SHARDS; i++) {
        shard *sh = &c->shards[i];
        for (entry *e = sh->head, *next; e; e = next) {
            next = e->next;
            free(e->value);
            free(e);
        }
        free(sh->buckets);
        pthread_mutex_destroy(&sh->mu);
    }
    free(c);
}

void dm_l1_clear(dm_l1 *c)
{
    for (int i = 0; i < L1_SHARDS; i++) {
        shard *sh = &c->shards[i];
        pthread_mutex_lock(&sh->mu);
        while (sh->head)
            remove_entry(c, sh, sh->head);
        pthread_mutex_unlock(&sh->mu);
    }
}

void dm_l1_set_limits(dm_l1 *c, dm_l1_limits limits)
{
    set_limits(c, limits);
    enforce_bounds(c);
}

/* A zero-length value still gets a real buffer, so a hit never hands out NULL. */
static void *copy_value(const void *value, size_t len)
{
    void *p = malloc(len ? len : 1);
    if (p && len)
        memcpy(p, value, len);
    return p;
}

bool dm_l1_get(dm_l1 *c, const char *key, int64_t now_ms, void **out, size_t *len)
{
    size_t n = strlen(key);
    uint64_t h = hash_key(key, n);
    shard *sh = shard_of(c, h);
    void *copy = NULL;
    entry *e = NULL;
    pthread_mutex_lock(&sh->mu);
    if (n < DM_L1_KEY_MAX && !disabled(c))
        e = lookup(c, sh, h, key, now_ms);
    if (e)
        copy = copy_value(e->value, e->len);
    if (copy) {
        *len = e->len;
        touch(c, sh, e);
        sh->hits++;
    } else {
        sh->misses++;
    }
    pthread_mutex_unlock(&sh->mu);
    if (copy)
        *out = copy;
    return copy != NULL;
}

/* A put that cannot be stored still drops the key's old value: the caller is replacing
 * it, so serving the old one would be serving data known to be stale. */
static void drop_key(dm_l1 *c, const char *key, size_t n)
{
    if (n < DM_L1_KEY_MAX)
        dm_l1_del(c, key);
}

static entry *new_entry(const char *key, size_t n, uint64_t h, const void *value, size_t len)
{
    entry *e = malloc(sizeof *e + n + 1);
    if (e == NULL)
        return NULL;
    e->value = copy_value(value, len);
    if (e->value == NULL) {
        free(e);
        return NULL;
    }
    memcpy(e->key, key, n + 1);
    e->hash = h;
    e->len = len;
    e->chain = e->prev = e->next = NULL;
    return e;
}

void dm_l1_put(dm_l1 *c, const char *key, const void *value, size_t len, int64_t now_ms,
               int64_t ttl_ms)
{
    size_t n = strlen(key);
    if (n >= DM_L1_KEY_MAX || disabled(c) || ttl_ms <= 0 || len > load_size(&c->max_bytes)) {
        drop_key(c, key, n);
        return;
    }
    uint64_t h = hash_key(key, n);
    shard *sh = shard_of(c, h);
    /* Built outside the lock: the copy is the slow part of a put. */
    entry *fresh = new_entry(key, n, h, value, len);
    if (fresh == NULL) {
        drop_key(c, key, n);
        return;
    }
    fresh->expires_at = expiry(now_ms, ttl_ms);
    pthread_mutex_lock(&sh->mu);
    entry **slot = find_slot(sh, h, key);
    if (*slot)
        remove_at(c, sh, slot);
    maybe_grow(sh);
    slot = &sh->buckets[h & (sh->nbuckets - 1)];
    fresh->chain = *slot;
    *slot = fresh;
    account(c, sh, 1, 0, len, 0);
    push_used(c, sh, fresh);
    pthread_mutex_unlock(&sh->mu);
    enforce_bounds(c);
}

void dm_l1_del(dm_l1 *c, const char *key)
{
    size_t n = strlen(key);
    if (n >= DM_L1_KEY_MAX)
        return;
    uint64_t h = hash_key(key, n);
    shard *sh = shard_of(c, h);
    pthread_mutex_lock(&sh->mu);
    entry **slot = find_slot(sh, h, key);
    if (*slot)
        remove_at(c, sh, slot);
    pthread_mutex_unlock(&sh->mu);
}

/* Swaps in fn's result; one too large for the cache leaves no entry, since the old value
 * is now stale. An update counts as a use for the LRU. */
static void apply_update(dm_l1 *c, shard *sh, entry *e, void *out, size_t out_len)
{
    if (out == NULL) { /* fn gave no buffer: an empty value, whatever length it claimed */
        out_len = 0;
        out = copy_value(NULL, 0);
    }
    if (out == NULL || out_len > load_size(&c->max_bytes)) {
        free(out);
        remove_entry(c, sh, e);
        return;
    }
    account(c, sh, 0, 0, out_len, e->len);
    free(e->value);
    e->value = out;
    e->len = out_len;
    touch(c, sh, e);
}

void dm_l1_update(dm_l1 *c, const char *key, int64_t now_ms, dm_l1_update_fn fn, void *ctx)
{
    size_t n = strlen(key);
    uint64_t h = hash_key(key, n);
    shard *sh = shard_of(c, h);
    void *out = NULL;
    size_t out_len = 0;
    pthread_mutex_lock(&sh->mu);
    entry *e = n < DM_L1_KEY_MAX && !disabled(c) ? lookup(c, sh, h, key, now_ms) : NULL;
    bool keep = fn(e ? e->value : NULL, e ? e->len : 0, &out, &out_len, ctx);
    if (e && keep)
        apply_update(c, sh, e, out, out_len);
    else if (e)
        remove_entry(c, sh, e); /* on false, *out is not the cache's to take or free */
    else if (keep)
        free(out); /* updates never create */
    pthread_mutex_unlock(&sh->mu);
    enforce_bounds(c);
}

dm_l1_stats dm_l1_get_stats(dm_l1 *c)
{
    dm_l1_stats s = {0};
    for (int i = 0; i < L1_SHARDS; i++) {
        shard *sh = &c->shards[i];
        pthread_mutex_lock(&sh->mu);
        s.entries += sh->count;
        s.bytes += sh->bytes;
        s.hits += sh->hits;
        s.misses += sh->misses;
        s.evictions += sh->evictions;
        s.expirations += sh->expirations;
        pthread_mutex_unlock(&sh->mu);
    }
    return s;
}
