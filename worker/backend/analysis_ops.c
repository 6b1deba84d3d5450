#include "analysis_ops.h"

#include <stdlib.h>
#include <string.h>

/* Doubles the capacity; NULL (vector untouched) when out of memory. */
static void *grow(void *v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return v;
    size_t next = *cap ? *cap * 2 : 16;
    void *p = realloc(v, next * size);
    if (p)
        *cap = next;
    return p;
}

dm_pattern_match *dm_pattern_vec_push(dm_pattern_vec *vec)
{
    dm_pattern_match *p = grow(vec->v, &vec->cap, vec->n, sizeof *vec->v);
    if (p == NULL)
        return NULL;
    vec->v = p;
    return memset(&vec->v[vec->n++], 0, sizeof *p);
}

void dm_pattern_vec_free(dm_pattern_vec *vec)
{
    free(vec->v);
    vec->v = NULL;
    vec->n = vec->cap = 0;
}

dm_corr_entry *dm_corr_vec_push(dm_corr_vec *vec)
{
    dm_corr_entry *p = grow(vec->v, &vec->cap, vec->n, sizeof *vec->v);
    if (p == NULL)
        return NULL;
    vec->v = p;
    return memset(&vec->v[vec->n++], 0, sizeof *p);
}

void dm_corr_vec_free(dm_corr_vec *vec)
{
    free(vec->v);
    vec->v = NULL;
    vec->n = vec->cap = 0;
}

void dm_graph_answer_free(dm_graph_answer *g)
{
    free(g->nodes);
    free(g->edges);
    free(g->mst);
    free(g->cluster_symbols);
    free(g->cluster_len);
    memset(g, 0, sizeof *g);
}
