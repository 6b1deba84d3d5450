#include "arangodb_priv.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

/* ---- checks -------------------------------------------------------------------------- */

bool dm_arango_symbol_key(const char *symbol, char key[DM_SYMBOL_MAX + 1])
{
    if (symbol == NULL)
        return false;
    size_t n = strnlen(symbol, DM_SYMBOL_MAX + 1), slashes = 0;
    if (n == 0 || n > DM_SYMBOL_MAX || symbol[0] == '/' || symbol[n - 1] == '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = symbol[i];
        if (c == '/')
            slashes++;
        else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return false;
        key[i] = c == '/' ? '_' : c;
    }
    key[n] = '\0';
    return slashes <= 1;
}

bool ar_valid_timeframe(const char *s)
{
    dm_tf tf;
    return s != NULL && dm_tf_parse(s, &tf) && strcmp(dm_tf_name(tf), s) == 0;
}

static bool valid_database(const char *s)
{
    if (s == NULL || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
        return false;
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= 64 || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

bool ar_all_of(const char *s, size_t min, size_t max, const char *set)
{
    size_t n = s ? strnlen(s, max + 1) : 0;
    return n >= min && n <= max && strspn(s, set) == n;
}

/* The edge's symbols, their order and its numbers. */
bool ar_valid_edge(const dm_arango_edge *e)
{
    char k[DM_SYMBOL_MAX + 1];
    return dm_arango_symbol_key(e->a, k) && dm_arango_symbol_key(e->b, k) &&
           strcmp(e->a, e->b) < 0 && isfinite(e->r) && fabs(e->r) <= 1 && e->n >= 0 &&
           (double)e->n <= EXACT_INT;
}

/* An integral JSON number within the exact range of a double. */
bool ar_json_int(const cJSON *j, int64_t lo, int64_t hi, int64_t *out)
{
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble) || j->valuedouble != floor(j->valuedouble))
        return false;
    double v = j->valuedouble;
    if (v < -EXACT_INT || v > EXACT_INT || v < (double)lo || v > (double)hi)
        return false;
    *out = (int64_t)v;
    return true;
}

const char *ar_json_str(const cJSON *obj, const char *name)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(j) ? j->valuestring : NULL;
}

dm_bstatus ar_refuse(const char *field, const char *what, dm_err *err)
{
    return dm_fail(err, DM_E_INVALID_FIELD, field, "arangodb: %s", what), DM_BS_PERMANENT;
}

/* ---- HTTP ---------------------------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    dm_arango *a = ud;
    size_t n = size * nmemb;
    if (a->reply.len + n > DM_ARANGO_MAX_REPLY)
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    dm_buf_put(&a->reply, p, n);
    return a->reply.oom ? 0 : n;
}

static struct curl_slist *headers(const dm_arango *a, bool auth, bool *ok)
{
    struct curl_slist *h = NULL, *t;
    *ok = (t = curl_slist_append(h, "Content-Type: application/json")) != NULL && (h = t);
    /* Imports can be large: no "Expect: 100-continue" round trip. */
    *ok = *ok && (t = curl_slist_append(h, "Expect:")) != NULL && (h = t);
    if (auth && a->jwt[0]) {
        char line[JWT_MAX + 32];
        snprintf(line, sizeof line, "Authorization: Bearer %s", a->jwt);
        *ok = *ok && (t = curl_slist_append(h, line)) != NULL && (h = t);
        explicit_bzero(line, sizeof line);
    }
    return h;
}

static void free_headers(struct curl_slist *h)
{
    for (struct curl_slist *p = h; p; p = p->next) /* the token is a credential */
        explicit_bzero(p->data, strlen(p->data));
    curl_slist_free_all(h);
}

/* One exchange; the reply lands in a->reply. Only transport failures fail here. */
dm_bstatus ar_perform(dm_arango *a, const request *r, long *status, dm_err *err)
{
    dm_buf_reset(&a->target);
    dm_buf_printf(&a->target, "%s%s", a->url, r->path);
    bool ok;
    struct curl_slist *h = headers(a, r->auth, &ok);
    if (!ok || a->target.oom) {
        free_headers(h);
        return dm_fail(err, DM_E_INTERNAL, "", "out of memory"), DM_BS_TRANSIENT;
    }
    CURL *c = a->curl;
    bool post = strcmp(r->method, "POST") == 0, get = strcmp(r->method, "GET") == 0;
    CURLcode rc = CURLE_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        dm_buf_reset(&a->reply);
        curl_easy_setopt(c, CURLOPT_URL, a->target.data);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        if (r->body) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->len);
        } else {
            curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        }
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST,
                         (r->body && post) || (!r->body && get) ? NULL : r->method);
        rc = curl_easy_perform(c);
        long fresh = 1;
        curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &fresh);
        /* The server may have closed an idle keep-alive connection just as we reused it. */
        if (!(r->replayable && fresh == 0 &&
              (rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING)))
            break;
    }
    free_headers(h);
    if (rc != CURLE_OK) {
        if (a->reply.oom)
            return dm_fail(err, DM_E_INTERNAL, "", "out of memory"), DM_BS_TRANSIENT;
        if (rc == CURLE_WRITE_ERROR)
            return dm_fail(err, DM_E_UNAVAILABLE, "", "arangodb %s: reply larger than %u MB",
                           r->path, DM_ARANGO_MAX_REPLY >> 20),
                   DM_BS_PERMANENT;
        return dm_fail(err, DM_E_UNAVAILABLE, "", "arangodb %s %s failed: %s (%s)", r->method,
                       r->path, curl_easy_strerror(rc), a->where),
               DM_BS_TRANSIENT;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    return DM_BS_OK;
}

cJSON *ar_reply_json(const dm_arango *a)
{
    return a->reply.len ? cJSON_ParseWithLength(a->reply.data, a->reply.len) : NULL;
}

/* A server's text as one printable line of at most cap - 1 bytes, for logs. */
void ar_printable(char *out, size_t cap, const char *in)
{
    size_t o = 0;
    for (; in && in[o] && o + 1 < cap; o++)
        out[o] = (unsigned char)in[o] < 0x20 || in[o] == 0x7f ? ' ' : in[o];
    out[o] = '\0';
}

/* errorNum of an error reply, -1 when the body is not one. */
int ar_error_num(const dm_arango *a, char *msg, size_t cap)
{
    cJSON *j = ar_reply_json(a);
    int64_t num = -1;
    if (!ar_json_int(cJSON_GetObjectItemCaseSensitive(j, "errorNum"), 0, 1000000, &num))
        num = -1;
    ar_printable(msg, cap, ar_json_str(j, "errorMessage"));
    cJSON_Delete(j);
    return (int)num;
}

static dm_bstatus classify(long status, int num)
{
    if (status == 404)
        return num == 1600 ? DM_BS_TRANSIENT : DM_BS_PERMANENT;
    if (status == 408 || status == 409 || status == 410 || status == 429 || status >= 500)
        return DM_BS_TRANSIENT;
    return DM_BS_PERMANENT;
}

/* Maps a status the caller did not expect to the contract, with ArangoDB's words. */
dm_bstatus ar_http_fail(dm_arango *a, long status, const char *what, dm_err *err)
{
    char msg[200];
    int num = ar_error_num(a, msg, sizeof msg);
    const char *hint = num == 1203     ? " (run dm_arango_ensure_graph: collections missing)"
                       : status == 401 ? " (credentials refused even with a fresh token)"
                                       : "";
    if (num >= 0)
        dm_fail(err, DM_E_UNAVAILABLE, "", "arangodb %s failed: HTTP %ld, errorNum %d: %s%s", what,
                status, num, msg[0] ? msg : "no message", hint);
    else
        dm_fail(err, DM_E_UNAVAILABLE, "", "arangodb %s failed: HTTP %ld from %s%s", what, status,
                a->where, hint);
    return classify(status, num);
}

dm_bstatus ar_unreadable(const char *what, const char *why, dm_err *err)
{
    return dm_fail(err, DM_E_UNAVAILABLE, "", "arangodb %s: unexpected reply (%s)", what, why),
           DM_BS_PERMANENT;
}

/* POST /_open/auth: a fresh JWT in a->jwt. */
static dm_bstatus authenticate(dm_arango *a, dm_err *err)
{
    a->jwt[0] = '\0';
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "username", a->user);
    cJSON_AddStringToObject(body, "password", a->password);
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body); /* cJSON frees without wiping: the copy in text is wiped below */
    if (text == NULL)
        return dm_fail(err, DM_E_INTERNAL, "", "out of memory"), DM_BS_TRANSIENT;
    request r = {"POST", "/_open/auth", text, strlen(text), false, true};
    long status = 0;
    dm_bstatus st = ar_perform(a, &r, &status, err);
    explicit_bzero(text, strlen(text));
    free(text);
    if (st != DM_BS_OK)
        return st;
    if (status != 200)
        return ar_http_fail(a, status, "authentication", err);
    cJSON *j = ar_reply_json(a);
    const char *jwt = ar_json_str(j, "jwt");
    /* The token goes into a header line: base64url and dots only, nothing to inject. */
    bool ok = ar_all_of(jwt, 1, JWT_MAX - 1,
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.");
    if (ok)
        snprintf(a->jwt, sizeof a->jwt, "%s", jwt);
    cJSON_Delete(j);
    return ok ? DM_BS_OK : ar_unreadable("authentication", "no usable jwt", err);
}

/* perform with auth: a token first if there is none, and on a 401 (expired token) one
 * fresh token and one more try. A second 401 stays in *status for http_fail. */
dm_bstatus ar_call(dm_arango *a, const request *r, long *status, dm_err *err)
{
    bool auth = r->auth && a->user[0];
    dm_bstatus st;
    if (auth && !a->jwt[0] && (st = authenticate(a, err)) != DM_BS_OK)
        return st;
    st = ar_perform(a, r, status, err);
    if (st != DM_BS_OK || !auth || *status != 401)
        return st;
    DM_DEBUG("arangodb", "token refused by %s: authenticating again", a->where);
    if ((st = authenticate(a, err)) != DM_BS_OK)
        return st;
    return ar_perform(a, r, status, err);
}

/* ---- cursors ------------------------------------------------------------------------- */

/* Best effort: a cursor left behind expires after its ttl anyway. */
static void drop_cursor(dm_arango *a, const char *id)
{
    char path[160];
    snprintf(path, sizeof path, "/_db/%s/_api/cursor/%s", a->db, id);
    request r = {"DELETE", path, NULL, 0, true, true};
    long status = 0;
    dm_err ignored = {0};
    if (ar_call(a, &r, &status, &ignored) != DM_BS_OK || (status != 202 && status != 200))
        DM_DEBUG("arangodb", "cursor %s not deleted (HTTP %ld): its ttl reclaims it", id, status);
}

/* Hands every row of one batch to fn. *id receives the cursor id when more batches are
 * waiting, else is emptied. */
static dm_bstatus read_batch(dm_arango *a, const char *what, row_fn fn, void *ctx, size_t *rows,
                             char id[CURSOR_ID_MAX + 1], dm_err *err)
{
    cJSON *j = ar_reply_json(a);
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(j, "result");
    const cJSON *more = cJSON_GetObjectItemCaseSensitive(j, "hasMore");
    const char *cid = ar_json_str(j, "id");
    dm_bstatus st = DM_BS_OK;
    id[0] = '\0';
    if (!cJSON_IsArray(result) || !cJSON_IsBool(more))
        st = ar_unreadable(what, "no result array or hasMore", err);
    else if (cJSON_IsTrue(more) && !ar_all_of(cid, 1, CURSOR_ID_MAX, "0123456789"))
        st = ar_unreadable(what, "hasMore without a cursor id", err);
    if (st == DM_BS_OK && cJSON_IsTrue(more))
        snprintf(id, CURSOR_ID_MAX + 1, "%s", cid);
    const cJSON *row, *each = st == DM_BS_OK ? result : NULL;
    cJSON_ArrayForEach(row, each)
    {
        if (++*rows > DM_ARANGO_MAX_ROWS) {
            dm_fail(err, DM_E_TOO_LARGE, "", "arangodb %s: more than %d rows", what,
                    DM_ARANGO_MAX_ROWS);
            st = DM_BS_PERMANENT;
            break;
        }
        if (fn && (st = fn(ctx, row, err)) != DM_BS_OK)
            break;
    }
    cJSON_Delete(j);
    return st;
}

/* Runs an AQL query (POST /_api/cursor, values only in bindVars, which it takes) and
 * reads every batch (POST /_api/cursor/{id}: PUT is the deprecated spelling; the server
 * drops the cursor after the last batch). A query stopped early deletes its cursor. */
dm_bstatus ar_query(dm_arango *a, const char *what, const char *aql, cJSON *bind, row_fn fn,
                    void *ctx, dm_err *err)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "query", aql);
    cJSON_AddItemToObject(body, "bindVars", bind);
    cJSON_AddNumberToObject(body, "batchSize", DM_ARANGO_BATCH);
    cJSON_AddNumberToObject(body, "ttl", 30); /* a coordinator's default is 10 minutes */
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (text == NULL)
        return dm_fail(err, DM_E_INTERNAL, "", "out of memory"), DM_BS_TRANSIENT;
    char path[160], id[CURSOR_ID_MAX + 1] = "";
    snprintf(path, sizeof path, "/_db/%s/_api/cursor", a->db);
    request r = {"POST", path, text, strlen(text), true, true};
    size_t rows = 0;
    long status = 0;
    dm_bstatus st = ar_call(a, &r, &status, err);
    for (;;) {
        if (st == DM_BS_OK && status != 201 && status != 200)
            st = ar_http_fail(a, status, what, err);
        if (st != DM_BS_OK)
            break;
        st = read_batch(a, what, fn, ctx, &rows, id, err);
        if (st != DM_BS_OK || id[0] == '\0')
            break;
        snprintf(path, sizeof path, "/_db/%s/_api/cursor/%s", a->db, id);
        /* Each read advances the cursor: never replayed blindly. */
        request next = {"POST", path, "", 0, true, false};
        st = ar_call(a, &next, &status, err);
        id[0] = '\0';
    }
    if (st != DM_BS_OK && id[0])
        drop_cursor(a, id);
    free(text);
    return st;
}

/* Adds a double as %.17g text: cJSON would print non-finite values as null. */
void ar_bind_double(cJSON *bind, const char *name, double v)
{
    char text[40];
    snprintf(text, sizeof text, "%.17g", v);
    cJSON_AddRawToObject(bind, name, text);
}

/* ---- health and schema --------------------------------------------------------------- */

dm_bstatus dm_arango_available(dm_arango *a, dm_err *err)
{
    request r = {"GET", "/_admin/server/availability", NULL, 0, false, true};
    long status = 0;
    dm_bstatus st = ar_perform(a, &r, &status, err);
    return st != DM_BS_OK || status == 200 ? st : ar_http_fail(a, status, "availability", err);
}

/* POSTs a creation; a 409 with `exists` (the name is taken) is success. */

/* ---- life cycle ---------------------------------------------------------------------- */

/* Base url without credentials or trailing '/', and "host[:port]" for messages. */
static bool parse_url(dm_arango *a, const char *url)
{
    size_t scheme = !url                               ? 0
                    : strncmp(url, "http://", 7) == 0  ? 7
                    : strncmp(url, "https://", 8) == 0 ? 8
                                                       : 0;
    if (scheme == 0 || strlen(url) >= sizeof a->url)
        return false;
    size_t auth = strcspn(url + scheme, "/?#");
    if (auth == 0 || memchr(url + scheme, '@', auth) != NULL ||
        url[scheme + auth + strspn(url + scheme + auth, "/")] != '\0')
        return false;
    snprintf(a->url, sizeof a->url, "%.*s", (int)(scheme + auth), url);
    snprintf(a->where, sizeof a->where, "%.*s", (int)auth, url + scheme);
    return true;
}

static bool printable_field(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

dm_arango *dm_arango_open(const dm_arango_config *cfg, dm_err *err)
{
    dm_backend_curl_init();
    dm_arango *a = calloc(1, sizeof *a);
    if (a == NULL) {
        dm_fail(err, DM_E_INTERNAL, "", "out of memory");
        return NULL;
    }
    dm_buf_init(&a->reply);
    dm_buf_init(&a->target);
    const char *user = cfg->username ? cfg->username : "";
    const char *password = cfg->password ? cfg->password : "";
    bool ok = false;
    if (!parse_url(a, cfg->url))
        dm_fail(err, DM_E_INVALID_FIELD, "url",
                "arangodb: url must be http(s)://host[:port] without credentials or a path");
    else if (!valid_database(cfg->database))
        dm_fail(err, DM_E_INVALID_FIELD, "database",
                "arangodb: database must be [A-Za-z][A-Za-z0-9_-]{0,63}");
    else if (strlen(user) >= sizeof a->user || strlen(password) >= sizeof a->password ||
             !printable_field(user) || !printable_field(password))
        dm_fail(err, DM_E_INVALID_FIELD, "username",
                "arangodb: username and password must be short and without control characters");
    else if ((a->curl = curl_easy_init()) == NULL)
        dm_fail(err, DM_E_INTERNAL, "", "arangodb: cannot create a curl handle");
    else
        ok = true;
    if (!ok) {
        dm_arango_close(a);
        return NULL;
    }
    snprintf(a->db, sizeof a->db, "%s", cfg->database);
    snprintf(a->user, sizeof a->user, "%s", user);
    snprintf(a->password, sizeof a->password, "%s", password);
    a->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000;
    CURL *c = a->curl;
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, a->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     a->timeout_ms < CONNECT_TIMEOUT_MS ? a->timeout_ms : CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "dm-worker");
    return a;
}

void dm_arango_close(dm_arango *a)
{
    if (a == NULL)
        return;
    if (a->curl)
        curl_easy_cleanup(a->curl);
    dm_buf_free(&a->reply);
    dm_buf_free(&a->target);
    explicit_bzero(a->password, sizeof a->password);
    explicit_bzero(a->jwt, sizeof a->jwt);
    free(a);
}
