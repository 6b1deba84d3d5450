/* dlq: lists the dead letters held in stream DLQ and replays them into MARKET.
 *
 * A dead letter keeps the original payload and says in headers why it was dropped
 * (Dm-Reason, Dm-Code, Dm-Field), where it came from (Dm-Original-Subject,
 * Dm-Stream-Seq), which consumer dropped it (Dm-Consumer, Dm-Backend) and after how
 * many deliveries (Dm-Delivered). Replay publishes the payload to its original subject:
 * every backend's consumer sees it again, which is harmless since writes are upserts. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "args.h"
#include "commands.h"

#define DLQ_STREAM DM_STREAM_DLQ

typedef struct {
    const char *kind; /* NULL: all */
    int64_t seq;      /* 0: all */
    int64_t limit;
    bool json, keep;
} dlq_opts;

static const char *header(natsMsg *m, const char *key)
{
    const char *v = NULL;
    return natsMsgHeader_Get(m, key, &v) == NATS_OK && v ? v : "";
}

static bool wanted(natsMsg *m, const dlq_opts *o)
{
    char subject[64];
    if (o->kind == NULL)
        return true;
    snprintf(subject, sizeof subject, DM_SUBJ_DLQ_FMT, o->kind);
    return strcmp(natsMsg_GetSubject(m), subject) == 0;
}

static void print_json(natsMsg *m, uint64_t seq)
{
    static const char *const keys[] = {DM_HDR_REASON,           DM_HDR_CODE,       DM_HDR_FIELD,
                                       DM_HDR_ORIGINAL_SUBJECT, DM_HDR_STREAM_SEQ, DM_HDR_CONSUMER,
                                       DM_HDR_BACKEND,          DM_HDR_DELIVERED,  DM_HDR_INDEX,
                                       DM_HDR_CONTENT_TYPE};
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "seq", (double)seq);
    cJSON_AddStringToObject(o, "subject", natsMsg_GetSubject(m));
    cJSON *h = cJSON_AddObjectToObject(o, "headers");
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (*header(m, keys[i]))
            cJSON_AddStringToObject(h, keys[i], header(m, keys[i]));
    /* Payloads are JSON or msgpack: msgpack is shown as its length only. */
    int len = natsMsg_GetDataLength(m);
    char *text = strndup(natsMsg_GetData(m), (size_t)len);
    cJSON *doc = text ? cJSON_ParseWithLength(text, (size_t)len) : NULL;
    if (doc)
        cJSON_AddItemToObject(o, "payload", doc);
    else
        cJSON_AddNumberToObject(o, "payload_bytes", len);
    free(text);
    char *out = cJSON_PrintUnformatted(o);
    if (out)
        puts(out);
    free(out);
    cJSON_Delete(o);
}

static void print_row(natsMsg *m, uint64_t seq)
{
    printf("%8" PRIu64 "  %-16s  %-26s  %-12s  %4s  %-16s  %s\n", seq, natsMsg_GetSubject(m),
           header(m, DM_HDR_ORIGINAL_SUBJECT),
           *header(m, DM_HDR_BACKEND) ? header(m, DM_HDR_BACKEND) : "-", header(m, DM_HDR_DELIVERED),
           header(m, DM_HDR_CODE), header(m, DM_HDR_REASON));
}

static bool replay_one(jsCtx *js, natsMsg *m, uint64_t seq, bool keep)
{
    const char *subject = header(m, DM_HDR_ORIGINAL_SUBJECT);
    if (strncmp(subject, DM_SUBJ_MARKET_PREFIX, strlen(DM_SUBJ_MARKET_PREFIX)) != 0) {
        fprintf(stderr, "dmctl dlq: entry %" PRIu64 " has no original market.* subject: skipped\n",
                seq);
        return false;
    }
    natsMsg *out = NULL;
    natsStatus s =
        natsMsg_Create(&out, subject, NULL, natsMsg_GetData(m), natsMsg_GetDataLength(m));
    char id[64];
    /* One id per entry: replaying the same entry twice within the dedupe window stores it once. */
    snprintf(id, sizeof id, "dlq-replay:%" PRIu64, seq);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(out, DM_HDR_MSG_ID, id);
    if (s == NATS_OK && *header(m, DM_HDR_CONTENT_TYPE))
        s = natsMsgHeader_Set(out, DM_HDR_CONTENT_TYPE, header(m, DM_HDR_CONTENT_TYPE));
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    if (s == NATS_OK)
        s = js_PublishMsg(&pa, js, out, NULL, &jerr);
    natsMsg_Destroy(out);
    if (s != NATS_OK) {
        fprintf(stderr, "dmctl dlq: replay of %" PRIu64 " to %s failed: %s (%d)\n", seq, subject,
                natsStatus_GetText(s), (int)jerr);
        return false;
    }
    printf("replayed %" PRIu64 " -> %s seq %" PRIu64 "%s\n", seq, subject, pa->Sequence,
           pa->Duplicate ? " (duplicate)" : "");
    jsPubAck_Destroy(pa);
    if (!keep && js_DeleteMsg(js, DLQ_STREAM, seq, NULL, &jerr) != NATS_OK)
        fprintf(stderr, "dmctl dlq: entry %" PRIu64 " replayed but not deleted\n", seq);
    return true;
}

/* Walks the stream by sequence: the DLQ is small and rarely read, and a direct read
 * leaves no consumer behind. */
static int walk(jsCtx *js, const dlq_opts *o, bool replay)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, js, DLQ_STREAM, NULL, &jerr);
    if (s != NATS_OK) {
        fprintf(stderr, "dmctl dlq: stream DLQ not found: is a dm-worker running? (%s)\n",
                natsStatus_GetText(s));
        return EXIT_FAIL;
    }
    uint64_t first = si->State.FirstSeq, last = si->State.LastSeq, held = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    if (o->seq > 0)
        first = last = (uint64_t)o->seq;
    if (!replay && !o->json)
        printf("%8s  %-16s  %-26s  %-12s  %4s  %-16s  %s\n", "seq", "subject", "original subject",
               "backend", "dlv", "code", "reason");
    int64_t shown = 0, failed = 0;
    for (uint64_t seq = first; held > 0 && seq <= last && (o->limit <= 0 || shown < o->limit);
         seq++) {
        natsMsg *m = NULL;
        s = js_GetMsg(&m, js, DLQ_STREAM, seq, NULL, &jerr);
        if (s == NATS_NOT_FOUND)
            continue; /* deleted (replayed) or expired */
        if (s != NATS_OK) {
            fprintf(stderr, "dmctl dlq: cannot read entry %" PRIu64 ": %s\n", seq,
                    natsStatus_GetText(s));
            return EXIT_FAIL;
        }
        if (wanted(m, o)) {
            shown++;
            if (replay)
                failed += !replay_one(js, m, seq, o->keep);
            else if (o->json)
                print_json(m, seq);
            else
                print_row(m, seq);
        }
        natsMsg_Destroy(m);
    }
    if (o->seq > 0 && shown == 0) {
        fprintf(stderr, "dmctl dlq: no entry %" PRId64 "%s%s\n", o->seq, o->kind ? " of kind " : "",
                o->kind ? o->kind : "");
        return EXIT_FAIL;
    }
    if (!o->json)
        fprintf(stderr, "%" PRId64 " dead letter(s) %s, %" PRIu64 " held in DLQ before\n", shown,
                replay ? "replayed" : "listed", held);
    return failed ? EXIT_FAIL : EXIT_OK;
}

int cmd_dlq(global_opts *g, int argc, char **argv)
{
    dlq_opts o = {0};
    bool all = false;
    const arg_spec specs[] = {
        {"kind", ARG_STR, &o.kind},  {"seq", ARG_INT, &o.seq},    {"limit", ARG_INT, &o.limit},
        {"json", ARG_FLAG, &o.json}, {"keep", ARG_FLAG, &o.keep}, {"all", ARG_FLAG, &all},
    };
    char *pos[1] = {0};
    int npos = 0;
    int r = args_parse(argc, argv, specs, 6, g, pos, 1, &npos);
    if (r == ARGS_HELP) {
        command_usage(argv[0], stdout);
        return EXIT_OK;
    }
    if (r != ARGS_OK)
        return EXIT_USAGE;
    bool replay = npos == 1 && strcmp(pos[0], "replay") == 0;
    if (npos != 1 || (!replay && strcmp(pos[0], "list") != 0)) {
        fprintf(stderr, "dmctl dlq: say list or replay (see dmctl dlq --help)\n");
        return EXIT_USAGE;
    }
    if (o.kind && strcmp(o.kind, "tick") && strcmp(o.kind, "candle") && strcmp(o.kind, "candles") &&
        strcmp(o.kind, "event")) {
        fprintf(stderr, "dmctl dlq: --kind must be tick, candle, candles or event\n");
        return EXIT_USAGE;
    }
    if (o.seq < 0 || o.limit < 0) {
        fprintf(stderr, "dmctl dlq: --seq and --limit must be positive\n");
        return EXIT_USAGE;
    }
    if (replay && o.seq == 0 && !all) {
        fprintf(stderr, "dmctl dlq replay: give --seq N for one entry or --all\n");
        return EXIT_USAGE;
    }
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    if (dm_connect_js(g, &nc, &js) != NATS_OK)
        return EXIT_FAIL;
    int rc = walk(js, &o, replay);
    jsCtx_Destroy(js);
    dm_disconnect(nc);
    return rc;
}
