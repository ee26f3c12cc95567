"""report.md as a reader opens it: every picture it links exists and is a real image of a sensible size,
Chinese category names are drawn with a font that has their glyphs, and the mistakes it lists are the
most confident ones."""

import json
import re

import pytest
from matplotlib import font_manager, image
from matplotlib.ft2font import FT2Font

from libra_train import plotting
from libra_train.reporting.run_figures import confidently_wrong
from tests.conftest import write_jsonl


def test_report_links_only_real_images_and_shows_curves_categories_and_mistakes(trained_run):
    report = (trained_run / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert {"loss.png", "accuracy.png", "per_category.png"} <= set(links)
    assert "stage2_sft/eval/heldout/pr_curve.png" in links
    for link in links:
        pixels = image.imread(trained_run / link)  # fails on a missing or broken file
        height, width = pixels.shape[:2]
        assert 300 <= width <= 2000 and 200 <= height <= 1500, (link, width, height)
    manifest = json.loads((trained_run / "manifest.json").read_text())
    curve = manifest["stages"][0]["train"]["loss_curve"]
    assert len(curve) >= 5 and curve[0][0] < curve[-1][0]  # the whole stage, not its first and last loss
    assert "### heldout (threshold 0.5)" in report and "most confidently wrong" in report
    for name in manifest["stages"][-1]["eval"]["heldout"]["per_category"]:
        assert f"| {name} |" in report


def test_chinese_category_names_come_from_a_font_with_their_glyphs():
    assert plotting._FONT is not None  # the packaged Noto Sans CJK SC, when the machine has none
    font = FT2Font(font_manager.findfont(plotting._FONT, fallback_to_default=False))
    for name in ("违法犯罪", "偏见歧视", "隐私财产", "身心健康", "谣言错误", "仇恨辱骂", "伦理道德"):
        assert plotting.display_name(name) == name
        assert all(font.get_char_index(ord(ch)) for ch in name), name


def test_confidently_wrong_lists_mistakes_farthest_from_the_threshold(tmp_path):
    rows = [
        {"id": "a", "label": "安全", "pred_label": "不安全", "p_unsafe": 0.6},
        {"id": "b", "label": "不安全", "pred_label": "安全", "p_unsafe": 0.05},  # |0.05 - 0.3| = 0.25
        {"id": "c", "label": "安全", "pred_label": "不安全", "p_unsafe": 0.95},  # 0.65: first
        {"id": "d", "label": "安全", "pred_label": "安全", "p_unsafe": 0.01},  # right: never listed
        {"id": "e", "label": "不安全", "pred_label": None, "p_unsafe": None},  # no score: not ranked
    ]
    path = write_jsonl(tmp_path / "predictions.jsonl", rows)
    assert [r["id"] for r in confidently_wrong(path, threshold=0.3)] == ["c", "a", "b"]
    assert [r["id"] for r in confidently_wrong(path, threshold=0.3, n=2)] == ["c", "a"]
    assert confidently_wrong(tmp_path / "missing.jsonl", 0.5) == []


@pytest.mark.parametrize("stages", [[], [{"name": "s", "train": {"steps": 3}}]])
def test_no_loss_chart_without_a_curve(tmp_path, stages):
    from libra_train.reporting.run_figures import loss_chart

    assert loss_chart(tmp_path / "loss.png", stages) is None and not (tmp_path / "loss.png").exists()


def test_the_report_shows_operating_points_and_says_when_a_guard_calls_a_whole_set_one_label(tmp_path):
    """report.md's last-stage section gives each set's operating points as a table; a set on which the
    guard gave every sample one label, though it holds both, is named under the main table."""
    from libra_train.reporting.run_report import write_run_report

    points = {
        "best_accuracy": {"threshold": 0.42, "recall": 0.9, "fpr": 0.1},
        "best_f1": {"threshold": 0.3, "recall": 0.95, "fpr": 0.2},
        "fpr_at_recall": {"0.95": {"threshold": 0.3, "recall": 0.95, "fpr": 0.2}},
    }
    fine = {"per_source": {"JADE": {"accuracy": 0.9, "f1_safe": 0.9, "f1_unsafe": 0.9, "n": 20}},
            "average": {"accuracy": 0.9, "f1_safe": 0.9, "f1_unsafe": 0.9}, "n": 20, "parse_failures": 0,
            "confusion": {"tp": 9, "fn": 1, "fp": 1, "tn": 9}, "operating_points": points}  # fmt: skip
    all_unsafe = {**fine, "confusion": {"tp": 10, "fn": 0, "fp": 10, "tn": 0}, "threshold": 0.0025,
                  "threshold_source": "calibrated for accuracy on jade_dev"}  # fmt: skip
    manifest = {
        "stages": [{"name": "stage2_sft", "status": "done", "eval": {"jade": fine, "heldout": all_unsafe}}]
    }
    report = write_run_report(tmp_path, manifest, "t").read_text()
    assert "**stage2_sft on `heldout`**: the guard calls every one of its 20 samples unsafe" in report
    assert "threshold 0.0025 (calibrated for accuracy on jade_dev) does not separate them" in report
    assert "`jade`**" not in report
    assert "| best accuracy | 0.4200 | 0.9000 | 0.1000 |" in report and "| recall ≥ 0.95 | 0.3000 |" in report
