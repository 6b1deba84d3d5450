/* Reading a whole (small) file: the configs, the strategy. */
#ifndef DM_FILE_H
#define DM_FILE_H

#include <stddef.h>

#include "err.h"

/* Reads at most max bytes of path into a malloc'd buffer (*out, the caller frees; *len
 * bytes, not NUL-terminated). A file longer than max is cut at max: read max + 1 to tell.
 * On failure *out is NULL, err says "cannot open PATH: reason" or why, and errno is the
 * open's (ENOENT: no such file). */
dm_code dm_read_file(const char *path, size_t max, char **out, size_t *len, dm_err *err);

#endif
