"""`libra-report <sweep dir>`: one row per sweep point (its axis values against the final metrics),
as ablation.csv and report.md, with a bar chart per categorical axis, learning curves per data-scale
axis (reporting/curves.py) and intervals per arm (reporting/intervals.py)."""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

from omegaconf import OmegaConf

from libra_train import plotting
from libra_train.config import ablation_axes
from libra_train.data.io import atomic_write_text
from libra_train.errors import DataError
from libra_train.reporting import curves
from libra_train.reporting.intervals import interval_lines, interval_table

log = logging.getLogger(__name__)
METRICS = ("accuracy", "f1_safe", "f1_unsafe")
SCALE_AXES = ("stage1_limit", "stage2_limit")


def final_eval(manifest: dict) -> tuple[str, dict]:
    """The metrics of the last stage that was evaluated; the untrained row for a zero-shot run."""
    for stage in reversed(manifest.get("stages") or []):
        if stage.get("eval"):
            return stage["name"], stage["eval"]
    return "untrained", manifest.get("eval_before_training") or {}


def stage_eval(manifest: dict, name: str, planned: list[str], folder: Path) -> tuple[dict, bool]:
    """One named stage's metrics and whether that stage finished; a stage of the point's curriculum that
    has not started yet has none. A point whose curriculum has no such stage is an error, not a row
    without figures: a misspelt name would otherwise empty the report."""
    stages = manifest.get("stages") or []
    for stage in stages:
        if stage.get("name") == name:
            return stage.get("eval") or {}, stage.get("status") == "done"
    if name in planned:
        return {}, False
    names = ", ".join(planned or [s.get("name", "?") for s in stages]) or "none"
    raise DataError(folder / "config.yaml", f"no stage named {name!r} (its stages: {names})")


def sweep_group(sweep_dir: Path) -> str:
    """The W&B group the sweep's points logged to (their config's logger.group), else the folder's name."""
    for config in sorted(Path(sweep_dir).glob("*/config.yaml")):
        group = OmegaConf.load(config).get("logger", {}).get("group")
        if group:
            return str(group)
    return Path(sweep_dir).name


def load_points(sweep_dir: Path, stage: str | None = None) -> list[dict]:
    """Each point's axes and metrics: those of its last evaluated stage, or of the stage named `stage`
    (a two-stage sweep's stage-1 figures, say)."""
    if not sweep_dir.is_dir():
        raise DataError(sweep_dir, "no such sweep directory")
    folders = sorted(
        (p for p in sweep_dir.iterdir() if (p / "config.yaml").exists()),
        key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name),
    )
    if not folders:
        raise DataError(sweep_dir, "no sweep points here (no subfolder holds a config.yaml)")
    points = []
    for folder in folders:
        config = OmegaConf.load(folder / "config.yaml")
        axes = ablation_axes(config)
        manifest_path = folder / "manifest.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"stages": []}
        if stage is None:
            name, evals = final_eval(manifest)
            finished = bool(manifest["stages"]) and all(s.get("status") == "done" for s in manifest["stages"])
        else:
            planned = [st.name for st in OmegaConf.select(config, "curriculum.stages", default=None) or []]
            name, (evals, finished) = stage, stage_eval(manifest, stage, planned, folder)
        status = "done" if finished or (not manifest["stages"] and evals) else "incomplete"
        if status != "done":
            log.warning("%s did not finish; its row has whatever metrics it reached", folder)
        points.append(
            {
                "point": folder.name,
                "dir": str(folder),
                "status": status,
                "final_stage": name,
                "axes": axes,
                "eval": evals,
            }
        )
    return points


def varying_axes(points: list[dict]) -> list[str]:
    names = list(points[0]["axes"])
    varying = [n for n in names if len({json.dumps(p["axes"][n]) for p in points}) > 1]
    return varying or names


def table_rows(points: list[dict], axes: list[str]) -> tuple[list[str], list[list]]:
    sets = sorted({s for p in points for s in p["eval"]})
    sources = {
        s: sorted({src for p in points for src in (p["eval"].get(s) or {}).get("per_source", {})})
        for s in sets
    }
    header = ["point", "status", *axes, "final_stage"]
    for s in sets:
        header += [f"{s}/{src}/{m}" for src in sources[s] for m in METRICS]
        header += [f"{s}/average/{m}" for m in METRICS]
    rows = []
    for p in points:
        row = [p["point"], p["status"], *[p["axes"][a] for a in axes], p["final_stage"]]
        for s in sets:
            m = p["eval"].get(s) or {}
            row += [_num(m.get("per_source", {}).get(src, {}).get(k)) for src in sources[s] for k in METRICS]
            row += [_num(m.get("average", {}).get(k)) for k in METRICS]
        rows.append(row)
    return header, rows


SUMMARY_METRICS = ("accuracy", "f1_safe", "f1_unsafe", "auprc")


def _metric(evals: dict, name: str):
    return evals.get(name) if name == "auprc" else (evals.get("average") or {}).get(name)


def seed_summary(points: list[dict], axes: list[str]) -> list[dict]:
    """Points that differ only in their seed, grouped: per eval set and metric the mean, the sample
    standard deviation and the range over the finished seeds (an unfinished point is left out)."""
    groups: dict[tuple, list[dict]] = {}
    for p in points:
        if p["status"] == "done":
            groups.setdefault(tuple(json.dumps(p["axes"][a]) for a in axes), []).append(p)
    summary = []
    for key, members in groups.items():
        row = {
            "axes": dict(zip(axes, (json.loads(k) for k in key))),
            "seeds": [p["axes"]["seed"] for p in members],
        }
        for eval_set in sorted({s for p in members for s in p["eval"]}):
            for name in SUMMARY_METRICS:
                values = [
                    v for p in members if (v := _metric(p["eval"].get(eval_set) or {}, name)) is not None
                ]
                if values:
                    row[f"{eval_set}/{name}"] = _spread(values)
        summary.append(row)
    return summary


def _spread(values: list[float]) -> dict:
    mean = sum(values) / len(values)
    sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
    return {"mean": mean, "sd": sd, "min": min(values), "max": max(values), "n": len(values)}


def _spread_cell(m: dict | None) -> str:
    """mean ± sd (range); a figure from one seed has no spread, and says so instead of ± 0."""
    if not m:
        return "–"
    if m["n"] == 1:
        return f"{m['mean']:.4f} (1 seed)"
    return f"{m['mean']:.4f} ± {m['sd']:.4f} ({m['min']:.4f}–{m['max']:.4f})"


def seed_summary_lines(points: list[dict], axes: list[str]) -> list[str]:
    summary = seed_summary(points, axes)
    columns = sorted({k for row in summary for k in row if "/" in k})
    lines = [
        "",
        "## Over seeds",
        "",
        "Mean ± sample standard deviation over the finished seeds, with the range (min–max).",
        "",
        "| " + " | ".join([*axes, "seeds", *columns]) + " |",
        "|" + "---|" * (len(axes) + 1 + len(columns)),
    ]
    for row in summary:
        cells = [str(row["axes"][a]) for a in axes] + [",".join(map(str, row["seeds"]))]
        for c in columns:
            cells.append(_spread_cell(row.get(c)))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _num(value):
    return round(value, 4) if isinstance(value, float) else value


def report_dir(sweep_dir: Path, stage: str | None = None) -> Path:
    """Where libra-report writes: the sweep folder, or report_<stage>/ inside it for one stage's figures."""
    return sweep_dir / f"report_{stage}" if stage else sweep_dir


def write_ablation_report(
    sweep_dir: Path, baseline: str | None = None, stage: str | None = None
) -> list[Path]:
    """report.md, ablation.csv, intervals.json and the charts, in the sweep folder; `baseline`
    (AXIS=VALUE[,…]) names the arm every other is compared with (default: the first). `stage` reports
    that stage's evaluation instead of the last one, into report_<stage>/ so both reports are kept."""
    points = load_points(sweep_dir, stage)
    source = f"each point's stage {stage}" if stage else "each point's last evaluated stage"
    out = report_dir(sweep_dir, stage)
    out.mkdir(exist_ok=True)
    axes = varying_axes(points)
    header, rows = table_rows(points, axes)
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *rows])
    written = [out / "ablation.csv"]
    atomic_write_text(written[0], buffer.getvalue())
    written += _charts(out, points, axes)
    lines = [
        f"# Ablation: {sweep_dir.name}" + (f", stage {stage}" if stage else ""),
        "",
        f"{len(points)} points; axes: {', '.join(axes)}. "
        f"Metrics are from {source}; `average` is the unweighted mean over sources.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join("–" if v is None else str(v) for v in row) + " |" for row in rows]
    arm_axes = [a for a in axes if a != "seed"]
    if "seed" in axes:
        lines += seed_summary_lines(points, arm_axes)
    sets = sorted({s for p in points for s in p["eval"]})
    table = interval_table(points, arm_axes, sets, baseline)
    lines += interval_lines(table, arm_axes)
    for axis in (a for a in arm_axes if a in SCALE_AXES):
        for eval_set in sets:  # with 95% bands where the points' predictions are there, else means only
            curve = curves.curves(
                table.get(eval_set) or curves.from_metrics(points, arm_axes, eval_set), axis
            )
            written.append(curves.draw(out / f"curve_{axis}_{eval_set}.png", curve, axis, eval_set))
            lines += curves.transferred_lines(curves.transferred(curve), axis, eval_set)
    written.append(out / "intervals.json")
    atomic_write_text(written[-1], json.dumps(table, ensure_ascii=False, indent=1) + "\n")
    lines += [""] + [f"![{p.stem}]({p.name})" for p in written[1:] if p.suffix == ".png"]
    atomic_write_text(out / "report.md", "\n".join(lines) + "\n")
    return [out / "report.md", *written]


def _charts(out: Path, points: list[dict], axes: list[str]) -> list[Path]:
    sets = sorted({s for p in points for s in p["eval"]})
    paths = []
    for axis in axes:
        if axis not in SCALE_AXES:  # a scale axis gets its learning curves (write_ablation_report)
            paths.append(_bar_chart(out / f"bar_{axis}.png", points, axis, sets))
    return paths


def _bar_chart(path: Path, points: list[dict], axis: str, sets: list[str]) -> Path:
    """Mean accuracy per value of the axis (averaged over any other axes that vary), one bar per eval set."""
    values = list(dict.fromkeys(str(p["axes"][axis]) for p in points))
    fig, ax = plotting.plt.subplots(figsize=(1.2 + 1.1 * len(values) * max(1, len(sets)) ** 0.5, 3.4))
    width = 0.8 / max(1, len(sets))
    for i, eval_set in enumerate(sets):
        heights = []
        for v in values:
            accs = [
                a
                for p in points
                if str(p["axes"][axis]) == v and (a := curves.average_accuracy(p, eval_set)) is not None
            ]
            heights.append(sum(accs) / len(accs) if accs else 0.0)
        ax.bar([x + i * width for x in range(len(values))], heights, width, label=eval_set)
    ax.set_xticks([x + width * (len(sets) - 1) / 2 for x in range(len(values))], values)
    ax.set_xlabel(axis)
    ax.set_ylabel("accuracy (average over sources)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize="small")
    plotting.save(fig, path)
    return path
