/* ClickHouse adapter without a server: the checks that guard every value spliced into
 * SQL (18.16 has no query parameters), the error-body parser for both the 18.16 and the
 * current message layouts, and the transient/permanent decision built on it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "backend/clickhouse_format.h"
#include "backend/clickhouse_http.h"

static void accepts_canonical_and_token_symbols(void **state)
{
    (void)state;
    assert_true(dm_clickhouse_safe_symbol("EUR/USD"));
    assert_true(dm_clickhouse_safe_symbol("BTC/USDT"));
    assert_true(dm_clickhouse_safe_symbol("A/B"));
    assert_true(dm_clickhouse_safe_symbol("US500/USD"));
    assert_true(dm_clickhouse_safe_symbol("EURUSD"));
    /* the longest symbol the model accepts (DM_SYMBOL_MAX characters) */
    assert_true(dm_clickhouse_safe_symbol("ABCDEFGHIJKL/ABCDEFGHIJK"));
}

static void refuses_symbols_that_could_leave_the_literal(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "EUR/USD'",
        "EUR/USD' OR 1=1 --",
        "EUR/USD\\",
        "EUR/USD\n",
        "EUR/USD ",
        " EUR/USD",
        "eur/usd",
        "EUR/usd",
        "EUR//USD",
        "EUR/USD/JPY",
        "/USD",
        "EUR/",
        "/",
        "",
        "EURUS",
        "EURUSDX",
        "EUR-USD",
        "EUR\"USD",
        "EUR/U`D",
        "EUR/US;D",
        "ABCDEFGHIJKLM/ABCDEFGHIJK", /* one character over DM_SYMBOL_MAX */
        "\xc3\x89UR/USD",            /* UTF-8 letter */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (dm_clickhouse_safe_symbol(bad[i]))
            fail_msg("accepted symbol #%zu '%s'", i, bad[i]);
    assert_false(dm_clickhouse_safe_symbol(NULL));
}

static void accepts_only_the_fixed_timeframes(void **state)
{
    (void)state;
    static const char *const good[] = {"1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(dm_clickhouse_safe_timeframe(good[i]));
    static const char *const bad[] = {"1h'", "1H", "2h", "", "1h ", "1mo", "60m", "h1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (dm_clickhouse_safe_timeframe(bad[i]))
            fail_msg("accepted timeframe '%s'", bad[i]);
    assert_false(dm_clickhouse_safe_timeframe(NULL));
}

static void accepts_plain_identifiers_as_database_names(void **state)
{
    (void)state;
    assert_true(dm_clickhouse_safe_ident("dm"));
    assert_true(dm_clickhouse_safe_ident("dm_2"));
    assert_true(dm_clickhouse_safe_ident("_analytics"));
    char longest[DM_CH_IDENT_MAX + 2];
    memset(longest, 'a', DM_CH_IDENT_MAX);
    longest[DM_CH_IDENT_MAX] = '\0';
    assert_true(dm_clickhouse_safe_ident(longest));
    longest[DM_CH_IDENT_MAX] = 'a';
    longest[DM_CH_IDENT_MAX + 1] = '\0';
    assert_false(dm_clickhouse_safe_ident(longest));
    static const char *const bad[] = {"",     "1dm", "dm;DROP", "dm.candles",
                                      "dm-x", "dm ", "`dm`",    "dm'"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (dm_clickhouse_safe_ident(bad[i]))
            fail_msg("accepted identifier '%s'", bad[i]);
    assert_false(dm_clickhouse_safe_ident(NULL));
}

static int parse(const char *body, char *msg, size_t cap)
{
    return dm_clickhouse_parse_error(body, strlen(body), msg, cap);
}

static void reads_the_code_and_text_of_an_18_16_error(void **state)
{
    (void)state;
    char msg[200];
    assert_int_equal(parse("Code: 60, e.displayText() = DB::Exception: Table dm.candles doesn't "
                           "exist., e.what() = DB::Exception\n",
                           msg, sizeof msg),
                     60);
    assert_string_equal(msg, "Table dm.candles doesn't exist.");
    assert_int_equal(parse("Code: 62, e.displayText() = DB::Exception: Syntax error: failed at "
                           "position 1: SELEC 1. Expected one of: ..., e.what() = DB::Exception",
                           msg, sizeof msg),
                     62);
    assert_string_equal(msg, "Syntax error: failed at position 1: SELEC 1. Expected one of: ...");
}

static void reads_the_code_and_text_of_a_current_error(void **state)
{
    (void)state;
    char msg[200];
    assert_int_equal(parse("Code: 60. DB::Exception: Table dm.candles does not exist. "
                           "(UNKNOWN_TABLE) (version 24.3.2.23 (official build))\n",
                           msg, sizeof msg),
                     60);
    assert_string_equal(msg, "Table dm.candles does not exist. (UNKNOWN_TABLE) (version 24.3.2.23 "
                             "(official build))");
    assert_int_equal(parse("Code: 241. DB::Exception: Memory limit (total) exceeded", NULL, 0),
                     241);
}

static void truncates_the_text_and_keeps_it_on_one_line(void **state)
{
    (void)state;
    char msg[16];
    assert_int_equal(parse("Code: 53, e.displayText() = DB::Exception: Type mismatch\tin a long "
                           "message\nsecond line",
                           msg, sizeof msg),
                     53);
    assert_string_equal(msg, "Type mismatch i"); /* 15 characters, tab made a space */
    char one[1];
    assert_int_equal(parse("Code: 7. DB::Exception: x", one, sizeof one), 7);
    assert_string_equal(one, "");
}

static void reports_minus_one_for_bodies_that_are_not_clickhouse_errors(void **state)
{
    (void)state;
    char msg[64] = "unchanged?";
    static const char *const bad[] = {
        "",
        "Bad Gateway",
        "<html><body>502</body></html>",
        "Code:",
        "Code: ",
        "Code: abc",
        "Code: 60",
        "Code: 60 DB::Exception",
        "Code: 1234567, e.displayText() = x",
        "code: 60, e.displayText() = x",
        "Code: -5, x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int c = parse(bad[i], msg, sizeof msg);
        if (c != -1)
            fail_msg("'%s' parsed as code %d", bad[i], c);
        assert_string_equal(msg, "");
    }
    assert_int_equal(dm_clickhouse_parse_error(NULL, 0, msg, sizeof msg), -1);
    /* the length bounds the parse: no terminator needed, nothing read past it */
    const char body[] = {'C', 'o', 'd', 'e', ':', ' ', '6', '0'};
    assert_int_equal(dm_clickhouse_parse_error(body, sizeof body, msg, sizeof msg), -1);
    /* leading blank lines (a proxy's padding) are skipped */
    assert_int_equal(
        parse("\r\n  Code: 210, e.displayText() = DB::NetException: reset", msg, sizeof msg), 210);
}

static void retries_overload_network_schema_and_account_errors(void **state)
{
    (void)state;
    static const int transient[] = {159, 202, 209, 210, 241, 242, 252, 60, 81, 192, 193, 516, 497};
    for (size_t i = 0; i < sizeof transient / sizeof *transient; i++)
        if (dm_clickhouse_classify(500, transient[i]) != DM_BS_TRANSIENT)
            fail_msg("code %d not transient", transient[i]);
    assert_int_equal(dm_clickhouse_classify(404, 60), DM_BS_TRANSIENT);
    assert_int_equal(dm_clickhouse_classify(401, 192), DM_BS_TRANSIENT);
    assert_int_equal(dm_clickhouse_classify(503, 202), DM_BS_TRANSIENT);
}

static void refuses_syntax_and_type_errors_for_good(void **state)
{
    (void)state;
    assert_int_equal(dm_clickhouse_classify(400, 62), DM_BS_PERMANENT); /* SYNTAX_ERROR */
    assert_int_equal(dm_clickhouse_classify(500, 53), DM_BS_PERMANENT); /* TYPE_MISMATCH */
    assert_int_equal(dm_clickhouse_classify(404, 46), DM_BS_PERMANENT); /* UNKNOWN_FUNCTION */
    assert_int_equal(dm_clickhouse_classify(404, 16), DM_BS_PERMANENT); /* NO_SUCH_COLUMN */
    assert_int_equal(dm_clickhouse_classify(500, 27), DM_BS_PERMANENT); /* CANNOT_PARSE_INPUT */
}

static void judges_proxy_replies_by_status(void **state)
{
    (void)state;
    assert_int_equal(dm_clickhouse_classify(502, -1), DM_BS_TRANSIENT);
    assert_int_equal(dm_clickhouse_classify(503, -1), DM_BS_TRANSIENT);
    assert_int_equal(dm_clickhouse_classify(504, -1), DM_BS_TRANSIENT);
    assert_int_equal(dm_clickhouse_classify(429, -1), DM_BS_TRANSIENT);
    assert_int_equal(dm_clickhouse_classify(400, -1), DM_BS_PERMANENT);
    assert_int_equal(dm_clickhouse_classify(404, -1), DM_BS_PERMANENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepts_canonical_and_token_symbols),
        cmocka_unit_test(refuses_symbols_that_could_leave_the_literal),
        cmocka_unit_test(accepts_only_the_fixed_timeframes),
        cmocka_unit_test(accepts_plain_identifiers_as_database_names),
        cmocka_unit_test(reads_the_code_and_text_of_an_18_16_error),
        cmocka_unit_test(reads_the_code_and_text_of_a_current_error),
        cmocka_unit_test(truncates_the_text_and_keeps_it_on_one_line),
        cmocka_unit_test(reports_minus_one_for_bodies_that_are_not_clickhouse_errors),
        cmocka_unit_test(retries_overload_network_schema_and_account_errors),
        cmocka_unit_test(refuses_syntax_and_type_errors_for_good),
        cmocka_unit_test(judges_proxy_replies_by_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
