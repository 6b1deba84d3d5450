/* Server tests of what platform teams use around the data: service discovery (the NATS
 * micro protocol's $SRV requests, as `nats micro ls` and `nats micro stats dm` send them,
 * and the error headers on replies) and dmctl's exports and publish verdicts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static int count_lines(const char *text)
{
    int n = 0;
    for (const char *p = text; p && *p; p++)
        n += *p == '\n';
    return n;
}

/* The index of `name` among the CSV header's comma-separated names, or -1. */
static int column(const char *header, const char *name)
{
    int i = 0;
    for (const char *p = header; p && *p && *p != '\n'; i++) {
        size_t len = strcspn(p, ",\n");
        if (len == strlen(name) && strncmp(p, name, len) == 0)
            return i;
        p += len + (p[len] == ',');
    }
    return -1;
}

static const char *field(const char *line, int k)
{
    for (; k > 0 && line; k--) {
        line = strpbrk(line, ",\n");
        line = line && *line == ',' ? line + 1 : NULL;
    }
    return line;
}

static void dmctl_exports_a_paged_range_as_csv_and_json_lines(void)
{
    CHECK(ensure_h1_loaded(), "EUR/USD's hours could not be loaded");
    const char *q = "'{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"start_date\":\"2015-01-01\","
                    "\"end_date\":\"2015-03-01\",\"page_size\":300}'";
    char json_path[] = "/tmp/dm-itest-export-XXXXXX", csv_path[] = "/tmp/dm-itest-export-XXXXXX";
    int fj = mkstemp(json_path), fc = mkstemp(csv_path);
    CHECK(fj >= 0 && fc >= 0, "no temporary files");
    close(fj), close(fc);
    int rj = run_cmd("%s query dm.v1.candles.history %s --all --json >%s 2>/dev/null", dmctl(), q, json_path);
    int rc = run_cmd("%s query dm.v1.candles.history %s --all --csv >%s 2>/dev/null", dmctl(), q, csv_path);
    char *lines = read_file(json_path), *csv = read_file(csv_path);
    unlink(json_path), unlink(csv_path);
    int rows = count_lines(lines), csv_lines = count_lines(csv);
    cJSON *first = lines ? cJSON_Parse(strtok(lines, "\n")) : NULL;
    int ts = column(csv, "timestamp"), close_at = column(csv, "close");
    const char *row1 = csv ? strchr(csv, '\n') : NULL;
    bool same_first = first && row1 && ts >= 0 && close_at >= 0 &&
                      strtod(field(row1 + 1, ts), NULL) == num(first, "timestamp") &&
                      strtod(field(row1 + 1, close_at), NULL) == num(first, "close");
    cJSON_Delete(first);
    free(lines), free(csv);
    CHECK(rj == 0 && rc == 0, "dmctl exit status %d (--json), %d (--csv)", rj, rc);
    /* Two months of hours over several pages of 300. */
    CHECK(rows > 900, "only %d JSON lines for January and February 2015", rows);
    CHECK(csv_lines == rows + 1, "CSV has %d lines for %d rows (want a header and one line each)", csv_lines,
          rows);
    CHECK(same_first, "the CSV's first row is not the JSON lines' first row (columns timestamp %d, close %d)", ts,
          close_at);
}

/* A publish dmctl itself finds valid may still be dead-lettered by a worker (here PostgreSQL
 * is down and max_deliveries is 2): dmctl says so and exits 3. */
static void dmctl_publish_says_when_a_worker_dead_lettered_it(void)
{
    char *orig = NULL;
    bool edited = strategy_for_dead_letters("dlq-cli", &orig);
    char m1[] = "/tmp/dm-itest-m1-XXXXXX", err[] = "/tmp/dm-itest-err-XXXXXX";
    int fm = mkstemp(m1), fe = mkstemp(err);
    if (fm >= 0) {
        const char *text = "Date,Open,High,Low,Close,Volume\n2026.01.05 10:00,1.1,1.2,1.0,1.15,10\n";
        bool w = write(fm, text, strlen(text)) == (ssize_t)strlen(text);
        (void)w;
        close(fm);
    }
    if (fe >= 0)
        close(fe);
    bool stopped = edited && run_cmd("%s/deploy/stack.sh stop-service postgres >/dev/null 2>&1", DM_SOURCE_DIR) == 0;
    int rc = stopped ? run_cmd("%s publish-ticks --symbol DLC/USD --file %s --per-minute 1 --quiet >/dev/null 2>%s",
                               dmctl(), m1, err)
                     : -1;
    bool started = run_cmd("%s/deploy/stack.sh start-service postgres >/dev/null 2>&1", DM_SOURCE_DIR) == 0;
    bool restored = restore_strategy(orig);
    char *said = read_file(err);
    unlink(m1), unlink(err);
    bool told = said && strstr(said, "dead-lettered") && strstr(said, "max_deliveries");
    char shown[300];
    snprintf(shown, sizeof shown, "%.280s", said ? said : "(nothing)");
    free(said);
    CHECK(edited && stopped && started && restored, "strategy edit or PostgreSQL stop/start failed");
    CHECK(rc == 3, "dmctl publish-ticks exited %d (want 3: dead-lettered); it said: %s", rc, shown);
    CHECK(told, "dmctl did not say what was dead-lettered and why: %s", shown);
    CHECK(wait_idle(60), "the consumers did not catch up after PostgreSQL came back");
}

const itest DISCOVERY_TESTS[] = {
    {"every_worker_answers_service_discovery", every_worker_answers_service_discovery},
    {"error_replies_carry_the_service_error_headers", error_replies_carry_the_service_error_headers},
    {"dmctl_exports_a_paged_range_as_csv_and_json_lines", dmctl_exports_a_paged_range_as_csv_and_json_lines},
    {"dmctl_publish_says_when_a_worker_dead_lettered_it", dmctl_publish_says_when_a_worker_dead_lettered_it},
};
const size_t N_DISCOVERY_TESTS = sizeof DISCOVERY_TESTS / sizeof *DISCOVERY_TESTS;
