#include "request.h"

#include <stdlib.h>
#include <string.h>

#include "codec/doc.h"
#include "codec/enc.h"
#include "codec/pb.h"
#include "model/names.h"
#include "table.h"
#include "timeutil.h"

void reply_free(reply *r)
{
    cJSON_Delete(r->json);
    memset(r, 0, sizeof *r);
}

const cJSON *json_member(const cJSON *o, const char *k)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}

void print_json_line(const cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    if (s)
        printf("%s\n", s);
    else
        fprintf(stderr, "dmctl: out of memory\n");
    free(s);
}

/* ---- encoding / decoding ---------------------------------------------------- */

/* Protobuf dates are Unix ms: "2020-01-09" or an ISO instant typed for a *_date field
 * becomes the number it names (anything else is left for the encoder to refuse). */
static cJSON *dates_as_ms(const cJSON *tree)
{
    cJSON *copy = cJSON_Duplicate(tree, true);
    for (cJSON *c = copy ? copy->child : NULL, *next; c; c = next) {
        int64_t ms;
        next = c->next; /* c is freed when replaced */
        size_t n = c->string ? strlen(c->string) : 0;
        if (n > 5 && strcmp(c->string + n - 5, "_date") == 0 && cJSON_IsString(c) &&
            strlen(c->valuestring) <= 40 && dm_parse_iso_time(c->valuestring, &ms))
            cJSON_ReplaceItemInObjectCaseSensitive(copy, c->string, cJSON_CreateNumber((double)ms));
    }
    return copy;
}

static bool encode_protobuf(const request *q, dm_buf *out)
{
    const ProtobufCMessageDescriptor *type = dm_pb_request_type(q->subject);
    cJSON *doc = dates_as_ms(q->tree);
    dm_err err = {0};
    dm_code c = doc ? dm_pb_encode(type, doc, out, &err) : DM_E_INTERNAL;
    if (c != DM_OK)
        fprintf(stderr, "dmctl: cannot send this request as %s: %s\n", type->name,
                doc ? err.message : "out of memory");
    cJSON_Delete(doc);
    return c == DM_OK;
}

/* The typed text is sent untouched in JSON mode (even if invalid: tests use
 * that to probe the worker); a parsed tree is needed for msgpack, protobuf and paging. */
static bool encode_request(const request *q, dm_encoding enc, dm_buf *out)
{
    if (enc == DM_ENC_PROTOBUF)
        return encode_protobuf(q, out);
    if (q->msgpack) {
        dm_enc e;
        dm_enc_init(&e, DM_ENC_MSGPACK, out);
        return dm_enc_cjson(&e, q->tree);
    }
    if (!q->tree) {
        dm_buf_puts(out, q->text);
        return !out->oom;
    }
    char *s = cJSON_PrintUnformatted(q->tree);
    if (s)
        dm_buf_puts(out, s);
    free(s);
    return s && !out->oom;
}

static const char *header(natsMsg *m, const char *key)
{
    const char *v = NULL;
    if (natsMsgHeader_Get(m, key, &v) != NATS_OK)
        return NULL;
    return v;
}

/* NULL unless data[0..len) is exactly one msgpack value. */
static cJSON *msgpack_reply(const char *data, size_t len)
{
    cJSON *j = NULL;
    dm_err err;
    dm_doc_parse_msgpack_value(data, len, &j, &err);
    return j;
}

/* A protobuf reply as the tree JSON gives: the subject's reply message, or for a 4xx/5xx
 * Status an ErrorReply, which JSON wraps as {"error": {...}}. */
static cJSON *protobuf_reply(natsMsg *m, const char *subject)
{
    const char *st = header(m, "Status");
    bool failed = st && atoi(st) >= 400;
    const ProtobufCMessageDescriptor *type = failed ? dm_pb_error_type() : dm_pb_reply_type(subject);
    cJSON *j = NULL, *wrap = NULL;
    dm_err err;
    if (type == NULL || dm_pb_decode(type, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), false, &j,
                                     &err) != DM_OK)
        return NULL;
    if (!failed || (wrap = cJSON_CreateObject()) == NULL)
        return j;
    cJSON_AddItemToObject(wrap, "error", j);
    return wrap;
}

/* Trusts the reply's Content-Type; without one tries the request's format
 * first, then the other. */
static cJSON *decode_reply(natsMsg *m, const request *q)
{
    const char *data = natsMsg_GetData(m);
    size_t len = (size_t)natsMsg_GetDataLength(m);
    const char *ct = header(m, DM_HDR_CONTENT_TYPE);
    if (ct && strstr(ct, "protobuf"))
        return protobuf_reply(m, q->subject);
    if (!data || len == 0)
        return NULL;
    bool mp_first = ct ? strstr(ct, "msgpack") != NULL : q->msgpack;
    cJSON *j = mp_first ? msgpack_reply(data, len) : cJSON_ParseWithLength(data, len);
    if (!j && !ct)
        j = mp_first ? cJSON_ParseWithLength(data, len) : msgpack_reply(data, len);
    return j;
}

static void print_undecodable(natsMsg *m)
{
    int len = natsMsg_GetDataLength(m);
    fprintf(stderr, "dmctl: reply of %d bytes is neither JSON, msgpack nor the protobuf reply expected", len);
    if (len > 0)
        fprintf(stderr, ": %.200s", natsMsg_GetData(m));
    fputc('\n', stderr);
}

/* Request message with the encoded body and its Content-Type; NULL on error. */
static natsMsg *build_request(const request *q)
{
    dm_buf body;
    dm_buf_init(&body);
    natsMsg *req = NULL;
    /* Health, metrics (and subjects this version does not serve) have no protobuf request:
     * their body goes as JSON, and Accept still asks for protobuf. */
    bool pb = q->protobuf && dm_pb_request_type(q->subject) != NULL;
    dm_encoding enc = pb ? DM_ENC_PROTOBUF : q->msgpack ? DM_ENC_MSGPACK : DM_ENC_JSON;
    if (!encode_request(q, enc, &body)) {
        fprintf(stderr, "dmctl: cannot encode request\n");
        dm_buf_free(&body);
        return NULL;
    }
    natsStatus s = natsMsg_Create(&req, q->subject, NULL, body.data, (int)body.len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(req, DM_HDR_CONTENT_TYPE, dm_content_type(enc));
    if (s == NATS_OK)
        s = natsMsgHeader_Set(req, DM_HDR_ACCEPT, dm_content_type(q->protobuf ? DM_ENC_PROTOBUF : enc));
    if (s != NATS_OK) {
        dm_nats_error("cannot build request", s);
        natsMsg_Destroy(req);
        req = NULL;
    }
    dm_buf_free(&body);
    return req;
}

static bool report_request_error(natsStatus s, const request *q, const global_opts *g)
{
    if (s == NATS_OK)
        return false;
    if (s == NATS_NO_RESPONDERS)
        fprintf(stderr, "dmctl: no responders on %s: is a dm-worker running?\n", q->subject);
    else if (s == NATS_TIMEOUT)
        fprintf(stderr, "dmctl: no reply on %s within %lld ms\n", q->subject,
                (long long)g->timeout_ms);
    else
        dm_nats_error("request failed", s);
    return true;
}

static void copy_header(natsMsg *m, const char *key, char *out, size_t n)
{
    const char *v = header(m, key);
    snprintf(out, n, "%s", v ? v : "");
}

int request_send(natsConnection *nc, const global_opts *g, const request *q, reply *r)
{
    memset(r, 0, sizeof *r);
    natsMsg *req = build_request(q), *resp = NULL;
    if (!req)
        return EXIT_FAIL;
    double t0 = tu_now_ms();
    natsStatus s = natsConnection_RequestMsg(&resp, nc, req, g->timeout_ms);
    r->ms = tu_now_ms() - t0;
    natsMsg_Destroy(req);
    if (report_request_error(s, q, g))
        return EXIT_FAIL;
    copy_header(resp, "Status", r->status, sizeof r->status);
    copy_header(resp, "Served-By", r->served_by, sizeof r->served_by);
    r->json = decode_reply(resp, q);
    if (!r->json)
        print_undecodable(resp);
    natsMsg_Destroy(resp);
    return r->json ? EXIT_OK : EXIT_FAIL;
}

/* ---- error replies ------------------------------------------------------------ */

bool reply_report_error(const reply *r, bool json_mode, const char *(*option_of)(const char *field))
{
    const cJSON *err = json_member(r->json, "error");
    if (!err || cJSON_IsNull(err))
        return false;
    char code[64], msg[512], field[128];
    table_cell_text(json_member(err, "code"), code, sizeof code);
    const cJSON *m = json_member(err, "message");
    if (m)
        table_cell_text(m, msg, sizeof msg);
    else
        table_cell_text(err, msg, sizeof msg); /* {"error":"text"} */
    const cJSON *f = json_member(err, "field");
    field[0] = '\0';
    if (f && !cJSON_IsNull(f))
        table_cell_text(f, field, sizeof field);
    const char *option = field[0] && option_of ? option_of(field) : NULL;
    if (json_mode)
        print_json_line(r->json);
    fflush(stdout);
    fprintf(stderr, "error %s (%s): %s%s%s%s", code, r->status[0] ? r->status : "-", msg,
            field[0] ? " [" : "", field, field[0] ? "]" : "");
    if (option)
        fprintf(stderr, " (option %s)", option);
    fputc('\n', stderr);
    return true;
}
