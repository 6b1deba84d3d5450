/* Hostile input against the checks that guard every value ClickHouse 18.16 forces into SQL
 * text (it has no query parameters). test_clickhouse_safe.c covers the plain refusals
 * (quotes, a backslash, a backtick, a semicolon, case, length by one, a UTF-8 letter);
 * these tests add what an attacker tries next: every single byte at every position, SQL
 * comment markers, look-alike Unicode and overlong UTF-8, embedded NUL, reads past a
 * buffer, huge inputs, and the promise that the request path and the SQL check agree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/clickhouse_format.h"
#include "model/model.h"

static bool symbol_byte(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/';
}

static bool ident_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static bool only_bytes(const char *s, bool (*ok)(unsigned char))
{
    for (; *s; s++)
        if (!ok((unsigned char)*s))
            return false;
    return true;
}

/* Calls fn with every string made from base by replacing one byte, or inserting one, with
 * each of the 255 non-NUL byte values. */
static void each_mutation(const char *base, void (*fn)(const char *s, void *ctx), void *ctx)
{
    size_t n = strlen(base);
    char buf[64];
    assert_true(n + 2 <= sizeof buf);
    for (unsigned b = 1; b < 256; b++) {
        for (size_t pos = 0; pos <= n; pos++) {
            if (pos < n) { /* replace */
                memcpy(buf, base, n + 1);
                buf[pos] = (char)b;
                fn(buf, ctx);
            }
            memcpy(buf, base, pos); /* insert */
            buf[pos] = (char)b;
            memcpy(buf + pos + 1, base + pos, n - pos + 1);
            fn(buf, ctx);
        }
    }
}

static void symbol_accepts_only_safe_bytes(const char *s, void *ctx)
{
    (void)ctx;
    if (dm_clickhouse_safe_symbol(s) && !only_bytes(s, symbol_byte))
        fail_msg("symbol check accepted a byte outside [A-Z0-9/] in '%s'", s);
}

static void ident_accepts_only_safe_bytes(const char *s, void *ctx)
{
    (void)ctx;
    if (dm_clickhouse_safe_ident(s) && !only_bytes(s, ident_byte))
        fail_msg("identifier check accepted a byte outside [A-Za-z0-9_] in '%s'", s);
}

static void timeframe_accepts_only_the_names(const char *s, void *ctx)
{
    (void)ctx;
    if (!dm_clickhouse_safe_timeframe(s))
        return;
    for (int tf = 0; tf < DM_TF_COUNT; tf++)
        if (strcmp(s, dm_tf_name((dm_tf)tf)) == 0)
            return;
    fail_msg("timeframe check accepted '%s'", s);
}

static void no_single_byte_change_lets_a_quote_or_escape_through(void **state)
{
    (void)state;
    each_mutation("EUR/USD", symbol_accepts_only_safe_bytes, NULL);
    each_mutation("EURUSD", symbol_accepts_only_safe_bytes, NULL);
    each_mutation("dm", ident_accepts_only_safe_bytes, NULL);
    each_mutation("dm_analytics", ident_accepts_only_safe_bytes, NULL);
    for (int tf = 0; tf < DM_TF_COUNT; tf++)
        each_mutation(dm_tf_name((dm_tf)tf), timeframe_accepts_only_the_names, NULL);
}

static void refuses_sql_comment_markers(void **state)
{
    (void)state;
    static const char *const symbols[] = {
        "EUR/USD--", "--/USD",  "EUR/USD/*",  "/*/USD",    "EUR*/USD",   "EUR/USD#", "#EUR/USD",
        "EURUSD--",  "EURUSD#", "EUR/USD;--", "EURUSD'--", "EUR/USD'/*", "EU--SD",   "EU/**/",
    };
    for (size_t i = 0; i < sizeof symbols / sizeof *symbols; i++)
        if (dm_clickhouse_safe_symbol(symbols[i]))
            fail_msg("accepted symbol '%s'", symbols[i]);
    static const char *const timeframes[] = {"1h--", "1h/*", "1h#", "--", "/*1h*/", "1h;"};
    for (size_t i = 0; i < sizeof timeframes / sizeof *timeframes; i++)
        if (dm_clickhouse_safe_timeframe(timeframes[i]))
            fail_msg("accepted timeframe '%s'", timeframes[i]);
    static const char *const idents[] = {"dm--", "dm/*x*/", "dm#", "dm;--", "dm\n--", "dm\\"};
    for (size_t i = 0; i < sizeof idents / sizeof *idents; i++)
        if (dm_clickhouse_safe_ident(idents[i]))
            fail_msg("accepted identifier '%s'", idents[i]);
}

static void refuses_lookalike_unicode_and_malformed_utf8(void **state)
{
    (void)state;
    static const char *const symbols[] = {
        "\xef\xbc\xa5\xef\xbc\xb5\xef\xbc\xb2/USD", /* fullwidth EUR */
        "\xd0\x95UR/USD",                           /* Cyrillic capital IE for E */
        "EUR\xe2\x88\x95USD",                       /* U+2215 division slash */
        "EUR\xe2\x81\x84USD",                       /* U+2044 fraction slash */
        "EUR/USD\xca\xbc",                          /* U+02BC modifier apostrophe */
        "EUR/USD\xe2\x80\x99",                      /* U+2019 right single quote */
        "EUR/USD\xef\xbc\x87",                      /* U+FF07 fullwidth apostrophe */
        "EUR/\xe2\x80\x8bUSD",                      /* U+200B zero-width space */
        "EUR/USD\xe2\x80\xae",                      /* U+202E right-to-left override */
        "\357\273\277EUR/USD",                      /* byte order mark (octal: E is a hex digit) */
        "EUR\xc0\xafUSD",                           /* overlong '/' */
        "EUR/USD\xc0\xa7",                          /* overlong '\'' */
        "EUR/USD\x80",                              /* lone continuation byte */
        "EUR/USD\xff",
        "\xef\xbc\x91\xef\xbc\x92\xef\xbc\x93/USD", /* fullwidth digits */
    };
    for (size_t i = 0; i < sizeof symbols / sizeof *symbols; i++)
        if (dm_clickhouse_safe_symbol(symbols[i]))
            fail_msg("accepted symbol #%zu", i);
    static const char *const timeframes[] = {
        "\xef\xbc\x91h", /* fullwidth 1 */
        "1\xd2\xbb",     /* Cyrillic shha for h */
        "1h\xe2\x80\x8b",
        "1h\xc0\xa7",
    };
    for (size_t i = 0; i < sizeof timeframes / sizeof *timeframes; i++)
        if (dm_clickhouse_safe_timeframe(timeframes[i]))
            fail_msg("accepted timeframe #%zu", i);
    static const char *const idents[] = {"d\xc3\xa9", "\xef\xbd\x84m", "dm\xc0\xa7",
                                         "dm\xe2\x80\x8b"};
    for (size_t i = 0; i < sizeof idents / sizeof *idents; i++)
        if (dm_clickhouse_safe_ident(idents[i]))
            fail_msg("accepted identifier #%zu", i);
}

/* A NUL ends the C string: the check and the splice (%s) both see the bytes before it,
 * so what follows a NUL can never reach SQL text. */
static void a_nul_hides_nothing_from_the_check(void **state)
{
    (void)state;
    static const char symbol[] = "EURUSD\0' OR 1=1 --";
    static const char timeframe[] = "1h\0'; DROP TABLE dm.candles";
    static const char ident[] = "dm\0; DROP DATABASE dm";
    char spliced[128];
    assert_true(dm_clickhouse_safe_symbol(symbol));
    snprintf(spliced, sizeof spliced, "symbol = '%s'", symbol);
    assert_string_equal(spliced, "symbol = 'EURUSD'");
    assert_true(dm_clickhouse_safe_timeframe(timeframe));
    snprintf(spliced, sizeof spliced, "timeframe = '%s'", timeframe);
    assert_string_equal(spliced, "timeframe = '1h'");
    assert_true(dm_clickhouse_safe_ident(ident));
    snprintf(spliced, sizeof spliced, "FROM %s.candles", ident);
    assert_string_equal(spliced, "FROM dm.candles");
    char lead_nul[] = "?EURUSD";
    lead_nul[0] = '\0';
    assert_false(dm_clickhouse_safe_symbol(lead_nul));
    memcpy(lead_nul, "?1h", 4);
    lead_nul[0] = '\0';
    assert_false(dm_clickhouse_safe_timeframe(lead_nul));
    memcpy(lead_nul, "?dm", 4);
    lead_nul[0] = '\0';
    assert_false(dm_clickhouse_safe_ident(lead_nul));
}

/* An unterminated symbol buffer is read no further than the longest symbol plus one
 * (AddressSanitizer builds turn any read past it into a failure). */
static void reads_no_further_than_the_longest_symbol(void **state)
{
    (void)state;
    char *unterminated = malloc(DM_SYMBOL_MAX + 1);
    assert_non_null(unterminated);
    memset(unterminated, 'A', DM_SYMBOL_MAX + 1);
    assert_false(dm_clickhouse_safe_symbol(unterminated));
    unterminated[3] = '/';
    assert_false(dm_clickhouse_safe_symbol(unterminated));
    free(unterminated);
}

static void refuses_huge_values(void **state)
{
    (void)state;
    size_t n = 1u << 20;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'A', n);
    big[n] = '\0';
    big[3] = '/';
    assert_false(dm_clickhouse_safe_symbol(big));
    memset(big, 'a', n);
    assert_false(dm_clickhouse_safe_ident(big));
    memcpy(big, "1h", 2);
    assert_false(dm_clickhouse_safe_timeframe(big));
    free(big);
}

static void symbol_the_request_path_accepts_passes_the_sql_check(const char *s, void *ctx)
{
    int *accepted = ctx;
    char out[DM_SYMBOL_MAX + 1], token[DM_TOKEN_MAX + 1];
    dm_err e = {0};
    if (strlen(s) > DM_SYMBOL_MAX || dm_symbol_normalize(s, out, token, "symbol", &e) != DM_OK)
        return;
    (*accepted)++;
    if (!dm_clickhouse_safe_symbol(out))
        fail_msg("'%s' is a valid request symbol ('%s') that the SQL check refuses", s, out);
}

/* The request path normalises first and the SQL check runs last: they must agree, or a
 * valid request fails at the database (or the check is looser than the contract). */
static void the_request_path_and_the_sql_check_agree(void **state)
{
    (void)state;
    int accepted = 0;
    each_mutation("EUR/USD", symbol_the_request_path_accepts_passes_the_sql_check, &accepted);
    each_mutation("EURUSD", symbol_the_request_path_accepts_passes_the_sql_check, &accepted);
    each_mutation("ABCDEFGHIJK/ABCDEFGHIJK", symbol_the_request_path_accepts_passes_the_sql_check,
                  &accepted);
    assert_true(accepted > 100); /* the mutations did reach valid symbols */
    for (int tf = 0; tf < DM_TF_COUNT; tf++) {
        dm_tf parsed;
        assert_true(dm_tf_parse(dm_tf_name((dm_tf)tf), &parsed));
        assert_true(dm_clickhouse_safe_timeframe(dm_tf_name(parsed)));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_single_byte_change_lets_a_quote_or_escape_through),
        cmocka_unit_test(refuses_sql_comment_markers),
        cmocka_unit_test(refuses_lookalike_unicode_and_malformed_utf8),
        cmocka_unit_test(a_nul_hides_nothing_from_the_check),
        cmocka_unit_test(reads_no_further_than_the_longest_symbol),
        cmocka_unit_test(refuses_huge_values),
        cmocka_unit_test(the_request_path_and_the_sql_check_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
