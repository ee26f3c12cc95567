"""benchmarks/errors_by_meta.py, run as a command on hand-made predictions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import write_jsonl

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "errors_by_meta.py"


def _row(label, pred, shape, task="response"):
    return {"label": label, "pred_label": pred, "task": task, "meta": {"response_shape": shape}}


def test_errors_are_counted_by_label_and_field_for_every_stage(tmp_path):
    run = tmp_path / "arm-seed0"
    for stage in ("stage1_pretrain", "stage2_sft"):
        (run / stage / "eval" / "heldout").mkdir(parents=True)
    write_jsonl(run / "stage1_pretrain/eval/heldout/predictions.jsonl", [
        _row("安全", "不安全", "sectioned"), _row("安全", "安全", "sectioned"),
        _row("不安全", "不安全", "list"),
        _row("安全", "不安全", "sectioned", task="question"),  # a question alone has no response shape
    ])  # fmt: skip
    write_jsonl(run / "stage2_sft/eval/heldout/predictions.jsonl", [
        _row("安全", "不安全", "sectioned"), _row("安全", "不安全", "sectioned"),
        _row("不安全", "安全", "list"),
    ])  # fmt: skip
    out = subprocess.run([sys.executable, str(SCRIPT), str(run)], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [
        "| label | response_shape | arm-seed0 stage1_pretrain | arm-seed0 stage2_sft |",
        "|---|---|---|---|",
        "| 不安全 | list | 0 of 1 | 1 of 1 |",
        "| 安全 | sectioned | 1 of 2 | 2 of 2 |",
    ]


def test_a_run_without_the_set_is_named(tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), "--set", "jade_test"],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode != 0 and f"no jade_test/predictions.jsonl under {tmp_path}" in out.stderr
