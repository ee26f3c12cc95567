"""libra-synth's typed config, built and checked like every other command's (libra_train/command_config.py).

The top-level keys are typed and range-checked; the groups the synthesis reads as mappings (taxonomy,
openai, hf, dedup, annotation, split ratios) are checked for being mappings here and for their contents
where they are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from libra_train.command_config import CommandConfig
from libra_train.config import LoggerConfig
from libra_train.typed import fraction, opt, positive


@dataclass(frozen=True)
class SynthConfig(CommandConfig):
    output_dir: str = opt("data/synth", "writes stage1/stage2/heldout.jsonl, stats.json and stats.png here")
    seed: int = opt(0, "fixes every draw")
    num_samples: int = opt(3000, "total over the three splits, after dedup and balancing", positive)
    split_ratios: dict = opt(
        help="share of each split: stage1, stage2, heldout",
        factory=lambda: {"stage1": 0.7, "stage2": 0.2, "heldout": 0.1},
    )
    multi_turn_share: float = opt(0.0, "share of samples made conversations", fraction)
    oversample: float = opt(
        1.5,
        "planned per split ÷ kept: headroom for dedup and balancing",
        lambda v: None if v >= 1 else f"must be ≥ 1, got {v}",
    )
    backend: Literal["offline", "openai", "hf"] = opt(
        "offline", "default for responders and judges naming none"
    )
    responders: tuple | None = opt(None, "who writes the model turn, e.g. [{backend: openai, model: …}]")
    judges: tuple | None = opt(None, "who labels it; the first is primary; null: the backend's defaults")
    annotation: dict = opt(
        help="on_disagreement: tag_hard (keep, marked hard) or drop",
        factory=lambda: {"on_disagreement": "tag_hard"},
    )
    dedup: dict = opt(
        help="MinHash dedup: threshold, num_perm, ngram",
        factory=lambda: {"threshold": 0.85, "num_perm": 64, "ngram": 4},
    )
    cache_dir: str | None = opt(None, "on-disk completion cache; null: <output_dir>/cache")
    taxonomy: dict = opt(help="the harm taxonomy (conf/taxonomy)", factory=dict)
    openai: dict = opt(help="the OpenAI-compatible backend (conf/llm)", factory=dict)
    hf: dict = opt(help="the local transformers backend (conf/llm)", factory=dict)
    logger: LoggerConfig = opt(None, "logger=wandb: one W&B run per output folder")


@dataclass(frozen=True)
class AnnotateConfig(CommandConfig):
    """libra-synth annotate: a judge LLM writes the analysis of labelled data (data_synth/annotate.py)."""

    input: str = opt(help="a labelled guard-schema file or folder")
    output: str = opt(help="the annotated records; OUTPUT.flagged.jsonl and OUTPUT.summary.json beside it")
    backend: Literal["openai", "hf"] = opt(
        "openai", "the judge: an OpenAI-compatible endpoint, or a local model"
    )
    judge_name: str | None = opt(None, "how the judge is named in meta.annotation; null: the model's name")
    overwrite: bool = opt(False, "false: samples that already have an analysis are left as they are")
    cache_dir: str | None = opt(None, "completion cache (a rerun pays nothing twice); null: OUTPUT.cache/")
    openai: dict = opt(help="the OpenAI-compatible backend (conf/llm)", factory=dict)
    hf: dict = opt(help="the local transformers backend (conf/llm)", factory=dict)
