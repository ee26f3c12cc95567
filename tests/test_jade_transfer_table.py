"""benchmarks/jade_transfer_table.py, run as a command on hand-made run manifests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "jade_transfer_table.py"


def _manifest(run: Path, stage1_accuracy: float, test_accuracy: float) -> None:
    def result(accuracy: float) -> dict:
        return {"average": {"accuracy": accuracy}, "threshold": 0.3}

    stages = [
        {"name": "stage1_pretrain", "eval": {"jade_test": result(stage1_accuracy)}},
        {"name": "stage2_sft", "eval": {"jade_test": result(test_accuracy), "heldout": result(0.9)}},
    ]
    run.mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"stages": stages}))


def test_every_finished_arm_is_a_row_the_known_ones_first(tmp_path):
    _manifest(tmp_path / "zz_new_arm-seed0", 0.5, 0.8)
    _manifest(tmp_path / "zz_new_arm-seed1", 0.7, 1.0)
    _manifest(tmp_path / "layouts-seed0", 0.86, 0.977)
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, check=True
    )
    arms = [line.split(" | ")[0].removeprefix("| ") for line in out.stdout.splitlines()[2:]]
    assert [a for a in arms if a] == ["layouts", "zz_new_arm"]
    # two seeds: mean ± sample sd of 0.8 and 1.0 on JADE test, of 0.5 and 0.7 after stage 1 alone
    new_row = next(line for line in out.stdout.splitlines() if line.startswith("| zz_new_arm |"))
    assert new_row.startswith("| zz_new_arm | 2 | 0.900 ± 0.141 |") and new_row.endswith("| 0.600 ± 0.141 |")
