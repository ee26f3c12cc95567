#!/usr/bin/env bash
# The curriculum on real assistant responses: every arm on JADE with the same number of optimizer steps,
# over several seeds, scored on JADE test at the threshold calibrated on JADE dev, then `libra-report`.
#   bash benchmarks/jade_curriculum.sh JADE_DIR OUT_DIR [STEPS] [SEEDS] [PARALLEL]
# JADE_DIR holds jade_alignment_medium_zh.csv (docs/data.md, "JADE"; never committed).
# STEPS (default 240) is every arm's total: stage1_only, sft_only and mixed train STEPS in one stage; the
# two-stage arms train STEPS/2 on the synthetic set, then STEPS/2 on JADE train: all of it (two_stage),
# the half the stage-1 guard finds hardest (two_stage_hard), or a random half of the same size
# (two_stage_random). stage1_only's run also scores the untrained backbone. seed=S redraws the synthetic set, the JADE split
# and the initial weights. PARALLEL runs (default 2) go at once, each on one thread, so that the wall
# times stay comparable between arms.
set -euo pipefail
. "$(dirname "$0")/arms.sh"
jade="$1" out="$2" steps="${3:-240}" seeds="${4:-0 1 2}" parallel="${5:-2}"
half=$((steps / 2))
mkdir -p "$out"
common=(experiment=jade "data.jade_dir=$jade" logger=none "~data.eval_sets.heldout" train.save_steps=100000)
# two_stage_hard's budget is HALF_POOL rows (default 401: half of JADE train's 802 at the shipped
# shares), the size of two_stage_random's half (data.stage2.limit=0.5)
arm_args() {
  case "$1" in
    stage1_only) echo "curriculum=pretrain_only train.max_steps=$steps eval.before_training=true" ;;
    sft_only|mixed) echo "curriculum=$1 train.max_steps=$steps eval.before_training=false" ;;
    two_stage) echo "curriculum=two_stage eval.before_training=false" \
                    "+curriculum.stages.0.max_steps=$half +curriculum.stages.1.max_steps=$half" ;;
    two_stage_hard) echo "curriculum=two_stage_hard eval.before_training=false +curriculum.stages.0.max_steps=$half" \
                         "+curriculum.stages.1.max_steps=$half curriculum.stages.1.budget=${HALF_POOL:-401}" ;;
    two_stage_random) echo "curriculum=two_stage data.stage2.limit=0.5 eval.before_training=false" \
                           "+curriculum.stages.0.max_steps=$half +curriculum.stages.1.max_steps=$half" ;;
  esac
}
run_arms "stage1_only sft_only two_stage mixed two_stage_hard two_stage_random" "$seeds" "$parallel"
libra-report "$out"
python benchmarks/jade_curriculum_table.py "$out"
