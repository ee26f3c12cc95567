"""The category × label × split table: saved in stats.json, drawn as stats.png, and printed by libra-synth."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from libra_train import plotting
from libra_train.data.schema import LABELS


def render_stats(out_dir: Path, splits: dict, counters: Counter, n_rejected: int) -> dict:
    categories = sorted({s["category_name"] for records in splits.values() for s in records})
    table = {
        split: {
            c: {lab: sum(1 for s in recs if s["category_name"] == c and s["label"] == lab) for lab in LABELS}
            for c in categories
        }
        for split, recs in splits.items()
    }
    difficulty = {
        split: dict(sorted(Counter(s["meta"]["difficulty"] for s in recs).items()))
        for split, recs in splits.items()
    }
    summary = {
        "counts": table,
        "totals": {split: len(recs) for split, recs in splits.items()},
        "difficulty": difficulty,
        "events": dict(sorted(counters.items())),
        "rejected": n_rejected,
    }
    _chart(out_dir / "stats.png", table, categories)
    return summary


def print_stats(summary: dict) -> None:
    categories = sorted(next(iter(summary["counts"].values()), {}))
    t = Table(title="libra-synth: samples by category × label × split")
    t.add_column("category")
    for split in summary["counts"]:
        for lab in LABELS:
            t.add_column(f"{split} {lab}", justify="right")
    for c in categories:
        t.add_row(c, *[str(summary["counts"][s][c][lab]) for s in summary["counts"] for lab in LABELS])
    t.add_row(
        "total",
        *[
            str(sum(summary["counts"][s][c][lab] for c in categories))
            for s in summary["counts"]
            for lab in LABELS
        ],
    )
    console = Console()
    console.print(t)
    if summary["events"]:
        console.print("events: " + ", ".join(f"{k}={v}" for k, v in summary["events"].items()))
    console.print(f"rejected: {summary['rejected']}")


def _chart(path: Path, table: dict, categories: list[str]) -> None:
    fig, axes = plotting.plt.subplots(1, len(table), figsize=(4.5 * len(table), 3.6), sharey=False)
    for ax, (split, cells) in zip(axes, table.items()):
        xs = range(len(categories))
        for offset, lab in ((-0.2, LABELS[0]), (0.2, LABELS[1])):
            ax.bar(
                [x + offset for x in xs],
                [cells[c][lab] for c in categories],
                width=0.4,
                label=plotting.display_name(lab),
            )
        ax.set_xticks(list(xs), [plotting.display_name(c) for c in categories], rotation=45, ha="right")
        ax.set_title(split)
    axes[0].set_ylabel("samples")
    axes[0].legend()
    plotting.save(fig, path)
