/* SPDX-License-Identifier: MIT */
/* Weight storage types of the linear layers and their block formats, the
 * GGUF layouts: Q8_0 (32 int8 + one fp16 scale), Q4_0 (32 4-bit values
 * offset by 8 + one fp16 scale), the k-quant super-blocks of 256 Q4_K
 * (eight 32-element sub-blocks, each x = d*sc*q - dmin*m with 6-bit sc, m)
 * and Q6_K (sixteen 16-element sub-blocks, x = d*sc*q with int8 sc and
 * q in -32..31); F32, F16, BF16 plain. Activations meet
 * quantised weights as Q8_0 rows quantised on the fly, so every quantised
 * product is an integer dot product per block. The scalar functions here are
 * the reference the SIMD variants (dot.c) are tested against. */
#ifndef WHALE_QUANT_H
#define WHALE_QUANT_H

#include <stddef.h>
#include <stdint.h>

typedef enum QType {
    QTYPE_F32,
    QTYPE_F16,
    QTYPE_BF16,
    QTYPE_Q8_0,
    QTYPE_Q4_0,
    QTYPE_Q4_K,
    QTYPE_Q6_K,
    QTYPE_COUNT
} QType;

#define QK 32   /* elements per Q8_0 / Q4_0 block */
#define QK_K 256 /* elements per Q4_K / Q6_K super-block */

typedef struct BlockQ8_0 {
    uint16_t d;        /* fp16 scale */
    int8_t qs[QK];     /* x = d * q */
} BlockQ8_0;

typedef struct BlockQ4_0 {
    uint16_t d;          /* fp16 scale */
    uint8_t qs[QK / 2];  /* element i in the low nibble of qs[i], i+16 in the high one; x = d * (q - 8) */
} BlockQ4_0;

/* Sub-block j (elements 32j..32j+31) has scale sc_j and min m_j (6 bits
 * each): x = d*sc_j*q - dmin*m_j, q in 0..15. Packing of the 12 bytes: for
 * j < 4, sc_j and m_j are the low 6 bits of scales[j] and scales[j+4]; for
 * j >= 4, their low 4 bits are the low and high nibble of scales[j+4] and
 * their top 2 bits the top 2 bits of scales[j-4] and scales[j]. Codes: for
 * p < 4, qs[32p+l] holds element 64p+l in its low nibble and 64p+32+l in
 * its high one (l < 32). */
typedef struct BlockQ4_K {
    uint16_t d;            /* fp16 scale of the sub-block scales */
    uint16_t dmin;         /* fp16 scale of the sub-block mins */
    uint8_t scales[12];    /* 8 scales and 8 mins, 6 bits each, packed as above */
    uint8_t qs[QK_K / 2];  /* 4-bit codes */
} BlockQ4_K;

/* Element e = 128h + 32g + l (h < 2, g < 4, l < 32) has the 6-bit code
 * (low 4 bits: nibble g/2 of ql[64h + 32(g%2) + l]; high 2 bits: bits
 * 2g..2g+1 of qh[32h + l]) and x = d * scales[e/16] * (code - 32). */
typedef struct BlockQ6_K {
    uint8_t ql[QK_K / 2];      /* low 4 bits of the codes */
    uint8_t qh[QK_K / 4];      /* high 2 bits */
    int8_t scales[QK_K / 16];  /* per 16 elements */
    uint16_t d;                /* fp16 super-block scale */
} BlockQ6_K;

_Static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block is 34 bytes");
_Static_assert(sizeof(BlockQ4_0) == 18, "Q4_0 block is 18 bytes");
_Static_assert(sizeof(BlockQ4_K) == 144, "Q4_K block is 144 bytes");
_Static_assert(sizeof(BlockQ6_K) == 210, "Q6_K block is 210 bytes");

/* The 6-bit scale and min of Q4_K sub-block j (0..7). */
static inline void q4k_scale_min(const uint8_t *scales, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = scales[j] & 63;
        *m = scales[j + 4] & 63;
    } else {
        *sc = (scales[j + 4] & 15) | ((scales[j - 4] >> 6) << 4);
        *m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
    }
}

const char *qtype_name(QType t);
/* "f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q6_k" -> type; 0 or -1. */
int qtype_parse(const char *s, QType *out);
/* Elements per block (1 for plain types). */
int qtype_block(QType t);
/* Bytes of one row of cols elements; cols must be a multiple of the block. */
size_t qtype_row_bytes(QType t, int cols);

/* Convert n floats (n a multiple of the block) to type t at dst. The
 * scales follow ggml: Q8_0 d = amax/127; Q4_0 d = m/-8 where m is the
 * signed value of largest magnitude. Q4_K and Q6_K fit each sub-block's
 * scale (and Q4_K's min) by a small search minimising a weighted squared
 * error, then quantise the sub-block scales to 6 or 8 bits against one fp16
 * super-block scale (the format's rules; the search is whale's own, so the
 * bytes need not equal llama.cpp's quantiser). */
void quantize_row(QType t, const float *x, void *dst, int n);
/* And back. */
void dequantize_row(QType t, const void *src, float *y, int n);

/* n_rows rows of cols floats at src into type t at dst (rows
 * qtype_row_bytes apart), shared out over the threads (threads_chunks):
 * the bytes of quantize_row row by row, on any thread count. */
void quantize_rows(QType t, const float *src, void *dst, long n_rows, int cols);

/* Reference dot products of one weight row (type t, n elements) with an
 * activation row: for plain types xf (floats); for the block types xq (the
 * activation as Q8_0 blocks; a k-quant super-block meets 8 of them, each
 * 32-element Q8_0 block lining up with one Q4_K sub-block or two Q6_K
 * ones, so every product is an integer sum per Q8_0 block). */
float vec_dot_ref(QType t, const void *w, const float *xf, const BlockQ8_0 *xq, int n);

#endif
