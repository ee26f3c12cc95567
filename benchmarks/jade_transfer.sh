#!/usr/bin/env bash
# Harm, not refusal, on JADE: which arm makes experiment=jade's shipped threshold hold and its helpful
# safe answers pass. Arms: synthetic replay in stage 2, a fitted temperature, a threshold from the
# middle of its interval (replay_calibrated); label smoothing (smoothed); a vocabulary learnt from stage
# 1's text alone (first_vocab, the former recipe); JADE train with each pair's counterparts
# (data/counter_openings.py: counter, both kinds; counter_helpful, the safe answers without their
# refusal opening), also with all of stage 1's synthetic data replayed
# (counter_replay_all), one pass of stage 2 instead of three (counter_helpful_1pass), or each stage
# stopped early on JADE dev's verdict loss (counter_helpful_stopped; stage 2 only:
# counter_helpful_stopped2); counter_helpful trained on responses alone, without the quick start's
# question-alone views (response_only), also with each pair's layout counterparts
# (data/counter_layouts.py: layouts, with no temperature, which moves no threshold), also with 100 long
# helpful answers written for JADE train's questions (data/written_answers.py: written, the shipped recipe),
# also with AdamW's weight decay at 0.1 (decay; in stage 1 alone: decay_stage1) or with all of stage 1's
# synthetic data replayed in stage 2 (layouts_replay_all). Every arm:
# stage 1 on the synthetic set, stage 2 on JADE train (STEPS each; 0: the recipe's own passes), the
# decision chosen on JADE dev, scored on JADE test and on the synthetic held-out split
# (benchmarks/jade_counter_eval.py: JADE test where the opening says nothing).
#   bash benchmarks/jade_transfer.sh JADE_DIR OUT_DIR [STEPS] [SEEDS] [PARALLEL]
# JADE_DIR holds jade_alignment_medium_zh.csv (never committed). Then:
#   python benchmarks/jade_transfer_table.py OUT_DIR
set -euo pipefail
. "$(dirname "$0")/arms.sh"
jade="$1" out="$2" steps="${3:-150}" seeds="${4:-0 1 2}" parallel="${5:-2}"
mkdir -p "$out"
common=(experiment=jade "data.jade_dir=$jade" logger=none train.save_steps=100000 eval.before_training=false
        "+curriculum.stages.0.max_steps=$steps" "+curriculum.stages.1.max_steps=$steps")
# Every arm names each key the recipe has changed over time, so an arm means the same whatever today's
# experiment=jade sets:
#   arm STAGE2_DATA TEMPERATURE CALIBRATE_AT VOCAB_FROM COUNTER_OPENINGS TASK COUNTER_LAYOUTS WEIGHT_DECAY
#       WRITTEN_ANSWERS [more…]
arm() {
  echo "curriculum.stages.1.data=$1 eval.temperature=$2 eval.calibrate_at=$3 model.vocab_from=$4" \
       "data.stage2.counter_openings=$5 format.task=$6 data.stage2.counter_layouts=$7 train.weight_decay=$8" \
       "data.stage2.written_answers=$9" "${@:10}"
}
arm_args() {
  local replay="[stage2,synthetic_stage2]"
  case "$1" in
    edge) arm "[stage2]" none edge all_stages none both false 0 null ;;
    replay) arm "$replay" none edge all_stages none both false 0 null ;;
    calibrated) arm "[stage2]" calibrate middle all_stages none both false 0 null ;;
    replay_calibrated) arm "$replay" calibrate middle all_stages none both false 0 null ;;
    smoothed) arm "$replay" calibrate middle all_stages none both false 0 null train.label_smoothing=0.1 ;;
    first_vocab) arm "$replay" calibrate middle first_stage none both false 0 null ;;
    counter) arm "$replay" calibrate middle first_stage both both false 0 null ;;
    counter_helpful) arm "$replay" calibrate middle first_stage helpful both false 0 null ;;
    counter_helpful_1pass) arm "$replay" calibrate middle first_stage helpful both false 0 null \
      +curriculum.stages.1.epochs=1 ;;
    response_only) arm "$replay" calibrate middle first_stage helpful response false 0 null ;;
    layouts) arm "$replay" none middle first_stage helpful response true 0 null ;;
    decay) arm "$replay" none middle first_stage helpful response true 0.1 null ;;
    decay_stage1) arm "$replay" none middle first_stage helpful response true 0 null \
      +curriculum.stages.0.weight_decay=0.1 ;;
    written) arm "$replay" none middle first_stage helpful response true 0 jade ;;
    layouts_replay_all) arm "[stage2,synthetic_stage2,stage1]" none middle first_stage helpful response \
      true 0 null ;;
    counter_replay_all) arm "[stage2,synthetic_stage2,stage1]" calibrate middle first_stage both both \
      false 0 null ;;
    counter_helpful_stopped) arm "$replay" calibrate middle first_stage helpful \
      both false 0 null train.early_stopping_set=jade_dev train.save_steps=50 ;;
    counter_helpful_stopped2) arm "$replay" calibrate middle first_stage helpful \
      both false 0 null +curriculum.stages.1.early_stopping_set=jade_dev train.save_steps=50 ;;
  esac
}
run_arms "${ARMS:-edge replay calibrated replay_calibrated}" "$seeds" "$parallel"
