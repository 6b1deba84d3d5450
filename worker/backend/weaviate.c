#include "weaviate.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../codec/enc.h"
#include "../util/log.h"

#define WV_CONNECT_TIMEOUT_MS 5000
#define WV_DEFAULT_TIMEOUT_MS 10000
#define WV_CLASS_MAX 63
/* Years 0001..9999: what RFC 3339 can write. */
#define WV_DATE_MIN_MS (-62135596800000LL)
#define WV_DATE_MAX_MS 253402300799999LL

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

/* The properties of the class, in the order they are created and checked. */
static const struct {
    const char *name, *type;
    bool field; /* text tokenized as one token: "EUR/USD" stays itself */
} PROPS[] = {
    {"symbol", "text", true},
    {"timeframe", "text", true},
    {"timestamp", "date", false},
    {"start_timestamp", "date", false},
};

static dm_bstatus oom(dm_err *err)
{
    return dm_fail(err, DM_E_INTERNAL, "", "out of memory"), DM_BS_TRANSIENT;
}

/* ---- pure helpers -------------------------------------------------------------------- */

bool dm_weaviate_uuid5(const char *name, char out[37])
{
    static const unsigned char dns[16] = {0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1,
                                          0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    bool ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha1(), NULL) &&
              EVP_DigestUpdate(c, dns, sizeof dns) && EVP_DigestUpdate(c, name, strlen(name)) &&
              EVP_DigestFinal_ex(c, md, &len) && len >= 16;
    EVP_MD_CTX_free(c);
    out[0] = '\0';
    if (!ok)
        return false;
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x50); /* version 5 */
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        p += sprintf(p, "%02x", md[i]);
    }
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant's algorithms). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

bool dm_weaviate_format_date(int64_t ms, char out[32])
{
    if (ms < WV_DATE_MIN_MS || ms > WV_DATE_MAX_MS)
        return false;
    int64_t days = ms / DM_DAY_MS, rem = ms % DM_DAY_MS, y;
    if (rem < 0) {
        days--;
        rem += DM_DAY_MS;
    }
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int s = (int)(rem / 1000);
    snprintf(out, 32, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", (long long)y, m, d, s / 3600,
             s / 60 % 60, s % 60, (int)(rem % 1000));
    return true;
}

static bool digits(const char **p, int n, int *out)
{
    *out = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9')
            return false;
        *out = *out * 10 + (**p - '0');
    }
    return true;
}

static bool sep(const char **p, char c)
{
    return **p == c ? (++*p, true) : false;
}

bool dm_weaviate_parse_date(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, sec, frac = 0, oh = 0, om = 0, sign = 0;
    const char *p = s;
    if (s == NULL || !digits(&p, 4, &y) || !sep(&p, '-') || !digits(&p, 2, &mo) || !sep(&p, '-') ||
        !digits(&p, 2, &d) || !sep(&p, 'T') || !digits(&p, 2, &h) || !sep(&p, ':') ||
        !digits(&p, 2, &mi) || !sep(&p, ':') || !digits(&p, 2, &sec))
        return false;
    if (sep(&p, '.')) {
        int k = 0;
        for (; *p >= '0' && *p <= '9' && k < 9; p++, k++)
            if (k < 3)
                frac = frac * 10 + (*p - '0');
        if (k == 0)
            return false;
        for (; k < 3; k++)
            frac *= 10;
    }
    if (*p == '+' || *p == '-') {
        sign = *p++ == '-' ? -1 : 1;
        if (!digits(&p, 2, &oh) || !sep(&p, ':') || !digits(&p, 2, &om) || oh > 23 || om > 59)
            return false;
    } else if (!sep(&p, 'Z')) {
        return false;
    }
    static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (*p != '\0' || y < 1 || mo < 1 || mo > 12 || d < 1 || (unsigned)d > mdays[mo - 1] ||
        (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || sec > 59)
        return false;
    int64_t t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec;
    *ms = (t - sign * (oh * 3600 + om * 60)) * 1000 + frac;
    return true;
}

bool dm_weaviate_znorm(const double *x, size_t n, double *z)
{
    if (x == NULL || n == 0)
        return false;
    double mean = 0, var = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            return false;
        mean += x[i];
    }
    mean /= (double)n;
    for (size_t i = 0; i < n; i++)
        var += (x[i] - mean) * (x[i] - mean);
    double sd = sqrt(var / (double)n);
    if (!(sd >= DM_WV_FLAT_STD) || !isfinite(sd)) /* NaN when the sum overflowed */
        return false;
    for (size_t i = 0; i < n; i++)
        z[i] = (x[i] - mean) / sd;
    return true;
}

/* Symbols are spliced into GraphQL string literals: no quote, backslash or control
 * character can pass, and a hit's symbol always fits dm_weaviate_hit. */
static bool safe_symbol(const char *s)
{
    size_t n = s ? strnlen(s, DM_SYMBOL_MAX + 1) : 0;
    if (n == 0 || n > DM_SYMBOL_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9') || strchr("/._-", s[i])))
            return false;
    return true;
}

static bool safe_timeframe(const char *s)
{
    dm_tf tf;
    return s != NULL && strnlen(s, 8) < 8 && dm_tf_parse(s, &tf) && strcmp(dm_tf_name(tf), s) == 0;
}

static bool is_uuid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        char c = s[i];
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return s[36] == '\0';
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
static dm_bstatus perform(dm_weaviate *w, const char *path, const char *body, const char *what,
                          long *status, dm_err *err)
{
    dm_buf_reset(&w->target);
    dm_buf_printf(&w->target, "%s%s", w->url, path);
    if (w->target.oom)
        return oom(err);
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
            return oom(err);
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

static cJSON *reply_json(const dm_weaviate *w)
{
    return w->reply.len ? cJSON_ParseWithLength(w->reply.data, w->reply.len) : NULL;
}

/* A message from the network, made one printable line of at most cap-1 bytes. */
static void clean(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && s[i] && s[i] != '\n' && o + 1 < cap; i++)
        out[o++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i];
    out[o] = '\0';
}

/* Weaviate's error body is {"error":[{"message":...}]}; anything else (a proxy) gives its
 * first line. */
static void error_text(const dm_weaviate *w, char *out, size_t cap)
{
    cJSON *j = reply_json(w);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "error"), 0), "message");
    if (cJSON_IsString(m))
        clean(m->valuestring, strlen(m->valuestring), out, cap);
    else
        clean(w->reply.data ? w->reply.data : "", w->reply.len, out, cap);
    cJSON_Delete(j);
    if (out[0] == '\0')
        snprintf(out, cap, "empty reply");
}

static dm_bstatus http_fail(const dm_weaviate *w, long status, const char *what, dm_err *err)
{
    char msg[160];
    error_text(w, msg, sizeof msg);
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
static dm_bstatus malformed(const char *what, const char *why, dm_err *err)
{
    return dm_fail(err, DM_E_UNAVAILABLE, "", "weaviate %s: unexpected reply (%s)", what, why),
           DM_BS_TRANSIENT;
}

/* POSTs a cJSON body (deleted here) and wants 200. */
static dm_bstatus post_json(dm_weaviate *w, const char *path, cJSON *body, const char *what,
                            long *status, dm_err *err)
{
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (text == NULL)
        return oom(err);
    dm_bstatus st = perform(w, path, text, what, status, err);
    cJSON_free(text);
    return st;
}

dm_bstatus dm_weaviate_ready(dm_weaviate *w, dm_err *err)
{
    long status = 0;
    dm_bstatus st = perform(w, "/v1/.well-known/ready", NULL, "readiness", &status, err);
    if (st != DM_BS_OK || status == 200)
        return st;
    if (status == 503)
        return dm_fail(err, DM_E_UNAVAILABLE, "", "weaviate at %s is not ready (HTTP 503)",
                       w->where),
               DM_BS_TRANSIENT;
    return http_fail(w, status, "readiness", err);
}

/* ---- schema -------------------------------------------------------------------------- */

static cJSON *class_json(const dm_weaviate *w)
{
    cJSON *c = cJSON_CreateObject(), *vic = NULL, *props = NULL;
    bool ok = c && cJSON_AddStringToObject(c, "class", w->cls) &&
              cJSON_AddStringToObject(c, "vectorizer", "none") &&
              cJSON_AddStringToObject(c, "vectorIndexType", w->index_type) &&
              (vic = cJSON_AddObjectToObject(c, "vectorIndexConfig")) &&
              cJSON_AddStringToObject(vic, "distance", "cosine");
    /* Pinned rather than left to the server version's defaults (64 before 1.26). */
    if (ok && strcmp(w->index_type, "hnsw") == 0)
        ok = cJSON_AddNumberToObject(vic, "maxConnections", 32) &&
             cJSON_AddNumberToObject(vic, "efConstruction", 128);
    ok = ok && (props = cJSON_AddArrayToObject(c, "properties"));
    for (size_t i = 0; ok && i < sizeof PROPS / sizeof *PROPS; i++) {
        cJSON *p = cJSON_CreateObject(), *types = NULL;
        ok = p && cJSON_AddItemToArray(props, p) &&
             cJSON_AddStringToObject(p, "name", PROPS[i].name) &&
             (types = cJSON_AddArrayToObject(p, "dataType")) &&
             cJSON_AddItemToArray(types, cJSON_CreateString(PROPS[i].type)) &&
             (!PROPS[i].field || cJSON_AddStringToObject(p, "tokenization", "field"));
    }
    if (!ok)
        cJSON_Delete(c);
    return ok ? c : NULL;
}

static const char *str_or(const cJSON *o, const char *key, const char *dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return v == NULL || cJSON_IsNull(v) ? dflt : cJSON_IsString(v) ? v->valuestring : "(not text)";
}

/* The first way an existing class differs from ours, into diff ("" when none). Absent
 * settings are the server's defaults: hnsw, cosine, word tokenization. */
static void class_diff(const dm_weaviate *w, const cJSON *c, char *diff, size_t cap)
{
    const char *idx = str_or(c, "vectorIndexType", "hnsw");
    const char *dist =
        str_or(cJSON_GetObjectItemCaseSensitive(c, "vectorIndexConfig"), "distance", "cosine");
    diff[0] = '\0';
    if (strcmp(idx, w->index_type) != 0) {
        snprintf(diff, cap, "vectorIndexType %.20s, not %s", idx, w->index_type);
        return;
    }
    if (strcmp(dist, "cosine") != 0) {
        snprintf(diff, cap, "distance %.20s, not cosine", dist);
        return;
    }
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(c, "properties"), *p;
    for (size_t i = 0; i < sizeof PROPS / sizeof *PROPS; i++) {
        const cJSON *found = NULL;
        cJSON_ArrayForEach(p, props)
        {
            if (strcmp(str_or(p, "name", ""), PROPS[i].name) == 0)
                found = p;
        }
        const cJSON *t = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(found, "dataType"), 0);
        const char *type = cJSON_IsString(t) ? t->valuestring : "(none)";
        const char *tok = str_or(found, "tokenization", "word");
        if (found == NULL)
            snprintf(diff, cap, "no property %s", PROPS[i].name);
        else if (strcmp(type, PROPS[i].type) != 0)
            snprintf(diff, cap, "property %s of type %.20s, not %s", PROPS[i].name, type,
                     PROPS[i].type);
        else if (PROPS[i].field && strcmp(tok, "field") != 0)
            snprintf(diff, cap, "property %s tokenized %.20s, not field", PROPS[i].name, tok);
        if (diff[0])
            return;
    }
}

static dm_bstatus check_class(dm_weaviate *w, dm_err *err)
{
    char path[128], diff[160];
    long status = 0;
    snprintf(path, sizeof path, "/v1/schema/%s", w->cls);
    dm_bstatus st = perform(w, path, NULL, "schema check", &status, err);
    if (st != DM_BS_OK)
        return st;
    if (status != 200)
        return http_fail(w, status, "schema check", err);
    cJSON *c = reply_json(w);
    if (!cJSON_IsObject(c)) {
        cJSON_Delete(c);
        return malformed("schema check", "not a class definition", err);
    }
    class_diff(w, c, diff, sizeof diff);
    cJSON_Delete(c);
    if (diff[0] == '\0')
        return DM_BS_OK;
    return dm_fail(err, DM_E_INVALID_FIELD, "class_name",
                   "weaviate class %s exists with %s: migrate or drop it, or configure "
                   "another class name",
                   w->cls, diff),
           DM_BS_PERMANENT;
}

dm_bstatus dm_weaviate_ensure_class(dm_weaviate *w, dm_err *err)
{
    long status = 0;
    cJSON *c = class_json(w);
    if (c == NULL)
        return oom(err);
    dm_bstatus st = post_json(w, "/v1/schema", c, "class creation", &status, err);
    if (st != DM_BS_OK || status == 200)
        return st;
    char msg[160];
    error_text(w, msg, sizeof msg);
    /* "class name \"X\" already exists" (1.2x+), "Name 'X' already used as a name for an
     * Object class" (older). */
    if (status == 422 && (strstr(msg, "already exists") || strstr(msg, "already used")))
        return check_class(w, err);
    return http_fail(w, status, "class creation", err);
}

/* ---- windows ------------------------------------------------------------------------- */

static dm_bstatus bad_window(size_t i, const char *field, const char *why, dm_err *err)
{
    return dm_fail(err, DM_E_INVALID_FIELD, field, "weaviate windows: window %zu: %s", i, why),
           DM_BS_PERMANENT;
}

static dm_bstatus check_windows(const dm_weaviate *w, const dm_pattern_window *win, size_t n,
                                dm_err *err)
{
    char date[32];
    for (size_t i = 0; i < n; i++) {
        const dm_pattern_window *x = &win[i];
        if (!safe_symbol(x->symbol))
            return bad_window(i, "symbol", "symbol is not 1-24 of [A-Za-z0-9/._-]", err);
        if (!safe_timeframe(x->timeframe))
            return bad_window(i, "timeframe", "unknown timeframe", err);
        if (!dm_weaviate_format_date(x->timestamp, date) ||
            !dm_weaviate_format_date(x->start_timestamp, date) || x->start_timestamp > x->timestamp)
            return bad_window(i, "timestamp", "times outside years 1-9999 or start after end", err);
        if (x->closes == NULL)
            return bad_window(i, "closes", "no closes", err);
        for (int k = 0; k < w->window; k++)
            if (!isfinite(x->closes[k]))
                return bad_window(i, "closes", "a close is not a finite number", err);
    }
    return DM_BS_OK;
}

/* Round-trip decimals (%.17g): what is stored is exactly what was computed. */
static void put_vector(dm_buf *b, const double *z, int n)
{
    dm_buf_puts(b, "[");
    for (int i = 0; i < n; i++)
        dm_buf_printf(b, "%s%.17g", i ? ", " : "", z[i]);
    dm_buf_puts(b, "]");
}

static bool add_window(dm_weaviate *w, cJSON *objects, const dm_pattern_window *x)
{
    char id[37], name[96], ts[32], start[32];
    snprintf(name, sizeof name, "%s|%s|%lld", x->symbol, x->timeframe, (long long)x->timestamp);
    dm_weaviate_format_date(x->timestamp, ts);
    dm_weaviate_format_date(x->start_timestamp, start);
    dm_buf_reset(&w->target);
    put_vector(&w->target, w->z, w->window);
    cJSON *o = cJSON_CreateObject(), *p = NULL;
    return !w->target.oom && o && cJSON_AddItemToArray(objects, o) && dm_weaviate_uuid5(name, id) &&
           cJSON_AddStringToObject(o, "class", w->cls) && cJSON_AddStringToObject(o, "id", id) &&
           (p = cJSON_AddObjectToObject(o, "properties")) &&
           cJSON_AddStringToObject(p, "symbol", x->symbol) &&
           cJSON_AddStringToObject(p, "timeframe", x->timeframe) &&
           cJSON_AddStringToObject(p, "timestamp", ts) &&
           cJSON_AddStringToObject(p, "start_timestamp", start) &&
           cJSON_AddRawToObject(o, "vector", w->target.data);
}

/* The body for the next at most DM_WV_BATCH_MAX non-flat windows from *i on; *k of them. */
static cJSON *next_batch(dm_weaviate *w, const dm_pattern_window *win, size_t n, size_t *i,
                         size_t *k)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *objects = root ? cJSON_AddArrayToObject(root, "objects") : NULL;
    bool ok = objects != NULL;
    for (*k = 0; ok && *i < n && *k < DM_WV_BATCH_MAX; (*i)++) {
        if (!dm_weaviate_znorm(win[*i].closes, (size_t)w->window, w->z))
            continue; /* flat: no shape to compare */
        ok = add_window(w, objects, &win[*i]);
        (*k)++;
    }
    if (!ok)
        cJSON_Delete(root);
    return ok ? root : NULL;
}

/* A 200 carries one element per object, each with result.errors.error[] when that object
 * was not stored. */
static dm_bstatus batch_result(const dm_weaviate *w, size_t k, dm_err *err)
{
    cJSON *r = reply_json(w), *e;
    if (!cJSON_IsArray(r) || (size_t)cJSON_GetArraySize(r) != k) {
        cJSON_Delete(r);
        return malformed("batch", "not one result per object", err);
    }
    size_t failed = 0;
    char first[160] = "no message";
    cJSON_ArrayForEach(e, r)
    {
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(e, "result");
        const cJSON *errs = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(res, "errors"), "error");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(errs, 0), "message");
        if (cJSON_IsObject(e) && cJSON_GetArraySize(errs) == 0 &&
            strcmp(str_or(res, "status", ""), "FAILED") != 0)
            continue;
        if (failed++ == 0 && cJSON_IsString(m))
            clean(m->valuestring, strlen(m->valuestring), first, sizeof first);
    }
    cJSON_Delete(r);
    if (failed == 0)
        return DM_BS_OK;
    return dm_fail(err, DM_E_UNAVAILABLE, "",
                   "weaviate batch: %zu of %zu objects not stored, first: %s", failed, k, first),
           DM_BS_TRANSIENT;
}

dm_bstatus dm_weaviate_put_windows(dm_weaviate *w, const dm_pattern_window *win, size_t n,
                                   dm_err *err)
{
    if (n > 0 && win == NULL)
        return bad_window(0, "windows", "no windows", err);
    dm_bstatus st = check_windows(w, win, n, err);
    size_t i = 0, stored = 0;
    while (st == DM_BS_OK && i < n) {
        size_t k = 0;
        long status = 0;
        cJSON *body = next_batch(w, win, n, &i, &k);
        if (body == NULL)
            return oom(err);
        if (k == 0) {
            cJSON_Delete(body);
            break;
        }
        st = post_json(w, "/v1/batch/objects", body, "batch", &status, err);
        if (st == DM_BS_OK)
            st = status == 200 ? batch_result(w, k, err) : http_fail(w, status, "batch", err);
        stored += k;
    }
    if (st == DM_BS_OK && stored < n)
        DM_DEBUG("weaviate", "%zu of %zu windows flat, not stored", n - stored, n);
    return st;
}

/* ---- search -------------------------------------------------------------------------- */

/* A time bound of the filter: 1 (the date in out), 0 for no bound, -1 when no window can
 * qualify (a bound past year 9999 on the far side). */
static int date_bound(int64_t v, bool lower, char out[32])
{
    if (v == (lower ? INT64_MIN : INT64_MAX))
        return 0;
    if (dm_weaviate_format_date(v, out))
        return 1;
    return (v < 0) == lower ? 0 : -1;
}

static char *query_text(dm_weaviate *w, const dm_weaviate_query *q, size_t limit, const char *from,
                        const char *to)
{
    char ops[4][128];
    int n = 0;
    if (q->symbol)
        snprintf(ops[n++], sizeof *ops, "{path: [\"symbol\"], operator: Equal, valueText: \"%s\"}",
                 q->symbol);
    if (q->timeframe)
        snprintf(ops[n++], sizeof *ops,
                 "{path: [\"timeframe\"], operator: Equal, valueText: \"%s\"}", q->timeframe);
    if (from)
        snprintf(ops[n++], sizeof *ops,
                 "{path: [\"start_timestamp\"], operator: GreaterThanEqual, valueDate: \"%s\"}",
                 from);
    if (to)
        snprintf(ops[n++], sizeof *ops,
                 "{path: [\"timestamp\"], operator: LessThan, valueDate: \"%s\"}", to);
    dm_buf b;
    dm_buf_init(&b);
    dm_buf_printf(&b, "{ Get { %s(nearVector: {vector: ", w->cls);
    put_vector(&b, w->z, w->window);
    if (q->max_distance >= 0)
        dm_buf_printf(&b, ", distance: %.17g", q->max_distance);
    dm_buf_printf(&b, "}, limit: %zu", limit);
    /* And wants operands; one condition stands alone. */
    if (n == 1)
        dm_buf_printf(&b, ", where: %s", ops[0]);
    for (int i = 0; n > 1 && i < n; i++)
        dm_buf_printf(&b, "%s%s", i ? ", " : ", where: {operator: And, operands: [", ops[i]);
    dm_buf_printf(&b,
                  "%s) { symbol timeframe timestamp start_timestamp _additional { id distance "
                  "} } } }",
                  n > 1 ? "]}" : "");
    if (b.oom)
        dm_buf_free(&b);
    return b.oom ? NULL : b.data;
}

static const char *read_hit(const cJSON *o, const dm_weaviate_query *q, dm_weaviate_hit *h)
{
    const cJSON *add = cJSON_GetObjectItemCaseSensitive(o, "_additional");
    const cJSON *sym = cJSON_GetObjectItemCaseSensitive(o, "symbol");
    const cJSON *tf = cJSON_GetObjectItemCaseSensitive(o, "timeframe");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(add, "id");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(add, "distance");
    if (!cJSON_IsObject(o))
        return "not an object";
    if (!cJSON_IsString(sym) || !safe_symbol(sym->valuestring))
        return "symbol";
    if (!cJSON_IsString(tf) || !safe_timeframe(tf->valuestring))
        return "timeframe";
    if (!dm_weaviate_parse_date(str_or(o, "timestamp", NULL), &h->timestamp) ||
        !dm_weaviate_parse_date(str_or(o, "start_timestamp", NULL), &h->start_timestamp))
        return "timestamp";
    if (!cJSON_IsString(id) || !is_uuid(id->valuestring))
        return "_additional.id";
    /* Cosine distance is within [0, 2]; float32 arithmetic strays a little. */
    double dist = cJSON_IsNumber(d) ? d->valuedouble : NAN;
    if (!(dist >= -1e-3 && dist <= 2 + 1e-3))
        return "_additional.distance";
    if ((q->symbol && strcmp(q->symbol, sym->valuestring) != 0) ||
        (q->timeframe && strcmp(q->timeframe, tf->valuestring) != 0) ||
        h->start_timestamp < q->start || h->timestamp >= q->end ||
        (q->max_distance >= 0 && dist > q->max_distance + 1e-6))
        return "outside the query's filter";
    snprintf(h->symbol, sizeof h->symbol, "%s", sym->valuestring);
    snprintf(h->timeframe, sizeof h->timeframe, "%s", tf->valuestring);
    h->score = 1 - dist;
    return NULL;
}

static dm_bstatus read_hits(const cJSON *arr, const dm_weaviate_query *q, size_t limit,
                            dm_weaviate_hit **out, size_t *n, dm_err *err)
{
    if (!cJSON_IsArray(arr))
        return malformed("search", "no data.Get array for the class", err);
    size_t m = (size_t)cJSON_GetArraySize(arr), i = 0;
    if (m > limit)
        return malformed("search", "more hits than the limit", err);
    if (m == 0)
        return DM_BS_OK;
    dm_weaviate_hit *h = calloc(m, sizeof *h);
    if (h == NULL)
        return oom(err);
    const cJSON *o;
    cJSON_ArrayForEach(o, arr)
    {
        const char *why = read_hit(o, q, &h[i]);
        if (why != NULL) {
            char what[96];
            snprintf(what, sizeof what, "hit %zu: %s", i, why);
            free(h);
            return malformed("search", what, err);
        }
        i++;
    }
    *out = h;
    *n = m;
    return DM_BS_OK;
}

/* Errors in a 200. Query mistakes are PERMANENT; a class not created yet reads like one
 * ("Cannot query field \"C\" on type \"GetObjectsObj\"") but heals once the schema is
 * applied; the rest (shards, timeouts, internal) are worth another try. */
static dm_bstatus graphql_errors(const cJSON *errs, dm_err *err)
{
    static const char *const mistakes[] = {
        "Syntax Error",       "Unknown argument",       "invalid value",
        "Cannot query field", "invalid 'where' filter", "vector lengths don't match",
    };
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(errs, 0), "message");
    if (!cJSON_IsArray(errs) || !cJSON_IsString(m))
        return malformed("search", "errors without a message", err);
    char msg[200];
    clean(m->valuestring, strlen(m->valuestring), msg, sizeof msg);
    bool mistake = false;
    for (size_t i = 0; i < sizeof mistakes / sizeof *mistakes; i++)
        mistake = mistake || strstr(msg, mistakes[i]) != NULL;
    if (strstr(msg, "\"GetObjectsObj\"") != NULL)
        mistake = false;
    dm_fail(err, DM_E_UNAVAILABLE, "", "weaviate search: %d GraphQL error(s), first: %s",
            cJSON_GetArraySize(errs), msg);
    return mistake ? DM_BS_PERMANENT : DM_BS_TRANSIENT;
}

static dm_bstatus search_reply(dm_weaviate *w, const dm_weaviate_query *q, size_t limit,
                               dm_weaviate_hit **out, size_t *n, dm_err *err)
{
    cJSON *r = reply_json(w);
    const cJSON *errs = cJSON_GetObjectItemCaseSensitive(r, "errors");
    const cJSON *get =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "data"), "Get");
    dm_bstatus st;
    if (!cJSON_IsObject(r))
        st = malformed("search", "not a JSON object", err);
    else if (errs != NULL && !cJSON_IsNull(errs)) /* "errors": null in older versions */
        st = graphql_errors(errs, err);
    else
        st = read_hits(cJSON_GetObjectItemCaseSensitive(get, w->cls), q, limit, out, n, err);
    cJSON_Delete(r);
    return st;
}

static dm_bstatus bad_query(const char *field, const char *why, dm_err *err)
{
    return dm_fail(err, DM_E_INVALID_FIELD, field, "weaviate search: %s", why), DM_BS_PERMANENT;
}

dm_bstatus dm_weaviate_search(dm_weaviate *w, const dm_weaviate_query *q, dm_weaviate_hit **out,
                              size_t *n, dm_err *err)
{
    char from[32], to[32];
    *out = NULL;
    *n = 0;
    if (q->w != (size_t)w->window || q->vector == NULL)
        return dm_fail(err, DM_E_INVALID_FIELD, "window",
                       "weaviate search: a query of %zu closes; windows here hold %d", q->w,
                       w->window),
               DM_BS_MISS;
    if (q->symbol && !safe_symbol(q->symbol))
        return bad_query("symbol", "symbol is not 1-24 of [A-Za-z0-9/._-]", err);
    if (q->timeframe && !safe_timeframe(q->timeframe))
        return bad_query("timeframe", "unknown timeframe", err);
    if (!(q->max_distance < 0) && !isfinite(q->max_distance))
        return bad_query("max_distance", "max_distance is not a finite number", err);
    for (size_t i = 0; i < q->w; i++)
        if (!isfinite(q->vector[i]))
            return bad_query("vector", "a close is not a finite number", err);
    if (!dm_weaviate_znorm(q->vector, q->w, w->z))
        return dm_fail(err, DM_E_INVALID_FIELD, "vector", "weaviate search: a flat query window"),
               DM_BS_MISS;
    size_t limit = q->limit < DM_WV_LIMIT_MAX ? q->limit : DM_WV_LIMIT_MAX;
    int lo = date_bound(q->start, true, from), hi = date_bound(q->end, false, to);
    if (limit == 0 || lo < 0 || hi < 0)
        return DM_BS_OK;
    char *text = query_text(w, q, limit, lo ? from : NULL, hi ? to : NULL);
    cJSON *body = text ? cJSON_CreateObject() : NULL;
    bool ok = body && cJSON_AddStringToObject(body, "query", text);
    free(text);
    if (!ok) {
        cJSON_Delete(body);
        return oom(err);
    }
    long status = 0;
    /* A hit is a few hundred bytes: a reply far beyond limit of them is refused unparsed. */
    w->reply_cap =
        limit < (DM_WV_MAX_REPLY - 65536) / 2048 ? 65536 + limit * 2048 : DM_WV_MAX_REPLY;
    dm_bstatus st = post_json(w, "/v1/graphql", body, "search", &status, err);
    if (st != DM_BS_OK)
        return st;
    if (status != 200)
        return http_fail(w, status, "search", err);
    return search_reply(w, q, limit, out, n, err);
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
    pthread_once(&curl_once, curl_init_once);
    dm_weaviate *w = calloc(1, sizeof *w);
    if (w == NULL) {
        oom(err);
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
        oom(err);
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
