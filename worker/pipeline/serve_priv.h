/* What the parts of serve share: the per-thread state, the routing engine (borrow, walk,
 * single flight, fill), request fields, reply framing and the operations. Private to
 * pipeline/serve*.c and pipeline/op_*.c; the rest of the worker sees serve.h only.
 *
 * Ownership: a dm_serve belongs to one responder thread; everything it holds for a request
 * (borrowed connections, the strategy version) is given back when that request is answered. */
#ifndef DM_SERVE_PRIV_H
#define DM_SERVE_PRIV_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "cache/fresh.h"
#include "serve.h"

struct dm_serve {
    dm_serve_config cfg;
    int64_t started_ms;
    const dm_strategy *st; /* the version of the request being answered */
    dm_backend *held[DM_BK_COUNT]; /* borrowed for the request being answered */
    bool broken[DM_BK_COUNT];      /* a held connection met a transient failure */
};

/* ---- connections (serve_route.c) ---- */

/* The operations backend `id` offers this thread; NULL when it is not configured. */
const dm_backend_ops *serve_source_ops(const dm_serve *s, dm_backend_id id);
/* The request's connection to `id`, borrowed on first use; NULL with e set when the pool
 * has none to give in time. */
dm_backend *serve_borrow(dm_serve *s, dm_backend_id id, dm_err *e);
/* A transient failure marks the held connection broken, so the pool replaces it. */
void serve_note_status(dm_serve *s, dm_backend_id id, dm_bstatus st);
void serve_give_back_all(dm_serve *s);

/* ---- the source walk (serve_route.c) ---- */

typedef dm_bstatus (*serve_try_fn)(dm_backend *b, void *q, dm_err *err);

typedef struct {
    dm_backend_id served_by;
    uint64_t seq; /* the answering source's known sequence for the key (fills stamp it) */
    dm_backend *missed[DM_ROUTE_MAX]; /* caches that missed, to fill on the way back */
    int n_missed;
} serve_walk_result;

/* The key a latest-value read is about, so the walk asks only sources whose copy of it is
 * current (cache/fresh.h). */
typedef struct {
    char key[DM_L1_KEY_MAX];
    dm_fresh_class cls;
} serve_fresh_key;

#define SERVE_OP(field) offsetof(dm_backend_ops, field)

/* Walks the strategy's sources for `op`, asking each that offers the dm_backend_ops member
 * at op_offset. A miss, a failure or a lagging copy moves on; the first answer wins.
 * Returns DM_OK, DM_E_NOT_FOUND (a complete store has none) or DM_E_UNAVAILABLE (no
 * complete store could answer). fk: NULL for reads no coherence update describes. */
dm_code serve_walk(dm_serve *s, dm_op op, size_t op_offset, serve_try_fn fn, void *q,
                   const serve_fresh_key *fk, serve_walk_result *w, dm_err *err);

/* Single flight around a cache miss: followers wait for the leader (bounded), then walk
 * again and find what it filled. Returns whether this request leads. */
bool serve_flight_begin(dm_serve *s, const char *key);
void serve_flight_end(dm_serve *s, const char *key, bool lead);
/* Answers from L1 when the route starts with it and it holds the key; no flight needed. */
bool serve_l1_answers(dm_serve *s, dm_op op, serve_try_fn fn, void *q, serve_walk_result *w);
/* "prefix:{TOKEN}" or "prefix:{TOKEN}:tf" (tf < 0: none): flight and cache keys. */
void serve_key(char *key, size_t cap, const char *prefix, const char *symbol, dm_tf tf);
/* Fills the caches that missed on the way to the answer (a tick, or n candles). */
void serve_fill_caches(dm_serve *s, const serve_walk_result *w, const dm_tick *t,
                       const dm_candle *c, size_t n);
/* Whether the source that answered (or PostgreSQL, when ClickHouse's copy may lag) holds
 * any candle of the key: an empty range is data: [], an unknown symbol is not_found. */
bool serve_candles_known(dm_serve *s, dm_backend_id served_by, const char *symbol, dm_tf tf);

/* ---- request fields (serve_request.c) ---- */

/* Requests are strict: a member not in `allowed` (NULL-terminated) is invalid_field. */
dm_code req_only(const cJSON *req, const char *const *allowed, dm_err *err);
dm_code req_symbol(const cJSON *req, const char *name, char *symbol, dm_err *err);
dm_code req_tf(const cJSON *req, dm_tf *tf, dm_err *err);
/* Optional timeframe, `dflt` when absent. */
dm_code req_tf_or(const cJSON *req, dm_tf dflt, dm_tf *tf, dm_err *err);
dm_code req_range(const cJSON *req, int64_t *start, int64_t *end, dm_err *err);
dm_code req_page(const cJSON *req, size_t *page, dm_err *err);
/* Cursors carry the last key returned; any source can continue from it. */
dm_code req_cursor(const cJSON *req, char *raw, size_t cap, bool *present, dm_err *err);

/* ---- replies (serve_reply.c) ---- */

void reply_error(dm_reply *out, const dm_err *err);
/* Opens the reply map with `members` members and writes the "data" key. */
void reply_begin_data(dm_enc *e, dm_reply *out, size_t members);
/* Writes served_by and closes the map. */
void reply_end_data(dm_enc *e, dm_backend_id served_by);
void reply_cursor(dm_enc *e, const char *raw);
void reply_candles(dm_enc *e, const dm_candle *c, size_t n);
/* The msgpack reply in out, data or error, as its market_data.proto message (the reply type
 * of `subject`, or ErrorReply when out->status is 4xx/5xx). A reply the schema cannot hold
 * becomes an internal error reply; returns its code (DM_OK when converted). */
dm_code reply_as_protobuf(dm_reply *out, const char *subject, dm_err *err);
double serve_elapsed_ms(const struct timespec *t0);

/* ---- operations (op_*.c) ---- */

typedef dm_code (*serve_op_fn)(dm_serve *s, const cJSON *req, dm_reply *out, dm_err *err);

dm_code op_latest_tick(dm_serve *s, const cJSON *req, dm_reply *out, dm_err *err);
dm_code op_latest_candles(dm_serve *s, const cJSON *req, dm_reply *out, dm_err *err);
dm_code op_history(dm_serve *s, const cJSON *req, dm_reply *out, dm_err *err);
dm_code op_events(dm_serve *s, const cJSON *req, dm_reply *out, dm_err *err);
dm_code op_aggregates(dm_serve *s, const cJSON *req, dm_reply *out, dm_err *err);
dm_code op_patterns_find(dm_serve *s, const cJSON *req, dm_reply *out, dm_err *err);
dm_code op_patterns_similar(dm_serve *s, const cJSON *req, dm_reply *out, dm_err *err);
dm_code op_correlations(dm_serve *s, const cJSON *req, dm_reply *out, dm_err *err);
dm_code op_graph(dm_serve *s, const cJSON *req, dm_reply *out, dm_err *err);
void op_health(dm_serve *s, dm_reply *out);
void op_metrics(dm_serve *s, dm_reply *out);

#endif
