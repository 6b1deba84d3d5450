/* The PostgreSQL adapter's reads: latest tick and candles, candle ranges, events,
 * aggregates (statements prepared with the others in timescale.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timescale_priv.h"

static void str(char *dst, size_t cap, const PGresult *r, int row, int col)
{
    snprintf(dst, cap, "%s", PQgetvalue(r, row, col));
}

dm_bstatus ts_latest_tick(dm_backend *b, const char *symbol, dm_tick *out, dm_err *err)
{
    PGresult *r = NULL;
    const char *vals[1] = {symbol};
    dm_bstatus st = ts_exec_prepared((timescale *)b, "latest_tick", 1, vals, &r, err);
    if (st != DM_BS_OK)
        return st;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return DM_BS_MISS;
    }
    memset(out, 0, sizeof *out);
    str(out->symbol, sizeof out->symbol, r, 0, 0);
    out->ts = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    out->bid = ts_num(r, 0, 2);
    out->ask = ts_num(r, 0, 3);
    out->spread = ts_num(r, 0, 4);
    out->has_volume = !PQgetisnull(r, 0, 5);
    out->volume = out->has_volume ? ts_num(r, 0, 5) : 0;
    str(out->source, sizeof out->source, r, 0, 6);
    PQclear(r);
    return DM_BS_OK;
}

static dm_bstatus read_candles(const PGresult *r, bool reverse, dm_candle_vec *out, dm_err *err)
{
    int n = PQntuples(r);
    for (int k = 0; k < n; k++) {
        int i = reverse ? n - 1 - k : k;
        dm_candle *c = dm_candle_vec_push(out);
        if (c == NULL)
            return dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
        memset(c, 0, sizeof *c);
        str(c->symbol, sizeof c->symbol, r, i, 0);
        dm_tf_parse(PQgetvalue(r, i, 1), &c->tf);
        c->ts = strtoll(PQgetvalue(r, i, 2), NULL, 10);
        c->open = ts_num(r, i, 3);
        c->high = ts_num(r, i, 4);
        c->low = ts_num(r, i, 5);
        c->close = ts_num(r, i, 6);
        c->has_volume = !PQgetisnull(r, i, 7);
        c->volume = c->has_volume ? ts_num(r, i, 7) : 0;
        str(c->source, sizeof c->source, r, i, 8);
    }
    return DM_BS_OK;
}

dm_bstatus ts_latest_candles(dm_backend *b, const char *symbol, dm_tf tf, size_t limit,
                                    dm_candle_vec *out, dm_err *err)
{
    char lim[24];
    snprintf(lim, sizeof lim, "%zu", limit);
    const char *vals[3] = {symbol, dm_tf_name(tf), lim};
    PGresult *r = NULL;
    dm_bstatus st = ts_exec_prepared((timescale *)b, "latest_candles", 3, vals, &r, err);
    if (st != DM_BS_OK)
        return st;
    st = PQntuples(r) == 0 ? DM_BS_MISS : read_candles(r, true, out, err);
    PQclear(r);
    return st;
}

dm_bstatus ts_candle_range(dm_backend *b, const dm_range_query *q, dm_candle_vec *out,
                                  dm_err *err)
{
    char start[24], end[24], lim[24];
    snprintf(start, sizeof start, "%lld", (long long)q->start);
    snprintf(end, sizeof end, "%lld", (long long)q->end);
    snprintf(lim, sizeof lim, "%zu", q->limit);
    const char *vals[5] = {q->symbol, dm_tf_name(q->tf), start, end, lim};
    PGresult *r = NULL;
    dm_bstatus st = ts_exec_prepared((timescale *)b, "candle_range", 5, vals, &r, err);
    if (st != DM_BS_OK)
        return st;
    st = read_candles(r, false, out, err);
    PQclear(r);
    return st;
}

/* Parses a text[] of currency codes as PostgreSQL prints it: {USD,EUR}. */
static void parse_currencies(const char *s, dm_event *e)
{
    e->n_currency = 0;
    if (*s == '{')
        s++;
    while (*s && *s != '}' && e->n_currency < DM_CURRENCIES_MAX) {
        size_t n = strcspn(s, ",}");
        if (n == 3) {
            memcpy(e->currency_impact[e->n_currency], s, 3);
            e->currency_impact[e->n_currency++][3] = '\0';
        }
        s += n;
        if (*s == ',')
            s++;
    }
}

dm_bstatus ts_events(dm_backend *b, const dm_event_query *q, dm_event_vec *out,
                            dm_err *err)
{
    char start[24], end[24], after[24], lim[24];
    snprintf(start, sizeof start, "%lld", (long long)q->start);
    snprintf(end, sizeof end, "%lld", (long long)q->end);
    snprintf(after, sizeof after, "%lld", (long long)q->after_ts);
    snprintf(lim, sizeof lim, "%zu", q->limit);
    const char *vals[8] = {start, end, q->country, q->currency,
                           q->impact >= 0 ? dm_impact_name((dm_impact)q->impact) : NULL,
                           q->after_id, after, lim};
    PGresult *r = NULL;
    dm_bstatus st = ts_exec_prepared((timescale *)b, "events", 8, vals, &r, err);
    if (st != DM_BS_OK)
        return st;
    for (int i = 0; i < PQntuples(r); i++) {
        dm_event *e = dm_event_vec_push(out);
        if (e == NULL) {
            PQclear(r);
            return dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
        }
        memset(e, 0, sizeof *e);
        str(e->event_id, sizeof e->event_id, r, i, 0);
        e->ts = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        str(e->country, sizeof e->country, r, i, 2);
        str(e->event_name, sizeof e->event_name, r, i, 3);
        if ((e->has_actual = !PQgetisnull(r, i, 4)))
            e->actual = ts_num(r, i, 4);
        if ((e->has_forecast = !PQgetisnull(r, i, 5)))
            e->forecast = ts_num(r, i, 5);
        if ((e->has_previous = !PQgetisnull(r, i, 6)))
            e->previous = ts_num(r, i, 6);
        dm_impact_parse(PQgetvalue(r, i, 7), &e->impact);
        parse_currencies(PQgetvalue(r, i, 8), e);
    }
    PQclear(r);
    return DM_BS_OK;
}

dm_bstatus ts_aggregates(dm_backend *b, const dm_agg_query *q, dm_agg_vec *out, dm_err *err)
{
    static const char *const trunc[] = {"day", "week", "month"};
    char start[24], end[24];
    snprintf(start, sizeof start, "%lld", (long long)q->start);
    snprintf(end, sizeof end, "%lld", (long long)q->end);
    const char *vals[5] = {q->symbol, dm_tf_name(q->tf), trunc[q->period], start, end};
    PGresult *r = NULL;
    dm_bstatus st = ts_exec_prepared((timescale *)b, "aggregates", 5, vals, &r, err);
    if (st != DM_BS_OK)
        return st;
    for (int i = 0; i < PQntuples(r); i++) {
        dm_agg_row *a = dm_agg_vec_push(out);
        if (a == NULL) {
            PQclear(r);
            return dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
        }
        a->period_start = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        a->open = ts_num(r, i, 1);
        a->high = ts_num(r, i, 2);
        a->low = ts_num(r, i, 3);
        a->close = ts_num(r, i, 4);
        a->mean = ts_num(r, i, 5);
        a->has_stddev = !PQgetisnull(r, i, 6);
        a->stddev_returns = a->has_stddev ? ts_num(r, i, 6) : 0;
        a->range = ts_num(r, i, 7);
        a->volume = ts_num(r, i, 8);
        a->count = strtoll(PQgetvalue(r, i, 9), NULL, 10);
    }
    PQclear(r);
    return DM_BS_OK;
}

