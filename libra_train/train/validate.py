"""Config checks, run once at start-up before any training; every error names its key."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from libra_train.data.formats import FormatConfig
from libra_train.errors import ConfigError

HPARAMS = (
    "epochs",
    "max_steps",
    "batch_size",
    "grad_accum",
    "learning_rate",
    "lr_scheduler",
    "warmup_ratio",
    "weight_decay",
    "max_length",
    "packing",
    "gradient_checkpointing",
    "logging_steps",
    "save_steps",
)
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup", "cosine_with_min_lr")


def stage_hparams(cfg, stage):
    """The run-wide `train` block with the stage's own overrides on top."""
    merged = OmegaConf.merge(cfg.train, {k: stage[k] for k in HPARAMS if k in stage})
    return merged


def _positive(key: str, value, allow_zero: bool = False) -> None:
    if value is None:
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ConfigError(key, f"must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(key, f"must be {'≥ 0' if allow_zero else '> 0'}, got {value}")


def _check_stage(cfg, i: int, stage) -> None:
    where = f"curriculum.stages[{i}]"
    if not stage.get("name"):
        raise ConfigError(f"{where}.name", "every stage needs a name")
    if not stage.get("data"):
        raise ConfigError(f"{where}.data", "every stage needs at least one data key (e.g. [stage1])")
    for key in stage.data:
        if key not in cfg.data or not OmegaConf.is_dict(cfg.data[key]) or "path" not in cfg.data[key]:
            raise ConfigError(f"{where}.data", f"{key!r} is not a data entry with a path under `data`")
    hp = stage_hparams(cfg, stage)
    for key in (
        "epochs",
        "learning_rate",
        "batch_size",
        "grad_accum",
        "max_length",
        "logging_steps",
        "save_steps",
    ):
        _positive(f"{where}.{key} (or train.{key})", hp[key])
    _positive(f"{where}.max_steps (or train.max_steps)", hp.max_steps, allow_zero=True)
    _positive(f"{where}.warmup_ratio (or train.warmup_ratio)", hp.warmup_ratio, allow_zero=True)
    if hp.lr_scheduler not in SCHEDULERS:
        raise ConfigError(
            f"{where}.lr_scheduler", f"{hp.lr_scheduler!r} is not one of {', '.join(SCHEDULERS)}"
        )
    if hp.max_length < 32:
        raise ConfigError(f"{where}.max_length", f"must be at least 32 tokens, got {hp.max_length}")
    _check_selection(where, stage, i, cfg)


def _check_selection(where: str, stage, index: int, cfg) -> None:
    select = stage.get("select")
    if select is None:
        return
    if select != "hard":
        raise ConfigError(f"{where}.select", f"{select!r} is not one of hard (or leave it out)")
    if index == 0 and not stage.get("guards"):
        raise ConfigError(
            f"{where}.guards", "the first stage has no previous guard to select with; name guards"
        )
    if not FormatConfig.from_cfg(cfg.format).label_first:
        raise ConfigError(
            f"{where}.select", "selection scores in label mode, which format.critic=front cannot"
        )
    from libra_train.train.mining import mining_config

    try:
        mining_config(stage)
    except ConfigError as err:
        raise ConfigError(f"{where}.{err.key}", err.message) from None


def _check_data_paths(cfg) -> None:
    run_data = Path(cfg.paths.run_dir) / "data"
    synth = cfg.data.synthesize_if_missing
    used = sorted({key for stage in cfg.curriculum.stages for key in stage.data})
    entries = [(f"data.{k}.path", cfg.data[k].path) for k in used]
    entries += [(f"data.eval_sets.{k}", v) for k, v in cfg.data.eval_sets.items()]
    for key, path in entries:
        if path is None:
            raise ConfigError(key, "no path given")
        p = Path(str(path))
        if not p.exists() and not (synth and p.parent == run_data):
            raise ConfigError(key, f"no such file or folder: {p}")


def validate_config(cfg) -> None:
    FormatConfig.from_cfg(cfg.format)
    if not cfg.curriculum.stages:
        # No stages is the zero-shot baseline: it only makes sense as an evaluation of a real backbone.
        if not cfg.eval.before_training:
            raise ConfigError("curriculum.stages", "no stages and eval.before_training=false: nothing to do")
        if cfg.model.build == "tiny":
            raise ConfigError(
                "model.build", "a zero-shot evaluation needs a pretrained backbone, not model=tiny"
            )
    names = [s.name for s in cfg.curriculum.stages]
    if len(set(names)) != len(names):
        raise ConfigError("curriculum.stages", f"stage names must be unique, got {names}")
    for i, stage in enumerate(cfg.curriculum.stages):
        _check_stage(cfg, i, stage)
    if cfg.peft.method not in ("none", "lora"):
        raise ConfigError("peft.method", f"{cfg.peft.method!r} is not one of none, lora")
    if cfg.model.build not in (None, "tiny"):
        raise ConfigError("model.build", f"{cfg.model.build!r} is not one of null, tiny")
    if cfg.model.build is None and not cfg.model.name_or_path:
        raise ConfigError("model.name_or_path", "give a hub id or a local path (or use model=tiny)")
    if cfg.data.on_invalid not in ("error", "skip"):
        raise ConfigError("data.on_invalid", f"{cfg.data.on_invalid!r} is not one of error, skip")
    if cfg.eval.mode not in (None, "auto", "label", "generate"):
        raise ConfigError("eval.mode", f"{cfg.eval.mode!r} is not one of auto, label, generate")
    if cfg.eval.mode == "label" and not FormatConfig.from_cfg(cfg.format).label_first:
        raise ConfigError("eval.mode", "label mode reads the label first; format.critic=front needs generate")
    _check_data_paths(cfg)
