"""Rank helpers that work before torch.distributed is set up (the Trainer sets it up later).

Work done once per run (data synthesis, the backbone build, evaluation, the manifest, the report)
happens on rank 0; other ranks wait on a marker file, which needs no process group."""

from __future__ import annotations

import os
import time
from pathlib import Path


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def wait_for(marker: Path, timeout_s: float = 3600, poll_s: float = 0.5) -> None:
    deadline = time.monotonic() + timeout_s
    while not marker.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"rank {rank()} waited {timeout_s:.0f}s for {marker}; did rank 0 fail?")
        time.sleep(poll_s)


def once(marker: Path, work, redo: bool = False) -> None:
    """Rank 0 does `work` then drops the marker; the other ranks wait for the marker. With redo, rank 0
    does the work even where the marker exists (the caller removes a stale marker before the ranks
    last met, so a waiting rank never takes an old marker for the new work)."""
    if is_main():
        if redo or not marker.exists():
            work()
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(str(time.time()))
    else:
        wait_for(marker)
