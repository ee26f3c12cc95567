"""The pipeline (DESIGN §1): setup → (evaluate untrained) → for each stage: train → evaluate → save → report.

The order of stages is data (cfg.curriculum.stages), not code. A finished stage is never redone on
the same run directory; an interrupted one resumes from its last checkpoint.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from omegaconf import OmegaConf

from libra_train.data.formats import FormatConfig, render_prompt, render_target
from libra_train.data.io import atomic_write_text, load_records, to_jsonl
from libra_train.data.subset import stratified_subset
from libra_train.eval.report import write_run_report
from libra_train.tracking import make_tracker, redact
from libra_train.train import distributed as dist
from libra_train.train.run_dir import Manifest, RunLock
from libra_train.train.validate import stage_hparams, validate_config

log = logging.getLogger(__name__)


def run_pipeline(cfg) -> dict:
    run_dir = Path(cfg.paths.run_dir)
    validate_config(cfg)
    lock = RunLock(run_dir)
    if dist.is_main():
        lock.acquire()
    try:
        return _run(cfg, run_dir)
    finally:
        if dist.is_main():
            lock.release()


def _run(cfg, run_dir: Path) -> dict:
    resolved = redact(OmegaConf.to_container(cfg, resolve=True))
    if dist.is_main():
        atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(resolved)))
    dist.once(run_dir / "data" / ".ready", lambda: prepare_data(cfg, run_dir))
    stage_data = {s.name: load_stage_records(cfg, s) for s in cfg.curriculum.stages}
    eval_sets = {name: str(path) for name, path in cfg.data.eval_sets.items()}
    backbone = prepare_backbone(cfg, run_dir, stage_data)
    manifest = Manifest(run_dir)
    tracker = make_tracker(cfg, run_dir, resolved, dist.is_main())
    try:
        if cfg.eval.before_training and "eval_before_training" not in manifest.data:
            manifest.data["eval_before_training"] = evaluate_checkpoint(
                backbone, eval_sets, cfg, run_dir / "untrained_eval", tracker, "untrained"
            )
            _save(manifest)
        init_path = backbone
        for stage in cfg.curriculum.stages:
            init_path = run_stage(
                stage, stage_data[stage.name], init_path, run_dir, cfg, manifest, tracker, eval_sets
            )
        if dist.is_main():
            write_run_report(run_dir, manifest.data, f"{cfg.experiment_name}: {run_dir.name}")
            log.info("report: %s", run_dir / "report.md")
    finally:
        tracker.finish()
    return manifest.data


def _save(manifest: Manifest) -> None:
    if dist.is_main():
        manifest.save()


def run_stage(stage, records, init_path, run_dir: Path, cfg, manifest: Manifest, tracker, eval_sets) -> str:
    from libra_train.train.stage import train_stage

    entry = manifest.stage(stage.name)
    stage_dir = run_dir / stage.name
    checkpoint = stage_dir / "checkpoint"
    if entry["status"] == "done" and checkpoint.exists():
        log.info("%s: done already, skipped", stage.name)
        return str(checkpoint)
    if entry["status"] != "trained" or not checkpoint.exists():
        entry.update(status="running", data={p: _file_hash(p) for p in stage_data_paths(cfg, stage)})
        _save(manifest)
        if stage.get("select") == "hard":
            records, entry["selection"] = select_hard_records(stage, records, init_path, stage_dir, cfg)
            _save(manifest)
        if dist.is_main():  # before training's collectives: no rank can still see the old checkpoint's marker
            (stage_dir / "eval" / ".done").unlink(missing_ok=True)
        hp = stage_hparams(cfg, stage)
        entry["train"] = train_stage(
            stage.name,
            records,
            init_path,
            stage_dir,
            hp,
            cfg,
            tracker,
            deepspeed_config=deepspeed_config(cfg),
        )
        entry.update(status="trained", checkpoint=f"{stage.name}/checkpoint")
        _save(manifest)
    entry["eval"] = evaluate_checkpoint(
        str(checkpoint), eval_sets, cfg, stage_dir / "eval", tracker, stage.name
    )
    entry["status"] = "done"
    _save(manifest)
    return str(checkpoint)


def select_hard_records(
    stage, pool: list[dict], init_path: str, stage_dir: Path, cfg
) -> tuple[list[dict], dict]:
    """Score the stage's pool with the previous stage's guard (or stage.guards) and keep the hard samples.
    Done once, on rank 0; the chosen set is a file in the stage folder, so a resumed run reuses it."""
    import json

    from libra_train.train.mining import guard_list, mine_records, mining_config

    chosen_path, summary_path = stage_dir / "selected.jsonl", stage_dir / "selection.json"

    def work():
        guards = guard_list(stage.get("guards") or [init_path])
        chosen, summary = mine_records(
            pool,
            guards,
            FormatConfig.from_cfg(cfg.format),
            stage_dir / "mining_scores",
            mining_config({**stage, "seed": cfg.seed}),
            int(cfg.eval.batch_size),
            bool(cfg.model.trust_remote_code),
        )
        atomic_write_text(chosen_path, to_jsonl(chosen))
        atomic_write_text(
            summary_path, json.dumps({**summary, "file": f"{stage.name}/selected.jsonl"}, indent=1)
        )
        log.info(
            "%s: chose %d of %d pool samples (%d hard)",
            stage.name,
            summary["chosen"],
            summary["pool"],
            summary["hard"],
        )

    dist.once(stage_dir / "selected.ready", work)
    return load_records(chosen_path), json.loads(summary_path.read_text())


def evaluate_checkpoint(path: str, eval_sets: dict, cfg, out_dir: Path, tracker, stage: str) -> dict:
    """Evaluation runs on rank 0 while the other ranks wait at a marker: eval sets are small next to
    training, and label mode is one forward pass per sample, so sharding would save seconds at the
    cost of gathering predictions across ranks; one writer also keeps predictions.jsonl whole."""
    done = out_dir / ".done"
    results: dict = {}

    def work():
        from transformers.integrations.deepspeed import unset_hf_deepspeed_config

        from libra_train.eval.api import evaluate
        from libra_train.model import default_device, load_model_and_tokenizer

        # Rank 0 alone loads the checkpoint: a ZeRO-3 config left registered by the stage would make
        # from_pretrained partition the weights with collectives the waiting ranks never join.
        unset_hf_deepspeed_config()
        model, tokenizer = load_model_and_tokenizer(path, cfg.model.trust_remote_code, cfg.model.dtype)
        model.to(default_device())
        results.update(
            evaluate(model, tokenizer, eval_sets, {"format": cfg.format, "eval": cfg.eval}, out_dir)
        )
        for name, metrics in results.items():
            tracker.log_eval(stage, name, metrics, out_dir / name / "confusion.png")

    dist.once(done, work, redo=True)
    if not results:  # other ranks read rank 0's figures
        import json

        results = {name: json.loads((out_dir / name / "metrics.json").read_text()) for name in eval_sets}
    return results


def prepare_data(cfg, run_dir: Path) -> None:
    """Synthesize the run's data with data_synth's offline backend if the configured files are missing."""
    wanted = [Path(cfg.data.stage1.path), Path(cfg.data.stage2.path)] + [
        Path(p) for p in cfg.data.eval_sets.values()
    ]
    if all(p.exists() for p in wanted) or not cfg.data.synthesize_if_missing:
        return
    from data_synth.pipeline import offline_config, synthesize

    synth_cfg = offline_config(
        **{
            "output_dir": str(run_dir / "data"),
            "cache_dir": None,
            **OmegaConf.to_container(cfg.data.synth, resolve=True),
        }
    )
    log.info(
        "no data at %s: synthesizing %d samples (offline backend)",
        cfg.data.stage1.path,
        synth_cfg.num_samples,
    )
    synthesize(synth_cfg)


def stage_data_paths(cfg, stage) -> list[str]:
    return [str(cfg.data[key].path) for key in stage.data]


def load_stage_records(cfg, stage) -> list[dict]:
    records = []
    for key in stage.data:
        part = load_records(
            cfg.data[key].path,
            on_invalid=cfg.data.on_invalid,
            rejected_path=Path(cfg.paths.run_dir) / "data" / f"rejected-{key}.jsonl",
        )
        records += stratified_subset(part, cfg.data[key].limit, int(cfg.seed), key=f"data.{key}.limit")
    return records


def prepare_backbone(cfg, run_dir: Path, stage_data: dict) -> str:
    if cfg.model.build != "tiny":
        return str(cfg.model.name_or_path)
    from libra_train.model import build_tiny

    fmt = FormatConfig.from_cfg(cfg.format)
    records = [r for recs in stage_data.values() for r in recs]
    texts = [render_prompt(r, None, fmt) + render_target(r, fmt) for r in records]
    path = run_dir / "backbone"
    dist.once(run_dir / "backbone.ready", lambda: build_tiny(texts, path, cfg.model))
    return str(path)


def _file_hash(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def deepspeed_config(cfg):
    if cfg.deepspeed.stage in (None, "none"):
        return None
    return OmegaConf.to_container(cfg.deepspeed.config, resolve=True)
