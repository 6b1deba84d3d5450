/* The JetStream pull protocol, spoken directly: a pull request published to
 * $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer> with our own inbox as the reply subject,
 * messages read from a plain subscription on that inbox, acks sent to each message's
 * reply subject. libnats 3.4.1's natsSubscription_FetchRequest can return more messages
 * than the array it allocated when messages of an earlier pull arrive late (heap
 * corruption seen in the fault suite's leader kill); here a late message is simply the
 * next batch's first. One dm_pull belongs to one consumer thread. */
#ifndef DM_PULL_H
#define DM_PULL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <nats/nats.h>

typedef struct dm_pull dm_pull;

dm_pull *dm_pull_create(natsConnection *nc, const char *stream, const char *consumer,
                        natsStatus *st);
/* Hands back what was delivered and not taken, and unsubscribes. */
void dm_pull_destroy(dm_pull *p);

/* Collects up to `max` messages into out (the caller destroys them): waits up to wait_ms
 * for the first, then takes what is already there, then keeps waiting until linger_ms
 * (from the call) while fewer than `max` are in hand. Returns how many; stops early when
 * *stop turns true. */
int dm_pull_fetch(dm_pull *p, natsMsg **out, int max, int64_t wait_ms, int64_t linger_ms,
                  atomic_bool *stop);

/* Whether a status message ends the newest pull request, sent newest_age_ms ago (the rest
 * of its batch will not come): any status but a heartbeat, except an expiry that must be
 * an older request's. */
bool dm_pull_status_ends_newest(const char *status, int64_t newest_age_ms);

/* Parsed from the reply subject ($JS.ACK.<stream>.<consumer>.<delivered>.<sseq>...). */
typedef struct {
    uint64_t delivered, stream_seq;
    uint64_t consumer_seq; /* the consumer's delivery counter: +1 per delivery to anyone */
    uint64_t stored_ns;    /* when the stream stored it (Unix ns) */
    uint64_t pending;      /* messages the consumer had yet to deliver when this one went out */
} dm_pull_meta;
bool dm_pull_meta_of(natsMsg *m, dm_pull_meta *out);

void dm_pull_ack(dm_pull *p, natsMsg *m);
void dm_pull_nak(dm_pull *p, natsMsg *m, int64_t delay_ms);
void dm_pull_term(dm_pull *p, natsMsg *m);
/* "Still working on it": the message's AckWait starts again. */
void dm_pull_progress(dm_pull *p, natsMsg *m);
/* Hands back at once (nak without delay) every message delivered and not taken, and ends
 * the open pull requests (the inbox goes; the next fetch makes another). */
void dm_pull_give_back(dm_pull *p);

#endif
