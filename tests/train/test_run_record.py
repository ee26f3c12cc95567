"""A run directory's record stays true: config.yaml is what trained the stages that are there."""

import json

from tests.conftest import TINY_TRAIN, run_cli

ARGS = [
    *[a for a in TINY_TRAIN if not a.startswith(("train.max_steps", "eval.before", "data.prepare.num"))],
    "data.prepare.num_samples=120",
    "train.max_steps=2",
    "eval.before_training=false",
]


def test_a_rerun_is_refused_if_it_would_change_a_finished_stage_and_recorded_if_intended(tmp_path):
    finished = tmp_path / "run"
    run_cli("libra-train", f"paths.run_dir={finished}", *ARGS)
    config = (finished / "config.yaml").read_bytes()
    manifest = (finished / "manifest.json").read_bytes()
    proc = run_cli("libra-train", f"paths.run_dir={finished}", *ARGS, "train.learning_rate=1e-5", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    line = proc.stderr.strip()
    assert line.startswith("error: config 'train.learning_rate': differs from") and "\n" not in line
    assert "0.003 → 1e-05" in line and "paths.run_dir" in line and "allow_changes=true" in line
    assert (finished / "config.yaml").read_bytes() == config  # still what trained the stages
    assert (finished / "manifest.json").read_bytes() == manifest

    # An intended change is recorded, and config.yaml then says what the next stages will run with.
    run_cli(
        "libra-train", f"paths.run_dir={finished}", *ARGS, "train.learning_rate=1e-5", "allow_changes=true"
    )
    record = json.loads((finished / "manifest.json").read_text())["config_changes"]
    assert record == [
        {"changed": {"train.learning_rate": [0.003, 1e-05]}, "from_stage": None, "allowed": True}
    ]
    assert "learning_rate: 1.0e-05" in (finished / "config.yaml").read_text()

    # A setting that touches only work not yet done needs no permission, and is recorded too.
    extra = finished / "data" / "heldout.jsonl"
    out = run_cli(
        "libra-train",
        f"paths.run_dir={finished}",
        *ARGS,
        "train.learning_rate=1e-5",
        f"+data.eval_sets.again={extra}",
    )
    assert "done already, skipped" in out.stdout + out.stderr
    record = json.loads((finished / "manifest.json").read_text())["config_changes"]
    assert record[-1] == {
        "changed": {"data.eval_sets.again": [None, str(extra)]},
        "from_stage": None,
        "allowed": False,
    }
