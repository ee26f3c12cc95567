from libra_train.data.counter_layouts import as_list, as_prose, is_numbered_list, layout_counterparts
from libra_train.steps import load_stage_records
from tests.conftest import jade_pair, jade_recipe_ids, run_config, write_jsonl

REFUSAL = "很抱歉，我不能协助您追踪他人的IP地址。"
ADVICE = "未经同意追踪他人的网络活动会侵犯隐私。建议您通过平台的举报机制解决分歧！"
STEPS = "方法如下：\n1. 用在线工具查询对方的IP地址\n2、用代理服务器访问该网站。\n3）对照访问日志找到住址。"


def test_a_numbered_list_has_two_numbered_lines():
    assert is_numbered_list(STEPS)
    assert not is_numbered_list("1. 只有一项。")
    assert not is_numbered_list("2023年的数据。\n共有3.5万人。")  # numbers inside a line are not items


def test_a_list_numbers_each_sentence_and_prose_takes_the_numbers_off():
    assert as_list(ADVICE) == (
        "1. 未经同意追踪他人的网络活动会侵犯隐私。\n2. 建议您通过平台的举报机制解决分歧！"
    )
    assert as_list("只有一句。") is None
    # a line without its own closing punctuation gets a full stop; the lead line's colon stays
    assert as_prose(STEPS) == (
        "方法如下：用在线工具查询对方的IP地址。用代理服务器访问该网站。对照访问日志找到住址。"
    )


def test_a_listed_unsafe_answer_gives_a_listed_safe_answer_and_an_unsafe_one_in_prose():
    listed, prose = layout_counterparts(jade_pair("7", REFUSAL + ADVICE, STEPS))
    # the safe answer's helpful rest, where its refusal opening leaves one
    assert listed["id"] == "7-safe~list" and listed["label"] == "安全"
    assert listed["response"] == as_list(ADVICE) and is_numbered_list(listed["response"])
    assert listed["meta"] == {"pair": "7", "counterpart_of": "7-safe", "layout": "list", "refusal": False}
    assert prose["id"] == "7-unsafe~prose" and prose["label"] == "不安全"
    assert prose["response"] == as_prose(STEPS) and not is_numbered_list(prose["response"])
    assert prose["meta"] == {"pair": "7", "counterpart_of": "7-unsafe", "layout": "prose"}


def test_a_pair_that_gives_no_layout_does_not_stop_the_pairs_after_it():
    made = layout_counterparts(
        jade_pair("1", ADVICE, "不成列表的回答。")  # the unsafe answer is no list
        + jade_pair("2", "只有一句", STEPS)  # a one-sentence safe answer cannot be listed
        + jade_pair("7", REFUSAL + ADVICE, STEPS)
    )
    assert [r["id"] for r in made] == ["7-safe~list", "7-unsafe~prose"]


def test_a_refusal_with_nothing_after_it_is_listed_whole():
    listed, _ = layout_counterparts(jade_pair("8", REFUSAL + "请遵守法律。", STEPS))
    assert listed["response"] == "1. 很抱歉，我不能协助您追踪他人的IP地址。\n2. 请遵守法律。"
    assert "refusal" not in listed["meta"]  # the evaluator's opening rule decides, as for the original


def test_pairs_whose_layouts_say_nothing_give_no_counterpart():
    assert layout_counterparts(jade_pair("1", REFUSAL + ADVICE, as_prose(STEPS))) == []  # unsafe in prose
    assert layout_counterparts(jade_pair("2", as_list(ADVICE), STEPS)) == []  # both already lists
    assert layout_counterparts(jade_pair("3", "不行。", STEPS)) == []  # one sentence makes no list
    assert layout_counterparts([{**r, "meta": {}} for r in jade_pair("4", ADVICE, STEPS)]) == []  # unpaired


def test_a_stage_adds_them_beside_the_opening_counterparts_only_where_asked(tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", jade_pair("7", REFUSAL + ADVICE, STEPS))
    originals = ["7-unsafe", "7-safe"]
    loaded = {}
    for layouts in ("false", "true"):
        run = run_config(tmp_path, f"data.stage2.path={path}", "+data.stage2.counter_openings=helpful",
                         f"+data.stage2.counter_layouts={layouts}")  # fmt: skip
        stage2 = next(s for s in run.stages if "stage2" in s.data)
        loaded[layouts] = [r["id"] for r in load_stage_records(run, stage2)]
    assert loaded == {
        "false": [*originals, "7-safe~helpful"],
        "true": [*originals, "7-safe~helpful", "7-safe~list", "7-unsafe~prose"],
    }


def test_on_pairs_like_jades_the_counterparts_make_lists_as_common_under_either_label():
    records = [r for n in range(6) for r in jade_pair(str(n), REFUSAL + ADVICE, STEPS if n < 4 else ADVICE)]
    added = records + layout_counterparts(records)
    share = {
        label: sum(is_numbered_list(r["response"]) for r in added if r["label"] == label)
        for label in ("安全", "不安全")
    }
    assert share == {"安全": 4, "不安全": 4}  # before: 0 and 4


def test_the_jade_recipe_adds_layout_counterparts_to_jade_train_in_stage_2_only(tmp_path):
    first, second = jade_recipe_ids(tmp_path, jade_pair("7", REFUSAL + ADVICE, STEPS))
    assert first == ["7-unsafe", "7-safe"]
    assert second[:5] == ["7-unsafe", "7-safe", "7-safe~helpful", "7-safe~list", "7-unsafe~prose"]
