/* SPDX-License-Identifier: MIT */
/* GGUF v3 writer (see gguf.h): metadata in the given order, tensors packed
 * at aligned offsets with zero padding (the layout llama.cpp's reader
 * insists on), written atomically through AtomicFile. Every key, value and
 * tensor description is checked before the file is created. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/mem.h"
#include "io/gguf.h"
#include "io/gguf_internal.h"

/* ---- writing --------------------------------------------------------------- */

static int gg_host_is_le(void) {
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Output with a running byte count (for padding) and a sticky error flag. */
typedef struct Wr {
    FILE *fp;
    size_t pos;
    int bad;
} Wr;

static void wr_bytes(Wr *w, const void *p, size_t n) {
    if (w->bad || n == 0) return;
    if (fwrite(p, 1, n, w->fp) != n) w->bad = 1;
    w->pos += n;
}

static void wr_le(Wr *w, uint64_t v, size_t n) {
    unsigned char b[8];
    for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(v >> (8 * i));
    wr_bytes(w, b, n);
}

static void wr_str(Wr *w, const char *s, uint64_t n) {
    wr_le(w, n, 8);
    wr_bytes(w, s, (size_t)n);
}

static void wr_pad(Wr *w, size_t a) {
    static const unsigned char zeros[64];
    while (!w->bad && w->pos % a) {
        size_t k = a - w->pos % a;
        wr_bytes(w, zeros, k < sizeof zeros ? k : sizeof zeros);
    }
}

/* The bits of a scalar value as the file stores them. */
static uint64_t gg_scalar_bits(const GgufValue *v) {
    if (v->type == GGUF_TYPE_FLOAT32) {
        uint32_t b;
        memcpy(&b, &v->num.f32, 4);
        return b;
    }
    if (v->type == GGUF_TYPE_FLOAT64) {
        uint64_t b;
        memcpy(&b, &v->num.f64, 8);
        return b;
    }
    return gg_is_signed(v->type) ? (uint64_t)v->num.i : v->num.u;
}

static void wr_value(Wr *w, const GgufValue *v) {
    wr_le(w, (uint64_t)v->type, 4);
    if (v->type == GGUF_TYPE_STRING) {
        wr_str(w, v->str.s, v->str.n);
        return;
    }
    if (v->type != GGUF_TYPE_ARRAY) {
        wr_le(w, gg_scalar_bits(v), gg_scalar_size(v->type));
        return;
    }
    wr_le(w, (uint64_t)v->arr_type, 4);
    wr_le(w, v->arr_n, 8);
    if (v->arr_type == GGUF_TYPE_STRING) {
        for (uint64_t i = 0; i < v->arr_n; i++) wr_str(w, v->arr_str[i].s, v->arr_str[i].n);
        return;
    }
    size_t esz = gg_scalar_size(v->arr_type);
    if (gg_host_is_le()) {
        wr_bytes(w, v->arr, (size_t)v->arr_n * esz);
        return;
    }
    for (uint64_t i = 0; i < v->arr_n; i++) { /* big-endian host: swap each element */
        const unsigned char *p = (const unsigned char *)v->arr + (size_t)i * esz;
        unsigned char b[8];
        for (size_t k = 0; k < esz; k++) b[k] = p[esz - 1 - k];
        wr_bytes(w, b, esz);
    }
}

/* Validate one key/value to write. */
static int gg_check_kv(const GgufKV *kv, int idx, const char *path, Err *err) {
    if (!kv->key || !kv->key[0])
        return err_set(err, "%s: metadata key #%d is NULL or empty", path, idx);
    const GgufValue *v = &kv->v;
    const char *k = kv->key;
    if ((unsigned)v->type >= GGUF_TYPE_COUNT)
        return err_set(err, "%s: metadata key '" GG_NAME "': unknown value type %d", path, k,
                       (int)v->type);
    if (v->type == GGUF_TYPE_STRING) {
        if (v->str.n && !v->str.s)
            return err_set(err, "%s: metadata key '" GG_NAME "': string data is NULL", path, k);
        return 0;
    }
    if (v->type == GGUF_TYPE_BOOL && v->num.u > 1)
        return err_set(err, "%s: metadata key '" GG_NAME "': bool value must be 0 or 1", path, k);
    if (v->type != GGUF_TYPE_ARRAY) return 0;
    if ((unsigned)v->arr_type >= GGUF_TYPE_COUNT || v->arr_type == GGUF_TYPE_ARRAY)
        return err_set(err, "%s: metadata key '" GG_NAME "': array element type %d is not a "
                       "scalar or string type (nested arrays are not supported)", path, k,
                       (int)v->arr_type);
    if (v->arr_type == GGUF_TYPE_STRING) {
        if (v->arr_n && !v->arr_str)
            return err_set(err, "%s: metadata key '" GG_NAME "': string array is NULL", path, k);
        for (uint64_t i = 0; i < v->arr_n; i++)
            if (v->arr_str[i].n && !v->arr_str[i].s)
                return err_set(err, "%s: metadata key '" GG_NAME "': string %llu is NULL", path,
                               k, (unsigned long long)i);
        return 0;
    }
    size_t bytes;
    if (v->arr_n > SIZE_MAX || size_mul((size_t)v->arr_n, gg_scalar_size(v->arr_type), &bytes))
        return err_set(err, "%s: metadata key '" GG_NAME "': array size overflows", path, k);
    if (bytes && !v->arr)
        return err_set(err, "%s: metadata key '" GG_NAME "': array data is NULL", path, k);
    if (v->arr_type == GGUF_TYPE_BOOL)
        for (size_t i = 0; i < bytes; i++)
            if (((const unsigned char *)v->arr)[i] > 1)
                return err_set(err, "%s: metadata key '" GG_NAME "': bool element %zu must be "
                               "0 or 1", path, k, i);
    return 0;
}

/* Validate one tensor to write; *n_bytes gets its size. */
static int gg_check_write_tensor(const GgufWriteTensor *t, int idx, const char *path,
                                 size_t *n_bytes, Err *err) {
    if (!t->name || !t->name[0])
        return err_set(err, "%s: tensor #%d has a NULL or empty name", path, idx);
    const char *nm = t->name;
    if (strlen(nm) >= GGUF_NAME_MAX)
        return err_set(err, "%s: tensor name '" GG_NAME "' is %zu bytes; llama.cpp needs fewer "
                       "than %d", path, nm, strlen(nm), GGUF_NAME_MAX);
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
        return err_set(err, "%s: tensor '" GG_NAME "': n_dims = %d, must be 1..%d", path, nm,
                       t->n_dims, GGUF_MAX_DIMS);
    const GgmlTypeInfo *ti = gguf_type_info((uint32_t)t->type);
    if (!ti) return err_set(err, "%s: tensor '" GG_NAME "': unknown ggml type %d", path, nm,
                            (int)t->type);
    size_t numel = 1;
    for (int d = 0; d < t->n_dims; d++)
        if (t->ne[d] < 1 || size_mul(numel, (size_t)t->ne[d], &numel) != 0 ||
            numel > (size_t)INT64_MAX)
            return err_set(err, "%s: tensor '" GG_NAME "': dimension %d (%lld) is < 1 or "
                           "overflows", path, nm, d, (long long)t->ne[d]);
    if (t->ne[0] % ti->block_size)
        return err_set(err, "%s: tensor '" GG_NAME "': a row of %lld is not a whole number of "
                       "%s blocks of %d", path, nm, (long long)t->ne[0], ti->name,
                       ti->block_size);
    if (size_mul(numel / (size_t)ti->block_size, (size_t)ti->type_size, n_bytes) != 0)
        return err_set(err, "%s: tensor '" GG_NAME "': byte size overflows", path, nm);
    if (!t->data) return err_set(err, "%s: tensor '" GG_NAME "': data is NULL", path, nm);
    return 0;
}

/* 1 if two of the n strings at p (stride bytes apart) are equal; *dup gets one. */
static int gg_has_dup(const void *p, size_t stride, int n, const char **dup, int *oom) {
    *oom = 0;
    if (n < 2) return 0;
    const char **s = malloc((size_t)n * sizeof *s);
    if (!s) {
        *oom = 1;
        return 0;
    }
    for (int i = 0; i < n; i++) memcpy(&s[i], (const char *)p + (size_t)i * stride, sizeof *s);
    qsort(s, (size_t)n, sizeof *s, gg_cmp_str_ptr);
    int found = 0;
    for (int i = 1; i < n && !found; i++)
        if (strcmp(s[i - 1], s[i]) == 0) *dup = s[i], found = 1;
    free(s);
    return found;
}

int gguf_write(const char *path, const GgufKV *kvs, int n_kv, const GgufWriteTensor *tensors,
               int n_tensors, size_t alignment, Err *err) {
    size_t *sizes = NULL, *offs = NULL;
    AtomicFile af = {0};
    int opened = 0;
    const char *dup = NULL;
    int oom = 0;
    if (n_kv < 0 || n_tensors < 0) return err_set(err, "%s: negative count", path);

    for (int i = 0; i < n_kv; i++)
        if (gg_check_kv(&kvs[i], i, path, err) != 0) return -1;
    if (gg_has_dup(kvs, sizeof *kvs, n_kv, &dup, &oom) || oom)
        return oom ? err_set(err, "%s: out of memory", path)
                   : err_set(err, "%s: metadata key '" GG_NAME "' is given twice", path, dup);
    /* the alignment: from the argument, checked against one in kvs */
    int add_key = 0;
    const GgufKV *akv = NULL;
    for (int i = 0; i < n_kv; i++)
        if (strcmp(kvs[i].key, GGUF_KEY_ALIGNMENT) == 0) akv = &kvs[i];
    if (akv) {
        if (akv->v.type != GGUF_TYPE_UINT32 || akv->v.num.u == 0 ||
            (akv->v.num.u & (akv->v.num.u - 1)) ||
            (alignment && akv->v.num.u != alignment))
            return err_set(err, "%s: %s in the metadata must be a u32 power of two equal to the "
                           "alignment argument (%zu)", path, GGUF_KEY_ALIGNMENT, alignment);
        alignment = (size_t)akv->v.num.u;
    } else if (alignment) {
        if ((alignment & (alignment - 1)) || alignment > UINT32_MAX)
            return err_set(err, "%s: alignment %zu is not a power of two that fits u32", path,
                           alignment);
        add_key = 1;
    } else {
        alignment = GGUF_DEFAULT_ALIGNMENT;
    }

    if (n_tensors) {
        sizes = malloc((size_t)n_tensors * sizeof *sizes);
        offs = malloc((size_t)n_tensors * sizeof *offs);
        if (!sizes || !offs) {
            err_set(err, "%s: out of memory", path);
            goto fail;
        }
    }
    size_t off = 0;
    for (int i = 0; i < n_tensors; i++) {
        if (gg_check_write_tensor(&tensors[i], i, path, &sizes[i], err) != 0) goto fail;
        offs[i] = off;
        if (size_add(off, sizes[i], &off) != 0 || size_add(off, alignment - 1, &off) != 0) {
            err_set(err, "%s: tensor '" GG_NAME "': data section size overflows", path,
                    tensors[i].name);
            goto fail;
        }
        off = off / alignment * alignment;
    }
    if (gg_has_dup(tensors, sizeof *tensors, n_tensors, &dup, &oom) || oom) {
        if (oom) err_set(err, "%s: out of memory", path);
        else err_set(err, "%s: tensor '" GG_NAME "' is given twice", path, dup);
        goto fail;
    }

    if (afile_open(&af, path, err) != 0) goto fail;
    opened = 1;
    Wr w = {af.fp, 0, 0};
    wr_bytes(&w, "GGUF", 4);
    wr_le(&w, GGUF_VERSION, 4);
    wr_le(&w, (uint64_t)n_tensors, 8);
    wr_le(&w, (uint64_t)n_kv + (uint64_t)add_key, 8);
    for (int i = 0; i < n_kv; i++) {
        wr_str(&w, kvs[i].key, strlen(kvs[i].key));
        wr_value(&w, &kvs[i].v);
    }
    if (add_key) {
        GgufKV a = gguf_kv_u32(GGUF_KEY_ALIGNMENT, (uint32_t)alignment);
        wr_str(&w, a.key, strlen(a.key));
        wr_value(&w, &a.v);
    }
    for (int i = 0; i < n_tensors; i++) {
        const GgufWriteTensor *t = &tensors[i];
        wr_str(&w, t->name, strlen(t->name));
        wr_le(&w, (uint64_t)t->n_dims, 4);
        for (int d = 0; d < t->n_dims; d++) wr_le(&w, (uint64_t)t->ne[d], 8);
        wr_le(&w, (uint64_t)t->type, 4);
        wr_le(&w, (uint64_t)offs[i], 8);
    }
    wr_pad(&w, alignment);
    for (int i = 0; i < n_tensors; i++) {
        wr_bytes(&w, tensors[i].data, sizes[i]);
        wr_pad(&w, alignment);
    }
    if (w.bad) {
        err_set(err, "%s: write failed", path);
        goto fail;
    }
    opened = 0;
    if (afile_commit(&af, err) != 0) goto fail; /* commit cleans up after itself */
    free(sizes);
    free(offs);
    return 0;
fail:
    if (opened) afile_abort(&af);
    free(sizes);
    free(offs);
    return -1;
}
