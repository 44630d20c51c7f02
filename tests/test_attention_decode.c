/* SPDX-License-Identifier: MIT */
/* Decode attention for a group of heads (kernels/attention_decode.h): the
 * SIMD kernel against its scalar reference, and the reference against the
 * textbook form written out here in double (per head: scores, softmax,
 * weighted sum of the values), for MLA's shape (keys and values the same
 * cached rows, the values their first R numbers) and GQA's (keys and values
 * apart, strided rows), over head counts, cache lengths and widths that
 * are and are not multiples of the vector width. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "base/rng.h"
#include "kernels/attention_decode.h"

static void fill(float *x, size_t n, Rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = rng_normal(r);
}

/* H heads, S rows, keys of Dk and values of Dv; mla: the values are the
 * keys' first Dv numbers, else they follow the keys in each row. */
static void check(int H, int S, int Dk, int Dv, int mla, Rng *r) {
    const size_t qs = (size_t)Dk + 1, os = (size_t)Dv + 3, rs = mla ? (size_t)Dk : (size_t)Dk + Dv + 2;
    float *q = malloc(sizeof(float) * H * qs), *rows = malloc(sizeof(float) * S * rs);
    float *o = malloc(sizeof(float) * H * os), *o_ref = malloc(sizeof(float) * H * os);
    float *p = malloc(sizeof(float) * H * S), *e = malloc(sizeof(float) * S);
    cr_assert(q && rows && o && o_ref && p && e);
    fill(q, (size_t)H * qs, r);
    fill(rows, (size_t)S * rs, r);
    const float *k = rows, *v = mla ? rows : rows + Dk + 1;
    const float scale = 1.0f / sqrtf((float)Dk);
    attention_decode(o, os, q, qs, k, rs, v, rs, H, S, Dk, Dv, scale, p);
    attention_decode_ref(o_ref, os, q, qs, k, rs, v, rs, H, S, Dk, Dv, scale, p);
    for (int h = 0; h < H; h++) {
        double mx = -INFINITY, z = 0;
        for (int s = 0; s < S; s++) {
            double d = 0;
            for (int i = 0; i < Dk; i++) d += (double)q[h * qs + i] * k[s * rs + i];
            e[s] = (float)(scale * d);
            mx = fmax(mx, e[s]);
        }
        for (int s = 0; s < S; s++) z += exp(e[s] - mx);
        for (int i = 0; i < Dv; i++) {
            double want = 0;
            for (int s = 0; s < S; s++) want += exp(e[s] - mx) / z * v[s * rs + i];
            const float got = o[h * os + i], ref = o_ref[h * os + i];
            cr_assert(fabs(ref - want) <= 1e-5 + 1e-4 * fabs(want),
                      "H %d S %d Dk %d Dv %d head %d [%d]: reference %g, textbook %g", H, S, Dk, Dv,
                      h, i, ref, want);
            cr_assert(fabs(got - ref) <= 1e-5 + 1e-5 * fabs(ref),
                      "H %d S %d Dk %d Dv %d head %d [%d]: kernel %g, reference %g", H, S, Dk, Dv, h,
                      i, got, ref);
        }
    }
    free(q), free(rows), free(o), free(o_ref), free(p), free(e);
}

Test(attention_decode, mla_and_gqa_shapes_match_the_reference_and_the_textbook_form) {
    static const int shapes[][5] = {/* H, S, Dk, Dv, mla */
                                    {1, 1, 16, 16, 1},   {8, 37, 144, 128, 1}, {3, 100, 48, 40, 1},
                                    {16, 5, 576, 512, 1}, {2, 300, 20, 17, 1},  {6, 1, 128, 128, 0},
                                    {6, 77, 128, 128, 0}, {4, 33, 64, 64, 0},   {7, 200, 24, 40, 0}};
    Rng r;
    rng_seed(&r, 42);
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        check(shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3], shapes[i][4], &r);
}
