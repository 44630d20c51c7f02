/* SPDX-License-Identifier: MIT */
/* Block formats and scalar reference kernels (see quant.h). */
#include "kernels/quant.h"

#include <math.h>
#include <string.h>

#include "base/dtype.h"

static const char *names[QTYPE_COUNT] = {"f32", "f16", "bf16", "q8_0", "q4_0"};

const char *qtype_name(QType t) { return t < QTYPE_COUNT ? names[t] : "?"; }

int qtype_parse(const char *s, QType *out) {
    for (int t = 0; t < QTYPE_COUNT; t++)
        if (!strcmp(s, names[t])) {
            *out = (QType)t;
            return 0;
        }
    return -1;
}

int qtype_block(QType t) { return t == QTYPE_Q8_0 || t == QTYPE_Q4_0 ? QK : 1; }

size_t qtype_row_bytes(QType t, int cols) {
    switch (t) {
    case QTYPE_F32: return (size_t)cols * 4;
    case QTYPE_F16:
    case QTYPE_BF16: return (size_t)cols * 2;
    case QTYPE_Q8_0: return (size_t)cols / QK * sizeof(BlockQ8_0);
    case QTYPE_Q4_0: return (size_t)cols / QK * sizeof(BlockQ4_0);
    default: return 0;
    }
}

void quantize_row(QType t, const float *x, void *dst, int n) {
    switch (t) {
    case QTYPE_F32: memcpy(dst, x, (size_t)n * 4); break;
    case QTYPE_F16:
        for (int i = 0; i < n; i++) ((uint16_t *)dst)[i] = f32_to_f16(x[i]);
        break;
    case QTYPE_BF16:
        for (int i = 0; i < n; i++) ((uint16_t *)dst)[i] = f32_to_bf16(x[i]);
        break;
    case QTYPE_Q8_0: {
        BlockQ8_0 *b = dst;
        for (int i = 0; i < n / QK; i++, x += QK) {
            /* written so the compiler vectorises it (maxps, cvttps2dq):
             * activations are quantised at every matmul of every token */
            float amax = 0;
            for (int j = 0; j < QK; j++) {
                float a = x[j] < 0 ? -x[j] : x[j];
                amax = a > amax ? a : amax;
            }
            float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
            b[i].d = f32_to_f16(d);
            int q[QK];
            for (int j = 0; j < QK; j++) { /* round half away from zero, as roundf */
                float v = x[j] * id;
                q[j] = (int)(v + (v >= 0 ? 0.5f : -0.5f));
            }
            for (int j = 0; j < QK; j++) b[i].qs[j] = (int8_t)q[j];
        }
        break;
    }
    case QTYPE_Q4_0: {
        BlockQ4_0 *b = dst;
        for (int i = 0; i < n / QK; i++, x += QK) {
            float amax = 0, m = 0;
            for (int j = 0; j < QK; j++)
                if (fabsf(x[j]) > amax) amax = fabsf(x[j]), m = x[j];
            float d = m / -8.0f, id = d ? 1.0f / d : 0.0f;
            b[i].d = f32_to_f16(d);
            for (int j = 0; j < QK / 2; j++) {
                int lo = (int)(x[j] * id + 8.5f), hi = (int)(x[j + QK / 2] * id + 8.5f);
                lo = lo > 15 ? 15 : lo < 0 ? 0 : lo;
                hi = hi > 15 ? 15 : hi < 0 ? 0 : hi;
                b[i].qs[j] = (uint8_t)(lo | (hi << 4));
            }
        }
        break;
    }
    default: break;
    }
}

void dequantize_row(QType t, const void *src, float *y, int n) {
    switch (t) {
    case QTYPE_F32: memcpy(y, src, (size_t)n * 4); break;
    case QTYPE_F16: dtype_to_f32(y, src, DTYPE_F16, (size_t)n); break;
    case QTYPE_BF16: dtype_to_f32(y, src, DTYPE_BF16, (size_t)n); break;
    case QTYPE_Q8_0: {
        const BlockQ8_0 *b = src;
        for (int i = 0; i < n / QK; i++) {
            float d = f16_to_f32(b[i].d);
            for (int j = 0; j < QK; j++) y[i * QK + j] = d * b[i].qs[j];
        }
        break;
    }
    case QTYPE_Q4_0: {
        const BlockQ4_0 *b = src;
        for (int i = 0; i < n / QK; i++) {
            float d = f16_to_f32(b[i].d);
            for (int j = 0; j < QK / 2; j++) {
                y[i * QK + j] = d * ((b[i].qs[j] & 15) - 8);
                y[i * QK + j + QK / 2] = d * ((b[i].qs[j] >> 4) - 8);
            }
        }
        break;
    }
    default: break;
    }
}

float vec_dot_ref(QType t, const void *w, const float *xf, const BlockQ8_0 *xq, int n) {
    switch (t) {
    case QTYPE_F32: {
        const float *a = w;
        float s = 0;
        for (int i = 0; i < n; i++) s += a[i] * xf[i];
        return s;
    }
    case QTYPE_F16:
    case QTYPE_BF16: {
        const uint16_t *a = w;
        float s = 0;
        for (int i = 0; i < n; i++)
            s += (t == QTYPE_F16 ? f16_to_f32(a[i]) : bf16_to_f32(a[i])) * xf[i];
        return s;
    }
    case QTYPE_Q8_0: {
        const BlockQ8_0 *b = w;
        float s = 0;
        for (int i = 0; i < n / QK; i++) {
            int acc = 0;
            for (int j = 0; j < QK; j++) acc += b[i].qs[j] * xq[i].qs[j];
            s += (float)acc * f16_to_f32(b[i].d) * f16_to_f32(xq[i].d);
        }
        return s;
    }
    case QTYPE_Q4_0: {
        const BlockQ4_0 *b = w;
        float s = 0;
        for (int i = 0; i < n / QK; i++) {
            int acc = 0;
            for (int j = 0; j < QK / 2; j++)
                acc += ((b[i].qs[j] & 15) - 8) * xq[i].qs[j] +
                       ((b[i].qs[j] >> 4) - 8) * xq[i].qs[j + QK / 2];
            s += (float)acc * f16_to_f32(b[i].d) * f16_to_f32(xq[i].d);
        }
        return s;
    }
    default: return 0;
    }
}
