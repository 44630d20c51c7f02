/* SPDX-License-Identifier: MIT */
/* The parameter table and its flat buffer (see weights.h). Tensor names and
 * layouts are those of the Hugging Face checkpoints (DeepseekV3ForCausalLM,
 * DeepseekV2ForCausalLM, Qwen2ForCausalLM, LlamaForCausalLM). */
#include "model/weights.h"

#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/rng.h"
#include "io/safetensors.h"

/* The table is built by one walk over the architecture, run twice: the
 * first pass records names, shapes and offsets; the second, once the buffer
 * exists, hands out pointers that the walk stores into the layer structs.
 * Keeping one walk means names, shapes and wiring cannot drift apart. */
typedef struct Builder {
    Weights *w;
    int bind;      /* 0: recording pass, 1: binding pass */
    int n, cap;
    size_t off;
    int failed;
    WeightsTypeFn type_of; /* per-matrix storage type, or NULL: mat_type */
    void *type_ctx;
    int e_lo, e_hi; /* the routed experts held: [e_lo, e_hi) */
} Builder;

static float *add(Builder *b, int64_t rows, int64_t cols, ParamKind kind, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static float *add(Builder *b, int64_t rows, int64_t cols, ParamKind kind, const char *fmt, ...) {
    if (b->bind) {
        ParamSpec *s = &b->w->specs[b->n++];
        return (float *)(b->w->data + s->offset);
    }
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 256;
        ParamSpec *ns = realloc(b->w->specs, (size_t)cap * sizeof *ns);
        if (!ns) {
            b->failed = 1;
            return NULL;
        }
        b->w->specs = ns;
        b->cap = cap;
    }
    ParamSpec *s = &b->w->specs[b->n++];
    memset(s, 0, sizeof *s);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->name, sizeof s->name, fmt, ap);
    va_end(ap);
    s->n_dims = cols > 0 ? 2 : 1;
    s->shape[0] = rows;
    s->shape[1] = cols;
    s->kind = kind;
    s->numel = rows * (cols > 0 ? cols : 1);
    /* matrices take the storage type when their rows fill whole blocks;
     * the correction bias and norms stay F32 */
    QType t = kind == PARAM_ROUTER ? QTYPE_F32 : b->w->mat_type;
    if (cols > 0 && b->type_of) t = b->type_of(b->type_ctx, s->name, rows, cols, t);
    if (cols <= 0 || cols % qtype_block(t) != 0) t = QTYPE_F32;
    s->type = t;
    s->bytes = cols > 0 ? (size_t)rows * qtype_row_bytes(t, (int)cols) : (size_t)rows * 4;
    s->offset = b->off;
    /* keep every tensor 64-byte aligned inside the buffer for SIMD loads */
    b->off += (s->bytes + 63) & ~(size_t)63;
    return NULL;
}

/* The Mat of the spec just added (its storage type is known only now). */
static Mat last_mat(Builder *b, float *p, int64_t rows, int64_t cols) {
    Mat m = mat_of(p, b->w->specs[b->n - 1].type, (int)rows, (int)cols);
    return m;
}

#define ADDM(b, rows, cols, ...) \
    last_mat(b, add(b, rows, cols, PARAM_MATRIX, __VA_ARGS__), rows, cols)

static void walk_layer(Builder *b, const ModelConfig *c, int l, LayerWeights *L) {
    const int64_t D = c->hidden_size, H = c->num_attention_heads;
    char pre[64];
    snprintf(pre, sizeof pre, "model.layers.%d", l);
    L->attn_norm = add(b, D, 0, PARAM_NORM, "%s.input_layernorm.weight", pre);
    if (config_is_mla(c)) {
        const int64_t qk = c->qk_nope_head_dim + c->qk_rope_head_dim, R = c->kv_lora_rank;
        if (c->q_lora_rank > 0) {
            L->q_a_proj = ADDM(b, c->q_lora_rank, D, "%s.self_attn.q_a_proj.weight", pre);
            L->q_a_norm =
                add(b, c->q_lora_rank, 0, PARAM_NORM, "%s.self_attn.q_a_layernorm.weight", pre);
            L->q_b_proj = ADDM(b, H * qk, c->q_lora_rank, "%s.self_attn.q_b_proj.weight", pre);
        } else {
            L->q_proj = ADDM(b, H * qk, D, "%s.self_attn.q_proj.weight", pre);
        }
        L->kv_a_proj =
            ADDM(b, R + c->qk_rope_head_dim, D, "%s.self_attn.kv_a_proj_with_mqa.weight", pre);
        L->kv_a_norm = add(b, R, 0, PARAM_NORM, "%s.self_attn.kv_a_layernorm.weight", pre);
        L->kv_b_proj = ADDM(b, H * (c->qk_nope_head_dim + c->v_head_dim), R,
                            "%s.self_attn.kv_b_proj.weight", pre);
        L->o_proj = ADDM(b, D, H * c->v_head_dim, "%s.self_attn.o_proj.weight", pre);
    } else {
        const int64_t Dh = c->head_dim, KV = c->num_key_value_heads;
        L->wq = ADDM(b, H * Dh, D, "%s.self_attn.q_proj.weight", pre);
        L->wk = ADDM(b, KV * Dh, D, "%s.self_attn.k_proj.weight", pre);
        L->wv = ADDM(b, KV * Dh, D, "%s.self_attn.v_proj.weight", pre);
        if (c->attention_bias) {
            L->bq = add(b, H * Dh, 0, PARAM_BIAS, "%s.self_attn.q_proj.bias", pre);
            L->bk = add(b, KV * Dh, 0, PARAM_BIAS, "%s.self_attn.k_proj.bias", pre);
            L->bv = add(b, KV * Dh, 0, PARAM_BIAS, "%s.self_attn.v_proj.bias", pre);
        }
        L->o_proj = ADDM(b, D, H * Dh, "%s.self_attn.o_proj.weight", pre);
        /* HF LlamaAttention gives o_proj a bias with attention_bias; Qwen2 does not */
        if (c->attention_bias && c->arch == ARCH_LLAMA)
            L->bo = add(b, D, 0, PARAM_BIAS, "%s.self_attn.o_proj.bias", pre);
    }
    L->ffn_norm = add(b, D, 0, PARAM_NORM, "%s.post_attention_layernorm.weight", pre);
    L->is_moe = config_layer_is_moe(c, l);
    int64_t shared = 0;
    if (L->is_moe) {
        const int64_t E = c->n_routed_experts, Im = c->moe_intermediate_size;
        L->router = last_mat(b, add(b, E, D, PARAM_ROUTER, "%s.mlp.gate.weight", pre), E, D);
        if (c->topk_method == TOPK_NOAUX_TC)
            L->router_bias =
                add(b, E, 0, PARAM_ROUTER_BIAS, "%s.mlp.gate.e_score_correction_bias", pre);
        for (int e = b->e_lo; e < b->e_hi; e++) { /* a shard's experts only */
            Mat g = ADDM(b, Im, D, "%s.mlp.experts.%d.gate_proj.weight", pre, e);
            Mat u = ADDM(b, Im, D, "%s.mlp.experts.%d.up_proj.weight", pre, e);
            Mat d = ADDM(b, D, Im, "%s.mlp.experts.%d.down_proj.weight", pre, e);
            if (b->bind) L->exp_gate[e] = g, L->exp_up[e] = u, L->exp_down[e] = d;
        }
        shared = Im * c->n_shared_experts;
        if (shared > 0) {
            L->gate = ADDM(b, shared, D, "%s.mlp.shared_experts.gate_proj.weight", pre);
            L->up = ADDM(b, shared, D, "%s.mlp.shared_experts.up_proj.weight", pre);
            L->down = ADDM(b, D, shared, "%s.mlp.shared_experts.down_proj.weight", pre);
        }
    } else {
        const int64_t I = c->intermediate_size;
        L->gate = ADDM(b, I, D, "%s.mlp.gate_proj.weight", pre);
        L->up = ADDM(b, I, D, "%s.mlp.up_proj.weight", pre);
        L->down = ADDM(b, D, I, "%s.mlp.down_proj.weight", pre);
    }
}

/* MTP module k (V3 §2.2) at layer index num_hidden_layers + k: its own
 * norms, projection, block and output head; the embedding is the main
 * model's (the release stores an identical copy, which is ignored). */
static void walk_mtp(Builder *b, const ModelConfig *c, int l, LayerWeights *L) {
    const int64_t D = c->hidden_size;
    L->enorm = add(b, D, 0, PARAM_NORM, "model.layers.%d.enorm.weight", l);
    L->hnorm = add(b, D, 0, PARAM_NORM, "model.layers.%d.hnorm.weight", l);
    L->eh_proj = ADDM(b, D, 2 * D, "model.layers.%d.eh_proj.weight", l);
    walk_layer(b, c, l, L);
    L->head_norm = add(b, D, 0, PARAM_NORM, "model.layers.%d.shared_head.norm.weight", l);
    float *head = add(b, c->vocab_size, D, PARAM_EMBED, "model.layers.%d.shared_head.head.weight", l);
    L->head = last_mat(b, head, c->vocab_size, D);
}

static void walk(Builder *b, const ModelConfig *c) {
    Weights *w = b->w;
    const int64_t D = c->hidden_size, V = c->vocab_size;
    float *embed = add(b, V, D, PARAM_EMBED, "model.embed_tokens.weight");
    w->embed = last_mat(b, embed, V, D);
    for (int l = 0; l < c->num_hidden_layers; l++) walk_layer(b, c, l, &w->layers[l]);
    w->final_norm = add(b, D, 0, PARAM_NORM, "model.norm.weight");
    if (c->tie_word_embeddings) {
        w->lm_head = w->embed;
    } else {
        float *head = add(b, V, D, PARAM_EMBED, "lm_head.weight");
        w->lm_head = last_mat(b, head, V, D);
    }
    for (int k = 0; k < c->num_nextn_predict_layers; k++) {
        int l = c->num_hidden_layers + k;
        walk_mtp(b, c, l, &w->layers[l]);
    }
}

int weights_alloc(Weights *w, const ModelConfig *c, QType mat_type, Err *err) {
    return weights_alloc_typed(w, c, mat_type, NULL, NULL, err);
}

/* The table of every tensor but the routed experts outside [e_lo, e_hi). */
static int alloc(Weights *w, const ModelConfig *c, QType mat_type, WeightsTypeFn type_of, void *ctx,
                 int e_lo, int e_hi, Err *err) {
    memset(w, 0, sizeof *w);
    w->mat_type = mat_type;
    int n_layers = c->num_hidden_layers + c->num_nextn_predict_layers;
    w->layers = calloc((size_t)n_layers, sizeof *w->layers);
    if (!w->layers) goto oom;
    Builder b = {.w = w, .type_of = type_of, .type_ctx = ctx, .e_lo = e_lo, .e_hi = e_hi};
    walk(&b, c);
    if (b.failed) goto oom;
    w->n_specs = b.n;
    w->n_bytes = b.off;
    w->data = mem_alloc(w->n_bytes);
    if (!w->data) {
        err_set(err, "cannot allocate %.2f GB for the model's %s weights",
                (double)w->n_bytes / 1e9, qtype_name(mat_type));
        weights_free(w);
        return -1;
    }
    /* per-expert Mats for every MoE layer, in one block */
    size_t n_exp = 0;
    for (int l = 0; l < n_layers; l++)
        if (config_layer_is_moe(c, l)) n_exp += 3 * (size_t)c->n_routed_experts;
    if (n_exp) {
        w->expert_mats = calloc(n_exp, sizeof(Mat));
        if (!w->expert_mats) goto oom;
        Mat *m = w->expert_mats;
        for (int l = 0; l < n_layers; l++) {
            if (!config_layer_is_moe(c, l)) continue;
            LayerWeights *L = &w->layers[l];
            L->exp_gate = m, m += c->n_routed_experts;
            L->exp_up = m, m += c->n_routed_experts;
            L->exp_down = m, m += c->n_routed_experts;
        }
    }
    Builder bind = {.w = w, .bind = 1, .e_lo = e_lo, .e_hi = e_hi};
    walk(&bind, c);
    return 0;
oom:
    weights_free(w);
    return err_set(err, "out of memory building the weight table");
}

int weights_alloc_typed(Weights *w, const ModelConfig *c, QType mat_type, WeightsTypeFn type_of,
                        void *ctx, Err *err) {
    return alloc(w, c, mat_type, type_of, ctx, 0, c->n_routed_experts, err);
}

int weights_alloc_shard(Weights *w, const ModelConfig *c, QType mat_type, int shard, int n_shards,
                        Err *err) {
    const int E = c->n_routed_experts;
    if (n_shards <= 1) return alloc(w, c, mat_type, NULL, NULL, 0, E, err);
    if (E % n_shards != 0 || shard < 0 || shard >= n_shards)
        return err_set(err, "cannot share %d routed experts out as shard %d of %d", E, shard, n_shards);
    const int per = E / n_shards;
    if (alloc(w, c, mat_type, NULL, NULL, shard * per, (shard + 1) * per, err) != 0) return -1;
    w->shard = shard, w->n_shards = n_shards;
    return 0;
}

void weights_free(Weights *w) {
    mem_free(w->data);
    free(w->specs);
    free(w->layers);
    free(w->expert_mats);
    mem_free(w->derived);
    memset(w, 0, sizeof *w);
}

/* The run of data that the tensors named pre* fill: *off, *n (0 if none). */
static void span_of(const Weights *w, const char *pre, size_t *off, size_t *n) {
    const size_t np = strlen(pre);
    size_t lo = SIZE_MAX, hi = 0;
    for (int i = 0; i < w->n_specs; i++) {
        const ParamSpec *s = &w->specs[i];
        if (strncmp(s->name, pre, np) != 0) continue;
        if (s->offset < lo) lo = s->offset;
        const size_t end = s->offset + ((s->bytes + 63) & ~(size_t)63);
        if (end > hi) hi = end;
    }
    *off = lo == SIZE_MAX ? 0 : lo;
    *n = lo == SIZE_MAX ? 0 : (hi < w->n_bytes ? hi : w->n_bytes) - lo;
}

void weights_layer_span(const Weights *w, int layer, size_t *off, size_t *n) {
    char pre[32];
    snprintf(pre, sizeof pre, "model.layers.%d.", layer);
    span_of(w, pre, off, n);
}

int weights_is_routed_expert(const ParamSpec *s) { return strstr(s->name, ".mlp.experts.") != NULL; }

void weights_expert_span(const Weights *w, int layer, size_t *off, size_t *n) {
    char pre[48];
    snprintf(pre, sizeof pre, "model.layers.%d.mlp.experts.", layer);
    span_of(w, pre, off, n);
}

const ParamSpec *weights_find(const Weights *w, const char *name) {
    for (int i = 0; i < w->n_specs; i++)
        if (!strcmp(w->specs[i].name, name)) return &w->specs[i];
    return NULL;
}

static void shape_str(char *buf, size_t n, int n_dims, const int64_t *shape) {
    int k = snprintf(buf, n, "[");
    for (int i = 0; i < n_dims && k > 0 && (size_t)k < n; i++)
        k += snprintf(buf + k, n - (size_t)k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k > 0 && (size_t)k < n) snprintf(buf + k, n - (size_t)k, "]");
}

float *weights_f32(const Weights *w, const ParamSpec *s) {
    assert(s->type == QTYPE_F32);
    return (float *)(w->data + s->offset);
}

/* Store n floats (rows x cols, or a vector) into the spec's storage type,
 * the rows shared out over the threads (the k-quants' fits are slow: the
 * 1.5B shape's matrices to Q4_K took minutes on one). */
static void store_converted(const Weights *w, const ParamSpec *s, const float *src) {
    unsigned char *dst = w->data + s->offset;
    if (s->type == QTYPE_F32) {
        if ((const unsigned char *)src != dst) memcpy(dst, src, (size_t)s->numel * sizeof(float));
        return;
    }
    quantize_rows(s->type, src, dst, s->shape[0], (int)s->shape[1]);
}

int weights_load(Weights *w, const char *path, Err *err) {
    SafeTensors st;
    if (st_open(&st, path, err) != 0) return -1;
    int rc = -1;
    /* tensors stored in another type go through one float32 staging buffer */
    int64_t stage_n = 0;
    for (int i = 0; i < w->n_specs; i++)
        if (w->specs[i].type != QTYPE_F32 && w->specs[i].numel > stage_n)
            stage_n = w->specs[i].numel;
    float *stage = stage_n ? malloc((size_t)stage_n * sizeof(float)) : NULL;
    if (stage_n && !stage) {
        err_set(err, "%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < w->n_specs; i++) {
        const ParamSpec *s = &w->specs[i];
        const StTensor *t = st_find(&st, s->name);
        if (!t) {
            err_set(err, "%s: tensor '%s' is missing (the config asks for it)", path, s->name);
            goto done;
        }
        const char *file = st_file_name(&st, t);
        int same = t->n_dims == s->n_dims;
        for (int d = 0; same && d < s->n_dims; d++) same = t->shape[d] == s->shape[d];
        if (!same) {
            char have[64], want[64];
            shape_str(have, sizeof have, t->n_dims, t->shape);
            shape_str(want, sizeof want, s->n_dims, s->shape);
            err_set(err, "%s: tensor '%s' has shape %s but config.json implies %s", file, s->name,
                    have, want);
            goto done;
        }
        if (t->dtype != DTYPE_F32 && t->dtype != DTYPE_F16 && t->dtype != DTYPE_BF16 &&
            t->dtype != DTYPE_F8_E4M3) {
            err_set(err, "%s: tensor '%s' has dtype %s; whale reads F32, F16, BF16, F8_E4M3", file,
                    s->name, dtype_name(t->dtype));
            goto done;
        }
        float *dst = s->type == QTYPE_F32 ? weights_f32(w, s) : stage;
        if (st_to_f32(&st, t, dst, err) != 0) goto done;
        store_converted(w, s, dst);
    }
    rc = 0;
done:
    free(stage);
    st_close(&st);
    return rc;
}

void weights_init_random(Weights *w, uint64_t seed, float std) {
    Rng r;
    rng_seed(&r, seed);
    /* one row at a time, so a quantised model draws the same numbers as the
     * float32 model of the same seed */
    int64_t max_cols = 1;
    for (int i = 0; i < w->n_specs; i++)
        if (w->specs[i].shape[1] > max_cols) max_cols = w->specs[i].shape[1];
    float *row = malloc((size_t)max_cols * sizeof(float));
    assert(row);
    for (int i = 0; i < w->n_specs; i++) {
        const ParamSpec *s = &w->specs[i];
        const int64_t rows = s->shape[0], cols = s->n_dims == 2 ? s->shape[1] : 1;
        const size_t rb = s->n_dims == 2 ? qtype_row_bytes(s->type, (int)cols) : 0;
        for (int64_t q = 0; q < rows; q++) {
            float *dst = s->type == QTYPE_F32 ? weights_f32(w, s) + q * cols : row;
            for (int64_t k = 0; k < cols; k++) {
                switch (s->kind) {
                case PARAM_MATRIX:
                case PARAM_ROUTER:
                case PARAM_EMBED: dst[k] = std * rng_normal(&r); break;
                case PARAM_NORM: dst[k] = 1.0f; break;
                case PARAM_BIAS:
                case PARAM_ROUTER_BIAS: dst[k] = 0.0f; break;
                }
            }
            if (s->type != QTYPE_F32)
                quantize_row(s->type, row, w->data + s->offset + (size_t)q * rb, (int)cols);
        }
    }
    free(row);
}

int weights_save(const Weights *w, const char *path, DType type, Err *err) {
    return weights_save_some(w, path, type, NULL, err);
}

int weights_save_some(const Weights *w, const char *path, DType type,
                      int (*keep)(const ParamSpec *s), Err *err) {
    if (type != DTYPE_F32 && type != DTYPE_BF16)
        return err_set(err, "%s: can save F32 or BF16, not %s", path, dtype_name(type));
    /* F32 storage saves as F32 or BF16; BF16 storage saves as BF16 */
    size_t half_n = 0;
    for (int i = 0; i < w->n_specs; i++) {
        const ParamSpec *s = &w->specs[i];
        if (keep && !keep(s)) continue;
        int ok = s->type == QTYPE_F32 || (s->type == QTYPE_BF16 && type == DTYPE_BF16);
        if (!ok)
            return err_set(err, "%s: tensor '%s' is stored as %s and cannot be saved as %s", path,
                           s->name, qtype_name(s->type), dtype_name(type));
        if (type == DTYPE_BF16 && s->type == QTYPE_F32 && s->kind != PARAM_ROUTER_BIAS)
            half_n += (size_t)s->numel;
    }
    if (w->n_specs <= 0) return err_set(err, "%s: no tensors to save", path);
    StWriteTensor *t = calloc((size_t)w->n_specs, sizeof *t);
    uint16_t *half = half_n ? malloc(half_n * sizeof *half) : NULL;
    if (!t || (half_n && !half)) {
        free(t);
        free(half);
        return err_set(err, "%s: out of memory", path);
    }
    size_t used = 0;
    int n = 0;
    for (int i = 0; i < w->n_specs; i++) {
        const ParamSpec *s = &w->specs[i];
        if (keep && !keep(s)) continue;
        t[n].name = s->name;
        t[n].n_dims = s->n_dims;
        t[n].shape[0] = s->shape[0];
        t[n].shape[1] = s->shape[1];
        if (s->type == QTYPE_BF16) {
            t[n].dtype = DTYPE_BF16;
            t[n].data = w->data + s->offset;
        } else if (type == DTYPE_BF16 && s->kind != PARAM_ROUTER_BIAS) {
            const float *p = weights_f32(w, s);
            uint16_t *h = half + used;
            for (int64_t k = 0; k < s->numel; k++) h[k] = f32_to_bf16(p[k]);
            used += (size_t)s->numel;
            t[n].dtype = DTYPE_BF16;
            t[n].data = h;
        } else {
            /* e_score_correction_bias stays F32 as in the official release:
             * it is added to scores near 1 where BF16 would lose the
             * balancing. */
            t[n].dtype = DTYPE_F32;
            t[n].data = weights_f32(w, s);
        }
        n++;
    }
    int rc = st_write(path, t, n, err);
    free(half);
    free(t);
    return rc;
}
