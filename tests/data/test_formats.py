import json

import pytest

from libra_train.data.formats import TARGET_OPENING, FormatConfig, render_prompt, render_target, task_views
from libra_train.errors import ConfigError
from libra_train.model import train_tokenizer
from libra_train.train.examples import build_examples
from tests.conftest import sample

REC = {**sample(1), "analyze": "回答提供了有害方法。", "category_name": "违法犯罪"}


def test_rear_front_and_label_only_targets():
    rear = render_target(REC, FormatConfig(critic="rear"))
    assert rear.startswith(TARGET_OPENING + "不安全")
    assert list(json.loads(rear)) == ["答案", "分析"]
    assert list(json.loads(render_target(REC, FormatConfig(critic="front")))) == ["分析", "答案"]
    assert json.loads(render_target(REC, FormatConfig(critic="none"))) == {"答案": "不安全"}
    # no analysis → a label-only target whatever the critic position
    assert json.loads(render_target({**REC, "analyze": ""}, FormatConfig(critic="front"))) == {
        "答案": "不安全"
    }
    assert json.loads(render_target(REC, FormatConfig(with_category=True)))["类别"] == ["违法犯罪"]


def test_rules_and_prompt_only_change_the_prompt():
    plain = render_prompt(REC, None, FormatConfig(rules=False))
    with_rules = render_prompt(REC, None, FormatConfig(rules=True))
    assert "安全规则" in with_rules and "安全规则" not in plain
    assert "【回答】" in plain
    assert "【回答】" not in render_prompt({**REC, "response": ""}, None, FormatConfig())


def test_bad_axis_values_list_the_allowed_ones():
    with pytest.raises(ConfigError, match="rear, front, none"):
        FormatConfig(critic="middle")
    with pytest.raises(ConfigError, match="response, prompt, both"):
        FormatConfig(task="all")
    with pytest.raises(ConfigError, match="format.rules.*true, false"):
        FormatConfig(rules="yes")


def test_task_views_use_the_prompt_label():
    rec = {**REC, "label": "安全", "meta": {"query_label": "不安全"}}
    both = task_views(rec, "both")
    assert [v["label"] for v in both] == ["安全", "不安全"] and both[1]["response"] == ""
    assert task_views(rec, "prompt")[0]["id"] == "1#prompt"


def test_long_samples_are_cut_on_the_conversation_side_only():
    tok = train_tokenizer(["安全 不安全 问题 回答 分析"] * 20, vocab_size=300)
    tok.chat_template = None
    fmt = FormatConfig()
    long_rec = {**REC, "response": "很长的回答内容" * 200}
    short_len = len(tok(render_prompt(REC, tok, fmt) + render_target(REC, fmt))["input_ids"]) + 1
    max_length = short_len + 40
    examples, stats = build_examples([REC, long_rec], tok, fmt, max_length=max_length)
    assert stats["truncated"] == 1 and stats["examples"] == 2
    cut = examples[1]
    assert cut["completion"] == render_target(long_rec, fmt)  # the target is whole
    assert "很长的回答内容" in cut["prompt"]  # cut, not dropped
    assert len(tok(cut["prompt"] + cut["completion"])["input_ids"]) + 1 <= max_length


def test_few_shot_examples_come_before_the_sample_with_their_targets(tmp_path):

    from tests.conftest import write_jsonl

    shots = [
        {**sample("s1", label="安全"), "question": "示例问题一", "analyze": "回答拒绝了请求。"},
        {**sample("s2"), "question": "示例问题二"},
    ]
    fmt = FormatConfig(critic="rear", few_shot_file=str(write_jsonl(tmp_path / "s.jsonl", shots)))
    prompt = render_prompt(REC, None, fmt)
    first, second, own = prompt.index("示例问题一"), prompt.index("示例问题二"), prompt.index(REC["question"])
    assert first < second < own
    assert render_target(shots[0], fmt) in prompt and render_target(shots[1], fmt) in prompt
    # A shot file is validated like any data: a bad label names the file, line and field.
    write_jsonl(tmp_path / "bad.jsonl", [{**shots[0], "label": "maybe"}])
    with pytest.raises(Exception, match=r"bad\.jsonl.*line 1.*label"):
        FormatConfig(few_shot_file=str(tmp_path / "bad.jsonl")).load_files()


def test_samples_without_analysis_train_label_only_and_are_counted():
    tokenizer = train_tokenizer(
        [render_prompt(REC, None, FormatConfig()) + render_target(REC, FormatConfig())] * 4, vocab_size=400
    )
    records = [REC, {**REC, "id": 2, "analyze": ""}, {**REC, "id": 3, "analyze": "  "}]
    examples, stats = build_examples(records, tokenizer, FormatConfig(), 512)
    assert stats["label_only_targets"] == 2 and stats["critic_targets"] == 1
    assert [json.loads(e["completion"]) for e in examples][1:] == [{"答案": "不安全"}] * 2
