#include "mpjson.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool pack_number(msgpack_packer *pk, double v)
{
    /* 2^63 bounds keep the cast defined */
    if (v == floor(v) && v >= -9223372036854775808.0 && v < 9223372036854775808.0)
        return msgpack_pack_int64(pk, (int64_t)v) == 0;
    return msgpack_pack_double(pk, v) == 0;
}

static bool pack_string(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) == 0 && msgpack_pack_str_body(pk, s, n) == 0;
}

bool mpjson_pack(msgpack_packer *pk, const cJSON *j)
{
    if (cJSON_IsNull(j))
        return msgpack_pack_nil(pk) == 0;
    if (cJSON_IsTrue(j))
        return msgpack_pack_true(pk) == 0;
    if (cJSON_IsFalse(j))
        return msgpack_pack_false(pk) == 0;
    if (cJSON_IsNumber(j))
        return pack_number(pk, j->valuedouble);
    if (cJSON_IsString(j))
        return pack_string(pk, j->valuestring);
    bool is_obj = cJSON_IsObject(j);
    if (!is_obj && !cJSON_IsArray(j))
        return false;
    size_t n = (size_t)cJSON_GetArraySize(j);
    if ((is_obj ? msgpack_pack_map(pk, n) : msgpack_pack_array(pk, n)) != 0)
        return false;
    for (const cJSON *c = j->child; c; c = c->next) {
        if (is_obj && !pack_string(pk, c->string))
            return false;
        if (!mpjson_pack(pk, c))
            return false;
    }
    return true;
}

static cJSON *from_object(const msgpack_object *o);

static cJSON *from_map(const msgpack_object_map *m)
{
    cJSON *obj = cJSON_CreateObject();
    for (uint32_t i = 0; obj && i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key;
        char key[256];
        if (k->type == MSGPACK_OBJECT_STR) {
            size_t n = k->via.str.size < sizeof key - 1 ? k->via.str.size : sizeof key - 1;
            memcpy(key, k->via.str.ptr, n);
            key[n] = '\0';
        } else {
            /* JSON keys must be strings: render other keys as text */
            msgpack_object_print_buffer(key, sizeof key, *k);
        }
        cJSON *v = from_object(&m->ptr[i].val);
        if (!v || !cJSON_AddItemToObject(obj, key, v)) {
            cJSON_Delete(v);
            cJSON_Delete(obj);
            return NULL;
        }
    }
    return obj;
}

static cJSON *from_array(const msgpack_object_array *a)
{
    cJSON *arr = cJSON_CreateArray();
    for (uint32_t i = 0; arr && i < a->size; i++) {
        cJSON *v = from_object(&a->ptr[i]);
        if (!v || !cJSON_AddItemToArray(arr, v)) {
            cJSON_Delete(v);
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

static cJSON *from_str(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    memcpy(s, p, n);
    s[n] = '\0';
    cJSON *j = cJSON_CreateString(s);
    free(s);
    return j;
}

static cJSON *from_object(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return cJSON_CreateNull();
    case MSGPACK_OBJECT_BOOLEAN: return cJSON_CreateBool(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return cJSON_CreateNumber((double)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return cJSON_CreateNumber((double)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return cJSON_CreateNumber(o->via.f64);
    case MSGPACK_OBJECT_STR: return from_str(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN: return from_str(o->via.bin.ptr, o->via.bin.size);
    case MSGPACK_OBJECT_ARRAY: return from_array(&o->via.array);
    case MSGPACK_OBJECT_MAP: return from_map(&o->via.map);
    default: return cJSON_CreateNull(); /* ext types have no JSON form */
    }
}

cJSON *mpjson_unpack(const char *data, size_t len)
{
    msgpack_unpacked u;
    size_t off = 0;
    msgpack_unpacked_init(&u);
    cJSON *j = NULL;
    if (msgpack_unpack_next(&u, data, len, &off) == MSGPACK_UNPACK_SUCCESS && off == len)
        j = from_object(&u.data);
    msgpack_unpacked_destroy(&u);
    return j;
}
