/* SPDX-License-Identifier: MIT */
/* Block formats and scalar reference kernels (see quant.h). */
#include "kernels/quant.h"

#include <math.h>
#ifdef __SSE__
#include <immintrin.h>
#endif
#include <string.h>

#include "base/dtype.h"
#include "base/threads.h"

static const char *names[QTYPE_COUNT] = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q6_k"};

const char *qtype_name(QType t) { return t < QTYPE_COUNT ? names[t] : "?"; }

int qtype_parse(const char *s, QType *out) {
    for (int t = 0; t < QTYPE_COUNT; t++)
        if (!strcmp(s, names[t])) {
            *out = (QType)t;
            return 0;
        }
    return -1;
}

int qtype_block(QType t) {
    switch (t) {
    case QTYPE_Q8_0:
    case QTYPE_Q4_0: return QK;
    case QTYPE_Q4_K:
    case QTYPE_Q6_K: return QK_K;
    default: return 1;
    }
}

size_t qtype_row_bytes(QType t, int cols) {
    switch (t) {
    case QTYPE_F32: return (size_t)cols * 4;
    case QTYPE_F16:
    case QTYPE_BF16: return (size_t)cols * 2;
    case QTYPE_Q8_0: return (size_t)cols / QK * sizeof(BlockQ8_0);
    case QTYPE_Q4_0: return (size_t)cols / QK * sizeof(BlockQ4_0);
    case QTYPE_Q4_K: return (size_t)cols / QK_K * sizeof(BlockQ4_K);
    case QTYPE_Q6_K: return (size_t)cols / QK_K * sizeof(BlockQ6_K);
    default: return 0;
    }
}

/* ---- k-quants ---------------------------------------------------------------- */

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* lrintf (nearest, ties to even, in the default rounding mode) without
 * the libm call, which had cost the k-quant fits their registers: their
 * sums lived on the stack across 21 calls per element, and converting the
 * 1.5B shape to Q4_K took 207 s. cvtss2si rounds by MXCSR as lrintf does,
 * and for finite weights the fits never round anything near the int
 * range's ends (an Inf or NaN weight's codes may differ from lrintf's). */
static inline int round_int(float v) {
#ifdef __SSE__
    return _mm_cvtss_si32(_mm_set_ss(v));
#else
    return (int)lrintf(v);
#endif
}

/* Fit the 32 values of a Q4_K sub-block as s*L + b with codes L in 0..15,
 * s >= 0 and b <= 0 (the format stores the min as a non-negative m = -b).
 * The weights w = rms + |x| favour the large values, which dominate a dot
 * product. Candidates: the codes of 21 grid spacings around (max-min)/15,
 * each followed by the weighted least-squares (s, b) for its codes; the
 * lowest weighted error wins. Returns s, *m = -b. */
static float q4k_fit(const float *x, float *m) {
    float lo = x[0], hi = x[0], ss = 0;
    for (int i = 0; i < 32; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
        ss += x[i] * x[i];
    }
    if (lo > 0) lo = 0;
    if (hi == lo) {
        *m = -lo;
        return 0;
    }
    float w[32], rms = sqrtf(ss / 32);
    for (int i = 0; i < 32; i++) w[i] = rms + fabsf(x[i]);
    float best_s = (hi - lo) / 15, best_b = lo, best_err = 0;
    for (int i = 0; i < 32; i++) {
        float d = best_s * clampi(round_int((x[i] - lo) / best_s), 0, 15) + lo - x[i];
        best_err += w[i] * d * d;
    }
    for (int k = -10; k <= 10; k++) {
        float is = (15 + 0.1f * (float)k) / (hi - lo);
        int L[32];
        float sw = 0, sl = 0, sll = 0, sx = 0, slx = 0;
        for (int i = 0; i < 32; i++) {
            L[i] = clampi(round_int((x[i] - lo) * is), 0, 15);
            sw += w[i], sl += w[i] * L[i], sll += w[i] * L[i] * L[i];
            sx += w[i] * x[i], slx += w[i] * L[i] * x[i];
        }
        float det = sw * sll - sl * sl;
        if (det <= 0) continue;
        float sc = (sw * slx - sx * sl) / det, b = (sll * sx - sl * slx) / det;
        if (b > 0) b = 0, sc = slx / sll;
        if (!(sc > 0)) continue;
        float err = 0;
        for (int i = 0; i < 32; i++) {
            float d = sc * L[i] + b - x[i];
            err += w[i] * d * d;
        }
        if (err < best_err) best_err = err, best_s = sc, best_b = b;
    }
    *m = -best_b;
    return best_s;
}

/* Weighted squared error (w = rms + |x|, as in q4k_fit) of a Q4_K
 * sub-block coded with step dd and min dm. */
static float q4k_error(const float *x, float dd, float dm) {
    float ss = 0, e = 0;
    for (int l = 0; l < 32; l++) ss += x[l] * x[l];
    const float rms = sqrtf(ss / 32);
    for (int l = 0; l < 32; l++) {
        int q = dd ? clampi(round_int((x[l] + dm) / dd), 0, 15) : 0;
        float r = dd * (float)q - dm - x[l];
        e += (rms + fabsf(x[l])) * r * r;
    }
    return e;
}

static void quantize_q4_k(const float *x, BlockQ4_K *y, int nb) {
    for (int i = 0; i < nb; i++, x += QK_K) {
        float sc[8], mn[8], max_sc = 0, max_mn = 0;
        for (int j = 0; j < 8; j++) {
            sc[j] = q4k_fit(x + 32 * j, &mn[j]);
            max_sc = sc[j] > max_sc ? sc[j] : max_sc;
            max_mn = mn[j] > max_mn ? mn[j] : max_mn;
        }
        /* the 6-bit sub-block scales and mins are steps of max/63; a min is
         * rounded up and a scale widened where rounding would leave the
         * sub-block's extremes outside the 16 codes (clamping costs more
         * than the coarser step) */
        y[i].d = f32_to_f16(max_sc / 63);
        y[i].dmin = f32_to_f16(max_mn / 63);
        const float d = f16_to_f32(y[i].d), dmin = f16_to_f32(y[i].dmin);
        memset(y[i].scales, 0, sizeof y[i].scales);
        uint8_t L[QK_K];
        for (int j = 0; j < 8; j++) {
            const float *xj = x + 32 * j;
            float hi = 0, lo = 0;
            for (int l = 0; l < 32; l++) {
                hi = xj[l] > hi ? xj[l] : hi;
                lo = xj[l] < lo ? xj[l] : lo;
            }
            /* candidates: the rounded scale and min, and the ones that
             * cover the sub-block's extremes; the lower weighted error wins */
            const float need_m = mn[j] > -lo ? mn[j] : -lo;
            int ls = 0, lm = 0;
            float best = -1;
            for (int cand = 0; cand < 4; cand++) {
                int m6 = dmin > 0 ? clampi((int)(cand & 1 ? ceilf(need_m / dmin)
                                                           : round_int(mn[j] / dmin)), 0, 63) : 0;
                int s6 = d > 0 ? clampi(round_int(sc[j] / d), 0, 63) : 0;
                if (cand & 2 && d > 0 && hi + dmin * (float)m6 > 15 * d * (float)s6)
                    s6 = clampi((int)ceilf((hi + dmin * (float)m6) / (15 * d)), 0, 63);
                float e = q4k_error(xj, d * (float)s6, dmin * (float)m6);
                if (best < 0 || e < best) best = e, ls = s6, lm = m6;
            }
            const float dm = dmin * (float)lm;
            if (j < 4) {
                y[i].scales[j] = (uint8_t)ls;
                y[i].scales[j + 4] = (uint8_t)lm;
            } else {
                y[i].scales[j + 4] = (uint8_t)((ls & 15) | ((lm & 15) << 4));
                y[i].scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
                y[i].scales[j] |= (uint8_t)((lm >> 4) << 6);
            }
            /* codes against the scales as stored (fp16 and 6 bits) */
            const float dd = d * (float)ls;
            for (int l = 0; l < 32; l++)
                L[32 * j + l] = dd ? (uint8_t)clampi(round_int((xj[l] + dm) / dd), 0, 15) : 0;
        }
        for (int p = 0; p < 4; p++)
            for (int l = 0; l < 32; l++)
                y[i].qs[32 * p + l] = (uint8_t)(L[64 * p + l] | (L[64 * p + 32 + l] << 4));
    }
}

static void dequantize_q4_k(const BlockQ4_K *b, float *y, int nb) {
    for (int i = 0; i < nb; i++) {
        const float d = f16_to_f32(b[i].d), dmin = f16_to_f32(b[i].dmin);
        for (int j = 0; j < 8; j++) {
            int sc, m;
            q4k_scale_min(b[i].scales, j, &sc, &m);
            const float dd = d * (float)sc, dm = dmin * (float)m;
            const uint8_t *q = b[i].qs + 32 * (j / 2);
            const int shift = 4 * (j & 1);
            for (int l = 0; l < 32; l++) *y++ = dd * (float)((q[l] >> shift) & 15) - dm;
        }
    }
}

/* Fit the 16 values of a Q6_K sub-block as s*q, q in -32..31: the codes of
 * 19 scales around the one that maps the largest-magnitude value to -32
 * (the code with no positive twin), each refit by weighted least squares
 * (w = x^2); the best weighted error wins. Returns s (signed). */
static float q6k_fit(const float *x) {
    float amax = 0, mx = 0;
    for (int i = 0; i < 16; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), mx = x[i];
    if (amax < 1e-30f) return 0;
    float best_s = 0, best = -1;
    for (int k = -9; k <= 9; k++) {
        float is = -(32 + 0.1f * (float)k) / mx, sxq = 0, sqq = 0;
        for (int i = 0; i < 16; i++) {
            int q = clampi(round_int(is * x[i]), -32, 31);
            float w = x[i] * x[i];
            sxq += w * x[i] * (float)q;
            sqq += w * (float)(q * q);
        }
        /* the error is sum w x^2 - sxq^2/sqq: maximise sxq^2/sqq */
        if (sqq > 0 && sxq * sxq / sqq > best) best = sxq * sxq / sqq, best_s = sxq / sqq;
    }
    return best_s;
}

static void quantize_q6_k(const float *x, BlockQ6_K *y, int nb) {
    for (int i = 0; i < nb; i++, x += QK_K) {
        float sc[16], ms = 0;
        for (int j = 0; j < 16; j++) {
            sc[j] = q6k_fit(x + 16 * j);
            if (fabsf(sc[j]) > fabsf(ms)) ms = sc[j];
        }
        memset(&y[i], 0, sizeof y[i]);
        if (fabsf(ms) < 1e-30f) continue; /* an all-zero block */
        /* the largest scale becomes -128, the int8 code with no positive
         * twin; a scale is widened where its rounding would clamp codes */
        const float is = -128 / ms;
        y[i].d = f32_to_f16(1 / is);
        const float d = f16_to_f32(y[i].d);
        uint8_t L[QK_K];
        for (int j = 0; j < 16; j++) {
            const float *xj = x + 16 * j;
            int s8 = clampi(round_int(is * sc[j]), -128, 127);
            for (;;) {
                int clamped = 0;
                const float dd = d * (float)s8;
                for (int l = 0; l < 16; l++) {
                    int q = dd ? round_int(xj[l] / dd) : 0;
                    clamped |= q < -32 || q > 31;
                    L[16 * j + l] = (uint8_t)(32 + clampi(q, -32, 31));
                }
                if (!clamped || s8 == 127 || s8 == -128) break;
                s8 += s8 > 0 ? 1 : -1;
            }
            y[i].scales[j] = (int8_t)s8;
        }
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const uint8_t *c = L + 128 * h + l;
                y[i].ql[64 * h + l] = (uint8_t)((c[0] & 15) | ((c[64] & 15) << 4));
                y[i].ql[64 * h + 32 + l] = (uint8_t)((c[32] & 15) | ((c[96] & 15) << 4));
                y[i].qh[32 * h + l] =
                    (uint8_t)((c[0] >> 4) | ((c[32] >> 4) << 2) | ((c[64] >> 4) << 4) | ((c[96] >> 4) << 6));
            }
    }
}

/* The 6-bit code (0..63) of element 32g + l of half h of a Q6_K block. */
static inline int q6k_code(const BlockQ6_K *b, int h, int g, int l) {
    int lo = (b->ql[64 * h + 32 * (g & 1) + l] >> (4 * (g >> 1))) & 15;
    int hi = (b->qh[32 * h + l] >> (2 * g)) & 3;
    return lo | (hi << 4);
}

static void dequantize_q6_k(const BlockQ6_K *b, float *y, int nb) {
    for (int i = 0; i < nb; i++) {
        const float d = f16_to_f32(b[i].d);
        for (int h = 0; h < 2; h++)
            for (int g = 0; g < 4; g++)
                for (int l = 0; l < 32; l++) {
                    int e = 128 * h + 32 * g + l;
                    *y++ = d * (float)b[i].scales[e / 16] * (float)(q6k_code(&b[i], h, g, l) - 32);
                }
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
    case QTYPE_Q4_K: quantize_q4_k(x, dst, n / QK_K); break;
    case QTYPE_Q6_K: quantize_q6_k(x, dst, n / QK_K); break;
    default: break;
    }
}

typedef struct Rows {
    QType t;
    const float *src;
    void *dst;
    int cols;
} Rows;

static void quantize_some(void *ctx, long lo, long hi) {
    const Rows *q = ctx;
    const size_t rb = qtype_row_bytes(q->t, q->cols);
    for (long r = lo; r < hi; r++)
        quantize_row(q->t, q->src + r * q->cols, (char *)q->dst + (size_t)r * rb, q->cols);
}

void quantize_rows(QType t, const float *src, void *dst, long n_rows, int cols) {
    Rows q = {t, src, dst, cols};
    threads_chunks(n_rows, 16, quantize_some, &q);
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
    case QTYPE_Q4_K: dequantize_q4_k(src, y, n / QK_K); break;
    case QTYPE_Q6_K: dequantize_q6_k(src, y, n / QK_K); break;
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
    case QTYPE_Q4_K: {
        /* per Q8_0 block (= sub-block j): dx * (d*sc*sum(q x) - dmin*m*sum(x)) */
        const BlockQ4_K *b = w;
        float s = 0;
        for (int i = 0; i < n / QK_K; i++) {
            const float d = f16_to_f32(b[i].d), dmin = f16_to_f32(b[i].dmin);
            for (int j = 0; j < 8; j++) {
                const BlockQ8_0 *x = &xq[8 * i + j];
                const uint8_t *q = b[i].qs + 32 * (j / 2);
                const int shift = 4 * (j & 1);
                int sc, m, qx = 0, sx = 0;
                q4k_scale_min(b[i].scales, j, &sc, &m);
                for (int l = 0; l < 32; l++) {
                    qx += ((q[l] >> shift) & 15) * x->qs[l];
                    sx += x->qs[l];
                }
                s += f16_to_f32(x->d) * (d * (float)(sc * qx) - dmin * (float)(m * sx));
            }
        }
        return s;
    }
    case QTYPE_Q6_K: {
        /* per Q8_0 block (= group g of half h): dx * d * sum over its two
         * 16-element sub-blocks of sc * sum((q - 32) x) */
        const BlockQ6_K *b = w;
        float s = 0;
        for (int i = 0; i < n / QK_K; i++) {
            const float d = f16_to_f32(b[i].d);
            for (int h = 0; h < 2; h++)
                for (int g = 0; g < 4; g++) {
                    const BlockQ8_0 *x = &xq[8 * i + 4 * h + g];
                    const int8_t *sc = b[i].scales + 8 * h + 2 * g;
                    int a0 = 0, a1 = 0;
                    for (int l = 0; l < 16; l++) {
                        a0 += (q6k_code(&b[i], h, g, l) - 32) * x->qs[l];
                        a1 += (q6k_code(&b[i], h, g, l + 16) - 32) * x->qs[l + 16];
                    }
                    s += f16_to_f32(x->d) * d * (float)(sc[0] * a0 + sc[1] * a1);
                }
        }
        return s;
    }
    default: return 0;
    }
}
