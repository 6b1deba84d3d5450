#include "micro.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/enc.h"
#include "model/names.h"
#include "obs/metrics.h"
#include "util/log.h"

#define N_SUBS 9

static const struct {
    const char *name, *subject;
    dm_op op; /* DM_OP_COUNT: health and metrics, not counted per operation */
} ENDPOINTS[] = {
    {"tick_latest", DM_SUBJ_TICK_LATEST, DM_OP_GET_LATEST_TICK},
    {"candles_latest", DM_SUBJ_CANDLES_LATEST, DM_OP_GET_CANDLES},
    {"candles_history", DM_SUBJ_CANDLES_HISTORY, DM_OP_GET_HISTORICAL},
    {"events", DM_SUBJ_EVENTS, DM_OP_GET_EVENTS},
    {"aggregates", DM_SUBJ_AGGREGATES, DM_OP_COMPUTE_AGGREGATES},
    {"patterns_find", DM_SUBJ_PATTERNS_FIND, DM_OP_FIND_PATTERNS},
    {"patterns_similar", DM_SUBJ_PATTERNS_SIMILAR, DM_OP_SIMILARITY_SEARCH},
    {"correlations", DM_SUBJ_CORRELATIONS, DM_OP_GET_CORRELATIONS},
    {"graph", DM_SUBJ_GRAPH, DM_OP_GRAPH_ANALYSIS},
    {"health", DM_SUBJ_HEALTH, DM_OP_COUNT},
    {"metrics", DM_SUBJ_METRICS, DM_OP_COUNT},
};
#define N_ENDPOINTS (sizeof ENDPOINTS / sizeof *ENDPOINTS)

struct dm_micro {
    dm_bus *bus;
    natsSubscription *subs[N_SUBS];
    char id[24];
    char started[40]; /* RFC 3339, UTC */
};

typedef enum { PING, INFO, STATS } verb;

static void head(dm_enc *e, const dm_micro *m, verb v, size_t extra)
{
    static const char *const TYPES[] = {"io.nats.micro.v1.ping_response", "io.nats.micro.v1.info_response",
                                        "io.nats.micro.v1.stats_response"};
    dm_enc_map(e, 5 + extra);
    dm_enc_key(e, "type"); dm_enc_str(e, TYPES[v]);
    dm_enc_key(e, "name"); dm_enc_str(e, DM_SERVICE_NAME);
    dm_enc_key(e, "id"); dm_enc_str(e, m->id);
    dm_enc_key(e, "version"); dm_enc_str(e, DM_SERVICE_VERSION);
    dm_enc_key(e, "metadata");
    dm_enc_map(e, 0);
    dm_enc_map_end(e);
}

static void endpoint_head(dm_enc *e, size_t i, size_t extra)
{
    dm_enc_map(e, 4 + extra);
    dm_enc_key(e, "name"); dm_enc_str(e, ENDPOINTS[i].name);
    dm_enc_key(e, "subject"); dm_enc_str(e, ENDPOINTS[i].subject);
    dm_enc_key(e, "queue_group"); dm_enc_str(e, DM_QUEUE_GROUP);
    dm_enc_key(e, "metadata"); dm_enc_null(e);
}

static void info(dm_enc *e, const dm_micro *m)
{
    head(e, m, INFO, 2);
    dm_enc_key(e, "description");
    dm_enc_str(e, "Data Manager: market data writes and reads for the trading platform (subjects/README.md)");
    dm_enc_key(e, "endpoints");
    dm_enc_arr(e, N_ENDPOINTS);
    for (size_t i = 0; i < N_ENDPOINTS; i++) {
        endpoint_head(e, i, 0);
        dm_enc_map_end(e);
    }
    dm_enc_arr_end(e);
    dm_enc_map_end(e);
}

static void stats(dm_enc *e, const dm_micro *m)
{
    head(e, m, STATS, 2);
    dm_enc_key(e, "started"); dm_enc_str(e, m->started);
    dm_enc_key(e, "endpoints");
    dm_enc_arr(e, N_ENDPOINTS);
    for (size_t i = 0; i < N_ENDPOINTS; i++) {
        dm_op_snapshot s = {0};
        if (ENDPOINTS[i].op != DM_OP_COUNT)
            dm_metrics_op_snapshot(ENDPOINTS[i].op, &s);
        endpoint_head(e, i, 6);
        dm_enc_key(e, "num_requests"); dm_enc_i64(e, (int64_t)s.count);
        dm_enc_key(e, "num_errors"); dm_enc_i64(e, (int64_t)s.errors);
        dm_enc_key(e, "last_error"); dm_enc_str(e, s.last_error);
        dm_enc_key(e, "processing_time"); dm_enc_i64(e, (int64_t)s.total_ns);
        dm_enc_key(e, "average_processing_time");
        dm_enc_i64(e, s.count ? (int64_t)(s.total_ns / s.count) : 0);
        dm_enc_key(e, "data");
        dm_enc_map(e, 1);
        dm_enc_key(e, "client_errors"); dm_enc_i64(e, (int64_t)s.client_errors);
        dm_enc_map_end(e);
        dm_enc_map_end(e);
    }
    dm_enc_arr_end(e);
    dm_enc_map_end(e);
}

static void on_request(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)sub;
    dm_micro *m = closure;
    const char *subject = natsMsg_GetSubject(msg), *reply = natsMsg_GetReply(msg);
    verb v = strncmp(subject, "$SRV.PING", 9) == 0 ? PING : strncmp(subject, "$SRV.INFO", 9) == 0 ? INFO : STATS;
    if (reply && *reply) {
        dm_buf b;
        dm_enc e;
        dm_buf_init(&b);
        dm_enc_init(&e, DM_ENC_JSON, &b);
        if (v == PING) {
            head(&e, m, PING, 0);
            dm_enc_map_end(&e);
        } else if (v == INFO) {
            info(&e, m);
        } else {
            stats(&e, m);
        }
        if (!b.oom)
            natsConnection_Publish(nc, reply, b.data, (int)b.len);
        dm_buf_free(&b);
    }
    natsMsg_Destroy(msg);
}

/* A base62 id, like the nuids services use: unique enough among a cluster's workers. */
static void new_id(char *out, size_t n)
{
    static const char A[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    unsigned long long x = (unsigned long long)time(NULL) ^ ((unsigned long long)rand() << 20) ^
                           ((unsigned long long)clock() << 40);
    for (size_t i = 0; i + 1 < n; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL + (unsigned long long)rand();
        out[i] = A[(x >> 33) % 62];
    }
    out[n - 1] = '\0';
}

dm_micro *dm_micro_start(dm_bus *bus, dm_err *err)
{
    dm_micro *m = calloc(1, sizeof *m);
    if (m == NULL) {
        dm_fail(err, DM_E_INTERNAL, "", "out of memory");
        return NULL;
    }
    m->bus = bus;
    new_id(m->id, 23);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(m->started, sizeof m->started, "%Y-%m-%dT%H:%M:%SZ", &tm);
    static const char *const VERBS[] = {"PING", "INFO", "STATS"};
    for (int v = 0, k = 0; v < 3; v++) {
        char subj[3][96];
        snprintf(subj[0], sizeof subj[0], "$SRV.%s", VERBS[v]);
        snprintf(subj[1], sizeof subj[1], "$SRV.%s.%s", VERBS[v], DM_SERVICE_NAME);
        snprintf(subj[2], sizeof subj[2], "$SRV.%s.%s.%s", VERBS[v], DM_SERVICE_NAME, m->id);
        for (int i = 0; i < 3; i++, k++) {
            natsStatus s = natsConnection_Subscribe(&m->subs[k], dm_bus_reply_conn(bus), subj[i], on_request, m);
            if (s != NATS_OK) {
                dm_fail(err, DM_E_UNAVAILABLE, "", "subscribe %s: %s", subj[i], natsStatus_GetText(s));
                dm_micro_stop(m);
                return NULL;
            }
        }
    }
    return m;
}

void dm_micro_stop(dm_micro *m)
{
    if (m == NULL)
        return;
    /* Drained, so no callback still holds m when it is freed. */
    for (int i = 0; i < N_SUBS; i++)
        if (m->subs[i] && natsSubscription_Drain(m->subs[i]) == NATS_OK)
            natsSubscription_WaitForDrainCompletion(m->subs[i], 2000);
    for (int i = 0; i < N_SUBS; i++)
        natsSubscription_Destroy(m->subs[i]);
    free(m);
}

const char *dm_micro_id(const dm_micro *m)
{
    return m->id;
}
