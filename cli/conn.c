#include "conn.h"

#include <stdio.h>
#include <stdlib.h>
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

/* The URL without user and password, for messages: a secret is never printed. */
static void dm_url_redacted(const char *url, char *out, size_t cap)
{
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : url;
    const char *at = strchr(host, '@');
    const char *slash = strchr(host, '/');
    if (at && (!slash || at < slash))
        snprintf(out, cap, "%.*s***@%s", (int)(host - url), url, at + 1);
    else
        snprintf(out, cap, "%s", url);
}

natsStatus dm_connect(const global_opts *opts, natsConnection **nc)
{
    natsOptions *no = NULL;
    natsStatus s = natsOptions_Create(&no);
    if (s == NATS_OK)
        s = natsOptions_SetURL(no, opts->server);
    /* A TLS stack (deploy/stack.sh with DM_NATS_TLS=1): verify the server against its CA. */
    const char *ca = getenv("DM_NATS_CA");
    if (s == NATS_OK && ca && *ca)
        s = natsOptions_SetSecure(no, true);
    if (s == NATS_OK && ca && *ca)
        s = natsOptions_LoadCATrustedCertificates(no, ca);
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
        char what[512], shown[400];
        dm_url_redacted(opts->server, shown, sizeof shown);
        snprintf(what, sizeof what, "cannot connect to %s", shown);
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
