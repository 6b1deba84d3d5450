/* One encoder API with two wire formats (JSON text or msgpack), so each
 * payload type is described once and --msgpack just flips the backend. */
#ifndef DMCTL_ENC_H
#define DMCTL_ENC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "buf.h"

#define ENC_MAX_DEPTH 16

typedef struct enc {
    bool msgpack;
    bool failed; /* allocation failure or misuse; checked once by enc_data() */
    buf json;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    int depth;
    struct {
        bool first;      /* no element written yet at this level */
        bool after_key;  /* a key was written; next value needs no comma */
        size_t declared; /* count promised to enc_map/enc_array */
        size_t values;   /* values actually written, checked on close so a
                            wrong count fails in JSON tests too, not only as
                            corrupt msgpack */
    } st[ENC_MAX_DEPTH];
} enc;

void enc_init(enc *e, bool msgpack);
void enc_free(enc *e);
void enc_reset(enc *e);

/* Counts are required by msgpack and ignored by JSON. */
void enc_map(enc *e, size_t n);
void enc_map_end(enc *e);
void enc_array(enc *e, size_t n);
void enc_array_end(enc *e);
void enc_key(enc *e, const char *k);
void enc_str(enc *e, const char *s);
void enc_strn(enc *e, const char *s, size_t n);
void enc_i64(enc *e, int64_t v);
void enc_f64(enc *e, double v);
void enc_bool(enc *e, bool v);
void enc_nil(enc *e);

/* NULL if encoding failed. */
const char *enc_data(enc *e, size_t *len);

const char *enc_content_type(const enc *e);

/* JSON string literal with escapes, appended to b (shared with table output). */
void json_put_string(buf *b, const char *s, size_t n);

#endif
