/* Server tests of service discovery: the NATS micro protocol's $SRV requests, as
 * `nats micro ls` and `nats micro stats dm` send them, and the error headers on replies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Sends one request to `subject` and gathers every answer that comes within wait_ms. */
static int gather(const char *subject, cJSON **out, int max, int wait_ms)
{
    char inbox[64];
    natsSubscription *sub = NULL;
    snprintf(inbox, sizeof inbox, "_INBOX.disc%d", rand());
    if (natsConnection_SubscribeSync(&sub, g_nc, inbox) != NATS_OK)
        return -1;
    natsConnection_PublishRequestString(g_nc, subject, inbox, "");
    int n = 0;
    natsMsg *m = NULL;
    while (n < max && natsSubscription_NextMsg(&m, sub, wait_ms) == NATS_OK) {
        out[n++] = cJSON_ParseWithLength(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
        natsMsg_Destroy(m);
    }
    natsSubscription_Destroy(sub);
    return n;
}

static void free_all(cJSON **v, int n)
{
    for (int i = 0; i < n; i++)
        cJSON_Delete(v[i]);
}

static const char *s_of(const cJSON *o, const char *k)
{
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
    return v ? v : "";
}

static void every_worker_answers_service_discovery(void)
{
    cJSON *r[8] = {0};
    int n = gather("$SRV.PING.dm", r, 8, 500);
    bool ok = n == 2 && strcmp(s_of(r[0], "type"), "io.nats.micro.v1.ping_response") == 0 &&
              strcmp(s_of(r[0], "name"), "dm") == 0 && strcmp(s_of(r[0], "id"), s_of(r[1], "id")) != 0 &&
              strcmp(s_of(r[0], "version"), "0.1.0") == 0;
    char id[64], first[300];
    snprintf(id, sizeof id, "%s", n > 0 ? s_of(r[0], "id") : "");
    char *p = n > 0 ? cJSON_PrintUnformatted(r[0]) : NULL;
    snprintf(first, sizeof first, "%s", p ? p : "");
    free(p);
    free_all(r, n);
    CHECK(ok, "$SRV.PING.dm: %d answers (want one per worker, 2), first %s", n, first);

    char subject[128];
    snprintf(subject, sizeof subject, "$SRV.INFO.dm.%s", id);
    n = gather(subject, r, 8, 500);
    const cJSON *eps = n == 1 ? cJSON_GetObjectItemCaseSensitive(r[0], "endpoints") : NULL, *ep;
    bool found = false;
    cJSON_ArrayForEach(ep, eps)
        found = found || (strcmp(s_of(ep, "name"), "candles_latest") == 0 &&
                          strcmp(s_of(ep, "subject"), "dm.v1.candles.latest") == 0 &&
                          strcmp(s_of(ep, "queue_group"), "dm") == 0);
    ok = n == 1 && strcmp(s_of(r[0], "type"), "io.nats.micro.v1.info_response") == 0 && found &&
         cJSON_GetArraySize(eps) == 11;
    free_all(r, n);
    CHECK(ok, "%s: %d answers, candles_latest endpoint %s", subject, n, found ? "found" : "missing");

    for (int i = 0; i < 4; i++) { /* requests to count, whichever worker takes them */
        reply q;
        if (request("dm.v1.candles.latest", "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\"}", false, &q))
            reply_free(&q);
    }
    n = gather("$SRV.STATS.dm", r, 8, 500);
    long long requests = 0;
    for (int i = 0; i < n; i++)
        cJSON_ArrayForEach(ep, cJSON_GetObjectItemCaseSensitive(r[i], "endpoints"))
            if (strcmp(s_of(ep, "name"), "candles_latest") == 0)
                requests += (long long)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(ep, "num_requests"));
    ok = n == 2 && strcmp(s_of(r[0], "type"), "io.nats.micro.v1.stats_response") == 0 &&
         strlen(s_of(r[0], "started")) == 20 && requests > 0;
    free_all(r, n);
    CHECK(ok, "$SRV.STATS.dm: %d answers, %lld candles_latest requests counted", n, requests);
}

static void error_replies_carry_the_service_error_headers(void)
{
    natsMsg *reply = NULL;
    natsStatus s = natsConnection_RequestString(&reply, g_nc, "dm.v1.candles.latest", "{\"symbol\":\"EUR/USD\"}", 5000);
    const char *code = NULL, *text = NULL;
    if (s == NATS_OK) {
        natsMsgHeader_Get(reply, "Nats-Service-Error-Code", &code);
        natsMsgHeader_Get(reply, "Nats-Service-Error", &text);
    }
    bool ok = s == NATS_OK && code && strcmp(code, "400") == 0 && text && strstr(text, "timeframe");
    char got[200];
    snprintf(got, sizeof got, "%s / %s", code ? code : "(none)", text ? text : "(none)");
    natsMsg_Destroy(reply);
    CHECK(ok, "error reply headers: %s", got);
}

const itest DISCOVERY_TESTS[] = {
    {"every_worker_answers_service_discovery", every_worker_answers_service_discovery},
    {"error_replies_carry_the_service_error_headers", error_replies_carry_the_service_error_headers},
};
const size_t N_DISCOVERY_TESTS = sizeof DISCOVERY_TESTS / sizeof *DISCOVERY_TESTS;
