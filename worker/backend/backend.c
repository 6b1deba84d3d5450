#include "backend.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

dm_code dm_bstatus_code(dm_bstatus st)
{
    switch (st) {
    case DM_BS_OK: return DM_OK;
    case DM_BS_MISS: return DM_E_NOT_FOUND;
    case DM_BS_TRANSIENT: return DM_E_UNAVAILABLE;
    case DM_BS_PERMANENT: return DM_E_INVALID_FIELD;
    }
    return DM_E_UNAVAILABLE; /* not a status: nothing to rely on, so "try again later" */
}

dm_bstatus dm_bfail_at(const char *file, int line, dm_err *err, dm_bstatus st, const char *field,
                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dm_vfail_at(file, line, err, dm_bstatus_code(st), field, fmt, ap);
    va_end(ap);
    return st;
}

dm_bstatus dm_brejudge(dm_err *err, dm_bstatus st)
{
    if (err)
        err->code = dm_bstatus_code(st);
    return st;
}

dm_bstatus dm_backend_not_offered(const dm_backend *b, const char *op, dm_err *err)
{
    return dm_bfail(err, DM_BS_PERMANENT, "", "%s does not offer %s", dm_backend_label(b), op);
}

static void *grow(void *v, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return v;
    size_t c = *cap ? *cap * 2 : 64;
    void *p = realloc(v, c * elem);
    if (p)
        *cap = c;
    return p;
}

dm_candle *dm_candle_vec_push(dm_candle_vec *vec)
{
    dm_candle *p = grow(vec->v, &vec->cap, vec->n, sizeof *vec->v);
    if (p == NULL)
        return NULL;
    vec->v = p;
    return &vec->v[vec->n++];
}

dm_event *dm_event_vec_push(dm_event_vec *vec)
{
    dm_event *p = grow(vec->v, &vec->cap, vec->n, sizeof *vec->v);
    if (p == NULL)
        return NULL;
    vec->v = p;
    return &vec->v[vec->n++];
}

void dm_candle_vec_free(dm_candle_vec *vec)
{
    free(vec->v);
    vec->v = NULL;
    vec->n = vec->cap = 0;
}

void dm_event_vec_free(dm_event_vec *vec)
{
    free(vec->v);
    vec->v = NULL;
    vec->n = vec->cap = 0;
}

dm_agg_row *dm_agg_vec_push(dm_agg_vec *vec)
{
    dm_agg_row *p = grow(vec->v, &vec->cap, vec->n, sizeof *vec->v);
    if (p == NULL)
        return NULL;
    vec->v = p;
    return &vec->v[vec->n++];
}

void dm_agg_vec_free(dm_agg_vec *vec)
{
    free(vec->v);
    vec->v = NULL;
    vec->n = vec->cap = 0;
}

const char *dm_period_name(dm_period p)
{
    static const char *const names[] = {"1d", "1w", "1mo"};
    return names[p];
}

bool dm_period_parse(const char *s, dm_period *out)
{
    static const char *const names[] = {"1d", "1w", "1mo"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (dm_period)i;
            return true;
        }
    }
    return false;
}

/* ---- libcurl, shared by the HTTP adapters (ClickHouse, Weaviate, ArangoDB) ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_cleanup_at_exit(void)
{
    curl_global_cleanup();
}

static void curl_init_once(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK)
        atexit(curl_cleanup_at_exit);
}

void dm_backend_curl_init(void)
{
    pthread_once(&curl_once, curl_init_once);
}

dm_pattern_match *dm_pattern_vec_push(dm_pattern_vec *vec)
{
    dm_pattern_match *p = grow(vec->v, &vec->cap, vec->n, sizeof *vec->v);
    if (p == NULL)
        return NULL;
    vec->v = p;
    return memset(&vec->v[vec->n++], 0, sizeof *p);
}

void dm_pattern_vec_free(dm_pattern_vec *vec)
{
    free(vec->v);
    vec->v = NULL;
    vec->n = vec->cap = 0;
}

dm_corr_entry *dm_corr_vec_push(dm_corr_vec *vec)
{
    dm_corr_entry *p = grow(vec->v, &vec->cap, vec->n, sizeof *vec->v);
    if (p == NULL)
        return NULL;
    vec->v = p;
    return memset(&vec->v[vec->n++], 0, sizeof *p);
}

void dm_corr_vec_free(dm_corr_vec *vec)
{
    free(vec->v);
    vec->v = NULL;
    vec->n = vec->cap = 0;
}

void dm_graph_answer_free(dm_graph_answer *g)
{
    free(g->nodes);
    free(g->edges);
    free(g->mst);
    free(g->cluster_symbols);
    free(g->cluster_len);
    memset(g, 0, sizeof *g);
}
