"""Evaluation outputs: predictions.jsonl (resumable), metrics.json, confusion.png, and reading them back."""

from __future__ import annotations

import json
import os
from pathlib import Path

from libra_train import plotting
from libra_train.data.formats import eval_views
from libra_train.data.io import atomic_write_text, load_records, read_raw, to_jsonl
from libra_train.data.schema import SAFE, UNSAFE
from libra_train.errors import DataError
from libra_train.eval.calibration import ece, reliability, reliability_png, threshold_gap
from libra_train.eval.decision import Decision
from libra_train.eval.metrics import compute_metrics
from libra_train.eval.operating_points import pr_curve_png
from libra_train.eval.parse import parse_output
from libra_train.eval.shortcuts import margin, over_flagging, shortcut_metrics


class PredictionWriter:
    """Appends finished predictions to `<final>.partial`, one fsync'd line per record, and renames it to
    the final name when all are done: a killed run resumes from the partial file and a final file
    always holds every id exactly once."""

    def __init__(self, final_path: str | Path):
        self.final = Path(final_path)
        self.partial = self.final.with_name(self.final.name + ".partial")
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.done: dict[str, dict] = {}
        if self.partial.exists():
            self._recover()
        self._fh = None

    def _recover(self) -> None:
        good = 0
        with open(self.partial, "rb") as fh:
            for line in fh:
                if not line.endswith(b"\n"):
                    break  # the line being written when the process died
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    break
                self.done[str(rec["id"])] = rec
                good += len(line)
        with open(self.partial, "r+b") as fh:
            fh.truncate(good)

    def write(self, records: list[dict]) -> None:
        if self._fh is None:
            self._fh = open(self.partial, "a", encoding="utf-8")
        for rec in records:
            self._fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            self.done[str(rec["id"])] = rec
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def finish(self, order: list[str]) -> list[dict]:
        if self._fh is not None:
            self._fh.close()
        records = [self.done[i] for i in order]
        atomic_write_text(self.final, to_jsonl(records))
        if self.partial.exists():
            self.partial.unlink()
        return records


def load_predictions(spec: str | Path) -> list[dict]:
    """Predictions from a file or folder; records written by other tools (raw output in `critic`, no
    `pred_label`) are parsed the same way as ours."""
    rows = []
    for item in read_raw(spec):
        rec = item.record
        if not isinstance(rec, dict) or "id" not in rec:
            raise DataError(item.path, "prediction needs an 'id'", item.where, "id")
        if "pred_label" not in rec:
            if "critic" not in rec:
                raise DataError(item.path, "prediction needs 'pred_label' or 'critic'", item.where, "critic")
            rec = {**rec, "pred_label": parse_output(rec["critic"])[0]}
        rows.append({**rec, "_path": item.path, "_where": item.where})
    return rows


def join_with_labels(predictions: list[dict], labels_spec, task: str = "response") -> tuple[list[dict], int]:
    """Predictions matched to the labels' views for `task` (as libra-infer made them); returns the rows
    and the count of samples without a prompt-level label (no prompt view to score)."""
    views, lacking = eval_views(load_records(labels_spec, require_label=True), task)
    gold = {str(r["id"]): r for r in views}
    rows, seen = [], set()
    for p in predictions:
        pid = str(p["id"])
        if pid not in gold:
            raise DataError(
                p["_path"],
                f"prediction id {p['id']!r} is not in the labels ({labels_spec})",
                p["_where"],
                "id",
            )
        if pid in seen:
            raise DataError(p["_path"], f"id {p['id']!r} predicted twice", p["_where"], "id")
        seen.add(pid)
        g = gold[pid]
        rows.append(
            {
                "id": pid,
                "source": g["source"],
                "category_name": g["category_name"],
                "question": g.get("question", ""),  # shown in W&B's mistakes table
                "response": g.get("response", ""),
                "label": g["label"],
                "pred_label": p.get("pred_label"),
                "p_unsafe": p.get("p_unsafe"),
                **{k: p[k] for k in ("threshold", "temperature") if p.get(k) is not None},
                "task": g["task"],
                **({"meta": g["meta"]} if g.get("meta") else {}),
                **({"p_question": p["p_question"]} if p.get("p_question") is not None else {}),
                **({"messages": g["messages"]} if g.get("messages") else {}),
                **({"pred_categories": p["pred_categories"]} if "pred_categories" in p else {}),
            }
        )
    missing = [i for i in gold if i not in seen]
    if missing:
        raise DataError(labels_spec, f"{len(missing)} labelled ids have no prediction (first: {missing[:3]})")
    return rows, lacking


def write_metrics(
    rows: list[dict],
    out_dir: str | Path | None,
    no_prompt_label: int = 0,
    decision: Decision | None = None,
    calibration: list[dict] | None = None,
    calibrated_here: bool = False,
) -> dict:
    """The set's metrics (compute_metrics) with the decision that made its labels (given, or the one its
    rows record: libra-eval, libra-compare), what trivial shortcuts score on it and the guard's margin
    over the best (eval/shortcuts.py; a length cut is chosen on `calibration`, the calibration set's
    rows, where the threshold was), over-flagging, and calibration (ECE, the threshold gap); written
    with their charts when out_dir is given. calibrated_here: the decision was chosen on these rows."""
    metrics = compute_metrics(rows)
    recorded = recorded_decision(rows)  # None where no row was decided by a threshold (generated labels)
    decision = (decision or recorded) if recorded else None  # a given decision brings its source
    if decision is None:
        metrics.update(
            threshold=None, threshold_source="no threshold: the labels were generated or not recorded"
        )
    else:
        source = decision.source + (": this set's figures are optimistic" if calibrated_here else "")
        metrics.update(
            threshold=decision.threshold, temperature=decision.temperature, threshold_source=source
        )
    if no_prompt_label:
        metrics["no_prompt_label"] = no_prompt_label
    threshold = decision.threshold if decision else 0.5
    metrics.update(judgement_metrics(rows, metrics, threshold, calibration))
    if out_dir is not None:
        out_dir = Path(out_dir)
        atomic_write_text(out_dir / "metrics.json", json.dumps(metrics, ensure_ascii=False, indent=2) + "\n")
        confusion_png(metrics["confusion"], out_dir / "confusion.png")
        if metrics.get("operating_points"):
            pr_curve_png(metrics["operating_points"], out_dir / "pr_curve.png", out_dir.name)
        if metrics.get("reliability"):
            reliability_png(metrics["reliability"], out_dir / "reliability.png", out_dir.name)
    return metrics


def recorded_decision(rows: list[dict]) -> Decision | None:
    """The decision the rows record (each decided row names its threshold and temperature); None where
    none does. Rows decided at different thresholds are not one set's predictions."""
    seen = {(r.get("threshold"), r.get("temperature", 1.0)) for r in rows if r.get("threshold") is not None}
    if len(seen) > 1:
        found = ", ".join(f"{t:g}" for t, _ in sorted(seen))
        raise DataError("predictions", f"their labels were decided at several thresholds ({found})")
    if not seen:
        return None
    ((threshold, temperature),) = seen
    return Decision(float(threshold), float(temperature), "recorded in the predictions")


def judgement_metrics(rows: list[dict], metrics: dict, threshold: float, calibration) -> dict:
    """Beside the figures: the shortcuts and the margin over the best, over-flagging, and where every row
    has p(unsafe), ECE, its reliability bins and the threshold gap."""
    c = metrics["confusion"]
    accuracy = (c["tp"] + c["tn"]) / metrics["n"] if metrics["n"] else 0.0
    judged, judged_accuracy, fit = rows, accuracy, calibration
    per_task = metrics.get("per_task", {})
    if "response" in per_task and len(per_task) > 1:
        # A set of both tasks: the shortcuts judge its responses against the guard's accuracy on them, or
        # a length rule would score by telling questions (short, mostly unsafe) from answers.
        judged = [r for r in rows if r.get("task") != "prompt"]
        judged_accuracy = per_task["response"]["accuracy"]
        fit = [r for r in calibration if r.get("task") != "prompt"] if calibration else calibration
    shortcuts = shortcut_metrics(judged, threshold, fit)
    best = margin(judged_accuracy, shortcuts)
    if best and judged is not rows:
        best["on"] = "responses"
    out = {"shortcuts": shortcuts, "margin": best, "over_flagging": over_flagging(rows)}
    if metrics.get("operating_points"):
        gold, p = [r["label"] == UNSAFE for r in rows], [r["p_unsafe"] for r in rows]
        out.update(
            ece=ece(gold, p),
            reliability=reliability(gold, p),
            threshold_gap=threshold_gap(metrics["operating_points"], accuracy),
        )
    return out


def confusion_png(c: dict, path: Path) -> None:
    fig, ax = plotting.plt.subplots(figsize=(3.6, 3.2))
    grid = [[c["tp"], c["fn"]], [c["fp"], c["tn"]]]
    ax.imshow(grid, cmap="Blues")
    names = [plotting.display_name(UNSAFE), plotting.display_name(SAFE)]
    ax.set_xticks([0, 1], names)
    ax.set_yticks([0, 1], names)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("gold label")
    ax.set_title(f"{path.parent.name}: samples per cell", fontsize="medium")
    darkest = max(max(row) for row in grid)
    for i in range(2):
        for j in range(2):  # white on the dark cells, black on the light ones
            color = "white" if grid[i][j] > darkest / 2 else "black"
            ax.text(j, i, str(grid[i][j]), ha="center", va="center", color=color)
    plotting.save(fig, path)
