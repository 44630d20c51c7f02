/* SPDX-License-Identifier: MIT */
/* The fused MLA decode attention (kernels/attention_latent.h): the SIMD
 * kernel against its scalar reference, and the reference against the
 * textbook form written out here (per head: scores, softmax, weighted sum
 * of the latents), over head counts, cache lengths and widths that are and
 * are not multiples of the vector width. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "base/rng.h"
#include "kernels/attention_latent.h"

static void fill(float *x, size_t n, Rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = rng_normal(r);
}

Test(attention_latent, matches_its_reference_and_the_textbook_form) {
    const int shapes[][4] = {/* H, S, R, rope */
                             {1, 1, 16, 0},  {8, 37, 128, 16}, {3, 100, 40, 8},
                             {16, 5, 512, 64}, {2, 300, 17, 3}};
    Rng r;
    rng_seed(&r, 42);
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        const int H = shapes[k][0], S = shapes[k][1], R = shapes[k][2], W = R + shapes[k][3];
        const size_t stride = (size_t)R + 3; /* o rows apart, as model/mla.c's (H, T, R) layout */
        float *qa = malloc(sizeof(float) * H * W), *kv = malloc(sizeof(float) * S * W);
        float *o = malloc(sizeof(float) * H * stride), *o_ref = malloc(sizeof(float) * H * stride);
        float *p = malloc(sizeof(float) * H * S), *e = malloc(sizeof(float) * S);
        cr_assert(qa && kv && o && o_ref && p && e);
        fill(qa, (size_t)H * W, &r);
        fill(kv, (size_t)S * W, &r);
        const float scale = 1.0f / sqrtf((float)W);
        attention_latent(o, stride, qa, kv, H, S, W, R, scale, p);
        attention_latent_ref(o_ref, stride, qa, kv, H, S, W, R, scale, p);
        for (int h = 0; h < H; h++) {
            /* textbook, in double */
            double mx = -INFINITY, z = 0;
            for (int s = 0; s < S; s++) {
                double d = 0;
                for (int i = 0; i < W; i++) d += (double)qa[h * W + i] * kv[s * W + i];
                e[s] = (float)(scale * d);
                mx = fmax(mx, e[s]);
            }
            for (int s = 0; s < S; s++) z += exp(e[s] - mx);
            for (int i = 0; i < R; i++) {
                double want = 0;
                for (int s = 0; s < S; s++) want += exp(e[s] - mx) / z * kv[s * W + i];
                const float got = o[h * stride + i], ref = o_ref[h * stride + i];
                cr_assert(fabs(ref - want) <= 1e-5 + 1e-4 * fabs(want),
                          "shape %zu head %d [%d]: reference %g, textbook %g", k, h, i, ref, want);
                cr_assert(fabs(got - ref) <= 1e-5 + 1e-5 * fabs(ref),
                          "shape %zu head %d [%d]: kernel %g, reference %g", k, h, i, got, ref);
            }
        }
        free(qa), free(kv), free(o), free(o_ref), free(p), free(e);
    }
}
