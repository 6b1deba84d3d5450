#include "hand.h"

#include <stdlib.h>
#include <string.h>

static bool grow(dm_hand *h)
{
    if (h->n < h->cap)
        return true;
    size_t cap = h->cap ? h->cap * 2 : 1024;
    natsMsg **m = realloc(h->msg, cap * sizeof *m);
    if (m == NULL)
        return false;
    h->msg = m;
    uint64_t *s = realloc(h->seq, cap * sizeof *s);
    if (s == NULL)
        return false;
    h->seq = s;
    h->cap = cap;
    return true;
}

/* The first index whose sequence is >= seq. */
static size_t lower_bound(const dm_hand *h, uint64_t seq)
{
    size_t lo = 0, hi = h->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->seq[mid] < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool dm_hand_has(const dm_hand *h, uint64_t seq)
{
    size_t at = lower_bound(h, seq);
    return at < h->n && h->seq[at] == seq;
}

bool dm_hand_add(dm_hand *h, natsMsg *m, uint64_t seq)
{
    /* Nearly always the newest: appended without a search. */
    size_t at = h->n > 0 && seq <= h->seq[h->n - 1] ? lower_bound(h, seq) : h->n;
    if (at < h->n && h->seq[at] == seq) {
        natsMsg_Destroy(m);
        return true;
    }
    if (!grow(h))
        return false;
    memmove(&h->msg[at + 1], &h->msg[at], (h->n - at) * sizeof *h->msg);
    memmove(&h->seq[at + 1], &h->seq[at], (h->n - at) * sizeof *h->seq);
    h->msg[at] = m;
    h->seq[at] = seq;
    h->n++;
    return true;
}

void dm_hand_settle(dm_hand *h, size_t k, const bool *keep)
{
    if (k > h->n)
        k = h->n;
    size_t w = 0;
    for (size_t i = 0; i < k; i++) {
        if (keep && keep[i]) {
            h->msg[w] = h->msg[i];
            h->seq[w++] = h->seq[i];
        } else {
            natsMsg_Destroy(h->msg[i]);
        }
    }
    memmove(&h->msg[w], &h->msg[k], (h->n - k) * sizeof *h->msg);
    memmove(&h->seq[w], &h->seq[k], (h->n - k) * sizeof *h->seq);
    h->n -= k - w;
}

void dm_hand_clear(dm_hand *h)
{
    for (size_t i = 0; i < h->n; i++)
        natsMsg_Destroy(h->msg[i]);
    h->n = 0;
}

void dm_hand_free(dm_hand *h)
{
    dm_hand_clear(h);
    free(h->msg);
    free(h->seq);
    *h = (dm_hand){0};
}
