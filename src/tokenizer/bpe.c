/* SPDX-License-Identifier: MIT */
/* Byte-level BPE (see bpe.h): vocabulary tables, merge table and the merge
 * loop. The loop keeps the word's symbols in a linked list and the
 * candidate merges of adjacent symbols in a binary heap ordered by (rank,
 * position); a popped candidate whose pair has changed since it was pushed
 * is dropped. That is Hugging Face's word.rs algorithm, O(n log n) per word
 * instead of the O(n^2) rescan of the original GPT-2 code. */
#include "tokenizer/bpe.h"

#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

/* ---- small helpers ---------------------------------------------------- */

int idvec_push(IdVec *a, int id) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        int *v = realloc(a->v, cap * sizeof *v);
        if (!v) return -1;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = id;
    return 0;
}

void idvec_free(IdVec *a) {
    free(a->v);
    memset(a, 0, sizeof *a);
}

uint64_t bpe_hash_bytes(const void *data, size_t n) {
    const unsigned char *p = data;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ ((uint64_t)n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        p += 8;
        n -= 8;
    }
    uint64_t v = 0;
    memcpy(&v, p, n);
    h = (h ^ v) * 0x94d049bb133111ebull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h ? h : 1; /* 0 marks an empty slot */
}

/* GPT-2's alphabet: the 188 printable bytes (! to ~, the Latin-1 range
 * without the soft hyphen) stand for themselves; the n-th of the other 68
 * bytes is U+0100 + n. */
static int byte_printable(unsigned b) {
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
}

/* The 68 unprintable bytes in order: 0..32, 127..160, 173. */
unsigned bpe_byte_cp(unsigned char b) {
    if (byte_printable(b)) return b;
    if (b <= 32) return 256 + b;
    if (b <= 160) return 256 + 33 + (b - 127u);
    return 256 + 67; /* 173, the soft hyphen */
}

int bpe_cp_byte(unsigned cp) {
    if (cp < 256) return byte_printable(cp) ? (int)cp : -1;
    unsigned n = cp - 256;
    if (n < 33) return (int)n;
    if (n < 67) return (int)(127 + n - 33);
    return n == 67 ? 173 : -1;
}

/* Decode one UTF-8 character of s[0..n) into *cp; returns its length, or 0
 * when the bytes are not valid UTF-8 (overlong forms and surrogates too). */
static size_t utf8_decode(const unsigned char *s, size_t n, unsigned *cp) {
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
    if (!len || len > n || c >= 0xf5) return 0;
    unsigned v = c & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min[len] || v > 0x10ffff || (v >= 0xd800 && v < 0xe000)) return 0;
    *cp = v;
    return len;
}

/* ---- byte strings -> ids ------------------------------------------------ */

/* Key bytes of id in the table `raw` (decoded bytes) or not (stored string). */
static const char *key_of(const BpeModel *m, int raw, int id, size_t *len) {
    *len = raw ? m->raw_len[id] : m->str_len[id];
    return m->pool + (raw ? m->raw_off[id] : m->str_off[id]);
}

static int map_find(const BpeModel *m, const BpeStrMap *t, int raw, const void *s, size_t len) {
    if (!t->cap) return -1;
    uint64_t h = bpe_hash_bytes(s, len);
    for (size_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        if (t->hash[i] == 0) return -1;
        size_t kl;
        const char *k;
        if (t->hash[i] == h && (k = key_of(m, raw, t->id[i], &kl), kl == len) && !memcmp(k, s, len))
            return t->id[i];
    }
}

static int map_grow(BpeStrMap *t, size_t cap) {
    uint64_t *hash = calloc(cap, sizeof *hash);
    int32_t *id = malloc(cap * sizeof *id);
    if (!hash || !id) {
        free(hash);
        free(id);
        return -1;
    }
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->hash[i]) continue;
        size_t j = t->hash[i] & (cap - 1);
        while (hash[j]) j = (j + 1) & (cap - 1);
        hash[j] = t->hash[i];
        id[j] = t->id[i];
    }
    free(t->hash);
    free(t->id);
    t->hash = hash;
    t->id = id;
    t->cap = cap;
    return 0;
}

/* Map key -> id, replacing an existing entry for the same key. n_keys is
 * the number of keys after this one, to keep the load under one half. */
static int map_put(const BpeModel *m, BpeStrMap *t, int raw, int id, size_t n_keys) {
    if (n_keys * 2 > t->cap && map_grow(t, t->cap ? t->cap * 2 : 1024) != 0) return -1;
    size_t len;
    const char *s = key_of(m, raw, id, &len);
    uint64_t h = bpe_hash_bytes(s, len);
    for (size_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        size_t kl;
        const char *k;
        if (t->hash[i] == 0 ||
            (t->hash[i] == h && (k = key_of(m, raw, t->id[i], &kl), kl == len) && !memcmp(k, s, len))) {
            t->hash[i] = h;
            t->id[i] = id;
            return 0;
        }
    }
}

/* ---- the model ------------------------------------------------------------ */

int bpe_model_init(BpeModel *m, int n_vocab, Err *err) {
    memset(m, 0, sizeof *m);
    m->n_vocab = n_vocab;
    m->unk_id = -1;
    for (int b = 0; b < 256; b++) m->byte_id[b] = -1;
    size_t n = (size_t)n_vocab;
    m->str_off = malloc(n * sizeof *m->str_off);
    m->str_len = calloc(n, sizeof *m->str_len);
    m->raw_off = calloc(n, sizeof *m->raw_off);
    m->raw_len = calloc(n, sizeof *m->raw_len);
    if (!m->str_off || !m->str_len || !m->raw_off || !m->raw_len) {
        bpe_model_free(m);
        return err_set(err, "out of memory for a vocabulary of %d ids", n_vocab);
    }
    for (size_t i = 0; i < n; i++) m->str_off[i] = BPE_NONE;
    /* tables sized for the whole vocabulary up front (load under one half) */
    size_t cap = 1024;
    while (cap < 2 * n + 2) cap *= 2;
    if (map_grow(&m->by_str, cap) != 0) {
        bpe_model_free(m);
        return err_set(err, "out of memory for a vocabulary of %d ids", n_vocab);
    }
    return 0;
}

/* Append len bytes and a NUL to the pool; *off gets their offset. */
static int pool_add(BpeModel *m, const void *s, size_t len, uint32_t *off) {
    size_t need;
    if (size_add(m->pool_n, len + 1, &need) || need >= BPE_NONE) return -1;
    if (need > m->pool_cap) {
        size_t cap = m->pool_cap ? m->pool_cap : 1 << 20;
        while (cap < need) cap *= 2;
        char *p = realloc(m->pool, cap);
        if (!p) return -1;
        m->pool = p;
        m->pool_cap = cap;
    }
    *off = (uint32_t)m->pool_n;
    if (len) memcpy(m->pool + m->pool_n, s, len);
    m->pool[m->pool_n + len] = 0;
    m->pool_n = need;
    return 0;
}

int bpe_model_set_token(BpeModel *m, int id, const char *s, size_t len, int verbatim, Err *err) {
    if (id < 0 || id >= m->n_vocab || len >= BPE_NONE)
        return err_set(err, "token id %d is out of range", id);
    /* decoded bytes: each character through the byte alphabet */
    unsigned char small[256], *buf = len <= sizeof small ? small : malloc(len);
    if (!buf) return err_set(err, "out of memory");
    size_t nb = 0, i = 0;
    while (!verbatim && i < len) {
        unsigned cp;
        size_t k = utf8_decode((const unsigned char *)s + i, len - i, &cp);
        int b = k ? bpe_cp_byte(cp) : -1;
        if (b < 0) break;
        buf[nb++] = (unsigned char)b;
        i += k;
    }
    int outside = verbatim || i < len;
    int rc = 0;
    uint32_t so, ro;
    if (pool_add(m, s, len, &so) != 0 ||
        pool_add(m, outside ? (const void *)s : buf, outside ? len : nb, &ro) != 0) {
        rc = err_set(err, "out of memory for the vocabulary strings");
        goto done;
    }
    int fresh = m->str_off[id] == BPE_NONE;
    m->str_off[id] = so;
    m->str_len[id] = (uint32_t)len;
    m->raw_off[id] = ro;
    m->raw_len[id] = (uint32_t)(outside ? len : nb);
    if (fresh) m->n_strs++;
    if (map_put(m, &m->by_str, 0, id, m->n_strs) != 0 ||
        (m->ignore_merges && map_put(m, &m->by_raw, 1, id, m->n_strs) != 0))
        rc = err_set(err, "out of memory for the vocabulary table");
done:
    if (buf != small) free(buf);
    return rc;
}

void bpe_model_finish(BpeModel *m) {
    for (int b = 0; b < 256; b++) {
        char sym[4];
        unsigned cp = bpe_byte_cp((unsigned char)b);
        size_t n = 1;
        if (cp < 0x80) sym[0] = (char)cp;
        else sym[0] = (char)(0xc0 | (cp >> 6)), sym[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
        m->byte_id[b] = bpe_model_find(m, sym, n);
    }
}

int bpe_model_find(const BpeModel *m, const char *s, size_t len) {
    return map_find(m, &m->by_str, 0, s, len);
}

static size_t merge_slot(const BpeModel *m, uint64_t key) {
    uint64_t x = key * 0x9e3779b97f4a7c15ull;
    return (size_t)(x ^ (x >> 29)) & (m->mcap - 1);
}

int bpe_model_add_merge(BpeModel *m, int left, int right, int merged, int rank, Err *err) {
    if ((m->n_merges + 1) * 2 > m->mcap) {
        size_t cap = m->mcap ? m->mcap * 2 : 1 << 16;
        while (cap < 2 * m->merges_hint + 2) cap *= 2;
        uint64_t *key = malloc(cap * sizeof *key);
        int32_t *r = malloc(cap * sizeof *r), *nw = malloc(cap * sizeof *nw);
        if (!key || !r || !nw) {
            free(key), free(r), free(nw);
            return err_set(err, "out of memory for the merge table");
        }
        for (size_t i = 0; i < cap; i++) key[i] = UINT64_MAX;
        uint64_t *ok = m->mkey;
        int32_t *orank = m->mrank, *onew = m->mnew;
        size_t ocap = m->mcap;
        m->mkey = key, m->mrank = r, m->mnew = nw, m->mcap = cap;
        for (size_t i = 0; i < ocap; i++) {
            if (ok[i] == UINT64_MAX) continue;
            size_t j = merge_slot(m, ok[i]);
            while (key[j] != UINT64_MAX) j = (j + 1) & (cap - 1);
            key[j] = ok[i], r[j] = orank[i], nw[j] = onew[i];
        }
        free(ok), free(orank), free(onew);
    }
    uint64_t k = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    size_t j = merge_slot(m, k);
    while (m->mkey[j] != UINT64_MAX && m->mkey[j] != k) j = (j + 1) & (m->mcap - 1);
    if (m->mkey[j] == UINT64_MAX) m->n_merges++;
    m->mkey[j] = k;
    m->mrank[j] = rank;
    m->mnew[j] = merged;
    return 0;
}

void bpe_model_free(BpeModel *m) {
    free(m->pool);
    free(m->str_off);
    free(m->str_len);
    free(m->raw_off);
    free(m->raw_len);
    free(m->by_str.hash);
    free(m->by_str.id);
    free(m->by_raw.hash);
    free(m->by_raw.id);
    free(m->mkey);
    free(m->mrank);
    free(m->mnew);
    memset(m, 0, sizeof *m);
}

/* ---- the merge loop ------------------------------------------------------- */

typedef struct BpeHeapItem {
    uint64_t key;        /* rank << 32 | position of the left symbol */
    int32_t left, right; /* the pair when pushed, to detect stale items */
    int32_t merged;
} BpeHeapItem;

static void heap_push(BpeHeapItem *h, size_t *n, BpeHeapItem it) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p].key <= it.key) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = it;
}

static BpeHeapItem heap_pop(BpeHeapItem *h, size_t *n) {
    BpeHeapItem top = h[0], last = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && h[c + 1].key < h[c].key) c++;
        if (h[c].key >= last.key) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = last;
    return top;
}

/* Push the candidate merge of symbol i with its right neighbour, if any.
 * Returns 0, or -1 when the heap cannot grow. */
static int push_pair(const BpeModel *m, BpeScratch *s, size_t *nh, int32_t i) {
    int32_t j = s->next[i];
    if (j < 0) return 0;
    uint64_t k = (uint64_t)(uint32_t)s->sym[i] << 32 | (uint32_t)s->sym[j];
    for (size_t q = merge_slot(m, k);; q = (q + 1) & (m->mcap - 1)) {
        if (m->mkey[q] == UINT64_MAX) return 0;
        if (m->mkey[q] != k) continue;
        if (*nh == s->hcap) {
            /* the heap holds fewer than 3n items (n - 1 pairs, then at most
             * two per merge) and usually about n: grow on demand */
            size_t cap = s->hcap ? s->hcap * 2 : 256;
            BpeHeapItem *h = realloc(s->heap, cap * sizeof *h);
            if (!h) return -1;
            s->heap = h;
            s->hcap = cap;
        }
        BpeHeapItem it = {(uint64_t)(uint32_t)m->mrank[q] << 32 | (uint32_t)i, s->sym[i],
                          s->sym[j], m->mnew[q]};
        heap_push(s->heap, nh, it);
        return 0;
    }
}

static int scratch_reserve(BpeScratch *s, size_t n) {
    if (n <= s->cap) return 0;
    size_t cap = s->cap ? s->cap : 256;
    while (cap < n) cap *= 2;
    int32_t *a = realloc(s->sym, cap * sizeof *a);
    if (!a) return -1;
    s->sym = a;
    if (!(a = realloc(s->prev, cap * sizeof *a))) return -1;
    s->prev = a;
    if (!(a = realloc(s->next, cap * sizeof *a))) return -1;
    s->next = a;
    s->cap = cap;
    return 0;
}

void bpe_scratch_trim(BpeScratch *s, size_t max_word) {
    if (s->cap <= max_word && s->hcap <= 2 * max_word) return;
    free(s->sym);
    free(s->prev);
    free(s->next);
    free(s->heap);
    s->sym = s->prev = s->next = NULL;
    s->heap = NULL;
    s->cap = s->hcap = 0;
}

/* ---- the word cache ------------------------------------------------------- */

/* Words up to CACHE_WORD bytes are cached; the cache is emptied when it
 * holds CACHE_SLOTS / 2 words or its byte or id arenas are full, which
 * bounds it at 3.3 MB and keeps hits for the frequent words. */
enum { CACHE_SLOTS = 1 << 16, CACHE_WORD = 255, CACHE_BYTES = 1 << 20, CACHE_IDS = 1 << 18 };

static int cache_init(BpeScratch *s) {
    s->c_hash = calloc(CACHE_SLOTS, sizeof *s->c_hash);
    s->c_key = malloc(CACHE_SLOTS * sizeof *s->c_key);
    s->c_val = malloc(CACHE_SLOTS * sizeof *s->c_val);
    s->c_klen = malloc(CACHE_SLOTS * sizeof *s->c_klen);
    s->c_nval = malloc(CACHE_SLOTS * sizeof *s->c_nval);
    s->c_bytes = malloc(CACHE_BYTES);
    s->c_ids = malloc(CACHE_IDS * sizeof *s->c_ids);
    if (!s->c_hash || !s->c_key || !s->c_val || !s->c_klen || !s->c_nval || !s->c_bytes ||
        !s->c_ids)
        return -1;
    s->c_cap = CACHE_SLOTS;
    return 0;
}

static size_t cache_find(const BpeScratch *s, uint64_t h, const unsigned char *w, size_t n) {
    for (size_t i = h & (s->c_cap - 1);; i = (i + 1) & (s->c_cap - 1)) {
        if (s->c_hash[i] == 0) return i;
        if (s->c_hash[i] == h && s->c_klen[i] == n && !memcmp(s->c_bytes + s->c_key[i], w, n))
            return i;
    }
}

static void cache_put(BpeScratch *s, uint64_t h, const unsigned char *w, size_t n,
                      const int *ids, size_t k) {
    if (s->c_n + 1 > s->c_cap / 2 || s->c_bytes_n + n > CACHE_BYTES || s->c_ids_n + k > CACHE_IDS) {
        memset(s->c_hash, 0, s->c_cap * sizeof *s->c_hash);
        s->c_n = s->c_bytes_n = s->c_ids_n = 0;
    }
    size_t i = cache_find(s, h, w, n);
    if (s->c_hash[i]) return;
    s->c_hash[i] = h;
    s->c_key[i] = (uint32_t)s->c_bytes_n;
    s->c_klen[i] = (uint16_t)n;
    s->c_val[i] = (uint32_t)s->c_ids_n;
    s->c_nval[i] = (uint16_t)k;
    memcpy(s->c_bytes + s->c_bytes_n, w, n);
    for (size_t j = 0; j < k; j++) s->c_ids[s->c_ids_n + j] = ids[j];
    s->c_bytes_n += n;
    s->c_ids_n += k;
    s->c_n++;
}

void bpe_scratch_free(BpeScratch *s) {
    free(s->sym);
    free(s->prev);
    free(s->next);
    free(s->heap);
    free(s->c_hash);
    free(s->c_key);
    free(s->c_val);
    free(s->c_klen);
    free(s->c_nval);
    free(s->c_bytes);
    free(s->c_ids);
    memset(s, 0, sizeof *s);
}

/* ---- encoding one word ----------------------------------------------------- */

int bpe_encode_word(const BpeModel *m, BpeScratch *s, const unsigned char *w, size_t n, IdVec *out,
                    Err *err) {
    if (n == 0) return 0;
    if (n == 1) {
        int id = m->byte_id[w[0]] >= 0 ? m->byte_id[w[0]] : m->unk_id;
        if (id >= 0 && idvec_push(out, id) != 0) goto oom;
        return 0;
    }
    if (m->ignore_merges) {
        int id = map_find(m, &m->by_raw, 1, w, n);
        if (id >= 0) return idvec_push(out, id) == 0 ? 0 : err_set(err, "out of memory");
    }
    uint64_t h = 0;
    size_t slot = 0;
    if (n <= CACHE_WORD && !s->no_cache) {
        if (!s->c_cap && cache_init(s) != 0) goto oom;
        h = bpe_hash_bytes(w, n);
        slot = cache_find(s, h, w, n);
        if (s->c_hash[slot]) {
            const int32_t *v = s->c_ids + s->c_val[slot];
            for (size_t j = 0; j < s->c_nval[slot]; j++)
                if (idvec_push(out, v[j]) != 0) goto oom;
            return 0;
        }
    }
    if (scratch_reserve(s, n) != 0) goto oom;
    /* the symbols: one per byte (a byte missing from the vocab becomes
     * unk, or is left out) */
    int32_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int id = m->byte_id[w[i]] >= 0 ? m->byte_id[w[i]] : m->unk_id;
        if (id < 0) continue;
        s->sym[k] = id;
        s->prev[k] = k - 1;
        s->next[k] = k + 1;
        k++;
    }
    if (k == 0) return 0;
    s->next[k - 1] = -1;
    size_t nh = 0;
    if (m->mcap)
        for (int32_t i = 0; i + 1 < k; i++)
            if (push_pair(m, s, &nh, i) != 0) goto oom;
    while (nh) {
        BpeHeapItem it = heap_pop(s->heap, &nh);
        int32_t i = (int32_t)(it.key & 0xffffffffu), j = s->next[i];
        /* stale: the left symbol was merged away or changed, or its right
         * neighbour changed (symbols only grow, so a pair never recurs) */
        if (s->sym[i] != it.left || j < 0 || s->sym[j] != it.right) continue;
        s->sym[i] = it.merged;
        s->sym[j] = -1;
        s->next[i] = s->next[j];
        if (s->next[j] >= 0) s->prev[s->next[j]] = i;
        if ((s->prev[i] >= 0 && push_pair(m, s, &nh, s->prev[i]) != 0) ||
            push_pair(m, s, &nh, i) != 0)
            goto oom;
    }
    size_t first = out->n;
    for (int32_t i = 0; i >= 0; i = s->next[i])
        if (idvec_push(out, s->sym[i]) != 0) goto oom;
    if (n <= CACHE_WORD && !s->no_cache) cache_put(s, h, w, n, out->v + first, out->n - first);
    return 0;
oom:
    return err_set(err, "out of memory");
}
