/* Payload documents (worker/codec/doc): JSON and msgpack become one tree, hostile input is
 * refused with the right code, and typed field access says what was wrong. */
#include <math.h>
#include <msgpack.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/doc.h"

#define T0 1578528000000LL /* 2020-01-09 00:00 UTC */

#define assert_err(e, code, field, ...)                                                     \
    check_err(&(e), code, field, (const char *const[]){__VA_ARGS__, NULL}, __FILE__, __LINE__)

static void check_err(const dm_err *e, dm_code code, const char *field,
                      const char *const *needles, const char *file, int line)
{
    if (e->code != code)
        fail_msg("%s:%d: code %s, want %s (field '%s': %s)", file, line, dm_code_name(e->code),
                 dm_code_name(code), e->field, e->message);
    if (strcmp(e->field, field) != 0)
        fail_msg("%s:%d: field '%s', want '%s' (%s)", file, line, e->field, field, e->message);
    for (; *needles; needles++)
        if (strstr(e->message, *needles) == NULL)
            fail_msg("%s:%d: message \"%s\" does not mention \"%s\"", file, line, e->message,
                     *needles);
}

/* ---- msgpack building ------------------------------------------------------------ */

typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} mp;

static void mp_init(mp *m)
{
    msgpack_sbuffer_init(&m->sb);
    msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
}

static void mp_free(mp *m) { msgpack_sbuffer_destroy(&m->sb); }

static void mp_str(mp *m, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(&m->pk, n);
    msgpack_pack_str_body(&m->pk, s, n);
}

static dm_code parse(const char *data, size_t len, dm_encoding enc, cJSON **out, dm_err *e)
{
    memset(e, 0, sizeof *e);
    return dm_doc_parse(data, len, enc, 1 << 20, out, e);
}

static dm_code parse_json(const char *s, cJSON **out, dm_err *e)
{
    return parse(s, strlen(s), DM_ENC_JSON, out, e);
}

/* ---- parsing --------------------------------------------------------------------- */

static void parses_json_object_payload(void **state)
{
    (void)state;
    const char *s = "{\"symbol\":\"EUR/USD\",\"timestamp\":1578528000000,\"bid\":1.09551,"
                    "\"tags\":[\"a\",1],\"meta\":{\"ok\":true,\"v\":null}}";
    cJSON *root = NULL;
    dm_err e;
    assert_int_equal(parse_json(s, &root, &e), DM_OK);
    assert_non_null(root);
    assert_string_equal(cJSON_GetObjectItem(root, "symbol")->valuestring, "EUR/USD");
    assert_true(cJSON_GetObjectItem(root, "timestamp")->valuedouble == 1578528000000.0);
    assert_true(cJSON_GetObjectItem(root, "bid")->valuedouble == 1.09551);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(root, "tags")), 2);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "meta"), "v")));
    cJSON_Delete(root);
}

static void parses_msgpack_map_payload(void **state)
{
    (void)state;
    mp m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 9);
    mp_str(&m, "symbol"), mp_str(&m, "USD/JPY");
    mp_str(&m, "timestamp"), msgpack_pack_uint64(&m.pk, 1578528000000ULL);
    mp_str(&m, "bid"), msgpack_pack_double(&m.pk, 109.512);
    mp_str(&m, "half"), msgpack_pack_float(&m.pk, 0.5f);
    mp_str(&m, "delta"), msgpack_pack_int64(&m.pk, -42);
    mp_str(&m, "volume"), msgpack_pack_nil(&m.pk);
    mp_str(&m, "live"), msgpack_pack_true(&m.pk);
    mp_str(&m, "ccy"), msgpack_pack_array(&m.pk, 2), mp_str(&m, "USD"), mp_str(&m, "JPY");
    mp_str(&m, "meta"), msgpack_pack_map(&m.pk, 1), mp_str(&m, "k"), mp_str(&m, "\xe6\x97\xa5");

    cJSON *root = NULL;
    dm_err e;
    assert_int_equal(parse(m.sb.data, m.sb.size, DM_ENC_MSGPACK, &root, &e), DM_OK);
    assert_string_equal(cJSON_GetObjectItem(root, "symbol")->valuestring, "USD/JPY");
    assert_true(cJSON_GetObjectItem(root, "timestamp")->valuedouble == 1578528000000.0);
    assert_true(cJSON_GetObjectItem(root, "bid")->valuedouble == 109.512);
    assert_true(cJSON_GetObjectItem(root, "half")->valuedouble == 0.5);
    assert_true(cJSON_GetObjectItem(root, "delta")->valuedouble == -42.0);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(root, "volume")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(root, "live")));
    cJSON *ccy = cJSON_GetObjectItem(root, "ccy");
    assert_int_equal(cJSON_GetArraySize(ccy), 2);
    assert_string_equal(cJSON_GetArrayItem(ccy, 1)->valuestring, "JPY");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "meta"), "k")->valuestring,
                        "\xe6\x97\xa5");
    cJSON_Delete(root);
    mp_free(&m);
}

static void detects_encoding_from_content_type(void **state)
{
    (void)state;
    const char *js = "{}";
    const char mpk[] = "\x80";
    assert_int_equal(dm_doc_detect("application/msgpack", js, 2), DM_ENC_MSGPACK);
    assert_int_equal(dm_doc_detect("application/x-msgpack", js, 2), DM_ENC_MSGPACK);
    assert_int_equal(dm_doc_detect("application/json", mpk, 1), DM_ENC_JSON);
    assert_int_equal(dm_doc_detect("application/json; charset=utf-8", mpk, 1), DM_ENC_JSON);
    /* an unhelpful header falls back to the bytes */
    assert_int_equal(dm_doc_detect("text/plain", mpk, 1), DM_ENC_MSGPACK);
    assert_int_equal(dm_doc_detect("", js, 2), DM_ENC_JSON);
}

static void detects_encoding_from_first_byte(void **state)
{
    (void)state;
    for (int c = 0x80; c <= 0x8f; c++) {
        char b = (char)c;
        assert_int_equal(dm_doc_detect(NULL, &b, 1), DM_ENC_MSGPACK);
    }
    assert_int_equal(dm_doc_detect(NULL, "\xde\x00\x01", 3), DM_ENC_MSGPACK);
    assert_int_equal(dm_doc_detect(NULL, "\xdf\x00\x00\x00\x01", 5), DM_ENC_MSGPACK);
    assert_int_equal(dm_doc_detect(NULL, "{\"a\":1}", 7), DM_ENC_JSON);
    assert_int_equal(dm_doc_detect(NULL, "  {}", 4), DM_ENC_JSON);
    assert_int_equal(dm_doc_detect(NULL, "\n{}", 3), DM_ENC_JSON);
    assert_int_equal(dm_doc_detect(NULL, "", 0), DM_ENC_JSON);
    /* a msgpack array root is not a payload: it goes the JSON way and fails there */
    assert_int_equal(dm_doc_detect(NULL, "\x91\x01", 2), DM_ENC_JSON);
}

static void rejects_invalid_json(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"symbol\": \"EUR/USD\",", "{symbol: \"EUR/USD\"}", "{'bid': 1.1}", "",
        "{\"bid\": 1.1.2}", "{\"bid\": NaN}", "{\"bid\": Infinity}", "{\"a\":\"\x01\"", "   ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cJSON *root = (cJSON *)&root; /* must be reset to NULL */
        dm_err e;
        if (parse_json(bad[i], &root, &e) != DM_E_INVALID_JSON)
            fail_msg("'%s' was not refused as invalid JSON (%s)", bad[i], e.message);
        assert_null(root);
        assert_err(e, DM_E_INVALID_JSON, "", "not valid JSON");
    }
}

static void rejects_trailing_garbage_after_json(void **state)
{
    (void)state;
    static const char *const bad[] = {"{} x", "{}{}", "{\"a\":1}]", "{\"a\":1},"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cJSON *root = NULL;
        dm_err e;
        if (parse_json(bad[i], &root, &e) != DM_E_INVALID_JSON)
            fail_msg("'%s' accepted", bad[i]);
        assert_null(root);
        assert_err(e, DM_E_INVALID_JSON, "", "trailing");
    }
}

static void accepts_trailing_whitespace_and_nul_after_json(void **state)
{
    (void)state;
    const char s[] = "{\"bid\":1.1}\r\n\t \0";
    cJSON *root = NULL;
    dm_err e;
    assert_int_equal(parse(s, sizeof s, DM_ENC_JSON, &root, &e), DM_OK); /* incl. both NULs */
    cJSON_Delete(root);
}

static void rejects_nul_escapes_inside_json_strings(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"symbol\":\"EURUSD\\u0000' OR 1=1\"}",
        "{\"event_name\":\"CPI\\u0000\"}",
        "{\"a\\u0000b\":1}",
        "{\"x\":[\"ok\",\"\\u0000\"]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cJSON *root = NULL;
        dm_err e;
        if (parse_json(bad[i], &root, &e) != DM_E_INVALID_JSON)
            fail_msg("'%s' accepted", bad[i]);
        assert_null(root);
        assert_err(e, DM_E_INVALID_JSON, "", "\\u0000");
    }
    /* an escaped backslash followed by "u0000" is text, not a NUL */
    cJSON *root = NULL;
    dm_err e;
    assert_int_equal(parse_json("{\"path\":\"C:\\\\u0000\"}", &root, &e), DM_OK);
    assert_string_equal(cJSON_GetObjectItem(root, "path")->valuestring, "C:\\u0000");
    cJSON_Delete(root);
}

static void rejects_non_object_json_roots(void **state)
{
    (void)state;
    static const char *const bad[] = {"[]", "[{\"bid\":1.1}]", "42", "\"EUR/USD\"", "null",
                                      "true"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cJSON *root = NULL;
        dm_err e;
        if (parse_json(bad[i], &root, &e) != DM_E_INVALID_JSON)
            fail_msg("root '%s' accepted", bad[i]);
        assert_null(root);
        assert_err(e, DM_E_INVALID_JSON, "", "must be a JSON object");
    }
}

static void rejects_invalid_msgpack(void **state)
{
    (void)state;
    static const struct {
        const char *data;
        size_t len;
    } bad[] = {
        {"\xc1", 1},                 /* the one byte msgpack never uses */
        {"\x81\xc1\x01", 3},         /* inside a map */
        {"{\"bid\":1.1}", 11},       /* JSON sent with a msgpack content type */
        {"", 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cJSON *root = NULL;
        dm_err e;
        if (parse(bad[i].data, bad[i].len, DM_ENC_MSGPACK, &root, &e) != DM_E_INVALID_MSGPACK)
            fail_msg("bad msgpack #%zu accepted (%s)", i, e.message);
        assert_null(root);
        assert_err(e, DM_E_INVALID_MSGPACK, "", "msgpack");
    }
}

static void pack_tick(mp *m)
{
    msgpack_pack_map(&m->pk, 6);
    mp_str(m, "symbol"), mp_str(m, "EUR/USD");
    mp_str(m, "timestamp"), msgpack_pack_uint64(&m->pk, 1578528000000ULL);
    mp_str(m, "bid"), msgpack_pack_double(&m->pk, 1.09551);
    mp_str(m, "ask"), msgpack_pack_double(&m->pk, 1.09563);
    mp_str(m, "spread"), msgpack_pack_double(&m->pk, 0.00012);
    mp_str(m, "source"), mp_str(m, "twelve-data");
}

static void rejects_every_truncation_of_a_msgpack_tick(void **state)
{
    (void)state;
    mp m;
    mp_init(&m);
    pack_tick(&m);
    for (size_t len = 0; len < m.sb.size; len++) {
        char *copy = malloc(len + 1); /* exact size: ASan catches any read past the end */
        memcpy(copy, m.sb.data, len);
        cJSON *root = NULL;
        dm_err e;
        if (parse(copy, len, DM_ENC_MSGPACK, &root, &e) != DM_E_INVALID_MSGPACK)
            fail_msg("tick truncated to %zu of %zu bytes accepted", len, m.sb.size);
        assert_null(root);
        free(copy);
    }
    cJSON *root = NULL;
    dm_err e;
    assert_int_equal(parse(m.sb.data, m.sb.size, DM_ENC_MSGPACK, &root, &e), DM_OK);
    cJSON_Delete(root);
    mp_free(&m);
}

static void rejects_trailing_bytes_after_msgpack(void **state)
{
    (void)state;
    mp m;
    mp_init(&m);
    pack_tick(&m);
    msgpack_pack_nil(&m.pk);
    cJSON *root = NULL;
    dm_err e;
    assert_int_equal(parse(m.sb.data, m.sb.size, DM_ENC_MSGPACK, &root, &e), DM_E_INVALID_MSGPACK);
    assert_null(root);
    assert_err(e, DM_E_INVALID_MSGPACK, "", "trailing");
    mp_free(&m);
}

static void rejects_non_map_msgpack_roots(void **state)
{
    (void)state;
    for (int kind = 0; kind < 4; kind++) {
        mp m;
        mp_init(&m);
        if (kind == 0)
            msgpack_pack_array(&m.pk, 1), pack_tick(&m);
        else if (kind == 1)
            msgpack_pack_uint64(&m.pk, 1578528000000ULL);
        else if (kind == 2)
            mp_str(&m, "EUR/USD");
        else
            msgpack_pack_nil(&m.pk);
        cJSON *root = NULL;
        dm_err e;
        assert_int_equal(parse(m.sb.data, m.sb.size, DM_ENC_MSGPACK, &root, &e),
                         DM_E_INVALID_MSGPACK);
        assert_null(root);
        assert_err(e, DM_E_INVALID_MSGPACK, "", "must be a msgpack map");
        mp_free(&m);
    }
}

static void rejects_payload_over_the_size_limit(void **state)
{
    (void)state;
    const char *s = "{\"symbol\":\"EUR/USD\"}"; /* 20 bytes */
    cJSON *root = NULL;
    dm_err e = {0};
    assert_int_equal(dm_doc_parse(s, 20, DM_ENC_JSON, 19, &root, &e), DM_E_TOO_LARGE);
    assert_null(root);
    assert_err(e, DM_E_TOO_LARGE, "", "20 bytes", "limit of 19 bytes");
    assert_int_equal(dm_doc_parse(s, 20, DM_ENC_JSON, 20, &root, &e), DM_OK);
    cJSON_Delete(root);

    mp m;
    mp_init(&m);
    pack_tick(&m);
    assert_int_equal(dm_doc_parse(m.sb.data, m.sb.size, DM_ENC_MSGPACK, m.sb.size - 1, &root, &e),
                     DM_E_TOO_LARGE);
    assert_null(root);
    assert_int_equal(dm_code_status(e.code), 413);
    mp_free(&m);
}

/* `levels` maps nested in each other: {"a":{"a":...{}}} */
static void pack_nested_maps(mp *m, int levels)
{
    for (int i = 0; i < levels - 1; i++)
        msgpack_pack_map(&m->pk, 1), mp_str(m, "a");
    msgpack_pack_map(&m->pk, 0);
}

static void accepts_msgpack_nested_to_the_depth_limit(void **state)
{
    (void)state;
    mp m;
    mp_init(&m);
    pack_nested_maps(&m, DM_DOC_MAX_DEPTH);
    cJSON *root = NULL;
    dm_err e;
    assert_int_equal(parse(m.sb.data, m.sb.size, DM_ENC_MSGPACK, &root, &e), DM_OK);
    cJSON_Delete(root);
    mp_free(&m);
}

static void rejects_msgpack_nested_deeper_than_the_limit(void **state)
{
    (void)state;
    const int depths[] = {DM_DOC_MAX_DEPTH + 2, DM_DOC_MAX_DEPTH + 10, 30};
    for (size_t k = 0; k < sizeof depths / sizeof *depths; k++) {
        mp m;
        mp_init(&m);
        pack_nested_maps(&m, depths[k]);
        cJSON *root = NULL;
        dm_err e;
        assert_int_equal(parse(m.sb.data, m.sb.size, DM_ENC_MSGPACK, &root, &e),
                         DM_E_INVALID_MSGPACK);
        assert_null(root);
        assert_err(e, DM_E_INVALID_MSGPACK, "", "nesting");
        mp_free(&m);
    }
    /* arrays count too */
    mp m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 1), mp_str(&m, "candles");
    for (int i = 0; i < DM_DOC_MAX_DEPTH + 2; i++)
        msgpack_pack_array(&m.pk, 1);
    msgpack_pack_nil(&m.pk);
    cJSON *root = NULL;
    dm_err e;
    assert_int_equal(parse(m.sb.data, m.sb.size, DM_ENC_MSGPACK, &root, &e), DM_E_INVALID_MSGPACK);
    assert_null(root);
    mp_free(&m);
}

static void survives_absurdly_deep_msgpack(void **state)
{
    (void)state;
    size_t n = 200000;
    char *buf = malloc(n + 1);
    buf[0] = (char)0x81, buf[1] = (char)0xa1, buf[2] = 'a';
    memset(buf + 3, 0x91, n - 4); /* [[[[...]]]] */
    buf[n - 1] = (char)0xc0;
    cJSON *root = NULL;
    dm_err e;
    assert_int_equal(parse(buf, n, DM_ENC_MSGPACK, &root, &e), DM_E_INVALID_MSGPACK);
    assert_null(root);
    free(buf);
}

static void rejects_msgpack_binary_and_extension_values(void **state)
{
    (void)state;
    for (int ext = 0; ext < 2; ext++) {
        mp m;
        mp_init(&m);
        msgpack_pack_map(&m.pk, 2);
        mp_str(&m, "symbol"), mp_str(&m, "EUR/USD");
        mp_str(&m, "bid");
        if (ext) {
            msgpack_pack_ext(&m.pk, 8, 1);
            msgpack_pack_ext_body(&m.pk, "\x3f\xf1\x87\xe7\xc0\x6e\x19\xb9", 8);
        } else {
            msgpack_pack_bin(&m.pk, 7);
            msgpack_pack_bin_body(&m.pk, "EUR/USD", 7);
        }
        cJSON *root = NULL;
        dm_err e;
        assert_int_equal(parse(m.sb.data, m.sb.size, DM_ENC_MSGPACK, &root, &e),
                         DM_E_INVALID_MSGPACK);
        assert_null(root);
        assert_err(e, DM_E_INVALID_MSGPACK, "", "binary and extension");
        mp_free(&m);
    }
}

static void rejects_msgpack_maps_with_non_string_keys(void **state)
{
    (void)state;
    for (int kind = 0; kind < 4; kind++) {
        mp m;
        mp_init(&m);
        msgpack_pack_map(&m.pk, 2);
        mp_str(&m, "symbol"), mp_str(&m, "EUR/USD");
        if (kind == 0)
            msgpack_pack_uint8(&m.pk, 1);
        else if (kind == 1)
            msgpack_pack_nil(&m.pk);
        else if (kind == 2)
            msgpack_pack_array(&m.pk, 1), mp_str(&m, "bid");
        else
            msgpack_pack_bin(&m.pk, 3), msgpack_pack_bin_body(&m.pk, "bid", 3);
        msgpack_pack_double(&m.pk, 1.09551);
        cJSON *root = NULL;
        dm_err e;
        assert_int_equal(parse(m.sb.data, m.sb.size, DM_ENC_MSGPACK, &root, &e),
                         DM_E_INVALID_MSGPACK);
        assert_null(root);
        assert_err(e, DM_E_INVALID_MSGPACK, "", "keys must be strings");
        mp_free(&m);
    }
}

static void rejects_msgpack_keys_longer_than_256_bytes(void **state)
{
    (void)state;
    char key[258];
    memset(key, 'k', 257);
    key[257] = '\0';
    mp m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 1), mp_str(&m, key), msgpack_pack_true(&m.pk);
    cJSON *root = NULL;
    dm_err e;
    assert_int_equal(parse(m.sb.data, m.sb.size, DM_ENC_MSGPACK, &root, &e), DM_E_INVALID_MSGPACK);
    mp_free(&m);

    key[256] = '\0'; /* 256 is fine */
    mp_init(&m);
    msgpack_pack_map(&m.pk, 1), mp_str(&m, key), msgpack_pack_true(&m.pk);
    assert_int_equal(parse(m.sb.data, m.sb.size, DM_ENC_MSGPACK, &root, &e), DM_OK);
    assert_non_null(cJSON_GetObjectItem(root, key));
    cJSON_Delete(root);
    mp_free(&m);
}

static void rejects_nul_inside_msgpack_string(void **state)
{
    (void)state;
    mp m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 1);
    mp_str(&m, "symbol");
    msgpack_pack_str(&m.pk, 7);
    msgpack_pack_str_body(&m.pk, "EUR\0USD", 7); /* would silently become "EUR" */
    cJSON *root = NULL;
    dm_err e;
    assert_int_equal(parse(m.sb.data, m.sb.size, DM_ENC_MSGPACK, &root, &e), DM_E_INVALID_MSGPACK);
    assert_null(root);
    assert_err(e, DM_E_INVALID_MSGPACK, "", "NUL");
    mp_free(&m);
}

/* ---- typed field access ---------------------------------------------------------- */

static cJSON *obj(const char *json)
{
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    return o;
}

static void get_str_reports_missing_wrong_type_and_too_long(void **state)
{
    (void)state;
    cJSON *o = obj("{\"symbol\":\"EUR/USD\",\"n\":1.5,\"z\":null,\"long\":\"ABCDEFGH\"}");
    char buf[8];
    bool present = true;
    dm_err e = {0};
    assert_int_equal(dm_get_str(o, "symbol", buf, sizeof buf, true, &present, &e), DM_OK);
    assert_string_equal(buf, "EUR/USD");
    assert_true(present);

    assert_int_equal(dm_get_str(o, "source", buf, sizeof buf, true, &present, &e),
                     DM_E_MISSING_FIELD);
    assert_false(present);
    assert_err(e, DM_E_MISSING_FIELD, "source", "source is required");

    assert_int_equal(dm_get_str(o, "z", buf, sizeof buf, true, NULL, &e), DM_E_MISSING_FIELD);
    assert_err(e, DM_E_MISSING_FIELD, "z", "z is required"); /* null is as good as absent */

    assert_int_equal(dm_get_str(o, "z", buf, sizeof buf, false, &present, &e), DM_OK);
    assert_false(present);

    assert_int_equal(dm_get_str(o, "n", buf, sizeof buf, true, NULL, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "n", "n must be a string, got number");

    strcpy(buf, "keep");
    assert_int_equal(dm_get_str(o, "long", buf, sizeof buf, true, NULL, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "long", "long is 8 bytes long, at most 7");
    assert_string_equal(buf, "keep");
    cJSON_Delete(o);
}

static void get_num_reports_wrong_types(void **state)
{
    (void)state;
    cJSON *o = obj("{\"bid\":\"1.09551\",\"ask\":1.09563,\"b\":true,\"a\":[1],\"m\":{}}");
    double d = 0;
    bool present = false;
    dm_err e = {0};
    assert_int_equal(dm_get_num(o, "ask", &d, true, &present, &e), DM_OK);
    assert_true(d == 1.09563);
    assert_true(present);
    assert_int_equal(dm_get_num(o, "bid", &d, true, NULL, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "bid", "bid must be a number, got string");
    assert_int_equal(dm_get_num(o, "b", &d, true, NULL, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "b", "got boolean");
    assert_int_equal(dm_get_num(o, "a", &d, true, NULL, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "a", "got array");
    assert_int_equal(dm_get_num(o, "m", &d, true, NULL, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "m", "got object");
    assert_int_equal(dm_get_num(o, "volume", &d, false, &present, &e), DM_OK);
    assert_false(present);
    cJSON_Delete(o);
}

static void get_int_rejects_fractions_and_out_of_range(void **state)
{
    (void)state;
    cJSON *o = obj("{\"limit\":1.5,\"big\":1001,\"neg\":-1,\"ok\":1e3,\"ts\":1578528000000,"
                   "\"huge\":1e300,\"p53\":9007199254740994}");
    int64_t v = 7;
    dm_err e = {0};
    assert_int_equal(dm_get_int(o, "limit", &v, 1, 1000, true, NULL, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "limit", "limit must be an integer, got 1.5");
    assert_int_equal(dm_get_int(o, "big", &v, 1, 1000, true, NULL, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "big", "big 1001 is out of range [1, 1000]");
    assert_int_equal(dm_get_int(o, "neg", &v, 0, 1000, true, NULL, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "neg", "neg -1 is out of range [0, 1000]");
    assert_int_equal(dm_get_int(o, "huge", &v, INT64_MIN, INT64_MAX, true, NULL, &e),
                     DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "huge", "huge");
    assert_int_equal(dm_get_int(o, "p53", &v, INT64_MIN, INT64_MAX, true, NULL, &e),
                     DM_E_INVALID_FIELD);
    assert_int_equal(v, 7); /* untouched by every failure */
    assert_int_equal(dm_get_int(o, "ok", &v, 1, 1000, true, NULL, &e), DM_OK);
    assert_int_equal(v, 1000);
    assert_int_equal(dm_get_int(o, "ts", &v, INT64_MIN, INT64_MAX, true, NULL, &e), DM_OK);
    assert_int_equal(v, T0);
    bool present = true;
    assert_int_equal(dm_get_int(o, "page_size", &v, 1, 10000, false, &present, &e), DM_OK);
    assert_false(present);
    cJSON_Delete(o);
}

static int64_t time_of(const char *json_value, dm_code want)
{
    char doc[128];
    snprintf(doc, sizeof doc, "{\"start\":%s}", json_value);
    cJSON *o = obj(doc);
    int64_t v = -12345;
    dm_err e = {0};
    dm_code c = dm_get_time(o, "start", &v, true, NULL, &e);
    cJSON_Delete(o);
    if (c != want)
        fail_msg("start=%s: %s, want %s (%s)", json_value, dm_code_name(c), dm_code_name(want),
                 e.message);
    if (c != DM_OK) {
        assert_string_equal(e.field, "start");
        assert_non_null(strstr(e.message, "start"));
        assert_int_equal(v, -12345);
    }
    return v;
}

static void accepts_ms_dates_and_iso_instants(void **state)
{
    (void)state;
    assert_int_equal(time_of("1578528000000", DM_OK), T0);
    assert_int_equal(time_of("\"2020-01-09\"", DM_OK), T0);
    assert_int_equal(time_of("\"2020-01-09T00:00:00Z\"", DM_OK), T0);
    assert_int_equal(time_of("\"2020-01-09 00:00:00Z\"", DM_OK), T0);
    assert_int_equal(time_of("\"2020-01-09T00:00Z\"", DM_OK), T0);
    assert_int_equal(time_of("\"2020-01-09T13:30:00Z\"", DM_OK), 1578576600000LL);
    assert_int_equal(time_of("\"2020-02-29\"", DM_OK), 1582934400000LL);
    assert_int_equal(time_of("\"1970-01-01T00:00:00Z\"", DM_OK), 0);
    assert_int_equal(time_of("\"2000-02-29T12:00:00Z\"", DM_OK), 951825600000LL);
}

static void accepts_iso_dates_with_offset(void **state)
{
    (void)state;
    assert_int_equal(time_of("\"2020-01-09T02:00:00+02:00\"", DM_OK), T0);
    assert_int_equal(time_of("\"2020-01-08T19:00:00-05:00\"", DM_OK), T0);
    assert_int_equal(time_of("\"2020-01-09T05:30:00+05:30\"", DM_OK), T0);
    assert_int_equal(time_of("\"2020-01-09T00:00:00+00:00\"", DM_OK), T0);
    /* the basic forms of the offset */
    assert_int_equal(time_of("\"2020-01-09T02:00:00+0200\"", DM_OK), T0);
    assert_int_equal(time_of("\"2020-01-09T02:00:00+02\"", DM_OK), T0);
    assert_int_equal(time_of("\"2020-01-09T02:00:00+2\"", DM_E_INVALID_FIELD), -12345);
}

static void accepts_fractional_seconds(void **state)
{
    (void)state;
    assert_int_equal(time_of("\"2020-01-09T00:00:00.123Z\"", DM_OK), T0 + 123);
    assert_int_equal(time_of("\"2020-01-09T00:00:00.5Z\"", DM_OK), T0 + 500);
    assert_int_equal(time_of("\"2020-01-09T00:00:00.05Z\"", DM_OK), T0 + 50);
    assert_int_equal(time_of("\"2020-01-09T00:00:00.123456789Z\"", DM_OK), T0 + 123);
    assert_int_equal(time_of("\"2020-01-09T02:00:00.250+02:00\"", DM_OK), T0 + 250);
}

static void rejects_impossible_zoneless_and_garbage_dates(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\"2020-02-30\"",           "\"2021-02-29\"",          "\"1900-02-29\"",
        "\"2020-13-01\"",           "\"2020-00-10\"",          "\"2020-01-32\"",
        "\"2020-01-00\"",           "\"2020-01-09T00:00:00\"", "\"2020-01-09T24:00:00Z\"",
        "\"2020-01-09T12:60:00Z\"", "\"2020-01-09T00:00:00.Z\"", "\"2020-01-09T00:00:00+2\"",
        "\"2020-01-09T00:00:00+24:00\"", "\"2020-1-9\"",       "\"20200109\"",
        "\"yesterday\"",            "\"\"",                    "\"2020-01-09Z\"",
        "\"2020-01-09T00:00:00Zjunk\"", "\"2020-01-09 \"",     "true",
        "[1578528000000]",          "1578528000000.5",         "-1",
        "\"1578528000000\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        time_of(bad[i], DM_E_INVALID_FIELD);
    time_of("null", DM_E_MISSING_FIELD);
}

static void time_error_explains_the_accepted_forms(void **state)
{
    (void)state;
    cJSON *o = obj("{\"end\":\"2020-01-09T00:00:00\"}");
    int64_t v;
    dm_err e = {0};
    assert_int_equal(dm_get_time(o, "end", &v, true, NULL, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "end", "end must be", "milliseconds", "YYYY-MM-DD",
               "zone");
    cJSON_Delete(o);
}

static void seconds_for_milliseconds_and_impossible_months_are_named(void **state)
{
    (void)state;
    cJSON *o = obj("{\"start\":1578528000,\"end\":\"2024-13-01\",\"zero\":0}");
    int64_t v;
    dm_err e = {0};
    assert_int_equal(dm_get_time(o, "start", &v, true, NULL, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "start", "looks like Unix seconds", "1578528000000", "");
    dm_err_clear(&e);
    assert_int_equal(dm_get_time(o, "end", &v, true, NULL, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "end", "2024-13-01", "calendar day", "month 01-12");
    assert_int_equal(dm_get_time(o, "zero", &v, true, NULL, &e), DM_OK); /* the epoch stays a time */
    assert_int_equal(v, 0);
    cJSON_Delete(o);
}

static void reads_a_msgpack_reply_of_any_type_with_the_payload_limits(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_int64(&pk, 3);
    msgpack_pack_str(&pk, 2);
    msgpack_pack_str_body(&pk, "ok", 2);
    cJSON *j = NULL;
    dm_err err = {0};
    assert_int_equal(dm_doc_parse_msgpack_value(sb.data, sb.size, &j, &err), DM_OK);
    assert_true(cJSON_IsArray(j));
    assert_int_equal(cJSON_GetArrayItem(j, 0)->valueint, 3);
    assert_string_equal(cJSON_GetArrayItem(j, 1)->valuestring, "ok");
    cJSON_Delete(j);

    /* the same bytes with one more: not exactly one value */
    msgpack_pack_nil(&pk);
    assert_int_equal(dm_doc_parse_msgpack_value(sb.data, sb.size, &j, &err), DM_E_INVALID_MSGPACK);
    assert_null(j);
    /* five bytes announcing 2^32 entries */
    assert_int_equal(dm_doc_parse_msgpack_value("\xdd\xff\xff\xff\xff", 5, &j, &err),
                     DM_E_INVALID_MSGPACK);
    assert_null(j);
    msgpack_sbuffer_destroy(&sb);
}

static void counts_days_of_the_proleptic_gregorian_calendar(void **state)
{
    (void)state;
    assert_int_equal(dm_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(dm_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(dm_days_from_civil(2020, 1, 20), 18281);
    assert_int_equal(dm_days_from_civil(1969, 12, 31), -1);
    assert_int_equal(dm_days_from_civil(1600, 2, 29), -135081);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_json_object_payload),
        cmocka_unit_test(parses_msgpack_map_payload),
        cmocka_unit_test(detects_encoding_from_content_type),
        cmocka_unit_test(detects_encoding_from_first_byte),
        cmocka_unit_test(rejects_invalid_json),
        cmocka_unit_test(rejects_trailing_garbage_after_json),
        cmocka_unit_test(accepts_trailing_whitespace_and_nul_after_json),
        cmocka_unit_test(rejects_nul_escapes_inside_json_strings),
        cmocka_unit_test(rejects_non_object_json_roots),
        cmocka_unit_test(rejects_invalid_msgpack),
        cmocka_unit_test(rejects_every_truncation_of_a_msgpack_tick),
        cmocka_unit_test(rejects_trailing_bytes_after_msgpack),
        cmocka_unit_test(rejects_non_map_msgpack_roots),
        cmocka_unit_test(rejects_payload_over_the_size_limit),
        cmocka_unit_test(accepts_msgpack_nested_to_the_depth_limit),
        cmocka_unit_test(rejects_msgpack_nested_deeper_than_the_limit),
        cmocka_unit_test(survives_absurdly_deep_msgpack),
        cmocka_unit_test(rejects_msgpack_binary_and_extension_values),
        cmocka_unit_test(rejects_msgpack_maps_with_non_string_keys),
        cmocka_unit_test(rejects_msgpack_keys_longer_than_256_bytes),
        cmocka_unit_test(rejects_nul_inside_msgpack_string),
        cmocka_unit_test(get_str_reports_missing_wrong_type_and_too_long),
        cmocka_unit_test(get_num_reports_wrong_types),
        cmocka_unit_test(get_int_rejects_fractions_and_out_of_range),
        cmocka_unit_test(accepts_ms_dates_and_iso_instants),
        cmocka_unit_test(accepts_iso_dates_with_offset),
        cmocka_unit_test(accepts_fractional_seconds),
        cmocka_unit_test(rejects_impossible_zoneless_and_garbage_dates),
        cmocka_unit_test(time_error_explains_the_accepted_forms),
        cmocka_unit_test(seconds_for_milliseconds_and_impossible_months_are_named),
        cmocka_unit_test(reads_a_msgpack_reply_of_any_type_with_the_payload_limits),
        cmocka_unit_test(counts_days_of_the_proleptic_gregorian_calendar),
    };
    return cmocka_run_group_tests_name("doc", tests, NULL, NULL);
}
