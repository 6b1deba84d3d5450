/* The protobuf wire checked before protobuf-c reads it. protobuf-c counts the items of
 * every repeated field and allocates them, and keeps a record per field occurrence and a
 * copy of every unknown field: two bytes per empty candle cost a 100-byte struct, so an
 * 8 MB message could ask for gigabytes. Every limit here is counted, not allocated. */
#include "pb.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const unsigned char *p;
    size_t len, at;
} wire;

typedef struct {
    bool strict;
    size_t fields, unknown;
    dm_err *err;
} scan_ctx;

/* false when the varint runs past the end or beyond 10 bytes. */
static bool read_varint(wire *w, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; shift < 70 && w->at < w->len; shift += 7) {
        unsigned char b = w->p[w->at++];
        *v |= (uint64_t)(b & 0x7f) << shift; /* the 10th byte's high bits fall off */
        if (!(b & 0x80))
            return true;
    }
    return false;
}

static dm_code bad(scan_ctx *c, const char *what, uint64_t number)
{
    return dm_fail(c->err, DM_E_INVALID_PROTOBUF, "", "payload is not valid protobuf (%s, field %llu)", what,
                   (unsigned long long)number);
}

/* The wire type a value of this field type travels as. */
static unsigned wire_type_of(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE: return 1;
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT: return 5;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE: return 2;
    default: return 0;
    }
}

/* Items in a packed run of len bytes; SIZE_MAX when the length does not fit the type. */
static size_t packed_items(unsigned wt, const unsigned char *p, size_t len)
{
    if (wt == 1 || wt == 5) {
        size_t w = wt == 1 ? 8 : 4;
        return len % w ? SIZE_MAX : len / w;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += !(p[i] & 0x80);
    return len && (p[len - 1] & 0x80) ? SIZE_MAX : n;
}

/* The field list a person can use: "symbol = 1, timeframe = 2, ...". */
static void field_list(const ProtobufCMessageDescriptor *d, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < d->n_fields && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%s = %u", i ? ", " : "", d->fields[i].name,
                              d->fields[i].id);
}

static dm_code unknown_field(scan_ctx *c, const ProtobufCMessageDescriptor *d, uint64_t number)
{
    if (c->strict) {
        char known[200], field[24];
        field_list(d, known, sizeof known);
        snprintf(field, sizeof field, "%llu", (unsigned long long)number);
        return dm_fail(c->err, DM_E_INVALID_FIELD, field,
                       "unknown field number %llu in %s (this version knows: %s)", (unsigned long long)number,
                       d->short_name, known);
    }
    if (++c->unknown > DM_PB_UNKNOWN_MAX)
        return dm_fail(c->err, DM_E_INVALID_PROTOBUF, "", "more than %d unknown fields", DM_PB_UNKNOWN_MAX);
    return DM_OK;
}

/* The value after a key of wire type wt: its bytes [*start, w->at). */
static bool skip_value(wire *w, unsigned wt, size_t *start)
{
    uint64_t v;
    if (wt == 0)
        return (*start = w->at, read_varint(w, &v));
    if (wt == 1 || wt == 5) {
        size_t n = wt == 1 ? 8 : 4;
        *start = w->at;
        return w->len - w->at >= n && (w->at += n, true);
    }
    if (wt != 2 || !read_varint(w, &v) || v > w->len - w->at)
        return false;
    *start = w->at;
    w->at += (size_t)v;
    return true;
}

static dm_code scan_message(scan_ctx *c, const ProtobufCMessageDescriptor *d, wire w, int depth);

/* One known field's value: its wire type, its item count, its string or its message. */
static dm_code scan_value(scan_ctx *c, const ProtobufCFieldDescriptor *f, unsigned wt, const unsigned char *v,
                          size_t len, size_t *items, int depth)
{
    unsigned want = wire_type_of(f->type);
    *items = 1;
    if (wt != want) {
        bool packed = f->label == PROTOBUF_C_LABEL_REPEATED && wt == 2 && want != 2;
        if (!packed)
            return bad(c, "a value of the wrong wire type", f->id);
        *items = packed_items(want, v, len);
        return *items == SIZE_MAX ? bad(c, "a packed run cut short", f->id) : DM_OK;
    }
    if (f->type == PROTOBUF_C_TYPE_STRING && len && memchr(v, '\0', len))
        return dm_fail(c->err, DM_E_INVALID_PROTOBUF, "",
                       "payload is not valid protobuf (%s holds a NUL byte, which would cut it short)", f->name);
    if (f->type == PROTOBUF_C_TYPE_MESSAGE)
        return scan_message(c, f->descriptor, (wire){v, len, 0}, depth + 1);
    return DM_OK;
}

static dm_code too_many(scan_ctx *c, const ProtobufCFieldDescriptor *f, size_t n)
{
    return dm_fail(c->err, DM_E_TOO_LARGE, f->name, "%s holds %zu items or more, at most %d per message%s",
                   f->name, n, DM_PB_REPEATED_MAX, strcmp(f->name, "candles") == 0 ? " (split the batch)" : "");
}

static dm_code scan_message(scan_ctx *c, const ProtobufCMessageDescriptor *d, wire w, int depth)
{
    size_t counts[DM_PB_TYPE_FIELDS_MAX] = {0};
    if (depth > DM_DOC_MAX_DEPTH || d->n_fields > DM_PB_TYPE_FIELDS_MAX)
        return dm_fail(c->err, DM_E_INVALID_PROTOBUF, "", "protobuf nesting deeper than %d", DM_DOC_MAX_DEPTH);
    while (w.at < w.len) {
        uint64_t key;
        size_t start, items;
        if (!read_varint(&w, &key) || key >> 3 == 0 || key >> 3 > UINT32_MAX)
            return bad(c, "a broken field key", key >> 3);
        unsigned wt = (unsigned)(key & 7);
        if (wt == 3 || wt == 4)
            return bad(c, "groups are not part of the contract", key >> 3);
        if (!skip_value(&w, wt, &start))
            return bad(c, "a value cut short or of an unknown wire type", key >> 3);
        if (++c->fields > DM_PB_FIELDS_MAX)
            return dm_fail(c->err, DM_E_TOO_LARGE, "", "more than %d protobuf fields in one message", DM_PB_FIELDS_MAX);
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3));
        dm_code code = f ? scan_value(c, f, wt, w.p + start, w.at - start, &items, depth)
                         : unknown_field(c, d, key >> 3);
        if (code)
            return code;
        size_t k = f ? (size_t)(f - d->fields) : 0;
        if (f && f->label == PROTOBUF_C_LABEL_REPEATED && (counts[k] += items) > DM_PB_REPEATED_MAX)
            return too_many(c, f, counts[k]);
    }
    return DM_OK;
}

dm_code dm_pb_scan(const ProtobufCMessageDescriptor *type, const unsigned char *data, size_t len,
                   bool strict, dm_err *err)
{
    scan_ctx c = {.strict = strict, .err = err};
    return scan_message(&c, type, (wire){data, len, 0}, 0);
}
