/* What a delivery's reply subject says (worker/bus/pull): the delivery count, the stream
 * and consumer sequences and how many messages JetStream had yet to deliver to the
 * consumer, in both of nats-server's ack subject layouts; anything else is no delivery. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bus/pull.h"

static bool meta_of_reply(const char *reply, dm_pull_meta *out)
{
    natsMsg *m = NULL;
    assert_int_equal(natsMsg_Create(&m, "market.tick.EURUSD", reply, "{}", 2), NATS_OK);
    memset(out, 0xab, sizeof *out);
    bool ok = dm_pull_meta_of(m, out);
    natsMsg_Destroy(m);
    return ok;
}

static void the_short_layout_gives_every_counter(void **state)
{
    (void)state;
    dm_pull_meta meta;
    assert_true(meta_of_reply("$JS.ACK.MARKET.timescale-tick.3.81234.77.1733200000000000000.4521", &meta));
    assert_int_equal(meta.delivered, 3);
    assert_int_equal(meta.stream_seq, 81234);
    assert_int_equal(meta.consumer_seq, 77);
    assert_true(meta.stored_ns == 1733200000000000000ULL);
    assert_int_equal(meta.pending, 4521);
}

static void the_long_layout_with_domain_and_account_gives_the_same(void **state)
{
    (void)state;
    dm_pull_meta meta;
    assert_true(meta_of_reply("$JS.ACK.hub.ACCHASH.MARKET.timescale-tick.1.5.6.1733200000000000000.0.rnd", &meta));
    assert_int_equal(meta.delivered, 1);
    assert_int_equal(meta.stream_seq, 5);
    assert_int_equal(meta.consumer_seq, 6);
    assert_int_equal(meta.pending, 0);
}

static void a_reply_that_is_no_delivery_is_refused(void **state)
{
    (void)state;
    dm_pull_meta meta;
    assert_false(meta_of_reply("_INBOX.abc.def", &meta));
    assert_false(meta_of_reply("$JS.ACK.MARKET.c.1.2", &meta));
    assert_false(meta_of_reply("$JS.ACK.MARKET.c.0.2.3.4.5", &meta)); /* never delivered */
    assert_false(meta_of_reply("$JS.ACK.MARKET.c.1.2x.3.4.5", &meta)); /* not a number */
    assert_false(meta_of_reply("$JS.ACK.MARKET.c.1..3.4.5", &meta));   /* empty */
    assert_false(meta_of_reply("$JS.ACK.MARKET.c.1.-2.3.4.5", &meta)); /* signed */
    assert_false(meta_of_reply("$JS.ACK.MARKET.c.1.18446744073709551616.3.4.5", &meta)); /* 2^64 */
    assert_true(meta_of_reply("$JS.ACK.MARKET.c.1.18446744073709551615.3.4.5", &meta));
    assert_true(meta.stream_seq == UINT64_MAX);
    natsMsg *m = NULL;
    assert_int_equal(natsMsg_Create(&m, "market.tick.EURUSD", NULL, "{}", 2), NATS_OK);
    assert_false(dm_pull_meta_of(m, &meta));
    natsMsg_Destroy(m);
}

/* Requests overlap: a new one goes out while the last still waits, and every expiry
 * comes back on the one inbox. Only the newest's own expiry (or any other status) may
 * count as the end of what is open; an older one's must not make another request. */
static void only_the_newest_requests_expiry_ends_it(void **state)
{
    (void)state;
    assert_false(dm_pull_status_ends_newest("408", 1000)); /* an older request's */
    assert_false(dm_pull_status_ends_newest("408", 2499));
    assert_true(dm_pull_status_ends_newest("408", 2500));
    assert_true(dm_pull_status_ends_newest("408", 60000));
    assert_true(dm_pull_status_ends_newest("409", 10)); /* leadership or consumer change */
    assert_true(dm_pull_status_ends_newest("404", 10));
    assert_false(dm_pull_status_ends_newest("100", 60000)); /* a heartbeat ends nothing */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_short_layout_gives_every_counter),
        cmocka_unit_test(the_long_layout_with_domain_and_account_gives_the_same),
        cmocka_unit_test(a_reply_that_is_no_delivery_is_refused),
        cmocka_unit_test(only_the_newest_requests_expiry_ends_it),
    };
    if (nats_Open(-1) != NATS_OK)
        return 1;
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    nats_Close();
    return failed;
}
