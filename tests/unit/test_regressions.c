/* Regressions: each test failed against an earlier worker (a defect that passed bad UTF-8,
 * cut msgpack keys at a NUL, hung on a repeated config key, or gave a refused message a
 * code that depended on its batch; and, found by the fuzzers in fuzz/, msgpack that made
 * the worker allocate what it announced or read through a NULL, a metrics reply with a
 * wrong member count, a cursor that overflowed). Each runs in a child process, since a
 * defect of this kind may hang or crash, so one cannot hide another. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <msgpack.h>

#include "codec/doc.h"
#include "codec/models.h"
#include "pipeline/ingest.h"
#include "pipeline/serve.h"
#include "util/config.h"

#define T0 1578528000000LL /* 2020-01-09 00:00 UTC */
#define NOW 1579478400000LL

/* A probe returns true when the promise holds, else false with `why` filled. */
typedef bool (*probe_fn)(char *why, size_t cap);

/* Runs the probe in a child; false with `msg` filled when it failed, crashed or hung. */
static bool isolated(probe_fn probe, unsigned timeout_s, char *msg, size_t cap)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        alarm(timeout_s);
        char why[600] = "";
        bool ok = probe(why, sizeof why);
        ssize_t w = write(fds[1], why, strlen(why));
        (void)w;
        _exit(ok ? 0 : 1);
    }
    close(fds[1]);
    char why[600];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof why - 1 && (r = read(fds[0], why + n, sizeof why - 1 - n)) > 0)
        n += (size_t)r;
    why[n] = '\0';
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status)) {
        snprintf(msg, cap, "probe killed by signal %d%s", WTERMSIG(status),
                 WTERMSIG(status) == SIGALRM ? " (it hung)" : "");
        return false;
    }
    if (WEXITSTATUS(status) != 0) {
        snprintf(msg, cap, "%s", why[0] ? why : "probe failed (crash or sanitizer report above)");
        return false;
    }
    return true;
}

static void run_isolated(probe_fn probe, unsigned timeout_s)
{
    char msg[700];
    if (!isolated(probe, timeout_s, msg, sizeof msg))
        fail_msg("%s", msg);
}

/* ---- BUG 1: worker/model/model.c dm_is_text ---------------------------------------
 * dm_is_text() promises "valid UTF-8" but only checks lead bytes and continuation bytes:
 * overlong 3- and 4-byte forms, UTF-16 surrogates (ED A0..BF) and code points above
 * U+10FFFF (F4 90..) pass. PostgreSQL refuses such text ("invalid byte sequence for
 * encoding UTF8"), so the event is dead-lettered by the database instead of validation,
 * after costing the whole batch a message-by-message retry, while ClickHouse and Dragonfly
 * store it. Expected: DM_E_INVALID_FIELD on field event_name. */
static bool probe_event_name_rejects_overlong_and_surrogate_utf8(char *why, size_t cap)
{
    static const char *const bad[] = {
        "CPI \xe0\x80\xaf y/y",     /* overlong '/' (3 bytes) */
        "CPI \xed\xa0\x80 y/y",     /* U+D800, a UTF-16 surrogate */
        "CPI \xf4\x90\x80\x80 y/y", /* U+110000, beyond Unicode */
        "CPI \xf0\x80\x80\xaf y/y", /* overlong '/' (4 bytes) */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cJSON *o = cJSON_Parse("{\"event_id\":\"us-cpi-2020-01\",\"timestamp\":1578663000000,"
                               "\"country\":\"US\",\"event_name\":\"x\",\"impact\":\"high\"}");
        cJSON_ReplaceItemInObject(o, "event_name", cJSON_CreateString(bad[i]));
        dm_event ev;
        dm_err e = {0};
        dm_code c = dm_event_decode(o, NOW, &ev, &e);
        cJSON_Delete(o);
        if (c != DM_E_INVALID_FIELD || strcmp(e.field, "event_name") != 0) {
            snprintf(why, cap, "event_name #%zu with invalid UTF-8 gave %s (field '%s'), want "
                     "invalid_field on event_name", i, dm_code_name(c), e.field);
            return false;
        }
    }
    return true;
}

static void event_name_rejects_overlong_and_surrogate_utf8(void **state)
{
    (void)state;
    run_isolated(probe_event_name_rejects_overlong_and_surrogate_utf8, 10);
}

/* ---- BUG 2: worker/codec/doc.c mp_map --------------------------------------------
 * A msgpack map key with an embedded NUL is copied with memcpy and then used as a C
 * string, so "symbol\0junk" silently becomes "symbol". The same file refuses a NUL inside
 * a string value for exactly this reason ("would silently truncate"). Expected:
 * DM_E_INVALID_MSGPACK. Actual: DM_OK with a key "symbol". */
static bool probe_msgpack_key_with_nul_is_refused(char *why, size_t cap)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str(&pk, 11);
    msgpack_pack_str_body(&pk, "symbol\0junk", 11);
    msgpack_pack_str(&pk, 7);
    msgpack_pack_str_body(&pk, "EUR/USD", 7);
    cJSON *root = NULL;
    dm_err e = {0};
    dm_code c = dm_doc_parse(sb.data, sb.size, DM_ENC_MSGPACK, 1 << 20, &root, &e);
    bool ok = c == DM_E_INVALID_MSGPACK;
    if (!ok)
        snprintf(why, cap, "key \"symbol\\0junk\" gave %s%s, want invalid_msgpack",
                 dm_code_name(c),
                 root && cJSON_GetObjectItem(root, "symbol") ? " with a key \"symbol\"" : "");
    cJSON_Delete(root);
    msgpack_sbuffer_destroy(&sb);
    return ok;
}

static void msgpack_key_with_nul_is_refused(void **state)
{
    (void)state;
    run_isolated(probe_msgpack_key_with_nul_is_refused, 10);
}

/* ---- BUG 3: worker/util/config.c resolve_env -------------------------------------
 * In an object, an "ENV:" member is replaced through
 * cJSON_ReplaceItemInObjectCaseSensitive(node, it->string, ...), which replaces the FIRST
 * member with that name. With a duplicated key ({"host":"localhost","host":"ENV:X"}) the
 * first member is replaced, `it = repl` jumps back to it, the loop reaches the untouched
 * "ENV:X" member again and replaces the first one again: dm_config_load never returns.
 * Expected: it returns (an error naming the duplicate, or the substituted value). */
static char dup_dir[64];

static bool probe_config_with_duplicate_key_loads(char *why, size_t cap)
{
    cJSON *cfg = NULL;
    dm_err e = {0};
    dm_code c = dm_config_load(dup_dir, "dup", &cfg, &e);
    (void)c;
    cJSON_Delete(cfg);
    (void)why, (void)cap;
    return true; /* returning at all is the promise */
}

static void config_with_duplicate_env_key_does_not_hang(void **state)
{
    (void)state;
    snprintf(dup_dir, sizeof dup_dir, "/tmp/dm-unit-bugs-XXXXXX");
    assert_non_null(mkdtemp(dup_dir));
    char path[128];
    snprintf(path, sizeof path, "%s/dup.json", dup_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"host\":\"localhost\",\"host\":\"ENV:DM_UT_DUP_HOST\",\"port\":5432}", f);
    fclose(f);
    setenv("DM_UT_DUP_HOST", "db.internal.example", 1);
    char msg[700];
    bool ok = isolated(probe_config_with_duplicate_key_loads, 3, msg, sizeof msg);
    unlink(path);
    rmdir(dup_dir);
    if (!ok)
        fail_msg("%s", msg);
}

/* ---- BUG 4: worker/pipeline/ingest.c dm_ingest_batch -------------------------------
 * When the database refuses data (DM_BS_PERMANENT) the dead letter's code depends on the
 * batch: with several messages, write_one_by_one() sets err.code = DM_E_INVALID_FIELD; with
 * a single message, the final loop copies the backend's error as is, and timescale.c fills
 * it with DM_E_UNAVAILABLE. The same refused tick is thus dead-lettered with Dm-Code
 * "invalid_field" (400) or "unavailable" (503) depending on what else was fetched with it.
 * Expected: invalid_field both times. Fixed by one error channel (backend/backend.h): a
 * backend fills its error with dm_bfail, which derives the code from the status, and the
 * ingest passes it on unchanged in both paths. */
typedef struct {
    dm_backend base;
} refusing;

static dm_bstatus refuse_ticks(dm_backend *b, const dm_tick *t, size_t n, const dm_cache_opts *o,
                               dm_err *err)
{
    (void)b, (void)o;
    for (size_t i = 0; i < n; i++)
        if (t[i].ts == T0) /* like timescale.c fail() */
            return dm_bfail(err, DM_BS_PERMANENT, "",
                            "timescale insert ticks failed: value too long");
    return DM_BS_OK;
}

static void refuse_destroy(dm_backend *b) { (void)b; }

static dm_code dead_code(size_t n_msgs)
{
    static const dm_backend_ops ops = {.write_ticks = refuse_ticks, .destroy = refuse_destroy};
    refusing r = {.base = {.ops = &ops, .id = DM_BK_TIMESCALE}};
    dm_ingest *ing = dm_ingest_create(DM_KIND_TICK, &r.base);
    char data[2][256];
    dm_ingest_msg m[2];
    memset(m, 0, sizeof m);
    for (size_t i = 0; i < 2; i++) {
        snprintf(data[i], sizeof data[i],
                 "{\"symbol\":\"EUR/USD\",\"timestamp\":%lld,\"bid\":1.10321,\"ask\":1.10335,"
                 "\"spread\":0.00014,\"source\":\"twelve-data\"}",
                 (long long)(T0 + (int64_t)i * 1000));
        m[i].subject = "market.tick.EURUSD";
        m[i].data = data[i];
        m[i].len = strlen(data[i]);
    }
    dm_cache_opts opts = {.ttl_s = 3600, .depth = 1000};
    dm_ingest_batch(ing, m, n_msgs, &opts);
    dm_code c = m[0].verdict == DM_V_DEAD ? m[0].err.code : (dm_code)-1;
    dm_ingest_destroy(ing);
    return c;
}

static bool probe_refused_tick_code_does_not_depend_on_batch(char *why, size_t cap)
{
    dm_code in_batch = dead_code(2), alone = dead_code(1);
    if (in_batch == DM_E_INVALID_FIELD && alone == DM_E_INVALID_FIELD)
        return true;
    snprintf(why, cap, "refused tick dead-lettered as %s in a batch of 2 but as %s alone; "
             "want invalid_field both times",
             in_batch == (dm_code)-1 ? "(not dead)" : dm_code_name(in_batch),
             alone == (dm_code)-1 ? "(not dead)" : dm_code_name(alone));
    return false;
}

static void refused_message_has_the_same_code_alone_or_in_a_batch(void **state)
{
    (void)state;
    run_isolated(probe_refused_tick_code_does_not_depend_on_batch, 10);
}

/* ---- BUG 5: worker/codec/doc.c parse_msgpack (found by fuzz/fuzz_ingest) -----------
 * msgpack-c allocates a container's elements as soon as it reads the header, before it
 * knows the bytes exist: a five-byte array header announcing 2^25 values inside a market
 * message made the worker ask malloc for over 512 MB (2^32 values: 64 GB) before failing.
 * Expected: invalid_msgpack, and the process's peak virtual size does not move. */
static long vm_peak_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[128];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmPeak: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static bool probe_msgpack_count_beyond_payload_allocates_nothing(char *why, size_t cap)
{
    static const char payload[] = "\x81\xa7" "candles" "\xdd\x02\x00\x00\x00" "\x80";
    cJSON *root = NULL;
    dm_err e = {0};
    long before = vm_peak_kb();
    dm_code c = dm_doc_parse(payload, sizeof payload - 1, DM_ENC_MSGPACK, 1 << 20, &root, &e);
    long grew_mb = (vm_peak_kb() - before) / 1024;
    cJSON_Delete(root);
    if (c == DM_E_INVALID_MSGPACK && grew_mb < 64)
        return true;
    snprintf(why, cap, "array announcing 2^25 values in 15 bytes gave %s, peak memory grew by "
             "%ld MB; want invalid_msgpack and no allocation for it", dm_code_name(c), grew_mb);
    return false;
}

static void msgpack_count_beyond_the_payload_is_refused_before_allocating(void **state)
{
    (void)state;
    run_isolated(probe_msgpack_count_beyond_payload_allocates_nothing, 10);
}

/* ---- BUG 6: worker/codec/doc.c mp_map, mp_to_json (found by fuzz/fuzz_serve) --------
 * msgpack-c hands out a NULL pointer for an empty fixstr (a0), and the converter
 * passed it to memchr and memcpy: undefined behaviour that clang's UBSan reports ("null
 * pointer passed as argument 1"; gcc's does not check these calls). Expected: {"": ""}. */
static bool probe_msgpack_empty_key_and_value_parse(char *why, size_t cap)
{
    static const char payload[] = "\x81\xa0\xa0";
    cJSON *root = NULL;
    dm_err e = {0};
    dm_code c = dm_doc_parse(payload, sizeof payload - 1, DM_ENC_MSGPACK, 1 << 20, &root, &e);
    const cJSON *v = root ? cJSON_GetObjectItemCaseSensitive(root, "") : NULL;
    bool ok = c == DM_OK && cJSON_IsString(v) && v->valuestring[0] == '\0';
    if (!ok)
        snprintf(why, cap, "{\"\": \"\"} gave %s (%s), want ok with an empty key and "
                 "value", dm_code_name(c), e.message);
    cJSON_Delete(root);
    return ok;
}

static void msgpack_empty_key_and_value_parse(void **state)
{
    (void)state;
    run_isolated(probe_msgpack_empty_key_and_value_parse, 10);
}

/* ---- BUG 7: worker/pipeline/serve.c op_metrics (found by fuzz/fuzz_serve) ------------
 * The metrics reply opened a map of 7 members and wrote 8 (dm_metrics_encode writes four),
 * so in msgpack a client read a 7-entry map followed by a stray "ingest" key and value.
 * Expected: one map that takes the whole body and holds "ingest". */
static bool probe_metrics_msgpack_reply_is_one_map(char *why, size_t cap)
{
    dm_strategy st;
    dm_strategy_defaults(&st);
    dm_strategy_holder *h = dm_strategy_holder_create(&st);
    dm_serve_config cfg = {.worker_name = "w1", .strategies = h};
    dm_serve *s = dm_serve_create(&cfg);
    dm_reply r = {0};
    dm_buf_init(&r.body);
    dm_serve_handle(s, DM_SUBJ_METRICS, "\x80", 1, DM_CT_MSGPACK, &r);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    bool ok = msgpack_unpack_next(&up, r.body.data, r.body.len, &off) == MSGPACK_UNPACK_SUCCESS &&
              off == r.body.len && up.data.type == MSGPACK_OBJECT_MAP;
    bool has_ingest = false;
    for (uint32_t i = 0; ok && i < up.data.via.map.size; i++) {
        const msgpack_object *k = &up.data.via.map.ptr[i].key;
        has_ingest |= k->type == MSGPACK_OBJECT_STR && k->via.str.size == 6 &&
                      memcmp(k->via.str.ptr, "ingest", 6) == 0;
    }
    if (!ok || !has_ingest)
        snprintf(why, cap, "metrics reply: the first map ends at byte %zu of %zu%s", off,
                 r.body.len, has_ingest ? "" : " and does not hold \"ingest\"");
    msgpack_unpacked_destroy(&up);
    dm_buf_free(&r.body);
    dm_serve_destroy(s);
    dm_strategy_holder_destroy(h);
    return ok && has_ingest;
}

static void metrics_reply_in_msgpack_is_one_complete_map(void **state)
{
    (void)state;
    run_isolated(probe_metrics_msgpack_reply_is_one_map, 10);
}

/* ---- BUG 8: worker/pipeline/serve.c history_cursor (found with fuzz/fuzz_serve) ------
 * A history cursor names the last timestamp returned, and the next page starts after it:
 * `last + 1` overflowed for a forged cursor holding 9223372036854775807 (UBSan: signed
 * integer overflow); without the sanitizer the source was asked for a range beginning
 * before the cursor. Expected: the source is asked for nothing before that value. */
typedef struct {
    dm_backend base;
    int64_t asked_start;
} range_spy;

static dm_bstatus spy_range(dm_backend *b, const dm_range_query *q, dm_candle_vec *out,
                            dm_err *err)
{
    (void)out, (void)err;
    ((range_spy *)b)->asked_start = q->start;
    return DM_BS_OK;
}

static bool probe_history_cursor_at_the_largest_value(char *why, size_t cap)
{
    static const dm_backend_ops ops = {.candle_range = spy_range, .destroy = refuse_destroy};
    range_spy spy = {.base = {.ops = &ops, .id = DM_BK_TIMESCALE}, .asked_start = -1};
    dm_strategy st;
    dm_strategy_defaults(&st);
    dm_strategy_holder *h = dm_strategy_holder_create(&st);
    dm_serve_config cfg = {.worker_name = "w1", .strategies = h};
    cfg.backends[DM_BK_TIMESCALE] = &spy.base;
    dm_serve *s = dm_serve_create(&cfg);
    /* base64url of "c1|EUR/USD|1h|9223372036854775807" */
    static const char req[] = "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"start_date\":"
                              "1578528000000,\"end_date\":1578614400000,\"cursor\":"
                              "\"YzF8RVVSL1VTRHwxaHw5MjIzMzcyMDM2ODU0Nzc1ODA3\"}";
    dm_reply r = {0};
    dm_buf_init(&r.body);
    dm_serve_handle(s, DM_SUBJ_CANDLES_HISTORY, req, sizeof req - 1, DM_CT_JSON, &r);
    bool ok = r.status == 200 && spy.asked_start == INT64_MAX;
    if (!ok)
        snprintf(why, cap, "history after a cursor at INT64_MAX: status %d, source asked from "
                 "%lld; want 200 and nothing before INT64_MAX", r.status,
                 (long long)spy.asked_start);
    dm_buf_free(&r.body);
    dm_serve_destroy(s);
    dm_strategy_holder_destroy(h);
    return ok;
}

static void history_cursor_at_the_largest_value_never_rewinds(void **state)
{
    (void)state;
    run_isolated(probe_history_cursor_at_the_largest_value, 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(event_name_rejects_overlong_and_surrogate_utf8),
        cmocka_unit_test(msgpack_key_with_nul_is_refused),
        cmocka_unit_test(config_with_duplicate_env_key_does_not_hang),
        cmocka_unit_test(refused_message_has_the_same_code_alone_or_in_a_batch),
        cmocka_unit_test(msgpack_count_beyond_the_payload_is_refused_before_allocating),
        cmocka_unit_test(msgpack_empty_key_and_value_parse),
        cmocka_unit_test(metrics_reply_in_msgpack_is_one_complete_map),
        cmocka_unit_test(history_cursor_at_the_largest_value_never_rewinds),
    };
    return cmocka_run_group_tests_name("known_bugs", tests, NULL, NULL);
}
