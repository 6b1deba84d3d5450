/* The one error channel of backends (backend/backend.h): the status is the verdict, the
 * code in the error is derived from it by dm_bfail alone, and the error names the line
 * that raised it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "backend/backend.h"

static void transient_failures_read_unavailable(void **state)
{
    (void)state;
    dm_err e = {0};
    assert_int_equal(dm_bfail(&e, DM_BS_TRANSIENT, "", "connection refused"), DM_BS_TRANSIENT);
    assert_int_equal(e.code, DM_E_UNAVAILABLE);
    assert_int_equal(dm_code_status(e.code), 503);
    assert_string_equal(e.message, "connection refused");
}

static void permanent_failures_read_invalid_field(void **state)
{
    (void)state;
    dm_err e = {0};
    assert_int_equal(dm_bfail(&e, DM_BS_PERMANENT, "symbol", "symbol '%s' refused", "X'Y"),
                     DM_BS_PERMANENT);
    assert_int_equal(e.code, DM_E_INVALID_FIELD);
    assert_string_equal(e.field, "symbol");
    assert_string_equal(e.message, "symbol 'X'Y' refused");
}

static void every_status_has_one_code(void **state)
{
    (void)state;
    assert_int_equal(dm_bstatus_code(DM_BS_OK), DM_OK);
    assert_int_equal(dm_bstatus_code(DM_BS_MISS), DM_E_NOT_FOUND);
    assert_int_equal(dm_bstatus_code(DM_BS_TRANSIENT), DM_E_UNAVAILABLE);
    assert_int_equal(dm_bstatus_code(DM_BS_PERMANENT), DM_E_INVALID_FIELD);
}

/* Whatever code an earlier failure left in the object, a backend failure replaces it. */
static void a_failure_overwrites_an_earlier_code(void **state)
{
    (void)state;
    dm_err e = {0};
    dm_fail(&e, DM_E_INTERNAL, "x", "out of memory");
    dm_bfail(&e, DM_BS_TRANSIENT, "", "timeout");
    assert_int_equal(e.code, DM_E_UNAVAILABLE);
    assert_string_equal(e.field, "");
}

static void the_error_remembers_the_raising_line(void **state)
{
    (void)state;
    dm_err e = {0};
    int line = __LINE__ + 1;
    dm_bfail(&e, DM_BS_PERMANENT, "", "refused");
    assert_non_null(e.file);
    assert_non_null(strstr(e.file, "test_backend_err.c"));
    assert_int_equal(e.line, line);
}

static void a_null_error_object_is_allowed(void **state)
{
    (void)state;
    assert_int_equal(dm_bfail(NULL, DM_BS_TRANSIENT, "", "nobody listens"), DM_BS_TRANSIENT);
}

static dm_bstatus fake_ping(dm_backend *b, dm_err *err)
{
    (void)b;
    return dm_bfail(err, DM_BS_TRANSIENT, "", "fake: down");
}

static void fake_destroy(dm_backend *b) { (void)b; }

static void wrappers_call_the_operation_and_refuse_missing_ones(void **state)
{
    (void)state;
    static const dm_backend_ops ops = {.ping = fake_ping, .destroy = fake_destroy};
    dm_backend b = {&ops, DM_BK_DRAGONFLY};
    dm_err e = {0};
    assert_int_equal(dm_backend_ping(&b, &e), DM_BS_TRANSIENT);
    assert_string_equal(e.message, "fake: down");
    assert_false(dm_backend_offers(&b, write_candles));
    dm_candle c = {0};
    assert_int_equal(dm_backend_write_candles(&b, &c, 1, NULL, &e), DM_BS_PERMANENT);
    assert_int_equal(e.code, DM_E_INVALID_FIELD);
    assert_non_null(strstr(e.message, "write_candles"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(transient_failures_read_unavailable),
        cmocka_unit_test(permanent_failures_read_invalid_field),
        cmocka_unit_test(every_status_has_one_code),
        cmocka_unit_test(a_failure_overwrites_an_earlier_code),
        cmocka_unit_test(the_error_remembers_the_raising_line),
        cmocka_unit_test(a_null_error_object_is_allowed),
        cmocka_unit_test(wrappers_call_the_operation_and_refuse_missing_ones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
