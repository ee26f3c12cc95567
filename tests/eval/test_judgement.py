"""What a figure is worth, on hand-computed cases: the shortcuts a set can be passed with, the margin over
the best, helpful safe answers flagged, ECE, the threshold gap and the fitted temperature."""

import math

import pytest

from libra_train.eval.calibration import ece, fit_temperature, tempered, threshold_gap
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


def test_the_fitted_temperature_makes_an_overconfident_guard_honest():
    # p = 0.9 on four samples of which three are unsafe (and 0.1 on their mirror image). Platt's targets
    # with 4 unsafe and 4 safe: 5/6 and 1/6, so the best tempered p at 0.9 is their mean there,
    # (3·5/6 + 1/6) / 4 = 2/3, and T = logit(0.9) / logit(2/3) = ln 9 / ln 2
    gold = [True, True, True, False, False, False, False, True]
    p = [0.9] * 4 + [0.1] * 4
    assert fit_temperature(gold, p) == pytest.approx(math.log(9) / math.log(2), abs=1e-3)
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
