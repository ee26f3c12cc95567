"""Fuzzing with hypothesis: the loaders, the import mapping, the output parser and config validation
either work or raise the project's own clear errors; no row is ever dropped without a report."""

import csv
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libra_train.data.formats import FormatConfig
from libra_train.data.importer import ImportMapping, convert_table
from libra_train.data.io import load_records, write_records
from libra_train.data.schema import TEXT_FIELDS
from libra_train.data.subset import stratified_subset
from libra_train.errors import LibraError
from libra_train.eval.parse import parse_output
from tests.conftest import read_jsonl, sample

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LABELS = st.sampled_from(["安全", "不安全", "safe", "", "1", None, 0, "不 安全"])
FIELD_VALUES = st.one_of(st.none(), st.integers(), st.text(max_size=12), st.lists(st.integers(), max_size=2))
RECORDS = st.lists(
    st.fixed_dictionaries(
        {"id": st.one_of(st.integers(0, 6), st.text(max_size=3)), "question": FIELD_VALUES, "label": LABELS},
        optional={"response": FIELD_VALUES, "source": FIELD_VALUES, "analyze": FIELD_VALUES},
    ),
    max_size=8,
)


def _should_load(rec, seen_ids: set) -> bool:
    """The schema's rules, written out again independently: what a correct loader keeps."""
    if not isinstance(rec, dict):
        return False
    question = rec.get("question")
    if not isinstance(question, str) or not question.strip():
        return False
    if any(rec.get(f) is not None and not isinstance(rec.get(f), str) for f in TEXT_FIELDS):
        return False
    rid = rec.get("id")
    if isinstance(rid, bool) or not isinstance(rid, (str, int)) or (isinstance(rid, str) and not rid.strip()):
        return False
    if rec.get("label") not in ("安全", "不安全") or str(rid) in seen_ids:
        return False
    seen_ids.add(str(rid))
    return True


def _expected_kept(path) -> int:
    seen: set = set()
    kept = 0
    with open(path, encoding="utf-8-sig") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            kept += _should_load(rec, seen)
    return kept


def _lines(records, junk):
    return [json.dumps(r, ensure_ascii=False) if r is not None else junk for r in records]


@FUZZ
@given(
    records=st.lists(st.one_of(RECORDS.map(lambda rs: rs[0] if rs else {}), st.none()), max_size=8),
    junk=st.text(max_size=15),
)
def test_jsonl_loader_accepts_or_raises_clearly_and_skip_reports_every_row(records, junk):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.jsonl"
        lines = _lines(records, junk)
        path.write_text("\n".join(lines), encoding="utf-8")
        try:
            load_records(path)
        except LibraError as err:
            assert "fuzz.jsonl" in str(err)
        rejected = Path(tmp) / "rejected.jsonl"
        try:
            kept = load_records(path, on_invalid="skip", rejected_path=rejected)
        except LibraError:
            kept = []
        reported = read_jsonl(rejected) if rejected.exists() else []
        with path.open(encoding="utf-8") as fh:  # lines as a text-mode reader sees them
            non_blank = [line for line in fh if line.strip()]
        # Every non-blank line is either kept or reported with where it was, and every good row is kept.
        assert len(kept) + len(reported) == len(non_blank)
        assert len(kept) == _expected_kept(path)
        assert all(r["where"].startswith("line ") and r["error"] for r in reported)


@FUZZ
@given(
    rows=st.lists(
        st.tuples(st.text(max_size=10), st.sampled_from(["0", "1", "2", "", "不安全", " 1"])), max_size=8
    )
)
def test_import_mapping_converts_every_row_or_names_the_row(rows):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "table.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["TEXT", "label"])
            writer.writerows(rows)
        mapping = ImportMapping(
            label_column="label", text_column="TEXT", unsafe_values=["1"], safe_values=["0"]
        )
        good = bool(rows) and all(label.strip() in ("0", "1") and text.strip() for text, label in rows)
        try:
            out = convert_table(path, mapping)
        except LibraError as err:
            assert "table.csv" in str(err)
            assert not good, f"a good table was refused: {err}"
            return
        assert good  # a table with a bad row never converts
        assert [(r["question"], r["label"]) for r in out] == [
            (text, "不安全" if label.strip() == "1" else "安全") for text, label in rows
        ]


@FUZZ
@given(
    text=st.one_of(
        st.none(),
        st.text(max_size=60),
        st.builds(lambda a, b: a + '{"答案": "' + b, st.text(max_size=10), st.text(max_size=10)),
    )
)
def test_parser_never_raises_and_only_returns_known_labels(text):
    label, analysis = parse_output(text)
    assert label in ("安全", "不安全", None) and isinstance(analysis, str)


@FUZZ
@given(
    critic=st.text(max_size=8),
    task=st.sampled_from(["response", "prompt", "both", "all", ""]),
    limit=st.one_of(
        st.none(), st.integers(-3, 30), st.floats(-1, 2), st.just(float("nan")), st.text(max_size=4)
    ),
)
def test_config_values_are_accepted_or_rejected_by_name(critic, task, limit):
    try:
        FormatConfig(critic=critic, task=task)
    except LibraError as err:
        assert "format." in str(err)
    records = [sample(i, label="安全" if i % 2 else "不安全") for i in range(12)]
    try:
        chosen = stratified_subset(records, limit, seed=0, key="data.stage1.limit")
    except LibraError as err:
        assert "data.stage1.limit" in str(err)
        return
    assert 0 <= len(chosen) <= len(records)


GOOD_TEXT = st.text(min_size=1, max_size=12).filter(str.strip)
GOOD_RECORD = st.fixed_dictionaries(
    {"question": GOOD_TEXT, "label": st.sampled_from(["安全", "不安全"])},
    optional={
        "response": st.text(max_size=12),
        "source": st.text(max_size=6),
        "analyze": st.text(max_size=12),
        "category_name": st.one_of(st.none(), st.text(max_size=4)),
    },
)


@FUZZ
@given(
    records=st.lists(GOOD_RECORD, min_size=1, max_size=8),
    ids=st.lists(st.one_of(st.integers(-5, 10**6), GOOD_TEXT), min_size=8, max_size=8, unique_by=str),
    suffix=st.sampled_from([".jsonl", ".json", ".parquet"]),
)
def test_every_good_row_loads_with_its_values(records, ids, suffix):
    records = [{"id": rid, **rec} for rid, rec in zip(ids, records)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"good{suffix}"
        if suffix == ".parquet":
            records = [{**r, "id": str(r["id"])} for r in records]  # one column, one type
            columns = {k for r in records for k in r}
            records = [{k: r.get(k) for k in sorted(columns)} for r in records]
            write_records(records, path)
        elif suffix == ".json":
            path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
        else:
            path.write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
            )
        loaded = load_records(path)
    assert [r["id"] for r in loaded] == [r["id"] for r in records]
    for got, given_rec in zip(loaded, records):
        for key, value in given_rec.items():
            if key == "source" and not value:
                assert got["source"] == "Unknown"
            else:
                assert got[key] == (value if value is not None else ""), key
