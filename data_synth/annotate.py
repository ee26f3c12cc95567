"""`libra-synth annotate`: a judge writes the explanation (`analyze`) for labelled real data.

Labels are never changed here: a judge that disagrees with the gold label gets the sample flagged
and reported, and the sample keeps an empty analysis (a label-only target in training)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from omegaconf import DictConfig

from data_synth.judges import ChatJudge
from data_synth.pipeline import chat_backend
from libra_train.cli_utils import CLI_CONF_DIR, hydra_command, quiet_libraries
from libra_train.data.io import atomic_write_text, load_records, to_jsonl, write_records


def annotate_records(records: list[dict], judge, overwrite: bool) -> tuple[list[dict], list[dict], Counter]:
    """(all records, annotated where the judge agreed; the flagged disagreements; counts)."""
    counts: Counter = Counter(total=len(records))
    todo = [r for r in records if overwrite or not (r.get("analyze") or "").strip()]
    counts["had_analysis"] = len(records) - len(todo)
    flagged = []
    for record, verdict in zip(todo, judge.judge(todo)):
        meta = dict(record.get("meta") or {})
        if verdict.label is None:
            counts["unparseable"] += 1
            meta["annotation"] = {"judge": judge.name, "status": "unparseable", "raw": verdict.analysis}
        elif verdict.label == record["label"]:
            counts["annotated"] += 1
            record["analyze"] = verdict.analysis
            meta["annotation"] = {"judge": judge.name, "status": "agreed"}
        else:
            counts["disagreements"] += 1
            meta["annotation"] = {
                "judge": judge.name,
                "status": "disagrees",
                "judge_label": verdict.label,
                "judge_analysis": verdict.analysis,
            }
            flagged.append(record)
        record["meta"] = meta
    counts["without_analysis"] = sum(not (r.get("analyze") or "").strip() for r in records)
    return records, flagged, counts


@hydra_command(CLI_CONF_DIR, "annotate", "data_synth.config:AnnotateConfig")
def annotate_main(cfg: DictConfig) -> None:
    from data_synth.config import AnnotateConfig

    config = AnnotateConfig.from_hydra(cfg)
    quiet_libraries()
    output = Path(config.output)
    records = load_records(config.input)
    spec = {"backend": config.backend, **({"name": config.judge_name} if config.judge_name else {})}
    judge = ChatJudge(chat_backend(spec, config, Path(config.cache_dir or f"{output}.cache")))
    records, flagged, counts = annotate_records(records, judge, config.overwrite)
    write_records(records, output)
    atomic_write_text(Path(f"{output}.flagged.jsonl"), to_jsonl(flagged))
    summary = {**counts, "judge": judge.name, "output": str(output), "flagged": f"{output}.flagged.jsonl"}
    atomic_write_text(
        Path(f"{output}.summary.json"), json.dumps(summary, ensure_ascii=False, indent=1) + "\n"
    )
    print(json.dumps(summary, ensure_ascii=False))
    if flagged:
        print(
            f"{len(flagged)} samples where the judge disagrees with the gold label: kept as labelled, "
            f"without analysis; see {output}.flagged.jsonl",
            file=sys.stderr,
        )
