#include "weaviate_priv.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define WV_CONNECT_TIMEOUT_MS 5000
#define WV_DEFAULT_TIMEOUT_MS 10000

dm_bstatus wv_oom(dm_err *err)
{
    return dm_fail(err, DM_E_INTERNAL, "", "out of memory"), DM_BS_TRANSIENT;
}

/* ---- HTTP ---------------------------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    dm_weaviate *w = ud;
    size_t n = size * nmemb;
    if (w->reply.len + n > w->reply_cap)
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    dm_buf_put(&w->reply, p, n);
    return w->reply.oom ? 0 : n;
}

/* One request to base url + path (body NULL: GET); the reply lands in w->reply and its
 * status in *status. Every request here is idempotent (fixed ids, create-or-422), so one
 * that died on a reused keep-alive connection is sent once more. */
dm_bstatus wv_perform(dm_weaviate *w, const char *path, const char *body, const char *what,
                      long *status, dm_err *err)
{
    dm_buf_reset(&w->target);
    dm_buf_printf(&w->target, "%s%s", w->url, path);
    if (w->target.oom)
        return wv_oom(err);
    CURLcode rc = CURLE_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        dm_buf_reset(&w->reply);
        curl_easy_setopt(w->curl, CURLOPT_URL, w->target.data);
        if (body != NULL) {
            curl_easy_setopt(w->curl, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(w->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
        } else {
            curl_easy_setopt(w->curl, CURLOPT_HTTPGET, 1L);
        }
        rc = curl_easy_perform(w->curl);
        long fresh = 1;
        curl_easy_getinfo(w->curl, CURLINFO_NUM_CONNECTS, &fresh);
        if (!(fresh == 0 &&
              (rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING)))
            break;
    }
    size_t cap = w->reply_cap;
    w->reply_cap = DM_WV_MAX_REPLY;
    if (rc != CURLE_OK) {
        if (w->reply.oom)
            return wv_oom(err);
        if (rc == CURLE_WRITE_ERROR)
            return dm_fail(err, DM_E_UNAVAILABLE, "", "weaviate %s: reply larger than %zu bytes",
                           what, cap),
                   DM_BS_TRANSIENT;
        return dm_fail(err, DM_E_UNAVAILABLE, "", "weaviate %s failed: %s (%s)", what,
                       curl_easy_strerror(rc), w->where),
               DM_BS_TRANSIENT;
    }
    *status = 0;
    curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, status);
    return DM_BS_OK;
}

cJSON *wv_reply_json(const dm_weaviate *w)
{
    return w->reply.len ? cJSON_ParseWithLength(w->reply.data, w->reply.len) : NULL;
}

/* Weaviate's error body is {"error":[{"message":...}]}; anything else (a proxy) gives its
 * first line. */
void wv_error_text(const dm_weaviate *w, char *out, size_t cap)
{
    cJSON *j = wv_reply_json(w);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "error"), 0), "message");
    if (cJSON_IsString(m))
        wv_clean(m->valuestring, strlen(m->valuestring), out, cap);
    else
        wv_clean(w->reply.data ? w->reply.data : "", w->reply.len, out, cap);
    cJSON_Delete(j);
    if (out[0] == '\0')
        snprintf(out, cap, "empty reply");
}

dm_bstatus wv_http_fail(const dm_weaviate *w, long status, const char *what, dm_err *err)
{
    char msg[160];
    wv_error_text(w, msg, sizeof msg);
    if (status == 401 || status == 403)
        return dm_fail(err, DM_E_UNAVAILABLE, "api_key",
                       "weaviate %s: HTTP %ld from %s, the API key was refused (%s): check the "
                       "configured api_key and its permissions",
                       what, status, w->where, msg),
               DM_BS_PERMANENT;
    dm_fail(err, DM_E_UNAVAILABLE, "", "weaviate %s failed: HTTP %ld from %s: %s", what, status,
            w->where, msg);
    return status >= 500 || status == 408 || status == 429 ? DM_BS_TRANSIENT : DM_BS_PERMANENT;
}

/* A reply that is not what the API documents: the request may be fine and the answer
 * came from a proxy or a broken server, so another try (later, elsewhere) is the cure. */
dm_bstatus wv_malformed(const char *what, const char *why, dm_err *err)
{
    return dm_fail(err, DM_E_UNAVAILABLE, "", "weaviate %s: unexpected reply (%s)", what, why),
           DM_BS_TRANSIENT;
}

/* POSTs a cJSON body (deleted here) and wants 200. */
dm_bstatus wv_post_json(dm_weaviate *w, const char *path, cJSON *body, const char *what,
                        long *status, dm_err *err)
{
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (text == NULL)
        return wv_oom(err);
    dm_bstatus st = wv_perform(w, path, text, what, status, err);
    cJSON_free(text);
    return st;
}

dm_bstatus dm_weaviate_ready(dm_weaviate *w, dm_err *err)
{
    long status = 0;
    dm_bstatus st = wv_perform(w, "/v1/.well-known/ready", NULL, "readiness", &status, err);
    if (st != DM_BS_OK || status == 200)
        return st;
    if (status == 503)
        return dm_fail(err, DM_E_UNAVAILABLE, "", "weaviate at %s is not ready (HTTP 503)",
                       w->where),
               DM_BS_TRANSIENT;
    return wv_http_fail(w, status, "readiness", err);
}

/* ---- life cycle ---------------------------------------------------------------------- */

void dm_weaviate_close(dm_weaviate *w)
{
    if (w == NULL)
        return;
    if (w->curl)
        curl_easy_cleanup(w->curl);
    for (struct curl_slist *p = w->hdr; p; p = p->next)
        explicit_bzero(p->data, strlen(p->data));
    curl_slist_free_all(w->hdr);
    dm_buf_free(&w->target);
    dm_buf_free(&w->reply);
    free(w->z);
    free(w);
}

/* Base url without credentials, query or trailing '/', and "host[:port]" for messages. */
static bool parse_url(dm_weaviate *w, const char *url)
{
    size_t scheme = !url                               ? 0
                    : strncmp(url, "http://", 7) == 0  ? 7
                    : strncmp(url, "https://", 8) == 0 ? 8
                                                       : 0;
    if (scheme == 0 || strlen(url) >= sizeof w->url)
        return false;
    size_t auth = strcspn(url + scheme, "/?#");
    if (auth == 0 || memchr(url + scheme, '@', auth) || strpbrk(url + scheme, "?#") ||
        strpbrk(url, " \t\r\n"))
        return false;
    snprintf(w->url, sizeof w->url, "%s", url);
    size_t n = strlen(w->url);
    while (n > scheme + auth && w->url[n - 1] == '/')
        w->url[--n] = '\0';
    snprintf(w->where, sizeof w->where, "%.*s", (int)auth, url + scheme);
    return true;
}

/* Weaviate's rule for class names. */
static bool valid_class(const char *s)
{
    size_t n = s ? strnlen(s, WV_CLASS_MAX + 1) : 0;
    if (n == 0 || n > WV_CLASS_MAX || !(s[0] >= 'A' && s[0] <= 'Z'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

static const char *config_problem(const dm_weaviate_config *cfg, dm_weaviate *w)
{
    if (!parse_url(w, cfg->url))
        return "url must be http(s)://host[:port][/path] without credentials or query";
    if (!valid_class(cfg->class_name))
        return "class_name must match [A-Z][_0-9A-Za-z]* (at most 63 characters)";
    if (cfg->index_type == NULL ||
        (strcmp(cfg->index_type, "flat") != 0 && strcmp(cfg->index_type, "hnsw") != 0))
        return "index_type must be flat (exact) or hnsw (approximate)";
    if (cfg->window < 2 || cfg->window > DM_WV_WINDOW_MAX)
        return "window must be 2..4096 closes";
    if (cfg->api_key &&
        (!cfg->api_key[0] || !printable(cfg->api_key) || strlen(cfg->api_key) > 1024))
        return "api_key must be 1-1024 printable characters";
    return NULL;
}

static bool set_headers(dm_weaviate *w, const char *api_key)
{
    struct curl_slist *t;
    bool ok = (t = curl_slist_append(NULL, "Content-Type: application/json")) && (w->hdr = t);
    /* Batches can be large: no "Expect: 100-continue" round trip. */
    ok = ok && (t = curl_slist_append(w->hdr, "Expect:")) && (w->hdr = t);
    if (ok && api_key) {
        size_t n = strlen(api_key) + 32;
        char *line = malloc(n);
        if (line)
            snprintf(line, n, "Authorization: Bearer %s", api_key);
        ok = line && (t = curl_slist_append(w->hdr, line)) && (w->hdr = t);
        if (line)
            explicit_bzero(line, n);
        free(line);
    }
    return ok;
}

dm_weaviate *dm_weaviate_open(const dm_weaviate_config *cfg, dm_err *err)
{
    dm_backend_curl_init();
    dm_weaviate *w = calloc(1, sizeof *w);
    if (w == NULL) {
        wv_oom(err);
        return NULL;
    }
    dm_buf_init(&w->target);
    dm_buf_init(&w->reply);
    w->reply_cap = DM_WV_MAX_REPLY;
    const char *problem = config_problem(cfg, w);
    if (problem != NULL) {
        dm_fail(err, DM_E_INVALID_FIELD, "weaviate", "weaviate config: %s", problem);
        dm_weaviate_close(w);
        return NULL;
    }
    snprintf(w->cls, sizeof w->cls, "%s", cfg->class_name);
    snprintf(w->index_type, sizeof w->index_type, "%s", cfg->index_type);
    w->window = cfg->window;
    w->z = calloc((size_t)w->window, sizeof *w->z);
    if (w->z == NULL || (w->curl = curl_easy_init()) == NULL || !set_headers(w, cfg->api_key)) {
        wv_oom(err);
        dm_weaviate_close(w);
        return NULL;
    }
    long timeout = cfg->timeout_ms > 0 ? cfg->timeout_ms : WV_DEFAULT_TIMEOUT_MS;
    CURL *c = w->curl;
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     timeout < WV_CONNECT_TIMEOUT_MS ? timeout : (long)WV_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, w->hdr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "dm-worker");
    return w;
}
