/* lag: per-consumer backlog of a stream, optionally waiting until every
 * consumer has caught up (how the demo and tests know ingestion finished). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "timeutil.h"

#define POLL_MS 200

typedef enum { LAG_ERROR, LAG_NO_CONSUMERS, LAG_OK } lag_result;

static lag_result fetch_consumers(jsCtx *js, const char *stream, jsConsumerInfoList **list)
{
    jsErrCode jerr = 0;
    *list = NULL;
    natsStatus s = js_Consumers(list, js, stream, NULL, &jerr);
    if (s == NATS_OK)
        return LAG_OK;
    /* NATS_NOT_FOUND means either no stream (error code set) or no consumers */
    if (s == NATS_NOT_FOUND && jerr == 0)
        return LAG_NO_CONSUMERS;
    if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
        if (strcmp(stream, STREAM_NAME) == 0)
            fprintf(stderr, "dmctl: " NO_STREAM_MSG "\n");
        else
            fprintf(stderr, "dmctl: stream %s not found\n", stream);
    } else {
        dm_nats_error("cannot list consumers", s);
    }
    return LAG_ERROR;
}

/* A stream without consumers is not "caught up": the worker has simply not
 * attached yet, and reporting success then would make --wait racy. */
static bool all_caught_up(const jsConsumerInfoList *l)
{
    for (int i = 0; i < l->Count; i++)
        if (l->List[i]->NumPending != 0 || l->List[i]->NumAckPending != 0)
            return false;
    return l->Count > 0;
}

/* The backlog (messages still to deliver or to acknowledge) comes first; the stream
 * sequences after it say how far each consumer got and are no count of anything. */
static void print_table(const char *stream, const jsConsumerInfoList *l)
{
    if (!l || l->Count == 0) {
        printf("stream %s has no consumers\n", stream);
        return;
    }
    int w = (int)strlen("consumer");
    for (int i = 0; i < l->Count; i++)
        if ((int)strlen(l->List[i]->Name) > w)
            w = (int)strlen(l->List[i]->Name);
    printf("%-*s  %-37s  %s\n", w, "", "backlog (messages)", "stream sequence");
    printf("%-*s  %10s  %12s  %11s  %14s  %14s\n", w, "consumer", "pending", "ack_pending",
           "redelivered", "last_delivered", "ack_floor");
    for (int i = 0; i < l->Count; i++) {
        const jsConsumerInfo *c = l->List[i];
        printf("%-*s  %10" PRIu64 "  %12" PRId64 "  %11" PRId64 "  %14" PRIu64 "  %14" PRIu64
               "\n",
               w, c->Name, c->NumPending, c->NumAckPending, c->NumRedelivered, c->Delivered.Stream,
               c->AckFloor.Stream);
    }
}

static int run_lag(jsCtx *js, const char *stream, double wait_s)
{
    double deadline = tu_now_ms() + wait_s * 1000;
    for (;;) {
        jsConsumerInfoList *l = NULL;
        lag_result r = fetch_consumers(js, stream, &l);
        if (r == LAG_ERROR)
            return EXIT_FAIL;
        bool done = l && all_caught_up(l);
        bool expired = tu_now_ms() >= deadline;
        if (wait_s <= 0 || done || expired) {
            print_table(stream, l);
            jsConsumerInfoList_Destroy(l);
            if (wait_s <= 0 || done)
                return EXIT_OK;
            if (r == LAG_NO_CONSUMERS)
                fprintf(stderr, "dmctl lag: stream %s still has no consumers after %g s "
                                "(is a dm-worker running?)\n", stream, wait_s);
            else
                fprintf(stderr, "dmctl lag: consumers of %s still have pending messages "
                                "after %g s\n", stream, wait_s);
            return EXIT_FAIL;
        }
        jsConsumerInfoList_Destroy(l);
        usleep(POLL_MS * 1000);
    }
}

int cmd_lag(global_opts *g, int argc, char **argv)
{
    const char *stream = STREAM_NAME;
    double wait_s = 0;
    const arg_spec specs[] = {
        {"stream", ARG_STR, &stream},
        {"wait", ARG_DBL, &wait_s},
    };
    int npos;
    int r = args_parse(argc, argv, specs, 2, g, NULL, 0, &npos);
    if (r == ARGS_HELP) {
        command_usage(argv[0], stdout);
        return EXIT_OK;
    }
    if (r != ARGS_OK)
        return EXIT_USAGE;
    if (wait_s < 0) {
        fprintf(stderr, "dmctl lag: --wait must be >= 0 seconds\n");
        return EXIT_USAGE;
    }
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    if (dm_connect_js(g, &nc, &js) != NATS_OK)
        return EXIT_FAIL;
    int rc = run_lag(js, stream, wait_s);
    jsCtx_Destroy(js);
    dm_disconnect(nc);
    return rc;
}
