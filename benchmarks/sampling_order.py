"""Length-grouped vs shuffled vs length-bucketed batches on COLD: the same stage trainer, data, seed and
steps; only the order of the samples differs. Prints, per arm, dev accuracy (label mode, threshold 0.5)
and what its batches look like over the steps trained: the pad share, how far each batch's unsafe share
is from the set's, and the correlation of consecutive batches' unsafe shares (runs of one label).

  python benchmarks/sampling_order.py COLD_DIR BACKBONE [--steps 400] [--rows 13000] [--dev 1000] [--seed 0]
      [--buckets 64]

--seed draws the training rows and the batches' order (the backbone's initial weights stay as saved).

BACKBONE: an untrained tiny backbone folder, e.g. <run_dir>/backbone of any `experiment=cold_tune` run.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from libra_train.cli_utils import CONF_DIR
from libra_train.config import RunConfig
from libra_train.data.formats import render_prompt, target_opening
from libra_train.tracking import NullTracker
from libra_train.train.stage import build_trainer


def _jsonl(path: Path, limit: int | None = None) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def dev_accuracy(model, tokenizer, fmt, dev: list[dict]) -> float:
    opening = target_opening(fmt)
    safe = tokenizer(opening + "安全", add_special_tokens=False).input_ids[-1]
    unsafe = tokenizer(opening + "不", add_special_tokens=False).input_ids[-1]
    right = 0
    with torch.no_grad():
        for r in dev:
            ids = tokenizer(
                render_prompt(r, tokenizer, fmt) + opening, add_special_tokens=False, return_tensors="pt"
            ).input_ids
            logits = model(input_ids=ids).logits[0, -1]
            right += int(bool(logits[unsafe] > logits[safe]) == (r["label"] == "不安全"))
    return right / len(dev)


ARMS = {  # arm → (the Trainer's sampling strategy, whether it takes length buckets, buckets keep both labels)
    "group_by_length": ("group_by_length", False, False),
    "shuffled": ("random", False, False),
    "bucketed_by_length": ("random", True, False),
    "bucketed": ("random", True, True),
}


def batch_mix(trainer, unsafe: list[bool], steps: int) -> dict:
    """Pad share, mean |batch unsafe share - overall unsafe share|, and the lag-1 correlation of the
    batches' unsafe shares, over the first `steps` batches the trainer draws (example i is record i)."""
    lengths = [len(ids) for ids in trainer.train_dataset["input_ids"]]
    shares, real, total = [], 0, 0
    for i, batch in enumerate(trainer.get_train_dataloader().batch_sampler):
        if i == steps:
            break
        real += sum(lengths[j] for j in batch)
        total += max(lengths[j] for j in batch) * len(batch)
        shares.append(sum(unsafe[j] for j in batch) / len(batch))
    s = torch.tensor(shares)
    overall = float(s.mean())
    lag1 = float(torch.corrcoef(torch.stack([s[:-1], s[1:]]))[0, 1])
    return {
        "pad_share": round(1 - real / total, 3),
        "label_skew": round(float((s - overall).abs().mean()), 3),
        "lag1_corr": round(lag1, 3),
    }


def arm(name: str, args, records: list[dict], dev: list[dict]) -> dict:
    strategy, bucketed, label_mixed = ARMS[name]
    buckets = args.buckets if bucketed else 0
    work = Path(tempfile.mkdtemp())
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        overrides = ["logger=none", "experiment=cold_tune", f"data.cold_dir={args.cold}"]
        cfg = compose(
            "train",
            overrides=[
                *overrides,
                f"paths.run_dir={work}",
                f"train.max_steps={args.steps}",
                f"train.length_buckets={buckets}",
                f"seed={args.seed}",
            ],
        )
    run = RunConfig.from_hydra(cfg)
    trainer, tokenizer, _, _ = build_trainer(
        run.stages[0], records, args.backbone, work / "s", run, NullTracker()
    )
    trainer.args.train_sampling_strategy = strategy  # with the buckets, the one difference between arms
    if not label_mixed:
        trainer.bucket_labels = None  # buckets sorted by length alone
    mix = batch_mix(trainer, [r["label"] == "不安全" for r in records], args.steps)
    start = time.time()
    trainer.train()
    seconds = time.time() - start
    accuracy = dev_accuracy(trainer.model.eval(), tokenizer, run.format, dev)
    shutil.rmtree(work, ignore_errors=True)
    return {
        "arm": name,
        "seed": args.seed,
        "buckets": buckets,
        **mix,
        "dev_accuracy": accuracy,
        "train_s": round(seconds, 1),
        "last_loss": [h["loss"] for h in trainer.state.log_history if "loss" in h][-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("cold", type=Path)
    parser.add_argument("backbone")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--rows", type=int, default=13000)
    parser.add_argument("--dev", type=int, default=1000)
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--buckets", type=int, default=64, help="train.length_buckets of the bucketed arms")
    args = parser.parse_args()
    records = _jsonl(args.cold / "train.jsonl")
    random.Random(args.seed).shuffle(records)
    dev = _jsonl(args.cold / "dev.jsonl", args.dev)
    for name in args.arms:
        print(json.dumps(arm(name, args, records[: args.rows], dev)), flush=True)


if __name__ == "__main__":
    main()
