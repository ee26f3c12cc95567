"""A command's YAML and its typed config agree on every default they both state, so that --help (which
lists the typed defaults) says what a run without overrides does."""

import dataclasses

import pytest
from omegaconf import OmegaConf

from data_synth.config import AnnotateConfig, SynthConfig
from libra_train import command_config, config
from tests.conftest import REPO

PAIRS = [
    ("conf/cli/infer.yaml", None, command_config.InferConfig),
    ("conf/cli/serve.yaml", None, command_config.ServeConfig),
    ("conf/cli/mine.yaml", None, command_config.MineConfig),
    ("conf/cli/export.yaml", None, command_config.ExportConfig),
    ("conf/cli/compare.yaml", None, command_config.CompareConfig),
    ("conf/eval.yaml", None, command_config.EvalCommandConfig),
    ("conf/synth.yaml", None, SynthConfig),
    ("conf/cli/annotate.yaml", None, AnnotateConfig),
    ("conf/train.yaml", "train", config.TrainConfig),
    ("conf/train.yaml", "eval", config.EvalConfig),
]


def _typed_default(field):
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return dataclasses.MISSING
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return list(value) if isinstance(value, tuple) else value


@pytest.mark.parametrize("path, group, typed", PAIRS, ids=lambda v: v if isinstance(v, str) else None)
def test_the_yaml_and_the_typed_config_state_the_same_defaults(path, group, typed):
    stated = OmegaConf.to_container(OmegaConf.load(REPO / path))
    stated = stated[group] if group else stated
    differ = []
    for field in dataclasses.fields(typed):
        if field.name not in stated or stated[field.name] == "???":
            continue
        default = _typed_default(field)
        value = stated[field.name]
        if isinstance(default, dict) and isinstance(value, dict):  # a nested group: the keys both state
            differ += [f"{field.name}.{k}" for k, v in value.items() if k in default and default[k] != v]
        elif default is not dataclasses.MISSING and default != value:
            differ.append(f"{field.name}: yaml {value!r}, typed {default!r}")
    assert not differ, differ
