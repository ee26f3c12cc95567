"""libra-report's learning curves and the effective data transferred (reporting/curves.py), by hand."""

import math

import pytest

from libra_train.errors import LibraError
from libra_train.reporting.curves import curves, samples_to_reach, transferred

AXIS = "stage2_limit"


def _arm(curriculum, budget, mean):
    return {
        "axes": {"curriculum": curriculum, AXIS: budget},
        "mean": mean,
        "low": mean - 0.05,
        "high": mean + 0.05,
    }


# sft_only climbs 0.60 → 0.70 → 0.80 at 100, 200, 400 samples; two_stage starts at 0.70
TABLE = {
    "baseline": 0,
    "arms": [
        _arm("sft_only", None, 0.85),
        _arm("sft_only", 400, 0.80),
        _arm("sft_only", 100, 0.60),
        _arm("sft_only", 200, 0.70),
        _arm("two_stage", 100, 0.70),
        _arm("two_stage", 200, 0.75),
        _arm("two_stage", 400, 0.90),
    ],
}


def test_curves_are_ordered_by_budget_with_all_of_the_data_last():
    lines = curves(TABLE, AXIS)
    assert [p["x"] for p in lines["sft_only"]] == [100, 200, 400, None]
    assert [p["mean"] for p in lines["two_stage"]] == [0.70, 0.75, 0.90]


def test_the_budget_to_reach_an_accuracy_is_interpolated_in_log_budget():
    sft = curves(TABLE, AXIS)["sft_only"]
    assert samples_to_reach(sft, 0.70) == pytest.approx(200)
    # 0.75 lies halfway from 0.70 (200) to 0.80 (400): the geometric mean, 200·√2
    assert samples_to_reach(sft, 0.75) == pytest.approx(200 * math.sqrt(2))
    assert samples_to_reach(sft, 0.50) == pytest.approx(100)  # already there at the smallest budget
    assert samples_to_reach(sft, 0.95) is None  # "all" (null) has no size, so it is not read off


def test_effective_data_transferred_at_each_budget():
    rows = transferred(curves(TABLE, AXIS))
    assert [(r["budget"], r["baseline_needs"]) for r in rows] == [
        (100, pytest.approx(200)),
        (200, pytest.approx(200 * math.sqrt(2))),
        (400, None),  # 0.90: more than sft_only reached at any measured budget
    ]
    assert rows[0]["transferred"] == pytest.approx(100) and rows[2]["transferred"] is None
    assert transferred(curves({"arms": [_arm("two_stage", 100, 0.7)]}, AXIS)) == []  # no sft_only arm


def test_one_point_zero_beside_counts_is_all_of_the_data_and_counts_refuse_smaller_fractions():
    arms = [_arm("sft_only", "1.0", 0.85), _arm("sft_only", 100, 0.60), _arm("sft_only", 1000, 0.70)]
    table = {"arms": arms}
    assert [p["x"] for p in curves(table, AXIS)["sft_only"]] == [100, 1000, None]
    fractions = {"arms": [_arm("sft_only", "1.0", 0.85), _arm("sft_only", "0.25", 0.70)]}
    assert [p["x"] for p in curves(fractions, AXIS)["sft_only"]] == [0.25, 1.0]  # a fraction axis keeps it
    mixed = {"arms": [_arm("sft_only", "0.5", 0.85), _arm("sft_only", 100, 0.60)]}
    with pytest.raises(LibraError, match="stage2_limit mixes sample counts and fractions"):
        curves(mixed, AXIS)
