/* SPDX-License-Identifier: MIT */
/* Supervised fine-tuning examples: JSONL lines turned into token ids and a
 * target mask, the tokens whose prediction is trained (the answer, never
 * the prompt). Two shapes:
 *   {"messages": [{"role": "system|user|assistant", "content": "..."}, ...]}
 *     rendered with the model's chat template (tokenizer/chat_template.h)
 *     exactly as inference renders a conversation; the targets are each
 *     assistant turn's content as the template writes it and the
 *     end-of-turn token after it; `reasoning_content` is dropped.
 *   {"prompt": "...", "completion": "..."}
 *     raw text as `whale generate` and the rollouts see it: BOS, the
 *     prompt, then the completion and EOS as targets.
 * Each part is tokenized on its own, as generation tokenizes the prompt
 * and then emits the answer token by token. Used by `whale sft` and by
 * distillation (rl/distill.h). */
#ifndef WHALE_SFT_DATA_H
#define WHALE_SFT_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

typedef struct SftExample {
    int32_t *ids;    /* (len) owned */
    uint8_t *target; /* (len) 1: token t is a target (row t - 1 of the forward predicts it);
                        target[0] is always 0 */
    int len, n_target;
    int64_t line;    /* 1-based line in its file */
} SftExample;

typedef struct SftEncoder {
    const Tokenizer *tok;
    ChatTemplateKind tmpl; /* for {"messages": ...} */
    int max_len;           /* longest sequence accepted, tokens */
} SftEncoder;

/* One JSON object (len bytes of text, NUL not needed) into ex (owned
 * buffers; free with sft_example_free). 0, or -1 with err naming the field
 * ("messages[2].role must be system, user or assistant, not 'tool'"), without
 * file or line: not JSON, not an object, both or neither shape, wrong
 * types, no assistant turn, a conversation the template does not render
 * turn by turn, fewer than 2 tokens, more than max_len tokens, a tokenizer
 * without the EOS a completion needs. */
int sft_encode(const SftEncoder *e, const char *json, size_t len, SftExample *ex, Err *err);
void sft_example_free(SftExample *ex);

typedef struct SftData {
    SftExample *ex; /* (n) in file order */
    int n;
    int64_t n_tokens, n_target;
} SftData;

/* Every non-blank line of the JSONL file path. 0, or -1 with err "PATH:LINE:
 * ..." for the first bad line, or "PATH: ..." for a missing or empty file.
 * Free with sft_data_free (accepts a zeroed struct). */
int sft_data_load(SftData *d, const char *path, const SftEncoder *e, Err *err);
void sft_data_free(SftData *d);

#endif
