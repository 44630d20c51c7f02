/* SPDX-License-Identifier: MIT */
/* Weights for inference: every Q8_0 / Q4_0 matrix that only products read
 * is stored as 16-row panels (kernels/qgemm.h), in place. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/dot.h"
#include "kernels/qgemm.h"
#include "model/weights.h"

static int by_data(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)(*(Mat *const *)a)->data, y = (uintptr_t)(*(Mat *const *)b)->data;
    return x < y ? -1 : x > y;
}

/* The matrices that only matmul reads, appended to list (may hold Mats
 * without data, and Mats that share their data with others). */
#define LAYER_MATS 13 /* the Mats of a LayerWeights that collect lists, experts apart */

static int collect(Mat **list, Weights *w, const ModelConfig *c) {
    int n = 0;
    const int n_layers = c->num_hidden_layers + c->num_nextn_predict_layers;
    for (int l = 0; l < n_layers; l++) {
        LayerWeights *L = &w->layers[l];
        Mat *m[LAYER_MATS] = {&L->q_proj, &L->q_a_proj, &L->q_b_proj, &L->kv_a_proj, &L->o_proj,
                              &L->wq,     &L->wk,       &L->wv,       &L->gate,      &L->up,
                              &L->down,   &L->eh_proj,  &L->head};
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
