/* SPDX-License-Identifier: MIT */
/* The whole model's backward (see model_backward.h), the mirror of
 * model/model_train.c: loss gradients at the heads, the MTP modules from
 * the deepest down (each hands a gradient to the hidden state it read), the
 * final norm, the blocks in reverse, and the embedding rows. */
#include "train/model_backward.h"

#include <string.h>

#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "train/backward.h"
#include "train/loss.h"

/* Block backward: dh (T, D) holds the gradient at the block's output and
 * leaves with the gradient at its input. */
static int block_backward(Model *m, int layer, float *dh, int n_seq, int seq_len,
                          const BlockSaved *sv, Weights *grads, float bal_coef, double *bal_loss,
                          Arena *a) {
    const ModelConfig *c = &m->cfg;
    const LayerWeights *L = &m->w.layers[layer], *G = &grads->layers[layer];
    const int D = c->hidden_size, T = n_seq * seq_len;
    const size_t n = (size_t)T * D;
    float *dxn = arena_floats(a, n);
    if (!dxn) return -1;
    /* h_out = h_mid + FFN(norm(h_mid)) */
    memset(dxn, 0, n * sizeof(float));
    if (L->is_moe) {
        MoeBalance bal = {bal_coef, n_seq, seq_len, 0};
        if (moe_backward(dxn, dh, sv->xn2, L, G, c, T, &sv->moe, &bal, a) != 0) return -1;
        *bal_loss += bal.loss;
    } else {
        float *work = arena_floats(a, 3 * (size_t)T * L->gate.rows);
        if (!work) return -1;
        ffn_backward(dxn, dh, sv->xn2, &L->gate, &L->up, &L->down, &G->gate, &G->up, &G->down, T,
                     &sv->ffn, work);
    }
    rmsnorm_backward(dh, grad_of(G->ffn_norm), dxn, sv->h_mid, L->ffn_norm, T, D, c->rms_norm_eps);
    /* h_mid = h_in + MLA(norm(h_in)) */
    memset(dxn, 0, n * sizeof(float));
    if (mla_backward(dxn, dh, sv->xn1, L, G, c, &m->rope, n_seq, seq_len, &sv->mla, a) != 0)
        return -1;
    rmsnorm_backward(dh, grad_of(G->attn_norm), dxn, sv->h_in, L->attn_norm, T, D, c->rms_norm_eps);
    return 0;
}

/* Scatter-add rows of d (n, D) into the embedding gradient at tok. */
static void embed_backward(Weights *grads, const int32_t *tok, const float *d, int n, int D) {
    float *g = grad_of(grads->embed.data);
    for (int i = 0; i < n; i++) {
        float *row = g + (size_t)tok[i] * D;
        for (int j = 0; j < D; j++) row[j] += d[(size_t)i * D + j];
    }
}

int model_backward(Model *m, TrainActs *acts, const int32_t *tokens, const LossOpts *o,
                   Weights *grads, LossParts *out, Err *err) {
    const ModelConfig *c = &m->cfg;
    const int D = c->hidden_size, V = c->vocab_size, B = acts->n_seq, Tq = acts->seq_len;
    const int T = B * Tq, Dm = c->num_nextn_predict_layers, T1 = Tq + 1;
    const float scale = o->scale > 0 ? o->scale : 1.0f;
    const float bal_coef = o->balance_alpha / B * scale;
    Arena *a = &acts->scratch;
    memset(out, 0, sizeof *out);
    arena_reset(a);
    if (Dm > LOSS_MAX_MTP) return err_set(err, "at most %d MTP modules can be trained", LOSS_MAX_MTP);
    int32_t *y = arena_take(a, (size_t)T * sizeof(int32_t));
    float *dhn = arena_floats(a, (size_t)T * D), *dh = arena_floats(a, (size_t)T * D);
    float *dprev[LOSS_MAX_MTP + 1] = {dhn};
    if (!y || !dhn || !dh) goto oom;

    /* main head: loss = sum_t w_t nll_t with w = 1 / T unless given */
    for (int b = 0; b < B; b++)
        memcpy(y + (size_t)b * Tq, tokens + (size_t)b * T1 + 1, (size_t)Tq * sizeof(int32_t));
    const float main_scale = o->token_weights ? 1.0f : 1.0f / T;
    out->main = xent_forward_backward(acts->logits, y, o->token_weights, main_scale, T, V, NULL);
    if (scale != 1.0f)
        for (size_t i = 0; i < (size_t)T * V; i++) acts->logits[i] *= scale;
    memset(dhn, 0, (size_t)T * D * sizeof(float));
    matmul_backward(dhn, grad_of(grads->lm_head.data), acts->logits, acts->hn, &m->w.lm_head, T);

    /* MTP gradient buffers at each depth's output, zeroed */
    for (int k = 1; k <= Dm; k++) {
        const size_t n = (size_t)B * acts->mtp[k - 1].seq_len * D;
        dprev[k] = arena_floats(a, n);
        if (!dprev[k]) goto oom;
        memset(dprev[k], 0, n * sizeof(float));
    }
    for (int k = Dm; k >= 1; k--) {
        const MtpSaved *s = &acts->mtp[k - 1];
        const int layer = c->num_hidden_layers + k - 1, len = s->seq_len, n = B * len;
        const LayerWeights *L = &m->w.layers[layer], *G = &grads->layers[layer];
        const int prev_len = k == 1 ? Tq : acts->mtp[k - 2].seq_len;
        for (int b = 0; b < B; b++)
            memcpy(y + (size_t)b * len, tokens + (size_t)b * T1 + k + 1, (size_t)len * sizeof(int32_t));
        const float w = o->mtp_lambda / Dm / n * scale;
        out->mtp[k - 1] = xent_forward_backward(s->logits, y, NULL, 1.0f, n, V, NULL) / n;
        for (size_t i = 0; i < (size_t)n * V; i++) s->logits[i] *= w;
        float *dhk = arena_floats(a, (size_t)n * D), *dcat = arena_floats(a, (size_t)n * 2 * D);
        float *emb = arena_floats(a, (size_t)n * D), *demb = arena_floats(a, (size_t)n * D);
        if (!dhk || !dcat || !emb || !demb) goto oom;
        memset(dhk, 0, (size_t)n * D * sizeof(float));
        matmul_backward(dhk, grad_of(G->head.data), s->logits, s->hn, &L->head, n);
        /* the block output also fed depth k + 1 (its gradient waits in dprev[k]) */
        rmsnorm_backward(dprev[k], grad_of(G->head_norm), dhk, s->h_out, L->head_norm, n, D,
                         c->rms_norm_eps);
        double bal = 0;
        const ArenaMark mark = arena_mark(a); /* the block's temporaries, given back after it */
        if (block_backward(m, layer, dprev[k], B, len, &s->blk, grads, bal_coef, &bal, a) != 0)
            goto oom;
        arena_release(a, mark);
        out->balance += bal / scale;
        memset(dcat, 0, (size_t)n * 2 * D * sizeof(float));
        matmul_backward(dcat, grad_of(G->eh_proj.data), dprev[k], s->cat, &L->eh_proj, n);
        for (int r = 0; r < n; r++)
            dequantize_row(m->w.embed.type, mat_row(&m->w.embed, s->tok[r]), emb + (size_t)r * D, D);
        memset(demb, 0, (size_t)n * D * sizeof(float));
        memset(dhk, 0, (size_t)n * D * sizeof(float));
        for (int r = 0; r < n; r++) {
            rmsnorm_backward(demb + (size_t)r * D, grad_of(G->enorm), dcat + (size_t)r * 2 * D,
                             emb + (size_t)r * D, L->enorm, 1, D, c->rms_norm_eps);
            rmsnorm_backward(dhk + (size_t)r * D, grad_of(G->hnorm), dcat + (size_t)r * 2 * D + D,
                             s->h_prev + (size_t)r * D, L->hnorm, 1, D, c->rms_norm_eps);
        }
        embed_backward(grads, s->tok, demb, n, D);
        if (o->layer_done) o->layer_done(o->layer_ctx, layer);
        /* position i of depth k read position i of depth k - 1 */
        for (int b = 0; b < B; b++)
            for (int i = 0; i < len; i++) {
                float *dst = dprev[k - 1] + ((size_t)b * prev_len + i) * D;
                const float *src = dhk + ((size_t)b * len + i) * D;
                for (int j = 0; j < D; j++) dst[j] += src[j];
            }
    }

    /* final norm, then the blocks in reverse */
    memset(dh, 0, (size_t)T * D * sizeof(float));
    rmsnorm_backward(dh, grad_of(grads->final_norm), dhn, acts->h_last, m->w.final_norm, T, D,
                     c->rms_norm_eps);
    for (int l = c->num_hidden_layers - 1; l >= 0; l--) {
        double bal = 0;
        const ArenaMark mark = arena_mark(a); /* so the peak is one block's, not all of them */
        if (block_backward(m, l, dh, B, Tq, &acts->blocks[l], grads, bal_coef, &bal, a) != 0)
            goto oom;
        arena_release(a, mark);
        out->balance += bal / scale;
        if (o->layer_done) o->layer_done(o->layer_ctx, l);
    }
    for (int b = 0; b < B; b++)
        embed_backward(grads, tokens + (size_t)b * T1, dh + (size_t)b * Tq * D, Tq, D);

    out->loss = out->main + out->balance;
    for (int k = 0; k < Dm; k++) out->loss += o->mtp_lambda / Dm * out->mtp[k];
    return 0;
oom:
    return err_set(err, "out of memory in the backward pass");
}
