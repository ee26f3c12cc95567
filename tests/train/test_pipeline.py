"""libra-train end to end on a tiny model: learning happens, stages chain, LoRA, resume, W&B offline,
bad config."""

import json
import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from libra_train.model import weights_fingerprint
from tests.conftest import BIN, TINY_TRAIN, read_jsonl, run_cli


def _weights(path: Path) -> dict:
    files = list(path.glob("*.safetensors"))
    assert files, f"no safetensors in {path}"
    return {k: v for f in files for k, v in load_file(f).items()}


def test_two_stage_run_learns_and_chains(trained_run):
    manifest = json.loads((trained_run / "manifest.json").read_text())
    stages = manifest["stages"]
    assert [s["name"] for s in stages] == ["stage1_pretrain", "stage2_sft"]
    assert all(s["status"] == "done" and s["train"]["steps"] == 70 for s in stages)
    for s in stages:
        assert s["train"]["loss_last"] < s["train"]["loss_first"]  # the loss fell
    backbone = _weights(trained_run / "backbone")
    stage1 = _weights(trained_run / "stage1_pretrain" / "checkpoint")
    stage2 = _weights(trained_run / "stage2_sft" / "checkpoint")
    changed = lambda a, b: any(not a[k].equal(b[k]) for k in a)  # noqa: E731
    assert changed(backbone, stage1) and changed(stage1, stage2)
    # stage 2 started from stage 1's result, not from the backbone
    assert stages[1]["train"]["init_from"].endswith("stage1_pretrain/checkpoint")
    assert stages[1]["train"]["init_fingerprint"] == weights_fingerprint(stage1.items())
    assert stages[0]["train"]["init_fingerprint"] == weights_fingerprint(backbone.items())
    assert "eval_before_training" in manifest and "heldout" in stages[1]["eval"]
    # learning, not just a falling loss: the guard ranks held-out samples (unseen attack methods,
    # wordings and response style) better than the untrained backbone and than chance (about 0.5); 70
    # steps are too few to also settle its 0.5 threshold, so accuracy is only required not to fall.
    # On seed 0 of this config held-out AUPRC went from 0.367 to 0.928 (42 samples).
    untrained = manifest["eval_before_training"]["heldout"]
    final = stages[1]["eval"]["heldout"]
    assert final["auprc"] > max(0.6, untrained["auprc"] + 0.1)
    assert final["average"]["accuracy"] >= untrained["average"]["accuracy"]
    for s in stages:
        for name in ("predictions.jsonl", "metrics.json", "confusion.png"):
            assert (trained_run / s["name"] / "eval" / "heldout" / name).exists()
    report = (trained_run / "report.md").read_text()
    assert "stage2_sft | heldout" in report and "untrained | heldout" in report
    assert (trained_run / "config.yaml").exists() and not (trained_run / ".lock").exists()


def test_rerun_on_a_finished_run_redoes_nothing(trained_run):
    before = (trained_run / "stage2_sft" / "checkpoint" / "model.safetensors").stat().st_mtime_ns
    proc = run_cli("libra-train", f"paths.run_dir={trained_run}", *TINY_TRAIN)
    assert "done already, skipped" in proc.stdout + proc.stderr
    assert (trained_run / "stage2_sft" / "checkpoint" / "model.safetensors").stat().st_mtime_ns == before


@pytest.mark.slow
def test_lora_two_stage_continues_the_adapter(tmp_path):
    run_dir = tmp_path / "lora"
    run_cli(
        "libra-train",
        f"paths.run_dir={run_dir}",
        "peft=lora",
        "peft.r=4",
        "eval.before_training=false",
        *[a for a in TINY_TRAIN if not a.startswith(("train.max_steps", "eval.before"))],
        "train.max_steps=6",
    )
    manifest = json.loads((run_dir / "manifest.json").read_text())
    a1 = _weights(run_dir / "stage1_pretrain" / "checkpoint")
    a2 = _weights(run_dir / "stage2_sft" / "checkpoint")
    assert all("lora_" in k for k in a1) and set(a1) == set(a2)
    assert any(not a1[k].equal(a2[k]) for k in a1)
    assert manifest["stages"][1]["train"]["init_fingerprint"] == weights_fingerprint(a1.items())
    assert (run_dir / "stage2_sft" / "checkpoint" / "adapter_config.json").exists()
    assert manifest["stages"][1]["eval"]["heldout"]["n"] > 0  # the adapter loaded for evaluation
    # its export merges the adapter into the base and scores as the run's own evaluation scored it
    export = tmp_path / "export"
    run_cli("libra-export", f"checkpoint={run_dir}", f"output_dir={export}")
    assert not (export / "adapter_config.json").exists() and (export / "model.safetensors").exists()
    data = run_dir / "data" / "heldout.jsonl"
    run_cli("libra-infer", f"model={export}", f"data={data}", f"output_dir={tmp_path / 'scored'}")
    scored = {r["id"]: r for r in read_jsonl(tmp_path / "scored" / "0-of-1.jsonl")}
    own = read_jsonl(run_dir / "stage2_sft" / "eval" / "heldout" / "predictions.jsonl")
    assert len(own) == len(scored) > 0
    for row in own:
        assert scored[row["id"]]["p_unsafe"] == pytest.approx(row["p_unsafe"], abs=1e-5)
        assert scored[row["id"]]["pred_label"] == row["pred_label"]


@pytest.mark.slow  # over the CI budget; tests/train/test_faults.py kills and resumes a stage
def test_killed_stage_resumes_to_the_same_step_and_a_kill_between_stages_keeps_stage1(tmp_path):
    run_dir = tmp_path / "killed"
    args = [
        str(BIN / "libra-train"),
        f"paths.run_dir={run_dir}",
        "eval.before_training=false",
        *[a for a in TINY_TRAIN if not a.startswith(("train.max_steps", "eval.before", "train.save_steps"))],
        "train.max_steps=20",
        "train.save_steps=5",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    trainer_dir = run_dir / "stage1_pretrain" / "trainer"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (trainer_dir / "checkpoint-10").exists():
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (trainer_dir / "checkpoint-10").exists() and not (
        run_dir / "stage1_pretrain" / "checkpoint"
    ).exists()
    # Relaunch, and kill again as soon as stage 1 is done: between the stages.
    log = tmp_path / "resumed.log"
    with log.open("w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())
        manifest_path = run_dir / "manifest.json"
        while (
            proc.poll() is None
            and time.monotonic() < deadline + 300
            and '"status": "done"' not in (manifest_path.read_text() if manifest_path.exists() else "")
        ):
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert "resuming from" in log.read_text()
    stage1 = json.loads(manifest_path.read_text())["stages"][0]
    weights = run_dir / "stage1_pretrain" / "checkpoint" / "model.safetensors"
    assert stage1["status"] == "done" and stage1["train"]["steps"] == 20
    written = weights.stat().st_mtime_ns
    out = run_cli("libra-train", *args[1:])
    assert "stage1_pretrain: done already, skipped" in out.stdout + out.stderr
    manifest = json.loads(manifest_path.read_text())
    assert manifest["stages"][0] == stage1 and weights.stat().st_mtime_ns == written  # stage 1 not redone
    assert [s["train"]["steps"] for s in manifest["stages"]] == [20, 20]


PLANTED_ENV_KEY, PLANTED_CONFIG_KEY = "sk-planted-env-7f3a9c2e11", "sk-planted-cfg-4b8d0e6f22"


def test_wandb_offline_run_holds_the_eval_metrics_and_no_secret(tmp_path):
    run_dir = tmp_path / "wb"
    proc = run_cli(
        "libra-train",
        f"paths.run_dir={run_dir}",
        "logger=wandb",
        "curriculum=pretrain_only",
        "eval.before_training=false",
        *[
            a
            for a in TINY_TRAIN
            if a not in ("logger=none",) and not a.startswith(("train.max_steps", "eval.before"))
        ],
        "train.max_steps=4",
        f"+data.prepare.openai.api_key={PLANTED_CONFIG_KEY}",
        env={"OPENAI_API_KEY": PLANTED_ENV_KEY, "WANDB_SILENT": "false"},  # as a user's shell has it
    )
    # The console fits a screen: progress lines aside, one line per step of the run and no W&B banner.
    console = (proc.stdout + proc.stderr).splitlines()
    said = [line for line in console if not re.search(r": (step )?\d+/\d+ ", line)]
    assert not [line for line in said if line.startswith("wandb:")], said
    # (up to two of them are warnings a 4-step guard may earn: a one-sided set, a missing prompt view)
    assert len(said) <= 14 and len(set(said)) == len(said) and said[-1].startswith("report:"), said
    # Secrets: neither the env-held key nor one typed into the config reaches any file or the logs.
    for path in [p for p in run_dir.rglob("*") if p.is_file()]:
        data = path.read_bytes()
        assert PLANTED_ENV_KEY.encode() not in data and PLANTED_CONFIG_KEY.encode() not in data, path
    assert (
        PLANTED_ENV_KEY not in proc.stdout + proc.stderr
        and PLANTED_CONFIG_KEY not in proc.stdout + proc.stderr
    )
    assert "api_key: '***'" in (run_dir / "config.yaml").read_text()
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    # an offline run keeps its history in the .wandb record file that `wandb sync` uploads
    records = b"".join(p.read_bytes() for p in runs[0].glob("*.wandb"))
    assert b"stage1_pretrain/eval/heldout/accuracy" in records and b"stage1_pretrain/train/loss" in records
    tables = {p.name.split("_")[0] for p in (runs[0] / "files" / "media" / "table").rglob("*.table.json")}
    assert {"confusion", "pr", "predictions", "per"} <= tables  # native charts, mistakes, per source


@pytest.mark.parametrize(
    "override, message",
    [
        ("model=gpt5", "config 'model': no option 'gpt5'; options: qwen2.5-0.5b"),  # no such group choice
        ("model.build=huge", "config 'model.build'"),
        ("train.max_steps=-3", "max_steps"),
        ("train.learning_rate=0", "learning_rate"),
        ("data=cold", "config 'data.stage2.path'"),
        ("format.critic=middle", "config 'format.critic'"),
        ("peft.method=qlora", "config 'peft.method'"),
    ],
)
def test_bad_config_fails_before_training_naming_the_key(tmp_path, override, message):
    run_dir = tmp_path / "bad"
    proc = run_cli("libra-train", f"paths.run_dir={run_dir}", "logger=none", override, check=False)
    assert proc.returncode == 2 and message in proc.stderr
    assert proc.stderr.startswith("error: config '") and proc.stderr.count("\n") == 1  # one line of ours
    assert not (run_dir / "stage1_pretrain").exists() and not (run_dir / "backbone").exists()


def test_empty_dataset_fails_before_training(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    proc = run_cli(
        "libra-train",
        f"paths.run_dir={tmp_path / 'r'}",
        "logger=none",
        f"data.stage1.path={empty}",
        check=False,
    )
    assert proc.returncode == 2 and "empty file" in proc.stderr and str(empty) in proc.stderr
    assert not (tmp_path / "r" / "backbone").exists()


@pytest.mark.parametrize(
    "sig, status",
    [
        pytest.param(signal.SIGINT, 130, marks=pytest.mark.slow),  # over the CI budget
        # SIGTERM takes the same path (runtime/signals.py); the default run checks it on an ensemble
        pytest.param(signal.SIGTERM, 143, marks=pytest.mark.slow),
    ],
)
def test_a_stopped_run_says_where_and_how_to_resume_and_the_resume_finishes(tmp_path, sig, status):
    run_dir = tmp_path / "stopped"
    args = [
        "eval.before_training=false",
        *[a for a in TINY_TRAIN if not a.startswith(("train.max_steps", "eval.before", "train.save_steps"))],
        "train.max_steps=20",
        "train.save_steps=5",
    ]
    proc = subprocess.Popen(
        [str(BIN / "libra-train"), f"paths.run_dir={run_dir}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    trainer_dir = run_dir / "stage1_pretrain" / "trainer"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (trainer_dir / "checkpoint-5" / "trainer_state.json").exists():
        time.sleep(0.2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == status, err[-2000:]
    assert "Traceback" not in err
    hints = [line for line in err.splitlines() if "resume with: " in line]
    assert len(hints) == 1 and hints[0].startswith(f"libra-train: stopped by {signal.Signals(sig).name}")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    stopped = manifest["interrupted"]
    assert stopped["stage"] == "stage1_pretrain" and stopped["step"] >= 5 and stopped["signal"] == sig.name
    assert manifest["stages"][0]["status"] == "interrupted"
    command = shlex.split(hints[0].split("resume with: ", 1)[1])
    assert command[0] == "libra-train" and command[-1] == f"paths.run_dir={run_dir}"
    out = run_cli(*command)  # the printed command, as a user would paste it
    assert "resuming from" in out.stdout + out.stderr
    assert "missing keys" not in out.stdout + out.stderr  # tied embeddings: nothing is missing
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert "interrupted" not in manifest and [s["status"] for s in manifest["stages"]] == ["done", "done"]
    assert manifest["stages"][0]["train"]["steps"] == 20
    assert out.stdout.splitlines()[-3:] == [
        f"run directory: {run_dir}",
        f"checkpoint:    {run_dir / 'stage2_sft' / 'checkpoint'}",
        f"report:        {run_dir / 'report.md'}",
    ]


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_ends_the_run_with_128_plus_its_number_and_one_line_saying_how_to_resume(
    tmp_path, sig, status
):
    """The default suite's check of the exit statuses (the slow one stops a run mid-stage and resumes it):
    the signal lands while the run makes its data, once the run holds its directory's lock."""
    run_dir = tmp_path / "run"
    args = [
        str(BIN / "libra-train"),
        f"paths.run_dir={run_dir}",
        "logger=none",
        "data.prepare.num_samples=20000",
    ]
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and not (run_dir / ".lock").exists():
        time.sleep(0.1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == status, err[-2000:]
    assert "Traceback" not in err
    (said,) = [line for line in err.splitlines() if line.startswith("libra-train: stopped by")]
    assert said == (
        f"libra-train: stopped by {sig.name}; resume with: libra-train logger=none "
        f"data.prepare.num_samples=20000 paths.run_dir={run_dir}"
    )


def test_a_checkpoint_being_written_when_the_run_stops_is_not_left_as_a_resume_point(tmp_path):
    from types import SimpleNamespace

    from libra_train.pipeline import record_interruption
    from libra_train.runtime.run_dir import Manifest
    from libra_train.runtime.signals import Interrupted

    trainer = tmp_path / "stage1_pretrain" / "trainer"
    (trainer / "checkpoint-5").mkdir(parents=True)
    (trainer / "checkpoint-5" / "trainer_state.json").write_text("{}")
    (trainer / "checkpoint-10").mkdir()  # the save that the signal cut short: no trainer state yet
    manifest = Manifest(tmp_path)
    manifest.stage("stage1_pretrain")["status"] = "running"
    record_interruption(
        manifest, "stage1_pretrain", Interrupted(signal.SIGINT), SimpleNamespace(run_dir=tmp_path)
    )
    assert not (trainer / "checkpoint-10").exists() and (trainer / "checkpoint-5").exists()
    saved = json.loads((tmp_path / "manifest.json").read_text())
    assert saved["interrupted"] == {"stage": "stage1_pretrain", "step": 5, "signal": "SIGINT"}
    assert saved["stages"][0]["status"] == "interrupted"
