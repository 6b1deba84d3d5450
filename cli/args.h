/* Minimal long-option parser: "--name value" or "--name=value", options and
 * positionals in any order, "--" ends options. --server and --timeout are
 * accepted after the command too. */
#ifndef DMCTL_ARGS_H
#define DMCTL_ARGS_H

#include <stdbool.h>
#include <stdint.h>

#include "conn.h"

typedef enum { ARG_FLAG, ARG_STR, ARG_INT, ARG_DBL } arg_type;

typedef struct arg_spec {
    const char *name; /* without the leading "--" */
    arg_type type;
    void *dst;        /* bool*, const char**, int64_t*, double* */
} arg_spec;

enum { ARGS_OK = 0, ARGS_ERROR = -1, ARGS_HELP = 1, ARGS_NOT_GLOBAL = 2 };

/* argv[0] is the command name. Positionals go to pos[0..maxpos). Prints
 * the problem on stderr and returns ARGS_ERROR on bad input. */
int args_parse(int argc, char **argv, const arg_spec *specs, int nspecs, global_opts *g,
               char **pos, int maxpos, int *npos);

/* Parses a global option if argv[*i] is one (advancing *i); returns
 * ARGS_OK when consumed, ARGS_NOT_GLOBAL when it is something else, or
 * ARGS_ERROR. */
int args_global(int argc, char **argv, int *i, global_opts *g);

#endif
