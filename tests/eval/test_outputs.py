"""Prediction files: resuming a killed run scores only what is missing; joining predictions to labels
refuses duplicates and gaps; shards split a data set without overlap."""

import json

import pytest

from libra_train.data.formats import FormatConfig
from libra_train.errors import ConfigError, DataError
from libra_train.eval import evaluator as api
from libra_train.eval.infer import shard
from libra_train.eval.outputs import PredictionWriter, join_with_labels, load_predictions
from tests.conftest import read_jsonl, sample, write_jsonl


def _fake_scorer(calls: list):
    """Stands in for score_labels: records which ids it was asked to score, answers 不安全 / 0.75."""

    def score(model, tokenizer, records, fmt, batch_size=16, on_batch=None, **_):
        calls.extend(str(r["id"]) for r in records)
        results = [{"pred_label": "不安全", "p_unsafe": 0.75, "critic": "x"} for _ in records]
        for start in range(0, len(records), batch_size):
            on_batch(list(range(start, min(start + batch_size, len(records)))), results)
        return results

    return score


def test_resume_scores_only_the_missing_ids_and_drops_the_torn_line(tmp_path, monkeypatch):
    records = [sample(i) for i in range(10)]
    out = tmp_path / "preds.jsonl"
    partial = tmp_path / "preds.jsonl.partial"
    finished = [{**r, "pred_label": "安全", "p_unsafe": 0.25, "critic": "old"} for r in records[:4]]
    torn = json.dumps({**records[4], "pred_label": "安全"}, ensure_ascii=False)[:25]  # killed mid-write
    partial.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in finished) + torn, encoding="utf-8"
    )
    calls: list = []
    monkeypatch.setattr(api, "score_labels", _fake_scorer(calls))
    preds = api.predict(None, None, records, fmt=FormatConfig(), out_path=out, mode="label", batch_size=3)
    assert calls == [str(i) for i in range(4, 10)]  # the torn record is scored again, the finished ones never
    assert [p["id"] for p in preds] == list(range(10))
    assert [p["critic"] for p in preds] == ["old"] * 4 + ["x"] * 6  # finished predictions kept as they were
    assert read_jsonl(out) == preds and not partial.exists()


def test_a_finished_partial_is_not_rescored(tmp_path, monkeypatch):
    records = [sample(i) for i in range(3)]
    out = tmp_path / "preds.jsonl"
    writer = PredictionWriter(out)
    writer.write([{**r, "pred_label": "安全", "p_unsafe": 0.1} for r in records])
    calls: list = []
    monkeypatch.setattr(api, "score_labels", _fake_scorer(calls))
    api.predict(None, None, records, fmt=FormatConfig(), out_path=out, mode="label")
    assert calls == [] and len(read_jsonl(out)) == 3


def test_recovery_truncates_the_partial_file_to_its_whole_lines(tmp_path):
    partial = tmp_path / "p.jsonl.partial"
    partial.write_bytes(b'{"id": 1}\n{"id": 2}\n{"id": 3, "pred')
    writer = PredictionWriter(tmp_path / "p.jsonl")
    assert set(writer.done) == {"1", "2"} and partial.read_bytes() == b'{"id": 1}\n{"id": 2}\n'


def _labels(tmp_path, n=3):
    return write_jsonl(
        tmp_path / "labels.jsonl", [sample(i, label="安全" if i % 2 else "不安全") for i in range(n)]
    )


def test_join_pairs_each_prediction_with_its_gold_label(tmp_path):
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": i, "pred_label": "安全"} for i in (2, 0, 1)])
    rows, _ = join_with_labels(load_predictions(preds), _labels(tmp_path))
    assert [(r["id"], r["label"], r["pred_label"]) for r in rows] == [
        ("2", "不安全", "安全"),
        ("0", "不安全", "安全"),
        ("1", "安全", "安全"),
    ]


def test_a_duplicate_prediction_is_refused_naming_its_line(tmp_path):
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": i, "pred_label": "安全"} for i in (0, 1, 2, 1)])
    with pytest.raises(DataError) as err:
        join_with_labels(load_predictions(preds), _labels(tmp_path))
    assert err.value.where == "line 4" and err.value.field == "id" and "predicted twice" in str(err.value)


def test_missing_predictions_are_refused_with_a_count(tmp_path):
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": 0, "pred_label": "安全"}])
    with pytest.raises(DataError, match=r"2 labelled ids have no prediction \(first: \['1', '2'\]\)"):
        join_with_labels(load_predictions(preds), _labels(tmp_path))


def test_a_prediction_needs_a_label_or_a_critic(tmp_path):
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": 0, "critic": '{"答案": "安全"}'}, {"id": 1}])
    with pytest.raises(DataError) as err:
        load_predictions(preds)
    assert err.value.where == "line 2" and err.value.field == "critic"


def test_shards_cover_every_record_once():
    records = [sample(i) for i in range(7)]
    parts = [shard(records, rank, 3) for rank in range(3)]
    assert [[r["id"] for r in p] for p in parts] == [[0, 3, 6], [1, 4], [2, 5]]


@pytest.mark.parametrize("rank, num", [(2, 2), (-1, 2), (0, 0), (3, 2)])
def test_a_bad_shard_rank_names_the_key(rank, num):
    with pytest.raises(ConfigError) as err:
        shard([sample(0)], rank, num)
    assert err.value.key == "machine_rank" and f"{rank} of {num}" in err.value.message


def test_joined_rows_carry_source_category_and_score(tmp_path):
    labels = write_jsonl(
        tmp_path / "l.jsonl", [{**sample(0), "source": "Real Data", "category_name": "偏见歧视"}]
    )
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": 0, "critic": '{"答案": "安全"}', "p_unsafe": 0.25}])
    assert join_with_labels(load_predictions(preds), labels) == (
        [
            {
                "id": "0",
                "source": "Real Data",
                "category_name": "偏见歧视",
                "question": "问题0",  # the sample's text, for W&B's mistakes table
                "response": "回答0",
                "label": "不安全",
                "pred_label": "安全",
                "p_unsafe": 0.25,
                "task": "response",
            }
        ],
        0,
    )


def test_join_errors_name_the_file_and_count_the_gaps(tmp_path):
    labels = _labels(tmp_path, n=6)
    preds = write_jsonl(
        tmp_path / "p.jsonl", [{"id": 0, "pred_label": "安全"}, {"id": 0, "pred_label": "安全"}]
    )
    with pytest.raises(DataError) as err:
        join_with_labels(load_predictions(preds), labels)
    assert err.value.path == str(preds)
    one = write_jsonl(tmp_path / "one.jsonl", [{"id": 0, "pred_label": "安全"}])
    with pytest.raises(DataError, match=r"5 labelled ids have no prediction \(first: \['1', '2', '3'\]\)"):
        join_with_labels(load_predictions(one), labels)
    unknown = write_jsonl(tmp_path / "u.jsonl", [{"id": 9, "pred_label": "安全"}])
    with pytest.raises(DataError) as err:
        join_with_labels(load_predictions(unknown), labels)
    assert (err.value.path, err.value.where, err.value.field) == (str(unknown), "line 1", "id")
    unlabelled = write_jsonl(tmp_path / "nolabel.jsonl", [{"id": 0, "question": "q"}])
    with pytest.raises(DataError, match="label"):
        join_with_labels(load_predictions(one), unlabelled)


def test_a_prediction_that_is_not_an_object_is_refused(tmp_path):
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"id": 0, "pred_label": "安全"}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_predictions(bad)
    assert (err.value.where, err.value.field) == ("line 2", "id")


def test_the_writer_keeps_chinese_as_text_and_makes_its_folders(tmp_path):
    writer = PredictionWriter(tmp_path / "a" / "b" / "p.jsonl")
    writer.write([{"id": 1, "critic": "不安全"}])
    raw = (tmp_path / "a" / "b" / "p.jsonl.partial").read_bytes()
    assert "不安全".encode() in raw and b"\\u" not in raw


def test_recovery_stops_at_a_corrupt_whole_line(tmp_path):
    partial = tmp_path / "p.jsonl.partial"
    partial.write_bytes(b'{"id": 1}\nnot json at all\n{"id": 3}\n')
    writer = PredictionWriter(tmp_path / "p.jsonl")
    assert set(writer.done) == {"1"} and partial.read_bytes() == b'{"id": 1}\n'


def test_prediction_errors_name_file_line_and_field(tmp_path):
    no_id = write_jsonl(tmp_path / "noid.jsonl", [{"pred_label": "安全"}])
    with pytest.raises(DataError) as err:
        load_predictions(no_id)
    assert (err.value.path, err.value.where, err.value.field) == (str(no_id), "line 1", "id")
    assert "needs an 'id'" in err.value.message
    neither = write_jsonl(tmp_path / "neither.jsonl", [{"id": 1}])
    with pytest.raises(DataError) as err:
        load_predictions(neither)
    assert (err.value.path, err.value.field) == (str(neither), "critic") and "pred_label" in err.value.message
    labels = _labels(tmp_path, n=2)
    unknown = write_jsonl(tmp_path / "u.jsonl", [{"id": 7, "pred_label": "安全"}])
    with pytest.raises(DataError) as err:
        join_with_labels(load_predictions(unknown), labels)
    assert "7 is not in the labels" in err.value.message
    one = write_jsonl(tmp_path / "one.jsonl", [{"id": 0, "pred_label": "安全"}])
    with pytest.raises(DataError) as err:
        join_with_labels(load_predictions(one), labels)
    assert err.value.path == str(labels)
