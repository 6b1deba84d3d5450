/* find_patterns and similarity_search: the windows of stored closes that move like a
 * query, scored by Pearson correlation (subjects/README.md has the exact definition). */
#include "serve_priv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/doc.h"

#define FIND_LIMIT_DEFAULT 10
#define FIND_LIMIT_MAX 100
#define SIMILAR_LIMIT_DEFAULT 100
#define SIMILAR_LIMIT_MAX 1000
#define ZONE_MAX 512
#define FLAT_STD 1e-7 /* STUMPY's threshold for a constant window */

typedef struct {
    dm_pattern_request rq;
    double query[DM_PATTERN_W_MAX];
    char symbol[DM_SYMBOL_MAX + 1];
    dm_pattern_vec out;
} patterns_q;

static dm_code req_vector(const cJSON *req, const char *name, patterns_q *q, dm_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, name);
    if (v == NULL)
        return dm_fail(err, DM_E_MISSING_FIELD, name, "%s is required: %d to %d closes", name,
                       DM_PATTERN_W_MIN, DM_PATTERN_W_MAX);
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (n < DM_PATTERN_W_MIN || n > DM_PATTERN_W_MAX)
        return dm_fail(err, DM_E_INVALID_FIELD, name, "%s must be an array of %d to %d numbers%s", name,
                       DM_PATTERN_W_MIN, DM_PATTERN_W_MAX, n < 0 ? "" : n < DM_PATTERN_W_MIN ? " (too short)" : " (too long)");
    const cJSON *it;
    size_t i = 0;
    cJSON_ArrayForEach(it, v)
    {
        if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
            return dm_fail(err, DM_E_INVALID_FIELD, name, "%s[%zu] is not a finite number", name, i);
        q->query[i++] = it->valuedouble;
    }
    q->rq.query = q->query;
    q->rq.w = i;
    double mean = 0, var = 0;
    for (size_t k = 0; k < i; k++)
        mean += q->query[k];
    mean /= (double)i;
    for (size_t k = 0; k < i; k++)
        var += (q->query[k] - mean) * (q->query[k] - mean);
    if (sqrt(var / (double)i) < FLAT_STD)
        return dm_fail(err, DM_E_INVALID_FIELD, name,
                       "%s is flat (its standard deviation is below 1e-7): it has no shape to match", name);
    return DM_OK;
}

static dm_code req_bounds(const cJSON *req, patterns_q *q, dm_err *err)
{
    dm_code c;
    q->rq.start = INT64_MIN;
    q->rq.end = INT64_MAX;
    if ((c = dm_get_time(req, "start_date", &q->rq.start, false, NULL, err)) ||
        (c = dm_get_time(req, "end_date", &q->rq.end, false, NULL, err)))
        return c;
    if (q->rq.end < q->rq.start)
        return dm_fail(err, DM_E_INVALID_FIELD, "end_date",
                       "end_date is before start_date (a window qualifies when it lies wholly in [start, end))");
    return DM_OK;
}

static dm_code patterns_request(const cJSON *req, bool similar, patterns_q *q, dm_err *err)
{
    int64_t limit = similar ? SIMILAR_LIMIT_DEFAULT : FIND_LIMIT_DEFAULT, zone = -1;
    double threshold = 0.8;
    bool has_threshold = false, has_zone = false;
    dm_code c;
    if ((c = req_vector(req, similar ? "query_vector" : "pattern_vector", q, err)) ||
        (c = dm_get_int(req, "limit", &limit, 1, similar ? SIMILAR_LIMIT_MAX : FIND_LIMIT_MAX, false, NULL, err)) ||
        (c = req_tf_or(req, DM_TF_1H, &q->rq.tf, err)) || (c = req_bounds(req, q, err)) ||
        (c = dm_get_int(req, "exclusion_zone", &zone, 0, ZONE_MAX, false, &has_zone, err)))
        return c;
    if (similar && (c = dm_get_num(req, "threshold", &threshold, false, &has_threshold, err)))
        return c;
    if (similar && !(threshold >= -1 && threshold <= 1))
        return dm_fail(err, DM_E_INVALID_FIELD, "threshold", "threshold must be in [-1, 1]");
    if (cJSON_GetObjectItemCaseSensitive(req, "symbol")) {
        if ((c = req_symbol(req, "symbol", q->symbol, err)))
            return c;
        q->rq.symbol = q->symbol;
    }
    q->rq.similar = similar;
    q->rq.threshold = threshold;
    q->rq.limit = (size_t)limit;
    q->rq.zone = has_zone ? (int)zone : (int)((q->rq.w + 3) / 4); /* ceil(W/4) */
    return DM_OK;
}

static dm_bstatus try_patterns(dm_backend *b, void *q, dm_err *err)
{
    patterns_q *p = q;
    p->out.n = 0;
    return b->ops->patterns(b, &p->rq, &p->out, err);
}

static void encode_matches(dm_enc *e, const patterns_q *q)
{
    dm_enc_arr(e, q->out.n);
    for (size_t i = 0; i < q->out.n; i++) {
        const dm_pattern_match *m = &q->out.v[i];
        dm_enc_map(e, 5);
        dm_enc_key(e, "symbol"); dm_enc_str(e, m->symbol);
        dm_enc_key(e, "timeframe"); dm_enc_str(e, dm_tf_name(q->rq.tf));
        dm_enc_key(e, "timestamp"); dm_enc_i64(e, m->timestamp);
        dm_enc_key(e, "start_timestamp"); dm_enc_i64(e, m->start_timestamp);
        dm_enc_key(e, "score"); dm_enc_f64(e, m->score);
        dm_enc_map_end(e);
    }
    dm_enc_arr_end(e);
}

static dm_code op_patterns(dm_serve *s, const cJSON *req, bool similar, dm_reply *out, dm_err *err)
{
    patterns_q *q = calloc(1, sizeof *q);
    if (q == NULL)
        return dm_fail(err, DM_E_INTERNAL, "", "out of memory");
    dm_op op = similar ? DM_OP_SIMILARITY_SEARCH : DM_OP_FIND_PATTERNS;
    serve_walk_result w = {0};
    dm_code c = patterns_request(req, similar, q, err);
    if (c == DM_OK)
        c = serve_walk(s, op, SERVE_OP(patterns), try_patterns, q, NULL, &w, err);
    /* An index that holds no window of an unknown symbol answers nothing: ask PostgreSQL. */
    if (c == DM_OK && q->out.n == 0 && q->rq.symbol && w.served_by != DM_BK_FALLBACK &&
        !serve_candles_known(s, DM_BK_TIMESCALE, q->rq.symbol, q->rq.tf))
        c = DM_E_NOT_FOUND;
    if (c == DM_E_NOT_FOUND)
        dm_fail(err, c, "symbol", "no %s candles stored for %s", dm_tf_name(q->rq.tf), q->rq.symbol);
    if (c == DM_OK) {
        dm_enc e;
        reply_begin_data(&e, out, 3);
        encode_matches(&e, q);
        dm_enc_key(&e, "exact");
        dm_enc_bool(&e, q->out.exact);
        reply_end_data(&e, w.served_by);
    }
    dm_pattern_vec_free(&q->out);
    free(q);
    return c;
}

dm_code op_patterns_find(dm_serve *s, const cJSON *req, dm_reply *out, dm_err *err)
{
    return op_patterns(s, req, false, out, err);
}

dm_code op_patterns_similar(dm_serve *s, const cJSON *req, dm_reply *out, dm_err *err)
{
    return op_patterns(s, req, true, out, err);
}
