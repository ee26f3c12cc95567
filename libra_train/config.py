"""The run config, typed, built and checked once at start-up (docs/architecture.md, "Config").

Hydra composes conf/train.yaml into a DictConfig; `RunConfig.from_hydra` turns it into the groups'
dataclasses (config_groups.py), checks every value and then the run as a whole (below), naming the key
of the first bad one. It runs before any data is prepared or any model is loaded, and everything
after it (the pipeline, the stage trainer, the evaluator, hard-sample selection) takes these objects,
never the raw DictConfig.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from libra_train.config_groups import (
    DataConfig,
    DataEntry,
    DeepSpeedConfig,
    DistributedConfig,
    EnsembleConfig,
    EvalConfig,
    LockConfig,
    LoggerConfig,
    ModelConfig,
    PeftConfig,
    SelectionConfig,
    StageConfig,
    StreamOptions,
    TrainConfig,
)
from libra_train.data.formats import FormatConfig
from libra_train.data.io import HUB_PREFIX
from libra_train.data.subset import check_limit
from libra_train.data.tables import TableConfig
from libra_train.data.taxonomy import default_rules
from libra_train.errors import ConfigError
from libra_train.typed import (
    build,
    check_value,
    defaults_node,
    describe,
    flat_keys,
    opt,
    register_defaults,
    resolve_container,
    unknown_key,
)


@dataclass(frozen=True)
class RunKeys:
    """libra-train's keys outside every group (conf/train.yaml)."""

    experiment_name: str = opt("default", "names the run in its folder, reports and W&B")
    seed: int = opt(0, "seeds training, the data subsets and the tiny backbone")
    allow_changes: bool = opt(False, "a rerun may change the settings of stages that have started")


# libra-train's config groups whose keys are one dataclass's fields (data and curriculum are assembled)
RUN_GROUPS = {
    "model": ModelConfig,
    "train": TrainConfig,
    "format": FormatConfig,
    "peft": PeftConfig,
    "deepspeed": DeepSpeedConfig,
    "eval": EvalConfig,
    "logger": LoggerConfig,
    "run_lock": LockConfig,
    "distributed": DistributedConfig,
    "ensemble": EnsembleConfig,
}


def help_keys() -> list[str]:
    """libra-train --help: every key, from the dataclasses that check it."""
    lines = describe(RunKeys) + [
        "  paths.run_dir: text = outputs/<experiment_name>/<time>",
        "      the run directory; an existing one is resumed",
    ]
    lines += describe(DataEntry, "data.<key>.") + describe(DataConfig, "data.", exclude=("entries",))
    for group, cls in RUN_GROUPS.items():
        lines += describe(cls, group + ".")
    return lines


@dataclass(frozen=True)
class RunConfig:
    experiment_name: str
    seed: int
    run_dir: Path
    model: ModelConfig
    data: DataConfig
    stages: tuple
    format: FormatConfig
    peft: PeftConfig
    deepspeed: DeepSpeedConfig
    eval: EvalConfig
    logger: LoggerConfig
    run_lock: LockConfig
    distributed: DistributedConfig
    ensemble: EnsembleConfig
    # recorded in config.yaml, where libra-report reads the curriculum axis (config.ablation_axes)
    curriculum_name: str
    # A rerun on a run directory may change settings of stages that have started (run_record.py)
    allow_changes: bool
    # Seeds the rows a data.<key>.limit keeps: the run's seed. Ensemble members train with seed + k but keep
    # the run's rows, so that they share one vocabulary (trim_vocab, model=tiny) and can form one guard.
    subset_seed: int

    @classmethod
    def from_hydra(cls, cfg: DictConfig) -> RunConfig:
        """Build and check the whole run config; raises ConfigError naming the first bad key."""
        raw = resolve_container(cfg)
        _refuse_unknown_keys(raw, cfg)
        if not str(raw["paths"].get("run_dir") or "").strip():
            raise ConfigError("paths.run_dir", "is empty; give the run directory")
        top = build(RunKeys, {f.name: raw[f.name] for f in fields(RunKeys) if f.name in raw}, "")
        built_apart = ("train", "format")  # into each stage's TrainConfig (_stages); format_config
        groups = {g: build(c, raw.get(g) or {}, g) for g, c in RUN_GROUPS.items() if g not in built_apart}
        run = cls(
            experiment_name=top.experiment_name,
            seed=top.seed,
            run_dir=Path(str(raw["paths"]["run_dir"])),
            data=_data_config(raw["data"]),
            stages=_stages(raw),
            format=format_config(raw["format"]),
            **groups,
            curriculum_name=check_value(raw["curriculum"].get("name") or "", str, "curriculum.name"),
            allow_changes=top.allow_changes,
            subset_seed=top.seed,
        )
        check_run(run)
        return run

    @property
    def resolved(self) -> dict:
        """The run's config as plain data, derived from the typed values: what config.yaml and W&B record
        (secrets masked there) and libra-report reads; `from_hydra` rebuilds this same run from it."""
        return run_mapping(self)


# The ablation axes, by the config key that sets each: W&B tags and libra-report's columns.
AXES = {
    "critic": "format.critic",
    "rules": "format.rules",
    "task": "format.task",
    "curriculum": "curriculum.name",
    "stage1_limit": "data.stage1.limit",
    "stage2_limit": "data.stage2.limit",
    "model": "model.name",
    "peft": "peft.method",
    "seed": "seed",  # repeats of one configuration: libra-report gives their mean and spread
}


def ablation_axes(resolved) -> dict:
    """Axis values of a resolved run config (a dict, or the DictConfig read back from config.yaml)."""

    cfg = resolved if OmegaConf.is_config(resolved) else OmegaConf.create(resolved)
    return {axis: OmegaConf.select(cfg, key, default=None) for axis, key in AXES.items()}


# ---------------------------------------------------------------------------------- back to a mapping


def _plain(obj) -> dict:
    """A config dataclass as YAML-ready data (tuples become lists)."""
    return OmegaConf.to_container(OmegaConf.create(asdict(obj)))


def run_mapping(run: RunConfig) -> dict:
    """RunConfig → the mapping `from_hydra` takes. `train` is the first stage's hyperparameters; each stage
    lists only what it sets otherwise. The taxonomy's own rules are left out of `format` (they are the
    default); helper keys that only fed interpolations (data.cold_dir, paths.output_root) are gone, their
    values resolved into the paths that used them."""
    base = run.stages[0].train if run.stages else TrainConfig()
    fmt = _plain(run.format)
    if run.format.categories == default_rules():
        del fmt["categories"]
    entries = {k: _plain(e) for k, e in run.data.entries.items()}
    data = {**entries, "eval_sets": dict(run.data.eval_sets), "on_invalid": run.data.on_invalid}
    return {
        "experiment_name": run.experiment_name,
        "seed": run.seed,
        "allow_changes": run.allow_changes,
        "paths": {"run_dir": str(run.run_dir)},
        "model": _plain(run.model),
        "data": {
            **data,
            "prepare": run.data.prepare,
            "table": _plain(run.data.table) if run.data.table else None,
        },
        "curriculum": {
            "name": run.curriculum_name,
            "stages": [_stage_mapping(s, base, run.seed) for s in run.stages],
        },
        "train": _plain(base),
        "format": fmt,
        **{name: _plain(getattr(run, name)) for name in _PLAIN_GROUPS},
    }


_PLAIN_GROUPS = ("peft", "deepspeed", "eval", "logger", "run_lock", "distributed", "ensemble")


def _stage_mapping(stage: StageConfig, base: TrainConfig, seed: int) -> dict:
    out = {"name": stage.name, "data": list(stage.data)}
    out.update({k: v for k, v in _plain(stage.train).items() if v != getattr(base, k)})
    if stage.selection is not None:
        selection = _plain(stage.selection)
        if selection["seed"] == seed:  # the run's seed unless the stage set its own
            del selection["seed"]
        out.update(select=selection.pop("strategy"), **selection)
    if stage.guards is not None:
        out["guards"] = list(stage.guards)
    if stage.kind != "sft":
        out["kind"] = stage.kind
        out.update(_plain(stage.stream))  # a stream stage's own keys sit beside `kind`
    return out


# ------------------------------------------------------------------------------------ conversion

# libra-train's top-level keys and the keys of its untyped groups; everything below them is checked by
# the group's dataclass (typed.build) or, for data entries, by _data_config.
RUN_KEYS = {
    **dict.fromkeys(("experiment_name", "seed", "allow_changes", "model", "data", "train", "format")),
    **dict.fromkeys(("peft", "deepspeed", "eval", "logger", "run_lock", "distributed", "ensemble")),
    "paths": ("output_root", "run_dir"),
    "curriculum": ("name", "stages"),
}
DATA_OPTIONS = ("eval_sets", "on_invalid", "prepare", "table")


def _refuse_unknown_keys(raw: dict, cfg) -> None:
    """A key the run would never read (`+trian.max_steps=5`, a misspelt group key) is an error naming it
    and the nearest valid key, not a setting silently ignored. A key of no group, or a scalar under
    `data`, is a helper only where an interpolation reads it (data.jade_dir, recipe.lr_stage1)."""
    unresolved = str(OmegaConf.to_container(cfg, resolve=False)) if OmegaConf.is_config(cfg) else ""
    read = lambda key: any(f"${{{key}{end}" in unresolved for end in ".}")  # noqa: E731 (an interpolation)
    candidates = flat_keys({k: v for k, v in raw.items() if k in RUN_KEYS})
    for name, value in raw.items():
        if name not in RUN_KEYS and not read(name):  # e.g. `recipe`, read by the Libra-Guard recipes
            leaf = flat_keys({name: value})[0] if isinstance(value, dict) and value else name
            raise unknown_key(leaf, None, candidates)
        for sub in value if RUN_KEYS.get(name) and isinstance(value, dict) else ():
            if sub not in RUN_KEYS[name]:
                raise unknown_key(f"{name}.{sub}", None, candidates)
    for name, value in raw.get("data", {}).items():
        if not isinstance(value, dict) and name not in DATA_OPTIONS and not read(f"data.{name}"):
            raise unknown_key(f"data.{name}", None, candidates)


def _data_config(raw: dict) -> DataConfig:
    """`data` holds entries (any key whose value has a `path`) beside its own options; other scalar keys
    are helpers for interpolation (e.g. data.cold_dir)."""
    entries, options = {}, {}
    for name, value in raw.items():
        if name == "table":
            options[name] = None if value is None else build(TableConfig, value, "data.table")
        elif isinstance(value, dict) and "path" in value:
            entries[name] = build(DataEntry, value, f"data.{name}")
            if entries[name].limit is not None:
                check_limit(entries[name].limit, f"data.{name}.limit")
        elif name in ("eval_sets", "on_invalid", "prepare"):
            options[name] = value
        elif isinstance(value, dict):
            raise ConfigError(f"data.{name}", "a data entry needs a `path`")
    data = build(DataConfig, {"entries": entries, **options}, "data")
    for name, path in data.eval_sets.items():
        if not isinstance(path, str) or not path:
            raise ConfigError(f"data.eval_sets.{name}", f"must be a path, got {path!r}")
    if data.prepare is not None:
        check_prepare(data.prepare)
    return data


def check_prepare(prepare: dict) -> None:
    """data.prepare names a function that exists; a step that can check its options (data_synth's
    synthesis: its SynthConfig) checks them now, before any work."""
    from hydra.utils import get_method

    if "_target_" not in prepare:
        raise ConfigError("data.prepare", "needs a _target_ (the function to call), or null for none")
    try:
        step = get_method(prepare["_target_"])
    except Exception as err:  # Hydra's own message says which part of the dotted path failed
        raise ConfigError("data.prepare._target_", str(err).splitlines()[0]) from None
    check = getattr(step, "check_options", None)
    if check is not None:
        check({k: v for k, v in prepare.items() if k != "_target_"}, "data.prepare")


def format_config(raw: dict) -> FormatConfig:
    return build(FormatConfig, raw, "format")


def _stages(raw: dict) -> tuple:
    stages_raw = raw["curriculum"].get("stages") or []
    if not isinstance(stages_raw, list):
        raise ConfigError("curriculum.stages", "must be a list of stages")
    train_keys = [f.name for f in fields(TrainConfig)]
    selection_keys = [f.name for f in fields(SelectionConfig)]
    stream_keys = [f.name for f in fields(StreamOptions)]
    stages = []
    for i, stage in enumerate(stages_raw):
        where = f"curriculum.stages[{i}]"
        if not isinstance(stage, dict):
            raise ConfigError(where, f"must be a mapping, got {stage!r}")
        merged = {**raw["train"], **{k: v for k, v in stage.items() if k in train_keys}}
        try:
            train = build(TrainConfig, merged, where)
        except ConfigError as err:  # name the key the value came from: the stage's own, or train's
            field_name = err.key.rsplit(".", 1)[-1]
            raise ConfigError(
                err.key if field_name in stage else f"train.{field_name}", err.message
            ) from None
        select = stage.get("select")
        if select not in (None, "hard", "random"):
            raise ConfigError(f"{where}.select", f"{select!r} is not one of hard, random (or leave it out)")
        selection = None
        if select is not None:
            options = {k: v for k, v in stage.items() if k in selection_keys and k != "strategy"}
            selection = build(
                SelectionConfig, {"seed": raw.get("seed", 0), **options, "strategy": select}, where
            )
            if select == "random" and selection.budget is None:
                raise ConfigError(f"{where}.budget", "select: random needs a budget (how many samples)")
        kind = stage.get("kind", "sft")
        if kind not in ("sft", "stream"):
            raise ConfigError(f"{where}.kind", f"{kind!r} is not one of sft, stream")
        if kind == "stream" and selection is not None:
            raise ConfigError(f"{where}.select", "a stream stage trains on every sample it is given")
        stream = _stream_options(stage, kind, where)
        own = {"name", "data", "select", "guards", "kind", *stream_keys, *train_keys, *selection_keys}
        own -= {"strategy"}
        unknown = [k for k in stage if k not in own]
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}", f"unknown stage key; known: {', '.join(sorted(own))}")
        guards = stage.get("guards")
        stages.append(
            StageConfig(
                name=check_value(stage.get("name") or "", str, f"{where}.name"),
                data=check_value(stage.get("data") or [], tuple, f"{where}.data"),
                train=train,
                selection=selection,
                guards=None
                if guards is None
                else tuple(str(g) for g in check_value(guards, tuple, f"{where}.guards")),
                kind=kind,
                stream=stream,
            )
        )
    return tuple(stages)


def _stream_options(stage: dict, kind: str, where: str) -> StreamOptions:
    """A stream stage's own keys, checked; on any other stage they are refused, not ignored."""
    given = {f.name: stage[f.name] for f in fields(StreamOptions) if f.name in stage}
    if given and kind != "stream":
        raise ConfigError(f"{where}.{next(iter(given))}", "is read only by a stage of kind: stream")
    return build(StreamOptions, given, where)


# ------------------------------------------------------------------------------ cross-group checks


def check_mode(mode: str, fmt: FormatConfig, key: str) -> None:
    """Label mode reads the label where the target opens: format.critic=front must generate."""
    if mode == "label" and not fmt.label_first:
        raise ConfigError(key, "label mode reads the label first; with format.critic=front use generate")


def require_label_first(fmt: FormatConfig, key: str, needs: str = "selection scores in label mode") -> None:
    """What reads the label where the target opens (selection's label mode, early stopping's verdict loss)
    needs a format that puts it there."""
    if not fmt.label_first:
        raise ConfigError(key, f"{needs}, which needs the label first (not format=front)")


def check_run(run: RunConfig) -> None:
    """Checks that span groups; each error names the key to change."""
    names = [s.name for s in run.stages]
    if len(set(names)) != len(names):
        raise ConfigError("curriculum.stages", f"stage names must be unique, got {names}")
    for i, stage in enumerate(run.stages):
        _check_stage(run, i, stage)
    if not run.stages:
        # No stages is the zero-shot baseline: it only makes sense as an evaluation of a real backbone.
        if not run.eval.before_training:
            raise ConfigError("curriculum.stages", "no stages and eval.before_training=false: nothing to do")
        if run.ensemble.members > 1:
            raise ConfigError("ensemble.members", "no stages: there are no trained members to ensemble")
        if run.model.build is not None:
            raise ConfigError(
                "model.build",
                f"a zero-shot evaluation needs a pretrained backbone, not model={run.model.build}",
            )
    _check_ignored_keys(run)
    if run.model.trim_vocab and run.model.build != "qwen2.5-tiny":
        raise ConfigError(
            "model.trim_vocab", f"trims Qwen's vocabulary for build=qwen2.5-tiny, not build={run.model.build}"
        )
    if run.model.build is None and not run.model.name_or_path:
        raise ConfigError("model.name_or_path", "give a hub id or a local path (or use model=tiny)")
    if "calibrate" in (run.eval.threshold, run.eval.temperature):
        _check_calibration_set(
            run,
            "calibrating the threshold or the temperature",
            "calibrate on rows no stage trains on, or give eval.threshold a number",
        )
    if run.eval.threshold != 0.5 and (run.eval.mode == "generate" or not run.format.label_first):
        raise ConfigError(
            "eval.threshold", "a threshold needs p_unsafe (label mode); format.critic=front generates"
        )
    if run.eval.temperature != "none" and (run.eval.mode == "generate" or not run.format.label_first):
        raise ConfigError(
            "eval.temperature", "a temperature needs p_unsafe (label mode); format.critic=front generates"
        )
    check_mode(run.eval.mode, run.format, "eval.mode")
    if run.run_lock.heartbeat_s >= run.run_lock.stale_after_s:
        raise ConfigError("run_lock.heartbeat_s", "must be shorter than run_lock.stale_after_s")
    if run.deepspeed.stage != "none" and not run.deepspeed.config:
        raise ConfigError("deepspeed.config", f"deepspeed.stage={run.deepspeed.stage} needs its config")
    _check_data_paths(run)


# Keys that an option makes meaningless: (group, fields, when the option ignores them, why). A value set
# there (other than the field's default) is refused rather than silently unused.
_TINY_SHAPE = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_layers",
    "num_heads",
    "num_kv_heads",
    "max_position_embeddings",
)
IGNORED_KEYS = (
    (
        "model",
        ("name_or_path",),
        lambda r: r.model.build is not None,
        "model.build={r.model.build} builds the backbone from scratch; for a hub id or a folder use "
        "model.build=null (or a model group such as model=qwen2.5-0.5b)",
    ),
    (
        "model",
        _TINY_SHAPE,
        lambda r: r.model.build is None,
        "a hub or local backbone ({r.model.name_or_path}) brings its own shape and vocabulary",
    ),
    (
        "model",
        ("vocab_size",),
        lambda r: r.model.build == "qwen2.5-tiny",
        "model.build=qwen2.5-tiny takes Qwen2.5's own vocabulary",
    ),
    (
        "model",
        ("vocab_from",),
        lambda r: r.model.build is None or (r.model.build == "qwen2.5-tiny" and not r.model.trim_vocab),
        "no text makes this backbone's vocabulary (a hub backbone, or qwen2.5-tiny without trim_vocab)",
    ),
    (
        "peft",
        ("r", "alpha", "dropout", "target_modules"),
        lambda r: r.peft.method == "none",
        "peft.method=none trains every weight; use peft=lora for an adapter",
    ),
    (
        "deepspeed",
        ("config",),
        lambda r: r.deepspeed.stage == "none",
        "deepspeed.stage=none; pick one, e.g. deepspeed=zero2",
    ),
    (
        "eval",
        ("calibrate_for", "calibrate_at"),
        lambda r: r.eval.threshold != "calibrate",
        "they are read only with eval.threshold=calibrate",
    ),
    (
        "eval",
        ("calibration_set",),
        lambda r: (
            r.eval.threshold != "calibrate"
            and r.eval.temperature != "calibrate"
            and not (r.eval.stream_threshold == "calibrate" and any(s.kind == "stream" for s in r.stages))
        ),
        "it is read only with eval.threshold=calibrate, eval.temperature=calibrate, or a stream stage's "
        "eval.stream_threshold=calibrate",
    ),
    (
        "eval",
        ("stream_safe_stopped",),
        lambda r: r.eval.stream_threshold != "calibrate",
        "it is read only with eval.stream_threshold=calibrate",
    ),
    ("ensemble", ("parallel",), lambda r: r.ensemble.members == 1, "ensemble.members=1 trains one model"),
)


def _check_ignored_keys(run: RunConfig) -> None:
    for group, names, ignored, why in IGNORED_KEYS:
        if not ignored(run):
            continue
        values = getattr(run, group)
        for name in names:
            default = type(values).__dataclass_fields__[name].default
            if getattr(values, name) != default:
                raise ConfigError(f"{group}.{name}", "is ignored here: " + why.format(r=run))


def _check_calibration_set(run: RunConfig, reader: str, remedy: str) -> None:
    """The set `reader` chooses on is one of data.eval_sets, and no stage's training data: a threshold chosen
    on rows the guard learnt says nothing about new rows (e.g. experiment=cold trains on COLD dev, so it
    cannot calibrate there)."""
    chosen = run.eval.calibration_set
    if chosen not in run.data.eval_sets:
        raise ConfigError(
            "eval.calibration_set",
            f"{reader} needs one of data.eval_sets: {', '.join(run.data.eval_sets)}; got {chosen!r}, "
            "not one of them",
        )
    trained = _trained_on(run, chosen)
    if trained:
        raise ConfigError(
            "eval.calibration_set",
            f"{chosen} ({run.data.eval_sets[chosen]}) is training data of {trained}: {remedy}",
        )


def _trained_on(run: RunConfig, eval_set: str) -> str | None:
    """'STAGE (data.KEY)' when a stage trains on the file of eval set `eval_set`, else None."""
    eval_file = Path(run.data.eval_sets[eval_set]).resolve()  # data/dev.jsonl and ./data/dev.jsonl are one
    for stage in run.stages:
        for key in stage.data:
            if Path(str(run.data.entries[key].path)).resolve() == eval_file:
                return f"{stage.name} (data.{key})"
    return None


def _train_key(run: RunConfig, where: str, stage: StageConfig, field: str) -> str:
    """The key a stage's hyperparameter came from: run-wide (train.FIELD) unless the stage set its own
    (run_mapping: the first stage's hyperparameters are the run's)."""
    if getattr(stage.train, field) != getattr(run.stages[0].train, field):
        return f"{where}.{field}"
    return f"train.{field}"


def _check_label_smoothing(run: RunConfig, where: str, stage: StageConfig) -> None:
    if stage.train.label_smoothing and stage.kind != "sft":
        key = _train_key(run, where, stage, "label_smoothing")
        raise ConfigError(key, f"a {stage.kind} stage's head is trained without label smoothing; set it to 0")


def _check_early_stopping(run: RunConfig, where: str, stage: StageConfig) -> None:
    """The set a stage stops on must be an eval set that no stage learns, and an SFT stage's."""
    chosen = stage.train.early_stopping_set
    if chosen is None:
        return
    key = _train_key(run, where, stage, "early_stopping_set")
    if stage.kind != "sft":
        raise ConfigError(key, f"a {stage.kind} stage trains its own head for a fixed budget; set it to null")
    require_label_first(run.format, key, needs="the stopping loss is the verdict's")
    if chosen not in run.data.eval_sets:
        raise ConfigError(key, f"{chosen!r} is not one of data.eval_sets: {', '.join(run.data.eval_sets)}")
    trained = _trained_on(run, chosen)
    if trained:
        raise ConfigError(key, f"{chosen} is training data of {trained}: stop on rows no stage trains on")


def _check_stop_rule(run: RunConfig, where: str, stage: StageConfig) -> None:
    """A stream stage that calibrates its stop rule needs a set to choose it on."""
    if stage.kind != "stream" or run.eval.stream_threshold != "calibrate":
        return
    chosen = run.eval.calibration_set
    if chosen is None and not stage.stream.rule_holdout:
        raise ConfigError(
            f"{where}.rule_holdout",
            "must be > 0: eval.stream_threshold=calibrate chooses the stop rule on the responses it keeps "
            "out of training (or name eval.calibration_set)",
        )
    if chosen is not None:
        _check_calibration_set(
            run,
            "eval.stream_threshold=calibrate",
            "choose the stop rule on rows no stage trains on, or give eval.stream_threshold a number",
        )


def _check_stage(run: RunConfig, i: int, stage: StageConfig) -> None:
    where = f"curriculum.stages[{i}]"
    if not stage.name:
        raise ConfigError(f"{where}.name", "every stage needs a name")
    if not stage.data:
        raise ConfigError(f"{where}.data", "every stage needs at least one data key (e.g. [stage1])")
    for key in stage.data:
        if key not in run.data.entries:
            raise ConfigError(f"{where}.data", f"{key!r} is not a data entry with a path under `data`")
    if stage.selection is not None and stage.selection.strategy == "hard":
        if i == 0 and not stage.guards:
            raise ConfigError(
                f"{where}.guards", "the first stage has no previous guard to select with; name guards"
            )
        require_label_first(run.format, f"{where}.select")
    _check_early_stopping(run, where, stage)
    _check_label_smoothing(run, where, stage)
    _check_stop_rule(run, where, stage)


def _check_data_paths(run: RunConfig) -> None:
    """Every file the run reads exists, or lies in the run's data folder for the preparation step to make."""
    run_data = run.run_dir / "data"
    used = sorted({key for stage in run.stages for key in stage.data})
    entries = [(f"data.{k}.path", run.data.entries[k].path) for k in used]
    entries += [(f"data.eval_sets.{k}", v) for k, v in run.data.eval_sets.items()]
    for key, path in entries:
        if path is None:
            raise ConfigError(key, "no path given")
        if str(path).startswith(HUB_PREFIX):  # a hub dataset: read (or refused in one line) at load time
            continue
        p = Path(str(path))
        made = run.data.table is not None and p in run.data.table.files().values()  # imported first
        if not p.exists() and not made and not (run.data.prepare is not None and p.parent == run_data):
            raise ConfigError(key, f"no such file or folder: {p}")


# conf/train.yaml's own keys (the rest come from its groups' YAML), from the dataclasses above
register_defaults(
    "train",
    {
        **defaults_node(RunKeys),
        **{
            group: defaults_node(RUN_GROUPS[group])
            for group in ("train", "eval", "run_lock", "distributed", "ensemble")
        },
    },
)
