/* The Weaviate adapter's pure helpers: ids, dates, normalisation and the checks every
 * value spliced into a request or read from a reply passes. */
#include "weaviate_priv.h"

#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Years 0001..9999: what RFC 3339 can write. */
#define WV_DATE_MIN_MS (-62135596800000LL)
#define WV_DATE_MAX_MS 253402300799999LL

bool dm_weaviate_uuid5(const char *name, char out[37])
{
    static const unsigned char dns[16] = {0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1,
                                          0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    bool ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha1(), NULL) &&
              EVP_DigestUpdate(c, dns, sizeof dns) && EVP_DigestUpdate(c, name, strlen(name)) &&
              EVP_DigestFinal_ex(c, md, &len) && len >= 16;
    EVP_MD_CTX_free(c);
    out[0] = '\0';
    if (!ok)
        return false;
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x50); /* version 5 */
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        p += sprintf(p, "%02x", md[i]);
    }
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant's algorithms). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

bool dm_weaviate_format_date(int64_t ms, char out[32])
{
    if (ms < WV_DATE_MIN_MS || ms > WV_DATE_MAX_MS)
        return false;
    int64_t days = ms / DM_DAY_MS, rem = ms % DM_DAY_MS, y;
    if (rem < 0) {
        days--;
        rem += DM_DAY_MS;
    }
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int s = (int)(rem / 1000);
    char tmp[96]; /* years 1..9999 (checked above) make 24 bytes; the compiler cannot know */
    snprintf(tmp, sizeof tmp, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", (long long)y, m % 100, d % 100,
             s / 3600 % 100, s / 60 % 60, s % 60, (int)(rem % 1000));
    size_t n = strlen(tmp) < 31 ? strlen(tmp) : 31;
    memcpy(out, tmp, n);
    out[n] = '\0';
    return true;
}

static bool digits(const char **p, int n, int *out)
{
    *out = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9')
            return false;
        *out = *out * 10 + (**p - '0');
    }
    return true;
}

static bool sep(const char **p, char c)
{
    return **p == c ? (++*p, true) : false;
}

bool dm_weaviate_parse_date(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, sec, frac = 0, oh = 0, om = 0, sign = 0;
    const char *p = s;
    if (s == NULL || !digits(&p, 4, &y) || !sep(&p, '-') || !digits(&p, 2, &mo) || !sep(&p, '-') ||
        !digits(&p, 2, &d) || !sep(&p, 'T') || !digits(&p, 2, &h) || !sep(&p, ':') ||
        !digits(&p, 2, &mi) || !sep(&p, ':') || !digits(&p, 2, &sec))
        return false;
    if (sep(&p, '.')) {
        int k = 0;
        for (; *p >= '0' && *p <= '9' && k < 9; p++, k++)
            if (k < 3)
                frac = frac * 10 + (*p - '0');
        if (k == 0)
            return false;
        for (; k < 3; k++)
            frac *= 10;
    }
    if (*p == '+' || *p == '-') {
        sign = *p++ == '-' ? -1 : 1;
        if (!digits(&p, 2, &oh) || !sep(&p, ':') || !digits(&p, 2, &om) || oh > 23 || om > 59)
            return false;
    } else if (!sep(&p, 'Z')) {
        return false;
    }
    static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (*p != '\0' || y < 1 || mo < 1 || mo > 12 || d < 1 || (unsigned)d > mdays[mo - 1] ||
        (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || sec > 59)
        return false;
    int64_t t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec;
    *ms = (t - sign * (oh * 3600 + om * 60)) * 1000 + frac;
    return true;
}

bool dm_weaviate_znorm(const double *x, size_t n, double *z)
{
    if (x == NULL || n == 0)
        return false;
    double mean = 0, var = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            return false;
        mean += x[i];
    }
    mean /= (double)n;
    for (size_t i = 0; i < n; i++)
        var += (x[i] - mean) * (x[i] - mean);
    double sd = sqrt(var / (double)n);
    if (!(sd >= DM_WV_FLAT_STD) || !isfinite(sd)) /* NaN when the sum overflowed */
        return false;
    for (size_t i = 0; i < n; i++)
        z[i] = (x[i] - mean) / sd;
    return true;
}

/* Symbols are spliced into GraphQL string literals: no quote, backslash or control
 * character can pass, and a hit's symbol always fits dm_weaviate_hit. */
bool wv_safe_symbol(const char *s)
{
    size_t n = s ? strnlen(s, DM_SYMBOL_MAX + 1) : 0;
    if (n == 0 || n > DM_SYMBOL_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9') || strchr("/._-", s[i])))
            return false;
    return true;
}

bool wv_safe_timeframe(const char *s)
{
    dm_tf tf;
    return s != NULL && strnlen(s, 8) < 8 && dm_tf_parse(s, &tf) && strcmp(dm_tf_name(tf), s) == 0;
}

bool wv_is_uuid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        char c = s[i];
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return s[36] == '\0';
}

/* A message from the network, made one printable line of at most cap-1 bytes. */
void wv_clean(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && s[i] && s[i] != '\n' && o + 1 < cap; i++)
        out[o++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i];
    out[o] = '\0';
}

const char *wv_str_or(const cJSON *o, const char *key, const char *dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return v == NULL || cJSON_IsNull(v) ? dflt : cJSON_IsString(v) ? v->valuestring : "(not text)";
}

/* Round-trip decimals (%.17g): what is stored is exactly what was computed. */
void wv_put_vector(dm_buf *b, const double *z, int n)
{
    dm_buf_puts(b, "[");
    for (int i = 0; i < n; i++)
        dm_buf_printf(b, "%s%.17g", i ? ", " : "", z[i]);
    dm_buf_puts(b, "]");
}
