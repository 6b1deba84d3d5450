/* Every worker listens (no queue group) to the cache updates that committing workers
 * publish, and merges them into its own L1 and series store. */
#ifndef DM_CACHE_SUB_H
#define DM_CACHE_SUB_H

#include "cache/l1_backend.h"
#include "engine/series.h"
#include "bus.h"

typedef struct dm_cache_sub dm_cache_sub;

/* series: the analysis engines' closes, kept current from the same updates (may be NULL). */
dm_cache_sub *dm_cache_sub_start(dm_bus *bus, dm_l1_cache *l1, dm_series_store *series, dm_err *err);
void dm_cache_sub_stop(dm_cache_sub *s);

#endif
