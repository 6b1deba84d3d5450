/* Shared helpers of the benchmark programs: clocks, the stack's connection settings
 * (the environment deploy/stack.sh env prints), latency statistics and the report rows
 * bench/run.sh collects into its table.
 *
 * Benchmarks are programs, not tests: every loop is bounded in count and in time, and
 * every figure is reported next to a raw baseline measured in the same run. */
#ifndef DM_BENCH_COMMON_H
#define DM_BENCH_COMMON_H

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus/msg_done.h"

/* Monotonic time. */
int64_t bench_now_ns(void);
double bench_now_s(void);
void bench_sleep_ms(int ms);

const char *bench_env(const char *name, const char *dflt);

/* Connections to the stack named by DM_NATS_URL, DM_PG_HOST/PORT/PASSWORD,
 * DM_REDIS_HOST/PORT (defaults: deploy/stack.sh's default ports). NULL + message on error. */
natsConnection *bench_nats_connect(const char *name);
/* send_asap: natsOptions_SetSendAsap (no 1 ms flusher coalescing; see bench_latest). */
natsConnection *bench_nats_connect_ex(const char *name, bool send_asap);
PGconn *bench_pg_connect(void);
redisContext *bench_redis_connect(void);

/* Prints "bench: <what>: <nats error>" to stderr. */
void bench_nats_fail(const char *what, natsStatus s);

/* CPU seconds (user + system) used so far by the processes of the stack in
 * $DM_STACK_DIR (found through its pid files, so other stacks on the machine do not
 * count) and by this process. Differences of two snapshots say where the time went. */
enum { BENCH_CPU_WORKERS, BENCH_CPU_NATS, BENCH_CPU_PG, BENCH_CPU_REDIS, BENCH_CPU_SELF,
       BENCH_CPU_COUNT };
extern const char *const bench_cpu_names[BENCH_CPU_COUNT];
void bench_cpu_snapshot(double out[BENCH_CPU_COUNT]);

/* An echo's callback frees its messages in groups, as the worker's responder does
 * (worker/bus/msg_done.h): a floor must not pay a wakeup the worker does not.
 * bench_sub_close drains and destroys sub (NULL: nothing), then destroys what d holds. */
void bench_sub_close(natsSubscription *sub, dm_done *d);
/* Answers msg on nc with len bytes of data and the headers the worker sets (Content-Type,
 * Status 200); the request and the answer go to d. */
void bench_echo_answer(natsConnection *nc, natsMsg *msg, const char *data, int len,
                       const char *content_type, dm_done *d);

/* A NATS echo responder on its own connection: answers every request on `subject` at once
 * with `len` bytes of body and the headers the worker sets (Content-Type content_type,
 * Status 200). On a connection made with send_asap it is the floor a real reply of that
 * size cannot beat; the verdicts compare with that one. NULL + message on error. The
 * bytes are a copy; bench_echo_stop drains the subscription and frees. */
typedef struct bench_echo bench_echo;
bench_echo *bench_echo_start(natsConnection *nc, const char *subject, int len,
                             const char *content_type);
void bench_echo_stop(bench_echo *e);

/* One request/reply round trip with a JSON body; *ns is the round trip alone (message
 * creation is outside the clock). The caller destroys *reply. */
natsStatus bench_request(natsConnection *nc, const char *subject, const char *body, int len,
                         int timeout_ms, natsMsg **reply, int64_t *ns);
/* The reply's Status header as a number (200 when absent). */
int bench_reply_status(natsMsg *reply);

/* Latency samples in nanoseconds. */
typedef struct {
    int64_t *v;
    size_t n, cap;
} bench_samples;

bool bench_samples_add(bench_samples *s, int64_t ns);
void bench_samples_free(bench_samples *s);
/* Sorts in place; percentile p in [0,100] by nearest rank, in ms. */
void bench_samples_sort(bench_samples *s);
double bench_pct_ms(const bench_samples *s, double p);
double bench_mean_ms(const bench_samples *s);
double bench_max_ms(const bench_samples *s);

/* 52300.4 -> "52,300" (dm_fmt_grouped of the rounded value; negatives as 0), returning
 * buf so it fits in a printf argument list. */
const char *bench_thousands(double v, char *buf, size_t cap);

/* The number at o.a.b.c (c, or b and c, may be NULL); 0 when absent or not a number. */
double bench_num_at(const cJSON *o, const char *a, const char *b, const char *c);
/* Asks dm.v1.metrics until `want` distinct workers have answered, at most 200 tries and
 * `max` workers; for each new one calls fill(ctx, i, worker, doc) with i counting from 0.
 * Returns how many answered. */
typedef void (*bench_metrics_fill)(void *ctx, int i, const char *worker, const cJSON *doc);
int bench_read_metrics(natsConnection *nc, int want, int max, bench_metrics_fill fill, void *ctx);

/* One row of the final table, on stdout, tab separated:
 *   ROW\t<benchmark>\t<value>\t<baseline>\t<ratio>\t<target>\t<PASS|MISS|->
 * run.sh aligns the rows; everything else a program prints goes to stderr. */
void bench_row(const char *name, const char *value, const char *baseline, double ratio,
               const char *target, int pass /* 1 pass, 0 miss, -1 no verdict */);
/* A note printed under the table (diagnostics: where the time goes). */
void bench_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
