"""report.md for one run: metrics across stages and eval sets, with a chart and loss figures."""

from __future__ import annotations

from pathlib import Path

from libra_train import plotting
from libra_train.data.io import atomic_write_text
from libra_train.eval.metrics import one_sided_note, synthetic_only, threshold_text
from libra_train.eval.operating_points import points_table
from libra_train.reporting import run_figures


def _rows(manifest: dict):
    """(stage, set, metrics) in pipeline order, the untrained model first."""
    for set_name, metrics in (manifest.get("eval_before_training") or {}).items():
        yield "untrained", set_name, metrics
    for stage in manifest["stages"]:
        for set_name, metrics in (stage.get("eval") or {}).items():
            yield stage["name"], set_name, metrics


def _synthetic_only_note(manifest: dict) -> list[str]:
    """Say so where an eval set holds synthetic samples only, so its figure is not read as accuracy on
    real assistant responses."""
    names = sorted({name for _, name, m in _rows(manifest) if synthetic_only(m)})
    if not names:
        return []
    listed = ", ".join(f"`{n}`" for n in names)
    return [
        "",
        f"{listed}: synthetic samples only, from the generator that wrote the training data (in attack "
        "methods, templates and layouts training never uses). Their figures measure generalisation within "
        "synthetic data, not accuracy on real assistant responses; real sets: `data=jade`, or "
        "`+data.eval_sets.NAME=FILE`.",
    ]


def _figure(value, sign: bool = False) -> str:
    return "–" if value is None else f"{value:+.4f}" if sign else f"{value:.4f}"


def _judgement_table(manifest: dict) -> list[str]:
    """Beside each accuracy: what the best trivial shortcut scores on the same set and the guard's margin
    over it, the share of helpful safe answers flagged, and whether its probabilities and threshold
    carry over (ECE, accuracy at the best threshold minus at the applied one)."""
    rows = [(stage, name, m) for stage, name, m in _rows(manifest) if "shortcuts" in m]
    if not rows:
        return []
    lines = [
        "",
        'What the set can be passed with, without judging harm (docs/evaluation.md, "Shortcuts"):',
        "",
        "| stage | eval set | length | refusal opening | question alone | margin over the best | "
        "helpful safe flagged | ECE | threshold gap |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for stage, name, m in rows:
        cut = {k: _figure((m["shortcuts"].get(k) or {}).get("accuracy")) for k in SHORTCUTS}
        best = m.get("margin") or {}
        margin = f"{_figure(best.get('margin'), True)} ({best['over']})" if best else "–"
        flagged = m.get("over_flagging") or {}
        helpful = (
            f"{flagged['helpful_flagged']}/{flagged['helpful_safe']} ({flagged['split_by']})"
            if flagged.get("helpful_safe")
            else "–"
        )
        lines.append(
            f"| {stage} | {name} | {cut['length']} | {cut['opening']} | {cut['question_only']} | {margin} | "
            f"{helpful} | {_figure(m.get('ece'))} | {_figure(m.get('threshold_gap'))} |"
        )
    return lines


SHORTCUTS = ("length", "opening", "question_only")


def write_run_report(run_dir: Path, manifest: dict, title: str) -> Path:
    lines = [
        f"# {title}",
        "",
        "Average over sources (unweighted), per eval set and stage. Decision: unsafe when p_unsafe >",
        "the threshold shown (generate mode: the label the guard wrote).",
        "",
    ]
    results, chart = _results_table(manifest)
    lines += results + _synthetic_only_note(manifest) + _judgement_table(manifest)
    one_sided = [(stage, name, one_sided_note(m)) for stage, name, m in _rows(manifest) if one_sided_note(m)]
    if one_sided:
        lines += [""] + [f"**{stage} on `{name}`**: {note}." for stage, name, note in one_sided]
    lines += _per_source(manifest) + _training_table(manifest)
    if run_figures.loss_chart(run_dir / "loss.png", manifest["stages"]):
        lines += ["", "![training loss by stage](loss.png)"]
    if chart:
        _accuracy_chart(run_dir / "accuracy.png", chart)
        lines += ["", "![accuracy by stage](accuracy.png)"]
    lines += _last_stage_sections(run_dir, manifest)
    lines += [
        "Confusion matrices: `<stage>/eval/<set>/confusion.png`; "
        "predictions: `<stage>/eval/<set>/predictions.jsonl`."
    ]
    path = run_dir / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _results_table(manifest: dict) -> tuple[list[str], dict[str, list]]:
    """The headline table, a row per stage and eval set, and each set's accuracy by stage for the chart."""
    lines = [
        "| stage | eval set | Accuracy | F1-Safe | F1-Unsafe | AUPRC | threshold | parse failures |",
        "|---|---|---|---|---|---|---|---|",
    ]
    chart: dict[str, list] = {}
    for stage, set_name, m in _rows(manifest):
        a = m["average"]
        auprc = f"{m['auprc']:.4f}" if m.get("auprc") is not None else "–"
        threshold = threshold_text(m) + (f" ({m['threshold_source']})" if m.get("threshold_source") else "")
        lines.append(
            f"| {stage} | {set_name} | {a['accuracy']:.4f} | {a['f1_safe']:.4f} | {a['f1_unsafe']:.4f} | "
            f"{auprc} | {threshold} | {m.get('parse_failures', 0)} |"
        )
        chart.setdefault(set_name, []).append((stage, a["accuracy"]))
    return lines, chart


def _per_source(manifest: dict) -> list[str]:
    lines = ["", "## Per source", ""]
    for stage, set_name, m in _rows(manifest):
        for src, s in m["per_source"].items():
            lines.append(
                f"- {stage} / {set_name} / {src}: Accuracy {s['accuracy']:.4f}, F1-Safe {s['f1_safe']:.4f}, "
                f"F1-Unsafe {s['f1_unsafe']:.4f} (n={s['n']})"
            )
    return lines


def _training_table(manifest: dict) -> list[str]:
    trained = [st for st in manifest["stages"] if st.get("train")]  # an ensemble's members train elsewhere
    if not trained:
        return []
    lines = [
        "",
        "## Training",
        "",
        "| stage | steps | first loss | last loss | examples | label-only targets | truncated |",
        "|---|---|---|---|---|---|---|",
    ]
    for st in trained:
        t = st["train"]
        d = t.get("data") or {}
        first = f"{t['loss_first']:.4f}" if t.get("loss_first") is not None else "–"
        last = f"{t['loss_last']:.4f}" if t.get("loss_last") is not None else "–"
        lines.append(
            f"| {st['name']} | {t.get('steps', '–')} | {first} | {last} | {d.get('examples', '–')} | "
            f"{d.get('label_only_targets', 0)} | {d.get('truncated', 0)} |"
        )
    return lines + [
        "",
        "Label-only targets: samples with no analysis (e.g. real data the judge did not explain); "
        "they teach the label but not the critic.",
    ]


def _last_stage_sections(run_dir: Path, manifest: dict) -> list[str]:
    """Per eval set, for the last evaluated stage: its PR curve, accuracy per category, and the samples
    it got most confidently wrong."""
    last = next((st for st in reversed(manifest["stages"]) if st.get("eval")), None)
    if last is None:
        return []
    lines = ["", f"## Last stage ({last['name']}): operating points, categories, mistakes", ""]
    per_category = {name: m.get("per_category") or {} for name, m in last["eval"].items()}
    if run_figures.category_chart(run_dir / "per_category.png", per_category):
        lines += ["![accuracy per category](per_category.png)", ""]
    for set_name, m in last["eval"].items():
        eval_dir = run_dir / last["name"] / "eval" / set_name
        threshold = m.get("threshold") if m.get("threshold") is not None else 0.5
        lines += [f"### {set_name} (threshold {threshold_text(m)})", ""]
        if (eval_dir / "pr_curve.png").exists():
            rel = eval_dir.relative_to(run_dir) / "pr_curve.png"
            lines += [f"![precision-recall, {set_name}]({rel.as_posix()})", ""]
        if m.get("operating_points"):
            lines += ["Operating points (chosen on this set's own samples):", ""]
            lines += points_table(m["operating_points"]) + [""]
        if (eval_dir / "reliability.png").exists():
            rel = eval_dir.relative_to(run_dir) / "reliability.png"
            lines += [f"![reliability, {set_name} (ECE {_figure(m.get('ece'))})]({rel.as_posix()})", ""]
        cats = m.get("per_category") or {}
        if cats:
            lines += ["| category | accuracy | n |", "|---|---|---|"]
            lines += [f"| {c} | {v['accuracy']:.4f} | {v['n']} |" for c, v in sorted(cats.items())]
            lines.append("")
        wrong = run_figures.confidently_wrong(eval_dir / "predictions.jsonl", threshold)
        if wrong:
            lines += [f"The {len(wrong)} samples the guard got most confidently wrong:", ""]
            lines += run_figures.wrong_table(wrong) + [""]
    return lines


def _accuracy_chart(path: Path, chart: dict) -> None:
    fig, ax = plotting.plt.subplots(figsize=(5.5, 3.4))
    for set_name, points in chart.items():
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=set_name)
    ax.set_xlabel("stage (untrained = before training)")
    ax.set_ylabel("accuracy (average over sources)")
    ax.set_title("Accuracy after each stage")
    ax.set_ylim(0, 1)
    ax.legend(title="eval set")
    ax.grid(alpha=0.3)
    plotting.save(fig, path)
