/* SPDX-License-Identifier: MIT */
/* The OpenAI / DeepSeek-compatible API schema of `whale serve`: request
 * bodies of /v1/chat/completions and /v1/completions into checked fields
 * (every bad value answered with the status and an error that names the
 * field), and the JSON of answers, stream chunks, errors, /v1/models and
 * /health. Pure functions over jansson: no sockets, no engine calls, so
 * the schema is tested and fuzzed on its own (http.c does the I/O). */
#ifndef WHALE_API_H
#define WHALE_API_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "serve/engine.h"

typedef enum ApiRoute { API_CHAT, API_COMPLETION } ApiRoute;

/* An error answer: HTTP status and the OpenAI error object
 * {"error":{"message","type","param","code"}}. */
typedef struct ApiError {
    int status;
    const char *type; /* "invalid_request_error", "authentication_error", ... (static) */
    const char *code; /* NULL, or e.g. "model_not_found" (static) */
    char param[64];   /* the field at fault ("messages[1].content"); "" for none */
    char message[512];
} ApiError;

/* Fill e: status, param (NULL for none), printf message; the type follows
 * from the status (400/404/405/413 invalid_request_error, 401
 * authentication_error, 429 rate_limit_error, 5xx server_error). Returns -1. */
int api_error(ApiError *e, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A checked request. Strings point into root (owned; freed with
 * api_request_free), which the parser may normalise: a message content
 * given as an array of text parts is replaced by their concatenation. */
typedef struct ApiRequest {
    ApiRoute route;
    json_t *root;
    const char *model; /* NULL when not given */
    ChatMessage *msgs; /* (n_msgs) chat: malloc'd */
    int n_msgs;
    const char *prompt; /* completion */
    const char *suffix; /* completion: fill-in-the-middle; NULL when not given */
    int stream;
    int include_usage; /* stream_options.include_usage */
    int has_seed;      /* seed given (else the server draws one) */
    JobParams params;  /* sampling, max_tokens, stop (time_limit_s left 0) */
} ApiRequest;

/* Defaults where the request says nothing: OpenAI's (temperature 1,
 * top_p 1, no penalties, no token limit beyond the context). */
#define API_DEFAULT_TEMPERATURE 1.0f
#define API_DEFAULT_TOP_P 1.0f

/* Parse and check the body (len bytes, any content) of a request to
 * route. 0 with *req filled (free with api_request_free), or -1 with e
 * (status 400): body not valid UTF-8 (the byte offset), not JSON (line and
 * column), not an object, an unknown field, a field of the wrong type or
 * out of range, empty messages, an unknown role, an unsupported option
 * (n > 1, logprobs, response_format other than text, echo). req is
 * zeroed on failure. */
int api_parse(ApiRoute route, const char *body, size_t len, ApiRequest *req, ApiError *e);
void api_request_free(ApiRequest *req); /* zeroed struct allowed */

/* 1 when s (n bytes) is valid UTF-8 (no overlong forms, surrogates or
 * code points past U+10FFFF); else 0 with *bad (if non-NULL) the offset
 * of the first invalid byte. */
int api_utf8_valid(const char *s, size_t n, size_t *bad);

/* What every answer to one request shares. */
typedef struct ApiReply {
    ApiRoute route;
    char id[48];       /* "chatcmpl-<hex>" or "cmpl-<hex>" */
    long long created; /* Unix seconds */
    const char *model; /* borrowed */
    int reasoning;     /* the model thinks: chat answers carry reasoning_content */
} ApiReply;

/* Fill r; nonce makes the id (any 64-bit value, e.g. random). */
void api_reply_init(ApiReply *r, ApiRoute route, const char *model, int reasoning,
                    long long created, uint64_t nonce);

/* Built JSON texts are malloc'd, NUL-terminated (caller frees), with the
 * length in *len (len may be NULL); NULL only when out of memory. Text that is not valid
 * UTF-8 is sent with U+FFFD in place of the bad bytes. */

/* The usage object of a finished job (prompt/completion/total tokens,
 * prompt_cache_hit/miss_tokens, prompt_tokens_details.cached_tokens,
 * completion_tokens_details.reasoning_tokens). New reference. */
json_t *api_usage(const JobUsage *u);

/* The non-streamed answer: "chat.completion" with choices[0].message
 * {role, content, reasoning_content when r->reasoning} or
 * "text_completion" with choices[0].text (reasoning then content), the
 * finish_reason and usage. Texts may be NULL (empty). */
char *api_reply_full(const ApiReply *r, const char *reasoning, const char *content,
                     const char *finish_reason, const JobUsage *u, size_t *len);

/* One SSE event "data: {...}\n\n" of a stream ("chat.completion.chunk" or
 * "text_completion"): role != 0 puts role "assistant" in the delta (the
 * first chunk); reasoning / content (NULL or n bytes) go to
 * delta.reasoning_content / delta.content (chat) or text (completion);
 * finish_reason NULL while streaming. */
char *api_reply_chunk(const ApiReply *r, int role, const char *reasoning, size_t reasoning_n,
                      const char *content, size_t content_n, const char *finish_reason,
                      size_t *len);
/* The include_usage event: empty choices and the usage. */
char *api_reply_usage_chunk(const ApiReply *r, const JobUsage *u, size_t *len);
/* An error inside a stream: "data: {"error":{...}}\n\n". */
char *api_error_chunk(const ApiError *e, size_t *len);

/* The error body {"error":{...}}. */
char *api_error_body(const ApiError *e, size_t *len);
/* GET /v1/models: the OpenAI list with the one model. */
char *api_models_body(const char *model, long long created, size_t *len);
/* GET /health: status, model, slots {active, parallel}, queued, prefix
 * cache use, and the last decode rate. */
char *api_health_body(const char *model, const EngineStats *s, size_t *len);

#endif
