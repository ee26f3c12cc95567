"""W&B tracking: one run per run directory (resumed, not split), one global step across stages, stage-
prefixed metrics, redacted config, native PR and confusion charts, a table of mistakes, and artifacts for
data, checkpoints and predictions. Offline inside the run directory when no API key or login is available."""

from __future__ import annotations

import json
import logging
import os
import secrets
import string
import sys
from dataclasses import replace
from pathlib import Path

from libra_train.config import ablation_axes
from libra_train.data.conversation import category_key
from libra_train.data.io import atomic_write_text
from libra_train.data.schema import SAFE, UNSAFE
from libra_train.redaction import redact, redact_args

log = logging.getLogger(__name__)


class NullTracker:
    """What the pipeline and the commands call; W&B or nothing behind it."""

    def begin_stage(self, stage: str) -> None:
        pass

    def log_train(self, stage: str, logs: dict, stage_step: int) -> None:
        pass

    def log_eval(self, stage: str, set_name: str, metrics: dict, rows: list[dict]) -> None:
        pass

    def log(self, metrics: dict) -> None:
        pass

    def log_leaderboard(self, rows: list[dict]) -> None:
        pass

    def log_report(self, table: dict, axes: list[str], charts: list) -> None:
        pass

    def log_artifact(self, name: str, kind: str, paths: list, reference: bool = False) -> None:
        pass

    def finish(self) -> None:
        pass


class WandbTracker(NullTracker):
    """One W&B run per run directory: its id and the global step are kept in <run_dir>/wandb_state.json,
    so a resumed run continues the same run and its curves go on from where they stopped."""

    def __init__(
        self, run_dir: Path, cfg: dict, settings, name: str, tags: list[str], job_type: str = "train"
    ):
        import wandb

        mode = settings.mode
        if mode is None:
            has_login = bool(os.environ.get("WANDB_API_KEY")) or (Path.home() / ".netrc").exists()
            mode = "online" if has_login else "offline"
        self.wandb, self.settings = wandb, settings
        self.state_path = Path(run_dir) / STATE_FILE
        self.state = json.loads(self.state_path.read_text()) if self.state_path.exists() else {}
        self.state.setdefault("id", _new_run_id())
        self.state.setdefault("global_step", 0)
        self.state.setdefault("stage_offsets", {})
        # W&B records the command line in the run's metadata: show it a copy with secrets masked.
        argv = sys.argv[:]
        sys.argv[1:] = redact_args(argv[1:])
        try:
            self.run = wandb.init(
                project=settings.project,
                group=settings.group,
                name=name,
                tags=tags,
                config=redact(cfg),
                dir=str(run_dir),
                mode=mode,
                id=self.state["id"],
                resume="allow",
                reinit="finish_previous",
                job_type=job_type,
                # W&B's own start lines and end blocks (run history, summary) fill a screen; the line below
                # says where the run is and how to upload it, and report.md holds the figures.
                settings=wandb.Settings(silent=True),
            )
        finally:
            sys.argv[:] = argv
        # Every chart shares one x-axis across stages; each stage's own step is logged beside it.
        self.run.define_metric(GLOBAL_STEP)
        self.run.define_metric("*", step_metric=GLOBAL_STEP)
        self._save_state()
        where = Path(run_dir) / "wandb"
        sync = f"; upload it with: wandb sync {where}/offline-run-*" if mode == "offline" else ""
        log.info("W&B %s run %s in %s%s", mode, self.run.id, where, sync)

    def _save_state(self) -> None:
        atomic_write_text(self.state_path, json.dumps(self.state, indent=1))

    def begin_stage(self, stage: str) -> None:
        """A stage's steps start after everything logged before it; a resumed stage keeps its offset."""
        if stage not in self.state["stage_offsets"]:
            self.state["stage_offsets"][stage] = self.state["global_step"]
            self._save_state()

    def log_train(self, stage: str, logs: dict, stage_step: int) -> None:
        self.begin_stage(stage)
        step = self.state["stage_offsets"][stage] + stage_step
        values = {k: v for k, v in logs.items() if isinstance(v, (int, float))}
        payload = {f"{stage}/train/{k}": v for k, v in values.items()}
        payload.update({f"train/{TRAIN_CURVES[k]}": values[k] for k in TRAIN_CURVES if k in values})
        payload.update({"train/stage_step": stage_step, GLOBAL_STEP: step})
        self.state["global_step"] = max(self.state["global_step"], step)
        self.run.log(payload)
        self._save_state()

    def log(self, metrics: dict) -> None:
        self.run.log({**metrics, GLOBAL_STEP: self.state["global_step"]})

    def log_leaderboard(self, rows: list[dict]) -> None:
        """libra-compare's rows as one W&B table: each guard and set, with how it was scored."""
        columns = ["guard", "set", "format", "mode", "threshold", "controversial_as", "accuracy", "f1_safe"]
        columns += ["f1_unsafe", "auprc", "fpr_at_95_recall", "margin_over_best_shortcut", "helpful_flagged"]
        columns += ["parse_failures", "samples_per_s", "error"]
        data = [
            [r.get("guard"), r.get("set"), r.get("format"), r.get("mode"), r.get("threshold")]
            + [r.get("controversial_as")]
            + [(r.get("average") or {}).get(k) for k in ("accuracy", "f1_safe", "f1_unsafe")]
            + [r.get("auprc"), r.get("fpr_at_95_recall"), (r.get("margin") or {}).get("margin")]
            + [r.get(k) for k in ("helpful_flagged", "parse_failures", "samples_per_s", "error")]
            for r in rows
        ]
        self.log({"compare/leaderboard": self.wandb.Table(columns=columns, data=data)})

    def log_report(self, table: dict, axes: list[str], charts: list) -> None:
        """libra-report's intervals (reporting/intervals.interval_table) as one W&B table per eval set,
        and its charts as images."""
        columns = [*axes, "seeds", "samples", "accuracy", "low", "high", "sd_over_seeds"]
        columns += ["difference", "difference_low", "difference_high", "verdict"]
        payload = {}
        for eval_set, entry in table.items():
            data = []
            for arm in entry["arms"]:
                diff = arm["difference"] or {}
                data.append(
                    [arm["axes"][a] for a in axes]
                    + [arm[k] for k in ("seeds", "samples", "mean", "low", "high", "sd_over_seeds")]
                    + [diff.get(k) for k in ("mean", "low", "high")]
                    + [diff.get("verdict", "baseline")]
                )
            payload[f"report/{eval_set}/intervals"] = self.wandb.Table(columns=columns, data=data)
        payload.update({f"report/{Path(c).stem}": self.wandb.Image(str(c)) for c in charts})
        self.log(payload)

    def log_eval(self, stage: str, set_name: str, metrics: dict, rows: list[dict]) -> None:
        """An eval set's figures, and its scored rows (with gold labels, as the evaluator holds them) for
        the charts and the mistakes table."""
        prefix = f"{stage}/eval/{set_name}"
        per_source = [
            [src, m["accuracy"], m["f1_safe"], m["f1_unsafe"], m["n"]]
            for src, m in metrics["per_source"].items()
        ]
        payload = {f"{prefix}/{k}": v for k, v in metrics["average"].items()}
        payload[f"{prefix}/per_source"] = self.wandb.Table(
            columns=["source", "accuracy", "f1_safe", "f1_unsafe", "n"], data=per_source
        )
        if metrics.get("auprc") is not None:
            payload[f"{prefix}/auprc"] = metrics["auprc"]
        payload.update(judgement_scalars(prefix, metrics))
        if rows:
            payload.update(self._prediction_charts(prefix, rows, metrics))
        self.log(payload)

    def _prediction_charts(self, prefix: str, rows: list[dict], metrics: dict) -> dict:
        """Native PR curve and confusion matrix, and a table of the samples a reader checks first."""
        plot, labels = self.wandb.plot, [SAFE, UNSAFE]
        gold = [int(r["label"] == UNSAFE) for r in rows]
        charts = {
            f"{prefix}/confusion_matrix": plot.confusion_matrix(
                y_true=gold, preds=[int(r.get("pred_label") == UNSAFE) for r in rows], class_names=labels
            )
        }
        scored = [r for r in rows if r.get("p_unsafe") is not None]
        if scored and len({r["label"] for r in scored}) == 2:
            charts[f"{prefix}/pr_curve"] = plot.pr_curve(
                [int(r["label"] == UNSAFE) for r in scored],
                [[1 - r["p_unsafe"], r["p_unsafe"]] for r in scored],
                labels=labels,
                classes_to_plot=[1],
            )
        threshold = metrics["threshold"] if metrics.get("threshold") is not None else 0.5
        picked = mistakes_and_margins(rows, threshold, self.settings.table_rows)
        charts[f"{prefix}/predictions"] = self.wandb.Table(
            columns=list(TABLE_COLUMNS), data=[[_cell(r, k) for k in TABLE_FIELDS] for r in picked]
        )
        return charts

    def log_artifact(self, name: str, kind: str, paths: list, reference: bool = False) -> None:
        """Each file's sha256 goes in the metadata; a folder (a checkpoint, maybe 14B) is not read. A
        reference records the paths without uploading them (W&B does not re-read them either)."""
        from libra_train.data.io import file_sha256

        paths = [Path(p) for p in paths]
        hashes = {str(p): file_sha256(p) for p in paths if p.is_file()}
        artifact = self.wandb.Artifact(_artifact_name(name), type=kind, metadata={"sha256": hashes})
        for path, entry in zip(paths, artifact_entry_names(paths)):
            path = path.resolve()
            if reference:
                artifact.add_reference(path.as_uri(), name=entry, checksum=False)
            elif path.is_dir():
                artifact.add_dir(str(path), name=entry)
            else:
                artifact.add_file(str(path), name=entry)
        self.run.log_artifact(artifact)

    def finish(self) -> None:
        self.run.finish()


STATE_FILE = "wandb_state.json"
GLOBAL_STEP = "global_step"
TRAIN_CURVES = {"loss": "loss", "learning_rate": "learning_rate", "num_input_tokens_seen": "tokens_seen"}
TABLE_COLUMNS = ("id", "source", "category", "question", "response", "gold", "predicted", "p_unsafe", "why")
TABLE_FIELDS = (
    "id",
    "source",
    "category_name",
    "question",
    "response",
    "label",
    "pred_label",
    "p_unsafe",
    "why",
)


def judgement_scalars(prefix: str, metrics: dict) -> dict:
    """The figures beside accuracy (eval/shortcuts.py, eval/calibration.py) as W&B scalars."""
    out = {f"{prefix}/shortcut/{name}": s["accuracy"] for name, s in (metrics.get("shortcuts") or {}).items()}
    if metrics.get("margin"):
        out[f"{prefix}/margin_over_best_shortcut"] = metrics["margin"]["margin"]
    if (metrics.get("over_flagging") or {}).get("rate") is not None:
        out[f"{prefix}/helpful_safe_flagged"] = metrics["over_flagging"]["rate"]
    out.update({f"{prefix}/{k}": metrics[k] for k in ("ece", "threshold_gap") if metrics.get(k) is not None})
    return out


def _cell(row: dict, key: str):
    """A table cell: several categories as one text (a W&B table column holds one type)."""
    return category_key(row) if key == "category_name" else row.get(key)


def mistakes_and_margins(rows: list[dict], threshold: float, cap: int) -> list[dict]:
    """The misclassified samples, most confident first, then the samples closest to the threshold; at
    most `cap` in all. Each is tagged with why it is there."""
    from libra_train.eval.operating_points import mistakes_by_confidence

    wrong = mistakes_by_confidence(rows, threshold)
    right = [r for r in rows if r.get("pred_label") == r["label"] and r.get("p_unsafe") is not None]
    right.sort(key=lambda r: abs(r["p_unsafe"] - threshold))
    picked = [{**r, "why": "misclassified"} for r in wrong[:cap]]
    return picked + [{**r, "why": "low margin"} for r in right[: cap - len(picked)]]


def _new_run_id() -> str:
    alphabet = string.ascii_lowercase + string.digits  # what W&B accepts in a run id
    return "".join(secrets.choice(alphabet) for _ in range(8))


def artifact_entry_names(paths: list[Path]) -> list[str]:
    """Each path's name inside an artifact: its own name, or, where two share one (every eval set writes
    a predictions.jsonl), its path below the folder they share (heldout/predictions.jsonl)."""
    names = [p.name for p in paths]
    if len(set(names)) == len(names):
        return names
    resolved = [p.resolve() for p in paths]
    root = Path(os.path.commonpath(resolved))
    return [p.relative_to(root).as_posix() for p in resolved]


def _artifact_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)


def make_tracker(run, resolved: dict, is_main: bool):
    """W&B on the main process when logger.backend=wandb (run: a checked RunConfig; resolved: the
    redacted config W&B records)."""
    if not is_main or run.logger.backend == "none":
        return NullTracker()
    tags = [f"{k}={v}" for k, v in ablation_axes(run.resolved).items()]
    settings = replace(run.logger, group=run.logger.group or run.experiment_name)
    return WandbTracker(run.run_dir, resolved, settings, f"{run.experiment_name}/{run.run_dir.name}", tags)


def command_tracker(cfg, command: str, out_dir) -> NullTracker:
    """W&B for a command other than libra-train when its typed config says logger=wandb: one run per output
    folder (resumed like a training run), grouped by command unless logger.group says otherwise."""
    if cfg.logger is None or cfg.logger.backend == "none" or int(os.environ.get("RANK", "0")) != 0:
        return NullTracker()
    settings = replace(cfg.logger, group=cfg.logger.group or command)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return WandbTracker(
        out_dir,
        redact(cfg.resolved),
        settings,
        f"{command}/{out_dir.name}",
        [f"command={command}"],
        job_type=command,
    )
