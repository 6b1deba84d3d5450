/* Number formatting and strict parsing shared by payload encoding and tables. */
#ifndef DMCTL_NUM_H
#define DMCTL_NUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NUM_BUF 40

/* Shortest text that parses back to exactly v (%.15g, else %.17g), written
 * without an exponent for small magnitudes so prices read like "0.00002". */
void num_fmt_double(char out[NUM_BUF], double v);

/* 52845 -> "52,845" */
void num_fmt_grouped(char out[NUM_BUF], uint64_t v);

/* Whole-string parses: leading/trailing blanks allowed, nothing else. */
bool num_parse_double(const char *s, double *out);
bool num_parse_i64(const char *s, int64_t *out);

#endif
