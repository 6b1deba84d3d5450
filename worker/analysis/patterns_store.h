/* Internals shared by the two halves of the pattern engine: patterns_store.c holds the
 * series, the spectrum each memoises and the FFT plans; patterns.c searches them. Not part
 * of the public API (patterns.h); only those two files include it. */
#ifndef DM_PATTERNS_STORE_H
#define DM_PATTERNS_STORE_H

#include "patterns.h"

#include <complex.h> /* before fftw3.h, so fftw_complex is double complex */
#include <fftw3.h>

#define BLOCK 8192                          /* FFT size */
#define STEP (BLOCK - DM_PATTERN_W_MAX + 1) /* window starts each block serves, for any w */
#define BINS (BLOCK / 2 + 1)

/* Block b holds closes b * STEP .. b * STEP + BLOCK - 1 less their mean, zero-padded past
 * the end, transformed. Built by the first search after a change, under the series'
 * mutex, and read-only after. */
typedef struct {
    size_t nblocks;
    double *mean, *norm; /* per block: the mean subtracted and the 2-norm of what is left */
    fftw_complex *x;     /* nblocks * BINS */
} dm_pspectrum;

/* The series' spectrum, built on first use; NULL when memory runs out. Valid until the
 * next upsert, which the caller's lock keeps away while it searches. */
const dm_pspectrum *dm_pseries_spectrum(dm_pseries *s);

/* Windows first..first+*m-1 qualify: start <= ts[i] and ts[i+w-1] < end. Returns first. */
size_t dm_pseries_windows(const dm_pseries *s, size_t w, int64_t start, int64_t end, size_t *m);

/* Per search: the query's transform and room for one block's correlation. */
typedef struct {
    fftw_complex *q, *f;
    double *out;
} dm_pscratch;

/* false when memory runs out; dm_pscratch_free is due either way. */
bool dm_pscratch_init(dm_pscratch *sc, const double *qn, size_t w);
void dm_pscratch_free(dm_pscratch *sc);
/* out[t] / BLOCK = sum_k (x[b * STEP + t + k] - mean[b]) * qn[k] for t < STEP: a circular
 * correlation that never wraps there, since t + k <= STEP - 1 + w - 1 < BLOCK. */
void dm_pscratch_dots(const dm_pspectrum *sp, size_t b, dm_pscratch *sc);

#endif
