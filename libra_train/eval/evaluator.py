"""The evaluator. One path: every rank scores its share of each eval set (`predict_shard`), rank 0 joins
the shares (`merge_shards`), decides at the threshold and writes the predictions and metrics once
(`score_sets`); `evaluate` is that path in one process. `predict` scores one list of records, resumably:
what each share and `libra-infer` run. Scoring is eval/scoring.py's, writing eval/outputs.py's."""

from __future__ import annotations

import logging
import tempfile
from contextlib import nullcontext
from pathlib import Path

from libra_train.config import EvalConfig
from libra_train.data.formats import FormatConfig, eval_views
from libra_train.data.io import atomic_write_text, load_records, read_raw, to_jsonl
from libra_train.data.schema import UNSAFE
from libra_train.errors import DataError
from libra_train.eval.operating_points import operating_points
from libra_train.eval.outputs import PredictionWriter, write_metrics
from libra_train.eval.scoring import generate_labels, label_result, resolve_mode, score_labels
from libra_train.progress import progress

log = logging.getLogger(__name__)


def predict(
    model,
    tokenizer,
    records: list[dict],
    fmt: FormatConfig,
    out_path: str | Path,
    mode: str | None = None,
    batch_size: int = 16,
    max_new_tokens: int = 256,
    progress=None,
    threshold: float = 0.5,
    controversial_as: str = "unsafe",
) -> list[dict]:
    """Predict every record once, resuming from out_path's partial file; returns predictions in input
    order."""
    mode = resolve_mode(mode, fmt)
    writer = PredictionWriter(out_path)
    todo = [r for r in records if str(r["id"]) not in writer.done]
    if progress and len(todo) < len(records):  # resumed: what the partial file holds is done
        progress(len(records) - len(todo))

    def on_batch(indices, results):
        writer.write([{**todo[i], **results[i]} for i in indices])
        if progress:
            progress(len(indices))

    if todo:
        if mode == "label":
            score_labels(
                model,
                tokenizer,
                todo,
                fmt,
                batch_size=batch_size,
                on_batch=on_batch,
                threshold=threshold,
                controversial_as=controversial_as,
            )
        else:
            generate_labels(
                model,
                tokenizer,
                todo,
                fmt,
                batch_size=batch_size,
                max_new_tokens=max_new_tokens,
                on_batch=on_batch,
                controversial_as=controversial_as,
            )
    return writer.finish([str(r["id"]) for r in records])


def evaluate(
    model,
    tokenizer,
    eval_sets: dict,
    fmt: FormatConfig,
    opts: EvalConfig | None = None,
    out_dir: str | Path | None = None,
) -> dict:
    """Score the guard on every eval set in this one process and return each set's metrics: the case
    world = 1 of predict_shard → merge_shards → score_sets, the path every evaluation takes. eval_sets:
    name → path or list of records; each record is scored on the views training makes (format.task).
    Without out_dir nothing is kept."""
    opts = opts or EvalConfig()
    with tempfile.TemporaryDirectory() if out_dir is None else nullcontext(out_dir) as work:
        predict_shard(model, tokenizer, eval_sets, fmt, opts, work, rank=0, world=1)
        preds, lacking = merge_shards(eval_sets, fmt, work, world=1)
        return score_sets(preds, lacking, opts, out_dir)[0]


def decide_threshold(preds: dict, opts: EvalConfig) -> tuple[float, str | None]:
    """eval.threshold as given, or calibrated: the threshold that maximises eval.calibrate_for on the
    calibration set's own predictions."""
    if opts.threshold != "calibrate":
        return float(opts.threshold), (None if opts.threshold == 0.5 else "eval.threshold")
    rows = preds[opts.calibration_set]
    scored = [r for r in rows if r.get("p_unsafe") is not None]
    points = operating_points([r["label"] == UNSAFE for r in scored], [r["p_unsafe"] for r in scored])
    if points is None or len(scored) < len(rows):
        raise DataError(opts.calibration_set, "calibration needs p_unsafe for every sample and both labels")
    chosen = points["best_accuracy" if opts.calibrate_for == "accuracy" else "best_f1"]
    return chosen["threshold"], f"calibrated for {opts.calibrate_for} on {opts.calibration_set}"


def score_sets(preds: dict, lacking: dict, opts: EvalConfig, out_dir) -> tuple[dict, dict]:
    """The one place an evaluation decides: the threshold is chosen (given or calibrated) and applied to
    every scored row, then each set's predictions.jsonl is written, once, and its metrics are computed
    from the rows in memory. Returns (metrics by set, decided rows by set)."""
    threshold, source = decide_threshold(preds, opts)
    results, decided = {}, {}
    for name, rows in preds.items():
        set_dir = Path(out_dir) / name if out_dir else None
        decided[name] = [_decide(r, threshold) for r in rows]
        if set_dir:
            atomic_write_text(set_dir / "predictions.jsonl", to_jsonl(decided[name]))
        note = source
        if source and name == opts.calibration_set and opts.threshold == "calibrate":
            note += ": this set's figures are optimistic"  # calibrated and reported on the same samples
        results[name] = write_metrics(
            decided[name], set_dir, no_prompt_label=lacking[name], threshold=threshold, threshold_source=note
        )
    return results, decided


def _decide(row: dict, threshold: float) -> dict:
    if row.get("p_unsafe") is None:  # generate mode: the label was parsed, there is nothing to decide
        return row
    return {**row, **label_result(row["p_unsafe"], threshold), "threshold": threshold}


def _views(data, fmt: FormatConfig) -> tuple[list[dict], int]:
    return eval_views(load_records(data) if isinstance(data, (str, Path)) else data, fmt.task)


def _shard_file(out_dir, name: str, rank: int, world: int) -> Path:
    return Path(out_dir) / name / f"rank{rank}-of-{world}.jsonl"


def predict_shard(
    model,
    tokenizer,
    eval_sets: dict,
    fmt: FormatConfig,
    opts: EvalConfig,
    out_dir: str | Path,
    rank: int = 0,
    world: int = 1,
) -> None:
    """This rank's share (every world-th view) of each eval set, scored into <set>/rank{R}-of-{W}.jsonl:
    resumable like any prediction file. The decision is left to score_sets."""
    for name, data in eval_sets.items():
        mine, lacking = _views(data, fmt)
        if lacking and rank == 0:
            log.warning("eval %s: %d samples have no prompt-level label, so no prompt view", name, lacking)
        mine = mine[rank::world]
        label = f"eval {name}" if world == 1 else f"eval {name} (rank {rank} of {world})"
        with progress(label, len(mine)) as advance:
            predict(
                model,
                tokenizer,
                mine,
                fmt,
                _shard_file(out_dir, name, rank, world),
                mode=opts.mode,
                batch_size=opts.batch_size,
                max_new_tokens=opts.max_new_tokens,
                progress=advance,
                controversial_as=opts.controversial_as,
            )


def merge_shards(eval_sets: dict, fmt: FormatConfig, out_dir: str | Path, world: int) -> tuple[dict, dict]:
    """The ranks' shares joined in the one-process order, each view once; the share files are removed.
    Returns (rows by set, count of samples without a prompt view by set) for score_sets."""
    preds, lacking = {}, {}
    for name, data in eval_sets.items():
        views, lacking[name] = _views(data, fmt)
        shards = [_shard_file(out_dir, name, r, world) for r in range(world)]
        by_id = {str(item.record["id"]): item.record for shard in shards for item in read_raw(shard)}
        missing = [str(v["id"]) for v in views if str(v["id"]) not in by_id]
        if missing:
            raise DataError(
                Path(out_dir) / name,
                f"{len(missing)} samples have no prediction from any rank ({missing[:3]})",
            )
        preds[name] = [by_id[str(v["id"])] for v in views]
        for shard in shards:
            shard.unlink()
    return preds, lacking
