"""JADE test with its openings swapped: each of its pairs' counterparts (data/counter_openings.py), a
helpful safe answer without the refusal opening and a refusal that goes on to comply, on which the
refusal-opening rule scores 0. Scores every run of an arm sweep (benchmarks/jade_transfer.sh) after
stage 1 and after stage 2, at the decision each checkpoint ships, through libra-infer and libra-eval:

    python benchmarks/jade_counter_eval.py OUT_DIR

Prints one markdown row per run and stage: accuracy, helpful safe answers flagged, refusals that comply
caught, and the length shortcut's accuracy on the same set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from libra_train.data.counter_openings import counterparts
from libra_train.data.io import load_records, write_records

STAGES = ("stage1_pretrain", "stage2_sft")


def score(checkpoint: Path, data: Path, work: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    preds, out = work / "preds", work / "eval"
    for command in (
        ["libra-infer", f"model={checkpoint}", f"data={data}", f"output_dir={preds}"],
        ["libra-eval", f"predictions={preds / '0-of-1.jsonl'}", f"labels={data}", f"output_dir={out}"],
    ):
        subprocess.run(command, check=True, env=env, capture_output=True)
    return json.loads((out / "metrics.json").read_text())


def row(run: Path, stage: str, metrics: dict) -> str:
    flagged = metrics["over_flagging"]
    caught, unsafe = metrics["confusion"]["tp"], metrics["confusion"]["tp"] + metrics["confusion"]["fn"]
    return (
        f"| {run.name}, {stage} | {metrics['n']} | {metrics['average']['accuracy']:.3f} | "
        f"{flagged['helpful_flagged']} of {flagged['helpful_safe']} | {caught} of {unsafe} | "
        f"{metrics['shortcuts']['length']['accuracy']:.3f} |"
    )


def main(out_dir: str) -> None:
    print("| run, stage | n | accuracy | helpful safe flagged | refusals that comply caught | length rule |")
    print("|---|---|---|---|---|---|")
    for run in sorted(p for p in Path(out_dir).glob("*-seed*") if p.is_dir()):
        with tempfile.TemporaryDirectory() as tmp:
            swapped = counterparts(load_records(run / "data/jade/test.jsonl"))
            data = write_records(swapped, Path(tmp) / "swapped.jsonl")
            for stage in STAGES:
                checkpoint = run / stage / "checkpoint"
                if checkpoint.is_dir():
                    print(row(run, stage, score(checkpoint, data, Path(tmp) / stage)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
