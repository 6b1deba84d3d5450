#include "b64.h"

#include <string.h>

static const char ALPHA[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t dm_b64url_encode(const char *in, size_t n, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        size_t chars = i + 2 < n ? 4 : i + 1 < n ? 3 : 2;
        for (size_t k = 0; k < chars && o + 1 < cap; k++)
            out[o++] = ALPHA[(v >> (18 - 6 * k)) & 63];
    }
    if (cap)
        out[o < cap ? o : cap - 1] = '\0';
    return o;
}

bool dm_b64url_decode(const char *in, char *out, size_t cap, size_t *outlen)
{
    size_t n = strlen(in), o = 0;
    unsigned acc = 0;
    if (cap == 0 || n % 4 == 1) /* one leftover character cannot encode a byte */
        return false;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        const char *c = strchr(ALPHA, in[i]);
        if (c == NULL || in[i] == '\0')
            return false;
        acc = (acc << 6) | (unsigned)(c - ALPHA);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= cap)
                return false;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    *outlen = o;
    return true;
}
