"""The steps a run is made of, each callable alone: the config and data written, the stage data loaded,
the backbone built, a checkpoint evaluated on every eval set (and its threshold kept), the hard samples
of a pool selected. pipeline.py chains them into the curriculum; members.py into an ensemble.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from omegaconf import OmegaConf

from libra_train.config import RunConfig
from libra_train.config_groups import DataEntry, StageConfig
from libra_train.data.counter_layouts import layout_counterparts
from libra_train.data.counter_openings import counterparts
from libra_train.data.formats import refuse_conversation, render_prompt, render_target
from libra_train.data.io import HUB_PREFIX, atomic_write_text, load_records, read_raw
from libra_train.data.recorded_format import save_format
from libra_train.data.subset import stratified_subset
from libra_train.data.written_answers import load_written, written_counterparts, written_path
from libra_train.eval.decision import Decision, save_decision
from libra_train.redaction import redact
from libra_train.run_record import check_and_record_changes
from libra_train.runtime import distributed as dist
from libra_train.runtime.run_dir import Manifest

log = logging.getLogger(__name__)


def write_config_and_data(run: RunConfig) -> dict:
    """config.yaml, once a rerun's changes are checked against the one there (run_record.py), and the run's
    data made once (data.prepare); returns the redacted config."""
    resolved = redact(run.resolved)

    def write_config():
        path = run.run_dir / "config.yaml"
        if path.exists():
            manifest = Manifest(run.run_dir)
            check_and_record_changes(run, OmegaConf.to_container(OmegaConf.load(path)), manifest)
            manifest.save()
        atomic_write_text(path, OmegaConf.to_yaml(OmegaConf.create(resolved)))

    dist.once(run.run_dir / f".config-{dist.launch_id()}", write_config, redo=True)
    dist.once(run.run_dir / "data" / ".ready", lambda: prepare_data(run))
    return resolved


def save_manifest(manifest: Manifest) -> None:
    if dist.is_main():
        manifest.save()


def evaluate_and_keep_threshold(checkpoint: Path, run: RunConfig, out_dir: Path, tracker, name: str) -> dict:
    """Evaluate a checkpoint on every eval set and save beside it the threshold it was scored with and
    the format it was trained with: libra-infer and libra-serve decide with and read them by default."""
    results = evaluate_checkpoint(str(checkpoint), run, out_dir, tracker, name)
    if dist.is_main() and results:
        first = next(iter(results.values()))
        if first.get("threshold") is not None:  # generate mode decides by the text: nothing to keep
            source = (first.get("threshold_source") or "default").split(": this set")[0]
            save_decision(checkpoint, Decision(first["threshold"], first.get("temperature", 1.0), source))
        save_format(checkpoint, run.format)
    return results


def select_stage_records(stage: StageConfig, pool, init_path: str, stage_dir: Path, run: RunConfig):
    """The stage's pool scored by the previous stage's guard (or stage.guards), its hard samples kept in
    the stage folder (selected.jsonl), so a resumed run reuses them."""
    from libra_train.train.selection import select_samples

    guards = list(stage.guards or [init_path])
    chosen, summary = select_samples(
        pool,
        guards,
        run.format,
        stage.selection,
        stage_dir / "selected.jsonl",
        stage_dir / "selection_scores",
        run.eval.batch_size,
        run.model,
    )
    return chosen, {**summary, "file": f"{stage.name}/selected.jsonl"}


def evaluate_checkpoint(path: str, run: RunConfig, out_dir: Path, tracker, stage: str) -> dict:
    """Every rank (one process: the only one) loads the checkpoint on its own device and scores every
    world-th sample of each eval set; rank 0 then joins the shares, decides, writes predictions.jsonl once
    and the metrics, and logs them to the tracker from the rows in memory. The merge marker carries the
    launch id, so the ranks of a relaunch never take an old marker for theirs; a relaunch resumes each
    rank's partial share."""
    from libra_train.eval.evaluator import merge_shards, predict_shard, score_sets
    from libra_train.eval.metrics import headline, one_sided_note

    def my_share():
        model, tokenizer = _load_for_eval(path, run)
        eval_sets, fmt = run.data.eval_sets, run.format
        predict_shard(model, tokenizer, eval_sets, fmt, run.eval, out_dir, dist.rank(), dist.world_size())

    results: dict = {}

    def merge():
        preds, lacking = merge_shards(run.data.eval_sets, run.format, out_dir, dist.world_size())
        metrics, rows = score_sets(preds, lacking, run.eval, out_dir)
        results.update(metrics)
        for name in metrics:
            tracker.log_eval(stage, name, metrics[name], rows[name])
            log.info("%s, eval %s: %s", stage, name, headline(metrics[name]))
            if one_sided_note(metrics[name]):
                log.warning("%s, eval %s: %s", stage, name, one_sided_note(metrics[name]))

    dist.every_rank(out_dir, "eval", my_share)
    dist.once(out_dir / f".merged-{dist.launch_id()}", merge, redo=True)
    return results or _read_results(run, out_dir)


def _read_results(run: RunConfig, out_dir: Path) -> dict:
    """The figures rank 0 wrote, for the ranks that did not write them."""
    return {name: json.loads((out_dir / name / "metrics.json").read_text()) for name in run.data.eval_sets}


def _load_for_eval(path: str, run: RunConfig):
    """The checkpoint, whole, on this rank's device. A ZeRO-3 config left registered by the stage would
    make from_pretrained partition the weights with collectives that the other ranks never join."""
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    from libra_train.model import load_configured

    unset_hf_deepspeed_config()
    model, tokenizer = load_configured(path, run.model)
    model.to(dist.local_device())
    return model, tokenizer


def prepare_data(run: RunConfig) -> None:
    """Call the configured preparation step (data.prepare, e.g. data_synth's synthesis) when a data file
    the run reads is missing. The step is named in config, so this package depends on no data maker."""
    from hydra.utils import call

    table = run.data.table
    if table is not None and not all(p.exists() for p in table.files().values()):
        from libra_train.data.tables import import_and_split

        import_and_split(table)  # before synthesis: a bad table stops the run before minutes of work
    hub_sets = [p for p in run.data.eval_sets.values() if p.startswith(HUB_PREFIX)]
    for spec in hub_sets:  # unreachable → one line now, not after a stage has trained
        read_raw(spec)
    used = {key for stage in run.stages for key in stage.data}  # e.g. sft_only on COLD needs no synthesis
    wanted = [Path(str(e.path)) for key, e in run.data.entries.items() if key in used]
    wanted += [Path(p) for p in run.data.eval_sets.values() if p not in hub_sets]
    if all(p.exists() for p in wanted) or run.data.prepare is None:
        return
    log.info("data files missing: calling %s into %s", run.data.prepare["_target_"], run.run_dir / "data")
    call(run.data.prepare, output_dir=str(run.run_dir / "data"))


def _entry_files(entry: DataEntry) -> list[str]:
    """What a data entry reads: its data, then the written answers it adds (the manifest hashes both)."""
    return [str(entry.path)] + ([str(written_path(entry.written_answers))] if entry.written_answers else [])


def stage_data_paths(run: RunConfig, stage: StageConfig) -> list[str]:
    return [p for key in stage.data for p in _entry_files(run.data.entries[key])]


def _counterparts_of(records: list[dict], entry: DataEntry) -> list[dict]:
    """The counterparts a data entry asks for of its real pairs, made from the records as loaded."""
    added = []
    if entry.counter_openings != "none":
        added += counterparts(records, unsafe=entry.counter_openings == "both")
    if entry.counter_layouts:
        added += layout_counterparts(records)
    if entry.written_answers:
        added += written_counterparts(records, load_written(entry.written_answers))
    return added


def load_stage_records(run: RunConfig, stage: StageConfig) -> list[dict]:
    records = []
    for key in stage.data:
        entry = run.data.entries[key]
        part = load_records(
            entry.path,
            on_invalid=run.data.on_invalid,
            rejected_path=run.run_dir / "data" / f"rejected-{key}.jsonl",
        )
        if run.format.prompt == "libra":  # said before any model is loaded, not at the first prompt rendered
            for record in part:
                refuse_conversation(record, f"{entry.path}: ")
        part = stratified_subset(part, entry.limit, run.subset_seed, key=f"data.{key}.limit")
        added = _counterparts_of(part, entry)
        if added:
            log.info("data.%s: %d counterparts beside its %d records", key, len(added), len(part))
            part = part + added
        records += part
    return records


def prepare_backbone(run: RunConfig, stage_data: dict) -> str:
    if run.model.build is None:
        return str(run.model.name_or_path)
    from libra_train.model import build_tiny
    from libra_train.qwen_vocab import qwen25_tokenizer

    path = run.run_dir / "backbone"

    def build():  # rank 0, once: other ranks and a resumed run never render the stage data for it
        stages = list(stage_data.values())
        if run.model.vocab_from == "first_stage":
            stages = stages[:1]
        records = [r for recs in stages for r in recs]
        # A trimmed vocabulary keeps the tokens of the text as training will see it: chat template included.
        template = qwen25_tokenizer() if run.model.trim_vocab else None
        texts = [render_prompt(r, template, run.format) + render_target(r, run.format) for r in records]
        build_tiny(texts, path, run.model)

    dist.once(run.run_dir / "backbone.ready", build)
    return str(path)


def data_paths(run: RunConfig) -> list[str]:
    """Every local data file the run reads: stage data, the written answers it adds, and eval sets (a hub
    set is not a local file)."""
    paths = [p for e in run.data.entries.values() for p in _entry_files(e)]
    paths += [str(p) for p in run.data.eval_sets.values()]
    return [p for p in dict.fromkeys(paths) if Path(p).is_file()]
