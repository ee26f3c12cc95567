#!/usr/bin/env bash
# N nodes with DeepSpeed's own launcher and a hostfile (one line per node: "<host> slots=8").
# It reaches the other nodes over passwordless ssh and starts the same command there; --no_local_rank
# because ranks come from the environment (LOCAL_RANK), not a --local_rank argument Hydra would refuse.
#   bash recipes/multi_node_deepspeed.sh recipes/hostfile experiment=libra_guard/qwen2.5-14b
set -euo pipefail
HOSTFILE=${1:?usage: multi_node_deepspeed.sh HOSTFILE [overrides…]}
shift
exec deepspeed --no_local_rank --hostfile "$HOSTFILE" --master_port "${MASTER_PORT:-29500}" \
  --module libra_train.cli paths.run_dir="${RUN_DIR:-outputs/multinode}" "$@"
