/* Weaviate adapter (REST + GraphQL, libcurl): windows of closes as vectors, for "which
 * past windows looked like this one" searches.
 *
 * - One class holds every (symbol, timeframe): vectorizer none, cosine distance, index
 *   "flat" (exact, brute force) or "hnsw" (approximate: recall below 1). symbol and
 *   timeframe are text with tokenization "field", since the default "word" lowercases and
 *   splits "EUR/USD" into "eur" and "usd", and an Equal filter would then match "USD/EUR"
 *   windows too.
 * - timestamp and start_timestamp are stored as `date` (RFC 3339, UTC, milliseconds), not
 *   as `int` Unix ms: Weaviate's GraphQL layer types int properties as GraphQL Int, which is
 *   32-bit, so a Unix ms value comes back null in Get results (weaviate#1563, #2862) and
 *   cannot be written as a valueInt filter literal. Dates round-trip to the millisecond and
 *   filter with valueDate.
 * - Vectors are the window's closes z-normalised ((x - mean) / population std): cosine
 *   distance then compares shapes, not price levels. A flat window (std < 1e-7) has no
 *   shape and is neither stored nor searched for.
 * - Object ids are uuid5 (RFC 4122 name-based, SHA-1) in the DNS namespace of the name
 *   "SYMBOL|TIMEFRAME|TIMESTAMP" (timestamp in decimal Unix ms, "EUR/USD|1h|1704067200000"):
 *   what Weaviate's Python client's generate_uuid5 gives for that string, so other tools can
 *   compute them. Objects are per class, so a redelivered window overwrites itself. The
 *   window length is not part of the name: a class keeps one vector length, and windows of
 *   another length are refused by Weaviate (a per-object error).
 * - A batch reply of 200 does not mean every object was stored: each element carries its
 *   own result.errors. Batches go in requests of at most DM_WV_BATCH_MAX objects; a write
 *   that fails may have stored earlier requests, which replaying overwrites harmlessly.
 * - Statuses: transport failures, timeouts, 5xx, 408 and 429 are TRANSIENT; 401 and 403
 *   are PERMANENT (the key is wrong: retrying with it will not help) with a message that
 *   says so; 422 and other 4xx are PERMANENT. Replies are untrusted: every value is checked
 *   for type, size and range, and a reply over DM_WV_MAX_REPLY bytes (a search: about 2 KB
 *   per hit asked for) is refused unparsed. Such a reply is TRANSIENT: the request was
 *   fine, a proxy or a broken server answered, and another try may reach a sound one.
 * - The API key travels in the Authorization header only, never in a log line. */
#ifndef DM_WEAVIATE_H
#define DM_WEAVIATE_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"

#define DM_WV_BATCH_MAX 200         /* objects per POST /v1/batch/objects */
#define DM_WV_MAX_REPLY (16u << 20) /* bytes of one reply body */
#define DM_WV_WINDOW_MAX 4096       /* closes per window */
#define DM_WV_LIMIT_MAX 10000       /* hits per search: Weaviate's QUERY_MAXIMUM_RESULTS */
#define DM_WV_FLAT_STD 1e-7         /* below this population std a window is flat */

typedef struct {
    const char *url;        /* "http://127.0.0.1:8080" */
    const char *api_key;    /* NULL: no auth; else "Authorization: Bearer <key>" */
    const char *class_name; /* "PriceWindow" */
    const char *index_type; /* "flat" (exact) or "hnsw" (approximate) */
    int window;             /* W closes per stored window (strategy patterns.window, default 32) */
    int timeout_ms;         /* per request; <= 0: 10 s */
} dm_weaviate_config;

typedef struct dm_weaviate dm_weaviate;

/* Connects lazily: opening succeeds while the server is down. NULL (and err) when the
 * config is unusable: url not http(s)://host[:port] or with credentials, a class name
 * Weaviate would refuse ([A-Z][_0-9A-Za-z]*), an index type other than flat or hnsw, a
 * window outside 2..DM_WV_WINDOW_MAX, an API key with control characters. */
dm_weaviate *dm_weaviate_open(const dm_weaviate_config *cfg, dm_err *err);
void dm_weaviate_close(dm_weaviate *w);

/* GET /v1/.well-known/ready: 200 OK, 503 (starting, shutting down) TRANSIENT. */
dm_bstatus dm_weaviate_ready(dm_weaviate *w, dm_err *err);

/* POST /v1/schema with the class described above. 422 "already exists" is OK once
 * GET /v1/schema/{class} shows the same index type, distance and property types; any
 * difference is PERMANENT with a message naming it (the class must be migrated by hand). */
dm_bstatus dm_weaviate_ensure_class(dm_weaviate *w, dm_err *err);

typedef struct {
    const char *symbol;      /* "EUR/USD" */
    const char *timeframe;   /* "1h" */
    int64_t timestamp;       /* open time of the window's last candle */
    int64_t start_timestamp; /* of its first */
    const double *closes;    /* window closes, cfg.window of them (raw: the adapter z-normalises) */
} dm_pattern_window;

/* Upserts the windows (flat ones are skipped). Every window is checked before anything is
 * sent: a bad symbol, timeframe, time or a non-finite close makes the whole call PERMANENT. */
dm_bstatus dm_weaviate_put_windows(dm_weaviate *w, const dm_pattern_window *win, size_t n,
                                   dm_err *err);

typedef struct {
    const double *vector;  /* raw query; the adapter z-normalises */
    size_t w;              /* must equal cfg.window, else MISS */
    double max_distance;   /* < 0: none; else nearVector distance (= 1 - similarity threshold) */
    size_t limit;          /* 0: no hits; above DM_WV_LIMIT_MAX: DM_WV_LIMIT_MAX */
    const char *symbol;    /* NULL: any */
    const char *timeframe; /* NULL: any */
    int64_t start, end;    /* window qualifies: start <= start_timestamp and timestamp < end;
                              INT64_MIN/MAX: no bound */
} dm_weaviate_query;

typedef struct {
    char symbol[32];
    char timeframe[8];
    int64_t timestamp, start_timestamp;
    double score; /* 1 - distance */
} dm_weaviate_hit;

/* Nearest stored windows, best first as Weaviate orders them: *out is malloc'd (caller
 * frees; NULL when *n is 0). MISS for a query of the wrong length or a flat query. A 200
 * with "errors" is TRANSIENT unless it names a query mistake (PERMANENT). A reply whose hits
 * break the query (wrong symbol, outside the range, more than limit) is refused. */
dm_bstatus dm_weaviate_search(dm_weaviate *w, const dm_weaviate_query *q, dm_weaviate_hit **out,
                              size_t *n, dm_err *err);

/* How many windows the class holds of a symbol and/or a timeframe (NULL: any), with GraphQL
 * Aggregate { meta { count } }. Statuses as dm_weaviate_search. */
dm_bstatus dm_weaviate_count(dm_weaviate *w, const char *symbol, const char *timeframe,
                             int64_t *count, dm_err *err);

/* ---- as a dm_backend (weaviate_backend.c) ------------------------------------------- */

/* The `weaviate` source of find_patterns and similarity_search, one instance per thread.
 * cfg is deploy/config/weaviate.json: {"url", "api_key"? ("" or absent: no auth), "class"?
 * (default "PriceWindow")}; window, hnsw and timeframes (a mask of 1 << dm_tf) are the
 * strategy's patterns settings: what the class indexes. NULL (logged) when cfg is unusable.
 *
 * patterns answers a request the index can: MISS when its length is not `window`, its
 * timeframe is not indexed, or Weaviate holds no window of its symbol (of its timeframe,
 * without a symbol) at all. Windows are ranked as the in-worker engine ranks them (score,
 * then symbol, then start) and the exclusion zone is applied here, over
 * limit * (2 * zone + 1) neighbours (at most DM_WV_LIMIT_MAX), since Weaviate knows none.
 * Weaviate knows times, not candle positions: two windows of a symbol whose starts lie
 * within zone * timeframe are within zone candles (a gap only adds time); farther apart,
 * they are known to be outside the zone only when the later one starts after the earlier
 * one's end with window > zone, or when the earlier one is gap-free (its span is
 * (window - 1) * timeframe), which makes the time distance the candle distance. Otherwise
 * the window is kept as if it were outside the zone and the answer says exact false. exact is true
 * only with the flat index, every exclusion decided, and the neighbours fetched sufficing (the walk
 * reached limit, or Weaviate had no more). Scores are 1 - cosine distance, which Weaviate computes
 * in float32 (about 1e-7 off). */
/* With a window source (src, may be NULL) it is also a write consumer of candles: each
 * written candle's windows (every window of `window` closes holding it) are stored,
 * z-normalised, before the candle is acked. */
dm_backend *dm_weaviate_backend_create(const cJSON *cfg, int window, bool hnsw, unsigned timeframes,
                                       int timeout_s, const dm_window_source *src);

/* ---- pure helpers, exposed for the unit tests ---------------------------------------- */

/* The uuid5 of name in the DNS namespace, lowercase with dashes, into out[37]; false
 * (out "") when the digest could not be computed. */
bool dm_weaviate_uuid5(const char *name, char out[37]);
/* Unix ms as RFC 3339 UTC with milliseconds ("2024-01-01T00:00:00.000Z"); false outside
 * years 0001..9999. */
bool dm_weaviate_format_date(int64_t ms, char out[32]);
/* RFC 3339 ("...Z" or "...+hh:mm", fraction optional, digits beyond ms dropped) to Unix
 * ms; false when s is not one. */
bool dm_weaviate_parse_date(const char *s, int64_t *ms);
/* z-normalised x into z; false (z untouched) when a value is not finite or x is flat. */
bool dm_weaviate_znorm(const double *x, size_t n, double *z);

#endif
