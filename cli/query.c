/* query: core NATS request/reply against the worker's dm.v1.* services,
 * with JSON or msgpack bodies, table or JSON display and --all paging. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "args.h"
#include "codec/enc.h"
#include "commands.h"
#include "table.h"
#include "timeutil.h"

#define MAX_PAGES 1000000 /* --all safety stop for a server that never ends */

typedef struct query_args {
    const char *subject;
    const char *body; /* request text as typed (default "{}") */
    bool msgpack, json, table, all;
} query_args;

typedef struct reply {
    cJSON *json;
    char status[32];     /* Status header, "" if absent */
    char served_by[128]; /* Served-By header, "" if absent */
    double ms;           /* request round trip */
} reply;

static void reply_free(reply *r)
{
    cJSON_Delete(r->json);
    memset(r, 0, sizeof *r);
}

/* ---- encoding / decoding ---------------------------------------------------- */

/* The typed text is sent untouched in JSON mode (even if invalid: tests use
 * that to probe the worker); a parsed tree is needed for msgpack and paging. */
static bool encode_request(const query_args *a, const cJSON *tree, dm_buf *out)
{
    if (a->msgpack) {
        dm_enc e;
        dm_enc_init(&e, DM_ENC_MSGPACK, out);
        return dm_enc_cjson(&e, tree);
    }
    if (!tree) {
        dm_buf_puts(out, a->body);
        return !out->oom;
    }
    char *s = cJSON_PrintUnformatted(tree);
    if (s)
        dm_buf_puts(out, s);
    free(s);
    return s && !out->oom;
}

static const char *header(natsMsg *m, const char *key)
{
    const char *v = NULL;
    if (natsMsgHeader_Get(m, key, &v) != NATS_OK)
        return NULL;
    return v;
}

/* NULL unless data[0..len) is exactly one msgpack value. */
static cJSON *msgpack_reply(const char *data, size_t len)
{
    cJSON *j = NULL;
    dm_err err;
    dm_doc_parse_msgpack_value(data, len, &j, &err);
    return j;
}

/* Trusts the reply's Content-Type; without one tries the request's format
 * first, then the other. */
static cJSON *decode_reply(natsMsg *m, bool msgpack_req)
{
    const char *data = natsMsg_GetData(m);
    size_t len = (size_t)natsMsg_GetDataLength(m);
    const char *ct = header(m, DM_HDR_CONTENT_TYPE);
    if (!data || len == 0)
        return NULL;
    bool mp_first = ct ? strstr(ct, "msgpack") != NULL : msgpack_req;
    cJSON *j = mp_first ? msgpack_reply(data, len) : cJSON_ParseWithLength(data, len);
    if (!j && !ct)
        j = mp_first ? cJSON_ParseWithLength(data, len) : msgpack_reply(data, len);
    return j;
}

static void print_undecodable(natsMsg *m)
{
    int len = natsMsg_GetDataLength(m);
    fprintf(stderr, "dmctl: reply of %d bytes is neither JSON nor msgpack", len);
    if (len > 0)
        fprintf(stderr, ": %.200s", natsMsg_GetData(m));
    fputc('\n', stderr);
}

/* Request message with the encoded body and its Content-Type; NULL on error. */
static natsMsg *build_request(const query_args *a, const cJSON *tree)
{
    dm_buf body;
    dm_buf_init(&body);
    natsMsg *req = NULL;
    if (!encode_request(a, tree, &body)) {
        fprintf(stderr, "dmctl: cannot encode request\n");
        dm_buf_free(&body);
        return NULL;
    }
    natsStatus s = natsMsg_Create(&req, a->subject, NULL, body.data, (int)body.len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(req, DM_HDR_CONTENT_TYPE,
                              dm_content_type(a->msgpack ? DM_ENC_MSGPACK : DM_ENC_JSON));
    if (s != NATS_OK) {
        dm_nats_error("cannot build request", s);
        natsMsg_Destroy(req);
        req = NULL;
    }
    dm_buf_free(&body);
    return req;
}

static bool report_request_error(natsStatus s, const query_args *a, const global_opts *g)
{
    if (s == NATS_OK)
        return false;
    if (s == NATS_NO_RESPONDERS)
        fprintf(stderr, "dmctl: no responders on %s: is a dm-worker running?\n", a->subject);
    else if (s == NATS_TIMEOUT)
        fprintf(stderr, "dmctl: no reply on %s within %lld ms\n", a->subject,
                (long long)g->timeout_ms);
    else
        dm_nats_error("request failed", s);
    return true;
}

static void copy_header(natsMsg *m, const char *key, char *out, size_t n)
{
    const char *v = header(m, key);
    snprintf(out, n, "%s", v ? v : "");
}

static int do_request(natsConnection *nc, const global_opts *g, const query_args *a,
                      const cJSON *tree, reply *r)
{
    memset(r, 0, sizeof *r);
    natsMsg *req = build_request(a, tree), *resp = NULL;
    if (!req)
        return EXIT_FAIL;
    double t0 = tu_now_ms();
    natsStatus s = natsConnection_RequestMsg(&resp, nc, req, g->timeout_ms);
    r->ms = tu_now_ms() - t0;
    natsMsg_Destroy(req);
    if (report_request_error(s, a, g))
        return EXIT_FAIL;
    copy_header(resp, "Status", r->status, sizeof r->status);
    copy_header(resp, "Served-By", r->served_by, sizeof r->served_by);
    r->json = decode_reply(resp, a->msgpack);
    if (!r->json)
        print_undecodable(resp);
    natsMsg_Destroy(resp);
    return r->json ? EXIT_OK : EXIT_FAIL;
}

/* ---- reply inspection -------------------------------------------------------- */

static const cJSON *member(const cJSON *o, const char *k)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}

static void served_by(const reply *r, char *out, size_t n)
{
    const cJSON *v = member(r->json, "served_by");
    if (!v)
        v = member(member(r->json, "meta"), "served_by");
    if (v && !cJSON_IsNull(v))
        table_cell_text(v, out, n);
    else
        snprintf(out, n, "%s", r->served_by[0] ? r->served_by : "-");
}

static size_t row_count(const cJSON *j)
{
    const cJSON *d = member(j, "data");
    if (cJSON_IsArray(d))
        return (size_t)cJSON_GetArraySize(d);
    return d && !cJSON_IsNull(d) ? 1 : 0;
}

static const cJSON *next_cursor(const cJSON *j)
{
    const cJSON *c = member(j, "next_cursor");
    if (!c)
        c = member(member(j, "meta"), "next_cursor");
    return c && !cJSON_IsNull(c) ? c : NULL;
}

static void print_json_line(const cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    if (s)
        printf("%s\n", s);
    else
        fprintf(stderr, "dmctl: out of memory\n");
    free(s);
}

/* {"error":{"code","message","field"}} -> "error <code> (<Status>): <message> [field]" */
static bool report_error_reply(const reply *r, bool json_mode)
{
    const cJSON *err = member(r->json, "error");
    if (!err || cJSON_IsNull(err))
        return false;
    char code[64], msg[512], field[128];
    table_cell_text(member(err, "code"), code, sizeof code);
    const cJSON *m = member(err, "message");
    if (m)
        table_cell_text(m, msg, sizeof msg);
    else
        table_cell_text(err, msg, sizeof msg); /* {"error":"text"} */
    const cJSON *f = member(err, "field");
    field[0] = '\0';
    if (f && !cJSON_IsNull(f))
        table_cell_text(f, field, sizeof field);
    if (json_mode)
        print_json_line(r->json);
    fflush(stdout);
    fprintf(stderr, "error %s (%s): %s%s%s%s\n", code, r->status[0] ? r->status : "-", msg,
            field[0] ? " [" : "", field, field[0] ? "]" : "");
    return true;
}

/* ---- single request ------------------------------------------------------------ */

static void print_stats(FILE *out, const char *who, size_t rows, double ms, long pages)
{
    fprintf(out, "served_by=%s rows=%zu time=%.2f ms", who, rows, ms);
    if (pages >= 0)
        fprintf(out, " pages=%ld", pages);
    fputc('\n', out);
}

static void print_reply_table(const cJSON *j)
{
    const cJSON *d = member(j, "data");
    if (cJSON_IsArray(d)) {
        /* served_by is on the stats line; other members (next_cursor...) follow the rows */
        static const char *const skip[] = {"data", "served_by", NULL};
        table_print_array(stdout, d);
        table_print_object(stdout, j, skip);
    } else {
        table_print_object(stdout, j, NULL);
    }
}

static int query_once(natsConnection *nc, const global_opts *g, const query_args *a,
                      const cJSON *tree)
{
    reply r;
    if (do_request(nc, g, a, tree, &r) != EXIT_OK)
        return EXIT_FAIL;
    int rc = EXIT_OK;
    char who[128];
    served_by(&r, who, sizeof who);
    if (report_error_reply(&r, a->json)) {
        rc = EXIT_ERR_REPLY;
    } else if (a->json) {
        print_json_line(r.json);
    } else {
        print_reply_table(r.json);
    }
    fflush(stdout);
    print_stats(a->json || rc != EXIT_OK ? stderr : stdout, who, row_count(r.json), r.ms, -1);
    reply_free(&r);
    return rc;
}

/* ---- --all: follow next_cursor --------------------------------------------------- */

typedef struct pager {
    cJSON *head[TABLE_HEAD];
    cJSON *tail[TABLE_TAIL]; /* ring of the latest rows after the head */
    size_t rows, pages;
    char who[128];
} pager;

static void pager_add(pager *p, const cJSON *row)
{
    cJSON *dup = cJSON_Duplicate(row, 1);
    if (p->rows < TABLE_HEAD) {
        p->head[p->rows] = dup;
    } else {
        size_t slot = (p->rows - TABLE_HEAD) % TABLE_TAIL;
        cJSON_Delete(p->tail[slot]);
        p->tail[slot] = dup;
    }
    p->rows++;
}

static void pager_free(pager *p)
{
    for (int i = 0; i < TABLE_HEAD; i++)
        cJSON_Delete(p->head[i]);
    for (int i = 0; i < TABLE_TAIL; i++)
        cJSON_Delete(p->tail[i]);
}

/* head rows, then tail rows oldest first */
static size_t pager_rows(const pager *p, const cJSON **out)
{
    size_t n = 0, nh = p->rows < TABLE_HEAD ? p->rows : TABLE_HEAD;
    for (size_t i = 0; i < nh; i++)
        out[n++] = p->head[i];
    size_t nt = p->rows > TABLE_HEAD ? p->rows - TABLE_HEAD : 0;
    if (nt > TABLE_TAIL)
        nt = TABLE_TAIL;
    size_t start = p->rows > TABLE_HEAD + TABLE_TAIL ? (p->rows - TABLE_HEAD) % TABLE_TAIL : 0;
    for (size_t i = 0; i < nt; i++)
        out[n++] = p->tail[(start + i) % TABLE_TAIL];
    return n;
}

static void pager_print(const pager *p, const query_args *a, double ms)
{
    const cJSON *rows[TABLE_HEAD + TABLE_TAIL];
    size_t n = pager_rows(p, rows);
    if (a->json) {
        cJSON *o = cJSON_CreateObject();
        if (o) {
            cJSON_AddNumberToObject(o, "rows", (double)p->rows);
            cJSON_AddNumberToObject(o, "pages", (double)p->pages);
            cJSON_AddNumberToObject(o, "time_ms", (double)(long long)(ms * 100) / 100);
            cJSON_AddStringToObject(o, "served_by", p->who);
            if (n > 0) {
                cJSON_AddItemToObject(o, "first", cJSON_Duplicate(rows[0], 1));
                cJSON_AddItemToObject(o, "last", cJSON_Duplicate(rows[n - 1], 1));
            }
            print_json_line(o);
            cJSON_Delete(o);
        }
    } else {
        table_print_rows(stdout, rows, n, TABLE_HEAD, p->rows - n);
    }
    fflush(stdout);
    print_stats(a->json ? stderr : stdout, p->who, p->rows, ms, (long)p->pages);
}

/* Stores a copy of `cursor` as tree["cursor"]; false if it did not advance. */
static bool set_cursor(cJSON *tree, const cJSON *cursor)
{
    const cJSON *old = cJSON_GetObjectItemCaseSensitive(tree, "cursor");
    if (old && cJSON_Compare(old, cursor, 1)) {
        fprintf(stderr, "dmctl: next_cursor did not advance, stopping\n");
        return false;
    }
    cJSON *dup = cJSON_Duplicate(cursor, 1);
    if (!dup)
        return false;
    if (old)
        return cJSON_ReplaceItemInObjectCaseSensitive(tree, "cursor", dup);
    return cJSON_AddItemToObject(tree, "cursor", dup);
}

static int query_all(natsConnection *nc, const global_opts *g, const query_args *a, cJSON *tree)
{
    pager p;
    memset(&p, 0, sizeof p);
    int rc = EXIT_OK;
    double t0 = tu_now_ms();
    for (;;) {
        reply r;
        if (do_request(nc, g, a, tree, &r) != EXIT_OK) {
            rc = EXIT_FAIL;
            break;
        }
        if (report_error_reply(&r, a->json)) {
            reply_free(&r);
            rc = EXIT_ERR_REPLY;
            break;
        }
        served_by(&r, p.who, sizeof p.who);
        p.pages++;
        const cJSON *d = member(r.json, "data");
        for (const cJSON *row = cJSON_IsArray(d) ? d->child : NULL; row; row = row->next)
            pager_add(&p, row);
        const cJSON *next = next_cursor(r.json);
        bool more = next && p.pages < MAX_PAGES;
        if (more && !set_cursor(tree, next)) {
            rc = EXIT_FAIL;
            more = false;
        }
        reply_free(&r);
        if (!more)
            break;
    }
    if (rc == EXIT_OK)
        pager_print(&p, a, tu_now_ms() - t0);
    pager_free(&p);
    return rc;
}

/* ---- command ---------------------------------------------------------------------- */

int cmd_query(global_opts *g, int argc, char **argv)
{
    query_args a = {.body = "{}"};
    const arg_spec specs[] = {
        {"msgpack", ARG_FLAG, &a.msgpack},
        {"json", ARG_FLAG, &a.json},
        {"table", ARG_FLAG, &a.table},
        {"all", ARG_FLAG, &a.all},
    };
    char *pos[2];
    int npos;
    int r = args_parse(argc, argv, specs, 4, g, pos, 2, &npos);
    if (r == ARGS_HELP) {
        usage(stdout);
        return EXIT_OK;
    }
    if (r != ARGS_OK)
        return EXIT_USAGE;
    if (npos < 1) {
        fprintf(stderr, "dmctl query: usage: query SUBJECT [JSON] [--msgpack] [--json|--table] "
                        "[--all]\n");
        return EXIT_USAGE;
    }
    if (a.json && a.table) {
        fprintf(stderr, "dmctl query: --json and --table are exclusive\n");
        return EXIT_USAGE;
    }
    a.subject = pos[0];
    if (npos > 1)
        a.body = pos[1];
    if (!a.json && !a.table)
        a.json = !isatty(STDOUT_FILENO);

    cJSON *tree = NULL;
    if (a.msgpack || a.all) {
        tree = cJSON_Parse(a.body);
        if (!tree || (a.all && !cJSON_IsObject(tree))) {
            fprintf(stderr, "dmctl query: request must be a valid JSON %s: %s\n",
                    a.all ? "object" : "value", a.body);
            cJSON_Delete(tree);
            return EXIT_USAGE;
        }
    }
    natsConnection *nc = NULL;
    int rc = EXIT_FAIL;
    if (dm_connect(g, &nc) == NATS_OK)
        rc = a.all ? query_all(nc, g, &a, tree) : query_once(nc, g, &a, tree);
    dm_disconnect(nc);
    cJSON_Delete(tree);
    return rc;
}
