#include "config.h"

#include "file.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DM_CONFIG_MAX_BYTES (256 * 1024)

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

dm_code dm_env_load_file(const char *path, dm_err *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return errno == ENOENT ? DM_OK
                               : dm_fail(err, DM_E_INTERNAL, "", "cannot read %s: %s", path, strerror(errno));
    char line[4096];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        if (strncmp(s, "export ", 7) == 0)
            s = trim(s + 7);
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            fclose(f);
            return dm_fail(err, DM_E_INVALID_FIELD, "", "%s:%d: expected KEY=VALUE", path, lineno);
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        size_t n = strlen(val);
        if (n >= 2 && (val[0] == '"' || val[0] == '\'') && val[n - 1] == val[0]) {
            val[n - 1] = '\0';
            val++;
        }
        setenv(key, val, 0);
    }
    fclose(f);
    return DM_OK;
}

static dm_code resolve_env(cJSON *node, const char *file, dm_err *err)
{
    cJSON *it;
    cJSON_ArrayForEach(it, node)
    {
        if (cJSON_IsObject(it) || cJSON_IsArray(it)) {
            dm_code c = resolve_env(it, file, err);
            if (c)
                return c;
        } else if (cJSON_IsString(it) && (strncmp(it->valuestring, "ENV:", 4) == 0 ||
                                          strncmp(it->valuestring, "ENV?:", 5) == 0)) {
            /* ENV?:NAME is optional: unset reads as "" (a CA file only TLS stacks have). */
            bool optional = it->valuestring[3] == '?';
            const char *name = it->valuestring + (optional ? 5 : 4);
            const char *v = getenv(name);
            if (v == NULL && optional)
                v = "";
            if (v == NULL)
                return dm_fail(err, DM_E_INVALID_FIELD, it->string ? it->string : "",
                               "%s: %s refers to environment variable %s, which is not set", file,
                               it->string ? it->string : "value", name);
            cJSON *repl = cJSON_CreateString(v);
            /* Replace this very item (a name may repeat in JSON) and keep its name, or the
             * value can no longer be found by key. */
            if (repl && it->string) {
                repl->string = malloc(strlen(it->string) + 1);
                if (repl->string)
                    strcpy(repl->string, it->string);
            }
            bool ok = repl && (it->string == NULL || repl->string != NULL) &&
                      cJSON_ReplaceItemViaPointer(node, it, repl);
            if (!ok) {
                cJSON_Delete(repl);
                return dm_fail(err, DM_E_INTERNAL, "", "out of memory");
            }
            it = repl;
        }
    }
    return DM_OK;
}

dm_code dm_config_load(const char *dir, const char *name, cJSON **out, dm_err *err)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    *out = NULL;
    char *buf;
    size_t n;
    dm_err rerr = {0};
    if (dm_read_file(path, DM_CONFIG_MAX_BYTES, &buf, &n, &rerr) != DM_OK) {
        if (errno == ENOENT) /* no file: the backend is not configured */
            return DM_OK;
        *err = rerr;
        return err->code;
    }
    cJSON *root = cJSON_ParseWithLength(buf, n);
    free(buf);
    if (root == NULL || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return dm_fail(err, DM_E_INVALID_JSON, "", "%s is not a JSON object", path);
    }
    dm_code c = resolve_env(root, path, err);
    if (c) {
        cJSON_Delete(root);
        return c;
    }
    *out = root;
    return DM_OK;
}

const char *dm_cfg_str(const cJSON *cfg, const char *key, const char *dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

int dm_cfg_int(const cJSON *cfg, const char *key, int dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsNumber(v))
        return (int)v->valuedouble;
    if (cJSON_IsString(v) && v->valuestring[0]) {
        char *end;
        long n = strtol(v->valuestring, &end, 10);
        if (*end == '\0')
            return (int)n;
    }
    return dflt;
}
