/* The error object every layer returns: a stable code, the field it concerns and a
 * message a person can act on. Codes and HTTP-like statuses are part of contract v1. */
#ifndef DM_ERR_H
#define DM_ERR_H

typedef enum {
    DM_OK = 0,
    DM_E_INVALID_JSON,
    DM_E_INVALID_MSGPACK,
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
} dm_err;

const char *dm_code_name(dm_code code);
int dm_code_status(dm_code code);

/* Fills err and returns its code, so validators can `return dm_fail(...)`. */
dm_code dm_fail(dm_err *err, dm_code code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void dm_err_clear(dm_err *err);

#endif
