/* SPDX-License-Identifier: MIT */
/* Chat templates (see chat_template.h). Each render function restates its
 * family's official Jinja template for system/user/assistant messages; the
 * comments quote the parts whose exact behaviour matters. */
#include "tokenizer/chat_template.h"

#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_json.h"

#define IM_START "<|im_start|>"
#define IM_END "<|im_end|>"
#define QWEN_DEFAULT_SYSTEM "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

static const char *const names[CHAT_N_KINDS] = {"deepseek-v3", "deepseek-r1", "r1-distill-qwen",
                                                "r1-distill-llama", "chatml"};

const char *chat_template_name(ChatTemplateKind k) {
    return (unsigned)k < CHAT_N_KINDS ? names[k] : "?";
}

const char *chat_template_names(void) {
    return "deepseek-v3 deepseek-r1 r1-distill-qwen r1-distill-llama chatml";
}

int chat_template_from_name(const char *name, ChatTemplateKind *k, Err *err) {
    for (int i = 0; i < CHAT_N_KINDS; i++)
        if (!strcmp(name, names[i])) {
            *k = (ChatTemplateKind)i;
            return 0;
        }
    return err_set(err, "unknown chat template '%s' (templates: %s)", name, chat_template_names());
}

int chat_template_detect(const char *jinja, const char *model_type, ChatTemplateKind *k) {
    if (!jinja) return -1;
    if (strstr(jinja, IM_START)) {
        *k = CHAT_CHATML;
        return 0;
    }
    if (!strstr(jinja, TOK_USER) && !strstr(jinja, TOK_ASSISTANT)) return -1;
    if (!strstr(jinja, "</think>")) *k = CHAT_DEEPSEEK_V3;
    else if (strstr(jinja, "is_first_sp")) *k = CHAT_DEEPSEEK_R1;
    else if (model_type && !strcmp(model_type, "llama")) *k = CHAT_R1_DISTILL_LLAMA;
    else *k = CHAT_R1_DISTILL_QWEN;
    return 0;
}

ChatTemplateKind chat_template_select(const char *jinja, const char *model_type,
                                      int has_user_token, int has_think_token) {
    ChatTemplateKind k;
    if (chat_template_detect(jinja, model_type, &k) == 0) return k;
    int qwen = model_type && !strcmp(model_type, "qwen2");
    int llama = model_type && !strcmp(model_type, "llama");
    if (has_user_token) {
        if (qwen) return CHAT_R1_DISTILL_QWEN;
        if (llama) return CHAT_R1_DISTILL_LLAMA;
        return has_think_token ? CHAT_DEEPSEEK_R1 : CHAT_DEEPSEEK_V3;
    }
    return qwen ? CHAT_CHATML : CHAT_DEEPSEEK_V3;
}

const char *const *chat_template_stop_strings(ChatTemplateKind k) {
    static const char *const deepseek[] = {TOK_EOS, TOK_USER, NULL};
    static const char *const chatml[] = {IM_END, "<|endoftext|>", IM_START, NULL};
    return k == CHAT_CHATML ? chatml : deepseek;
}

/* ---- a growing string ---------------------------------------------------- */

typedef struct Buf {
    char *p;
    size_t n, cap;
    int oom;
} Buf;

static void put_n(Buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void put(Buf *b, const char *s) { put_n(b, s, strlen(s)); }

/* ---- the families ---------------------------------------------------------- */

typedef enum Role { ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT } Role;

static const char *content_of(const ChatMessage *m) { return m->content ? m->content : ""; }

/* What R1's templates keep of an earlier assistant turn:
 * `{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}`,
 * i.e. everything after the last `</think>`. */
static const char *after_think(const char *s) {
    const char *p, *last = NULL;
    for (p = strstr(s, "</think>"); p; p = strstr(p + 1, "</think>")) last = p;
    return last ? last + strlen("</think>") : s;
}

/* DeepSeek-V3, R1 and R1-Distill share one shape:
 * `{{bos_token}}{{ns.system_prompt}}` then per message `'<｜User｜>' + content`
 * or `'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'`; system messages
 * render only in the collected system prompt, which V3 and R1 join with
 * '\n\n' (`ns.is_first_sp`) and R1-Distill replaces (`set ns.system_prompt =
 * message['content']`, the last one wins). The generation prompt is
 * `<｜Assistant｜>` (V3) or `<｜Assistant｜><think>\n` (R1, Distill). */
static void render_deepseek(Buf *b, ChatTemplateKind k, const ChatMessage *msgs, const Role *roles,
                            int n, int gen) {
    int r1 = k != CHAT_DEEPSEEK_V3, join = k == CHAT_DEEPSEEK_V3 || k == CHAT_DEEPSEEK_R1;
    put(b, TOK_BOS);
    if (join) {
        int first = 1;
        for (int i = 0; i < n; i++) {
            if (roles[i] != ROLE_SYSTEM) continue;
            if (!first) put(b, "\n\n");
            put(b, content_of(&msgs[i]));
            first = 0;
        }
    } else {
        const char *sys = "";
        for (int i = 0; i < n; i++)
            if (roles[i] == ROLE_SYSTEM) sys = content_of(&msgs[i]);
        put(b, sys);
    }
    for (int i = 0; i < n; i++) {
        const char *c = content_of(&msgs[i]);
        if (roles[i] == ROLE_USER) {
            put(b, TOK_USER);
            put(b, c);
        } else if (roles[i] == ROLE_ASSISTANT) {
            put(b, TOK_ASSISTANT);
            put(b, r1 ? after_think(c) : c);
            put(b, TOK_EOS);
        }
    }
    if (gen) put(b, r1 ? TOK_ASSISTANT "<think>\n" : TOK_ASSISTANT);
}

/* Qwen2.5's ChatML: the first message if it is a system one, else the
 * default system text, as `<|im_start|>system\n...<|im_end|>\n`; then every
 * user, assistant and not-first system message as
 * `'<|im_start|>' + role + '\n' + content + '<|im_end|>' + '\n'`; the
 * generation prompt is `<|im_start|>assistant\n`. */
static void render_chatml(Buf *b, const ChatMessage *msgs, const Role *roles, int n, int gen) {
    static const char *const role_names[] = {"system", "user", "assistant"};
    put(b, IM_START "system\n");
    put(b, n > 0 && roles[0] == ROLE_SYSTEM ? content_of(&msgs[0]) : QWEN_DEFAULT_SYSTEM);
    put(b, IM_END "\n");
    for (int i = 0; i < n; i++) {
        if (i == 0 && roles[i] == ROLE_SYSTEM) continue;
        put(b, IM_START);
        put(b, role_names[roles[i]]);
        put(b, "\n");
        put(b, content_of(&msgs[i]));
        put(b, IM_END "\n");
    }
    if (gen) put(b, IM_START "assistant\n");
}

int chat_template_render(ChatTemplateKind k, const ChatMessage *msgs, int n,
                         int add_generation_prompt, char **out, size_t *len, Err *err) {
    if ((unsigned)k >= CHAT_N_KINDS || n < 0) return err_set(err, "chat template: bad arguments");
    Role *roles = malloc(sizeof *roles * (size_t)(n > 0 ? n : 1));
    if (!roles) return err_set(err, "chat template: out of memory");
    for (int i = 0; i < n; i++) {
        const char *r = msgs[i].role ? msgs[i].role : "(null)";
        if (!strcmp(r, "system")) roles[i] = ROLE_SYSTEM;
        else if (!strcmp(r, "user")) roles[i] = ROLE_USER;
        else if (!strcmp(r, "assistant")) roles[i] = ROLE_ASSISTANT;
        else {
            free(roles);
            return err_set(err,
                           "chat template %s: message %d has role '%.64s' (only system, user "
                           "and assistant are supported)",
                           names[k], i + 1, r);
        }
    }
    Buf b = {0};
    put(&b, ""); /* an empty conversation still yields a string */
    if (k == CHAT_CHATML) render_chatml(&b, msgs, roles, n, add_generation_prompt);
    else render_deepseek(&b, k, msgs, roles, n, add_generation_prompt);
    free(roles);
    if (b.oom) {
        free(b.p);
        return err_set(err, "chat template: out of memory");
    }
    *out = b.p;
    if (len) *len = b.n;
    return 0;
}
