/* SPDX-License-Identifier: MIT */
/* Weights into the int8 GEMM's panels (qgemm_panel.h): a block of 16 rows
 * unpacked from the row layout and transposed lane-per-row, the K-quants'
 * super-block heads regrouped; qgemm_pack stores a matrix so, in place, and
 * qgemm_panel_row reads a row back in its original bytes. */
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/qgemm.h"
#include "kernels/qgemm_panel.h"

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
    if (f == PF_K6) { /* see PF_K6 in qgemm_panel.h; codes < 64, so no 16-bit shift crosses a byte */
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

void qg_pack_panel(uint8_t *panel, const Mat *W, int row0, int n0, int nr, int f) {
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
        qg_pack_panel(tmp, W, 0, p * 16, 16, f);
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
