/* Protocol Buffers <-> the one document tree (schemas/market_data.proto). A message is
 * turned into the tree JSON would give (field names are the JSON members; an absent field
 * is an absent member) and back, by walking protobuf-c's descriptors, so no message has
 * code of its own and validation stays where JSON's is.
 *
 * Hostile input: the wire is scanned before protobuf-c allocates anything for it (field
 * occurrences, repeated counts, unknown fields, nesting, NUL bytes in strings), since
 * protobuf-c sizes its arrays from the counts it reads. */
#ifndef DM_PB_H
#define DM_PB_H

#include <cjson/cJSON.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#include "doc.h"
#include "enc.h"

/* Items in one repeated field (a bulk's candles; more is too_large, as in JSON). */
#define DM_PB_REPEATED_MAX 10000
/* Field occurrences in one document, nested messages included: a bulk of 10,000 candles
 * of 9 fields is 100,000. */
#define DM_PB_FIELDS_MAX 200000
/* Unknown fields a payload may carry (they are skipped, as JSON's unknown members). */
#define DM_PB_UNKNOWN_MAX 256
/* Fields one message type may have (the scan counts per field on the stack). */
#define DM_PB_TYPE_FIELDS_MAX 32

/* ---- the contract's message types (pb_types.c) ---- */

/* The payload message of a market.* subject (Tick, Candle, CandleBatch, EconomicEvent);
 * NULL for any other subject. */
const ProtobufCMessageDescriptor *dm_pb_payload_type(const char *subject);
/* The request and reply messages of a dm.v1.* data subject; NULL for the others
 * (dm.v1.health and dm.v1.metrics answer JSON or msgpack only). */
const ProtobufCMessageDescriptor *dm_pb_request_type(const char *subject);
const ProtobufCMessageDescriptor *dm_pb_reply_type(const char *subject);
/* Every error reply: {code, message, field}, the members of JSON's "error" object. */
const ProtobufCMessageDescriptor *dm_pb_error_type(void);

/* ---- conversions (pb.c) ---- */

/* Protobuf bytes of `type` -> *out (caller deletes). strict: a field number the type does
 * not have is invalid_field (requests); otherwise it is skipped (payloads). Undecodable
 * bytes are invalid_protobuf; a repeated field over DM_PB_REPEATED_MAX items too_large. */
dm_code dm_pb_decode(const ProtobufCMessageDescriptor *type, const void *data, size_t len,
                     bool strict, cJSON **out, dm_err *err);
/* A document -> protobuf bytes of `type`, appended to out. null members are left absent.
 * A member the type does not have, or a value of the wrong type, is invalid_field. */
dm_code dm_pb_encode(const ProtobufCMessageDescriptor *type, const cJSON *doc, dm_buf *out,
                     dm_err *err);

/* A body of any of the three encodings -> the document tree: dm_doc_parse for JSON and
 * msgpack, dm_pb_decode with `type` for protobuf (NULL type: the subject has no protobuf
 * form, invalid_protobuf). Over max_len is too_large for all three. */
dm_code dm_pb_parse_body(const char *data, size_t len, dm_encoding enc, size_t max_len,
                         const ProtobufCMessageDescriptor *type, bool strict, cJSON **out,
                         dm_err *err);

/* ---- the wire scan (pb_scan.c) ---- */

/* Checks data against the limits above before protobuf-c reads it. DM_OK or the error
 * dm_pb_decode returns. */
dm_code dm_pb_scan(const ProtobufCMessageDescriptor *type, const unsigned char *data, size_t len,
                   bool strict, dm_err *err);

#endif
