"""The config groups' dataclasses: one per group of conf/ (model, train, format, eval...), each field
with its default, its help text (`metadata["help"]`) and, where a range matters, its check.
`config.RunConfig.from_hydra` builds them from the composed config (docs/architecture.md, "Config").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from libra_train.data.tables import TableConfig
from libra_train.typed import fraction, non_negative, opt, positive


def _threshold(value) -> str | None:
    if value == "calibrate" or (not isinstance(value, str) and 0 < value < 1):
        return None
    return f"must be a number in (0, 1) or calibrate, got {value!r}"


Dtype = Literal["auto", "bf16", "fp16", "fp32"]  # every command's dtype; model.py loads by it


@dataclass(frozen=True)
class ModelConfig:
    name: str = opt("tiny", "the model group's name, shown in reports and W&B")
    name_or_path: str | None = opt(None, "hub id or local directory of the backbone (null with build=tiny)")
    build: Literal["tiny", "qwen2.5-tiny"] | None = opt(
        None,
        "tiny: build a small Qwen2 model from scratch, tokenizer trained on the run's text; "
        "qwen2.5-tiny: the same with Qwen2.5's real tokenizer and chat template",
    )
    vocab_size: int = opt(3000, "tiny: tokenizer vocabulary trained on the run's text", positive)
    hidden_size: int = opt(128, "tiny: hidden width", positive)
    intermediate_size: int = opt(384, "tiny: MLP width", positive)
    num_layers: int = opt(4, "tiny: decoder layers", positive)
    num_heads: int = opt(4, "tiny: attention heads", positive)
    num_kv_heads: int = opt(2, "tiny: key/value heads (grouped-query attention)", positive)
    max_position_embeddings: int = opt(2048, "tiny: longest sequence the model can take", positive)
    init_seed: int = opt(0, "tiny: seed of the random initial weights")
    trim_vocab: bool = opt(
        False, "qwen2.5-tiny: keep only the tokens the stage data uses (a smaller, faster output layer)"
    )
    vocab_from: Literal["all_stages", "first_stage"] = opt(
        "all_stages",
        "tiny, and qwen2.5-tiny's trim: the stages whose text makes the vocabulary. first_stage: a token "
        "only later stages use is not given a random embedding that the first stage never trains",
    )
    trust_remote_code: bool = opt(False, "run a hub repo's own modelling code (off unless you trust it)")
    dtype: Dtype = opt("auto", "weights' dtype when loading")
    attn_implementation: str | None = opt(
        None, "sdpa, eager or flash_attention_2 (null: transformers' choice)"
    )


@dataclass(frozen=True)
class TrainConfig:
    """One stage's hyperparameters: the run-wide `train` block with the stage's own overrides on top."""

    epochs: float = opt(1, "passes over the stage's data (ignored when max_steps > 0)", positive)
    max_steps: int = opt(0, "> 0: stop after this many optimizer steps", non_negative)
    batch_size: int = opt(8, "sequences per device per step", positive)
    grad_accum: int = opt(1, "gradient accumulation steps", positive)
    learning_rate: float = opt(2e-5, "peak learning rate", positive)
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup", "cosine_with_min_lr"] = opt(
        "cosine", "learning-rate schedule"
    )
    warmup_ratio: float = opt(0.03, "share of the stage's steps spent warming up", fraction)
    weight_decay: float = opt(0.0, "AdamW weight decay", non_negative)
    label_smoothing: float = opt(
        0.0,
        "share of each target token's probability spread evenly over the vocabulary, so the verdict never "
        "saturates (the Trainer's label smoothing: a second forward pass a step, over the whole vocabulary); "
        "0: none",
        fraction,
    )
    max_length: int = opt(
        1024,
        "tokens per sample; longer ones are cut on the conversation side, never the target",
        lambda v: None if v >= 32 else f"must be at least 32 tokens, got {v}",
    )
    packing: Literal["auto"] | bool = opt("auto", "auto: BFD packing where flash attention runs, else padded")
    length_buckets: int = opt(
        0,
        "> 0: padded batches cut from megabatches of this many batches sorted by length within each label, "
        "dealt in a random order (train/batching.py); 0: shuffled batches",
        non_negative,
    )
    gradient_checkpointing: bool = opt(False, "recompute activations to save memory")
    logging_steps: int = opt(10, "log the loss every N steps", positive)
    save_steps: int = opt(200, "checkpoint every N steps (what a killed run resumes from)", positive)
    early_stopping_set: str | None = opt(
        None,
        "an entry of data.eval_sets no stage trains on: its loss on the target is measured at every "
        "checkpoint, the stage keeps the checkpoint where it was lowest and stops after "
        "early_stopping_patience checkpoints without a new lowest; null: train the whole budget",
    )
    early_stopping_patience: int = opt(3, "checkpoints without a new lowest loss before stopping", positive)


CRITERIA = ("misclassified", "low_margin", "disagreement")


def _criteria(value) -> str | None:
    unknown = [c for c in value if c not in CRITERIA]
    return f"{unknown or '[]'} — allowed: {', '.join(CRITERIA)}" if unknown or not value else None


@dataclass(frozen=True)
class SelectionConfig:
    """Hard-sample selection: a stage's `select: hard` options, or libra-mine's."""

    budget: int | None = opt(
        None,
        "samples to choose; null: every hard sample, plus the easy share",
        lambda v: None if v >= 1 else f"must be a positive whole number or null, got {v!r}",
    )
    easy_share: float = opt(0.2, "share of the chosen set that is easy", fraction)
    margin: float = opt(
        0.1,
        "low margin: |p_unsafe - 0.5| < margin",
        lambda v: None if 0 < v <= 0.5 else f"must be in (0, 0.5], got {v}",
    )
    criteria: tuple = opt(CRITERIA, f"what makes a sample hard: {', '.join(CRITERIA)}", _criteria)
    noise_margin: float | None = opt(
        None,
        "a sample the guards get wrong by more than this (|p_unsafe - threshold| > noise_margin) is taken "
        "for a wrong label and never chosen; null: every wrong sample is hard",
        lambda v: None if 0 < v < 1 else f"must be in (0, 1) or null, got {v}",
    )
    seed: int = opt(0, "fixes the order of ties and of the easy (or random) samples")
    strategy: Literal["hard", "random"] = opt(
        "hard",
        "a stage's `select:` value; hard: the hard samples and the easy share; random: `budget` samples at "
        "random, spread over label × category cells as the hard ones are (the baseline at equal budget)",
    )


@dataclass(frozen=True)
class StreamOptions:
    """A stream stage's own keys, written in the stage's mapping beside `kind: stream`."""

    backbone: Literal["frozen", "shared"] = opt(
        "frozen",
        "frozen: only the head trains; shared: the backbone trains too, with the guard's label loss beside "
        "the head's, so that one checkpoint serves label mode and streaming",
    )
    backbone_learning_rate: float = opt(1e-4, "the backbone's rate with backbone: shared", positive)
    rule_holdout: float = opt(
        0.1,
        "eval.stream_threshold=calibrate without eval.calibration_set: the share of the stage's responses, "
        "label by label, kept out of training to choose the stop rule on",
        fraction,
    )


@dataclass(frozen=True)
class StageConfig:
    name: str = opt(help="the stage's folder and manifest name")  # checked in _check_stage
    data: tuple = opt(help="data keys (entries of `data`) whose records the stage trains on")
    train: TrainConfig = opt(help="effective hyperparameters (train block + the stage's overrides)")
    selection: SelectionConfig | None = opt(None, "select: hard — train on the hard samples of the pool only")
    guards: tuple | None = opt(None, "selection: guards that score the pool (null: the previous stage's)")
    kind: Literal["sft", "stream"] = opt(
        "sft", "sft: train the guard; stream: a stream head on the previous stage's guard"
    )
    stream: StreamOptions = opt(
        factory=lambda: StreamOptions(),
        help="a stream stage's keys (backbone, backbone_learning_rate, rule_holdout)",
    )


@dataclass(frozen=True)
class DataEntry:
    path: str | None = opt(None, "a file or folder of guard-schema records (JSONL, JSON, Parquet)")
    limit: int | float | str | None = opt(
        None, "a count, or a fraction in (0, 1]: a nested, stratified subset"
    )
    counter_openings: Literal["none", "helpful", "both"] = opt(
        "none",
        "training: add each pair's counterparts (data/counter_openings.py): helpful, its safe answer "
        "without the refusal opening; both, also its unsafe answer behind that opening",
    )
    counter_layouts: bool = opt(
        False,
        "training: add each pair's layout counterparts (data/counter_layouts.py) where its unsafe answer "
        "is a numbered list: its safe answer as a numbered list, its unsafe answer as prose",
    )
    written_answers: str | None = opt(
        None,
        "training: long, helpful safe answers written for real pairs' questions (data/written_answers.py): "
        "jade, or a JSONL path of {pair, response}; each whose pair has an unsafe answer here is added",
    )


@dataclass(frozen=True)
class DataConfig:
    entries: dict = opt(help="every data key with a path (stage1, stage2, …) → DataEntry", factory=dict)
    eval_sets: dict = opt(help="eval set name → path, scored after every stage", factory=dict)
    on_invalid: Literal["error", "skip"] = opt(
        "error", "error: stop at a bad record; skip: write it to rejected"
    )
    prepare: dict | None = opt(None, "the step that makes missing data files (Hydra _target_); null: none")
    table: TableConfig | None = opt(None, "a real labelled table imported and split on first use")


@dataclass(frozen=True)
class PeftConfig:
    method: Literal["none", "lora"] = opt("none", "none: full fine-tuning; lora: a LoRA adapter through PEFT")
    r: int = opt(16, "LoRA rank", positive)
    alpha: float = opt(32, "LoRA alpha", positive)
    dropout: float = opt(0.05, "LoRA dropout", fraction)
    target_modules: tuple = opt(("q_proj", "k_proj", "v_proj", "o_proj"), "modules that get an adapter")


@dataclass(frozen=True)
class DeepSpeedConfig:
    stage: Literal["none", "zero2", "zero3", "zero3_offload"] = opt("none", "DeepSpeed ZeRO stage")
    config: dict | None = opt(None, "the DeepSpeed JSON config handed to the HF integration")


Controversial = Literal["unsafe", "safe"]
EvalMode = Literal["auto", "label", "generate"]  # also what eval/scoring.resolve_mode accepts


@dataclass(frozen=True)
class EvalConfig:
    before_training: bool = opt(True, "also score the untrained backbone (the baseline row)")
    mode: EvalMode = opt("auto", "auto: label mode when the label comes first")
    batch_size: int = opt(16, "samples per forward pass or generate call", positive)
    max_new_tokens: int = opt(256, "generate mode: tokens to decode at most", positive)
    threshold: float | Literal["calibrate"] = opt(
        0.5, "unsafe when p_unsafe > threshold; calibrate: chosen on eval.calibration_set", _threshold
    )
    calibration_set: str | None = opt(
        None, "the eval set (a key of data.eval_sets) the threshold and the temperature are chosen on"
    )
    calibrate_for: Literal["accuracy", "f1"] = opt("accuracy", "what the calibrated threshold maximises")
    calibrate_at: Literal["edge", "middle"] = opt(
        "edge",
        "where in the interval of equally good thresholds the calibrated one sits: its lower edge (a score "
        "of the calibration set), or its middle in logit space",
    )
    temperature: Literal["none", "calibrate"] = opt(
        "none",
        "calibrate: fit one temperature on eval.calibration_set (p(unsafe) = sigmoid(logit / T)), saved and "
        "applied with the threshold",
    )
    controversial_as: Controversial = opt(
        "unsafe", "a guard's third verdict (ShieldLM 有争议, Qwen3Guard Controversial): strict or loose"
    )
    stream_threshold: float | Literal["calibrate"] = opt(
        "calibrate",
        "a stream stage: a token counts when its p(unsafe) is above this; calibrate: the lowest threshold "
        "that stops at most eval.stream_safe_stopped of the safe responses of a set of its own "
        "(eval.calibration_set, else the share of the stage's data its `rule_holdout` keeps out)",
        _threshold,
    )
    stream_k: int = opt(2, "a stream stage: the rule stops a response at k consecutive such tokens", positive)
    stream_safe_stopped: float = opt(
        0.05, "stream_threshold=calibrate: the share of safe responses the chosen rule may stop", fraction
    )


@dataclass(frozen=True)
class LoggerConfig:
    backend: Literal["wandb", "none"] = opt("none", "experiment tracking")
    project: str = opt("libra-train", "W&B project")
    group: str | None = opt(None, "W&B group (null: the experiment name; sweep points share one)")
    mode: Literal["online", "offline", "disabled"] | None = opt(
        None, "null: online if logged in, else offline"
    )
    table_rows: int = opt(
        200, "rows in each eval set's predictions table (mistakes, then lowest margins)", positive
    )
    upload_checkpoint: bool = opt(False, "upload the final checkpoint (else logged as a reference)")


@dataclass(frozen=True)
class DistributedConfig:
    timeout_s: float = opt(
        10800.0,
        "longest wait for another rank (markers and the process group's collectives); a dead or hung "
        "rank is named after it",
        positive,
    )


@dataclass(frozen=True)
class LockConfig:
    stale_after_s: float = opt(
        600.0, "a lock held from another host is taken over once its heartbeat is this old", positive
    )
    heartbeat_s: float = opt(30.0, "how often the holder touches its lock", positive)


@dataclass(frozen=True)
class EnsembleConfig:
    members: int = opt(
        1,
        "> 1: run the curriculum this many times (seed + k, model.init_seed + k) on the same data and "
        "serve the members' mean next-token distribution as one guard (ensemble/checkpoint)",
        positive,
    )
    parallel: int = opt(
        1,
        "members trained at once, each in its own process with an equal share of the CPU threads (a "
        "small model uses one thread better than two); under torchrun members run one after another",
        positive,
    )
