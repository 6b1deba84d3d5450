#include "doc.h"

#include <ctype.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

dm_encoding dm_doc_detect(const char *content_type, const char *data, size_t len)
{
    if (content_type) {
        if (strstr(content_type, "protobuf"))
            return DM_ENC_PROTOBUF;
        if (strstr(content_type, "msgpack"))
            return DM_ENC_MSGPACK;
        if (strstr(content_type, "json"))
            return DM_ENC_JSON;
    }
    /* A msgpack map starts with 0x80-0x8f, 0xde or 0xdf; JSON with '{' or whitespace. */
    if (len > 0) {
        unsigned char c = (unsigned char)data[0];
        if ((c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf)
            return DM_ENC_MSGPACK;
    }
    return DM_ENC_JSON;
}

dm_encoding dm_doc_accept(const char *accept, dm_encoding dflt)
{
    static const struct { const char *name; dm_encoding enc; } KNOWN[] = {
        {"json", DM_ENC_JSON}, {"msgpack", DM_ENC_MSGPACK}, {"protobuf", DM_ENC_PROTOBUF}};
    const char *first = NULL;
    dm_encoding enc = dflt;
    for (size_t i = 0; accept && i < sizeof KNOWN / sizeof *KNOWN; i++) {
        const char *at = strstr(accept, KNOWN[i].name);
        if (at && (first == NULL || at < first)) {
            first = at;
            enc = KNOWN[i].enc;
        }
    }
    return enc;
}

static cJSON *mp_to_json(const msgpack_object *o, int depth, dm_err *err);

static cJSON *mp_map(const msgpack_object_map *m, int depth, dm_err *err)
{
    cJSON *obj = cJSON_CreateObject();
    for (uint32_t i = 0; obj && i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key;
        /* msgpack-c gives an empty string a NULL pointer, which memchr may not be given. */
        if (k->type != MSGPACK_OBJECT_STR || k->via.str.size > 256 ||
            (k->via.str.size && memchr(k->via.str.ptr, '\0', k->via.str.size) != NULL)) {
            dm_fail(err, DM_E_INVALID_MSGPACK, "",
                    "msgpack map keys must be strings of at most 256 bytes without NUL");
            cJSON_Delete(obj);
            return NULL;
        }
        char key[257];
        if (k->via.str.size)
            memcpy(key, k->via.str.ptr, k->via.str.size);
        key[k->via.str.size] = '\0';
        cJSON *v = mp_to_json(&m->ptr[i].val, depth + 1, err);
        if (v == NULL) {
            cJSON_Delete(obj);
            return NULL;
        }
        cJSON_AddItemToObject(obj, key, v);
    }
    return obj;
}

static cJSON *mp_to_json(const msgpack_object *o, int depth, dm_err *err)
{
    if (depth > DM_DOC_MAX_DEPTH) {
        dm_fail(err, DM_E_INVALID_MSGPACK, "", "msgpack nesting deeper than %d", DM_DOC_MAX_DEPTH);
        return NULL;
    }
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return cJSON_CreateNull();
    case MSGPACK_OBJECT_BOOLEAN: return cJSON_CreateBool(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return cJSON_CreateNumber((double)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return cJSON_CreateNumber((double)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return cJSON_CreateNumber(o->via.f64);
    case MSGPACK_OBJECT_STR: {
        char *s = malloc(o->via.str.size + 1);
        if (s == NULL)
            return NULL;
        if (o->via.str.size) /* empty: the pointer may be NULL, as for keys */
            memcpy(s, o->via.str.ptr, o->via.str.size);
        s[o->via.str.size] = '\0';
        /* An embedded NUL would silently truncate: refuse it. */
        cJSON *r = strlen(s) == o->via.str.size ? cJSON_CreateString(s) : NULL;
        if (r == NULL)
            dm_fail(err, DM_E_INVALID_MSGPACK, "", "msgpack string contains a NUL byte");
        free(s);
        return r;
    }
    case MSGPACK_OBJECT_ARRAY: {
        cJSON *arr = cJSON_CreateArray();
        for (uint32_t i = 0; arr && i < o->via.array.size; i++) {
            cJSON *v = mp_to_json(&o->via.array.ptr[i], depth + 1, err);
            if (v == NULL) {
                cJSON_Delete(arr);
                return NULL;
            }
            cJSON_AddItemToArray(arr, v);
        }
        return arr;
    }
    case MSGPACK_OBJECT_MAP: return mp_map(&o->via.map, depth, err);
    default:
        dm_fail(err, DM_E_INVALID_MSGPACK, "", "msgpack binary and extension types are not accepted");
        return NULL;
    }
}

/* Headers 0xc0..0xdf: a payload of `width` bytes (FIX), a length of `width` bytes then
 * that many bytes plus `extra` (LEN; ext carries a type byte), or a count of `width`
 * bytes of values (ARR) or of key/value pairs (MAP). */
enum { MP_FIX, MP_LEN, MP_ARR, MP_MAP };
static const struct { unsigned char kind, width, extra; } MP_HEAD[32] = {
    [0x04] = {MP_LEN, 1, 0}, {MP_LEN, 2, 0}, {MP_LEN, 4, 0},               /* bin */
    {MP_LEN, 1, 1}, {MP_LEN, 2, 1}, {MP_LEN, 4, 1},                        /* ext */
    {MP_FIX, 4, 0}, {MP_FIX, 8, 0},                                        /* float */
    {MP_FIX, 1, 0}, {MP_FIX, 2, 0}, {MP_FIX, 4, 0}, {MP_FIX, 8, 0},        /* uint */
    {MP_FIX, 1, 0}, {MP_FIX, 2, 0}, {MP_FIX, 4, 0}, {MP_FIX, 8, 0},        /* int */
    {MP_FIX, 2, 0}, {MP_FIX, 3, 0}, {MP_FIX, 5, 0}, {MP_FIX, 9, 0}, {MP_FIX, 17, 0}, /* fixext */
    {MP_LEN, 1, 0}, {MP_LEN, 2, 0}, {MP_LEN, 4, 0},                        /* str */
    {MP_ARR, 2, 0}, {MP_ARR, 4, 0}, {MP_MAP, 2, 0}, {MP_MAP, 4, 0},
};

/* msgpack-c allocates a container's elements when it reads the header, before it knows
 * they exist: five bytes announcing 2^32 entries cost a 64 GB allocation. Every value
 * takes at least one byte, so the values announced and not yet read can never outnumber
 * the bytes left. Truncation and bad headers are left to the unpacker to report. */
static bool mp_counts_fit(const unsigned char *p, size_t len)
{
    uint64_t pending = 1; /* the root */
    size_t i = 0;
    while (pending > 0 && i < len) {
        unsigned c = p[i++];
        uint64_t n = 0, skip = 0;
        pending--;
        if (c >= 0x80 && c <= 0x8f) {
            n = 2 * (c & 0x0fu);
        } else if (c >= 0x90 && c <= 0x9f) {
            n = c & 0x0fu;
        } else if (c >= 0xa0 && c <= 0xbf) {
            skip = c & 0x1fu;
        } else if (c >= 0xc0 && c <= 0xdf) {
            unsigned kind = MP_HEAD[c - 0xc0].kind, w = MP_HEAD[c - 0xc0].width;
            uint64_t v = 0;
            if (kind == MP_FIX) {
                skip = w;
            } else if (len - i < w) {
                return true;
            } else {
                for (unsigned k = 0; k < w; k++)
                    v = v << 8 | p[i++];
                skip = kind == MP_LEN ? v + MP_HEAD[c - 0xc0].extra : 0;
                n = kind == MP_MAP ? 2 * v : kind == MP_ARR ? v : 0;
            }
        }
        if (skip > len - i)
            return true;
        i += skip;
        pending += n;
        if (pending > len - i)
            return false;
    }
    return true;
}

/* map_only: a payload or request, whose root must be a map; otherwise any value. */
static dm_code parse_msgpack(const char *data, size_t len, bool map_only, cJSON **out,
                             dm_err *err)
{
    if (!mp_counts_fit((const unsigned char *)data, len))
        return dm_fail(err, DM_E_INVALID_MSGPACK, "",
                       "payload is not valid msgpack (a count exceeds the bytes that follow)");
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    msgpack_unpack_return r = msgpack_unpack_next(&up, data, len, &off);
    dm_code code = DM_OK;
    if (r != MSGPACK_UNPACK_SUCCESS || off != len) {
        code = dm_fail(err, DM_E_INVALID_MSGPACK, "",
                       off != len && r == MSGPACK_UNPACK_SUCCESS
                           ? "trailing bytes after the msgpack document"
                           : "payload is not valid msgpack");
    } else if (map_only && up.data.type != MSGPACK_OBJECT_MAP) {
        code = dm_fail(err, DM_E_INVALID_MSGPACK, "", "payload must be a msgpack map");
    } else {
        err->code = DM_OK;
        *out = mp_to_json(&up.data, 0, err);
        if (*out == NULL)
            code = err->code ? err->code : dm_fail(err, DM_E_INTERNAL, "", "out of memory");
    }
    msgpack_unpacked_destroy(&up);
    return code;
}

/* cJSON turns \u0000 into a NUL that silently ends the string: "EURUSD\u0000x" would read
 * as "EURUSD", and an event_name would be stored cut short. msgpack strings holding a NUL
 * are refused; JSON ones are too. */
static bool json_has_nul_escape(const char *p, size_t len)
{
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        if (!in_string) {
            in_string = p[i] == '"';
        } else if (p[i] == '\\') {
            if (len - i > 5 && p[i + 1] == 'u' && memcmp(p + i + 2, "0000", 4) == 0)
                return true;
            i++; /* the escaped character */
        } else if (p[i] == '"') {
            in_string = false;
        }
    }
    return false;
}

dm_code dm_doc_parse(const char *data, size_t len, dm_encoding enc, size_t max_len, cJSON **out,
                     dm_err *err)
{
    *out = NULL;
    if (len > max_len)
        return dm_fail(err, DM_E_TOO_LARGE, "", "payload of %zu bytes exceeds the limit of %zu bytes",
                       len, max_len);
    if (enc == DM_ENC_MSGPACK)
        return parse_msgpack(data, len, true, out, err);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(data, len, &end, 0);
    if (root == NULL)
        return dm_fail(err, DM_E_INVALID_JSON, "", "payload is not valid JSON (near byte %zu)",
                       end ? (size_t)(end - data) : (size_t)0);
    /* Only whitespace (or a NUL some clients append) may follow the document. */
    for (const char *p = end; p < data + len; p++) {
        if (!isspace((unsigned char)*p) && *p != '\0') {
            cJSON_Delete(root);
            return dm_fail(err, DM_E_INVALID_JSON, "", "trailing characters after the JSON document");
        }
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return dm_fail(err, DM_E_INVALID_JSON, "", "payload must be a JSON object");
    }
    if (json_has_nul_escape(data, len)) {
        cJSON_Delete(root);
        return dm_fail(err, DM_E_INVALID_JSON, "",
                       "a JSON string holds \\u0000 (NUL), which would cut it short");
    }
    *out = root;
    return DM_OK;
}

dm_code dm_doc_parse_msgpack_value(const char *data, size_t len, cJSON **out, dm_err *err)
{
    *out = NULL;
    return parse_msgpack(data, len, false, out, err);
}

static const char *type_name(const cJSON *v)
{
    if (cJSON_IsString(v)) return "string";
    if (cJSON_IsNumber(v)) return "number";
    if (cJSON_IsBool(v)) return "boolean";
    if (cJSON_IsArray(v)) return "array";
    if (cJSON_IsObject(v)) return "object";
    return "null";
}

/* Returns the item, NULL when absent or null (then sets *present=false or fails). */
static const cJSON *field(const cJSON *obj, const char *name, bool required, bool *present,
                          dm_code *code, dm_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    *code = DM_OK;
    if (present)
        *present = v != NULL && !cJSON_IsNull(v);
    if (v == NULL || cJSON_IsNull(v)) {
        if (required)
            *code = dm_fail(err, DM_E_MISSING_FIELD, name, "%s is required", name);
        return NULL;
    }
    return v;
}

dm_code dm_get_str(const cJSON *obj, const char *name, char *buf, size_t cap, bool required,
                   bool *present, dm_err *err)
{
    dm_code c;
    const cJSON *v = field(obj, name, required, present, &c, err);
    if (v == NULL)
        return c;
    if (!cJSON_IsString(v))
        return dm_fail(err, DM_E_INVALID_FIELD, name, "%s must be a string, got %s", name, type_name(v));
    size_t n = strlen(v->valuestring);
    if (n >= cap)
        return dm_fail(err, DM_E_INVALID_FIELD, name, "%s is %zu bytes long, at most %zu allowed",
                       name, n, cap - 1);
    memcpy(buf, v->valuestring, n + 1);
    return DM_OK;
}

dm_code dm_get_num(const cJSON *obj, const char *name, double *out, bool required, bool *present,
                   dm_err *err)
{
    dm_code c;
    const cJSON *v = field(obj, name, required, present, &c, err);
    if (v == NULL)
        return c;
    if (!cJSON_IsNumber(v))
        return dm_fail(err, DM_E_INVALID_FIELD, name, "%s must be a number, got %s", name, type_name(v));
    if (!isfinite(v->valuedouble))
        return dm_fail(err, DM_E_INVALID_FIELD, name, "%s must be a finite number", name);
    *out = v->valuedouble;
    return DM_OK;
}

dm_code dm_get_int(const cJSON *obj, const char *name, int64_t *out, int64_t min, int64_t max,
                   bool required, bool *present, dm_err *err)
{
    double d = 0;
    bool here = false;
    dm_code c = dm_get_num(obj, name, &d, required, &here, err);
    if (present)
        *present = here;
    if (c || !here)
        return c;
    /* 2^53: beyond it a double no longer holds every integer exactly. */
    if (d != floor(d) || fabs(d) > 9007199254740992.0)
        return dm_fail(err, DM_E_INVALID_FIELD, name, "%s must be an integer, got %.17g", name, d);
    if (d < (double)min || d > (double)max)
        return dm_fail(err, DM_E_INVALID_FIELD, name, "%s %.0f is out of range [%lld, %lld]", name, d,
                       (long long)min, (long long)max);
    *out = (int64_t)d;
    return DM_OK;
}

int64_t dm_days_from_civil(int64_t y, int m, int d)
{
    /* Howard Hinnant's algorithm: proleptic Gregorian calendar, no timezone tables. */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

bool dm_parse_iso_time(const char *s, int64_t *out_ms)
{
    int y, mo, d, h = 0, mi = 0, se = 0, ms = 0;
    if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d))
        return false;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1])
        return false;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return false;
    const char *p = s + 10;
    int64_t offset_min = 0;
    if (*p == 'T' || *p == ' ') {
        if (!digits(p + 1, 2, &h) || p[3] != ':' || !digits(p + 4, 2, &mi))
            return false;
        p += 6;
        if (*p == ':') {
            if (!digits(p + 1, 2, &se))
                return false;
            p += 3;
            if (*p == '.') {
                int n = 0, frac = 0;
                p++;
                while (isdigit((unsigned char)*p)) {
                    if (n < 3)
                        frac = frac * 10 + (*p - '0');
                    n++, p++;
                }
                if (n == 0)
                    return false;
                for (int k = n; k < 3; k++)
                    frac *= 10;
                ms = frac;
            }
        }
        if (h > 23 || mi > 59 || se > 60)
            return false;
        if (*p == 'Z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            /* +02:00, and the basic forms +0200 and +02 */
            int oh, om = 0;
            int len = 3;
            if (!digits(p + 1, 2, &oh))
                return false;
            if (p[3] == ':' && digits(p + 4, 2, &om))
                len = 6;
            else if (digits(p + 3, 2, &om))
                len = 5;
            if (oh > 23 || om > 59)
                return false;
            offset_min = (oh * 60 + om) * (*p == '+' ? 1 : -1);
            p += len;
        } else {
            return false; /* an instant needs its zone; "local time" means nothing to a server */
        }
    }
    if (*p != '\0')
        return false;
    int64_t secs = dm_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset_min * 60;
    *out_ms = secs * 1000 + ms;
    return true;
}

dm_code dm_get_time(const cJSON *obj, const char *name, int64_t *out, bool required,
                    bool *present, dm_err *err)
{
    dm_code c;
    const cJSON *v = field(obj, name, required, present, &c, err);
    if (v == NULL)
        return c;
    if (cJSON_IsNumber(v)) {
        c = dm_get_int(obj, name, out, 0, 253402300799999LL, required, present, err);
        /* 1e9 .. 1e11 ms is January 1970 to March 1973, when no market data exists; as
         * seconds it is 2001 to 5138: a client that sent seconds gets told so, not data: []. */
        if (c == DM_OK && *out >= 1000000000LL && *out < 100000000000LL)
            return dm_fail(err, DM_E_INVALID_FIELD, name,
                           "%s %lld looks like Unix seconds: times are Unix milliseconds (%lld000)", name,
                           (long long)*out, (long long)*out);
        return c;
    }
    if (cJSON_IsString(v) && strlen(v->valuestring) <= 40 && dm_parse_iso_time(v->valuestring, out))
        return DM_OK;
    if (cJSON_IsString(v) && strlen(v->valuestring) >= 10 && v->valuestring[4] == '-' && v->valuestring[7] == '-')
        return dm_fail(err, DM_E_INVALID_FIELD, name,
                       "%s '%.40s' is not a date this service reads: %s must be Unix milliseconds, "
                       "YYYY-MM-DD (a real calendar day: month 01-12, a day the month has) or an "
                       "ISO-8601 instant with a zone (2020-01-09T00:00:00Z)",
                       name, v->valuestring, name);
    return dm_fail(err, DM_E_INVALID_FIELD, name,
                   "%s must be Unix milliseconds, YYYY-MM-DD or an ISO-8601 instant with a zone "
                   "(2020-01-09T00:00:00Z)",
                   name);
}
