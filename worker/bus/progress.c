#include "progress.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "pipeline/ingest.h"
#include "util/log.h"

#define CATCH_UP_EVERY_MS 50
#define STALL_EVERY_MS 1000
#define MAX_ISSUES (DM_KIND_COUNT * DM_BK_COUNT)

typedef struct {
    uint64_t ack_floor;
    int64_t moved_ms; /* when the ack floor last moved, or the backlog last emptied */
    bool seen;
} watch;

struct dm_progress {
    dm_bus *bus;
    dm_fresh *fresh;
    uint64_t generation; /* of the fresh state the snapshot belongs to */
    uint64_t floor[DM_KIND_COUNT]; /* per kind: the highest ack floor of the route's
                                    * consumers when this worker started over */
    int64_t next_catch_up, next_stall;
    watch watches[DM_KIND_COUNT][DM_BK_COUNT];
    pthread_mutex_t mu; /* guards issues */
    char issues[MAX_ISSUES][DM_ISSUE_MAX];
    size_t n_issues;
};

dm_progress *dm_progress_create(dm_bus *bus, dm_fresh *fresh)
{
    dm_progress *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->bus = bus;
    p->fresh = fresh;
    pthread_mutex_init(&p->mu, NULL);
    return p;
}

void dm_progress_destroy(dm_progress *p)
{
    if (p == NULL)
        return;
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static void consumer_name(dm_backend_id b, dm_kind k, char *out, size_t cap)
{
    snprintf(out, cap, "%s-%s", dm_backend_name(b), dm_kind_name(k));
}

static bool in_class(dm_kind k, dm_fresh_class cls)
{
    return cls == DM_FRESH_TICKS ? k == DM_KIND_TICK : k == DM_KIND_CANDLE || k == DM_KIND_CANDLES;
}

/* Caught up, for a backend on a kind: it has committed everything that any source of the
 * read route had committed when this worker started over (the highest ack floor among
 * their consumers then), or it has nothing left at all. Later commits are known key by key
 * from the updates. Comparing with each other rather than with the stream keeps the
 * sources answering while JetStream itself is behind (a failover, a backlog): a copy is
 * stale only against a newer one. */
static const dm_op READS[DM_FRESH_CLASSES] = {DM_OP_GET_LATEST_TICK, DM_OP_GET_CANDLES};

/* Whether backend b's commits of kind k are read back: a source of the class's read route
 * that the kind's write route feeds (an index such as Weaviate is neither). */
static bool read_source(const dm_strategy *st, dm_kind k, dm_backend_id b)
{
    for (int cls = 0; cls < DM_FRESH_CLASSES; cls++)
        if (in_class(k, (dm_fresh_class)cls) && dm_route_has(&st->routing[READS[cls]], b))
            return b != DM_BK_L1 && dm_route_has(&st->routing[dm_kind_op(k)], b);
    return false;
}

static bool snapshot_floors(dm_progress *p, const dm_strategy *st)
{
    memset(p->floor, 0, sizeof p->floor);
    for (int k = 0; k < DM_KIND_COUNT; k++) {
        for (int b = 0; b < DM_BK_COUNT; b++) {
            if (!read_source(st, (dm_kind)k, (dm_backend_id)b))
                continue;
            char name[48];
            dm_consumer_lag lag;
            consumer_name((dm_backend_id)b, (dm_kind)k, name, sizeof name);
            if (!dm_bus_consumer_lag(p->bus, name, &lag))
                return false;
            if (lag.ack_floor > p->floor[k])
                p->floor[k] = lag.ack_floor;
        }
    }
    return true;
}

static bool consumer_caught_up(dm_progress *p, dm_backend_id b, dm_kind k)
{
    char name[48];
    dm_consumer_lag lag;
    consumer_name(b, k, name, sizeof name);
    if (!dm_bus_consumer_lag(p->bus, name, &lag))
        return false;
    return lag.ack_floor >= p->floor[k] || (lag.pending == 0 && lag.ack_pending == 0);
}

bool dm_progress_caught_up(dm_progress *p, const dm_strategy *st)
{
    for (int cls = 0; cls < DM_FRESH_CLASSES; cls++) {
        const dm_route *r = &st->routing[READS[cls]];
        for (int i = 0; i < r->n; i++)
            if (r->targets[i] != DM_BK_L1 && !dm_fresh_caught_up(p->fresh, r->targets[i], (dm_fresh_class)cls))
                return false;
    }
    return true;
}

static void check_catch_up(dm_progress *p, const dm_strategy *st)
{
    uint64_t gen = dm_fresh_generation(p->fresh);
    if (gen != p->generation) {
        if (!snapshot_floors(p, st))
            return;
        p->generation = gen;
    }
    if (dm_progress_caught_up(p, st))
        return;
    for (int cls = 0; cls < DM_FRESH_CLASSES; cls++) {
        const dm_route *r = &st->routing[READS[cls]];
        for (int i = 0; i < r->n; i++) {
            dm_backend_id b = r->targets[i];
            if (b == DM_BK_L1 || dm_fresh_caught_up(p->fresh, b, (dm_fresh_class)cls))
                continue;
            bool ok = true;
            for (int k = 0; k < DM_KIND_COUNT && ok; k++)
                if (in_class((dm_kind)k, (dm_fresh_class)cls) &&
                    dm_route_has(&st->routing[dm_kind_op((dm_kind)k)], b))
                    ok = consumer_caught_up(p, b, (dm_kind)k);
            if (ok && dm_fresh_generation(p->fresh) == gen) {
                dm_fresh_set_caught_up(p->fresh, b, (dm_fresh_class)cls, true);
                DM_INFO("fresh", "%s has caught up on %s: its copy may answer", dm_backend_name(b),
                        cls == DM_FRESH_TICKS ? "ticks" : "candles");
            }
        }
    }
}

static void check_stalls(dm_progress *p, const dm_strategy *st, int64_t now)
{
    char found[MAX_ISSUES][DM_ISSUE_MAX];
    size_t n = 0;
    for (int k = 0; k < DM_KIND_COUNT; k++) {
        for (int b = 0; b < DM_BK_COUNT; b++) {
            watch *w = &p->watches[k][b];
            if (b == DM_BK_L1 || !dm_route_has(&st->routing[dm_kind_op((dm_kind)k)], (dm_backend_id)b)) {
                w->seen = false;
                continue;
            }
            char name[48];
            dm_consumer_lag lag;
            consumer_name((dm_backend_id)b, (dm_kind)k, name, sizeof name);
            if (!dm_bus_consumer_lag(p->bus, name, &lag))
                continue;
            uint64_t backlog = lag.pending + lag.ack_pending;
            if (!w->seen || lag.ack_floor != w->ack_floor || backlog == 0) {
                w->ack_floor = lag.ack_floor;
                w->moved_ms = now;
                w->seen = true;
                continue;
            }
            if (now - w->moved_ms >= DM_STALL_MS)
                snprintf(found[n++], DM_ISSUE_MAX,
                         "%s stalled: %llu message(s) pending, no commit for %lld s", name,
                         (unsigned long long)backlog, (long long)((now - w->moved_ms) / 1000));
        }
    }
    pthread_mutex_lock(&p->mu);
    memcpy(p->issues, found, n * sizeof found[0]);
    p->n_issues = n;
    pthread_mutex_unlock(&p->mu);
}

void dm_progress_check(dm_progress *p, const dm_strategy *st)
{
    int64_t now = dm_mono_ms();
    if (now >= p->next_catch_up) {
        p->next_catch_up = now + CATCH_UP_EVERY_MS;
        check_catch_up(p, st);
    }
    if (now >= p->next_stall) {
        p->next_stall = now + STALL_EVERY_MS;
        check_stalls(p, st, now);
    }
}

size_t dm_progress_issues(dm_progress *p, char (*out)[DM_ISSUE_MAX], size_t max)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->n_issues < max ? p->n_issues : max;
    memcpy(out, p->issues, n * sizeof out[0]);
    pthread_mutex_unlock(&p->mu);
    return n;
}
