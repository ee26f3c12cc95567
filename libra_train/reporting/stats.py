"""How sure an ablation's figures are: a 95% interval for each arm's accuracy, and for its difference from
a baseline arm, by a two-level bootstrap (the seeds, then the test samples), with a verdict on each
difference.

An arm is a matrix of per-sample correctness, one row per seed, one column per test sample (the same
samples, in the same order, for every arm). Each bootstrap draw picks the seeds with replacement and the
samples with replacement; the samples drawn are shared by the arms being compared, so a difference is
paired on the samples (two one-seed arms that err on the same samples differ by exactly nothing, whatever
the set's size), while each arm's seeds are drawn on their own: they are separate runs.
"""

from __future__ import annotations

import numpy as np

DRAWS = 4000
LEVEL = 0.95


def arm_interval(correct: np.ndarray, draws: int = DRAWS, seed: int = 0) -> dict:
    """An arm's mean accuracy over its seeds and samples, its standard deviation over seeds, and a 95%
    interval; the counts of seeds and samples behind them."""
    correct = _matrix(correct)
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, correct.shape[1], size=(draws, correct.shape[1]))
    replicate = _replicates(correct, samples, rng)
    return _summary(correct.mean(), replicate) | {
        "sd_over_seeds": float(correct.mean(axis=1).std(ddof=1)) if correct.shape[0] > 1 else 0.0,
        "seeds": correct.shape[0],
        "samples": correct.shape[1],
    }


def paired_difference(arm: np.ndarray, baseline: np.ndarray, draws: int = DRAWS, seed: int = 0) -> dict:
    """arm − baseline in mean accuracy, with a 95% interval from draws that share the samples, and the
    verdict: better or worse where the interval excludes 0, else not distinguishable at this n."""
    arm, baseline = _matrix(arm), _matrix(baseline)
    if arm.shape[1] != baseline.shape[1]:
        raise ValueError(f"the arms were scored on different samples ({arm.shape[1]} vs {baseline.shape[1]})")
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, arm.shape[1], size=(draws, arm.shape[1]))
    replicate = _replicates(arm, samples, rng) - _replicates(baseline, samples, rng)
    summary = _summary(arm.mean() - baseline.mean(), replicate)
    summary["verdict"] = (
        "better"
        if summary["low"] > 0
        else "worse"
        if summary["high"] < 0
        else "not distinguishable at this n"
    )
    return summary


def _matrix(correct) -> np.ndarray:
    matrix = np.asarray(correct, dtype=float)
    if matrix.ndim != 2 or 0 in matrix.shape:
        raise ValueError("correctness must be a non-empty seeds × samples matrix")
    return matrix


def _replicates(correct: np.ndarray, samples: np.ndarray, rng) -> np.ndarray:
    """One mean accuracy per draw: seeds drawn with replacement, then the draw's samples."""
    seeds = rng.integers(0, correct.shape[0], size=(samples.shape[0], correct.shape[0]))
    chunk = max(1, 2_000_000 // correct.size)  # draws at a time: a few MB, whatever the test set's size
    means = [
        correct[seeds[i : i + chunk, :, None], samples[i : i + chunk, None, :]].mean(axis=(1, 2))
        for i in range(0, samples.shape[0], chunk)
    ]
    return np.concatenate(means)


def _summary(point: float, replicate: np.ndarray) -> dict:
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(replicate, [tail, 100 - tail])
    return {"mean": float(point), "low": float(low), "high": float(high)}
