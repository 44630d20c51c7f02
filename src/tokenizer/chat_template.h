/* SPDX-License-Identifier: MIT */
/* Chat templates: a conversation (system / user / assistant messages) into
 * the prompt text a model was trained on, byte for byte as the official
 * Jinja chat_template of its tokenizer_config.json renders it (for messages
 * without tool calls). Families: DeepSeek-V3, DeepSeek-R1 (generation
 * prompt opens `<think>\n`, earlier turns' thinking dropped), R1-Distill on
 * the Qwen and Llama vocabularies, and Qwen2.5's ChatML. Not a Jinja
 * engine: each family is a few lines of C checked against the real
 * templates by tests/test_chat_template.c. */
#ifndef WHALE_CHAT_TEMPLATE_H
#define WHALE_CHAT_TEMPLATE_H

#include <stddef.h>

#include "base/err.h"

typedef enum ChatTemplateKind {
    CHAT_DEEPSEEK_V3,
    CHAT_DEEPSEEK_R1,
    CHAT_R1_DISTILL_QWEN,
    CHAT_R1_DISTILL_LLAMA,
    CHAT_CHATML,
    CHAT_N_KINDS
} ChatTemplateKind;

typedef struct ChatMessage {
    const char *role;              /* "system", "user" or "assistant" */
    const char *content;           /* UTF-8 text; NULL renders as "" */
    const char *reasoning_content; /* optional thinking kept apart; NULL if none. None of
                                      these families' templates renders it (R1 drops the
                                      thinking of earlier turns), so it is ignored */
} ChatMessage;

/* The --chat-template name of a kind: deepseek-v3, deepseek-r1,
 * r1-distill-qwen, r1-distill-llama, chatml. */
const char *chat_template_name(ChatTemplateKind k);
/* The names, space-separated, for help and error messages. */
const char *chat_template_names(void);
/* Name -> kind. 0, or -1 with err listing the names. */
int chat_template_from_name(const char *name, ChatTemplateKind *k, Err *err);

/* Recognise the family of a tokenizer_config.json chat_template by
 * distinctive substrings: `<|im_start|>` is ChatML; DeepSeek's `<｜User｜>`
 * markers with a `</think>` split are R1 (systems joined through
 * `is_first_sp`) or R1-Distill (last system wins; Llama when model_type is
 * "llama", else Qwen); without the split, DeepSeek-V3. Returns 0, or -1
 * when the template is NULL or none of these. */
int chat_template_detect(const char *jinja, const char *model_type, ChatTemplateKind *k);

/* The template for a model: the recognised chat_template if any, else by
 * model type and vocabulary: a vocabulary with DeepSeek's `<｜User｜>` token
 * gets DeepSeek markers (R1 when it also has a `<think>` token, as the
 * tokenizer of `whale init` does; R1-Distill on qwen2/llama), a qwen2 model
 * without them ChatML, anything else DeepSeek-V3. */
ChatTemplateKind chat_template_select(const char *jinja, const char *model_type,
                                      int has_user_token, int has_think_token);

/* Render n messages (n >= 0) into a malloc'd NUL-terminated string (*out,
 * caller frees; *len its length without the NUL, may be NULL). With
 * add_generation_prompt the assistant's opening is appended. 0, or -1 with
 * err for a role other than system/user/assistant (tool calls are not
 * supported) or out of memory. */
int chat_template_render(ChatTemplateKind k, const ChatMessage *msgs, int n,
                         int add_generation_prompt, char **out, size_t *len, Err *err);

/* Strings whose token ends the assistant's turn in this family (the
 * end-of-sentence / im_end markers, and the opening of a new user turn),
 * NULL-terminated. Generation stops on the ids they map to. */
const char *const *chat_template_stop_strings(ChatTemplateKind k);

#endif
