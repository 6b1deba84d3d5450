/* The error object every layer returns: a stable code, the field it concerns and a
 * message a person can act on. Codes and HTTP-like statuses are part of contract v1. */
#ifndef DM_ERR_H
#define DM_ERR_H

#include <stdarg.h>

typedef enum {
    DM_OK = 0,
    DM_E_INVALID_JSON,
    DM_E_INVALID_MSGPACK,
    DM_E_INVALID_PROTOBUF,
    DM_E_MISSING_FIELD,
    DM_E_INVALID_FIELD,
    DM_E_TOO_LARGE,
    DM_E_NOT_FOUND,
    DM_E_UNAVAILABLE,
    DM_E_INTERNAL,
} dm_code;

typedef struct {
    dm_code code;
    char field[64];
    char message[320];
    const char *file; /* where it was raised ("backend/timescale.c"), for logs, never replies */
    int line;
} dm_err;

const char *dm_code_name(dm_code code);
int dm_code_status(dm_code code);

/* Fills err (with the caller's file and line) and returns its code, so validators can
 * `return dm_fail(...)`. */
dm_code dm_fail_at(const char *file, int line, dm_err *err, dm_code code, const char *field,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));
#define dm_fail(err, code, field, ...) dm_fail_at(__FILE__, __LINE__, err, code, field, __VA_ARGS__)
/* dm_fail_at with the arguments in a va_list, for helpers that fill an error for their
 * own caller (backend/backend.h's dm_bfail). */
dm_code dm_vfail_at(const char *file, int line, dm_err *err, dm_code code, const char *field,
                    const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));
void dm_err_clear(dm_err *err);

#endif
