/* Serve: one request in, one reply out. Parses and validates the request, walks the
 * strategy's source list for the operation (skipping sources that miss or fail, filling
 * the caches it passed on the way back) and encodes the reply in the request's encoding.
 * One dm_serve belongs to one responder thread. A request borrows a connection from the
 * backend's pool the first time it needs that backend and gives it back when answered. */
#ifndef DM_SERVE_H
#define DM_SERVE_H

#include <stddef.h>

#include "backend/backend.h"
#include "backend/pool.h"
#include "cache/flight.h"
#include "cache/l1_backend.h"
#include "codec/enc.h"
#include "model/names.h"
#include "engine/series.h"
#include "resilience/breaker.h"
#include "strategy/current.h"
#include "strategy/watch.h"


#define DM_REQUEST_MAX_BYTES (1u << 20)
#define DM_PAGE_DEFAULT 1000
#define DM_PAGE_MAX 10000
#define DM_LATEST_LIMIT_DEFAULT 100
#define DM_LATEST_LIMIT_MAX 1000

typedef struct {
    dm_buf body;
    dm_encoding enc; /* the body's: DM_ENC_PROTOBUF only once reply_as_protobuf converted it */
    int status; /* 200, or the error code's status */
    char error[200]; /* an error reply's message (service discovery's error header); "" */
} dm_reply;

typedef struct dm_serve dm_serve;

/* Extra health figures the layer above knows (consumer lag, ingest counters). */
typedef void (*dm_health_extra_fn)(void *ctx, dm_enc *e);
/* Reasons the layer above knows for a degraded health (stalled consumers, L1 suspended);
 * returns how many it wrote. */
#define DM_HEALTH_ISSUE_MAX 160
typedef size_t (*dm_health_issues_fn)(void *ctx, char (*out)[DM_HEALTH_ISSUE_MAX], size_t max);

typedef struct {
    const char *worker_name;
    dm_strategy_holder *strategies;    /* a request keeps the version it started with */
    dm_pool *pools[DM_BK_COUNT];       /* the worker's, shared; NULL: use backends[] */
    dm_backend *backends[DM_BK_COUNT]; /* this thread's own (L1, tests): destroyed with it */
    dm_flight *flight;                 /* shared by the worker's responders; may be NULL */
    dm_l1_cache *l1;                   /* for its figures; may be NULL */
    dm_series_store *series;           /* what cached correlations are judged against; may be NULL */
    dm_breaker *breakers[DM_BK_COUNT]; /* the worker's, shared; NULL: no breaker */
    const dm_strategy_watch *watch;    /* for reload figures; may be NULL */
    dm_health_extra_fn health_extra;
    int health_extra_members; /* how many map members health_extra writes */
    dm_health_issues_fn health_issues; /* may be NULL */
    void *health_ctx;
} dm_serve_config;

dm_serve *dm_serve_create(const dm_serve_config *cfg);
void dm_serve_destroy(dm_serve *s);
/* content_type may be NULL (detected); the reply is in the request's encoding. */
void dm_serve_handle(dm_serve *s, const char *subject, const char *data, size_t len,
                     const char *content_type, dm_reply *out);
/* The same with the request's Accept header (may be NULL): a reply in the encoding it
 * names (JSON, msgpack or protobuf), else in the request's. Health and metrics have no
 * protobuf form: asked for one, they answer JSON. */
void dm_serve_handle_accept(dm_serve *s, const char *subject, const char *data, size_t len,
                            const char *content_type, const char *accept, dm_reply *out);

#endif
