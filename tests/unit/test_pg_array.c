/* PostgreSQL's binary array format (worker/backend/pg_array): the exact bytes array_recv
 * reads, so a batch arrives with every double bit for bit and every NULL where it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "backend/pg_array.h"

static uint32_t u32_at(const dm_pg_array *a, size_t at)
{
    const unsigned char *p = (const unsigned char *)a->buf.data + at;
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t u64_at(const dm_pg_array *a, size_t at)
{
    return (uint64_t)u32_at(a, at) << 32 | u32_at(a, at + 4);
}

static void header_says_one_dimension_its_type_length_and_lower_bound_one(void **state)
{
    (void)state;
    dm_pg_array a = {0};
    dm_pg_array_begin(&a, DM_PG_INT8);
    dm_pg_array_i64(&a, -2);
    dm_pg_array_i64(&a, INT64_MAX);
    assert_true(dm_pg_array_end(&a));
    assert_int_equal(a.buf.len, 20 + 2 * 12);
    assert_int_equal(u32_at(&a, 0), 1);          /* ndim */
    assert_int_equal(u32_at(&a, 4), 0);          /* no NULL */
    assert_int_equal(u32_at(&a, 8), DM_PG_INT8); /* element type */
    assert_int_equal(u32_at(&a, 12), 2);         /* length */
    assert_int_equal(u32_at(&a, 16), 1);         /* lower bound */
    assert_int_equal(u32_at(&a, 20), 8);
    assert_true(u64_at(&a, 24) == (uint64_t)-2);
    assert_true(u64_at(&a, 36) == (uint64_t)INT64_MAX);
    dm_pg_array_free(&a);
}

static void doubles_go_as_their_exact_bits_and_absent_ones_as_null(void **state)
{
    (void)state;
    dm_pg_array a = {0};
    dm_pg_array_begin(&a, DM_PG_FLOAT8);
    double v = 1.1234567890123457; /* needs all 17 digits */
    dm_pg_array_f64(&a, v, true);
    dm_pg_array_f64(&a, 0, false);
    assert_true(dm_pg_array_end(&a));
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    assert_int_equal(u32_at(&a, 4), 1); /* has a NULL */
    assert_int_equal(u32_at(&a, 12), 2);
    assert_true(u64_at(&a, 24) == bits);
    assert_int_equal(u32_at(&a, 32), UINT32_MAX); /* length -1 */
    assert_int_equal(a.buf.len, 36);
    dm_pg_array_free(&a);
}

static void text_is_sent_as_is_even_when_spelled_null_or_quoted(void **state)
{
    (void)state;
    dm_pg_array a = {0};
    dm_pg_array_begin(&a, DM_PG_TEXT);
    dm_pg_array_text(&a, "NULL");
    dm_pg_array_text(&a, "a\"b\\");
    dm_pg_array_text(&a, "");
    assert_true(dm_pg_array_end(&a));
    assert_int_equal(u32_at(&a, 4), 0);
    assert_int_equal(u32_at(&a, 12), 3);
    assert_int_equal(u32_at(&a, 20), 4);
    assert_memory_equal(a.buf.data + 24, "NULL", 4);
    assert_int_equal(u32_at(&a, 28), 4);
    assert_memory_equal(a.buf.data + 32, "a\"b\\", 4);
    assert_int_equal(u32_at(&a, 36), 0);
    assert_int_equal(a.buf.len, 40);
    dm_pg_array_free(&a);
}

static void a_reused_array_starts_over(void **state)
{
    (void)state;
    dm_pg_array a = {0};
    dm_pg_array_begin(&a, DM_PG_FLOAT8);
    dm_pg_array_f64(&a, 0, false);
    assert_true(dm_pg_array_end(&a));
    dm_pg_array_begin(&a, DM_PG_TEXT);
    dm_pg_array_text(&a, "x");
    assert_true(dm_pg_array_end(&a));
    assert_int_equal(u32_at(&a, 4), 0);
    assert_int_equal(u32_at(&a, 8), DM_PG_TEXT);
    assert_int_equal(u32_at(&a, 12), 1);
    assert_int_equal(a.buf.len, 25);
    assert_true(dm_pg_array_end(&a)); /* ending twice (a statement run again) changes nothing */
    assert_int_equal(u32_at(&a, 12), 1);
    dm_pg_array_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(header_says_one_dimension_its_type_length_and_lower_bound_one),
        cmocka_unit_test(doubles_go_as_their_exact_bits_and_absent_ones_as_null),
        cmocka_unit_test(text_is_sent_as_is_even_when_spelled_null_or_quoted),
        cmocka_unit_test(a_reused_array_starts_over),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
