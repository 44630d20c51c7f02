/* SPDX-License-Identifier: MIT */
/* The sampler's distributions: exact ones through sampler_dist, and draws
 * checked against them with a chi-square bound. The draws use fixed seeds,
 * so each check is deterministic; the bounds are set at a 1e-4 tail of the
 * chi-square distribution, which a correct sampler passes for almost every
 * seed while a wrong distribution (e.g. a missing renormalisation, or p
 * instead of p^2) lands orders of magnitude above them. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infer/sampler.h"

/* Chi-square 0.9999 quantiles by degrees of freedom 1..10. */
static const double CHI2_9999[] = {0, 15.14, 18.42, 21.11, 23.51, 25.74,
                                   27.86, 29.88, 31.83, 33.72, 35.56};

static Sampler make(int V, SamplerOpts o) {
    Sampler s;
    Err err = {0};
    cr_assert_eq(sampler_init(&s, V, &o, &err), 0, "%s", err.msg);
    return s;
}

/* logits = log(p): softmax at temperature 1 gives back p (p sums to 1). */
static void log_probs(const double *p, int n, float *logits) {
    for (int i = 0; i < n; i++) logits[i] = p[i] > 0 ? (float)log(p[i]) : -INFINITY;
}

static void expect_dist(const char *what, const float *got, const double *want, int n,
                        double tol) {
    double mx = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs(got[i] - want[i]);
        if (d > mx) mx = d;
        if (d > tol)
            fprintf(stderr, "%s: id %d: expected %.6f, got %.6f\n", what, i, want[i], got[i]);
    }
    cr_expect(mx <= tol, "%s: max |diff| %g > %g", what, mx, tol);
}

/* Draw n tokens and compare the histogram with want (n_ids) by chi-square;
 * a draw where want is 0 fails at once. */
static void expect_draws(const char *what, Sampler *s, const float *logits, const double *want,
                         int n_ids, int n) {
    long *hist = calloc((size_t)n_ids, sizeof *hist);
    for (int i = 0; i < n; i++) {
        int t = sampler_sample(s, logits);
        cr_assert(t >= 0 && t < n_ids, "%s: drew id %d outside the vocabulary", what, t);
        cr_assert(want[t] > 0, "%s: drew id %d, which has probability 0", what, t);
        hist[t]++;
    }
    double chi2 = 0;
    int df = -1;
    for (int i = 0; i < n_ids; i++) {
        if (want[i] <= 0) continue;
        double e = want[i] * n;
        chi2 += (hist[i] - e) * (hist[i] - e) / e;
        df++;
    }
    cr_assert(df >= 1 && df <= 10);
    if (chi2 > CHI2_9999[df])
        for (int i = 0; i < n_ids; i++)
            fprintf(stderr, "%s: id %d: expected %.1f, drew %ld\n", what, i, want[i] * n, hist[i]);
    cr_expect(chi2 <= CHI2_9999[df], "%s: chi-square %.2f > %.2f (df %d)", what, chi2,
              CHI2_9999[df], df);
    free(hist);
}

static void normalise(double *p, int n) {
    double z = 0;
    for (int i = 0; i < n; i++) z += p[i];
    for (int i = 0; i < n; i++) p[i] /= z;
}

static const double P8[8] = {0.30, 0.20, 0.15, 0.12, 0.10, 0.07, 0.04, 0.02};

Test(sampler, temperature_one_is_softmax) {
    float lg[8], probs[8];
    log_probs(P8, 8, lg);
    for (int i = 0; i < 8; i++) lg[i] += 3.5f; /* a shift must not matter */
    Sampler s = make(8, (SamplerOpts){.temperature = 1, .seed = 1});
    sampler_dist(&s, lg, probs);
    expect_dist("T=1 dist", probs, P8, 8, 1e-6);
    expect_draws("T=1 draws", &s, lg, P8, 8, 200000);
    sampler_free(&s);
}

Test(sampler, temperature_half_squares) {
    float lg[8], probs[8];
    double want[8];
    log_probs(P8, 8, lg);
    for (int i = 0; i < 8; i++) want[i] = P8[i] * P8[i];
    normalise(want, 8);
    Sampler s = make(8, (SamplerOpts){.temperature = 0.5f, .seed = 2});
    sampler_dist(&s, lg, probs);
    expect_dist("T=0.5 dist", probs, want, 8, 1e-6);
    expect_draws("T=0.5 draws", &s, lg, want, 8, 200000);
    sampler_free(&s);
}

Test(sampler, greedy_is_argmax_lowest_id_on_ties) {
    float lg[6] = {0.5f, 2.0f, -1.0f, 2.0f, NAN, 1.0f};
    Sampler s = make(6, (SamplerOpts){.temperature = 0, .top_k = 3, .seed = 3});
    for (int i = 0; i < 100; i++) cr_assert_eq(sampler_sample(&s, lg), 1);
    float probs[6];
    sampler_dist(&s, lg, probs);
    cr_expect_eq(probs[1], 1.0f);
    sampler_free(&s);
    s = make(6, (SamplerOpts){.temperature = -1});
    cr_expect_eq(sampler_sample(&s, lg), 1, "a negative temperature is greedy too");
    sampler_free(&s);
}

Test(sampler, top_k_keeps_the_k_best_renormalised) {
    /* ids in scrambled order so "best" is not "first" */
    const int order[8] = {5, 2, 7, 0, 3, 6, 1, 4};
    double p[8];
    float lg[8], probs[8];
    for (int i = 0; i < 8; i++) p[order[i]] = P8[i];
    log_probs(p, 8, lg);
    double want[8] = {0};
    for (int i = 0; i < 3; i++) want[order[i]] = P8[i];
    normalise(want, 8);
    Sampler s = make(8, (SamplerOpts){.temperature = 1, .top_k = 3, .seed = 4});
    sampler_dist(&s, lg, probs);
    expect_dist("top-k dist", probs, want, 8, 1e-6);
    expect_draws("top-k draws", &s, lg, want, 8, 100000);
    sampler_free(&s);

    /* a tie at the boundary keeps the lower id */
    float tie[5] = {1, 3, 2, 2, 0};
    s = make(5, (SamplerOpts){.temperature = 1, .top_k = 2});
    sampler_dist(&s, tie, probs);
    cr_expect(probs[1] > 0 && probs[2] > 0 && probs[3] == 0 && probs[0] == 0 && probs[4] == 0,
              "tie: %g %g %g %g %g", probs[0], probs[1], probs[2], probs[3], probs[4]);
    sampler_free(&s);
}

Test(sampler, top_p_keeps_smallest_prefix_reaching_p) {
    const double p[5] = {0.5, 0.2, 0.15, 0.1, 0.05};
    float lg[5], probs[5];
    log_probs(p, 5, lg);
    /* top_p -> kept count: 0.45 -> 1, 0.65 -> 2 (0.5 < 0.65 <= 0.7), 0.8 -> 3, 0.9 -> 4, 0.96 -> 5 */
    const float tp[5] = {0.45f, 0.65f, 0.8f, 0.9f, 0.96f};
    for (int c = 0; c < 5; c++) {
        double want[5] = {0};
        for (int i = 0; i <= c; i++) want[i] = p[i];
        normalise(want, 5);
        Sampler s = make(5, (SamplerOpts){.temperature = 1, .top_p = tp[c], .seed = 5});
        char what[64];
        snprintf(what, sizeof what, "top-p %.2f", tp[c]);
        sampler_dist(&s, lg, probs);
        expect_dist(what, probs, want, 5, 1e-6);
        if (c == 2) expect_draws(what, &s, lg, want, 5, 100000);
        sampler_free(&s);
    }
}

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x > y ? -1 : x < y ? 1 : 0;
}

/* A large vocabulary exercises the weighted quickselect over many rounds,
 * for peaked and nearly flat logits, alone and after top-k (whose kept set
 * is then the vocabulary top-p works on). */
Test(sampler, top_p_large_vocab_is_smallest_prefix) {
    const int V = 20000;
    float *lg = malloc(sizeof(float) * V), *probs = malloc(sizeof(float) * V);
    float *sorted = malloc(sizeof(float) * V);
    Rng r;
    rng_seed(&r, 77);
    for (int trial = 0; trial < 6; trial++) {
        float scale = trial % 3 == 0 ? 8.0f : 0.5f; /* peaked or nearly flat */
        float top_p = trial % 2 ? 0.95f : 0.6f;
        int top_k = trial >= 4 ? 3000 : 0;
        for (int i = 0; i < V; i++) lg[i] = scale * rng_normal(&r);
        /* the vocabulary top-p sees: all, or the top_k best */
        memcpy(sorted, lg, sizeof(float) * V);
        qsort(sorted, V, sizeof(float), cmp_desc);
        float kth = top_k ? sorted[top_k - 1] : -INFINITY;
        double mx = sorted[0], z = 0;
        for (int i = 0; i < V; i++)
            if (lg[i] >= kth) z += exp(lg[i] - mx);
        Sampler s = make(V, (SamplerOpts){.temperature = 1, .top_p = top_p, .top_k = top_k});
        sampler_dist(&s, lg, probs);
        /* The smallest prefix reaching top_p, checked without relying on
         * the sampler's order: no dropped token outranks a kept one, the
         * kept mass reaches top_p, and without its least likely member it
         * would not. */
        int kept = 0;
        float min_kept = INFINITY, max_dropped = -INFINITY;
        double kept_mass = 0;
        for (int i = 0; i < V; i++) {
            if (probs[i] > 0) {
                kept++;
                kept_mass += exp(lg[i] - mx) / z;
                if (lg[i] < min_kept) min_kept = lg[i];
            } else if (lg[i] > max_dropped) {
                max_dropped = lg[i];
            }
        }
        double without_min = kept_mass - exp(min_kept - mx) / z;
        cr_expect(min_kept >= max_dropped, "trial %d: a dropped token outranks a kept one", trial);
        cr_expect(!top_k || kept <= top_k, "trial %d: kept %d > top_k", trial, kept);
        cr_expect(kept_mass >= top_p - 1e-6, "trial %d: kept mass %g < %g", trial, kept_mass,
                  (double)top_p);
        cr_expect(without_min < top_p + 1e-6,
                  "trial %d: not the smallest prefix: %g without the last", trial, without_min);
        fprintf(stderr, "top-p %.2f top-k %d scale %.1f: kept %d of %d\n", top_p, top_k, scale,
                kept, V);
        sampler_free(&s);
    }
    free(lg);
    free(probs);
    free(sorted);
}

Test(sampler, min_p_relative_to_max) {
    const double p[5] = {0.4, 0.3, 0.15, 0.1, 0.05};
    float lg[5], probs[5];
    log_probs(p, 5, lg);
    /* min_p 0.3: threshold 0.12 keeps 0.4, 0.3, 0.15; 0.5: threshold 0.2 keeps 0.4, 0.3 */
    const float mp[2] = {0.3f, 0.5f};
    const int keep[2] = {3, 2};
    for (int c = 0; c < 2; c++) {
        double want[5] = {0};
        for (int i = 0; i < keep[c]; i++) want[i] = p[i];
        normalise(want, 5);
        Sampler s = make(5, (SamplerOpts){.temperature = 1, .min_p = mp[c], .seed = 6});
        sampler_dist(&s, lg, probs);
        expect_dist(c ? "min-p 0.5" : "min-p 0.3", probs, want, 5, 1e-6);
        if (c == 0) expect_draws("min-p 0.3 draws", &s, lg, want, 5, 100000);
        sampler_free(&s);
    }
}

/* Truncation runs on the temperature-1 distribution (llama.cpp's order):
 * p = (0.4, 0.35, 0.25), top_p 0.5 keeps two tokens; applying T = 0.25 first
 * (Hugging Face's order) would make the first token's mass 0.58 and keep one. */
Test(sampler, truncation_before_temperature) {
    const double p[3] = {0.4, 0.35, 0.25};
    float lg[3], probs[3];
    log_probs(p, 3, lg);
    double want[3] = {pow(0.4, 4), pow(0.35, 4), 0};
    normalise(want, 3);
    Sampler s = make(3, (SamplerOpts){.temperature = 0.25f, .top_p = 0.5f, .seed = 7});
    sampler_dist(&s, lg, probs);
    expect_dist("top-p then T", probs, want, 3, 1e-6);
    expect_draws("top-p then T draws", &s, lg, want, 3, 100000);
    sampler_free(&s);
}

/* Penalties change exactly the tokens in the window, by the stated rules. */
Test(sampler, penalties_change_exactly_the_counted_tokens) {
    const int V = 8;
    float lg[8] = {1.0f, 2.0f, -1.0f, 0.5f, -2.0f, 3.0f, 0.0f, 1.5f}, probs[8];
    SamplerOpts o = {.temperature = 1,
                     .repetition_penalty = 1.5f,
                     .presence_penalty = 0.25f,
                     .frequency_penalty = 0.5f,
                     .penalty_last_n = -1};
    Sampler s = make(V, o);
    /* window: id 1 x3 (positive logit), id 2 x1 (negative), id 6 x2 (zero) */
    const int acc[6] = {1, 2, 1, 6, 1, 6};
    for (int i = 0; i < 6; i++) sampler_accept(&s, acc[i]);
    sampler_accept(&s, -5);     /* ignored */
    sampler_accept(&s, V + 3);  /* ignored */
    double pen[8];
    for (int i = 0; i < V; i++) pen[i] = lg[i];
    pen[1] = 2.0 / 1.5 - 3 * 0.5 - 0.25;
    pen[2] = -1.0 * 1.5 - 1 * 0.5 - 0.25;
    pen[6] = 0.0 - 2 * 0.5 - 0.25;
    double want[8];
    for (int i = 0; i < V; i++) want[i] = exp(pen[i]);
    normalise(want, V);
    sampler_dist(&s, lg, probs);
    expect_dist("penalised dist", probs, want, V, 1e-6);

    /* reset forgets the window */
    sampler_reset(&s);
    for (int i = 0; i < V; i++) want[i] = exp(lg[i]);
    normalise(want, V);
    sampler_dist(&s, lg, probs);
    expect_dist("after reset", probs, want, V, 1e-6);
    sampler_free(&s);

    /* a window of 3: id 5 leaves it after three more tokens */
    o.penalty_last_n = 3;
    o.presence_penalty = o.frequency_penalty = 0;
    s = make(V, o);
    sampler_accept(&s, 5);
    sampler_dist(&s, lg, probs);
    double r0 = probs[5] / probs[0];
    cr_expect(fabs(r0 - exp(3.0 / 1.5 - 1.0)) < 1e-4, "id 5 in the window: ratio %g", r0);
    sampler_accept(&s, 0);
    sampler_accept(&s, 3);
    sampler_accept(&s, 3);
    sampler_dist(&s, lg, probs);
    double r1 = probs[5] / probs[7];
    cr_expect(fabs(r1 - exp(3.0 - 1.5)) < 1e-4, "id 5 left the window: ratio %g", r1);
    double r2 = probs[3] / probs[7];
    cr_expect(fabs(r2 - exp(0.5 / 1.5 - 1.5)) < 1e-4, "id 3 (twice) in the window: ratio %g", r2);
    sampler_free(&s);

    /* greedy decoding sees the penalties: 5 is the argmax until penalised */
    s = make(V, (SamplerOpts){.repetition_penalty = 4});
    cr_expect_eq(sampler_sample(&s, lg), 5);
    sampler_accept(&s, 5);
    cr_expect_eq(sampler_sample(&s, lg), 1, "3/4 < 2: id 1 wins after the penalty");
    sampler_free(&s);
}

Test(sampler, seeds_reproduce_and_differ) {
    const int V = 1000, N = 500;
    float *lg = malloc(sizeof(float) * V);
    Rng r;
    rng_seed(&r, 9);
    for (int i = 0; i < V; i++) lg[i] = rng_normal(&r);
    int a[500], b[500], c[500];
    SamplerOpts o = {.temperature = 0.8f, .top_k = 200, .top_p = 0.95f, .seed = 1234};
    Sampler s1 = make(V, o), s2 = make(V, o);
    o.seed = 1235;
    Sampler s3 = make(V, o);
    int same_ac = 0;
    for (int i = 0; i < N; i++) {
        a[i] = sampler_sample(&s1, lg);
        b[i] = sampler_sample(&s2, lg);
        c[i] = sampler_sample(&s3, lg);
        same_ac += a[i] == c[i];
    }
    cr_expect(!memcmp(a, b, sizeof a), "the same seed gave different sequences");
    cr_expect(same_ac < N / 2, "different seeds agreed on %d of %d draws", same_ac, N);
    sampler_free(&s1);
    sampler_free(&s2);
    sampler_free(&s3);
    free(lg);
}

Test(sampler, bad_options) {
    Sampler s;
    Err err = {0};
    cr_expect_eq(sampler_init(&s, 0, NULL, &err), -1);
    cr_expect_eq(sampler_init(&s, 10, &(SamplerOpts){.temperature = NAN}, &err), -1);
    cr_expect(strstr(err.msg, "NaN") != NULL, "%s", err.msg);
    cr_expect_eq(sampler_init(&s, 10, &(SamplerOpts){.repetition_penalty = -1}, &err), -1);
    cr_expect_eq(sampler_init(&s, 10, &(SamplerOpts){.penalty_last_n = -2}, &err), -1);
    sampler_free(&s); /* zeroed by the failed init */
    cr_assert_eq(sampler_init(&s, 10, NULL, &err), 0, "%s", err.msg);
    sampler_free(&s);
}
