/* What the ArangoDB adapter's files share: the handle, the transport and the checks.
 * Not for use outside worker/backend/arangodb*.c. */
#ifndef DM_ARANGODB_PRIV_H
#define DM_ARANGODB_PRIV_H

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "codec/enc.h"
#include "arangodb.h"

#define SYMBOLS "dm_symbols"
#define EDGES "dm_correlations"
#define WINDOWS "dm_windows"
#define GRAPH "dm_correlation_graph"
#define CONNECT_TIMEOUT_MS 5000
#define JWT_MAX 4096
#define GEN_LEN DM_ARANGO_GEN_LEN
#define CURSOR_ID_MAX 32             /* digits of a cursor id: a 64-bit number, with room */
#define EXACT_INT 9007199254740992.0 /* 2^53: larger JSON numbers lose integers */

struct dm_arango {
    CURL *curl;
    char url[512];   /* base, without a trailing '/' or credentials */
    char where[300]; /* host[:port] for messages */
    char db[65];
    char user[128], password[256];
    char jwt[JWT_MAX]; /* empty: none yet */
    long timeout_ms;
    dm_buf reply, target;
};

typedef struct {
    const char *method, *path; /* path below the server root, with any query string */
    const char *body;          /* NULL: none (GET, DELETE) */
    size_t len;
    bool auth, replayable; /* replayable: safe to send again on a stale connection */
} request;

/* ---- checks (arangodb.c) ------------------------------------------------------------- */

bool ar_valid_timeframe(const char *s);
/* s has min..max characters, all from set. */
bool ar_all_of(const char *s, size_t min, size_t max, const char *set);
/* The edge's symbols, their order and its numbers. */
bool ar_valid_edge(const dm_arango_edge *e);
/* An integral JSON number within [lo, hi] and the exact range of a double. */
bool ar_json_int(const cJSON *j, int64_t lo, int64_t hi, int64_t *out);
const char *ar_json_str(const cJSON *obj, const char *name);
/* A request the adapter refuses before sending: PERMANENT, naming the field. */
dm_bstatus ar_refuse(const char *field, const char *what, dm_err *err);

/* ---- transport (arangodb.c) ---------------------------------------------------------- */

/* One exchange without auth; the reply lands in a->reply. Only transport failures fail. */
dm_bstatus ar_perform(dm_arango *a, const request *r, long *status, dm_err *err);
/* ar_perform with auth: a token first if there is none, one fresh token on a 401. */
dm_bstatus ar_call(dm_arango *a, const request *r, long *status, dm_err *err);
cJSON *ar_reply_json(const dm_arango *a);
/* A server's text as one printable line of at most cap - 1 bytes, for logs. */
void ar_printable(char *out, size_t cap, const char *in);
/* errorNum of an error reply (its message into msg), -1 when the body is not one. */
int ar_error_num(const dm_arango *a, char *msg, size_t cap);
/* A status the caller did not expect, mapped to the contract with ArangoDB's words. */
dm_bstatus ar_http_fail(dm_arango *a, long status, const char *what, dm_err *err);
/* A reply that is not what the docs promise: PERMANENT. */
dm_bstatus ar_unreadable(const char *what, const char *why, dm_err *err);

/* Takes one row of a result; anything but OK stops the query. */
typedef dm_bstatus (*row_fn)(void *ctx, const cJSON *row, dm_err *err);
/* Runs an AQL query (values only in bind, which it takes) and hands every row of every
 * batch to fn (NULL: rows are counted and dropped). */
dm_bstatus ar_query(dm_arango *a, const char *what, const char *aql, cJSON *bind, row_fn fn,
                    void *ctx, dm_err *err);
/* Adds a double as %.17g text: cJSON would print non-finite values as null. */
void ar_bind_double(cJSON *bind, const char *name, double v);

/* ---- reads (arangodb_read.c) --------------------------------------------------------- */

/* The stored window of tf with its generation; MISS when none. */
dm_bstatus ar_stored(dm_arango *a, const char *tf, dm_arango_window *out, char gen[GEN_LEN + 1],
                     dm_err *err);

#endif
