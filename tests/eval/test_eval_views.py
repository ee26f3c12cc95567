"""The evaluator scores what training renders: every view format.task makes, each against its own
label, with the prompt task and the response task reported as separate rows."""

import json

import pytest

from libra_train.config_groups import EvalConfig
from libra_train.data.formats import FormatConfig, render_prompt
from libra_train.eval.evaluator import evaluate
from libra_train.eval.metrics import format_table
from libra_train.model import load_model_and_tokenizer
from tests.conftest import read_jsonl, sample


def _records():
    # gold labels of the response and of the question differ, so a scorer that used the wrong one shows
    return [
        {**sample(1, label="安全"), "meta": {"query_label": "不安全"}},
        {**sample(2, label="不安全"), "meta": {"query_label": "安全"}},
        sample(3, label="安全"),  # no prompt-level label: counted, not scored on the prompt task
    ]


@pytest.mark.parametrize(
    "task, ids",
    [
        ("prompt", ["1#prompt", "2#prompt"]),
        ("both", ["1", "1#prompt", "2", "2#prompt", "3"]),
        ("response", ["1", "2", "3"]),
    ],
)
def test_a_guard_is_scored_on_the_views_it_was_trained_on(tiny_backbone, tmp_path, task, ids):
    model, tokenizer = load_model_and_tokenizer(str(tiny_backbone))
    fmt = FormatConfig(task=task)
    metrics = evaluate(model, tokenizer, {"set": _records()}, fmt, EvalConfig(mode="label"), tmp_path)["set"]
    rows = {str(r["id"]): r for r in read_jsonl(tmp_path / "set" / "predictions.jsonl")}
    assert sorted(rows) == ids
    for row_id, row in rows.items():
        if row_id.endswith("#prompt"):  # the question alone, against the question's own label
            source = next(r for r in _records() if f"{r['id']}#prompt" == row_id)
            assert (row["response"], row["label"], row["task"]) == (
                "",
                source["meta"]["query_label"],
                "prompt",
            )
            assert "【回答】" not in render_prompt(row, tokenizer, fmt)
        else:
            assert row["task"] == "response" and row["response"]
    assert {t: m["n"] for t, m in metrics["per_task"].items()} == {
        t: sum(r["task"] == t for r in rows.values())
        for t in ("prompt", "response")
        if any(r["task"] == t for r in rows.values())
    }
    assert metrics.get("no_prompt_label", 0) == (1 if task != "response" else 0)
    table = format_table(metrics)
    assert ("task: prompt" in table) == (task != "response")


def test_libra_infer_and_libra_eval_score_the_same_views(tiny_backbone, tmp_path):
    from tests.conftest import run_cli, write_jsonl

    labels = write_jsonl(tmp_path / "labels.jsonl", _records())
    preds = tmp_path / "preds"
    run_cli(
        "libra-infer",
        f"model={tiny_backbone}",
        f"data={labels}",
        f"output_dir={preds}",
        "format.task=both",
        "mode=label",
    )
    assert sorted(str(r["id"]) for r in read_jsonl(preds / "0-of-1.jsonl")) == [
        "1",
        "1#prompt",
        "2",
        "2#prompt",
        "3",
    ]
    out = tmp_path / "metrics"
    proc = run_cli("libra-eval", f"predictions={preds}", f"labels={labels}", f"output_dir={out}", "task=both")
    assert "task: prompt" in proc.stdout and "task: response" in proc.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert {t: m["n"] for t, m in metrics["per_task"].items()} == {"prompt": 2, "response": 3}
    assert metrics["no_prompt_label"] == 1
