#!/usr/bin/env bash
# The GPU check, in one command: label vs generate on a Qwen2.5-0.5B-shaped model, BFD packing with
# flash attention vs padded batches, tokens/s and MFU under ZeRO-3 on every GPU present, and the
# classifier export served by vLLM's classify task against libra-serve at 32 concurrent clients.
#   bash benchmarks/gpu_check.sh              on a GPU machine (random weights: nothing is downloaded)
#   bash benchmarks/gpu_check.sh --dry-run    the same code on a CPU, tiny shape (the tests run this)
# Results: $GPU_CHECK_OUT (default benchmarks/results/gpu_check), then the table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${GPU_CHECK_OUT:-benchmarks/results/gpu_check}"
dry="${1:-}"
python benchmarks/gpu_check.py eval "$out" $dry
python benchmarks/gpu_check.py packing "$out" $dry
if [ "$dry" = "--dry-run" ]; then
  ranks=2
  export DS_ACCELERATOR=cpu OMP_NUM_THREADS=1
else
  ranks="$(python -c 'import torch; print(max(torch.cuda.device_count(), 1))')"
fi
torchrun --standalone --nproc_per_node "$ranks" benchmarks/gpu_check.py zero3 "$out" $dry
python benchmarks/gpu_classify.py "$out" $dry
python benchmarks/gpu_check.py table "$out"
