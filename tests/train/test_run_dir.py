"""The run directory's own files: manifest.json as other tools read it, and the lock's details that a
second host or a crashed run depends on."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from libra_train.errors import LibraError
from libra_train.runtime.run_dir import Manifest, RunLock, _alive


def test_the_manifest_is_manifest_json_readable_as_written(tmp_path):
    manifest = Manifest(tmp_path)
    entry = manifest.stage("stage1_pretrain")
    assert entry == {"name": "stage1_pretrain", "status": "pending"}
    entry["status"] = "done"
    assert manifest.stage("stage1_pretrain") is entry  # found again, not added twice
    manifest.stage("stage2_sft")["note"] = "不安全"
    manifest.save()
    text = (tmp_path / "manifest.json").read_text(encoding="utf-8")
    # indented, Chinese as written (not \\u escapes), one line end at the close: a diff-friendly record
    assert text == (
        '{\n  "stages": [\n    {\n      "name": "stage1_pretrain",\n      "status": "done"\n    },\n'
        '    {\n      "name": "stage2_sft",\n      "status": "pending",\n      "note": "不安全"\n    }\n'
        "  ]\n}\n"
    )
    assert Manifest(tmp_path).data == json.loads(text)
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically: no temporary file left beside it


def test_a_lock_is_taken_in_a_run_directory_not_yet_made_and_its_heartbeat_never_holds_the_process(
    tmp_path,
):
    run_dir = tmp_path / "outputs" / "new"
    lock = RunLock(run_dir, stale_after_s=60, heartbeat_s=30)
    lock.acquire()
    assert json.loads((run_dir / ".lock").read_text()) == {"host": socket.gethostname(), "pid": os.getpid()}
    assert lock._beat.is_alive() and lock._beat.daemon  # a crash never waits on the heartbeat
    assert lock._beat.name == "run-lock-heartbeat"  # how it shows in a thread dump
    lock.release()
    lock._beat.join(timeout=5)
    assert not lock._beat.is_alive() and not (run_dir / ".lock").exists()


def test_the_holders_own_lock_and_an_unreadable_one_are_taken_and_stale_ones_are_cleared(tmp_path):
    lock = RunLock(tmp_path, stale_after_s=60, heartbeat_s=30)
    (tmp_path / ".lock").write_text(json.dumps(lock.owner))  # left by this very process
    lock.acquire()
    lock.release()
    (tmp_path / ".lock").write_text(json.dumps({"host": lock.owner["host"]}))  # no pid: no process holds it
    lock.acquire()
    lock.release()
    (tmp_path / ".lock").write_text("not a lock")  # unreadable: no holder to wait for
    (tmp_path / ".lock.stale-node-7-12").write_text("{}")
    lock.acquire()
    lock.release()
    assert not list(tmp_path.glob(".lock*"))


def test_a_refusal_names_the_holder_its_heartbeat_and_what_to_do(tmp_path):
    path = tmp_path / ".lock"
    path.write_text(json.dumps({"host": "node-7", "pid": 4321}))
    os.utime(path, (time.time() - 30, time.time() - 30))
    with pytest.raises(LibraError) as err:
        RunLock(tmp_path, stale_after_s=120, heartbeat_s=30).acquire()
    assert str(err.value) == (
        f"run directory {tmp_path} is in use by process 4321 on host node-7 (heartbeat 30s ago; taken over "
        f"after run_lock.stale_after_s=120s) (lock {path}); wait for it or use another paths.run_dir"
    )


def test_only_a_running_process_counts_as_alive():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert _alive(os.getpid()) and _alive(1)  # pid 1 is someone else's: alive, though not ours to signal
    assert not _alive(dead.pid)
    # 0 and negative pids would signal a process group (kill(0, 0) always succeeds): never a holder
    assert not _alive(0) and not _alive(-1)


def test_alive_only_asks_whether_the_process_exists(monkeypatch):
    sent = []

    def kill(pid, sig):
        sent.append((pid, sig))
        raise PermissionError  # another user's process: it exists

    monkeypatch.setattr(os, "kill", kill)
    assert _alive(4321) and sent == [(4321, 0)]  # signal 0: a check, never a signal sent


def test_a_stop_signal_becomes_interrupted_and_a_second_ctrl_c_is_pythons_own():
    import signal
    import threading

    from libra_train.runtime.signals import Interrupted, stop_on_signals

    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        worker = threading.Thread(target=stop_on_signals)
        worker.start()
        worker.join()
        assert {s: signal.getsignal(s) for s in saved} == saved  # only the main thread may set handlers
        stop_on_signals()
        with pytest.raises(Interrupted) as stopped:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        assert (stopped.value.code, stopped.value.signal) == (143, "SIGTERM")
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


def _masked_stop():
    """What OmegaConf does when a stop lands inside one of its updates: its cleanup fails, and its own
    error reaches the caller with the stop only in its context."""
    import signal

    from libra_train.runtime.signals import Interrupted

    try:
        raise Interrupted(signal.SIGTERM)
    except Interrupted:
        try:
            raise AttributeError("'NoneType' object has no attribute '_invalidate_flags_cache'")
        except AttributeError as cleanup:
            raise RuntimeError("ConfigCompositionException") from cleanup


def test_a_stop_hidden_behind_another_error_is_found_and_an_error_without_one_is_not():
    from libra_train.runtime.signals import stop_behind

    with pytest.raises(RuntimeError) as masked:
        _masked_stop()
    assert stop_behind(masked.value).signal == "SIGTERM"
    with pytest.raises(RuntimeError) as plain:
        try:
            raise KeyError("x")
        except KeyError as err:
            raise RuntimeError("y") from err
    assert stop_behind(plain.value) is None


def test_a_run_whose_stop_a_library_masks_ends_as_stopped_and_frees_its_folder(tmp_path, monkeypatch, capsys):
    import signal

    import libra_train.pipeline
    from libra_train.cli_utils import compose_config
    from libra_train.config import RunConfig  # noqa: F401  (registers the YAML's defaults)
    from libra_train.launch import run_pipeline

    run_dir = tmp_path / "run"
    monkeypatch.setattr(libra_train.pipeline, "run_curriculum", lambda run: _masked_stop())
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with pytest.raises(SystemExit) as stopped:
            run_pipeline(compose_config("train", [f"paths.run_dir={run_dir}", "logger=none"]))
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
    assert stopped.value.code == 143
    assert "libra-train: stopped by SIGTERM; resume with:" in capsys.readouterr().err
    assert run_dir.is_dir() and not (run_dir / ".lock").exists()
