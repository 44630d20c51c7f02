/* SPDX-License-Identifier: MIT */
/* The API schema (see api.h): request bodies checked field by field with
 * jansson, answers and stream chunks built as jansson objects and dumped
 * compact. Hostile input: the body is checked as UTF-8 before jansson sees
 * it, every field is type- and range-checked, and fields we do not know are
 * refused by name rather than silently ignored (a client that asks for
 * tools or logprobs learns that it did not get them). */
#include "serve/api.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"

/* ---- errors ---------------------------------------------------------------- */

static const char *status_type(int status) {
    switch (status) {
    case 401: return "authentication_error";
    case 429: return "rate_limit_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

static void utf8_trim(char *s);

int api_error(ApiError *e, int status, const char *param, const char *fmt, ...) {
    e->status = status;
    e->type = status_type(status);
    e->code = NULL;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    /* a long field name cut to fit may end inside a character */
    utf8_trim(e->param);
    utf8_trim(e->message);
    return -1;
}

/* A json.h reader's message as a 400 naming key. */
static int bad_field(ApiError *e, const char *key, const Err *err) {
    return api_error(e, 400, key, "%s", err->msg);
}

/* ---- UTF-8 ------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s[i] (n bytes in all), or 0. The
 * second-byte ranges exclude overlong forms (E0 80..9F, F0 80..8F),
 * surrogates (ED A0..BF) and code points past U+10FFFF (F4 90.., F5..). */
static size_t utf8_seq(const unsigned char *s, size_t i, size_t n) {
    unsigned c = s[i];
    if (c < 0x80) return 1;
    size_t k;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        k = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        k = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 0;
    if (n - i < k) return 0;
    if (s[i + 1] < lo || s[i + 1] > hi) return 0;
    for (size_t j = 2; j < k; j++)
        if (s[i + j] < 0x80 || s[i + j] > 0xBF) return 0;
    return k;
}

int api_utf8_valid(const char *s, size_t n, size_t *bad) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(u, i, n);
        if (!k) {
            if (bad) *bad = i;
            return 0;
        }
        i += k;
    }
    return 1;
}

/* Drop an incomplete UTF-8 sequence at the end of s (one that snprintf
 * cut), so a truncated message stays valid text. */
static void utf8_trim(char *s) {
    size_t n = strlen(s), i = n;
    while (i > 0 && n - i < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--;
    const unsigned char *u = (const unsigned char *)s;
    if (i > 0 && u[i - 1] >= 0xC0 && utf8_seq(u, i - 1, n) == 0) s[i - 1] = 0;
}

/* A JSON string of s (n bytes), with U+FFFD for each invalid byte (model
 * output should be valid; this keeps one bad byte from losing a chunk). */
static json_t *str_json(const char *s, size_t n) {
    if (!s) return json_string("");
    if (api_utf8_valid(s, n, NULL)) return json_stringn(s, n);
    const unsigned char *u = (const unsigned char *)s;
    char *b = malloc(n * 3 + 1);
    if (!b) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(u, i, n);
        if (k && u[i]) { /* NUL too: jansson's strings are C strings here */
            memcpy(b + o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(b + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    json_t *j = json_stringn(b, o);
    free(b);
    return j;
}

/* ---- request fields ---------------------------------------------------------- */

static const char *const chat_fields[] = {
    "messages", "model", "stream", "stream_options", "temperature", "top_p", "max_tokens",
    "max_completion_tokens", "stop", "seed", "presence_penalty", "frequency_penalty", "n",
    "user", "logprobs", "response_format", "ignore_eos", NULL};
static const char *const completion_fields[] = {
    "prompt", "suffix", "model", "stream", "stream_options", "temperature", "top_p",
    "max_tokens", "stop", "seed", "presence_penalty", "frequency_penalty", "n", "user",
    "logprobs", "echo", "ignore_eos", NULL};
static const char *const message_fields[] = {"role", "content", "reasoning_content", "name", NULL};
static const char *const part_fields[] = {"type", "text", NULL};

/* The first key of obj not in known, or NULL. */
static const char *unknown_key(json_t *obj, const char *const *known) {
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        int ok = 0;
        for (const char *const *k = known; *k && !ok; k++) ok = !strcmp(key, *k);
        if (!ok) return key;
    }
    return NULL;
}

/* An optional number field in [lo, hi] (lo_open: lo excluded) into *out. */
static int get_ranged(json_t *root, const char *key, float lo, int lo_open, float hi, float *out,
                      ApiError *e) {
    Err err;
    float v = *out;
    if (json_get_float(root, key, &v, "request", &err) != 0) return bad_field(e, key, &err);
    json_t *j = json_object_get(root, key);
    if (!j || json_is_null(j)) return 0;
    double d = json_number_value(j);
    if (!(lo_open ? d > lo : d >= lo) || !(d <= hi))
        return api_error(e, 400, key, "request: field '%s' must be %s %g and %g, got %g", key,
                         lo_open ? "greater than" : "between", lo, hi, d);
    *out = v;
    return 0;
}

/* stream and stream_options.include_usage. */
static int parse_stream(json_t *root, ApiRequest *req, ApiError *e) {
    Err err;
    if (json_get_bool(root, "stream", &req->stream, "request", &err) != 0)
        return bad_field(e, "stream", &err);
    json_t *so = json_object_get(root, "stream_options");
    if (!so || json_is_null(so)) return 0;
    if (!json_is_object(so))
        return api_error(e, 400, "stream_options",
                         "request: field 'stream_options' must be an object");
    if (!req->stream)
        return api_error(e, 400, "stream_options",
                         "request: 'stream_options' is only allowed when 'stream' is true");
    const char *bad = unknown_key(so, (const char *const[]){"include_usage", NULL});
    if (bad)
        return api_error(e, 400, "stream_options", "request: unknown field 'stream_options.%s'",
                         bad);
    if (json_get_bool(so, "include_usage", &req->include_usage, "request", &err) != 0)
        return api_error(e, 400, "stream_options.include_usage",
                         "request: field 'stream_options.include_usage' must be true or false");
    return 0;
}

/* stop: a string or an array of up to ENGINE_MAX_STOP non-empty strings. */
static int parse_stop(json_t *root, ApiRequest *req, ApiError *e) {
    json_t *s = json_object_get(root, "stop");
    if (!s || json_is_null(s)) return 0;
    if (json_is_string(s)) {
        if (!json_string_length(s))
            return api_error(e, 400, "stop", "request: field 'stop' must not be empty");
        req->params.stop[0] = json_string_value(s);
        return 0;
    }
    if (!json_is_array(s))
        return api_error(e, 400, "stop",
                         "request: field 'stop' must be a string or an array of strings");
    if (json_array_size(s) > ENGINE_MAX_STOP)
        return api_error(e, 400, "stop", "request: field 'stop' holds %zu strings; at most %d",
                         json_array_size(s), ENGINE_MAX_STOP);
    size_t i;
    json_t *v;
    json_array_foreach(s, i, v) {
        if (!json_is_string(v) || !json_string_length(v))
            return api_error(e, 400, "stop",
                             "request: field 'stop[%zu]' must be a non-empty string", i);
        req->params.stop[i] = json_string_value(v);
    }
    return 0;
}

/* max_tokens / max_completion_tokens (>= 1; both given must agree). */
static int parse_max_tokens(json_t *root, ApiRequest *req, ApiError *e) {
    static const char *const keys[] = {"max_tokens", "max_completion_tokens"};
    int got = 0;
    for (int k = 0; k < 2; k++) {
        int v = 0;
        Err err;
        if (!json_object_get(root, keys[k]) || json_is_null(json_object_get(root, keys[k])))
            continue;
        if (json_get_int(root, keys[k], &v, "request", &err) != 0)
            return bad_field(e, keys[k], &err);
        if (v < 1)
            return api_error(e, 400, keys[k], "request: field '%s' must be at least 1, got %d",
                             keys[k], v);
        if (got && v != req->params.max_tokens)
            return api_error(e, 400, keys[k],
                             "request: 'max_tokens' and 'max_completion_tokens' disagree");
        req->params.max_tokens = v;
        got = 1;
    }
    return 0;
}

/* seed: any JSON integer (its 64 bits as the RNG seed). */
static int parse_seed(json_t *root, ApiRequest *req, ApiError *e) {
    json_t *s = json_object_get(root, "seed");
    if (!s || json_is_null(s)) return 0;
    if (!json_is_integer(s))
        return api_error(e, 400, "seed", "request: field 'seed' must be an integer");
    req->params.sampling.seed = (uint64_t)json_integer_value(s);
    req->has_seed = 1;
    return 0;
}

/* The fields both routes share: model, stream, sampling, limits, and the
 * options accepted only at their default (n, logprobs, user). */
static int parse_common(json_t *root, ApiRequest *req, ApiError *e) {
    json_t *m = json_object_get(root, "model");
    if (m && !json_is_null(m)) {
        if (!json_is_string(m))
            return api_error(e, 400, "model", "request: field 'model' must be a string");
        req->model = json_string_value(m);
    }
    json_t *u = json_object_get(root, "user");
    if (u && !json_is_null(u) && !json_is_string(u))
        return api_error(e, 400, "user", "request: field 'user' must be a string");
    SamplerOpts *so = &req->params.sampling;
    so->temperature = API_DEFAULT_TEMPERATURE;
    so->top_p = API_DEFAULT_TOP_P;
    if (parse_stream(root, req, e) ||
        get_ranged(root, "temperature", 0, 0, 2, &so->temperature, e) ||
        get_ranged(root, "top_p", 0, 1, 1, &so->top_p, e) ||
        get_ranged(root, "presence_penalty", -2, 0, 2, &so->presence_penalty, e) ||
        get_ranged(root, "frequency_penalty", -2, 0, 2, &so->frequency_penalty, e) ||
        parse_max_tokens(root, req, e) || parse_stop(root, req, e) || parse_seed(root, req, e))
        return -1;
    int n = 1;
    Err err;
    /* llama-server's extension: generate through end-of-text (benchmarks) */
    if (json_get_bool(root, "ignore_eos", &req->params.ignore_eos, "request", &err) != 0)
        return bad_field(e, "ignore_eos", &err);
    if (json_get_int(root, "n", &n, "request", &err) != 0) return bad_field(e, "n", &err);
    if (n != 1)
        return api_error(e, 400, "n",
                         "request: field 'n' must be 1 (one choice per request), got %d", n);
    /* logprobs: chat has a boolean, completions an integer count; only "none" */
    json_t *lp = json_object_get(root, "logprobs");
    if (lp && !json_is_null(lp) && !json_is_false(lp) &&
        !(json_is_integer(lp) && json_integer_value(lp) == 0))
        return api_error(e, 400, "logprobs",
                         "request: field 'logprobs' is not supported (only false)");
    return 0;
}

/* ---- chat messages ----------------------------------------------------------- */

/* messages[i].content given as [{type:"text", text}, ...]: replace it in
 * msg by the texts joined with newlines. */
static int join_parts(json_t *msg, json_t *parts, size_t i, ApiError *e) {
    char where[64];
    size_t total = 0, k;
    json_t *p;
    json_array_foreach(parts, k, p) {
        snprintf(where, sizeof where, "messages[%zu].content[%zu]", i, k);
        if (!json_is_object(p))
            return api_error(e, 400, where, "request: '%s' must be an object", where);
        const char *bad = unknown_key(p, part_fields);
        if (bad) return api_error(e, 400, where, "request: '%s': unknown field '%s'", where, bad);
        json_t *t = json_object_get(p, "type");
        if (!json_is_string(t) || strcmp(json_string_value(t), "text"))
            return api_error(e, 400, where,
                             "request: '%s.type' must be \"text\" (only text parts are supported)",
                             where);
        json_t *x = json_object_get(p, "text");
        if (!json_is_string(x))
            return api_error(e, 400, where, "request: '%s.text' must be a string", where);
        total += json_string_length(x) + 1;
    }
    char *buf = malloc(total + 1);
    if (!buf) return api_error(e, 500, NULL, "out of memory");
    size_t o = 0;
    json_array_foreach(parts, k, p) {
        json_t *x = json_object_get(p, "text");
        if (k) buf[o++] = '\n';
        memcpy(buf + o, json_string_value(x), json_string_length(x));
        o += json_string_length(x);
    }
    int rc = json_object_set_new(msg, "content", json_stringn(buf, o));
    free(buf);
    return rc ? api_error(e, 500, NULL, "out of memory") : 0;
}

static int parse_message(json_t *msg, size_t i, ChatMessage *out, ApiError *e) {
    char where[64];
    snprintf(where, sizeof where, "messages[%zu]", i);
    if (!json_is_object(msg))
        return api_error(e, 400, where, "request: '%s' must be an object", where);
    const char *bad = unknown_key(msg, message_fields);
    if (bad) return api_error(e, 400, where, "request: '%s': unknown field '%s'", where, bad);
    snprintf(where, sizeof where, "messages[%zu].role", i);
    json_t *r = json_object_get(msg, "role");
    if (!json_is_string(r))
        return api_error(e, 400, where,
                         "request: '%s' must be a string (system, user or assistant)", where);
    const char *role = json_string_value(r);
    if (!strcmp(role, "developer")) role = "system"; /* OpenAI's newer name for it */
    if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant"))
        return api_error(e, 400, where,
                         "request: '%s' is \"%.32s\"; expected system, user or assistant", where,
                         role);
    int assistant = !strcmp(role, "assistant");
    snprintf(where, sizeof where, "messages[%zu].content", i);
    json_t *c = json_object_get(msg, "content");
    if (json_is_array(c)) {
        if (join_parts(msg, c, i, e) != 0) return -1;
        c = json_object_get(msg, "content");
    } else if ((!c || json_is_null(c)) && !assistant) {
        return api_error(e, 400, where, "request: '%s' is required for a %s message", where, role);
    } else if (c && !json_is_null(c) && !json_is_string(c)) {
        return api_error(e, 400, where, "request: '%s' must be a string or an array of text parts",
                         where);
    }
    static const char *const plain[] = {"reasoning_content", "name"};
    for (int k = 0; k < 2; k++) {
        json_t *v = json_object_get(msg, plain[k]);
        snprintf(where, sizeof where, "messages[%zu].%s", i, plain[k]);
        if (v && !json_is_null(v) && !json_is_string(v))
            return api_error(e, 400, where, "request: '%s' must be a string", where);
    }
    /* reasoning_content of an earlier turn is dropped, as R1's template does */
    *out = (ChatMessage){.role = role, .content = json_is_string(c) ? json_string_value(c) : NULL};
    return 0;
}

static int parse_chat(json_t *root, ApiRequest *req, ApiError *e) {
    json_t *m = json_object_get(root, "messages");
    if (!m || json_is_null(m))
        return api_error(e, 400, "messages", "request: field 'messages' is required");
    if (!json_is_array(m))
        return api_error(e, 400, "messages", "request: field 'messages' must be an array");
    size_t n = json_array_size(m);
    if (!n) return api_error(e, 400, "messages", "request: field 'messages' must not be empty");
    req->msgs = calloc(n, sizeof *req->msgs);
    if (!req->msgs) return api_error(e, 500, NULL, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (parse_message(json_array_get(m, i), i, &req->msgs[i], e) != 0) return -1;
    req->n_msgs = (int)n;
    json_t *rf = json_object_get(root, "response_format");
    if (rf && !json_is_null(rf)) {
        json_t *t = json_is_object(rf) ? json_object_get(rf, "type") : NULL;
        if (!json_is_object(rf) || json_object_size(rf) != 1 || !json_is_string(t) ||
            strcmp(json_string_value(t), "text"))
            return api_error(e, 400, "response_format",
                             "request: field 'response_format' must be {\"type\": \"text\"} (JSON "
                             "modes are not supported)");
    }
    return 0;
}

static int parse_completion(json_t *root, ApiRequest *req, ApiError *e) {
    json_t *p = json_object_get(root, "prompt");
    if (!p || json_is_null(p))
        return api_error(e, 400, "prompt", "request: field 'prompt' is required");
    if (!json_is_string(p))
        return api_error(e, 400, "prompt", "request: field 'prompt' must be a string");
    req->prompt = json_string_value(p);
    json_t *s = json_object_get(root, "suffix");
    if (s && !json_is_null(s)) {
        if (!json_is_string(s))
            return api_error(e, 400, "suffix", "request: field 'suffix' must be a string");
        req->suffix = json_string_value(s);
    }
    int echo = 0;
    Err err;
    if (json_get_bool(root, "echo", &echo, "request", &err) != 0) return bad_field(e, "echo", &err);
    if (echo)
        return api_error(e, 400, "echo", "request: field 'echo' is not supported (only false)");
    return 0;
}

int api_parse(ApiRoute route, const char *body, size_t len, ApiRequest *req, ApiError *e) {
    memset(req, 0, sizeof *req);
    req->route = route;
    size_t bad;
    if (!api_utf8_valid(body, len, &bad))
        return api_error(e, 400, NULL, "request body is not valid UTF-8 (byte %zu)", bad);
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!root)
        return api_error(e, 400, NULL, "invalid JSON at line %d column %d: %s", je.line, je.column,
                         je.text);
    req->root = root;
    if (!json_is_object(root)) {
        api_error(e, 400, NULL, "request body must be a JSON object");
        goto fail;
    }
    const char *unknown = unknown_key(root, route == API_CHAT ? chat_fields : completion_fields);
    if (unknown) {
        api_error(e, 400, unknown, "request: unknown field '%s'", unknown);
        goto fail;
    }
    if ((route == API_CHAT ? parse_chat(root, req, e) : parse_completion(root, req, e)) != 0 ||
        parse_common(root, req, e) != 0)
        goto fail;
    return 0;
fail:
    api_request_free(req);
    req->route = route;
    return -1;
}

void api_request_free(ApiRequest *req) {
    free(req->msgs);
    json_decref(req->root);
    memset(req, 0, sizeof *req);
}

/* ---- answers ------------------------------------------------------------------- */

void api_reply_init(ApiReply *r, ApiRoute route, const char *model, int reasoning,
                    long long created, uint64_t nonce) {
    memset(r, 0, sizeof *r);
    r->route = route;
    snprintf(r->id, sizeof r->id, "%s-%016llx", route == API_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)nonce);
    r->created = created;
    r->model = model;
    r->reasoning = reasoning;
}

/* Dump j (reference taken) compact, with "data: " before and "\n\n"
 * after when sse. */
static char *dump(json_t *j, int sse, size_t *len) {
    if (!j) return NULL;
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s) return NULL;
    size_t n = strlen(s);
    if (!sse) {
        if (len) *len = n;
        return s;
    }
    char *o = malloc(n + 9);
    if (o) {
        memcpy(o, "data: ", 6);
        memcpy(o + 6, s, n);
        memcpy(o + 6 + n, "\n\n", 3);
        if (len) *len = n + 8;
    }
    free(s);
    return o;
}

json_t *api_usage(const JobUsage *u) {
    return json_pack("{s:i, s:i, s:i, s:i, s:i, s:{s:i}, s:{s:i}}", "prompt_tokens",
                     u->prompt_tokens, "completion_tokens", u->completion_tokens, "total_tokens",
                     u->prompt_tokens + u->completion_tokens, "prompt_cache_hit_tokens",
                     u->cache_hit_tokens, "prompt_cache_miss_tokens", u->cache_miss_tokens,
                     "prompt_tokens_details", "cached_tokens", u->cache_hit_tokens,
                     "completion_tokens_details", "reasoning_tokens", u->reasoning_tokens);
}

/* {id, object, created, model, choices: [choice]} (choice taken). */
static json_t *envelope(const ApiReply *r, const char *object, json_t *choice) {
    json_t *choices = json_array();
    if (choice) json_array_append_new(choices, choice);
    return json_pack("{s:s, s:s, s:I, s:s, s:o}", "id", r->id, "object", object, "created",
                     (json_int_t)r->created, "model", r->model ? r->model : "", "choices", choices);
}

/* reasoning + content as one text (completions have no separate thinking). */
static json_t *joined_text(const char *a, size_t an, const char *b, size_t bn) {
    char *t = malloc(an + bn + 1);
    if (!t) return NULL;
    if (an) memcpy(t, a, an);
    if (bn) memcpy(t + an, b, bn);
    json_t *j = str_json(t, an + bn);
    free(t);
    return j;
}

static json_t *finish_json(const char *finish_reason) {
    return finish_reason ? json_string(finish_reason) : json_null();
}

char *api_reply_full(const ApiReply *r, const char *reasoning, const char *content,
                     const char *finish_reason, const JobUsage *u, size_t *len) {
    size_t rn = reasoning ? strlen(reasoning) : 0, cn = content ? strlen(content) : 0;
    json_t *choice, *j;
    if (r->route == API_CHAT) {
        json_t *msg =
            json_pack("{s:s, s:o}", "role", "assistant", "content", str_json(content, cn));
        if (msg && r->reasoning)
            json_object_set_new(msg, "reasoning_content", str_json(reasoning, rn));
        choice = json_pack("{s:i, s:o, s:n, s:o}", "index", 0, "message", msg, "logprobs",
                           "finish_reason", finish_json(finish_reason));
        j = envelope(r, "chat.completion", choice);
    } else {
        choice = json_pack("{s:o, s:i, s:n, s:o}", "text", joined_text(reasoning, rn, content, cn),
                           "index", 0, "logprobs", "finish_reason", finish_json(finish_reason));
        j = envelope(r, "text_completion", choice);
    }
    if (j) json_object_set_new(j, "usage", api_usage(u));
    return dump(j, 0, len);
}

char *api_reply_chunk(const ApiReply *r, int role, const char *reasoning, size_t reasoning_n,
                      const char *content, size_t content_n, const char *finish_reason,
                      size_t *len) {
    json_t *choice;
    if (r->route == API_CHAT) {
        json_t *delta = json_object();
        if (role) json_object_set_new(delta, "role", json_string("assistant"));
        if (reasoning)
            json_object_set_new(delta, "reasoning_content", str_json(reasoning, reasoning_n));
        if (content || role) json_object_set_new(delta, "content", str_json(content, content_n));
        choice = json_pack("{s:i, s:o, s:n, s:o}", "index", 0, "delta", delta, "logprobs",
                           "finish_reason", finish_json(finish_reason));
        return dump(envelope(r, "chat.completion.chunk", choice), 1, len);
    }
    choice = json_pack(
        "{s:o, s:i, s:n, s:o}", "text",
        joined_text(reasoning, reasoning ? reasoning_n : 0, content, content ? content_n : 0),
        "index", 0, "logprobs", "finish_reason", finish_json(finish_reason));
    return dump(envelope(r, "text_completion", choice), 1, len);
}

char *api_reply_usage_chunk(const ApiReply *r, const JobUsage *u, size_t *len) {
    json_t *j =
        envelope(r, r->route == API_CHAT ? "chat.completion.chunk" : "text_completion", NULL);
    if (j) json_object_set_new(j, "usage", api_usage(u));
    return dump(j, 1, len);
}

static json_t *error_json(const ApiError *e) {
    return json_pack("{s:{s:o, s:s, s:o, s:o}}", "error", "message",
                     str_json(e->message, strlen(e->message)), "type",
                     e->type ? e->type : "server_error", "param",
                     e->param[0] ? str_json(e->param, strlen(e->param)) : json_null(), "code",
                     e->code ? json_string(e->code) : json_null());
}

char *api_error_body(const ApiError *e, size_t *len) { return dump(error_json(e), 0, len); }

char *api_error_chunk(const ApiError *e, size_t *len) { return dump(error_json(e), 1, len); }

char *api_models_body(const char *model, long long created, size_t *len) {
    return dump(json_pack("{s:s, s:[{s:s, s:s, s:I, s:s}]}", "object", "list", "data", "id", model,
                          "object", "model", "created", (json_int_t)created, "owned_by", "whale"),
                0, len);
}

char *api_health_body(const char *model, const EngineStats *s, size_t *len) {
    return dump(json_pack("{s:s, s:s, s:{s:i, s:i}, s:i, s:{s:I, s:I, s:I, s:I}, s:I, s:f}",
                          "status", "ok", "model", model, "slots", "active", s->active, "parallel",
                          s->parallel, "queued", s->queued, "prefix_cache", "bytes",
                          (json_int_t)s->cache_bytes, "budget", (json_int_t)s->cache_budget,
                          "tokens", (json_int_t)s->cache_tokens, "prompts",
                          (json_int_t)s->cache_prompts, "kv_bytes_per_token",
                          (json_int_t)s->kv_bytes_per_token, "tokens_per_s", s->tokens_per_s),
                0, len);
}
