/* SPDX-License-Identifier: MIT */
/* Token shard files: header codec, checksum, the hostile-input parser and
 * the streaming atomic writer (see tokshard.h; docs/formats.md). */
#include "io/tokshard.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static uint32_t get32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

static void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v) {
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

void tokshard_header_encode(const TokShardHeader *h, unsigned char out[TOKSHARD_HEADER_SIZE]) {
    memset(out, 0, TOKSHARD_HEADER_SIZE);
    memcpy(out, TOKSHARD_MAGIC, 8);
    put32(out + 8, h->version);
    put32(out + 12, h->header_size);
    put64(out + 16, h->n_tokens);
    put32(out + 24, h->vocab_size);
    put32(out + 28, h->token_bytes);
    put32(out + 32, (uint32_t)h->bos_id);
    put32(out + 36, (uint32_t)h->eos_id);
    put64(out + 40, h->checksum);
}

void tokshard_sum_update(TokShardSum *s, const uint32_t *ids, size_t n) {
    /* A block form (a' = a + sum t_j + k, b' = b + k a + sum (k - j) t_j +
     * k (k + 1) / 2) vectorises, but measured only ~20% faster at -O2 than
     * this loop, and opening shards is bound by page faults. */
    uint64_t a = s->a, b = s->b;
    for (size_t i = 0; i < n; i++) {
        a += (uint64_t)ids[i] + 1;
        b += a;
    }
    s->a = a;
    s->b = b;
}

uint64_t tokshard_sum_final(const TokShardSum *s) { return s->a ^ (s->b << 32 | s->b >> 32); }

/* ---- reading ------------------------------------------------------------------ */

static int check_header(const unsigned char *p, size_t size, const char *name, int vocab_size,
                        TokShardHeader *h, Err *err) {
    if (size < TOKSHARD_HEADER_SIZE)
        return err_set(err, "%s: truncated token shard (%zu bytes, the header alone is %d)", name,
                       size, TOKSHARD_HEADER_SIZE);
    if (memcmp(p, TOKSHARD_MAGIC, 8) != 0)
        return err_set(err, "%s: not a whale token shard (bad magic; expected \"%s\")", name,
                       TOKSHARD_MAGIC);
    h->version = get32(p + 8);
    h->header_size = get32(p + 12);
    h->n_tokens = get64(p + 16);
    h->vocab_size = get32(p + 24);
    h->token_bytes = get32(p + 28);
    h->bos_id = (int32_t)get32(p + 32);
    h->eos_id = (int32_t)get32(p + 36);
    h->checksum = get64(p + 40);
    if (h->version != TOKSHARD_VERSION)
        return err_set(err, "%s: token shard version %u is not supported (this whale reads %d)",
                       name, h->version, TOKSHARD_VERSION);
    if (h->header_size < TOKSHARD_HEADER_SIZE || h->header_size % 8 != 0)
        return err_set(err, "%s: bad header_size %u (a multiple of 8, at least %d)", name,
                       h->header_size, TOKSHARD_HEADER_SIZE);
    if (h->token_bytes != 4)
        return err_set(err, "%s: token width %u bytes is not supported (4: uint32)", name,
                       h->token_bytes);
    if (h->vocab_size == 0 || h->vocab_size > INT32_MAX)
        return err_set(err, "%s: bad vocab_size %u in the header", name, h->vocab_size);
    if (vocab_size > 0 && h->vocab_size != (uint32_t)vocab_size)
        return err_set(err,
                       "%s: tokenizer/model vocab mismatch: the shard was made for vocab_size %u, "
                       "the model has %d (remake the shards with whale data -m MODEL)",
                       name, h->vocab_size, vocab_size);
    if (h->bos_id < -1 || (h->bos_id >= 0 && (uint32_t)h->bos_id >= h->vocab_size) ||
        h->eos_id < -1 || (h->eos_id >= 0 && (uint32_t)h->eos_id >= h->vocab_size))
        return err_set(err, "%s: bos_id %d / eos_id %d outside the vocabulary (%u)", name,
                       h->bos_id, h->eos_id, h->vocab_size);
    if (h->header_size > size)
        return err_set(err, "%s: truncated token shard (%zu bytes, header_size %u)", name, size,
                       h->header_size);
    uint64_t have = (uint64_t)(size - h->header_size);
    if (have % 4 != 0 || have / 4 != h->n_tokens)
        return err_set(err,
                       "%s: the header says %llu tokens but the file holds %llu bytes of ids "
                       "(%s)",
                       name, (unsigned long long)h->n_tokens, (unsigned long long)have,
                       h->n_tokens > have / 4 ? "truncated" : "trailing bytes");
    return 0;
}

int tokshard_parse(const void *data, size_t size, const char *name, int vocab_size,
                   TokShardHeader *h, const unsigned char **ids, Err *err) {
    const unsigned char *p = data;
    memset(h, 0, sizeof *h);
    *ids = NULL;
    if (check_header(p, size, name, vocab_size, h, err) != 0) return -1;
    const unsigned char *q = p + h->header_size;
    /* Ids are read in blocks copied to an aligned buffer: the data may sit at
     * any address (fuzzers, callers' buffers) and must be little-endian on
     * any host. The copy stays in L1 and costs far less than the page faults. */
    uint32_t blk[1024];
    TokShardSum sum = {0, 0};
    uint64_t n = h->n_tokens;
    for (uint64_t i = 0; i < n;) {
        size_t k = n - i < 1024 ? (size_t)(n - i) : 1024;
        uint32_t mx = 0;
        for (size_t j = 0; j < k; j++) {
            blk[j] = get32(q + 4 * (i + j));
            mx = blk[j] > mx ? blk[j] : mx;
        }
        if (mx >= h->vocab_size) {
            for (size_t j = 0; j < k; j++)
                if (blk[j] >= h->vocab_size)
                    return err_set(err, "%s: token %llu is id %u, outside the vocabulary (%u)",
                                   name, (unsigned long long)(i + j), blk[j], h->vocab_size);
        }
        tokshard_sum_update(&sum, blk, k);
        i += k;
    }
    uint64_t c = tokshard_sum_final(&sum);
    if (c != h->checksum)
        return err_set(err, "%s: checksum mismatch (header %016llx, ids %016llx): the file is "
                            "damaged",
                       name, (unsigned long long)h->checksum, (unsigned long long)c);
    *ids = q;
    return 0;
}

/* ---- writing ------------------------------------------------------------------ */

int tokshard_writer_open(TokShardWriter *w, const char *path, uint32_t vocab_size, int32_t bos_id,
                         int32_t eos_id, Err *err) {
    memset(w, 0, sizeof *w);
    if (vocab_size == 0 || vocab_size > INT32_MAX)
        return err_set(err, "%s: bad vocab_size %u", path, vocab_size);
    if (bos_id < -1 || (bos_id >= 0 && (uint32_t)bos_id >= vocab_size) || eos_id < -1 ||
        (eos_id >= 0 && (uint32_t)eos_id >= vocab_size))
        return err_set(err, "%s: bos_id %d / eos_id %d outside the vocabulary (%u)", path, bos_id,
                       eos_id, vocab_size);
    if (afile_open(&w->af, path, err) != 0) return -1;
    w->h = (TokShardHeader){.version = TOKSHARD_VERSION,
                            .header_size = TOKSHARD_HEADER_SIZE,
                            .vocab_size = vocab_size,
                            .token_bytes = 4,
                            .bos_id = bos_id,
                            .eos_id = eos_id};
    unsigned char zero[TOKSHARD_HEADER_SIZE] = {0}; /* no magic until the header is real */
    if (fwrite(zero, 1, sizeof zero, w->af.fp) != sizeof zero) {
        err_set(err, "%s: write failed: %s", path, strerror(errno));
        afile_abort(&w->af);
        return -1;
    }
    return 0;
}

int tokshard_writer_append(TokShardWriter *w, const int32_t *ids, size_t n, Err *err) {
    uint32_t blk[1024];
    unsigned char bytes[4096];
    for (size_t i = 0; i < n;) {
        size_t k = n - i < 1024 ? n - i : 1024;
        for (size_t j = 0; j < k; j++) {
            int32_t v = ids[i + j];
            if (v < 0 || (uint32_t)v >= w->h.vocab_size)
                return err_set(err, "%s: token id %d outside the vocabulary (%u)", w->af.path, v,
                               w->h.vocab_size);
            blk[j] = (uint32_t)v;
            put32(bytes + 4 * j, blk[j]);
        }
        tokshard_sum_update(&w->sum, blk, k);
        if (fwrite(bytes, 4, k, w->af.fp) != k)
            return err_set(err, "%s: write failed: %s", w->af.path, strerror(errno));
        w->h.n_tokens += k;
        i += k;
    }
    return 0;
}

int tokshard_writer_commit(TokShardWriter *w, Err *err) {
    unsigned char hdr[TOKSHARD_HEADER_SIZE];
    w->h.checksum = tokshard_sum_final(&w->sum);
    tokshard_header_encode(&w->h, hdr);
    FILE *fp = w->af.fp;
    if (fflush(fp) != 0 || fseek(fp, 0, SEEK_SET) != 0 || fwrite(hdr, 1, sizeof hdr, fp) != sizeof hdr) {
        err_set(err, "%s: write failed: %s", w->af.path, strerror(errno));
        tokshard_writer_abort(w);
        return -1;
    }
    int rc = afile_commit(&w->af, err);
    memset(w, 0, sizeof *w);
    return rc;
}

void tokshard_writer_abort(TokShardWriter *w) {
    if (w->af.fp || w->af.tmp) afile_abort(&w->af);
    memset(w, 0, sizeof *w);
}

int tokshard_write(const char *path, const int32_t *ids, size_t n, uint32_t vocab_size,
                   int32_t bos_id, int32_t eos_id, Err *err) {
    TokShardWriter w;
    if (tokshard_writer_open(&w, path, vocab_size, bos_id, eos_id, err) != 0) return -1;
    if (tokshard_writer_append(&w, ids, n, err) != 0) {
        tokshard_writer_abort(&w);
        return -1;
    }
    return tokshard_writer_commit(&w, err);
}
