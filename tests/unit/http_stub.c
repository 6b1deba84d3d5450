#include "http_stub.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct dm_stub {
    struct MHD_Daemon *d;
    pthread_mutex_t mu; /* guards everything below: MHD runs a thread per connection */
    dm_stub_step *steps;
    char **bodies;
    size_t n, next;
    char why[512]; /* the first mismatch, empty: none */
    int port;
};

typedef struct {
    char *uri; /* raw, with the query string: MHD hands the handler the path only */
    char *body;
    size_t len;
    bool seen;
} request;

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    (void)c;
    request *r = calloc(1, sizeof *r);
    if (r)
        r->uri = strdup(uri);
    return r;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    request *r = *con_cls;
    if (r) {
        free(r->uri);
        free(r->body);
        free(r);
    }
    *con_cls = NULL;
}

/* NULL when the request is the expected step, else why not. */
static const char *mismatch(struct MHD_Connection *c, const dm_stub_step *st, const char *method,
                            const request *r)
{
    if (strcmp(st->method, method) != 0 || strcmp(st->path, r->uri) != 0)
        return "method or path";
    if (st->header_name) {
        const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, st->header_name);
        if (v == NULL || strcmp(v, st->header_value) != 0)
            return "header";
    }
    for (int i = 0; i < 8 && st->body_contains[i]; i++)
        if (r->body == NULL || strstr(r->body, st->body_contains[i]) == NULL)
            return "body";
    return NULL;
}

static enum MHD_Result reply(struct MHD_Connection *c, int status, const char *body)
{
    size_t n = body ? strlen(body) : 0;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(n, (void *)(body ? body : ""), MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)url;
    (void)version;
    dm_stub *s = cls;
    request *r = *con_cls;
    if (r == NULL || r->uri == NULL)
        return MHD_NO;
    if (!r->seen) {
        r->seen = true;
        return MHD_YES;
    }
    if (*upload_size) {
        char *b = realloc(r->body, r->len + *upload_size + 1);
        if (b == NULL)
            return MHD_NO;
        memcpy(b + r->len, upload, *upload_size);
        r->len += *upload_size;
        b[r->len] = '\0';
        r->body = b;
        *upload_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&s->mu);
    const dm_stub_step *st = s->next < s->n ? &s->steps[s->next] : NULL;
    const char *bad = st ? mismatch(c, st, method, r) : "no step left";
    if (bad) {
        if (s->why[0] == '\0')
            snprintf(s->why, sizeof s->why, "request %zu %s %s: %s differs from %s %s", s->next,
                     method, r->uri, bad, st ? st->method : "-", st ? st->path : "-");
        pthread_mutex_unlock(&s->mu);
        return reply(c, 599, "{\"error\":true,\"code\":599,\"errorMessage\":\"stub mismatch\"}");
    }
    s->bodies[s->next++] = strdup(r->body ? r->body : "");
    pthread_mutex_unlock(&s->mu);
    if (st->delay_ms > 0) {
        struct timespec ts = {st->delay_ms / 1000, (long)(st->delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return reply(c, st->status, st->reply);
}

dm_stub *dm_stub_start(const dm_stub_step *steps, size_t n)
{
    dm_stub *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    s->steps = calloc(n ? n : 1, sizeof *steps);
    s->bodies = calloc(n ? n : 1, sizeof *s->bodies);
    if (s->steps == NULL || s->bodies == NULL) {
        dm_stub_stop(s);
        return NULL;
    }
    if (n)
        memcpy(s->steps, steps, n * sizeof *steps);
    s->n = n;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                            NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &sa,
                            MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL, MHD_OPTION_NOTIFY_COMPLETED,
                            on_done, NULL, MHD_OPTION_END);
    const union MHD_DaemonInfo *info =
        s->d ? MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    if (info == NULL) {
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

const char *dm_stub_body(const dm_stub *s, size_t step)
{
    dm_stub *m = (dm_stub *)s;
    pthread_mutex_lock(&m->mu);
    const char *b = step < s->n ? s->bodies[step] : NULL;
    pthread_mutex_unlock(&m->mu);
    return b;
}

bool dm_stub_verify(const dm_stub *s, char *why, size_t cap)
{
    dm_stub *m = (dm_stub *)s;
    pthread_mutex_lock(&m->mu);
    bool ok = s->why[0] == '\0' && s->next == s->n;
    if (s->why[0])
        snprintf(why, cap, "%s", s->why);
    else if (!ok)
        snprintf(why, cap, "step %zu (%s %s) never came", s->next, s->steps[s->next].method,
                 s->steps[s->next].path);
    else if (cap)
        why[0] = '\0';
    pthread_mutex_unlock(&m->mu);
    return ok;
}

void dm_stub_stop(dm_stub *s)
{
    if (s == NULL)
        return;
    if (s->d)
        MHD_stop_daemon(s->d);
    for (size_t i = 0; s->bodies && i < s->n; i++)
        free(s->bodies[i]);
    free(s->bodies);
    free(s->steps);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
