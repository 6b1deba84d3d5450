#include "health.h"

static void encode_pool(dm_enc *e, const dm_health_pool *p)
{
    dm_enc_key(e, "pool");
    dm_enc_map(e, 9);
    dm_enc_key(e, "open"); dm_enc_i64(e, p->open);
    dm_enc_key(e, "in_use"); dm_enc_i64(e, p->in_use);
    dm_enc_key(e, "min"); dm_enc_i64(e, p->min);
    dm_enc_key(e, "max"); dm_enc_i64(e, p->max);
    dm_enc_key(e, "timeout_s"); dm_enc_i64(e, p->timeout_s);
    dm_enc_key(e, "borrowed"); dm_enc_i64(e, p->borrowed);
    dm_enc_key(e, "waited"); dm_enc_i64(e, p->waited);
    dm_enc_key(e, "timeouts"); dm_enc_i64(e, p->timeouts);
    dm_enc_key(e, "replaced"); dm_enc_i64(e, p->replaced);
    dm_enc_map_end(e);
}

static void encode_backend(dm_enc *e, const dm_health_backend *b)
{
    dm_enc_key(e, b->name);
    dm_enc_map(e, (b->up ? 2 : 3) + (b->breaker ? 1 : 0) + (b->pool ? 1 : 0));
    dm_enc_key(e, "status"); dm_enc_str(e, b->up ? "up" : "down");
    dm_enc_key(e, "latency_ms"); dm_enc_f64(e, b->latency_ms);
    if (b->breaker) {
        dm_enc_key(e, "breaker");
        dm_enc_str(e, b->breaker);
    }
    if (b->pool)
        encode_pool(e, b->pool);
    if (!b->up) {
        dm_enc_key(e, "error");
        dm_enc_str(e, b->error ? b->error : "");
    }
    dm_enc_map_end(e);
}

const char *dm_health_status(const dm_health *h)
{
    size_t up = 0;
    for (size_t i = 0; i < h->n_backends; i++)
        up += h->backends[i].up;
    if (up == 0 && h->n_backends > 0)
        return "unhealthy";
    return h->n_issues > 0 ? "degraded" : "healthy";
}

void dm_health_encode(dm_enc *e, const dm_health *h)
{
    int extra = h->extra ? h->n_extra : 0;
    dm_enc_map(e, 7 + (size_t)extra);
    dm_enc_key(e, "status");
    dm_enc_str(e, dm_health_status(h));
    dm_enc_key(e, "issues");
    dm_enc_arr(e, h->n_issues);
    for (size_t i = 0; i < h->n_issues; i++)
        dm_enc_str(e, h->issues[i]);
    dm_enc_arr_end(e);
    dm_enc_key(e, "worker"); dm_enc_str(e, h->worker);
    dm_enc_key(e, "version"); dm_enc_str(e, h->version);
    dm_enc_key(e, "strategy_version"); dm_enc_str(e, h->strategy_version);
    dm_enc_key(e, "uptime_s"); dm_enc_i64(e, h->uptime_s);
    dm_enc_key(e, "backends");
    dm_enc_map(e, h->n_backends);
    for (size_t i = 0; i < h->n_backends; i++)
        encode_backend(e, &h->backends[i]);
    dm_enc_map_end(e);
    if (extra)
        h->extra(h->extra_ctx, e);
    dm_enc_map_end(e);
}
