/* Configuration (worker/util/config): "ENV:NAME" values come from the environment with
 * their member names intact, a missing variable is named without leaking any value, and a
 * .env file fills gaps without overriding the real environment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/config.h"

typedef struct {
    char dir[64];
    char paths[8][128];
    int n;
} tmp;

static int setup(void **state)
{
    tmp *t = calloc(1, sizeof *t);
    snprintf(t->dir, sizeof t->dir, "/tmp/dm-unit-config-XXXXXX");
    if (mkdtemp(t->dir) == NULL)
        return -1;
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    tmp *t = *state;
    for (int i = 0; i < t->n; i++)
        unlink(t->paths[i]);
    rmdir(t->dir);
    free(t);
    return 0;
}

/* Writes dir/name with `text` (single quotes stand for double quotes when `json`). */
static const char *write_file(tmp *t, const char *name, const char *text, bool json)
{
    assert_true(t->n < 8);
    char local[128];
    snprintf(local, sizeof local, "%s/%s", t->dir, name);
    char *path = t->paths[t->n++];
    memcpy(path, local, sizeof local);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (const char *p = text; *p; p++)
        fputc(json && *p == '\'' ? '"' : *p, f);
    fclose(f);
    return path;
}

static void env_values_keep_their_member_names(void **state)
{
    tmp *t = *state;
    setenv("DM_UT_PG_HOST", "db.internal.example", 1);
    setenv("DM_UT_PG_PORT", "5433", 1);
    setenv("DM_UT_PG_PASSWORD", "s3cr3t-pw", 1);
    write_file(t, "timescale.json",
               "{'host':'ENV:DM_UT_PG_HOST','port':'ENV:DM_UT_PG_PORT','database':'dm',"
               "'password':'ENV:DM_UT_PG_PASSWORD','pool':{'password':'ENV:DM_UT_PG_PASSWORD',"
               "'size':5},'replicas':['ENV:DM_UT_PG_HOST','standby.example'],'user':'dm'}",
               true);
    cJSON *cfg = NULL;
    dm_err e = {0};
    assert_int_equal(dm_config_load(t->dir, "timescale", &cfg, &e), DM_OK);
    assert_non_null(cfg);
    /* regression: after substitution every value is still found by its key */
    assert_string_equal(dm_cfg_str(cfg, "host", NULL), "db.internal.example");
    assert_int_equal(dm_cfg_int(cfg, "port", 5432), 5433);
    assert_string_equal(dm_cfg_str(cfg, "password", NULL), "s3cr3t-pw");
    assert_string_equal(dm_cfg_str(cfg, "database", NULL), "dm");
    assert_string_equal(dm_cfg_str(cfg, "user", NULL), "dm");
    const cJSON *pool = cJSON_GetObjectItemCaseSensitive(cfg, "pool");
    assert_string_equal(dm_cfg_str(pool, "password", NULL), "s3cr3t-pw");
    assert_int_equal(dm_cfg_int(pool, "size", 0), 5);
    const cJSON *replicas = cJSON_GetObjectItemCaseSensitive(cfg, "replicas");
    assert_int_equal(cJSON_GetArraySize(replicas), 2);
    assert_string_equal(cJSON_GetArrayItem(replicas, 0)->valuestring, "db.internal.example");
    assert_string_equal(cJSON_GetArrayItem(replicas, 1)->valuestring, "standby.example");
    /* member order and count are unchanged */
    static const char *const order[] = {"host", "port", "database", "password", "pool",
                                        "replicas", "user"};
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, cfg)
    {
        assert_true(i < 7);
        assert_string_equal(it->string, order[i++]);
    }
    assert_int_equal(i, 7);
    cJSON_Delete(cfg);
}

static void missing_variable_is_named_without_leaking_values(void **state)
{
    tmp *t = *state;
    setenv("DM_UT_PG_HOST", "db.internal.example", 1);
    setenv("DM_UT_PG_PASSWORD", "s3cr3t-pw", 1);
    unsetenv("DM_UT_MISSING_PASSWORD");
    write_file(t, "clickhouse.json",
               "{'host':'ENV:DM_UT_PG_HOST','user':'ENV:DM_UT_PG_PASSWORD',"
               "'password':'ENV:DM_UT_MISSING_PASSWORD'}",
               true);
    cJSON *cfg = (cJSON *)&cfg;
    dm_err e = {0};
    assert_int_equal(dm_config_load(t->dir, "clickhouse", &cfg, &e), DM_E_INVALID_FIELD);
    assert_null(cfg);
    assert_string_equal(e.field, "password");
    assert_non_null(strstr(e.message, "DM_UT_MISSING_PASSWORD"));
    assert_non_null(strstr(e.message, "not set"));
    assert_non_null(strstr(e.message, "clickhouse.json"));
    assert_null(strstr(e.message, "db.internal.example"));
    assert_null(strstr(e.message, "s3cr3t-pw"));
}

static void optional_variable_reads_as_empty_when_unset(void **state)
{
    tmp *t = *state;
    unsetenv("DM_UT_CA");
    setenv("DM_UT_URL", "tls://127.0.0.1:4222", 1);
    write_file(t, "nats.json", "{'url':'ENV?:DM_UT_URL','ca_file':'ENV?:DM_UT_CA'}", true);
    cJSON *cfg = NULL;
    dm_err e = {0};
    assert_int_equal(dm_config_load(t->dir, "nats", &cfg, &e), DM_OK);
    assert_string_equal(dm_cfg_str(cfg, "url", "?"), "tls://127.0.0.1:4222");
    assert_string_equal(dm_cfg_str(cfg, "ca_file", "?"), "");
    cJSON_Delete(cfg);
}

static void missing_config_file_means_not_configured(void **state)
{
    tmp *t = *state;
    cJSON *cfg = (cJSON *)&cfg;
    dm_err e = {0};
    assert_int_equal(dm_config_load(t->dir, "weaviate", &cfg, &e), DM_OK);
    assert_null(cfg);
}

static void rejects_config_that_is_not_a_json_object(void **state)
{
    tmp *t = *state;
    write_file(t, "arangodb.json", "{'host': ", true);
    write_file(t, "nats.json", "['ENV:DM_UT_PG_HOST']", true);
    cJSON *cfg = NULL;
    dm_err e = {0};
    assert_int_equal(dm_config_load(t->dir, "arangodb", &cfg, &e), DM_E_INVALID_JSON);
    assert_null(cfg);
    assert_non_null(strstr(e.message, "arangodb.json"));
    assert_int_equal(dm_config_load(t->dir, "nats", &cfg, &e), DM_E_INVALID_JSON);
    assert_null(cfg);
}

static void values_without_env_prefix_are_kept_verbatim(void **state)
{
    tmp *t = *state;
    write_file(t, "dragonfly.json",
               "{'host':'env:DM_UT_PG_HOST','note':'uses ENV:X inside','port':6379,'db':0,"
               "'password':''}",
               true);
    cJSON *cfg = NULL;
    dm_err e = {0};
    assert_int_equal(dm_config_load(t->dir, "dragonfly", &cfg, &e), DM_OK);
    assert_string_equal(dm_cfg_str(cfg, "host", NULL), "env:DM_UT_PG_HOST");
    assert_string_equal(dm_cfg_str(cfg, "note", NULL), "uses ENV:X inside");
    assert_string_equal(dm_cfg_str(cfg, "password", "dflt"), "");
    assert_int_equal(dm_cfg_int(cfg, "port", 0), 6379);
    assert_string_equal(dm_cfg_str(cfg, "absent", "dflt"), "dflt");
    assert_int_equal(dm_cfg_int(cfg, "absent", 42), 42);
    cJSON_Delete(cfg);
}

static void cfg_int_reads_numbers_and_numeric_strings_only(void **state)
{
    (void)state;
    cJSON *cfg = cJSON_Parse("{\"a\":5432,\"b\":\"6379\",\"c\":\"63x\",\"d\":\"\",\"e\":true}");
    assert_int_equal(dm_cfg_int(cfg, "a", 0), 5432);
    assert_int_equal(dm_cfg_int(cfg, "b", 0), 6379);
    assert_int_equal(dm_cfg_int(cfg, "c", -1), -1);
    assert_int_equal(dm_cfg_int(cfg, "d", -1), -1);
    assert_int_equal(dm_cfg_int(cfg, "e", -1), -1);
    assert_null(dm_cfg_str(cfg, "a", NULL));
    cJSON_Delete(cfg);
}

static void env_file_does_not_override_the_environment(void **state)
{
    tmp *t = *state;
    setenv("DM_UT_EXISTING", "from-environment", 1);
    unsetenv("DM_UT_NEW");
    const char *path = write_file(t, ".env",
                                  "# local stack\n"
                                  "\n"
                                  "DM_UT_EXISTING=from-file\n"
                                  "DM_UT_NEW=from-file\n",
                                  false);
    dm_err e = {0};
    assert_int_equal(dm_env_load_file(path, &e), DM_OK);
    assert_string_equal(getenv("DM_UT_EXISTING"), "from-environment");
    assert_string_equal(getenv("DM_UT_NEW"), "from-file");
}

static void env_file_strips_quotes_export_and_spaces(void **state)
{
    tmp *t = *state;
    static const char *const names[] = {"DM_UT_DQ", "DM_UT_SQ", "DM_UT_EXPORT", "DM_UT_SPACED",
                                        "DM_UT_MISMATCHED", "DM_UT_EMPTY", "DM_UT_EQ",
                                        "DM_UT_HASH"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        unsetenv(names[i]);
    const char *path = write_file(t, "quotes.env",
                                  "DM_UT_DQ=\"quoted value\"\n"
                                  "DM_UT_SQ='p@ss word'\n"
                                  "export DM_UT_EXPORT=nats://127.0.0.1:4222\n"
                                  "  DM_UT_SPACED  =  5432  \n"
                                  "DM_UT_MISMATCHED=\"abc'\n"
                                  "DM_UT_EMPTY=\n"
                                  "DM_UT_EQ=postgres://u:p@h/db?sslmode=require&x=1\n"
                                  "DM_UT_HASH=a#b\n",
                                  false);
    dm_err e = {0};
    assert_int_equal(dm_env_load_file(path, &e), DM_OK);
    assert_string_equal(getenv("DM_UT_DQ"), "quoted value");
    assert_string_equal(getenv("DM_UT_SQ"), "p@ss word");
    assert_string_equal(getenv("DM_UT_EXPORT"), "nats://127.0.0.1:4222");
    assert_string_equal(getenv("DM_UT_SPACED"), "5432");
    assert_string_equal(getenv("DM_UT_MISMATCHED"), "\"abc'");
    assert_string_equal(getenv("DM_UT_EMPTY"), "");
    assert_string_equal(getenv("DM_UT_EQ"), "postgres://u:p@h/db?sslmode=require&x=1");
    assert_string_equal(getenv("DM_UT_HASH"), "a#b");
}

static void env_file_feeds_env_substitution(void **state)
{
    tmp *t = *state;
    unsetenv("DM_UT_REDIS_HOST");
    const char *path = write_file(t, "sub.env", "DM_UT_REDIS_HOST='cache.internal'\n", false);
    write_file(t, "cache.json", "{'host':'ENV:DM_UT_REDIS_HOST','port':6379}", true);
    dm_err e = {0};
    assert_int_equal(dm_env_load_file(path, &e), DM_OK);
    cJSON *cfg = NULL;
    assert_int_equal(dm_config_load(t->dir, "cache", &cfg, &e), DM_OK);
    assert_string_equal(dm_cfg_str(cfg, "host", NULL), "cache.internal");
    cJSON_Delete(cfg);
}

static void missing_env_file_is_not_an_error(void **state)
{
    tmp *t = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/no-such.env", t->dir);
    dm_err e = {0};
    assert_int_equal(dm_env_load_file(path, &e), DM_OK);
}

static void env_file_line_without_equals_is_reported_by_line(void **state)
{
    tmp *t = *state;
    unsetenv("DM_UT_BEFORE");
    const char *path = write_file(t, "bad.env", "DM_UT_BEFORE=1\n# ok\nDM_UT_BROKEN\n", false);
    dm_err e = {0};
    assert_int_equal(dm_env_load_file(path, &e), DM_E_INVALID_FIELD);
    assert_non_null(strstr(e.message, "bad.env:3"));
    assert_non_null(strstr(e.message, "KEY=VALUE"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(env_values_keep_their_member_names, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_variable_is_named_without_leaking_values, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(optional_variable_reads_as_empty_when_unset, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_config_file_means_not_configured, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(rejects_config_that_is_not_a_json_object, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(values_without_env_prefix_are_kept_verbatim, setup,
                                        teardown),
        cmocka_unit_test(cfg_int_reads_numbers_and_numeric_strings_only),
        cmocka_unit_test_setup_teardown(env_file_does_not_override_the_environment, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(env_file_strips_quotes_export_and_spaces, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(env_file_feeds_env_substitution, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_env_file_is_not_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(env_file_line_without_equals_is_reported_by_line, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
