/* base64url (worker/util/b64): cursors survive the round trip byte for byte, and a token
 * with characters outside the URL-safe alphabet is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/b64.h"

static const char ALPHABET[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void round_trips_arbitrary_bytes_of_every_length_up_to_40(void **state)
{
    (void)state;
    for (int seed = 0; seed < 8; seed++) {
        for (size_t n = 0; n <= 40; n++) {
            char in[40];
            unsigned x = 2166136261u ^ (unsigned)(seed * 977 + (int)n);
            for (size_t i = 0; i < n; i++) {
                x = x * 16777619u + 0x9e3779b9u;
                in[i] = (char)(x >> 24);
            }
            if (seed == 0 && n > 0)
                in[0] = '\0'; /* NUL bytes are data too */
            if (seed == 1 && n > 0)
                memset(in, 0xff, n);
            char enc[64];
            size_t elen = dm_b64url_encode(in, n, enc, sizeof enc);
            assert_int_equal(elen, (n * 4 + 2) / 3); /* no padding */
            assert_int_equal(strlen(enc), elen);
            assert_int_equal(strspn(enc, ALPHABET), elen);
            char dec[48];
            size_t dlen = 99;
            if (!dm_b64url_decode(enc, dec, sizeof dec, &dlen))
                fail_msg("decode of '%s' (%zu bytes) failed", enc, n);
            assert_int_equal(dlen, n);
            assert_memory_equal(dec, in, n);
            assert_int_equal(dec[n], '\0');
        }
    }
}

static void encodes_known_vectors_without_padding(void **state)
{
    (void)state;
    char enc[64];
    dm_b64url_encode("f", 1, enc, sizeof enc);
    assert_string_equal(enc, "Zg");
    dm_b64url_encode("fo", 2, enc, sizeof enc);
    assert_string_equal(enc, "Zm8");
    dm_b64url_encode("foo", 3, enc, sizeof enc);
    assert_string_equal(enc, "Zm9v");
    dm_b64url_encode("\xfb\xff\xbf", 3, enc, sizeof enc); /* "+/+/" in standard base64 */
    assert_string_equal(enc, "-_-_");
    dm_b64url_encode("", 0, enc, sizeof enc);
    assert_string_equal(enc, "");
    /* a realistic cursor: "1578528000000|us-nfp-2020-01" */
    const char *cur = "1578528000000|us-nfp-2020-01";
    dm_b64url_encode(cur, strlen(cur), enc, sizeof enc);
    char dec[64];
    size_t n;
    assert_true(dm_b64url_decode(enc, dec, sizeof dec, &n));
    assert_string_equal(dec, cur);
}

static void rejects_characters_outside_the_alphabet(void **state)
{
    (void)state;
    static const char *const bad[] = {"Zm9v+", "Zm9v/", "Zm8=", "Zm 9v", "Zm9v\n", "Zm.9",
                                      "\xc3\xa9", "Zm9v%3D", "!"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char dec[32];
        size_t n = 0;
        if (dm_b64url_decode(bad[i], dec, sizeof dec, &n))
            fail_msg("'%s' accepted", bad[i]);
    }
    for (int c = 1; c < 256; c++) {
        char tok[8] = "AAA";
        tok[1] = (char)c;
        char dec[8];
        size_t n;
        bool in_alphabet = strchr(ALPHABET, c) != NULL;
        if (dm_b64url_decode(tok, dec, sizeof dec, &n) != in_alphabet)
            fail_msg("byte 0x%02x %s", c, in_alphabet ? "refused" : "accepted");
    }
}

static void refuses_to_decode_into_a_buffer_too_small(void **state)
{
    (void)state;
    char enc[16], dec[16];
    dm_b64url_encode("forex", 5, enc, sizeof enc); /* "Zm9yZXg" */
    size_t n;
    assert_false(dm_b64url_decode(enc, dec, 5, &n)); /* 5 bytes need 6 with the NUL */
    assert_true(dm_b64url_decode(enc, dec, 6, &n));
    assert_int_equal(n, 5);
    assert_string_equal(dec, "forex");
}

static void encode_truncates_instead_of_overflowing(void **state)
{
    (void)state;
    char enc[5];
    memset(enc, '#', sizeof enc);
    dm_b64url_encode("forex", 5, enc, sizeof enc);
    assert_int_equal(enc[4], '\0');
    assert_memory_equal(enc, "Zm9y", 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trips_arbitrary_bytes_of_every_length_up_to_40),
        cmocka_unit_test(encodes_known_vectors_without_padding),
        cmocka_unit_test(rejects_characters_outside_the_alphabet),
        cmocka_unit_test(refuses_to_decode_into_a_buffer_too_small),
        cmocka_unit_test(encode_truncates_instead_of_overflowing),
    };
    return cmocka_run_group_tests_name("b64", tests, NULL, NULL);
}
