/* Streaming reply writer: JSON or msgpack into one growing buffer. Large replies (10,000
 * candles) are written straight out; building a cJSON tree first is ten times slower.
 * Maps and arrays take their element count up front because msgpack needs it.
 * Protobuf is not streamed (a message's length precedes it): write msgpack and convert
 * with codec/pb.h. DM_ENC_PROTOBUF given here writes JSON. */
#ifndef DM_ENC_H
#define DM_ENC_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "doc.h"

#define DM_ENC_MAX_DEPTH 16

typedef struct {
    char *data;
    size_t len, cap;
    bool oom;
} dm_buf;

void dm_buf_init(dm_buf *b);
void dm_buf_free(dm_buf *b);
void dm_buf_reset(dm_buf *b);
void dm_buf_put(dm_buf *b, const void *p, size_t n);
void dm_buf_puts(dm_buf *b, const char *s);
void dm_buf_printf(dm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

typedef struct {
    dm_encoding enc;
    dm_buf *out;
    msgpack_packer pk;
    int depth;
    bool need_comma[DM_ENC_MAX_DEPTH + 1];
    bool after_key;
} dm_enc;

void dm_enc_init(dm_enc *e, dm_encoding enc, dm_buf *out);
void dm_enc_map(dm_enc *e, size_t n);
void dm_enc_map_end(dm_enc *e);
void dm_enc_arr(dm_enc *e, size_t n);
void dm_enc_arr_end(dm_enc *e);
void dm_enc_key(dm_enc *e, const char *k);
void dm_enc_str(dm_enc *e, const char *s);
void dm_enc_i64(dm_enc *e, int64_t v);
void dm_enc_f64(dm_enc *e, double v);
void dm_enc_null(dm_enc *e);
void dm_enc_bool(dm_enc *e, bool v);
/* Any JSON value, as it is: whole numbers that fit an int64 as integers, other numbers as
 * doubles. false (and the output unusable) for nesting deeper than DM_ENC_MAX_DEPTH or a
 * value cJSON cannot print. Clients use it to send a request typed as JSON in msgpack. */
bool dm_enc_cjson(dm_enc *e, const cJSON *j);

/* Shortest decimal that reads back as the same double ("1.09551", not 1.0955100000000001). */
int dm_fmt_double(char *buf, size_t cap, double v);
/* Reads a decimal such as dm_fmt_double writes ("-1.09551", "1239"); exactly what strtod
 * reads, and faster for prices. false (and *out untouched) unless the whole of s[0..len)
 * is a number. */
bool dm_parse_double(const char *s, size_t len, double *out);
/* A whole field typed by a person or read from a file: blanks (space, tab) may surround
 * the number, nothing else may. The double must be finite; the integer is decimal and
 * fits an int64. false (and *out untouched) otherwise. */
bool dm_parse_field_double(const char *s, double *out);
bool dm_parse_field_i64(const char *s, int64_t *out);
/* Thousands grouped for people: 52845 -> "52,845". Needs 27 bytes for any value. */
int dm_fmt_grouped(char *buf, size_t cap, uint64_t v);

#endif
