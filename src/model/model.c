/* SPDX-License-Identifier: MIT */
/* Model lifetime and the forward pass (see model.h). A decoder block is
 *   h += Attn(RMSNorm(h));  h += FFN_or_MoE(RMSNorm(h))
 * and the model is embedding -> blocks -> RMSNorm -> LM head. */
#include "model/model.h"

#include <stdio.h>
#include <string.h>

#include "base/file.h"
#include "io/safetensors.h"
#include "kernels/matmul.h"
#include "model/gguf_load.h"
#include "kernels/ops.h"
#include "model/blocks.h"

#define MODEL_MAX_CHUNK 256

/* shard, n_shards: the share of the routed experts held (weights_alloc_shard). */
static int model_setup(Model *m, QType mat_type, int shard, int n_shards, Err *err) {
    m->max_chunk = MODEL_MAX_CHUNK;
    if (rope_init(&m->rope, &m->cfg, err) != 0) return -1;
    return weights_alloc_shard(&m->w, &m->cfg, mat_type, shard, n_shards, err);
}

int model_create(Model *m, const ModelConfig *cfg, Err *err) {
    return model_create_as(m, cfg, QTYPE_F32, err);
}

int model_create_as(Model *m, const ModelConfig *cfg, QType mat_type, Err *err) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    if (model_setup(m, mat_type, 0, 1, err) != 0) {
        model_free(m);
        return -1;
    }
    return 0;
}

/* 1 if the checkpoint at path holds MTP module 0 (its eh_proj). */
static int checkpoint_has_mtp(const char *path, const ModelConfig *cfg) {
    SafeTensors st;
    if (st_open(&st, path, NULL) != 0) return 0;
    char name[96];
    snprintf(name, sizeof name, "model.layers.%d.eh_proj.weight", cfg->num_hidden_layers);
    int has = st_find(&st, name) != NULL;
    st_close(&st);
    return has;
}

/* A .gguf: config from its metadata, weights through model/gguf_load.c;
 * keep: each matrix in the file's type, else all in mat_type. */
static int open_gguf(Model *m, const char *path, int keep, QType mat_type, Err *err) {
    GgufFile g;
    memset(m, 0, sizeof *m);
    if (gguf_open(&g, path, err) != 0) return -1;
    m->max_chunk = MODEL_MAX_CHUNK;
    int rc = gguf_model_config(&g, &m->cfg, err);
    if (rc == 0) rc = rope_init(&m->rope, &m->cfg, err);
    if (rc == 0) rc = gguf_weights_load(&m->w, &m->cfg, &g, keep, mat_type, err);
    gguf_close(&g);
    if (rc != 0) model_free(m);
    return rc;
}

int model_open(Model *m, const char *path, Err *err) {
    if (path_has_suffix(path, ".gguf")) return open_gguf(m, path, 1, QTYPE_F32, err);
    return model_open_as(m, path, QTYPE_F32, err);
}

/* A model directory or .safetensors file, holding shard of n_shards. */
static int open_dir(Model *m, const char *path, QType mat_type, int shard, int n_shards, Err *err) {
    memset(m, 0, sizeof *m);
    char dir[4096];
    /* a .safetensors file reads its config.json from the same directory */
    path_dir_of(path, dir, sizeof dir);
    if (!file_exists(path)) return err_set(err, "%s: no such file or directory", path);
    if (config_load(&m->cfg, dir, err) != 0) return -1;
    if (m->cfg.num_nextn_predict_layers > 0 && !checkpoint_has_mtp(path, &m->cfg))
        m->cfg.num_nextn_predict_layers = 0;
    if (model_setup(m, mat_type, shard, n_shards, err) != 0 || weights_load(&m->w, path, err) != 0) {
        model_free(m);
        return -1;
    }
    return 0;
}

int model_open_as(Model *m, const char *path, QType mat_type, Err *err) {
    if (path_has_suffix(path, ".gguf")) return open_gguf(m, path, 0, mat_type, err);
    return open_dir(m, path, mat_type, 0, 1, err);
}

int model_open_shard(Model *m, const char *path, int shard, int n_shards, Err *err) {
    if (n_shards <= 1) return model_open(m, path, err);
    if (path_has_suffix(path, ".gguf"))
        return err_set(err, "%s: experts are shared out over ranks from a model directory, not "
                            "a .gguf (whale convert turns it into one)", path);
    return open_dir(m, path, QTYPE_F32, shard, n_shards, err);
}

void model_free(Model *m) {
    weights_free(&m->w);
    arena_free(&m->arena);
    memset(m, 0, sizeof *m);
}

static int oom(Err *err) { return err_set(err, "out of memory in the forward pass"); }

int model_block(Model *m, int layer, float *h, const SeqRows *sr, MlaPath path, Err *err) {
    const ModelConfig *c = &m->cfg;
    const LayerWeights *L = &m->w.layers[layer];
    const int D = c->hidden_size, T = sr->start[sr->n_seq];
    Arena *a = &m->arena;
    float *xn = arena_floats(a, (size_t)T * D), *o = arena_floats(a, (size_t)T * D);
    if (!xn || !o) return oom(err);
    rmsnorm(xn, h, L->attn_norm, T, D, c->rms_norm_eps);
    int rc = config_is_mla(c) ? mla_forward(o, xn, L, c, &m->rope, sr, layer, path, a)
                              : gqa_forward(o, xn, L, c, &m->rope, sr, layer, a);
    if (rc != 0) return oom(err);
    vec_add(h, o, (size_t)T * D);
    rmsnorm(xn, h, L->ffn_norm, T, D, c->rms_norm_eps);
    rc = L->is_moe ? moe_forward(o, xn, L, c, T, NULL, a)
                   : ffn_forward(o, xn, &L->gate, &L->up, &L->down, T, NULL, a);
    if (rc != 0) return oom(err);
    vec_add(h, o, (size_t)T * D);
    return 0;
}

/* Final norm and LM head: hidden (T, D) gets every row after the norm (if
 * not NULL); logits (if not NULL) those of every row (all_logits, or when
 * every sequence has one row), else of each sequence's last row (n_seq, V). */
static int forward_head(Model *m, const SeqRows *sr, const float *h, float *logits, int all_logits,
                        float *hidden, Err *err) {
    const ModelConfig *c = &m->cfg;
    const int D = c->hidden_size, N = sr->n_seq, T = sr->start[N];
    const float *fn = m->w.final_norm, eps = c->rms_norm_eps;
    if (hidden) rmsnorm(hidden, h, fn, T, D, eps);
    if (!logits) return 0;
    const int every = all_logits || N == T, n = every ? T : N;
    float *hn = every && hidden ? hidden : arena_floats(&m->arena, (size_t)n * D);
    if (!hn) return oom(err);
    if (every && !hidden) {
        rmsnorm(hn, h, fn, T, D, eps);
    } else if (!every) {
        for (int i = 0; i < N; i++) {
            const size_t last = (size_t)(sr->start[i + 1] - 1) * D;
            if (hidden) memcpy(hn + (size_t)i * D, hidden + last, (size_t)D * sizeof(float));
            else rmsnorm(hn + (size_t)i * D, h + last, fn, 1, D, eps);
        }
    }
    matmul(logits, hn, &m->w.lm_head, n);
    return 0;
}

/* One pass over the rows of N sequences: sequence i's tokens are
 * tokens[start[i] .. start[i+1]) (start NULL: one token per sequence), at
 * positions kv[i]->len on; every cache advances by its rows. */
static int forward_rows(Model *m, KVCache *const *kv, int N, const int *start, const int *tokens,
                        float *logits, int all_logits, float *hidden, MlaPath path, Err *err) {
    const ModelConfig *c = &m->cfg;
    const int D = c->hidden_size, T = start ? start[N] : N;
    arena_reset(&m->arena);
    float *h = arena_floats(&m->arena, (size_t)T * D);
    int *st = arena_take(&m->arena, ((size_t)N + 1) * sizeof(int));
    int *pos = arena_take(&m->arena, (size_t)T * sizeof(int));
    if (!h || !st || !pos) return oom(err);
    for (int i = 0; i <= N; i++) st[i] = start ? start[i] : i;
    for (int i = 0; i < N; i++)
        for (int t = st[i]; t < st[i + 1]; t++) pos[t] = kv[i]->len + t - st[i];
    const SeqRows sr = {N, kv, st, pos};
    for (int t = 0; t < T; t++)
        dequantize_row(m->w.embed.type, mat_row(&m->w.embed, tokens[t]), h + (size_t)t * D, D);
    /* each block's scratch goes back before the next: the step's arena
     * holds one layer's, not all of them (226 MB for 16 rows after an
     * 80-token prompt on the 1.5B shape, zeroed whenever it grew) */
    for (int l = 0; l < c->num_hidden_layers; l++) {
        const ArenaMark mark = arena_mark(&m->arena);
        if (model_block(m, l, h, &sr, path, err) != 0) return -1;
        arena_release(&m->arena, mark);
    }
    if (forward_head(m, &sr, h, logits, all_logits, hidden, err) != 0) return -1;
    for (int i = 0; i < N; i++) kv[i]->len += st[i + 1] - st[i];
    return 0;
}

static int check_token(const ModelConfig *c, int id, const char *what, int at, Err *err) {
    if (id >= 0 && id < c->vocab_size) return 0;
    return err_set(err, "token id %d at %s %d is outside the vocabulary (0..%d)", id, what, at,
                   c->vocab_size - 1);
}

int model_forward(Model *m, KVCache *kv, const int *tokens, int T, const ForwardOpts *o, Err *err) {
    const ModelConfig *c = &m->cfg;
    if (T < 1) return err_set(err, "forward: no tokens");
    if (kv->len + T > kv->n_ctx)
        return err_set(err, "context full: %d tokens cached + %d new > context size %d", kv->len, T,
                       kv->n_ctx);
    for (int t = 0; t < T; t++)
        if (check_token(c, tokens[t], "position", t, err) != 0) return -1;
    const int D = c->hidden_size, V = c->vocab_size;
    for (int t0 = 0; t0 < T; t0 += m->max_chunk) {
        int n = T - t0 < m->max_chunk ? T - t0 : m->max_chunk;
        int last = t0 + n == T;
        float *lg = NULL;
        if (o->logits && o->all_logits) lg = o->logits + (size_t)t0 * V;
        else if (o->logits && last) lg = o->logits;
        float *hid = o->hidden ? o->hidden + (size_t)t0 * D : NULL;
        const int start[2] = {0, n};
        if (forward_rows(m, &kv, 1, start, tokens + t0, lg, o->all_logits, hid, o->mla_path,
                         err) != 0)
            return -1;
    }
    return 0;
}

int model_forward_batch(Model *m, KVCache *const *kvs, const int *tokens, int B, float *logits,
                        Err *err) {
    if (B < 1) return err_set(err, "forward: no sequences in the batch");
    for (int b = 0; b < B; b++) {
        if (kvs[b]->len + 1 > kvs[b]->n_ctx)
            return err_set(err, "sequence %d of the batch: context full: %d tokens cached + 1 new "
                                "> context size %d",
                           b, kvs[b]->len, kvs[b]->n_ctx);
        if (check_token(&m->cfg, tokens[b], "batch sequence", b, err) != 0) return -1;
    }
    return forward_rows(m, kvs, B, NULL, tokens, logits, 1, NULL, MLA_AUTO, err);
}

int model_forward_seqs(Model *m, KVCache *const *kvs, int N, const int *start, const int *tokens,
                       float *logits, Err *err) {
    if (N < 1) return err_set(err, "forward: no sequences");
    for (int i = 0; i < N; i++) {
        const int n = start[i + 1] - start[i];
        if (n < 1) return err_set(err, "forward: sequence %d has no tokens", i);
        if (kvs[i]->len + n > kvs[i]->n_ctx)
            return err_set(err, "sequence %d: context full: %d tokens cached + %d new > context "
                                "size %d",
                           i, kvs[i]->len, n, kvs[i]->n_ctx);
        for (int t = start[i]; t < start[i + 1]; t++)
            if (check_token(&m->cfg, tokens[t], "row", t, err) != 0) return -1;
    }
    return forward_rows(m, kvs, N, start, tokens, logits, 0, NULL, MLA_AUTO, err);
}

/* MTP module k (V3 §2.2, eq. 21-23):
 *   h'_i = M_k [RMSNorm_e(Emb(t_{i+k+1})); RMSNorm_h(h^{k}_i)]
 *   h^{k+1} = Block_k(h'), logits = Head_k(RMSNorm(h^{k+1}))
 * The paper writes [h; emb]; the released weights expect the embedding half
 * first, and h^0 is the main model's output after model.norm, as vLLM and
 * SGLang run the released MTP weights; whale follows them. */
int model_forward_mtp(Model *m, int k, KVCache *kv, int pos0, const float *h_prev,
                      const int *next_tokens, int T, float *logits, float *h_out, Err *err) {
    const ModelConfig *c = &m->cfg;
    const int D = c->hidden_size, layer = c->num_hidden_layers + k;
    if (k < 0 || k >= c->num_nextn_predict_layers)
        return err_set(err, "the model has no MTP module %d", k);
    if (kv->n_layers <= layer) return err_set(err, "KV cache was created without MTP layers");
    if (pos0 < 0 || T < 1 || pos0 + T > kv->n_ctx)
        return err_set(err, "MTP positions %d..%d outside the cache of %d", pos0, pos0 + T - 1,
                       kv->n_ctx);
    for (int t = 0; t < T; t++)
        if (next_tokens[t] < 0 || next_tokens[t] >= c->vocab_size)
            return err_set(err, "token id %d is outside the vocabulary", next_tokens[t]);
    const LayerWeights *L = &m->w.layers[layer];
    arena_reset(&m->arena);
    float *cat = arena_floats(&m->arena, (size_t)T * 2 * D);
    float *h = arena_floats(&m->arena, (size_t)T * D);
    if (!cat || !h) return oom(err);
    for (int t = 0; t < T; t++) {
        float *row = cat + (size_t)t * 2 * D;
        dequantize_row(m->w.embed.type, mat_row(&m->w.embed, next_tokens[t]), row, D);
        rmsnorm(row, row, L->enorm, 1, D, c->rms_norm_eps);
        rmsnorm(row + D, h_prev + (size_t)t * D, L->hnorm, 1, D, c->rms_norm_eps);
    }
    matmul(h, cat, &L->eh_proj, T);
    int *pos = arena_take(&m->arena, (size_t)T * sizeof(int));
    if (!pos) return oom(err);
    for (int t = 0; t < T; t++) pos[t] = pos0 + t;
    const int start[2] = {0, T};
    const SeqRows sr = {1, &kv, start, pos};
    if (model_block(m, layer, h, &sr, MLA_AUTO, err) != 0) return -1;
    if (h_out) memcpy(h_out, h, (size_t)T * D * sizeof(float));
    if (logits) {
        rmsnorm(h, h, L->head_norm, T, D, c->rms_norm_eps);
        matmul(logits, h, &L->head, T);
    }
    return 0;
}
