"""Operating points from p(unsafe): the thresholds a safety team chooses between.

The decision rule everywhere is "unsafe when p_unsafe > threshold" (0.5 by default). Every distinct
cut through the scores is a candidate: flagging the top k scores is the threshold just below the k-th.
Ties between candidates go to the higher threshold, the one with fewer false alarms.
"""

from __future__ import annotations

import numpy as np

from libra_train.eval.calibration import logit, sigmoid

RECALL_TARGETS = (0.90, 0.95)


def curve(gold_unsafe: list[bool], p_unsafe: list[float]) -> dict[str, np.ndarray]:
    """Counts at every candidate threshold, highest threshold (nothing flagged) first."""
    y = np.asarray(gold_unsafe, dtype=bool)
    p = np.asarray(p_unsafe, dtype=float)
    if not len(p):  # one cut, flagging nothing
        nothing = np.array([0])
        return {"threshold": np.array([1.0]), "tp": nothing, "fp": nothing, "positives": 0, "n": 0}
    order = np.argsort(-p, kind="stable")
    y, p = y[order], p[order]
    last_of_run = np.flatnonzero(np.r_[p[1:] != p[:-1], True])  # the last index of each distinct score
    tp = np.r_[0, np.cumsum(y)[last_of_run]]
    flagged = np.r_[0, last_of_run + 1]
    # below the lowest score: 0, or just under a score of 0 so that "p > threshold" flags it
    thresholds = np.r_[p[0], p[last_of_run[:-1] + 1], min(0.0, p[-1] - 1e-12)]
    return {"threshold": thresholds, "tp": tp, "fp": flagged - tp, "positives": int(y.sum()), "n": len(y)}


def operating_points(gold_unsafe: list[bool], p_unsafe: list[float], at: str = "edge") -> dict | None:
    """The thresholds that maximise accuracy and F1 (unsafe positive), and the lowest false-positive
    rate at 90% and 95% recall; None when the set lacks either class. Every threshold in an interval
    between two scores decides alike: `edge` takes the interval's lower end (the highest score the cut
    leaves unflagged), `middle` its middle in logit space, farthest from the samples on either side, so
    a threshold chosen on one set has room to hold on another."""
    c = curve(gold_unsafe, p_unsafe)
    positives, negatives = c["positives"], c["n"] - c["positives"]
    if positives == 0 or negatives == 0:
        return None
    tp, fp, t = c["tp"], c["fp"], c["threshold"]
    recall, fpr = tp / positives, fp / negatives
    precision = np.divide(tp, tp + fp, out=np.ones_like(recall), where=(tp + fp) > 0)
    f1 = np.divide(
        2 * precision * recall, precision + recall, out=np.zeros_like(recall), where=(precision + recall) > 0
    )
    accuracy = (tp + negatives - fp) / c["n"]

    def best(score: np.ndarray) -> dict:
        i = int(np.flatnonzero(score == score.max())[0])  # the first is the highest threshold
        figures = {
            "threshold": t if at == "edge" else _middles(t, score == score.max(), i),
            "accuracy": accuracy,
            "f1_unsafe": f1,
            "precision": precision,
            "recall": recall,
            "fpr": fpr,
        }
        return {name: float(values[i]) for name, values in figures.items()}

    at_recall = {}
    for target in RECALL_TARGETS:
        ok = np.flatnonzero(recall >= target - 1e-12)
        i = int(ok[np.argmin(fpr[ok])])  # the lowest FPR; among equals, the first (highest threshold)
        at_recall[f"{target:.2f}"] = {
            "threshold": float(t[i]),
            "fpr": float(fpr[i]),
            "recall": float(recall[i]),
        }
    return {
        "best_accuracy": best(accuracy),
        "best_f1": best(f1),
        "fpr_at_recall": at_recall,
        "pr_curve": {"recall": recall.tolist(), "precision": precision.tolist()},
    }


def _middles(t: np.ndarray, best: np.ndarray, first: int) -> np.ndarray:
    """t with the first best cut's threshold moved to the middle (in logit space) of the interval its run
    of equally good cuts decides alike: from the run's lowest threshold to the score above its first."""
    last = first
    while last + 1 < len(t) and best[last + 1]:
        last += 1
    low, high = t[last], t[first - 1] if first > 0 else 1.0
    out = t.copy()
    out[first] = sigmoid((logit(float(low)) + logit(float(high))) / 2)
    return out


def points_table(points: dict) -> list[str]:
    """The operating points as a markdown table: best accuracy, best F1 and the lowest FPR at each recall
    target, each with its threshold, recall and FPR (report.md and the release's model card)."""
    named = [
        (name.replace("_", " "), points[name]) for name in ("best_accuracy", "best_f1") if name in points
    ]
    named += [(f"recall ≥ {t}", p) for t, p in (points.get("fpr_at_recall") or {}).items()]
    rows = [f"| {name} | {p['threshold']:.4f} | {p['recall']:.4f} | {p['fpr']:.4f} |" for name, p in named]
    return ["| point | threshold | recall | FPR |", "|---|---|---|---|", *rows]


def pr_curve_png(points: dict, path, title: str) -> None:
    """The PR curve with its best-accuracy and best-F1 points: one marker naming both where they are one
    threshold; otherwise a large hollow circle and a small filled square, so neither hides the other."""
    from libra_train import plotting

    fig, ax = plotting.plt.subplots(figsize=(4.2, 3.6))
    ax.step(points["pr_curve"]["recall"], points["pr_curve"]["precision"], where="post")
    acc, f1 = points["best_accuracy"], points["best_f1"]
    if acc["threshold"] == f1["threshold"]:
        marks = [("best accuracy and best F1", acc, {"marker": "o", "markersize": 8})]
    else:
        hollow = {"marker": "o", "markersize": 11, "markerfacecolor": "none", "markeredgewidth": 1.6}
        marks = [("best accuracy", acc, hollow), ("best F1", f1, {"marker": "s", "markersize": 5})]
    for name, p, style in marks:
        label = f"{name} (threshold {p['threshold']:.3f})"
        ax.plot([p["recall"]], [p["precision"]], linestyle="none", label=label, **style)
    pr_axes(ax, title)
    plotting.save(fig, path)


def pr_axes(ax, title: str) -> None:
    """The precision–recall chart's axes, title and legend: one eval set's, or a leaderboard's."""
    from libra_train import plotting

    plotting.unit_axes(
        ax,
        "recall (unsafe)",
        "precision (unsafe)",
        f"{title}: precision–recall, unsafe positive",
        "lower left",
        1.02,
    )


def mistakes_by_confidence(rows: list[dict], threshold: float) -> list[dict]:
    """The misclassified rows, farthest from the threshold first (the most confident mistakes); rows
    with no score (generate mode) come last."""
    wrong = [r for r in rows if r.get("pred_label") != r.get("label")]
    return sorted(
        wrong, key=lambda r: -abs(r["p_unsafe"] - threshold) if r.get("p_unsafe") is not None else 0.0
    )
