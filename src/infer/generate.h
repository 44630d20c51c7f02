/* SPDX-License-Identifier: MIT */
/* Text generation: the loop that turns a prompt into streamed text. It owns
 * a KV cache, prefills the prompt's ids with model_forward (reusing the
 * cached prefix that the new prompt shares with the tokens already in the
 * cache, which is what makes multi-turn chat cheap), then samples one token
 * at a time, decodes it through a TokStream, splits R1 thinking from the
 * answer, and stops on an end-of-turn id, the token limit, a full context
 * or an interrupt flag (Ctrl-C). */
#ifndef WHALE_GENERATE_H
#define WHALE_GENERATE_H

#include <signal.h>
#include <stddef.h>

#include "base/dtype.h"
#include "base/err.h"
#include "infer/sampler.h"
#include "infer/think_split.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

typedef enum GenStop {
    GEN_STOP_EOS,       /* a stop id (end of sentence / turn) was sampled */
    GEN_STOP_LENGTH,    /* max_tokens generated */
    GEN_STOP_CONTEXT,   /* the context is full */
    GEN_STOP_INTERRUPT, /* the interrupt flag was raised */
} GenStop;

typedef struct GenOpts {
    SamplerOpts sampling;
    int n_ctx;          /* context in tokens; 0: min(4096, max_position_embeddings) */
    DType kv_type;      /* DTYPE_F32 (the zero default) or DTYPE_BF16 */
    int prefill_chunk;  /* tokens per prefill call, between interrupt checks; 0: 256 */
} GenOpts;

#define GEN_MAX_STOP 32

typedef struct Generator {
    Model *model;             /* borrowed */
    const Tokenizer *tok;     /* borrowed */
    GenOpts o;
    KVCache kv;
    Sampler smp;
    float *logits;            /* (V) of the last position */
    int *ids;                 /* (n_ctx) the tokens whose K/V are in kv: n_ids == kv.len */
    int n_ids;
    int stop[GEN_MAX_STOP];   /* ids that end the answer */
    int n_stop;
    char *text, *answer;      /* this run's raw text and answer part (owned, grown by doubling) */
    size_t text_len, text_cap, answer_len, answer_cap;
    int oom;
    GenEmit emit;             /* the current run's callback */
    void *user;
} Generator;

typedef struct GenResult {
    GenStop stop;
    int n_prompt;       /* prompt tokens */
    int n_reused;       /* of which were already in the cache */
    int n_gen;          /* tokens generated (a stop id is not counted) */
    double prompt_s;    /* prefill seconds (the n_prompt - n_reused new tokens) */
    double gen_s;       /* sampling + decoding seconds */
    int ended_in_think; /* the text ended inside a thinking block */
    int last_id;        /* the final sampled id that is not in the cache (the stop id, or the
                         * token that hit the length or context limit), or -1: the generated
                         * ids are g->ids[n_prompt .. n_ids) then this one */
    const char *text;   /* the raw generated text (thinking tags included), NUL-terminated */
    size_t text_len;
    const char *answer; /* the part outside thinking, NUL-terminated */
    size_t answer_len;  /* text and answer stay valid until the next gen_run or gen_free */
} GenResult;

/* Set up a generator for model m and tokenizer tok (both borrowed, must
 * outlive it; the tokenizer's vocabulary must fit the model's). The stop
 * ids start as the tokenizer's EOS. o may be NULL. 0, or -1 with err (bad
 * option, context larger than max_position_embeddings is allowed but must
 * be >= 2, out of memory). Free with gen_free (accepts a zeroed struct). */
int gen_init(Generator *g, Model *m, const Tokenizer *tok, const GenOpts *o, Err *err);
void gen_free(Generator *g);

/* Add a stop id (ignored when out of range or already present). */
void gen_add_stop_id(Generator *g, int id);
/* Add the id of a token string, if the vocabulary has it. */
void gen_add_stop_token(Generator *g, const char *content);
/* Whether id is one of g's stop ids. */
int gen_is_stop(const Generator *g, int id);
/* Add the eos_token_id of model_path's generation_config.json (an integer
 * or a list of them; model_path is the model directory or a file in it).
 * A missing file is not an error; a malformed one is (err names it). */
int gen_load_generation_config(Generator *g, const char *model_path, Err *err);

/* Forget the cache (a new conversation). */
void gen_reset(Generator *g);

/* Generate a continuation of prompt (len bytes, tokenized with special
 * tokens recognised; add_bos puts the tokenizer's BOS first). At most
 * max_tokens tokens (<= 0: until a stop or a full context). emit (may be
 * NULL) receives the streamed text split into thinking and answer; the
 * prompt opens thinking when its last `<think>` follows its last
 * `</think>`. interrupt (may be NULL) is polled between prefill chunks and
 * before every token. Returns 0 with *res filled, or -1 with err (the
 * prompt does not fit the context, a tokenizer or model error). */
int gen_run(Generator *g, const char *prompt, size_t len, int add_bos, int max_tokens,
            volatile sig_atomic_t *interrupt, GenEmit emit, void *user, GenResult *res, Err *err);

/* The raw text gen_run gives for generated ids (n, stop id excluded):
 * thinking tags included, invalid UTF-8 shown as U+FFFD. For callers that
 * decode many sequences themselves (batched rollouts). *text (len bytes,
 * NUL-terminated) is g's text buffer: valid until the next gen_run or
 * gen_decode_text. 0, or -1 with err (a bad id, out of memory). */
int gen_decode_text(Generator *g, const int *ids, int n, const char **text, size_t *len,
                    Err *err);

/* "eos", "length", "context", "interrupt". */
const char *gen_stop_name(GenStop s);

/* One line for people: "prompt N tokens (M cached), X tok/s | generated N
 * tokens, Y tok/s | stop: REASON" into buf (capacity n). */
void gen_stats_line(const GenResult *r, char *buf, size_t n);

#endif
