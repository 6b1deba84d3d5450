/* The ArangoDB adapter as the `arangodb` source of the correlation routes, against the
 * stub: only the stored window is answered, a read is checked against window switches, and
 * answers follow worker/analysis/correl.h (order, clusters, Mantegna's forest). */
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

#define ROW_EN "{\"a\":\"EUR/USD\",\"b\":\"NZD/USD\",\"r\":0.8,\"n\":100}"
#define ROW_GN "{\"a\":\"GBP/USD\",\"b\":\"NZD/USD\",\"r\":0.85,\"n\":99}"
#define ROW_GJ "{\"a\":\"GBP/USD\",\"b\":\"USD/JPY\",\"r\":0.1,\"n\":98}"
#define ROWS(rows) "{\"result\":[" rows "],\"hasMore\":false,\"error\":false,\"code\":201}"
#define QUERY(needle, reply)                                                                       \
    {                                                                                              \
        "POST", CURSOR, BEARER, {needle, NULL}, 201, reply, 0                                      \
    }
#define OTHER_GEN                                                                                  \
    {                                                                                              \
        "GET", WINDOW_PATH, BEARER, {NULL}, 200,                                                   \
            "{\"timeframe\":\"1h\",\"window_start\":1700000000000,\"window_end\":1700360000000,"   \
            "\"window_candles\":100,\"gen\":\"fedcba9876543210\"}",                                \
            0                                                                                      \
    }

static dm_backend *backend(dm_stub *s)
{
    assert_non_null(s);
    char cfg[200];
    snprintf(cfg, sizeof cfg,
             "{\"url\":\"http://127.0.0.1:%d\",\"database\":\"dm\",\"username\":\"root\","
             "\"password\":\"s3cret\"}",
             dm_stub_port(s));
    cJSON *c = cJSON_Parse(cfg);
    dm_backend *b = dm_arango_backend_create(c, 2);
    cJSON_Delete(c);
    assert_non_null(b);
    assert_int_equal(b->id, DM_BK_ARANGODB);
    return b;
}

static void done(dm_stub *s, dm_backend *b)
{
    char why[600];
    bool ok = dm_stub_verify(s, why, sizeof why);
    dm_backend_destroy(b);
    dm_stub_stop(s);
    if (!ok)
        fail_msg("stub: %s", why);
}

/* The window of WINDOW_DOC. */
static dm_corr_request request(double threshold, int depth)
{
    return (dm_corr_request){.symbol = "EUR/USD",
                             .tf = DM_TF_1H,
                             .window_start = 1700000000000LL,
                             .window_end = 1700360000000LL,
                             .window_candles = 100,
                             .threshold = threshold,
                             .min_pairs = 30,
                             .depth = depth};
}

static void correlations_of_the_stored_window_by_strength_then_symbol(void **state)
{
    (void)state;
    dm_stub *s =
        START(AUTH(JWT1), STORED_WINDOW, STORED_WINDOW,
              QUERY("e._from == @v OR e._to == @v", ROWS(ROW_EG "," ROW_EJ "," ROW_EN "," ROW_AE)),
              STORED_WINDOW);
    dm_backend *b = backend(s);
    dm_corr_request q = request(0.75, 0);
    dm_corr_vec out = {0};
    dm_err err = {0};
    assert_int_equal(b->ops->correlations(b, &q, &out, &err), DM_BS_OK);
    assert_int_equal(out.n, 3);
    assert_string_equal(out.v[0].symbol, "GBP/USD");
    assert_true(out.v[0].r == 0.91 && out.v[0].n == 100);
    assert_string_equal(out.v[1].symbol, "NZD/USD"); /* |r| ties go by symbol */
    assert_string_equal(out.v[2].symbol, "USD/JPY");
    assert_true(out.v[2].r == -0.8);
    cJSON *body = body_of(s, 3);
    /* Every pair is read (threshold 0): a symbol without one is unknown to the window. */
    assert_true(num_at(cJSON_GetObjectItem(body, "bindVars"), "t") == 0);
    cJSON_Delete(body);
    dm_corr_vec_free(&out);
    done(s, b);
}

static void misses_another_window_an_unknown_symbol_and_no_window(void **state)
{
    (void)state;
    dm_stub *s = START(AUTH(JWT1), STORED_WINDOW, STORED_WINDOW, STORED_WINDOW,
                       QUERY("e._from == @v OR e._to == @v", ROWS("")), STORED_WINDOW, NO_WINDOW);
    dm_backend *b = backend(s);
    dm_corr_vec out = {0};
    dm_err err = {0};
    dm_corr_request q = request(0.5, 0);
    q.window_end += 3600000; /* one candle later than stored */
    q.window_start += 3600000;
    assert_int_equal(b->ops->correlations(b, &q, &out, &err), DM_BS_MISS);
    q = request(0.5, 0);
    assert_int_equal(b->ops->correlations(b, &q, &out, &err), DM_BS_MISS);
    assert_non_null(strstr(err.message, "no 1h pair of EUR/USD"));
    assert_int_equal(b->ops->correlations(b, &q, &out, &err), DM_BS_MISS);
    q.symbol = "eurusd"; /* no ArangoDB key: never asked */
    assert_int_equal(b->ops->correlations(b, &q, &out, &err), DM_BS_MISS);
    assert_int_equal(out.n, 0);
    done(s, b);
}

static void a_window_rewritten_during_the_read_is_transient(void **state)
{
    (void)state;
    dm_stub *s = START(AUTH(JWT1), STORED_WINDOW, STORED_WINDOW,
                       QUERY("e._from == @v", ROWS(ROW_EG)), OTHER_GEN);
    dm_backend *b = backend(s);
    dm_corr_vec out = {0};
    dm_err err = {0};
    dm_corr_request q = request(0.5, 0);
    assert_int_equal(b->ops->correlations(b, &q, &out, &err), DM_BS_TRANSIENT);
    assert_non_null(strstr(err.message, "rewritten"));
    dm_corr_vec_free(&out);
    done(s, b);
}

#define TRAVERSAL_ROWS                                                                             \
    ROWS("{\"s\":\"GBP/USD\",\"d\":1,\"a\":\"EUR/USD\",\"b\":\"GBP/USD\",\"r\":0.91,\"n\":100},"   \
         "{\"s\":\"NZD/USD\",\"d\":1,\"a\":\"EUR/USD\",\"b\":\"NZD/USD\",\"r\":0.8,\"n\":100},"    \
         "{\"s\":\"USD/JPY\",\"d\":1,\"a\":\"EUR/USD\",\"b\":\"USD/JPY\",\"r\":-0.8,\"n\":100}")
#define ALL_EDGES ROWS(ROW_AE "," ROW_EG "," ROW_EN "," ROW_EJ "," ROW_GN "," ROW_GJ)

static void assert_pair(const dm_corr_pair *p, const char *a, const char *b, double r)
{
    assert_string_equal(p->a, a);
    assert_string_equal(p->b, b);
    assert_true(p->r == r);
}

static void graph_takes_nodes_from_the_traversal_and_the_rest_from_every_pair(void **state)
{
    (void)state;
    dm_stub *s =
        START(AUTH(JWT1), STORED_WINDOW, STORED_WINDOW,
              QUERY("FOR v, e, p IN 1..@depth ANY @v GRAPH @g", TRAVERSAL_ROWS), STORED_WINDOW,
              QUERY("e.gen == @gen SORT e.a, e.b", ALL_EDGES), STORED_WINDOW);
    dm_backend *b = backend(s);
    dm_corr_request q = request(0.75, 1);
    dm_graph_answer g = {0};
    dm_err err = {0};
    assert_int_equal(b->ops->graph(b, &q, &g, &err), DM_BS_OK);
    assert_int_equal(g.n_nodes, 4);
    assert_string_equal(g.nodes[0].symbol, "EUR/USD");
    assert_int_equal(g.nodes[0].depth, 0);
    assert_string_equal(g.nodes[1].symbol, "GBP/USD");
    assert_string_equal(g.nodes[3].symbol, "USD/JPY");
    assert_int_equal(g.nodes[3].depth, 1);
    /* GBP/USD-NZD/USD was not met by a depth-1 traversal, yet joins two nodes. */
    assert_int_equal(g.n_edges, 4);
    assert_pair(&g.edges[0], "EUR/USD", "GBP/USD", 0.91);
    assert_pair(&g.edges[1], "EUR/USD", "NZD/USD", 0.8);
    assert_pair(&g.edges[2], "EUR/USD", "USD/JPY", -0.8);
    assert_pair(&g.edges[3], "GBP/USD", "NZD/USD", 0.85);
    assert_int_equal(g.edges[3].n, 99);
    /* Every symbol of the window, at the threshold: AUD/USD (0.7) stands alone. */
    assert_int_equal(g.n_clusters, 2);
    assert_int_equal(g.cluster_len[0], 4);
    assert_int_equal(g.cluster_len[1], 1);
    assert_string_equal(g.cluster_symbols[4], "AUD/USD");
    /* Kruskal on sqrt(2 (1 - r)) over every stored pair of the nodes. */
    assert_int_equal(g.n_mst, 3);
    assert_pair(&g.mst[0], "EUR/USD", "GBP/USD", 0.91);
    assert_pair(&g.mst[1], "GBP/USD", "NZD/USD", 0.85);
    assert_pair(&g.mst[2], "GBP/USD", "USD/JPY", 0.1);
    dm_graph_answer_free(&g);
    done(s, b);
}

static void graph_refuses_a_traversal_the_pairs_contradict(void **state)
{
    (void)state;
    dm_stub *s = START(
        AUTH(JWT1), STORED_WINDOW, STORED_WINDOW,
        QUERY("GRAPH @g", ROWS("{\"s\":\"GBP/USD\",\"d\":1,\"a\":\"EUR/USD\",\"b\":\"GBP/USD\","
                               "\"r\":0.91,\"n\":100}")),
        STORED_WINDOW, QUERY("SORT e.a, e.b", ALL_EDGES), STORED_WINDOW);
    dm_backend *b = backend(s);
    dm_corr_request q = request(0.75, 1);
    dm_graph_answer g = {0};
    dm_err err = {0};
    assert_int_equal(b->ops->graph(b, &q, &g, &err), DM_BS_PERMANENT);
    assert_non_null(strstr(err.message, "disagrees"));
    assert_int_equal(g.n_nodes, 0);
    done(s, b);
}

static void graph_misses_what_it_cannot_answer(void **state)
{
    (void)state;
    dm_stub *s =
        START(AUTH(JWT1), NO_WINDOW, STORED_WINDOW, STORED_WINDOW, QUERY("GRAPH @g", ROWS("")),
              STORED_WINDOW, QUERY("SORT e.a, e.b", ROWS(ROW_GN)), STORED_WINDOW);
    dm_backend *b = backend(s);
    dm_graph_answer g = {0};
    dm_err err = {0};
    dm_corr_request q = request(0.5, DM_ARANGO_MAX_DEPTH + 1);
    assert_int_equal(b->ops->graph(b, &q, &g, &err), DM_BS_MISS); /* never asked */
    q = request(0.5, 2);
    assert_int_equal(b->ops->graph(b, &q, &g, &err), DM_BS_MISS); /* no stored window */
    assert_int_equal(b->ops->graph(b, &q, &g, &err), DM_BS_MISS); /* EUR/USD has no pair */
    done(s, b);
}

static void ping_asks_availability_without_a_token(void **state)
{
    (void)state;
    dm_stub *s = START({"GET", "/_admin/server/availability", NULL, NULL, {NULL}, 200, "{}", 0},
                       {"GET",
                        "/_admin/server/availability",
                        NULL,
                        NULL,
                        {NULL},
                        503,
                        ERROR_BODY(503, 503, "service unavailable"),
                        0});
    dm_backend *b = backend(s);
    dm_err err = {0};
    assert_int_equal(b->ops->ping(b, &err), DM_BS_OK);
    assert_int_equal(b->ops->ping(b, &err), DM_BS_TRANSIENT);
    assert_null(b->ops->patterns);
    done(s, b);
}

static void refuses_unusable_configs(void **state)
{
    (void)state;
    cJSON *c = cJSON_Parse("{\"url\":\"http://127.0.0.1:1\",\"database\":\"1bad\"}");
    assert_null(dm_arango_backend_create(c, 2));
    cJSON_Delete(c);
    c = cJSON_Parse("{\"database\":\"dm\"}");
    assert_null(dm_arango_backend_create(c, 2));
    cJSON_Delete(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(correlations_of_the_stored_window_by_strength_then_symbol),
        cmocka_unit_test(misses_another_window_an_unknown_symbol_and_no_window),
        cmocka_unit_test(a_window_rewritten_during_the_read_is_transient),
        cmocka_unit_test(graph_takes_nodes_from_the_traversal_and_the_rest_from_every_pair),
        cmocka_unit_test(graph_refuses_a_traversal_the_pairs_contradict),
        cmocka_unit_test(graph_misses_what_it_cannot_answer),
        cmocka_unit_test(ping_asks_availability_without_a_token),
        cmocka_unit_test(refuses_unusable_configs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
