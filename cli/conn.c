#include "conn.h"

#include <stdio.h>
#include <string.h>

void dm_nats_error(const char *what, natsStatus s)
{
    natsStatus last = NATS_OK;
    const char *detail = nats_GetLastError(&last);
    /* the library detail often just repeats the status text after a file:line */
    if (detail && *detail && !strstr(detail, natsStatus_GetText(s)))
        fprintf(stderr, "dmctl: %s: %s (%s)\n", what, natsStatus_GetText(s), detail);
    else
        fprintf(stderr, "dmctl: %s: %s\n", what, natsStatus_GetText(s));
}

natsStatus dm_connect(const global_opts *opts, natsConnection **nc)
{
    natsOptions *no = NULL;
    natsStatus s = natsOptions_Create(&no);
    if (s == NATS_OK)
        s = natsOptions_SetURL(no, opts->server);
    if (s == NATS_OK)
        s = natsOptions_SetName(no, "dmctl");
    /* --timeout is about requests and acks; a tiny value must not make the
     * TCP/TLS handshake itself fail */
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(no, opts->timeout_ms > 2000 ? opts->timeout_ms : 2000);
    /* a CLI should fail fast rather than buffer publishes for minutes */
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(no, 5);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(no, 500);
    if (s == NATS_OK)
        s = natsConnection_Connect(nc, no);
    if (s != NATS_OK) {
        char what[512];
        snprintf(what, sizeof what, "cannot connect to %s", opts->server);
        dm_nats_error(what, s);
        *nc = NULL;
    }
    natsOptions_Destroy(no);
    return s;
}

void dm_disconnect(natsConnection *nc)
{
    if (!nc)
        return;
    natsConnection_Close(nc);
    natsConnection_Destroy(nc);
}

natsStatus dm_connect_js(const global_opts *opts, natsConnection **nc, jsCtx **js)
{
    *js = NULL;
    natsStatus s = dm_connect(opts, nc);
    if (s != NATS_OK)
        return s;
    jsOptions jo;
    s = jsOptions_Init(&jo);
    if (s == NATS_OK) {
        jo.Wait = opts->timeout_ms;
        s = natsConnection_JetStream(js, *nc, &jo);
    }
    if (s != NATS_OK) {
        dm_nats_error("cannot create JetStream context", s);
        dm_disconnect(*nc);
        *nc = NULL;
        *js = NULL;
    }
    return s;
}
