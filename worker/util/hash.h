/* FNV-1a, 64 bits: for keys that are ours (cache keys, a file's bytes), not adversarial
 * input, where a cheap decent spread is all that is needed. */
#ifndef DM_HASH_H
#define DM_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t dm_fnv1a(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

#endif
