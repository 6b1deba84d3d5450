#include "csv.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/enc.h"
#include "timeutil.h"

#define MAX_FIELDS 16
#define MAX_REPORTED 20 /* bad rows printed before "... and N more" */

int csv_split(char *line, char **fields, int max)
{
    size_t len = strlen(line);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    int n = 0;
    char *r = line, *w = line;
    for (;;) {
        if (n == max)
            return -1;
        fields[n++] = w;
        if (*r == '"') { /* quoted field: "" is an escaped quote */
            r++;
            while (*r && !(*r == '"' && r[1] != '"')) {
                if (*r == '"')
                    r++;
                *w++ = *r++;
            }
            if (*r == '"')
                r++;
            while (*r && *r != ',')
                *w++ = *r++;
        } else {
            while (*r && *r != ',')
                *w++ = *r++;
        }
        if (*r == '\0') {
            *w = '\0';
            return n;
        }
        *w++ = '\0';
        r++;
    }
}

static bool is_blank(const char *s)
{
    for (; *s; s++)
        if (!isspace((unsigned char)*s))
            return false;
    return true;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* ---- bad-row reporting ------------------------------------------------ */

typedef struct reporter {
    const char *path;
    const load_opts *o;
    size_t bad;
} reporter;

static void bad_row(reporter *r, long line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void bad_row(reporter *r, long line, const char *fmt, ...)
{
    r->bad++;
    if (r->bad > MAX_REPORTED || (r->o->skip_bad && r->o->quiet))
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s:%ld: %s", r->path, line, r->o->skip_bad ? "skipped: " : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Decides between failing (no --skip-bad) and returning the skip count. */
static int finish_report(reporter *r, size_t *bad_out)
{
    if (r->bad > MAX_REPORTED && !(r->o->skip_bad && r->o->quiet))
        fprintf(stderr, "%s: ... and %zu more bad rows\n", r->path, r->bad - MAX_REPORTED);
    if (r->bad > 0 && !r->o->skip_bad) {
        fprintf(stderr, "%s: %zu bad rows, nothing published (use --skip-bad to skip them)\n",
                r->path, r->bad);
        return -1;
    }
    *bad_out = r->bad;
    return 0;
}

/* Yields the non-blank lines of a file with their 1-based numbers. */
typedef struct line_reader {
    const char *path;
    FILE *fp;
    char *line;
    size_t cap;
    long lineno;
} line_reader;

static bool lr_open(line_reader *lr, const char *path)
{
    memset(lr, 0, sizeof *lr);
    lr->path = path;
    lr->fp = fopen(path, "r");
    if (!lr->fp)
        fprintf(stderr, "dmctl: cannot open %s: %s\n", path, strerror(errno));
    return lr->fp != NULL;
}

static char *lr_next(line_reader *lr)
{
    while (getline(&lr->line, &lr->cap, lr->fp) != -1) {
        char *p = lr->line;
        lr->lineno++;
        if (lr->lineno == 1 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB &&
            (unsigned char)p[2] == 0xBF)
            p += 3; /* UTF-8 BOM from spreadsheet exports */
        if (!is_blank(p)) /* blank lines, often a trailing one */
            return p;
    }
    return NULL;
}

/* Returns false if reading stopped on an I/O error rather than at EOF. */
static bool lr_close(line_reader *lr)
{
    bool ok = !ferror(lr->fp);
    if (!ok)
        fprintf(stderr, "dmctl: error reading %s: %s\n", lr->path, strerror(errno));
    free(lr->line);
    fclose(lr->fp);
    return ok;
}

static bool grow(void **rows, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return true;
    size_t nc = *cap ? *cap * 2 : 1024;
    void *p = realloc(*rows, nc * elem);
    if (!p) {
        fprintf(stderr, "dmctl: out of memory\n");
        return false;
    }
    *rows = p;
    *cap = nc;
    return true;
}

/* ---- candle layouts ------------------------------------------------------ */

typedef struct layout {
    int date, time, open, high, low, close, volume; /* column index or -1 */
    int min_fields;
    bool has_header;
} layout;

static int max5(int a, int b, int c, int d, int e)
{
    int m = a;
    m = b > m ? b : m;
    m = c > m ? c : m;
    m = d > m ? d : m;
    return e > m ? e : m;
}

static bool name_is(const char *h, const char *const *names)
{
    for (; *names; names++)
        if (strcasecmp(h, *names) == 0)
            return true;
    return false;
}

static bool layout_from_header(char **f, int n, layout *L)
{
    static const char *const date_n[] = {"date", "day", NULL};
    static const char *const time_n[] = {"time", NULL};
    static const char *const dt_n[] = {"timestamp", "datetime", "date_time", "gmt time",
                                       "local time", NULL};
    static const char *const open_n[] = {"open", "o", NULL};
    static const char *const high_n[] = {"high", "h", NULL};
    static const char *const low_n[] = {"low", "l", NULL};
    static const char *const close_n[] = {"close", "c", NULL};
    static const char *const vol_n[] = {"volume", "vol", "tick_volume", "tickvol", "v", NULL};

    *L = (layout){-1, -1, -1, -1, -1, -1, -1, 0, true};
    for (int i = 0; i < n; i++) {
        const char *h = trim(f[i]);
        if (name_is(h, date_n) || name_is(h, dt_n))
            L->date = i;
        else if (name_is(h, time_n))
            L->time = i;
        else if (name_is(h, open_n))
            L->open = i;
        else if (name_is(h, high_n))
            L->high = i;
        else if (name_is(h, low_n))
            L->low = i;
        else if (name_is(h, close_n))
            L->close = i;
        else if (name_is(h, vol_n))
            L->volume = i;
    }
    if (L->date < 0 || L->open < 0 || L->high < 0 || L->low < 0 || L->close < 0)
        return false;
    L->min_fields = max5(L->date, L->time, L->open, L->high, L->close);
    L->min_fields = max5(L->min_fields, L->low, L->volume, 0, 0) + 1;
    return true;
}

/* Headerless MetaTrader exports: date[,time],open,high,low,close[,volume]. */
static bool layout_from_data(char **f, int n, layout *L)
{
    int64_t ms;
    if (n < 5 || !tu_parse(trim(f[0]), NULL, &ms))
        return false;
    bool sep_time = tu_parse(f[0], trim(f[1]), &ms);
    int o = sep_time ? 2 : 1;
    *L = (layout){0, sep_time ? 1 : -1, o, o + 1, o + 2, o + 3, -1, o + 4, false};
    if (n > o + 4)
        L->volume = o + 4;
    return n >= L->min_fields;
}

static bool detect_layout(const char *path, char *first_line, layout *L)
{
    char *f[MAX_FIELDS];
    int n = csv_split(first_line, f, MAX_FIELDS);
    if (n > 0 && (layout_from_data(f, n, L) || layout_from_header(f, n, L)))
        return true;
    fprintf(stderr,
            "%s:1: unrecognised candle CSV layout (expected a header like "
            "Date,Open,High,Low,Close,Volume / Date,Time,Open,... / "
            "timestamp,open,high,low,close,volume)\n",
            path);
    return false;
}

static bool num_field(char **f, int idx, double *out)
{
    return dm_parse_field_double(f[idx], out);
}

/* Parses and sanity-checks one candle row; writes a reason into err on failure. */
static bool parse_candle(const layout *L, char **f, int n, candle *c, int64_t *broker_ts,
                         char *err, size_t errlen)
{
    if (n < L->min_fields) {
        snprintf(err, errlen, "expected %d fields, got %d", L->min_fields, n);
        return false;
    }
    if (!tu_parse(trim(f[L->date]), L->time >= 0 ? f[L->time] : NULL, broker_ts)) {
        snprintf(err, errlen, "bad date/time '%s%s%s'", f[L->date], L->time >= 0 ? " " : "",
                 L->time >= 0 ? f[L->time] : "");
        return false;
    }
    static const char *const names[] = {"open", "high", "low", "close"};
    const int cols[] = {L->open, L->high, L->low, L->close};
    double *vals[] = {&c->open, &c->high, &c->low, &c->close};
    for (int i = 0; i < 4; i++) {
        if (!num_field(f, cols[i], vals[i]) || *vals[i] <= 0) {
            snprintf(err, errlen, "bad %s '%s' (need a positive number)", names[i], f[cols[i]]);
            return false;
        }
    }
    c->volume = 0;
    if (L->volume >= 0 && L->volume < n && trim(f[L->volume])[0] != '\0' &&
        (!num_field(f, L->volume, &c->volume) || c->volume < 0)) {
        snprintf(err, errlen, "bad volume '%s'", f[L->volume]);
        return false;
    }
    if (c->low > c->high || c->low > c->open || c->low > c->close || c->high < c->open ||
        c->high < c->close) {
        snprintf(err, errlen, "OHLC inconsistent (open %s high %s low %s close %s)",
                 f[L->open], f[L->high], f[L->low], f[L->close]);
        return false;
    }
    return true;
}

static int64_t pos_mod(int64_t a, int64_t m)
{
    int64_t r = a % m;
    return r < 0 ? r + m : r;
}

/* Validates one data row and appends it; false only on out-of-memory. */
static bool add_candle_row(const layout *L, const load_opts *o, reporter *rep, long lineno,
                           char *p, int64_t *prev_ts, candle_set *out)
{
    char *f[MAX_FIELDS], err[256];
    candle c;
    int64_t bts;
    int n = csv_split(p, f, MAX_FIELDS);
    if (n < 0) {
        bad_row(rep, lineno, "too many fields");
        return true;
    }
    if (!parse_candle(L, f, n, &c, &bts, err, sizeof err)) {
        bad_row(rep, lineno, "%s", err);
        return true;
    }
    /* checked on the broker clock so --shift-hours cannot misalign 4h/1d */
    if (o->align_ms > 0 && pos_mod(bts, o->align_ms) != 0) {
        bad_row(rep, lineno, "time not aligned to the timeframe (%" PRId64 " ms)", o->align_ms);
        return true;
    }
    c.ts = bts + o->shift_ms;
    /* a repeated time would repeat a Nats-Msg-Id and be dropped silently */
    if (c.ts <= *prev_ts) {
        bad_row(rep, lineno, "time is not after the previous row (duplicate or unsorted)");
        return true;
    }
    if (!grow((void **)&out->rows, &out->cap, out->n, sizeof(candle)))
        return false;
    out->rows[out->n++] = c;
    *prev_ts = c.ts;
    return true;
}

int csv_load_candles(const char *path, const load_opts *o, candle_set *out)
{
    line_reader lr;
    memset(out, 0, sizeof *out);
    if (!lr_open(&lr, path))
        return -1;
    reporter rep = {path, o, 0};
    layout L = {0}; /* set by detect_layout before any row is read */
    int64_t prev_ts = INT64_MIN;
    int rc = 0;
    char *p = lr_next(&lr);
    if (!p) {
        fprintf(stderr, "dmctl: %s has no rows\n", path);
        rc = -1;
    } else {
        char *copy = strdup(p); /* csv_split would cut the first row up */
        if (!copy || !detect_layout(path, copy, &L))
            rc = -1;
        free(copy);
        if (rc == 0 && L.has_header)
            p = lr_next(&lr);
    }
    for (; rc == 0 && p; p = lr_next(&lr))
        if (!add_candle_row(&L, o, &rep, lr.lineno, p, &prev_ts, out))
            rc = -1;
    if (!lr_close(&lr))
        rc = -1;
    if (rc == 0)
        rc = finish_report(&rep, &out->bad);
    if (rc != 0)
        candle_set_free(out);
    return rc;
}

void candle_set_free(candle_set *s)
{
    free(s->rows);
    memset(s, 0, sizeof *s);
}

/* ---- events ---------------------------------------------------------------- */

static const char *country_of(const char *currency)
{
    static const char *const map[][2] = {
        {"USD", "US"}, {"EUR", "EU"}, {"GBP", "GB"}, {"JPY", "JP"}, {"CHF", "CH"},
        {"CAD", "CA"}, {"AUD", "AU"}, {"NZD", "NZ"}, {"CNY", "CN"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcasecmp(currency, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

/* Empty -> null; "0.3%" is accepted as 0.3 because calendars print rates so. */
static bool parse_opt_value(char *s, opt_num *v)
{
    s = trim(s);
    v->set = false;
    if (*s == '\0')
        return true;
    size_t n = strlen(s);
    if (s[n - 1] == '%')
        s[n - 1] = '\0';
    if (!dm_parse_field_double(s, &v->v))
        return false;
    v->set = true;
    return true;
}

/* Contract: lowercase, every non-alphanumeric byte becomes '-'. */
static char *slugify(const char *name)
{
    char *s = strdup(name);
    if (!s)
        return NULL;
    for (char *p = s; *p; p++)
        *p = isalnum((unsigned char)*p) ? (char)tolower((unsigned char)*p) : '-';
    return s;
}

static bool make_event_id(event *e)
{
    civil c;
    tu_to_civil(e->ts, &c);
    char *slug = slugify(e->event_name);
    if (!slug)
        return false;
    int n = asprintf(&e->event_id, "%s-%s-%04d%02d%02d%02d%02d", e->country, slug, c.year,
                     c.month, c.day, c.hour, c.minute);
    free(slug);
    if (n < 0) {
        e->event_id = NULL;
        return false;
    }
    return true;
}

static bool is_impact(const char *s)
{
    return strcmp(s, "low") == 0 || strcmp(s, "medium") == 0 || strcmp(s, "high") == 0;
}

/* currency -> country and currency_impact; impact lowercased */
static bool parse_event_class(char **f, event *e, char *err, size_t errlen)
{
    const char *cur = trim(f[2]);
    const char *country = strlen(cur) == 3 ? country_of(cur) : NULL;
    if (!country) {
        snprintf(err, errlen, "unknown currency '%s'", cur);
        return false;
    }
    for (int i = 0; i < 3; i++)
        e->currency[i] = (char)toupper((unsigned char)cur[i]);
    memcpy(e->country, country, 3);
    const char *imp = trim(f[3]);
    size_t il = strlen(imp);
    for (size_t i = 0; i < il && i < sizeof e->impact - 1; i++)
        e->impact[i] = (char)tolower((unsigned char)imp[i]);
    if (il >= sizeof e->impact || !is_impact(e->impact)) {
        snprintf(err, errlen, "bad impact '%s' (expected low, medium or high)", imp);
        return false;
    }
    return true;
}

/* optional columns 6-8: actual, forecast, previous */
static bool parse_event_values(char **f, int n, event *e, char *err, size_t errlen)
{
    opt_num *vals[] = {&e->actual, &e->forecast, &e->previous};
    static const char *const names[] = {"actual", "forecast", "previous"};
    for (int i = 0; i < 3 && 5 + i < n; i++) {
        if (!parse_opt_value(f[5 + i], vals[i])) {
            snprintf(err, errlen, "bad %s value '%s' (need a number or empty)", names[i],
                     f[5 + i]);
            return false;
        }
    }
    return true;
}

static bool parse_event(char **f, int n, const load_opts *o, event *e, char *err, size_t errlen)
{
    memset(e, 0, sizeof *e);
    if (n < 5 || n > 8) {
        snprintf(err, errlen,
                 "expected date,time,currency,impact,event[,actual,forecast,previous], got %d "
                 "fields", n);
        return false;
    }
    int64_t ts;
    if (!tu_parse(trim(f[0]), trim(f[1]), &ts)) {
        snprintf(err, errlen, "bad date/time '%s %s'", f[0], f[1]);
        return false;
    }
    e->ts = ts + o->shift_ms;
    const char *name = trim(f[4]);
    if (*name == '\0') {
        snprintf(err, errlen, "empty event name");
        return false;
    }
    if (!parse_event_class(f, e, err, errlen) || !parse_event_values(f, n, e, err, errlen))
        return false;
    e->event_name = strdup(name);
    if (!e->event_name || !make_event_id(e)) {
        free(e->event_name);
        e->event_name = NULL;
        snprintf(err, errlen, "out of memory");
        return false;
    }
    return true;
}

static bool is_event_header(char **f, int n)
{
    return n >= 1 && strcasecmp(trim(f[0]), "date") == 0;
}

/* Parses one row and appends it; false only on out-of-memory. */
static bool add_event_row(const load_opts *o, reporter *rep, long lineno, char *p,
                          event_set *out)
{
    char *f[MAX_FIELDS], err[256];
    event e;
    int n = csv_split(p, f, MAX_FIELDS);
    if (lineno == 1 && n > 0 && is_event_header(f, n))
        return true; /* the contract file has no header, but tolerate one */
    if (n < 0) {
        bad_row(rep, lineno, "too many fields");
        return true;
    }
    if (!parse_event(f, n, o, &e, err, sizeof err)) {
        bad_row(rep, lineno, "%s", err);
        return true;
    }
    if (!grow((void **)&out->rows, &out->cap, out->n, sizeof(event))) {
        free(e.event_id);
        free(e.event_name);
        return false;
    }
    out->rows[out->n++] = e;
    return true;
}

int csv_load_events(const char *path, const load_opts *o, event_set *out)
{
    line_reader lr;
    memset(out, 0, sizeof *out);
    if (!lr_open(&lr, path))
        return -1;
    reporter rep = {path, o, 0};
    int rc = 0;
    for (char *p = lr_next(&lr); rc == 0 && p; p = lr_next(&lr))
        if (!add_event_row(o, &rep, lr.lineno, p, out))
            rc = -1;
    if (!lr_close(&lr))
        rc = -1;
    if (rc == 0)
        rc = finish_report(&rep, &out->bad);
    if (rc != 0)
        event_set_free(out);
    return rc;
}

void event_set_free(event_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->rows[i].event_id);
        free(s->rows[i].event_name);
    }
    free(s->rows);
    memset(s, 0, sizeof *s);
}
