import json

import pytest

from libra_train.data.io import load_records, write_records
from libra_train.errors import DataError
from tests.conftest import read_jsonl, sample, write_jsonl


def test_jsonl_json_parquet_and_folder_load_the_same_records(tmp_path):
    records = [sample(1), sample(2, label="安全")]
    write_jsonl(tmp_path / "a.jsonl", records)
    (tmp_path / "b.json").write_text(json.dumps([sample(3)], ensure_ascii=False), encoding="utf-8")
    write_records([sample(4)], tmp_path / "c.parquet")
    assert [r["id"] for r in load_records(tmp_path / "a.jsonl")] == [1, 2]
    assert load_records(tmp_path / "c.parquet")[0]["question"] == "问题4"
    assert sorted(r["id"] for r in load_records(tmp_path)) == [1, 2, 3, 4]


def test_missing_optional_fields_get_defaults(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", [{"id": "x", "question": "你好", "label": "安全"}])
    rec = load_records(tmp_path / "d.jsonl")[0]
    assert rec["response"] == "" and rec["source"] == "Unknown" and rec["analyze"] == ""


HARM = (
    '{{"id": 1, "question": "q", "response": "第一步，", "label": "{label}", '
    '"meta": {{"harm_start": {start}}}}}\n'
)


@pytest.mark.parametrize(
    "content, where, field, words",
    [
        (
            '{"id": 1, "question": "q", "label": "安全"}\n{"id": 2, "question": \n',
            "line 2",
            None,
            "malformed JSON",
        ),
        ('{"id": 1, "label": "安全"}\n', "line 1", "question", "missing"),
        ('{"id": 1, "question": "  ", "label": "安全"}\n', "line 1", "question", "non-empty"),
        ('{"id": 1, "question": "q", "label": "unsafe"}\n', "line 1", "label", "unknown label"),
        ('{"id": 1, "question": "q"}\n', "line 1", "label", "missing"),
        (
            '{"id": 1, "question": "q", "label": "安全"}\n{"id": 1, "question": "r", "label": "安全"}\n',
            "line 2",
            "id",
            "duplicate id",
        ),
        ('["not", "an", "object"]\n', "line 1", None, "JSON object"),
        ('{"question": "q", "label": "安全"}\n', "line 1", "id", "missing"),
        # a harm onset: an offset inside an unsafe response
        (HARM.format(label="不安全", start='"3"'), "line 1", "meta.harm_start", "an integer), got '3'"),
        (HARM.format(label="不安全", start="true"), "line 1", "meta.harm_start", "got True"),
        (HARM.format(label="安全", start="0"), "line 1", "meta.harm_start", "only an unsafe response"),
        (
            HARM.format(label="不安全", start="4"),
            "line 1",
            "meta.harm_start",
            "4 is outside the response (0 to 3)",
        ),
        (HARM.format(label="不安全", start="-1"), "line 1", "meta.harm_start", "outside the response"),
    ],
)
def test_bad_records_name_file_line_and_field(tmp_path, content, where, field, words):
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_records(path)
    message = str(err.value)
    assert str(path) in message and where in message and words in message
    if field:
        assert f"field '{field}'" in message


def test_empty_file_wrong_path_and_empty_folder(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="empty file"):
        load_records(tmp_path / "empty.jsonl")
    with pytest.raises(DataError, match="no such file"):
        load_records(tmp_path / "nope.jsonl")
    (tmp_path / "folder").mkdir()
    with pytest.raises(DataError, match="no data files"):
        load_records(tmp_path / "folder")


def test_malformed_parquet_and_json_array(tmp_path):
    (tmp_path / "x.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="unreadable Parquet"):
        load_records(tmp_path / "x.parquet")
    (tmp_path / "y.json").write_text('{"a": 1}', encoding="utf-8")
    with pytest.raises(DataError, match="list of records"):
        load_records(tmp_path / "y.json")


def test_skip_mode_reports_every_rejected_row(tmp_path):
    path = write_jsonl(
        tmp_path / "mixed.jsonl", [sample(1), {"id": 2, "question": "q", "label": "?"}, sample(3)]
    )
    rejected_path = tmp_path / "rejected.jsonl"
    good = load_records(path, on_invalid="skip", rejected_path=rejected_path)
    assert [r["id"] for r in good] == [1, 3]
    rejected = read_jsonl(rejected_path)
    assert len(rejected) == 1 and rejected[0]["where"] == "line 2" and "unknown label" in rejected[0]["error"]


def test_writes_are_atomic_and_round_trip(tmp_path):
    records = [sample(i) for i in range(5)]
    write_records(records, tmp_path / "out.jsonl")
    write_records(records, tmp_path / "out.parquet")
    assert load_records(tmp_path / "out.jsonl") == load_records(tmp_path / "out.parquet")
    assert not list(tmp_path.glob(".*tmp"))


def test_a_file_is_hashed_once_while_unchanged_and_again_when_it_changes(tmp_path, monkeypatch):
    import builtins
    import hashlib
    import os

    from libra_train.data.io import file_sha256

    path = tmp_path / "stage1.jsonl"
    path.write_bytes(b'{"id": 1}\n')
    reads = []
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda f, *a, **k: reads.append(str(f)) or real_open(f, *a, **k))
    first = file_sha256(path)
    assert file_sha256(str(path)) == first == hashlib.sha256(b'{"id": 1}\n').hexdigest()
    assert reads.count(str(path)) == 1  # the manifest and W&B's artifact share one read
    path.write_bytes(b'{"id": 2}\n')
    os.utime(path, ns=(1, 1))  # a rewrite shows in size or mtime; forced here, same size
    assert file_sha256(path) == hashlib.sha256(b'{"id": 2}\n').hexdigest() != first


def test_a_hub_data_set_is_loaded_once_per_process(monkeypatch):
    import datasets

    from libra_train.data.io import read_raw

    loads = []

    def fake_load(repo, split):
        loads.append((repo, split))
        return [{"id": 1, "question": "问题", "label": "安全"}, {"id": 2, "question": "问题二"}]

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    first = read_raw("hub:someone/once-only:dev")
    second = read_raw("hub:someone/once-only:dev")  # the reachability check, then an evaluation
    assert loads == [("someone/once-only", "dev")]
    assert [(i.record["id"], i.path, i.where) for i in second] == [
        (1, "hub:someone/once-only:dev", "row 1"),
        (2, "hub:someone/once-only:dev", "row 2"),
    ]
    assert first == second and first is not second  # each caller gets its own list


def test_a_harm_onset_inside_an_unsafe_response_is_kept(tmp_path):
    path = tmp_path / "onset.jsonl"
    path.write_text(
        HARM.format(label="不安全", start="3")
        + HARM.replace('"id": 1', '"id": 2').format(label="不安全", start="null"),
        encoding="utf-8",
    )
    first, second = load_records(path)
    assert first["meta"]["harm_start"] == 3 and second["meta"]["harm_start"] is None
