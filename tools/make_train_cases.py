#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Builds the training reference cases tests/data/train_v3 and tests/data/train_v2 (issue 4).

Each case directory: config.json and model.safetensors (F32 random weights drawn by
tools/make_cases.py's gen_deepseek), case.json (batch, loss weights, AdamW settings,
steps), and what tools/train_reference.py computes from them: expected.json,
grads.safetensors, after_steps.safetensors. Deterministic: fixed seeds, numpy PCG64,
torch on one thread.

    /usr/bin/python3 tools/make_train_cases.py              # both cases, with the checks
    /usr/bin/python3 tools/make_train_cases.py train_v2     # one case
    /usr/bin/python3 tools/make_train_cases.py --no-fd      # skip the finite differences

Checks (the script fails if one does not hold): the batched forward against
tools/reference.py run on each sequence (1e-5), torch.optim.AdamW against the
spec's formula, float64 autograd gradients against central differences, the
float32 run against float64, and that the balance loss, the correction bias and the
group limit each change something.
"""

import json
import os
import shutil
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_cases as mc  # noqa: E402
import reference as ref  # noqa: E402
import train_reference as tr  # noqa: E402

B, T = 2, 16

# Small enough that a case directory (three copies of the weights: model, gradients,
# weights after the steps) stays under 800 KB; the widths differ from each other so
# that a transposed or mis-split matrix cannot go unnoticed.
SMALL = dict(hidden_size=24, intermediate_size=40, moe_intermediate_size=6, num_attention_heads=2,
             qk_nope_head_dim=12, qk_rope_head_dim=8, v_head_dim=10, kv_lora_rank=16, vocab_size=256,
             torch_dtype="float32")

TRAIN_V3 = mc.v3_common(
    num_hidden_layers=3, first_k_dense_replace=1, q_lora_rank=20, n_routed_experts=8, num_experts_per_tok=2,
    n_group=4, topk_group=2, n_shared_experts=1, num_nextn_predict_layers=2, max_position_embeddings=64,
    rope_scaling={"beta_fast": 32, "beta_slow": 1, "factor": 4, "mscale": 1.0, "mscale_all_dim": 1.0,
                  "original_max_position_embeddings": 16, "type": "yarn"}, **SMALL)

TRAIN_V2 = mc.deepseek_config(
    "deepseek_v2", q_lora_rank=None, scoring_func="softmax", topk_method="greedy", n_group=1, topk_group=1,
    norm_topk_prob=False, routed_scaling_factor=1.0, n_routed_experts=8, num_experts_per_tok=2, n_shared_experts=1,
    first_k_dense_replace=1, num_hidden_layers=2, **SMALL)

# total_steps 4 for train_v3 so that step 2 is inside the cosine (with total_steps 3 and
# warmup 2 it would sit at p = 0, lr = peak); train_v2 runs the wsd schedule. Clipping
# triggers at every step of train_v3 (norms ~8 > 1) and at none of train_v2 (~4 < 8).
CASES = [
    ("train_v3", TRAIN_V3, 201, {
        "mtp_lambda": 0.3, "balance_alpha": 0.01, "bias_gamma": 0.001, "steps": 3,
        "adamw": {"lr": 1e-3, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1, "clip": 1.0,
                  "warmup": 2, "total_steps": 4, "schedule": "cosine", "min_lr_ratio": 0.1, "decay_steps": 0}}),
    ("train_v2", TRAIN_V2, 202, {
        "mtp_lambda": 0.3, "balance_alpha": 0.01, "bias_gamma": 0.001, "steps": 3,
        "adamw": {"lr": 1e-3, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1, "clip": 8.0,
                  "warmup": 1, "total_steps": 3, "schedule": "wsd", "min_lr_ratio": 0.1, "decay_steps": 2}}),
]


def make_weights(cfg, rng):
    """gen_deepseek's weights, without the MTP embedding copies (the MTP modules use
    model.embed_tokens) and with every MTP shared_head.head equal to lm_head."""
    W = mc.gen_deepseek(cfg, rng, 0.0)
    for name in [n for n in W if n.startswith("model.layers.") and n.endswith(".embed_tokens.weight")]:
        del W[name]
    for name in W:
        if name.endswith("shared_head.head.weight"):
            W[name] = W["lm_head.weight"].copy()
    return W


def effects(d, case_path):
    """What the balance loss, the correction bias and the group limit change: the largest
    |gradient difference| on the router weights without the balance term relative to
    their largest gradient, and the tokens whose selection differs without the bias
    or without the group limit (over every MoE layer run), and with YaRN how far the
    logits move without rope_scaling."""
    case, tokens = tr.load_case(case_path)
    grads = []
    for alpha in (float(case["balance_alpha"]), 0.0):
        m = tr.TrainModel.from_dir(d)
        out = m.loss(tokens, float(case["mtp_lambda"]), alpha)
        tr.backward(m.params, out["loss"])
        grads.append({n: p.grad for n, p in m.params.items() if n.endswith("gate.weight")})
    bal = max(((grads[0][n] - grads[1][n]).abs().max() / grads[0][n].abs().max()).item() for n in grads[0])
    res = {"bal_router_grad_rel": bal, "tokens": 0, "bias_changes": 0, "group_changes": 0}
    with torch.no_grad():
        for i, idx, _, x in out["aux"]:
            p = f"model.layers.{i}.mlp."
            idx = idx.reshape(-1, idx.shape[-1]).sort(-1).values
            res["tokens"] += idx.shape[0]
            for key, kw in (("bias_changes", {"use_bias": False}), ("group_changes", {"use_groups": False})):
                alt, _ = ref.moe_route(m.cfg, x.reshape(idx.shape[0], -1), m.w(p + "gate.weight"),
                                       m.biases.get(p + "gate.e_score_correction_bias"), m.options, **kw)
                res[key] += int((alt.sort(-1).values != idx).any(-1).sum())
    if m.cfg.get("rope_scaling"):
        plain = tr.TrainModel(dict(m.cfg, rope_scaling=None), ref.load_weights(d, m.cfg))
        with torch.no_grad():
            res["yarn_logit_diff"] = (plain.run(tokens[:, :-1])[0] - out["logits"]).abs().max().item()
    return res


def build(name, cfg, seed, case, fd=True):
    d = os.path.join(mc.DATA, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    rng = np.random.default_rng(seed)
    W = make_weights(cfg, rng)
    mc.write_model(d, cfg, mc.encode(W, "F32"), 1)
    case = dict(tokens=rng.integers(2, cfg["vocab_size"], size=(B, T + 1)).tolist(), **case)
    case_path = os.path.join(d, "case.json")
    with open(case_path, "w") as f:
        json.dump(case, f)
        f.write("\n")
    exp = tr.run_case(d, case_path, d)
    r = {"name": name, "loss": exp["loss"], "loss_main": exp["loss_main"], "loss_mtp": exp["loss_mtp"],
         "loss_bal": exp["loss_bal"], "steps": exp["steps"]}
    r["self_check"] = tr.self_check(d, case_path)
    assert max(r["self_check"].values()) < 1e-5, (name, r["self_check"])
    r["clipped_steps"] = sum(s["clip_scale"] < 1 for s in exp["steps"])
    r["f64"] = tr.f64_check(d, case_path)
    assert r["f64"]["same_selection"] and r["f64"]["grad_rel"] < 1e-4, (name, r["f64"])
    if fd:
        r["fd"] = tr.fd_check(d, case_path)
        assert r["fd"]["max_rel"] < 1e-4, (name, r["fd"])
    r["effects"] = effects(d, case_path)
    eff = r["effects"]
    assert eff["bal_router_grad_rel"] > 1e-3, (name, eff)
    if cfg["topk_method"] == "noaux_tc":
        assert eff["bias_changes"] > 0, (name, eff)
    if cfg["n_group"] > 1:
        assert eff["group_changes"] > 0, (name, eff)
    if cfg.get("rope_scaling"):
        assert eff["yarn_logit_diff"] > 1e-2, (name, eff)
    r["sizes"] = {fn: os.path.getsize(os.path.join(d, fn)) for fn in sorted(os.listdir(d))}
    print(f"{name}: {sum(r['sizes'].values()) / 1024:.1f} KiB " + json.dumps({k: v for k, v in r.items()
                                                                            if k not in ("name", "sizes")}))
    return r


def main():
    torch.set_num_threads(1)
    args = sys.argv[1:]
    fd = "--no-fd" not in args
    want = {a for a in args if not a.startswith("--")}
    report = [build(n, c, s, k, fd) for n, c, s, k in CASES if not want or n in want]
    with open(os.path.join("/tmp", "whale_make_train_cases_report.json"), "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
