#include "input.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

bool input_read(const char *cmd, const char *arg, dm_buf *out)
{
    if (strcmp(arg, "-") != 0 && arg[0] != '@') {
        dm_buf_puts(out, arg);
        return !out->oom;
    }
    bool from_stdin = strcmp(arg, "-") == 0;
    FILE *f = from_stdin ? stdin : fopen(arg + 1, "rb");
    if (!f) {
        fprintf(stderr, "dmctl %s: cannot open %s: %s\n", cmd, arg + 1, strerror(errno));
        return false;
    }
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        dm_buf_put(out, chunk, n);
    bool ok = !ferror(f) && !out->oom;
    if (!ok)
        fprintf(stderr, "dmctl %s: cannot read %s\n", cmd, from_stdin ? "standard input" : arg + 1);
    if (!from_stdin)
        fclose(f);
    return ok;
}
