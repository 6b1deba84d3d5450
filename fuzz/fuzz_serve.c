/* A dm.v1.* request body through dm_serve_handle: document parsing, request fields and
 * cursors, the source walk and the reply encoder. The only source is an L1 holding the
 * latest EUR/USD tick and 1h candles, so latest reads are answered and every other read
 * runs its request parsing and fails with "no configured source". Every reply must parse
 * back in the request's encoding.
 *
 * Input: byte 0 selects, the rest is the body.
 *   bits 0-2  subject: the seven dm.v1 subjects, then one this service does not serve
 *   bits 3-4  content type: none (detect), JSON, msgpack, none */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cache/l1_backend.h"
#include "codec/doc.h"
#include "pipeline/serve.h"
#include "util/log.h"

#define T0 1578528000000LL /* 2020-01-09 00:00 UTC */
#define HOUR_MS 3600000LL
#define CANDLES 8

static const char *const SUBJECTS[8] = {
    DM_SUBJ_TICK_LATEST, DM_SUBJ_CANDLES_LATEST, DM_SUBJ_CANDLES_HISTORY, DM_SUBJ_EVENTS,
    DM_SUBJ_AGGREGATES,  DM_SUBJ_HEALTH,         DM_SUBJ_METRICS,         "dm.v1.patterns.find"};
static const char *const CONTENT_TYPES[4] = {NULL, DM_CT_JSON, DM_CT_MSGPACK, NULL};

/* Built once: a fresh serve per input would spend the run in setup. Owner: the fuzzer's
 * single thread. */
static dm_serve *serve;

static void prefill(dm_backend *b)
{
    dm_tick t = {.symbol = "EUR/USD", .ts = T0, .bid = 1.11154, .ask = 1.11157, .spread = 0.00003,
                 .source = "m1-derived"}, seen;
    dm_candle k[CANDLES];
    for (int i = 0; i < CANDLES; i++)
        k[i] = (dm_candle){.symbol = "EUR/USD", .tf = DM_TF_1H, .ts = T0 + i * HOUR_MS,
                           .open = 1.1112, .high = 1.1115, .low = 1.1110, .close = 1.1112,
                           .source = "broker-csv"};
    dm_cache_opts o = {.ttl_s = 3600, .depth = 1000};
    dm_candle_vec v = {0};
    dm_err e = {0};
    b->ops->latest_tick(b, t.symbol, &seen, &e); /* a miss allows the fill that follows */
    b->ops->write_ticks(b, &t, 1, &o, &e);
    b->ops->latest_candles(b, "EUR/USD", DM_TF_1H, CANDLES, &v, &e);
    b->ops->write_candles(b, k, CANDLES, &o, &e);
    dm_candle_vec_free(&v);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    dm_log_set_level(DM_LOG_ERROR);
    dm_strategy st;
    dm_strategy_defaults(&st);
    st.routing[DM_OP_GET_LATEST_TICK] = (dm_route){{DM_BK_L1, DM_BK_DRAGONFLY, DM_BK_TIMESCALE}, 3};
    st.routing[DM_OP_GET_CANDLES] = (dm_route){{DM_BK_L1, DM_BK_DRAGONFLY, DM_BK_TIMESCALE}, 3};
    dm_l1_cache *l1 = dm_l1_cache_create(1000, 1 << 24);
    dm_l1_cache_set_ttl(l1, INT32_MAX, INT32_MAX); /* outlives any run */
    dm_serve_config cfg = {.worker_name = "fuzz", .strategies = dm_strategy_holder_create(&st),
                           .l1 = l1};
    cfg.backends[DM_BK_L1] = dm_l1_backend_create(l1);
    prefill(cfg.backends[DM_BK_L1]);
    serve = dm_serve_create(&cfg);
    return serve ? 0 : 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    dm_reply out = {0};
    dm_buf_init(&out.body);
    dm_serve_handle(serve, SUBJECTS[data[0] & 7], (const char *)data + 1, size - 1,
                    CONTENT_TYPES[(data[0] >> 3) & 3], &out);
    cJSON *back = NULL;
    dm_err err = {0};
    if (out.body.oom ||
        dm_doc_parse(out.body.data, out.body.len, out.enc, SIZE_MAX, &back, &err) != DM_OK) {
        fprintf(stderr, "%s reply does not parse back: %s\n", SUBJECTS[data[0] & 7], err.message);
        abort();
    }
    cJSON_Delete(back);
    dm_buf_free(&out.body);
    return 0;
}
