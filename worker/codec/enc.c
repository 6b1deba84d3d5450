#include "enc.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dm_buf_init(dm_buf *b) { memset(b, 0, sizeof *b); }
void dm_buf_free(dm_buf *b) { free(b->data); memset(b, 0, sizeof *b); }
void dm_buf_reset(dm_buf *b) { b->len = 0; b->oom = false; }

static bool reserve(dm_buf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (p == NULL) {
        b->oom = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void dm_buf_put(dm_buf *b, const void *p, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void dm_buf_puts(dm_buf *b, const char *s) { dm_buf_put(b, s, strlen(s)); }

void dm_buf_printf(dm_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static int mp_write(void *data, const char *buf, size_t len)
{
    dm_buf_put((dm_buf *)data, buf, len);
    return 0;
}

void dm_enc_init(dm_enc *e, dm_encoding enc, dm_buf *out)
{
    memset(e, 0, sizeof *e);
    e->enc = enc;
    e->out = out;
    msgpack_packer_init(&e->pk, out, mp_write);
}

/* JSON separators: a value after a key needs none; otherwise a comma after the first. */
static void json_sep(dm_enc *e)
{
    if (e->after_key) {
        e->after_key = false;
        return;
    }
    if (e->need_comma[e->depth])
        dm_buf_put(e->out, ",", 1);
    e->need_comma[e->depth] = true;
}

static void open_container(dm_enc *e, char c)
{
    json_sep(e);
    dm_buf_put(e->out, &c, 1);
    if (e->depth < DM_ENC_MAX_DEPTH)
        e->depth++;
    e->need_comma[e->depth] = false;
}

static void close_container(dm_enc *e, char c)
{
    dm_buf_put(e->out, &c, 1);
    if (e->depth > 0)
        e->depth--;
}

void dm_enc_map(dm_enc *e, size_t n)
{
    if (e->enc == DM_ENC_MSGPACK)
        msgpack_pack_map(&e->pk, n);
    else
        open_container(e, '{');
}

void dm_enc_map_end(dm_enc *e)
{
    if (e->enc == DM_ENC_JSON)
        close_container(e, '}');
}

void dm_enc_arr(dm_enc *e, size_t n)
{
    if (e->enc == DM_ENC_MSGPACK)
        msgpack_pack_array(&e->pk, n);
    else
        open_container(e, '[');
}

void dm_enc_arr_end(dm_enc *e)
{
    if (e->enc == DM_ENC_JSON)
        close_container(e, ']');
}

static void json_string(dm_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    dm_buf_put(b, "\"", 1);
    const char *run = s;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        dm_buf_put(b, run, (size_t)(p - run));
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        if (c == '"' || c == '\\') {
            esc[1] = (char)c;
            dm_buf_put(b, esc, 2);
        } else {
            dm_buf_put(b, esc, 6);
        }
        run = p + 1;
    }
    dm_buf_puts(b, run);
    dm_buf_put(b, "\"", 1);
}

void dm_enc_key(dm_enc *e, const char *k)
{
    if (e->enc == DM_ENC_MSGPACK) {
        size_t n = strlen(k);
        msgpack_pack_str(&e->pk, n);
        msgpack_pack_str_body(&e->pk, k, n);
        return;
    }
    json_sep(e);
    json_string(e->out, k);
    dm_buf_put(e->out, ":", 1);
    e->after_key = true;
}

void dm_enc_str(dm_enc *e, const char *s)
{
    if (e->enc == DM_ENC_MSGPACK) {
        size_t n = strlen(s);
        msgpack_pack_str(&e->pk, n);
        msgpack_pack_str_body(&e->pk, s, n);
        return;
    }
    json_sep(e);
    json_string(e->out, s);
}

void dm_enc_i64(dm_enc *e, int64_t v)
{
    if (e->enc == DM_ENC_MSGPACK) {
        msgpack_pack_int64(&e->pk, v);
        return;
    }
    json_sep(e);
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    dm_buf_put(e->out, tmp, (size_t)n);
}

/* Prices and volumes: m / 10^k with few decimals. When (double)m / 10^k == v, with m below
 * 2^53 and 10^k exact, that division is the correctly rounded value of the decimal
 * "m with k decimals", which is what any reader's strtod gives: so the digits read back
 * as v. Trying k from 0 up gives the fewest decimals. Integer arithmetic only: the
 * snprintf/strtod round trip it replaces cost most of a 100-candle JSON reply. */
static int fmt_fixed(char *buf, size_t cap, double v)
{
    static const double P10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10};
    double a = fabs(v);
    if (!(a < 1e15) || cap < 40)
        return -1;
    for (int k = 0; k <= 10; k++) {
        double scaled = a * P10[k];
        if (scaled >= 9007199254740992.0) /* 2^53 */
            return -1;
        uint64_t m = (uint64_t)(scaled + 0.5);
        /* A cheap filter first: an exact k leaves scaled within a few ulps of m. */
        if (fabs(scaled - (double)m) > 1e-9 * (scaled + 1) || (double)m / P10[k] != a)
            continue;
        char digits[24];
        int nd = 0;
        for (; m > UINT32_MAX; m /= 10)
            digits[nd++] = (char)('0' + m % 10);
        uint32_t m32 = (uint32_t)m; /* 32-bit division is several times cheaper */
        do {
            digits[nd++] = (char)('0' + m32 % 10);
            m32 /= 10;
        } while (m32);
        while (nd <= k) /* at least one digit before the point */
            digits[nd++] = '0';
        int n = 0;
        if (signbit(v) && a != 0)
            buf[n++] = '-';
        for (int i = nd - 1; i >= 0; i--) {
            buf[n++] = digits[i];
            if (i == k && k > 0)
                buf[n++] = '.';
        }
        buf[n] = '\0';
        return n;
    }
    return -1;
}

int dm_fmt_double(char *buf, size_t cap, double v)
{
    int n = fmt_fixed(buf, cap, v);
    if (n >= 0)
        return n;
    /* Anything else: the shortest %g that reads back exactly. */
    for (int prec = 6; prec <= 17; prec += (prec < 15 ? 9 : 1)) {
        n = snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v || prec == 17)
            return n;
    }
    return 0;
}

/* Clinger's fast path: up to 15 significant digits and at most 22 after the point make
 * an integer and a power of ten that are both exact doubles, and one IEEE division of
 * exact operands is correctly rounded, so the result is the one strtod gives. Anything
 * longer, an exponent or an odd form goes to strtod. */
static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

bool dm_parse_double(const char *s, size_t len, double *out)
{
    size_t i = 0;
    bool neg = len > 0 && s[0] == '-';
    i += neg;
    uint64_t mant = 0;
    int digits = 0, frac = -1; /* frac: digits after the point, -1 before one */
    for (; i < len; i++) {
        char ch = s[i];
        if (ch >= '0' && ch <= '9') {
            if (digits > 0 || ch != '0')
                digits++;
            mant = mant * 10 + (uint64_t)(ch - '0');
            if (frac >= 0)
                frac++;
            if (digits > 15)
                break;
        } else if (ch == '.' && frac < 0) {
            frac = 0;
        } else {
            break;
        }
    }
    size_t first = (size_t)neg;
    bool has_digit = i > first + (frac >= 0 ? 1u : 0u);
    if (i == len && has_digit && frac <= 22) {
        double v = (double)mant / POW10[frac > 0 ? frac : 0];
        *out = neg ? -v : v;
        return true;
    }
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end = NULL;
    double v = strtod(buf, &end);
    if (end != buf + len)
        return false;
    *out = v;
    return true;
}

void dm_enc_f64(dm_enc *e, double v)
{
    if (!isfinite(v)) {
        dm_enc_null(e); /* JSON has no NaN; validation keeps them out of storage anyway */
        return;
    }
    if (e->enc == DM_ENC_MSGPACK) {
        msgpack_pack_double(&e->pk, v);
        return;
    }
    json_sep(e);
    char tmp[40];
    int n = dm_fmt_double(tmp, sizeof tmp, v);
    dm_buf_put(e->out, tmp, (size_t)n);
}

void dm_enc_null(dm_enc *e)
{
    if (e->enc == DM_ENC_MSGPACK) {
        msgpack_pack_nil(&e->pk);
        return;
    }
    json_sep(e);
    dm_buf_put(e->out, "null", 4);
}

void dm_enc_bool(dm_enc *e, bool v)
{
    if (e->enc == DM_ENC_MSGPACK) {
        if (v)
            msgpack_pack_true(&e->pk);
        else
            msgpack_pack_false(&e->pk);
        return;
    }
    json_sep(e);
    dm_buf_puts(e->out, v ? "true" : "false");
}

static bool enc_cjson_at(dm_enc *e, const cJSON *j, int depth)
{
    if (cJSON_IsNull(j)) {
        dm_enc_null(e);
    } else if (cJSON_IsBool(j)) {
        dm_enc_bool(e, cJSON_IsTrue(j));
    } else if (cJSON_IsNumber(j)) {
        double v = j->valuedouble; /* 2^63 bounds keep the cast defined */
        if (v == floor(v) && v >= -9223372036854775808.0 && v < 9223372036854775808.0)
            dm_enc_i64(e, (int64_t)v);
        else
            dm_enc_f64(e, v);
    } else if (cJSON_IsString(j)) {
        dm_enc_str(e, j->valuestring);
    } else if (cJSON_IsObject(j) || cJSON_IsArray(j)) {
        bool obj = cJSON_IsObject(j);
        if (depth >= DM_ENC_MAX_DEPTH)
            return false;
        size_t n = (size_t)cJSON_GetArraySize(j);
        if (obj)
            dm_enc_map(e, n);
        else
            dm_enc_arr(e, n);
        for (const cJSON *c = j->child; c; c = c->next) {
            if (obj)
                dm_enc_key(e, c->string);
            if (!enc_cjson_at(e, c, depth + 1))
                return false;
        }
        if (obj)
            dm_enc_map_end(e);
        else
            dm_enc_arr_end(e);
    } else {
        return false; /* cJSON_Raw or invalid */
    }
    return true;
}

bool dm_enc_cjson(dm_enc *e, const cJSON *j)
{
    return enc_cjson_at(e, j, 0) && !e->out->oom;
}

static bool blank(char c) { return c == ' ' || c == '\t'; }

/* The field without the blanks around it. */
static const char *trim(const char *s, size_t *len)
{
    while (blank(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && blank(s[n - 1]))
        n--;
    *len = n;
    return s;
}

bool dm_parse_field_double(const char *s, double *out)
{
    size_t n;
    s = trim(s, &n);
    double v;
    if (n == 0 || !dm_parse_double(s, n, &v) || !isfinite(v))
        return false;
    *out = v;
    return true;
}

bool dm_parse_field_i64(const char *s, int64_t *out)
{
    size_t n, i = 0;
    s = trim(s, &n);
    bool neg = n > 0 && s[0] == '-';
    if (n > 0 && (s[0] == '-' || s[0] == '+'))
        i++;
    if (i == n)
        return false;
    /* Accumulated negatively: INT64_MIN has no positive counterpart. */
    int64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        int d = s[i] - '0';
        if (v < (INT64_MIN + d) / 10)
            return false;
        v = v * 10 - d;
    }
    if (!neg && v == INT64_MIN)
        return false;
    *out = neg ? v : -v;
    return true;
}

int dm_fmt_grouped(char *buf, size_t cap, uint64_t v)
{
    char digits[24];
    int nd = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v);
    size_t k = 0;
    for (int i = 0; i < nd && k + 2 < cap; i++) {
        if (i > 0 && (nd - i) % 3 == 0)
            buf[k++] = ',';
        buf[k++] = digits[i];
    }
    if (cap > 0)
        buf[k < cap ? k : cap - 1] = '\0';
    return (int)k;
}
