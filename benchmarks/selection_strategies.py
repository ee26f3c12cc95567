"""Stage 2 on samples chosen by each selection strategy against stage 2 on as many random ones, from the
same stage-1 guard, over seeds, scored on one test set, in one invocation. Each seed redraws the random
and easy samples, breaks ties anew and seeds the training; the pool is scored once by each guard.

    python benchmarks/selection_strategies.py --guard RUN/stage1_pretrain/checkpoint [GUARD …] \\
        --pool data/cold/train.jsonl --test data/cold/test.jsonl --n 2000 [--epochs 2] [--seeds 0 1 2]

Stage 2 starts from the first guard, which alone judges the hard strategies; with two guards or more,
`disagreement` takes the samples where their decisions differ (an ensemble's disagreement).

Prints, per strategy, the mean test accuracy with its 95% interval (a bootstrap over seeds and test
samples) and its paired difference from random with a verdict, and writes OUT/results.json. A strategy
and seed already in OUT/results.json are not run again. COLD is imported first with `libra-data import`
(docs/data.md, "COLD").
"""

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from libra_train.cli_utils import compose_config
from libra_train.config import RunConfig
from libra_train.config_groups import SelectionConfig
from libra_train.data.io import load_records
from libra_train.eval.evaluator import evaluate
from libra_train.model import load_model_and_tokenizer
from libra_train.reporting.stats import arm_interval, paired_difference
from libra_train.tracking import NullTracker
from libra_train.train.selection import score_pool, select, select_random
from libra_train.train.stage import train_stage

# name → the stage's selection options (docs/training.md, "The selection strategies")
STRATEGIES = {
    "random": {"strategy": "random"},
    "hardest": {"easy_share": 0.0},
    "mixed": {"easy_share": 0.2},
    "noise_band": {"easy_share": 0.2, "noise_margin": 0.4},
    # hard where the guards' decisions differ: needs two guards or more (--guard A B …)
    "disagreement": {"easy_share": 0.2, "criteria": ("disagreement",)},
}
ENSEMBLE = {"disagreement"}  # judged by every guard; the others by the first, the one stage 2 starts from


def chosen(pool, scores, thresholds, name: str, n: int, seed: int) -> tuple[list[dict], dict]:
    cfg = SelectionConfig(budget=n, seed=seed, **STRATEGIES[name])
    if name not in ENSEMBLE:
        scores, thresholds = {i: p[:1] for i, p in scores.items()}, thresholds[:1]
    return select_random(pool, cfg) if cfg.strategy == "random" else select(pool, scores, cfg, thresholds)


def correctness(eval_dir: Path) -> list[int]:
    """1 where the guard was right, per test sample in id order."""
    rows = [json.loads(line) for line in (eval_dir / "test" / "predictions.jsonl").read_text().splitlines()]
    return [int(r["pred_label"] == r["label"]) for r in sorted(rows, key=lambda r: str(r["id"]))]


def run_one(args, run: RunConfig, records: list[dict], folder: Path, test: list[dict]) -> dict:
    start = time.perf_counter()
    stage = dataclasses.replace(run.stages[1], name=folder.name, selection=None)
    train = train_stage(stage, records, args.guard[0], folder, run, NullTracker())
    model, tokenizer = load_model_and_tokenizer(str(folder / "checkpoint"))
    metrics = evaluate(model, tokenizer, {"test": test}, run.format, None, folder / "eval")["test"]
    return {
        "accuracy": metrics["average"]["accuracy"],
        "auprc": metrics.get("auprc"),
        "train_steps": train["steps"],
        "labels": {lab: sum(r["label"] == lab for r in records) for lab in ("安全", "不安全")},
        "seconds": round(time.perf_counter() - start, 1),
        "correct": correctness(folder / "eval"),
    }


def table(results: dict) -> list[str]:
    baseline = np.array([results["random"][s]["correct"] for s in sorted(results["random"])])
    lines = [
        "| strategy | seeds | test accuracy (95% interval) | sd over seeds | − random (95% interval) "
        "| verdict |",
        "|---|---|---|---|---|---|",
    ]
    for name, runs in results.items():
        correct = np.array([runs[s]["correct"] for s in sorted(runs)])
        arm = arm_interval(correct)
        cells = [f"{arm['mean']:.4f} ({arm['low']:.4f}–{arm['high']:.4f})", f"{arm['sd_over_seeds']:.4f}"]
        if name == "random" or correct.shape != baseline.shape:
            cells += ["–", "baseline" if name == "random" else "other seeds than random"]
        else:
            diff = paired_difference(correct, baseline)
            cells += [f"{diff['mean']:+.4f} ({diff['low']:+.4f}–{diff['high']:+.4f})", diff["verdict"]]
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(cells) + " |")
    return lines


def _run(out: Path, seed: int, epochs: float) -> RunConfig:
    overrides = [f"paths.run_dir={out}", "logger=none", f"seed={seed}", f"train.epochs={epochs}"]
    return RunConfig.from_hydra(compose_config("train", [*overrides, "train.save_steps=100000"]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--guard", required=True, nargs="+", help="stage 2 starts from the first")
    parser.add_argument("--pool", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--strategies", nargs="+", choices=list(STRATEGIES), help="default: every one")
    parser.add_argument("--out", default="/tmp/selection_strategies")
    args = parser.parse_args()
    args.strategies = args.strategies or [s for s in STRATEGIES if len(args.guard) > 1 or s not in ENSEMBLE]
    needs_guards = sorted(ENSEMBLE & set(args.strategies))
    if len(args.guard) < 2 and needs_guards:
        parser.error(f"{', '.join(needs_guards)} needs two guards or more (--guard)")
    out = Path(args.out)
    saved = out / "results.json"
    results = json.loads(saved.read_text()) if saved.exists() else {}
    pool, test = load_records(args.pool), load_records(args.test)
    runs = {seed: _run(out, seed, args.epochs) for seed in args.seeds}
    start = time.perf_counter()
    scores, thresholds = score_pool(pool, args.guard, runs[args.seeds[0]].format, out / "scores")
    print(f"the pool of {len(pool)} scored in {time.perf_counter() - start:.1f} s")
    for seed, run in runs.items():
        for name in args.strategies:
            if str(seed) in results.get(name, {}):
                continue
            records, summary = chosen(pool, scores, thresholds, name, args.n, seed)
            result = run_one(args, run, records, out / f"{name}-seed{seed}", test)
            results.setdefault(name, {})[str(seed)] = {**result, "selection": summary}
            saved.write_text(json.dumps(results, ensure_ascii=False))  # a stopped sweep keeps what it did
            print(f"{name} seed {seed}: accuracy {result['accuracy']:.4f} ({result['seconds']} s)")
    print("\n".join(table({k: results[k] for k in STRATEGIES if k in results})))


if __name__ == "__main__":
    main()
