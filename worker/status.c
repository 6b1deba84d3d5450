#include "status.h"

#include <pthread.h>
#include <stdlib.h>

#include "model/names.h"
#include "model/model.h"

struct dm_status {
    pthread_mutex_t mu; /* one document at a time: serve and reply are single-threaded */
    dm_serve *serve;
    dm_history *history;
    dm_reply reply;
};

dm_status *dm_status_create(dm_serve *serve, dm_history *history)
{
    dm_status *s = calloc(1, sizeof *s);
    if (s == NULL) {
        dm_serve_destroy(serve);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->serve = serve;
    s->history = history;
    dm_buf_init(&s->reply.body);
    return s;
}

void dm_status_destroy(dm_status *s)
{
    if (s == NULL)
        return;
    dm_serve_destroy(s->serve);
    dm_buf_free(&s->reply.body);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* `"key":` and the reply to an empty JSON request on subject, as the contract has it. */
static void append_reply(dm_status *s, dm_buf *out, const char *key, const char *subject)
{
    dm_serve_handle(s->serve, subject, "", 0, "application/json", &s->reply);
    dm_buf_printf(out, "\"%s\":", key);
    if (s->reply.body.oom || s->reply.body.len == 0)
        dm_buf_puts(out, "null");
    else
        dm_buf_put(out, s->reply.body.data, s->reply.body.len);
}

void dm_status_json(dm_status *s, dm_buf *out)
{
    pthread_mutex_lock(&s->mu);
    dm_buf_printf(out, "{\"now_ms\":%lld,", (long long)dm_now_ms());
    append_reply(s, out, "health", DM_SUBJ_HEALTH);
    dm_buf_puts(out, ",");
    append_reply(s, out, "metrics", DM_SUBJ_METRICS);
    pthread_mutex_unlock(&s->mu);
    dm_buf_puts(out, ",\"history\":");
    dm_enc e;
    dm_enc_init(&e, DM_ENC_JSON, out);
    dm_history_encode(s->history, &e);
    dm_buf_puts(out, "}");
}
