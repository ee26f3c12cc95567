"""Errors of finished runs on one eval set, counted by a meta field of its records (for the synthetic sets,
`response_shape`: which kinds of answer a guard gets wrong after each stage).

    python benchmarks/errors_by_meta.py RUN [RUN ...] [--set heldout] [--field response_shape]

Prints one table: a row per label and field value, a column per run and stage, each cell "wrong of n"
at the threshold the run shipped for that stage (its predictions.jsonl).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path


def errors(predictions: Path, field: str) -> tuple[Counter, Counter]:
    wrong, seen = Counter(), Counter()
    for line in predictions.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row.get("task", "response") != "response":
            continue  # questions alone have no response shape
        key = (row["label"], str((row.get("meta") or {}).get(field)))
        seen[key] += 1
        wrong[key] += row["pred_label"] != row["label"]
    return wrong, seen


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--set", default="heldout", help="the eval set's name")
    parser.add_argument("--field", default="response_shape", help="the meta field to count by")
    args = parser.parse_args(argv)
    columns = {}
    for run in args.runs:
        for predictions in sorted(run.glob(f"*/eval/{args.set}/predictions.jsonl")):
            columns[f"{run.name} {predictions.parents[2].name}"] = errors(predictions, args.field)
    if not columns:
        raise SystemExit(f"no {args.set}/predictions.jsonl under {', '.join(map(str, args.runs))}")
    keys = sorted({key for _, seen in columns.values() for key in seen})
    print("| label | " + args.field + " | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 2) + "|")
    for key in keys:
        cells = [f"{wrong[key]} of {seen[key]}" if seen[key] else "–" for wrong, seen in columns.values()]
        print(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
