/* Reply framing shared by the operations: data replies and the error shape of contract v1. */
#include "serve_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/models.h"
#include "util/b64.h"

/* ---- replies ------------------------------------------------------------------------ */

void reply_error(dm_reply *out, const dm_err *err)
{
    dm_enc e;
    dm_buf_reset(&out->body);
    dm_enc_init(&e, out->enc, &out->body);
    dm_enc_map(&e, 1);
    dm_enc_key(&e, "error");
    dm_enc_map(&e, 3);
    dm_enc_key(&e, "code"); dm_enc_str(&e, dm_code_name(err->code));
    dm_enc_key(&e, "message"); dm_enc_str(&e, err->message);
    dm_enc_key(&e, "field");
    if (err->field[0]) dm_enc_str(&e, err->field); else dm_enc_null(&e);
    dm_enc_map_end(&e);
    dm_enc_map_end(&e);
    out->status = dm_code_status(err->code);
    /* A header value: control characters (a request's own text may hold any) become spaces. */
    snprintf(out->error, sizeof out->error, "%.199s", err->message);
    for (char *p = out->error; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
}

void reply_begin_data(dm_enc *e, dm_reply *out, size_t members)
{
    dm_buf_reset(&out->body);
    dm_enc_init(e, out->enc, &out->body);
    dm_enc_map(e, members);
    dm_enc_key(e, "data");
    out->status = 200;
}

void reply_end_data(dm_enc *e, dm_backend_id served_by)
{
    dm_enc_key(e, "served_by");
    dm_enc_str(e, dm_backend_name(served_by));
    dm_enc_map_end(e);
}

void reply_cursor(dm_enc *e, const char *raw)
{
    dm_enc_key(e, "next_cursor");
    if (raw == NULL) {
        dm_enc_null(e);
        return;
    }
    char enc[256];
    dm_b64url_encode(raw, strlen(raw), enc, sizeof enc);
    dm_enc_str(e, enc);
}

void reply_candles(dm_enc *e, const dm_candle *c, size_t n)
{
    dm_enc_arr(e, n);
    for (size_t i = 0; i < n; i++)
        dm_candle_encode(e, &c[i]);
    dm_enc_arr_end(e);
}


double serve_elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}
