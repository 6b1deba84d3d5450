/* Regressions: each test failed against an earlier worker (a defect that passed bad UTF-8,
 * cut msgpack keys at a NUL, hung on a repeated config key, or gave a refused message a
 * code that depended on its batch). Each runs in a child process, since a defect of this
 * kind may hang or crash, so one cannot hide another. */
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
 * Expected: invalid_field both times. */
typedef struct {
    dm_backend base;
} refusing;

static dm_bstatus refuse_ticks(dm_backend *b, const dm_tick *t, size_t n, const dm_cache_opts *o,
                               dm_err *err)
{
    (void)b, (void)o;
    for (size_t i = 0; i < n; i++)
        if (t[i].ts == T0) { /* like timescale.c fail(): PERMANENT + unavailable */
            dm_fail(err, DM_E_UNAVAILABLE, "", "timescale insert ticks failed: value too long");
            return DM_BS_PERMANENT;
        }
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
    dm_cache_opts opts = {3600, 1000};
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(event_name_rejects_overlong_and_surrogate_utf8),
        cmocka_unit_test(msgpack_key_with_nul_is_refused),
        cmocka_unit_test(config_with_duplicate_env_key_does_not_hang),
        cmocka_unit_test(refused_message_has_the_same_code_alone_or_in_a_batch),
    };
    return cmocka_run_group_tests_name("known_bugs", tests, NULL, NULL);
}
