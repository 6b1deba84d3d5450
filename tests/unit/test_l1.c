/* L1 memory cache (worker/cache/l1): LRU within global entry and byte bounds, TTLs,
 * copies in and out, read-modify-write that never creates, and no torn state when many
 * threads use overlapping keys at once. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cache/l1.h"

#define NOW 1000000
#define TTL 60000

static dm_l1 *make(size_t entries, size_t bytes)
{
    dm_l1 *c = dm_l1_create((dm_l1_limits){.max_entries = entries, .max_bytes = bytes});
    assert_non_null(c);
    return c;
}

static void put_str(dm_l1 *c, const char *key, const char *value)
{
    dm_l1_put(c, key, value, strlen(value), NOW, TTL);
}

static bool has(dm_l1 *c, const char *key)
{
    void *v = NULL;
    size_t n = 0;
    bool hit = dm_l1_get(c, key, NOW, &v, &n);
    free(v);
    return hit;
}

/* The value as a string, or NULL on a miss; caller frees. */
static char *get_str(dm_l1 *c, const char *key, int64_t now)
{
    void *v = NULL;
    size_t n = 0;
    if (!dm_l1_get(c, key, now, &v, &n))
        return NULL;
    char *s = malloc(n + 1);
    assert_non_null(s);
    memcpy(s, v, n);
    s[n] = '\0';
    free(v);
    return s;
}

static void assert_value(dm_l1 *c, const char *key, const char *want)
{
    char *s = get_str(c, key, NOW);
    if (s == NULL)
        fail_msg("%s: miss, wanted '%s'", key, want);
    assert_string_equal(s, want);
    free(s);
}

static void get_returns_what_put_stored(void **state)
{
    (void)state;
    dm_l1 *c = make(100, 1 << 20);
    put_str(c, "tick:latest:{EURUSD}", "1.0812");
    assert_value(c, "tick:latest:{EURUSD}", "1.0812");
    assert_false(has(c, "tick:latest:{GBPUSD}"));
    put_str(c, "tick:latest:{EURUSD}", "1.0815"); /* replaces, one entry */
    assert_value(c, "tick:latest:{EURUSD}", "1.0815");
    dm_l1_stats s = dm_l1_get_stats(c);
    assert_int_equal(s.entries, 1);
    assert_int_equal(s.bytes, 6);
    assert_int_equal(s.hits, 2);
    assert_int_equal(s.misses, 1);
    dm_l1_destroy(c);
}

static void lru_evicts_the_least_recently_used_when_full(void **state)
{
    (void)state;
    dm_l1 *c = make(3, 1 << 20);
    put_str(c, "a", "1");
    put_str(c, "b", "2");
    put_str(c, "c", "3");
    assert_true(has(c, "a")); /* a is now the most recent; b the least */
    put_str(c, "d", "4");
    assert_false(has(c, "b"));
    assert_true(has(c, "c"));
    assert_true(has(c, "a"));
    assert_true(has(c, "d")); /* oldest first: c, a, d */
    put_str(c, "e", "5");
    assert_false(has(c, "c"));
    assert_true(has(c, "a"));
    dm_l1_stats s = dm_l1_get_stats(c);
    assert_int_equal(s.entries, 3);
    assert_int_equal(s.evictions, 2);
    dm_l1_destroy(c);
}

/* The bound holds across shards: many keys, whatever shards they land in. */
static void entries_bound_is_global_across_shards(void **state)
{
    (void)state;
    dm_l1 *c = make(10, 1 << 20);
    char key[32];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "k%d", i);
        put_str(c, key, "v");
    }
    assert_int_equal(dm_l1_get_stats(c).entries, 10);
    for (int i = 190; i < 200; i++) { /* the ten most recent survive */
        snprintf(key, sizeof key, "k%d", i);
        assert_true(has(c, key));
    }
    assert_int_equal(dm_l1_get_stats(c).evictions, 190);
    dm_l1_destroy(c);
}

static void expired_entries_miss_and_are_dropped(void **state)
{
    (void)state;
    dm_l1 *c = make(100, 1 << 20);
    dm_l1_put(c, "k", "v", 1, NOW, 500);
    char *s = get_str(c, "k", NOW + 499);
    assert_non_null(s);
    free(s);
    assert_null(get_str(c, "k", NOW + 500));
    dm_l1_stats st = dm_l1_get_stats(c);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.expirations, 1);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 1);
    assert_null(get_str(c, "k", NOW)); /* dropped, not just hidden */
    dm_l1_destroy(c);
}

static void bytes_bound_evicts_until_the_value_fits(void **state)
{
    (void)state;
    dm_l1 *c = make(100, 10);
    put_str(c, "a", "aaa");
    put_str(c, "b", "bbb");
    put_str(c, "c", "ccc"); /* 9 bytes */
    put_str(c, "d", "dddddd"); /* needs 6: a and b must go, c stays (3 + 6 <= 10) */
    assert_false(has(c, "a"));
    assert_false(has(c, "b"));
    assert_value(c, "c", "ccc");
    assert_value(c, "d", "dddddd");
    dm_l1_stats s = dm_l1_get_stats(c);
    assert_int_equal(s.bytes, 9);
    assert_int_equal(s.evictions, 2);
    put_str(c, "e", "eeeeeeeeee"); /* exactly max_bytes: everything else goes */
    assert_value(c, "e", "eeeeeeeeee");
    assert_int_equal(dm_l1_get_stats(c).entries, 1);
    dm_l1_destroy(c);
}

static void values_larger_than_max_bytes_or_without_ttl_are_not_stored(void **state)
{
    (void)state;
    dm_l1 *c = make(100, 4);
    put_str(c, "big", "12345");
    dm_l1_put(c, "no-ttl", "1", 1, NOW, 0);
    dm_l1_put(c, "neg-ttl", "1", 1, NOW, -5);
    assert_false(has(c, "big"));
    assert_false(has(c, "no-ttl"));
    assert_false(has(c, "neg-ttl"));
    /* and a replacement that cannot be stored does not leave the old value behind */
    put_str(c, "k", "old");
    put_str(c, "k", "too-big");
    assert_false(has(c, "k"));
    put_str(c, "k", "old");
    dm_l1_put(c, "k", "new", 3, NOW, 0);
    assert_false(has(c, "k"));
    assert_int_equal(dm_l1_get_stats(c).entries, 0);
    dm_l1_destroy(c);
}

static void keys_too_long_are_not_stored(void **state)
{
    (void)state;
    dm_l1 *c = make(100, 1 << 20);
    char longest[DM_L1_KEY_MAX], too_long[DM_L1_KEY_MAX + 1];
    memset(longest, 'k', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    memset(too_long, 'k', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';
    put_str(c, longest, "fits");
    put_str(c, too_long, "does not");
    assert_value(c, longest, "fits");
    assert_false(has(c, too_long));
    dm_l1_del(c, too_long); /* harmless */
    assert_int_equal(dm_l1_get_stats(c).entries, 1);
    dm_l1_destroy(c);
}

static void values_are_copies_not_shared(void **state)
{
    (void)state;
    dm_l1 *c = make(100, 1 << 20);
    char buf[] = "original";
    dm_l1_put(c, "k", buf, sizeof buf, NOW, TTL);
    memset(buf, 'X', sizeof buf - 1); /* the caller reuses its buffer */
    void *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    assert_true(dm_l1_get(c, "k", NOW, &a, &na));
    assert_true(dm_l1_get(c, "k", NOW, &b, &nb));
    assert_ptr_not_equal(a, b);
    assert_string_equal(a, "original");
    memset(a, 'Y', na - 1); /* a reader scribbles on its copy */
    assert_string_equal(b, "original");
    free(a);
    free(b);
    assert_value(c, "k", "original");
    dm_l1_destroy(c);
}

static void empty_values_are_hits_with_a_real_buffer(void **state)
{
    (void)state;
    dm_l1 *c = make(100, 0);
    dm_l1_put(c, "empty", "", 0, NOW, TTL);
    void *v = NULL;
    size_t n = 99;
    assert_true(dm_l1_get(c, "empty", NOW, &v, &n));
    assert_non_null(v);
    assert_int_equal(n, 0);
    free(v);
    dm_l1_destroy(c);
}

static void zero_entries_disables_the_cache(void **state)
{
    (void)state;
    dm_l1 *c = make(0, 1 << 20);
    put_str(c, "k", "v");
    assert_false(has(c, "k"));
    dm_l1_stats s = dm_l1_get_stats(c);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.misses, 1);
    /* turning it off later empties it */
    dm_l1_set_limits(c, (dm_l1_limits){.max_entries = 10, .max_bytes = 1 << 20});
    put_str(c, "k", "v");
    assert_true(has(c, "k"));
    dm_l1_set_limits(c, (dm_l1_limits){.max_entries = 0, .max_bytes = 1 << 20});
    assert_int_equal(dm_l1_get_stats(c).entries, 0);
    assert_false(has(c, "k"));
    dm_l1_destroy(c);
}

static void shrinking_limits_evicts_the_oldest_at_once(void **state)
{
    (void)state;
    dm_l1 *c = make(10, 100);
    put_str(c, "a", "1111");
    put_str(c, "b", "2222");
    put_str(c, "c", "3333");
    put_str(c, "d", "4444");
    dm_l1_set_limits(c, (dm_l1_limits){.max_entries = 3, .max_bytes = 100});
    assert_int_equal(dm_l1_get_stats(c).entries, 3);
    assert_false(has(c, "a"));
    dm_l1_set_limits(c, (dm_l1_limits){.max_entries = 3, .max_bytes = 8});
    dm_l1_stats s = dm_l1_get_stats(c);
    assert_int_equal(s.entries, 2);
    assert_int_equal(s.bytes, 8);
    assert_false(has(c, "b"));
    assert_true(has(c, "c"));
    assert_true(has(c, "d"));
    dm_l1_destroy(c);
}

static void del_removes_the_entry(void **state)
{
    (void)state;
    dm_l1 *c = make(100, 1 << 20);
    put_str(c, "a", "1");
    put_str(c, "b", "2");
    dm_l1_del(c, "a");
    dm_l1_del(c, "missing");
    assert_false(has(c, "a"));
    assert_true(has(c, "b"));
    dm_l1_stats s = dm_l1_get_stats(c);
    assert_int_equal(s.entries, 1);
    assert_int_equal(s.bytes, 1);
    dm_l1_destroy(c);
}

/* ---- update ---- */

typedef struct {
    const char *append;
    int calls;
    bool saw_null;
    bool keep;
} append_ctx;

static bool append_fn(const void *cur, size_t cur_len, void **out, size_t *out_len, void *ctx)
{
    append_ctx *a = ctx;
    a->calls++;
    a->saw_null = cur == NULL;
    if (!a->keep)
        return false;
    size_t n = strlen(a->append);
    char *v = malloc(cur_len + n);
    assert_non_null(v);
    if (cur_len)
        memcpy(v, cur, cur_len);
    memcpy(v + cur_len, a->append, n);
    *out = v;
    *out_len = cur_len + n;
    return true;
}

static void update_merges_in_place_and_never_creates(void **state)
{
    (void)state;
    dm_l1 *c = make(100, 1 << 20);
    append_ctx a = {.append = ",3", .keep = true};
    dm_l1_update(c, "list", NOW, append_fn, &a);
    assert_int_equal(a.calls, 1);
    assert_true(a.saw_null);
    assert_false(has(c, "list")); /* absent stays absent */
    assert_int_equal(dm_l1_get_stats(c).entries, 0);

    put_str(c, "list", "1,2");
    dm_l1_update(c, "list", NOW, append_fn, &a);
    assert_false(a.saw_null);
    assert_value(c, "list", "1,2,3");
    dm_l1_stats s = dm_l1_get_stats(c);
    assert_int_equal(s.entries, 1);
    assert_int_equal(s.bytes, 5);
    dm_l1_destroy(c);
}

static void update_keeps_the_expiry(void **state)
{
    (void)state;
    dm_l1 *c = make(100, 1 << 20);
    dm_l1_put(c, "list", "1", 1, NOW, 1000);
    append_ctx a = {.append = ",2", .keep = true};
    dm_l1_update(c, "list", NOW + 900, append_fn, &a);
    char *s = get_str(c, "list", NOW + 999);
    assert_non_null(s);
    assert_string_equal(s, "1,2");
    free(s);
    assert_null(get_str(c, "list", NOW + 1000));
    /* an expired entry is absent to update as well */
    dm_l1_put(c, "old", "1", 1, NOW, 10);
    dm_l1_update(c, "old", NOW + 10, append_fn, &a);
    assert_true(a.saw_null);
    assert_false(has(c, "old"));
    assert_int_equal(dm_l1_get_stats(c).expirations, 2);
    dm_l1_destroy(c);
}

static void update_returning_false_deletes(void **state)
{
    (void)state;
    dm_l1 *c = make(100, 1 << 20);
    put_str(c, "list", "1,2");
    append_ctx a = {.keep = false};
    dm_l1_update(c, "list", NOW, append_fn, &a);
    assert_int_equal(a.calls, 1);
    assert_false(has(c, "list"));
    dm_l1_stats s = dm_l1_get_stats(c);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.bytes, 0);
    dm_l1_destroy(c);
}

static void update_growing_past_the_bytes_bound_evicts_others(void **state)
{
    (void)state;
    dm_l1 *c = make(100, 6);
    put_str(c, "other", "xx");
    put_str(c, "list", "1,2");
    append_ctx a = {.append = "3", .keep = true};
    dm_l1_update(c, "list", NOW, append_fn, &a); /* 2 + 4 = 6: fits */
    assert_true(has(c, "other"));
    dm_l1_update(c, "list", NOW, append_fn, &a); /* 2 + 5 > 6: other goes */
    assert_false(has(c, "other"));
    assert_value(c, "list", "1,233");
    a.append = "45"; /* 7 > max_bytes: the stale value is dropped, nothing stored */
    dm_l1_update(c, "list", NOW, append_fn, &a);
    assert_false(has(c, "list"));
    assert_int_equal(dm_l1_get_stats(c).bytes, 0);
    dm_l1_destroy(c);
}

static void many_keys_stay_reachable_as_shards_grow(void **state)
{
    (void)state;
    enum { N = 5000 };
    dm_l1 *c = make(N, 1 << 24);
    char key[32], val[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "candle:latest:{S%d}:1m", i);
        snprintf(val, sizeof val, "v%d", i);
        put_str(c, key, val);
    }
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "candle:latest:{S%d}:1m", i);
        snprintf(val, sizeof val, "v%d", i);
        assert_value(c, key, val);
    }
    for (int i = 0; i < N; i += 2) {
        snprintf(key, sizeof key, "candle:latest:{S%d}:1m", i);
        dm_l1_del(c, key);
    }
    dm_l1_stats s = dm_l1_get_stats(c);
    assert_int_equal(s.entries, N / 2);
    assert_int_equal(s.evictions, 0);
    dm_l1_destroy(c);
}

/* ---- threads ---- */

/* Values are self-checking: every byte is the key's number, so a torn or misplaced value
 * shows up in any reader. */
#define HAMMER_THREADS 8
#define HAMMER_KEYS 64
#define HAMMER_MAX_VALUE 48
#define HAMMER_ENTRIES 40
#define HAMMER_BYTES (HAMMER_ENTRIES * HAMMER_MAX_VALUE / 2)

typedef struct {
    dm_l1 *c;
    int id;
    atomic_bool *stop;
    unsigned long ops, bad;
} hammer_arg;

static unsigned next_rand(unsigned *x)
{
    *x = *x * 1103515245u + 12345u;
    return *x >> 8;
}

static bool value_ok(const unsigned char *v, size_t n, int key)
{
    if (n == 0 || n > HAMMER_MAX_VALUE)
        return false;
    for (size_t i = 0; i < n; i++)
        if (v[i] != (unsigned char)key)
            return false;
    return true;
}

typedef struct {
    int key;
    bool ok;
    bool grow;
} grow_ctx;

/* Checks the current value and grows it by one byte, or deletes it once it is long. */
static bool grow_fn(const void *cur, size_t cur_len, void **out, size_t *out_len, void *ctx)
{
    grow_ctx *g = ctx;
    if (cur == NULL)
        return true; /* and no *out: must not be stored */
    g->ok = value_ok(cur, cur_len, g->key);
    if (!g->grow || cur_len >= HAMMER_MAX_VALUE)
        return false;
    unsigned char *v = malloc(cur_len + 1);
    if (v == NULL)
        return false;
    memset(v, g->key, cur_len + 1);
    *out = v;
    *out_len = cur_len + 1;
    return true;
}

static void hammer_once(hammer_arg *a, unsigned *seed)
{
    char key[16];
    int k = (int)(next_rand(seed) % HAMMER_KEYS);
    snprintf(key, sizeof key, "key:%d", k);
    unsigned op = next_rand(seed) % 100;
    int64_t now = NOW + (int64_t)(next_rand(seed) % 50);
    if (op < 40) {
        void *v = NULL;
        size_t n = 0;
        if (dm_l1_get(a->c, key, now, &v, &n) && !value_ok(v, n, k))
            a->bad++;
        free(v);
    } else if (op < 75) {
        unsigned char v[HAMMER_MAX_VALUE];
        size_t n = 1 + next_rand(seed) % HAMMER_MAX_VALUE;
        memset(v, k, n);
        dm_l1_put(a->c, key, v, n, now, 1 + (int64_t)(next_rand(seed) % 100));
    } else if (op < 85) {
        dm_l1_del(a->c, key);
    } else if (op < 99) {
        grow_ctx g = {.key = k, .ok = true, .grow = op < 97};
        dm_l1_update(a->c, key, now, grow_fn, &g);
        a->bad += !g.ok;
    } else if (a->id == 0) {
        size_t e = next_rand(seed) % 2 ? HAMMER_ENTRIES : HAMMER_ENTRIES / 2;
        dm_l1_set_limits(a->c, (dm_l1_limits){.max_entries = e, .max_bytes = HAMMER_BYTES});
    } else {
        dm_l1_stats s = dm_l1_get_stats(a->c);
        a->bad += s.entries > HAMMER_KEYS;
    }
    a->ops++;
}

static void *hammer(void *arg)
{
    hammer_arg *a = arg;
    unsigned seed = 2166136261u ^ (unsigned)a->id;
    while (!atomic_load_explicit(a->stop, memory_order_relaxed))
        for (int i = 0; i < 64; i++)
            hammer_once(a, &seed);
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0)
        ;
}

static void concurrent_access_is_consistent(void **state)
{
    (void)state;
    dm_l1 *c = make(HAMMER_ENTRIES, HAMMER_BYTES);
    atomic_bool stop = false;
    pthread_t th[HAMMER_THREADS];
    hammer_arg args[HAMMER_THREADS];
    for (int i = 0; i < HAMMER_THREADS; i++) {
        args[i] = (hammer_arg){.c = c, .id = i, .stop = &stop};
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &args[i]), 0);
    }
    sleep_ms(500);
    atomic_store(&stop, true);
    unsigned long ops = 0, bad = 0;
    for (int i = 0; i < HAMMER_THREADS; i++) {
        pthread_join(th[i], NULL);
        ops += args[i].ops;
        bad += args[i].bad;
    }
    assert_int_equal(bad, 0);
    assert_true(ops > 1000);

    /* Quiet again: within the last limits, and the totals match what is really there. */
    dm_l1_set_limits(c, (dm_l1_limits){.max_entries = HAMMER_ENTRIES, .max_bytes = HAMMER_BYTES});
    dm_l1_stats before = dm_l1_get_stats(c);
    assert_true(before.entries <= HAMMER_ENTRIES);
    assert_true(before.bytes <= HAMMER_BYTES);
    size_t found = 0, bytes = 0;
    for (int k = 0; k < HAMMER_KEYS; k++) {
        char key[16];
        snprintf(key, sizeof key, "key:%d", k);
        void *v = NULL;
        size_t n = 0;
        if (dm_l1_get(c, key, NOW, &v, &n)) { /* NOW: earlier than any expiry, all live */
            assert_true(value_ok(v, n, k));
            found++;
            bytes += n;
        }
        free(v);
    }
    assert_int_equal(found, before.entries);
    assert_int_equal(bytes, before.bytes);
    dm_l1_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(get_returns_what_put_stored),
        cmocka_unit_test(lru_evicts_the_least_recently_used_when_full),
        cmocka_unit_test(entries_bound_is_global_across_shards),
        cmocka_unit_test(expired_entries_miss_and_are_dropped),
        cmocka_unit_test(bytes_bound_evicts_until_the_value_fits),
        cmocka_unit_test(values_larger_than_max_bytes_or_without_ttl_are_not_stored),
        cmocka_unit_test(keys_too_long_are_not_stored),
        cmocka_unit_test(values_are_copies_not_shared),
        cmocka_unit_test(empty_values_are_hits_with_a_real_buffer),
        cmocka_unit_test(zero_entries_disables_the_cache),
        cmocka_unit_test(shrinking_limits_evicts_the_oldest_at_once),
        cmocka_unit_test(del_removes_the_entry),
        cmocka_unit_test(update_merges_in_place_and_never_creates),
        cmocka_unit_test(update_keeps_the_expiry),
        cmocka_unit_test(update_returning_false_deletes),
        cmocka_unit_test(update_growing_past_the_bytes_bound_evicts_others),
        cmocka_unit_test(many_keys_stay_reachable_as_shards_grow),
        cmocka_unit_test(concurrent_access_is_consistent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
