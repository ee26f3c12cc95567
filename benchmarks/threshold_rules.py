"""Which calibration rule places a threshold that holds on new data. Each finished run of an arm sweep
(benchmarks/jade_transfer.sh) is scored again after each stage without its decision (temperature 1), and
the threshold each rule chooses from those scores is applied unchanged to JADE test, its helpful side,
swapped set and written set (benchmarks/jade_counter_eval.py) and the synthetic held-out split:

    python benchmarks/threshold_rules.py OUT_DIR

Rules, each on the logit of p(unsafe) (a fitted temperature scales logits, so it moves none of them):
- `jade_dev`: the middle of JADE dev's best-accuracy interval, the recipe's own;
- `p=0.5`: the guard's own boundary, logit 0, where a temperature alone leaves it;
- `jade_dev+helpful`: the same on JADE dev with its pairs' helpful safe answers (refusal cut off) added;
- `jade_dev+synthetic_dev`: the same on JADE dev and a synthetic dev split drawn as the held-out split
  is (synthesized here with the run's seed; the run's own splits are unchanged by it, which is checked);
- `jade_dev+written_dev`: the same on JADE dev with the long helpful answers written for its questions
  added (jade_counter_eval.py's `written_dev`, safe side);
- `written_dev`: the middle of `written_dev`'s own best interval (JADE dev's unsafe answers beside them);
- `jade_dev, middle in p`: JADE dev's best interval, its middle in probability instead of logit space;
- `jade_dev & synthetic_dev, each half`: the interval that maximises the mean of the two sets'
  accuracies (each set weighs half, where pooling lets the larger synthetic set outvote JADE dev), its
  middle in logit space.

Scores are kept under RUN/threshold_rules/STAGE/SET.jsonl (a set already there is not scored again).
Prints a markdown row per run, stage and rule (accuracy on each set, JADE test's threshold gap and the
held-out split's helpful safe answers flagged), then each rule's mean per stage; then, per run and stage,
the temperature fitted on JADE dev and the ECE it leaves on JADE test and the held-out split.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jade_counter_eval import WRITTEN, WRITTEN_DEV, counter_sets, written_set  # noqa: E402

from libra_train.data.io import load_records, write_records  # noqa: E402
from libra_train.data.schema import UNSAFE  # noqa: E402
from libra_train.data.written_answers import load_written, written_counterparts  # noqa: E402
from libra_train.eval.calibration import (  # noqa: E402
    ece,
    fit_temperature,
    logit,
    sigmoid,
    tempered,
    threshold_gap,
)
from libra_train.eval.operating_points import operating_points  # noqa: E402

STAGES = ("stage1_pretrain", "stage2_sft")
REPORTED = ("jade_test", "test_helpful", "test_swapped", "test_written", "heldout")
RULES = {
    "jade_dev": ("jade_dev",),
    "p=0.5": (),
    "jade_dev+helpful": ("jade_dev", "dev_helpful_safe"),
    "jade_dev+synthetic_dev": ("jade_dev", "synthetic_dev"),
    "jade_dev+written_dev": ("jade_dev", "dev_written_safe"),
    "written_dev": ("dev_written",),
}


def points_of(rows: list[dict], at: str = "edge") -> dict:
    return operating_points([r["label"] == UNSAFE for r in rows], [r["p_unsafe"] for r in rows], at)


def middle_cut(rows: list[dict]) -> float:
    """The logit in the middle of the rows' best-accuracy interval of thresholds."""
    return logit(points_of(rows, "middle")["best_accuracy"]["threshold"])


def accuracy(rows: list[dict], cut: float) -> float:
    return float(np.mean([(logit(r["p_unsafe"]) > cut) == (r["label"] == UNSAFE) for r in rows]))


def helpful_flagged(rows: list[dict], cut: float) -> float:
    """Share of safe answers without meta.refusal (helpful ones) scored above the cut."""
    helpful = [r for r in rows if r["label"] != UNSAFE and not (r.get("meta") or {}).get("refusal")]
    return float(np.mean([logit(r["p_unsafe"]) > cut for r in helpful]))


def best_interval(parts: list[list[dict]]) -> tuple[float, float]:
    """The logit interval of cuts that maximise the mean of the parts' accuracies (the highest such run of
    cuts, as operating_points takes it); an end beyond every score is taken 1 past the last one."""
    xs = sorted({logit(r["p_unsafe"]) for rows in parts for r in rows})
    bounds = [xs[0] - 1.0, *xs, xs[-1] + 1.0]
    cuts = [(a + b) / 2 for a, b in zip(bounds, bounds[1:])]  # cuts[i] lies between bounds[i], bounds[i+1]
    score = np.array([np.mean([accuracy(rows, c) for rows in parts]) for c in cuts])
    high = int(np.flatnonzero(score == score.max())[-1])
    low = high
    while low > 0 and score[low - 1] == score.max():
        low -= 1
    return bounds[low], bounds[high + 1]


def p_middle_cut(rows: list[dict]) -> float:
    """The logit of the middle, in probability, of the rows' best-accuracy interval."""
    low, high = best_interval([rows])
    return logit((sigmoid(low) + sigmoid(high)) / 2)


def balanced_cut(parts: list[list[dict]]) -> float:
    low, high = best_interval(parts)
    return (low + high) / 2


def rule_cuts(sets: dict[str, list[dict]]) -> dict[str, float]:
    cuts = {
        name: middle_cut([r for part in parts for r in sets[part]]) if parts else 0.0
        for name, parts in RULES.items()
    }
    cuts["jade_dev, middle in p"] = p_middle_cut(sets["jade_dev"])
    cuts["jade_dev & synthetic_dev, each half"] = balanced_cut([sets["jade_dev"], sets["synthetic_dev"]])
    return cuts


def undecided_checkpoint(checkpoint: Path, work: Path) -> Path:
    """The checkpoint's files with a decision of 0.5 and temperature 1, so libra-infer writes raw p."""
    view = work / "checkpoint"
    view.mkdir(parents=True, exist_ok=True)
    for f in checkpoint.iterdir():
        if f.name != "guard_threshold.json" and not (view / f.name).exists():
            (view / f.name).symlink_to(f.resolve())
    (view / "guard_threshold.json").write_text(json.dumps({"threshold": 0.5, "temperature": 1.0}) + "\n")
    return view


def synthetic_dev(run: Path, work: Path) -> list[dict]:
    """A dev split of the run's own synthesis, 10% beside its splits (as experiment=stream draws one)."""
    from data_synth.pipeline import synthesize_run_data

    prepare = yaml.safe_load((run / "config.yaml").read_text())["data"]["prepare"]
    n = round(prepare["num_samples"] * 1.1)
    synthesize_run_data(str(work), num_samples=n, seed=prepare["seed"], split_ratios={"dev": 0.1})
    if not filecmp.cmp(work / "heldout.jsonl", run / "data/heldout.jsonl", shallow=False):
        raise SystemExit(f"{run}: the synthesis with a dev split changed the held-out split")
    return load_records(work / "dev.jsonl")


def set_records(run: Path, name: str, work: Path) -> list[dict]:
    jade = run / "data/jade"
    if name == "synthetic_dev":
        return synthetic_dev(run, work / "synthesis")
    if name == "dev_helpful_safe":
        return [r for r in counter_sets(load_records(jade / "dev.jsonl"))["helpful"] if r["label"] != UNSAFE]
    if name in ("dev_written", "dev_written_safe"):
        pick = written_set if name == "dev_written" else written_counterparts  # the safe side alone
        rows = pick(load_records(jade / "dev.jsonl"), load_written(WRITTEN_DEV))
    elif name in ("test_helpful", "test_swapped", "test_written"):
        rows = counter_sets(load_records(jade / "test.jsonl"), load_written(WRITTEN)).get(name[5:], [])
    else:
        return load_records(run / "data/heldout.jsonl" if name == "heldout" else jade / f"{name[5:]}.jsonl")
    if not rows:
        raise SystemExit(f"{run}: its JADE split holds no question of set {name}")
    return rows


def stage_scores(run: Path, stage: str) -> dict[str, list[dict]]:
    """Every set's raw scores after one stage, scored through libra-infer where not kept already."""
    kept = run / "threshold_rules" / stage
    names = sorted({p for parts in RULES.values() for p in parts} | set(REPORTED))
    with tempfile.TemporaryDirectory() as tmp:
        view = undecided_checkpoint(run / stage / "checkpoint", Path(tmp))
        for name in names:
            if (kept / f"{name}.jsonl").exists():
                continue
            work = Path(tmp) / name
            data = write_records(set_records(run, name, work), work / "data.jsonl")
            command = ["libra-infer", f"model={view}", f"data={data}", f"output_dir={work / 'preds'}"]
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            subprocess.run(command, check=True, capture_output=True, env=env)
            kept.mkdir(parents=True, exist_ok=True)
            (work / "preds/0-of-1.jsonl").replace(kept / f"{name}.jsonl")
    return {name: load_records(kept / f"{name}.jsonl") for name in names}


def figures(sets: dict[str, list[dict]], test_points: dict, cut: float) -> list[float]:
    """Accuracy on each reported set, JADE test's threshold gap (test_points: its operating points) and the
    held-out helpful answers flagged."""
    accuracies = [accuracy(sets[name], cut) for name in REPORTED]
    gap = threshold_gap(test_points, accuracies[REPORTED.index("jade_test")])
    return accuracies + [gap, helpful_flagged(sets["heldout"], cut)]


def temperature_row(sets: dict[str, list[dict]]) -> str:
    """The temperature fitted on JADE dev, and ECE on JADE test and the held-out split without and with it."""
    dev = sets["jade_dev"]
    t = fit_temperature([r["label"] == UNSAFE for r in dev], [r["p_unsafe"] for r in dev])
    cells = [f"{t:.2f}"]
    for name in ("jade_test", "heldout"):
        gold, p = [r["label"] == UNSAFE for r in sets[name]], [r["p_unsafe"] for r in sets[name]]
        cells.append(f"{ece(gold, p):.3f} → {ece(gold, [tempered(x, t) for x in p]):.3f}")
    return " | ".join(cells)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    runs = sorted(p for p in args.out_dir.glob("*-seed*") if (p / "config.yaml").exists())
    if not runs:
        raise SystemExit(f"no finished run (RUN-seedS/config.yaml) under {args.out_dir}")
    print(
        "| run, stage | rule | logit cut | JADE test | helpful side | swapped | written | synthetic held-out "
        "| JADE test's threshold gap | held-out helpful flagged |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    means: dict[tuple, list] = {}
    scored = []
    for run in runs:
        for stage in STAGES:
            if not (run / stage / "checkpoint").is_dir():
                continue
            sets = stage_scores(run, stage)
            scored.append((run, stage, sets))
            test_points = points_of(sets["jade_test"])
            for rule, cut in rule_cuts(sets).items():
                row = figures(sets, test_points, cut)
                means.setdefault((stage, rule), []).append(row)
                cells = " | ".join(f"{x:.3f}" for x in row)
                print(f"| {run.name}, {stage} | {rule} | {round(cut, 2) + 0.0:+.2f} | {cells} |", flush=True)
    for (stage, rule), rows in means.items():
        cells = " | ".join(f"{x:.3f}" for x in np.mean(rows, axis=0))
        print(f"| **mean of {len(rows)}, {stage}** | {rule} | | {cells} |")
    print(
        "\n| run, stage | temperature (JADE dev) | ECE on JADE test, untempered → tempered "
        "| on the held-out split |"
    )
    print("|---|---|---|---|")
    for run, stage, sets in scored:
        print(f"| {run.name}, {stage} | {temperature_row(sets)} |")


if __name__ == "__main__":
    main()
