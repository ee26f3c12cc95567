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

from libra_train.config_checks import check_run
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
