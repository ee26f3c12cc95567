"""`libra-compare`: every guard (a checkpoint or an endpoint, each with its format and mode) over the
same data sets, through the one inference path (libra-infer's) and the one set of metrics (libra-eval's),
into a leaderboard (docs/evaluation.md, "Comparing guards").

A guard that fails to load, or an endpoint that cannot be reached, becomes one row with its error; the
others still run. Each guard's predictions are kept under OUTPUT_DIR/<guard>/<set>/, so a rerun skips
what is done and resumes what was cut.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

from libra_train import plotting
from libra_train.command_config import GuardSpec, InferConfig
from libra_train.data.formats import label_words
from libra_train.data.io import atomic_write_text
from libra_train.data.peers import CONTROVERSIAL
from libra_train.errors import ConfigError, LibraError
from libra_train.eval.decision import command_decision
from libra_train.eval.endpoint import is_endpoint
from libra_train.eval.infer import run_inference
from libra_train.eval.operating_points import pr_axes
from libra_train.eval.outputs import join_with_labels, load_predictions, write_metrics
from libra_train.eval.scoring import resolve_mode

log = logging.getLogger(__name__)


def guard_config(name: str, spec: GuardSpec, data: str, out_dir: Path, defaults: dict) -> InferConfig:
    """One guard on one set, as the libra-infer config it runs: `format` is a format group's name
    (conf/format/NAME.yaml) or a mapping of format keys, checked as libra-infer checks them."""
    fmt = spec.format
    if isinstance(fmt, str):
        from omegaconf import OmegaConf

        from libra_train.conf_dir import CONF_DIR

        path = Path(CONF_DIR) / "format" / f"{fmt}.yaml"
        if not path.is_file():
            raise ConfigError(f"guards.{name}.format", f"no format group {fmt!r} (conf/format/)")
        fmt = OmegaConf.to_container(OmegaConf.load(path))
    given = {k: v for k, v in dataclasses.asdict(spec).items() if v is not None}
    values = {**defaults, **given, "format": fmt, "data": data, "output_dir": str(out_dir)}
    try:
        return InferConfig.from_hydra(values)
    except ConfigError as err:  # a key that spans the guard's settings, e.g. mode=label for an endpoint
        raise ConfigError(f"guards.{name}.{err.key}", err.message) from None


def score(name: str, config: InferConfig, set_name: str, data: str, format_name: str) -> dict:
    """A leaderboard row: the guard's metrics on one set, or its error. Speed counts the whole command,
    loading included."""
    mode = "generate" if is_endpoint(config.model) else resolve_mode(config.mode, config.format)
    row = {
        "guard": name,
        "set": set_name,
        "model": config.model,
        "format": format_name,
        "mode": mode,
        "threshold": command_decision(config.threshold, config.model).threshold if mode == "label" else None,
        "controversial_as": config.controversial_as if three_way(config.format) else None,
    }
    start = time.perf_counter()
    try:
        written = run_inference(config)
        seconds = time.perf_counter() - start
        rows, lacking = join_with_labels(load_predictions(written), data, config.format.task)
        metrics = write_metrics(rows, config.output_dir, no_prompt_label=lacking)
    except (LibraError, OSError, ValueError) as err:  # one guard's failure is its row; the rest go on
        log.warning("%s on %s failed: %s", name, set_name, err)
        return {**row, "error": f"{type(err).__name__}: {err}"}
    points = metrics.get("operating_points") or {}
    return {
        **row,
        "n": metrics["n"],
        "per_source": metrics["per_source"],
        "average": metrics["average"],
        "auprc": metrics.get("auprc"),
        "fpr_at_95_recall": (points.get("fpr_at_recall") or {}).get("0.95", {}).get("fpr"),
        "parse_failures": metrics["parse_failures"],
        "margin": metrics.get("margin"),
        "helpful_flagged": (metrics.get("over_flagging") or {}).get("rate"),
        "samples_per_s": round(metrics["n"] / seconds, 2) if seconds > 0 else None,
        "pr_curve": points.get("pr_curve"),  # the metrics' own curve: drawn, not computed again
    }


def three_way(fmt) -> bool:
    """Whether the format has a third, controversial verdict (its mapping then matters)."""
    return CONTROVERSIAL in label_words(fmt).values()


def compare(guards: dict, data: dict, out_dir: Path, defaults: dict) -> list[dict]:
    rows = []
    for name, spec in guards.items():
        for set_name, path in data.items():
            try:
                config = guard_config(name, spec, path, out_dir / name / set_name, defaults)
            except LibraError as err:
                rows.append({"guard": name, "set": set_name, "error": str(err)})
                continue
            log.info("%s on %s", name, set_name)
            fmt = spec.format if isinstance(spec.format, str) else config.format.prompt
            rows.append(score(name, config, set_name, path, fmt))
    return rows


def _cell(value) -> str:
    return "–" if value is None else str(value)


def _figure(value, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(rows: list[dict]) -> str:
    """One table per data set: per source F1-Unsafe, F1-Safe and accuracy, then the macro average
    Libra-Test reports, AUPRC and FPR at 95% recall where p(unsafe) exists, parse failures, speed."""
    out = []
    for set_name in dict.fromkeys(r["set"] for r in rows):
        mine = [r for r in rows if r["set"] == set_name]
        sources = list(dict.fromkeys(s for r in mine for s in r.get("per_source", {})))
        head = ["guard", "format", "mode", "threshold", "controversial"]
        head += [f"{s} {m}" for s in sources for m in ("F1-Unsafe", "F1-Safe", "Acc")]
        head += ["Avg F1-Unsafe", "Avg F1-Safe", "Avg Acc", "AUPRC", "FPR@95%R"]
        head += ["margin over the best shortcut", "helpful safe flagged", "parse fail", "samples/s"]
        out += [f"## {set_name}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in mine:
            lead = [r["guard"]] + [
                _cell(r.get(k)) for k in ("format", "mode", "threshold", "controversial_as")
            ]
            if "error" in r:
                out.append("| " + " | ".join(lead + [f"error: {r['error']}"] + [""] * (len(head) - 6)) + " |")
                continue
            cells = [
                _figure(r["per_source"].get(s, {}).get(m))
                for s in sources
                for m in ("f1_unsafe", "f1_safe", "accuracy")
            ]
            a = r["average"]
            cells += [_figure(a["f1_unsafe"]), _figure(a["f1_safe"]), _figure(a["accuracy"])]
            cells += [_figure(r["auprc"]), _figure(r["fpr_at_95_recall"])]
            best = r.get("margin")
            cells.append(f"{best['margin']:+.4f} ({best['over']})" if best else "–")
            cells += [_figure(r.get("helpful_flagged")), str(r["parse_failures"])]
            cells.append(_figure(r["samples_per_s"], 1))
            out.append("| " + " | ".join(lead + cells) + " |")
        out.append("")
    return "\n".join(out)


def pr_chart(rows: list[dict], set_name: str, path: Path) -> bool:
    """Every guard with p(unsafe) on one precision–recall chart; False when none has one."""
    scored = [r for r in rows if r["set"] == set_name and r.get("pr_curve")]
    if not scored:
        return False
    fig, ax = plotting.plt.subplots(figsize=(5.2, 4.2))
    for r in scored:
        label = f"{r['guard']} (AUPRC {_figure(r['auprc'], 3)})"
        ax.step(r["pr_curve"]["recall"], r["pr_curve"]["precision"], where="post", label=label)
    pr_axes(ax, set_name)
    plotting.save(fig, path)
    return True


def write_leaderboard(rows: list[dict], out_dir: Path) -> list[Path]:
    written = [out_dir / "leaderboard.md", out_dir / "leaderboard.json"]
    atomic_write_text(written[0], "# Leaderboard\n\n" + markdown(rows))
    kept = [{k: v for k, v in r.items() if k != "pr_curve"} for r in rows]
    atomic_write_text(written[1], json.dumps(kept, ensure_ascii=False, indent=2) + "\n")
    for set_name in dict.fromkeys(r["set"] for r in rows):
        if pr_chart(rows, set_name, out_dir / f"pr_{set_name}.png"):
            written.append(out_dir / f"pr_{set_name}.png")
    return written
