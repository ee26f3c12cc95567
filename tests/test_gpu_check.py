"""benchmarks/gpu_check in its CPU dry-run mode: the GPU check's own code, end to end, so it still runs
when someone with a GPU needs it. Slow (`pytest -m slow`): the whole script, with its ZeRO-3 part on two
DeepSpeed ranks and its serving part (the pipeline's own ZeRO-3 path: tests/train/test_distributed.py,
slow as well)."""

import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import BIN, REPO

SINGLE_PROCESS_FIGURES = ("label samples/s", "generate samples/s", "packed tokens/s", "padded tokens/s")


def _env(out) -> dict:
    return {**os.environ, "GPU_CHECK_OUT": str(out), "PATH": f"{BIN}:{os.environ['PATH']}"}


def _run(cmd: list[str], out) -> str:
    proc = subprocess.run(cmd, cwd=REPO, env=_env(out), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _figure(table: str, name: str) -> float:
    value = re.search(rf"\| {re.escape(name)} \| ([0-9.]+) \|", table)
    assert value, table
    return float(value.group(1))


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.skipif(shutil.which("gcc") is None, reason="DeepSpeed's CPU comm op needs gcc")
def test_the_gpu_check_dry_run_prints_every_figure(tmp_path):
    table = _run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--dry-run"], tmp_path)
    for name in SINGLE_PROCESS_FIGURES:
        assert _figure(table, name) > 0, name
    assert re.search(r"ZeRO-3 on 2 ranks \| tokens/s \| [1-9]", table), table
    assert re.search(r"serving at 32 clients \| libra-serve requests/s \| [1-9]", table), table
    assert "device: cpu" in table and "dry run" in table
