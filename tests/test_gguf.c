/* SPDX-License-Identifier: MIT */
/* io/gguf and io/gguf_names: the ggml type table; write -> read round trips,
 * bit-exact for every metadata type and for F32/F16/BF16 (and block-typed)
 * payloads; typed getters; one test per kind of hostile input (each a byte
 * image that the fuzz target would also see, checked to fail with a message
 * naming the image and the key or tensor); every prefix of a valid file
 * fails; metadata <-> ModelConfig and HF <-> GGUF tensors for every test
 * model, data bit-exact through the converter's transforms (llama q/k
 * permutation, stacked experts, kv_b split); the transforms on small
 * matrices; and an independent parser (@huggingface/gguf from npm) reading a
 * file the writer made. Files go to a mkdtemp directory under /tmp. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "helpers.h"
#include "io/config.h"
#include "io/gguf.h"
#include "io/gguf_names.h"
#include "model/weights.h"

static char g_dir[64];

static void setup(void) { cr_assert_eq(h_tmpdir(g_dir, sizeof g_dir, "gguf"), 0, "mkdtemp"); }
static void teardown(void) { h_rmtree(g_dir); }

TestSuite(gguf, .init = setup, .fini = teardown);

static const char *data_dir(void) {
    const char *d = getenv("WHALE_DATA");
    return d && d[0] ? d : "tests/data";
}

static uint32_t rng_next(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* ---- hand-made images ----------------------------------------------------------- */

typedef struct Img {
    unsigned char *b;
    size_t n, cap;
} Img;

static void img_put(Img *m, const void *p, size_t n) {
    if (m->n + n > m->cap) {
        m->cap = (m->n + n) * 2 + 64;
        m->b = realloc(m->b, m->cap);
        cr_assert_not_null(m->b);
    }
    if (n) memcpy(m->b + m->n, p, n);
    m->n += n;
}
static void img_le(Img *m, uint64_t v, int n) {
    unsigned char b[8];
    for (int i = 0; i < n; i++) b[i] = (unsigned char)(v >> (8 * i));
    img_put(m, b, (size_t)n);
}
static void img_u32(Img *m, uint32_t v) { img_le(m, v, 4); }
static void img_u64(Img *m, uint64_t v) { img_le(m, v, 8); }
static void img_str(Img *m, const char *s) {
    img_u64(m, strlen(s));
    img_put(m, s, strlen(s));
}
static void img_pad(Img *m, size_t a) {
    while (m->n % a) img_put(m, "", 1);
}
static void img_zeros(Img *m, size_t n) {
    for (size_t i = 0; i < n; i++) img_put(m, "", 1);
}
static void img_header(Img *m, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    img_put(m, "GGUF", 4);
    img_u32(m, version);
    img_u64(m, n_tensors);
    img_u64(m, n_kv);
}
static void img_kv_u32(Img *m, const char *key, uint32_t v) {
    img_str(m, key);
    img_u32(m, GGUF_TYPE_UINT32);
    img_u32(m, v);
}
static void img_kv_str(Img *m, const char *key, const char *v) {
    img_str(m, key);
    img_u32(m, GGUF_TYPE_STRING);
    img_str(m, v);
}
/* A tensor info with n_dims dims from ne. */
static void img_tensor(Img *m, const char *name, uint32_t n_dims, const uint64_t *ne,
                       uint32_t type, uint64_t off) {
    img_str(m, name);
    img_u32(m, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) img_u64(m, ne[d]);
    img_u32(m, type);
    img_u64(m, off);
}

/* Parse a copy of the image in an exact-size buffer (so that ASan sees any
 * over-read). Returns the rc; on success the caller gets g (and *keep the
 * buffer, to free after gguf_close), else g must be zeroed and the message
 * must start with "img: ". */
static int parse_img(const unsigned char *b, size_t n, GgufFile *g, Err *e,
                     unsigned char **keep) {
    unsigned char *buf = malloc(n ? n : 1);
    cr_assert_not_null(buf);
    if (n) memcpy(buf, b, n);
    e->msg[0] = 0;
    int rc = gguf_parse(buf, n, "img", g, e);
    if (rc != 0) {
        cr_assert_eq(rc, -1, "gguf_parse returned %d", rc);
        cr_assert(g->kvs == NULL && g->tensors == NULL && g->n_kv == 0 && g->n_tensors == 0 &&
                      g->path == NULL,
                  "a failed parse left state behind");
        cr_assert(strncmp(e->msg, "img: ", 5) == 0, "message should start with the file: %s",
                  e->msg);
        free(buf);
        if (keep) *keep = NULL;
        return rc;
    }
    if (keep) *keep = buf;
    else {
        gguf_close(g);
        free(buf);
    }
    return rc;
}

static void expect_fail(Img *m, const char *const *needles) {
    GgufFile g;
    Err e;
    int rc = parse_img(m->b, m->n, &g, &e, NULL);
    cr_assert_eq(rc, -1, "expected gguf_parse to fail");
    for (const char *const *p = needles; *p; p++)
        cr_assert(strstr(e.msg, *p), "message: expected \"%s\" in \"%s\"", *p, e.msg);
    free(m->b);
}
#define EXPECT_FAIL(img, ...) expect_fail(img, (const char *const[]){__VA_ARGS__, NULL})

/* A valid image: general.architecture, then tensors "a" F32[4] at 0 and
 * "b" F32[8] at 32, data section at the next multiple of 32. */
static Img valid_img(void) {
    Img m = {0};
    uint64_t a[] = {4}, b[] = {8};
    img_header(&m, 3, 2, 1);
    img_kv_str(&m, "general.architecture", "llama");
    img_tensor(&m, "a", 1, a, GGML_TYPE_F32, 0);
    img_tensor(&m, "b", 1, b, GGML_TYPE_F32, 32);
    img_pad(&m, 32);
    img_zeros(&m, 64);
    return m;
}

/* ---- the type table --------------------------------------------------------------- */

Test(gguf, type_table) {
    /* ids, block sizes and bytes per block: ggml.h and gguf-py's GGML_QUANT_SIZES */
    struct { uint32_t id; const char *name; int block, size, reads; } want[] = {
        {0, "F32", 1, 4, 1},       {1, "F16", 1, 2, 1},       {2, "Q4_0", 32, 18, 1},
        {3, "Q4_1", 32, 20, 0},    {6, "Q5_0", 32, 22, 0},    {7, "Q5_1", 32, 24, 0},
        {8, "Q8_0", 32, 34, 1},    {9, "Q8_1", 32, 36, 0},    {10, "Q2_K", 256, 84, 0},
        {11, "Q3_K", 256, 110, 0}, {12, "Q4_K", 256, 144, 1}, {13, "Q5_K", 256, 176, 0},
        {14, "Q6_K", 256, 210, 1}, {15, "Q8_K", 256, 292, 0}, {30, "BF16", 1, 2, 1},
        {28, "F64", 1, 8, 0},      {26, "I32", 1, 4, 0},      {23, "IQ4_XS", 256, 136, 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const GgmlTypeInfo *ti = gguf_type_info(want[i].id);
        cr_assert_not_null(ti, "type %u should be known", want[i].id);
        cr_assert_str_eq(ti->name, want[i].name, "type %u name", want[i].id);
        cr_assert(ti->block_size == want[i].block && ti->type_size == want[i].size,
                  "%s: expected block %d size %d, got %d %d", want[i].name, want[i].block,
                  want[i].size, ti->block_size, ti->type_size);
        cr_assert_eq(ti->whale_reads, want[i].reads, "%s whale_reads", want[i].name);
    }
    uint32_t unknown[] = {4, 5, 31, 32, 33, 36, 37, 38, 43, 1000, UINT32_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        cr_assert_null(gguf_type_info(unknown[i]), "type %u should be unknown", unknown[i]);
        cr_assert_str_eq(gguf_type_name(unknown[i]), "?");
    }
    int n_reads = 0;
    for (uint32_t id = 0; id < GGML_TYPE_COUNT; id++) {
        const GgmlTypeInfo *ti = gguf_type_info(id);
        n_reads += ti && ti->whale_reads;
    }
    cr_assert_eq(n_reads, 7, "whale reads exactly 7 types, table says %d", n_reads);
    cr_assert_str_eq(gguf_value_type_name(GGUF_TYPE_UINT32), "u32");
    cr_assert_str_eq(gguf_value_type_name(99), "?");
}

/* ---- write -> read ------------------------------------------------------------------- */

/* Every metadata type, extreme values, embedded NULs, empty strings and
 * arrays; the values are compared bit for bit. */
static const uint8_t k_u8[] = {0, 1, 255};
static const int8_t k_i8[] = {-128, 0, 127};
static const uint16_t k_u16[] = {0, 65535};
static const int16_t k_i16[] = {-32768, 32767, -1};
static const uint32_t k_u32[] = {0, 1, UINT32_MAX};
static const int32_t k_i32[] = {INT32_MIN, -1, INT32_MAX};
static const uint64_t k_u64[] = {0, UINT64_MAX, 1ull << 63};
static const int64_t k_i64[] = {INT64_MIN, -1, INT64_MAX};
static const uint8_t k_bool[] = {0, 1, 1, 0};
static const double k_f64[] = {0.1, -1e300, 5e-324};
static const GgufStr k_strs[] = {{"", 0}, {"a", 1}, {"h\xc3\xa9llo", 6}, {"x\0y", 3}};

/* f32 values incl. a NaN with a payload, -0, infinity and a denormal. */
static void special_f32(float out[5]) {
    uint32_t bits[5] = {0x7fc00123u, 0x80000000u, 0x7f800000u, 0x00000001u, 0x3f9d70a4u};
    for (int i = 0; i < 5; i++) memcpy(&out[i], &bits[i], 4);
}

static int all_types_kvs(GgufKV *kv, const float *f32s, int with_specials) {
    int n = 0;
    kv[n++] = gguf_kv_str("general.architecture", "llama");
    kv[n++] = gguf_kv_uint("t.u8", GGUF_TYPE_UINT8, 255);
    kv[n++] = gguf_kv_int("t.i8", GGUF_TYPE_INT8, -128);
    kv[n++] = gguf_kv_uint("t.u16", GGUF_TYPE_UINT16, 65535);
    kv[n++] = gguf_kv_int("t.i16", GGUF_TYPE_INT16, -32768);
    kv[n++] = gguf_kv_u32("t.u32", UINT32_MAX);
    kv[n++] = gguf_kv_i32("t.i32", INT32_MIN);
    kv[n++] = gguf_kv_uint("t.u64", GGUF_TYPE_UINT64, UINT64_MAX);
    kv[n++] = gguf_kv_int("t.i64", GGUF_TYPE_INT64, INT64_MIN);
    kv[n++] = gguf_kv_f32("t.f32", with_specials ? f32s[0] : 1.23f);
    kv[n++] = gguf_kv_f32("t.f32b", -2.5e-7f);
    kv[n++] = gguf_kv_f64("t.f64", with_specials ? -0.0 : 1e-300);
    kv[n++] = gguf_kv_bool("t.true", 1);
    kv[n++] = gguf_kv_bool("t.false", 0);
    kv[n++] = gguf_kv_str("t.str", "DeepSeek \xe9\xb2\xb8 whale");
    kv[n++] = gguf_kv_str("t.empty", "");
    if (with_specials) {
        GgufKV nul = gguf_kv_str("t.nul", "");
        nul.v.str.s = "a\0b";
        nul.v.str.n = 3;
        kv[n++] = nul;
    }
    kv[n++] = gguf_kv_arr("a.u8", GGUF_TYPE_UINT8, 3, k_u8);
    kv[n++] = gguf_kv_arr("a.i8", GGUF_TYPE_INT8, 3, k_i8);
    kv[n++] = gguf_kv_arr("a.u16", GGUF_TYPE_UINT16, 2, k_u16);
    kv[n++] = gguf_kv_arr("a.i16", GGUF_TYPE_INT16, 3, k_i16);
    kv[n++] = gguf_kv_arr("a.u32", GGUF_TYPE_UINT32, 3, k_u32);
    kv[n++] = gguf_kv_arr("a.i32", GGUF_TYPE_INT32, 3, k_i32);
    kv[n++] = gguf_kv_arr("a.u64", GGUF_TYPE_UINT64, 3, k_u64);
    kv[n++] = gguf_kv_arr("a.i64", GGUF_TYPE_INT64, 3, k_i64);
    kv[n++] = gguf_kv_arr("a.f32", GGUF_TYPE_FLOAT32, with_specials ? 5 : 2, f32s + (with_specials ? 0 : 3));
    kv[n++] = gguf_kv_arr("a.f64", GGUF_TYPE_FLOAT64, 3, k_f64);
    kv[n++] = gguf_kv_arr("a.bool", GGUF_TYPE_BOOL, 4, k_bool);
    kv[n++] = gguf_kv_arr_str("a.str", with_specials ? 4 : 3, k_strs);
    kv[n++] = gguf_kv_arr("a.empty", GGUF_TYPE_UINT32, 0, NULL);
    kv[n++] = gguf_kv_arr_str("a.nostr", 0, NULL);
    return n;
}

static size_t scalar_bytes(GgufType t) {
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
    default: return 8;
    }
}

/* got must equal want bit for bit. */
static void expect_same_value(const char *key, const GgufValue *want, const GgufValue *got) {
    cr_assert_eq(got->type, want->type, "%s: type expected %d, got %d", key, want->type,
                 got->type);
    switch (want->type) {
    case GGUF_TYPE_STRING:
        cr_assert(got->str.n == want->str.n && memcmp(got->str.s, want->str.s, want->str.n) == 0,
                  "%s: string differs", key);
        return;
    case GGUF_TYPE_FLOAT32:
        cr_assert(memcmp(&got->num.f32, &want->num.f32, 4) == 0, "%s: f32 bits differ", key);
        return;
    case GGUF_TYPE_FLOAT64:
        cr_assert(memcmp(&got->num.f64, &want->num.f64, 8) == 0, "%s: f64 bits differ", key);
        return;
    case GGUF_TYPE_ARRAY:
        cr_assert(got->arr_type == want->arr_type && got->arr_n == want->arr_n,
                  "%s: array of %llu %s expected, got %llu %s", key,
                  (unsigned long long)want->arr_n, gguf_value_type_name(want->arr_type),
                  (unsigned long long)got->arr_n, gguf_value_type_name(got->arr_type));
        if (want->arr_type == GGUF_TYPE_STRING) {
            for (uint64_t i = 0; i < want->arr_n; i++)
                cr_assert(got->arr_str[i].n == want->arr_str[i].n &&
                              memcmp(got->arr_str[i].s, want->arr_str[i].s,
                                     want->arr_str[i].n) == 0,
                          "%s[%llu]: string differs", key, (unsigned long long)i);
        } else if (want->arr_n) {
            cr_assert(memcmp(got->arr, want->arr, want->arr_n * scalar_bytes(want->arr_type)) == 0,
                      "%s: array bytes differ", key);
        }
        return;
    default:
        if (want->type == GGUF_TYPE_INT8 || want->type == GGUF_TYPE_INT16 ||
            want->type == GGUF_TYPE_INT32 || want->type == GGUF_TYPE_INT64)
            cr_assert_eq(got->num.i, want->num.i, "%s: expected %lld, got %lld", key,
                         (long long)want->num.i, (long long)got->num.i);
        else
            cr_assert_eq(got->num.u, want->num.u, "%s: expected %llu, got %llu", key,
                         (unsigned long long)want->num.u, (unsigned long long)got->num.u);
    }
}

/* Tensors of several types and ranks; sizes chosen so that padding between
 * them is needed. Buffers are static for the test's lifetime. */
static int sample_tensors(GgufWriteTensor *t, uint32_t seed) {
    static float f32[15], f32b[12];
    static uint16_t f16[7], bf16[12];
    static unsigned char q8[2 * 2 * 34], q4k[144];
    for (int i = 0; i < 15; i++) f32[i] = (float)i * 0.37f - 2.0f;
    for (int i = 0; i < 12; i++) f32b[i] = (float)(rng_next(&seed) % 1000) / 7.0f;
    for (int i = 0; i < 7; i++) f16[i] = f32_to_f16((float)i - 3.1f);
    for (int i = 0; i < 12; i++) bf16[i] = f32_to_bf16((float)i * -1.5f);
    for (size_t i = 0; i < sizeof q8; i++) q8[i] = (unsigned char)rng_next(&seed);
    for (size_t i = 0; i < sizeof q4k; i++) q4k[i] = (unsigned char)rng_next(&seed);
    int n = 0;
    t[n++] = (GgufWriteTensor){"w.f32", GGML_TYPE_F32, 2, {5, 3}, f32};
    t[n++] = (GgufWriteTensor){"w.f16", GGML_TYPE_F16, 1, {7}, f16};
    t[n++] = (GgufWriteTensor){"w.bf16", GGML_TYPE_BF16, 3, {3, 2, 2}, bf16};
    t[n++] = (GgufWriteTensor){"w.q8_0", GGML_TYPE_Q8_0, 2, {64, 2}, q8};
    t[n++] = (GgufWriteTensor){"w.q4_k", GGML_TYPE_Q4_K, 1, {256}, q4k};
    t[n++] = (GgufWriteTensor){"w.4d", GGML_TYPE_F32, 4, {2, 1, 3, 2}, f32b};
    return n;
}

static size_t wt_bytes(const GgufWriteTensor *t) {
    const GgmlTypeInfo *ti = gguf_type_info(t->type);
    size_t n = 1;
    for (int d = 0; d < t->n_dims; d++) n *= (size_t)t->ne[d];
    return n / (size_t)ti->block_size * (size_t)ti->type_size;
}

Test(gguf, write_read_bit_exact) {
    float f32s[5];
    special_f32(f32s);
    GgufKV kv[40];
    int n_kv = all_types_kvs(kv, f32s, 1);
    GgufWriteTensor t[8];
    int n_t = sample_tensors(t, 7);
    Err e = {{0}};
    const char *path = h_path(g_dir, "rt.gguf");
    cr_assert_eq(gguf_write(path, kv, n_kv, t, n_t, 64, &e), 0, "gguf_write: %s", e.msg);

    GgufFile g;
    cr_assert_eq(gguf_open(&g, path, &e), 0, "gguf_open: %s", e.msg);
    cr_assert_eq(g.version, 3);
    cr_assert_eq(g.alignment, 64, "alignment: expected 64, got %zu", g.alignment);
    cr_assert_eq(g.n_kv, n_kv + 1, "n_kv: expected %d (+ general.alignment), got %d", n_kv + 1,
                 g.n_kv);
    for (int i = 0; i < n_kv; i++) {
        cr_assert_str_eq(g.kvs[i].key, kv[i].key, "key %d out of order", i);
        expect_same_value(kv[i].key, &kv[i].v, &g.kvs[i].v);
    }
    const GgufKV *akv = &g.kvs[n_kv];
    cr_assert(!strcmp(akv->key, GGUF_KEY_ALIGNMENT) && akv->v.type == GGUF_TYPE_UINT32 &&
                  akv->v.num.u == 64,
              "general.alignment should be appended as u32 64");

    cr_assert_eq(g.n_tensors, n_t);
    cr_assert_eq(g.data_offset % 64, 0, "data section at %zu is not 64-aligned", g.data_offset);
    size_t expect_off = 0;
    for (int i = 0; i < n_t; i++) {
        const GgufTensor *gt = &g.tensors[i];
        cr_assert_str_eq(gt->name, t[i].name, "tensor %d out of order", i);
        cr_assert_eq(gguf_find_tensor(&g, t[i].name), gt, "find %s", t[i].name);
        cr_assert(gt->type == t[i].type && gt->n_dims == t[i].n_dims, "%s type/n_dims", gt->name);
        for (int d = 0; d < GGUF_MAX_DIMS; d++)
            cr_assert_eq(gt->ne[d], d < t[i].n_dims ? t[i].ne[d] : 1, "%s ne[%d]", gt->name, d);
        size_t bytes = wt_bytes(&t[i]);
        cr_assert_eq(gt->n_bytes, bytes, "%s n_bytes: expected %zu, got %zu", gt->name, bytes,
                     gt->n_bytes);
        /* packed the way llama.cpp's reader insists: offset = PAD(prev end) */
        cr_assert_eq(gt->offset, expect_off, "%s offset: expected %zu, got %llu", gt->name,
                     expect_off, (unsigned long long)gt->offset);
        expect_off = (expect_off + bytes + 63) / 64 * 64;
        cr_assert(memcmp(gt->data, t[i].data, bytes) == 0, "%s data differs", gt->name);
        cr_assert_eq((const unsigned char *)gt->data, g.mf.data + g.data_offset + gt->offset);
    }
    cr_assert_eq(g.mf.size, g.data_offset + expect_off, "file size: expected %zu, got %zu",
                 g.data_offset + expect_off, g.mf.size);
    /* the padding is zeros */
    for (size_t i = g.data_offset + g.tensors[0].n_bytes; i < g.data_offset + 64; i++)
        cr_assert_eq(g.mf.data[i], 0, "padding byte %zu is %u", i, g.mf.data[i]);
    cr_assert_null(gguf_find_tensor(&g, "w"), "find must match whole names");
    gguf_close(&g);
    gguf_close(&g); /* twice is fine */

    DIR *d = opendir(g_dir);
    struct dirent *de;
    while ((de = readdir(d)))
        cr_assert_null(strstr(de->d_name, ".tmp."), "temp file %s left behind", de->d_name);
    closedir(d);
}

Test(gguf, default_alignment_and_no_tensors) {
    GgufKV kv = gguf_kv_str("general.architecture", "qwen2");
    GgufWriteTensor t[8];
    int n_t = sample_tensors(t, 3);
    Err e = {{0}};
    const char *path = h_path(g_dir, "d.gguf");
    cr_assert_eq(gguf_write(path, &kv, 1, t, n_t, 0, &e), 0, "%s", e.msg);
    GgufFile g;
    cr_assert_eq(gguf_open(&g, path, &e), 0, "%s", e.msg);
    cr_assert_eq(g.alignment, 32);
    cr_assert_eq(g.n_kv, 1, "no general.alignment key is added for the default");
    for (int i = 0; i < g.n_tensors; i++)
        cr_assert_eq(g.tensors[i].offset % 32, 0, "%s misaligned", g.tensors[i].name);
    cr_assert_eq(g.data_offset % 32, 0);
    gguf_close(&g);

    /* metadata only */
    cr_assert_eq(gguf_write(path, &kv, 1, NULL, 0, 0, &e), 0, "%s", e.msg);
    cr_assert_eq(gguf_open(&g, path, &e), 0, "%s", e.msg);
    cr_assert(g.n_tensors == 0 && g.n_kv == 1, "metadata-only file");
    cr_assert_null(gguf_find_tensor(&g, "x"));
    gguf_close(&g);

    /* an alignment given in the metadata is used */
    GgufKV kv2[2] = {kv, gguf_kv_u32(GGUF_KEY_ALIGNMENT, 128)};
    cr_assert_eq(gguf_write(path, kv2, 2, t, n_t, 0, &e), 0, "%s", e.msg);
    cr_assert_eq(gguf_open(&g, path, &e), 0, "%s", e.msg);
    cr_assert(g.alignment == 128 && g.n_kv == 2 && g.data_offset % 128 == 0 &&
                  g.tensors[1].offset == 128,
              "alignment 128 from the metadata");
    gguf_close(&g);

    GgufFile z;
    memset(&z, 0, sizeof z);
    gguf_close(&z);
}

/* A version-2 image (same layout as v3) reads. */
Test(gguf, reads_version_2) {
    Img m = valid_img();
    m.b[4] = 2;
    GgufFile g;
    Err e;
    unsigned char *buf;
    cr_assert_eq(parse_img(m.b, m.n, &g, &e, &buf), 0, "v2: %s", e.msg);
    cr_assert(g.version == 2 && g.n_tensors == 2 && g.tensors[1].offset == 32);
    cr_assert_eq(gguf_tensor_numel(&g.tensors[1]), 8);
    gguf_close(&g);
    free(buf);
    free(m.b);
}

/* Tensors need not be in offset order (llama.cpp's reader wants them packed
 * in order; whale only wants them aligned and apart). */
Test(gguf, reads_unordered_tensors) {
    Img m = {0};
    uint64_t a[] = {8}, b[] = {4};
    img_header(&m, 3, 2, 0);
    img_tensor(&m, "late", 1, a, GGML_TYPE_F32, 64);
    img_tensor(&m, "early", 1, b, GGML_TYPE_F32, 0);
    img_pad(&m, 32);
    img_zeros(&m, 96);
    GgufFile g;
    Err e;
    unsigned char *buf;
    cr_assert_eq(parse_img(m.b, m.n, &g, &e, &buf), 0, "%s", e.msg);
    cr_assert_str_eq(g.tensors[0].name, "late", "file order kept");
    cr_assert_eq(gguf_find_tensor(&g, "early"), &g.tensors[1]);
    gguf_close(&g);
    free(buf);
    free(m.b);
}

/* ---- typed getters ---------------------------------------------------------------------- */

Test(gguf, getters_convert_losslessly) {
    GgufKV kv[] = {
        gguf_kv_uint("u8", GGUF_TYPE_UINT8, 200),
        gguf_kv_uint("u64.small", GGUF_TYPE_UINT64, 7),
        gguf_kv_uint("u64.big", GGUF_TYPE_UINT64, 1ull << 40),
        gguf_kv_int("i32.neg", GGUF_TYPE_INT32, -1),
        gguf_kv_int("i16", GGUF_TYPE_INT16, -300),
        gguf_kv_f64("f64.exact", 0.5),
        gguf_kv_f64("f64.inexact", 0.1),
        gguf_kv_f32("f32", 0.25f),
        gguf_kv_bool("b", 1),
        gguf_kv_str("s", "hello"),
        gguf_kv_arr("arr", GGUF_TYPE_INT16, 3, k_i16),
    };
    Err e = {{0}};
    const char *path = h_path(g_dir, "get.gguf");
    cr_assert_eq(gguf_write(path, kv, 11, NULL, 0, 0, &e), 0, "%s", e.msg);
    GgufFile g;
    cr_assert_eq(gguf_open(&g, path, &e), 0, "%s", e.msg);
    uint32_t u32;
    int32_t i32;
    int64_t i64;
    uint64_t u64;
    float f;
    double d;
    int b;
    char s[8];
    cr_assert(gguf_get_u32(&g, "u8", &u32, &e) == 0 && u32 == 200, "u8 as u32");
    cr_assert(gguf_get_i64(&g, "u8", &i64, &e) == 0 && i64 == 200, "u8 as i64");
    cr_assert(gguf_get_i32(&g, "u64.small", &i32, &e) == 0 && i32 == 7, "u64 7 as i32");
    cr_assert(gguf_get_u64(&g, "u64.big", &u64, &e) == 0 && u64 == 1ull << 40);
    cr_assert_eq(gguf_get_u32(&g, "u64.big", &u32, &e), -1, "2^40 must not fit u32");
    cr_assert(strstr(e.msg, "get.gguf") && strstr(e.msg, "'u64.big'") &&
                  strstr(e.msg, "does not fit in u32"), "message: %s", e.msg);
    cr_assert_eq(gguf_get_u32(&g, "i32.neg", &u32, &e), -1, "-1 must not read as u32");
    cr_assert(strstr(e.msg, "-1") && strstr(e.msg, "u32"), "message: %s", e.msg);
    cr_assert(gguf_get_i32(&g, "i16", &i32, &e) == 0 && i32 == -300);
    cr_assert_eq(gguf_get_u64(&g, "i16", &u64, &e), -1);
    cr_assert(gguf_get_f32(&g, "f64.exact", &f, &e) == 0 && f == 0.5f);
    cr_assert_eq(gguf_get_f32(&g, "f64.inexact", &f, &e), -1, "0.1 is not exactly a float");
    cr_assert(gguf_get_f64(&g, "f32", &d, &e) == 0 && d == 0.25);
    cr_assert(gguf_get_bool(&g, "b", &b, &e) == 0 && b == 1);
    cr_assert_eq(gguf_get_bool(&g, "u8", &b, &e), -1, "an integer is not a bool");
    cr_assert_eq(gguf_get_u32(&g, "s", &u32, &e), -1, "a string is not a u32");
    cr_assert(strstr(e.msg, "get.gguf: metadata key 's' has type string, expected u32"),
              "message: %s", e.msg);
    cr_assert_eq(gguf_get_f32(&g, "b", &f, &e), -1, "a bool is not a float");
    cr_assert_eq(gguf_get_u32(&g, "absent", &u32, &e), -1);
    cr_assert(strstr(e.msg, "get.gguf: metadata key 'absent' is missing"), "message: %s", e.msg);
    cr_assert(gguf_get_str(&g, "s", s, sizeof s, &e) == 0 && !strcmp(s, "hello"));
    cr_assert_eq(gguf_get_str(&g, "s", s, 5, &e), -1, "too long for the buffer");
    cr_assert_eq(gguf_get_str(&g, "u8", s, sizeof s, &e), -1, "not a string");
    const GgufValue *arr;
    cr_assert_eq(gguf_get_arr(&g, "arr", GGUF_TYPE_INT16, &arr, &e), 0, "%s", e.msg);
    cr_assert_eq(gguf_get_arr(&g, "arr", GGUF_TYPE_UINT32, &arr, &e), -1, "element type");
    cr_assert(strstr(e.msg, "array of i16"), "message: %s", e.msg);
    cr_assert_eq(gguf_get_arr(&g, "arr", GGUF_TYPE_COUNT, &arr, &e), 0);
    for (uint64_t i = 0; i < 3; i++) {
        GgufValue el;
        gguf_value_at(arr, i, &el);
        cr_assert(gguf_value_i32(&el, "arr[i]", &i32, &e) == 0 && i32 == k_i16[i],
                  "arr[%llu]: expected %d, got %d", (unsigned long long)i, k_i16[i], i32);
    }
    cr_assert_eq(gguf_get_arr(&g, "u8", GGUF_TYPE_COUNT, &arr, &e), -1, "not an array");
    GgufStr hs = g.kvs[9].v.str;
    cr_assert(gguf_str_eq(hs, "hello") && !gguf_str_eq(hs, "hell") && !gguf_str_eq(hs, "hello!"));
    gguf_close(&g);
}

Test(gguf, check_types_names_the_tensor) {
    static unsigned char q5k[176], f[4];
    GgufWriteTensor t[] = {{"ok.f32", GGML_TYPE_F32, 1, {1}, f},
                           {"blk.0.ffn_down.weight", GGML_TYPE_Q5_K, 1, {256}, q5k}};
    Err e = {{0}};
    const char *path = h_path(g_dir, "q5.gguf");
    cr_assert_eq(gguf_write(path, NULL, 0, t, 2, 0, &e), 0, "%s", e.msg);
    GgufFile g;
    cr_assert_eq(gguf_open(&g, path, &e), 0, "Q5_K parses: %s", e.msg);
    cr_assert_eq(gguf_check_tensor_type(&g, &g.tensors[0], &e), 0);
    cr_assert_eq(gguf_check_types(&g, &e), -1);
    cr_assert(strstr(e.msg, "q5.gguf") && strstr(e.msg, "'blk.0.ffn_down.weight'") &&
                  strstr(e.msg, "Q5_K") && strstr(e.msg, "does not read"),
              "message: %s", e.msg);
    gguf_close(&g);
}

Test(gguf, writer_rejects_bad_input) {
    static float f[64];
    const GgufWriteTensor ok = {"t", GGML_TYPE_F32, 1, {4}, f};
    const GgufKV okkv = gguf_kv_u32("k", 1);
    GgufKV nested = gguf_kv_arr("nested", GGUF_TYPE_ARRAY, 1, f);
    GgufKV badbool = gguf_kv_uint("b", GGUF_TYPE_BOOL, 2);
    uint8_t bools[2] = {1, 3};
    GgufKV badbools = gguf_kv_arr("bb", GGUF_TYPE_BOOL, 2, bools);
    GgufKV badtype = okkv;
    badtype.v.type = (GgufType)13;
    GgufKV nullarr = gguf_kv_arr("na", GGUF_TYPE_UINT32, 3, NULL);
    char longname[80];
    memset(longname, 'x', 64);
    longname[64] = 0;
    struct {
        GgufKV kv[2];
        int n_kv;
        GgufWriteTensor t[2];
        int n_t;
        size_t align;
        const char *needle;
    } cases[] = {
        {{okkv, okkv}, 2, {ok}, 1, 0, "'k' is given twice"},
        {{gguf_kv_u32("", 1)}, 1, {ok}, 1, 0, "empty"},
        {{nested}, 1, {ok}, 1, 0, "nested"},
        {{badbool}, 1, {ok}, 1, 0, "0 or 1"},
        {{badbools}, 1, {ok}, 1, 0, "0 or 1"},
        {{badtype}, 1, {ok}, 1, 0, "unknown value type"},
        {{nullarr}, 1, {ok}, 1, 0, "NULL"},
        {{okkv}, 1, {ok}, 1, 48, "power of two"},
        {{gguf_kv_u32(GGUF_KEY_ALIGNMENT, 64)}, 1, {ok}, 1, 32, "general.alignment"},
        {{gguf_kv_uint(GGUF_KEY_ALIGNMENT, GGUF_TYPE_UINT64, 64)}, 1, {ok}, 1, 0,
         "general.alignment"},
        {{okkv}, 1, {ok, ok}, 2, 0, "'t' is given twice"},
        {{okkv}, 1, {{longname, GGML_TYPE_F32, 1, {1}, f}}, 1, 0, "fewer than 64"},
        {{okkv}, 1, {{"", GGML_TYPE_F32, 1, {1}, f}}, 1, 0, "empty"},
        {{okkv}, 1, {{"d0", GGML_TYPE_F32, 0, {1}, f}}, 1, 0, "'d0'"},
        {{okkv}, 1, {{"d5", GGML_TYPE_F32, 5, {1}, f}}, 1, 0, "'d5'"},
        {{okkv}, 1, {{"zero", GGML_TYPE_F32, 2, {4, 0}, f}}, 1, 0, "'zero'"},
        {{okkv}, 1, {{"huge", GGML_TYPE_F32, 3, {1ll << 40, 1ll << 40, 1ll << 40}, f}}, 1, 0,
         "'huge'"},
        {{okkv}, 1, {{"ty", (GgmlType)4, 1, {1}, f}}, 1, 0, "unknown ggml type"},
        {{okkv}, 1, {{"blk", GGML_TYPE_Q8_0, 1, {33}, f}}, 1, 0, "blocks of 32"},
        {{okkv}, 1, {{"null", GGML_TYPE_F32, 1, {4}, NULL}}, 1, 0, "data is NULL"},
    };
    const char *path = h_path(g_dir, "w.gguf");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Err e = {{0}};
        int rc = gguf_write(path, cases[i].kv, cases[i].n_kv, cases[i].t, cases[i].n_t,
                            cases[i].align, &e);
        cr_assert_eq(rc, -1, "case %zu (%s) should fail", i, cases[i].needle);
        cr_assert(strstr(e.msg, cases[i].needle) && strstr(e.msg, "w.gguf"),
                  "case %zu: expected \"%s\" in \"%s\"", i, cases[i].needle, e.msg);
        cr_assert_eq(access(path, F_OK), -1, "case %zu: a failed write created the file", i);
    }
    Err e = {{0}};
    cr_assert_eq(gguf_write(h_path(g_dir, "no/such/dir/x.gguf"), &okkv, 1, &ok, 1, 0, &e), -1);
    cr_assert(strstr(e.msg, "no/such/dir/x.gguf"), "message: %s", e.msg);
}

/* ---- hostile input: one test per kind --------------------------------------------------- */

Test(gguf, bad_magic) {
    Img m = valid_img();
    memcpy(m.b, "GGML", 4);
    EXPECT_FAIL(&m, "not a GGUF file", "47 47 4d 4c");
}

Test(gguf, bad_version) {
    uint32_t versions[] = {0, 1, 4, 0x03000000u};
    const char *needles[] = {"unsupported GGUF version 0", "version 1 is not supported",
                             "unsupported GGUF version 4", "big-endian"};
    for (int i = 0; i < 4; i++) {
        Img m = valid_img();
        for (int k = 0; k < 4; k++) m.b[4 + k] = (unsigned char)(versions[i] >> (8 * k));
        EXPECT_FAIL(&m, needles[i]);
    }
}

Test(gguf, short_header) {
    Img m = {0};
    img_put(&m, "GGUF", 4);
    img_u32(&m, 3);
    EXPECT_FAIL(&m, "shorter than the 24-byte GGUF header");
}

Test(gguf, absurd_counts) {
    Img m = valid_img();
    for (int k = 0; k < 8; k++) m.b[16 + k] = k == 7 ? 0x10 : 0; /* kv_count 2^60 */
    EXPECT_FAIL(&m, "kv_count 1152921504606846976 is absurd");
    m = valid_img();
    for (int k = 0; k < 8; k++) m.b[8 + k] = 0xff; /* tensor_count 2^64-1 */
    EXPECT_FAIL(&m, "tensor_count 18446744073709551615 is absurd");
    /* a count the file could hold by size, but whose entries are not there */
    m = valid_img();
    m.b[16] = 5;
    EXPECT_FAIL(&m, "key");
}

Test(gguf, key_length_past_end) {
    Img m = {0};
    img_header(&m, 3, 0, 1);
    img_u64(&m, 1000); /* key length */
    img_put(&m, "general", 7);
    EXPECT_FAIL(&m, "key #0", "length 1000 runs past the end");
}

Test(gguf, string_value_past_end) {
    Img m = {0};
    img_header(&m, 3, 0, 1);
    img_str(&m, "general.name");
    img_u32(&m, GGUF_TYPE_STRING);
    img_u64(&m, 1ull << 62);
    img_put(&m, "abc", 3);
    EXPECT_FAIL(&m, "'general.name'", "runs past the end");
}

Test(gguf, array_length_past_end) {
    Img m = {0};
    img_header(&m, 3, 0, 1);
    img_str(&m, "tokenizer.ggml.scores");
    img_u32(&m, GGUF_TYPE_ARRAY);
    img_u32(&m, GGUF_TYPE_FLOAT32);
    img_u64(&m, 1ull << 61); /* * 4 bytes overflows 64 bits */
    img_zeros(&m, 16);
    EXPECT_FAIL(&m, "'tokenizer.ggml.scores'", "array of 2305843009213693952 f32");
    m = (Img){0};
    img_header(&m, 3, 0, 1);
    img_str(&m, "tokenizer.ggml.tokens");
    img_u32(&m, GGUF_TYPE_ARRAY);
    img_u32(&m, GGUF_TYPE_STRING);
    img_u64(&m, 3);
    img_str(&m, "a");
    img_u64(&m, 50); /* second string runs past the end */
    img_put(&m, "bc", 2);
    img_str(&m, "c");
    EXPECT_FAIL(&m, "'tokenizer.ggml.tokens'", "runs past the end");
    m = (Img){0};
    img_header(&m, 3, 0, 1);
    img_str(&m, "tokenizer.ggml.tokens");
    img_u32(&m, GGUF_TYPE_ARRAY);
    img_u32(&m, GGUF_TYPE_STRING);
    img_u64(&m, 1000000);
    img_zeros(&m, 64);
    EXPECT_FAIL(&m, "array of 1000000 strings runs past the end");
}

Test(gguf, nested_array) {
    Img m = {0};
    img_header(&m, 3, 0, 1);
    img_str(&m, "nested");
    img_u32(&m, GGUF_TYPE_ARRAY);
    img_u32(&m, GGUF_TYPE_ARRAY);
    img_u64(&m, 1);
    img_zeros(&m, 16);
    EXPECT_FAIL(&m, "'nested'", "nested arrays are not supported");
}

Test(gguf, unknown_value_type) {
    Img m = {0};
    img_header(&m, 3, 0, 1);
    img_str(&m, "weird");
    img_u32(&m, 13);
    img_zeros(&m, 8);
    EXPECT_FAIL(&m, "'weird'", "unknown value type 13");
    m = (Img){0};
    img_header(&m, 3, 0, 1);
    img_str(&m, "weirdarr");
    img_u32(&m, GGUF_TYPE_ARRAY);
    img_u32(&m, 77);
    img_u64(&m, 1);
    img_zeros(&m, 8);
    EXPECT_FAIL(&m, "'weirdarr'", "unknown element type 77");
}

Test(gguf, bool_not_0_or_1) {
    Img m = {0};
    img_header(&m, 3, 0, 1);
    img_str(&m, "flag");
    img_u32(&m, GGUF_TYPE_BOOL);
    img_put(&m, "\x02", 1);
    EXPECT_FAIL(&m, "'flag'", "neither 0 nor 1");
}

Test(gguf, duplicate_empty_and_nul_keys) {
    Img m = {0};
    img_header(&m, 3, 0, 2);
    img_kv_u32(&m, "general.alignment", 32);
    img_kv_u32(&m, "general.alignment", 64);
    EXPECT_FAIL(&m, "'general.alignment' appears twice");
    m = (Img){0};
    img_header(&m, 3, 0, 1);
    img_kv_u32(&m, "", 1);
    EXPECT_FAIL(&m, "key #0", "name is empty");
    m = (Img){0};
    img_header(&m, 3, 0, 1);
    img_u64(&m, 3);
    img_put(&m, "a\0b", 3);
    img_u32(&m, GGUF_TYPE_UINT8);
    img_put(&m, "\x01", 1);
    EXPECT_FAIL(&m, "NUL byte");
}

Test(gguf, bad_alignment) {
    Img m = {0};
    img_header(&m, 3, 0, 1);
    img_kv_u32(&m, "general.alignment", 48);
    EXPECT_FAIL(&m, "general.alignment = 48 is not a power of two");
    m = (Img){0};
    img_header(&m, 3, 0, 1);
    img_kv_u32(&m, "general.alignment", 0);
    EXPECT_FAIL(&m, "general.alignment = 0");
    m = (Img){0};
    img_header(&m, 3, 0, 1);
    img_kv_str(&m, "general.alignment", "32");
    EXPECT_FAIL(&m, "'general.alignment' has type string, expected u32");
}

Test(gguf, tensor_name_past_end) {
    Img m = {0};
    img_header(&m, 3, 1, 0);
    img_u64(&m, 500);
    img_put(&m, "token_embd.weight", 17);
    img_zeros(&m, 24);
    EXPECT_FAIL(&m, "tensor #0", "length 500 runs past the end");
}

Test(gguf, tensor_offset_out_of_range) {
    Img m = {0};
    uint64_t ne[] = {8};
    img_header(&m, 3, 1, 0);
    img_tensor(&m, "w", 1, ne, GGML_TYPE_F32, 32); /* 32 bytes at 32, data has 32 */
    img_pad(&m, 32);
    img_zeros(&m, 32);
    EXPECT_FAIL(&m, "'w'", "run past the end of the 32-byte data section");
    m = (Img){0};
    img_header(&m, 3, 1, 0);
    img_tensor(&m, "w", 1, ne, GGML_TYPE_F32, 0xffffffffffffffe0ull); /* aligned, huge */
    img_pad(&m, 32);
    img_zeros(&m, 32);
    EXPECT_FAIL(&m, "'w'", "run past the end");
}

Test(gguf, tensor_offset_misaligned) {
    Img m = {0};
    uint64_t ne[] = {4};
    img_header(&m, 3, 1, 0);
    img_tensor(&m, "w", 1, ne, GGML_TYPE_F32, 4);
    img_pad(&m, 32);
    img_zeros(&m, 64);
    EXPECT_FAIL(&m, "'w'", "offset 4 is not a multiple of the alignment 32");
}

Test(gguf, tensors_overlap) {
    Img m = {0};
    uint64_t big[] = {16}, small[] = {4};
    img_header(&m, 3, 2, 0);
    img_tensor(&m, "big", 1, big, GGML_TYPE_F32, 0); /* 64 bytes: 0..64 */
    img_tensor(&m, "small", 1, small, GGML_TYPE_F32, 32);
    img_pad(&m, 32);
    img_zeros(&m, 96);
    EXPECT_FAIL(&m, "'big' and 'small' overlap");
}

Test(gguf, duplicate_tensor_name) {
    Img m = {0};
    uint64_t ne[] = {4};
    img_header(&m, 3, 2, 0);
    img_tensor(&m, "w", 1, ne, GGML_TYPE_F32, 0);
    img_tensor(&m, "w", 1, ne, GGML_TYPE_F32, 32);
    img_pad(&m, 32);
    img_zeros(&m, 64);
    EXPECT_FAIL(&m, "tensor 'w' appears twice");
}

Test(gguf, unknown_ggml_type) {
    uint32_t types[] = {4, 31, 43, 0xffffffffu};
    for (int i = 0; i < 4; i++) {
        Img m = {0};
        uint64_t ne[] = {32};
        img_header(&m, 3, 1, 0);
        img_tensor(&m, "w", 1, ne, types[i], 0);
        img_pad(&m, 32);
        img_zeros(&m, 256);
        char needle[64];
        snprintf(needle, sizeof needle, "unknown ggml type id %u", types[i]);
        EXPECT_FAIL(&m, "'w'", needle);
    }
}

Test(gguf, n_dims_out_of_range) {
    uint32_t nds[] = {0, 5, 0x80000000u};
    for (int i = 0; i < 3; i++) {
        Img m = {0};
        uint64_t ne[] = {1, 1, 1, 1, 1};
        img_header(&m, 3, 1, 0);
        img_tensor(&m, "w", i == 1 ? 5 : 0, ne, GGML_TYPE_F32, 0);
        if (i == 2) memcpy(m.b + m.n - 16, &nds[2], 4); /* n_dims field of a 0-dim info */
        img_pad(&m, 32);
        img_zeros(&m, 32);
        EXPECT_FAIL(&m, "'w'", "n_dims");
    }
}

Test(gguf, zero_and_overflowing_dims) {
    struct { uint32_t nd; uint64_t ne[4]; const char *needle; } cases[] = {
        {2, {4, 0}, "dimension 1 is 0"},
        {1, {0}, "dimension 0 is 0"},
        {2, {1ull << 32, 1ull << 32}, "overflows"},
        {1, {1ull << 63}, "overflows"},
        {4, {1u << 16, 1u << 16, 1u << 16, 1u << 16}, "overflows"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Img m = {0};
        img_header(&m, 3, 1, 0);
        img_tensor(&m, "w", cases[i].nd, cases[i].ne, GGML_TYPE_F32, 0);
        img_pad(&m, 32);
        img_zeros(&m, 32);
        EXPECT_FAIL(&m, "'w'", cases[i].needle);
    }
    /* the byte count overflows even though the element count fits */
    Img m = {0};
    uint64_t ne[] = {1ull << 62};
    img_header(&m, 3, 1, 0);
    img_tensor(&m, "w", 1, ne, GGML_TYPE_F32, 0);
    img_pad(&m, 32);
    EXPECT_FAIL(&m, "'w'", "byte size overflows");
}

Test(gguf, row_not_whole_blocks) {
    Img m = {0};
    uint64_t ne[] = {33, 2};
    img_header(&m, 3, 1, 0);
    img_tensor(&m, "w", 2, ne, GGML_TYPE_Q8_0, 0);
    img_pad(&m, 32);
    img_zeros(&m, 256);
    EXPECT_FAIL(&m, "'w'", "row of 33 elements is not a whole number of Q8_0 blocks of 32");
}

Test(gguf, data_section_past_end) {
    Img m = {0};
    uint64_t ne[] = {1};
    img_header(&m, 3, 1, 1);
    img_kv_u32(&m, "general.alignment", 1u << 20);
    img_tensor(&m, "w", 1, ne, GGML_TYPE_F32, 0);
    img_zeros(&m, 8);
    EXPECT_FAIL(&m, "data section would start at offset 1048576");
}

/* Every proper prefix of a valid file fails cleanly (the last tensor ends at
 * the end of the file, so no prefix is a valid file); every single-byte
 * corruption of the header and infos parses or fails cleanly, and a success
 * describes only bytes inside the image. */
Test(gguf, truncations_and_corruptions) {
    GgufKV kv[40];
    float f32s[5];
    special_f32(f32s);
    int n_kv = all_types_kvs(kv, f32s, 1);
    GgufWriteTensor t[8];
    int n_t = sample_tensors(t, 11);
    static float last[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    t[n_t++] = (GgufWriteTensor){"last", GGML_TYPE_F32, 1, {8}, last}; /* 32 bytes */
    Err e = {{0}};
    const char *path = h_path(g_dir, "tr.gguf");
    cr_assert_eq(gguf_write(path, kv, n_kv, t, n_t, 32, &e), 0, "%s", e.msg);
    size_t n;
    unsigned char *img = (unsigned char *)h_read_file(path, &n);
    cr_assert_not_null(img);
    GgufFile g;
    unsigned char *buf;
    cr_assert_eq(parse_img(img, n, &g, &e, &buf), 0, "full image: %s", e.msg);
    size_t infos_end = g.data_offset;
    gguf_close(&g);
    free(buf);
    for (size_t len = 0; len < n; len++) {
        int rc = parse_img(img, len, &g, &e, NULL);
        cr_assert_eq(rc, -1, "prefix of %zu of %zu bytes should fail", len, n);
    }
    static const unsigned char subs[] = {0x00, 0xff, 0x01, 0x7f, 0x80, 0x09};
    for (size_t i = 0; i < infos_end; i++) {
        unsigned char keep = img[i];
        for (size_t k = 0; k < sizeof subs; k++) {
            img[i] = subs[k];
            if (parse_img(img, n, &g, &e, &buf) == 0) {
                for (int j = 0; j < g.n_tensors; j++) {
                    const unsigned char *d = g.tensors[j].data;
                    cr_assert(d >= buf && d + g.tensors[j].n_bytes <= buf + n,
                              "corrupt byte %zu: tensor %s outside the image", i,
                              g.tensors[j].name);
                }
                gguf_close(&g);
                free(buf);
            }
        }
        img[i] = keep;
    }
    free(img);
}

Test(gguf, open_missing_and_empty_file) {
    GgufFile g;
    Err e = {{0}};
    cr_assert_eq(gguf_open(&g, h_path(g_dir, "absent.gguf"), &e), -1);
    cr_assert(strstr(e.msg, "absent.gguf"), "message: %s", e.msg);
    const char *p = h_path(g_dir, "empty.gguf");
    cr_assert_eq(h_write_file(p, "", 0), 0);
    cr_assert_eq(gguf_open(&g, p, &e), -1);
    cr_assert(strstr(e.msg, "empty.gguf") && strstr(e.msg, "shorter"), "message: %s", e.msg);
    cr_assert(g.n_kv == 0 && g.kvs == NULL && g.mf.data == NULL, "state left behind");
}

/* ---- the converter's transforms ------------------------------------------------------- */

Test(gguf, llama_permute_small) {
    /* 2 heads of Dh = 4, 3 columns: per head rows {0,1,2,3} -> {0,2,1,3} */
    float src[8 * 3], dst[8 * 3], back[8 * 3];
    for (int i = 0; i < 24; i++) src[i] = (float)i;
    Err e = {{0}};
    cr_assert_eq(gguf_llama_permute_rows(dst, src, 8, 3 * sizeof(float), 2, &e), 0, "%s", e.msg);
    int want_rows[8] = {0, 2, 1, 3, 4, 6, 5, 7};
    for (int r = 0; r < 8; r++)
        for (int c = 0; c < 3; c++)
            cr_assert_eq(dst[r * 3 + c], src[want_rows[r] * 3 + c],
                         "row %d col %d: expected in row %d", r, c, want_rows[r]);
    cr_assert_eq(gguf_llama_unpermute_rows(back, dst, 8, 3 * sizeof(float), 2, &e), 0);
    cr_assert(memcmp(back, src, sizeof src) == 0, "unpermute(permute(x)) != x");
    cr_assert_eq(gguf_llama_permute_rows(dst, src, 6, 4, 2, &e), -1, "6 rows are not 2 even heads");
    cr_assert(strstr(e.msg, "6 rows"), "message: %s", e.msg);
}

/* Against torch's reshape(H, 2, Dh/2, C).swapaxes(1, 2).reshape(H*Dh, C)
 * written out as index arithmetic, on a bigger random case (and on rows of
 * 34 bytes: whole Q8_0 blocks move like any row). */
Test(gguf, llama_permute_matches_reshape_swapaxes) {
    enum { H = 3, DH = 8, C = 5, ROWS = H * DH };
    uint32_t seed = 99;
    float x[ROWS * C], y[ROWS * C], z[ROWS * C];
    for (int i = 0; i < ROWS * C; i++) x[i] = (float)(rng_next(&seed) % 10000) / 100.0f;
    Err e = {{0}};
    cr_assert_eq(gguf_llama_permute_rows(y, x, ROWS, C * sizeof(float), H, &e), 0);
    /* out[h, j, s, :] = in[h, s, j, :] over (H, DH/2, 2) vs (H, 2, DH/2) */
    for (int h = 0; h < H; h++)
        for (int j = 0; j < DH / 2; j++)
            for (int s = 0; s < 2; s++)
                for (int c = 0; c < C; c++) {
                    float want = x[((h * 2 + s) * (DH / 2) + j) * C + c];
                    float got = y[((h * (DH / 2) + j) * 2 + s) * C + c];
                    cr_assert_eq(got, want, "h %d j %d s %d c %d", h, j, s, c);
                }
    cr_assert_eq(gguf_llama_unpermute_rows(z, y, ROWS, C * sizeof(float), H, &e), 0);
    cr_assert(memcmp(z, x, sizeof x) == 0);
    unsigned char qa[8 * 34], qb[8 * 34], qc[8 * 34];
    for (size_t i = 0; i < sizeof qa; i++) qa[i] = (unsigned char)rng_next(&seed);
    cr_assert_eq(gguf_llama_permute_rows(qb, qa, 8, 34, 2, &e), 0);
    cr_assert(memcmp(qb + 34, qa + 2 * 34, 34) == 0, "row 1 should be old row 2");
    cr_assert_eq(gguf_llama_unpermute_rows(qc, qb, 8, 34, 2, &e), 0);
    cr_assert(memcmp(qc, qa, sizeof qa) == 0);
}

Test(gguf, kv_b_split_merge) {
    enum { H = 2, NOPE = 3, V = 2, R = 4 };
    float kv[H * (NOPE + V) * R], kb[H * R * NOPE], vb[H * V * R], back[H * (NOPE + V) * R];
    for (int i = 0; i < H * (NOPE + V) * R; i++) kv[i] = (float)i + 0.5f;
    gguf_mla_split_kv_b(kv, kb, vb, sizeof(float), H, NOPE, V, R);
    for (int h = 0; h < H; h++) {
        for (int r = 0; r < R; r++)
            for (int i = 0; i < NOPE; i++)
                cr_assert_eq(kb[(h * R + r) * NOPE + i], kv[(h * (NOPE + V) + i) * R + r],
                             "k_b[%d][%d][%d] should be kv_b[%d*(nope+v)+%d][%d]", h, r, i, h, i,
                             r);
        for (int j = 0; j < V; j++)
            for (int r = 0; r < R; r++)
                cr_assert_eq(vb[(h * V + j) * R + r], kv[(h * (NOPE + V) + NOPE + j) * R + r],
                             "v_b[%d][%d][%d]", h, j, r);
    }
    memset(back, 0, sizeof back);
    gguf_mla_merge_kv_b(kb, vb, back, sizeof(float), H, NOPE, V, R);
    cr_assert(memcmp(back, kv, sizeof kv) == 0, "merge(split(kv_b)) != kv_b");
    /* 16-bit elements move bit for bit too */
    uint16_t h16[H * (NOPE + V) * R], k16[H * R * NOPE], v16[H * V * R], b16[H * (NOPE + V) * R];
    for (int i = 0; i < H * (NOPE + V) * R; i++) h16[i] = f32_to_bf16(kv[i] * -3.0f);
    gguf_mla_split_kv_b(h16, k16, v16, 2, H, NOPE, V, R);
    gguf_mla_merge_kv_b(k16, v16, b16, 2, H, NOPE, V, R);
    cr_assert(memcmp(b16, h16, sizeof h16) == 0);
}

Test(gguf, expert_slice) {
    static float data[4 * 3 * 5];
    for (int i = 0; i < 60; i++) data[i] = (float)i;
    GgufTensor t = {"blk.1.ffn_up_exps.weight", 3, {4, 3, 5, 1}, GGML_TYPE_F32, 0, data, sizeof data};
    size_t nb;
    const float *e2 = gguf_expert_slice(&t, 2, &nb);
    cr_assert(e2 == data + 24 && nb == 48, "expert 2 is the third 3x4 slice");
    cr_assert_null(gguf_expert_slice(&t, 5, &nb));
    cr_assert_null(gguf_expert_slice(&t, -1, &nb));
    t.n_dims = 2;
    cr_assert_null(gguf_expert_slice(&t, 0, &nb), "not a stacked tensor");
}

Test(gguf, yarn_log_multiplier_encoding) {
    /* the converter writes 0.1 * mscale_all_dim; llama.cpp divides by 0.1 */
    cr_assert_eq(gguf_yarn_log_mul_encode(1.0f), 0.1f);
    cr_assert_eq(gguf_yarn_log_mul_decode(0.1f), 1.0f);
    cr_assert_eq(gguf_yarn_log_mul_decode(gguf_yarn_log_mul_encode(0.707f)), 0.707f);
    /* bit-identical to convert_hf_to_gguf.py: f32(0.1 * 0.707) in double */
    cr_assert_eq(gguf_yarn_log_mul_encode(0.707f), (float)(0.1 * 0.707), "got %.9g",
                 (double)gguf_yarn_log_mul_encode(0.707f));
    /* what config files say (a few significant digits) comes back exactly */
    for (int digits = 1; digits <= 4; digits++)
        for (int v = 1; v < 10000; v += digits == 4 ? 7 : 1) {
            for (int ex = -4; ex <= 1; ex++) {
                char buf[32];
                snprintf(buf, sizeof buf, "%.*ge%d", digits, (double)v, ex);
                float m = strtof(buf, NULL);
                float back = gguf_yarn_log_mul_decode(gguf_yarn_log_mul_encode(m));
                cr_assert_eq(back, m, "mscale_all_dim %s came back as %.9g", buf, (double)back);
            }
        }
    /* any float comes back within two ulps (f32 0.1 * x cannot always tell
     * neighbours apart) and re-encodes identically */
    uint32_t seed = 5;
    for (int i = 0; i < 100000; i++) {
        uint32_t bits = 0x3c000000u + rng_next(&seed) % 0x05000000u; /* ~0.008 .. 64 */
        float m;
        memcpy(&m, &bits, 4);
        float back = gguf_yarn_log_mul_decode(gguf_yarn_log_mul_encode(m));
        float lo = nextafterf(nextafterf(m, 0), 0), hi = nextafterf(nextafterf(m, 1e9f), 1e9f);
        cr_assert(back >= lo && back <= hi, "mscale_all_dim %.9g came back as %.9g", (double)m,
                  (double)back);
        cr_assert_eq(gguf_yarn_log_mul_encode(back), gguf_yarn_log_mul_encode(m));
    }
}

static ModelConfig llama3_cfg(float theta, int head_dim, float factor, float low, float high,
                              int orig) {
    ModelConfig c;
    config_defaults(&c, ARCH_LLAMA);
    c.rope_theta = theta;
    c.head_dim = head_dim;
    c.rope.type = ROPE_LLAMA3;
    c.rope.factor = factor;
    c.rope.low_freq_factor = low;
    c.rope.high_freq_factor = high;
    c.rope.original_max_position_embeddings = orig;
    return c;
}

Test(gguf, llama3_rope_freqs_fit) {
    /* Llama 3.1 (R1-Distill-Llama-8B), the test model, and a made-up one */
    ModelConfig cases[] = {
        llama3_cfg(500000.0f, 128, 8.0f, 1.0f, 4.0f, 8192),
        llama3_cfg(10000.0f, 16, 8.0f, 1.0f, 4.0f, 32),
        llama3_cfg(500000.0f, 64, 32.0f, 1.0f, 4.0f, 8192),
        llama3_cfg(100000.0f, 128, 4.0f, 1.0f, 2.0f, 4096),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const ModelConfig *c = &cases[i];
        float f[64];
        gguf_llama3_rope_freqs(c, f);
        /* the converter's first and last: high frequencies untouched, low ones divided */
        cr_assert_eq(f[0], 1.0f, "case %zu: divisor 0", i);
        cr_assert_eq(f[c->head_dim / 2 - 1], c->rope.factor, "case %zu: last divisor", i);
        RopeScaling r = {0};
        Err e = {{0}};
        cr_assert_eq(gguf_llama3_fit(f, c->head_dim / 2, c->rope_theta, c->head_dim, &r, &e), 0,
                     "case %zu: %s", i, e.msg);
        cr_assert(r.type == ROPE_LLAMA3 && r.factor == c->rope.factor &&
                      r.low_freq_factor == c->rope.low_freq_factor &&
                      r.high_freq_factor == c->rope.high_freq_factor &&
                      r.original_max_position_embeddings ==
                          c->rope.original_max_position_embeddings,
                  "case %zu: fit factor %g low %g high %g orig %d", i, (double)r.factor,
                  (double)r.low_freq_factor, (double)r.high_freq_factor,
                  r.original_max_position_embeddings);
    }
    float ones[8] = {1, 1, 1, 1, 1, 1, 1, 1}, junk[8] = {1, 5, 2, 7, 1, 3, 8, 1};
    RopeScaling r = {.type = ROPE_LINEAR};
    Err e = {{0}};
    cr_assert_eq(gguf_llama3_fit(ones, 8, 10000.0f, 16, &r, &e), 0);
    cr_assert_eq(r.type, ROPE_DEFAULT, "all ones: no scaling");
    cr_assert_eq(gguf_llama3_fit(junk, 8, 10000.0f, 16, &r, &e), -1, "junk must not fit");
    cr_assert_eq(gguf_llama3_fit(ones, 7, 10000.0f, 16, &r, &e), -1, "wrong count");
}

/* ---- names ------------------------------------------------------------------------------- */

static ModelConfig load_case(const char *name) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", data_dir(), name);
    ModelConfig c;
    Err e = {{0}};
    cr_assert_eq(config_load(&c, dir, &e), 0, "config_load(%s): %s", dir, e.msg);
    return c;
}

Test(gguf, name_mapping_examples) {
    ModelConfig v3 = load_case("v3_bf16"), ll = load_case("llama"), qw = load_case("qwen2");
    struct { const ModelConfig *c; const char *hf, *gg; GgufXform x; int expert, n_head; } m[] = {
        {&v3, "model.embed_tokens.weight", "token_embd.weight", GGUF_XFORM_NONE, -1, 0},
        {&v3, "model.norm.weight", "output_norm.weight", GGUF_XFORM_NONE, -1, 0},
        {&v3, "lm_head.weight", "output.weight", GGUF_XFORM_NONE, -1, 0},
        {&v3, "model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight", 0, -1, 0},
        {&v3, "model.layers.2.post_attention_layernorm.weight", "blk.2.ffn_norm.weight", 0, -1, 0},
        {&v3, "model.layers.1.self_attn.q_a_proj.weight", "blk.1.attn_q_a.weight", 0, -1, 0},
        {&v3, "model.layers.1.self_attn.q_a_layernorm.weight", "blk.1.attn_q_a_norm.weight", 0,
         -1, 0},
        {&v3, "model.layers.1.self_attn.q_b_proj.weight", "blk.1.attn_q_b.weight", 0, -1, 0},
        {&v3, "model.layers.0.self_attn.kv_a_proj_with_mqa.weight", "blk.0.attn_kv_a_mqa.weight",
         0, -1, 0},
        {&v3, "model.layers.0.self_attn.kv_a_layernorm.weight", "blk.0.attn_kv_a_norm.weight", 0,
         -1, 0},
        {&v3, "model.layers.0.self_attn.o_proj.weight", "blk.0.attn_output.weight", 0, -1, 0},
        {&ll, "model.layers.0.self_attn.o_proj.bias", "blk.0.attn_output.bias", 0, -1, 0},
        {&ll, "model.layers.0.self_attn.q_proj.bias", "blk.0.attn_q.bias",
         GGUF_XFORM_LLAMA_PERMUTE, -1, 8},
        {&v3, "model.layers.0.mlp.gate_proj.weight", "blk.0.ffn_gate.weight", 0, -1, 0},
        {&v3, "model.layers.1.mlp.gate.weight", "blk.1.ffn_gate_inp.weight", 0, -1, 0},
        {&v3, "model.layers.1.mlp.gate.e_score_correction_bias", "blk.1.exp_probs_b.bias", 0, -1,
         0},
        {&v3, "model.layers.2.mlp.experts.15.down_proj.weight", "blk.2.ffn_down_exps.weight",
         GGUF_XFORM_EXPERT, 15, 0},
        {&v3, "model.layers.1.mlp.experts.0.gate_proj.weight", "blk.1.ffn_gate_exps.weight",
         GGUF_XFORM_EXPERT, 0, 0},
        {&v3, "model.layers.1.mlp.shared_experts.up_proj.weight", "blk.1.ffn_up_shexp.weight", 0,
         -1, 0},
        {&v3, "model.layers.3.eh_proj.weight", "blk.3.nextn.eh_proj.weight", 0, -1, 0},
        {&v3, "model.layers.3.enorm.weight", "blk.3.nextn.enorm.weight", 0, -1, 0},
        {&v3, "model.layers.3.shared_head.head.weight", "blk.3.nextn.shared_head_head.weight", 0,
         -1, 0},
        {&v3, "model.layers.3.shared_head.norm.weight", "blk.3.nextn.shared_head_norm.weight", 0,
         -1, 0},
        {&v3, "model.layers.3.self_attn.q_a_proj.weight", "blk.3.attn_q_a.weight", 0, -1, 0},
        {&ll, "model.layers.1.self_attn.q_proj.weight", "blk.1.attn_q.weight",
         GGUF_XFORM_LLAMA_PERMUTE, -1, 8},
        {&ll, "model.layers.1.self_attn.k_proj.weight", "blk.1.attn_k.weight",
         GGUF_XFORM_LLAMA_PERMUTE, -1, 2},
        {&ll, "model.layers.1.self_attn.v_proj.weight", "blk.1.attn_v.weight", 0, -1, 0},
        {&qw, "model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight", 0, -1, 0},
        {&qw, "model.layers.0.self_attn.k_proj.bias", "blk.0.attn_k.bias", 0, -1, 0},
    };
    Err e = {{0}};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        GgufNameRef r[2];
        int n = gguf_name_from_hf(m[i].c, m[i].hf, r, &e);
        cr_assert_eq(n, 1, "%s: %s", m[i].hf, e.msg);
        cr_assert_str_eq(r[0].name, m[i].gg, "%s", m[i].hf);
        cr_assert(r[0].xform == m[i].x && r[0].expert == m[i].expert &&
                      r[0].n_head == m[i].n_head,
                  "%s: xform %d expert %d n_head %d", m[i].hf, r[0].xform, r[0].expert,
                  r[0].n_head);
        char hf[128];
        GgufXform x;
        cr_assert_eq(gguf_name_to_hf(m[i].c, m[i].gg, m[i].expert, hf, sizeof hf, &x, &e), 1,
                     "%s: %s", m[i].gg, e.msg);
        cr_assert_str_eq(hf, m[i].hf);
        cr_assert_eq(x, m[i].x);
    }
    GgufNameRef r[2];
    cr_assert_eq(gguf_name_from_hf(&v3, "model.layers.0.self_attn.kv_b_proj.weight", r, &e), 2);
    cr_assert(!strcmp(r[0].name, "blk.0.attn_k_b.weight") && r[0].xform == GGUF_XFORM_KV_B_K &&
              !strcmp(r[1].name, "blk.0.attn_v_b.weight") && r[1].xform == GGUF_XFORM_KV_B_V);
    char hf[128];
    GgufXform x;
    cr_assert_eq(gguf_name_to_hf(&v3, "blk.2.attn_v_b.weight", -1, hf, sizeof hf, &x, &e), 1);
    cr_assert(!strcmp(hf, "model.layers.2.self_attn.kv_b_proj.weight") && x == GGUF_XFORM_KV_B_V);
    cr_assert_eq(gguf_name_to_hf(&v3, "blk.2.attn_kv_b.weight", -1, hf, sizeof hf, &x, &e), 1,
                 "legacy unsplit kv_b reads");
    cr_assert(!strcmp(hf, "model.layers.2.self_attn.kv_b_proj.weight") && x == GGUF_XFORM_NONE);
    cr_assert_eq(gguf_name_to_hf(&ll, "rope_freqs.weight", -1, hf, sizeof hf, &x, &e), 0);
    cr_assert_eq(gguf_name_from_hf(&ll, "model.layers.0.self_attn.rotary_emb.inv_freq", r, &e), 0);
    /* errors */
    const char *bad_hf[] = {"model.layers.9.input_layernorm.weight", "model.layers.x.mlp.gate",
                            "model.layers.01.input_layernorm.weight", "model.layers.0.foo",
                            "model.layers.1.mlp.experts.16.up_proj.weight",
                            "model.layers.1.mlp.experts.3.bogus_proj.weight",
                            "model.layers.0.enorm.weight", "something.else", ""};
    for (size_t i = 0; i < sizeof bad_hf / sizeof bad_hf[0]; i++)
        cr_assert_eq(gguf_name_from_hf(&v3, bad_hf[i], r, &e), -1, "'%s' should not map",
                     bad_hf[i]);
    const char *bad_gg[] = {"blk.4.attn_norm.weight", "blk.0.nextn.eh_proj.weight",
                            "blk.1.ffn_gate_exps.weight", "blk.0.unknown.weight", "blk..x",
                            "output"};
    for (size_t i = 0; i < sizeof bad_gg / sizeof bad_gg[0]; i++)
        cr_assert_eq(gguf_name_to_hf(&v3, bad_gg[i], i == 2 ? 16 : 0, hf, sizeof hf, &x, &e), -1,
                     "'%s' should not map", bad_gg[i]);
    cr_assert_eq(gguf_name_to_hf(&v3, "token_embd.weight", -1, hf, 8, &x, &e), -1, "tiny buffer");
}

/* ---- a whole model through GGUF -------------------------------------------------------- */

/* One GGUF tensor being built (F32). */
typedef struct GT {
    char name[GGUF_NAME_MAX];
    int n_dims;
    int64_t ne[4];
    float *data;
} GT;

typedef struct GTList {
    GT t[512];
    int n;
} GTList;

static GT *gt_get(GTList *l, const char *name, int n_dims, const int64_t *ne) {
    for (int i = 0; i < l->n; i++) {
        if (strcmp(l->t[i].name, name)) continue;
        for (int d = 0; d < 4; d++)
            cr_assert_eq(l->t[i].ne[d], ne[d], "%s: shape disagrees between parts", name);
        return &l->t[i];
    }
    cr_assert_lt(l->n, 512);
    GT *t = &l->t[l->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = n_dims;
    memcpy(t->ne, ne, sizeof t->ne);
    t->data = calloc((size_t)(ne[0] * ne[1] * ne[2] * ne[3]), sizeof(float));
    cr_assert_not_null(t->data);
    return t;
}

/* cfg's fields that GGUF carries, equal in a and b. */
static void expect_same_config(const ModelConfig *a, const ModelConfig *b, const char *what) {
#define SAME(f) cr_assert(a->f == b->f, "%s: %s: expected %g, got %g", what, #f, (double)a->f, \
                          (double)b->f)
    SAME(arch); SAME(vocab_size); SAME(hidden_size); SAME(intermediate_size);
    SAME(num_hidden_layers); SAME(num_attention_heads); SAME(num_key_value_heads);
    SAME(rms_norm_eps); SAME(rope_theta); SAME(max_position_embeddings);
    SAME(tie_word_embeddings); SAME(bos_token_id); SAME(eos_token_id);
    SAME(num_nextn_predict_layers); SAME(rope.type);
    cr_assert_str_eq(a->model_type, b->model_type, "%s: model_type", what);
    if (a->rope.type != ROPE_DEFAULT) {
        SAME(rope.factor); SAME(rope.original_max_position_embeddings);
    }
    if (a->rope.type == ROPE_YARN) {
        SAME(rope.beta_fast); SAME(rope.beta_slow); SAME(rope.mscale); SAME(rope.mscale_all_dim);
    }
    if (a->rope.type == ROPE_LLAMA3) {
        SAME(rope.low_freq_factor); SAME(rope.high_freq_factor);
    }
    if (config_is_mla(a)) {
        SAME(q_lora_rank); SAME(kv_lora_rank); SAME(qk_nope_head_dim); SAME(qk_rope_head_dim);
        SAME(v_head_dim); SAME(n_routed_experts); SAME(n_shared_experts);
        SAME(num_experts_per_tok); SAME(moe_intermediate_size); SAME(first_k_dense_replace);
        SAME(moe_layer_freq); SAME(n_group); SAME(topk_group); SAME(topk_method);
        SAME(scoring_func); SAME(norm_topk_prob); SAME(routed_scaling_factor);
    } else {
        SAME(head_dim); SAME(attention_bias);
    }
#undef SAME
}

/* HF weights of tests/data/<name> -> GGUF (the converter's names, shapes
 * and transforms, F32) -> file -> config and tensors back: the config's
 * GGUF-carried fields, the metadata (meta -> config -> meta), every HF
 * tensor's bytes and every GGUF shape must survive exactly. */
static void model_round_trip_cfg(const char *name, ModelConfig cfg, int load) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", data_dir(), name);
    Weights w;
    Err e = {{0}};
    cr_assert_eq(weights_alloc(&w, &cfg, QTYPE_F32, &e), 0, "%s", e.msg);
    if (load) cr_assert_eq(weights_load(&w, dir, &e), 0, "weights_load(%s): %s", dir, e.msg);
    else /* every element distinct, biases too, so that a misplaced row shows */
        for (int i = 0; i < w.n_specs; i++) {
            float *p = weights_f32(&w, &w.specs[i]);
            for (int64_t k = 0; k < w.specs[i].numel; k++) p[k] = (float)(i * 100000 + k) * 1e-3f;
        }

    static GTList l;
    l.n = 0;
    for (int i = 0; i < w.n_specs; i++) {
        const ParamSpec *s = &w.specs[i];
        const float *src = weights_f32(&w, s);
        GgufNameRef r[2];
        int nr = gguf_name_from_hf(&cfg, s->name, r, &e);
        cr_assert(nr == 1 || nr == 2, "%s: %s", s->name, e.msg);
        int64_t rows = s->shape[0], cols = s->n_dims == 2 ? s->shape[1] : 1;
        GT *t[2];
        for (int k = 0; k < nr; k++) {
            int nd;
            int64_t ne[4];
            cr_assert_eq(gguf_shape_from_hf(&cfg, &r[k], s->n_dims, s->shape, &nd, ne, &e), 0,
                         "%s: %s", s->name, e.msg);
            t[k] = gt_get(&l, r[k].name, nd, ne);
        }
        switch (r[0].xform) {
        case GGUF_XFORM_NONE: memcpy(t[0]->data, src, (size_t)s->numel * 4); break;
        case GGUF_XFORM_LLAMA_PERMUTE:
            cr_assert_eq(gguf_llama_permute_rows(t[0]->data, src, rows, (size_t)cols * 4,
                                                 r[0].n_head, &e), 0, "%s", e.msg);
            break;
        case GGUF_XFORM_EXPERT:
            memcpy(t[0]->data + (size_t)r[0].expert * (size_t)s->numel, src, (size_t)s->numel * 4);
            break;
        case GGUF_XFORM_KV_B_K:
            gguf_mla_split_kv_b(src, t[0]->data, t[1]->data, 4, cfg.num_attention_heads,
                                cfg.qk_nope_head_dim, cfg.v_head_dim, cfg.kv_lora_rank);
            break;
        default: cr_assert_fail("%s: unexpected first xform %d", s->name, r[0].xform);
        }
    }
    if (cfg.rope.type == ROPE_LLAMA3) {
        int64_t ne[4] = {cfg.head_dim / 2, 1, 1, 1};
        gguf_llama3_rope_freqs(&cfg, gt_get(&l, "rope_freqs.weight", 1, ne)->data);
    }
    GgufMeta meta = {0};
    cr_assert_eq(gguf_meta_from_config(&cfg, &meta, &e), 0, "%s: %s", name, e.msg);
    GgufWriteTensor *wt = calloc((size_t)l.n, sizeof *wt);
    for (int i = 0; i < l.n; i++)
        wt[i] = (GgufWriteTensor){l.t[i].name, GGML_TYPE_F32, l.t[i].n_dims,
                                  {l.t[i].ne[0], l.t[i].ne[1], l.t[i].ne[2], l.t[i].ne[3]},
                                  l.t[i].data};
    char path[128];
    snprintf(path, sizeof path, "%s/%s.gguf", g_dir, name);
    cr_assert_eq(gguf_write(path, meta.kvs, meta.n_kv, wt, l.n, 0, &e), 0, "%s", e.msg);

    GgufFile g;
    cr_assert_eq(gguf_open(&g, path, &e), 0, "%s", e.msg);
    ModelConfig back;
    cr_assert_eq(gguf_config_from_gguf(&g, &back, &e), 0, "%s: %s", name, e.msg);
    expect_same_config(&cfg, &back, name);
    /* meta -> config -> meta */
    GgufMeta meta2 = {0};
    cr_assert_eq(gguf_meta_from_config(&back, &meta2, &e), 0, "%s", e.msg);
    cr_assert_eq(meta2.n_kv, g.n_kv, "%s: %d keys written, %d regenerated", name, g.n_kv,
                 meta2.n_kv);
    for (int i = 0; i < g.n_kv; i++) {
        cr_assert_str_eq(meta2.kvs[i].key, g.kvs[i].key, "%s: key %d", name, i);
        expect_same_value(g.kvs[i].key, &g.kvs[i].v, &meta2.kvs[i].v);
    }

    /* every GGUF tensor back to HF, bit for bit */
    int *seen = calloc((size_t)w.n_specs, sizeof *seen);
    float *tmp = malloc(1 << 22);
    for (int i = 0; i < g.n_tensors; i++) {
        const GgufTensor *t = &g.tensors[i];
        int n_e = 1;
        for (int ex = 0; ex < n_e; ex++) {
            char hf[128];
            GgufXform x;
            int rc = gguf_name_to_hf(&back, t->name, ex, hf, sizeof hf, &x, &e);
            cr_assert(rc >= 0, "%s: %s", t->name, e.msg);
            if (rc == 0) break; /* rope_freqs: checked through the config */
            if (x == GGUF_XFORM_EXPERT) n_e = back.n_routed_experts;
            const ParamSpec *s = weights_find(&w, hf);
            cr_assert_not_null(s, "%s -> %s is not in the weight table", t->name, hf);
            const float *want = weights_f32(&w, s);
            size_t bytes = (size_t)s->numel * 4;
            const void *got = t->data;
            /* the HF tensor maps back to this file tensor, with this shape */
            GgufNameRef r[2];
            int nr = gguf_name_from_hf(&back, hf, r, &e);
            int k = nr == 2 && x == GGUF_XFORM_KV_B_V ? 1 : 0;
            cr_assert_str_eq(r[k].name, t->name, "%s -> %s -> %s", t->name, hf, r[k].name);
            cr_assert_eq(r[k].xform, x, "%s: xform both ways", t->name);
            int nd;
            int64_t ne[4];
            cr_assert_eq(gguf_shape_from_hf(&back, &r[k], s->n_dims, s->shape, &nd, ne, &e), 0);
            cr_assert(nd == t->n_dims && !memcmp(ne, t->ne, sizeof ne), "%s: shape", t->name);
            switch (x) {
            case GGUF_XFORM_NONE: break;
            case GGUF_XFORM_EXPERT: {
                size_t nb;
                got = gguf_expert_slice(t, ex, &nb);
                cr_assert(got && nb == bytes, "%s expert %d slice", t->name, ex);
                break;
            }
            case GGUF_XFORM_LLAMA_PERMUTE:
                cr_assert_eq(gguf_llama_unpermute_rows(
                                 tmp, t->data, s->shape[0],
                                 (size_t)(s->n_dims == 2 ? s->shape[1] : 1) * 4, r[0].n_head, &e),
                             0, "%s", e.msg);
                got = tmp;
                break;
            case GGUF_XFORM_KV_B_K:
            case GGUF_XFORM_KV_B_V: {
                char other[GGUF_NAME_MAX];
                snprintf(other, sizeof other, "%s", t->name);
                char *p = strstr(other, x == GGUF_XFORM_KV_B_K ? "attn_k_b" : "attn_v_b");
                p[5] = x == GGUF_XFORM_KV_B_K ? 'v' : 'k';
                const GgufTensor *o = gguf_find_tensor(&g, other);
                cr_assert_not_null(o, "%s without %s", t->name, other);
                const GgufTensor *kt = x == GGUF_XFORM_KV_B_K ? t : o;
                const GgufTensor *vt = x == GGUF_XFORM_KV_B_K ? o : t;
                gguf_mla_merge_kv_b(kt->data, vt->data, tmp, 4, back.num_attention_heads,
                                    back.qk_nope_head_dim, back.v_head_dim, back.kv_lora_rank);
                got = tmp;
                break;
            }
            }
            cr_assert(memcmp(got, want, bytes) == 0, "%s: %s differs after the round trip", name,
                      hf);
            seen[s - w.specs]++;
        }
    }
    for (int i = 0; i < w.n_specs; i++) {
        int want = strstr(w.specs[i].name, "kv_b_proj") ? 2 : 1;
        cr_assert_eq(seen[i], want, "%s: %s came back %d times, expected %d", name,
                     w.specs[i].name, seen[i], want);
    }
    free(seen);
    free(tmp);
    free(wt);
    for (int i = 0; i < l.n; i++) free(l.t[i].data);
    gguf_close(&g);
    gguf_meta_free(&meta);
    gguf_meta_free(&meta2);
    weights_free(&w);
}

static void model_round_trip(const char *name) { model_round_trip_cfg(name, load_case(name), 1); }

Test(gguf, model_round_trip_llama) { model_round_trip("llama"); }
/* llama with attention_bias: q/k biases are permuted like their rows, and
 * o_proj has a bias too (random weights; biases made non-zero) */
Test(gguf, model_round_trip_llama_bias) {
    ModelConfig c = load_case("llama");
    c.attention_bias = 1;
    c.rope.type = ROPE_DEFAULT;
    model_round_trip_cfg("llama_bias", c, 0);
}
Test(gguf, model_round_trip_qwen2) { model_round_trip("qwen2"); }
Test(gguf, model_round_trip_v2_lite) { model_round_trip("v2_lite"); }
Test(gguf, model_round_trip_v2_group) { model_round_trip("v2_group"); }
Test(gguf, model_round_trip_v3_bf16) { model_round_trip("v3_bf16"); }
Test(gguf, model_round_trip_v3_yarn) { model_round_trip("v3_yarn"); }
Test(gguf, model_round_trip_v3_fp8) { model_round_trip("v3_fp8"); }

/* What llama.cpp's converter writes (not whale's writer): the derivations
 * of nope/rope/v from both kv_b layouts, defaults, per-layer arrays, vocab
 * from the token list, and the errors for what whale cannot run. */
static int meta_config(const GgufKV *kv, int n, ModelConfig *c, Err *e) {
    const char *path = h_path(g_dir, "meta.gguf");
    cr_assert_eq(gguf_write(path, kv, n, NULL, 0, 0, e), 0, "%s", e->msg);
    GgufFile g;
    cr_assert_eq(gguf_open(&g, path, e), 0, "%s", e->msg);
    int rc = gguf_config_from_gguf(&g, c, e);
    gguf_close(&g);
    return rc;
}

Test(gguf, converter_style_metadata) {
    /* DeepSeek-V2-Lite as convert_hf_to_gguf.py writes it (split kv_b):
     * no q_lora_rank, key_length = R + rope, *_mla the MHA sizes */
    static GgufStr toks[300];
    for (int i = 0; i < 300; i++) toks[i] = (GgufStr){"t", 1};
    uint32_t ff[27];
    for (int i = 0; i < 27; i++) ff[i] = 10944;
    GgufKV kv[] = {
        gguf_kv_str("general.architecture", "deepseek2"),
        gguf_kv_u32("deepseek2.block_count", 27),
        gguf_kv_u32("deepseek2.context_length", 163840),
        gguf_kv_u32("deepseek2.embedding_length", 2048),
        gguf_kv_arr("deepseek2.feed_forward_length", GGUF_TYPE_UINT32, 27, ff),
        gguf_kv_u32("deepseek2.attention.head_count", 16),
        gguf_kv_u32("deepseek2.attention.head_count_kv", 1),
        gguf_kv_f32("deepseek2.rope.freq_base", 10000.0f),
        gguf_kv_f32("deepseek2.attention.layer_norm_rms_epsilon", 1e-6f),
        gguf_kv_u32("deepseek2.expert_used_count", 6),
        gguf_kv_u32("deepseek2.leading_dense_block_count", 1),
        gguf_kv_u32("deepseek2.attention.kv_lora_rank", 512),
        gguf_kv_u32("deepseek2.attention.key_length", 576),
        gguf_kv_u32("deepseek2.attention.value_length", 512),
        gguf_kv_u32("deepseek2.attention.key_length_mla", 192),
        gguf_kv_u32("deepseek2.attention.value_length_mla", 128),
        gguf_kv_u32("deepseek2.expert_feed_forward_length", 1408),
        gguf_kv_u32("deepseek2.expert_count", 64),
        gguf_kv_u32("deepseek2.expert_shared_count", 2),
        gguf_kv_f32("deepseek2.expert_weights_scale", 1.0f),
        gguf_kv_u32("deepseek2.rope.dimension_count", 64),
        gguf_kv_str("deepseek2.rope.scaling.type", "yarn"),
        gguf_kv_f32("deepseek2.rope.scaling.factor", 40.0f),
        gguf_kv_u32("deepseek2.rope.scaling.original_context_length", 4096),
        gguf_kv_f32("deepseek2.rope.scaling.yarn_log_multiplier", 0.0707f),
        gguf_kv_arr_str("tokenizer.ggml.tokens", 300, toks),
        gguf_kv_u32("tokenizer.ggml.bos_token_id", 100000 % 300),
    };
    int n = (int)(sizeof kv / sizeof kv[0]);
    ModelConfig c;
    Err e = {{0}};
    cr_assert_eq(meta_config(kv, n, &c, &e), 0, "%s", e.msg);
    cr_assert(c.arch == ARCH_DEEPSEEK_V2 && !strcmp(c.model_type, "deepseek_v2"),
              "softmax, no exp_probs_b, no MTP: V2");
    cr_assert(c.q_lora_rank == 0 && c.kv_lora_rank == 512 && c.qk_nope_head_dim == 128 &&
                  c.qk_rope_head_dim == 64 && c.v_head_dim == 128,
              "MLA dims: q_lora %d R %d nope %d rope %d v %d", c.q_lora_rank, c.kv_lora_rank,
              c.qk_nope_head_dim, c.qk_rope_head_dim, c.v_head_dim);
    cr_assert(c.num_key_value_heads == 16, "head_count_kv = 1 is MLA-as-MQA, not GQA");
    cr_assert(c.intermediate_size == 10944 && c.n_routed_experts == 64 &&
              c.num_experts_per_tok == 6 && c.n_shared_experts == 2 &&
              c.moe_intermediate_size == 1408 && c.first_k_dense_replace == 1);
    cr_assert(c.topk_method == TOPK_GREEDY && c.scoring_func == SCORE_SOFTMAX &&
              c.n_group == 1 && c.norm_topk_prob == 0, "V2-Lite routing defaults");
    cr_assert(c.vocab_size == 300, "vocab from the token list, got %d", c.vocab_size);
    cr_assert(c.bos_token_id == 100000 % 300 && c.eos_token_id == -1);
    cr_assert(c.rope.type == ROPE_YARN && c.rope.factor == 40.0f &&
                  c.rope.original_max_position_embeddings == 4096 &&
                  fabsf(c.rope.mscale_all_dim - 0.707f) < 1e-6f &&
                  c.rope.mscale == c.rope.mscale_all_dim && c.rope.beta_fast == 32.0f,
              "yarn: mscale_all_dim %.9g", (double)c.rope.mscale_all_dim);
    cr_assert(c.max_position_embeddings == 163840 && c.rms_norm_eps == 1e-6f);

    /* the legacy layout: key_length = nope + rope, value_length = v */
    GgufKV legacy[32];
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!strstr(kv[i].key, "_mla") && !strstr(kv[i].key, "key_length") &&
            !strstr(kv[i].key, "value_length"))
            legacy[m++] = kv[i];
    legacy[m++] = gguf_kv_u32("deepseek2.attention.key_length", 192);
    legacy[m++] = gguf_kv_u32("deepseek2.attention.value_length", 128);
    cr_assert_eq(meta_config(legacy, m, &c, &e), 0, "%s", e.msg);
    cr_assert(c.qk_nope_head_dim == 128 && c.v_head_dim == 128, "legacy dims");

    /* V3: sigmoid gating in a metadata-only file means noaux_tc */
    GgufKV v3[40];
    m = 0;
    for (int i = 0; i < n; i++) v3[m++] = kv[i];
    v3[m++] = gguf_kv_u32("deepseek2.expert_gating_func", 2);
    v3[m++] = gguf_kv_u32("deepseek2.expert_group_count", 8);
    v3[m++] = gguf_kv_u32("deepseek2.expert_group_used_count", 4);
    v3[m++] = gguf_kv_bool("deepseek2.expert_weights_norm", 1);
    v3[m++] = gguf_kv_u32("deepseek2.attention.q_lora_rank", 1536);
    cr_assert_eq(meta_config(v3, m, &c, &e), 0, "%s", e.msg);
    cr_assert(c.arch == ARCH_DEEPSEEK_V3 && c.topk_method == TOPK_NOAUX_TC &&
              c.scoring_func == SCORE_SIGMOID && c.n_group == 8 && c.topk_group == 4 &&
              c.norm_topk_prob == 1 && c.q_lora_rank == 1536, "V3 routing");

    /* errors, each naming the key */
    struct { const char *drop, *needle; } miss[] = {
        {"deepseek2.block_count", "'deepseek2.block_count' is missing"},
        {"deepseek2.attention.kv_lora_rank", "'deepseek2.attention.kv_lora_rank' is missing"},
        {"deepseek2.rope.dimension_count", "'deepseek2.rope.dimension_count' is missing"},
        {"deepseek2.expert_used_count", "'deepseek2.expert_used_count' is missing"},
        {"deepseek2.attention.layer_norm_rms_epsilon", "layer_norm_rms_epsilon' is missing"},
        {"deepseek2.attention.value_length_mla", "must come together"},
    };
    for (size_t k = 0; k < sizeof miss / sizeof miss[0]; k++) {
        m = 0;
        for (int i = 0; i < n; i++)
            if (strcmp(kv[i].key, miss[k].drop)) legacy[m++] = kv[i];
        cr_assert_eq(meta_config(legacy, m, &c, &e), -1, "without %s", miss[k].drop);
        cr_assert(strstr(e.msg, miss[k].needle) && strstr(e.msg, "meta.gguf"),
                  "expected \"%s\" in \"%s\"", miss[k].needle, e.msg);
    }
    struct { GgufKV kv; const char *needle; } bad[] = {
        {gguf_kv_u32("deepseek2.expert_gating_func", 3), "expert_gating_func = 3"},
        {gguf_kv_str("deepseek2.rope.scaling.type", "longrope"), "'longrope' is not supported"},
        {gguf_kv_str("deepseek2.block_count", "27"), "'deepseek2.block_count' has type string"},
        {gguf_kv_str("general.architecture", "mamba"), "architecture 'mamba' is not supported"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        m = 0;
        for (int i = 0; i < n; i++)
            if (strcmp(kv[i].key, bad[k].kv.key)) legacy[m++] = kv[i];
        legacy[m++] = bad[k].kv;
        cr_assert_eq(meta_config(legacy, m, &c, &e), -1, "%s", bad[k].needle);
        cr_assert(strstr(e.msg, bad[k].needle), "expected \"%s\" in \"%s\"", bad[k].needle,
                  e.msg);
    }
    ff[5] = 1;
    cr_assert_eq(meta_config(kv, n, &c, &e), -1, "per-layer FFN widths that differ");
    cr_assert(strstr(e.msg, "differs between layers"), "message: %s", e.msg);
}

Test(gguf, meta_from_config_refuses_what_gguf_cannot_carry) {
    ModelConfig c = load_case("v3_yarn");
    GgufMeta m = {0};
    Err e = {{0}};
    c.rope.mscale = 1.0f; /* != mscale_all_dim 0.707 */
    cr_assert_eq(gguf_meta_from_config(&c, &m, &e), -1);
    cr_assert(strstr(e.msg, "mscale"), "message: %s", e.msg);
    c = load_case("v2_lite");
    c.moe_layer_freq = 2;
    cr_assert_eq(gguf_meta_from_config(&c, &m, &e), -1);
    cr_assert(strstr(e.msg, "moe_layer_freq"), "message: %s", e.msg);
    c = load_case("qwen2");
    c.rope.type = ROPE_LLAMA3;
    cr_assert_eq(gguf_meta_from_config(&c, &m, &e), -1);
    cr_assert(strstr(e.msg, "llama3"), "message: %s", e.msg);
    gguf_meta_free(&m);
    /* V2-Lite shape: q_lora_rank 0 is written (llama.cpp needs the key) */
    c = load_case("v2_lite");
    cr_assert_eq(gguf_meta_from_config(&c, &m, &e), 0, "%s", e.msg);
    int found = 0;
    for (int i = 0; i < m.n_kv; i++)
        if (!strcmp(m.kvs[i].key, "deepseek2.attention.q_lora_rank"))
            found = m.kvs[i].v.type == GGUF_TYPE_UINT32 && m.kvs[i].v.num.u == 0;
    cr_assert(found, "deepseek2.attention.q_lora_rank = 0 (u32) must be written");
    gguf_meta_free(&m);
}

/* ---- an independent parser ----------------------------------------------------------- */

/* "node"/"npm" from PATH, or NULL. */
static const char *which(const char *prog, char *buf, size_t n) {
    const char *path = getenv("PATH");
    if (!path) return NULL;
    const char *p = path;
    while (*p) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        snprintf(buf, n, "%.*s/%s", (int)len, p, prog);
        if (len && access(buf, X_OK) == 0) return buf;
        if (!end) break;
        p = end + 1;
    }
    return NULL;
}

/* tests/js_gguf, with its npm packages installed (npm ci, quietly, once:
 * serialised by a lock since tests run in parallel). */
static const char *js_dir(void) {
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s/../js_gguf", data_dir());
    char mod[1200], npm[1024];
    snprintf(mod, sizeof mod, "%s/node_modules/@huggingface/gguf/package.json", dir);
    int fd = open("/tmp/whale_js_gguf_npm.lock", O_RDWR | O_CREAT, 0666);
    cr_assert(fd >= 0, "cannot open the npm lock file");
    flock(fd, LOCK_EX);
    if (access(mod, F_OK) != 0) {
        cr_assert_not_null(which("npm", npm, sizeof npm), "npm is not in PATH (tests need it)");
        char *argv[] = {npm, "ci", "--prefix", dir, "--silent", "--no-audit", "--no-fund", NULL};
        HRun r;
        int rc = h_run(&r, argv, 600);
        cr_assert(rc == 0 && r.exited && r.code == 0, "%s: %s\n%s", r.cmd, h_run_status(&r),
                  r.err);
        h_run_free(&r);
    }
    flock(fd, LOCK_UN);
    close(fd);
    return dir;
}

static long long jnum_ll(const json_t *v) {
    if (json_is_integer(v)) return (long long)json_integer_value(v);
    if (json_is_string(v)) return strtoll(json_string_value(v), NULL, 10);
    return LLONG_MIN;
}

/* JS's view of one element of type t against ours. */
static void expect_js_scalar(const char *key, GgufType t, const GgufValue *v, const json_t *j) {
    char buf[32];
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_UINT16: case GGUF_TYPE_UINT32:
        cr_assert(json_is_integer(j) && (uint64_t)json_integer_value(j) == v->num.u, "%s", key);
        return;
    case GGUF_TYPE_INT8: case GGUF_TYPE_INT16: case GGUF_TYPE_INT32:
        cr_assert(json_is_integer(j) && json_integer_value(j) == v->num.i, "%s", key);
        return;
    case GGUF_TYPE_UINT64:
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)v->num.u);
        cr_assert(json_is_string(j) && !strcmp(json_string_value(j), buf), "%s: %s", key, buf);
        return;
    case GGUF_TYPE_INT64:
        snprintf(buf, sizeof buf, "%lld", (long long)v->num.i);
        cr_assert(json_is_string(j) && !strcmp(json_string_value(j), buf), "%s: %s", key, buf);
        return;
    case GGUF_TYPE_FLOAT32:
        cr_assert(json_is_number(j) && (float)json_number_value(j) == v->num.f32, "%s: %g vs %g",
                  key, json_number_value(j), (double)v->num.f32);
        return;
    case GGUF_TYPE_FLOAT64:
        cr_assert(json_is_number(j) && json_number_value(j) == v->num.f64, "%s", key);
        return;
    case GGUF_TYPE_BOOL:
        cr_assert(json_is_boolean(j) && (uint64_t)json_is_true(j) == v->num.u, "%s", key);
        return;
    case GGUF_TYPE_STRING:
        cr_assert(json_is_string(j) && json_string_length(j) == v->str.n &&
                      !memcmp(json_string_value(j), v->str.s, v->str.n),
                  "%s: string", key);
        return;
    default: cr_assert_fail("%s: type %d", key, t);
    }
}

Test(gguf, independent_parser_reads_our_file, .timeout = 600) {
    const char *dir = js_dir();
    float f32s[5] = {0, 0, 0, 1.5f, -3.25e-5f};
    GgufKV kv[40];
    int n_kv = all_types_kvs(kv, f32s, 0); /* no NaN, -0 or NUL: JSON cannot carry them */
    GgufWriteTensor t[8];
    int n_t = sample_tensors(t, 21);
    /* a realistic deepseek2 block too */
    GgufMeta meta = {0};
    Err e = {{0}};
    ModelConfig cfg = load_case("v3_bf16");
    cr_assert_eq(gguf_meta_from_config(&cfg, &meta, &e), 0, "%s", e.msg);
    for (int i = 1; i < n_kv; i++) cr_assert_eq(gguf_meta_add(&meta, kv[i], &e), 0);
    const char *path = h_path(g_dir, "js.gguf");
    cr_assert_eq(gguf_write(path, meta.kvs, meta.n_kv, t, n_t, 64, &e), 0, "%s", e.msg);
    gguf_meta_free(&meta);

    char node[1024], script[1200];
    cr_assert_not_null(which("node", node, sizeof node), "node is not in PATH (tests need it)");
    snprintf(script, sizeof script, "%s/dump.mjs", dir);
    char *argv[] = {node, script, (char *)path, NULL};
    HRun r;
    cr_assert_eq(h_run(&r, argv, 120), 0, "cannot run %s", node);
    cr_assert(r.exited && r.code == 0, "%s: %s\n%s", r.cmd, h_run_status(&r), r.err);
    json_error_t je;
    json_t *j = json_loads(r.out, 0, &je);
    cr_assert_not_null(j, "dump.mjs output is not JSON: %s", je.text);

    GgufFile g;
    cr_assert_eq(gguf_open(&g, path, &e), 0, "%s", e.msg);
    cr_assert_eq(json_integer_value(json_object_get(j, "version")), 3);
    cr_assert(json_is_true(json_object_get(j, "littleEndian")));
    cr_assert_eq(jnum_ll(json_object_get(j, "tensor_count")), g.n_tensors);
    cr_assert_eq(jnum_ll(json_object_get(j, "kv_count")), g.n_kv);
    cr_assert_eq(jnum_ll(json_object_get(j, "tensorDataOffset")), (long long)g.data_offset,
                 "data offset: JS %lld, whale %zu", jnum_ll(json_object_get(j, "tensorDataOffset")),
                 g.data_offset);
    json_t *jkv = json_object_get(j, "kv");
    cr_assert_eq(json_array_size(jkv), (size_t)g.n_kv, "JS sees %zu keys, whale %d",
                 json_array_size(jkv), g.n_kv);
    for (int i = 0; i < g.n_kv; i++) {
        const GgufKV *k = &g.kvs[i];
        json_t *o = json_array_get(jkv, (size_t)i);
        cr_assert_str_eq(json_string_value(json_object_get(o, "key")), k->key, "key %d", i);
        cr_assert_eq(json_integer_value(json_object_get(o, "type")), k->v.type, "%s type",
                     k->key);
        json_t *val = json_object_get(o, "value");
        if (k->v.type != GGUF_TYPE_ARRAY) {
            expect_js_scalar(k->key, k->v.type, &k->v, val);
            continue;
        }
        cr_assert_eq(json_integer_value(json_object_get(o, "subType")), k->v.arr_type,
                     "%s element type", k->key);
        cr_assert_eq(json_array_size(val), (size_t)k->v.arr_n, "%s length", k->key);
        for (uint64_t x = 0; x < k->v.arr_n; x++) {
            GgufValue el;
            gguf_value_at(&k->v, x, &el);
            expect_js_scalar(k->key, k->v.arr_type, &el, json_array_get(val, (size_t)x));
        }
    }
    json_t *jt = json_object_get(j, "tensors");
    cr_assert_eq(json_array_size(jt), (size_t)g.n_tensors);
    for (int i = 0; i < g.n_tensors; i++) {
        const GgufTensor *gt = &g.tensors[i];
        json_t *o = json_array_get(jt, (size_t)i);
        cr_assert_str_eq(json_string_value(json_object_get(o, "name")), gt->name);
        cr_assert_eq(json_integer_value(json_object_get(o, "n_dims")), gt->n_dims, "%s", gt->name);
        cr_assert_eq(json_integer_value(json_object_get(o, "dtype")), gt->type, "%s", gt->name);
        cr_assert_eq(jnum_ll(json_object_get(o, "offset")), (long long)gt->offset, "%s",
                     gt->name);
        json_t *shape = json_object_get(o, "shape");
        cr_assert_eq(json_array_size(shape), (size_t)gt->n_dims);
        for (int d = 0; d < gt->n_dims; d++)
            cr_assert_eq(jnum_ll(json_array_get(shape, (size_t)d)), gt->ne[d], "%s ne[%d]",
                         gt->name, d);
    }
    gguf_close(&g);
    json_decref(j);
    h_run_free(&r);
}
