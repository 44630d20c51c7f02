/* SPDX-License-Identifier: MIT */
/* Weights for inference: every Q8_0 / Q4_0 / Q4_K / Q6_K matrix that only products read
 * is stored as 16-row panels (kernels/qgemm.h), in place; MLA's W_UK and
 * W_UV get Q8_0 copies for decoding with W_UK absorbed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "kernels/dot.h"
#include "kernels/qgemm.h"
#include "kernels/quant.h"
#include "model/weights.h"

/* Rows r0 .. r0+n-1 of W as Q8_0 at dst (row: scratch of W->cols);
 * returns the end of what was written. */
static unsigned char *q8_rows(unsigned char *dst, const Mat *W, int r0, int n, float *row) {
    const size_t rb = qtype_row_bytes(QTYPE_Q8_0, W->cols);
    for (int i = 0; i < n; i++, dst += rb) {
        mat_dequantize_row(W, r0 + i, row);
        quantize_row(QTYPE_Q8_0, row, dst, W->cols);
    }
    return dst;
}

/* The copies layer L gets: 0 none (no kv_b_proj, or a model not
 * block-quantised), 1 wuk_t, 2 wuk_t and wuv (kv_b_proj F32, R in Q8_0
 * blocks: wuv_fits). */
static int copies_wanted(const LayerWeights *L, int wuv_fits) {
    if (!L->kv_b_proj.data || qtype_block(L->o_proj.type) <= 1) return 0;
    return L->kv_b_proj.type == QTYPE_F32 && wuv_fits ? 2 : 1;
}

int weights_mla_decode_copies(Weights *w, const ModelConfig *c) {
    const int n_layers = c->num_hidden_layers + c->num_nextn_predict_layers;
    const int H = c->num_attention_heads, R = c->kv_lora_rank, nope = c->qk_nope_head_dim;
    const int vd = c->v_head_dim;
    if (!config_is_mla(c) || nope <= 0 || nope % 32 != 0 || w->derived) return 0;
    const int wuv_fits = R % 32 == 0;
    const size_t k_bytes = (size_t)H * R * qtype_row_bytes(QTYPE_Q8_0, nope);
    const size_t v_bytes = wuv_fits ? (size_t)H * vd * qtype_row_bytes(QTYPE_Q8_0, R) : 0;
    size_t bytes = 0;
    for (int l = 0; l < n_layers; l++) {
        const int want = copies_wanted(&w->layers[l], wuv_fits);
        bytes += (want > 0 ? k_bytes : 0) + (want > 1 ? v_bytes : 0);
    }
    if (!bytes || !(w->derived = mem_alloc_uninit(bytes))) return 0;
    /* wk: W_UK[h] (nope x R); row: one column of it (nope) or one W_UV row (R) */
    float *wk = malloc((size_t)nope * R * sizeof(float));
    float *row = malloc((size_t)(nope > R ? nope : R) * sizeof(float));
    if (!wk || !row) {
        free(wk), free(row);
        mem_free(w->derived);
        w->derived = NULL;
        return 0;
    }
    unsigned char *dst = w->derived;
    const size_t rbk = qtype_row_bytes(QTYPE_Q8_0, nope);
    int done = 0;
    for (int l = 0; l < n_layers; l++) {
        LayerWeights *L = &w->layers[l];
        const int want = copies_wanted(L, wuv_fits);
        if (!want) continue;
        unsigned char *k = dst;
        for (int h = 0; h < H; h++) {
            for (int i = 0; i < nope; i++) /* W_UK[h]: rows h(nope+v) .. +nope */
                mat_dequantize_row(&L->kv_b_proj, h * (nope + vd) + i, wk + (size_t)i * R);
            for (int r = 0; r < R; r++, dst += rbk) {
                for (int i = 0; i < nope; i++) row[i] = wk[(size_t)i * R + r];
                quantize_row(QTYPE_Q8_0, row, dst, nope);
            }
        }
        L->wuk_t = mat_of(k, QTYPE_Q8_0, H * R, nope);
        if (want > 1) {
            unsigned char *v = dst;
            for (int h = 0; h < H; h++) /* W_UV[h]: rows h(nope+v) + nope .. +v */
                dst = q8_rows(dst, &L->kv_b_proj, h * (nope + vd) + nope, vd, row);
            L->wuv = mat_of(v, QTYPE_Q8_0, H * vd, R);
        }
        done++;
    }
    free(wk), free(row);
    return done;
}

static int by_data(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)(*(Mat *const *)a)->data, y = (uintptr_t)(*(Mat *const *)b)->data;
    return x < y ? -1 : x > y;
}

/* The matrices that only matmul reads, appended to list (may hold Mats
 * without data, and Mats that share their data with others). */
#define LAYER_MATS 15 /* the Mats of a LayerWeights that collect lists, experts apart */

static int collect(Mat **list, Weights *w, const ModelConfig *c) {
    int n = 0;
    const int n_layers = c->num_hidden_layers + c->num_nextn_predict_layers;
    for (int l = 0; l < n_layers; l++) {
        LayerWeights *L = &w->layers[l];
        Mat *m[LAYER_MATS] = {&L->q_proj, &L->q_a_proj, &L->q_b_proj, &L->kv_a_proj, &L->o_proj,
                              &L->wq,     &L->wk,       &L->wv,       &L->gate,      &L->up,
                              &L->down,   &L->eh_proj,  &L->head,     &L->wuk_t,
                              &L->wuv};
        for (int i = 0; i < LAYER_MATS; i++) list[n++] = m[i];
        if (L->is_moe)
            for (int e = 0; e < c->n_routed_experts; e++) {
                list[n++] = &L->exp_gate[e];
                list[n++] = &L->exp_up[e];
                list[n++] = &L->exp_down[e];
            }
    }
    list[n++] = &w->lm_head;
    return n;
}

int weights_pack_panels(Weights *w, const ModelConfig *c) {
    const char *env = getenv("WHALE_PANELS"); /* 0: keep the row layout (benchmarks) */
    if (env && !strcmp(env, "0")) return 0;
    /* the panels' kernel runs at the VNNI level only (WHALE_SIMD may cap it) */
    if (dot_best() != dot_kernels(DOT_AVX512_VNNI)) return 0;
    const int n_layers = c->num_hidden_layers + c->num_nextn_predict_layers;
    const size_t per_layer = LAYER_MATS + 3 * (size_t)(c->n_routed_experts > 0 ? c->n_routed_experts : 0);
    const size_t cap = (size_t)n_layers * per_layer + 1;
    Mat **list = malloc(cap * sizeof *list);
    if (!list) return 0;
    const int n = collect(list, w, c);
    /* Mats that share their data (a head tied to another) are packed once
     * and all marked; the embedding's rows are looked up, so it, and any
     * head tied to it, keep the row layout. MLA's kv_b_proj is not in the
     * list: the absorbed query reads its rows. */
    qsort(list, (size_t)n, sizeof *list, by_data);
    int packed = 0;
    for (int i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && list[j]->data == list[i]->data; j++) {}
        Mat *m = list[i];
        if (!m->data || m->data == w->embed.data || m->panels) continue;
        int same = 1;
        for (int k = i + 1; k < j; k++)
            same &= list[k]->rows == m->rows && list[k]->cols == m->cols && list[k]->type == m->type;
        if (!same || qgemm_pack(m) != 0) continue;
        for (int k = i + 1; k < j; k++) list[k]->panels = 1;
        packed += j - i;
    }
    free(list);
    w->n_panels += packed;
    return packed;
}

void weights_prepare_inference(Weights *w, const ModelConfig *c) {
    weights_mla_decode_copies(w, c);
    weights_pack_panels(w, c);
}

static double mat_bytes(const Mat *w) { return (double)w->rows * qtype_row_bytes(w->type, w->cols); }

double weights_decode_bytes(const Weights *w, const ModelConfig *c) {
    const int nope = c->qk_nope_head_dim, vd = c->v_head_dim;
    double bytes = 0;
    for (int i = 0; i < w->n_specs; i++) {
        const ParamSpec *s = &w->specs[i];
        double b = (double)s->bytes;
        const char *kvb = strstr(s->name, ".self_attn.kv_b_proj.weight");
        const LayerWeights *L = kvb ? &w->layers[atoi(s->name + 13)] : NULL;
        if (L && L->wuk_t.data) {
            b = mat_bytes(&L->wuk_t) + (L->wuv.data ? mat_bytes(&L->wuv) : b * vd / (nope + vd));
        } else if (!strcmp(s->name, "model.embed_tokens.weight")) {
            if (c->tie_word_embeddings) bytes += b; /* read whole as the LM head */
            b = b / (double)s->shape[0];
        } else if (strstr(s->name, ".mlp.experts.")) {
            b = b * c->num_experts_per_tok / c->n_routed_experts;
        }
        if (strncmp(s->name, "model.layers.", 13) == 0 &&
            atoi(s->name + 13) >= c->num_hidden_layers)
            continue; /* MTP modules do not run in plain decoding */
        bytes += b;
    }
    return bytes;
}
