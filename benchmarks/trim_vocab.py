"""Training steps of qwen2.5-tiny at the COLD recipe's shape (hidden 64, 4 layers, batch 32) under
Qwen's full vocabulary against the same vocabulary trimmed to the data's tokens (model.trim_vocab):
the same stage trainer, records, seed and steps, both scoring only the supervised positions.
The trimmed vocabulary is built from the whole data file, as the pipeline builds it from a stage's data;
the steps train on its first --samples records. Prints seconds per step, the ratio and the losses.

    python benchmarks/trim_vocab.py --data data/cold/train.jsonl [--steps 20] [--samples 640]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from omegaconf import OmegaConf
from supervised_positions import arm  # run as a script: this folder is on sys.path

from libra_train.cli_utils import CONF_DIR, compose_config
from libra_train.config import RunConfig
from libra_train.data.formats import render_prompt, render_target
from libra_train.data.io import load_records
from libra_train.model import build_tiny
from libra_train.qwen_vocab import qwen25_tokenizer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, help="a guard-schema JSONL file (COLD train for the recipe)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--samples", type=int, default=640)
    args = parser.parse_args()
    records = load_records(args.data)
    recipe = OmegaConf.load(Path(CONF_DIR) / "experiment" / "cold_tune.yaml").model
    model_cfg = OmegaConf.merge(OmegaConf.load(Path(CONF_DIR) / "model" / "qwen2.5-tiny.yaml"), recipe)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fmt = RunConfig.from_hydra(compose_config("train", overrides=[f"paths.run_dir={tmp}"])).format
        template = qwen25_tokenizer()
        texts = [render_prompt(r, template, fmt) + render_target(r, fmt) for r in records]
        results = []
        for trim in (False, True):
            model_cfg.trim_vocab = trim
            backbone = build_tiny(texts, tmp / f"trim-{trim}", model_cfg)
            result = arm(True, backbone, records[: args.samples], tmp / f"work-{trim}", args)
            vocab = json.loads((backbone / "config.json").read_text())["vocab_size"]
            results.append({"vocabulary": vocab, **result})
            print(json.dumps(results[-1]))
        print(json.dumps({"speedup": round(results[0]["s_per_step"] / results[1]["s_per_step"], 2)}))


if __name__ == "__main__":
    main()
