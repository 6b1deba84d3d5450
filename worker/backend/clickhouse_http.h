/* The ClickHouse adapter's connection: one server over HTTP (libcurl), the buffers of the
 * requests sent on it, and how a failed request maps onto the backend contract
 * (backend.h). Private to the adapter's files (clickhouse*.c).
 *
 * Errors: any status but 200 is an error whose body starts "Code: N" (18.16: "Code: 60,
 * e.displayText() = DB::Exception: ...", current: "Code: 60. DB::Exception: ...
 * (UNKNOWN_TABLE) (version ...)"); current servers also send the code in the
 * X-ClickHouse-Exception-Code header. Transient: every transport failure, overload and
 * timeout codes, a missing database or table, and credential or permission refusals.
 * Everything else ClickHouse refuses is permanent. */
#ifndef DM_CLICKHOUSE_HTTP_H
#define DM_CLICKHOUSE_HTTP_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

#include "codec/enc.h"
#include "backend.h"
#include "clickhouse.h"

#define CH_MAX_REPLY (64u << 20) /* a page is at most 10,001 candles, about 1 MB */

typedef struct {
    dm_backend base;
    CURL *curl;
    struct curl_slist *hdr_sql, *hdr_bin;
    char url[512];   /* base, without a trailing '/' or credentials */
    char where[300]; /* host[:port] for log lines */
    char db[DM_CH_IDENT_MAX + 1];
    char user[128], password[256];
    char version[32];
    int timeout_s;
    bool connected; /* the server answered since the last transport failure */
    int last_code;  /* ClickHouse error code of the last failed request, -1: none */
    int hdr_code;   /* X-ClickHouse-Exception-Code of the reply being read */
    dm_buf sql, body, reply, target;
    void *scratch; /* sort keys of the batch being written */
    size_t scratch_cap;
} clickhouse;

/* The error code of a ClickHouse error body ("Code: N, ..." or "Code: N. ..."), or -1
 * when the body is not one. When msg is not NULL it receives the readable part of the
 * first line (the exception text without the "e.displayText() = DB::Exception: "
 * wrapping), truncated to cap. */
int dm_clickhouse_parse_error(const char *body, size_t len, char *msg, size_t cap);
/* Transient or permanent for an HTTP status other than 200 and the parsed code (-1: none,
 * as from a proxy in front of the server). */
dm_bstatus dm_clickhouse_classify(long http_status, int code);

/* Creates ch->curl with the options every request shares; replies go to on_body. False
 * when curl cannot make a handle. Initialises libcurl once per process. The request and
 * reply buffers (target, reply) belong to the transport: ch_http_close frees them. */
bool ch_http_open(clickhouse *ch, curl_write_callback on_body);
/* Frees the handle, the transport's buffers and the header lists, wiping the one that
 * holds the password. Safe on a ch that ch_http_open never saw (zeroed). */
void ch_http_close(clickhouse *ch);
/* POSTs body to ch->target (built by the caller) and reads the reply into ch->reply. All
 * our requests are idempotent, so one that died on a reused connection is sent once more.
 * OK on HTTP 200; otherwise the failure is classified, ch->last_code set and err filled
 * with dm_bfail. */
dm_bstatus ch_http_post(clickhouse *ch, const void *body, size_t len, bool binary,
                        const char *what, dm_err *err);
/* The first line of b, control characters replaced, for logs and the version string. */
void ch_first_line(const dm_buf *b, char *out, size_t cap);

#endif
