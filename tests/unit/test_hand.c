/* An ordered consumer's hand: whatever order deliveries arrive in (a redelivery comes
 * behind newer messages), it holds one message per stream sequence, oldest first; a
 * failed write keeps its messages in front. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "bus/hand.h"

static natsMsg *msg(uint64_t seq)
{
    char data[24];
    int n = snprintf(data, sizeof data, "%llu", (unsigned long long)seq);
    natsMsg *m = NULL;
    assert_int_equal(natsMsg_Create(&m, "market.candle.X", NULL, data, n), NATS_OK);
    return m;
}

static void assert_order(const dm_hand *h, const uint64_t *want, size_t n)
{
    assert_int_equal(h->n, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(h->seq[i], want[i]);
        char data[24];
        snprintf(data, sizeof data, "%llu", (unsigned long long)want[i]);
        assert_memory_equal(natsMsg_GetData(h->msg[i]), data, natsMsg_GetDataLength(h->msg[i]));
    }
}

static void redeliveries_take_their_place_in_stream_order(void **state)
{
    (void)state;
    dm_hand h = {0};
    /* Newer messages first (first deliveries), then a predecessor's, redelivered late. */
    const uint64_t arrive[] = {20, 22, 24, 9, 11, 21, 3};
    for (size_t i = 0; i < sizeof arrive / sizeof *arrive; i++)
        assert_true(dm_hand_add(&h, msg(arrive[i]), arrive[i]));
    const uint64_t want[] = {3, 9, 11, 20, 21, 22, 24};
    assert_order(&h, want, 7);
    assert_true(dm_hand_has(&h, 21));
    assert_false(dm_hand_has(&h, 23));
    dm_hand_free(&h);
}

static void a_second_delivery_of_a_message_in_hand_is_dropped(void **state)
{
    (void)state;
    dm_hand h = {0};
    assert_true(dm_hand_add(&h, msg(5), 5));
    assert_true(dm_hand_add(&h, msg(7), 7));
    assert_true(dm_hand_add(&h, msg(5), 5));
    assert_true(dm_hand_add(&h, msg(7), 7));
    const uint64_t want[] = {5, 7};
    assert_order(&h, want, 2);
    dm_hand_free(&h);
}

static void a_failed_write_stays_in_front(void **state)
{
    (void)state;
    dm_hand h = {0};
    for (uint64_t s = 1; s <= 6; s++)
        assert_true(dm_hand_add(&h, msg(s), s));
    /* The first four went to a write; 2 and 3 are kept for another attempt. */
    const bool keep[] = {false, true, true, false};
    dm_hand_settle(&h, 4, keep);
    const uint64_t want[] = {2, 3, 5, 6};
    assert_order(&h, want, 4);
    dm_hand_settle(&h, 2, NULL);
    const uint64_t rest[] = {5, 6};
    assert_order(&h, rest, 2);
    dm_hand_clear(&h);
    assert_int_equal(h.n, 0);
    dm_hand_free(&h);
}

static void grows_past_its_first_allocation(void **state)
{
    (void)state;
    dm_hand h = {0};
    for (uint64_t s = 5000; s > 0; s--) /* the worst order: every add an insert in front */
        assert_true(dm_hand_add(&h, msg(s), s));
    assert_int_equal(h.n, 5000);
    for (size_t i = 0; i < h.n; i++)
        assert_int_equal(h.seq[i], i + 1);
    dm_hand_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(redeliveries_take_their_place_in_stream_order),
        cmocka_unit_test(a_second_delivery_of_a_message_in_hand_is_dropped),
        cmocka_unit_test(a_failed_write_stays_in_front),
        cmocka_unit_test(grows_past_its_first_allocation),
    };
    if (nats_Open(-1) != NATS_OK)
        return 1;
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    nats_Close();
    return failed;
}
