/* The ArangoDB adapter's failures against the stub: tokens that expire or are refused,
 * error bodies, slow and absent servers, and hostile replies. */
#include <cjson/cJSON.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_arangodb_fixture.h"

/* ---- auth and errors ------------------------------------------------------------------ */

static void an_expired_token_is_renewed_once_and_the_request_retried(void **state)
{
    (void)state;
    dm_stub *s =
        START(AUTH(JWT1),
              {"GET",
               WINDOW_PATH,
               BEARER,
               {NULL},
               401,
               ERROR_BODY(401, 11, "not authorized to execute this request"),
               0},
              AUTH(JWT2),
              {"GET", WINDOW_PATH, "Authorization", "Bearer " JWT2, {NULL}, 200, WINDOW_DOC, 0});
    dm_arango *a = open_stub(s, 2000);
    dm_err err = {0};
    dm_arango_window w;
    assert_int_equal(dm_arango_stored_window(a, "1h", &w, &err), DM_BS_OK);
    finish(s, a);
}

static void a_token_refused_twice_is_permanent(void **state)
{
    (void)state;
    dm_stub *s =
        START(AUTH(JWT1), {"GET", WINDOW_PATH, BEARER, {NULL}, 401, ERROR_BODY(401, 11, "nope"), 0},
              AUTH(JWT2),
              {"GET",
               WINDOW_PATH,
               "Authorization",
               "Bearer " JWT2,
               {NULL},
               401,
               ERROR_BODY(401, 11, "nope"),
               0});
    dm_arango *a = open_stub(s, 2000);
    dm_err err = {0};
    dm_arango_window w;
    assert_int_equal(dm_arango_stored_window(a, "1h", &w, &err), DM_BS_PERMANENT);
    assert_non_null(strstr(err.message, "HTTP 401"));
    finish(s, a);
}

static void wrong_credentials_are_permanent(void **state)
{
    (void)state;
    dm_stub *s = START({"POST",
                        "/_open/auth",
                        NULL,
                        NULL,
                        {NULL},
                        401,
                        ERROR_BODY(401, 401, "Wrong credentials"),
                        0});
    dm_arango *a = open_stub(s, 2000);
    dm_err err = {0};
    assert_int_equal(dm_arango_ensure_graph(a, &err), DM_BS_PERMANENT);
    assert_non_null(strstr(err.message, "Wrong credentials"));
    finish(s, a);
}

static void error_bodies_name_errorNum_and_follow_the_contract(void **state)
{
    (void)state;
    dm_stub *s = START(
        AUTH(JWT1), STORED_WINDOW,
        {"POST",
         CURSOR,
         BEARER,
         {NULL},
         400,
         ERROR_BODY(400, 1501, "syntax error, unexpected identifier near 'x' at position 1:1"),
         0},
        STORED_WINDOW,
        {"POST",
         CURSOR,
         BEARER,
         {NULL},
         404,
         ERROR_BODY(404, 1203, "collection or view not found: dm_correlations"),
         0},
        STORED_WINDOW,
        {"POST",
         CURSOR,
         BEARER,
         {NULL},
         201,
         "{\"result\":[" ROW_EG "],\"hasMore\":true,\"id\":\"42\",\"error\":false,\"code\":201}",
         0},
        {"POST", CURSOR "/42", BEARER, {NULL}, 404, ERROR_BODY(404, 1600, "cursor not found"), 0},
        STORED_WINDOW, {"POST", CURSOR, BEARER, {NULL}, 500, "<html>internal</html>", 0});
    dm_arango *a = open_stub(s, 2000);
    dm_err err = {0};
    dm_arango_edge *e = NULL;
    size_t n = 0;
    assert_int_equal(dm_arango_correlations(a, "1h", "EUR/USD", 0.5, &e, &n, &err),
                     DM_BS_PERMANENT);
    assert_non_null(strstr(err.message, "errorNum 1501"));
    assert_non_null(strstr(err.message, "syntax error"));
    assert_int_equal(dm_arango_correlations(a, "1h", "EUR/USD", 0.5, &e, &n, &err),
                     DM_BS_PERMANENT);
    assert_non_null(strstr(err.message, "errorNum 1203"));
    assert_non_null(strstr(err.message, "ensure_graph"));
    assert_int_equal(dm_arango_correlations(a, "1h", "EUR/USD", 0.5, &e, &n, &err),
                     DM_BS_TRANSIENT);
    assert_non_null(strstr(err.message, "errorNum 1600"));
    assert_null(e);
    assert_int_equal(dm_arango_correlations(a, "1h", "EUR/USD", 0.5, &e, &n, &err),
                     DM_BS_TRANSIENT);
    assert_non_null(strstr(err.message, "HTTP 500"));
    finish(s, a);
}

static void a_slow_server_is_transient(void **state)
{
    (void)state;
    dm_stub *s = START({"GET",
                        "/_admin/server/availability",
                        NULL,
                        NULL,
                        {NULL},
                        200,
                        "{\"mode\":\"default\"}",
                        1500});
    dm_arango *a = open_stub(s, 300);
    dm_err err = {0};
    assert_int_equal(dm_arango_available(a, &err), DM_BS_TRANSIENT);
    assert_non_null(strstr(err.message, "imeout"));
    finish(s, a);
}

static void nobody_listening_is_transient(void **state)
{
    (void)state;
    dm_arango_config cfg = {"http://127.0.0.1:1", "dm", NULL, NULL, 1000};
    dm_err err = {0};
    dm_arango *a = dm_arango_open(&cfg, &err);
    assert_non_null(a);
    assert_int_equal(dm_arango_ensure_graph(a, &err), DM_BS_TRANSIENT);
    dm_arango_close(a);
}

/* ---- hostile replies ------------------------------------------------------------------ */

/* One correlations read answered with `reply` to the query: never OK, never a crash. */
static void hostile_query_reply(const char *reply, int status)
{
    dm_stub *s =
        START(AUTH(JWT1), STORED_WINDOW, {"POST", CURSOR, BEARER, {NULL}, status, reply, 0});
    dm_arango *a = open_stub(s, 2000);
    dm_err err = {0};
    dm_arango_edge *e = NULL;
    size_t n = 0;
    assert_int_equal(dm_arango_correlations(a, "1h", "EUR/USD", 0.5, &e, &n, &err),
                     DM_BS_PERMANENT);
    assert_null(e);
    finish(s, a);
}

static void malformed_replies_are_errors_not_crashes(void **state)
{
    (void)state;
    static const char *const replies[] = {
        "<html>proxy</html>",
        "{\"result\":{},\"hasMore\":false}",
        "{\"result\":[],\"hasMore\":\"no\"}",
        "{\"result\":[],\"hasMore\":true}",                         /* no cursor id */
        "{\"result\":[],\"hasMore\":true,\"id\":\"../../_admin\"}", /* id into a path */
        "{\"result\":[42],\"hasMore\":false}",
        "{\"result\":[{\"a\":\"EUR/USD\",\"b\":\"ABCDEFGHIJKLMNOPQRSTUVWXYZ/USD\",\"r\":0.9,"
        "\"n\":1}],\"hasMore\":false}", /* overlong symbol */
        "{\"result\":[{\"a\":\"AUD/USD\",\"b\":\"GBP/USD\",\"r\":0.9,\"n\":1}],\"hasMore\":false}",
        "{\"result\":[{\"a\":\"GBP/USD\",\"b\":\"EUR/USD\",\"r\":0.9,\"n\":1}],\"hasMore\":false}",
        "{\"result\":[{\"a\":\"EUR/USD\",\"b\":\"GBP/"
        "USD\",\"r\":1e308,\"n\":1}],\"hasMore\":false}",
        "{\"result\":[{\"a\":\"EUR/USD\",\"b\":\"GBP/USD\",\"r\":0.9,\"n\":-1}],\"hasMore\":false}",
        "{\"result\":[{\"a\":\"EUR/USD\",\"b\":\"GBP/"
        "USD\",\"r\":0.9,\"n\":1.5}],\"hasMore\":false}",
        "{\"result\":[{\"a\":\"EUR/USD\",\"b\":null,\"r\":0.9,\"n\":1}],\"hasMore\":false}",
    };
    for (size_t i = 0; i < sizeof replies / sizeof *replies; i++)
        hostile_query_reply(replies[i], 201);
    hostile_query_reply("{\"error\":true,\"errorNum\":\"x\",\"errorMessage\":[1]}", 400);
}

static void malformed_window_documents_and_tokens_are_refused(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "{\"timeframe\":\"1h\",\"window_start\":\"1\",\"window_end\":2,\"window_candles\":1,"
        "\"gen\":\"" GEN "\"}",
        "{\"timeframe\":\"4h\",\"window_start\":1,\"window_end\":2,\"window_candles\":1,"
        "\"gen\":\"" GEN "\"}",
        "{\"timeframe\":\"1h\",\"window_start\":3,\"window_end\":2,\"window_candles\":1,"
        "\"gen\":\"" GEN "\"}",
        "{\"timeframe\":\"1h\",\"window_start\":1,\"window_end\":2,\"window_candles\":1,"
        "\"gen\":\"' OR true\"}",
        "[]",
    };
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
        dm_stub *s = START(AUTH(JWT1), {"GET", WINDOW_PATH, BEARER, {NULL}, 200, docs[i], 0});
        dm_arango *a = open_stub(s, 2000);
        dm_err err = {0};
        dm_arango_window w;
        assert_int_equal(dm_arango_stored_window(a, "1h", &w, &err), DM_BS_PERMANENT);
        finish(s, a);
    }
    /* A token that would smuggle a header line is not used. */
    dm_stub *s = START(
        {"POST", "/_open/auth", NULL, NULL, {NULL}, 200, "{\"jwt\":\"abc\\r\\nX-Evil: 1\"}", 0});
    dm_arango *a = open_stub(s, 2000);
    dm_err err = {0};
    dm_arango_window w;
    assert_int_equal(dm_arango_stored_window(a, "1h", &w, &err), DM_BS_PERMANENT);
    finish(s, a);
}

static void huge_replies_are_refused_and_their_cursor_deleted(void **state)
{
    (void)state;
    /* One more row than a read may hold, in one batch with more to come. */
    size_t rows = DM_ARANGO_MAX_ROWS + 1, cap = rows * sizeof(ROW_EG) + 128;
    char *many = malloc(cap), *p = many;
    p += sprintf(p, "{\"result\":[");
    for (size_t i = 0; i < rows; i++)
        p += sprintf(p, "%s%s", i ? "," : "", ROW_EG);
    sprintf(p, "],\"hasMore\":true,\"id\":\"9\",\"error\":false,\"code\":201}");
    dm_stub *s = START(AUTH(JWT1), STORED_WINDOW, {"POST", CURSOR, BEARER, {NULL}, 201, many, 0},
                       {"DELETE", CURSOR "/9", BEARER, {NULL}, 202, "{\"id\":\"9\"}", 0});
    dm_arango *a = open_stub(s, 5000);
    dm_err err = {0};
    dm_arango_edge *e = NULL;
    size_t n = 0;
    assert_int_equal(dm_arango_correlations(a, "1h", "EUR/USD", 0.5, &e, &n, &err),
                     DM_BS_PERMANENT);
    assert_non_null(strstr(err.message, "rows"));
    finish(s, a);
    free(many); /* the stub replies from the caller's strings */
    /* A reply over the byte bound is cut off, not buffered. */
    size_t big = DM_ARANGO_MAX_REPLY + 1024;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    huge[big] = '\0';
    s = START(AUTH(JWT1), {"GET", WINDOW_PATH, BEARER, {NULL}, 200, huge, 0});
    a = open_stub(s, 5000);
    dm_arango_window w;
    assert_int_equal(dm_arango_stored_window(a, "1h", &w, &err), DM_BS_PERMANENT);
    assert_non_null(strstr(err.message, "larger than 16 MB"));
    finish(s, a);
    free(huge);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_expired_token_is_renewed_once_and_the_request_retried),
        cmocka_unit_test(a_token_refused_twice_is_permanent),
        cmocka_unit_test(wrong_credentials_are_permanent),
        cmocka_unit_test(error_bodies_name_errorNum_and_follow_the_contract),
        cmocka_unit_test(a_slow_server_is_transient),
        cmocka_unit_test(nobody_listening_is_transient),
        cmocka_unit_test(malformed_replies_are_errors_not_crashes),
        cmocka_unit_test(malformed_window_documents_and_tokens_are_refused),
        cmocka_unit_test(huge_replies_are_refused_and_their_cursor_deleted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
