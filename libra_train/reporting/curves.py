"""libra-report's learning curves over a data-scale axis (data.stage2.limit or data.stage1.limit): one line
per curriculum with its 95% band (from reporting/intervals.py), and the effective data transferred: how
many more samples sft_only needs to match another curriculum at each budget, read off the curves.

A limit of null (all of the data) sits at the right end of the curve, as the largest budget measured; so
does 1.0 on an axis of sample counts (all of the split, whose size the curve does not know)."""

from __future__ import annotations

import math
from pathlib import Path

from libra_train import plotting
from libra_train.errors import LibraError
from libra_train.reporting import intervals


def _is_all(limit) -> bool:
    """The fraction 1.0, which data.*.limit reads as all of the data (the count 1 is one sample)."""
    return "." in str(limit) and float(limit) == 1.0


def budgets(limits: list, axis: str) -> list[float | None]:
    """The limits as budgets on one axis: None for all of the data (null; also 1.0 beside counts, where
    it means all of a split whose size the curve does not know). Counts and fractions below 1 cannot share
    an axis without that size, so they are refused."""
    given = [None if v is None else float(v) for v in limits]
    counts = any(b is not None and b > 1 for b in given)
    out = [None if v is None or (counts and _is_all(v)) else b for v, b in zip(limits, given)]
    if counts and any(b is not None and b < 1 for b in out):
        shown = ", ".join(str(v) for v in limits)
        raise LibraError(f"{axis} mixes sample counts and fractions ({shown}): give one or the other")
    return out


def curves(table: dict, axis: str) -> dict[str, list[dict]]:
    """{curriculum (and any other axis): [{x, mean, low, high}] by budget} from one eval set's intervals;
    `x` is the budget (budgets()), all of the data (None) drawn last."""
    lines: dict[str, list[dict]] = {}
    xs = budgets([row["axes"][axis] for row in table["arms"]], axis)
    for row, x in zip(table["arms"], xs):
        others = {k: v for k, v in row["axes"].items() if k != axis}
        name = ", ".join(f"{v}" if k == "curriculum" else f"{k}={v}" for k, v in others.items()) or "all"
        point = {"x": x, "mean": row["mean"], "low": row["low"], "high": row["high"]}
        lines.setdefault(name, []).append(point)
    for points in lines.values():
        points.sort(key=lambda p: math.inf if p["x"] is None else float(p["x"]))
    return lines


def from_metrics(points: list[dict], axes: list[str], eval_set: str) -> dict:
    """The curves' input from the points' metrics alone (no predictions, so no bands): each arm's mean
    accuracy over its finished seeds."""
    rows = []
    for arm in intervals.arms(points, axes):
        values = [a for p in arm["points"] if (a := average_accuracy(p, eval_set)) is not None]
        if values:
            rows.append({"axes": arm["axes"], "mean": sum(values) / len(values), "low": None, "high": None})
    return {"arms": rows}


def average_accuracy(point: dict, eval_set: str) -> float | None:
    """A point's accuracy on an eval set (the unweighted mean over sources), from its metrics."""
    return ((point["eval"].get(eval_set) or {}).get("average") or {}).get("accuracy")


def samples_to_reach(curve: list[dict], accuracy: float) -> float | None:
    """The budget at which a curve first reaches `accuracy`, interpolated linearly in log budget between
    measured points; None where it never does. The first point counts as reached if it is already above."""
    points = [p for p in curve if p["x"] is not None and float(p["x"]) > 0]
    if not points:
        return None
    if points[0]["mean"] >= accuracy:
        return float(points[0]["x"])
    for left, right in zip(points, points[1:]):
        if right["mean"] >= accuracy:
            lo, hi = math.log(float(left["x"])), math.log(float(right["x"]))
            share = (accuracy - left["mean"]) / (right["mean"] - left["mean"])
            return math.exp(lo + share * (hi - lo))
    return None


def transferred(lines: dict[str, list[dict]], baseline: str = "sft_only") -> list[dict]:
    """For each other curriculum and each budget N it was measured at: the budget sft_only needs to reach
    its accuracy, and the difference (what its synthetic stage is worth in real samples at N)."""
    if baseline not in lines:
        return []
    rows = []
    for name, curve in lines.items():
        if name == baseline:
            continue
        for point in curve:
            if point["x"] is None:
                continue
            needed = samples_to_reach(lines[baseline], point["mean"])
            rows.append(
                {
                    "curriculum": name,
                    "budget": point["x"],
                    "accuracy": point["mean"],
                    "baseline_needs": needed,
                    "transferred": None if needed is None else needed - float(point["x"]),
                }
            )
    return rows


def transferred_lines(rows: list[dict], axis: str, eval_set: str) -> list[str]:
    if not rows:
        return []
    lines = [
        "",
        f"## {eval_set}: effective data transferred ({axis})",
        "",
        "The budget sft_only needs to reach each curriculum's accuracy at budget N (interpolated in log N "
        "between the budgets measured), and how much more that is than N.",
        "",
        "| curriculum | N | accuracy | sft_only needs | transferred |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        needs = "more than measured" if r["baseline_needs"] is None else f"{r['baseline_needs']:.4g}"
        moved = "–" if r["transferred"] is None else f"{r['transferred']:+.4g}"
        lines.append(f"| {r['curriculum']} | {r['budget']:g} | {r['accuracy']:.4f} | {needs} | {moved} |")
    return lines


def draw(path: Path, lines: dict[str, list[dict]], axis: str, eval_set: str) -> Path:
    """Accuracy against budget, one line and 95% band per curriculum; the budget axis is logarithmic."""
    fig, ax = plotting.plt.subplots(figsize=(5.6, 3.6))
    budgets = sorted({float(p["x"]) for c in lines.values() for p in c if p["x"] is not None})
    all_at = budgets[-1] * 2 if budgets else 1.0  # where "all" (null) is drawn
    for name, curve in sorted(lines.items()):
        xs = [all_at if p["x"] is None else float(p["x"]) for p in curve]
        ax.plot(xs, [p["mean"] for p in curve], marker="o", label=name)
        if all(p["low"] is not None for p in curve):
            ax.fill_between(xs, [p["low"] for p in curve], [p["high"] for p in curve], alpha=0.2)
    ax.set_xscale("log")
    banded = all(p["low"] is not None for c in lines.values() for p in c)
    ax.set_title(f"{eval_set}: accuracy against {axis}" + (" (95% bands)" if banded else ""))
    ax.set_xlabel(f"{axis} (null, all of it, at the right)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    plotting.save(fig, path)
    return path
