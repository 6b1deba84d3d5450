/* What the ArangoDB adapter's tests share: the stub fixture, canned documents and rows. */
#ifndef DM_TEST_ARANGODB_FIXTURE_H
#define DM_TEST_ARANGODB_FIXTURE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "backend/arangodb.h"
#include "http_stub.h"

#define STEPS(...) ((const dm_stub_step[]){__VA_ARGS__})
#define START(...)                                                                                 \
    dm_stub_start(STEPS(__VA_ARGS__), sizeof STEPS(__VA_ARGS__) / sizeof(dm_stub_step))

#define AUTH(jwt)                                                                                  \
    {                                                                                              \
        "POST", "/_open/auth", NULL, NULL, {"\"username\":\"root\"", "\"password\":\"s3cret\""},   \
            200, "{\"jwt\":\"" jwt "\"}", 0                                                        \
    }
#define BEARER "Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig1"
#define JWT1 "eyJhbGciOiJIUzI1NiJ9.e30.sig1"
#define JWT2 "eyJhbGciOiJIUzI1NiJ9.e30.sig2"
#define WINDOW_PATH "/_db/dm/_api/document/dm_windows/1h"
#define GEN "0123456789abcdef"
#define WINDOW_DOC                                                                                 \
    "{\"_key\":\"1h\",\"_id\":\"dm_windows/1h\",\"_rev\":\"_hA\",\"timeframe\":\"1h\","            \
    "\"window_start\":1700000000000,\"window_end\":1700360000000,\"window_candles\":100,"          \
    "\"gen\":\"" GEN "\"}"
#define STORED_WINDOW                                                                              \
    {                                                                                              \
        "GET", WINDOW_PATH, BEARER, {NULL}, 200, WINDOW_DOC, 0                                     \
    }
#define ERROR_BODY(code, num, msg)                                                                 \
    "{\"error\":true,\"code\":" #code ",\"errorNum\":" #num ",\"errorMessage\":\"" msg "\"}"
#define NO_WINDOW                                                                                  \
    {                                                                                              \
        "GET", WINDOW_PATH, BEARER, {NULL}, 404, ERROR_BODY(404, 1202, "document not found"), 0    \
    }
#define CURSOR "/_db/dm/_api/cursor"
#define ROW_EG "{\"a\":\"EUR/USD\",\"b\":\"GBP/USD\",\"r\":0.91,\"n\":100}"
#define ROW_EJ "{\"a\":\"EUR/USD\",\"b\":\"USD/JPY\",\"r\":-0.8,\"n\":100}"
#define ROW_AE "{\"a\":\"AUD/USD\",\"b\":\"EUR/USD\",\"r\":0.7,\"n\":100}"

static inline dm_arango *open_stub(dm_stub *s, int timeout_ms)
{
    assert_non_null(s);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", dm_stub_port(s));
    dm_arango_config cfg = {url, "dm", "root", "s3cret", timeout_ms};
    dm_err err = {0};
    dm_arango *a = dm_arango_open(&cfg, &err);
    assert_non_null(a);
    return a;
}

static inline void finish(dm_stub *s, dm_arango *a)
{
    char why[600];
    bool ok = dm_stub_verify(s, why, sizeof why);
    dm_arango_close(a);
    dm_stub_stop(s);
    if (!ok)
        fail_msg("%s", why);
}

/* The JSON body a step received, parsed (the caller deletes it). */
static inline cJSON *body_of(dm_stub *s, size_t step)
{
    const char *b = dm_stub_body(s, step);
    assert_non_null(b);
    cJSON *j = cJSON_Parse(b);
    assert_non_null(j);
    return j;
}

static inline const char *str_at(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

static inline double num_at(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static const dm_arango_window WINDOW = {"1h", 1700000000000LL, 1700360000000LL, 100};
static const char *const SYMBOLS[] = {"EUR/USD", "GBP/USD", "USD/JPY"};
static const dm_arango_edge EDGES[] = {{"EUR/USD", "GBP/USD", 0.1, 100},
                                       {"EUR/USD", "USD/JPY", -0.8, 100}};

#endif
