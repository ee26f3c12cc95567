"""A finished stream run's head under stop rules of different origins: the rule chosen on one eval set
(the lowest threshold that stops at most --safe-stopped of its safe responses, as
eval.stream_threshold=calibrate chooses it) against fixed thresholds, scored on every eval set of the
run. The head is the same whichever rule, so one pass over each set serves every row.

    python benchmarks/stream_rules.py RUN --choose-on dev [--fixed 0.5] [--k 2] [--safe-stopped 0.05]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from omegaconf import OmegaConf

from libra_train.data.io import load_records
from libra_train.stream.metrics import stop_threshold_for, stream_metrics
from libra_train.stream.train import load_stream_guard, stream_cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run directory with a finished stream stage")
    parser.add_argument("--choose-on", required=True, help="the eval set the rule is chosen on")
    parser.add_argument("--stage", default="stream_head", help="the stream stage's folder")
    parser.add_argument("--fixed", type=float, nargs="*", default=[0.5], help="fixed thresholds to compare")
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--safe-stopped", type=float, default=0.05)
    args = parser.parse_args()
    config = OmegaConf.load(args.run / "config.yaml")
    eval_sets = OmegaConf.to_container(config.data.eval_sets, resolve=True)
    guard, tokenizer = load_stream_guard(args.run / args.stage / "checkpoint")
    max_length = config.train.max_length
    cases = {
        name: stream_cases(guard, tokenizer, load_records(path), max_length)
        for name, path in eval_sets.items()
    }
    chosen = stop_threshold_for(cases[args.choose_on], args.k, args.safe_stopped)
    print("| set | rule | threshold | f1 | accuracy | on_time | safe stopped | before onset | within 128 |")
    print("|---|---|---|---|---|---|---|---|---|")
    rules = [(f"chosen on {args.choose_on}", chosen)] + [("fixed", t) for t in args.fixed]
    for name, set_cases in cases.items():
        for rule, threshold in rules:
            m = stream_metrics(set_cases, threshold, args.k)
            cells = [m["f1"], m["accuracy"], m["on_time"], m["early_stop"]["safe"]]
            cells += [m["early_stop"]["unsafe_before_onset"], m["stopped_within_128"]]
            shown = " | ".join("–" if v is None else f"{v:.3f}" for v in cells)
            print(f"| {name} ({m['n']}) | {rule} | {threshold:.4g} | {shown} |")


if __name__ == "__main__":
    main()
