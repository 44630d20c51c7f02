/* SPDX-License-Identifier: MIT */
/* The API schema of whale serve (serve/api.h) on its own: every refusal
 * has status 400 and names the field at fault (tests/serve_cases.h, the
 * same table test_serve_http.c sends to a running server), the accepted
 * request reads back field for field, the UTF-8 check finds the first bad
 * byte, and answers, stream chunks, errors, /v1/models and /health have
 * the OpenAI shape. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "serve/api.h"
#include "serve_cases.h"

TestSuite(serve);

Test(serve, api_refuses_each_bad_field_by_name) {
    for (int i = 0; i < N_BAD; i++) {
        const BadBody *b = &bad_bodies[i];
        ApiRequest q;
        ApiError e;
        memset(&e, 0, sizeof e);
        int rc = api_parse(b->route, b->body, strlen(b->body), &q, &e);
        cr_expect_eq(rc, -1, "case %d (%s) was accepted", i, b->body);
        if (rc == 0) {
            api_request_free(&q);
            continue;
        }
        char why[1024];
        cr_expect_eq(bad_matches(b, e.status, e.param, e.message, why, sizeof why), 0,
                     "case %d (%s): %s", i, b->body, why);
        cr_expect_null(q.root, "case %d: a refused request holds its JSON", i);
        cr_expect_str_eq(e.type, "invalid_request_error", "case %d", i);
    }
}

Test(serve, api_errors_stay_valid_utf8_when_cut) {
    /* an unknown field of 40 two-byte characters: the 64-byte param is cut
     * at a character boundary, and the error body is JSON */
    char body[256] = "{\"";
    for (int i = 0; i < 40; i++) strcat(body, "\xc3\xa9");
    strcat(body, "\":1}");
    ApiRequest q;
    ApiError e;
    cr_assert_eq(api_parse(API_CHAT, body, strlen(body), &q, &e), -1);
    cr_expect_eq(strlen(e.param), 62, "param of %zu bytes", strlen(e.param));
    cr_expect(api_utf8_valid(e.param, strlen(e.param), NULL), "param cut inside a character");
    char *text = api_error_body(&e, NULL);
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    cr_expect(j, "the error body is not JSON: %s", text ? text : "(null)");
    json_decref(j);
    free(text);
}

Test(serve, api_reads_back_an_openai_request) {
    const char *body =
        "{\"model\":\"m\",\"messages\":["
        "{\"role\":\"developer\",\"content\":\"be brief\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\","
        "\"text\":\"b\"}],\"name\":\"x\"},"
        "{\"role\":\"assistant\",\"content\":null,\"reasoning_content\":\"hmm\"},"
        "{\"role\":\"user\",\"content\":\"\xc3\xa9t\xc3\xa9 \xf0\x9f\x90\xb3\"}],"
        "\"temperature\":0.5,\"top_p\":0.9,\"max_completion_tokens\":7,\"max_tokens\":7,"
        "\"stop\":[\"x\",\"yz\"],\"seed\":1099511627776,\"presence_penalty\":-1.5,"
        "\"frequency_penalty\":2,\"n\":1,\"user\":\"u\",\"logprobs\":false,"
        "\"response_format\":{\"type\":\"text\"},\"stream\":true,"
        "\"stream_options\":{\"include_usage\":true},\"ignore_eos\":true}";
    ApiRequest q;
    ApiError e;
    cr_assert_eq(api_parse(API_CHAT, body, strlen(body), &q, &e), 0, "refused: %s", e.message);
    cr_expect_str_eq(q.model, "m");
    cr_assert_eq(q.n_msgs, 4);
    cr_expect_str_eq(q.msgs[0].role, "system");
    cr_expect_str_eq(q.msgs[0].content, "be brief");
    cr_expect_str_eq(q.msgs[1].content, "a\nb");
    cr_expect_str_eq(q.msgs[2].role, "assistant");
    cr_expect_null(q.msgs[2].content);
    cr_expect_null(q.msgs[2].reasoning_content, "earlier thinking is dropped");
    cr_expect_str_eq(q.msgs[3].content, "\xc3\xa9t\xc3\xa9 \xf0\x9f\x90\xb3");
    cr_expect_float_eq(q.params.sampling.temperature, 0.5f, 1e-6);
    cr_expect_float_eq(q.params.sampling.top_p, 0.9f, 1e-6);
    cr_expect_float_eq(q.params.sampling.presence_penalty, -1.5f, 1e-6);
    cr_expect_float_eq(q.params.sampling.frequency_penalty, 2.0f, 1e-6);
    cr_expect_eq(q.params.max_tokens, 7);
    cr_expect_str_eq(q.params.stop[0], "x");
    cr_expect_str_eq(q.params.stop[1], "yz");
    cr_expect_null(q.params.stop[2]);
    cr_expect(q.has_seed && q.params.sampling.seed == 1099511627776ull);
    cr_expect(q.stream && q.include_usage && q.params.ignore_eos);
    api_request_free(&q);

    /* nothing said: OpenAI's defaults; null is "not given" */
    const char *plain =
        "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":null,"
        "\"stop\":\"END\"}";
    cr_assert_eq(api_parse(API_CHAT, plain, strlen(plain), &q, &e), 0, "refused: %s", e.message);
    cr_expect_float_eq(q.params.sampling.temperature, API_DEFAULT_TEMPERATURE, 1e-6);
    cr_expect_float_eq(q.params.sampling.top_p, API_DEFAULT_TOP_P, 1e-6);
    cr_expect(!q.has_seed && !q.stream && !q.include_usage && q.params.max_tokens == 0 &&
              !q.params.ignore_eos);
    cr_expect(!q.model);
    cr_expect_str_eq(q.params.stop[0], "END");
    cr_expect_null(q.params.stop[1]);
    api_request_free(&q);

    const char *fim = "{\"prompt\":\"def f(\",\"suffix\":\"):\",\"max_tokens\":3,\"echo\":false,"
                      "\"logprobs\":null}";
    cr_assert_eq(api_parse(API_COMPLETION, fim, strlen(fim), &q, &e), 0, "refused: %s", e.message);
    cr_expect_str_eq(q.prompt, "def f(");
    cr_expect_str_eq(q.suffix, "):");
    cr_expect_eq(q.params.max_tokens, 3);
    api_request_free(&q);
    api_request_free(&q); /* a zeroed request frees again */
}

Test(serve, utf8_check_finds_the_first_bad_byte) {
    static const struct {
        const char *s;
        int ok;
        size_t bad;
    } cases[] = {
        {"", 1, 0},
        {"plain", 1, 0},
        {"\xc3\xa9", 1, 0},
        {"\xf0\x9f\x90\xb3", 1, 0},
        {"\xef\xbf\xbd", 1, 0},
        {"\xf4\x8f\xbf\xbf", 1, 0},
        {"ab\xc3", 0, 2},
        {"\xc1\xbf", 0, 0},
        {"a\xe0\x9f\x80", 0, 1},
        {"\xed\xa0\x80", 0, 0},
        {"\xf4\x90\x80\x80", 0, 0},
        {"\xf5\x80\x80\x80", 0, 0},
        {"\x80", 0, 0},
        {"ok\xc3\x28", 0, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t bad = 99;
        int ok = api_utf8_valid(cases[i].s, strlen(cases[i].s), &bad);
        cr_expect_eq(ok, cases[i].ok, "case %zu", i);
        if (!cases[i].ok) cr_expect_eq(bad, cases[i].bad, "case %zu: bad byte at %zu", i, bad);
    }
}

/* Parse built text (a JSON object, or one SSE event when sse) and free it. */
static json_t *parsed(char *text, int sse) {
    cr_assert(text, "a builder returned NULL");
    const char *j = text;
    if (sse) {
        size_t n = strlen(text);
        cr_assert(!strncmp(text, "data: ", 6) && n > 8 && !strcmp(text + n - 2, "\n\n"),
                  "not one SSE event: %s", text);
        j += 6;
    }
    json_error_t je;
    json_t *v = json_loads(j, JSON_DISABLE_EOF_CHECK, &je);
    cr_assert(v, "not JSON (%s): %s", je.text, text);
    free(text);
    return v;
}

Test(serve, api_answers_have_the_openai_shape) {
    ApiReply r;
    api_reply_init(&r, API_CHAT, "whale-tiny", 1, 1700000000, 0xabcdefull);
    JobUsage u = {.prompt_tokens = 10,
                  .completion_tokens = 5,
                  .reasoning_tokens = 3,
                  .cache_hit_tokens = 4,
                  .cache_miss_tokens = 6};
    json_t *j = parsed(api_reply_full(&r, "think", "answer", "stop", &u, NULL), 0);
    cr_expect_str_eq(jstr(j, "object"), "chat.completion");
    cr_expect(!strncmp(jstr(j, "id"), "chatcmpl-", 9));
    cr_expect_str_eq(jstr(j, "model"), "whale-tiny");
    cr_expect_eq(jint(j, "created", NULL), 1700000000);
    cr_expect_str_eq(jstr(j, "choices.0.message.role"), "assistant");
    cr_expect_str_eq(jstr(j, "choices.0.message.content"), "answer");
    cr_expect_str_eq(jstr(j, "choices.0.message.reasoning_content"), "think");
    cr_expect_str_eq(jstr(j, "choices.0.finish_reason"), "stop");
    json_t *us = json_object_get(j, "usage");
    cr_expect_eq(jint(us, "prompt_tokens", NULL), 10);
    cr_expect_eq(jint(us, "completion_tokens", NULL), 5);
    cr_expect_eq(jint(us, "total_tokens", NULL), 15);
    cr_expect_eq(jint(us, "prompt_cache_hit_tokens", NULL), 4);
    cr_expect_eq(jint(us, "prompt_cache_miss_tokens", NULL), 6);
    cr_expect_eq(jint(us, "prompt_tokens_details", "cached_tokens"), 4);
    cr_expect_eq(jint(us, "completion_tokens_details", "reasoning_tokens"), 3);
    json_decref(j);

    /* no reasoning model: no reasoning_content; bad bytes become U+FFFD */
    api_reply_init(&r, API_CHAT, "m", 0, 1, 2);
    j = parsed(api_reply_full(&r, NULL,
                              "a\xff"
                              "b",
                              "length", &u, NULL),
               0);
    cr_expect_null(json_object_get(
        json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message"),
        "reasoning_content"));
    cr_expect_str_eq(jstr(j, "choices.0.message.content"), "a\xef\xbf\xbd"
                                                           "b");
    json_decref(j);

    /* completions: one text */
    api_reply_init(&r, API_COMPLETION, "m", 0, 1, 2);
    j = parsed(api_reply_full(&r, "<think>x</think>", "y", "stop", &u, NULL), 0);
    cr_expect_str_eq(jstr(j, "object"), "text_completion");
    cr_expect(!strncmp(jstr(j, "id"), "cmpl-", 5));
    cr_expect_str_eq(jstr(j, "choices.0.text"), "<think>x</think>y");
    json_decref(j);

    /* stream chunks */
    api_reply_init(&r, API_CHAT, "m", 1, 1, 2);
    j = parsed(api_reply_chunk(&r, 1, NULL, 0, NULL, 0, NULL, NULL), 1);
    cr_expect_str_eq(jstr(j, "object"), "chat.completion.chunk");
    cr_expect_str_eq(jstr(j, "choices.0.delta.role"), "assistant");
    cr_expect(json_is_null(
        json_object_get(json_array_get(json_object_get(j, "choices"), 0), "finish_reason")));
    json_decref(j);
    j = parsed(api_reply_chunk(&r, 0, "th", 2, NULL, 0, NULL, NULL), 1);
    cr_expect_str_eq(jstr(j, "choices.0.delta.reasoning_content"), "th");
    cr_expect_null(jstr(j, "choices.0.delta.content"));
    json_decref(j);
    j = parsed(api_reply_chunk(&r, 0, NULL, 0, "ansXX", 3, NULL, NULL), 1);
    cr_expect_str_eq(jstr(j, "choices.0.delta.content"), "ans");
    json_decref(j);
    j = parsed(api_reply_chunk(&r, 0, NULL, 0, NULL, 0, "stop", NULL), 1);
    cr_expect_str_eq(jstr(j, "choices.0.finish_reason"), "stop");
    cr_expect_eq(json_object_size(
                     json_object_get(json_array_get(json_object_get(j, "choices"), 0), "delta")),
                 0);
    json_decref(j);
    j = parsed(api_reply_usage_chunk(&r, &u, NULL), 1);
    cr_expect_eq(json_array_size(json_object_get(j, "choices")), 0);
    cr_expect_eq(jint(j, "usage", "total_tokens"), 15);
    json_decref(j);

    /* errors, models, health */
    ApiError e;
    api_error(&e, 401, NULL, "no key %d", 7);
    j = parsed(api_error_body(&e, NULL), 0);
    cr_expect_str_eq(jstr(j, "error.message"), "no key 7");
    cr_expect_str_eq(jstr(j, "error.type"), "authentication_error");
    cr_expect(json_is_null(json_object_get(json_object_get(j, "error"), "param")));
    cr_expect(json_is_null(json_object_get(json_object_get(j, "error"), "code")));
    json_decref(j);
    api_error(&e, 400, "top_p", "x");
    e.code = "c";
    j = parsed(api_error_chunk(&e, NULL), 1);
    cr_expect_str_eq(jstr(j, "error.param"), "top_p");
    cr_expect_str_eq(jstr(j, "error.code"), "c");
    json_decref(j);
    j = parsed(api_models_body("whale-tiny", 5, NULL), 0);
    cr_expect_str_eq(jstr(j, "object"), "list");
    cr_expect_str_eq(jstr(j, "data.0.id"), "whale-tiny");
    cr_expect_str_eq(jstr(j, "data.0.object"), "model");
    json_decref(j);
    EngineStats st = {.active = 1,
                      .queued = 2,
                      .parallel = 4,
                      .cache_bytes = 100,
                      .cache_budget = 1000,
                      .cache_tokens = 7,
                      .cache_prompts = 1};
    j = parsed(api_health_body("whale-tiny", &st, NULL), 0);
    cr_expect_str_eq(jstr(j, "status"), "ok");
    cr_expect_eq(jint(j, "slots", "active"), 1);
    cr_expect_eq(jint(j, "slots", "parallel"), 4);
    cr_expect_eq(jint(j, "queued", NULL), 2);
    cr_expect_eq(jint(j, "prefix_cache", "tokens"), 7);
    json_decref(j);
}
