"""The ablation report's statistics (reporting/stats.py) on cases computed by hand."""

import numpy as np
import pytest

from libra_train.reporting.stats import arm_interval, paired_difference


def test_a_constant_arm_has_no_spread():
    assert arm_interval(np.ones((3, 10))) == {
        "mean": 1.0,
        "low": 1.0,
        "high": 1.0,
        "sd_over_seeds": 0.0,
        "seeds": 3,
        "samples": 10,
    }


def test_one_seed_matches_the_normal_interval_of_a_proportion():
    # 400 samples, 200 right: 0.5 ± 1.96·sqrt(0.25/400) = 0.5 ± 0.049
    result = arm_interval(np.array([[1, 0] * 200]))
    assert result["mean"] == 0.5 and result["sd_over_seeds"] == 0.0
    assert result["low"] == pytest.approx(0.451, abs=0.01) and result["high"] == pytest.approx(
        0.549, abs=0.01
    )


def test_seeds_add_their_own_spread():
    # seed accuracies 0.6, 0.8, 1.0 over 50 samples: mean 0.8, sample sd 0.2
    seeds = np.array([[1] * 30 + [0] * 20, [1] * 40 + [0] * 10, [1] * 50])
    result = arm_interval(seeds)
    assert result["mean"] == pytest.approx(0.8) and result["sd_over_seeds"] == pytest.approx(0.2)
    one_seed = arm_interval(np.array([[1] * 40 + [0] * 10]))  # the same mean and samples, one seed
    assert result["high"] - result["low"] > one_seed["high"] - one_seed["low"]


def test_the_same_errors_on_the_same_samples_differ_by_nothing():
    arm = np.array([[1, 0, 1, 1, 0] * 20])
    assert paired_difference(arm, arm) == {
        "mean": 0.0,
        "low": 0.0,
        "high": 0.0,
        "verdict": "not distinguishable at this n",
    }


def test_a_difference_is_better_worse_or_not_distinguishable():
    right, wrong = np.ones((2, 40)), np.zeros((2, 40))
    assert paired_difference(right, wrong)["verdict"] == "better"
    assert paired_difference(wrong, right) == {"mean": -1.0, "low": -1.0, "high": -1.0, "verdict": "worse"}
    # one error apart on 96 samples (JADE test's size): 0.0104, which the interval cannot tell from 0
    base = np.array([[1] * 90 + [0] * 6])
    arm = np.array([[1] * 91 + [0] * 5])
    close = paired_difference(arm, base)
    assert close["mean"] == pytest.approx(1 / 96) and close["verdict"] == "not distinguishable at this n"


def test_arms_scored_on_different_samples_are_refused():
    with pytest.raises(ValueError, match="different samples"):
        paired_difference(np.ones((1, 3)), np.ones((1, 4)))
