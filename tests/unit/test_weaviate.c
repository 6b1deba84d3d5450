/* Weaviate adapter against a local stub that plays Weaviate's REST and GraphQL API: what
 * goes on the wire (method, path, Authorization and Content-Type headers, the exact JSON
 * and GraphQL bodies) and what the adapter makes of documented replies, error replies,
 * slow and absent servers and replies no Weaviate would send. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <math.h>

#include "test_weaviate_fixture.h"

static void makes_ids_as_pythons_generate_uuid5(void **state)
{
    (void)state;
    char id[37];
    /* Python's documented example: uuid.uuid5(uuid.NAMESPACE_DNS, "python.org") */
    assert_true(dm_weaviate_uuid5("python.org", id));
    assert_string_equal(id, "886313e1-3b8a-5372-9b90-0c9aee199e5d");
    /* weaviate.util.generate_uuid5("EUR/USD|1h|1704067200000"), computed with Python */
    assert_true(dm_weaviate_uuid5("EUR/USD|1h|1704067200000", id));
    assert_string_equal(id, "9ff5511f-9682-5326-9381-2f19c18997d3");
}

static void writes_dates_as_rfc3339_utc_and_reads_them_back(void **state)
{
    (void)state;
    char s[32];
    int64_t ms;
    assert_true(dm_weaviate_format_date(JAN_1, s));
    assert_string_equal(s, "2024-01-01T00:00:00.000Z");
    assert_true(dm_weaviate_format_date(951782400123LL, s)); /* a leap day */
    assert_string_equal(s, "2000-02-29T00:00:00.123Z");
    assert_true(dm_weaviate_format_date(-1, s));
    assert_string_equal(s, "1969-12-31T23:59:59.999Z");
    assert_false(dm_weaviate_format_date(INT64_MAX, s));
    assert_false(dm_weaviate_format_date(INT64_MIN, s));
    /* What Weaviate sends back: Go's RFC 3339, trailing zeros of the fraction dropped. */
    assert_true(dm_weaviate_parse_date("2024-01-01T00:00:00Z", &ms));
    assert_int_equal(ms, JAN_1);
    assert_true(dm_weaviate_parse_date("2024-01-01T00:00:00.5Z", &ms));
    assert_int_equal(ms, JAN_1 + 500);
    assert_true(dm_weaviate_parse_date("2024-01-01T02:00:00.123456789+02:00", &ms));
    assert_int_equal(ms, JAN_1 + 123);
    assert_true(dm_weaviate_parse_date("2023-12-31T19:00:00-05:00", &ms));
    assert_int_equal(ms, JAN_1);
    static const char *const bad[] = {
        "",
        "2024-01-01",
        "2024-01-01T00:00:00",
        "2024-01-01 00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-01-32T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T00:00:60Z",
        "2024-01-01T00:00:00.Z",
        "2024-01-01T00:00:00Zjunk",
        "2024-01-01T00:00:00+0200",
        "0000-01-01T00:00:00Z",
        "+024-01-01T00:00:00Z",
        "2024-01-01T00:00:00.1234567891Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (dm_weaviate_parse_date(bad[i], &ms))
            fail_msg("accepted date '%s'", bad[i]);
    assert_false(dm_weaviate_parse_date(NULL, &ms));
    for (int64_t t = -62135596800000LL; t < 253402300799999LL; t += 86400000LL * 997 + 7919) {
        assert_true(dm_weaviate_format_date(t, s));
        assert_true(dm_weaviate_parse_date(s, &ms));
        assert_int_equal(ms, t);
    }
}

static void z_normalises_and_calls_flat_windows_flat(void **state)
{
    (void)state;
    const double x[] = {1.1, 1.2, 1.15, 1.3};
    double z[4], want[4];
    assert_true(dm_weaviate_znorm(x, 4, z));
    znorm(x, 4, want);
    for (int i = 0; i < 4; i++)
        assert_true(z[i] == want[i]);
    const double flat[] = {1.1, 1.1, 1.1, 1.1 + 1e-9};
    assert_false(dm_weaviate_znorm(flat, 4, z));
    const double inf[] = {1.1, INFINITY, 1.2, 1.3};
    assert_false(dm_weaviate_znorm(inf, 4, z));
    const double huge[] = {1e308, 1e308, -1e308, 1e308};
    assert_false(dm_weaviate_znorm(huge, 4, z));
}

static void refuses_unusable_configs(void **state)
{
    (void)state;
    const dm_weaviate_config good = {
        "http://127.0.0.1:8080", NULL, "PriceWindow", "hnsw", 32, 1000};
    dm_weaviate_config bad[10];
    for (int i = 0; i < 10; i++)
        bad[i] = good;
    bad[0].url = "ftp://127.0.0.1:8080";
    bad[1].url = "http://user:pw@127.0.0.1:8080";
    bad[2].url = "http://127.0.0.1:8080/?x=1";
    bad[3].class_name = "priceWindow";
    bad[4].class_name = "Price-Window";
    bad[5].index_type = "ivf";
    bad[6].window = 1;
    bad[7].window = DM_WV_WINDOW_MAX + 1;
    bad[8].api_key = "key\r\nX-Injected: 1";
    bad[9].url = NULL;
    for (int i = 0; i < 10; i++) {
        dm_err err = {0};
        dm_weaviate *w = dm_weaviate_open(&bad[i], &err);
        if (w != NULL) {
            dm_weaviate_close(w);
            fail_msg("accepted config #%d", i);
        }
        assert_int_equal(err.code, DM_E_INVALID_FIELD);
    }
    dm_err err = {0};
    dm_weaviate *w = dm_weaviate_open(&good, &err);
    assert_non_null(w);
    dm_weaviate_close(w);
}

/* ---- readiness and schema ------------------------------------------------------------ */

static void reports_ready_and_not_ready(void **state)
{
    (void)state;
    const dm_stub_step steps[] = {
        {"GET", "/v1/.well-known/ready", "Authorization", BEARER, {NULL}, 200, NULL, 0},
        {"GET", "/v1/.well-known/ready", NULL, NULL, {NULL}, 503, NULL, 0},
    };
    fixture f;
    open_stub(&f, steps, 2);
    dm_err err = {0};
    assert_int_equal(dm_weaviate_ready(f.w, &err), DM_BS_OK);
    assert_int_equal(dm_weaviate_ready(f.w, &err), DM_BS_TRANSIENT);
    assert_contains(err.message, "not ready");
    finish(&f);
}

static const char CLASS_FLAT[] =
    "{\"class\":\"PriceWindow\",\"vectorizer\":\"none\",\"vectorIndexType\":\"flat\","
    "\"vectorIndexConfig\":{\"distance\":\"cosine\"},\"properties\":["
    "{\"name\":\"symbol\",\"dataType\":[\"text\"],\"tokenization\":\"field\"},"
    "{\"name\":\"timeframe\",\"dataType\":[\"text\"],\"tokenization\":\"field\"},"
    "{\"name\":\"timestamp\",\"dataType\":[\"date\"]},"
    "{\"name\":\"start_timestamp\",\"dataType\":[\"date\"]}]}";

static void assert_json_equal(const char *got, const char *want)
{
    cJSON *a = cJSON_Parse(got), *b = cJSON_Parse(want);
    bool same = a && b && cJSON_Compare(a, b, true);
    cJSON_Delete(a);
    cJSON_Delete(b);
    if (!same)
        fail_msg("JSON differs:\n got  %s\n want %s", got ? got : "(nothing)", want);
}

static void creates_the_class_as_documented(void **state)
{
    (void)state;
    const dm_stub_step steps[] = {
        {"POST",
         "/v1/schema",
         "Authorization",
         BEARER,
         {"\"PriceWindow\"", NULL},
         200,
         CLASS_FLAT,
         0},
    };
    fixture f;
    open_stub(&f, steps, 1);
    dm_err err = {0};
    assert_int_equal(dm_weaviate_ensure_class(f.w, &err), DM_BS_OK);
    assert_json_equal(dm_stub_body(f.stub, 0), CLASS_FLAT);
    finish(&f);
}

static void pins_hnsw_settings_when_asked_for_hnsw(void **state)
{
    (void)state;
    const dm_stub_step steps[] = {
        {"POST",
         "/v1/schema",
         "Content-Type",
         "application/json",
         {"\"vectorIndexType\":\"hnsw\"", NULL},
         200,
         "{}",
         0},
    };
    fixture f;
    open_with(&f, steps, 1, "hnsw", 4, 2000);
    dm_err err = {0};
    assert_int_equal(dm_weaviate_ensure_class(f.w, &err), DM_BS_OK);
    cJSON *body = cJSON_Parse(dm_stub_body(f.stub, 0));
    cJSON *vic = cJSON_GetObjectItem(body, "vectorIndexConfig");
    assert_string_equal(cJSON_GetObjectItem(vic, "distance")->valuestring, "cosine");
    assert_int_equal(cJSON_GetObjectItem(vic, "maxConnections")->valueint, 32);
    assert_int_equal(cJSON_GetObjectItem(vic, "efConstruction")->valueint, 128);
    cJSON_Delete(body);
    finish(&f);
}

#define EXISTS_422 "{\"error\":[{\"message\":\"class name \\\"PriceWindow\\\" already exists\"}]}"

/* What GET /v1/schema/{class} answers: our definition with the server's defaults added. */
static const char EXISTING_FLAT[] =
    "{\"class\":\"PriceWindow\",\"invertedIndexConfig\":{\"bm25\":{\"b\":0.75,\"k1\":1.2}},"
    "\"vectorizer\":\"none\",\"vectorIndexType\":\"flat\",\"vectorIndexConfig\":{"
    "\"distance\":\"cosine\",\"vectorCacheMaxObjects\":1000000000000},\"properties\":["
    "{\"name\":\"symbol\",\"dataType\":[\"text\"],\"tokenization\":\"field\","
    "\"indexFilterable\":true,\"indexSearchable\":true},"
    "{\"name\":\"timeframe\",\"dataType\":[\"text\"],\"tokenization\":\"field\"},"
    "{\"name\":\"timestamp\",\"dataType\":[\"date\"],\"indexFilterable\":true},"
    "{\"name\":\"start_timestamp\",\"dataType\":[\"date\"]}]}";

static const char EXISTING_HNSW[] =
    "{\"class\":\"PriceWindow\",\"vectorizer\":\"none\",\"vectorIndexType\":\"hnsw\","
    "\"vectorIndexConfig\":{\"distance\":\"cosine\",\"ef\":-1}}";

static const char EXISTING_INT_TIMES[] =
    "{\"class\":\"PriceWindow\",\"vectorIndexType\":\"flat\",\"vectorIndexConfig\":{"
    "\"distance\":\"cosine\"},\"properties\":["
    "{\"name\":\"symbol\",\"dataType\":[\"text\"],\"tokenization\":\"field\"},"
    "{\"name\":\"timeframe\",\"dataType\":[\"text\"],\"tokenization\":\"field\"},"
    "{\"name\":\"timestamp\",\"dataType\":[\"int\"]},"
    "{\"name\":\"start_timestamp\",\"dataType\":[\"int\"]}]}";

static const char EXISTING_WORD_SYMBOLS[] =
    "{\"class\":\"PriceWindow\",\"vectorIndexType\":\"flat\",\"vectorIndexConfig\":{"
    "\"distance\":\"cosine\"},\"properties\":[{\"name\":\"symbol\",\"dataType\":[\"text\"]}]}";

static void accepts_an_existing_class_with_the_same_settings(void **state)
{
    (void)state;
    const dm_stub_step steps[] = {
        {"POST", "/v1/schema", NULL, NULL, {NULL}, 422, EXISTS_422, 0},
        {"GET", "/v1/schema/PriceWindow", "Authorization", BEARER, {NULL}, 200, EXISTING_FLAT, 0},
    };
    fixture f;
    open_stub(&f, steps, 2);
    dm_err err = {0};
    assert_int_equal(dm_weaviate_ensure_class(f.w, &err), DM_BS_OK);
    finish(&f);
}

static void refuses_an_existing_class_with_other_settings(void **state)
{
    (void)state;
    static const struct {
        const char *existing, *says;
    } cases[] = {
        {EXISTING_HNSW, "vectorIndexType hnsw, not flat"},
        {EXISTING_INT_TIMES, "property timestamp of type int, not date"},
        {EXISTING_WORD_SYMBOLS, "property symbol tokenized word, not field"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const dm_stub_step steps[] = {
            {"POST", "/v1/schema", NULL, NULL, {NULL}, 422, EXISTS_422, 0},
            {"GET", "/v1/schema/PriceWindow", NULL, NULL, {NULL}, 200, cases[i].existing, 0},
        };
        fixture f;
        open_stub(&f, steps, 2);
        dm_err err = {0};
        assert_int_equal(dm_weaviate_ensure_class(f.w, &err), DM_BS_PERMANENT);
        assert_contains(err.message, cases[i].says);
        assert_contains(err.message, "PriceWindow");
        finish(&f);
    }
}

static void refuses_other_schema_errors(void **state)
{
    (void)state;
    const dm_stub_step steps[] = {
        {"POST",
         "/v1/schema",
         NULL,
         NULL,
         {NULL},
         422,
         "{\"error\":[{\"message\":\"'priceWindow' is not a valid class name\"}]}",
         0},
        {"POST",
         "/v1/schema",
         NULL,
         NULL,
         {NULL},
         500,
         "{\"error\":[{\"message\":\"could not apply schema: raft leader not found\"}]}",
         0},
        {"POST", "/v1/schema", NULL, NULL, {NULL}, 422, EXISTS_422, 0},
        {"GET", "/v1/schema/PriceWindow", NULL, NULL, {NULL}, 200, "[1,2,3]", 0},
    };
    fixture f;
    open_stub(&f, steps, 4);
    dm_err err = {0};
    assert_int_equal(dm_weaviate_ensure_class(f.w, &err), DM_BS_PERMANENT);
    assert_contains(err.message, "not a valid class name");
    assert_int_equal(dm_weaviate_ensure_class(f.w, &err), DM_BS_TRANSIENT);
    assert_contains(err.message, "raft leader not found");
    assert_int_equal(dm_weaviate_ensure_class(f.w, &err), DM_BS_TRANSIENT);
    assert_contains(err.message, "unexpected reply");
    finish(&f);
}

/* ---- writes -------------------------------------------------------------------------- */

static const double GBP[] = {1.27, 1.26, 1.28, 1.25};

/* A batch reply of k elements; element `bad` (or none, -1) carries an error. */
static char *batch_reply(size_t k, long bad, const char *message)
{
    size_t cap = 256 * (k + 1) + (message ? strlen(message) : 0);
    char *r = malloc(cap), *p = r;
    p += sprintf(p, "[");
    for (size_t i = 0; i < k; i++) {
        p += sprintf(p,
                     "%s{\"class\":\"PriceWindow\",\"id\":\"9ff5511f-9682-5326-9381-"
                     "2f19c18997d3\",\"properties\":{},\"deprecations\":null,\"result\":",
                     i ? "," : "");
        if ((long)i == bad)
            p += sprintf(p, "{\"errors\":{\"error\":[{\"message\":\"%s\"}]}}}", message);
        else
            p += sprintf(p, "{}}");
    }
    sprintf(p, "]");
    return r;
}

static void assert_vector(const cJSON *v, const double *closes)
{
    double want[4];
    znorm(closes, 4, want);
    assert_int_equal(cJSON_GetArraySize(v), 4);
    for (int i = 0; i < 4; i++)
        if (cJSON_GetArrayItem(v, i)->valuedouble != want[i]) /* %.17g: bit-exact */
            fail_msg("vector[%d] %.17g, want %.17g", i, cJSON_GetArrayItem(v, i)->valuedouble,
                     want[i]);
}

static void stores_windows_with_uuid5_ids_and_znormalised_vectors(void **state)
{
    (void)state;
    char *ok2 = batch_reply(2, -1, NULL);
    const dm_stub_step steps[] = {
        {"POST",
         "/v1/batch/objects",
         "Content-Type",
         "application/json",
         {"\"objects\"", NULL},
         200,
         ok2,
         0},
    };
    const dm_pattern_window win[] = {
        {"EUR/USD", "1h", JAN_1, JAN_1 - 3 * HOUR, RISING},
        {"EUR/USD", "1h", JAN_1 + HOUR, JAN_1 - 2 * HOUR, FLAT},
        {"GBP/USD", "4h", JAN_1 + 4 * HOUR, JAN_1 - 8 * HOUR, GBP},
    };
    fixture f;
    open_stub(&f, steps, 1);
    dm_err err = {0};
    assert_int_equal(dm_weaviate_put_windows(f.w, win, 3, &err), DM_BS_OK);
    cJSON *body = cJSON_Parse(dm_stub_body(f.stub, 0));
    cJSON *objects = cJSON_GetObjectItem(body, "objects");
    assert_int_equal(cJSON_GetArraySize(objects), 2); /* the flat window is not stored */
    cJSON *o = cJSON_GetArrayItem(objects, 0);
    assert_string_equal(cJSON_GetObjectItem(o, "class")->valuestring, "PriceWindow");
    /* uuid.uuid5(uuid.NAMESPACE_DNS, "EUR/USD|1h|1704067200000") */
    assert_string_equal(cJSON_GetObjectItem(o, "id")->valuestring,
                        "9ff5511f-9682-5326-9381-2f19c18997d3");
    char *props = cJSON_PrintUnformatted(cJSON_GetObjectItem(o, "properties"));
    assert_json_equal(props, "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"timestamp\":"
                             "\"2024-01-01T00:00:00.000Z\",\"start_timestamp\":"
                             "\"2023-12-31T21:00:00.000Z\"}");
    cJSON_free(props);
    assert_vector(cJSON_GetObjectItem(o, "vector"), RISING);
    o = cJSON_GetArrayItem(objects, 1);
    /* uuid.uuid5(uuid.NAMESPACE_DNS, "GBP/USD|4h|1704081600000") */
    assert_string_equal(cJSON_GetObjectItem(o, "id")->valuestring,
                        "3c6a1497-b1d7-55b6-83c1-a9d754724065");
    assert_vector(cJSON_GetObjectItem(o, "vector"), GBP);
    cJSON_Delete(body);
    finish(&f);
    free(ok2);
}

static void sends_the_api_key_as_a_bearer_token(void **state)
{
    (void)state;
    char *ok1 = batch_reply(1, -1, NULL);
    const dm_stub_step steps[] = {
        {"POST", "/v1/batch/objects", "Authorization", BEARER, {NULL}, 200, ok1, 0},
    };
    const dm_pattern_window win = {"EUR/USD", "1h", JAN_1, JAN_1 - 3 * HOUR, RISING};
    fixture f;
    open_stub(&f, steps, 1);
    dm_err err = {0};
    assert_int_equal(dm_weaviate_put_windows(f.w, &win, 1, &err), DM_BS_OK);
    finish(&f);
    free(ok1);
}

static void splits_batches_above_the_request_bound(void **state)
{
    (void)state;
    enum { N = 2 * DM_WV_BATCH_MAX + 50 };
    static double closes[N][4];
    static dm_pattern_window win[N];
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < 4; k++)
            closes[i][k] = 1.1 + 0.001 * ((i + k * 3) % 7);
        win[i] = (dm_pattern_window){"USD/JPY", "1h", JAN_1 + i * HOUR, JAN_1 + (i - 3) * HOUR,
                                     closes[i]};
        if (!dm_weaviate_znorm(closes[i], 4, (double[4]){0}))
            closes[i][3] += 0.01; /* keep every window shaped */
    }
    char *full = batch_reply(DM_WV_BATCH_MAX, -1, NULL), *rest = batch_reply(50, -1, NULL);
    const dm_stub_step steps[] = {
        {"POST", "/v1/batch/objects", NULL, NULL, {NULL}, 200, full, 0},
        {"POST", "/v1/batch/objects", NULL, NULL, {NULL}, 200, full, 0},
        {"POST", "/v1/batch/objects", NULL, NULL, {NULL}, 200, rest, 0},
    };
    fixture f;
    open_stub(&f, steps, 3);
    dm_err err = {0};
    assert_int_equal(dm_weaviate_put_windows(f.w, win, N, &err), DM_BS_OK);
    static const int sizes[] = {DM_WV_BATCH_MAX, DM_WV_BATCH_MAX, 50};
    for (size_t i = 0; i < 3; i++) {
        cJSON *body = cJSON_Parse(dm_stub_body(f.stub, i));
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(body, "objects")), sizes[i]);
        cJSON_Delete(body);
    }
    finish(&f);
    free(full);
    free(rest);
}

static void fails_a_batch_whose_objects_carry_errors(void **state)
{
    (void)state;
    char *one_bad = batch_reply(2, 1, "vector lengths don't match: 4 vs 32");
    const dm_stub_step steps[] = {
        {"POST", "/v1/batch/objects", NULL, NULL, {NULL}, 200, one_bad, 0},
        {"POST",
         "/v1/batch/objects",
         NULL,
         NULL,
         {NULL},
         200,
         "[{\"result\":{\"status\":\"SUCCESS\"}},{\"result\":{\"status\":\"FAILED\"}}]",
         0},
    };
    const dm_pattern_window win[] = {
        {"EUR/USD", "1h", JAN_1, JAN_1 - 3 * HOUR, RISING},
        {"GBP/USD", "4h", JAN_1 + 4 * HOUR, JAN_1 - 8 * HOUR, GBP},
    };
    fixture f;
    open_stub(&f, steps, 2);
    dm_err err = {0};
    assert_int_equal(dm_weaviate_put_windows(f.w, win, 2, &err), DM_BS_TRANSIENT);
    assert_contains(err.message, "1 of 2 objects not stored");
    assert_contains(err.message, "vector lengths don't match: 4 vs 32");
    assert_int_equal(dm_weaviate_put_windows(f.w, win, 2, &err), DM_BS_TRANSIENT);
    assert_contains(err.message, "1 of 2 objects not stored, first: no message");
    finish(&f);
    free(one_bad);
}

static void classifies_batch_failures(void **state)
{
    (void)state;
    static const struct {
        int status;
        const char *reply;
        dm_bstatus want;
        const char *says;
    } cases[] = {
        {401, "{\"code\":401,\"message\":\"anonymous access not enabled\"}", DM_BS_PERMANENT,
         "API key was refused"},
        {403, "{\"error\":[{\"message\":\"forbidden: key lacks create_data\"}]}", DM_BS_PERMANENT,
         "forbidden: key lacks create_data"},
        {422, "{\"error\":[{\"message\":\"invalid object: no such class\"}]}", DM_BS_PERMANENT,
         "HTTP 422"},
        {400, "bad request", DM_BS_PERMANENT, "HTTP 400"},
        {500, "{\"error\":[{\"message\":\"disk full\"}]}", DM_BS_TRANSIENT, "disk full"},
        {503, "", DM_BS_TRANSIENT, "empty reply"},
        {429, "slow down", DM_BS_TRANSIENT, "HTTP 429"},
        {200, "{\"objects\":[]}", DM_BS_TRANSIENT, "not one result per object"},
        {200, "[]", DM_BS_TRANSIENT, "not one result per object"},
        {200, "[{}, {}]", DM_BS_TRANSIENT, "not one result per object"},
        {200, "not json", DM_BS_TRANSIENT, "not one result per object"},
        {200, "[5]", DM_BS_TRANSIENT, "1 of 1 objects not stored"},
        {200, "[{\"result\":{\"errors\":{\"error\":[{\"message\":7}]}}}]", DM_BS_TRANSIENT,
         "first: no message"},
    };
    const dm_pattern_window win = {"EUR/USD", "1h", JAN_1, JAN_1 - 3 * HOUR, RISING};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const dm_stub_step steps[] = {
            {"POST", "/v1/batch/objects", NULL, NULL, {NULL}, cases[i].status, cases[i].reply, 0},
        };
        fixture f;
        open_stub(&f, steps, 1);
        dm_err err = {0};
        dm_bstatus st = dm_weaviate_put_windows(f.w, &win, 1, &err);
        if (st != cases[i].want)
            fail_msg("case %zu: status %d, want %d (%s)", i, st, cases[i].want, err.message);
        assert_contains(err.message, cases[i].says);
        finish(&f);
    }
}

static void refuses_bad_windows_before_sending_anything(void **state)
{
    (void)state;
    const double nan_close[] = {1.1, NAN, 1.2, 1.3};
    const dm_pattern_window good = {"EUR/USD", "1h", JAN_1, JAN_1 - 3 * HOUR, RISING};
    dm_pattern_window bad[7];
    for (int i = 0; i < 7; i++)
        bad[i] = good;
    bad[0].closes = nan_close;
    bad[1].symbol = "EUR/USD\" } } { Get";
    bad[2].symbol = "ABCDEFGHIJKLM/ABCDEFGHIJKL";
    bad[3].timeframe = "2h";
    bad[4].start_timestamp = JAN_1 + 1;
    bad[5].timestamp = INT64_MAX;
    bad[6].closes = NULL;
    fixture f;
    open_stub(&f, NULL, 0);
    for (int i = 0; i < 7; i++) {
        dm_pattern_window two[2] = {good, bad[i]};
        dm_err err = {0};
        if (dm_weaviate_put_windows(f.w, two, 2, &err) != DM_BS_PERMANENT)
            fail_msg("window #%d accepted", i);
        assert_int_equal(err.code, DM_E_INVALID_FIELD);
        assert_contains(err.message, "window 1");
    }
    finish(&f); /* nothing came to the server */
}

static void treats_a_slow_server_as_transient(void **state)
{
    (void)state;
    const dm_stub_step steps[] = {
        {"POST", "/v1/batch/objects", NULL, NULL, {NULL}, 200, "[{}]", 1200},
    };
    const dm_pattern_window win = {"EUR/USD", "1h", JAN_1, JAN_1 - 3 * HOUR, RISING};
    fixture f;
    open_with(&f, steps, 1, "flat", 4, 250);
    dm_err err = {0};
    assert_int_equal(dm_weaviate_put_windows(f.w, &win, 1, &err), DM_BS_TRANSIENT);
    assert_contains(err.message, "Timeout");
    finish(&f);
}

static void treats_a_server_that_is_not_there_as_transient(void **state)
{
    (void)state;
    char url[64];
    dm_stub *gone = dm_stub_start(NULL, 0);
    assert_non_null(gone);
    dm_stub_url(gone, url, sizeof url);
    dm_stub_stop(gone);
    dm_weaviate_config cfg = {url, NULL, "PriceWindow", "flat", 4, 1000};
    dm_err err = {0};
    dm_weaviate *w = dm_weaviate_open(&cfg, &err);
    assert_non_null(w);
    assert_int_equal(dm_weaviate_ready(w, &err), DM_BS_TRANSIENT);
    assert_contains(err.message, "127.0.0.1");
    dm_weaviate_close(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(makes_ids_as_pythons_generate_uuid5),
        cmocka_unit_test(writes_dates_as_rfc3339_utc_and_reads_them_back),
        cmocka_unit_test(z_normalises_and_calls_flat_windows_flat),
        cmocka_unit_test(refuses_unusable_configs),
        cmocka_unit_test(reports_ready_and_not_ready),
        cmocka_unit_test(creates_the_class_as_documented),
        cmocka_unit_test(pins_hnsw_settings_when_asked_for_hnsw),
        cmocka_unit_test(accepts_an_existing_class_with_the_same_settings),
        cmocka_unit_test(refuses_an_existing_class_with_other_settings),
        cmocka_unit_test(refuses_other_schema_errors),
        cmocka_unit_test(stores_windows_with_uuid5_ids_and_znormalised_vectors),
        cmocka_unit_test(sends_the_api_key_as_a_bearer_token),
        cmocka_unit_test(splits_batches_above_the_request_bound),
        cmocka_unit_test(fails_a_batch_whose_objects_carry_errors),
        cmocka_unit_test(classifies_batch_failures),
        cmocka_unit_test(refuses_bad_windows_before_sending_anything),
        cmocka_unit_test(treats_a_slow_server_as_transient),
        cmocka_unit_test(treats_a_server_that_is_not_there_as_transient),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
