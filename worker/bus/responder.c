#include "responder.h"

#include <stdio.h>
#include <stdlib.h>

#include "bus/msg_done.h"
#include "util/log.h"

#define DM_SUBJ_REQUESTS "dm.v1.>"

struct dm_responder {
    dm_bus *bus;
    dm_serve *serve;
    natsSubscription *sub;
    /* Only the subscription's delivery thread touches these. */
    dm_reply reply; /* reused */
    dm_done done;
};

static void on_request(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)sub;
    dm_responder *r = closure;
    const char *reply_to = natsMsg_GetReply(msg);
    if (reply_to == NULL || *reply_to == '\0') {
        dm_done_add(&r->done, msg); /* nobody is waiting for an answer */
        return;
    }
    const char *ct = NULL, *accept = NULL;
    if (natsMsgHeader_Get(msg, DM_HDR_CONTENT_TYPE, &ct) != NATS_OK)
        ct = NULL;
    if (natsMsgHeader_Get(msg, DM_HDR_ACCEPT, &accept) != NATS_OK)
        accept = NULL;
    dm_serve_handle_accept(r->serve, natsMsg_GetSubject(msg), natsMsg_GetData(msg),
                           (size_t)natsMsg_GetDataLength(msg), ct, accept, &r->reply);
    natsMsg *out = NULL;
    char status[8];
    snprintf(status, sizeof status, "%d", r->reply.status);
    natsStatus s = natsMsg_Create(&out, reply_to, NULL, r->reply.body.data, (int)r->reply.body.len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(out, "Content-Type", dm_content_type(r->reply.enc));
    if (s == NATS_OK)
        s = natsMsgHeader_Set(out, "Status", status);
    /* Which worker answered: for an operator tracing an odd answer to its cache. */
    if (s == NATS_OK && r->bus->name[0])
        s = natsMsgHeader_Set(out, "Dm-Worker", r->bus->name);
    /* The micro protocol's error headers, beside the contract's own error body. */
    if (s == NATS_OK && r->reply.status >= 400)
        s = natsMsgHeader_Set(out, "Nats-Service-Error", r->reply.error);
    if (s == NATS_OK && r->reply.status >= 400)
        s = natsMsgHeader_Set(out, "Nats-Service-Error-Code", status);
    if (s == NATS_OK)
        s = natsConnection_PublishMsg(nc, out);
    if (s != NATS_OK)
        DM_WARN("serve", "reply to %s failed: %s", natsMsg_GetSubject(msg), natsStatus_GetText(s));
    dm_done_add(&r->done, out);
    dm_done_add(&r->done, msg);
}

dm_responder *dm_responder_start(dm_bus *bus, dm_serve *serve, dm_err *err)
{
    dm_responder *r = calloc(1, sizeof *r);
    if (r == NULL) {
        dm_serve_destroy(serve);
        dm_fail(err, DM_E_INTERNAL, "", "out of memory");
        return NULL;
    }
    r->bus = bus;
    r->serve = serve;
    dm_buf_init(&r->reply.body);
    /* Replies go out on the connection the request came in on (on_request's nc). */
    natsStatus s = natsConnection_QueueSubscribe(&r->sub, dm_bus_reply_conn(bus), DM_SUBJ_REQUESTS,
                                                 DM_QUEUE_GROUP, on_request, r);
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(r->sub, 100000, 256 * 1024 * 1024);
    if (s != NATS_OK) {
        dm_fail(err, DM_E_UNAVAILABLE, "", "subscribe %s: %s", DM_SUBJ_REQUESTS, natsStatus_GetText(s));
        dm_responder_destroy(r);
        return NULL;
    }
    return r;
}

void dm_responder_destroy(dm_responder *r)
{
    if (r == NULL)
        return;
    if (r->sub) {
        if (natsSubscription_Drain(r->sub) == NATS_OK)
            natsSubscription_WaitForDrainCompletion(r->sub, 10000);
        natsSubscription_Destroy(r->sub);
    }
    dm_done_release(&r->done); /* the delivery thread is gone */
    dm_serve_destroy(r->serve);
    dm_buf_free(&r->reply.body);
    free(r);
}
