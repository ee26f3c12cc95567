"""`libra-infer … mode=prompts`: the exact model input and the target of each sample, written without
loading the model's weights; and Libra-Test by a hub id that cannot be reached fails in one line."""

import json
import shutil

import pytest

from libra_train.data.formats import FormatConfig, render_prompt, render_target
from libra_train.qwen_vocab import qwen25_tokenizer
from tests.conftest import read_jsonl, run_cli, sample, write_jsonl


@pytest.mark.parametrize("group, fmt", [("rear", FormatConfig()), ("libra", FormatConfig(prompt="libra"))])
def test_prompts_mode_writes_each_samples_model_input_and_target(qwen_backbone, tmp_path, group, fmt):
    weightless = tmp_path / "tokenizer_only"  # config and tokenizer, no weights: none may be needed
    weightless.mkdir()
    for f in qwen_backbone.iterdir():
        if f.suffix != ".safetensors":
            shutil.copy(f, weightless / f.name)
    records = [sample(i, label="安全" if i % 3 else "不安全", analyze=f"分析{i}") for i in range(1000)]
    del records[0]["label"]  # labels are optional here: no target then
    data = write_jsonl(tmp_path / "data.jsonl", records)
    out = tmp_path / "out"
    run_cli(
        "libra-infer",
        f"model={weightless}",
        f"data={data}",
        f"output_dir={out}",
        "mode=prompts",
        f"format={group}",
    )
    rows = read_jsonl(out / "prompts.jsonl")
    tokenizer = qwen25_tokenizer()
    assert [r["id"] for r in rows] == [r["id"] for r in records]
    assert rows[0]["target"] is None
    for row, record in list(zip(rows, records))[1:50]:
        assert row["prompt"] == render_prompt(record, tokenizer, fmt)
        assert row["prompt"].startswith("<|im_start|>system\n") and row["prompt"].endswith("assistant\n")
        assert row["target"] == render_target(record, fmt)
    assert not list(out.glob("*-of-*.jsonl"))  # nothing was predicted


# the command's path is one for every format (each format's rendering is tested in tests/data/)
@pytest.mark.parametrize("group", ["llama_guard3", "wildguard"])
def test_prompts_mode_writes_another_guards_input_and_target(qwen_backbone, tmp_path, group):
    records = [
        sample(i, label="安全" if i % 2 else "不安全", analyze=f"分析{i}", meta={"refusal": bool(i % 2)})
        for i in range(6)
    ]
    data = write_jsonl(tmp_path / "data.jsonl", records)
    out = tmp_path / "out"
    run_cli(
        "libra-infer",
        f"model={qwen_backbone}",
        f"data={data}",
        f"output_dir={out}",
        "mode=prompts",
        f"format={group}",
    )
    rows = read_jsonl(out / "prompts.jsonl")
    fmt = FormatConfig(prompt=group)
    assert [r["id"] for r in rows] == [r["id"] for r in records]
    for row, record in zip(rows, records):
        assert row["prompt"] == render_prompt(record, None, fmt)  # the guard's own text, not our template
        assert row["target"] == (render_target(record, fmt) if group != "wildguard" else None)
    assert (
        rows[0]["target"]
        == {
            "shieldlm": "[答案] 不安全\n[分析] 分析0",
            "llama_guard3": "\n\nunsafe\nS2",
            "qwen3guard": "Safety: Unsafe\nCategories: Non-violent Illegal Acts\nRefusal: No",
            "wildguard": None,
        }[group]
    )


def test_an_unreachable_hub_dataset_fails_in_one_line_naming_it(tmp_path, qwen_backbone):
    proc = run_cli(
        "libra-infer",
        f"model={qwen_backbone}",
        "data=hub:caskcsg/Libra-Test",
        f"output_dir={tmp_path}",
        "mode=prompts",
        check=False,
        env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert "caskcsg/Libra-Test" in lines[0] and "--local-dir" in lines[0] and "Traceback" not in proc.stderr


def test_data_libra_test_reads_a_local_copy(tmp_path):
    from hydra import compose, initialize_config_dir

    from libra_train.cli_utils import CONF_DIR
    from libra_train.config import RunConfig
    from libra_train.data.io import load_records

    local = tmp_path / "test.json"  # Libra-Test's own layout: one JSON array of guard-schema samples
    local.write_text(json.dumps([sample(i, source="Real Data") for i in range(3)], ensure_ascii=False))
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"paths.run_dir={tmp_path}",
                "logger=none",
                "data=libra_test",
                f"data.libra_test_path={local}",
                "curriculum=zero_shot",
                "model=qwen2.5-0.5b",
            ],
        )
    run = RunConfig.from_hydra(cfg)
    assert run.data.eval_sets == {"libra_test": str(local)}
    assert len(load_records(run.data.eval_sets["libra_test"])) == 3
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        hub = compose(
            "train",
            overrides=[
                f"paths.run_dir={tmp_path}",
                "logger=none",
                "data=libra_test",
                "curriculum=zero_shot",
                "model=qwen2.5-0.5b",
            ],
        )
    assert RunConfig.from_hydra(hub).data.eval_sets == {"libra_test": "hub:caskcsg/Libra-Test"}


def test_a_run_on_an_unreachable_libra_test_stops_before_any_model_loads(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli(
        "libra-train",
        f"paths.run_dir={run_dir}",
        "logger=none",
        "data=libra_test",
        "curriculum=zero_shot",
        "model=qwen2.5-0.5b",
        check=False,
        env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and len(lines) == 1 and "caskcsg/Libra-Test" in lines[0], proc.stderr
    assert not (run_dir / "untrained_eval").exists()


def test_prompts_show_what_they_can_and_say_why_a_target_is_missing(qwen_backbone, tmp_path):
    """Showing Qwen3Guard's input needs no target: a response without meta.refusal (for its Refusal:
    line) gets target null and the reason, instead of stopping the command."""
    records = [sample(1, meta={"refusal": False}), sample(2), sample(3, label="安全")]
    data = write_jsonl(tmp_path / "data.jsonl", records)
    out = tmp_path / "out"
    run_cli("libra-infer", f"model={qwen_backbone}", f"data={data}", f"output_dir={out}", "mode=prompts",
            "format=qwen3guard")  # fmt: skip
    rows = read_jsonl(out / "prompts.jsonl")
    assert rows[0]["target"].endswith("Refusal: No") and "no_target" not in rows[0]
    assert rows[1]["target"] is None and "meta.refusal" in rows[1]["no_target"]
    assert all(row["prompt"].startswith("<|im_start|>user\n# Task:") for row in rows)


def test_an_unsafe_qwen3guard_target_names_a_category_and_shieldlm_says_what_to_change():
    """'Categories: None' is what Qwen3Guard writes for safe content: an unsafe sample with no category it
    can map cannot be written as a target. ShieldLM's question-only error names the setting to change."""
    from libra_train.errors import ConfigError

    unsafe = sample(1, category_name="", meta={"refusal": False})
    with pytest.raises(ConfigError, match="'Categories: None' means safe.*sample 1 has no category_name"):
        render_target(unsafe, FormatConfig(prompt="qwen3guard"))
    assert "Categories: None" in render_target({**unsafe, "label": "安全"}, FormatConfig(prompt="qwen3guard"))
    alone = {"id": 7, "question": "问题"}
    with pytest.raises(ConfigError, match="sample 7 has none: give every sample a response") as err:
        render_prompt(alone, None, FormatConfig(prompt="shieldlm"))
    assert "format.task=response" not in err.value.message  # already the setting: no advice to set it
    with pytest.raises(
        ConfigError, match="format.task=both asks for the question alone: use format.task=response"
    ):
        render_prompt(alone, None, FormatConfig(prompt="shieldlm", task="both"))
