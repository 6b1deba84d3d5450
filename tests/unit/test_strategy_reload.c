/* Strategy hot reload (worker/strategy/current, watch): every way people replace a file
 * is noticed, a bad file never replaces a good version, and a reader keeps the version it
 * took until it lets go, however many swaps happen meanwhile. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "strategy/current.h"
#include "strategy/watch.h"

#ifndef DM_STRATEGY_JSON
#error "DM_STRATEGY_JSON must name strategy/strategy.json"
#endif

/* How long a test waits for the watch thread before calling it a failure: far above the
 * ~100 ms settle time, so a slow machine makes the test slower, never red. */
#define WAIT_MS 3000
/* Long enough for an event to settle and be handled (settle 100 ms + one poll 200 ms),
 * used only where the promise is that nothing happens: a slow machine can only weaken
 * such a check, never fail it. */
#define QUIET_MS 500

typedef struct {
    char dir[64];
    char path[128];   /* dir/strategy.json, the watched file */
    char initial[64]; /* the version it holds at the start */
    char *template;   /* the repository's strategy.json */
    dm_strategy_holder *holder;
    dm_strategy_watch *watch;
    atomic_int swaps; /* on_swap calls */
    char swapped_to[64];
} fixture;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        fail_msg("cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

/* `text` with the first `from` replaced by `to`; the caller frees. */
static char *replaced(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    if (at == NULL)
        fail_msg("'%s' not found in the strategy text", from);
    size_t cap = strlen(text) + strlen(to) + 1;
    char *out = malloc(cap);
    snprintf(out, cap, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    return out;
}

/* The repository's strategy under another version name; the caller frees. */
static char *with_version(const fixture *fx, const char *version)
{
    const char *key = strstr(fx->template, "\"version\"");
    const char *end = key ? strchr(key, ',') : NULL;
    if (end == NULL)
        fail_msg("strategy.json has no top-level \"version\" followed by a comma");
    size_t cap = strlen(fx->template) + strlen(version) + 32;
    char *out = malloc(cap);
    snprintf(out, cap, "%.*s\"version\": \"%s\"%s", (int)(key - fx->template), fx->template,
             version, end);
    return out;
}

static void in_dir(const fixture *fx, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", fx->dir, name);
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (system(cmd) != 0)
        fail_msg("`%s` failed", cmd);
}

static bool wait_until(uint64_t (*counter)(const dm_strategy_watch *), const dm_strategy_watch *w,
                       uint64_t want)
{
    for (int64_t end = now_ms() + WAIT_MS; now_ms() < end; sleep_ms(10))
        if (counter(w) >= want)
            return true;
    return counter(w) >= want;
}

#define wait_reloads(fx, n)                                                                        \
    do {                                                                                           \
        if (!wait_until(dm_strategy_reloads, (fx)->watch, (n)))                                    \
            fail_msg("%d reload(s) after %d ms, want %d", (int)dm_strategy_reloads((fx)->watch),   \
                     WAIT_MS, (int)(n));                                                           \
    } while (0)

#define wait_failures(fx, n)                                                                       \
    do {                                                                                           \
        if (!wait_until(dm_strategy_reload_failures, (fx)->watch, (n)))                            \
            fail_msg("%d failure(s) after %d ms, want %d",                                         \
                     (int)dm_strategy_reload_failures((fx)->watch), WAIT_MS, (int)(n));            \
    } while (0)

static void assert_running(fixture *fx, const char *version)
{
    const dm_strategy *s = dm_strategy_acquire(fx->holder);
    char got[64];
    snprintf(got, sizeof got, "%s", s->version);
    dm_strategy_release(fx->holder, s);
    assert_string_equal(got, version);
}

static void on_swap(const dm_strategy *next, void *ctx)
{
    fixture *fx = ctx;
    snprintf(fx->swapped_to, sizeof fx->swapped_to, "%s", next->version);
    atomic_fetch_add(&fx->swaps, 1);
}

/* A temp dir holding a copy of the repository's strategy, loaded and watched. */
static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/dm-reload-XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    in_dir(fx, "strategy.json", fx->path, sizeof fx->path);
    fx->template = slurp(DM_STRATEGY_JSON);
    write_text(fx->path, fx->template);
    dm_strategy s;
    dm_err err = {0};
    if (dm_strategy_load(fx->path, &s, &err) != DM_OK)
        return -1;
    snprintf(fx->initial, sizeof fx->initial, "%s", s.version);
    fx->holder = dm_strategy_holder_create(&s);
    fx->watch = dm_strategy_watch_start(fx->path, fx->holder, on_swap, fx, &err);
    if (fx->watch == NULL) {
        fprintf(stderr, "watch: %s\n", err.message);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    dm_strategy_watch_stop(fx->watch);
    dm_strategy_holder_destroy(fx->holder);
    sh("rm -rf '%s'", fx->dir);
    free(fx->template);
    free(fx);
    return 0;
}

static void reloads_when_an_editor_renames_a_temp_file_over_it(void **state)
{
    fixture *fx = *state;
    char tmp[160];
    in_dir(fx, ".strategy.json.swp", tmp, sizeof tmp);
    char *v2 = with_version(fx, "v2");
    write_text(tmp, v2);
    free(v2);
    assert_int_equal(rename(tmp, fx->path), 0);
    wait_reloads(fx, 1);
    assert_running(fx, "v2");
    assert_int_equal(atomic_load(&fx->swaps), 1);
    assert_string_equal(fx->swapped_to, "v2");
    assert_int_equal(dm_strategy_generation(fx->holder), 2);
    assert_int_equal(dm_strategy_reload_failures(fx->watch), 0);
}

static void reloads_on_cp_over_and_on_truncate_and_write(void **state)
{
    fixture *fx = *state;
    char src[160];
    in_dir(fx, "next.json", src, sizeof src);
    char *v2 = with_version(fx, "v2"), *v3 = with_version(fx, "v3");

    write_text(src, v2);
    sh("cp '%s' '%s'", src, fx->path);
    wait_reloads(fx, 1);
    assert_running(fx, "v2");

    write_text(src, v3);
    sh("cat '%s' > '%s'", src, fx->path);
    wait_reloads(fx, 2);
    assert_running(fx, "v3");
    free(v2);
    free(v3);
}

static void invalid_file_keeps_the_running_version_and_counts_a_failure(void **state)
{
    fixture *fx = *state;
    char *v2 = with_version(fx, "v2");
    char *bad = replaced(v2, "\"routing\": {", "\"routing\": {\"save_tick\": [\"mysql\"],");
    free(v2);
    write_text(fx->path, bad);
    wait_failures(fx, 1);
    assert_running(fx, fx->initial);
    assert_int_equal(dm_strategy_reloads(fx->watch), 0);

    /* A half-written file is refused the same way. */
    bad[strlen(bad) / 2] = '\0';
    write_text(fx->path, bad);
    wait_failures(fx, 2);
    assert_running(fx, fx->initial);
    assert_int_equal(dm_strategy_reloads(fx->watch), 0);
    assert_int_equal(dm_strategy_generation(fx->holder), 1);
    free(bad);

    char *good = with_version(fx, "v3");
    write_text(fx->path, good);
    free(good);
    wait_reloads(fx, 1);
    assert_running(fx, "v3");
}

static void reload_after_delete_and_recreate(void **state)
{
    fixture *fx = *state;
    assert_int_equal(unlink(fx->path), 0);
    wait_failures(fx, 1); /* a missing file is refused: the running version stays */
    assert_running(fx, fx->initial);

    char *v2 = with_version(fx, "v2");
    write_text(fx->path, v2);
    free(v2);
    wait_reloads(fx, 1);
    assert_running(fx, "v2");
}

static void unchanged_content_is_not_a_reload(void **state)
{
    fixture *fx = *state;
    write_text(fx->path, fx->template); /* the same bytes, written again */
    sh("touch '%s'", fx->path);
    sleep_ms(QUIET_MS);
    assert_int_equal(dm_strategy_reloads(fx->watch), 0);
    assert_int_equal(dm_strategy_reload_failures(fx->watch), 0);

    /* A real change after them is still one reload, and touching it again is none. */
    char *v2 = with_version(fx, "v2");
    write_text(fx->path, v2);
    wait_reloads(fx, 1);
    write_text(fx->path, v2);
    sh("touch '%s'", fx->path);
    sleep_ms(QUIET_MS);
    assert_int_equal(dm_strategy_reloads(fx->watch), 1);
    assert_int_equal(dm_strategy_generation(fx->holder), 2);
    free(v2);
}

static void ignores_other_files_in_the_directory(void **state)
{
    fixture *fx = *state;
    char other[160];
    in_dir(fx, "strategy.json.bak", other, sizeof other);
    write_text(other, "not even json");
    sleep_ms(QUIET_MS);
    assert_int_equal(dm_strategy_reloads(fx->watch), 0);
    assert_int_equal(dm_strategy_reload_failures(fx->watch), 0);
}

static void keeps_running_when_the_directory_is_removed(void **state)
{
    fixture *fx = *state;
    sh("rm -rf '%s'", fx->dir);
    sleep_ms(QUIET_MS);
    assert_running(fx, fx->initial);
    /* teardown's stop() must still join cleanly */
}

static void picks_up_a_change_made_before_the_watch_started(void **state)
{
    fixture *fx = *state;
    dm_strategy_watch_stop(fx->watch);
    fx->watch = NULL;
    char *v2 = with_version(fx, "v2");
    write_text(fx->path, v2); /* between the caller's load and the start of the watch */
    free(v2);
    dm_err err = {0};
    fx->watch = dm_strategy_watch_start(fx->path, fx->holder, on_swap, fx, &err);
    if (fx->watch == NULL)
        fail_msg("restart: %s", err.message);
    wait_reloads(fx, 1);
    assert_running(fx, "v2");
}

static void stop_returns_promptly(void **state)
{
    fixture *fx = *state;
    int64_t t0 = now_ms();
    dm_strategy_watch_stop(fx->watch);
    fx->watch = NULL;
    int64_t took = now_ms() - t0;
    if (took > 1000)
        fail_msg("stop took %lld ms", (long long)took);
}

/* ---- the holder alone ------------------------------------------------------------- */

static dm_strategy numbered(int n)
{
    dm_strategy s;
    dm_strategy_defaults(&s);
    snprintf(s.version, sizeof s.version, "%d", n);
    s.perf.batch_size = n;
    s.cache.l1_max_entries = n;
    return s;
}

static void readers_keep_their_version_until_they_release(void **state)
{
    (void)state;
    dm_strategy v1 = numbered(1), v2 = numbered(2), v3 = numbered(3);
    dm_strategy_holder *h = dm_strategy_holder_create(&v1);
    assert_int_equal(dm_strategy_generation(h), 1);
    const dm_strategy *old = dm_strategy_acquire(h);
    assert_int_equal(dm_strategy_swap(h, &v2), 2);
    const dm_strategy *mid = dm_strategy_acquire(h);
    assert_int_equal(dm_strategy_swap(h, &v3), 3);

    /* Both superseded versions are still whole (ASan would flag a freed one). */
    assert_string_equal(old->version, "1");
    assert_int_equal(old->perf.batch_size, 1);
    assert_string_equal(mid->version, "2");
    assert_int_equal(mid->cache.l1_max_entries, 2);

    const dm_strategy *now = dm_strategy_acquire(h);
    assert_string_equal(now->version, "3");
    dm_strategy_release(h, old);
    dm_strategy_release(h, mid);
    dm_strategy_release(h, now);
    dm_strategy_holder_destroy(h);
}

typedef struct {
    dm_strategy_holder *h;
    atomic_bool *done;
    long reads;
    int torn; /* versions whose fields disagree: a reader saw a half-swapped version */
} reader_arg;

static void *reader(void *p)
{
    reader_arg *a = p;
    while (!atomic_load(a->done)) {
        const dm_strategy *s = dm_strategy_acquire(a->h);
        int n = atoi(s->version);
        if (s->perf.batch_size != n || s->cache.l1_max_entries != n)
            a->torn++;
        dm_strategy_release(a->h, s);
        a->reads++;
    }
    return NULL;
}

static void readers_and_a_swapper_run_concurrently(void **state)
{
    (void)state;
    enum { READERS = 4, SWAPS = 1000 };
    dm_strategy first = numbered(1);
    dm_strategy_holder *h = dm_strategy_holder_create(&first);
    atomic_bool done = false;
    pthread_t t[READERS];
    reader_arg args[READERS];
    for (int i = 0; i < READERS; i++) {
        args[i] = (reader_arg){.h = h, .done = &done};
        assert_int_equal(pthread_create(&t[i], NULL, reader, &args[i]), 0);
    }
    for (int i = 2; i <= SWAPS + 1; i++) {
        dm_strategy next = numbered(i);
        assert_int_equal(dm_strategy_swap(h, &next), (uint64_t)i);
    }
    atomic_store(&done, true);
    for (int i = 0; i < READERS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(args[i].torn, 0);
    }
    assert_int_equal(dm_strategy_generation(h), SWAPS + 1);
    dm_strategy_holder_destroy(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(reloads_when_an_editor_renames_a_temp_file_over_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(reloads_on_cp_over_and_on_truncate_and_write, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(invalid_file_keeps_the_running_version_and_counts_a_failure,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(reload_after_delete_and_recreate, setup, teardown),
        cmocka_unit_test_setup_teardown(unchanged_content_is_not_a_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(ignores_other_files_in_the_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(keeps_running_when_the_directory_is_removed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(picks_up_a_change_made_before_the_watch_started, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(stop_returns_promptly, setup, teardown),
        cmocka_unit_test(readers_keep_their_version_until_they_release),
        cmocka_unit_test(readers_and_a_swapper_run_concurrently),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
