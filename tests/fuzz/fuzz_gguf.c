/* SPDX-License-Identifier: MIT */
/* libFuzzer entry for the GGUF parser: any byte string must parse or fail
 * cleanly; a success must describe only bytes inside it (every string,
 * array and tensor), keep its promises (alignment, sizes, sorted name
 * index), and its metadata must read back through the typed getters. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/gguf.h"
#include "io/gguf_names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const uint8_t *data, size_t size, const void *p, uint64_t n) {
    const uint8_t *q = p;
    if (n == 0) return;
    if (q < data || q > data + size || n > (uint64_t)(data + size - q)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    GgufFile g;
    Err err;
    if (gguf_parse(data, size, "fuzz", &g, &err) != 0) {
        if (g.kvs || g.tensors || g.n_kv || g.n_tensors || !err.msg[0]) abort();
        return 0;
    }
    if (g.alignment == 0 || (g.alignment & (g.alignment - 1))) abort();
    for (int i = 0; i < g.n_kv; i++) {
        const GgufValue *v = &g.kvs[i].v;
        if (v->type == GGUF_TYPE_STRING) inside(data, size, v->str.s, v->str.n);
        if (v->type != GGUF_TYPE_ARRAY) continue;
        if (v->arr_type == GGUF_TYPE_ARRAY) abort();
        for (uint64_t k = 0; k < v->arr_n; k++) {
            GgufValue e;
            gguf_value_at(v, k, &e);
            if (e.type == GGUF_TYPE_STRING) inside(data, size, e.str.s, e.str.n);
        }
        if (v->arr_type != GGUF_TYPE_STRING) inside(data, size, v->arr, v->arr_n);
        uint32_t u;
        gguf_get_u32(&g, g.kvs[i].key, &u, &err); /* any outcome, no crash */
    }
    for (int i = 0; i < g.n_tensors; i++) {
        const GgufTensor *t = &g.tensors[i];
        inside(data, size, t->data, t->n_bytes);
        if (t->offset % g.alignment || gguf_find_tensor(&g, t->name) != t) abort();
        const GgmlTypeInfo *ti = gguf_type_info(t->type);
        if (!ti || (size_t)gguf_tensor_numel(t) / (size_t)ti->block_size *
                           (size_t)ti->type_size != t->n_bytes)
            abort();
        gguf_check_tensor_type(&g, t, &err);
    }
    /* the metadata mapping must also cope with whatever parsed */
    ModelConfig cfg;
    gguf_config_from_gguf(&g, &cfg, &err);
    gguf_close(&g);
    return 0;
}
