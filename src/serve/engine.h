/* SPDX-License-Identifier: MIT */
/* The serving engine: one worker thread owns the model, every KV cache and
 * the prefix cache, and advances all active requests together, one batched
 * forward per step (continuous batching: requests join and leave between
 * steps; a prompt being prefilled takes a chunk of rows in the same forward
 * as the decoding rows). Connection threads only prepare prompts (template +
 * tokenizer, both read-only), submit jobs and read their output; a Job is
 * the one object the two sides share, guarded by its own mutex. */
#ifndef WHALE_ENGINE_H
#define WHALE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"
#include "base/err.h"
#include "infer/sampler.h"
#include "tokenizer/chat_template.h"

typedef struct Engine Engine;
typedef struct Job Job;

/* Zero means default for every field. */
typedef struct EngineOpts {
    int parallel;          /* slots advancing together (--parallel); 0: 4 */
    int queue;             /* jobs waiting behind full slots before submit refuses; 0: 64 */
    int n_ctx;             /* context per slot in tokens; 0: min(4096, max_position_embeddings) */
    int64_t cache_mb;      /* prefix cache budget in MiB; 0: 256; < 0: no prefix cache */
    int prefill_chunk;     /* prompt rows one step may prefill; 0: 256 */
    DType kv_type;         /* DTYPE_F32 (zero) or DTYPE_BF16 */
    int threads;           /* worker's OpenMP threads; 0: all */
    const char *template_name; /* chat template override; NULL: from the model's files */
    const char *model_name;    /* the id /v1/models shows; NULL: the path's last component */
} EngineOpts;

/* Open the model at path (directory or .gguf, as model_open), its
 * tokenizer and generation_config.json, choose the chat template, and start
 * the worker thread. 0 with *out set, or -1 with err naming the file. */
int engine_open(Engine **out, const char *path, const EngineOpts *o, Err *err);
/* Stop the worker: jobs still queued or running finish with
 * finish_reason "cancelled" (their readers wake up), then everything is
 * freed. NULL allowed. */
void engine_close(Engine *e);

/* Facts for the API and the page. */
const char *engine_model_name(const Engine *e);
int engine_n_ctx(const Engine *e);      /* context per slot in tokens */
int engine_parallel(const Engine *e);   /* slots */
int engine_is_reasoning(const Engine *e); /* the chat template opens `<think>` (R1 families) */
int engine_has_fim(const Engine *e);    /* the vocabulary has fill-in-the-middle tokens */

/* A prompt ready to submit: token ids (owned, malloc'd) and whether the
 * model starts inside a thinking block (the prompt's last `<think>` is
 * open), which routes the first tokens to reasoning_content. */
typedef struct EnginePrompt {
    int *ids;
    int n;
    int opens_think;
} EnginePrompt;
void engine_prompt_free(EnginePrompt *p);

/* Render a conversation with the model's chat template (generation prompt
 * added) and tokenize it; callable from any thread. A message's
 * reasoning_content is dropped, as R1 does. 0; ENGINE_TOO_LONG with err
 * when the prompt does not leave room for one token in the context (err
 * says how many tokens it has and the context size); -1 with err for other
 * errors (a role the template does not know, out of memory). */
#define ENGINE_TOO_LONG (-2)
int engine_prompt_chat(Engine *e, const ChatMessage *msgs, int n, EnginePrompt *out, Err *err);
/* A plain completion prompt (BOS first when the tokenizer asks for it).
 * suffix non-NULL: fill-in-the-middle (prefix, hole, suffix in the model's
 * FIM format; an error when engine_has_fim is 0). Returns as above. */
int engine_prompt_text(Engine *e, const char *prompt, const char *suffix, EnginePrompt *out,
                       Err *err);

#define ENGINE_MAX_STOP 4

/* What to generate. Zero is greedy, until a stop id or a full context. */
typedef struct JobParams {
    SamplerOpts sampling;       /* temperature, top_p, penalties, seed */
    int max_tokens;             /* <= 0: until a stop or a full context */
    const char *stop[ENGINE_MAX_STOP]; /* stop strings (copied at submit); NULL ends the list */
    double time_limit_s;        /* <= 0: none; when passed the job ends with "length" */
    int ignore_eos;             /* generate through stop ids (benchmarks; llama-server's
                                   ignore_eos): only max_tokens, a stop string or the
                                   context end the job */
} JobParams;

/* Why submit refused a job. */
typedef enum EngineRefusal {
    ENGINE_OK,
    ENGINE_BUSY,      /* every slot is taken and the queue is full: HTTP 429 */
    ENGINE_INVALID,   /* bad parameters (err says which): HTTP 400 */
    ENGINE_STOPPING,  /* the engine is shutting down: HTTP 503 */
} EngineRefusal;

/* Queue a job. The prompt's ids are taken over (p->ids is set to NULL).
 * Returns the job, or NULL with *why and err. The job is shared by the
 * caller and the worker; the caller releases it with job_release when it
 * is done reading (a job released before it finished is cancelled). */
Job *engine_submit(Engine *e, EnginePrompt *p, const JobParams *params, EngineRefusal *why,
                   Err *err);

/* The job's final accounting (valid once done). */
typedef struct JobUsage {
    int prompt_tokens;
    int completion_tokens;       /* generated ids, a stop id not counted */
    int reasoning_tokens;        /* of which were generated inside thinking */
    int cache_hit_tokens;        /* prompt tokens whose KV came from the prefix cache */
    int cache_miss_tokens;       /* prompt tokens that were prefilled */
    double queue_s, prompt_s, gen_s; /* waiting for a slot, prefilling, generating */
} JobUsage;

/* New output since the last job_take. */
typedef struct JobDelta {
    char *reasoning;          /* thinking text (malloc'd, NUL-terminated, may be NULL) */
    size_t reasoning_len;
    char *content;            /* answer text (malloc'd, NUL-terminated, may be NULL) */
    size_t content_len;
    int done;                 /* the job has finished: finish_reason and usage are set */
    const char *finish_reason; /* "stop", "length", "cancelled" or "error" (static string) */
    char error[256];          /* the message when finish_reason is "error" */
    JobUsage usage;
} JobDelta;

/* Wait up to timeout_ms (< 0: forever, 0: not at all) for new output or
 * the end, then take everything new into *d (free with job_delta_free).
 * Thinking text always comes before the answer text it precedes in the
 * stream. Returns 1 if *d holds new text or the end, 0 on timeout, -1 out
 * of memory. */
int job_take(Job *j, int timeout_ms, JobDelta *d);
void job_delta_free(JobDelta *d);

/* Ask the worker to stop this job at its next step and free its slot
 * (client gone). Safe to call more than once. */
void job_cancel(Job *j);
/* Drop the caller's reference (cancels the job if it is still running). */
void job_release(Job *j);

/* Engine-wide numbers for /health and the page. */
typedef struct EngineStats {
    int active, queued, parallel;
    int64_t cache_bytes, cache_budget;  /* prefix cache use and budget */
    int64_t cache_tokens;               /* tokens whose KV the prefix cache holds */
    int64_t cache_prompts;              /* prompts (leaves) it holds */
    int64_t kv_bytes_per_token;         /* what one cached token costs */
    double tokens_per_s;                /* decode rate of the last finished job */
} EngineStats;
void engine_stats(Engine *e, EngineStats *s);

#endif
