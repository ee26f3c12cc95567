"""The comparison recipes name guards libra-compare can build: every guard of each file becomes a
libra-infer config (format, mode and endpoint checked) without loading anything."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from libra_train.command_config import guard_spec
from libra_train.reporting.leaderboard import guard_config

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["compare_quickstart.yaml", "compare_libra_test.yaml"])
def test_every_guard_of_a_recipe_is_a_valid_libra_infer_config(name, tmp_path, monkeypatch):
    monkeypatch.setenv("RUN", str(tmp_path))
    guards = OmegaConf.to_container(OmegaConf.load(REPO / "recipes" / name), resolve=True)
    assert guards
    for guard, spec in guards.items():
        config = guard_config(guard, guard_spec(guard, spec), "data.jsonl", tmp_path / guard, {})
        assert config.model == spec["model"] and config.output_dir == str(tmp_path / guard)
    if name == "compare_libra_test.yaml":
        formats = {
            g: guard_config(g, guard_spec(g, s), "d", tmp_path, {}).format.prompt for g, s in guards.items()
        }
        assert formats["shieldlm-qwen-14b"] == "shieldlm" and formats["llama-guard-3-8b"] == "llama_guard3"
        assert formats["libra-guard-7b"] == "libra" and guards["gpt-4o"]["model"] == "openai:gpt-4o"
