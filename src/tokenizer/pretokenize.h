/* SPDX-License-Identifier: MIT */
/* Pre-tokenizers of tokenizer.json (Split, ByteLevel, Digits, Sequence):
 * the stage between the normalizer and BPE that cuts text into words. Split
 * regexes are written in Oniguruma syntax (what Hugging Face tokenizers
 * runs); they are translated for PCRE2 (UTF + Unicode properties, JIT) so
 * that \s means Oniguruma's Unicode white space. Internal to src/tokenizer. */
#ifndef WHALE_TOKENIZER_PRETOKENIZE_H
#define WHALE_TOKENIZER_PRETOKENIZE_H

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <jansson.h>
#include <pcre2.h>
#include <stddef.h>

#include "base/err.h"

enum { PT_MAX_STEPS = 16 };

/* What a Split keeps of the text around the regex matches (names as in
 * tokenizer.json). */
typedef enum PtBehavior {
    PT_ISOLATED,      /* "Isolated": matches and the text between them, apart */
    PT_REMOVED,       /* "Removed": the text between matches only */
    PT_MERGED_PREV,   /* "MergedWithPrevious": a match joins the text before it */
    PT_MERGED_NEXT,   /* "MergedWithNext": a match joins the text after it */
    PT_CONTIGUOUS,    /* "Contiguous": runs of matches form one piece */
} PtBehavior;

typedef struct PtStep {
    pcre2_code *re;       /* NULL: no split (ByteLevel without its regex) */
    PtBehavior behavior;
    int invert;           /* the matches are the pieces, the rest the delimiters */
    int add_prefix_space; /* ByteLevel: a piece not starting with ' ' gets one */
} PtStep;

typedef struct PreTok {
    PtStep steps[PT_MAX_STEPS];
    int n_steps;
    int has_bytelevel; /* a ByteLevel step is the last one */
} PreTok;

/* Build from the "pre_tokenizer" value of tokenizer.json (NULL or JSON null:
 * the whole text is one word). what names the file for messages. Accepts
 * Sequence, Split (Regex or String pattern, all five behaviours, invert),
 * ByteLevel (add_prefix_space, use_regex) and Digits (individual_digits);
 * ByteLevel must come last. Returns 0 or -1 with err naming the field, an
 * unsupported type by name, or a regex PCRE2 rejects with its offset.
 * Free with pt_free (accepts a zeroed struct). */
int pt_from_json(PreTok *pt, const json_t *j, const char *what, Err *err);
void pt_free(PreTok *pt);

/* Translate an Oniguruma regex to PCRE2 syntax: \s and \S become explicit
 * classes of Oniguruma's Unicode white space (0009-000D, 0020, 0085, 00A0,
 * 1680, 2000-200A, 2028, 2029, 202F, 205F, 3000), \h and \H hex digits.
 * Returns a malloc'd string (*out_len bytes) or NULL (out of memory);
 * src_pos (if non-NULL) receives a malloc'd map from output offsets to
 * source offsets, for error messages. */
char *pt_translate_regex(const char *src, size_t len, size_t *out_len, size_t **src_pos);

/* Per-caller buffers and PCRE2 match state; zeroed is ready. */
typedef struct PtSpan {
    size_t start, end;
    int match;
} PtSpan;

typedef struct PtState {
    pcre2_match_data *md;
    pcre2_match_context *mc;
    pcre2_jit_stack *js;
    PtSpan *spans[PT_MAX_STEPS];
    size_t span_cap[PT_MAX_STEPS];
    unsigned char *prefix[PT_MAX_STEPS];
    size_t prefix_cap[PT_MAX_STEPS];
} PtState;

void pt_state_free(PtState *st);

/* Receives each word, in order. Returns 0 or -1 with err to stop. */
typedef int (*PtSink)(void *ctx, const unsigned char *p, size_t n, Err *err);

/* Cut n bytes at p into words and pass each non-empty one to sink. Bytes
 * that are not valid UTF-8 never match a regex (PCRE2_MATCH_INVALID_UTF),
 * so they end up in the text between matches. Returns 0 or -1 with err
 * (out of memory, a regex that fails at match time, the sink's error). */
int pt_run(const PreTok *pt, PtState *st, const unsigned char *p, size_t n, PtSink sink,
           void *ctx, Err *err);

#endif
