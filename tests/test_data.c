/* SPDX-License-Identifier: MIT */
/* data: token shards (io/tokshard.h), the trainer's loader (train/data.h)
 * and `whale data`. Shards written and read back; sampling reproducible
 * from (seed, index), inside one shard, spread over shards in proportion
 * to their usable windows; evaluation windows disjoint and in order; one
 * test per kind of damaged shard or directory; and the binary on a `whale
 * init --preset tiny` model, its shards compared with the library's own
 * tokenization of every document. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "io/tokshard.h"
#include "tokenizer/tokenizer.h"
#include "train/data.h"
#include "train/data_build.h"

#define RUN_TIMEOUT_S 120

static char g_dir[64];

/* Paths that must outlive h_path's ring of 16 buffers: "g_dir/name". */
static char g_keep[32][160];
static int g_n_keep;
static const char *keep(const char *name) {
    cr_assert_lt(g_n_keep, 32);
    snprintf(g_keep[g_n_keep], sizeof g_keep[0], "%s/%s", g_dir, name);
    return g_keep[g_n_keep++];
}

static void setup(void) {
    g_n_keep = 0;
    cr_assert_eq(h_tmpdir(g_dir, sizeof g_dir, "data"), 0, "mkdtemp failed");
    setenv("WHALE_QUIET", "1", 1);
}

static void teardown(void) { h_rmtree(g_dir); }

TestSuite(data, .init = setup, .fini = teardown);

/* Token j of shard s in the position-coded shards below: which shard and
 * where can be read back from any id. */
#define CODE(s, j) ((int32_t)((s) * 10000 + (j)))
#define CODE_VOCAB 100000

/* Write shard `split`-s.bin of len position-coded tokens. */
static void write_coded(const char *dir, const char *split, int s, int len) {
    int32_t *ids = malloc(sizeof *ids * (size_t)(len ? len : 1));
    cr_assert(ids);
    for (int j = 0; j < len; j++) ids[j] = CODE(s, j);
    char name[64];
    snprintf(name, sizeof name, "%s-%05d.bin", split, s);
    Err err = {{0}};
    cr_assert_eq(tokshard_write(h_path(dir, name), ids, (size_t)len, CODE_VOCAB, -1, 7, &err), 0,
                 "%s", err.msg);
    free(ids);
}

static void open_ok(TokenShards *s, const char *dir, const char *split, int vocab) {
    Err err = {{0}};
    cr_assert_eq(shards_open(s, dir, split, vocab, &err), 0, "shards_open: %s", err.msg);
}

/* shards_open must fail with a message holding every needle. */
static void open_fails(const char *dir, const char *split, int vocab, const char *const *needles) {
    TokenShards s;
    Err err = {{0}};
    cr_assert_neq(shards_open(&s, dir, split, vocab, &err), 0, "shards_open accepted %s", dir);
    cr_assert_eq(s.n_shards, 0);
    cr_assert_null(s.shards);
    for (; *needles; needles++)
        cr_assert(strstr(err.msg, *needles), "message '%s' lacks '%s'", err.msg, *needles);
    shards_close(&s); /* zeroed: must be harmless */
}
#define OPEN_FAILS(dir, split, vocab, ...) \
    open_fails(dir, split, vocab, (const char *const[]){__VA_ARGS__, NULL})

/* ---- format and loader ------------------------------------------------------------ */

Test(data, roundtrip) {
    int lens[3] = {100, 0, 37};
    for (int s = 0; s < 3; s++) write_coded(g_dir, "train", s, lens[s]);
    write_coded(g_dir, "val", 0, 5);
    cr_assert_eq(shards_count(g_dir, "train"), 3);
    cr_assert_eq(shards_count(g_dir, "val"), 1);
    cr_assert_eq(shards_count(g_dir, "test"), 0);
    TokenShards s;
    open_ok(&s, g_dir, "train", CODE_VOCAB);
    cr_assert_eq(s.n_shards, 3);
    cr_assert_eq(shards_n_tokens(&s), 137);
    cr_assert_eq(s.vocab_size, CODE_VOCAB);
    cr_assert_eq(s.bos_id, -1);
    cr_assert_eq(s.eos_id, 7);
    int32_t w[137];
    /* the whole of shard 0 as one window, then shard 2 */
    cr_assert_eq(shards_n_windows(&s, 100), 1);
    cr_assert_eq(shards_window(&s, 0, 100, w), 0);
    for (int j = 0; j < 100; j++) cr_assert_eq(w[j], CODE(0, j), "token %d: %d", j, w[j]);
    cr_assert_eq(shards_n_windows(&s, 37), 2 + 1);
    cr_assert_eq(shards_window(&s, 2, 37, w), 0);
    for (int j = 0; j < 37; j++) cr_assert_eq(w[j], CODE(2, j));
    shards_close(&s);
    shards_close(&s); /* twice: the first zeroed it */
    /* vocab_size <= 0 skips the comparison */
    open_ok(&s, g_dir, "val", 0);
    cr_assert_eq(shards_n_tokens(&s), 5);
    shards_close(&s);
}

Test(data, header_bytes_are_as_documented) {
    int32_t ids[3] = {5, 0, 511};
    Err err = {{0}};
    const char *p = h_path(g_dir, "train-00000.bin");
    cr_assert_eq(tokshard_write(p, ids, 3, 512, 0, 1, &err), 0, "%s", err.msg);
    size_t n;
    unsigned char *b = (unsigned char *)h_read_file(p, &n);
    cr_assert(b);
    cr_assert_eq(n, 64 + 12);
    cr_assert_eq(memcmp(b, "WHALETOK", 8), 0);
    uint32_t u[6];
    uint64_t q[2];
    memcpy(u, b + 8, 8);
    memcpy(&q[0], b + 16, 8);
    memcpy(u + 2, b + 24, 16);
    memcpy(&q[1], b + 40, 8);
    cr_assert_eq(u[0], 1);       /* version */
    cr_assert_eq(u[1], 64);      /* header_size */
    cr_assert_eq(q[0], 3);       /* n_tokens */
    cr_assert_eq(u[2], 512);     /* vocab_size */
    cr_assert_eq(u[3], 4);       /* token_bytes */
    cr_assert_eq((int32_t)u[4], 0);
    cr_assert_eq((int32_t)u[5], 1);
    /* checksum: a = sum(t + 1), b = running sum of a, a ^ rotl(b, 32) */
    uint64_t a = 0, bb = 0;
    for (int i = 0; i < 3; i++) a += (uint64_t)ids[i] + 1, bb += a;
    cr_assert_eq(q[1], a ^ (bb << 32 | bb >> 32));
    for (int i = 48; i < 64; i++) cr_assert_eq(b[i], 0, "reserved byte %d", i);
    uint32_t t[3];
    memcpy(t, b + 64, 12);
    cr_assert(t[0] == 5 && t[1] == 0 && t[2] == 511);
    free(b);
}

Test(data, checksum_in_pieces_equals_the_definition) {
    enum { N = 10000 };
    uint32_t *t = malloc(sizeof *t * N);
    cr_assert(t);
    uint64_t x = 88172645463325252ull, a = 0, b = 0;
    for (int i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        t[i] = i % 97 == 0 ? 0xffffffffu : (uint32_t)x; /* the largest id too */
        a += (uint64_t)t[i] + 1;
        b += a;
    }
    uint64_t want = a ^ (b << 32 | b >> 32);
    TokShardSum one = {0, 0}, pieces = {0, 0};
    tokshard_sum_update(&one, t, N);
    cr_assert_eq(tokshard_sum_final(&one), want, "%016llx vs %016llx",
                 (unsigned long long)tokshard_sum_final(&one), (unsigned long long)want);
    for (size_t i = 0, k = 1; i < N; i += k, k = k * 3 + 1) /* 1, 4, 13, ... 4096+ pieces */
        tokshard_sum_update(&pieces, t + i, i + k <= N ? k : N - i);
    cr_assert_eq(tokshard_sum_final(&pieces), want);
    free(t);
}

Test(data, writer_is_atomic) {
    TokShardWriter w;
    Err err = {{0}};
    const char *p = h_path(g_dir, "train-00000.bin");
    cr_assert_eq(tokshard_writer_open(&w, p, 10, -1, -1, &err), 0, "%s", err.msg);
    int32_t ok[2] = {1, 2}, bad[2] = {3, 10};
    cr_assert_eq(tokshard_writer_append(&w, ok, 2, &err), 0);
    cr_assert_neq(tokshard_writer_append(&w, bad, 2, &err), 0, "id 10 >= vocab 10 accepted");
    cr_assert(strstr(err.msg, "10"), "%s", err.msg);
    cr_assert_eq(access(p, F_OK), -1, "the shard exists before commit");
    tokshard_writer_abort(&w);
    tokshard_writer_abort(&w);
    cr_assert_eq(access(p, F_OK), -1);
    /* nothing left behind in the directory, not even a temp file */
    cr_assert_eq(shards_count(g_dir, "train"), 0);
    DIR *d = opendir(g_dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) n += e->d_name[0] != '.';
    closedir(d);
    cr_assert_eq(n, 0, "files left after abort");
    /* a bad vocab or bos is refused before anything is created */
    cr_assert_neq(tokshard_writer_open(&w, p, 0, -1, -1, &err), 0);
    cr_assert_neq(tokshard_writer_open(&w, p, 10, 10, -1, &err), 0);
}

Test(data, sampling_is_reproducible_and_stays_in_one_shard) {
    int lens[4] = {300, 20, 1000, 64};
    for (int s = 0; s < 4; s++) write_coded(g_dir, "train", s, lens[s]);
    TokenShards s;
    open_ok(&s, g_dir, "train", CODE_VOCAB);
    enum { N = 64, DRAWS = 2000 };
    int32_t w[N], w2[N];
    Err err = {{0}};
    int64_t *first = malloc(sizeof *first * DRAWS);
    cr_assert(first);
    for (int i = 0; i < DRAWS; i++) {
        cr_assert_eq(shards_sample(&s, 42, (uint64_t)i, N, w, &err), 0, "%s", err.msg);
        int sh = w[0] / 10000, off = w[0] % 10000;
        cr_assert(sh >= 0 && sh < 4 && sh != 1, "draw %d from shard %d (too short for %d)", i, sh, N);
        cr_assert_leq(off + N, lens[sh], "draw %d runs past shard %d", i, sh);
        for (int j = 0; j < N; j++)
            cr_assert_eq(w[j], CODE(sh, off + j), "draw %d not contiguous at %d", i, j);
        first[i] = w[0];
    }
    /* a resumed run: indices 1000.. drawn alone, in reverse, equal the run */
    for (int i = DRAWS - 1; i >= 1000; i--) {
        cr_assert_eq(shards_sample(&s, 42, (uint64_t)i, N, w2, &err), 0);
        cr_assert_eq(w2[0], first[i], "index %d drew a different window on resume", i);
    }
    /* another seed draws another sequence */
    int same = 0;
    for (int i = 0; i < 200; i++) {
        cr_assert_eq(shards_sample(&s, 43, (uint64_t)i, N, w2, &err), 0);
        same += w2[0] == first[i];
    }
    cr_assert_lt(same, 10, "seed 43 repeats seed 42 on %d of 200 draws", same);
    /* too long for every shard; n <= 0 */
    cr_assert_neq(shards_sample(&s, 1, 0, 1001, w, &err), 0);
    cr_assert(strstr(err.msg, "1000"), "%s", err.msg);
    cr_assert_neq(shards_sample(&s, 1, 0, 0, w, &err), 0);
    free(first);
    shards_close(&s);
}

Test(data, sampling_follows_usable_windows) {
    /* usable windows of 64 tokens: 37, 0 (too short), 237, 1 */
    int lens[4] = {100, 50, 300, 64};
    for (int s = 0; s < 4; s++) write_coded(g_dir, "train", s, lens[s]);
    TokenShards s;
    open_ok(&s, g_dir, "train", CODE_VOCAB);
    enum { N = 64, DRAWS = 40000 };
    int usable[4] = {37, 0, 237, 1}, total = 275;
    int count[4] = {0}, *starts = calloc(4 * 300, sizeof *starts);
    cr_assert(starts);
    int32_t w[N];
    Err err = {{0}};
    for (int i = 0; i < DRAWS; i++) {
        cr_assert_eq(shards_sample(&s, 7, (uint64_t)i, N, w, &err), 0, "%s", err.msg);
        int sh = w[0] / 10000, off = w[0] % 10000;
        count[sh]++;
        starts[sh * 300 + off]++;
    }
    for (int sh = 0; sh < 4; sh++) {
        double p = (double)usable[sh] / total, got = (double)count[sh] / DRAWS;
        double sd = sqrt(p * (1 - p) / DRAWS);
        cr_assert_leq(fabs(got - p), 5 * sd + 1e-12, "shard %d: share %.4f, expected %.4f (sd %.4f)",
                      sh, got, p, sd);
        /* every start of a usable shard is drawn, each about equally often */
        double per = (double)DRAWS / total;
        for (int off = 0; off < usable[sh]; off++) {
            int c = starts[sh * 300 + off];
            cr_assert(c > per / 3 && c < per * 3, "shard %d start %d drawn %d times (expected %.0f)",
                      sh, off, c, per);
        }
    }
    cr_assert_eq(count[1], 0);
    free(starts);
    shards_close(&s);
}

/* --doc-start: windows begin at document starts (BOS, or after EOS when
 * there is no BOS), each start where the window fits drawn about equally
 * often, and none elsewhere. */
static void doc_start_case(int bos, int eos) {
    enum { LEN = 200, N = 40, DRAWS = 20000 };
    int32_t ids[LEN];
    int is_start[LEN] = {0}, n_fit = 0, at = 0;
    for (int d = 0; at < LEN; d++) { /* documents of 3, 10, 17, ... tokens */
        int len = 3 + (7 * d) % 29;
        for (int j = 0; j < len && at < LEN; j++, at++) {
            ids[at] = 10 + at;
            if (j == 0) is_start[at] = 1;
            if (j == 0 && bos >= 0) ids[at] = bos;
            if (j == len - 1 && eos >= 0) ids[at] = eos;
        }
    }
    for (int k = 0; k + N <= LEN; k++) n_fit += is_start[k];
    Err err = {{0}};
    cr_assert_eq(tokshard_write(h_path(g_dir, "train-00000.bin"), ids, LEN, 1000, bos, eos, &err), 0,
                 "%s", err.msg);
    TokenShards s;
    open_ok(&s, g_dir, "train", 1000);
    cr_assert_eq(shards_index_docs(&s, &err), 0, "%s", err.msg);
    int count[LEN] = {0};
    int32_t w[N];
    for (int i = 0; i < DRAWS; i++) {
        cr_assert_eq(shards_sample(&s, 3, (uint64_t)i, N, w, &err), 0, "%s", err.msg);
        int k = 0;
        while (k + N <= LEN && memcmp(ids + k, w, sizeof w)) k++;
        cr_assert(k + N <= LEN && is_start[k], "window %d starts at %d, not a document start", i, k);
        count[k]++;
    }
    const double per = (double)DRAWS / n_fit;
    for (int k = 0; k + N <= LEN; k++)
        if (is_start[k])
            cr_assert(count[k] > per / 2 && count[k] < per * 2, "start %d drawn %d times (%.0f)", k,
                      count[k], per);
    shards_close(&s);
}

Test(data, doc_start_windows_by_bos) { doc_start_case(1, 2); }
Test(data, doc_start_windows_by_eos) { doc_start_case(-1, 2); }

/* After shards_index_docs, evaluation windows begin at document starts,
 * each at the first start at or after the previous window's end (documents
 * longer than a window included), like --doc-start training windows. */
Test(data, eval_windows_follow_document_starts) {
    enum { LEN = 300, N = 40 };
    int32_t ids[LEN];
    int is_start[LEN] = {0}, at = 0;
    for (int d = 0; at < LEN; d++) { /* documents of 5, 16, ..., 60 tokens */
        int len = 5 + (11 * d) % 56;
        for (int j = 0; j < len && at < LEN; j++, at++) {
            ids[at] = j == 0 ? 1 : 10 + at;
            if (j == 0) is_start[at] = 1;
        }
    }
    Err err = {{0}};
    cr_assert_eq(tokshard_write(h_path(g_dir, "val-00000.bin"), ids, LEN, 1000, 1, -1, &err), 0,
                 "%s", err.msg);
    TokenShards s;
    open_ok(&s, g_dir, "val", 1000);
    cr_assert_eq(shards_index_docs(&s, &err), 0, "%s", err.msg);
    int64_t want = 0; /* the greedy walk, by hand */
    for (int k = 0; k + N <= LEN;) {
        if (!is_start[k]) { k++; continue; }
        want++;
        k += N;
    }
    int64_t nw = shards_n_windows(&s, N);
    cr_assert_eq(nw, want);
    int32_t w[N];
    int end = 0;
    for (int64_t i = 0; i < nw; i++) {
        cr_assert_eq(shards_window(&s, i, N, w), 0);
        int k = (int)(w[1] - 11); /* no document is one token long: w[1] is 10 + position */
        cr_assert(k >= end && k + N <= LEN && !memcmp(ids + k, w, sizeof w),
                  "window %lld not found after %d", (long long)i, end);
        cr_assert(is_start[k], "window %lld starts at %d, not a document start", (long long)i, k);
        for (int j = end; j < k; j++)
            cr_assert(!is_start[j], "window %lld skips the document at %d", (long long)i, j);
        end = k + N;
    }
    cr_assert_neq(shards_window(&s, nw, N, w), 0);
    shards_close(&s);
}

Test(data, eval_windows_are_disjoint_and_in_order) {
    int lens[3] = {130, 10, 64};
    for (int s = 0; s < 3; s++) write_coded(g_dir, "val", s, lens[s]);
    TokenShards s;
    open_ok(&s, g_dir, "val", CODE_VOCAB);
    enum { N = 32 };
    int64_t nw = shards_n_windows(&s, N);
    cr_assert_eq(nw, 4 + 0 + 2);
    unsigned char seen[3][130] = {{0}};
    int32_t w[N];
    int prev = -1;
    for (int64_t k = 0; k < nw; k++) {
        cr_assert_eq(shards_window(&s, k, N, w), 0);
        int sh = w[0] / 10000, off = w[0] % 10000;
        cr_assert_eq(off % N, 0, "window %lld starts at %d", (long long)k, off);
        cr_assert_gt(sh * 1000 + off, prev, "window %lld out of order", (long long)k);
        prev = sh * 1000 + off;
        for (int j = 0; j < N; j++) {
            cr_assert_eq(w[j], CODE(sh, off + j));
            cr_assert_eq(seen[sh][off + j]++, 0, "token %d of shard %d in two windows", off + j, sh);
        }
    }
    cr_assert_neq(shards_window(&s, nw, N, w), 0);
    cr_assert_neq(shards_window(&s, -1, N, w), 0);
    cr_assert_eq(shards_n_windows(&s, 0), 0);
    cr_assert_eq(shards_n_windows(&s, 1), 204);
    shards_close(&s);
}

/* ---- damaged shards ------------------------------------------------------------------ */

/* A valid 8-token shard (vocab 512) as bytes; caller frees. */
static unsigned char *good_shard(size_t *n) {
    int32_t ids[8] = {0, 5, 9, 300, 511, 2, 2, 1};
    const char *p = h_path(g_dir, "good.tmp");
    Err err = {{0}};
    cr_assert_eq(tokshard_write(p, ids, 8, 512, 0, 1, &err), 0, "%s", err.msg);
    unsigned char *b = (unsigned char *)h_read_file(p, n);
    cr_assert(b && *n == 64 + 32);
    unlink(p);
    return b;
}

static void put_shard(const unsigned char *b, size_t n) {
    cr_assert_eq(h_write_file(h_path(g_dir, "train-00000.bin"), b, n), 0);
}

static void set32(unsigned char *b, size_t at, uint32_t v) { memcpy(b + at, &v, 4); }
static void set64(unsigned char *b, size_t at, uint64_t v) { memcpy(b + at, &v, 8); }

/* Rewrite the checksum after editing ids, so that only the edit is wrong. */
static void fix_checksum(unsigned char *b, size_t n) {
    TokShardSum sum = {0, 0};
    uint32_t t[64];
    size_t k = (n - 64) / 4;
    memcpy(t, b + 64, 4 * k);
    tokshard_sum_update(&sum, t, k);
    set64(b, 40, tokshard_sum_final(&sum));
}

Test(data, truncated_shard) {
    size_t n;
    unsigned char *b = good_shard(&n);
    put_shard(b, n - 4);
    OPEN_FAILS(g_dir, "train", 512, "train-00000.bin", "truncated");
    put_shard(b, 30);
    OPEN_FAILS(g_dir, "train", 512, "train-00000.bin", "truncated");
    put_shard(b, 0);
    OPEN_FAILS(g_dir, "train", 512, "train-00000.bin", "truncated");
    /* every prefix fails cleanly */
    for (size_t k = 0; k < n; k++) {
        TokShardHeader h;
        const unsigned char *ids;
        Err err = {{0}};
        cr_assert_neq(tokshard_parse(b, k, "x", 512, &h, &ids, &err), 0, "prefix %zu parsed", k);
        cr_assert_null(ids);
    }
    free(b);
}

Test(data, bad_magic_version_width_header_size) {
    /* one field of a good shard changed at a time */
    static const struct {
        size_t at;
        uint32_t value;
        int vocab;
        const char *needle;
    } cases[] = {
        {0, 0x4c414858u, 512, "bad magic"}, /* "XHAL..." */
        {8, 2, 512, "version 2"},
        {28, 2, 512, "token width 2"},
        {12, 60, 512, "header_size 60"},
        {12, 0xfffffff8u, 512, "truncated"},
        {24, 0, 0, "vocab_size 0"},
        {24, 0x80000000u, 0, "vocab_size 2147483648"},
        {32, 0xfffffffeu, 512, "bos_id -2"},
        {36, 512, 512, "eos_id 512"},
    };
    size_t n;
    unsigned char *good = good_shard(&n), *b = malloc(n);
    cr_assert(b);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(b, good, n);
        set32(b, cases[i].at, cases[i].value);
        put_shard(b, n);
        OPEN_FAILS(g_dir, "train", cases[i].vocab, "train-00000.bin", cases[i].needle);
    }
    free(b);
    free(good);
}

Test(data, token_count_lies) {
    size_t n;
    unsigned char *b = good_shard(&n);
    set64(b, 16, 9); /* one more than the file holds */
    put_shard(b, n);
    OPEN_FAILS(g_dir, "train", 512, "train-00000.bin", "9 tokens", "truncated");
    set64(b, 16, 7);
    put_shard(b, n);
    OPEN_FAILS(g_dir, "train", 512, "train-00000.bin", "7 tokens", "trailing bytes");
    set64(b, 16, UINT64_MAX / 2); /* 4 * n overflows */
    put_shard(b, n);
    OPEN_FAILS(g_dir, "train", 512, "train-00000.bin", "truncated");
    set64(b, 16, 8);
    put_shard(b, n - 2); /* not a whole id */
    OPEN_FAILS(g_dir, "train", 512, "train-00000.bin");
    free(b);
}

Test(data, id_out_of_range) {
    size_t n;
    unsigned char *b = good_shard(&n);
    set32(b, 64 + 4 * 3, 512);
    fix_checksum(b, n);
    put_shard(b, n);
    OPEN_FAILS(g_dir, "train", 512, "train-00000.bin", "token 3", "id 512");
    /* vocab_size <= 0 still checks ids against the header's vocabulary */
    OPEN_FAILS(g_dir, "train", 0, "train-00000.bin", "id 512");
    set32(b, 64 + 4 * 7, 0xffffffffu);
    set32(b, 64 + 4 * 3, 3);
    fix_checksum(b, n);
    put_shard(b, n);
    OPEN_FAILS(g_dir, "train", 512, "train-00000.bin", "token 7", "4294967295");
    free(b);
}

Test(data, checksum_catches_damage) {
    size_t n;
    unsigned char *b = good_shard(&n);
    set32(b, 64 + 4 * 2, 10); /* 9 -> 10: still a valid id */
    put_shard(b, n);
    OPEN_FAILS(g_dir, "train", 512, "train-00000.bin", "checksum mismatch");
    free(b);
    /* two ids swapped: the sum alone would not see it */
    b = good_shard(&n);
    unsigned char t[4];
    memcpy(t, b + 64 + 4, 4);
    memcpy(b + 64 + 4, b + 64 + 8, 4);
    memcpy(b + 64 + 8, t, 4);
    put_shard(b, n);
    OPEN_FAILS(g_dir, "train", 512, "checksum mismatch");
    free(b);
    /* any byte changed anywhere but in bos/eos and the reserved bytes is caught */
    b = good_shard(&n);
    for (size_t i = 0; i < n; i++) {
        if ((i >= 32 && i < 40) || (i >= 48 && i < 64)) continue;
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (unsigned char)(1u << bit);
            TokShardHeader h;
            const unsigned char *ids;
            Err err = {{0}};
            cr_assert_neq(tokshard_parse(b, n, "x", 512, &h, &ids, &err), 0,
                          "byte %zu bit %d flipped: parsed", i, bit);
            b[i] ^= (unsigned char)(1u << bit);
        }
    }
    TokShardHeader h;
    const unsigned char *ids;
    Err err = {{0}};
    cr_assert_eq(tokshard_parse(b, n, "x", 512, &h, &ids, &err), 0, "%s", err.msg);
    cr_assert_eq(ids, b + 64);
    free(b);
}

Test(data, vocab_mismatch) {
    size_t n;
    unsigned char *b = good_shard(&n);
    put_shard(b, n);
    OPEN_FAILS(g_dir, "train", 129280, "train-00000.bin", "tokenizer/model vocab mismatch", "512",
               "129280");
    TokenShards s;
    open_ok(&s, g_dir, "train", 512);
    shards_close(&s);
    free(b);
}

Test(data, empty_or_gapped_directory) {
    OPEN_FAILS(g_dir, "train", 512, g_dir, "no train shards");
    OPEN_FAILS(h_path(g_dir, "nowhere"), "train", 512, "nowhere", "cannot read");
    write_coded(g_dir, "val", 0, 10); /* val shards are not train shards */
    h_write_text(h_path(g_dir, "train-00000.bin.tmp.123"), "junk"); /* nor are temp files */
    OPEN_FAILS(g_dir, "train", 0, "no train shards");
    write_coded(g_dir, "train", 0, 10);
    write_coded(g_dir, "train", 2, 10);
    OPEN_FAILS(g_dir, "train", 0, "train shard 1 is missing", "train-00002.bin");
    write_coded(g_dir, "train", 1, 10);
    cr_assert_eq(h_copy_file(h_path(g_dir, "train-00001.bin"), h_path(g_dir, "train-1.bin")), 0);
    OPEN_FAILS(g_dir, "train", 0, "train-1.bin", "train-00001.bin", "shard 1");
    unlink(h_path(g_dir, "train-1.bin"));
    TokenShards s;
    open_ok(&s, g_dir, "train", 0);
    cr_assert_eq(s.n_shards, 3);
    shards_close(&s);
    OPEN_FAILS(g_dir, "../x", 0, "bad split");
}

Test(data, shards_disagree) {
    int32_t ids[2] = {1, 2};
    Err err = {{0}};
    cr_assert_eq(tokshard_write(h_path(g_dir, "train-00000.bin"), ids, 2, 512, 0, 1, &err), 0);
    cr_assert_eq(tokshard_write(h_path(g_dir, "train-00001.bin"), ids, 2, 600, 0, 1, &err), 0);
    OPEN_FAILS(g_dir, "train", 0, "disagree", "train-00001.bin", "600");
    OPEN_FAILS(g_dir, "train", 512, "train-00001.bin", "vocab mismatch");
    cr_assert_eq(tokshard_write(h_path(g_dir, "train-00001.bin"), ids, 2, 512, 0, 3, &err), 0);
    OPEN_FAILS(g_dir, "train", 512, "disagree", "eos");
}

Test(data, n_val) {
    cr_assert_eq(data_build_n_val(0, 0.01, -1), 0);
    cr_assert_eq(data_build_n_val(1, 0.5, -1), 0);   /* train keeps its only document */
    cr_assert_eq(data_build_n_val(2, 0.01, -1), 1);  /* at least one when there are two */
    cr_assert_eq(data_build_n_val(1000, 0.01, -1), 10);
    cr_assert_eq(data_build_n_val(1000, 0, -1), 0);
    cr_assert_eq(data_build_n_val(1000, 0.01, 3), 3);
    cr_assert_eq(data_build_n_val(5, 0.01, 9), 4);
    cr_assert_eq(data_build_n_val(5, 0.01, 0), 0);
}

/* ---- whale data ------------------------------------------------------------------------ */

static const char *whale_bin(void) {
    const char *b = getenv("WHALE_BIN");
    if (!b || !b[0]) b = "build/whale";
    cr_assert(access(b, X_OK) == 0, "whale binary %s is not executable (set WHALE_BIN)", b);
    return b;
}

static void whale_v(HRun *r, const char *const *args) {
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)whale_bin();
    for (; *args; args++) argv[n++] = (char *)*args;
    argv[n] = NULL;
    cr_assert_eq(h_run(r, argv, RUN_TIMEOUT_S), 0, "cannot run %s", argv[0]);
}
#define WHALE(r, ...) whale_v(r, (const char *const[]){__VA_ARGS__, NULL})

static void expect_ok(const HRun *r) {
    cr_assert(r->exited && r->code == 0, "%s: expected exit 0, got %s; stderr:\n%s", r->cmd,
              h_run_status(r), r->err);
    cr_assert_null(strstr(r->err, "Sanitizer"), "%s: sanitizer report:\n%s", r->cmd, r->err);
}

/* Exit code `code`, one stderr line holding every needle, no crash. */
static void expect_fail(const HRun *r, int code, const char *const *needles) {
    cr_assert(r->exited && r->code == code, "%s: expected exit %d, got %s; stderr:\n%s", r->cmd,
              code, h_run_status(r), r->err);
    cr_assert_null(strstr(r->err, "Sanitizer"), "%s: sanitizer report:\n%s", r->cmd, r->err);
    cr_assert_eq(h_count_lines(r->err), 1, "%s: stderr is not one line:\n%s", r->cmd, r->err);
    for (; *needles; needles++)
        cr_assert(strstr(r->err, *needles), "%s: stderr lacks '%s':\n%s", r->cmd, *needles, r->err);
}
#define EXPECT_FAIL(r, code, ...) expect_fail(r, code, (const char *const[]){__VA_ARGS__, NULL})

static const char *make_tiny(void) {
    const char *m = keep("m");
    HRun r;
    WHALE(&r, "init", "--preset", "tiny", "--out", m);
    expect_ok(&r);
    h_run_free(&r);
    return m;
}

/* All ids of a split, concatenated in shard order; *n gets the count. */
static int32_t *read_split(const char *dir, const char *split, int vocab, int64_t *n) {
    TokenShards s;
    open_ok(&s, dir, split, vocab);
    *n = shards_n_tokens(&s);
    int32_t *all = malloc(sizeof *all * (size_t)(*n + 1)), *p = all;
    cr_assert(all);
    for (int i = 0; i < s.n_shards; i++) {
        TokenShards one = s;
        one.shards = &s.shards[i];
        one.n_shards = 1;
        if (s.shards[i].n_tokens) cr_assert_eq(shards_window(&one, 0, (int)s.shards[i].n_tokens, p), 0);
        p += s.shards[i].n_tokens;
    }
    shards_close(&s);
    return all;
}

/* [BOS] ids EOS of one text, as whale data frames it. */
static int frame(const Tokenizer *tok, const char *text, int32_t *out) {
    int *ids, n;
    Err err = {{0}};
    cr_assert_eq(tokenizer_encode(tok, text, strlen(text), 0, &ids, &n, &err), 0, "%s", err.msg);
    int k = 0;
    if (!(n && ids[0] == tokenizer_bos_id(tok))) out[k++] = tokenizer_bos_id(tok);
    for (int i = 0; i < n; i++) out[k++] = ids[i];
    if (!(n && ids[n - 1] == tokenizer_eos_id(tok))) out[k++] = tokenizer_eos_id(tok);
    free(ids);
    return k;
}

static void expect_stream(const int32_t *got, int64_t n_got, const int32_t *want, int64_t n_want,
                          const char *what) {
    for (int64_t i = 0; i < n_got && i < n_want; i++)
        cr_assert_eq(got[i], want[i], "%s: id %lld is %d, expected %d", what, (long long)i, got[i],
                     want[i]);
    cr_assert_eq(n_got, n_want, "%s: %lld ids, expected %lld", what, (long long)n_got,
                 (long long)n_want);
}

Test(data, cli_shards_match_the_tokenizer) {
    const char *m = make_tiny(), *in = keep("in"), *out = keep("out");
    cr_assert_eq(mkdir(in, 0755), 0);
    /* 2 text files + 4 JSONL documents (a blank line between) = 6 documents */
    const char *texts[6] = {"The first document.\nTwo lines.", "Zweites Dokument: \xc3\xa4\xc3\xb6",
                            "json text one", "json text two", NULL, "last"};
    cr_assert_eq(h_write_text(h_path(in, "a.txt"), texts[0]), 0);
    cr_assert_eq(h_write_text(h_path(in, "b.txt"), texts[1]), 0);
    cr_assert_eq(h_write_text(h_path(in, "c.jsonl"),
                              "{\"text\": \"json text one\"}\n{\"text\": \"json text two\"}\n\n"
                              "{\"messages\": [{\"role\": \"system\", \"content\": \"S\"}, "
                              "{\"role\": \"user\", \"content\": \"Q\"}, {\"role\": \"assistant\", "
                              "\"content\": \"A\"}]}\r\n{\"text\": \"last\"}\n"),
                 0);
    HRun r;
    WHALE(&r, "data", "-m", m, "--input", h_path(in, "a.txt"), h_path(in, "b.txt"), "--input",
          h_path(in, "c.jsonl"), "--out", out, "--shard-tokens", "16", "--val-docs", "2", "-t", "2");
    expect_ok(&r);
    h_run_free(&r);

    /* expected: each document framed; val documents 2 and 5 of 6 */
    Err err = {{0}};
    Tokenizer *tok = tokenizer_load(m, &err);
    cr_assert(tok, "%s", err.msg);
    /* the chat document as whale's deepseek-r1 template renders it (whale init's
     * tokenizer has <think>): BOS, system, User, Q, Assistant, A, EOS */
    char chat[256];
    snprintf(chat, sizeof chat,
             "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>S<\xef\xbd\x9cUser"
             "\xef\xbd\x9c>Q<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>A<\xef\xbd\x9c"
             "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>");
    texts[4] = chat;
    int32_t want[2][512];
    int64_t nw[2] = {0, 0};
    for (int d = 0; d < 6; d++) {
        int v = d == 2 || d == 5; /* floor((i+1)*2/6) > floor(i*2/6) */
        nw[v] += frame(tok, texts[d], want[v] + nw[v]);
    }
    int64_t n;
    int32_t *got = read_split(out, "train", 512, &n);
    expect_stream(got, n, want[0], nw[0], "train");
    free(got);
    got = read_split(out, "val", 512, &n);
    expect_stream(got, n, want[1], nw[1], "val");
    free(got);
    cr_assert_eq(shards_count(out, "train"), (int)((nw[0] + 15) / 16));
    cr_assert_eq(shards_count(out, "val"), (int)((nw[1] + 15) / 16));
    /* the chat document brings its own BOS and EOS (template markers): not doubled */
    int32_t c[256];
    int nc = frame(tok, chat, c);
    cr_assert(nc > 4 && c[0] == tokenizer_bos_id(tok) && c[1] != c[0] &&
              c[nc - 1] == tokenizer_eos_id(tok) && c[nc - 2] != c[nc - 1]);
    tokenizer_free(tok);
}

Test(data, cli_output_is_deterministic_and_replaces_old_shards) {
    const char *m = make_tiny(), *in = keep("in.jsonl");
    char text[8192];
    size_t k = 0;
    for (int i = 0; i < 200; i++)
        k += (size_t)snprintf(text + k, sizeof text - k, "{\"text\": \"document %d: %s\"}\n", i,
                              i % 3 ? "alpha beta" : "gamma");
    cr_assert_eq(h_write_text(in, text), 0);
    const char *o1 = keep("o1"), *o2 = keep("o2");
    HRun r;
    WHALE(&r, "data", "-m", m, "--input", in, "--out", o1, "--shard-tokens", "500", "-t", "1");
    expect_ok(&r);
    h_run_free(&r);
    WHALE(&r, "data", "-m", m, "--input", in, "--out", o2, "--shard-tokens", "500", "-t", "2");
    expect_ok(&r);
    h_run_free(&r);
    int n1 = shards_count(o1, "train");
    cr_assert_gt(n1, 3);
    cr_assert_eq(shards_count(o2, "train"), n1);
    cr_assert_eq(shards_count(o1, "val"), 1); /* 200 docs * 0.01 = 2 val docs, < 500 tokens */
    for (int i = 0; i < n1; i++) {
        char name[32];
        snprintf(name, sizeof name, "train-%05d.bin", i);
        size_t a = 0, b = 1;
        char *x = h_read_file(h_path(o1, name), &a), *y = h_read_file(h_path(o2, name), &b);
        cr_assert(x && y && a == b && !memcmp(x, y, a), "%s differs between -t 1 and -t 2", name);
        free(x);
        free(y);
    }
    /* again into o1 with bigger shards and no val split: the old files go */
    WHALE(&r, "data", "-m", m, "--input", in, "--out", o1, "--shard-tokens", "100000",
          "--val-fraction", "0");
    expect_ok(&r);
    h_run_free(&r);
    cr_assert_eq(shards_count(o1, "train"), 1);
    cr_assert_eq(shards_count(o1, "val"), 0);
    DIR *d = opendir(o1);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    cr_assert_eq(n, 1, "o1 holds %d entries, expected train-00000.bin alone", n);
}

Test(data, cli_vocab_from_config_or_tokenizer) {
    const char *m = make_tiny(), *t = keep("tok"), *in = keep("a.txt"), *o = keep("o");
    cr_assert_eq(mkdir(t, 0755), 0);
    cr_assert_eq(h_copy_file(h_path(m, "tokenizer.json"), h_path(t, "tokenizer.json")), 0);
    cr_assert_eq(h_copy_file(h_path(m, "tokenizer_config.json"), h_path(t, "tokenizer_config.json")),
                 0);
    cr_assert_eq(h_write_text(in, "some text"), 0);
    HRun r;
    WHALE(&r, "data", "-m", t, "--input", in, "--out", o);
    expect_ok(&r);
    h_run_free(&r);
    Err err = {{0}};
    Tokenizer *tok = tokenizer_load(t, &err);
    cr_assert(tok);
    TokenShards s;
    open_ok(&s, o, "train", tokenizer_n_vocab(tok));
    shards_close(&s);
    /* the model (vocab_size 512 in config.json) cannot train on them */
    OPEN_FAILS(o, "train", 512, "train-00000.bin", "vocab mismatch", "512");
    tokenizer_free(tok);
    WHALE(&r, "data", "-m", m, "--input", in, "--out", o);
    expect_ok(&r);
    h_run_free(&r);
    open_ok(&s, o, "train", 512);
    shards_close(&s);
}

Test(data, cli_bad_input) {
    const char *m = make_tiny(), *j = keep("c.jsonl"), *o = keep("o");
    HRun r;
    cr_assert_eq(h_write_text(j, "{\"text\": \"ok\"}\n\n{\"text\": \"broken\n"), 0);
    WHALE(&r, "data", "-m", m, "--input", j, "--out", o);
    EXPECT_FAIL(&r, 1, "c.jsonl:3", "invalid JSON");
    h_run_free(&r);
    cr_assert_eq(shards_count(o, "train"), 0, "shards written despite the error");
    cr_assert_eq(h_write_text(j, "{\"messages\": [{\"role\": \"tool\", \"content\": \"x\"}]}\n"), 0);
    WHALE(&r, "data", "-m", m, "--input", j, "--out", o);
    EXPECT_FAIL(&r, 1, "c.jsonl:1", "tool");
    h_run_free(&r);
    cr_assert_eq(h_write_text(j, "{\"text\": 5}\n"), 0);
    WHALE(&r, "data", "-m", m, "--input", j, "--out", o);
    EXPECT_FAIL(&r, 1, "c.jsonl:1", "\"text\" must be a string");
    h_run_free(&r);
    cr_assert_eq(h_write_text(j, "[1]\n"), 0);
    WHALE(&r, "data", "-m", m, "--input", j, "--out", o);
    EXPECT_FAIL(&r, 1, "c.jsonl:1", "object");
    h_run_free(&r);
    cr_assert_eq(h_write_text(j, "\n  \n"), 0);
    WHALE(&r, "data", "-m", m, "--input", j, "--out", o);
    EXPECT_FAIL(&r, 1, "no documents");
    h_run_free(&r);
    WHALE(&r, "data", "-m", m, "--input", h_path(g_dir, "missing.txt"), "--out", o);
    EXPECT_FAIL(&r, 1, "missing.txt");
    h_run_free(&r);
    WHALE(&r, "data", "-m", h_path(g_dir, "nomodel"), "--input", j, "--out", o);
    EXPECT_FAIL(&r, 1, "nomodel");
    h_run_free(&r);
    WHALE(&r, "data", "-m", m, "--input", j);
    EXPECT_FAIL(&r, 2, "--out");
    h_run_free(&r);
    WHALE(&r, "data", "-m", m, "--input", "--out", o);
    EXPECT_FAIL(&r, 2, "--input");
    h_run_free(&r);
    WHALE(&r, "data", "-m", m, "--input", j, "--out", o, "--val-fraction", "1");
    EXPECT_FAIL(&r, 2, "--val-fraction");
    h_run_free(&r);
    WHALE(&r, "data", "-m", m, "--input", j, "--out", o, "--shard-tokens", "0");
    EXPECT_FAIL(&r, 2, "--shard-tokens");
    h_run_free(&r);
    WHALE(&r, "data", "-m", m, "--input", j, "--out", o, "--val-fraction", "0.1", "--val-docs", "1");
    EXPECT_FAIL(&r, 2, "not both");
    h_run_free(&r);
    /* tokenizer.json alone names no EOS (tokenizer_config.json does) */
    const char *t = keep("tok");
    cr_assert_eq(mkdir(t, 0755), 0);
    cr_assert_eq(h_copy_file(h_path(m, "tokenizer.json"), h_path(t, "tokenizer.json")), 0);
    cr_assert_eq(h_write_text(j, "{\"text\": \"ok\"}\n"), 0);
    WHALE(&r, "data", "-m", t, "--input", j, "--out", o);
    EXPECT_FAIL(&r, 1, "no EOS");
    h_run_free(&r);
    WHALE(&r, "data", "--help");
    expect_ok(&r);
    cr_assert(strstr(r.out, "--shard-tokens") && strstr(r.out, "--input"), "%s", r.out);
    h_run_free(&r);
}
