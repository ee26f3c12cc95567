#!/usr/bin/env bash
# The curriculum measured on real data: four arms on COLD with the same number of optimizer steps, each
# over several seeds, scored on COLD test, then `libra-report` (per point, and mean ± spread per arm).
#   [TRIM_VOCAB=true] bash benchmarks/cold_curriculum.sh COLD_DIR OUT_DIR [STEPS] [SEEDS]
# COLD_DIR holds train/dev/test.jsonl from the `libra-data import` lines of docs/data.md, "COLD" (never committed).
# STEPS (default 240) is every arm's total: sft_only and mixed train STEPS steps in one stage;
# two_stage and two_stage_hard train STEPS/2 on synthetic data, then STEPS/2 on COLD (hard-selected from a
# pool of POOL COLD rows for two_stage_hard; scoring that pool is the one extra cost it pays).
set -euo pipefail
cold="$1" out="$2" steps="${3:-240}" seeds="${4:-0 1}"
half=$((steps / 2)) batch=32 pool="${POOL:-8000}"
mkdir -p "$out"
# Scored at p_unsafe > 0.5 (no calibration) so the arms compare on the same rule; AUPRC needs none.
# Only COLD test is scored: no calibration set, no synthetic held-out (they would double the arm's time).
# One model per arm (no ensemble) over Qwen's whole vocabulary by default. TRIM_VOCAB=true trims it to
# each arm's own stage text instead: the arms then differ in rows for tokens COLD train never uses
# (two_stage's text includes the synthetic set), and a synthetic step, whose long critic target goes
# through the LM head, costs several times less. data=cold brings the synthetic stage 1 the recipe lacks.
common=(experiment=cold_tune data=cold "data.cold_dir=$cold" logger=none eval.before_training=false
        eval.threshold=0.5 eval.calibration_set=null ensemble.members=1 ensemble.parallel=1
        "model.trim_vocab=${TRIM_VOCAB:-false}" "~data.eval_sets.heldout" "train.batch_size=$batch")
for seed in $seeds; do
  for arm in sft_only two_stage mixed two_stage_hard; do
    case "$arm" in
      sft_only|mixed) budget=("train.max_steps=$steps") ;;
      two_stage) budget=("+curriculum.stages.0.max_steps=$half" "+curriculum.stages.1.max_steps=$half") ;;
      two_stage_hard) budget=("+curriculum.stages.0.max_steps=$half" "curriculum.stages.1.budget=$((half * batch))"
                              "data.stage2.limit=$pool" "+curriculum.stages.1.epochs=1") ;;
    esac
    dir="$out/$arm-seed$seed"
    start=$(date +%s)
    libra-train "${common[@]}" "curriculum=$arm" "seed=$seed" "paths.run_dir=$dir" "${budget[@]}" \
      > "$out/$arm-seed$seed.log" 2>&1
    echo "$arm seed $seed: $(( $(date +%s) - start )) s"
  done
done
libra-report "$out"
