/* Single flight: concurrent misses for one key make one backend query. The first caller
 * of a key leads and does the work; the others wait until it is done, then look again in
 * the cache the leader filled (and do the work themselves only if that still misses, e.g.
 * when the leader failed). Owner: the worker, shared by its responder threads. */
#ifndef DM_FLIGHT_H
#define DM_FLIGHT_H

#include <stdbool.h>

typedef struct dm_flight dm_flight;

dm_flight *dm_flight_create(void);
void dm_flight_destroy(dm_flight *f);

/* true: the caller leads for key and must call dm_flight_done(key) when finished.
 * false: another caller was leading; this call returned after it finished (or after
 * wait_ms, whichever is first). */
bool dm_flight_begin(dm_flight *f, const char *key, int wait_ms);
void dm_flight_done(dm_flight *f, const char *key);

#endif
