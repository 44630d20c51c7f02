/* SPDX-License-Identifier: MIT */
/* Element types and scalar float conversions (see dtype.h). */
#include "base/dtype.h"

#include <assert.h>
#include <math.h>

static const struct {
    const char *name;
    size_t size;
} dtype_info[DTYPE_COUNT] = {
    [DTYPE_F32] = {"F32", 4},     [DTYPE_F16] = {"F16", 2}, [DTYPE_BF16] = {"BF16", 2},
    [DTYPE_F8_E4M3] = {"F8_E4M3", 1}, [DTYPE_I32] = {"I32", 4}, [DTYPE_I64] = {"I64", 8},
    [DTYPE_U8] = {"U8", 1},
};

size_t dtype_size(DType t) {
    assert(t < DTYPE_COUNT);
    return dtype_info[t].size;
}

const char *dtype_name(DType t) { return t < DTYPE_COUNT ? dtype_info[t].name : "?"; }

int dtype_parse(const char *s, size_t n, DType *out) {
    for (int t = 0; t < DTYPE_COUNT; t++) {
        const char *name = dtype_info[t].name;
        if (strlen(name) == n && memcmp(name, s, n) == 0) {
            *out = (DType)t;
            return 0;
        }
    }
    return -1;
}

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    uint32_t u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {
        u = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        u = sign;
    } else { /* subnormal: value = man * 2^-24 */
        float f = ldexpf((float)man, -24);
        memcpy(&u, &f, 4);
        u |= sign;
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    float a = fabsf(f);
    if (isnan(f)) return sign | 0x7e00;
    if (a >= 65520.0f) return sign | 0x7c00; /* rounds to infinity */
    if (a < 6.103515625e-05f) {              /* subnormal or zero: units of 2^-24 */
        float q = nearbyintf(a * 16777216.0f); /* ties to even in the default mode */
        return sign | (uint16_t)q;
    }
    uint32_t au;
    memcpy(&au, &a, 4);
    uint32_t exp = (au >> 23) - 112, man = au & 0x7fffff;
    uint32_t h = (exp << 10) | (man >> 13);
    uint32_t rest = man & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++; /* carry may bump exponent: fine */
    return sign | (uint16_t)h;
}

float f8e4m3_to_f32(uint8_t b) {
    uint32_t sign = b >> 7, exp = (b >> 3) & 0xf, man = b & 7;
    float v;
    if (exp == 0xf && man == 7) return NAN;
    if (exp == 0) v = ldexpf((float)man, -9); /* subnormal: man/8 * 2^-6 */
    else v = ldexpf((float)(8 + man), (int)exp - 10);
    return sign ? -v : v;
}

void dtype_to_f32(float *dst, const void *src, DType t, size_t n) {
    switch (t) {
    case DTYPE_F32: memcpy(dst, src, n * 4); break;
    case DTYPE_BF16: {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = bf16_to_f32(s[i]);
        break;
    }
    case DTYPE_F16: {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = f16_to_f32(s[i]);
        break;
    }
    case DTYPE_F8_E4M3: {
        const uint8_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = f8e4m3_to_f32(s[i]);
        break;
    }
    default: assert(!"dtype_to_f32: not a float type");
    }
}
