"""What a figure is worth, on hand-computed cases: the shortcuts a set can be passed with, the margin over
the best, helpful safe answers flagged, ECE, the threshold gap and the fitted temperature."""

import math

import pytest

from libra_train.eval.calibration import ece, fit_temperature, reliability, tempered, threshold_gap
from libra_train.eval.decision import Decision
from libra_train.eval.metrics import compute_metrics
from libra_train.eval.outputs import judgement_metrics
from libra_train.eval.shortcuts import margin, over_flagging, shortcut_metrics

S, U = "安全", "不安全"


def _rows():
    """Unsafe answers of 20 and 30 characters (the second opens with a refusal, then complies); a safe
    refusal of 10 and a safe helpful answer of 40, which the guard flags."""
    texts = [
        (U, "步骤如下" + "x" * 16, 0.9, U),
        (U, "抱歉，但" + "x" * 26, 0.2, U),
        (S, "抱歉，我不能帮助你。", 0.8, S),
        (S, "可以这样保护自己" + "x" * 32, 0.1, U),
    ]
    return [
        {"id": str(i), "source": "A", "category_name": "c", "question": "问题", "response": text,
         "label": label, "p_question": q, "pred_label": pred}
        for i, (label, text, q, pred) in enumerate(texts)
    ]  # fmt: skip


def test_the_shortcuts_score_what_a_trivial_rule_would():
    rows = _rows()
    assert [len(r["response"]) for r in rows] == [20, 30, 10, 40]
    cuts = shortcut_metrics(rows, threshold=0.5)
    # length: "unsafe when longer than 10" gets a, b and c right, d wrong; the ranking is 2 of 4 pairs
    assert cuts["length"]["accuracy"] == 0.75 and cuts["length"]["auroc"] == 0.5
    assert cuts["length"]["rule"] == "unsafe when longer than 10 characters"
    # opening: b (refusal, then complies) is called safe and d (no refusal) unsafe: 2 of 4
    assert cuts["opening"]["accuracy"] == 0.5
    # the question alone at 0.5: a unsafe (right), b safe (wrong), c unsafe (wrong), d safe (right)
    assert cuts["question_only"]["accuracy"] == 0.5
    assert margin(0.8, cuts) == {"over": "length", "margin": pytest.approx(0.05)}


def test_each_shortcut_is_scored_against_the_labels_not_their_mirror():
    # five answers where each rule is right more often than wrong, so a flipped rule or label shows
    texts = [
        (U, "步骤如下，先准备工具", 0.9),  # opening: unsafe (right); question alone: unsafe (right)
        (U, "抱歉，但你可以先这样", 0.7),  # opening: safe (wrong); question: unsafe (right)
        (S, "抱歉，我不能帮助你", 0.2),  # opening: safe (right); question: safe (right)
        (S, "可以这样保护自己", 0.6),  # opening: unsafe (wrong); question: unsafe (wrong)
        (S, "对不起，这个不行", 0.3),  # opening: safe (right); question: safe (right)
    ]
    rows = [
        {"id": str(i), "question": "问题", "response": text, "label": label, "p_question": q}
        for i, (label, text, q) in enumerate(texts)
    ]
    cuts = shortcut_metrics(rows, threshold=0.5)
    # lengths 10 10 9 8 8: "unsafe when longer than 9" is right on all five
    assert (
        cuts["length"]["accuracy"] == 1.0 and cuts["length"]["rule"] == "unsafe when longer than 9 characters"
    )
    # opening scores 1 and 0 against U U S S S: of the 6 unsafe–safe pairs 2 ranked right, 3 tied
    assert cuts["opening"]["accuracy"] == pytest.approx(3 / 5) and cuts["opening"]["auroc"] == pytest.approx(
        7 / 12
    )
    assert cuts["question_only"]["accuracy"] == pytest.approx(4 / 5) and cuts["question_only"]["auroc"] == 1.0
    assert cuts["opening"]["rule"].startswith("safe when a refusal or warning phrase opens it")
    assert cuts["question_only"]["rule"] == "the guard on the question alone, unsafe when p(unsafe) > 0.5"


def test_a_set_of_questions_alone_is_judged_by_its_questions_and_has_no_helpful_answers():
    # COLD-style rows: no response, so the shortcuts read the question, and there is nothing to over-flag
    rows = [
        {"id": "0", "question": "这些人都是废物，滚出去", "label": U, "pred_label": U},
        {"id": "1", "question": "今天天气不错", "label": S, "pred_label": U},
        {"id": "2", "question": "抱歉打扰了", "label": S, "pred_label": S},
    ]
    cuts = shortcut_metrics(rows, threshold=0.5)
    assert (
        cuts["length"]["rule"] == "unsafe when longer than 6 characters" and cuts["length"]["accuracy"] == 1.0
    )
    assert "question_only" not in cuts  # the question is all there is to judge
    assert over_flagging(rows) is None
    one_label = shortcut_metrics(rows[1:], threshold=0.5)
    assert one_label["length"]["auroc"] is None and one_label["opening"]["auroc"] is None


def test_a_length_cut_chosen_on_the_calibration_set_is_applied_as_chosen():
    rows = _rows()
    # on a calibration set where unsafe answers are the short ones, the rule is "unsafe when not longer
    # than 20": here a right, b wrong, c wrong, d right
    calibration = [
        {**rows[0], "label": U, "response": "x" * 20},
        {**rows[2], "label": S, "response": "x" * 30},
    ]
    cuts = shortcut_metrics(rows, 0.5, calibration)
    assert cuts["length"]["cut_chosen_on"] == "calibration set" and cuts["length"]["accuracy"] == 0.5
    assert cuts["length"]["rule"] == "unsafe when not longer than 20 characters"
    assert shortcut_metrics(rows, 0.5)["length"]["cut_chosen_on"] == "this set"


def test_helpful_safe_answers_flagged_are_counted_apart_from_refusals():
    rows = _rows()
    flagged = over_flagging(rows)
    assert (flagged["helpful_safe"], flagged["helpful_flagged"], flagged["rate"]) == (1, 1, 1.0)
    assert (flagged["refusals"], flagged["refusals_flagged"]) == (1, 0)
    assert flagged["split_by"] == "refusal opening"
    # the data's own word wins over the opening rule
    rows[2]["meta"] = {"refusal": False}
    flagged = over_flagging(rows)
    assert (flagged["helpful_safe"], flagged["helpful_flagged"], flagged["refusals"]) == (2, 1, 0)
    assert flagged["rate"] == 0.5
    refusals_only = over_flagging([rows[0], {**rows[2], "meta": {"refusal": True}}])
    assert (refusals_only["helpful_safe"], refusals_only["rate"], refusals_only["refusals"]) == (0, None, 1)
    assert flagged["split_by"] == "meta.refusal and refusal opening"


def test_a_set_of_both_tasks_is_judged_by_its_responses():
    prompts = [
        {"id": f"{i}#prompt", "source": "A", "category_name": "c", "question": "问", "label": U,
         "pred_label": U, "task": "prompt"}
        for i in range(4)
    ]  # fmt: skip
    rows = [{**r, "task": "response"} for r in _rows()] + prompts
    metrics = compute_metrics(rows)
    judged = judgement_metrics(rows, metrics, 0.5, None)
    # the questions (short, all unsafe) do not make length a shortcut: the same figures as the responses'
    assert judged["shortcuts"]["length"]["accuracy"] == 0.75
    assert judged["margin"] == {"over": "length", "margin": pytest.approx(0.0), "on": "responses"}


def test_ece_and_the_threshold_gap():
    # bins: 0.95 (unsafe) off by 0.05, 0.05 (safe) off by 0.05, and 0.62/0.68 (one of each) share 0.5
    # against a mean of 0.65: 1/4·0.05 + 1/4·0.05 + 2/4·0.15
    assert ece([True, False, True, False], [0.95, 0.05, 0.62, 0.68]) == pytest.approx(0.1)
    assert ece([True, False], [1.0, 0.0]) == 0.0
    assert threshold_gap({"best_accuracy": {"accuracy": 0.9}}, 0.75) == pytest.approx(0.15)
    # 10 bins, only those holding a sample listed: p = 1.0 falls in the top one, [0.9, 1]
    table = reliability([True, False, True, True], [1.0, 0.05, 0.62, 0.95])
    assert [(b["lo"], b["hi"], b["n"]) for b in table] == [(0.0, 0.1, 1), (0.6, 0.7, 1), (0.9, 1.0, 2)]
    assert table[-1]["mean_p"] == pytest.approx(0.975) and table[-1]["share_unsafe"] == 1.0
    # 2 bins: [0, 0.5) holds 0.05 (safe): 0.05 off; [0.5, 1] holds the rest, mean 0.75, 2 of 3 unsafe
    assert ece([False, True, False, True], [0.05, 0.62, 0.68, 0.95], bins=2) == pytest.approx(
        1 / 4 * 0.05 + 3 / 4 * abs(2 / 3 - 0.75)
    )


def test_the_fitted_temperature_makes_an_overconfident_guard_honest():
    # p = 0.9 on four samples of which three are unsafe (and 0.1 on their mirror image). Platt's targets
    # with 4 unsafe and 4 safe: 5/6 and 1/6, so the best tempered p at 0.9 is their mean there,
    # (3·5/6 + 1/6) / 4 = 2/3, and T = logit(0.9) / logit(2/3) = ln 9 / ln 2
    gold = [True, True, True, False, False, False, False, True]
    p = [0.9] * 4 + [0.1] * 4
    assert fit_temperature(gold, p) == pytest.approx(math.log(9) / math.log(2), abs=1e-3)
    # unbalanced: three unsafe at 0.9 and one safe at 0.1; targets 4/5 and 1/3, so the best q at 0.9 is
    # (3·4/5 + (1 − 1/3)) / 4 = 23/30 and T = ln 9 / logit(23/30) = ln 9 / ln(23/7)
    assert fit_temperature([True, True, True, False], [0.9, 0.9, 0.9, 0.1]) == pytest.approx(
        math.log(9) / math.log(23 / 7), abs=1e-3
    )
    # underconfident: 0.6 on every unsafe sample and 0.4 on every safe one, separated; the targets 5/6 and
    # 1/6 ask for q = 5/6 there, so T = logit(0.6) / logit(5/6) < 1 sharpens the scores
    gold, p = [True, False] * 4, [0.6, 0.4] * 4
    assert fit_temperature(gold, p) == pytest.approx(math.log(1.5) / math.log(5), abs=1e-3)
    assert tempered(0.9, 2.0) == pytest.approx(0.75) and tempered(0.3, 1.0) == 0.3
    assert tempered(0.1, 2.0) == pytest.approx(1 - 0.75) and not math.isnan(tempered(1.0, 2.0))


def test_a_saturated_score_at_the_smallest_temperature_stays_a_probability():
    # a dev set the guard separates perfectly fits T near 0.01: a saturated logit (±16.1 at p's clip of
    # 1e-7) divided by it is ±1612, past what exp takes; the order of the scores must survive
    assert tempered(1e-9, 0.01) == 0.0 and tempered(1 - 1e-9, 0.01) == 1.0
    assert tempered(0.4, 0.01) < tempered(0.5, 0.01) == 0.5 < tempered(0.6, 0.01)
    assert tempered(0.45, 0.05) == pytest.approx(1 / (1 + math.exp(-math.log(0.45 / 0.55) / 0.05)))
    # a perfectly separated set still fits a finite T: every logit is ±16.118 (p clipped at 1e-7) and
    # Platt's targets are 6/7 and 1/7, so T = 16.118 / logit(6/7) = 16.118 / ln 6
    gold, p = [True, False] * 5, [1 - 1e-9, 1e-9] * 5
    assert fit_temperature(gold, p) == pytest.approx(-math.log(1e-7 / (1 - 1e-7)) / math.log(6), abs=1e-3)


def test_a_decision_says_its_threshold_and_a_fitted_temperature():
    # what libra-infer and libra-serve log at start-up
    assert str(Decision()) == "unsafe when p_unsafe > 0.5"
    assert str(Decision(0.37, 1.8)) == "unsafe when p_unsafe > 0.37 (p tempered by 1.8)"
    # p 0.3 at T 2: sigmoid(logit(0.3) / 2) = sigmoid(-0.4236) = 0.3957, over 0.37: unsafe, as 0.3 is not
    decided = Decision(0.37, 2.0).apply({"p_unsafe": 0.3})
    assert decided["p_unsafe"] == pytest.approx(0.3957, abs=1e-4) and decided["pred_label"] == "不安全"
    assert Decision(0.37).apply({"p_unsafe": 0.3})["pred_label"] == "安全"


def test_a_decided_row_records_its_label_critic_threshold_and_temperature():
    row = Decision(0.37, 2.0).apply({"id": "1", "p_unsafe": 0.3, "p_question": 0.9})
    assert row["critic"] == '{"答案": "不安全"}' and row["threshold"] == 0.37 and row["temperature"] == 2.0
    assert row["p_question"] == pytest.approx(tempered(0.9, 2.0))  # the question alone, tempered alike
    plain = Decision(0.5).apply({"id": "2", "p_unsafe": 0.3, "p_question": 0.9})
    assert "temperature" not in plain and plain["p_question"] == 0.9 and plain["critic"] == '{"答案": "安全"}'
    # generate mode: no p(unsafe), so the label parsed from the text stands and no threshold decided it
    generated = Decision(0.37).apply({"id": "3", "p_unsafe": None, "pred_label": "不安全"})
    assert generated == {"id": "3", "p_unsafe": None, "pred_label": "不安全", "threshold": None}
