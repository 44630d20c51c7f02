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

#define VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

/* Register tile: 16 weight rows x QG_N tokens, each pair an int32 block
 * sum and a float accumulator (2 x QG_N zmm). 32 rows x 6 tokens measured
 * within 5% of it. */
#define QG_N 12

/* Panel formats. A panel is 16 rows x all nb blocks of K, in pairs of
 * blocks: the pair's scales (pf_scales bytes a block), then its codes
 * (pf_codes bytes a block); an odd nb leaves the last block alone, its
 * scales then its codes. Codes go lane-per-row: 4 bytes of row j at bytes
 * 4j..4j+3 of a 64-byte step, step kq holding elements 4kq..4kq+3 of the
 * block.
 *  PF_NIB  (Q4_0): 4 steps of 64 bytes; step c carries kq = c in its low
 *          nibbles and kq = 4 + c in its high ones (codes 0..15, x = d (q - 8));
 *          16 fp16 scales.
 *  PF_BYTE (Q8_0): 8 steps; codes + 128 (unsigned); 16 fp16 scales.
 *  PF_KQ   (Q4_K, repacked per product): 8 steps of codes 0..15; 16
 *          float scales d x sc, then 16 float mins dmin x m.
 *  PF_K4   (Q4_K, stored): super-blocks of 8 blocks (256 elements), each
 *          a 256-byte head, then its 8 blocks' codes as PF_NIB's. The
 *          head: the 16 rows' fp16 d, their fp16 dmin, then per block j
 *          16 bytes of its low bits (row r's byte at 64 + 16 j + r: sc &
 *          15 | (m & 15) << 4), then 64 bytes of high bits (byte 192 + 16
 *          (j % 4) + r: sc >> 4 | (m >> 4) << 2, shifted left by 4 for
 *          j >= 4): the row layout's 6-bit scales and mins, regrouped so
 *          that three zmm loads and a few byte operations give all 8
 *          blocks' for 16 rows (k4_unpack).
 *  PF_K6   (Q6_K, stored and repacked): super-blocks of 8 blocks, each a
 *          288-byte head, then per block 4 steps of 64 bytes for its first
 *          16 elements (sub-block 2(b % 8)), then 128 bytes for its last 16
 *          (sub-block 2(b % 8) + 1; codes 0..63, x = d sc (q - 32)). A
 *          byte of step c holds the first sub-block's code in bits 0-5
 *          and bits 4-5 of the second's code at the same place of its step
 *          c in bits 6-7; the second's low 4 bits go as PF_NIB's, step c in
 *          the low nibbles of the 64 bytes at 256 + 64 (c % 2) for c < 2,
 *          in their high nibbles for c >= 2. A step of the first sub-block
 *          is then one mask, one of the second a shift, a mask and a merge
 *          that leave 4 x its code in each byte (k6 below). The head: the
 *          16 rows' fp16 d, then per 16-element sub-block s the rows' int8
 *          scales (16 bytes at 32 + 16 s).
 * PF_NIB, PF_BYTE, PF_K4 and PF_K6 fill exactly the bytes that their 16
 * rows take in the row layout (16 x 18, 16 x 34, 16 x 144 / 8 and 16 x
 * 210 / 8 bytes a block), so
 * qgemm_pack repacks a matrix in place, and a stored panel is one
 * sequential stream for a decoding step to read, which the hardware
 * prefetcher follows alone: a pair is 9 (Q4_0) or 17 (Q8_0) whole lines,
 * a Q4_K super-block 36, each read front to back.
 * With every scale after every code (a 1.5 KiB run of scales behind each
 * 12 KiB of codes at K 1536) the same product had read two streams, and
 * on a Zen 4 VM one thread's decode of 300 MB of 8960x1536 matrices
 * (THP-backed, the one-thread read probe 32 GB/s on huge pages) ran at
 * 13.4 GB/s of Q4_0 and 20.8 of Q8_0 without software prefetch, 22.5 and
 * 22.4 with the best we found (into L2 32 KiB ahead); as pairs, 27.8-28.7
 * and 32.1-32.9 without, and any software prefetch slowed them (into L2
 * 32 KiB ahead 21.5-22.0 and 22.6-22.8; into L1 4 KiB ahead 25.4-25.8
 * and 16.6). A plain read (loads only) that skips 1.5 KiB after every
 * 12 KiB ran at 17.5 GB/s, against 31-33 without the holes. Q4_0 stays
 * below the probe because little of its time is left to hide memory
 * behind: its 8 vpdpbusd a block (one zmm a cycle on Zen 4) come with 8
 * nibble masks, 8 activation broadcasts and the block's scaling, 56-60
 * GB/s in cache on one core (Q8_0 80-82, Q4_K 38-39). */
enum { PF_NIB, PF_BYTE, PF_KQ, PF_K4, PF_K6, PF_COUNT };

/* The format of W's stored panels, and the one a product over W reads:
 * the stored one, or what a row-layout Q4_K is repacked into. */
static int stored_format(QType t) {
    return t == QTYPE_Q4_0 ? PF_NIB : t == QTYPE_Q8_0 ? PF_BYTE : t == QTYPE_Q6_K ? PF_K6 : PF_K4;
}
static int panel_format(const Mat *W) {
    return W->type == QTYPE_Q4_K && !W->panels ? PF_KQ : stored_format(W->type);
}
static int nibbles(int f) { return f == PF_NIB || f == PF_K4; }
static int has_mins(int f) { return f == PF_KQ || f == PF_K4; }
static size_t pf_codes(int f) { return f == PF_K6 ? 384 : nibbles(f) ? 256 : 512; }
static size_t pf_scales(int f) { return f == PF_KQ ? 128 : f == PF_K6 ? 36 : 32; }
#define K4_HEAD 256
#define K4_SUPER (8 * 256 + K4_HEAD)
#define K6_HEAD 288
#define K6_SUPER (8 * 384 + K6_HEAD)
static size_t panel_bytes(int f, int nb) { return (size_t)nb * (pf_codes(f) + pf_scales(f)); }

/* Offsets of block b's scales (PF_K4: its super-block's head) and codes
 * in a panel of nb blocks (see above). */
static inline size_t pair_at(int f, int b) {
    return (size_t)(b / 2) * 2 * (pf_codes(f) + pf_scales(f));
}
static inline size_t scales_at(int f, int b) {
    if (f == PF_K4) return (size_t)(b / 8) * K4_SUPER;
    if (f == PF_K6) return (size_t)(b / 8) * K6_SUPER;
    return pair_at(f, b) + (size_t)(b % 2) * pf_scales(f);
}
static inline size_t codes_at(int f, int nb, int b) {
    if (f == PF_K4) return (size_t)(b / 8) * K4_SUPER + K4_HEAD + (size_t)(b % 8) * 256;
    if (f == PF_K6) return (size_t)(b / 8) * K6_SUPER + K6_HEAD + (size_t)(b % 8) * 384;
    const int in_pair = b / 2 * 2 + 1 < nb ? 2 : 1;
    return pair_at(f, b) + (size_t)in_pair * pf_scales(f) + (size_t)(b % 2) * pf_codes(f);
}

int qgemm_available(QType t) {
    if (t != QTYPE_Q8_0 && t != QTYPE_Q4_0 && t != QTYPE_Q4_K && t != QTYPE_Q6_K) return 0;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}

/* ---- panels: 16 rows, lane-per-row --------------------------------------------------- */

/* Four 16-byte pieces as the 128-bit lanes of one zmm. */
VNNI static inline __m512i lanes4(__m128i a, __m128i b, __m128i c, __m128i d) {
    __m512i z = _mm512_castsi128_si512(a);
    z = _mm512_inserti32x4(z, b, 1);
    z = _mm512_inserti32x4(z, c, 2);
    return _mm512_inserti32x4(z, d, 3);
}

/* v[j] holds 4 dwords (elements 16s .. 16s+15) of row j, j < 16. Writes
 * out[c] (c < 4; kq = 4s + c) = dword c of rows 0..15, in row order: z_i
 * gathers rows i, i+4, i+8, i+12 in its 128-bit lanes, and a 4x4 dword
 * transpose inside each lane across z_0..z_3 leaves lane L of out[c] as
 * dword c of rows 4L .. 4L+3. */
VNNI static inline void transpose16x4(const __m128i v[16], __m512i out[4]) {
    __m512i z[4];
    for (int i = 0; i < 4; i++) z[i] = lanes4(v[i], v[i + 4], v[i + 8], v[i + 12]);
    __m512i t0 = _mm512_unpacklo_epi32(z[0], z[1]), t1 = _mm512_unpacklo_epi32(z[2], z[3]);
    __m512i t2 = _mm512_unpackhi_epi32(z[0], z[1]), t3 = _mm512_unpackhi_epi32(z[2], z[3]);
    out[0] = _mm512_unpacklo_epi64(t0, t1);
    out[1] = _mm512_unpackhi_epi64(t0, t1);
    out[2] = _mm512_unpacklo_epi64(t2, t3);
    out[3] = _mm512_unpackhi_epi64(t2, t3);
}

/* Sixteen rows are sixteen streams through memory, more than the hardware
 * prefetcher follows (as the dot tiles found with four): each block asks
 * for the line this many bytes ahead in every row. */
#define QG_PREFETCH 512

/* One block (32 elements) of 16 rows, unpacked: v[s][j] = codes 16s ..
 * 16s+15 of row j as unsigned bytes, h[j] its fp16 scale (Q8_0, Q4_0) or
 * sc[j], mn[j] its float scale and min (Q4_K). Rows j >= nr repeat a real
 * row (rows[j] points there) and get scale and min 0. The codes are the
 * format's: Q4_0's 0..15 (value + 8), Q8_0's plus 128, Q4_K's 0..15 with
 * x = sc * q - mn; the activations' offset sums take Q4_0's and Q8_0's
 * offsets back out. */
typedef struct QgBlock {
    __m128i v[2][16];
    uint16_t h[16];
    float sc[16], mn[16];
} QgBlock;

VNNI static void unpack_q8_0(QgBlock *u, const char *const rows[16], int nr, int b) {
    const __m128i k128 = _mm_set1_epi8((char)0x80);
    for (int j = 0; j < 16; j++) {
        const BlockQ8_0 *blk = (const BlockQ8_0 *)rows[j] + b;
        _mm_prefetch((const char *)blk + QG_PREFETCH, _MM_HINT_T0);
        u->v[0][j] = _mm_xor_si128(_mm_loadu_si128((const __m128i *)blk->qs), k128);
        u->v[1][j] = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(blk->qs + 16)), k128);
        u->h[j] = j < nr ? blk->d : 0;
    }
}

VNNI static void unpack_q4_0(QgBlock *u, const char *const rows[16], int nr, int b) {
    const __m128i m = _mm_set1_epi8(15);
    for (int j = 0; j < 16; j++) {
        const BlockQ4_0 *blk = (const BlockQ4_0 *)rows[j] + b;
        _mm_prefetch((const char *)blk + QG_PREFETCH, _MM_HINT_T0);
        const __m128i raw = _mm_loadu_si128((const __m128i *)blk->qs);
        u->v[0][j] = _mm_and_si128(raw, m); /* elements 0..15: low nibbles */
        u->v[1][j] = _mm_and_si128(_mm_srli_epi16(raw, 4), m);
        u->h[j] = j < nr ? blk->d : 0;
    }
}

/* Block b is sub-block b % 8 of super-block b / 8: the low (even) or high
 * (odd) nibbles of 32 bytes of codes. */
VNNI static void unpack_q4_k(QgBlock *u, const char *const rows[16], int nr, int b) {
    const __m128i m = _mm_set1_epi8(15);
    const int i = b / 8, j8 = b % 8, shift = 4 * (j8 & 1);
    for (int j = 0; j < 16; j++) {
        const BlockQ4_K *blk = (const BlockQ4_K *)rows[j] + i;
        const uint8_t *qs = blk->qs + 32 * (j8 / 2);
        _mm_prefetch((const char *)qs + QG_PREFETCH, _MM_HINT_T0);
        const __m128i cnt = _mm_cvtsi32_si128(shift);
        const __m128i lo = _mm_loadu_si128((const __m128i *)qs);
        const __m128i hi = _mm_loadu_si128((const __m128i *)(qs + 16));
        u->v[0][j] = _mm_and_si128(_mm_srl_epi16(lo, cnt), m);
        u->v[1][j] = _mm_and_si128(_mm_srl_epi16(hi, cnt), m);
        int sc, mn;
        q4k_scale_min(blk->scales, j8, &sc, &mn);
        u->sc[j] = j < nr ? _cvtsh_ss(blk->d) * (float)sc : 0.0f;
        u->mn[j] = j < nr ? _cvtsh_ss(blk->dmin) * (float)mn : 0.0f;
    }
}

/* Block b is elements 32 (b % 8) .. of super-block b / 8: element 128h +
 * 32g + l takes nibble g / 2 of ql[64h + 32(g % 2) + l] and bits 2g.. of
 * qh[32h + l] (quant.h). Codes 0..63; the scales go into the head
 * (k6_head). */
VNNI static void unpack_q6_k(QgBlock *u, const char *const rows[16], int b) {
    const __m128i m4 = _mm_set1_epi8(15), m2 = _mm_set1_epi8(3);
    const int i = b / 8, h = b % 8 / 4, g = b % 4;
    const __m128i lo_cnt = _mm_cvtsi32_si128(4 * (g / 2)), hi_cnt = _mm_cvtsi32_si128(2 * g);
    for (int j = 0; j < 16; j++) {
        const BlockQ6_K *blk = (const BlockQ6_K *)rows[j] + i;
        const uint8_t *ql = blk->ql + 64 * h + 32 * (g % 2), *qh = blk->qh + 32 * h;
        for (int s = 0; s < 2; s++) {
            const __m128i lo = _mm_and_si128(
                _mm_srl_epi16(_mm_loadu_si128((const __m128i *)(ql + 16 * s)), lo_cnt), m4);
            const __m128i hi = _mm_and_si128(
                _mm_srl_epi16(_mm_loadu_si128((const __m128i *)(qh + 16 * s)), hi_cnt), m2);
            u->v[s][j] = _mm_or_si128(lo, _mm_slli_epi16(hi, 4));
        }
    }
}

/* An unpacked block into its codes and scales in format f. */
VNNI static void pack_block(uint8_t *codes, uint8_t *scales, const QgBlock *u, int f) {
    __m512i lo[4], hi[4];
    transpose16x4(u->v[0], lo);
    transpose16x4(u->v[1], hi);
    if (f == PF_K6) { /* see PF_K6 above; codes < 64, so no 16-bit shift crosses a byte */
        const __m512i m4 = _mm512_set1_epi8(15), b45 = _mm512_set1_epi8(0x30);
        for (int c = 0; c < 4; c++)
            _mm512_storeu_si512(codes + c * 64,
                                _mm512_or_si512(lo[c], _mm512_slli_epi16(_mm512_and_si512(hi[c], b45), 2)));
        for (int r = 0; r < 2; r++)
            _mm512_storeu_si512(codes + 256 + 64 * r,
                                _mm512_or_si512(_mm512_and_si512(hi[r], m4),
                                                _mm512_slli_epi16(_mm512_and_si512(hi[r + 2], m4), 4)));
        return;
    }
    for (int c = 0; c < 4; c++) {
        if (nibbles(f)) { /* codes <= 15: the 16-bit shift keeps each in its byte */
            _mm512_storeu_si512(codes + c * 64, _mm512_or_si512(lo[c], _mm512_slli_epi16(hi[c], 4)));
        } else {
            _mm512_storeu_si512(codes + c * 64, lo[c]);
            _mm512_storeu_si512(codes + (4 + c) * 64, hi[c]);
        }
    }
    if (f == PF_KQ) {
        _mm512_storeu_ps(scales, _mm512_loadu_ps(u->sc));
        _mm512_storeu_ps(scales + 64, _mm512_loadu_ps(u->mn));
    } else if (f != PF_K4) { /* PF_K4's go into the head (k4_head) */
        memcpy(scales, u->h, sizeof u->h);
    }
}

/* Super-block s's head of a PF_K4 panel from its 16 rows. */
static void k4_head(uint8_t *head, const char *const rows[16], int s) {
    memset(head, 0, K4_HEAD);
    for (int r = 0; r < 16; r++) {
        const BlockQ4_K *blk = (const BlockQ4_K *)rows[r] + s;
        memcpy(head + 2 * r, &blk->d, 2);
        memcpy(head + 32 + 2 * r, &blk->dmin, 2);
        for (int j = 0; j < 8; j++) {
            int sc, m;
            q4k_scale_min(blk->scales, j, &sc, &m);
            head[64 + 16 * j + r] = (uint8_t)((sc & 15) | (m & 15) << 4);
            head[192 + 16 * (j % 4) + r] |= (uint8_t)(((sc >> 4) | (m >> 4) << 2) << (4 * (j / 4)));
        }
    }
}

/* Super-block s's head of a PF_K6 panel; rows r >= nr (repeats of a real
 * row) get d 0. */
static void k6_head(uint8_t *head, const char *const rows[16], int nr, int s) {
    for (int r = 0; r < 16; r++) {
        const BlockQ6_K *blk = (const BlockQ6_K *)rows[r] + s;
        const uint16_t d = r < nr ? blk->d : 0;
        memcpy(head + 2 * r, &d, 2);
        for (int k = 0; k < 16; k++) head[32 + 16 * k + r] = (uint8_t)blk->scales[k];
    }
}

/* The panel of rows n0 .. n0+nr-1 (nr <= 16) of W (row layout) after
 * row0, all blocks, into panel in format f. */
static void pack_panel(uint8_t *panel, const Mat *W, int row0, int n0, int nr, int f) {
    const size_t rb = qtype_row_bytes(W->type, W->cols);
    const int nb = W->cols / QK;
    const char *base = (const char *)W->data + (size_t)row0 * rb;
    const char *rows[16];
    for (int j = 0; j < 16; j++) rows[j] = base + (size_t)(n0 + (j < nr ? j : nr - 1)) * rb;
    QgBlock u;
    for (int b = 0; b < nb; b++) {
        switch (W->type) {
        case QTYPE_Q8_0: unpack_q8_0(&u, rows, nr, b); break;
        case QTYPE_Q4_0: unpack_q4_0(&u, rows, nr, b); break;
        case QTYPE_Q6_K: unpack_q6_k(&u, rows, b); break;
        default: unpack_q4_k(&u, rows, nr, b); break;
        }
        if (f == PF_K4 && b % 8 == 0) k4_head(panel + scales_at(f, b), rows, b / 8);
        if (f == PF_K6 && b % 8 == 0) k6_head(panel + scales_at(f, b), rows, nr, b / 8);
        pack_block(panel + codes_at(f, nb, b), panel + scales_at(f, b), &u, f);
    }
}

int qgemm_pack(Mat *W) {
    if (W->panels || !qgemm_available(W->type) || W->rows % 16 ||
        W->cols % qtype_block(W->type))
        return -1;
    const int nb = W->cols / QK, f = stored_format(W->type), n_panels = W->rows / 16;
    const size_t pb = panel_bytes(f, nb);
    /* panel p takes the bytes of rows 16p .. 16p+15: through a buffer of
     * one panel, in place. On the calling thread alone: a parallel region
     * here would leave an OpenMP team behind on the thread that loads the
     * model, and with the serving worker's own team that is more threads
     * than cores, which makes libgomp put idle threads to sleep at once
     * (a futex wake per product after that: ~10 ms a token measured). */
    uint8_t *tmp = malloc(pb);
    if (!tmp) return -1;
    for (int p = 0; p < n_panels; p++) {
        pack_panel(tmp, W, 0, p * 16, 16, f);
        memcpy((uint8_t *)W->data + (size_t)p * pb, tmp, pb);
    }
    free(tmp);
    W->panels = 1;
    return 0;
}

/* Row j of a PF_K4 panel back in the row layout (the inverse of k4_head
 * and the nibble codes: q4k_scale_min's packing run backwards). */
static void k4_row(const uint8_t *panel, int nb, int j, BlockQ4_K *row) {
    for (int s = 0; s < nb / 8; s++) {
        const uint8_t *head = panel + scales_at(PF_K4, 8 * s);
        BlockQ4_K *o = row + s;
        memcpy(&o->d, head + 2 * j, 2);
        memcpy(&o->dmin, head + 32 + 2 * j, 2);
        int sc[8], m[8];
        for (int k = 0; k < 8; k++) {
            const int lo = head[64 + 16 * k + j], hi = head[192 + 16 * (k % 4) + j] >> (4 * (k / 4));
            sc[k] = (lo & 15) | (hi & 3) << 4;
            m[k] = lo >> 4 | (hi >> 2 & 3) << 4;
        }
        for (int k = 0; k < 4; k++) {
            o->scales[k] = (uint8_t)(sc[k] | (sc[k + 4] >> 4) << 6);
            o->scales[k + 4] = (uint8_t)(m[k] | (m[k + 4] >> 4) << 6);
            o->scales[k + 8] = (uint8_t)((sc[k + 4] & 15) | (m[k + 4] & 15) << 4);
        }
        memset(o->qs, 0, sizeof o->qs);
        for (int k = 0; k < 8; k++) {
            const uint8_t *codes = panel + codes_at(PF_K4, nb, 8 * s + k) + 4 * j;
            for (int e = 0; e < QK; e++) {
                const int byte = codes[64 * (e % 16 / 4) + e % 4];
                const int q = e < 16 ? byte & 15 : byte >> 4;
                o->qs[32 * (k / 2) + e] |= (uint8_t)(q << (4 * (k % 2)));
            }
        }
    }
}

/* Row j of a PF_K6 panel back in the row layout. */
static void k6_row(const uint8_t *panel, int nb, int j, BlockQ6_K *row) {
    for (int s = 0; s < nb / 8; s++) {
        const uint8_t *head = panel + scales_at(PF_K6, 8 * s);
        BlockQ6_K *o = row + s;
        memcpy(&o->d, head + 2 * j, 2);
        for (int k = 0; k < 16; k++) o->scales[k] = (int8_t)head[32 + 16 * k + j];
        memset(o->ql, 0, sizeof o->ql);
        memset(o->qh, 0, sizeof o->qh);
        for (int k = 0; k < 8; k++) {
            const uint8_t *codes = panel + codes_at(PF_K6, nb, 8 * s + k);
            const int h = k / 4, g = k % 4;
            for (int e = 0; e < QK; e++) {
                const int c = e % 16 / 4, a = codes[64 * c + 4 * j + e % 4];
                const int q = e < 16 ? a & 63
                                     : (codes[256 + 64 * (c % 2) + 4 * j + e % 4] >> (4 * (c / 2)) & 15) |
                                           (a >> 6) << 4;
                o->ql[64 * h + 32 * (g % 2) + e] |= (uint8_t)((q & 15) << (4 * (g / 2)));
                o->qh[32 * h + e] |= (uint8_t)((q >> 4) << (2 * g));
            }
        }
    }
}

void qgemm_panel_row(const Mat *W, int r, void *row) {
    const int nb = W->cols / QK, f = panel_format(W), j = r % 16;
    const uint8_t *panel = (const uint8_t *)W->data + (size_t)(r / 16) * panel_bytes(f, nb);
    if (f == PF_K4) {
        k4_row(panel, nb, j, row);
        return;
    }
    if (f == PF_K6) {
        k6_row(panel, nb, j, row);
        return;
    }
    for (int b = 0; b < nb; b++) {
        const uint8_t *codes = panel + codes_at(f, nb, b) + 4 * j;
        uint16_t d;
        memcpy(&d, panel + scales_at(f, b) + 2 * j, 2);
        if (f == PF_NIB) {
            BlockQ4_0 *o = (BlockQ4_0 *)row + b;
            o->d = d;
            /* step c's low nibbles are elements 4c.., its high ones 16+4c..:
             * the byte is the row layout's qs[4c + i] as it was */
            for (int e = 0; e < QK / 2; e++) o->qs[e] = codes[64 * (e / 4) + e % 4];
        } else {
            BlockQ8_0 *o = (BlockQ8_0 *)row + b;
            o->d = d;
            for (int e = 0; e < QK; e++) o->qs[e] = (int8_t)(codes[64 * (e / 4) + e % 4] ^ 0x80);
        }
    }
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
        pack_panel(mine, g->W, g->row0, n0, nr, f);
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
