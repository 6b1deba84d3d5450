#include "msg_done.h"

void dm_done_release(dm_done *d)
{
    for (int i = 0; i < d->n; i++)
        natsMsg_Destroy(d->m[i]);
    d->n = 0;
    d->bytes = 0;
}

void dm_done_add(dm_done *d, natsMsg *m)
{
    if (m == NULL)
        return;
    d->m[d->n++] = m;
    d->bytes += (size_t)natsMsg_GetDataLength(m);
    if (d->n == DM_DONE_MAX || d->bytes >= DM_DONE_BYTES)
        dm_done_release(d);
}
