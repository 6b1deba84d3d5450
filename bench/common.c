#include "common.h"

#include "../worker/codec/doc.h"
#include "../worker/codec/enc.h"
#include "../worker/model/names.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <glob.h>
#include <time.h>
#include <unistd.h>

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

double bench_now_s(void)
{
    return (double)bench_now_ns() / 1e9;
}

void bench_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

const char *bench_env(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

void bench_nats_fail(const char *what, natsStatus s)
{
    const char *last = nats_GetLastError(NULL);
    fprintf(stderr, "bench: %s: %s%s%s\n", what, natsStatus_GetText(s), last ? ": " : "",
            last ? last : "");
}

natsConnection *bench_nats_connect(const char *name)
{
    return bench_nats_connect_ex(name, false);
}

natsConnection *bench_nats_connect_ex(const char *name, bool send_asap)
{
    natsOptions *o = NULL;
    natsConnection *nc = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetURL(o, bench_env("DM_NATS_URL", "nats://127.0.0.1:14222"));
    if (s == NATS_OK)
        s = natsOptions_SetName(o, name);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, 5000);
    if (s == NATS_OK && send_asap)
        s = natsOptions_SetSendAsap(o, true);
    const char *ca = bench_env("DM_NATS_CA", "");
    if (s == NATS_OK && *ca)
        s = natsOptions_SetSecure(o, true);
    if (s == NATS_OK && *ca)
        s = natsOptions_LoadCATrustedCertificates(o, ca);
    if (s == NATS_OK)
        s = natsConnection_Connect(&nc, o);
    natsOptions_Destroy(o);
    if (s != NATS_OK) {
        bench_nats_fail("NATS connect", s);
        return NULL;
    }
    return nc;
}

PGconn *bench_pg_connect(void)
{
    const char *keys[] = {"host", "port", "dbname", "user", "password", "connect_timeout", NULL};
    const char *vals[] = {bench_env("DM_PG_HOST", "127.0.0.1"), bench_env("DM_PG_PORT", "15432"),
                          "dm", "dm", bench_env("DM_PG_PASSWORD", ""), "5", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 0);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "bench: PostgreSQL connect: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

redisContext *bench_redis_connect(void)
{
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout(bench_env("DM_REDIS_HOST", "127.0.0.1"),
                                              atoi(bench_env("DM_REDIS_PORT", "16379")), tv);
    if (c == NULL || c->err) {
        fprintf(stderr, "bench: Redis connect: %s\n", c ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    const char *pw = bench_env("DM_REDIS_PASSWORD", "");
    if (*pw) {
        redisReply *r = redisCommand(c, "AUTH %s", pw);
        bool ok = r && r->type != REDIS_REPLY_ERROR;
        freeReplyObject(r);
        if (!ok) {
            fprintf(stderr, "bench: Redis AUTH refused\n");
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

const char *const bench_cpu_names[BENCH_CPU_COUNT] = {"workers", "nats-server", "postgres",
                                                      "redis", "bench"};

/* utime + stime (+ cutime + cstime when children) of pid, in clock ticks; its parent in
 * *ppid. -1 when the process is gone. */
static long long proc_ticks(long pid, bool children, long *ppid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (p == NULL)
        return -1;
    long long v[15] = {0}; /* fields 3.. of stat(5): state, ppid, ..., cstime */
    p += 2;
    for (int i = 0; i < 15 && *p; i++) {
        v[i] = i == 0 ? 0 : strtoll(p, NULL, 10);
        p = strchr(p, ' ');
        if (p == NULL)
            break;
        p++;
    }
    if (ppid)
        *ppid = (long)v[1];
    /* v[11] utime, v[12] stime, v[13] cutime, v[14] cstime */
    return v[11] + v[12] + (children ? v[13] + v[14] : 0);
}

static long pid_from_file(const char *path)
{
    FILE *f = fopen(path, "r");
    long pid = -1;
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = -1;
        fclose(f);
    }
    return pid;
}

void bench_cpu_snapshot(double out[BENCH_CPU_COUNT])
{
    double hz = (double)sysconf(_SC_CLK_TCK);
    long long t[BENCH_CPU_COUNT] = {0};
    const char *dir = getenv("DM_STACK_DIR");
    char path[4096];
    if (dir && *dir) {
        snprintf(path, sizeof path, "%s/workers/w*.pid", dir);
        glob_t g;
        if (glob(path, 0, NULL, &g) == 0) {
            for (size_t i = 0; i < g.gl_pathc; i++) {
                long long v = proc_ticks(pid_from_file(g.gl_pathv[i]), false, NULL);
                t[BENCH_CPU_WORKERS] += v > 0 ? v : 0;
            }
            globfree(&g);
        }
        snprintf(path, sizeof path, "%s/nats/nats.pid", dir);
        long long v = proc_ticks(pid_from_file(path), false, NULL);
        t[BENCH_CPU_NATS] = v > 0 ? v : 0;
        snprintf(path, sizeof path, "%s/redis/redis.pid", dir);
        v = proc_ticks(pid_from_file(path), false, NULL);
        t[BENCH_CPU_REDIS] = v > 0 ? v : 0;
        /* postgres: the postmaster (with its reaped children) and its live children */
        snprintf(path, sizeof path, "%s/pg/postmaster.pid", dir);
        long pm = pid_from_file(path);
        v = pm > 0 ? proc_ticks(pm, true, NULL) : -1;
        if (v >= 0) {
            t[BENCH_CPU_PG] = v;
            DIR *d = opendir("/proc");
            struct dirent *e;
            while (d && (e = readdir(d)) != NULL) {
                long pid = atol(e->d_name), ppid = 0;
                if (pid <= 0 || pid == pm)
                    continue;
                long long c = proc_ticks(pid, false, &ppid);
                if (c > 0 && ppid == pm)
                    t[BENCH_CPU_PG] += c;
            }
            if (d)
                closedir(d);
        }
    }
    long long self = proc_ticks((long)getpid(), false, NULL);
    t[BENCH_CPU_SELF] = self > 0 ? self : 0;
    for (int i = 0; i < BENCH_CPU_COUNT; i++)
        out[i] = (double)t[i] / hz;
}

bool bench_samples_add(bench_samples *s, int64_t ns)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        int64_t *p = realloc(s->v, cap * sizeof *p);
        if (p == NULL)
            return false;
        s->v = p;
        s->cap = cap;
    }
    s->v[s->n++] = ns;
    return true;
}

void bench_samples_free(bench_samples *s)
{
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

void bench_samples_sort(bench_samples *s)
{
    if (s->n > 1)
        qsort(s->v, s->n, sizeof *s->v, cmp_i64);
}

double bench_pct_ms(const bench_samples *s, double p)
{
    if (s->n == 0)
        return NAN;
    size_t rank = (size_t)ceil(p / 100.0 * (double)s->n); /* nearest rank, 1-based */
    if (rank < 1)
        rank = 1;
    if (rank > s->n)
        rank = s->n;
    return (double)s->v[rank - 1] / 1e6;
}

double bench_mean_ms(const bench_samples *s)
{
    if (s->n == 0)
        return NAN;
    double sum = 0;
    for (size_t i = 0; i < s->n; i++)
        sum += (double)s->v[i];
    return sum / (double)s->n / 1e6;
}

double bench_max_ms(const bench_samples *s)
{
    return s->n ? (double)s->v[s->n - 1] / 1e6 : NAN;
}

const char *bench_thousands(double v, char *buf, size_t cap)
{
    dm_fmt_grouped(buf, cap, v > 0 ? (uint64_t)llround(v) : 0);
    return buf;
}

double bench_num_at(const cJSON *o, const char *a, const char *b, const char *c)
{
    const char *path[3] = {a, b, c};
    for (int i = 0; i < 3 && path[i] && o; i++)
        o = cJSON_GetObjectItemCaseSensitive(o, path[i]);
    return cJSON_IsNumber(o) ? o->valuedouble : 0;
}

/* Whether worker is among the first n of seen[]; adds it when not and there is room. */
static bool seen_before(char (*seen)[64], int *n, int max, const char *worker)
{
    for (int i = 0; i < *n; i++)
        if (strcmp(seen[i], worker) == 0)
            return true;
    if (*n >= max)
        return true;
    snprintf(seen[(*n)++], 64, "%s", worker);
    return false;
}

int bench_read_metrics(natsConnection *nc, int want, int max, bench_metrics_fill fill, void *ctx)
{
    char (*seen)[64] = calloc(max > 0 ? (size_t)max : 1, sizeof *seen);
    int n = 0;
    for (int tries = 0; seen && tries < 200 && n < want; tries++) {
        natsMsg *r = NULL;
        if (natsConnection_RequestString(&r, nc, DM_SUBJ_METRICS, "{}", 5000) != NATS_OK)
            continue;
        cJSON *doc = NULL;
        dm_err err = {0};
        if (dm_doc_parse(natsMsg_GetData(r), (size_t)natsMsg_GetDataLength(r), DM_ENC_JSON,
                         64u << 20, &doc, &err) == DM_OK &&
            doc) {
            const cJSON *w = cJSON_GetObjectItemCaseSensitive(doc, "worker");
            if (cJSON_IsString(w) && !seen_before(seen, &n, max, w->valuestring))
                fill(ctx, n - 1, w->valuestring, doc);
        }
        cJSON_Delete(doc);
        natsMsg_Destroy(r);
    }
    free(seen);
    return n;
}

void bench_row(const char *name, const char *value, const char *baseline, double ratio,
               const char *target, int pass)
{
    printf("ROW\t%s\t%s\t%s\t%.2f\t%s\t%s\n", name, value, baseline, ratio, target,
           pass > 0 ? "PASS" : pass == 0 ? "MISS" : "-");
    fflush(stdout);
}

void bench_note(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("NOTE\t%s\n", msg);
    fflush(stdout);
}

void bench_sub_close(natsSubscription *sub, dm_done *d)
{
    if (sub) {
        if (natsSubscription_Drain(sub) != NATS_OK ||
            natsSubscription_WaitForDrainCompletion(sub, 5000) != NATS_OK)
            natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    dm_done_release(d);
}

void bench_echo_answer(natsConnection *nc, natsMsg *msg, const char *data, int len,
                       const char *content_type, dm_done *d)
{
    const char *reply_to = natsMsg_GetReply(msg);
    if (reply_to && *reply_to) {
        natsMsg *out = NULL;
        natsStatus s = natsMsg_Create(&out, reply_to, NULL, data, len);
        if (s == NATS_OK)
            s = natsMsgHeader_Set(out, "Content-Type", content_type);
        if (s == NATS_OK)
            s = natsMsgHeader_Set(out, "Status", "200");
        if (s == NATS_OK)
            natsConnection_PublishMsg(nc, out);
        dm_done_add(d, out);
    }
    dm_done_add(d, msg);
}

struct bench_echo {
    natsSubscription *sub;
    char *data;
    int len;
    const char *content_type;
    dm_done done;
};

static void on_echo(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)sub;
    bench_echo *e = closure;
    bench_echo_answer(nc, msg, e->data, e->len, e->content_type, &e->done);
}

bench_echo *bench_echo_start(natsConnection *nc, const char *subject, int len,
                             const char *content_type)
{
    bench_echo *e = calloc(1, sizeof *e);
    if (e == NULL || len < 0 || (e->data = malloc(len > 0 ? (size_t)len : 1)) == NULL) {
        free(e);
        fprintf(stderr, "bench: echo: out of memory\n");
        return NULL;
    }
    memset(e->data, 'x', (size_t)len);
    e->len = len;
    e->content_type = content_type;
    natsStatus s = natsConnection_Subscribe(&e->sub, nc, subject, on_echo, e);
    if (s == NATS_OK)
        s = natsConnection_Flush(nc);
    if (s != NATS_OK) {
        bench_nats_fail("echo subscribe", s);
        bench_echo_stop(e);
        return NULL;
    }
    return e;
}

void bench_echo_stop(bench_echo *e)
{
    if (e == NULL)
        return;
    bench_sub_close(e->sub, &e->done);
    free(e->data);
    free(e);
}

natsStatus bench_request(natsConnection *nc, const char *subject, const char *body, int len,
                         int timeout_ms, natsMsg **reply, int64_t *ns)
{
    natsMsg *m = NULL;
    *reply = NULL;
    natsStatus s = natsMsg_Create(&m, subject, NULL, body, len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Content-Type", "application/json");
    if (s == NATS_OK) {
        int64_t t = bench_now_ns();
        s = natsConnection_RequestMsg(reply, nc, m, timeout_ms);
        *ns = bench_now_ns() - t;
    }
    natsMsg_Destroy(m);
    return s;
}

int bench_reply_status(natsMsg *reply)
{
    const char *st = NULL;
    return natsMsgHeader_Get(reply, "Status", &st) == NATS_OK && st ? atoi(st) : 200;
}
