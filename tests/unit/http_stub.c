#include "http_stub.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Enough for any body a test sends (a 200-object batch is well under 1 MB). */
#define STUB_MAX_BODY (64u << 20)
#define STUB_MISMATCH 599

struct dm_stub {
    struct MHD_Daemon *d;
    const dm_stub_step *steps;
    size_t n;
    int port;
    pthread_mutex_t mu; /* guards everything below; MHD's connection threads share it */
    size_t next;        /* index of the next expected step */
    char **bodies;      /* per step, the body it was served with */
    size_t mismatches;
    char why[512]; /* the first mismatch */
};

/* One request: its raw URI (MHD hands the handler the path without the query string) and
 * its body as it arrives. */
typedef struct {
    char *uri;
    char *body;
    size_t len, cap;
    bool started, too_large;
} request;

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls, (void)c;
    request *r = calloc(1, sizeof *r);
    if (r != NULL && (r->uri = strdup(uri)) == NULL) {
        free(r);
        r = NULL;
    }
    return r;
}

static void on_done(void *cls, struct MHD_Connection *c, void **state,
                    enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    request *r = *state;
    if (r != NULL) {
        free(r->uri);
        free(r->body);
        free(r);
    }
    *state = NULL;
}

static bool append(request *r, const char *p, size_t n)
{
    if (r->len + n > STUB_MAX_BODY) {
        r->too_large = true;
        return true;
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (b == NULL)
            return false;
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, p, n);
    r->len += n;
    r->body[r->len] = '\0';
    return true;
}

static void note_mismatch(dm_stub *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_mismatch(dm_stub *s, const char *fmt, ...)
{
    if (s->mismatches++ > 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof s->why, fmt, ap);
    va_end(ap);
}

/* Why the request does not match step st, or NULL when it does. */
static const char *differs(const dm_stub_step *st, struct MHD_Connection *c, const char *method,
                           const request *r, char *buf, size_t cap)
{
    if (strcmp(st->method, method) != 0)
        return "method";
    if (strcmp(st->path, r->uri) != 0)
        return "path";
    if (st->header_name != NULL) {
        const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, st->header_name);
        if (v == NULL || strcmp(v, st->header_value) != 0) {
            snprintf(buf, cap, "header %s (got '%.80s')", st->header_name, v ? v : "(none)");
            return buf;
        }
    }
    if (r->too_large)
        return "body (over the stub's limit)";
    for (size_t i = 0; i < 8 && st->body_contains[i] != NULL; i++)
        if (r->body == NULL || strstr(r->body, st->body_contains[i]) == NULL) {
            snprintf(buf, cap, "body (no '%.120s')", st->body_contains[i]);
            return buf;
        }
    return NULL;
}

static enum MHD_Result reply(struct MHD_Connection *c, int status, const char *body)
{
    size_t len = body ? strlen(body) : 0;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)(body ? body : ""), MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Matches a complete request against the next step; the delay is served outside the lock
 * so a late answer never blocks the bookkeeping of other requests. */
static enum MHD_Result serve(dm_stub *s, struct MHD_Connection *c, const char *method, request *r)
{
    char buf[200];
    int status = STUB_MISMATCH, delay = 0;
    const char *body = "{\"error\":[{\"message\":\"stub: unexpected request\"}]}";
    pthread_mutex_lock(&s->mu);
    if (s->next >= s->n) {
        note_mismatch(s, "request %s %.200s after the last step", method, r->uri);
    } else {
        const dm_stub_step *st = &s->steps[s->next];
        const char *why = differs(st, c, method, r, buf, sizeof buf);
        if (why != NULL) {
            note_mismatch(s, "step %zu (%s %s): %s %.200s differs in %s", s->next, st->method,
                          st->path, method, r->uri, why);
        } else {
            s->bodies[s->next] = r->body ? r->body : strdup("");
            r->body = NULL;
            s->next++;
            status = st->status;
            body = st->reply;
            delay = st->delay_ms;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (delay > 0)
        sleep_ms(delay);
    return reply(c, status, body);
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **state)
{
    (void)url, (void)version;
    request *r = *state;
    if (r == NULL)
        return MHD_NO; /* out of memory in on_uri */
    if (!r->started) {
        r->started = true;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        bool ok = append(r, upload, *upload_size);
        *upload_size = 0;
        return ok ? MHD_YES : MHD_NO;
    }
    return serve(cls, c, method, r);
}

dm_stub *dm_stub_start(const dm_stub_step *steps, size_t n)
{
    dm_stub *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->steps = steps;
    s->n = n;
    s->bodies = calloc(n ? n : 1, sizeof *s->bodies);
    pthread_mutex_init(&s->mu, NULL);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s->bodies != NULL)
        s->d = MHD_start_daemon(
            MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0,
            NULL, NULL, answer, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
            MHD_OPTION_URI_LOG_CALLBACK, on_uri, (void *)s, MHD_OPTION_NOTIFY_COMPLETED, on_done,
            (void *)s, MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    const union MHD_DaemonInfo *info =
        s->d ? MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    if (info == NULL || info->port == 0) {
        dm_stub_stop(s);
        return NULL;
    }
    s->port = info->port;
    return s;
}

int dm_stub_port(const dm_stub *s)
{
    return s->port;
}

char *dm_stub_url(const dm_stub *s, char *buf, size_t cap)
{
    snprintf(buf, cap, "http://127.0.0.1:%d", s->port);
    return buf;
}

const char *dm_stub_body(const dm_stub *s, size_t step)
{
    dm_stub *m = (dm_stub *)s; /* the lock is not part of the stub's observable state */
    pthread_mutex_lock(&m->mu);
    const char *b = step < s->n ? s->bodies[step] : NULL;
    pthread_mutex_unlock(&m->mu);
    return b;
}

size_t dm_stub_served(const dm_stub *s)
{
    dm_stub *m = (dm_stub *)s;
    pthread_mutex_lock(&m->mu);
    size_t k = s->next;
    pthread_mutex_unlock(&m->mu);
    return k;
}

bool dm_stub_verify(const dm_stub *s, char *why, size_t cap)
{
    dm_stub *m = (dm_stub *)s;
    pthread_mutex_lock(&m->mu);
    bool ok = s->mismatches == 0 && s->next == s->n;
    if (why != NULL && cap > 0) {
        if (s->mismatches > 0)
            snprintf(why, cap, "%s (%zu unexpected request%s)", s->why, s->mismatches,
                     s->mismatches == 1 ? "" : "s");
        else if (s->next < s->n)
            snprintf(why, cap, "step %zu (%s %s) was never requested", s->next,
                     s->steps[s->next].method, s->steps[s->next].path);
        else
            why[0] = '\0';
    }
    pthread_mutex_unlock(&m->mu);
    return ok;
}

void dm_stub_stop(dm_stub *s)
{
    if (s == NULL)
        return;
    if (s->d != NULL)
        MHD_stop_daemon(s->d);
    if (s->bodies != NULL)
        for (size_t i = 0; i < s->n; i++)
            free(s->bodies[i]);
    free(s->bodies);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
