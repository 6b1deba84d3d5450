#include "timescale.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/enc.h"
#include "util/config.h"
#include "util/log.h"

extern const char dm_timescale_schema_sql[];

#include "timescale_priv.h"

#define SQL_UPSERT_TICKS \
"INSERT INTO ticks (symbol, ts, bid, ask, spread, volume, source) " \
    "SELECT DISTINCT ON (symbol, ts, source) symbol, ts, bid, ask, spread, volume, source " \
    "FROM unnest($1::text[], $2::bigint[], $3::float8[], $4::float8[], $5::float8[], " \
    "$6::float8[], $7::text[]) WITH ORDINALITY AS u(symbol, ts, bid, ask, spread, volume, " \
    "source, ord) ORDER BY symbol, ts, source, ord DESC " \
    "ON CONFLICT (symbol, ts, source) DO UPDATE SET bid = EXCLUDED.bid, ask = EXCLUDED.ask, " \
    "spread = EXCLUDED.spread, volume = EXCLUDED.volume"

/* The common batch holds only new ticks: a plain insert costs PostgreSQL about a quarter
 * less than the upsert (no speculative insertion). A batch with a key already stored (a
 * redelivery, a resent tick) or twice in itself fails whole with unique_violation and is
 * written again by SQL_UPSERT_TICKS. */
#define SQL_INSERT_TICKS \
"INSERT INTO ticks (symbol, ts, bid, ask, spread, volume, source) " \
    "SELECT * FROM unnest($1::text[], $2::bigint[], $3::float8[], $4::float8[], $5::float8[], " \
    "$6::float8[], $7::text[])"

/* DISTINCT ON keeps the last copy of a key inside one batch: ON CONFLICT may not touch
 * a row twice in one statement, and the later message is the newer truth. */
#define SQL_UPSERT_CANDLES \
"INSERT INTO candles (symbol, timeframe, ts, open, high, low, close, volume, source) " \
    "SELECT DISTINCT ON (symbol, timeframe, ts) symbol, timeframe, ts, open, high, low, close, " \
    "volume, source FROM unnest($1::text[], $2::text[], $3::bigint[], $4::float8[], " \
    "$5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::text[]) WITH ORDINALITY AS " \
    "u(symbol, timeframe, ts, open, high, low, close, volume, source, ord) " \
    "ORDER BY symbol, timeframe, ts, ord DESC " \
    "ON CONFLICT (symbol, timeframe, ts) DO UPDATE SET open = EXCLUDED.open, high = " \
    "EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close, volume = EXCLUDED.volume, " \
    "source = EXCLUDED.source"

#define SQL_UPSERT_EVENT \
"INSERT INTO economic_events (event_id, ts, country, event_name, actual, forecast, " \
    "previous, impact, currency_impact) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text[]) " \
    "ON CONFLICT (event_id) DO UPDATE SET ts = EXCLUDED.ts, country = EXCLUDED.country, " \
    "event_name = EXCLUDED.event_name, actual = EXCLUDED.actual, forecast = EXCLUDED.forecast, " \
    "previous = EXCLUDED.previous, impact = EXCLUDED.impact, currency_impact = " \
    "EXCLUDED.currency_impact"

#define SQL_LATEST_TICK \
"SELECT symbol, ts, bid, ask, spread, volume, source FROM ticks WHERE symbol = $1 " \
    "ORDER BY ts DESC, source LIMIT 1"

#define SQL_LATEST_CANDLES \
"SELECT symbol, timeframe, ts, open, high, low, close, volume, source FROM candles " \
    "WHERE symbol = $1 AND timeframe = $2 ORDER BY ts DESC LIMIT $3"

#define SQL_CANDLE_RANGE \
"SELECT symbol, timeframe, ts, open, high, low, close, volume, source FROM candles " \
    "WHERE symbol = $1 AND timeframe = $2 AND ts >= $3 AND ts < $4 ORDER BY ts LIMIT $5"

#define SQL_EVENTS \
"SELECT event_id, ts, country, event_name, actual, forecast, previous, impact, " \
    "currency_impact FROM economic_events WHERE ts >= $1 AND ts < $2 " \
    "AND ($3::text IS NULL OR country = $3) AND ($4::text IS NULL OR $4 = ANY(currency_impact)) " \
    "AND ($5::text IS NULL OR impact = $5) " \
    "AND ($6::text IS NULL OR (ts, event_id) > ($7::bigint, $6::text)) " \
    "ORDER BY ts, event_id LIMIT $8"

/* Periods in UTC: date_trunc on the UTC wall time ('week' starts Monday, as ISO weeks).
 * Returns are taken between consecutive candles of the same period only. */
#define SQL_AGGREGATES \
    "WITH c AS (SELECT ts, open, high, low, close, COALESCE(volume, 0) AS volume, " \
    "date_trunc($3::text, to_timestamp(ts / 1000.0) AT TIME ZONE 'UTC') AS p " \
    "FROM candles WHERE symbol = $1 AND timeframe = $2 AND ts >= $4 AND ts < $5), " \
    "r AS (SELECT *, close / lag(close) OVER (PARTITION BY p ORDER BY ts) - 1 AS ret FROM c) " \
    "SELECT (extract(epoch FROM p) * 1000)::bigint, (array_agg(open ORDER BY ts))[1], " \
    "max(high), min(low), (array_agg(close ORDER BY ts DESC))[1], avg(close), " \
    "stddev_samp(ret), max(high) - min(low), sum(volume), count(*) FROM r GROUP BY p ORDER BY p"

/* What the in-worker analysis engines load: every close of a timeframe. */
#define SQL_CLOSES \
"SELECT symbol, ts, close FROM candles WHERE timeframe = $1 " \
    "AND ($2::text IS NULL OR symbol = $2) ORDER BY symbol, ts"

/* One statement: the pairs no longer correlated go, the others are upserted, and the run
 * is recorded (computations counts how often one interval was computed). */
#define SQL_PUT_CORRELATIONS \
"WITH p AS (SELECT * FROM unnest($6::text[], $7::text[], $8::float8[], $9::bigint[]) AS t(a, b, r, n)), " \
    "d AS (DELETE FROM correlations c WHERE c.timeframe = $1 AND NOT EXISTS " \
    "(SELECT 1 FROM p WHERE p.a = c.a AND p.b = c.b)), " \
    "i AS (INSERT INTO correlations (timeframe, a, b, r, n, window_start, window_end, window_candles) " \
    "SELECT $1, a, b, r, n, $3::bigint, $4::bigint, $5::int FROM p ON CONFLICT (timeframe, a, b) DO UPDATE " \
    "SET r = EXCLUDED.r, n = EXCLUDED.n, window_start = EXCLUDED.window_start, " \
    "window_end = EXCLUDED.window_end, window_candles = EXCLUDED.window_candles) " \
    "INSERT INTO correlation_runs (timeframe, run, window_start, window_end, window_candles, computations) " \
    "VALUES ($1, $2::bigint, $3::bigint, $4::bigint, $5::int, 1) ON CONFLICT (timeframe) DO UPDATE SET " \
    "computations = CASE WHEN correlation_runs.run = EXCLUDED.run THEN correlation_runs.computations + 1 ELSE 1 END, " \
    "run = EXCLUDED.run, window_start = EXCLUDED.window_start, window_end = EXCLUDED.window_end, " \
    "window_candles = EXCLUDED.window_candles, computed_at = now()"

#define SQL_CORRELATIONS_RUN "SELECT run FROM correlation_runs WHERE timeframe = $1"
#define SQL_GET_PROGRESS "SELECT value FROM dm_progress WHERE key = $1"
#define SQL_SET_PROGRESS \
"INSERT INTO dm_progress (key, value) VALUES ($1, $2::bigint) ON CONFLICT (key) DO UPDATE " \
    "SET value = EXCLUDED.value, updated_at = now()"

static const struct {
    const char *name, *sql;
    int nparams;
} STATEMENTS[] = {
    {"insert_ticks", SQL_INSERT_TICKS, 7},
    {"upsert_ticks", SQL_UPSERT_TICKS, 7},     {"upsert_candles", SQL_UPSERT_CANDLES, 9},
    {"upsert_event", SQL_UPSERT_EVENT, 9},     {"latest_tick", SQL_LATEST_TICK, 1},
    {"latest_candles", SQL_LATEST_CANDLES, 3}, {"candle_range", SQL_CANDLE_RANGE, 5},
    {"events", SQL_EVENTS, 8},
    {"aggregates", SQL_AGGREGATES, 5}, {"closes", SQL_CLOSES, 2},
    {"put_correlations", SQL_PUT_CORRELATIONS, 9}, {"correlations_run", SQL_CORRELATIONS_RUN, 1},
    {"get_progress", SQL_GET_PROGRESS, 1}, {"set_progress", SQL_SET_PROGRESS, 2},
};

static void copy_cfg(char *dst, size_t cap, const cJSON *cfg, const char *key, const char *dflt)
{
    const char *v = dm_cfg_str(cfg, key, NULL);
    if (v == NULL) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(cfg, key);
        if (cJSON_IsNumber(n)) {
            snprintf(dst, cap, "%d", (int)n->valuedouble);
            return;
        }
        v = dflt;
    }
    snprintf(dst, cap, "%s", v);
}

static PGconn *connect_params(const timescale *ts)
{
    const char *keys[] = {"host", "port", "dbname", "user", "password", "application_name",
                          "connect_timeout", "options", NULL};
    const char *vals[] = {ts->host, ts->port, ts->dbname, ts->user, ts->password, ts->app,
                          "3", ts->options, NULL};
    return PQconnectdbParams(keys, vals, 0);
}

/* SQLSTATE classes that a retry can cure: connection (08), transaction rollback such as
 * serialization failure or deadlock (40), resources (53), operator intervention such as
 * shutdown (57), system (58). Everything else is about the data. */
static dm_bstatus classify(PGconn *conn, const PGresult *res)
{
    if (PQstatus(conn) != CONNECTION_OK)
        return DM_BS_TRANSIENT;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state == NULL)
        return DM_BS_TRANSIENT;
    static const char *const transient[] = {"08", "40", "53", "57", "58"};
    for (size_t i = 0; i < sizeof transient / sizeof *transient; i++)
        if (strncmp(state, transient[i], 2) == 0)
            return DM_BS_TRANSIENT;
    return DM_BS_PERMANENT;
}

static dm_bstatus fail(timescale *ts, const PGresult *res, const char *what, dm_err *err)
{
    dm_bstatus st = classify(ts->conn, res);
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    snprintf(ts->sqlstate, sizeof ts->sqlstate, "%s", state ? state : "");
    const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(ts->conn);
    char clean[200];
    snprintf(clean, sizeof clean, "%s", msg && *msg ? msg : "no message");
    clean[strcspn(clean, "\n")] = '\0';
    dm_bfail(err, st, "", "timescale %s failed: %s", what, clean);
    if (PQstatus(ts->conn) != CONNECTION_OK) {
        PQfinish(ts->conn);
        ts->conn = NULL;
    }
    return st;
}

static dm_bstatus ensure_conn(timescale *ts, dm_err *err)
{
    if (ts->conn != NULL)
        return DM_BS_OK;
    ts->conn = connect_params(ts);
    if (PQstatus(ts->conn) != CONNECTION_OK)
        return fail(ts, NULL, "connect", err);
    for (size_t i = 0; i < sizeof STATEMENTS / sizeof *STATEMENTS; i++) {
        PGresult *r = PQprepare(ts->conn, STATEMENTS[i].name, STATEMENTS[i].sql,
                                STATEMENTS[i].nparams, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            dm_bstatus st = fail(ts, r, "prepare", err);
            PQclear(r);
            PQfinish(ts->conn);
            ts->conn = NULL;
            return st;
        }
        PQclear(r);
    }
    return DM_BS_OK;
}

/* A connection that sat idle in the pool may have been closed by a server restart; the
 * first statement on it then finds the connection gone. Such a statement runs once more
 * on a new connection: it never ran, and outside a transaction (statements here are
 * upserts and reads) running it again is harmless anyway. */
static bool may_be_stale(const timescale *ts)
{
    return ts->conn != NULL && PQtransactionStatus(ts->conn) == PQTRANS_IDLE;
}

static dm_bstatus exec_params(timescale *ts, const char *stmt, int n, const char *const *vals,
                              const int *lens, const int *fmts, PGresult **out, dm_err *err)
{
    for (int attempt = 0;; attempt++) {
        bool reused = may_be_stale(ts);
        dm_bstatus st = ensure_conn(ts, err);
        if (st != DM_BS_OK)
            return st;
        PGresult *r = PQexecPrepared(ts->conn, stmt, n, vals, lens, fmts, 0);
        ExecStatusType es = PQresultStatus(r);
        if (es != PGRES_COMMAND_OK && es != PGRES_TUPLES_OK) {
            st = fail(ts, r, stmt, err);
            PQclear(r);
            if (reused && attempt == 0 && ts->conn == NULL)
                continue;
            return st;
        }
        if (out)
            *out = r;
        else
            PQclear(r);
        return DM_BS_OK;
    }
}

dm_bstatus ts_exec_prepared(timescale *ts, const char *stmt, int n, const char *const *vals,
                            PGresult **out, dm_err *err)
{
    return exec_params(ts, stmt, n, vals, NULL, NULL, out, err);
}

#define MAX_PARAMS 16

dm_bstatus ts_exec_arrays(timescale *ts, const char *stmt, const char *const *vals, int first,
                          int ncols, dm_err *err)
{
    const char *v[MAX_PARAMS];
    int lens[MAX_PARAMS] = {0}, fmts[MAX_PARAMS] = {0};
    int n = first + ncols;
    if (n > MAX_PARAMS || ncols > (int)(sizeof ts->arrays / sizeof *ts->arrays))
        return dm_bfail(err, DM_BS_PERMANENT, "", "%s: too many parameters", stmt);
    for (int i = 0; i < first; i++)
        v[i] = vals[i];
    for (int i = 0; i < ncols; i++) {
        dm_pg_array *a = &ts->arrays[i];
        if (!dm_pg_array_end(a))
            return dm_bfail(err, DM_BS_TRANSIENT, "", "%s: a batch over 1 GB, or out of memory",
                            stmt);
        v[first + i] = a->buf.data;
        lens[first + i] = (int)a->buf.len;
        fmts[first + i] = 1;
    }
    return exec_params(ts, stmt, n, v, lens, fmts, NULL, err);
}

void ts_arr_begin(timescale *ts, const char *types)
{
    for (int i = 0; types[i]; i++)
        dm_pg_array_begin(&ts->arrays[i], types[i] == 't'   ? DM_PG_TEXT
                                          : types[i] == 'i' ? DM_PG_INT8
                                                            : DM_PG_FLOAT8);
}

static dm_bstatus ts_write_ticks(dm_backend *b, const dm_tick *t, size_t n,
                                 const dm_cache_opts *o, dm_err *err)
{
    (void)o;
    timescale *ts = (timescale *)b;
    dm_pg_array *a = ts->arrays;
    ts_arr_begin(ts, "tifffft"); /* t: text, i: int8, f: float8 */
    for (size_t i = 0; i < n; i++) {
        dm_pg_array_text(&a[0], t[i].symbol);
        dm_pg_array_i64(&a[1], t[i].ts);
        dm_pg_array_f64(&a[2], t[i].bid, true);
        dm_pg_array_f64(&a[3], t[i].ask, true);
        dm_pg_array_f64(&a[4], t[i].spread, true);
        dm_pg_array_f64(&a[5], t[i].volume, t[i].has_volume);
        dm_pg_array_text(&a[6], t[i].source);
    }
    dm_bstatus st = ts_exec_arrays(ts, "insert_ticks", NULL, 0, 7, err);
    if (st == DM_BS_PERMANENT && strcmp(ts->sqlstate, "23505") == 0) {
        dm_err_clear(err);
        st = ts_exec_arrays(ts, "upsert_ticks", NULL, 0, 7, err);
    }
    return st;
}

static dm_bstatus ts_write_candles(dm_backend *b, const dm_candle *c, size_t n,
                                   const dm_cache_opts *o, dm_err *err)
{
    (void)o;
    timescale *ts = (timescale *)b;
    dm_pg_array *a = ts->arrays;
    ts_arr_begin(ts, "ttiffffft");
    for (size_t i = 0; i < n; i++) {
        dm_pg_array_text(&a[0], c[i].symbol);
        dm_pg_array_text(&a[1], dm_tf_name(c[i].tf));
        dm_pg_array_i64(&a[2], c[i].ts);
        dm_pg_array_f64(&a[3], c[i].open, true);
        dm_pg_array_f64(&a[4], c[i].high, true);
        dm_pg_array_f64(&a[5], c[i].low, true);
        dm_pg_array_f64(&a[6], c[i].close, true);
        dm_pg_array_f64(&a[7], c[i].volume, c[i].has_volume);
        dm_pg_array_text(&a[8], c[i].source);
    }
    return ts_exec_arrays(ts, "upsert_candles", NULL, 0, 9, err);
}

static dm_bstatus simple(timescale *ts, const char *sql, dm_err *err)
{
    PGresult *r = PQexec(ts->conn, sql);
    ExecStatusType es = PQresultStatus(r);
    dm_bstatus st = es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK ? DM_BS_OK : fail(ts, r, sql, err);
    PQclear(r);
    return st;
}

/* The first statement of a call (BEGIN, a ping), with the stale-connection retry. */
static dm_bstatus first_simple(timescale *ts, const char *sql, dm_err *err)
{
    for (int attempt = 0;; attempt++) {
        bool reused = may_be_stale(ts);
        dm_bstatus st = ensure_conn(ts, err);
        if (st == DM_BS_OK)
            st = simple(ts, sql, err);
        if (st == DM_BS_OK || !reused || attempt > 0 || ts->conn != NULL)
            return st;
    }
}

static void fmt_opt(char *buf, size_t cap, bool has, double v, const char **out)
{
    if (!has) {
        *out = NULL;
        return;
    }
    snprintf(buf, cap, "%.17g", v);
    *out = buf;
}

/* Events are rare and carry a text[] per row, which unnest cannot take: one statement
 * per event inside one transaction. */
static dm_bstatus ts_write_events(dm_backend *b, const dm_event *e, size_t n, dm_err *err)
{
    timescale *ts = (timescale *)b;
    dm_bstatus st = first_simple(ts, "BEGIN", err);
    if (st != DM_BS_OK)
        return st;
    for (size_t i = 0; i < n && st == DM_BS_OK; i++) {
        char tsbuf[24], a[40], f[40], p[40];
        dm_buf cur;
        dm_buf_init(&cur);
        dm_buf_put(&cur, "{", 1);
        for (int k = 0; k < e[i].n_currency; k++) {
            if (k)
                dm_buf_put(&cur, ",", 1);
            dm_buf_puts(&cur, e[i].currency_impact[k]);
        }
        dm_buf_put(&cur, "}", 1);
        snprintf(tsbuf, sizeof tsbuf, "%lld", (long long)e[i].ts);
        const char *vals[9] = {e[i].event_id, tsbuf, e[i].country, e[i].event_name, NULL, NULL,
                               NULL, dm_impact_name(e[i].impact), cur.data};
        fmt_opt(a, sizeof a, e[i].has_actual, e[i].actual, &vals[4]);
        fmt_opt(f, sizeof f, e[i].has_forecast, e[i].forecast, &vals[5]);
        fmt_opt(p, sizeof p, e[i].has_previous, e[i].previous, &vals[6]);
        st = ts_exec_prepared(ts, "upsert_event", 9, vals, NULL, err);
        dm_buf_free(&cur);
    }
    if (st != DM_BS_OK) {
        if (ts->conn)
            PQclear(PQexec(ts->conn, "ROLLBACK"));
        return st;
    }
    return simple(ts, "COMMIT", err);
}

double ts_num(const PGresult *r, int row, int col)
{
    return strtod(PQgetvalue(r, row, col), NULL);
}

static dm_bstatus ts_ping(dm_backend *b, dm_err *err)
{
    /* Any failure means the server is not usable now, whatever its SQLSTATE. */
    dm_bstatus st = first_simple((timescale *)b, "SELECT 1", err);
    return st == DM_BS_OK ? DM_BS_OK : dm_brejudge(err, DM_BS_TRANSIENT);
}

static void ts_destroy(dm_backend *b)
{
    timescale *ts = (timescale *)b;
    if (ts->conn)
        PQfinish(ts->conn);
    for (size_t i = 0; i < sizeof ts->arrays / sizeof *ts->arrays; i++)
        dm_pg_array_free(&ts->arrays[i]);
    /* The password lived in this struct: do not leave it in freed memory. */
    explicit_bzero(ts->password, sizeof ts->password);
    free(ts);
}

static const dm_backend_ops OPS = {
    .write_ticks = ts_write_ticks,
    .write_candles = ts_write_candles,
    .write_events = ts_write_events,
    .latest_tick = ts_latest_tick,
    .latest_candles = ts_latest_candles,
    .candle_range = ts_candle_range,
    .events = ts_events,
    .aggregates = ts_aggregates,
    .closes = ts_closes,
    .put_correlations = ts_put_correlations,
    .correlations_run = ts_correlations_run,
    .get_progress = ts_get_progress,
    .set_progress = ts_set_progress,
    .ping = ts_ping,
    .destroy = ts_destroy,
};

static void fill_params(timescale *ts, const cJSON *cfg, const char *app, int query_timeout_s)
{
    copy_cfg(ts->host, sizeof ts->host, cfg, "host", "127.0.0.1");
    copy_cfg(ts->port, sizeof ts->port, cfg, "port", "5432");
    copy_cfg(ts->dbname, sizeof ts->dbname, cfg, "database", "dm");
    copy_cfg(ts->user, sizeof ts->user, cfg, "user", "dm");
    copy_cfg(ts->password, sizeof ts->password, cfg, "password", "");
    snprintf(ts->app, sizeof ts->app, "%s", app);
    snprintf(ts->options, sizeof ts->options, "-c statement_timeout=%d", query_timeout_s * 1000);
}

dm_backend *dm_timescale_create(const cJSON *cfg, const char *app_name, int query_timeout_s)
{
    timescale *ts = calloc(1, sizeof *ts);
    if (ts == NULL)
        return NULL;
    ts->base.ops = &OPS;
    ts->base.id = DM_BK_TIMESCALE;
    fill_params(ts, cfg, app_name, query_timeout_s);
    return &ts->base;
}

static bool has_timescale(PGconn *conn)
{
    PGresult *r = PQexec(conn, "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'");
    bool yes = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    PQclear(r);
    return yes;
}

static dm_code run(PGconn *conn, const char *sql, const char *what, dm_err *err)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType es = PQresultStatus(r);
    dm_code c = DM_OK;
    if (es != PGRES_COMMAND_OK && es != PGRES_TUPLES_OK) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(r));
        msg[strcspn(msg, "\n")] = '\0';
        c = dm_fail(err, DM_E_UNAVAILABLE, "", "timescale %s failed: %s", what, msg);
    }
    PQclear(r);
    return c;
}

dm_code dm_timescale_migrate(const cJSON *cfg, dm_err *err)
{
    timescale ts;
    memset(&ts, 0, sizeof ts);
    fill_params(&ts, cfg, "dm-migrate", 300);
    PGconn *conn = connect_params(&ts);
    explicit_bzero(ts.password, sizeof ts.password);
    if (PQstatus(conn) != CONNECTION_OK) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(conn));
        msg[strcspn(msg, "\n")] = '\0';
        PQfinish(conn);
        return dm_fail(err, DM_E_UNAVAILABLE, "", "timescale connect failed: %s", msg);
    }
    /* Workers start together: one applies the schema while the others wait. */
    dm_code c = run(conn, "SET client_min_messages TO warning", "settings", err);
    if (c == DM_OK)
        c = run(conn, "SELECT pg_advisory_lock(7346201)", "lock", err);
    if (c == DM_OK)
        c = run(conn, dm_timescale_schema_sql, "schema", err);
    if (c == DM_OK && has_timescale(conn)) {
        c = run(conn,
                "SELECT create_hypertable('ticks', 'ts', chunk_time_interval => 86400000, "
                "if_not_exists => TRUE, migrate_data => TRUE); "
                "SELECT create_hypertable('candles', 'ts', chunk_time_interval => 2592000000, "
                "if_not_exists => TRUE, migrate_data => TRUE)",
                "hypertables", err);
        if (c == DM_OK)
            DM_INFO("timescale", "timescaledb extension found: ticks and candles are hypertables");
    } else if (c == DM_OK) {
        DM_INFO("timescale", "timescaledb extension not installed: plain PostgreSQL tables");
    }
    PQclear(PQexec(conn, "SELECT pg_advisory_unlock(7346201)"));
    PQfinish(conn);
    return c;
}
