#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *dm_code_name(dm_code code)
{
    switch (code) {
    case DM_OK: return "ok";
    case DM_E_INVALID_JSON: return "invalid_json";
    case DM_E_INVALID_MSGPACK: return "invalid_msgpack";
    case DM_E_INVALID_PROTOBUF: return "invalid_protobuf";
    case DM_E_MISSING_FIELD: return "missing_field";
    case DM_E_INVALID_FIELD: return "invalid_field";
    case DM_E_TOO_LARGE: return "too_large";
    case DM_E_NOT_FOUND: return "not_found";
    case DM_E_UNAVAILABLE: return "unavailable";
    case DM_E_INTERNAL: return "internal";
    }
    return "internal";
}

int dm_code_status(dm_code code)
{
    switch (code) {
    case DM_OK: return 200;
    case DM_E_INVALID_JSON:
    case DM_E_INVALID_MSGPACK:
    case DM_E_INVALID_PROTOBUF:
    case DM_E_MISSING_FIELD:
    case DM_E_INVALID_FIELD: return 400;
    case DM_E_TOO_LARGE: return 413;
    case DM_E_NOT_FOUND: return 404;
    case DM_E_UNAVAILABLE: return 503;
    case DM_E_INTERNAL: return 500;
    }
    return 500;
}

/* The path from the worker's folder on ("backend/timescale.c"), not the build's. */
static const char *origin(const char *file)
{
    const char *w = strstr(file, "worker/");
    return w ? w + 7 : file;
}

dm_code dm_vfail_at(const char *file, int line, dm_err *err, dm_code code, const char *field,
                    const char *fmt, va_list ap)
{
    if (err == NULL)
        return code;
    err->code = code;
    err->file = origin(file);
    err->line = line;
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    return code;
}

dm_code dm_fail_at(const char *file, int line, dm_err *err, dm_code code, const char *field,
                   const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dm_vfail_at(file, line, err, code, field, fmt, ap);
    va_end(ap);
    return code;
}

void dm_err_clear(dm_err *err)
{
    memset(err, 0, sizeof *err);
}
