"""libra-report's intervals: each arm of a sweep (its points that differ only in their seed) scored sample
by sample from its points' predictions, with a 95% interval for its accuracy and for its difference from
the baseline arm (reporting/stats.py), per eval set. Written to report.md and intervals.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from libra_train.errors import ConfigError
from libra_train.eval.outputs import load_predictions
from libra_train.reporting import stats


def predictions_path(point: dict, eval_set: str) -> Path:
    """Where a point's last evaluated stage wrote its predictions on an eval set (the run layout)."""
    folder = Path(point["dir"])
    if point["final_stage"] == "untrained":
        return folder / "untrained_eval" / eval_set / "predictions.jsonl"
    return folder / point["final_stage"] / "eval" / eval_set / "predictions.jsonl"


def arms(points: list[dict], axes: list[str]) -> list[dict]:
    """The finished points grouped by every axis but the seed, in the order of their first point."""
    grouped: dict[str, dict] = {}
    for p in points:
        if p["status"] == "done":
            key = json.dumps([p["axes"][a] for a in axes])
            grouped.setdefault(key, {"axes": {a: p["axes"][a] for a in axes}, "points": []})["points"].append(
                p
            )
    return list(grouped.values())


def pick_baseline(groups: list[dict], baseline: str | None) -> int:
    """The arm `AXIS=VALUE[,AXIS=VALUE]` names (values compared as text); none named: the first."""
    if not baseline:
        return 0
    wanted = _wanted(baseline)
    for i, arm in enumerate(groups):
        if _has(arm, wanted):
            return i
    shown = "; ".join(",".join(f"{k}={v}" for k, v in a["axes"].items()) for a in groups)
    raise ConfigError("--baseline", f"no arm has {baseline}; the arms: {shown}")


def baselines(groups: list[dict], baseline: str | None, first: int) -> list[int]:
    """Each arm's baseline: the arm that has the named values and agrees with it on every axis the name
    leaves out (`curriculum=sft_only` in a data-scale sweep: sft_only at the arm's own budget), else
    `first`, the first arm with the named values (pick_baseline)."""
    if not baseline:
        return [first] * len(groups)
    wanted = _wanted(baseline)
    chosen = []
    for arm in groups:
        same = {**{k: str(v) for k, v in arm["axes"].items()}, **wanted}
        chosen.append(next((i for i, other in enumerate(groups) if _has(other, same)), first))
    return chosen


def _wanted(baseline: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in baseline.split(","))


def _has(arm: dict, values: dict[str, str]) -> bool:
    return all(str(arm["axes"].get(k)) == v for k, v in values.items())


def correctness(groups: list[dict], eval_set: str) -> tuple[list[np.ndarray], int] | None:
    """Per arm a seeds × samples matrix of correct (1) / wrong (0), over the samples (id and task) every
    point scored, and the most samples one point scored; None where a point has no predictions on the
    set."""
    per_point = []
    for arm in groups:
        for p in arm["points"]:
            path = predictions_path(p, eval_set)
            if not path.exists():
                return None
            rows = load_predictions(path)
            per_point.append(
                {(r["id"], r.get("task", "response")): r["pred_label"] == r["label"] for r in rows}
            )
    shared = sorted(set.intersection(*(set(c) for c in per_point)))
    if not shared:
        return None
    matrices, at = [], 0
    for arm in groups:
        rows = per_point[at : at + len(arm["points"])]
        matrices.append(np.array([[c[k] for k in shared] for c in rows], dtype=float))
        at += len(arm["points"])
    return matrices, max(len(c) for c in per_point)


def interval_table(points: list[dict], axes: list[str], eval_sets: list[str], baseline: str | None) -> dict:
    """{eval set: {"baseline": i, "scored": most samples one point scored, "arms": [{axes, seeds, samples,
    mean, low, high, sd_over_seeds, versus: its baseline's axes, difference: {mean, low, high, verdict} |
    None (a baseline)}]}}, for the sets every point has predictions on."""
    groups = arms(points, axes)
    if not groups:
        return {}
    base = pick_baseline(groups, baseline)
    versus = baselines(groups, baseline, base)
    table = {}
    for eval_set in eval_sets:
        scored = correctness(groups, eval_set)
        if scored is None:
            continue
        matrices, most = scored
        rows = []
        for i, (arm, matrix) in enumerate(zip(groups, matrices)):
            row = {"axes": arm["axes"], **stats.arm_interval(matrix)}
            row["versus"] = groups[versus[i]]["axes"]
            row["difference"] = (
                None if versus[i] == i else stats.paired_difference(matrix, matrices[versus[i]])
            )
            rows.append(row)
        table[eval_set] = {"baseline": base, "scored": most, "arms": rows}
    return table


COLUMNS = ("seeds", "samples", "accuracy [95%]", "sd over seeds", "Δ vs baseline [95%]", "verdict")


def _sample(row: dict) -> tuple:
    return row["id"], row.get("task", "response")


def interval_lines(table: dict, axes: list[str]) -> list[str]:
    lines = []
    for eval_set, entry in table.items():
        base = entry["arms"][entry["baseline"]]["axes"]
        lines += [
            "",
            f"## {eval_set}: 95% intervals",
            "",
            "Accuracy over each arm's seeds and samples, with a 95% interval from a bootstrap over seeds "
            "and test samples; the difference from the baseline arm "
            f"({', '.join(f'{k}={v}' for k, v in base.items()) or 'the only arm'}{_per_arm(entry)}) is "
            "paired on the samples.",
            *_unshared_note(entry),
            "",
            "| "
            + " | ".join(
                [
                    *axes,
                    "seeds",
                    "samples",
                    "accuracy [95%]",
                    "sd over seeds",
                    "Δ vs baseline [95%]",
                    "verdict",
                ]
            )
            + " |",
            "|" + "---|" * (len(axes) + len(COLUMNS)),
        ]
        for row in entry["arms"]:
            diff = row["difference"]
            cells = [str(row["axes"][a]) for a in axes] + [str(row["seeds"]), str(row["samples"])]
            cells += [_interval(row), f"{row['sd_over_seeds']:.4f}" if row["seeds"] > 1 else "– (1 seed)"]
            cells += [_interval(diff, signed=True), diff["verdict"]] if diff else ["baseline", "–"]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def _per_arm(entry: dict) -> str:
    if len({json.dumps(row["versus"], sort_keys=True) for row in entry["arms"]}) == 1:
        return ""
    return "; for each arm, the baseline arm that shares its values of the other axes"


def _unshared_note(entry: dict) -> list[str]:
    """Where the points scored different samples (a JADE split redrawn by each seed), only those every
    point shares are compared: say how few they are, and how to share them."""
    shared = entry["arms"][0]["samples"]
    if shared == entry["scored"]:
        return []
    return [
        f"**Only {shared} of up to {entry['scored']} samples are shared by every point** and compared: "
        "the points were scored on different samples. Pin the split (for JADE, `data.table.seed=0`) so "
        "that every seed is scored on one test set."
    ]


def _interval(m: dict, signed: bool = False) -> str:
    fmt = "{:+.4f}" if signed else "{:.4f}"
    return f"{fmt.format(m['mean'])} [{fmt.format(m['low'])}, {fmt.format(m['high'])}]"
