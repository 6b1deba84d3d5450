#include "clickhouse_format.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- checks ---------------------------------------------------------------------------- */

static bool upper_alnum(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool dm_clickhouse_safe_symbol(const char *s)
{
    if (s == NULL)
        return false;
    size_t n = strnlen(s, DM_SYMBOL_MAX + 1), slash = 0, slashes = 0;
    if (n == 0 || n > DM_SYMBOL_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '/') {
            slash = i;
            slashes++;
        } else if (!upper_alnum(s[i])) {
            return false;
        }
    }
    if (slashes == 0)
        return n == 6;
    return slashes == 1 && slash > 0 && slash < n - 1;
}

bool dm_clickhouse_safe_timeframe(const char *s)
{
    dm_tf tf;
    return s != NULL && dm_tf_parse(s, &tf) && strcmp(dm_tf_name(tf), s) == 0;
}

bool dm_clickhouse_safe_ident(const char *s)
{
    if (s == NULL || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return false;
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= DM_CH_IDENT_MAX || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                      (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

bool dm_clickhouse_safe_header(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* ---- dates ----------------------------------------------------------------------------- */

/* Days since 1970-01-01 of a civil date, and back (H. Hinnant's algorithms). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* yyyymm of a Unix ms time, as toYYYYMM(toDateTime(intDiv(ts, 1000), 'UTC')). */
static uint32_t month_of(int64_t ms)
{
    int64_t z = (ms >= 0 ? ms / DM_DAY_MS : -((-ms + DM_DAY_MS - 1) / DM_DAY_MS)) + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = (int64_t)yoe + era * 400 + (m <= 2);
    return (uint32_t)(y * 100 + m);
}

/* Start of the period whose key the aggregates query computed (period_key in
 * clickhouse.c): a day number, a Monday's day number, or yyyymm. */
static int64_t period_start_ms(dm_period p, int64_t key)
{
    if (p == DM_PERIOD_1MO)
        return days_from_civil(key / 100, (unsigned)(key % 100), 1) * DM_DAY_MS;
    return key * DM_DAY_MS;
}

/* ---- batches --------------------------------------------------------------------------- */

typedef struct {
    const table_def *def;
    const void *rows;
} sort_ctx;

static int cmp_rows(const void *a, const void *b, void *ctx)
{
    const ch_row_key *x = a, *y = b;
    const sort_ctx *s = ctx;
    if (x->month != y->month)
        return x->month < y->month ? -1 : 1;
    int c = s->def->cmp(s->rows, x->idx, y->idx);
    if (c == 0) /* same key twice in a batch: batch order, so the later copy is kept */
        c = x->idx < y->idx ? -1 : 1;
    return c;
}

void ch_batch_order(const table_def *def, const void *rows, size_t n, ch_row_key *keys)
{
    for (size_t i = 0; i < n; i++)
        keys[i] = (ch_row_key){month_of(def->ts(rows, i)), (uint32_t)i};
    sort_ctx ctx = {def, rows};
    qsort_r(keys, n, sizeof *keys, cmp_rows, &ctx);
}

size_t ch_batch_slice(const table_def *def, const void *rows, const ch_row_key *keys, size_t n,
                      size_t i, uint64_t version, dm_buf *body)
{
    dm_buf_reset(body);
    size_t months = 0;
    uint32_t month = 0;
    for (; i < n; i++) {
        if (i + 1 < n && keys[i + 1].month == keys[i].month &&
            def->cmp(rows, keys[i].idx, keys[i + 1].idx) == 0)
            continue; /* a later copy of this key follows */
        if (months == 0 || keys[i].month != month) {
            if (months == DM_CH_PARTITIONS_PER_INSERT)
                break;
            months++;
            month = keys[i].month;
        }
        def->encode(body, rows, keys[i].idx, version);
    }
    return i;
}

/* ---- replies --------------------------------------------------------------------------- */

typedef struct {
    const unsigned char *p, *end;
    bool bad;
} rb_reader;

static bool rd_need(rb_reader *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n)
        r->bad = true;
    return !r->bad;
}

static uint64_t rd_u64(rb_reader *r)
{
    uint64_t v = 0;
    if (!rd_need(r, 8))
        return 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += 8;
    return v;
}

static int64_t rd_i64(rb_reader *r)
{
    return (int64_t)rd_u64(r);
}

static double rd_f64(rb_reader *r)
{
    uint64_t u = rd_u64(r);
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static void rd_str(rb_reader *r, char *dst, size_t cap)
{
    uint64_t n = 0;
    for (int shift = 0;; shift += 7) {
        if (shift > 63 || !rd_need(r, 1)) {
            r->bad = true;
            dst[0] = '\0';
            return;
        }
        unsigned char c = *r->p++;
        n |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            break;
    }
    if (n >= cap || !rd_need(r, (size_t)n)) {
        r->bad = true;
        dst[0] = '\0';
        return;
    }
    memcpy(dst, r->p, (size_t)n);
    dst[n] = '\0';
    r->p += n;
}

static bool rd_nf64(rb_reader *r, double *v)
{
    *v = 0;
    if (!rd_need(r, 1))
        return false;
    bool null = *r->p++ != 0;
    if (!null)
        *v = rd_f64(r);
    return !null;
}

static rb_reader reader_of(const dm_buf *reply)
{
    const unsigned char *p = (const unsigned char *)reply->data;
    return (rb_reader){p, p + reply->len, false};
}

static dm_bstatus unreadable(const char *what, dm_err *err)
{
    return dm_bfail(err, DM_BS_PERMANENT, "", "clickhouse %s: reply is not the expected RowBinary",
                    what);
}

/* One row of CANDLE_COLUMNS (clickhouse.c); r->bad when it does not read as one. */
static void read_candle(rb_reader *r, dm_candle *c)
{
    memset(c, 0, sizeof *c);
    char tf[8];
    rd_str(r, c->symbol, sizeof c->symbol);
    rd_str(r, tf, sizeof tf);
    c->ts = rd_i64(r);
    c->open = rd_f64(r);
    c->high = rd_f64(r);
    c->low = rd_f64(r);
    c->close = rd_f64(r);
    c->has_volume = rd_nf64(r, &c->volume);
    rd_str(r, c->source, sizeof c->source);
    if (!r->bad && !dm_tf_parse(tf, &c->tf))
        r->bad = true;
}

dm_bstatus ch_read_candles(const dm_buf *reply, const char *what, dm_candle_vec *out, dm_err *err)
{
    rb_reader r = reader_of(reply);
    size_t first = out->n;
    while (r.p < r.end && !r.bad) {
        dm_candle *c = dm_candle_vec_push(out);
        if (c == NULL) {
            out->n = first;
            return dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
        }
        read_candle(&r, c);
    }
    if (r.bad) {
        out->n = first;
        return unreadable(what, err);
    }
    return DM_BS_OK;
}

/* One row of AGG_COLUMNS (clickhouse.c). */
static void read_aggregate(rb_reader *r, dm_period period, dm_agg_row *a)
{
    memset(a, 0, sizeof *a);
    a->period_start = period_start_ms(period, rd_i64(r));
    a->count = rd_i64(r);
    a->open = rd_f64(r);
    a->high = rd_f64(r);
    a->low = rd_f64(r);
    a->close = rd_f64(r);
    a->mean = rd_f64(r);
    a->volume = rd_f64(r);
    int64_t returns = rd_i64(r);
    double sd = rd_f64(r);
    a->range = a->high - a->low;
    a->has_stddev = returns >= 2 && isfinite(sd);
    a->stddev_returns = a->has_stddev ? sd : 0;
}

dm_bstatus ch_read_aggregates(const dm_buf *reply, dm_period period, dm_agg_vec *out,
                              dm_err *err)
{
    rb_reader r = reader_of(reply);
    size_t first = out->n;
    while (r.p < r.end && !r.bad) {
        dm_agg_row *a = dm_agg_vec_push(out);
        if (a == NULL) {
            out->n = first;
            return dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
        }
        read_aggregate(&r, period, a);
    }
    if (r.bad) {
        out->n = first;
        return unreadable("aggregates", err);
    }
    return DM_BS_OK;
}

void ch_reverse_candles(dm_candle_vec *out, size_t from)
{
    for (size_t i = from, j = out->n; i + 1 < j; i++, j--) {
        dm_candle tmp = out->v[i];
        out->v[i] = out->v[j - 1];
        out->v[j - 1] = tmp;
    }
}

dm_bstatus ch_read_two_i64(const dm_buf *reply, const char *what, int64_t *a, int64_t *b,
                           dm_err *err)
{
    rb_reader r = reader_of(reply);
    *a = rd_i64(&r);
    *b = rd_i64(&r);
    return r.bad || r.p != r.end ? unreadable(what, err) : DM_BS_OK;
}
