"""The flow of a run (docs/architecture.md, "The flow"), after launch.py has checked the config: prepare
data → build or name the backbone → evaluate it untrained → for each stage: [select] → train → evaluate →
save → report. Each step is a function of steps.py.

The order of stages is data (curriculum.stages), not code. A finished stage is never redone on the same
run directory; an interrupted one resumes from its last checkpoint.
"""

from __future__ import annotations

import logging

from libra_train.config import RunConfig
from libra_train.config_groups import StageConfig
from libra_train.data.io import file_sha256
from libra_train.reporting.run_report import write_run_report
from libra_train.runtime import distributed as dist
from libra_train.runtime.run_dir import Manifest
from libra_train.runtime.signals import Interrupted, stop_behind
from libra_train.steps import (
    data_paths,
    evaluate_and_keep_threshold,
    evaluate_checkpoint,
    load_stage_records,
    prepare_backbone,
    save_manifest,
    select_stage_records,
    stage_data_paths,
    write_config_and_data,
)
from libra_train.tracking import make_tracker

log = logging.getLogger(__name__)


def run_curriculum(run: RunConfig) -> dict:
    """The flow above in run.run_dir (the whole run, or one ensemble member); returns its manifest."""
    resolved = write_config_and_data(run)
    stage_data = {s.name: load_stage_records(run, s) for s in run.stages}
    backbone = prepare_backbone(run, stage_data)
    manifest = Manifest(run.run_dir)
    tracker = make_tracker(run, resolved, dist.is_main())
    where = "untrained_eval"
    try:
        tracker.log_artifact("data", "dataset", data_paths(run), reference=True)
        if run.eval.before_training and "eval_before_training" not in manifest.data:
            manifest.data["eval_before_training"] = evaluate_checkpoint(
                backbone, run, run.run_dir / "untrained_eval", tracker, "untrained"
            )
            save_manifest(manifest)
        init_path = backbone
        for stage in run.stages:
            where = stage.name
            tracker.begin_stage(stage.name)
            init_path = run_stage(stage, stage_data[stage.name], init_path, run, manifest, tracker)
            eval_dir = run.run_dir / stage.name / "eval"
            tracker.log_artifact(
                f"predictions-{stage.name}", "predictions", sorted(eval_dir.glob("*/predictions.jsonl"))
            )
        if run.stages:
            tracker.log_artifact(
                "checkpoint", "model", [init_path], reference=not run.logger.upload_checkpoint
            )
        manifest.data.pop("interrupted", None)
        save_manifest(manifest)
        if dist.is_main():
            write_run_report(run.run_dir, manifest.data, f"{run.experiment_name}: {run.run_dir.name}")
    except (Interrupted, Exception) as err:  # a stop, or an error a stop may hide (stop_behind)
        stop = stop_behind(err)
        if stop is None:
            raise
        record_interruption(manifest, where, stop, run)
        raise stop from None
    finally:
        tracker.finish()
    return manifest.data


def record_interruption(manifest: Manifest, where: str, stop: Interrupted, run: RunConfig) -> None:
    """The manifest says where the run stopped: the stage, and the step a resume starts from (its last
    saved Trainer checkpoint; 0 before the first). A stage stopped while training is `interrupted`;
    one stopped while being evaluated stays `trained`, so a resume only evaluates it."""
    from libra_train.train.stage import checkpoint_step, last_complete_checkpoint

    # one this run was writing when it stopped is not whole, so not a resume point
    last = last_complete_checkpoint(run.run_dir / where / "trainer", remove_partial=dist.is_main())
    step = checkpoint_step(last) if last else 0
    if where != "untrained_eval" and manifest.stage(where)["status"] == "running":
        manifest.stage(where)["status"] = "interrupted"
    manifest.data["interrupted"] = {"stage": where, "step": step, "signal": stop.signal}
    save_manifest(manifest)


def run_stage(
    stage: StageConfig, records, init_path: str, run: RunConfig, manifest: Manifest, tracker
) -> str:
    from libra_train.stream.train import evaluate_stream, train_stream_stage
    from libra_train.train.stage import train_stage

    entry = manifest.stage(stage.name)
    stage_dir = run.run_dir / stage.name
    checkpoint = stage_dir / "checkpoint"
    if entry["status"] == "done" and checkpoint.exists():
        log.info("%s: done already, skipped", stage.name)
        return str(checkpoint)
    if entry["status"] != "trained" or not checkpoint.exists():
        entry.update(status="running", data={p: file_sha256(p) for p in stage_data_paths(run, stage)})
        save_manifest(manifest)
        if stage.selection is not None:
            records, entry["selection"] = select_stage_records(stage, records, init_path, stage_dir, run)
            save_manifest(manifest)
        if stage.kind == "stream":
            entry["train"] = train_stream_stage(stage, records, init_path, stage_dir, run)
        else:
            entry["train"] = train_stage(stage, records, init_path, stage_dir, run, tracker)
        entry.update(status="trained", checkpoint=f"{stage.name}/checkpoint")
        save_manifest(manifest)
    entry["eval"] = evaluate_and_keep_threshold(checkpoint, run, stage_dir / "eval", tracker, stage.name)
    if stage.kind == "stream" and dist.is_main():
        entry["stream"] = evaluate_stream(checkpoint, run, stage_dir / "eval", stage.train.max_length)
    entry["status"] = "done"
    save_manifest(manifest)
    return str(checkpoint)
