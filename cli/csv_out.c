#include "csv_out.h"

#include <stdlib.h>
#include <string.h>

static void quoted(FILE *f, const char *s)
{
    bool plain = s[0] != ' ' && strpbrk(s, ",\"\r\n") == NULL &&
                 (s[0] == '\0' || s[strlen(s) - 1] != ' ');
    if (plain) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static bool cell(FILE *f, const cJSON *v)
{
    if (v == NULL || cJSON_IsNull(v))
        return true;
    if (cJSON_IsString(v)) {
        quoted(f, v->valuestring);
        return true;
    }
    char *text = cJSON_PrintUnformatted(v);
    if (text == NULL)
        return false;
    quoted(f, text);
    cJSON_free(text);
    return true;
}

static bool header(csv_out *o, FILE *f, const cJSON *row)
{
    o->started = true;
    if (!cJSON_IsObject(row)) {
        fputs("value\n", f);
        return true;
    }
    size_t n = (size_t)cJSON_GetArraySize(row);
    o->cols = calloc(n ? n : 1, sizeof *o->cols);
    if (o->cols == NULL)
        return false;
    for (const cJSON *m = row->child; m; m = m->next) {
        if ((o->cols[o->n] = strdup(m->string)) == NULL)
            return false;
        fputs(o->n ? "," : "", f);
        quoted(f, o->cols[o->n++]);
    }
    fputc('\n', f);
    return true;
}

bool csv_out_row(csv_out *o, FILE *f, const cJSON *row)
{
    if (!o->started && !header(o, f, row))
        return false;
    bool ok = true;
    if (o->cols == NULL) {
        ok = cell(f, row);
    } else {
        for (size_t i = 0; i < o->n && ok; i++) {
            fputs(i ? "," : "", f);
            ok = cell(f, cJSON_IsObject(row) ? cJSON_GetObjectItemCaseSensitive(row, o->cols[i]) : NULL);
        }
    }
    fputc('\n', f);
    return ok;
}

void csv_out_free(csv_out *o)
{
    for (size_t i = 0; i < o->n; i++)
        free(o->cols[i]);
    free(o->cols);
    *o = (csv_out){0};
}
