/* Circuit breaker of one backend in one worker, shared by all its threads:
 * CLOSED -> OPEN after `threshold` consecutive transient failures -> HALF_OPEN once
 * `timeout` has passed, where exactly one caller (the probe) may try -> CLOSED when the
 * probe succeeds, OPEN again when it fails. Only transient failures count: a backend
 * that refuses bad data is healthy. Reads skip an open source; a write consumer stops
 * fetching (its messages wait in the stream) until a probe succeeds. */
#ifndef DM_BREAKER_H
#define DM_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

typedef enum { DM_BREAKER_CLOSED, DM_BREAKER_OPEN, DM_BREAKER_HALF_OPEN } dm_breaker_state;

typedef struct dm_breaker dm_breaker;

dm_breaker *dm_breaker_create(void);
void dm_breaker_destroy(dm_breaker *b);

/* true: call the backend, then report the outcome. When this returns true for an open
 * breaker whose timeout passed, the caller is the probe and must report. */
bool dm_breaker_allow(dm_breaker *b, int64_t now_ms, int timeout_s);
void dm_breaker_report(dm_breaker *b, bool ok, int64_t now_ms, int threshold);
/* The caller allowed in did not call the backend after all: a probe goes back unused. */
void dm_breaker_abandon(dm_breaker *b);
dm_breaker_state dm_breaker_state_of(dm_breaker *b);
const char *dm_breaker_name(dm_breaker_state s);

#endif
