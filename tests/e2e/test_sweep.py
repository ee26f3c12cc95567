"""A real 2-point multirun on a tiny model, then libra-report over it; and the report on hand-made points."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from libra_train.errors import ConfigError, DataError
from libra_train.reporting.ablation import load_points, seed_summary, write_ablation_report
from tests.conftest import REPO, run_cli, write_jsonl

FAST = [
    "logger=none",
    "data.prepare.num_samples=420",
    "train.max_steps=8",
    "train.batch_size=8",
    "train.save_steps=8",
    "eval.before_training=false",
]


@pytest.mark.slow  # over the CI budget: pytest -m slow
def test_two_point_multirun_then_report(tmp_path):
    sweep_dir = tmp_path / "sweep"
    run_cli("libra-train", "-m", "+sweep=rules_in_prompt", f"hydra.sweep.dir={sweep_dir}", *FAST)
    configs = [OmegaConf.load(sweep_dir / p / "config.yaml") for p in ("0", "1")]
    rules = [c.format.rules for c in configs]
    assert sorted(rules) == [False, True]
    # Every point of one sweep shares one W&B group, named after the sweep folder.
    assert configs[0].logger.group == configs[1].logger.group == "quickstart/sweep"
    assert all((sweep_dir / p / "manifest.json").exists() for p in ("0", "1"))
    proc = run_cli("libra-report", str(sweep_dir))
    assert "ablation.csv" in proc.stdout
    rows = list(csv.DictReader((sweep_dir / "ablation.csv").open()))
    assert [r["rules"] for r in rows] == [str(r) for r in rules] and all(r["status"] == "done" for r in rows)
    for point, r in zip(("0", "1"), rows):  # each row holds its point's last-stage figures, as computed
        final = json.loads((sweep_dir / point / "manifest.json").read_text())["stages"][-1]["eval"]["heldout"]
        assert float(r["heldout/average/accuracy"]) == pytest.approx(final["average"]["accuracy"], abs=1e-4)
        assert float(r["heldout/Synthetic Data/f1_safe"]) == pytest.approx(
            final["per_source"]["Synthetic Data"]["f1_safe"], abs=1e-4
        )
    report = (sweep_dir / "report.md").read_text()
    assert report.count("| done |") == 2 and (sweep_dir / "bar_rules.png").stat().st_size > 1000


def _point(
    root,
    name,
    critic,
    accuracy,
    done=True,
    limit=None,
    seed=0,
    correct=None,
    first="s1",
    first_correct=None,
    **axes,
):
    """A sweep point's files; `correct` (one bool per sample): its last stage's held-out predictions,
    `first_correct` those of its first stage (named `first`)."""
    folder = root / name
    folder.mkdir(parents=True)
    for stage, oks in ((first, first_correct), ("s2", correct)):
        if oks is not None:
            rows = [
                {"id": i, "task": "response", "label": "不安全", "pred_label": "不安全" if ok else "安全"}
                for i, ok in enumerate(oks)
            ]
            (folder / stage / "eval" / "heldout").mkdir(parents=True)
            write_jsonl(folder / stage / "eval" / "heldout" / "predictions.jsonl", rows)
    cfg = {
        "seed": seed,
        "format": {"critic": critic, "rules": False, "task": "response"},
        "curriculum": {"name": axes.get("curriculum", "two_stage")},
        "data": {"stage1": {"limit": limit}, "stage2": {"limit": axes.get("limit2")}},
        "model": {"name": "tiny"},
        "peft": {"method": "none"},
    }
    (folder / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    metrics = {
        "per_source": {"A": {"accuracy": accuracy, "f1_safe": 0.5, "f1_unsafe": 0.25, "n": 4}},
        "average": {"accuracy": accuracy, "f1_safe": 0.5, "f1_unsafe": 0.25},
    }
    stages = [
        {
            "name": first,
            "status": "done",
            "eval": {"heldout": {**metrics, "average": {**metrics["average"], "accuracy": 0.1}}},
        },
        {
            "name": "s2",
            "status": "done" if done else "running",
            **({"eval": {"heldout": metrics}} if done else {}),
        },
    ]
    (folder / "manifest.json").write_text(json.dumps({"stages": stages}))


def test_report_takes_the_last_evaluated_stage_and_marks_unfinished_points(tmp_path):
    _point(tmp_path, "0", "rear", 0.75)
    _point(tmp_path, "1", "front", 0.5, done=False)
    _point(tmp_path, "10", "none", 0.25)  # numeric order: 10 comes after 1, not between 0 and 1
    points = load_points(tmp_path)
    assert [p["point"] for p in points] == ["0", "1", "10"]
    assert [(p["status"], p["final_stage"]) for p in points] == [
        ("done", "s2"),
        ("incomplete", "s1"),
        ("done", "s2"),
    ]
    write_ablation_report(tmp_path)
    rows = list(csv.DictReader((tmp_path / "ablation.csv").open()))
    assert list(rows[0])[:3] == ["point", "status", "critic"]  # only the axis that varies
    assert [r["heldout/average/accuracy"] for r in rows] == ["0.75", "0.1", "0.25"]


def test_repeats_over_seeds_give_mean_and_spread(tmp_path):
    _point(tmp_path, "0", "rear", 0.8, seed=0)
    _point(tmp_path, "1", "rear", 0.7, seed=1)
    _point(tmp_path, "2", "rear", 0.1, seed=2, done=False)  # unfinished: not in the summary
    _point(tmp_path, "3", "front", 0.6, seed=0)
    points = load_points(tmp_path)
    rear, front = seed_summary(points, ["critic"])
    assert rear["axes"] == {"critic": "rear"} and rear["seeds"] == [0, 1]
    acc = rear["heldout/accuracy"]
    # mean 0.75; sample sd sqrt((0.05² + 0.05²) / 1) = 0.0707107
    assert acc["mean"] == pytest.approx(0.75) and acc["sd"] == pytest.approx(0.0707107, abs=1e-6)
    assert (acc["min"], acc["max"], acc["n"]) == (0.7, 0.8, 2)
    assert front["heldout/accuracy"] == {"mean": 0.6, "sd": 0.0, "min": 0.6, "max": 0.6, "n": 1}
    write_ablation_report(tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert "## Over seeds" in report and "| rear | 0,1 | 0.7500 ± 0.0707 (0.7000–0.8000)" in report
    assert "| front | 0 | 0.6000 (1 seed)" in report  # one seed has no spread to show


def test_each_arm_gets_an_interval_and_a_verdict_against_the_baseline(tmp_path):
    _point(tmp_path, "0", "rear", 0.9, seed=0, correct=[True] * 36 + [False] * 4)
    _point(tmp_path, "1", "rear", 0.95, seed=1, correct=[True] * 38 + [False] * 2)
    _point(tmp_path, "2", "front", 0.5, seed=0, correct=[True, False] * 20)
    _point(tmp_path, "3", "front", 0.5, seed=1, correct=[False, True] * 20)
    _point(tmp_path, "4", "none", 0.9, seed=0, correct=[True] * 37 + [False] * 3)
    write_ablation_report(tmp_path, baseline="critic=rear")
    table = json.loads((tmp_path / "intervals.json").read_text())["heldout"]
    rear, front, none = table["arms"]
    assert table["baseline"] == 0 and rear["difference"] is None
    assert (rear["seeds"], rear["samples"], rear["mean"]) == (2, 40, pytest.approx(0.925))
    assert front["mean"] == 0.5 and front["difference"]["mean"] == pytest.approx(-0.425)
    assert front["difference"]["verdict"] == "worse" and front["difference"]["high"] < 0
    assert none["seeds"] == 1 and none["difference"]["mean"] == pytest.approx(0.0)  # 37/40 against 74/80
    assert none["difference"]["verdict"] == "not distinguishable at this n"
    report = (tmp_path / "report.md").read_text()
    assert "## heldout: 95% intervals" in report and "(critic=rear)" in report
    assert "| front | 2 | 40 | 0.5000 [" in report and "| worse |" in report
    with pytest.raises(ConfigError, match="no arm has critic=middle"):
        write_ablation_report(tmp_path, baseline="critic=middle")


def test_libra_report_logs_its_intervals_and_charts_to_wandb_in_the_sweeps_group(tmp_path):
    from tests.wandb_records import history, nested, records, run_file

    sweep = tmp_path / "sweep"
    _point(sweep, "0", "rear", 0.9, seed=0, correct=[True] * 36 + [False] * 4)
    _point(sweep, "1", "front", 0.5, seed=0, correct=[True, False] * 20)
    config = OmegaConf.load(sweep / "0" / "config.yaml")
    config.logger = {"group": "jade/multirun_x"}  # what a sweep point records (cli._place_sweep_point)
    (sweep / "0" / "config.yaml").write_text(OmegaConf.to_yaml(config))
    env = {"WANDB_MODE": "offline", "HOME": str(tmp_path)}
    run_cli("libra-report", str(sweep), "--baseline", "critic=rear", "--wandb", env=env)
    (run_dir,) = (sweep / "wandb").glob("offline-run-*")
    (run,) = [r.run for r in records(run_file(run_dir)) if r.WhichOneof("record_type") == "run"]
    assert (run.run_group, run.job_type) == ("jade/multirun_x", "libra-report")
    (row,) = [r for r in history(run_file(run_dir)) if "report/heldout/intervals/path" in r]
    saved = json.loads((run_dir / "files" / nested(row, "report/heldout/intervals")["path"]).read_text())
    by_arm = {r[0]: dict(zip(saved["columns"], r)) for r in saved["data"]}
    assert by_arm["rear"]["verdict"] == "baseline" and by_arm["rear"]["accuracy"] == pytest.approx(0.9)
    assert by_arm["front"]["verdict"] == "worse" and by_arm["front"]["difference"] == pytest.approx(-0.4)
    assert (by_arm["front"]["seeds"], by_arm["front"]["samples"]) == (1, 40)
    assert nested(row, "report/bar_critic")["_type"] == "image-file"  # the charts, as images


def test_a_data_scale_sweep_gets_curves_with_bands_and_the_data_transferred(tmp_path):
    right = {"sft_only": {50: 20, 100: 28, 200: 36}, "two_stage": {50: 28, 100: 32, 200: 38}}  # of 40
    i = 0
    for curriculum, by_budget in right.items():
        for budget, n_right in by_budget.items():
            for seed in (0, 1):
                correct = [True] * n_right + [False] * (40 - n_right)
                _point(
                    tmp_path,
                    str(i),
                    "rear",
                    0.5,
                    seed=seed,
                    correct=correct,
                    curriculum=curriculum,
                    limit2=budget,
                )
                i += 1
    paths = write_ablation_report(tmp_path, baseline="curriculum=sft_only,stage2_limit=50")
    assert tmp_path / "curve_stage2_limit_heldout.png" in paths
    assert (tmp_path / "curve_stage2_limit_heldout.png").stat().st_size > 1000
    report = (tmp_path / "report.md").read_text()
    assert "## heldout: effective data transferred (stage2_limit)" in report
    # two_stage at 50 samples (0.70) is what sft_only reaches at 100 (0.70): 50 more samples
    assert "| two_stage | 50 | 0.7000 | 100 | +50 |" in report
    assert "| two_stage | 200 | 0.9500 | more than measured | – |" in report


def test_report_draws_scale_lines(tmp_path):
    for i, limit in enumerate([0.25, 0.5, None]):
        _point(tmp_path, str(i), "rear", 0.5 + 0.1 * i, limit=limit)
    paths = write_ablation_report(tmp_path)
    assert tmp_path / "curve_stage1_limit_heldout.png" in paths  # means only: no predictions, no bands


def test_report_at_a_named_stage_reads_that_stage_beside_the_sweeps_own_report(tmp_path):
    _point(tmp_path, "0", "rear", 0.75)
    _point(tmp_path, "1", "front", 0.5, done=False)  # s2 still running: s1 finished all the same
    write_ablation_report(tmp_path)
    run_cli("libra-report", str(tmp_path), "--stage", "s1")
    at_s1 = list(csv.DictReader((tmp_path / "report_s1" / "ablation.csv").open()))
    assert [(r["status"], r["final_stage"], r["heldout/average/accuracy"]) for r in at_s1] == [
        ("done", "s1", "0.1"),
        ("done", "s1", "0.1"),
    ]
    last = list(csv.DictReader((tmp_path / "ablation.csv").open()))  # the last stage's report is kept
    assert [(r["status"], r["heldout/average/accuracy"]) for r in last] == [
        ("done", "0.75"),
        ("incomplete", "0.1"),
    ]
    assert (
        (tmp_path / "report_s1" / "report.md")
        .read_text()
        .startswith(f"# Ablation: {tmp_path.name}, stage s1")
    )


def test_report_at_a_stage_not_started_marks_the_point_and_an_unknown_stage_is_an_error(tmp_path):
    _point(tmp_path, "0", "rear", 0.75)
    _point(tmp_path, "1", "rear", 0.75)  # its curriculum has a third stage, not started yet
    config = OmegaConf.load(tmp_path / "1" / "config.yaml")
    config.curriculum.stages = [{"name": n} for n in ("s1", "s2", "s3")]
    OmegaConf.save(config, tmp_path / "1" / "config.yaml")
    (tmp_path / "0" / "config.yaml").write_text(OmegaConf.to_yaml(config))
    assert [(p["status"], p["eval"]) for p in load_points(tmp_path, "s3")] == [("incomplete", {})] * 2
    proc = run_cli("libra-report", str(tmp_path), "--stage", "stage1_pretrain", check=False)
    assert proc.returncode == 2
    assert "0/config.yaml" in proc.stderr
    assert "no stage named 'stage1_pretrain' (its stages: s1, s2, s3)" in proc.stderr
    (tmp_path / "0" / "config.yaml").write_text(OmegaConf.to_yaml({**config, "curriculum": {"name": "x"}}))
    proc = run_cli("libra-report", str(tmp_path), "--stage", "s9", check=False)  # no stages in its config
    assert proc.returncode == 2 and "no stage named 's9' (its stages: s1, s2)" in proc.stderr


def test_report_on_a_folder_with_no_points_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no sweep points"):
        load_points(tmp_path)
    proc = run_cli("libra-report", str(tmp_path / "missing"), check=False)
    assert proc.returncode == 2 and "no such sweep directory" in proc.stderr


def test_wandb_runs_carry_their_axis_values_as_tags(tmp_path):
    from hydra import compose, initialize_config_dir

    from libra_train.cli_utils import CONF_DIR
    from libra_train.tracking import make_tracker

    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"paths.run_dir={tmp_path}",
                "format=front",
                "curriculum=mixed",
                "logger.mode=offline",
                "logger.group=sweep-x",
            ],
        )
    from libra_train.config import RunConfig

    tracker = make_tracker(RunConfig.from_hydra(cfg), {"a": 1}, is_main=True)
    try:
        assert tracker.run.group == "sweep-x"
        assert {"critic=front", "curriculum=mixed", "rules=False"} <= set(tracker.run.tags)
    finally:
        tracker.finish()


def test_points_scored_on_different_samples_compare_only_the_shared_ones_and_say_so(tmp_path):
    _point(tmp_path, "0", "rear", 0.9, seed=0, correct=[True] * 10)
    _point(tmp_path, "1", "front", 0.9, seed=0, correct=[True] * 6)  # ids 0–5 only: a split of its own
    write_ablation_report(tmp_path)
    table = json.loads((tmp_path / "intervals.json").read_text())["heldout"]
    assert table["scored"] == 10 and [a["samples"] for a in table["arms"]] == [6, 6]
    assert "**Only 6 of up to 10 samples are shared by every point**" in (tmp_path / "report.md").read_text()
    _point(tmp_path / "same", "0", "rear", 0.9, correct=[True] * 6)
    _point(tmp_path / "same", "1", "front", 0.9, correct=[False] * 6)
    write_ablation_report(tmp_path / "same")
    assert "are shared by every point" not in (tmp_path / "same" / "report.md").read_text()


def test_the_claims_table_gives_each_claim_its_verdict_from_its_sweep(tmp_path):
    for seed in (0, 1):  # rear beats front on every sample draw; 'none' is better still in the second sweep
        _point(tmp_path / "a", f"{seed}", "rear", 0.9, seed=seed, correct=[True] * 36 + [False] * 4)
        _point(tmp_path / "a", f"{seed + 2}", "front", 0.5, seed=seed, correct=[True, False] * 20)
        _point(tmp_path / "b", f"{seed}", "rear", 0.5, seed=seed, correct=[True, False] * 20)
        _point(tmp_path / "b", f"{seed + 2}", "none", 1.0, seed=seed, correct=[True] * 40)

    good, poor = [True] * 36 + [False] * 4, [True, False] * 20
    for i, (budget, curriculum, correct) in enumerate(
        [
            (0.25, "two_stage", poor),
            (0.25, "sft_only", good),
            (1.0, "two_stage", good),
            (1.0, "sft_only", poor),
        ]
    ):  # a data-scale sweep: its order is read at the full budget only
        _point(tmp_path / "c", str(i), "rear", 0.5, correct=correct, curriculum=curriculum, limit2=budget)

    def table(sweep: Path, claim: str = "--critic") -> dict[str, list[str]]:
        script = [sys.executable, "benchmarks/paper_claims.py", "--set", "heldout", claim, str(sweep)]
        out = subprocess.run(script, cwd=REPO, capture_output=True, text=True, check=True).stdout
        rows = [line.strip("|").split(" | ") for line in out.splitlines()[2:]]
        return {row[0].strip(): [cell.strip() for cell in row[1:]] for row in rows}

    first = table(tmp_path / "a")
    assert first["The rear critic is best"][1] == "holds"
    assert "critic=rear 0.900 (2 seeds × 40 samples)" in first["The rear critic is best"][0]
    assert "critic=front: -0.400 [" in first["The rear critic is best"][0]
    assert first["More synthetic data helps (no real data)"] == ["–", "not measured"]
    assert table(tmp_path / "b")["The rear critic is best"][1] == "does not hold"
    order = table(tmp_path / "c", "--order")["Pretrain → SFT beats every other order"]
    assert order[1] == "holds" and "curriculum=sft_only: -0.400" in order[0]


def test_the_synthetic_scale_claim_reads_stage_one_alone_and_the_last_stage_apart(tmp_path):
    good, poor = [True] * 36 + [False] * 4, [True, False] * 20
    for seed in (0, 1):  # more synthetic data helps stage 1 alone; after the real stage both sizes tie
        for i, (size, at_stage1) in enumerate([(500, poor), (32000, good)]):
            _point(tmp_path, f"{2 * seed + i}", "rear", 0.5, limit=size, seed=seed, correct=good,
                   first="stage1_pretrain", first_correct=at_stage1)  # fmt: skip
    script = [sys.executable, "benchmarks/paper_claims.py", "--set", "heldout"]
    script += ["--synth-scale", str(tmp_path), "--synth-scale-real", str(tmp_path)]
    out = subprocess.run(script, cwd=REPO, capture_output=True, text=True, check=True).stdout
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")[1:] for line in out.splitlines()[2:]}
    alone, then_real = (
        rows["More synthetic data helps (no real data)"],
        rows["More synthetic data helps (then a small real budget)"],
    )
    assert "stage1_limit=500 0.500 (2 seeds × 40 samples)" in alone[0] and alone[1].strip(" |") == "holds"
    assert "stage1_limit=32000: +0.400 [" in alone[0]
    assert "stage1_limit=32000: +0.000 [" in then_real[0]
    assert then_real[1].strip(" |") == "inconclusive at this scale"


def test_a_baseline_naming_one_axis_pairs_each_arm_with_the_baseline_at_its_own_budget(tmp_path):
    good, poor = [True] * 36 + [False] * 4, [True, False] * 20
    arms = [
        (0.25, "sft_only", poor),
        (0.25, "two_stage", good),
        (1.0, "sft_only", good),
        (1.0, "two_stage", good),
    ]
    for i, (budget, curriculum, correct) in enumerate(arms):
        _point(tmp_path, str(i), "rear", 0.5, correct=correct, curriculum=curriculum, limit2=budget)
    write_ablation_report(tmp_path, baseline="curriculum=sft_only")
    rows = json.loads((tmp_path / "intervals.json").read_text())["heldout"]["arms"]
    by_arm = {(r["axes"]["stage2_limit"], r["axes"]["curriculum"]): r for r in rows}
    assert by_arm[(0.25, "two_stage")]["versus"] == {"stage2_limit": 0.25, "curriculum": "sft_only"}
    assert by_arm[(0.25, "two_stage")]["difference"]["mean"] == pytest.approx(0.4)  # 36/40 − 20/40
    assert by_arm[(1.0, "two_stage")]["difference"]["mean"] == pytest.approx(0.0)  # against sft_only at 1.0
    assert (
        by_arm[(0.25, "sft_only")]["difference"] is None and by_arm[(1.0, "sft_only")]["difference"] is None
    )
    assert "the baseline arm that shares its values of the other axes" in (tmp_path / "report.md").read_text()
