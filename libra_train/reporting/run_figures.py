"""The pictures and sample lists in a run's report.md: the loss curve across stages, accuracy per
category, and the samples the guard got most confidently wrong."""

from __future__ import annotations

from pathlib import Path

from libra_train import plotting
from libra_train.eval.operating_points import mistakes_by_confidence
from libra_train.eval.outputs import load_predictions

WRONG_SHOWN = 10
TEXT_SHOWN = 60  # characters of a question or response in the report's table


def loss_chart(path: Path, stages: list[dict]) -> Path | None:
    """Training loss against the optimizer step counted across stages, one line per stage."""
    fig, ax = plotting.plt.subplots(figsize=(6.4, 3.6))
    offset, drawn = 0, False
    for st in stages:
        train = st.get("train") or {}
        curve = train.get("loss_curve") or []
        if curve:
            ax.plot([offset + s for s, _ in curve], [loss for _, loss in curve], label=st["name"])
            drawn = True
        offset += int(train.get("steps") or 0)
        ax.axvline(offset, color="grey", lw=0.6, ls=":")
    if not drawn:
        plotting.plt.close(fig)
        return None
    ax.set_xlabel("optimizer step (counted across stages)")
    ax.set_yscale("log")  # the first steps' loss is 100x the rest: a linear axis flattens the rest
    ax.set_ylabel("training loss (nats per target token, log scale)")
    ax.set_title("Training loss by stage")
    ax.legend(title="stage")
    ax.grid(alpha=0.3)
    plotting.save(fig, path)
    return path


def category_chart(path: Path, per_set: dict[str, dict]) -> Path | None:
    """Accuracy per category (the last evaluated stage): one panel per eval set, its own categories."""
    per_set = {name: cats for name, cats in per_set.items() if cats}
    if not per_set:
        return None
    fig, axes = plotting.plt.subplots(len(per_set), 1, figsize=(7.0, 0.6 + 2.4 * len(per_set)), squeeze=False)
    for ax, (set_name, cats) in zip(axes[:, 0], per_set.items()):
        names = sorted(cats)
        bars = ax.bar(range(len(names)), [cats[c]["accuracy"] for c in names], color="tab:blue")
        ax.bar_label(bars, labels=[f"{cats[c]['accuracy']:.2f}" for c in names], fontsize="small")
        ax.set_xticks(range(len(names)), [plotting.display_name(c) for c in names])
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1.1)
        ax.set_title(f"{set_name}: accuracy per category (n per category in report.md)", fontsize="medium")
    axes[-1, 0].set_xlabel("category")
    plotting.save(fig, path)
    return path


def confidently_wrong(predictions: Path, threshold: float, n: int = WRONG_SHOWN) -> list[dict]:
    """The misclassified samples farthest from the threshold (most confident first)."""
    if not predictions.exists():
        return []
    wrong = mistakes_by_confidence(load_predictions(predictions), threshold)
    return [r for r in wrong if r.get("p_unsafe") is not None][:n]


def wrong_table(rows: list[dict]) -> list[str]:
    lines = ["| id | question | response | gold | predicted | p_unsafe |", "|---|---|---|---|---|---|"]
    for r in rows:
        cells = [
            str(r["id"]),
            _short(r.get("question")),
            _short(r.get("response")),
            r["label"],
            r["pred_label"],
            f"{r['p_unsafe']:.3f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _short(text) -> str:
    text = " ".join(str(text or "").split()).replace("|", "\\|")
    return text if len(text) <= TEXT_SHOWN else text[:TEXT_SHOWN] + "…"
