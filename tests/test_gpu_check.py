"""benchmarks/gpu_check.sh in its CPU dry-run mode: the GPU check's own code, end to end, so it still
runs when someone with a GPU needs it."""

import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import BIN, REPO


@pytest.mark.skipif(shutil.which("gcc") is None, reason="DeepSpeed's CPU comm op needs gcc")
def test_the_gpu_check_dry_run_prints_every_figure(tmp_path):
    env = {
        **os.environ,
        "GPU_CHECK_OUT": str(tmp_path),
        "PATH": f"{BIN}:{os.environ['PATH']}",
    }
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--dry-run"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = proc.stdout
    for figure in ("label samples/s", "generate samples/s", "packed tokens/s", "padded tokens/s"):
        value = re.search(rf"\| {re.escape(figure)} \| ([0-9.]+) \|", table)
        assert value and float(value.group(1)) > 0, table
    assert re.search(r"ZeRO-3 on 2 ranks \| tokens/s \| [1-9]", table), table
    assert "device: cpu" in table and "dry run" in table
