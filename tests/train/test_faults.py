"""Run-directory lock and corrupt checkpoints: clear refusals, never a stuck lock or a deep trace."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from libra_train.errors import CheckpointError, LibraError
from libra_train.model import load_model_and_tokenizer
from libra_train.runtime.run_dir import RunLock
from libra_train.train.stage import last_complete_checkpoint
from tests.conftest import run_cli


def test_a_live_lock_refuses_and_a_dead_one_is_taken_over(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / ".lock").write_text(str(holder.pid))
        with pytest.raises(LibraError, match=f"in use by process {holder.pid}"):
            RunLock(tmp_path, 600, 30).acquire()
        proc = run_cli("libra-train", f"paths.run_dir={tmp_path}", "logger=none", check=False)
        assert proc.returncode == 2 and "in use by process" in proc.stderr and "Traceback" not in proc.stderr
    finally:
        holder.kill()
        holder.wait()
    lock = RunLock(tmp_path, 600, 30)  # the holder is dead now: its lock is stale
    lock.acquire()
    assert json.loads((tmp_path / ".lock").read_text()) == {"host": socket.gethostname(), "pid": os.getpid()}
    lock.release()
    assert not (tmp_path / ".lock").exists()


def _lock_from_another_host(run_dir, age_s: float):
    path = run_dir / ".lock"
    path.write_text(json.dumps({"host": "node-7", "pid": os.getpid()}))  # a pid alive here, on purpose
    os.utime(path, (time.time() - age_s, time.time() - age_s))
    return path


def test_a_lock_from_another_host_holds_until_its_heartbeat_is_stale(tmp_path):
    _lock_from_another_host(tmp_path, age_s=30)
    with pytest.raises(LibraError, match="on host node-7") as err:
        RunLock(tmp_path, stale_after_s=120, heartbeat_s=30).acquire()
    assert "run_lock.stale_after_s=120s" in str(err.value)
    _lock_from_another_host(tmp_path, age_s=300)  # its holder stopped beating 5 minutes ago
    lock = RunLock(tmp_path, stale_after_s=120, heartbeat_s=30)
    lock.acquire()
    assert json.loads((tmp_path / ".lock").read_text())["host"] == socket.gethostname()
    lock.release()
    assert not list(tmp_path.glob(".lock*"))


def test_the_holder_keeps_its_lock_fresh(tmp_path):
    lock = RunLock(tmp_path, stale_after_s=5, heartbeat_s=0.1)
    lock.acquire()
    path = tmp_path / ".lock"
    os.utime(path, (time.time() - 60, time.time() - 60))
    time.sleep(0.5)
    assert time.time() - path.stat().st_mtime < 1  # beaten again: another host would not take it
    lock.release()


def test_a_run_refuses_a_directory_held_from_another_host(tmp_path):
    _lock_from_another_host(tmp_path, age_s=1)
    proc = run_cli("libra-train", f"paths.run_dir={tmp_path}", "logger=none", check=False)
    assert proc.returncode == 2 and "node-7" in proc.stderr and "Traceback" not in proc.stderr


def test_corrupt_or_partial_checkpoints_name_themselves(trained_run, tmp_path):
    broken = tmp_path / "ckpt"
    shutil.copytree(trained_run / "stage1_pretrain" / "checkpoint", broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])  # a half-written file
    with pytest.raises(CheckpointError, match=str(broken)):
        load_model_and_tokenizer(str(broken))
    (broken / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json is corrupt"):
        load_model_and_tokenizer(str(broken))
    proc = run_cli(
        "libra-infer",
        f"model={broken}",
        f"data={trained_run / 'data' / 'heldout.jsonl'}",
        f"output_dir={tmp_path / 'p'}",
        check=False,
    )
    assert proc.returncode == 2 and str(broken) in proc.stderr and "Traceback" not in proc.stderr


def test_a_kill_during_a_write_never_leaves_a_file_that_looks_complete(tmp_path):
    target = tmp_path / "predictions.jsonl"
    writer = (
        "import sys; from libra_train.data.io import atomic_write_text; "
        "atomic_write_text(sys.argv[1], 'x' * 400_000_000)"
    )  # ~0.4 GB: long enough to be killed mid-way
    proc = subprocess.Popen([sys.executable, "-c", writer, str(target)])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(p != target for p in tmp_path.iterdir()):
        time.sleep(0.01)
    time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert proc.returncode != 0 and not target.exists()  # only a temp file may remain, never the real name


def test_a_resume_skips_checkpoints_a_killed_run_was_writing(tmp_path):
    """A SIGKILL mid-save leaves the newest checkpoint without a readable trainer_state.json (written
    after the weights): the resume takes the newest whole one, and one process removes the rest."""
    trainer = tmp_path / "trainer"
    for step, state in ((5, '{"global_step": 5}'), (10, None), (15, "{")):
        (trainer / f"checkpoint-{step}").mkdir(parents=True)
        if state is not None:
            (trainer / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    assert last_complete_checkpoint(trainer, remove_partial=False) == str(trainer / "checkpoint-5")
    assert sorted(p.name for p in trainer.iterdir()) == ["checkpoint-10", "checkpoint-15", "checkpoint-5"]
    assert last_complete_checkpoint(trainer, remove_partial=True) == str(trainer / "checkpoint-5")
    assert [p.name for p in trainer.iterdir()] == ["checkpoint-5"]
    assert last_complete_checkpoint(tmp_path / "none", remove_partial=True) is None


def test_a_stopped_run_says_what_a_resume_keeps_and_what_it_trains_again(tmp_path):
    from types import SimpleNamespace

    from libra_train.launch import redone_steps
    from libra_train.runtime.run_dir import Manifest

    run = SimpleNamespace(run_dir=tmp_path)
    manifest = Manifest(tmp_path)
    manifest.data.update(stages=[{"name": "stage1_pretrain", "status": "interrupted"}])
    manifest.data["interrupted"] = {"stage": "stage1_pretrain", "step": 50, "signal": "SIGINT"}
    manifest.save()
    said = redone_steps(run)
    assert "stage1_pretrain resumes from its checkpoint at step 50" in said and "trained again" in said
    manifest.data["interrupted"]["step"] = 0
    manifest.save()
    assert "starts again from its first step" in redone_steps(run)
    manifest.data["stages"][0]["status"] = "trained"
    manifest.save()
    assert "only its evaluation runs again" in redone_steps(run)
