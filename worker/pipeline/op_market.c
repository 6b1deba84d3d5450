/* The market-data reads: latest tick, latest candles, history pages, economic events. */
#include "serve_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/doc.h"
#include "codec/models.h"

typedef struct {
    char symbol[DM_SYMBOL_MAX + 1];
    dm_tick tick;
} tick_q;

static dm_bstatus try_latest_tick(dm_backend *b, void *q, dm_err *err)
{
    tick_q *t = q;
    return dm_backend_latest_tick(b, t->symbol, &t->tick, err);
}


dm_code op_latest_tick(dm_serve *s, const cJSON *req, dm_reply *out, dm_err *err)
{
    tick_q q;
    serve_walk_result w = {0};
    dm_code c = req_symbol(req, "symbol", q.symbol, err);
    if (c)
        return c;
    if (!serve_l1_answers(s, DM_OP_GET_LATEST_TICK, try_latest_tick, &q, &w)) {
        serve_fresh_key fk = {.cls = DM_FRESH_TICKS};
        dm_l1_tick_key(q.symbol, fk.key);
        bool lead = serve_flight_begin(s, fk.key);
        c = serve_walk(s, DM_OP_GET_LATEST_TICK, SERVE_OP(latest_tick), try_latest_tick, &q, &fk, &w, err);
        if (c == DM_OK)
            serve_fill_caches(s, &w, &q.tick, NULL, 0);
        serve_flight_end(s, fk.key, lead);
    }
    if (c)
        return c == DM_E_NOT_FOUND ? dm_fail(err, c, "symbol", "no ticks stored for %s", q.symbol) : c;
    dm_enc e;
    reply_begin_data(&e, out, 2);
    dm_tick_encode(&e, &q.tick);
    reply_end_data(&e, w.served_by);
    return DM_OK;
}

typedef struct {
    char symbol[DM_SYMBOL_MAX + 1];
    dm_tf tf;
    size_t limit;
    dm_candle_vec out;
} latest_q;

static dm_bstatus try_latest_candles(dm_backend *b, void *q, dm_err *err)
{
    latest_q *l = q;
    l->out.n = 0;
    return dm_backend_latest_candles(b, l->symbol, l->tf, l->limit, &l->out, err);
}

dm_code op_latest_candles(dm_serve *s, const cJSON *req, dm_reply *out, dm_err *err)
{
    latest_q q = {.limit = DM_LATEST_LIMIT_DEFAULT};
    int64_t limit = DM_LATEST_LIMIT_DEFAULT;
    serve_walk_result w = {0};
    dm_code c;
    if ((c = req_symbol(req, "symbol", q.symbol, err)) || (c = req_tf(req, &q.tf, err)) ||
        (c = dm_get_int(req, "limit", &limit, 1, DM_LATEST_LIMIT_MAX, false, NULL, err)))
        return c;
    q.limit = (size_t)limit;
    if (!serve_l1_answers(s, DM_OP_GET_CANDLES, try_latest_candles, &q, &w)) {
        serve_fresh_key fk = {.cls = DM_FRESH_CANDLES};
        dm_l1_candle_key(q.symbol, q.tf, fk.key);
        bool lead = serve_flight_begin(s, fk.key);
        c = serve_walk(s, DM_OP_GET_CANDLES, SERVE_OP(latest_candles), try_latest_candles, &q, &fk, &w, err);
        if (c == DM_OK)
            serve_fill_caches(s, &w, NULL, q.out.v, q.out.n);
        serve_flight_end(s, fk.key, lead);
    }
    if (c == DM_OK) {
        dm_enc e;
        reply_begin_data(&e, out, 2);
        reply_candles(&e, q.out.v, q.out.n);
        reply_end_data(&e, w.served_by);
    } else if (c == DM_E_NOT_FOUND) {
        dm_fail(err, c, "symbol", "no %s candles stored for %s", dm_tf_name(q.tf), q.symbol);
    }
    dm_candle_vec_free(&q.out);
    return c;
}

typedef struct {
    dm_range_query rq;
    dm_candle_vec out;
} range_q;

static dm_bstatus try_range(dm_backend *b, void *q, dm_err *err)
{
    range_q *r = q;
    r->out.n = 0;
    return dm_backend_candle_range(b, &r->rq, &r->out, err);
}

static dm_code history_cursor(const cJSON *req, const char *symbol, dm_tf tf, int64_t *start,
                              dm_err *err)
{
    char raw[128], sym[DM_SYMBOL_MAX + 1], tfs[8];
    bool present;
    long long last;
    dm_code c = req_cursor(req, raw, sizeof raw, &present, err);
    if (c || !present)
        return c;
    if (sscanf(raw, "c1|%24[^|]|%7[^|]|%lld", sym, tfs, &last) != 3 || strcmp(sym, symbol) != 0 ||
        strcmp(tfs, dm_tf_name(tf)) != 0)
        return dm_fail(err, DM_E_INVALID_FIELD, "cursor",
                       "cursor belongs to another query: pass next_cursor with the same symbol "
                       "and timeframe");
    if (last >= *start) /* a forged cursor may hold the largest value: no +1 past it */
        *start = last < INT64_MAX ? last + 1 : last;
    return DM_OK;
}

dm_code op_history(dm_serve *s, const cJSON *req, dm_reply *out, dm_err *err)
{
    char symbol[DM_SYMBOL_MAX + 1];
    range_q q = {.rq = {.symbol = symbol}};
    size_t page;
    bool has_cursor = cJSON_GetObjectItemCaseSensitive(req, "cursor") != NULL;
    serve_walk_result w = {0};
    dm_code c;
    if ((c = req_symbol(req, "symbol", symbol, err)) || (c = req_tf(req, &q.rq.tf, err)) ||
        (c = req_range(req, &q.rq.start, &q.rq.end, err)) || (c = req_page(req, &page, err)) ||
        (c = history_cursor(req, symbol, q.rq.tf, &q.rq.start, err)))
        return c;
    q.rq.limit = page + 1; /* one more tells whether another page exists */
    c = serve_walk(s, DM_OP_GET_HISTORICAL, SERVE_OP(candle_range), try_range, &q, NULL, &w, err);
    if (c == DM_OK && q.out.n == 0 && !has_cursor && !serve_candles_known(s, w.served_by, symbol, q.rq.tf))
        c = dm_fail(err, DM_E_NOT_FOUND, "symbol", "no %s candles stored for %s",
                    dm_tf_name(q.rq.tf), symbol);
    if (c == DM_E_NOT_FOUND && !err->message[0])
        dm_fail(err, c, "symbol", "no %s candles stored for %s", dm_tf_name(q.rq.tf), symbol);
    if (c == DM_OK) {
        bool more = q.out.n > page;
        size_t n = more ? page : q.out.n;
        char raw[128];
        if (more)
            snprintf(raw, sizeof raw, "c1|%s|%s|%lld", symbol, dm_tf_name(q.rq.tf),
                     (long long)q.out.v[n - 1].ts);
        dm_enc e;
        reply_begin_data(&e, out, 3);
        reply_candles(&e, q.out.v, n);
        reply_cursor(&e, more ? raw : NULL);
        reply_end_data(&e, w.served_by);
    }
    dm_candle_vec_free(&q.out);
    return c;
}

typedef struct {
    dm_event_query eq;
    dm_event_vec out;
} events_q;

static dm_bstatus try_events(dm_backend *b, void *q, dm_err *err)
{
    events_q *e = q;
    e->out.n = 0;
    return dm_backend_events(b, &e->eq, &e->out, err);
}

static dm_code events_filters(const cJSON *req, char *country, char *currency, int *impact,
                              dm_err *err)
{
    bool has_country, has_currency, has_impact;
    char imp[16];
    dm_code c;
    if ((c = dm_get_str(req, "country", country, 3, false, &has_country, err)) ||
        (c = dm_get_str(req, "currency", currency, 4, false, &has_currency, err)) ||
        (c = dm_get_str(req, "impact", imp, sizeof imp, false, &has_impact, err)))
        return c;
    if (has_country && !dm_is_country(country))
        return dm_fail(err, DM_E_INVALID_FIELD, "country",
                       "country must be an ISO 3166 alpha-2 code such as US (EU for the euro area)");
    if (has_currency && !dm_is_currency(currency))
        return dm_fail(err, DM_E_INVALID_FIELD, "currency", "currency must be a code such as USD");
    *impact = -1;
    if (has_impact) {
        dm_impact v;
        if (!dm_impact_parse(imp, &v))
            return dm_fail(err, DM_E_INVALID_FIELD, "impact", "impact must be high, medium or low");
        *impact = (int)v;
    }
    if (!has_country)
        country[0] = '\0';
    if (!has_currency)
        currency[0] = '\0';
    return DM_OK;
}

static dm_code events_cursor(const cJSON *req, events_q *q, char *after_id, dm_err *err)
{
    char raw[256];
    bool present;
    long long ts;
    int off = 0;
    dm_code c = req_cursor(req, raw, sizeof raw, &present, err);
    if (c || !present)
        return c;
    if (sscanf(raw, "e1|%lld|%n", &ts, &off) != 1 || off == 0 || strlen(raw + off) > DM_EVENT_ID_MAX)
        return dm_fail(err, DM_E_INVALID_FIELD, "cursor",
                       "cursor belongs to another query: pass next_cursor back unchanged");
    strcpy(after_id, raw + off);
    q->eq.after_ts = ts;
    q->eq.after_id = after_id;
    return DM_OK;
}

dm_code op_events(dm_serve *s, const cJSON *req, dm_reply *out, dm_err *err)
{
    char country[3], currency[4], after_id[DM_EVENT_ID_MAX + 1];
    events_q q = {.eq = {.impact = -1}};
    size_t page;
    serve_walk_result w = {0};
    dm_code c;
    if ((c = req_range(req, &q.eq.start, &q.eq.end, err)) ||
        (c = events_filters(req, country, currency, &q.eq.impact, err)) ||
        (c = req_page(req, &page, err)) || (c = events_cursor(req, &q, after_id, err)))
        return c;
    q.eq.country = country[0] ? country : NULL;
    q.eq.currency = currency[0] ? currency : NULL;
    q.eq.limit = page + 1;
    c = serve_walk(s, DM_OP_GET_EVENTS, SERVE_OP(events), try_events, &q, NULL, &w, err);
    if (c == DM_E_NOT_FOUND) { /* no source had any: an empty answer, not an error */
        c = DM_OK;
        q.out.n = 0;
        w.served_by = s->st->routing[DM_OP_GET_EVENTS].targets[0];
    }
    if (c == DM_OK) {
        bool more = q.out.n > page;
        size_t n = more ? page : q.out.n;
        char raw[200];
        if (more)
            snprintf(raw, sizeof raw, "e1|%lld|%s", (long long)q.out.v[n - 1].ts, q.out.v[n - 1].event_id);
        dm_enc e;
        reply_begin_data(&e, out, 3);
        dm_enc_arr(&e, n);
        for (size_t i = 0; i < n; i++)
            dm_event_encode(&e, &q.out.v[i]);
        dm_enc_arr_end(&e);
        reply_cursor(&e, more ? raw : NULL);
        reply_end_data(&e, w.served_by);
    }
    dm_event_vec_free(&q.out);
    return c;
}

