"""The model card's sections built from their inputs, one at a time: the threshold table and its notes,
the usage snippet, the training record, what the guard reads, and the front matter (model-index) the Hub
shows. The whole card's wording is held by test_card_text.py; a card written from a real run, by
test_release.py."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_the_threshold_section_tempers_only_where_a_temperature_was_fitted(temperature):
    from libra_train.eval.decision import Decision
    from libra_train.export.card import _threshold

    text = _threshold(Decision(0.42, temperature), [])
    assert "p(unsafe) > **0.42**" in text
    assert ("sigmoid(logit / 2.5)" in text) == (temperature != 1.0)
    assert "| eval set |" not in text  # no rows, no table


def test_a_usage_snippet_divides_by_the_temperature_and_names_the_label_tokens():
    from libra_train.eval.decision import Decision
    from libra_train.export.card import _usage

    cfg = SimpleNamespace(classifier=False, hub_repo="me/guard")
    text = _usage(cfg, Decision(0.3, 1.7), (11, 22), "prompt")
    assert 'PATH = "me/guard"' in text and "safe_id, unsafe_id = 11, 22" in text
    assert "/ 1.7, -1)[1]" in text and "unsafe = p_unsafe > 0.3" in text
    assert '[{"role": "user", "content": question}]' in text and '"assistant"' not in text
    assert "no fixed input" in _usage(cfg, Decision(), None)


def test_the_training_section_lists_done_stages_with_their_steps_and_data(tmp_path):
    from libra_train.export.card import _training

    (tmp_path / "manifest.json").write_text(json.dumps({"stages": [
        {"name": "stage1_pretrain", "status": "done", "train": {"steps": 12},
         "data": {"/d/stage1.jsonl": "ab"}},
        {"name": "stage2_sft", "status": "running", "train": {"steps": 3}},
    ]}))  # fmt: skip
    text = _training(SimpleNamespace(run_dir=tmp_path))
    assert "- **stage1_pretrain** (12 steps)\n  - `stage1.jsonl`: `ab`" in text and "stage2_sft" not in text
    assert "No run record" in _training(SimpleNamespace(run_dir=None))


def _result(accuracy, source="JADE", threshold_source=None, points=None):
    return {
        "per_source": {source: {}}, "n": 48, "auprc": accuracy - 0.01, "threshold_source": threshold_source,
        "average": {"accuracy": accuracy, "f1_unsafe": accuracy - 0.02, "f1_safe": accuracy - 0.03},
        "operating_points": points,
    }  # fmt: skip


def test_eval_rows_and_card_metadata_name_each_set_its_kind_and_the_base_model(tmp_path):
    from libra_train.export.card import card_data, eval_rows

    points = {"best_accuracy": {"threshold": 0.3, "recall": 0.9, "fpr": 0.1}}
    stage = {"eval": {
        "heldout": _result(0.8, "Synthetic Data"),
        "jade_dev": _result(1.0, threshold_source="calibrated for accuracy on jade_dev: optimistic"),
        "jade_test": _result(0.9, points=points),
    }}  # fmt: skip
    rows = {r["set"]: r for r in eval_rows(stage)}
    assert rows["jade_test"]["n"] == 48 and rows["jade_test"]["operating_points"] == points
    assert rows["heldout"]["operating_points"] == {} and rows["heldout"]["synthetic"]
    assert [name for name, r in rows.items() if r["calibrated_here"]] == ["jade_dev"]
    assert (rows["jade_test"]["accuracy"], rows["jade_test"]["f1_unsafe"]) == (0.9, 0.9 - 0.02)
    (tmp_path / "config.yaml").write_text("model: {name_or_path: Qwen/Qwen2.5-7B-Instruct}\n")
    cfg = SimpleNamespace(model_name=None, output_dir="out/my-guard", license="apache-2.0", classifier=True)
    data = card_data(SimpleNamespace(run_dir=tmp_path), cfg, list(rows.values()))
    assert (data.model_name, data.base_model, data.license) == (
        "my-guard",
        "Qwen/Qwen2.5-7B-Instruct",
        "apache-2.0",
    )
    assert data.language == ["zh"] and data.pipeline_tag == "text-classification"
    assert data.tags == ["safety", "guard", "content-moderation", "libra-train"]
    kinds = {(r.dataset_name, r.dataset_type) for r in data.eval_results}
    assert kinds == {("heldout (synthetic)", "synthetic"), ("jade_test", "jade_test")}  # not jade_dev
    assert {(r.task_type, r.task_name) for r in data.eval_results} == {
        ("text-classification", "safety judgement")
    }
    assert {(r.metric_name, r.metric_type) for r in data.eval_results} == {
        ("accuracy", "accuracy"),
        ("f1_unsafe", "f1"),
        ("f1_safe", "f1"),
        ("auprc", "auprc"),
    }
    (tmp_path / "config.yaml").write_text("model: {name_or_path: /models/my-local-guard}\n")
    assert card_data(SimpleNamespace(run_dir=tmp_path), cfg, []).base_model is None  # a path is not a hub id


def test_a_calibration_set_is_kept_out_of_model_index_and_marked_in_the_card():
    """The threshold chosen on jade_dev makes jade_dev's figures optimistic: the card says so and
    model-index (what the Hub shows) leaves it out; the operating points are a real set's."""
    from libra_train.eval.decision import Decision
    from libra_train.export.card import _threshold, card_data, eval_rows

    points = {"best_accuracy": {"threshold": 0.3, "recall": 0.9, "fpr": 0.1}}
    note = "calibrated for accuracy on jade_dev: this set's figures are optimistic"
    stage = {
        "eval": {
            "heldout": _result(0.5, "Synthetic Data", points=points),
            "jade_dev": _result(1.0, "JADE", note, points),
            "jade_test": _result(0.97, "JADE", points=points),
        }
    }
    rows = eval_rows(stage)
    cfg = SimpleNamespace(model_name="g", output_dir="g", license="other", classifier=False)
    published = {
        (r.dataset_name, r.metric_name)
        for r in card_data(SimpleNamespace(run_dir=None), cfg, rows).eval_results
    }
    assert ("jade_test", "accuracy") in published and ("heldout (synthetic)", "accuracy") in published
    assert not [name for name, _ in published if name.startswith("jade_dev")]
    text = _threshold(Decision(0.0025), rows)
    assert "| jade_dev | 48 | 1.0000 |" in text and "calibrated here: optimistic" in text
    assert "Operating points on jade_test:" in text


def test_the_threshold_table_has_a_row_per_set_with_its_notes():
    from libra_train.eval.decision import Decision
    from libra_train.export.card import _threshold, eval_rows

    stage = {"eval": {
        "heldout": _result(0.8, "Synthetic Data"),
        "jade_dev": _result(1.0, threshold_source="calibrated for accuracy on jade_dev: optimistic"),
    }}  # fmt: skip
    text = _threshold(Decision(0.5), eval_rows(stage))
    assert (
        "| heldout | 48 | 0.8000 | 0.7800 | 0.7700 | 0.7900 | "
        "synthetic only, from the generator that wrote the training data |"
    ) in text
    assert "| jade_dev | 48 | 1.0000 | 0.9800 | 0.9700 | 0.9900 | calibrated here: optimistic |" in text
    both = {"eval": {"x": _result(0.5, "Synthetic Data", "… optimistic")}}
    assert (
        "calibrated here: optimistic; synthetic only, from the generator that wrote the training data"
        in _threshold(Decision(0.5), eval_rows(both))
    )
    assert "| x | 48 | – |" in _threshold(Decision(0.5), [{**eval_rows(both)[0], "accuracy": None}])


@pytest.mark.parametrize(
    "task, reads",
    [
        ("response", "a model's response to a question"),
        ("prompt", "a question alone"),
        ("both", "a question alone, or a question and a model's response to it,"),
    ],
)
def test_the_card_says_what_the_guard_reads_and_how_it_answers(task, reads):
    from libra_train.data.formats import FormatConfig, render_target
    from libra_train.export.card import _judges

    fmt = FormatConfig(task=task)
    text = _judges(fmt, classifier=False)
    opening = f"## What it judges\n\nA Chinese safety guard. It reads {reads} and judges it 安全 (safe) or"
    assert text.startswith(opening + " 不安全 (unsafe).")
    example = render_target({"id": "x", "question": "", "label": "不安全", "analyze": "……"}, fmt)
    assert text.endswith(f"(format `guard`, critic `rear`):\n\n```\n{example}\n```") and "……" in example
    assert _judges(fmt, classifier=True).endswith(
        "A sequence classifier: labels `0: 安全` (safe) and `1: 不安全` (unsafe); the softmax's second "
        "column is p(unsafe)."
    )


def test_the_usage_section_gives_a_runnable_snippet_or_says_why_there_is_none():
    from libra_train.eval.decision import Decision
    from libra_train.export.card import _usage

    text = _usage(SimpleNamespace(classifier=False, hub_repo=None), Decision(0.5), (3, 4))
    assert text.startswith(
        "## Usage with transformers alone\n\nThe `guard` chat template builds the guard's input from the "
        "plain messages (a question and its response, [user, assistant]): the prompt the guard was trained "
        "on, then the start of its answer up to the label. It raises an error for the kind of input the "
        "guard was not trained to judge.\n\n```python\n"
    )
    assert 'PATH = "path/to/this/folder"' in text
    pair = '[{"role": "user", "content": question}, {"role": "assistant", "content": response}]'
    assert f'text = tokenizer.apply_chat_template({pair}, chat_template="guard", tokenize=False)' in text
    none = _usage(SimpleNamespace(classifier=False, hub_repo=None), Decision(0.5), None)
    assert none == (
        "## Usage\n\nThis format writes its verdict after generated text, so no fixed input ends at the "
        "label: `libra-infer model=PATH data=FILE output_dir=DIR mode=prompts` writes each record's exact "
        "prompt, and the guard's answer is generated from it."
    )


def test_the_training_section_lists_a_done_stage_after_one_that_is_not(tmp_path):
    from libra_train.export.card import _training

    def section(stages):
        (tmp_path / "manifest.json").write_text(json.dumps({"stages": stages}))
        return _training(SimpleNamespace(run_dir=tmp_path))

    text = section([{"name": "a", "status": "running"}, {"name": "b", "status": "done"}])
    assert text == (
        "## Training\n\nThe curriculum, stage by stage, with the data each stage read (SHA-256):\n\n- **b**"
    )
    assert section([]) == "## Training\n\nNo run record was found beside the checkpoint."
