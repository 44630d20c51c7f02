/* SPDX-License-Identifier: MIT */
/* The training forward: the model's blocks (model/mla.c, model/moe.c) run
 * over a batch of n_seq sequences of seq_len tokens at once, each sequence
 * causal within itself at positions 0..seq_len-1, with the MTP modules of
 * DeepSeek-V3 §2.2 behind them, and every activation the backward
 * (train/model_backward.c) needs saved in a TrainActs. */
#ifndef WHALE_MODEL_TRAIN_H
#define WHALE_MODEL_TRAIN_H

#include <stdint.h>

#include "model/blocks.h"
#include "model/model.h"

/* One decoder block's saved activations; T = n_seq * seq_len rows. */
typedef struct BlockSaved {
    float *h_in;  /* (T, D) the residual stream entering the block */
    float *xn1;   /* (T, D) input_layernorm output */
    float *h_mid; /* (T, D) the residual stream after attention */
    float *xn2;   /* (T, D) post_attention_layernorm output */
    MlaSaved mla;
    FfnSaved ffn; /* dense layers */
    MoeSaved moe; /* MoE layers */
} BlockSaved;

/* MTP depth k (1-based) runs on seq_len - k positions of each sequence. */
typedef struct MtpSaved {
    int seq_len;      /* seq_len - k */
    int32_t *tok;     /* (n) the embedded tokens x[i + k] */
    float *h_prev;    /* (n, D) the previous depth's hidden state (hnorm input) */
    float *cat;       /* (n, 2D) [enorm(Emb(tok)), hnorm(h_prev)], eh_proj input */
    BlockSaved blk;   /* its decoder block; blk.h_in is eh_proj's output */
    float *h_out;     /* (n, D) block output: the next depth's h_prev */
    float *hn;        /* (n, D) after shared_head.norm */
    float *logits;    /* (n, V) */
} MtpSaved;

typedef struct TrainActs {
    Arena arena;      /* everything below lives here; reset by each forward */
    Arena scratch;    /* the backward's temporaries (train/model_backward.c) */
    int n_seq, seq_len;
    BlockSaved *blocks; /* (num_hidden_layers) */
    float *h_last;    /* (T, D) residual stream after the last block */
    float *hn;        /* (T, D) after model.norm */
    float *logits;    /* (T, V) */
    MtpSaved *mtp;    /* (num_nextn_predict_layers) */
    const ExpertExchange *ep; /* expert parallelism (set by the trainer), else NULL */
} TrainActs;

void train_acts_free(TrainActs *a);

/* Forward the batch tokens (n_seq, seq_len + 1): inputs are each
 * sequence's first seq_len tokens; the MTP modules embed the later ones.
 * Fills acts (allocating from its arena) up to every logit. MLA models only.
 * Returns 0, or -1 with err (token out of range, a dense-attention model,
 * out of memory). */
int model_forward_train(Model *m, TrainActs *acts, const int32_t *tokens, int n_seq, int seq_len,
                        Err *err);

#endif
