/* SPDX-License-Identifier: MIT */
/* libFuzzer entry for the safetensors header parser: any byte string must
 * parse or fail cleanly, and a success must describe only bytes inside it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    StTensor *ts = NULL;
    int n = 0;
    Err err;
    if (st_parse(data, size, "fuzz", &ts, &n, &err) != 0) {
        if (ts || n) abort();
        return 0;
    }
    for (int i = 0; i < n; i++) {
        const uint8_t *d = ts[i].data;
        if (d < data + 8 || d > data + size || ts[i].n_bytes > (size_t)(data + size - d)) abort();
        if ((size_t)st_numel(&ts[i]) * dtype_size(ts[i].dtype) != ts[i].n_bytes) abort();
        free(ts[i].name);
    }
    free(ts);
    return 0;
}
