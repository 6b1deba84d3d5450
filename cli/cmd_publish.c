/* publish-candles, publish-ticks, publish-events: CSV -> contract payloads
 * -> JetStream (stream MARKET, created by dm-worker, never by dmctl). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "csv.h"
#include "codec/enc.h"
#include "codec/pb.h"
#include "payload.h"
#include "publish.h"
#include "ticks.h"

#define MAX_BULK 10000
#define DEFAULT_BULK 10000
#define PENDING_SINGLE 4000
#define PENDING_BULK 8
#define DEFAULT_PER_MINUTE 9

static int bad_usage(const char *cmd, const char *msg)
{
    fprintf(stderr, "dmctl %s: %s (see dmctl %s --help)\n", cmd, msg, cmd);
    return EXIT_USAGE;
}

static int help_or_error(int r, const char *cmd)
{
    if (r == ARGS_HELP) {
        command_usage(cmd, stdout);
        return EXIT_OK;
    }
    return EXIT_USAGE;
}

/* One payload at a time, written into one reused buffer. Protobuf is written as msgpack
 * first, then converted to the subject's message (the worker's own codec). */
typedef struct writer {
    dm_encoding fmt;
    dm_buf out, pb;
    dm_enc e;
} writer;

static void writer_init(writer *w, bool msgpack, bool protobuf)
{
    w->fmt = protobuf ? DM_ENC_PROTOBUF : msgpack ? DM_ENC_MSGPACK : DM_ENC_JSON;
    dm_buf_init(&w->out);
    dm_buf_init(&w->pb);
}

static void writer_free(writer *w)
{
    dm_buf_free(&w->out);
    dm_buf_free(&w->pb);
}

static dm_enc *writer_start(writer *w)
{
    dm_buf_reset(&w->out);
    dm_enc_init(&w->e, w->fmt == DM_ENC_PROTOBUF ? DM_ENC_MSGPACK : w->fmt, &w->out);
    return &w->e;
}

static const char *as_protobuf(writer *w, const char *subject, size_t *len)
{
    cJSON *doc = NULL;
    dm_err err = {0};
    dm_buf_reset(&w->pb);
    dm_code c = dm_doc_parse_msgpack_value(w->out.data, w->out.len, &doc, &err);
    if (c == DM_OK)
        c = dm_pb_encode(dm_pb_payload_type(subject), doc, &w->pb, &err);
    cJSON_Delete(doc);
    *len = w->pb.len;
    return c == DM_OK && !w->pb.oom ? w->pb.data : NULL;
}

/* The payload for `subject`; NULL when it could not be written (out of memory). */
static const char *writer_data(writer *w, const char *subject, size_t *len)
{
    *len = w->out.len;
    if (w->out.oom || !w->out.data)
        return NULL;
    return w->fmt == DM_ENC_PROTOBUF ? as_protobuf(w, subject, len) : w->out.data;
}

static bool shift_to_ms(const char *cmd, double hours, int64_t *ms)
{
    if (fabs(hours) > 24 * 366) {
        fprintf(stderr, "dmctl %s: --shift-hours %g is out of range\n", cmd, hours);
        return false;
    }
    *ms = llround(hours * 3600000.0);
    return true;
}

/* ---- publish-candles --------------------------------------------------- */

typedef struct candle_args {
    const char *symbol, *timeframe, *file, *source;
    int64_t bulk, limit;
    double shift_hours;
    bool msgpack, protobuf, skip_bad, quiet;
} candle_args;

/* Encodes rows[0..n) as one bulk message (bulk > 0) or one single candle. */
static void encode_candles(writer *w, const candle_args *a, const symbol *sym, const candle *c,
                           size_t n, char subject[128], char id[192])
{
    dm_enc *e = writer_start(w);
    if (a->bulk > 0) {
        payload_bulk(e, sym, a->timeframe, a->source, c, n);
        snprintf(subject, 128, DM_SUBJ_CANDLES_FMT, sym->token, a->timeframe);
        snprintf(id, 192, "candles:%s:%s:%" PRId64 ":%" PRId64 ":%zu", sym->token, a->timeframe,
                 c[0].ts, c[n - 1].ts, n);
    } else {
        payload_candle(e, sym, a->timeframe, a->source, c);
        snprintf(subject, 128, DM_SUBJ_CANDLE_FMT, sym->token, a->timeframe);
        snprintf(id, 192, "candle:%s:%s:%" PRId64, sym->token, a->timeframe, c->ts);
    }
}

/* The server counts headers against max_payload too; this is a generous
 * bound for "NATS/1.0", Nats-Msg-Id and Content-Type. */
static bool fits(natsConnection *nc, size_t len, const char *id, size_t n)
{
    int64_t max_payload = natsConnection_GetMaxPayload(nc);
    int64_t total = (int64_t)(len + strlen(id)) + 128;
    if (total <= max_payload)
        return true;
    fprintf(stderr,
            "dmctl: a message of %zu bytes (%zu candles) exceeds the server's max_payload of "
            "%" PRId64 " bytes: use a smaller --bulk or raise max_payload in the nats-server "
            "config\n",
            len, n, max_payload);
    return false;
}

static int publish_candle_rows(natsConnection *nc, const global_opts *g, const candle_args *a,
                               const symbol *sym, const candle_set *cs, size_t count)
{
    pub_config pc = {
        .unit = "candles",
        .total_records = count,
        .max_pending = a->bulk > 0 ? PENDING_BULK : PENDING_SINGLE,
        .ack_wait_ms = g->timeout_ms,
        .bulk_ids = a->bulk > 0,
        .quiet = a->quiet,
    };
    publisher *p = pub_create(nc, &pc);
    if (!p)
        return EXIT_FAIL;
    writer w;
    writer_init(&w, a->msgpack, a->protobuf);
    char subject[128], id[192];
    size_t step = a->bulk > 0 ? (size_t)a->bulk : 1;
    int rc = EXIT_OK;
    for (size_t i = 0; i < count; i += step) {
        size_t n = count - i < step ? count - i : step, len;
        encode_candles(&w, a, sym, &cs->rows[i], n, subject, id);
        const char *data = writer_data(&w, subject, &len);
        if (!data)
            fprintf(stderr, "dmctl: cannot encode payload (out of memory or internal error)\n");
        if (!data || !fits(nc, len, id, n)) {
            rc = EXIT_FAIL;
            pub_abort(p);
            break;
        }
        if (!pub_send(p, subject, id, dm_content_type(w.fmt), data, len, n))
            break; /* pub_finish reports why */
    }
    int frc = pub_finish(p, cs->bad);
    writer_free(&w);
    pub_destroy(p);
    return rc != EXIT_OK ? rc : frc;
}

static int run_publish_candles(const global_opts *g, const candle_args *a)
{
    symbol sym;
    int64_t period;
    load_opts lo = {.skip_bad = a->skip_bad, .quiet = a->quiet};
    if (!symbol_parse(a->symbol, &sym))
        return EXIT_USAGE;
    if (!timeframe_parse(a->timeframe, &period))
        return bad_usage("publish-candles", "--timeframe must look like 1m, 5m, 1h, 4h, 1d, 1w");
    if (!shift_to_ms("publish-candles", a->shift_hours, &lo.shift_ms))
        return EXIT_USAGE;
    lo.align_ms = period;

    candle_set cs;
    if (csv_load_candles(a->file, &lo, &cs) != 0)
        return EXIT_FAIL;
    size_t count = cs.n;
    if (a->limit > 0 && (size_t)a->limit < count)
        count = (size_t)a->limit;

    natsConnection *nc = NULL;
    int rc = EXIT_FAIL;
    if (dm_connect(g, &nc) == NATS_OK)
        rc = publish_candle_rows(nc, g, a, &sym, &cs, count);
    dm_disconnect(nc);
    candle_set_free(&cs);
    return rc;
}

int cmd_publish_candles(global_opts *g, int argc, char **argv)
{
    candle_args a = {.source = "broker-csv", .bulk = DEFAULT_BULK};
    const arg_spec specs[] = {
        {"symbol", ARG_STR, &a.symbol},        {"timeframe", ARG_STR, &a.timeframe},
        {"file", ARG_STR, &a.file},            {"source", ARG_STR, &a.source},
        {"bulk", ARG_INT, &a.bulk},            {"limit", ARG_INT, &a.limit},
        {"shift-hours", ARG_DBL, &a.shift_hours}, {"msgpack", ARG_FLAG, &a.msgpack},
        {"protobuf", ARG_FLAG, &a.protobuf},
        {"skip-bad", ARG_FLAG, &a.skip_bad},   {"quiet", ARG_FLAG, &a.quiet},
    };
    int npos;
    int r = args_parse(argc, argv, specs, sizeof specs / sizeof specs[0], g, NULL, 0, &npos);
    if (r != ARGS_OK)
        return help_or_error(r, argv[0]);
    if (!a.symbol || !a.timeframe || !a.file)
        return bad_usage(argv[0], "--symbol, --timeframe and --file are required");
    if (a.bulk < 0 || a.bulk > MAX_BULK)
        return bad_usage(argv[0], "--bulk must be between 0 and 10000");
    if (a.limit < 0)
        return bad_usage(argv[0], "--limit must be positive");
    if (a.source[0] == '\0')
        return bad_usage(argv[0], "--source must not be empty");
    return run_publish_candles(g, &a);
}

/* ---- publish-ticks ------------------------------------------------------ */

typedef struct tick_args {
    const char *symbol, *file;
    int64_t per_minute, limit;
    double shift_hours;
    bool msgpack, protobuf, skip_bad, quiet;
} tick_args;

/* The ticks are DERIVED from one-minute candles (ticks.h), not real quotes;
 * the source name says so to every consumer. */
#define TICK_SOURCE "m1-derived"

/* Sends the ticks of one candle; false when publishing must stop. */
static bool send_ticks(publisher *p, writer *w, const symbol *sym, const tick *t, size_t n)
{
    char subject[64], id[128];
    snprintf(subject, sizeof subject, DM_SUBJ_TICK_FMT, sym->token);
    for (size_t i = 0; i < n; i++) {
        payload_tick(writer_start(w), sym, TICK_SOURCE, &t[i]);
        snprintf(id, sizeof id, "tick:%s:%" PRId64 ":" TICK_SOURCE, sym->token, t[i].ts);
        size_t len;
        const char *data = writer_data(w, subject, &len);
        if (!data) {
            fprintf(stderr, "dmctl: cannot encode payload (out of memory or internal error)\n");
            pub_abort(p);
            return false;
        }
        if (!pub_send(p, subject, id, dm_content_type(w->fmt), data, len, 1))
            return false;
    }
    return true;
}

static int publish_tick_rows(natsConnection *nc, const global_opts *g, const tick_args *a,
                             const symbol *sym, const candle_set *cs, size_t total)
{
    pub_config pc = {
        .unit = "ticks",
        .total_records = total,
        .max_pending = PENDING_SINGLE,
        .ack_wait_ms = g->timeout_ms,
        .quiet = a->quiet,
    };
    tick *ticks = malloc((size_t)a->per_minute * sizeof *ticks);
    publisher *p = ticks ? pub_create(nc, &pc) : NULL;
    if (!p) {
        if (!ticks)
            fprintf(stderr, "dmctl: out of memory\n");
        free(ticks);
        return EXIT_FAIL;
    }
    writer w;
    writer_init(&w, a->msgpack, a->protobuf);
    size_t left = total;
    int rc = EXIT_OK;
    for (size_t i = 0; i < cs->n && left > 0; i++) {
        if (!ticks_from_m1(sym, &cs->rows[i], (int)a->per_minute, ticks)) {
            fprintf(stderr, "dmctl: %s: candle at %" PRId64 " has prices below one point\n",
                    a->file, cs->rows[i].ts);
            rc = EXIT_FAIL;
            pub_abort(p);
            break;
        }
        size_t n = left < (size_t)a->per_minute ? left : (size_t)a->per_minute;
        if (!send_ticks(p, &w, sym, ticks, n))
            break; /* pub_finish reports why */
        left -= n;
    }
    int frc = pub_finish(p, cs->bad);
    writer_free(&w);
    pub_destroy(p);
    free(ticks);
    return rc != EXIT_OK ? rc : frc;
}

int cmd_publish_ticks(global_opts *g, int argc, char **argv)
{
    tick_args a = {.per_minute = DEFAULT_PER_MINUTE};
    const arg_spec specs[] = {
        {"symbol", ARG_STR, &a.symbol},         {"file", ARG_STR, &a.file},
        {"per-minute", ARG_INT, &a.per_minute}, {"limit", ARG_INT, &a.limit},
        {"shift-hours", ARG_DBL, &a.shift_hours}, {"msgpack", ARG_FLAG, &a.msgpack},
        {"protobuf", ARG_FLAG, &a.protobuf},
        {"skip-bad", ARG_FLAG, &a.skip_bad},    {"quiet", ARG_FLAG, &a.quiet},
    };
    int npos;
    int r = args_parse(argc, argv, specs, sizeof specs / sizeof specs[0], g, NULL, 0, &npos);
    if (r != ARGS_OK)
        return help_or_error(r, argv[0]);
    if (!a.symbol || !a.file)
        return bad_usage(argv[0], "--symbol and --file are required");
    if (a.per_minute < 1 || a.per_minute > TICKS_MAX_PER_MINUTE)
        return bad_usage(argv[0], "--per-minute must be between 1 and 60000");
    if (a.limit < 0)
        return bad_usage(argv[0], "--limit must be positive");

    symbol sym;
    load_opts lo = {.align_ms = 60000, .skip_bad = a.skip_bad, .quiet = a.quiet};
    if (!symbol_parse(a.symbol, &sym) || !shift_to_ms(argv[0], a.shift_hours, &lo.shift_ms))
        return EXIT_USAGE;
    candle_set cs;
    if (csv_load_candles(a.file, &lo, &cs) != 0)
        return EXIT_FAIL;
    size_t total = cs.n * (size_t)a.per_minute;
    if (a.limit > 0 && (size_t)a.limit < total)
        total = (size_t)a.limit;

    natsConnection *nc = NULL;
    int rc = EXIT_FAIL;
    if (dm_connect(g, &nc) == NATS_OK)
        rc = publish_tick_rows(nc, g, &a, &sym, &cs, total);
    dm_disconnect(nc);
    candle_set_free(&cs);
    return rc;
}

/* ---- publish-events ------------------------------------------------------ */

static int publish_event_rows(natsConnection *nc, const global_opts *g, bool msgpack, bool protobuf,
                              bool quiet, const event_set *es)
{
    pub_config pc = {
        .unit = "events",
        .total_records = es->n,
        .max_pending = PENDING_SINGLE,
        .ack_wait_ms = g->timeout_ms,
        .quiet = quiet,
    };
    publisher *p = pub_create(nc, &pc);
    if (!p)
        return EXIT_FAIL;
    writer w;
    writer_init(&w, msgpack, protobuf);
    char subject[64];
    int rc = EXIT_OK;
    for (size_t i = 0; i < es->n; i++) {
        const event *ev = &es->rows[i];
        char *id = NULL;
        payload_event(writer_start(&w), ev);
        snprintf(subject, sizeof subject, DM_SUBJ_EVENT_FMT, ev->country);
        size_t len;
        const char *data = writer_data(&w, subject, &len);
        if (!data || asprintf(&id, "event:%s", ev->event_id) < 0) {
            fprintf(stderr, "dmctl: cannot encode payload (out of memory or internal error)\n");
            rc = EXIT_FAIL;
            pub_abort(p);
            break;
        }
        bool ok = pub_send(p, subject, id, dm_content_type(w.fmt), data, len, 1);
        free(id);
        if (!ok)
            break;
    }
    int frc = pub_finish(p, es->bad);
    writer_free(&w);
    pub_destroy(p);
    return rc != EXIT_OK ? rc : frc;
}

int cmd_publish_events(global_opts *g, int argc, char **argv)
{
    const char *file = NULL;
    double shift_hours = 0;
    bool msgpack = false, protobuf = false, skip_bad = false, quiet = false;
    const arg_spec specs[] = {
        {"file", ARG_STR, &file},          {"shift-hours", ARG_DBL, &shift_hours},
        {"msgpack", ARG_FLAG, &msgpack},   {"protobuf", ARG_FLAG, &protobuf},
        {"skip-bad", ARG_FLAG, &skip_bad},
        {"quiet", ARG_FLAG, &quiet},
    };
    int npos;
    int r = args_parse(argc, argv, specs, sizeof specs / sizeof specs[0], g, NULL, 0, &npos);
    if (r != ARGS_OK)
        return help_or_error(r, argv[0]);
    if (!file)
        return bad_usage(argv[0], "--file is required");
    load_opts lo = {.skip_bad = skip_bad, .quiet = quiet};
    if (!shift_to_ms(argv[0], shift_hours, &lo.shift_ms))
        return EXIT_USAGE;
    event_set es;
    if (csv_load_events(file, &lo, &es) != 0)
        return EXIT_FAIL;
    natsConnection *nc = NULL;
    int rc = EXIT_FAIL;
    if (dm_connect(g, &nc) == NATS_OK)
        rc = publish_event_rows(nc, g, msgpack, protobuf, quiet, &es);
    dm_disconnect(nc);
    event_set_free(&es);
    return rc;
}
