/* PostgreSQL / TimescaleDB adapter (libpq). Parameters only: no SQL is ever built from
 * data. Batches are one INSERT ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE, so a
 * batch is one round trip and one transaction. */
#ifndef DM_TIMESCALE_H
#define DM_TIMESCALE_H

#include <cjson/cJSON.h>

#include "backend.h"

/* Applies schemas/timescale.sql (embedded at build time) under an advisory lock and turns
 * ticks and candles into hypertables when the timescaledb extension is installed. */
dm_code dm_timescale_migrate(const cJSON *cfg, dm_err *err);
/* Connects lazily: creation succeeds while the database is down. */
dm_backend *dm_timescale_create(const cJSON *cfg, const char *app_name, int query_timeout_s);

#endif
