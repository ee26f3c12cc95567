"""Trainer callbacks: a progress bar naming the stage (step and ETA), and forwarding logs to the tracker."""

from __future__ import annotations

import logging
import math
import sys
import time

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from transformers import TrainerCallback

from libra_train.progress import duration

log = logging.getLogger(__name__)


class StageProgress(TrainerCallback):
    """One rich bar per stage; on a non-terminal (CI, log files) a line every `every` steps instead, each
    written when the Trainer logs, so its loss is the loss of the step it names, with the elapsed time
    and the time left at this sitting's pace."""

    def __init__(self, stage: str, every: int = 10):
        self.stage, self.every = stage, every
        self.progress = None
        self.task = None
        self.last_loss: tuple[int, float] | None = None  # (step, loss) of the latest logged loss
        self.start, self.first_step, self.next_line = 0.0, 0, 0

    def on_train_begin(self, args, state, control, **kwargs):
        if args.process_index != 0:
            return
        self.start, self.first_step = time.monotonic(), state.global_step  # a resumed stage starts later
        self.next_line = state.global_step + self.every
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
        if args.process_index != 0 or not logs or "loss" not in logs:
            return
        self.last_loss = (state.global_step, logs["loss"])
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step, loss=f"{logs['loss']:.4f}")
        elif state.global_step >= self.next_line or state.global_step == state.max_steps:
            log.info("%s: step %d/%d loss %.4f (%s)", self.stage, state.global_step, state.max_steps,
                     logs["loss"], self._timing(state))  # fmt: skip
            self.next_line = state.global_step + self.every

    def _timing(self, state) -> str:
        elapsed = time.monotonic() - self.start
        done = state.global_step - self.first_step
        left = (state.max_steps - state.global_step) * elapsed / done if done else None
        return f"{duration(elapsed)} elapsed, ETA {duration(left) if left is not None else '-'}"

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if args.process_index != 0 or not metrics or "eval_loss" not in metrics:
            return
        # the Trainer updates best_metric after its callbacks have seen this evaluation
        lowest = min(metrics["eval_loss"], state.best_metric if state.best_metric is not None else math.inf)
        log.info("%s: step %d, loss on the early-stopping set %.4f (lowest %.4f)", self.stage,
                 state.global_step, metrics["eval_loss"], lowest)  # fmt: skip

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is not None and args.process_index == 0:
            self.progress.update(self.task, completed=state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.stop()
        if args.process_index != 0:
            return
        loss = f", last loss {self.last_loss[1]:.4f} (step {self.last_loss[0]})" if self.last_loss else ""
        elapsed = duration(time.monotonic() - self.start)
        log.info("%s: trained to step %d/%d in %s%s", self.stage, state.global_step, state.max_steps,
                 elapsed, loss)  # fmt: skip


class TrackerLogs(TrainerCallback):
    """Sends the Trainer's logs to our tracker with the stage as prefix (one W&B run per pipeline)."""

    def __init__(self, tracker, stage: str):
        self.tracker, self.stage = tracker, stage

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and args.process_index == 0:
            self.tracker.log_train(self.stage, logs, state.global_step)
