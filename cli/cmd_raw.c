/* publish-raw: arbitrary bytes to any subject through JetStream, so tests
 * can feed the worker malformed input. Synchronous: one message, one ack. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "codec/enc.h"
#include "codec/pb.h"
#include "commands.h"
#include "input.h"

static natsStatus build_msg(natsMsg **m, const char *subject, const dm_buf *payload,
                            const char *msg_id, const char *content_type)
{
    natsStatus s = natsMsg_Create(m, subject, NULL, payload->data, (int)payload->len);
    if (s == NATS_OK && msg_id && *msg_id)
        s = natsMsgHeader_Set(*m, DM_HDR_MSG_ID, msg_id);
    if (s == NATS_OK && content_type && *content_type)
        s = natsMsgHeader_Set(*m, DM_HDR_CONTENT_TYPE, content_type);
    return s;
}

static int report_publish_error(natsStatus s, jsErrCode jerr)
{
    if (s == NATS_NO_RESPONDERS || jerr == JSStreamNotFoundErr)
        fprintf(stderr, "dmctl: " NO_STREAM_MSG "\n");
    else if (jerr != 0) {
        natsStatus last;
        const char *detail = nats_GetLastError(&last);
        fprintf(stderr, "dmctl: publish rejected by JetStream (error %d): %s\n", (int)jerr,
                detail ? detail : natsStatus_GetText(s));
    } else
        dm_nats_error("publish failed", s);
    return EXIT_FAIL;
}

/* A person reads the label; a script capturing stdout (seq=$(dmctl publish-raw ...)) has
 * always been given the bare sequence, and still is. */
static void print_ack(const jsPubAck *pa, const char *subject, bool quiet)
{
    if (quiet)
        return;
    if (isatty(STDOUT_FILENO))
        printf("published seq %" PRIu64 " on %s (stream %s)\n", pa->Sequence, subject, pa->Stream);
    else
        printf("%" PRIu64 "\n", pa->Sequence);
}

static int publish_raw(natsConnection *nc, const global_opts *g, natsMsg *m, bool quiet)
{
    jsCtx *js = NULL;
    jsOptions jo;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    natsStatus s = jsOptions_Init(&jo);
    if (s == NATS_OK) {
        jo.Wait = g->timeout_ms;
        s = natsConnection_JetStream(&js, nc, &jo);
    }
    if (s != NATS_OK) {
        dm_nats_error("cannot create JetStream context", s);
        return EXIT_FAIL;
    }
    s = js_PublishMsg(&pa, js, m, NULL, &jerr);
    int rc = EXIT_OK;
    if (s != NATS_OK)
        rc = report_publish_error(s, jerr);
    else {
        print_ack(pa, natsMsg_GetSubject(m), quiet);
        if (pa->Duplicate)
            fprintf(stderr, "duplicate: stream %s already had this Nats-Msg-Id (seq %" PRIu64 ")\n",
                    pa->Stream, pa->Sequence);
    }
    jsPubAck_Destroy(pa);
    jsCtx_Destroy(js);
    return rc;
}

/* The JSON payload as the subject's protobuf message, in place. */
static bool json_to_protobuf(const char *subject, dm_buf *payload)
{
    const ProtobufCMessageDescriptor *type = dm_pb_payload_type(subject);
    cJSON *doc = type ? cJSON_ParseWithLength(payload->data, payload->len) : NULL;
    dm_buf pb;
    dm_err err = {0};
    dm_buf_init(&pb);
    dm_code c = doc ? dm_pb_encode(type, doc, &pb, &err) : DM_E_INVALID_JSON;
    if (c != DM_OK)
        fprintf(stderr, "dmctl publish-raw: --protobuf: %s\n",
                !type ? "the subject is not a market.* subject" : !doc ? "PAYLOAD is not JSON" : err.message);
    cJSON_Delete(doc);
    dm_buf_free(payload);
    *payload = pb;
    return c == DM_OK && !pb.oom;
}

int cmd_publish_raw(global_opts *g, int argc, char **argv)
{
    const char *msg_id = NULL, *content_type = DM_CT_JSON;
    bool quiet = false, protobuf = false;
    const arg_spec specs[] = {
        {"msg-id", ARG_STR, &msg_id},
        {"content-type", ARG_STR, &content_type},
        {"protobuf", ARG_FLAG, &protobuf},
        {"quiet", ARG_FLAG, &quiet},
    };
    char *pos[2];
    int npos;
    int r = args_parse(argc, argv, specs, 4, g, pos, 2, &npos);
    if (r == ARGS_HELP) {
        command_usage(argv[0], stdout);
        return EXIT_OK;
    }
    if (r != ARGS_OK)
        return EXIT_USAGE;
    if (npos != 2) {
        fprintf(stderr, "dmctl publish-raw: usage: publish-raw SUBJECT PAYLOAD "
                        "[--msg-id ID] [--content-type T] [--protobuf] [--quiet]\n");
        return EXIT_USAGE;
    }
    dm_buf payload;
    dm_buf_init(&payload);
    natsConnection *nc = NULL;
    natsMsg *m = NULL;
    int rc = EXIT_FAIL;
    if (protobuf)
        content_type = DM_CT_PROTOBUF;
    if (input_read(argv[0], pos[1], &payload) && (!protobuf || json_to_protobuf(pos[0], &payload))) {
        natsStatus s = build_msg(&m, pos[0], &payload, msg_id, content_type);
        if (s != NATS_OK)
            dm_nats_error("cannot build message", s);
        else if (dm_connect(g, &nc) == NATS_OK)
            rc = publish_raw(nc, g, m, quiet);
    }
    natsMsg_Destroy(m);
    dm_disconnect(nc);
    dm_buf_free(&payload);
    return rc;
}
