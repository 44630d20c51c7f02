/* SPDX-License-Identifier: MIT */
/* Token sampling: the step between the logits of the last position and the
 * next token id. Penalties over a window of recent tokens, then truncation
 * (top-k, top-p, min-p), then temperature, then one draw from whale's RNG.
 * The order is llama.cpp's default sampler chain (common/sampling.cpp:
 * penalties -> top_k -> top_p -> min_p -> temperature -> dist), not
 * Hugging Face's, whose warpers apply the temperature first and so compute
 * top-p / min-p on the sharpened distribution. */
#ifndef WHALE_SAMPLER_H
#define WHALE_SAMPLER_H

#include <stdint.h>

#include "base/err.h"
#include "base/rng.h"

/* Every field's zero is its default, so `SamplerOpts o = {0}` is greedy
 * decoding without penalties. */
typedef struct SamplerOpts {
    float temperature;        /* <= 0: greedy (argmax, lowest id on ties); else divide logits */
    int top_k;                /* <= 0: off; else keep the k most likely tokens */
    float top_p;              /* <= 0 or >= 1: off; else the smallest prefix whose mass >= p */
    float min_p;              /* <= 0: off; else drop tokens with p < min_p * p_max */
    float repetition_penalty; /* 0 or 1: off; HF/CTRL: logit > 0 divided by it, < 0 multiplied */
    float presence_penalty;   /* OpenAI: logit -= presence if the token is in the window */
    float frequency_penalty;  /* OpenAI: logit -= frequency * count in the window */
    int penalty_last_n;       /* window of accepted tokens: 0: 64 (llama.cpp's default), -1: all */
    uint64_t seed;            /* RNG seed of the draws */
} SamplerOpts;

/* One candidate of the truncated distribution. */
typedef struct SamplerCand {
    int id;
    float logit;
    float w;   /* scratch weight */
} SamplerCand;

/* A sampler for a vocabulary of n_vocab ids. It owns all its scratch
 * (sized to the vocabulary at init), so sampling a token allocates nothing. */
typedef struct Sampler {
    SamplerOpts o;
    int n_vocab;
    int window;          /* resolved penalty_last_n: > 0, or -1 for all */
    Rng rng;
    float *logits;       /* (V) penalised copy of the input logits */
    SamplerCand *cand;   /* (V) candidates */
    int *count;          /* (V) occurrences of each id in the window */
    int *seen;           /* (V) the distinct ids with count > 0, in no order */
    int *seen_pos;       /* (V) position of an id in seen */
    int n_seen;
    int *ring;           /* (window) last accepted ids when window > 0 */
    int ring_len, ring_head;
} Sampler;

/* Set up a sampler (options copied, RNG seeded with o->seed; o may be NULL
 * for all defaults). 0, or -1 with err (n_vocab < 1, a negative or NaN
 * option, out of memory). Free with sampler_free (accepts a zeroed struct). */
int sampler_init(Sampler *s, int n_vocab, const SamplerOpts *o, Err *err);
void sampler_free(Sampler *s);

/* Forget the penalty window (a new conversation). The RNG stream goes on. */
void sampler_reset(Sampler *s);

/* New temperature and seed for the next draws (the RL rollouts and eval
 * draw sample j of problem i from a seed of their own, so any subset of
 * them can be replayed). */
void sampler_reseed(Sampler *s, float temperature, uint64_t seed);

/* Add id to the penalty window (the caller decides which tokens count:
 * whale's generation loop accepts the prompt's and the generated ones, as
 * llama.cpp does). Ids outside [0, n_vocab) are ignored. */
void sampler_accept(Sampler *s, int id);

/* Draw the next token from logits (V), which are not modified. */
int sampler_sample(Sampler *s, const float *logits);

/* The distribution sampler_sample draws from, as probabilities (V) summing
 * to 1 with zeros outside the kept set (greedy: 1 at the argmax). For
 * tests and for reporting; does not advance the RNG. */
void sampler_dist(Sampler *s, const float *logits, float *probs);

#endif
