/* The operator's HTTP port: GET /metrics (Prometheus text), /healthz (the process
 * answers), /readyz (it serves: NATS connected and the responders started), / (the status
 * page: one HTML document with its script and style inline, compiled in from
 * obs/status.html) and /status.json (what the page polls).
 *
 * libmicrohttpd runs each connection on a thread of its own (at most 16), so a status
 * document that waits on a slow database probe never holds up /metrics or /readyz: the
 * handlers may run at once and must be safe to. Bound to loopback unless told otherwise:
 * the figures are not secret, but nothing here needs to face a network. */
#ifndef DM_OBS_HTTP_H
#define DM_OBS_HTTP_H

#include <stdbool.h>

#include "codec/enc.h"
#include "util/err.h"

typedef struct {
    void (*metrics)(void *ctx, dm_buf *out); /* appends Prometheus text */
    bool (*ready)(void *ctx, dm_buf *why);   /* false: why says what is missing */
    void (*status)(void *ctx, dm_buf *out);  /* appends /status.json; NULL: no status page */
    void *ctx;
} dm_http_handlers;

typedef struct dm_http dm_http;

/* listen: "HOST:PORT" or "PORT" (then 127.0.0.1). NULL with err set when it cannot bind. */
dm_http *dm_http_start(const char *listen, const dm_http_handlers *h, dm_err *err);
void dm_http_stop(dm_http *h);

#endif
