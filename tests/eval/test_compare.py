"""libra-compare as a user runs it: tiny guards in our format and in Llama Guard 3's, a guard behind a
local OpenAI-compatible server, and one that cannot load, over the same data, into one leaderboard."""

import json

import pytest
import yaml

from tests.chat_server import ChatServer
from tests.conftest import run_cli


def test_the_comparison_ranks_every_guard_and_a_broken_one_is_a_row(trained_run, tiny_backbone, tmp_path):
    heldout = trained_run / "data" / "heldout.jsonl"
    with ChatServer() as server:
        guards = {
            "ours": {"model": str(trained_run / "stage2_sft" / "checkpoint"), "format": "rear"},
            "untrained-llama-guard-layout": {"model": str(tiny_backbone), "format": "llama_guard3"},
            "endpoint": {"model": "openai:judge", "format": "rear", "openai": {"base_url": server.url}},
            "missing": {"model": str(tmp_path / "no-such-guard"), "format": "rear"},
        }
        spec = tmp_path / "guards.yaml"
        spec.write_text(yaml.safe_dump(guards, allow_unicode=True), encoding="utf-8")
        out = tmp_path / "board"
        proc = run_cli(
            "libra-compare",
            f"guards={spec}",
            f"+data.heldout={heldout}",
            f"output_dir={out}",
            "logger=wandb",
            env={"WANDB_MODE": "offline", "HOME": str(tmp_path)},
        )
    rows = {r["guard"]: r for r in json.loads((out / "leaderboard.json").read_text())}
    assert set(rows) == set(guards)
    assert "error" in rows["missing"] and all("error" not in r for k, r in rows.items() if k != "missing")
    n = sum(1 for line in heldout.read_text(encoding="utf-8").splitlines() if line.strip())
    for name in ("ours", "untrained-llama-guard-layout", "endpoint"):
        assert rows[name]["n"] == n and rows[name]["samples_per_s"] > 0, name
    assert rows["ours"]["mode"] == "label" and rows["ours"]["threshold"] == 0.5 and rows["ours"]["auprc"]
    assert rows["endpoint"]["mode"] == "generate" and rows["endpoint"]["auprc"] is None  # no p(unsafe)
    assert rows["untrained-llama-guard-layout"]["format"] == "llama_guard3"
    # the test server judges by its own rule: every answer parses, and the rule is right on this data
    assert rows["endpoint"]["parse_failures"] == 0
    board = (out / "leaderboard.md").read_text(encoding="utf-8")
    assert "| missing |" in board and "error:" in board and "Avg Acc" in board and "FPR@95%R" in board
    assert (out / "pr_heldout.png").stat().st_size > 0
    assert "| ours |" in proc.stdout
    # the W&B run holds the leaderboard as a table
    records = b"".join(p.read_bytes() for p in (out / "wandb").rglob("*.wandb"))
    assert b"compare/leaderboard" in records


def test_a_comparison_that_cannot_run_says_so_once_and_fails(trained_run, tmp_path):
    """A missing data file stops it before any guard runs (once, not once per guard); an unset variable
    the guards file reads is one line; a comparison where every guard fails exits non-zero."""
    spec = tmp_path / "guards.yaml"
    spec.write_text("a:\n  model: ${oc.env:NO_SUCH_RUN}/backbone\nb:\n  model: /no/such/guard\n")
    heldout = f"+data.heldout={trained_run / 'data' / 'heldout.jsonl'}"
    unset = run_cli("libra-compare", f"guards={spec}", heldout, f"output_dir={tmp_path / 'o'}", check=False)
    assert unset.returncode == 2 and unset.stderr.count("\n") == 1 and "Traceback" not in unset.stderr
    assert unset.stderr.startswith("error: config 'guards':") and "NO_SUCH_RUN" in unset.stderr

    spec.write_text("a:\n  model: /no/such/guard\nb:\n  model: /no/such/guard/either\n")
    missing = run_cli(
        "libra-compare", f"guards={spec}", "+data.heldout=/no/data.jsonl", f"output_dir={tmp_path / 'm'}",
        check=False,
    )  # fmt: skip
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert missing.stderr == "error: config 'data.heldout': no such file or folder: /no/data.jsonl\n"
    assert not (tmp_path / "m").exists()

    failed = run_cli("libra-compare", f"guards={spec}", heldout, f"output_dir={tmp_path / 'f'}", check=False)
    assert failed.returncode == 2 and "every guard failed" in failed.stderr
    assert len(json.loads((tmp_path / "f" / "leaderboard.json").read_text())) == 2  # both rows written


@pytest.mark.parametrize(
    "spec, key, says",
    [
        ({"model": "m", "treshold": 0.3}, "guards.g.treshold", "did you mean guards.g.threshold?"),
        ({"model": "m", "mode": "prompts"}, "guards.g.mode", "not one of auto, label, generate"),
        ({"model": "m", "threshold": 2}, "guards.g.threshold", "[0, 1]"),
        ({"model": "m", "batch_size": 0}, "guards.g.batch_size", "> 0"),
        ({"model": "m", "dtype": "int3"}, "guards.g.dtype", "not one of"),
        ({"format": "rear"}, "guards.g.model", "needs a model"),
        (
            {"model": "openai:x", "openai": {"base_url": "http://h/v1", "retries": 2}},
            "guards.g.openai.retries",
            "",
        ),
    ],
)
def test_a_compared_guards_spec_is_typed_and_a_bad_key_is_named_before_any_guard_runs(spec, key, says):
    from libra_train.command_config import CompareConfig
    from libra_train.errors import ConfigError

    raw = {"guards": {"ok": {"model": "m"}, "g": spec}, "output_dir": "out", "data": {}}
    with pytest.raises(ConfigError) as err:
        CompareConfig.from_hydra(raw)  # checked before data and before any guard: the spec comes first
    assert err.value.key == key and says in err.value.message, err.value


def test_a_guards_unset_keys_are_compares_own_and_a_spanning_error_names_the_guard(tmp_path):
    from libra_train.command_config import guard_spec
    from libra_train.errors import ConfigError
    from libra_train.reporting.leaderboard import guard_config

    defaults = {"batch_size": 3, "max_new_tokens": 7, "controversial_as": "safe"}
    spec = guard_spec("g", {"model": "m", "format": "qwen3guard", "max_new_tokens": 64})
    config = guard_config("g", spec, "d.jsonl", tmp_path, defaults)
    assert (config.batch_size, config.max_new_tokens, config.controversial_as) == (3, 64, "safe")
    assert config.format.prompt == "qwen3guard" and config.threshold is None
    endpoint = guard_spec("e", {"model": "openai:x", "mode": "label", "openai": {"base_url": "http://h/v1"}})
    with pytest.raises(ConfigError) as err:  # a check across keys, made by libra-infer's config
        guard_config("e", endpoint, "d.jsonl", tmp_path, defaults)
    assert err.value.key == "guards.e.mode"
    assert err.value.message == "an endpoint answers in text: mode=generate (or auto)"
    missing = guard_spec("m", {"model": "m", "format": "llama_guard9"})
    with pytest.raises(ConfigError) as err:
        guard_config("m", missing, "d.jsonl", tmp_path, defaults)
    assert str(err.value) == "config 'guards.m.format': no format group 'llama_guard9' (conf/format/)"
