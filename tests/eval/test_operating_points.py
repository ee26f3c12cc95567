"""Operating points on hand-computed cases: the thresholds that maximise accuracy and F1, and the lowest
false-positive rate at 90% and 95% recall (rule: unsafe when p_unsafe > threshold)."""

import json
import math

import pytest

from libra_train.eval.decision import Decision
from libra_train.eval.metrics import compute_metrics, format_table, one_sided_note
from libra_train.eval.operating_points import curve, operating_points
from libra_train.eval.outputs import write_metrics
from tests.conftest import read_jsonl

# Scores high to low: U U S U S S. Flagging the top k (k = 0…6) gives
#   accuracy 3/6 4/6 5/6 4/6 5/6 4/6 3/6 and F1-Unsafe 0 .5 .8 .667 .857 .75 .667;
#   recall 1 first at k = 4 (one false positive of three safe samples: FPR 1/3).
GOLD = [True, True, False, True, False, False]
P = [0.9, 0.8, 0.7, 0.6, 0.3, 0.1]


def test_hand_computed_thresholds():
    points = operating_points(GOLD, P)
    best_acc, best_f1 = points["best_accuracy"], points["best_f1"]
    # accuracy 5/6 at k = 2 and k = 4: the tie goes to the higher threshold (fewer false alarms)
    assert (best_acc["threshold"], best_acc["accuracy"], best_acc["fpr"]) == (0.7, pytest.approx(5 / 6), 0.0)
    assert (best_f1["threshold"], best_f1["f1_unsafe"]) == (0.3, pytest.approx(6 / 7))
    assert points["fpr_at_recall"]["0.90"] == {"threshold": 0.3, "fpr": pytest.approx(1 / 3), "recall": 1.0}
    assert points["fpr_at_recall"]["0.95"]["threshold"] == 0.3
    assert points["pr_curve"]["recall"] == pytest.approx([0, 1 / 3, 2 / 3, 2 / 3, 1, 1, 1])


def test_tied_scores_are_one_cut_and_the_rule_is_strictly_greater():
    # two samples share 0.6: they are flagged together or not at all
    points = operating_points([True, False, True, False], [0.6, 0.6, 0.9, 0.2])
    assert points["best_accuracy"]["threshold"] == 0.6  # p > 0.6 flags only the 0.9: accuracy 3/4
    assert points["best_accuracy"]["accuracy"] == pytest.approx(0.75)
    assert len(points["pr_curve"]["recall"]) == 4  # nothing, {0.9}, {0.9, 0.6, 0.6}, all


def _middle(low: float, high: float) -> float:
    z = (math.log(low / (1 - low)) + math.log(high / (1 - high))) / 2
    return 1 / (1 + math.exp(-z))


def test_the_middle_of_the_best_interval_in_logit_space():
    points = operating_points(GOLD, P, at="middle")
    # best accuracy flags the top 2: every threshold in [0.7, 0.8) decides alike; best F1 the top 4,
    # every threshold in [0.3, 0.6)
    assert points["best_accuracy"]["threshold"] == pytest.approx(_middle(0.7, 0.8))
    assert points["best_f1"]["threshold"] == pytest.approx(_middle(0.3, 0.6))
    assert points["best_accuracy"]["accuracy"] == pytest.approx(5 / 6)  # the figures are the edge's
    # a run of equally good cuts is one interval: flagging {0.9} or {0.9, 0.6, 0.6} scores 3/4 alike, so
    # the interval runs from 0.2 to 0.9, whose middle in logit space is 0.6 (logits -ln 4 and ln 9)
    run = operating_points([True, True, False, False], [0.9, 0.6, 0.6, 0.2], at="middle")
    assert run["best_accuracy"]["threshold"] == pytest.approx(0.6)
    # flagging nothing is best: the interval runs from the top score to p = 1 (its logit clipped at 1e-7)
    top = operating_points([False, False, True], [0.9, 0.8, 0.1], at="middle")
    assert top["best_accuracy"]["threshold"] == pytest.approx(_middle(0.9, 1 - 1e-7))
    # a run that reaches the lowest cut (flagging everything): the interval runs down to p = 0
    low = operating_points([True, False, True], [0.9, 0.5, 0.5], at="middle")
    assert low["best_accuracy"]["threshold"] == pytest.approx(_middle(1e-7, 0.9))


def test_the_lowest_cut_flags_every_sample_even_a_score_of_zero():
    assert curve([True, False, True], [0.5, 0.5, 0.2])["threshold"].tolist() == [0.5, 0.2, 0.0]
    zero = curve([True, True, False], [0.5, 0.3, 0.0])
    assert zero["threshold"][-1] < 0.0 and (zero["tp"][-1], zero["fp"][-1]) == (2, 1)
    empty = curve([], [])
    assert (empty["threshold"].tolist(), empty["tp"].tolist(), empty["fp"].tolist()) == ([1.0], [0], [0])
    assert (empty["positives"], empty["n"]) == (0, 0) and operating_points([], []) is None


def test_precision_where_nothing_is_flagged_is_one_and_a_recall_target_met_exactly_counts():
    # the top score is safe: flagging it alone has precision 0, F1 0
    points = operating_points([False, True], [0.9, 0.1])
    assert points["pr_curve"]["precision"] == [1.0, 0.0, 0.5]
    assert points["best_f1"]["f1_unsafe"] == pytest.approx(2 / 3)
    # 2 unsafe in 10, the top score safe: flagging the top 2 (precision 1/2, recall 1/2) is the best F1
    # (1/2), above the top 3 (2/5) and everything (1/3)
    gold, p = [False, True, False, *[False] * 6, True], [0.9, 0.8, 0.7, *[0.5] * 6, 0.1]
    assert operating_points(gold, p)["best_f1"] == pytest.approx(
        {"threshold": 0.7, "accuracy": 0.8, "f1_unsafe": 0.5, "precision": 0.5, "recall": 0.5, "fpr": 1 / 8}
    )
    # nine of ten unsafe above the one safe sample: recall exactly 0.90 at no false alarm
    gold, p = [True] * 9 + [False, True], [0.9] * 9 + [0.5, 0.1]
    assert operating_points(gold, p)["fpr_at_recall"]["0.90"] == {"threshold": 0.5, "fpr": 0.0, "recall": 0.9}


def test_one_class_or_unscored_rows_give_no_operating_points(tmp_path):
    assert operating_points([True, True], [0.2, 0.9]) is None
    rows = [{"label": "不安全", "pred_label": "不安全"}, {"label": "安全", "pred_label": "安全"}]
    assert compute_metrics(rows)["operating_points"] is None  # generate mode has no p_unsafe


def test_generated_labels_record_no_threshold_even_when_the_evaluator_holds_one(tmp_path):
    rows = [
        {"label": "不安全" if g else "安全", "pred_label": "安全", "p_unsafe": None, "threshold": None}
        for g in GOLD
    ]  # generate mode: each label parsed from the guard's text, none decided by a threshold
    metrics = write_metrics(rows, tmp_path, decision=Decision(0.5, 1.0, "default"))
    assert metrics["threshold"] is None and "generated" in metrics["threshold_source"]
    assert json.loads((tmp_path / "metrics.json").read_text())["threshold"] is None
    note = one_sided_note(metrics)  # every label safe: the note must not blame a threshold of 0.5
    assert note is not None and note.endswith("its generated labels do not separate them on this set")


def test_the_table_and_the_pr_curve_say_which_threshold_each_figure_used(tmp_path):
    rows = [
        {
            "label": "不安全" if g else "安全",
            "pred_label": "不安全" if p > 0.5 else "安全",
            "p_unsafe": p,
            "threshold": 0.5,  # each decided row records the threshold that decided it
            "source": "Real Data",
        }
        for g, p in zip(GOLD, P)
    ]
    metrics = write_metrics(rows, tmp_path)
    assert metrics["threshold"] == 0.5 and metrics["threshold_source"] == "recorded in the predictions"
    table = format_table(metrics)
    assert "decision threshold 0.5" in table and "best accuracy 0.8333 at 0.700" in table
    assert "FPR at recall ≥ 90%: 0.3333 (threshold 0.300)" in table
    assert "chosen on the set they are reported on" in table
    assert (tmp_path / "pr_curve.png").stat().st_size > 1000


def _rows(prefix):
    def label(unsafe):
        return "不安全" if unsafe else "安全"

    return [
        {
            "id": f"{prefix}{i}",
            "label": label(g),
            "pred_label": label(p > 0.5),
            "p_unsafe": p,
            "source": "Real Data",
        }
        for i, (g, p) in enumerate(zip(GOLD, P))
    ]


def test_a_calibrated_threshold_decides_every_set_and_is_marked_where_it_was_chosen(tmp_path):
    from libra_train.config_groups import EvalConfig
    from libra_train.eval.evaluator import score_sets

    opts = EvalConfig(threshold="calibrate", calibration_set="dev", calibrate_for="accuracy")
    results, rows = score_sets({"dev": _rows("d"), "test": _rows("t")}, {"dev": 0, "test": 0}, opts, tmp_path)
    assert results["test"]["threshold"] == 0.7  # best accuracy on dev (hand-computed above)
    assert results["test"]["threshold_source"] == "calibrated for accuracy on dev"
    assert "optimistic" in results["dev"]["threshold_source"]
    preds = read_jsonl(tmp_path / "test" / "predictions.jsonl")
    assert [p["pred_label"] for p in preds] == ["不安全", "不安全", "安全", "安全", "安全", "安全"]  # p > 0.7
    assert preds == rows["test"]  # what is written is what the metrics and the tracker are given
    assert results["test"]["average"]["accuracy"] == pytest.approx(5 / 6)  # the dev optimum, same data
    f1, _ = score_sets(
        {"dev": _rows("d")},
        {"dev": 0},
        EvalConfig(threshold="calibrate", calibration_set="dev", calibrate_for="f1"),
        None,
    )
    assert f1["dev"]["threshold"] == 0.3


@pytest.mark.slow  # over the CI budget; the saved threshold is read in tests/export
def test_a_runs_threshold_is_saved_beside_its_checkpoint_and_libra_infer_uses_it(tmp_path):
    from tests.conftest import run_cli

    run_dir = tmp_path / "run"
    run_cli(
        "libra-train",
        f"paths.run_dir={run_dir}",
        "logger=none",
        "data.prepare.num_samples=120",
        "train.max_steps=3",
        "train.batch_size=4",
        "train.save_steps=3",
        "eval.before_training=false",
        "eval.threshold=0.37",
        "format.task=response",  # one view per sample, so every command's rows line up one to one
    )
    checkpoint = run_dir / "stage2_sft" / "checkpoint"
    saved = json.loads((checkpoint / "guard_threshold.json").read_text())
    assert saved == {"threshold": 0.37, "temperature": 1.0, "source": "eval.threshold"}
    assert "| 0.37 (eval.threshold) |" in (run_dir / "report.md").read_text()  # the report says it too
    run_cli(
        "libra-infer",
        f"model={checkpoint}",
        f"data={run_dir / 'data' / 'heldout.jsonl'}",
        f"output_dir={tmp_path / 'preds'}",
    )
    preds = read_jsonl(tmp_path / "preds" / "0-of-1.jsonl")
    assert preds and all((p["pred_label"] == "不安全") == (p["p_unsafe"] > 0.37) for p in preds)
    # One checkpoint, one threshold (the saved one, read by decision_threshold): the pipeline's evaluation,
    # libra-infer, libra-serve's scorer and libra-eval agree on every label and p(unsafe).
    from libra_train.command_config import ServeConfig
    from libra_train.serve.scorer import GuardScorer

    piped = read_jsonl(checkpoint.parent / "eval" / "heldout" / "predictions.jsonl")
    assert [p["id"] for p in piped] == [p["id"] for p in preds]
    assert [p["pred_label"] for p in piped] == [p["pred_label"] for p in preds]
    assert [p["p_unsafe"] for p in piped] == pytest.approx([p["p_unsafe"] for p in preds], abs=1e-5)
    scorer = GuardScorer.load(ServeConfig.from_hydra({"model": str(checkpoint), "device": "cpu"}))
    assert scorer.threshold == 0.37
    served = scorer.score([scorer.prepare(r) for r in read_jsonl(run_dir / "data" / "heldout.jsonl")[:16]])
    assert [s["pred_label"] for s in served] == [p["pred_label"] for p in preds[:16]]
    assert [s["p_unsafe"] for s in served] == pytest.approx([p["p_unsafe"] for p in preds[:16]], abs=1e-5)
    scored = run_cli(
        "libra-eval",
        f"predictions={tmp_path / 'preds'}",
        f"labels={run_dir / 'data' / 'heldout.jsonl'}",
        f"output_dir={tmp_path / 'metrics'}",
    )
    assert scored.returncode == 0
    from_eval = json.loads((tmp_path / "metrics" / "metrics.json").read_text())
    from_run = json.loads((checkpoint.parent / "eval" / "heldout" / "metrics.json").read_text())
    assert from_eval["average"] == pytest.approx(from_run["average"])
    assert from_eval["threshold"] == from_run["threshold"] == 0.37  # the one that decided the rows


@pytest.mark.parametrize("same", [True, False])
def test_the_pr_charts_best_points_never_hide_each_other(same, monkeypatch):
    """One marker naming both where best accuracy and best F1 are one threshold; otherwise a large
    hollow circle around a small filled square, both in the legend."""
    from libra_train import plotting
    from libra_train.eval.operating_points import pr_curve_png

    drawn = {}
    monkeypatch.setattr(plotting, "save", lambda fig, path: drawn.update(fig=fig))
    acc = {"threshold": 0.5, "recall": 0.8, "precision": 0.9}
    f1 = acc if same else {"threshold": 0.3, "recall": 0.8, "precision": 0.9}
    points = {
        "pr_curve": {"recall": [0, 0.8, 1], "precision": [1, 0.9, 0.5]},
        "best_accuracy": acc,
        "best_f1": f1,
    }
    pr_curve_png(points, "unused.png", "set")
    (ax,) = drawn["fig"].axes
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    marks = [line for line in ax.get_lines() if line.get_marker() not in ("None", None, "")]
    if same:
        assert labels == ["best accuracy and best F1 (threshold 0.500)"] and len(marks) == 1
    else:
        assert labels == ["best accuracy (threshold 0.500)", "best F1 (threshold 0.300)"]
        circle, square = marks
        assert (
            circle.get_markerfacecolor() == "none" and circle.get_markersize() > 2 * square.get_markersize()
        )


def test_a_separable_dev_sets_small_temperature_leaves_the_middle_where_its_logits_put_it():
    from libra_train.config_groups import EvalConfig
    from libra_train.eval.evaluator import choose_decision

    def row(i, z, label):
        return {"id": f"{label}{i}", "label": label, "p_unsafe": 1 / (1 + math.exp(-z))}

    # safe at logits -4 and -2, unsafe at 1 and 3: the best interval is (-2, 1), its middle -0.5
    dev = [row(0, -4, "安全"), row(1, -2, "安全"), row(2, 1, "不安全"), row(3, 3, "不安全")]
    opts = EvalConfig(
        threshold="calibrate", temperature="calibrate", calibrate_at="middle", calibration_set="dev"
    )
    decision = choose_decision({"dev": dev}, opts)
    # separable, yet Platt's targets (5/6 and 1/6) keep the fitted temperature from sharpening the scores
    # to 0 and 1, where the middle of their interval would fall at logit 0
    assert decision.temperature > 1
    assert decision.apply(row(4, -0.4, "安全"))["pred_label"] == "不安全"
    assert decision.apply(row(5, -0.6, "安全"))["pred_label"] == "安全"
