# Sourced by the arm benchmarks (jade_curriculum.sh, jade_transfer.sh): runs every arm × seed as its own
# libra-train run in OUT/ARM-seedS, PARALLEL at once, each on one thread so that wall times stay
# comparable. The caller sets `out`, the array `common` (overrides every arm shares) and `arm_args ARM`
# (an arm's own overrides). A run whose report.md exists is skipped, so an interrupted sweep resumes.
run_arm() {  # arm seed
  local dir="$out/$1-seed$2" start args
  args=$(arm_args "$1")
  [ -f "$dir/report.md" ] && return 0
  start=$(date +%s)
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=1 libra-train "${common[@]}" $args "seed=$2" "model.init_seed=$2" "paths.run_dir=$dir" \
    > "$dir.log" 2>&1 || { echo "$1 seed $2: failed, see $dir.log" | tee -a "$out/walls.txt"; return 0; }
  echo "$1 seed $2: $(($(date +%s) - start)) s" | tee -a "$out/walls.txt"
}

run_arms() {  # "ARMS" "SEEDS" PARALLEL
  local running=0 seed arm
  for seed in $2; do
    for arm in $1; do
      run_arm "$arm" "$seed" &
      running=$((running + 1))
      if [ "$running" -ge "$3" ]; then
        wait -n
        running=$((running - 1))
      fi
    done
  done
  wait
}
