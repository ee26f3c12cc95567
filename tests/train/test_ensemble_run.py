"""libra-train ensemble.members=2: two members, trained at once in two processes with their own seeds on
the same data, served as one guard that is evaluated, given its threshold, reported, and read back by
libra-infer; a rerun redoes nothing."""

import json

import pytest
from safetensors.torch import load_file

from tests.conftest import TINY_TRAIN, read_jsonl, run_cli

ARGS = [
    *[a for a in TINY_TRAIN if not a.startswith(("train.max_steps", "eval.before"))],
    "curriculum=sft_only",
    "train.max_steps=12",
    "eval.before_training=false",
    "ensemble.members=2",
    "ensemble.parallel=2",
    # a subset of the rows: the members (seeds 0 and 1) must still train on the same rows, or model=tiny
    # learns a vocabulary per member and the members cannot form one guard
    "data.stage2.limit=0.5",
]


@pytest.mark.slow
def test_two_members_become_one_evaluated_guard(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli("libra-train", f"paths.run_dir={run_dir}", *ARGS)
    log = proc.stdout + proc.stderr
    assert "training 2 members, 2 at a time with 1 thread(s) each" in log  # two processes, one core each
    assert "[member0] stage1_sft" in log and "[member1] stage1_sft" in log
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert [s["name"] for s in manifest["stages"]] == ["member0", "member1", "ensemble"]
    member0, member1, ensemble = manifest["stages"]
    assert (member0["seed"], member1["seed"]) == (0, 1)
    # each member is a whole run of its own, trained from its own initial weights
    weights = [load_file(run_dir / m["checkpoint"] / "model.safetensors") for m in (member0, member1)]
    backbones = [
        load_file(run_dir / "members" / f"member{k}" / "backbone" / "model.safetensors") for k in (0, 1)
    ]
    assert any(not backbones[0][k].equal(backbones[1][k]) for k in backbones[0])
    for k in (0, 1):
        member_manifest = json.loads((run_dir / "members" / f"member{k}" / "manifest.json").read_text())
        assert member_manifest["stages"][0]["train"]["steps"] == 12
        assert any(not weights[k][n].equal(backbones[k][n]) for n in weights[k])
    # on one copy of the data: the run's own, synthesized once
    configs = [(run_dir / "members" / f"member{k}" / "config.yaml").read_text() for k in (0, 1)]
    assert all(f"{run_dir}/data/stage2.jsonl" in c for c in configs)
    assert not (run_dir / "members" / "member0" / "data" / "stage2.jsonl").exists()
    vocabularies = [
        (run_dir / "members" / f"member{k}" / "backbone" / "tokenizer.json").read_text() for k in (0, 1)
    ]
    assert vocabularies[0] == vocabularies[1]  # learnt from the same half of the rows
    # the ensemble: both final checkpoints, evaluated like a stage, its threshold saved beside it
    checkpoint = run_dir / "ensemble" / "checkpoint"
    members = json.loads((checkpoint / "ensemble.json").read_text())["members"]
    assert [(checkpoint / m).resolve() for m in members] == [
        (run_dir / m["checkpoint"]).resolve() for m in (member0, member1)
    ]
    heldout = ensemble["eval"]["heldout"]
    assert heldout["n"] > 0 and heldout["auprc"] is not None
    saved = json.loads((checkpoint / "guard_threshold.json").read_text())
    assert saved["threshold"] == heldout["threshold"]
    report = (run_dir / "report.md").read_text()
    assert "| member0 | heldout" in report and "| ensemble | heldout" in report
    assert (run_dir / "ensemble" / "eval" / "heldout" / "pr_curve.png").exists()

    # libra-infer takes the ensemble folder as its model and scores as the evaluation did
    out = tmp_path / "infer"
    run_cli(
        "libra-infer",
        f"model={checkpoint}",
        f"data={run_dir / 'data' / 'heldout.jsonl'}",
        f"output_dir={out}",
    )
    inferred = {r["id"]: r["p_unsafe"] for r in read_jsonl(next(out.glob("*.jsonl")))}
    evaluated = read_jsonl(run_dir / "ensemble" / "eval" / "heldout" / "predictions.jsonl")
    assert len(inferred) == len(evaluated)
    assert all(abs(inferred[r["id"]] - r["p_unsafe"]) < 1e-5 for r in evaluated)

    before = (checkpoint / "ensemble.json").stat().st_mtime_ns
    proc = run_cli("libra-train", f"paths.run_dir={run_dir}", *ARGS, "ensemble.parallel=1")  # in turn
    assert (proc.stdout + proc.stderr).count("done already, skipped") == 2
    assert (checkpoint / "ensemble.json").stat().st_mtime_ns == before


@pytest.mark.slow
def test_sigterm_to_the_run_stops_its_member_processes_at_once(tmp_path):
    """A preempted ensemble run (SIGTERM to the main process only, as `docker stop` sends it) stops its
    members instead of waiting for them to finish; each member keeps its checkpoints for a rerun."""
    import signal
    import subprocess
    import time

    import psutil

    from tests.conftest import BIN

    run_dir = tmp_path / "run"
    args = [a for a in ARGS if not a.startswith(("train.max_steps", "train.save_steps"))]
    command = [
        str(BIN / "libra-train"),
        f"paths.run_dir={run_dir}",
        *args,
        "train.max_steps=2000",
        "train.save_steps=5",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = [
        run_dir / "members" / f"member{k}" / "stage1_sft" / "trainer" / "checkpoint-5" / "trainer_state.json"
        for k in (0, 1)
    ]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not all(p.exists() for p in first):
        time.sleep(0.2)
    # the member processes only: multiprocessing's resource tracker, also a child, exits on its own
    # shortly after the run does, which is not what this test is about
    children = psutil.Process(proc.pid).children()
    members = [p for p in children if "spawn_main" in " ".join(p.cmdline())]
    assert all(p.exists() for p in first) and len(members) == 2
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) != 0  # 2,000 steps per member would take minutes more
    assert not [p for p in members if p.is_running()]  # joined (so reaped) before the run exited
    for k in (0, 1):
        manifest = json.loads((run_dir / "members" / f"member{k}" / "manifest.json").read_text())
        assert manifest["stages"][0]["status"] == "interrupted"  # each member says where it stopped
        assert manifest["interrupted"]["stage"] == "stage1_sft" and manifest["interrupted"]["step"] >= 5


def test_a_members_bad_data_is_one_line_naming_the_member_and_the_line(tmp_path):
    from tests.conftest import sample, write_jsonl

    data = write_jsonl(tmp_path / "bad.jsonl", [sample(1), {**sample(2), "label": "也许"}])
    proc = run_cli(
        "libra-train",
        f"paths.run_dir={tmp_path / 'run'}",
        "logger=none",
        "curriculum=sft_only",
        f"data.stage2.path={data}",
        f"data.eval_sets.heldout={data}",
        "data.prepare=null",
        "ensemble.members=2",
        "ensemble.parallel=2",
        check=False,
    )
    assert proc.returncode == 2
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: ensemble member {tmp_path / 'run' / 'members' / 'member'}")
    assert f"{data}, line 2: field 'label'" in error
