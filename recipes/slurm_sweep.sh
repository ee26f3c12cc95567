#!/usr/bin/env bash
# An ablation sweep on Slurm through hydra-submitit-launcher (pip install -e ".[slurm]"): one Slurm job
# per sweep point, each with 8 GPUs as 8 tasks; libra-train turns submitit's task environment into
# torch.distributed's (RANK, WORLD_SIZE, MASTER_ADDR…), so no torchrun is needed inside the job.
#   bash recipes/slurm_sweep.sh +sweep=critic_position experiment=libra_guard/qwen2.5-1.5b
set -euo pipefail
exec libra-train -m hydra/launcher=submitit_slurm \
  hydra.launcher.partition="${PARTITION:-gpu}" hydra.launcher.nodes=1 hydra.launcher.tasks_per_node=8 \
  hydra.launcher.gpus_per_node=8 hydra.launcher.cpus_per_task=8 hydra.launcher.timeout_min=1440 "$@"
