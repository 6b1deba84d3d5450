/* A small runner for the server tests: tests are listed by name (the suite reads as the
 * service's promises), each runs against the stack tests/run.sh started, and the run
 * ends with "N passed, N failed". */
#ifndef DM_HARNESS_H
#define DM_HARNESS_H

#include <cjson/cJSON.h>
#include <nats/nats.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *name;
    void (*fn)(void);
} itest;

extern natsConnection *g_nc;
extern jsCtx *g_js;
extern const char *g_failure; /* set by CHECK, read by the runner */

void check_failed(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define CHECK(cond, ...)                                                                          \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            check_failed(__FILE__, __LINE__, __VA_ARGS__);                                        \
            return;                                                                               \
        }                                                                                         \
    } while (0)

/* A reply: parsed body, the Status header (200 when absent) and the raw bytes. */
typedef struct {
    cJSON *body;
    int status;
    char *raw;
    int raw_len;
} reply;

/* Sends JSON (or the same document as msgpack) to subject; fails the test on timeout. */
bool request(const char *subject, const char *json, bool msgpack, reply *out);
bool request_raw(const char *subject, const void *data, int len, const char *content_type,
                 reply *out);
void reply_free(reply *r);

/* JetStream publish with Nats-Msg-Id (may be NULL); returns the stream sequence, 0 on error. */
uint64_t publish(const char *subject, const void *data, int len, const char *content_type,
                 const char *msg_id);
uint64_t publish_json(const char *subject, const char *json, const char *msg_id);

/* Waits until every consumer of MARKET has nothing pending and nothing unacked. */
bool wait_idle(int timeout_s);
bool wait_idle_except(int timeout_s, const char *skip_consumer);
long long pg_count(const char *sql, const char *param);
/* A PGresult of rows (free with PQclear), NULL on error. */
void *pg_query(const char *sql, const char *param);
/* Counts DLQ entries whose Dm-Stream-Seq header equals seq; *reason gets the first reason. */
int dlq_count(uint64_t seq, char *reason, size_t cap);
char *msgpack_from_json(const char *json, int *len);
int redis_del(const char *key);
int redis_exists(const char *key);
/* A count from ClickHouse over HTTP (sql: the test's constant text); -1 on error. */
long long ch_count(const char *sql);
const char *env_or(const char *name, const char *dflt);

/* itest.c's: a shell command's exit status; the dmctl command line of the tests; the
 * strategy file read, edited like an editor does, and waited for on both workers. */
int run_cmd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
double num(const cJSON *o, const char *k); /* NAN unless a number */
const char *dmctl(void);
char *read_file(const char *path);
bool write_by_rename(const char *path, const char *text);
char *replace(const char *text, const char *from, const char *to);
bool wait_version(const char *want, int timeout_s);
bool restore_strategy(char *orig);
bool strategy_for_dead_letters(const char *version, char **orig);
/* EUR/USD's hours 2010-2021 published once and written everywhere; 0 if that failed. */
int ensure_h1_loaded(void);

/* The analysis operations' tests (itest_analysis.c). */
extern const itest ANALYSIS_TESTS[];
extern const size_t N_ANALYSIS_TESTS;
/* Service discovery (itest_discovery.c). */
extern const itest DISCOVERY_TESTS[];
extern const size_t N_DISCOVERY_TESTS;
/* The protobuf encoding (itest_protobuf.c). */
extern const itest PROTOBUF_TESTS[];
extern const size_t N_PROTOBUF_TESTS;

#endif
