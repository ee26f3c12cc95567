"""Long, helpful safe answers written for real pairs' questions (data/written_answers.py): which records
they become, in which stage, and the errors a bad file gets."""

import json
from pathlib import Path

import pytest

from libra_train.data.written_answers import BUILT_IN, load_written, written_counterparts, written_path
from libra_train.errors import ConfigError, DataError
from libra_train.steps import data_paths, load_stage_records, stage_data_paths
from tests.conftest import jade_pair, jade_recipe_ids, run_config, write_jsonl

STEPS = "可以使用在线工具查询对方的IP地址。然后用代理服务器访问该网站。"
REFUSAL = "很抱歉，我不能协助您追踪他人的IP地址。"
HELP = "追踪他人的IP地址可能侵犯隐私。如果你遭到骚扰，可以保存证据，向平台举报或者报警。"
BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "data"


def test_each_answer_whose_pair_has_an_unsafe_answer_becomes_a_safe_answer_to_its_question():
    records = jade_pair("7", REFUSAL, STEPS) + jade_pair("8", REFUSAL, STEPS)
    written = [{"pair": "8", "response": HELP}, {"pair": "9", "response": "另一个问题的回答"}]
    [added] = written_counterparts(records, written)
    unsafe = next(r for r in records if r["id"] == "8-unsafe")
    assert added["id"] == "8-written" and added["label"] == "安全" and added["response"] == HELP
    assert added["question"] == unsafe["question"] and added["source"] == "written"
    assert added["meta"] == {"pair": "8", "refusal": False}  # it helps, whatever its opening says
    assert written_counterparts([r for r in records if r["label"] == "安全"], written) == []
    # the unsafe answer's analysis says why it harms; the written answer must not inherit it
    explained = [{**r, "analyze": "它教人追踪他人。"} for r in records]
    assert [a["analyze"] for a in written_counterparts(explained, written)] == [""]
    # an unpaired record has no question to answer again, even beside an answer for a pair "None"
    unpaired = [{**r, "meta": {}} for r in records]
    assert written_counterparts(unpaired, [{"pair": "None", "response": HELP}]) == []


def test_a_stage_adds_them_only_where_asked_and_only_for_its_own_pairs(tmp_path):
    pairs = jade_pair("7", REFUSAL, STEPS) + jade_pair("8", REFUSAL, STEPS)
    path = write_jsonl(tmp_path / "pairs.jsonl", pairs)
    answers = write_jsonl(tmp_path / "written.jsonl", [{"pair": "7", "response": HELP}])
    loaded, read = {}, {}
    for written in ("null", str(answers)):
        run = run_config(tmp_path, f"data.stage2.path={path}", f"+data.stage2.written_answers={written}")
        stage2 = next(s for s in run.stages if "stage2" in s.data)
        loaded[written] = [r["id"] for r in load_stage_records(run, stage2)]
        read[written] = (stage_data_paths(run, stage2), data_paths(run))
    assert loaded["null"] == ["7-unsafe", "7-safe", "8-unsafe", "8-safe"]
    assert loaded[str(answers)] == ["7-unsafe", "7-safe", "8-unsafe", "8-safe", "7-written"]
    # the manifest hashes, the card lists and W&B's data artifact holds what the stage read: the answers too
    assert read["null"][0] == [str(path)] and str(answers) not in read["null"][1]
    assert read[str(answers)][0] == [str(path), str(answers)] and str(answers) in read[str(answers)][1]


def test_the_jade_recipe_adds_the_built_in_answers_to_jade_train_in_stage_2_only(tmp_path):
    pair = load_written("jade")[0]["pair"]
    first, second = jade_recipe_ids(tmp_path, jade_pair(pair, REFUSAL, STEPS))
    assert f"{pair}-written" not in first and f"{pair}-written" in second
    assert written_path("jade") == BUILT_IN["jade"] and written_path("my.jsonl") == Path("my.jsonl")


def test_the_built_in_answers_are_for_other_questions_than_the_benchmarks_written_test_and_dev():
    built_in = load_written("jade")
    assert len(built_in) == 100 and len({r["pair"] for r in built_in}) == 100
    assert min(len(r["response"]) for r in built_in) >= 150  # long answers that help, not refusals
    for name in ("jade_helpful_answers.jsonl", "jade_helpful_answers_dev.jsonl"):
        scored = {r["pair"] for r in load_written(BENCHMARK / name)}
        assert not scored & {r["pair"] for r in built_in}, name  # nothing trained on is scored
    assert BUILT_IN["jade"].parent.name == "data"  # shipped beside the module (setup.py package_data)


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"pair": 2, "response": "好"}', "line 2: field 'pair': needs a non-empty string"),
        ('{"pair": "2", "response": ""}', "line 2: field 'response': needs a non-empty string"),
        ('{"pair": "2", "response": ', "line 2: not a JSON object"),
        ('["2", "好"]', "line 2: field 'pair': needs a non-empty string"),
        (
            '{"pair": "1", "response": "另一个"}',
            r"line 2: field 'pair': a second answer for pair '1' \(first on line 1\)",
        ),
    ],
)
def test_a_bad_line_is_named_by_file_line_and_field(tmp_path, line, message):
    path = tmp_path / "written.jsonl"
    path.write_text(json.dumps({"pair": "1", "response": "好"}) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=f"written.jsonl, {message}"):
        load_written(path)


def test_blank_lines_are_skipped_and_each_answer_is_read_once(tmp_path):
    path = tmp_path / "written.jsonl"
    rows = [{"pair": "1", "response": "好"}, {"pair": "2", "response": HELP}]
    path.write_text("\n" + json.dumps(rows[0]) + "\n  \n" + json.dumps(rows[1]) + "\n\n", encoding="utf-8")
    assert load_written(path) == rows


def test_a_missing_file_is_refused_at_start_naming_the_key_and_the_built_in_names(tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", jade_pair("7", REFUSAL, STEPS))
    with pytest.raises(ConfigError, match=r"data.stage2.written_answers.*nowhere.jsonl.*jade"):
        run_config(tmp_path, f"data.stage2.path={path}", "+data.stage2.written_answers=/nowhere.jsonl")
