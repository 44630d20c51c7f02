/* SPDX-License-Identifier: MIT */
/* Sampling (see sampler.h): penalties, truncation, temperature, one draw.
 * Truncation works on the temperature-1 distribution as llama.cpp does; its
 * three filters each keep a prefix of the tokens ordered by logit (ties by
 * lower id), so their intersection does not depend on the order they run
 * in, and none of them needs a sort: min-p is a threshold, top-k and top-p
 * are (weighted) quickselects, and a draw does not need the kept set in
 * order. Everything here runs on buffers sized at init: no allocation per
 * token. */
#include "infer/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_WINDOW 64

int sampler_init(Sampler *s, int n_vocab, const SamplerOpts *o, Err *err) {
    memset(s, 0, sizeof *s);
    SamplerOpts d = {0};
    if (!o) o = &d;
    if (n_vocab < 1) return err_set(err, "sampler: vocabulary size %d must be positive", n_vocab);
    if (isnan(o->temperature) || isnan(o->top_p) || isnan(o->min_p) ||
        isnan(o->repetition_penalty) || isnan(o->presence_penalty) ||
        isnan(o->frequency_penalty))
        return err_set(err, "sampler: an option is NaN");
    if (o->repetition_penalty < 0)
        return err_set(err, "sampler: repetition penalty %g must be positive (1 is off)",
                       o->repetition_penalty);
    if (o->penalty_last_n < -1)
        return err_set(err, "sampler: penalty window %d must be -1 (all), 0 (default) or positive",
                       o->penalty_last_n);
    s->o = *o;
    s->n_vocab = n_vocab;
    s->window = o->penalty_last_n == 0 ? DEFAULT_WINDOW : o->penalty_last_n;
    size_t V = (size_t)n_vocab;
    s->logits = malloc(V * sizeof *s->logits);
    s->cand = malloc(V * sizeof *s->cand);
    s->count = calloc(V, sizeof *s->count);
    s->seen = malloc(V * sizeof *s->seen);
    s->seen_pos = malloc(V * sizeof *s->seen_pos);
    s->ring = s->window > 0 ? malloc((size_t)s->window * sizeof *s->ring) : NULL;
    if (!s->logits || !s->cand || !s->count || !s->seen || !s->seen_pos ||
        (s->window > 0 && !s->ring)) {
        sampler_free(s);
        return err_set(err, "sampler: out of memory for a vocabulary of %d", n_vocab);
    }
    rng_seed(&s->rng, o->seed);
    return 0;
}

void sampler_free(Sampler *s) {
    free(s->logits);
    free(s->cand);
    free(s->count);
    free(s->seen);
    free(s->seen_pos);
    free(s->ring);
    memset(s, 0, sizeof *s);
}

void sampler_reset(Sampler *s) {
    for (int i = 0; i < s->n_seen; i++) s->count[s->seen[i]] = 0;
    s->n_seen = 0;
    s->ring_len = s->ring_head = 0;
}

void sampler_reseed(Sampler *s, float temperature, uint64_t seed) {
    s->o.temperature = temperature;
    s->o.seed = seed;
    rng_seed(&s->rng, seed);
}

static void window_add(Sampler *s, int id) {
    if (s->count[id]++ == 0) {
        s->seen_pos[id] = s->n_seen;
        s->seen[s->n_seen++] = id;
    }
}

static void window_remove(Sampler *s, int id) {
    if (--s->count[id] == 0) { /* swap-remove from the seen list */
        int p = s->seen_pos[id], last = s->seen[--s->n_seen];
        s->seen[p] = last;
        s->seen_pos[last] = p;
    }
}

void sampler_accept(Sampler *s, int id) {
    if (id < 0 || id >= s->n_vocab) return;
    if (s->window > 0) {
        if (s->ring_len == s->window) window_remove(s, s->ring[s->ring_head]);
        else s->ring_len++;
        s->ring[s->ring_head] = id;
        s->ring_head = (s->ring_head + 1) % s->window;
    }
    window_add(s, id);
}

/* ---- truncation ------------------------------------------------------------ */

/* The total order of candidates: higher logit first, then lower id. */
static inline int better(const SamplerCand *a, const SamplerCand *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static inline void swap_cand(SamplerCand *a, SamplerCand *b) {
    SamplerCand t = *a;
    *a = *b;
    *b = t;
}

/* Rearrange c[0..n) so that c[0..k) are its k best (in no order), 0 < k < n.
 * Quickselect with a median-of-three pivot: O(n) expected, deterministic. */
static void select_best(SamplerCand *c, int n, int k) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (better(&c[mid], &c[lo])) swap_cand(&c[mid], &c[lo]);
        if (better(&c[hi], &c[lo])) swap_cand(&c[hi], &c[lo]);
        if (better(&c[hi], &c[mid])) swap_cand(&c[hi], &c[mid]);
        SamplerCand pivot = c[mid]; /* the median of the three */
        int i = lo, j = hi;
        while (i <= j) {
            while (better(&c[i], &pivot)) i++;
            while (better(&pivot, &c[j])) j--;
            if (i <= j) swap_cand(&c[i++], &c[j--]);
        }
        /* now c[lo..j] are >= pivot's rank, c[i..hi] <= it */
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else return;
    }
}

/* The smallest set of best candidates whose probability mass reaches
 * p: a weighted quickselect on c[0..n), each candidate's weight
 * exp(logit - mx) in its w field. Invariant: c[0..lo) rank before
 * c[lo..hi), which rank before c[hi..n); the answer K (the size of the
 * smallest reaching prefix of the ranking) lies in (lo, hi], and `mass`
 * is the weight of c[0..lo). Each round partitions c[lo..hi) around a
 * pivot and keeps the side that holds K: O(n) expected and no sort, which
 * matters for flat distributions where the kept set is most of a 100k+
 * vocabulary. Leaves the kept candidates (in no order) in c[0..K) and
 * returns K >= 1. */
static int top_p_select(SamplerCand *c, int n, float mx, double p) {
    double z = 0;
    for (int i = 0; i < n; i++) z += c[i].w = expf(c[i].logit - mx);
    double target = p * z, mass = 0;
    int lo = 0, hi = n;
    while (hi - lo > 1) {
        int mid = lo + (hi - lo) / 2, last = hi - 1;
        if (better(&c[mid], &c[lo])) swap_cand(&c[mid], &c[lo]);
        if (better(&c[last], &c[lo])) swap_cand(&c[last], &c[lo]);
        if (better(&c[last], &c[mid])) swap_cand(&c[last], &c[mid]);
        swap_cand(&c[mid], &c[last]); /* the median pivot at the end */
        SamplerCand pivot = c[last];
        int a = lo;
        double mass_b = 0;
        for (int i = lo; i < last; i++)
            if (better(&c[i], &pivot)) {
                mass_b += c[i].w;
                swap_cand(&c[i], &c[a++]);
            }
        swap_cand(&c[a], &c[last]); /* c[lo..a) better, c[a] pivot, c(a..hi) worse */
        if (mass + mass_b >= target) {
            hi = a;
        } else if (mass + mass_b + c[a].w >= target) {
            return a + 1;
        } else {
            mass += mass_b + c[a].w;
            lo = a + 1;
        }
    }
    return hi > 0 ? hi : 1; /* hi == n when rounding kept the total just under target */
}

static int argmax(const float *x, int n) {
    int best = 0;
    float bv = -INFINITY;
    for (int i = 0; i < n; i++)
        if (x[i] > bv) bv = x[i], best = i; /* strict: the lowest id wins ties; NaN never */
    return best;
}

/* Penalties into s->logits, then the candidates that survive truncation
 * into s->cand. Returns their count, or 0 when greedy decoding applies
 * (temperature <= 0, or no finite logit) with *greedy set to the argmax. */
static int prepare(Sampler *s, const float *in, int *greedy) {
    const SamplerOpts *o = &s->o;
    const int V = s->n_vocab;
    float *l = s->logits;
    memcpy(l, in, (size_t)V * sizeof *l);
    int rep = o->repetition_penalty > 0 && o->repetition_penalty != 1;
    if (rep || o->presence_penalty != 0 || o->frequency_penalty != 0) {
        for (int i = 0; i < s->n_seen; i++) {
            int id = s->seen[i], n = s->count[id];
            float x = l[id];
            if (rep) x = x > 0 ? x / o->repetition_penalty : x * o->repetition_penalty;
            x -= (float)n * o->frequency_penalty + o->presence_penalty;
            l[id] = x;
        }
    }
    int best = argmax(l, V);
    *greedy = best;
    float mx = l[best];
    if (o->temperature <= 0 || !isfinite(mx)) return 0;

    /* min-p: p_i >= min_p * p_max  <=>  logit_i >= max + log(min_p) */
    float thr = o->min_p > 0 ? mx + logf(o->min_p) : -INFINITY;
    int n = 0;
    for (int i = 0; i < V; i++)
        if (l[i] >= thr && l[i] > -INFINITY) s->cand[n++] = (SamplerCand){i, l[i], 0};
    if (n == 0) s->cand[n++] = (SamplerCand){best, mx, 0}; /* min_p > 1 */
    if (o->top_k > 0 && o->top_k < n) {
        select_best(s->cand, n, o->top_k);
        n = o->top_k;
    }
    if (o->top_p > 0 && o->top_p < 1 && n > 1) n = top_p_select(s->cand, n, mx, o->top_p);
    return n;
}

/* Temperature weights of the kept candidates into w (as cand[i].logit is
 * no longer needed, w aliases s->logits): exp((l - max) / T). Returns the sum. */
static double weights(Sampler *s, int n, float *w) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (s->cand[i].logit > mx) mx = s->cand[i].logit;
    double z = 0;
    float inv_t = 1.0f / s->o.temperature;
    for (int i = 0; i < n; i++) {
        w[i] = expf((s->cand[i].logit - mx) * inv_t);
        z += w[i];
    }
    return z;
}

int sampler_sample(Sampler *s, const float *logits) {
    int greedy, n = prepare(s, logits, &greedy);
    if (n == 0) return greedy;
    float *w = s->logits;
    double z = weights(s, n, w);
    double u = (double)(rng_u64(&s->rng) >> 11) * (1.0 / 9007199254740992.0) * z;
    double cum = 0;
    for (int i = 0; i < n; i++) {
        cum += w[i];
        if (u < cum) return s->cand[i].id;
    }
    for (int i = n - 1; i >= 0; i--) /* u landed on the rounding slack at the end */
        if (w[i] > 0) return s->cand[i].id;
    return s->cand[0].id;
}

void sampler_dist(Sampler *s, const float *logits, float *probs) {
    int greedy, n = prepare(s, logits, &greedy);
    memset(probs, 0, (size_t)s->n_vocab * sizeof *probs);
    if (n == 0) {
        probs[greedy] = 1;
        return;
    }
    float *w = s->logits;
    double z = weights(s, n, w);
    for (int i = 0; i < n; i++) probs[s->cand[i].id] = (float)(w[i] / z);
}
