#include "clickhouse_http.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CH_CONNECT_TIMEOUT_S 5
/* Servers close idle keep-alive connections after keep_alive_timeout (3 s by default
 * up to 22.x, 10 s later); reusing one at that moment fails the request. */
#define CH_MAX_IDLE_S 2

/* ---- errors ---------------------------------------------------------------------------- */

static size_t skip_prefix(const char *p, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && memcmp(p, prefix, k) == 0 ? k : 0;
}

int dm_clickhouse_parse_error(const char *body, size_t len, char *msg, size_t cap)
{
    if (msg && cap)
        msg[0] = '\0';
    if (body == NULL)
        return -1;
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
        i++;
    size_t k = skip_prefix(body + i, len - i, "Code: ");
    if (k == 0)
        return -1;
    i += k;
    long code = 0;
    size_t digits = 0;
    for (; i < len && body[i] >= '0' && body[i] <= '9' && digits < 6; i++, digits++)
        code = code * 10 + (body[i] - '0');
    if (digits == 0 || digits >= 6 || i >= len || (body[i] != ',' && body[i] != '.'))
        return -1;
    i++;
    if (msg && cap) {
        /* 18.16: ", e.displayText() = DB::Exception: TEXT, e.what() = DB::Exception"
         * current: ". DB::Exception: TEXT. (NAME) (version X)" */
        while (i < len && body[i] == ' ')
            i++;
        i += skip_prefix(body + i, len - i, "e.displayText() = ");
        i += skip_prefix(body + i, len - i, "DB::Exception: ");
        size_t end = i;
        while (end < len && body[end] != '\n' && body[end] != '\r')
            end++;
        static const char what[] = ", e.what() = ";
        for (size_t j = i; j + sizeof what - 1 <= end; j++)
            if (memcmp(body + j, what, sizeof what - 1) == 0) {
                end = j;
                break;
            }
        size_t n = end - i < cap - 1 ? end - i : cap - 1, o = 0;
        for (size_t j = 0; j < n; j++) /* a log line stays one printable line */
            msg[o++] = (unsigned char)body[i + j] < 0x20 ? ' ' : body[i + j];
        msg[o] = '\0';
    }
    return (int)code;
}

dm_bstatus dm_clickhouse_classify(long http_status, int code)
{
    /* Codes a retry can cure, from ClickHouse's src/Common/ErrorCodes.cpp. */
    static const int transient[] = {
        60,             /* UNKNOWN_TABLE: schema not applied yet */
        81,             /* UNKNOWN_DATABASE: same */
        159,            /* TIMEOUT_EXCEEDED */
        160,            /* TOO_SLOW */
        164,            /* READONLY: the account, not the data */
        173,            /* CANNOT_ALLOCATE_MEMORY */
        192,  193, 194, /* UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD */
        201,            /* QUOTA_EXPIRED */
        202,            /* TOO_MANY_SIMULTANEOUS_QUERIES */
        203,            /* NO_FREE_CONNECTION */
        209,            /* SOCKET_TIMEOUT */
        210,            /* NETWORK_ERROR */
        236,            /* ABORTED */
        241,            /* MEMORY_LIMIT_EXCEEDED */
        242,            /* TABLE_IS_READ_ONLY */
        243,            /* NOT_ENOUGH_SPACE */
        252,            /* TOO_MANY_PARTS */
        285,  286,      /* TOO_FEW_LIVE_REPLICAS, UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE */
        291,            /* DATABASE_ACCESS_DENIED */
        319,            /* UNKNOWN_STATUS_OF_INSERT */
        394,            /* QUERY_WAS_CANCELLED */
        425,            /* SYSTEM_ERROR */
        439,            /* CANNOT_SCHEDULE_TASK */
        473,            /* DEADLOCK_AVOIDED */
        497,            /* ACCESS_DENIED */
        516,            /* AUTHENTICATION_FAILED */
        999,            /* KEEPER_EXCEPTION */
        1000,           /* POCO_EXCEPTION: mostly network trouble inside the server */
    };
    if (code >= 0) {
        for (size_t i = 0; i < sizeof transient / sizeof *transient; i++)
            if (transient[i] == code)
                return DM_BS_TRANSIENT;
        return DM_BS_PERMANENT;
    }
    /* No ClickHouse error text: a proxy or balancer answered. */
    return http_status >= 500 || http_status == 408 || http_status == 429 || http_status == 401 ||
                   http_status == 403
               ? DM_BS_TRANSIENT
               : DM_BS_PERMANENT;
}

/* ---- the handle ------------------------------------------------------------------------ */

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    clickhouse *ch = ud;
    size_t n = size * nmemb;
    static const char name[] = "X-ClickHouse-Exception-Code:";
    if (n > sizeof name - 1 && strncasecmp(p, name, sizeof name - 1) == 0) {
        char v[16];
        size_t k = 0;
        for (size_t i = sizeof name - 1; i < n && k < sizeof v - 1; i++)
            if (p[i] >= '0' && p[i] <= '9')
                v[k++] = p[i];
        v[k] = '\0';
        if (k > 0 && k < 6)
            ch->hdr_code = atoi(v);
    }
    return n;
}

void ch_first_line(const dm_buf *b, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < b->len && n + 1 < cap && b->data[i] != '\n'; i++)
        out[n++] = (unsigned char)b->data[i] < 0x20 ? ' ' : b->data[i];
    out[n] = '\0';
}

bool ch_http_open(clickhouse *ch, curl_write_callback on_body)
{
    dm_backend_curl_init();
    dm_buf_init(&ch->reply);
    dm_buf_init(&ch->target);
    CURL *c = ch->curl = curl_easy_init();
    if (c == NULL)
        return false;
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)ch->timeout_s * 1000);
    curl_easy_setopt(
        c, CURLOPT_CONNECTTIMEOUT_MS,
        (long)(ch->timeout_s < CH_CONNECT_TIMEOUT_S ? ch->timeout_s : CH_CONNECT_TIMEOUT_S) * 1000);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_MAXAGE_CONN, (long)CH_MAX_IDLE_S);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, ch);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, ch);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "dm-worker");
    return true;
}

static void free_headers(struct curl_slist *h)
{
    /* The key header holds the password: wipe it before the memory goes back. */
    for (struct curl_slist *p = h; p; p = p->next)
        explicit_bzero(p->data, strlen(p->data));
    curl_slist_free_all(h);
}

void ch_http_close(clickhouse *ch)
{
    if (ch->curl)
        curl_easy_cleanup(ch->curl);
    ch->curl = NULL;
    free_headers(ch->hdr_sql);
    free_headers(ch->hdr_bin);
    ch->hdr_sql = ch->hdr_bin = NULL;
    dm_buf_free(&ch->reply);
    dm_buf_free(&ch->target);
}

/* ---- requests -------------------------------------------------------------------------- */

static dm_bstatus http_fail(clickhouse *ch, long status, const char *what, dm_err *err)
{
    char msg[200];
    int code = dm_clickhouse_parse_error(ch->reply.data, ch->reply.len, msg, sizeof msg);
    if (ch->hdr_code >= 0)
        code = ch->hdr_code;
    ch->last_code = code;
    dm_bstatus st = dm_clickhouse_classify(status, code);
    if (code >= 0)
        return dm_bfail(err, st, "", "clickhouse %s failed: HTTP %ld, code %d: %s", what, status,
                        code, msg[0] ? msg : "no message");
    ch_first_line(&ch->reply, msg, 120);
    return dm_bfail(err, st, "", "clickhouse %s failed: HTTP %ld from %s: %s", what, status,
                    ch->where, msg[0] ? msg : "empty reply");
}

/* The transfer itself, sent once more when it died on a reused connection. */
static CURLcode perform(clickhouse *ch, const void *body, size_t len, bool binary)
{
    CURLcode rc = CURLE_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        dm_buf_reset(&ch->reply);
        ch->hdr_code = -1;
        curl_easy_setopt(ch->curl, CURLOPT_URL, ch->target.data);
        curl_easy_setopt(ch->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(ch->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(ch->curl, CURLOPT_HTTPHEADER, binary ? ch->hdr_bin : ch->hdr_sql);
        rc = curl_easy_perform(ch->curl);
        long fresh = 1;
        curl_easy_getinfo(ch->curl, CURLINFO_NUM_CONNECTS, &fresh);
        bool stale = fresh == 0 &&
                     (rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING);
        if (!stale)
            break;
    }
    return rc;
}

dm_bstatus ch_http_post(clickhouse *ch, const void *body, size_t len, bool binary,
                        const char *what, dm_err *err)
{
    ch->last_code = -1;
    CURLcode rc = perform(ch, body, len, binary);
    if (rc != CURLE_OK) {
        if (ch->reply.oom)
            return dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
        if (rc == CURLE_WRITE_ERROR)
            return dm_bfail(err, DM_BS_PERMANENT, "", "clickhouse %s: reply larger than %u MB",
                            what, CH_MAX_REPLY >> 20);
        ch->connected = false;
        return dm_bfail(err, DM_BS_TRANSIENT, "", "clickhouse %s failed: %s (%s)", what,
                        curl_easy_strerror(rc), ch->where);
    }
    long status = 0;
    curl_easy_getinfo(ch->curl, CURLINFO_RESPONSE_CODE, &status);
    return status == 200 ? DM_BS_OK : http_fail(ch, status, what, err);
}
