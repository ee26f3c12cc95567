"""The table of benchmarks/jade_curriculum.sh: per arm, JADE test accuracy at the dev-calibrated
threshold, AUPRC and FPR at 95% recall (mean ± sample standard deviation over seeds), the wall time of
each run, and each seed's accuracy. The untrained row is stage1_only's evaluation before training.

    python benchmarks/jade_curriculum_table.py OUT_DIR
"""

import json
import re
import statistics
import sys
from pathlib import Path

ARMS = ("untrained", "stage1_only", "sft_only", "two_stage", "mixed", "two_stage_hard", "two_stage_random")


def scores(result: dict) -> tuple:
    fpr = result["operating_points"]["fpr_at_recall"].get("0.95", {}).get("fpr")
    return result["average"]["accuracy"], result["auprc"], fpr


def runs(out: Path) -> dict:
    walls = {}
    for line in (out / "walls.txt").read_text().splitlines():
        found = re.match(r"(\S+) seed (\d+): (\d+) s", line)
        if found:
            walls[(found[1], int(found[2]))] = int(found[3])
    rows: dict[str, list] = {}
    for path in sorted(out.glob("*-seed*/manifest.json")):
        arm, seed = re.match(r"(\S+)-seed(\d+)", path.parent.name).groups()
        manifest = json.loads(path.read_text())
        evaluated = [s for s in manifest["stages"] if s.get("eval")]
        if not evaluated:
            continue
        rows.setdefault(arm, []).append(
            (int(seed), *scores(evaluated[-1]["eval"]["jade_test"]), walls.get((arm, int(seed))))
        )
        before = manifest.get("eval_before_training") or {}
        if "jade_test" in before:
            rows.setdefault("untrained", []).append((int(seed), *scores(before["jade_test"]), None))
    return rows


def spread(values) -> str:
    values = [v for v in values if v is not None]
    if len(values) < 2:
        return f"{values[0]:.3f}" if values else "–"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main() -> None:
    rows = runs(Path(sys.argv[1]))
    print("| arm | seeds | accuracy | AUPRC | FPR at 95% recall | wall per run | accuracy per seed |")
    print("|---|---|---|---|---|---|---|")
    for arm in ARMS:
        found = sorted(rows.get(arm, []))
        if not found:
            continue
        walls = [r[4] for r in found if r[4]]
        wall = f"{min(walls)}–{max(walls)} s" if walls else "–"
        per_seed = ", ".join(f"{r[1]:.4f}" for r in found)
        columns = [spread([r[i] for r in found]) for i in (1, 2, 3)]
        print(f"| {arm} | {len(found)} | " + " | ".join(columns) + f" | {wall} | {per_seed} |")


if __name__ == "__main__":
    main()
