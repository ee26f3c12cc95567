"""The arm benchmarks' command lines still compose and pass libra-train's config checks: each script is run
with a stand-in libra-train that records its arguments, and every recorded command line is composed and
checked in process, as libra-train would check it before a run. A recipe key that a script's overrides
leave unread (a calibration set with a fixed threshold, an ensemble setting with one member) fails here,
not an hour into a sweep."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_config

REPO = Path(__file__).resolve().parents[1]
RECORDER = """#!/usr/bin/env bash
{python} -c 'import json, os, sys, uuid
open(os.path.join(os.environ["RECORD_DIR"], uuid.uuid4().hex + ".json"), "w").write(json.dumps(sys.argv[1:]))
' "$@"
"""
# libra-report has no runs to read: it only has to succeed
STANDS_IN = {"libra-train": RECORDER, "libra-report": "#!/usr/bin/env bash\n"}
JADE_ARMS = (
    "edge replay calibrated replay_calibrated smoothed first_vocab counter counter_helpful "
    "counter_helpful_1pass response_only layouts decay decay_stage1 counter_replay_all "
    "counter_helpful_stopped counter_helpful_stopped2 layouts_replay_all written"
)
SCRIPTS = {  # script: (its arguments, its environment, the libra-train runs it makes: one per arm)
    "cold_curriculum.sh": (["COLD", "OUT", "480", "0"], {"TRIM_VOCAB": "true"}, 4),
    "jade_transfer.sh": (["JADE", "OUT", "0", "0", "1"], {"ARMS": JADE_ARMS}, len(JADE_ARMS.split())),
    "jade_curriculum.sh": (["JADE", "OUT", "240", "0", "1"], {}, 6),
}


def recorded_calls(tmp_path: Path, script: str) -> list[list[str]]:
    args, env, _ = SCRIPTS[script]
    bin_dir, record_dir = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    record_dir.mkdir()
    for command, text in STANDS_IN.items():
        (bin_dir / command).write_text(text.format(python=sys.executable))
        (bin_dir / command).chmod(0o755)
    paths = {"COLD": str(tmp_path / "cold"), "JADE": str(tmp_path / "jade"), "OUT": str(tmp_path / "out")}
    (tmp_path / "cold").mkdir()
    for split in ("train", "dev", "test"):  # the config checks that COLD's imported files are there
        (tmp_path / "cold" / f"{split}.jsonl").touch()
    subprocess.run(
        ["bash", str(REPO / "benchmarks" / script), *[paths.get(a, a) for a in args]],
        env={**os.environ, **env, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RECORD_DIR": str(record_dir)},
        cwd=REPO,
        capture_output=True,
        check=False,  # a script's own table step reads runs the stand-in never made
    )
    return [json.loads(p.read_text()) for p in sorted(record_dir.iterdir())]


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_arm_of_a_benchmark_script_passes_the_config_checks(tmp_path, script):
    calls = recorded_calls(tmp_path, script)
    assert len(calls) == SCRIPTS[script][2]
    for call in calls:
        # run_config sets the run directory and the logger itself
        overrides = [a for a in call if not a.startswith(("paths.run_dir=", "logger="))]
        run_config(tmp_path / "run", *overrides)
