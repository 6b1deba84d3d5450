/* The Weaviate adapter's writes: the class and the windows. */
#include "weaviate_priv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

/* The properties of the class, in the order they are created and checked. */
static const struct {
    const char *name, *type;
    bool field; /* text tokenized as one token: "EUR/USD" stays itself */
} PROPS[] = {
    {"symbol", "text", true},
    {"timeframe", "text", true},
    {"timestamp", "date", false},
    {"start_timestamp", "date", false},
};

/* ---- schema -------------------------------------------------------------------------- */

static cJSON *class_json(const dm_weaviate *w)
{
    cJSON *c = cJSON_CreateObject(), *vic = NULL, *props = NULL;
    bool ok = c && cJSON_AddStringToObject(c, "class", w->cls) &&
              cJSON_AddStringToObject(c, "vectorizer", "none") &&
              cJSON_AddStringToObject(c, "vectorIndexType", w->index_type) &&
              (vic = cJSON_AddObjectToObject(c, "vectorIndexConfig")) &&
              cJSON_AddStringToObject(vic, "distance", "cosine");
    /* Pinned rather than left to the server version's defaults (64 before 1.26). */
    if (ok && strcmp(w->index_type, "hnsw") == 0)
        ok = cJSON_AddNumberToObject(vic, "maxConnections", 32) &&
             cJSON_AddNumberToObject(vic, "efConstruction", 128);
    ok = ok && (props = cJSON_AddArrayToObject(c, "properties"));
    for (size_t i = 0; ok && i < sizeof PROPS / sizeof *PROPS; i++) {
        cJSON *p = cJSON_CreateObject(), *types = NULL;
        ok = p && cJSON_AddItemToArray(props, p) &&
             cJSON_AddStringToObject(p, "name", PROPS[i].name) &&
             (types = cJSON_AddArrayToObject(p, "dataType")) &&
             cJSON_AddItemToArray(types, cJSON_CreateString(PROPS[i].type)) &&
             (!PROPS[i].field || cJSON_AddStringToObject(p, "tokenization", "field"));
    }
    if (!ok)
        cJSON_Delete(c);
    return ok ? c : NULL;
}

/* The first way an existing class differs from ours, into diff ("" when none). Absent
 * settings are the server's defaults: hnsw, cosine, word tokenization. */
static void class_diff(const dm_weaviate *w, const cJSON *c, char *diff, size_t cap)
{
    const char *idx = wv_str_or(c, "vectorIndexType", "hnsw");
    const char *dist =
        wv_str_or(cJSON_GetObjectItemCaseSensitive(c, "vectorIndexConfig"), "distance", "cosine");
    diff[0] = '\0';
    if (strcmp(idx, w->index_type) != 0) {
        snprintf(diff, cap, "vectorIndexType %.20s, not %s", idx, w->index_type);
        return;
    }
    if (strcmp(dist, "cosine") != 0) {
        snprintf(diff, cap, "distance %.20s, not cosine", dist);
        return;
    }
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(c, "properties"), *p;
    for (size_t i = 0; i < sizeof PROPS / sizeof *PROPS; i++) {
        const cJSON *found = NULL;
        cJSON_ArrayForEach(p, props)
        {
            if (strcmp(wv_str_or(p, "name", ""), PROPS[i].name) == 0)
                found = p;
        }
        const cJSON *t = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(found, "dataType"), 0);
        const char *type = cJSON_IsString(t) ? t->valuestring : "(none)";
        const char *tok = wv_str_or(found, "tokenization", "word");
        if (found == NULL)
            snprintf(diff, cap, "no property %s", PROPS[i].name);
        else if (strcmp(type, PROPS[i].type) != 0)
            snprintf(diff, cap, "property %s of type %.20s, not %s", PROPS[i].name, type,
                     PROPS[i].type);
        else if (PROPS[i].field && strcmp(tok, "field") != 0)
            snprintf(diff, cap, "property %s tokenized %.20s, not field", PROPS[i].name, tok);
        if (diff[0])
            return;
    }
}

static dm_bstatus check_class(dm_weaviate *w, dm_err *err)
{
    char path[128], diff[160];
    long status = 0;
    snprintf(path, sizeof path, "/v1/schema/%s", w->cls);
    dm_bstatus st = wv_perform(w, path, NULL, "schema check", &status, err);
    if (st != DM_BS_OK)
        return st;
    if (status != 200)
        return wv_http_fail(w, status, "schema check", err);
    cJSON *c = wv_reply_json(w);
    if (!cJSON_IsObject(c)) {
        cJSON_Delete(c);
        return wv_malformed("schema check", "not a class definition", err);
    }
    class_diff(w, c, diff, sizeof diff);
    cJSON_Delete(c);
    if (diff[0] == '\0')
        return DM_BS_OK;
    return dm_fail(err, DM_E_INVALID_FIELD, "class_name",
                   "weaviate class %s exists with %s: migrate or drop it, or configure "
                   "another class name",
                   w->cls, diff),
           DM_BS_PERMANENT;
}

dm_bstatus dm_weaviate_ensure_class(dm_weaviate *w, dm_err *err)
{
    long status = 0;
    cJSON *c = class_json(w);
    if (c == NULL)
        return wv_oom(err);
    dm_bstatus st = wv_post_json(w, "/v1/schema", c, "class creation", &status, err);
    if (st != DM_BS_OK || status == 200)
        return st;
    char msg[160];
    wv_error_text(w, msg, sizeof msg);
    /* "class name \"X\" already exists" (1.2x+), "Name 'X' already used as a name for an
     * Object class" (older). */
    if (status == 422 && (strstr(msg, "already exists") || strstr(msg, "already used")))
        return check_class(w, err);
    return wv_http_fail(w, status, "class creation", err);
}

/* ---- windows ------------------------------------------------------------------------- */

static dm_bstatus bad_window(size_t i, const char *field, const char *why, dm_err *err)
{
    return dm_fail(err, DM_E_INVALID_FIELD, field, "weaviate windows: window %zu: %s", i, why),
           DM_BS_PERMANENT;
}

static dm_bstatus check_windows(const dm_weaviate *w, const dm_pattern_window *win, size_t n,
                                dm_err *err)
{
    char date[32];
    for (size_t i = 0; i < n; i++) {
        const dm_pattern_window *x = &win[i];
        if (!wv_safe_symbol(x->symbol))
            return bad_window(i, "symbol", "symbol is not 1-24 of [A-Za-z0-9/._-]", err);
        if (!wv_safe_timeframe(x->timeframe))
            return bad_window(i, "timeframe", "unknown timeframe", err);
        if (!dm_weaviate_format_date(x->timestamp, date) ||
            !dm_weaviate_format_date(x->start_timestamp, date) || x->start_timestamp > x->timestamp)
            return bad_window(i, "timestamp", "times outside years 1-9999 or start after end", err);
        if (x->closes == NULL)
            return bad_window(i, "closes", "no closes", err);
        for (int k = 0; k < w->window; k++)
            if (!isfinite(x->closes[k]))
                return bad_window(i, "closes", "a close is not a finite number", err);
    }
    return DM_BS_OK;
}

static bool add_window(dm_weaviate *w, cJSON *objects, const dm_pattern_window *x)
{
    char id[37], name[96], ts[32], start[32];
    snprintf(name, sizeof name, "%s|%s|%lld", x->symbol, x->timeframe, (long long)x->timestamp);
    dm_weaviate_format_date(x->timestamp, ts);
    dm_weaviate_format_date(x->start_timestamp, start);
    dm_buf_reset(&w->target);
    wv_put_vector(&w->target, w->z, w->window);
    cJSON *o = cJSON_CreateObject(), *p = NULL;
    return !w->target.oom && o && cJSON_AddItemToArray(objects, o) && dm_weaviate_uuid5(name, id) &&
           cJSON_AddStringToObject(o, "class", w->cls) && cJSON_AddStringToObject(o, "id", id) &&
           (p = cJSON_AddObjectToObject(o, "properties")) &&
           cJSON_AddStringToObject(p, "symbol", x->symbol) &&
           cJSON_AddStringToObject(p, "timeframe", x->timeframe) &&
           cJSON_AddStringToObject(p, "timestamp", ts) &&
           cJSON_AddStringToObject(p, "start_timestamp", start) &&
           cJSON_AddRawToObject(o, "vector", w->target.data);
}

/* The body for the next at most DM_WV_BATCH_MAX non-flat windows from *i on; *k of them. */
static cJSON *next_batch(dm_weaviate *w, const dm_pattern_window *win, size_t n, size_t *i,
                         size_t *k)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *objects = root ? cJSON_AddArrayToObject(root, "objects") : NULL;
    bool ok = objects != NULL;
    for (*k = 0; ok && *i < n && *k < DM_WV_BATCH_MAX; (*i)++) {
        if (!dm_weaviate_znorm(win[*i].closes, (size_t)w->window, w->z))
            continue; /* flat: no shape to compare */
        ok = add_window(w, objects, &win[*i]);
        (*k)++;
    }
    if (!ok)
        cJSON_Delete(root);
    return ok ? root : NULL;
}

/* A 200 carries one element per object, each with result.errors.error[] when that object
 * was not stored. */
static dm_bstatus batch_result(const dm_weaviate *w, size_t k, dm_err *err)
{
    cJSON *r = wv_reply_json(w), *e;
    if (!cJSON_IsArray(r) || (size_t)cJSON_GetArraySize(r) != k) {
        cJSON_Delete(r);
        return wv_malformed("batch", "not one result per object", err);
    }
    size_t failed = 0;
    char first[160] = "no message";
    cJSON_ArrayForEach(e, r)
    {
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(e, "result");
        const cJSON *errs = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(res, "errors"), "error");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(errs, 0), "message");
        if (cJSON_IsObject(e) && cJSON_GetArraySize(errs) == 0 &&
            strcmp(wv_str_or(res, "status", ""), "FAILED") != 0)
            continue;
        if (failed++ == 0 && cJSON_IsString(m))
            wv_clean(m->valuestring, strlen(m->valuestring), first, sizeof first);
    }
    cJSON_Delete(r);
    if (failed == 0)
        return DM_BS_OK;
    return dm_fail(err, DM_E_UNAVAILABLE, "",
                   "weaviate batch: %zu of %zu objects not stored, first: %s", failed, k, first),
           DM_BS_TRANSIENT;
}

dm_bstatus dm_weaviate_put_windows(dm_weaviate *w, const dm_pattern_window *win, size_t n,
                                   dm_err *err)
{
    if (n > 0 && win == NULL)
        return bad_window(0, "windows", "no windows", err);
    dm_bstatus st = check_windows(w, win, n, err);
    size_t i = 0, stored = 0;
    while (st == DM_BS_OK && i < n) {
        size_t k = 0;
        long status = 0;
        cJSON *body = next_batch(w, win, n, &i, &k);
        if (body == NULL)
            return wv_oom(err);
        if (k == 0) {
            cJSON_Delete(body);
            break;
        }
        st = wv_post_json(w, "/v1/batch/objects", body, "batch", &status, err);
        if (st == DM_BS_OK)
            st = status == 200 ? batch_result(w, k, err) : wv_http_fail(w, status, "batch", err);
        stored += k;
    }
    if (st == DM_BS_OK && stored < n)
        DM_DEBUG("weaviate", "%zu of %zu windows flat, not stored", n - stored, n);
    return st;
}
