"""libra-synth's typed config, built and checked like every other command's (libra_train/command_config.py).

libra-synth and libra-train's data step both build a SynthConfig and hand it to the synthesis. The keys
and the groups it reads by name (split_ratios, annotation, dedup) are typed and range-checked; the
taxonomy and the LLM backends' options are mappings whose contents are checked where they are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from libra_train.command_config import CommandConfig
from libra_train.config import LoggerConfig
from libra_train.typed import defaults_node, fraction, non_negative, opt, positive, register_defaults


def share(value) -> str | None:
    return None if 0 <= value <= 1 else f"must be in [0, 1], got {value}"


@dataclass(frozen=True)
class SplitRatios:
    """Each split's share of num_samples (normalised by their sum)."""

    stage1: float = opt(0.7, "guard pretraining", positive)
    stage2: float = opt(0.2, "the hard split stage 2 trains on", positive)
    heldout: float = opt(0.1, "held out: reserved templates, attacks and shapes", positive)
    dev: float = opt(
        0.0,
        "a dev split drawn as the held-out one is, for choosing thresholds and stop rules on data no stage "
        "trains on (dev.jsonl; 0: none, and the other splits are as they would be without it)",
        non_negative,
    )


@dataclass(frozen=True)
class AnnotationOptions:
    on_disagreement: Literal["tag_hard", "drop"] = opt(
        "tag_hard", "judges that disagree: tag_hard keeps it marked meta.difficulty=hard; drop rejects it"
    )


@dataclass(frozen=True)
class DedupOptions:
    """MinHash near-duplicate removal over question + response."""

    threshold: float = opt(0.85, "estimated Jaccard similarity at which two samples are duplicates", fraction)
    num_perm: int = opt(64, "MinHash permutations", positive)
    ngram: int = opt(4, "character n-gram length", positive)


@dataclass(frozen=True)
class SynthConfig(CommandConfig):
    output_dir: str = opt(
        "data/synth", "writes stage1/stage2/heldout.jsonl (and dev.jsonl), stats.json and stats.png here"
    )
    seed: int = opt(0, "fixes every draw")
    num_samples: int = opt(3000, "total over the splits, after dedup and balancing", positive)
    split_ratios: SplitRatios = opt(help="share of each split: stage1, stage2, heldout", factory=SplitRatios)
    multi_turn_share: float = opt(0.0, "share of samples made conversations", share)
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
    annotation: AnnotationOptions = opt(help="what the judges' disagreement does", factory=AnnotationOptions)
    dedup: DedupOptions = opt(help="MinHash dedup: threshold, num_perm, ngram", factory=DedupOptions)
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


def register() -> None:
    """conf/synth.yaml's and conf/cli/annotate.yaml's first default, in Hydra's config store: at import, and
    again before offline_config composes synth.yaml, because Hydra's joblib launcher hands each job of a
    sweep the config store of the sweep's parent process, and a worker imports this module only once."""
    register_defaults("synth", defaults_node(SynthConfig))
    register_defaults("annotate", defaults_node(AnnotateConfig))


register()
