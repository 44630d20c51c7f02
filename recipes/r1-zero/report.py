#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the R1-Zero recipe's report.md and report.json from what run.sh left
in its output directory: the eval_*.json lines of `whale eval --json`, the
examples_*.txt of `whale eval --examples`, and the runs' metrics.jsonl (whose
plots `whale train` and `whale grpo` drew as metrics.svg). Standard library
only; a missing piece is reported as missing, never invented."""
import argparse
import json
import os
import sys


def load_json(path):
    try:
        with open(path) as f:
            return json.loads(f.read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError) as e:
        print(f"report.py: {path}: {e}", file=sys.stderr)
        return None


def metrics(path):
    rows = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    pass
    except OSError:
        pass
    return rows


def pct(x):
    return "-" if x is None else f"{100 * x:.1f}%"


def bars_svg(groups, path):
    """A grouped bar chart: groups = [(label, [(series, value 0..1)])]."""
    colors = ["#4c72b0", "#dd8452", "#55a868"]
    w, h, left, bottom, top = 640, 260, 50, 40, 20
    n = len(groups)
    gw = (w - left - 20) / max(n, 1)
    bw = gw / 4
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>']
    ph = h - bottom - top
    for k in range(0, 11, 2):
        y = top + ph * (1 - k / 10)
        out.append(f'<line x1="{left}" x2="{w - 20}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{10 * k}%</text>')
    for i, (label, series) in enumerate(groups):
        x0 = left + i * gw + bw / 2
        for j, (_, v) in enumerate(series):
            v = v or 0.0
            x, bh = x0 + j * bw, ph * v
            out.append(f'<rect x="{x:.1f}" y="{top + ph - bh:.1f}" width="{bw * 0.9:.1f}" '
                       f'height="{bh:.1f}" fill="{colors[j % 3]}"/>')
            out.append(f'<text x="{x + bw * 0.45:.1f}" y="{top + ph - bh - 3:.1f}" '
                       f'text-anchor="middle" font-size="10">{100 * v:.0f}</text>')
        out.append(f'<text x="{left + i * gw + gw / 2:.1f}" y="{h - bottom + 16}" '
                   f'text-anchor="middle">{label}</text>')
    if groups:
        for j, (name, _) in enumerate(groups[0][1]):
            out.append(f'<rect x="{left + 10 + 150 * j}" y="{h - 14}" width="10" height="10" '
                       f'fill="{colors[j % 3]}"/>')
            out.append(f'<text x="{left + 24 + 150 * j}" y="{h - 5}">{name}</text>')
    out.append("</svg>")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(out) + "\n")
    os.replace(tmp, path)


def examples(path, n=2):
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return "(missing)"
    blocks = [b for b in text.split("--- problem ")[1:]]
    return "\n".join("--- problem " + b.rstrip() for b in blocks[:n]) or "(none)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--task", required=True)
    ap.add_argument("--difficulty", type=int, required=True)
    ap.add_argument("--minutes", type=float, required=True)
    ap.add_argument("--grpo-seconds", type=float, default=None)
    ap.add_argument("--distill-seconds", type=float, default=None)
    a = ap.parse_args()
    d = a.out
    ev = {k: load_json(os.path.join(d, f"eval_{k}.json"))
          for k in ("base", "grpo", "student_base", "student", "student_grpo")}

    def get(k, f):
        return ev[k].get(f) if ev[k] else None

    grpo_rows = [r for r in metrics(os.path.join(d, "grpo", "metrics.jsonl")) if "reward" in r]
    rollout_tok_s = [r["rollout_tok_s"] for r in grpo_rows if "rollout_tok_s" in r]
    train_tok_s = [r["train_tok_s"] for r in grpo_rows if "train_tok_s" in r]
    pre_rows = metrics(os.path.join(d, "base", "metrics.jsonl"))
    pre_tok_s = [r["tok_s"] for r in pre_rows if "tok_s" in r]
    mean = lambda v: sum(v) / len(v) if v else None
    rep = {
        "task": a.task, "difficulty": a.difficulty, "n": get("base", "n"), "k": get("base", "k"),
        "pass1_base": get("base", "pass1"), "pass1_sampled_base": get("base", "pass1_sampled"),
        "passk_base": get("base", "passk"),
        "pass1_grpo": get("grpo", "pass1"), "pass1_sampled_grpo": get("grpo", "pass1_sampled"),
        "passk_grpo": get("grpo", "passk"),
        "completion_len_base": get("base", "completion_len"),
        "completion_len_grpo": get("grpo", "completion_len"),
        "pass1_student_base": get("student_base", "pass1"),
        "pass1_student": get("student", "pass1"),
        "pass1_student_grpo_alone": get("student_grpo", "pass1"),
        "grpo_steps": len(grpo_rows), "grpo_seconds": a.grpo_seconds,
        "distill_seconds": a.distill_seconds,
        "pretrain_tok_s": mean(pre_tok_s), "rollout_tok_s": mean(rollout_tok_s),
        "grpo_train_tok_s": mean(train_tok_s), "minutes": a.minutes,
    }
    tmp = os.path.join(d, "report.json.tmp")
    with open(tmp, "w") as f:
        json.dump(rep, f, indent=1)
        f.write("\n")
    os.replace(tmp, os.path.join(d, "report.json"))

    bars_svg([(name, [("greedy pass@1", get(k, "pass1")),
                      ("sampled pass@1", get(k, "pass1_sampled")),
                      (f"pass@{get('base', 'k')}", get(k, "passk"))])
              for name, k in (("base", "base"), ("after GRPO", "grpo"))],
             os.path.join(d, "passrates.svg"))
    bars_svg([(name, [("greedy pass@1", get(k, "pass1"))])
              for name, k in (("student before", "student_base"), ("distilled", "student"),
                              ("GRPO alone", "student_grpo"))],
             os.path.join(d, "student.svg"))

    gain = None if rep["pass1_grpo"] is None or rep["pass1_base"] is None else \
        100 * (rep["pass1_grpo"] - rep["pass1_base"])
    lines = [
        f"# R1-Zero recipe: {a.task} (difficulty {a.difficulty})", "",
        f"{a.minutes:.1f} minutes in all. Held-out problems: {rep['n']}; "
        f"samples per problem for sampled pass@1 and pass@k: {rep['k']}.", "",
        "| model | greedy pass@1 | sampled pass@1 | pass@k | completion tokens |",
        "|---|---:|---:|---:|---:|",
        f"| base (pretrained) | {pct(rep['pass1_base'])} | {pct(rep['pass1_sampled_base'])} | "
        f"{pct(rep['passk_base'])} | {get('base', 'completion_len') or '-'} |",
        f"| after GRPO | {pct(rep['pass1_grpo'])} | {pct(rep['pass1_sampled_grpo'])} | "
        f"{pct(rep['passk_grpo'])} | {get('grpo', 'completion_len') or '-'} |", "",
        f"GRPO changed greedy pass@1 by {gain:+.1f} points" if gain is not None else
        "GRPO figures missing", "",
        "Did RL add beyond what sampling could already find? The base model's pass@k is what "
        f"k samples could reach before RL ({pct(rep['passk_base'])}); the GRPO model's greedy "
        f"pass@1 is {pct(rep['pass1_grpo'])}.", "",
        "![pass rates before and after GRPO](passrates.svg)", "",
        "## GRPO over steps", "",
        "Reward, accuracy and format rate, completion length, KL, tokens/s "
        "(`grpo/metrics.jsonl`):", "",
        "![GRPO metrics](grpo/metrics.svg)", "",
        f"Rollout {rep['rollout_tok_s'] or 0:.0f} tokens/s, training "
        f"{rep['grpo_train_tok_s'] or 0:.0f} tokens/s (means over steps); "
        f"{rep['grpo_steps']} steps in {a.grpo_seconds or 0:.0f} s.", "",
        "## Pretraining", "",
        f"Loss and eval loss, lr, grad norm, expert load (`base/metrics.jsonl`), "
        f"{rep['pretrain_tok_s'] or 0:.0f} tokens/s:", "",
        "![pretraining](base/metrics.svg)", "",
        "## Distillation into a smaller student", "",
        "| student | greedy pass@1 |", "|---|---:|",
        f"| before (pretrained only) | {pct(rep['pass1_student_base'])} |",
        f"| distilled from the GRPO model ({a.distill_seconds or 0:.0f} s) | "
        f"{pct(rep['pass1_student'])} |",
        f"| GRPO alone for the same time | {pct(rep['pass1_student_grpo_alone'])} |", "",
        "![students](student.svg)", "",
        "## Completions before and after", "",
        "Base model (greedy):", "", "```", examples(os.path.join(d, "examples_base.txt")), "```", "",
        "After GRPO (greedy):", "", "```", examples(os.path.join(d, "examples_grpo.txt")), "```", "",
    ]
    tmp = os.path.join(d, "report.md.tmp")
    with open(tmp, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, os.path.join(d, "report.md"))


if __name__ == "__main__":
    main()
