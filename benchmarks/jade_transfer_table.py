"""The table of benchmarks/jade_transfer.sh: per arm, mean ± sample standard deviation over seeds of JADE
test accuracy at the shipped (dev-chosen) threshold, the share of JADE test's helpful safe answers
flagged, the threshold gap, the margin over the best shortcut, ECE; the synthetic held-out split's
accuracy and helpful safe answers flagged after stage 2; and stage 1 alone on JADE test.

    python benchmarks/jade_transfer_table.py OUT_DIR
"""

import json
import re
import statistics
import sys
from pathlib import Path

ARMS = (
    "edge",
    "replay",
    "calibrated",
    "replay_calibrated",
    "smoothed",
    "first_vocab",
    "counter",
    "counter_helpful",
    "counter_replay_all",
    "counter_helpful_1pass",
    "counter_helpful_stopped",
    "counter_helpful_stopped2",
    "response_only",
    "layouts",
    "decay",
    "decay_stage1",
    "layouts_replay_all",
)


def figures(result: dict) -> dict:
    flagged = result.get("over_flagging") or {}
    return {
        "accuracy": result["average"]["accuracy"],
        "helpful_flagged": flagged.get("rate"),
        "threshold_gap": result.get("threshold_gap"),
        "margin": (result.get("margin") or {}).get("margin"),
        "ece": result.get("ece"),
        "threshold": result.get("threshold"),
    }


def spread(values) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) < 2:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main() -> None:
    out = Path(sys.argv[1])
    rows: dict[str, list] = {}
    for path in sorted(out.glob("*-seed*/manifest.json")):
        arm, seed = re.match(r"(\S+)-seed(\d+)", path.parent.name).groups()
        stages = [s for s in json.loads(path.read_text())["stages"] if s.get("eval")]
        if len(stages) < 2:
            continue
        last, first = stages[-1]["eval"], stages[0]["eval"]
        rows.setdefault(arm, []).append(
            {
                "seed": int(seed),
                "test": figures(last["jade_test"]),
                "heldout": figures(last["heldout"]),
                "stage1": figures(first["jade_test"]),
                "best": (last["jade_test"].get("margin") or {}).get("over"),
            }
        )
    print(
        "| arm | seeds | JADE test accuracy | helpful safe flagged | threshold gap | margin over the best "
        "shortcut | ECE | held-out accuracy | held-out helpful flagged | stage 1 alone, JADE test |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    # ARMS gives the rows' order; an arm it does not name is printed after them, never left out
    for arm in [a for a in ARMS if a in rows] + sorted(set(rows) - set(ARMS)):
        found = rows[arm]

        def col(part: str, key: str, found=found) -> str:
            return spread([r[part][key] for r in found])

        best = sorted({r["best"] for r in found if r["best"]})
        print(
            f"| {arm} | {len(found)} | {col('test', 'accuracy')} | {col('test', 'helpful_flagged')} | "
            f"{col('test', 'threshold_gap')} | {col('test', 'margin')} ({', '.join(best)}) | "
            f"{col('test', 'ece')} | {col('heldout', 'accuracy')} | {col('heldout', 'helpful_flagged')} | "
            f"{col('stage1', 'accuracy')} |"
        )
        per_seed = ", ".join(
            f"{r['seed']}: {r['test']['accuracy']:.3f} @ {r['test']['threshold']:.3g}" for r in found
        )
        print(f"|  | per seed (accuracy @ threshold) | {per_seed} |||||||||")


if __name__ == "__main__":
    main()
