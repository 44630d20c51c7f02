/* SPDX-License-Identifier: MIT */
/* Encoding and decoding with a loaded Tokenizer (see tokenizer.h). Encode:
 * added tokens are matched first in the raw text (leftmost, then longest),
 * the text between them is normalized, pre-tokenized into words and each
 * word merged by BPE. Decode: each id's bytes, concatenated; the stream
 * variant holds back an unfinished UTF-8 sequence.
 *
 * Threads: tokenizer_encode may be called from several threads at once on
 * one Tokenizer. The first caller takes the shared state (warm word cache,
 * grown buffers) under a trylock; a concurrent caller works with a private
 * state it frees on return, so it is correct but colder. Decoding only
 * reads. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_impl.h"

void encstate_free(EncState *es) {
    pt_state_free(&es->pt);
    bpe_scratch_free(&es->bpe);
    bytebuf_free(&es->norm);
    idvec_free(&es->ids);
}

/* ---- added tokens ------------------------------------------------------------ */

/* Oniguruma's / Rust's white space (what lstrip and rstrip take away). */
static int is_ws(unsigned cp) {
    return (cp >= 9 && cp <= 13) || cp == 0x20 || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
           cp == 0x205f || cp == 0x3000;
}

/* The code point ending just before p[end] (searching back to lo), its
 * start in *start; 0 with *start = end when none decodes. */
static unsigned cp_before(const unsigned char *p, size_t lo, size_t end, size_t *start) {
    size_t s = end;
    while (s > lo && end - s < 4 && (p[s - 1] & 0xc0) == 0x80) s--;
    if (s > lo) s--;
    *start = end;
    if (s == end) return 0;
    unsigned c = p[s];
    size_t k = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
    if (k != end - s) return 0;
    unsigned cp = k == 1 ? c : c & (0x7f >> k);
    for (size_t i = 1; i < k; i++) cp = (cp << 6) | (p[s + i] & 0x3f);
    *start = s;
    return cp;
}

/* The code point at p[i] (bounded by n), its length in *len (0: none). */
static unsigned cp_at(const unsigned char *p, size_t n, size_t i, size_t *len) {
    *len = 0;
    if (i >= n) return 0;
    unsigned c = p[i];
    size_t k = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
    if (!k || i + k > n) return 0;
    unsigned cp = k == 1 ? c : c & (0x7f >> k);
    for (size_t j = 1; j < k; j++) {
        if ((p[i + j] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (p[i + j] & 0x3f);
    }
    *len = k;
    return cp;
}

/* A word character for single_word tokens: a letter, digit or '_' (ASCII
 * and the common Unicode letters; a code point above U+00FF that is not
 * white space counts as a letter, which covers scripts without spaces). */
static int is_word(unsigned cp) {
    if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') ||
                          (cp >= 'A' && cp <= 'Z') || cp == '_';
    return cp >= 0xc0 && !is_ws(cp) && cp != 0xd7 && cp != 0xf7;
}

/* The longest added token starting at p[i], or -1; *len gets its length. */
static int match_added(const Tokenizer *t, const unsigned char *p, size_t n, size_t i, size_t *len) {
    int node = t->root_child[p[i]], best = -1;
    size_t j = i + 1;
    while (node >= 0) {
        if (t->trie[node].added >= 0) {
            best = t->trie[node].added;
            *len = j - i;
        }
        if (j >= n) break;
        int c = t->trie[node].child;
        while (c >= 0 && t->trie[c].byte != p[j]) c = t->trie[c].sibling;
        node = c;
        j++;
    }
    return best;
}

/* ---- encoding ---------------------------------------------------------------- */

typedef struct WordSink {
    const Tokenizer *t;
    EncState *es;
} WordSink;

static int sink_word(void *ctx, const unsigned char *p, size_t n, Err *err) {
    WordSink *w = ctx;
    return bpe_encode_word(&w->t->bpe, &w->es->bpe, p, n, &w->es->ids, err);
}

/* Text between added tokens: normalize, pre-tokenize, BPE. */
static int encode_section(const Tokenizer *t, EncState *es, const unsigned char *p, size_t n,
                          Err *err) {
    if (n == 0) return 0;
    const unsigned char *q;
    size_t nq;
    if (norm_apply(&t->norm, p, n, &es->norm, &q, &nq, err) != 0) return -1;
    WordSink w = {t, es};
    return pt_run(&t->pt, &es->pt, q, nq, sink_word, &w, err);
}

static int encode_text(const Tokenizer *t, EncState *es, const unsigned char *p, size_t n,
                       Err *err) {
    size_t sec = 0, i = 0;
    while (i < n) {
        if (t->root_child[p[i]] < 0) {
            i++;
            continue;
        }
        size_t len = 0;
        int a = match_added(t, p, n, i, &len);
        if (a < 0) {
            i++;
            continue;
        }
        const AddedToken *at = &t->added[a];
        size_t ms = i, me = i + len, k, s;
        if (at->single_word) {
            unsigned before = cp_before(p, sec, ms, &s), after = cp_at(p, n, me, &k);
            if ((s < ms && is_word(before)) || (k && is_word(after))) {
                i++;
                continue;
            }
        }
        if (at->lstrip) /* the white space before the token goes with it */
            while (ms > sec) {
                unsigned cp = cp_before(p, sec, ms, &s);
                if (s == ms || !is_ws(cp)) break;
                ms = s;
            }
        if (at->rstrip)
            for (unsigned cp; (cp = cp_at(p, n, me, &k)), k && is_ws(cp);) me += k;
        if (encode_section(t, es, p + sec, ms - sec, err) != 0) return -1;
        if (idvec_push(&es->ids, at->id) != 0) return err_set(err, "out of memory");
        sec = i = me;
    }
    return encode_section(t, es, p + sec, n - sec, err);
}

int tokenizer_encode(const Tokenizer *tok, const char *text, size_t len, int add_bos, int **ids,
                     int *n, Err *err) {
    *ids = NULL;
    *n = 0;
    /* the lock and the shared state are the mutable part of a const
     * Tokenizer: see the note at the top of this file */
    Tokenizer *t = (Tokenizer *)tok;
    EncState *es = NULL;
    int shared = pthread_mutex_trylock(&t->lock) == 0;
    if (shared) es = t->shared;
    else if (!(es = calloc(1, sizeof *es))) return err_set(err, "out of memory");
    else es->bpe.no_cache = 1; /* building a 3 MB cache for one call would not pay */
    es->ids.n = 0;
    int rc = 0;
    if (add_bos && t->bos_id >= 0 && idvec_push(&es->ids, t->bos_id) != 0)
        rc = err_set(err, "out of memory");
    if (rc == 0) rc = encode_text(t, es, (const unsigned char *)text, len, err);
    if (rc == 0 && es->ids.n > (size_t)INT32_MAX) rc = err_set(err, "too many tokens");
    if (rc == 0) {
        *ids = malloc((es->ids.n ? es->ids.n : 1) * sizeof **ids);
        if (!*ids) rc = err_set(err, "out of memory");
        else {
            if (es->ids.n) memcpy(*ids, es->ids.v, es->ids.n * sizeof **ids);
            *n = (int)es->ids.n;
        }
    }
    if (shared) {
        /* a huge text must not pin its buffers for the tokenizer's life */
        if (es->ids.cap > ((size_t)1 << 20)) idvec_free(&es->ids);
        if (es->norm.cap > ((size_t)1 << 22)) bytebuf_free(&es->norm);
        bpe_scratch_trim(&es->bpe, (size_t)1 << 16);
        pthread_mutex_unlock(&t->lock);
    } else {
        encstate_free(es);
        free(es);
    }
    return rc;
}

/* ---- decoding ----------------------------------------------------------------- */

int tokenizer_decode(const Tokenizer *t, const int *ids, int n, int skip_special, char **out,
                     size_t *len, Err *err) {
    *out = NULL;
    *len = 0;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->bpe.n_vocab)
            return err_set(err, "token id %d is out of range (vocabulary of %d)", ids[i],
                           t->bpe.n_vocab);
        if (t->bpe.str_off[ids[i]] != BPE_NONE && !(skip_special && t->special[ids[i]]))
            total += t->bpe.raw_len[ids[i]];
    }
    char *s = malloc(total + 1);
    if (!s) return err_set(err, "out of memory");
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        int id = ids[i];
        if (t->bpe.str_off[id] == BPE_NONE || (skip_special && t->special[id])) continue;
        memcpy(s + k, bpe_raw(&t->bpe, id), t->bpe.raw_len[id]);
        k += t->bpe.raw_len[id];
    }
    s[k] = 0;
    *out = s;
    *len = k;
    return 0;
}

void tokstream_init(TokStream *s, const Tokenizer *tok, int skip_special) {
    memset(s, 0, sizeof *s);
    s->tok = tok;
    s->skip_special = skip_special;
}

/* How many bytes at the end of p[0..n) are an unfinished UTF-8 sequence
 * that later bytes could still complete (0 if none). A sequence that can
 * never become valid is not held: it goes out as is. */
static int utf8_incomplete_tail(const unsigned char *p, int n) {
    for (int k = 1; k <= 3 && k <= n; k++) {
        unsigned c = p[n - k];
        if ((c & 0xc0) == 0x80) continue; /* continuation: look further back */
        int need = c >= 0xf5 ? 0 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
        if (need <= k) return 0; /* complete, or not a lead byte */
        if (k >= 2) { /* the second byte's range depends on the lead */
            unsigned c1 = p[n - k + 1];
            if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 > 0x9f) || (c == 0xf0 && c1 < 0x90) ||
                (c == 0xf4 && c1 > 0x8f))
                return 0;
        }
        return k;
    }
    return 0;
}

int tokstream_push(TokStream *s, int id, char *out, size_t cap, Err *err) {
    const Tokenizer *t = s->tok;
    if (id < 0 || id >= t->bpe.n_vocab)
        return err_set(err, "token id %d is out of range (vocabulary of %d)", id, t->bpe.n_vocab);
    size_t len = 0;
    const char *bytes = "";
    if (t->bpe.str_off[id] != BPE_NONE && !(s->skip_special && t->special[id])) {
        bytes = bpe_raw(&t->bpe, id);
        len = t->bpe.raw_len[id];
    }
    size_t total = (size_t)s->n_pending + len;
    if (total > cap || total > (size_t)INT32_MAX)
        return err_set(err, "token %d needs %zu bytes of output, the buffer has %zu", id, total, cap);
    memcpy(out, s->pending, (size_t)s->n_pending);
    memcpy(out + s->n_pending, bytes, len);
    int hold = utf8_incomplete_tail((const unsigned char *)out, (int)total);
    memcpy(s->pending, out + total - (size_t)hold, (size_t)hold);
    s->n_pending = hold;
    return (int)total - hold;
}

int tokstream_flush(TokStream *s, char *out, size_t cap) {
    int n = s->n_pending <= (int)cap ? s->n_pending : (int)cap;
    memcpy(out, s->pending, (size_t)n);
    memmove(s->pending, s->pending + n, (size_t)(s->n_pending - n));
    s->n_pending -= n;
    return n;
}

/* ---- lookups ------------------------------------------------------------------- */

int tokenizer_n_vocab(const Tokenizer *t) { return t->bpe.n_vocab; }

int tokenizer_token_id(const Tokenizer *t, const char *content) {
    size_t n = strlen(content), len;
    const unsigned char *p = (const unsigned char *)content;
    if (n && t->root_child[p[0]] >= 0) {
        int a = match_added(t, p, n, 0, &len);
        if (a >= 0 && len == n) return t->added[a].id;
    }
    return bpe_model_find(&t->bpe, content, n);
}

const char *tokenizer_token_str(const Tokenizer *t, int id) {
    return id >= 0 && id < t->bpe.n_vocab ? bpe_str(&t->bpe, id) : NULL;
}

int tokenizer_is_special(const Tokenizer *t, int id) {
    return id >= 0 && id < t->bpe.n_vocab && t->special[id];
}

int tokenizer_bos_id(const Tokenizer *t) { return t->bos_id; }
int tokenizer_eos_id(const Tokenizer *t) { return t->eos_id; }
const char *tokenizer_chat_template(const Tokenizer *t) { return t->chat_template; }
