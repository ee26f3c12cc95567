"""A run directory's record stays true. Rerunning a directory whose stages have started with settings
that would have changed those stages is refused, naming the keys, unless `allow_changes=true` says the
change is intended; then, and for settings that touch only work not yet done (more eval sets, the
logger), config.yaml becomes the new config and the manifest records what changed, from which stage on.
"""

from __future__ import annotations

import logging
import os

from omegaconf import OmegaConf

from libra_train.config import RunConfig, run_mapping
from libra_train.errors import ConfigError, LibraError
from libra_train.runtime.run_dir import Manifest

log = logging.getLogger(__name__)

# Keys whose change leaves finished stages as they were: they act only on what is still to run.
FUTURE_ONLY = (
    "experiment_name",
    "logger.",
    "eval.",
    "data.eval_sets.",
    "distributed.",
    "run_lock.",
    "ensemble.parallel",
)
STARTED = ("running", "interrupted", "trained", "done")


def check_and_record_changes(run: RunConfig, previous: dict, manifest: Manifest) -> None:
    """`previous`: the run directory's config.yaml. Raises ConfigError for a change to a started stage's
    settings (unless run.allow_changes); records every change in the manifest."""
    started = [s["name"] for s in manifest.data["stages"] if s.get("status") in STARTED]
    if not started:
        return
    try:
        before = _flat(run_mapping(RunConfig.from_hydra(OmegaConf.create(previous))))
    except LibraError as err:  # e.g. a config.yaml an older version wrote: say so, do not guess
        if not run.allow_changes:
            raise ConfigError(
                "paths.run_dir",
                f"its config.yaml cannot be compared with this run's ({err}); use a new paths.run_dir, or "
                f"add allow_changes=true to go on in this one",
            ) from None
        _record(manifest, run, started, {"config.yaml": [f"unreadable: {err}", "this run's"]}, allowed=True)
        return
    now = _flat(run_mapping(run))
    changed = {
        k: [before.get(k), now.get(k)]
        for k in sorted(set(before) | set(now))
        if not _same(before.get(k), now.get(k))
    }
    changed.pop("allow_changes", None)
    if not changed:
        return
    stage_names = [s.name for s in run.stages]
    affecting = [k for k in changed if not _future_only(k, started, stage_names)]
    if affecting and not run.allow_changes:
        shown = "; ".join(f"{k}: {changed[k][0]!r} → {changed[k][1]!r}" for k in affecting[:5])
        raise ConfigError(
            affecting[0],
            f"differs from {run.run_dir / 'config.yaml'}, which trained {', '.join(started)} ({shown}). "
            f"Start a new run with another paths.run_dir, or add allow_changes=true to go on in this one "
            f"with the change from the next stage on",
        )
    _record(manifest, run, started, changed, allowed=bool(affecting))


def _record(manifest: Manifest, run: RunConfig, started: list[str], changed: dict, allowed: bool) -> None:
    """What changed, and the first stage that runs with it (None: every stage is done)."""
    pending = [s.name for s in run.stages if s.name not in started or _status(manifest, s.name) != "done"]
    record = {"changed": changed, "from_stage": pending[0] if pending else None, "allowed": allowed}
    manifest.data.setdefault("config_changes", []).append(record)
    log.info("config changed from %s on: %s", record["from_stage"], ", ".join(changed))


def _status(manifest: Manifest, name: str) -> str:
    return next((s["status"] for s in manifest.data["stages"] if s["name"] == name), "pending")


def _future_only(key: str, started: list[str], stage_names: list[str]) -> bool:
    if key.startswith(FUTURE_ONLY):
        return True
    if key.startswith("curriculum.stages."):  # a stage not yet started may be added or changed
        index = int(key.split(".")[2])
        return index >= len(stage_names) or stage_names[index] not in started
    return False


def _same(before, now) -> bool:
    """Equal, or one path written relative to the working directory and the other absolute: a run
    started as paths.run_dir=outputs/x and rerun as paths.run_dir=$PWD/outputs/x is the same run."""
    if before == now:
        return True
    return (
        isinstance(before, str) and isinstance(now, str) and os.path.abspath(before) == os.path.abspath(now)
    )


def _flat(mapping, prefix: str = "") -> dict:
    """{"a": {"b": 1}, "c": [x, y]} → {"a.b": 1, "c.0": x, "c.1": y}: one entry per leaf."""
    items = mapping.items() if isinstance(mapping, dict) else enumerate(mapping)
    out = {}
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, (dict, list)) and value:
            out.update(_flat(value, name + "."))
        else:
            out[name] = value
    return out
