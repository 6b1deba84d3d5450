/* The ArangoDB adapter's writes: collections, the graph and correlation windows. */
#include "arangodb_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "util/log.h"

static dm_bstatus create(dm_arango *a, const char *api, const char *body, int exists,
                         const char *what, dm_err *err)
{
    char path[160], msg[8];
    snprintf(path, sizeof path, "/_db/%s/_api/%s", a->db, api);
    request r = {"POST", path, body, strlen(body), true, true};
    long status = 0;
    dm_bstatus st = ar_call(a, &r, &status, err);
    if (st != DM_BS_OK || (status >= 200 && status < 300))
        return st;
    if (status == 409 && ar_error_num(a, msg, sizeof msg) == exists)
        return DM_BS_OK; /* an earlier start or another worker made it */
    return ar_http_fail(a, status, what, err);
}

dm_bstatus dm_arango_ensure_graph(dm_arango *a, dm_err *err)
{
    /* 1207 duplicate name, 1925 graph already exists; type 2 documents, 3 edges. */
    dm_bstatus st = create(a, "collection", "{\"name\":\"" SYMBOLS "\",\"type\":2}", 1207,
                           "create collection " SYMBOLS, err);
    if (st == DM_BS_OK)
        st = create(a, "collection", "{\"name\":\"" EDGES "\",\"type\":3}", 1207,
                    "create collection " EDGES, err);
    if (st == DM_BS_OK)
        st = create(a, "collection", "{\"name\":\"" WINDOWS "\",\"type\":2}", 1207,
                    "create collection " WINDOWS, err);
    if (st == DM_BS_OK)
        st = create(a, "gharial",
                    "{\"name\":\"" GRAPH "\",\"edgeDefinitions\":[{\"collection\":\"" EDGES
                    "\",\"from\":[\"" SYMBOLS "\"],\"to\":[\"" SYMBOLS "\"]}]}",
                    1925, "create graph " GRAPH, err);
    return st;
}

/* ---- writes -------------------------------------------------------------------------- */

static bool among(const char *s, const char *const *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, set[i]) == 0)
            return true;
    return false;
}

static dm_bstatus check_put(const dm_arango_window *w, const char *const *symbols, size_t ns,
                            const dm_arango_edge *edges, size_t ne, dm_err *err)
{
    char key[DM_SYMBOL_MAX + 1];
    if (w == NULL || !ar_valid_timeframe(w->timeframe))
        return ar_refuse("timeframe", "timeframe is not one of the fixed names", err);
    if (w->window_start >= w->window_end || w->window_candles <= 0 ||
        (double)w->window_start < -EXACT_INT || (double)w->window_end > EXACT_INT)
        return ar_refuse("window", "window needs start < end and candles > 0", err);
    if (ns > DM_ARANGO_MAX_ROWS || ne > DM_ARANGO_MAX_ROWS || (ns && !symbols) || (ne && !edges))
        return ar_refuse("edges", "more symbols or edges than one window may hold", err);
    for (size_t i = 0; i < ns; i++)
        if (!dm_arango_symbol_key(symbols[i], key))
            return ar_refuse("symbols", "a symbol is not [A-Z0-9]+ with at most one inner '/'",
                             err);
    for (size_t i = 0; i < ne; i++) {
        if (!ar_valid_edge(&edges[i]))
            return ar_refuse("edges", "an edge needs symbols a < b, a finite |r| <= 1 and n >= 0",
                             err);
        if (!among(edges[i].a, symbols, ns) || !among(edges[i].b, symbols, ns))
            return ar_refuse("edges", "an edge names a symbol missing from the symbols", err);
    }
    return DM_BS_OK;
}

/* POST /_api/import of JSON lines. A 201 can still carry refused documents: errors > 0
 * fails with the first of details; fewer stored than sent fails too. */
static dm_bstatus import(dm_arango *a, const char *collection, const dm_buf *docs, size_t n,
                         dm_err *err)
{
    if (docs->oom)
        return dm_fail(err, DM_E_INTERNAL, "", "out of memory"), DM_BS_TRANSIENT;
    char path[200], what[64], msg[240];
    snprintf(path, sizeof path,
             "/_db/%s/_api/import?collection=%s&type=documents&onDuplicate=update&details=true",
             a->db, collection);
    snprintf(what, sizeof what, "import into %s", collection);
    request r = {"POST", path, docs->data, docs->len, true, true};
    long status = 0;
    dm_bstatus st = ar_call(a, &r, &status, err);
    if (st != DM_BS_OK || status != 201)
        return st != DM_BS_OK ? st : ar_http_fail(a, status, what, err);
    cJSON *j = ar_reply_json(a);
    int64_t errors, created, updated;
    if (!ar_json_int(cJSON_GetObjectItemCaseSensitive(j, "errors"), 0, (int64_t)n, &errors) ||
        !ar_json_int(cJSON_GetObjectItemCaseSensitive(j, "created"), 0, (int64_t)n, &created) ||
        !ar_json_int(cJSON_GetObjectItemCaseSensitive(j, "updated"), 0, (int64_t)n, &updated)) {
        st = ar_unreadable(what, "no document counts", err);
    } else if (errors > 0) {
        const cJSON *d = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "details"), 0);
        ar_printable(msg, sizeof msg, cJSON_IsString(d) ? d->valuestring : "no details");
        dm_fail(err, DM_E_UNAVAILABLE, "", "arangodb %s: %lld of %zu documents refused: %s", what,
                (long long)errors, n, msg);
        st = DM_BS_PERMANENT;
    } else if (created + updated != (int64_t)n) {
        dm_fail(err, DM_E_UNAVAILABLE, "", "arangodb %s: %lld of %zu documents stored", what,
                (long long)(created + updated), n);
        st = DM_BS_PERMANENT;
    }
    cJSON_Delete(j);
    return st;
}

static void new_gen(char gen[GEN_LEN + 1])
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
    snprintf(gen, GEN_LEN + 1, "%016llx", (unsigned long long)v);
}

static void edge_docs(dm_buf *b, const dm_arango_window *w, const dm_arango_edge *edges, size_t ne,
                      const char *gen)
{
    char ka[DM_SYMBOL_MAX + 1], kb[DM_SYMBOL_MAX + 1];
    for (size_t i = 0; i < ne; i++) {
        const dm_arango_edge *e = &edges[i];
        dm_arango_symbol_key(e->a, ka);
        dm_arango_symbol_key(e->b, kb);
        dm_buf_printf(b,
                      "{\"_key\":\"%s-%s-%s\",\"_from\":\"" SYMBOLS "/%s\",\"_to\":\"" SYMBOLS
                      "/%s\",\"a\":\"%s\",\"b\":\"%s\",\"r\":%.17g,\"n\":%lld,\"timeframe\":"
                      "\"%s\",\"window_start\":%lld,\"window_end\":%lld,\"window_candles\":%d,"
                      "\"gen\":\"%s\"}\n",
                      w->timeframe, ka, kb, ka, kb, e->a, e->b, e->r, (long long)e->n, w->timeframe,
                      (long long)w->window_start, (long long)w->window_end, w->window_candles, gen);
    }
}

/* Order matters: vertices, edges, then the window (the switch), then the sweep. */
static dm_bstatus write_window(dm_arango *a, const dm_arango_window *w, const char *const *symbols,
                               size_t ns, const dm_arango_edge *edges, size_t ne, dm_buf *b,
                               dm_err *err)
{
    char gen[GEN_LEN + 1], key[DM_SYMBOL_MAX + 1];
    new_gen(gen);
    dm_bstatus st = DM_BS_OK;
    for (size_t i = 0; i < ns; i++) {
        dm_arango_symbol_key(symbols[i], key);
        dm_buf_printf(b, "{\"_key\":\"%s\",\"symbol\":\"%s\"}\n", key, symbols[i]);
    }
    if (ns)
        st = import(a, SYMBOLS, b, ns, err);
    dm_buf_reset(b);
    edge_docs(b, w, edges, ne, gen);
    if (st == DM_BS_OK && ne)
        st = import(a, EDGES, b, ne, err);
    dm_buf_reset(b);
    dm_buf_printf(b,
                  "{\"_key\":\"%s\",\"timeframe\":\"%s\",\"window_start\":%lld,\"window_end\":"
                  "%lld,\"window_candles\":%d,\"gen\":\"%s\"}\n",
                  w->timeframe, w->timeframe, (long long)w->window_start, (long long)w->window_end,
                  w->window_candles, gen);
    if (st == DM_BS_OK)
        st = import(a, WINDOWS, b, 1, err);
    if (st != DM_BS_OK)
        return st;
    cJSON *bind = cJSON_CreateObject();
    cJSON_AddStringToObject(bind, "tf", w->timeframe);
    cJSON_AddStringToObject(bind, "gen", gen);
    return ar_query(a, "stale edge removal",
                    "FOR e IN " EDGES " FILTER e.timeframe == @tf AND e.gen != @gen "
                    "REMOVE e IN " EDGES,
                    bind, NULL, NULL, err);
}

dm_bstatus dm_arango_put_window(dm_arango *a, const dm_arango_window *w, const char *const *symbols,
                                size_t n_symbols, const dm_arango_edge *edges, size_t n_edges,
                                dm_err *err)
{
    dm_bstatus st = check_put(w, symbols, n_symbols, edges, n_edges, err);
    if (st != DM_BS_OK)
        return st;
    dm_arango_window old;
    char gen[GEN_LEN + 1];
    st = ar_stored(a, w->timeframe, &old, gen, err);
    if (st == DM_BS_OK && old.window_end > w->window_end) {
        DM_DEBUG("arangodb", "window %s ending %lld is older than the stored one: ignored",
                 w->timeframe, (long long)w->window_end);
        return DM_BS_OK;
    }
    if (st != DM_BS_OK && st != DM_BS_MISS)
        return st;
    dm_err_clear(err); /* a first window is no error */
    dm_buf b;
    dm_buf_init(&b);
    st = write_window(a, w, symbols, n_symbols, edges, n_edges, &b, err);
    dm_buf_free(&b);
    return st;
}
