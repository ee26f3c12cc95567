"""Where a data error points, in every format the loader reads (data/io.py, data/schema.py): the file,
then its line (JSONL), record (JSON array) or row (Parquet), then the field; and what the writer leaves
behind. Each message is checked whole, so a lost location or field fails here."""

import json
import os
import stat
from pathlib import Path

import pytest

from libra_train.data.io import atomic_write_text, load_records, read_cached, write_records
from libra_train.data.schema import Located, validate_records
from libra_train.data.tables import TableConfig
from libra_train.errors import ConfigError, DataError
from tests.conftest import read_jsonl, sample

GOOD = {"id": 1, "question": "q", "label": "安全"}


def error_of(path, **kwargs) -> str:
    with pytest.raises(DataError) as err:
        load_records(path, **kwargs)
    return str(err.value)


@pytest.mark.parametrize(
    "bad, field, message",
    [
        ({**GOOD, "response": 5}, "response", "must be text, got int"),
        ({**GOOD, "analyze": ["a"]}, "analyze", "must be text, got list"),
        ({**GOOD, "id": True}, "id", "must be text or an integer, got bool"),
        ({**GOOD, "id": [1]}, "id", "must be text or an integer, got list"),
        ({**GOOD, "id": "  "}, "id", "missing (every sample needs an id unique within its file)"),
        (
            {**GOOD, "category_name": 5},
            "category_name",
            "must be a category name or a list of non-empty names",
        ),
        (
            {**GOOD, "category_name": ["违法", ""]},
            "category_name",
            "must be a category name or a list of non-empty names",
        ),
        (
            {**GOOD, "category_name": ["违法", 3]},
            "category_name",
            "must be a category name or a list of non-empty names",
        ),
        ({**GOOD, "id": 0}, "id", "duplicate id 0 (first at line 1)"),
        ({**GOOD, "question": 5}, "question", "must be non-empty text"),
        ({**GOOD, "label": ""}, "label", "missing (one of 安全 / 不安全)"),
        ([1, 2], None, "expected a JSON object, got list"),
    ],
)
def test_a_bad_record_is_named_by_file_line_and_field_in_full(tmp_path, bad, field, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({**GOOD, "id": 0}) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    named = f"field '{field}': " if field else ""
    assert error_of(path) == f"{path}, line 2: {named}{message}"


def test_a_json_array_names_its_record_and_a_broken_file_its_line(tmp_path):
    path = tmp_path / "set.json"
    path.write_text(json.dumps({"data": [GOOD, {**GOOD, "id": 2, "response": 5}]}), encoding="utf-8")
    assert error_of(path) == f"{path}, record 2: field 'response': must be text, got int"
    path.write_text('[{"id": 1,\n "question": }]', encoding="utf-8")
    assert error_of(path) == f"{path}, line 2: malformed JSON (Expecting value)"
    path.write_text(json.dumps({"rows": [GOOD]}), encoding="utf-8")
    assert error_of(path) == f'{path}: a .json file must hold a list of records (or {{"data": [...]}})'
    path.write_text(json.dumps({"data": [GOOD, {**GOOD, "id": 2}]}), encoding="utf-8")
    assert [r["id"] for r in load_records(path)] == [1, 2]  # {"data": [...]} as the hub writes it


def test_a_parquet_file_names_its_row(tmp_path):
    path = tmp_path / "set.parquet"
    write_records([sample(1), {**sample(2), "label": "不确定"}], path)
    assert error_of(path) == f"{path}, row 2: field 'label': unknown label '不确定'; allowed: 安全, 不安全"
    path.write_bytes(b"PAR1 and nothing else")
    assert error_of(path).startswith(f"{path}: unreadable Parquet (")


def test_files_written_with_a_byte_order_mark_load(tmp_path):
    (tmp_path / "a.jsonl").write_text(json.dumps(GOOD) + "\n", encoding="utf-8-sig")
    (tmp_path / "b.json").write_text(json.dumps([{**GOOD, "id": 2}]), encoding="utf-8-sig")
    assert [r["id"] for r in load_records(tmp_path)] == [1, 2]


def test_a_folder_reads_its_data_files_only_and_says_what_it_lacks(tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    assert error_of(folder) == f"{folder}: folder has no data files (.jsonl, .json, .parquet)"
    (folder / "README.md").write_text("说明", encoding="utf-8")
    (folder / ".draft.jsonl").write_text("not json\n", encoding="utf-8")  # an editor's or a half write
    (folder / "a.jsonl").write_text(json.dumps(GOOD) + "\n", encoding="utf-8")
    assert [r["id"] for r in load_records(folder)] == [1]
    assert (
        error_of(folder / "README.md")
        == f"{folder / 'README.md'}: unsupported file type '.md'; use .jsonl, .json, .parquet"
    )
    assert error_of(folder / "gone.jsonl") == f"{folder / 'gone.jsonl'}: no such file or folder"
    (folder / "empty.json").write_text("[]", encoding="utf-8")
    assert error_of(folder) == f"{folder / 'empty.json'}: empty file: no records"


def test_skip_mode_keeps_each_rejected_line_as_written_and_says_when_none_is_left(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"id": 1, "question": \n' + json.dumps(GOOD) + "\n", encoding="utf-8")
    rejected_path = tmp_path / "rejected.jsonl"
    assert [r["id"] for r in load_records(path, on_invalid="skip", rejected_path=rejected_path)] == [1]
    [rejected] = read_jsonl(rejected_path)
    assert rejected["record"] == '{"id": 1, "question": ' and rejected["where"] == "line 1"
    assert rejected["path"] == str(path)
    path.write_text('{"id": 1}\n[]\n', encoding="utf-8")
    assert error_of(path, on_invalid="skip") == f"{path}: no valid records (2 rejected)"
    clean = tmp_path / "clean.jsonl"
    clean.write_text(json.dumps(GOOD) + "\n", encoding="utf-8")
    load_records(clean, on_invalid="skip", rejected_path=tmp_path / "none.jsonl")
    assert not (tmp_path / "none.jsonl").exists()  # nothing rejected, no file


def test_an_unlabelled_set_keeps_an_empty_label_as_none_and_empty_fields_get_defaults(tmp_path):
    path = tmp_path / "unlabelled.jsonl"
    path.write_text(
        json.dumps({"id": 1, "question": "q", "label": "", "source": ""}) + "\n", encoding="utf-8"
    )
    [record] = load_records(path, require_label=False)
    assert record["label"] is None and record["source"] == "Unknown" and record["response"] == ""


def test_a_harm_onset_may_be_the_responses_first_character(tmp_path):
    path = tmp_path / "onset.jsonl"
    record = {"id": 1, "question": "q", "response": "第一步", "label": "不安全", "meta": {"harm_start": 0}}
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    assert load_records(path)[0]["meta"]["harm_start"] == 0


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_a_write_makes_its_folders_and_leaves_the_mode_open_would(tmp_path, umask):
    before = os.umask(umask)
    try:
        path = tmp_path / "a" / "b" / "out.jsonl"
        write_records([{"id": 1, "question": "问题", "z": 1, "a": 2}], path)
        atomic_write_text(tmp_path / "c" / "d" / "note.txt", "好")
    finally:
        os.umask(before)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert path.read_text(encoding="utf-8") == '{"id": 1, "question": "问题", "z": 1, "a": 2}\n'  # as given
    assert (tmp_path / "c" / "d" / "note.txt").read_bytes() == "好".encode()
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.jsonl"]  # no temp file left


def test_a_write_that_fails_leaves_neither_the_file_nor_its_temp(tmp_path):
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(tmp_path / "out.txt", "\ud800")  # a lone surrogate cannot be encoded
    assert list(tmp_path.iterdir()) == []


def test_a_write_to_another_format_and_a_bad_split_are_refused_by_name(tmp_path):
    with pytest.raises(DataError) as err:
        write_records([GOOD], tmp_path / "out.csv")
    assert str(err.value) == f"{tmp_path / 'out.csv'}: output must end in .jsonl or .parquet"
    write_records([GOOD], tmp_path / "a" / "b" / "out.parquet")  # its folders made as for JSONL
    assert load_records(tmp_path / "a" / "b" / "out.parquet")[0]["id"] == 1
    columns = dict(path="t.csv", out_dir=str(tmp_path), question_column="问题", response_column="回答")
    bad = {"train": 0.8, "dev": 0.1, "test": 0.2}
    with pytest.raises(ConfigError) as err:
        TableConfig(**columns, label_column="标签", shares=bad)
    assert (
        str(err.value) == f"config 'data.table.shares': train, dev and test shares that sum to 1, got {bad}"
    )
    with pytest.raises(ConfigError, match="^config 'data.table.seed'"):
        TableConfig(**columns, label_column="标签", seed="0")
    TableConfig(**columns, label_column="标签", shares={"train": 0.7, "dev": 0.2, "test": 0.1})  # 0.99999…


def test_a_conversation_gives_its_judged_exchange_and_a_given_field_must_agree(tmp_path):
    path = tmp_path / "chat.jsonl"
    turns = [{"role": "user", "content": "问"}, {"role": "assistant", "content": "答"}]
    chat = {"id": 1, "messages": turns, "label": "安全", "category_name": ["违法", "隐私"]}
    path.write_text(json.dumps({**chat, "question": "问", "response": ""}) + "\n", encoding="utf-8")
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({**chat, "id": 2}) + "\n")  # the exchange alone
    for record in load_records(path):
        assert (record["question"], record["response"]) == ("问", "答")
        assert record["category_name"] == ["违法", "隐私"]
    path.write_text(json.dumps({**chat, "response": "别的"}) + "\n", encoding="utf-8")
    message = "field 'response': disagrees with the judged exchange in messages ('答')"
    assert error_of(path) == f"{path}, line 1: {message}"


def test_validation_needs_a_label_unless_told_and_names_a_bad_on_invalid():
    unlabelled = [Located({"id": 1, "question": "q"}, "f.jsonl", "line 1")]
    with pytest.raises(DataError, match="^f.jsonl, line 1: field 'label': missing"):
        validate_records(unlabelled)
    with pytest.raises(DataError) as err:
        validate_records(unlabelled, on_invalid="drop")
    assert str(err.value) == "<config>: data.on_invalid must be 'error' or 'skip', got 'drop'"


def test_a_cached_file_is_read_again_once_it_changes_on_disk(tmp_path):
    path, reads = tmp_path / "policy.txt", []

    def reader(p):
        reads.append(p)
        return Path(p).read_text(encoding="utf-8")

    path.write_text("一", encoding="utf-8")
    assert read_cached(str(path), reader) == read_cached(str(path), reader) == "一" and len(reads) == 1
    path.write_text("一二", encoding="utf-8")
    assert read_cached(str(path), reader) == "一二" and len(reads) == 2
