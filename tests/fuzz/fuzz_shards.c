/* SPDX-License-Identifier: MIT */
/* libFuzzer entry for the token shard parser (io/tokshard.h): any byte
 * string must parse or fail cleanly with a message; a success must keep
 * its promises: the ids lie inside the input, fill it exactly, are all
 * below the header's vocab_size and sum to the header's checksum. The
 * first input byte picks the vocab_size the caller expects (0: any). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/tokshard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    int vocab = data[0] < 128 ? 0 : (int)data[0] * 4; /* 0 or 512 .. 1020 */
    data++;
    size--;
    TokShardHeader h;
    const unsigned char *ids;
    Err err;
    err.msg[0] = 0;
    if (tokshard_parse(data, size, "fuzz", vocab, &h, &ids, &err) != 0) {
        if (ids || !err.msg[0]) abort();
        return 0;
    }
    if (ids != data + h.header_size || h.header_size < TOKSHARD_HEADER_SIZE) abort();
    if ((uint64_t)(size - h.header_size) != 4 * h.n_tokens) abort();
    if (vocab > 0 && h.vocab_size != (uint32_t)vocab) abort();
    TokShardSum sum = {0, 0};
    for (uint64_t i = 0; i < h.n_tokens; i++) {
        uint32_t t = (uint32_t)ids[4 * i] | (uint32_t)ids[4 * i + 1] << 8 |
                     (uint32_t)ids[4 * i + 2] << 16 | (uint32_t)ids[4 * i + 3] << 24;
        if (t >= h.vocab_size) abort();
        tokshard_sum_update(&sum, &t, 1);
    }
    if (tokshard_sum_final(&sum) != h.checksum) abort();
    return 0;
}
