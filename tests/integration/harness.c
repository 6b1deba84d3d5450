#include "harness.h"

#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../worker/codec/doc.h"

natsConnection *g_nc;
jsCtx *g_js;
const char *g_failure;
static char g_failure_buf[1024];

void check_failed(const char *file, int line, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(g_failure_buf, sizeof g_failure_buf, "%s:%d: %s", file, line, msg);
    g_failure = g_failure_buf;
}

const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

static void pack(msgpack_packer *pk, const cJSON *v)
{
    if (cJSON_IsObject(v)) {
        msgpack_pack_map(pk, (size_t)cJSON_GetArraySize(v));
        const cJSON *it;
        cJSON_ArrayForEach(it, v)
        {
            msgpack_pack_str(pk, strlen(it->string));
            msgpack_pack_str_body(pk, it->string, strlen(it->string));
            pack(pk, it);
        }
    } else if (cJSON_IsArray(v)) {
        msgpack_pack_array(pk, (size_t)cJSON_GetArraySize(v));
        const cJSON *it;
        cJSON_ArrayForEach(it, v) pack(pk, it);
    } else if (cJSON_IsString(v)) {
        msgpack_pack_str(pk, strlen(v->valuestring));
        msgpack_pack_str_body(pk, v->valuestring, strlen(v->valuestring));
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d == (double)(long long)d && d > -9e15 && d < 9e15)
            msgpack_pack_int64(pk, (long long)d);
        else
            msgpack_pack_double(pk, d);
    } else if (cJSON_IsBool(v)) {
        cJSON_IsTrue(v) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    } else {
        msgpack_pack_nil(pk);
    }
}

char *msgpack_from_json(const char *json, int *len)
{
    cJSON *root = cJSON_Parse(json);
    if (root == NULL)
        return NULL;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack(&pk, root);
    cJSON_Delete(root);
    *len = (int)sb.size;
    return sb.data; /* free() releases an sbuffer's data */
}

bool request_raw(const char *subject, const void *data, int len, const char *content_type,
                 reply *out)
{
    memset(out, 0, sizeof *out);
    natsMsg *m = NULL, *r = NULL;
    natsMsg_Create(&m, subject, NULL, data, len);
    if (content_type)
        natsMsgHeader_Set(m, "Content-Type", content_type);
    natsStatus s = natsConnection_RequestMsg(&r, g_nc, m, 10000);
    natsMsg_Destroy(m);
    if (s != NATS_OK)
        return false;
    out->raw_len = natsMsg_GetDataLength(r);
    out->raw = malloc((size_t)out->raw_len + 1);
    memcpy(out->raw, natsMsg_GetData(r), (size_t)out->raw_len);
    out->raw[out->raw_len] = '\0';
    const char *st = NULL, *ct = NULL;
    out->status = natsMsgHeader_Get(r, "Status", &st) == NATS_OK ? atoi(st) : 200;
    natsMsgHeader_Get(r, "Content-Type", &ct);
    dm_err err = {0};
    dm_encoding enc = dm_doc_detect(ct, out->raw, (size_t)out->raw_len);
    dm_doc_parse(out->raw, (size_t)out->raw_len, enc, 64u << 20, &out->body, &err);
    natsMsg_Destroy(r);
    return out->body != NULL;
}

bool request(const char *subject, const char *json, bool msgpack, reply *out)
{
    if (!msgpack)
        return request_raw(subject, json, (int)strlen(json), "application/json", out);
    int len = 0;
    char *mp = msgpack_from_json(json, &len);
    bool ok = mp && request_raw(subject, mp, len, "application/msgpack", out);
    free(mp);
    return ok;
}

void reply_free(reply *r)
{
    cJSON_Delete(r->body);
    free(r->raw);
    memset(r, 0, sizeof *r);
}

uint64_t publish(const char *subject, const void *data, int len, const char *content_type,
                 const char *msg_id)
{
    natsMsg *m = NULL;
    natsMsg_Create(&m, subject, NULL, data, len);
    if (content_type)
        natsMsgHeader_Set(m, "Content-Type", content_type);
    if (msg_id)
        natsMsgHeader_Set(m, "Nats-Msg-Id", msg_id);
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_PublishMsg(&pa, g_js, m, NULL, &jerr);
    natsMsg_Destroy(m);
    uint64_t seq = s == NATS_OK ? pa->Sequence : 0;
    jsPubAck_Destroy(pa);
    return seq;
}

uint64_t publish_json(const char *subject, const char *json, const char *msg_id)
{
    return publish(subject, json, (int)strlen(json), "application/json", msg_id);
}

bool wait_idle(int timeout_s) { return wait_idle_except(timeout_s, NULL); }

bool wait_idle_except(int timeout_s, const char *skip)
{
    for (int i = 0; i < timeout_s * 10; i++) {
        jsConsumerInfoList *list = NULL;
        jsErrCode jerr = 0;
        bool idle = false;
        if (js_Consumers(&list, g_js, "MARKET", NULL, &jerr) == NATS_OK) {
            idle = true;
            for (int k = 0; k < list->Count; k++) {
                jsConsumerInfo *ci = list->List[k];
                if (skip && ci->Name && strcmp(ci->Name, skip) == 0)
                    continue;
                if (ci->NumPending > 0 || ci->NumAckPending > 0)
                    idle = false;
            }
            jsConsumerInfoList_Destroy(list);
        }
        if (idle)
            return true;
        usleep(100000);
    }
    return false;
}

static PGconn *pg_conn; /* the test's own connection; main thread only */

static PGconn *pg(void)
{
    PGconn *conn = pg_conn;
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        if (conn)
            PQfinish(conn);
        const char *keys[] = {"host", "port", "dbname", "user", "password", NULL};
        const char *vals[] = {"127.0.0.1", env_or("DM_PG_PORT", "25432"), "dm", "dm",
                              env_or("DM_PG_PASSWORD", ""), NULL};
        conn = pg_conn = PQconnectdbParams(keys, vals, 0);
    }
    return conn;
}

long long pg_count(const char *sql, const char *param)
{
    const char *vals[1] = {param};
    PGresult *r = PQexecParams(pg(), sql, param ? 1 : 0, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        /* The server may have restarted under the test (an outage test): connect again. */
        PQclear(r);
        PQfinish(pg_conn);
        pg_conn = NULL;
        r = PQexecParams(pg(), sql, param ? 1 : 0, NULL, vals, NULL, NULL, 0);
    }
    long long n = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        n = atoll(PQgetvalue(r, 0, 0));
    else
        fprintf(stderr, "pg: %s", PQresultErrorMessage(r));
    PQclear(r);
    return n;
}

void *pg_query(const char *sql, const char *param)
{
    const char *vals[1] = {param};
    PGresult *r = PQexecParams(pg(), sql, param ? 1 : 0, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "pg: %s", PQresultErrorMessage(r));
        PQclear(r);
        return NULL;
    }
    return r;
}

/* The stack's Redis asks for its password (DM_REDIS_PASSWORD from stack.sh env). */
static redisContext *redis_open(void)
{
    redisContext *c = redisConnect("127.0.0.1", atoi(env_or("DM_REDIS_PORT", "26379")));
    if (c == NULL || c->err) {
        redisFree(c);
        return NULL;
    }
    const char *pw = env_or("DM_REDIS_PASSWORD", "");
    if (*pw) {
        redisReply *r = redisCommand(c, "AUTH %s", pw);
        bool ok = r && r->type != REDIS_REPLY_ERROR;
        freeReplyObject(r);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

int redis_del(const char *key)
{
    redisContext *c = redis_open();
    if (c == NULL)
        return -1;
    redisReply *r = redisCommand(c, "DEL %s", key);
    int n = r && r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -1;
    freeReplyObject(r);
    redisFree(c);
    return n;
}

int dlq_count(uint64_t seq, char *reason, size_t cap)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    if (js_GetStreamInfo(&si, g_js, "DLQ", NULL, &jerr) != NATS_OK)
        return -1;
    uint64_t first = si->State.FirstSeq, last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    char want[24];
    snprintf(want, sizeof want, "%llu", (unsigned long long)seq);
    int n = 0;
    if (reason && cap)
        reason[0] = '\0';
    for (uint64_t s = first; s <= last && s > 0; s++) {
        natsMsg *m = NULL;
        if (js_GetMsg(&m, g_js, "DLQ", s, NULL, &jerr) != NATS_OK)
            continue;
        const char *v = NULL, *why = NULL;
        if (natsMsgHeader_Get(m, "Dm-Stream-Seq", &v) == NATS_OK && strcmp(v, want) == 0) {
            if (n++ == 0 && reason && natsMsgHeader_Get(m, "Dm-Reason", &why) == NATS_OK)
                snprintf(reason, cap, "%s", why);
        }
        natsMsg_Destroy(m);
    }
    return n;
}

int redis_exists(const char *key)
{
    redisContext *c = redis_open();
    if (c == NULL)
        return -1;
    redisReply *r = redisCommand(c, "EXISTS %s", key);
    int n = r && r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -1;
    freeReplyObject(r);
    redisFree(c);
    return n;
}

long long ch_count(const char *sql)
{
    char cmd[1024];
    /* The SQL here is the test's own constant text, never data. */
    /* The user and password travel in headers the shell expands from the environment. */
    snprintf(cmd, sizeof cmd,
             "curl -sf -H \"X-ClickHouse-User: $DM_CH_USER\" -H \"X-ClickHouse-Key: $DM_CH_PASSWORD\" "
             "--data-binary \"%s\" '%s/'",
             sql, env_or("DM_CH_URL", "http://127.0.0.1:28123"));
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    long long n = -1;
    if (fscanf(p, "%lld", &n) != 1)
        n = -1;
    pclose(p);
    return n;
}
