/* SPDX-License-Identifier: MIT */
/* SFT examples from JSONL (see sft_data.h). Where an assistant turn sits in
 * the rendered conversation is found without knowing the template: render
 * the turns up to it twice, once with its content and once with it empty;
 * the two texts differ exactly by the content as the template writes it
 * (R1's templates keep only what follows `</think>`), which sits just before
 * the template's end-of-turn marker. */
#include "rl/sft_data.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"

/* A growing token sequence with its target mask. */
typedef struct Seq {
    int32_t *ids;
    uint8_t *target;
    int n, cap;
} Seq;

static int seq_put(Seq *s, const int *ids, int n, int target, Err *err) {
    if (s->n + n > s->cap) {
        int cap = s->cap ? s->cap : 256;
        while (cap < s->n + n) cap *= 2;
        int32_t *i = realloc(s->ids, sizeof *i * (size_t)cap);
        if (i) s->ids = i;
        uint8_t *t = realloc(s->target, (size_t)cap);
        if (t) s->target = t;
        if (!i || !t) return err_set(err, "out of memory");
        s->cap = cap;
    }
    for (int k = 0; k < n; k++) {
        s->ids[s->n + k] = ids[k];
        s->target[s->n + k] = (uint8_t)(target && s->n + k > 0);
    }
    s->n += n;
    return 0;
}

/* Tokenize n bytes of text (special tokens recognised) onto s. */
static int seq_text(Seq *s, const Tokenizer *tok, const char *text, size_t n, int add_bos,
                    int target, Err *err) {
    if (n == 0 && !add_bos) return 0;
    int *ids, k;
    if (tokenizer_encode(tok, text, n, add_bos, &ids, &k, err) != 0) return -1;
    int rc = seq_put(s, ids, k, target, err);
    free(ids);
    return rc;
}

static int render(const SftEncoder *e, const ChatMessage *m, int n, char **out, size_t *len,
                  Err *err) {
    return chat_template_render(e->tmpl, m, n, 0, out, len, err);
}

/* Where the content of assistant turn i lies in the whole rendering full
 * (len bytes): bytes [*at, *at + *n), followed by the end-of-turn marker
 * eot. The turns up to i must render as the start of the whole. */
static int locate_turn(const SftEncoder *e, ChatMessage *m, int i, const char *eot,
                       const char *full, size_t len, size_t *at, size_t *n, Err *err) {
    char *with = NULL, *without = NULL;
    size_t lw, lo;
    const char *content = m[i].content;
    int rc = render(e, m, i + 1, &with, &lw, err);
    m[i].content = "";
    if (rc == 0) rc = render(e, m, i + 1, &without, &lo, err);
    m[i].content = content;
    if (rc == 0) {
        /* without = H + eot + tail, with = H + content + eot + tail */
        const char *p = NULL;
        for (const char *q = strstr(without, eot); q; q = strstr(q + 1, eot)) p = q;
        const size_t h = p ? (size_t)(p - without) : 0, tail = lo - h;
        if (!p || lw < lo || memcmp(with, without, h) != 0 ||
            memcmp(with + lw - tail, without + h, tail) != 0)
            rc = err_set(err, "messages[%d]: the %s template does not end an assistant turn "
                              "with %s", i, chat_template_name(e->tmpl), eot);
        /* a system message after the first turn moves to the front in
         * DeepSeek's templates: the turns so far are then no prefix */
        else if (lw > len || memcmp(with, full, lw) != 0)
            rc = err_set(err, "messages[%d]: the %s template does not render this conversation "
                              "turn by turn (a system message after the first turn?)",
                         i, chat_template_name(e->tmpl));
        *at = h;
        *n = lw - lo;
    }
    free(with);
    free(without);
    return rc;
}

/* The conversation rendered whole, assistant contents and their end-of-turn
 * markers as targets. */
static int encode_chat(const SftEncoder *e, ChatMessage *m, int n, Seq *s, Err *err) {
    const char *eot = chat_template_stop_strings(e->tmpl)[0];
    const size_t eot_len = strlen(eot);
    char *full = NULL;
    size_t len, pos = 0;
    int rc = render(e, m, n, &full, &len, err), turns = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        if (strcmp(m[i].role, "assistant") != 0) continue;
        size_t at, cn;
        if ((rc = locate_turn(e, m, i, eot, full, len, &at, &cn, err)) != 0) break;
        if (at < pos) {
            rc = err_set(err, "messages[%d]: the %s template renders this turn inside the "
                              "previous one", i, chat_template_name(e->tmpl));
            break;
        }
        rc = seq_text(s, e->tok, full + pos, at - pos, 0, 0, err);
        if (rc == 0) rc = seq_text(s, e->tok, full + at, cn, 0, 1, err);
        if (rc == 0) rc = seq_text(s, e->tok, full + at + cn, eot_len, 0, 1, err);
        pos = at + cn + eot_len;
        turns++;
    }
    if (rc == 0 && turns == 0) rc = err_set(err, "messages: no assistant turn to learn from");
    if (rc == 0) rc = seq_text(s, e->tok, full + pos, len - pos, 0, 0, err);
    free(full);
    return rc;
}

/* {"messages": [...]}: the roles and contents, borrowed from the JSON. */
static int parse_messages(const json_t *arr, ChatMessage **out, int *n, Err *err) {
    if (!json_is_array(arr)) return err_set(err, "field 'messages' must be an array");
    const size_t k = json_array_size(arr);
    if (k == 0) return err_set(err, "field 'messages' is empty");
    if (k > (1u << 16)) return err_set(err, "field 'messages' has more than 65536 messages");
    ChatMessage *m = calloc(k, sizeof *m);
    if (!m) return err_set(err, "out of memory");
    for (size_t i = 0; i < k; i++) {
        const json_t *msg = json_array_get(arr, i);
        const json_t *role = json_object_get(msg, "role"), *content = json_object_get(msg, "content");
        const char *r = json_string_value(role);
        int rc = 0;
        if (!json_is_object(msg)) rc = err_set(err, "messages[%zu] must be an object", i);
        else if (!role) rc = err_set(err, "messages[%zu]: field 'role' is missing", i);
        else if (!r) rc = err_set(err, "messages[%zu]: field 'role' must be a string", i);
        else if (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant"))
            rc = err_set(err, "messages[%zu]: field 'role' must be system, user or assistant, "
                              "not '%.40s'", i, r);
        else if (!content) rc = err_set(err, "messages[%zu]: field 'content' is missing", i);
        else if (!json_is_string(content))
            rc = err_set(err, "messages[%zu]: field 'content' must be a string", i);
        if (rc) {
            free(m);
            return -1;
        }
        m[i] = (ChatMessage){.role = r, .content = json_string_value(content)};
    }
    *out = m;
    *n = (int)k;
    return 0;
}

/* {"prompt": ..., "completion": ...}: BOS prompt | completion EOS. */
static int encode_completion(const SftEncoder *e, const json_t *prompt, const json_t *completion,
                             Seq *s, Err *err) {
    if (!prompt) return err_set(err, "field 'prompt' is missing (it goes with 'completion')");
    if (!completion) return err_set(err, "field 'completion' is missing (it goes with 'prompt')");
    if (!json_is_string(prompt)) return err_set(err, "field 'prompt' must be a string");
    if (!json_is_string(completion)) return err_set(err, "field 'completion' must be a string");
    const int eos = tokenizer_eos_id(e->tok);
    if (eos < 0)
        return err_set(err, "the tokenizer names no EOS token (tokenizer_config.json eos_token) "
                            "to end a completion with");
    if (seq_text(s, e->tok, json_string_value(prompt), json_string_length(prompt), 1, 0, err) ||
        seq_text(s, e->tok, json_string_value(completion), json_string_length(completion), 0, 1,
                 err))
        return -1;
    return seq_put(s, &eos, 1, 1, err);
}

int sft_encode(const SftEncoder *e, const char *json, size_t len, SftExample *ex, Err *err) {
    memset(ex, 0, sizeof *ex);
    json_error_t je;
    json_t *v = json_loadb(json, len, 0, &je);
    Seq s = {0};
    int rc = 0;
    if (!v) rc = err_set(err, "not JSON (column %d): %s", je.column, je.text);
    else if (!json_is_object(v)) rc = err_set(err, "expected a JSON object");
    else {
        const json_t *msgs = json_object_get(v, "messages"), *p = json_object_get(v, "prompt"),
                     *c = json_object_get(v, "completion");
        if (msgs && (p || c)) {
            rc = err_set(err, "has both 'messages' and '%s'", p ? "prompt" : "completion");
        } else if (msgs) {
            ChatMessage *m = NULL;
            int n = 0;
            rc = parse_messages(msgs, &m, &n, err);
            if (rc == 0) rc = encode_chat(e, m, n, &s, err);
            free(m);
        } else if (p || c) {
            rc = encode_completion(e, p, c, &s, err);
        } else {
            rc = err_set(err, "expected {\"messages\": [...]} or {\"prompt\": ..., "
                              "\"completion\": ...}");
        }
    }
    json_decref(v);
    if (rc == 0 && s.n < 2) rc = err_set(err, "%d token(s): too short to learn from", s.n);
    if (rc == 0 && s.n > e->max_len)
        rc = err_set(err, "%d tokens, longer than the context of %d (--max-len)", s.n, e->max_len);
    if (rc != 0) {
        free(s.ids);
        free(s.target);
        return -1;
    }
    ex->ids = s.ids;
    ex->target = s.target;
    ex->len = s.n;
    for (int i = 0; i < s.n; i++) ex->n_target += s.target[i];
    return 0;
}

void sft_example_free(SftExample *ex) {
    free(ex->ids);
    free(ex->target);
    memset(ex, 0, sizeof *ex);
}

static int blank_line(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') return 0;
    return 1;
}

int sft_data_load(SftData *d, const char *path, const SftEncoder *e, Err *err) {
    memset(d, 0, sizeof *d);
    MappedFile mf;
    if (mfile_open(&mf, path, err) != 0) return -1;
    const char *p = (const char *)mf.data, *end = p ? p + mf.size : p;
    int cap = 0, rc = 0;
    for (int64_t line = 1; p < end && rc == 0; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *stop = nl ? nl : end;
        const size_t n = (size_t)(stop - p);
        if (!blank_line(p, n)) {
            if (d->n == cap) {
                cap = cap ? 2 * cap : 64;
                SftExample *ex = cap < (1 << 28) ? realloc(d->ex, sizeof *ex * (size_t)cap) : NULL;
                if (!ex) {
                    rc = err_set(err, "%s: out of memory at line %lld", path, (long long)line);
                    break;
                }
                d->ex = ex;
            }
            SftExample *ex = &d->ex[d->n];
            if (sft_encode(e, p, n, ex, err) != 0) {
                rc = err_prefix(err, "%s:%lld", path, (long long)line);
                break;
            }
            ex->line = line;
            d->n++;
            d->n_tokens += ex->len;
            d->n_target += ex->n_target;
        }
        p = nl ? nl + 1 : end;
    }
    mfile_close(&mf);
    if (rc == 0 && d->n == 0) rc = err_set(err, "%s: no examples (the file is empty)", path);
    if (rc != 0) sft_data_free(d);
    return rc;
}

void sft_data_free(SftData *d) {
    for (int i = 0; d->ex && i < d->n; i++) sft_example_free(&d->ex[i]);
    free(d->ex);
    memset(d, 0, sizeof *d);
}
