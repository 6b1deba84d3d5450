#include "serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../codec/doc.h"
#include "../codec/models.h"
#include "../util/b64.h"
#include "../util/log.h"
#include "../obs/metrics.h"
#include "ingest.h"

#define DM_VERSION "0.1.0"

struct dm_serve {
    dm_serve_config cfg;
    int64_t started_ms;
    const dm_strategy *st; /* the version of the request being answered */
    dm_backend *held[DM_BK_COUNT]; /* borrowed for the request being answered */
    bool broken[DM_BK_COUNT];      /* a held connection met a transient failure */
};

dm_serve *dm_serve_create(const dm_serve_config *cfg)
{
    dm_serve *s = calloc(1, sizeof *s);
    if (s) {
        s->cfg = *cfg;
        s->started_ms = dm_now_ms();
    }
    return s;
}

void dm_serve_destroy(dm_serve *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < DM_BK_COUNT; i++)
        dm_backend_destroy(s->cfg.backends[i]);
    free(s);
}

/* ---- connections -------------------------------------------------------------------- */

static const dm_backend_ops *source_ops(const dm_serve *s, dm_backend_id id)
{
    if (s->cfg.pools[id])
        return dm_pool_ops(s->cfg.pools[id]);
    return s->cfg.backends[id] ? s->cfg.backends[id]->ops : NULL;
}

/* The request's connection to `id`, borrowed on first use; NULL with e set when the pool
 * has none to give in time. */
static dm_backend *borrow(dm_serve *s, dm_backend_id id, dm_err *e)
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

static void note_status(dm_serve *s, dm_backend_id id, dm_bstatus st)
{
    if (st == DM_BS_TRANSIENT)
        s->broken[id] = true;
}

static void give_back_all(dm_serve *s)
{
    for (int id = 0; id < DM_BK_COUNT; id++) {
        if (s->held[id])
            dm_pool_release(s->cfg.pools[id], s->held[id], s->broken[id]);
        s->held[id] = NULL;
        s->broken[id] = false;
    }
}

/* ---- the source walk ---------------------------------------------------------------- */

typedef dm_bstatus (*try_fn)(dm_backend *b, void *q, dm_err *err);

typedef struct {
    dm_backend_id served_by;
    uint64_t seq; /* the answering source's known sequence for the key (fills stamp it) */
    dm_backend *missed[DM_ROUTE_MAX]; /* caches that missed, to fill on the way back */
    int n_missed;
} walk_result;

/* The key a latest-value read is about, so the walk asks only sources whose copy of it is
 * current (cache/fresh.h); NULL for reads that no coherence update describes. */
typedef struct {
    char key[DM_L1_KEY_MAX];
    dm_fresh_class cls;
} fresh_key;

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
    default:
        return false;
    }
}

/* Whether source `id` may be asked for the key: no other source of the route has committed
 * anything newer for it. Stamps w->seq. */
static bool current(dm_serve *s, const dm_route *r, const fresh_key *fk, dm_backend_id id,
                    walk_result *w)
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
static dm_code walk(dm_serve *s, dm_op op, size_t op_offset, try_fn fn, void *q,
                    const fresh_key *fk, walk_result *w, dm_err *err)
{
    const dm_route *r = &s->st->routing[op];
    char failures[256] = "";
    size_t flen = 0;
    bool tried = false, none = false;
    w->n_missed = 0;
    for (int i = 0; i < r->n; i++) {
        dm_backend_id id = r->targets[i];
        const dm_backend_ops *ops = source_ops(s, id);
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
        dm_backend *b = borrow(s, id, &e);
        if (b == NULL) {
            /* An exhausted pool says nothing about the backend: a probe handed to this
             * request goes back unused. */
            if (br)
                dm_breaker_abandon(br);
            append_failure(failures, sizeof failures, &flen, e.message);
            continue;
        }
        dm_bstatus st = fn(b, q, &e);
        note_status(s, id, st);
        if (br)
            dm_breaker_report(br, st != DM_BS_TRANSIENT, dm_now_ms(), s->st->perf.circuit_breaker_threshold);
        bool cache = b->id == DM_BK_DRAGONFLY || b->id == DM_BK_L1;
        if (b->id != DM_BK_L1)
            dm_metrics_backend(b->id, st == DM_BS_TRANSIENT || st == DM_BS_PERMANENT);
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

#define OP_OFFSET(field) offsetof(dm_backend_ops, field)

/* Single flight around a cache miss: followers wait for the leader, then walk again and
 * find what it filled. Bounded, so a stuck leader delays followers, never blocks them. */
#define DM_FLIGHT_WAIT_MS 2000

static bool flight_begin(dm_serve *s, const char *key)
{
    return s->cfg.flight == NULL || dm_flight_begin(s->cfg.flight, key, DM_FLIGHT_WAIT_MS);
}

static void flight_end(dm_serve *s, const char *key, bool lead)
{
    if (lead && s->cfg.flight)
        dm_flight_done(s->cfg.flight, key);
}

/* An L1 hit needs no single flight: only a miss is worth coordinating, and a hit that
 * queued behind another request's database query would wait for nothing. A miss counts
 * nothing here: the walk inside the flight asks L1 again (where a follower finds what its
 * leader filled) and counts it there. */
static bool l1_answers(dm_serve *s, dm_op op, try_fn fn, void *q, walk_result *w)
{
    const dm_route *r = &s->st->routing[op];
    if (r->n == 0 || r->targets[0] != DM_BK_L1 || !s->st->opt.query_cache)
        return false;
    dm_err e = {0};
    dm_backend *b = borrow(s, DM_BK_L1, &e);
    if (b == NULL || fn(b, q, &e) != DM_BS_OK)
        return false;
    dm_metrics_cache(DM_BK_L1, true);
    dm_metrics_served(DM_BK_L1);
    w->served_by = DM_BK_L1;
    w->n_missed = 0;
    return true;
}

static void flight_key(char *key, size_t cap, const char *prefix, const char *symbol, dm_tf tf)
{
    char token[DM_TOKEN_MAX + 1];
    dm_symbol_token(symbol, token);
    if ((int)tf < 0)
        snprintf(key, cap, "%s:{%s}", prefix, token);
    else
        snprintf(key, cap, "%s:{%s}:%s", prefix, token, dm_tf_name(tf));
}

/* ---- replies ------------------------------------------------------------------------ */

static void reply_error(dm_reply *out, const dm_err *err)
{
    dm_enc e;
    dm_buf_reset(&out->body);
    dm_enc_init(&e, out->enc, &out->body);
    dm_enc_map(&e, 1);
    dm_enc_key(&e, "error");
    dm_enc_map(&e, 3);
    dm_enc_key(&e, "code"); dm_enc_str(&e, dm_code_name(err->code));
    dm_enc_key(&e, "message"); dm_enc_str(&e, err->message);
    dm_enc_key(&e, "field");
    if (err->field[0]) dm_enc_str(&e, err->field); else dm_enc_null(&e);
    dm_enc_map_end(&e);
    dm_enc_map_end(&e);
    out->status = dm_code_status(err->code);
}

static void begin_data(dm_enc *e, dm_reply *out, size_t members)
{
    dm_buf_reset(&out->body);
    dm_enc_init(e, out->enc, &out->body);
    dm_enc_map(e, members);
    dm_enc_key(e, "data");
    out->status = 200;
}

static void end_data(dm_enc *e, dm_backend_id served_by)
{
    dm_enc_key(e, "served_by");
    dm_enc_str(e, dm_backend_name(served_by));
    dm_enc_map_end(e);
}

static void put_cursor(dm_enc *e, const char *raw)
{
    dm_enc_key(e, "next_cursor");
    if (raw == NULL) {
        dm_enc_null(e);
        return;
    }
    char enc[256];
    dm_b64url_encode(raw, strlen(raw), enc, sizeof enc);
    dm_enc_str(e, enc);
}

/* ---- request fields ----------------------------------------------------------------- */

static dm_code req_symbol(const cJSON *req, const char *name, char *symbol, dm_err *err)
{
    char raw[64], token[DM_TOKEN_MAX + 1];
    dm_code c = dm_get_str(req, name, raw, sizeof raw, true, NULL, err);
    return c ? c : dm_symbol_normalize(raw, symbol, token, name, err);
}

static dm_code req_tf(const cJSON *req, dm_tf *tf, dm_err *err)
{
    char raw[16];
    dm_code c = dm_get_str(req, "timeframe", raw, sizeof raw, true, NULL, err);
    if (c)
        return c;
    if (!dm_tf_parse(raw, tf))
        return dm_fail(err, DM_E_INVALID_FIELD, "timeframe",
                       "timeframe '%s' is unknown (1m 5m 15m 30m 1h 4h 1d 1w)", raw);
    return DM_OK;
}

static dm_code req_range(const cJSON *req, int64_t *start, int64_t *end, dm_err *err)
{
    dm_code c;
    if ((c = dm_get_time(req, "start_date", start, true, NULL, err)) ||
        (c = dm_get_time(req, "end_date", end, true, NULL, err)))
        return c;
    if (*end < *start)
        return dm_fail(err, DM_E_INVALID_FIELD, "end_date",
                       "end_date %lld is before start_date %lld (the range is [start, end))",
                       (long long)*end, (long long)*start);
    return DM_OK;
}

static dm_code req_page(const cJSON *req, size_t *page, dm_err *err)
{
    int64_t v = DM_PAGE_DEFAULT;
    dm_code c = dm_get_int(req, "page_size", &v, 1, DM_PAGE_MAX, false, NULL, err);
    *page = (size_t)v;
    return c;
}

/* Cursors carry the last key returned; any source can continue from it. */
static dm_code req_cursor(const cJSON *req, char *raw, size_t cap, bool *present, dm_err *err)
{
    char enc[256];
    dm_code c = dm_get_str(req, "cursor", enc, sizeof enc, false, present, err);
    if (c || !*present)
        return c;
    size_t n;
    if (!dm_b64url_decode(enc, raw, cap, &n) || strlen(raw) != n)
        return dm_fail(err, DM_E_INVALID_FIELD, "cursor",
                       "cursor is not one this service issued: pass next_cursor back unchanged");
    return DM_OK;
}

/* ---- operations --------------------------------------------------------------------- */

typedef struct {
    char symbol[DM_SYMBOL_MAX + 1];
    dm_tick tick;
} tick_q;

static dm_bstatus try_latest_tick(dm_backend *b, void *q, dm_err *err)
{
    tick_q *t = q;
    return b->ops->latest_tick(b, t->symbol, &t->tick, err);
}

static void fill_caches(dm_serve *s, const walk_result *w, const dm_tick *t, const dm_candle *c,
                        size_t n)
{
    dm_cache_opts o = {.ttl_s = t ? s->st->cache.tick_ttl_s
                                  : s->st->cache.candle_ttl_s,
                       .depth = s->st->cache.candle_cache_depth,
                       .seq = w->seq};
    for (int i = 0; i < w->n_missed; i++) {
        dm_backend *b = w->missed[i];
        dm_err e = {0};
        dm_bstatus st = t ? b->ops->write_ticks(b, t, 1, &o, &e) : b->ops->write_candles(b, c, n, &o, &e);
        if (st != DM_BS_OK)
            DM_WARN("serve", "cache fill of %s failed: %s", dm_backend_label(b), e.message);
    }
}

static dm_code op_latest_tick(dm_serve *s, const cJSON *req, dm_reply *out, dm_err *err)
{
    tick_q q;
    walk_result w = {0};
    dm_code c = req_symbol(req, "symbol", q.symbol, err);
    if (c)
        return c;
    if (!l1_answers(s, DM_OP_GET_LATEST_TICK, try_latest_tick, &q, &w)) {
        fresh_key fk = {.cls = DM_FRESH_TICKS};
        dm_l1_tick_key(q.symbol, fk.key);
        bool lead = flight_begin(s, fk.key);
        c = walk(s, DM_OP_GET_LATEST_TICK, OP_OFFSET(latest_tick), try_latest_tick, &q, &fk, &w, err);
        if (c == DM_OK)
            fill_caches(s, &w, &q.tick, NULL, 0);
        flight_end(s, fk.key, lead);
    }
    if (c)
        return c == DM_E_NOT_FOUND ? dm_fail(err, c, "symbol", "no ticks stored for %s", q.symbol) : c;
    dm_enc e;
    begin_data(&e, out, 2);
    dm_tick_encode(&e, &q.tick);
    end_data(&e, w.served_by);
    return DM_OK;
}

typedef struct {
    char symbol[DM_SYMBOL_MAX + 1];
    dm_tf tf;
    size_t limit;
    dm_candle_vec out;
} latest_q;

static dm_bstatus try_latest_candles(dm_backend *b, void *q, dm_err *err)
{
    latest_q *l = q;
    l->out.n = 0;
    return b->ops->latest_candles(b, l->symbol, l->tf, l->limit, &l->out, err);
}

static void encode_candles(dm_enc *e, const dm_candle *c, size_t n)
{
    dm_enc_arr(e, n);
    for (size_t i = 0; i < n; i++)
        dm_candle_encode(e, &c[i]);
    dm_enc_arr_end(e);
}

static dm_code op_latest_candles(dm_serve *s, const cJSON *req, dm_reply *out, dm_err *err)
{
    latest_q q = {.limit = DM_LATEST_LIMIT_DEFAULT};
    int64_t limit = DM_LATEST_LIMIT_DEFAULT;
    walk_result w = {0};
    dm_code c;
    if ((c = req_symbol(req, "symbol", q.symbol, err)) || (c = req_tf(req, &q.tf, err)) ||
        (c = dm_get_int(req, "limit", &limit, 1, DM_LATEST_LIMIT_MAX, false, NULL, err)))
        return c;
    q.limit = (size_t)limit;
    if (!l1_answers(s, DM_OP_GET_CANDLES, try_latest_candles, &q, &w)) {
        fresh_key fk = {.cls = DM_FRESH_CANDLES};
        dm_l1_candle_key(q.symbol, q.tf, fk.key);
        bool lead = flight_begin(s, fk.key);
        c = walk(s, DM_OP_GET_CANDLES, OP_OFFSET(latest_candles), try_latest_candles, &q, &fk, &w, err);
        if (c == DM_OK)
            fill_caches(s, &w, NULL, q.out.v, q.out.n);
        flight_end(s, fk.key, lead);
    }
    if (c == DM_OK) {
        dm_enc e;
        begin_data(&e, out, 2);
        encode_candles(&e, q.out.v, q.out.n);
        end_data(&e, w.served_by);
    } else if (c == DM_E_NOT_FOUND) {
        dm_fail(err, c, "symbol", "no %s candles stored for %s", dm_tf_name(q.tf), q.symbol);
    }
    dm_candle_vec_free(&q.out);
    return c;
}

typedef struct {
    dm_range_query rq;
    dm_candle_vec out;
} range_q;

static dm_bstatus try_range(dm_backend *b, void *q, dm_err *err)
{
    range_q *r = q;
    r->out.n = 0;
    return b->ops->candle_range(b, &r->rq, &r->out, err);
}

static dm_code history_cursor(const cJSON *req, const char *symbol, dm_tf tf, int64_t *start,
                              dm_err *err)
{
    char raw[128], sym[DM_SYMBOL_MAX + 1], tfs[8];
    bool present;
    long long last;
    dm_code c = req_cursor(req, raw, sizeof raw, &present, err);
    if (c || !present)
        return c;
    if (sscanf(raw, "c1|%24[^|]|%7[^|]|%lld", sym, tfs, &last) != 3 || strcmp(sym, symbol) != 0 ||
        strcmp(tfs, dm_tf_name(tf)) != 0)
        return dm_fail(err, DM_E_INVALID_FIELD, "cursor",
                       "cursor belongs to another query: pass next_cursor with the same symbol "
                       "and timeframe");
    if (last >= *start) /* a forged cursor may hold the largest value: no +1 past it */
        *start = last < INT64_MAX ? last + 1 : last;
    return DM_OK;
}

static bool source_knows(dm_serve *s, dm_backend_id id, const char *symbol, dm_tf tf)
{
    dm_err e = {0};
    dm_backend *b = borrow(s, id, &e);
    dm_candle_vec probe = {0};
    bool known = !b || !b->ops->latest_candles ||
                 b->ops->latest_candles(b, symbol, tf, 1, &probe, &e) != DM_BS_MISS;
    dm_candle_vec_free(&probe);
    return known;
}

/* An empty range is data: [], but a symbol never seen at all is not_found: asks the
 * source that answered whether it holds any candle of the key, and PostgreSQL too when
 * that was ClickHouse, whose copy lags by its batch linger (a symbol written a moment ago
 * is not unknown). */
static bool candles_known(dm_serve *s, dm_backend_id served_by, const char *symbol, dm_tf tf)
{
    if (source_knows(s, served_by, symbol, tf))
        return true;
    return served_by != DM_BK_TIMESCALE && source_ops(s, DM_BK_TIMESCALE) &&
           source_knows(s, DM_BK_TIMESCALE, symbol, tf);
}

static dm_code op_history(dm_serve *s, const cJSON *req, dm_reply *out, dm_err *err)
{
    char symbol[DM_SYMBOL_MAX + 1];
    range_q q = {.rq = {.symbol = symbol}};
    size_t page;
    bool has_cursor = cJSON_GetObjectItemCaseSensitive(req, "cursor") != NULL;
    walk_result w = {0};
    dm_code c;
    if ((c = req_symbol(req, "symbol", symbol, err)) || (c = req_tf(req, &q.rq.tf, err)) ||
        (c = req_range(req, &q.rq.start, &q.rq.end, err)) || (c = req_page(req, &page, err)) ||
        (c = history_cursor(req, symbol, q.rq.tf, &q.rq.start, err)))
        return c;
    q.rq.limit = page + 1; /* one more tells whether another page exists */
    c = walk(s, DM_OP_GET_HISTORICAL, OP_OFFSET(candle_range), try_range, &q, NULL, &w, err);
    if (c == DM_OK && q.out.n == 0 && !has_cursor && !candles_known(s, w.served_by, symbol, q.rq.tf))
        c = dm_fail(err, DM_E_NOT_FOUND, "symbol", "no %s candles stored for %s",
                    dm_tf_name(q.rq.tf), symbol);
    if (c == DM_E_NOT_FOUND && !err->message[0])
        dm_fail(err, c, "symbol", "no %s candles stored for %s", dm_tf_name(q.rq.tf), symbol);
    if (c == DM_OK) {
        bool more = q.out.n > page;
        size_t n = more ? page : q.out.n;
        char raw[128];
        if (more)
            snprintf(raw, sizeof raw, "c1|%s|%s|%lld", symbol, dm_tf_name(q.rq.tf),
                     (long long)q.out.v[n - 1].ts);
        dm_enc e;
        begin_data(&e, out, 3);
        encode_candles(&e, q.out.v, n);
        put_cursor(&e, more ? raw : NULL);
        end_data(&e, w.served_by);
    }
    dm_candle_vec_free(&q.out);
    return c;
}

typedef struct {
    dm_event_query eq;
    dm_event_vec out;
} events_q;

static dm_bstatus try_events(dm_backend *b, void *q, dm_err *err)
{
    events_q *e = q;
    e->out.n = 0;
    return b->ops->events(b, &e->eq, &e->out, err);
}

static dm_code events_filters(const cJSON *req, char *country, char *currency, int *impact,
                              dm_err *err)
{
    bool has_country, has_currency, has_impact;
    char imp[16];
    dm_code c;
    if ((c = dm_get_str(req, "country", country, 3, false, &has_country, err)) ||
        (c = dm_get_str(req, "currency", currency, 4, false, &has_currency, err)) ||
        (c = dm_get_str(req, "impact", imp, sizeof imp, false, &has_impact, err)))
        return c;
    if (has_country && !dm_is_country(country))
        return dm_fail(err, DM_E_INVALID_FIELD, "country",
                       "country must be an ISO 3166 alpha-2 code such as US (EU for the euro area)");
    if (has_currency && !dm_is_currency(currency))
        return dm_fail(err, DM_E_INVALID_FIELD, "currency", "currency must be a code such as USD");
    *impact = -1;
    if (has_impact) {
        dm_impact v;
        if (!dm_impact_parse(imp, &v))
            return dm_fail(err, DM_E_INVALID_FIELD, "impact", "impact must be high, medium or low");
        *impact = (int)v;
    }
    if (!has_country)
        country[0] = '\0';
    if (!has_currency)
        currency[0] = '\0';
    return DM_OK;
}

static dm_code events_cursor(const cJSON *req, events_q *q, char *after_id, dm_err *err)
{
    char raw[256];
    bool present;
    long long ts;
    int off = 0;
    dm_code c = req_cursor(req, raw, sizeof raw, &present, err);
    if (c || !present)
        return c;
    if (sscanf(raw, "e1|%lld|%n", &ts, &off) != 1 || off == 0 || strlen(raw + off) > DM_EVENT_ID_MAX)
        return dm_fail(err, DM_E_INVALID_FIELD, "cursor",
                       "cursor belongs to another query: pass next_cursor back unchanged");
    strcpy(after_id, raw + off);
    q->eq.after_ts = ts;
    q->eq.after_id = after_id;
    return DM_OK;
}

static dm_code op_events(dm_serve *s, const cJSON *req, dm_reply *out, dm_err *err)
{
    char country[3], currency[4], after_id[DM_EVENT_ID_MAX + 1];
    events_q q = {.eq = {.impact = -1}};
    size_t page;
    walk_result w = {0};
    dm_code c;
    if ((c = req_range(req, &q.eq.start, &q.eq.end, err)) ||
        (c = events_filters(req, country, currency, &q.eq.impact, err)) ||
        (c = req_page(req, &page, err)) || (c = events_cursor(req, &q, after_id, err)))
        return c;
    q.eq.country = country[0] ? country : NULL;
    q.eq.currency = currency[0] ? currency : NULL;
    q.eq.limit = page + 1;
    c = walk(s, DM_OP_GET_EVENTS, OP_OFFSET(events), try_events, &q, NULL, &w, err);
    if (c == DM_E_NOT_FOUND) { /* no source had any: an empty answer, not an error */
        c = DM_OK;
        q.out.n = 0;
        w.served_by = s->st->routing[DM_OP_GET_EVENTS].targets[0];
    }
    if (c == DM_OK) {
        bool more = q.out.n > page;
        size_t n = more ? page : q.out.n;
        char raw[200];
        if (more)
            snprintf(raw, sizeof raw, "e1|%lld|%s", (long long)q.out.v[n - 1].ts, q.out.v[n - 1].event_id);
        dm_enc e;
        begin_data(&e, out, 3);
        dm_enc_arr(&e, n);
        for (size_t i = 0; i < n; i++)
            dm_event_encode(&e, &q.out.v[i]);
        dm_enc_arr_end(&e);
        put_cursor(&e, more ? raw : NULL);
        end_data(&e, w.served_by);
    }
    dm_event_vec_free(&q.out);
    return c;
}

typedef struct {
    dm_backend_id id;
    bool up;
    double ms;
    dm_err err;
} probe;

static double elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* ---- aggregates ----------------------------------------------------------------------- */

typedef struct {
    dm_agg_query aq;
    dm_agg_vec out;
} agg_q;

static dm_bstatus try_aggregates(dm_backend *b, void *q, dm_err *err)
{
    agg_q *a = q;
    a->out.n = 0;
    return b->ops->aggregates(b, &a->aq, &a->out, err);
}

#define DM_AGG_CACHE_MAGIC "dmagg1" /* cached rows are this build's struct layout */

/* agg:{EURUSD}:1h:1d for the whole history, with :start:end when a range was asked. */
static void agg_key(char *key, size_t cap, const dm_agg_query *q, bool ranged)
{
    char base[96];
    flight_key(base, sizeof base, "agg", q->symbol, q->tf);
    if (ranged)
        snprintf(key, cap, "%s:%s:%lld:%lld", base, dm_period_name(q->period), (long long)q->start,
                 (long long)q->end);
    else
        snprintf(key, cap, "%s:%s", base, dm_period_name(q->period));
}

static bool agg_cache_get(dm_serve *s, const char *key, dm_agg_vec *out)
{
    const dm_backend_ops *ops = source_ops(s, DM_BK_DRAGONFLY);
    void *blob = NULL;
    size_t len = 0, magic = sizeof DM_AGG_CACHE_MAGIC;
    dm_err e = {0};
    if (ops == NULL || s->st->cache.aggregates_ttl_s <= 0 || !ops->blob_get)
        return false;
    dm_backend *d = borrow(s, DM_BK_DRAGONFLY, &e);
    if (d == NULL)
        return false;
    dm_bstatus st = d->ops->blob_get(d, key, &blob, &len, &e);
    note_status(s, DM_BK_DRAGONFLY, st);
    dm_metrics_backend(DM_BK_DRAGONFLY, st == DM_BS_TRANSIENT || st == DM_BS_PERMANENT);
    bool hit = st == DM_BS_OK && len >= magic && memcmp(blob, DM_AGG_CACHE_MAGIC, magic) == 0 &&
               (len - magic) % sizeof(dm_agg_row) == 0;
    if (st == DM_BS_OK || st == DM_BS_MISS)
        dm_metrics_cache(DM_BK_DRAGONFLY, hit);
    for (size_t i = 0; hit && i < (len - magic) / sizeof(dm_agg_row); i++) {
        dm_agg_row *row = dm_agg_vec_push(out);
        if (row == NULL)
            hit = false;
        else
            memcpy(row, (char *)blob + magic + i * sizeof *row, sizeof *row);
    }
    free(blob);
    return hit;
}

static void agg_cache_put(dm_serve *s, const char *key, const dm_agg_vec *v)
{
    const dm_backend_ops *ops = source_ops(s, DM_BK_DRAGONFLY);
    dm_err e = {0};
    if (ops == NULL || s->st->cache.aggregates_ttl_s <= 0 || !ops->blob_put)
        return;
    dm_backend *d = borrow(s, DM_BK_DRAGONFLY, &e);
    if (d == NULL)
        return;
    size_t magic = sizeof DM_AGG_CACHE_MAGIC, len = magic + v->n * sizeof(dm_agg_row);
    char *blob = malloc(len);
    if (blob == NULL)
        return;
    memcpy(blob, DM_AGG_CACHE_MAGIC, magic);
    if (v->n)
        memcpy(blob + magic, v->v, v->n * sizeof(dm_agg_row));
    dm_bstatus st = d->ops->blob_put(d, key, blob, len, s->st->cache.aggregates_ttl_s, &e);
    note_status(s, DM_BK_DRAGONFLY, st);
    if (st != DM_BS_OK)
        DM_WARN("serve", "aggregates not cached: %s", e.message);
    free(blob);
}

static void encode_aggregates(dm_enc *e, const dm_agg_vec *v)
{
    dm_enc_arr(e, v->n);
    for (size_t i = 0; i < v->n; i++) {
        const dm_agg_row *a = &v->v[i];
        dm_enc_map(e, 10);
        dm_enc_key(e, "period_start"); dm_enc_i64(e, a->period_start);
        dm_enc_key(e, "open"); dm_enc_f64(e, a->open);
        dm_enc_key(e, "high"); dm_enc_f64(e, a->high);
        dm_enc_key(e, "low"); dm_enc_f64(e, a->low);
        dm_enc_key(e, "close"); dm_enc_f64(e, a->close);
        dm_enc_key(e, "mean"); dm_enc_f64(e, a->mean);
        dm_enc_key(e, "stddev_returns");
        if (a->has_stddev) dm_enc_f64(e, a->stddev_returns); else dm_enc_null(e);
        dm_enc_key(e, "range"); dm_enc_f64(e, a->range);
        dm_enc_key(e, "volume"); dm_enc_f64(e, a->volume);
        dm_enc_key(e, "count"); dm_enc_i64(e, a->count);
        dm_enc_map_end(e);
    }
    dm_enc_arr_end(e);
}

static dm_code agg_request(const cJSON *req, agg_q *q, char *symbol, bool *ranged, dm_err *err)
{
    char period[8];
    bool has_start = false, has_end = false;
    dm_code c;
    if ((c = req_symbol(req, "symbol", symbol, err)) || (c = req_tf(req, &q->aq.tf, err)) ||
        (c = dm_get_str(req, "period", period, sizeof period, true, NULL, err)))
        return c;
    if (!dm_period_parse(period, &q->aq.period))
        return dm_fail(err, DM_E_INVALID_FIELD, "period", "period '%s' must be 1d, 1w or 1mo", period);
    q->aq.symbol = symbol;
    q->aq.start = 0;
    q->aq.end = INT64_MAX;
    if ((c = dm_get_time(req, "start_date", &q->aq.start, false, &has_start, err)) ||
        (c = dm_get_time(req, "end_date", &q->aq.end, false, &has_end, err)))
        return c;
    if (q->aq.end < q->aq.start)
        return dm_fail(err, DM_E_INVALID_FIELD, "end_date",
                       "end_date %lld is before start_date %lld (the range is [start, end))",
                       (long long)q->aq.end, (long long)q->aq.start);
    *ranged = has_start || has_end;
    return DM_OK;
}

static dm_code op_aggregates(dm_serve *s, const cJSON *req, dm_reply *out, dm_err *err)
{
    char symbol[DM_SYMBOL_MAX + 1], key[192];
    agg_q q = {0};
    bool ranged = false;
    walk_result w = {0};
    dm_code c = agg_request(req, &q, symbol, &ranged, err);
    if (c)
        return c;
    agg_key(key, sizeof key, &q.aq, ranged);
    bool lead = flight_begin(s, key);
    if (agg_cache_get(s, key, &q.out)) {
        w.served_by = DM_BK_DRAGONFLY;
    } else {
        c = walk(s, DM_OP_COMPUTE_AGGREGATES, OP_OFFSET(aggregates), try_aggregates, &q, NULL, &w, err);
        if (c == DM_OK && q.out.n == 0 && !candles_known(s, w.served_by, symbol, q.aq.tf))
            c = DM_E_NOT_FOUND;
        else if (c == DM_OK)
            agg_cache_put(s, key, &q.out);
    }
    flight_end(s, key, lead);
    if (c == DM_E_NOT_FOUND)
        dm_fail(err, c, "symbol", "no %s candles stored for %s", dm_tf_name(q.aq.tf), symbol);
    if (c == DM_OK) {
        dm_enc e;
        begin_data(&e, out, 2);
        encode_aggregates(&e, &q.out);
        end_data(&e, w.served_by);
    }
    dm_agg_vec_free(&q.out);
    return c;
}

static void encode_pool(dm_enc *e, dm_pool *pool)
{
    dm_pool_stats ps;
    dm_pool_stats_of(pool, &ps);
    dm_enc_key(e, "pool");
    dm_enc_map(e, 9);
    dm_enc_key(e, "open"); dm_enc_i64(e, ps.open);
    dm_enc_key(e, "in_use"); dm_enc_i64(e, ps.in_use);
    dm_enc_key(e, "min"); dm_enc_i64(e, ps.min);
    dm_enc_key(e, "max"); dm_enc_i64(e, ps.max);
    dm_enc_key(e, "timeout_s"); dm_enc_i64(e, ps.timeout_s);
    dm_enc_key(e, "borrowed"); dm_enc_i64(e, (int64_t)ps.borrowed);
    dm_enc_key(e, "waited"); dm_enc_i64(e, (int64_t)ps.waited);
    dm_enc_key(e, "timeouts"); dm_enc_i64(e, (int64_t)ps.timeouts);
    dm_enc_key(e, "replaced"); dm_enc_i64(e, (int64_t)ps.replaced);
    dm_enc_map_end(e);
}

static void encode_probe(dm_enc *e, const probe *p, dm_breaker *br, dm_pool *pool)
{
    dm_enc_key(e, dm_backend_name(p->id));
    dm_enc_map(e, (p->up ? 2 : 3) + (br ? 1 : 0) + (pool ? 1 : 0));
    dm_enc_key(e, "status"); dm_enc_str(e, p->up ? "up" : "down");
    dm_enc_key(e, "latency_ms"); dm_enc_f64(e, p->ms);
    if (br) {
        dm_enc_key(e, "breaker");
        dm_enc_str(e, dm_breaker_name(dm_breaker_state_of(br)));
    }
    if (pool)
        encode_pool(e, pool);
    if (!p->up) {
        dm_enc_key(e, "error");
        dm_enc_str(e, p->err.message);
    }
    dm_enc_map_end(e);
}

#define DM_HEALTH_ISSUES 32

/* Why the worker is degraded: a backend down, a breaker not closed, what the layer above
 * reports (stalled consumers, L1 suspended). */
static size_t health_issues(dm_serve *s, const probe *probes, int n,
                            char (*out)[DM_HEALTH_ISSUE_MAX])
{
    size_t k = 0;
    for (int i = 0; i < n && k < DM_HEALTH_ISSUES; i++)
        if (!probes[i].up)
            snprintf(out[k++], DM_HEALTH_ISSUE_MAX, "%s down: %.120s", dm_backend_name(probes[i].id),
                     probes[i].err.message);
    for (int id = 0; id < DM_BK_COUNT && k < DM_HEALTH_ISSUES; id++) {
        dm_breaker *br = s->cfg.breakers[id];
        dm_breaker_state bs = br ? dm_breaker_state_of(br) : DM_BREAKER_CLOSED;
        if (bs != DM_BREAKER_CLOSED)
            snprintf(out[k++], DM_HEALTH_ISSUE_MAX, "%s circuit %s: reads skip it, its writes wait in the stream",
                     dm_backend_name((dm_backend_id)id), dm_breaker_name(bs));
    }
    if (s->cfg.health_issues)
        k += s->cfg.health_issues(s->cfg.health_ctx, out + k, DM_HEALTH_ISSUES - k);
    return k;
}

static void op_health(dm_serve *s, dm_reply *out)
{
    probe probes[DM_BK_COUNT];
    int n = 0, up = 0;
    for (int i = 0; i < DM_BK_COUNT; i++) {
        if (source_ops(s, (dm_backend_id)i) == NULL)
            continue;
        probe *p = &probes[n++];
        struct timespec t0;
        memset(p, 0, sizeof *p);
        p->id = (dm_backend_id)i;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        dm_backend *b = borrow(s, p->id, &p->err);
        dm_bstatus st = b ? b->ops->ping(b, &p->err) : DM_BS_TRANSIENT;
        note_status(s, p->id, st);
        p->up = st == DM_BS_OK;
        p->ms = elapsed_ms(&t0);
        up += p->up;
    }
    char issues[DM_HEALTH_ISSUES][DM_HEALTH_ISSUE_MAX];
    size_t n_issues = health_issues(s, probes, n, issues);
    int extra = s->cfg.health_extra ? s->cfg.health_extra_members : 0;
    dm_enc e;
    dm_buf_reset(&out->body);
    dm_enc_init(&e, out->enc, &out->body);
    dm_enc_map(&e, 7 + (size_t)extra);
    dm_enc_key(&e, "status");
    dm_enc_str(&e, up == 0 && n > 0 ? "unhealthy" : n_issues > 0 ? "degraded" : "healthy");
    dm_enc_key(&e, "issues");
    dm_enc_arr(&e, n_issues);
    for (size_t i = 0; i < n_issues; i++)
        dm_enc_str(&e, issues[i]);
    dm_enc_arr_end(&e);
    dm_enc_key(&e, "worker"); dm_enc_str(&e, s->cfg.worker_name);
    dm_enc_key(&e, "version"); dm_enc_str(&e, DM_VERSION);
    dm_enc_key(&e, "strategy_version"); dm_enc_str(&e, s->st->version);
    dm_enc_key(&e, "uptime_s"); dm_enc_i64(&e, (dm_now_ms() - s->started_ms) / 1000);
    dm_enc_key(&e, "backends");
    dm_enc_map(&e, (size_t)n);
    for (int i = 0; i < n; i++)
        encode_probe(&e, &probes[i], s->cfg.breakers[probes[i].id], s->cfg.pools[probes[i].id]);
    dm_enc_map_end(&e);
    if (extra)
        s->cfg.health_extra(s->cfg.health_ctx, &e);
    dm_enc_map_end(&e);
    out->status = 200;
}

static void encode_strategy(dm_serve *s, dm_enc *e)
{
    dm_enc_key(e, "strategy");
    dm_enc_map(e, 4);
    dm_enc_key(e, "version"); dm_enc_str(e, s->st->version);
    dm_enc_key(e, "generation"); dm_enc_i64(e, (int64_t)dm_strategy_generation(s->cfg.strategies));
    dm_enc_key(e, "reloads");
    dm_enc_i64(e, s->cfg.watch ? (int64_t)dm_strategy_reloads(s->cfg.watch) : 0);
    dm_enc_key(e, "reload_failures");
    dm_enc_i64(e, s->cfg.watch ? (int64_t)dm_strategy_reload_failures(s->cfg.watch) : 0);
    dm_enc_map_end(e);
}

static void encode_l1_kind(dm_enc *e, const char *name, dm_l1_stats st)
{
    dm_enc_key(e, name);
    dm_enc_map(e, 4);
    dm_enc_key(e, "entries"); dm_enc_i64(e, (int64_t)st.entries);
    dm_enc_key(e, "bytes"); dm_enc_i64(e, (int64_t)st.bytes);
    dm_enc_key(e, "evictions"); dm_enc_i64(e, (int64_t)st.evictions);
    dm_enc_key(e, "expirations"); dm_enc_i64(e, (int64_t)st.expirations);
    dm_enc_map_end(e);
}

static void encode_l1(dm_serve *s, dm_enc *e)
{
    dm_enc_key(e, "l1");
    if (s->cfg.l1 == NULL) {
        dm_enc_null(e);
        return;
    }
    dm_enc_map(e, 2);
    encode_l1_kind(e, "ticks", dm_l1_cache_stats(s->cfg.l1, false));
    encode_l1_kind(e, "candles", dm_l1_cache_stats(s->cfg.l1, true));
    dm_enc_map_end(e);
}

static void op_metrics(dm_serve *s, dm_reply *out)
{
    dm_enc e;
    dm_buf_reset(&out->body);
    dm_enc_init(&e, out->enc, &out->body);
    dm_enc_map(&e, 4 + 4); /* dm_metrics_encode writes four members */
    dm_enc_key(&e, "worker"); dm_enc_str(&e, s->cfg.worker_name);
    dm_enc_key(&e, "strategy_version"); dm_enc_str(&e, s->st->version);
    encode_strategy(s, &e);
    encode_l1(s, &e);
    dm_metrics_encode(&e, dm_kind_names(), DM_KIND_COUNT);
    dm_enc_map_end(&e);
    out->status = 200;
}

/* ---- dispatch ----------------------------------------------------------------------- */

typedef dm_code (*op_fn)(dm_serve *s, const cJSON *req, dm_reply *out, dm_err *err);

static const struct {
    const char *subject;
    dm_op op;
    op_fn fn;
} ROUTES[] = {
    {DM_SUBJ_TICK_LATEST, DM_OP_GET_LATEST_TICK, op_latest_tick},
    {DM_SUBJ_CANDLES_LATEST, DM_OP_GET_CANDLES, op_latest_candles},
    {DM_SUBJ_CANDLES_HISTORY, DM_OP_GET_HISTORICAL, op_history},
    {DM_SUBJ_EVENTS, DM_OP_GET_EVENTS, op_events},
    {DM_SUBJ_AGGREGATES, DM_OP_COMPUTE_AGGREGATES, op_aggregates},
};


static void handle(dm_serve *s, const char *subject, const char *data, size_t len,
                   const char *content_type, dm_reply *out);

void dm_serve_handle(dm_serve *s, const char *subject, const char *data, size_t len,
                     const char *content_type, dm_reply *out)
{
    s->st = dm_strategy_acquire(s->cfg.strategies);
    handle(s, subject, data, len, content_type, out);
    give_back_all(s);
    dm_strategy_release(s->cfg.strategies, s->st);
    s->st = NULL;
}

static void handle(dm_serve *s, const char *subject, const char *data, size_t len,
                   const char *content_type, dm_reply *out)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    out->enc = dm_doc_detect(content_type, data, len);
    dm_err err = {0};
    if (strcmp(subject, DM_SUBJ_HEALTH) == 0) {
        op_health(s, out);
        return;
    }
    if (strcmp(subject, DM_SUBJ_METRICS) == 0) {
        op_metrics(s, out);
        return;
    }
    for (size_t i = 0; i < sizeof ROUTES / sizeof *ROUTES; i++) {
        if (strcmp(subject, ROUTES[i].subject) != 0)
            continue;
        cJSON *req = NULL;
        dm_code c = len == 0 ? (req = cJSON_CreateObject()) ? DM_OK : DM_E_INTERNAL
                             : dm_doc_parse(data, len, out->enc, DM_REQUEST_MAX_BYTES, &req, &err);
        if (c == DM_OK)
            c = ROUTES[i].fn(s, req, out, &err);
        cJSON_Delete(req);
        if (c == DM_OK && out->body.oom)
            c = dm_fail(&err, DM_E_INTERNAL, "", "out of memory while encoding the reply");
        if (c != DM_OK)
            reply_error(out, &err);
        dm_metrics_op(ROUTES[i].op, elapsed_ms(&t0), c != DM_OK && c != DM_E_NOT_FOUND);
        return;
    }
    dm_fail(&err, DM_E_NOT_FOUND, "subject",
            "%.80s is not a subject of this service (see subjects/README.md)", subject);
    reply_error(out, &err);
}
