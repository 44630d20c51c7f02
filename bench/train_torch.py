#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""PyTorch training throughput on the issue-4 bench model: the peer whale's trainer is compared to.

The model is bench/configs/train-bench.json, the one bench/train.sh trains with whale
(DeepSeek-V3-shaped: vocab 4096, D 256, 8 layers with layer 0 dense (FFN 1024), 8
heads, q_lora 128, kv_lora 64, rope/nope/v 32, 16 routed experts of width 256, top-2
in 4 groups of which 2 are kept, 1 shared expert, sigmoid + noaux_tc, no MTP), with
random weights. It trains on random tokens (fixed seed) at batch 8 x 256 with the loss
of docs/training.md (cross-entropy + sequence-wise balance loss, alpha 1e-4), global-norm
clipping 1.0, torch.optim.AdamW and the correction-bias update (whale's defaults). The
forward is tools/train_reference.py's (batched matmuls; each expert runs the tokens
routed to it).

    /usr/bin/python3 bench/train_torch.py [--steps 20] [--threads N] [--warmup 2] [--config FILE] [--bf16]

Prints one JSON line: tok_s (B*T / median step time), step_ms (median), threads,
loss_first, loss_last. The timer covers a whole step: forward, backward, clipping,
AdamW and the bias update; the first --warmup steps are not timed. OpenBLAS reads
OPENBLAS_CORETYPE when torch loads it, so set that in the environment.
"""

import argparse
import json
import os
import sys
import time

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("--steps", type=int, default=20, help="timed steps")
ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for torch and OpenBLAS")
ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--bf16", action="store_true",
                help="forward under torch.autocast(cpu, bfloat16): matmuls in bfloat16, weights float32")
ap.add_argument("--config", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs",
                                                 "train-bench.json"), help="HF config.json of the model")
args = ap.parse_args()
if args.threads < 1 or args.steps < 1 or args.warmup < 0:
    ap.error("--threads and --steps must be >= 1, --warmup >= 0")
# before torch loads OpenMP and OpenBLAS
os.environ["OMP_NUM_THREADS"] = str(args.threads)
os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import make_cases as mc  # noqa: E402
import train_reference as tr  # noqa: E402

B, T = 8, 256
ALPHA, GAMMA, LR, CLIP = 1e-4, 1e-2, 1e-3, 1.0


def main():
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    with open(args.config) as f:
        cfg = json.load(f)
    rng = np.random.default_rng(args.seed)
    W = {n: torch.from_numpy(w) for n, w in mc.gen_deepseek(cfg, rng, 0.0).items()}
    model = tr.TrainModel(cfg, W)
    P = model.params
    decay = [P[n] for n in P if tr.is_decayed(n, P[n].shape)]
    rest = [P[n] for n in P if not tr.is_decayed(n, P[n].shape)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.95), eps=1e-8, foreach=True)
    params = list(P.values())
    data = torch.randint(0, cfg["vocab_size"], (args.warmup + args.steps, B, T + 1),
                         generator=torch.Generator().manual_seed(args.seed))
    times, losses = [], []
    for s in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        for p in params:
            p.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            out = model.loss(data[s], 0.0, ALPHA)
        tr.backward(P, out["loss"])
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        opt.step()
        with torch.no_grad():
            for n, load in out["loads"].items():
                model.biases[n].add_(GAMMA * torch.sign(load.sum() / load.numel() - load))
        losses.append(out["loss"].item())
        if s >= args.warmup:
            times.append(time.perf_counter() - t0)
    step = float(np.median(times))
    print(json.dumps({"tok_s": round(B * T / step, 1), "step_ms": round(step * 1e3, 1), "threads": args.threads,
                      "loss_first": round(losses[0], 4), "loss_last": round(losses[-1], 4)}))


if __name__ == "__main__":
    main()
