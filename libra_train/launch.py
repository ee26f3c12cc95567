"""libra-train's front door: check the whole config, take the run directory's lock, then run the
curriculum once (pipeline.py) or once per ensemble member (members.py)."""

from __future__ import annotations

from libra_train.config import RunConfig
from libra_train.members import run_members
from libra_train.pipeline import run_curriculum
from libra_train.runtime import distributed as dist
from libra_train.runtime.run_dir import RunLock
from libra_train.runtime.signals import exit_cleanly_on_sigterm


def run_pipeline(cfg) -> dict:
    """Run the whole curriculum from Hydra's composed config; returns the manifest."""
    run = RunConfig.from_hydra(cfg)  # every value checked here, before any data or model is touched
    run.format.load_files()  # a bad policy or few-shot file stops the run here too
    dist.set_timeout(run.distributed.timeout_s)
    exit_cleanly_on_sigterm()
    lock = RunLock(run.run_dir, run.run_lock.stale_after_s, run.run_lock.heartbeat_s)
    if dist.is_main():
        lock.acquire()
    try:
        return run_members(run) if run.ensemble.members > 1 else run_curriculum(run)
    finally:
        if dist.is_main():
            lock.release()
