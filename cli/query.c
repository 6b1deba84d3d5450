/* query: core NATS request/reply against the worker's dm.v1.* services,
 * with JSON, msgpack or protobuf bodies (typed, from a file or stdin), table, JSON or CSV
 * display and --all paging (every row: JSON lines, CSV or one table). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "args.h"
#include "codec/enc.h"
#include "commands.h"
#include "csv_out.h"
#include "input.h"
#include "request.h"
#include "table.h"
#include "timeutil.h"

#define MAX_PAGES 1000000 /* --all safety stop for a server that never ends */

typedef struct query_args {
    const char *subject;
    const char *body; /* request text as typed (default "{}") */
    bool msgpack, protobuf, json, table, all, csv;
} query_args;

/* Rows go out as they come (JSON lines or CSV): the stats line goes to stderr. */
static bool streams(const query_args *a)
{
    return a->json || a->csv;
}

/* An answer's rows as CSV: its data array, or the answer itself. */
static void print_csv(const cJSON *j)
{
    csv_out o = {0};
    const cJSON *d = json_member(j, "data");
    if (cJSON_IsArray(d))
        for (const cJSON *row = d->child; row; row = row->next)
            csv_out_row(&o, stdout, row);
    else
        csv_out_row(&o, stdout, d && !cJSON_IsNull(d) ? d : j);
    csv_out_free(&o);
}

static int do_request(natsConnection *nc, const global_opts *g, const query_args *a,
                      const cJSON *tree, reply *r)
{
    const request q = {.subject = a->subject, .text = a->body, .tree = tree, .msgpack = a->msgpack,
                       .protobuf = a->protobuf};
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
    } else if (a->csv) {
        print_csv(r.json);
    } else {
        print_reply_table(r.json);
    }
    fflush(stdout);
    print_stats(streams(a) || rc != EXIT_OK ? stderr : stdout, who, row_count(r.json), r.ms, -1);
    reply_free(&r);
    return rc;
}

/* ---- --all: follow next_cursor --------------------------------------------------- */

/* --json writes each page's rows as JSON lines while paging, so an export of any size
 * needs memory for one page only; the table needs every row first to size its columns. */
typedef struct pager {
    cJSON *rows; /* table mode: every row, in order */
    csv_out csv;
    size_t nrows, pages;
    bool progress; /* stderr is a terminal */
    double t0;
    char who[128];
} pager;

static void pager_page(pager *p, const query_args *a, cJSON *data)
{
    p->pages++;
    for (cJSON *row = cJSON_IsArray(data) ? data->child : NULL; row; row = row->next) {
        p->nrows++;
        if (a->json)
            print_json_line(row);
        else if (a->csv)
            csv_out_row(&p->csv, stdout, row);
    }
    if (!streams(a) && cJSON_IsArray(data)) {
        /* move the page's rows over instead of copying them */
        cJSON *row;
        while ((row = cJSON_DetachItemFromArray(data, 0)) != NULL)
            cJSON_AddItemToArray(p->rows, row);
    }
    if (p->progress) {
        double s = (tu_now_ms() - p->t0) / 1000;
        fprintf(stderr, "\r\033[K%zu rows, %zu pages, %.1f s (%.0f rows/s)", p->nrows, p->pages,
                s, s > 0 ? (double)p->nrows / s : 0.0);
        fflush(stderr);
    }
}

static void pager_print(const pager *p, const query_args *a, double ms)
{
    if (p->progress)
        fputs("\r\033[K", stderr);
    if (!streams(a))
        table_print_array(stdout, p->rows);
    fflush(stdout);
    print_stats(streams(a) ? stderr : stdout, p->who, p->nrows, ms, (long)p->pages);
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
    pager p = {.rows = streams(a) ? NULL : cJSON_CreateArray(),
               .progress = isatty(STDERR_FILENO),
               .t0 = tu_now_ms()};
    if (!streams(a) && !p.rows) {
        fprintf(stderr, "dmctl: out of memory\n");
        return EXIT_FAIL;
    }
    int rc = EXIT_OK;
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
        pager_page(&p, a, cJSON_GetObjectItemCaseSensitive(r.json, "data"));
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
        pager_print(&p, a, tu_now_ms() - p.t0);
    else if (p.progress)
        fputc('\n', stderr);
    cJSON_Delete(p.rows);
    csv_out_free(&p.csv);
    return rc;
}

/* ---- command ---------------------------------------------------------------------- */

int cmd_query(global_opts *g, int argc, char **argv)
{
    query_args a = {.body = "{}"};
    const arg_spec specs[] = {
        {"msgpack", ARG_FLAG, &a.msgpack},
        {"protobuf", ARG_FLAG, &a.protobuf},
        {"json", ARG_FLAG, &a.json},
        {"table", ARG_FLAG, &a.table},
        {"all", ARG_FLAG, &a.all},
        {"csv", ARG_FLAG, &a.csv},
    };
    char *pos[2];
    int npos;
    int r = args_parse(argc, argv, specs, sizeof specs / sizeof *specs, g, pos, 2, &npos);
    if (r == ARGS_HELP) {
        command_usage(argv[0], stdout);
        return EXIT_OK;
    }
    if (r != ARGS_OK)
        return EXIT_USAGE;
    if (npos < 1) {
        fprintf(stderr, "dmctl query: usage: query SUBJECT [JSON|@FILE|-] [--msgpack|--protobuf] "
                        "[--json|--csv|--table] [--all]\n");
        return EXIT_USAGE;
    }
    if (a.json + a.table + a.csv > 1 || (a.msgpack && a.protobuf)) {
        fprintf(stderr, "dmctl query: --%s are exclusive\n",
                a.msgpack && a.protobuf ? "msgpack and --protobuf" : "json, --csv and --table");
        return EXIT_USAGE;
    }
    a.subject = pos[0];
    dm_buf body;
    dm_buf_init(&body);
    if (npos > 1) {
        if (!input_read(argv[0], pos[1], &body)) {
            dm_buf_free(&body);
            return EXIT_FAIL;
        }
        dm_buf_put(&body, "", 1); /* the request text is a C string */
        if (body.oom) {
            fprintf(stderr, "dmctl query: out of memory\n");
            dm_buf_free(&body);
            return EXIT_FAIL;
        }
        a.body = (const char *)body.data;
    }
    if (!a.json && !a.table && !a.csv)
        a.json = !isatty(STDOUT_FILENO);

    cJSON *tree = NULL;
    if (a.msgpack || a.protobuf || a.all) {
        tree = cJSON_Parse(a.body);
        if (!tree || ((a.all || a.protobuf) && !cJSON_IsObject(tree))) {
            fprintf(stderr, "dmctl query: request must be a valid JSON %s: %.200s%s\n",
                    a.all || a.protobuf ? "object" : "value", a.body, strlen(a.body) > 200 ? "..." : "");
            cJSON_Delete(tree);
            dm_buf_free(&body);
            return EXIT_USAGE;
        }
    }
    natsConnection *nc = NULL;
    int rc = EXIT_FAIL;
    if (dm_connect(g, &nc) == NATS_OK)
        rc = a.all ? query_all(nc, g, &a, tree) : query_once(nc, g, &a, tree);
    dm_disconnect(nc);
    cJSON_Delete(tree);
    dm_buf_free(&body);
    return rc;
}
