#include "watch.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "util/file.h"
#include "util/hash.h"

#include "model/model.h"
#include "util/log.h"

/* Events that can mean "the file now has other bytes": written in place and closed (cp,
 * `>`), renamed over (editors, atomic deploys), created, deleted or renamed away, and
 * permission changes (a file that becomes readable). IN_MODIFY is left out on purpose:
 * it fires per write(), and the close that follows is the moment the bytes are whole. */
#define DM_WATCH_FILE_EVENTS                                                                       \
    (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_ATTRIB)
/* The directory's own fate: once it is gone there is nothing left to watch. */
#define DM_WATCH_DIR_EVENTS (IN_DELETE_SELF | IN_MOVE_SELF)

/* Writers often produce several events per change (truncate then write, write then
 * chmod, an editor's backup dance); the file is read once they have been quiet this long. */
#define DM_WATCH_SETTLE_MAX_MS 1000
#define DM_WATCH_SETTLE_MS 100
/* Upper bound on how long stop() waits for the thread to notice its flag. */
#define DM_WATCH_POLL_MS 200
/* One byte past strategy.c's 1 MB limit, so dm_strategy_parse sees and names the excess. */
#define DM_WATCH_READ_MAX ((1 << 20) + 1)

struct dm_strategy_watch {
    char *path; /* as given, for logs and reads */
    char *dir;  /* the directory being watched */
    char *base; /* the file's name inside dir: the only name whose events matter */
    int fd;     /* inotify */
    int wd;     /* -1 once the directory is gone */
    dm_strategy_holder *holder;
    dm_strategy_swapped_fn on_swap;
    void *ctx;
    /* Hash and length of the bytes last applied (or found at start): a reload of the same
     * bytes is no reload. Owned by the watch thread after start. */
    uint64_t applied_hash;
    size_t applied_len; /* SIZE_MAX: nothing applied from the file yet */
    bool stale_at_start;
    pthread_t thread;
    atomic_bool stop;
    _Atomic uint64_t reloads, failures;
};

static uint64_t hash_bytes(const char *p, size_t n) { return dm_fnv1a(p, n); }

/* Reads the whole file (up to the cap) into a fresh buffer; *len gets its size. */
static char *read_file(const char *path, size_t *len, dm_err *err)
{
    char *buf;
    if (dm_read_file(path, DM_WATCH_READ_MAX, &buf, len, err) != DM_OK)
        return NULL;
    return buf;
}

static void refuse(dm_strategy_watch *w, const dm_err *err)
{
    atomic_fetch_add(&w->failures, 1);
    const dm_strategy *running = dm_strategy_acquire(w->holder);
    if (err->field[0] != '\0')
        DM_WARN("strategy", "strategy %s refused, keeping version %s: %s (field %s)", w->path,
                running->version, err->message, err->field);
    else
        DM_WARN("strategy", "strategy %s refused, keeping version %s: %s", w->path,
                running->version, err->message);
    dm_strategy_release(w->holder, running);
}

/* Same as dm_strategy_load, but keeps the bytes so the hash describes exactly what was
 * parsed (reading the file twice could see two different versions). */
static void reload(dm_strategy_watch *w)
{
    dm_err err = {0};
    size_t len = 0;
    char *buf = read_file(w->path, &len, &err);
    if (buf == NULL) {
        refuse(w, &err);
        return;
    }
    uint64_t hash = hash_bytes(buf, len);
    if (hash == w->applied_hash && len == w->applied_len) {
        free(buf);
        DM_DEBUG("strategy", "strategy %s unchanged; not reloaded", w->path);
        return;
    }
    dm_strategy next;
    dm_code c = dm_strategy_parse(buf, len, &next, &err);
    free(buf);
    if (c != DM_OK) {
        refuse(w, &err);
        return;
    }
    uint64_t before = dm_strategy_generation(w->holder);
    if (dm_strategy_swap(w->holder, &next) == before) {
        dm_fail(&err, DM_E_INTERNAL, "", "out of memory installing version %s", next.version);
        refuse(w, &err);
        return;
    }
    w->applied_hash = hash;
    w->applied_len = len;
    DM_INFO("strategy", "strategy %s reloaded: version %s", w->path, next.version);
    if (w->on_swap != NULL)
        w->on_swap(&next, w->ctx);
    /* Counted last, so whoever sees the count also sees what on_swap did. */
    atomic_fetch_add(&w->reloads, 1);
}

/* A watch removed by the kernel (directory deleted, filesystem unmounted) or a directory
 * renamed away: the path no longer leads where the watch points. Keep the worker running
 * on the version it has; a restart picks the file up again. */
static void lose_directory(dm_strategy_watch *w, const char *why)
{
    if (w->wd < 0)
        return;
    DM_WARN("strategy", "directory %s %s; %s is no longer watched, version stays as is", w->dir,
            why, w->base);
    inotify_rm_watch(w->fd, w->wd); /* fails harmlessly when the kernel already dropped it */
    w->wd = -1;
}

/* Drains the inotify fd. Returns true if any event concerns the strategy file. */
static bool drain_events(dm_strategy_watch *w)
{
    /* Aligned as the inotify man page asks, since events are read in place. */
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool relevant = false;
    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof buf);
        if (n <= 0)
            return relevant; /* EAGAIN: drained (the fd is non-blocking) */
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            p += sizeof *ev + ev->len;
            if (ev->mask & IN_Q_OVERFLOW)
                relevant = true; /* events were lost: look at the file, the hash decides */
            else if (ev->mask & IN_DELETE_SELF)
                lose_directory(w, "was deleted");
            else if (ev->mask & IN_MOVE_SELF)
                lose_directory(w, "was moved");
            else if (ev->mask & IN_IGNORED)
                lose_directory(w, "is gone");
            else if (ev->len > 0 && strcmp(ev->name, w->base) == 0)
                relevant = true;
        }
    }
}

static void *watch_main(void *arg)
{
    dm_strategy_watch *w = arg;
    /* SIGTERM/SIGINT stay blocked here: main blocks them before starting any thread and
     * the mask is inherited, so only main's sigwait receives them. */
    bool pending = w->stale_at_start;
    int64_t due = dm_mono_ms() + DM_WATCH_SETTLE_MS;
    int64_t first = dm_mono_ms(); /* of the current burst of events */
    while (!atomic_load(&w->stop)) {
        int timeout = DM_WATCH_POLL_MS;
        if (pending) {
            int64_t left = due - dm_mono_ms();
            timeout = left <= 0 ? 0 : left < timeout ? (int)left : timeout;
        }
        struct pollfd pfd = {.fd = w->fd, .events = POLLIN};
        int r = poll(&pfd, 1, timeout);
        if (r > 0 && drain_events(w)) {
            if (!pending)
                first = dm_mono_ms();
            pending = true;
            /* Every new event restarts the quiet period, but a file rewritten without pause
             * is still read within DM_WATCH_SETTLE_MAX_MS (the hash skips a repeat). */
            due = dm_mono_ms() + DM_WATCH_SETTLE_MS;
            if (due > first + DM_WATCH_SETTLE_MAX_MS)
                due = first + DM_WATCH_SETTLE_MAX_MS;
        }
        if (pending && dm_mono_ms() >= due) {
            pending = false;
            reload(w);
        }
    }
    return NULL;
}

/* Splits path into its directory and file name ("strategy.json" -> "." and itself). */
static bool split_path(dm_strategy_watch *w, const char *path)
{
    w->path = strdup(path);
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        w->dir = strdup(".");
        w->base = strdup(path);
    } else {
        w->dir = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
        w->base = strdup(slash + 1);
    }
    return w->path && w->dir && w->base;
}

static bool same_route(const dm_route *a, const dm_route *b)
{
    if (a->n != b->n)
        return false;
    for (int i = 0; i < a->n; i++)
        if (a->targets[i] != b->targets[i])
            return false;
    return true;
}

/* Field by field, since the structs hold padding that struct copies need not preserve. */
static bool same_strategy(const dm_strategy *a, const dm_strategy *b)
{
    for (int op = 0; op < DM_OP_COUNT; op++)
        if (!same_route(&a->routing[op], &b->routing[op]))
            return false;
    /* cache, pools and opt are ints or bools only: no padding inside. */
    return strcmp(a->version, b->version) == 0 &&
           memcmp(&a->cache, &b->cache, sizeof a->cache) == 0 &&
           memcmp(a->pools, b->pools, sizeof a->pools) == 0 &&
           a->perf.batch_size == b->perf.batch_size &&
           a->perf.query_timeout_s == b->perf.query_timeout_s &&
           a->perf.retry_max_attempts == b->perf.retry_max_attempts &&
           a->perf.retry_backoff_multiplier == b->perf.retry_backoff_multiplier &&
           a->perf.circuit_breaker_threshold == b->perf.circuit_breaker_threshold &&
           a->perf.circuit_breaker_timeout_s == b->perf.circuit_breaker_timeout_s &&
           a->perf.clickhouse_batch_linger_ms == b->perf.clickhouse_batch_linger_ms &&
           a->perf.batch_linger_ms == b->perf.batch_linger_ms &&
           a->perf.max_deliveries == b->perf.max_deliveries &&
           memcmp(&a->opt, &b->opt, sizeof a->opt) == 0;
}

/* Records the bytes the running version came from, so that touching the file or writing
 * the same bytes again is not a reload. The caller loaded the file a moment ago, but it
 * may have changed since; then (or if it cannot be read now) the thread's first act is a
 * reload, as if an event had arrived. Runs after the watch exists, so later writes are
 * events. Returns whether that first reload is needed. */
static bool remember_current_bytes(dm_strategy_watch *w)
{
    dm_err err = {0};
    size_t len = 0;
    char *buf = read_file(w->path, &len, &err);
    if (buf == NULL)
        return true;
    dm_strategy found;
    bool same = false;
    if (dm_strategy_parse(buf, len, &found, &err) == DM_OK) {
        const dm_strategy *running = dm_strategy_acquire(w->holder);
        same = same_strategy(&found, running);
        dm_strategy_release(w->holder, running);
    }
    if (same) {
        w->applied_hash = hash_bytes(buf, len);
        w->applied_len = len;
    }
    free(buf);
    return !same;
}

static void watch_free(dm_strategy_watch *w)
{
    if (w->fd >= 0)
        close(w->fd);
    free(w->path);
    free(w->dir);
    free(w->base);
    free(w);
}

dm_strategy_watch *dm_strategy_watch_start(const char *path, dm_strategy_holder *h,
                                           dm_strategy_swapped_fn on_swap, void *ctx, dm_err *err)
{
    dm_strategy_watch *w = calloc(1, sizeof *w);
    if (w == NULL || !split_path(w, path)) {
        if (w != NULL)
            watch_free(w);
        dm_fail(err, DM_E_INTERNAL, "", "out of memory");
        return NULL;
    }
    w->fd = -1;
    w->applied_len = SIZE_MAX;
    if (w->base[0] == '\0') {
        watch_free(w);
        dm_fail(err, DM_E_INTERNAL, "", "strategy path %s names a directory, not a file", path);
        return NULL;
    }
    w->holder = h;
    w->on_swap = on_swap;
    w->ctx = ctx;
    atomic_init(&w->stop, false);
    atomic_init(&w->reloads, 0);
    atomic_init(&w->failures, 0);
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0 ||
        (w->wd = inotify_add_watch(w->fd, w->dir,
                                   DM_WATCH_FILE_EVENTS | DM_WATCH_DIR_EVENTS | IN_ONLYDIR)) < 0) {
        dm_fail(err, DM_E_INTERNAL, "", "cannot watch directory %s: %s", w->dir, strerror(errno));
        watch_free(w);
        return NULL;
    }
    w->stale_at_start = remember_current_bytes(w);
    int rc = pthread_create(&w->thread, NULL, watch_main, w);
    if (rc != 0) {
        dm_fail(err, DM_E_INTERNAL, "", "cannot start the strategy watch thread: %s", strerror(rc));
        watch_free(w);
        return NULL;
    }
    DM_INFO("strategy", "watching %s for changes", w->path);
    return w;
}

void dm_strategy_watch_stop(dm_strategy_watch *w)
{
    if (w == NULL)
        return;
    atomic_store(&w->stop, true);
    pthread_join(w->thread, NULL);
    watch_free(w);
}

uint64_t dm_strategy_reloads(const dm_strategy_watch *w)
{
    return atomic_load(&w->reloads);
}

uint64_t dm_strategy_reload_failures(const dm_strategy_watch *w)
{
    return atomic_load(&w->failures);
}
