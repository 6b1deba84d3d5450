/* One request/reply exchange with the worker's dm.v1.* services: the body sent as JSON,
 * msgpack or protobuf, the reply decoded whatever its encoding, and error replies reported the same
 * way by every command. */
#ifndef DMCTL_REQUEST_H
#define DMCTL_REQUEST_H

#include <stdbool.h>
#include <stdio.h>

#include <cJSON.h>
#include <nats/nats.h>

#include "conn.h"

typedef struct request {
    const char *subject;
    const char *text;  /* sent as it is in JSON mode when tree is NULL (may be invalid) */
    const cJSON *tree; /* the body as a tree: needed for msgpack and protobuf */
    bool msgpack;
    bool protobuf; /* the subject's request message (schemas/market_data.proto); dates given
                      as text are sent as the Unix ms they name */
} request;

typedef struct reply {
    cJSON *json;
    char status[32];     /* Status header, "" if absent */
    char served_by[128]; /* Served-By header, "" if absent */
    double ms;           /* request round trip */
} reply;

/* Sends q and waits g->timeout_ms for the reply. EXIT_OK with r->json set, whatever the
 * reply says (an error reply too); EXIT_FAIL, with the reason on stderr, when nothing
 * decodable came back. r needs reply_free either way. */
int request_send(natsConnection *nc, const global_opts *g, const request *q, reply *r);

void reply_free(reply *r);

/* false for {"error": ...}-less replies. Otherwise prints (after the reply itself as one
 * JSON line on stdout in json_mode) "error <code> (<Status>): <message> [<field>]" on
 * stderr, followed by " (option --x)" when option_of names the command-line option that
 * set that request field. */
bool reply_report_error(const reply *r, bool json_mode,
                        const char *(*option_of)(const char *field));

/* o[k] when o is an object, else NULL. */
const cJSON *json_member(const cJSON *o, const char *k);

/* The compact JSON text and a newline on stdout. */
void print_json_line(const cJSON *j);

#endif
