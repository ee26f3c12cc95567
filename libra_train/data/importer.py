"""Import a user's labelled table (CSV / JSONL / Parquet) into the guard schema via a declared mapping.

Example, COLD (each row one text to judge → a prompt-only sample):
    libra-data import COLDataset/COLDataset/train.csv data/cold/train.jsonl \
        --text-column TEXT --label-column label --unsafe-values 1 --safe-values 0 \
        --source "Real Data" --category-column topic

OpenAI-style chat JSONL (one {"messages": [{"role", "content"}, …], "label": …} per line; the last turn
is judged, earlier turns are context):
    libra-data import chats.jsonl data/chats.jsonl --messages-column messages --label-column label
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from libra_train.data.conversation import from_messages
from libra_train.data.io import write_records
from libra_train.data.schema import SAFE, UNSAFE
from libra_train.errors import DataError


@dataclass
class ImportMapping:
    label_column: str
    text_column: str | None = None  # one text per row: becomes `question`, response empty
    question_column: str | None = None
    messages_column: str | None = None  # OpenAI-style chat turns: [{role, content}, …]
    response_column: str | None = None
    id_column: str | None = None
    category_column: str | None = None
    analyze_column: str | None = None
    unsafe_values: list[str] = field(default_factory=lambda: ["1", UNSAFE])
    safe_values: list[str] = field(default_factory=lambda: ["0", SAFE])
    source: str = "Real Data"

    def __post_init__(self):
        if sum(bool(c) for c in (self.text_column, self.question_column, self.messages_column)) != 1:
            one_of = "--text-column, --question-column or --messages-column"
            raise DataError("<import mapping>", f"give exactly one of {one_of}")
        if self.messages_column and self.response_column:
            raise DataError("<import mapping>", "the messages hold the response: drop --response-column")
        overlap = set(self.unsafe_values) & set(self.safe_values)
        if overlap:
            raise DataError("<import mapping>", f"values {sorted(overlap)} are both safe and unsafe")


def _read_table(path: Path):
    import pandas as pd

    if not path.exists():
        raise DataError(path, "no such file")
    try:
        if path.suffix == ".csv":
            # keep_default_na=False: an empty cell stays "" instead of becoming NaN
            frame = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
        elif path.suffix == ".jsonl":
            frame = pd.read_json(path, lines=True, dtype=False)
        elif path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            raise DataError(path, f"unsupported table type {path.suffix!r}; use .csv, .jsonl or .parquet")
    except DataError:
        raise
    except Exception as err:
        raise DataError(path, f"unreadable table ({type(err).__name__}: {err})") from None
    if frame.empty:
        raise DataError(path, "empty table: no rows")
    return frame


def _cell(row, column: str | None) -> str:
    if column is None:
        return ""
    value = row[column]
    if value is None or (isinstance(value, float) and value != value):  # NaN from pandas
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _conversation(row, mapping: ImportMapping, path: Path, where: str) -> dict:
    """question and response, plus `messages` when the row is a conversation of more than one exchange."""
    if mapping.messages_column:
        turns = row[mapping.messages_column]
        turns = turns.tolist() if hasattr(turns, "tolist") else turns  # Parquet gives arrays
        return from_messages(turns, path, where)
    question = _cell(row, mapping.text_column or mapping.question_column)
    if not question.strip():
        raise DataError(path, "empty text", where, mapping.text_column or mapping.question_column)
    return {"question": question, "response": _cell(row, mapping.response_column)}


def _categories(row, column: str | None):
    """One category, or several when the cell holds a list (chat JSONL, Parquet)."""
    value = row[column] if column else None
    value = value.tolist() if hasattr(value, "tolist") else value
    if isinstance(value, list):
        return [str(c) for c in value if str(c).strip()] or ""
    return _cell(row, column)


def convert_table(path: str | Path, mapping: ImportMapping) -> list[dict]:
    """Rows → guard records. Row numbers in errors count the header as row 1, as a spreadsheet shows them."""
    path = Path(path)
    frame = _read_table(path)
    wanted = [
        mapping.label_column,
        mapping.text_column,
        mapping.question_column,
        mapping.messages_column,
        mapping.response_column,
        mapping.id_column,
        mapping.category_column,
        mapping.analyze_column,
    ]
    for column in filter(None, wanted):
        if column not in frame.columns:
            raise DataError(path, f"no such column; the table has {list(frame.columns)}", field=column)
    first_row = 2 if path.suffix == ".csv" else 1
    records, seen_ids = [], {}
    for offset, row in enumerate(frame.to_dict("records")):
        where = f"row {first_row + offset}"
        raw_label = _cell(row, mapping.label_column).strip()
        if raw_label in mapping.unsafe_values:
            label = UNSAFE
        elif raw_label in mapping.safe_values:
            label = SAFE
        else:
            raise DataError(
                path,
                f"unknown label value {raw_label!r}; mapped values are unsafe="
                f"{mapping.unsafe_values} safe={mapping.safe_values}",
                where,
                mapping.label_column,
            )
        conversation = _conversation(row, mapping, path, where)
        rid = _cell(row, mapping.id_column) if mapping.id_column else str(first_row + offset)
        if rid in seen_ids:
            raise DataError(
                path, f"duplicate id {rid!r} (first at {seen_ids[rid]})", where, mapping.id_column or "id"
            )
        seen_ids[rid] = where
        records.append(
            {
                "id": rid,
                "source": mapping.source,
                "category_name": _categories(row, mapping.category_column),
                "sub_category_name": "",
                **conversation,
                "label": label,
                "analyze": _cell(row, mapping.analyze_column),
            }
        )
    return records


def import_table(input_path, output_path, mapping: ImportMapping) -> dict:
    records = convert_table(input_path, mapping)
    write_records(records, output_path)
    counts = {label: sum(r["label"] == label for r in records) for label in (SAFE, UNSAFE)}
    return {"rows": len(records), "output": str(output_path), **counts}
