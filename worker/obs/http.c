#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DM_HTTP_MAX_CONNECTIONS 16
#define DM_HTTP_TIMEOUT_S 5

struct dm_http {
    struct MHD_Daemon *d;
    dm_http_handlers h;
};

/* The status page, compiled in from obs/status.html (cmake/embed.cmake). */
extern const char dm_status_page_html[];

/* The page's script and style are inline and it fetches only /status.json: nothing else
 * may load or run, so a value that slipped into markup could not fetch or send anything. */
#define DM_STATUS_CSP                                                                          \
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "              \
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "          \
    "frame-ancestors 'none'"

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *type,
                                 const char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (strncmp(type, "text/html", 9) == 0)
        MHD_add_response_header(r, "Content-Security-Policy", DM_STATUS_CSP);
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static const char TEXT[] = "text/plain; charset=utf-8";

/* A handler's document, or a 500 when it ran out of memory writing it. */
static enum MHD_Result send_buf(struct MHD_Connection *c, const char *type, const dm_buf *body)
{
    if (body->oom)
        return send_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, TEXT, "out of memory\n", 14);
    return send_text(c, MHD_HTTP_OK, type, body->data ? body->data : "", body->len);
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **state)
{
    (void)version, (void)upload, (void)upload_size, (void)state;
    dm_http *h = cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return send_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, TEXT, "GET only\n", 9);
    if (strcmp(url, "/healthz") == 0)
        return send_text(c, MHD_HTTP_OK, TEXT, "ok\n", 3);
    bool page = h->h.status != NULL;
    if (page && strcmp(url, "/") == 0)
        return send_text(c, MHD_HTTP_OK, "text/html; charset=utf-8", dm_status_page_html,
                         strlen(dm_status_page_html));
    dm_buf body;
    dm_buf_init(&body);
    enum MHD_Result ok;
    if (strcmp(url, "/readyz") == 0) {
        bool ready = h->h.ready(h->h.ctx, &body);
        if (ready)
            dm_buf_puts(&body, "ready\n");
        ok = send_text(c, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, TEXT,
                       body.data ? body.data : "", body.len);
    } else if (strcmp(url, "/metrics") == 0) {
        h->h.metrics(h->h.ctx, &body);
        ok = send_buf(c, "text/plain; version=0.0.4; charset=utf-8", &body);
    } else if (page && strcmp(url, "/status.json") == 0) {
        h->h.status(h->h.ctx, &body);
        ok = send_buf(c, "application/json", &body);
    } else {
        static const char HINT[] = "try /, /status.json, /metrics, /healthz or /readyz\n";
        ok = send_text(c, MHD_HTTP_NOT_FOUND, TEXT, HINT, sizeof HINT - 1);
    }
    dm_buf_free(&body);
    return ok;
}

static bool parse_listen(const char *listen, struct sockaddr_in *sa)
{
    char host[64] = "127.0.0.1";
    const char *colon = strrchr(listen, ':');
    const char *port_s = colon ? colon + 1 : listen;
    if (colon) {
        size_t n = (size_t)(colon - listen);
        if (n == 0 || n >= sizeof host)
            return false;
        memcpy(host, listen, n);
        host[n] = '\0';
    }
    char *end = NULL;
    long port = strtol(port_s, &end, 10);
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    return *port_s && *end == '\0' && port > 0 && port < 65536 &&
           inet_pton(AF_INET, host, &sa->sin_addr) == 1;
}

dm_http *dm_http_start(const char *listen, const dm_http_handlers *h, dm_err *err)
{
    struct sockaddr_in sa;
    if (!parse_listen(listen, &sa)) {
        dm_fail(err, DM_E_INVALID_FIELD, "http", "--http %.60s: want PORT or IPV4:PORT", listen);
        return NULL;
    }
    dm_http *s = calloc(1, sizeof *s);
    if (s == NULL) {
        dm_fail(err, DM_E_INTERNAL, "", "out of memory");
        return NULL;
    }
    s->h = *h;
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                                MHD_USE_ERROR_LOG,
                            ntohs(sa.sin_port),
                            NULL, NULL, answer, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)DM_HTTP_MAX_CONNECTIONS,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)DM_HTTP_TIMEOUT_S,
                            MHD_OPTION_END);
    if (s->d == NULL) {
        dm_fail(err, DM_E_UNAVAILABLE, "http", "cannot listen on %.60s (port in use?)", listen);
        free(s);
        return NULL;
    }
    return s;
}

void dm_http_stop(dm_http *h)
{
    if (h == NULL)
        return;
    MHD_stop_daemon(h->d);
    free(h);
}
