#include "fresh.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "l1.h"

/* A mark outlives any cache entry of its key; one idle this long is not worth keeping
 * (its key has seen no write since, so nothing newer can be missing). */
#define MARK_TTL_MS (24LL * 3600 * 1000)

typedef struct {
    uint64_t seq[DM_BK_COUNT];
} marks;

struct dm_fresh {
    dm_l1 *marks;
    atomic_bool caught_up[DM_BK_COUNT][DM_FRESH_CLASSES];
    atomic_bool suspended;
    atomic_ullong generation;
};

dm_fresh *dm_fresh_create(size_t max_keys)
{
    dm_fresh *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->marks = dm_l1_create((dm_l1_limits){max_keys, max_keys * sizeof(marks)});
    if (f->marks == NULL) {
        free(f);
        return NULL;
    }
    for (int b = 0; b < DM_BK_COUNT; b++)
        for (int c = 0; c < DM_FRESH_CLASSES; c++)
            atomic_init(&f->caught_up[b][c], false);
    atomic_init(&f->suspended, false);
    atomic_init(&f->generation, 1);
    return f;
}

void dm_fresh_destroy(dm_fresh *f)
{
    if (f == NULL)
        return;
    dm_l1_destroy(f->marks);
    free(f);
}

static bool get_marks(dm_fresh *f, const char *key, marks *m)
{
    void *v = NULL;
    size_t len = 0;
    bool ok = dm_l1_get(f->marks, key, dm_now_ms(), &v, &len) && len == sizeof *m;
    if (ok)
        memcpy(m, v, sizeof *m);
    else
        memset(m, 0, sizeof *m);
    free(v);
    return ok;
}

void dm_fresh_note(dm_fresh *f, const char *key, dm_backend_id b, uint64_t seq)
{
    marks m;
    get_marks(f, key, &m);
    if (seq <= m.seq[b])
        return;
    m.seq[b] = seq;
    dm_l1_put(f->marks, key, &m, sizeof m, dm_now_ms(), MARK_TTL_MS);
}

bool dm_fresh_current(dm_fresh *f, const char *key, dm_fresh_class cls, dm_backend_id b,
                      unsigned peers, uint64_t *seq)
{
    if (seq)
        *seq = 0;
    if (!dm_fresh_caught_up(f, b, cls))
        return false;
    marks m;
    get_marks(f, key, &m);
    for (int o = 0; o < DM_BK_COUNT; o++)
        if ((peers & (1u << o)) && m.seq[o] > m.seq[b])
            return false;
    if (seq)
        *seq = m.seq[b];
    return true;
}

void dm_fresh_set_caught_up(dm_fresh *f, dm_backend_id b, dm_fresh_class cls, bool on)
{
    atomic_store(&f->caught_up[b][cls], on);
}

bool dm_fresh_caught_up(dm_fresh *f, dm_backend_id b, dm_fresh_class cls)
{
    return atomic_load(&f->caught_up[b][cls]);
}

void dm_fresh_suspend(dm_fresh *f) { atomic_store(&f->suspended, true); }

bool dm_fresh_suspended(dm_fresh *f) { return atomic_load(&f->suspended); }

void dm_fresh_restart(dm_fresh *f)
{
    for (int b = 0; b < DM_BK_COUNT; b++)
        for (int c = 0; c < DM_FRESH_CLASSES; c++)
            atomic_store(&f->caught_up[b][c], false);
    dm_l1_clear(f->marks);
    atomic_fetch_add(&f->generation, 1);
    atomic_store(&f->suspended, false);
}

uint64_t dm_fresh_generation(dm_fresh *f) { return atomic_load(&f->generation); }
