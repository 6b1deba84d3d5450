/* The ClickHouse adapter: the SQL it sends and the operations of backend.h it offers.
 * The transport is clickhouse_http.c, the checks, batch order and reply reading
 * clickhouse_format.c. Every value this file splices into SQL text passes a check of
 * clickhouse_format.h first, and tests/security/sql_sites.pl reviews each such site in
 * this file; the buffer writes it lists (the reply sink, the URL, the RowBinary writers,
 * the headers) therefore stay here beside the SQL. */
#include "clickhouse.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/config.h"
#include "util/log.h"
#include "clickhouse_format.h"
#include "clickhouse_http.h"

extern const char dm_clickhouse_schema_sql[];

/* ---- HTTP ---------------------------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    clickhouse *ch = ud;
    size_t n = size * nmemb;
    if (ch->reply.len + n > CH_MAX_REPLY)
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    dm_buf_put(&ch->reply, p, n);
    return ch->reply.oom ? 0 : n;
}

/* POSTs body to url/?params; the reply lands in ch->reply. */
static dm_bstatus post(clickhouse *ch, const char *params, const void *body, size_t len,
                       bool binary, const char *what, dm_err *err)
{
    dm_buf_reset(&ch->target);
    dm_buf_printf(&ch->target, "%s/?%s", ch->url, params);
    if (ch->target.oom)
        return dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
    return ch_http_post(ch, body, len, binary, what, err);
}

static dm_bstatus run_sql(clickhouse *ch, const char *params, const char *sql, const char *what,
                          dm_err *err)
{
    return post(ch, params, sql, strlen(sql), false, what, err);
}

/* Set by whichever backend thread first reaches the server; later ones log at debug. */
static atomic_flag version_logged = ATOMIC_FLAG_INIT;

/* The first request after a (re)connect asks the version: it proves the server is up
 * and that the account works, and says which server answers. Every failure here is
 * transient: nothing about the data has been tried yet. */
static dm_bstatus ensure_conn(clickhouse *ch, dm_err *err)
{
    if (ch->connected)
        return DM_BS_OK;
    if (run_sql(ch, "", "SELECT version() FORMAT TabSeparated", "connect", err) != DM_BS_OK)
        return dm_brejudge(err, DM_BS_TRANSIENT);
    ch_first_line(&ch->reply, ch->version, sizeof ch->version);
    ch->connected = true;
    if (!atomic_flag_test_and_set(&version_logged))
        DM_INFO("clickhouse", "server %s at %s, database %s", ch->version, ch->where, ch->db);
    else
        DM_DEBUG("clickhouse", "connected to server %s at %s", ch->version, ch->where);
    return DM_BS_OK;
}

/* ---- schema -------------------------------------------------------------------------- */

/* Next statement of the schema text: comments dropped, split on ';'. Returns false at
 * the end. The schema keeps ';' out of comments and literals. */
static bool next_statement(const char **p, dm_buf *out)
{
    dm_buf_reset(out);
    const char *s = *p;
    while (*s) {
        if (s[0] == '-' && s[1] == '-') {
            s += strcspn(s, "\n");
        } else if (*s == ';') {
            s++;
            break;
        } else {
            dm_buf_put(out, s, 1);
            s++;
        }
    }
    *p = s;
    return out->len > 0 || *s != '\0';
}

static bool blank(const dm_buf *b)
{
    for (size_t i = 0; i < b->len; i++)
        if (b->data[i] != ' ' && b->data[i] != '\n' && b->data[i] != '\r' && b->data[i] != '\t')
            return false;
    return true;
}

/* 57 TABLE_ALREADY_EXISTS, 82 DATABASE_ALREADY_EXISTS: another worker won the race. */
static bool already_exists(const clickhouse *ch)
{
    return ch->last_code == 57 || ch->last_code == 82;
}

static dm_bstatus apply_schema(clickhouse *ch, dm_err *err)
{
    dm_buf_reset(&ch->sql);
    dm_buf_printf(&ch->sql, "CREATE DATABASE IF NOT EXISTS %s", ch->db);
    if (ch->sql.oom)
        return dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
    dm_bstatus st = run_sql(ch, "", ch->sql.data, "create database", err);
    if (st != DM_BS_OK && !already_exists(ch))
        return st;
    char params[96];
    snprintf(params, sizeof params, "database=%s", ch->db);
    const char *p = dm_clickhouse_schema_sql;
    while (next_statement(&p, &ch->sql)) {
        if (ch->sql.oom)
            return dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
        if (blank(&ch->sql))
            continue;
        st = run_sql(ch, params, ch->sql.data, "schema", err);
        if (st != DM_BS_OK && !already_exists(ch))
            return st;
    }
    return DM_BS_OK;
}

/* ---- RowBinary ------------------------------------------------------------------------ */

static void rb_u64(dm_buf *b, uint64_t v)
{
    unsigned char x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (unsigned char)(v >> (8 * i));
    dm_buf_put(b, x, 8);
}

static void rb_f64(dm_buf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    rb_u64(b, u);
}

static void rb_str(dm_buf *b, const char *s)
{
    size_t n = strlen(s);
    unsigned char len[10];
    int k = 0;
    for (size_t v = n; k == 0 || v; v >>= 7)
        len[k++] = (unsigned char)((v & 0x7f) | (v >> 7 ? 0x80 : 0));
    dm_buf_put(b, len, (size_t)k);
    dm_buf_put(b, s, n);
}

static void rb_nf64(dm_buf *b, bool present, double v)
{
    unsigned char null = present ? 0 : 1;
    dm_buf_put(b, &null, 1);
    if (present)
        rb_f64(b, v);
}

/* ---- writes -------------------------------------------------------------------------- */

static int cmp_i64(int64_t a, int64_t b)
{
    return a < b ? -1 : a > b;
}

static int64_t candle_ts(const void *rows, size_t i)
{
    return ((const dm_candle *)rows)[i].ts;
}

static int candle_cmp(const void *rows, size_t a, size_t b)
{
    const dm_candle *x = &((const dm_candle *)rows)[a], *y = &((const dm_candle *)rows)[b];
    int c = strcmp(x->symbol, y->symbol);
    if (c == 0)
        c = (int)x->tf - (int)y->tf;
    return c ? c : cmp_i64(x->ts, y->ts);
}

static void candle_encode(dm_buf *out, const void *rows, size_t i, uint64_t version)
{
    const dm_candle *c = &((const dm_candle *)rows)[i];
    rb_str(out, c->symbol);
    rb_str(out, dm_tf_name(c->tf));
    rb_u64(out, (uint64_t)c->ts);
    rb_f64(out, c->open);
    rb_f64(out, c->high);
    rb_f64(out, c->low);
    rb_f64(out, c->close);
    rb_nf64(out, c->has_volume, c->volume);
    rb_str(out, c->source);
    rb_u64(out, version);
}

static int64_t tick_ts(const void *rows, size_t i)
{
    return ((const dm_tick *)rows)[i].ts;
}

static int tick_cmp(const void *rows, size_t a, size_t b)
{
    const dm_tick *x = &((const dm_tick *)rows)[a], *y = &((const dm_tick *)rows)[b];
    int c = strcmp(x->symbol, y->symbol);
    if (c == 0)
        c = cmp_i64(x->ts, y->ts);
    return c ? c : strcmp(x->source, y->source);
}

static void tick_encode(dm_buf *out, const void *rows, size_t i, uint64_t version)
{
    const dm_tick *t = &((const dm_tick *)rows)[i];
    rb_str(out, t->symbol);
    rb_u64(out, (uint64_t)t->ts);
    rb_f64(out, t->bid);
    rb_f64(out, t->ask);
    rb_f64(out, t->spread);
    rb_nf64(out, t->has_volume, t->volume);
    rb_str(out, t->source);
    rb_u64(out, version);
}

static const table_def CANDLES = {
    "insert candles",
    "candles",
    "symbol, timeframe, ts, open, high, low, close, volume, source, version",
    candle_ts,
    candle_cmp,
    candle_encode};

static const table_def TICKS = {
    "insert ticks", "ticks",  "symbol, ts, bid, ask, spread, volume, source, version",
    tick_ts,        tick_cmp, tick_encode};

static dm_bstatus send_insert(clickhouse *ch, const table_def *def, dm_err *err)
{
    if (ch->body.oom)
        return dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
    char sql[256];
    snprintf(sql, sizeof sql, "INSERT INTO %s.%s (%s) FORMAT RowBinary", ch->db, def->table,
             def->columns);
    char *q = curl_easy_escape(ch->curl, sql, 0);
    if (q == NULL)
        return dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
    char params[512];
    snprintf(params, sizeof params, "query=%s", q);
    curl_free(q);
    dm_bstatus st = post(ch, params, ch->body.data, ch->body.len, true, def->what, err);
    if (st != DM_BS_OK && (ch->last_code == 60 || ch->last_code == 81)) {
        /* The server lost or never had the schema (started empty after the workers). */
        DM_WARN("clickhouse", "%s: %s [%s:%d]; applying the schema", def->what, err->message,
                err->file, err->line);
        dm_err e = {0};
        if (apply_schema(ch, &e) == DM_BS_OK)
            st = post(ch, params, ch->body.data, ch->body.len, true, def->what, err);
    }
    return st;
}

static dm_bstatus write_rows(clickhouse *ch, const table_def *def, const void *rows, size_t n,
                             dm_err *err)
{
    if (n == 0)
        return DM_BS_OK;
    if (n > UINT32_MAX)
        return dm_bfail(err, DM_BS_PERMANENT, "", "batch too large");
    dm_bstatus st = ensure_conn(ch, err);
    if (st != DM_BS_OK)
        return st;
    if (n > ch->scratch_cap) {
        void *p = realloc(ch->scratch, n * sizeof(ch_row_key));
        if (p == NULL)
            return dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
        ch->scratch = p;
        ch->scratch_cap = n;
    }
    ch_row_key *keys = ch->scratch;
    ch_batch_order(def, rows, n, keys);
    uint64_t version = (uint64_t)dm_now_ms();
    for (size_t i = 0; i < n;) {
        i = ch_batch_slice(def, rows, keys, n, i, version, &ch->body);
        if ((st = send_insert(ch, def, err)) != DM_BS_OK)
            return st;
    }
    return DM_BS_OK;
}

static dm_bstatus ch_write_ticks(dm_backend *b, const dm_tick *t, size_t n, const dm_cache_opts *o,
                                 dm_err *err)
{
    (void)o;
    return write_rows((clickhouse *)b, &TICKS, t, n, err);
}

static dm_bstatus ch_write_candles(dm_backend *b, const dm_candle *c, size_t n,
                                   const dm_cache_opts *o, dm_err *err)
{
    (void)o;
    return write_rows((clickhouse *)b, &CANDLES, c, n, err);
}

/* ---- reads --------------------------------------------------------------------------- */

/* Result types are pinned here, so the RowBinary reply reads the same whatever column
 * types an operator gave the table. */
#define CANDLE_COLUMNS                                                                             \
    "toString(symbol), toString(timeframe), toInt64(ts), toFloat64(open), toFloat64(high), "       \
    "toFloat64(low), toFloat64(close), CAST(volume AS Nullable(Float64)), toString(source)"

static dm_bstatus refuse(const char *what, const char *value, dm_err *err)
{
    return dm_bfail(err, DM_BS_PERMANENT, what, "clickhouse: %s '%.40s' refused by the SQL check",
                    what, value);
}

/* Starts ch->sql with the key condition of one (symbol, timeframe) after checking both;
 * final: over deduplicated rows. */
static dm_bstatus begin_select(clickhouse *ch, const char *columns, bool final, const char *symbol,
                               dm_tf tf, dm_err *err)
{
    const char *tfs = (unsigned)tf < DM_TF_COUNT ? dm_tf_name(tf) : "";
    if (!dm_clickhouse_safe_symbol(symbol))
        return refuse("symbol", symbol ? symbol : "(null)", err);
    if (!dm_clickhouse_safe_timeframe(tfs))
        return refuse("timeframe", tfs, err);
    dm_buf_reset(&ch->sql);
    dm_buf_printf(&ch->sql, "SELECT %s FROM %s.candles%s WHERE symbol = '%s' AND timeframe = '%s'",
                  columns, ch->db, final ? " FINAL" : "", symbol, tfs);
    return DM_BS_OK;
}

static dm_bstatus select_rows(clickhouse *ch, const char *what, dm_err *err)
{
    if (ch->sql.oom)
        return dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
    dm_bstatus st = ensure_conn(ch, err);
    if (st != DM_BS_OK)
        return st;
    char params[96];
    /* wait_end_of_query: the server buffers the whole result, so an error raised midway
     * comes back as a status, never as text after rows of a 200 reply. */
    snprintf(params, sizeof params, "wait_end_of_query=1&max_execution_time=%d", ch->timeout_s);
    return post(ch, params, ch->sql.data, ch->sql.len, false, what, err);
}

/* Candles of [lo, hi) in ts order (descending when desc), at most limit, appended. */
static dm_bstatus read_range(clickhouse *ch, const char *symbol, dm_tf tf, int64_t lo, int64_t hi,
                             bool desc, size_t limit, const char *what, dm_candle_vec *out,
                             dm_err *err)
{
    dm_bstatus st = begin_select(ch, CANDLE_COLUMNS, true, symbol, tf, err);
    if (st != DM_BS_OK)
        return st;
    dm_buf_printf(&ch->sql,
                  " AND ts >= %lld AND ts < %lld ORDER BY ts%s LIMIT %zu FORMAT RowBinary",
                  (long long)lo, (long long)hi, desc ? " DESC" : "", limit);
    if ((st = select_rows(ch, what, err)) != DM_BS_OK)
        return st;
    return ch_read_candles(&ch->reply, what, out, err);
}

/* FINAL (18.16 at least) merges every part of the WHERE range before LIMIT applies, so
 * "the first page after the cursor" would read to the end of a ten-year range each time.
 * Reads therefore look in a window of twice the span `limit` gapless candles cover first
 * and go past it only when gaps (weekends, halts) left the window short: the answer is
 * the same, the work is bounded by the page. 0: no window (limit too large to bother). */
static int64_t window_ms(dm_tf tf, size_t limit)
{
    return limit > 100000 ? 0 : 2 * (int64_t)limit * dm_tf_ms(tf);
}

static dm_bstatus ch_candle_range(dm_backend *b, const dm_range_query *q, dm_candle_vec *out,
                                  dm_err *err)
{
    clickhouse *ch = (clickhouse *)b;
    int64_t w = window_ms(q->tf, q->limit), mid;
    if (w == 0 || __builtin_add_overflow(q->start, w, &mid) || mid >= q->end)
        return read_range(ch, q->symbol, q->tf, q->start, q->end, false, q->limit, "candle range",
                          out, err);
    size_t before = out->n;
    dm_bstatus st =
        read_range(ch, q->symbol, q->tf, q->start, mid, false, q->limit, "candle range", out, err);
    size_t got = out->n - before;
    if (st != DM_BS_OK || got >= q->limit)
        return st;
    return read_range(ch, q->symbol, q->tf, mid, q->end, false, q->limit - got, "candle range", out,
                      err);
}

/* Newest `limit` candles: the newest time first, then a window below it, then the rest if
 * gaps left the window short. Rows are only ever replaced, never removed, so max(ts) and
 * the raw row count (an upper bound of the candles) need no FINAL. MISS when this
 * (symbol, timeframe) has no candle at all. */
static dm_bstatus ch_latest_candles(dm_backend *b, const char *symbol, dm_tf tf, size_t limit,
                                    dm_candle_vec *out, dm_err *err)
{
    clickhouse *ch = (clickhouse *)b;
    dm_bstatus st = begin_select(ch, "toInt64(count()), toInt64(max(ts))", false, symbol, tf, err);
    if (st != DM_BS_OK)
        return st;
    dm_buf_puts(&ch->sql, " FORMAT RowBinary");
    if ((st = select_rows(ch, "latest candles", err)) != DM_BS_OK)
        return st;
    int64_t count, newest;
    if ((st = ch_read_two_i64(&ch->reply, "latest candles", &count, &newest, err)) != DM_BS_OK)
        return st;
    if (count <= 0 || limit == 0)
        return DM_BS_MISS;
    int64_t w = window_ms(tf, limit), hi = newest + 1, lo = INT64_MIN;
    if (w > 0 && newest > INT64_MIN + w)
        lo = hi - w;
    size_t before = out->n;
    st = read_range(ch, symbol, tf, lo, hi, true, limit, "latest candles", out, err);
    size_t got = out->n - before;
    if (st == DM_BS_OK && got < limit && (int64_t)got < count && lo > INT64_MIN)
        st = read_range(ch, symbol, tf, INT64_MIN, lo, true, limit - got, "latest candles", out,
                        err);
    if (st != DM_BS_OK) {
        out->n = before;
        return st;
    }
    ch_reverse_candles(out, before); /* read newest first, returned oldest first */
    return out->n == before ? DM_BS_MISS : DM_BS_OK;
}

/* Period keys, computed from ts alone (no time zone can shift them): the day number, the
 * day number of the week's Monday (1970-01-01 was a Thursday), the UTC yyyymm. */
static const char *period_key(dm_period p)
{
    switch (p) {
    case DM_PERIOD_1D: return "intDiv(ts, 86400000)";
    case DM_PERIOD_1W: return "intDiv(ts, 86400000) - (intDiv(ts, 86400000) + 3) % 7";
    default: return "toYYYYMM(toDateTime(intDiv(ts, 1000), 'UTC'))";
    }
}

/* Over FINAL rows, so a redelivered batch never counts twice. Returns are taken between
 * consecutive candles of the period in ts order: the closes are sorted by ts before the
 * pairwise division. The stddev comes with the number of returns it used. */
#define AGG_COLUMNS                                                                                \
    "toInt64(p), toInt64(count()), toFloat64(argMin(open, ts)), toFloat64(max(high)), "            \
    "toFloat64(min(low)), toFloat64(argMax(close, ts)), toFloat64(avg(close)), "                   \
    "toFloat64(sum(ifNull(volume, 0))), "                                                          \
    "toInt64(length(arrayMap((a, b) -> b / a - 1, "                                                \
    "arrayPopBack(arrayMap(x -> x.2, arraySort(x -> x.1, groupArray((ts, close)))) AS cs), "       \
    "arrayPopFront(cs)) AS rs)), "                                                                 \
    "toFloat64(arrayReduce('stddevSamp', rs))"

static dm_bstatus ch_aggregates(dm_backend *b, const dm_agg_query *q, dm_agg_vec *out, dm_err *err)
{
    clickhouse *ch = (clickhouse *)b;
    const char *tfs = (unsigned)q->tf < DM_TF_COUNT ? dm_tf_name(q->tf) : "";
    if (!dm_clickhouse_safe_symbol(q->symbol))
        return refuse("symbol", q->symbol ? q->symbol : "(null)", err);
    if (!dm_clickhouse_safe_timeframe(tfs))
        return refuse("timeframe", tfs, err);
    dm_buf_reset(&ch->sql);
    dm_buf_printf(&ch->sql,
                  "SELECT " AGG_COLUMNS " FROM (SELECT ts, open, high, low, close, volume, "
                  "toInt64(%s) AS p FROM %s.candles FINAL WHERE symbol = '%s' AND timeframe = "
                  "'%s' AND ts >= %lld AND ts < %lld) GROUP BY p ORDER BY p FORMAT RowBinary",
                  period_key(q->period), ch->db, q->symbol, tfs, (long long)q->start,
                  (long long)q->end);
    dm_bstatus st = select_rows(ch, "aggregates", err);
    return st != DM_BS_OK ? st : ch_read_aggregates(&ch->reply, q->period, out, err);
}

static dm_bstatus ch_ping(dm_backend *b, dm_err *err)
{
    clickhouse *ch = (clickhouse *)b;
    dm_bstatus st = ensure_conn(ch, err);
    return st != DM_BS_OK ? st : run_sql(ch, "", "SELECT 1", "ping", err);
}

/* ---- life cycle ---------------------------------------------------------------------- */

static void ch_destroy(dm_backend *b)
{
    clickhouse *ch = (clickhouse *)b;
    if (ch == NULL)
        return;
    ch_http_close(ch);
    dm_buf_free(&ch->sql);
    dm_buf_free(&ch->body);
    free(ch->scratch);
    explicit_bzero(ch->password, sizeof ch->password);
    free(ch);
}

static const dm_backend_ops OPS = {
    .write_ticks = ch_write_ticks,
    .write_candles = ch_write_candles,
    .latest_candles = ch_latest_candles,
    .candle_range = ch_candle_range,
    .aggregates = ch_aggregates,
    .ping = ch_ping,
    .destroy = ch_destroy,
};

/* Base url without credentials or trailing '/', and "host[:port]" for logs. */
static bool parse_url(clickhouse *ch, const char *url)
{
    size_t scheme = strncmp(url, "http://", 7) == 0 ? 7 : strncmp(url, "https://", 8) == 0 ? 8 : 0;
    if (scheme == 0 || strlen(url) >= sizeof ch->url)
        return false;
    size_t auth = strcspn(url + scheme, "/?#");
    if (memchr(url + scheme, '@', auth) != NULL || auth == 0 || url[scheme + auth] == '?' ||
        url[scheme + auth] == '#')
        return false;
    snprintf(ch->url, sizeof ch->url, "%s", url);
    size_t n = strlen(ch->url);
    while (n > scheme + auth && ch->url[n - 1] == '/')
        ch->url[--n] = '\0';
    snprintf(ch->where, sizeof ch->where, "%.*s", (int)auth, url + scheme);
    return true;
}

static struct curl_slist *headers(const clickhouse *ch, const char *content_type, bool *ok)
{
    char line[400];
    struct curl_slist *h = NULL, *t;
    snprintf(line, sizeof line, "Content-Type: %s", content_type);
    *ok = (t = curl_slist_append(h, line)) != NULL && (h = t) != NULL;
    /* Bodies can be large: no "Expect: 100-continue" round trip. */
    *ok = *ok && (t = curl_slist_append(h, "Expect:")) != NULL && (h = t) != NULL;
    if (ch->user[0]) {
        snprintf(line, sizeof line, "X-ClickHouse-User: %s", ch->user);
        *ok = *ok && (t = curl_slist_append(h, line)) != NULL && (h = t) != NULL;
        snprintf(line, sizeof line, "X-ClickHouse-Key: %s", ch->password);
        *ok = *ok && (t = curl_slist_append(h, line)) != NULL && (h = t) != NULL;
        explicit_bzero(line, sizeof line);
    }
    return h;
}

static clickhouse *instance(const cJSON *cfg, int timeout_s, dm_err *err)
{
    clickhouse *ch = calloc(1, sizeof *ch);
    if (ch == NULL) {
        dm_fail(err, DM_E_INTERNAL, "", "out of memory");
        return NULL;
    }
    ch->base.ops = &OPS;
    ch->base.id = DM_BK_CLICKHOUSE;
    ch->timeout_s = timeout_s > 0 ? timeout_s : 30;
    ch->last_code = ch->hdr_code = -1;
    const char *url = dm_cfg_str(cfg, "url", "http://127.0.0.1:8123");
    snprintf(ch->db, sizeof ch->db, "%s", dm_cfg_str(cfg, "database", "dm"));
    snprintf(ch->user, sizeof ch->user, "%s", dm_cfg_str(cfg, "user", "default"));
    snprintf(ch->password, sizeof ch->password, "%s", dm_cfg_str(cfg, "password", ""));
    dm_buf_init(&ch->sql);
    dm_buf_init(&ch->body);
    bool ok = false, ok2 = false;
    if (!parse_url(ch, url))
        dm_fail(err, DM_E_INVALID_FIELD, "url",
                "clickhouse.json: url must be http(s)://host:port[/path] without credentials "
                "(user and password have their own fields)");
    else if (!dm_clickhouse_safe_ident(dm_cfg_str(cfg, "database", "dm")))
        dm_fail(err, DM_E_INVALID_FIELD, "database",
                "clickhouse.json: database must be a plain identifier [A-Za-z_][A-Za-z0-9_]*");
    else if (!dm_clickhouse_safe_header(ch->user) || !dm_clickhouse_safe_header(ch->password))
        dm_fail(err, DM_E_INVALID_FIELD, "user",
                "clickhouse.json: user and password must not "
                "contain control characters");
    else if (!ch_http_open(ch, on_body))
        dm_fail(err, DM_E_INTERNAL, "", "clickhouse: cannot create a curl handle");
    else {
        ch->hdr_sql = headers(ch, "text/plain; charset=UTF-8", &ok);
        ch->hdr_bin = headers(ch, "application/octet-stream", &ok2);
        if (!ok || !ok2)
            dm_fail(err, DM_E_INTERNAL, "", "out of memory");
    }
    if (!ok || !ok2) {
        ch_destroy(&ch->base);
        return NULL;
    }
    return ch;
}

dm_backend *dm_clickhouse_create(const cJSON *cfg, int timeout_s)
{
    dm_err err = {0};
    clickhouse *ch = instance(cfg, timeout_s, &err);
    if (ch == NULL) {
        DM_ERROR("clickhouse", "%s", err.message);
        return NULL;
    }
    return &ch->base;
}

dm_code dm_clickhouse_migrate(const cJSON *cfg, dm_err *err)
{
    clickhouse *ch = instance(cfg, 60, err);
    if (ch == NULL)
        return err->code;
    dm_bstatus st = ensure_conn(ch, err);
    if (st == DM_BS_OK)
        st = apply_schema(ch, err);
    if (st == DM_BS_OK)
        DM_INFO("clickhouse", "schema applied to database %s (server %s)", ch->db, ch->version);
    ch_destroy(&ch->base);
    return st == DM_BS_OK ? DM_OK : err->code;
}
