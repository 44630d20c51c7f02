/* SPDX-License-Identifier: MIT */
/* Pre-tokenizers (see pretokenize.h). Each step cuts every piece of the
 * step before into smaller pieces; the steps run depth first, so a word
 * reaches BPE as soon as the last step cuts it and no list of all pieces is
 * ever built. Splitting follows Hugging Face's NormalizedString::split:
 * the regex matches and the gaps between them form a sequence of spans,
 * which the behaviour then merges or drops. */
#include "tokenizer/pretokenize.h"

#include <stdlib.h>
#include <string.h>

/* Oniguruma's \s in Unicode mode, as the body of a character class. */
#define WS_CLASS                                                                                 \
    "\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}" \
    "\\x{205F}\\x{3000}"

/* GPT-2's split, the one ByteLevel applies with use_regex. */
static const char GPT2_REGEX[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* ---- regex translation ---------------------------------------------------- */

typedef struct Out {
    char *s;
    size_t *pos;
    size_t n, cap;
    int oom;
} Out;

static void out_put(Out *o, const char *s, size_t n, size_t src) {
    if (o->oom) return;
    if (o->n + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 64;
        while (cap < o->n + n + 1) cap *= 2;
        char *ns = realloc(o->s, cap);
        size_t *np = ns ? realloc(o->pos, cap * sizeof *np) : NULL;
        if (ns) o->s = ns;
        if (!ns || !np) {
            o->oom = 1;
            return;
        }
        o->pos = np;
        o->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        o->s[o->n + i] = s[i];
        o->pos[o->n + i] = src;
    }
    o->n += n;
    o->s[o->n] = 0;
}

char *pt_translate_regex(const char *src, size_t len, size_t *out_len, size_t **src_pos) {
    Out o = {0};
    int in_class = 0;
    out_put(&o, "", 0, 0);
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '\\' && i + 1 < len) {
            char x = src[++i];
            if (x == 's') {
                if (in_class) out_put(&o, WS_CLASS, sizeof WS_CLASS - 1, i - 1);
                else out_put(&o, "[" WS_CLASS "]", sizeof WS_CLASS + 1, i - 1);
            } else if (x == 'S' && !in_class) {
                out_put(&o, "[^" WS_CLASS "]", sizeof WS_CLASS + 2, i - 1);
            } else if (x == 'h') {
                out_put(&o, in_class ? "0-9a-fA-F" : "[0-9a-fA-F]", in_class ? 9 : 11, i - 1);
            } else if (x == 'H' && !in_class) {
                out_put(&o, "[^0-9a-fA-F]", 12, i - 1);
            } else {
                out_put(&o, src + i - 1, 2, i - 1);
            }
            continue;
        }
        if (!in_class && c == '[') {
            in_class = 1;
            out_put(&o, &c, 1, i);
            if (i + 1 < len && src[i + 1] == '^') {
                i++;
                out_put(&o, src + i, 1, i);
            }
            if (i + 1 < len && src[i + 1] == ']') { /* a literal ] */
                i++;
                out_put(&o, src + i, 1, i);
            }
            continue;
        }
        if (in_class && c == '[' && i + 1 < len && src[i + 1] == ':') {
            /* POSIX class [:name:], copied whole */
            const char *end = NULL;
            for (size_t k = i + 2; k + 1 < len; k++)
                if (src[k] == ':' && src[k + 1] == ']') {
                    end = src + k + 2;
                    break;
                }
            if (end) {
                out_put(&o, src + i, (size_t)(end - (src + i)), i);
                i = (size_t)(end - src) - 1;
                continue;
            }
        }
        if (in_class && c == ']') in_class = 0;
        out_put(&o, &c, 1, i);
    }
    if (o.oom) {
        free(o.s);
        free(o.pos);
        return NULL;
    }
    *out_len = o.n;
    if (src_pos) *src_pos = o.pos;
    else free(o.pos);
    return o.s;
}

/* ---- building the steps ------------------------------------------------------ */

/* Compile pattern (Oniguruma syntax, or a literal string) into step. */
static int compile_step(PtStep *step, const char *pat, size_t len, int literal, const char *field,
                        const char *what, Err *err) {
    size_t tlen = len, *pos = NULL;
    char *t = literal ? NULL : pt_translate_regex(pat, len, &tlen, &pos);
    if (!literal && !t) return err_set(err, "%s: out of memory", what);
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
    int code;
    PCRE2_SIZE off;
    step->re = pcre2_compile((PCRE2_SPTR)(literal ? pat : t), tlen, opts, &code, &off, NULL);
    if (!step->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        size_t at = literal ? off : (off < tlen ? pos[off] : len);
        err_set(err, "%s: %s: regex rejected by PCRE2 at offset %zu: %s (pattern '%.100s')", what,
                field, at, (const char *)msg, pat);
    } else {
        /* JIT is an optimisation: without it (no JIT support on this CPU,
         * or no executable memory) pcre2_match interprets the pattern */
        pcre2_jit_compile(step->re, PCRE2_JIT_COMPLETE);
    }
    free(t);
    free(pos);
    return step->re ? 0 : -1;
}

static PtStep *new_step(PreTok *pt, const char *field, const char *what, Err *err) {
    if (pt->has_bytelevel) {
        err_set(err, "%s: %s: a pre-tokenizer after ByteLevel is not supported", what, field);
        return NULL;
    }
    if (pt->n_steps == PT_MAX_STEPS) {
        err_set(err, "%s: %s: more than %d pre-tokenizer steps", what, field, PT_MAX_STEPS);
        return NULL;
    }
    PtStep *s = &pt->steps[pt->n_steps++];
    memset(s, 0, sizeof *s);
    return s;
}

static int get_bool(const json_t *o, const char *key, int dflt, const char *field, const char *what,
                    Err *err, int *out) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) *out = dflt;
    else if (json_is_boolean(v)) *out = json_is_true(v);
    else return err_set(err, "%s: %s.%s must be true or false", what, field, key);
    return 0;
}

static int add_json(PreTok *pt, const json_t *j, const char *field, int depth, const char *what,
                    Err *err) {
    if (!json_is_object(j)) return err_set(err, "%s: %s must be an object", what, field);
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!type) return err_set(err, "%s: %s.type must be a string", what, field);
    char sub[256];
    if (!strcmp(type, "Sequence")) {
        const json_t *a = json_object_get(j, "pretokenizers");
        if (!json_is_array(a))
            return err_set(err, "%s: %s.pretokenizers must be an array", what, field);
        if (depth > 8) return err_set(err, "%s: %s: Sequence nested too deeply", what, field);
        for (size_t i = 0; i < json_array_size(a); i++) {
            snprintf(sub, sizeof sub, "%s.pretokenizers[%zu]", field, i);
            if (add_json(pt, json_array_get(a, i), sub, depth + 1, what, err) != 0) return -1;
        }
        return 0;
    }
    if (!strcmp(type, "Split")) {
        const json_t *pat = json_object_get(j, "pattern"), *re = NULL, *str = NULL;
        if (json_is_object(pat)) {
            re = json_object_get(pat, "Regex");
            str = json_object_get(pat, "String");
        }
        const json_t *p = re ? re : str;
        if (!json_is_string(p))
            return err_set(err, "%s: %s.pattern must be {\"Regex\": ...} or {\"String\": ...}", what,
                           field);
        const char *beh = json_string_value(json_object_get(j, "behavior"));
        static const char *const names[] = {"Isolated", "Removed", "MergedWithPrevious",
                                            "MergedWithNext", "Contiguous"};
        int b = -1;
        for (int i = 0; beh && i < 5; i++)
            if (!strcmp(beh, names[i])) b = i;
        if (b < 0)
            return err_set(err, "%s: %s.behavior '%s' is not supported (Isolated, Removed, "
                           "MergedWithPrevious, MergedWithNext or Contiguous)", what, field,
                           beh ? beh : "(missing)");
        int invert = 0;
        if (get_bool(j, "invert", 0, field, what, err, &invert) != 0) return -1;
        PtStep *s = new_step(pt, field, what, err);
        if (!s) return -1;
        s->behavior = (PtBehavior)b;
        s->invert = invert;
        snprintf(sub, sizeof sub, "%s.pattern.%s", field, re ? "Regex" : "String");
        return compile_step(s, json_string_value(p), json_string_length(p), !re, sub, what, err);
    }
    if (!strcmp(type, "ByteLevel")) {
        int prefix = 1, use_regex = 1;
        /* Hugging Face's defaults: add_prefix_space true, use_regex true */
        if (get_bool(j, "add_prefix_space", 1, field, what, err, &prefix) != 0 ||
            get_bool(j, "use_regex", 1, field, what, err, &use_regex) != 0)
            return -1;
        PtStep *s = new_step(pt, field, what, err);
        if (!s) return -1;
        s->add_prefix_space = prefix;
        s->behavior = PT_ISOLATED;
        pt->has_bytelevel = 1;
        if (!use_regex) return 0;
        return compile_step(s, GPT2_REGEX, sizeof GPT2_REGEX - 1, 0, field, what, err);
    }
    if (!strcmp(type, "Digits")) {
        int individual = 0;
        if (get_bool(j, "individual_digits", 0, field, what, err, &individual) != 0) return -1;
        PtStep *s = new_step(pt, field, what, err);
        if (!s) return -1;
        /* Rust's char::is_numeric is the N categories */
        s->behavior = individual ? PT_ISOLATED : PT_CONTIGUOUS;
        return compile_step(s, "\\p{N}", 5, 0, field, what, err);
    }
    return err_set(err, "%s: %s: pre-tokenizer type '%s' is not supported (supported: Sequence, "
                   "Split, ByteLevel, Digits)", what, field, type);
}

int pt_from_json(PreTok *pt, const json_t *j, const char *what, Err *err) {
    memset(pt, 0, sizeof *pt);
    if (!j || json_is_null(j)) return 0;
    if (add_json(pt, j, "pre_tokenizer", 0, what, err) != 0) {
        pt_free(pt);
        return -1;
    }
    return 0;
}

void pt_free(PreTok *pt) {
    for (int i = 0; i < pt->n_steps; i++) pcre2_code_free(pt->steps[i].re);
    memset(pt, 0, sizeof *pt);
}

/* ---- running ---------------------------------------------------------------- */

void pt_state_free(PtState *st) {
    pcre2_match_data_free(st->md);
    pcre2_match_context_free(st->mc);
    pcre2_jit_stack_free(st->js);
    for (int i = 0; i < PT_MAX_STEPS; i++) {
        free(st->spans[i]);
        free(st->prefix[i]);
    }
    memset(st, 0, sizeof *st);
}

static int state_ready(PtState *st) {
    if (st->md) return 0;
    st->md = pcre2_match_data_create(1, NULL);
    st->mc = pcre2_match_context_create(NULL);
    /* the JIT's backtracking stack grows up to 8 MB (its default is 32 KB,
     * which long runs of white space against \s+(?!\S) can exhaust) */
    st->js = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
    if (!st->md || !st->mc) return -1;
    if (st->js) pcre2_jit_stack_assign(st->mc, NULL, st->js);
    return 0;
}

static int span_push(PtState *st, int k, size_t *n, size_t start, size_t end, int match) {
    if (*n == st->span_cap[k]) {
        size_t cap = st->span_cap[k] ? st->span_cap[k] * 2 : 64;
        PtSpan *s = realloc(st->spans[k], cap * sizeof *s);
        if (!s) return -1;
        st->spans[k] = s;
        st->span_cap[k] = cap;
    }
    st->spans[k][(*n)++] = (PtSpan){start, end, match};
    return 0;
}

/* Length of the UTF-8 character at p (1 for a byte that starts none). */
static size_t char_len(const unsigned char *p, size_t n) {
    size_t k = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc0 ? 2 : 1;
    if (k > n) return 1;
    for (size_t i = 1; i < k; i++)
        if ((p[i] & 0xc0) != 0x80) return 1;
    return k;
}

/* Walk the regex over p[0..n): the gaps (match 0) and the matches (1) in
 * order, covering the piece. With collect, the spans go to st->spans[k]
 * (*ns of them); without, each kept piece goes straight to step k + 1 (the
 * behaviours that need no look at the neighbours: Isolated, Removed). An
 * empty match is kept (then dropped as an empty piece) and the search goes
 * on one character later, as Oniguruma's and JavaScript's iterators do. */
static int run_step(const PreTok *pt, PtState *st, int k, const unsigned char *p, size_t n,
                    PtSink sink, void *ctx, Err *err);

static int emit_span(const PreTok *pt, PtState *st, int k, const unsigned char *p, size_t start,
                     size_t end, int match, int collect, size_t *ns, PtSink sink, void *ctx,
                     Err *err) {
    const PtStep *s = &pt->steps[k];
    if (collect) return span_push(st, k, ns, start, end, match) == 0 ? 0 : err_set(err, "out of memory");
    if (s->behavior == PT_REMOVED && (match != s->invert)) return 0;
    return run_step(pt, st, k + 1, p + start, end - start, sink, ctx, err);
}

static int walk_matches(const PreTok *pt, PtState *st, int k, const unsigned char *p, size_t n,
                        int collect, size_t *ns, PtSink sink, void *ctx, Err *err) {
    const PtStep *s = &pt->steps[k];
    size_t prev = 0, at = 0;
    *ns = 0;
    while (at <= n) {
        int rc = pcre2_match(s->re, p, n, at, 0, st->md, st->mc);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return err_set(err, "pre-tokenizer regex failed on a %zu-byte piece: %s", n,
                           (const char *)msg);
        }
        /* read the match now: deeper steps reuse the match data */
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(st->md);
        size_t ms = ov[0], me = ov[1];
        if (ms > prev && emit_span(pt, st, k, p, prev, ms, 0, collect, ns, sink, ctx, err) != 0)
            return -1;
        if (emit_span(pt, st, k, p, ms, me, 1, collect, ns, sink, ctx, err) != 0) return -1;
        prev = me;
        if (me > ms) at = me;
        else if (me < n) at = me + char_len(p + me, n - me);
        else break;
    }
    if (prev < n && emit_span(pt, st, k, p, prev, n, 0, collect, ns, sink, ctx, err) != 0)
        return -1;
    return 0;
}

/* Apply the behaviour to the spans in place (Hugging Face's
 * NormalizedString::split); *ns gets the count of pieces kept. */
static void apply_behavior(const PtStep *s, PtSpan *sp, size_t *ns) {
    size_t n = *ns, w = 0;
    if (s->invert)
        for (size_t i = 0; i < n; i++) sp[i].match = !sp[i].match;
    switch (s->behavior) {
    case PT_ISOLATED: return;
    case PT_REMOVED:
        for (size_t i = 0; i < n; i++)
            if (!sp[i].match) sp[w++] = sp[i];
        break;
    case PT_MERGED_PREV: {
        int prev_match = 0;
        for (size_t i = 0; i < n; i++) {
            int m = sp[i].match;
            if (m && !prev_match && w > 0) sp[w - 1].end = sp[i].end;
            else sp[w++] = sp[i];
            prev_match = m;
        }
        break;
    }
    case PT_MERGED_NEXT: {
        /* from the right: a match joins the piece after it */
        int prev_match = 0;
        size_t r = n;
        for (size_t i = n; i-- > 0;) {
            int m = sp[i].match;
            if (m && !prev_match && r < n) sp[r].start = sp[i].start;
            else sp[--r] = sp[i];
            prev_match = m;
        }
        memmove(sp, sp + r, (n - r) * sizeof *sp);
        w = n - r;
        break;
    }
    case PT_CONTIGUOUS: {
        int prev_match = 0;
        for (size_t i = 0; i < n; i++) {
            int m = sp[i].match;
            if (m == prev_match && w > 0) sp[w - 1].end = sp[i].end;
            else sp[w++] = sp[i];
            prev_match = m;
        }
        break;
    }
    }
    *ns = w;
}

static int run_step(const PreTok *pt, PtState *st, int k, const unsigned char *p, size_t n,
                    PtSink sink, void *ctx, Err *err) {
    if (n == 0) return 0;
    if (k == pt->n_steps) return sink(ctx, p, n, err);
    const PtStep *s = &pt->steps[k];
    if (s->add_prefix_space && p[0] != ' ') {
        if (n + 1 > st->prefix_cap[k]) {
            unsigned char *b = realloc(st->prefix[k], n + 1);
            if (!b) return err_set(err, "out of memory");
            st->prefix[k] = b;
            st->prefix_cap[k] = n + 1;
        }
        st->prefix[k][0] = ' ';
        memcpy(st->prefix[k] + 1, p, n);
        p = st->prefix[k];
        n++;
    }
    if (!s->re) return run_step(pt, st, k + 1, p, n, sink, ctx, err);
    size_t ns;
    if (s->behavior == PT_ISOLATED || s->behavior == PT_REMOVED)
        return walk_matches(pt, st, k, p, n, 0, &ns, sink, ctx, err);
    if (walk_matches(pt, st, k, p, n, 1, &ns, sink, ctx, err) != 0) return -1;
    apply_behavior(s, st->spans[k], &ns);
    for (size_t i = 0; i < ns; i++) {
        /* spans[k] stays put while deeper steps run: they use their own */
        PtSpan sp = st->spans[k][i];
        if (run_step(pt, st, k + 1, p + sp.start, sp.end - sp.start, sink, ctx, err) != 0)
            return -1;
    }
    return 0;
}

int pt_run(const PreTok *pt, PtState *st, const unsigned char *p, size_t n, PtSink sink,
           void *ctx, Err *err) {
    if (state_ready(st) != 0) return err_set(err, "out of memory");
    return run_step(pt, st, 0, p, n, sink, ctx, err);
}
