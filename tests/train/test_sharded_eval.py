"""Evaluation and hard-sample selection shared across ranks (2 CPU processes, no process group: the
ranks meet at marker files): the same predictions and metrics as one process, a dead rank named within
the configured timeout, and a relaunch that resumes with every id exactly once."""

import os
import subprocess
import sys
import time

import pytest

from libra_train.data.formats import FormatConfig
from libra_train.eval.evaluator import evaluate
from libra_train.model import load_model_and_tokenizer
from libra_train.train.selection import SelectionConfig, read_scores, score_pool, select
from tests.conftest import REPO, read_jsonl, sample, write_jsonl

pytestmark = pytest.mark.distributed


def _records(n):
    return [
        sample(i, label="安全" if i % 3 else "不安全", question=f"问题{i}" * (1 + i % 4)) for i in range(n)
    ]


def _rank(rank, checkpoint, data, out_dir, run_dir, launch, timeout_s=60):
    env = {
        **os.environ,
        "RANK": str(rank),
        "WORLD_SIZE": "2",
        "LOCAL_RANK": str(rank),
        "LIBRA_LAUNCH_ID": launch,
        "OMP_NUM_THREADS": "1",
    }
    cmd = [
        sys.executable,
        "-m",
        "tests.train.eval_rank",
        str(checkpoint),
        str(data),
        str(out_dir),
        str(run_dir),
        str(timeout_s),
    ]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_ranks_give_the_predictions_and_metrics_of_one_process(tiny_backbone, tmp_path):
    data = write_jsonl(tmp_path / "heldout.jsonl", _records(30))
    ranks = [_rank(r, tiny_backbone, data, tmp_path / "eval2", tmp_path / "run", "a") for r in (0, 1)]
    for proc in ranks:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    model, tokenizer = load_model_and_tokenizer(str(tiny_backbone))
    one = evaluate(model, tokenizer, {"heldout": str(data)}, FormatConfig(), None, tmp_path / "eval1")
    sharded = read_jsonl(tmp_path / "eval2" / "heldout" / "predictions.jsonl")
    single = read_jsonl(tmp_path / "eval1" / "heldout" / "predictions.jsonl")
    assert [p["id"] for p in sharded] == [p["id"] for p in single]  # same ids, same order, each once
    for a, b in zip(sharded, single):
        assert a["pred_label"] == b["pred_label"] and a["p_unsafe"] == pytest.approx(b["p_unsafe"], abs=1e-5)
    metrics = __import__("json").loads((tmp_path / "eval2" / "heldout" / "metrics.json").read_text())
    assert metrics["average"] == one["heldout"]["average"] and metrics["n"] == 30
    assert not list((tmp_path / "eval2" / "heldout").glob("rank*"))  # the shares were merged away


@pytest.mark.slow
def test_a_dead_rank_is_named_within_the_timeout_and_a_relaunch_resumes(tiny_backbone, tmp_path):
    data = write_jsonl(tmp_path / "heldout.jsonl", _records(400))
    out = tmp_path / "eval"
    first = [_rank(r, tiny_backbone, data, out, tmp_path / "run", "first", timeout_s=8) for r in (0, 1)]
    partial = out / "heldout" / "rank1-of-2.jsonl.partial"
    deadline = time.monotonic() + 120
    while not (partial.exists() and partial.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.05)
    first[1].kill()  # rank 1 dies mid-share
    first[1].wait()
    started = time.monotonic()
    _, err = first[0].communicate(timeout=120)
    assert first[0].returncode != 0 and time.monotonic() - started < 8 + 30
    assert "rank 1" in err and "distributed.timeout_s" in err, err[-2000:]
    kept = len(read_jsonl(partial))
    assert 0 < kept < 200
    again = [_rank(r, tiny_backbone, data, out, tmp_path / "run", "second") for r in (0, 1)]
    for proc in again:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    ids = [p["id"] for p in read_jsonl(out / "heldout" / "predictions.jsonl")]
    assert sorted(ids) == list(range(400))  # every id exactly once


def test_sharded_selection_chooses_what_one_process_chooses(tiny_backbone, tmp_path):
    pool = [{**r, "analyze": "x"} for r in _records(40)]
    guards, fmt = [str(tiny_backbone), str(tiny_backbone)], FormatConfig()
    cfg = SelectionConfig(budget=12, easy_share=0.25, margin=0.45, seed=3)
    alone = select(pool, *score_pool(pool, guards, fmt, tmp_path / "one", batch_size=4)[:1], cfg)[0]
    for rank in (0, 1):  # each rank's share, as two ranks write them
        assert score_pool(pool, guards, fmt, tmp_path / "two", batch_size=4, rank=rank, world=2) is None
    shared = select(pool, read_scores(pool, len(guards), tmp_path / "two", world=2)[0], cfg)[0]
    assert [r["id"] for r in shared] == [r["id"] for r in alone] and len(alone) == 12


def test_libra_infer_under_torchrun_writes_one_shard_per_rank(tiny_backbone, tmp_path):
    from tests.conftest import BIN, run_cli

    data = write_jsonl(tmp_path / "data.jsonl", _records(30))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", str(BIN / "libra-infer")]
    preds = tmp_path / "preds"
    cmd = [*launch, f"model={tiny_backbone}", f"data={data}", f"output_dir={preds}", "mode=label"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    shards = [read_jsonl(tmp_path / "preds" / f"{r}-of-2.jsonl") for r in (0, 1)]
    assert sorted(p["id"] for s in shards for p in s) == list(range(30))  # every id once, across ranks
    assert [p["id"] for p in shards[1]] == list(range(1, 30, 2))
    out = run_cli("libra-eval", f"predictions={tmp_path / 'preds'}", f"labels={data}")
    assert "Average" in out.stdout


def test_a_failing_rank_stops_the_others_at_once_with_its_error(tmp_path):
    code = (
        "import sys\nfrom pathlib import Path\nfrom libra_train.runtime import distributed as d\n"
        "d.set_timeout(120)\n"
        "def work():\n"
        "    if d.rank() == 1: raise ValueError('bad shard')\n"
        "d.every_rank(Path(sys.argv[1]), 'eval', work)"
    )
    procs = []
    for rank in (0, 1):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": "2", "LIBRA_LAUNCH_ID": "x"}
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", code, str(tmp_path)],
                env=env,
                cwd=REPO,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    started = time.monotonic()
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert time.monotonic() - started < 30  # far inside the 120 s timeout
    assert procs[0].returncode != 0 and "rank 1 failed: ValueError: bad shard" in errors[0], errors[0][-2000:]
