#include "num.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rewrites "d.ddde-0N" as "0.000dddd"; exact because it only moves digits. */
static void expand_small_exponent(char out[NUM_BUF])
{
    char *e = strchr(out, 'e');
    if (!e)
        return;
    int exp = atoi(e + 1);
    if (exp >= 0 || exp < -10)
        return;
    char digits[NUM_BUF];
    size_t nd = 0;
    const char *p = out;
    bool neg = (*p == '-');
    if (neg)
        p++;
    for (; p < e; p++)
        if (isdigit((unsigned char)*p))
            digits[nd++] = *p;
    char res[NUM_BUF * 2];
    size_t n = 0;
    if (neg)
        res[n++] = '-';
    res[n++] = '0';
    res[n++] = '.';
    for (int i = 0; i < -exp - 1; i++)
        res[n++] = '0';
    memcpy(res + n, digits, nd);
    n += nd;
    res[n] = '\0';
    if (n < NUM_BUF)
        memcpy(out, res, n + 1);
}

void num_fmt_double(char out[NUM_BUF], double v)
{
    snprintf(out, NUM_BUF, "%.15g", v);
    if (strtod(out, NULL) != v)
        snprintf(out, NUM_BUF, "%.17g", v);
    expand_small_exponent(out);
}

void num_fmt_grouped(char out[NUM_BUF], uint64_t v)
{
    char tmp[NUM_BUF];
    int n = snprintf(tmp, sizeof tmp, "%" PRIu64, v);
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = tmp[i];
    }
    out[o] = '\0';
}

static bool only_blanks(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return *p == '\0';
}

bool num_parse_double(const char *s, double *out)
{
    char *end;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '\0')
        return false;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno == ERANGE || !only_blanks(end) || !isfinite(v))
        return false;
    *out = v;
    return true;
}

bool num_parse_i64(const char *s, int64_t *out)
{
    char *end;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '\0')
        return false;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno == ERANGE || !only_blanks(end))
        return false;
    *out = (int64_t)v;
    return true;
}
