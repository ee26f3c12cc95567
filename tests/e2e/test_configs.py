"""Every config in conf/ composes and resolves, with nothing downloaded (a hub id stays a string)."""

import itertools
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from libra_train.cli_utils import CONF_DIR
from libra_train.config import RunConfig

GROUPS = ["model", "data", "curriculum", "format", "peft", "deepspeed", "logger", "experiment"]


def _choices(group):
    return sorted(
        str(p.relative_to(Path(CONF_DIR) / group).with_suffix(""))
        for p in (Path(CONF_DIR) / group).rglob("*.yaml")
    )


# Choices that only make sense together with another one.
NEEDS = {
    ("experiment", "zero_shot"): ["model=qwen2.5-0.5b"],
    ("curriculum", "zero_shot"): ["model=qwen2.5-0.5b"],
    ("data", "jade"): ["data.jade_dir=/data/jade"],
    ("experiment", "jade"): ["data.jade_dir=/data/jade"],
    ("curriculum", "two_stage_replay"): ["data=jade", "data.jade_dir=/data/jade"],
    ("curriculum", "two_stage_replay_stream"): ["data=jade", "data.jade_dir=/data/jade"],
}


# libra_guard/base holds what the recipes share and has required values only they fill in.
@pytest.mark.parametrize(
    "group, choice", [(g, c) for g in GROUPS for c in _choices(g) if c != "libra_guard/base"]
)
def test_every_choice_composes(group, choice, tmp_path):
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[f"{group}={choice}", f"paths.run_dir={tmp_path}", *NEEDS.get((group, choice), [])],
        )
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["paths"]["run_dir"] == str(tmp_path)
    if group == "model" and resolved["model"]["build"] is None:  # not built here: loaded by id
        assert "/" in resolved["model"]["name_or_path"]  # a hub id, untouched
    assert resolved["model"]["trust_remote_code"] is False  # off unless a user sets it
    if group != "data" and not (group == "experiment" and choice.startswith("cold")):  # needs COLD's files
        run = RunConfig.from_hydra(cfg)
        # config.yaml is derived from the typed run, and rebuilds the same run: nothing checked is lost
        assert RunConfig.from_hydra(OmegaConf.create(run.resolved)) == run


def test_the_cold_recipe_is_the_dev_tuned_recipe_fitted_on_train_and_dev(tmp_path):
    from libra_train.steps import stage_data_paths

    cold = tmp_path / "cold"
    cold.mkdir()
    for split in ("train", "dev", "test"):
        (cold / f"{split}.jsonl").write_text("{}\n")  # only their existence is checked here
    runs = {}
    for name in ("cold_tune", "cold"):
        with initialize_config_dir(CONF_DIR, version_base="1.3"):
            cfg = compose(
                "train",
                overrides=[f"experiment={name}", f"data.cold_dir={cold}", f"paths.run_dir={tmp_path / name}"],
            )
        runs[name] = RunConfig.from_hydra(cfg)
    tune, ship = runs["cold_tune"], runs["cold"]
    assert stage_data_paths(tune, tune.stages[0]) == [str(cold / "train.jsonl")]
    assert (tune.eval.threshold, tune.eval.calibration_set) == ("calibrate", "cold_dev")
    assert set(tune.data.eval_sets) == {"cold_dev", "cold_test"}
    # the shipped recipe trains on dev too, so dev neither calibrates nor reports: a number chosen on dev
    assert stage_data_paths(ship, ship.stages[0]) == [str(cold / "train.jsonl"), str(cold / "dev.jsonl")]
    assert ship.data.eval_sets == {"cold_test": str(cold / "test.jsonl")}
    assert ship.eval.threshold == pytest.approx(0.458)
    for key in ("model", "train", "ensemble", "format", "seed"):  # all else is what dev chose
        assert ship.resolved[key] == tune.resolved[key], key


def test_synth_config_composes_with_the_seven_categories_and_takes_overrides():
    from libra_train.data.taxonomy import default_rules

    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        cfg = compose("synth", overrides=["num_samples=120", "backend=openai"])
    assert (cfg.num_samples, cfg.backend, cfg.annotation.on_disagreement) == (120, "openai", "tag_hard")
    assert list(cfg.taxonomy) == list(default_rules())  # one taxonomy: the prompt's and the data's
    assert all(c.sub_categories and c.benign_topics for c in cfg.taxonomy.values())
    assert sum(cfg.split_ratios.values()) == pytest.approx(1.0) and cfg.openai.api_key_env == "OPENAI_API_KEY"


def test_eval_config_requires_predictions_and_labels():
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        cfg = compose("eval")
        given = compose("eval", overrides=["predictions=p", "labels=l"])
    assert OmegaConf.is_missing(cfg, "predictions") and OmegaConf.is_missing(cfg, "labels")
    assert (given.predictions, given.labels, given.output_dir) == ("p", "l", None)


def _sweep_points(name):
    params = OmegaConf.load(Path(CONF_DIR) / "sweep" / f"{name}.yaml").hydra.sweeper.params
    axes = [[f"{key}={v}" for v in str(values).split(",")] for key, values in params.items()]
    return [list(point) for point in itertools.product(*axes)]


@pytest.mark.parametrize("name", _choices("sweep"))
def test_every_sweep_point_composes_and_validates(name, tmp_path):
    points = _sweep_points(name)
    assert len(points) >= 2
    seen = set()
    for point in points:
        with initialize_config_dir(CONF_DIR, version_base="1.3"):
            cfg = compose("train", overrides=[f"+sweep={name}", f"paths.run_dir={tmp_path}", *point])
        RunConfig.from_hydra(cfg)
        seen.add(OmegaConf.to_yaml(cfg))
    assert len(seen) == len(points)  # every point is a different run


def test_sweeps_cover_the_paper_ablations():
    sweeps = {"critic_position", "curriculum_order", "data_scale", "synth_scale", "rules_in_prompt"}
    assert sweeps <= set(_choices("sweep"))
    assert len(_sweep_points("curriculum_order")) == 5 and len(_sweep_points("critic_position")) == 3
    # the real budget on a log scale × sft_only, two_stage, mixed × three seeds
    assert len(_sweep_points("data_scale")) == 5 * 3 * 3


@pytest.mark.parametrize(
    "recipe", [c for c in _choices("experiment") if c.startswith("libra_guard/") and c != "libra_guard/base"]
)
def test_recipes_resolve_to_real_backbones(recipe, tmp_path):
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={recipe}", f"paths.run_dir={tmp_path}"])
    resolved = OmegaConf.to_container(cfg, resolve=True)
    RunConfig.from_hydra(cfg)
    assert resolved["model"]["name_or_path"].split("/")[0] in ("Qwen", "01-ai")
    assert resolved["deepspeed"]["stage"] in ("zero2", "zero3") and resolved["train"]["max_length"] == 2048
    assert (resolved["peft"]["method"] == "lora") == recipe.endswith("_lora")
    lrs = [s["learning_rate"] for s in resolved["curriculum"]["stages"]]
    assert len(lrs) == 2 and all(isinstance(lr, float) and lr > 0 for lr in lrs) and lrs[1] < lrs[0]
