#include "coherence.h"

#include <stdlib.h>
#include <string.h>

#include "../codec/doc.h"
#include "../codec/models.h"

static int cmp_candles(const void *a, const void *b)
{
    const dm_candle *x = a, *y = b;
    int c = strcmp(x->symbol, y->symbol);
    if (c == 0)
        c = (int)x->tf - (int)y->tf;
    if (c == 0)
        c = x->ts < y->ts ? -1 : x->ts > y->ts;
    return c;
}

static bool same_key(const dm_candle *a, const dm_candle *b)
{
    return a->tf == b->tf && strcmp(a->symbol, b->symbol) == 0;
}

/* Collects the acked rows (the only ones known committed), sorted by key then time. */
static size_t collect(const dm_ingest *ing, const dm_ingest_msg *msgs, size_t n, void **out,
                      size_t elem)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (msgs[i].verdict == DM_V_ACK)
            total += msgs[i].row_count;
    if (total == 0 || (*out = malloc(total * elem)) == NULL)
        return 0;
    const char *base = dm_ingest_rows(ing);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (msgs[i].verdict != DM_V_ACK || msgs[i].row_count == 0)
            continue;
        memcpy((char *)*out + k * elem, base + msgs[i].row_start * elem, msgs[i].row_count * elem);
        k += msgs[i].row_count;
    }
    return total;
}

static void encode_ticks(dm_tick *t, size_t n, dm_buf *out)
{
    /* Only the newest tick of each symbol matters to a cache of latest ticks. */
    size_t keep = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < keep && strcmp(t[j].symbol, t[i].symbol) != 0)
            j++;
        if (j == keep)
            t[keep++] = t[i];
        else if (t[i].ts >= t[j].ts)
            t[j] = t[i];
    }
    dm_enc e;
    dm_enc_init(&e, DM_ENC_MSGPACK, out);
    dm_enc_map(&e, 1);
    dm_enc_key(&e, "ticks");
    dm_enc_arr(&e, keep);
    for (size_t i = 0; i < keep; i++)
        dm_tick_encode(&e, &t[i]);
    dm_enc_arr_end(&e);
    dm_enc_map_end(&e);
}

static void encode_candles(dm_candle *c, size_t n, dm_buf *out)
{
    qsort(c, n, sizeof *c, cmp_candles);
    /* Per key, the newest DM_COHERENCE_PER_KEY: older ones cannot change a newest-N list
     * that the newer ones do not already invalidate. */
    size_t keep = 0;
    for (size_t start = 0; start < n;) {
        size_t end = start;
        while (end < n && same_key(&c[end], &c[start]))
            end++;
        size_t from = end - start > DM_COHERENCE_PER_KEY ? end - DM_COHERENCE_PER_KEY : start;
        memmove(&c[keep], &c[from], (end - from) * sizeof *c);
        keep += end - from;
        start = end;
    }
    dm_enc e;
    dm_enc_init(&e, DM_ENC_MSGPACK, out);
    dm_enc_map(&e, 1);
    dm_enc_key(&e, "candles");
    dm_enc_arr(&e, keep);
    for (size_t i = 0; i < keep; i++)
        dm_candle_encode(&e, &c[i]);
    dm_enc_arr_end(&e);
    dm_enc_map_end(&e);
}

bool dm_coherence_encode(const dm_ingest *ing, const dm_ingest_msg *msgs, size_t n, dm_buf *out)
{
    dm_kind kind = dm_ingest_kind(ing);
    if (kind == DM_KIND_EVENT)
        return false;
    void *rows = NULL;
    size_t elem = kind == DM_KIND_TICK ? sizeof(dm_tick) : sizeof(dm_candle);
    size_t total = collect(ing, msgs, n, &rows, elem);
    if (total == 0)
        return false;
    dm_buf_reset(out);
    if (kind == DM_KIND_TICK)
        encode_ticks(rows, total, out);
    else
        encode_candles(rows, total, out);
    free(rows);
    return !out->oom;
}

static dm_code apply_array(dm_l1_cache *c, const cJSON *arr, bool ticks, dm_err *err)
{
    int n = cJSON_GetArraySize(arr);
    size_t elem = ticks ? sizeof(dm_tick) : sizeof(dm_candle);
    void *rows = n > 0 ? malloc((size_t)n * elem) : NULL;
    if (n > 0 && rows == NULL)
        return dm_fail(err, DM_E_INTERNAL, "", "out of memory");
    size_t k = 0;
    int64_t now = dm_now_ms();
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        dm_err e = {0};
        dm_code code = ticks ? dm_tick_decode(it, now, (dm_tick *)rows + k, &e)
                             : dm_candle_decode(it, now, (dm_candle *)rows + k, &e);
        if (code == DM_OK)
            k++;
    }
    if (ticks)
        dm_l1_cache_apply_ticks(c, rows, k);
    else
        dm_l1_cache_apply_candles(c, rows, k);
    free(rows);
    return DM_OK;
}

dm_code dm_coherence_apply(dm_l1_cache *c, const char *data, size_t len, dm_err *err)
{
    cJSON *root = NULL;
    if (dm_doc_parse(data, len, DM_ENC_MSGPACK, DM_INGEST_MAX_BYTES, &root, err))
        return err->code;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "ticks");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(root, "candles");
    dm_code code = DM_OK;
    if (cJSON_IsArray(t))
        code = apply_array(c, t, true, err);
    else if (cJSON_IsArray(k))
        code = apply_array(c, k, false, err);
    else
        code = dm_fail(err, DM_E_INVALID_FIELD, "", "cache update holds neither ticks nor candles");
    cJSON_Delete(root);
    return code;
}
