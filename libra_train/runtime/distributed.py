"""Rank helpers that work before torch.distributed is set up (the Trainer sets it up later).

Work done once per run (data synthesis, the backbone build, the manifest, the report) happens on rank 0;
other ranks wait on a marker file, which needs no process group. Work every rank shares (evaluation,
selection scoring) ends with a marker per rank that rank 0 waits for. Every wait follows one
configurable timeout (`distributed.timeout_s`, the process group's too), and a rank that fails leaves a
`.failed` marker with its error, so the ranks waiting on it stop at once with that error."""

from __future__ import annotations

import os
import time
from pathlib import Path

from libra_train.data.io import atomic_write_text
from libra_train.errors import LibraError

_timeout_s = [3600.0]


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    return rank() == 0


def launch_id() -> str:
    """Shared by every rank of one launch and new for each: a marker from an earlier launch is never
    taken for this one's (torchrun sets TORCHELASTIC_RUN_ID)."""
    return os.environ.get("TORCHELASTIC_RUN_ID") or os.environ.get("LIBRA_LAUNCH_ID") or "single"


def local_device() -> str:
    import torch

    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if torch.cuda.is_available() else "cpu"


def set_timeout(seconds: float) -> None:
    _timeout_s[0] = float(seconds)


def timeout_s() -> float:
    return _timeout_s[0]


def _failed(marker: Path) -> Path:
    return marker.with_name(marker.name + ".failed")


def wait_for(marker: Path, who: str = "rank 0", poll_s: float = 0.2) -> None:
    deadline = time.monotonic() + _timeout_s[0]
    while not marker.exists():
        if _failed(marker).exists():
            raise LibraError(f"{who} failed: {_failed(marker).read_text().strip()}")
        if time.monotonic() > deadline:
            raise LibraError(
                f"rank {rank()} waited {_timeout_s[0]:.0f}s for {who} ({marker.name}): it died or hangs "
                "(distributed.timeout_s)"
            )
        time.sleep(poll_s)


def _run_marked(marker: Path, work) -> None:
    marker.parent.mkdir(parents=True, exist_ok=True)
    _failed(marker).unlink(missing_ok=True)
    try:
        work()
    except BaseException as err:  # the waiting ranks stop with this error instead of timing out
        first = (str(err).strip().splitlines() or [""])[0]
        # Atomic: a waiting rank polls for the file and reads it at once, so it must never see it empty.
        atomic_write_text(_failed(marker), f"{type(err).__name__}: {first}\n")
        raise
    atomic_write_text(marker, str(time.time()))


def once(marker: Path, work, redo: bool = False) -> None:
    """Rank 0 does `work` then drops the marker; the other ranks wait for the marker. With redo, rank 0
    does the work even where the marker exists (the caller removes a stale marker before the ranks
    last met, so a waiting rank never takes an old marker for the new work)."""
    if is_main():
        if redo or not marker.exists():
            _run_marked(marker, work)
    else:
        wait_for(marker)


def every_rank(folder: Path, step: str, work) -> None:
    """Each rank does its share (`work`); rank 0 returns once all have finished, naming a rank that
    failed or never finished. Markers carry the launch id, so a relaunch starts clean."""
    mine = folder / f".{step}-rank{rank()}-{launch_id()}"
    _run_marked(mine, work)
    if is_main():
        for other in range(1, world_size()):
            wait_for(folder / f".{step}-rank{other}-{launch_id()}", who=f"rank {other}")
