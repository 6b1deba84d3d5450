/* Protobuf messages <-> document trees by protobuf-c's descriptors (codec/pb.h). A field
 * is present when its has_ flag is set, its pointer is not NULL or its repeated count is
 * not zero: that is JSON's "member present and not null". Messages built here come from
 * malloc, so protobuf_c_message_free_unpacked (the system allocator) frees them too. */
#include "pb.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MEMBER(m, off) ((char *)(m) + (off))

/* A repeated message whose one field is repeated stands for JSON's list of lists
 * (GraphReply.clusters: [["EUR/USD", "GBP/USD"], ...]). */
static bool is_list(const ProtobufCFieldDescriptor *f)
{
    const ProtobufCMessageDescriptor *d = f->descriptor;
    return f->type == PROTOBUF_C_TYPE_MESSAGE && d->n_fields == 1 &&
           d->fields[0].label == PROTOBUF_C_LABEL_REPEATED;
}

static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT: return 4;
    case PROTOBUF_C_TYPE_ENUM: return sizeof(int);
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    default: return 8;
    }
}

static bool present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)MEMBER(m, f->quantifier_offset) == f->id;
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *)MEMBER(m, f->quantifier_offset) > 0;
    if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE)
        return *(void **)MEMBER(m, f->offset) != NULL;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL)
        return *(const protobuf_c_boolean *)MEMBER(m, f->quantifier_offset);
    return true;
}

/* ---- protobuf -> tree ------------------------------------------------------------------ */

static cJSON *message_to_json(const ProtobufCMessage *m, int depth, dm_err *err);
static cJSON *repeated_to_json(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, int depth,
                               dm_err *err);

static cJSON *value_to_json(const ProtobufCFieldDescriptor *f, const void *v, int depth, dm_err *err)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: return cJSON_CreateNumber(*(const int32_t *)v);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: return cJSON_CreateNumber(*(const uint32_t *)v);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: return cJSON_CreateNumber((double)*(const int64_t *)v);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return cJSON_CreateNumber((double)*(const uint64_t *)v);
    case PROTOBUF_C_TYPE_FLOAT: return cJSON_CreateNumber(*(const float *)v);
    case PROTOBUF_C_TYPE_DOUBLE: return cJSON_CreateNumber(*(const double *)v);
    case PROTOBUF_C_TYPE_BOOL: return cJSON_CreateBool(*(const protobuf_c_boolean *)v);
    case PROTOBUF_C_TYPE_STRING: return cJSON_CreateString(*(char *const *)v);
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)v);
        return ev ? cJSON_CreateString(ev->name) : cJSON_CreateNumber(*(const int *)v);
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)v;
        if (f->label == PROTOBUF_C_LABEL_REPEATED && is_list(f))
            return repeated_to_json(sub, &sub->descriptor->fields[0], depth + 1, err);
        return message_to_json(sub, depth + 1, err);
    }
    default:
        dm_fail(err, DM_E_INVALID_PROTOBUF, f->name, "%s: bytes fields are not part of the contract", f->name);
        return NULL;
    }
}

static cJSON *repeated_to_json(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, int depth,
                               dm_err *err)
{
    size_t n = *(const size_t *)MEMBER(m, f->quantifier_offset), sz = elem_size(f->type);
    const char *items = *(char *const *)MEMBER(m, f->offset);
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < n; i++) {
        cJSON *v = value_to_json(f, items + i * sz, depth, err);
        if (v == NULL) {
            cJSON_Delete(arr);
            return NULL;
        }
        cJSON_AddItemToArray(arr, v);
    }
    return arr;
}

static cJSON *message_to_json(const ProtobufCMessage *m, int depth, dm_err *err)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (depth > DM_DOC_MAX_DEPTH) {
        dm_fail(err, DM_E_INVALID_PROTOBUF, "", "protobuf nesting deeper than %d", DM_DOC_MAX_DEPTH);
        return NULL;
    }
    cJSON *obj = cJSON_CreateObject();
    for (unsigned i = 0; obj && i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!present(m, f))
            continue;
        cJSON *v = f->label == PROTOBUF_C_LABEL_REPEATED ? repeated_to_json(m, f, depth, err)
                                                         : value_to_json(f, MEMBER(m, f->offset), depth, err);
        if (v == NULL) {
            cJSON_Delete(obj);
            return NULL;
        }
        cJSON_AddItemToObject(obj, f->name, v);
    }
    return obj;
}

dm_code dm_pb_decode(const ProtobufCMessageDescriptor *type, const void *data, size_t len,
                     bool strict, cJSON **out, dm_err *err)
{
    *out = NULL;
    dm_code c = dm_pb_scan(type, data, len, strict, err);
    if (c)
        return c;
    ProtobufCMessage *m = protobuf_c_message_unpack(type, NULL, len, data);
    if (m == NULL)
        return dm_fail(err, DM_E_INVALID_PROTOBUF, "", "payload is not a valid protobuf %s", type->name);
    err->code = DM_OK;
    *out = message_to_json(m, 0, err);
    protobuf_c_message_free_unpacked(m, NULL);
    if (*out == NULL)
        return err->code ? err->code : dm_fail(err, DM_E_INTERNAL, "", "out of memory");
    return DM_OK;
}

dm_code dm_pb_parse_body(const char *data, size_t len, dm_encoding enc, size_t max_len,
                         const ProtobufCMessageDescriptor *type, bool strict, cJSON **out,
                         dm_err *err)
{
    *out = NULL;
    if (enc != DM_ENC_PROTOBUF)
        return dm_doc_parse(data, len, enc, max_len, out, err);
    if (len > max_len)
        return dm_fail(err, DM_E_TOO_LARGE, "", "payload of %zu bytes exceeds the limit of %zu bytes",
                       len, max_len);
    if (type == NULL)
        return dm_fail(err, DM_E_INVALID_PROTOBUF, "",
                       "this subject has no protobuf form (schemas/market_data.proto): send JSON or msgpack");
    return dm_pb_decode(type, data, len, strict, out, err);
}

/* ---- tree -> protobuf ------------------------------------------------------------------ */

static ProtobufCMessage *json_to_message(const ProtobufCMessageDescriptor *d, const cJSON *obj, int depth,
                                         dm_err *err);
static bool set_repeated(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, const cJSON *arr, int depth,
                         dm_err *err);

static bool wrong(const ProtobufCFieldDescriptor *f, const char *want, dm_err *err)
{
    dm_fail(err, DM_E_INVALID_FIELD, f->name, "%s must be %s", f->name, want);
    return false;
}

static bool out_of_memory(dm_err *err)
{
    dm_fail(err, DM_E_INTERNAL, "", "out of memory");
    return false;
}

/* An integer in [lo, hi] given as a JSON number with no fractional part. */
static bool whole(const cJSON *j, double lo, double hi, double *out)
{
    if (!cJSON_IsNumber(j) || j->valuedouble != floor(j->valuedouble) || j->valuedouble < lo ||
        j->valuedouble > hi)
        return false;
    *out = j->valuedouble;
    return true;
}

static bool set_number(const ProtobufCFieldDescriptor *f, void *slot, const cJSON *j, dm_err *err)
{
    double v;
    switch (f->type) {
    case PROTOBUF_C_TYPE_DOUBLE:
        return cJSON_IsNumber(j) ? (*(double *)slot = j->valuedouble, true) : wrong(f, "a number", err);
    case PROTOBUF_C_TYPE_FLOAT:
        return cJSON_IsNumber(j) ? (*(float *)slot = (float)j->valuedouble, true) : wrong(f, "a number", err);
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return whole(j, INT32_MIN, INT32_MAX, &v) ? (*(int32_t *)slot = (int32_t)v, true)
                                                  : wrong(f, "a 32-bit integer", err);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return whole(j, 0, UINT32_MAX, &v) ? (*(uint32_t *)slot = (uint32_t)v, true)
                                           : wrong(f, "an unsigned 32-bit integer", err);
    /* 64 bits: a tree's numbers are doubles, and the largest 64-bit integers read as 2^64
     * or 2^63, one past the type's end; they stand for its largest value. */
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (!whole(j, 0, 18446744073709551616.0, &v))
            return wrong(f, "an unsigned integer", err);
        *(uint64_t *)slot = v >= 18446744073709551616.0 ? UINT64_MAX : (uint64_t)v;
        return true;
    default:
        if (!whole(j, -9223372036854775808.0, 9223372036854775808.0, &v))
            return wrong(f, "an integer", err);
        *(int64_t *)slot = v >= 9223372036854775808.0 ? INT64_MAX : (int64_t)v;
        return true;
    }
}

static bool set_value(const ProtobufCFieldDescriptor *f, void *slot, const cJSON *j, int depth, dm_err *err)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_BOOL:
        return cJSON_IsBool(j) ? (*(protobuf_c_boolean *)slot = cJSON_IsTrue(j), true) : wrong(f, "a boolean", err);
    case PROTOBUF_C_TYPE_STRING:
        if (!cJSON_IsString(j))
            return wrong(f, "a string", err);
        *(char **)slot = strdup(j->valuestring);
        return *(char **)slot != NULL || out_of_memory(err);
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *ev =
            cJSON_IsString(j) ? protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, j->valuestring) : NULL;
        return ev ? (*(int *)slot = ev->value, true) : wrong(f, "one of the enum's names", err);
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *d = f->descriptor;
        ProtobufCMessage *sub = NULL;
        if (f->label == PROTOBUF_C_LABEL_REPEATED && is_list(f) && cJSON_IsArray(j)) {
            sub = json_to_message(d, NULL, depth + 1, err);
            if (sub && !set_repeated(sub, &d->fields[0], j, depth + 1, err)) {
                protobuf_c_message_free_unpacked(sub, NULL);
                sub = NULL;
            }
        } else {
            sub = json_to_message(d, j, depth + 1, err);
        }
        return (*(ProtobufCMessage **)slot = sub) != NULL;
    }
    case PROTOBUF_C_TYPE_BYTES: return wrong(f, "absent (bytes fields are not part of the contract)", err);
    default: return set_number(f, slot, j, err);
    }
}

static bool set_repeated(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, const cJSON *arr, int depth,
                         dm_err *err)
{
    if (!cJSON_IsArray(arr))
        return wrong(f, "an array", err);
    size_t n = (size_t)cJSON_GetArraySize(arr), sz = elem_size(f->type), i = 0;
    if (n > DM_PB_REPEATED_MAX) {
        dm_fail(err, DM_E_TOO_LARGE, f->name, "%s holds %zu items, at most %d", f->name, n, DM_PB_REPEATED_MAX);
        return false;
    }
    char *items = n ? calloc(n, sz) : NULL;
    if (n && items == NULL)
        return out_of_memory(err);
    /* Counted before it is filled: a failure half way frees what was set (calloc'd NULLs
     * are freed as nothing). */
    *(char **)MEMBER(m, f->offset) = items;
    *(size_t *)MEMBER(m, f->quantifier_offset) = n;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (cJSON_IsNull(it))
            return wrong(f, "an array without nulls", err);
        if (!set_value(f, items + i++ * sz, it, depth, err))
            return false;
    }
    return true;
}

static void mark_present(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        *(uint32_t *)MEMBER(m, f->quantifier_offset) = f->id;
    else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
             f->type != PROTOBUF_C_TYPE_MESSAGE)
        *(protobuf_c_boolean *)MEMBER(m, f->quantifier_offset) = 1;
}

/* One member into m; false with err set. seen: the fields already set (a member given
 * twice would leak the first value). */
static bool set_member(ProtobufCMessage *m, const cJSON *c, uint64_t *seen, int depth, dm_err *err)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const ProtobufCFieldDescriptor *f =
        c->string ? protobuf_c_message_descriptor_get_field_by_name(d, c->string) : NULL;
    if (f == NULL) {
        const char *name = c->string ? c->string : "(a member without a name)";
        dm_fail(err, DM_E_INVALID_FIELD, name, "%.60s is not a field of %s", name, d->name);
        return false;
    }
    uint64_t bit = (uint64_t)1 << (f - d->fields);
    if (*seen & bit) {
        dm_fail(err, DM_E_INVALID_FIELD, f->name, "%s is given twice", f->name);
        return false;
    }
    *seen |= bit;
    if (cJSON_IsNull(c))
        return true;
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return set_repeated(m, f, c, depth, err);
    if (!set_value(f, MEMBER(m, f->offset), c, depth, err))
        return false;
    mark_present(m, f);
    return true;
}

/* obj NULL: an empty message. */
static ProtobufCMessage *json_to_message(const ProtobufCMessageDescriptor *d, const cJSON *obj, int depth,
                                         dm_err *err)
{
    if (depth > DM_DOC_MAX_DEPTH || d->n_fields > DM_PB_TYPE_FIELDS_MAX) {
        dm_fail(err, DM_E_INVALID_FIELD, "", "nesting deeper than %d", DM_DOC_MAX_DEPTH);
        return NULL;
    }
    if (obj && !cJSON_IsObject(obj)) {
        dm_fail(err, DM_E_INVALID_FIELD, "", "a %s must be an object", d->name);
        return NULL;
    }
    ProtobufCMessage *m = calloc(1, d->sizeof_message);
    if (m == NULL) {
        out_of_memory(err);
        return NULL;
    }
    d->message_init(m);
    uint64_t seen = 0;
    for (const cJSON *c = obj ? obj->child : NULL; c; c = c->next) {
        if (!set_member(m, c, &seen, depth, err)) {
            protobuf_c_message_free_unpacked(m, NULL);
            return NULL;
        }
    }
    return m;
}

typedef struct {
    ProtobufCBuffer base;
    dm_buf *out;
} buf_sink;

static void sink_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
    dm_buf_put(((buf_sink *)b)->out, data, len);
}

dm_code dm_pb_encode(const ProtobufCMessageDescriptor *type, const cJSON *doc, dm_buf *out,
                     dm_err *err)
{
    err->code = DM_OK;
    ProtobufCMessage *m = json_to_message(type, doc, 0, err);
    if (m == NULL)
        return err->code ? err->code : dm_fail(err, DM_E_INTERNAL, "", "out of memory");
    buf_sink sink = {.base = {.append = sink_append}, .out = out};
    protobuf_c_message_pack_to_buffer(m, &sink.base);
    protobuf_c_message_free_unpacked(m, NULL);
    return out->oom ? dm_fail(err, DM_E_INTERNAL, "", "out of memory") : DM_OK;
}
