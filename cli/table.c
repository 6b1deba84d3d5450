#include "table.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/enc.h"
#include "timeutil.h"

#define CELL 64
#define MAX_COLS 16

/* F_STAT: a computed statistic, whose float noise (1.3924982352941178) would only widen
 * the table: six significant digits. */
typedef enum { F_TIME, F_TIME_MS, F_AUTO, F_STAT } col_fmt;

typedef struct col {
    const char *title;
    const char *key;
    col_fmt fmt;
} col;

/* Every time column is UTC: the worker stores and answers Unix milliseconds. */
static const col candle_cols[] = {
    {"time (UTC)", "timestamp", F_TIME}, {"open", "open", F_AUTO},   {"high", "high", F_AUTO},
    {"low", "low", F_AUTO},        {"close", "close", F_AUTO}, {"volume", "volume", F_AUTO},
    {"source", "source", F_AUTO},
};
static const col tick_cols[] = {
    {"time (UTC)", "timestamp", F_TIME_MS}, {"bid", "bid", F_AUTO},       {"ask", "ask", F_AUTO},
    {"spread", "spread", F_AUTO},     {"source", "source", F_AUTO},
};
static const col event_cols[] = {
    {"time (UTC)", "timestamp", F_TIME}, {"country", "country", F_AUTO},
    {"impact", "impact", F_AUTO},      {"event_name", "event_name", F_AUTO},
    {"actual", "actual", F_AUTO},      {"forecast", "forecast", F_AUTO},
    {"previous", "previous", F_AUTO},
};

/* dm.v1.aggregates rows: one period each, every statistic the worker computes. */
static const col aggregate_cols[] = {
    {"period_start (UTC)", "period_start", F_TIME},
    {"open", "open", F_AUTO},
    {"high", "high", F_AUTO},
    {"low", "low", F_AUTO},
    {"close", "close", F_AUTO},
    {"mean", "mean", F_STAT},
    {"stddev_returns", "stddev_returns", F_STAT},
    {"range", "range", F_STAT},
    {"volume", "volume", F_AUTO},
    {"count", "count", F_AUTO},
};

static bool has(const cJSON *row, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(row, key) != NULL;
}

/* Picks fixed columns for known row types, else the first row's keys. */
static size_t choose_columns(const cJSON *first, col *cols)
{
    const col *src = NULL;
    size_t n = 0;
    if (cJSON_IsObject(first) && has(first, "period_start")) {
        src = aggregate_cols;
        n = sizeof aggregate_cols / sizeof aggregate_cols[0];
    } else if (cJSON_IsObject(first) && has(first, "open") && has(first, "close")) {
        src = candle_cols;
        n = sizeof candle_cols / sizeof candle_cols[0];
    } else if (cJSON_IsObject(first) && has(first, "bid") && has(first, "ask")) {
        src = tick_cols;
        n = sizeof tick_cols / sizeof tick_cols[0];
    } else if (cJSON_IsObject(first) && has(first, "event_name")) {
        src = event_cols;
        n = sizeof event_cols / sizeof event_cols[0];
    }
    if (src) {
        memcpy(cols, src, n * sizeof *cols);
        return n;
    }
    if (!cJSON_IsObject(first)) {
        cols[0] = (col){"value", NULL, F_AUTO};
        return 1;
    }
    for (const cJSON *c = first->child; c && n < MAX_COLS; c = c->next)
        cols[n++] = (col){c->string, c->string, F_AUTO};
    return n;
}

void table_cell_text(const cJSON *v, char *out, size_t n)
{
    if (!v || cJSON_IsNull(v)) {
        snprintf(out, n, "-");
    } else if (cJSON_IsNumber(v)) {
        char tmp[40];
        dm_fmt_double(tmp, sizeof tmp, v->valuedouble);
        snprintf(out, n, "%s", tmp);
    } else if (cJSON_IsString(v)) {
        snprintf(out, n, "%s", v->valuestring);
    } else if (cJSON_IsBool(v)) {
        snprintf(out, n, "%s", cJSON_IsTrue(v) ? "true" : "false");
    } else {
        char *s = cJSON_PrintUnformatted(v);
        snprintf(out, n, "%s", s ? s : "?");
        free(s);
    }
    /* long values would wreck the layout: mark truncation */
    if (strlen(out) == n - 1 && n > 4)
        memcpy(out + n - 4, "...", 4);
}

static void cell(const cJSON *row, const col *c, char *out)
{
    const cJSON *v = c->key ? cJSON_GetObjectItemCaseSensitive(row, c->key) : row;
    if ((c->fmt == F_TIME || c->fmt == F_TIME_MS) && cJSON_IsNumber(v) &&
        fabs(v->valuedouble) < 1e15) {
        tu_fmt_utc(out, (int64_t)v->valuedouble, c->fmt == F_TIME_MS);
        return;
    }
    if (c->fmt == F_STAT && cJSON_IsNumber(v)) {
        snprintf(out, CELL, "%.6g", v->valuedouble);
        return;
    }
    table_cell_text(v, out, CELL);
}

static bool numeric_column(const cJSON *const *rows, size_t n, const col *c)
{
    for (size_t r = 0; r < n; r++) {
        const cJSON *v = c->key ? cJSON_GetObjectItemCaseSensitive(rows[r], c->key) : rows[r];
        if (v && !cJSON_IsNull(v) && !cJSON_IsNumber(v))
            return false;
    }
    return true;
}

static void print_line(FILE *out, char (*cells)[CELL], const int *w, const bool *right,
                       size_t ncols)
{
    for (size_t c = 0; c < ncols; c++) {
        const char *sep = c + 1 < ncols ? "  " : "";
        if (c + 1 == ncols && !right[c])
            fprintf(out, "%s", cells[c]); /* no trailing blanks */
        else
            fprintf(out, right[c] ? "%*s%s" : "%-*s%s", w[c], cells[c], sep);
    }
    fputc('\n', out);
}

void table_print_rows(FILE *out, const cJSON *const *rows, size_t n)
{
    if (n == 0) {
        fprintf(out, "(no rows)\n");
        return;
    }
    col cols[MAX_COLS];
    size_t ncols = choose_columns(rows[0], cols);
    char (*cells)[CELL] = calloc((n + 1) * ncols, CELL);
    if (!cells) {
        fprintf(stderr, "dmctl: out of memory\n");
        return;
    }
    int w[MAX_COLS];
    bool right[MAX_COLS];
    for (size_t c = 0; c < ncols; c++) {
        snprintf(cells[c], CELL, "%s", cols[c].title);
        w[c] = (int)strlen(cells[c]);
        right[c] = (cols[c].fmt == F_AUTO || cols[c].fmt == F_STAT) &&
                   numeric_column(rows, n, &cols[c]);
    }
    for (size_t r = 0; r < n; r++)
        for (size_t c = 0; c < ncols; c++) {
            char *t = cells[(r + 1) * ncols + c];
            cell(rows[r], &cols[c], t);
            if ((int)strlen(t) > w[c])
                w[c] = (int)strlen(t);
        }
    print_line(out, cells, w, right, ncols);
    for (size_t r = 0; r < n; r++)
        print_line(out, cells + (r + 1) * ncols, w, right, ncols);
    free(cells);
}

void table_print_array(FILE *out, const cJSON *arr)
{
    size_t n = (size_t)cJSON_GetArraySize(arr);
    const cJSON **rows = calloc(n ? n : 1, sizeof *rows);
    if (!rows) {
        fprintf(stderr, "dmctl: out of memory\n");
        return;
    }
    size_t k = 0;
    for (const cJSON *c = arr->child; c && k < n; c = c->next)
        rows[k++] = c;
    table_print_rows(out, rows, k);
    free(rows);
}

static bool listed(const char *key, const char *const *list)
{
    for (; list && *list; list++)
        if (strcmp(key, *list) == 0)
            return true;
    return false;
}

/* Members that hold a time as Unix milliseconds in the worker's replies. */
static bool time_member(const cJSON *c)
{
    static const char *const names[] = {"timestamp", "period_start", "start_timestamp",
                                        "window_start", "window_end", NULL};
    return cJSON_IsNumber(c) && c->valuedouble >= 0 && c->valuedouble < 1e15 &&
           listed(c->string, names);
}

/* Like the rows: seconds, and milliseconds only when the time has them (ticks do). */
static void fmt_time_member(const cJSON *c, char *out)
{
    int64_t ms = (int64_t)c->valuedouble;
    tu_fmt_utc(out, ms, ms % 1000 != 0);
    strcat(out, " UTC");
}

static void print_flat(FILE *out, const cJSON *obj, const char *prefix, const char *const *skip)
{
    for (const cJSON *c = obj->child; c; c = c->next) {
        if (!*prefix && listed(c->string, skip))
            continue;
        char key[256];
        snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "", c->string);
        if (cJSON_IsObject(c) && c->child) {
            print_flat(out, c, key, NULL);
            continue;
        }
        char val[1024];
        if (time_member(c))
            fmt_time_member(c, val);
        else
            table_cell_text(c, val, sizeof val);
        fprintf(out, "%s: %s\n", key, val);
    }
}

void table_print_object(FILE *out, const cJSON *obj, const char *const *skip)
{
    if (!cJSON_IsObject(obj)) {
        char val[1024];
        table_cell_text(obj, val, sizeof val);
        fprintf(out, "%s\n", val);
        return;
    }
    print_flat(out, obj, "", skip);
}
