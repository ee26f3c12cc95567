"""Every command's defaults are written once, in its typed config: its YAML states none of those keys and
lists NAME_defaults first, so that what --help lists (the typed defaults) is what a run without
overrides does."""

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from data_synth.config import AnnotateConfig, SynthConfig
from libra_train import command_config, config, config_groups
from libra_train.cli_utils import CONF_DIR
from libra_train.conf_dir import CLI_CONF_DIR
from libra_train.typed import defaults_node
from tests.conftest import REPO

TRAIN_KEYS = {
    "train": config_groups.TrainConfig,
    "eval": config_groups.EvalConfig,
    "run_lock": config_groups.LockConfig,
    "distributed": config_groups.DistributedConfig,
    "ensemble": config_groups.EnsembleConfig,
}
COMMANDS = [
    ("cli/infer", command_config.InferConfig),
    ("cli/serve", command_config.ServeConfig),
    ("cli/mine", command_config.MineConfig),
    ("cli/export", command_config.ExportConfig),
    ("cli/compare", command_config.CompareConfig),
    ("eval", command_config.EvalCommandConfig),
    ("synth", SynthConfig),
    ("cli/annotate", AnnotateConfig),
    ("train", None),
]


def _typed(name, typed) -> dict:
    if typed is not None:
        return defaults_node(typed)
    return {**defaults_node(config.RunKeys), **{k: defaults_node(v) for k, v in TRAIN_KEYS.items()}}


@pytest.mark.parametrize("name, typed", COMMANDS, ids=[n for n, _ in COMMANDS])
def test_a_commands_yaml_states_no_default_of_its_typed_config_and_composes_to_them(name, typed):
    stated = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / f"{name}.yaml"))
    node = _typed(name, typed)
    assert stated["defaults"][0] == f"{name.split('/')[-1]}_defaults"
    assert not set(stated) & set(node), sorted(set(stated) & set(node))  # written twice
    folder, file = (CLI_CONF_DIR, name[4:]) if name.startswith("cli/") else (CONF_DIR, name)
    with initialize_config_dir(folder, version_base="1.3"):
        composed = OmegaConf.to_container(compose(file, overrides=["~experiment"] * (name == "train")))
    leaves = _leaves(node)
    composed = _leaves(composed)
    assert not [key for key, value in leaves.items() if composed[key] != value]


def _leaves(mapping: dict) -> dict:
    """{dotted key: value} one level deep (the typed configs nest one group at most); an empty mapping
    is one a config group fills (taxonomy, the LLM backends), so it has no leaf of its own."""
    out = {}
    for key, value in mapping.items():
        inner = value.items() if isinstance(value, dict) else [(None, value)]
        out.update({f"{key}.{name}" if name else key: v for name, v in inner})
    return out
