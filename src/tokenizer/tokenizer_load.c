/* SPDX-License-Identifier: MIT */
/* Loading a Hugging Face tokenizer.json (+ tokenizer_config.json) into a
 * Tokenizer: the BPE vocabulary and merges, added tokens, normalizer,
 * pre-tokenizer and decoder, BOS/EOS and the chat template. The file is
 * input like any other: every id is range-checked, every field type-checked,
 * and anything whale does not implement is refused by name rather than
 * half-supported. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/json.h"
#include "tokenizer/tokenizer_impl.h"

/* Ids above this are refused: real vocabularies stay under 300k, and the
 * per-id tables must not let a hostile file ask for gigabytes. */
#define TOK_MAX_ID (1 << 22)
#define TOK_MAX_JSON ((size_t)1 << 30)

static int get_id(const json_t *v, int *id) {
    if (!json_is_integer(v)) return -1;
    json_int_t x = json_integer_value(v);
    if (x < 0 || x >= TOK_MAX_ID) return -1;
    *id = (int)x;
    return 0;
}

/* ---- the BPE model ---------------------------------------------------------- */

static int merge_parts(const json_t *m, const char **a, size_t *la, const char **b, size_t *lb) {
    if (json_is_string(m)) {
        /* "a b": symbols of a byte-level vocab never hold a space */
        const char *s = json_string_value(m), *sp = memchr(s, ' ', json_string_length(m));
        if (!sp || memchr(sp + 1, ' ', json_string_length(m) - (size_t)(sp + 1 - s))) return -1;
        *a = s, *la = (size_t)(sp - s), *b = sp + 1, *lb = json_string_length(m) - *la - 1;
        return 0;
    }
    if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
        json_is_string(json_array_get(m, 1))) {
        *a = json_string_value(json_array_get(m, 0)), *la = json_string_length(json_array_get(m, 0));
        *b = json_string_value(json_array_get(m, 1)), *lb = json_string_length(json_array_get(m, 1));
        return 0;
    }
    return -1;
}

static int load_merges(Tokenizer *t, const json_t *merges, Err *err) {
    const char *what = t->path;
    t->bpe.merges_hint = json_array_size(merges);
    char small[512], *buf = small;
    size_t cap = sizeof small;
    int rc = 0;
    for (size_t i = 0; i < json_array_size(merges); i++) {
        const char *a, *b;
        size_t la, lb;
        if (merge_parts(json_array_get(merges, i), &a, &la, &b, &lb) != 0) {
            rc = err_set(err, "%s: model.merges[%zu] must be \"a b\" or [\"a\", \"b\"]", what, i);
            break;
        }
        if (la + lb + 1 > cap) {
            cap = la + lb + 1;
            char *nb = buf == small ? malloc(cap) : realloc(buf, cap);
            if (!nb) {
                rc = err_set(err, "%s: out of memory", what);
                break;
            }
            buf = nb;
        }
        memcpy(buf, a, la);
        memcpy(buf + la, b, lb);
        int left = bpe_model_find(&t->bpe, a, la), right = bpe_model_find(&t->bpe, b, lb);
        int merged = bpe_model_find(&t->bpe, buf, la + lb);
        if (left < 0 || right < 0 || merged < 0) {
            const char *miss = left < 0 ? a : right < 0 ? b : buf;
            int lm = (int)(left < 0 ? la : right < 0 ? lb : la + lb);
            rc = err_set(err, "%s: model.merges[%zu]: token '%.*s' is not in the vocab", what, i,
                         lm > 100 ? 100 : lm, miss);
            break;
        }
        if (i > INT_MAX || bpe_model_add_merge(&t->bpe, left, right, merged, (int)i, err) != 0) {
            rc = -1;
            break;
        }
    }
    if (buf != small) free(buf);
    return rc;
}

/* Optional string field that must be null, absent or "" (a feature whale
 * does not implement otherwise). */
static int must_be_empty(const json_t *model, const char *key, const char *what, Err *err) {
    const json_t *v = json_object_get(model, key);
    if (!v || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0)) return 0;
    return err_set(err, "%s: model.%s is not supported (only null or \"\")", what, key);
}

static int load_model(Tokenizer *t, const json_t *root, int n_vocab, Err *err) {
    const char *what = t->path;
    const json_t *model = json_object_get(root, "model");
    const json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
    const char *type = json_string_value(json_object_get(model, "type"));
    if (type && strcmp(type, "BPE") != 0)
        return err_set(err, "%s: model type '%s' is not supported (only BPE)", what, type);
    if (!json_is_object(vocab)) return err_set(err, "%s: model.vocab must be an object", what);
    if (!json_is_array(merges)) return err_set(err, "%s: model.merges must be an array", what);
    const json_t *dropout = json_object_get(model, "dropout");
    if (dropout && !json_is_null(dropout) && !(json_is_number(dropout) && json_number_value(dropout) == 0))
        return err_set(err, "%s: model.dropout is not supported (only null)", what);
    if (must_be_empty(model, "continuing_subword_prefix", what, err) != 0 ||
        must_be_empty(model, "end_of_word_suffix", what, err) != 0)
        return -1;
    int ignore_merges = 0;
    if (json_get_bool(model, "ignore_merges", &ignore_merges, what, err) != 0) return -1;

    if (bpe_model_init(&t->bpe, n_vocab, err) != 0) return err_prefix(err, "%s", what);
    t->bpe.ignore_merges = ignore_merges;
    const char *key;
    size_t klen;
    json_t *v;
    json_object_keylen_foreach((json_t *)vocab, key, klen, v) {
        int id;
        if (get_id(v, &id) != 0)
            return err_set(err, "%s: model.vocab['%.100s'] must be an id in [0, %d)", what, key,
                           TOK_MAX_ID);
        if (bpe_model_set_token(&t->bpe, id, key, klen, 0, err) != 0) return err_prefix(err, "%s", what);
    }
    if (load_merges(t, merges, err) != 0) return -1;
    const char *unk = json_string_value(json_object_get(model, "unk_token"));
    if (unk) t->bpe.unk_id = bpe_model_find(&t->bpe, unk, strlen(unk));
    return 0;
}

/* ---- added tokens ------------------------------------------------------------ */

static int trie_node(Tokenizer *t, int *cap) {
    if (t->n_trie == *cap) {
        int nc = *cap ? *cap * 2 : 256;
        TrieNode *n = realloc(t->trie, (size_t)nc * sizeof *n);
        if (!n) return -1;
        t->trie = n;
        *cap = nc;
    }
    t->trie[t->n_trie] = (TrieNode){-1, -1, -1, 0};
    return t->n_trie++;
}

static int trie_add(Tokenizer *t, int a, int *cap) {
    const unsigned char *s = (const unsigned char *)t->added[a].content;
    size_t n = t->added[a].len;
    if (n == 0) return 0; /* an empty token can never be matched */
    if (t->n_trie == 0 && trie_node(t, cap) < 0) return -1;
    int node = t->root_child[s[0]];
    if (node < 0) {
        if ((node = trie_node(t, cap)) < 0) return -1;
        t->trie[node].byte = s[0];
        t->root_child[s[0]] = node;
    }
    for (size_t i = 1; i < n; i++) {
        int c = t->trie[node].child;
        while (c >= 0 && t->trie[c].byte != s[i]) c = t->trie[c].sibling;
        if (c < 0) {
            if ((c = trie_node(t, cap)) < 0) return -1;
            t->trie[c].byte = s[i];
            t->trie[c].sibling = t->trie[node].child;
            t->trie[node].child = c;
        }
        node = c;
    }
    t->trie[node].added = a; /* a later duplicate content wins */
    return 0;
}

static int load_added(Tokenizer *t, const json_t *arr, Err *err) {
    const char *what = t->path;
    if (!arr || json_is_null(arr)) return 0;
    if (!json_is_array(arr)) return err_set(err, "%s: added_tokens must be an array", what);
    size_t n = json_array_size(arr);
    t->added = calloc(n ? n : 1, sizeof *t->added);
    if (!t->added) return err_set(err, "%s: out of memory", what);
    int trie_cap = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(arr, i), *c = json_object_get(o, "content");
        AddedToken *a = &t->added[i];
        char field[64];
        snprintf(field, sizeof field, "added_tokens[%zu]", i);
        if (!json_is_object(o) || !json_is_string(c) || get_id(json_object_get(o, "id"), &a->id) != 0)
            return err_set(err, "%s: %s needs an \"id\" in [0, %d) and a string \"content\"", what,
                           field, TOK_MAX_ID);
        int flags[5] = {0, 0, 0, 0, 0};
        static const char *const keys[5] = {"special", "lstrip", "rstrip", "single_word",
                                            "normalized"};
        for (int k = 0; k < 5; k++)
            if (json_get_bool(o, keys[k], &flags[k], what, err) != 0) return err_prefix(err, "%s", field);
        a->special = (unsigned char)flags[0], a->lstrip = (unsigned char)flags[1];
        a->rstrip = (unsigned char)flags[2], a->single_word = (unsigned char)flags[3];
        a->normalized = (unsigned char)flags[4];
        a->len = json_string_length(c);
        a->content = malloc(a->len + 1);
        if (!a->content) return err_set(err, "%s: out of memory", what);
        memcpy(a->content, json_string_value(c), a->len + 1);
        t->n_added = (int)i + 1;
        if (bpe_model_set_token(&t->bpe, a->id, a->content, a->len, 1, err) != 0)
            return err_prefix(err, "%s: %s", what, field);
        if (a->special) t->special[a->id] = 1;
        if (trie_add(t, (int)i, &trie_cap) != 0) return err_set(err, "%s: out of memory", what);
    }
    return 0;
}

/* ---- decoder and post-processor ------------------------------------------------ */

static int check_decoder(const json_t *d, const char *field, int depth, const char *what, Err *err) {
    if (!d || json_is_null(d))
        return err_set(err, "%s: %s is missing (byte-level BPE needs the ByteLevel decoder)", what,
                       field);
    const char *type = json_string_value(json_object_get(d, "type"));
    if (!type) return err_set(err, "%s: %s.type must be a string", what, field);
    if (!strcmp(type, "ByteLevel")) return 0;
    if (!strcmp(type, "Sequence") && depth < 8) {
        const json_t *a = json_object_get(d, "decoders");
        if (!json_is_array(a) || json_array_size(a) == 0)
            return err_set(err, "%s: %s.decoders must be a non-empty array", what, field);
        for (size_t i = 0; i < json_array_size(a); i++) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.decoders[%zu]", field, i);
            if (check_decoder(json_array_get(a, i), sub, depth + 1, what, err) != 0) return -1;
        }
        return 0;
    }
    return err_set(err, "%s: %s: decoder type '%s' is not supported (supported: ByteLevel, "
                   "Sequence of ByteLevel)", what, field, type);
}

/* The BOS a TemplateProcessing post-processor puts first, or -1. */
static int template_bos(const Tokenizer *t, const json_t *pp, int depth) {
    const char *type = json_string_value(json_object_get(pp, "type"));
    if (!type || depth > 8) return -1;
    if (!strcmp(type, "Sequence")) {
        const json_t *a = json_object_get(pp, "processors");
        for (size_t i = 0; i < json_array_size(a); i++) {
            int id = template_bos(t, json_array_get(a, i), depth + 1);
            if (id >= 0) return id;
        }
        return -1;
    }
    if (strcmp(type, "TemplateProcessing") != 0) return -1;
    const json_t *first = json_array_get(json_object_get(pp, "single"), 0);
    const char *s = json_string_value(json_object_get(json_object_get(first, "SpecialToken"), "id"));
    return s ? tokenizer_token_id(t, s) : -1;
}

/* ---- tokenizer_config.json -------------------------------------------------- */

/* A token named by the config: "content" or {"content": ...}. */
static const char *config_token(const json_t *v) {
    if (json_is_object(v)) v = json_object_get(v, "content");
    return json_string_value(v);
}

static int load_config(Tokenizer *t, const char *path, Err *err) {
    json_t *cfg = json_load_path(path, TOK_MAX_JSON, err);
    if (!cfg) return -1;
    int rc = 0;
    if (!json_is_object(cfg)) {
        rc = err_set(err, "%s: must hold a JSON object", path);
        goto done;
    }
    const char *bos = config_token(json_object_get(cfg, "bos_token"));
    const char *eos = config_token(json_object_get(cfg, "eos_token"));
    /* a name the vocabulary lacks leaves what the post-processor said */
    int id;
    if (bos && (id = tokenizer_token_id(t, bos)) >= 0) t->bos_id = id;
    if (eos && (id = tokenizer_token_id(t, eos)) >= 0) t->eos_id = id;
    const json_t *extra = json_object_get(cfg, "additional_special_tokens");
    for (size_t i = 0; i < json_array_size(extra); i++) {
        const char *s = config_token(json_array_get(extra, i));
        if (s && (id = tokenizer_token_id(t, s)) >= 0) t->special[id] = 1;
    }
    const json_t *ct = json_object_get(cfg, "chat_template");
    const char *tmpl = json_string_value(ct);
    if (json_is_array(ct)) { /* [{"name": ..., "template": ...}]: the default one */
        for (size_t i = 0; i < json_array_size(ct); i++) {
            const json_t *e = json_array_get(ct, i);
            const char *name = json_string_value(json_object_get(e, "name"));
            if (!tmpl || (name && !strcmp(name, "default")))
                tmpl = json_string_value(json_object_get(e, "template"));
        }
    }
    if (tmpl && !(t->chat_template = strdup(tmpl))) rc = err_set(err, "%s: out of memory", path);
done:
    json_decref(cfg);
    return rc;
}

/* ---- the whole ---------------------------------------------------------------- */

/* Largest id in the vocab and added tokens, +1. */
static int count_ids(const json_t *root, const char *what, Err *err) {
    const json_t *vocab = json_object_get(json_object_get(root, "model"), "vocab");
    int n = 0, id;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)vocab, key, v) {
        if (get_id(v, &id) != 0)
            return err_set(err, "%s: model.vocab['%.100s'] must be an id in [0, %d)", what, key,
                           TOK_MAX_ID);
        if (id >= n) n = id + 1;
    }
    size_t i;
    json_array_foreach(json_object_get(root, "added_tokens"), i, v) {
        if (get_id(json_object_get(v, "id"), &id) == 0 && id >= n) n = id + 1;
    }
    if (n == 0) return err_set(err, "%s: the vocabulary is empty", what);
    return n;
}

/* Build a tokenizer from the parsed tokenizer.json (root, borrowed) named
 * what; cfg_path (may be NULL) is read when the file exists. */
static Tokenizer *build(const json_t *root, const char *what, const char *cfg_path, Err *err) {
    Tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        err_set(err, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&t->lock, NULL);
    t->bos_id = t->eos_id = -1;
    for (int b = 0; b < 256; b++) t->root_child[b] = -1;
    if (!(t->path = strdup(what))) {
        err_set(err, "out of memory");
        goto fail;
    }
    what = t->path;
    if (!json_is_object(root) || !json_is_object(json_object_get(root, "model"))) {
        err_set(err, "%s: not a tokenizer.json (no \"model\" object)", what);
        goto fail;
    }
    int n_vocab = count_ids(root, what, err);
    if (n_vocab < 0) goto fail;
    if (norm_from_json(&t->norm, json_object_get(root, "normalizer"), what, err) != 0 ||
        pt_from_json(&t->pt, json_object_get(root, "pre_tokenizer"), what, err) != 0 ||
        check_decoder(json_object_get(root, "decoder"), "decoder", 0, what, err) != 0)
        goto fail;
    if (!t->pt.has_bytelevel) {
        err_set(err, "%s: pre_tokenizer has no ByteLevel step: only byte-level BPE is supported",
                what);
        goto fail;
    }
    if (load_model(t, root, n_vocab, err) != 0) goto fail;
    if (!(t->special = calloc((size_t)n_vocab, 1))) {
        err_set(err, "%s: out of memory", what);
        goto fail;
    }
    if (load_added(t, json_object_get(root, "added_tokens"), err) != 0) goto fail;
    bpe_model_finish(&t->bpe);
    t->bos_id = template_bos(t, json_object_get(root, "post_processor"), 0);
    if (cfg_path && file_exists(cfg_path) && load_config(t, cfg_path, err) != 0) goto fail;
    if (!(t->shared = calloc(1, sizeof *t->shared))) {
        err_set(err, "out of memory");
        goto fail;
    }
    return t;
fail:
    tokenizer_free(t);
    return NULL;
}

Tokenizer *tokenizer_load_text(const char *json, size_t len, const char *name, Err *err) {
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!root) {
        err_set(err, "%s:%d:%d: %s", name, je.line, je.column, je.text);
        return NULL;
    }
    Tokenizer *t = build(root, name, NULL, err);
    json_decref(root);
    return t;
}

Tokenizer *tokenizer_load(const char *path, Err *err) {
    char json_path[4096], cfg_path[4096];
    if (file_is_dir(path)) {
        if (path_join(json_path, sizeof json_path, path, "tokenizer.json") != 0 ||
            path_join(cfg_path, sizeof cfg_path, path, "tokenizer_config.json") != 0) {
            err_set(err, "%s: path too long", path);
            return NULL;
        }
    } else {
        const char *slash = strrchr(path, '/');
        int dlen = slash ? (int)(slash - path) : 1;
        if (snprintf(json_path, sizeof json_path, "%s", path) >= (int)sizeof json_path ||
            snprintf(cfg_path, sizeof cfg_path, "%.*s/tokenizer_config.json", dlen,
                     slash ? path : ".") >= (int)sizeof cfg_path) {
            err_set(err, "%s: path too long", path);
            return NULL;
        }
    }
    json_t *root = json_load_path(json_path, TOK_MAX_JSON, err);
    if (!root) return NULL;
    Tokenizer *t = build(root, json_path, cfg_path, err);
    json_decref(root);
    return t;
}

void tokenizer_free(Tokenizer *t) {
    if (!t) return;
    bpe_model_free(&t->bpe);
    pt_free(&t->pt);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    free(t->trie);
    free(t->special);
    free(t->chat_template);
    free(t->path);
    if (t->shared) {
        encstate_free(t->shared);
        free(t->shared);
    }
    pthread_mutex_destroy(&t->lock);
    free(t);
}
