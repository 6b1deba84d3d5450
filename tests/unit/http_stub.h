/* A local HTTP server that plays a documented API in tests: each expected request (method,
 * path with query string, a required header, substrings its body must contain) is answered,
 * in order, with a canned status and body. Anything else is recorded as a mismatch and
 * answered 599. */
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

dm_stub *dm_stub_start(const dm_stub_step *steps, size_t n); /* 127.0.0.1, ephemeral port */
int dm_stub_port(const dm_stub *s);
const char *dm_stub_body(const dm_stub *s,
                         size_t step); /* the body received for a step, NULL if not yet */
bool dm_stub_verify(const dm_stub *s, char *why,
                    size_t cap); /* every step served in order, nothing else */
void dm_stub_stop(dm_stub *s);

#endif
