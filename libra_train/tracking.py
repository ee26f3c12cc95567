"""W&B tracking: one group per pipeline run, stage-prefixed metrics, redacted config, eval tables and
confusion images. Offline inside the run directory when no API key or login is available."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from libra_train.redaction import redact, redact_args

log = logging.getLogger(__name__)


class NullTracker:
    def log(self, metrics: dict, step_hint: int | None = None) -> None:
        pass

    def log_eval(self, stage: str, set_name: str, metrics: dict, confusion_png: Path | None) -> None:
        pass

    def finish(self) -> None:
        pass


class WandbTracker(NullTracker):
    def __init__(
        self, run_dir: Path, cfg: dict, project: str, group: str, name: str, tags: list[str], mode: str | None
    ):
        import wandb

        if mode is None:
            has_login = bool(os.environ.get("WANDB_API_KEY")) or (Path.home() / ".netrc").exists()
            mode = "online" if has_login else "offline"
        self.wandb = wandb
        self._step = 0
        # W&B records the command line in the run's metadata: show it a copy with secrets masked.
        argv = sys.argv[:]
        sys.argv[1:] = redact_args(argv[1:])
        try:
            self.run = wandb.init(
                project=project,
                group=group,
                name=name,
                tags=tags,
                config=redact(cfg),
                dir=str(run_dir),
                mode=mode,
                reinit="finish_previous",
            )
        finally:
            sys.argv[:] = argv
        log.info("W&B %s run %s in %s", mode, self.run.id, run_dir / "wandb")

    def log(self, metrics: dict, step_hint: int | None = None) -> None:
        self._step += 1  # one monotonic W&B step across stages; the stage's own step is logged alongside
        self.run.log(
            {**metrics, **({"trainer_step": step_hint} if step_hint is not None else {})}, step=self._step
        )

    def log_eval(self, stage: str, set_name: str, metrics: dict, confusion_png: Path | None) -> None:
        rows = [
            [src, m["accuracy"], m["f1_safe"], m["f1_unsafe"], m["n"]]
            for src, m in metrics["per_source"].items()
        ]
        table = self.wandb.Table(columns=["source", "accuracy", "f1_safe", "f1_unsafe", "n"], data=rows)
        payload = {f"{stage}/eval/{set_name}/{k}": v for k, v in metrics["average"].items()}
        payload[f"{stage}/eval/{set_name}/per_source"] = table
        if metrics.get("auprc") is not None:
            payload[f"{stage}/eval/{set_name}/auprc"] = metrics["auprc"]
        if confusion_png and Path(confusion_png).exists():
            payload[f"{stage}/eval/{set_name}/confusion"] = self.wandb.Image(str(confusion_png))
        self.log(payload)

    def finish(self) -> None:
        self.run.finish()


def make_tracker(run, resolved: dict, is_main: bool):
    """W&B on the main process when logger.backend=wandb (run: a checked RunConfig; resolved: the
    redacted config W&B records)."""
    if not is_main or run.logger.backend == "none":
        return NullTracker()
    tags = [f"{k}={v}" for k, v in ablation_axes(run.resolved).items()]
    return WandbTracker(
        run.run_dir,
        resolved,
        run.logger.project,
        run.logger.group or run.experiment_name,
        f"{run.experiment_name}/{run.run_dir.name}",
        tags,
        run.logger.mode,
    )


# The ablation axes, by the config key that sets each: W&B tags and libra-report's columns.
AXES = {
    "critic": "format.critic",
    "rules": "format.rules",
    "task": "format.task",
    "curriculum": "curriculum.name",
    "stage1_limit": "data.stage1.limit",
    "stage2_limit": "data.stage2.limit",
    "model": "model.name",
    "peft": "peft.method",
}


def ablation_axes(resolved) -> dict:
    """Axis values of a resolved run config (a dict, or the DictConfig read back from config.yaml)."""
    from omegaconf import OmegaConf

    cfg = resolved if OmegaConf.is_config(resolved) else OmegaConf.create(resolved)
    return {axis: OmegaConf.select(cfg, key, default=None) for axis, key in AXES.items()}
