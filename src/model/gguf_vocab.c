/* SPDX-License-Identifier: MIT */
/* Byte-level BPE tokenizers between tokenizer.json and GGUF metadata (see
 * gguf_vocab.h). The pre-tokenizer is the part GGUF keeps only by name:
 * llama.cpp hard-codes the regexes of each name (llama-vocab.cpp), so the
 * converter recognises the regexes of a tokenizer.json and the way back
 * writes the Hugging Face form of each name. */
#include "model/gguf_vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/json.h"
#include "base/log.h"

#define TOKJSON_MAX_BYTES ((size_t)1 << 30)
#define VOCAB_MAX_IDS (1 << 24)

/* ---- the pre-tokenizers llama.cpp knows by name ------------------------------------ */

/* The Split regexes of the Hugging Face tokenizer.json files (DeepSeek-V3,
 * Qwen2/Qwen3 and R1-Distill-Qwen, Llama 3), as decoded from the JSON. The
 * DeepSeek-V3 file spells \r \n as the control characters, the others as
 * backslash escapes; regexes are compared with both spellings folded. */
static const char *const ds3_regex[3] = {
    "\\p{N}{1,3}",
    "[\xe4\xb8\x80-\xe9\xbe\xa5\xe3\x81\x80-\xe3\x82\x9f\xe3\x82\xa0-\xe3\x83\xbf]+",
    ("[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}"
     "\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"),
};
static const char *const qwen2_regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char *const llama3_regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/* llama.cpp's LLAMA_VOCAB_PRE_TYPE_DEFAULT, one Split each */
static const char *const default_regex[4] = {
    "[\\p{P}\\$\\+<=>\\^~\\|]+",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    "\\p{N}+",
    "[0-9][0-9][0-9]",
};

/* a == b with CR/LF and the escapes \r \n counted as the same. */
static int regex_eq(const char *a, const char *b) {
    for (;;) {
        char ca = *a, cb = *b;
        int ea = 0, eb = 0; /* 1: an escape sequence of 2 bytes */
        if (a[0] == '\\' && (a[1] == 'r' || a[1] == 'n')) ca = a[1] == 'r' ? '\r' : '\n', ea = 1;
        if (b[0] == '\\' && (b[1] == 'r' || b[1] == 'n')) cb = b[1] == 'r' ? '\r' : '\n', eb = 1;
        if (ca != cb) return 0;
        if (!ca) return 1;
        a += 1 + ea, b += 1 + eb;
    }
}

const char *gguf_vocab_pre_name(const json_t *pre) {
    const char *splits[8];
    int n_split = 0, bytelevel_regex = 0, other = 0;
    const json_t *list = json_object_get(pre, "pretokenizers");
    size_t n = json_is_array(list) ? json_array_size(list) : pre ? 1 : 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *p = json_is_array(list) ? json_array_get(list, i) : pre;
        const char *type = json_string_value(json_object_get(p, "type"));
        if (type && !strcmp(type, "Split")) {
            const char *re = json_string_value(json_object_get(json_object_get(p, "pattern"), "Regex"));
            const char *beh = json_string_value(json_object_get(p, "behavior"));
            if (!re || !beh || strcmp(beh, "Isolated") || json_is_true(json_object_get(p, "invert")) ||
                n_split == 8)
                other = 1;
            else
                splits[n_split++] = re;
        } else if (type && !strcmp(type, "ByteLevel")) {
            const json_t *ur = json_object_get(p, "use_regex");
            bytelevel_regex = !json_is_false(ur); /* the default is true */
        } else {
            other = 1;
        }
    }
    if (other) return "default";
    if (n_split == 3 && !bytelevel_regex && regex_eq(splits[0], ds3_regex[0]) &&
        regex_eq(splits[1], ds3_regex[1]) && regex_eq(splits[2], ds3_regex[2]))
        return "deepseek-v3";
    if (n_split == 1 && !bytelevel_regex && regex_eq(splits[0], qwen2_regex)) return "qwen2";
    if (n_split == 1 && !bytelevel_regex && regex_eq(splits[0], llama3_regex)) return "llama-bpe";
    if (n_split == 0 && bytelevel_regex) return "gpt-2";
    return "default";
}

/* ---- tokenizer.json -> GGUF ---------------------------------------------------------- */

void gguf_vocab_free(GgufVocab *v) {
    json_decref(v->tok);
    json_decref(v->cfg);
    free(v->tokens);
    free(v->types);
    free(v->merges);
    free(v->pad_names);
    free(v->merge_text);
    memset(v, 0, sizeof *v);
}

static int meta_has(const GgufMeta *m, const char *key) {
    for (int i = 0; i < m->n_kv; i++)
        if (!strcmp(m->kvs[i].key, key)) return 1;
    return 0;
}

/* A token named by tokenizer_config.json: a string or {"content": ...}. */
static const char *cfg_token(const json_t *cfg, const char *key) {
    const json_t *t = json_object_get(cfg, key);
    if (json_is_object(t)) t = json_object_get(t, "content");
    return json_string_value(t);
}

/* The id of token text s, or -1. */
static int find_token(const GgufVocab *v, const char *s) {
    size_t n = strlen(s);
    for (int i = 0; i < v->n_tokens; i++)
        if (v->tokens[i].n == n && v->tokens[i].s && !memcmp(v->tokens[i].s, s, n)) return i;
    return -1;
}

static int is_bytelevel(const json_t *tok) {
    const json_t *pre = json_object_get(tok, "pre_tokenizer");
    const json_t *list = json_object_get(pre, "pretokenizers");
    size_t n = json_is_array(list) ? json_array_size(list) : 1;
    for (size_t i = 0; i < n; i++) {
        const json_t *p = json_is_array(list) ? json_array_get(list, i) : pre;
        const char *t = json_string_value(json_object_get(p, "type"));
        if (t && !strcmp(t, "ByteLevel")) return 1;
    }
    const char *d = json_string_value(json_object_get(json_object_get(tok, "decoder"), "type"));
    return d && !strcmp(d, "ByteLevel");
}

/* An integer id in 0..VOCAB_MAX_IDS-1, or -1. */
static int json_id(const json_t *j) {
    if (!json_is_integer(j)) return -1;
    json_int_t v = json_integer_value(j);
    return v >= 0 && v < VOCAB_MAX_IDS ? (int)v : -1;
}

/* Fill tokens/types from model.vocab and added_tokens. */
static int read_tokens(GgufVocab *v, const json_t *vocab, const json_t *added, int n_vocab,
                       const char *path, Err *err) {
    int max_id = -1;
    const char *key;
    size_t klen;
    json_t *val;
    json_object_keylen_foreach((json_t *)vocab, key, klen, val) {
        int id = json_id(val);
        if (id < 0) return err_set(err, "%s: model.vocab['%.40s'] is not a token id", path, key);
        if (id > max_id) max_id = id;
    }
    for (size_t i = 0; i < json_array_size(added); i++) {
        const json_t *a = json_array_get(added, i);
        int id = json_id(json_object_get(a, "id"));
        if (id < 0 || !json_is_string(json_object_get(a, "content")))
            return err_set(err, "%s: added_tokens[%zu] needs an id and a content", path, i);
        if (id > max_id) max_id = id;
    }
    v->n_tokens = n_vocab > max_id + 1 ? n_vocab : max_id + 1;
    v->tokens = calloc((size_t)v->n_tokens, sizeof *v->tokens);
    v->types = calloc((size_t)v->n_tokens, sizeof *v->types);
    if (!v->tokens || !v->types) return err_set(err, "%s: out of memory", path);
    json_object_keylen_foreach((json_t *)vocab, key, klen, val) {
        int id = json_id(val);
        v->tokens[id] = (GgufStr){key, klen};
        v->types[id] = GGUF_TOKEN_NORMAL;
    }
    for (size_t i = 0; i < json_array_size(added); i++) {
        const json_t *a = json_array_get(added, i), *c = json_object_get(a, "content");
        int id = json_id(json_object_get(a, "id"));
        v->tokens[id] = (GgufStr){json_string_value(c), json_string_length(c)};
        v->types[id] = json_is_true(json_object_get(a, "special")) ? GGUF_TOKEN_CONTROL
                                                                    : GGUF_TOKEN_USER_DEFINED;
    }
    /* ids the tokenizer does not use: "[PAD<id>]", as the converter writes */
    size_t n_pad = 0;
    for (int i = 0; i < v->n_tokens; i++) n_pad += !v->types[i];
    if (n_pad) {
        v->pad_names = malloc(n_pad * 18);
        if (!v->pad_names) return err_set(err, "%s: out of memory", path);
        char *p = v->pad_names;
        for (int i = 0; i < v->n_tokens; i++) {
            if (v->types[i]) continue;
            int k = snprintf(p, 18, "[PAD%d]", i);
            v->tokens[i] = (GgufStr){p, (uint64_t)k};
            v->types[i] = GGUF_TOKEN_UNUSED;
            p += 18;
        }
    }
    return 0;
}

/* model.merges: "a b" strings, or [a, b] pairs joined with a space. */
static int read_merges(GgufVocab *v, const json_t *merges, const char *path, Err *err) {
    size_t n = json_array_size(merges), text = 0;
    v->merges = calloc(n ? n : 1, sizeof *v->merges);
    if (!v->merges) return err_set(err, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) {
        const json_t *m = json_array_get(merges, i);
        if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
            json_is_string(json_array_get(m, 1)))
            text += json_string_length(json_array_get(m, 0)) +
                    json_string_length(json_array_get(m, 1)) + 1;
        else if (!json_is_string(m))
            return err_set(err, "%s: model.merges[%zu] is neither \"a b\" nor [a, b]", path, i);
    }
    if (text && !(v->merge_text = malloc(text)))
        return err_set(err, "%s: out of memory", path);
    char *p = v->merge_text;
    for (size_t i = 0; i < n; i++) {
        const json_t *m = json_array_get(merges, i);
        if (json_is_string(m)) {
            v->merges[i] = (GgufStr){json_string_value(m), json_string_length(m)};
            continue;
        }
        const json_t *a = json_array_get(m, 0), *b = json_array_get(m, 1);
        size_t na = json_string_length(a), nb = json_string_length(b);
        if (memchr(json_string_value(a), ' ', na) || memchr(json_string_value(b), ' ', nb))
            return err_set(err, "%s: model.merges[%zu] has a symbol with a space, which GGUF's "
                           "\"a b\" merges cannot spell", path, i);
        memcpy(p, json_string_value(a), na);
        p[na] = ' ';
        memcpy(p + na + 1, json_string_value(b), nb);
        v->merges[i] = (GgufStr){p, na + 1 + nb};
        p += na + 1 + nb;
    }
    v->n_merges = (int)n;
    return 0;
}

int gguf_vocab_from_hf(GgufVocab *v, const char *dir, int n_vocab, GgufMeta *m, Err *err) {
    memset(v, 0, sizeof *v);
    char path[4096], cpath[4096];
    if (path_join(path, sizeof path, dir, "tokenizer.json") != 0 ||
        path_join(cpath, sizeof cpath, dir, "tokenizer_config.json") != 0)
        return err_set(err, "%s: path too long", dir);
    if (!file_exists(path)) {
        err_set(err, "%s has no tokenizer.json", dir);
        return 1;
    }
    if (!(v->tok = json_load_path(path, TOKJSON_MAX_BYTES, err))) return -1;
    if (file_exists(cpath) && !(v->cfg = json_load_path(cpath, TOKJSON_MAX_BYTES, err)))
        goto fail;
    const json_t *model = json_object_get(v->tok, "model");
    const char *type = json_string_value(json_object_get(model, "type"));
    if (!type || strcmp(type, "BPE") || !is_bytelevel(v->tok)) {
        err_set(err, "%s: not a byte-level BPE tokenizer (model type %s)", path,
                type ? type : "missing");
        gguf_vocab_free(v);
        return 1;
    }
    const json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
    const json_t *added = json_object_get(v->tok, "added_tokens");
    if (!json_is_object(vocab) || (merges && !json_is_array(merges) && !json_is_null(merges)) ||
        (added && !json_is_array(added) && !json_is_null(added))) {
        err_set(err, "%s: model.vocab must be an object, model.merges and added_tokens arrays",
                path);
        goto fail;
    }
    if (read_tokens(v, vocab, added, n_vocab, path, err) != 0 ||
        read_merges(v, merges, path, err) != 0)
        goto fail;
    snprintf(v->pre, sizeof v->pre, "%s", gguf_vocab_pre_name(json_object_get(v->tok, "pre_tokenizer")));

    int rc = gguf_meta_add(m, gguf_kv_str("tokenizer.ggml.model", "gpt2"), err);
    if (!rc) rc = gguf_meta_add(m, gguf_kv_str("tokenizer.ggml.pre", v->pre), err);
    if (!rc)
        rc = gguf_meta_add(m, gguf_kv_arr_str("tokenizer.ggml.tokens", (uint64_t)v->n_tokens,
                                              v->tokens), err);
    if (!rc)
        rc = gguf_meta_add(m, gguf_kv_arr("tokenizer.ggml.token_type", GGUF_TYPE_INT32,
                                          (uint64_t)v->n_tokens, v->types), err);
    if (!rc) /* llama.cpp requires the key, even with no merges */
        rc = gguf_meta_add(m, gguf_kv_arr_str("tokenizer.ggml.merges", (uint64_t)v->n_merges,
                                              v->merges), err);
    /* ids of the config's token names, where the model config did not say */
    static const struct {
        const char *cfg_key, *gguf_key;
    } ids[] = {{"bos_token", "tokenizer.ggml.bos_token_id"},
               {"eos_token", "tokenizer.ggml.eos_token_id"},
               {"pad_token", "tokenizer.ggml.padding_token_id"}};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0] && !rc; i++) {
        const char *name = cfg_token(v->cfg, ids[i].cfg_key);
        int id = name ? find_token(v, name) : -1;
        if (id >= 0 && !meta_has(m, ids[i].gguf_key))
            rc = gguf_meta_add(m, gguf_kv_u32(ids[i].gguf_key, (uint32_t)id), err);
    }
    const json_t *ab = json_object_get(v->cfg, "add_bos_token"),
                 *ae = json_object_get(v->cfg, "add_eos_token");
    if (!rc && json_is_boolean(ab))
        rc = gguf_meta_add(m, gguf_kv_bool("tokenizer.ggml.add_bos_token", json_is_true(ab)), err);
    if (!rc && json_is_boolean(ae))
        rc = gguf_meta_add(m, gguf_kv_bool("tokenizer.ggml.add_eos_token", json_is_true(ae)), err);
    const json_t *tmpl = json_object_get(v->cfg, "chat_template");
    if (!rc && json_is_string(tmpl)) {
        GgufKV kv = gguf_kv_str("tokenizer.chat_template", "");
        kv.v.str = (GgufStr){json_string_value(tmpl), json_string_length(tmpl)};
        rc = gguf_meta_add(m, kv, err);
    }
    if (rc) goto fail;
    return 0;
fail:
    gguf_vocab_free(v);
    return -1;
}

/* ---- GGUF -> tokenizer.json ---------------------------------------------------------- */

/* {"type": "Split", "pattern": {"Regex": re}, "behavior": "Isolated", "invert": false} */
static json_t *split(const char *re) {
    return json_pack("{s:s, s:{s:s}, s:s, s:b}", "type", "Split", "pattern", "Regex", re,
                     "behavior", "Isolated", "invert", 0);
}

static json_t *bytelevel(int add_prefix_space, int trim_offsets, int use_regex) {
    return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space",
                     add_prefix_space, "trim_offsets", trim_offsets, "use_regex", use_regex);
}

/* The Hugging Face pre_tokenizer of a llama.cpp pre name (see the header). */
static json_t *pre_tokenizer_of(const char *pre) {
    if (!strcmp(pre, "gpt-2")) return bytelevel(0, 1, 1);
    json_t *list = json_array();
    if (!strcmp(pre, "deepseek-v3")) {
        for (int i = 0; i < 3; i++) json_array_append_new(list, split(ds3_regex[i]));
        json_array_append_new(list, bytelevel(0, 1, 0));
    } else if (!strcmp(pre, "qwen2") || !strcmp(pre, "deepseek-r1-qwen")) {
        json_array_append_new(list, split(qwen2_regex));
        json_array_append_new(list, bytelevel(0, 0, 0));
    } else if (!strcmp(pre, "llama-bpe") || !strcmp(pre, "llama3") || !strcmp(pre, "llama-v3")) {
        json_array_append_new(list, split(llama3_regex));
        json_array_append_new(list, bytelevel(0, 1, 0));
    } else {
        if (strcmp(pre, "default"))
            log_warn("tokenizer.ggml.pre '%s' is not one whale rebuilds; writing llama.cpp's "
                     "default pre-tokenizer regexes", pre);
        for (int i = 0; i < 4; i++) json_array_append_new(list, split(default_regex[i]));
        json_array_append_new(list, bytelevel(0, 1, 0));
    }
    return json_pack("{s:s, s:o}", "type", "Sequence", "pretokenizers", list);
}

/* An optional integer-array key as int32 values into out (n of them). */
static int read_types(const GgufFile *g, int32_t *out, uint64_t n, Err *err) {
    const char *key = "tokenizer.ggml.token_type";
    for (uint64_t i = 0; i < n; i++) out[i] = GGUF_TOKEN_NORMAL;
    if (!gguf_find_kv(g, key)) return 0;
    const GgufValue *a;
    if (gguf_get_arr(g, key, GGUF_TYPE_COUNT, &a, err) != 0) return -1;
    if (a->arr_n != n)
        return err_set(err, "%s: %s has %llu entries for %llu tokens", g->path, key,
                       (unsigned long long)a->arr_n, (unsigned long long)n);
    for (uint64_t i = 0; i < n; i++) {
        GgufValue e;
        gguf_value_at(a, i, &e);
        if (gguf_value_i32(&e, key, &out[i], err) != 0) return -1;
    }
    return 0;
}

/* An optional u32 id key; -1 when absent. */
static int opt_id(const GgufFile *g, const char *key, uint64_t n_tokens, int *out, Err *err) {
    uint32_t u;
    *out = -1;
    if (!gguf_find_kv(g, key)) return 0;
    if (gguf_get_u32(g, key, &u, err) != 0) return -1;
    if (u >= n_tokens)
        return err_set(err, "%s: %s = %u is not a token id (%llu tokens)", g->path, key, u,
                       (unsigned long long)n_tokens);
    *out = (int)u;
    return 0;
}

static json_t *token_json(const GgufStr *tok, int id) {
    return id >= 0 ? json_stringn(tok[id].s, tok[id].n) : json_null();
}

static int write_json(const char *dir, const char *name, json_t *j, Err *err) {
    char path[4096];
    if (path_join(path, sizeof path, dir, name) != 0) return err_set(err, "%s: path too long", dir);
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!text) return err_set(err, "%s: cannot serialise", path);
    int rc = file_write_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}

int gguf_vocab_to_hf(const GgufFile *g, const char *dir, Err *err) {
    char model[32], pre[64] = "default";
    if (!gguf_find_kv(g, "tokenizer.ggml.model")) {
        err_set(err, "%s has no tokenizer metadata", g->path);
        return 1;
    }
    if (gguf_get_str(g, "tokenizer.ggml.model", model, sizeof model, err) != 0) return -1;
    if (strcmp(model, "gpt2")) {
        err_set(err, "%s: tokenizer.ggml.model '%s' is not a byte-level BPE ('gpt2')", g->path,
                model);
        return 1;
    }
    if (gguf_find_kv(g, "tokenizer.ggml.pre") &&
        gguf_get_str(g, "tokenizer.ggml.pre", pre, sizeof pre, err) != 0)
        return -1;
    const GgufValue *toks, *merges = NULL;
    if (gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &toks, err) != 0) return -1;
    if (gguf_find_kv(g, "tokenizer.ggml.merges") &&
        gguf_get_arr(g, "tokenizer.ggml.merges", GGUF_TYPE_STRING, &merges, err) != 0)
        return -1;
    const uint64_t n = toks->arr_n;
    if (n == 0 || n > VOCAB_MAX_IDS)
        return err_set(err, "%s: tokenizer.ggml.tokens has %llu tokens", g->path,
                       (unsigned long long)n);
    int bos, eos, pad, rc = -1;
    if (opt_id(g, "tokenizer.ggml.bos_token_id", n, &bos, err) != 0 ||
        opt_id(g, "tokenizer.ggml.eos_token_id", n, &eos, err) != 0 ||
        opt_id(g, "tokenizer.ggml.padding_token_id", n, &pad, err) != 0)
        return -1;
    int32_t *types = malloc(n * sizeof *types);
    json_t *root = NULL, *cfg = NULL;
    if (!types) return err_set(err, "%s: out of memory", g->path);
    if (read_types(g, types, n, err) != 0) goto done;

    json_t *vocab = json_object(), *added = json_array(), *jm = json_array();
    root = json_pack("{s:s, s:n, s:n, s:o}", "version", "1.0", "truncation", "padding",
                     "added_tokens", added);
    for (uint64_t i = 0; i < n; i++) {
        const GgufStr *t = &toks->arr_str[i];
        if (types[i] == GGUF_TOKEN_UNUSED) continue;
        json_t *id = json_integer((json_int_t)i);
        if (json_object_setn_new(vocab, t->s, t->n, id) != 0) {
            err_set(err, "%s: token %llu is not valid UTF-8", g->path, (unsigned long long)i);
            goto done_partial;
        }
        if (types[i] == GGUF_TOKEN_CONTROL || types[i] == GGUF_TOKEN_USER_DEFINED) {
            json_t *s = json_stringn(t->s, t->n);
            int special = types[i] == GGUF_TOKEN_CONTROL;
            /* HF's default: added tokens that are not special match normalised text */
            json_array_append_new(added, json_pack("{s:I, s:o, s:b, s:b, s:b, s:b, s:b}", "id",
                                                   (json_int_t)i, "content", s, "single_word", 0,
                                                   "lstrip", 0, "rstrip", 0, "normalized",
                                                   !special, "special", special));
        }
    }
    for (uint64_t i = 0; merges && i < merges->arr_n; i++) {
        json_t *s = json_stringn(merges->arr_str[i].s, merges->arr_str[i].n);
        if (!s) {
            err_set(err, "%s: merge %llu is not valid UTF-8", g->path, (unsigned long long)i);
            goto done_partial;
        }
        json_array_append_new(jm, s);
    }
    int is_qwen = !strcmp(pre, "qwen2") || !strcmp(pre, "deepseek-r1-qwen");
    int is_llama3 = !strcmp(pre, "llama-bpe") || !strcmp(pre, "llama3") || !strcmp(pre, "llama-v3");
    json_object_set_new(root, "normalizer", is_qwen ? json_pack("{s:s}", "type", "NFC") : json_null());
    json_object_set_new(root, "pre_tokenizer", pre_tokenizer_of(pre));
    json_object_set_new(root, "post_processor", bytelevel(1, 0, 1));
    json_object_set_new(root, "decoder", bytelevel(1, 1, 1));
    json_object_set_new(root, "model",
                        json_pack("{s:s, s:n, s:n, s:n, s:n, s:b, s:b, s:b, s:o, s:o}", "type",
                                  "BPE", "dropout", "unk_token", "continuing_subword_prefix",
                                  "end_of_word_suffix", "fuse_unk", 0, "byte_fallback", 0,
                                  "ignore_merges", is_llama3, "vocab", vocab, "merges", jm));
    vocab = jm = NULL;

    cfg = json_object();
    int flag;
    static const char *const flags[2][2] = {{"tokenizer.ggml.add_bos_token", "add_bos_token"},
                                            {"tokenizer.ggml.add_eos_token", "add_eos_token"}};
    for (int k = 0; k < 2; k++) {
        if (!gguf_find_kv(g, flags[k][0])) continue;
        if (gguf_get_bool(g, flags[k][0], &flag, err) != 0) goto done;
        json_object_set_new(cfg, flags[k][1], json_boolean(flag));
    }
    if (bos >= 0) json_object_set_new(cfg, "bos_token", token_json(toks->arr_str, bos));
    if (eos >= 0) json_object_set_new(cfg, "eos_token", token_json(toks->arr_str, eos));
    if (pad >= 0) json_object_set_new(cfg, "pad_token", token_json(toks->arr_str, pad));
    const GgufKV *tk = gguf_find_kv(g, "tokenizer.chat_template");
    if (tk) {
        json_t *s = tk->v.type == GGUF_TYPE_STRING ? json_stringn(tk->v.str.s, tk->v.str.n) : NULL;
        if (!s) {
            err_set(err, "%s: tokenizer.chat_template is not a UTF-8 string", g->path);
            goto done;
        }
        json_object_set_new(cfg, "chat_template", s);
    }
    json_object_set_new(cfg, "tokenizer_class", json_string("PreTrainedTokenizerFast"));
    if (write_json(dir, "tokenizer.json", root, err) != 0 ||
        write_json(dir, "tokenizer_config.json", cfg, err) != 0)
        goto done;
    rc = 0;
    goto done;
done_partial:
    json_decref(vocab);
    json_decref(jm);
done:
    free(types);
    json_decref(root);
    json_decref(cfg);
    return rc;
}
