/* SPDX-License-Identifier: MIT */
/* The int8 GEMM's panel formats (inside kernels/, for qgemm.c and
 * qgemm_pack.c): how 16 weight rows of each type lie in a panel, and where
 * a block's codes and scales are. */
#ifndef WHALE_QGEMM_PANEL_H
#define WHALE_QGEMM_PANEL_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/matmul.h"
#include "kernels/quant.h"

#define VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

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
 *          blocks' for 16 rows (k4_unpack, qgemm.c).
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
 *          that leave 4 x its code in each byte (tile_k6_body, qgemm.c). The head: the
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
static inline int stored_format(QType t) {
    return t == QTYPE_Q4_0 ? PF_NIB : t == QTYPE_Q8_0 ? PF_BYTE : t == QTYPE_Q6_K ? PF_K6 : PF_K4;
}
static inline int panel_format(const Mat *W) {
    return W->type == QTYPE_Q4_K && !W->panels ? PF_KQ : stored_format(W->type);
}
static inline int nibbles(int f) { return f == PF_NIB || f == PF_K4; }
static inline int has_mins(int f) { return f == PF_KQ || f == PF_K4; }
static inline size_t pf_codes(int f) { return f == PF_K6 ? 384 : nibbles(f) ? 256 : 512; }
static inline size_t pf_scales(int f) { return f == PF_KQ ? 128 : f == PF_K6 ? 36 : 32; }
#define K4_HEAD 256
#define K4_SUPER (8 * 256 + K4_HEAD)
#define K6_HEAD 288
#define K6_SUPER (8 * 384 + K6_HEAD)
static inline size_t panel_bytes(int f, int nb) { return (size_t)nb * (pf_codes(f) + pf_scales(f)); }

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

/* The panel of rows n0 .. n0+nr-1 (nr <= 16) of W (row layout) after
 * row0, all blocks, into panel in format f (qgemm_pack.c). */
void qg_pack_panel(uint8_t *panel, const Mat *W, int row0, int n0, int nr, int f);

#endif
