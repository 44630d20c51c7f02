# SPDX-License-Identifier: MIT
# The arith recipe (sourced by run.sh): 3-digit addition, the first
# target: about 3.5 minutes on 2 cores (docs/rl.md, "The recipe"); --full trains longer.
# Pretraining at lr 3e-3 for 1100 steps: at 5e-3, one base in four (800 or
# 1100 steps, seeds 0-5) never learned which digits a column adds and
# stayed near 0% (docs/rl.md, "Seeds").
TASK=arith-add DIFF=3 EXAMPLE="Compute 385 + 448"
CORPUS_N=40000 CORPUS_DIFF=3 SKIP=0.3 ERR=0.6 VOCAB=265
PRE_STEPS=1100 PRE_BATCH=16 PRE_SEQ=128 PRE_LR=3e-3 STU_STEPS=800 INIT_STD=0.05
EVAL_N=100 EVAL_K=8 MAX_TOKENS=100
GRPO_STEPS=50 GRPO_P=16 GRPO_G=8 GRPO_LR=2e-4
DIST_PROBLEMS=512 DIST_K=4 DIST_STEPS=150 DIST_LR=1e-3
if [ "$full" = 1 ]; then
    PRE_STEPS=1500 STU_STEPS=1500 GRPO_STEPS=80 DIST_PROBLEMS=2048 DIST_STEPS=400
fi
