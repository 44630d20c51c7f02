/* SPDX-License-Identifier: MIT */
/* GGUF files as whale models, both ways. Loading: the config from the
 * metadata (io/gguf_names.h), then every tensor of the weight table found
 * under its GGUF name, the converter's transforms undone (llama q/k row
 * permutation, stacked experts, the kv_b split), and stored either in the
 * file's own type (blocks copied, no requantisation) or in one type asked
 * for. Saving: a model's F32 weights through the same transforms, quantised
 * per tensor the way llama.cpp's converter chooses, into a GGUF v3 file.
 * Sits in model/ above io/gguf; model.c dispatches .gguf paths here. */
#ifndef WHALE_GGUF_LOAD_H
#define WHALE_GGUF_LOAD_H

#include "base/err.h"
#include "io/gguf.h"
#include "io/gguf_names.h"
#include "model/weights.h"

/* The whale storage type of ggml type t: 0 and *out, or -1 when whale
 * computes with no such type (it may still not read it: see gguf.h). */
int gguf_qtype_of(GgmlType t, QType *out);
/* The ggml type of whale storage type q. */
GgmlType gguf_ggml_of(QType q);
/* general.file_type (llama_ftype) of a file written with --type q: 0 F32,
 * 1 F16, 32 BF16, 7 Q8_0, 2 Q4_0, 15 Q4_K_M, 18 Q6_K. */
uint32_t gguf_file_type_of(QType q);

/* The model config of g (gguf_config_from_gguf), with the MTP modules
 * dropped when the file does not hold their tensors (as for a Hugging Face
 * checkpoint without them). 0 or -1 with err naming the file. */
int gguf_model_config(const GgufFile *g, ModelConfig *cfg, Err *err);

/* Allocate w for cfg and fill it from g. keep = 1: every matrix keeps the
 * file's type (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K rows copied as they
 * are), except kv_b_proj when attn_k_b is block-quantised: its blocks run
 * along the other axis, so kv_b is stored F32 from the dequantised values
 * (exact; 4 bytes a weight for that one tensor). With a plain attn_k_b,
 * kv_b takes attn_v_b's type: v rows copied, nope rows transposed from
 * k_b and converted (bit-exact for plain types; quantised as an HF load
 * would for block types). keep = 0: every matrix is stored as mat_type
 * (weights_alloc's rule), tensors already of that type copied, others
 * dequantised and quantised. 1-D tensors are F32 either way. Returns 0, or
 * -1 with w zeroed and err "FILE: tensor 'GGUF NAME' (HF NAME) ..." for a
 * missing tensor, a shape other than cfg implies, or a type whale does not
 * read. */
int gguf_weights_load(Weights *w, const ModelConfig *cfg, const GgufFile *g, int keep,
                      QType mat_type, Err *err);

/* The tensors of a GGUF file as a list to pass to gguf_write, with the
 * buffers they point into. Zero is empty; free with gguf_tensors_free. */
typedef struct GgufTensorSet {
    GgufWriteTensor *t;            /* (n) in the converter's order */
    char (*names)[GGUF_NAME_MAX];  /* (n) backing t[i].name */
    void **bufs;                   /* (n_bufs) owned data buffers */
    int n, cap, n_bufs;
} GgufTensorSet;

/* Build the GGUF tensors of w (F32 storage; cfg its config) for a file of
 * type q: names and shapes of io/gguf_names.h, the converter's transforms
 * applied, and per tensor the type llama.cpp's converter would choose: 1-D
 * tensors and the MoE router (ffn_gate_inp) F32; other matrices q, except
 * that q4_k is Q4_K_M's mix (the file type it declares): output.weight (and
 * the MTP heads) Q6_K, and attn_v and every ffn_down Q6_K in the first and
 * last eighth of the layers and every third between, and a row that q's block does not divide falls back to Q8_0 for
 * q6_k, Q4_0 for q4_k (llama.cpp's Q5_0 is not a whale type), and to F32
 * when 32 does not divide it either (llama.cpp writes F16 there; F32 keeps
 * the values exact). A llama3 model gets rope_freqs.weight. Returns 0 or
 * -1 with err (out of memory, a tensor GGUF cannot name). */
int gguf_tensors_from_weights(GgufTensorSet *set, const Weights *w, const ModelConfig *cfg,
                              QType q, Err *err);
void gguf_tensors_free(GgufTensorSet *set);

#endif
