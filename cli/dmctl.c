/* dmctl: command-line client of the Data Manager (dm-worker).
 * Publishes market data to JetStream and queries the worker's services. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "args.h"
#include "commands.h"

/* The release dmctl belongs to; the worker reports its own in dm.v1.health's "version". */
#define DMCTL_VERSION "0.1.0"

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
        {"patterns", cmd_patterns},
        {"correlations", cmd_correlations},
        {"graph", cmd_graph},
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
        if (strcmp(argv[i], "--version") == 0) {
            printf("dmctl %s (nats.c %s)\n", DMCTL_VERSION, nats_GetVersion());
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
        if (i + 1 < argc)
            command_usage(argv[i + 1], stdout); /* dmctl help CMD */
        else
            usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[i], "version") == 0 || strcmp(argv[i], "-V") == 0) {
        printf("dmctl %s (nats.c %s)\n", DMCTL_VERSION, nats_GetVersion());
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
