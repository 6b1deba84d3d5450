#include "serve_priv.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/doc.h"
#include "codec/pb.h"
#include "obs/metrics.h"

dm_serve *dm_serve_create(const dm_serve_config *cfg)
{
    dm_serve *s = calloc(1, sizeof *s);
    if (s) {
        s->cfg = *cfg;
        s->started_ms = dm_now_ms();
    }
    return s;
}

void dm_serve_destroy(dm_serve *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < DM_BK_COUNT; i++)
        dm_backend_destroy(s->cfg.backends[i]);
    free(s);
}

/* ---- dispatch ----------------------------------------------------------------------- */

/* Each operation with the request members it knows: contract v1 requests are strict. */
static const char *const F_TICK[] = {"symbol", NULL};
static const char *const F_LATEST[] = {"symbol", "timeframe", "limit", NULL};
static const char *const F_HISTORY[] = {"symbol", "timeframe", "start_date", "end_date",
                                        "page_size", "cursor", NULL};
static const char *const F_EVENTS[] = {"start_date", "end_date", "country", "currency",
                                       "impact", "page_size", "cursor", NULL};
static const char *const F_AGG[] = {"symbol", "timeframe", "period", "start_date", "end_date", NULL};
static const char *const F_FIND[] = {"pattern_vector", "limit", "symbol", "timeframe", "start_date",
                                     "end_date", "exclusion_zone", NULL};
static const char *const F_SIMILAR[] = {"query_vector", "threshold", "limit", "symbol", "timeframe",
                                        "start_date", "end_date", "exclusion_zone", NULL};
static const char *const F_CORR[] = {"symbol", "threshold", "timeframe", "end_date", "window_candles", NULL};
static const char *const F_GRAPH[] = {"start_symbol", "depth", "threshold", "timeframe", "end_date",
                                      "window_candles", NULL};

static const struct {
    const char *subject;
    dm_op op;
    serve_op_fn fn;
    const char *const *fields;
} ROUTES[] = {
    {DM_SUBJ_TICK_LATEST, DM_OP_GET_LATEST_TICK, op_latest_tick, F_TICK},
    {DM_SUBJ_CANDLES_LATEST, DM_OP_GET_CANDLES, op_latest_candles, F_LATEST},
    {DM_SUBJ_CANDLES_HISTORY, DM_OP_GET_HISTORICAL, op_history, F_HISTORY},
    {DM_SUBJ_EVENTS, DM_OP_GET_EVENTS, op_events, F_EVENTS},
    {DM_SUBJ_AGGREGATES, DM_OP_COMPUTE_AGGREGATES, op_aggregates, F_AGG},
    {DM_SUBJ_PATTERNS_FIND, DM_OP_FIND_PATTERNS, op_patterns_find, F_FIND},
    {DM_SUBJ_PATTERNS_SIMILAR, DM_OP_SIMILARITY_SEARCH, op_patterns_similar, F_SIMILAR},
    {DM_SUBJ_CORRELATIONS, DM_OP_GET_CORRELATIONS, op_correlations, F_CORR},
    {DM_SUBJ_GRAPH, DM_OP_GRAPH_ANALYSIS, op_graph, F_GRAPH},
};

static void handle(dm_serve *s, const char *subject, const char *data, size_t len,
                   const char *content_type, const char *accept, dm_reply *out);

/* Edit distance, capped: a typo is a few edits away, anything else is not a typo. */
static size_t edits(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[64];
    if (la >= 63 || lb >= 63)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            best = up + 1 < best ? up + 1 : best;
            best = row[j - 1] + 1 < best ? row[j - 1] + 1 : best;
            diag = up;
            row[j] = best;
        }
    }
    return row[lb];
}

/* The served subject a mistyped one most likely meant (at most 3 edits away), or NULL. */
static const char *nearest_subject(const char *subject)
{
    const char *best = NULL;
    size_t best_d = 4;
    for (size_t i = 0; i <= sizeof ROUTES / sizeof *ROUTES + 1; i++) {
        const char *cand = i < sizeof ROUTES / sizeof *ROUTES ? ROUTES[i].subject
                           : i == sizeof ROUTES / sizeof *ROUTES ? DM_SUBJ_HEALTH : DM_SUBJ_METRICS;
        size_t d = edits(subject, cand);
        if (d < best_d) {
            best_d = d;
            best = cand;
        }
    }
    return best;
}

void dm_serve_handle(dm_serve *s, const char *subject, const char *data, size_t len,
                     const char *content_type, dm_reply *out)
{
    dm_serve_handle_accept(s, subject, data, len, content_type, NULL, out);
}

void dm_serve_handle_accept(dm_serve *s, const char *subject, const char *data, size_t len,
                            const char *content_type, const char *accept, dm_reply *out)
{
    s->st = dm_strategy_acquire(s->cfg.strategies);
    out->error[0] = '\0';
    handle(s, subject, data, len, content_type, accept, out);
    serve_give_back_all(s);
    dm_strategy_release(s->cfg.strategies, s->st);
    s->st = NULL;
}

static dm_code parse_request(const char *subject, const char *data, size_t len, dm_encoding enc,
                             cJSON **req, dm_err *err)
{
    if (len == 0)
        return (*req = cJSON_CreateObject()) ? DM_OK : dm_fail(err, DM_E_INTERNAL, "", "out of memory");
    dm_code c = dm_pb_parse_body(data, len, enc, DM_REQUEST_MAX_BYTES, dm_pb_request_type(subject), true,
                                 req, err);
    if (c == DM_OK && !cJSON_IsObject(*req))
        c = dm_fail(err, DM_E_INVALID_FIELD, "", "a request is a map of fields");
    return c;
}

/* One data request, answered into out in out->enc (JSON or msgpack); its status. */
static int answer(dm_serve *s, size_t route, const char *data, size_t len, dm_encoding req_enc,
                  dm_reply *out, dm_err *err)
{
    cJSON *req = NULL;
    dm_code c = parse_request(ROUTES[route].subject, data, len, req_enc, &req, err);
    if (c == DM_OK)
        c = req_only(req, ROUTES[route].fields, err);
    if (c == DM_OK)
        c = ROUTES[route].fn(s, req, out, err);
    cJSON_Delete(req);
    if (c == DM_OK && out->body.oom)
        c = dm_fail(err, DM_E_INTERNAL, "", "out of memory while encoding the reply");
    if (c != DM_OK)
        reply_error(out, err);
    return c == DM_OK ? 200 : dm_code_status(c);
}

static void handle(dm_serve *s, const char *subject, const char *data, size_t len,
                   const char *content_type, const char *accept, dm_reply *out)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    dm_encoding req_enc = dm_doc_detect(content_type, data, len);
    dm_encoding want = dm_doc_accept(accept, req_enc);
    bool pb = want == DM_ENC_PROTOBUF;
    /* The operations write JSON or msgpack as they go; protobuf is their msgpack converted. */
    out->enc = pb ? DM_ENC_MSGPACK : want;
    dm_err err = {0};
    bool health = strcmp(subject, DM_SUBJ_HEALTH) == 0;
    if (health || strcmp(subject, DM_SUBJ_METRICS) == 0) {
        if (pb)
            out->enc = DM_ENC_JSON; /* no protobuf form: the contract lets them stay JSON */
        if (health)
            op_health(s, out);
        else
            op_metrics(s, out);
        return;
    }
    for (size_t i = 0; i < sizeof ROUTES / sizeof *ROUTES; i++) {
        if (strcmp(subject, ROUTES[i].subject) != 0)
            continue;
        int status = answer(s, i, data, len, req_enc, out, &err);
        if (pb && reply_as_protobuf(out, subject, &err) != DM_OK)
            status = 500;
        dm_metrics_op(ROUTES[i].op, serve_elapsed_ms(&t0), status, err.message);
        return;
    }
    const char *meant = nearest_subject(subject);
    dm_fail(&err, DM_E_NOT_FOUND, "subject", "%.80s is not a subject of this service%s%s%s (see subjects/README.md)",
            subject, meant ? "; did you mean " : "", meant ? meant : "", meant ? "?" : "");
    reply_error(out, &err);
    if (pb)
        reply_as_protobuf(out, subject, &err);
}
