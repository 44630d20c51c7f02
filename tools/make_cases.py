#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Builds the small random-weight reference cases in tests/data/<case>/ and their expected logits.

Each case: config.json (HF layout), model.safetensors (or 2 shards + index),
ids.txt, logits.bin (float32, n_ids x vocab, all positions) and for MTP cases
mtp_logits.bin ((n_ids-1) x vocab), computed by tools/reference.py from the files
as written (so the reader and the dequantisation are part of what is tested).
Deterministic: fixed seeds, numpy PCG64, torch on one thread.

    /usr/bin/python3 tools/make_cases.py            # all cases + tests/data/v3_671b/config.json
    /usr/bin/python3 tools/make_cases.py qwen2 llama  # some cases
    /usr/bin/python3 tools/make_cases.py --official DeepSeek-V3/inference/model.py
        # also run the official DeepSeek-V3 inference code on the DeepSeek cases

Self-checks (the script fails if one does not hold): codec round trips, the
rope layouts against the official complex and HF rotate_half formulations,
the token-by-token cache path (absorbed MLA for DeepSeek) against the full
path to 1e-4, attention far from uniform, and for the routers that the
correction bias and the group limit each change some selection.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference as ref  # noqa: E402
import safetensors_io as st  # noqa: E402

ROOT = os.path.dirname(HERE)
DATA = os.path.join(ROOT, "tests", "data")

# ---------------------------------------------------------------- configs

DS_AUTO_MAP = {
    "deepseek_v3": {
        "AutoConfig": "configuration_deepseek.DeepseekV3Config",
        "AutoModel": "modeling_deepseek.DeepseekV3Model",
        "AutoModelForCausalLM": "modeling_deepseek.DeepseekV3ForCausalLM",
    },
    "deepseek_v2": {
        "AutoConfig": "configuration_deepseek.DeepseekV2Config",
        "AutoModel": "modeling_deepseek.DeepseekV2Model",
        "AutoModelForCausalLM": "modeling_deepseek.DeepseekV2ForCausalLM",
    },
}

FP8_QUANT = {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]}

TORCH_DTYPE = {"F32": "float32", "BF16": "bfloat16", "F16": "float16", "FP8": "bfloat16"}


def deepseek_config(model_type, **kw):
    """A complete DeepSeek V2/V3 config.json dict (keys as in the official releases)."""
    v3 = model_type == "deepseek_v3"
    c = {
        "architectures": ["DeepseekV3ForCausalLM" if v3 else "DeepseekV2ForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "auto_map": DS_AUTO_MAP[model_type],
        "aux_loss_alpha": 0.001,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "ep_size": 1,
        "first_k_dense_replace": 1,
        "hidden_act": "silu",
        "hidden_size": 64,
        "initializer_range": 0.02,
        "intermediate_size": 128,
        "kv_lora_rank": 32,
        "max_position_embeddings": 4096,
        "model_type": model_type,
        "moe_intermediate_size": 16,
        "moe_layer_freq": 1,
        "n_group": 1,
        "n_routed_experts": 16,
        "n_shared_experts": 1,
        "norm_topk_prob": False,
        "num_attention_heads": 4,
        "num_experts_per_tok": 4,
        "num_hidden_layers": 3,
        "num_key_value_heads": 4,
        "pretraining_tp": 1,
        "q_lora_rank": 48,
        "qk_nope_head_dim": 16,
        "qk_rope_head_dim": 16,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 10000,
        "routed_scaling_factor": 1.0,
        "scoring_func": "softmax",
        "seq_aux": True,
        "tie_word_embeddings": False,
        "topk_group": 1,
        "topk_method": "greedy",
        "torch_dtype": "bfloat16",
        "transformers_version": "4.46.3" if v3 else "4.33.1",
        "use_cache": True,
        "v_head_dim": 24,
        "vocab_size": 256,
    }
    if v3:
        c["num_nextn_predict_layers"] = 1
    c.update(kw)
    return c


def v3_common(**kw):
    base = dict(
        n_group=4, topk_group=2, topk_method="noaux_tc", scoring_func="sigmoid", norm_topk_prob=True,
        routed_scaling_factor=2.5, num_experts_per_tok=4, n_routed_experts=16, n_shared_experts=1,
        first_k_dense_replace=1, num_hidden_layers=3,
    )
    base.update(kw)
    return deepseek_config("deepseek_v3", **base)


def qwen2_config(**kw):
    c = {
        "architectures": ["Qwen2ForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "hidden_act": "silu",
        "hidden_size": 64,
        "initializer_range": 0.02,
        "intermediate_size": 128,
        "max_position_embeddings": 4096,
        "max_window_layers": 2,
        "model_type": "qwen2",
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-06,
        "rope_theta": 10000.0,
        "sliding_window": 4096,
        "tie_word_embeddings": True,
        "torch_dtype": "float16",
        "transformers_version": "4.44.0",
        "use_cache": True,
        "use_mrope": False,
        "use_sliding_window": False,
        "vocab_size": 256,
    }
    c.update(kw)
    return c


def llama_config(**kw):
    c = {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "hidden_act": "silu",
        "hidden_size": 128,
        "initializer_range": 0.02,
        "intermediate_size": 192,
        "max_position_embeddings": 256,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": 8,
        "num_hidden_layers": 2,
        "num_key_value_heads": 2,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": {
            "factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
            "original_max_position_embeddings": 32, "rope_type": "llama3",
        },
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.43.0.dev0",
        "use_cache": True,
        "vocab_size": 256,
    }
    c.update(kw)
    return c


def v3_671b_config():
    """The DeepSeek-V3 (671B) release config.json values (config only; no weights)."""
    return deepseek_config(
        "deepseek_v3",
        bos_token_id=0, eos_token_id=1, first_k_dense_replace=3, hidden_size=7168, intermediate_size=18432,
        kv_lora_rank=512, max_position_embeddings=163840, moe_intermediate_size=2048, moe_layer_freq=1,
        n_group=8, n_routed_experts=256, n_shared_experts=1, norm_topk_prob=True, num_attention_heads=128,
        num_experts_per_tok=8, num_hidden_layers=61, num_key_value_heads=128, num_nextn_predict_layers=1,
        q_lora_rank=1536, qk_nope_head_dim=128, qk_rope_head_dim=64, quantization_config=FP8_QUANT,
        rms_norm_eps=1e-06,
        rope_scaling={"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0, "mscale_all_dim": 1.0,
                      "original_max_position_embeddings": 4096, "type": "yarn"},
        rope_theta=10000, routed_scaling_factor=2.5, scoring_func="sigmoid", seq_aux=True,
        tie_word_embeddings=False, topk_group=4, topk_method="noaux_tc", torch_dtype="bfloat16",
        transformers_version="4.33.1", use_cache=True, v_head_dim=128, vocab_size=129280,
    )


# name, config, storage ("F32" | "BF16" | "F16" | "FP8" (+ 2 shards)), n_ids, seed
# (v3_f32 and v3_fp8 get a -0.5 offset on e_score_correction_bias: see gen_deepseek)
BIAS_OFFSET = {"v3_f32": -0.5, "v3_fp8": -0.5}
CASES = [
    ("v3_f32", v3_common(torch_dtype="float32"), "F32", 16, 101),
    ("v3_bf16", v3_common(torch_dtype="bfloat16"), "BF16", 16, 102),
    ("v3_fp8", v3_common(hidden_size=160, q_lora_rank=144, intermediate_size=200, moe_intermediate_size=16,
                         quantization_config=FP8_QUANT, torch_dtype="bfloat16"), "FP8", 12, 103),
    ("v2_lite", deepseek_config("deepseek_v2", q_lora_rank=None, scoring_func="softmax", topk_method="greedy",
                                n_group=1, topk_group=1, norm_topk_prob=False, routed_scaling_factor=1.0,
                                n_shared_experts=2, n_routed_experts=16, num_experts_per_tok=6,
                                first_k_dense_replace=1, num_hidden_layers=3, v_head_dim=16), "BF16", 12, 104),
    ("v2_group", deepseek_config("deepseek_v2", q_lora_rank=48, scoring_func="softmax",
                                 topk_method="group_limited_greedy", n_group=4, topk_group=2,
                                 norm_topk_prob=False, routed_scaling_factor=16.0, n_shared_experts=1,
                                 n_routed_experts=16, num_experts_per_tok=4, first_k_dense_replace=0,
                                 moe_layer_freq=1, num_hidden_layers=2), "BF16", 12, 105),
    ("v3_yarn", v3_common(num_hidden_layers=2, qk_rope_head_dim=32, qk_nope_head_dim=16, v_head_dim=16,
                          n_routed_experts=8, n_group=2, topk_group=1, num_experts_per_tok=2,
                          max_position_embeddings=2560, num_nextn_predict_layers=0, torch_dtype="float32",
                          rope_scaling={"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 0.707,
                                        "mscale_all_dim": 0.707, "original_max_position_embeddings": 64,
                                        "type": "yarn"}), "F32", 160, 106),
    ("qwen2", qwen2_config(), "F16", 12, 107),
    ("llama", llama_config(), "BF16", 48, 108),
]

# ---------------------------------------------------------------- weights
# Standard deviations are gain / sqrt(fan_in), so every projection's output is
# O(1) whatever the width; query/key projections get gain 1.6 so that attention
# is far from uniform (checked below). Norm weights 1 + 0.1 N(0,1); embeddings
# N(0,1); lm heads gain 2 (logits of a few units).

G_QK = 1.6


def normal(rng, shape, std):
    return (rng.standard_normal(shape) * std).astype(np.float32)


def mat(rng, out, inp, gain=1.0):
    return normal(rng, (out, inp), gain / np.sqrt(inp))


def norm_w(rng, n):
    return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)


def gen_mlp(rng, W, p, D, inter):
    W[p + "gate_proj.weight"] = mat(rng, inter, D)
    W[p + "up_proj.weight"] = mat(rng, inter, D)
    W[p + "down_proj.weight"] = mat(rng, D, inter)


def gen_deepseek(cfg, rng, bias_offset):
    D, V, H = cfg["hidden_size"], cfg["vocab_size"], cfg["num_attention_heads"]
    nope, rope, vd, R = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"], cfg["kv_lora_rank"]
    ql = cfg["q_lora_rank"]
    L = cfg["num_hidden_layers"]
    n_mtp = int(cfg.get("num_nextn_predict_layers") or 0) if cfg["model_type"] == "deepseek_v3" else 0
    E, mi = cfg["n_routed_experts"], cfg["moe_intermediate_size"]
    W = {"model.embed_tokens.weight": normal(rng, (V, D), 1.0)}
    for i in range(L + n_mtp):
        p = f"model.layers.{i}."
        W[p + "input_layernorm.weight"] = norm_w(rng, D)
        W[p + "post_attention_layernorm.weight"] = norm_w(rng, D)
        a = p + "self_attn."
        if ql:
            W[a + "q_a_proj.weight"] = mat(rng, ql, D)
            W[a + "q_a_layernorm.weight"] = norm_w(rng, ql)
            W[a + "q_b_proj.weight"] = mat(rng, H * (nope + rope), ql, G_QK)
        else:
            W[a + "q_proj.weight"] = mat(rng, H * (nope + rope), D, G_QK)
        kva = mat(rng, R + rope, D)
        kva[R:] *= G_QK  # the rope key is not normalised: give it the query/key gain
        W[a + "kv_a_proj_with_mqa.weight"] = kva
        W[a + "kv_a_layernorm.weight"] = norm_w(rng, R)
        kvb = mat(rng, H * (nope + vd), R).reshape(H, nope + vd, R)
        kvb[:, :nope] *= G_QK
        W[a + "kv_b_proj.weight"] = kvb.reshape(H * (nope + vd), R)
        W[a + "o_proj.weight"] = mat(rng, D, H * vd)
        m = p + "mlp."
        moe = i >= cfg["first_k_dense_replace"] and i % cfg["moe_layer_freq"] == 0
        if not moe:
            gen_mlp(rng, W, m, D, cfg["intermediate_size"])
        else:
            W[m + "gate.weight"] = mat(rng, E, D)
            if cfg["topk_method"] == "noaux_tc":
                # sigmoid scores spread about 0.2 here; a bias of similar size changes
                # selections. A common offset changes no selection in the official
                # semantics but makes many biased scores negative, so masking excluded
                # groups with 0 (HF) instead of -inf (official) gives different experts.
                W[m + "gate.e_score_correction_bias"] = bias_offset + normal(rng, (E,), 0.15)
            for e in range(E):
                gen_mlp(rng, W, f"{m}experts.{e}.", D, mi)
            if cfg["n_shared_experts"]:
                gen_mlp(rng, W, m + "shared_experts.", D, mi * cfg["n_shared_experts"])
        if i >= L:
            W[p + "enorm.weight"] = norm_w(rng, D)
            W[p + "hnorm.weight"] = norm_w(rng, D)
            W[p + "eh_proj.weight"] = mat(rng, D, 2 * D)
            W[p + "shared_head.norm.weight"] = norm_w(rng, D)
            W[p + "shared_head.head.weight"] = mat(rng, V, D, 2.0)
            W[p + "embed_tokens.weight"] = W["model.embed_tokens.weight"].copy()
    W["model.norm.weight"] = norm_w(rng, D)
    W["lm_head.weight"] = mat(rng, V, D, 2.0)
    return W


def gen_dense(cfg, rng):
    D, V, H = cfg["hidden_size"], cfg["vocab_size"], cfg["num_attention_heads"]
    Hkv = cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or D // H
    qkv_bias = cfg["model_type"] == "qwen2" or cfg.get("attention_bias", False)
    # a tied embedding is also the lm head: smaller, so logits stay a few units
    W = {"model.embed_tokens.weight": normal(rng, (V, D), 0.25 if cfg["tie_word_embeddings"] else 1.0)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        W[p + "input_layernorm.weight"] = norm_w(rng, D)
        W[p + "post_attention_layernorm.weight"] = norm_w(rng, D)
        a = p + "self_attn."
        W[a + "q_proj.weight"] = mat(rng, H * hd, D, G_QK)
        W[a + "k_proj.weight"] = mat(rng, Hkv * hd, D, G_QK)
        W[a + "v_proj.weight"] = mat(rng, Hkv * hd, D)
        if qkv_bias:
            W[a + "q_proj.bias"] = normal(rng, (H * hd,), 0.5)
            W[a + "k_proj.bias"] = normal(rng, (Hkv * hd,), 0.5)
            W[a + "v_proj.bias"] = normal(rng, (Hkv * hd,), 0.5)
        W[a + "o_proj.weight"] = mat(rng, D, H * hd)
        gen_mlp(rng, W, p + "mlp.", D, cfg["intermediate_size"])
    W["model.norm.weight"] = norm_w(rng, D)
    if not cfg["tie_word_embeddings"]:
        W["lm_head.weight"] = mat(rng, V, D, 2.0)
    return W


# ---------------------------------------------------------------- storage


def is_fp8_weight(name):
    """The official V3 release stores the linear weights inside decoder blocks as F8_E4M3;
    embeddings, lm heads, norms, the router (gate) and the MTP eh_proj stay BF16, the bias F32."""
    if not name.startswith("model.layers.") or not name.endswith("_proj.weight"):
        return False
    return ".self_attn." in name or ".mlp." in name


def quantize_fp8(w, block=128):
    """(out, in) float32 -> (F8 bits, F32 scale_inv (ceil(out/128), ceil(in/128))) with amax/448 block scales."""
    rows, cols = w.shape
    br, bc = -(-rows // block), -(-cols // block)
    s = np.ones((br, bc), dtype=np.float32)
    for i in range(br):
        for j in range(bc):
            amax = float(np.abs(w[i * block : (i + 1) * block, j * block : (j + 1) * block]).max())
            if amax > 0:
                s[i, j] = np.float32(amax / 448.0)
    full = np.repeat(np.repeat(s, block, 0), block, 1)[:rows, :cols]
    return st.f8e4m3_encode(w / full), s


def encode(W, storage):
    """float32 weights -> dict name -> (dtype, storage array) per the case's storage policy."""
    out = {}
    for name, w in W.items():
        if name.endswith("e_score_correction_bias"):
            out[name] = ("F32", w)  # F32 in the official release
        elif storage == "F32":
            out[name] = ("F32", w)
        elif storage == "F16":
            out[name] = ("F16", w.astype(np.float16))
        elif storage == "FP8" and is_fp8_weight(name):
            q, s = quantize_fp8(w)
            out[name] = ("F8_E4M3", q)
            out[name + "_scale_inv"] = ("F32", s)
        else:
            out[name] = ("BF16", st.bf16_encode(w))
    return out


def write_model(d, cfg, tensors, shards):
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    if shards == 1:
        st.write_safetensors(os.path.join(d, "model.safetensors"), tensors)
        return ["model.safetensors"]
    # split by layer: the first half of the decoder layers in shard 1, the rest
    # (later layers, norm, lm_head) in shard 2; embeddings in shard 1
    def layer_of(n):
        return int(n.split(".")[2]) if n.startswith("model.layers.") else (-1 if "embed_tokens" in n else 1 << 30)
    names = sorted(tensors, key=lambda n: (layer_of(n), n))
    cut = len(names) // 2
    files, wmap, total = [], {}, 0
    for k, part in enumerate((names[:cut], names[cut:])):
        fn = f"model-{k + 1:05d}-of-00002.safetensors"
        total += st.write_safetensors(os.path.join(d, fn), {n: tensors[n] for n in part})
        wmap.update({n: fn for n in part})
        files.append(fn)
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(wmap.items()))}, f, indent=2)
        f.write("\n")
    return files


# ---------------------------------------------------------------- checks


def check_codecs():
    # BF16: exact on representable values, ties to even
    x = np.array([1.0, -2.5, 1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8, 1.0 + 2 ** -8 + 2 ** -20], np.float32)
    got = st.bf16_decode(st.bf16_encode(x))
    want = np.array([1.0, -2.5, 1.0, 1.0 + 4 * 2 ** -8, 1.0 + 2 * 2 ** -8], np.float32)
    assert np.array_equal(got, want), (got, want)
    # F8_E4M3: decode table landmarks, exact round trip of every finite code
    codes = np.arange(256, dtype=np.uint8)
    vals = st.f8e4m3_decode(codes)
    assert vals[0x7E] == 448 and vals[0xFE] == -448 and np.isnan(vals[0x7F]) and np.isnan(vals[0xFF])
    assert vals[0x01] == 2.0 ** -9 and vals[0x08] == 2.0 ** -6 and vals[0x38] == 1.0 and vals[0x07] == 7 * 2.0 ** -9
    finite = ~np.isnan(vals)
    assert np.array_equal(st.f8e4m3_encode(vals[finite]), codes[finite])
    # ties to even, saturation, NaN
    t = np.array([1.0625, 1.1875, 500.0, -1e6, 2.0 ** -10, 3 * 2.0 ** -10, np.nan], np.float32)
    e = st.f8e4m3_encode(t)
    assert list(e[:6]) == [0x38, 0x3A, 0x7E, 0xFE, 0x00, 0x02] and e[6] == 0x7F, e


def check_rope_layouts():
    torch.manual_seed(0)
    T, H, d = 5, 3, 16
    x = torch.randn(T, H, d)
    ang = torch.outer(torch.arange(T, dtype=torch.float32), torch.rand(d // 2))
    cos, sin = ang.cos(), ang.sin()
    # official apply_rotary_emb: view_as_complex on (2i, 2i+1) pairs times polar(1, angle)
    cis = torch.polar(torch.ones_like(ang), ang)
    off = torch.view_as_real(torch.view_as_complex(x.view(T, H, d // 2, 2)) * cis[:, None, :]).flatten(2)
    assert torch.allclose(ref.rope_interleaved(x, cos, sin), off, atol=1e-6)
    # HF apply_rotary_pos_emb: x*cos + rotate_half(x)*sin with cos = cat(c, c)
    cf, sf = torch.cat((cos, cos), -1)[:, None], torch.cat((sin, sin), -1)[:, None]
    rh = torch.cat((-x[..., d // 2 :], x[..., : d // 2]), -1)
    assert torch.allclose(ref.rope_half(x, cos, sin), x * cf + rh * sf, atol=1e-6)


def check_fp8_weights(W, tensors):
    """Dequantised F8 weights are within E4M3 rounding of the originals; blocks are partial somewhere."""
    partial = 0
    for name, (dt, q) in tensors.items():
        if dt != "F8_E4M3":
            continue
        s = tensors[name + "_scale_inv"][1]
        rows, cols = q.shape
        full = np.repeat(np.repeat(s, 128, 0), 128, 1)[:rows, :cols]
        deq = st.f8e4m3_decode(q) * full
        w = W[name]
        assert np.all(np.abs(deq - w) <= 2.0 ** -4 * np.abs(w) + full * 2.0 ** -9), name
        partial += rows % 128 != 0 and cols % 128 != 0 and s.shape[0] > 1 and s.shape[1] > 1
    assert partial > 0, "no F8 weight has partial 128x128 blocks in both directions"


def check_llama3_bands(cfg):
    """The llama3 remap keeps, smooths and divides at least one frequency each."""
    rs = cfg["rope_scaling"]
    hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    wl = 2 * np.pi * cfg["rope_theta"] ** (np.arange(0, hd, 2) / hd)
    orig = rs["original_max_position_embeddings"]
    hi, lo = orig / rs["high_freq_factor"], orig / rs["low_freq_factor"]
    assert (wl < hi).any() and (wl > lo).any() and ((wl >= hi) & (wl <= lo)).any(), wl


def attn_stats(trace):
    """Mean over layers, heads and query positions t >= 1 of the max attention probability,
    and the same mean for uniform causal attention (1/(t+1))."""
    mx, uni = [], []
    for _, probs, qpos in trace.get("attn", []):
        for s, t in enumerate(qpos):
            if t >= 1:
                mx.append(probs[:, s, :].max(-1).values.mean().item())
                uni.append(1.0 / (t + 1))
    return float(np.mean(mx)), float(np.mean(uni))


def router_stats(m):
    """Per MoE layer input: tokens whose selection changes without the bias / without the group limit."""
    cfg, res = m.cfg, {"tokens": 0, "bias_changes": 0, "group_changes": 0}
    for i, x in m.trace.get("moe", []):
        p = f"model.layers.{i}.mlp."
        gw, b = m.w(p + "gate.weight"), m.wb(p + "gate.e_score_correction_bias")
        full, _ = ref.moe_route(cfg, x, gw, b, m.options)
        nob, _ = ref.moe_route(cfg, x, gw, b, m.options, use_bias=False)
        nog, _ = ref.moe_route(cfg, x, gw, b, m.options, use_groups=False)
        for t in range(x.shape[0]):
            s = set(full[t].tolist())
            res["tokens"] += 1
            res["bias_changes"] += s != set(nob[t].tolist())
            res["group_changes"] += s != set(nog[t].tolist())
    return res


def variant_diff(d, ids, base, options, mtp=False):
    m = ref.Model(d, options)
    out = m.forward(ids)
    if mtp:
        out = m.mtp(ids)
    return (out - base).abs().max().item()


def sha(path):
    import hashlib

    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def build_case(name, cfg, storage, n_ids, seed, report):
    d = os.path.join(DATA, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    rng = np.random.default_rng(seed)
    if cfg["model_type"] in ref.DEEPSEEK:
        W = gen_deepseek(cfg, rng, BIAS_OFFSET.get(name, 0.0))
    else:
        W = gen_dense(cfg, rng)
    tensors = encode(W, storage)
    files = write_model(d, cfg, tensors, 2 if storage == "FP8" else 1)
    if storage == "FP8":
        check_fp8_weights(W, tensors)
    if (cfg.get("rope_scaling") or {}).get("rope_type") == "llama3":
        check_llama3_bands(cfg)
    ids = [int(v) for v in rng.integers(2, cfg["vocab_size"], size=n_ids)]
    with open(os.path.join(d, "ids.txt"), "w") as f:
        f.write(",".join(map(str, ids)) + "\n")

    m = ref.Model(d)
    m.trace = {}
    logits = m.forward(ids)
    trace = m.trace
    m.trace = None
    ref.write_f32(os.path.join(d, "logits.bin"), logits)
    dec = m.decode(ids)
    r = {"name": name, "n_ids": n_ids, "storage": storage, "files": files}
    r["decode_diff"] = (dec - logits).abs().max().item()
    assert r["decode_diff"] < 1e-4, f"{name}: cache/absorbed path differs by {r['decode_diff']}"
    r["max_logit"] = logits.abs().max().item()
    r["attn_max"], r["attn_uniform"] = attn_stats(trace)
    assert r["attn_max"] > 2 * r["attn_uniform"], f"{name}: attention too close to uniform {r['attn_max']}"
    if m.n_mtp():
        mt = m.mtp(ids)
        ref.write_f32(os.path.join(d, "mtp_logits.bin"), mt)
        mtd = m.mtp(ids, absorbed=True)
        r["mtp_decode_diff"] = (mtd - mt).abs().max().item()
        assert r["mtp_decode_diff"] < 1e-4, f"{name}: MTP cache path differs by {r['mtp_decode_diff']}"
        r["mtp_max_logit"] = mt.abs().max().item()
        r["mtp_pre_norm_diff"] = variant_diff(d, ids, mt, {"mtp_hidden": "pre_norm"}, mtp=True)
    if trace.get("moe"):
        m.trace = trace
        rs = router_stats(m)
        m.trace = None
        r.update(rs)
        if m.wb(f"model.layers.{trace['moe'][0][0]}.mlp.gate.e_score_correction_bias") is not None:
            assert rs["bias_changes"] > 0, f"{name}: the correction bias never changes a selection"
        if int(cfg.get("n_group") or 1) > 1:
            assert rs["group_changes"] > 0, f"{name}: the group limit never changes a selection"
    if cfg["model_type"] in ref.DEEPSEEK:
        r["rope_half_diff"] = variant_diff(d, ids, logits, {"deepseek_rope": "half"})
        if (cfg.get("rope_scaling") or {}).get("type") == "yarn":
            r["yarn_round_diff"] = variant_diff(d, ids, logits, {"yarn_range": "round"})
        if int(cfg.get("n_group") or 1) > 1:
            r["group_mask0_diff"] = variant_diff(d, ids, logits, {"group_mask_value": 0.0})
    r["sizes"] = {fn: os.path.getsize(os.path.join(d, fn)) for fn in sorted(os.listdir(d))}
    r["shapes"] = {k: list(v.shape) for k, v in W.items() if ".layers.0." in k or not k.startswith("model.layers.")}
    report.append(r)
    extras = " ".join(f"{k}={r[k]:.3g}" for k in ("mtp_decode_diff", "mtp_max_logit", "mtp_pre_norm_diff",
                                                   "rope_half_diff", "yarn_round_diff", "group_mask0_diff") if k in r)
    moe = f" router: {r['bias_changes']}/{r['tokens']} bias-changed, {r['group_changes']}/{r['tokens']} group-changed" \
        if "tokens" in r else ""
    print(f"{name:9s} n={n_ids:3d} V={cfg['vocab_size']} {storage:4s} {sum(r['sizes'].values()) / 1024:7.1f} KiB "
          f"max|logit|={r['max_logit']:.3f} decode_diff={r['decode_diff']:.2e} "
          f"mean max attn={r['attn_max']:.3f} (uniform {r['attn_uniform']:.3f}){moe} {extras}")
    return r


def check_cli(name):
    """The command line of reference.py reproduces logits.bin (and the cache path matches it)."""
    d = os.path.join(DATA, name)
    with tempfile.TemporaryDirectory() as tmp:
        for extra in ([], ["--decode"]):
            out = os.path.join(tmp, "l.bin")
            subprocess.run([sys.executable, os.path.join(HERE, "reference.py"), d, "--ids",
                            "@" + os.path.join(d, "ids.txt"), "--out", out] + extra, check=True, stdout=subprocess.DEVNULL)
            a = np.fromfile(out, "<f4")
            b = np.fromfile(os.path.join(d, "logits.bin"), "<f4")
            assert a.shape == b.shape and np.abs(a - b).max() < 1e-4, f"CLI {extra} differs on {name}"


# HF tensor-name components -> names in the official inference/model.py (as its convert.py maps them)
OFFICIAL_NAMES = {
    "embed_tokens": "embed", "self_attn": "attn", "mlp": "ffn", "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm", "q_proj": "wq", "q_a_proj": "wq_a", "q_a_layernorm": "q_norm",
    "q_b_proj": "wq_b", "kv_a_proj_with_mqa": "wkv_a", "kv_a_layernorm": "kv_norm", "kv_b_proj": "wkv_b",
    "o_proj": "wo", "gate_proj": "w1", "down_proj": "w2", "up_proj": "w3", "e_score_correction_bias": "bias",
    "lm_head": "head",
}


def check_official(model_py, names):
    """Optional cross-check: run the official DeepSeek-V3 inference/model.py (path given, not
    shipped here) on the DeepSeek cases, both its "naive" and "absorb" attention, float32,
    all positions, and compare with logits.bin. Its triton kernels are not needed for
    float weights (F8 cases are given the dequantised weights); F.rms_norm is supplied
    for torch < 2.4."""
    import importlib.util
    import types

    kernel = types.ModuleType("kernel")
    for fn in ("act_quant", "weight_dequant", "fp8_gemm"):
        setattr(kernel, fn, None)
    sys.modules["kernel"] = kernel
    if not hasattr(torch.nn.functional, "rms_norm"):
        torch.nn.functional.rms_norm = lambda x, shape, w, eps: ref.rms_norm(x, w, eps)
    torch.set_default_dtype(torch.float32)
    for name in names:
        d = os.path.join(DATA, name)
        m = ref.Model(d)
        c = m.cfg
        if c["model_type"] not in ref.DEEPSEEK:
            continue
        ids = [int(v) for v in open(os.path.join(d, "ids.txt")).read().split(",")]
        want = torch.from_numpy(np.fromfile(os.path.join(d, "logits.bin"), "<f4").reshape(len(ids), -1))
        rs = c.get("rope_scaling") or {}
        yarn = rs.get("type") == "yarn"
        for impl in ("naive", "absorb"):
            spec = importlib.util.spec_from_file_location("official_model", model_py)
            off = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(off)
            off.attn_impl = impl
            args = off.ModelArgs(
                max_batch_size=1, max_seq_len=int(c["max_position_embeddings"]) if yarn else 4096, dtype="bf16",
                vocab_size=c["vocab_size"], dim=c["hidden_size"], inter_dim=c["intermediate_size"],
                moe_inter_dim=c["moe_intermediate_size"], n_layers=c["num_hidden_layers"],
                n_dense_layers=c["first_k_dense_replace"], n_heads=c["num_attention_heads"],
                n_routed_experts=c["n_routed_experts"], n_shared_experts=c["n_shared_experts"],
                n_activated_experts=c["num_experts_per_tok"], n_expert_groups=c["n_group"],
                n_limited_groups=c["topk_group"], score_func=c["scoring_func"],
                route_scale=c["routed_scaling_factor"], q_lora_rank=c["q_lora_rank"] or 0,
                kv_lora_rank=c["kv_lora_rank"], qk_nope_head_dim=c["qk_nope_head_dim"],
                qk_rope_head_dim=c["qk_rope_head_dim"], v_head_dim=c["v_head_dim"],
                original_seq_len=int(rs.get("original_max_position_embeddings", 4096)),
                rope_theta=float(c["rope_theta"]), rope_factor=float(rs.get("factor", 1)),
                beta_fast=int(rs.get("beta_fast", 32)), beta_slow=int(rs.get("beta_slow", 1)),
                mscale=float(rs.get("mscale", 1)))
            model = off.Transformer(args).float()
            state = {}
            for hf, t in m.W.items():
                parts = hf.split(".")
                if parts[0] == "model":
                    parts = parts[1:]
                if parts[0] == "layers" and int(parts[1]) >= c["num_hidden_layers"]:
                    continue  # MTP: not in the official inference code
                state[".".join(OFFICIAL_NAMES.get(p, p) for p in parts)] = t
            for i, layer in enumerate(model.layers):
                key = f"layers.{i}.ffn.gate.bias"
                if key in state and getattr(layer.ffn.gate, "bias", None) is None:
                    layer.ffn.gate.bias = torch.nn.Parameter(torch.zeros(c["n_routed_experts"]))
            missing, unexpected = model.load_state_dict(state, strict=False)
            assert not unexpected and not missing, (missing, unexpected)
            with torch.inference_mode():
                tok = torch.tensor([ids])
                h = model.embed(tok)
                mask = torch.full((len(ids), len(ids)), float("-inf")).triu_(1)
                for layer in model.layers:
                    h = layer(h, 0, model.freqs_cis[: len(ids)], mask)
                got = model.head(model.norm(h))[0]
            diff = (got - want).abs().max().item()
            print(f"official {impl:6s} {name:9s} max|diff| = {diff:.2e}")
            assert diff < 1e-4, f"{name}: official {impl} differs by {diff}"


def main():
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    check_codecs()
    check_rope_layouts()
    args = sys.argv[1:]
    official = None
    if "--official" in args:
        k = args.index("--official")
        official = args[k + 1]
        del args[k : k + 2]
    want = set(args)
    report = []
    for name, cfg, storage, n_ids, seed in CASES:
        if not want or name in want:
            build_case(name, cfg, storage, n_ids, seed, report)
    if not want or "v3_671b" in want:
        d = os.path.join(DATA, "v3_671b")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(v3_671b_config(), f, indent=2, sort_keys=True)
            f.write("\n")
    if not want or "qwen2" in want:
        check_cli("qwen2")
    if official:
        check_official(official, [c[0] for c in CASES if not want or c[0] in want])
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(DATA) for f in fs)
    print(f"tests/data total {total / 1024:.1f} KiB")
    with open(os.path.join(tempfile.gettempdir(), "whale_make_cases_report.json"), "w") as f:
        json.dump(report, f, indent=1)
    return report


if __name__ == "__main__":
    main()
