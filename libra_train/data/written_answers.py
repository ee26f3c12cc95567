"""Long, helpful safe answers written for real pairs' questions (`data.<key>.written_answers`).

A real set whose safe answers are refusals (JADE: 88% open with one) teaches a guard that an answer
which names its harmful topic at length is unsafe, whatever it enables; it then flags the safe answer an
assistant gives when it helps (BENCHMARKS.md, "Long, helpful safe answers"). Written answers give those
questions a safe answer that helps on the topic: each one whose pair (meta.pair) has an unsafe answer
in a stage's data is added as a safe answer to that pair's question. A pair in another split (dev, test)
is never added, so no answer leaks into what a run is scored on.

`jade` names the 100 answers this project wrote for JADE medium's questions (jade_written_answers.jsonl
beside this module: questions in the train split of seeds 0, 1 and 2, none of those the benchmark's
written test and dev answers are for); any other value is a JSONL path, a line per answer:
{"pair": the question's pair id, "response": the answer}.
"""

from __future__ import annotations

import json
from pathlib import Path

from libra_train.data.schema import SAFE, UNSAFE
from libra_train.errors import DataError

BUILT_IN = {"jade": Path(__file__).with_name("jade_written_answers.jsonl")}


def written_path(spec: str | Path) -> Path:
    """The file a built-in name or a JSONL path names."""
    return BUILT_IN.get(str(spec), Path(spec))


def load_written(spec: str | Path) -> list[dict]:
    """The written answers of a built-in name or a JSONL path."""
    path = written_path(spec)
    if not path.is_file():
        raise DataError(path, f"no such file (or name one of: {', '.join(BUILT_IN)})")
    rows, line_of_pair = [], {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue  # as in every JSONL file the project reads
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(path, f"not a JSON object ({error.msg})", f"line {number}") from None
        for field in ("pair", "response"):
            if not isinstance(row, dict) or not isinstance(row.get(field), str) or not row[field]:
                raise DataError(path, "needs a non-empty string", f"line {number}", field)
        if row["pair"] in line_of_pair:  # one answer per question: a second would replace the first
            first = line_of_pair[row["pair"]]
            raise DataError(
                path,
                f"a second answer for pair {row['pair']!r} (first on line {first})",
                f"line {number}",
                "pair",
            )
        line_of_pair[row["pair"]] = number
        rows.append(row)
    return rows


def written_counterparts(records: list[dict], written: list[dict]) -> list[dict]:
    """A safe record for each written answer whose pair has an unsafe answer among the records: its
    question, the written answer, `meta.refusal` false (it helps; whatever its opening says)."""
    by_pair = {w["pair"]: w["response"] for w in written}
    added = []
    for record in records:
        pair = (record.get("meta") or {}).get("pair")
        pair = None if pair is None else str(pair)  # an unpaired record has no question to answer again
        if record["label"] == UNSAFE and pair in by_pair:
            answer = {"id": f"{pair}-written", "source": "written", "response": by_pair[pair], "label": SAFE}
            added.append({**record, **answer, "analyze": "", "meta": {"pair": pair, "refusal": False}})
    return added
