/* SPDX-License-Identifier: MIT */
/* whale logits: the logits of a token sequence as little-endian float32,
 * (n_ids, vocab_size) row-major. The full-sequence path runs one prefill;
 * --decode feeds one token at a time through the KV cache (the absorbed MLA
 * path). Needs no tokenizer. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/log.h"
#include "base/threads.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "model/model.h"

/* "1,2,3" -> ids. Returns the count, or -1 with err. Caller frees *out. */
static int parse_ids(const char *s, int **out, Err *err) {
    int n = 1;
    for (const char *p = s; *p; p++) n += *p == ',';
    int *ids = malloc((size_t)n * sizeof *ids);
    if (!ids) return err_set(err, "out of memory");
    const char *p = s;
    for (int i = 0; i < n; i++) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT_MAX || (*end != ',' && *end != 0)) {
            free(ids);
            return err_set(err, "--ids: item %d is not a non-negative integer", i + 1);
        }
        ids[i] = (int)v;
        p = end + 1;
    }
    *out = ids;
    return n;
}

int cmd_logits(int argc, char **argv) {
    const char *model = NULL, *ids_s = NULL, *out = NULL, *mtp_out = NULL, *kv_type = "f32";
    const char *quant = NULL;
    int decode = 0, threads = 0, seed = 0;
    ArgSpec specs[] = {
        {"model", 'm', ARG_STR, &model, "PATH: model directory or .safetensors file"},
        {"ids", 0, ARG_STR, &ids_s, "LIST: comma-separated token ids"},
        {"out", 'o', ARG_STR, &out, "FILE: float32 logits, n_ids x vocab_size"},
        {"decode", 0, ARG_FLAG, &decode, "one token at a time through the KV cache"},
        {"mtp-out", 0, ARG_STR, &mtp_out,
         "FILE: also write MTP module 1's logits, (n_ids-1) x vocab_size"},
        {"kv-type", 0, ARG_STR, &kv_type, "f32|bf16: KV cache storage (default f32)"},
        {"quant", 'q', ARG_STR, &quant,
         "f32|bf16|f16|q8_0|q4_0|q4_k|q6_k: store the matrices so at load (default: the file's types; F32 for safetensors)"},
        {"threads", 't', ARG_INT, &threads, "N: threads (default: all cores)"},
        {"seed", 0, ARG_INT, &seed, "N: unused (the forward pass is deterministic)"},
    };
    int r = args_parse("logits", "-m PATH --ids 1,2,3 --out FILE [--decode]", specs,
                       (int)(sizeof specs / sizeof specs[0]), argc, argv);
    if (r) return r > 0 ? 0 : 2;
    if (!model || !ids_s || !out)
        return cli_fail("logits", "-m PATH, --ids LIST and --out FILE are required"), 2;
    DType kt;
    if (!strcmp(kv_type, "f32")) kt = DTYPE_F32;
    else if (!strcmp(kv_type, "bf16")) kt = DTYPE_BF16;
    else return cli_fail("logits", "--kv-type must be f32 or bf16, not '%s'", kv_type), 2;
    QType qt = QTYPE_F32;
    if (quant && qtype_parse(quant, &qt) != 0)
        return cli_fail("logits", "--quant must be f32, bf16, f16, q8_0, q4_0, q4_k or q6_k, not '%s'",
                        quant),
               2;
    if (cli_threads("logits", threads) != 0) return 2;

    Err err = {0};
    int *ids = NULL;
    int n = parse_ids(ids_s, &ids, &err);
    if (n < 0) return cli_fail("logits", "%s", err.msg), 2;

    Model m;
    KVCache kv = {0};
    float *logits = NULL, *hidden = NULL, *mtp = NULL;
    int rc = 1;
    double t0 = time_now();
    if ((quant ? model_open_as(&m, model, qt, &err) : model_open(&m, model, &err)) != 0) {
        free(ids);
        return cli_fail("logits", "%s", err.msg);
    }
    weights_prepare_inference(&m.w, &m.cfg); /* as chat and serve compute */
    const int V = m.cfg.vocab_size, D = m.cfg.hidden_size;
    if (mtp_out && m.cfg.num_nextn_predict_layers < 1) {
        err_set(&err, "%s: the model has no MTP module for --mtp-out", model);
        goto done;
    }
    if (mtp_out && n < 2) {
        err_set(&err, "--mtp-out needs at least 2 ids");
        goto done;
    }
    logits = malloc((size_t)n * V * sizeof(float));
    hidden = mtp_out ? malloc((size_t)n * D * sizeof(float)) : NULL;
    if (!logits || (mtp_out && !hidden)) {
        err_set(&err, "out of memory for %d x %d logits", n, V);
        goto done;
    }
    if (kvcache_init(&kv, &m.cfg, n, kt, mtp_out != NULL, &err) != 0) goto done;
    double t1 = time_now();
    if (decode) {
        for (int i = 0; i < n; i++) {
            ForwardOpts o = {.logits = logits + (size_t)i * V,
                             .hidden = hidden ? hidden + (size_t)i * D : NULL};
            if (model_forward(&m, &kv, ids + i, 1, &o, &err) != 0) goto done;
        }
    } else {
        ForwardOpts o = {.logits = logits, .all_logits = 1, .hidden = hidden};
        if (model_forward(&m, &kv, ids, n, &o, &err) != 0) goto done;
    }
    double t2 = time_now();
    if (file_write_atomic(out, logits, (size_t)n * V * sizeof(float), &err) != 0) goto done;
    if (mtp_out) {
        mtp = malloc((size_t)(n - 1) * V * sizeof(float));
        if (!mtp) {
            err_set(&err, "out of memory");
            goto done;
        }
        if (model_forward_mtp(&m, 0, &kv, 0, hidden, ids + 1, n - 1, mtp, NULL, &err) != 0 ||
            file_write_atomic(mtp_out, mtp, (size_t)(n - 1) * V * sizeof(float), &err) != 0)
            goto done;
    }
    log_info("whale logits: %d tokens, %s path, load %.2fs, forward %.3fs (%.1f tok/s)", n,
             decode ? "decode" : "prefill", t1 - t0, t2 - t1, n / (t2 - t1 + 1e-9));
    rc = 0;
done:
    if (rc) cli_fail("logits", "%s", err.msg);
    free(ids);
    free(logits);
    free(hidden);
    free(mtp);
    kvcache_free(&kv);
    model_free(&m);
    return rc;
}
