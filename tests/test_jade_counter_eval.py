"""benchmarks/jade_counter_eval.py: the sets it scores, built from hand-made JADE test pairs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from libra_train.data.refusal import refusal_opening
from libra_train.data.schema import SAFE, UNSAFE

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "jade_counter_eval.py"
spec = importlib.util.spec_from_file_location("jade_counter_eval", SCRIPT)
jade_counter_eval = importlib.util.module_from_spec(spec)
spec.loader.exec_module(jade_counter_eval)


def _pair(pair: str) -> list[dict]:
    base = {"source": "JADE", "question": f"问题{pair}", "analyze": "", "meta": {"pair": pair}}
    return [
        {**base, "id": f"{pair}-unsafe", "response": f"有害{pair}", "label": UNSAFE},
        {**base, "id": f"{pair}-safe", "response": f"抱歉，我不能回答{pair}", "label": SAFE},
    ]


def test_the_written_set_pairs_each_written_answer_with_its_own_unsafe_answer():
    test = _pair("1") + _pair("2") + _pair("3")
    written = [{"pair": "2", "response": "合法的建议"}, {"pair": "9", "response": "不在测试集里"}]
    rows = jade_counter_eval.written_set(test, written)
    assert [(r["id"], r["label"], r["response"]) for r in rows] == [
        ("2-unsafe", UNSAFE, "有害2"),
        ("2-written", SAFE, "合法的建议"),
    ]
    assert rows[1]["question"] == "问题2"
    assert rows[1]["meta"] == {"pair": "2", "refusal": False}  # helpful, whatever its opening says


def test_a_split_without_a_written_pair_has_no_written_set():
    sets = jade_counter_eval.counter_sets(_pair("1"), [{"pair": "7", "response": "建议"}])
    assert "written" not in sets
    sets = jade_counter_eval.counter_sets(_pair("1"), [{"pair": "1", "response": "建议"}])
    assert [r["id"] for r in sets["written"]] == ["1-unsafe", "1-written"]


def test_the_committed_answers_are_long_distinct_and_mostly_open_with_a_warning():
    rows = jade_counter_eval.load_written(jade_counter_eval.WRITTEN)
    assert len(rows) == 60 and len({r["pair"] for r in rows}) == 60
    assert min(len(r["response"]) for r in rows) >= 200
    # the held-out set: the refusal-opening rule passes most of its safe answers, not all
    openings = sum(refusal_opening(r["response"]) for r in rows)
    assert 0.7 <= openings / len(rows) <= 0.9
    assert all(1 <= int(r["pair"]) <= 500 for r in rows)  # JADE medium's question ids


def test_the_dev_answers_are_for_other_questions_than_the_test_answers():
    test = {r["pair"] for r in jade_counter_eval.load_written(jade_counter_eval.WRITTEN)}
    dev = jade_counter_eval.load_written(jade_counter_eval.WRITTEN_DEV)
    assert len(dev) == 30 and len({r["pair"] for r in dev}) == 30
    assert not {r["pair"] for r in dev} & test  # one question's answer is never both chosen on and scored
