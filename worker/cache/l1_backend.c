#include "l1_backend.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/hash.h"

#define EPOCH_SLOTS 1024
#define FRESH_MAX_KEYS 100000

struct dm_l1_cache {
    dm_l1 *ticks, *candles;
    dm_fresh *fresh;
    atomic_llong tick_ttl_ms, candle_ttl_ms;
    atomic_ullong epochs[EPOCH_SLOTS];
};

/* What an entry holds: each row with the stream sequence it is known to be as new as
 * (the message it came from, or for a fill the sequence the answering source had
 * committed). A merge never replaces a row with one from an older sequence, so a lagging
 * backend's late update cannot turn a newer value back. */
typedef struct {
    dm_tick t;
    uint64_t seq;
} st_tick;

typedef struct {
    dm_candle c;
    uint64_t seq;
} st_candle;

typedef struct {
    dm_backend base;
    dm_l1_cache *cache;
    uint64_t miss_epoch; /* epoch of the key when this thread last missed it */
    uint64_t miss_generation;
    char miss_key[DM_L1_KEY_MAX];
} l1_backend;

void dm_l1_tick_key(const char *symbol, char *key)
{
    char token[DM_TOKEN_MAX + 1];
    dm_symbol_token(symbol, token);
    snprintf(key, DM_L1_KEY_MAX, DM_KEY_TICK_LATEST, token);
}

void dm_l1_candle_key(const char *symbol, dm_tf tf, char *key)
{
    char token[DM_TOKEN_MAX + 1];
    dm_symbol_token(symbol, token);
    snprintf(key, DM_L1_KEY_MAX, DM_KEY_CANDLE_LATEST, token, dm_tf_name(tf));
}

static atomic_ullong *epoch_of(dm_l1_cache *c, const char *key)
{
    return &c->epochs[dm_fnv1a(key, strlen(key)) % EPOCH_SLOTS];
}

dm_l1_cache *dm_l1_cache_create(size_t max_entries_per_kind, size_t max_bytes)
{
    dm_l1_cache *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    dm_l1_limits lim = {max_entries_per_kind, max_bytes / 2};
    c->ticks = dm_l1_create(lim);
    c->candles = dm_l1_create(lim);
    c->fresh = dm_fresh_create(FRESH_MAX_KEYS);
    atomic_init(&c->tick_ttl_ms, 60000);
    atomic_init(&c->candle_ttl_ms, 60000);
    if (c->ticks == NULL || c->candles == NULL || c->fresh == NULL) {
        dm_l1_cache_destroy(c);
        return NULL;
    }
    return c;
}

void dm_l1_cache_destroy(dm_l1_cache *c)
{
    if (c == NULL)
        return;
    dm_l1_destroy(c->ticks);
    dm_l1_destroy(c->candles);
    dm_fresh_destroy(c->fresh);
    free(c);
}

void dm_l1_cache_set_ttl(dm_l1_cache *c, int64_t tick_ttl_ms, int64_t candle_ttl_ms)
{
    atomic_store(&c->tick_ttl_ms, tick_ttl_ms);
    atomic_store(&c->candle_ttl_ms, candle_ttl_ms);
}

void dm_l1_cache_set_limits(dm_l1_cache *c, size_t max_entries_per_kind, size_t max_bytes)
{
    dm_l1_limits lim = {max_entries_per_kind, max_bytes / 2};
    dm_l1_set_limits(c->ticks, lim);
    dm_l1_set_limits(c->candles, lim);
}

dm_l1_stats dm_l1_cache_stats(dm_l1_cache *c, bool candles)
{
    return dm_l1_get_stats(candles ? c->candles : c->ticks);
}

dm_fresh *dm_l1_cache_fresh(dm_l1_cache *c) { return c->fresh; }

void dm_l1_cache_restart(dm_l1_cache *c)
{
    dm_fresh_suspend(c->fresh);
    dm_l1_clear(c->ticks);
    dm_l1_clear(c->candles);
    dm_fresh_restart(c->fresh);
}

static void remember_miss(l1_backend *b, const char *key)
{
    b->miss_epoch = atomic_load(epoch_of(b->cache, key));
    b->miss_generation = dm_fresh_generation(b->cache->fresh);
    snprintf(b->miss_key, sizeof b->miss_key, "%s", key);
}

/* A fill is allowed only for the key this thread missed, only if no update touched the
 * key's slot since, and only if the worker has not started over meanwhile. */
static bool fill_allowed(l1_backend *b, const char *key)
{
    return strcmp(b->miss_key, key) == 0 && atomic_load(epoch_of(b->cache, key)) == b->miss_epoch &&
           dm_fresh_generation(b->cache->fresh) == b->miss_generation &&
           !dm_fresh_suspended(b->cache->fresh);
}

static dm_bstatus l1_latest_tick(dm_backend *base, const char *symbol, dm_tick *out, dm_err *err)
{
    (void)err;
    l1_backend *b = (l1_backend *)base;
    char key[DM_L1_KEY_MAX];
    dm_l1_tick_key(symbol, key);
    void *v = NULL;
    size_t len = 0;
    if (dm_fresh_suspended(b->cache->fresh) ||
        !dm_l1_get(b->cache->ticks, key, dm_now_ms(), &v, &len) || len != sizeof(st_tick)) {
        free(v);
        remember_miss(b, key);
        return DM_BS_MISS;
    }
    *out = ((const st_tick *)v)->t;
    free(v);
    return DM_BS_OK;
}

static dm_bstatus l1_latest_candles(dm_backend *base, const char *symbol, dm_tf tf, size_t limit,
                                    dm_candle_vec *out, dm_err *err)
{
    l1_backend *b = (l1_backend *)base;
    char key[DM_L1_KEY_MAX];
    dm_l1_candle_key(symbol, tf, key);
    void *v = NULL;
    size_t len = 0;
    size_t have = 0;
    if (!dm_fresh_suspended(b->cache->fresh) && dm_l1_get(b->cache->candles, key, dm_now_ms(), &v, &len))
        have = len / sizeof(st_candle);
    if (have < limit) { /* the entry holds fewer: the next level knows whether more exist */
        free(v);
        remember_miss(b, key);
        return DM_BS_MISS;
    }
    const st_candle *c = v;
    for (size_t i = have - limit; i < have; i++) {
        dm_candle *dst = dm_candle_vec_push(out);
        if (dst == NULL) {
            free(v);
            return dm_fail(err, DM_E_INTERNAL, "", "out of memory"), DM_BS_TRANSIENT;
        }
        *dst = c[i].c;
    }
    free(v);
    return DM_BS_OK;
}

/* Fills after a slower source answered: the answer is the newest value(s) as of then,
 * at least as new as the sequence the source was known to hold (o->seq). */
static dm_bstatus l1_fill_ticks(dm_backend *base, const dm_tick *t, size_t n,
                                const dm_cache_opts *o, dm_err *err)
{
    (void)err;
    l1_backend *b = (l1_backend *)base;
    char key[DM_L1_KEY_MAX];
    if (n != 1)
        return DM_BS_OK;
    dm_l1_tick_key(t->symbol, key);
    st_tick v = {.t = *t, .seq = o ? o->seq : 0};
    if (fill_allowed(b, key))
        dm_l1_put(b->cache->ticks, key, &v, sizeof v, dm_now_ms(), atomic_load(&b->cache->tick_ttl_ms));
    return DM_BS_OK;
}

static dm_bstatus l1_fill_candles(dm_backend *base, const dm_candle *c, size_t n,
                                  const dm_cache_opts *o, dm_err *err)
{
    l1_backend *b = (l1_backend *)base;
    char key[DM_L1_KEY_MAX];
    if (n == 0)
        return DM_BS_OK;
    dm_l1_candle_key(c->symbol, c->tf, key);
    if (!fill_allowed(b, key))
        return DM_BS_OK;
    st_candle *v = malloc(n * sizeof *v);
    if (v == NULL)
        return dm_fail(err, DM_E_INTERNAL, "", "out of memory"), DM_BS_TRANSIENT;
    for (size_t i = 0; i < n; i++)
        v[i] = (st_candle){.c = c[i], .seq = o ? o->seq : 0};
    dm_l1_put(b->cache->candles, key, v, n * sizeof *v, dm_now_ms(),
              atomic_load(&b->cache->candle_ttl_ms));
    free(v);
    return DM_BS_OK;
}

static dm_bstatus l1_ping(dm_backend *b, dm_err *err)
{
    (void)b, (void)err;
    return DM_BS_OK;
}

static void l1_destroy(dm_backend *b) { free(b); }

static const dm_backend_ops OPS = {
    .write_ticks = l1_fill_ticks,
    .write_candles = l1_fill_candles,
    .latest_tick = l1_latest_tick,
    .latest_candles = l1_latest_candles,
    .ping = l1_ping,
    .destroy = l1_destroy,
};

dm_backend *dm_l1_backend_create(dm_l1_cache *c)
{
    l1_backend *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    b->base.ops = &OPS;
    b->base.id = DM_BK_L1;
    b->cache = c;
    return &b->base;
}

/* ---- coherence: merge committed writes ------------------------------------------------ */

static bool newer_tick(const void *cur, size_t cur_len, void **out, size_t *out_len, void *ctx)
{
    const st_tick *t = ctx;
    if (cur == NULL || cur_len != sizeof *t)
        return false;
    const st_tick *c = cur;
    st_tick *keep = malloc(sizeof *keep);
    if (keep == NULL)
        return false;
    bool take = t->t.ts > c->t.ts || (t->t.ts == c->t.ts && t->seq >= c->seq);
    *keep = take ? *t : *c;
    *out = keep;
    *out_len = sizeof *keep;
    return true;
}

void dm_l1_cache_apply_ticks(dm_l1_cache *c, dm_backend_id from, const dm_tick *t,
                             const uint64_t *seqs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char key[DM_L1_KEY_MAX];
        dm_l1_tick_key(t[i].symbol, key);
        dm_fresh_note(c->fresh, key, from, seqs[i]);
        atomic_fetch_add(epoch_of(c, key), 1);
        st_tick v = {.t = t[i], .seq = seqs[i]};
        dm_l1_update(c->ticks, key, dm_now_ms(), newer_tick, &v);
    }
}

/* The cached list is the newest N candles, oldest first, without gaps as the source had
 * them. A candle with a cached open time replaces it unless the cached one is known
 * newer; one exactly a period after the newest extends the list (the oldest drops out);
 * older than the list changes nothing; anything else (a gap, an insertion) cannot be
 * merged safely, so the entry goes. */
static bool merge_candle(const void *cur, size_t cur_len, void **out, size_t *out_len, void *ctx)
{
    const st_candle *k = ctx;
    size_t n = cur ? cur_len / sizeof *k : 0;
    if (n == 0)
        return false;
    const st_candle *v = cur;
    st_candle *next = malloc(cur_len);
    if (next == NULL)
        return false;
    memcpy(next, v, cur_len);
    *out = next;
    *out_len = cur_len;
    if (k->c.ts < v[0].c.ts)
        return true;
    for (size_t i = 0; i < n; i++) {
        if (v[i].c.ts == k->c.ts) {
            if (k->seq >= v[i].seq)
                next[i] = *k;
            return true;
        }
    }
    if (k->c.ts == v[n - 1].c.ts + dm_tf_ms(k->c.tf)) {
        memmove(next, next + 1, (n - 1) * sizeof *k);
        next[n - 1] = *k;
        return true;
    }
    free(next);
    *out = NULL;
    return false;
}

void dm_l1_cache_apply_candles(dm_l1_cache *c, dm_backend_id from, const dm_candle *k,
                               const uint64_t *seqs, size_t n)
{
    /* An update holds up to 64 rows of a key, grouped by key: its mark moves once. */
    uint64_t key_max = 0;
    for (size_t i = 0; i < n; i++) {
        char key[DM_L1_KEY_MAX];
        dm_l1_candle_key(k[i].symbol, k[i].tf, key);
        key_max = seqs[i] > key_max ? seqs[i] : key_max;
        bool last_of_key = i + 1 == n || k[i + 1].tf != k[i].tf ||
                           strcmp(k[i + 1].symbol, k[i].symbol) != 0;
        if (last_of_key) {
            dm_fresh_note(c->fresh, key, from, key_max);
            key_max = 0;
        }
        atomic_fetch_add(epoch_of(c, key), 1);
        st_candle v = {.c = k[i], .seq = seqs[i]};
        dm_l1_update(c->candles, key, dm_now_ms(), merge_candle, &v);
    }
}
