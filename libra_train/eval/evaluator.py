"""The evaluator: `evaluate` is what the pipeline runs after each stage; `predict` is what `libra-infer`
runs on one shard. Both score through eval/scoring.py and write through eval/outputs.py."""

from __future__ import annotations

import logging
from pathlib import Path

from libra_train.config import EvalConfig
from libra_train.data.formats import FormatConfig, eval_views
from libra_train.data.io import atomic_write_text, load_records, read_raw, to_jsonl
from libra_train.data.schema import UNSAFE
from libra_train.errors import DataError
from libra_train.eval.metrics import format_table
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
                model, tokenizer, todo, fmt, batch_size=batch_size, on_batch=on_batch, threshold=threshold
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
    """Run the guard on every eval set and score it. eval_sets: name → path or list of records. Each
    record is scored on the views training makes of it (format.task), each against its own label."""
    opts = opts or EvalConfig()
    preds, lacking = {}, {}
    for name, data in eval_sets.items():
        records, lacking[name] = _views(data, fmt)
        if lacking[name]:
            log.warning(
                "eval %s: %d samples have no prompt-level label, so no prompt view", name, lacking[name]
            )
        set_dir = Path(out_dir) / name if out_dir else None
        out_path = (set_dir / "predictions.jsonl") if set_dir else Path(".") / f".eval-{name}.jsonl"
        with progress(f"eval {name}", len(records)) as advance:
            preds[name] = predict(
                model,
                tokenizer,
                records,
                fmt,
                out_path,
                mode=opts.mode,
                batch_size=opts.batch_size,
                max_new_tokens=opts.max_new_tokens,
                progress=advance,
            )
        if set_dir is None:
            out_path.unlink()
    return score_sets(preds, lacking, opts, out_dir)


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


def score_sets(preds: dict, lacking: dict, opts: EvalConfig, out_dir) -> dict:
    """Apply the decision threshold to every set, then write each set's predictions and metrics."""
    threshold, source = decide_threshold(preds, opts)
    results = {}
    for name, rows in preds.items():
        set_dir = Path(out_dir) / name if out_dir else None
        if threshold != 0.5:
            rows = [_decide(r, threshold) for r in rows]
            if set_dir:
                atomic_write_text(set_dir / "predictions.jsonl", to_jsonl(rows))
        note = source
        if source and name == opts.calibration_set and opts.threshold == "calibrate":
            note += ": this set's figures are optimistic"  # calibrated and reported on the same samples
        results[name] = write_metrics(
            rows, set_dir, no_prompt_label=lacking[name], threshold=threshold, threshold_source=note
        )
        log.info("eval %s:\n%s", name, format_table(results[name]))
    return results


def _decide(row: dict, threshold: float) -> dict:
    if row.get("p_unsafe") is None:
        return row
    return {**row, **label_result(row["p_unsafe"], threshold), "threshold": threshold}


def _views(data, fmt: FormatConfig) -> tuple[list[dict], int]:
    return eval_views(load_records(data) if isinstance(data, (str, Path)) else data, fmt.task)


def predict_shard(
    model,
    tokenizer,
    eval_sets: dict,
    fmt: FormatConfig,
    opts: EvalConfig,
    out_dir: str | Path,
    rank: int,
    world: int,
) -> None:
    """This rank's share (every world-th view) of each eval set, into <set>/rank{R}-of-{W}.jsonl:
    resumable like any prediction file."""
    for name, data in eval_sets.items():
        mine = _views(data, fmt)[0][rank::world]
        with progress(f"eval {name} (rank {rank} of {world})", len(mine)) as advance:
            predict(
                model,
                tokenizer,
                mine,
                fmt,
                Path(out_dir) / name / f"rank{rank}-of-{world}.jsonl",
                mode=opts.mode,
                batch_size=opts.batch_size,
                max_new_tokens=opts.max_new_tokens,
                progress=advance,
            )


def merge_shards(
    eval_sets: dict, fmt: FormatConfig, out_dir: str | Path, world: int, opts: EvalConfig | None = None
) -> dict:
    """One writer: the ranks' shares joined into <set>/predictions.jsonl in the one-process order, then
    scored exactly as evaluate() scores."""
    preds, lacking = {}, {}
    for name, data in eval_sets.items():
        views, lacking[name] = _views(data, fmt)
        set_dir = Path(out_dir) / name
        shards = [set_dir / f"rank{r}-of-{world}.jsonl" for r in range(world)]
        by_id = {str(item.record["id"]): item.record for shard in shards for item in read_raw(shard)}
        missing = [str(v["id"]) for v in views if str(v["id"]) not in by_id]
        if missing:
            raise DataError(
                set_dir, f"{len(missing)} samples have no prediction from any rank ({missing[:3]})"
            )
        preds[name] = [by_id[str(v["id"])] for v in views]
        atomic_write_text(set_dir / "predictions.jsonl", to_jsonl(preds[name]))
        for shard in shards:
            shard.unlink()
    return score_sets(preds, lacking, opts or EvalConfig(), out_dir)
