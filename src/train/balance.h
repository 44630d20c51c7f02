/* SPDX-License-Identifier: MIT */
/* Auxiliary-loss-free load balancing (DeepSeek-V3 §2.1.2): count how many
 * tokens each expert received in a step's forward passes, then move each
 * MoE layer's e_score_correction_bias by gamma * sign(mean load - load).
 * The bias only steers selection (model/moe.c); no gradient touches it. */
#ifndef WHALE_BALANCE_H
#define WHALE_BALANCE_H

#include <stdint.h>

#include "model/model_train.h"

/* Loads of all layers (main and MTP), (n_layers, E), zeroed per step. */
typedef struct ExpertLoad {
    int64_t *count; /* (n_layers * E); rows of dense layers stay 0 */
    int n_layers, E;
} ExpertLoad;

int expert_load_init(ExpertLoad *l, const ModelConfig *c, Err *err);
void expert_load_free(ExpertLoad *l);
void expert_load_zero(ExpertLoad *l);

/* Add the selections of the forward acts was made by. */
void expert_load_add(ExpertLoad *l, const Model *m, const TrainActs *acts);

/* bias_e += gamma * sign(mean - load_e) on every MoE layer that has a
 * correction bias. */
void balance_update_bias(Model *m, const ExpertLoad *l, float gamma);

/* Max over mean load of each MoE layer into per_layer (n_layers; 0 for
 * dense layers; may be NULL); returns their mean over MoE layers (0 if
 * none). */
double expert_load_max_mean(const ExpertLoad *l, const Model *m, double *per_layer);

#endif
