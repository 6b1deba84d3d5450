/* Connection setup and error reporting shared by all commands. */
#ifndef DMCTL_CONN_H
#define DMCTL_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include "model/names.h"

#define DEFAULT_URL "nats://127.0.0.1:14222"
#define DEFAULT_TIMEOUT_MS 5000
#define STREAM_NAME DM_STREAM_MARKET
#define NO_STREAM_MSG "stream MARKET not found: is a dm-worker running?"

/* Exit codes */
enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,      /* any failure */
    EXIT_ERR_REPLY = 2, /* query answered with {"error":...} */
    EXIT_DEAD_LETTERED = 3, /* published, but a worker dead-lettered some of it */
    EXIT_USAGE = 64,    /* bad command line (sysexits EX_USAGE) */
};

typedef struct global_opts {
    const char *server;
    int64_t timeout_ms;
} global_opts;

/* Connects to opts->server (a CA file in DM_NATS_CA: TLS verified against it); prints the
 * reason on failure, never the URL's credentials. */
natsStatus dm_connect(const global_opts *opts, natsConnection **nc);

/* "dmctl: <what>: <status text> (<library detail>)" on stderr. */
void dm_nats_error(const char *what, natsStatus s);

/* dm_connect plus a JetStream context whose requests wait opts->timeout_ms; prints
 * the reason and leaves nothing open on failure. */
natsStatus dm_connect_js(const global_opts *opts, natsConnection **nc, jsCtx **js);

/* Closes and destroys; tolerates NULL. */
void dm_disconnect(natsConnection *nc);

#endif
