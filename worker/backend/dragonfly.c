#include "dragonfly.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/enc.h"
#include "util/config.h"

typedef struct {
    dm_backend base;
    redisContext *ctx;
    char host[256], password[256];
    int port, db, timeout_ms;
    size_t *order; /* scratch: batch indexes sorted by key then time */
    size_t order_cap;
} dragonfly;

static dm_bstatus fail(dragonfly *d, const char *what, const char *detail, dm_err *err)
{
    dm_bfail(err, DM_BS_TRANSIENT, "", "dragonfly %s failed: %s", what,
             detail ? detail : (d->ctx && d->ctx->errstr[0] ? d->ctx->errstr : "no reply"));
    /* After a protocol or I/O error the reply stream is out of step: start afresh. */
    if (d->ctx) {
        redisFree(d->ctx);
        d->ctx = NULL;
    }
    return DM_BS_TRANSIENT;
}

static dm_bstatus ensure_conn(dragonfly *d, dm_err *err)
{
    if (d->ctx)
        return DM_BS_OK;
    struct timeval tv = {d->timeout_ms / 1000, (d->timeout_ms % 1000) * 1000};
    d->ctx = redisConnectWithTimeout(d->host, d->port, tv);
    if (d->ctx == NULL || d->ctx->err)
        return fail(d, "connect", NULL, err);
    redisSetTimeout(d->ctx, tv);
    redisEnableKeepAlive(d->ctx);
    if (d->password[0]) {
        redisReply *r = redisCommand(d->ctx, "AUTH %s", d->password);
        bool ok = r && r->type != REDIS_REPLY_ERROR;
        freeReplyObject(r);
        if (!ok)
            return fail(d, "AUTH", "authentication refused", err);
    }
    if (d->db > 0) {
        redisReply *r = redisCommand(d->ctx, "SELECT %d", d->db);
        bool ok = r && r->type != REDIS_REPLY_ERROR;
        freeReplyObject(r);
        if (!ok)
            return fail(d, "SELECT", "database refused", err);
    }
    return DM_BS_OK;
}

/* Reads n pipelined replies; any error reply fails the whole call. */
static dm_bstatus drain(dragonfly *d, size_t n, dm_err *err)
{
    dm_bstatus st = DM_BS_OK;
    for (size_t i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(d->ctx, (void **)&r) != REDIS_OK)
            return fail(d, "pipeline", NULL, err);
        if (r->type == REDIS_REPLY_ERROR && st == DM_BS_OK)
            st = dm_bfail(err, DM_BS_TRANSIENT, "", "dragonfly command failed: %.120s", r->str);
        if (r->type == REDIS_REPLY_ARRAY) /* EXEC: errors of queued commands are inside */
            for (size_t k = 0; k < r->elements && st == DM_BS_OK; k++)
                if (r->element[k]->type == REDIS_REPLY_ERROR)
                    st = dm_bfail(err, DM_BS_TRANSIENT, "", "dragonfly command failed: %.120s",
                                  r->element[k]->str);
        freeReplyObject(r);
    }
    return st;
}

static int fmt_num(char *p, double v) { return dm_fmt_double(p, 40, v); }

static size_t tick_member(char *buf, size_t cap, const dm_tick *t)
{
    char b[40], a[40], s[40], v[40] = "";
    fmt_num(b, t->bid);
    fmt_num(a, t->ask);
    fmt_num(s, t->spread);
    if (t->has_volume)
        fmt_num(v, t->volume);
    return (size_t)snprintf(buf, cap, "%lld|%s|%s|%s|%s|%s", (long long)t->ts, b, a, s, v,
                            t->source);
}

static size_t candle_member(char *buf, size_t cap, const dm_candle *c)
{
    char o[40], h[40], l[40], cl[40], v[40] = "";
    fmt_num(o, c->open);
    fmt_num(h, c->high);
    fmt_num(l, c->low);
    fmt_num(cl, c->close);
    if (c->has_volume)
        fmt_num(v, c->volume);
    return (size_t)snprintf(buf, cap, "%lld|%s|%s|%s|%s|%s|%s", (long long)c->ts, o, h, l, cl, v,
                            c->source);
}

/* Splits "a|b|c" in place; returns the number of fields. */
static int split(char *s, char **f, int max)
{
    int n = 0;
    while (n < max) {
        f[n++] = s;
        char *bar = strchr(s, '|');
        if (bar == NULL)
            break;
        *bar = '\0';
        s = bar + 1;
    }
    return n;
}

/* A field of a member: a number, or "" for an absent volume. */
static bool num(const char *f, double *out) { return dm_parse_double(f, strlen(f), out); }

static bool opt_num(const char *f, double *out, bool *has)
{
    *has = f[0] != '\0';
    return !*has || num(f, out);
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static bool parse_tick(const char *member, size_t len, const char *symbol, dm_tick *t)
{
    char buf[256], *f[6];
    if (len >= sizeof buf)
        return false;
    memcpy(buf, member, len);
    buf[len] = '\0';
    if (split(buf, f, 6) != 6)
        return false;
    memset(t, 0, sizeof *t);
    copy_str(t->symbol, sizeof t->symbol, symbol);
    t->ts = strtoll(f[0], NULL, 10);
    copy_str(t->source, sizeof t->source, f[5]);
    return num(f[1], &t->bid) && num(f[2], &t->ask) && num(f[3], &t->spread) &&
           opt_num(f[4], &t->volume, &t->has_volume);
}

static bool parse_candle(const char *member, size_t len, const char *symbol, dm_tf tf,
                         dm_candle *c)
{
    char buf[256], *f[7];
    if (len >= sizeof buf)
        return false;
    memcpy(buf, member, len);
    buf[len] = '\0';
    if (split(buf, f, 7) != 7)
        return false;
    memset(c, 0, sizeof *c);
    copy_str(c->symbol, sizeof c->symbol, symbol);
    c->tf = tf;
    c->ts = strtoll(f[0], NULL, 10);
    copy_str(c->source, sizeof c->source, f[6]);
    return num(f[1], &c->open) && num(f[2], &c->high) && num(f[3], &c->low) &&
           num(f[4], &c->close) && opt_num(f[5], &c->volume, &c->has_volume);
}

static bool reserve_order(dragonfly *d, size_t n)
{
    if (n <= d->order_cap)
        return true;
    size_t *p = realloc(d->order, n * sizeof *p);
    if (p == NULL)
        return false;
    d->order = p;
    d->order_cap = n;
    return true;
}

/* One write per symbol: only the newest tick of the batch can be the latest. */
static dm_bstatus df_write_ticks(dm_backend *b, const dm_tick *t, size_t n,
                                 const dm_cache_opts *o, dm_err *err)
{
    dragonfly *d = (dragonfly *)b;
    dm_bstatus st = ensure_conn(d, err);
    if (st != DM_BS_OK)
        return st;
    if (!reserve_order(d, n))
        return dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
    size_t groups = 0; /* d->order[g] = index of the newest tick of group g */
    for (size_t i = 0; i < n; i++) {
        size_t g = 0;
        while (g < groups && strcmp(t[d->order[g]].symbol, t[i].symbol) != 0)
            g++;
        if (g == groups)
            d->order[groups++] = i;
        else if (t[i].ts >= t[d->order[g]].ts)
            d->order[g] = i;
    }
    size_t cmds = 0;
    for (size_t g = 0; g < groups; g++) {
        const dm_tick *x = &t[d->order[g]];
        char token[DM_TOKEN_MAX + 1], key[96], member[256], score[24];
        dm_symbol_token(x->symbol, token);
        snprintf(key, sizeof key, DM_KEY_TICK_LATEST, token);
        size_t mlen = tick_member(member, sizeof member, x);
        snprintf(score, sizeof score, "%lld", (long long)x->ts);
        redisAppendCommand(d->ctx, "ZREMRANGEBYSCORE %s %s %s", key, score, score);
        redisAppendCommand(d->ctx, "ZADD %s %s %b", key, score, member, mlen);
        redisAppendCommand(d->ctx, "ZREMRANGEBYRANK %s 0 -2", key);
        redisAppendCommand(d->ctx, "EXPIRE %s %d", key, o->ttl_s > 0 ? o->ttl_s : 3600);
        cmds += 4;
    }
    return drain(d, cmds, err);
}

static int cmp_candle_idx(const void *a, const void *b, void *base)
{
    const dm_candle *all = base;
    const dm_candle *x = &all[*(const size_t *)a], *y = &all[*(const size_t *)b];
    int c = strcmp(x->symbol, y->symbol);
    if (c == 0)
        c = (int)x->tf - (int)y->tf;
    if (c == 0)
        c = x->ts < y->ts ? -1 : x->ts > y->ts;
    if (c == 0) /* same key twice in a batch: keep batch order so the later one wins */
        c = *(const size_t *)a < *(const size_t *)b ? -1 : 1;
    return c;
}

static size_t append_group(dragonfly *d, const dm_candle *c, const size_t *idx, size_t n,
                           const dm_cache_opts *o)
{
    char token[DM_TOKEN_MAX + 1], key[96];
    dm_symbol_token(c[idx[0]].symbol, token);
    snprintf(key, sizeof key, DM_KEY_CANDLE_LATEST, token, dm_tf_name(c[idx[0]].tf));
    int depth = o->depth > 0 ? o->depth : 1000;
    /* Only the newest `depth` of a group can survive the trim. */
    size_t first = n > (size_t)depth ? n - (size_t)depth : 0;
    size_t cmds = 0;
    redisAppendCommand(d->ctx, "MULTI");
    for (size_t i = first; i < n; i++) {
        char member[256], score[24];
        size_t mlen = candle_member(member, sizeof member, &c[idx[i]]);
        snprintf(score, sizeof score, "%lld", (long long)c[idx[i]].ts);
        redisAppendCommand(d->ctx, "ZREMRANGEBYSCORE %s %s %s", key, score, score);
        redisAppendCommand(d->ctx, "ZADD %s %s %b", key, score, member, mlen);
        cmds += 2;
    }
    redisAppendCommand(d->ctx, "ZREMRANGEBYRANK %s 0 %d", key, -(depth + 1));
    redisAppendCommand(d->ctx, "EXPIRE %s %d", key, o->ttl_s > 0 ? o->ttl_s : 3600);
    redisAppendCommand(d->ctx, "EXEC");
    return cmds + 4;
}

static dm_bstatus df_write_candles(dm_backend *b, const dm_candle *c, size_t n,
                                   const dm_cache_opts *o, dm_err *err)
{
    dragonfly *d = (dragonfly *)b;
    dm_bstatus st = ensure_conn(d, err);
    if (st != DM_BS_OK)
        return st;
    if (!reserve_order(d, n))
        return dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
    for (size_t i = 0; i < n; i++)
        d->order[i] = i;
    qsort_r(d->order, n, sizeof *d->order, cmp_candle_idx, (void *)c);
    size_t cmds = 0, start = 0;
    for (size_t i = 1; i <= n; i++) {
        if (i == n || strcmp(c[d->order[i]].symbol, c[d->order[start]].symbol) != 0 ||
            c[d->order[i]].tf != c[d->order[start]].tf) {
            cmds += append_group(d, c, d->order + start, i - start, o);
            start = i;
        }
    }
    return drain(d, cmds, err);
}

static dm_bstatus df_latest_tick(dm_backend *b, const char *symbol, dm_tick *out, dm_err *err)
{
    dragonfly *d = (dragonfly *)b;
    dm_bstatus st = ensure_conn(d, err);
    if (st != DM_BS_OK)
        return st;
    char token[DM_TOKEN_MAX + 1], key[96];
    dm_symbol_token(symbol, token);
    snprintf(key, sizeof key, DM_KEY_TICK_LATEST, token);
    redisReply *r = redisCommand(d->ctx, "ZRANGE %s -1 -1", key);
    if (r == NULL)
        return fail(d, "ZRANGE", NULL, err);
    st = DM_BS_MISS;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        parse_tick(r->element[0]->str, r->element[0]->len, symbol, out))
        st = DM_BS_OK;
    else if (r->type == REDIS_REPLY_ERROR)
        st = dm_bfail(err, DM_BS_TRANSIENT, "", "dragonfly ZRANGE: %.120s", r->str);
    freeReplyObject(r);
    return st;
}

/* A hit needs `limit` candles: fewer may mean the cache holds only the newest few, so the
 * database must answer (and refill the cache). */
static dm_bstatus df_latest_candles(dm_backend *b, const char *symbol, dm_tf tf, size_t limit,
                                    dm_candle_vec *out, dm_err *err)
{
    dragonfly *d = (dragonfly *)b;
    dm_bstatus st = ensure_conn(d, err);
    if (st != DM_BS_OK)
        return st;
    char token[DM_TOKEN_MAX + 1], key[96];
    dm_symbol_token(symbol, token);
    snprintf(key, sizeof key, DM_KEY_CANDLE_LATEST, token, dm_tf_name(tf));
    redisReply *r = redisCommand(d->ctx, "ZRANGE %s %lld -1", key, -(long long)limit);
    if (r == NULL)
        return fail(d, "ZRANGE", NULL, err);
    st = DM_BS_MISS;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == limit) {
        st = DM_BS_OK;
        for (size_t i = 0; i < r->elements && st == DM_BS_OK; i++) {
            dm_candle *c = dm_candle_vec_push(out);
            if (c == NULL || !parse_candle(r->element[i]->str, r->element[i]->len, symbol, tf, c))
                st = DM_BS_MISS; /* unreadable member: let the database answer */
        }
        if (st != DM_BS_OK)
            out->n = 0;
    } else if (r->type == REDIS_REPLY_ERROR) {
        st = dm_bfail(err, DM_BS_TRANSIENT, "", "dragonfly ZRANGE: %.120s", r->str);
    }
    freeReplyObject(r);
    return st;
}

static dm_bstatus df_blob_get(dm_backend *b, const char *key, void **out, size_t *len, dm_err *err)
{
    dragonfly *d = (dragonfly *)b;
    dm_bstatus st = ensure_conn(d, err);
    if (st != DM_BS_OK)
        return st;
    redisReply *r = redisCommand(d->ctx, "GET %s", key);
    if (r == NULL)
        return fail(d, "GET", NULL, err);
    st = DM_BS_MISS;
    if (r->type == REDIS_REPLY_STRING && (*out = malloc(r->len ? r->len : 1)) != NULL) {
        memcpy(*out, r->str, r->len);
        *len = r->len;
        st = DM_BS_OK;
    } else if (r->type == REDIS_REPLY_ERROR) {
        st = dm_bfail(err, DM_BS_TRANSIENT, "", "dragonfly GET: %.120s", r->str);
    }
    freeReplyObject(r);
    return st;
}

static dm_bstatus df_blob_put(dm_backend *b, const char *key, const void *data, size_t len,
                              int ttl_s, dm_err *err)
{
    dragonfly *d = (dragonfly *)b;
    dm_bstatus st = ensure_conn(d, err);
    if (st != DM_BS_OK)
        return st;
    redisReply *r = redisCommand(d->ctx, "SET %s %b EX %d", key, data, len, ttl_s > 0 ? ttl_s : 1);
    if (r == NULL)
        return fail(d, "SET", NULL, err);
    st = r->type == REDIS_REPLY_ERROR
             ? dm_bfail(err, DM_BS_TRANSIENT, "", "dragonfly SET: %.120s", r->str)
             : DM_BS_OK;
    freeReplyObject(r);
    return st;
}

static dm_bstatus ping_once(dragonfly *d, dm_err *err)
{
    dm_bstatus st = ensure_conn(d, err);
    if (st != DM_BS_OK)
        return st;
    redisReply *r = redisCommand(d->ctx, "PING");
    if (r == NULL)
        return fail(d, "PING", NULL, err);
    st = r->type == REDIS_REPLY_ERROR
             ? dm_bfail(err, DM_BS_TRANSIENT, "", "dragonfly PING: %.120s", r->str)
             : DM_BS_OK;
    freeReplyObject(r);
    return st;
}

/* A connection that died while Redis was away fails its first command: the breaker's
 * probe must not spend its one try on it (the circuit would stay open another timeout
 * with Redis back), so a failure on an old connection is tried once on a new one. */
static dm_bstatus df_ping(dm_backend *b, dm_err *err)
{
    dragonfly *d = (dragonfly *)b;
    bool had_conn = d->ctx != NULL;
    dm_bstatus st = ping_once(d, err);
    if (st == DM_BS_TRANSIENT && had_conn && d->ctx == NULL) {
        *err = (dm_err){0};
        st = ping_once(d, err);
    }
    return st;
}

static void df_destroy(dm_backend *b)
{
    dragonfly *d = (dragonfly *)b;
    if (d->ctx)
        redisFree(d->ctx);
    free(d->order);
    explicit_bzero(d->password, sizeof d->password);
    free(d);
}

static const dm_backend_ops OPS = {
    .write_ticks = df_write_ticks,
    .write_candles = df_write_candles,
    .latest_tick = df_latest_tick,
    .latest_candles = df_latest_candles,
    .blob_get = df_blob_get,
    .blob_put = df_blob_put,
    .ping = df_ping,
    .destroy = df_destroy,
};

dm_backend *dm_dragonfly_create(const cJSON *cfg, int timeout_s)
{
    dragonfly *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->base.ops = &OPS;
    d->base.id = DM_BK_DRAGONFLY;
    snprintf(d->host, sizeof d->host, "%s", dm_cfg_str(cfg, "host", "127.0.0.1"));
    snprintf(d->password, sizeof d->password, "%s", dm_cfg_str(cfg, "password", ""));
    d->port = dm_cfg_int(cfg, "port", 6379);
    d->db = dm_cfg_int(cfg, "db", 0);
    d->timeout_ms = (timeout_s > 0 ? timeout_s : 5) * 1000;
    return &d->base;
}
