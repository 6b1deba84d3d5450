/* Request fields common to the operations, validated as contract v1 says. */
#include "serve_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/doc.h"
#include "util/b64.h"

/* ---- request fields ----------------------------------------------------------------- */

dm_code req_symbol(const cJSON *req, const char *name, char *symbol, dm_err *err)
{
    char raw[64], token[DM_TOKEN_MAX + 1];
    dm_code c = dm_get_str(req, name, raw, sizeof raw, true, NULL, err);
    return c ? c : dm_symbol_normalize(raw, symbol, token, name, err);
}

dm_code req_tf(const cJSON *req, dm_tf *tf, dm_err *err)
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

dm_code req_range(const cJSON *req, int64_t *start, int64_t *end, dm_err *err)
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

dm_code req_page(const cJSON *req, size_t *page, dm_err *err)
{
    int64_t v = DM_PAGE_DEFAULT;
    dm_code c = dm_get_int(req, "page_size", &v, 1, DM_PAGE_MAX, false, NULL, err);
    *page = (size_t)v;
    return c;
}

/* Cursors carry the last key returned; any source can continue from it. */
dm_code req_cursor(const cJSON *req, char *raw, size_t cap, bool *present, dm_err *err)
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


dm_code req_only(const cJSON *req, const char *const *allowed, dm_err *err)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, req) {
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], it->string) != 0)
            i++;
        if (allowed[i] == NULL) {
            char known[256];
            size_t n = 0;
            for (size_t k = 0; allowed[k] && n < sizeof known; k++)
                n += (size_t)snprintf(known + n, sizeof known - n, "%s%s", k ? ", " : "", allowed[k]);
            return dm_fail(err, DM_E_INVALID_FIELD, it->string, "unknown field '%.60s' (this request takes: %s)",
                           it->string, known);
        }
    }
    return DM_OK;
}

dm_code req_tf_or(const cJSON *req, dm_tf dflt, dm_tf *tf, dm_err *err)
{
    if (cJSON_GetObjectItemCaseSensitive(req, "timeframe") == NULL) {
        *tf = dflt;
        return DM_OK;
    }
    return req_tf(req, tf, err);
}
