/* The strategy parser: a file an operator edits by hand and the worker reloads while it
 * runs. An accepted strategy must hold only what the router can index. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strategy/strategy.h"

static void check(const dm_strategy *s)
{
    if (memchr(s->version, '\0', sizeof s->version) == NULL || s->version[0] == '\0')
        abort();
    for (int op = 0; op < DM_OP_COUNT; op++) {
        const dm_route *r = &s->routing[op];
        if (r->n < 0 || r->n > DM_ROUTE_MAX)
            abort();
        for (int i = 0; i < r->n; i++)
            if ((unsigned)r->targets[i] >= DM_BK_COUNT)
                abort();
    }
    for (int b = 0; b < DM_BK_COUNT; b++)
        if (s->pools[b].min_size > s->pools[b].max_size)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dm_strategy s;
    dm_err err = {0};
    if (dm_strategy_parse((const char *)data, size, &s, &err) == DM_OK)
        check(&s);
    return 0;
}
