# SPDX-License-Identifier: MIT
# The countdown recipe (sourced by run.sh): reach a target with 3 numbers;
# the corpus is two thirds 2-number problems, so every held-out problem has
# one more number than most pretraining problems. At error rate 0.6 the
# corpus passes most hits by, so the base's greedy search does too while its
# samples sometimes stop at one: the fork GRPO learns to take. --full is the
# 30-minute run; its figures are in docs/rl.md.
TASK=countdown DIFF=3 EXAMPLE="Make 56 from the numbers 3, 8, 10 with + - * /, each used at most once"
CORPUS_N=60000 CORPUS_DIFF=2,2,3 SKIP=0.3 ERR=0.6 VOCAB=320
PRE_STEPS=300 PRE_BATCH=16 PRE_SEQ=512 PRE_LR=6e-3 STU_STEPS=300 INIT_STD=0.05
EVAL_N=100 EVAL_K=8 MAX_TOKENS=400
GRPO_STEPS=20 GRPO_P=16 GRPO_G=8 GRPO_LR=2e-4
DIST_PROBLEMS=256 DIST_K=4 DIST_STEPS=100 DIST_LR=1e-3
if [ "$full" = 1 ]; then
    CORPUS_N=100000 PRE_STEPS=950 STU_STEPS=800 GRPO_STEPS=180 DIST_PROBLEMS=512 DIST_STEPS=200
fi
