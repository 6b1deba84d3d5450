#include "clickhouse.h"

#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../codec/enc.h"
#include "../util/config.h"
#include "../util/log.h"

extern const char dm_clickhouse_schema_sql[];

#define CH_MAX_REPLY (64u << 20) /* a page is at most 10,001 candles, about 1 MB */
#define CH_CONNECT_TIMEOUT_S 5
/* Servers close idle keep-alive connections after keep_alive_timeout (3 s by default
 * up to 22.x, 10 s later); reusing one at that moment fails the request. */
#define CH_MAX_IDLE_S 2

typedef struct {
    dm_backend base;
    CURL *curl;
    struct curl_slist *hdr_sql, *hdr_bin;
    char url[512];   /* base, without a trailing '/' or credentials */
    char where[300]; /* host[:port] for log lines */
    char db[DM_CH_IDENT_MAX + 1];
    char user[128], password[256];
    char version[32];
    int timeout_s;
    bool connected; /* the server answered since the last transport failure */
    int last_code;  /* ClickHouse error code of the last failed request, -1: none */
    int hdr_code;   /* X-ClickHouse-Exception-Code of the reply being read */
    dm_buf sql, body, reply, target;
    void *scratch; /* sort keys of the batch being written */
    size_t scratch_cap;
} clickhouse;

/* ---- checks -------------------------------------------------------------------------- */

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

/* ---- errors -------------------------------------------------------------------------- */

static size_t skip_prefix(const char *p, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && memcmp(p, prefix, k) == 0 ? k : 0;
}

int dm_clickhouse_parse_error(const char *body, size_t len, char *msg, size_t cap)
{
    if (msg && cap)
        msg[0] = '\0';
    if (body == NULL)
        return -1;
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
        i++;
    size_t k = skip_prefix(body + i, len - i, "Code: ");
    if (k == 0)
        return -1;
    i += k;
    long code = 0;
    size_t digits = 0;
    for (; i < len && body[i] >= '0' && body[i] <= '9' && digits < 6; i++, digits++)
        code = code * 10 + (body[i] - '0');
    if (digits == 0 || digits >= 6 || i >= len || (body[i] != ',' && body[i] != '.'))
        return -1;
    i++;
    if (msg && cap) {
        /* 18.16: ", e.displayText() = DB::Exception: TEXT, e.what() = DB::Exception"
         * current: ". DB::Exception: TEXT. (NAME) (version X)" */
        while (i < len && body[i] == ' ')
            i++;
        i += skip_prefix(body + i, len - i, "e.displayText() = ");
        i += skip_prefix(body + i, len - i, "DB::Exception: ");
        size_t end = i;
        while (end < len && body[end] != '\n' && body[end] != '\r')
            end++;
        static const char what[] = ", e.what() = ";
        for (size_t j = i; j + sizeof what - 1 <= end; j++)
            if (memcmp(body + j, what, sizeof what - 1) == 0) {
                end = j;
                break;
            }
        size_t n = end - i < cap - 1 ? end - i : cap - 1, o = 0;
        for (size_t j = 0; j < n; j++) /* a log line stays one printable line */
            msg[o++] = (unsigned char)body[i + j] < 0x20 ? ' ' : body[i + j];
        msg[o] = '\0';
    }
    return (int)code;
}

dm_bstatus dm_clickhouse_classify(long http_status, int code)
{
    /* Codes a retry can cure, from ClickHouse's src/Common/ErrorCodes.cpp. */
    static const int transient[] = {
        60,             /* UNKNOWN_TABLE: schema not applied yet */
        81,             /* UNKNOWN_DATABASE: same */
        159,            /* TIMEOUT_EXCEEDED */
        160,            /* TOO_SLOW */
        164,            /* READONLY: the account, not the data */
        173,            /* CANNOT_ALLOCATE_MEMORY */
        192,  193, 194, /* UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD */
        201,            /* QUOTA_EXPIRED */
        202,            /* TOO_MANY_SIMULTANEOUS_QUERIES */
        203,            /* NO_FREE_CONNECTION */
        209,            /* SOCKET_TIMEOUT */
        210,            /* NETWORK_ERROR */
        236,            /* ABORTED */
        241,            /* MEMORY_LIMIT_EXCEEDED */
        242,            /* TABLE_IS_READ_ONLY */
        243,            /* NOT_ENOUGH_SPACE */
        252,            /* TOO_MANY_PARTS */
        285,  286,      /* TOO_FEW_LIVE_REPLICAS, UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE */
        291,            /* DATABASE_ACCESS_DENIED */
        319,            /* UNKNOWN_STATUS_OF_INSERT */
        394,            /* QUERY_WAS_CANCELLED */
        425,            /* SYSTEM_ERROR */
        439,            /* CANNOT_SCHEDULE_TASK */
        473,            /* DEADLOCK_AVOIDED */
        497,            /* ACCESS_DENIED */
        516,            /* AUTHENTICATION_FAILED */
        999,            /* KEEPER_EXCEPTION */
        1000,           /* POCO_EXCEPTION: mostly network trouble inside the server */
    };
    if (code >= 0) {
        for (size_t i = 0; i < sizeof transient / sizeof *transient; i++)
            if (transient[i] == code)
                return DM_BS_TRANSIENT;
        return DM_BS_PERMANENT;
    }
    /* No ClickHouse error text: a proxy or balancer answered. */
    return http_status >= 500 || http_status == 408 || http_status == 429 || http_status == 401 ||
                   http_status == 403
               ? DM_BS_TRANSIENT
               : DM_BS_PERMANENT;
}

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

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    clickhouse *ch = ud;
    size_t n = size * nmemb;
    static const char name[] = "X-ClickHouse-Exception-Code:";
    if (n > sizeof name - 1 && strncasecmp(p, name, sizeof name - 1) == 0) {
        char v[16];
        size_t k = 0;
        for (size_t i = sizeof name - 1; i < n && k < sizeof v - 1; i++)
            if (p[i] >= '0' && p[i] <= '9')
                v[k++] = p[i];
        v[k] = '\0';
        if (k > 0 && k < 6)
            ch->hdr_code = atoi(v);
    }
    return n;
}

static void first_line(const dm_buf *b, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < b->len && n + 1 < cap && b->data[i] != '\n'; i++)
        out[n++] = (unsigned char)b->data[i] < 0x20 ? ' ' : b->data[i];
    out[n] = '\0';
}

static dm_bstatus http_fail(clickhouse *ch, long status, const char *what, dm_err *err)
{
    char msg[200];
    int code = dm_clickhouse_parse_error(ch->reply.data, ch->reply.len, msg, sizeof msg);
    if (ch->hdr_code >= 0)
        code = ch->hdr_code;
    ch->last_code = code;
    dm_bstatus st = dm_clickhouse_classify(status, code);
    if (code >= 0)
        return dm_bfail(err, st, "", "clickhouse %s failed: HTTP %ld, code %d: %s", what, status,
                        code, msg[0] ? msg : "no message");
    first_line(&ch->reply, msg, 120);
    return dm_bfail(err, st, "", "clickhouse %s failed: HTTP %ld from %s: %s", what, status,
                    ch->where, msg[0] ? msg : "empty reply");
}

/* POSTs body to url/?params. The reply lands in ch->reply. All our requests are
 * idempotent, so a request that died on a reused connection is sent once more. */
static dm_bstatus post(clickhouse *ch, const char *params, const void *body, size_t len,
                       bool binary, const char *what, dm_err *err)
{
    dm_buf_reset(&ch->target);
    dm_buf_printf(&ch->target, "%s/?%s", ch->url, params);
    if (ch->target.oom)
        return dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
    ch->last_code = -1;
    CURLcode rc = CURLE_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        dm_buf_reset(&ch->reply);
        ch->hdr_code = -1;
        curl_easy_setopt(ch->curl, CURLOPT_URL, ch->target.data);
        curl_easy_setopt(ch->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(ch->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(ch->curl, CURLOPT_HTTPHEADER, binary ? ch->hdr_bin : ch->hdr_sql);
        rc = curl_easy_perform(ch->curl);
        long fresh = 1;
        curl_easy_getinfo(ch->curl, CURLINFO_NUM_CONNECTS, &fresh);
        bool stale = fresh == 0 &&
                     (rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING);
        if (!stale)
            break;
    }
    if (rc != CURLE_OK) {
        if (ch->reply.oom)
            return dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
        if (rc == CURLE_WRITE_ERROR)
            return dm_bfail(err, DM_BS_PERMANENT, "", "clickhouse %s: reply larger than %u MB",
                            what, CH_MAX_REPLY >> 20);
        ch->connected = false;
        return dm_bfail(err, DM_BS_TRANSIENT, "", "clickhouse %s failed: %s (%s)", what,
                        curl_easy_strerror(rc), ch->where);
    }
    long status = 0;
    curl_easy_getinfo(ch->curl, CURLINFO_RESPONSE_CODE, &status);
    return status == 200 ? DM_BS_OK : http_fail(ch, status, what, err);
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
    first_line(&ch->reply, ch->version, sizeof ch->version);
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

static rb_reader reader_of(const clickhouse *ch)
{
    const unsigned char *p = (const unsigned char *)ch->reply.data;
    return (rb_reader){p, p + ch->reply.len, false};
}

/* ---- dates --------------------------------------------------------------------------- */

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

/* ---- writes -------------------------------------------------------------------------- */

typedef struct {
    const char *what, *table, *columns;
    int64_t (*ts)(const void *rows, size_t i);
    int (*cmp)(const void *rows, size_t a, size_t b); /* natural key */
    void (*encode)(dm_buf *out, const void *rows, size_t i, uint64_t version);
} table_def;

typedef struct {
    uint32_t month;
    uint32_t idx;
} row_key;

typedef struct {
    const table_def *def;
    const void *rows;
} sort_ctx;

static int cmp_rows(const void *a, const void *b, void *ctx)
{
    const row_key *x = a, *y = b;
    const sort_ctx *s = ctx;
    if (x->month != y->month)
        return x->month < y->month ? -1 : 1;
    int c = s->def->cmp(s->rows, x->idx, y->idx);
    if (c == 0) /* same key twice in a batch: batch order, so the later copy is kept */
        c = x->idx < y->idx ? -1 : 1;
    return c;
}

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
        void *p = realloc(ch->scratch, n * sizeof(row_key));
        if (p == NULL)
            return dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
        ch->scratch = p;
        ch->scratch_cap = n;
    }
    row_key *keys = ch->scratch;
    for (size_t i = 0; i < n; i++)
        keys[i] = (row_key){month_of(def->ts(rows, i)), (uint32_t)i};
    sort_ctx ctx = {def, rows};
    qsort_r(keys, n, sizeof *keys, cmp_rows, &ctx);
    uint64_t version = (uint64_t)dm_now_ms();
    size_t i = 0;
    while (i < n) {
        dm_buf_reset(&ch->body);
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
            def->encode(&ch->body, rows, keys[i].idx, version);
        }
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

static dm_bstatus unreadable(const char *what, dm_err *err)
{
    return dm_bfail(err, DM_BS_PERMANENT, "", "clickhouse %s: reply is not the expected RowBinary",
                    what);
}

static dm_bstatus read_candles(clickhouse *ch, const char *what, dm_candle_vec *out, dm_err *err)
{
    rb_reader r = reader_of(ch);
    size_t first = out->n;
    while (r.p < r.end && !r.bad) {
        dm_candle *c = dm_candle_vec_push(out);
        if (c == NULL)
            return dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
        memset(c, 0, sizeof *c);
        char tf[8];
        rd_str(&r, c->symbol, sizeof c->symbol);
        rd_str(&r, tf, sizeof tf);
        c->ts = rd_i64(&r);
        c->open = rd_f64(&r);
        c->high = rd_f64(&r);
        c->low = rd_f64(&r);
        c->close = rd_f64(&r);
        c->has_volume = rd_nf64(&r, &c->volume);
        rd_str(&r, c->source, sizeof c->source);
        if (!r.bad && !dm_tf_parse(tf, &c->tf))
            r.bad = true;
    }
    if (r.bad) {
        out->n = first;
        return unreadable(what, err);
    }
    return DM_BS_OK;
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
    return read_candles(ch, what, out, err);
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
    rb_reader r = reader_of(ch);
    int64_t count = rd_i64(&r), newest = rd_i64(&r);
    if (r.bad || r.p != r.end)
        return unreadable("latest candles", err);
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
    for (size_t i = before, j = out->n; i + 1 < j; i++, j--) { /* oldest first */
        dm_candle tmp = out->v[i];
        out->v[i] = out->v[j - 1];
        out->v[j - 1] = tmp;
    }
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

static int64_t period_start_ms(dm_period p, int64_t key)
{
    if (p == DM_PERIOD_1MO)
        return days_from_civil(key / 100, (unsigned)(key % 100), 1) * DM_DAY_MS;
    return key * DM_DAY_MS;
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
    if (st != DM_BS_OK)
        return st;
    rb_reader r = reader_of(ch);
    size_t first = out->n;
    while (r.p < r.end && !r.bad) {
        dm_agg_row *a = dm_agg_vec_push(out);
        if (a == NULL)
            return dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
        memset(a, 0, sizeof *a);
        a->period_start = period_start_ms(q->period, rd_i64(&r));
        a->count = rd_i64(&r);
        a->open = rd_f64(&r);
        a->high = rd_f64(&r);
        a->low = rd_f64(&r);
        a->close = rd_f64(&r);
        a->mean = rd_f64(&r);
        a->volume = rd_f64(&r);
        int64_t returns = rd_i64(&r);
        double sd = rd_f64(&r);
        a->range = a->high - a->low;
        a->has_stddev = returns >= 2 && isfinite(sd);
        a->stddev_returns = a->has_stddev ? sd : 0;
    }
    if (r.bad) {
        out->n = first;
        return unreadable("aggregates", err);
    }
    return DM_BS_OK;
}

static dm_bstatus ch_ping(dm_backend *b, dm_err *err)
{
    clickhouse *ch = (clickhouse *)b;
    dm_bstatus st = ensure_conn(ch, err);
    return st != DM_BS_OK ? st : run_sql(ch, "", "SELECT 1", "ping", err);
}

/* ---- life cycle ---------------------------------------------------------------------- */

static void free_headers(struct curl_slist *h)
{
    /* The key header holds the password: wipe it before the memory goes back. */
    for (struct curl_slist *p = h; p; p = p->next)
        explicit_bzero(p->data, strlen(p->data));
    curl_slist_free_all(h);
}

static void ch_destroy(dm_backend *b)
{
    clickhouse *ch = (clickhouse *)b;
    if (ch == NULL)
        return;
    if (ch->curl)
        curl_easy_cleanup(ch->curl);
    free_headers(ch->hdr_sql);
    free_headers(ch->hdr_bin);
    dm_buf_free(&ch->sql);
    dm_buf_free(&ch->body);
    dm_buf_free(&ch->reply);
    dm_buf_free(&ch->target);
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

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_cleanup_at_exit(void)
{
    curl_global_cleanup();
}

static void curl_init_once(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK)
        atexit(curl_cleanup_at_exit);
}

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

static bool printable_field(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

static clickhouse *instance(const cJSON *cfg, int timeout_s, dm_err *err)
{
    pthread_once(&curl_once, curl_init_once);
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
    dm_buf_init(&ch->reply);
    dm_buf_init(&ch->target);
    bool ok = false, ok2 = false;
    if (!parse_url(ch, url))
        dm_fail(err, DM_E_INVALID_FIELD, "url",
                "clickhouse.json: url must be http(s)://host:port[/path] without credentials "
                "(user and password have their own fields)");
    else if (!dm_clickhouse_safe_ident(dm_cfg_str(cfg, "database", "dm")))
        dm_fail(err, DM_E_INVALID_FIELD, "database",
                "clickhouse.json: database must be a plain identifier [A-Za-z_][A-Za-z0-9_]*");
    else if (!printable_field(ch->user) || !printable_field(ch->password))
        dm_fail(err, DM_E_INVALID_FIELD, "user",
                "clickhouse.json: user and password must not "
                "contain control characters");
    else if ((ch->curl = curl_easy_init()) == NULL)
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
    CURL *c = ch->curl;
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)ch->timeout_s * 1000);
    curl_easy_setopt(
        c, CURLOPT_CONNECTTIMEOUT_MS,
        (long)(ch->timeout_s < CH_CONNECT_TIMEOUT_S ? ch->timeout_s : CH_CONNECT_TIMEOUT_S) * 1000);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_MAXAGE_CONN, (long)CH_MAX_IDLE_S);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, ch);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, ch);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "dm-worker");
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
