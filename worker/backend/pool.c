#include "pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define DM_POOL_CHECK_MS 5000 /* an idle connection is pinged this often */
#define DM_POOL_IDLE_MS 60000 /* an idle connection above min closes after this */

typedef struct {
    dm_backend *b;
    int64_t used_ms, checked_ms;
} idle_conn;

/* Lock order: none; the lock is never held across a backend call or the factory. */
struct dm_pool {
    pthread_mutex_t mu;
    pthread_cond_t freed;
    dm_backend_id id;
    dm_pool_factory make;
    void *ctx;
    const dm_backend_ops *ops;
    dm_pool_cfg cfg;
    idle_conn *idle; /* a stack: the most recently used on top, warm connections first */
    int n_idle, cap;
    int open;   /* idle + borrowed + being checked or opened by the keeper */
    int in_use; /* borrowed */
    bool up;
    uint64_t borrowed, waited, timeouts, replaced;
};

static bool reserve_idle(dm_pool *p, int n)
{
    if (n <= p->cap)
        return true;
    idle_conn *v = realloc(p->idle, (size_t)n * sizeof *v);
    if (v == NULL)
        return false;
    p->idle = v;
    p->cap = n;
    return true;
}

dm_pool *dm_pool_create(dm_backend_id id, dm_pool_factory make, void *ctx, const dm_pool_cfg *cfg)
{
    dm_backend *first = make(ctx);
    if (first == NULL)
        return NULL;
    dm_pool *p = calloc(1, sizeof *p);
    if (p == NULL || !reserve_idle(p, cfg->max_size > 0 ? cfg->max_size : 1)) {
        free(p);
        dm_backend_destroy(first);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->freed, NULL);
    p->id = id;
    p->make = make;
    p->ctx = ctx;
    p->ops = first->ops;
    p->cfg = *cfg;
    p->up = true;
    /* Not connected yet: the keeper connects up to min, a borrower on first use. */
    p->idle[p->n_idle++] = (idle_conn){first, dm_mono_ms(), 0};
    p->open = 1;
    return p;
}

void dm_pool_destroy(dm_pool *p)
{
    if (p == NULL)
        return;
    for (int i = 0; i < p->n_idle; i++)
        dm_backend_destroy(p->idle[i].b);
    free(p->idle);
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

void dm_pool_configure(dm_pool *p, const dm_pool_cfg *cfg)
{
    pthread_mutex_lock(&p->mu);
    if (reserve_idle(p, cfg->max_size))
        p->cfg = *cfg;
    pthread_cond_broadcast(&p->freed);
    pthread_mutex_unlock(&p->mu);
}

const dm_backend_ops *dm_pool_ops(const dm_pool *p)
{
    return p->ops;
}

dm_backend *dm_pool_acquire(dm_pool *p, dm_err *err)
{
    pthread_mutex_lock(&p->mu);
    p->borrowed++;
    bool waited = false;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += p->cfg.timeout_s;
    for (;;) {
        if (p->n_idle > 0) {
            dm_backend *b = p->idle[--p->n_idle].b;
            p->in_use++;
            pthread_mutex_unlock(&p->mu);
            return b;
        }
        if (p->open < p->cfg.max_size) {
            p->open++;
            p->in_use++;
            pthread_mutex_unlock(&p->mu);
            dm_backend *b = p->make(p->ctx);
            if (b)
                return b;
            pthread_mutex_lock(&p->mu);
            p->open--;
            p->in_use--;
            pthread_cond_signal(&p->freed);
            pthread_mutex_unlock(&p->mu);
            dm_fail(err, DM_E_INTERNAL, "", "%s: cannot create a connection",
                    dm_backend_name(p->id));
            return NULL;
        }
        if (!waited)
            p->waited++;
        waited = true;
        if (pthread_cond_timedwait(&p->freed, &p->mu, &deadline) != 0 && p->n_idle == 0 &&
            p->open >= p->cfg.max_size) {
            p->timeouts++;
            int max = p->cfg.max_size, t = p->cfg.timeout_s;
            pthread_mutex_unlock(&p->mu);
            dm_fail(err, DM_E_UNAVAILABLE, "",
                    "%s pool exhausted: %d of %d connections busy for %d s", dm_backend_name(p->id),
                    max, max, t);
            return NULL;
        }
    }
}

/* Called with the lock held; returns the connection to close outside it, or NULL. */
static dm_backend *put_back(dm_pool *p, dm_backend *b, bool broken, int64_t now)
{
    p->up = !broken;
    if (broken || p->open > p->cfg.max_size || p->n_idle >= p->cap) {
        p->open--;
        p->replaced += broken;
        pthread_cond_signal(&p->freed);
        return b;
    }
    p->idle[p->n_idle++] = (idle_conn){b, now, now};
    pthread_cond_signal(&p->freed);
    return NULL;
}

void dm_pool_release(dm_pool *p, dm_backend *b, bool broken)
{
    if (b == NULL)
        return;
    int64_t now = dm_mono_ms();
    pthread_mutex_lock(&p->mu);
    p->in_use--;
    dm_backend *gone = put_back(p, b, broken, now);
    pthread_mutex_unlock(&p->mu);
    dm_backend_destroy(gone);
}

#define DM_POOL_BATCH 64 /* connections checked per round at most */

void dm_pool_maintain(dm_pool *p, int64_t now_ms)
{
    int64_t now = now_ms;
    dm_backend *check[DM_POOL_BATCH], *close_[DM_POOL_BATCH];
    int n_check = 0, n_close = 0;
    pthread_mutex_lock(&p->mu);
    /* From the bottom of the stack: the least recently used go first. */
    int keep = 0;
    for (int i = 0; i < p->n_idle; i++) {
        idle_conn *c = &p->idle[i];
        bool extra = p->open - n_close > p->cfg.min_size && now - c->used_ms >= DM_POOL_IDLE_MS;
        if ((extra || p->open - n_close > p->cfg.max_size) && n_close < DM_POOL_BATCH) {
            close_[n_close++] = c->b;
        } else if (now - c->checked_ms >= DM_POOL_CHECK_MS && n_check < DM_POOL_BATCH) {
            check[n_check++] = c->b;
        } else {
            p->idle[keep++] = *c;
        }
    }
    p->n_idle = keep;
    p->open -= n_close;
    /* Checked connections count as open; the borrowers see them busy meanwhile. */
    int top_up = p->cfg.min_size - p->open;
    if (top_up < 0)
        top_up = 0;
    p->open += top_up;
    pthread_mutex_unlock(&p->mu);

    for (int i = 0; i < n_close; i++)
        dm_backend_destroy(close_[i]);
    for (int i = 0; i < n_check; i++) {
        dm_err e = {0};
        bool ok = dm_backend_ping(check[i], &e) == DM_BS_OK;
        pthread_mutex_lock(&p->mu);
        dm_backend *gone = put_back(p, check[i], !ok, now);
        pthread_mutex_unlock(&p->mu);
        dm_backend_destroy(gone);
    }
    /* Open up to min; stop at the first failure (the backend is down: next round). */
    for (int i = 0; i < top_up; i++) {
        dm_backend *b = p->make(p->ctx);
        dm_err e = {0};
        bool ok = b && dm_backend_ping(b, &e) == DM_BS_OK;
        pthread_mutex_lock(&p->mu);
        dm_backend *gone = NULL;
        if (ok) {
            gone = put_back(p, b, false, now);
        } else {
            p->open -= top_up - i;
            p->up = false;
            gone = b;
        }
        pthread_mutex_unlock(&p->mu);
        dm_backend_destroy(gone);
        if (!ok)
            break;
    }
}

void dm_pool_stats_of(dm_pool *p, dm_pool_stats *out)
{
    pthread_mutex_lock(&p->mu);
    *out = (dm_pool_stats){.open = p->open,
                           .in_use = p->in_use,
                           .min = p->cfg.min_size,
                           .max = p->cfg.max_size,
                           .timeout_s = p->cfg.timeout_s,
                           .up = p->up,
                           .borrowed = p->borrowed,
                           .waited = p->waited,
                           .timeouts = p->timeouts,
                           .replaced = p->replaced};
    pthread_mutex_unlock(&p->mu);
}
