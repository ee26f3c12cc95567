"""A run directory's record stays true: config.yaml is what trained the stages that are there."""

import copy
import json

import pytest

from tests.conftest import TINY_TRAIN, run_cli

ARGS = [
    *[a for a in TINY_TRAIN if not a.startswith(("train.max_steps", "eval.before", "data.prepare.num"))],
    "data.prepare.num_samples=120",
    "train.max_steps=2",
    "eval.before_training=false",
]


@pytest.mark.slow
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


def test_a_config_yaml_that_cannot_be_read_back_is_refused_unless_the_change_is_intended(tmp_path):
    from hydra import compose, initialize_config_dir

    from libra_train.cli_utils import CONF_DIR
    from libra_train.config import RunConfig
    from libra_train.errors import ConfigError
    from libra_train.run_record import check_and_record_changes
    from libra_train.runtime.run_dir import Manifest

    def run_config(*overrides):
        with initialize_config_dir(CONF_DIR, version_base="1.3"):
            return RunConfig.from_hydra(compose("train", [f"paths.run_dir={tmp_path}", *overrides]))

    manifest = Manifest(tmp_path)
    manifest.stage("stage1_pretrain")["status"] = "done"
    old = {**run_config().resolved, "model": {"build": "huge"}}  # what no version of the config accepts
    with pytest.raises(ConfigError, match="cannot be compared.*allow_changes=true") as err:
        check_and_record_changes(run_config(), old, manifest)
    assert err.value.key == "paths.run_dir" and "config_changes" not in manifest.data
    check_and_record_changes(run_config("allow_changes=true"), old, manifest)
    change = manifest.data["config_changes"][-1]
    assert change["allowed"] is True and list(change["changed"]) == ["config.yaml"]
    assert (
        change["changed"]["config.yaml"][0].startswith("unreadable") and change["from_stage"] == "stage2_sft"
    )
    assert change["changed"]["config.yaml"][1] == "this run's"


def test_a_finished_stages_curriculum_entry_is_guarded_and_a_path_may_be_written_either_way(
    tmp_path, monkeypatch
):
    """The record's check alone, without training: a change to a finished stage's curriculum entry is
    refused naming the key; the run directory given relative, then absolute, is no change at all."""
    from hydra import compose, initialize_config_dir

    from libra_train.cli_utils import CONF_DIR
    from libra_train.config import RunConfig
    from libra_train.errors import ConfigError
    from libra_train.run_record import check_and_record_changes
    from libra_train.runtime.run_dir import Manifest

    monkeypatch.chdir(tmp_path)

    def run_config(run_dir, *overrides):
        with initialize_config_dir(CONF_DIR, version_base="1.3"):
            return RunConfig.from_hydra(compose("train", [f"paths.run_dir={run_dir}", *overrides]))

    (tmp_path / "outputs" / "x").mkdir(parents=True)
    manifest = Manifest(tmp_path / "outputs" / "x")
    manifest.stage("stage1_pretrain")["status"] = "done"
    before = run_config("outputs/x").resolved
    check_and_record_changes(run_config(tmp_path / "outputs" / "x"), before, manifest)
    assert "config_changes" not in manifest.data
    with pytest.raises(ConfigError, match="differs from .*stage1_pretrain") as err:
        check_and_record_changes(
            run_config("outputs/x", "curriculum.stages.0.data=[stage2]"), before, manifest
        )
    assert err.value.key == "curriculum.stages.0.data.0"
    # the stage not yet started may change: recorded, from that stage on
    check_and_record_changes(run_config("outputs/x", "curriculum.stages.1.data=[stage1]"), before, manifest)
    assert manifest.data["config_changes"][-1]["from_stage"] == "stage2_sft"


def test_the_refusal_shows_each_change_and_an_intended_one_is_recorded_from_the_first_stage_to_run(
    tmp_path, caplog
):
    """Unit check of the record: the whole refusal sentence; the recorded pairs (before, now), without
    allow_changes itself; the first stage still to run (an interrupted one runs again); the log line."""
    from hydra import compose, initialize_config_dir

    from libra_train.cli_utils import CONF_DIR
    from libra_train.config import RunConfig
    from libra_train.errors import ConfigError
    from libra_train.run_record import check_and_record_changes
    from libra_train.runtime.run_dir import Manifest

    def run_config(*overrides):
        with initialize_config_dir(CONF_DIR, version_base="1.3"):
            return RunConfig.from_hydra(compose("train", [f"paths.run_dir={tmp_path}", *overrides]))

    manifest = Manifest(tmp_path)
    manifest.stage("stage1_pretrain")["status"] = "done"
    manifest.stage("stage2_sft")["status"] = "interrupted"
    before = run_config().resolved
    with pytest.raises(ConfigError) as err:
        check_and_record_changes(
            run_config("train.learning_rate=0.5", "train.warmup_ratio=0.5"), before, manifest
        )
    assert str(err.value) == (
        f"config 'train.learning_rate': differs from {tmp_path / 'config.yaml'}, which trained "
        "stage1_pretrain, stage2_sft (train.learning_rate: 0.002 → 0.5; train.warmup_ratio: 0.05 → 0.5). "
        "Start a new run with another paths.run_dir, or add allow_changes=true to go on in this one with "
        "the change from the next stage on"
    )
    assert "config_changes" not in manifest.data
    six = [
        f"train.{k}={v}"
        for k, v in [
            ("learning_rate", 0.5),
            ("warmup_ratio", 0.5),
            ("epochs", 3),
            ("batch_size", 3),
            ("weight_decay", 0.1),
            ("max_length", 99),
        ]
    ]
    with pytest.raises(ConfigError) as err:  # the first five changes are shown, and no more
        check_and_record_changes(run_config(*six), before, manifest)
    assert str(err.value).count(" → ") == 5
    with caplog.at_level("INFO", logger="libra_train.run_record"):
        check_and_record_changes(
            run_config("train.warmup_ratio=0.5", "eval.batch_size=3", "allow_changes=true"), before, manifest
        )
    assert manifest.data["config_changes"] == [
        {
            "changed": {"eval.batch_size": [16, 3], "train.warmup_ratio": [0.05, 0.5]},
            "from_stage": "stage2_sft",
            "allowed": True,
        }
    ]
    assert caplog.records[-1].getMessage() == (
        "config changed from stage2_sft on: eval.batch_size, train.warmup_ratio"
    )
    # a key that touches only work still to run needs no permission; with every stage done, none runs
    manifest.stage("stage2_sft")["status"] = "done"
    check_and_record_changes(run_config("eval.batch_size=3"), before, manifest)
    assert manifest.data["config_changes"][-1] == {
        "changed": {"eval.batch_size": [16, 3]},
        "from_stage": None,
        "allowed": False,
    }
    # a stage dropped from the end of the curriculum had not run: no permission needed
    longer = copy.deepcopy(before)
    longer["curriculum"]["stages"].append({**longer["curriculum"]["stages"][1], "name": "stage3"})
    check_and_record_changes(run_config(), longer, manifest)
    last = manifest.data["config_changes"][-1]
    assert last["allowed"] is False and last["changed"]["curriculum.stages.2.name"] == ["stage3", None]
