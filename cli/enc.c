#include "enc.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "num.h"

void enc_init(enc *e, bool msgpack)
{
    memset(e, 0, sizeof *e);
    e->msgpack = msgpack;
    buf_init(&e->json);
    msgpack_sbuffer_init(&e->sb);
    msgpack_packer_init(&e->pk, &e->sb, msgpack_sbuffer_write);
}

void enc_free(enc *e)
{
    buf_free(&e->json);
    msgpack_sbuffer_destroy(&e->sb);
}

void enc_reset(enc *e)
{
    buf_reset(&e->json);
    msgpack_sbuffer_clear(&e->sb);
    e->depth = 0;
    e->failed = false;
}

void json_put_string(buf *b, const char *s, size_t n)
{
    buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': buf_puts(b, "\\\""); break;
        case '\\': buf_puts(b, "\\\\"); break;
        case '\n': buf_puts(b, "\\n"); break;
        case '\r': buf_puts(b, "\\r"); break;
        case '\t': buf_puts(b, "\\t"); break;
        default:
            if (c < 0x20)
                buf_printf(b, "\\u%04x", c);
            else
                buf_putc(b, (char)c);
        }
    }
    buf_putc(b, '"');
}

/* JSON needs a comma before every element except the first of a level and
 * except a value that directly follows its key. */
static void json_sep(enc *e)
{
    if (e->depth == 0)
        return;
    if (e->st[e->depth - 1].after_key) {
        e->st[e->depth - 1].after_key = false;
        return;
    }
    if (!e->st[e->depth - 1].first)
        buf_putc(&e->json, ',');
    e->st[e->depth - 1].first = false;
}

static void count_value(enc *e)
{
    if (e->depth > 0)
        e->st[e->depth - 1].values++;
}

static void mp_check(enc *e, int rc)
{
    if (rc != 0)
        e->failed = true;
}

static void open_level(enc *e, char c, size_t declared)
{
    if (e->depth >= ENC_MAX_DEPTH) {
        e->failed = true;
        return;
    }
    count_value(e);
    if (!e->msgpack)
        buf_putc(&e->json, c);
    e->st[e->depth].first = true;
    e->st[e->depth].after_key = false;
    e->st[e->depth].declared = declared;
    e->st[e->depth].values = 0;
    e->depth++;
}

static void close_level(enc *e, char c)
{
    if (e->depth <= 0) {
        e->failed = true;
        return;
    }
    e->depth--;
    if (e->st[e->depth].values != e->st[e->depth].declared)
        e->failed = true;
    if (!e->msgpack)
        buf_putc(&e->json, c);
}

void enc_map(enc *e, size_t n)
{
    if (e->msgpack)
        mp_check(e, msgpack_pack_map(&e->pk, n));
    else
        json_sep(e);
    open_level(e, '{', n);
}

void enc_map_end(enc *e)
{
    close_level(e, '}');
}

void enc_array(enc *e, size_t n)
{
    if (e->msgpack)
        mp_check(e, msgpack_pack_array(&e->pk, n));
    else
        json_sep(e);
    open_level(e, '[', n);
}

void enc_array_end(enc *e)
{
    close_level(e, ']');
}

static void put_string(enc *e, const char *s, size_t n)
{
    if (e->msgpack) {
        mp_check(e, msgpack_pack_str(&e->pk, n));
        mp_check(e, msgpack_pack_str_body(&e->pk, s, n));
        return;
    }
    json_sep(e);
    json_put_string(&e->json, s, n);
}

void enc_strn(enc *e, const char *s, size_t n)
{
    count_value(e);
    put_string(e, s, n);
}

void enc_str(enc *e, const char *s)
{
    enc_strn(e, s, strlen(s));
}

void enc_key(enc *e, const char *k)
{
    put_string(e, k, strlen(k)); /* keys are not counted: a map's n is its pairs */
    if (!e->msgpack) {
        buf_putc(&e->json, ':');
        if (e->depth > 0)
            e->st[e->depth - 1].after_key = true;
    }
}

void enc_i64(enc *e, int64_t v)
{
    count_value(e);
    if (e->msgpack) {
        mp_check(e, msgpack_pack_int64(&e->pk, v));
        return;
    }
    json_sep(e);
    buf_printf(&e->json, "%" PRId64, v);
}

void enc_f64(enc *e, double v)
{
    count_value(e);
    if (!isfinite(v)) { /* JSON has no NaN/Inf; payload builders never pass them */
        e->failed = true;
        return;
    }
    if (e->msgpack) {
        mp_check(e, msgpack_pack_double(&e->pk, v));
        return;
    }
    char tmp[NUM_BUF];
    num_fmt_double(tmp, v);
    json_sep(e);
    buf_puts(&e->json, tmp);
}

void enc_bool(enc *e, bool v)
{
    count_value(e);
    if (e->msgpack) {
        mp_check(e, v ? msgpack_pack_true(&e->pk) : msgpack_pack_false(&e->pk));
        return;
    }
    json_sep(e);
    buf_puts(&e->json, v ? "true" : "false");
}

void enc_nil(enc *e)
{
    count_value(e);
    if (e->msgpack) {
        mp_check(e, msgpack_pack_nil(&e->pk));
        return;
    }
    json_sep(e);
    buf_puts(&e->json, "null");
}

const char *enc_data(enc *e, size_t *len)
{
    if (e->failed || e->depth != 0 || e->json.oom)
        return NULL;
    if (e->msgpack) {
        *len = e->sb.size;
        return e->sb.data;
    }
    *len = e->json.len;
    return e->json.data ? e->json.data : "";
}

const char *enc_content_type(const enc *e)
{
    return e->msgpack ? "application/msgpack" : "application/json";
}
