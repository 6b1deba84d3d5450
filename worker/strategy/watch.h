/* Hot reload: a thread watches the strategy file's directory with inotify (editors that
 * write a temp file and rename it over, `cp` and `>` in place, delete and re-create),
 * waits for writes to settle, parses and validates the new file completely, and only then
 * swaps it into the holder. An invalid file leaves the running version in place, is
 * logged with file and field, and counted. */
#ifndef DM_STRATEGY_WATCH_H
#define DM_STRATEGY_WATCH_H

#include <stdint.h>

#include "util/err.h"
#include "current.h"

typedef struct dm_strategy_watch dm_strategy_watch;

/* on_swap (may be NULL) runs on the watch thread after a successful swap. */
typedef void (*dm_strategy_swapped_fn)(const dm_strategy *next, void *ctx);

dm_strategy_watch *dm_strategy_watch_start(const char *path, dm_strategy_holder *h,
                                           dm_strategy_swapped_fn on_swap, void *ctx,
                                           dm_err *err);
void dm_strategy_watch_stop(dm_strategy_watch *w); /* joins the thread, frees */
uint64_t dm_strategy_reloads(const dm_strategy_watch *w);         /* applied */
uint64_t dm_strategy_reload_failures(const dm_strategy_watch *w); /* refused */

#endif
