"""benchmarks/threshold_rules.py, run as a command on hand-made scores (kept scores are not scored again)."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_jsonl

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "threshold_rules.py"


def _rows(safe: list[float], unsafe: list[float], refusal: bool = False) -> list[dict]:
    """Records scored at these logits of p(unsafe)."""

    def row(i, z, label):
        sample = {"id": f"{label}-{i}", "question": "问", "response": "答", "label": label}
        return {**sample, "p_unsafe": 1 / (1 + math.exp(-z)), "meta": {"refusal": refusal}}

    safe_rows = [row(i, z, "安全") for i, z in enumerate(safe)]
    return safe_rows + [row(i, z, "不安全") for i, z in enumerate(unsafe)]


def test_each_rule_chooses_its_cut_and_is_scored_on_every_set(tmp_path):
    run = tmp_path / "arm-seed0"
    (run / "stage2_sft/checkpoint").mkdir(parents=True)
    (run / "config.yaml").write_text("seed: 0\n")
    scores = run / "threshold_rules/stage2_sft"
    scores.mkdir(parents=True)
    sets = {
        "jade_dev": _rows([-4, -2], [2, 4]),  # best interval (-2, 2): middle 0
        "dev_helpful_safe": _rows([1], []),  # with it, (1, 2): middle 1.5
        "synthetic_dev": _rows([2.5, 2.6], [6]),  # with JADE dev, one error at best, in (2.6, 4): 3.3
        "dev_written_safe": _rows([0.5], []),  # with JADE dev, (0.5, 2): middle 1.25
        "dev_written": _rows([2.5, 3], [1, 6]),  # alone, one error at best, in (3, 6): 4.5
        "jade_test": _rows([-1], [0.5, 3.5]),
        "test_helpful": _rows([1], [5]),
        "test_swapped": _rows([-0.2], [1]),
        "test_written": _rows([3], [5.5]),
        "heldout": _rows([2], [4]) + [{**_rows([-3], [], refusal=True)[0], "id": "refusal"}],
    }
    for name, rows in sets.items():
        write_jsonl(scores / f"{name}.jsonl", rows)
    command = [sys.executable, str(SCRIPT), str(tmp_path)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    run_rows = [line for line in out.stdout.splitlines() if line.startswith("| arm-seed0, stage2_sft ")]
    rows = [line.removeprefix("| arm-seed0, stage2_sft ") for line in run_rows]
    assert rows[:8] == [
        # JADE test's best cut scores 1.0, so its gap is 1 − accuracy at the rule's cut
        "| jade_dev | +0.00 | 1.000 | 0.500 | 1.000 | 0.500 | 0.667 | 0.000 | 1.000 |",
        "| p=0.5 | +0.00 | 1.000 | 0.500 | 1.000 | 0.500 | 0.667 | 0.000 | 1.000 |",
        "| jade_dev+helpful | +1.50 | 0.667 | 1.000 | 0.500 | 0.500 | 0.667 | 0.333 | 1.000 |",
        "| jade_dev+synthetic_dev | +3.30 | 0.667 | 1.000 | 0.500 | 1.000 | 1.000 | 0.333 | 0.000 |",
        "| jade_dev+written_dev | +1.25 | 0.667 | 1.000 | 0.500 | 0.500 | 0.667 | 0.333 | 1.000 |",
        # 4.5 passes the written answer at 3 and the held-out helpful one at 2, and misses 3.5 and 4
        "| written_dev | +4.50 | 0.333 | 1.000 | 0.500 | 1.000 | 0.667 | 0.667 | 0.000 |",
        # (-2, 2) is symmetric: its middle in p, σ⁻¹((σ(-2) + σ(2)) / 2), is 0 as well
        "| jade_dev, middle in p | +0.00 | 1.000 | 0.500 | 1.000 | 0.500 | 0.667 | 0.000 | 1.000 |",
        # mean of the two accuracies: 0.875 in (2.6, 4) (JADE dev 0.75, synthetic dev 1), 0.667 in (-2, 2)
        "| jade_dev & synthetic_dev, each half | +3.30 "
        "| 0.667 | 1.000 | 0.500 | 1.000 | 1.000 | 0.333 | 0.000 |",
    ]
    mean = "| jade_dev+synthetic_dev | | 0.667 | 1.000 | 0.500 | 1.000 | 1.000 | 0.333 | 0.000 |"
    assert "| **mean of 1, stage2_sft** " + mean in out.stdout
    # the temperature row: ECE of JADE test untempered, p = σ(−1), σ(0.5), σ(3.5) in bins 2, 6 and 9:
    # (0.269 + (1 − 0.622) + (1 − 0.971)) / 3 = 0.225
    temperature, untempered_test = rows[8].strip("| ").split(" | ")[:2]
    assert float(temperature) > 1 and untempered_test.startswith("0.225 → ")


def test_a_folder_without_runs_is_named(tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True)
    assert out.returncode != 0 and f"no finished run (RUN-seedS/config.yaml) under {tmp_path}" in out.stderr


def _script():
    spec = importlib.util.spec_from_file_location("threshold_rules", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_middle_in_p_of_an_asymmetric_interval():
    rules = _script()
    rows = _rows([-4, -3], [1, 5])  # best interval (-3, 1): its logit middle is -1
    assert rules.middle_cut(rows) == pytest.approx(-1.0)
    # σ(-3) = 0.047426, σ(1) = 0.731059: mean 0.389242, whose logit is ln(0.389242 / 0.610758) = -0.450499
    assert rules.p_middle_cut(rows) == pytest.approx(-0.450499, abs=1e-5)


def test_each_set_weighs_half_where_pooling_lets_the_larger_outvote_the_smaller():
    rules = _script()
    small, large = _rows([-1], [1]), _rows([2, 2, 2], [3] * 9)
    # pooled: 13 of 14 right in (2, 3), against 11 in (-1, 1); each half: (0.5 + 1) / 2 = 0.75 in (2, 3),
    # against (1 + 9 / 12) / 2 = 0.875 in (-1, 1)
    assert rules.middle_cut(small + large) == pytest.approx(2.5)
    assert rules.balanced_cut([small, large]) == pytest.approx(0.0)
