#!/usr/bin/env bash
# N nodes × 8 GPUs with torchrun's static rendezvous. Run this on every node, with NODE_RANK 0…N-1:
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 bash recipes/multi_node_torchrun.sh experiment=libra_guard/qwen2.5-14b
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=10.0.0.1 bash recipes/multi_node_torchrun.sh experiment=libra_guard/qwen2.5-14b
# paths.run_dir must be on storage every node sees (rank 0 writes the files; all ranks read checkpoints).
set -euo pipefail
: "${NNODES:?set NNODES}" "${NODE_RANK:?set NODE_RANK}" "${MASTER_ADDR:?set MASTER_ADDR}"
exec torchrun --nnodes "$NNODES" --node_rank "$NODE_RANK" --nproc_per_node "${NPROC:-8}" \
  --master_addr "$MASTER_ADDR" --master_port "${MASTER_PORT:-29500}" -m libra_train.cli \
  paths.run_dir="${RUN_DIR:-outputs/multinode}" "$@"
