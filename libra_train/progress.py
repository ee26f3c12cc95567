"""Progress for long steps that are not a Trainer loop (evaluation, selection, synthesis): a rich bar
with count, rate and ETA on a terminal; on a non-terminal (CI, log files) a log line every tenth of
the way instead, so logs stay readable."""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

log = logging.getLogger(__name__)


class RateColumn(ProgressColumn):
    """Items per second (rich's own speed column counts bytes)."""

    def render(self, task) -> Text:
        return Text(f"{task.speed:.1f}/s" if task.speed else "-/s")


@contextmanager
def progress(description: str, total: int, unit: str = "samples"):
    """Yields advance(n): call it as work finishes."""
    if sys.stderr.isatty():
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            transient=False,
        ) as bar:
            task = bar.add_task(description, total=total)
            yield lambda n=1: bar.advance(task, n)
        return
    done, start, next_report = 0, time.monotonic(), max(1, total // 10)

    def advance(n: int = 1) -> None:
        nonlocal done, next_report
        done += n
        if done >= next_report or done == total:
            rate = done / max(time.monotonic() - start, 1e-9)
            eta = (total - done) / rate if rate else 0
            log.info("%s: %d/%d %s (%.1f/s, ETA %s)", description, done, total, unit, rate, duration(eta))
            next_report = done + max(1, total // 10)

    yield advance


def duration(seconds: float) -> str:
    """A span for a log line: 42s, 3m05s, 1h02m."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
