/* What the Weaviate adapter's tests share: the stub fixture and a textbook
 * z-normalisation to compare the adapter's against. */
#ifndef DM_TEST_WEAVIATE_FIXTURE_H
#define DM_TEST_WEAVIATE_FIXTURE_H

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "backend/weaviate.h"
#include "http_stub.h"

#define KEY "wv-key-123"
#define BEARER "Bearer " KEY
#define JAN_1 1704067200000LL /* 2024-01-01T00:00:00Z */
#define HOUR 3600000LL

typedef struct {
    dm_stub *stub;
    dm_weaviate *w;
} fixture;

static inline void open_with(fixture *f, const dm_stub_step *steps, size_t n, const char *index,
                             int window, int timeout_ms)
{
    char url[64];
    f->stub = dm_stub_start(steps, n);
    assert_non_null(f->stub);
    dm_weaviate_config cfg = {
        dm_stub_url(f->stub, url, sizeof url), KEY, "PriceWindow", index, window, timeout_ms};
    dm_err err = {0};
    f->w = dm_weaviate_open(&cfg, &err);
    if (f->w == NULL)
        fail_msg("open: %s", err.message);
}

static inline void open_stub(fixture *f, const dm_stub_step *steps, size_t n)
{
    open_with(f, steps, n, "flat", 4, 2000);
}

/* Closes both and fails when the stub saw anything but its steps, in order. */
static inline void finish(fixture *f)
{
    char why[700];
    bool ok = dm_stub_verify(f->stub, why, sizeof why);
    dm_weaviate_close(f->w);
    dm_stub_stop(f->stub);
    if (!ok)
        fail_msg("stub: %s", why);
}

/* The test's own z-normalisation (textbook: population std), to compare the adapter's
 * against bit for bit. */
static inline void znorm(const double *x, size_t n, double *z)
{
    double sum = 0, sq = 0;
    for (size_t i = 0; i < n; i++)
        sum += x[i];
    double mean = sum / (double)n;
    for (size_t i = 0; i < n; i++)
        sq += (x[i] - mean) * (x[i] - mean);
    double sd = sqrt(sq / (double)n);
    for (size_t i = 0; i < n; i++)
        z[i] = (x[i] - mean) / sd;
}

static inline void assert_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL)
        fail_msg("'%s' not in '%s'", needle, haystack);
}

/* ---- pure helpers -------------------------------------------------------------------- */

static const double RISING[] = {1, 2, 3, 4};
static const double FLAT[] = {1.1, 1.1, 1.1, 1.1};

#endif
