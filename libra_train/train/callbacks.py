"""Trainer callbacks: a progress bar naming the stage (step and ETA), and forwarding logs to the tracker."""

from __future__ import annotations

import logging
import sys

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from transformers import TrainerCallback

log = logging.getLogger(__name__)


class StageProgress(TrainerCallback):
    """One rich bar per stage; on a non-terminal (CI, log files) a log line every `every` steps instead."""

    def __init__(self, stage: str, every: int = 10):
        self.stage, self.every = stage, every
        self.progress = None
        self.task = None
        self.last_loss = None

    def on_train_begin(self, args, state, control, **kwargs):
        if args.process_index != 0:
            return
        if sys.stderr.isatty():
            self.progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
            )
            self.progress.start()
            self.task = self.progress.add_task(
                self.stage, total=state.max_steps, completed=state.global_step, loss="-"
            )

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.last_loss = logs["loss"]

    def on_step_end(self, args, state, control, **kwargs):
        if args.process_index != 0:
            return
        loss = f"{self.last_loss:.4f}" if self.last_loss is not None else "-"
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step, loss=loss)
        elif state.global_step % self.every == 0 or state.global_step == state.max_steps:
            log.info("%s: step %d/%d loss %s", self.stage, state.global_step, state.max_steps, loss)

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.stop()


class TrackerLogs(TrainerCallback):
    """Sends the Trainer's logs to our tracker with the stage as prefix (one W&B run per pipeline)."""

    def __init__(self, tracker, stage: str):
        self.tracker, self.stage = tracker, stage

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and args.process_index == 0:
            self.tracker.log_train(self.stage, logs, state.global_step)
