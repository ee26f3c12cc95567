"""The run directory (docs/architecture.md, "The run directory"): manifest.json written atomically, and
a lock so two pipelines never share one directory, even from two hosts. A lock left by a dead process is
taken over, not stuck."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

from libra_train.data.io import atomic_write_text
from libra_train.errors import LibraError


class RunLock:
    """One pipeline per run directory, also across hosts on a shared filesystem. The lock file names its
    holder (host, pid) and a heartbeat thread touches it. A holder on this host is checked directly (a
    dead pid frees the lock at once); one on another host cannot be, so its lock is taken over only once
    its heartbeat is older than `stale_after_s`."""

    def __init__(self, run_dir: Path, stale_after_s: float, heartbeat_s: float):
        self.path = Path(run_dir) / ".lock"
        self.stale_after_s, self.heartbeat_s = stale_after_s, heartbeat_s
        self.owner = {"host": socket.gethostname(), "pid": os.getpid()}
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def _holder(self) -> dict:
        try:
            text = self.path.read_text().strip()
        except OSError:
            return {}
        try:  # an older lock holds a bare pid, written on this host
            return (
                json.loads(text) if text.startswith("{") else {"host": self.owner["host"], "pid": int(text)}
            )
        except ValueError:
            return {}

    def _refusal(self, holder: dict) -> str | None:
        """Why the current holder still holds the lock, or None when the lock is stale."""
        if holder == self.owner or not holder:
            return None
        if holder.get("host") == self.owner["host"]:
            return f"process {holder.get('pid')}" if _alive(int(holder.get("pid") or 0)) else None
        try:
            age = time.time() - self.path.stat().st_mtime
        except OSError:
            return None
        if age <= self.stale_after_s:
            return (
                f"process {holder.get('pid')} on host {holder.get('host')} (heartbeat {age:.0f}s ago; "
                f"taken over after run_lock.stale_after_s={self.stale_after_s:g}s)"
            )
        return None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                holder = self._holder()
                reason = self._refusal(holder)
                if reason:
                    raise LibraError(
                        f"run directory {self.path.parent} is in use by {reason} (lock {self.path}); "
                        "wait for it or use another paths.run_dir"
                    ) from None
                # stale: move it aside first, so two takers cannot both remove a fresh lock
                try:
                    os.rename(
                        self.path, self.path.with_name(f".lock.stale-{self.owner['host']}-{os.getpid()}")
                    )
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(json.dumps(self.owner))
            self._start_heartbeat()
            return

    def _start_heartbeat(self) -> None:
        def beat():
            while not self._stop.wait(self.heartbeat_s):
                try:
                    os.utime(self.path)
                except OSError:
                    pass

        self._stop.clear()
        self._beat = threading.Thread(target=beat, name="run-lock-heartbeat", daemon=True)
        self._beat.start()

    @property
    def held(self) -> bool:
        return self._holder() == self.owner

    def release(self) -> None:
        self._stop.set()
        try:
            if self.held:
                self.path.unlink()
        except OSError:
            pass
        for stale in self.path.parent.glob(".lock.stale-*"):
            stale.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Manifest:
    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / "manifest.json"
        self.data = json.loads(self.path.read_text()) if self.path.exists() else {"stages": []}

    def stage(self, name: str) -> dict:
        for entry in self.data["stages"]:
            if entry["name"] == name:
                return entry
        entry = {"name": name, "status": "pending"}
        self.data["stages"].append(entry)
        return entry

    def save(self) -> None:
        atomic_write_text(self.path, json.dumps(self.data, ensure_ascii=False, indent=2) + "\n")
