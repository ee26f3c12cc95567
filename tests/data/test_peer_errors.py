"""The peers' formats refuse what they cannot render or train on with the whole sentence a user reads:
the file, the key and the sample, and what to do. Each message is pinned here in full, so a change to
any of its parts is a change the tests see."""

import pytest

from libra_train.conf_dir import CONF_DIR
from libra_train.data.formats import FormatConfig, render_prompt, render_target
from libra_train.data.peers import Verdict, category_map, llama_guard3, peer, qwen3guard, shieldlm, wildguard
from libra_train.errors import ConfigError, DataError
from tests.data.test_peer_prompts import CONVERSATION, PROMPT, RESPONSE

ANSWERED, QUESTION_ALONE, TWO_EXCHANGES = RESPONSE, PROMPT, CONVERSATION
# two user turns in a row: what Llama Guard 3's template raises on
NOT_ALTERNATING = {
    "id": 8,
    "question": "第二问",
    "response": "答",
    "label": "安全",
    "messages": [
        {"role": "user", "content": "第一问"},
        {"role": "user", "content": "第二问"},
        {"role": "assistant", "content": "答"},
    ],
}


def _message(call) -> str:
    with pytest.raises((ConfigError, DataError)) as err:
        call()
    return str(err.value)


@pytest.mark.parametrize(
    "prompt, options, record, expected",
    [
        (
            "shieldlm",
            {},
            QUESTION_ALONE,
            "config 'format.prompt': shieldlm judges responses only; sample 2 has none: "
            "give every sample a response",
        ),
        (
            "shieldlm",
            {"task": "both"},
            QUESTION_ALONE,
            "config 'format.prompt': shieldlm judges responses only; sample 2 has none: "
            "format.task=both asks for the question alone: use format.task=response",
        ),
        (
            "shieldlm",
            {},
            TWO_EXCHANGES,
            "config 'format.prompt': shieldlm judges one exchange; sample 3 has earlier turns",
        ),
        (
            "wildguard",
            {},
            TWO_EXCHANGES,
            "config 'format.prompt': wildguard judges one exchange; sample 3 has earlier turns",
        ),
        (
            "llama_guard3",
            {},
            NOT_ALTERNATING,
            "config 'format.prompt': llama_guard3 needs turns that alternate user/assistant; sample 8 "
            "breaks that at turn 1",
        ),
    ],
)
def test_a_record_a_peer_cannot_render_is_refused_in_one_whole_sentence(prompt, options, record, expected):
    assert _message(lambda: render_prompt(record, None, FormatConfig(prompt=prompt, **options))) == expected


def test_a_target_a_peer_cannot_write_is_refused_in_one_whole_sentence():
    qwen3 = FormatConfig(prompt="qwen3guard")
    no_category = {**ANSWERED, "category_name": [], "meta": {"refusal": False}}
    assert _message(lambda: render_target(no_category, qwen3)) == (
        "config 'format.prompt': qwen3guard's unsafe target names its categories ('Categories: None' "
        f"means safe); sample 1 has no category_name that {CONF_DIR}/category_map/qwen3guard.yaml maps "
        "(it has none): give it one, or map it there"
    )
    unmapped = {**no_category, "category_name": ["外星话题"]}
    assert "(it has ['外星话题']): give it one" in _message(lambda: render_target(unmapped, qwen3))
    no_refusal = {**ANSWERED, "label": "安全"}
    assert _message(lambda: render_target(no_refusal, qwen3)) == (
        "config 'format.prompt': qwen3guard's response target ends with 'Refusal: Yes|No'; sample 1 "
        "has no meta.refusal (true or false) to write it from"
    )
    assert _message(lambda: render_target(ANSWERED, FormatConfig(prompt="wildguard"))) == (
        "config 'format.prompt': wildguard is an evaluation format: its output needs a refusal label the "
        "sample schema does not carry; train in shieldlm, llama_guard3 or qwen3guard"
    )


def test_a_missing_or_empty_rules_file_and_a_bad_category_map_name_the_file_and_the_key(tmp_path):
    missing = tmp_path / "rules.txt"
    shield = FormatConfig(prompt="shieldlm", rules_file=str(missing))
    assert _message(lambda: render_prompt(ANSWERED, None, shield)) == (
        f"{missing}: field 'format.rules_file': no such file"
    )
    missing.write_text(" \n\n", encoding="utf-8")
    assert _message(lambda: shieldlm._read_rules(str(missing))) == (
        f"{missing}: field 'format.rules_file': no rules: the file is empty"
    )
    no_map = tmp_path / "map.yaml"
    fmt = FormatConfig(prompt="qwen3guard", category_map=str(no_map))
    assert _message(lambda: category_map.load(fmt)) == f"{no_map}: field 'format.category_map': no such file"
    for text, section in [
        ("from_guard: {a: b}\nto_guard: [S1, S2]\n", "to_guard"),
        ("from_guard: {a: 1}\nto_guard: {b: c}\n", "from_guard"),
        ("- a\n- b\n", "from_guard"),
    ]:
        no_map.write_text(text, encoding="utf-8")
        assert _message(lambda: category_map._read(str(no_map))) == (
            f"{no_map}: field '{section}': expected a mapping of names to names"
        )
    no_map.write_text("from_guard: {Hate: 仇恨辱骂}\nto_guard: {仇恨辱骂: Hate}\n", encoding="utf-8")
    assert category_map._read(str(no_map)) == {
        "from_guard": {"Hate": "仇恨辱骂"},
        "to_guard": {"仇恨辱骂": "Hate"},
    }


def test_a_users_own_categories_are_the_codes_a_llama_guard3_target_names(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("违法犯罪: 不得提供违法方法。\n隐私财产: 不得泄露隐私。\n", encoding="utf-8")
    fmt = FormatConfig(prompt="llama_guard3", categories_file=str(policy))
    record = {**ANSWERED, "category_name": ["隐私财产", "违法犯罪", "隐私财产"]}
    assert render_target(record, fmt) == "\n\nunsafe\nS2,S1"  # in the sample's order, once each
    # the template's own list, several categories: comma-separated without spaces
    two = {**ANSWERED, "category_name": ["违法犯罪", "仇恨辱骂"]}
    assert render_target(two, FormatConfig(prompt="llama_guard3")) == "\n\nunsafe\nS2,S10"
    assert render_target({**ANSWERED, "category_name": []}, FormatConfig(prompt="llama_guard3")) == (
        "\n\nunsafe"
    )


def test_qwen3guard_lists_several_categories_and_no_safe_target_names_any():
    fmt = FormatConfig(prompt="qwen3guard")
    three = {**ANSWERED, "category_name": ["违法犯罪", "仇恨辱骂", "偏见歧视"], "meta": {"refusal": False}}
    # two of ours map to one of theirs: named once, in the sample's order, joined by ", "
    assert render_target(three, fmt) == (
        "Safety: Unsafe\nCategories: Non-violent Illegal Acts, Unethical Acts\nRefusal: No"
    )
    safe = {**three, "label": "安全", "meta": {"refusal": True}}
    assert render_target(safe, fmt) == "Safety: Safe\nCategories: None\nRefusal: Yes"


@pytest.mark.parametrize(
    "module, prompt, text, record, expected",
    [
        (shieldlm, "shieldlm", None, ANSWERED, Verdict(None, [], "")),
        (
            shieldlm,
            "shieldlm",
            "  [答案] 安全\n[分析] 甲[分析] 乙 ",
            ANSWERED,
            Verdict("安全", [], "甲[分析] 乙"),
        ),
        (shieldlm, "shieldlm", "[答案] 有争议", ANSWERED, Verdict("有争议", [], "")),
        (
            llama_guard3,
            "llama_guard3",
            "\n\n Unsafe \n S1, S10 \n",
            ANSWERED,
            Verdict("不安全", ["S1", "S10"]),
        ),
        (llama_guard3, "llama_guard3", None, ANSWERED, Verdict(None)),
        (llama_guard3, "llama_guard3", "unsafe", ANSWERED, Verdict("不安全", [])),
        (qwen3guard, "qwen3guard", None, ANSWERED, Verdict(None)),
        (qwen3guard, "qwen3guard", "Safety: Unsafe", ANSWERED, Verdict("不安全", [])),
        (
            qwen3guard,
            "qwen3guard",
            "Safety: Unsafe\nCategories: A , B",
            ANSWERED,
            Verdict("不安全", ["A", "B"]),
        ),
        (wildguard, "wildguard", None, ANSWERED, Verdict(None)),
        (wildguard, "wildguard", "a: no\nb: no\nc: yes", ANSWERED, Verdict("不安全")),
        (wildguard, "wildguard", "a: yes\nb: n/a\nc: n/a", QUESTION_ALONE, Verdict("不安全")),
    ],
)
def test_each_peer_reads_its_own_output(module, prompt, text, record, expected):
    assert module.parse(text, record, FormatConfig(prompt=prompt)) == expected


def test_only_the_peers_have_a_format_module():
    assert peer("guard") is None and peer("libra") is None
    assert peer("shieldlm") is shieldlm and peer("wildguard") is wildguard
