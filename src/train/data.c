/* SPDX-License-Identifier: MIT */
/* Token shard loader (see data.h): directory scan, parallel checks at
 * open, seeded training windows and in-order evaluation windows. */
#include "train/data.h"

#include <assert.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/rng.h"

long shards_file_number(const char *name, const char *split) {
    size_t ls = strlen(split);
    if (strncmp(name, split, ls) != 0 || name[ls] != '-') return -1;
    const char *d = name + ls + 1;
    long v = 0;
    int k = 0;
    for (; d[k] >= '0' && d[k] <= '9'; k++) {
        if (k == 9) return -1;
        v = v * 10 + (d[k] - '0');
    }
    return k > 0 && !strcmp(d + k, ".bin") ? v : -1;
}

static int valid_split(const char *split) {
    size_t n = strlen(split);
    if (n == 0 || n >= sizeof(((TokenShards *)0)->split)) return 0;
    for (size_t i = 0; i < n; i++)
        if (split[i] == '/' || split[i] == '.') return 0;
    return 1;
}

typedef struct Found {
    long number;
    char *name;
} Found;

static int found_cmp(const void *a, const void *b) {
    const Found *x = a, *y = b;
    if (x->number != y->number) return x->number < y->number ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void found_free(Found *f, int n) {
    for (int i = 0; i < n; i++) free(f[i].name);
    free(f);
}

/* The shard files of split in dir, sorted by number. Returns the count (0
 * when none), or -1 with err. */
static int scan_dir(const char *dir, const char *split, Found **out, Err *err) {
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d) return err_set(err, "%s: cannot read the data directory", dir);
    Found *f = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long num = shards_file_number(e->d_name, split);
        if (num < 0) continue;
        if (n == cap) {
            int nc = cap ? 2 * cap : 16;
            Found *g = nc > cap ? realloc(f, sizeof *f * (size_t)nc) : NULL;
            if (!g) goto oom;
            f = g;
            cap = nc;
        }
        if (!(f[n].name = strdup(e->d_name))) goto oom;
        f[n++].number = num;
    }
    closedir(d);
    if (n) qsort(f, (size_t)n, sizeof *f, found_cmp);
    *out = f;
    return n;
oom:
    closedir(d);
    found_free(f, n);
    return err_set(err, "%s: out of memory", dir);
}

int shards_count(const char *dir, const char *split) {
    Found *f;
    Err e;
    if (!valid_split(split)) return 0;
    int n = scan_dir(dir, split, &f, &e);
    if (n <= 0) return 0;
    found_free(f, n);
    return n;
}

/* Map and check one shard. */
static int open_one(TokenShard *sh, const char *path, int vocab_size, TokShardHeader *h, Err *err) {
    if (mfile_open(&sh->mf, path, err) != 0) return -1;
#ifdef MADV_POPULATE_READ
    /* map every page in one call rather than one fault per 4 KiB page (the
     * parse below reads them all); measured ~20% off the open. Best effort:
     * kernels before 5.14 refuse it, and then the faults do the work. */
    if (sh->mf.data) madvise((void *)sh->mf.data, sh->mf.size, MADV_POPULATE_READ);
#endif
    if (tokshard_parse(sh->mf.data, sh->mf.size, path, vocab_size, h, &sh->ids, err) != 0) {
        mfile_close(&sh->mf);
        return -1;
    }
    sh->n_tokens = (int64_t)h->n_tokens;
    return 0;
}

int shards_open(TokenShards *s, const char *dir, const char *split, int vocab_size, Err *err) {
    memset(s, 0, sizeof *s);
    if (!valid_split(split)) return err_set(err, "%s: bad split name '%s'", dir, split);
    Found *f = NULL;
    int n = scan_dir(dir, split, &f, err);
    if (n < 0) return -1;
    if (n == 0)
        return err_set(err, "%s: no %s shards (%s-00000.bin ...; made by whale data)", dir, split,
                       split);
    for (int i = 0; i < n; i++)
        if (f[i].number != i) {
            if (i > 0 && f[i].number == f[i - 1].number)
                err_set(err, "%s: %s and %s are both %s shard %ld", dir, f[i - 1].name, f[i].name,
                        split, f[i].number);
            else err_set(err, "%s: %s shard %d is missing (found %s)", dir, split, i, f[i].name);
            found_free(f, n);
            return -1;
        }
    TokShardHeader *hs = calloc((size_t)n, sizeof *hs);
    Err *errs = calloc((size_t)n, sizeof *errs);
    char **paths = calloc((size_t)n, sizeof *paths);
    s->shards = calloc((size_t)n, sizeof *s->shards);
    s->dir = strdup(dir);
    int rc = 0;
    if (!hs || !errs || !paths || !s->shards || !s->dir) {
        rc = err_set(err, "%s: out of memory", dir);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        size_t len = strlen(dir) + strlen(f[i].name) + 2;
        if (!(paths[i] = malloc(len))) {
            rc = err_set(err, "%s: out of memory", dir);
            goto done;
        }
        snprintf(paths[i], len, "%s/%s", dir, f[i].name);
    }
    s->n_shards = n;
    /* each check reads its whole shard once; shards are independent */
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < n; i++)
        if (open_one(&s->shards[i], paths[i], vocab_size, &hs[i], &errs[i]) != 0)
            hs[i].version = 0; /* marks the failure; a parsed header has version 1 */
    for (int i = 0; i < n && rc == 0; i++)
        if (hs[i].version == 0) {
            *err = errs[i];
            rc = -1;
        }
    for (int i = 1; i < n && rc == 0; i++)
        if (hs[i].vocab_size != hs[0].vocab_size || hs[i].bos_id != hs[0].bos_id ||
            hs[i].eos_id != hs[0].eos_id)
            rc = err_set(err,
                         "%s: shards disagree: %s has vocab_size %u, bos %d, eos %d but %s has "
                         "%u, %d, %d (made with different tokenizers?)",
                         dir, paths[0], hs[0].vocab_size, hs[0].bos_id, hs[0].eos_id, paths[i],
                         hs[i].vocab_size, hs[i].bos_id, hs[i].eos_id);
    if (rc == 0) {
        s->vocab_size = (int)hs[0].vocab_size;
        s->bos_id = hs[0].bos_id;
        s->eos_id = hs[0].eos_id;
        snprintf(s->split, sizeof s->split, "%s", split);
        for (int i = 0; i < n; i++) s->n_tokens += s->shards[i].n_tokens;
    }
done:
    for (int i = 0; paths && i < n; i++) free(paths[i]);
    free(paths);
    free(errs);
    free(hs);
    found_free(f, n);
    if (rc != 0) shards_close(s);
    return rc;
}

void shards_close(TokenShards *s) {
    for (int i = 0; s->shards && i < s->n_shards; i++) {
        mfile_close(&s->shards[i].mf);
        free(s->shards[i].doc_starts);
    }
    free(s->shards);
    free(s->dir);
    memset(s, 0, sizeof *s);
}

int64_t shards_n_tokens(const TokenShards *s) { return s->n_tokens; }

/* n ids from a shard's little-endian bytes, starting at token `start`. */
static void copy_ids(int32_t *out, const unsigned char *ids, int64_t start, int n) {
    const unsigned char *p = ids + 4 * (size_t)start;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(out, p, 4 * (size_t)n); /* ids < vocab_size <= INT32_MAX: same bits */
#else
    for (int i = 0; i < n; i++, p += 4)
        out[i] = (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                           (uint32_t)p[3] << 24);
#endif
}

/* splitmix64's finaliser: a bijection that spreads every input bit. */
static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The id of token k of shard sh. */
static uint32_t id_at(const TokenShard *sh, int64_t k) {
    int32_t v;
    copy_ids(&v, sh->ids, k, 1);
    return (uint32_t)v;
}

int shards_index_docs(TokenShards *s, Err *err) {
    const int by_bos = s->bos_id >= 0;
    if (!by_bos && s->eos_id < 0)
        return err_set(err, "%s: the shards have neither a BOS nor an EOS id to find documents by",
                       s->dir ? s->dir : "shards");
    const uint32_t mark = (uint32_t)(by_bos ? s->bos_id : s->eos_id);
    for (int i = 0; i < s->n_shards; i++) {
        TokenShard *sh = &s->shards[i];
        int64_t n = !by_bos; /* without BOS, position 0 starts the first document */
        for (int64_t k = 0; k < sh->n_tokens; k++) n += id_at(sh, k) == mark;
        free(sh->doc_starts);
        sh->n_docs = 0;
        sh->doc_starts = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
        if (!sh->doc_starts) return err_set(err, "%s: out of memory", s->dir ? s->dir : "shards");
        if (!by_bos) sh->doc_starts[sh->n_docs++] = 0;
        for (int64_t k = 0; k < sh->n_tokens; k++)
            if (id_at(sh, k) == mark && (by_bos || k + 1 < sh->n_tokens))
                sh->doc_starts[sh->n_docs++] = by_bos ? k : k + 1;
    }
    return 0;
}

/* The index of the first document of sh starting at or after pos
 * (doc_starts ascend). */
static int64_t doc_from(const TokenShard *sh, int64_t pos) {
    int64_t lo = 0, hi = sh->n_docs;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (sh->doc_starts[mid] < pos) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Usable window starts of shard sh for n tokens: all positions at which n
 * fit, or the document starts at which n fit. */
static int64_t usable_starts(const TokenShard *sh, int n) {
    if (!sh->doc_starts) return sh->n_tokens >= n ? sh->n_tokens - n + 1 : 0;
    return doc_from(sh, sh->n_tokens - n + 1);
}

int shards_sample(const TokenShards *s, uint64_t seed, uint64_t index, int n, int32_t *out,
                  Err *err) {
    if (n <= 0) return err_set(err, "%s: window of %d tokens", s->dir ? s->dir : "shards", n);
    uint64_t total = 0;
    int64_t longest = 0;
    for (int i = 0; i < s->n_shards; i++) {
        int64_t len = s->shards[i].n_tokens;
        total += (uint64_t)usable_starts(&s->shards[i], n);
        if (len > longest) longest = len;
    }
    if (total == 0)
        return err_set(err, "%s: no %s shard holds %d tokens (the longest has %lld)",
                       s->dir ? s->dir : "shards", s->split, n, (long long)longest);
    /* One generator per (seed, index): two rounds of mixing, so neighbouring
     * indices and neighbouring seeds give unrelated streams. */
    Rng r;
    rng_seed(&r, mix64(mix64(seed ^ 0x5851f42d4c957f2dull) ^ index));
    uint64_t u = rng_below(&r, total);
    for (int i = 0; i < s->n_shards; i++) {
        const TokenShard *sh = &s->shards[i];
        uint64_t w = (uint64_t)usable_starts(sh, n);
        if (u < w) {
            copy_ids(out, sh->ids, sh->doc_starts ? sh->doc_starts[u] : (int64_t)u, n);
            return 0;
        }
        u -= w;
    }
    assert(0 && "u < total: some shard holds it");
    return -1;
}

/* Evaluation windows of n tokens in shard sh, walked in order up to window
 * `stop` (or all of them when stop < 0): starts 0, n, 2n, ..., or, once
 * the documents are indexed, the first document start, then each time the
 * first document start at or after the previous window's end, so that an
 * evaluation sees windows like the --doc-start training windows. Returns
 * how many were walked; *start is window stop's start when it exists. */
static int64_t walk_windows(const TokenShard *sh, int n, int64_t stop, int64_t *start) {
    if (!sh->doc_starts) {
        const int64_t w = sh->n_tokens / n;
        if (stop >= 0 && stop < w) *start = stop * n;
        return w;
    }
    int64_t k = 0;
    for (int64_t d = 0; d < sh->n_docs && sh->doc_starts[d] <= sh->n_tokens - n; k++) {
        if (k == stop) {
            *start = sh->doc_starts[d];
            return k + 1;
        }
        d = doc_from(sh, sh->doc_starts[d] + n);
    }
    return k;
}

int64_t shards_n_windows(const TokenShards *s, int n) {
    if (n <= 0) return 0;
    int64_t k = 0, unused;
    for (int i = 0; i < s->n_shards; i++) k += walk_windows(&s->shards[i], n, -1, &unused);
    return k;
}

int shards_window(const TokenShards *s, int64_t k, int n, int32_t *out) {
    if (n <= 0 || k < 0) return -1;
    for (int i = 0; i < s->n_shards; i++) {
        int64_t start = -1, w = walk_windows(&s->shards[i], n, k, &start);
        if (start >= 0) {
            copy_ids(out, s->shards[i].ids, start, n);
            return 0;
        }
        k -= w;
    }
    return -1;
}
