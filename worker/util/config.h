/* Database connection configs: one JSON file per database (deploy/config/<name>.json).
 * Any string value "ENV:NAME" is replaced by the environment variable NAME, which may
 * come from an optional .env file; "ENV?:NAME" likewise, but an unset NAME reads as ""
 * (settings only some stacks have, such as a CA file). Values are never logged. */
#ifndef DM_CONFIG_H
#define DM_CONFIG_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "err.h"

/* Loads KEY=VALUE lines into the environment without overriding what is already set.
 * A missing file is not an error. */
dm_code dm_env_load_file(const char *path, dm_err *err);

/* *out NULL with DM_OK when the file does not exist (backend not configured). */
dm_code dm_config_load(const char *dir, const char *name, cJSON **out, dm_err *err);

const char *dm_cfg_str(const cJSON *cfg, const char *key, const char *dflt);
int dm_cfg_int(const cJSON *cfg, const char *key, int dflt);

#endif
