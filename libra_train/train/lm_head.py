"""Make TRL's fused LM head score only the supervised positions on a CPU too.

TRL's SFTTrainer projects hidden states through the LM head only where the next-token label is
not -100 ("compact"), but only on CUDA/XPU with Triton: elsewhere it scores every position, to keep
tile shapes fixed for compilers that recompile on a new shape (Neuron/XLA). A CPU recompiles
nothing, so there the full scoring is pure waste. A guard's completion-only loss supervises a few
target tokens after a prompt many times longer, so on a CPU the waste dominates a step. With label-only
targets (COLD's) a step of 32 took 33.7 s in full and 0.80 s compact under Qwen's 151k-token
vocabulary, and 0.81 s against 0.39 s under the tiny model's 3k (BENCHMARKS.md, "Supervised positions
only"). The loss is the same number either way: masked positions contribute zero to it in both paths.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)

# Device types whose kernels take any number of rows without recompiling.
COMPACT_DEVICE_TYPES = ("cpu", "cuda", "xpu", "mps")


def _scores_compact(device: torch.device) -> bool:
    return device.type in COMPACT_DEVICE_TYPES


def score_supervised_positions_only() -> bool:
    """Point TRL's fused-head choice at `_scores_compact`. Returns False (and logs) when this TRL
    has no such choice to make, so a TRL that changed shape costs speed, never correctness."""
    import trl.trainer.utils as trl_utils

    if not callable(getattr(trl_utils, "_use_triton", None)):
        log.warning("this TRL has no fused-head device check: every position is scored on a CPU")
        return False
    trl_utils._use_triton = _scores_compact
    return True
