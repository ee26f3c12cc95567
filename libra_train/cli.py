"""Entry points (docs/architecture.md, "Command lines"), thin: each parses its config and calls one
function."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from omegaconf import DictConfig

from libra_train.cli_utils import (
    CLI_CONF_DIR,
    CONF_DIR,
    clear_errors,
    closed_pipe_ok,
    hydra_command,
    quiet_libraries,
)
from libra_train.errors import LibraError


@hydra_command(CONF_DIR, "train", "libra_train.config:help_keys")
def train_main(cfg: DictConfig) -> None:
    from libra_train.launch import run_pipeline

    _export_submitit_ranks()
    _place_sweep_point(cfg)
    try:
        run_pipeline(cfg)
    except BaseException:
        _remove_if_empty(cfg)
        raise


def _remove_if_empty(cfg: DictConfig) -> None:
    """Hydra makes the run's folder before the run starts: a run refused at once (a bad key or value)
    leaves it empty, and an empty outputs/<experiment>/<time>/ would pass for a run."""
    from hydra.core.hydra_config import HydraConfig

    folder = Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else None
    if folder is not None and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def _export_submitit_ranks() -> None:
    """Under hydra-submitit-launcher every Slurm task runs this function directly (no torchrun), so
    torch.distributed's env:// variables are derived from the job's Slurm environment."""
    import os

    if os.environ.get("SUBMITIT_EXECUTOR") == "slurm" and "RANK" not in os.environ:
        from submitit.helpers import TorchDistributedEnvironment

        TorchDistributedEnvironment().export(set_cuda_visible_devices=False)


def _place_sweep_point(cfg: DictConfig) -> None:
    """In a multirun, each point is its own run in the sweep's numbered subfolder, and all points share
    one W&B group, so `libra-report <sweep dir>` and the dashboard both see the sweep as one."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import open_dict

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return
    hydra_cfg = HydraConfig.get()
    with open_dict(cfg):
        cfg.paths.run_dir = hydra_cfg.runtime.output_dir
        cfg.logger.group = (
            cfg.logger.get("group") or f"{cfg.experiment_name}/{Path(hydra_cfg.sweep.dir).name}"
        )


@closed_pipe_ok
@clear_errors
def report_main(argv: list[str] | None = None) -> None:
    from libra_train.reporting.ablation import write_ablation_report

    parser = argparse.ArgumentParser(
        prog="libra-report", description="Aggregate a sweep into a table and charts."
    )
    parser.add_argument("sweep_dir", help="a multirun directory (its numbered subfolders are the points)")
    parser.add_argument(
        "--baseline",
        help="AXIS=VALUE[,AXIS=VALUE]: the arm every other is compared with (default: the first arm)",
    )
    parser.add_argument(
        "--stage",
        help="a stage's name (stage1_pretrain, say): report every point at that stage's evaluation, "
        "into SWEEP_DIR/report_<stage>/, instead of at its last evaluated stage",
    )
    parser.add_argument(
        "--wandb",
        action="store_true",
        help="log the intervals and charts to W&B, in the sweep points' group (offline without a key)",
    )
    args = parser.parse_args(argv)
    sweep_dir = Path(args.sweep_dir)
    written = write_ablation_report(sweep_dir, args.baseline, args.stage)
    for path in written:
        print(f"wrote {path}")
    if args.wandb:
        log_report(sweep_dir, args.baseline, args.stage, written)


def log_report(sweep_dir: Path, baseline: str | None, stage: str | None, written: list[Path]) -> None:
    """libra-report's W&B run: one per sweep folder, grouped with the sweep's points."""
    import json

    from libra_train.command_config import ReportConfig
    from libra_train.config_groups import LoggerConfig
    from libra_train.reporting.ablation import report_dir, sweep_group
    from libra_train.tracking import command_tracker

    logger = LoggerConfig(backend="wandb", group=sweep_group(sweep_dir))
    config = ReportConfig(sweep_dir=str(sweep_dir), baseline=baseline, stage=stage, logger=logger)
    table = json.loads((report_dir(sweep_dir, stage) / "intervals.json").read_text(encoding="utf-8"))
    axes = list(next(iter(table.values()))["arms"][0]["axes"]) if table else []
    tracker = command_tracker(config, "libra-report", sweep_dir)
    try:
        tracker.log_report(table, axes, [p for p in written if p.suffix == ".png"])
    finally:
        tracker.finish()


@hydra_command(CLI_CONF_DIR, "infer", "libra_train.command_config:InferConfig")
def infer_main(cfg: DictConfig) -> None:
    """libra-infer: `model=PATH` is a checkpoint here (see conf/cli/infer.yaml)."""
    from libra_train.command_config import InferConfig
    from libra_train.tracking import command_tracker

    config = InferConfig.from_hydra(cfg)  # checked before torch and transformers are imported
    from libra_train.eval.infer import run_inference

    quiet_libraries()
    tracker = command_tracker(config, "libra-infer", config.output_dir)
    try:
        written = run_inference(config)
        tracker.log({"infer/samples": sum(1 for line in open(written, encoding="utf-8") if line.strip())})
        tracker.log_artifact("predictions", "predictions", [written])
    finally:
        tracker.finish()
    print(f"wrote {written}")


@hydra_command(CLI_CONF_DIR, "serve", "libra_train.command_config:ServeConfig")
def serve_main(cfg: DictConfig) -> None:
    """libra-serve: `model=PATH` is a checkpoint (conf/cli/serve.yaml)."""
    from libra_train.command_config import ServeConfig

    config = ServeConfig.from_hydra(cfg)
    from libra_train.serve.server import run_server

    quiet_libraries()
    run_server(config)


@hydra_command(CLI_CONF_DIR, "export", "libra_train.command_config:ExportConfig")
def export_main(cfg: DictConfig) -> None:
    """libra-export: a trained guard as a release folder, optionally uploaded (conf/cli/export.yaml)."""
    from libra_train.command_config import ExportConfig

    config = ExportConfig.from_hydra(cfg)
    from libra_train.export.release import export_release, upload_release

    quiet_libraries()
    written = export_release(config)
    print(f"wrote {written}")
    if config.hub_repo:
        print(upload_release(written, config.hub_repo))


@hydra_command(CLI_CONF_DIR, "compare", "libra_train.command_config:CompareConfig")
def compare_main(cfg: DictConfig) -> None:
    """libra-compare: every guard over the same data sets, into one leaderboard."""
    from libra_train.command_config import CompareConfig
    from libra_train.tracking import command_tracker

    config = CompareConfig.from_hydra(cfg)
    from libra_train.reporting.leaderboard import compare, markdown, write_leaderboard

    quiet_libraries()
    out_dir = Path(config.output_dir)
    defaults = {"batch_size": config.batch_size, "max_new_tokens": config.max_new_tokens}
    defaults["controversial_as"] = config.controversial_as
    rows = compare(config.guard_specs, dict(config.data), out_dir, defaults)
    written = write_leaderboard(rows, out_dir)
    tracker = command_tracker(config, "libra-compare", out_dir)
    try:
        tracker.log_leaderboard(rows)
        tracker.log_artifact("leaderboard", "leaderboard", written)
    finally:
        tracker.finish()
    print(markdown(rows))
    print("wrote " + ", ".join(str(p) for p in written))
    if all("error" in r for r in rows):
        raise LibraError(f"every guard failed (their errors are in {written[0]})")


@hydra_command(CLI_CONF_DIR, "mine", "libra_train.command_config:MineConfig")
def mine_main(cfg: DictConfig) -> None:
    """libra-mine: hard-sample selection as a command; `model=PATH` is a checkpoint (conf/cli/mine.yaml)."""
    from libra_train.command_config import MineConfig
    from libra_train.tracking import command_tracker

    config = MineConfig.from_hydra(cfg)
    from libra_train.train.selection import select_file

    quiet_libraries()
    tracker = command_tracker(config, "libra-mine", Path(config.output).parent)
    try:
        summary = select_file(config)
        tracker.log({f"mine/{k}": v for k, v in summary.items() if isinstance(v, (int, float))})
        tracker.log_artifact("selected", "dataset", [config.output])
    finally:
        tracker.finish()
    print(json.dumps(summary, ensure_ascii=False))


@hydra_command(CONF_DIR, "eval", "libra_train.command_config:EvalCommandConfig")
def eval_main(cfg: DictConfig) -> None:
    from libra_train.command_config import EvalCommandConfig
    from libra_train.tracking import command_tracker

    config = EvalCommandConfig.from_hydra(cfg)
    from libra_train.eval.metrics import format_table
    from libra_train.eval.outputs import join_with_labels, load_predictions, write_metrics

    rows, lacking = join_with_labels(load_predictions(config.predictions), config.labels, config.task)
    metrics = write_metrics(rows, config.output_dir, no_prompt_label=lacking)
    tracker = command_tracker(config, "libra-eval", config.output_dir or ".")
    try:
        tracker.log_eval("libra-eval", Path(config.labels).stem, metrics, rows)
    finally:
        tracker.finish()
    print(format_table(metrics))
    if config.output_dir:
        print(f"wrote {config.output_dir}/metrics.json and confusion.png")


@closed_pipe_ok
@clear_errors
def data_main(argv: list[str] | None = None) -> None:
    from libra_train.data.importer import ImportMapping, import_table

    parser = argparse.ArgumentParser(
        prog="libra-data", description="Bring labelled data into the guard schema."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="a CSV/JSONL/Parquet table → guard schema (.jsonl or .parquet)")
    imp.add_argument("input")
    imp.add_argument("output")
    imp.add_argument(
        "--text-column", help="one text per row → question, response empty (prompt classification)"
    )
    imp.add_argument("--question-column")
    imp.add_argument(
        "--messages-column", help="OpenAI-style chat turns [{role, content}, …]; the last turn is judged"
    )
    imp.add_argument("--response-column")
    imp.add_argument("--label-column", help="the label (every table but a paired one)")
    imp.add_argument("--unsafe-response-column", help="paired: the violating answer (a 不安全 sample)")
    imp.add_argument("--safe-response-column", help="paired: the safe answer (a 安全 sample)")
    imp.add_argument(
        "--encoding", default="auto", help="CSV encoding; auto: UTF-8, else GB18030 (which reads GBK)"
    )
    imp.add_argument(
        "--unsafe-values", default="1,不安全", help="comma-separated label values meaning unsafe"
    )
    imp.add_argument("--safe-values", default="0,安全", help="comma-separated label values meaning safe")
    imp.add_argument("--source", default="Real Data")
    imp.add_argument("--id-column")
    imp.add_argument("--category-column")
    imp.add_argument("--analyze-column")
    args = parser.parse_args(argv)
    mapping = ImportMapping(
        label_column=args.label_column,
        text_column=args.text_column,
        question_column=args.question_column,
        messages_column=args.messages_column,
        response_column=args.response_column,
        id_column=args.id_column,
        category_column=args.category_column,
        analyze_column=args.analyze_column,
        unsafe_response_column=args.unsafe_response_column,
        safe_response_column=args.safe_response_column,
        encoding=args.encoding,
        unsafe_values=args.unsafe_values.split(","),
        safe_values=args.safe_values.split(","),
        source=args.source,
    )
    print(json.dumps(import_table(args.input, args.output, mapping), ensure_ascii=False))


if __name__ == "__main__":  # torchrun -m libra_train.cli …
    sys.exit(train_main())
