/* SPDX-License-Identifier: MIT */
/* GGUF <-> the weight table (see gguf_load.h). Loading walks the table's
 * Hugging Face names, finds each one's GGUF tensor(s) with
 * gguf_name_from_hf, checks type and shape, and undoes the converter's
 * transform row by row; saving walks the same table forwards. Rows move as
 * whole blocks wherever the transform allows it, so quantised data is
 * copied, never requantised, when the storage type is the file's. */
#include "model/gguf_load.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/threads.h"
#include "kernels/quant.h"

int gguf_qtype_of(GgmlType t, QType *out) {
    switch (t) {
    case GGML_TYPE_F32: *out = QTYPE_F32; return 0;
    case GGML_TYPE_F16: *out = QTYPE_F16; return 0;
    case GGML_TYPE_BF16: *out = QTYPE_BF16; return 0;
    case GGML_TYPE_Q8_0: *out = QTYPE_Q8_0; return 0;
    case GGML_TYPE_Q4_0: *out = QTYPE_Q4_0; return 0;
    case GGML_TYPE_Q4_K: *out = QTYPE_Q4_K; return 0;
    case GGML_TYPE_Q6_K: *out = QTYPE_Q6_K; return 0;
    default: return -1;
    }
}

GgmlType gguf_ggml_of(QType q) {
    switch (q) {
    case QTYPE_F16: return GGML_TYPE_F16;
    case QTYPE_BF16: return GGML_TYPE_BF16;
    case QTYPE_Q8_0: return GGML_TYPE_Q8_0;
    case QTYPE_Q4_0: return GGML_TYPE_Q4_0;
    case QTYPE_Q4_K: return GGML_TYPE_Q4_K;
    case QTYPE_Q6_K: return GGML_TYPE_Q6_K;
    default: return GGML_TYPE_F32;
    }
}

uint32_t gguf_file_type_of(QType q) {
    switch (q) {
    case QTYPE_F16: return 1;
    case QTYPE_BF16: return 32;
    case QTYPE_Q8_0: return 7;
    case QTYPE_Q4_0: return 2;
    case QTYPE_Q4_K: return 15;
    case QTYPE_Q6_K: return 18;
    default: return 0;
    }
}

int gguf_model_config(const GgufFile *g, ModelConfig *cfg, Err *err) {
    if (gguf_config_from_gguf(g, cfg, err) != 0) return -1;
    if (cfg->num_nextn_predict_layers > 0) {
        char hf[96];
        GgufNameRef r[2];
        Err e;
        snprintf(hf, sizeof hf, "model.layers.%d.eh_proj.weight", cfg->num_hidden_layers);
        if (gguf_name_from_hf(cfg, hf, r, &e) == 1 && !gguf_find_tensor(g, r[0].name))
            cfg->num_nextn_predict_layers = 0;
    }
    return 0;
}

/* ---- loading ------------------------------------------------------------------------- */

typedef struct Loader {
    const GgufFile *g;
    const ModelConfig *cfg;
} Loader;

/* Where one HF tensor lives in the file: one ref, or two for a split kv_b
 * (attn_k_b, attn_v_b); a legacy unsplit attn_kv_b is one plain ref.
 * t[k] is NULL when the file lacks the tensor. */
typedef struct Src {
    int nr;
    GgufNameRef r[2];
    const GgufTensor *t[2];
} Src;

static int find_src(const Loader *L, const char *hf, Src *s, Err *err) {
    Err e;
    memset(s, 0, sizeof *s);
    s->nr = gguf_name_from_hf(L->cfg, hf, s->r, &e);
    if (s->nr <= 0)
        return err_set(err, "%s: %s", L->g->path,
                       s->nr < 0 ? e.msg : "a weight-table tensor has no GGUF name");
    for (int k = 0; k < s->nr; k++) s->t[k] = gguf_find_tensor(L->g, s->r[k].name);
    if (s->nr == 2 && (!s->t[0] || !s->t[1])) {
        /* files converted before llama.cpp split kv_b hold attn_kv_b */
        char legacy[GGUF_NAME_MAX];
        const char *p = strstr(s->r[0].name, "attn_k_b");
        snprintf(legacy, sizeof legacy, "%.*sattn_kv_b%s", p ? (int)(p - s->r[0].name) : 0,
                 s->r[0].name, p ? p + 8 : "");
        const GgufTensor *t = gguf_find_tensor(L->g, legacy);
        if (t) {
            s->nr = 1;
            snprintf(s->r[0].name, sizeof s->r[0].name, "%s", legacy);
            s->r[0].xform = GGUF_XFORM_NONE;
            s->t[0] = t;
            s->t[1] = NULL;
        }
    }
    return 0;
}

/* keep: the storage type of a matrix is its file tensor's (see the header
 * for kv_b). Problems (a missing tensor, an unreadable type) keep the
 * default; the fill pass reports them. */
static QType keep_type(void *ctx, const char *name, int64_t rows, int64_t cols, QType dflt) {
    (void)rows, (void)cols;
    Src s;
    Err e;
    QType qk, qv;
    if (find_src(ctx, name, &s, &e) != 0 || !s.t[0] || gguf_qtype_of(s.t[0]->type, &qk) != 0)
        return dflt;
    if (s.nr == 1) return qk;
    if (!s.t[1] || gguf_qtype_of(s.t[1]->type, &qv) != 0) return dflt;
    /* k_b's blocks run along nope, kv_b's rows along R: a block-quantised
     * k_b can only be transposed through floats, and F32 keeps it exact */
    return qtype_block(qk) > 1 ? QTYPE_F32 : qv;
}

static void ne_str(char *buf, size_t n, const int64_t *ne) {
    int nd = GGUF_MAX_DIMS;
    while (nd > 1 && ne[nd - 1] == 1) nd--;
    int k = snprintf(buf, n, "{");
    for (int d = 0; d < nd && k > 0 && (size_t)k < n; d++)
        k += snprintf(buf + k, n - (size_t)k, "%s%lld", d ? ", " : "", (long long)ne[d]);
    if (k > 0 && (size_t)k < n) snprintf(buf + k, n - (size_t)k, "}");
}

/* Type and shape of file tensor k of src against what cfg implies for s. */
static int check_src(const Loader *L, const ParamSpec *s, const Src *src, int k, QType *type,
                     Err *err) {
    const GgufTensor *t = src->t[k];
    if (!t)
        return err_set(err, "%s: tensor '%s' is missing (it holds %s, which the metadata asks for)",
                       L->g->path, src->r[k].name, s->name);
    if (gguf_check_tensor_type(L->g, t, err) != 0) return -1;
    if (gguf_qtype_of(t->type, type) != 0)
        return err_set(err, "%s: tensor '%s' has type %s, which whale does not read", L->g->path,
                       t->name, gguf_type_name(t->type));
    int nd;
    int64_t ne[GGUF_MAX_DIMS];
    Err e;
    if (gguf_shape_from_hf(L->cfg, &src->r[k], s->n_dims, s->shape, &nd, ne, &e) != 0)
        return err_set(err, "%s: %s", L->g->path, e.msg);
    /* compare all four dims: a trailing 1 may or may not be counted in n_dims */
    if (memcmp(ne, t->ne, sizeof ne) != 0) {
        char have[96], want[96];
        ne_str(have, sizeof have, t->ne);
        ne_str(want, sizeof want, ne);
        return err_set(err, "%s: tensor '%s' (%s) has shape %s but the metadata implies %s",
                       L->g->path, t->name, s->name, have, want);
    }
    return 0;
}

/* Rows of one type into another through float32, a run of rows at a
 * time on threads_chunks' threads; failed: a run found no scratch row. */
typedef struct Recode {
    void *dst;
    const void *src;
    QType dt, ft;
    int cols;
    atomic_int failed;
} Recode;

static void recode_some(void *ctx, long lo, long hi) {
    Recode *q = ctx;
    const size_t rbd = qtype_row_bytes(q->dt, q->cols), rbf = qtype_row_bytes(q->ft, q->cols);
    float *row = malloc((size_t)q->cols * sizeof(float));
    if (!row) {
        atomic_store(&q->failed, 1);
        return;
    }
    for (long r = lo; r < hi; r++) {
        dequantize_row(q->ft, (const char *)q->src + (size_t)r * rbf, row, q->cols);
        quantize_row(q->dt, row, (char *)q->dst + (size_t)r * rbd, q->cols);
    }
    free(row);
}

/* rows x cols elements at src (type ft, rows contiguous) into dst (type
 * dt): copied when the types agree, else through float32 row by row. */
static int convert_rows(void *dst, QType dt, const void *src, QType ft, int64_t rows, int64_t cols,
                        Err *err) {
    if (dt == ft) {
        memcpy(dst, src, (size_t)rows * qtype_row_bytes(ft, (int)cols));
        return 0;
    }
    Recode q = {dst, src, dt, ft, (int)cols, 0};
    threads_chunks(rows, 16, recode_some, &q);
    if (atomic_load(&q.failed))
        return err_set(err, "out of memory converting a row of %lld", (long long)cols);
    return 0;
}

/* kv_b_proj (H*(nope+v), R) from attn_k_b {nope, R, H} and attn_v_b
 * {R, v, H}: per head the nope rows are k_b's columns, the v rows v_b's
 * rows. */
static int fill_kv_b(const Loader *L, Weights *w, const ParamSpec *s, const Src *src, QType fk,
                     QType fv, Err *err) {
    const ModelConfig *c = L->cfg;
    const int64_t H = c->num_attention_heads, nope = c->qk_nope_head_dim, v = c->v_head_dim,
                  R = c->kv_lora_rank;
    const size_t rbd = qtype_row_bytes(s->type, (int)R), rbv = qtype_row_bytes(fv, (int)R);
    unsigned char *dst = w->data + s->offset;
    float *kf = malloc((size_t)(H * R * nope) * sizeof(float)); /* (H, R, nope) */
    float *row = malloc((size_t)R * sizeof(float));
    int rc = -1;
    if (!kf || !row) {
        err_set(err, "%s: out of memory for %s", L->g->path, s->name);
        goto done;
    }
    if (convert_rows(kf, QTYPE_F32, src->t[0]->data, fk, H * R, nope, err) != 0) goto done;
    for (int64_t h = 0; h < H; h++) {
        unsigned char *head = dst + (size_t)(h * (nope + v)) * rbd;
        for (int64_t i = 0; i < nope; i++) {
            for (int64_t r = 0; r < R; r++) row[r] = kf[(h * R + r) * nope + i];
            quantize_row(s->type, row, head + (size_t)i * rbd, (int)R);
        }
        const unsigned char *vs = (const unsigned char *)src->t[1]->data + (size_t)(h * v) * rbv;
        if (convert_rows(head + (size_t)nope * rbd, s->type, vs, fv, v, R, err) != 0) goto done;
    }
    rc = 0;
done:
    free(kf);
    free(row);
    return rc;
}

static int fill_spec(const Loader *L, Weights *w, const ParamSpec *s, Err *err) {
    Src src;
    QType ft[2];
    if (find_src(L, s->name, &src, err) != 0) return -1;
    for (int k = 0; k < src.nr; k++)
        if (check_src(L, s, &src, k, &ft[k], err) != 0) return -1;
    if (src.nr == 2) return fill_kv_b(L, w, s, &src, ft[0], ft[1], err);
    const GgufTensor *t = src.t[0];
    const int64_t rows = s->n_dims == 2 ? s->shape[0] : 1;
    const int64_t cols = s->n_dims == 2 ? s->shape[1] : s->numel;
    unsigned char *dst = w->data + s->offset;
    switch (src.r[0].xform) {
    case GGUF_XFORM_NONE: return convert_rows(dst, s->type, t->data, ft[0], rows, cols, err);
    case GGUF_XFORM_EXPERT: {
        size_t nb;
        const void *p = gguf_expert_slice(t, src.r[0].expert, &nb);
        if (!p || nb != (size_t)rows * qtype_row_bytes(ft[0], (int)cols))
            return err_set(err, "%s: tensor '%s' has no expert %d", L->g->path, t->name,
                           src.r[0].expert);
        return convert_rows(dst, s->type, p, ft[0], rows, cols, err);
    }
    case GGUF_XFORM_LLAMA_PERMUTE: {
        /* matrices: whole rows move (any type); a bias (rows of one element)
         * is made F32 first so that its elements can move */
        const int one_d = s->n_dims == 1;
        const int64_t n_rows = one_d ? s->numel : rows;
        const QType mt = one_d ? QTYPE_F32 : ft[0];
        const size_t rb = one_d ? sizeof(float) : qtype_row_bytes(ft[0], (int)cols);
        void *tmp = malloc((size_t)n_rows * rb), *tmp2 = NULL;
        int rc = -1;
        if (!tmp) {
            err_set(err, "%s: out of memory for %s", L->g->path, s->name);
            goto perm_done;
        }
        const void *from = t->data;
        if (one_d) {
            if (!(tmp2 = malloc((size_t)n_rows * rb))) {
                err_set(err, "%s: out of memory for %s", L->g->path, s->name);
                goto perm_done;
            }
            if (convert_rows(tmp2, QTYPE_F32, t->data, ft[0], 1, n_rows, err) != 0) goto perm_done;
            from = tmp2;
        }
        Err e;
        if (gguf_llama_unpermute_rows(tmp, from, n_rows, rb, src.r[0].n_head, &e) != 0) {
            err_set(err, "%s: tensor '%s': %s", L->g->path, t->name, e.msg);
            goto perm_done;
        }
        rc = convert_rows(dst, s->type, tmp, mt, rows, cols, err);
    perm_done:
        free(tmp);
        free(tmp2);
        return rc;
    }
    default: break;
    }
    return err_set(err, "%s: tensor '%s': unexpected transform", L->g->path, t->name);
}

int gguf_weights_load(Weights *w, const ModelConfig *cfg, const GgufFile *g, int keep,
                      QType mat_type, Err *err) {
    Loader L = {g, cfg};
    if (weights_alloc_typed(w, cfg, keep ? QTYPE_F32 : mat_type, keep ? keep_type : NULL, &L,
                            err) != 0)
        return -1;
    for (int i = 0; i < w->n_specs; i++)
        if (fill_spec(&L, w, &w->specs[i], err) != 0) {
            weights_free(w);
            return -1;
        }
    if (keep) { /* the table's type: the one holding most matrix weights */
        int64_t n[QTYPE_COUNT] = {0};
        for (int i = 0; i < w->n_specs; i++)
            if (w->specs[i].n_dims == 2) n[w->specs[i].type] += w->specs[i].numel;
        for (int t = 0; t < QTYPE_COUNT; t++)
            if (n[t] > n[w->mat_type]) w->mat_type = (QType)t;
    }
    return 0;
}

/* ---- saving -------------------------------------------------------------------------- */

void gguf_tensors_free(GgufTensorSet *set) {
    for (int i = 0; i < set->n_bufs; i++) free(set->bufs[i]);
    free(set->bufs);
    free(set->t);
    free(set->names);
    memset(set, 0, sizeof *set);
}

static void *set_buf(GgufTensorSet *set, size_t n, Err *err) {
    void **nb = realloc(set->bufs, (size_t)(set->n_bufs + 1) * sizeof *nb);
    if (!nb) return err_set(err, "out of memory"), NULL;
    set->bufs = nb;
    void *p = malloc(n ? n : 1);
    if (!p) return err_set(err, "out of memory for a tensor of %zu bytes", n), NULL;
    set->bufs[set->n_bufs++] = p;
    return p;
}

/* Append a tensor (name copied; t[i].name is fixed up at the end because
 * names moves as it grows). Returns its index or -1. */
static int set_add(GgufTensorSet *set, const char *name, GgmlType type, int n_dims,
                   const int64_t *ne, const void *data, Err *err) {
    if (set->n == set->cap) {
        int cap = set->cap ? 2 * set->cap : 256;
        GgufWriteTensor *nt = realloc(set->t, (size_t)cap * sizeof *nt);
        if (nt) set->t = nt;
        char(*nn)[GGUF_NAME_MAX] = realloc(set->names, (size_t)cap * sizeof *nn);
        if (nn) set->names = nn;
        if (!nt || !nn) return err_set(err, "out of memory");
        set->cap = cap;
    }
    int i = set->n++;
    snprintf(set->names[i], GGUF_NAME_MAX, "%s", name);
    GgufWriteTensor *t = &set->t[i];
    memset(t, 0, sizeof *t);
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->data = data;
    return i;
}

/* Q4_K_M's layers with more bits (llama.cpp's quantiser): the first and
 * last eighth of the n, and every third between. */
static int more_bits(int layer, int n) {
    return layer < n / 8 || layer >= 7 * n / 8 || (layer - n / 8) % 3 == 2;
}

/* The type a tensor of n_dims dims with rows of ne0 gets in a file of type
 * q (see gguf_tensors_from_weights); n_layers counts the MTP layers too. */
static QType pick_type(QType q, const char *name, int n_dims, int64_t ne0, int n_layers) {
    if (n_dims == 1 || strstr(name, "ffn_gate_inp")) return QTYPE_F32;
    QType t = q;
    int layer;
    if (q == QTYPE_Q4_K &&
        (!strcmp(name, "output.weight") || strstr(name, "nextn.shared_head_head") ||
         ((strstr(name, ".attn_v.weight") || strstr(name, ".ffn_down")) &&
          sscanf(name, "blk.%d.", &layer) == 1 && more_bits(layer, n_layers))))
        t = QTYPE_Q6_K;
    if (ne0 % qtype_block(t))
        t = t == QTYPE_Q6_K ? QTYPE_Q8_0 : t == QTYPE_Q4_K ? QTYPE_Q4_0 : t;
    if (ne0 % qtype_block(t)) t = QTYPE_F32;
    return t;
}

/* Add GGUF tensor `name` (shape nd/ne) holding n_rows rows of ne0 floats
 * at src, quantised by the file-type rule. borrow: an F32 result may point
 * at src (the weights, which outlive the set) instead of a copy. For
 * stacked experts (n_slices > 1) the tensor is created at the first slice
 * and filled slice by slice. */
static int add_rows(GgufTensorSet *set, const char *name, int nd, const int64_t *ne, QType q,
                    int n_layers, const float *src, int64_t n_rows, int slice, int n_slices,
                    int borrow, Err *err) {
    const int64_t ne0 = ne[0];
    QType t = pick_type(q, name, nd, ne0, n_layers);
    const size_t slice_bytes = (size_t)n_rows * qtype_row_bytes(t, (int)ne0);
    int idx = -1;
    /* a stacked tensor is one of the last few added: experts come in order */
    for (int i = set->n - 1; i >= 0 && i >= set->n - 4 && slice > 0; i--)
        if (!strcmp(set->names[i], name)) idx = i;
    if (idx < 0) {
        if (borrow && t == QTYPE_F32 && n_slices == 1)
            return set_add(set, name, GGML_TYPE_F32, nd, ne, src, err) < 0 ? -1 : 0;
        void *buf = set_buf(set, slice_bytes * (size_t)n_slices, err);
        if (!buf) return -1;
        if ((idx = set_add(set, name, gguf_ggml_of(t), nd, ne, buf, err)) < 0) return -1;
    }
    quantize_rows(t, src, (char *)set->t[idx].data + (size_t)slice * slice_bytes, n_rows, (int)ne0);
    return 0;
}

int gguf_tensors_from_weights(GgufTensorSet *set, const Weights *w, const ModelConfig *cfg,
                              QType q, Err *err) {
    memset(set, 0, sizeof *set);
    float *tmp = NULL, *tmp2 = NULL;
    const int L = cfg->num_hidden_layers + cfg->num_nextn_predict_layers;
    if (cfg->rope.type == ROPE_LLAMA3) {
        int64_t ne[1] = {cfg->head_dim / 2};
        float *f = set_buf(set, (size_t)ne[0] * sizeof(float), err);
        if (!f) goto fail;
        gguf_llama3_rope_freqs(cfg, f);
        if (set_add(set, "rope_freqs.weight", GGML_TYPE_F32, 1, ne, f, err) < 0) goto fail;
    }
    for (int i = 0; i < w->n_specs; i++) {
        const ParamSpec *s = &w->specs[i];
        if (s->type != QTYPE_F32) {
            err_set(err, "tensor '%s' is stored as %s; converting needs F32 weights", s->name,
                    qtype_name(s->type));
            goto fail;
        }
        const float *src = weights_f32(w, s);
        GgufNameRef r[2];
        int nr = gguf_name_from_hf(cfg, s->name, r, err);
        if (nr < 0) goto fail;
        if (nr == 0) continue;
        int nd[2];
        int64_t ne[2][GGUF_MAX_DIMS];
        for (int k = 0; k < nr; k++)
            if (gguf_shape_from_hf(cfg, &r[k], s->n_dims, s->shape, &nd[k], ne[k], err) != 0)
                goto fail;
        const int64_t rows = s->n_dims == 2 ? s->shape[0] : s->numel;
        const int64_t cols = s->n_dims == 2 ? s->shape[1] : 1;
        int rc;
        switch (r[0].xform) {
        case GGUF_XFORM_NONE:
            rc = add_rows(set, r[0].name, nd[0], ne[0], q, L, src, s->numel / ne[0][0], 0, 1, 1, err);
            break;
        case GGUF_XFORM_EXPERT:
            rc = add_rows(set, r[0].name, nd[0], ne[0], q, L, src, rows, r[0].expert,
                          cfg->n_routed_experts, 0, err);
            break;
        case GGUF_XFORM_LLAMA_PERMUTE:
            free(tmp);
            if (!(tmp = malloc((size_t)s->numel * sizeof(float)))) goto oom;
            if (gguf_llama_permute_rows(tmp, src, rows, (size_t)cols * sizeof(float), r[0].n_head,
                                        err) != 0)
                goto fail;
            rc = add_rows(set, r[0].name, nd[0], ne[0], q, L, tmp, s->numel / ne[0][0], 0, 1, 0, err);
            break;
        case GGUF_XFORM_KV_B_K: {
            const int H = cfg->num_attention_heads, nope = cfg->qk_nope_head_dim,
                      v = cfg->v_head_dim, R = cfg->kv_lora_rank;
            free(tmp);
            free(tmp2);
            tmp = malloc((size_t)H * R * nope * sizeof(float));
            tmp2 = malloc((size_t)H * v * R * sizeof(float));
            if (!tmp || !tmp2) goto oom;
            gguf_mla_split_kv_b(src, tmp, tmp2, sizeof(float), H, nope, v, R);
            rc = add_rows(set, r[0].name, nd[0], ne[0], q, L, tmp, (int64_t)H * R, 0, 1, 0, err);
            if (rc == 0)
                rc = add_rows(set, r[1].name, nd[1], ne[1], q, L, tmp2, (int64_t)H * v, 0, 1, 0, err);
            break;
        }
        default: err_set(err, "tensor '%s': unexpected transform", s->name); goto fail;
        }
        if (rc != 0) goto fail;
    }
    for (int i = 0; i < set->n; i++) set->t[i].name = set->names[i];
    free(tmp);
    free(tmp2);
    return 0;
oom:
    err_set(err, "out of memory building the GGUF tensors");
fail:
    free(tmp);
    free(tmp2);
    gguf_tensors_free(set);
    return -1;
}
