#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The R1-Zero recipe: from nothing to a tiny model that thinks, on a CPU.
#
#   recipes/r1-zero/run.sh --task arith|countdown|linear [--full] --out DIR [--threads N]
#                          [--set NAME=VALUE ...]
#
# Synthesises a pretraining corpus of the task (worked solutions of mixed
# quality on purpose, train-split problems only), trains a tokenizer on it,
# pretrains a tiny DeepSeek-V3-architecture model (MLA + DeepSeekMoE + MTP),
# evaluates it on held-out problems, runs GRPO with rule rewards, evaluates
# again, distils the GRPO model's verified answers into a smaller student
# (R1's rejection sampling) and, for comparison, gives the same student the
# same time of GRPO alone, and writes DIR/report.md (with plots) and
# DIR/report.json. Outputs: DIR/base, DIR/grpo, DIR/student (models), the
# intermediate files beside them. Settings per task are in tasks/NAME.sh;
# --full runs the longer schedule of the same task; --set overrides one
# setting after them (e.g. --set PRE_STEPS=20 for a quick check; --set SEED=N
# draws another corpus, initial weights, data order and rollouts, while the
# held-out evaluation stays the same problems).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
W="${WHALE_BIN:-$root/build/whale}" # the tests point it at their build

usage() {
    sed -n '4,6p' "$0" | sed 's/^# *//' >&2
    exit 2
}
task="" full=0 out="" threads=$(nproc 2>/dev/null || echo 2) sets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --task) task=${2:-}; shift 2 || usage ;;
        --out) out=${2:-}; shift 2 || usage ;;
        --full) full=1; shift ;;
        --threads|-t) threads=${2:-}; shift 2 || usage ;;
        --set)
            case "${2:-}" in
                [A-Z]*=*) sets+=("$2"); shift 2 ;;
                *) echo "run.sh: --set wants NAME=VALUE, not '${2:-}'" >&2; exit 2 ;;
            esac ;;
        -h|--help) usage ;;
        *) echo "run.sh: unknown argument '$1'" >&2; usage ;;
    esac
done
[ -n "$task" ] && [ -n "$out" ] || usage
[ -f "$here/tasks/$task.sh" ] || {
    echo "run.sh: no recipe for task '$task' (have: $(ls "$here/tasks" | sed 's/\.sh$//' | tr '\n' ' '))" >&2
    exit 2
}
[ -x "$W" ] || { echo "run.sh: $W is missing: run make first" >&2; exit 2; }
case "$threads" in ''|*[!0-9]*|0) echo "run.sh: --threads wants a positive number" >&2; exit 2 ;; esac

# The task's settings: TASK DIFF CORPUS_N CORPUS_DIFF SKIP ERR and the step counts.
# shellcheck source=/dev/null
SEED=0
. "$here/tasks/$task.sh"
for kv in "${sets[@]}"; do
    name=${kv%%=*}
    case "$name" in *[!A-Z_]*) echo "run.sh: --set: bad name '$name'" >&2; exit 2 ;; esac
    printf -v "$name" '%s' "${kv#*=}"
done

mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out"/eval_*.json "$out"/examples_*.txt "$out"/report.md "$out"/report.json # no stale figures
t_start=$(date +%s)
n_stage=9
stage() { # stage N TITLE
    printf '\n== [%d/%d] %s  (%ds so far)\n' "$1" "$n_stage" "$2" "$(($(date +%s) - t_start))"
}
tpl="--template short"
ev() { # ev MODEL NAME [K]: held-out evaluation into DIR/eval_NAME.json, examples beside it
    "$W" eval -m "$1" --task "$TASK" --difficulty "$DIFF" $tpl --n "$EVAL_N" --k "${3:-$EVAL_K}" \
        --max-tokens "$MAX_TOKENS" --seed 1 -t "$threads" --examples 3 --json \
        >"$out/eval_$2.json" 2>"$out/examples_$2.txt"
    cat "$out/eval_$2.json"
}

stage 1 "corpus: $CORPUS_N worked $TASK problems (difficulty $CORPUS_DIFF), $SKIP skip the thinking, error rate $ERR"
"$W" task-data --task "$TASK" --n "$CORPUS_N" --difficulty "$CORPUS_DIFF" --skip-think "$SKIP" \
    --error-rate "$ERR" $tpl --seed "$SEED" --out "$out/corpus.jsonl"

stage 2 "tokenizer: byte-level BPE with up to $VOCAB ids (the tags as single tokens, digits never merged)"
"$W" tokenizer-train --input "$out/corpus.jsonl" --vocab "$VOCAB" --split-digits \
    --out "$out/tokenizer" --force

stage 3 "pretraining a DeepSeek-V3-architecture model ($PRE_STEPS steps) and a smaller student ($STU_STEPS steps)"
"$W" init --config "$here/configs/base.json" --tokenizer "$out/tokenizer" --out "$out/init" \
    --std "$INIT_STD" --seed "$SEED" --force
"$W" init --config "$here/configs/student.json" --tokenizer "$out/tokenizer" --out "$out/student_init" \
    --std "$INIT_STD" --seed "$SEED" --force
rm -rf "$out/data" "$out/base" "$out/student_base"
"$W" data -m "$out/init" --input "$out/corpus.jsonl" --out "$out/data"
# Models this small run as fast on one thread as on two (the matrices are
# too small to share), so the student pretrains beside the base, quietly.
t_pre=$(( threads > 1 ? threads / 2 : 1 ))
"$W" train -m "$out/student_init" --data "$out/data" --out "$out/student_base" --doc-start \
    --steps "$STU_STEPS" --batch "$PRE_BATCH" --seq "$PRE_SEQ" --lr "$PRE_LR" \
    --eval-every "$((STU_STEPS / 2))" --save-every 0 --seed "$SEED" -t "$t_pre" -q &
student_pid=$!
"$W" train -m "$out/init" --data "$out/data" --out "$out/base" --doc-start --steps "$PRE_STEPS" \
    --batch "$PRE_BATCH" --seq "$PRE_SEQ" --lr "$PRE_LR" --eval-every "$((PRE_STEPS / 4))" \
    --save-every 0 --log-every 50 --seed "$SEED" -t "$t_pre"
wait "$student_pid" || { echo "run.sh: the student's pretraining failed" >&2; exit 1; }

stage 4 "evaluating the base model on $EVAL_N held-out problems (greedy, and $EVAL_K samples each)"
ev "$out/base" base

stage 5 "GRPO: $GRPO_STEPS steps of $GRPO_P problems x $GRPO_G samples, rule rewards"
rm -rf "$out/grpo"
t0=$(date +%s)
"$W" grpo -m "$out/base" --task "$TASK" --difficulty "$DIFF" $tpl --out "$out/grpo" \
    --steps "$GRPO_STEPS" --prompts "$GRPO_P" --group "$GRPO_G" --lr "$GRPO_LR" \
    --max-tokens "$MAX_TOKENS" --seed "$SEED" -t "$threads"
grpo_s=$(($(date +%s) - t0))

stage 6 "evaluating the GRPO model"
ev "$out/grpo" grpo

stage 7 "distillation: the GRPO model answers train problems, the verifier keeps right ones, the student learns them"
rm -rf "$out/student"
t0=$(date +%s)
# A teacher with no right answer leaves nothing to distil: the recipe goes
# on and the report says the student is missing, rather than stopping.
distilled=1
"$W" distill -m "$out/grpo" --student "$out/student_base" --task "$TASK" --difficulty "$DIFF" $tpl \
    --out "$out/student" --problems "$DIST_PROBLEMS" --k "$DIST_K" --max-tokens "$MAX_TOKENS" \
    --steps "$DIST_STEPS" --lr "$DIST_LR" --seed "$SEED" -t "$threads" || distilled=0
[ "$distilled" = 1 ] || echo "run.sh: no distilled student (see the line above); going on" >&2
distill_s=$(($(date +%s) - t0))

stage 8 "the same student with GRPO alone for the same time (${distill_s}s), for comparison"
rm -rf "$out/student_grpo"
"$W" grpo -m "$out/student_base" --task "$TASK" --difficulty "$DIFF" $tpl --out "$out/student_grpo" \
    --steps 1000000 --time-limit "$((distill_s > 0 ? distill_s : 1))" --prompts "$GRPO_P" \
    --group "$GRPO_G" --lr "$GRPO_LR" --max-tokens "$MAX_TOKENS" --seed "$SEED" -t "$threads"

stage 9 "evaluating the students, writing the report"
ev "$out/student_base" student_base 0
[ "$distilled" = 1 ] && ev "$out/student" student 0
ev "$out/student_grpo" student_grpo 0
minutes=$(awk -v s="$(($(date +%s) - t_start))" 'BEGIN { printf "%.2f", s / 60 }')
/usr/bin/env python3 "$here/report.py" --out "$out" --task "$TASK" --difficulty "$DIFF" \
    --minutes "$minutes" --grpo-seconds "$grpo_s" --distill-seconds "$distill_s"

echo
echo "report: $out/report.md  ($minutes minutes in all)"
echo "one held-out problem, answered by the model after GRPO:"
sed -n '1,2p' "$out/examples_grpo.txt"
echo
echo "try it:  $W generate -m $out/grpo -p 'User: $EXAMPLE. Assistant:' --temp 0"
