"""W&B as a reader of the dashboard sees it: the offline run's own record file, after a run that was
killed mid-stage and resumed."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from libra_train.data.io import file_sha256
from tests.conftest import BIN, TINY_TRAIN, read_jsonl, run_cli, write_jsonl
from tests.wandb_records import history, nested, records, run_file

ARGS = [a for a in TINY_TRAIN if a != "logger=none" and not a.startswith("train.max_steps")] + [
    "logger=wandb",
    "logger.table_rows=7",
    "+curriculum.stages.0.max_steps=40",
    "+curriculum.stages.1.max_steps=4",
    "eval.before_training=false",
]


def _start(run_dir):
    env = {**os.environ, "WANDB_SILENT": "true", "WANDB_MODE": "offline", "HOME": str(run_dir.parent)}
    env.pop("WANDB_API_KEY", None)
    return subprocess.Popen(
        [str(BIN / "libra-train"), f"paths.run_dir={run_dir}", *ARGS],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _killed_then_resumed(run_dir):
    proc = _start(run_dir)
    deadline = time.time() + 400
    while not (run_dir / "stage1_pretrain" / "trainer" / "checkpoint-6" / "trainer_state.json").exists():
        assert proc.poll() is None and time.time() < deadline, proc.stdout.read()[-3000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # what a preempted or cancelled job gets
    proc.wait()
    first_state = json.loads((run_dir / "wandb_state.json").read_text())
    resumed = _start(run_dir)
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out[-3000:]
    return first_state


@pytest.mark.slow  # 87 s; the default run keeps the pipeline's own kill-and-resume (test_pipeline.py)
def test_a_killed_and_resumed_run_is_one_run_with_tables_artifacts_and_a_global_step(tmp_path):
    run_dir = tmp_path / "run"
    first_state = _killed_then_resumed(run_dir)
    state = json.loads((run_dir / "wandb_state.json").read_text())
    assert state["id"] == first_state["id"]
    folders = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(folders) == 2 and all(f.name.endswith(state["id"]) for f in folders)  # one run, two sittings
    before, after = (records(run_file(f)) for f in folders)
    assert {r.run.run_id for r in before + after if r.WhichOneof("record_type") == "run"} == {state["id"]}

    # one x-axis across stages: every key is charted against global_step
    metrics = [r.metric for r in before if r.WhichOneof("record_type") == "metric"]
    assert any(m.glob_name == "*" and m.step_metric == "global_step" for m in metrics)

    # one continuous history: the second sitting goes on from the checkpoint, stage 2 after stage 1
    train_steps = lambda rows: [r["global_step"] for r in rows if "train/loss" in r]  # noqa: E731
    first, second = train_steps(history(run_file(folders[0]))), train_steps(history(run_file(folders[1])))
    assert first == sorted(first) and second == sorted(second) and first[0] == 2 and max(first) >= 6
    assert 6 < second[0] <= max(first) + 2 and second[-1] == 40 + 4  # on from checkpoint-6, no gap
    assert set(first) | set(second) == set(range(2, 45, 2))
    rows = history(run_file(folders[1]))
    stage2 = [r for r in rows if "stage2_sft/train/loss" in r]
    assert stage2 and all(r["global_step"] == 40 + r["train/stage_step"] for r in stage2)

    # per eval set and stage: native charts and a capped predictions table
    evals = [r for r in rows if "stage2_sft/eval/heldout/accuracy" in r]
    assert len(evals) == 1
    table = nested(evals[0], "stage2_sft/eval/heldout/predictions")
    assert table["_type"] == "table-file" and table["nrows"] == 7
    saved = json.loads((folders[1] / "files" / table["path"]).read_text())
    assert saved["columns"][:8] == [
        "id",
        "source",
        "category",
        "question",
        "response",
        "gold",
        "predicted",
        "p_unsafe",
    ]
    for key in ("stage2_sft/eval/heldout/pr_curve_table", "stage2_sft/eval/heldout/confusion_matrix_table"):
        assert any(k.startswith(key) for k in evals[0]), key

    # artifacts: the data (with the manifest's hashes), each stage's predictions, the final checkpoint
    logged = [r.artifact for r in after if r.WhichOneof("record_type") == "artifact"]
    kinds = {a.type: a for a in logged}
    assert {"dataset", "predictions", "model"} <= set(kinds)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    hashes = json.loads(kinds["dataset"].metadata)["sha256"]
    for path, digest in manifest["stages"][0]["data"].items():
        assert hashes[path] == digest


def _offline_run(folder):
    (found,) = (folder / "wandb").glob("offline-run-*")
    return found


def test_libra_eval_and_libra_synth_log_to_their_own_runs(tmp_path):
    env = {"WANDB_MODE": "offline", "HOME": str(tmp_path)}
    gold = ["不安全" if i % 2 else "安全" for i in range(6)]
    labels = write_jsonl(
        tmp_path / "labels.jsonl",
        [{"id": i, "source": "A", "question": "q", "label": g} for i, g in enumerate(gold)],
    )
    preds = write_jsonl(
        tmp_path / "preds.jsonl",
        [
            {"id": i, "source": "A", "critic": '{"答案": "不安全"}', "p_unsafe": p}
            for i, p in enumerate([0.9, 0.8, 0.7, 0.65, 0.5, 0.55])
        ],
    )
    out = tmp_path / "metrics"
    run_cli(
        "libra-eval",
        f"predictions={preds}",
        f"labels={labels}",
        f"output_dir={out}",
        "logger=wandb",
        "logger.table_rows=4",
        env=env,
    )
    found = records(run_file(_offline_run(out)))
    assert {r.run.job_type for r in found if r.WhichOneof("record_type") == "run"} == {"libra-eval"}
    (row,) = [r for r in history(run_file(_offline_run(out))) if "libra-eval/eval/labels/accuracy" in r]
    assert row["libra-eval/eval/labels/accuracy"] == 0.5  # every sample called unsafe, half are
    table = nested(row, "libra-eval/eval/labels/predictions")
    saved = json.loads((_offline_run(out) / "files" / table["path"]).read_text())
    # cap 4: the 3 mistakes (ids 0, 2, 4, most confident first), then the closest right call (id 5)
    assert [(r[0], r[-1]) for r in saved["data"]] == [
        ("0", "misclassified"),
        ("2", "misclassified"),
        ("4", "misclassified"),
        ("5", "low margin"),
    ]

    synth = tmp_path / "synth"
    run_cli("libra-synth", f"output_dir={synth}", "num_samples=200", "logger=wandb", env=env)
    found = records(run_file(_offline_run(synth)))
    (artifact,) = [r.artifact for r in found if r.WhichOneof("record_type") == "artifact"]
    hashes = json.loads(artifact.metadata)["sha256"]
    names = {"stage1.jsonl", "stage2.jsonl", "heldout.jsonl", "stats.json"}  # rejected.jsonl: none here
    assert {Path(p).name for p in hashes} == names


def _artifacts(folder):
    return [
        r.artifact
        for r in records(run_file(_offline_run(folder)))
        if r.WhichOneof("record_type") == "artifact"
    ]


def test_libra_infer_and_libra_mine_log_their_outputs(trained_run, tmp_path):
    env = {"WANDB_MODE": "offline", "HOME": str(tmp_path)}
    guard = trained_run / "stage2_sft" / "checkpoint"
    data = write_jsonl(tmp_path / "few.jsonl", read_jsonl(trained_run / "data" / "heldout.jsonl")[:8])
    preds = tmp_path / "preds"
    run_cli("libra-infer", f"model={guard}", f"data={data}", f"output_dir={preds}", "logger=wandb", env=env)
    (row,) = [r for r in history(run_file(_offline_run(preds))) if "infer/samples" in r]
    assert row["infer/samples"] == 8  # the shared guard judges responses: one prediction per sample
    assert [(a.name, a.type) for a in _artifacts(preds)] == [("predictions", "predictions")]

    mined = tmp_path / "mined" / "hard.jsonl"
    pool = trained_run / "data" / "stage2.jsonl"
    run_cli(
        "libra-mine",
        f"pool={pool}",
        f"model={guard}",
        f"output={mined}",
        "budget=10",
        "logger=wandb",
        env=env,
    )
    (row,) = [r for r in history(run_file(_offline_run(mined.parent))) if "mine/chosen" in r]
    assert row["mine/chosen"] == 10
    (artifact,) = _artifacts(mined.parent)
    assert json.loads(artifact.metadata)["sha256"] == {str(mined): file_sha256(mined)}


def test_an_artifact_keeps_every_eval_sets_predictions_though_they_share_a_name(tmp_path, monkeypatch):
    """Each eval set writes <set>/predictions.jsonl: one artifact of a stage's predictions holds them all
    (W&B refuses two entries with one name)."""
    from libra_train.config_groups import LoggerConfig
    from libra_train.tracking import WandbTracker, artifact_entry_names

    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    for name in "ab":
        (tmp_path / "eval" / name).mkdir(parents=True)
    files = [write_jsonl(tmp_path / "eval" / name / "predictions.jsonl", [{"id": name}]) for name in "ab"]
    assert artifact_entry_names([tmp_path / "x.jsonl", tmp_path / "y" / "z.jsonl"]) == ["x.jsonl", "z.jsonl"]
    tracker = WandbTracker(tmp_path, {}, LoggerConfig(backend="wandb", mode="offline"), "t", [])
    tracker.log_artifact("predictions-stage1", "predictions", files)
    tracker.finish()
    (artifact,) = _artifacts(tmp_path)
    assert sorted(c.path for c in artifact.manifest.contents) == [
        "a/predictions.jsonl",
        "b/predictions.jsonl",
    ]
