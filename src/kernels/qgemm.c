/* SPDX-License-Identifier: MIT */
/* Integer GEMM on Q8_0 / Q4_0 / Q4_K / Q6_K weights (see qgemm.h). The weights go
 * lane-per-row: a panel of 16 rows holds them so that one zmm has 4
 * consecutive codes of each of the 16 rows, and vpdpbusd with 4 bytes of
 * one token broadcast adds 4 products to every row's lane. Eight such
 * steps cover a 32-element block; one convert and one FMA then apply the
 * block's scales to 16 rows at once. The dot kernels (dot.c) instead
 * reduce across lanes per row and token, which costs a convert and an FMA
 * per 32 products of one row; here they come per 512. A panel (all of K)
 * stays in L2 while every group of 12 tokens passes over it. Matrices of
 * all four types can be stored as panels (qgemm_pack, at load), which a
 * decoding step then streams once; others are repacked per product,
 * each thread its own panels. */
#include "kernels/qgemm.h"

#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/threads.h"
#include "kernels/gemm.h"
#include "kernels/qgemm_panel.h"

/* Register tile: 16 weight rows x QG_N tokens, each pair an int32 block
 * sum and a float accumulator (2 x QG_N zmm). 32 rows x 6 tokens measured
 * within 5% of it. */
#define QG_N 12

int qgemm_available(QType t) {
    if (t != QTYPE_Q8_0 && t != QTYPE_Q4_0 && t != QTYPE_Q4_K && t != QTYPE_Q6_K) return 0;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}

/* ---- activations --------------------------------------------------------------------- */

/* The activations quantised to Q8_0 as quantize_row does it, laid out for
 * the tile: per group of QG_N tokens and per block, the tokens' 32 codes
 * each, then their scales d (float, through fp16 as Q8_0 stores them),
 * then -off * (sum of the block's codes), the correction for the weight
 * codes' offset (8 for Q4_0, 128 for Q8_0, 32 for Q6_K, 0 for Q4_K), then
 * d * (sum of the codes), which Q4_K's mins multiply, then -off * (sum of
 * the first 16 codes), Q6_K's correction for its first sub-block (0 for
 * the other types). One pointer walks a group. A
 * group holds QG_N tokens, the last one what is left, and its blocks are
 * sized to its tokens: a decoding step's single token reads 48 bytes a
 * block, one stream that stays in L1, where a 12-token layout put those
 * bytes on three lines of each 528-byte block (148 KB over K 8960, three
 * times L1). One thread decoding Q4_0 ran 3-18% faster for it (6 pairs). */
static inline size_t act_block(int n) { return (size_t)n * (QK + 16); }
static inline size_t act_d(int n) { return (size_t)n * QK; }
static inline size_t act_c(int n) { return (size_t)n * (QK + 4); }
static inline size_t act_s(int n) { return (size_t)n * (QK + 8); }
static inline size_t act_h(int n) { return (size_t)n * (QK + 12); }

/* Group t0 / QG_N's blocks: all the groups before it are full. */
static inline size_t act_group(int t0, int nb) {
    return (size_t)(t0 / QG_N) * nb * act_block(QG_N);
}

/* Token t of x (K floats) into the activation layout at acts. The
 * arithmetic is quantize_row's, step for step (amax / 127, its reciprocal,
 * x * id + 0.5 signed, truncated), so the codes and scales are the same. */
VNNI static void quantize_token(uint8_t *acts, const float *x, int t, int T, int nb, int off) {
    uint8_t *g = acts + act_group(t, nb);
    const int ti = t % QG_N, n = T - (t - ti) < QG_N ? T - (t - ti) : QG_N;
    const __m512 half = _mm512_set1_ps(0.5f);
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    for (int b = 0; b < nb; b++, x += QK) {
        uint8_t *ab = g + (size_t)b * act_block(n);
        const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
        const float amax =
            _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
        const float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        /* F16C's conversion, nearest even: f32_to_f16's bits for every
         * finite d, without a call, around which the zmm registers of
         * the block would be spilt and reloaded (a decoding token
         * quantises on one thread while the others wait) */
        const unsigned short h = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        const __m512 vid = _mm512_set1_ps(id);
        __m512 v0 = _mm512_mul_ps(x0, vid), v1 = _mm512_mul_ps(x1, vid);
        /* + 0.5 with v's sign: quantize_row's (v >= 0 ? 0.5 : -0.5) but
         * for v = -0.0, which truncates to 0 either way */
        v0 = _mm512_add_ps(v0, _mm512_castsi512_ps(_mm512_or_si512(
                                   _mm512_and_si512(_mm512_castps_si512(v0), sign),
                                   _mm512_castps_si512(half))));
        v1 = _mm512_add_ps(v1, _mm512_castsi512_ps(_mm512_or_si512(
                                   _mm512_and_si512(_mm512_castps_si512(v1), sign),
                                   _mm512_castps_si512(half))));
        const __m512i q0 = _mm512_cvttps_epi32(v0), q1 = _mm512_cvttps_epi32(v1);
        _mm_storeu_si128((__m128i *)(ab + ti * QK), _mm512_cvtepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(ab + ti * QK + 16), _mm512_cvtepi32_epi8(q1));
        const int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1)), c = -off * sum;
        /* Q6_K's alone (off 32): the other types skip a reduction a
         * block, which a decoding token pays on one thread */
        const int32_t hc = off == 32 ? -off * _mm512_reduce_add_epi32(q0) : 0;
        const float dq = _cvtsh_ss(h), ds = dq * (float)sum;
        memcpy(ab + act_d(n) + 4 * ti, &dq, 4);
        memcpy(ab + act_c(n) + 4 * ti, &c, 4);
        memcpy(ab + act_s(n) + 4 * ti, &ds, 4);
        memcpy(ab + act_h(n) + 4 * ti, &hc, 4);
    }
}

/* ---- the register tile --------------------------------------------------------------- */

/* A PF_K4 super-block's 6-bit scales and mins as bytes, from its head:
 * out[16 j + r] the scale of block j for row r, out[128 + 16 j + r] its
 * min. Once per super-block; unpacking each block's alone took about 16
 * vector operations a block, as many as its 8 vpdpbusd and their masks. */
VNNI static inline void k4_unpack(const uint8_t *head, uint8_t out[256]) {
    const __m512i l0 = _mm512_loadu_si512(head + 64), l1 = _mm512_loadu_si512(head + 128);
    const __m512i h = _mm512_loadu_si512(head + 192);
    const __m512i lo4 = _mm512_set1_epi8(15), b45 = _mm512_set1_epi8(0x30);
    /* 16-bit shifts: what crosses into a neighbouring byte is masked off */
    const __m512i l0h = _mm512_and_si512(_mm512_srli_epi16(l0, 4), lo4);
    const __m512i l1h = _mm512_and_si512(_mm512_srli_epi16(l1, 4), lo4);
    _mm512_storeu_si512(out, _mm512_or_si512(_mm512_and_si512(l0, lo4),
                                             _mm512_and_si512(_mm512_slli_epi16(h, 4), b45)));
    _mm512_storeu_si512(out + 64, _mm512_or_si512(_mm512_and_si512(l1, lo4), _mm512_and_si512(h, b45)));
    _mm512_storeu_si512(out + 128,
                        _mm512_or_si512(l0h, _mm512_and_si512(_mm512_slli_epi16(h, 2), b45)));
    _mm512_storeu_si512(out + 192,
                        _mm512_or_si512(l1h, _mm512_and_si512(_mm512_srli_epi16(h, 2), b45)));
}

/* Block j's float scales (d x sc) and mins (dmin x m) for the 16 rows of a
 * PF_K4 panel, sc and m from k4_unpack's bytes, d and dmin the head's as
 * the caller converted them: the same products as unpack_q4_k's. */
VNNI static inline void k4_scales(const uint8_t *sm, int j, __m512 d, __m512 dmin, __m512 *wd,
                                  __m512 *wm) {
    const __m512i sc = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(sm + 16 * j)));
    const __m512i m = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(sm + 128 + 16 * j)));
    *wd = _mm512_mul_ps(d, _mm512_cvtepi32_ps(sc));
    *wm = _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(m));
}

/* acc + the dot products of w's unsigned bytes with the 4 signed bytes
 * at x, repeated in every lane: vpdpbusd with its broadcast folded into
 * the memory operand ({1to16}), which GCC 12 does not fold itself. */
VNNI static inline __attribute__((always_inline)) __m512i dpbusd_x4(__m512i acc, __m512i w,
                                                                   const uint8_t *x) {
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(const int32_t *)x));
    return acc;
}

/* acc_f[t] += the int32 sums acc[t] x the rows' scales wd x token t's
 * activation scale, for the N tokens of the block at ab; with mins
 * (Q4_K), minus the rows' mins wm x the token's scaled code sum. */
VNNI static inline __attribute__((always_inline)) void scale_add(__m512 *acc_f,
                                                                 const __m512i *acc, __m512 wd,
                                                                 __m512 wm, const int mins,
                                                                 const uint8_t *ab, const int N) {
#pragma GCC unroll 16
    for (int t = 0; t < N; t++) {
        float d;
        memcpy(&d, ab + act_d(N) + 4 * t, 4);
        acc_f[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[t]), _mm512_mul_ps(wd, _mm512_set1_ps(d)),
                                   acc_f[t]);
        if (mins) {
            float ds;
            memcpy(&ds, ab + act_s(N) + 4 * t, 4);
            acc_f[t] = _mm512_fnmadd_ps(wm, _mm512_set1_ps(ds), acc_f[t]);
        }
    }
}

/* The tile's float sums: y[t * ldy + i] = acc_f[t] lane i, rows i < nr. */
VNNI static inline __attribute__((always_inline)) void tile_store(float *y, int ldy, int nr,
                                                                  const __m512 *acc_f,
                                                                  const int N) {
    const __mmask16 m = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
#pragma GCC unroll 16
    for (int t = 0; t < N; t++) _mm512_mask_storeu_ps(y + (size_t)t * ldy, m, acc_f[t]);
}

/* y[t * ldy + i] for N tokens of one group (acts: its first block) and the
 * panel's rows i < nr, the panel in format f. Per block: the int32 sums
 * start at the offset correction, take 8 vpdpbusd steps, and are scaled
 * into the float sums; with mins (Q4_K), min x d * sum(codes) comes off. */
VNNI static inline __attribute__((always_inline)) void tile_body(const uint8_t *panel,
                                                                 const uint8_t *acts, int nb,
                                                                 float *y, int ldy, int nr,
                                                                 const int N, const int f) {
    const __m512i low = _mm512_set1_epi8(15);
    __m512 acc_f[QG_N], d_sb = _mm512_setzero_ps(), dmin_sb = _mm512_setzero_ps();
    _Alignas(64) uint8_t k4_sm[256]; /* PF_K4: the super-block's scales and mins */
#pragma GCC unroll 16
    for (int t = 0; t < N; t++) acc_f[t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *pb = panel + codes_at(f, nb, b), *ab = acts + (size_t)b * act_block(N);
        const uint8_t *scales = panel + scales_at(f, b);
        /* few tokens: two sums per token (steps split between them), so
         * that a token's chain of dependent vpdpbusd is 4 long, not 8 */
        const int split = N <= 4;
        __m512i acc[QG_N], acc2[QG_N];
#pragma GCC unroll 16
        for (int t = 0; t < N; t++) {
            int32_t c;
            memcpy(&c, ab + act_c(N) + 4 * t, 4);
            acc[t] = _mm512_set1_epi32(c);
            acc2[t] = _mm512_setzero_si512();
        }
        /* step kq: 4 codes of each row against 4 activation bytes of each
         * token; a nibble format's step c gives steps c and 4 + c */
#pragma GCC unroll 8
        for (int c = 0; c < 8; c++) {
            if (nibbles(f) && c >= 4) break;
            __m512i raw = _mm512_loadu_si512(pb + c * 64);
            /* one load for both nibbles: GCC would fold the load into
             * each mask, two 64-byte loads where one will do */
            if (nibbles(f)) __asm__("" : "+v"(raw));
            const __m512i w = nibbles(f) ? _mm512_and_si512(raw, low) : raw;
            __m512i *into = split && !nibbles(f) && (c & 1) ? acc2 : acc;
#pragma GCC unroll 16
            for (int t = 0; t < N; t++) {
                into[t] = dpbusd_x4(into[t], w, ab + t * QK + 4 * c);
            }
            if (nibbles(f)) {
                /* split: the high nibbles in place (16 x the code) into
                 * their own sums, which one shift takes back below */
                const __m512i wh = split ? _mm512_andnot_si512(low, raw)
                                         : _mm512_and_si512(_mm512_srli_epi16(raw, 4), low);
                __m512i *hi = split ? acc2 : acc;
#pragma GCC unroll 16
                for (int t = 0; t < N; t++) {
                    hi[t] = dpbusd_x4(hi[t], wh, ab + t * QK + 16 + 4 * c);
                }
            }
        }
        if (split)
#pragma GCC unroll 16
            for (int t = 0; t < N; t++)
                acc[t] = _mm512_add_epi32(
                    acc[t], nibbles(f) ? _mm512_srai_epi32(acc2[t], 4) : acc2[t]);
        __m512 wd, wm;
        if (f == PF_K4) {
            if (b % 8 == 0) { /* the super-block's d and dmin, for its 8 blocks */
                d_sb = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)scales));
                dmin_sb = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(scales + 32)));
                k4_unpack(scales, k4_sm);
            }
            k4_scales(k4_sm, b % 8, d_sb, dmin_sb, &wd, &wm);
        } else if (f == PF_KQ) {
            wd = _mm512_loadu_ps(scales);
            wm = _mm512_loadu_ps(scales + 64);
        } else {
            wd = wm = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)scales));
        }
        scale_add(acc_f, acc, wd, wm, has_mins(f), ab, N);
    }
    tile_store(y, ldy, nr, acc_f, N);
}

/* tile_body for PF_K6: each block's two sub-blocks in turn, each summed
 * from its offset correction over 4 steps and scaled by d x its int8
 * scale. The first's step is its bytes' low 6 bits; the second's puts its
 * low nibble at bits 2-5 beside the high bits already at 6-7, so that it
 * sums 4 x its codes: its correction starts 4 x as large and its scale
 * takes d / 4, exact in binary, so the sums are what x 1 gave. */
VNNI static inline __attribute__((always_inline)) void tile_k6_body(const uint8_t *panel,
                                                                    const uint8_t *acts, int nb,
                                                                    float *y, int ldy, int nr,
                                                                    const int N) {
    const __m512i bits05 = _mm512_set1_epi8(0x3f), bits25 = _mm512_set1_epi8(0x3c);
    const __m512i bits67 = _mm512_set1_epi8((char)0xc0);
    __m512 acc_f[QG_N], d = _mm512_setzero_ps(), d4 = _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int t = 0; t < N; t++) acc_f[t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *pb = panel + codes_at(PF_K6, nb, b), *ab = acts + (size_t)b * act_block(N);
        const uint8_t *head = panel + scales_at(PF_K6, b);
        if (b % 8 == 0) {
            d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)head));
            d4 = _mm512_mul_ps(d, _mm512_set1_ps(0.25f));
        }
#pragma GCC unroll 2
        for (int half = 0; half < 2; half++) {
            __m512i acc[QG_N];
#pragma GCC unroll 16
            for (int t = 0; t < N; t++) {
                int32_t c, h;
                memcpy(&c, ab + act_c(N) + 4 * t, 4);
                memcpy(&h, ab + act_h(N) + 4 * t, 4);
                acc[t] = _mm512_set1_epi32(half ? 4 * (c - h) : h);
            }
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                const __m512i a = _mm512_loadu_si512(pb + c * 64);
                __m512i w;
                if (!half) {
                    w = _mm512_and_si512(a, bits05);
                } else { /* 16-bit shifts: what crosses a byte is masked off */
                    const __m512i nib = _mm512_loadu_si512(pb + 256 + 64 * (c % 2));
                    const __m512i at25 = c < 2 ? _mm512_slli_epi16(nib, 2) : _mm512_srli_epi16(nib, 2);
                    w = _mm512_or_si512(_mm512_and_si512(at25, bits25), _mm512_and_si512(a, bits67));
                }
#pragma GCC unroll 16
                for (int t = 0; t < N; t++) {
                    acc[t] = dpbusd_x4(acc[t], w, ab + t * QK + 16 * half + 4 * c);
                }
            }
            const __m128i sc =
                _mm_loadu_si128((const __m128i *)(head + 32 + 16 * (2 * (b % 8) + half)));
            const __m512 wd = _mm512_mul_ps(half ? d4 : d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sc)));
            scale_add(acc_f, acc, wd, wd, 0, ab, N);
        }
    }
    tile_store(y, ldy, nr, acc_f, N);
}

typedef void (*TileFn)(const uint8_t *panel, const uint8_t *acts, int nb, float *y, int ldy,
                       int nr);

/* One tile function per format and token count: the body with both
 * constant, so that its loops unroll. */
#define TILE_FN(NAME, N, BODY)                                                                     \
    VNNI static void NAME##_##N(const uint8_t *panel, const uint8_t *acts, int nb, float *y,      \
                                int ldy, int nr) {                                                 \
        BODY;                                                                                      \
    }
#define DEFINE_TILE(N)                                                                             \
    TILE_FN(tile_nib, N, tile_body(panel, acts, nb, y, ldy, nr, N, PF_NIB))                        \
    TILE_FN(tile_byte, N, tile_body(panel, acts, nb, y, ldy, nr, N, PF_BYTE))                      \
    TILE_FN(tile_kq, N, tile_body(panel, acts, nb, y, ldy, nr, N, PF_KQ))                          \
    TILE_FN(tile_k4, N, tile_body(panel, acts, nb, y, ldy, nr, N, PF_K4))                          \
    TILE_FN(tile_k6, N, tile_k6_body(panel, acts, nb, y, ldy, nr, N))
DEFINE_TILE(1)
DEFINE_TILE(2)
DEFINE_TILE(3)
DEFINE_TILE(4)
DEFINE_TILE(5)
DEFINE_TILE(6)
DEFINE_TILE(7)
DEFINE_TILE(8)
DEFINE_TILE(9)
DEFINE_TILE(10)
DEFINE_TILE(11)
DEFINE_TILE(12)
_Static_assert(QG_N == 12, "one tile per token count 1..QG_N");
#define TILES(F)                                                                                   \
    {NULL, F##_1, F##_2, F##_3, F##_4, F##_5, F##_6, F##_7, F##_8, F##_9, F##_10, F##_11, F##_12}
/* [format][tokens] */
static const TileFn tiles[PF_COUNT][QG_N + 1] = {TILES(tile_nib), TILES(tile_byte),
                                                 TILES(tile_kq), TILES(tile_k4), TILES(tile_k6)};

/* ---- the product --------------------------------------------------------------------- */

/* At most this many products in one qgemm_nt_multi or qgemm_nt_each. */
#define QG_MULTI 32

/* One product's operands for the panel loop. */
typedef struct QgProduct {
    float *y;
    const Mat *W;
    int row0, n_rows, T;
    const float *x;      /* (T, W->cols) */
    const uint8_t *acts; /* x in the activation layout, shared by products of one x */
    uint8_t *panels;    /* row-layout W: one panel per thread slot, slot_bytes apart */
    size_t panel_bytes; /* this W's */
    size_t slot_bytes;  /* the largest of the list's, which the slots are shared by */
} QgProduct;

/* Panel p: the stored one, or its rows repacked, then every group of QG_N
 * tokens. */
static void qg_panel(const QgProduct *g, int p, int slot) {
    const int nb = g->W->cols / QK, f = panel_format(g->W);
    const int n0 = p * 16, nr = g->n_rows - n0 < 16 ? g->n_rows - n0 : 16;
    const uint8_t *panel;
    if (g->W->panels) {
        panel = (const uint8_t *)g->W->data + (size_t)((g->row0 + n0) / 16) * g->panel_bytes;
    } else {
        uint8_t *mine = g->panels + (size_t)slot * g->slot_bytes;
        qg_pack_panel(mine, g->W, g->row0, n0, nr, f);
        panel = mine;
    }
    for (int t0 = 0; t0 < g->T; t0 += QG_N) {
        const int n = g->T - t0 < QG_N ? g->T - t0 : QG_N;
        tiles[f][n](panel, g->acts + act_group(t0, nb), nb,
                    g->y + (size_t)t0 * g->n_rows + n0, g->n_rows, nr);
    }
}

/* Panel p of a list whose product i starts at panel first[i]. */
static void qg_panel_of(const QgProduct *g, const int *first, int p, int slot) {
    int i = 0;
    while (p >= first[i + 1]) i++;
    qg_panel(&g[i], p - first[i], slot);
}

/* Thread id's share of g's tokens (of nt threads) into its activation
 * layout: a contiguous range, as the tokens of a group interleave in
 * every block (two threads on alternate tokens would write to the same
 * lines: prefill 3% slower). */
static void quantize_all(const QgProduct *g, int id, int nt, int off) {
    const int K = g->W->cols;
    const int t0 = (int)((long)g->T * id / nt), t1 = (int)((long)g->T * (id + 1) / nt);
    for (int t = t0; t < t1; t++)
        quantize_token((uint8_t *)g->acts, g->x + (size_t)t * K, t, g->T, K / QK, off);
}

/* Bytes of the activation layout of T tokens of nb blocks. */
static size_t act_bytes(int T, int nb) {
    return (act_group(T - 1, nb) + nb * act_block(QG_N) + 63) & ~(size_t)63;
}

/* Products g[i] for i < n, each of its own x (T tokens each) and of one
 * weight type and layout, their panels numbered one after the other
 * across the list; products of the same x and K share its quantisation. */
static int qg_run(const QgProduct *g, int n) {
    const Mat *W = g[0].W;
    const int T = g[0].T;
    const int off = W->type == QTYPE_Q4_0   ? 8
                    : W->type == QTYPE_Q8_0 ? 128
                    : W->type == QTYPE_Q6_K ? 32
                                            : 0;
    int first[QG_MULTI + 1] = {0}, acts_of[QG_MULTI];
    size_t act_at[QG_MULTI], acts_total = 0, pb_max = 0;
    long work = 0;
    for (int i = 0; i < n; i++) {
        const int K = g[i].W->cols;
        first[i + 1] = first[i] + (g[i].n_rows + 15) / 16;
        work += (long)g[i].n_rows * K * T;
        const size_t pb = panel_bytes(panel_format(g[i].W), K / QK);
        pb_max = pb > pb_max ? pb : pb_max;
        acts_of[i] = i;
        for (int j = 0; j < i; j++)
            if (g[j].x == g[i].x && g[j].W->cols == K) {
                acts_of[i] = j;
                break;
            }
        act_at[i] = acts_total;
        if (acts_of[i] == i) acts_total += act_bytes(T, K / QK);
    }
    const int n_panels = first[n];
    /* a parallel region costs microseconds (threads.h): small products,
     * and those called inside another region, stay on this thread */
    const int par = n_panels > 1 && work >= 1L << 18 && !threads_in_parallel();
    const int slots = W->panels ? 0 : par ? threads_max() : 1;
    /* activations, then one panel per thread */
    uint8_t *buf = gemm_scratch(acts_total + (size_t)slots * pb_max);
    if (!buf) return -1;
    QgProduct gs[QG_MULTI];
    for (int i = 0; i < n; i++) {
        gs[i] = g[i];
        gs[i].acts = buf + act_at[acts_of[i]];
        gs[i].panels = buf + acts_total;
        gs[i].panel_bytes = panel_bytes(panel_format(g[i].W), g[i].W->cols / QK);
        gs[i].slot_bytes = pb_max;
    }
    /* a few tokens quantise on this thread: cheaper than a barrier */
    const int quant_par = par && T > 4;
    if (!quant_par)
        for (int i = 0; i < n; i++)
            if (acts_of[i] == i) quantize_all(&gs[i], 0, 1, off);
    if (par) {
        /* one group of tokens (decoding): each thread one run of panels,
         * which stored panels make one stream through memory, its length
         * by the thread's speed in earlier products, and a thread done
         * early takes over the end of another's (threads.h); more
         * (prefill): panel by panel as threads come free */
        const int decoding = T <= QG_N;
        ThreadRun run;
        if (decoding) threads_run_begin(&run, n_panels);
#pragma omp parallel
        {
            if (quant_par) {
                for (int i = 0; i < n; i++)
                    if (acts_of[i] == i) quantize_all(&gs[i], thread_id(), threads_in_team(), off);
#pragma omp barrier
            }
            if (decoding) {
                int lo, hi;
                while (threads_run_next(&run, &lo, &hi))
                    for (int p = lo; p < hi; p++) qg_panel_of(gs, first, p, thread_id());
                threads_run_done(&run);
            } else {
#pragma omp for schedule(dynamic, 1)
                for (int p = 0; p < n_panels; p++) qg_panel_of(gs, first, p, thread_id());
            }
        }
        if (decoding) threads_run_end(&run);
    } else {
        for (int p = 0; p < n_panels; p++) qg_panel_of(gs, first, p, 0);
    }
    return 0;
}

int qgemm_nt(float *y, const float *x, int T, const Mat *W, int row0, int n_rows) {
    if (!qgemm_available(W->type) || T <= 0 || n_rows <= 0) return -1;
    if (W->panels && row0 % 16) return -1; /* a range inside a stored panel */
    const QgProduct g = {y, W, row0, n_rows, T, x, NULL, NULL, 0, 0};
    return qg_run(&g, 1);
}

int qgemm_nt_each(float *const *y, const float *const *x, int T, const Mat *const *W, int n) {
    if (n < 1 || n > QG_MULTI || T <= 0) return -1;
    QgProduct g[QG_MULTI];
    for (int i = 0; i < n; i++) {
        if (!qgemm_available(W[i]->type) || W[i]->type != W[0]->type ||
            W[i]->panels != W[0]->panels || W[i]->rows <= 0)
            return -1;
        g[i] = (QgProduct){y[i], W[i], 0, W[i]->rows, T, x[i], NULL, NULL, 0, 0};
    }
    return qg_run(g, n);
}

int qgemm_nt_multi(float *const *y, const float *x, int T, const Mat *const *W, int n) {
    if (n < 1 || n > QG_MULTI) return -1;
    const float *xs[QG_MULTI];
    for (int i = 0; i < n; i++) {
        if (W[i]->cols != W[0]->cols) return -1;
        xs[i] = x;
    }
    return qgemm_nt_each(y, xs, T, W, n);
}
