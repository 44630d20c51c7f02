/* SPDX-License-Identifier: MIT */
/* libFuzzer entry for whale serve's request schema (serve/api.h): any byte
 * string, as the body of either route, must parse or be refused with a
 * 400 naming what is wrong; an accepted request must keep its promises
 * (at least one message with a known role for chat, a prompt for
 * completions, sampling fields in their ranges, at most 4 non-empty stop
 * strings), and every answer built from its fields must be valid JSON. The
 * first input byte picks the route. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_accepted(const ApiRequest *q) {
    if (q->route == API_CHAT) {
        if (q->n_msgs < 1 || !q->msgs) abort();
        for (int i = 0; i < q->n_msgs; i++) {
            const char *r = q->msgs[i].role;
            if (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant")) abort();
        }
    } else if (!q->prompt) {
        abort();
    }
    const SamplerOpts *s = &q->params.sampling;
    if (!(s->temperature >= 0 && s->temperature <= 2) || !(s->top_p > 0 && s->top_p <= 1) ||
        !(s->presence_penalty >= -2 && s->presence_penalty <= 2) ||
        !(s->frequency_penalty >= -2 && s->frequency_penalty <= 2) || q->params.max_tokens < 0)
        abort();
    for (int i = 0; i < ENGINE_MAX_STOP && q->params.stop[i]; i++)
        if (!q->params.stop[i][0]) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    ApiRoute route = data[0] & 1 ? API_COMPLETION : API_CHAT;
    ApiRequest q;
    ApiError e;
    memset(&e, 0, sizeof e);
    if (api_parse(route, (const char *)data + 1, size - 1, &q, &e) != 0) {
        if (e.status != 400 || !e.message[0] || q.root) abort();
        char *body = api_error_body(&e, NULL);
        json_t *j = body ? json_loads(body, 0, NULL) : NULL;
        if (!j) abort();
        json_decref(j);
        free(body);
        return 0;
    }
    check_accepted(&q);
    /* echo the request's texts back through the answer builders */
    ApiReply r;
    api_reply_init(&r, route, q.model ? q.model : "m", 1, 0, size);
    const char *text = route == API_CHAT ? q.msgs[0].content : q.prompt;
    JobUsage u = {0};
    char *full = api_reply_full(&r, text, q.suffix, "stop", &u, NULL);
    json_t *j = full ? json_loads(full, 0, NULL) : NULL;
    if (!j) abort();
    json_decref(j);
    free(full);
    api_request_free(&q);
    return 0;
}
