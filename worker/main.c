/* dm-worker: wiring and signals. Loads configs and the strategy, applies the schema,
 * starts one consumer thread per (backend, kind) the strategy writes to and N responder
 * threads, then waits for SIGTERM/SIGINT and shuts down in order: stop answering,
 * finish and ack in-flight batches, flush, close. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <stdatomic.h>

#include <openssl/crypto.h>

#include "backend/arangodb.h"
#include "backend/clickhouse.h"
#include "backend/dragonfly.h"
#include "backend/pool.h"
#include "backend/timescale.h"
#include "backend/weaviate.h"
#include "bus/bus.h"
#include "bus/cache_sub.h"
#include "bus/backfill.h"
#include "bus/micro.h"
#include "bus/refresh.h"
#include "bus/consumer.h"
#include "bus/progress.h"
#include "bus/responder.h"
#include "cache/flight.h"
#include "cache/l1_backend.h"
#include "engine/fallback.h"
#include "obs/history.h"
#include "obs/http.h"
#include "report.h"
#include "status.h"
#include "strategy/current.h"
#include "strategy/watch.h"
#include "util/config.h"
#include "util/log.h"
#include "obs/metrics.h"

#define DM_MAX_RESPONDERS 32
#define DM_L1_MAX_BYTES (128u << 20) /* memory bound of L1, split between ticks and candles */

typedef struct {
    const char *config_dir, *strategy_path, *name, *env_file;
    const char *http; /* --http LISTEN: the Prometheus/health port; NULL: none */
    const char *check; /* --check-strategy FILE: validate it and exit */
    int responders;
} options;

typedef struct worker worker;

/* What a pool needs to make a connection of its backend. */
typedef struct {
    worker *w;
    dm_backend_id id;
} pool_ctx;

struct worker {
    cJSON *cfg[DM_BK_COUNT]; /* connection configs of the configured backends */
    cJSON *nats_cfg;
    dm_strategy initial;
    dm_strategy_holder *strategies;
    dm_strategy_watch *watch;
    dm_l1_cache *l1;
    dm_series_store *series; /* the analysis engines' closes; shared by responders */
    dm_fallback_config loader; /* how the store loads; Weaviate's window source reads it */
    dm_flight *flight;
    dm_breaker *breakers[DM_BK_COUNT]; /* per configured backend; shared by all threads */
    atomic_bool strategy_changed; /* set by the watch thread, consumed by main */
    atomic_uint consumers_running; /* bit kind * DM_BK_COUNT + backend; written by main */
    char app_name[64];
    dm_consumer *consumers[DM_KIND_COUNT][DM_BK_COUNT]; /* owner: main thread */
    dm_tick_share *ticks; /* what the tick consumers decoded; outlives them (NULL: none) */
    dm_pool *pools[DM_BK_COUNT]; /* request connections per configured database */
    pool_ctx pool_ctx[DM_BK_COUNT];
    pthread_t keeper;            /* checks and refills the pools once a second */
    atomic_bool keeper_stop;
    bool keeper_running;
    dm_bus *bus; /* for health figures; set once connected */
    dm_progress *progress; /* consumer catch-up and stalls; owner: main thread */
    atomic_bool serving; /* responders started: /readyz */
    dm_history *history; /* sampled by the main thread's loop, read by the HTTP threads */
    dm_status *status;   /* /status.json; made before the HTTP server starts, freed after */
    dm_report report;    /* points at the fields above, for report.c */
};

static void usage(void)
{
    fprintf(stderr,
            "usage: dm-worker --config-dir DIR --strategy FILE [--name NAME] [--env-file FILE]\n"
            "                 [--responders N] [--log-level debug|info|warn|error]\n"
            "                 [--http [HOST:]PORT]   GET / (status page) /status.json /metrics\n"
            "                                        /healthz /readyz\n"
            "                                        (HOST defaults to 127.0.0.1)\n"
            "       dm-worker --check-strategy FILE  validates a strategy file as a running\n"
            "                                        worker would, then exits (0: valid)\n");
}

static int parse_args(int argc, char **argv, options *o)
{
    static const struct option longopts[] = {
        {"config-dir", required_argument, 0, 'c'}, {"strategy", required_argument, 0, 's'},
        {"name", required_argument, 0, 'n'},       {"env-file", required_argument, 0, 'e'},
        {"responders", required_argument, 0, 'r'}, {"log-level", required_argument, 0, 'l'},
        {"http", required_argument, 0, 'H'},       {"help", no_argument, 0, 'h'},
        {"check-strategy", required_argument, 0, 'C'}, {0, 0, 0, 0}};
    *o = (options){.config_dir = "deploy/config", .strategy_path = "strategy/strategy.json",
                   .name = "dm-worker", .env_file = ".env", .responders = 4};
    int ch;
    while ((ch = getopt_long(argc, argv, "c:s:n:e:r:l:H:hC:", longopts, NULL)) != -1) {
        switch (ch) {
        case 'C': o->check = optarg; break;
        case 'c': o->config_dir = optarg; break;
        case 's': o->strategy_path = optarg; break;
        case 'n': o->name = optarg; break;
        case 'e': o->env_file = optarg; break;
        case 'H': o->http = optarg; break;
        case 'r':
            o->responders = atoi(optarg);
            if (o->responders < 1 || o->responders > DM_MAX_RESPONDERS) {
                fprintf(stderr, "--responders must be 1..%d\n", DM_MAX_RESPONDERS);
                return -1;
            }
            break;
        case 'l':
            dm_log_set_level(strcmp(optarg, "debug") == 0  ? DM_LOG_DEBUG
                             : strcmp(optarg, "warn") == 0 ? DM_LOG_WARN
                             : strcmp(optarg, "error") == 0 ? DM_LOG_ERROR
                                                            : DM_LOG_INFO);
            break;
        default: usage(); return -1;
        }
    }
    return 0;
}

/* --check-strategy: the same parse and validation a reload applies, before a deploy. */
static int check_strategy(const char *path)
{
    dm_strategy st;
    dm_err err = {0};
    if (dm_strategy_load(path, &st, &err) != DM_OK) {
        fprintf(stderr, "%s: invalid: %s%s%s%s\n", path, err.message, err.field[0] ? " (field " : "",
                err.field, err.field[0] ? ")" : "");
        return 1;
    }
    printf("%s: valid, version %s\n", path, st.version);
    return 0;
}

/* A fresh backend instance: every thread gets its own connection. */
static dm_backend *make_backend(const worker *w, const dm_strategy *st, dm_backend_id id)
{
    int timeout = st->pools[id].timeout_s;
    switch (id) {
    case DM_BK_TIMESCALE:
        return w->cfg[id] ? dm_timescale_create(w->cfg[id], w->app_name, st->perf.query_timeout_s) : NULL;
    case DM_BK_CLICKHOUSE: return w->cfg[id] ? dm_clickhouse_create(w->cfg[id], timeout) : NULL;
    case DM_BK_DRAGONFLY: return w->cfg[id] ? dm_dragonfly_create(w->cfg[id], timeout) : NULL;
    case DM_BK_WEAVIATE:
        if (w->cfg[id] == NULL)
            return NULL;
        dm_window_source src = dm_fallback_window_source((dm_fallback_config *)&w->loader);
        return dm_weaviate_backend_create(w->cfg[id], st->patterns.window, st->patterns.hnsw,
                                          st->patterns.timeframes, timeout, &src);
    case DM_BK_ARANGODB: return w->cfg[id] ? dm_arango_backend_create(w->cfg[id], timeout) : NULL;
    case DM_BK_L1: return w->l1 ? dm_l1_backend_create(w->l1) : NULL;
    default: return NULL;
    }
}

static dm_backend *pool_make(void *ctx)
{
    pool_ctx *pc = ctx;
    const dm_strategy *st = dm_strategy_acquire(pc->w->strategies);
    dm_backend *b = make_backend(pc->w, st, pc->id);
    dm_strategy_release(pc->w->strategies, st);
    return b;
}

static bool create_pools(worker *w)
{
    for (int id = 0; id < DM_BK_COUNT; id++) {
        if (w->cfg[id] == NULL || id == DM_BK_L1)
            continue;
        w->pool_ctx[id] = (pool_ctx){w, (dm_backend_id)id};
        w->pools[id] = dm_pool_create((dm_backend_id)id, pool_make, &w->pool_ctx[id], &w->initial.pools[id]);
        if (w->pools[id] == NULL)
            return false;
    }
    return true;
}

static void *keeper_run(void *arg)
{
    worker *w = arg;
    while (!atomic_load(&w->keeper_stop)) {
        for (int id = 0; id < DM_BK_COUNT; id++)
            if (w->pools[id])
                dm_pool_maintain(w->pools[id], dm_mono_ms());
        for (int i = 0; i < 10 && !atomic_load(&w->keeper_stop); i++)
            nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL);
    }
    return NULL;
}

static dm_code load_configs(worker *w, const options *o, dm_err *err)
{
    static const struct {
        dm_backend_id id;
        const char *file;
        bool optional; /* the analysis indexes: the in-worker engines answer without them */
    } files[] = {{DM_BK_TIMESCALE, "timescale", false}, {DM_BK_CLICKHOUSE, "clickhouse", false},
                 {DM_BK_DRAGONFLY, "dragonfly", false}, {DM_BK_WEAVIATE, "weaviate", true},
                 {DM_BK_ARANGODB, "arangodb", true}};
    dm_code c = dm_config_load(o->config_dir, "nats", &w->nats_cfg, err);
    for (size_t i = 0; c == DM_OK && i < sizeof files / sizeof *files; i++) {
        c = dm_config_load(o->config_dir, files[i].file, &w->cfg[files[i].id], err);
        if (c == DM_OK && w->cfg[files[i].id] == NULL && files[i].optional)
            DM_INFO("main", "%s/%s.json not found: backend %s not configured", o->config_dir,
                    files[i].file, dm_backend_name(files[i].id));
        else if (c == DM_OK && w->cfg[files[i].id] == NULL)
            DM_WARN("main", "%s/%s.json not found: backend %s not configured", o->config_dir,
                    files[i].file, dm_backend_name(files[i].id));
    }
    return c;
}

static void migrate_one(const worker *w, dm_backend_id id, dm_code (*apply)(const cJSON *, dm_err *),
                        int attempts)
{
    if (w->cfg[id] == NULL)
        return;
    for (int attempt = 1; attempt <= attempts; attempt++) {
        dm_err err = {0};
        if (apply(w->cfg[id], &err) == DM_OK)
            return;
        DM_WARN("main", "%s schema not applied (attempt %d): %s", dm_backend_name(id), attempt,
                err.message);
        if (attempt < attempts)
            sleep(1);
    }
    DM_ERROR("main", "%s schema not applied: writes to %s will wait in the stream",
             dm_backend_name(id), dm_backend_name(id));
}

static void migrate(const worker *w)
{
    /* PostgreSQL is the primary: wait for it a while. ClickHouse's writer applies the
     * schema itself when it finds it missing, so one try is enough and an outage there
     * never delays a worker's start. */
    migrate_one(w, DM_BK_TIMESCALE, dm_timescale_migrate, 30);
    migrate_one(w, DM_BK_CLICKHOUSE, dm_clickhouse_migrate, 1);
}

static void publish_consumer_set(worker *w)
{
    unsigned mask = 0;
    for (int k = 0; k < DM_KIND_COUNT; k++)
        for (int id = 0; id < DM_BK_COUNT; id++)
            if (w->consumers[k][id])
                mask |= 1u << (k * DM_BK_COUNT + id);
    atomic_store(&w->consumers_running, mask);
}

/* Makes the running consumers match the strategy's write routes: one per (kind, backend)
 * listed, configured and able to take that kind. Runs at start and after each reload. */
static int reconcile_consumers(worker *w, dm_bus *bus)
{
    const dm_strategy *st = dm_strategy_acquire(w->strategies);
    int failures = 0, running = 0;
    for (int k = 0; k < DM_KIND_COUNT; k++) {
        const dm_route *r = &st->routing[dm_kind_op((dm_kind)k)];
        for (int id = 0; id < DM_BK_COUNT; id++) {
            dm_consumer **slot = &w->consumers[k][id];
            bool wanted = dm_route_has(r, (dm_backend_id)id) && id != DM_BK_L1;
            if (!wanted && *slot) {
                DM_INFO("main", "strategy no longer routes %s to %s: stopping its consumer",
                        dm_op_name(dm_kind_op((dm_kind)k)), dm_backend_name((dm_backend_id)id));
                dm_consumer_destroy(*slot);
                *slot = NULL;
            }
            if (!wanted || *slot) {
                running += *slot != NULL;
                continue;
            }
            /* A consumer's own connection, outside the request pool. */
            dm_backend *b = make_backend(w, st, (dm_backend_id)id);
            if (b == NULL || !dm_kind_supported((dm_kind)k, b)) {
                /* Weaviate and ArangoDB are optional: the in-worker engines answer without them. */
                if (b == NULL && (id == DM_BK_WEAVIATE || id == DM_BK_ARANGODB))
                    DM_INFO("main", "%s lists %s, which this worker has not configured: skipped",
                            dm_op_name(dm_kind_op((dm_kind)k)), dm_backend_name((dm_backend_id)id));
                else if (b == NULL)
                    DM_WARN("main", "%s lists %s, which this worker has not configured: skipped",
                            dm_op_name(dm_kind_op((dm_kind)k)), dm_backend_name((dm_backend_id)id));
                dm_backend_destroy(b);
                continue;
            }
            dm_err err = {0};
            *slot = dm_consumer_start(bus, (dm_kind)k, b, w->strategies, w->breakers[id], w->ticks,
                                      &err);
            if (*slot == NULL) {
                DM_ERROR("main", "%s", err.message);
                failures++;
            } else {
                running++;
            }
        }
    }
    dm_strategy_release(w->strategies, st);
    publish_consumer_set(w);
    return failures ? -1 : running;
}

static void stop_consumers(worker *w)
{
    atomic_store(&w->consumers_running, 0u);
    for (int k = 0; k < DM_KIND_COUNT; k++)
        for (int id = 0; id < DM_BK_COUNT; id++)
            dm_consumer_stop(w->consumers[k][id]);
    for (int k = 0; k < DM_KIND_COUNT; k++)
        for (int id = 0; id < DM_BK_COUNT; id++) {
            dm_consumer_destroy(w->consumers[k][id]);
            w->consumers[k][id] = NULL;
        }
}

/* /metrics and the consumer members of health: worker/report.c, over the worker's state. */
static void prometheus(void *ctx, dm_buf *out) { dm_report_prometheus(&((worker *)ctx)->report, out); }
static void health_consumers(void *ctx, dm_enc *e) { dm_report_health(&((worker *)ctx)->report, e); }

/* Runs on a NATS library thread. While disconnected this worker hears no cache updates:
 * L1 is bypassed at once, and started over (emptied, marks forgotten) on reconnect. */
static void on_link(dm_link_event ev, void *ctx)
{
    worker *w = ctx;
    dm_fresh *f = dm_l1_cache_fresh(w->l1);
    if (ev == DM_LINK_DOWN) {
        /* Deaf to commits and unable to commit, while requests may still arrive on the
         * replies connection: no source counts as current until the reconnect's catch-up
         * says so, so reads answer 503 rather than a value older than an acked one. */
        dm_fresh_suspend(f);
        for (int b = 0; b < DM_BK_COUNT; b++)
            for (int cls = 0; cls < DM_FRESH_CLASSES; cls++)
                dm_fresh_set_caught_up(f, (dm_backend_id)b, (dm_fresh_class)cls, false);
        return;
    }
    DM_INFO("fresh", "%s: L1 and the series store start over",
            ev == DM_LINK_UP ? "reconnected" : "cache updates were dropped");
    dm_l1_cache_restart(w->l1);
    dm_series_forget(w->series);
}

static size_t health_issues(void *ctx, char (*out)[DM_HEALTH_ISSUE_MAX], size_t max)
{
    worker *w = ctx;
    size_t n = 0;
    if (max > 0 && dm_fresh_suspended(dm_l1_cache_fresh(w->l1)))
        snprintf(out[n++], DM_HEALTH_ISSUE_MAX, "L1 suspended: cache updates may have been missed");
    if (w->progress)
        n += dm_progress_issues(w->progress, out + n, max - n);
    return n;
}

static bool ready(void *ctx, dm_buf *why)
{
    worker *w = ctx;
    if (!atomic_load(&w->serving)) {
        dm_buf_puts(why, "starting or stopping: responders not running\n");
        return false;
    }
    if (natsConnection_Status(w->bus->nc) != NATS_CONN_STATUS_CONNECTED) {
        dm_buf_puts(why, "not connected to NATS\n");
        return false;
    }
    if (natsConnection_Status(dm_bus_reply_conn(w->bus)) != NATS_CONN_STATUS_CONNECTED) {
        dm_buf_puts(why, "responders not connected to NATS\n");
        return false;
    }
    return true;
}

/* A dm_serve set up as every responder's: the status page's is one too, so its health and
 * metrics are the replies a NATS client gets. */
static dm_serve *make_serve(worker *w, const char *name)
{
    dm_serve_config sc = {.worker_name = name, .strategies = w->strategies, .flight = w->flight,
                          .l1 = w->l1, .series = w->series, .watch = w->watch,
                          .health_extra = health_consumers,
                          .health_extra_members = DM_REPORT_HEALTH_MEMBERS, .health_ctx = w,
                          .health_issues = health_issues};
    for (int id = 0; id < DM_BK_COUNT; id++) {
        sc.pools[id] = w->pools[id];
        sc.breakers[id] = w->breakers[id];
    }
    if (w->l1)
        sc.backends[DM_BK_L1] = dm_l1_backend_create(w->l1);
    sc.backends[DM_BK_FALLBACK] = dm_fallback_create(&w->loader);
    dm_serve *s = dm_serve_create(&sc);
    if (s == NULL)
        for (int id = 0; id < DM_BK_COUNT; id++)
            dm_backend_destroy(sc.backends[id]);
    return s;
}

static dm_responder *start_responder(worker *w, dm_bus *bus, const char *name)
{
    dm_serve *s = make_serve(w, name);
    if (s == NULL)
        return NULL;
    dm_err err = {0};
    dm_responder *r = dm_responder_start(bus, s, &err);
    if (r == NULL)
        DM_ERROR("main", "%s", err.message);
    return r;
}

static void free_worker(worker *w)
{
    for (int i = 0; i < DM_BK_COUNT; i++)
        cJSON_Delete(w->cfg[i]);
    cJSON_Delete(w->nats_cfg);
    dm_strategy_holder_destroy(w->strategies);
    for (int i = 0; i < DM_BK_COUNT; i++) {
        dm_breaker_destroy(w->breakers[i]);
        dm_pool_destroy(w->pools[i]);
    }
    dm_l1_cache_destroy(w->l1);
    dm_series_destroy(w->series);
    dm_history_destroy(w->history);
    dm_flight_destroy(w->flight);
    dm_tick_share_destroy(w->ticks);
}

/* L1 keeps a value no longer than L2 would: the L1 TTL, capped by the kind's cache TTL. */
static void apply_l1_ttls(dm_l1_cache *cache, const dm_strategy *st)
{
    int64_t l1 = st->cache.l1_ttl_ms;
    int64_t tick = (int64_t)st->cache.tick_ttl_s * 1000, candle = (int64_t)st->cache.candle_ttl_s * 1000;
    dm_l1_cache_set_ttl(cache, tick < l1 ? tick : l1, candle < l1 ? candle : l1);
}

/* Runs on the watch thread: apply what the new version changes in shared state, and
 * leave the consumer set to the main thread, which owns it. */
static void on_strategy_swap(const dm_strategy *next, void *ctx)
{
    worker *w = ctx;
    apply_l1_ttls(w->l1, next);
    dm_l1_cache_set_limits(w->l1, (size_t)next->cache.l1_max_entries, DM_L1_MAX_BYTES);
    for (int id = 0; id < DM_BK_COUNT; id++)
        if (w->pools[id])
            dm_pool_configure(w->pools[id], &next->pools[id]);
    atomic_store(&w->strategy_changed, true);
}

/* Waits for SIGTERM/SIGINT; meanwhile applies strategy reloads to the consumer set. */
static int wait_for_stop(worker *w, dm_bus *bus, sigset_t *signals)
{
    struct timespec tick = {0, 50 * 1000000L};
    for (;;) {
        int sig = sigtimedwait(signals, NULL, &tick);
        if (sig > 0)
            return sig;
        if (atomic_exchange(&w->strategy_changed, false))
            reconcile_consumers(w, bus);
        const dm_strategy *st = dm_strategy_acquire(w->strategies);
        dm_progress_check(w->progress, st);
        dm_strategy_release(w->strategies, st);
        dm_history_tick(w->history, dm_now_ms());
    }
}

static void status_json(void *ctx, dm_buf *out) { dm_status_json(((worker *)ctx)->status, out); }

/* --http: Prometheus, the probes and the status page, whose document has a dm_serve of
 * its own. NULL with err set when the port cannot be served. */
static dm_http *start_http(worker *w, const options *o, dm_err *err)
{
    dm_serve *serve = make_serve(w, o->name);
    if (serve == NULL || (w->status = dm_status_create(serve, w->history)) == NULL) {
        dm_fail(err, DM_E_INTERNAL, "", "out of memory");
        return NULL;
    }
    dm_http_handlers hh = {.metrics = prometheus, .ready = ready, .status = status_json, .ctx = w};
    return dm_http_start(o->http, &hh, err);
}

static int run(worker *w, const options *o, sigset_t *signals)
{
    dm_bus bus;
    dm_err err = {0};
    if (dm_bus_connect(&bus, w->nats_cfg, o->name, on_link, w, &err) ||
        dm_bus_ensure_streams(&bus, w->nats_cfg, &err)) {
        DM_ERROR("main", "%s", err.message);
        dm_bus_close(&bus);
        return 1;
    }
    /* Replies on their own connection, written as soon as they are encoded; without it
     * they share the consumers' connection and wait for its flusher. */
    if (dm_bus_connect_replies(&bus, w->nats_cfg, o->name, &err))
        DM_WARN("main", "%s: responders share the consumers' connection", err.message);
    w->bus = &bus;
    if ((w->progress = dm_progress_create(&bus, dm_l1_cache_fresh(w->l1))) == NULL) {
        DM_ERROR("main", "out of memory");
        dm_bus_close(&bus);
        return 1;
    }

    dm_responder *responders[DM_MAX_RESPONDERS] = {0};
    dm_cache_sub *updates = dm_cache_sub_start(&bus, w->l1, w->series, &err);
    int nc = updates ? reconcile_consumers(w, &bus) : -1, nr = 0;
    int rc = nc < 0 ? 1 : 0;
    if (updates == NULL)
        DM_ERROR("main", "%s", err.message);
    /* Answer only once the sources' copies can be judged current (a few milliseconds when
     * the consumers keep up; bounded, since a backend that is down never catches up). */
    for (int i = 0; rc == 0 && i < 60 && !dm_progress_caught_up(w->progress, &w->initial); i++) {
        dm_progress_check(w->progress, &w->initial);
        nats_Sleep(50);
    }
    /* The watch first: responders report its reload figures. */
    w->watch = rc == 0 ? dm_strategy_watch_start(o->strategy_path, w->strategies, on_strategy_swap, w, &err)
                       : NULL;
    if (rc == 0 && w->watch == NULL)
        DM_WARN("main", "strategy hot reload off: %s", err.message);
    dm_refresh_config rfc = {.bus = &bus, .holder = o->name, .strategies = w->strategies, .store = w->series,
                             .timescale = w->pools[DM_BK_TIMESCALE], .arangodb = w->pools[DM_BK_ARANGODB],
                             .fresh = dm_l1_cache_fresh(w->l1)};
    dm_refresh *refresh = rc == 0 ? dm_refresh_start(&rfc, &err) : NULL;
    if (rc == 0 && refresh == NULL)
        DM_WARN("main", "scheduled correlations off: %s", err.message);
    dm_backfill_config bfc = {.bus = &bus, .holder = o->name, .strategies = w->strategies, .loader = &w->loader,
                              .timescale = w->pools[DM_BK_TIMESCALE], .weaviate = w->pools[DM_BK_WEAVIATE]};
    dm_backfill *backfill = rc == 0 && w->pools[DM_BK_WEAVIATE] ? dm_backfill_start(&bfc, &err) : NULL;
    dm_micro *micro = rc == 0 ? dm_micro_start(&bus, &err) : NULL;
    if (rc == 0 && micro == NULL)
        DM_WARN("main", "service discovery ($SRV) off: %s", err.message);
    if (rc == 0 && w->pools[DM_BK_WEAVIATE] && backfill == NULL)
        DM_WARN("main", "Weaviate backfill off: %s", err.message);
    for (int i = 0; rc == 0 && i < o->responders; i++)
        if ((responders[nr++] = start_responder(w, &bus, o->name)) == NULL)
            rc = 1;
    dm_http *http = NULL;
    if (rc == 0 && o->http) {
        if ((http = start_http(w, o, &err)) == NULL) {
            DM_ERROR("main", "%s", err.message);
            rc = 1;
        }
    }
    if (rc == 0) {
        atomic_store(&w->serving, true);
        DM_INFO("main", "ready: %d consumers, %d responders, strategy %s%s%s", nc, nr, w->initial.version,
                http ? ", http " : "", http ? o->http : "");
        int sig = wait_for_stop(w, &bus, signals);
        atomic_store(&w->serving, false);
        DM_INFO("main", "%s: draining", strsignal(sig));
    }
    dm_http_stop(http);
    dm_status_destroy(w->status);
    w->status = NULL;
    dm_micro_stop(micro);
    dm_refresh_stop(refresh);
    dm_backfill_stop(backfill);
    dm_strategy_watch_stop(w->watch);
    for (int i = 0; i < nr; i++)
        dm_responder_destroy(responders[i]);
    stop_consumers(w);
    dm_cache_sub_stop(updates);
    dm_progress_destroy(w->progress);
    w->progress = NULL;
    dm_bus_close(&bus);
    w->bus = NULL;
    return rc;
}

int main(int argc, char **argv)
{
    /* nats.c 3.4's nats_Close frees OpenSSL's compression method list without clearing
     * the pointer (nats.c issue 904), and OpenSSL's exit handler frees it again: a TLS
     * worker crashed on every exit. OpenSSL is told not to clean up at exit, first thing,
     * before libpq, libcurl or nats.c start it (the first start decides). */
    OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
    /* Block the stop signals before any thread exists, so only sigwait sees them. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    options o;
    if (parse_args(argc, argv, &o) != 0)
        return 2;
    if (o.check)
        return check_strategy(o.check);
    dm_log_set_name(o.name);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());

    worker w;
    memset(&w, 0, sizeof w);
    w.report = (dm_report){.bus = &w.bus, .strategies = &w.strategies, .watch = &w.watch,
                           .breakers = w.breakers, .pools = w.pools,
                           .consumers_running = &w.consumers_running};
    snprintf(w.app_name, sizeof w.app_name, "dm-worker-%s", o.name);
    dm_err err = {0};
    if (dm_env_load_file(o.env_file, &err) || dm_strategy_load(o.strategy_path, &w.initial, &err) ||
        load_configs(&w, &o, &err)) {
        DM_ERROR("main", "%s", err.message);
        free_worker(&w);
        return 1;
    }
    DM_INFO("main", "strategy %s version %s", o.strategy_path, w.initial.version);
    atomic_init(&w.strategy_changed, false);
    atomic_init(&w.consumers_running, 0u);
    atomic_init(&w.serving, false);
    w.strategies = dm_strategy_holder_create(&w.initial);
    w.l1 = dm_l1_cache_create((size_t)w.initial.cache.l1_max_entries, DM_L1_MAX_BYTES);
    w.series = dm_series_create((size_t)w.initial.patterns.max_closes);
    w.flight = dm_flight_create();
    w.history = dm_history_create();
    /* Room for the distance between a worker's two tick consumers in a backlog of tens of
     * thousands of ticks; beyond it each decodes its own. */
    w.ticks = dm_tick_share_create(DM_TICK_SHARE_SLOTS);
    bool breakers_ok = true;
    for (int id = 0; id < DM_BK_COUNT; id++)
        if (w.cfg[id] && (w.breakers[id] = dm_breaker_create()) == NULL)
            breakers_ok = false;
    if (w.strategies == NULL || w.l1 == NULL || w.series == NULL || w.flight == NULL ||
        w.history == NULL || w.ticks == NULL || !breakers_ok ||
        !create_pools(&w)) {
        DM_ERROR("main", "out of memory");
        free_worker(&w);
        return 1;
    }
    apply_l1_ttls(w.l1, &w.initial);
    w.loader = (dm_fallback_config){.store = w.series, .timescale = w.pools[DM_BK_TIMESCALE],
                                    .fresh = dm_l1_cache_fresh(w.l1)};
    if (nats_Open(-1) != NATS_OK) {
        DM_ERROR("main", "cannot initialise the NATS library");
        free_worker(&w);
        return 1;
    }
    migrate(&w);
    atomic_init(&w.keeper_stop, false);
    w.keeper_running = pthread_create(&w.keeper, NULL, keeper_run, &w) == 0;
    if (!w.keeper_running)
        DM_WARN("main", "pool keeper not started: connections are checked only when used");
    int rc = run(&w, &o, &signals);
    if (w.keeper_running) {
        atomic_store(&w.keeper_stop, true);
        pthread_join(w.keeper, NULL);
    }
    free_worker(&w);
    nats_Close();
    DM_INFO("main", "stopped");
    return rc;
}
