/* base64url without padding: cursors are opaque tokens safe in JSON and URLs. */
#ifndef DM_B64_H
#define DM_B64_H

#include <stdbool.h>
#include <stddef.h>

size_t dm_b64url_encode(const char *in, size_t n, char *out, size_t cap);
/* Returns false on any character outside the alphabet or when out is too small. */
bool dm_b64url_decode(const char *in, char *out, size_t cap, size_t *outlen);

#endif
