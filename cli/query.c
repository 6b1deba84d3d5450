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
#include "request.h"
#include "table.h"
#include "timeutil.h"

#define MAX_PAGES 1000000 /* --all safety stop for a server that never ends */

typedef struct query_args {
    const char *subject;
    const char *body; /* request text as typed (default "{}") */
    bool msgpack, json, table, all;
} query_args;

static int do_request(natsConnection *nc, const global_opts *g, const query_args *a,
                      const cJSON *tree, reply *r)
{
    const request q = {.subject = a->subject, .text = a->body, .tree = tree, .msgpack = a->msgpack};
    return request_send(nc, g, &q, r);
}

static void served_by(const reply *r, char *out, size_t n)
{
    const cJSON *v = json_member(r->json, "served_by");
    if (!v)
        v = json_member(json_member(r->json, "meta"), "served_by");
    if (v && !cJSON_IsNull(v))
        table_cell_text(v, out, n);
    else
        snprintf(out, n, "%s", r->served_by[0] ? r->served_by : "-");
}

static size_t row_count(const cJSON *j)
{
    const cJSON *d = json_member(j, "data");
    if (cJSON_IsArray(d))
        return (size_t)cJSON_GetArraySize(d);
    return d && !cJSON_IsNull(d) ? 1 : 0;
}

static const cJSON *next_cursor(const cJSON *j)
{
    const cJSON *c = json_member(j, "next_cursor");
    if (!c)
        c = json_member(json_member(j, "meta"), "next_cursor");
    return c && !cJSON_IsNull(c) ? c : NULL;
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
    const cJSON *d = json_member(j, "data");
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
    if (reply_report_error(&r, a->json, NULL)) {
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
        if (reply_report_error(&r, a->json, NULL)) {
            reply_free(&r);
            rc = EXIT_ERR_REPLY;
            break;
        }
        served_by(&r, p.who, sizeof p.who);
        p.pages++;
        const cJSON *d = json_member(r.json, "data");
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
        command_usage(argv[0], stdout);
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
