"""The evaluator. One path: every rank scores its share of each eval set (`predict_shard`), rank 0 joins
the shares (`merge_shards`), decides at the threshold and writes the predictions and metrics once
(`score_sets`); `evaluate` is that path in one process. `predict` scores one list of records, resumably:
what each share and `libra-infer` run. Scoring is eval/scoring.py's, writing eval/outputs.py's."""

from __future__ import annotations

import logging
import tempfile
from contextlib import nullcontext
from pathlib import Path

from libra_train.config_groups import EvalConfig
from libra_train.data.conversation import without_response
from libra_train.data.formats import FormatConfig, eval_views
from libra_train.data.io import atomic_write_text, load_records, read_raw, to_jsonl
from libra_train.data.peers import judges_questions
from libra_train.data.schema import UNSAFE
from libra_train.errors import DataError
from libra_train.eval.calibration import fit_temperature, tempered
from libra_train.eval.decision import Decision
from libra_train.eval.operating_points import operating_points
from libra_train.eval.outputs import PredictionWriter, write_metrics
from libra_train.eval.scoring import generate_labels, resolve_mode, score_labels
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
    decision: Decision | None = None,
    controversial_as: str = "unsafe",
) -> list[dict]:
    """Predict every record once, resuming from out_path's partial file; returns predictions in input
    order, each decided by `decision` as it is written (None: label mode's probabilities alone, which
    the evaluator decides once its threshold is chosen)."""
    mode = resolve_mode(mode, fmt)
    writer = PredictionWriter(out_path)
    todo = [r for r in records if str(r["id"]) not in writer.done]
    if progress and len(todo) < len(records):  # resumed: what the partial file holds is done
        progress(len(records) - len(todo))
    decide = decision.apply if decision is not None else (lambda row: row)

    def on_batch(indices, results):
        writer.write([decide({**todo[i], **results[i]}) for i in indices])
        if progress:
            progress(len(indices))

    options = {"batch_size": batch_size, "on_batch": on_batch, "controversial_as": controversial_as}
    if todo and mode == "label":
        score_labels(model, tokenizer, todo, fmt, decision=None, **options)
    elif todo:
        generate_labels(model, tokenizer, todo, fmt, max_new_tokens=max_new_tokens, **options)
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


def choose_decision(preds: dict, opts: EvalConfig) -> Decision:
    """eval.threshold as given, or calibrated: the threshold that maximises eval.calibrate_for on the
    calibration set's own predictions (at eval.calibrate_at of its interval); with eval.temperature=
    calibrate, the temperature fitted there first, and the threshold expressed on the tempered scale."""
    temperature = 1.0
    if "calibrate" in (opts.threshold, opts.temperature):
        rows = preds[opts.calibration_set]
        scored = [r for r in rows if r.get("p_unsafe") is not None]
        gold = [r["label"] == UNSAFE for r in scored]
        if len(scored) < len(rows) or len(set(gold)) < 2:
            raise DataError(
                opts.calibration_set, "calibration needs p_unsafe for every sample and both labels"
            )
        if opts.temperature == "calibrate":
            temperature = fit_temperature(gold, [r["p_unsafe"] for r in scored])
    if opts.threshold != "calibrate":
        given = opts.threshold != 0.5 or temperature != 1.0
        return Decision(float(opts.threshold), temperature, "eval.threshold" if given else "default")
    # Chosen on the untempered scores: a temperature scales logits, so it moves no cut, but a small one
    # (a separable dev set) sharpens them past p's clip and the middle would then fall at logit 0.
    points = operating_points(gold, [r["p_unsafe"] for r in scored], opts.calibrate_at)
    chosen = points["best_accuracy" if opts.calibrate_for == "accuracy" else "best_f1"]
    notes = ["the middle of its interval"] if opts.calibrate_at == "middle" else []
    notes += [f"temperature {temperature:.3g}"] if temperature != 1.0 else []
    source = f"calibrated for {opts.calibrate_for} on {opts.calibration_set}"
    source += f" ({', '.join(notes)})" if notes else ""
    return Decision(tempered(chosen["threshold"], temperature), temperature, source)


def score_sets(preds: dict, lacking: dict, opts: EvalConfig, out_dir) -> tuple[dict, dict]:
    """The one place an evaluation decides: the decision is chosen (given or calibrated) and applied to
    every scored row, then each set's predictions.jsonl is written, once, and its metrics are computed
    from the rows in memory. Returns (metrics by set, decided rows by set)."""
    decision = choose_decision(preds, opts)
    decided = {name: [decision.apply(r) for r in rows] for name, rows in preds.items()}
    calibrated = "calibrate" in (opts.threshold, opts.temperature)
    calibration = decided[opts.calibration_set] if calibrated else None  # shortcuts' cuts are chosen here too
    results = {}
    for name, rows in decided.items():
        set_dir = Path(out_dir) / name if out_dir else None
        if set_dir:
            atomic_write_text(set_dir / "predictions.jsonl", to_jsonl(rows))
        here = calibrated and name == opts.calibration_set  # chosen and reported on the same samples
        results[name] = write_metrics(rows, set_dir, lacking[name], decision, calibration, here)
    return results, decided


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
        unit = "samples"
        if resolve_mode(opts.mode, fmt) == "label" and judges_questions(fmt.prompt):
            # the question_only shortcut: p(unsafe) of the question alone
            alone = question_views(mine)
            mine += alone
            unit = f"inputs ({len(alone)} of them a question alone)" if alone else unit
        with progress(label, len(mine), unit) as advance:
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
            )  # probabilities alone: score_sets decides, once the threshold is chosen


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
        preds[name] = [with_question_score(by_id[str(v["id"])], by_id) for v in views]
        for shard in shards:
            shard.unlink()
    return preds, lacking


QUESTION = "#question"


def question_views(views: list[dict]) -> list[dict]:
    """The question alone (the response hidden) of each response view whose prompt view is not scored
    already (format.task=both scores those): what the guard says without reading the answer."""
    have = {str(v["id"]) for v in views}
    return [
        {**without_response(v), "id": f"{v['id']}{QUESTION}", "analyze": "", "task": "prompt"}
        for v in views
        if v.get("response") and f"{v['id']}#prompt" not in have
    ]


def with_question_score(row: dict, by_id: dict) -> dict:
    """A response row with `p_question`, its question's p(unsafe) alone, where it was scored."""
    if not row.get("response"):
        return row
    alone = by_id.get(f"{row['id']}{QUESTION}") or by_id.get(f"{row['id']}#prompt")
    return {**row, "p_question": alone["p_unsafe"]} if alone and alone.get("p_unsafe") is not None else row
