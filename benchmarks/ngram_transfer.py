"""What a run's first-stage data can teach without a transformer: a logistic regression on the character
1–3-grams of the judged text (the response, else the question), fitted on the run's first stage's
samples, its threshold chosen on the run's calibration set as the run chose its own (eval.calibrate_at),
scored on each of the run's eval sets beside the run's own first-stage guard at its shipped threshold.

    python benchmarks/ngram_transfer.py RUN [RUN ...] [--units tokens]

RUN: a finished libra-train run directory (its config.yaml names the data and the calibration set). A
first-stage guard far below the n-gram model on a real set has data enough and learns less than it holds.
--units tokens: the 1–2-grams of the run's own tokens (RUN/backbone's tokenizer) instead of characters,
to see whether the guard's vocabulary hides what the characters show.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import yaml
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from libra_train.data.io import load_records
from libra_train.data.schema import UNSAFE
from libra_train.eval.decision import Decision
from libra_train.eval.operating_points import operating_points
from libra_train.eval.shortcuts import judged_text


def vectorizer_for(run: Path, units: str) -> CountVectorizer:
    if units == "chars":
        return CountVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, binary=True)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(run / "backbone")

    def grams(text: str) -> list[str]:
        ids = [str(i) for i in tokenizer(text)["input_ids"]]
        return ids + [f"{a} {b}" for a, b in zip(ids, ids[1:])]

    return CountVectorizer(analyzer=grams, min_df=2, binary=True)


def fit(rows: list[dict], vectorizer: CountVectorizer):
    features = vectorizer.fit_transform([judged_text(r) for r in rows])
    model = LogisticRegression(max_iter=3000).fit(features, [r["label"] == UNSAFE for r in rows])
    return lambda batch: model.predict_proba(vectorizer.transform([judged_text(r) for r in batch]))[:, 1]


def guard_accuracy(run: Path, stage: str, name: str) -> float | None:
    path = run / stage / "eval" / name / "metrics.json"
    if not path.exists():
        return None
    metrics = json.loads(path.read_text())
    if "response" in (metrics.get("per_task") or {}):  # a guard of both tasks: its responses, as here
        return metrics["per_task"]["response"]["accuracy"]
    c = metrics["confusion"]
    return (c["tp"] + c["tn"]) / sum(c.values())


def rows_for(run: Path, units: str) -> list[str]:
    config = yaml.safe_load((run / "config.yaml").read_text())
    first = config["curriculum"]["stages"][0]
    train = [r for key in first["data"] for r in load_records(config["data"][key]["path"])]
    p_unsafe = fit(train, vectorizer_for(run, units))
    calibration = config["eval"]["calibration_set"]
    threshold = 0.5
    if calibration:
        cal = load_records(config["data"]["eval_sets"][calibration])
        points = operating_points(
            [r["label"] == UNSAFE for r in cal], list(p_unsafe(cal)), at=config["eval"]["calibrate_at"]
        )
        threshold = points["best_accuracy"]["threshold"]
    decision = Decision(threshold)
    lines = []
    for name, path in config["data"]["eval_sets"].items():
        if name == calibration:
            continue
        rows = load_records(path)
        p = p_unsafe(rows)
        gold = [r["label"] == UNSAFE for r in rows]
        accuracy = np.mean([decision.label(q) == r["label"] for q, r in zip(p, rows)])
        guard = guard_accuracy(run, first["name"], name)
        lines.append(
            f"| {run.name} | {name} | {len(rows)} | {accuracy:.3f} | {roc_auc_score(gold, p):.3f} | "
            f"{threshold:.4g} | {'–' if guard is None else f'{guard:.3f}'} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--units", choices=("chars", "tokens"), default="chars")
    args = parser.parse_args()
    columns = "run | set | n | n-gram accuracy | its AUROC | its threshold | first-stage guard (responses)"
    print(f"| {columns} |")
    print("|---|---|---|---|---|---|---|")
    for run in args.runs:
        print("\n".join(rows_for(run, args.units)))


if __name__ == "__main__":
    main()
