#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Float32 PyTorch reference forward pass for whale's model tests (tools only).

Reads a Hugging Face model directory (config.json + model.safetensors, or shards
with model.safetensors.index.json; F32/BF16/F16/F8_E4M3 with 128x128
weight_scale_inv) and computes logits for every position of a sequence of ids.
DeepSeek (deepseek_v2 / deepseek_v3) follows the official DeepSeek-V3
inference/model.py (MLA, MoE gate, YaRN); qwen2 and llama follow Hugging Face
transformers. Where the two differ the choice is said in a comment.

    /usr/bin/python3 tools/reference.py MODEL_DIR --ids 1,2,3 --out logits.bin \
        [--mtp-out mtp_logits.bin] [--decode]

Output files are little-endian float32, row-major (n_ids x vocab_size), all
positions. --decode runs one token at a time through a KV cache (for DeepSeek
the absorbed MLA formulation: the cache holds kv_a_layernorm(c_kv) and the
roped key); both paths agree to float32 rounding.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io as st  # noqa: E402

DEEPSEEK = ("deepseek_v2", "deepseek_v3")
DENSE = ("qwen2", "llama")

# Semantic choices where sources disagree. Each is documented in tests/data/README.md.
DEFAULT_OPTIONS = {
    # YaRN correction range: the official precompute_freqs_cis (every revision of
    # inference/model.py) and HF's yarn_find_correction_range both use
    # floor(low) / ceil(high); "round" exists only to measure sensitivity.
    "yarn_range": "floor_ceil",
    # Which main-model hidden state feeds the MTP module's hnorm: vLLM and SGLang
    # pass the main model's output AFTER model.norm (DeepseekV2Model.forward ends
    # with self.norm), and that is what their DeepSeek-V3 MTP drafting uses.
    # "pre_norm" is the alternative reading of the paper.
    "mtp_hidden": "post_norm",
    # DeepSeek rope layout: "interleaved" (official view_as_complex on pairs
    # (2i, 2i+1)); "half" (rotate_half on (i, i+d/2)) only to measure sensitivity.
    "deepseek_rope": "interleaved",
    # Value written over the experts of excluded groups: official -inf (HF V2 uses 0).
    "group_mask_value": float("-inf"),
}

# ---------------------------------------------------------------- loading


def load_config(path):
    with open(os.path.join(path, "config.json")) as f:
        return json.load(f)


def load_weights(path, cfg):
    """Every tensor of the model directory as a float32 torch tensor, F8 weights dequantised.

    F8_E4M3 `X.weight` with F32 `X.weight_scale_inv` (ceil(out/b0), ceil(in/b1)):
    w[i][j] = f8(w[i][j]) * scale_inv[i // b0][j // b1], block (b0, b1) from
    quantization_config.weight_block_size (default 128x128).
    """
    raw = st.read_model_dir(path)
    qc = cfg.get("quantization_config") or {}
    b0, b1 = qc.get("weight_block_size", [128, 128])
    out = {}
    for name, (dt, arr) in raw.items():
        if name.endswith("_scale_inv"):
            continue
        w = st.to_float32(dt, arr)
        if dt == "F8_E4M3":
            sname = name + "_scale_inv"
            if sname not in raw:
                raise ValueError(f"F8 tensor {name} has no {sname}")
            s = st.to_float32(*raw[sname])
            rows, cols = w.shape
            if s.shape != (-(-rows // b0), -(-cols // b1)):
                raise ValueError(f"{sname}: shape {s.shape} does not match {name} {w.shape}")
            s_full = np.repeat(np.repeat(s, b0, axis=0), b1, axis=1)[:rows, :cols]
            w = w * s_full
        out[name] = torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32))
    return out


# ---------------------------------------------------------------- building blocks


def rms_norm(x, w, eps):
    """x * rsqrt(mean(x^2) + eps) * w over the last dimension, float32."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def linear(x, w, b=None):
    """x (T, in) @ w (out, in)^T (+ b)."""
    y = x @ w.t()
    return y + b if b is not None else y


def swiglu(x, wg, wu, wd):
    """down(silu(gate(x)) * up(x))."""
    return linear(torch.nn.functional.silu(linear(x, wg)) * linear(x, wu), wd)


def yarn_get_mscale(scale, mscale):
    return 0.1 * mscale * math.log(scale) + 1.0 if scale > 1 else 1.0


def rope_inv_freq(cfg, dim, options):
    """Inverse frequencies (dim/2,) in float64 for the config's rope (default, yarn, llama3).

    Computed in float64: these are the exact values a float32 implementation
    approximates; the tests compare with a tolerance.
    """
    base = float(cfg.get("rope_theta", 10000.0))
    freqs = 1.0 / base ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    rs = cfg.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "yarn":
        # official precompute_freqs_cis
        factor = float(rs["factor"])
        orig = float(rs.get("original_max_position_embeddings", 4096))
        beta_fast = float(rs.get("beta_fast", 32))
        beta_slow = float(rs.get("beta_slow", 1))

        def corr_dim(rot):
            return dim * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(base))

        if options["yarn_range"] == "round":
            low, high = round(corr_dim(beta_fast)), round(corr_dim(beta_slow))
        else:
            low, high = math.floor(corr_dim(beta_fast)), math.ceil(corr_dim(beta_slow))
        low, high = max(low, 0), min(high, dim - 1)
        if low == high:
            high += 0.001
        ramp = np.clip((np.arange(dim // 2, dtype=np.float64) - low) / (high - low), 0, 1)
        smooth = 1.0 - ramp
        freqs = freqs / factor * (1 - smooth) + freqs * smooth
    elif kind == "llama3":
        # HF _compute_llama3_parameters
        factor = float(rs["factor"])
        lo_f = float(rs.get("low_freq_factor", 1.0))
        hi_f = float(rs.get("high_freq_factor", 4.0))
        orig = float(rs["original_max_position_embeddings"])
        wavelen = 2 * math.pi / freqs
        smooth = (orig / wavelen - lo_f) / (hi_f - lo_f)
        mid = (1 - smooth) * freqs / factor + smooth * freqs
        freqs = np.where(wavelen < orig / hi_f, freqs, np.where(wavelen > orig / lo_f, freqs / factor, mid))
    elif kind not in (None, "default"):
        raise ValueError(f"unsupported rope_scaling type {kind}")
    return freqs


def rope_tables(cfg, dim, positions, options):
    """cos, sin (T, dim/2) float32 for integer positions; yarn cos/sin carry HF's mscale ratio."""
    freqs = rope_inv_freq(cfg, dim, options)
    ang = np.outer(np.asarray(positions, dtype=np.float64), freqs)
    cos, sin = np.cos(ang), np.sin(ang)
    rs = cfg.get("rope_scaling") or {}
    if rs.get("rope_type", rs.get("type")) == "yarn":
        # HF DeepseekV3YarnRotaryEmbedding multiplies cos/sin by
        # yarn_mscale(factor, mscale) / yarn_mscale(factor, mscale_all_dim); the
        # official code has a single mscale (ratio 1). Equal in real configs.
        f = float(rs["factor"])
        ratio = yarn_get_mscale(f, float(rs.get("mscale", 1))) / yarn_get_mscale(f, float(rs.get("mscale_all_dim", 0)))
        cos, sin = cos * ratio, sin * ratio
    return torch.from_numpy(cos.astype(np.float32)), torch.from_numpy(sin.astype(np.float32))


def rope_interleaved(x, cos, sin):
    """DeepSeek layout: rotate pairs (x[2i], x[2i+1]) by angle i. x (T, ..., d); cos/sin (T, d/2)."""
    shape = x.shape
    xp = x.reshape(shape[0], -1, shape[-1] // 2, 2)
    c = cos[:, None, :]
    s = sin[:, None, :]
    a, b = xp[..., 0], xp[..., 1]
    out = torch.stack((a * c - b * s, a * s + b * c), dim=-1)
    return out.reshape(shape)


def rope_half(x, cos, sin):
    """HF rotate_half layout: rotate pairs (x[i], x[i+d/2]) by angle i. x (T, ..., d)."""
    shape = x.shape
    d2 = shape[-1] // 2
    xr = x.reshape(shape[0], -1, shape[-1])
    a, b = xr[..., :d2], xr[..., d2:]
    c = cos[:, None, :]
    s = sin[:, None, :]
    return torch.cat((a * c - b * s, a * s + b * c), dim=-1).reshape(shape)


def causal_softmax(scores, q_pos, k_pos):
    """softmax over keys of scores (..., Tq, Tk) with keys after the query masked out."""
    mask = torch.from_numpy(np.asarray(k_pos)[None, :] > np.asarray(q_pos)[:, None])
    return torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)


def moe_route(cfg, x, gate_w, bias, options, use_bias=True, use_groups=True):
    """Official Gate.forward: expert indices (T, K) and weights (T, K) for normed input x (T, D).

    scores = softmax|sigmoid(x W_g^T); the correction bias is added for selection
    only; group-limited selection when n_group > 1 and topk_method is
    group_limited_greedy or noaux_tc (group score: max of the group without bias,
    sum of its top-2 biased scores with bias, as official); weights are the
    unbiased scores of the chosen experts, normalised when norm_topk_prob, then
    times routed_scaling_factor.
    """
    logits = linear(x, gate_w)
    func = cfg.get("scoring_func", "softmax")
    if func == "softmax":
        scores = torch.softmax(logits, dim=-1)
    elif func == "sigmoid":
        scores = torch.sigmoid(logits)
    else:
        raise ValueError(f"unsupported scoring_func {func}")
    with_bias = bias is not None and use_bias
    sel = scores + bias if with_bias else scores.clone()
    n_group = int(cfg.get("n_group") or 1)
    method = cfg.get("topk_method", "greedy")
    if use_groups and n_group > 1 and method in ("group_limited_greedy", "noaux_tc"):
        T, E = sel.shape
        g = sel.view(T, n_group, E // n_group)
        gscore = g.topk(2, dim=-1).values.sum(-1) if with_bias else g.max(-1).values
        keep = gscore.topk(int(cfg["topk_group"]), dim=-1).indices
        drop = torch.ones(T, n_group, dtype=torch.bool)
        drop.scatter_(1, keep, False)
        sel = g.masked_fill(drop[:, :, None], options["group_mask_value"]).view(T, E)
    idx = sel.topk(int(cfg["num_experts_per_tok"]), dim=-1).indices
    w = scores.gather(1, idx)
    if cfg.get("norm_topk_prob", False):
        w = w / w.sum(-1, keepdim=True)
    w = w * float(cfg.get("routed_scaling_factor", 1.0))
    return idx, w


# ---------------------------------------------------------------- model


class Model:
    """A loaded model; forward() gives logits, decode() the same one token at a time.

    trace: when a dict, full-path attention appends (layer, probs (H, Tq, Tk),
    q_pos) to trace["attn"], MoE layers append (layer, normed input) to
    trace["moe"] (used by tools/make_cases.py for its checks).
    """

    def __init__(self, path, options=None):
        self.cfg = load_config(path)
        self.W = load_weights(path, self.cfg)
        self.options = dict(DEFAULT_OPTIONS)
        self.options.update(options or {})
        self.trace = None
        c = self.cfg
        self.kind = c["model_type"]
        if self.kind not in DEEPSEEK + DENSE:
            raise ValueError(f"unsupported model_type {self.kind}")
        self.eps = float(c.get("rms_norm_eps", 1e-6))
        self.n_layers = int(c["num_hidden_layers"])
        self.H = int(c["num_attention_heads"])
        if self.kind in DEEPSEEK:
            self.nope = int(c["qk_nope_head_dim"])
            self.rope = int(c["qk_rope_head_dim"])
            self.vd = int(c["v_head_dim"])
            self.R = int(c["kv_lora_rank"])
            self.scale = (self.nope + self.rope) ** -0.5
            rs = c.get("rope_scaling") or {}
            if rs.get("rope_type", rs.get("type")) == "yarn":
                mad = float(rs.get("mscale_all_dim", 0) or 0)
                if mad:
                    m = yarn_get_mscale(float(rs["factor"]), mad)
                    self.scale *= m * m
        else:
            self.Hkv = int(c.get("num_key_value_heads", self.H))
            self.hd = int(c.get("head_dim") or c["hidden_size"] // self.H)
            self.scale = self.hd ** -0.5

    def w(self, name):
        return self.W[name]

    def wb(self, name):
        return self.W.get(name)

    def is_moe(self, i):
        c = self.cfg
        return (
            self.kind in DEEPSEEK
            and c.get("n_routed_experts")
            and i >= int(c.get("first_k_dense_replace", 0))
            and i % int(c.get("moe_layer_freq", 1)) == 0
        )

    # -- attention ----------------------------------------------------------

    def mla(self, i, x, pos, cache, absorbed):
        """MLA for rows x (T, D) at positions pos; cache dict gets "c" (t, R) and "pe" (t, rope).

        Naive (absorbed=False, official attn_impl "naive"): per-head keys
        k = [kv_b_k c, k_pe] and values kv_b_v c. Absorbed: q_nope is mapped
        into the latent space through kv_b's key part, scores against the cached
        latent directly, and the output goes back through kv_b's value part.
        """
        p = f"model.layers.{i}.self_attn."
        T = x.shape[0]
        H, nope, rope, vd, R = self.H, self.nope, self.rope, self.vd, self.R
        if self.wb(p + "q_a_proj.weight") is not None:
            q = linear(rms_norm(linear(x, self.w(p + "q_a_proj.weight")), self.w(p + "q_a_layernorm.weight"), self.eps),
                       self.w(p + "q_b_proj.weight"))
        else:
            q = linear(x, self.w(p + "q_proj.weight"))
        q = q.view(T, H, nope + rope)
        q_nope, q_pe = q[..., :nope], q[..., nope:]
        kv = linear(x, self.w(p + "kv_a_proj_with_mqa.weight"))
        c_kv = rms_norm(kv[:, :R], self.w(p + "kv_a_layernorm.weight"), self.eps)
        k_pe = kv[:, R:]
        cos, sin = rope_tables(self.cfg, rope, pos, self.options)
        rot = rope_interleaved if self.options["deepseek_rope"] == "interleaved" else rope_half
        q_pe = rot(q_pe, cos, sin)
        k_pe = rot(k_pe, cos, sin)
        cache["c"] = torch.cat((cache["c"], c_kv)) if "c" in cache else c_kv
        cache["pe"] = torch.cat((cache["pe"], k_pe)) if "pe" in cache else k_pe
        cache["pos"] = cache.get("pos", []) + list(pos)
        C, PE, kpos = cache["c"], cache["pe"], cache["pos"]
        wkv_b = self.w(p + "kv_b_proj.weight").view(H, nope + vd, R)
        if not absorbed:
            kvb = linear(C, self.w(p + "kv_b_proj.weight")).view(-1, H, nope + vd)
            k = torch.cat((kvb[..., :nope], PE[:, None, :].expand(-1, H, rope)), dim=-1)
            v = kvb[..., nope:]
            qf = torch.cat((q_nope, q_pe), dim=-1)
            scores = torch.einsum("shd,thd->hst", qf, k) * self.scale
            probs = causal_softmax(scores, pos, kpos)
            if self.trace is not None:
                self.trace.setdefault("attn", []).append((i, probs, list(pos)))
            out = torch.einsum("hst,thd->shd", probs, v)
        else:
            q_lat = torch.einsum("shd,hdc->shc", q_nope, wkv_b[:, :nope])
            scores = (torch.einsum("shc,tc->hst", q_lat, C) + torch.einsum("shr,tr->hst", q_pe, PE)) * self.scale
            probs = causal_softmax(scores, pos, kpos)
            o_lat = torch.einsum("hst,tc->shc", probs, C)
            out = torch.einsum("shc,hdc->shd", o_lat, wkv_b[:, nope:])
        return linear(out.reshape(T, H * vd), self.w(p + "o_proj.weight"))

    def gqa(self, i, x, pos, cache):
        """HF Qwen2/Llama attention with optional biases (present tensors are used), rotate_half RoPE."""
        p = f"model.layers.{i}.self_attn."
        T = x.shape[0]
        H, Hkv, hd = self.H, self.Hkv, self.hd
        q = linear(x, self.w(p + "q_proj.weight"), self.wb(p + "q_proj.bias")).view(T, H, hd)
        k = linear(x, self.w(p + "k_proj.weight"), self.wb(p + "k_proj.bias")).view(T, Hkv, hd)
        v = linear(x, self.w(p + "v_proj.weight"), self.wb(p + "v_proj.bias")).view(T, Hkv, hd)
        cos, sin = rope_tables(self.cfg, hd, pos, self.options)
        q = rope_half(q, cos, sin)
        k = rope_half(k, cos, sin)
        cache["k"] = torch.cat((cache["k"], k)) if "k" in cache else k
        cache["v"] = torch.cat((cache["v"], v)) if "v" in cache else v
        cache["pos"] = cache.get("pos", []) + list(pos)
        rep = H // Hkv  # query head h reads kv head h // rep
        K = cache["k"].repeat_interleave(rep, dim=1)
        V = cache["v"].repeat_interleave(rep, dim=1)
        scores = torch.einsum("shd,thd->hst", q, K) * self.scale
        probs = causal_softmax(scores, pos, cache["pos"])
        if self.trace is not None:
            self.trace.setdefault("attn", []).append((i, probs, list(pos)))
        out = torch.einsum("hst,thd->shd", probs, V).reshape(T, H * hd)
        return linear(out, self.w(p + "o_proj.weight"), self.wb(p + "o_proj.bias"))

    # -- feed-forward -------------------------------------------------------

    def mlp(self, i, x):
        p = f"model.layers.{i}.mlp."
        if not self.is_moe(i):
            return swiglu(x, self.w(p + "gate_proj.weight"), self.w(p + "up_proj.weight"), self.w(p + "down_proj.weight"))
        if self.trace is not None:
            self.trace.setdefault("moe", []).append((i, x))
        idx, wts = moe_route(self.cfg, x, self.w(p + "gate.weight"), self.wb(p + "gate.e_score_correction_bias"), self.options)
        out = torch.zeros_like(x)
        for t in range(x.shape[0]):
            for k in range(idx.shape[1]):
                e = int(idx[t, k])
                q = f"{p}experts.{e}."
                y = swiglu(x[t : t + 1], self.w(q + "gate_proj.weight"), self.w(q + "up_proj.weight"), self.w(q + "down_proj.weight"))
                out[t] += wts[t, k] * y[0]
        if int(self.cfg.get("n_shared_experts") or 0) > 0:
            q = p + "shared_experts."
            out = out + swiglu(x, self.w(q + "gate_proj.weight"), self.w(q + "up_proj.weight"), self.w(q + "down_proj.weight"))
        return out

    # -- stack --------------------------------------------------------------

    def block(self, i, h, pos, cache, absorbed):
        """Decoder layer i: h + attn(input_layernorm(h)), then + mlp(post_attention_layernorm(h))."""
        p = f"model.layers.{i}."
        x = rms_norm(h, self.w(p + "input_layernorm.weight"), self.eps)
        if self.kind in DEEPSEEK:
            h = h + self.mla(i, x, pos, cache, absorbed)
        else:
            h = h + self.gqa(i, x, pos, cache)
        x = rms_norm(h, self.w(p + "post_attention_layernorm.weight"), self.eps)
        return h + self.mlp(i, x)

    def head(self):
        if self.cfg.get("tie_word_embeddings", False):
            return self.w("model.embed_tokens.weight")
        return self.w("lm_head.weight")

    def run_main(self, ids, absorbed):
        """Main model. Returns (logits (n, V), hidden before model.norm (n, D), after it (n, D))."""
        n = len(ids)
        emb = self.w("model.embed_tokens.weight")
        caches = [dict() for _ in range(self.n_layers)]
        steps = [list(range(n))] if not absorbed else [[t] for t in range(n)]
        hs = []
        for pos in steps:
            h = emb[torch.tensor([ids[t] for t in pos])]
            for i in range(self.n_layers):
                h = self.block(i, h, pos, caches[i], absorbed)
            hs.append(h)
        h = torch.cat(hs)
        hn = rms_norm(h, self.w("model.norm.weight"), self.eps)
        return linear(hn, self.head()), h, hn

    def forward(self, ids):
        """Full-sequence logits (n, V) (naive attention); also keeps the hidden states for mtp()."""
        logits, self.h_pre, self.h_post = self.run_main(ids, absorbed=False)
        return logits

    def decode(self, ids):
        """The same logits computed one token at a time through the cache (absorbed MLA)."""
        logits, self.h_pre_dec, self.h_post_dec = self.run_main(ids, absorbed=True)
        return logits

    def n_mtp(self):
        return int(self.cfg.get("num_nextn_predict_layers") or 0) if self.kind == "deepseek_v3" else 0

    def mtp(self, ids, absorbed=False, k=0):
        """MTP module k logits ((n-1), V); call forward() (or decode() for absorbed) first.

        Row i (0 <= i < n-1) predicts token i+2: x_i = eh_proj([enorm(emb(t_{i+1})), hnorm(h_i)])
        (embedding first, as vLLM/SGLang), then the layer-L block (L = num_hidden_layers + k)
        with causal attention and rope positions 0..n-2, then shared_head.norm and shared_head.head.
        h_i is the main model's final hidden state after model.norm (see DEFAULT_OPTIONS).
        """
        if k != 0:
            raise ValueError("only the first MTP module (k=0) is implemented")
        L = self.n_layers + k
        p = f"model.layers.{L}."
        n = len(ids)
        if self.options["mtp_hidden"] == "post_norm":
            h_main = self.h_post_dec if absorbed else self.h_post
        else:
            h_main = self.h_pre_dec if absorbed else self.h_pre
        emb = self.wb(p + "embed_tokens.weight")
        if emb is None:
            emb = self.w("model.embed_tokens.weight")
        e = rms_norm(emb[torch.tensor(ids[1:])], self.w(p + "enorm.weight"), self.eps)
        hh = rms_norm(h_main[: n - 1], self.w(p + "hnorm.weight"), self.eps)
        x = linear(torch.cat((e, hh), dim=-1), self.w(p + "eh_proj.weight"))
        cache = {}
        steps = [list(range(n - 1))] if not absorbed else [[t] for t in range(n - 1)]
        outs = []
        for pos in steps:
            outs.append(self.block(L, x[pos[0] : pos[-1] + 1], pos, cache, absorbed))
        h = torch.cat(outs)
        hn = rms_norm(h, self.w(p + "shared_head.norm.weight"), self.eps)
        hw = self.wb(p + "shared_head.head.weight")
        return linear(hn, hw if hw is not None else self.head())


def write_f32(path, t):
    np.ascontiguousarray(t.detach().numpy(), dtype="<f4").tofile(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="Hugging Face model directory")
    ap.add_argument("--ids", required=True, help="comma-separated token ids, or @FILE (ids.txt)")
    ap.add_argument("--out", help="logits output (float32, n_ids x vocab)")
    ap.add_argument("--mtp-out", help="MTP logits output (float32, (n_ids-1) x vocab)")
    ap.add_argument("--decode", action="store_true", help="one token at a time through the cache (absorbed MLA)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    text = open(a.ids[1:]).read() if a.ids.startswith("@") else a.ids
    ids = [int(s) for s in text.strip().split(",") if s.strip()]
    m = Model(a.model)
    with torch.no_grad():
        logits = m.decode(ids) if a.decode else m.forward(ids)
        if a.out:
            write_f32(a.out, logits)
        print(f"{a.model}: {len(ids)} ids, logits {tuple(logits.shape)}, max|logit| {logits.abs().max().item():.4f}")
        if a.mtp_out:
            if m.n_mtp() < 1:
                sys.exit(f"{a.model}: config has no MTP module (num_nextn_predict_layers)")
            mt = m.mtp(ids, absorbed=a.decode)
            write_f32(a.mtp_out, mt)
            print(f"mtp logits {tuple(mt.shape)}, max|logit| {mt.abs().max().item():.4f}")


if __name__ == "__main__":
    main()
