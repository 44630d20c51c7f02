/* SPDX-License-Identifier: MIT */
/* Expert load counting and the bias rule of auxiliary-loss-free balancing
 * (see balance.h). */
#include "train/balance.h"

#include <stdlib.h>
#include <string.h>

int expert_load_init(ExpertLoad *l, const ModelConfig *c, Err *err) {
    l->n_layers = c->num_hidden_layers + c->num_nextn_predict_layers;
    l->E = c->n_routed_experts > 0 ? c->n_routed_experts : 1;
    l->count = calloc((size_t)l->n_layers * l->E, sizeof(int64_t));
    return l->count ? 0 : err_set(err, "out of memory for the expert loads");
}

void expert_load_free(ExpertLoad *l) {
    free(l->count);
    memset(l, 0, sizeof *l);
}

void expert_load_zero(ExpertLoad *l) {
    memset(l->count, 0, (size_t)l->n_layers * l->E * sizeof(int64_t));
}

static void add_layer(ExpertLoad *l, int layer, const MoeSaved *s) {
    int64_t *row = l->count + (size_t)layer * l->E;
    for (int e = 0; e < l->E; e++) row[e] += s->count[e + 1] - s->count[e];
}

void expert_load_add(ExpertLoad *l, const Model *m, const TrainActs *acts) {
    const ModelConfig *c = &m->cfg;
    for (int i = 0; i < c->num_hidden_layers; i++)
        if (m->w.layers[i].is_moe) add_layer(l, i, &acts->blocks[i].moe);
    for (int k = 0; k < c->num_nextn_predict_layers; k++)
        if (m->w.layers[c->num_hidden_layers + k].is_moe)
            add_layer(l, c->num_hidden_layers + k, &acts->mtp[k].blk.moe);
}

void balance_update_bias(Model *m, const ExpertLoad *l, float gamma) {
    for (int i = 0; i < l->n_layers; i++) {
        const LayerWeights *L = &m->w.layers[i];
        if (!L->is_moe || !L->router_bias) continue;
        const int64_t *row = l->count + (size_t)i * l->E;
        double mean = 0;
        for (int e = 0; e < l->E; e++) mean += (double)row[e];
        mean /= l->E;
        float *bias = (float *)(uintptr_t)L->router_bias;
        for (int e = 0; e < l->E; e++) {
            double d = mean - (double)row[e];
            bias[e] += gamma * (float)((d > 0) - (d < 0));
        }
    }
}

double expert_load_max_mean(const ExpertLoad *l, const Model *m, double *per_layer) {
    double sum = 0;
    int n = 0;
    for (int i = 0; i < l->n_layers; i++) {
        double r = 0;
        if (m->w.layers[i].is_moe) {
            const int64_t *row = l->count + (size_t)i * l->E;
            int64_t mx = 0, tot = 0;
            for (int e = 0; e < l->E; e++) tot += row[e], mx = row[e] > mx ? row[e] : mx;
            if (tot > 0) r = (double)mx * l->E / (double)tot;
            sum += r, n++;
        }
        if (per_layer) per_layer[i] = r;
    }
    return n ? sum / n : 0;
}
