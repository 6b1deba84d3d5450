/* The ArangoDB adapter's reads: stored windows, a symbol's pairs and traversals. */
#include "arangodb_priv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reads --------------------------------------------------------------------------- */

dm_bstatus ar_stored(dm_arango *a, const char *tf, dm_arango_window *out, char gen[GEN_LEN + 1],
                     dm_err *err)
{
    char path[160], msg[8];
    snprintf(path, sizeof path, "/_db/%s/_api/document/" WINDOWS "/%s", a->db, tf);
    request r = {"GET", path, NULL, 0, true, true};
    long status = 0;
    dm_bstatus st = ar_call(a, &r, &status, err);
    if (st != DM_BS_OK)
        return st;
    if (status == 404 && ar_error_num(a, msg, sizeof msg) == 1202) /* document not found */
        return dm_fail(err, DM_E_NOT_FOUND, "timeframe", "arangodb: no stored %s window", tf),
               DM_BS_MISS;
    if (status != 200)
        return ar_http_fail(a, status, "stored window", err);
    cJSON *j = ar_reply_json(a);
    int64_t candles = 0;
    const char *g = ar_json_str(j, "gen"), *t = ar_json_str(j, "timeframe");
    bool ok = t && strcmp(t, tf) == 0 && ar_all_of(g, GEN_LEN, GEN_LEN, "0123456789abcdef") &&
              ar_json_int(cJSON_GetObjectItemCaseSensitive(j, "window_start"), INT64_MIN, INT64_MAX,
                          &out->window_start) &&
              ar_json_int(cJSON_GetObjectItemCaseSensitive(j, "window_end"), INT64_MIN, INT64_MAX,
                          &out->window_end) &&
              ar_json_int(cJSON_GetObjectItemCaseSensitive(j, "window_candles"), 1, INT32_MAX,
                          &candles) &&
              out->window_start < out->window_end;
    if (ok) {
        snprintf(gen, GEN_LEN + 1, "%s", g);
        out->timeframe = tf;
        out->window_candles = (int)candles;
    }
    cJSON_Delete(j);
    return ok ? DM_BS_OK : ar_unreadable("stored window", "not a window document", err);
}

dm_bstatus dm_arango_stored_window(dm_arango *a, const char *timeframe, dm_arango_window *out,
                                   dm_err *err)
{
    char gen[GEN_LEN + 1];
    return dm_arango_stored_window_gen(a, timeframe, out, gen, err);
}

dm_bstatus dm_arango_stored_window_gen(dm_arango *a, const char *timeframe, dm_arango_window *out,
                                       char gen[DM_ARANGO_GEN_LEN + 1], dm_err *err)
{
    if (!ar_valid_timeframe(timeframe))
        return ar_refuse("timeframe", "timeframe is not one of the fixed names", err);
    return ar_stored(a, timeframe, out, gen, err);
}

/* One row of a read, in fixed-size strings so an abandoned read frees one array. */
typedef struct {
    char a[DM_SYMBOL_MAX + 1], b[DM_SYMBOL_MAX + 1], s[DM_SYMBOL_MAX + 1];
    double r;
    int64_t n;
    int d;
} row;

typedef struct {
    row *v;
    size_t n, cap;
    const char *symbol; /* correlations: every row must hold it */
    int depth;          /* traversals: the deepest allowed */
} rows;

static row *push(rows *rs)
{
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 64;
        row *v = realloc(rs->v, cap * sizeof *v);
        if (v == NULL)
            return NULL;
        rs->v = v;
        rs->cap = cap;
    }
    return &rs->v[rs->n++];
}

/* A string field holding a valid symbol, copied into out. */
static bool json_symbol(const cJSON *obj, const char *name, char out[DM_SYMBOL_MAX + 1])
{
    char key[DM_SYMBOL_MAX + 1];
    const char *s = ar_json_str(obj, name);
    if (!dm_arango_symbol_key(s, key))
        return false;
    snprintf(out, DM_SYMBOL_MAX + 1, "%s", s);
    return true;
}

static bool parse_edge(const cJSON *j, row *out)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "r");
    if (!json_symbol(j, "a", out->a) || !json_symbol(j, "b", out->b) || !cJSON_IsNumber(r) ||
        !ar_json_int(cJSON_GetObjectItemCaseSensitive(j, "n"), 0, INT64_MAX, &out->n))
        return false;
    out->r = r->valuedouble;
    dm_arango_edge e = {out->a, out->b, out->r, out->n};
    return ar_valid_edge(&e);
}

static dm_bstatus take_pair(void *ctx, const cJSON *j, dm_err *err)
{
    rows *rs = ctx;
    row *r = push(rs);
    if (r == NULL)
        return dm_fail(err, DM_E_INTERNAL, "", "out of memory"), DM_BS_TRANSIENT;
    if (!parse_edge(j, r) || (strcmp(r->a, rs->symbol) != 0 && strcmp(r->b, rs->symbol) != 0))
        return ar_unreadable("correlations", "a row is not a pair of the symbol", err);
    return DM_BS_OK;
}

static dm_bstatus take_edge(void *ctx, const cJSON *j, dm_err *err)
{
    row *r = push(ctx);
    if (r == NULL)
        return dm_fail(err, DM_E_INTERNAL, "", "out of memory"), DM_BS_TRANSIENT;
    return parse_edge(j, r) ? DM_BS_OK : ar_unreadable("window edges", "a row is not a pair", err);
}

static dm_bstatus take_step(void *ctx, const cJSON *j, dm_err *err)
{
    rows *rs = ctx;
    row *r = push(rs);
    int64_t d = 0;
    if (r == NULL)
        return dm_fail(err, DM_E_INTERNAL, "", "out of memory"), DM_BS_TRANSIENT;
    if (!parse_edge(j, r) || !json_symbol(j, "s", r->s) ||
        !ar_json_int(cJSON_GetObjectItemCaseSensitive(j, "d"), 1, rs->depth, &d) ||
        (strcmp(r->s, r->a) != 0 && strcmp(r->s, r->b) != 0))
        return ar_unreadable("traversal", "a row is not a vertex with its edge", err);
    r->d = (int)d;
    return DM_BS_OK;
}

void dm_arango_edges_free(dm_arango_edge *edges, size_t n)
{
    for (size_t i = 0; edges && i < n; i++) {
        free((char *)edges[i].a);
        free((char *)edges[i].b);
    }
    free(edges);
}

/* Owned copies of the rows' edges, keeping only a row whose `keep` is true (NULL: all). */
static dm_bstatus to_edges(const rows *rs, const bool *keep, dm_arango_edge **out, size_t *n,
                           dm_err *err)
{
    *out = calloc(rs->n ? rs->n : 1, sizeof **out);
    *n = 0;
    for (size_t i = 0; *out && i < rs->n; i++) {
        if (keep && !keep[i])
            continue;
        dm_arango_edge *e = &(*out)[(*n)++];
        e->a = strdup(rs->v[i].a);
        e->b = strdup(rs->v[i].b);
        e->r = rs->v[i].r;
        e->n = rs->v[i].n;
        if (e->a == NULL || e->b == NULL) {
            dm_arango_edges_free(*out, *n);
            *out = NULL;
        }
    }
    if (*out == NULL) {
        *n = 0;
        return dm_fail(err, DM_E_INTERNAL, "", "out of memory"), DM_BS_TRANSIENT;
    }
    return DM_BS_OK;
}

static dm_bstatus check_read(const char *tf, const char *symbol, double threshold, dm_err *err)
{
    char key[DM_SYMBOL_MAX + 1];
    if (!ar_valid_timeframe(tf))
        return ar_refuse("timeframe", "timeframe is not one of the fixed names", err);
    if (!dm_arango_symbol_key(symbol, key))
        return ar_refuse("symbol", "symbol is not [A-Z0-9]+ with at most one inner '/'", err);
    if (!isfinite(threshold) || threshold < 0 || threshold > 1)
        return ar_refuse("threshold", "threshold must be within [0, 1]", err);
    return DM_BS_OK;
}

/* Bind variables every read shares: the start vertex, timeframe, generation, threshold. */
static cJSON *read_binds(const char *tf, const char *symbol, const char *gen, double threshold)
{
    char key[DM_SYMBOL_MAX + 1], id[DM_SYMBOL_MAX + 16];
    dm_arango_symbol_key(symbol, key);
    snprintf(id, sizeof id, SYMBOLS "/%s", key);
    cJSON *bind = cJSON_CreateObject();
    cJSON_AddStringToObject(bind, "v", id);
    cJSON_AddStringToObject(bind, "tf", tf);
    cJSON_AddStringToObject(bind, "gen", gen);
    ar_bind_double(bind, "t", threshold);
    return bind;
}

dm_bstatus dm_arango_correlations(dm_arango *a, const char *timeframe, const char *symbol,
                                  double threshold, dm_arango_edge **out, size_t *n, dm_err *err)
{
    *out = NULL;
    *n = 0;
    dm_arango_window w;
    char gen[GEN_LEN + 1];
    dm_bstatus st = check_read(timeframe, symbol, threshold, err);
    if (st == DM_BS_OK)
        st = ar_stored(a, timeframe, &w, gen, err);
    if (st != DM_BS_OK)
        return st;
    rows rs = {.symbol = symbol};
    /* The OR on _from/_to is served by the edge index. */
    st = ar_query(a, "correlations",
                  "FOR e IN " EDGES " FILTER (e._from == @v OR e._to == @v) AND e.timeframe == @tf "
                  "AND e.gen == @gen AND ABS(e.r) >= @t SORT ABS(e.r) DESC, e.a, e.b "
                  "RETURN {a: e.a, b: e.b, r: e.r, n: e.n}",
                  read_binds(timeframe, symbol, gen, threshold), take_pair, &rs, err);
    if (st == DM_BS_OK)
        st = to_edges(&rs, NULL, out, n, err);
    free(rs.v);
    return st;
}

static int by_symbol_depth(const void *x, const void *y)
{
    const row *p = x, *q = y;
    int c = strcmp(p->s, q->s);
    return c ? c : (p->d > q->d) - (p->d < q->d);
}

static int by_pair(const void *x, const void *y)
{
    const row *p = x, *q = y;
    int c = strcmp(p->a, q->a);
    return c ? c : strcmp(p->b, q->b);
}

static int by_depth_symbol(const void *x, const void *y)
{
    const dm_arango_node *p = x, *q = y;
    return p->depth != q->depth ? (p->depth > q->depth) - (p->depth < q->depth)
                                : strcmp(p->symbol, q->symbol);
}

/* Rows are (vertex, edge that reached it, depth): nodes keep their least depth, edges
 * appear once. Sorting keeps this O(n log n) however many rows a hostile reply holds. */
static dm_bstatus collect(rows *rs, dm_arango_node **nodes, size_t *n_nodes, dm_arango_edge **edges,
                          size_t *n_edges, dm_err *err)
{
    bool *keep = calloc(rs->n ? rs->n : 1, sizeof *keep);
    *nodes = calloc(rs->n ? rs->n : 1, sizeof **nodes);
    if (keep == NULL || *nodes == NULL) {
        free(keep);
        free(*nodes);
        *nodes = NULL;
        return dm_fail(err, DM_E_INTERNAL, "", "out of memory"), DM_BS_TRANSIENT;
    }
    /* No row (a start without a strong enough pair) leaves rs->v NULL: qsort must not see it. */
    if (rs->n > 0)
        qsort(rs->v, rs->n, sizeof *rs->v, by_symbol_depth);
    for (size_t i = 0; i < rs->n; i++)
        if (i == 0 || strcmp(rs->v[i].s, rs->v[i - 1].s) != 0) {
            dm_arango_node *v = &(*nodes)[(*n_nodes)++];
            snprintf(v->symbol, sizeof v->symbol, "%s", rs->v[i].s);
            v->depth = rs->v[i].d;
        }
    qsort(*nodes, *n_nodes, sizeof **nodes, by_depth_symbol);
    if (rs->n > 0)
        qsort(rs->v, rs->n, sizeof *rs->v, by_pair);
    for (size_t i = 0; i < rs->n; i++)
        keep[i] = i == 0 || by_pair(&rs->v[i], &rs->v[i - 1]) != 0;
    dm_bstatus st = to_edges(rs, keep, edges, n_edges, err);
    free(keep);
    if (st != DM_BS_OK) {
        free(*nodes);
        *nodes = NULL;
        *n_nodes = 0;
    }
    return st;
}

dm_bstatus dm_arango_traverse(dm_arango *a, const char *timeframe, const char *start, int depth,
                              double threshold, dm_arango_node **nodes, size_t *n_nodes,
                              dm_arango_edge **edges, size_t *n_edges, dm_err *err)
{
    *nodes = NULL;
    *edges = NULL;
    *n_nodes = *n_edges = 0;
    dm_arango_window w;
    char gen[GEN_LEN + 1];
    dm_bstatus st = check_read(timeframe, start, threshold, err);
    if (st == DM_BS_OK && (depth < 1 || depth > DM_ARANGO_MAX_DEPTH))
        st = ar_refuse("depth", "depth must be within 1..DM_ARANGO_MAX_DEPTH", err);
    if (st == DM_BS_OK)
        st = ar_stored(a, timeframe, &w, gen, err);
    if (st != DM_BS_OK)
        return st;
    cJSON *bind = read_binds(timeframe, start, gen, threshold);
    cJSON_AddNumberToObject(bind, "depth", depth);
    cJSON_AddStringToObject(bind, "g", GRAPH);
    rows rs = {.depth = depth};
    /* PRUNE also runs at depth 0, where e is null. uniqueVertices "path", not "global":
     * with PRUNE, "global" can hide vertices (arangodb#15537); the depth is the least
     * over paths, taken by COLLECT so each (vertex, edge) comes back once. PRUNE still
     * emits the vertex behind a failing edge: FILTER drops it. */
    st = ar_query(a, "traversal",
                  "FOR v, e, p IN 1..@depth ANY @v GRAPH @g "
                  "PRUNE e != null AND (ABS(e.r) < @t OR e.timeframe != @tf OR e.gen != @gen) "
                  "OPTIONS {order: \"bfs\", uniqueVertices: \"path\"} "
                  "FILTER ABS(e.r) >= @t AND e.timeframe == @tf AND e.gen == @gen "
                  "COLLECT s = v.symbol, a = e.a, b = e.b, r = e.r, n = e.n "
                  "AGGREGATE d = MIN(LENGTH(p.edges)) "
                  "RETURN {s: s, d: d, a: a, b: b, r: r, n: n}",
                  bind, take_step, &rs, err);
    if (st == DM_BS_OK)
        st = collect(&rs, nodes, n_nodes, edges, n_edges, err);
    free(rs.v);
    return st;
}

dm_bstatus dm_arango_window_edges(dm_arango *a, const char *timeframe, dm_arango_window *w,
                                  char gen[DM_ARANGO_GEN_LEN + 1], dm_arango_edge **out, size_t *n,
                                  dm_err *err)
{
    *out = NULL;
    *n = 0;
    dm_arango_window after;
    char again[GEN_LEN + 1];
    dm_bstatus st = dm_arango_stored_window_gen(a, timeframe, w, gen, err);
    if (st != DM_BS_OK)
        return st;
    cJSON *bind = cJSON_CreateObject();
    cJSON_AddStringToObject(bind, "tf", timeframe);
    cJSON_AddStringToObject(bind, "gen", gen);
    rows rs = {0};
    st = ar_query(a, "window edges",
                  "FOR e IN " EDGES " FILTER e.timeframe == @tf AND e.gen == @gen "
                  "SORT e.a, e.b RETURN {a: e.a, b: e.b, r: e.r, n: e.n}",
                  bind, take_edge, &rs, err);
    /* A put sweeps the edges of older generations once its window document is written:
     * the same generation afterwards means none of the rows read was being swept. */
    if (st == DM_BS_OK)
        st = ar_stored(a, timeframe, &after, again, err);
    if (st == DM_BS_OK && strcmp(again, gen) != 0)
        st = (dm_fail(err, DM_E_UNAVAILABLE, "",
                      "arangodb: the %s window was rewritten during the read", timeframe),
              DM_BS_TRANSIENT);
    else if (st == DM_BS_MISS) /* the window document vanished mid-read: a drop */
        st = (dm_fail(err, DM_E_UNAVAILABLE, "", "arangodb: the %s window vanished", timeframe),
              DM_BS_TRANSIENT);
    if (st == DM_BS_OK)
        st = to_edges(&rs, NULL, out, n, err);
    free(rs.v);
    return st;
}
