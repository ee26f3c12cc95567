"""What trivial shortcuts score on a data set, without any guard: the judged text's length (best cut on the
set itself: a bound in the shortcut's favour) and the refusal-opening rule (eval/shortcuts.py), with the
helpful share of its safe answers. The figures BENCHMARKS.md gives beside every accuracy.

    python benchmarks/shortcuts.py --synth-seeds 0 1 2 [--jade DIR] [--cold DIR]

--jade: the folder holding JADE v3's jade_alignment_medium_zh.csv (scored on its test split, split by
question as data=jade splits it); --cold: the folder holding COLD's test.csv. The synthetic sets are made
by the offline generator (3,000 samples, the quick start's), one per seed.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from libra_train.data.io import load_records
from libra_train.eval.shortcuts import over_flagging, shortcut_metrics


def figures(name: str, rows: list[dict]) -> str:
    scored = [{**r, "pred_label": r["label"]} for r in rows]
    cuts = shortcut_metrics(scored, 0.5)
    helpful = over_flagging(scored)
    share = f"{helpful['helpful_safe']}/{helpful['helpful_safe'] + helpful['refusals']}" if helpful else "–"
    length, opening = cuts["length"], cuts["opening"]
    return (
        f"| {name} | {len(rows)} | {length['accuracy']:.3f} | {length['auroc']:.3f} | "
        f"{opening['accuracy']:.3f} | {share} |"
    )


def synthetic(seed: int, work: Path) -> dict[str, list[dict]]:
    from data_synth.pipeline import synthesize_run_data

    out = work / f"synth{seed}"
    synthesize_run_data(str(out), num_samples=3000, seed=seed)
    return {split: load_records(out / f"{split}.jsonl") for split in ("stage1", "stage2", "heldout")}


def jade_test(folder: Path, work: Path) -> list[dict]:
    from libra_train.data.tables import TableConfig, import_and_split

    table = TableConfig(
        path=str(folder / "jade_alignment_medium_zh.csv"),
        out_dir=str(work / "jade"),
        question_column="问题",
        unsafe_response_column="违规回答",
        safe_response_column="安全有用回答",
        id_column="ID",
        source="JADE",
        seed=0,
    )
    import_and_split(table)
    return load_records(work / "jade" / "test.jsonl")


def cold_test(folder: Path, work: Path) -> list[dict]:
    from libra_train.data.importer import ImportMapping, import_table

    out = work / "cold_test.jsonl"
    mapping = ImportMapping(
        label_column="label",
        text_column="TEXT",
        unsafe_values=["1"],
        safe_values=["0"],
        source="Real Data",
        category_column="topic",
    )
    import_table(str(folder / "test.csv"), str(out), mapping)
    return load_records(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--synth-seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--jade", type=Path)
    parser.add_argument("--cold", type=Path)
    args = parser.parse_args()
    print("| set | n | length accuracy | length AUROC (longer = unsafe) | refusal-opening accuracy | "
          "helpful / safe |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for seed in args.synth_seeds:
            for split, rows in synthetic(seed, work).items():
                print(figures(f"synthetic {split} (seed {seed})", rows))
        if args.jade:
            print(figures("JADE test", jade_test(args.jade, work)))
        if args.cold:
            print(figures("COLD test", cold_test(args.cold, work)))


if __name__ == "__main__":
    main()
