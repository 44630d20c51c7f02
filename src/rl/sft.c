/* SPDX-License-Identifier: MIT */
/* The SFT loop (see sft.h). Example j of step s is position s x batch + j
 * of an endless stream of epochs, each a seeded permutation of the training
 * examples, so the order depends only on the seed and the data. A step's
 * examples are sorted by length so equal lengths share a forward; every
 * target token weighs 1 / (the step's target tokens), which makes the loss
 * the mean NLL per target token. A run resumed from a checkpoint (weights
 * with the MoE balancing biases, AdamW moments, step and tokens) thus
 * draws what the uninterrupted one did.
 *
 * Data parallel (train/comm.h): every rank draws the whole step's batch
 * and takes every ranks-th example of it in length order (rank r: r,
 * r + ranks, ...), so the ranks' forwards are of like lengths; the target
 * tokens are counted over the whole batch, so the summed gradient is the
 * one rank's. Rank 0 writes the metrics and checkpoints. */
#include "rl/sft.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "base/log.h"
#include "base/rng.h"
#include "infer/chat.h"
#include "rl/seqtrain.h"
#include "rl/sft_data.h"
#include "train/checkpoint.h"
#include "train/plot.h"

#define SFT_MAX_NAN 5 /* non-finite steps in a row before giving up */

typedef struct Sft {
    SftOpts o;            /* with the schedule filled in */
    ChatSession cs;       /* the model, its tokenizer and chat template */
    SftData data;
    int *train, *val;     /* (n_train), (n_val) indices into data.ex */
    int n_train, n_val;
    int *perm;            /* (n_train) the order of epoch perm_epoch */
    int64_t perm_epoch;
    const SftExample **batch; /* (batch) this step's examples, by length */
    const SftExample **mine;  /* (max(batch, n_val)) this rank's share of a step or of the val set */
    int stop_any;             /* some rank was asked to stop */
    SeqItem *items;       /* (max(batch, n_val)) */
    const SftExample **val_sorted; /* (n_val) by length */
    SeqTrain tr;
    TrainState st;
    int64_t first_step;   /* steps done before this run (--resume) */
    char tok_dir[4096];
    FILE *metrics;
    char metrics_path[4096], plot_path[4096];
} Sft;

static void shuffle(int *a, int n, uint64_t seed) {
    Rng r;
    rng_seed(&r, seed);
    for (int i = n - 1; i > 0; i--) {
        const int j = (int)rng_below(&r, (uint64_t)i + 1), t = a[i];
        a[i] = a[j], a[j] = t;
    }
}

/* Hold out o.val examples, a seeded choice; the rest train, in file order. */
static int split(Sft *s, Err *err) {
    const int n = s->data.n;
    if (s->o.val >= n)
        return err_set(err, "%s: --val %d leaves no training examples (the file has %d)",
                       s->o.data, s->o.val, n);
    int *all = malloc(sizeof(int) * (size_t)n);
    s->n_val = s->o.val, s->n_train = n - s->o.val;
    s->train = malloc(sizeof(int) * (size_t)s->n_train);
    s->val = malloc(sizeof(int) * (size_t)(s->n_val > 0 ? s->n_val : 1));
    if (!all || !s->train || !s->val) {
        free(all);
        return err_set(err, "out of memory");
    }
    for (int i = 0; i < n; i++) all[i] = i;
    shuffle(all, n, s->o.seed ^ 0x76616c5f686f6c64ULL);
    char *held = calloc((size_t)n, 1);
    if (!held) {
        free(all);
        return err_set(err, "out of memory");
    }
    for (int i = 0; i < s->n_val; i++) held[all[i]] = 1;
    for (int i = 0, a = 0, b = 0; i < n; i++)
        if (held[i]) s->val[a++] = i;
        else s->train[b++] = i;
    free(held);
    free(all);
    return 0;
}

static int by_length(const void *a, const void *b) {
    const SftExample *x = *(const SftExample *const *)a, *y = *(const SftExample *const *)b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line; /* lines are unique: a total order */
}

static int sft_open(Sft *s, const SftOpts *opts, Err *err) {
    memset(s, 0, sizeof *s);
    s->o = *opts;
    char ckpt[4096] = "";
    if (opts->resume && ckpt_resume_dir(opts->out, opts->model, ckpt, sizeof ckpt, err) != 0)
        return -1;
    ChatOpts co = {.raw = 1, .template_name = opts->chat_template};
    if (chat_open(&s->cs, opts->resume ? ckpt : opts->model, &co, err) != 0) return -1;
    const ModelConfig *c = &s->cs.model.cfg;
    if (!config_is_mla(c))
        return err_set(err, "%s: SFT trains deepseek_v2 / deepseek_v3 models, not %s", opts->model,
                       c->model_type);
    if (s->o.max_len <= 0)
        s->o.max_len = c->max_position_embeddings > 0 ? c->max_position_embeddings : 4096;
    SftEncoder enc = {s->cs.tok, s->cs.tmpl, s->o.max_len};
    if (sft_data_load(&s->data, opts->data, &enc, err) != 0 || split(s, err) != 0) return -1;
    SftOpts *o = &s->o;
    if (o->steps <= 0) {
        const int64_t steps = ((int64_t)o->epochs * s->n_train + o->batch - 1) / o->batch;
        if (steps > 1 << 30) return err_set(err, "%" PRId64 " steps are too many", steps);
        o->steps = (int)steps;
    }
    o->optim.total_steps = o->steps;
    if (o->optim.warmup < 0) o->optim.warmup = o->steps / 20 < 200 ? o->steps / 20 : 200;
    if (o->optim.schedule == LR_WSD && o->optim.decay_steps == 0) o->optim.decay_steps = o->steps / 10;
    const int n_items = o->batch > s->n_val ? o->batch : s->n_val;
    s->perm = malloc(sizeof(int) * (size_t)s->n_train);
    s->batch = malloc(sizeof *s->batch * (size_t)o->batch);
    s->mine = malloc(sizeof *s->mine * (size_t)n_items);
    s->items = malloc(sizeof *s->items * (size_t)n_items);
    s->val_sorted = malloc(sizeof *s->val_sorted * (size_t)(s->n_val > 0 ? s->n_val : 1));
    if (!s->perm || !s->batch || !s->mine || !s->items || !s->val_sorted)
        return err_set(err, "out of memory");
    s->perm_epoch = -1;
    for (int i = 0; i < s->n_val; i++) s->val_sorted[i] = &s->data.ex[s->val[i]];
    qsort(s->val_sorted, (size_t)s->n_val, sizeof *s->val_sorted, by_length);
    if (seqtrain_init(&s->tr, &s->cs.model, err) != 0) return -1;
    s->st = (TrainState){0, 0, o->seed, o->batch, o->max_len, 1, 0, s->tr.comm.size};
    if (o->resume) {
        static const char *const flags[3] = {"--batch", "--max-len", NULL};
        TrainState saved;
        if (ckpt_load_state(ckpt, &s->cs.model.w, &s->tr.opt, &saved, err) != 0 ||
            ckpt_check_flags(ckpt, &saved, &s->st, flags, err) != 0)
            return -1;
        saved.ranks = s->tr.comm.size;
        s->st = saved;
    }
    s->first_step = s->st.step;
    path_dir_of(opts->model, s->tok_dir, sizeof s->tok_dir);
    if (s->tr.comm.rank != 0) return 0; /* rank 0 writes the run directory */
    s->metrics = plot_metrics_open(o->out, o->resume ? s->st.step : -1, s->metrics_path,
                                   sizeof s->metrics_path, s->plot_path, sizeof s->plot_path, err);
    if (!s->metrics) return -1;
    return 0;
}

static void sft_close(Sft *s) {
    if (s->metrics) fclose(s->metrics);
    seqtrain_free(&s->tr);
    free(s->train), free(s->val), free(s->perm), free(s->batch), free(s->mine), free(s->items);
    free(s->val_sorted);
    sft_data_free(&s->data);
    chat_close(&s->cs);
}

/* The examples of the current step, sorted by length; this rank's share
 * as s->mine and s->items (their number returned); the tokens and the
 * targets of the whole step into *n_tok, *n_target. */
static int fill_batch(Sft *s, int64_t *n_tok, int64_t *n_target) {
    const int B = s->o.batch;
    *n_tok = *n_target = 0;
    for (int j = 0; j < B; j++) {
        const int64_t p = s->st.step * B + j, epoch = p / s->n_train;
        if (epoch != s->perm_epoch) {
            memcpy(s->perm, s->train, sizeof(int) * (size_t)s->n_train);
            shuffle(s->perm, s->n_train, s->o.seed * 0x9e3779b97f4a7c15ULL + (uint64_t)epoch);
            s->perm_epoch = epoch;
        }
        s->batch[j] = &s->data.ex[s->perm[p % s->n_train]];
    }
    qsort(s->batch, (size_t)B, sizeof *s->batch, by_length);
    int n = 0;
    for (int j = 0; j < B; j++) {
        *n_tok += s->batch[j]->len;
        *n_target += s->batch[j]->n_target;
        if (j % s->tr.comm.size != s->tr.comm.rank) continue;
        s->mine[n] = s->batch[j];
        s->items[n++] = (SeqItem){s->batch[j]->ids, s->batch[j]->len};
    }
    return n;
}

typedef struct Weigh {
    const SftExample *const *ex; /* the pass's examples, in item order */
    float scale;                 /* the weight of a target token */
    double nll;                  /* eval: the targets' summed NLL */
} Weigh;

/* A bucket of examples: in training (w), weight scale on the rows that
 * predict a target; in eval (logp), add up the targets' NLL. */
static void bucket(void *user, int i0, int n, int L, const float *logp, const float *ent,
                   float *w) {
    Weigh *k = user;
    (void)ent;
    for (int b = 0; b < n; b++) {
        const uint8_t *tg = k->ex[i0 + b]->target;
        for (int t = 0; t < L - 1; t++) {
            const size_t row = (size_t)b * (L - 1) + t;
            if (w) w[row] = tg[t + 1] ? k->scale : 0.0f;
            if (logp && tg[t + 1]) k->nll -= logp[row];
        }
    }
}

/* Mean NLL per target token of the held-out examples (every ranks-th on
 * each rank). */
static int evaluate(Sft *s, double *loss, Err *err) {
    const Comm *c = &s->tr.comm;
    double sums[2] = {0, 0}; /* NLL, targets */
    int n = 0;
    for (int i = c->rank; i < s->n_val; i += c->size) {
        s->mine[n] = s->val_sorted[i];
        s->items[n++] = (SeqItem){s->val_sorted[i]->ids, s->val_sorted[i]->len};
        sums[1] += s->val_sorted[i]->n_target;
    }
    Weigh k = {s->mine, 0, 0};
    SeqPass p = {.logprobs = 1, .fn = bucket, .user = &k};
    if (seqtrain_pass(&s->tr, s->items, n, &p, NULL, err) != 0) return -1;
    sums[0] = k.nll;
    if (comm_allreduce_f64(c, sums, 2, err) != 0) return -1;
    *loss = sums[1] > 0 ? sums[0] / sums[1] : NAN;
    return 0;
}

static int save(Sft *s, Err *err) {
    if (comm_check_weights(&s->tr.comm, s->cs.model.w.data, s->cs.model.w.n_bytes, s->st.step,
                           err) != 0)
        return -1;
    if (s->tr.comm.rank != 0) return 0;
    if (ckpt_save(s->o.out, &s->cs.model, &s->tr.opt, &s->st, s->tok_dir, 2, NULL, err) != 0) return -1;
    Err perr;
    if (plot_metrics_svg(s->metrics_path, s->plot_path, s->o.out, &perr) < 0)
        log_warn("whale sft: plot not written: %s", perr.msg);
    return 0;
}

/* One optimiser step. *loss: the mean target NLL; *skipped when it or the
 * gradient norm was not finite (no update). */
static int step(Sft *s, double *loss, double *gnorm, int64_t *n_tok, int *skipped, Err *err) {
    int64_t n_target;
    const int n = fill_batch(s, n_tok, &n_target);
    Weigh k = {s->mine, n_target > 0 ? 1.0f / (float)n_target : 0.0f, 0};
    SeqPass p = {.backward = 1, .fn = bucket, .user = &k};
    seqtrain_zero(&s->tr);
    if (seqtrain_pass(&s->tr, s->items, n, &p, loss, err) != 0) return -1;
    double sums[2] = {*loss, s->o.stop && *s->o.stop ? 1.0 : 0.0};
    if (seqtrain_reduce(&s->tr, sums, 2, err) != 0) return -1;
    *loss = sums[0];
    s->stop_any = sums[1] > 0;
    *gnorm = NAN;
    *skipped = !isfinite(*loss);
    if (!*skipped) {
        *gnorm = seqtrain_update(&s->tr, &s->o.optim, (int)s->st.step, s->o.bias_gamma);
        *skipped = !isfinite(*gnorm);
    }
    return 0;
}

static void progress(const Sft *s, double loss, double tok_s, float lr, double gnorm, double t0,
                     int interactive) {
    const SftOpts *o = &s->o;
    const double per = (time_now() - t0) / (double)(s->st.step - s->first_step);
    const double eta = per * (double)(o->steps - s->st.step);
    fprintf(stderr,
            "%sstep %" PRId64 "/%d | epoch %.2f | loss %.4f | %.0f tok/s | lr %.2e | gnorm %.3f "
            "| ETA %dm%02ds%s",
            interactive ? "\r\033[K" : "", s->st.step, o->steps,
            (double)s->st.step * o->batch / s->n_train, loss, tok_s, lr, gnorm,
            eta < 1e7 ? (int)(eta / 60) : 0, eta < 1e7 ? (int)eta % 60 : 0,
            interactive ? "" : "\n");
}

int sft_run(const SftOpts *opts, Err *err) {
    Sft s;
    int rc = -1;
    if (sft_open(&s, opts, err) != 0) goto done;
    const SftOpts *o = &s.o;
    const int quiet = o->quiet || log_quiet(), interactive = !quiet && isatty(2);
    if (!quiet)
        log_info("whale sft: %d examples (%d held out), %" PRId64 " tokens, %" PRId64
                 " of them targets; %d steps of %d sequences (%.2f epochs), template %s",
                 s.data.n, s.n_val, s.data.n_tokens, s.data.n_target, o->steps, o->batch,
                 (double)o->steps * o->batch / s.n_train, chat_template_name(s.cs.tmpl));
    if (!quiet && o->resume) log_info("whale sft: resuming at step %" PRId64, s.st.step);
    const double t0 = time_now();
    int nan_run = 0;
    while (s.st.step < o->steps) {
        double loss, gnorm;
        int64_t n_tok;
        int skipped;
        const float lr = optim_lr_at(&o->optim, (int)s.st.step);
        const double ts = time_now();
        if (step(&s, &loss, &gnorm, &n_tok, &skipped, err) != 0) goto done;
        s.st.step++;
        s.st.tokens += n_tok;
        const double dt = time_now() - ts, tok_s = (double)n_tok / (dt > 0 ? dt : 1e-9);
        if (skipped) {
            s.st.nan_skipped++;
            log_warn("whale sft: step %" PRId64 ": loss %g, grad norm %g: not finite, step skipped",
                     s.st.step, loss, gnorm);
            if (++nan_run >= SFT_MAX_NAN) {
                err_set(err, "the loss was not finite for %d steps in a row (to step %" PRId64 ")",
                        nan_run, s.st.step);
                goto done;
            }
        } else {
            nan_run = 0;
            if (s.metrics)
                fprintf(s.metrics,
                    "{\"step\": %" PRId64 ", \"epoch\": %.4f, \"loss\": %.6f, \"lr\": %.6g, "
                    "\"grad_norm\": %.6g, \"tok_s\": %.1f, \"tokens\": %" PRId64 "}\n",
                    s.st.step, (double)s.st.step * o->batch / s.n_train, loss, lr, gnorm, tok_s,
                    s.st.tokens);
            if (s.metrics) fflush(s.metrics);
            if (!quiet && (interactive || s.st.step % o->log_every == 0 || s.st.step == o->steps))
                progress(&s, loss, tok_s, lr, gnorm, t0, interactive);
        }
        const int last = s.st.step == o->steps;
        if (s.n_val > 0 && (last || (o->eval_every > 0 && s.st.step % o->eval_every == 0))) {
            double el;
            if (evaluate(&s, &el, err) != 0) goto done;
            if (s.metrics) {
                fprintf(s.metrics, "{\"step\": %" PRId64 ", \"eval_loss\": %.6f}\n", s.st.step, el);
                fflush(s.metrics);
            }
            if (!quiet)
                fprintf(stderr, "%sstep %" PRId64 ": eval loss %.4f\n", interactive ? "\r\033[K" : "",
                        s.st.step, el);
        }
        const int stopping = s.stop_any;
        if (stopping || last || (o->save_every > 0 && s.st.step % o->save_every == 0))
            if (save(&s, err) != 0) goto done;
        if (stopping) {
            if (interactive) fprintf(stderr, "\n");
            if (!quiet)
                log_info("whale sft: interrupted; checkpoint of step %" PRId64 " written to %s",
                         s.st.step, o->out);
            rc = 0;
            goto done;
        }
    }
    if (interactive) fprintf(stderr, "\n");
    if (!quiet)
        log_info("whale sft: done, %" PRId64 " steps in %.1fs, model in %s, metrics in %s",
                 s.st.step, time_now() - t0, o->out, s.metrics_path);
    rc = 0;
done:
    sft_close(&s);
    return rc;
}
