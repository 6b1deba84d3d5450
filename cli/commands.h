/* Entry points of the dmctl subcommands. argv[0] is the command name;
 * each returns a process exit code (see conn.h). */
#ifndef DMCTL_COMMANDS_H
#define DMCTL_COMMANDS_H

#include <stdbool.h>
#include <stdio.h>

#include "conn.h"

int cmd_publish_candles(global_opts *g, int argc, char **argv);
int cmd_publish_ticks(global_opts *g, int argc, char **argv);
int cmd_publish_events(global_opts *g, int argc, char **argv);
int cmd_publish_raw(global_opts *g, int argc, char **argv);
int cmd_query(global_opts *g, int argc, char **argv);
int cmd_patterns(global_opts *g, int argc, char **argv);
int cmd_correlations(global_opts *g, int argc, char **argv);
int cmd_graph(global_opts *g, int argc, char **argv);
int cmd_lag(global_opts *g, int argc, char **argv);
int cmd_dlq(global_opts *g, int argc, char **argv);

/* The overview of every command (help.c). */
void usage(FILE *out);

/* One command's usage, its options and the exit codes; the overview for an unknown name. */
void command_usage(const char *name, FILE *out);

#endif
