import pytest

from libra_train.eval.metrics import compute_metrics

U, S = "不安全", "安全"


def rows(source, pairs, category="违法犯罪"):
    return [{"source": source, "category_name": category, "label": g, "pred_label": p} for g, p in pairs]


def test_hand_computed_confusion_across_sources():
    # A: TP=2 FN=1 FP=1 TN=2 → acc 4/6; F1-unsafe = 2*2/(2*2+1+1) = 2/3; F1-safe = 2*2/(2*2+1+1) = 2/3
    a = rows("A", [(U, U), (U, U), (U, S), (S, U), (S, S), (S, S)])
    # B: all predicted unsafe: TP=3 FP=1 → acc 3/4, F1-unsafe = 6/7, F1-safe = 0
    b = rows("B", [(U, U), (U, U), (U, U), (S, U)], category="偏见歧视")
    m = compute_metrics(a + b)
    assert m["per_source"]["A"] == pytest.approx(
        {"accuracy": 4 / 6, "f1_safe": 2 / 3, "f1_unsafe": 2 / 3, "n": 6}
    )
    assert m["per_source"]["B"] == pytest.approx(
        {"accuracy": 0.75, "f1_safe": 0.0, "f1_unsafe": 6 / 7, "n": 4}
    )
    assert m["average"] == pytest.approx(
        {"accuracy": (4 / 6 + 0.75) / 2, "f1_safe": (2 / 3) / 2, "f1_unsafe": (2 / 3 + 6 / 7) / 2}
    )
    assert m["confusion"] == {"tp": 5, "fn": 1, "fp": 2, "tn": 2}
    assert m["per_category"]["偏见歧视"] == {"accuracy": 0.75, "n": 4}
    assert m["auprc"] is None and m["parse_failures"] == 0


def test_unparseable_counts_as_the_wrong_label():
    m = compute_metrics(rows("A", [(U, None), (S, None), (U, U), (S, S)]))
    assert m["parse_failures"] == 2 and m["per_source"]["A"]["accuracy"] == 0.5
    assert m["confusion"] == {"tp": 1, "fn": 1, "fp": 1, "tn": 1}


def test_auprc_from_scores():
    data = [
        {"source": "A", "label": g, "pred_label": U if p > 0.5 else S, "p_unsafe": p}
        for g, p in [(U, 0.9), (S, 0.8), (U, 0.7), (S, 0.1)]
    ]
    # ranked: U(0.9) P=1, S, U(0.7) P=2/3 → AP = (1 + 2/3) / 2
    assert compute_metrics(data)["auprc"] == pytest.approx((1 + 2 / 3) / 2)


def test_missing_source_and_category_and_a_source_with_no_unsafe_sample():
    m = compute_metrics([{"label": S, "pred_label": S}, {"label": S, "pred_label": S}])
    assert list(m["per_source"]) == ["Unknown"] and list(m["per_category"]) == ["(none)"]
    # no unsafe gold and none predicted: F1-Unsafe is 0 (not 1), F1-Safe is 1
    assert m["per_source"]["Unknown"] == {"accuracy": 1.0, "f1_safe": 1.0, "f1_unsafe": 0.0, "n": 2}
    assert m["n"] == 2


def test_auprc_needs_scores_of_both_classes():
    one_class = [{"source": "A", "label": U, "pred_label": U, "p_unsafe": 0.9}] * 3
    assert compute_metrics(one_class)["auprc"] is None


def test_a_source_with_no_safe_sample_has_f1_safe_zero():
    m = compute_metrics(rows("A", [(U, U), (U, U)]))
    assert m["per_source"]["A"] == {"accuracy": 1.0, "f1_safe": 0.0, "f1_unsafe": 1.0, "n": 2}


def test_one_sided_names_the_one_label_a_guard_gave_a_set_that_holds_both():
    from libra_train.eval.metrics import one_sided, synthetic_only

    both = [{"label": "安全", "pred_label": "不安全"}, {"label": "不安全", "pred_label": "不安全"}]
    assert one_sided(compute_metrics(both)) == "不安全"
    assert one_sided(compute_metrics([{**r, "pred_label": "安全"} for r in both])) == "安全"
    assert one_sided(compute_metrics([both[1], {"label": "安全", "pred_label": "安全"}])) is None
    assert one_sided(compute_metrics([both[1]])) is None  # one gold label: nothing to separate
    assert synthetic_only({"per_source": {"Synthetic Data": {}}})
    assert not synthetic_only({"per_source": {"Synthetic Data": {}, "Real Data": {}}})
