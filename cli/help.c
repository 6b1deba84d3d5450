/* Usage texts: the overview (dmctl --help) and each command's own (dmctl CMD --help),
 * both printed from one table so they cannot disagree. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

typedef struct command_help {
    const char *name;
    /* the arguments; continuation lines are indented as they appear in the overview */
    const char *synopsis;
    const char *text; /* what it does, lines without indentation */
    bool publish;     /* the publish options and CSV layouts apply */
} command_help;

static const command_help commands[] = {
    {"publish-candles",
     "publish-candles --symbol SYM --timeframe TF --file CSV [--source S] [--bulk N]\n"
     "                  [--shift-hours H] [--limit N] [--msgpack|--protobuf] [--skip-bad] [--quiet]",
     "CSV candles -> market.candles.SYM.TF, N candles per message (default and\n"
     "max 10000); --bulk 0 sends one market.candle.SYM.TF message per candle.\n"
     "--source defaults to broker-csv.",
     true},
    {"publish-ticks",
     "publish-ticks --symbol SYM --file M1.csv [--per-minute K] [--limit N]\n"
     "                [--shift-hours H] [--msgpack|--protobuf] [--skip-bad] [--quiet]",
     "DERIVED ticks (not real quotes): K per one-minute candle (default 9),\n"
     "walking open -> high/low -> close, deterministic, source m1-derived ->\n"
     "market.tick.SYM. The spread is relative to the price: 0.1 to 2 basis\n"
     "points of it (0.001% to 0.02%; at least one point of the symbol), tight\n"
     "spreads more often, so EUR/USD at 1.10 gets about 0.00001 to 0.00022\n"
     "and gold at 2641 about 0.03 to 0.53.",
     true},
    {"publish-events",
     "publish-events --file CSV [--shift-hours H] [--msgpack|--protobuf] [--skip-bad]\n"
     "                 [--quiet]",
     "economic calendar rows date,time,currency,impact,event[,actual,forecast,\n"
     "previous] -> market.event.COUNTRY.",
     true},
    {"publish-raw", "publish-raw SUBJECT PAYLOAD [--msg-id ID] [--content-type T] [--protobuf] [--quiet]",
     "publish PAYLOAD bytes as they are (\"@FILE\" reads a file, \"-\" stdin) and\n"
     "print the PubAck: \"published seq N on SUBJECT (stream MARKET)\" on a\n"
     "terminal, the bare sequence number N when stdout is a pipe or file (for\n"
     "scripts: seq=$(dmctl publish-raw ...)); --quiet prints nothing.\n"
     "Content-Type defaults to application/json; --content-type '' sends none.\n"
     "--protobuf: PAYLOAD is JSON, sent as the subject's protobuf message\n"
     "(schemas/market_data.proto) with Content-Type application/protobuf.\n"
     "No Nats-Msg-Id unless --msg-id.",
     false},
    {"query", "query SUBJECT [JSON|@FILE|-] [--msgpack|--protobuf] [--json|--csv|--table] [--all]",
     "request/reply with body JSON (default {}); \"@FILE\" reads the body from\n"
     "a file, \"-\" from stdin (for bodies too long for an argument); --msgpack\n"
     "sends and decodes msgpack; --protobuf sends the subject's request message\n"
     "(dates as Unix ms; YYYY-MM-DD and ISO instants typed are converted) with\n"
     "Accept: application/protobuf and decodes its reply message.\n"
     "--table (default on a terminal), --json or --csv output; a served_by=..\n"
     "rows=.. time=.. ms line follows (stderr with --json and --csv). Tables show\n"
     "every row, times as YYYY-MM-DD HH:MM:SS in UTC. --csv writes the rows as\n"
     "CSV: a header of the first row's fields, times as Unix milliseconds, as the\n"
     "worker sends them.\n"
     "--all follows next_cursor (sent back as \"cursor\") until it is null:\n"
     "with --json it prints every row of every page as JSON lines (one row\n"
     "object per line, no envelope; served_by, rows and pages on stderr), with\n"
     "--csv one CSV of every row, else one table of every row; progress on\n"
     "stderr when it is a terminal.",
     false},
    {"patterns",
     "patterns --symbol SYM --at TIME --window W [--timeframe TF] [--limit N]\n"
     "           [--similar THRESHOLD] [--in SYM2] [--start DATE] [--end DATE]\n"
     "           [--zone Z] [--json]",
     "what else moved like SYM's W candles (8 .. 512) from TIME on? Reads their\n"
     "closes (dm.v1.candles.history; fewer than W stored from TIME is an error)\n"
     "and asks dm.v1.patterns.find for the N best windows (default 10, at most\n"
     "100), or with --similar dm.v1.patterns.similar for every window scoring\n"
     "at least THRESHOLD (-1 .. 1; N default 100, at most 1000). Score: Pearson\n"
     "correlation of the closes. --timeframe defaults to 1h; --in searches only\n"
     "SYM2; --start/--end keep windows wholly inside [start, end); --zone Z\n"
     "leaves out windows within Z candles of a better one of the same series\n"
     "(default W/4 rounded up, 0 off). --json prints the worker's reply.",
     false},
    {"correlations",
     "correlations --symbol SYM [--threshold T] [--timeframe TF] [--end DATE]\n"
     "               [--window N] [--json]",
     "symbols whose returns correlate with SYM's (dm.v1.correlations) with\n"
     "|r| >= T (0 .. 1, worker default 0.6), strongest first, over the N\n"
     "candles (30 .. 10000, worker default 720) up to DATE (default now).\n"
     "--json prints the worker's reply.",
     false},
    {"graph",
     "graph --symbol SYM [--depth D] [--threshold T] [--timeframe TF] [--end DATE]\n"
     "        [--window N] [--json]",
     "the correlation graph around SYM (dm.v1.graph): symbols within D hops\n"
     "(1 .. 5, default 2) over pairs with |r| >= T, each with its neighbours,\n"
     "the clusters of every symbol of the timeframe, and the minimum spanning\n"
     "forest (distance sqrt(2(1 - r))). Window as for correlations. --json\n"
     "prints the worker's reply.",
     false},
    {"lag", "lag [--stream MARKET] [--wait SECONDS]",
     "every consumer's backlog: pending (not yet delivered), ack_pending\n"
     "(delivered, not yet acknowledged) and redelivered messages; then the\n"
     "stream sequences it reached: last_delivered and ack_floor (every message\n"
     "up to it acknowledged). --wait polls every 200 ms until pending and\n"
     "ack_pending are 0 everywhere (exit 0) or SECONDS pass (exit 1).",
     false},
    {"dlq",
     "dlq list [--kind K] [--seq N] [--limit N] [--json]\n"
     "  dlq replay (--seq N | --all) [--kind K] [--keep]",
     "list: dead letters held in stream DLQ: why (Dm-Reason, Dm-Code), from\n"
     "which subject and consumer, after how many deliveries; --json one object\n"
     "per line with the headers and the payload.\n"
     "replay: publish dead letters again to their original market.* subject\n"
     "(every backend sees them again: writes are upserts), then delete them\n"
     "from DLQ unless --keep.",
     false},
};

static const char global_text[] =
    "global options (also accepted after COMMAND):\n"
    "  --server URL     NATS server (default $DM_NATS_URL, else " DEFAULT_URL ")\n"
    "  --timeout MS     request / PubAck timeout in milliseconds (default 5000)\n";

static const char publish_text[] =
    "publish options:\n"
    "  --limit N        publish at most N candles/ticks\n"
    "  --shift-hours H  add H hours to CSV times (broker clock, taken as UTC by default)\n"
    "  --msgpack        msgpack payloads (Content-Type application/msgpack)\n"
    "  --protobuf       protobuf payloads (application/protobuf, schemas/market_data.proto)\n"
    "  --skip-bad       skip and count bad rows instead of failing (file:line shown)\n"
    "  --quiet          no progress on stderr (the one summary line stays on stdout)\n"
    "\n"
    "CSV layouts, detected from the first line:\n"
    "  Date,Open,High,Low,Close,Volume        Date = YYYY.MM.DD HH:MM or YYYY.MM.DD\n"
    "  Date,Time,Open,High,Low,Close,Volume   YYYY.MM.DD and HH:MM\n"
    "  timestamp,open,high,low,close,volume   DD/MM/YYYY HH:MM\n"
    "  events: no header, e.g. 2026.04.10,14:30,USD,HIGH,CPI\n"
    "\n"
    "Messages carry a deterministic Nats-Msg-Id, so re-running a publish is\n"
    "harmless: JetStream reports the copies as duplicates.\n";

static const char times_text[] =
    "TIME and DATE: YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS] (UTC), an ISO-8601 instant\n"
    "with its zone (2020-03-09T12:00+02:00) or Unix milliseconds.\n";

static const char exit_text[] =
    "exit status: 0 ok, 1 failure, 2 error reply to a query, 3 published but\n"
    "dead-lettered by a worker (publish commands wait up to --timeout for the\n"
    "workers to settle what they sent, then look in the DLQ), 64 bad usage\n";

/* Writes `text` with `indent` blanks before every line. */
static void put_indented(FILE *out, const char *text, int indent)
{
    while (*text) {
        const char *nl = strchr(text, '\n');
        int len = nl ? (int)(nl - text) : (int)strlen(text);
        fprintf(out, "%*s%.*s\n", indent, "", len, text);
        text += len + (nl != NULL);
    }
}

static bool takes_times(const command_help *c)
{
    return strcmp(c->name, "patterns") == 0 || strcmp(c->name, "correlations") == 0 ||
           strcmp(c->name, "graph") == 0;
}

void usage(FILE *out)
{
    fputs("usage: dmctl [--server URL] [--timeout MS] COMMAND [ARGS]\n"
          "       dmctl --version | COMMAND --help\n"
          "\n"
          "Client of the Data Manager: publishes market data to JetStream (stream MARKET,\n"
          "created by dm-worker) and queries the worker over NATS request/reply.\n"
          "dmctl COMMAND --help shows one command; dmctl --version its version.\n"
          "\n",
          out);
    fputs(global_text, out);
    fputs("\ncommands:\n", out);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        fprintf(out, "  %s\n", commands[i].synopsis);
        put_indented(out, commands[i].text, 6);
    }
    fputc('\n', out);
    fputs(publish_text, out);
    fputc('\n', out);
    fputs(times_text, out);
    fputc('\n', out);
    fputs(exit_text, out);
}

void command_usage(const char *name, FILE *out)
{
    const command_help *c = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            c = &commands[i];
    if (!c) {
        usage(out);
        return;
    }
    /* "usage: dmctl " is 11 columns wider than the overview's indent of 2 */
    fputs("usage: dmctl ", out);
    const char *nl = strchr(c->synopsis, '\n');
    if (nl) {
        fprintf(out, "%.*s\n", (int)(nl - c->synopsis), c->synopsis);
        put_indented(out, nl + 1, 11);
    } else {
        fprintf(out, "%s\n", c->synopsis);
    }
    fputc('\n', out);
    put_indented(out, c->text, 0);
    fputc('\n', out);
    if (c->publish) {
        fputs(publish_text, out);
        fputc('\n', out);
    }
    if (takes_times(c)) {
        fputs(times_text, out);
        fputc('\n', out);
    }
    fputs(global_text, out);
    fputc('\n', out);
    fputs(exit_text, out);
}
