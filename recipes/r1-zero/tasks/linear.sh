# SPDX-License-Identifier: MIT
# The linear recipe (sourced by run.sh): solve a x + b = c for x, one-digit
# coefficients. The corpus slips at 0.3, not arith's 0.6: at 0.6 greedy decoding takes
# the slip at both of its sign decisions and GRPO moved nothing (docs/rl.md).
TASK=linear DIFF=1 EXAMPLE="Solve 3x + 7 = 22 for x"
CORPUS_N=40000 CORPUS_DIFF=1 SKIP=0.3 ERR=0.3 VOCAB=265
PRE_STEPS=600 PRE_BATCH=16 PRE_SEQ=128 PRE_LR=1e-2 STU_STEPS=300 INIT_STD=0.05
EVAL_N=100 EVAL_K=8 MAX_TOKENS=80
GRPO_STEPS=20 GRPO_P=16 GRPO_G=8 GRPO_LR=2e-4
DIST_PROBLEMS=256 DIST_K=4 DIST_STEPS=100 DIST_LR=1e-3
if [ "$full" = 1 ]; then
    PRE_STEPS=1500 STU_STEPS=750 GRPO_STEPS=60 DIST_PROBLEMS=1024 DIST_STEPS=300
fi
