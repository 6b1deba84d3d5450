/* Ingest (worker/pipeline/ingest) against an in-memory backend: every message gets the
 * verdict its content and the backend's answer call for, and nothing good is lost because
 * of a bad neighbour. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/enc.h"
#include "codec/models.h"
#include "pipeline/ingest.h"

#define T0 1578528000000LL /* 2020-01-09 00:00 UTC */
#define MINUTE_MS 60000LL
#define HOUR_MS 3600000LL

/* ---- the fake backend -------------------------------------------------------------- */

#define FAKE_MAX_CALLS 64

typedef struct {
    dm_backend base; /* first: the ingest sees a dm_backend* */
    /* behaviour */
    dm_bstatus status; /* returned by every call when not DM_BS_OK */
    int64_t poison_ts; /* a call holding a row with this timestamp is refused (0: none) */
    int transient_from_call; /* from this call on (1-based) every call fails transiently */
    int transient_first_calls; /* the first N calls fail transiently */
    /* record */
    int calls;
    size_t call_rows[FAKE_MAX_CALLS];
    dm_cache_opts last_opts; /* a copy: the ingest passes its own, with the rows' sequences */
    uint64_t last_seqs[8];
    dm_tick ticks[64];
    size_t n_ticks;
    dm_candle *candles; /* committed rows, in commit order */
    size_t n_candles, cap_candles;
    dm_event events[64];
    size_t n_events;
} fake;

static dm_bstatus fake_begin(fake *f, size_t n, dm_err *err)
{
    if (f->calls < FAKE_MAX_CALLS)
        f->call_rows[f->calls] = n;
    f->calls++;
    if (f->status == DM_BS_TRANSIENT || f->calls <= f->transient_first_calls ||
        (f->transient_from_call && f->calls >= f->transient_from_call)) {
        return dm_bfail(err, DM_BS_TRANSIENT, "", "fake: connection refused");
    }
    if (f->status == DM_BS_PERMANENT)
        return dm_bfail(err, DM_BS_PERMANENT, "", "fake: batch refused");
    return DM_BS_OK;
}

/* Like timescale: a data refusal is DM_BS_PERMANENT, its error filled by dm_bfail. */
static int poisoned_line;
static dm_bstatus poisoned(int64_t ts, dm_err *err)
{
    poisoned_line = __LINE__ + 1;
    return dm_bfail(err, DM_BS_PERMANENT, "", "fake: value too long for row at %lld", (long long)ts);
}

static dm_bstatus fake_write_ticks(dm_backend *b, const dm_tick *t, size_t n,
                                   const dm_cache_opts *o, dm_err *err)
{
    fake *f = (fake *)b;
    f->last_opts = *o;
    for (size_t k = 0; o->seqs && k < n && k < 8; k++)
        f->last_seqs[k] = o->seqs[k];
    dm_bstatus st = fake_begin(f, n, err);
    if (st != DM_BS_OK)
        return st;
    for (size_t i = 0; i < n; i++)
        if (f->poison_ts && t[i].ts == f->poison_ts)
            return poisoned(t[i].ts, err);
    assert_true(f->n_ticks + n <= 64);
    memcpy(f->ticks + f->n_ticks, t, n * sizeof *t);
    f->n_ticks += n;
    return DM_BS_OK;
}

static dm_bstatus fake_write_candles(dm_backend *b, const dm_candle *c, size_t n,
                                     const dm_cache_opts *o, dm_err *err)
{
    fake *f = (fake *)b;
    f->last_opts = *o;
    for (size_t k = 0; o->seqs && k < n && k < 8; k++)
        f->last_seqs[k] = o->seqs[k];
    dm_bstatus st = fake_begin(f, n, err);
    if (st != DM_BS_OK)
        return st;
    for (size_t i = 0; i < n; i++)
        if (f->poison_ts && c[i].ts == f->poison_ts)
            return poisoned(c[i].ts, err);
    if (f->n_candles + n > f->cap_candles) {
        f->cap_candles = (f->n_candles + n) * 2;
        f->candles = realloc(f->candles, f->cap_candles * sizeof *c);
        assert_non_null(f->candles);
    }
    memcpy(f->candles + f->n_candles, c, n * sizeof *c);
    f->n_candles += n;
    return DM_BS_OK;
}

static dm_bstatus fake_write_events(dm_backend *b, const dm_event *e, size_t n, dm_err *err)
{
    fake *f = (fake *)b;
    dm_bstatus st = fake_begin(f, n, err);
    if (st != DM_BS_OK)
        return st;
    for (size_t i = 0; i < n; i++)
        if (f->poison_ts && e[i].ts == f->poison_ts)
            return poisoned(e[i].ts, err);
    assert_true(f->n_events + n <= 64);
    memcpy(f->events + f->n_events, e, n * sizeof *e);
    f->n_events += n;
    return DM_BS_OK;
}

static void fake_destroy(dm_backend *b) { (void)b; }

static const dm_backend_ops FAKE_OPS = {
    .write_ticks = fake_write_ticks,
    .write_candles = fake_write_candles,
    .write_events = fake_write_events,
    .destroy = fake_destroy,
};

typedef struct {
    fake f;
    dm_ingest *ing;
    dm_cache_opts opts;
    dm_kind kind;
} fixture;

static fixture *fixture_new(dm_kind kind)
{
    fixture *x = calloc(1, sizeof *x);
    x->f.base.ops = &FAKE_OPS;
    x->f.base.id = DM_BK_TIMESCALE;
    x->opts = (dm_cache_opts){.ttl_s = 3600, .depth = 1000};
    x->kind = kind;
    x->ing = dm_ingest_create(kind, &x->f.base);
    assert_non_null(x->ing);
    return x;
}

static void fixture_free(fixture *x)
{
    dm_ingest_destroy(x->ing);
    free(x->f.candles);
    free(x);
}

/* ---- messages ---------------------------------------------------------------------- */

static dm_ingest_msg msg(const char *subject, char *data)
{
    dm_ingest_msg m;
    memset(&m, 0, sizeof m);
    m.subject = subject;
    m.data = data;
    m.len = strlen(data);
    return m;
}

static void free_msgs(dm_ingest_msg *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free((char *)m[i].data);
}

static char *tick_json(const char *symbol, int64_t ts, double bid, double ask)
{
    char *s = malloc(256);
    snprintf(s, 256,
             "{\"symbol\":\"%s\",\"timestamp\":%lld,\"bid\":%.5f,\"ask\":%.5f,\"spread\":%.5f,"
             "\"source\":\"twelve-data\"}",
             symbol, (long long)ts, bid, ask, ask - bid);
    return s;
}

static void candle_into(dm_buf *b, const char *symbol, const char *tf, int64_t ts, double o,
                        double h, double l, double c)
{
    dm_buf_printf(b,
                  "{\"symbol\":\"%s\",\"timeframe\":\"%s\",\"timestamp\":%lld,\"open\":%.5f,"
                  "\"high\":%.5f,\"low\":%.5f,\"close\":%.5f,\"volume\":1200,"
                  "\"source\":\"oanda\"}",
                  symbol, tf, (long long)ts, o, h, l, c);
}

static char *candle_json(const char *symbol, const char *tf, int64_t ts)
{
    dm_buf b;
    dm_buf_init(&b);
    candle_into(&b, symbol, tf, ts, 1.1105, 1.1121, 1.1098, 1.1112);
    return b.data; /* the caller frees */
}

/* A market.candles payload of n good EUR/USD candles at `tf` spacing from `start`; the
 * callback may spoil item i (returns true when it wrote the item itself). */
typedef bool (*spoil_fn)(dm_buf *b, int i, int64_t ts);

static char *bulk_json(int n, const char *tf, int64_t step, spoil_fn spoil)
{
    dm_buf b;
    dm_buf_init(&b);
    dm_buf_puts(&b, "{\"candles\":[");
    for (int i = 0; i < n; i++) {
        if (i)
            dm_buf_puts(&b, ",");
        int64_t ts = T0 + step * i;
        if (spoil == NULL || !spoil(&b, i, ts))
            candle_into(&b, "EUR/USD", tf, ts, 1.1105, 1.1121, 1.1098, 1.1112);
    }
    dm_buf_puts(&b, "]}");
    assert_false(b.oom);
    return b.data;
}

#define assert_verdict(m, v)                                                                \
    do {                                                                                    \
        if ((m).verdict != (v))                                                             \
            fail_msg("%s: verdict %d, want %d (%s: %s)", (m).subject, (int)(m).verdict,     \
                     (int)(v), dm_code_name((m).err.code), (m).err.message);                \
    } while (0)

/* ---- ticks ----------------------------------------------------------------------- */

static void acks_good_ticks_and_dead_letters_the_bad_one(void **state)
{
    (void)state;
    fixture *x = fixture_new(DM_KIND_TICK);
    dm_ingest_msg m[4] = {
        msg("market.tick.EURUSD", tick_json("EUR/USD", T0 + 1000, 1.10321, 1.10335)),
        msg("market.tick.EURUSD", tick_json("EUR/USD", T0 + 2000, 1.10322, 1.10336)),
        msg("market.tick.EURUSD", tick_json("EUR/USD", T0 + 3000, 1.10340, 1.10330)),
        msg("market.tick.USDJPY", tick_json("USD/JPY", T0 + 4000, 109.512, 109.515)),
    };
    for (int i = 0; i < 4; i++)
        m[i].seq = 100 + (uint64_t)i;
    dm_ingest_batch(x->ing, m, 4, &x->opts);
    assert_verdict(m[0], DM_V_ACK);
    assert_verdict(m[1], DM_V_ACK);
    assert_verdict(m[2], DM_V_DEAD);
    assert_verdict(m[3], DM_V_ACK);
    assert_int_equal(m[0].err.code, DM_OK);
    assert_int_equal(m[2].err.code, DM_E_INVALID_FIELD);
    assert_string_equal(m[2].err.field, "ask");
    assert_non_null(strstr(m[2].err.message, "1.1033 is below tick.bid 1.1034"));
    /* one write holding the three good ticks, in order */
    assert_int_equal(x->f.calls, 1);
    assert_int_equal(x->f.call_rows[0], 3);
    assert_int_equal(x->f.last_opts.ttl_s, x->opts.ttl_s);
    assert_int_equal(x->f.last_opts.depth, x->opts.depth);
    assert_non_null(x->f.last_opts.seqs); /* each row carries its message's stream sequence */
    assert_int_equal(x->f.last_seqs[0], 100);
    assert_int_equal(x->f.last_seqs[2], 103);
    assert_int_equal(x->f.n_ticks, 3);
    assert_int_equal(x->f.ticks[0].ts, T0 + 1000);
    assert_int_equal(x->f.ticks[1].ts, T0 + 2000);
    assert_int_equal(x->f.ticks[2].ts, T0 + 4000);
    assert_string_equal(x->f.ticks[2].symbol, "USD/JPY");
    free_msgs(m, 4);
    fixture_free(x);
}

/* Two tick ingests of one worker share a ring: the second takes the first's ticks by
 * (stream sequence, stored time) and parses nothing, which a payload it could not parse
 * shows. A message stored at another time is not the same message. */
static void second_tick_consumer_takes_what_the_first_decoded(void **state)
{
    (void)state;
    dm_tick_share *share = dm_tick_share_create(64);
    assert_non_null(share);
    fixture *a = fixture_new(DM_KIND_TICK), *b = fixture_new(DM_KIND_TICK);
    dm_ingest_share_ticks(a->ing, share);
    dm_ingest_share_ticks(b->ing, share);
    dm_ingest_msg ma[3] = {
        msg("market.tick.EURUSD", tick_json("EUR/USD", T0 + 1000, 1.10321, 1.10335)),
        msg("market.tick.EURUSD", tick_json("EUR/USD", T0 + 2000, 1.10340, 1.10330)), /* bad */
        msg("market.tick.USDJPY", tick_json("USD/JPY", T0 + 3000, 109.512, 109.515)),
    };
    for (int i = 0; i < 3; i++) {
        ma[i].seq = 500 + (uint64_t)i;
        ma[i].stored_ns = 1733200000000000000ULL + (uint64_t)i;
    }
    dm_ingest_batch(a->ing, ma, 3, &a->opts);
    assert_verdict(ma[0], DM_V_ACK);
    assert_verdict(ma[1], DM_V_DEAD);
    assert_verdict(ma[2], DM_V_ACK);

    dm_ingest_msg mb[4];
    for (int i = 0; i < 3; i++) {
        mb[i] = msg(ma[i].subject, strdup("not json"));
        mb[i].seq = ma[i].seq;
        mb[i].stored_ns = ma[i].stored_ns;
    }
    mb[3] = msg("market.tick.USDJPY", strdup("not json either"));
    mb[3].seq = ma[2].seq;
    mb[3].stored_ns = ma[2].stored_ns + 1; /* same sequence, another stream's message */
    dm_ingest_batch(b->ing, mb, 4, &b->opts);
    assert_verdict(mb[0], DM_V_ACK);
    assert_verdict(mb[1], DM_V_DEAD); /* only valid ticks are shared: parsed here, refused */
    assert_int_equal(mb[1].err.code, DM_E_INVALID_JSON);
    assert_verdict(mb[2], DM_V_ACK);
    assert_verdict(mb[3], DM_V_DEAD);
    assert_int_equal(b->f.n_ticks, 2);
    assert_memory_equal(&b->f.ticks[0], &a->f.ticks[0], sizeof(dm_tick));
    assert_memory_equal(&b->f.ticks[1], &a->f.ticks[1], sizeof(dm_tick));
    assert_int_equal(b->f.last_seqs[1], 502);

    free_msgs(ma, 3);
    free_msgs(mb, 4);
    fixture_free(a);
    fixture_free(b);
    dm_tick_share_destroy(share);
}

/* Without a stored time (a delivery whose ack subject could not be read) nothing is
 * shared either way, and the content type is asked of the message only when parsing. */
static const char *json_header(const void *src, const char *name)
{
    (*(int *)src)++;
    return strcmp(name, "Content-Type") == 0 ? "application/json" : NULL;
}

static void unkeyed_ticks_are_parsed_and_the_header_asked_once_each(void **state)
{
    (void)state;
    dm_tick_share *share = dm_tick_share_create(64);
    fixture *x = fixture_new(DM_KIND_TICK);
    dm_ingest_share_ticks(x->ing, share);
    int asked = 0;
    for (int round = 0; round < 2; round++) {
        dm_ingest_msg m = msg("market.tick.EURUSD", tick_json("EUR/USD", T0 + 1000, 1.10321, 1.10335));
        m.seq = 700; /* stored_ns unknown */
        m.header = json_header;
        m.src = &asked;
        dm_ingest_batch(x->ing, &m, 1, &x->opts);
        assert_verdict(m, DM_V_ACK);
        free_msgs(&m, 1);
    }
    assert_int_equal(asked, 2);
    assert_int_equal(x->f.n_ticks, 2);
    fixture_free(x);
    dm_tick_share_destroy(share);
}

static void dead_letters_tick_whose_symbol_disagrees_with_subject(void **state)
{
    (void)state;
    fixture *x = fixture_new(DM_KIND_TICK);
    dm_ingest_msg m[3] = {
        msg("market.tick.GBPUSD", tick_json("EUR/USD", T0, 1.10321, 1.10335)),
        msg("market.tick.EURUSD", tick_json("EURUSD", T0, 1.10321, 1.10335)), /* token form */
        msg("market.tick.EUR", tick_json("EUR/USD", T0, 1.10321, 1.10335)),
    };
    dm_ingest_batch(x->ing, m, 3, &x->opts);
    assert_verdict(m[0], DM_V_DEAD);
    assert_int_equal(m[0].err.code, DM_E_INVALID_FIELD);
    assert_string_equal(m[0].err.field, "symbol");
    assert_non_null(strstr(m[0].err.message, "EUR/USD"));
    assert_non_null(strstr(m[0].err.message, "GBPUSD"));
    assert_verdict(m[1], DM_V_ACK);
    assert_verdict(m[2], DM_V_DEAD);
    assert_string_equal(m[2].err.field, "symbol");
    assert_int_equal(x->f.n_ticks, 1);
    assert_string_equal(x->f.ticks[0].symbol, "EUR/USD");
    free_msgs(m, 3);
    fixture_free(x);
}

static void dead_letters_messages_on_malformed_subjects(void **state)
{
    (void)state;
    fixture *x = fixture_new(DM_KIND_TICK);
    dm_ingest_msg m[4] = {
        msg("market.tick", tick_json("EUR/USD", T0, 1.10321, 1.10335)),
        msg("market.tick.", tick_json("EUR/USD", T0, 1.10321, 1.10335)),
        msg("market.tick.EURUSD.1h", tick_json("EUR/USD", T0, 1.10321, 1.10335)),
        msg("market.tick.ABCDEFGHIJKLMNOPQRSTUVWXYZ", tick_json("EUR/USD", T0, 1.1, 1.2)),
    };
    dm_ingest_batch(x->ing, m, 4, &x->opts);
    for (int i = 0; i < 4; i++) {
        assert_verdict(m[i], DM_V_DEAD);
        assert_int_equal(m[i].err.code, DM_E_INVALID_FIELD);
        assert_string_equal(m[i].err.field, "subject");
        assert_non_null(strstr(m[i].err.message, "market.tick.{SYMBOL}"));
    }
    assert_int_equal(x->f.calls, 0);
    free_msgs(m, 4);
    fixture_free(x);
}

static void dead_letters_unparseable_payloads_with_their_code(void **state)
{
    (void)state;
    fixture *x = fixture_new(DM_KIND_TICK);
    dm_ingest_msg m[3] = {
        msg("market.tick.EURUSD", strdup("{\"symbol\":\"EUR/USD\",")),
        msg("market.tick.EURUSD", strdup("{\"symbol\":\"EUR/USD\"}")),
        msg("market.tick.EURUSD", strdup("{\"symbol\":\"EUR/USD\"}")),
    };
    m[2].content_type = "application/msgpack";
    dm_ingest_batch(x->ing, m, 3, &x->opts);
    assert_verdict(m[0], DM_V_DEAD);
    assert_int_equal(m[0].err.code, DM_E_INVALID_JSON);
    assert_verdict(m[1], DM_V_DEAD);
    assert_int_equal(m[1].err.code, DM_E_MISSING_FIELD);
    assert_string_equal(m[1].err.field, "timestamp");
    assert_verdict(m[2], DM_V_DEAD);
    assert_int_equal(m[2].err.code, DM_E_INVALID_MSGPACK);
    assert_int_equal(x->f.calls, 0); /* nothing to write: the backend is not called */
    free_msgs(m, 3);
    fixture_free(x);
}

static void accepts_msgpack_ticks_detected_without_content_type(void **state)
{
    (void)state;
    fixture *x = fixture_new(DM_KIND_TICK);
    dm_buf b;
    dm_buf_init(&b);
    dm_enc e;
    dm_enc_init(&e, DM_ENC_MSGPACK, &b);
    dm_tick t;
    memset(&t, 0, sizeof t);
    strcpy(t.symbol, "USD/JPY");
    t.ts = T0 + 5;
    t.bid = 109.512;
    t.ask = 109.515;
    t.spread = 0.003;
    strcpy(t.source, "oanda");
    dm_tick_encode(&e, &t);
    dm_ingest_msg m = {.subject = "market.tick.USDJPY", .data = b.data, .len = b.len};
    dm_ingest_batch(x->ing, &m, 1, &x->opts);
    assert_verdict(m, DM_V_ACK);
    assert_int_equal(x->f.n_ticks, 1);
    assert_memory_equal(&x->f.ticks[0], &t, sizeof t);
    dm_buf_free(&b);
    fixture_free(x);
}

/* ---- single candles and events ------------------------------------------------------ */

static void dead_letters_candle_whose_timeframe_disagrees_with_subject(void **state)
{
    (void)state;
    fixture *x = fixture_new(DM_KIND_CANDLE);
    dm_ingest_msg m[3] = {
        msg("market.candle.EURUSD.1h", candle_json("EUR/USD", "1h", T0 + HOUR_MS)),
        msg("market.candle.EURUSD.4h", candle_json("EUR/USD", "1h", T0 + HOUR_MS)),
        msg("market.candle.EURUSD", candle_json("EUR/USD", "1h", T0 + HOUR_MS)),
    };
    dm_ingest_batch(x->ing, m, 3, &x->opts);
    assert_verdict(m[0], DM_V_ACK);
    assert_verdict(m[1], DM_V_DEAD);
    assert_string_equal(m[1].err.field, "timeframe");
    assert_non_null(strstr(m[1].err.message, "1h"));
    assert_non_null(strstr(m[1].err.message, "4h"));
    assert_verdict(m[2], DM_V_DEAD);
    assert_string_equal(m[2].err.field, "subject");
    assert_int_equal(x->f.n_candles, 1);
    assert_int_equal(x->f.candles[0].tf, DM_TF_1H);
    free_msgs(m, 3);
    fixture_free(x);
}

static void dead_letters_event_whose_country_disagrees_with_subject(void **state)
{
    (void)state;
    fixture *x = fixture_new(DM_KIND_EVENT);
    const char *ev = "{\"event_id\":\"us-nfp-2020-01\",\"timestamp\":1578663000000,"
                     "\"country\":\"US\",\"event_name\":\"Non-Farm Payrolls\",\"actual\":145,"
                     "\"impact\":\"high\",\"currency_impact\":[\"USD\"]}";
    dm_ingest_msg m[2] = {msg("market.event.US", strdup(ev)), msg("market.event.GB", strdup(ev))};
    dm_ingest_batch(x->ing, m, 2, &x->opts);
    assert_verdict(m[0], DM_V_ACK);
    assert_verdict(m[1], DM_V_DEAD);
    assert_string_equal(m[1].err.field, "country");
    assert_non_null(strstr(m[1].err.message, "US"));
    assert_non_null(strstr(m[1].err.message, "GB"));
    assert_int_equal(x->f.n_events, 1);
    assert_string_equal(x->f.events[0].event_name, "Non-Farm Payrolls");
    free_msgs(m, 2);
    fixture_free(x);
}

/* ---- bulk candles ------------------------------------------------------------------- */

static bool spoil_2_5_8(dm_buf *b, int i, int64_t ts)
{
    if (i == 2) /* high below low */
        candle_into(b, "EUR/USD", "1h", ts, 1.1105, 1.1090, 1.1098, 1.1095);
    else if (i == 5) /* half past the hour */
        candle_into(b, "EUR/USD", "1h", ts + 30 * MINUTE_MS, 1.1105, 1.1121, 1.1098, 1.1112);
    else if (i == 8) /* a 4h candle in a 1h bulk */
        candle_into(b, "EUR/USD", "4h", ts, 1.1105, 1.1121, 1.1098, 1.1112);
    else
        return false;
    return true;
}

static void bulk_acks_message_and_reports_each_rejected_candle(void **state)
{
    (void)state;
    fixture *x = fixture_new(DM_KIND_CANDLES);
    dm_ingest_msg m = msg("market.candles.EURUSD.1h", bulk_json(10, "1h", HOUR_MS, spoil_2_5_8));
    dm_ingest_batch(x->ing, &m, 1, &x->opts);
    assert_verdict(m, DM_V_ACK);
    assert_int_equal(m.err.code, DM_OK);
    assert_int_equal(x->f.calls, 1);
    assert_int_equal(x->f.n_candles, 7);
    const int64_t good[] = {0, 1, 3, 4, 6, 7, 9};
    for (int i = 0; i < 7; i++)
        assert_int_equal(x->f.candles[i].ts, T0 + good[i] * HOUR_MS);

    assert_int_equal(m.n_rejects, 3);
    assert_non_null(m.rejects);
    static const struct {
        int index;
        const char *field, *prefix, *needle;
    } want[] = {
        {2, "high", "candles[2]: ", "candle.high 1.109 is below candle.low 1.1098"},
        {5, "timestamp", "candles[5]: ", "not aligned to the 1h timeframe"},
        {8, "timeframe", "candles[8]: ", "4h"},
    };
    for (int r = 0; r < 3; r++) {
        const dm_reject *rj = &m.rejects[r];
        assert_int_equal(rj->index, want[r].index);
        assert_int_equal(rj->err.code, DM_E_INVALID_FIELD);
        assert_string_equal(rj->err.field, want[r].field);
        if (strncmp(rj->err.message, want[r].prefix, strlen(want[r].prefix)) != 0)
            fail_msg("reject message '%s' lacks prefix '%s'", rj->err.message, want[r].prefix);
        if (strstr(rj->err.message, want[r].needle) == NULL)
            fail_msg("reject message '%s' lacks '%s'", rj->err.message, want[r].needle);
        /* the refused item travels as JSON, as it was sent */
        assert_non_null(rj->payload);
        cJSON *item = cJSON_Parse(rj->payload);
        assert_non_null(item);
        assert_string_equal(cJSON_GetObjectItem(item, "symbol")->valuestring, "EUR/USD");
        cJSON_Delete(item);
    }
    cJSON *item = cJSON_Parse(m.rejects[1].payload);
    assert_true(cJSON_GetObjectItem(item, "timestamp")->valuedouble ==
                (double)(T0 + 5 * HOUR_MS + 30 * MINUTE_MS));
    cJSON_Delete(item);
    free_msgs(&m, 1);
    fixture_free(x);
}

static bool spoil_1_not_object(dm_buf *b, int i, int64_t ts)
{
    (void)ts;
    if (i != 1)
        return false;
    dm_buf_puts(b, "[1.1105]");
    return true;
}

static void bulk_reports_items_that_are_not_objects(void **state)
{
    (void)state;
    fixture *x = fixture_new(DM_KIND_CANDLES);
    dm_ingest_msg m = msg("market.candles.EURUSD.1h",
                          bulk_json(3, "1h", HOUR_MS, spoil_1_not_object));
    dm_ingest_batch(x->ing, &m, 1, &x->opts);
    assert_verdict(m, DM_V_ACK);
    assert_int_equal(x->f.n_candles, 2);
    assert_int_equal(m.n_rejects, 1);
    assert_int_equal(m.rejects[0].index, 1);
    assert_string_equal(m.rejects[0].err.field, "candles");
    assert_non_null(strstr(m.rejects[0].err.message, "must be an object"));
    assert_string_equal(m.rejects[0].payload, "[1.1105]");
    free_msgs(&m, 1);
    fixture_free(x);
}

static bool spoil_all_half_past(dm_buf *b, int i, int64_t ts)
{
    (void)i;
    candle_into(b, "EUR/USD", "1h", ts + 30 * MINUTE_MS, 1.1105, 1.1121, 1.1098, 1.1112);
    return true;
}

static void bulk_of_only_bad_candles_is_acked_without_a_write(void **state)
{
    (void)state;
    fixture *x = fixture_new(DM_KIND_CANDLES);
    dm_ingest_msg m = msg("market.candles.EURUSD.1h",
                          bulk_json(4, "1h", HOUR_MS, spoil_all_half_past));
    dm_ingest_batch(x->ing, &m, 1, &x->opts);
    assert_verdict(m, DM_V_ACK); /* the message itself is fine: its items are dead-lettered */
    assert_int_equal(m.n_rejects, 4);
    assert_int_equal(x->f.calls, 0);
    free_msgs(&m, 1);
    fixture_free(x);
}

static void bulk_over_10000_candles_is_dead_as_too_large(void **state)
{
    (void)state;
    fixture *x = fixture_new(DM_KIND_CANDLES);
    dm_ingest_msg m = msg("market.candles.EURUSD.1m",
                          bulk_json(DM_BULK_MAX + 1, "1m", MINUTE_MS, NULL));
    dm_ingest_batch(x->ing, &m, 1, &x->opts);
    assert_verdict(m, DM_V_DEAD);
    assert_int_equal(m.err.code, DM_E_TOO_LARGE);
    assert_string_equal(m.err.field, "candles");
    assert_non_null(strstr(m.err.message, "10001"));
    assert_non_null(strstr(m.err.message, "10000"));
    assert_int_equal(m.n_rejects, 0);
    assert_int_equal(x->f.calls, 0);
    free_msgs(&m, 1);
    fixture_free(x);
}

static void bulk_of_exactly_10000_candles_is_written_in_one_call(void **state)
{
    (void)state;
    fixture *x = fixture_new(DM_KIND_CANDLES);
    dm_ingest_msg m = msg("market.candles.EURUSD.1m", bulk_json(DM_BULK_MAX, "1m", MINUTE_MS, NULL));
    dm_ingest_batch(x->ing, &m, 1, &x->opts);
    assert_verdict(m, DM_V_ACK);
    assert_int_equal(x->f.calls, 1);
    assert_int_equal(x->f.n_candles, DM_BULK_MAX);
    assert_int_equal(x->f.candles[DM_BULK_MAX - 1].ts, T0 + (DM_BULK_MAX - 1) * MINUTE_MS);
    free_msgs(&m, 1);
    fixture_free(x);
}

static void bulk_without_a_candles_array_is_dead(void **state)
{
    (void)state;
    fixture *x = fixture_new(DM_KIND_CANDLES);
    dm_ingest_msg m[3] = {
        msg("market.candles.EURUSD.1h", strdup("{\"data\":[]}")),
        msg("market.candles.EURUSD.1h", strdup("{\"candles\":[]}")),
        msg("market.candles.EURUSD.1h", strdup("{\"candles\":{}}")),
    };
    dm_ingest_batch(x->ing, m, 3, &x->opts);
    assert_verdict(m[0], DM_V_DEAD);
    assert_int_equal(m[0].err.code, DM_E_MISSING_FIELD);
    assert_string_equal(m[0].err.field, "candles");
    assert_verdict(m[1], DM_V_DEAD);
    assert_int_equal(m[1].err.code, DM_E_INVALID_FIELD);
    assert_non_null(strstr(m[1].err.message, "empty"));
    assert_verdict(m[2], DM_V_DEAD);
    assert_non_null(strstr(m[2].err.message, "must be an array"));
    free_msgs(m, 3);
    fixture_free(x);
}

static bool spoil_odd(dm_buf *b, int i, int64_t ts)
{
    if (i % 2 == 0)
        return false;
    candle_into(b, "EUR/USD", "1h", ts + 1, 1.1105, 1.1121, 1.1098, 1.1112);
    return true;
}

static bool spoil_first_18(dm_buf *b, int i, int64_t ts)
{
    if (i >= 18)
        return false;
    candle_into(b, "EUR/USD", "1h", ts, 1.1105, 1.1121, 1.1098, 1.1130); /* close > high */
    return true;
}

static void rejects_of_several_bulk_messages_stay_with_their_message(void **state)
{
    (void)state;
    fixture *x = fixture_new(DM_KIND_CANDLES);
    dm_ingest_msg m[3] = {
        msg("market.candles.EURUSD.1h", bulk_json(4, "1h", HOUR_MS, spoil_odd)),
        msg("market.candles.EURUSD.1h", bulk_json(3, "1h", HOUR_MS, NULL)),
        /* 18 more rejects: the reject list outgrows its first allocation mid-batch */
        msg("market.candles.EURUSD.1h", bulk_json(20, "1h", HOUR_MS, spoil_first_18)),
    };
    dm_ingest_batch(x->ing, m, 3, &x->opts);
    for (int i = 0; i < 3; i++)
        assert_verdict(m[i], DM_V_ACK);
    assert_int_equal(m[0].n_rejects, 2);
    assert_int_equal(m[0].rejects[0].index, 1);
    assert_int_equal(m[0].rejects[1].index, 3);
    assert_string_equal(m[0].rejects[1].err.field, "timestamp");
    assert_int_equal(m[1].n_rejects, 0);
    assert_null(m[1].rejects);
    assert_int_equal(m[2].n_rejects, 18);
    for (int r = 0; r < 18; r++) {
        assert_int_equal(m[2].rejects[r].index, r);
        assert_string_equal(m[2].rejects[r].err.field, "high");
        cJSON *item = cJSON_Parse(m[2].rejects[r].payload);
        assert_non_null(item);
        assert_true(cJSON_GetObjectItem(item, "timestamp")->valuedouble ==
                    (double)(T0 + r * HOUR_MS));
        cJSON_Delete(item);
    }
    assert_int_equal(x->f.calls, 1);
    assert_int_equal(x->f.call_rows[0], 2 + 3 + 2);

    /* the next batch starts clean */
    dm_ingest_msg next = msg("market.candles.EURUSD.1h", bulk_json(2, "1h", HOUR_MS, NULL));
    dm_ingest_batch(x->ing, &next, 1, &x->opts);
    assert_verdict(next, DM_V_ACK);
    assert_int_equal(next.n_rejects, 0);
    assert_null(next.rejects);
    free_msgs(m, 3);
    free_msgs(&next, 1);
    fixture_free(x);
}

/* ---- backend failures --------------------------------------------------------------- */

static void transient_failure_retries_every_message_with_rows(void **state)
{
    (void)state;
    fixture *x = fixture_new(DM_KIND_TICK);
    x->f.status = DM_BS_TRANSIENT;
    dm_ingest_msg m[3] = {
        msg("market.tick.EURUSD", tick_json("EUR/USD", T0 + 1000, 1.10321, 1.10335)),
        msg("market.tick.EURUSD", tick_json("EUR/USD", T0 + 2000, 0, 1.10336)),
        msg("market.tick.EURUSD", tick_json("EUR/USD", T0 + 3000, 1.10322, 1.10336)),
    };
    dm_ingest_batch(x->ing, m, 3, &x->opts);
    assert_verdict(m[0], DM_V_RETRY);
    assert_verdict(m[1], DM_V_DEAD); /* still bad, whatever the database says */
    assert_verdict(m[2], DM_V_RETRY);
    assert_string_equal(m[1].err.field, "bid");
    assert_non_null(strstr(m[0].err.message, "connection refused"));
    assert_int_equal(x->f.calls, 1); /* no message-by-message retry for an outage */
    assert_int_equal(x->f.n_ticks, 0);

    /* the database is back: the redelivered messages go through */
    x->f.status = DM_BS_OK;
    dm_ingest_batch(x->ing, m, 3, &x->opts);
    assert_verdict(m[0], DM_V_ACK);
    assert_verdict(m[2], DM_V_ACK);
    assert_int_equal(m[0].err.code, DM_OK);
    assert_int_equal(x->f.n_ticks, 2);
    free_msgs(m, 3);
    fixture_free(x);
}

static void transient_failure_is_retried_in_place_up_to_the_attempts(void **state)
{
    (void)state;
    fixture *x = fixture_new(DM_KIND_TICK);
    const dm_backoff quick = {1, 2.0, 10};
    dm_ingest_set_retry(x->ing, 3, &quick, 1000, NULL);
    x->f.transient_first_calls = 2; /* a blip: the third attempt commits */
    dm_ingest_msg m[1] = {msg("market.tick.EURUSD", tick_json("EUR/USD", T0 + 1000, 1.10321, 1.10335))};
    dm_ingest_batch(x->ing, m, 1, &x->opts);
    assert_verdict(m[0], DM_V_ACK);
    assert_int_equal(x->f.calls, 3);
    assert_int_equal(x->f.n_ticks, 1);

    x->f.calls = 0;
    x->f.transient_first_calls = 3; /* longer than the attempts: left to redelivery */
    dm_ingest_batch(x->ing, m, 1, &x->opts);
    assert_verdict(m[0], DM_V_RETRY);
    assert_int_equal(x->f.calls, 3);
    free_msgs(m, 1);
    fixture_free(x);
}

/* The waits between in-place attempts stay within the budget (the consumer's AckWait
 * would otherwise deliver the batch again mid-retry), and a stop ends them at once. */
static void in_place_retries_stay_within_the_budget_and_stop_on_request(void **state)
{
    (void)state;
    fixture *x = fixture_new(DM_KIND_TICK);
    x->f.status = DM_BS_TRANSIENT;
    dm_ingest_msg m[1] = {msg("market.tick.EURUSD", tick_json("EUR/USD", T0 + 1000, 1.10321, 1.10335))};
    /* 100 attempts allowed, waits of ~50 ms, a budget of 120 ms: two waits fit, not three */
    const dm_backoff slow = {50, 1.0, 50};
    dm_ingest_set_retry(x->ing, 100, &slow, 120, NULL);
    dm_ingest_batch(x->ing, m, 1, &x->opts);
    assert_verdict(m[0], DM_V_RETRY);
    assert_in_range(x->f.calls, 2, 4);
    /* stopping: the first failure ends it, whatever the budget */
    atomic_bool stop;
    atomic_init(&stop, true);
    x->f.calls = 0;
    dm_ingest_set_retry(x->ing, 100, &slow, 60000, &stop);
    dm_ingest_batch(x->ing, m, 1, &x->opts);
    assert_verdict(m[0], DM_V_RETRY);
    assert_int_equal(x->f.calls, 1);
    free_msgs(m, 1);
    fixture_free(x);
}

static void transient_failure_retries_bulk_with_its_rejects_still_reported(void **state)
{
    (void)state;
    fixture *x = fixture_new(DM_KIND_CANDLES);
    x->f.status = DM_BS_TRANSIENT;
    dm_ingest_msg m = msg("market.candles.EURUSD.1h", bulk_json(10, "1h", HOUR_MS, spoil_2_5_8));
    dm_ingest_batch(x->ing, &m, 1, &x->opts);
    assert_verdict(m, DM_V_RETRY);
    assert_int_equal(m.n_rejects, 3);
    free_msgs(&m, 1);
    fixture_free(x);
}

static void permanent_failure_is_isolated_to_the_offending_message(void **state)
{
    (void)state;
    fixture *x = fixture_new(DM_KIND_TICK);
    x->f.poison_ts = T0 + 3000;
    dm_ingest_msg m[5] = {
        msg("market.tick.EURUSD", tick_json("EUR/USD", T0 + 1000, 1.10321, 1.10335)),
        msg("market.tick.EURUSD", tick_json("EUR/USD", T0 + 2000, 1.10322, 1.10336)),
        msg("market.tick.EURUSD", tick_json("EUR/USD", T0 + 3000, 1.10323, 1.10337)),
        msg("market.tick.EURUSD", tick_json("EUR/USD", T0 + 4000, 1.10324, 1.10338)),
        msg("market.tick.EURUSD", tick_json("EUR/USD", T0 + 5000, 1.10326, 1.10320)),
    };
    dm_ingest_batch(x->ing, m, 5, &x->opts);
    assert_verdict(m[0], DM_V_ACK);
    assert_verdict(m[1], DM_V_ACK);
    assert_verdict(m[2], DM_V_DEAD);
    assert_verdict(m[3], DM_V_ACK);
    assert_verdict(m[4], DM_V_DEAD); /* invalid before it reached the database */
    assert_non_null(strstr(m[2].err.message, "fake: value too long"));
    assert_int_equal(m[2].err.code, DM_E_INVALID_FIELD);
    assert_true(m[2].refused_by_backend);
    assert_string_equal(m[4].err.field, "ask");
    /* the batch of 4, then each of the 4 alone */
    assert_int_equal(x->f.calls, 5);
    assert_int_equal(x->f.call_rows[0], 4);
    for (int i = 1; i < 5; i++)
        assert_int_equal(x->f.call_rows[i], 1);
    assert_int_equal(x->f.n_ticks, 3);
    assert_int_equal(x->f.ticks[0].ts, T0 + 1000);
    assert_int_equal(x->f.ticks[1].ts, T0 + 2000);
    assert_int_equal(x->f.ticks[2].ts, T0 + 4000);
    free_msgs(m, 5);
    fixture_free(x);
}

static void permanent_failure_dead_letters_the_whole_offending_bulk(void **state)
{
    (void)state;
    fixture *x = fixture_new(DM_KIND_CANDLES);
    x->f.poison_ts = T0 + 2 * HOUR_MS; /* item 2 of the first bulk */
    dm_ingest_msg m[2] = {
        msg("market.candles.EURUSD.1h", bulk_json(5, "1h", HOUR_MS, NULL)),
        msg("market.candles.EURUSD.4h", bulk_json(3, "4h", 4 * HOUR_MS * 10, NULL)),
    };
    dm_ingest_batch(x->ing, m, 2, &x->opts);
    assert_verdict(m[0], DM_V_DEAD);
    assert_verdict(m[1], DM_V_ACK);
    assert_int_equal(x->f.n_candles, 3);
    assert_int_equal(x->f.candles[0].tf, DM_TF_4H);
    assert_int_equal(x->f.calls, 3);
    free_msgs(m, 2);
    fixture_free(x);
}

static void permanent_failure_of_a_lone_message_dead_letters_it(void **state)
{
    (void)state;
    fixture *x = fixture_new(DM_KIND_TICK);
    x->f.poison_ts = T0;
    dm_ingest_msg m[2] = {
        msg("market.tick.EURUSD", tick_json("EUR/USD", T0, 1.10321, 1.10335)),
        msg("market.tick.EURUSD", tick_json("EURUSD", T0, 1.10335, 1.10321)),
    };
    dm_ingest_batch(x->ing, m, 2, &x->opts);
    assert_verdict(m[0], DM_V_DEAD);
    assert_verdict(m[1], DM_V_DEAD);
    assert_non_null(strstr(m[0].err.message, "fake: value too long"));
    assert_int_equal(m[0].err.code, DM_E_INVALID_FIELD);
    assert_int_equal(x->f.calls, 1);
    free_msgs(m, 2);
    fixture_free(x);
}

static void permanent_failure_isolates_the_offending_event(void **state)
{
    (void)state;
    fixture *x = fixture_new(DM_KIND_EVENT);
    x->f.poison_ts = 1578663000000LL;
    char ev[2][512];
    for (int i = 0; i < 2; i++)
        snprintf(ev[i], sizeof ev[i],
                 "{\"event_id\":\"us-cpi-2020-01-%d\",\"timestamp\":%lld,\"country\":\"US\","
                 "\"event_name\":\"CPI m/m\",\"impact\":\"medium\"}",
                 i, 1578663000000LL + i * 1000);
    dm_ingest_msg m[2] = {msg("market.event.US", strdup(ev[0])),
                          msg("market.event.US", strdup(ev[1]))};
    dm_ingest_batch(x->ing, m, 2, &x->opts);
    assert_verdict(m[0], DM_V_DEAD);
    assert_verdict(m[1], DM_V_ACK);
    assert_int_equal(x->f.n_events, 1);
    assert_string_equal(x->f.events[0].event_id, "us-cpi-2020-01-1");
    free_msgs(m, 2);
    fixture_free(x);
}

/* The dead-letter and the log name the backend line that refused the data, and the code
 * is the one that goes with the status, passed on unchanged. */
static void refused_message_keeps_the_backend_origin(void **state)
{
    (void)state;
    fixture *x = fixture_new(DM_KIND_TICK);
    x->f.poison_ts = T0;
    dm_ingest_msg m = msg("market.tick.EURUSD", tick_json("EUR/USD", T0, 1.10321, 1.10335));
    dm_ingest_batch(x->ing, &m, 1, &x->opts);
    assert_verdict(m, DM_V_DEAD);
    assert_int_equal(m.err.code, dm_bstatus_code(DM_BS_PERMANENT));
    assert_non_null(m.err.file);
    assert_non_null(strstr(m.err.file, "test_ingest.c"));
    assert_int_equal(m.err.line, poisoned_line);
    free_msgs(&m, 1);
    fixture_free(x);
}

static void transient_failure_keeps_unavailable_and_its_origin(void **state)
{
    (void)state;
    fixture *x = fixture_new(DM_KIND_TICK);
    x->f.status = DM_BS_TRANSIENT;
    dm_ingest_msg m = msg("market.tick.EURUSD", tick_json("EUR/USD", T0, 1.10321, 1.10335));
    dm_ingest_batch(x->ing, &m, 1, &x->opts);
    assert_verdict(m, DM_V_RETRY);
    assert_int_equal(m.err.code, DM_E_UNAVAILABLE);
    assert_false(m.refused_by_backend);
    assert_non_null(strstr(m.err.file, "test_ingest.c"));
    assert_true(m.err.line > 0);
    free_msgs(&m, 1);
    fixture_free(x);
}

static void transient_failure_during_isolation_retries_those_messages(void **state)
{
    (void)state;
    /* the database refuses the batch, then goes away while messages are tried alone */
    fixture *x = fixture_new(DM_KIND_TICK);
    x->f.poison_ts = T0 + 2000;
    x->f.transient_from_call = 3;
    dm_ingest_msg m[3] = {
        msg("market.tick.EURUSD", tick_json("EUR/USD", T0 + 1000, 1.10321, 1.10335)),
        msg("market.tick.EURUSD", tick_json("EUR/USD", T0 + 2000, 1.10322, 1.10336)),
        msg("market.tick.EURUSD", tick_json("EUR/USD", T0 + 3000, 1.10323, 1.10337)),
    };
    dm_ingest_batch(x->ing, m, 3, &x->opts);
    assert_verdict(m[0], DM_V_ACK);
    assert_verdict(m[1], DM_V_RETRY); /* never judged alone: not dead-lettered */
    assert_verdict(m[2], DM_V_RETRY);
    assert_non_null(strstr(m[2].err.message, "connection refused"));
    assert_int_equal(x->f.n_ticks, 1);
    free_msgs(m, 3);
    fixture_free(x);
}

static void batch_without_valid_rows_never_calls_the_backend(void **state)
{
    (void)state;
    fixture *x = fixture_new(DM_KIND_TICK);
    dm_ingest_msg m[2] = {
        msg("market.tick.EURUSD", tick_json("EUR/USD", T0 / 1000, 1.10321, 1.10335)),
        msg("market.tick.EURUSD", tick_json("EUR/USD", T0, -1.1, 1.10335)),
    };
    dm_ingest_batch(x->ing, m, 2, &x->opts);
    assert_verdict(m[0], DM_V_DEAD);
    assert_verdict(m[1], DM_V_DEAD);
    assert_int_equal(x->f.calls, 0);
    dm_ingest_batch(x->ing, m, 0, &x->opts); /* an empty fetch is harmless */
    assert_int_equal(x->f.calls, 0);
    free_msgs(m, 2);
    fixture_free(x);
}

static void kinds_name_their_subjects_operations_and_needs(void **state)
{
    (void)state;
    assert_string_equal(dm_kind_name(DM_KIND_CANDLES), "candles");
    assert_string_equal(dm_kind_filter(DM_KIND_TICK), "market.tick.>");
    assert_string_equal(dm_kind_filter(DM_KIND_CANDLE), "market.candle.>");
    assert_string_equal(dm_kind_filter(DM_KIND_CANDLES), "market.candles.>");
    assert_string_equal(dm_kind_filter(DM_KIND_EVENT), "market.event.>");
    assert_int_equal(dm_kind_op(DM_KIND_CANDLES), DM_OP_SAVE_CANDLES_BULK);
    assert_int_equal(dm_kind_op(DM_KIND_EVENT), DM_OP_SAVE_EVENT);
    static const dm_backend_ops cache_only = {.write_ticks = fake_write_ticks,
                                              .write_candles = fake_write_candles,
                                              .destroy = fake_destroy};
    dm_backend b = {.ops = &cache_only, .id = DM_BK_DRAGONFLY};
    assert_true(dm_kind_supported(DM_KIND_TICK, &b));
    assert_true(dm_kind_supported(DM_KIND_CANDLES, &b));
    assert_false(dm_kind_supported(DM_KIND_EVENT, &b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(acks_good_ticks_and_dead_letters_the_bad_one),
        cmocka_unit_test(second_tick_consumer_takes_what_the_first_decoded),
        cmocka_unit_test(unkeyed_ticks_are_parsed_and_the_header_asked_once_each),
        cmocka_unit_test(dead_letters_tick_whose_symbol_disagrees_with_subject),
        cmocka_unit_test(dead_letters_messages_on_malformed_subjects),
        cmocka_unit_test(dead_letters_unparseable_payloads_with_their_code),
        cmocka_unit_test(accepts_msgpack_ticks_detected_without_content_type),
        cmocka_unit_test(dead_letters_candle_whose_timeframe_disagrees_with_subject),
        cmocka_unit_test(dead_letters_event_whose_country_disagrees_with_subject),
        cmocka_unit_test(bulk_acks_message_and_reports_each_rejected_candle),
        cmocka_unit_test(bulk_reports_items_that_are_not_objects),
        cmocka_unit_test(bulk_of_only_bad_candles_is_acked_without_a_write),
        cmocka_unit_test(bulk_over_10000_candles_is_dead_as_too_large),
        cmocka_unit_test(bulk_of_exactly_10000_candles_is_written_in_one_call),
        cmocka_unit_test(bulk_without_a_candles_array_is_dead),
        cmocka_unit_test(rejects_of_several_bulk_messages_stay_with_their_message),
        cmocka_unit_test(transient_failure_retries_every_message_with_rows),
        cmocka_unit_test(transient_failure_is_retried_in_place_up_to_the_attempts),
        cmocka_unit_test(in_place_retries_stay_within_the_budget_and_stop_on_request),
        cmocka_unit_test(transient_failure_retries_bulk_with_its_rejects_still_reported),
        cmocka_unit_test(permanent_failure_is_isolated_to_the_offending_message),
        cmocka_unit_test(permanent_failure_dead_letters_the_whole_offending_bulk),
        cmocka_unit_test(permanent_failure_of_a_lone_message_dead_letters_it),
        cmocka_unit_test(permanent_failure_isolates_the_offending_event),
        cmocka_unit_test(refused_message_keeps_the_backend_origin),
        cmocka_unit_test(transient_failure_keeps_unavailable_and_its_origin),
        cmocka_unit_test(transient_failure_during_isolation_retries_those_messages),
        cmocka_unit_test(batch_without_valid_rows_never_calls_the_backend),
        cmocka_unit_test(kinds_name_their_subjects_operations_and_needs),
    };
    return cmocka_run_group_tests_name("ingest", tests, NULL, NULL);
}
