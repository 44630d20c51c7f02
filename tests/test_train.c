/* SPDX-License-Identifier: MIT */
/* The training step against the PyTorch reference (tools/train_reference.py,
 * vectors in tests/data/train_*): the loss and its parts, the gradient of
 * every parameter, and three optimiser steps (schedule, clipping, AdamW,
 * tied MTP heads, the balancing bias rule). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "io/safetensors.h"
#include "model/model_train.h"
#include "train/balance.h"
#include "train/model_backward.h"
#include "train/optim.h"

typedef struct Case {
    Model m;
    int32_t *tokens;
    int B, T;
    LossOpts lo;
    OptimOpts oo;
    float gamma;
    int steps;
    json_t *expected;
} Case;

static void case_load(Case *c, const char *name) {
    Err err;
    memset(c, 0, sizeof *c);
    const char *dir = h_data(name);
    cr_assert(model_open(&c->m, dir, &err) == 0, "%s", err.msg);
    json_error_t je;
    json_t *cj = json_load_file(h_path(dir, "case.json"), 0, &je);
    c->expected = json_load_file(h_path(dir, "expected.json"), 0, &je);
    cr_assert(cj && c->expected, "%s: %s", name, je.text);
    json_t *tok = json_object_get(cj, "tokens");
    c->B = (int)json_array_size(tok);
    c->T = (int)json_array_size(json_array_get(tok, 0)) - 1;
    c->tokens = malloc(sizeof(int32_t) * c->B * (c->T + 1));
    for (int b = 0; b < c->B; b++)
        for (int t = 0; t <= c->T; t++)
            c->tokens[b * (c->T + 1) + t] =
                (int32_t)json_integer_value(json_array_get(json_array_get(tok, b), t));
    c->lo.mtp_lambda = (float)json_number_value(json_object_get(cj, "mtp_lambda"));
    c->lo.balance_alpha = (float)json_number_value(json_object_get(cj, "balance_alpha"));
    c->gamma = (float)json_number_value(json_object_get(cj, "bias_gamma"));
    c->steps = (int)json_integer_value(json_object_get(cj, "steps"));
    json_t *a = json_object_get(cj, "adamw");
#define NUM(k) json_number_value(json_object_get(a, k))
    c->oo = (OptimOpts){.lr = (float)NUM("lr"), .beta1 = (float)NUM("beta1"),
                        .beta2 = (float)NUM("beta2"), .eps = (float)NUM("eps"),
                        .weight_decay = (float)NUM("weight_decay"), .clip = (float)NUM("clip"),
                        .warmup = (int)NUM("warmup"), .total_steps = (int)NUM("total_steps"),
                        .min_lr_ratio = (float)NUM("min_lr_ratio"),
                        .decay_steps = (int)NUM("decay_steps")};
#undef NUM
    const char *sched = json_string_value(json_object_get(a, "schedule"));
    c->oo.schedule = !strcmp(sched, "wsd") ? LR_WSD : !strcmp(sched, "constant") ? LR_CONSTANT
                                                                                  : LR_COSINE;
    json_decref(cj);
}

static void case_free(Case *c) {
    model_free(&c->m);
    free(c->tokens);
    json_decref(c->expected);
}

static double expected_num(const Case *c, const char *key) {
    return json_number_value(json_object_get(c->expected, key));
}

/* Compare every tensor of the safetensors file at path with buf (a
 * Weights of the model's layout): max |diff| / max |ref| per tensor. */
static double compare_tensors(const Case *c, const Weights *buf, const char *path, int *n_cmp,
                              char *worst_name) {
    SafeTensors st;
    Err err;
    cr_assert(st_open(&st, path, &err) == 0, "%s", err.msg);
    double worst = 0;
    *n_cmp = 0;
    for (int i = 0; i < buf->n_specs; i++) {
        const ParamSpec *s = &buf->specs[i];
        const StTensor *t = st_find(&st, s->name);
        if (!t) continue;
        float *ref = malloc(sizeof(float) * s->numel);
        cr_assert(st_to_f32(&st, t, ref, &err) == 0, "%s", err.msg);
        const float *got = (const float *)(buf->data + s->offset);
        double mx = 1e-12, d = 0;
        for (int64_t j = 0; j < s->numel; j++) {
            mx = fmax(mx, fabs(ref[j]));
            d = fmax(d, fabs(ref[j] - got[j]));
        }
        if (d / mx > worst) {
            worst = d / mx;
            snprintf(worst_name, 96, "%s", s->name);
        }
        (*n_cmp)++;
        free(ref);
    }
    (void)c;
    st_close(&st);
    return worst;
}

static void check_gradients(const char *name) {
    Case c;
    case_load(&c, name);
    Err err;
    TrainActs acts = {0};
    Weights g;
    cr_assert(weights_alloc(&g, &c.m.cfg, QTYPE_F32, &err) == 0);
    LossParts lp;
    cr_assert(model_forward_train(&c.m, &acts, c.tokens, c.B, c.T, &err) == 0, "%s", err.msg);
    cr_assert(model_backward(&c.m, &acts, c.tokens, &c.lo, &g, &lp, &err) == 0, "%s", err.msg);
    const double loss = expected_num(&c, "loss"), main = expected_num(&c, "loss_main");
    const double bal = expected_num(&c, "loss_bal");
    cr_expect(fabs(lp.loss - loss) <= 1e-4 * fabs(loss), "%s loss %.7f, reference %.7f", name,
              lp.loss, loss);
    cr_expect(fabs(lp.main - main) <= 1e-4 * fabs(main), "main %.7f vs %.7f", lp.main, main);
    cr_expect(fabs(lp.balance - bal) <= 1e-4 * fabs(bal) + 1e-9, "balance %.8f vs %.8f",
              lp.balance, bal);
    json_t *mtp = json_object_get(c.expected, "loss_mtp");
    for (size_t k = 0; k < json_array_size(mtp); k++) {
        double r = json_number_value(json_array_get(mtp, k));
        cr_expect(fabs(lp.mtp[k] - r) <= 1e-4 * r, "mtp %zu %.7f vs %.7f", k, lp.mtp[k], r);
    }
    int n = 0;
    char worst_name[96] = "";
    double worst = compare_tensors(&c, &g, h_path(h_data(name), "grads.safetensors"), &n, worst_name);
    cr_expect(n > 10, "only %d gradient tensors compared", n);
    cr_expect(worst <= 1e-4, "%s: worst gradient error %.3g (relative to the tensor's max) at %s",
              name, worst, worst_name);
    if (!getenv("WHALE_QUIET"))
        printf("%s: loss %.7f (ref %.7f), %d gradients, worst rel err %.3g at %s\n", name, lp.loss,
               loss, n, worst, worst_name);
    weights_free(&g);
    train_acts_free(&acts);
    case_free(&c);
}

Test(train, v3_gradients_match_pytorch, .timeout = 60) { check_gradients("train_v3"); }
Test(train, v2_gradients_match_pytorch, .timeout = 60) { check_gradients("train_v2"); }

static void check_steps(const char *name) {
    Case c;
    case_load(&c, name);
    Err err;
    TrainActs acts = {0};
    Weights g;
    AdamW opt;
    ExpertLoad load;
    cr_assert(weights_alloc(&g, &c.m.cfg, QTYPE_F32, &err) == 0);
    cr_assert(adamw_init(&opt, &c.m.w, &err) == 0);
    cr_assert(expert_load_init(&load, &c.m.cfg, &err) == 0);
    json_t *steps = json_object_get(c.expected, "steps");
    for (int s = 0; s < c.steps; s++) {
        memset(g.data, 0, g.n_bytes);
        expert_load_zero(&load);
        LossParts lp;
        cr_assert(model_forward_train(&c.m, &acts, c.tokens, c.B, c.T, &err) == 0, "%s", err.msg);
        expert_load_add(&load, &c.m, &acts);
        cr_assert(model_backward(&c.m, &acts, c.tokens, &c.lo, &g, &lp, &err) == 0, "%s", err.msg);
        optim_tie_grads(&c.m.w, &g);
        double gn = optim_grad_norm(&g);
        float lr = adamw_step(&opt, &c.m.w, &g, &c.oo, s, gn);
        balance_update_bias(&c.m, &load, c.gamma);
        json_t *e = json_array_get(steps, (size_t)s);
        double rl = json_number_value(json_object_get(e, "loss"));
        double rg = json_number_value(json_object_get(e, "grad_norm"));
        double rlr = json_number_value(json_object_get(e, "lr"));
        cr_expect(fabs(lp.loss - rl) <= 1e-4 * rl, "step %d loss %.7f vs %.7f", s, lp.loss, rl);
        cr_expect(fabs(gn - rg) <= 1e-4 * rg, "step %d grad norm %.7f vs %.7f", s, gn, rg);
        cr_expect(fabsf(lr - (float)rlr) <= 1e-7f, "step %d lr %g vs %g", s, lr, rlr);
    }
    int n = 0;
    char worst_name[96] = "";
    double worst =
        compare_tensors(&c, &c.m.w, h_path(h_data(name), "after_steps.safetensors"), &n, worst_name);
    cr_expect(worst <= 1e-4, "%s: weights after %d steps differ by %.3g (relative) at %s", name,
              c.steps, worst, worst_name);
    if (!getenv("WHALE_QUIET"))
        printf("%s: %d steps, %d tensors, worst rel err %.3g at %s\n", name, c.steps, n, worst,
               worst_name);
    expert_load_free(&load);
    adamw_free(&opt);
    weights_free(&g);
    train_acts_free(&acts);
    case_free(&c);
}

Test(train, v3_three_adamw_steps_match_pytorch, .timeout = 60) { check_steps("train_v3"); }
Test(train, v2_three_adamw_steps_match_pytorch, .timeout = 60) { check_steps("train_v2"); }

/* The 16-lane AdamW update gives the scalar reference's bits: lengths
 * around the tail, gradients over 7 orders of magnitude (some zero), with
 * clipping and weight decay, over five steps of state. */
Test(train, adamw_update_simd_equals_scalar) {
    const size_t lens[] = {1, 15, 16, 17, 1000};
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
        const size_t n = lens[li];
        float *buf = calloc(8 * n, sizeof(float));
        cr_assert(buf);
        float *p0 = buf, *m0 = p0 + n, *v0 = m0 + n, *p1 = v0 + n, *m1 = p1 + n, *v1 = m1 + n;
        float *g = v1 + n;
        uint64_t s = 9;
        for (size_t j = 0; j < n; j++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            p0[j] = p1[j] = (float)((int)(s >> 40) % 2001 - 1000) / 1000.0f;
        }
        for (int step = 1; step <= 5; step++) {
            for (size_t j = 0; j < n; j++) {
                s = s * 6364136223846793005ULL + 1442695040888963407ULL;
                g[j] = j % 7 == 3 ? 0.0f : (float)((int)(s >> 40) % 2001 - 1000) * powf(10.0f, (float)(j % 8) - 6);
            }
            const AdamWCoef k = {1e-3f, step == 2 ? 0.25f : 1.0f, 0.9f, 0.95f,
                                 (float)(1 / (1 - pow(0.9, step))), (float)(1 / (1 - pow(0.95, step))),
                                 1e-8f, 1.0f - 1e-3f * 0.1f};
            adamw_update(p1, m1, v1, g, n, &k);
            adamw_update_ref(p0, m0, v0, g, n, &k);
            cr_assert(memcmp(p0, p1, n * sizeof(float)) == 0 && memcmp(m0, m1, n * sizeof(float)) == 0 &&
                          memcmp(v0, v1, n * sizeof(float)) == 0,
                      "n=%zu step %d: the SIMD update differs from the scalar one", n, step);
        }
        free(buf);
    }
}
