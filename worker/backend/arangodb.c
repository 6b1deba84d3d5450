#include "arangodb.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "../codec/enc.h"
#include "../util/log.h"

#define SYMBOLS "dm_symbols"
#define EDGES "dm_correlations"
#define WINDOWS "dm_windows"
#define GRAPH "dm_correlation_graph"
#define CONNECT_TIMEOUT_MS 5000
#define JWT_MAX 4096
#define GEN_LEN 16                   /* hex digits of a generation */
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

static bool valid_timeframe(const char *s)
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

static bool all_of(const char *s, size_t min, size_t max, const char *set)
{
    size_t n = s ? strnlen(s, max + 1) : 0;
    return n >= min && n <= max && strspn(s, set) == n;
}

/* The edge's symbols, their order and its numbers. */
static bool valid_edge(const dm_arango_edge *e)
{
    char k[DM_SYMBOL_MAX + 1];
    return dm_arango_symbol_key(e->a, k) && dm_arango_symbol_key(e->b, k) &&
           strcmp(e->a, e->b) < 0 && isfinite(e->r) && fabs(e->r) <= 1 && e->n >= 0 &&
           (double)e->n <= EXACT_INT;
}

/* An integral JSON number within the exact range of a double. */
static bool json_int(const cJSON *j, int64_t lo, int64_t hi, int64_t *out)
{
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble) || j->valuedouble != floor(j->valuedouble))
        return false;
    double v = j->valuedouble;
    if (v < -EXACT_INT || v > EXACT_INT || v < (double)lo || v > (double)hi)
        return false;
    *out = (int64_t)v;
    return true;
}

static const char *json_str(const cJSON *obj, const char *name)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(j) ? j->valuestring : NULL;
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
static dm_bstatus perform(dm_arango *a, const request *r, long *status, dm_err *err)
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

static cJSON *reply_json(const dm_arango *a)
{
    return a->reply.len ? cJSON_ParseWithLength(a->reply.data, a->reply.len) : NULL;
}

/* A server's text as one printable line of at most cap - 1 bytes, for logs. */
static void printable(char *out, size_t cap, const char *in)
{
    size_t o = 0;
    for (; in && in[o] && o + 1 < cap; o++)
        out[o] = (unsigned char)in[o] < 0x20 || in[o] == 0x7f ? ' ' : in[o];
    out[o] = '\0';
}

/* errorNum of an error reply, -1 when the body is not one. */
static int error_num(const dm_arango *a, char *msg, size_t cap)
{
    cJSON *j = reply_json(a);
    int64_t num = -1;
    if (!json_int(cJSON_GetObjectItemCaseSensitive(j, "errorNum"), 0, 1000000, &num))
        num = -1;
    printable(msg, cap, json_str(j, "errorMessage"));
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
static dm_bstatus http_fail(dm_arango *a, long status, const char *what, dm_err *err)
{
    char msg[200];
    int num = error_num(a, msg, sizeof msg);
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

static dm_bstatus unreadable(const char *what, const char *why, dm_err *err)
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
    dm_bstatus st = perform(a, &r, &status, err);
    explicit_bzero(text, strlen(text));
    free(text);
    if (st != DM_BS_OK)
        return st;
    if (status != 200)
        return http_fail(a, status, "authentication", err);
    cJSON *j = reply_json(a);
    const char *jwt = json_str(j, "jwt");
    /* The token goes into a header line: base64url and dots only, nothing to inject. */
    bool ok = all_of(jwt, 1, JWT_MAX - 1,
                     "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.");
    if (ok)
        snprintf(a->jwt, sizeof a->jwt, "%s", jwt);
    cJSON_Delete(j);
    return ok ? DM_BS_OK : unreadable("authentication", "no usable jwt", err);
}

/* perform with auth: a token first if there is none, and on a 401 (expired token) one
 * fresh token and one more try. A second 401 stays in *status for http_fail. */
static dm_bstatus call(dm_arango *a, const request *r, long *status, dm_err *err)
{
    bool auth = r->auth && a->user[0];
    dm_bstatus st;
    if (auth && !a->jwt[0] && (st = authenticate(a, err)) != DM_BS_OK)
        return st;
    st = perform(a, r, status, err);
    if (st != DM_BS_OK || !auth || *status != 401)
        return st;
    DM_DEBUG("arangodb", "token refused by %s: authenticating again", a->where);
    if ((st = authenticate(a, err)) != DM_BS_OK)
        return st;
    return perform(a, r, status, err);
}

/* ---- cursors ------------------------------------------------------------------------- */

/* Takes one row of a result; anything but OK stops the query. */
typedef dm_bstatus (*row_fn)(void *ctx, const cJSON *row, dm_err *err);

/* Best effort: a cursor left behind expires after its ttl anyway. */
static void drop_cursor(dm_arango *a, const char *id)
{
    char path[160];
    snprintf(path, sizeof path, "/_db/%s/_api/cursor/%s", a->db, id);
    request r = {"DELETE", path, NULL, 0, true, true};
    long status = 0;
    dm_err ignored = {0};
    if (call(a, &r, &status, &ignored) != DM_BS_OK || (status != 202 && status != 200))
        DM_DEBUG("arangodb", "cursor %s not deleted (HTTP %ld): its ttl reclaims it", id, status);
}

/* Hands every row of one batch to fn. *id receives the cursor id when more batches are
 * waiting, else is emptied. */
static dm_bstatus read_batch(dm_arango *a, const char *what, row_fn fn, void *ctx, size_t *rows,
                             char id[CURSOR_ID_MAX + 1], dm_err *err)
{
    cJSON *j = reply_json(a);
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(j, "result");
    const cJSON *more = cJSON_GetObjectItemCaseSensitive(j, "hasMore");
    const char *cid = json_str(j, "id");
    dm_bstatus st = DM_BS_OK;
    id[0] = '\0';
    if (!cJSON_IsArray(result) || !cJSON_IsBool(more))
        st = unreadable(what, "no result array or hasMore", err);
    else if (cJSON_IsTrue(more) && !all_of(cid, 1, CURSOR_ID_MAX, "0123456789"))
        st = unreadable(what, "hasMore without a cursor id", err);
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
static dm_bstatus query(dm_arango *a, const char *what, const char *aql, cJSON *bind, row_fn fn,
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
    dm_bstatus st = call(a, &r, &status, err);
    for (;;) {
        if (st == DM_BS_OK && status != 201 && status != 200)
            st = http_fail(a, status, what, err);
        if (st != DM_BS_OK)
            break;
        st = read_batch(a, what, fn, ctx, &rows, id, err);
        if (st != DM_BS_OK || id[0] == '\0')
            break;
        snprintf(path, sizeof path, "/_db/%s/_api/cursor/%s", a->db, id);
        /* Each read advances the cursor: never replayed blindly. */
        request next = {"POST", path, "", 0, true, false};
        st = call(a, &next, &status, err);
        id[0] = '\0';
    }
    if (st != DM_BS_OK && id[0])
        drop_cursor(a, id);
    free(text);
    return st;
}

/* Adds a double as %.17g text: cJSON would print non-finite values as null. */
static void bind_double(cJSON *bind, const char *name, double v)
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
    dm_bstatus st = perform(a, &r, &status, err);
    return st != DM_BS_OK || status == 200 ? st : http_fail(a, status, "availability", err);
}

/* POSTs a creation; a 409 with `exists` (the name is taken) is success. */
static dm_bstatus create(dm_arango *a, const char *api, const char *body, int exists,
                         const char *what, dm_err *err)
{
    char path[160], msg[8];
    snprintf(path, sizeof path, "/_db/%s/_api/%s", a->db, api);
    request r = {"POST", path, body, strlen(body), true, true};
    long status = 0;
    dm_bstatus st = call(a, &r, &status, err);
    if (st != DM_BS_OK || (status >= 200 && status < 300))
        return st;
    if (status == 409 && error_num(a, msg, sizeof msg) == exists)
        return DM_BS_OK; /* an earlier start or another worker made it */
    return http_fail(a, status, what, err);
}

dm_bstatus dm_arango_ensure_graph(dm_arango *a, dm_err *err)
{
    /* 1207 duplicate name, 1925 graph already exists; type 2 documents, 3 edges. */
    dm_bstatus st = create(a, "collection", "{\"name\":\"" SYMBOLS "\",\"type\":2}", 1207,
                           "create collection " SYMBOLS, err);
    if (st == DM_BS_OK)
        st = create(a, "collection", "{\"name\":\"" EDGES "\",\"type\":3}", 1207,
                    "create collection " EDGES, err);
    if (st == DM_BS_OK)
        st = create(a, "collection", "{\"name\":\"" WINDOWS "\",\"type\":2}", 1207,
                    "create collection " WINDOWS, err);
    if (st == DM_BS_OK)
        st = create(a, "gharial",
                    "{\"name\":\"" GRAPH "\",\"edgeDefinitions\":[{\"collection\":\"" EDGES
                    "\",\"from\":[\"" SYMBOLS "\"],\"to\":[\"" SYMBOLS "\"]}]}",
                    1925, "create graph " GRAPH, err);
    return st;
}

/* ---- writes -------------------------------------------------------------------------- */

static dm_bstatus refuse(const char *field, const char *what, dm_err *err)
{
    return dm_fail(err, DM_E_INVALID_FIELD, field, "arangodb: %s", what), DM_BS_PERMANENT;
}

static bool among(const char *s, const char *const *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, set[i]) == 0)
            return true;
    return false;
}

static dm_bstatus check_put(const dm_arango_window *w, const char *const *symbols, size_t ns,
                            const dm_arango_edge *edges, size_t ne, dm_err *err)
{
    char key[DM_SYMBOL_MAX + 1];
    if (w == NULL || !valid_timeframe(w->timeframe))
        return refuse("timeframe", "timeframe is not one of the fixed names", err);
    if (w->window_start >= w->window_end || w->window_candles <= 0 ||
        (double)w->window_start < -EXACT_INT || (double)w->window_end > EXACT_INT)
        return refuse("window", "window needs start < end and candles > 0", err);
    if (ns > DM_ARANGO_MAX_ROWS || ne > DM_ARANGO_MAX_ROWS || (ns && !symbols) || (ne && !edges))
        return refuse("edges", "more symbols or edges than one window may hold", err);
    for (size_t i = 0; i < ns; i++)
        if (!dm_arango_symbol_key(symbols[i], key))
            return refuse("symbols", "a symbol is not [A-Z0-9]+ with at most one inner '/'", err);
    for (size_t i = 0; i < ne; i++) {
        if (!valid_edge(&edges[i]))
            return refuse("edges", "an edge needs symbols a < b, a finite |r| <= 1 and n >= 0",
                          err);
        if (!among(edges[i].a, symbols, ns) || !among(edges[i].b, symbols, ns))
            return refuse("edges", "an edge names a symbol missing from the symbols", err);
    }
    return DM_BS_OK;
}

/* POST /_api/import of JSON lines. A 201 can still carry refused documents: errors > 0
 * fails with the first of details; fewer stored than sent fails too. */
static dm_bstatus import(dm_arango *a, const char *collection, const dm_buf *docs, size_t n,
                         dm_err *err)
{
    if (docs->oom)
        return dm_fail(err, DM_E_INTERNAL, "", "out of memory"), DM_BS_TRANSIENT;
    char path[200], what[64], msg[240];
    snprintf(path, sizeof path,
             "/_db/%s/_api/import?collection=%s&type=documents&onDuplicate=update&details=true",
             a->db, collection);
    snprintf(what, sizeof what, "import into %s", collection);
    request r = {"POST", path, docs->data, docs->len, true, true};
    long status = 0;
    dm_bstatus st = call(a, &r, &status, err);
    if (st != DM_BS_OK || status != 201)
        return st != DM_BS_OK ? st : http_fail(a, status, what, err);
    cJSON *j = reply_json(a);
    int64_t errors, created, updated;
    if (!json_int(cJSON_GetObjectItemCaseSensitive(j, "errors"), 0, (int64_t)n, &errors) ||
        !json_int(cJSON_GetObjectItemCaseSensitive(j, "created"), 0, (int64_t)n, &created) ||
        !json_int(cJSON_GetObjectItemCaseSensitive(j, "updated"), 0, (int64_t)n, &updated)) {
        st = unreadable(what, "no document counts", err);
    } else if (errors > 0) {
        const cJSON *d = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "details"), 0);
        printable(msg, sizeof msg, cJSON_IsString(d) ? d->valuestring : "no details");
        dm_fail(err, DM_E_UNAVAILABLE, "", "arangodb %s: %lld of %zu documents refused: %s", what,
                (long long)errors, n, msg);
        st = DM_BS_PERMANENT;
    } else if (created + updated != (int64_t)n) {
        dm_fail(err, DM_E_UNAVAILABLE, "", "arangodb %s: %lld of %zu documents stored", what,
                (long long)(created + updated), n);
        st = DM_BS_PERMANENT;
    }
    cJSON_Delete(j);
    return st;
}

static void new_gen(char gen[GEN_LEN + 1])
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
    snprintf(gen, GEN_LEN + 1, "%016llx", (unsigned long long)v);
}

static void edge_docs(dm_buf *b, const dm_arango_window *w, const dm_arango_edge *edges, size_t ne,
                      const char *gen)
{
    char ka[DM_SYMBOL_MAX + 1], kb[DM_SYMBOL_MAX + 1];
    for (size_t i = 0; i < ne; i++) {
        const dm_arango_edge *e = &edges[i];
        dm_arango_symbol_key(e->a, ka);
        dm_arango_symbol_key(e->b, kb);
        dm_buf_printf(b,
                      "{\"_key\":\"%s-%s-%s\",\"_from\":\"" SYMBOLS "/%s\",\"_to\":\"" SYMBOLS
                      "/%s\",\"a\":\"%s\",\"b\":\"%s\",\"r\":%.17g,\"n\":%lld,\"timeframe\":"
                      "\"%s\",\"window_start\":%lld,\"window_end\":%lld,\"window_candles\":%d,"
                      "\"gen\":\"%s\"}\n",
                      w->timeframe, ka, kb, ka, kb, e->a, e->b, e->r, (long long)e->n, w->timeframe,
                      (long long)w->window_start, (long long)w->window_end, w->window_candles, gen);
    }
}

static dm_bstatus stored(dm_arango *a, const char *tf, dm_arango_window *out, char gen[GEN_LEN + 1],
                         dm_err *err);

/* Order matters: vertices, edges, then the window (the switch), then the sweep. */
static dm_bstatus write_window(dm_arango *a, const dm_arango_window *w, const char *const *symbols,
                               size_t ns, const dm_arango_edge *edges, size_t ne, dm_buf *b,
                               dm_err *err)
{
    char gen[GEN_LEN + 1], key[DM_SYMBOL_MAX + 1];
    new_gen(gen);
    dm_bstatus st = DM_BS_OK;
    for (size_t i = 0; i < ns; i++) {
        dm_arango_symbol_key(symbols[i], key);
        dm_buf_printf(b, "{\"_key\":\"%s\",\"symbol\":\"%s\"}\n", key, symbols[i]);
    }
    if (ns)
        st = import(a, SYMBOLS, b, ns, err);
    dm_buf_reset(b);
    edge_docs(b, w, edges, ne, gen);
    if (st == DM_BS_OK && ne)
        st = import(a, EDGES, b, ne, err);
    dm_buf_reset(b);
    dm_buf_printf(b,
                  "{\"_key\":\"%s\",\"timeframe\":\"%s\",\"window_start\":%lld,\"window_end\":"
                  "%lld,\"window_candles\":%d,\"gen\":\"%s\"}\n",
                  w->timeframe, w->timeframe, (long long)w->window_start, (long long)w->window_end,
                  w->window_candles, gen);
    if (st == DM_BS_OK)
        st = import(a, WINDOWS, b, 1, err);
    if (st != DM_BS_OK)
        return st;
    cJSON *bind = cJSON_CreateObject();
    cJSON_AddStringToObject(bind, "tf", w->timeframe);
    cJSON_AddStringToObject(bind, "gen", gen);
    return query(a, "stale edge removal",
                 "FOR e IN " EDGES " FILTER e.timeframe == @tf AND e.gen != @gen "
                 "REMOVE e IN " EDGES,
                 bind, NULL, NULL, err);
}

dm_bstatus dm_arango_put_window(dm_arango *a, const dm_arango_window *w, const char *const *symbols,
                                size_t n_symbols, const dm_arango_edge *edges, size_t n_edges,
                                dm_err *err)
{
    dm_bstatus st = check_put(w, symbols, n_symbols, edges, n_edges, err);
    if (st != DM_BS_OK)
        return st;
    dm_arango_window old;
    char gen[GEN_LEN + 1];
    st = stored(a, w->timeframe, &old, gen, err);
    if (st == DM_BS_OK && old.window_end > w->window_end) {
        DM_DEBUG("arangodb", "window %s ending %lld is older than the stored one: ignored",
                 w->timeframe, (long long)w->window_end);
        return DM_BS_OK;
    }
    if (st != DM_BS_OK && st != DM_BS_MISS)
        return st;
    dm_err_clear(err); /* a first window is no error */
    dm_buf b;
    dm_buf_init(&b);
    st = write_window(a, w, symbols, n_symbols, edges, n_edges, &b, err);
    dm_buf_free(&b);
    return st;
}

/* ---- reads --------------------------------------------------------------------------- */

static dm_bstatus stored(dm_arango *a, const char *tf, dm_arango_window *out, char gen[GEN_LEN + 1],
                         dm_err *err)
{
    char path[160], msg[8];
    snprintf(path, sizeof path, "/_db/%s/_api/document/" WINDOWS "/%s", a->db, tf);
    request r = {"GET", path, NULL, 0, true, true};
    long status = 0;
    dm_bstatus st = call(a, &r, &status, err);
    if (st != DM_BS_OK)
        return st;
    if (status == 404 && error_num(a, msg, sizeof msg) == 1202) /* document not found */
        return dm_fail(err, DM_E_NOT_FOUND, "timeframe", "arangodb: no stored %s window", tf),
               DM_BS_MISS;
    if (status != 200)
        return http_fail(a, status, "stored window", err);
    cJSON *j = reply_json(a);
    int64_t candles = 0;
    const char *g = json_str(j, "gen"), *t = json_str(j, "timeframe");
    bool ok =
        t && strcmp(t, tf) == 0 && all_of(g, GEN_LEN, GEN_LEN, "0123456789abcdef") &&
        json_int(cJSON_GetObjectItemCaseSensitive(j, "window_start"), INT64_MIN, INT64_MAX,
                 &out->window_start) &&
        json_int(cJSON_GetObjectItemCaseSensitive(j, "window_end"), INT64_MIN, INT64_MAX,
                 &out->window_end) &&
        json_int(cJSON_GetObjectItemCaseSensitive(j, "window_candles"), 1, INT32_MAX, &candles) &&
        out->window_start < out->window_end;
    if (ok) {
        snprintf(gen, GEN_LEN + 1, "%s", g);
        out->timeframe = tf;
        out->window_candles = (int)candles;
    }
    cJSON_Delete(j);
    return ok ? DM_BS_OK : unreadable("stored window", "not a window document", err);
}

dm_bstatus dm_arango_stored_window(dm_arango *a, const char *timeframe, dm_arango_window *out,
                                   dm_err *err)
{
    char gen[GEN_LEN + 1];
    if (!valid_timeframe(timeframe))
        return refuse("timeframe", "timeframe is not one of the fixed names", err);
    return stored(a, timeframe, out, gen, err);
}

/* One row of a read, in fixed-size strings so an abandoned read frees one array. */
typedef struct {
    char a[DM_SYMBOL_MAX + 1], b[DM_SYMBOL_MAX + 1], s[DM_SYMBOL_MAX + 1];
    double r;
    int64_t n;
    int d;
} row;

typedef struct {
    row *v;
    size_t n, cap;
    const char *symbol; /* correlations: every row must hold it */
    int depth;          /* traversals: the deepest allowed */
} rows;

static row *push(rows *rs)
{
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 64;
        row *v = realloc(rs->v, cap * sizeof *v);
        if (v == NULL)
            return NULL;
        rs->v = v;
        rs->cap = cap;
    }
    return &rs->v[rs->n++];
}

/* A string field holding a valid symbol, copied into out. */
static bool json_symbol(const cJSON *obj, const char *name, char out[DM_SYMBOL_MAX + 1])
{
    char key[DM_SYMBOL_MAX + 1];
    const char *s = json_str(obj, name);
    if (!dm_arango_symbol_key(s, key))
        return false;
    snprintf(out, DM_SYMBOL_MAX + 1, "%s", s);
    return true;
}

static bool parse_edge(const cJSON *j, row *out)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "r");
    if (!json_symbol(j, "a", out->a) || !json_symbol(j, "b", out->b) || !cJSON_IsNumber(r) ||
        !json_int(cJSON_GetObjectItemCaseSensitive(j, "n"), 0, INT64_MAX, &out->n))
        return false;
    out->r = r->valuedouble;
    dm_arango_edge e = {out->a, out->b, out->r, out->n};
    return valid_edge(&e);
}

static dm_bstatus take_pair(void *ctx, const cJSON *j, dm_err *err)
{
    rows *rs = ctx;
    row *r = push(rs);
    if (r == NULL)
        return dm_fail(err, DM_E_INTERNAL, "", "out of memory"), DM_BS_TRANSIENT;
    if (!parse_edge(j, r) || (strcmp(r->a, rs->symbol) != 0 && strcmp(r->b, rs->symbol) != 0))
        return unreadable("correlations", "a row is not a pair of the symbol", err);
    return DM_BS_OK;
}

static dm_bstatus take_step(void *ctx, const cJSON *j, dm_err *err)
{
    rows *rs = ctx;
    row *r = push(rs);
    int64_t d = 0;
    if (r == NULL)
        return dm_fail(err, DM_E_INTERNAL, "", "out of memory"), DM_BS_TRANSIENT;
    if (!parse_edge(j, r) || !json_symbol(j, "s", r->s) ||
        !json_int(cJSON_GetObjectItemCaseSensitive(j, "d"), 1, rs->depth, &d) ||
        (strcmp(r->s, r->a) != 0 && strcmp(r->s, r->b) != 0))
        return unreadable("traversal", "a row is not a vertex with its edge", err);
    r->d = (int)d;
    return DM_BS_OK;
}

void dm_arango_edges_free(dm_arango_edge *edges, size_t n)
{
    for (size_t i = 0; edges && i < n; i++) {
        free((char *)edges[i].a);
        free((char *)edges[i].b);
    }
    free(edges);
}

/* Owned copies of the rows' edges, keeping only a row whose `keep` is true (NULL: all). */
static dm_bstatus to_edges(const rows *rs, const bool *keep, dm_arango_edge **out, size_t *n,
                           dm_err *err)
{
    *out = calloc(rs->n ? rs->n : 1, sizeof **out);
    *n = 0;
    for (size_t i = 0; *out && i < rs->n; i++) {
        if (keep && !keep[i])
            continue;
        dm_arango_edge *e = &(*out)[(*n)++];
        e->a = strdup(rs->v[i].a);
        e->b = strdup(rs->v[i].b);
        e->r = rs->v[i].r;
        e->n = rs->v[i].n;
        if (e->a == NULL || e->b == NULL) {
            dm_arango_edges_free(*out, *n);
            *out = NULL;
        }
    }
    if (*out == NULL) {
        *n = 0;
        return dm_fail(err, DM_E_INTERNAL, "", "out of memory"), DM_BS_TRANSIENT;
    }
    return DM_BS_OK;
}

static dm_bstatus check_read(const char *tf, const char *symbol, double threshold, dm_err *err)
{
    char key[DM_SYMBOL_MAX + 1];
    if (!valid_timeframe(tf))
        return refuse("timeframe", "timeframe is not one of the fixed names", err);
    if (!dm_arango_symbol_key(symbol, key))
        return refuse("symbol", "symbol is not [A-Z0-9]+ with at most one inner '/'", err);
    if (!isfinite(threshold) || threshold < 0 || threshold > 1)
        return refuse("threshold", "threshold must be within [0, 1]", err);
    return DM_BS_OK;
}

/* Bind variables every read shares: the start vertex, timeframe, generation, threshold. */
static cJSON *read_binds(const char *tf, const char *symbol, const char *gen, double threshold)
{
    char key[DM_SYMBOL_MAX + 1], id[DM_SYMBOL_MAX + 16];
    dm_arango_symbol_key(symbol, key);
    snprintf(id, sizeof id, SYMBOLS "/%s", key);
    cJSON *bind = cJSON_CreateObject();
    cJSON_AddStringToObject(bind, "v", id);
    cJSON_AddStringToObject(bind, "tf", tf);
    cJSON_AddStringToObject(bind, "gen", gen);
    bind_double(bind, "t", threshold);
    return bind;
}

dm_bstatus dm_arango_correlations(dm_arango *a, const char *timeframe, const char *symbol,
                                  double threshold, dm_arango_edge **out, size_t *n, dm_err *err)
{
    *out = NULL;
    *n = 0;
    dm_arango_window w;
    char gen[GEN_LEN + 1];
    dm_bstatus st = check_read(timeframe, symbol, threshold, err);
    if (st == DM_BS_OK)
        st = stored(a, timeframe, &w, gen, err);
    if (st != DM_BS_OK)
        return st;
    rows rs = {.symbol = symbol};
    /* The OR on _from/_to is served by the edge index. */
    st = query(a, "correlations",
               "FOR e IN " EDGES " FILTER (e._from == @v OR e._to == @v) AND e.timeframe == @tf "
               "AND e.gen == @gen AND ABS(e.r) >= @t SORT ABS(e.r) DESC, e.a, e.b "
               "RETURN {a: e.a, b: e.b, r: e.r, n: e.n}",
               read_binds(timeframe, symbol, gen, threshold), take_pair, &rs, err);
    if (st == DM_BS_OK)
        st = to_edges(&rs, NULL, out, n, err);
    free(rs.v);
    return st;
}

static int by_symbol_depth(const void *x, const void *y)
{
    const row *p = x, *q = y;
    int c = strcmp(p->s, q->s);
    return c ? c : (p->d > q->d) - (p->d < q->d);
}

static int by_pair(const void *x, const void *y)
{
    const row *p = x, *q = y;
    int c = strcmp(p->a, q->a);
    return c ? c : strcmp(p->b, q->b);
}

static int by_depth_symbol(const void *x, const void *y)
{
    const dm_arango_node *p = x, *q = y;
    return p->depth != q->depth ? (p->depth > q->depth) - (p->depth < q->depth)
                                : strcmp(p->symbol, q->symbol);
}

/* Rows are (vertex, edge that reached it, depth): nodes keep their least depth, edges
 * appear once. Sorting keeps this O(n log n) however many rows a hostile reply holds. */
static dm_bstatus collect(rows *rs, dm_arango_node **nodes, size_t *n_nodes, dm_arango_edge **edges,
                          size_t *n_edges, dm_err *err)
{
    bool *keep = calloc(rs->n ? rs->n : 1, sizeof *keep);
    *nodes = calloc(rs->n ? rs->n : 1, sizeof **nodes);
    if (keep == NULL || *nodes == NULL) {
        free(keep);
        free(*nodes);
        *nodes = NULL;
        return dm_fail(err, DM_E_INTERNAL, "", "out of memory"), DM_BS_TRANSIENT;
    }
    qsort(rs->v, rs->n, sizeof *rs->v, by_symbol_depth);
    for (size_t i = 0; i < rs->n; i++)
        if (i == 0 || strcmp(rs->v[i].s, rs->v[i - 1].s) != 0) {
            dm_arango_node *v = &(*nodes)[(*n_nodes)++];
            snprintf(v->symbol, sizeof v->symbol, "%s", rs->v[i].s);
            v->depth = rs->v[i].d;
        }
    qsort(*nodes, *n_nodes, sizeof **nodes, by_depth_symbol);
    qsort(rs->v, rs->n, sizeof *rs->v, by_pair);
    for (size_t i = 0; i < rs->n; i++)
        keep[i] = i == 0 || by_pair(&rs->v[i], &rs->v[i - 1]) != 0;
    dm_bstatus st = to_edges(rs, keep, edges, n_edges, err);
    free(keep);
    if (st != DM_BS_OK) {
        free(*nodes);
        *nodes = NULL;
        *n_nodes = 0;
    }
    return st;
}

dm_bstatus dm_arango_traverse(dm_arango *a, const char *timeframe, const char *start, int depth,
                              double threshold, dm_arango_node **nodes, size_t *n_nodes,
                              dm_arango_edge **edges, size_t *n_edges, dm_err *err)
{
    *nodes = NULL;
    *edges = NULL;
    *n_nodes = *n_edges = 0;
    dm_arango_window w;
    char gen[GEN_LEN + 1];
    dm_bstatus st = check_read(timeframe, start, threshold, err);
    if (st == DM_BS_OK && (depth < 1 || depth > DM_ARANGO_MAX_DEPTH))
        st = refuse("depth", "depth must be within 1..DM_ARANGO_MAX_DEPTH", err);
    if (st == DM_BS_OK)
        st = stored(a, timeframe, &w, gen, err);
    if (st != DM_BS_OK)
        return st;
    cJSON *bind = read_binds(timeframe, start, gen, threshold);
    cJSON_AddNumberToObject(bind, "depth", depth);
    cJSON_AddStringToObject(bind, "g", GRAPH);
    rows rs = {.depth = depth};
    /* PRUNE also runs at depth 0, where e is null. uniqueVertices "path", not "global":
     * with PRUNE, "global" can hide vertices (arangodb#15537); the depth is the least
     * over paths, taken by COLLECT so each (vertex, edge) comes back once. PRUNE still
     * emits the vertex behind a failing edge: FILTER drops it. */
    st = query(a, "traversal",
               "FOR v, e, p IN 1..@depth ANY @v GRAPH @g "
               "PRUNE e != null AND (ABS(e.r) < @t OR e.timeframe != @tf OR e.gen != @gen) "
               "OPTIONS {order: \"bfs\", uniqueVertices: \"path\"} "
               "FILTER ABS(e.r) >= @t AND e.timeframe == @tf AND e.gen == @gen "
               "COLLECT s = v.symbol, a = e.a, b = e.b, r = e.r, n = e.n "
               "AGGREGATE d = MIN(LENGTH(p.edges)) "
               "RETURN {s: s, d: d, a: a, b: b, r: r, n: n}",
               bind, take_step, &rs, err);
    if (st == DM_BS_OK)
        st = collect(&rs, nodes, n_nodes, edges, n_edges, err);
    free(rs.v);
    return st;
}

/* ---- life cycle ---------------------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_cleanup_at_exit(void)
{
    curl_global_cleanup();
}

static void curl_init_once(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK)
        atexit(curl_cleanup_at_exit);
}

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
    pthread_once(&curl_once, curl_init_once);
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
