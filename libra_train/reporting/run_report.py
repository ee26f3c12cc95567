"""report.md for one run: metrics across stages and eval sets, with a chart and loss figures."""

from __future__ import annotations

from pathlib import Path

from libra_train.data.io import atomic_write_text
from libra_train.reporting import plotting


def _rows(manifest: dict):
    """(stage, set, metrics) in pipeline order, the untrained model first."""
    for set_name, metrics in (manifest.get("eval_before_training") or {}).items():
        yield "untrained", set_name, metrics
    for stage in manifest["stages"]:
        for set_name, metrics in (stage.get("eval") or {}).items():
            yield stage["name"], set_name, metrics


def write_run_report(run_dir: Path, manifest: dict, title: str) -> Path:
    lines = [
        f"# {title}",
        "",
        "Average over sources (unweighted), per eval set and stage. Decision: unsafe when p_unsafe >",
        "the threshold shown (generate mode: the label the guard wrote).",
        "",
        "| stage | eval set | Accuracy | F1-Safe | F1-Unsafe | AUPRC | threshold | parse failures |",
        "|---|---|---|---|---|---|---|---|",
    ]
    chart: dict[str, list] = {}
    for stage, set_name, m in _rows(manifest):
        a = m["average"]
        auprc = f"{m['auprc']:.4f}" if m.get("auprc") is not None else "–"
        threshold = f"{m.get('threshold', 0.5):g}" + (
            f" ({m['threshold_source']})" if m.get("threshold_source") else ""
        )
        lines.append(
            f"| {stage} | {set_name} | {a['accuracy']:.4f} | {a['f1_safe']:.4f} | {a['f1_unsafe']:.4f} | "
            f"{auprc} | {threshold} | {m.get('parse_failures', 0)} |"
        )
        chart.setdefault(set_name, []).append((stage, a["accuracy"]))
    lines += ["", "## Per source", ""]
    for stage, set_name, m in _rows(manifest):
        for src, s in m["per_source"].items():
            lines.append(
                f"- {stage} / {set_name} / {src}: Accuracy {s['accuracy']:.4f}, F1-Safe {s['f1_safe']:.4f}, "
                f"F1-Unsafe {s['f1_unsafe']:.4f} (n={s['n']})"
            )
    if manifest["stages"]:
        lines += [
            "",
            "## Training",
            "",
            "| stage | steps | first loss | last loss | examples | label-only targets | truncated |",
            "|---|---|---|---|---|---|---|",
        ]
    for st in manifest["stages"]:
        t = st.get("train") or {}
        d = t.get("data") or {}
        first = f"{t['loss_first']:.4f}" if t.get("loss_first") is not None else "–"
        last = f"{t['loss_last']:.4f}" if t.get("loss_last") is not None else "–"
        lines.append(
            f"| {st['name']} | {t.get('steps', '–')} | {first} | {last} | {d.get('examples', '–')} | "
            f"{d.get('label_only_targets', 0)} | {d.get('truncated', 0)} |"
        )
    if chart:
        _accuracy_chart(run_dir / "accuracy.png", chart)
        lines += ["", "![accuracy by stage](accuracy.png)", ""]
    if manifest["stages"]:
        lines += [
            "Label-only targets: samples with no analysis (e.g. real data the judge did not explain); "
            "they teach the label but not the critic.",
            "",
        ]
    lines += [
        "Confusion matrices: `<stage>/eval/<set>/confusion.png`; "
        "predictions: `<stage>/eval/<set>/predictions.jsonl`."
    ]
    path = run_dir / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _accuracy_chart(path: Path, chart: dict) -> None:
    fig, ax = plotting.plt.subplots(figsize=(5.5, 3.4))
    for set_name, points in chart.items():
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=set_name)
    ax.set_ylabel("accuracy (average over sources)")
    ax.set_ylim(0, 1)
    ax.legend()
    ax.grid(alpha=0.3)
    plotting.save(fig, path)
