"""Libra's four claims, each tested on real data by a sweep's points: a markdown table of each claim, what
the sweep measured on one eval set (differences paired on the samples, with libra-report's 95% bootstrap
intervals, reporting/stats.py) and a verdict: holds, does not hold, or inconclusive at this scale. A claim
whose sweep folder is not given is "not measured".

    python benchmarks/paper_claims.py --set jade_test --order DIR --synth-scale DIR --synth-scale-real DIR \
        --data-scale DIR --critic DIR --rules DIR

The folders are `libra-train -m +sweep=…` outputs (conf/sweep): curriculum_order (or data_scale, whose
curricula are compared at its largest real budget), synth_scale, data_scale, critic_position and
rules_in_prompt, on a real eval set (a JADE sweep with data.table.seed=0, so that every seed meets one
test set). --synth-scale is read at its points' stage-1 evaluation (no real data in training), so a
two-stage synth_scale sweep serves both synthetic-scale rows: --synth-scale-real reads its last stage.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from libra_train.reporting.ablation import load_points
from libra_train.reporting.curves import budgets
from libra_train.reporting.intervals import interval_table

WORSE, BETTER = "worse", "better"  # reporting/stats.py's verdicts
STAGE1 = "stage1_pretrain"  # the synthetic stage's name in every curriculum that has one (conf/curriculum)
INCONCLUSIVE = "inconclusive at this scale"


def differences(points: list[dict], axis: str, baseline, eval_set: str) -> tuple[dict, list[dict]]:
    """The baseline arm (axis=baseline) and every other arm with its paired difference from it."""
    table = interval_table(points, [axis], [eval_set], f"{axis}={baseline}")
    if eval_set not in table:
        raise SystemExit(f"no point of the sweep has predictions on {eval_set}")
    entry = table[eval_set]
    return entry["arms"][entry["baseline"]], [a for a in entry["arms"] if a["difference"] is not None]


def _diff(arm: dict, axis: str) -> str:
    d = arm["difference"]
    return f"{axis}={arm['axes'][axis]}: {d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"


def _base(arm: dict, axis: str) -> str:
    return f"{axis}={arm['axes'][axis]} {arm['mean']:.3f} ({arm['seeds']} seeds × {arm['samples']} samples)"


def best_against_all(points: list[dict], axis: str, best, eval_set: str) -> tuple[str, str]:
    """'`best` beats every other value of the axis': holds when every other arm is worse, does not hold
    when one is better, else inconclusive."""
    base, others = differences(points, axis, best, eval_set)
    if not others:
        return _base(base, axis), f"not measured (no other {axis})"
    verdicts = [a["difference"]["verdict"] for a in others]
    verdict = (
        "holds"
        if all(v == WORSE for v in verdicts)
        else "does not hold"
        if BETTER in verdicts
        else INCONCLUSIVE
    )
    return "; ".join([_base(base, axis), *(_diff(a, axis) for a in others)]), verdict


def by_size(values: set, axis: str) -> list:
    """A data-scale axis's values, smallest budget first; all of the data (null, or 1.0 beside sample
    counts: reporting/curves.budgets) last."""
    values = list(values)
    sizes = dict(zip(values, budgets(values, axis)))
    return sorted(values, key=lambda v: float("inf") if sizes[v] is None else sizes[v])


def more_helps(points: list[dict], axis: str, eval_set: str, keep=None) -> tuple[str, str]:
    """'More of the axis helps': the largest value against the smallest (among the points `keep` takes)."""
    points = [p for p in points if keep is None or keep(p)]
    values = by_size({p["axes"][axis] for p in points}, axis)
    ends = [p for p in points if p["axes"][axis] in (values[0], values[-1])]
    base, (top,) = differences(ends, axis, values[0], eval_set)
    verdict = {BETTER: "holds", WORSE: "does not hold"}.get(top["difference"]["verdict"], INCONCLUSIVE)
    return f"{_base(base, axis)}; {_diff(top, axis)}", verdict


def not_needed(points: list[dict], axis: str, eval_set: str) -> tuple[str, str]:
    """'The rules are not needed': holds unless the arm with rules is better than the one without."""
    base, (other,) = differences(points, axis, False, eval_set)
    needed = other["difference"]["verdict"] == BETTER
    return f"{_base(base, axis)}; {_diff(other, axis)}", "does not hold" if needed else "holds"


def at_full_budget(points: list[dict]) -> list[dict]:
    """The points at the largest real budget (all of it where none is set): a data-scale sweep's largest
    budget compares its curricula as an order sweep does."""
    full = by_size({p["axes"]["stage2_limit"] for p in points}, "stage2_limit")[-1]
    return [p for p in points if p["axes"]["stage2_limit"] == full]


def claims(args) -> list[tuple[str, str, str]]:
    two_stage = lambda p: p["axes"].get("curriculum") == "two_stage"  # noqa: E731
    more_synthetic = lambda pts: more_helps(pts, "stage1_limit", args.set)  # noqa: E731
    tests = [  # claim, sweep folder, the stage read (None: each point's last), the test
        ("Pretrain → SFT beats every other order", args.order, None,
         lambda pts: best_against_all(at_full_budget(pts), "curriculum", "two_stage", args.set)),
        ("More synthetic data helps (no real data)", args.synth_scale, STAGE1, more_synthetic),
        ("More synthetic data helps (then a small real budget)", args.synth_scale_real, None, more_synthetic),
        ("More real data helps (two_stage)", args.data_scale, None,
         lambda pts: more_helps(pts, "stage2_limit", args.set, keep=two_stage)),
        ("The rear critic is best", args.critic, None,
         lambda pts: best_against_all(pts, "critic", "rear", args.set)),
        ("Safety rules in the prompt are not needed", args.rules, None,
         lambda pts: not_needed(pts, "rules", args.set)),
    ]  # fmt: skip
    rows = []
    for claim, folder, stage, test in tests:
        if folder is None:
            rows.append((claim, "–", "not measured"))
            continue
        points = [p for p in load_points(Path(folder), stage) if p["status"] == "done"]
        rows.append((claim, *test(points)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", required=True, help="the eval set every point was scored on")
    for name in ("order", "synth-scale", "synth-scale-real", "data-scale", "critic", "rules"):
        parser.add_argument(f"--{name}", help="the sweep folder")
    args = parser.parse_args()
    print(f"| claim | measured on {args.set}: accuracy, Δ [95%] | verdict |\n|---|---|---|")
    for claim, measured, verdict in claims(args):
        print(f"| {claim} | {measured} | {verdict} |")


if __name__ == "__main__":
    main()
