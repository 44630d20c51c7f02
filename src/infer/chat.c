/* SPDX-License-Identifier: MIT */
/* Chat sessions and the thinking-aware printer (see chat.h). */
#include "infer/chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "io/gguf.h"
#include "model/gguf_vocab.h"
#include "tokenizer/tokenizer_json.h"

static int push_msg(ChatSession *s, const char *role, const char *content, size_t len,
                    Err *err) {
    if (s->n_msgs == s->cap_msgs) {
        int cap = s->cap_msgs ? 2 * s->cap_msgs : 16;
        ChatMessage *m = realloc(s->msgs, sizeof *m * (size_t)cap);
        if (!m) return err_set(err, "out of memory for the conversation");
        s->msgs = m, s->cap_msgs = cap;
    }
    char *c = malloc(len + 1);
    if (!c) return err_set(err, "out of memory for the conversation");
    memcpy(c, content, len);
    c[len] = 0;
    s->msgs[s->n_msgs++] = (ChatMessage){.role = role, .content = c};
    return 0;
}

static void pop_msg(ChatSession *s) {
    free((char *)s->msgs[--s->n_msgs].content);
}

/* The tokenizer of a model: a .gguf's own tokenizer metadata (written as a
 * tokenizer.json into a temporary directory and loaded from there), else,
 * or when the GGUF holds none, the tokenizer.json in dir. */
static Tokenizer *load_tokenizer(const char *path, const char *dir, Err *err) {
    if (!path_has_suffix(path, ".gguf")) return tokenizer_load(dir, err);
    const char *tmpdir = getenv("TMPDIR");
    char tmp[4096], file[4200];
    snprintf(tmp, sizeof tmp, "%s/whale-tok-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(tmp)) {
        err_set(err, "%s: cannot create a temporary directory for the tokenizer", tmp);
        return NULL;
    }
    GgufFile g;
    Tokenizer *tok = NULL;
    int rc = gguf_open(&g, path, err);
    if (rc == 0) {
        rc = gguf_vocab_to_hf(&g, tmp, err);
        gguf_close(&g);
    }
    if (rc == 0) tok = tokenizer_load(tmp, err);
    else if (rc == 1) tok = tokenizer_load(dir, err); /* no tokenizer in the GGUF */
    const char *names[] = {"tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 2; i++) {
        snprintf(file, sizeof file, "%s/%s", tmp, names[i]);
        unlink(file);
    }
    rmdir(tmp);
    return tok;
}

int chat_open(ChatSession *s, const char *path, const ChatOpts *o, Err *err) {
    memset(s, 0, sizeof *s);
    ChatOpts d = {0};
    if (!o) o = &d;
    if (model_open(&s->model, path, err) != 0) {
        memset(s, 0, sizeof *s);
        return -1;
    }
    weights_prepare_inference(&s->model.w, &s->model.cfg);
    char dir[4096];
    path_dir_of(path, dir, sizeof dir);
    s->tok = load_tokenizer(path, dir, err);
    if (!s->tok) goto fail;
    if (o->template_name) {
        if (chat_template_from_name(o->template_name, &s->tmpl, err) != 0) goto fail;
    } else {
        s->tmpl = chat_template_select(tokenizer_chat_template(s->tok), s->model.cfg.model_type,
                                       tokenizer_token_id(s->tok, TOK_USER) >= 0,
                                       tokenizer_token_id(s->tok, "<think>") >= 0);
    }
    if (gen_init(&s->gen, &s->model, s->tok, &o->gen, err) != 0) goto fail;
    if (gen_load_generation_config(&s->gen, path, err) != 0) goto fail;
    if (!o->raw)
        for (const char *const *t = chat_template_stop_strings(s->tmpl); *t; t++)
            gen_add_stop_token(&s->gen, *t);
    if (o->system && o->system[0] && push_msg(s, "system", o->system, strlen(o->system), err))
        goto fail;
    return 0;
fail:
    chat_close(s);
    return -1;
}

void chat_close(ChatSession *s) {
    while (s->n_msgs) pop_msg(s);
    free(s->msgs);
    free(s->prompt);
    gen_free(&s->gen);
    tokenizer_free(s->tok);
    if (s->model.cfg.vocab_size) model_free(&s->model);
    memset(s, 0, sizeof *s);
}

void chat_reset(ChatSession *s) {
    int keep = s->n_msgs > 0 && !strcmp(s->msgs[0].role, "system");
    while (s->n_msgs > keep) pop_msg(s);
}

int chat_turn(ChatSession *s, const char *user_text, int max_tokens,
              volatile sig_atomic_t *interrupt, GenEmit emit, void *ud, GenResult *res,
              Err *err) {
    if (push_msg(s, "user", user_text, strlen(user_text), err) != 0) return -1;
    free(s->prompt);
    s->prompt = NULL;
    if (chat_template_render(s->tmpl, s->msgs, s->n_msgs, 1, &s->prompt, &s->prompt_len, err) !=
            0 ||
        gen_run(&s->gen, s->prompt, s->prompt_len, 0, max_tokens, interrupt, emit, ud, res, err) !=
            0) {
        pop_msg(s);
        return -1;
    }
    /* The R1 templates keep only what follows an assistant turn's last
     * </think>; keeping just the answer renders the same for a finished
     * reply and drops a reply cut off while still thinking. */
    int r1 = s->tmpl != CHAT_DEEPSEEK_V3 && s->tmpl != CHAT_CHATML;
    if (r1 ? push_msg(s, "assistant", res->answer, res->answer_len, err)
           : push_msg(s, "assistant", res->text, res->text_len, err))
        return -1;
    return 0;
}

/* ---- the printer ------------------------------------------------------------ */

#define DIM "\x1b[2m"
#define RESET "\x1b[0m"

void chat_printer_init(ChatPrinter *p, FILE *f, int ansi) {
    memset(p, 0, sizeof *p);
    p->f = f;
    p->ansi = ansi;
}

void chat_printer_emit(void *printer, GenPart part, const char *s, size_t n) {
    ChatPrinter *p = printer;
    if (part == GEN_THINKING && !p->in_think) {
        if (p->ansi) fputs(DIM, p->f);
        else fputs(p->wrote ? "\n[thinking]\n" : "[thinking]\n", p->f);
        p->in_think = p->thought = p->at_start = 1;
    } else if (part == GEN_ANSWER && p->in_think) {
        fputs(p->ansi ? RESET "\n\n" : "\n[answer]\n", p->f);
        p->in_think = 0;
        p->at_start = 1;
    }
    if (p->at_start) {
        while (n && (*s == '\n' || *s == '\r')) s++, n--;
        if (!n) return;
        p->at_start = 0;
    }
    fwrite(s, 1, n, p->f);
    p->wrote = 1;
    fflush(p->f);
}

void chat_printer_end(ChatPrinter *p) {
    if (p->in_think && p->ansi) fputs(RESET, p->f);
    if (p->wrote || p->thought) fputc('\n', p->f);
    fflush(p->f);
    p->in_think = 0;
}
