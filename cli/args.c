#include "args.h"

#include <stdio.h>
#include <string.h>

#include "codec/enc.h"

/* "dmctl CMD: ..." for command options, "dmctl: ..." for global ones (cmd "") */
#define SEP(cmd) (*(cmd) ? " " : "")

/* Splits "--name=value"; returns the value part or NULL. */
static const char *split_eq(const char *arg, char *name, size_t namelen)
{
    const char *eq = strchr(arg, '=');
    size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
    if (n >= namelen)
        n = namelen - 1;
    memcpy(name, arg, n);
    name[n] = '\0';
    return eq ? eq + 1 : NULL;
}

static bool store(const arg_spec *s, const char *cmd, const char *val)
{
    switch (s->type) {
    case ARG_STR:
        *(const char **)s->dst = val;
        return true;
    case ARG_INT:
        if (dm_parse_field_i64(val, (int64_t *)s->dst))
            return true;
        fprintf(stderr, "dmctl%s%s: --%s needs an integer, got '%s'\n", SEP(cmd), cmd, s->name,
                val);
        return false;
    case ARG_DBL:
        if (dm_parse_field_double(val, (double *)s->dst))
            return true;
        fprintf(stderr, "dmctl%s%s: --%s needs a number, got '%s'\n", SEP(cmd), cmd, s->name, val);
        return false;
    case ARG_FLAG:
        break;
    }
    return false;
}

/* Handles one option at argv[*i]; returns false on error. */
static bool parse_option(int argc, char **argv, int *i, const arg_spec *specs, int nspecs,
                         const char *cmd)
{
    char name[64];
    const char *val = split_eq(argv[*i] + 2, name, sizeof name);
    for (int k = 0; k < nspecs; k++) {
        const arg_spec *s = &specs[k];
        if (strcmp(s->name, name) != 0)
            continue;
        if (s->type == ARG_FLAG) {
            if (val) {
                fprintf(stderr, "dmctl%s%s: --%s takes no value\n", SEP(cmd), cmd, name);
                return false;
            }
            *(bool *)s->dst = true;
            return true;
        }
        if (!val) {
            if (*i + 1 >= argc) {
                fprintf(stderr, "dmctl%s%s: --%s needs a value\n", SEP(cmd), cmd, name);
                return false;
            }
            val = argv[++*i];
        }
        return store(s, cmd, val);
    }
    fprintf(stderr, "dmctl%s%s: unknown option --%s (see dmctl%s%s --help)\n", SEP(cmd), cmd, name,
            SEP(cmd), cmd);
    return false;
}

int args_global(int argc, char **argv, int *i, global_opts *g)
{
    char name[64];
    if (strncmp(argv[*i], "--", 2) != 0)
        return ARGS_NOT_GLOBAL;
    split_eq(argv[*i] + 2, name, sizeof name);
    if (strcmp(name, "server") != 0 && strcmp(name, "timeout") != 0)
        return ARGS_NOT_GLOBAL;
    const arg_spec specs[] = {
        {"server", ARG_STR, &g->server},
        {"timeout", ARG_INT, &g->timeout_ms},
    };
    if (!parse_option(argc, argv, i, specs, 2, ""))
        return ARGS_ERROR;
    if (g->timeout_ms <= 0) {
        fprintf(stderr, "dmctl: --timeout must be a positive number of milliseconds\n");
        return ARGS_ERROR;
    }
    return ARGS_OK;
}

int args_parse(int argc, char **argv, const arg_spec *specs, int nspecs, global_opts *g,
               char **pos, int maxpos, int *npos)
{
    const char *cmd = argv[0];
    bool opts_done = false;
    *npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!opts_done && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0))
            return ARGS_HELP;
        if (!opts_done && strcmp(a, "--") == 0) {
            opts_done = true;
            continue;
        }
        if (!opts_done && strncmp(a, "--", 2) == 0) {
            int r = args_global(argc, argv, &i, g);
            if (r == ARGS_ERROR)
                return ARGS_ERROR;
            if (r == ARGS_OK)
                continue;
            if (!parse_option(argc, argv, &i, specs, nspecs, cmd))
                return ARGS_ERROR;
            continue;
        }
        if (*npos >= maxpos) {
            fprintf(stderr, "dmctl%s%s: unexpected argument '%s'\n", SEP(cmd), cmd, a);
            return ARGS_ERROR;
        }
        pos[(*npos)++] = argv[i];
    }
    return ARGS_OK;
}
