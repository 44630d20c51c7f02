/* SPDX-License-Identifier: MIT */
/* RoPE frequencies and rotation (see rope.h).
 * YaRN (Peng et al. 2023) as in DeepSeek-V3 inference/model.py
 * precompute_freqs_cis: the correction range is floor/ceil of the
 * correction dims, clamped to [0, dim-1], and the ramp adds 1e-3 to its
 * width only when the range is empty. The two mscales are HF's: the
 * softmax scale gets
 * mscale(factor, mscale_all_dim)^2 and cos/sin get
 * mscale(factor, mscale)/mscale(factor, mscale_all_dim); the official code has
 * one mscale and real configs set both keys equal, where the two agree. */
#include "model/rope.h"

#include <math.h>

static double yarn_mscale(double factor, double m) {
    return factor <= 1.0 ? 1.0 : 0.1 * m * log(factor) + 1.0;
}

/* Dimension index at which a wavelength makes `rotations` turns over the
 * original context (YaRN eq. 17). */
static double yarn_correction_dim(double rotations, int dim, double base, int orig) {
    return dim * log(orig / (rotations * 2.0 * M_PI)) / (2.0 * log(base));
}

int rope_init(Rope *r, const ModelConfig *c, Err *err) {
    int mla = config_is_mla(c);
    int dim = mla ? c->qk_rope_head_dim : c->head_dim;
    if (dim <= 0 || dim > ROPE_MAX_DIM || dim % 2)
        return err_set(err, "rope dimension %d is not supported (even, at most %d)", dim,
                       ROPE_MAX_DIM);
    r->dim = dim;
    r->interleaved = mla;
    r->cos_sin_scale = 1.0f;
    double qk = mla ? c->qk_nope_head_dim + c->qk_rope_head_dim : c->head_dim;
    double scale = 1.0 / sqrt(qk);
    const RopeScaling *rs = &c->rope;
    const double base = c->rope_theta, factor = rs->factor;
    const int half = dim / 2, orig = rs->original_max_position_embeddings;

    double lo = 0, hi = 0;
    if (rs->type == ROPE_YARN) {
        lo = floor(yarn_correction_dim(rs->beta_fast, dim, base, orig));
        hi = ceil(yarn_correction_dim(rs->beta_slow, dim, base, orig));
        if (lo < 0) lo = 0;
        if (hi > dim - 1) hi = dim - 1;
        if (rs->mscale_all_dim != 0) {
            double m = yarn_mscale(factor, rs->mscale_all_dim);
            scale *= m * m;
        }
        r->cos_sin_scale =
            (float)(yarn_mscale(factor, rs->mscale) / yarn_mscale(factor, rs->mscale_all_dim));
    }
    for (int i = 0; i < half; i++) {
        /* computed in double and rounded once to float: within an ulp of
         * the float32 frequencies of the official code */
        double f = 1.0 / pow(base, (double)(2 * i) / dim);
        switch (rs->type) {
        case ROPE_DEFAULT: break;
        case ROPE_LINEAR: f /= factor; break;
        case ROPE_YARN: {
            double ramp = (i - lo) / (hi == lo ? 1e-3 : hi - lo);
            ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
            double smooth = 1.0 - ramp; /* 1: keep the original frequency */
            f = f * (smooth + (1.0 - smooth) / factor);
            break;
        }
        case ROPE_LLAMA3: {
            double low_wavelen = orig / rs->low_freq_factor;
            double high_wavelen = orig / rs->high_freq_factor;
            double wavelen = 2.0 * M_PI / f;
            if (wavelen > low_wavelen) {
                f = f / factor;
            } else if (wavelen >= high_wavelen) {
                double s = (orig / wavelen - rs->low_freq_factor) /
                           (rs->high_freq_factor - rs->low_freq_factor);
                f = (1.0 - s) * f / factor + s * f;
            }
            break;
        }
        }
        r->inv_freq[i] = (float)f;
    }
    r->softmax_scale = (float)scale;
    return 0;
}

void rope_table(const Rope *r, int p0, int n, float *cs) {
    const int half = r->dim / 2;
    for (int p = 0; p < n; p++) {
        float *c = cs + (size_t)p * r->dim, *s = c + half;
        for (int i = 0; i < half; i++) {
            /* angle rounded to float first, as torch.outer(pos, freqs) does */
            float angle = (float)(p0 + p) * r->inv_freq[i];
            c[i] = (float)cos((double)angle) * r->cos_sin_scale;
            s[i] = (float)sin((double)angle) * r->cos_sin_scale;
        }
    }
}

void rope_rotate_cs(const Rope *r, const float *cs, float *x, int n, int stride, float sign) {
    const int half = r->dim / 2;
    const float *c = cs, *s = cs + half;
    for (int v = 0; v < n; v++) {
        float *xv = x + (size_t)v * stride;
        for (int i = 0; i < half; i++) {
            int a = r->interleaved ? 2 * i : i, b = r->interleaved ? 2 * i + 1 : i + half;
            float x0 = xv[a], x1 = xv[b], si = sign * s[i];
            xv[a] = x0 * c[i] - x1 * si;
            xv[b] = x0 * si + x1 * c[i];
        }
    }
}

/* Rotate n vectors (stride floats apart) by +angle (sign 1) or by -angle
 * (sign -1): the rotation's transpose, which is its backward. The angles
 * are computed once for all of them. */
static void rope_rotate(const Rope *r, float *x, int n, int stride, int pos, float sign) {
    float cs[ROPE_MAX_DIM];
    rope_table(r, pos, 1, cs);
    rope_rotate_cs(r, cs, x, n, stride, sign);
}

void rope_apply(const Rope *r, float *x, int pos) { rope_rotate(r, x, 1, 0, pos, 1.0f); }

void rope_apply_heads(const Rope *r, float *x, int n, int stride, int pos) {
    rope_rotate(r, x, n, stride, pos, 1.0f);
}

void rope_backward(const Rope *r, float *dx, int pos) { rope_rotate(r, dx, 1, 0, pos, -1.0f); }
