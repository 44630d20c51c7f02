#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""PyTorch reference for whale's training objective and optimiser step (issue 4; tools only).

Implements docs/training.md: a batched autograd DeepSeek forward with the math of
tools/reference.py (whose helpers it calls: rms_norm, linear, swiglu, rope tables,
moe_route), the loss L_main + L_mtp + L_bal, the gradient of every parameter,
the tied MTP heads, global-norm clipping, the lr schedule, torch.optim.AdamW and
the auxiliary-loss-free bias update. Float32 throughout, one thread.

    /usr/bin/python3 tools/train_reference.py MODEL_DIR --case CASE.json --out DIR
    /usr/bin/python3 tools/train_reference.py MODEL_DIR --self-check [--case CASE.json]
    /usr/bin/python3 tools/train_reference.py MODEL_DIR --case CASE.json --fd-check [--f64-check]

CASE.json: {"tokens": [[T+1 ids] x B], "mtp_lambda", "balance_alpha", "bias_gamma",
"adamw": {"lr","beta1","beta2","eps","weight_decay","clip","warmup","total_steps",
"schedule": "cosine"|"wsd"|"constant","min_lr_ratio","decay_steps"}, "steps"}.
Every step trains on the same batch. DIR gets expected.json, grads.safetensors
(d loss / d param at step 0, per stored tensor, MTP heads untied) and
after_steps.safetensors (every tensor after the steps).

--self-check: the batched forward against tools/reference.py (logits.bin and
mtp_logits.bin of a reference case; with --case, reference.Model run on each
sequence alone), and torch.optim.AdamW against the spec's formula in float64.
--fd-check: float64 autograd gradients against central differences.
--f64-check: the float32 run against the same run in float64.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as ref  # noqa: E402
import safetensors_io as st  # noqa: E402

ADAMW_DEFAULTS = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1, "clip": 1.0,
                  "warmup": 0, "total_steps": 1, "schedule": "constant", "min_lr_ratio": 0.1, "decay_steps": 0}

# ---------------------------------------------------------------- model


class TrainModel:
    """A DeepSeek V2/V3 model as autograd leaves: params (name -> tensor, requires_grad) hold
    every stored tensor but the e_score_correction_bias vectors (biases, no gradient) and
    MTP copies of the embedding (emb_copies: unused by the forward, see docs/training.md).

    cfg: the config.json dict; weights: name -> float32 tensor; dtype: float32, or float64
    for the checks. The hyper-parameters come from cfg as in reference.Model.
    """

    def __init__(self, cfg, weights, dtype=torch.float32, options=None):
        if cfg["model_type"] not in ref.DEEPSEEK:
            raise ValueError(f"train_reference: model_type {cfg['model_type']} is not DeepSeek")
        if cfg.get("tie_word_embeddings", False):
            raise ValueError("train_reference: tied word embeddings are not supported")
        self.cfg = cfg
        self.dtype = dtype
        self.options = dict(ref.DEFAULT_OPTIONS)
        self.options.update(options or {})
        self.eps = float(cfg.get("rms_norm_eps", 1e-6))
        self.L = int(cfg["num_hidden_layers"])
        self.Dm = int(cfg.get("num_nextn_predict_layers") or 0) if cfg["model_type"] == "deepseek_v3" else 0
        self.H = int(cfg["num_attention_heads"])
        self.nope, self.rope = int(cfg["qk_nope_head_dim"]), int(cfg["qk_rope_head_dim"])
        self.vd, self.R = int(cfg["v_head_dim"]), int(cfg["kv_lora_rank"])
        # softmax scale as reference.Model: (nope+rope)^-0.5, times mscale^2 under YaRN
        self.scale = (self.nope + self.rope) ** -0.5
        rs = cfg.get("rope_scaling") or {}
        if rs.get("rope_type", rs.get("type")) == "yarn" and float(rs.get("mscale_all_dim", 0) or 0):
            self.scale *= ref.yarn_get_mscale(float(rs["factor"]), float(rs["mscale_all_dim"])) ** 2
        self.params, self.biases, self.emb_copies = {}, {}, {}
        for name, w in weights.items():
            t = w.detach().to(dtype).clone()
            if name.endswith("e_score_correction_bias"):
                self.biases[name] = t
            elif self.is_emb_copy(name):
                self.emb_copies[name] = t
            else:
                self.params[name] = t.requires_grad_(True)
        self.heads = [f"model.layers.{self.L + k}.shared_head.head.weight" for k in range(self.Dm)]
        self._rope = {}

    @classmethod
    def from_dir(cls, path, dtype=torch.float32):
        cfg = ref.load_config(path)
        return cls(cfg, ref.load_weights(path, cfg), dtype)

    def is_emb_copy(self, name):
        return name.startswith("model.layers.") and name.endswith(".embed_tokens.weight")

    def is_moe(self, i):
        """docs/training.md: layer i is MoE iff n_routed_experts and i >= first_k_dense_replace
        and i % moe_layer_freq == 0 (also for MTP blocks, i = num_hidden_layers + k - 1)."""
        c = self.cfg
        return bool(c.get("n_routed_experts")) and i >= int(c.get("first_k_dense_replace", 0)) \
            and i % int(c.get("moe_layer_freq", 1)) == 0

    def w(self, name):
        return self.params[name]

    def rope_cs(self, T):
        if T not in self._rope:
            cos, sin = ref.rope_tables(self.cfg, self.rope, list(range(T)), self.options)
            self._rope[T] = (cos.to(self.dtype), sin.to(self.dtype))
        return self._rope[T]

    def causal_mask(self, T):
        """(T, T) bool, True where the key comes after the query (as reference.causal_softmax)."""
        if ("mask", T) not in self._rope:
            self._rope[("mask", T)] = torch.ones(T, T, dtype=torch.bool).triu_(1)
        return self._rope[("mask", T)]

    def rotate(self, x, cos, sin):
        """reference.py's DeepSeek rope on batched x (B, T, ..., d): it rotates time-first tensors."""
        rot = ref.rope_interleaved if self.options["deepseek_rope"] == "interleaved" else ref.rope_half
        return rot(x.transpose(0, 1), cos, sin).transpose(0, 1)

    # -- blocks -------------------------------------------------------------

    def mla(self, i, x):
        """MLA, prefill formulation (reference.Model.mla, absorbed=False) on x (B, T, D):
        every sequence its own causal attention at rope positions 0..T-1."""
        p = f"model.layers.{i}.self_attn."
        B, T, _ = x.shape
        H, nope, rope, vd, R = self.H, self.nope, self.rope, self.vd, self.R
        if p + "q_a_proj.weight" in self.params:
            q = ref.linear(ref.rms_norm(ref.linear(x, self.w(p + "q_a_proj.weight")),
                                        self.w(p + "q_a_layernorm.weight"), self.eps), self.w(p + "q_b_proj.weight"))
        else:
            q = ref.linear(x, self.w(p + "q_proj.weight"))
        q = q.view(B, T, H, nope + rope)
        kv = ref.linear(x, self.w(p + "kv_a_proj_with_mqa.weight"))
        c_kv = ref.rms_norm(kv[..., :R], self.w(p + "kv_a_layernorm.weight"), self.eps)
        cos, sin = self.rope_cs(T)
        q_pe = self.rotate(q[..., nope:], cos, sin)
        k_pe = self.rotate(kv[..., R:], cos, sin)  # (B, T, rope): one key shared by the heads
        kvb = ref.linear(c_kv, self.w(p + "kv_b_proj.weight")).view(B, T, H, nope + vd)
        k = torch.cat((kvb[..., :nope], k_pe[:, :, None, :].expand(B, T, H, rope)), dim=-1)
        # scaled after the product, as reference.py (scaling q instead moves v3_yarn's
        # logits by 1.5e-5); the scores are fresh, so scale and mask are applied in place
        qf = torch.cat((q[..., :nope], q_pe), dim=-1)
        scores = torch.einsum("bshd,bthd->bhst", qf, k).mul_(self.scale)
        scores.masked_fill_(self.causal_mask(T), float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        out = torch.einsum("bhst,bthd->bshd", probs, kvb[..., nope:])
        return ref.linear(out.reshape(B, T, H * vd), self.w(p + "o_proj.weight"))

    def ffn(self, p, x):
        w = self.w
        return ref.swiglu(x, w(p + "gate_proj.weight"), w(p + "up_proj.weight"), w(p + "down_proj.weight"))

    def moe(self, i, x, aux):
        """DeepSeekMoE on x (B, T, D); appends (layer, idx (B, T, K), affinities (B, T, E), x) to aux.

        Routing is reference.moe_route (selection with the bias, weights without); the
        tokens of each expert are gathered, run together and scattered back.
        """
        p = f"model.layers.{i}.mlp."
        B, T, D = x.shape
        xf = x.reshape(B * T, D)
        gw = self.w(p + "gate.weight")
        idx, wts = ref.moe_route(self.cfg, xf, gw, self.biases.get(p + "gate.e_score_correction_bias"), self.options)
        K = idx.shape[1]
        logits = ref.linear(xf, gw)
        s = torch.sigmoid(logits) if self.cfg.get("scoring_func", "softmax") == "sigmoid" else torch.softmax(logits, -1)
        aux.append((i, idx.view(B, T, K), s.view(B, T, -1), x))
        flat = idx.reshape(-1)
        order = torch.argsort(flat, stable=True)
        counts = torch.bincount(flat, minlength=int(self.cfg["n_routed_experts"])).tolist()
        tok = order // K
        xs = xf[tok]
        ys, start = [], 0
        for e, c in enumerate(counts):
            if c:
                ys.append(self.ffn(f"{p}experts.{e}.", xs[start : start + c]))
                start += c
        y = torch.cat(ys) * wts.reshape(-1)[order][:, None]
        out = torch.zeros_like(xf).index_add(0, tok, y.to(xf.dtype))  # bf16 under autocast
        if int(self.cfg.get("n_shared_experts") or 0) > 0:
            out = out + self.ffn(p + "shared_experts.", xf)
        return out.view(B, T, D)

    def block(self, i, h, aux):
        p = f"model.layers.{i}."
        h = h + self.mla(i, ref.rms_norm(h, self.w(p + "input_layernorm.weight"), self.eps))
        x = ref.rms_norm(h, self.w(p + "post_attention_layernorm.weight"), self.eps)
        return h + (self.moe(i, x, aux) if self.is_moe(i) else self.ffn(p + "mlp.", x))

    # -- model --------------------------------------------------------------

    def run(self, inputs):
        """inputs: LongTensor (B, T). Returns (logits (B, T, V), [MTP depth k logits (B, T-k, V)],
        aux: one (layer, idx, affinities, router input) per MoE layer run, main layers then MTP depths)."""
        B, T = inputs.shape
        aux = []
        emb = self.w("model.embed_tokens.weight")
        h = emb[inputs]
        for i in range(self.L):
            h = self.block(i, h, aux)
        hk = ref.rms_norm(h, self.w("model.norm.weight"), self.eps)
        logits = ref.linear(hk, self.w("lm_head.weight"))
        mtp = []
        for k in range(1, self.Dm + 1):
            Tk, li = T - k, self.L + k - 1
            p = f"model.layers.{li}."
            e = ref.rms_norm(emb[inputs[:, k:T]], self.w(p + "enorm.weight"), self.eps)
            hh = ref.rms_norm(hk[:, :Tk], self.w(p + "hnorm.weight"), self.eps)
            hk = self.block(li, ref.linear(torch.cat((e, hh), dim=-1), self.w(p + "eh_proj.weight")), aux)
            hn = ref.rms_norm(hk, self.w(p + "shared_head.norm.weight"), self.eps)
            mtp.append(ref.linear(hn, self.w(p + "shared_head.head.weight")))
        return logits, mtp, aux

    def loss(self, tokens, mtp_lambda, balance_alpha):
        """The loss of docs/training.md for tokens (B, T+1). Returns a dict: loss, loss_main,
        loss_mtp (per depth, before lambda), loss_bal (times balance_alpha), loads
        (bias name -> (E,) selections this forward), and the run() outputs."""
        B, T1 = tokens.shape
        T = T1 - 1
        logits, mtp, aux = self.run(tokens[:, :T])
        V = logits.shape[-1]
        loss_main = F.cross_entropy(logits.reshape(-1, V), tokens[:, 1:].reshape(-1))
        loss_mtp = [F.cross_entropy(lg.reshape(-1, V), tokens[:, k + 1 :].reshape(-1)) for k, lg in enumerate(mtp, 1)]
        bal = torch.zeros((), dtype=self.dtype)
        loads = {}
        for i, idx, s, _ in aux:
            Bn, n, K = idx.shape
            E = s.shape[-1]
            sel = torch.zeros(Bn, E, dtype=self.dtype).scatter_add_(1, idx.reshape(Bn, -1),
                                                                    torch.ones(Bn, n * K, dtype=self.dtype))
            f = sel * (E / (K * n))  # constant: no gradient through the selection
            P = (s / s.sum(-1, keepdim=True)).mean(1)
            bal = bal + (f * P).sum()
            name = f"model.layers.{i}.mlp.gate.e_score_correction_bias"
            if name in self.biases:
                loads[name] = loads.get(name, 0) + sel.sum(0)
        loss_bal = balance_alpha * bal / B
        loss = loss_main + loss_bal
        if loss_mtp:
            loss = loss + (mtp_lambda / len(loss_mtp)) * sum(loss_mtp)
        return {"loss": loss, "loss_main": loss_main, "loss_mtp": loss_mtp, "loss_bal": loss_bal, "loads": loads,
                "logits": logits, "mtp_logits": mtp, "aux": aux}

    def tensors(self):
        """Every tensor (params, biases, embedding copies), detached."""
        out = {n: t.detach() for n, t in self.params.items()}
        out.update(self.biases)
        out.update(self.emb_copies)
        return out


# ---------------------------------------------------------------- optimiser


def lr_at(s, a):
    """lr of step s (0-based) for the adamw dict a (docs/training.md, step 4)."""
    lr, W, S = float(a["lr"]), int(a["warmup"]), int(a["total_steps"])
    min_lr = lr * float(a["min_lr_ratio"])
    if s < W:
        return lr * (s + 1) / W
    if a["schedule"] == "cosine":
        p = (s - W) / max(1, S - W)
        return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * p))
    if a["schedule"] == "wsd":
        d = int(a["decay_steps"])
        if s < S - d:
            return lr
        return lr + (min_lr - lr) * (s - (S - d) + 1) / d
    if a["schedule"] == "constant":
        return lr
    raise ValueError(f"unknown schedule {a['schedule']}")


def is_decayed(name, shape):
    """Weight decay on 2-D matrices and routers, not on embeddings, lm heads, norms, biases."""
    if len(shape) != 2 or not name.endswith(".weight"):
        return False
    return name not in ("model.embed_tokens.weight", "lm_head.weight") and not name.endswith("shared_head.head.weight")


def adamw_formula(p, g, m, v, t, lr, a, decay):
    """The spec's AdamW in float64 (for --self-check): returns the new (p, m, v)."""
    b1, b2 = float(a["beta1"]), float(a["beta2"])
    if decay:
        p = p * (1 - lr * float(a["weight_decay"]))
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    p = p - lr * (m / (1 - b1 ** t)) / (torch.sqrt(v / (1 - b2 ** t)) + float(a["eps"]))
    return p, m, v


def backward(params, loss):
    """loss.backward(); tensors the loss does not reach (experts no token chose) get zero gradients."""
    loss.backward()
    for t in params.values():
        if t.grad is None:
            t.grad = torch.zeros_like(t)


def train(model, tokens, case, check_adamw=False):
    """case["steps"] optimiser steps on one batch. Returns (expected dict, step-0 grads (untied),
    and when check_adamw the largest |torch AdamW - the spec's formula in float64| over the
    updates of all steps (the formula starts each step from torch's weights), else None)."""
    a = dict(ADAMW_DEFAULTS)
    a.update(case.get("adamw") or {})
    P = model.params
    trained = [n for n in P if n not in model.heads]
    decay = [n for n in trained if is_decayed(n, P[n].shape)]
    rest = [n for n in trained if n not in decay]
    opt = torch.optim.AdamW([{"params": [P[n] for n in decay], "weight_decay": float(a["weight_decay"])},
                             {"params": [P[n] for n in rest], "weight_decay": 0.0}],
                            lr=float(a["lr"]), betas=(float(a["beta1"]), float(a["beta2"])), eps=float(a["eps"]))
    lam, alpha, gamma = float(case.get("mtp_lambda", 0.3)), float(case.get("balance_alpha", 0.0)), \
        float(case.get("bias_gamma", 0.0))
    clip = float(a["clip"])
    exp, grads0, adamw_diff = {"steps": []}, None, None
    if check_adamw:
        adamw_diff, mv = 0.0, {n: (torch.zeros_like(P[n], dtype=torch.float64),) * 2 for n in trained}
    for s in range(int(case["steps"])):
        for t in P.values():
            t.grad = None
        out = model.loss(tokens, lam, alpha)
        backward(P, out["loss"])
        if s == 0:
            grads0 = {n: t.grad.detach().clone() for n, t in P.items()}
            exp.update(loss=out["loss"].item(), loss_main=out["loss_main"].item(),
                       loss_mtp=[x.item() for x in out["loss_mtp"]], loss_bal=out["loss_bal"].item())
        with torch.no_grad():
            for h in model.heads:  # tie: the MTP heads' gradients go to lm_head
                P["lm_head.weight"].grad += P[h].grad
            # global norm over the trained tensors, summed in double
            g = math.sqrt(sum(float(P[n].grad.double().pow(2).sum()) for n in trained))
            scale = min(1.0, clip / (g + 1e-6)) if clip > 0 else 1.0
            if scale < 1.0:
                for n in trained:
                    P[n].grad.mul_(scale)
            lr = lr_at(s, a)
            for group in opt.param_groups:
                group["lr"] = lr
            if check_adamw:
                want = {}
                for n in trained:
                    want[n], m, v = adamw_formula(P[n].double(), P[n].grad.double(), *mv[n], s + 1, lr, a, n in decay)
                    mv[n] = (m, v)
            opt.step()
            if check_adamw:
                adamw_diff = max([adamw_diff] + [(P[n].double() - want[n]).abs().max().item() for n in trained])
            for h in model.heads:
                P[h].copy_(P["lm_head.weight"])
            for n in model.emb_copies:
                model.emb_copies[n].copy_(P["model.embed_tokens.weight"])
            for n, load in out["loads"].items():  # auxiliary-loss-free balancing
                mean = load.sum() / load.numel()
                model.biases[n].add_(gamma * torch.sign(mean - load))
        exp["steps"].append({"loss": out["loss"].item(), "grad_norm": g, "lr": lr, "clip_scale": scale})
    steps = exp.pop("steps")
    exp["steps"] = steps
    return exp, grads0, adamw_diff


# ---------------------------------------------------------------- files and checks


def load_case(path):
    with open(path) as f:
        case = json.load(f)
    tokens = case["tokens"]
    if not tokens or len({len(r) for r in tokens}) != 1 or len(tokens[0]) < 3:
        raise ValueError(f"{path}: tokens must be B rows of equal length T+1 >= 3")
    return case, torch.tensor(tokens, dtype=torch.long)


def f32_tensors(d):
    return {n: ("F32", np.ascontiguousarray(t.detach().float().numpy())) for n, t in d.items()}


def run_case(model_dir, case_path, out_dir):
    """Train on the case and write out_dir/expected.json, grads.safetensors, after_steps.safetensors."""
    case, tokens = load_case(case_path)
    model = TrainModel.from_dir(model_dir)
    exp, grads0, _ = train(model, tokens, case)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(exp, f, indent=1)
        f.write("\n")
    st.write_safetensors(os.path.join(out_dir, "grads.safetensors"), f32_tensors(grads0))
    st.write_safetensors(os.path.join(out_dir, "after_steps.safetensors"), f32_tensors(model.tensors()))
    return exp


def self_check(model_dir, case_path=None):
    """Max |difference| of the batched forward against tools/reference.py: on logits.bin /
    mtp_logits.bin (with ids.txt) when the directory has them, and with a case against
    reference.Model run on each sequence alone (logits and MTP depth 1). Also max
    |torch.optim.AdamW - the spec's formula| over the case's steps. Returns a dict of the numbers."""
    torch.set_grad_enabled(False)
    model = TrainModel.from_dir(model_dir)
    res = {}
    ids_path = os.path.join(model_dir, "ids.txt")
    if os.path.exists(ids_path) and os.path.exists(os.path.join(model_dir, "logits.bin")):
        ids = [int(v) for v in open(ids_path).read().split(",")]
        logits, mtp, _ = model.run(torch.tensor([ids]))
        want = np.fromfile(os.path.join(model_dir, "logits.bin"), "<f4").reshape(len(ids), -1)
        res["logits_vs_logits_bin"] = float(np.abs(logits[0].numpy() - want).max())
        mpath = os.path.join(model_dir, "mtp_logits.bin")
        if mtp and os.path.exists(mpath):
            want = np.fromfile(mpath, "<f4").reshape(len(ids) - 1, -1)
            res["mtp_vs_mtp_logits_bin"] = float(np.abs(mtp[0][0].numpy() - want).max())
    if case_path:
        case, tokens = load_case(case_path)
        logits, mtp, _ = model.run(tokens[:, :-1])
        m = ref.Model(model_dir)
        d, dm = 0.0, 0.0
        for b in range(tokens.shape[0]):
            ids = tokens[b, :-1].tolist()
            d = max(d, (m.forward(ids) - logits[b]).abs().max().item())
            if mtp:
                dm = max(dm, (m.mtp(ids) - mtp[0][b]).abs().max().item())
        res["logits_vs_reference_model"] = d
        if mtp:
            res["mtp1_vs_reference_model"] = dm
        torch.set_grad_enabled(True)
        _, _, res["adamw_vs_formula"] = train(TrainModel.from_dir(model_dir), tokens, case, check_adamw=True)
    torch.set_grad_enabled(True)
    return res


def fd_check(model_dir, case_path, per_tensor=3, h=1e-5, seed=0):
    """float64 autograd gradients of the step-0 loss against central differences at
    per_tensor random entries of every trained tensor plus its largest-gradient entry.
    Entries where a perturbation changes an expert selection are skipped (counted).
    Returns {"entries", "skipped", "max_rel" (over |grad| > 1e-6), "max_abs"}."""
    case, tokens = load_case(case_path)
    model = TrainModel.from_dir(model_dir, torch.float64)
    lam, alpha = float(case.get("mtp_lambda", 0.3)), float(case.get("balance_alpha", 0.0))
    out = model.loss(tokens, lam, alpha)
    backward(model.params, out["loss"])
    base_sel = [a[1] for a in out["aux"]]
    rng = np.random.default_rng(seed)
    res = {"entries": 0, "skipped": 0, "max_rel": 0.0, "max_abs": 0.0}
    with torch.no_grad():
        for name, p in model.params.items():
            g = p.grad.reshape(-1)
            flat = p.data.view(-1)
            picks = set(rng.choice(flat.numel(), size=min(per_tensor, flat.numel()), replace=False).tolist())
            picks.add(int(g.abs().argmax()))
            for j in sorted(picks):
                x0 = flat[j].item()
                vals = []
                for sgn in (1, -1):
                    flat[j] = x0 + sgn * h
                    o = model.loss(tokens, lam, alpha)
                    vals.append((o["loss"].item(), all(torch.equal(a, b[1]) for a, b in zip(base_sel, o["aux"]))))
                flat[j] = x0
                if not (vals[0][1] and vals[1][1]):
                    res["skipped"] += 1
                    continue
                fd = (vals[0][0] - vals[1][0]) / (2 * h)
                ad = g[j].item()
                err = abs(fd - ad)
                res["entries"] += 1
                res["max_abs"] = max(res["max_abs"], err)
                if max(abs(fd), abs(ad)) > 1e-6:
                    res["max_rel"] = max(res["max_rel"], err / max(abs(fd), abs(ad)))
    return res


def f64_check(model_dir, case_path):
    """The float32 run against the same run in float64: |loss| difference, the largest
    gradient difference relative to its tensor's largest gradient, whether every expert
    selection agrees, and the largest |difference| of the tensors after the steps (with
    how many entries differ by more than 1e-5: AdamW's first steps move an entry by about
    lr whatever its gradient's size, so a gradient near float32 rounding can move either way)."""
    case, tokens = load_case(case_path)
    runs = []
    for dt in (torch.float32, torch.float64):
        m = TrainModel.from_dir(model_dir, dt)
        with torch.no_grad():
            sel = [a[1] for a in m.loss(tokens, float(case.get("mtp_lambda", 0.3)),
                                                 float(case.get("balance_alpha", 0.0)))["aux"]]
        exp, g, _ = train(m, tokens, case)
        runs.append((exp, g, m.tensors(), sel))
    (e32, g32, t32, s32), (e64, g64, t64, s64) = runs
    grad_rel = max(((g32[n].double() - g64[n]).abs().max() / g64[n].abs().max().clamp_min(1e-30)).item() for n in g64)
    diffs = torch.cat([(t32[n].double() - t64[n]).abs().reshape(-1) for n in t64])
    return {"loss_diff": max(abs(a["loss"] - b["loss"]) for a, b in zip(e32["steps"], e64["steps"])),
            "grad_rel": grad_rel, "same_selection": all(torch.equal(a, b) for a, b in zip(s32, s64)),
            "after_steps_max_abs": diffs.max().item(), "after_steps_over_1e-5": int((diffs > 1e-5).sum()),
            "entries": diffs.numel()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="Hugging Face model directory (deepseek_v2 / deepseek_v3)")
    ap.add_argument("--case", help="CASE.json (tokens, loss weights, adamw, steps)")
    ap.add_argument("--out", help="output directory for expected.json, grads.safetensors, after_steps.safetensors")
    ap.add_argument("--self-check", action="store_true", help="batched forward vs tools/reference.py; AdamW vs formula")
    ap.add_argument("--fd-check", action="store_true", help="float64 gradients vs central differences (needs --case)")
    ap.add_argument("--f64-check", action="store_true", help="float32 run vs float64 run (needs --case)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.out:
        if not a.case:
            sys.exit("train_reference: --out needs --case")
        exp = run_case(a.model, a.case, a.out)
        print(json.dumps({k: exp[k] for k in ("loss", "loss_main", "loss_mtp", "loss_bal")}))
        for s, r in enumerate(exp["steps"]):
            print(f"step {s}: loss {r['loss']:.6f} grad_norm {r['grad_norm']:.6f} lr {r['lr']:.3g} "
                  f"clip_scale {r['clip_scale']:.4f}")
    if a.self_check:
        res = self_check(a.model, a.case)
        print("self-check " + json.dumps(res))
        if not res or max(v for k, v in res.items()) > 1e-5:
            sys.exit("train_reference: self-check failed (tolerance 1e-5)")
    if (a.fd_check or a.f64_check) and not a.case:
        sys.exit("train_reference: --fd-check / --f64-check need --case")
    if a.fd_check:
        print("fd-check " + json.dumps(fd_check(a.model, a.case)))
    if a.f64_check:
        print("f64-check " + json.dumps(f64_check(a.model, a.case)))
    if not (a.out or a.self_check or a.fd_check or a.f64_check):
        ap.error("nothing to do: give --out, --self-check, --fd-check or --f64-check")


if __name__ == "__main__":
    main()
