/* The PostgreSQL adapter's part for the analysis engines and jobs: every close of a
 * timeframe (what the in-worker engines load), the scheduled correlation window, and the
 * progress of resumable jobs. The statements are prepared with the others (timescale.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "timescale_priv.h"

dm_bstatus ts_closes(dm_backend *b, dm_tf tf, const char *symbol, dm_close_sink sink,
                            void *ctx, dm_err *err)
{
    const char *vals[2] = {dm_tf_name(tf), symbol};
    PGresult *r = NULL;
    dm_bstatus st = ts_exec_prepared((timescale *)b, "closes", 2, vals, &r, err);
    if (st != DM_BS_OK)
        return st;
    int n = PQntuples(r);
    for (int i = 0; i < n && st == DM_BS_OK; i++)
        if (!sink(ctx, PQgetvalue(r, i, 0), strtoll(PQgetvalue(r, i, 1), NULL, 10), ts_num(r, i, 2)))
            st = dm_bfail(err, DM_BS_PERMANENT, "", "closes of %s not loaded: over the memory bound or out of memory",
                          dm_tf_name(tf));
    PQclear(r);
    return st;
}

dm_bstatus ts_put_correlations(dm_backend *b, const dm_corr_snapshot *sn, dm_err *err)
{
    timescale *ts = (timescale *)b;
    dm_pg_array *a = ts->arrays;
    ts_arr_begin(ts, "ttfi");
    for (size_t i = 0; i < sn->n_pairs; i++) {
        dm_pg_array_text(&a[0], sn->pairs[i].a);
        dm_pg_array_text(&a[1], sn->pairs[i].b);
        dm_pg_array_f64(&a[2], sn->pairs[i].r, true);
        dm_pg_array_i64(&a[3], sn->pairs[i].n);
    }
    char run[24], ws[24], we[24], wc[16];
    snprintf(run, sizeof run, "%lld", (long long)sn->run);
    snprintf(ws, sizeof ws, "%lld", (long long)sn->window_start);
    snprintf(we, sizeof we, "%lld", (long long)sn->window_end);
    snprintf(wc, sizeof wc, "%d", sn->window_candles);
    const char *vals[5] = {dm_tf_name(sn->tf), run, ws, we, wc};
    return ts_exec_arrays(ts, "put_correlations", vals, 5, 4, err);
}

dm_bstatus ts_correlations_run(dm_backend *b, dm_tf tf, int64_t *run, dm_err *err)
{
    const char *vals[1] = {dm_tf_name(tf)};
    PGresult *r = NULL;
    dm_bstatus st = ts_exec_prepared((timescale *)b, "correlations_run", 1, vals, &r, err);
    if (st != DM_BS_OK)
        return st;
    st = PQntuples(r) == 1 ? DM_BS_OK : DM_BS_MISS;
    if (st == DM_BS_OK)
        *run = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return st;
}

dm_bstatus ts_get_progress(dm_backend *b, const char *key, int64_t *value, dm_err *err)
{
    const char *vals[1] = {key};
    PGresult *r = NULL;
    dm_bstatus st = ts_exec_prepared((timescale *)b, "get_progress", 1, vals, &r, err);
    if (st != DM_BS_OK)
        return st;
    st = PQntuples(r) == 1 ? DM_BS_OK : DM_BS_MISS;
    if (st == DM_BS_OK)
        *value = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return st;
}

dm_bstatus ts_set_progress(dm_backend *b, const char *key, int64_t value, dm_err *err)
{
    char v[24];
    snprintf(v, sizeof v, "%lld", (long long)value);
    const char *vals[2] = {key, v};
    return ts_exec_prepared((timescale *)b, "set_progress", 2, vals, NULL, err);
}

