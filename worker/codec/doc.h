/* Payload documents: JSON or msgpack bytes -> one cJSON tree, so validation is written
 * once. msgpack is converted with hard limits on depth and sizes (hostile input).
 * Protobuf reaches the same tree through codec/pb.h, which needs the message type. */
#ifndef DM_DOC_H
#define DM_DOC_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef enum { DM_ENC_JSON, DM_ENC_MSGPACK, DM_ENC_PROTOBUF } dm_encoding;

#define DM_CT_JSON "application/json"
#define DM_CT_MSGPACK "application/msgpack"
#define DM_CT_PROTOBUF "application/protobuf"
#define DM_DOC_MAX_DEPTH 16

static inline const char *dm_content_type(dm_encoding enc)
{
    return enc == DM_ENC_MSGPACK ? DM_CT_MSGPACK : enc == DM_ENC_PROTOBUF ? DM_CT_PROTOBUF : DM_CT_JSON;
}

/* content_type may be NULL (detect from the first byte). Protobuf is never guessed: its
 * first byte can be anything, so it needs the header. */
dm_encoding dm_doc_detect(const char *content_type, const char *data, size_t len);
/* The encoding an Accept header asks for (a value naming json, msgpack or protobuf, the
 * first one named when it lists several), or `dflt` when it names none of them. */
dm_encoding dm_doc_accept(const char *accept, dm_encoding dflt);
/* Parses into *out (caller deletes with cJSON_Delete). The root must be an object. */
dm_code dm_doc_parse(const char *data, size_t len, dm_encoding enc, size_t max_len, cJSON **out,
                     dm_err *err);
/* One msgpack value of any type (a reply, not a payload: the root need not be a map), with
 * dm_doc_parse's limits on depth, counts, key types and NUL bytes. */
dm_code dm_doc_parse_msgpack_value(const char *data, size_t len, cJSON **out, dm_err *err);

/* Typed field access. `required` false: a missing or null field leaves *present false.
 * Messages name the field ("bid must be a number, got string"). */
dm_code dm_get_str(const cJSON *obj, const char *name, char *buf, size_t cap, bool required,
                   bool *present, dm_err *err);
dm_code dm_get_num(const cJSON *obj, const char *name, double *out, bool required, bool *present,
                   dm_err *err);
dm_code dm_get_int(const cJSON *obj, const char *name, int64_t *out, int64_t min, int64_t max,
                   bool required, bool *present, dm_err *err);
/* Request dates: Unix ms integer, "YYYY-MM-DD" (00:00 UTC) or an ISO-8601 instant. */
dm_code dm_get_time(const cJSON *obj, const char *name, int64_t *out, bool required,
                    bool *present, dm_err *err);
bool dm_parse_iso_time(const char *s, int64_t *out_ms);
/* Days from 1970-01-01 to year y, month m (1..12), day d (1..31) of the proleptic
 * Gregorian calendar, for any year; negative before 1970. */
int64_t dm_days_from_civil(int64_t y, int m, int d);

#endif
