"""Several violated categories, the user's own policy file, and category dropout."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from libra_train.config import format_config
from libra_train.data.formats import FormatConfig, render_prompt, render_target
from libra_train.data.policy import POLICY_KEY, apply_dropout
from libra_train.data.taxonomy import default_rules
from libra_train.errors import ConfigError, DataError
from libra_train.eval.metrics import category_metrics, compute_metrics
from libra_train.eval.parse import parse_categories
from libra_train.train.examples import build_examples
from tests.conftest import sample

RULES = default_rules()
CRIME, BIAS, PRIVACY = list(RULES)[:3]


def test_the_target_names_every_violated_category():
    fmt = FormatConfig(with_category=True)
    several = sample(1, category_name=[CRIME, PRIVACY], analyze="既教唆盗窃又泄露住址。")
    assert json.loads(render_target(several, fmt)) == {
        "答案": "不安全",
        "类别": [CRIME, PRIVACY],
        "分析": "既教唆盗窃又泄露住址。",
    }
    assert json.loads(render_target(sample(2), fmt))["类别"] == [CRIME]  # one name is a list of one
    assert "类别" not in json.loads(render_target(sample(3, label="安全"), fmt))


@pytest.mark.parametrize(
    "output, categories",
    [
        ('{"答案": "不安全", "类别": ["违法犯罪", "隐私财产"], "分析": "…"}', ["违法犯罪", "隐私财产"]),
        ('{"答案": "不安全", "类别": "偏见歧视"}', ["偏见歧视"]),
        ('{"答案": "不安全", "类别": ["违法犯罪", "隐私', ["违法犯罪", "隐私"]),  # cut off by max_new_tokens
        ('{"答案": "安全", "分析": "拒绝了请求"}', []),
        ("不是 JSON", []),
    ],
)
def test_categories_are_parsed_from_the_output(output, categories):
    assert parse_categories(output) == categories


def row(label, gold, pred, **extra):
    return {
        "label": label,
        "category_name": gold,
        "pred_categories": pred,
        "pred_label": "不安全" if pred else "安全",
        **extra,
    }


def test_category_metrics_on_a_hand_computed_case():
    rows = [
        row("不安全", ["A", "B"], ["A"]),  # A tp, B fn
        row("不安全", "A", ["A"]),  # A tp; exact
        row("安全", "", ["B"]),  # B fp
        row("不安全", ["B"], []),  # judged safe: B fn
        row("不安全", ["B"], ["B", "C"]),  # B tp, C fp
    ]
    got = category_metrics(rows)
    assert got["per_category"]["A"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    b = got["per_category"]["B"]  # tp 1, fp 1, fn 2
    assert (b["precision"], b["recall"], b["support"]) == (0.5, pytest.approx(1 / 3), 3)
    assert b["f1"] == pytest.approx(0.4)
    assert got["per_category"]["C"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert (got["exact_match"], got["n"]) == (0.25, 4)  # rows 1, 2, 4, 5 are unsafe with categories
    assert category_metrics([{k: v for k, v in r.items() if k != "pred_categories"} for r in rows]) is None


def test_accuracy_per_category_counts_a_sample_under_each_of_its_categories_and_turns_apart():
    convo = {
        "messages": [
            {"role": "user", "content": "q0"},
            {"role": "assistant", "content": "a0"},
            {"role": "user", "content": "q"},
        ],
        "question": "q",
        "response": "",
    }
    rows = [
        {"label": "不安全", "pred_label": "不安全", "category_name": ["A", "B"]},
        {"label": "不安全", "pred_label": "安全", "category_name": "B", **convo},
    ]
    metrics = compute_metrics(rows)
    assert metrics["per_category"] == {"A": {"accuracy": 1.0, "n": 1}, "B": {"accuracy": 0.5, "n": 2}}
    turns = metrics["per_conversation"]
    assert (turns["single_turn"]["accuracy"], turns["multi_turn"]["accuracy"]) == (1.0, 0.0)


def test_a_categories_file_replaces_the_rules_in_the_prompt(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("赌博: 组织或宣传赌博。\n广告: 未经允许的商业推广。\n", encoding="utf-8")
    cfg = OmegaConf.create({"rules": True, "prompt_style": "plain", "categories_file": str(policy)})
    own = render_prompt(sample(1), None, format_config(OmegaConf.to_container(cfg)))
    built_in = render_prompt(sample(1), None, FormatConfig(rules=True, prompt_style="plain"))
    assert "安全规则：\n- 赌博：组织或宣传赌博。\n- 广告：未经允许的商业推广。\n" in own
    assert CRIME not in own and CRIME in built_in
    json_policy = tmp_path / "policy.json"
    json_policy.write_text(json.dumps([{"name": "赌博", "rule": "组织或宣传赌博。"}], ensure_ascii=False))
    from_json = FormatConfig(rules=True, categories_file=str(json_policy))
    assert from_json.policy == {"赌博": "组织或宣传赌博。"}


def test_bad_policy_settings_get_one_clear_error(tmp_path):
    # Building the format reads no file; its set-up (load_files, run by every command at its start) does.
    with pytest.raises(ConfigError, match="format.categories_file.*rules=true"):
        FormatConfig(categories_file=str(tmp_path / "p.yaml"))
    with pytest.raises(DataError, match="no such file"):
        FormatConfig(rules=True, categories_file=str(tmp_path / "missing.yaml")).load_files()
    (tmp_path / "empty.yaml").write_text("{}\n")
    with pytest.raises(DataError, match="no categories"):
        FormatConfig(rules=True, categories_file=str(tmp_path / "empty.yaml")).load_files()
    (tmp_path / "bad.yaml").write_text("赌博: ''\n")
    with pytest.raises(DataError, match="entry 1.*non-empty name and rule"):
        FormatConfig(rules=True, categories_file=str(tmp_path / "bad.yaml")).load_files()
    with pytest.raises(ConfigError, match="category_dropout.violated.*probability"):
        FormatConfig(rules=True, category_dropout={"violated": 1.5})
    with pytest.raises(ConfigError, match="format.category_dropout"):
        FormatConfig(rules=True, category_dropout={"some": 0.5})
    with pytest.raises(ConfigError, match="needs format.rules=true"):
        FormatConfig(category_dropout={"others": 0.5})


def test_dropout_flips_the_label_exactly_when_every_violated_category_is_dropped():
    dropout = {"others": 0.5, "violated": 0.3}
    unsafe = [sample(i, category_name=[CRIME, BIAS] if i % 3 else PRIVACY) for i in range(300)]
    records = unsafe + [sample(f"s{i}", label="安全", category_name="") for i in range(100)]
    kinds = {"flipped": 0, "fewer": 0, "same": 0}
    for record in records:
        out = apply_dropout(record, RULES, dropout, seed=0)
        assert out == apply_dropout(record, RULES, dropout, seed=0)  # the same draw on a resumed run
        violated = record["category_name"] if isinstance(record["category_name"], list) else [PRIVACY]
        shown = out.get(POLICY_KEY, list(RULES))
        all_dropped = record["label"] == "不安全" and not any(c in shown for c in violated)
        assert (out["label"] == "安全" and record["label"] == "不安全") == all_dropped
        if all_dropped:
            assert (out["analyze"], out["category_name"]) == ("", "")  # the analysis explained a violation
            assert shown == [c for c in RULES if c not in violated]
        elif record["label"] == "不安全":
            assert set(violated) <= set(shown) and out["label"] == "不安全"
        kinds["flipped" if all_dropped else "fewer" if len(shown) < len(RULES) else "same"] += 1
    assert all(kinds.values()) and 60 < kinds["flipped"] < 120  # ~0.3 of the 300 unsafe samples
    outside = sample(1, category_name="不在政策里的类别")
    assert apply_dropout(outside, RULES, {"others": 0.0, "violated": 1.0}, 0)["label"] == "不安全"


def test_a_dropped_sample_trains_on_the_prompt_it_was_shown():
    from tests.data.test_formats import train_tokenizer

    tok = train_tokenizer(["安全 不安全 问题 回答 分析 " + "".join(RULES)] * 20, vocab_size=400)
    tok.chat_template = None
    fmt = FormatConfig(rules=True, prompt_style="plain", category_dropout={"violated": 1.0})
    (example,), stats = build_examples([sample(1, analyze="回答教唆犯罪。")], tok, fmt, 4096)
    assert example["completion"] == '{"答案": "安全"}' and stats["dropout_flipped_to_safe"] == 1
    assert f"- {CRIME}：" not in example["prompt"] and f"- {BIAS}：" in example["prompt"]
