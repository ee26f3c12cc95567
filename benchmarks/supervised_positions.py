"""Training steps with the LM head run on every position (TRL's CPU default) against only the
supervised positions (libra_train/train/lm_head.py), for the tiny backbone (3k vocabulary) and for
qwen2.5-tiny (Qwen's 151k vocabulary): the same stage trainer, records, seed and steps per pair.
Prints seconds per step, the ratio, and each arm's logged losses (they should agree).

    python benchmarks/supervised_positions.py [--steps 20] [--batch-size 32] [--samples 600] [--models …]
        [--label-only]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import trl.trainer.utils as trl_utils
from omegaconf import OmegaConf

from data_synth.pipeline import offline_config, synthesize
from libra_train.cli_utils import CONF_DIR, compose_config
from libra_train.config import RunConfig
from libra_train.data.formats import render_prompt, render_target
from libra_train.data.io import load_records
from libra_train.model import build_tiny
from libra_train.tracking import NullTracker
from libra_train.train.stage import build_trainer

EVERY_POSITION = trl_utils._use_triton  # TRL's own choice, captured before build_trainer replaces it


def arm(compact: bool, backbone: Path, records: list[dict], work: Path, args) -> dict:
    cfg = compose_config(
        "train",
        overrides=[
            f"paths.run_dir={work}",
            "logger=none",
            f"train.max_steps={args.steps}",
            "train.logging_steps=5",
            f"train.batch_size={args.batch_size}",
            "train.max_length=512",
            "train.save_steps=100000",
            "train.learning_rate=2e-3",
        ],
    )
    run = RunConfig.from_hydra(cfg)
    trainer, _, _, _ = build_trainer(run.stages[0], records, str(backbone), work / "s", run, NullTracker())
    if not compact:
        trl_utils._use_triton = EVERY_POSITION
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    losses = [round(h["loss"], 4) for h in trainer.state.log_history if "loss" in h]
    return {
        "arm": "supervised positions" if compact else "every position",
        "s_per_step": round(seconds / args.steps, 3),
        "losses": losses,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--samples", type=int, default=600)
    parser.add_argument("--models", nargs="+", default=["tiny", "qwen2.5-tiny"])
    # label-only targets, as COLD's: a few supervised tokens per sample, where the saving is largest
    parser.add_argument("--label-only", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synthesize(offline_config(output_dir=str(tmp / "data"), num_samples=args.samples))
        records = load_records(tmp / "data" / "stage1.jsonl")
        if args.label_only:
            records = [{**r, "analyze": ""} for r in records]
        fmt = RunConfig.from_hydra(compose_config("train", overrides=[f"paths.run_dir={tmp}"])).format
        texts = [render_prompt(r, None, fmt) + render_target(r, fmt) for r in records]
        for name in args.models:
            model_cfg = OmegaConf.load(Path(CONF_DIR) / "model" / f"{name}.yaml")
            backbone = build_tiny(texts, tmp / name, model_cfg)
            pair = [
                arm(compact, backbone, records, tmp / f"{name}-{compact}", args) for compact in (False, True)
            ]
            for result in pair:
                print(json.dumps({"model": name, **result}))
            speedup = round(pair[0]["s_per_step"] / pair[1]["s_per_step"], 2)
            print(json.dumps({"model": name, "speedup": speedup}))


if __name__ == "__main__":
    main()
