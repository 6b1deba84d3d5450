/* The ArangoDB adapter against a stub that plays the documented HTTP API (3.11/3.12):
 * the exact requests it sends (method, path, Bearer token, JSON bodies) and what it makes
 * of documented replies, errors, slow servers and hostile ones. */
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

/* ---- keys and configuration ----------------------------------------------------------- */

static void symbol_keys_are_valid_keys_and_one_to_one(void **state)
{
    (void)state;
    char k[DM_SYMBOL_MAX + 1];
    assert_true(dm_arango_symbol_key("EUR/USD", k));
    assert_string_equal(k, "EUR_USD");
    assert_true(dm_arango_symbol_key("EURUSD", k)); /* a different symbol, a different key */
    assert_string_equal(k, "EURUSD");
    assert_true(dm_arango_symbol_key("ABCDEFGHIJKL/ABCDEFGHIJK", k));
    static const char *const bad[] = {"EUR/USD/JPY",
                                      "eur/usd",
                                      "EUR_USD",
                                      "",
                                      "/USD",
                                      "EUR/",
                                      "EUR USD",
                                      "EUR/US'D",
                                      "ABCDEFGHIJKLM/ABCDEFGHIJK",
                                      "\xc3\x89UR/USD"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (dm_arango_symbol_key(bad[i], k))
            fail_msg("accepted '%s'", bad[i]);
    assert_false(dm_arango_symbol_key(NULL, k));
}

static void open_refuses_unusable_configs(void **state)
{
    (void)state;
    static const dm_arango_config bad[] = {
        {"ftp://127.0.0.1:8529", "dm", NULL, NULL, 0},
        {"http://root:pw@127.0.0.1:8529", "dm", NULL, NULL, 0},
        {"http://127.0.0.1:8529/_db/x", "dm", NULL, NULL, 0},
        {"http://127.0.0.1:8529", "d m", NULL, NULL, 0},
        {"http://127.0.0.1:8529", "_system", NULL, NULL, 0},
        {"http://127.0.0.1:8529", "dm", "root", "pw\r\nX: 1", 0},
        {NULL, "dm", NULL, NULL, 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        dm_err err = {0};
        dm_arango *a = dm_arango_open(&bad[i], &err);
        if (a != NULL) {
            dm_arango_close(a);
            fail_msg("config #%zu accepted", i);
        }
        assert_int_not_equal(err.code, DM_OK);
    }
}

/* ---- health and schema ---------------------------------------------------------------- */

static void availability_is_ok_then_transient_while_starting(void **state)
{
    (void)state;
    dm_stub *s = START({"GET",
                        "/_admin/server/availability",
                        NULL,
                        NULL,
                        {NULL},
                        200,
                        "{\"mode\":\"default\",\"readOnly\":false}",
                        0},
                       {"GET",
                        "/_admin/server/availability",
                        NULL,
                        NULL,
                        {NULL},
                        503,
                        ERROR_BODY(503, 503, "service unavailable"),
                        0});
    dm_arango *a = open_stub(s, 2000);
    dm_err err = {0};
    assert_int_equal(dm_arango_available(a, &err), DM_BS_OK);
    assert_int_equal(dm_arango_available(a, &err), DM_BS_TRANSIENT);
    assert_non_null(strstr(err.message, "503"));
    finish(s, a);
}

static void ensure_graph_creates_collections_and_graph_and_accepts_existing_ones(void **state)
{
    (void)state;
    dm_stub *s = START(
        AUTH(JWT1),
        {"POST", "/_db/dm/_api/collection", BEARER, {"\"dm_symbols\""}, 200, "{\"type\":2}", 0},
        {"POST", "/_db/dm/_api/collection", BEARER, {"\"dm_correlations\""}, 200, "{}", 0},
        {"POST", "/_db/dm/_api/collection", BEARER, {"\"dm_windows\""}, 200, "{}", 0},
        {"POST",
         "/_db/dm/_api/gharial",
         BEARER,
         {"\"dm_correlation_graph\""},
         202,
         "{\"error\":false,\"code\":202,\"graph\":{}}",
         0},
        {"POST",
         "/_db/dm/_api/collection",
         BEARER,
         {NULL},
         409,
         ERROR_BODY(409, 1207, "duplicate name"),
         0},
        {"POST",
         "/_db/dm/_api/collection",
         BEARER,
         {NULL},
         409,
         ERROR_BODY(409, 1207, "duplicate name"),
         0},
        {"POST",
         "/_db/dm/_api/collection",
         BEARER,
         {NULL},
         409,
         ERROR_BODY(409, 1207, "duplicate name"),
         0},
        {"POST",
         "/_db/dm/_api/gharial",
         BEARER,
         {NULL},
         409,
         ERROR_BODY(409, 1925, "graph already exists"),
         0},
        /* a conflict that is not "exists" is not success */
        {"POST",
         "/_db/dm/_api/collection",
         BEARER,
         {NULL},
         409,
         ERROR_BODY(409, 1200, "write-write conflict"),
         0});
    dm_arango *a = open_stub(s, 2000);
    dm_err err = {0};
    assert_int_equal(dm_arango_ensure_graph(a, &err), DM_BS_OK);
    assert_int_equal(dm_arango_ensure_graph(a, &err), DM_BS_OK);
    assert_int_equal(dm_arango_ensure_graph(a, &err), DM_BS_TRANSIENT);
    assert_non_null(strstr(err.message, "1200"));
    static const double types[] = {2, 3, 2};
    for (size_t i = 0; i < 3; i++) {
        cJSON *j = body_of(s, 1 + i);
        assert_true(num_at(j, "type") == types[i]);
        cJSON_Delete(j);
    }
    cJSON *g = body_of(s, 4);
    const cJSON *def = cJSON_GetArrayItem(cJSON_GetObjectItem(g, "edgeDefinitions"), 0);
    assert_string_equal(str_at(def, "collection"), "dm_correlations");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(def, "from"), 0)->valuestring,
                        "dm_symbols");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(def, "to"), 0)->valuestring,
                        "dm_symbols");
    cJSON_Delete(g);
    finish(s, a);
}

/* ---- writes --------------------------------------------------------------------------- */

#define IMPORT(coll)                                                                               \
    "/_db/dm/_api/import?collection=" coll "&type=documents&onDuplicate=update&details=true"

static void
put_window_imports_keyed_documents_switches_the_window_then_removes_stale_edges(void **state)
{
    (void)state;
    dm_stub *s = START(
        AUTH(JWT1), NO_WINDOW,
        {"POST",
         IMPORT("dm_symbols"),
         BEARER,
         {"\"_key\":\"EUR_USD\",\"symbol\":\"EUR/USD\""},
         201,
         "{\"error\":false,\"created\":2,\"errors\":0,\"empty\":0,\"updated\":1,"
         "\"ignored\":0,\"details\":[]}",
         0},
        {"POST",
         IMPORT("dm_correlations"),
         BEARER,
         {"\"_key\":\"1h-EUR_USD-GBP_USD\""},
         201,
         "{\"error\":false,\"created\":1,\"errors\":0,\"empty\":0,\"updated\":1,\"ignored\":0}",
         0},
        {"POST",
         IMPORT("dm_windows"),
         BEARER,
         {"\"_key\":\"1h\""},
         201,
         "{\"error\":false,\"created\":0,\"errors\":0,\"empty\":0,\"updated\":1,\"ignored\":0}",
         0},
        {"POST",
         CURSOR,
         BEARER,
         {"REMOVE e IN dm_correlations"},
         201,
         "{\"result\":[],\"hasMore\":false,\"error\":false,\"code\":201}",
         0});
    dm_arango *a = open_stub(s, 2000);
    dm_err err = {0};
    assert_int_equal(dm_arango_put_window(a, &WINDOW, SYMBOLS, 3, EDGES, 2, &err), DM_BS_OK);
    /* Edges are JSON lines: keys, _from/_to, exact doubles and the window's generation. */
    char *edges = strdup(dm_stub_body(s, 3));
    char *second = strchr(edges, '\n');
    assert_non_null(second);
    *second++ = '\0';
    cJSON *e1 = cJSON_Parse(edges), *e2 = cJSON_Parse(second);
    assert_non_null(e1);
    assert_non_null(e2);
    assert_string_equal(str_at(e1, "_from"), "dm_symbols/EUR_USD");
    assert_string_equal(str_at(e1, "_to"), "dm_symbols/GBP_USD");
    assert_string_equal(str_at(e2, "_key"), "1h-EUR_USD-USD_JPY");
    assert_true(num_at(e1, "r") == 0.1);
    assert_non_null(strstr(dm_stub_body(s, 3), "\"r\":0.10000000000000001"));
    assert_true(num_at(e1, "window_end") == 1700360000000.0);
    assert_true(num_at(e1, "window_candles") == 100);
    char gen[32];
    snprintf(gen, sizeof gen, "%s", str_at(e1, "gen"));
    assert_int_equal(strlen(gen), 16);
    assert_string_equal(str_at(e2, "gen"), gen);
    cJSON *w = cJSON_Parse(dm_stub_body(s, 4));
    assert_string_equal(str_at(w, "gen"), gen);
    assert_true(num_at(w, "window_start") == 1700000000000.0);
    cJSON *q = body_of(s, 5);
    const cJSON *bind = cJSON_GetObjectItem(q, "bindVars");
    assert_string_equal(str_at(bind, "gen"), gen);
    assert_string_equal(str_at(bind, "tf"), "1h");
    assert_non_null(strstr(str_at(q, "query"), "e.gen != @gen"));
    cJSON_Delete(e1);
    cJSON_Delete(e2);
    cJSON_Delete(w);
    cJSON_Delete(q);
    free(edges);
    finish(s, a);
}

static void put_window_fails_with_the_first_detail_of_a_partial_import(void **state)
{
    (void)state;
    dm_stub *s = START(
        AUTH(JWT1), NO_WINDOW,
        {"POST",
         IMPORT("dm_symbols"),
         BEARER,
         {NULL},
         201,
         "{\"error\":false,\"created\":2,\"errors\":1,\"empty\":0,\"updated\":0,\"ignored\":0,"
         "\"details\":[\"at position 1: creating document failed with error 'illegal document "
         "key', offending document: {\\\"_key\\\":\\\"x\\\"}\"]}",
         0});
    dm_arango *a = open_stub(s, 2000);
    dm_err err = {0};
    assert_int_equal(dm_arango_put_window(a, &WINDOW, SYMBOLS, 3, EDGES, 2, &err), DM_BS_PERMANENT);
    assert_non_null(strstr(err.message, "1 of 3 documents refused"));
    assert_non_null(strstr(err.message, "illegal document key"));
    finish(s, a); /* nothing after the failed import: the window was not switched */
}

static void put_window_ignores_a_window_older_than_the_stored_one(void **state)
{
    (void)state;
    dm_stub *s = START(AUTH(JWT1), STORED_WINDOW);
    dm_arango *a = open_stub(s, 2000);
    dm_err err = {0};
    dm_arango_window old = WINDOW;
    old.window_start -= 3600000;
    old.window_end -= 3600000;
    assert_int_equal(dm_arango_put_window(a, &old, SYMBOLS, 3, EDGES, 2, &err), DM_BS_OK);
    finish(s, a);
}

static void put_window_refuses_bad_input_before_any_request(void **state)
{
    (void)state;
    dm_stub *s = dm_stub_start(NULL, 0);
    dm_arango *a = open_stub(s, 2000);
    dm_err err = {0};
    const dm_arango_edge reversed[] = {{"GBP/USD", "EUR/USD", 0.5, 10}};
    const dm_arango_edge nan_r[] = {{"EUR/USD", "GBP/USD", NAN, 10}};
    const dm_arango_edge big_r[] = {{"EUR/USD", "GBP/USD", 1.5, 10}};
    const dm_arango_edge stranger[] = {{"AUD/USD", "EUR/USD", 0.5, 10}};
    const dm_arango_edge *bad[] = {reversed, nan_r, big_r, stranger};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(dm_arango_put_window(a, &WINDOW, SYMBOLS, 3, bad[i], 1, &err),
                         DM_BS_PERMANENT);
    const char *const lower[] = {"eur/usd"};
    assert_int_equal(dm_arango_put_window(a, &WINDOW, lower, 1, NULL, 0, &err), DM_BS_PERMANENT);
    dm_arango_window w = WINDOW;
    w.timeframe = "1h\"}";
    assert_int_equal(dm_arango_put_window(a, &w, SYMBOLS, 3, EDGES, 2, &err), DM_BS_PERMANENT);
    w = WINDOW;
    w.window_end = w.window_start;
    assert_int_equal(dm_arango_put_window(a, &w, SYMBOLS, 3, EDGES, 2, &err), DM_BS_PERMANENT);
    dm_arango_edge *out = NULL;
    size_t n = 0;
    assert_int_equal(dm_arango_correlations(a, "1h", "EUR/USD", 1.5, &out, &n, &err),
                     DM_BS_PERMANENT);
    dm_arango_node *nodes;
    size_t nn;
    assert_int_equal(dm_arango_traverse(a, "1h", "EUR/USD", 5, 0.5, &nodes, &nn, &out, &n, &err),
                     DM_BS_PERMANENT);
    assert_string_equal(err.field, "depth");
    finish(s, a);
}

/* ---- reads ---------------------------------------------------------------------------- */

static void stored_window_reads_the_window_document_or_misses(void **state)
{
    (void)state;
    dm_stub *s = START(AUTH(JWT1), STORED_WINDOW, NO_WINDOW);
    dm_arango *a = open_stub(s, 2000);
    dm_err err = {0};
    dm_arango_window w;
    assert_int_equal(dm_arango_stored_window(a, "1h", &w, &err), DM_BS_OK);
    assert_string_equal(w.timeframe, "1h");
    assert_true(w.window_start == 1700000000000LL && w.window_end == 1700360000000LL);
    assert_int_equal(w.window_candles, 100);
    assert_int_equal(dm_arango_stored_window(a, "1h", &w, &err), DM_BS_MISS);
    finish(s, a);
}

static void correlations_read_every_batch_and_leave_no_cursor(void **state)
{
    (void)state;
    dm_stub *s =
        START(AUTH(JWT1), STORED_WINDOW,
              {"POST",
               CURSOR,
               BEARER,
               {"e._from == @v OR e._to == @v"},
               201,
               "{\"result\":[" ROW_EG "," ROW_EJ "],\"hasMore\":true,\"id\":\"26011191\","
               "\"nextBatchId\":2,\"error\":false,\"code\":201}",
               0},
              {"POST",
               CURSOR "/26011191",
               BEARER,
               {NULL},
               200,
               "{\"result\":[" ROW_AE "],\"hasMore\":true,\"id\":\"26011191\",\"nextBatchId\":3,"
               "\"error\":false,\"code\":200}",
               0},
              {"POST",
               CURSOR "/26011191",
               BEARER,
               {NULL},
               200,
               "{\"result\":[],\"hasMore\":false,\"error\":false,\"code\":200}",
               0});
    dm_arango *a = open_stub(s, 2000);
    dm_err err = {0};
    dm_arango_edge *e = NULL;
    size_t n = 0;
    assert_int_equal(dm_arango_correlations(a, "1h", "EUR/USD", 0.5, &e, &n, &err), DM_BS_OK);
    assert_int_equal(n, 3);
    assert_string_equal(e[0].b, "GBP/USD");
    assert_true(e[1].r == -0.8 && e[1].n == 100);
    assert_string_equal(e[2].a, "AUD/USD");
    dm_arango_edges_free(e, n);
    cJSON *q = body_of(s, 2);
    const cJSON *bind = cJSON_GetObjectItem(q, "bindVars");
    assert_string_equal(str_at(bind, "v"), "dm_symbols/EUR_USD");
    assert_string_equal(str_at(bind, "tf"), "1h");
    assert_string_equal(str_at(bind, "gen"), GEN);
    assert_true(num_at(bind, "t") == 0.5);
    assert_true(num_at(q, "batchSize") > 0);
    assert_null(strstr(str_at(q, "query"), "EUR")); /* values travel only as bind variables */
    cJSON_Delete(q);
    finish(s, a); /* no DELETE: the server dropped the cursor with its last batch */
}

static void correlations_miss_without_a_stored_window(void **state)
{
    (void)state;
    dm_stub *s = START(AUTH(JWT1), NO_WINDOW);
    dm_arango *a = open_stub(s, 2000);
    dm_err err = {0};
    dm_arango_edge *e = (dm_arango_edge *)&err;
    size_t n = 9;
    assert_int_equal(dm_arango_correlations(a, "1h", "EUR/USD", 0.5, &e, &n, &err), DM_BS_MISS);
    assert_null(e);
    assert_int_equal(n, 0);
    finish(s, a);
}

static void a_read_stopped_early_deletes_its_cursor(void **state)
{
    (void)state;
    dm_stub *s = START(AUTH(JWT1), STORED_WINDOW,
                       {"POST",
                        CURSOR,
                        BEARER,
                        {NULL},
                        201,
                        "{\"result\":[" ROW_EG
                        ",{\"a\":\"EUR/USD\",\"b\":\"USD/JPY\",\"r\":\"high\",\"n\":1}],"
                        "\"hasMore\":true,\"id\":\"77\",\"error\":false,\"code\":201}",
                        0},
                       {"DELETE",
                        CURSOR "/77",
                        BEARER,
                        {NULL},
                        202,
                        "{\"id\":\"77\",\"error\":false,\"code\":202}",
                        0});
    dm_arango *a = open_stub(s, 2000);
    dm_err err = {0};
    dm_arango_edge *e = NULL;
    size_t n = 0;
    assert_int_equal(dm_arango_correlations(a, "1h", "EUR/USD", 0.5, &e, &n, &err),
                     DM_BS_PERMANENT);
    assert_null(e);
    assert_int_equal(n, 0);
    finish(s, a);
}

static void traversal_prunes_on_the_edge_and_returns_least_depths_and_distinct_edges(void **state)
{
    (void)state;
    dm_stub *s = START(
        AUTH(JWT1), STORED_WINDOW,
        {"POST",
         CURSOR,
         BEARER,
         {"PRUNE e != null AND (ABS(e.r) < @t OR e.timeframe != @tf OR e.gen != @gen)",
          "OPTIONS {order: \\\"bfs\\\", uniqueVertices: \\\"path\\\"}", "GRAPH @g"},
         201,
         "{\"result\":["
         "{\"s\":\"GBP/USD\",\"d\":1,\"a\":\"EUR/USD\",\"b\":\"GBP/USD\",\"r\":0.91,\"n\":100},"
         "{\"s\":\"USD/JPY\",\"d\":1,\"a\":\"EUR/USD\",\"b\":\"USD/JPY\",\"r\":-0.8,\"n\":100}],"
         "\"hasMore\":true,\"id\":\"5\",\"error\":false,\"code\":201}",
         0},
        {"POST",
         CURSOR "/5",
         BEARER,
         {NULL},
         200,
         "{\"result\":["
         "{\"s\":\"USD/JPY\",\"d\":2,\"a\":\"GBP/USD\",\"b\":\"USD/JPY\",\"r\":-0.75,\"n\":100},"
         "{\"s\":\"GBP/USD\",\"d\":2,\"a\":\"GBP/USD\",\"b\":\"USD/JPY\",\"r\":-0.75,\"n\":100},"
         "{\"s\":\"AUD/USD\",\"d\":2,\"a\":\"AUD/USD\",\"b\":\"GBP/USD\",\"r\":0.6,\"n\":100}],"
         "\"hasMore\":false,\"error\":false,\"code\":200}",
         0});
    dm_arango *a = open_stub(s, 2000);
    dm_err err = {0};
    dm_arango_node *v = NULL;
    dm_arango_edge *e = NULL;
    size_t nv = 0, ne = 0;
    assert_int_equal(dm_arango_traverse(a, "1h", "EUR/USD", 2, 0.6, &v, &nv, &e, &ne, &err),
                     DM_BS_OK);
    assert_int_equal(nv, 3);
    assert_string_equal(v[0].symbol, "GBP/USD");
    assert_int_equal(v[0].depth, 1);
    assert_string_equal(v[1].symbol, "USD/JPY");
    assert_int_equal(v[1].depth, 1);
    assert_string_equal(v[2].symbol, "AUD/USD");
    assert_int_equal(v[2].depth, 2);
    assert_int_equal(ne, 4);
    assert_string_equal(e[0].a, "AUD/USD");
    assert_string_equal(e[3].b, "USD/JPY");
    assert_true(e[3].r == -0.75);
    free(v);
    dm_arango_edges_free(e, ne);
    cJSON *q = body_of(s, 2);
    const cJSON *bind = cJSON_GetObjectItem(q, "bindVars");
    assert_true(num_at(bind, "depth") == 2);
    assert_string_equal(str_at(bind, "g"), "dm_correlation_graph");
    assert_string_equal(str_at(bind, "v"), "dm_symbols/EUR_USD");
    assert_true(num_at(bind, "t") == 0.6);
    assert_null(strstr(str_at(q, "query"), "\"global\""));
    cJSON_Delete(q);
    finish(s, a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(symbol_keys_are_valid_keys_and_one_to_one),
        cmocka_unit_test(open_refuses_unusable_configs),
        cmocka_unit_test(availability_is_ok_then_transient_while_starting),
        cmocka_unit_test(ensure_graph_creates_collections_and_graph_and_accepts_existing_ones),
        cmocka_unit_test(
            put_window_imports_keyed_documents_switches_the_window_then_removes_stale_edges),
        cmocka_unit_test(put_window_fails_with_the_first_detail_of_a_partial_import),
        cmocka_unit_test(put_window_ignores_a_window_older_than_the_stored_one),
        cmocka_unit_test(put_window_refuses_bad_input_before_any_request),
        cmocka_unit_test(stored_window_reads_the_window_document_or_misses),
        cmocka_unit_test(correlations_read_every_batch_and_leave_no_cursor),
        cmocka_unit_test(correlations_miss_without_a_stored_window),
        cmocka_unit_test(a_read_stopped_early_deletes_its_cursor),
        cmocka_unit_test(traversal_prunes_on_the_edge_and_returns_least_depths_and_distinct_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
