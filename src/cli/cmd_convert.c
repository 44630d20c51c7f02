/* SPDX-License-Identifier: MIT */
/* whale convert: a Hugging Face model directory to one GGUF file (the
 * metadata llama.cpp reads, the tokenizer, every tensor through the
 * converter's transforms, quantised to --type), or a GGUF file back to a
 * Hugging Face directory (config.json, model.safetensors in F32 or BF16,
 * tokenizer.json rebuilt from the GGUF tokenizer). Both writes are atomic. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/log.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "model/gguf_load.h"
#include "model/gguf_vocab.h"
#include "model/model.h"

/* Move the last key of m to position pos (llama.cpp's files open with
 * general.architecture, general.type, general.name). */
static int meta_insert(GgufMeta *m, int pos, GgufKV kv, Err *err) {
    if (gguf_meta_add(m, kv, err) != 0) return -1;
    GgufKV last = m->kvs[m->n_kv - 1];
    memmove(&m->kvs[pos + 1], &m->kvs[pos], (size_t)(m->n_kv - 1 - pos) * sizeof last);
    m->kvs[pos] = last;
    return 0;
}

/* general.name: the directory's last component. */
static void model_name(const char *dir, char *name, size_t n) {
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && dir[start - 1] != '/') start--;
    snprintf(name, n, "%.*s", (int)(len - start), dir + start);
}

static int to_gguf(const char *path, const char *out, QType q, Err *err) {
    char dir[4096], name[256];
    path_dir_of(path, dir, sizeof dir);
    model_name(dir, name, sizeof name);
    Model m;
    GgufMeta meta = {0};
    GgufVocab voc = {0};
    GgufTensorSet set = {0};
    int rc = -1;
    double t0 = time_now();
    if (model_open(&m, path, err) != 0) return -1;
    if (gguf_meta_from_config(&m.cfg, &meta, err) != 0 ||
        meta_insert(&meta, 1, gguf_kv_str("general.type", "model"), err) != 0 ||
        meta_insert(&meta, 2, gguf_kv_str("general.name", name), err) != 0 ||
        gguf_meta_add(&meta, gguf_kv_u32("general.file_type", gguf_file_type_of(q)), err) != 0 ||
        gguf_meta_add(&meta, gguf_kv_u32("general.quantization_version", 2), err) != 0)
        goto done;
    Err why = {{0}};
    int vr = gguf_vocab_from_hf(&voc, dir, m.cfg.vocab_size, &meta, &why);
    if (vr < 0) {
        *err = why;
        goto done;
    }
    if (vr == 1) log_warn("whale convert: %s; the GGUF holds no tokenizer", why.msg);
    if (vr == 0 && voc.n_tokens > m.cfg.vocab_size) {
        err_set(err, "%s/tokenizer.json has %d tokens but the model's vocab_size is %d", dir,
                voc.n_tokens, m.cfg.vocab_size);
        goto done;
    }
    if (gguf_tensors_from_weights(&set, &m.w, &m.cfg, q, err) != 0) goto done;
    if (gguf_write(out, meta.kvs, meta.n_kv, set.t, set.n, 0, err) != 0) goto done;
    log_info("whale convert: %s -> %s (%s, %d tensors, %d keys%s) in %.1fs", path, out,
             qtype_name(q), set.n, meta.n_kv, vr == 0 ? ", tokenizer" : "", time_now() - t0);
    rc = 0;
done:
    gguf_tensors_free(&set);
    gguf_vocab_free(&voc);
    gguf_meta_free(&meta);
    model_free(&m);
    return rc;
}

static int to_hf(const char *path, const char *out, DType dt, Err *err) {
    char file[4096];
    Model m;
    GgufFile g = {0};
    int rc = -1;
    double t0 = time_now();
    if (model_open_as(&m, path, QTYPE_F32, err) != 0) return -1;
    if (dir_create(out, err) != 0) goto done;
    ModelConfig c = m.cfg;
    snprintf(c.torch_dtype, sizeof c.torch_dtype, "%s", dt == DTYPE_BF16 ? "bfloat16" : "float32");
    if (path_join(file, sizeof file, out, "config.json") != 0) {
        err_set(err, "%s: path too long", out);
        goto done;
    }
    if (config_save(&c, file, err) != 0) goto done;
    snprintf(file, sizeof file, "%s/model.safetensors", out);
    if (weights_save(&m.w, file, dt, err) != 0) goto done;
    if (gguf_open(&g, path, err) != 0) goto done;
    Err why = {{0}};
    int vr = gguf_vocab_to_hf(&g, out, &why);
    if (vr < 0) {
        *err = why;
        goto done;
    }
    if (vr == 1) log_warn("whale convert: %s; no tokenizer.json written", why.msg);
    log_info("whale convert: %s -> %s (%s%s) in %.1fs", path, out, dtype_name(dt),
             vr == 0 ? ", tokenizer" : "", time_now() - t0);
    rc = 0;
done:
    gguf_close(&g);
    model_free(&m);
    return rc;
}

int cmd_convert(int argc, char **argv) {
    const char *model = NULL, *out = NULL, *type = NULL;
    int threads = 0, seed = 0;
    ArgSpec specs[] = {
        {"model", 'm', ARG_STR, &model, "PATH: model directory (to GGUF) or .gguf file (to HF)"},
        {"out", 'o', ARG_STR, &out, "FILE: the .gguf to write, or the directory for an HF model"},
        {"type", 0, ARG_STR, &type,
         "T: to GGUF f32|f16|bf16|q8_0|q4_0|q4_k (Q4_K_M's mix)|q6_k (default f32); to HF f32|bf16 (default f32)"},
        {"threads", 't', ARG_INT, &threads, "N: threads (default: all cores)"},
        {"seed", 0, ARG_INT, &seed, "N: unused (conversion is deterministic)"},
    };
    int r = args_parse("convert", "-m PATH --out FILE [--type q8_0|q4_0|q4_k|q6_k|f16|bf16|f32]",
                       specs, (int)(sizeof specs / sizeof specs[0]), argc, argv);
    if (r) return r > 0 ? 0 : 2;
    if (!model || !out) return cli_fail("convert", "-m PATH and --out FILE are required"), 2;
    if (cli_threads("convert", threads) != 0) return 2;
    Err err = {{0}};
    if (path_has_suffix(model, ".gguf")) {
        DType dt = DTYPE_F32;
        if (type && !strcmp(type, "bf16")) dt = DTYPE_BF16;
        else if (type && strcmp(type, "f32"))
            return cli_fail("convert", "--type for a GGUF -> HF conversion is f32 or bf16, not '%s'",
                            type), 2;
        if (to_hf(model, out, dt, &err) != 0) return cli_fail("convert", "%s", err.msg);
        return 0;
    }
    QType q = QTYPE_F32;
    if (type && qtype_parse(type, &q) != 0)
        return cli_fail("convert", "--type must be f32, f16, bf16, q8_0, q4_0, q4_k or q6_k, not '%s'",
                        type), 2;
    if (!path_has_suffix(out, ".gguf"))
        return cli_fail("convert", "--out must name a .gguf file (how whale and llama.cpp know the "
                        "format), not '%s'", out), 2;
    if (to_gguf(model, out, q, &err) != 0) return cli_fail("convert", "%s", err.msg);
    return 0;
}
