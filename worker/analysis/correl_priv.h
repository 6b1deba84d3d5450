/* Helpers the two halves of the correlation engine share: correl.c (the window, the matrix,
 * one symbol's row) and correl_graph.c (the graph views). Not part of the public API. */
#ifndef DM_CORREL_PRIV_H
#define DM_CORREL_PRIV_H

#include "correl.h"

#include <math.h>
#include <stdlib.h>

/* calloc checks n * size for overflow; asking for at least one element keeps a NULL
 * return meaning out of memory only. */
static inline void *alloc_n(size_t n, size_t size)
{
    return calloc(n ? n : 1, size);
}

static inline dm_code out_of_memory(dm_err *err)
{
    return dm_fail(err, DM_E_INTERNAL, "", "out of memory");
}

static inline bool linked(const dm_corr_matrix *m, size_t i, size_t j, double threshold)
{
    size_t c = dm_corr_cell(m, i, j);
    return m->has[c] && fabs(m->r[c]) >= threshold;
}

static inline dm_code check_threshold(double threshold, dm_err *err)
{
    if (!(threshold >= 0 && threshold <= 1))
        return dm_fail(err, DM_E_INVALID_FIELD, "threshold", "threshold %g must be within 0..1",
                       threshold);
    return DM_OK;
}

#endif
