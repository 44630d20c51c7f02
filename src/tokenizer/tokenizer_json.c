/* SPDX-License-Identifier: MIT */
/* tokenizer.json writer for byte-level BPE (see tokenizer_json.h). The
 * byte alphabet is GPT-2's: printable Latin-1 bytes map to themselves, the
 * other 68 bytes to U+0100 onwards, so every byte is one visible symbol. */
#include "tokenizer/tokenizer_json.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/json.h"
#include "tokenizer/pretokenize.h"

static const struct {
    const char *content;
    int special;
} chat_markers[] = {
    {TOK_USER, 1},
    {TOK_ASSISTANT, 1},
    {"<think>", 0}, /* R1 writes these as ordinary text-like added tokens */
    {"</think>", 0},
    {"<answer>", 0}, /* R1-Zero's answer block (rl/template.h): one id each, like the thinking tags */
    {"</answer>", 0},
};
#define N_MARKERS ((int)(sizeof chat_markers / sizeof chat_markers[0]))

int tokjson_bytelevel_size(int n_merges) { return TOKJSON_BYTE0_ID + 256 + N_MARKERS + n_merges; }

void tokjson_byte_symbol(unsigned char b, char out[5]) {
    unsigned cp;
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) {
        cp = b;
    } else { /* the n-th unprintable byte maps to U+0100 + n */
        unsigned n = 0;
        for (unsigned x = 0; x < b; x++)
            if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174)) n++;
        cp = 256 + n;
    }
    if (cp < 0x80) {
        out[0] = (char)cp, out[1] = 0;
    } else {
        out[0] = (char)(0xc0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3f)), out[2] = 0;
    }
}

const char *tokjson_added_token(int i, int *id) {
    static const char *const spec[3] = {TOK_BOS, TOK_EOS, TOK_PAD};
    if (i < 0 || i >= 3 + N_MARKERS) return NULL;
    if (id) *id = i < 3 ? i : TOKJSON_BYTE0_ID + 256 + (i - 3);
    return i < 3 ? spec[i] : chat_markers[i - 3].content;
}

/* The pre_tokenizer (and decoder) value of the written file. */
static json_t *bytelevel_json(void) {
    return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0,
                     "trim_offsets", 1, "use_regex", 1);
}

int tokjson_bytelevel_pretok(PreTok *pt, Err *err) {
    json_t *j = bytelevel_json();
    if (!j) return err_set(err, "out of memory");
    int rc = pt_from_json(pt, j, "byte-level tokenizer", err);
    json_decref(j);
    return rc;
}

static json_t *added_token(int id, const char *content, int special) {
    return json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", id, "content", content,
                     "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0, "special",
                     special);
}

static int write_json(const char *dir, const char *name, json_t *j, Err *err) {
    char path[4096];
    if (path_join(path, sizeof path, dir, name) != 0) return err_set(err, "%s: path too long", dir);
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!text) return err_set(err, "%s: out of memory", path);
    int rc = file_write_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}

int tokjson_write_bytelevel(const char *dir, const char *const (*merges)[2], int n_merges,
                            Err *err) {
    json_t *root = json_object(), *vocab = json_object(), *mlist = json_array();
    json_t *added = json_array();
    const char *spec[3] = {TOK_BOS, TOK_EOS, TOK_PAD};
    for (int i = 0; i < 3; i++) {
        json_object_set_new(vocab, spec[i], json_integer(i));
        json_array_append_new(added, added_token(i, spec[i], 1));
    }
    for (int b = 0; b < 256; b++) {
        char sym[5];
        tokjson_byte_symbol((unsigned char)b, sym);
        json_object_set_new(vocab, sym, json_integer(TOKJSON_BYTE0_ID + b));
    }
    int id = TOKJSON_BYTE0_ID + 256;
    for (int i = 0; i < N_MARKERS; i++, id++) {
        json_object_set_new(vocab, chat_markers[i].content, json_integer(id));
        json_array_append_new(added, added_token(id, chat_markers[i].content,
                                                 chat_markers[i].special));
    }
    for (int i = 0; i < n_merges; i++) {
        size_t la = strlen(merges[i][0]), lb = strlen(merges[i][1]);
        char *m = malloc(la + lb + 1);
        if (!m) {
            json_decref(root), json_decref(vocab), json_decref(mlist), json_decref(added);
            return err_set(err, "%s: out of memory", dir);
        }
        memcpy(m, merges[i][0], la);
        memcpy(m + la, merges[i][1], lb + 1);
        if (!json_object_get(vocab, m)) json_object_set_new(vocab, m, json_integer(id++));
        free(m);
        json_array_append_new(mlist, json_pack("[s,s]", merges[i][0], merges[i][1]));
    }
    json_object_set_new(root, "version", json_string("1.0"));
    json_object_set_new(root, "truncation", json_null());
    json_object_set_new(root, "padding", json_null());
    json_object_set_new(root, "added_tokens", added);
    json_object_set_new(root, "normalizer", json_null());
    json_object_set_new(root, "pre_tokenizer", bytelevel_json());
    json_object_set_new(root, "post_processor", json_null());
    json_object_set_new(root, "decoder", bytelevel_json());
    json_t *model = json_pack("{s:s, s:n, s:n, s:n, s:n, s:b, s:b, s:b}", "type", "BPE",
                              "dropout", "unk_token", "continuing_subword_prefix",
                              "end_of_word_suffix", "fuse_unk", 0, "byte_fallback", 0,
                              "ignore_merges", 0);
    json_object_set_new(model, "vocab", vocab);
    json_object_set_new(model, "merges", mlist);
    json_object_set_new(root, "model", model);
    int rc = write_json(dir, "tokenizer.json", root, err);
    json_decref(root);
    if (rc != 0) return -1;

    json_t *cfg = json_pack("{s:b, s:b, s:s, s:s, s:s, s:s, s:b}", "add_bos_token", 1,
                            "add_eos_token", 0, "bos_token", TOK_BOS, "eos_token", TOK_EOS,
                            "pad_token", TOK_PAD, "tokenizer_class", "LlamaTokenizerFast",
                            "legacy", 1);
    rc = write_json(dir, "tokenizer_config.json", cfg, err);
    json_decref(cfg);
    return rc;
}

int tokjson_max_id(const char *path, int *max_id, Err *err) {
    json_t *j = json_load_path(path, (size_t)1 << 30, err);
    if (!j) return -1;
    int mx = -1;
    json_t *model = json_object_get(j, "model");
    json_t *vocab = json_is_object(model) ? json_object_get(model, "vocab") : NULL;
    if (!json_is_object(vocab)) {
        json_decref(j);
        return err_set(err, "%s: field 'model.vocab' must be an object", path);
    }
    const char *key;
    json_t *v;
    json_object_foreach(vocab, key, v) {
        if (!json_is_integer(v)) {
            json_decref(j);
            return err_set(err, "%s: vocab entry '%s' is not an integer id", path, key);
        }
        if (json_integer_value(v) > mx) mx = (int)json_integer_value(v);
    }
    size_t i;
    json_array_foreach(json_object_get(j, "added_tokens"), i, v) {
        json_t *id = json_object_get(v, "id");
        if (json_is_integer(id) && json_integer_value(id) > mx) mx = (int)json_integer_value(id);
    }
    json_decref(j);
    *max_id = mx;
    return 0;
}
