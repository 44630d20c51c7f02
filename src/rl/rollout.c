/* SPDX-License-Identifier: MIT */
/* Sampling a task's completions (see rollout.h). */
#include "rl/rollout.h"

#include <stdlib.h>
#include <string.h>

#include "base/rng.h"

void rollout_free(Rollout *r) {
    free(r->ids);
    free(r->text);
    memset(r, 0, sizeof *r);
}

uint64_t rollout_seed(uint64_t seed, uint64_t j) {
    /* splitmix64 of the pair: neighbouring j give unrelated streams */
    return rng_mix(seed * 0x9e3779b97f4a7c15ULL + j + 0x632be59bd9b4e019ULL);
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

/* ---- batched rollouts --------------------------------------------------------- */

/* One sequence of the batch. */
typedef struct Slot {
    KVCache kv;
    Sampler smp;
    int *ids;    /* (cap + 1) the prompt, then every sampled id; ids[0..kv.len) are cached */
    int n_ids;
    int n_prompt;
    int n_gen;   /* sampled ids that are not a stop id */
    int out;     /* its entry of out, or -1 when the slot is free */
    const RolloutJob *job;
} Slot;

typedef struct Batch {
    Generator *g;
    const Task *task;
    const RewardOpts *ro;
    Rollout *out;
    int max_tokens, n_ctx;
    int **prompt, *n_prompt; /* (n_jobs) the prompts' ids */
    KVCache pkv;             /* the prompt of job pjob, prefilled */
    float *plog;             /* (V) its last position's logits */
    int pjob;
    float *conv;             /* (max prompt, width) for copying BF16 cache rows */
    Slot *slot;
    int n_slots;
    KVCache **kvs;           /* (n_slots) a step's caches, tokens, slots and logits */
    int *tok, *which;
    float *logits;           /* (n_slots, V) */
} Batch;

static void batch_free(Batch *b, int n_jobs) {
    for (int i = 0; b->prompt && i < n_jobs; i++) free(b->prompt[i]);
    for (int s = 0; b->slot && s < b->n_slots; s++) {
        kvcache_free(&b->slot[s].kv);
        sampler_free(&b->slot[s].smp);
        free(b->slot[s].ids);
    }
    kvcache_free(&b->pkv);
    free(b->prompt), free(b->n_prompt), free(b->plog), free(b->conv), free(b->slot);
    free(b->kvs), free(b->tok), free(b->which), free(b->logits);
}

/* Tokenize every prompt, then size the slots: a cache holds a prompt and
 * max_tokens - 1 sampled ids (the last one is never run), at most n_ctx. */
static int batch_init(Batch *b, Generator *g, RlTemplate tpl, const RolloutJob *jobs, int n_jobs,
                      int n_seqs, int max_tokens, Err *err) {
    const ModelConfig *c = &g->model->cfg;
    b->g = g;
    b->max_tokens = max_tokens;
    b->n_ctx = g->kv.n_ctx;
    b->pjob = -1;
    b->prompt = calloc((size_t)n_jobs, sizeof *b->prompt);
    b->n_prompt = calloc((size_t)n_jobs, sizeof *b->n_prompt);
    if (!b->prompt || !b->n_prompt) return err_set(err, "out of memory for the rollouts");
    int max_np = 1;
    for (int i = 0; i < n_jobs; i++) {
        char text[4096];
        int len = template_prompt(tpl, jobs[i].p->question, text, sizeof text);
        if (len < 0) return err_set(err, "the prompt of '%s' is too long", jobs[i].p->question);
        if (tokenizer_encode(g->tok, text, (size_t)len, 1, &b->prompt[i], &b->n_prompt[i], err) != 0)
            return -1;
        if (b->n_prompt[i] > b->n_ctx)
            return err_set(err, "the prompt (%d tokens) does not fit the context of %d tokens",
                           b->n_prompt[i], b->n_ctx);
        max_np = b->n_prompt[i] > max_np ? b->n_prompt[i] : max_np;
    }
    long cap = max_tokens > 0 ? (long)max_np + max_tokens - 1 : b->n_ctx;
    cap = cap < b->n_ctx ? cap : b->n_ctx;
    const DType kt = g->o.kv_type;
    /* a slot: its cache, its sampler's five vocabulary-sized arrays, its logits */
    const size_t slot_bytes = (size_t)cap * (size_t)kvcache_bytes_per_token(c, kt) +
                              (size_t)tokenizer_n_vocab(g->tok) * 20 + (size_t)c->vocab_size * 4;
    size_t fit = ROLLOUT_BATCH_BYTES / slot_bytes;
    fit = fit < 1 ? 1 : fit < ROLLOUT_MAX_BATCH ? fit : ROLLOUT_MAX_BATCH;
    b->n_slots = (size_t)n_seqs < fit ? n_seqs : (int)fit;
    b->slot = calloc((size_t)b->n_slots, sizeof *b->slot);
    b->kvs = malloc(sizeof *b->kvs * (size_t)b->n_slots);
    b->tok = malloc(sizeof *b->tok * (size_t)b->n_slots);
    b->which = malloc(sizeof *b->which * (size_t)b->n_slots);
    b->logits = malloc(sizeof(float) * (size_t)b->n_slots * c->vocab_size);
    b->plog = malloc(sizeof(float) * (size_t)c->vocab_size);
    if (!b->slot || !b->kvs || !b->tok || !b->which || !b->logits || !b->plog)
        return err_set(err, "out of memory for the rollouts");
    if (kvcache_init(&b->pkv, c, max_np, kt, 0, err) != 0) return -1;
    if (kt != DTYPE_F32 && !(b->conv = malloc(sizeof(float) * (size_t)max_np * b->pkv.width)))
        return err_set(err, "out of memory for the rollouts");
    for (int s = 0; s < b->n_slots; s++) {
        Slot *sl = &b->slot[s];
        sl->out = -1;
        if (kvcache_init(&sl->kv, c, (int)cap, kt, 0, err) != 0 ||
            sampler_init(&sl->smp, tokenizer_n_vocab(g->tok), &g->smp.o, err) != 0)
            return -1;
        if (!(sl->ids = malloc(sizeof(int) * (size_t)(cap + 1))))
            return err_set(err, "out of memory for the rollouts");
    }
    return 0;
}

/* The slot's sequence is done: its rollout out of its ids, scored. */
static int finish(Batch *b, Slot *sl, int stopped, Err *err) {
    Rollout *r = &b->out[sl->out];
    const char *text;
    size_t len;
    sl->out = -1;
    r->n_prompt = sl->n_prompt;
    r->n_gen = sl->n_ids - sl->n_prompt;
    r->stopped = stopped;
    if (gen_decode_text(b->g, sl->ids + sl->n_prompt, sl->n_gen, &text, &len, err) != 0) return -1;
    r->ids = malloc(sizeof(int32_t) * (size_t)sl->n_ids);
    r->text = malloc(len + 1);
    if (!r->ids || !r->text) return err_set(err, "out of memory for the rollouts");
    for (int i = 0; i < sl->n_ids; i++) r->ids[i] = sl->ids[i];
    memcpy(r->text, text, len + 1);
    reward_score(b->task, sl->job->p, r->text, b->ro, &r->reward);
    return 0;
}

/* Take sampled id as gen_run does: a stop id ends the sequence; else it
 * counts, enters the penalty window, and the sequence ends at max_tokens
 * or a full context, or goes on with id to run next step. */
static int take(Batch *b, Slot *sl, int id, Err *err) {
    sl->ids[sl->n_ids++] = id;
    if (gen_is_stop(b->g, id)) return finish(b, sl, 1, err);
    sl->n_gen++;
    sampler_accept(&sl->smp, id);
    if ((b->max_tokens > 0 && sl->n_gen >= b->max_tokens) || sl->kv.len >= b->n_ctx)
        return finish(b, sl, 0, err);
    return 0;
}

/* Sequence j of job i joins in slot sl as entry `out`: the job's prompt
 * (prefilled once, when its first sequence joins) copied into the slot's
 * cache, its sampler reseeded, its first id drawn. */
static int join(Batch *b, Slot *sl, const RolloutJob *jobs, int i, int j, int out, Err *err) {
    const int np = b->n_prompt[i];
    if (b->pjob != i) {
        ForwardOpts fo = {.logits = b->plog};
        b->pkv.len = 0;
        b->pjob = -1;
        if (model_forward(b->g->model, &b->pkv, b->prompt[i], np, &fo, err) != 0) return -1;
        b->pjob = i;
    }
    for (int l = 0; l < b->pkv.n_layers; l++)
        kvcache_store(&sl->kv, l, 0, np, kvcache_rows(&b->pkv, l, 0, np, b->conv));
    sl->kv.len = np;
    memcpy(sl->ids, b->prompt[i], sizeof(int) * (size_t)np);
    sl->n_ids = sl->n_prompt = np;
    sl->n_gen = 0;
    sl->out = out;
    sl->job = &jobs[i];
    sampler_reset(&sl->smp);
    sampler_reseed(&sl->smp, jobs[i].temperature, rollout_seed(jobs[i].seed, (uint64_t)j));
    for (int k = 0; k < np; k++) sampler_accept(&sl->smp, b->prompt[i][k]);
    return take(b, sl, sampler_sample(&sl->smp, b->plog), err);
}

int rollout_run_batch(Generator *g, const Task *t, RlTemplate tpl, const RolloutJob *jobs,
                      int n_jobs, int max_tokens, const RewardOpts *ro, Rollout *out, Err *err) {
    int n_seqs = 0;
    for (int i = 0; i < n_jobs; i++) n_seqs += jobs[i].G;
    memset(out, 0, sizeof *out * (size_t)n_seqs);
    if (n_seqs == 0) return 0;
    Batch b = {.task = t, .ro = ro, .out = out};
    const int V = g->model->cfg.vocab_size;
    int rc = -1, job = 0, j = 0, next = 0;
    if (batch_init(&b, g, tpl, jobs, n_jobs, n_seqs, max_tokens, err) != 0) goto done;
    for (;;) {
        /* free slots take the next waiting sequences, in order */
        for (int s = 0; s < b.n_slots; s++) {
            while (b.slot[s].out < 0 && next < n_seqs) {
                while (j >= jobs[job].G) job++, j = 0;
                if (join(&b, &b.slot[s], jobs, job, j++, next++, err) != 0) goto done;
            }
        }
        int B = 0;
        for (int s = 0; s < b.n_slots; s++) {
            Slot *sl = &b.slot[s];
            if (sl->out < 0) continue;
            b.which[B] = s;
            b.kvs[B] = &sl->kv;
            b.tok[B++] = sl->ids[sl->n_ids - 1];
        }
        if (B == 0) break;
        if (model_forward_batch(g->model, b.kvs, b.tok, B, b.logits, err) != 0) goto done;
        for (int k = 0; k < B; k++) {
            Slot *sl = &b.slot[b.which[k]];
            if (take(&b, sl, sampler_sample(&sl->smp, b.logits + (size_t)k * V), err) != 0)
                goto done;
        }
    }
    rc = 0;
done:
    batch_free(&b, n_jobs);
    if (rc != 0)
        for (int i = 0; i < n_seqs; i++) rollout_free(&out[i]);
    return rc;
}
