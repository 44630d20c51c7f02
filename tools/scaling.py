#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Communication per training step of whale's data and expert parallelism,
and the step time that follows, for docs/scaling.md. Pure arithmetic on a
model config (no torch, no network):

  python3 tools/scaling.py bench/configs/train-bench.json tests/data/v3_671b/config.json

Per rank and per optimiser step:
- all-reduce of the gradients (ring: each rank sends and receives
  2 (N-1)/N of the buffer), F32 as whale keeps them (4 bytes/parameter);
  with expert parallelism the routed experts' gradients can stay on their
  rank, so only the rest is all-reduced;
- all-to-all of expert parallelism: each token's hidden vector goes to the
  ranks of its K experts and the outputs come back (forward), and the
  gradients make the same two trips (backward): 4 x tokens x K x D x bytes
  x (N-1)/N per MoE layer (routes spread evenly over N ranks).
"""
import json
import sys


def params(c):
    D, V, H = c["hidden_size"], c["vocab_size"], c["num_attention_heads"]
    L, k_dense = c["num_hidden_layers"], c.get("first_k_dense_replace", 0)
    nope, rope, v = c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"]
    R, Q = c["kv_lora_rank"], c.get("q_lora_rank") or 0
    q = D * Q + Q + Q * H * (nope + rope) if Q else D * H * (nope + rope)
    attn = q + D * (R + rope) + R + R * H * (nope + v) + H * v * D + 2 * D
    Im, E = c["moe_intermediate_size"], c["n_routed_experts"]
    expert = 3 * D * Im
    moe_rest = D * E + E + c["n_shared_experts"] * expert
    dense = 3 * D * c["intermediate_size"]
    mtp = c.get("num_nextn_predict_layers", 0)
    n_moe = L - k_dense + mtp  # each MTP module has one MoE block
    routed = n_moe * E * expert
    rest = (L + mtp) * attn + k_dense * dense + n_moe * moe_rest + 2 * V * D + D
    rest += mtp * (2 * D * D + 3 * D + V * D)  # eh_proj, norms, own head
    return routed, rest, n_moe


def gb(x):
    return f"{x / 1e9:,.2f} GB" if x >= 1e8 else f"{x / 1e6:,.1f} MB"


def table(name, c, tokens, a2a_bytes, bw, t_compute):
    routed, rest, n_moe = params(c)
    D, K = c["hidden_size"], c["num_experts_per_tok"]
    print(f"\n### {name}: {(routed + rest) / 1e9:.3g}B parameters "
          f"({routed / 1e9:.3g}B in routed experts), {tokens:,} tokens per rank per step\n")
    print(f"Bandwidth {bw / 1e9:g} GB/s per rank; compute {t_compute:.3g} s per step "
          f"(its backward, 2/3 of it, hides an all-reduce started layer by layer).\n")
    print("| ranks | all-reduce, all params (DP) | all-reduce, non-expert (DP + EP) "
          "| all-to-all (EP) | step, DP | step, DP + EP |")
    print("|---:|---:|---:|---:|---:|---:|")
    for N in (8, 64, 256):
        f = (N - 1) / N
        ar_all = 2 * f * 4 * (routed + rest)
        ar_rest = 2 * f * 4 * rest
        a2a = 4 * tokens * K * D * a2a_bytes * f * n_moe
        hide = 2 / 3 * t_compute
        t_dp = t_compute + max(0.0, ar_all / bw - hide)
        t_ep = t_compute + max(0.0, ar_rest / bw - hide) + a2a / bw
        print(f"| {N} | {gb(ar_all)} | {gb(ar_rest)} | {gb(a2a)} | {t_dp:.3g} s | {t_ep:.3g} s |")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: tools/scaling.py BENCH_CONFIG.json V3_CONFIG.json")
    bench, v3 = (json.load(open(p)) for p in sys.argv[1:])
    # the bench model as bench/train.sh runs it: 8 x 256 tokens per rank, F32
    # everywhere, 12.5 GB/s (100 Gb Ethernet), the compute time whale measured
    # on this 2-core machine (about 1,300 tok/s: 1.6 s per step)
    table("train-bench (bench/configs/train-bench.json)", bench, 8 * 256, 4, 12.5e9, 1.6)
    # V3 as its report trained it: 15,360 x 4,096 tokens per step over 2,048
    # H800s is 30,720 tokens per GPU; 14.8T tokens in 2.788M GPU hours is
    # 1,474 tok/s per GPU, so 20.8 s per step; 50 GB/s InfiniBand per GPU;
    # all-to-all in FP8 out, BF16 back (1.5 bytes on average). whale's own
    # exchange is F32 (4 bytes): 2.7x these all-to-all figures.
    table("DeepSeek-V3 (tests/data/v3_671b/config.json)", v3, 30720, 1.5, 50e9, 20.8)


if __name__ == "__main__":
    main()
