#include "timeutil.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "codec/doc.h"
#include "codec/enc.h"

static void civil_from_days(int64_t z, civil *c)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    c->day = (int)(doy - (153 * mp + 2) / 5 + 1);
    c->month = (int)(mp < 10 ? mp + 3 : mp - 9);
    c->year = (int)(y + (c->month <= 2));
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return (m == 2 && leap) ? 29 : dm[m - 1];
}

/* Reads exactly n digits. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool parse_date(const char **p, int *y, int *m, int *d)
{
    const char *s = *p;
    if (isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) && s[2] == '/') {
        /* DD/MM/YYYY */
        if (!digits(&s, 2, d) || *s++ != '/' || !digits(&s, 2, m) || *s++ != '/' ||
            !digits(&s, 4, y))
            return false;
    } else {
        if (!digits(&s, 4, y))
            return false;
        char sep = *s;
        if (sep != '.' && sep != '-')
            return false;
        s++;
        if (!digits(&s, 2, m) || *s++ != sep || !digits(&s, 2, d))
            return false;
    }
    *p = s;
    return *m >= 1 && *m <= 12 && *d >= 1 && *d <= days_in_month(*y, *m);
}

static bool parse_time(const char **p, int *hh, int *mm, int *ss)
{
    const char *s = *p;
    *ss = 0;
    if (!digits(&s, 2, hh) || *s++ != ':' || !digits(&s, 2, mm))
        return false;
    if (*s == ':') {
        s++;
        if (!digits(&s, 2, ss))
            return false;
    }
    *p = s;
    return *hh < 24 && *mm < 60 && *ss < 60;
}

static bool at_end(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return *p == '\0';
}

bool tu_parse(const char *date, const char *time, int64_t *ms_out)
{
    int y, m, d, hh = 0, mm = 0, ss = 0;
    const char *p = date;
    while (*p == ' ')
        p++;
    if (!parse_date(&p, &y, &m, &d))
        return false;
    if (*p == ' ' || *p == 'T') {
        while (*p == ' ' || *p == 'T')
            p++;
        if (*p != '\0' && !parse_time(&p, &hh, &mm, &ss))
            return false;
        if (*p == 'Z')
            p++;
    }
    if (!at_end(p))
        return false;
    if (time) {
        const char *t = time;
        while (*t == ' ')
            t++;
        if (!parse_time(&t, &hh, &mm, &ss) || !at_end(t))
            return false;
    }
    int64_t days = dm_days_from_civil(y, m, d);
    *ms_out = ((days * 24 + hh) * 60 + mm) * 60000 + (int64_t)ss * 1000;
    return true;
}

void tu_to_civil(int64_t ms, civil *c)
{
    int64_t days = ms / 86400000;
    int64_t rem = ms % 86400000;
    if (rem < 0) {
        rem += 86400000;
        days--;
    }
    civil_from_days(days, c);
    c->hour = (int)(rem / 3600000);
    c->minute = (int)(rem / 60000 % 60);
    c->second = (int)(rem / 1000 % 60);
    c->ms = (int)(rem % 1000);
}

void tu_fmt_utc(char out[32], int64_t ms, bool with_ms)
{
    civil c;
    tu_to_civil(ms, &c);
    if (with_ms)
        snprintf(out, 32, "%04d-%02d-%02d %02d:%02d:%02d.%03d", c.year, c.month, c.day,
                 c.hour, c.minute, c.second, c.ms);
    else
        snprintf(out, 32, "%04d-%02d-%02d %02d:%02d:%02d", c.year, c.month, c.day, c.hour,
                 c.minute, c.second);
}

void tu_fmt_minute(char out[32], int64_t ms)
{
    civil c;
    char tmp[96]; /* room for any int the compiler imagines; real dates take 27 bytes */
    tu_to_civil(ms, &c);
    if (c.ms)
        snprintf(tmp, sizeof tmp, "%04d-%02d-%02d %02d:%02d:%02d.%03d UTC", c.year, c.month, c.day, c.hour,
                 c.minute, c.second, c.ms);
    else if (c.second)
        snprintf(tmp, sizeof tmp, "%04d-%02d-%02d %02d:%02d:%02d UTC", c.year, c.month, c.day, c.hour,
                 c.minute, c.second);
    else
        snprintf(tmp, sizeof tmp, "%04d-%02d-%02d %02d:%02d UTC", c.year, c.month, c.day, c.hour, c.minute);
    size_t n = strlen(tmp) < 31 ? strlen(tmp) : 31;
    memcpy(out, tmp, n);
    out[n] = '\0';
}

bool tu_parse_when(const char *s, int64_t *ms_out)
{
    if (dm_parse_field_i64(s, ms_out))
        return *ms_out >= 0;
    if (strlen(s) <= 40 && dm_parse_iso_time(s, ms_out))
        return true;
    return tu_parse(s, NULL, ms_out);
}

double tu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}
