#!/usr/bin/env bash
# Harm, not refusal, on JADE: which of synthetic replay in stage 2, a fitted temperature, a threshold
# from the middle of its interval and label smoothing (arm smoothed: the shipped recipe plus
# train.label_smoothing=0.1) makes experiment=jade's shipped threshold hold and its helpful safe
# answers pass, and whether a vocabulary learnt from stage 1's text alone (arm first_vocab) lets stage 1
# carry over to JADE, and whether stage 2 on JADE train with each pair's counterparts (arms counter and
# counter_helpful: data.stage2.counter_openings=both or helpful, data/counter_openings.py) stops
# reading the opening, also with all of stage 1's synthetic data replayed in stage 2 (arm
# counter_replay_all). Every arm: stage 1 on the synthetic set, stage 2 on JADE train (STEPS each; 0:
# the recipe's own three passes), the decision chosen on JADE dev, scored on JADE test and on the
# synthetic held-out split (benchmarks/jade_counter_eval.py: JADE test where the opening says nothing).
#   bash benchmarks/jade_transfer.sh JADE_DIR OUT_DIR [STEPS] [SEEDS] [PARALLEL]
# JADE_DIR holds jade_alignment_medium_zh.csv (never committed). Then:
#   python benchmarks/jade_transfer_table.py OUT_DIR
set -euo pipefail
. "$(dirname "$0")/arms.sh"
jade="$1" out="$2" steps="${3:-150}" seeds="${4:-0 1 2}" parallel="${5:-2}"
mkdir -p "$out"
common=(experiment=jade "data.jade_dir=$jade" logger=none train.save_steps=100000 eval.before_training=false
        "+curriculum.stages.0.max_steps=$steps" "+curriculum.stages.1.max_steps=$steps")
arm_args() {
  case "$1" in
    edge) echo "curriculum.stages.1.data=[stage2] eval.temperature=none eval.calibrate_at=edge" ;;
    replay) echo "curriculum.stages.1.data=[stage2,synthetic_stage2] eval.temperature=none eval.calibrate_at=edge" ;;
    calibrated) echo "curriculum.stages.1.data=[stage2] eval.temperature=calibrate eval.calibrate_at=middle" ;;
    replay_calibrated) echo "curriculum.stages.1.data=[stage2,synthetic_stage2] eval.temperature=calibrate" \
                            "eval.calibrate_at=middle" ;;
    smoothed) echo "curriculum.stages.1.data=[stage2,synthetic_stage2] eval.temperature=calibrate" \
                   "eval.calibrate_at=middle train.label_smoothing=0.1" ;;
    counter) echo "curriculum.stages.1.data=[stage2,synthetic_stage2] eval.temperature=calibrate" \
                  "eval.calibrate_at=middle model.vocab_from=first_stage +data.stage2.counter_openings=both" ;;
    counter_helpful) echo "curriculum.stages.1.data=[stage2,synthetic_stage2] eval.temperature=calibrate" \
                          "eval.calibrate_at=middle model.vocab_from=first_stage" \
                          "+data.stage2.counter_openings=helpful" ;;
    counter_replay_all) echo "curriculum.stages.1.data=[stage2,synthetic_stage2,stage1] eval.temperature=calibrate" \
                             "eval.calibrate_at=middle model.vocab_from=first_stage" \
                             "+data.stage2.counter_openings=both" ;;
    first_vocab) echo "curriculum.stages.1.data=[stage2,synthetic_stage2] eval.temperature=calibrate" \
                      "eval.calibrate_at=middle model.vocab_from=first_stage" ;;
  esac
}
run_arms "${ARMS:-edge replay calibrated replay_calibrated}" "$seeds" "$parallel"
