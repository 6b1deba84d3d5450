/* The Weaviate adapter's reads: nearest windows (GraphQL Get with nearVector). */
#include "weaviate_priv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- search -------------------------------------------------------------------------- */

/* A time bound of the filter: 1 (the date in out), 0 for no bound, -1 when no window can
 * qualify (a bound past year 9999 on the far side). */
static int date_bound(int64_t v, bool lower, char out[32])
{
    if (v == (lower ? INT64_MIN : INT64_MAX))
        return 0;
    if (dm_weaviate_format_date(v, out))
        return 1;
    return (v < 0) == lower ? 0 : -1;
}

static char *query_text(dm_weaviate *w, const dm_weaviate_query *q, size_t limit, const char *from,
                        const char *to)
{
    char ops[4][128];
    int n = 0;
    if (q->symbol)
        snprintf(ops[n++], sizeof *ops, "{path: [\"symbol\"], operator: Equal, valueText: \"%s\"}",
                 q->symbol);
    if (q->timeframe)
        snprintf(ops[n++], sizeof *ops,
                 "{path: [\"timeframe\"], operator: Equal, valueText: \"%s\"}", q->timeframe);
    if (from)
        snprintf(ops[n++], sizeof *ops,
                 "{path: [\"start_timestamp\"], operator: GreaterThanEqual, valueDate: \"%s\"}",
                 from);
    if (to)
        snprintf(ops[n++], sizeof *ops,
                 "{path: [\"timestamp\"], operator: LessThan, valueDate: \"%s\"}", to);
    dm_buf b;
    dm_buf_init(&b);
    dm_buf_printf(&b, "{ Get { %s(nearVector: {vector: ", w->cls);
    wv_put_vector(&b, w->z, w->window);
    if (q->max_distance >= 0)
        dm_buf_printf(&b, ", distance: %.17g", q->max_distance);
    dm_buf_printf(&b, "}, limit: %zu", limit);
    /* And wants operands; one condition stands alone. */
    if (n == 1)
        dm_buf_printf(&b, ", where: %s", ops[0]);
    for (int i = 0; n > 1 && i < n; i++)
        dm_buf_printf(&b, "%s%s", i ? ", " : ", where: {operator: And, operands: [", ops[i]);
    dm_buf_printf(&b,
                  "%s) { symbol timeframe timestamp start_timestamp _additional { id distance "
                  "} } } }",
                  n > 1 ? "]}" : "");
    if (b.oom)
        dm_buf_free(&b);
    return b.oom ? NULL : b.data;
}

static const char *read_hit(const cJSON *o, const dm_weaviate_query *q, dm_weaviate_hit *h)
{
    const cJSON *add = cJSON_GetObjectItemCaseSensitive(o, "_additional");
    const cJSON *sym = cJSON_GetObjectItemCaseSensitive(o, "symbol");
    const cJSON *tf = cJSON_GetObjectItemCaseSensitive(o, "timeframe");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(add, "id");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(add, "distance");
    if (!cJSON_IsObject(o))
        return "not an object";
    if (!cJSON_IsString(sym) || !wv_safe_symbol(sym->valuestring))
        return "symbol";
    if (!cJSON_IsString(tf) || !wv_safe_timeframe(tf->valuestring))
        return "timeframe";
    if (!dm_weaviate_parse_date(wv_str_or(o, "timestamp", NULL), &h->timestamp) ||
        !dm_weaviate_parse_date(wv_str_or(o, "start_timestamp", NULL), &h->start_timestamp))
        return "timestamp";
    if (!cJSON_IsString(id) || !wv_is_uuid(id->valuestring))
        return "_additional.id";
    /* Cosine distance is within [0, 2]; float32 arithmetic strays a little. */
    double dist = cJSON_IsNumber(d) ? d->valuedouble : NAN;
    if (!(dist >= -1e-3 && dist <= 2 + 1e-3))
        return "_additional.distance";
    if ((q->symbol && strcmp(q->symbol, sym->valuestring) != 0) ||
        (q->timeframe && strcmp(q->timeframe, tf->valuestring) != 0) ||
        h->start_timestamp < q->start || h->timestamp >= q->end ||
        (q->max_distance >= 0 && dist > q->max_distance + 1e-6))
        return "outside the query's filter";
    snprintf(h->symbol, sizeof h->symbol, "%s", sym->valuestring);
    snprintf(h->timeframe, sizeof h->timeframe, "%s", tf->valuestring);
    h->score = 1 - dist;
    return NULL;
}

static dm_bstatus read_hits(const cJSON *arr, const dm_weaviate_query *q, size_t limit,
                            dm_weaviate_hit **out, size_t *n, dm_err *err)
{
    if (!cJSON_IsArray(arr))
        return wv_malformed("search", "no data.Get array for the class", err);
    size_t m = (size_t)cJSON_GetArraySize(arr), i = 0;
    if (m > limit)
        return wv_malformed("search", "more hits than the limit", err);
    if (m == 0)
        return DM_BS_OK;
    dm_weaviate_hit *h = calloc(m, sizeof *h);
    if (h == NULL)
        return wv_oom(err);
    const cJSON *o;
    cJSON_ArrayForEach(o, arr)
    {
        const char *why = read_hit(o, q, &h[i]);
        if (why != NULL) {
            char what[96];
            snprintf(what, sizeof what, "hit %zu: %s", i, why);
            free(h);
            return wv_malformed("search", what, err);
        }
        i++;
    }
    *out = h;
    *n = m;
    return DM_BS_OK;
}

/* Errors in a 200. Query mistakes are PERMANENT; a class not created yet reads like one
 * ("Cannot query field \"C\" on type \"GetObjectsObj\"") but heals once the schema is
 * applied; the rest (shards, timeouts, internal) are worth another try. */
static dm_bstatus graphql_errors(const cJSON *errs, dm_err *err)
{
    static const char *const mistakes[] = {
        "Syntax Error",       "Unknown argument",       "invalid value",
        "Cannot query field", "invalid 'where' filter", "vector lengths don't match",
    };
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(errs, 0), "message");
    if (!cJSON_IsArray(errs) || !cJSON_IsString(m))
        return wv_malformed("search", "errors without a message", err);
    char msg[200];
    wv_clean(m->valuestring, strlen(m->valuestring), msg, sizeof msg);
    bool mistake = false;
    for (size_t i = 0; i < sizeof mistakes / sizeof *mistakes; i++)
        mistake = mistake || strstr(msg, mistakes[i]) != NULL;
    if (strstr(msg, "\"GetObjectsObj\"") != NULL)
        mistake = false;
    dm_fail(err, DM_E_UNAVAILABLE, "", "weaviate search: %d GraphQL error(s), first: %s",
            cJSON_GetArraySize(errs), msg);
    return mistake ? DM_BS_PERMANENT : DM_BS_TRANSIENT;
}

static dm_bstatus search_reply(dm_weaviate *w, const dm_weaviate_query *q, size_t limit,
                               dm_weaviate_hit **out, size_t *n, dm_err *err)
{
    cJSON *r = wv_reply_json(w);
    const cJSON *errs = cJSON_GetObjectItemCaseSensitive(r, "errors");
    const cJSON *get =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "data"), "Get");
    dm_bstatus st;
    if (!cJSON_IsObject(r))
        st = wv_malformed("search", "not a JSON object", err);
    else if (errs != NULL && !cJSON_IsNull(errs)) /* "errors": null in older versions */
        st = graphql_errors(errs, err);
    else
        st = read_hits(cJSON_GetObjectItemCaseSensitive(get, w->cls), q, limit, out, n, err);
    cJSON_Delete(r);
    return st;
}

static dm_bstatus bad_query(const char *field, const char *why, dm_err *err)
{
    return dm_fail(err, DM_E_INVALID_FIELD, field, "weaviate search: %s", why), DM_BS_PERMANENT;
}

dm_bstatus dm_weaviate_search(dm_weaviate *w, const dm_weaviate_query *q, dm_weaviate_hit **out,
                              size_t *n, dm_err *err)
{
    char from[32], to[32];
    *out = NULL;
    *n = 0;
    if (q->w != (size_t)w->window || q->vector == NULL)
        return dm_fail(err, DM_E_INVALID_FIELD, "window",
                       "weaviate search: a query of %zu closes; windows here hold %d", q->w,
                       w->window),
               DM_BS_MISS;
    if (q->symbol && !wv_safe_symbol(q->symbol))
        return bad_query("symbol", "symbol is not 1-24 of [A-Za-z0-9/._-]", err);
    if (q->timeframe && !wv_safe_timeframe(q->timeframe))
        return bad_query("timeframe", "unknown timeframe", err);
    if (!(q->max_distance < 0) && !isfinite(q->max_distance))
        return bad_query("max_distance", "max_distance is not a finite number", err);
    for (size_t i = 0; i < q->w; i++)
        if (!isfinite(q->vector[i]))
            return bad_query("vector", "a close is not a finite number", err);
    if (!dm_weaviate_znorm(q->vector, q->w, w->z))
        return dm_fail(err, DM_E_INVALID_FIELD, "vector", "weaviate search: a flat query window"),
               DM_BS_MISS;
    size_t limit = q->limit < DM_WV_LIMIT_MAX ? q->limit : DM_WV_LIMIT_MAX;
    int lo = date_bound(q->start, true, from), hi = date_bound(q->end, false, to);
    if (limit == 0 || lo < 0 || hi < 0)
        return DM_BS_OK;
    char *text = query_text(w, q, limit, lo ? from : NULL, hi ? to : NULL);
    cJSON *body = text ? cJSON_CreateObject() : NULL;
    bool ok = body && cJSON_AddStringToObject(body, "query", text);
    free(text);
    if (!ok) {
        cJSON_Delete(body);
        return wv_oom(err);
    }
    long status = 0;
    /* A hit is a few hundred bytes: a reply far beyond limit of them is refused unparsed. */
    w->reply_cap =
        limit < (DM_WV_MAX_REPLY - 65536) / 2048 ? 65536 + limit * 2048 : DM_WV_MAX_REPLY;
    dm_bstatus st = wv_post_json(w, "/v1/graphql", body, "search", &status, err);
    if (st != DM_BS_OK)
        return st;
    if (status != 200)
        return wv_http_fail(w, status, "search", err);
    return search_reply(w, q, limit, out, n, err);
}

/* {"data":{"Aggregate":{"<class>":[{"meta":{"count":N}}]}}}: one group without groupBy. */
static dm_bstatus count_reply(dm_weaviate *w, int64_t *count, dm_err *err)
{
    cJSON *r = wv_reply_json(w);
    const cJSON *errs = cJSON_GetObjectItemCaseSensitive(r, "errors");
    const cJSON *agg =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "data"), "Aggregate");
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(agg, w->cls);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(groups, 0), "meta"), "count");
    dm_bstatus st = DM_BS_OK;
    if (!cJSON_IsObject(r))
        st = wv_malformed("count", "not a JSON object", err);
    else if (errs != NULL && !cJSON_IsNull(errs))
        st = graphql_errors(errs, err);
    else if (!cJSON_IsArray(groups) || cJSON_GetArraySize(groups) != 1 || !cJSON_IsNumber(c) ||
             !(c->valuedouble >= 0 && c->valuedouble <= 9007199254740992.0) ||
             c->valuedouble != floor(c->valuedouble))
        st = wv_malformed("count", "no meta.count for the class", err);
    else
        *count = (int64_t)c->valuedouble;
    cJSON_Delete(r);
    return st;
}

dm_bstatus dm_weaviate_count(dm_weaviate *w, const char *symbol, const char *timeframe,
                             int64_t *count, dm_err *err)
{
    *count = 0;
    if (symbol && !wv_safe_symbol(symbol))
        return bad_query("symbol", "symbol is not 1-24 of [A-Za-z0-9/._-]", err);
    if (timeframe && !wv_safe_timeframe(timeframe))
        return bad_query("timeframe", "unknown timeframe", err);
    dm_buf b;
    dm_buf_init(&b);
    dm_buf_printf(&b, "{ Aggregate { %s", w->cls);
    if (symbol && timeframe)
        dm_buf_printf(&b,
                      "(where: {operator: And, operands: [{path: [\"symbol\"], operator: Equal, "
                      "valueText: \"%s\"}, {path: [\"timeframe\"], operator: Equal, valueText: "
                      "\"%s\"}]})",
                      symbol, timeframe);
    else if (symbol || timeframe)
        dm_buf_printf(&b, "(where: {path: [\"%s\"], operator: Equal, valueText: \"%s\"})",
                      symbol ? "symbol" : "timeframe", symbol ? symbol : timeframe);
    dm_buf_puts(&b, " { meta { count } } } }");
    cJSON *body = b.oom ? NULL : cJSON_CreateObject();
    bool ok = body && cJSON_AddStringToObject(body, "query", b.data);
    dm_buf_free(&b);
    if (!ok) {
        cJSON_Delete(body);
        return wv_oom(err);
    }
    long status = 0;
    w->reply_cap = 65536; /* one number */
    dm_bstatus st = wv_post_json(w, "/v1/graphql", body, "count", &status, err);
    if (st != DM_BS_OK)
        return st;
    if (status != 200)
        return wv_http_fail(w, status, "count", err);
    return count_reply(w, count, err);
}
