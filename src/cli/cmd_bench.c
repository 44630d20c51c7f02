/* SPDX-License-Identifier: MIT */
/* whale bench: prompt-processing and decode speed. It feeds token ids
 * (seeded random), so it needs no tokenizer. Each repetition prefills -p
 * tokens into an empty cache and then decodes -n tokens one at a time;
 * the median over repetitions is reported. The timer covers forward calls
 * only. With --batch B the decode runs B sequences at once, one row each
 * per step (model_forward_seqs, as whale serve's continuous batching
 * does), each sequence behind its own copy of the prompt: the aggregate
 * tok/s of the batch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/rng.h"
#include "base/threads.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "kernels/dot.h"
#include "model/model.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Decode n_gen steps of B sequences whose caches each hold a copy of
 * kv's prompt rows; returns the aggregate tok/s, or -1 with err. */
static double batch_decode(Model *m, const KVCache *kv, int B, const int *ids, int n_gen,
                           Err *err) {
    KVCache *kvs = calloc((size_t)B, sizeof *kvs);
    KVCache **ptr = malloc(sizeof *ptr * (size_t)B);
    int *start = malloc(sizeof(int) * ((size_t)B + 1)), *tok = malloc(sizeof(int) * (size_t)B);
    double rate = -1;
    int made = 0;
    if (!kvs || !ptr || !start || !tok) {
        err_set(err, "out of memory");
        goto done;
    }
    for (; made < B; made++) {
        if (kvcache_init(&kvs[made], &m->cfg, kv->n_ctx, DTYPE_F32, 0, err) != 0) goto done;
        for (int l = 0; l < kv->n_layers; l++) /* F32 caches: rows are read in place */
            kvcache_store(&kvs[made], l, 0, kv->len, kvcache_rows(kv, l, 0, kv->len, NULL));
        kvs[made].len = kv->len;
        ptr[made] = &kvs[made];
    }
    for (int b = 0; b <= B; b++) start[b] = b;
    const double t0 = time_now();
    for (int i = 0; i < n_gen; i++) {
        for (int b = 0; b < B; b++) tok[b] = ids[(i + b) % n_gen];
        if (model_forward_seqs(m, ptr, B, start, tok, NULL, err) != 0) goto done;
    }
    rate = (double)B * n_gen / (time_now() - t0);
done:
    for (int b = 0; b < made; b++) kvcache_free(&kvs[b]);
    free(kvs), free(ptr), free(start), free(tok);
    return rate;
}

int cmd_bench(int argc, char **argv) {
    const char *model = NULL, *quant = NULL;
    int n_prompt = 128, n_gen = 64, reps = 3, json = 0, threads = 0, seed = 0, batch = 1;
    ArgSpec specs[] = {
        {"model", 'm', ARG_STR, &model, "PATH: model directory"},
        {"prompt", 'p', ARG_INT, &n_prompt, "N: prompt tokens (default 128)"},
        {"gen", 'n', ARG_INT, &n_gen, "N: decoded tokens (default 64)"},
        {"reps", 'r', ARG_INT, &reps, "N: repetitions, median reported (default 3)"},
        {"quant", 'q', ARG_STR, &quant,
         "f32|bf16|f16|q8_0|q4_0|q4_k|q6_k: weight storage (default: the file's types)"},
        {"json", 0, ARG_FLAG, &json, "print {\"pp_tok_s\":..,\"tg_tok_s\":..}"},
        {"threads", 't', ARG_INT, &threads, "N: threads (default: all cores)"},
        {"seed", 0, ARG_INT, &seed, "N: seed of the random token ids"},
        {"batch", 'b', ARG_INT, &batch, "B: decode B sequences at once (aggregate tok/s; default 1)"},
    };
    int r = args_parse("bench", "-m PATH [-p 128] [-n 64] [--json]", specs,
                       (int)(sizeof specs / sizeof specs[0]), argc, argv);
    if (r) return r > 0 ? 0 : 2;
    if (!model) return cli_fail("bench", "-m PATH is required"), 2;
    if (n_prompt < 1 || n_gen < 0 || reps < 1 || reps > 100 || n_prompt > 1000000 ||
        n_gen > 1000000 || batch < 1 || batch > 256)
        return cli_fail("bench", "-p must be >= 1, -n >= 0, --reps in 1..100, --batch in 1..256"), 2;
    QType qt = QTYPE_F32;
    if (quant && qtype_parse(quant, &qt) != 0)
        return cli_fail("bench", "--quant must be f32, bf16, f16, q8_0, q4_0, q4_k or q6_k, not '%s'",
                        quant),
               2;
    if (cli_threads("bench", threads) != 0) return 2;

    Err err = {0};
    Model m;
    if ((quant ? model_open_as(&m, model, qt, &err) : model_open(&m, model, &err)) != 0)
        return cli_fail("bench", "%s", err.msg);
    weights_prepare_inference(&m.w, &m.cfg); /* as chat and serve run it */
    if (!quant) quant = "native";
    KVCache kv;
    int rc = 1, total = n_prompt + n_gen;
    int *ids = malloc(sizeof(int) * (size_t)total);
    double *pp = malloc(sizeof(double) * (size_t)reps), *tg = malloc(sizeof(double) * (size_t)reps);
    float *logits = malloc(sizeof(float) * (size_t)m.cfg.vocab_size);
    if (kvcache_init(&kv, &m.cfg, total, DTYPE_F32, 0, &err) != 0) goto done;
    if (!ids || !pp || !tg || !logits) {
        err_set(&err, "out of memory");
        goto done;
    }
    Rng rng;
    rng_seed(&rng, (uint64_t)seed);
    for (int i = 0; i < total; i++) ids[i] = (int)rng_below(&rng, (uint64_t)m.cfg.vocab_size);
    ForwardOpts o = {.logits = logits};
    /* warm-up: page in the weights, size the scratch arena */
    if (model_forward(&m, &kv, ids, n_prompt < 16 ? n_prompt : 16, &o, &err) != 0) goto done;
    for (int k = 0; k < reps; k++) {
        kv.len = 0;
        double t0 = time_now();
        if (model_forward(&m, &kv, ids, n_prompt, &o, &err) != 0) goto done;
        double t1 = time_now();
        pp[k] = n_prompt / (t1 - t0);
        if (batch > 1 && n_gen > 0) {
            if ((tg[k] = batch_decode(&m, &kv, batch, ids + n_prompt, n_gen, &err)) < 0) goto done;
            continue;
        }
        for (int i = 0; i < n_gen; i++)
            if (model_forward(&m, &kv, ids + n_prompt + i, 1, &o, &err) != 0) goto done;
        double t2 = time_now();
        tg[k] = n_gen ? n_gen / (t2 - t1) : 0;
    }
    qsort(pp, (size_t)reps, sizeof *pp, cmp_double);
    qsort(tg, (size_t)reps, sizeof *tg, cmp_double);
    double bpt = weights_decode_bytes(&m.w, &m.cfg);
    if (json) {
        printf("{\"pp_tok_s\": %.2f, \"tg_tok_s\": %.2f, \"n_prompt\": %d, \"n_gen\": %d, "
               "\"quant\": \"%s\", \"threads\": %d, \"reps\": %d, \"batch\": %d, "
               "\"decode_bytes_per_token\": %.0f, \"simd\": \"%s\"}\n",
               pp[reps / 2], tg[reps / 2], n_prompt, n_gen, quant, threads_max(), reps, batch, bpt,
               dot_best()->name);
    } else {
        printf("%s (%s, %d threads, %s): pp%d %.1f tok/s, tg%d %.1f tok/s%s (median of %d); "
               "decode reads %.1f MB/token = %.1f GB/s\n",
               model, quant, threads_max(), dot_best()->name, n_prompt, pp[reps / 2], n_gen,
               tg[reps / 2], batch > 1 ? " over the batch" : "", reps, bpt / 1e6,
               bpt * tg[reps / 2] / 1e9 / batch);
        if (batch > 1) printf("batch %d: %.2f ms per step\n", batch, 1e3 * batch / tg[reps / 2]);
    }
    rc = 0;
done:
    if (rc) cli_fail("bench", "%s", err.msg);
    free(ids);
    free(pp);
    free(tg);
    free(logits);
    kvcache_free(&kv);
    model_free(&m);
    return rc;
}
