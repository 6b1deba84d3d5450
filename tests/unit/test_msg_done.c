/* Messages done with go in groups: the group is destroyed when it holds DM_DONE_MAX
 * messages or DM_DONE_BYTES of data, and release destroys what is left. (ASan reports a
 * message never destroyed.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bus/msg_done.h"

static natsMsg *msg(int len)
{
    char *data = calloc(1, (size_t)len + 1);
    assert_non_null(data);
    natsMsg *m = NULL;
    assert_int_equal(natsMsg_Create(&m, "dm.v1.x", NULL, data, len), NATS_OK);
    free(data);
    return m;
}

static void a_group_goes_when_full(void **state)
{
    (void)state;
    dm_done d = {0};
    for (int i = 0; i < DM_DONE_MAX - 1; i++)
        dm_done_add(&d, msg(10));
    assert_int_equal(d.n, DM_DONE_MAX - 1);
    assert_int_equal(d.bytes, (DM_DONE_MAX - 1) * 10);
    dm_done_add(&d, msg(10));
    assert_int_equal(d.n, 0);
    assert_int_equal(d.bytes, 0);
    dm_done_add(&d, NULL);
    assert_int_equal(d.n, 0);
}

static void large_messages_go_sooner(void **state)
{
    (void)state;
    dm_done d = {0};
    dm_done_add(&d, msg(DM_DONE_BYTES / 2));
    assert_int_equal(d.n, 1);
    dm_done_add(&d, msg(DM_DONE_BYTES / 2));
    assert_int_equal(d.n, 0);
    dm_done_add(&d, msg(DM_DONE_BYTES + 1));
    assert_int_equal(d.n, 0);
}

static void release_destroys_the_rest(void **state)
{
    (void)state;
    dm_done d = {0};
    dm_done_add(&d, msg(3));
    dm_done_add(&d, msg(4));
    dm_done_release(&d);
    assert_int_equal(d.n, 0);
    assert_int_equal(d.bytes, 0);
    dm_done_release(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_group_goes_when_full),
        cmocka_unit_test(large_messages_go_sooner),
        cmocka_unit_test(release_destroys_the_rest),
    };
    if (nats_Open(-1) != NATS_OK)
        return 1;
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    nats_Close();
    return rc;
}
