"""Config checks at start-up: each bad value is refused by validate_config itself, naming its key
(not left to Hydra, to the Trainer or to a crash deep inside the run)."""

import pytest
from hydra import compose, initialize_config_dir

from libra_train.cli_utils import CONF_DIR
from libra_train.errors import ConfigError
from libra_train.train.validate import validate_config


def _cfg(tmp_path, *overrides):
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        return compose("train", overrides=[f"paths.run_dir={tmp_path}", "logger=none", *overrides])


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["curriculum.stages.1.name=stage1_pretrain"], "curriculum.stages"),
        (["eval.mode=label", "format=front"], "eval.mode"),
        (["eval.mode=beam"], "eval.mode"),
        (["+curriculum.stages.0.select=hard"], "curriculum.stages[0].guards"),
        (["+curriculum.stages.1.select=random"], "curriculum.stages[1].select"),
        (["format=front", "+curriculum.stages.1.select=hard"], "curriculum.stages[1].select"),
        (
            ["+curriculum.stages.1.select=hard", "+curriculum.stages.1.margin=0.7"],
            "curriculum.stages[1].margin",
        ),
        (["train.max_length=31"], "curriculum.stages[0].max_length"),
        (["+curriculum.stages.1.max_length=16"], "curriculum.stages[1].max_length"),
        (["train.lr_scheduler=warm"], "curriculum.stages[0].lr_scheduler"),
        (["train.warmup_ratio=-0.1"], "curriculum.stages[0].warmup_ratio (or train.warmup_ratio)"),
        (["train.batch_size=0"], "curriculum.stages[0].batch_size (or train.batch_size)"),
        (["curriculum.stages.0.data=[nowhere]"], "curriculum.stages[0].data"),
        (["curriculum.stages.0.name=''"], "curriculum.stages[0].name"),
        (["model.build=huge"], "model.build"),
        (["model=qwen2.5-0.5b", "model.name_or_path=null"], "model.name_or_path"),
        (["peft.method=qlora"], "peft.method"),
        (["data.on_invalid=ignore"], "data.on_invalid"),
        (["data.eval_sets.heldout=/no/such/file.jsonl"], "data.eval_sets.heldout"),
        (["curriculum=zero_shot", "model=qwen2.5-0.5b", "eval.before_training=false"], "curriculum.stages"),
        (["curriculum=zero_shot"], "model.build"),
    ],
)
def test_each_bad_value_is_refused_naming_its_key(tmp_path, overrides, key):
    with pytest.raises(ConfigError) as err:
        validate_config(_cfg(tmp_path, *overrides))
    assert err.value.key == key, err.value


def test_the_shortest_allowed_max_length_passes(tmp_path):
    validate_config(_cfg(tmp_path, "train.max_length=32"))
