/* SPDX-License-Identifier: MIT */
/* Element types of stored tensors and their scalar conversions to float32.
 * The scalar converters are the reference that SIMD variants are tested
 * against. F8_E4M3 is the "fn" variant of the DeepSeek-V3 release: bias 7, no
 * infinities, S.1111.111 is NaN, largest finite 448. */
#ifndef WHALE_DTYPE_H
#define WHALE_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum DType {
    DTYPE_F32 = 0,
    DTYPE_F16,
    DTYPE_BF16,
    DTYPE_F8_E4M3,
    DTYPE_I32,
    DTYPE_I64,
    DTYPE_U8,
    DTYPE_COUNT
} DType;

/* Bytes per element. */
size_t dtype_size(DType t);
/* Safetensors spelling ("F32", "BF16", "F8_E4M3", ...). */
const char *dtype_name(DType t);
/* Parse a safetensors dtype string of length n; returns 0 or -1 if unknown. */
int dtype_parse(const char *s, size_t n, DType *out);

static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Round to nearest even; NaN stays NaN. */
static inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float f8e4m3_to_f32(uint8_t b);

/* Convert n elements of type t at src to float32 at dst. t must be one of the
 * float types (F32, F16, BF16, F8_E4M3). */
void dtype_to_f32(float *dst, const void *src, DType t, size_t n);

#endif
