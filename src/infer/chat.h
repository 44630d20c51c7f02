/* SPDX-License-Identifier: MIT */
/* A chat session: a model, its tokenizer, the chat template chosen for it,
 * a generator and the conversation so far. Each turn renders the whole
 * conversation with the template and generates from it; the generator
 * re-uses the KV cache for the prefix the new prompt shares with the last
 * one. Also the printer that shows a streamed answer with its thinking
 * apart (dimmed on a terminal, under marker lines otherwise). Used by
 * `whale generate` and `whale chat`. */
#ifndef WHALE_CHAT_H
#define WHALE_CHAT_H

#include <stdio.h>

#include "infer/generate.h"
#include "tokenizer/chat_template.h"

typedef struct ChatOpts {
    GenOpts gen;
    const char *template_name; /* --chat-template; NULL: from the model's files */
    const char *system;        /* system message; NULL or "": none */
    int raw;                   /* plain completion: no template stop tokens */
} ChatOpts;

typedef struct ChatSession {
    Model model;
    Tokenizer *tok;
    Generator gen;
    ChatTemplateKind tmpl;
    ChatMessage *msgs;        /* (n_msgs) the conversation; strings owned */
    int n_msgs, cap_msgs;
    char *prompt;             /* the last rendered prompt (owned) */
    size_t prompt_len;
} ChatSession;

/* Load the model at path (directory or file; the tokenizer and
 * generation_config.json from the same directory), choose the template
 * (the override, or the tokenizer's chat_template, or by model type and
 * vocabulary), and set the stop ids: the tokenizer's EOS,
 * generation_config.json's eos_token_id, and unless raw the template's end
 * of turn markers. 0, or -1 with err naming the file. Free with chat_close
 * (accepts a zeroed struct). */
int chat_open(ChatSession *s, const char *path, const ChatOpts *o, Err *err);
void chat_close(ChatSession *s);

/* Forget the conversation except the system message. */
void chat_reset(ChatSession *s);

/* One turn: add the user's text, render, generate at most max_tokens
 * (<= 0: until a stop), add the assistant's reply. The reply kept in the
 * history is what the family's template would keep: for the R1 families the
 * answer after the thinking (which they drop), else the raw text. On an error
 * (e.g. the conversation no longer fits the context) the user message is
 * removed again. Arguments as gen_run. */
int chat_turn(ChatSession *s, const char *user_text, int max_tokens,
              volatile sig_atomic_t *interrupt, GenEmit emit, void *ud, GenResult *res,
              Err *err);

/* Shows a stream of thinking and answer on f. ansi: thinking dimmed with
 * ESC[2m; else thinking under a "[thinking]" line and the answer after an
 * "[answer]" line. Newlines that open a part are not shown. */
typedef struct ChatPrinter {
    FILE *f;
    int ansi;
    int in_think;   /* currently showing thinking */
    int thought;    /* a thinking part was shown in this answer */
    int at_start;   /* at the start of a part: skip its leading newlines */
    int wrote;      /* anything shown */
} ChatPrinter;

void chat_printer_init(ChatPrinter *p, FILE *f, int ansi);
/* A GenEmit: pass the printer as user. */
void chat_printer_emit(void *printer, GenPart part, const char *s, size_t n);
/* End of the answer: reset the colour, end the line. */
void chat_printer_end(ChatPrinter *p);

#endif
