#!/usr/bin/env bash
# One node, 8 GPUs: Libra-Guard on Qwen2.5-7B-Instruct, full fine-tuning with ZeRO-3.
# Usage: bash recipes/one_node.sh [experiment=libra_guard/<backbone>[_lora]] [more overrides…]
# torchrun starts one process per GPU; the HF Trainer hands the model to DeepSpeed (conf/deepspeed/*.yaml).
set -euo pipefail
NPROC=${NPROC:-8}
exec torchrun --standalone --nproc_per_node "$NPROC" -m libra_train.cli \
  experiment=libra_guard/qwen2.5-7b "$@"
