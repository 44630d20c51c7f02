/* SPDX-License-Identifier: MIT */
/* Dot products of one weight row with one activation row, per storage
 * type, in four instruction-set levels: the scalar reference
 * (quant.c: vec_dot_ref), AVX2+FMA+F16C, AVX-512 (F, BW, VL) and AVX-512
 * VNNI (byte dot products for the quantised types). The best level the CPU
 * has is chosen once at run time (WHALE_SIMD=scalar|avx2|avx512 caps it);
 * tests compare every level with the scalar one. */
#ifndef WHALE_DOT_H
#define WHALE_DOT_H

#include <stddef.h>

#include "kernels/quant.h"

/* w: one row of n elements in the table's type; xf: the activation in
 * float32 (plain types); xq: the same activation as Q8_0 blocks
 * (quantised types). n is a multiple of the type's block. */
typedef float (*DotFn)(const void *w, const float *xf, const BlockQ8_0 *xq, int n);

typedef enum DotLevel { DOT_SCALAR, DOT_AVX2, DOT_AVX512, DOT_AVX512_VNNI, DOT_LEVELS } DotLevel;

typedef struct DotKernels {
    const char *name;
    DotFn dot[QTYPE_COUNT];
} DotKernels;

/* The kernels of a level, or NULL when this CPU lacks it. */
const DotKernels *dot_kernels(DotLevel level);
/* The best level available (WHALE_SIMD=scalar|avx2|avx512 caps it). */
const DotKernels *dot_best(void);

#endif
