"""Import a user's labelled table (CSV / JSONL / Parquet) into the guard schema via a declared mapping.

Example, COLD (each row one text to judge → a prompt-only sample):
    libra-data import COLDataset/COLDataset/train.csv data/cold/train.jsonl \
        --text-column TEXT --label-column label --unsafe-values 1 --safe-values 0 \
        --source "Real Data" --category-column topic

OpenAI-style chat JSONL (one {"messages": [{"role", "content"}, …], "label": …} per line; the last turn
is judged, earlier turns are context):
    libra-data import chats.jsonl data/chats.jsonl --messages-column messages --label-column label

A paired table, each row a question with a violating and a safe answer (JADE), in its own encoding:
    libra-data import jade_alignment_medium_zh.csv data/jade.jsonl --question-column 问题 \
        --unsafe-response-column 违规回答 --safe-response-column 安全有用回答 --id-column ID
"""

from __future__ import annotations

import codecs
import io
from dataclasses import dataclass, field
from pathlib import Path

from libra_train.data.conversation import from_messages
from libra_train.data.io import write_records
from libra_train.data.schema import SAFE, UNSAFE
from libra_train.errors import DataError


@dataclass
class ImportMapping:
    label_column: str | None = None  # every mode but the paired one
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
    # paired: each row gives two samples, the question with each answer, labelled by the column
    unsafe_response_column: str | None = None
    safe_response_column: str | None = None
    encoding: str = "auto"  # CSV: auto tries UTF-8, then GB18030 (a superset of GBK)

    @property
    def paired(self) -> bool:
        return bool(self.unsafe_response_column or self.safe_response_column)

    def __post_init__(self):
        if sum(bool(c) for c in (self.text_column, self.question_column, self.messages_column)) != 1:
            one_of = "--text-column, --question-column or --messages-column"
            raise DataError("<import mapping>", f"give exactly one of {one_of}")
        if self.paired:
            if not (self.unsafe_response_column and self.safe_response_column and self.question_column):
                raise DataError(
                    "<import mapping>",
                    "a paired table needs --question-column, --unsafe-response-column and "
                    "--safe-response-column",
                )
            if self.label_column or self.response_column:
                raise DataError(
                    "<import mapping>",
                    "a paired table's columns are its labels: drop --label-column and --response-column",
                )
        elif not self.label_column:
            raise DataError("<import mapping>", "give --label-column (or the two columns of a paired table)")
        if self.messages_column and self.response_column:
            raise DataError("<import mapping>", "the messages hold the response: drop --response-column")
        overlap = set(self.unsafe_values) & set(self.safe_values)
        if overlap:
            raise DataError("<import mapping>", f"values {sorted(overlap)} are both safe and unsafe")


AUTO_ENCODINGS = ("utf-8-sig", "gb18030")  # GB18030 reads GBK and GB2312 files too


def decode_table(raw: bytes, path: Path, encoding: str = "auto") -> str:
    """The file's text in its encoding: given, or detected (UTF-8, else GB18030). Text that cannot be
    read, or a UTF-8 file named as another encoding (it would read as garbage), is one DataError."""
    if encoding == "auto":
        for candidate in AUTO_ENCODINGS:
            try:
                return raw.decode(candidate)
            except UnicodeDecodeError:
                continue
        raise DataError(
            path, "neither UTF-8 nor GB18030/GBK: give its encoding (--encoding)", field="encoding"
        )
    try:
        text = raw.decode(encoding)
    except LookupError:
        raise DataError(path, f"unknown encoding {encoding!r}", field="encoding") from None
    except UnicodeDecodeError as err:
        raise DataError(
            path,
            f"not {encoding}: bytes {err.start}–{err.end} do not decode; try --encoding auto",
            field="encoding",
        ) from None
    if codecs.lookup(encoding).name != "utf-8" and not raw.isascii() and _is_utf8(raw):
        raise DataError(path, f"this file is UTF-8: read as {encoding} it would be garbled", field="encoding")
    return text


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _read_table(path: Path, encoding: str = "auto"):
    import pandas as pd

    if not path.exists():
        raise DataError(path, "no such file")
    if path.suffix == ".csv":
        text = decode_table(path.read_bytes(), path, encoding)
    try:
        if path.suffix == ".csv":
            # keep_default_na=False: an empty cell stays "" instead of becoming NaN
            frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
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
    frame = _read_table(path, mapping.encoding)
    wanted = [
        mapping.unsafe_response_column,
        mapping.safe_response_column,
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
        if mapping.paired:
            rid = _cell(row, mapping.id_column) if mapping.id_column else str(first_row + offset)
            _check_new_id(rid, seen_ids, path, where, mapping.id_column)
            records += _paired(row, mapping, rid, path, where)
            continue
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
        _check_new_id(rid, seen_ids, path, where, mapping.id_column)
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


def _check_new_id(rid: str, seen_ids: dict, path: Path, where: str, column: str | None) -> None:
    if rid in seen_ids:
        raise DataError(path, f"duplicate id {rid!r} (first at {seen_ids[rid]})", where, column or "id")
    seen_ids[rid] = where


def _paired(row, mapping: ImportMapping, rid: str, path: Path, where: str) -> list[dict]:
    """One row, two samples: the question with its violating answer (不安全) and with its safe answer
    (安全); meta.pair keeps them together (a split by question)."""
    question = _cell(row, mapping.question_column)
    if not question.strip():
        raise DataError(path, "empty text", where, mapping.question_column)
    out = []
    for column, label, tag in (
        (mapping.unsafe_response_column, UNSAFE, "unsafe"),
        (mapping.safe_response_column, SAFE, "safe"),
    ):
        response = _cell(row, column)
        if not response.strip():
            raise DataError(path, "empty answer", where, column)
        out.append(
            {
                "id": f"{rid}-{tag}",
                "source": mapping.source,
                "category_name": _categories(row, mapping.category_column),
                "sub_category_name": "",
                "question": question,
                "response": response,
                "label": label,
                "analyze": _cell(row, mapping.analyze_column),
                "meta": {"pair": rid},
            }
        )
    return out


def import_table(input_path, output_path, mapping: ImportMapping) -> dict:
    records = convert_table(input_path, mapping)
    write_records(records, output_path)
    counts = {label: sum(r["label"] == label for r in records) for label in (SAFE, UNSAFE)}
    return {"rows": len(records), "output": str(output_path), **counts}
