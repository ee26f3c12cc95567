"""What a synthesis wrote, per split: the category × label table (saved in stats.json, drawn in stats.png
and printed by libra-synth), and, per label, the response lengths and the share of each response shape
(stats.json, and the lengths' histograms in stats.png)."""

from __future__ import annotations

import statistics
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
        "response_length": {split: _per_label(recs, _length_summary) for split, recs in splits.items()},
        "response_shapes": {split: _per_label(recs, _shape_shares) for split, recs in splits.items()},
        "events": dict(sorted(counters.items())),
        "rejected": n_rejected,
    }
    _chart(out_dir / "stats.png", table, categories, splits)
    return summary


def _per_label(records: list[dict], summarize) -> dict:
    return {lab: summarize([r for r in records if r["label"] == lab]) for lab in LABELS}


def _length_summary(records: list[dict]) -> dict:
    """Characters per response: its spread, as the quantiles a reader compares with real responses."""
    lengths = sorted(len(r.get("response") or "") for r in records)
    if not lengths:
        return {}
    at = lambda q: lengths[min(len(lengths) - 1, int(q * len(lengths)))]  # noqa: E731
    return {
        "min": lengths[0],
        "p10": at(0.1),
        "median": statistics.median(lengths),
        "p90": at(0.9),
        "max": lengths[-1],
    }


def _shape_shares(records: list[dict]) -> dict:
    shapes = Counter(r["meta"].get("response_shape", "unknown") for r in records)
    return {shape: round(n / len(records), 4) for shape, n in sorted(shapes.items())}


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


def _chart(path: Path, table: dict, categories: list[str], splits: dict) -> None:
    """Row 1: samples per category and label; row 2: the response lengths per label."""
    fig, axes = plotting.plt.subplots(2, len(table), figsize=(4.5 * len(table), 7.0), squeeze=False)
    for ax, (split, cells) in zip(axes[0], table.items()):
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
    for ax, records in zip(axes[1], splits.values()):
        for lab in LABELS:
            lengths = [len(r.get("response") or "") for r in records if r["label"] == lab]
            ax.hist(lengths, bins=30, alpha=0.5, label=plotting.display_name(lab))
        ax.set_xlabel("response length (characters)")
    axes[0][0].set_ylabel("samples")
    axes[1][0].set_ylabel("responses")
    axes[0][0].legend()
    plotting.save(fig, path)
