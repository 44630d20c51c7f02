/* SPDX-License-Identifier: MIT */
/* The GRPO loop (see grpo.h). Rollouts come from the generator over the
 * policy's own weights; its KV cache is dropped after every update, as the
 * cached keys belong to the old weights. The training passes bucket the
 * batch's sequences by length (equal lengths share one forward over
 * n_seq x len rows), so nothing is padded. pi_old is the policy that
 * sampled the batch: its log-probs are those of the first optimiser
 * iteration's forward (the same weights), so the ratio starts at 1.
 * Everything random is a function of (seed, step): problem q of step s is
 * the task's problem s x P + q and its samples are seeded by that index, so
 * a run resumed from a checkpoint (policy weights with the MoE balancing
 * biases, AdamW moments, the step) draws what the uninterrupted one did.
 *
 * Data parallel (train/comm.h): rank r samples problems r, r + ranks, ...
 * of the step, whole groups, so advantages stay local; the kept sequences
 * and completion tokens are counted over all ranks before the weights are
 * set, so the summed gradient is the one-rank gradient; the statistics are
 * summed for rank 0, which writes the metrics and checkpoints. */
#include "rl/grpo.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "base/log.h"
#include "infer/chat.h"
#include "rl/rollout.h"
#include "rl/seqtrain.h"
#include "train/checkpoint.h"
#include "train/plot.h"

/* One kept completion of the batch. */
typedef struct Seq {
    Rollout *r;
    float adv;
    float w;              /* length normalisation x 1 / sequences */
    float *logp_old, *logp_ref; /* (n_gen) */
} Seq;

typedef struct Grpo {
    const GrpoOpts *o;
    const Task *task;
    ChatSession pol;      /* the policy: model, tokenizer, generator */
    Model ref;            /* the frozen reference (beta > 0) */
    SeqTrain tr;          /* the policy's gradients, AdamW state, bucket buffers */
    Rollout *rolls;       /* (P G) */
    Seq *seqs;            /* (P G) kept ones first */
    int n_seqs;           /* this rank's */
    int n_seqs_all;       /* over all ranks */
    SeqItem *items;       /* (P G) the kept sequences' ids, in seqs' order */
    int64_t first_step;   /* rollout batches done before this run (--resume) */
    FILE *metrics;
    char metrics_path[4096], plot_path[4096];
} Grpo;

/* Per-step statistics, summed over the ranks at the end of a step. */
typedef struct Stats {
    double reward, accuracy, format, len, kl, entropy, n_tok, n_clip, kept, n_train, stop;
} Stats;
#define STATS_N ((int)(sizeof(Stats) / sizeof(double)))

/* What a checkpoint of step records: the step's shape as --prompts,
 * --group, --mu (train/checkpoint.h). */
static TrainState grpo_state(const Grpo *g, int64_t step) {
    const GrpoOpts *o = g->o;
    return (TrainState){step, 0, o->seed, o->prompts, o->group, o->mu, 0, g->tr.comm.size};
}

static int grpo_open(Grpo *g, const GrpoOpts *o, Err *err) {
    memset(g, 0, sizeof *g);
    g->o = o;
    g->task = task_find(o->task);
    if (!g->task) return err_set(err, "unknown task '%s' (tasks: %s)", o->task, task_names());
    char ckpt[4096] = "";
    if (o->resume && ckpt_resume_dir(o->out, o->model, ckpt, sizeof ckpt, err) != 0) return -1;
    ChatOpts co = {.raw = 1};
    /* resumed, the policy is the checkpoint's model; the reference below stays -m */
    if (chat_open(&g->pol, o->resume ? ckpt : o->model, &co, err) != 0) return -1;
    const ModelConfig *c = &g->pol.model.cfg;
    if (!config_is_mla(c))
        return err_set(err, "%s: GRPO trains deepseek_v2 / deepseek_v3 models, not %s", o->model,
                       c->model_type);
    if (o->loss.beta > 0 && model_open(&g->ref, o->model, err) != 0) return -1;
    const size_t n = (size_t)o->prompts * o->group;
    g->rolls = calloc(n, sizeof *g->rolls);
    g->seqs = calloc(n, sizeof *g->seqs);
    if (!g->rolls || !g->seqs) return err_set(err, "out of memory");
    g->items = calloc(n, sizeof *g->items);
    if (!g->items) return err_set(err, "out of memory");
    if (seqtrain_init(&g->tr, &g->pol.model, err) != 0) return -1;
    if (o->resume) {
        static const char *const flags[3] = {"--prompts", "--group", "--mu"};
        TrainState saved, want = grpo_state(g, 0);
        if (ckpt_load_state(ckpt, &g->pol.model.w, &g->tr.opt, &saved, err) != 0 ||
            ckpt_check_flags(ckpt, &saved, &want, flags, err) != 0)
            return -1;
        g->first_step = saved.step;
    }
    if (g->tr.comm.rank != 0) return 0; /* rank 0 writes the run directory */
    g->metrics = plot_metrics_open(o->out, o->resume ? g->first_step : -1, g->metrics_path,
                                   sizeof g->metrics_path, g->plot_path, sizeof g->plot_path, err);
    if (!g->metrics) return -1;
    return 0;
}

static void grpo_close(Grpo *g) {
    if (g->metrics) fclose(g->metrics);
    const size_t n = (size_t)g->o->prompts * g->o->group;
    for (size_t i = 0; g->rolls && i < n; i++) rollout_free(&g->rolls[i]);
    for (size_t i = 0; g->seqs && i < n; i++) free(g->seqs[i].logp_old), free(g->seqs[i].logp_ref);
    free(g->rolls);
    free(g->seqs);
    free(g->items);
    seqtrain_free(&g->tr);
    if (g->ref.cfg.vocab_size) model_free(&g->ref);
    chat_close(&g->pol);
}

static int seq_len_of(const Seq *s) { return s->r->n_prompt + s->r->n_gen; }

static int by_length(const void *a, const void *b) {
    return seq_len_of(a) - seq_len_of(b);
}

/* Sample this rank's share of the batch of step s, score it, keep the
 * groups with signal. */
static int rollouts(Grpo *g, int64_t step, Stats *st, Err *err) {
    const GrpoOpts *o = g->o;
    const Comm *c = &g->tr.comm;
    const int G = o->group;
    int P = 0; /* this rank's problems */
    float *rw = malloc(sizeof(float) * G), *adv = malloc(sizeof(float) * G);
    TaskProblem *probs = malloc(sizeof *probs * o->prompts);
    RolloutJob *jobs = malloc(sizeof *jobs * o->prompts);
    if (!rw || !adv || !probs || !jobs) {
        free(rw), free(adv), free(probs), free(jobs);
        return err_set(err, "out of memory");
    }
    int rc = -1;
    g->n_seqs = 0;
    for (int i = 0; i < o->prompts * G; i++) rollout_free(&g->rolls[i]);
    gen_reset(&g->pol.gen); /* the cache holds keys of the weights before the update */
    double counts[2] = {0, 0}; /* kept sequences, their completion tokens: all ranks */
    for (int q = c->rank; q < o->prompts; q += c->size, P++) {
        const uint64_t idx = (uint64_t)step * o->prompts + q;
        if (task_generate(g->task, o->seed, TASK_TRAIN, idx, o->difficulty, &probs[P]) != 0) {
            err_set(err, "%s: difficulty %d is out of range", g->task->name, o->difficulty);
            goto done;
        }
        jobs[P] = (RolloutJob){&probs[P], G, o->temperature, rollout_seed(o->seed, idx)};
    }
    /* all P x G completions decode together */
    if (P > 0 && rollout_run_batch(&g->pol.gen, g->task, o->tpl, jobs, P, o->max_tokens, &o->reward,
                          g->rolls, err) != 0)
        goto done;
    for (int p = 0; p < P; p++) {
        Rollout *r = g->rolls + (size_t)p * G;
        for (int j = 0; j < G; j++) {
            rw[j] = r[j].reward.total;
            st->reward += r[j].reward.total;
            st->accuracy += r[j].reward.accuracy;
            st->format += r[j].reward.format;
            st->len += r[j].n_gen;
        }
        if (grpo_advantages(rw, G, o->loss.scale_std, adv)) continue;
        st->kept++;
        for (int j = 0; j < G; j++) {
            if (r[j].n_gen < 1) continue;
            g->seqs[g->n_seqs++] = (Seq){&r[j], adv[j], 0, NULL, NULL};
            counts[1] += r[j].n_gen;
        }
    }
    counts[0] = g->n_seqs;
    if (comm_allreduce_f64(c, counts, 2, err) != 0) goto done;
    g->n_seqs_all = (int)counts[0];
    /* the length normalisation, with the 1 / sequences of the mean */
    for (int i = 0; i < g->n_seqs; i++) {
        Seq *s = &g->seqs[i];
        s->w = o->norm == GRPO_NORM_TOKEN   ? 1.0f / (float)counts[1]
               : o->norm == GRPO_NORM_CONST ? 1.0f / ((float)counts[0] * o->max_tokens)
                                            : 1.0f / ((float)counts[0] * s->r->n_gen);
        s->logp_old = malloc(sizeof(float) * s->r->n_gen);
        s->logp_ref = calloc((size_t)s->r->n_gen, sizeof(float));
        if (!s->logp_old || !s->logp_ref) {
            err_set(err, "out of memory");
            goto done;
        }
    }
    qsort(g->seqs, (size_t)g->n_seqs, sizeof *g->seqs, by_length);
    rc = 0;
done:
    free(rw), free(adv), free(probs), free(jobs);
    return rc;
}

/* The kept sequences (sorted by length) as the trainer reads them. */
static void fill_items(Grpo *g) {
    for (int i = 0; i < g->n_seqs; i++)
        g->items[i] = (SeqItem){g->seqs[i].r->ids, seq_len_of(&g->seqs[i])};
}

/* A reference bucket: keep the completion tokens' log-probs. */
static void ref_bucket(void *user, int i0, int n, int L, const float *logp, const float *ent,
                       float *w) {
    Grpo *g = user;
    (void)ent, (void)w;
    for (int b = 0; b < n; b++) {
        const Seq *s = &g->seqs[i0 + b];
        memcpy(s->logp_ref, logp + (size_t)b * (L - 1) + s->r->n_prompt - 1,
               sizeof(float) * s->r->n_gen);
    }
}

/* The reference's log-probs of every kept completion (beta > 0). */
static int reference_logprobs(Grpo *g, Err *err) {
    fill_items(g);
    SeqPass p = {.model = &g->ref, .logprobs = 1, .fn = ref_bucket, .user = g};
    return seqtrain_pass(&g->tr, g->items, g->n_seqs, &p, NULL, err);
}

typedef struct Iter {
    Grpo *g;
    int it;       /* the optimiser iteration on this batch: 0 records pi_old */
    Stats *st;
} Iter;

/* A policy bucket: the weights dJ/dlogp x n_i / N on the completion tokens. */
static void policy_bucket(void *user, int i0, int n, int L, const float *logp, const float *ent,
                          float *wts) {
    Iter *c = user;
    const GrpoOpts *o = c->g->o;
    Stats *st = c->st;
    const int T = L - 1;
    for (int b = 0; b < n; b++) {
        Seq *s = &c->g->seqs[i0 + b];
        float *w = wts + (size_t)b * T;
        const int first = s->r->n_prompt - 1; /* the row that predicts the first completion token */
        for (int t = 0; t < first; t++) w[t] = 0;
        for (int k = 0; k < s->r->n_gen; k++) {
            const float lp = logp[(size_t)b * T + first + k];
            if (c->it == 0) s->logp_old[k] = lp;
            double d, kl;
            int clipped;
            grpo_token(lp, s->logp_old[k], s->logp_ref[k], s->adv, &o->loss, &d, &clipped, &kl);
            /* minimising sum_t w_t nll_t = -sum_t w_t logp_t ascends J for w = dJ/dlogp */
            w[first + k] = (float)d * s->w;
            if (c->it == 0) {
                st->kl += kl;
                st->entropy += ent[(size_t)b * T + first + k];
                st->n_tok++;
            }
            st->n_clip += clipped;
        }
    }
}

/* One optimiser iteration over the kept batch. */
static int iterate(Grpo *g, int it, int64_t step, Stats *st, Err *err) {
    const GrpoOpts *o = g->o;
    fill_items(g);
    Iter c = {g, it, st};
    SeqPass p = {.logprobs = 1, .backward = 1, .fn = policy_bucket, .user = &c};
    seqtrain_zero(&g->tr);
    if (seqtrain_pass(&g->tr, g->items, g->n_seqs, &p, NULL, err) != 0 ||
        seqtrain_reduce(&g->tr, NULL, 0, err) != 0)
        return -1;
    const double gn = seqtrain_update(&g->tr, &o->optim, (int)(step * o->mu + it), o->bias_gamma);
    if (!isfinite(gn))
        log_warn("whale grpo: step %" PRId64 ": gradient norm %g, update skipped", step + 1, gn);
    return 0;
}

static int save(Grpo *g, int64_t step, Err *err) {
    const Model *m = &g->pol.model;
    if (comm_check_weights(&g->tr.comm, m->w.data, m->w.n_bytes, step, err) != 0) return -1;
    if (g->tr.comm.rank != 0) return 0;
    const TrainState st = grpo_state(g, step);
    if (ckpt_save(g->o->out, &g->pol.model, &g->tr.opt, &st, g->o->model, 2, NULL, err) != 0) return -1;
    Err perr;
    if (plot_metrics_svg(g->metrics_path, g->plot_path, g->o->out, &perr) < 0)
        log_warn("whale grpo: plot not written: %s", perr.msg);
    return 0;
}

int grpo_run(const GrpoOpts *o, Err *err) {
    Grpo g;
    int rc = -1;
    const int quiet = o->quiet || log_quiet();
    if (grpo_open(&g, o, err) != 0) goto done;
    if (!quiet)
        log_info("whale grpo: %s, %d problems x %d samples per step, %d optimiser steps each, "
                 "eps %.2f, beta %g",
                 g.task->name, o->prompts, o->group, o->mu, o->loss.clip_eps, o->loss.beta);
    if (!quiet && o->resume) log_info("whale grpo: resuming at step %" PRId64, g.first_step);
    const int interactive = !quiet && isatty(2);
    const double t_begin = time_now();
    for (int64_t step = g.first_step; step < o->steps; step++) {
        Stats st = {0};
        double t0 = time_now();
        if (rollouts(&g, step, &st, err) != 0) goto done;
        double t1 = time_now();
        if (o->loss.beta > 0 && reference_logprobs(&g, err) != 0) goto done;
        for (int i = 0; i < g.n_seqs; i++) st.n_train += seq_len_of(&g.seqs[i]);
        for (int it = 0; it < o->mu && g.n_seqs_all > 0; it++)
            if (iterate(&g, it, step, &st, err) != 0) goto done;
        double t2 = time_now();
        for (int i = 0; i < g.n_seqs; i++) {
            free(g.seqs[i].logp_old), free(g.seqs[i].logp_ref);
            g.seqs[i].logp_old = g.seqs[i].logp_ref = NULL;
        }
        st.stop = (o->stop && *o->stop) || (o->time_limit > 0 && time_now() - t_begin >= o->time_limit);
        if (comm_allreduce_f64(&g.tr.comm, (double *)&st, STATS_N, err) != 0) goto done;
        const double n = (double)o->prompts * o->group, n_train = st.n_train;
        const double gen_tok = st.len, tok = st.n_tok > 0 ? st.n_tok : 1;
        if (g.metrics)
            fprintf(g.metrics,
                "{\"step\": %" PRId64 ", \"reward\": %.4f, \"accuracy\": %.4f, \"format\": %.4f, "
                "\"completion_len\": %.2f, \"kl\": %.6f, \"clip_frac\": %.4f, \"entropy\": %.4f, "
                "\"kept_groups\": %d, \"rollout_tok_s\": %.1f, \"train_tok_s\": %.1f, "
                "\"tok_s\": %.1f, \"lr\": %.6g}\n",
                step + 1, st.reward / n, st.accuracy / n, st.format / n, st.len / n, st.kl / tok,
                st.n_clip / (tok * (o->mu > 0 ? o->mu : 1)), st.entropy / tok, (int)st.kept,
                gen_tok / (t1 - t0 > 0 ? t1 - t0 : 1e-9),
                n_train * o->mu / (t2 - t1 > 0 ? t2 - t1 : 1e-9),
                (gen_tok + n_train * o->mu) / (t2 - t0 > 0 ? t2 - t0 : 1e-9),
                optim_lr_at(&o->optim, (int)(step * o->mu)));
        if (g.metrics) fflush(g.metrics);
        if (!quiet)
            fprintf(stderr,
                    "%sstep %" PRId64 "/%d | reward %.3f | accuracy %.3f | format %.3f | len %.1f | "
                    "kept %d/%d | %.1fs%s",
                    interactive ? "\r\033[K" : "", step + 1, o->steps, st.reward / n,
                    st.accuracy / n, st.format / n, st.len / n, (int)st.kept, o->prompts, t2 - t0,
                    interactive ? "" : "\n");
        const int stopping = st.stop > 0;
        if (stopping || step + 1 == o->steps || (o->save_every > 0 && (step + 1) % o->save_every == 0))
            if (save(&g, step + 1, err) != 0) goto done;
        if (stopping) break;
    }
    if (interactive) fprintf(stderr, "\n");
    rc = 0;
done:
    grpo_close(&g);
    return rc;
}
