/* SPDX-License-Identifier: MIT */
/* Byte-level BPE training (see bpe_train.h). Two stages: word counting (a
 * hash map from word bytes to occurrences, fed by the same pre-tokenizer
 * and added-token cut that encoding uses), then the merge loop over the
 * distinct words. The loop keeps, per adjacent pair of symbols, its count
 * and a list of the words that may hold it; merging a pair rewrites only
 * those words and adjusts the counts of the pairs around each merge site.
 * The best pair comes from a max-heap whose entries may be stale: a popped
 * entry whose count no longer matches is pushed back with the true count. */
#include "tokenizer/bpe_train.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "tokenizer/bpe.h"
#include "tokenizer/tokenizer_json.h"

/* Make room for need elements of size elem in *p (capacity *cap, doubled).
 * Returns 0 or -1 (out of memory, or the size overflows). */
static int grow(void *p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > SIZE_MAX / 2) return -1;
        c *= 2;
    }
    if (c > SIZE_MAX / elem) return -1;
    void *q = realloc(*(void **)p, c * elem);
    if (!q) return -1;
    *(void **)p = q;
    *cap = c;
    return 0;
}

/* ---- sets of byte strings ------------------------------------------------------ */

static void strset_free(BpeStrSet *s) {
    free(s->bytes);
    free(s->off);
    free(s->len);
    free(s->slot_hash);
    free(s->slot_id);
    memset(s, 0, sizeof *s);
}

static uint64_t str_hash(const unsigned char *p, size_t n) {
    uint64_t h = bpe_hash_bytes(p, n);
    return h ? h : 1; /* 0 marks an empty slot */
}

/* Index of the string p[0..n) with hash h, or -1. */
static int64_t strset_find(const BpeStrSet *s, const unsigned char *p, size_t n, uint64_t h) {
    if (!s->slot_cap) return -1;
    size_t mask = s->slot_cap - 1;
    for (size_t j = h & mask; s->slot_hash[j]; j = (j + 1) & mask) {
        uint32_t i = s->slot_id[j];
        if (s->slot_hash[j] == h && s->len[i] == n && !memcmp(s->bytes + s->off[i], p, n))
            return i;
    }
    return -1;
}

/* Append p[0..n) (not already in s) as the next index; with findable, it
 * goes into the index under hash h (the trainer's specials and markers are
 * numbered but never looked up). Returns the index or -1 (out of memory,
 * too many). */
static int64_t strset_add(BpeStrSet *s, const unsigned char *p, size_t n, uint64_t h,
                          int findable) {
    if (s->n >= UINT32_MAX || n > UINT32_MAX) return -1;
    if (findable && 2 * (s->n + 1) > s->slot_cap) {
        size_t cap = s->slot_cap ? s->slot_cap * 2 : 1024;
        uint64_t *nh = calloc(cap, sizeof *nh);
        uint32_t *ni = malloc(cap * sizeof *ni);
        if (!nh || !ni) {
            free(nh);
            free(ni);
            return -1;
        }
        for (size_t i = 0; i < s->slot_cap; i++) {
            if (!s->slot_hash[i]) continue;
            size_t j = s->slot_hash[i] & (cap - 1);
            while (nh[j]) j = (j + 1) & (cap - 1);
            nh[j] = s->slot_hash[i];
            ni[j] = s->slot_id[i];
        }
        free(s->slot_hash);
        free(s->slot_id);
        s->slot_hash = nh;
        s->slot_id = ni;
        s->slot_cap = cap;
    }
    size_t cap = s->cap;
    if (grow(&s->bytes, &s->cap_bytes, s->n_bytes + n, 1) != 0 ||
        grow(&s->off, &cap, s->n + 1, sizeof *s->off) != 0 ||
        (cap = s->cap, grow(&s->len, &cap, s->n + 1, sizeof *s->len)) != 0)
        return -1;
    s->cap = cap;
    if (n) memcpy(s->bytes + s->n_bytes, p, n);
    s->off[s->n] = s->n_bytes;
    s->len[s->n] = (uint32_t)n;
    s->n_bytes += n;
    if (findable) {
        size_t j = h & (s->slot_cap - 1);
        while (s->slot_hash[j]) j = (j + 1) & (s->slot_cap - 1);
        s->slot_hash[j] = h;
        s->slot_id[j] = (uint32_t)s->n;
    }
    return (int64_t)s->n++;
}

/* ---- word counting ------------------------------------------------------------ */

int bpe_counts_init(BpeCounts *c, Err *err) {
    memset(c, 0, sizeof *c);
    if (tokjson_bytelevel_pretok(&c->pt, err) != 0) return -1;
    c->ready = 1;
    return 0;
}

void bpe_counts_free(BpeCounts *c) {
    pt_free(&c->pt);
    pt_state_free(&c->st);
    strset_free(&c->words);
    free(c->count);
    memset(c, 0, sizeof *c);
}

/* PtSink: one more occurrence of the word p[0..n). */
static int count_word(void *ctx, const unsigned char *p, size_t n, Err *err) {
    BpeCounts *c = ctx;
    c->n_occurrences++;
    uint64_t h = str_hash(p, n);
    int64_t w = strset_find(&c->words, p, n, h);
    if (w >= 0) {
        c->count[w]++;
        return 0;
    }
    if (n > UINT32_MAX) return err_set(err, "a word of %zu bytes is too long to count", n);
    if (grow(&c->count, &c->count_cap, c->words.n + 1, sizeof *c->count) != 0 ||
        (w = strset_add(&c->words, p, n, h, 1)) < 0)
        return err_set(err, "out of memory after %zu distinct words", c->words.n);
    c->count[w] = 1;
    return 0;
}

int bpe_counts_add_text(BpeCounts *c, const char *text, size_t len, Err *err) {
    assert(c->ready);
    if (len == 0) return 0;
    const unsigned char *p = (const unsigned char *)text;
    c->n_text_bytes += len;
    /* added tokens, matched leftmost then longest as encoding does (none of
     * whale's has lstrip, rstrip or single_word) */
    unsigned char first[256] = {0};
    const char *a;
    for (int k = 0; (a = tokjson_added_token(k, NULL)); k++) first[(unsigned char)a[0]] = 1;
    size_t sec = 0;
    for (size_t i = 0; i < len; i++) {
        if (!first[p[i]]) continue;
        size_t best = 0;
        for (int k = 0; (a = tokjson_added_token(k, NULL)); k++) {
            size_t al = strlen(a);
            if (al > best && al <= len - i && !memcmp(p + i, a, al)) best = al;
        }
        if (!best) continue;
        if (pt_run(&c->pt, &c->st, p + sec, i - sec, count_word, c, err) != 0) return -1;
        sec = i + best;
        i = sec - 1;
    }
    return pt_run(&c->pt, &c->st, p + sec, len - sec, count_word, c, err);
}

/* ---- the merge loop ------------------------------------------------------------- */

/* An adjacent pair of symbols (left << 32 | right). */
typedef struct Pair {
    uint64_t key;
    int64_t count;    /* occurrences over the corpus */
    uint32_t *post;   /* (n_post) words that may hold the pair; stale entries
                       * and repeats are harmless, a word merges nothing twice */
    uint32_t n_post, cap_post;
    uint32_t stamp;   /* last merge step that raised count */
    uint8_t banned;   /* its string is an added token (or holds a digit, with
                       * split_digits): never merged */
} Pair;

typedef struct HeapEnt {
    int64_t count;
    uint64_t key;
    uint32_t pair;
} HeapEnt;

typedef struct Trainer {
    /* words: symbols of word w at sym[off[w] .. off[w] + wlen[w]) */
    int32_t *sym;
    const size_t *off;
    uint32_t *wlen;
    const int64_t *wcount;
    uint32_t *wseen; /* (n_words) last merge step that rewrote the word */
    size_t n_words;
    /* pairs, found by key through open addressing (index + 1, 0 = empty) */
    Pair *pairs;
    size_t n_pairs, pairs_cap;
    uint32_t *slot;
    size_t slot_cap;
    HeapEnt *heap;
    size_t heap_n, heap_cap;
    uint32_t *touched; /* pairs whose count rose in this step */
    size_t n_touched, touched_cap;
    BpeStrSet tok; /* the raw bytes of each id (empty for specials, markers) */
} Trainer;

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static int pair_slots_grow(Trainer *t) {
    size_t cap = t->slot_cap ? t->slot_cap * 2 : 1 << 16;
    uint32_t *s = calloc(cap, sizeof *s);
    if (!s) return -1;
    for (size_t i = 0; i < t->n_pairs; i++) {
        size_t j = mix64(t->pairs[i].key) & (cap - 1);
        while (s[j]) j = (j + 1) & (cap - 1);
        s[j] = (uint32_t)(i + 1);
    }
    free(t->slot);
    t->slot = s;
    t->slot_cap = cap;
    return 0;
}

/* Index of the pair with this key, created (count 0) if new. -1: oom. */
static int64_t pair_get(Trainer *t, uint64_t key) {
    if (2 * (t->n_pairs + 1) > t->slot_cap && pair_slots_grow(t) != 0) return -1;
    size_t mask = t->slot_cap - 1, j = mix64(key) & mask;
    for (; t->slot[j]; j = (j + 1) & mask)
        if (t->pairs[t->slot[j] - 1].key == key) return t->slot[j] - 1;
    if (t->n_pairs >= UINT32_MAX - 1 ||
        grow(&t->pairs, &t->pairs_cap, t->n_pairs + 1, sizeof *t->pairs) != 0)
        return -1;
    t->pairs[t->n_pairs] = (Pair){.key = key};
    t->slot[j] = (uint32_t)(t->n_pairs + 1);
    return (int64_t)t->n_pairs++;
}

/* Add d occurrences of (a, b) found in word w during merge step step (0:
 * the initial count, which tracks no touched pairs). Returns 0 or -1 (oom). */
static int pair_add(Trainer *t, int32_t a, int32_t b, int64_t d, uint32_t w, uint32_t step) {
    int64_t pi = pair_get(t, (uint64_t)(uint32_t)a << 32 | (uint32_t)b);
    if (pi < 0) return -1;
    Pair *p = &t->pairs[pi];
    p->count += d;
    assert(p->count >= 0);
    if (d <= 0) return 0;
    if (!p->n_post || p->post[p->n_post - 1] != w) {
        size_t cap = p->cap_post;
        if (grow(&p->post, &cap, (size_t)p->n_post + 1, sizeof *p->post) != 0 || cap > UINT32_MAX)
            return -1;
        p->cap_post = (uint32_t)cap;
        p->post[p->n_post++] = w;
    }
    if (step && p->stamp != step) {
        p->stamp = step;
        if (grow(&t->touched, &t->touched_cap, t->n_touched + 1, sizeof *t->touched) != 0)
            return -1;
        t->touched[t->n_touched++] = (uint32_t)pi;
    }
    return 0;
}

/* The heap's order: more occurrences first, then the smaller key. */
static int heap_above(const HeapEnt *x, const HeapEnt *y) {
    return x->count > y->count || (x->count == y->count && x->key < y->key);
}

static void heap_down(HeapEnt *h, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && heap_above(&h[l], &h[m])) m = l;
        if (r < n && heap_above(&h[r], &h[m])) m = r;
        if (m == i) return;
        HeapEnt tmp = h[i];
        h[i] = h[m];
        h[m] = tmp;
        i = m;
    }
}

static int heap_push(Trainer *t, uint32_t pi) {
    if (grow(&t->heap, &t->heap_cap, t->heap_n + 1, sizeof *t->heap) != 0) return -1;
    HeapEnt e = {t->pairs[pi].count, t->pairs[pi].key, pi};
    size_t i = t->heap_n++;
    while (i > 0 && heap_above(&e, &t->heap[(i - 1) / 2])) {
        t->heap[i] = t->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    t->heap[i] = e;
    return 0;
}

static HeapEnt heap_pop(Trainer *t) {
    HeapEnt top = t->heap[0];
    t->heap[0] = t->heap[--t->heap_n];
    heap_down(t->heap, t->heap_n, 0);
    return top;
}

/* Rewrite word w with every (a, b) merged into x, left to right, and
 * account the pairs that disappear and appear around each site: with P
 * the symbol before (already rewritten) and N the one after, P a b N
 * becomes P x N, so (P,a), (a,b), (b,N) lose an occurrence and (P,x),
 * (x,N) gain one. Adjacent sites chain through P, which keeps "aaaa" ->
 * "xx" exact. Returns 0 or -1 (oom). */
static int merge_word(Trainer *t, uint32_t w, uint32_t best, int32_t a, int32_t b, int32_t x,
                      uint32_t step) {
    int32_t *s = t->sym + t->off[w];
    size_t n = t->wlen[w], r = 0, o = 0;
    int64_t c = t->wcount[w];
    while (r < n) {
        if (r + 1 < n && s[r] == a && s[r + 1] == b) {
            if (o > 0 && (pair_add(t, s[o - 1], a, -c, w, step) != 0 ||
                          pair_add(t, s[o - 1], x, c, w, step) != 0))
                return -1;
            t->pairs[best].count -= c;
            if (r + 2 < n && (pair_add(t, b, s[r + 2], -c, w, step) != 0 ||
                              pair_add(t, x, s[r + 2], c, w, step) != 0))
                return -1;
            s[o++] = x;
            r += 2;
        } else {
            s[o++] = s[r++];
        }
    }
    t->wlen[w] = (uint32_t)o;
    return 0;
}

static void trainer_free(Trainer *t) {
    free(t->sym);
    free(t->wlen);
    free(t->wseen);
    for (size_t i = 0; i < t->n_pairs; i++) free(t->pairs[i].post);
    free(t->pairs);
    free(t->slot);
    free(t->heap);
    free(t->touched);
    strset_free(&t->tok);
}

/* The token's bytes as a string of the byte alphabet (malloc'd). */
static char *symbol_string(const Trainer *t, int32_t id) {
    const unsigned char *p = t->tok.bytes + t->tok.off[id];
    size_t n = t->tok.len[id];
    char *s = malloc(2 * n + 1), *q = s;
    if (!s) return NULL;
    for (size_t i = 0; i < n; i++) {
        char sym[5];
        tokjson_byte_symbol(p[i], sym);
        size_t k = strlen(sym);
        memcpy(q, sym, k);
        q += k;
    }
    *q = 0;
    return s;
}

/* 1 if the bytes are exactly one of the added tokens. */
static int is_added(const unsigned char *p, size_t n) {
    const char *a;
    for (int k = 0; (a = tokjson_added_token(k, NULL)); k++)
        if (strlen(a) == n && !memcmp(a, p, n)) return 1;
    return 0;
}

static int has_digit(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] >= '0' && p[i] <= '9') return 1;
    return 0;
}

static int setup(Trainer *t, const BpeCounts *c) {
    const BpeStrSet *ws = &c->words;
    t->n_words = ws->n;
    t->off = ws->off;
    t->wcount = c->count;
    t->sym = malloc((ws->n_bytes ? ws->n_bytes : 1) * sizeof *t->sym);
    t->wlen = malloc((ws->n ? ws->n : 1) * sizeof *t->wlen);
    t->wseen = calloc(ws->n ? ws->n : 1, sizeof *t->wseen);
    if (!t->sym || !t->wlen || !t->wseen) return -1;
    for (size_t i = 0; i < ws->n_bytes; i++) t->sym[i] = TOKJSON_BYTE0_ID + ws->bytes[i];
    if (ws->n) memcpy(t->wlen, ws->len, ws->n * sizeof *t->wlen);
    /* ids below the first merge: specials, bytes, markers */
    int base = tokjson_bytelevel_size(0);
    for (int id = 0; id < base; id++) {
        unsigned char b = (unsigned char)(id - TOKJSON_BYTE0_ID);
        int is_byte = id >= TOKJSON_BYTE0_ID && id < TOKJSON_BYTE0_ID + 256;
        if (strset_add(&t->tok, &b, is_byte, str_hash(&b, is_byte), is_byte) < 0) return -1;
    }
    for (size_t w = 0; w < t->n_words; w++) {
        const int32_t *s = t->sym + t->off[w];
        for (size_t i = 0; i + 1 < t->wlen[w]; i++)
            if (pair_add(t, s[i], s[i + 1], t->wcount[w], (uint32_t)w, 0) != 0) return -1;
    }
    if (grow(&t->heap, &t->heap_cap, t->n_pairs, sizeof *t->heap) != 0) return -1;
    for (size_t i = 0; i < t->n_pairs; i++)
        t->heap[t->heap_n++] = (HeapEnt){t->pairs[i].count, t->pairs[i].key, (uint32_t)i};
    for (size_t i = t->heap_n / 2; i-- > 0;) heap_down(t->heap, t->heap_n, i);
    return 0;
}

/* Record merge (a, b) in out. Returns 0 or -1 (oom). */
static int record(const Trainer *t, BpeMerges *out, size_t *cap, int32_t a, int32_t b) {
    if (grow(&out->pair, cap, (size_t)out->n + 1, sizeof *out->pair) != 0) return -1;
    char *l = symbol_string(t, a), *r = symbol_string(t, b);
    if (!l || !r) {
        free(l);
        free(r);
        return -1;
    }
    out->pair[out->n][0] = l;
    out->pair[out->n][1] = r;
    out->n++;
    return 0;
}

int bpe_train(const BpeCounts *c, const BpeTrainOpts *o, BpeMerges *out, Err *err) {
    memset(out, 0, sizeof *out);
    assert(c->ready);
    int base = tokjson_bytelevel_size(0);
    if (o->vocab_size < base)
        return err_set(err, "vocab size %d is below the byte-level base of %d ids (3 special "
                       "tokens, 256 bytes, %d chat markers)", o->vocab_size, base, base - 259);
    int64_t min_count = o->min_count > 0 ? o->min_count : 2;
    double every = o->progress_s > 0 ? o->progress_s : 2.0, t0 = time_now(), next = t0 + every;
    Trainer t = {0};
    size_t out_cap = 0;
    unsigned char *buf = NULL;
    size_t buf_cap = 0;
    if (setup(&t, c) != 0) goto oom;
    for (uint32_t step = 1; t.tok.n < (size_t)o->vocab_size; step++) {
        /* the best pair: a popped entry is current only if its count is */
        HeapEnt e = {0};
        Pair *p = NULL;
        while (!p && t.heap_n) {
            e = heap_pop(&t);
            Pair *q = &t.pairs[e.pair];
            if (q->banned || q->count <= 0) continue;
            if (q->count == e.count) p = q;
            else if (heap_push(&t, e.pair) != 0) goto oom;
        }
        if (!p || e.count < min_count) break;
        int32_t a = (int32_t)(e.key >> 32), b = (int32_t)(e.key & 0xffffffffu);
        size_t la = t.tok.len[a], lb = t.tok.len[b];
        if (grow(&buf, &buf_cap, la + lb, 1) != 0) goto oom;
        memcpy(buf, t.tok.bytes + t.tok.off[a], la);
        memcpy(buf + la, t.tok.bytes + t.tok.off[b], lb);
        if (is_added(buf, la + lb) || (o->split_digits && has_digit(buf, la + lb))) {
            p->banned = 1;
            continue;
        }
        uint64_t h = str_hash(buf, la + lb);
        int64_t x = strset_find(&t.tok, buf, la + lb, h);
        if (x < 0 && (x = strset_add(&t.tok, buf, la + lb, h, 1)) < 0) goto oom;
        if (record(&t, out, &out_cap, a, b) != 0) goto oom;
        out->last_count = e.count;
        /* take the pair's word list: merging creates only pairs with x */
        uint32_t best = e.pair, *post = p->post, n_post = p->n_post;
        p->post = NULL;
        p->n_post = p->cap_post = 0;
        int rc = 0;
        for (uint32_t k = 0; k < n_post && rc == 0; k++) {
            uint32_t w = post[k];
            if (t.wseen[w] == step) continue;
            t.wseen[w] = step;
            rc = merge_word(&t, w, best, a, b, (int32_t)x, step);
        }
        free(post);
        if (rc != 0) goto oom;
        assert(t.pairs[best].count == 0);
        for (size_t k = 0; k < t.n_touched; k++)
            if (t.pairs[t.touched[k]].count > 0 && heap_push(&t, t.touched[k]) != 0) goto oom;
        t.n_touched = 0;
        double now = time_now();
        if (!o->quiet && now >= next) {
            log_info("tokenizer-train: %zu/%d ids, %d merges, last pair seen %lld times, %.1f s",
                     t.tok.n, o->vocab_size, out->n, (long long)e.count, now - t0);
            next = now + every;
        }
    }
    out->n_vocab = (int)t.tok.n;
    out->stopped_early = t.tok.n < (size_t)o->vocab_size;
    trainer_free(&t);
    free(buf);
    return 0;
oom:
    trainer_free(&t);
    free(buf);
    return err_set(err, "out of memory while training BPE (%zu distinct words)", c->words.n);
}

void bpe_merges_free(BpeMerges *m) {
    for (int i = 0; i < m->n; i++) {
        free(m->pair[i][0]);
        free(m->pair[i][1]);
    }
    free(m->pair);
    memset(m, 0, sizeof *m);
}
