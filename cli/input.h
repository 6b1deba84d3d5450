/* Command-line arguments that may name their bytes elsewhere: "@FILE" reads a file, "-"
 * standard input, anything else is the text itself. Large bodies go through a file or a
 * pipe because an argument is limited by the system (ARG_MAX, "Argument list too long"). */
#ifndef DMCTL_INPUT_H
#define DMCTL_INPUT_H

#include <stdbool.h>

#include "codec/enc.h"

/* Appends the bytes `arg` stands for to out. On failure prints "dmctl CMD: cannot ..." on
 * stderr and returns false. */
bool input_read(const char *cmd, const char *arg, dm_buf *out);

#endif
