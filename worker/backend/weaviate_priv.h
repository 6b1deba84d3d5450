/* What the Weaviate adapter's files share: the handle and the transport. Not for use
 * outside worker/backend/weaviate*.c. */
#ifndef DM_WEAVIATE_PRIV_H
#define DM_WEAVIATE_PRIV_H

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "codec/enc.h"
#include "weaviate.h"

#define WV_CLASS_MAX 63

struct dm_weaviate {
    CURL *curl;
    struct curl_slist *hdr; /* holds the API key: wiped before it is freed */
    char url[512];          /* base, without a trailing '/' or credentials */
    char where[300];        /* host[:port] for messages */
    char cls[WV_CLASS_MAX + 1];
    char index_type[8];
    int window;
    dm_buf target, reply;
    size_t reply_cap; /* bytes the next reply may have; back to DM_WV_MAX_REPLY after it */
    double *z;        /* one z-normalised window */
};

/* Out of memory: TRANSIENT, with a message. */
dm_bstatus wv_oom(dm_err *err);

/* ---- transport (weaviate.c) ---------------------------------------------------------- */

/* One request to base url + path (body NULL: GET); the reply lands in w->reply and its
 * status in *status. Only transport failures fail here. */
dm_bstatus wv_perform(dm_weaviate *w, const char *path, const char *body, const char *what,
                      long *status, dm_err *err);
/* POSTs a cJSON body (deleted here); the status is the caller's to judge. */
dm_bstatus wv_post_json(dm_weaviate *w, const char *path, cJSON *body, const char *what,
                        long *status, dm_err *err);
cJSON *wv_reply_json(const dm_weaviate *w);
/* The message of an error reply, one printable line. */
void wv_error_text(const dm_weaviate *w, char *out, size_t cap);
/* A status the caller did not expect, mapped to the contract with Weaviate's words. */
dm_bstatus wv_http_fail(const dm_weaviate *w, long status, const char *what, dm_err *err);
/* A reply that is not what the API documents: TRANSIENT (see weaviate.h). */
dm_bstatus wv_malformed(const char *what, const char *why, dm_err *err);

/* ---- text and checks (weaviate_util.c) ----------------------------------------------- */

void wv_clean(const char *s, size_t n, char *out, size_t cap);
/* A string member, dflt when absent or null, "(not text)" when of another type. */
const char *wv_str_or(const cJSON *o, const char *key, const char *dflt);
bool wv_safe_symbol(const char *s);
bool wv_safe_timeframe(const char *s);
bool wv_is_uuid(const char *s);
void wv_put_vector(dm_buf *b, const double *z, int n);

#endif
