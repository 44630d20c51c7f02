/* SPDX-License-Identifier: MIT */
/* The BPE trainer: merges of hand-computed corpora ("aaabdaaabac", the
 * low/lower/newest/widest example of Sennrich et al.), the incremental pair
 * counts against a naive trainer that recounts every pair each step, the
 * cut at added tokens, the writer's reuse of an existing string's id; then
 * `whale tokenizer-train` end to end: a trained tokenizer round-trips and
 * encodes exactly as @lenml/tokenizers does (tests/js/encode.mjs, packages
 * installed by tests/js/npm.sh), text and JSONL inputs given several ways
 * give the library's result, and each kind of bad input fails with one
 * clear line. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "tokenizer/bpe_train.h"
#include "tokenizer/corpus.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_json.h"

static char g_dir[64];

static void setup(void) { cr_assert_eq(h_tmpdir(g_dir, sizeof g_dir, "bpetrain"), 0, "mkdtemp failed"); }
static void teardown(void) { h_rmtree(g_dir); }

TestSuite(bpe_train, .init = setup, .fini = teardown, .timeout = 300);

static const char *whale_bin(void) {
    const char *b = getenv("WHALE_BIN");
    return b ? b : "build/whale";
}

static const char *js_dir(void) {
    static char buf[1024];
    const char *data = getenv("WHALE_DATA");
    snprintf(buf, sizeof buf, "%s/../js", data ? data : "tests/data");
    return buf;
}

static unsigned rng_state;
static unsigned rnd(unsigned n) {
    rng_state = rng_state * 1103515245u + 12345u;
    return (rng_state >> 8) % n;
}

/* Count the documents (NULL-terminated list) and train. */
static void train_docs(const char *const *docs, int vocab, int min_count, BpeCounts *c,
                       BpeMerges *m) {
    Err e = {{0}};
    cr_assert_eq(bpe_counts_init(c, &e), 0, "%s", e.msg);
    for (int i = 0; docs[i]; i++)
        cr_assert_eq(bpe_counts_add_text(c, docs[i], strlen(docs[i]), &e), 0, "%s", e.msg);
    BpeTrainOpts o = {.vocab_size = vocab, .min_count = min_count, .quiet = 1};
    cr_assert_eq(bpe_train(c, &o, m, &e), 0, "%s", e.msg);
}

static void expect_merges(const BpeMerges *m, const char *const (*want)[2], int n) {
    cr_assert_geq(m->n, n, "%d merges, expected at least %d", m->n, n);
    for (int i = 0; i < n; i++)
        cr_expect(!strcmp(m->pair[i][0], want[i][0]) && !strcmp(m->pair[i][1], want[i][1]),
                  "merge %d: expected (%s, %s), got (%s, %s)", i, want[i][0], want[i][1],
                  m->pair[i][0], m->pair[i][1]);
}

/* ---- hand-computed corpora ---------------------------------------------------------- */

Test(bpe_train, classic_aaabdaaabac) {
    /* one word; (a,a) occurs 4 times (overlaps counted), then "Z a b d Z a b a c"
     * ties (Z,a) and (a,b) at 2: the smaller ids win, (a,b); then (aa,ab) */
    const char *docs[] = {"aaabdaaabac", NULL};
    BpeCounts c;
    BpeMerges m;
    int base = tokjson_bytelevel_size(0);
    train_docs(docs, base + 10, 1, &c, &m);
    const char *want[][2] = {{"a", "a"}, {"a", "b"}, {"aa", "ab"}};
    expect_merges(&m, want, 3);
    cr_expect_eq(m.last_count, 1, "the last merge count is %lld", (long long)m.last_count);
    bpe_merges_free(&m);
    bpe_counts_free(&c);
    /* min_count 2 stops after the third merge; vocab stops where it says */
    train_docs(docs, base + 10, 2, &c, &m);
    cr_expect(m.n == 3 && m.stopped_early && m.n_vocab == base + 3, "n %d vocab %d", m.n, m.n_vocab);
    bpe_merges_free(&m);
    bpe_counts_free(&c);
    train_docs(docs, base + 2, 1, &c, &m);
    cr_expect(m.n == 2 && !m.stopped_early && m.n_vocab == base + 2);
    bpe_merges_free(&m);
    bpe_counts_free(&c);
}

Test(bpe_train, sennrich_low_lower_newest_widest) {
    /* words separated by newlines, so none gets a leading space:
     * low x5, lower x2, newest x6, widest x3. By hand: es 9 and st 9 tie
     * (e < s), then est 9; lo 7 and ow 7 tie (l < o), then low 7; ne, ew,
     * w+est at 6: (e,w) has the smallest ids, then (n,ew), then (new,est);
     * then at 3: (d,est) before (i,d) and (w,i) */
    char text[512] = "";
    const char *w[4] = {"low", "lower", "newest", "widest"};
    int n[4] = {5, 2, 6, 3};
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < n[i]; k++) strcat(strcat(text, w[i]), "\n");
    const char *docs[] = {text, NULL};
    BpeCounts c;
    BpeMerges m;
    train_docs(docs, tokjson_bytelevel_size(0) + 8, 2, &c, &m);
    const char *want[][2] = {{"e", "s"}, {"es", "t"}, {"l", "o"}, {"lo", "w"},
                             {"e", "w"}, {"n", "ew"}, {"new", "est"}, {"d", "est"}};
    expect_merges(&m, want, 8);
    cr_expect_eq(c.words.n, 5, "distinct words: %zu (4 words and the newline)", c.words.n);
    bpe_merges_free(&m);
    bpe_counts_free(&c);
}

/* ---- the incremental counts against a naive trainer ----------------------------- */

/* A token's bytes as byte-alphabet symbols. */
static void symbols_of(const unsigned char *p, size_t n, char *out) {
    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        char s[5];
        tokjson_byte_symbol(p[i], s);
        strcat(out, s);
    }
}

typedef struct NaiveTok {
    unsigned char b[64];
    size_t n;
} NaiveTok;

typedef struct PairCount {
    uint64_t key;
    int64_t count;
} PairCount;

static int cmp_key(const void *a, const void *b) {
    uint64_t x = ((const PairCount *)a)->key, y = ((const PairCount *)b)->key;
    return x < y ? -1 : x > y;
}

Test(bpe_train, incremental_counts_match_naive_recount) {
    /* words over a small alphabet with 2- and 3-byte characters, so many
     * pairs tie and words overlap themselves ("aaaa") */
    static const char *const alpha[] = {"a", "b", "c", "a", "b", "\xc3\xa9", "\xe4\xb8\xad", "1", "."};
    char *text = malloc(40000);
    size_t tn = 0;
    rng_state = 7;
    while (tn < 30000) {
        int len = 1 + (int)rnd(9);
        for (int i = 0; i < len; i++) {
            const char *s = alpha[rnd(9)];
            memcpy(text + tn, s, strlen(s));
            tn += strlen(s);
        }
        text[tn++] = rnd(4) ? ' ' : '\n';
    }
    text[tn] = 0;
    const char *docs[] = {text, NULL};
    BpeCounts c;
    BpeMerges m;
    int base = tokjson_bytelevel_size(0), vocab = base + 600;
    train_docs(docs, vocab, 1, &c, &m);
    cr_assert_eq(m.n_vocab, vocab);

    /* naive: recount every pair of every word each step */
    int32_t *sym = malloc(c.words.n_bytes * sizeof *sym);
    uint32_t *len = malloc(c.words.n * sizeof *len);
    for (size_t i = 0; i < c.words.n_bytes; i++) sym[i] = TOKJSON_BYTE0_ID + c.words.bytes[i];
    memcpy(len, c.words.len, c.words.n * sizeof *len);
    NaiveTok *tok = calloc((size_t)vocab, sizeof *tok);
    for (int b = 0; b < 256; b++) tok[TOKJSON_BYTE0_ID + b].b[0] = (unsigned char)b, tok[TOKJSON_BYTE0_ID + b].n = 1;
    int n_tok = base, n_merges = 0, bad = 0;
    PairCount *pc = malloc(c.words.n_bytes * sizeof *pc);
    while (n_tok < vocab) {
        size_t np = 0;
        for (size_t w = 0; w < c.words.n; w++)
            for (uint32_t i = 0; i + 1 < len[w]; i++)
                pc[np++] = (PairCount){(uint64_t)sym[c.words.off[w] + i] << 32 | (uint32_t)sym[c.words.off[w] + i + 1],
                                       c.count[w]};
        qsort(pc, np, sizeof *pc, cmp_key);
        PairCount best = {0, 0};
        for (size_t i = 0; i < np;) {
            PairCount s = pc[i];
            for (i++; i < np && pc[i].key == s.key; i++) s.count += pc[i].count;
            if (s.count > best.count) best = s; /* sorted by key: the first of a tie wins */
        }
        if (best.count < 1) break;
        int32_t a = (int32_t)(best.key >> 32), b = (int32_t)(best.key & 0xffffffffu);
        NaiveTok nt;
        nt.n = tok[a].n + tok[b].n;
        cr_assert_leq(nt.n, sizeof nt.b);
        memcpy(nt.b, tok[a].b, tok[a].n);
        memcpy(nt.b + tok[a].n, tok[b].b, tok[b].n);
        int32_t x = -1;
        for (int i = 0; i < n_tok; i++)
            if (tok[i].n == nt.n && !memcmp(tok[i].b, nt.b, nt.n)) x = i;
        if (x < 0) tok[x = n_tok++] = nt;
        for (size_t w = 0; w < c.words.n; w++) {
            int32_t *s = sym + c.words.off[w];
            uint32_t o = 0;
            for (uint32_t r = 0; r < len[w];)
                if (r + 1 < len[w] && s[r] == a && s[r + 1] == b) s[o++] = x, r += 2;
                else s[o++] = s[r++];
            len[w] = o;
        }
        char l[200], r[200];
        symbols_of(tok[a].b, tok[a].n, l);
        symbols_of(tok[b].b, tok[b].n, r);
        if (n_merges >= m.n || strcmp(l, m.pair[n_merges][0]) || strcmp(r, m.pair[n_merges][1])) {
            if (bad++ < 5)
                fprintf(stderr, "merge %d: naive (%s, %s) count %lld, trainer (%s, %s)\n", n_merges,
                        l, r, (long long)best.count, n_merges < m.n ? m.pair[n_merges][0] : "-",
                        n_merges < m.n ? m.pair[n_merges][1] : "-");
        }
        n_merges++;
    }
    cr_expect_eq(bad, 0, "%d of %d merges differ from the naive trainer", bad, n_merges);
    cr_expect_eq(n_merges, m.n, "naive %d merges, trainer %d", n_merges, m.n);
    free(pc);
    free(tok);
    free(len);
    free(sym);
    free(text);
    bpe_merges_free(&m);
    bpe_counts_free(&c);
}

/* ---- added tokens, the writer ------------------------------------------------------- */

Test(bpe_train, added_tokens_cut_the_corpus) {
    /* the markers never reach a word; a partial marker is ordinary text */
    const char *docs[] = {"ab<think>cd</think>ef" TOK_USER "gh" TOK_EOS "<think", NULL};
    BpeCounts c;
    BpeMerges m;
    train_docs(docs, tokjson_bytelevel_size(0) + 5, 1, &c, &m);
    const char *want[] = {"ab", "cd", "ef", "gh", "<", "think"};
    cr_assert_eq(c.words.n, 6, "%zu distinct words", c.words.n);
    for (size_t w = 0; w < c.words.n; w++)
        cr_expect(c.words.len[w] == strlen(want[w]) &&
                      !memcmp(c.words.bytes + c.words.off[w], want[w], c.words.len[w]),
                  "word %zu: '%.*s', expected '%s'", w, (int)c.words.len[w],
                  c.words.bytes + c.words.off[w], want[w]);
    bpe_merges_free(&m);
    bpe_counts_free(&c);
}

Test(bpe_train, writer_reuses_the_id_of_an_existing_string) {
    /* "abc" made twice: the second merge points at the first's id, no gap */
    const char *merges[][2] = {{"a", "b"}, {"b", "c"}, {"ab", "c"}, {"a", "bc"}, {"c", "c"}};
    Err e = {{0}};
    cr_assert_eq(tokjson_write_bytelevel(g_dir, (const char *const(*)[2])merges, 5, &e), 0, "%s",
                 e.msg);
    Tokenizer *t = tokenizer_load(g_dir, &e);
    cr_assert_not_null(t, "%s", e.msg);
    int base = tokjson_bytelevel_size(0);
    cr_expect_eq(tokenizer_n_vocab(t), base + 4);
    cr_expect_eq(tokenizer_token_id(t, "abc"), base + 2);
    cr_expect_eq(tokenizer_token_id(t, "cc"), base + 3);
    int *ids, n;
    cr_assert_eq(tokenizer_encode(t, "abc", 3, 0, &ids, &n, &e), 0, "%s", e.msg);
    cr_expect(n == 1 && ids[0] == base + 2, "abc: %d ids, first %d", n, n ? ids[0] : -1);
    free(ids);
    tokenizer_free(t);
}

/* split_digits: no merge holds a digit, so numbers encode one token per
 * digit, while words still merge; without it the frequent numbers merge. */
Test(bpe_train, split_digits_keeps_numbers_one_token_per_digit) {
    const char *docs[] = {"12+34=46 the answer 46, 12*34=408 the answer 408", NULL};
    for (int split = 0; split <= 1; split++) {
        BpeCounts c;
        BpeMerges m;
        Err e = {{0}};
        cr_assert_eq(bpe_counts_init(&c, &e), 0, "%s", e.msg);
        for (int i = 0; i < 50; i++)
            cr_assert_eq(bpe_counts_add_text(&c, docs[0], strlen(docs[0]), &e), 0, "%s", e.msg);
        BpeTrainOpts o = {.vocab_size = tokjson_bytelevel_size(0) + 40, .quiet = 1,
                          .split_digits = split};
        cr_assert_eq(bpe_train(&c, &o, &m, &e), 0, "%s", e.msg);
        int digit_merges = 0;
        for (int i = 0; i < m.n; i++)
            digit_merges += strpbrk(m.pair[i][0], "0123456789") ||
                            strpbrk(m.pair[i][1], "0123456789");
        if (split)
            cr_expect(digit_merges == 0 && m.n >= 5, "%d merges with digits of %d", digit_merges,
                      m.n);
        else
            cr_expect(digit_merges > 0, "no number merged without split_digits");
        bpe_merges_free(&m);
        bpe_counts_free(&c);
    }
}

Test(bpe_train, vocab_below_the_base_is_an_error) {
    BpeCounts c;
    BpeMerges m;
    Err e = {{0}};
    cr_assert_eq(bpe_counts_init(&c, &e), 0);
    BpeTrainOpts o = {.vocab_size = tokjson_bytelevel_size(0) - 1};
    cr_expect_eq(bpe_train(&c, &o, &m, &e), -1);
    cr_expect(strstr(e.msg, "byte-level base of 265 ids"), "%s", e.msg);
    bpe_merges_free(&m);
    /* an empty corpus trains to the base alone */
    o.vocab_size = 1000;
    o.quiet = 1;
    cr_expect_eq(bpe_train(&c, &o, &m, &e), 0, "%s", e.msg);
    cr_expect(m.n == 0 && m.stopped_early && m.n_vocab == tokjson_bytelevel_size(0));
    bpe_merges_free(&m);
    bpe_counts_free(&c);
}

/* ---- the command ---------------------------------------------------------------------- */

/* Text of a seeded mix: English-like words, CJK, accents, emoji, digits,
 * code punctuation, white-space runs, chat markers. */
static void random_text(char *out, size_t cap, size_t target) {
    static const char *const pool[] = {
        "the", " the", " model", " token", " of", " and", "ing", " train", " expert", " attention",
        " 12", " 345", " 3.14", "\n", "\n\n", "  ", "\t", " ", ",", ".", "!", " (x)", " {a: 1}",
        " x += 1;", " caf\xc3\xa9", " na\xc3\xafve", " \xe4\xbd\xa0\xe5\xa5\xbd",
        "\xe4\xb8\x96\xe7\x95\x8c", "\xe6\xb7\xb1\xe5\xba\xa6", " \xd0\x9f\xd1\x80\xd0\xb8",
        " \xf0\x9f\x98\x80", "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd", " don't", " I'll", "'s",
        "<think>", "</think>", TOK_USER, TOK_ASSISTANT, " \xe3\x81\x93\xe3\x82\x93", "\r\n",
    };
    /* and made-up words of syllables, for many distinct words */
    static const char *const syl[] = {"ka", "to", "re", "mi", "sun", "ber", "al", "qu", "ix",
                                      "Ã³n", "ä¸­", "æ", "St", "ZE"};
    enum { NP = sizeof pool / sizeof pool[0], NS = sizeof syl / sizeof syl[0] };
    size_t n = 0;
    while (n < target) {
        char w[64];
        const char *s = pool[rnd(NP)];
        if (rnd(2)) {
            int k = 1 + (int)rnd(4);
            strcpy(w, rnd(3) ? " " : "");
            for (int i = 0; i < k; i++) strcat(w, syl[rnd(NS)]);
            s = w;
        }
        size_t k = strlen(s);
        if (n + k + 1 > cap) break;
        memcpy(out + n, s, k);
        n += k;
    }
    out[n] = 0;
}

static HRun run_whale(char *const argv[]) {
    HRun r;
    cr_assert_eq(h_run(&r, argv, 120), 0, "cannot run %s", argv[0]);
    return r;
}

#define WB ((char *)whale_bin())

/* `whale tokenizer-train --vocab 700 [extra]` on 300 kB of random_text
 * seeded with seed, into DIR out; returns the text (free it). */
static char *cli_train(unsigned seed, const char *out, char *extra) {
    rng_state = seed;
    size_t cap = 400000;
    char *text = malloc(cap);
    cr_assert_not_null(text);
    random_text(text, cap, 300000);
    char name[32];
    snprintf(name, sizeof name, "corpus%u.txt", seed);
    const char *corpus = h_path(g_dir, name);
    cr_assert_eq(h_write_text(corpus, text), 0);
    HRun r = run_whale((char *[]){WB, "tokenizer-train", "--input", (char *)corpus, "--vocab",
                                  "700", "--out", (char *)out, extra, NULL});
    cr_assert(r.exited && r.code == 0, "%s: %s\n%s", r.cmd, h_run_status(&r), r.err);
    h_run_free(&r);
    return text;
}

Test(bpe_train, cli_trained_tokenizer_round_trips_and_matches_js) {
    const char *out = h_path(g_dir, "tok");
    char *text = cli_train(42, out, NULL);
    HRun r;
    Err e = {{0}};
    Tokenizer *t = tokenizer_load(out, &e);
    cr_assert_not_null(t, "%s", e.msg);
    cr_expect_eq(tokenizer_n_vocab(t), 700);
    cr_expect_eq(tokenizer_token_id(t, TOK_USER), TOKJSON_BYTE0_ID + 256);
    /* the merges pay: the corpus takes well under one token per 3 bytes */
    int *ids, n;
    cr_assert_eq(tokenizer_encode(t, text, strlen(text), 0, &ids, &n, &e), 0, "%s", e.msg);
    cr_expect_lt((double)n, strlen(text) / 3.0, "%d tokens for %zu bytes", n, strlen(text));
    free(ids);

    /* strings not in the corpus: another seed, and edge cases */
    enum { NS = 400 };
    static char strs[NS][600];
    const char *fixed[] = {"", " ", "a", "\n\n\n", "<think>x</think>", TOK_BOS "hi" TOK_EOS,
                           "<think", "\xef\xbd\x9c", "   trailing   ", "\xf0\x9f\x98\x80\xf0\x9f\x98\x80"};
    rng_state = 99;
    for (int i = 0; i < NS; i++) {
        if (i < 10) snprintf(strs[i], sizeof strs[i], "%s", fixed[i]);
        else random_text(strs[i], sizeof strs[i], 1 + rnd(400));
    }
    const char *in = h_path(g_dir, "in.jsonl");
    FILE *f = fopen(in, "w");
    cr_assert_not_null(f);
    int bad_rt = 0;
    for (int i = 0; i < NS; i++) {
        json_t *js = json_string(strs[i]);
        cr_assert_not_null(js, "string %d is not UTF-8", i);
        char *line = json_dumps(js, JSON_ENCODE_ANY);
        fprintf(f, "%s\n", line);
        free(line);
        json_decref(js);
        char *d;
        size_t dl;
        cr_assert_eq(tokenizer_encode(t, strs[i], strlen(strs[i]), 0, &ids, &n, &e), 0, "%s", e.msg);
        cr_assert_eq(tokenizer_decode(t, ids, n, 0, &d, &dl, &e), 0, "%s", e.msg);
        if (dl != strlen(strs[i]) || memcmp(d, strs[i], dl)) {
            if (bad_rt++ < 3) fprintf(stderr, "round trip %d: '%s' -> '%s'\n", i, strs[i], d);
        }
        free(d);
        free(ids);
    }
    fclose(f);
    /* invalid UTF-8 round-trips too (not for the oracle: JSON cannot carry it) */
    const char raw[] = "a\xff\xfe b\xc3 \xe4\xb8 the\x80 model";
    char *d;
    size_t dl;
    cr_assert_eq(tokenizer_encode(t, raw, sizeof raw - 1, 0, &ids, &n, &e), 0, "%s", e.msg);
    cr_assert_eq(tokenizer_decode(t, ids, n, 0, &d, &dl, &e), 0, "%s", e.msg);
    cr_expect(dl == sizeof raw - 1 && !memcmp(d, raw, dl), "invalid UTF-8 does not round-trip");
    free(d);
    free(ids);
    cr_expect_eq(bad_rt, 0, "%d of %d strings do not round-trip", bad_rt, NS);
    tokenizer_free(t);

    /* whale tokenize and @lenml/tokenizers on the same file */
    char npm[1100], script[1100];
    snprintf(npm, sizeof npm, "%s/npm.sh", js_dir());
    snprintf(script, sizeof script, "%s/encode.mjs", js_dir());
    cr_assert_eq(h_run(&r, (char *[]){npm, NULL}, 600), 0);
    cr_assert(r.exited && r.code == 0, "%s: %s\n%s", npm, h_run_status(&r), r.err);
    h_run_free(&r);
    const char *js_out = h_path(g_dir, "js.jsonl");
    cr_assert_eq(h_run(&r, (char *[]){"/usr/bin/env", "node", script, (char *)out, (char *)in,
                                      (char *)js_out, NULL}, 120), 0);
    cr_assert(r.exited && r.code == 0, "encode.mjs: %s\n%s", h_run_status(&r), r.err);
    h_run_free(&r);
    r = run_whale((char *[]){WB, "tokenize", "-m", (char *)out, "--jsonl", (char *)in, NULL});
    cr_assert(r.exited && r.code == 0, "%s: %s\n%s", r.cmd, h_run_status(&r), r.err);
    char *want = h_read_file(js_out, NULL), *got = r.out;
    cr_assert_not_null(want);
    int line = 0, diff = 0;
    for (char *p = want, *q = got; *p && *q; line++) {
        char *pe = strchr(p, '\n'), *qe = strchr(q, '\n');
        cr_assert(pe && qe, "unterminated line %d", line + 1);
        if (pe - p != qe - q || memcmp(p, q, (size_t)(pe - p))) {
            if (diff++ < 3)
                fprintf(stderr, "line %d '%s':\n  js    %.*s\n  whale %.*s\n", line + 1, strs[line],
                        (int)(pe - p), p, (int)(qe - q), q);
        }
        p = pe + 1;
        q = qe + 1;
    }
    cr_expect_eq(line, NS, "%d lines compared", line);
    cr_expect_eq(diff, 0, "%d of %d strings encode differently from @lenml/tokenizers", diff, NS);
    free(want);
    h_run_free(&r);
    free(text);
}

/* The file the library writes for these documents (what the command must
 * write when given them as files). */
static char *library_tokenizer(const char *const *docs, int vocab) {
    BpeCounts c;
    BpeMerges m;
    train_docs(docs, vocab, 2, &c, &m);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/lib", g_dir);
    Err e = {{0}};
    mkdir(dir, 0755);
    cr_assert_eq(tokjson_write_bytelevel(dir, (const char *const(*)[2])m.pair, m.n, &e), 0, "%s",
                 e.msg);
    bpe_merges_free(&m);
    bpe_counts_free(&c);
    return h_read_file(h_path(dir, "tokenizer.json"), NULL);
}

Test(bpe_train, cli_inputs_text_and_jsonl_several_ways) {
    rng_state = 5;
    static char a[20000], b[20000], m1[3000], m2[3000];
    random_text(a, sizeof a, 15000);
    random_text(b, sizeof b, 15000);
    random_text(m1, sizeof m1, 2000);
    random_text(m2, sizeof m2, 2000);
    cr_assert_eq(h_write_text(h_path(g_dir, "a.txt"), a), 0);
    /* b as {"text"}, m1 and m2 as one conversation (a null content skipped),
     * with blank lines */
    json_t *l1 = json_pack("{s:s}", "text", b);
    json_t *l2 = json_pack("{s:[{s:s,s:s},{s:s,s:n},{s:s,s:s}]}", "messages", "role", "user",
                           "content", m1, "role", "tool", "content", "role", "assistant",
                           "content", m2);
    char *s1 = json_dumps(l1, JSON_COMPACT), *s2 = json_dumps(l2, JSON_COMPACT);
    FILE *f = fopen(h_path(g_dir, "c.jsonl"), "w");
    fprintf(f, "%s\n\n%s\r\n  \n", s1, s2);
    fclose(f);
    free(s1), free(s2);
    json_decref(l1), json_decref(l2);
    const char *docs[] = {a, b, m1, m2, NULL};
    char *want = library_tokenizer(docs, 600);
    cr_assert_not_null(want);
    /* comma-separated, repeated, --input=, and -m for the output */
    char in1[256], in2[256];
    snprintf(in1, sizeof in1, "%s,%s", h_path(g_dir, "a.txt"), h_path(g_dir, "c.jsonl"));
    snprintf(in2, sizeof in2, "--input=%s", h_path(g_dir, "c.jsonl"));
    char *const ways[][12] = {
        {WB, "tokenizer-train", "--input", in1, "--vocab", "600", "--out", (char *)h_path(g_dir, "o1"), NULL},
        {WB, "tokenizer-train", "-i", (char *)h_path(g_dir, "a.txt"), "-v", "600", in2, "-m",
         (char *)h_path(g_dir, "o2"), NULL},
        {WB, "tokenizer-train", "-v", "600", "-i", (char *)h_path(g_dir, "a.txt"),
         (char *)h_path(g_dir, "c.jsonl"), "-o", (char *)h_path(g_dir, "o3"), NULL},
    };
    for (int k = 0; k < 3; k++) {
        HRun r = run_whale(ways[k]);
        cr_assert(r.exited && r.code == 0, "%s: %s\n%s", r.cmd, h_run_status(&r), r.err);
        h_run_free(&r);
        char name[32];
        snprintf(name, sizeof name, "o%d/tokenizer.json", k + 1);
        char *got = h_read_file(h_path(g_dir, name), NULL);
        cr_assert_not_null(got);
        cr_expect(!strcmp(got, want), "way %d: the command's tokenizer.json differs from the library's", k);
        free(got);
    }
    /* a second run refuses to overwrite without --force, and is deterministic with it */
    HRun r = run_whale(ways[0]);
    cr_expect(r.exited && r.code == 1 && strstr(r.err, "already exists"), "%s", r.err);
    h_run_free(&r);
    free(want);
}

/* --split-digits end to end: the trained tokenizer keeps every digit a
 * token of its own, and `whale init --tokenizer` grows a preset's
 * vocab_size (512) to fit its 700 ids, to a multiple of 8. */
Test(bpe_train, cli_split_digits_and_init_fits_the_vocab) {
    const char *tok = h_path(g_dir, "tokd"), *model = h_path(g_dir, "model");
    free(cli_train(7, tok, "--split-digits"));
    Err e = {{0}};
    Tokenizer *t = tokenizer_load(tok, &e);
    cr_assert_not_null(t, "%s", e.msg);
    cr_expect_eq(tokenizer_n_vocab(t), 700);
    const char *s = " 12 345 3.14 the model 345";
    int *ids, n;
    cr_assert_eq(tokenizer_encode(t, s, strlen(s), 0, &ids, &n, &e), 0, "%s", e.msg);
    int digits = 0;
    for (int i = 0; i < n; i++) {
        char *d;
        size_t dl;
        cr_assert_eq(tokenizer_decode(t, &ids[i], 1, 0, &d, &dl, &e), 0, "%s", e.msg);
        cr_expect(dl == 1 || !strpbrk(d, "0123456789"), "token '%s' holds a digit", d);
        digits += dl == 1 && d[0] >= '0' && d[0] <= '9';
        free(d);
    }
    cr_expect_eq(digits, 11);
    cr_expect_lt(n, (int)strlen(s) - 4, "%d tokens: the words did not merge", n);
    free(ids);
    tokenizer_free(t);
    HRun r = run_whale((char *[]){WB, "init", "--preset", "tiny", "--tokenizer", (char *)tok, "--out",
                             (char *)model, NULL});
    cr_assert(r.exited && r.code == 0, "%s: %s\n%s", r.cmd, h_run_status(&r), r.err);
    h_run_free(&r);
    json_error_t je;
    json_t *c = json_load_file(h_path(model, "config.json"), 0, &je);
    cr_assert_not_null(c, "%s", je.text);
    cr_expect_eq(json_integer_value(json_object_get(c, "vocab_size")), 704);
    json_decref(c);
}

/* Run the command; expect exit code and a stderr line holding needle. */
static void expect_fail(char *const argv[], int code, const char *needle) {
    HRun r = run_whale(argv);
    cr_expect(r.exited && r.code == code && strstr(r.err, needle),
              "%s: %s, stderr: %s (expected exit %d and '%s')", r.cmd, h_run_status(&r), r.err,
              code, needle);
    cr_expect_eq(strchr(r.err, '\n'), r.err + strlen(r.err) - 1, "more than one stderr line: %s", r.err);
    h_run_free(&r);
}

Test(bpe_train, cli_bad_inputs) {
    char *ok = (char *)h_path(g_dir, "ok.txt"), *o = (char *)h_path(g_dir, "o");
    cr_assert_eq(h_write_text(ok, "hello hello world"), 0);
    expect_fail((char *[]){WB, "tokenizer-train", "-i", (char *)h_path(g_dir, "missing.txt"), "--vocab",
                           "300", "-o", o, NULL}, 1, "missing.txt: no such file");
    expect_fail((char *[]){WB, "tokenizer-train", "-i", ok, "--vocab", "100", "-o", o, NULL}, 1,
                "--vocab 100 is below the byte-level base of 265 ids");
    expect_fail((char *[]){WB, "tokenizer-train", "-i", ok, "-o", o, NULL}, 2, "--vocab N is required");
    expect_fail((char *[]){WB, "tokenizer-train", "--vocab", "300", "-o", o, NULL}, 2,
                "--input FILES is required");
    expect_fail((char *[]){WB, "tokenizer-train", "-i", ok, "--vocab", "300", NULL}, 2,
                "--out DIR is required");
    expect_fail((char *[]){WB, "tokenizer-train", "-i", ok, "--vocab", "300", "-o", o, "-i", NULL},
                2, "--input needs at least one file");
    expect_fail((char *[]){WB, "tokenizer-train", "-i", "--vocab", "300", "-o", o, NULL}, 2,
                "--input needs at least one file");
    expect_fail((char *[]){WB, "tokenizer-train", "-i", g_dir, "--vocab", "300", "-o", o, NULL}, 1,
                "is a directory");
    char *bad = (char *)h_path(g_dir, "bad.jsonl");
    const char *cases[][2] = {
        {"{\"text\": \"a\"}\n{\"text\": \"b\"\n", "bad.jsonl:2:"},
        {"{\"text\": \"a\"}\n\n\"just a string\"\n", "bad.jsonl:3:1: expected a JSON object"},
        {"{\"text\": 5}\n", "bad.jsonl:1:1: expected a \"text\" string or a \"messages\" array"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": 1}]}\n",
         "bad.jsonl:1:1: messages[0] must be an object with a string \"content\""},
    };
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(h_write_text(bad, cases[i][0]), 0);
        expect_fail((char *[]){WB, "tokenizer-train", "-i", ok, "-i", bad, "--vocab", "300", "-o",
                               o, NULL}, 1, cases[i][1]);
    }
    /* nothing was written by the failures */
    cr_expect_lt(h_file_size(h_path(o, "tokenizer.json")), 0);
    /* too few pairs for the vocab: a warning, not an error */
    HRun r = run_whale((char *[]){WB, "tokenizer-train", "-i", ok, "--vocab", "1000", "-o", o, NULL});
    cr_expect(r.exited && r.code == 0 && strstr(r.err, "no pair occurs 2 times or more"),
              "%s: %s", h_run_status(&r), r.err);
    h_run_free(&r);
}
