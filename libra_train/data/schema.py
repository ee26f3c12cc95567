"""The Libra-Test sample schema (docs/architecture.md, "The sample") and its validation.

Validation never drops a record silently: it raises a DataError naming the file, the line and the
field, or (with on_invalid="skip") returns the rejected records with their reasons so the caller
can write them to rejected.jsonl.
"""

from __future__ import annotations

from dataclasses import dataclass

from libra_train.data.conversation import check_messages
from libra_train.errors import DataError

SAFE, UNSAFE = "安全", "不安全"
LABELS = (SAFE, UNSAFE)
TEXT_FIELDS = ("source", "sub_category_name", "question", "response", "analyze")
DEFAULT_SOURCE = "Unknown"


@dataclass
class Located:
    """A raw record plus where it came from, so every later error can point back at it."""

    record: object
    path: str
    where: str  # "line 3", "row 7", "record 2"


@dataclass
class Unparsed:
    """A line that is not JSON: kept in place so that it is reported (or rejected) like any bad record."""

    text: str
    problem: str


def _check_record(item: Located, require_label: bool) -> dict:
    rec = item.record
    if isinstance(rec, Unparsed):
        raise DataError(item.path, rec.problem, item.where)
    if not isinstance(rec, dict):
        raise DataError(item.path, f"expected a JSON object, got {type(rec).__name__}", item.where)
    out = dict(rec)
    if out.get("messages") is not None:
        _take_judged_exchange(out, item)
    question = out.get("question")
    if question is None:
        raise DataError(item.path, "missing (required, non-empty text)", item.where, "question")
    if not isinstance(question, str) or not question.strip():
        raise DataError(item.path, "must be non-empty text", item.where, "question")
    for field in TEXT_FIELDS:
        value = out.get(field)
        if value is None:
            out[field] = ""  # an empty source becomes DEFAULT_SOURCE below
        elif not isinstance(value, str):
            raise DataError(item.path, f"must be text, got {type(value).__name__}", item.where, field)
    out["category_name"] = _check_categories(out.get("category_name"), item)
    if out["source"] == "":
        out["source"] = DEFAULT_SOURCE
    rid = out.get("id")
    if rid is None or (isinstance(rid, str) and not rid.strip()):
        raise DataError(
            item.path, "missing (every sample needs an id unique within its file)", item.where, "id"
        )
    if isinstance(rid, bool) or not isinstance(rid, (str, int)):
        raise DataError(item.path, f"must be text or an integer, got {type(rid).__name__}", item.where, "id")
    label = out.get("label")
    if label is None or label == "":
        if require_label:
            raise DataError(item.path, f"missing (one of {SAFE} / {UNSAFE})", item.where, "label")
        out["label"] = None
    elif label not in LABELS:
        raise DataError(item.path, f"unknown label {label!r}; allowed: {SAFE}, {UNSAFE}", item.where, "label")
    _check_harm_start(out, item)
    return out


def _check_harm_start(out: dict, item: Located) -> None:
    """meta.harm_start, where given: the character offset in the response where an unsafe response first
    becomes unsafe (a stream head's token labels start there)."""
    start = out["meta"].get("harm_start") if isinstance(out.get("meta"), dict) else None
    if start is None:
        return
    where, field = item.where, "meta.harm_start"
    if isinstance(start, bool) or not isinstance(start, int):
        raise DataError(item.path, f"must be a character offset (an integer), got {start!r}", where, field)
    if out["label"] == SAFE:
        raise DataError(
            item.path, "given for a safe sample: only an unsafe response has a harm onset", where, field
        )
    if not 0 <= start < len(out["response"]):
        raise DataError(
            item.path, f"{start} is outside the response (0 to {len(out['response']) - 1})", where, field
        )


def _take_judged_exchange(out: dict, item: Located) -> None:
    """A multi-turn sample: question and response are its judged exchange; given as well, they must agree."""
    question, response = check_messages(out["messages"], item.path, item.where)
    for field, derived in (("question", question), ("response", response)):
        given = out.get(field)
        if given not in (None, "") and given != derived:
            raise DataError(
                item.path,
                f"disagrees with the judged exchange in messages ({derived[:40]!r})",
                item.where,
                field,
            )
    out["question"], out["response"] = question, response


def _check_categories(value, item: Located):
    """One category name, or a list of them (a sample may violate several); empty when none."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(c, str) and c.strip() for c in value):
        return list(value)
    raise DataError(
        item.path, "must be a category name or a list of non-empty names", item.where, "category_name"
    )


def validate_records(
    items: list[Located], require_label: bool = True, on_invalid: str = "error"
) -> tuple[list[dict], list[dict]]:
    """Check every record; return (valid, rejected). Duplicate ids within one file are an error too."""
    if on_invalid not in ("error", "skip"):
        raise DataError("<config>", f"data.on_invalid must be 'error' or 'skip', got {on_invalid!r}")
    valid, rejected = [], []
    seen: dict[tuple[str, str], str] = {}
    for item in items:
        try:
            rec = _check_record(item, require_label)
            key = (item.path, str(rec["id"]))
            if key in seen:
                raise DataError(
                    item.path, f"duplicate id {rec['id']!r} (first at {seen[key]})", item.where, "id"
                )
            seen[key] = item.where
            valid.append(rec)
        except DataError as err:
            if on_invalid == "error":
                raise
            raw = item.record.text if isinstance(item.record, Unparsed) else item.record
            rejected.append({"path": item.path, "where": item.where, "error": str(err), "record": raw})
    return valid, rejected
