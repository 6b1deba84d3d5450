#include "analysis_fmt.h"

#include <math.h>
#include <string.h>

#include "model/model.h"
#include "timeutil.h"

#define TEXT 64

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}

static const char *text(const cJSON *o, const char *k)
{
    const cJSON *v = get(o, k);
    return cJSON_IsString(v) ? v->valuestring : "-";
}

/* Only numbers a time can be: tu_fmt_minute's year must fit its buffer. */
static void time_text(char out[TEXT], const cJSON *o, const char *k)
{
    const cJSON *v = get(o, k);
    if (cJSON_IsNumber(v) && fabs(v->valuedouble) < 1e15)
        tu_fmt_minute(out, (int64_t)v->valuedouble);
    else
        snprintf(out, TEXT, "-");
}

/* `fmt` is "%.4f" or "%+.4f" */
static void num_text(char out[TEXT], const cJSON *o, const char *k, const char *fmt)
{
    const cJSON *v = get(o, k);
    if (cJSON_IsNumber(v))
        snprintf(out, TEXT, fmt, v->valuedouble);
    else
        snprintf(out, TEXT, "-");
}

static void int_text(char out[TEXT], const cJSON *o, const char *k)
{
    const cJSON *v = get(o, k);
    if (cJSON_IsNumber(v))
        snprintf(out, TEXT, "%.0f", v->valuedouble);
    else
        snprintf(out, TEXT, "-");
}

static int width(int w, const char *s)
{
    int n = (int)strlen(s);
    return n > w ? n : w;
}

static const cJSON *array(const cJSON *o, const char *k)
{
    const cJSON *v = get(o, k);
    return cJSON_IsArray(v) ? v : NULL;
}

static void served_line(FILE *out, const cJSON *reply, bool with_exact)
{
    fprintf(out, "served_by: %s", text(reply, "served_by"));
    if (with_exact) {
        const cJSON *e = get(reply, "exact");
        fprintf(out, "  exact: %s", cJSON_IsBool(e) ? (cJSON_IsTrue(e) ? "true" : "false") : "-");
    }
    fputc('\n', out);
}

/* ---- patterns ------------------------------------------------------------------ */

static void pattern_header(FILE *out, const pattern_ask *a)
{
    char t0[32], t1[32];
    tu_fmt_minute(t0, a->first_ts);
    tu_fmt_minute(t1, a->last_ts);
    fprintf(out, "query: %s %s, %lld closes, candles %s .. %s\n", a->symbol, a->timeframe,
            (long long)a->window, t0, t1);
    fprintf(out, "search: %s %s", a->in ? a->in : "every symbol", a->timeframe);
    if (a->similar)
        fprintf(out, ", score >= %g", a->threshold);
    if (a->limit > 0)
        fprintf(out, ", %s %lld", a->similar ? "at most" : "best", (long long)a->limit);
    if (a->has_start) {
        tu_fmt_minute(t0, a->start);
        fprintf(out, ", from %s", t0);
    }
    if (a->has_end) {
        tu_fmt_minute(t1, a->end);
        fprintf(out, ", before %s", t1);
    }
    if (a->zone >= 0)
        fprintf(out, ", exclusion zone %lld", (long long)a->zone);
    fprintf(out, " (%s)\n", a->similar ? "dm.v1.patterns.similar" : "dm.v1.patterns.find");
}

void fmt_patterns(FILE *out, const pattern_ask *a, const cJSON *reply)
{
    pattern_header(out, a);
    served_line(out, reply, true);
    const cJSON *data = array(reply, "data");
    int n = data ? cJSON_GetArraySize(data) : 0;
    fprintf(out, "matches: %d (score: Pearson correlation of the closes; times: candle opens)\n",
            n);
    if (n == 0)
        return;
    int ws = (int)strlen("symbol"), wt = (int)strlen("start");
    for (const cJSON *m = data->child; m; m = m->next) {
        char t[TEXT];
        ws = width(ws, text(m, "symbol"));
        time_text(t, m, "start_timestamp");
        wt = width(wt, t);
        time_text(t, m, "timestamp");
        wt = width(wt, t);
    }
    fprintf(out, "\n%4s  %-*s  %-*s  %-*s  %7s\n", "rank", ws, "symbol", wt, "start", wt, "end",
            "score");
    int rank = 1;
    for (const cJSON *m = data->child; m; m = m->next, rank++) {
        char t0[TEXT], t1[TEXT], score[TEXT];
        time_text(t0, m, "start_timestamp");
        time_text(t1, m, "timestamp");
        num_text(score, m, "score", "%.4f");
        fprintf(out, "%4d  %-*s  %-*s  %-*s  %7s\n", rank, ws, text(m, "symbol"), wt, t0, wt, t1,
                score);
    }
}

/* ---- correlations and graph ------------------------------------------------------ */

static void threshold_text(char out[TEXT], const correl_ask *a)
{
    if (a->has_threshold)
        snprintf(out, TEXT, "|r| >= %g", a->threshold);
    else
        snprintf(out, TEXT, "|r| >= the worker's default threshold");
}

/* "window: 2025-05-31 00:00 UTC < t <= 2025-06-30 00:00 UTC (720 x 1h)" */
static void window_line(FILE *out, const correl_ask *a, const cJSON *reply)
{
    char t0[TEXT], t1[TEXT];
    time_text(t0, reply, "window_start");
    time_text(t1, reply, "window_end");
    fprintf(out, "window: %s < t <= %s", t0, t1);
    const cJSON *s = get(reply, "window_start"), *e = get(reply, "window_end");
    dm_tf tf;
    if (cJSON_IsNumber(s) && cJSON_IsNumber(e) && dm_tf_parse(a->timeframe, &tf))
        fprintf(out, " (%.0f x %s)", (e->valuedouble - s->valuedouble) / (double)dm_tf_ms(tf),
                a->timeframe);
    fputc('\n', out);
}

void fmt_correlations(FILE *out, const correl_ask *a, const cJSON *reply)
{
    char thr[TEXT];
    threshold_text(thr, a);
    fprintf(out, "returns correlated with %s %s, %s\n", a->symbol, a->timeframe, thr);
    window_line(out, a, reply);
    served_line(out, reply, false);
    const cJSON *data = array(reply, "data");
    if (!data || !data->child) {
        fprintf(out, "\n(no symbol correlates with %s at %s in this window)\n", a->symbol, thr);
        return;
    }
    int ws = (int)strlen("symbol"), wn = 1;
    for (const cJSON *row = data->child; row; row = row->next) {
        char n[TEXT];
        ws = width(ws, text(row, "symbol"));
        int_text(n, row, "n");
        wn = width(wn, n);
    }
    fprintf(out, "\n%-*s  %7s  %*s\n", ws, "symbol", "r", wn, "n");
    for (const cJSON *row = data->child; row; row = row->next) {
        char r[TEXT], n[TEXT];
        num_text(r, row, "r", "%+.4f");
        int_text(n, row, "n");
        fprintf(out, "%-*s  %7s  %*s\n", ws, text(row, "symbol"), r, wn, n);
    }
}

/* One node's line: its depth, then every edge that touches it, the other end first. */
static void node_line(FILE *out, const cJSON *node, const cJSON *edges, int ws)
{
    const char *sym = text(node, "symbol");
    char depth[TEXT];
    int_text(depth, node, "depth");
    fprintf(out, "  %-*s  depth %s:", ws, sym, depth);
    int k = 0;
    for (const cJSON *e = edges ? edges->child : NULL; e; e = e->next) {
        const char *x = text(e, "a"), *y = text(e, "b");
        const char *other = strcmp(x, sym) == 0 ? y : strcmp(y, sym) == 0 ? x : NULL;
        if (!other)
            continue;
        char r[TEXT];
        num_text(r, e, "r", "%+.4f");
        fprintf(out, "%s %s %s", k++ ? "," : "", other, r);
    }
    fprintf(out, "%s\n", k ? "" : " (no neighbour)");
}

static void clusters_part(FILE *out, const cJSON *clusters, const char *thr)
{
    int n = clusters ? cJSON_GetArraySize(clusters) : 0;
    fprintf(out, "\nclusters: %d (connected at %s; every symbol with candles in the window)\n", n,
            thr);
    int i = 1;
    for (const cJSON *c = clusters ? clusters->child : NULL; c; c = c->next, i++) {
        fprintf(out, "  %d.", i);
        int k = 0;
        for (const cJSON *s = cJSON_IsArray(c) ? c->child : NULL; s; s = s->next)
            fprintf(out, "%s %s", k++ ? "," : "", cJSON_IsString(s) ? s->valuestring : "-");
        fputc('\n', out);
    }
}

static void mst_part(FILE *out, const cJSON *mst)
{
    int n = mst ? cJSON_GetArraySize(mst) : 0;
    fprintf(out, "\nminimum spanning forest: %d edge%s (distance sqrt(2(1 - r)))\n", n,
            n == 1 ? "" : "s");
    int wa = 1, wb = 1;
    for (const cJSON *e = mst ? mst->child : NULL; e; e = e->next) {
        wa = width(wa, text(e, "a"));
        wb = width(wb, text(e, "b"));
    }
    for (const cJSON *e = mst ? mst->child : NULL; e; e = e->next) {
        char r[TEXT];
        num_text(r, e, "r", "%+.4f");
        fprintf(out, "  %-*s - %-*s  r %s\n", wa, text(e, "a"), wb, text(e, "b"), r);
    }
}

void fmt_graph(FILE *out, const correl_ask *a, const cJSON *reply)
{
    char thr[TEXT];
    threshold_text(thr, a);
    fprintf(out, "correlation graph around %s %s, ", a->symbol, a->timeframe);
    if (a->depth > 0)
        fprintf(out, "depth %lld", (long long)a->depth);
    else
        fprintf(out, "the worker's default depth");
    fprintf(out, ", %s\n", thr);
    window_line(out, a, reply);
    served_line(out, reply, false);
    const cJSON *nodes = array(reply, "nodes"), *edges = array(reply, "edges");
    int n = nodes ? cJSON_GetArraySize(nodes) : 0;
    int ws = 1;
    for (const cJSON *v = nodes ? nodes->child : NULL; v; v = v->next)
        ws = width(ws, text(v, "symbol"));
    fprintf(out, "\nnodes: %d, edges: %d (each node: its depth, its neighbours with r)\n", n,
            edges ? cJSON_GetArraySize(edges) : 0);
    for (const cJSON *v = nodes ? nodes->child : NULL; v; v = v->next)
        node_line(out, v, edges, ws);
    clusters_part(out, array(reply, "clusters"), thr);
    mst_part(out, array(reply, "mst"));
}
