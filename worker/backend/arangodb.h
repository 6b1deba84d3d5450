/* ArangoDB adapter (HTTP API, libcurl): the correlation graph of symbols.
 *
 * - Data, in the configured database: vertex collection "dm_symbols" ({_key, symbol}),
 *   edge collection "dm_correlations" (one edge per unordered pair per timeframe:
 *   {_from, _to, a, b, r, n, timeframe, window_start, window_end, window_candles, gen}),
 *   document collection "dm_windows" (the stored window of each timeframe, _key = the
 *   timeframe, {timeframe, window_start, window_end, window_candles, gen}) and the named
 *   graph "dm_correlation_graph" over the first two.
 * - Keys: a _key may only hold [A-Za-z0-9] and _-:.@()+,=;$!*'%, so a symbol's key is the
 *   symbol with its '/' replaced by '_' ("EUR/USD" -> "EUR_USD"). Symbols are
 *   [A-Z0-9]+ with at most one inner '/', so the mapping is one-to-one: "EUR/USD" and the
 *   token form "EURUSD" stay two vertices rather than silently sharing one. An edge's key
 *   is "<timeframe>-<key of a>-<key of b>" with a < b (strcmp).
 * - Stale pairs are deleted, and never visible meanwhile: each put stamps its edges and
 *   its window document with a new random generation ("gen"), writes the window document
 *   last, then removes the timeframe's edges of any other generation. Reads take only
 *   edges of the stored window's generation, so a pair that is no longer correlated is
 *   invisible even when the removal failed or has not run yet; deleting (rather than
 *   marking) keeps traversals from wading through dead edges. A read that overlaps a
 *   window switch may see fewer pairs (never a stale one): compare windows afterwards.
 * - A window older (by window_end) than the stored one is ignored, so a redelivered old
 *   window never replaces a newer one. Two writers of one timeframe at once are not
 *   supported: the consumer serialises a timeframe's windows.
 * - Errors: bodies {"error":true,"code","errorNum","errorMessage"} become messages naming
 *   errorNum and errorMessage. 400 (1501 parse, 1551/1552 bind parameters), 401 after one
 *   fresh token, 403, and 404 are permanent, except 404 1600 (cursor gone: its ttl ran
 *   out) which is transient; 408, 409 (conflicts), 410, 429, 5xx, timeouts and transport
 *   failures are transient. 404 1203 (collection not found) is permanent with a hint to
 *   run dm_arango_ensure_graph: the collections are created at start, so a missing one
 *   means a wrong database or a deliberate drop, which recreating them would hide.
 *   A reply that is not what the docs promise (types, sizes, symbols) is permanent.
 * - Auth: a JWT from POST /_open/auth, sent as Bearer; on a 401 the adapter
 *   authenticates once more and retries the request once. No username: no auth.
 * - One thread at a time per handle (the backend contract). */
#ifndef DM_ARANGODB_H
#define DM_ARANGODB_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"

#define DM_ARANGO_MAX_REPLY (16u << 20) /* bytes of one reply */
#define DM_ARANGO_MAX_ROWS 50000        /* rows of one query, over all its batches */
#define DM_ARANGO_MAX_DEPTH 4           /* traversal depth: paths grow as symbols^depth */
#define DM_ARANGO_BATCH 1000            /* rows per cursor batch */

typedef struct {
    const char *url;                 /* "http://127.0.0.1:8529" */
    const char *database;            /* "dm" */
    const char *username, *password; /* NULL or "" username: the server has auth off */
    int timeout_ms;                  /* per request; <= 0: 30 s */
} dm_arango_config;

typedef struct dm_arango dm_arango;

/* Connects lazily: opening succeeds while the server is down. NULL (err says why) when
 * the url is not http(s)://host[:port] without credentials or the database name is not
 * [A-Za-z][A-Za-z0-9_-]{0,63}. */
dm_arango *dm_arango_open(const dm_arango_config *cfg, dm_err *err);
void dm_arango_close(dm_arango *a);

/* GET /_admin/server/availability, without auth: OK when it answers 200, TRANSIENT on
 * 503 (starting, stopping, read-only) or no answer. */
dm_bstatus dm_arango_available(dm_arango *a, dm_err *err);

/* Creates the three collections and the graph; those that exist already are fine. */
dm_bstatus dm_arango_ensure_graph(dm_arango *a, dm_err *err);

/* An unordered pair: a < b (strcmp). */
typedef struct {
    const char *a, *b;
    double r;  /* Pearson correlation, finite, in [-1, 1] */
    int64_t n; /* samples it was computed from, >= 0 */
} dm_arango_edge;

#define DM_ARANGO_GEN_LEN 16 /* hex digits of a generation */

typedef struct {
    const char *timeframe;            /* "1h"; one of the fixed timeframe names */
    int64_t window_start, window_end; /* ms, start < end */
    int window_candles;               /* > 0 */
} dm_arango_window;

/* Upserts the symbols as vertices and the edges of one window (POST /_api/import with
 * onDuplicate=update), then makes it the stored window of its timeframe and removes the
 * timeframe's other edges (see above). Every edge's symbols must be among `symbols`.
 * OK also when the window is older than the stored one (nothing is written). */
dm_bstatus dm_arango_put_window(dm_arango *a, const dm_arango_window *w, const char *const *symbols,
                                size_t n_symbols, const dm_arango_edge *edges, size_t n_edges,
                                dm_err *err);

/* The stored window of a timeframe; MISS when none. out->timeframe points at the
 * caller's `timeframe`. */
dm_bstatus dm_arango_stored_window(dm_arango *a, const char *timeframe, dm_arango_window *out,
                                   dm_err *err);
/* The same with the window's generation: two reads that see the same generation saw the
 * same edges, so a read between them saw one window's edges, none being swept. */
dm_bstatus dm_arango_stored_window_gen(dm_arango *a, const char *timeframe, dm_arango_window *out,
                                       char gen[DM_ARANGO_GEN_LEN + 1], dm_err *err);

/* Every pair of `symbol` in the stored window of `timeframe` with |r| >= threshold
 * (0 <= threshold <= 1), strongest first. MISS when the timeframe has no stored window.
 * On OK *out holds *n edges whose strings are the caller's: release them with
 * dm_arango_edges_free. On any other status *out is NULL and *n is 0. */
dm_bstatus dm_arango_correlations(dm_arango *a, const char *timeframe, const char *symbol,
                                  double threshold, dm_arango_edge **out, size_t *n, dm_err *err);

typedef struct {
    char symbol[32];
    int depth; /* fewest edges from the start, >= 1 */
} dm_arango_node;

/* Symbols reachable from `start` in 1..depth (<= DM_ARANGO_MAX_DEPTH) steps over edges of
 * the stored window of `timeframe` with |r| >= threshold, each with its BFS depth, and
 * the distinct edges met on the way. The start itself is not among the nodes. MISS when
 * the timeframe has no stored window; OK with nothing when `start` has no such edge.
 * On OK the caller frees *nodes with free() and *edges with dm_arango_edges_free; on any
 * other status both are NULL and the counts 0. */
dm_bstatus dm_arango_traverse(dm_arango *a, const char *timeframe, const char *start, int depth,
                              double threshold, dm_arango_node **nodes, size_t *n_nodes,
                              dm_arango_edge **edges, size_t *n_edges, dm_err *err);

/* Every edge of the stored window of `timeframe` (by a then b), that window and its
 * generation, read as one snapshot: the window document is read again after the edges,
 * and a generation that changed meanwhile (a put switched windows during the read) is
 * TRANSIENT. MISS when the timeframe has no stored window. Ownership of *out as
 * dm_arango_correlations. */
dm_bstatus dm_arango_window_edges(dm_arango *a, const char *timeframe, dm_arango_window *w,
                                  char gen[DM_ARANGO_GEN_LEN + 1], dm_arango_edge **out, size_t *n,
                                  dm_err *err);

/* Frees edges returned by this adapter: each a and b, then the array. NULL is fine. */
void dm_arango_edges_free(dm_arango_edge *edges, size_t n);

/* ---- as a dm_backend (arangodb_backend.c) ------------------------------------------- */

/* The `arangodb` source of get_correlations and graph_analysis, one instance per thread.
 * cfg is deploy/config/arangodb.json: {"url", "database", "username"?, "password"?}. NULL
 * (logged) when cfg is unusable.
 *
 * Both operations answer only the stored window: a request whose window (timeframe,
 * window_start, window_end, window_candles) is another is a MISS, and so is a symbol with
 * no pair in the stored window (the fallback then decides between an empty answer and
 * not_found) and a graph deeper than DM_ARANGO_MAX_DEPTH. Answers follow
 * worker/analysis/correl.h: the stored pairs are laid out as its matrix and its
 * definitions (ordering, clusters, Mantegna's forest) are applied to them. Two limits of
 * the stored data: a symbol of the window with no correlated pair at all is not stored,
 * so it is missing from the clusters (a singleton there); and the pairs are those the
 * writer computed, with its min_pairs. Graph nodes come from the database's traversal and
 * must agree with the stored pairs, else the answer is refused (PERMANENT). */
dm_backend *dm_arango_backend_create(const cJSON *cfg, int timeout_s);

/* The _key of a symbol ("EUR/USD" -> "EUR_USD"); false when the symbol is not
 * [A-Z0-9]+ with at most one inner '/' and at most DM_SYMBOL_MAX characters. */
bool dm_arango_symbol_key(const char *symbol, char key[DM_SYMBOL_MAX + 1]);

#endif
