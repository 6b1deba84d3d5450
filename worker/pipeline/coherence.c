#include "coherence.h"

#include <stdlib.h>
#include <string.h>

#include "../codec/doc.h"
#include "../codec/models.h"

#define DM_COHERENCE_MAX_ROWS 100000

typedef struct {
    dm_candle c;
    uint64_t seq;
} seq_candle;

typedef struct {
    dm_tick t;
    uint64_t seq;
} seq_tick;

/* By key, then time, then sequence: a merge applies revisions of one candle in the order
 * they were published. */
static int cmp_candles(const void *a, const void *b)
{
    const seq_candle *x = a, *y = b;
    int c = strcmp(x->c.symbol, y->c.symbol);
    if (c == 0)
        c = (int)x->c.tf - (int)y->c.tf;
    if (c == 0)
        c = x->c.ts < y->c.ts ? -1 : x->c.ts > y->c.ts;
    if (c == 0)
        c = x->seq < y->seq ? -1 : x->seq > y->seq;
    return c;
}

static bool same_key(const seq_candle *a, const seq_candle *b)
{
    return a->c.tf == b->c.tf && strcmp(a->c.symbol, b->c.symbol) == 0;
}

/* Collects the acked rows (the only ones known committed), each with its message's
 * sequence. */
static size_t collect(const dm_ingest *ing, const dm_ingest_msg *msgs, size_t n, bool ticks,
                      void **out)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (msgs[i].verdict == DM_V_ACK)
            total += msgs[i].row_count;
    size_t elem = ticks ? sizeof(seq_tick) : sizeof(seq_candle);
    if (total == 0 || (*out = malloc(total * elem)) == NULL)
        return 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (msgs[i].verdict != DM_V_ACK)
            continue;
        for (size_t r = 0; r < msgs[i].row_count; r++, k++) {
            size_t row = msgs[i].row_start + r;
            if (ticks)
                ((seq_tick *)*out)[k] = (seq_tick){((const dm_tick *)dm_ingest_rows(ing))[row], msgs[i].seq};
            else
                ((seq_candle *)*out)[k] =
                    (seq_candle){((const dm_candle *)dm_ingest_rows(ing))[row], msgs[i].seq};
        }
    }
    return total;
}

static void begin(dm_enc *e, dm_buf *out, dm_backend_id from, const char *rows_key, size_t n)
{
    dm_enc_init(e, DM_ENC_MSGPACK, out);
    dm_enc_map(e, 3);
    dm_enc_key(e, "backend");
    dm_enc_str(e, dm_backend_name(from));
    dm_enc_key(e, rows_key);
    dm_enc_arr(e, n);
}

static void end(dm_enc *e, const uint64_t *seqs, size_t stride, size_t n)
{
    dm_enc_arr_end(e);
    dm_enc_key(e, "seqs");
    dm_enc_arr(e, n);
    for (size_t i = 0; i < n; i++)
        dm_enc_i64(e, (int64_t)*(const uint64_t *)((const char *)seqs + i * stride));
    dm_enc_arr_end(e);
    dm_enc_map_end(e);
}

static void encode_ticks(dm_backend_id from, seq_tick *t, size_t n, dm_buf *out)
{
    /* Only the newest tick of each symbol matters to a cache of latest ticks. */
    size_t keep = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < keep && strcmp(t[j].t.symbol, t[i].t.symbol) != 0)
            j++;
        if (j == keep)
            t[keep++] = t[i];
        else if (t[i].t.ts > t[j].t.ts || (t[i].t.ts == t[j].t.ts && t[i].seq >= t[j].seq))
            t[j] = t[i];
    }
    dm_enc e;
    begin(&e, out, from, "ticks", keep);
    for (size_t i = 0; i < keep; i++)
        dm_tick_encode(&e, &t[i].t);
    end(&e, &t[0].seq, sizeof *t, keep);
}

static void encode_candles(dm_backend_id from, seq_candle *c, size_t n, dm_buf *out)
{
    qsort(c, n, sizeof *c, cmp_candles);
    /* Per key, the newest DM_COHERENCE_PER_KEY: older ones cannot change a newest-N list
     * that the newer ones do not already invalidate. */
    size_t keep = 0;
    for (size_t start = 0; start < n;) {
        size_t end_ = start;
        while (end_ < n && same_key(&c[end_], &c[start]))
            end_++;
        size_t from_ = end_ - start > DM_COHERENCE_PER_KEY ? end_ - DM_COHERENCE_PER_KEY : start;
        memmove(&c[keep], &c[from_], (end_ - from_) * sizeof *c);
        keep += end_ - from_;
        start = end_;
    }
    dm_enc e;
    begin(&e, out, from, "candles", keep);
    for (size_t i = 0; i < keep; i++)
        dm_candle_encode(&e, &c[i].c);
    end(&e, &c[0].seq, sizeof *c, keep);
}

bool dm_coherence_encode(const dm_ingest *ing, dm_backend_id from, const dm_ingest_msg *msgs,
                         size_t n, dm_buf *out)
{
    dm_kind kind = dm_ingest_kind(ing);
    if (kind == DM_KIND_EVENT)
        return false;
    bool ticks = kind == DM_KIND_TICK;
    void *rows = NULL;
    size_t total = collect(ing, msgs, n, ticks, &rows);
    if (total == 0)
        return false;
    dm_buf_reset(out);
    if (ticks)
        encode_ticks(from, rows, total, out);
    else
        encode_candles(from, rows, total, out);
    free(rows);
    return !out->oom;
}

/* Only backends that commit market data and answer reads from it send updates. */
static dm_code update_source(const cJSON *root, dm_backend_id *from, dm_err *err)
{
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(root, "backend");
    if (!cJSON_IsString(b) || !dm_backend_parse(b->valuestring, from) ||
        (*from != DM_BK_TIMESCALE && *from != DM_BK_CLICKHOUSE && *from != DM_BK_DRAGONFLY))
        return dm_fail(err, DM_E_INVALID_FIELD, "backend",
                       "cache update names no backend that commits market data");
    return DM_OK;
}

static dm_code read_seqs(const cJSON *arr, int n, uint64_t *seqs, dm_err *err)
{
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != n)
        return dm_fail(err, DM_E_INVALID_FIELD, "seqs", "cache update needs one sequence per row");
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsNumber(it) || it->valuedouble < 1 || it->valuedouble > 9007199254740991.0 ||
            it->valuedouble != (double)(uint64_t)it->valuedouble)
            return dm_fail(err, DM_E_INVALID_FIELD, "seqs", "a sequence is not a positive integer");
        seqs[i++] = (uint64_t)it->valuedouble;
    }
    return DM_OK;
}

/* Every row must decode: an update that is not wholly valid is not from a worker. */
static dm_code apply_array(dm_l1_cache *c, dm_backend_id from, const cJSON *arr, const cJSON *seq_arr,
                           bool ticks, dm_err *err)
{
    int n = cJSON_GetArraySize(arr);
    if (n <= 0 || n > DM_COHERENCE_MAX_ROWS)
        return dm_fail(err, DM_E_INVALID_FIELD, ticks ? "ticks" : "candles",
                       "cache update holds %d rows", n);
    size_t elem = ticks ? sizeof(dm_tick) : sizeof(dm_candle);
    void *rows = malloc((size_t)n * elem);
    uint64_t *seqs = malloc((size_t)n * sizeof *seqs);
    dm_code code = rows && seqs ? read_seqs(seq_arr, n, seqs, err)
                                : dm_fail(err, DM_E_INTERNAL, "", "out of memory");
    size_t k = 0;
    int64_t now = dm_now_ms();
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (code != DM_OK)
            break;
        code = ticks ? dm_tick_decode(it, now, (dm_tick *)rows + k, err)
                     : dm_candle_decode(it, now, (dm_candle *)rows + k, err);
        k++;
    }
    if (code == DM_OK && ticks)
        dm_l1_cache_apply_ticks(c, from, rows, seqs, k);
    else if (code == DM_OK)
        dm_l1_cache_apply_candles(c, from, rows, seqs, k);
    free(rows);
    free(seqs);
    return code;
}

dm_code dm_coherence_apply(dm_l1_cache *c, const char *data, size_t len, dm_err *err)
{
    cJSON *root = NULL;
    if (dm_doc_parse(data, len, DM_ENC_MSGPACK, DM_INGEST_MAX_BYTES, &root, err))
        return err->code;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "ticks");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(root, "candles");
    const cJSON *seqs = cJSON_GetObjectItemCaseSensitive(root, "seqs");
    dm_backend_id from;
    dm_code code = update_source(root, &from, err);
    if (code == DM_OK && cJSON_IsArray(t) == cJSON_IsArray(k))
        code = dm_fail(err, DM_E_INVALID_FIELD, "", "cache update holds neither ticks nor candles");
    else if (code == DM_OK)
        code = apply_array(c, from, cJSON_IsArray(t) ? t : k, seqs, cJSON_IsArray(t), err);
    cJSON_Delete(root);
    return code;
}
