/* JSON <-> msgpack for `query --msgpack` (requests are typed as JSON on the
 * command line, replies are shown as JSON). */
#ifndef DMCTL_MPJSON_H
#define DMCTL_MPJSON_H

#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>
#include <msgpack.h>

/* Integral numbers become msgpack ints, others float64. false on OOM. */
bool mpjson_pack(msgpack_packer *pk, const cJSON *j);

/* Decodes one msgpack object occupying exactly data[0..len). NULL if the
 * bytes are not a single valid msgpack value. */
cJSON *mpjson_unpack(const char *data, size_t len);

#endif
