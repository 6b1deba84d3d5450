#include "pg_array.h"

#include <string.h>

#define HEADER 20 /* ndim, flags, element type, length, lower bound: five int32 */

static void put_u32(dm_buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    dm_buf_put(b, x, 4);
}

static void put_u64(dm_buf *b, uint64_t v)
{
    unsigned char x[8];
    for (int i = 7; i >= 0; i--, v >>= 8)
        x[i] = (unsigned char)v;
    dm_buf_put(b, x, 8);
}

static void set_u32(dm_buf *b, size_t at, uint32_t v)
{
    unsigned char *p = (unsigned char *)b->data + at;
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

void dm_pg_array_begin(dm_pg_array *a, uint32_t elem_oid)
{
    dm_buf_reset(&a->buf);
    a->n = 0;
    a->has_null = false;
    put_u32(&a->buf, 1);        /* one dimension */
    put_u32(&a->buf, 0);        /* flags: set at the end */
    put_u32(&a->buf, elem_oid);
    put_u32(&a->buf, 0);        /* length: set at the end */
    put_u32(&a->buf, 1);        /* lower bound */
}

void dm_pg_array_text(dm_pg_array *a, const char *s)
{
    size_t n = strlen(s);
    put_u32(&a->buf, (uint32_t)n);
    dm_buf_put(&a->buf, s, n);
    a->n++;
}

void dm_pg_array_i64(dm_pg_array *a, int64_t v)
{
    put_u32(&a->buf, 8);
    put_u64(&a->buf, (uint64_t)v);
    a->n++;
}

void dm_pg_array_f64(dm_pg_array *a, double v, bool present)
{
    a->n++;
    if (!present) {
        put_u32(&a->buf, UINT32_MAX); /* length -1: NULL */
        a->has_null = true;
        return;
    }
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    put_u32(&a->buf, 8);
    put_u64(&a->buf, bits);
}

bool dm_pg_array_end(dm_pg_array *a)
{
    if (a->buf.oom || a->buf.len < HEADER || a->buf.len > (1u << 30))
        return false;
    set_u32(&a->buf, 4, a->has_null ? 1 : 0);
    set_u32(&a->buf, 12, (uint32_t)a->n);
    return true;
}

void dm_pg_array_free(dm_pg_array *a)
{
    dm_buf_free(&a->buf);
}
