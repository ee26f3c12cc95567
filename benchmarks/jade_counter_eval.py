"""JADE test where the opening says nothing, made from its pairs' counterparts (data/counter_openings.py),
and where the safe answer helps at length:

- `swapped`: each pair's helpful safe answer without the refusal opening and its refusal that goes on to
  comply; the refusal-opening rule scores 0 on it;
- `helpful`: each pair's own unsafe answer beside its helpful safe answer (the pairs that give one), the
  shape of a deployed assistant's answers: a harmful answer and a safe one that helps instead of refusing;
- `written`: each pair's own unsafe answer beside a long, helpful safe answer to its question written for
  this benchmark (benchmarks/data/jade_helpful_answers.jsonl: 60 answers of 200–280 characters, 20 for
  questions in each of seeds 0, 1 and 2's JADE test splits; 51 open with a refusal or warning phrase and
  go on to give lawful help). JADE's own safe answers are mostly short refusals; these are the answers a
  deployed assistant gives. Written once and not edited after any guard scored them; the recipe's choices
  are made on `written_dev`, not on them;
- `written_dev`: the same for JADE dev's questions (jade_helpful_answers_dev.jsonl: 30 answers, 10 for
  each of seeds 0–2's dev splits), where a choice may be made.

Scores every run of an arm sweep (benchmarks/jade_transfer.sh) after stage 1 and after stage 2, at the
decision each checkpoint ships, through libra-infer and libra-eval:

    python benchmarks/jade_counter_eval.py OUT_DIR

Prints one markdown row per run, stage and set: accuracy, helpful safe answers flagged (all, and those
of at least LONG characters, which a length rule would flag), unsafe answers caught, and what the
opening rule and the length rule (its cut chosen on the set) score there.
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
from libra_train.data.schema import SAFE, UNSAFE
from libra_train.data.written_answers import load_written, written_counterparts

STAGES = ("stage1_pretrain", "stage2_sft")
LONG = 100  # characters
WRITTEN = Path(__file__).resolve().parent / "data" / "jade_helpful_answers.jsonl"
WRITTEN_DEV = WRITTEN.with_name("jade_helpful_answers_dev.jsonl")  # for JADE dev's questions: to choose on


def _unsafe_of(split: list[dict], pairs: set[str]) -> list[dict]:
    return [r for r in split if r["label"] == UNSAFE and (r.get("meta") or {}).get("pair") in pairs]


def written_set(split: list[dict], written: list[dict]) -> list[dict]:
    """The unsafe answers of the split's pairs that have a written safe answer, and those written answers
    (data/written_answers.py: helpful, `meta.refusal` false), each under its pair's question."""
    return _unsafe_of(split, {w["pair"] for w in written}) + written_counterparts(split, written)


def counter_sets(test: list[dict], written: list[dict] = ()) -> dict[str, list[dict]]:
    helpful = counterparts(test, unsafe=False)
    unsafe = _unsafe_of(test, {r["meta"]["pair"] for r in helpful})
    sets = {"swapped": counterparts(test), "helpful": unsafe + helpful, "written": written_set(test, written)}
    return {name: rows for name, rows in sets.items() if rows}  # a split may hold no written pair


def score(checkpoint: Path, data: Path, work: Path) -> tuple[dict, list[dict]]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    preds, out = work / "preds", work / "eval"
    for command in (
        ["libra-infer", f"model={checkpoint}", f"data={data}", f"output_dir={preds}"],
        ["libra-eval", f"predictions={preds / '0-of-1.jsonl'}", f"labels={data}", f"output_dir={out}"],
    ):
        subprocess.run(command, check=True, env=env, capture_output=True)
    return json.loads((out / "metrics.json").read_text()), load_records(preds / "0-of-1.jsonl")


def long_flagged(rows: list[dict]) -> str:
    """Helpful safe answers of at least LONG characters flagged: the length rule would pass none of them."""
    long = [r for r in rows if r["label"] == SAFE and len(r["response"]) >= LONG]
    return f"{sum(r['pred_label'] == UNSAFE for r in long)} of {len(long)}"


def row(name: str, metrics: dict, rows: list[dict]) -> str:
    flagged, cut = metrics["over_flagging"], metrics["shortcuts"]
    caught, unsafe = metrics["confusion"]["tp"], metrics["confusion"]["tp"] + metrics["confusion"]["fn"]
    return (
        f"| {name} | {metrics['n']} | {metrics['average']['accuracy']:.3f} | "
        f"{flagged['helpful_flagged']} of {flagged['helpful_safe']} | {long_flagged(rows)} | "
        f"{caught} of {unsafe} | "
        f"{cut['opening']['accuracy']:.3f} | {cut['length']['accuracy']:.3f} |"
    )


def main(out_dir: str) -> None:
    print(
        f"| run, stage, set | n | accuracy | helpful safe flagged | of them ≥ {LONG} characters "
        "| unsafe caught | opening rule | length |"
    )
    print("|---|---|---|---|---|---|---|---|")
    written, written_dev = load_written(WRITTEN), load_written(WRITTEN_DEV)
    for run in sorted(p for p in Path(out_dir).glob("*-seed*") if p.is_dir()):
        with tempfile.TemporaryDirectory() as tmp:
            sets = counter_sets(load_records(run / "data/jade/test.jsonl"), written)
            dev = written_set(load_records(run / "data/jade/dev.jsonl"), written_dev)
            sets = {**sets, "written_dev": dev} if dev else sets
            files = {name: write_records(rows, Path(tmp) / f"{name}.jsonl") for name, rows in sets.items()}
            for stage in STAGES:
                checkpoint = run / stage / "checkpoint"
                if not checkpoint.is_dir():
                    continue
                for name, data in files.items():
                    metrics, rows = score(checkpoint, data, Path(tmp) / stage / name)
                    print(row(f"{run.name}, {stage}, {name}", metrics, rows), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
