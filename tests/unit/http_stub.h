/* A local HTTP server that plays a documented API in tests: each expected request (method,
 * path with query string, a required header, substrings its body must contain) is answered,
 * in order, with a canned status and body. Anything else is recorded as a mismatch and
 * answered 599.
 *
 * The adapters under test talk to it over real sockets (libcurl on one side, libmicrohttpd
 * on the other), so what is checked is what would go on the wire to the real server. Each
 * connection has its own thread: a step that answers late (delay_ms) does not hold up a
 * request on another connection. */
#ifndef DM_HTTP_STUB_H
#define DM_HTTP_STUB_H

#include <stdbool.h>
#include <stddef.h>

typedef struct dm_stub dm_stub;

typedef struct {
    const char *method;           /* "GET", "POST", "DELETE", ... */
    const char *path;             /* path and query string, exact ("/v1/batch/objects") */
    const char *header_name;      /* a header the request must carry, NULL: none */
    const char *header_value;     /* its exact value */
    const char *body_contains[8]; /* substrings the body must contain; NULL-terminated */
    int status;                   /* reply status */
    const char *reply;            /* reply body (application/json), NULL: empty */
    int delay_ms;                 /* answer this late (timeouts) */
} dm_stub_step;

/* Listens on 127.0.0.1 at an ephemeral port. The steps (and the strings they point to) must
 * outlive the stub. NULL when the server cannot start. */
dm_stub *dm_stub_start(const dm_stub_step *steps, size_t n);
int dm_stub_port(const dm_stub *s);
/* The body received for a step, NULL if not yet; for exact JSON checks with cJSON. Valid
 * until dm_stub_stop. */
const char *dm_stub_body(const dm_stub *s, size_t step);
/* true when every step was served, in order, and nothing else came; else why (first
 * mismatch). */
bool dm_stub_verify(const dm_stub *s, char *why, size_t cap);
/* Waits for requests still being answered, then frees everything. NULL is a no-op. */
void dm_stub_stop(dm_stub *s);

/* ---- additions ----------------------------------------------------------------------- */

/* Steps served so far (the index of the next expected one). */
size_t dm_stub_served(const dm_stub *s);
/* "http://127.0.0.1:PORT" into buf; returns buf. */
char *dm_stub_url(const dm_stub *s, char *buf, size_t cap);

#endif
