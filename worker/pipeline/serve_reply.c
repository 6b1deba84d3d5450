/* Reply framing shared by the operations: data replies and the error shape of contract v1. */
#include "serve_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/models.h"
#include "codec/pb.h"
#include "util/b64.h"
#include "util/log.h"

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

/* The msgpack body as `type`; an error body is its "error" member. */
static dm_code convert(dm_reply *out, const ProtobufCMessageDescriptor *type, dm_buf *pb, dm_err *err)
{
    cJSON *doc = NULL;
    dm_code c = dm_doc_parse_msgpack_value(out->body.data, out->body.len, &doc, err);
    if (c == DM_OK)
        c = dm_pb_encode(type, out->status >= 400 ? cJSON_GetObjectItemCaseSensitive(doc, "error") : doc, pb, err);
    cJSON_Delete(doc);
    return c;
}

dm_code reply_as_protobuf(dm_reply *out, const char *subject, dm_err *err)
{
    dm_buf pb;
    dm_buf_init(&pb);
    const ProtobufCMessageDescriptor *type = out->status >= 400 ? dm_pb_error_type() : dm_pb_reply_type(subject);
    dm_code c = type ? convert(out, type, &pb, err)
                     : dm_fail(err, DM_E_INTERNAL, "", "%.80s has no protobuf reply", subject);
    if (c != DM_OK) {
        /* A reply member the schema lacks is this build's mistake, never the client's. */
        char why[200];
        snprintf(why, sizeof why, "%.199s", err->message);
        DM_WARN("serve", "%s: reply not converted to protobuf: %s", subject, why);
        dm_fail(err, DM_E_INTERNAL, "", "the reply does not fit schemas/market_data.proto: %s", why);
        dm_buf_reset(&pb);
        out->enc = DM_ENC_MSGPACK;
        reply_error(out, err);
        if (convert(out, dm_pb_error_type(), &pb, err) != DM_OK)
            pb.oom = true; /* only memory can fail an ErrorReply */
    }
    dm_buf body = out->body; /* the converted body replaces it; no copy of a large page */
    out->body = pb;
    dm_buf_free(&body);
    out->enc = DM_ENC_PROTOBUF;
    return c;
}

double serve_elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}
