"""Config checks at start-up: each bad value is refused by RunConfig.from_hydra itself, naming its key
(not left to Hydra, to the Trainer or to a crash deep inside the run)."""

import pytest
from omegaconf import OmegaConf, open_dict

from libra_train.config import RunConfig
from libra_train.config_checks import _TINY_SHAPE as IGNORED_SHAPE
from libra_train.config_checks import IGNORED_KEYS
from libra_train.config_groups import ModelConfig
from libra_train.errors import ConfigError
from libra_train.typed import build, check_value
from tests.conftest import compose_train, run_config


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["curriculum.stages.1.name=stage1_pretrain"], "curriculum.stages"),
        (["eval.mode=label", "format=front"], "eval.mode"),
        (["eval.mode=beam"], "eval.mode"),
        (["+curriculum.stages.0.select=hard"], "curriculum.stages[0].guards"),
        (["+curriculum.stages.1.select=easy"], "curriculum.stages[1].select"),
        (["+curriculum.stages.1.kind=head"], "curriculum.stages[1].kind"),
        (
            ["+curriculum.stages.1.kind=stream", "+curriculum.stages.1.select=hard"],
            "curriculum.stages[1].select",
        ),
        (["format=front", "+curriculum.stages.1.select=hard"], "curriculum.stages[1].select"),
        (
            ["+curriculum.stages.1.select=hard", "+curriculum.stages.1.margin=0.7"],
            "curriculum.stages[1].margin",
        ),
        (["train.max_length=31"], "train.max_length"),
        (["+curriculum.stages.1.max_length=16"], "curriculum.stages[1].max_length"),
        (["train.lr_scheduler=warm"], "train.lr_scheduler"),
        (["train.warmup_ratio=-0.1"], "train.warmup_ratio"),
        (["train.warmup_ratio=1.5"], "train.warmup_ratio"),
        (["train.warmup_ratio=1.0"], "train.warmup_ratio"),  # [0, 1): a whole stage of warm-up is refused
        (["train.weight_decay=-0.1"], "train.weight_decay"),
        (["train.max_steps=-1"], "train.max_steps"),
        (["train.max_steps=abc"], "train.max_steps"),
        (["data.stage1.limit=abc"], "data.stage1.limit"),
        (["train.batch_size=0"], "train.batch_size"),
        (["+curriculum.stages.1.learning_rate=0"], "curriculum.stages[1].learning_rate"),
        (["+curriculum.stages.1.epochs=two"], "curriculum.stages[1].epochs"),
        (["+curriculum.stages.1.lr=0.1"], "curriculum.stages[1].lr"),
        (["model.dtype=int4"], "model.dtype"),
        (["run_lock.heartbeat_s=700"], "run_lock.heartbeat_s"),
        (["run_lock.stale_after_s=0"], "run_lock.stale_after_s"),
        (["logger.backend=mlflow"], "logger.backend"),
        (["eval.batch_size=0"], "eval.batch_size"),
        (["eval.threshold=1.5"], "eval.threshold"),
        (["eval.threshold=calibrate"], "eval.calibration_set"),
        (["eval.threshold=calibrate", "eval.calibration_set=nowhere"], "eval.calibration_set"),
        (  # calibrated on rows stage 2 trains on
            [
                "eval.threshold=calibrate",
                "eval.calibration_set=heldout",
                "data.eval_sets.heldout=${data.stage2.path}",
            ],
            "eval.calibration_set",
        ),
        (  # the same file, spelt another way
            [
                "eval.threshold=calibrate",
                "eval.calibration_set=heldout",
                "data.eval_sets.heldout=${paths.run_dir}/data/../data/stage2.jsonl",
            ],
            "eval.calibration_set",
        ),
        (["format=front", "eval.threshold=0.3"], "eval.threshold"),
        (["deepspeed.stage=zero9"], "deepspeed.stage"),
        (["peft=lora", "peft.r=0"], "peft.r"),
        (["format.rules=maybe"], "format.rules"),
        (["data.stage1.limit=0"], "data.stage1.limit"),
        (["seed=abc"], "seed"),
        (["curriculum.stages.0.data=stage1"], "curriculum.stages[0].data"),
        (["data.prepare=5"], "data.prepare"),
        (["~data.prepare._target_"], "data.prepare"),
        (["data.prepare._target_=data_synth.pipeline.synthesise"], "data.prepare._target_"),
        # the synthesis's own options, checked by its SynthConfig before any work
        (["+data.prepare.num_sampels=400"], "data.prepare.num_sampels"),
        (["data.prepare.multi_turn_share=1.5"], "data.prepare.multi_turn_share"),
        (["+data.prepare.dedup.threshhold=0.9"], "data.prepare.dedup.threshhold"),
        (["eval.before_training=maybe"], "eval.before_training"),
        (["model.name_or_path=5"], "model.name_or_path"),
        (["+model.foo=1"], "model.foo"),
        (["+data.extra={limit: 3}"], "data.extra"),
        (["data.eval_sets.heldout=7"], "data.eval_sets.heldout"),
        (
            ["+curriculum.stages.1.select=hard", "+curriculum.stages.1.guards=guard"],
            "curriculum.stages[1].guards",
        ),
        (["curriculum.stages=5"], "curriculum.stages"),
        (["curriculum.stages=[5]"], "curriculum.stages[0]"),
        (["deepspeed=zero2", "deepspeed.config=null"], "deepspeed.config"),
        (["data.stage2.path=/no/such/stage2.jsonl"], "data.stage2.path"),
        (["data.stage1.path=null"], "data.stage1.path"),
        (["curriculum.stages.0.data=[nowhere]"], "curriculum.stages[0].data"),
        (["curriculum.stages.0.name=''"], "curriculum.stages[0].name"),
        (["model.build=huge"], "model.build"),
        (["model=qwen2.5-0.5b", "model.name_or_path=null"], "model.name_or_path"),
        (["peft.method=qlora"], "peft.method"),
        (["data.on_invalid=ignore"], "data.on_invalid"),
        (["data.eval_sets.heldout=/no/such/file.jsonl"], "data.eval_sets.heldout"),
        (["curriculum=zero_shot", "model=qwen2.5-0.5b", "eval.before_training=false"], "curriculum.stages"),
        (["curriculum=zero_shot"], "model.build"),
        (["+model.trim_vocab=true"], "model.trim_vocab"),  # model=tiny learns its own vocabulary
        (["ensemble.members=0"], "ensemble.members"),
        (["curriculum=zero_shot", "model=qwen2.5-0.5b", "ensemble.members=2"], "ensemble.members"),
        # a key the chosen option ignores is refused, not silently unused
        (["model.name_or_path=Qwen/Qwen2.5-0.5B-Instruct"], "model.name_or_path"),  # model=tiny builds it
        (["model.name_or_path=/data/no-such-model"], "model.name_or_path"),
        (["model=qwen2.5-0.5b", "+model.hidden_size=64"], "model.hidden_size"),
        (["model=qwen2.5-tiny", "+model.vocab_size=5000"], "model.vocab_size"),
        (["+peft.r=8"], "peft.r"),  # peft=none
        (["deepspeed.config={zero_optimization: {stage: 2}}"], "deepspeed.config"),  # deepspeed=none
        (["eval.calibration_set=heldout"], "eval.calibration_set"),  # threshold 0.5, not calibrate
        (["ensemble.parallel=2"], "ensemble.parallel"),  # members=1
    ],
)
def test_each_bad_value_is_refused_naming_its_key(tmp_path, overrides, key):
    with pytest.raises(ConfigError) as err:
        run_config(tmp_path, *overrides)
    assert err.value.key == key, err.value
    message = err.value.message  # a sentence a user can act on, not a placeholder
    assert isinstance(message, str) and len(message) > 8 and message != "None"


@pytest.mark.parametrize(
    "overrides, key, says",
    [
        (["model.name_or_path=???"], "model.name_or_path", "Missing mandatory value"),
        (["experiment_name=${nowhere}"], "experiment_name", "nowhere"),
        (["+format.colour=red"], "format.colour", "unknown key; known in format: critic, "),
        (["+data.stage1.colour=red"], "data.stage1.colour", "unknown key"),
        (["data.eval_sets.heldout=''"], "data.eval_sets.heldout", "must be a path"),
        (["curriculum.stages.0.data=stage1"], "curriculum.stages[0].data", "must be a list"),
        (["curriculum.stages.0.data=[]"], "curriculum.stages[0].data", "at least one data key"),
        (["curriculum.stages.0.name=5"], "curriculum.stages[0].name", "must be text"),
        (
            ["+curriculum.stages.1.select=hard", "+curriculum.stages.1.margin=wide"],
            "curriculum.stages[1].margin",
            "must be a number",
        ),
        (["+curriculum.stages.0.select=hard"], "curriculum.stages[0].guards", "no previous guard"),
        (["format=front", "+curriculum.stages.1.select=hard"], "curriculum.stages[1].select", "label mode"),
        (["curriculum=zero_shot"], "model.build", "zero-shot evaluation needs a pretrained backbone"),
        # early stopping, label smoothing and a stage's select value
        (["train.early_stopping_set=nowhere"], "train.early_stopping_set", "not one of data.eval_sets"),
        (  # stopped on rows stage 2 trains on
            ["train.early_stopping_set=heldout", "data.eval_sets.heldout=${data.stage2.path}"],
            "train.early_stopping_set",
            "training data of stage2_sft (data.stage2)",
        ),
        (["format=front", "train.early_stopping_set=heldout"], "train.early_stopping_set", "label first"),
        (
            ["+curriculum.stages.1.early_stopping_set=nowhere"],
            "curriculum.stages[1].early_stopping_set",
            "not one of data.eval_sets",
        ),
        (["curriculum=stream", "train.early_stopping_set=heldout"], "train.early_stopping_set", "stream"),
        (["train.label_smoothing=1.0"], "train.label_smoothing", "[0, 1)"),
        (["curriculum=stream", "train.label_smoothing=0.1"], "train.label_smoothing", "stream stage"),
        (
            ["curriculum=stream", "+curriculum.stages.2.label_smoothing=0.1"],
            "curriculum.stages[2].label_smoothing",
            "stream stage",
        ),
        (["+curriculum.stages.1.backbone=shared"], "curriculum.stages[1].backbone", "kind: stream"),
        (
            ["curriculum=stream", "curriculum.stages.2.backbone=lora"],
            "curriculum.stages[2].backbone",
            "frozen",
        ),
        (
            ["curriculum=stream", "curriculum.stages.2.backbone_learning_rate=0"],
            "curriculum.stages[2].backbone_learning_rate",
            "",
        ),
        (
            ["curriculum=stream", "+curriculum.stages.2.rule_holdout=0"],
            "curriculum.stages[2].rule_holdout",
            "eval.calibration_set",
        ),
        (["curriculum=stream", "eval.stream_threshold=1.5"], "eval.stream_threshold", "calibrate"),
        (["curriculum=stream", "eval.calibration_set=nowhere"], "eval.calibration_set", "not one of"),
        (  # the stop rule chosen on rows the stream stage trains on
            [
                "curriculum=stream",
                "eval.calibration_set=heldout",
                "data.eval_sets.heldout=${data.stage2.path}",
            ],
            "eval.calibration_set",
            "training data of stage2_sft (data.stage2)",
        ),
        (["+curriculum.stages.1.select=random"], "curriculum.stages[1].budget", "needs a budget"),
        (["+curriculum.stages.1.select=easy"], "curriculum.stages[1].select", "hard, random"),
        (
            ["+curriculum.stages.1.select=hard", "+curriculum.stages.1.strategy=random"],
            "curriculum.stages[1].strategy",
            "unknown",
        ),
    ],
)
def test_each_message_says_what_is_wrong(tmp_path, overrides, key, says):
    with pytest.raises(ConfigError) as err:
        run_config(tmp_path, *overrides)
    assert (err.value.key, says in err.value.message) == (key, True), err.value


@pytest.mark.parametrize(
    "hint, value, says",
    [(str, 5, "must be text"), (dict, [1], "must be a mapping"), (int | None, "x", "whole number")],
)
def test_a_value_of_the_wrong_type_names_its_key(hint, value, says):
    with pytest.raises(ConfigError) as err:
        check_value(value, hint, "group.field")
    assert (err.value.key, says in err.value.message) == ("group.field", True), err.value


def test_a_group_that_is_not_a_mapping_is_refused_by_name():
    with pytest.raises(ConfigError) as err:
        build(ModelConfig, 5, "model")
    assert (err.value.key, "must be a mapping, got 5" in err.value.message) == ("model", True)


def test_the_run_config_carries_the_composed_values(tmp_path):
    cfg = compose_train(
        tmp_path,
        "experiment_name=ablate",
        "seed=7",
        "curriculum=two_stage_hard",
        "+curriculum.stages.1.guards=[g1,g2]",
        "+curriculum.stages.1.learning_rate=1e-4",
    )
    run = RunConfig.from_hydra(cfg)
    assert (run.experiment_name, run.seed) == ("ablate", 7)
    assert [s.name for s in run.stages] == ["stage1_pretrain", "stage2_sft"]
    # what config.yaml records is derived from the typed values, and rebuilds the same run
    assert RunConfig.from_hydra(OmegaConf.create(run.resolved)) == run
    assert run.resolved["curriculum"]["stages"][1]["learning_rate"] == 1e-4
    assert run.resolved["curriculum"]["name"] == "two_stage_hard" and run.resolved["seed"] == 7
    assert run.stages[1].guards == ("g1", "g2")
    assert run.stages[1].selection.seed == 7  # selection ties follow the run's seed
    assert run.stages[1].train.learning_rate == 1e-4 and run.stages[0].train.learning_rate != 1e-4


def test_values_left_out_take_their_defaults(tmp_path):
    cfg = compose_train(tmp_path, "curriculum=two_stage_hard")
    with open_dict(cfg):
        for key in ("experiment_name", "seed"):
            del cfg[key]
        del cfg.curriculum["name"]
        cfg.data.prepare.seed = 3  # it names ${seed}, which is gone
    run = RunConfig.from_hydra(cfg)
    assert (run.experiment_name, run.seed) == ("default", 0)
    assert run.stages[1].selection.seed == 0


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["format=front"],
        ["format=none", "eval.mode=label"],
        ["deepspeed=zero2"],
        ["deepspeed=zero3"],
        ["peft=lora"],
        ["curriculum=two_stage_hard"],
        ["data.stage1.limit=0.5"],
        ["logger=wandb"],
        ["+curriculum.stages.1.learning_rate=1e-4", "train.warmup_ratio=0"],
        ["eval.threshold=0.3"],
        ["eval.threshold=calibrate", "eval.calibration_set=heldout"],
    ],
)
def test_good_configs_pass(tmp_path, overrides):
    run = run_config(tmp_path, *overrides)
    assert [s.name for s in run.stages] and run.run_dir == tmp_path


def test_the_shortest_allowed_max_length_passes(tmp_path):
    run_config(tmp_path, "train.max_length=32")


def test_data_is_prepared_only_for_the_files_the_stages_read(tmp_path, monkeypatch):
    """sft_only reads stage2 alone: its file present and the unused stage1 missing → no synthesis."""
    import hydra.utils

    from libra_train.steps import prepare_data

    calls = []
    monkeypatch.setattr(hydra.utils, "call", lambda spec, **kw: calls.append(kw["output_dir"]))
    stage2, heldout = tmp_path / "stage2.jsonl", tmp_path / "heldout.jsonl"
    stage2.write_text("{}\n")
    heldout.write_text("{}\n")
    over = [f"data.stage2.path={stage2}", f"data.eval_sets.heldout={heldout}"]
    prepare_data(run_config(tmp_path, "curriculum=sft_only", *over))
    assert calls == []
    prepare_data(run_config(tmp_path, *over))  # two_stage reads stage1, which is missing
    assert calls == [str(tmp_path / "data")]


# Every key IGNORED_KEYS names, under the option that ignores it: (the overrides choosing that option, a
# value other than the field's default). A new entry without a case here fails the coverage test below.
IGNORED_CASES = {
    "model.name_or_path": ([], "Qwen/Qwen2.5-0.5B-Instruct"),
    **{f"model.{k}": (["model=qwen2.5-0.5b"], 7) for k in IGNORED_SHAPE if k != "vocab_size"},
    "model.vocab_size": (["model=qwen2.5-tiny"], 5000),  # also ignored by a hub backbone (the entry above)
    "model.vocab_from": (["model=qwen2.5-tiny"], "first_stage"),
    "peft.r": ([], 8),
    "peft.alpha": ([], 8),
    "peft.dropout": ([], 0.2),
    "peft.target_modules": ([], "[q_proj]"),
    "deepspeed.config": ([], "{zero_optimization: {stage: 2}}"),
    "eval.calibrate_for": ([], "f1"),
    "eval.calibrate_at": ([], "middle"),
    "eval.calibration_set": ([], "heldout"),
    "eval.stream_safe_stopped": (["curriculum=stream", "eval.stream_threshold=0.9"], 0.1),
    "ensemble.parallel": ([], 2),
}


def test_every_ignored_key_has_a_case():
    named = {f"{group}.{name}" for group, names, _, _ in IGNORED_KEYS for name in names}
    assert named == set(IGNORED_CASES)


@pytest.mark.parametrize("key", sorted(IGNORED_CASES))
def test_each_key_an_option_ignores_is_refused_when_set(tmp_path, key):
    choose, value = IGNORED_CASES[key]
    with pytest.raises(ConfigError) as err:
        run_config(tmp_path, *choose, f"++{key}={value}")
    assert err.value.key == key and "is ignored here" in err.value.message, err.value


def test_a_failed_call_in_the_config_says_its_target_and_its_error():
    from hydra.errors import InstantiationException

    from libra_train.cli_utils import composition_error

    err = InstantiationException("Error in call to target 'x.y':\nValueError('no such file')")
    said = composition_error(err, "conf", "train")
    assert (said.key, said.message) == (
        "command line",
        "Error in call to target 'x.y': ValueError('no such file')",
    )
