/* SPDX-License-Identifier: MIT */
/* Weighted-sequence training passes and the optimiser update (see
 * seqtrain.h). The bucket buffers only grow, so a run allocates nothing
 * per step once it has seen its longest bucket. */
#include "rl/seqtrain.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/loss.h"
#include "train/model_backward.h"

int seqtrain_init(SeqTrain *s, Model *m, Err *err) {
    memset(s, 0, sizeof *s);
    s->m = m;
    s->comm = *comm_world();
    if (weights_alloc(&s->grads, &m->cfg, QTYPE_F32, err) != 0 || adamw_init(&s->opt, &m->w, err) != 0 ||
        expert_load_init(&s->load, &m->cfg, err) != 0) {
        seqtrain_free(s);
        return -1;
    }
    return 0;
}

void seqtrain_free(SeqTrain *s) {
    free(s->tok), free(s->y), free(s->wts), free(s->logp), free(s->ent);
    expert_load_free(&s->load);
    adamw_free(&s->opt);
    weights_free(&s->grads);
    train_acts_free(&s->acts);
    memset(s, 0, sizeof *s);
}

void seqtrain_zero(SeqTrain *s) {
    memset(s->grads.data, 0, s->grads.n_bytes);
    expert_load_zero(&s->load);
}

/* Room for rows bucket rows. */
static int reserve(SeqTrain *s, size_t rows, Err *err) {
    if (rows <= s->cap_rows) return 0;
    free(s->tok), free(s->y), free(s->wts), free(s->logp), free(s->ent);
    s->tok = malloc(rows * sizeof *s->tok);
    s->y = malloc(rows * sizeof *s->y);
    s->wts = malloc(rows * sizeof *s->wts);
    s->logp = malloc(rows * sizeof *s->logp);
    s->ent = malloc(rows * sizeof *s->ent);
    const int ok = s->tok && s->y && s->wts && s->logp && s->ent;
    s->cap_rows = ok ? rows : 0; /* a failure is retried, not taken for room */
    return ok ? 0 : err_set(err, "out of memory");
}

/* Forward one bucket (n sequences of length L) through m; with logprobs,
 * the targets' log-probs and entropies into s->logp, s->ent (rows b (L-1) + t). */
static int bucket_forward(SeqTrain *s, Model *m, const SeqItem *seqs, int n, int L, int logprobs,
                          Err *err) {
    const int T = L - 1;
    if (reserve(s, (size_t)n * L, err) != 0) return -1;
    for (int b = 0; b < n; b++) memcpy(s->tok + (size_t)b * L, seqs[b].ids, sizeof(int32_t) * L);
    if (model_forward_train(m, &s->acts, s->tok, n, T, err) != 0) return -1;
    if (logprobs) {
        for (int b = 0; b < n; b++)
            memcpy(s->y + (size_t)b * T, s->tok + (size_t)b * L + 1, sizeof(int32_t) * T);
        xent_logprobs(s->acts.logits, s->y, n * T, m->cfg.vocab_size, s->logp, s->ent);
    }
    return 0;
}

int seqtrain_pass(SeqTrain *s, const SeqItem *seqs, int n, const SeqPass *p, double *loss,
                  Err *err) {
    Model *m = p->model ? p->model : s->m;
    const int backward = p->backward;
    assert(!backward || m == s->m); /* gradients belong to the trained model */
    double sum = 0;
    for (int i = 0; i < n;) {
        const int L = seqs[i].len;
        int k = 1;
        while (i + k < n && seqs[i + k].len == L && k < SEQTRAIN_MAX_BUCKET) k++;
        if (L < 2) return err_set(err, "a training sequence of %d tokens is too short", L);
        if (bucket_forward(s, m, seqs + i, k, L, p->logprobs, err) != 0) return -1;
        p->fn(p->user, i, k, L, p->logprobs ? s->logp : NULL, p->logprobs ? s->ent : NULL,
              backward ? s->wts : NULL);
        if (backward) {
            expert_load_add(&s->load, m, &s->acts);
            LossOpts lo = {0.0f, 0.0f, 1.0f, s->wts, NULL, NULL};
            LossParts lp;
            if (model_backward(m, &s->acts, s->tok, &lo, &s->grads, &lp, err) != 0) return -1;
            sum += lp.main;
        }
        i += k;
    }
    if (loss) *loss = sum;
    return 0;
}

int seqtrain_reduce(SeqTrain *s, double *sums, int n, Err *err) {
    if (s->comm.size == 1) return 0;
    if (comm_allreduce_f32(&s->comm, (float *)s->grads.data, s->grads.n_bytes / 4, err) != 0 ||
        comm_allreduce_i64(&s->comm, s->load.count, (size_t)s->load.n_layers * s->load.E, err) != 0)
        return -1;
    return n > 0 ? comm_allreduce_f64(&s->comm, sums, (size_t)n, err) : 0;
}

double seqtrain_update(SeqTrain *s, const OptimOpts *o, int step, float bias_gamma) {
    optim_tie_grads(&s->m->w, &s->grads);
    const double gn = optim_grad_norm(&s->grads);
    if (!isfinite(gn)) return gn;
    adamw_step(&s->opt, &s->m->w, &s->grads, o, step, gn);
    balance_update_bias(s->m, &s->load, bias_gamma);
    return gn;
}
