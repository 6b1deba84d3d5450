#include "coherence.h"

#include <stdlib.h>
#include <string.h>

#include "codec/doc.h"
#include "codec/models.h"

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

static void begin(dm_enc *e, dm_buf *out, dm_backend_id from, const char *rows_key, size_t n,
                  size_t members)
{
    dm_enc_init(e, DM_ENC_MSGPACK, out);
    dm_enc_map(e, members);
    dm_enc_key(e, "backend");
    dm_enc_str(e, dm_backend_name(from));
    dm_enc_key(e, rows_key);
    dm_enc_arr(e, n);
}

static void put_seqs(dm_enc *e, const uint64_t *seqs, size_t stride, size_t n)
{
    dm_enc_arr_end(e);
    dm_enc_key(e, "seqs");
    dm_enc_arr(e, n);
    for (size_t i = 0; i < n; i++)
        dm_enc_i64(e, (int64_t)*(const uint64_t *)((const char *)seqs + i * stride));
    dm_enc_arr_end(e);
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
    begin(&e, out, from, "ticks", keep, 3);
    for (size_t i = 0; i < keep; i++)
        dm_tick_encode(&e, &t[i].t);
    put_seqs(&e, &t[0].seq, sizeof *t, keep);
    dm_enc_map_end(&e);
}

/* Keeps, per key, the newest DM_COHERENCE_PER_KEY (older ones cannot change a newest-N
 * list that the newer ones do not already invalidate); returns how many keys lost rows. */
static size_t keep_newest(seq_candle *c, size_t n, size_t *keep, seq_candle *partial)
{
    size_t k = 0, n_partial = 0;
    for (size_t start = 0; start < n;) {
        size_t end_ = start;
        while (end_ < n && same_key(&c[end_], &c[start]))
            end_++;
        size_t from_ = start;
        if (end_ - start > DM_COHERENCE_PER_KEY) {
            from_ = end_ - DM_COHERENCE_PER_KEY;
            partial[n_partial++] = c[end_ - 1];
        }
        memmove(&c[k], &c[from_], (end_ - from_) * sizeof *c);
        k += end_ - from_;
        start = end_;
    }
    *keep = k;
    return n_partial;
}

static void encode_candles(dm_backend_id from, seq_candle *c, size_t n, dm_buf *out)
{
    qsort(c, n, sizeof *c, cmp_candles);
    seq_candle *partial = malloc(n * sizeof *partial);
    size_t keep = n, n_partial = 0;
    if (partial)
        n_partial = keep_newest(c, n, &keep, partial);
    else
        n = keep = 0; /* out of memory: say nothing rather than half */
    dm_enc e;
    begin(&e, out, from, "candles", keep, n_partial ? 4 : 3);
    for (size_t i = 0; i < keep; i++)
        dm_candle_encode(&e, &c[i].c);
    put_seqs(&e, &c[0].seq, sizeof *c, keep);
    /* Keys whose older rows were left out, [symbol, timeframe, newest seq]: a copy of every
     * close (the analysis engines' series) reads them from the backend instead. */
    if (n_partial) {
        dm_enc_key(&e, "partial");
        dm_enc_arr(&e, n_partial);
        for (size_t i = 0; i < n_partial; i++) {
            dm_enc_arr(&e, 3);
            dm_enc_str(&e, partial[i].c.symbol);
            dm_enc_str(&e, dm_tf_name(partial[i].c.tf));
            dm_enc_i64(&e, (int64_t)partial[i].seq);
            dm_enc_arr_end(&e);
        }
        dm_enc_arr_end(&e);
    }
    dm_enc_map_end(&e);
    free(partial);
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
static dm_code apply_array(dm_l1_cache *c, dm_series_store *series, dm_backend_id from,
                           const cJSON *arr, const cJSON *seq_arr, bool ticks, dm_err *err)
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
    if (code == DM_OK && !ticks && series)
        dm_series_note(series, rows, seqs, k);
    free(rows);
    free(seqs);
    return code;
}

/* PostgreSQL's partial keys: the series store reads them again (it loads from PostgreSQL,
 * so only PostgreSQL's say-so means the rows are there to read). */
static dm_code apply_partial(dm_series_store *series, const cJSON *arr, dm_err *err)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const cJSON *sym = cJSON_GetArrayItem(it, 0), *tf = cJSON_GetArrayItem(it, 1),
                    *seq = cJSON_GetArrayItem(it, 2);
        char symbol[DM_SYMBOL_MAX + 1], token[DM_TOKEN_MAX + 1];
        dm_tf t;
        if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 3 || !cJSON_IsString(sym) || !cJSON_IsString(tf) ||
            !cJSON_IsNumber(seq) || seq->valuedouble < 1 || !dm_tf_parse(tf->valuestring, &t) ||
            dm_symbol_normalize(sym->valuestring, symbol, token, "partial", err) != DM_OK)
            return dm_fail(err, DM_E_INVALID_FIELD, "partial", "cache update has a malformed partial key");
        dm_series_stale(series, symbol, t, (uint64_t)seq->valuedouble);
    }
    return DM_OK;
}

dm_code dm_coherence_apply(dm_l1_cache *c, dm_series_store *series, const char *data, size_t len,
                           dm_err *err)
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
        code = apply_array(c, series, from, cJSON_IsArray(t) ? t : k, seqs, cJSON_IsArray(t), err);
    const cJSON *partial = cJSON_GetObjectItemCaseSensitive(root, "partial");
    if (code == DM_OK && series && from == DM_BK_TIMESCALE && cJSON_IsArray(partial))
        code = apply_partial(series, partial, err);
    cJSON_Delete(root);
    return code;
}
