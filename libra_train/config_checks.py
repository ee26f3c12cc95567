"""The run config's checks that span groups (`check_run`), each error naming the key to change, and the
checks other commands share (`check_mode`, `require_label_first`). `RunConfig.from_hydra` (config.py)
runs `check_run` once it has built every group; nothing after start-up checks the config again.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from libra_train.config_groups import StageConfig
from libra_train.data.formats import FormatConfig
from libra_train.data.io import HUB_PREFIX
from libra_train.data.written_answers import load_written
from libra_train.errors import ConfigError, DataError

if TYPE_CHECKING:  # the run's type only: config.py builds the run and imports this module
    from libra_train.config import RunConfig


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
    for k in used:  # read now, not after the stages before the one that adds them have trained
        written = run.data.entries[k].written_answers
        if written:
            try:
                load_written(written)
            except DataError as error:
                raise ConfigError(f"data.{k}.written_answers", str(error)) from None
