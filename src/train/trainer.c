/* SPDX-License-Identifier: MIT */
/* The training loop (see trainer.h). One step: zero the gradients; for
 * each micro-batch sample B windows of seq+1 tokens (window i of the run
 * is a pure function of (seed, i), so a resumed run draws what the
 * uninterrupted one would), forward, count expert loads, backward with
 * loss scale 1/(grad_accum x ranks); sum over ranks; tie the MTP heads;
 * clip; AdamW; bias rule. Non-finite losses skip the step.
 *
 * Data parallel (train/comm.h): a step's grad_accum x ranks micro-batches
 * are windows W .. W + n - 1 after the W the run has drawn so far, rank r
 * taking micro-batches r x grad_accum .. (r + 1) x grad_accum - 1, so two
 * ranks draw exactly what one rank with twice the accumulation draws, no
 * two ranks the same window, and a run resumed with another rank count
 * continues the sequence. Every rank holds the same weights and takes the
 * same optimiser step on the summed gradients, whose sums start layer by
 * layer during the last micro-batch's backward (the top layers' travel
 * while the lower ones are computed, as PyTorch's DDP buckets do); rank 0
 * alone writes the metrics and checkpoints; the ranks compare a hash of
 * their weights at every evaluation and checkpoint and stop if it drifts. */
#include "train/trainer.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "model/model_train.h"
#include "train/balance.h"
#include "train/checkpoint.h"
#include "train/comm.h"
#include "train/data.h"
#include "train/loss.h"
#include "train/model_backward.h"
#include "train/plot.h"

typedef struct Trainer {
    const TrainOpts *o;
    Model m;
    TrainActs acts;
    Weights grads;
    AdamW opt;
    ExpertLoad load;
    TokenShards train, val;
    int has_val;
    Comm comm;
    Comm ep_comm;    /* this rank's expert-parallel group (--ep): holds every expert once */
    Comm rep_comm;   /* the ranks holding the same experts as this one (one per group) */
    ExpertExchange ex;
    size_t (*espan)[2]; /* with --ep: each layer's routed experts in the buffers, (offset, bytes) */
    int ep_failed;   /* an all-to-all of the experts' rows failed: ep_err */
    Err ep_err;
    int stop_any;    /* some rank was asked to stop (a signal) during this step */
    int overlap;     /* sum layers during the backward (WHALE_COMM_OVERLAP=0: after it) */
    int sum_rc;      /* a failed comm_sum_start of the layer hook */
    Err sum_err;
    TrainState st;
    int32_t *batch;  /* (B, seq + 1) */
    double *load_layers;
    double entropy;  /* unigram entropy of the training tokens, nats */
    FILE *metrics;
    char metrics_path[4096], plot_path[4096];
} Trainer;

/* ExpertExchange over the expert-parallel group's communicator. */
static int ep_rows(void *ctx, const float *send, const int *send_rows, float *recv,
                   const int *recv_rows, int width) {
    Trainer *t = ctx;
    const int N = t->ep_comm.size;
    size_t sn[EP_MAX_RANKS], rn[EP_MAX_RANKS];
    for (int q = 0; q < N; q++)
        sn[q] = (size_t)send_rows[q] * width, rn[q] = (size_t)recv_rows[q] * width;
    if (comm_alltoallv_f32(&t->ep_comm, send, sn, recv, rn, &t->ep_err) == 0) return 0;
    t->ep_failed = 1;
    return -1;
}

static int ep_ints(void *ctx, const int *send, int *recv, int n) {
    Trainer *t = ctx;
    if (comm_alltoall_i32(&t->ep_comm, send, recv, n, &t->ep_err) == 0) return 0;
    t->ep_failed = 1;
    return -1;
}

/* A forward or backward failed: the exchange's own error when it was one. */
static int pass_failed(Trainer *t, Err *err) {
    if (t->ep_failed) *err = t->ep_err;
    return -1;
}

/* --ep: split the job into groups of o->ep ranks that share the routed
 * experts out, each rank holding (model_open_shard) and computing its
 * share; before the model at path is opened. */
static int ep_open(Trainer *t, const char *path, Err *err) {
    const int n = t->o->ep;
    if (n <= 1) return 0;
    if (n > EP_MAX_RANKS || t->comm.size % n != 0)
        return err_set(err, "--ep %d must divide the %d ranks of the job (mpirun -np)", n, t->comm.size);
    if (!path_has_suffix(path, ".gguf")) { /* a .gguf is refused by model_open_shard, by name */
        ModelConfig c;
        char dir[4096];
        path_dir_of(path, dir, sizeof dir);
        if (config_load(&c, dir, err) != 0) return -1;
        if (c.n_routed_experts == 0 || c.n_routed_experts % n != 0)
            return err_set(err, "--ep %d must divide the model's %d routed experts", n,
                           c.n_routed_experts);
    }
    if (comm_split(&t->comm, t->comm.rank / n, &t->ep_comm, err) != 0 ||
        comm_split(&t->comm, t->comm.rank % n, &t->rep_comm, err) != 0)
        return -1;
    t->ex = (ExpertExchange){t->ep_comm.rank, t->ep_comm.size, ep_rows, ep_ints, t};
    t->acts.ep = &t->ex;
    return 0;
}

/* Unigram entropy (nats) of the training tokens: the loss of a model that
 * knows only token frequencies, the line a trained model must go under. */
static double unigram_entropy(const TokenShards *s, int V) {
    int64_t *cnt = calloc((size_t)V, sizeof *cnt);
    if (!cnt) return NAN;
    for (int i = 0; i < s->n_shards; i++) {
        const unsigned char *p = s->shards[i].ids;
        for (int64_t j = 0; j < s->shards[i].n_tokens; j++) {
            uint32_t id = (uint32_t)p[4 * j] | (uint32_t)p[4 * j + 1] << 8 |
                          (uint32_t)p[4 * j + 2] << 16 | (uint32_t)p[4 * j + 3] << 24;
            if (id < (uint32_t)V) cnt[id]++;
        }
    }
    double h = 0, n = (double)s->n_tokens;
    for (int v = 0; v < V; v++)
        if (cnt[v]) h -= cnt[v] / n * log(cnt[v] / n);
    free(cnt);
    return h;
}

static int trainer_open(Trainer *t, const TrainOpts *o, Err *err) {
    memset(t, 0, sizeof *t);
    t->o = o;
    t->comm = *comm_world();
    const char *ov = getenv("WHALE_COMM_OVERLAP");
    t->overlap = !(ov && !strcmp(ov, "0"));
    char ckpt[4096] = "";
    if (o->resume && ckpt_resume_dir(o->out, o->model, ckpt, sizeof ckpt, err) != 0) return -1;
    const char *from = o->resume ? ckpt : o->model;
    if (ep_open(t, from, err) != 0 ||
        model_open_shard(&t->m, from, t->ep_comm.rank, t->acts.ep ? t->ep_comm.size : 1, err) != 0)
        return -1;
    const ModelConfig *c = &t->m.cfg;
    if (!config_is_mla(c))
        return err_set(err, "%s: training supports deepseek_v2 / deepseek_v3 models, not %s",
                       o->model, c->model_type);
    if (c->num_nextn_predict_layers > LOSS_MAX_MTP)
        return err_set(err, "%s: at most %d MTP modules can be trained", o->model, LOSS_MAX_MTP);
    if (o->seq <= c->num_nextn_predict_layers + 1)
        return err_set(err, "--seq %d is too short for %d MTP modules", o->seq,
                       c->num_nextn_predict_layers);
    if (shards_open(&t->train, o->data, "train", c->vocab_size, err) != 0) return -1;
    if (o->doc_start && shards_index_docs(&t->train, err) != 0) return -1;
    if (shards_count(o->data, "val") > 0) {
        if (shards_open(&t->val, o->data, "val", c->vocab_size, err) != 0) return -1;
        /* evaluate windows like the ones trained on */
        if (o->doc_start && shards_index_docs(&t->val, err) != 0) return -1;
        t->has_val = shards_n_windows(&t->val, o->seq + 1) > 0;
    }
    if (weights_alloc_shard(&t->grads, c, QTYPE_F32, t->m.w.shard, t->m.w.n_shards, err) != 0 ||
        adamw_init(&t->opt, &t->m.w, err) != 0 ||
        expert_load_init(&t->load, c, err) != 0)
        return -1;
    if (t->acts.ep) {
        const int nl = c->num_hidden_layers + c->num_nextn_predict_layers;
        if (!(t->espan = calloc((size_t)nl, sizeof *t->espan))) return err_set(err, "out of memory");
        for (int l = 0; l < nl; l++) weights_expert_span(&t->grads, l, &t->espan[l][0], &t->espan[l][1]);
    }
    t->batch = malloc(sizeof(int32_t) * (size_t)o->batch * (o->seq + 1));
    t->load_layers = calloc((size_t)t->load.n_layers, sizeof(double));
    if (!t->batch || !t->load_layers) return err_set(err, "out of memory");
    t->st = (TrainState){0, 0, o->seed, o->batch, o->seq, o->grad_accum, 0, t->comm.size};
    if (o->resume) {
        TrainState saved;
        if (ckpt_load_state(ckpt, &t->m.w, &t->opt, &saved, err) != 0) return -1;
        if (saved.batch != o->batch || saved.seq != o->seq ||
            (saved.ranks == t->comm.size && saved.grad_accum != o->grad_accum))
            return err_set(err,
                           "cannot resume %s with another batch shape: it was --batch %d --seq %d "
                           "--grad-accum %d",
                           ckpt, saved.batch, saved.seq, saved.grad_accum);
        if (saved.ranks != t->comm.size && saved.grad_accum * saved.ranks != o->grad_accum * t->comm.size)
            log_warn("whale train: %s was written by %d rank(s) at --grad-accum %d: %d x %d "
                     "micro-batches per step now make another global batch (use --grad-accum %d "
                     "to keep it)",
                     ckpt, saved.ranks, saved.grad_accum, t->comm.size, o->grad_accum,
                     saved.grad_accum * saved.ranks % t->comm.size == 0
                         ? saved.grad_accum * saved.ranks / t->comm.size
                         : o->grad_accum);
        t->st = saved;
        t->st.grad_accum = o->grad_accum;
        t->st.ranks = t->comm.size;
    } else {
        /* the MTP heads start as copies of the one shared head */
        const ParamSpec *lm = weights_find(&t->m.w, "lm_head.weight");
        for (int i = 0; lm && i < t->m.w.n_specs; i++)
            if (!optim_is_trained(&t->m.w.specs[i]) && t->m.w.specs[i].kind != PARAM_ROUTER_BIAS)
                memcpy(t->m.w.data + t->m.w.specs[i].offset, t->m.w.data + lm->offset, lm->bytes);
    }
    if (t->comm.rank != 0) return 0; /* rank 0 writes the run directory */
    t->metrics = plot_metrics_open(o->out, o->resume ? t->st.step : -1, t->metrics_path,
                                   sizeof t->metrics_path, t->plot_path, sizeof t->plot_path, err);
    return t->metrics ? 0 : -1;
}

static void trainer_close(Trainer *t) {
    if (t->metrics) fclose(t->metrics);
    free(t->batch);
    free(t->espan);
    free(t->load_layers);
    expert_load_free(&t->load);
    adamw_free(&t->opt);
    weights_free(&t->grads);
    shards_close(&t->train);
    shards_close(&t->val);
    train_acts_free(&t->acts);
    model_free(&t->m);
}

/* Mean next-token loss over the first eval_batches x B windows of the
 * held-out split. */
static int evaluate(Trainer *t, double *loss, Err *err) {
    const TrainOpts *o = t->o;
    const int B = o->batch, T = o->seq, V = t->m.cfg.vocab_size;
    int64_t nw = shards_n_windows(&t->val, T + 1), want = (int64_t)o->eval_batches * B;
    if (want > nw) want = nw;
    double sum = 0;
    int64_t n_tok = 0;
    int32_t *y = malloc(sizeof(int32_t) * (size_t)B * T);
    if (!y) return err_set(err, "out of memory");
    /* rank r evaluates batches r, r + ranks, ...; the sums meet below.
     * With expert parallelism every rank of a group takes part in every
     * forward's all-to-all, so all make the same number of forwards: a
     * rank past the end forwards its first batch again, uncounted. */
    const int64_t step = (int64_t)B * t->comm.size, n_fwd = (want + step - 1) / step;
    for (int64_t i = 0; i < n_fwd; i++) { /* n_fwd is the same on every rank */
        int64_t w0 = (int64_t)B * t->comm.rank + i * step;
        const int count = w0 < want;
        if (!count && !t->acts.ep) break;
        if (!count) w0 = 0;
        int nb = want - w0 < B ? (int)(want - w0) : B;
        for (int b = 0; b < nb; b++) shards_window(&t->val, w0 + b, T + 1, t->batch + (size_t)b * (T + 1));
        if (model_forward_train(&t->m, &t->acts, t->batch, nb, T, err) != 0) {
            free(y);
            return pass_failed(t, err);
        }
        if (!count) continue;
        for (int b = 0; b < nb; b++)
            memcpy(y + (size_t)b * T, t->batch + (size_t)b * (T + 1) + 1, sizeof(int32_t) * T);
        sum += xent_forward_backward(t->acts.logits, y, NULL, 1.0f, nb * T, V, NULL);
        n_tok += (int64_t)nb * T;
    }
    free(y);
    double sums[2] = {sum, (double)n_tok};
    if (comm_allreduce_f64(&t->comm, sums, 2, err) != 0) return -1;
    *loss = sums[1] > 0 ? sums[0] / sums[1] : NAN;
    return 0;
}

/* Faults for the tests: WHALE_FAULT_NAN_STEPS="3,4" makes those steps'
 * losses NaN, as an overflow would. */
static int fault_nan(int64_t step) {
    const char *s = getenv("WHALE_FAULT_NAN_STEPS");
    while (s && *s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s) break;
        if (v == step) return 1;
        s = *end == ',' ? end + 1 : end;
    }
    return 0;
}

/* WHALE_FAULT_RANK="R:S:kill" (":hang", ":drift") kills rank R (SIGKILL),
 * stops it answering, or changes one of its weights when it reaches step
 * S, as a crashed node, a broken network or a flipped bit would, for the
 * tests of how the job ends. */
static void fault_rank(Trainer *t) {
    const char *s = getenv("WHALE_FAULT_RANK");
    int r, step;
    char what[8];
    if (!s || sscanf(s, "%d:%d:%7s", &r, &step, what) != 3) return;
    if (r != t->comm.rank || step != t->st.step + 1) return;
    if (!strcmp(what, "kill")) raise(SIGKILL);
    if (!strcmp(what, "hang"))
        for (;;) pause();
    if (!strcmp(what, "drift")) t->m.w.data[t->m.w.n_bytes / 2] ^= 1;
}

/* A hash of the n bytes at data (the weights or a buffer of their layout):
 * of the layers' routed experts (the espan runs, in buffer order) with
 * experts 1, of everything else with experts 0. */
static uint64_t hash_runs(const Trainer *t, const unsigned char *data, size_t n, int experts) {
    const int nl = t->m.cfg.num_hidden_layers + t->m.cfg.num_nextn_predict_layers;
    uint64_t h = 0;
    size_t at = 0;
    for (int l = 0; l <= nl; l++) {
        const size_t off = l < nl ? t->espan[l][0] : n, len = l < nl ? t->espan[l][1] : 0;
        if (l < nl && len == 0) continue;
        const size_t p = experts ? off : at, q = experts ? off + len : off;
        if (q > p) h = (h ^ comm_hash(data + p, q - p)) * 0x9e3779b97f4a7c15ull;
        at = off + len;
    }
    return h;
}

/* The ranks hold the same weights: all of them, or with --ep every tensor
 * but the routed experts over the job and the experts over the ranks
 * holding the same ones. */
static int check_weights(Trainer *t, Err *err) {
    const Weights *w = &t->m.w;
    if (!t->acts.ep) return comm_check_weights(&t->comm, w->data, w->n_bytes, t->st.step, err);
    char what[96];
    snprintf(what, sizeof what, "the weights after step %" PRId64, t->st.step);
    if (comm_check_same(&t->comm, hash_runs(t, w->data, w->n_bytes, 0), what, err) != 0) return -1;
    snprintf(what, sizeof what, "the routed experts after step %" PRId64, t->st.step);
    return comm_check_same(&t->rep_comm, hash_runs(t, w->data, w->n_bytes, 1), what, err);
}

static void fmt_eta(double sec, char *buf, size_t n) {
    if (!(sec >= 0) || sec > 1e7) snprintf(buf, n, "?");
    else if (sec >= 3600) snprintf(buf, n, "%dh%02dm", (int)(sec / 3600), (int)(sec / 60) % 60);
    else snprintf(buf, n, "%dm%02ds", (int)(sec / 60), (int)sec % 60);
}

/* Start the sums of the gradient bytes [off, off + n): with --ep the
 * routed experts' among the ranks holding the same ones (an expert's
 * gradient is whole on its rank), the rest over the job. */
static int sum_span(Trainer *t, size_t off, size_t n, Err *err) {
    float *g = (float *)t->grads.data;
    if (!t->acts.ep) return comm_sum_start(&t->comm, g + off / 4, n / 4, err);
    const int nl = t->m.cfg.num_hidden_layers + t->m.cfg.num_nextn_predict_layers;
    size_t at = off;
    for (int l = 0; l < nl; l++) { /* the runs are in buffer order and inside layer spans */
        const size_t eo = t->espan[l][0], en = t->espan[l][1];
        if (en == 0 || eo < at || eo + en > off + n) continue;
        if ((eo > at && comm_sum_start(&t->comm, g + at / 4, (eo - at) / 4, err) != 0) ||
            comm_sum_start(&t->rep_comm, g + eo / 4, en / 4, err) != 0)
            return -1;
        at = eo + en;
    }
    return off + n > at ? comm_sum_start(&t->comm, g + at / 4, (off + n - at) / 4, err) : 0;
}

/* LossOpts.layer_done: layer l's gradients are final; start their sum. */
static void layer_done(void *ctx, int l) {
    Trainer *t = ctx;
    size_t off, n;
    weights_layer_span(&t->grads, l, &off, &n);
    if (t->sum_rc == 0) t->sum_rc = sum_span(t, off, n, &t->sum_err);
}

/* Once the backward is done, start the sums of the gradient bytes that
 * layer_done did not: those outside every layer (embedding, final norm, LM
 * head), or all of them without the overlap. */
static int sum_the_rest(Trainer *t, Err *err) {
    if (!t->overlap) return sum_span(t, 0, t->grads.n_bytes, err);
    const int nl = t->m.cfg.num_hidden_layers + t->m.cfg.num_nextn_predict_layers;
    size_t at = 0; /* layers are in buffer order: blocks, then (after the head) MTP modules */
    for (int l = 0; l <= nl; l++) {
        size_t off = t->grads.n_bytes, n = 0;
        if (l < nl) weights_layer_span(&t->grads, l, &off, &n);
        if (off > at && sum_span(t, at, off - at, err) != 0) return -1;
        if (off + n > at) at = off + n;
    }
    return 0;
}

/* The global gradient norm: with --ep each rank adds the squares of its
 * experts' gradients, and the group adds those. */
static int grad_norm(Trainer *t, double *gnorm, Err *err) {
    double shared, experts;
    optim_grad_sumsq(&t->grads, &shared, &experts);
    if (t->acts.ep && comm_allreduce_f64(&t->ep_comm, &experts, 1, err) != 0) return -1;
    *gnorm = sqrt(shared + experts);
    return 0;
}

/* One optimiser step. Returns 0 (done or skipped: *skipped), -1 with err. */
static int train_step(Trainer *t, LossParts *sum, double *gnorm, float *lr, int *skipped, Err *err) {
    const TrainOpts *o = t->o;
    const int B = o->batch, T = o->seq;
    memset(t->grads.data, 0, t->grads.n_bytes);
    expert_load_zero(&t->load);
    memset(sum, 0, sizeof *sum);
    const int n_micro = o->grad_accum * t->comm.size; /* micro-batches of the step, all ranks */
    LossOpts lo = {o->mtp_lambda, o->balance_alpha, 1.0f / n_micro, NULL, NULL, NULL};
    t->sum_rc = 0;
    const uint64_t drawn = (uint64_t)t->st.tokens / (uint64_t)T; /* windows before this step */
    for (int a = 0; a < o->grad_accum; a++) {
        for (int b = 0; b < B; b++) {
            uint64_t idx = drawn + ((uint64_t)t->comm.rank * o->grad_accum + a) * B + b;
            if (shards_sample(&t->train, t->st.seed, idx, T + 1, t->batch + (size_t)b * (T + 1), err) != 0)
                return -1;
        }
        LossParts lp;
        if (t->comm.size > 1 && a == o->grad_accum - 1 && t->overlap)
            lo.layer_done = layer_done, lo.layer_ctx = t;
        if (model_forward_train(&t->m, &t->acts, t->batch, B, T, err) != 0) return pass_failed(t, err);
        expert_load_add(&t->load, &t->m, &t->acts);
        if (model_backward(&t->m, &t->acts, t->batch, &lo, &t->grads, &lp, err) != 0)
            return pass_failed(t, err);
        sum->loss += lp.loss / n_micro;
        sum->main += lp.main / n_micro;
        sum->balance += lp.balance / n_micro;
        for (int k = 0; k < LOSS_MAX_MTP; k++) sum->mtp[k] += lp.mtp[k] / n_micro;
    }
    if (fault_nan(t->st.step + 1)) sum->loss = NAN;
    fault_rank(t);
    /* data parallel: the gradients (each already scaled by 1/n_micro), the
     * expert loads, the losses and the stop request summed over ranks */
    if (t->comm.size > 1) {
        double parts[4 + LOSS_MAX_MTP] = {sum->loss, sum->main, sum->balance,
                                          o->stop && *o->stop ? 1.0 : 0.0};
        for (int k = 0; k < LOSS_MAX_MTP; k++) parts[4 + k] = sum->mtp[k];
        if (t->sum_rc != 0) return err_set(err, "%s", t->sum_err.msg);
        if (sum_the_rest(t, err) != 0 ||
            comm_allreduce_i64(&t->comm, t->load.count, (size_t)t->load.n_layers * t->load.E, err) != 0 ||
            comm_allreduce_f64(&t->comm, parts, 4 + LOSS_MAX_MTP, err) != 0)
            return -1;
        sum->loss = parts[0], sum->main = parts[1], sum->balance = parts[2];
        for (int k = 0; k < LOSS_MAX_MTP; k++) sum->mtp[k] = parts[4 + k];
        t->stop_any = parts[3] > 0;
    } else {
        t->stop_any = o->stop && *o->stop;
    }
    optim_tie_grads(&t->m.w, &t->grads);
    if (grad_norm(t, gnorm, err) != 0) return -1;
    *skipped = !isfinite(sum->loss) || !isfinite(*gnorm);
    *lr = optim_lr_at(&o->optim, (int)t->st.step);
    if (!*skipped) {
        adamw_step(&t->opt, &t->m.w, &t->grads, &o->optim, (int)t->st.step, *gnorm);
        balance_update_bias(&t->m, &t->load, o->bias_gamma);
    }
    return 0;
}

static void log_metrics(Trainer *t, const LossParts *lp, float lr, double gnorm, double tok_s,
                        double load) {
    FILE *f = t->metrics;
    const ModelConfig *c = &t->m.cfg;
    if (!f) return; /* not rank 0 */
    /* "loss" is the next-token loss, comparable with eval_loss and the
     * unigram entropy; "loss_total" is the objective that was minimised */
    fprintf(f, "{\"step\": %" PRId64 ", \"loss\": %.6f, \"loss_total\": %.6f", t->st.step,
            lp->main, lp->loss);
    if (c->num_nextn_predict_layers > 0) {
        fprintf(f, ", \"loss_mtp\": [");
        for (int k = 0; k < c->num_nextn_predict_layers; k++)
            fprintf(f, "%s%.6f", k ? ", " : "", lp->mtp[k]);
        fprintf(f, "]");
    }
    fprintf(f, ", \"loss_bal\": %.6g, \"lr\": %.6g, \"grad_norm\": %.6g, \"tok_s\": %.1f, "
               "\"tokens\": %" PRId64,
            lp->balance, lr, gnorm, tok_s, t->st.tokens);
    if (c->n_routed_experts > 0) {
        fprintf(f, ", \"load_max_mean\": %.4f, \"load_max_mean_layers\": [", load);
        int first = 1;
        for (int i = 0; i < t->load.n_layers; i++)
            if (t->m.w.layers[i].is_moe)
                fprintf(f, "%s%.4f", first ? "" : ", ", t->load_layers[i]), first = 0;
        fprintf(f, "]");
    }
    if (t->acts.ep) {
        /* expert parallelism: each group rank's share of the routed rows
         * (all MoE layers, all groups); 1 / ranks each when balanced */
        const int N = t->ex.size, per = c->n_routed_experts / N;
        double total = 0, share[EP_MAX_RANKS] = {0};
        for (int l = 0; l < t->load.n_layers; l++)
            for (int e = 0; e < t->load.E; e++) {
                share[e / per] += (double)t->load.count[(size_t)l * t->load.E + e];
                total += (double)t->load.count[(size_t)l * t->load.E + e];
            }
        fprintf(f, ", \"ep_rank_load\": [");
        for (int r = 0; r < N; r++) fprintf(f, "%s%.4f", r ? ", " : "", total > 0 ? share[r] / total : 0);
        fprintf(f, "]");
    }
    fprintf(f, "}\n");
    fflush(f);
}

/* Rank 0 writes the checkpoint; with --ep the ranks of the first group
 * (job ranks 0 .. ep - 1) each write their share of the experts. */
static int save(Trainer *t, Err *err) {
    if (check_weights(t, err) != 0) return -1;
    const Comm *shards = t->acts.ep ? &t->ep_comm : NULL;
    if (t->comm.rank != 0 && !(shards && t->comm.rank < shards->size)) return 0;
    if (ckpt_save(t->o->out, &t->m, &t->opt, &t->st, t->o->model, t->o->keep, shards, err) != 0)
        return -1;
    if (t->comm.rank != 0) return 0;
    Err perr;
    if (plot_metrics_svg(t->metrics_path, t->plot_path, t->o->out, &perr) < 0)
        log_info("whale train: plot not written: %s", perr.msg);
    return 0;
}

int train_run(const TrainOpts *opts, Err *err) {
    TrainOpts quiet_opts = *opts;
    quiet_opts.quiet |= log_quiet();
    const TrainOpts *o = &quiet_opts;
    Trainer t;
    int rc = -1;
    if (trainer_open(&t, o, err) != 0) goto done;
    const ModelConfig *c = &t.m.cfg;
    const int64_t tok_per_step = (int64_t)o->batch * o->seq * o->grad_accum * t.comm.size;
    t.entropy = unigram_entropy(&t.train, c->vocab_size);
    if (!o->quiet) {
        ParamCount pc = config_count_params(c);
        log_info("whale train: %s, %.2fM parameters (%.2fM active), %" PRId64
                 " training tokens, %d x %d tokens x %d accumulation per step",
                 config_arch_name(c->arch), (pc.total + pc.mtp) / 1e6, pc.active / 1e6,
                 shards_n_tokens(&t.train), o->batch, o->seq, o->grad_accum);
        log_info("whale train: unigram entropy of the training tokens %.4f nats%s", t.entropy,
                 t.has_val ? "" : "; no val split, so no eval loss");
        if (t.comm.size > 1 && !t.acts.ep) log_info("whale train: %d ranks, data parallel", t.comm.size);
        if (t.acts.ep)
            log_info("whale train: %d ranks, data parallel, the routed experts shared out in groups "
                     "of %d: a rank holds %.1f MB of the model's %.1f MB of weights, and their "
                     "gradients and AdamW moments",
                     t.comm.size, t.ex.size, t.m.w.n_bytes / 1e6, (pc.total + pc.mtp) * 4 / 1e6);
        if (o->resume) log_info("whale train: resuming at step %" PRId64, t.st.step);
    }
    if (check_weights(&t, err) != 0) goto done;
    if (!o->resume && t.metrics) {
        fprintf(t.metrics, "{\"step\": 0, \"unigram_entropy\": %.6f}\n", t.entropy);
        fflush(t.metrics);
    }
    const int interactive = !o->quiet && isatty(2);
    double t0 = time_now();
    int64_t first_step = t.st.step;
    int nan_run = 0;
    while (t.st.step < o->steps) {
        LossParts lp;
        double gnorm = 0;
        float lr = 0;
        int skipped = 0;
        double ts = time_now();
        if (train_step(&t, &lp, &gnorm, &lr, &skipped, err) != 0) goto done;
        t.st.step++;
        t.st.tokens += tok_per_step;
        double dt = time_now() - ts, tok_s = tok_per_step / (dt > 0 ? dt : 1e-9);
        if (skipped) {
            t.st.nan_skipped++;
            log_warn("whale train: step %" PRId64 ": loss %g, grad norm %g: not finite, step skipped",
                     t.st.step, lp.loss, gnorm);
            if (++nan_run >= o->max_nan) {
                if (save(&t, err) != 0) goto done;
                err_set(err, "the loss was not finite for %d steps in a row (to step %" PRId64
                             "); stopped. The last good weights are in %s",
                        nan_run, t.st.step, o->out);
                goto done;
            }
            continue;
        }
        nan_run = 0;
        double load = expert_load_max_mean(&t.load, &t.m, t.load_layers);
        log_metrics(&t, &lp, lr, gnorm, tok_s, load);
        if (!o->quiet && (interactive || t.st.step % o->log_every == 0 || t.st.step == o->steps)) {
            double el = time_now() - t0;
            char eta[32];
            fmt_eta(el / (double)(t.st.step - first_step) * (double)(o->steps - t.st.step), eta, sizeof eta);
            fprintf(stderr, "%sstep %" PRId64 "/%d | loss %.4f | %.0f tok/s | lr %.2e | gnorm %.3f",
                    interactive ? "\r\033[K" : "", t.st.step, o->steps, lp.main, tok_s, lr, gnorm);
            if (c->n_routed_experts > 0) fprintf(stderr, " | load %.2f", load);
            fprintf(stderr, " | ETA %s%s", eta, interactive ? "" : "\n");
        }
        if (t.has_val && o->eval_every > 0 && (t.st.step % o->eval_every == 0 || t.st.step == o->steps)) {
            double el = 0;
            if (evaluate(&t, &el, err) != 0 || check_weights(&t, err) != 0) goto done;
            if (t.metrics) {
                fprintf(t.metrics, "{\"step\": %" PRId64 ", \"eval_loss\": %.6f}\n", t.st.step, el);
                fflush(t.metrics);
            }
            if (!o->quiet)
                fprintf(stderr, "%sstep %" PRId64 ": eval loss %.4f\n", interactive ? "\r\033[K" : "",
                        t.st.step, el);
        }
        const int stopping = t.stop_any || t.st.step == o->stop_at;
        if (stopping || t.st.step == o->steps || (o->save_every > 0 && t.st.step % o->save_every == 0)) {
            if (save(&t, err) != 0) goto done;
        }
        if (stopping) {
            if (interactive) fprintf(stderr, "\n");
            if (!o->quiet)
                log_info("whale train: %s; checkpoint of step %" PRId64 " written to %s "
                         "(continue with --resume)",
                         t.st.step == o->stop_at ? "stopped as asked" : "interrupted", t.st.step,
                         o->out);
            rc = 0;
            goto done;
        }
    }
    if (interactive) fprintf(stderr, "\n");
    if (!o->quiet)
        log_info("whale train: done, %" PRId64 " steps, model in %s, metrics in %s", t.st.step,
                 o->out, t.metrics_path);
    rc = 0;
done:
    trainer_close(&t);
    return rc;
}
