/* dmctl: command-line client of the Data Manager (dm-worker).
 * Publishes market data to JetStream and queries the worker's services. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "args.h"
#include "commands.h"

void usage(FILE *out)
{
    fputs(
        "usage: dmctl [--server URL] [--timeout MS] COMMAND [ARGS]\n"
        "\n"
        "Client of the Data Manager: publishes market data to JetStream (stream MARKET,\n"
        "created by dm-worker) and queries the worker over NATS request/reply.\n"
        "\n"
        "global options (also accepted after COMMAND):\n"
        "  --server URL     NATS server (default $DM_NATS_URL, else " DEFAULT_URL ")\n"
        "  --timeout MS     request / PubAck timeout in milliseconds (default 5000)\n"
        "\n"
        "commands:\n"
        "  publish-candles --symbol SYM --timeframe TF --file CSV [--source S] [--bulk N]\n"
        "                  [--shift-hours H] [--limit N] [--msgpack] [--skip-bad] [--quiet]\n"
        "      CSV candles -> market.candles.SYM.TF, N candles per message (default and\n"
        "      max 10000); --bulk 0 sends one market.candle.SYM.TF message per candle.\n"
        "      --source defaults to broker-csv.\n"
        "  publish-ticks --symbol SYM --file M1.csv [--per-minute K] [--limit N]\n"
        "                [--shift-hours H] [--msgpack] [--skip-bad] [--quiet]\n"
        "      DERIVED ticks (not real quotes): K per one-minute candle (default 9),\n"
        "      walking open -> high/low -> close with a 0.1-2 pip spread, deterministic,\n"
        "      source m1-derived -> market.tick.SYM.\n"
        "  publish-events --file CSV [--shift-hours H] [--msgpack] [--skip-bad] [--quiet]\n"
        "      economic calendar rows date,time,currency,impact,event[,actual,forecast,\n"
        "      previous] -> market.event.COUNTRY.\n"
        "  publish-raw SUBJECT PAYLOAD [--msg-id ID] [--content-type T]\n"
        "      publish PAYLOAD bytes as they are (\"@FILE\" reads a file, \"-\" stdin) and\n"
        "      print the PubAck sequence. Content-Type defaults to application/json;\n"
        "      --content-type '' sends none. No Nats-Msg-Id unless --msg-id.\n"
        "  query SUBJECT [JSON] [--msgpack] [--json|--table] [--all]\n"
        "      request/reply with body JSON (default {}); --msgpack sends and decodes\n"
        "      msgpack. --table (default on a terminal) or --json output; a\n"
        "      served_by=.. rows=.. time=.. ms line follows (stderr with --json).\n"
        "      --all follows next_cursor (sent back as \"cursor\") until it is null.\n"
        "  lag [--stream MARKET] [--wait SECONDS]\n"
        "      num_pending / num_ack_pending of every consumer; --wait polls every\n"
        "      200 ms until all are 0 (exit 0) or SECONDS pass (exit 1).\n"
        "  dlq list [--kind K] [--seq N] [--limit N] [--json]\n"
        "      dead letters held in stream DLQ: why (Dm-Reason, Dm-Code), from which\n"
        "      subject and consumer, after how many deliveries; --json one object per\n"
        "      line with the headers and the payload.\n"
        "  dlq replay (--seq N | --all) [--kind K] [--keep]\n"
        "      publish dead letters again to their original market.* subject (every\n"
        "      backend sees them again: writes are upserts), then delete them from DLQ\n"
        "      unless --keep.\n"
        "\n"
        "publish options:\n"
        "  --limit N        publish at most N candles/ticks\n"
        "  --shift-hours H  add H hours to CSV times (broker clock, taken as UTC by default)\n"
        "  --msgpack        msgpack payloads (Content-Type application/msgpack)\n"
        "  --skip-bad       skip and count bad rows instead of failing (file:line shown)\n"
        "  --quiet          no progress or stderr summary (stdout summary stays)\n"
        "\n"
        "CSV layouts, detected from the first line:\n"
        "  Date,Open,High,Low,Close,Volume        Date = YYYY.MM.DD HH:MM or YYYY.MM.DD\n"
        "  Date,Time,Open,High,Low,Close,Volume   YYYY.MM.DD and HH:MM\n"
        "  timestamp,open,high,low,close,volume   DD/MM/YYYY HH:MM\n"
        "  events: no header, e.g. 2026.04.10,14:30,USD,HIGH,CPI\n"
        "\n"
        "Messages carry a deterministic Nats-Msg-Id, so re-running a publish is\n"
        "harmless: JetStream reports the copies as duplicates.\n"
        "\n"
        "exit status: 0 ok, 1 failure, 2 error reply to a query, 64 bad usage\n",
        out);
}

typedef int (*command_fn)(global_opts *g, int argc, char **argv);

static command_fn find_command(const char *name)
{
    static const struct {
        const char *name;
        command_fn fn;
    } table[] = {
        {"publish-candles", cmd_publish_candles},
        {"publish-ticks", cmd_publish_ticks},
        {"publish-events", cmd_publish_events},
        {"publish-raw", cmd_publish_raw},
        {"query", cmd_query},
        {"lag", cmd_lag},
        {"dlq", cmd_dlq},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(name, table[i].name) == 0)
            return table[i].fn;
    return NULL;
}

int main(int argc, char **argv)
{
    /* See worker/main.c: with TLS, nats.c's cleanup and OpenSSL's exit handler free the
     * same list; OpenSSL skips its own. */
    OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
    const char *env = getenv("DM_NATS_URL");
    global_opts g = {
        .server = env && *env ? env : DEFAULT_URL,
        .timeout_ms = DEFAULT_TIMEOUT_MS,
    };
    int i = 1;
    while (i < argc && strncmp(argv[i], "--", 2) == 0) {
        if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return EXIT_OK;
        }
        int r = args_global(argc, argv, &i, &g);
        if (r == ARGS_ERROR)
            return EXIT_USAGE;
        if (r == ARGS_NOT_GLOBAL) {
            fprintf(stderr, "dmctl: unknown option %s (see dmctl --help)\n", argv[i]);
            return EXIT_USAGE;
        }
        i++;
    }
    if (i >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[i], "help") == 0 || strcmp(argv[i], "-h") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    command_fn fn = find_command(argv[i]);
    if (!fn) {
        fprintf(stderr, "dmctl: unknown command '%s' (see dmctl --help)\n", argv[i]);
        return EXIT_USAGE;
    }
    int rc = fn(&g, argc - i, argv + i);
    /* release the library's threads and buffers so leak checkers stay quiet */
    nats_CloseAndWait(2000);
    return rc;
}
