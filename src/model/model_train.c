/* SPDX-License-Identifier: MIT */
/* The training forward (see model_train.h): the same block functions as
 * inference, over a whole batch, saving what the backward reads. Rows are
 * sequence-major: row b * seq_len + t is token t of sequence b. */
#include "model/model_train.h"

#include <string.h>

#include "kernels/matmul.h"
#include "kernels/ops.h"

void train_acts_free(TrainActs *a) {
    arena_free(&a->arena);
    arena_free(&a->scratch);
    memset(a, 0, sizeof *a);
}

static float *take(TrainActs *acts, size_t n, int *failed) {
    float *p = arena_floats(&acts->arena, n);
    if (!p) *failed = 1;
    return p;
}

/* One block over n_seq x seq_len rows of h (in place), saving into sv. */
static int block_train(Model *m, int layer, float *h, int n_seq, int seq_len, BlockSaved *sv,
                       const ExpertExchange *ep, Arena *a) {
    const ModelConfig *c = &m->cfg;
    const LayerWeights *L = &m->w.layers[layer];
    const int D = c->hidden_size, T = n_seq * seq_len;
    const size_t n = (size_t)T * D;
    float *o = arena_floats(a, n);
    int failed = !o;
    sv->h_in = arena_floats(a, n), failed |= !sv->h_in;
    sv->xn1 = arena_floats(a, n), failed |= !sv->xn1;
    sv->h_mid = arena_floats(a, n), failed |= !sv->h_mid;
    sv->xn2 = arena_floats(a, n), failed |= !sv->xn2;
    if (failed || mla_saved_alloc(&sv->mla, c, n_seq, seq_len, a) != 0) return -1;
    if (L->is_moe ? moe_saved_alloc(&sv->moe, c, T, a) != 0
                  : ffn_saved_alloc(&sv->ffn, T, L->gate.rows, a) != 0)
        return -1;
    sv->moe.ep = ep;
    memcpy(sv->h_in, h, n * sizeof(float));
    rmsnorm(sv->xn1, h, L->attn_norm, T, D, c->rms_norm_eps);
    if (mla_forward_train(o, sv->xn1, L, c, &m->rope, n_seq, seq_len, &sv->mla, a) != 0) return -1;
    vec_add(h, o, n);
    memcpy(sv->h_mid, h, n * sizeof(float));
    rmsnorm(sv->xn2, h, L->ffn_norm, T, D, c->rms_norm_eps);
    int rc = L->is_moe ? moe_forward(o, sv->xn2, L, c, T, &sv->moe, a)
                       : ffn_forward(o, sv->xn2, &L->gate, &L->up, &L->down, T, &sv->ffn, a);
    if (rc != 0) return -1;
    vec_add(h, o, n);
    return 0;
}

static void embed_rows(const Model *m, const int32_t *tok, int n, float *out) {
    const int D = m->cfg.hidden_size;
    for (int i = 0; i < n; i++)
        dequantize_row(m->w.embed.type, mat_row(&m->w.embed, tok[i]), out + (size_t)i * D, D);
}

/* MTP depth k (1-based) from the previous depth's hidden states prev
 * (n_seq, prev_len, D). */
static int mtp_train(Model *m, TrainActs *acts, int k, const int32_t *tokens, const float *prev,
                     int prev_len) {
    const ModelConfig *c = &m->cfg;
    const int D = c->hidden_size, V = c->vocab_size, B = acts->n_seq, T1 = acts->seq_len + 1;
    const int len = acts->seq_len - k, n = B * len;
    const LayerWeights *L = &m->w.layers[c->num_hidden_layers + k - 1];
    MtpSaved *s = &acts->mtp[k - 1];
    Arena *a = &acts->arena;
    int failed = 0;
    s->seq_len = len;
    s->tok = arena_take(a, (size_t)n * sizeof(int32_t));
    s->h_prev = take(acts, (size_t)n * D, &failed);
    s->cat = take(acts, (size_t)n * 2 * D, &failed);
    s->h_out = take(acts, (size_t)n * D, &failed);
    s->hn = take(acts, (size_t)n * D, &failed);
    s->logits = take(acts, (size_t)n * V, &failed);
    float *emb = take(acts, (size_t)n * D, &failed);
    if (failed || !s->tok) return -1;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < len; i++) {
            const int r = b * len + i;
            s->tok[r] = tokens[(size_t)b * T1 + i + k];
            memcpy(s->h_prev + (size_t)r * D, prev + ((size_t)b * prev_len + i) * D,
                   (size_t)D * sizeof(float));
        }
    embed_rows(m, s->tok, n, emb);
    /* the embedding half first, as the released weights expect */
    for (int r = 0; r < n; r++) {
        float *row = s->cat + (size_t)r * 2 * D;
        rmsnorm(row, emb + (size_t)r * D, L->enorm, 1, D, c->rms_norm_eps);
        rmsnorm(row + D, s->h_prev + (size_t)r * D, L->hnorm, 1, D, c->rms_norm_eps);
    }
    matmul(s->h_out, s->cat, &L->eh_proj, n);
    if (block_train(m, c->num_hidden_layers + k - 1, s->h_out, B, len, &s->blk, acts->ep, a) != 0)
        return -1;
    rmsnorm(s->hn, s->h_out, L->head_norm, n, D, c->rms_norm_eps);
    matmul(s->logits, s->hn, &L->head, n);
    return 0;
}

int model_forward_train(Model *m, TrainActs *acts, const int32_t *tokens, int n_seq, int seq_len,
                        Err *err) {
    const ModelConfig *c = &m->cfg;
    const int D = c->hidden_size, V = c->vocab_size, T = n_seq * seq_len;
    if (!config_is_mla(c))
        return err_set(err, "training supports the MLA models (deepseek_v2, deepseek_v3); "
                            "this is a %s model",
                       c->model_type);
    if (n_seq < 1 || seq_len < 2 || seq_len <= c->num_nextn_predict_layers)
        return err_set(err, "training batch of %d x %d tokens is too small", n_seq, seq_len);
    for (size_t i = 0; i < (size_t)n_seq * (seq_len + 1); i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return err_set(err, "token id %d at batch position %zu is outside the vocabulary (0..%d)",
                           tokens[i], i, c->vocab_size - 1);
    Arena *a = &acts->arena;
    arena_reset(a);
    acts->n_seq = n_seq;
    acts->seq_len = seq_len;
    int failed = 0;
    acts->blocks = arena_take(a, (size_t)c->num_hidden_layers * sizeof(BlockSaved));
    acts->mtp = arena_take(a, ((size_t)c->num_nextn_predict_layers + 1) * sizeof(MtpSaved));
    acts->h_last = take(acts, (size_t)T * D, &failed);
    acts->hn = take(acts, (size_t)T * D, &failed);
    acts->logits = take(acts, (size_t)T * V, &failed);
    int32_t *in = arena_take(a, (size_t)T * sizeof(int32_t));
    if (failed || !acts->blocks || !acts->mtp || !in) goto oom;
    for (int b = 0; b < n_seq; b++)
        memcpy(in + (size_t)b * seq_len, tokens + (size_t)b * (seq_len + 1),
               (size_t)seq_len * sizeof(int32_t));
    float *h = acts->h_last;
    embed_rows(m, in, T, h);
    for (int l = 0; l < c->num_hidden_layers; l++)
        if (block_train(m, l, h, n_seq, seq_len, &acts->blocks[l], acts->ep, a) != 0) goto oom;
    rmsnorm(acts->hn, h, m->w.final_norm, T, D, c->rms_norm_eps);
    matmul(acts->logits, acts->hn, &m->w.lm_head, T);
    const float *prev = acts->hn;
    int prev_len = seq_len;
    for (int k = 1; k <= c->num_nextn_predict_layers; k++) {
        if (mtp_train(m, acts, k, tokens, prev, prev_len) != 0) goto oom;
        prev = acts->mtp[k - 1].h_out;
        prev_len = acts->mtp[k - 1].seq_len;
    }
    return 0;
oom:
    return err_set(err, "out of memory for the training activations (%d x %d tokens)", n_seq,
                   seq_len);
}
