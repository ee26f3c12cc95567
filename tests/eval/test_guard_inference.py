"""label vs generate mode, libra-infer resume and sharding, libra-eval, on the session's trained tiny
guard."""

import json
import os
import signal
import subprocess
import time

import pytest

from libra_train.data.formats import TARGET_OPENING, FormatConfig
from libra_train.data.io import load_records
from libra_train.eval.scoring import generate_labels, score_labels
from libra_train.model import load_model_and_tokenizer
from tests.conftest import BIN, read_jsonl, run_cli, write_jsonl


def test_label_and_generate_modes_agree(trained_run):
    model, tokenizer = load_model_and_tokenizer(str(trained_run / "stage2_sft" / "checkpoint"))
    records = load_records(trained_run / "data" / "heldout.jsonl")[:24]
    fmt = FormatConfig()
    scored = score_labels(model, tokenizer, records, fmt, batch_size=5)
    generated = generate_labels(model, tokenizer, records, fmt, batch_size=4, max_new_tokens=12)
    compared = 0
    for s, g in zip(scored, generated):
        assert 0.0 <= s["p_unsafe"] <= 1.0
        # where greedy decoding writes a label word after the opening, it is the one label mode prefers
        # (label mode compares those two words only; a guard of 70 steps sometimes writes another token)
        if g["critic"].startswith(TARGET_OPENING) and g["pred_label"] is not None:
            compared += 1
            assert s["pred_label"] == g["pred_label"], g["critic"]
    assert compared >= len(records) // 2  # the guard has learnt the format: the check is not vacuous


def test_shared_prefix_cache_gives_the_same_scores(trained_run):
    model, tokenizer = load_model_and_tokenizer(str(trained_run / "stage2_sft" / "checkpoint"))
    records = load_records(trained_run / "data" / "heldout.jsonl")[:20]
    # Mixed lengths and a prompt-only sample (a different system prompt) in the same batches.
    records.append({**records[0], "id": "prompt-only", "response": ""})
    fmt = FormatConfig()
    shared = score_labels(model, tokenizer, records, fmt, batch_size=7)
    plain = score_labels(model, tokenizer, records, fmt, batch_size=7, share_prefix=False)
    assert [s["pred_label"] for s in shared] == [p["pred_label"] for p in plain]
    assert max(abs(s["p_unsafe"] - p["p_unsafe"]) for s, p in zip(shared, plain)) < 1e-5


def _infer_args(trained_run, data, out, *extra):
    return [f"model={trained_run / 'stage2_sft' / 'checkpoint'}", f"data={data}", f"output_dir={out}", *extra]


def test_infer_shards_and_eval_scores_them(trained_run, tmp_path):
    data = trained_run / "data" / "heldout.jsonl"
    for rank in (0, 1):
        run_cli(
            "libra-infer",
            *_infer_args(
                trained_run, data, tmp_path / "preds", f"machine_rank={rank}", "machine_num=2", "batch_size=8"
            ),
        )
    parts = [read_jsonl(tmp_path / "preds" / f"{r}-of-2.jsonl") for r in (0, 1)]
    ids = [p["id"] for part in parts for p in part]
    assert sorted(ids) == sorted(r["id"] for r in load_records(data)) and len(ids) == len(set(ids))
    assert all({"critic", "pred_label", "p_unsafe", "question"} <= set(p) for p in parts[0])
    proc = run_cli(
        "libra-eval", f"predictions={tmp_path / 'preds'}", f"labels={data}", f"output_dir={tmp_path / 'm'}"
    )
    assert "F1-Unsafe" in proc.stdout and "Average" in proc.stdout
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert metrics["n"] == len(ids) and (tmp_path / "m" / "confusion.png").exists()


@pytest.mark.slow
def test_infer_with_few_shot_examples_and_plain_prompts(trained_run, tmp_path):
    heldout = load_records(trained_run / "data" / "heldout.jsonl")
    shots = write_jsonl(tmp_path / "shots.jsonl", load_records(trained_run / "data" / "stage1.jsonl")[:2])
    data = write_jsonl(tmp_path / "d.jsonl", heldout[:6])
    model, tokenizer = load_model_and_tokenizer(str(trained_run / "stage2_sft" / "checkpoint"))
    expected = {}
    for style, shot_list in (("chat", []), ("chat", load_records(shots)), ("plain", load_records(shots))):
        fmt = FormatConfig(prompt_style=style, few_shot=shot_list)
        expected[style, bool(shot_list)] = [
            s["p_unsafe"] for s in score_labels(model, tokenizer, heldout[:6], fmt)
        ]
    # The examples and the plain form each change the scores, so matching them shows they were used.
    assert expected["chat", True] != expected["chat", False] != expected["plain", True]
    for style in ("chat", "plain"):
        run_cli(
            "libra-infer",
            *_infer_args(
                trained_run,
                data,
                tmp_path / style,
                f"format.few_shot_file={shots}",
                f"format.prompt_style={style}",
            ),
        )
        preds = read_jsonl(tmp_path / style / "0-of-1.jsonl")
        assert [p["id"] for p in preds] == [r["id"] for r in heldout[:6]]
        assert [p["p_unsafe"] for p in preds] == pytest.approx(expected[style, True], abs=1e-5)
    proc = run_cli(
        "libra-infer",
        *_infer_args(trained_run, data, tmp_path / "x", f"format.few_shot_file={tmp_path}/no.jsonl"),
        check=False,
    )
    assert proc.returncode == 2 and "no.jsonl" in proc.stderr


def test_eval_reads_libra_style_predictions(tmp_path):
    labels = write_jsonl(
        tmp_path / "labels.jsonl",
        [
            {"id": 1, "source": "A", "question": "q", "label": "不安全"},
            {"id": 2, "source": "A", "question": "q", "label": "安全"},
        ],
    )
    preds = tmp_path / "libra"
    preds.mkdir()
    write_jsonl(
        preds / "0.jsonl",
        [
            {"id": 1, "source": "A", "critic": '{"答案": "不安全", "分析": "x"}'},
            {"id": 2, "source": "A", "critic": "无法判断"},
        ],
    )
    run_cli("libra-eval", f"predictions={preds}", f"labels={labels}", f"output_dir={tmp_path / 'm'}")
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert metrics["parse_failures"] == 1 and metrics["average"]["accuracy"] == 0.5


def test_killed_inference_resumes_with_every_id_once(trained_run, tmp_path):
    data = write_jsonl(tmp_path / "many.jsonl", load_records(trained_run / "data" / "stage1.jsonl")[:80])
    out = tmp_path / "preds"
    args = [
        str(BIN / "libra-infer"),
        *_infer_args(trained_run, data, out, "mode=generate", "batch_size=2", "max_new_tokens=24"),
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    partial = out / "0-of-1.jsonl.partial"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (
        not partial.exists() or len(partial.read_bytes().splitlines()) < 6
    ):
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(read_jsonl(partial))
    assert 6 <= done_before < 80 and not (out / "0-of-1.jsonl").exists()
    run_cli(
        "libra-infer",
        *_infer_args(trained_run, data, out, "mode=generate", "batch_size=8", "max_new_tokens=24"),
    )
    ids = [p["id"] for p in read_jsonl(out / "0-of-1.jsonl")]
    assert sorted(ids) == sorted(r["id"] for r in load_records(data)) and len(set(ids)) == len(ids)


@pytest.mark.parametrize("case", ["unknown_id", "bad_label", "empty_folder", "missing_model"])
def test_bad_input_gets_a_clear_error(trained_run, tmp_path, case):
    labels = write_jsonl(tmp_path / "labels.jsonl", [{"id": 1, "question": "q", "label": "安全"}])
    if case == "unknown_id":
        preds = write_jsonl(
            tmp_path / "p.jsonl", [{"id": 1, "pred_label": "安全"}, {"id": 9, "pred_label": "安全"}]
        )
        proc = run_cli("libra-eval", f"predictions={preds}", f"labels={labels}", check=False)
        expected = [str(preds), "line 2", "9"]
    elif case == "bad_label":
        bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": 1, "question": "q", "label": "maybe"}])
        preds = write_jsonl(tmp_path / "p.jsonl", [{"id": 1, "pred_label": "安全"}])
        proc = run_cli("libra-eval", f"predictions={preds}", f"labels={bad}", check=False)
        expected = [str(bad), "line 1", "label"]
    elif case == "empty_folder":
        (tmp_path / "empty").mkdir()
        proc = run_cli("libra-eval", f"predictions={tmp_path / 'empty'}", f"labels={labels}", check=False)
        expected = ["empty", "no data files"]
    else:
        proc = run_cli(
            "libra-infer",
            f"model={tmp_path / 'no_model'}",
            f"data={labels}",
            f"output_dir={tmp_path}",
            check=False,
        )
        expected = ["no_model", "does not exist"]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    for word in expected:
        assert word in proc.stderr, proc.stderr
