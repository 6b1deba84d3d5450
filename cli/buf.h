/* Growable byte buffer used to build payloads and output lines. */
#ifndef DMCTL_BUF_H
#define DMCTL_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct buf {
    char *data;   /* always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
    bool oom;     /* sticky: set once an allocation failed, checked by callers once */
} buf;

void buf_init(buf *b);
void buf_free(buf *b);
void buf_reset(buf *b);
void buf_append(buf *b, const void *p, size_t n);
void buf_puts(buf *b, const char *s);
void buf_putc(buf *b, char c);
void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
