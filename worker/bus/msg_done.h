/* Messages a thread is done with, destroyed in groups. natsMsg_Destroy hands a message to
 * libnats' collector thread and wakes that thread whenever it sleeps: one request at a
 * time, that is a wakeup of another thread per message (under cached reads the most CPU of
 * any worker thread). A group of DM_DONE_MAX messages, or fewer holding DM_DONE_BYTES of
 * data, costs one wakeup. Owner: one thread (no lock); dm_done_release once that thread
 * adds no more (a drained subscription's callback, say). */
#ifndef DM_MSG_DONE_H
#define DM_MSG_DONE_H

#include <stddef.h>

#include <nats/nats.h>

#define DM_DONE_MAX 32
#define DM_DONE_BYTES (1024 * 1024)

typedef struct {
    natsMsg *m[DM_DONE_MAX];
    int n;
    size_t bytes;
} dm_done;

/* Takes m over (NULL: nothing); destroys the group when it is full. */
void dm_done_add(dm_done *d, natsMsg *m);
void dm_done_release(dm_done *d);

#endif
