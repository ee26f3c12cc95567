"""The run directory (docs/architecture.md, "The run directory"): manifest.json written atomically, and
a lock so two pipelines never share one directory. A lock left by a dead process is taken over, not stuck."""

from __future__ import annotations

import json
import os
from pathlib import Path

from libra_train.data.io import atomic_write_text
from libra_train.errors import LibraError


class RunLock:
    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / ".lock"

    @staticmethod
    def _alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                try:
                    pid = int(self.path.read_text().strip() or 0)
                except (OSError, ValueError):
                    pid = 0
                if pid and pid != os.getpid() and self._alive(pid):
                    raise LibraError(
                        f"run directory {self.path.parent} is in use by process {pid} "
                        f"(lock {self.path}); wait for it or use another paths.run_dir"
                    ) from None
                self.path.unlink(missing_ok=True)  # stale: its owner is gone
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(str(os.getpid()))
            return

    def release(self) -> None:
        try:
            if self.path.read_text().strip() == str(os.getpid()):
                self.path.unlink()
        except OSError:
            pass


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
