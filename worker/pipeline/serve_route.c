/* The routing engine: borrows connections, walks a strategy route's sources (skipping
 * those that miss, fail, are cut off by their breaker or lag behind another's commits),
 * coordinates cache misses and fills the caches that missed. */
#include "serve_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "obs/metrics.h"
#include "util/log.h"

/* ---- connections -------------------------------------------------------------------- */

const dm_backend_ops *serve_source_ops(const dm_serve *s, dm_backend_id id)
{
    if (s->cfg.pools[id])
        return dm_pool_ops(s->cfg.pools[id]);
    return s->cfg.backends[id] ? s->cfg.backends[id]->ops : NULL;
}

/* The request's connection to `id`, borrowed on first use; NULL with e set when the pool
 * has none to give in time. */
dm_backend *serve_borrow(dm_serve *s, dm_backend_id id, dm_err *e)
{
    if (s->cfg.pools[id] == NULL) {
        if (s->cfg.backends[id] == NULL)
            dm_fail(e, DM_E_UNAVAILABLE, "", "%s is not configured", dm_backend_name(id));
        return s->cfg.backends[id];
    }
    if (s->held[id] == NULL)
        s->held[id] = dm_pool_acquire(s->cfg.pools[id], e);
    return s->held[id];
}

void serve_note_status(dm_serve *s, dm_backend_id id, dm_bstatus st)
{
    if (st == DM_BS_TRANSIENT)
        s->broken[id] = true;
}

void serve_give_back_all(dm_serve *s)
{
    for (int id = 0; id < DM_BK_COUNT; id++) {
        if (s->held[id])
            dm_pool_release(s->cfg.pools[id], s->held[id], s->broken[id]);
        s->held[id] = NULL;
        s->broken[id] = false;
    }
}

/* ---- the source walk ---------------------------------------------------------------- */


/* Whether the backend fills the dm_backend_ops member at op_offset (NULL: not offered).
 * Read as a function pointer: every member of the ops struct is one. */
typedef void (*any_op)(void);

static bool offers(const dm_backend_ops *ops, size_t op_offset)
{
    any_op op;
    memcpy(&op, (const char *)ops + op_offset, sizeof op);
    return op != NULL;
}

/* Collects "a; b; c" of every source that failed, cut at the buffer's end. */
static void append_failure(char *buf, size_t cap, size_t *len, const char *msg)
{
    *len += (size_t)snprintf(buf + *len, cap - *len, "%s%s", *len ? "; " : "", msg);
    if (*len >= cap)
        *len = cap - 1;
}

/* The stores that hold the complete data of a read: when one of them answers that it has
 * none, the answer is not_found whatever else was skipped. A cache, or a copy that may
 * lag (ClickHouse's latest candles), never makes a not_found. */
static bool complete_store(dm_op op, dm_backend_id id)
{
    switch (op) {
    case DM_OP_GET_HISTORICAL:
    case DM_OP_COMPUTE_AGGREGATES:
        return id == DM_BK_CLICKHOUSE || id == DM_BK_TIMESCALE;
    case DM_OP_GET_LATEST_TICK:
    case DM_OP_GET_CANDLES:
    case DM_OP_GET_EVENTS:
        return id == DM_BK_TIMESCALE;
    case DM_OP_FIND_PATTERNS:
    case DM_OP_SIMILARITY_SEARCH:
    case DM_OP_GET_CORRELATIONS:
    case DM_OP_GRAPH_ANALYSIS:
        return id == DM_BK_FALLBACK; /* it reads every candle PostgreSQL holds */
    default:
        return false;
    }
}

/* Whether source `id` may be asked for the key: no other source of the route has committed
 * anything newer for it. Stamps w->seq. */
static bool current(dm_serve *s, const dm_route *r, const serve_fresh_key *fk, dm_backend_id id,
                    serve_walk_result *w)
{
    w->seq = 0;
    if (fk == NULL || s->cfg.l1 == NULL || id == DM_BK_L1)
        return true;
    unsigned peers = 0;
    for (int i = 0; i < r->n; i++)
        peers |= 1u << r->targets[i];
    return dm_fresh_current(dm_l1_cache_fresh(s->cfg.l1), fk->key, fk->cls, id, peers, &w->seq);
}

/* Walks the strategy's sources for `op`. A miss, a failure or a lagging copy moves on;
 * the first answer wins. Returns DM_OK, DM_E_NOT_FOUND (a complete store has none) or
 * DM_E_UNAVAILABLE (no complete store could answer). */
dm_code serve_walk(dm_serve *s, dm_op op, size_t op_offset, serve_try_fn fn, void *q,
                    const serve_fresh_key *fk, serve_walk_result *w, dm_err *err)
{
    const dm_route *r = &s->st->routing[op];
    char failures[256] = "";
    size_t flen = 0;
    bool tried = false, none = false;
    w->n_missed = 0;
    for (int i = 0; i < r->n; i++) {
        dm_backend_id id = r->targets[i];
        const dm_backend_ops *ops = serve_source_ops(s, id);
        if (ops == NULL || !offers(ops, op_offset) || (id == DM_BK_L1 && !s->st->opt.query_cache))
            continue;
        tried = true;
        dm_err e = {0};
        if (!current(s, r, fk, id, w)) {
            dm_fail(&e, DM_E_UNAVAILABLE, "", "%s skipped: its copy may be behind (catching up)",
                    dm_backend_name(id));
            append_failure(failures, sizeof failures, &flen, e.message);
            continue;
        }
        dm_breaker *br = s->cfg.breakers[id];
        if (br && !dm_breaker_allow(br, dm_now_ms(), s->st->perf.circuit_breaker_timeout_s)) {
            dm_fail(&e, DM_E_UNAVAILABLE, "", "%s skipped: circuit open", dm_backend_name(id));
            append_failure(failures, sizeof failures, &flen, e.message);
            continue;
        }
        dm_backend *b = serve_borrow(s, id, &e);
        if (b == NULL) {
            /* An exhausted pool says nothing about the backend: a probe handed to this
             * request goes back unused. */
            if (br)
                dm_breaker_abandon(br);
            append_failure(failures, sizeof failures, &flen, e.message);
            continue;
        }
        /* L1 is not a database: its lookups are neither counted nor timed (no clock reads
         * on the cached path). */
        bool counted = b->id != DM_BK_L1;
        int64_t t0 = counted ? dm_mono_ns() : 0;
        dm_bstatus st = fn(b, q, &e);
        int64_t took = counted ? dm_mono_ns() - t0 : 0;
        serve_note_status(s, id, st);
        if (br)
            dm_breaker_report(br, st != DM_BS_TRANSIENT, dm_now_ms(), s->st->perf.circuit_breaker_threshold);
        bool cache = b->id == DM_BK_DRAGONFLY || b->id == DM_BK_L1;
        if (counted)
            dm_metrics_backend(b->id, st == DM_BS_TRANSIENT || st == DM_BS_PERMANENT, took);
        if (cache && (st == DM_BS_OK || st == DM_BS_MISS))
            dm_metrics_cache(b->id, st == DM_BS_OK);
        if (st == DM_BS_OK) {
            w->served_by = b->id;
            dm_metrics_served(b->id);
            return DM_OK;
        }
        if (st == DM_BS_MISS) {
            none = none || complete_store(op, id);
            if (cache)
                w->missed[w->n_missed++] = b;
            continue;
        }
        DM_WARN("serve", "%s: %s failed, trying the next source: %s [%s:%d]", dm_op_name(op),
                dm_backend_label(b), e.message, e.file ? e.file : "?", e.line);
        append_failure(failures, sizeof failures, &flen, e.message);
    }
    if (none)
        return DM_E_NOT_FOUND;
    if (failures[0])
        return dm_fail(err, DM_E_UNAVAILABLE, "", "every source failed: %s", failures);
    if (!tried)
        return dm_fail(err, DM_E_UNAVAILABLE, "", "no configured source serves %s", dm_op_name(op));
    return dm_fail(err, DM_E_UNAVAILABLE, "",
                   "no source that holds every %s answered (caches missed)", dm_op_name(op));
}


/* Single flight around a cache miss: followers wait for the leader, then walk again and
 * find what it filled. Bounded, so a stuck leader delays followers, never blocks them. */
#define DM_FLIGHT_WAIT_MS 2000

bool serve_flight_begin(dm_serve *s, const char *key)
{
    return s->cfg.flight == NULL || dm_flight_begin(s->cfg.flight, key, DM_FLIGHT_WAIT_MS);
}

void serve_flight_end(dm_serve *s, const char *key, bool lead)
{
    if (lead && s->cfg.flight)
        dm_flight_done(s->cfg.flight, key);
}

/* An L1 hit needs no single flight: only a miss is worth coordinating, and a hit that
 * queued behind another request's database query would wait for nothing. A miss counts
 * nothing here: the walk inside the flight asks L1 again (where a follower finds what its
 * leader filled) and counts it there. */
bool serve_l1_answers(dm_serve *s, dm_op op, serve_try_fn fn, void *q, serve_walk_result *w)
{
    const dm_route *r = &s->st->routing[op];
    if (r->n == 0 || r->targets[0] != DM_BK_L1 || !s->st->opt.query_cache)
        return false;
    dm_err e = {0};
    dm_backend *b = serve_borrow(s, DM_BK_L1, &e);
    if (b == NULL || fn(b, q, &e) != DM_BS_OK)
        return false;
    dm_metrics_cache(DM_BK_L1, true);
    dm_metrics_served(DM_BK_L1);
    w->served_by = DM_BK_L1;
    w->n_missed = 0;
    return true;
}

void serve_key(char *key, size_t cap, const char *prefix, const char *symbol, dm_tf tf)
{
    char token[DM_TOKEN_MAX + 1];
    dm_symbol_token(symbol, token);
    if ((int)tf < 0)
        snprintf(key, cap, "%s:{%s}", prefix, token);
    else
        snprintf(key, cap, "%s:{%s}:%s", prefix, token, dm_tf_name(tf));
}

void serve_fill_caches(dm_serve *s, const serve_walk_result *w, const dm_tick *t, const dm_candle *c,
                        size_t n)
{
    dm_cache_opts o = {.ttl_s = t ? s->st->cache.tick_ttl_s
                                  : s->st->cache.candle_ttl_s,
                       .depth = s->st->cache.candle_cache_depth,
                       .seq = w->seq};
    for (int i = 0; i < w->n_missed; i++) {
        dm_backend *b = w->missed[i];
        dm_err e = {0};
        dm_bstatus st = t ? dm_backend_write_ticks(b, t, 1, &o, &e)
                           : dm_backend_write_candles(b, c, n, &o, &e);
        if (st != DM_BS_OK)
            DM_WARN("serve", "cache fill of %s failed: %s [%s:%d]", dm_backend_label(b), e.message,
                    e.file ? e.file : "?", e.line);
    }
}

static bool source_knows(dm_serve *s, dm_backend_id id, const char *symbol, dm_tf tf)
{
    dm_err e = {0};
    dm_backend *b = serve_borrow(s, id, &e);
    dm_candle_vec probe = {0};
    bool known = !b || !dm_backend_offers(b, latest_candles) ||
                 dm_backend_latest_candles(b, symbol, tf, 1, &probe, &e) != DM_BS_MISS;
    dm_candle_vec_free(&probe);
    return known;
}

/* An empty range is data: [], but a symbol never seen at all is not_found: asks the
 * source that answered whether it holds any candle of the key, and PostgreSQL too when
 * that was ClickHouse, whose copy lags by its batch linger (a symbol written a moment ago
 * is not unknown). */
bool serve_candles_known(dm_serve *s, dm_backend_id served_by, const char *symbol, dm_tf tf)
{
    if (source_knows(s, served_by, symbol, tf))
        return true;
    return served_by != DM_BK_TIMESCALE && serve_source_ops(s, DM_BK_TIMESCALE) &&
           source_knows(s, DM_BK_TIMESCALE, symbol, tf);
}

