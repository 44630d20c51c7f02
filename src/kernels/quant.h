/* SPDX-License-Identifier: MIT */
/* Weight storage types of the linear layers and their block formats, the
 * GGUF layouts: Q8_0 (32 int8 + one fp16 scale), Q4_0 (32 4-bit values
 * offset by 8 + one fp16 scale); F32, F16, BF16 plain. Activations meet
 * quantised weights as Q8_0 rows quantised on the fly, so every quantised
 * product is an integer dot product per block. The scalar functions here are
 * the reference the SIMD variants (quant_simd.c) are tested against. */
#ifndef WHALE_QUANT_H
#define WHALE_QUANT_H

#include <stddef.h>
#include <stdint.h>

typedef enum QType { QTYPE_F32, QTYPE_F16, QTYPE_BF16, QTYPE_Q8_0, QTYPE_Q4_0, QTYPE_COUNT } QType;

#define QK 32 /* elements per Q8_0 / Q4_0 block */

typedef struct BlockQ8_0 {
    uint16_t d;        /* fp16 scale */
    int8_t qs[QK];     /* x = d * q */
} BlockQ8_0;

typedef struct BlockQ4_0 {
    uint16_t d;          /* fp16 scale */
    uint8_t qs[QK / 2];  /* element i in the low nibble of qs[i], i+16 in the high one; x = d * (q - 8) */
} BlockQ4_0;

_Static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block is 34 bytes");
_Static_assert(sizeof(BlockQ4_0) == 18, "Q4_0 block is 18 bytes");

const char *qtype_name(QType t);
/* "f32", "f16", "bf16", "q8_0", "q4_0" -> type; 0 or -1. */
int qtype_parse(const char *s, QType *out);
/* Elements per block (1 for plain types). */
int qtype_block(QType t);
/* Bytes of one row of cols elements; cols must be a multiple of the block. */
size_t qtype_row_bytes(QType t, int cols);

/* Convert n floats (n a multiple of the block) to type t at dst. The
 * scales follow ggml: Q8_0 d = amax/127; Q4_0 d = m/-8 where m is the
 * signed value of largest magnitude. */
void quantize_row(QType t, const float *x, void *dst, int n);
/* And back. */
void dequantize_row(QType t, const void *src, float *y, int n);

/* Reference dot products of one weight row (type t, n elements) with an
 * activation row: for plain types xf (floats); for Q8_0/Q4_0 xq (the
 * activation as Q8_0 blocks). */
float vec_dot_ref(QType t, const void *w, const float *xf, const BlockQ8_0 *xq, int n);

#endif
