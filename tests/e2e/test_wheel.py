"""A wheel works outside the source tree: conf/ travels inside the package, so a non-editable install
composes its configs and runs a short pipeline."""

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import REPO, read_jsonl


def _sh(*cmd, cwd=None, timeout=600):
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


TOP_LEVEL_SKIP = {".git", ".venv", "build", "dist", "mutants", "data", "outputs", "multirun", "wandb"}


def _not_source(folder, names):
    """Run outputs, data and caches, which a checkout may hold: at the top level only (libra_train/data
    and conf/data are source)."""
    top = Path(folder) == REPO
    return [
        n for n in names if (top and n in TOP_LEVEL_SKIP) or n == "__pycache__" or n.endswith(".egg-info")
    ]


@pytest.mark.slow
def test_a_wheel_installed_outside_the_tree_runs_a_short_pipeline(tmp_path):
    source = tmp_path / "source"  # a copy: setuptools' build/ cache in the checkout could hold stale files
    shutil.copytree(REPO, source, symlinks=True, ignore=_not_source)
    _sh(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(source), "-w", str(tmp_path / "dist"))
    (wheel,) = (tmp_path / "dist").glob("libra_train-*.whl")
    venv = tmp_path / "venv"
    _sh(sys.executable, "-m", "venv", str(venv))
    # The dependencies come from this environment (a plain path entry, so its editable finder stays
    # off); the package itself only from the wheel.
    site = next((venv / "lib").glob("python*/site-packages"))
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _sh(str(venv / "bin" / "pip"), "install", "-q", "--no-deps", str(wheel))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    probe = "import libra_train.cli_utils as c; print(c.__file__); print(c.CONF_DIR)"
    where = _sh(str(venv / "bin" / "python"), "-c", probe, cwd=outside)
    module, conf = where.stdout.split()
    assert module.startswith(str(venv)) and conf.startswith(str(venv)) and not conf.startswith(str(REPO))
    run_dir = outside / "run"
    _sh(
        str(venv / "bin" / "libra-train"),
        f"paths.run_dir={run_dir}",
        "logger=none",
        "data.prepare.num_samples=60",
        "train.max_steps=2",
        "train.batch_size=4",
        "train.save_steps=2",
        "eval.before_training=false",
        cwd=outside,
    )
    manifest = (run_dir / "manifest.json").read_text()
    assert '"done"' in manifest and read_jsonl(
        run_dir / "stage2_sft" / "eval" / "heldout" / "predictions.jsonl"
    )
