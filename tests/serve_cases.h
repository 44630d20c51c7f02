/* SPDX-License-Identifier: MIT */
/* What the serving tests share: the request bodies the API schema must
 * refuse (each with the field it must name), checked by test_serve.c
 * against api_parse and by test_serve_http.c against a running server,
 * and small readers of JSON answers. Header-only, static. */
#ifndef WHALE_TESTS_SERVE_CASES_H
#define WHALE_TESTS_SERVE_CASES_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/api.h"

#define C API_CHAT
#define P API_COMPLETION
#define MSG "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"

/* A body the schema refuses: the field it must name ("" for none) and a
 * word its message must hold. */
typedef struct BadBody {
    ApiRoute route;
    const char *body;
    const char *param;
    const char *needle;
} BadBody;

static const BadBody bad_bodies[] = {
    {C, "", "", "JSON"},
    {C, "{", "", "JSON"},
    {C, "{\"messages\":[}", "", "line 1 column"},
    {C, "{" MSG ",}", "", "JSON"},
    {C, "{" MSG "}{}", "", "JSON"},
    {C, "{'messages':[]}", "", "JSON"},
    {C, "{" MSG ",\"temperature\":NaN}", "", "JSON"},
    {C, "{" MSG ",\"temperature\":1e999}", "", "JSON"},
    {C, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\\u0000b\"}]}", "", "JSON"},
    {C, "{\"messages\":[{\"role\":\"user\",\"content\":\"\\ud800\"}]}", "", "JSON"},
    {C, "{" MSG "," MSG "}", "", "duplicate"},
    {C, "[]", "", "object"},
    {C, "\"hello\"", "", "object"},
    {C, "42", "", "object"},
    {C, "null", "", "object"},
    {C, "\xff", "", "UTF-8"},
    {C, "{\"messages\":[{\"role\":\"user\",\"content\":\"\xc0\x80\"}]}", "", "UTF-8"},
    {C, "{\"messages\":[{\"role\":\"user\",\"content\":\"\xed\xa0\x80\"}]}", "", "UTF-8"},
    {C, "{\"messages\":[{\"role\":\"user\",\"content\":\"\xf4\x90\x80\x80\"}]}", "", "UTF-8"},
    {C, "{\"messages\":[{\"role\":\"user\",\"content\":\"\xe2\x82\"}]}", "", "UTF-8"},
    {C, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}\x80", "", "UTF-8"},
    {C, "{}", "messages", "messages"},
    {C, "{\"messages\":null}", "messages", "required"},
    {C, "{\"messages\":[]}", "messages", "empty"},
    {C, "{\"messages\":5}", "messages", "array"},
    {C, "{\"messages\":{\"role\":\"user\"}}", "messages", "array"},
    {C, "{\"messages\":[5]}", "messages[0]", "messages[0]"},
    {C, "{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}", "messages[0].role", "tool"},
    {C, "{\"messages\":[{\"role\":5,\"content\":\"x\"}]}", "messages[0].role", "role"},
    {C, "{\"messages\":[{\"content\":\"x\"}]}", "messages[0].role", "role"},
    {C, "{\"messages\":[{\"role\":\"user\"}]}", "messages[0].content", "required"},
    {C, "{\"messages\":[{\"role\":\"user\",\"content\":null}]}", "messages[0].content", "content"},
    {C, "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", "messages[0].content", "content"},
    {C, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":{}}]}",
     "messages[1].content", "messages[1].content"},
    {C, "{\"messages\":[{\"role\":\"user\",\"content\":[5]}]}", "messages[0].content[0]",
     "content[0]"},
    {C,
     "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{}}]}]}",
     "messages[0].content[0]", "image_url"},
    {C, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"text\":\"x\"}]}]}",
     "messages[0].content[0]", "type"},
    {C, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":5}]}]}",
     "messages[0].content[0]", "text"},
    {C, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"tool_calls\":[]}]}", "messages[0]",
     "tool_calls"},
    {C, "{\"messages\":[{\"role\":\"assistant\",\"content\":\"x\",\"reasoning_content\":5}]}",
     "messages[0].reasoning_content", "reasoning_content"},
    {C, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"name\":[]}]}", "messages[0].name",
     "name"},
    {C, "{" MSG ",\"tools\":[]}", "tools", "tools"},
    {C, "{" MSG ",\"prompt\":\"x\"}", "prompt", "prompt"},
    {C, "{" MSG ",\"suffix\":\"x\"}", "suffix", "suffix"},
    {C, "{" MSG ",\"temperature\":\"hot\"}", "temperature", "temperature"},
    {C, "{" MSG ",\"temperature\":true}", "temperature", "temperature"},
    {C, "{" MSG ",\"temperature\":2.5}", "temperature", "between"},
    {C, "{" MSG ",\"temperature\":-0.1}", "temperature", "temperature"},
    {C, "{" MSG ",\"top_p\":0}", "top_p", "top_p"},
    {C, "{" MSG ",\"top_p\":1.5}", "top_p", "top_p"},
    {C, "{" MSG ",\"top_p\":[]}", "top_p", "top_p"},
    {C, "{" MSG ",\"max_tokens\":0}", "max_tokens", "max_tokens"},
    {C, "{" MSG ",\"max_tokens\":-5}", "max_tokens", "max_tokens"},
    {C, "{" MSG ",\"max_tokens\":1.5}", "max_tokens", "integer"},
    {C, "{" MSG ",\"max_tokens\":\"10\"}", "max_tokens", "max_tokens"},
    {C, "{" MSG ",\"max_tokens\":1000000000000}", "max_tokens", "range"},
    {C, "{" MSG ",\"max_completion_tokens\":-1}", "max_completion_tokens", "max_completion_tokens"},
    {C, "{" MSG ",\"max_tokens\":5,\"max_completion_tokens\":6}", "max_completion_tokens",
     "disagree"},
    {C, "{" MSG ",\"stop\":5}", "stop", "stop"},
    {C, "{" MSG ",\"stop\":\"\"}", "stop", "stop"},
    {C, "{" MSG ",\"stop\":[\"\"]}", "stop", "stop[0]"},
    {C, "{" MSG ",\"stop\":[\"a\",1]}", "stop", "stop[1]"},
    {C, "{" MSG ",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", "stop", "at most 4"},
    {C, "{" MSG ",\"seed\":1.5}", "seed", "seed"},
    {C, "{" MSG ",\"seed\":\"1\"}", "seed", "seed"},
    {C, "{" MSG ",\"presence_penalty\":2.5}", "presence_penalty", "presence_penalty"},
    {C, "{" MSG ",\"presence_penalty\":{}}", "presence_penalty", "presence_penalty"},
    {C, "{" MSG ",\"frequency_penalty\":-3}", "frequency_penalty", "frequency_penalty"},
    {C, "{" MSG ",\"n\":2}", "n", "'n'"},
    {C, "{" MSG ",\"n\":\"1\"}", "n", "'n'"},
    {C, "{" MSG ",\"logprobs\":true}", "logprobs", "logprobs"},
    {C, "{" MSG ",\"logprobs\":\"no\"}", "logprobs", "logprobs"},
    {C, "{" MSG ",\"response_format\":{\"type\":\"json_object\"}}", "response_format",
     "response_format"},
    {C, "{" MSG ",\"response_format\":\"text\"}", "response_format", "response_format"},
    {C, "{" MSG ",\"stream\":\"yes\"}", "stream", "stream"},
    {C, "{" MSG ",\"stream\":1}", "stream", "stream"},
    {C, "{" MSG ",\"stream_options\":{\"include_usage\":true}}", "stream_options", "stream"},
    {C, "{" MSG ",\"stream\":true,\"stream_options\":5}", "stream_options", "stream_options"},
    {C, "{" MSG ",\"stream\":true,\"stream_options\":{\"x\":1}}", "stream_options", "x"},
    {C, "{" MSG ",\"stream\":true,\"stream_options\":{\"include_usage\":\"y\"}}",
     "stream_options.include_usage", "include_usage"},
    {C, "{" MSG ",\"model\":5}", "model", "model"},
    {C, "{" MSG ",\"user\":5}", "user", "user"},
    {C, "{" MSG ",\"ignore_eos\":\"yes\"}", "ignore_eos", "ignore_eos"},
    {P, "{}", "prompt", "prompt"},
    {P, "{\"prompt\":5}", "prompt", "prompt"},
    {P, "{\"prompt\":[\"a\"]}", "prompt", "prompt"},
    {P, "{\"prompt\":\"a\",\"suffix\":5}", "suffix", "suffix"},
    {P, "{\"prompt\":\"a\",\"echo\":true}", "echo", "echo"},
    {P, "{\"prompt\":\"a\",\"echo\":\"x\"}", "echo", "echo"},
    {P, "{\"prompt\":\"a\",\"logprobs\":5}", "logprobs", "logprobs"},
    {P, "{" MSG "}", "messages", "messages"},
    {P, "{\"prompt\":\"a\",\"max_completion_tokens\":5}", "max_completion_tokens",
     "max_completion_tokens"},
    {P, "{\"prompt\":\"a\",\"best_of\":2}", "best_of", "best_of"},
    {P, "{\"prompt\":\"a\",\"temperature\":3}", "temperature", "temperature"},
    {P, "{\"prompt\":\"a\",\"stop\":[1]}", "stop", "stop"},
    {P, "[\"prompt\"]", "", "object"},
    {P, "{\"prompt\":\"\xfe\"}", "", "UTF-8"},
};
#define N_BAD ((int)(sizeof bad_bodies / sizeof *bad_bodies))
#undef C
#undef P
#undef MSG

/* Check one refusal against its expectation; 0 when it matches, else the
 * reason in why. */
static inline int bad_matches(const BadBody *b, int status, const char *param, const char *message,
                              char *why, size_t n) {
    if (status != 400) return snprintf(why, n, "status %d, expected 400 (%s)", status, message), -1;
    if (strcmp(param, b->param))
        return snprintf(why, n, "param \"%s\", expected \"%s\" (%s)", param, b->param, message), -1;
    if (!strstr(message, b->needle))
        return snprintf(why, n, "message \"%s\" lacks \"%s\"", message, b->needle), -1;
    return 0;
}

/* The string at a dotted path of o ("choices.0.delta.content"), or NULL. */
static inline const char *jstr(json_t *o, const char *path) {
    json_t *v = o;
    char key[64];
    for (const char *p = path; v && *p;) {
        size_t k = strcspn(p, ".");
        snprintf(key, sizeof key, "%.*s", (int)k, p);
        v = (key[0] >= '0' && key[0] <= '9') ? json_array_get(v, (size_t)atoi(key))
                                             : json_object_get(v, key);
        p += k + (p[k] == '.');
    }
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static inline long long jint(json_t *o, const char *a, const char *b) {
    json_t *v = json_object_get(o, a);
    if (b) v = json_object_get(v, b);
    return json_is_integer(v) ? (long long)json_integer_value(v) : -999;
}

#endif
