/* patterns, correlations, graph: the worker's analysis subjects asked from the command
 * line and answered readably (analysis_fmt.c), or as the raw reply with --json. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cJSON.h>

#include "analysis_fmt.h"
#include "args.h"
#include "codec/enc.h"
#include "commands.h"
#include "model.h"
#include "request.h"
#include "timeutil.h"
#include "backend/analysis_ops.h" /* the pattern length bounds */
#include "model/names.h"

#define SUBJ_CANDLES_HISTORY DM_SUBJ_CANDLES_HISTORY
#define SUBJ_PATTERNS_FIND DM_SUBJ_PATTERNS_FIND
#define SUBJ_PATTERNS_SIMILAR DM_SUBJ_PATTERNS_SIMILAR
#define SUBJ_CORRELATIONS DM_SUBJ_CORRELATIONS
#define SUBJ_GRAPH DM_SUBJ_GRAPH

/* A pattern is 8 .. 512 closes (subjects/README.md, dm.v1.patterns.find). */
#define PATTERN_MIN DM_PATTERN_W_MIN
#define PATTERN_MAX DM_PATTERN_W_MAX

#define UNSET INT64_MIN /* an integer option not given */

static int bad_usage(const char *cmd, const char *msg)
{
    fprintf(stderr, "dmctl %s: %s (see dmctl %s --help)\n", cmd, msg, cmd);
    return EXIT_USAGE;
}

static bool parse_time_opt(const char *cmd, const char *opt, const char *s, int64_t *ms)
{
    if (tu_parse_when(s, ms))
        return true;
    fprintf(stderr,
            "dmctl %s: --%s '%s' is not a time: use YYYY-MM-DD, 'YYYY-MM-DD HH:MM' (UTC), "
            "an ISO-8601 instant with its zone or Unix milliseconds\n",
            cmd, opt, s);
    return false;
}

static bool parse_tf_opt(const char *cmd, const char *tf)
{
    int64_t period;
    if (timeframe_parse(tf, &period))
        return true;
    fprintf(stderr, "dmctl %s: --timeframe '%s' is none of 1m 5m 15m 30m 1h 4h 1d 1w\n", cmd, tf);
    return false;
}

/* One request answered: EXIT_OK with r->json a data reply, or the error reported. */
static int ask(natsConnection *nc, const global_opts *g, const char *subject, const cJSON *body,
               bool json_mode, const char *(*option_of)(const char *), reply *r)
{
    const request q = {.subject = subject, .tree = body};
    memset(r, 0, sizeof *r);
    if (!body) {
        fprintf(stderr, "dmctl: out of memory\n");
        return EXIT_FAIL;
    }
    if (request_send(nc, g, &q, r) != EXIT_OK)
        return EXIT_FAIL;
    if (reply_report_error(r, json_mode, option_of))
        return EXIT_ERR_REPLY;
    return EXIT_OK;
}

static void add_time(cJSON *o, const char *k, int64_t ms)
{
    cJSON_AddNumberToObject(o, k, (double)ms);
}

/* ---- patterns ------------------------------------------------------------------ */

typedef struct patterns_opts {
    const char *symbol, *at, *timeframe, *similar, *in, *start, *end;
    int64_t window, limit, zone;
    bool json;
} patterns_opts;

static const char *history_option(const char *field)
{
    static const char *const map[][2] = {
        {"symbol", "--symbol"},
        {"timeframe", "--timeframe"},
        {"start_date", "--at"},
        {"page_size", "--window"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(field, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

static const char *search_option(const char *field)
{
    static const char *const map[][2] = {
        {"pattern_vector", "--window"}, {"query_vector", "--window"}, {"threshold", "--similar"},
        {"limit", "--limit"},           {"symbol", "--in"},           {"timeframe", "--timeframe"},
        {"start_date", "--start"},      {"end_date", "--end"},        {"exclusion_zone", "--zone"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(field, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

/* The first W closes of a history reply's rows; sets a->first_ts and a->last_ts. */
static cJSON *closes_of(const cJSON *data, pattern_ask *a)
{
    cJSON *closes = cJSON_CreateArray();
    int i = 0;
    for (const cJSON *c = data->child; c && closes && i < a->window; c = c->next, i++) {
        const cJSON *v = json_member(c, "close"), *ts = json_member(c, "timestamp");
        if (!cJSON_IsNumber(v) || !cJSON_IsNumber(ts)) {
            fprintf(stderr, "dmctl patterns: candle %d of the reply has no close\n", i);
            cJSON_Delete(closes);
            return NULL;
        }
        if (i == 0)
            a->first_ts = (int64_t)ts->valuedouble;
        a->last_ts = (int64_t)ts->valuedouble;
        cJSON_AddItemToArray(closes, cJSON_CreateNumber(v->valuedouble));
    }
    if (!closes)
        fprintf(stderr, "dmctl: out of memory\n");
    return closes;
}

/* dm.v1.candles.history for at most W candles from a->first_ts, before `end`. */
static int fetch_candles(natsConnection *nc, const global_opts *g, const pattern_ask *a,
                         int64_t end, reply *r)
{
    cJSON *body = cJSON_CreateObject();
    if (body) {
        cJSON_AddStringToObject(body, "symbol", a->symbol);
        cJSON_AddStringToObject(body, "timeframe", a->timeframe);
        add_time(body, "start_date", a->first_ts);
        add_time(body, "end_date", end > a->first_ts ? end : a->first_ts);
        cJSON_AddNumberToObject(body, "page_size", (double)a->window);
    }
    int rc = ask(nc, g, SUBJ_CANDLES_HISTORY, body, false, history_option, r);
    cJSON_Delete(body);
    return rc;
}

static int candle_count(const reply *r)
{
    const cJSON *data = json_member(r->json, "data");
    return cJSON_IsArray(data) ? cJSON_GetArraySize(data) : 0;
}

static void too_few(const pattern_ask *a, const char *at_text, const reply *r)
{
    int n = candle_count(r);
    char t[32];
    tu_fmt_minute(t, a->first_ts);
    if (n == 0) {
        fprintf(stderr, "dmctl patterns: no %s candle of %s is stored from %s (--at %s) on\n",
                a->timeframe, a->symbol, t, at_text);
        return;
    }
    const cJSON *last = cJSON_GetArrayItem(json_member(r->json, "data"), n - 1);
    const cJSON *ts = json_member(last, "timestamp");
    char tl[32] = "-";
    if (cJSON_IsNumber(ts))
        tu_fmt_minute(tl, (int64_t)ts->valuedouble);
    fprintf(stderr,
            "dmctl patterns: only %d %s candle%s of %s %s stored from %s (--at %s) on, the "
            "last at %s; --window %lld needs %lld\n",
            n, a->timeframe, n == 1 ? "" : "s", a->symbol, n == 1 ? "is" : "are", t, at_text, tl,
            (long long)a->window, (long long)a->window);
}

/* The W closes from a->first_ts on, as the search's vector, with a->first_ts and
 * a->last_ts set to the window's candles; NULL (said why) otherwise. A first read over
 * twice the window's span plus two weeks (weekends, holidays) usually holds them: a
 * read to the end of time is slow on a long history, so only a short one needs it. */
static cJSON *fetch_closes(natsConnection *nc, const global_opts *g, pattern_ask *a,
                           const char *at_text)
{
    dm_tf tf;
    int64_t span = dm_tf_parse(a->timeframe, &tf) ? 2 * a->window * dm_tf_ms(tf) : 0;
    /* no candle opens later than a day past the worker's clock */
    const int64_t ends[] = {a->first_ts + span + 14 * DM_DAY_MS, dm_now_ms() + 2 * DM_DAY_MS};
    reply r = {0};
    int rc = EXIT_FAIL;
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
        reply_free(&r);
        rc = fetch_candles(nc, g, a, ends[i], &r);
        if (rc != EXIT_OK || candle_count(&r) >= a->window || ends[i] >= ends[1])
            break;
    }
    cJSON *closes = NULL;
    if (rc == EXIT_OK && candle_count(&r) < a->window)
        too_few(a, at_text, &r);
    else if (rc == EXIT_OK)
        closes = closes_of(json_member(r.json, "data"), a);
    reply_free(&r);
    return closes;
}

static cJSON *search_body(const pattern_ask *a, cJSON *closes)
{
    cJSON *body = cJSON_CreateObject();
    if (!body) {
        cJSON_Delete(closes);
        return NULL;
    }
    cJSON_AddItemToObject(body, a->similar ? "query_vector" : "pattern_vector", closes);
    if (a->similar)
        cJSON_AddNumberToObject(body, "threshold", a->threshold);
    if (a->limit != UNSET)
        cJSON_AddNumberToObject(body, "limit", (double)a->limit);
    if (a->in)
        cJSON_AddStringToObject(body, "symbol", a->in);
    cJSON_AddStringToObject(body, "timeframe", a->timeframe);
    if (a->has_start)
        add_time(body, "start_date", a->start);
    if (a->has_end)
        add_time(body, "end_date", a->end);
    if (a->zone != UNSET)
        cJSON_AddNumberToObject(body, "exclusion_zone", (double)a->zone);
    return body;
}

static int run_patterns(const global_opts *g, pattern_ask *a, const patterns_opts *o)
{
    natsConnection *nc = NULL;
    if (dm_connect(g, &nc) != NATS_OK)
        return EXIT_FAIL;
    int rc = EXIT_FAIL;
    cJSON *closes = fetch_closes(nc, g, a, o->at);
    if (closes) {
        cJSON *body = search_body(a, closes);
        reply r;
        const char *subject = a->similar ? SUBJ_PATTERNS_SIMILAR : SUBJ_PATTERNS_FIND;
        rc = ask(nc, g, subject, body, o->json, search_option, &r);
        if (rc == EXIT_OK && o->json)
            print_json_line(r.json);
        else if (rc == EXIT_OK)
            fmt_patterns(stdout, a, r.json);
        reply_free(&r);
        cJSON_Delete(body);
    } else {
        rc = EXIT_FAIL;
    }
    dm_disconnect(nc);
    return rc;
}

/* Fills `a` from the options; false (said why) when one is wrong. */
static bool patterns_ask(const patterns_opts *o, symbol *sym, symbol *in, pattern_ask *a)
{
    const char *cmd = "patterns";
    if (!symbol_parse(o->symbol, sym) || (o->in && !symbol_parse(o->in, in)))
        return false;
    if (!parse_tf_opt(cmd, o->timeframe) || !parse_time_opt(cmd, "at", o->at, &a->first_ts))
        return false;
    if (o->start && !parse_time_opt(cmd, "start", o->start, &a->start))
        return false;
    if (o->end && !parse_time_opt(cmd, "end", o->end, &a->end))
        return false;
    if (o->similar && !dm_parse_field_double(o->similar, &a->threshold)) {
        fprintf(stderr, "dmctl patterns: --similar needs a number, got '%s'\n", o->similar);
        return false;
    }
    a->symbol = sym->name;
    a->timeframe = o->timeframe;
    a->window = o->window;
    a->in = o->in ? in->name : NULL;
    a->similar = o->similar != NULL;
    a->limit = o->limit;
    a->has_start = o->start != NULL;
    a->has_end = o->end != NULL;
    a->zone = o->zone;
    return true;
}

int cmd_patterns(global_opts *g, int argc, char **argv)
{
    patterns_opts o = {.timeframe = "1h", .window = UNSET, .limit = UNSET, .zone = UNSET};
    const arg_spec specs[] = {
        {"symbol", ARG_STR, &o.symbol}, {"at", ARG_STR, &o.at},
        {"window", ARG_INT, &o.window}, {"timeframe", ARG_STR, &o.timeframe},
        {"limit", ARG_INT, &o.limit},   {"similar", ARG_STR, &o.similar},
        {"in", ARG_STR, &o.in},         {"start", ARG_STR, &o.start},
        {"end", ARG_STR, &o.end},       {"zone", ARG_INT, &o.zone},
        {"json", ARG_FLAG, &o.json},
    };
    int npos;
    int r = args_parse(argc, argv, specs, (int)(sizeof specs / sizeof specs[0]), g, NULL, 0, &npos);
    if (r == ARGS_HELP) {
        command_usage(argv[0], stdout);
        return EXIT_OK;
    }
    if (r != ARGS_OK)
        return EXIT_USAGE;
    if (!o.symbol || !o.at || o.window == UNSET)
        return bad_usage(argv[0], "--symbol, --at and --window are required");
    if (o.window < PATTERN_MIN || o.window > PATTERN_MAX)
        return bad_usage(argv[0], "--window must be 8 .. 512 candles");
    symbol sym, in;
    pattern_ask a = {0};
    if (!patterns_ask(&o, &sym, &in, &a))
        return EXIT_USAGE;
    return run_patterns(g, &a, &o);
}

/* ---- correlations and graph ------------------------------------------------------ */

typedef struct correl_opts {
    const char *symbol, *timeframe, *threshold, *end;
    int64_t window, depth;
    bool json;
} correl_opts;

static const char *correl_option(const char *field)
{
    static const char *const map[][2] = {
        {"symbol", "--symbol"},       {"start_symbol", "--symbol"}, {"threshold", "--threshold"},
        {"timeframe", "--timeframe"}, {"end_date", "--end"},        {"window_candles", "--window"},
        {"depth", "--depth"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(field, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

static cJSON *correl_body(const correl_opts *o, const correl_ask *a, bool graph)
{
    cJSON *body = cJSON_CreateObject();
    if (!body)
        return NULL;
    cJSON_AddStringToObject(body, graph ? "start_symbol" : "symbol", a->symbol);
    if (graph && o->depth != UNSET)
        cJSON_AddNumberToObject(body, "depth", (double)o->depth);
    if (a->has_threshold)
        cJSON_AddNumberToObject(body, "threshold", a->threshold);
    cJSON_AddStringToObject(body, "timeframe", a->timeframe);
    if (o->window != UNSET)
        cJSON_AddNumberToObject(body, "window_candles", (double)o->window);
    return body;
}

/* Both commands: parse, ask, print. `graph` picks dm.v1.graph and its options. */
static int correl_command(global_opts *g, int argc, char **argv, bool graph)
{
    correl_opts o = {.timeframe = "1h", .window = UNSET, .depth = UNSET};
    const arg_spec specs[] = {
        {"symbol", ARG_STR, &o.symbol},       {"threshold", ARG_STR, &o.threshold},
        {"timeframe", ARG_STR, &o.timeframe}, {"end", ARG_STR, &o.end},
        {"window", ARG_INT, &o.window},       {"json", ARG_FLAG, &o.json},
        {"depth", ARG_INT, &o.depth},
    };
    int nspecs = (int)(sizeof specs / sizeof specs[0]) - (graph ? 0 : 1);
    int npos;
    int r = args_parse(argc, argv, specs, nspecs, g, NULL, 0, &npos);
    if (r == ARGS_HELP) {
        command_usage(argv[0], stdout);
        return EXIT_OK;
    }
    if (r != ARGS_OK)
        return EXIT_USAGE;
    if (!o.symbol)
        return bad_usage(argv[0], "--symbol is required");
    symbol sym;
    correl_ask a = {.timeframe = o.timeframe, .depth = o.depth == UNSET ? 0 : o.depth};
    int64_t end = 0;
    if (!symbol_parse(o.symbol, &sym) || !parse_tf_opt(argv[0], o.timeframe) ||
        (o.end && !parse_time_opt(argv[0], "end", o.end, &end)))
        return EXIT_USAGE;
    if (o.threshold && !dm_parse_field_double(o.threshold, &a.threshold))
        return bad_usage(argv[0], "--threshold needs a number");
    a.symbol = sym.name;
    a.has_threshold = o.threshold != NULL;

    natsConnection *nc = NULL;
    if (dm_connect(g, &nc) != NATS_OK)
        return EXIT_FAIL;
    cJSON *body = correl_body(&o, &a, graph);
    if (body && o.end)
        add_time(body, "end_date", end);
    reply rep;
    int rc = ask(nc, g, graph ? SUBJ_GRAPH : SUBJ_CORRELATIONS, body, o.json, correl_option, &rep);
    if (rc == EXIT_OK && o.json)
        print_json_line(rep.json);
    else if (rc == EXIT_OK && graph)
        fmt_graph(stdout, &a, rep.json);
    else if (rc == EXIT_OK)
        fmt_correlations(stdout, &a, rep.json);
    reply_free(&rep);
    cJSON_Delete(body);
    dm_disconnect(nc);
    return rc;
}

int cmd_correlations(global_opts *g, int argc, char **argv)
{
    return correl_command(g, argc, argv, false);
}

int cmd_graph(global_opts *g, int argc, char **argv)
{
    return correl_command(g, argc, argv, true);
}
