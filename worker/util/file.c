#include "file.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

dm_code dm_read_file(const char *path, size_t max, char **out, size_t *len, dm_err *err)
{
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int saved = errno;
        dm_fail(err, DM_E_INTERNAL, "", "cannot open %s: %s", path, strerror(saved));
        errno = saved;
        return DM_E_INTERNAL;
    }
    char *buf = malloc(max ? max : 1);
    if (buf == NULL) {
        fclose(f);
        return dm_fail(err, DM_E_INTERNAL, "", "out of memory reading %s", path);
    }
    size_t n = fread(buf, 1, max, f);
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return dm_fail(err, DM_E_INTERNAL, "", "cannot read %s", path);
    }
    *out = buf;
    *len = n;
    return DM_OK;
}
