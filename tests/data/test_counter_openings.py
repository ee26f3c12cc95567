import pytest

from libra_train.data.counter_openings import (
    MIN_REST,
    _cut_to,
    counterparts,
    helpful_rest,
    sentences,
    split_refusal,
)
from libra_train.data.refusal import refusal_opening
from libra_train.errors import ConfigError
from libra_train.steps import load_stage_records
from tests.conftest import jade_pair, jade_recipe_ids, run_config, write_jsonl

REFUSAL = "很抱歉，作为AI助手，我不能协助您追踪他人的IP地址。"
ADVICE = (
    "根据现有的法律法规，未经对方同意擅自追踪他人的网络活动会侵犯隐私。建议您通过平台的举报机制解决分歧。"
)
STEPS = "可以使用在线工具查询对方的IP地址。然后用代理服务器访问该网站。再对照访问日志找到此人的住址。"


def test_sentences_join_back_into_the_text():
    text = "第一句。第二句！\n\n第三句？没有句号"
    assert sentences(text) == ["第一句。", "第二句！\n\n", "第三句？", "没有句号"]
    assert "".join(sentences(text)) == text


def test_the_refusal_opening_is_every_leading_sentence_with_a_refusal_phrase():
    assert split_refusal(REFUSAL + "请注意，这样做是违法的。" + ADVICE) == (
        REFUSAL + "请注意，这样做是违法的。",
        ADVICE,
    )
    assert split_refusal(ADVICE + REFUSAL) == ("", ADVICE + REFUSAL)  # a refusal later on is not an opening


def test_a_pair_gives_a_helpful_safe_answer_and_a_refusal_that_complies_of_its_length():
    made = counterparts(jade_pair("7", REFUSAL + ADVICE, STEPS))
    helpful, complying = made
    assert helpful["id"] == "7-safe~helpful" and helpful["label"] == "安全"
    assert helpful["response"] == ADVICE and not refusal_opening(helpful["response"])
    assert helpful["meta"] == {"pair": "7", "counterpart_of": "7-safe", "refusal": False}
    assert complying["id"] == "7-unsafe~refusal_opening" and complying["label"] == "不安全"
    # the refusal, then as many of the unsafe answer's sentences as keep it within the helpful rest's length
    assert len(ADVICE) - len(REFUSAL) == 23  # room for the first of STEPS' sentences (18), not two (32)
    assert complying["response"] == REFUSAL + "可以使用在线工具查询对方的IP地址。"
    assert complying["meta"] == {"pair": "7", "counterpart_of": "7-unsafe", "harm_start": len(REFUSAL)}
    assert complying["response"][len(REFUSAL) :].startswith("可以使用")


def test_pairs_that_cannot_give_a_counterpart_give_none():
    assert counterparts(jade_pair("1", ADVICE, STEPS)) == []  # the safe answer does not refuse
    # only a sign-off follows the refusal: no helpful answer, but the refusal that complies still is one
    made = counterparts(jade_pair("2", REFUSAL + "谢谢。", STEPS))
    assert [r["id"] for r in made] == ["2-unsafe~refusal_opening"]
    assert made[0]["response"] == REFUSAL + "可以使用在线工具查询对方的IP地址。"  # at least one sentence
    made = counterparts(jade_pair("3", REFUSAL + ADVICE, "抱歉，不过" + STEPS))  # it already opens with one
    assert [r["id"] for r in made] == ["3-safe~helpful"]
    unpaired = [{**r, "meta": {}} for r in jade_pair("4", REFUSAL + ADVICE, STEPS)]
    assert counterparts(unpaired) == []
    assert [r["id"] for r in counterparts(jade_pair("9", REFUSAL + ADVICE, STEPS), unsafe=False)] == [
        "9-safe~helpful"
    ]


def test_a_pair_that_gives_nothing_does_not_stop_the_pairs_after_it():
    made = counterparts(jade_pair("1", ADVICE, STEPS) + jade_pair("7", REFUSAL + ADVICE, STEPS))
    assert [r["id"] for r in made] == ["7-safe~helpful", "7-unsafe~refusal_opening"]


def test_a_helpful_rest_is_at_least_min_rest_long_and_opens_with_no_refusal():
    rest = "好" * (MIN_REST - 1) + "。"
    assert helpful_rest(REFUSAL, rest) == rest and helpful_rest(REFUSAL, rest[1:]) is None
    assert helpful_rest("", ADVICE) is None  # no refusal opening, nothing to take away
    # its first sentence holds no refusal phrase, but the next one, still in the opening, does
    assert helpful_rest(REFUSAL, "好的。我不能告诉你具体方法，" + ADVICE) is None


def test_the_unsafe_counterpart_keeps_every_leading_sentence_that_fits():
    text = "一二三。四五六。七八九。"
    assert _cut_to(text, 8) == "一二三。四五六。"  # two sentences fill 8 characters exactly
    assert _cut_to(text, 7) == "一二三。" and _cut_to(text, 1) == "一二三。"  # at least the first
    assert _cut_to(text, 99) == text


def test_a_stage_loads_the_counterparts_beside_its_records_only_where_asked(tmp_path):
    pairs = jade_pair("7", REFUSAL + ADVICE, STEPS) + jade_pair("8", ADVICE, STEPS)
    path = write_jsonl(tmp_path / "pairs.jsonl", pairs)
    loaded = {}
    for kind in ("none", "helpful", "both"):
        run = run_config(tmp_path, f"data.stage2.path={path}", f"+data.stage2.counter_openings={kind}")
        stage2 = next(s for s in run.stages if "stage2" in s.data)
        loaded[kind] = [r["id"] for r in load_stage_records(run, stage2)]
    originals = ["7-unsafe", "7-safe", "8-unsafe", "8-safe"]
    assert loaded == {
        "none": originals,
        "helpful": [*originals, "7-safe~helpful"],
        "both": [*originals, "7-safe~helpful", "7-unsafe~refusal_opening"],
    }
    assert len(load_stage_records(run_config(tmp_path, f"data.stage2.path={path}"), stage2)) == 4


def test_the_key_names_its_kinds_only(tmp_path):
    with pytest.raises(ConfigError, match="data.stage2.counter_openings"):
        run_config(tmp_path, "+data.stage2.counter_openings=true")


def test_the_jade_recipe_adds_helpful_counterparts_to_jade_train_in_stage_2_only(tmp_path):
    first, second = jade_recipe_ids(tmp_path, jade_pair("7", REFUSAL + ADVICE, STEPS))
    assert first == ["7-unsafe", "7-safe"]
    # JADE train with its helpful counterpart (and the answer written for JADE's question 7,
    # data/written_answers.py); the synthetic replay (here the same file) without either
    assert second == ["7-unsafe", "7-safe", "7-safe~helpful", "7-written", "7-unsafe", "7-safe"]
