#include "model.h"

#include <math.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *const TF_NAMES[DM_TF_COUNT] = {"1m", "5m", "15m", "30m",
                                                  "1h", "4h", "1d", "1w"};
static const int64_t TF_MS[DM_TF_COUNT] = {
    60000LL, 300000LL, 900000LL, 1800000LL, 3600000LL, 14400000LL, 86400000LL, 604800000LL};
/* 1970-01-01 was a Thursday; the first Monday 00:00 UTC is four days later. */
#define DM_FIRST_MONDAY_MS (4 * DM_DAY_MS)

const char *dm_tf_name(dm_tf tf) { return tf < DM_TF_COUNT ? TF_NAMES[tf] : "?"; }
int64_t dm_tf_ms(dm_tf tf) { return TF_MS[tf]; }

bool dm_tf_parse(const char *s, dm_tf *out)
{
    for (int i = 0; i < DM_TF_COUNT; i++) {
        if (strcmp(s, TF_NAMES[i]) == 0) {
            *out = (dm_tf)i;
            return true;
        }
    }
    return false;
}

bool dm_tf_aligned(dm_tf tf, int64_t ts)
{
    if (tf >= DM_TF_COUNT)
        return false;
    int64_t base = tf == DM_TF_1W ? DM_FIRST_MONDAY_MS : 0;
    int64_t r = (ts - base) % TF_MS[tf];
    return r == 0;
}

const char *dm_impact_name(dm_impact impact)
{
    static const char *const names[] = {"low", "medium", "high"};
    return names[impact];
}

bool dm_impact_parse(const char *s, dm_impact *out)
{
    static const char *const names[] = {"low", "medium", "high"};
    for (int i = 0; i < 3; i++) {
        if (strcasecmp(s, names[i]) == 0) {
            *out = (dm_impact)i;
            return true;
        }
    }
    return false;
}

static bool is_upper_alnum(char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

dm_code dm_symbol_normalize(const char *in, char out[DM_SYMBOL_MAX + 1],
                            char token[DM_TOKEN_MAX + 1], const char *field, dm_err *err)
{
    size_t n = strlen(in);
    const char *slash = strchr(in, '/');
    if (n == 6 && slash == NULL) {
        for (size_t i = 0; i < 6; i++)
            if (!is_upper_alnum(in[i]))
                goto bad;
        memcpy(out, in, 3);
        out[3] = '/';
        memcpy(out + 4, in + 3, 4);
    } else {
        if (n < 3 || n > DM_SYMBOL_MAX || slash == NULL || strchr(slash + 1, '/'))
            goto bad;
        size_t left = (size_t)(slash - in), right = n - left - 1;
        if (left < 1 || right < 1)
            goto bad;
        for (size_t i = 0; i < n; i++)
            if (in + i != slash && !is_upper_alnum(in[i]))
                goto bad;
        memcpy(out, in, n + 1);
    }
    dm_symbol_token(out, token);
    return DM_OK;
bad:
    return dm_fail(err, DM_E_INVALID_FIELD, field,
                   "%s '%.40s' is not a symbol like EUR/USD (upper-case letters or digits, one "
                   "slash, at most %d characters; six without a slash, EURUSD, read as EUR/USD)",
                   field, in, DM_SYMBOL_MAX);
}

void dm_symbol_token(const char *symbol, char token[DM_TOKEN_MAX + 1])
{
    size_t k = 0;
    for (const char *p = symbol; *p && k < DM_TOKEN_MAX; p++)
        if (*p != '/')
            token[k++] = *p;
    token[k] = '\0';
}

bool dm_is_source(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > DM_SOURCE_MAX)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.' || c == ':';
        if (!ok)
            return false;
    }
    return true;
}

bool dm_is_country(const char *s)
{
    return strlen(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z';
}

bool dm_is_currency(const char *s)
{
    return strlen(s) == 3 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z' &&
           s[2] >= 'A' && s[2] <= 'Z';
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
 * PostgreSQL refuses such bytes; letting them through would fail a whole batch later. */
bool dm_is_text(const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    while (*p) {
        unsigned char c = *p;
        unsigned cp;
        int extra;
        if (c < 0x20 || c == 0x7f)
            return false;
        if (c < 0x80)
            extra = 0, cp = c;
        else if (c >= 0xc2 && c <= 0xdf)
            extra = 1, cp = c & 0x1fu;
        else if ((c & 0xf0) == 0xe0)
            extra = 2, cp = c & 0x0fu;
        else if (c >= 0xf0 && c <= 0xf4)
            extra = 3, cp = c & 0x07u;
        else
            return false;
        for (int i = 1; i <= extra; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3fu);
        }
        static const unsigned min_for[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_for[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += extra + 1;
        n += (size_t)extra + 1;
        if (n > max)
            return false;
    }
    return true;
}

int64_t dm_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t dm_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t dm_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static dm_code check_ts(int64_t ts, int64_t max, const char *field, dm_err *err)
{
    if (ts < DM_TS_MIN_MS)
        return dm_fail(err, DM_E_INVALID_FIELD, field,
                       "%s %lld is before 1971: timestamps are Unix milliseconds", field,
                       (long long)ts);
    if (ts > max)
        return dm_fail(err, DM_E_INVALID_FIELD, field,
                       "%s %lld is too far in the future", field, (long long)ts);
    return DM_OK;
}

static dm_code check_price(double v, const char *field, dm_err *err)
{
    if (!isfinite(v))
        return dm_fail(err, DM_E_INVALID_FIELD, field, "%s must be a finite number", field);
    if (v <= 0)
        return dm_fail(err, DM_E_INVALID_FIELD, field, "%s %.10g must be positive", field, v);
    return DM_OK;
}

static dm_code check_volume(bool has, double v, dm_err *err)
{
    if (has && (!isfinite(v) || v < 0))
        return dm_fail(err, DM_E_INVALID_FIELD, "volume",
                       "volume %.10g must be a finite number >= 0", v);
    return DM_OK;
}

dm_code dm_tick_validate(const dm_tick *t, int64_t now_ms, dm_err *err)
{
    dm_code c;
    if ((c = check_ts(t->ts, now_ms + DM_DAY_MS, "timestamp", err)) ||
        (c = check_price(t->bid, "bid", err)) || (c = check_price(t->ask, "ask", err)))
        return c;
    if (t->ask < t->bid)
        return dm_fail(err, DM_E_INVALID_FIELD, "ask", "tick.ask %.10g is below tick.bid %.10g",
                       t->ask, t->bid);
    if (!isfinite(t->spread) || t->spread < 0)
        return dm_fail(err, DM_E_INVALID_FIELD, "spread",
                       "tick.spread %.10g must be a finite number >= 0", t->spread);
    return check_volume(t->has_volume, t->volume, err);
}

dm_code dm_candle_validate(const dm_candle *k, int64_t now_ms, dm_err *err)
{
    dm_code c;
    if ((c = check_ts(k->ts, now_ms + DM_DAY_MS, "timestamp", err)))
        return c;
    if (!dm_tf_aligned(k->tf, k->ts))
        return dm_fail(err, DM_E_INVALID_FIELD, "timestamp",
                       "candle.timestamp %lld is not aligned to the %s timeframe%s",
                       (long long)k->ts, dm_tf_name(k->tf),
                       k->tf == DM_TF_1W ? " (weeks open Monday 00:00 UTC)" : "");
    if ((c = check_price(k->open, "open", err)) || (c = check_price(k->high, "high", err)) ||
        (c = check_price(k->low, "low", err)) || (c = check_price(k->close, "close", err)))
        return c;
    if (k->high < k->low)
        return dm_fail(err, DM_E_INVALID_FIELD, "high", "candle.high %.10g is below candle.low %.10g",
                       k->high, k->low);
    if (k->high < k->open || k->high < k->close)
        return dm_fail(err, DM_E_INVALID_FIELD, "high",
                       "candle.high %.10g is below candle.%s %.10g", k->high,
                       k->high < k->open ? "open" : "close",
                       k->high < k->open ? k->open : k->close);
    if (k->low > k->open || k->low > k->close)
        return dm_fail(err, DM_E_INVALID_FIELD, "low",
                       "candle.low %.10g is above candle.%s %.10g", k->low,
                       k->low > k->open ? "open" : "close", k->low > k->open ? k->open : k->close);
    return check_volume(k->has_volume, k->volume, err);
}

static dm_code check_optional_number(bool has, double v, const char *field, dm_err *err)
{
    if (has && !isfinite(v))
        return dm_fail(err, DM_E_INVALID_FIELD, field, "%s must be a finite number or null", field);
    return DM_OK;
}

dm_code dm_event_validate(const dm_event *e, int64_t now_ms, dm_err *err)
{
    dm_code c;
    if ((c = check_ts(e->ts, now_ms + DM_EVENT_AHEAD_MS, "timestamp", err)) ||
        (c = check_optional_number(e->has_actual, e->actual, "actual", err)) ||
        (c = check_optional_number(e->has_forecast, e->forecast, "forecast", err)) ||
        (c = check_optional_number(e->has_previous, e->previous, "previous", err)))
        return c;
    return DM_OK;
}
