#include "bus.h"

#include <stdio.h>
#include <string.h>

#include "lease.h"
#include "pipeline/ingest.h"
#include "util/config.h"
#include "util/log.h"

#define NS_PER_S 1000000000LL

static void on_disconnected(natsConnection *nc, void *closure)
{
    dm_bus *bus = closure;
    if (natsConnection_IsClosed(nc)) /* a deliberate close is not news */
        return;
    DM_WARN("bus", "disconnected from NATS: reconnecting");
    if (bus->on_link)
        bus->on_link(DM_LINK_DOWN, bus->link_ctx);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    dm_bus *bus = closure;
    DM_INFO("bus", "reconnected to NATS");
    if (bus->on_link)
        bus->on_link(DM_LINK_UP, bus->link_ctx);
}

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    (void)nc, (void)sub;
    dm_bus *bus = closure;
    DM_WARN("bus", "NATS: %s", natsStatus_GetText(err));
    if (err == NATS_SLOW_CONSUMER && bus->on_link)
        bus->on_link(DM_LINK_LOST, bus->link_ctx);
}

/* The responders' connection: nothing on it feeds the cache, so its events are news for
 * the log only (a dropped request is the requester's timeout, not a stale L1). */
static void on_replies_disconnected(natsConnection *nc, void *closure)
{
    (void)closure;
    if (!natsConnection_IsClosed(nc))
        DM_WARN("bus", "responders' connection to NATS lost: reconnecting");
}

static void on_replies_reconnected(natsConnection *nc, void *closure)
{
    (void)nc, (void)closure;
    DM_INFO("bus", "responders' connection to NATS back");
}

static void on_replies_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    (void)nc, (void)sub, (void)closure;
    DM_WARN("bus", "NATS (responders): %s", natsStatus_GetText(err));
}

static dm_code nats_fail(dm_err *err, const char *what, natsStatus s)
{
    const char *last = nats_GetLastError(NULL);
    return dm_fail(err, DM_E_UNAVAILABLE, "", "%s: %s%s%s", what, natsStatus_GetText(s),
                   last ? ": " : "", last ? last : "");
}

/* libnats 3.4 takes a single URL in natsOptions_SetURL ("a,b" fails to connect): a
 * cluster, given as a comma-separated list, goes through natsOptions_SetServers. */
#define DM_NATS_MAX_SERVERS 16

static natsStatus set_servers(natsOptions *opts, const char *url)
{
    if (strchr(url, ',') == NULL)
        return natsOptions_SetURL(opts, url);
    char buf[2048];
    const char *list[DM_NATS_MAX_SERVERS];
    int n = 0;
    if (strlen(url) >= sizeof buf)
        return NATS_INVALID_ARG;
    strcpy(buf, url);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        if (n == DM_NATS_MAX_SERVERS)
            return NATS_INVALID_ARG;
        list[n++] = tok;
    }
    return n > 0 ? natsOptions_SetServers(opts, list, n) : NATS_INVALID_ARG;
}

/* Options every connection of the worker shares: cfg's URL and CA, a name, reconnection
 * forever. The caller sets the callbacks, creates the connection and destroys *out. */
static natsStatus base_options(natsOptions **out, const cJSON *cfg, const char *name)
{
    const char *url = dm_cfg_str(cfg, "url", "nats://127.0.0.1:4222");
    natsOptions *opts = NULL;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK) s = set_servers(opts, url);
    if (s == NATS_OK) s = natsOptions_SetName(opts, name);
    /* A TLS stack: verify the server against its CA (tls:// URLs make the link secure). */
    const char *ca = dm_cfg_str(cfg, "ca_file", "");
    if (s == NATS_OK && ca[0]) s = natsOptions_SetSecure(opts, true);
    if (s == NATS_OK && ca[0]) s = natsOptions_LoadCATrustedCertificates(opts, ca);
    /* Workers outlive NATS restarts: reconnect forever. */
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, 250);
    if (s == NATS_OK) s = natsOptions_SetRetryOnFailedConnect(opts, true, NULL, NULL);
    *out = opts;
    return s;
}

dm_code dm_bus_connect(dm_bus *bus, const cJSON *cfg, const char *name, dm_link_fn on_link,
                       void *link_ctx, dm_err *err)
{
    memset(bus, 0, sizeof *bus);
    snprintf(bus->name, sizeof bus->name, "%s", name);
    bus->on_link = on_link;
    bus->link_ctx = link_ctx;
    natsOptions *opts = NULL;
    natsStatus s = base_options(&opts, cfg, name);
    /* Buffer what is published while reconnecting (acks, cache updates, dead letters). */
    if (s == NATS_OK) s = natsOptions_SetReconnectBufSize(opts, 64 * 1024 * 1024);
    if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(opts, on_disconnected, bus);
    if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts, on_reconnected, bus);
    if (s == NATS_OK) s = natsOptions_SetErrorHandler(opts, on_error, bus);
    if (s == NATS_OK) s = natsConnection_Connect(&bus->nc, opts);
    natsOptions_Destroy(opts);
    if (s != NATS_OK)
        return nats_fail(err, "NATS connect", s);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 10000;
    s = natsConnection_JetStream(&bus->js, bus->nc, &jo);
    if (s == NATS_OK) {
        jo.Wait = DM_LEASE_WAIT_MS;
        s = natsConnection_JetStream(&bus->lease_js, bus->nc, &jo);
    }
    if (s != NATS_OK)
        return nats_fail(err, "JetStream context", s);
    const cJSON *stream = cJSON_GetObjectItemCaseSensitive(cfg, "stream");
    bus->replicas = dm_cfg_int(stream, "replicas", 1);
    return DM_OK;
}

dm_code dm_bus_connect_replies(dm_bus *bus, const cJSON *cfg, const char *name, dm_err *err)
{
    char rname[128];
    snprintf(rname, sizeof rname, "%s-replies", name);
    natsOptions *opts = NULL;
    natsStatus s = base_options(&opts, cfg, rname);
    /* SendAsap: the reply is written by the responder's own thread as it is published.
     * The alternative, natsConnection_Flush after each reply, costs a PING/PONG round
     * trip per request and holds the responder for it. */
    if (s == NATS_OK) s = natsOptions_SetSendAsap(opts, true);
    if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(opts, on_replies_disconnected, bus);
    if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts, on_replies_reconnected, bus);
    if (s == NATS_OK) s = natsOptions_SetErrorHandler(opts, on_replies_error, bus);
    if (s == NATS_OK) s = natsConnection_Connect(&bus->replies, opts);
    natsOptions_Destroy(opts);
    if (s != NATS_OK) {
        natsConnection_Destroy(bus->replies);
        bus->replies = NULL;
        return nats_fail(err, "NATS connect (responders)", s);
    }
    return DM_OK;
}

static natsStatus ensure_once(dm_bus *bus, jsStreamConfig *sc)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, bus->js, sc->Name, NULL, &jerr);
    if (s == NATS_OK) {
        jsStreamInfo_Destroy(si);
        si = NULL;
        s = js_UpdateStream(&si, bus->js, sc, NULL, &jerr);
    } else if (s == NATS_NOT_FOUND) {
        s = js_AddStream(&si, bus->js, sc, NULL, &jerr);
        /* Another worker may have created it a moment ago. */
        if (s != NATS_OK)
            s = js_UpdateStream(&si, bus->js, sc, NULL, &jerr);
    }
    jsStreamInfo_Destroy(si);
    return s;
}

/* A cluster that is still forming, or that is busy creating the same replicated stream for
 * another worker, may leave a JetStream API request unanswered: ask again for a minute
 * before giving up, or workers started together with their cluster exit at start. */
#define DM_ENSURE_ATTEMPTS 6

static dm_code ensure(dm_bus *bus, jsStreamConfig *sc, dm_err *err)
{
    natsStatus s = NATS_OK;
    for (int attempt = 1; attempt <= DM_ENSURE_ATTEMPTS; attempt++) {
        s = ensure_once(bus, sc);
        if (s != NATS_TIMEOUT && s != NATS_NO_RESPONDERS)
            break;
        DM_WARN("bus", "%s: no answer from JetStream (%s), attempt %d of %d", sc->Name,
                natsStatus_GetText(s), attempt, DM_ENSURE_ATTEMPTS);
        nats_Sleep(1000LL * attempt);
    }
    if (s != NATS_OK)
        return nats_fail(err, sc->Name, s);
    return DM_OK;
}

/* On disk like the streams: a server restart keeps the leases, and their holders renew
 * them once reconnected. */
static void lease_config(dm_bus *bus, kvConfig *kc)
{
    kvConfig_Init(kc);
    kc->Bucket = DM_LEASE_BUCKET;
    kc->History = 1;
    kc->TTL = (int64_t)DM_LEASE_TTL_MS * 1000000LL;
    kc->StorageType = js_FileStorage;
    kc->Replicas = bus->replicas;
}

/* The bucket is created with js's long wait (a replicated one on a forming cluster takes
 * a while) and bound through lease_js, whose wait every later lease request has. */
dm_code dm_bus_ensure_leases(dm_bus *bus, dm_err *err)
{
    kvConfig kc;
    lease_config(bus, &kc);
    natsStatus s = NATS_OK;
    for (int attempt = 1; attempt <= DM_ENSURE_ATTEMPTS; attempt++) {
        kvStore *kv = NULL;
        s = js_CreateKeyValue(&kv, bus->js, &kc); /* the existing one when it is the same */
        kvStore_Destroy(kv);
        kv = NULL;
        if (s != NATS_OK || bus->leases == NULL)
            s = js_KeyValue(&kv, bus->lease_js, DM_LEASE_BUCKET);
        if (s == NATS_OK && bus->leases == NULL)
            bus->leases = kv;
        else
            kvStore_Destroy(kv);
        if (s != NATS_TIMEOUT && s != NATS_NO_RESPONDERS)
            break;
        nats_Sleep(1000LL * attempt);
    }
    if (s != NATS_OK)
        return nats_fail(err, DM_LEASE_BUCKET, s);
    return DM_OK;
}

bool dm_bus_recreate_leases_if_gone(dm_bus *bus)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, bus->lease_js, "KV_" DM_LEASE_BUCKET, NULL, &jerr);
    jsStreamInfo_Destroy(si);
    if (s != NATS_NOT_FOUND || jerr != JSStreamNotFoundErr)
        return false;
    kvConfig kc;
    lease_config(bus, &kc);
    kvStore *kv = NULL;
    s = js_CreateKeyValue(&kv, bus->lease_js, &kc);
    kvStore_Destroy(kv);
    return s == NATS_OK;
}

dm_code dm_bus_ensure_streams(dm_bus *bus, const cJSON *cfg, dm_err *err)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(cfg, "stream");
    /* Only the families a consumer reads: a publish to any other market.* subject is
     * refused at once (no stream), instead of being stored and never read. */
    const char *market_subjects[DM_KIND_COUNT]; /* exactly what the consumers filter on */
    for (int k = 0; k < DM_KIND_COUNT; k++)
        market_subjects[k] = dm_kind_filter((dm_kind)k);
    const char *dlq_subjects[] = {DM_SUBJ_DLQ_ALL};
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = DM_STREAM_MARKET;
    sc.Subjects = market_subjects;
    sc.SubjectsLen = DM_KIND_COUNT;
    sc.Storage = js_FileStorage;
    sc.Retention = js_LimitsPolicy; /* history stays so a backend added later can replay */
    sc.MaxAge = (int64_t)dm_cfg_int(st, "max_age_hours", 24 * 30) * 3600 * NS_PER_S;
    sc.MaxBytes = (int64_t)dm_cfg_int(st, "max_gigabytes", 20) * 1024 * 1024 * 1024;
    sc.MaxMsgSize = 8 * 1024 * 1024;
    sc.Duplicates = (int64_t)dm_cfg_int(st, "duplicate_window_s", 120) * NS_PER_S;
    sc.Replicas = bus->replicas;
    dm_code c = ensure(bus, &sc, err);
    if (c)
        return c;
    jsStreamConfig_Init(&sc);
    sc.Name = DM_STREAM_DLQ;
    sc.Subjects = dlq_subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Retention = js_LimitsPolicy;
    sc.MaxAge = 90LL * 24 * 3600 * NS_PER_S;
    /* Every consumer that meets a bad message dead-letters it under the same id; a long
     * window collapses them to one entry even when a backend catches up hours later. */
    sc.Duplicates = 7LL * 24 * 3600 * NS_PER_S;
    sc.Replicas = bus->replicas;
    if ((c = ensure(bus, &sc, err)))
        return c;
    return dm_bus_ensure_leases(bus, err);
}

void dm_bus_close(dm_bus *bus)
{
    if (bus->replies) { /* the responders are gone: nothing is buffered on it */
        natsConnection_Close(bus->replies);
        natsConnection_Destroy(bus->replies);
    }
    if (bus->nc) {
        natsConnection_FlushTimeout(bus->nc, 2000); /* acks are buffered: send them */
        natsConnection_Close(bus->nc);
    }
    kvStore_Destroy(bus->leases);
    jsCtx_Destroy(bus->lease_js);
    jsCtx_Destroy(bus->js);
    natsConnection_Destroy(bus->nc);
    memset(bus, 0, sizeof *bus);
}

bool dm_bus_consumer_lag(dm_bus *bus, const char *durable, dm_consumer_lag *out)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    jsOptions o;
    jsOptions_Init(&o);
    o.Wait = 1000; /* health must answer even when NATS is slow */
    if (js_GetConsumerInfo(&ci, bus->js, DM_STREAM_MARKET, durable, &o, &jerr) != NATS_OK)
        return false;
    *out = (dm_consumer_lag){ci->NumPending, (uint64_t)ci->NumAckPending, (uint64_t)ci->NumRedelivered,
                             ci->AckFloor.Stream};
    jsConsumerInfo_Destroy(ci);
    return true;
}

int64_t dm_bus_dead_letters(dm_bus *bus)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    jsOptions o;
    jsOptions_Init(&o);
    o.Wait = 1000;
    if (js_GetStreamInfo(&si, bus->js, DM_STREAM_DLQ, &o, &jerr) != NATS_OK)
        return -1;
    int64_t n = (int64_t)si->State.Msgs;
    jsStreamInfo_Destroy(si);
    return n;
}
