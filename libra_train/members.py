"""ensemble.members > 1: the curriculum once per member, then the members served as one guard.

Member k is the same run with seed + k and model.init_seed + k, in members/member<k>/ (a run directory
of its own: its manifest, report and resume points). All members read the run's one copy of the data, so
a tokenizer built from it is the same for each. Their last checkpoints become ensemble/checkpoint
(ensemble.py), which is evaluated and given its threshold like a stage. The run's own manifest lists each
member's final figures and the ensemble's, so report.md compares them.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from libra_train.config import RunConfig
from libra_train.ensemble import write_ensemble
from libra_train.errors import LibraError
from libra_train.pipeline import run_curriculum
from libra_train.reporting.run_report import write_run_report
from libra_train.runtime import distributed as dist
from libra_train.runtime.run_dir import Manifest
from libra_train.runtime.signals import stop_on_signals
from libra_train.steps import evaluate_and_keep_threshold, save_manifest, write_config_and_data
from libra_train.tracking import make_tracker

log = logging.getLogger(__name__)


def member_config(run: RunConfig, k: int) -> RunConfig:
    """Member k: its own folder and seeds; the data paths stay the run's, already resolved. Its recorded
    config (config.yaml) follows from these values."""
    return replace(
        run,
        run_dir=run.run_dir / "members" / f"member{k}",
        seed=run.seed + k,
        model=replace(run.model, init_seed=run.model.init_seed + k),
    )


def train_members(run: RunConfig, members: list[RunConfig]) -> list[dict]:
    """Each member's last stage (from its manifest), members trained ensemble.parallel at a time."""
    parallel = min(run.ensemble.parallel, len(members))
    if parallel == 1 or dist.world_size() > 1:
        return [run_curriculum(m)["stages"][-1] for m in members]
    import torch

    threads = max(1, torch.get_num_threads() // parallel)
    log.info("training %d members, %d at a time with %d thread(s) each", len(members), parallel, threads)
    _train_in_processes(members, parallel, threads)
    return [Manifest(m.run_dir).data["stages"][-1] for m in members]


def _train_in_processes(members: list[RunConfig], parallel: int, threads: int) -> None:
    """Up to `parallel` member processes at once. Whatever ends this one early (a member's error,
    SIGTERM, Ctrl-C) first stops the members still running, with SIGTERM: each exits as a stopped run
    does, and a rerun resumes it from its last checkpoint."""
    import multiprocessing
    from multiprocessing.connection import wait

    # spawn, not fork: a forked child would inherit this process's torch thread pool and tracker state
    context = multiprocessing.get_context("spawn")
    errors = context.SimpleQueue()  # a member's LibraError, as its one-line message
    pending, running = list(members), {}
    try:
        while pending or running:
            while pending and len(running) < parallel:
                member = pending.pop(0)
                process = context.Process(target=_member_process, args=(member, threads, errors))
                process.start()
                running[process] = member
            wait([p.sentinel for p in running])
            for process in [p for p in running if not p.is_alive()]:
                member = running.pop(process)
                if process.exitcode != 0:
                    why = errors.get() if not errors.empty() else f"exit status {process.exitcode}; see above"
                    raise LibraError(f"ensemble member {member.run_dir}: {why}")
    finally:
        for process in running:
            process.terminate()
        for process in running:
            process.join()


def _member_process(member: RunConfig, threads: int, errors) -> None:
    """One member in a process of its own: its log lines carry its folder name."""
    import torch

    from libra_train.cli_utils import quiet_libraries

    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.INFO, format=f"[{member.run_dir.name}] %(message)s")
    quiet_libraries()
    stop_on_signals()
    try:
        run_curriculum(member)
    except LibraError as err:  # said by the parent in one line, as the CLIs say it
        errors.put(str(err))
        raise SystemExit(2) from None


def run_members(run: RunConfig) -> dict:
    resolved = write_config_and_data(run)
    manifest = Manifest(run.run_dir)
    members = [member_config(run, k) for k in range(run.ensemble.members)]
    finals = []
    for member, last in zip(members, train_members(run, members)):
        finals.append(member.run_dir / last["checkpoint"])
        manifest.stage(member.run_dir.name).update(
            status="done",
            seed=member.seed,
            checkpoint=str(finals[-1].relative_to(run.run_dir)),
            eval=last.get("eval") or {},
        )
    save_manifest(manifest)
    entry = manifest.stage("ensemble")
    if entry["status"] != "done":
        checkpoint = run.run_dir / "ensemble" / "checkpoint"
        dist.once(checkpoint.parent / "checkpoint.ready", lambda: write_ensemble(checkpoint, finals))
        tracker = make_tracker(run, resolved, dist.is_main())
        try:
            entry["eval"] = evaluate_and_keep_threshold(
                checkpoint, run, checkpoint.parent / "eval", tracker, "ensemble"
            )
        finally:
            tracker.finish()
        entry.update(
            status="done",
            checkpoint="ensemble/checkpoint",
            members=[str(p.relative_to(run.run_dir)) for p in finals],
        )
        save_manifest(manifest)
    if dist.is_main():
        write_run_report(run.run_dir, manifest.data, f"{run.experiment_name}: {run.run_dir.name} (ensemble)")
    return manifest.data
