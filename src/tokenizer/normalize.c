/* SPDX-License-Identifier: MIT */
/* NFC normalization for the tokenizer (see normalize.h). utf8proc does the
 * work; this file only finds the parts of the text NFC can change, so that
 * English and CJK text (almost all of it) pass without a copy. */
#include "tokenizer/normalize.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

static int add_json(Normalizer *nm, const json_t *j, const char *field, int depth,
                    const char *what, Err *err) {
    if (!json_is_object(j)) return err_set(err, "%s: %s must be an object", what, field);
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!type) return err_set(err, "%s: %s.type must be a string", what, field);
    if (!strcmp(type, "NFC")) {
        nm->nfc = 1;
        return 0;
    }
    if (!strcmp(type, "Sequence")) {
        const json_t *a = json_object_get(j, "normalizers");
        if (!json_is_array(a)) return err_set(err, "%s: %s.normalizers must be an array", what, field);
        if (depth > 8) return err_set(err, "%s: %s: Sequence nested too deeply", what, field);
        for (size_t i = 0; i < json_array_size(a); i++) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.normalizers[%zu]", field, i);
            if (add_json(nm, json_array_get(a, i), sub, depth + 1, what, err) != 0) return -1;
        }
        return 0;
    }
    return err_set(err, "%s: %s: normalizer type '%s' is not supported (supported: NFC, Sequence)",
                   what, field, type);
}

int norm_from_json(Normalizer *nm, const json_t *j, const char *what, Err *err) {
    memset(nm, 0, sizeof *nm);
    if (!j || json_is_null(j)) return 0;
    return add_json(nm, j, "normalizer", 0, what, err);
}

int bytebuf_put(ByteBuf *b, const void *p, size_t n) {
    if (n > b->cap - b->n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->n < n) {
            if (cap > SIZE_MAX / 2) return -1;
            cap *= 2;
        }
        unsigned char *q = realloc(b->p, cap);
        if (!q) return -1;
        b->p = q;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
    return 0;
}

void bytebuf_free(ByteBuf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* A code point NFC leaves alone whatever surrounds it: it is unchanged by
 * NFC, has combining class 0 and is never the second of a composition
 * (Unicode's NFC_Quick_Check = Yes with ccc = 0). A conservative list of
 * ranges, checked against utf8proc by tests/test_tokenizer.c: below U+0300,
 * CJK punctuation (without the tone marks U+302A..302F), hiragana and
 * katakana (without the voicing marks), CJK ideographs, Hangul syllables,
 * fullwidth forms. Text can be cut before such a character and each part
 * normalized alone. */
static int nfc_inert(unsigned cp) {
    return cp < 0x300 || (cp >= 0x3000 && cp <= 0x3029) || (cp >= 0x3030 && cp <= 0x303f) ||
           (cp >= 0x3041 && cp <= 0x3096) || (cp >= 0x30a1 && cp <= 0x30fa) ||
           (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0x4e00 && cp <= 0x9fff) ||
           (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xff01 && cp <= 0xff60);
}

/* Decode one character; 0 for bytes that are not valid UTF-8. */
static size_t dec(const unsigned char *s, size_t n, unsigned *cp) {
    utf8proc_int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate(s, n < 4 ? (utf8proc_ssize_t)n : 4, &c);
    if (k <= 0) return 0;
    *cp = (unsigned)c;
    return (size_t)k;
}

int norm_apply(const Normalizer *nm, const unsigned char *p, size_t n, ByteBuf *buf,
               const unsigned char **out, size_t *out_n, Err *err) {
    *out = p;
    *out_n = n;
    if (!nm->nfc) return 0;
    size_t i = 0;
    /* fast scan: a lead byte below 0xCC starts a code point below U+0300 */
    while (i < n && p[i] < 0xcc) i++;
    if (i == n) return 0;
    buf->n = 0;
    size_t done = 0;      /* p[0..done) is in buf (or needs no copy yet) */
    size_t last_inert = SIZE_MAX; /* start of the inert character before i */
    int copied = 0;
    i = 0;
    while (i < n) {
        unsigned cp;
        size_t k = dec(p + i, n - i, &cp);
        if (k == 0 || nfc_inert(cp)) { /* invalid bytes pass through like inert ones */
            last_inert = k ? i : SIZE_MAX;
            i += k ? k : 1;
            continue;
        }
        /* a run of characters NFC may change, with the inert starter before
         * it that they may compose with */
        size_t ws = last_inert != SIZE_MAX ? last_inert : i, we = i;
        while (we < n && (k = dec(p + we, n - we, &cp)) != 0 && !nfc_inert(cp)) we += k;
        utf8proc_uint8_t *dst = NULL;
        utf8proc_ssize_t r = utf8proc_map(p + ws, (utf8proc_ssize_t)(we - ws), &dst,
                                          UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        if (r < 0) return err_set(err, "NFC: %s", utf8proc_errmsg(r));
        int same = (size_t)r == we - ws && !memcmp(dst, p + ws, we - ws);
        if (!same || copied) {
            if (bytebuf_put(buf, p + done, ws - done) != 0 || bytebuf_put(buf, dst, (size_t)r) != 0) {
                free(dst);
                return err_set(err, "out of memory");
            }
            done = we;
            copied = 1;
        }
        free(dst);
        last_inert = SIZE_MAX;
        i = we;
    }
    if (!copied) return 0;
    if (bytebuf_put(buf, p + done, n - done) != 0) return err_set(err, "out of memory");
    *out = buf->p;
    *out_n = buf->n;
    return 0;
}
