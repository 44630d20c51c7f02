/* SPDX-License-Identifier: MIT */
/* io/safetensors: write/read round trips, sharded model directories, F8
 * block-scale dequantisation against a direct computation, and one test per
 * kind of hostile input, each checking that the error names the file and the
 * tensor. Fixtures live in a mkdtemp directory under /tmp, removed after. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"

static char g_dir[64];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void setup(void) {
    strcpy(g_dir, "/tmp/whale_st_XXXXXX");
    cr_assert_not_null(mkdtemp(g_dir), "mkdtemp failed");
}

static void teardown(void) {
    if (g_dir[0]) nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(safetensors, .init = setup, .fini = teardown);

/* A path inside the fixture directory; a ring of buffers so that a few can be
 * live at once. */
static const char *tp(const char *name) {
    static char bufs[8][512];
    static int k;
    char *b = bufs[k++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", g_dir, name);
    return b;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    cr_assert_eq(fwrite(data, 1, n, f), n, "short write to %s", path);
    fclose(f);
}

static void write_text(const char *path, const char *text) {
    write_bytes(path, text, strlen(text));
}

#define HLEN_AUTO UINT64_MAX

/* A hand-made safetensors file: 8-byte header length (hlen, or the real
 * length of hdr), the header text, then n data bytes. */
static void write_raw(const char *path, const char *hdr, uint64_t hlen, const void *data,
                      size_t n) {
    size_t len = strlen(hdr);
    if (hlen == HLEN_AUTO) hlen = len;
    unsigned char *buf = malloc(8 + len + n + 1);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(buf + 8, hdr, len);
    if (n) memcpy(buf + 8 + len, data, n);
    write_bytes(path, buf, 8 + len + n);
    free(buf);
}

/* st_open(path) must fail, leave st zeroed, and its message must contain
 * every string in needles (NULL-terminated). */
static void expect_open_fail(const char *path, const char *const *needles) {
    SafeTensors st;
    Err e = {{0}};
    int rc = st_open(&st, path, &e);
    cr_assert_eq(rc, -1, "st_open(%s): expected failure, got %d with %d tensors", path, rc,
                 st.n_tensors);
    cr_assert(st.n_tensors == 0 && st.tensors == NULL && st.files == NULL,
              "st_open failed but left state behind");
    cr_assert(e.msg[0], "st_open failed with an empty message");
    for (const char *const *n = needles; *n; n++)
        cr_assert(strstr(e.msg, *n), "error message: expected to contain \"%s\", got \"%s\"", *n,
                  e.msg);
    st_close(&st);
}
#define EXPECT_OPEN_FAIL(path, ...) expect_open_fail(path, (const char *const[]){__VA_ARGS__, NULL})

/* A bad single-file header with 16 data bytes; the error must name the file
 * and carry each needle. */
#define EXPECT_BAD_HEADER(hdr, ...)                                                                \
    do {                                                                                           \
        static const unsigned char zeros_[16];                                                     \
        const char *p_ = tp("bad.safetensors");                                                    \
        write_raw(p_, hdr, HLEN_AUTO, zeros_, sizeof zeros_);                                      \
        EXPECT_OPEN_FAIL(p_, "bad.safetensors", __VA_ARGS__);                                      \
    } while (0)

static uint32_t rng_next(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static const StTensor *must_find(const SafeTensors *st, const char *name) {
    const StTensor *t = st_find(st, name);
    cr_assert_not_null(t, "tensor '%s' not found", name);
    return t;
}

/* ---- round trips ----------------------------------------------------------- */

Test(safetensors, write_read_byte_exact) {
    float f32[12];
    uint16_t bf16[5], f16[4];
    int64_t i64[3] = {-1, INT64_MAX, 42};
    uint8_t u8[7] = {1, 2, 3, 4, 5, 6, 255}, f8[6] = {0x38, 0x7e, 0x01, 0x80, 0xfe, 0x40};
    int32_t i32 = -123456;
    float sc = 0.5f;
    for (int i = 0; i < 12; i++) f32[i] = (float)i * 1.25f - 3.0f;
    for (int i = 0; i < 5; i++) bf16[i] = f32_to_bf16((float)i - 2.5f);
    for (int i = 0; i < 4; i++) f16[i] = f32_to_f16((float)i * 0.1f);
    StWriteTensor w[] = {
        {"w.f32", DTYPE_F32, 2, {3, 4}, f32},
        {"w.bf16", DTYPE_BF16, 1, {5}, bf16},
        {"w.f16", DTYPE_F16, 2, {2, 2}, f16},
        {"w.i64", DTYPE_I64, 1, {3}, i64},
        {"w.u8", DTYPE_U8, 1, {7}, u8},
        {"scalar", DTYPE_I32, 0, {0}, &i32},
        {"empty", DTYPE_F32, 2, {0, 4}, NULL},
        {"w.f8", DTYPE_F8_E4M3, 2, {2, 3}, f8},
        {"w.f8_scale_inv", DTYPE_F32, 2, {1, 1}, &sc},
        {"unicode \xc3\xa9 \"quoted\"", DTYPE_U8, 1, {2}, u8},
    };
    int n = (int)(sizeof w / sizeof w[0]);
    Err e = {{0}};
    const char *path = tp("rt.safetensors");
    cr_assert_eq(st_write(path, w, n, &e), 0, "st_write: %s", e.msg);

    SafeTensors st;
    cr_assert_eq(st_open(&st, path, &e), 0, "st_open: %s", e.msg);
    cr_assert_eq(st.n_tensors, n, "n_tensors: expected %d, got %d", n, st.n_tensors);
    cr_assert_eq(st.n_files, 1, "n_files: expected 1, got %d", st.n_files);
    for (int i = 0; i < n; i++) {
        const StTensor *t = must_find(&st, w[i].name);
        cr_assert_eq(t->dtype, w[i].dtype, "%s dtype: expected %s, got %s", w[i].name,
                     dtype_name(w[i].dtype), dtype_name(t->dtype));
        cr_assert_eq(t->n_dims, w[i].n_dims, "%s n_dims: expected %d, got %d", w[i].name,
                     w[i].n_dims, t->n_dims);
        size_t bytes = dtype_size(w[i].dtype);
        for (int d = 0; d < t->n_dims; d++) {
            cr_assert_eq(t->shape[d], w[i].shape[d], "%s shape[%d]: expected %lld, got %lld",
                         w[i].name, d, (long long)w[i].shape[d], (long long)t->shape[d]);
            bytes *= (size_t)w[i].shape[d];
        }
        cr_assert_eq(t->n_bytes, bytes, "%s n_bytes: expected %zu, got %zu", w[i].name, bytes,
                     t->n_bytes);
        cr_assert_eq((size_t)st_numel(t) * dtype_size(t->dtype), bytes, "%s numel", w[i].name);
        if (bytes) cr_assert(memcmp(t->data, w[i].data, bytes) == 0, "%s data differs", w[i].name);
        cr_assert_str_eq(st_file_name(&st, t), path, "%s file name", w[i].name);
    }
    cr_assert_null(st_find(&st, "absent"), "st_find(absent) should be NULL");
    cr_assert_null(st_find(&st, "w.f8_scale"), "st_find must match whole names");
    cr_assert_eq(st_numel(must_find(&st, "scalar")), 1, "0-dim numel should be 1");

    /* The bytes on disk: length multiple of 8, metadata first, keys in the
     * given order, data contiguous from offset 0 to the end of the file. */
    const MappedFile *mf = &st.files[0];
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)mf->data[i] << (8 * i);
    cr_assert_eq(hlen % 8, 0, "header length %llu is not a multiple of 8",
                 (unsigned long long)hlen);
    const char *hdr = (const char *)mf->data + 8;
    const char *want_start = "{\"__metadata__\":{\"format\":\"pt\"},\"w.f32\":{\"dtype\":\"F32\","
                             "\"shape\":[3,4],\"data_offsets\":[0,48]}";
    cr_assert(strncmp(hdr, want_start, strlen(want_start)) == 0,
              "header start: expected %s, got %.*s", want_start, (int)strlen(want_start), hdr);
    const char *prev = hdr;
    for (int i = 0; i < n - 1; i++) {
        char key[64];
        snprintf(key, sizeof key, "\"%s\":{", w[i].name);
        const char *at = memmem(hdr, hlen, key, strlen(key));
        cr_assert(at && at > prev, "key %s missing or out of order in header", key);
        prev = at;
    }
    size_t total = 0;
    for (int i = 0; i < st.n_tensors; i++) total += st.tensors[i].n_bytes;
    cr_assert_eq(8 + hlen + total, mf->size, "file size: expected 8+%llu+%zu, got %zu",
                 (unsigned long long)hlen, total, mf->size);
    cr_assert_eq((const unsigned char *)must_find(&st, "w.f32")->data, mf->data + 8 + hlen,
                 "first tensor should start the data section");
    st_close(&st);
    st_close(&st); /* twice is fine: it leaves the struct zeroed */

    /* No temp file is left beside the output. */
    DIR *d = opendir(g_dir);
    struct dirent *de;
    while ((de = readdir(d)))
        cr_assert_null(strstr(de->d_name, ".tmp."), "temp file %s left behind", de->d_name);
    closedir(d);
}

Test(safetensors, close_zeroed) {
    SafeTensors st;
    memset(&st, 0, sizeof st);
    st_close(&st);
    cr_assert_null(st_find(&st, "x"), "st_find on an empty set");
}

Test(safetensors, parse_order_and_offsets) {
    float a[2] = {1, 2}, b[3] = {3, 4, 5};
    StWriteTensor w[] = {{"zeta", DTYPE_F32, 1, {2}, a}, {"alpha", DTYPE_F32, 1, {3}, b}};
    Err e = {{0}};
    const char *path = tp("o.safetensors");
    cr_assert_eq(st_write(path, w, 2, &e), 0, "st_write: %s", e.msg);
    SafeTensors st;
    cr_assert_eq(st_open(&st, path, &e), 0, "st_open: %s", e.msg);
    StTensor *ts;
    int n;
    cr_assert_eq(st_parse(st.files[0].data, st.files[0].size, "o", &ts, &n, &e), 0, "%s", e.msg);
    cr_assert_eq(n, 2, "n: expected 2, got %d", n);
    cr_assert_str_eq(ts[0].name, "zeta", "st_parse should list by offset; got %s first",
                     ts[0].name);
    cr_assert_eq((const char *)ts[1].data - (const char *)ts[0].data, 8,
                 "alpha should follow zeta without a gap");
    for (int i = 0; i < n; i++) free(ts[i].name);
    free(ts);
    /* st.tensors is sorted by name. */
    cr_assert_str_eq(st.tensors[0].name, "alpha", "st_open sorts by name");
    st_close(&st);
}

Test(safetensors, rewrite_replaces_and_failed_write_keeps_old) {
    float a[2] = {1, 2}, b[2] = {7, 8};
    Err e = {{0}};
    const char *path = tp("x.safetensors");
    StWriteTensor w1 = {"t", DTYPE_F32, 1, {2}, a}, w2 = {"t", DTYPE_F32, 1, {2}, b};
    cr_assert_eq(st_write(path, &w1, 1, &e), 0, "%s", e.msg);
    cr_assert_eq(st_write(path, &w2, 1, &e), 0, "%s", e.msg);
    StWriteTensor dup[2] = {w1, w1};
    cr_assert_eq(st_write(path, dup, 2, &e), -1, "duplicate names must fail");
    cr_assert(strstr(e.msg, "'t'") && strstr(e.msg, "x.safetensors"), "message: %s", e.msg);
    SafeTensors st;
    cr_assert_eq(st_open(&st, path, &e), 0, "%s", e.msg);
    const float *got = must_find(&st, "t")->data;
    cr_assert(got[0] == 7 && got[1] == 8, "expected {7, 8}, got {%g, %g}", (double)got[0],
              (double)got[1]);
    st_close(&st);
}

Test(safetensors, write_rejects_bad_descriptions) {
    float a[4] = {0};
    Err e = {{0}};
    const char *path = tp("w.safetensors");
    struct {
        StWriteTensor t;
        const char *needle;
    } cases[] = {
        {{"", DTYPE_F32, 1, {1}, a}, "empty or reserved"},
        {{"__metadata__", DTYPE_F32, 1, {1}, a}, "__metadata__"},
        {{"nine", DTYPE_F32, 9, {1}, a}, "'nine'"},
        {{"neg", DTYPE_F32, 1, {-1}, a}, "'neg'"},
        {{"nodata", DTYPE_F32, 1, {4}, NULL}, "'nodata'"},
        {{"baddtype", (DType)99, 1, {1}, a}, "'baddtype'"},
        {{"huge", DTYPE_F32, 3, {1ll << 40, 1ll << 40, 1ll << 40}, a}, "'huge'"},
        {{"bad\xff utf8", DTYPE_F32, 1, {1}, a}, "UTF-8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        e.msg[0] = 0;
        cr_assert_eq(st_write(path, &cases[i].t, 1, &e), -1, "case %zu (%s) should fail", i,
                     cases[i].needle);
        cr_assert(strstr(e.msg, cases[i].needle) && strstr(e.msg, "w.safetensors"),
                  "case %zu: expected message with \"%s\", got \"%s\"", i, cases[i].needle,
                  e.msg);
        cr_assert_eq(access(path, F_OK), -1, "case %zu: a failed write created the file", i);
    }
    StWriteTensor ok = {"t", DTYPE_F32, 1, {1}, a};
    cr_assert_eq(st_write(tp("no/such/dir/x.safetensors"), &ok, 1, &e), -1,
                 "writing into a missing directory should fail");
    cr_assert(strstr(e.msg, "no/such/dir/x.safetensors"), "message: %s", e.msg);
}

/* ---- conversion to float32 ------------------------------------------------ */

Test(safetensors, to_f32_float_types_and_integer_error) {
    float src[6] = {1.5f, -2.25f, 0.0f, 1e-3f, 65504.0f, -7.0f};
    uint16_t b[6], h[6];
    for (int i = 0; i < 6; i++) {
        b[i] = f32_to_bf16(src[i]);
        h[i] = f32_to_f16(src[i]);
    }
    int32_t ints[2] = {1, 2};
    StWriteTensor w[] = {{"f", DTYPE_F32, 2, {2, 3}, src},
                         {"b", DTYPE_BF16, 2, {2, 3}, b},
                         {"h", DTYPE_F16, 2, {2, 3}, h},
                         {"i", DTYPE_I32, 1, {2}, ints}};
    Err e = {{0}};
    const char *path = tp("c.safetensors");
    cr_assert_eq(st_write(path, w, 4, &e), 0, "%s", e.msg);
    SafeTensors st;
    cr_assert_eq(st_open(&st, path, &e), 0, "%s", e.msg);
    float out[6];
    cr_assert_eq(st_to_f32(&st, must_find(&st, "f"), out, &e), 0, "%s", e.msg);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(out[i], src[i], "F32[%d]: expected %g, got %g", i, (double)src[i],
                     (double)out[i]);
    cr_assert_eq(st_to_f32(&st, must_find(&st, "b"), out, &e), 0, "%s", e.msg);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(out[i], bf16_to_f32(b[i]), "BF16[%d]: expected %g, got %g", i,
                     (double)bf16_to_f32(b[i]), (double)out[i]);
    cr_assert_eq(st_to_f32(&st, must_find(&st, "h"), out, &e), 0, "%s", e.msg);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(out[i], f16_to_f32(h[i]), "F16[%d]: expected %g, got %g", i,
                     (double)f16_to_f32(h[i]), (double)out[i]);
    cr_assert_eq(st_to_f32(&st, must_find(&st, "i"), out, &e), -1, "I32 is not a float type");
    cr_assert(strstr(e.msg, "'i'") && strstr(e.msg, "c.safetensors") && strstr(e.msg, "I32"),
              "message: %s", e.msg);
    st_close(&st);
}

/* A header of odd length puts the data section at an odd file offset, so the
 * BF16/F16/F32 data and the F8 scale are misaligned in the mapping. The
 * conversion must still be right (and clean under UBSan). */
Test(safetensors, to_f32_misaligned_data) {
    const char *hdr = "{\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]},"
                      "\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[6,10]},"
                      "\"f\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[10,14]},"
                      "\"q\":{\"dtype\":\"F8_E4M3\",\"shape\":[1,2],\"data_offsets\":[14,16]},"
                      "\"q_scale_inv\":{\"dtype\":\"F32\",\"shape\":[1,1],"
                      "\"data_offsets\":[16,20]}} ";
    char hdrbuf[512];
    snprintf(hdrbuf, sizeof hdrbuf, "%s", hdr);
    if (strlen(hdrbuf) % 2 == 0) strcat(hdrbuf, " ");
    unsigned char data[20];
    uint16_t bv[3] = {f32_to_bf16(1.0f), f32_to_bf16(-3.0f), f32_to_bf16(0.5f)};
    uint16_t hv[2] = {f32_to_f16(2.0f), f32_to_f16(-0.25f)};
    float fv = 9.5f, sv = 4.0f;
    memcpy(data, bv, 6);
    memcpy(data + 6, hv, 4);
    memcpy(data + 10, &fv, 4);
    data[14] = 0x38; /* 1.0 */
    data[15] = 0xc0; /* -2.0 */
    memcpy(data + 16, &sv, 4);
    const char *path = tp("odd.safetensors");
    write_raw(path, hdrbuf, HLEN_AUTO, data, sizeof data);
    SafeTensors st;
    Err e = {{0}};
    cr_assert_eq(st_open(&st, path, &e), 0, "%s", e.msg);
    cr_assert_eq((uintptr_t)must_find(&st, "b")->data % 2, 1, "fixture should be misaligned");
    float out[3];
    cr_assert_eq(st_to_f32(&st, must_find(&st, "b"), out, &e), 0, "%s", e.msg);
    cr_assert(out[0] == 1.0f && out[1] == -3.0f && out[2] == 0.5f,
              "BF16: expected {1, -3, 0.5}, got {%g, %g, %g}", (double)out[0], (double)out[1],
              (double)out[2]);
    cr_assert_eq(st_to_f32(&st, must_find(&st, "h"), out, &e), 0, "%s", e.msg);
    cr_assert(out[0] == 2.0f && out[1] == -0.25f, "F16: expected {2, -0.25}, got {%g, %g}",
              (double)out[0], (double)out[1]);
    cr_assert_eq(st_to_f32(&st, must_find(&st, "f"), out, &e), 0, "%s", e.msg);
    cr_assert_eq(out[0], 9.5f, "F32: expected 9.5, got %g", (double)out[0]);
    cr_assert_eq(st_to_f32(&st, must_find(&st, "q"), out, &e), 0, "%s", e.msg);
    cr_assert(out[0] == 4.0f && out[1] == -8.0f, "F8: expected {4, -8}, got {%g, %g}",
              (double)out[0], (double)out[1]);
    st_close(&st);
}

/* ---- F8_E4M3 block dequantisation ------------------------------------------ */

/* Independent decode: 1 sign, 4 exponent bits bias 7, 3 mantissa bits. */
static double f8_direct(unsigned b) {
    int s = (b >> 7) & 1, ex = (b >> 3) & 0xf, m = b & 7;
    if (ex == 15 && m == 7) return NAN;
    double v = ex == 0 ? ldexp(m / 8.0, -6) : ldexp(1.0 + m / 8.0, ex - 7);
    return s ? -v : v;
}

Test(safetensors, f8_block_dequant_200x300) {
    enum { ROWS = 200, COLS = 300, BR = 2, BC = 3 }; /* both dims end in a partial block */
    uint8_t *w = malloc(ROWS * COLS);
    float scale[BR * BC] = {0.5f, 2.0f, 1.0f / 3.0f, -1.5f, 1e-3f, 7.25f};
    uint32_t s = 12345;
    for (int i = 0; i < ROWS * COLS; i++) w[i] = (uint8_t)rng_next(&s);
    w[0] = 0x7e;                 /* 448 */
    w[COLS + 1] = 0x7f;          /* NaN */
    w[ROWS * COLS - 1] = 0x01;   /* smallest subnormal, in the corner block */
    const char *wn = "model.layers.3.mlp.experts.0.down_proj.weight";
    char sn[128];
    snprintf(sn, sizeof sn, "%s_scale_inv", wn);
    float other = 1;
    StWriteTensor wt[] = {{"other", DTYPE_F32, 1, {1}, &other},
                          {sn, DTYPE_F32, 2, {BR, BC}, scale},
                          {wn, DTYPE_F8_E4M3, 2, {ROWS, COLS}, w}};
    Err e = {{0}};
    const char *path = tp("f8.safetensors");
    cr_assert_eq(st_write(path, wt, 3, &e), 0, "%s", e.msg);
    SafeTensors st;
    cr_assert_eq(st_open(&st, path, &e), 0, "%s", e.msg);
    float *out = malloc(sizeof(float) * ROWS * COLS);
    cr_assert_eq(st_to_f32(&st, must_find(&st, wn), out, &e), 0, "%s", e.msg);
    int bad = 0, first = -1;
    double max_diff = 0;
    for (int i = 0; i < ROWS; i++) {
        for (int j = 0; j < COLS; j++) {
            float want = (float)f8_direct(w[i * COLS + j]) * scale[(i / 128) * BC + j / 128];
            float got = out[i * COLS + j];
            if (isnan(want) && isnan(got)) continue;
            if (got != want) {
                if (first < 0) first = i * COLS + j;
                bad++;
                double d = fabs((double)got - (double)want);
                if (!(d <= max_diff)) max_diff = d;
            }
        }
    }
    cr_assert_eq(bad, 0,
                 "%d mismatches, max |diff| %g; first at (%d, %d): expected %g, got %g", bad,
                 max_diff, first / COLS, first % COLS,
                 first < 0 ? 0.0
                           : f8_direct(w[first]) *
                                 scale[(first / COLS / 128) * BC + (first % COLS) / 128],
                 first < 0 ? 0.0 : (double)out[first]);
    cr_assert_eq(out[0], 448.0f * 0.5f, "corner (0,0): expected 224, got %g", (double)out[0]);
    cr_assert(isnan(out[COLS + 1]), "(1,1) should be NaN");
    cr_assert_eq(out[ROWS * COLS - 1], 0x1p-9f * 7.25f, "corner (199,299): expected %g, got %g",
                 (double)(0x1p-9f * 7.25f), (double)out[ROWS * COLS - 1]);
    st_close(&st);
    free(out);
    free(w);
}

/* An F8 weight file whose scale is given by (dtype, n_dims, shape); scale
 * NULL name means no scale tensor at all. */
static const char *write_f8_fixture(const char *scale_name, DType sdt, int snd, int64_t s0,
                                    int64_t s1) {
    static uint8_t w[130 * 4];
    static float sc[16];
    const char *path = tp("f8bad.safetensors");
    StWriteTensor t[2] = {{"blk.w", DTYPE_F8_E4M3, 2, {130, 4}, w},
                          {scale_name, sdt, snd, {s0, s1}, sc}};
    Err e = {{0}};
    cr_assert_eq(st_write(path, t, scale_name ? 2 : 1, &e), 0, "%s", e.msg);
    return path;
}

static void expect_f8_fail(const char *path, const char *const *needles) {
    SafeTensors st;
    Err e = {{0}};
    cr_assert_eq(st_open(&st, path, &e), 0, "%s", e.msg);
    float *out = malloc(sizeof(float) * 130 * 4);
    cr_assert_eq(st_to_f32(&st, must_find(&st, "blk.w"), out, &e), -1,
                 "st_to_f32 should fail");
    for (const char *const *n = needles; *n; n++)
        cr_assert(strstr(e.msg, *n), "error message: expected to contain \"%s\", got \"%s\"", *n,
                  e.msg);
    free(out);
    st_close(&st);
}
#define EXPECT_F8_FAIL(path, ...) expect_f8_fail(path, (const char *const[]){__VA_ARGS__, NULL})

Test(safetensors, f8_without_scale) {
    const char *p = write_f8_fixture(NULL, DTYPE_F32, 2, 2, 1);
    EXPECT_F8_FAIL(p, "f8bad.safetensors", "'blk.w'", "'blk.w_scale_inv'");
}

Test(safetensors, f8_scale_wrong_shape) {
    const char *p = write_f8_fixture("blk.w_scale_inv", DTYPE_F32, 2, 1, 1);
    EXPECT_F8_FAIL(p, "f8bad.safetensors", "'blk.w'", "'blk.w_scale_inv'", "[2, 1]", "[1, 1]");
}

Test(safetensors, f8_scale_wrong_dims) {
    const char *p = write_f8_fixture("blk.w_scale_inv", DTYPE_F32, 1, 2, 0);
    EXPECT_F8_FAIL(p, "f8bad.safetensors", "'blk.w'", "'blk.w_scale_inv'");
}

Test(safetensors, f8_scale_wrong_dtype) {
    const char *p = write_f8_fixture("blk.w_scale_inv", DTYPE_BF16, 2, 2, 1);
    EXPECT_F8_FAIL(p, "f8bad.safetensors", "'blk.w'", "'blk.w_scale_inv'", "BF16");
}

Test(safetensors, f8_not_2d) {
    uint8_t w[8] = {0};
    float sc = 1;
    StWriteTensor t[2] = {{"v", DTYPE_F8_E4M3, 1, {8}, w},
                          {"v_scale_inv", DTYPE_F32, 2, {1, 1}, &sc}};
    Err e = {{0}};
    const char *path = tp("f8bad.safetensors");
    cr_assert_eq(st_write(path, t, 2, &e), 0, "%s", e.msg);
    SafeTensors st;
    cr_assert_eq(st_open(&st, path, &e), 0, "%s", e.msg);
    float out[8];
    cr_assert_eq(st_to_f32(&st, must_find(&st, "v"), out, &e), -1, "1-D F8 should fail");
    cr_assert(strstr(e.msg, "'v'") && strstr(e.msg, "f8bad.safetensors"), "message: %s", e.msg);
    st_close(&st);
}

/* ---- model directories ------------------------------------------------------ */

static void write_two_shards(const char *dir, float *a, float *b, float *c, float *d) {
    StWriteTensor s1[] = {{"a", DTYPE_F32, 1, {2}, a}, {"b", DTYPE_F32, 1, {3}, b}};
    StWriteTensor s2[] = {{"c", DTYPE_F32, 2, {1, 2}, c}, {"d", DTYPE_F32, 0, {0}, d}};
    char p[512];
    Err e = {{0}};
    snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", dir);
    cr_assert_eq(st_write(p, s1, 2, &e), 0, "%s", e.msg);
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", dir);
    cr_assert_eq(st_write(p, s2, 2, &e), 0, "%s", e.msg);
}

static void write_index(const char *dir, const char *weight_map_json) {
    char p[512], text[2048];
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    snprintf(text, sizeof text, "{\"metadata\": {\"total_size\": 36},\n \"weight_map\": %s}\n",
             weight_map_json);
    write_text(p, text);
}

static const char *GOOD_MAP = "{\"a\": \"model-00001-of-00002.safetensors\","
                              " \"c\": \"model-00002-of-00002.safetensors\","
                              " \"b\": \"model-00001-of-00002.safetensors\","
                              " \"d\": \"model-00002-of-00002.safetensors\"}";

Test(safetensors, sharded_directory) {
    float a[2] = {1, 2}, b[3] = {3, 4, 5}, c[2] = {6, 7}, d[1] = {8};
    write_two_shards(g_dir, a, b, c, d);
    write_index(g_dir, GOOD_MAP);
    SafeTensors st;
    Err e = {{0}};
    cr_assert_eq(st_open(&st, g_dir, &e), 0, "st_open(dir): %s", e.msg);
    cr_assert_eq(st.n_files, 2, "each shard opened once: expected 2 files, got %d", st.n_files);
    cr_assert_eq(st.n_tensors, 4, "expected 4 tensors, got %d", st.n_tensors);
    const struct {
        const char *name;
        const float *v;
        int n;
        const char *shard;
    } want[] = {{"a", a, 2, "model-00001-of-00002.safetensors"},
                {"b", b, 3, "model-00001-of-00002.safetensors"},
                {"c", c, 2, "model-00002-of-00002.safetensors"},
                {"d", d, 1, "model-00002-of-00002.safetensors"}};
    for (int i = 0; i < 4; i++) {
        const StTensor *t = must_find(&st, want[i].name);
        cr_assert_eq(st_numel(t), want[i].n, "%s numel: expected %d, got %lld", want[i].name,
                     want[i].n, (long long)st_numel(t));
        cr_assert(memcmp(t->data, want[i].v, sizeof(float) * (size_t)want[i].n) == 0,
                  "%s data differs", want[i].name);
        const char *fn = st_file_name(&st, t);
        size_t lf = strlen(fn), ls = strlen(want[i].shard);
        cr_assert(lf >= ls && strcmp(fn + lf - ls, want[i].shard) == 0,
                  "%s: expected shard %s, got %s", want[i].name, want[i].shard, fn);
    }
    st_close(&st);
}

Test(safetensors, directory_with_single_file) {
    float a[2] = {1, 2};
    StWriteTensor t = {"only", DTYPE_F32, 1, {2}, a};
    Err e = {{0}};
    cr_assert_eq(st_write(tp("model.safetensors"), &t, 1, &e), 0, "%s", e.msg);
    SafeTensors st;
    cr_assert_eq(st_open(&st, g_dir, &e), 0, "%s", e.msg);
    cr_assert_eq(st.n_tensors, 1, "expected 1 tensor, got %d", st.n_tensors);
    must_find(&st, "only");
    st_close(&st);
}

Test(safetensors, directory_without_weights) {
    EXPECT_OPEN_FAIL(g_dir, g_dir, "model.safetensors");
}

Test(safetensors, missing_file) {
    EXPECT_OPEN_FAIL(tp("nope.safetensors"), "nope.safetensors");
}

Test(safetensors, index_missing_shard) {
    float a[2] = {1, 2}, b[3] = {3, 4, 5}, c[2] = {6, 7}, d[1] = {8};
    write_two_shards(g_dir, a, b, c, d);
    write_index(g_dir, "{\"a\": \"model-00001-of-00002.safetensors\","
                       " \"z\": \"model-00009-of-00009.safetensors\"}");
    EXPECT_OPEN_FAIL(g_dir, "model-00009-of-00009.safetensors", "'z'",
                     "model.safetensors.index.json");
}

Test(safetensors, index_missing_tensor) {
    float a[2] = {1, 2}, b[3] = {3, 4, 5}, c[2] = {6, 7}, d[1] = {8};
    write_two_shards(g_dir, a, b, c, d);
    write_index(g_dir, "{\"a\": \"model-00001-of-00002.safetensors\","
                       " \"ghost\": \"model-00002-of-00002.safetensors\"}");
    EXPECT_OPEN_FAIL(g_dir, "model-00002-of-00002.safetensors", "'ghost'");
}

Test(safetensors, index_tensor_in_wrong_shard) {
    float a[2] = {1, 2}, b[3] = {3, 4, 5}, c[2] = {6, 7}, d[1] = {8};
    write_two_shards(g_dir, a, b, c, d);
    write_index(g_dir, "{\"a\": \"model-00002-of-00002.safetensors\","
                       " \"c\": \"model-00001-of-00002.safetensors\"}");
    EXPECT_OPEN_FAIL(g_dir, "'a'", "model-00001-of-00002.safetensors",
                     "model-00002-of-00002.safetensors");
}

Test(safetensors, index_duplicate_across_shards) {
    float a[2] = {1, 2};
    StWriteTensor t = {"a", DTYPE_F32, 1, {2}, a};
    Err e = {{0}};
    cr_assert_eq(st_write(tp("s1.safetensors"), &t, 1, &e), 0, "%s", e.msg);
    cr_assert_eq(st_write(tp("s2.safetensors"), &t, 1, &e), 0, "%s", e.msg);
    write_index(g_dir, "{\"a\": \"s1.safetensors\", \"x\": \"s2.safetensors\"}");
    EXPECT_OPEN_FAIL(g_dir, "'a'", "s1.safetensors", "s2.safetensors");
}

/* The escaping target exists and is valid, so only the name check stops it. */
Test(safetensors, index_shard_path_escapes_directory) {
    float a[2] = {1, 2};
    StWriteTensor t = {"a", DTYPE_F32, 1, {2}, a};
    Err e = {{0}};
    cr_assert_eq(st_write(tp("outside.safetensors"), &t, 1, &e), 0, "%s", e.msg);
    cr_assert_eq(mkdir(tp("model"), 0755), 0, "mkdir");
    cr_assert_eq(mkdir(tp("model/sub"), 0755), 0, "mkdir");
    cr_assert_eq(st_write(tp("model/sub/in.safetensors"), &t, 1, &e), 0, "%s", e.msg);
    char abs_map[600];
    snprintf(abs_map, sizeof abs_map, "{\"a\": \"%s\"}", tp("outside.safetensors"));
    const char *maps[] = {"{\"a\": \"../outside.safetensors\"}", "{\"a\": \"sub/in.safetensors\"}",
                          abs_map, "{\"a\": \"..\"}", "{\"a\": \"\"}",
                          "{\"a\": \"x\\u0000/../../outside.safetensors\"}"};
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++) {
        write_index(tp("model"), maps[i]);
        EXPECT_OPEN_FAIL(tp("model"), "'a'", "model.safetensors.index.json",
                         "not a plain file name");
    }
}

Test(safetensors, index_bad_json_and_types) {
    write_text(tp("model.safetensors.index.json"), "{\n  \"weight_map\": {\n    \"a\": ,\n}\n");
    EXPECT_OPEN_FAIL(g_dir, "model.safetensors.index.json", ":3:");
    write_index(g_dir, "[\"a\"]");
    EXPECT_OPEN_FAIL(g_dir, "model.safetensors.index.json", "weight_map");
    write_index(g_dir, "{\"a\": 5}");
    EXPECT_OPEN_FAIL(g_dir, "model.safetensors.index.json", "'a'", "not a string");
    write_text(tp("model.safetensors.index.json"), "{\"metadata\": {}}");
    EXPECT_OPEN_FAIL(g_dir, "model.safetensors.index.json", "weight_map");
    write_text(tp("model.safetensors.index.json"), "[]");
    EXPECT_OPEN_FAIL(g_dir, "model.safetensors.index.json");
}

/* ---- hostile single files ---------------------------------------------------- */

Test(safetensors, truncated_file) {
    const char *p = tp("bad.safetensors");
    write_bytes(p, "\x10\0\0\0\0", 5);
    EXPECT_OPEN_FAIL(p, "bad.safetensors", "shorter than");
    write_bytes(p, "", 0);
    EXPECT_OPEN_FAIL(p, "bad.safetensors", "0 bytes");
}

Test(safetensors, header_length_past_end) {
    const char *p = tp("bad.safetensors");
    write_raw(p, "{}", 1000, NULL, 0);
    EXPECT_OPEN_FAIL(p, "bad.safetensors", "header length 1000", "past the end");
    /* One byte too many is enough. */
    write_raw(p, "{}      ", 9, NULL, 0);
    EXPECT_OPEN_FAIL(p, "bad.safetensors", "header length 9", "past the end");
}

Test(safetensors, header_length_absurd) {
    const char *p = tp("bad.safetensors");
    write_raw(p, "{}", (uint64_t)1 << 40, NULL, 0);
    EXPECT_OPEN_FAIL(p, "bad.safetensors", "absurd");
    write_raw(p, "{}", UINT64_MAX - 1, NULL, 0); /* 8 + hlen would wrap */
    EXPECT_OPEN_FAIL(p, "bad.safetensors", "absurd");
}

Test(safetensors, bad_json_reports_line_column) {
    EXPECT_BAD_HEADER("{\n  \"w\": {\"dtype\": \"F32\",\n    \"shape\": [2,, 2]}\n}",
                      "line 3, column", "not valid JSON");
    EXPECT_BAD_HEADER("{\"w\": 1} trailing", "line 1, column", "not valid JSON");
    EXPECT_BAD_HEADER("", "not valid JSON");
}

Test(safetensors, header_not_object) {
    EXPECT_BAD_HEADER("[1, 2, 3]", "not a JSON object");
}

Test(safetensors, entry_not_object) {
    EXPECT_BAD_HEADER("{\"w.weight\": [1, 2]}", "'w.weight'", "not a JSON object");
}

Test(safetensors, missing_dtype) {
    EXPECT_BAD_HEADER("{\"w\": {\"shape\": [2], \"data_offsets\": [0, 8]}}", "'w'", "dtype");
}

Test(safetensors, unknown_dtype) {
    EXPECT_BAD_HEADER("{\"w\": {\"dtype\": \"F64\", \"shape\": [2], \"data_offsets\": [0, 16]}}",
                      "'w'", "unknown dtype 'F64'");
    EXPECT_BAD_HEADER("{\"w\": {\"dtype\": 4, \"shape\": [2], \"data_offsets\": [0, 8]}}", "'w'",
                      "dtype");
}

Test(safetensors, bad_shape) {
    EXPECT_BAD_HEADER("{\"w\": {\"dtype\": \"F32\", \"shape\": [-2], \"data_offsets\": [0, 8]}}",
                      "'w'", "shape[0]");
    EXPECT_BAD_HEADER("{\"w\": {\"dtype\": \"F32\", \"shape\": [2.0], \"data_offsets\": [0, 8]}}",
                      "'w'", "shape[0]");
    EXPECT_BAD_HEADER("{\"w\": {\"dtype\": \"F32\", \"shape\": [1, \"2\"], "
                      "\"data_offsets\": [0, 8]}}",
                      "'w'", "shape[1]");
    EXPECT_BAD_HEADER("{\"w\": {\"dtype\": \"F32\", \"shape\": 2, \"data_offsets\": [0, 8]}}",
                      "'w'", "shape");
    EXPECT_BAD_HEADER("{\"w\": {\"dtype\": \"F32\", \"data_offsets\": [0, 8]}}", "'w'", "shape");
}

Test(safetensors, too_many_dims) {
    EXPECT_BAD_HEADER("{\"w\": {\"dtype\": \"U8\", \"shape\": [1,1,1,1,1,1,1,1,1], "
                      "\"data_offsets\": [0, 1]}}",
                      "'w'", "9 dims");
}

Test(safetensors, element_count_overflow) {
    EXPECT_BAD_HEADER("{\"w\": {\"dtype\": \"U8\", \"shape\": [4294967296, 4294967296], "
                      "\"data_offsets\": [0, 0]}}",
                      "'w'", "overflow");
    EXPECT_BAD_HEADER("{\"w\": {\"dtype\": \"I64\", \"shape\": [4611686018427387904], "
                      "\"data_offsets\": [0, 0]}}",
                      "'w'", "overflow");
}

Test(safetensors, offsets_malformed) {
    EXPECT_BAD_HEADER("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0]}}",
                      "'w'", "data_offsets");
    EXPECT_BAD_HEADER("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, \"8\"]}}",
                      "'w'", "data_offsets");
    EXPECT_BAD_HEADER("{\"w\": {\"dtype\": \"F32\", \"shape\": [2]}}", "'w'", "data_offsets");
    EXPECT_BAD_HEADER("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}}",
                      "'w'", "begin <= end");
    EXPECT_BAD_HEADER("{\"w\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [-4, -4]}}",
                      "'w'", "begin <= end");
}

Test(safetensors, offsets_out_of_range) {
    /* 16 data bytes; 24 would be needed. */
    EXPECT_BAD_HEADER("{\"w\": {\"dtype\": \"F32\", \"shape\": [6], \"data_offsets\": [0, 24]}}",
                      "'w'", "past the end of the data section");
    EXPECT_BAD_HEADER("{\"w\": {\"dtype\": \"U8\", \"shape\": [1], "
                      "\"data_offsets\": [9223372036854775806, 9223372036854775807]}}",
                      "'w'", "past the end");
}

Test(safetensors, byte_count_disagrees_with_shape) {
    EXPECT_BAD_HEADER("{\"w\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}",
                      "'w'", "span 8 bytes", "needs 12");
    EXPECT_BAD_HEADER("{\"w\": {\"dtype\": \"BF16\", \"shape\": [2, 2], "
                      "\"data_offsets\": [0, 16]}}",
                      "'w'", "needs 8");
}

Test(safetensors, overlapping_tensors) {
    EXPECT_BAD_HEADER("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                      " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
                      "'a'", "'b'", "overlap");
    /* Listed out of offset order; the overlap is between the 2nd and 3rd by
     * offset and must still be found. */
    EXPECT_BAD_HEADER("{\"c\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [12, 16]},"
                      " \"a\": {\"dtype\": \"U8\", \"shape\": [8], \"data_offsets\": [0, 8]},"
                      " \"b\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [7, 8]}}",
                      "'a'", "'b'", "overlap");
    /* Same offsets twice. */
    EXPECT_BAD_HEADER("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                      " \"b\": {\"dtype\": \"I32\", \"shape\": [2], \"data_offsets\": [0, 8]}}",
                      "overlap");
}

Test(safetensors, empty_tensors_and_gaps_are_fine) {
    static const unsigned char data[16];
    const char *p = tp("ok.safetensors");
    write_raw(p,
              "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
              " \"e\": {\"dtype\": \"F32\", \"shape\": [0, 3], \"data_offsets\": [4, 4]},"
              " \"b\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [12, 16]},"
              " \"__metadata__\": {\"format\": \"pt\", \"x\": \"y\"}}",
              HLEN_AUTO, data, sizeof data);
    SafeTensors st;
    Err e = {{0}};
    cr_assert_eq(st_open(&st, p, &e), 0, "%s", e.msg);
    cr_assert_eq(st.n_tensors, 3, "expected 3 tensors, got %d", st.n_tensors);
    cr_assert_eq(must_find(&st, "e")->n_bytes, 0, "empty tensor has 0 bytes");
    st_close(&st);
}

Test(safetensors, duplicate_names) {
    EXPECT_BAD_HEADER("{\"w\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]},"
                      " \"w\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [1, 2]}}",
                      "duplicate", "\"w\"");
}

Test(safetensors, bad_metadata) {
    EXPECT_BAD_HEADER("{\"__metadata__\": {\"format\": 1}}", "__metadata__", "'format'");
    EXPECT_BAD_HEADER("{\"__metadata__\": \"pt\"}", "__metadata__");
}

Test(safetensors, nul_in_name_rejected) {
    EXPECT_BAD_HEADER("{\"a\\u0000b\": {\"dtype\": \"U8\", \"shape\": [1], "
                      "\"data_offsets\": [0, 1]}}",
                      "not valid JSON");
}

/* Every prefix of a valid file, and every single-byte corruption of its
 * header, must parse or fail cleanly; a success must only describe bytes
 * inside the buffer. Each image is its own exact-size allocation so that
 * AddressSanitizer sees any over-read. */
static void check_parse_image(const unsigned char *img, size_t n) {
    unsigned char *buf = malloc(n ? n : 1);
    memcpy(buf, img, n);
    StTensor *ts = NULL;
    int nt = -1;
    Err e = {{0}};
    if (st_parse(buf, n, "img", &ts, &nt, &e) == 0) {
        for (int i = 0; i < nt; i++) {
            const unsigned char *d = ts[i].data;
            cr_assert(d >= buf + 8 && d + ts[i].n_bytes <= buf + n,
                      "tensor %s lies outside the %zu-byte image", ts[i].name, n);
            free(ts[i].name);
        }
        free(ts);
    } else {
        cr_assert(ts == NULL && nt == 0, "failed parse must return no tensors");
        cr_assert(strncmp(e.msg, "img", 3) == 0, "message should start with the file: %s", e.msg);
    }
    free(buf);
}

Test(safetensors, truncations_and_corruptions_do_not_crash) {
    float a[4] = {1, 2, 3, 4};
    uint16_t b[3] = {1, 2, 3};
    uint8_t q[4] = {0x38, 0x40, 0x48, 0x50};
    float s = 1;
    StWriteTensor w[] = {{"a", DTYPE_F32, 2, {2, 2}, a},
                         {"b", DTYPE_BF16, 1, {3}, b},
                         {"q", DTYPE_F8_E4M3, 2, {2, 2}, q},
                         {"q_scale_inv", DTYPE_F32, 2, {1, 1}, &s}};
    Err e = {{0}};
    const char *path = tp("fz.safetensors");
    cr_assert_eq(st_write(path, w, 4, &e), 0, "%s", e.msg);
    SafeTensors st;
    cr_assert_eq(st_open(&st, path, &e), 0, "%s", e.msg);
    size_t n = st.files[0].size;
    unsigned char *img = malloc(n);
    memcpy(img, st.files[0].data, n);
    st_close(&st);

    for (size_t len = 0; len <= n; len++) check_parse_image(img, len);
    static const unsigned char subs[] = {0x00, 0xff, '9', '-', '"', '}', ']', ',', ' ', '1'};
    size_t hdr_end = 8 + (size_t)img[0] + ((size_t)img[1] << 8);
    for (size_t i = 0; i < hdr_end && i < n; i++) {
        unsigned char keep = img[i];
        for (size_t k = 0; k < sizeof subs; k++) {
            img[i] = subs[k];
            check_parse_image(img, n);
        }
        img[i] = keep;
    }
    free(img);
}

/* st_write_index lists what the shards hold; the index opens by its own
 * path (as optimizer.safetensors.index.json does) and as a directory's. */
Test(safetensors, written_index_opens_by_path_and_directory) {
    float a[2] = {1, 2}, b[3] = {3, 4, 5}, c[2] = {6, 7}, d[1] = {8};
    write_two_shards(g_dir, a, b, c, d);
    const char *shards[] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
    Err e = {{0}};
    cr_assert_eq(st_write_index(tp("model.safetensors.index.json"), shards, 2, &e), 0, "%s", e.msg);
    cr_assert_eq(st_write_index(tp("other.index.json"), shards, 2, &e), 0, "%s", e.msg);
    char text[1024] = {0};
    FILE *f = fopen(tp("model.safetensors.index.json"), "r");
    cr_assert(f);
    cr_assert_gt(fread(text, 1, sizeof text - 1, f), 0);
    fclose(f);
    cr_assert(strstr(text, "\"total_size\": 32") && strstr(text, "\"weight_map\""), "%s", text);
    const char *paths[] = {g_dir, tp("other.index.json")};
    for (int k = 0; k < 2; k++) {
        SafeTensors st;
        cr_assert_eq(st_open(&st, paths[k], &e), 0, "%s: %s", paths[k], e.msg);
        cr_expect_eq(st.n_files, 2);
        cr_expect_eq(st.n_tensors, 4);
        const char *fn = st_file_name(&st, must_find(&st, "c"));
        cr_expect(strstr(fn, "model-00002-of-00002.safetensors"), "c in %s", fn);
        st_close(&st);
    }
    /* a tensor in two shards, a shard that is not a plain name, a missing shard */
    const char *twice[] = {shards[0], shards[0]};
    cr_expect_eq(st_write_index(tp("bad.index.json"), twice, 2, &e), -1);
    cr_expect(strstr(e.msg, "'a'") && strstr(e.msg, "two shards"), "%s", e.msg);
    const char *escape[] = {"../x.safetensors"};
    cr_expect_eq(st_write_index(tp("bad.index.json"), escape, 1, &e), -1);
    cr_expect(strstr(e.msg, "plain file name"), "%s", e.msg);
    const char *missing[] = {"model-00003-of-00003.safetensors"};
    cr_expect_eq(st_write_index(tp("bad.index.json"), missing, 1, &e), -1);
    cr_expect(strstr(e.msg, "model-00003-of-00003.safetensors"), "%s", e.msg);
    cr_expect(access(tp("bad.index.json"), F_OK) != 0, "a failed index was written");
}
