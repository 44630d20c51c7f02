# SPDX-License-Identifier: MIT
# The countdown recipe (sourced by run.sh): reach a target with 3 numbers;
# held-out problems of the task's difficulty. --full is the 30-minute run.
# Its figures are not yet measured: see docs/rl.md.
TASK=countdown DIFF=3 EXAMPLE="Make 70 from the numbers 4, 15, 10 with + - * /, each used at most once"
CORPUS_N=60000 CORPUS_DIFF=2-3 SKIP=0.3 ERR=0.6 VOCAB=265
PRE_STEPS=800 PRE_BATCH=16 PRE_SEQ=256 PRE_LR=6e-3 STU_STEPS=400 INIT_STD=0.05
EVAL_N=100 EVAL_K=8 MAX_TOKENS=160
GRPO_STEPS=20 GRPO_P=16 GRPO_G=8 GRPO_LR=2e-4
DIST_PROBLEMS=256 DIST_K=4 DIST_STEPS=100 DIST_LR=1e-3
if [ "$full" = 1 ]; then
    PRE_STEPS=4000 STU_STEPS=2000 GRPO_STEPS=150 DIST_PROBLEMS=2048 DIST_K=8 DIST_STEPS=400
fi
