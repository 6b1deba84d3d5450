#include "ingest.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/doc.h"
#include "codec/models.h"
#include "codec/pb.h"
#include "util/log.h"

struct dm_ingest {
    dm_kind kind;
    dm_backend *backend;
    dm_tick *ticks;
    dm_candle *candles;
    dm_event *events;
    size_t rows, cap;
    uint64_t *seqs; /* per row of the batch: its message's MARKET sequence */
    size_t seqs_cap;
    /* rejects of the last batch, freed at the start of the next */
    dm_reject *rejects;
    size_t n_rejects, rejects_cap;
    int attempts;
    dm_backoff backoff;
    int64_t budget_ms;
    const atomic_bool *stop;
    /* ticks decoded by this worker's other tick consumer (NULL: none); per batch, the
     * messages' keys, which were found there and their ticks, and what is new to it */
    dm_tick_share *share;
    dm_tick_key *keys, *new_keys;
    bool *found;
    dm_tick *shared, *new_ticks;
    size_t share_cap;
};

static const char *const KIND_NAMES[DM_KIND_COUNT] = {"tick", "candle", "candles", "event"};

const char *const *dm_kind_names(void) { return KIND_NAMES; }
static const char *const KIND_FILTERS[DM_KIND_COUNT] = {"market.tick.>", "market.candle.>",
                                                        "market.candles.>", "market.event.>"};

const char *dm_kind_name(dm_kind kind) { return KIND_NAMES[kind]; }
const char *dm_kind_filter(dm_kind kind) { return KIND_FILTERS[kind]; }

dm_op dm_kind_op(dm_kind kind)
{
    static const dm_op ops[DM_KIND_COUNT] = {DM_OP_SAVE_TICK, DM_OP_SAVE_CANDLE,
                                             DM_OP_SAVE_CANDLES_BULK, DM_OP_SAVE_EVENT};
    return ops[kind];
}

bool dm_kind_supported(dm_kind kind, const dm_backend *b)
{
    switch (kind) {
    case DM_KIND_TICK: return dm_backend_offers(b, write_ticks);
    case DM_KIND_CANDLE:
    case DM_KIND_CANDLES: return dm_backend_offers(b, write_candles);
    case DM_KIND_EVENT: return dm_backend_offers(b, write_events);
    default: return false;
    }
}

dm_ingest *dm_ingest_create(dm_kind kind, dm_backend *backend)
{
    dm_ingest *ing = calloc(1, sizeof *ing);
    if (ing) {
        ing->kind = kind;
        ing->backend = backend;
        ing->attempts = 1;
    }
    return ing;
}

dm_kind dm_ingest_kind(const dm_ingest *ing) { return ing->kind; }

const void *dm_ingest_rows(const dm_ingest *ing)
{
    return ing->kind == DM_KIND_TICK    ? (const void *)ing->ticks
           : ing->kind == DM_KIND_EVENT ? (const void *)ing->events
                                        : (const void *)ing->candles;
}

void dm_ingest_set_retry(dm_ingest *ing, int attempts, const dm_backoff *backoff, int64_t budget_ms,
                         const atomic_bool *stop)
{
    ing->attempts = attempts < 1 ? 1 : attempts;
    ing->backoff = *backoff;
    ing->budget_ms = budget_ms < 0 ? 0 : budget_ms;
    ing->stop = stop;
}

static void clear_rejects(dm_ingest *ing)
{
    for (size_t i = 0; i < ing->n_rejects; i++)
        free(ing->rejects[i].payload);
    ing->n_rejects = 0;
}

void dm_ingest_destroy(dm_ingest *ing)
{
    if (ing == NULL)
        return;
    clear_rejects(ing);
    free(ing->rejects);
    free(ing->seqs);
    free(ing->keys);
    free(ing->new_keys);
    free(ing->found);
    free(ing->shared);
    free(ing->new_ticks);
    free(ing->ticks);
    free(ing->candles);
    free(ing->events);
    free(ing);
}

static bool reserve_rows(dm_ingest *ing, size_t extra)
{
    if (ing->rows + extra <= ing->cap)
        return true;
    size_t cap = ing->cap ? ing->cap : 1024;
    while (cap < ing->rows + extra)
        cap *= 2;
    size_t elem = ing->kind == DM_KIND_TICK    ? sizeof(dm_tick)
                  : ing->kind == DM_KIND_EVENT ? sizeof(dm_event)
                                               : sizeof(dm_candle);
    void **slot = ing->kind == DM_KIND_TICK    ? (void **)&ing->ticks
                  : ing->kind == DM_KIND_EVENT ? (void **)&ing->events
                                               : (void **)&ing->candles;
    void *p = realloc(*slot, cap * elem);
    if (p == NULL)
        return false;
    *slot = p;
    ing->cap = cap;
    return true;
}

/* Subject tokens after "market.<kind>.": the symbol token (or country) and timeframe. */
typedef struct {
    char a[DM_TOKEN_MAX + 1];
    char tf[8];
} subject_tokens;

static dm_code parse_subject(dm_kind kind, const char *subject, subject_tokens *st, dm_err *err)
{
    const char *prefix_end = strchr(subject, '.');
    prefix_end = prefix_end ? strchr(prefix_end + 1, '.') : NULL;
    bool want_tf = kind == DM_KIND_CANDLE || kind == DM_KIND_CANDLES;
    if (prefix_end) {
        const char *a = prefix_end + 1, *dot = strchr(a, '.');
        size_t alen = dot ? (size_t)(dot - a) : strlen(a);
        if (alen > 0 && alen <= DM_TOKEN_MAX && (dot != NULL) == want_tf &&
            (!dot || (strlen(dot + 1) < sizeof st->tf && !strchr(dot + 1, '.')))) {
            memcpy(st->a, a, alen);
            st->a[alen] = '\0';
            size_t tflen = dot ? strlen(dot + 1) : 0; /* < sizeof st->tf, checked above */
            memcpy(st->tf, dot ? dot + 1 : "", tflen);
            st->tf[tflen] = '\0';
            return DM_OK;
        }
    }
    return dm_fail(err, DM_E_INVALID_FIELD, "subject", "subject %.80s does not match market.%s.%s",
                   subject, dm_kind_name(kind),
                   kind == DM_KIND_EVENT ? "{COUNTRY}" : want_tf ? "{SYMBOL}.{TIMEFRAME}" : "{SYMBOL}");
}

static dm_code check_symbol_token(const char *symbol, const char *token, dm_err *err)
{
    char canon[DM_SYMBOL_MAX + 1], tok[DM_TOKEN_MAX + 1];
    if (dm_symbol_normalize(symbol, canon, tok, "symbol", err))
        return err->code;
    if (strcmp(tok, token) != 0)
        return dm_fail(err, DM_E_INVALID_FIELD, "symbol",
                       "symbol %s does not agree with the subject token %s", symbol, token);
    return DM_OK;
}

static dm_code check_candle_subject(const dm_candle *c, const subject_tokens *st, dm_err *err)
{
    if (check_symbol_token(c->symbol, st->a, err))
        return err->code;
    if (strcmp(dm_tf_name(c->tf), st->tf) != 0)
        return dm_fail(err, DM_E_INVALID_FIELD, "timeframe",
                       "timeframe %s does not agree with the subject token %.8s", dm_tf_name(c->tf),
                       st->tf);
    return DM_OK;
}

static void add_reject(dm_ingest *ing, dm_ingest_msg *m, int index, const dm_err *e,
                       const cJSON *item)
{
    if (ing->n_rejects == ing->rejects_cap) {
        size_t cap = ing->rejects_cap ? ing->rejects_cap * 2 : 16;
        dm_reject *p = realloc(ing->rejects, cap * sizeof *p);
        if (p == NULL)
            return; /* the item is still dropped from the write; its reason is lost to OOM */
        ing->rejects = p;
        ing->rejects_cap = cap;
    }
    dm_reject *r = &ing->rejects[ing->n_rejects++];
    r->index = index;
    r->err = *e;
    r->payload = cJSON_PrintUnformatted(item);
    if (m->rejects == NULL)
        m->rejects = r;
    m->n_rejects++;
}

/* "candles[17]: candle.high ..." so a reader knows which item of the bulk was refused. */
static void prefix_message(dm_err *e, int index)
{
    char prefix[24];
    size_t pl = (size_t)snprintf(prefix, sizeof prefix, "candles[%d]: ", index);
    size_t ml = strnlen(e->message, sizeof e->message - 1);
    if (pl + ml >= sizeof e->message)
        ml = sizeof e->message - 1 - pl;
    memmove(e->message + pl, e->message, ml);
    memcpy(e->message, prefix, pl);
    e->message[pl + ml] = '\0';
}

static dm_code decode_bulk(dm_ingest *ing, dm_ingest_msg *m, const cJSON *root,
                           const subject_tokens *st, int64_t now, dm_err *err)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "candles");
    if (arr == NULL)
        return dm_fail(err, DM_E_MISSING_FIELD, "candles", "candles is required");
    if (!cJSON_IsArray(arr))
        return dm_fail(err, DM_E_INVALID_FIELD, "candles", "candles must be an array");
    int n = cJSON_GetArraySize(arr);
    if (n == 0)
        return dm_fail(err, DM_E_INVALID_FIELD, "candles", "candles is empty");
    if (n > DM_BULK_MAX)
        return dm_fail(err, DM_E_TOO_LARGE, "candles",
                       "candles holds %d items, at most %d per message (split the batch)", n,
                       DM_BULK_MAX);
    if (!reserve_rows(ing, (size_t)n))
        return dm_fail(err, DM_E_INTERNAL, "", "out of memory");
    int i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, arr)
    {
        dm_err e = {0};
        dm_candle *c = &ing->candles[ing->rows];
        if (!cJSON_IsObject(item))
            dm_fail(&e, DM_E_INVALID_FIELD, "candles", "the item must be an object");
        else if (dm_candle_decode(item, now, c, &e) == DM_OK)
            check_candle_subject(c, st, &e);
        if (e.code == DM_OK) {
            ing->rows++;
            m->row_count++;
        } else {
            prefix_message(&e, i);
            add_reject(ing, m, i, &e, item);
        }
        i++;
    }
    return DM_OK;
}

static dm_code decode_one(dm_ingest *ing, dm_ingest_msg *m, int64_t now, dm_err *err)
{
    subject_tokens st;
    if (parse_subject(ing->kind, m->subject, &st, err))
        return err->code;
    cJSON *root = NULL;
    const char *ct = m->content_type;
    if (ct == NULL && m->header)
        ct = m->header(m->src, "Content-Type");
    dm_encoding enc = dm_doc_detect(ct, m->data, m->len);
    /* Payloads ignore unknown protobuf fields, as they ignore unknown JSON members. */
    if (dm_pb_parse_body(m->data, m->len, enc, DM_INGEST_MAX_BYTES, dm_pb_payload_type(m->subject), false,
                         &root, err))
        return err->code;
    dm_code c = DM_OK;
    if (ing->kind == DM_KIND_CANDLES) {
        c = decode_bulk(ing, m, root, &st, now, err);
    } else if (!reserve_rows(ing, 1)) {
        c = dm_fail(err, DM_E_INTERNAL, "", "out of memory");
    } else if (ing->kind == DM_KIND_TICK) {
        dm_tick *t = &ing->ticks[ing->rows];
        if (!(c = dm_tick_decode(root, now, t, err)))
            c = check_symbol_token(t->symbol, st.a, err);
    } else if (ing->kind == DM_KIND_CANDLE) {
        dm_candle *k = &ing->candles[ing->rows];
        if (!(c = dm_candle_decode(root, now, k, err)))
            c = check_candle_subject(k, &st, err);
    } else {
        dm_event *e = &ing->events[ing->rows];
        if (!(c = dm_event_decode(root, now, e, err)) && strcmp(e->country, st.a) != 0)
            c = dm_fail(err, DM_E_INVALID_FIELD, "country",
                        "country %s does not agree with the subject token %.24s", e->country, st.a);
    }
    if (c == DM_OK && ing->kind != DM_KIND_CANDLES) {
        ing->rows++;
        m->row_count = 1;
    }
    cJSON_Delete(root);
    return c;
}

static dm_bstatus write_rows(dm_ingest *ing, size_t start, size_t n, const dm_cache_opts *o,
                             dm_err *err)
{
    if (n == 0)
        return DM_BS_OK;
    dm_backend *b = ing->backend;
    dm_cache_opts part = *o;
    part.seqs = o->seqs ? o->seqs + start : NULL;
    switch (ing->kind) {
    case DM_KIND_TICK: return dm_backend_write_ticks(b, ing->ticks + start, n, &part, err);
    case DM_KIND_EVENT: return dm_backend_write_events(b, ing->events + start, n, err);
    default: return dm_backend_write_candles(b, ing->candles + start, n, &part, err);
    }
}

/* Each row's stream sequence, for backends that order revisions by it (NULL when out of
 * memory: unknown). */
static const uint64_t *row_seqs(dm_ingest *ing, const dm_ingest_msg *msgs, size_t n)
{
    if (ing->rows > ing->seqs_cap) {
        uint64_t *v = realloc(ing->seqs, ing->rows * sizeof *v);
        if (v == NULL)
            return NULL;
        ing->seqs = v;
        ing->seqs_cap = ing->rows;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t r = 0; r < msgs[i].row_count && msgs[i].row_start + r < ing->rows; r++)
            ing->seqs[msgs[i].row_start + r] = msgs[i].seq;
    return ing->seqs;
}

static dm_bstatus write_with_retry(dm_ingest *ing, const dm_cache_opts *o, dm_err *err)
{
    int64_t waited = 0;
    for (int attempt = 1;; attempt++) {
        dm_bstatus st = write_rows(ing, 0, ing->rows, o, err);
        if (st != DM_BS_TRANSIENT || attempt >= ing->attempts)
            return st;
        int64_t wait = dm_backoff_ms(&ing->backoff, attempt);
        if (waited + wait > ing->budget_ms || !dm_sleep_ms(wait, ing->stop))
            return st;
        waited += wait;
    }
}

/* The verdict of a message from the status of the write that held it: anything but OK
 * left nothing committed (backend.h), so only PERMANENT is final and the rest is
 * redelivered. The error the backend filled already carries the code that goes with the
 * status, so it travels on as it is. */
static void judge(dm_ingest_msg *m, dm_bstatus st, const dm_err *e)
{
    if (st == DM_BS_OK)
        return;
    m->verdict = st == DM_BS_PERMANENT ? DM_V_DEAD : DM_V_RETRY;
    m->err = *e;
    m->refused_by_backend = st == DM_BS_PERMANENT;
}

/* The database refused the batch: find the offending messages one at a time. After a
 * transient failure the rest waits too: nothing newer is written before it. */
static void write_one_by_one(dm_ingest *ing, dm_ingest_msg *msgs, size_t n, const dm_cache_opts *o)
{
    dm_bstatus st = DM_BS_OK;
    dm_err e = {0};
    for (size_t i = 0; i < n; i++) {
        dm_ingest_msg *m = &msgs[i];
        if (m->verdict != DM_V_ACK || m->row_count == 0)
            continue;
        if (st != DM_BS_TRANSIENT) {
            dm_err_clear(&e);
            st = write_rows(ing, m->row_start, m->row_count, o, &e);
        }
        judge(m, st, &e);
    }
}

static bool reserve_share(dm_ingest *ing, size_t n)
{
    if (n <= ing->share_cap)
        return true;
    size_t cap = ing->share_cap ? ing->share_cap : 256;
    while (cap < n)
        cap *= 2;
    bool ok = true;
    /* each array grows or stays as it was */
#define GROW(field)                                                                             \
    do {                                                                                        \
        void *q = realloc(ing->field, cap * sizeof *ing->field);                                \
        if (q)                                                                                  \
            ing->field = q;                                                                     \
        ok = ok && q;                                                                           \
    } while (0)
    GROW(keys);
    GROW(new_keys);
    GROW(found);
    GROW(shared);
    GROW(new_ticks);
#undef GROW
    if (ok)
        ing->share_cap = cap;
    return ok;
}

/* Which of the batch's ticks this worker's other tick consumer has decoded already. */
static bool look_up_shared(dm_ingest *ing, const dm_ingest_msg *msgs, size_t n)
{
    if (ing->share == NULL || ing->kind != DM_KIND_TICK || !reserve_share(ing, n))
        return false;
    for (size_t i = 0; i < n; i++)
        ing->keys[i] = (dm_tick_key){msgs[i].seq, msgs[i].stored_ns};
    dm_tick_share_find(ing->share, ing->keys, n, ing->shared, ing->found);
    return true;
}

/* Leaves the ticks decoded here (not taken from the share) for the other consumer. */
static void share_decoded(dm_ingest *ing, const dm_ingest_msg *msgs, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (ing->found[i] || msgs[i].verdict != DM_V_ACK || msgs[i].row_count != 1)
            continue;
        ing->new_keys[k] = ing->keys[i];
        ing->new_ticks[k++] = ing->ticks[msgs[i].row_start];
    }
    if (k > 0)
        dm_tick_share_put(ing->share, ing->new_keys, ing->new_ticks, k);
}

/* Decodes every message into the row buffer; returns how many have rows to write. */
static size_t decode_all(dm_ingest *ing, dm_ingest_msg *msgs, size_t n)
{
    int64_t now = dm_now_ms();
    size_t with_rows = 0;
    bool sharing = look_up_shared(ing, msgs, n);
    for (size_t i = 0; i < n; i++) {
        dm_ingest_msg *m = &msgs[i];
        m->verdict = DM_V_ACK;
        m->rejects = NULL;
        m->n_rejects = 0;
        m->row_start = ing->rows;
        m->row_count = 0;
        m->refused_by_backend = false;
        dm_err_clear(&m->err);
        if (sharing && ing->found[i]) {
            if (!reserve_rows(ing, 1)) {
                dm_fail(&m->err, DM_E_INTERNAL, "", "out of memory");
                m->verdict = DM_V_RETRY;
                continue;
            }
            ing->ticks[ing->rows++] = ing->shared[i];
            m->row_count = 1;
            with_rows++;
            continue;
        }
        if (decode_one(ing, m, now, &m->err) != DM_OK) {
            ing->rows = m->row_start; /* drop any partial rows */
            m->row_count = 0;
            /* Out of memory says nothing about the message: try it again later. */
            m->verdict = m->err.code == DM_E_INTERNAL ? DM_V_RETRY : DM_V_DEAD;
        } else if (m->row_count > 0) {
            with_rows++;
        }
    }
    if (sharing)
        share_decoded(ing, msgs, n);
    return with_rows;
}

void dm_ingest_share_ticks(dm_ingest *ing, dm_tick_share *share)
{
    ing->share = share;
}

/* Bulk rejects were appended while the array could still grow: fix their pointers. */
static void point_at_rejects(dm_ingest *ing, dm_ingest_msg *msgs, size_t n)
{
    for (size_t i = 0, r = 0; i < n; i++) {
        if (msgs[i].n_rejects) {
            msgs[i].rejects = &ing->rejects[r];
            r += msgs[i].n_rejects;
        }
    }
}

void dm_ingest_batch(dm_ingest *ing, dm_ingest_msg *msgs, size_t n, const dm_cache_opts *opts)
{
    clear_rejects(ing);
    ing->rows = 0;
    size_t with_rows = decode_all(ing, msgs, n);
    point_at_rejects(ing, msgs, n);
    if (with_rows == 0)
        return;
    dm_cache_opts o = *opts;
    o.seqs = row_seqs(ing, msgs, n);
    opts = &o;
    dm_err e = {0};
    dm_bstatus st = write_with_retry(ing, opts, &e);
    if (st == DM_BS_OK)
        return;
    if (st == DM_BS_PERMANENT && with_rows > 1) {
        DM_WARN("ingest", "%s batch of %zu refused (%s [%s:%d]): retrying message by message",
                dm_backend_label(ing->backend), ing->rows, e.message, e.file ? e.file : "?", e.line);
        write_one_by_one(ing, msgs, n, opts);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (msgs[i].verdict == DM_V_ACK && msgs[i].row_count > 0)
            judge(&msgs[i], st, &e);
}
