/* SPDX-License-Identifier: MIT */
/* GGUF reader (see gguf.h; the writer is gguf_write.c). The reader walks the image with a
 * bounds-checked cursor: every count, length and offset is compared with the
 * bytes left before it is used, sizes go through size_mul/size_add, and
 * lists grow as entries are actually read, so a hostile count cannot make it
 * allocate more than the file can describe. Facts from ggml/src/gguf.cpp
 * (llama.cpp v0.5.0): keys and tensor names unique, no nested arrays,
 * general.alignment a u32 power of two, the data section padded to it, and
 * -- for its reader -- tensors packed in file order at PAD(size) steps. */
#include "io/gguf.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "io/gguf_internal.h"

/* ---- tables ---------------------------------------------------------------- */

/* From gguf-py's GGML_QUANT_SIZES (QK_K = 256), which matches ggml.c's
 * type_traits; unknown ids are zero rows. */
static const GgmlTypeInfo gg_types[GGML_TYPE_COUNT] = {
    [GGML_TYPE_F32] = {"F32", 1, 4, 1},          [GGML_TYPE_F16] = {"F16", 1, 2, 1},
    [GGML_TYPE_Q4_0] = {"Q4_0", 32, 18, 1},      [GGML_TYPE_Q4_1] = {"Q4_1", 32, 20, 0},
    [GGML_TYPE_Q5_0] = {"Q5_0", 32, 22, 0},      [GGML_TYPE_Q5_1] = {"Q5_1", 32, 24, 0},
    [GGML_TYPE_Q8_0] = {"Q8_0", 32, 34, 1},      [GGML_TYPE_Q8_1] = {"Q8_1", 32, 36, 0},
    [GGML_TYPE_Q2_K] = {"Q2_K", 256, 84, 0},     [GGML_TYPE_Q3_K] = {"Q3_K", 256, 110, 0},
    [GGML_TYPE_Q4_K] = {"Q4_K", 256, 144, 1},    [GGML_TYPE_Q5_K] = {"Q5_K", 256, 176, 0},
    [GGML_TYPE_Q6_K] = {"Q6_K", 256, 210, 1},    [GGML_TYPE_Q8_K] = {"Q8_K", 256, 292, 0},
    [GGML_TYPE_IQ2_XXS] = {"IQ2_XXS", 256, 66, 0}, [GGML_TYPE_IQ2_XS] = {"IQ2_XS", 256, 74, 0},
    [GGML_TYPE_IQ3_XXS] = {"IQ3_XXS", 256, 98, 0}, [GGML_TYPE_IQ1_S] = {"IQ1_S", 256, 50, 0},
    [GGML_TYPE_IQ4_NL] = {"IQ4_NL", 32, 18, 0},  [GGML_TYPE_IQ3_S] = {"IQ3_S", 256, 110, 0},
    [GGML_TYPE_IQ2_S] = {"IQ2_S", 256, 82, 0},   [GGML_TYPE_IQ4_XS] = {"IQ4_XS", 256, 136, 0},
    [GGML_TYPE_I8] = {"I8", 1, 1, 0},            [GGML_TYPE_I16] = {"I16", 1, 2, 0},
    [GGML_TYPE_I32] = {"I32", 1, 4, 0},          [GGML_TYPE_I64] = {"I64", 1, 8, 0},
    [GGML_TYPE_F64] = {"F64", 1, 8, 0},          [GGML_TYPE_IQ1_M] = {"IQ1_M", 256, 56, 0},
    [GGML_TYPE_BF16] = {"BF16", 1, 2, 1},        [GGML_TYPE_TQ1_0] = {"TQ1_0", 256, 54, 0},
    [GGML_TYPE_TQ2_0] = {"TQ2_0", 256, 66, 0},   [GGML_TYPE_MXFP4] = {"MXFP4", 32, 17, 0},
    [GGML_TYPE_NVFP4] = {"NVFP4", 64, 36, 0},    [GGML_TYPE_Q1_0] = {"Q1_0", 128, 18, 0},
    [GGML_TYPE_Q2_0] = {"Q2_0", 64, 18, 0},
};

const GgmlTypeInfo *gguf_type_info(uint32_t id) {
    return id < GGML_TYPE_COUNT && gg_types[id].name ? &gg_types[id] : NULL;
}

const char *gguf_type_name(uint32_t id) {
    const GgmlTypeInfo *ti = gguf_type_info(id);
    return ti ? ti->name : "?";
}

static const char *gg_value_names[GGUF_TYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};

const char *gguf_value_type_name(uint32_t t) {
    return t < GGUF_TYPE_COUNT ? gg_value_names[t] : "?";
}

/* Bytes of one scalar of type t; 0 for STRING, ARRAY and unknown types. */
size_t gg_scalar_size(uint32_t t) {
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
    case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

static int gg_is_unsigned(uint32_t t) {
    return t == GGUF_TYPE_UINT8 || t == GGUF_TYPE_UINT16 || t == GGUF_TYPE_UINT32 ||
           t == GGUF_TYPE_UINT64;
}

int gg_is_signed(uint32_t t) {
    return t == GGUF_TYPE_INT8 || t == GGUF_TYPE_INT16 || t == GGUF_TYPE_INT32 ||
           t == GGUF_TYPE_INT64;
}

static uint64_t gg_le(const unsigned char *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Decode one little-endian scalar of type t at p into v->num (sign-extended
 * for signed types). */
static void gg_decode_scalar(uint32_t t, const unsigned char *p, GgufValue *v) {
    size_t n = gg_scalar_size(t);
    uint64_t raw = gg_le(p, n);
    v->type = (GgufType)t;
    if (t == GGUF_TYPE_FLOAT32) {
        uint32_t b = (uint32_t)raw;
        memcpy(&v->num.f32, &b, 4);
    } else if (t == GGUF_TYPE_FLOAT64) {
        memcpy(&v->num.f64, &raw, 8);
    } else if (gg_is_signed(t)) {
        unsigned shift = (unsigned)(64 - 8 * n);
        /* sign-extend through the unsigned shift, then reinterpret */
        uint64_t ext = (raw << shift);
        int64_t s;
        memcpy(&s, &ext, 8);
        v->num.i = s >> shift;
    } else {
        v->num.u = raw;
    }
}

/* ---- the bounds-checked cursor ----------------------------------------------- */

typedef struct Rd {
    const unsigned char *buf;
    size_t size, pos;
    const char *f;
    Err *err;
} Rd;

/* n bytes must remain; ctx names the item ("key 'x'", "tensor #3"), label
 * the field. */
static int rd_need(Rd *r, size_t n, const char *ctx, const char *label) {
    if (n <= r->size - r->pos) return 0;
    return err_set(r->err,
                   "%s: %s: %s needs %zu bytes at offset %zu but the file ends %zu bytes later",
                   r->f, ctx, label, n, r->pos, r->size - r->pos);
}

static int rd_uint(Rd *r, size_t n, uint64_t *v, const char *ctx, const char *label) {
    if (rd_need(r, n, ctx, label) != 0) return -1;
    *v = gg_le(r->buf + r->pos, n);
    r->pos += n;
    return 0;
}

static int rd_u32(Rd *r, uint32_t *v, const char *ctx, const char *label) {
    uint64_t x;
    if (rd_uint(r, 4, &x, ctx, label) != 0) return -1;
    *v = (uint32_t)x;
    return 0;
}

/* A GGUF string: u64 length, then that many bytes (pointed to, not copied). */
static int rd_str(Rd *r, GgufStr *s, const char *ctx, const char *label) {
    uint64_t n;
    if (rd_uint(r, 8, &n, ctx, label) != 0) return -1;
    if (n > r->size - r->pos)
        return err_set(r->err,
                       "%s: %s: %s length %llu runs past the end of the file (offset %zu, %zu "
                       "bytes left)",
                       r->f, ctx, label, (unsigned long long)n, r->pos, r->size - r->pos);
    s->s = (const char *)r->buf + r->pos;
    s->n = n;
    r->pos += (size_t)n;
    return 0;
}

/* A key or tensor name: non-empty, no NUL byte; copied NUL-terminated. */
static int rd_name(Rd *r, char **out, const char *ctx, const char *label) {
    GgufStr s;
    *out = NULL;
    if (rd_str(r, &s, ctx, label) != 0) return -1;
    if (s.n == 0) return err_set(r->err, "%s: %s: %s is empty", r->f, ctx, label);
    if (memchr(s.s, 0, (size_t)s.n))
        return err_set(r->err, "%s: %s: %s '" GG_NAME "' contains a NUL byte", r->f, ctx, label,
                       s.s);
    *out = malloc((size_t)s.n + 1);
    if (!*out) return err_set(r->err, "%s: out of memory", r->f);
    memcpy(*out, s.s, (size_t)s.n);
    (*out)[s.n] = 0;
    return 0;
}

/* ---- parsing ------------------------------------------------------------------- */

/* The smallest encodings: a key/value is a length, a 1-byte key, a type and
 * a 1-byte value; a tensor info a length, a 1-byte name, n_dims, one dim, a
 * type and an offset. Counts above (bytes left / these) are lies. */
#define GG_MIN_KV_BYTES (8 + 1 + 4 + 1)
#define GG_MIN_TENSOR_BYTES (8 + 1 + 4 + 8 + 4 + 8)
#define GG_HEADER_BYTES 24

/* Read the value of key (type t, already read) into v. String arrays get an
 * index of GgufStr (owned by the file, freed by gguf_close). */
static int gg_parse_value(Rd *r, const char *key, uint32_t t, GgufValue *v) {
    char ctx[256];
    snprintf(ctx, sizeof ctx, "key '" GG_NAME "'", key);
    if (t >= GGUF_TYPE_COUNT)
        return err_set(r->err, "%s: %s has unknown value type %u", r->f, ctx, t);
    v->type = (GgufType)t;
    if (t == GGUF_TYPE_STRING) return rd_str(r, &v->str, ctx, "string");
    if (t != GGUF_TYPE_ARRAY) {
        size_t n = gg_scalar_size(t);
        if (rd_need(r, n, ctx, "value") != 0) return -1;
        gg_decode_scalar(t, r->buf + r->pos, v);
        r->pos += n;
        if (t == GGUF_TYPE_BOOL && v->num.u > 1)
            return err_set(r->err, "%s: %s: bool value %llu is neither 0 nor 1", r->f, ctx,
                           (unsigned long long)v->num.u);
        return 0;
    }

    uint32_t et;
    uint64_t n;
    if (rd_u32(r, &et, ctx, "array element type") != 0 ||
        rd_uint(r, 8, &n, ctx, "array length") != 0)
        return -1;
    if (et == GGUF_TYPE_ARRAY)
        return err_set(r->err, "%s: %s: nested arrays are not supported", r->f, ctx);
    if (et >= GGUF_TYPE_COUNT)
        return err_set(r->err, "%s: %s: array of unknown element type %u", r->f, ctx, et);
    v->arr_type = (GgufType)et;
    size_t left = r->size - r->pos;
    if (et == GGUF_TYPE_STRING) {
        /* every string takes at least its 8-byte length */
        if (n > left / 8)
            return err_set(r->err,
                           "%s: %s: array of %llu strings runs past the end of the file (%zu "
                           "bytes left)",
                           r->f, ctx, (unsigned long long)n, left);
        GgufStr *s = NULL;
        if (n) {
            s = calloc((size_t)n, sizeof *s);
            if (!s) return err_set(r->err, "%s: %s: out of memory for %llu strings", r->f, ctx,
                                   (unsigned long long)n);
        }
        v->arr_str = s; /* owned from here on, also on failure below */
        v->arr_n = n;
        for (uint64_t i = 0; i < n; i++)
            if (rd_str(r, &s[i], ctx, "array string") != 0) return -1;
        return 0;
    }
    size_t esz = gg_scalar_size(et), bytes;
    if (size_mul((size_t)n, esz, &bytes) != 0 || n > SIZE_MAX || bytes > left)
        return err_set(r->err,
                       "%s: %s: array of %llu %s runs past the end of the file (%zu bytes left)",
                       r->f, ctx, (unsigned long long)n, gguf_value_type_name(et), left);
    const unsigned char *p = r->buf + r->pos;
    if (et == GGUF_TYPE_BOOL)
        for (size_t i = 0; i < bytes; i++)
            if (p[i] > 1)
                return err_set(r->err, "%s: %s: bool element %zu is %u, neither 0 nor 1", r->f,
                               ctx, i, p[i]);
    v->arr = p;
    v->arr_n = n;
    r->pos += bytes;
    return 0;
}

int gg_cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int gg_cmp_tensor_name(const void *a, const void *b) {
    const GgufTensor *x = *(const GgufTensor *const *)a, *y = *(const GgufTensor *const *)b;
    return strcmp(x->name, y->name);
}

static int gg_cmp_tensor_offset(const void *a, const void *b) {
    const GgufTensor *x = *(const GgufTensor *const *)a, *y = *(const GgufTensor *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x->n_bytes < y->n_bytes ? -1 : x->n_bytes > y->n_bytes;
}

static int gg_parse_kvs(Rd *r, GgufFile *g, uint64_t n_kv) {
    int cap = 0;
    for (uint64_t i = 0; i < n_kv; i++) {
        if (g->n_kv == cap) {
            uint64_t nc = cap ? 2 * (uint64_t)cap : 16;
            if (nc > n_kv) nc = n_kv; /* <= INT_MAX, checked by the caller */
            GgufKV *nk = realloc(g->kvs, (size_t)nc * sizeof *nk);
            if (!nk) return err_set(r->err, "%s: out of memory", r->f);
            g->kvs = nk;
            cap = (int)nc;
        }
        GgufKV *kv = &g->kvs[g->n_kv];
        memset(kv, 0, sizeof *kv);
        char ctx[256];
        snprintf(ctx, sizeof ctx, "key #%llu", (unsigned long long)i);
        char *key;
        if (rd_name(r, &key, ctx, "name") != 0) return -1;
        kv->key = key;
        g->n_kv++; /* counted now so that gguf_close frees it */
        uint32_t t;
        snprintf(ctx, sizeof ctx, "key '" GG_NAME "'", key);
        if (rd_u32(r, &t, ctx, "value type") != 0) return -1;
        if (gg_parse_value(r, key, t, &kv->v) != 0) return -1;
    }
    /* unique keys */
    if (g->n_kv > 1) {
        const char **keys = malloc((size_t)g->n_kv * sizeof *keys);
        if (!keys) return err_set(r->err, "%s: out of memory", r->f);
        for (int i = 0; i < g->n_kv; i++) keys[i] = g->kvs[i].key;
        qsort(keys, (size_t)g->n_kv, sizeof *keys, gg_cmp_str_ptr);
        for (int i = 1; i < g->n_kv; i++) {
            if (strcmp(keys[i - 1], keys[i]) == 0) {
                err_set(r->err, "%s: key '" GG_NAME "' appears twice", r->f, keys[i]);
                free(keys);
                return -1;
            }
        }
        free(keys);
    }
    return 0;
}

/* Name, n_dims, dims, type and offset of the next tensor info into t (whose
 * name is owned by the file as soon as it is set). */
static int gg_parse_tensor_info(Rd *r, GgufTensor *t, uint64_t idx) {
    char ctx[256];
    snprintf(ctx, sizeof ctx, "tensor #%llu", (unsigned long long)idx);
    char *name;
    if (rd_name(r, &name, ctx, "name") != 0) return -1;
    t->name = name;
    snprintf(ctx, sizeof ctx, "tensor '" GG_NAME "'", name);
    uint32_t nd;
    if (rd_u32(r, &nd, ctx, "n_dims") != 0) return -1;
    if (nd < 1 || nd > GGUF_MAX_DIMS)
        return err_set(r->err, "%s: %s has n_dims = %u; whale reads 1..%d", r->f, ctx, nd,
                       GGUF_MAX_DIMS);
    t->n_dims = (int)nd;
    size_t numel = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) {
        uint64_t ne = 1;
        if (d < t->n_dims && rd_uint(r, 8, &ne, ctx, "dimension") != 0) return -1;
        if (ne == 0) return err_set(r->err, "%s: %s: dimension %d is 0", r->f, ctx, d);
        if (ne > (uint64_t)INT64_MAX || size_mul(numel, (size_t)ne, &numel) != 0 ||
            numel > (size_t)INT64_MAX)
            return err_set(r->err, "%s: %s: element count overflows at dimension %d (%llu)", r->f,
                           ctx, d, (unsigned long long)ne);
        t->ne[d] = (int64_t)ne;
    }
    uint32_t type;
    if (rd_u32(r, &type, ctx, "type") != 0) return -1;
    const GgmlTypeInfo *ti = gguf_type_info(type);
    if (!ti) return err_set(r->err, "%s: %s has unknown ggml type id %u", r->f, ctx, type);
    t->type = (GgmlType)type;
    if (t->ne[0] % ti->block_size != 0)
        return err_set(r->err,
                       "%s: %s: a row of %lld elements is not a whole number of %s blocks of %d",
                       r->f, ctx, (long long)t->ne[0], ti->name, ti->block_size);
    if (size_mul(numel / (size_t)ti->block_size, (size_t)ti->type_size, &t->n_bytes) != 0)
        return err_set(r->err, "%s: %s: byte size overflows", r->f, ctx);
    uint64_t off;
    if (rd_uint(r, 8, &off, ctx, "offset") != 0) return -1;
    t->offset = off;
    return 0;
}

/* general.alignment, when present: an integer power of two that fits u32. */
static int gg_alignment(GgufFile *g, Err *err) {
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const GgufKV *kv = gguf_find_kv(g, GGUF_KEY_ALIGNMENT);
    if (!kv) return 0;
    uint32_t a;
    if (gguf_value_u32(&kv->v, kv->key, &a, err) != 0) return err_prefix(err, "%s", g->path);
    if (a == 0 || (a & (a - 1)) != 0)
        return err_set(err, "%s: %s = %u is not a power of two", g->path, GGUF_KEY_ALIGNMENT, a);
    g->alignment = a;
    return 0;
}

static int gg_parse_tensors(Rd *r, GgufFile *g, uint64_t n_tensors) {
    int cap = 0;
    for (uint64_t i = 0; i < n_tensors; i++) {
        if (g->n_tensors == cap) {
            uint64_t nc = cap ? 2 * (uint64_t)cap : 16;
            if (nc > n_tensors) nc = n_tensors; /* <= INT_MAX, checked by the caller */
            GgufTensor *nt = realloc(g->tensors, (size_t)nc * sizeof *nt);
            if (!nt) return err_set(r->err, "%s: out of memory", r->f);
            g->tensors = nt;
            cap = (int)nc;
        }
        GgufTensor *t = &g->tensors[g->n_tensors];
        memset(t, 0, sizeof *t);
        g->n_tensors++; /* counted now so that gguf_close frees the name */
        if (gg_parse_tensor_info(r, t, i) != 0) return -1;
    }
    return 0;
}

/* Place the data section and check every tensor against it: aligned offsets,
 * inside the file, unique names, no overlap. Builds g->by_name. */
static int gg_place_tensors(Rd *r, GgufFile *g) {
    size_t start;
    const size_t a = g->alignment;
    if (size_add(r->pos, a - 1, &start) != 0) start = SIZE_MAX;
    else start = start / a * a;
    if (start > r->size) {
        if (g->n_tensors > 0)
            return err_set(r->err,
                           "%s: the data section would start at offset %zu (tensor infos end at "
                           "%zu, aligned to %zu) past the end of the %zu-byte file",
                           r->f, start, r->pos, a, r->size);
        start = r->size;
    }
    g->data_offset = start;
    size_t data_size = r->size - start;
    for (int i = 0; i < g->n_tensors; i++) {
        GgufTensor *t = &g->tensors[i];
        if (t->offset % a != 0)
            return err_set(r->err, "%s: tensor '" GG_NAME "': offset %llu is not a multiple of "
                           "the alignment %zu", r->f, t->name, (unsigned long long)t->offset, a);
        if (t->offset > data_size || t->n_bytes > data_size - (size_t)t->offset)
            return err_set(r->err,
                           "%s: tensor '" GG_NAME "': %zu bytes at offset %llu run past the end "
                           "of the %zu-byte data section",
                           r->f, t->name, t->n_bytes, (unsigned long long)t->offset, data_size);
        t->data = r->buf + start + (size_t)t->offset;
    }
    if (g->n_tensors == 0) return 0;

    const GgufTensor **ord = malloc((size_t)g->n_tensors * sizeof *ord);
    g->by_name = malloc((size_t)g->n_tensors * sizeof *g->by_name);
    if (!ord || !g->by_name) {
        free(ord);
        return err_set(r->err, "%s: out of memory", r->f);
    }
    for (int i = 0; i < g->n_tensors; i++) ord[i] = &g->tensors[i];
    qsort(ord, (size_t)g->n_tensors, sizeof *ord, gg_cmp_tensor_name);
    for (int i = 0; i < g->n_tensors; i++) {
        g->by_name[i] = (int)(ord[i] - g->tensors);
        if (i > 0 && strcmp(ord[i - 1]->name, ord[i]->name) == 0) {
            err_set(r->err, "%s: tensor '" GG_NAME "' appears twice", r->f, ord[i]->name);
            free(ord);
            return -1;
        }
    }
    /* In offset order each tensor must start at or after the end of the one
     * before (sizes are >= 1 block, so no tensor is empty). */
    qsort(ord, (size_t)g->n_tensors, sizeof *ord, gg_cmp_tensor_offset);
    for (int i = 1; i < g->n_tensors; i++) {
        const GgufTensor *p = ord[i - 1], *t = ord[i];
        if (t->offset < p->offset + p->n_bytes) {
            err_set(r->err, "%s: tensors '" GG_NAME "' and '" GG_NAME "' overlap in the data "
                    "section", r->f, p->name, t->name);
            free(ord);
            return -1;
        }
    }
    free(ord);
    return 0;
}

int gguf_parse(const unsigned char *buf, size_t size, const char *file, GgufFile *out, Err *err) {
    memset(out, 0, sizeof *out);
    out->path = strdup(file ? file : "<buffer>");
    if (!out->path) return err_set(err, "%s: out of memory", file ? file : "<buffer>");
    Rd r = {buf, size, 0, out->path, err};
    const char *f = out->path;

    if (size < GG_HEADER_BYTES) {
        err_set(err, "%s: file is %zu bytes, shorter than the %d-byte GGUF header", f, size,
                GG_HEADER_BYTES);
        goto fail;
    }
    if (memcmp(buf, "GGUF", 4) != 0) {
        err_set(err, "%s: not a GGUF file (magic %02x %02x %02x %02x, expected \"GGUF\")", f,
                buf[0], buf[1], buf[2], buf[3]);
        goto fail;
    }
    r.pos = 4;
    uint32_t version;
    uint64_t n_tensors, n_kv;
    rd_u32(&r, &version, "header", "version");
    rd_uint(&r, 8, &n_tensors, "header", "tensor_count");
    rd_uint(&r, 8, &n_kv, "header", "kv_count");
    if (version != 2 && version != 3) {
        if (version != 0 && (version & 0xffff) == 0)
            err_set(err, "%s: big-endian GGUF (version bytes %08x) is not supported", f, version);
        else if (version == 1)
            err_set(err, "%s: GGUF version 1 is not supported (whale reads versions 2 and 3)", f);
        else
            err_set(err, "%s: unsupported GGUF version %u (whale reads versions 2 and 3)", f,
                    version);
        goto fail;
    }
    out->version = version;
    size_t left = size - GG_HEADER_BYTES;
    if (n_kv > left / GG_MIN_KV_BYTES || n_kv > INT_MAX) {
        err_set(err, "%s: kv_count %llu is absurd: the %zu bytes after the header hold at most "
                "%zu key/values", f, (unsigned long long)n_kv, left, left / GG_MIN_KV_BYTES);
        goto fail;
    }
    if (n_tensors > left / GG_MIN_TENSOR_BYTES || n_tensors > INT_MAX) {
        err_set(err, "%s: tensor_count %llu is absurd: the %zu bytes after the header hold at "
                "most %zu tensor infos", f, (unsigned long long)n_tensors, left,
                left / GG_MIN_TENSOR_BYTES);
        goto fail;
    }
    if (gg_parse_kvs(&r, out, n_kv) != 0) goto fail;
    if (gg_alignment(out, err) != 0) goto fail;
    if (gg_parse_tensors(&r, out, n_tensors) != 0) goto fail;
    if (gg_place_tensors(&r, out) != 0) goto fail;
    return 0;
fail:
    gguf_close(out);
    return -1;
}

int gguf_open(GgufFile *g, const char *path, Err *err) {
    MappedFile mf;
    memset(g, 0, sizeof *g);
    if (mfile_open(&mf, path, err) != 0) return -1;
    if (gguf_parse(mf.data, mf.size, mf.path, g, err) != 0) {
        mfile_close(&mf);
        return -1;
    }
    g->mf = mf;
    return 0;
}

void gguf_close(GgufFile *g) {
    for (int i = 0; i < g->n_kv; i++) {
        free((void *)g->kvs[i].key);
        if (g->kvs[i].v.type == GGUF_TYPE_ARRAY) free((void *)g->kvs[i].v.arr_str);
    }
    free(g->kvs);
    for (int i = 0; i < g->n_tensors; i++) free((void *)g->tensors[i].name);
    free(g->tensors);
    free(g->by_name);
    free(g->path);
    mfile_close(&g->mf);
    memset(g, 0, sizeof *g);
}

const GgufKV *gguf_find_kv(const GgufFile *g, const char *key) {
    for (int i = 0; i < g->n_kv; i++)
        if (strcmp(g->kvs[i].key, key) == 0) return &g->kvs[i];
    return NULL;
}

const GgufTensor *gguf_find_tensor(const GgufFile *g, const char *name) {
    size_t lo = 0, hi = (size_t)g->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const GgufTensor *t = &g->tensors[g->by_name[mid]];
        int c = strcmp(t->name, name);
        if (c == 0) return t;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

int64_t gguf_tensor_numel(const GgufTensor *t) {
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

int gguf_check_tensor_type(const GgufFile *g, const GgufTensor *t, Err *err) {
    const GgmlTypeInfo *ti = gguf_type_info(t->type);
    if (ti && ti->whale_reads) return 0;
    return err_set(err,
                   "%s: tensor '" GG_NAME "' has type %s, which whale does not read (it reads "
                   "F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K)",
                   g->path, t->name, gguf_type_name(t->type));
}

int gguf_check_types(const GgufFile *g, Err *err) {
    for (int i = 0; i < g->n_tensors; i++)
        if (gguf_check_tensor_type(g, &g->tensors[i], err) != 0) return -1;
    return 0;
}

/* ---- typed access ------------------------------------------------------------ */

static int gg_type_err(const GgufValue *v, const char *what, const char *want, Err *err) {
    return err_set(err, "metadata key '" GG_NAME "' has type %s, expected %s", what,
                   gguf_value_type_name(v->type), want);
}

/* Any integer value as (is_negative, magnitude-carrying) pair: u for
 * non-negative values, i for negative ones. */
static int gg_int_of(const GgufValue *v, const char *what, const char *want, int *neg,
                     uint64_t *u, int64_t *i, Err *err) {
    if (gg_is_unsigned(v->type)) {
        *neg = 0, *u = v->num.u, *i = 0;
        return 0;
    }
    if (gg_is_signed(v->type)) {
        *neg = v->num.i < 0, *i = v->num.i, *u = v->num.i < 0 ? 0 : (uint64_t)v->num.i;
        return 0;
    }
    return gg_type_err(v, what, want, err);
}

static int gg_range_err(const char *what, int neg, uint64_t u, int64_t i, const char *want,
                        Err *err) {
    if (neg)
        return err_set(err, "metadata key '" GG_NAME "' = %lld does not fit in %s", what,
                       (long long)i, want);
    return err_set(err, "metadata key '" GG_NAME "' = %llu does not fit in %s", what,
                   (unsigned long long)u, want);
}

int gguf_value_u64(const GgufValue *v, const char *what, uint64_t *out, Err *err) {
    int neg;
    uint64_t u;
    int64_t i;
    if (gg_int_of(v, what, "u64", &neg, &u, &i, err) != 0) return -1;
    if (neg) return gg_range_err(what, neg, u, i, "u64", err);
    *out = u;
    return 0;
}

int gguf_value_u32(const GgufValue *v, const char *what, uint32_t *out, Err *err) {
    int neg;
    uint64_t u;
    int64_t i;
    if (gg_int_of(v, what, "u32", &neg, &u, &i, err) != 0) return -1;
    if (neg || u > UINT32_MAX) return gg_range_err(what, neg, u, i, "u32", err);
    *out = (uint32_t)u;
    return 0;
}

int gguf_value_i64(const GgufValue *v, const char *what, int64_t *out, Err *err) {
    int neg;
    uint64_t u;
    int64_t i;
    if (gg_int_of(v, what, "i64", &neg, &u, &i, err) != 0) return -1;
    if (!neg && u > (uint64_t)INT64_MAX) return gg_range_err(what, neg, u, i, "i64", err);
    *out = neg ? i : (int64_t)u;
    return 0;
}

int gguf_value_i32(const GgufValue *v, const char *what, int32_t *out, Err *err) {
    int neg;
    uint64_t u;
    int64_t i;
    if (gg_int_of(v, what, "i32", &neg, &u, &i, err) != 0) return -1;
    if ((neg && i < INT32_MIN) || (!neg && u > INT32_MAX))
        return gg_range_err(what, neg, u, i, "i32", err);
    *out = neg ? (int32_t)i : (int32_t)u;
    return 0;
}

int gguf_value_f64(const GgufValue *v, const char *what, double *out, Err *err) {
    if (v->type == GGUF_TYPE_FLOAT32) *out = v->num.f32;
    else if (v->type == GGUF_TYPE_FLOAT64) *out = v->num.f64;
    else return gg_type_err(v, what, "f32 or f64", err);
    return 0;
}

int gguf_value_f32(const GgufValue *v, const char *what, float *out, Err *err) {
    if (v->type == GGUF_TYPE_FLOAT32) {
        *out = v->num.f32;
        return 0;
    }
    if (v->type != GGUF_TYPE_FLOAT64) return gg_type_err(v, what, "f32 or f64", err);
    double d = v->num.f64;
    float f = (float)d;
    /* NaN converts (it is NaN either way); anything else must be exact */
    if (d == d && (double)f != d)
        return err_set(err, "metadata key '" GG_NAME "' = %.17g is not exactly a float", what, d);
    *out = f;
    return 0;
}

int gguf_value_bool(const GgufValue *v, const char *what, int *out, Err *err) {
    if (v->type != GGUF_TYPE_BOOL) return gg_type_err(v, what, "bool", err);
    *out = v->num.u != 0;
    return 0;
}

void gguf_value_at(const GgufValue *arr, uint64_t i, GgufValue *elem) {
    memset(elem, 0, sizeof *elem);
    if (arr->arr_type == GGUF_TYPE_STRING) {
        elem->type = GGUF_TYPE_STRING;
        elem->str = arr->arr_str[i];
        return;
    }
    size_t n = gg_scalar_size(arr->arr_type);
    gg_decode_scalar(arr->arr_type, (const unsigned char *)arr->arr + (size_t)i * n, elem);
}

/* Find key in g or fail naming the file. */
static const GgufKV *gg_need(const GgufFile *g, const char *key, Err *err) {
    const GgufKV *kv = gguf_find_kv(g, key);
    if (!kv) err_set(err, "%s: metadata key '" GG_NAME "' is missing", g->path, key);
    return kv;
}

#define GG_GETTER(fn, vfn, T)                                                                  \
    int fn(const GgufFile *g, const char *key, T *out, Err *err) {                             \
        const GgufKV *kv = gg_need(g, key, err);                                               \
        if (!kv) return -1;                                                                    \
        if (vfn(&kv->v, kv->key, out, err) != 0) return err_prefix(err, "%s", g->path);        \
        return 0;                                                                              \
    }
GG_GETTER(gguf_get_u32, gguf_value_u32, uint32_t)
GG_GETTER(gguf_get_i32, gguf_value_i32, int32_t)
GG_GETTER(gguf_get_u64, gguf_value_u64, uint64_t)
GG_GETTER(gguf_get_i64, gguf_value_i64, int64_t)
GG_GETTER(gguf_get_f32, gguf_value_f32, float)
GG_GETTER(gguf_get_f64, gguf_value_f64, double)
GG_GETTER(gguf_get_bool, gguf_value_bool, int)
#undef GG_GETTER

int gguf_get_str(const GgufFile *g, const char *key, char *buf, size_t n, Err *err) {
    const GgufKV *kv = gg_need(g, key, err);
    if (!kv) return -1;
    if (kv->v.type != GGUF_TYPE_STRING) {
        gg_type_err(&kv->v, key, "string", err);
        return err_prefix(err, "%s", g->path);
    }
    GgufStr s = kv->v.str;
    if (s.n >= n || memchr(s.s, 0, (size_t)s.n))
        return err_set(err, "%s: metadata key '" GG_NAME "': string of %llu bytes is too long "
                       "(limit %zu) or holds a NUL byte", g->path, key, (unsigned long long)s.n,
                       n ? n - 1 : 0);
    memcpy(buf, s.s, (size_t)s.n);
    buf[s.n] = 0;
    return 0;
}

int gguf_get_arr(const GgufFile *g, const char *key, GgufType elem_type, const GgufValue **out,
                 Err *err) {
    const GgufKV *kv = gg_need(g, key, err);
    if (!kv) return -1;
    if (kv->v.type != GGUF_TYPE_ARRAY) {
        gg_type_err(&kv->v, key, "array", err);
        return err_prefix(err, "%s", g->path);
    }
    if (elem_type != GGUF_TYPE_COUNT && kv->v.arr_type != elem_type)
        return err_set(err, "%s: metadata key '" GG_NAME "' is an array of %s, expected an array "
                       "of %s", g->path, key, gguf_value_type_name(kv->v.arr_type),
                       gguf_value_type_name(elem_type));
    *out = &kv->v;
    return 0;
}

int gguf_str_eq(GgufStr s, const char *c) {
    size_t n = strlen(c);
    return s.n == n && memcmp(s.s, c, n) == 0;
}
