/* SPDX-License-Identifier: MIT */
/* Sampling a task's completions (see rollout.h). */
#include "rl/rollout.h"

#include <stdlib.h>
#include <string.h>

void rollout_free(Rollout *r) {
    free(r->ids);
    free(r->text);
    memset(r, 0, sizeof *r);
}

uint64_t rollout_seed(uint64_t seed, uint64_t j) {
    /* splitmix64 of the pair: neighbouring j give unrelated streams */
    uint64_t z = seed * 0x9e3779b97f4a7c15ULL + j + 0x632be59bd9b4e019ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int rollout_run(Generator *g, const Task *t, RlTemplate tpl, const TaskProblem *p, int G,
                float temperature, uint64_t seed, int max_tokens, const RewardOpts *ro,
                Rollout *out, Err *err) {
    char prompt[4096];
    int len = template_prompt(tpl, p->question, prompt, sizeof prompt);
    if (len < 0) return err_set(err, "the prompt of '%s' is too long", p->question);
    memset(out, 0, sizeof *out * (size_t)G);
    for (int j = 0; j < G; j++) {
        GenResult res;
        sampler_reseed(&g->smp, temperature, rollout_seed(seed, (uint64_t)j));
        if (gen_run(g, prompt, (size_t)len, 1, max_tokens, NULL, NULL, NULL, &res, err) != 0)
            goto fail;
        Rollout *r = &out[j];
        const int n = g->n_ids + (res.last_id >= 0);
        r->n_prompt = res.n_prompt;
        r->n_gen = n - res.n_prompt;
        r->stopped = res.stop == GEN_STOP_EOS;
        r->ids = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
        r->text = malloc(res.text_len + 1);
        if (!r->ids || !r->text) {
            err_set(err, "out of memory for the rollouts");
            goto fail;
        }
        for (int i = 0; i < g->n_ids; i++) r->ids[i] = g->ids[i];
        if (res.last_id >= 0) r->ids[n - 1] = res.last_id;
        memcpy(r->text, res.text, res.text_len);
        r->text[res.text_len] = 0;
        reward_score(t, p, r->text, ro, &r->reward);
    }
    return 0;
fail:
    for (int j = 0; j < G; j++) rollout_free(&out[j]);
    return -1;
}
