/* A cache update from another worker (dm.cache.v1.update, core NATS: anyone on the bus
 * can publish one) merged into an L1 that already holds the latest EUR/USD tick and the
 * newest 1h candles. The whole input is the msgpack payload. */
#include <stdint.h>
#include <stdlib.h>

#include "cache/l1_backend.h"
#include "pipeline/coherence.h"

#define T0 1578528000000LL /* 2020-01-09 00:00 UTC */
#define HOUR_MS 3600000LL
#define CANDLES 4

/* Fills through the backend's own path: a miss, then the fill it allows. */
static void prefill(dm_l1_cache *c)
{
    dm_backend *b = dm_l1_backend_create(c);
    dm_tick t = {.symbol = "EUR/USD", .ts = T0, .bid = 1.11154, .ask = 1.11157, .spread = 0.00003,
                 .source = "m1-derived"};
    dm_candle k[CANDLES];
    for (int i = 0; i < CANDLES; i++)
        k[i] = (dm_candle){.symbol = "EUR/USD", .tf = DM_TF_1H, .ts = T0 + i * HOUR_MS,
                           .open = 1.1112, .high = 1.1115, .low = 1.1110, .close = 1.1112,
                           .source = "broker-csv"};
    dm_cache_opts o = {.ttl_s = 3600, .depth = 1000};
    dm_tick seen;
    dm_candle_vec v = {0};
    dm_err e = {0};
    b->ops->latest_tick(b, t.symbol, &seen, &e);
    b->ops->write_ticks(b, &t, 1, &o, &e);
    b->ops->latest_candles(b, "EUR/USD", DM_TF_1H, CANDLES, &v, &e);
    b->ops->write_candles(b, k, CANDLES, &o, &e);
    dm_candle_vec_free(&v);
    dm_backend_destroy(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dm_l1_cache *c = dm_l1_cache_create(64, 1 << 20);
    if (c == NULL)
        return 0;
    dm_l1_cache_set_ttl(c, 3600000, 3600000);
    prefill(c);
    dm_err err = {0};
    dm_coherence_apply(c, NULL, (const char *)data, size, &err);
    dm_l1_cache_destroy(c);
    return 0;
}
