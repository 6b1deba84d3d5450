/* A market.* message body through the ingest path: JSON or msgpack document -> model
 * decoding and validation -> subject agreement -> write, then the cache update a commit
 * publishes. The backend is a fake that accepts everything and checks that every row it
 * is handed is one validation passes.
 *
 * Input: byte 0 selects, the rest is the body.
 *   bits 0-1  kind: tick, candle, candles (bulk), event
 *   bits 2-3  content type: none (detect), JSON, msgpack, an unrelated one (detect)
 *   bit 4     the subject's tail comes from the input, up to the first '\n'
 *   bit 5     the same body twice in one batch */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/enc.h"
#include "pipeline/coherence.h"
#include "pipeline/ingest.h"
#include "util/log.h"

static dm_bstatus accept_ticks(dm_backend *b, const dm_tick *t, size_t n, const dm_cache_opts *o,
                               dm_err *err)
{
    (void)b, (void)o;
    for (size_t i = 0; i < n; i++)
        if (dm_tick_validate(&t[i], dm_now_ms(), err) != DM_OK)
            abort();
    return DM_BS_OK;
}

static dm_bstatus accept_candles(dm_backend *b, const dm_candle *c, size_t n,
                                 const dm_cache_opts *o, dm_err *err)
{
    (void)b, (void)o;
    for (size_t i = 0; i < n; i++)
        if (dm_candle_validate(&c[i], dm_now_ms(), err) != DM_OK)
            abort();
    return DM_BS_OK;
}

static dm_bstatus accept_events(dm_backend *b, const dm_event *e, size_t n, dm_err *err)
{
    (void)b;
    for (size_t i = 0; i < n; i++)
        if (dm_event_validate(&e[i], dm_now_ms(), err) != DM_OK)
            abort();
    return DM_BS_OK;
}

static void keep(dm_backend *b) { (void)b; }

static const dm_backend_ops ACCEPT = {.write_ticks = accept_ticks,
                                      .write_candles = accept_candles,
                                      .write_events = accept_events,
                                      .destroy = keep};

static const char *const SUBJECTS[DM_KIND_COUNT] = {
    "market.tick.EURUSD", "market.candle.EURUSD.1h", "market.candles.EURUSD.1h", "market.event.US"};
static const char *const CONTENT_TYPES[4] = {NULL, "application/json", "application/msgpack",
                                             "text/plain"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    dm_log_set_level(DM_LOG_ERROR);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    dm_kind kind = (dm_kind)(sel & 3);
    char subject[128];
    snprintf(subject, sizeof subject, "%s", SUBJECTS[kind]);
    if (sel & 0x10) {
        const char *nl = memchr(body, '\n', len);
        size_t tail = nl ? (size_t)(nl - body) : len;
        snprintf(subject, sizeof subject, "market.%s.%.*s", dm_kind_name(kind),
                 (int)(tail < 100 ? tail : 100), body);
        body += nl ? tail + 1 : tail;
        len -= nl ? tail + 1 : tail;
    }
    static dm_backend fake = {.ops = &ACCEPT, .id = DM_BK_TIMESCALE};
    dm_ingest *ing = dm_ingest_create(kind, &fake);
    dm_ingest_msg msgs[2];
    size_t n = sel & 0x20 ? 2 : 1;
    memset(msgs, 0, sizeof msgs);
    for (size_t i = 0; i < n; i++) {
        msgs[i].subject = subject;
        msgs[i].data = body;
        msgs[i].len = len;
        msgs[i].content_type = CONTENT_TYPES[(sel >> 2) & 3];
    }
    dm_cache_opts opts = {.ttl_s = 3600, .depth = 1000};
    dm_ingest_batch(ing, msgs, n, &opts);
    dm_buf update;
    dm_buf_init(&update);
    dm_coherence_encode(ing, DM_BK_TIMESCALE, msgs, n, &update);
    dm_buf_free(&update);
    dm_ingest_destroy(ing);
    return 0;
}
