"""Stage 2 on N hard-selected samples against stage 2 on N random samples from the same real pool,
both starting from the same stage-1 guard, both scored on the same test set, in one invocation (issue 8).

    python benchmarks/hard_vs_random.py --guard RUN/stage1_pretrain/checkpoint \
        --pool data/cold/train.jsonl --test data/cold/test.jsonl --n 2000 [--epochs 2] [--out /tmp/hvr]

COLD is imported first with `libra-data import` (docs/data.md, "COLD").
"""

import argparse
import dataclasses
import json
import random
import time
from pathlib import Path

from libra_train.cli_utils import compose_config
from libra_train.config import RunConfig, SelectionConfig
from libra_train.data.io import load_records
from libra_train.eval.evaluator import evaluate
from libra_train.model import load_model_and_tokenizer
from libra_train.tracking import NullTracker
from libra_train.train.selection import select_hard
from libra_train.train.stage import train_stage


def random_subset(pool: list[dict], n: int, seed: int) -> list[dict]:
    """N at random, half of each label where the pool allows (the hard set is label-balanced too)."""
    rng = random.Random(seed)
    by_label: dict[str, list] = {}
    for r in pool:
        by_label.setdefault(r["label"], []).append(r)
    chosen = []
    for i, group in enumerate(sorted(by_label)):
        share = n // len(by_label) + (1 if i < n % len(by_label) else 0)
        chosen += rng.sample(by_label[group], min(share, len(by_label[group])))
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--guard", required=True)
    parser.add_argument("--pool", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--easy-share", type=float, default=0.2)
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--out", default="/tmp/hard_vs_random")
    args = parser.parse_args()
    out = Path(args.out)
    cfg = compose_config(
        "train",
        overrides=[
            f"paths.run_dir={out}",
            "logger=none",
            f"train.epochs={args.epochs}",
            "train.save_steps=100000",
            "train.logging_steps=25",
        ],
    )
    run = RunConfig.from_hydra(cfg)
    fmt = run.format
    pool, test = load_records(args.pool), load_records(args.test)

    start = time.perf_counter()
    hard, summary = select_hard(
        pool,
        [args.guard],
        fmt,
        SelectionConfig(budget=args.n, easy_share=args.easy_share, seed=0),
        out / "hard.jsonl",
        out / "scores",
    )
    selection_s = time.perf_counter() - start
    subsets = {"hard": hard, "random": random_subset(pool, args.n, seed=0)}
    results = {"n": args.n, "pool": len(pool), "selection": {**summary, "seconds": round(selection_s, 1)}}
    model, tokenizer = load_model_and_tokenizer(args.guard)
    results["stage1_guard"] = evaluate(model, tokenizer, {"test": test}, fmt, None, out / "eval_stage1")[
        "test"
    ]
    for name, records in subsets.items():
        stage = dataclasses.replace(run.stages[1], name=f"stage2_{name}")
        train = train_stage(stage, records, args.guard, out / name, run, NullTracker())
        model, tokenizer = load_model_and_tokenizer(str(out / name / "checkpoint"))
        metrics = evaluate(model, tokenizer, {"test": test}, fmt, None, out / name / "eval")["test"]
        results[name] = {
            "train_steps": train["steps"],
            "train_loss_last": train["loss_last"],
            "labels": {lab: sum(r["label"] == lab for r in records) for lab in ("安全", "不安全")},
            "metrics": metrics,
        }
    for key in ("stage1_guard", "hard", "random"):
        m = results[key] if key == "stage1_guard" else results[key]["metrics"]
        print(
            key,
            json.dumps(
                {"average": m["average"], "auprc": m.get("auprc"), "per_category": m.get("per_category")},
                ensure_ascii=False,
            ),
        )
    (out / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=1))
    print(f"wrote {out / 'results.json'}")


if __name__ == "__main__":
    main()
