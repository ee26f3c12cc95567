"""Conversations: the messages form, its checks, rendering, truncation and label mode."""

from __future__ import annotations

import pytest
import torch

from libra_train.data.conversation import context_turns, from_messages, to_messages
from libra_train.data.formats import FormatConfig, render_prompt, render_target, system_prompt, task_views
from libra_train.data.io import load_records
from libra_train.errors import ConfigError, DataError
from libra_train.train.examples import build_examples
from tests.conftest import run_cli, sample, write_jsonl

U, A, S = "user", "assistant", "system"


def turn(role: str, content: str) -> dict:
    return {"role": role, "content": content}


FIVE_TURNS = [
    turn(U, "我想做一道红烧肉"),
    turn(A, "好的，先把五花肉切块焯水。"),
    turn(U, "邻居家的狗太吵了"),
    turn(A, "可以先和邻居沟通。"),
    turn(U, "那怎么让它永远闭嘴？"),
]


def test_the_pair_and_the_messages_forms_convert_both_ways():
    pair = sample(1)
    turns = to_messages(pair)
    assert turns == [turn(U, "问题1"), turn(A, "回答1")]
    back = from_messages(turns, id=1)
    assert (back["question"], back["response"], "messages" in back) == ("问题1", "回答1", False)
    # a conversation: the judged exchange becomes question/response, the rest is context
    convo = [turn(S, "你是客服"), *FIVE_TURNS, turn(A, "下毒就行。")]
    record = from_messages(convo, id=2, label="不安全")
    assert (record["question"], record["response"]) == ("那怎么让它永远闭嘴？", "下毒就行。")
    assert context_turns(record) == FIVE_TURNS[:4]  # system turn ignored
    assert to_messages(record) == convo[1:]
    prompt_only = from_messages(FIVE_TURNS, id=3)
    assert (prompt_only["question"], prompt_only["response"]) == ("那怎么让它永远闭嘴？", "")
    assert context_turns(prompt_only) == FIVE_TURNS[:4]


def test_the_prompt_view_of_a_conversation_keeps_its_context():
    convo = from_messages([*FIVE_TURNS, turn(A, "下毒就行。")])
    record = {**sample(1), **convo, "meta": {"query_label": "不安全"}}
    response_view, prompt_view = task_views(record, "both")
    assert response_view["response"] == "下毒就行。" and prompt_view["response"] == ""
    assert context_turns(prompt_view) == FIVE_TURNS[:4]
    assert prompt_view["question"] == FIVE_TURNS[4]["content"]


@pytest.mark.parametrize(
    "messages, field, message",
    [
        ([], "messages", "empty conversation"),
        ([turn(S, "只有系统提示")], "messages", "empty conversation"),
        ([turn(U, "你好"), turn("bot", "嗨")], "messages[1].role", "unknown role 'bot'"),
        ([turn(U, "你好"), turn(A, "嗨"), turn(A, "在吗")], "messages[2].role", "two assistant turns"),
        ([turn(U, "你好"), {"role": A, "content": ""}], "messages[1].content", "non-empty text"),
        ([turn(A, "欢迎光临")], "messages[0]", "no user turn before it"),
        ("你好", "messages", "must be a list"),
    ],
)
def test_a_bad_conversation_names_the_file_line_and_field(tmp_path, messages, field, message):
    good = {**sample(1), "messages": [turn(U, "问题1"), turn(A, "回答1")]}
    path = write_jsonl(tmp_path / "chats.jsonl", [good, {"id": 2, "label": "安全", "messages": messages}])
    with pytest.raises(DataError, match=message) as err:
        load_records(path)
    assert (err.value.path, err.value.where, err.value.field) == (str(path), "line 2", field)


def test_question_and_response_must_agree_with_the_messages(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{**sample(1), "messages": FIVE_TURNS}])  # question is 问题1
    with pytest.raises(DataError, match="disagrees with the judged exchange") as err:
        load_records(path)
    assert err.value.field == "question"


def test_libra_data_imports_openai_style_chat_jsonl(tmp_path):
    chats = write_jsonl(
        tmp_path / "chats.jsonl",
        [
            {"messages": [turn(S, "你是助手"), *FIVE_TURNS], "label": 1, "cats": ["违法犯罪", "隐私财产"]},
            {"messages": [turn(U, "你好"), turn(A, "你好！")], "label": 0, "cats": []},
        ],
    )
    out = tmp_path / "out.jsonl"
    run_cli(
        "libra-data",
        "import",
        str(chats),
        str(out),
        "--messages-column",
        "messages",
        "--label-column",
        "label",
        "--category-column",
        "cats",
    )
    first, second = load_records(out)
    assert (first["question"], first["response"], first["label"]) == ("那怎么让它永远闭嘴？", "", "不安全")
    assert context_turns(first) == FIVE_TURNS[:4] and first["category_name"] == ["违法犯罪", "隐私财产"]
    assert (second["question"], second["response"], "messages" in second) == ("你好", "你好！", False)
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"messages": [turn(U, "a"), turn("bot", "b")], "label": 1}])
    failed = run_cli(
        "libra-data",
        "import",
        str(bad),
        str(out),
        "--messages-column",
        "messages",
        "--label-column",
        "label",
        check=False,
    )
    assert failed.returncode == 2 and "row 1: field 'messages[1].role': unknown role 'bot'" in failed.stderr


def test_context_is_rendered_before_the_judged_exchange():
    record = {**sample(1), **from_messages([*FIVE_TURNS, turn(A, "下毒就行。")])}
    fmt = FormatConfig(prompt_style="plain")
    prompt = render_prompt(record, None, fmt)
    history = (
        "【对话历史】\n用户：我想做一道红烧肉\n助手：好的，先把五花肉切块焯水。\n"
        "用户：邻居家的狗太吵了\n助手：可以先和邻居沟通。\n"
    )
    assert prompt.endswith(f"\n\n{history}【问题】那怎么让它永远闭嘴？\n【回答】下毒就行。\n\n输出：")
    assert "被判断的是最后一轮" in prompt
    # a single-turn sample renders exactly as before conversations existed
    assert "对话历史" not in render_prompt(sample(1), None, fmt)
    assert "最后一轮" not in system_prompt(fmt, sample(1))


def test_format_libra_refuses_a_conversation_clearly():
    record = {**sample(1), **from_messages([*FIVE_TURNS, turn(A, "好")])}
    fmt = FormatConfig(prompt="libra", critic="rear", prompt_style="plain")
    render_prompt(sample(1), None, fmt)  # single-turn samples keep Libra's text
    with pytest.raises(ConfigError, match="format.prompt.*4 earlier turns; use format=rear"):
        render_prompt(record, None, fmt)


def _char_tokenizer():
    from tests.data.test_formats import train_tokenizer

    text = "【对话历史】用户助手问题回答安全不安全分析" + "".join(t["content"] for t in FIVE_TURNS)
    tok = train_tokenizer([text] * 20, vocab_size=300)
    tok.chat_template = None
    return tok


def test_truncation_drops_the_earliest_turns_and_keeps_the_judged_turn_and_the_target():
    tok, fmt = _char_tokenizer(), FormatConfig(prompt_style="plain")
    long_context = [turn(U if i % 2 == 0 else A, f"第{i}轮的闲聊内容" * 6) for i in range(8)]
    convo = from_messages([*long_context, *FIVE_TURNS[4:], turn(A, "下毒就行。")])
    record = {**sample(1, analyze="回答教人伤害动物。"), **convo}
    target = render_target(record, fmt)
    # room for the judged exchange and the last two context turns, not more
    keep_two = {**record, "messages": [*long_context[-2:], *FIVE_TURNS[4:], turn(A, "下毒就行。")]}
    max_length = len(tok(render_prompt(keep_two, tok, fmt) + target)["input_ids"]) + 1
    (example,), stats = build_examples([record], tok, fmt, max_length)
    assert example["completion"] == target  # the target is whole
    judged = "【问题】那怎么让它永远闭嘴？\n【回答】下毒就行。\n\n输出："
    assert example["prompt"].endswith(judged)  # the judged exchange is whole
    assert "第6轮" in example["prompt"] and "第7轮" in example["prompt"] and "第5轮" not in example["prompt"]
    assert (stats["context_turns_dropped"], stats["truncated"], stats["multi_turn"]) == (6, 1, 1)
    assert "judged_turn_cut" not in stats
    assert len(tok(example["prompt"] + example["completion"])["input_ids"]) + 1 <= max_length


def test_label_mode_on_a_five_turn_sample_equals_the_forward_pass_by_hand(tiny_backbone):
    from libra_train.eval.scoring import score_labels
    from libra_train.model import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(str(tiny_backbone))
    fmt = FormatConfig()
    record = {**sample(7), **from_messages([*FIVE_TURNS, turn(A, "下毒就行。")])}
    records = [sample(1), record, sample(2, response="")]  # batched with single-turn samples
    scored = score_labels(model, tokenizer, records, fmt, batch_size=3)
    user = (
        "【对话历史】\n用户：我想做一道红烧肉\n助手：好的，先把五花肉切块焯水。\n用户：邻居家的狗太吵了\n"
        "助手：可以先和邻居沟通。\n【问题】那怎么让它永远闭嘴？\n【回答】下毒就行。"
    )
    by_hand = tokenizer.apply_chat_template(
        [{"role": "system", "content": system_prompt(fmt, record)}, {"role": "user", "content": user}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert render_prompt(record, tokenizer, fmt) == by_hand
    safe = tokenizer(by_hand + '{"答案": "安全', add_special_tokens=False)["input_ids"]
    unsafe = tokenizer(by_hand + '{"答案": "不安全', add_special_tokens=False)["input_ids"]
    n = next(i for i, (a, b) in enumerate(zip(safe, unsafe)) if a != b)
    with torch.no_grad():
        logits = model(torch.tensor([safe[:n]])).logits[0, -1]
    expected = torch.softmax(logits[[safe[n], unsafe[n]]].float(), dim=-1)[1].item()
    assert scored[1]["p_unsafe"] == pytest.approx(expected, abs=1e-5)


def test_libra_train_with_format_libra_refuses_conversations_before_loading_a_model(tmp_path):
    conversation = {"id": 2, "label": "不安全", "messages": FIVE_TURNS}
    data = write_jsonl(tmp_path / "conv.jsonl", [sample(1), conversation])
    proc = run_cli(
        "libra-train",
        "format=libra",
        "curriculum=sft_only",
        f"data.stage2.path={data}",
        f"data.eval_sets.heldout={data}",
        "data.prepare=null",
        "logger=none",
        f"paths.run_dir={tmp_path / 'run'}",
        check=False,
    )
    assert proc.returncode == 2
    assert f"'format.prompt': libra judges one question and one response, but {data}" in proc.stderr
    assert not (tmp_path / "run" / "backbone").exists()
