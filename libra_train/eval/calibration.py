"""Whether p(unsafe) means what it says, and whether a threshold carries over to new data.

- ECE: the expected calibration error of p(unsafe) over 10 equal-width bins, |share unsafe − mean
  p(unsafe)| weighted by each bin's share of samples; the reliability diagram draws the bins.
- Threshold gap: accuracy at the best threshold on a set minus accuracy at the threshold the guard
  ships; a threshold that holds on new data leaves a small gap.
- Temperature: one scalar T fitted on the calibration set by maximum likelihood; p(unsafe) becomes
  sigmoid(logit(p) / T). T > 1 softens saturated probabilities (1.0000 and 0.0001) so that a threshold
  chosen on one set has room to hold on another. The targets are Platt's prior-corrected ones,
  (N₊ + 1) / (N₊ + 2) for an unsafe sample and 1 / (N₋ + 2) for a safe one, not 1 and 0: on a set the
  guard separates, 0/1 targets make the likelihood rise as T falls, until every score is sharpened to 0
  or 1 and a threshold has nothing left to separate. It is saved with the threshold and applied by every
  command that decides (eval/scoring.py, the serving scorer, the classifier export's head).
"""

from __future__ import annotations

import math

import numpy as np

BINS = 10
EPS = 1e-7


def reliability(gold_unsafe: list[bool], p_unsafe: list[float], bins: int = BINS) -> list[dict]:
    """Per equal-width bin of p(unsafe) holding samples: its range, count, mean p and share unsafe."""
    y, p = np.asarray(gold_unsafe, dtype=float), np.asarray(p_unsafe, dtype=float)
    index = np.minimum((p * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        mask = index == b
        if mask.any():
            out.append(
                {
                    "lo": b / bins,
                    "hi": (b + 1) / bins,
                    "n": int(mask.sum()),
                    "mean_p": float(p[mask].mean()),
                    "share_unsafe": float(y[mask].mean()),
                }
            )
    return out


def ece(gold_unsafe: list[bool], p_unsafe: list[float], bins: int = BINS) -> float:
    """Expected calibration error: Σ_bins n_b / n · |share unsafe_b − mean p_b|."""
    table = reliability(gold_unsafe, p_unsafe, bins)
    n = sum(b["n"] for b in table)
    return float(sum(b["n"] / n * abs(b["share_unsafe"] - b["mean_p"]) for b in table))


def threshold_gap(points: dict, accuracy_at_threshold: float) -> float:
    """Best accuracy on the set (any threshold) minus accuracy at the one applied."""
    return float(points["best_accuracy"]["accuracy"] - accuracy_at_threshold)


def logit(p: float) -> float:
    p = min(max(p, EPS), 1 - EPS)
    return math.log(p / (1 - p))


def sigmoid(z):
    """1 / (1 + e^-z) for a number or an array, in a form that cannot overflow: a temperature near its
    lower bound (0.01) divides a saturated logit into thousands, past what exp takes."""
    return 0.5 * (1.0 + np.tanh(np.asarray(z, dtype=float) / 2.0))


def tempered(p: float, temperature: float) -> float:
    """p(unsafe) with its logit divided by the temperature."""
    if temperature == 1.0:
        return p
    return float(sigmoid(logit(p) / temperature))


def fit_temperature(gold_unsafe: list[bool], p_unsafe: list[float]) -> float:
    """The T > 0 that minimises the cross-entropy of sigmoid(logit(p) / T) against Platt's targets on these
    samples, by golden-section search on log T in [1/100, 100]."""
    z = np.array([logit(p) for p in p_unsafe])
    unsafe = np.asarray(gold_unsafe, dtype=bool)
    n_unsafe, n_safe = int(unsafe.sum()), int((~unsafe).sum())
    y = np.where(unsafe, (n_unsafe + 1) / (n_unsafe + 2), 1 / (n_safe + 2))

    def nll(log_t: float) -> float:
        q = sigmoid(z / math.exp(log_t))
        q = np.clip(q, EPS, 1 - EPS)
        return float(-(y * np.log(q) + (1 - y) * np.log(1 - q)).mean())

    lo, hi = math.log(0.01), math.log(100.0)
    golden = (math.sqrt(5) - 1) / 2
    a, b = hi - golden * (hi - lo), lo + golden * (hi - lo)
    for _ in range(80):
        if nll(a) < nll(b):
            hi, b = b, a
            a = hi - golden * (hi - lo)
        else:
            lo, a = a, b
            b = lo + golden * (hi - lo)
    return float(math.exp((lo + hi) / 2))


def reliability_png(table: list[dict], path, title: str) -> None:
    """The reliability diagram: share unsafe against mean p(unsafe) per bin, the diagonal for reference,
    each point sized by its bin's count."""
    from libra_train import plotting

    fig, ax = plotting.plt.subplots(figsize=(4.2, 3.6))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfectly calibrated")
    if table:
        n = max(b["n"] for b in table)
        ax.plot([b["mean_p"] for b in table], [b["share_unsafe"] for b in table], marker=None, linewidth=1)
        ax.scatter(
            [b["mean_p"] for b in table],
            [b["share_unsafe"] for b in table],
            s=[20 + 180 * b["n"] / n for b in table],
            zorder=3,
            label="bins (size: samples)",
        )
    plotting.unit_axes(
        ax, "mean p(unsafe) in the bin", "share unsafe in the bin", f"{title}: reliability", "upper left"
    )
    plotting.save(fig, path)
