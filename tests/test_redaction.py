"""Redaction: a secret held in an environment variable is masked wherever it shows up (config values
under harmless keys, command-line arguments, W&B's config and recorded command line); values under
secret-looking keys are masked whatever they are."""

import sys
import time

from libra_train.config_groups import LoggerConfig
from libra_train.redaction import REDACTED, redact, redact_args
from libra_train.tracking import WandbTracker

ENV_SECRET = "tok-planted-3e9d1c77aa"


def test_an_env_held_secret_is_masked_under_any_key(monkeypatch):
    monkeypatch.setenv("LIBRA_TEST_SERVICE_TOKEN", ENV_SECRET)
    cfg = {
        "data": {"url": f"http://host/v1?t={ENV_SECRET}", "paths": [f"/a/{ENV_SECRET}/b", 3]},
        "openai": {"api_key": "typed-in-config", "api_key_env": "OPENAI_API_KEY", "password": ""},
        "plain": "nothing secret",
    }
    assert redact(cfg) == {
        "data": {"url": f"http://host/v1?t={REDACTED}", "paths": [f"/a/{REDACTED}/b", 3]},
        "openai": {"api_key": REDACTED, "api_key_env": "OPENAI_API_KEY", "password": ""},
        "plain": "nothing secret",
    }


def test_short_or_non_secret_env_values_are_left_alone(monkeypatch):
    monkeypatch.setenv("LIBRA_TEST_TOKEN", "short")  # too short to be a key: masking it would mangle text
    monkeypatch.setenv("LIBRA_TEST_HOME", "/home/planted-value")  # not a secret-looking name
    assert redact({"a": "short /home/planted-value"}) == {"a": "short /home/planted-value"}


def test_command_line_arguments_are_masked(monkeypatch):
    monkeypatch.setenv("LIBRA_TEST_SECRET", ENV_SECRET)
    args = [
        "model=tiny",
        f"data.url=http://h/{ENV_SECRET}",
        "+openai.api_key=typed",
        "openai.api_key_env=MY_KEY",
    ]
    assert redact_args(args) == [
        "model=tiny",
        f"data.url=http://h/{REDACTED}",
        f"+openai.api_key={REDACTED}",
        "openai.api_key_env=MY_KEY",
    ]


def test_wandb_config_and_recorded_command_line_never_hold_the_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("LIBRA_TEST_SERVICE_TOKEN", ENV_SECRET)
    monkeypatch.setenv("WANDB_SILENT", "true")
    argv = ["libra-train", f"data.url=http://h/{ENV_SECRET}"]
    monkeypatch.setattr(sys, "argv", list(argv))
    settings = LoggerConfig(backend="wandb", project="p", group="g", mode="offline")
    tracker = WandbTracker(tmp_path, {"data": {"url": f"http://h/{ENV_SECRET}"}}, settings, "n", [])
    try:
        assert dict(tracker.run.config)["data"] == {"url": f"http://h/{REDACTED}"}
        assert sys.argv == argv  # our own process keeps its real arguments
    finally:
        tracker.finish()
    # An offline run keeps its metadata (the command line among it) in the .wandb record file. W&B's
    # service process writes it: when another run of this test process started the service, finish()
    # can return before the records reach the file, so wait for them (a pytest-xdist worker runs many).
    masked, deadline = f"data.url=http://h/{REDACTED}".encode(), time.monotonic() + 30
    while True:
        files = [p for p in (tmp_path / "wandb").rglob("*") if p.is_file()]
        records = b"".join(p.read_bytes() for p in files if p.suffix == ".wandb")
        if masked in records or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert masked in records
    for path in files:
        assert ENV_SECRET.encode() not in path.read_bytes(), path


def test_eight_characters_is_long_enough_to_be_a_secret(monkeypatch):
    monkeypatch.setenv("LIBRA_TEST_API_KEY", "k8chars!")
    assert redact({"url": "http://h/?k=k8chars!"}) == {"url": f"http://h/?k={REDACTED}"}


def test_only_the_key_before_the_first_equals_sign_decides():
    # a harmless key whose value merely mentions token=… is left as it is
    assert redact_args(["data.url=http://h/?token=abc"]) == ["data.url=http://h/?token=abc"]
    assert redact_args(["+openai.api_key=a=b"]) == [f"+openai.api_key={REDACTED}"]


def test_token_counts_and_tokenizer_settings_are_not_secrets():
    cfg = {
        "eval": {"max_new_tokens": 256},
        "serve": {"category_tokens": 32, "max_batch_tokens": 4096},
        "model": {"tokenizer_name": "Qwen/Qwen2.5-7B"},
        "hub": {"hf_token": "hf_typed", "authToken": "x1"},
    }
    assert redact(cfg) == {**cfg, "hub": {"hf_token": REDACTED, "authToken": REDACTED}}
    args = ["eval.max_new_tokens=64", "+hub.token=typed"]
    assert redact_args(args) == ["eval.max_new_tokens=64", f"+hub.token={REDACTED}"]
