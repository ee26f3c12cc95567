"""libra-export's release, built in process (the console-script tests in test_export.py cannot see a
change to the code they run in another process): the merged weights equal the checkpoint's, the
threshold and temperature travel with them, the classifier's head reads label mode's tempered
p(unsafe), the card's rows and snippet match the run, and bad input leaves no folder behind."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest
import torch

from libra_train.errors import ConfigError
from tests.conftest import read_jsonl

THRESHOLD, TEMPERATURE = 0.37, 2.0  # not the shared guard's saved 0.5 and 1.0, which would prove nothing


def export(checkpoint, out, **options):
    from libra_train.export.release import export_release

    cfg = SimpleNamespace(
        checkpoint=str(checkpoint), output_dir=str(out), classifier=False, threshold=None, hub_repo=None,
        model_name=None, license="other", trust_remote_code=False, dtype="auto", named_format=None,
        format_keys={},
    )  # fmt: skip
    for key, value in options.items():
        setattr(cfg, key, value)
    return export_release(cfg)


@pytest.fixture(scope="module")
def releases(trained_run, tmp_path_factory):
    """The run exported whole (its final guard, its card), and a copy of that guard with a decision
    of its own (threshold and temperature) exported as a classifier."""
    import shutil

    from libra_train.eval.decision import Decision, save_decision

    root = tmp_path_factory.mktemp("releases")
    merged = export(trained_run, root / "merged")
    tempered = root / "tempered"
    shutil.copytree(trained_run / "stage2_sft" / "checkpoint", tempered)
    save_decision(tempered, Decision(THRESHOLD, TEMPERATURE, "fitted"))
    return merged, export(tempered, root / "classifier", classifier=True), export(tempered, root / "plain")


def test_a_release_holds_what_the_run_made_and_its_card_says_so(trained_run, releases):
    """One test for everything the module's exports wrote: it is the first to use them, so a mutation
    test that maps each function to the tests that reached it finds every check here."""
    merged, classifier, plain = releases
    check_merged_weights_decision_and_format(trained_run, merged)
    check_classifier_reads_tempered_p_unsafe_and_carries_its_decision(trained_run, classifier, plain)
    check_cards_name_the_threshold_rows_and_snippet(trained_run, merged, classifier, plain)


def check_merged_weights_decision_and_format(trained_run, merged):
    from safetensors.torch import load_file

    checkpoint = trained_run / "stage2_sft" / "checkpoint"
    mine = load_file(str(merged / "model.safetensors"))
    theirs = load_file(str(checkpoint / "model.safetensors"))
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    saved = json.loads((checkpoint / "guard_threshold.json").read_text())
    written = json.loads((merged / "guard_threshold.json").read_text())
    assert written["threshold"] == saved["threshold"] and written.get("temperature", 1.0) == saved.get(
        "temperature", 1.0
    )
    assert str(checkpoint) in written["source"]
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer

    recorded = json.loads((merged / "guard_format.json").read_text())["format"]
    trained = OmegaConf.load(trained_run / "config.yaml").format
    assert [recorded[k] for k in ("prompt", "critic", "task")] == [
        trained.prompt,
        trained.critic,
        trained.task,
    ]
    templates = AutoTokenizer.from_pretrained(str(merged)).chat_template
    assert isinstance(templates, dict) and "guard" in templates


def check_classifier_reads_tempered_p_unsafe_and_carries_its_decision(trained_run, classifier, plain):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from libra_train.data.formats import FormatConfig
    from libra_train.data.recorded_format import recorded_format
    from libra_train.eval.scoring import score_labels
    from libra_train.export.classifier import classifier_input
    from libra_train.model import load_model_and_tokenizer

    config = json.loads((classifier / "config.json").read_text())
    assert config["id2label"] == {"0": "安全", "1": "不安全"} and config["label2id"] == {
        "安全": 0,
        "不安全": 1,
    }
    assert config["architectures"] == ["Qwen2ForSequenceClassification"]
    assert (config["guard_threshold"], config["guard_temperature"]) == (THRESHOLD, TEMPERATURE)
    for release in (classifier, plain):
        written = json.loads((release / "guard_threshold.json").read_text())
        assert (written["threshold"], written["temperature"]) == (THRESHOLD, TEMPERATURE), release.name
    checkpoint = trained_run / "stage2_sft" / "checkpoint"
    model, tokenizer = load_model_and_tokenizer(str(checkpoint))
    assert config["pad_token_id"] == tokenizer.pad_token_id is not None
    fields = FormatConfig.__dataclass_fields__
    fmt = FormatConfig(**{k: v for k, v in recorded_format(classifier).items() if k in fields})
    records = [r for r in read_jsonl(trained_run / "data" / "heldout.jsonl") if r.get("response")][:24]
    untempered = [s["p_unsafe"] for s in score_labels(model, tokenizer, records, fmt, decision=None)]
    want = [1 / (1 + ((1 - p) / p) ** (1 / TEMPERATURE)) for p in untempered]  # sigmoid(logit / T)
    head = AutoModelForSequenceClassification.from_pretrained(str(classifier), dtype=torch.float32).eval()
    ctok = AutoTokenizer.from_pretrained(str(classifier))
    got = []
    for record in records:
        text = classifier_input(record, ctok, fmt, tuple(config["guard_label_token_ids"]))
        ids = ctok(text, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            got.append(head(**ids).logits.softmax(-1)[0, 1].item())
    assert got == pytest.approx(want, abs=1e-5)


def check_cards_name_the_threshold_rows_and_snippet(trained_run, merged, classifier, plain):
    from huggingface_hub import ModelCard

    manifest = json.loads((trained_run / "manifest.json").read_text())
    final = manifest["stages"][-1]["eval"]["heldout"]
    card = ModelCard.load(merged / "README.md")
    results = {(r.dataset_name, r.metric_name): r.metric_value for r in card.data.eval_results}
    for key in ("accuracy", "f1_unsafe", "f1_safe"):
        assert results[("heldout (synthetic)", key)] == round(final["average"][key], 4), key
    assert results[("heldout (synthetic)", "auprc")] == round(final["auprc"], 4)
    saved = json.loads((merged / "guard_threshold.json").read_text())["threshold"]
    assert f"p(unsafe) > **{saved:.6g}**" in card.text and f"unsafe = p_unsafe > {saved:.6g}" in card.text
    assert card.data.pipeline_tag == "text-generation" and card.data.model_name == "merged"
    assert card.text.lstrip().startswith("# merged\n")
    row = f"| heldout | {final['n']} | {final['average']['accuracy']:.4f} |"
    assert (
        row in card.text
        and "| synthetic only, from the generator that wrote the training data |" in card.text
    )
    steps = {s["name"]: s["train"]["steps"] for s in manifest["stages"] if s.get("train")}
    for name, n in steps.items():
        assert f"- **{name}** ({n} steps)" in card.text
    other = ModelCard.load(classifier / "README.md")
    assert other.data.pipeline_tag == "text-classification"
    assert f"p(unsafe) > **{THRESHOLD:.6g}**" in other.text
    assert f'scores["不安全"] > {THRESHOLD:.6g}' in other.text
    assert "text-classification" in other.text and "AutoModelForCausalLM" not in other.text
    tempered = ModelCard.load(plain / "README.md").text
    assert "sigmoid(logit / 2)" in tempered and f"/ {TEMPERATURE:.6g}, -1)[1]" in tempered
    assert f"unsafe = p_unsafe > {THRESHOLD:.6g}" in tempered


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


def test_a_full_folder_and_an_ensemble_classifier_are_refused_and_leave_nothing(trained_run, tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty") as err:
        export(trained_run, full)
    assert err.value.key == "output_dir" and [p.name for p in full.iterdir()] == ["keep.txt"]
    ensemble = tmp_path / "ensemble"
    ensemble.mkdir()
    members = [str(trained_run / s / "checkpoint") for s in ("stage1_pretrain", "stage2_sft")]
    (ensemble / "ensemble.json").write_text(json.dumps({"members": members}))
    with pytest.raises(
        ConfigError, match=re.escape(f"export each member instead ({', '.join(members)})")
    ) as err:
        export(ensemble, tmp_path / "out", classifier=True)
    assert err.value.key == "classifier" and not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ensemble", "full"]  # no staging folder left


def test_a_stage_checkpoint_inside_a_run_is_exported_with_that_stages_figures(trained_run, tmp_path):
    from huggingface_hub import ModelCard

    manifest = json.loads((trained_run / "manifest.json").read_text())
    figures = {s["name"]: s["eval"]["heldout"]["auprc"] for s in manifest["stages"]}
    assert len(set(figures.values())) == len(figures)  # each stage's own figure tells them apart
    for name, auprc in figures.items():
        out = export(trained_run / name / "checkpoint", tmp_path / name)
        card = ModelCard.load(out / "README.md")
        results = {(r.dataset_name, r.metric_name): r.metric_value for r in card.data.eval_results}
        assert results[("heldout (synthetic)", "auprc")] == round(auprc, 4), name
        assert "stage1_pretrain" in card.text and "stage2_sft" in card.text  # the run's whole record


@pytest.mark.parametrize("umask, folder, file", [(0o022, 0o755, 0o644), (0o027, 0o750, 0o640)])
def test_a_release_takes_the_modes_the_users_umask_gives(trained_run, tmp_path, umask, folder, file):
    import os
    import stat

    old = os.umask(umask)
    try:
        out = export(trained_run, tmp_path / "release")
    finally:
        os.umask(old)
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in [out, *out.rglob("*")]}
    assert {m for p, m in modes.items() if p.is_dir()} == {folder}
    assert {m for p, m in modes.items() if p.is_file()} == {file}


def test_an_ensemble_is_exported_member_by_member_with_its_own_decision(trained_run, tmp_path):
    from libra_train.ensemble import member_paths
    from libra_train.eval.decision import Decision, save_decision, saved_decision

    ensemble = tmp_path / "ensemble"
    ensemble.mkdir()
    members = [str(trained_run / s / "checkpoint") for s in ("stage1_pretrain", "stage2_sft")]
    (ensemble / "ensemble.json").write_text(json.dumps({"members": members}))
    save_decision(ensemble, Decision(0.42, 1.5, "fitted"))
    out = export(ensemble, tmp_path / "release")
    exported = member_paths(out)
    assert [p.name for p in exported] == ["member0", "member1"] and all(
        (p / "config.json").is_file() for p in exported
    )
    assert saved_decision(out).threshold == 0.42 and saved_decision(out).temperature == 1.5
    assert (
        saved_decision(exported[1]).threshold
        == saved_decision(trained_run / "stage2_sft" / "checkpoint").threshold
    )
    assert json.loads((out / "guard_format.json").read_text())["format"]["critic"] == "rear"
    assert (out / "README.md").is_file()


def test_inputs_written_for_a_classifier_are_the_text_its_head_reads(releases, tmp_path):
    from transformers import AutoTokenizer

    from libra_train.data.formats import FormatConfig
    from libra_train.data.recorded_format import recorded_format
    from libra_train.export.classifier import classifier_input, write_classifier_inputs
    from tests.conftest import read_jsonl as read

    _, classifier, _ = releases
    fields = FormatConfig.__dataclass_fields__
    fmt = FormatConfig(**{k: v for k, v in recorded_format(classifier).items() if k in fields})
    tokenizer = AutoTokenizer.from_pretrained(str(classifier))
    records = [
        {"id": "a", "question": "怎么撬锁？", "response": "第一步，准备铁丝。", "label": "不安全"},
        {"id": "b", "question": "怎么学英语？", "response": "多听多说。", "label": "安全"},
    ]
    out = write_classifier_inputs(records, tokenizer, fmt, classifier, tmp_path / "prompts.jsonl")
    rows = read(out)
    assert [(r["id"], r["task"]) for r in rows] == [("a", "response"), ("b", "response")]
    for row, record in zip(rows, records):
        assert row["prompt"] == classifier_input(record, tokenizer, fmt)
    # a head whose rows are not the tokens label mode reads, and input the guard was not trained on
    import shutil

    other = shutil.copytree(classifier, tmp_path / "other")
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "guard_label_token_ids": [1, 2]}))
    with pytest.raises(ConfigError, match="the classifier's head holds \\[1, 2\\]"):
        write_classifier_inputs(records, tokenizer, fmt, other, tmp_path / "x.jsonl")
    recorded = json.loads((other / "guard_format.json").read_text())
    recorded["format"]["task"] = "response"
    (other / "guard_format.json").write_text(json.dumps(recorded))
    alone = [{"id": "c", "question": "怎么撬锁？", "label": "不安全"}]
    with pytest.raises(ConfigError, match=f"{other}.*format.task=response") as err:
        write_classifier_inputs(alone, tokenizer, fmt, other, tmp_path / "y.jsonl")
    assert err.value.key == "format.task" and not (tmp_path / "y.jsonl").exists()


def test_an_upload_needs_a_token_and_sends_the_folder_to_the_repo(tmp_path, monkeypatch):
    import huggingface_hub

    from libra_train.export.release import upload_release

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    assert upload_release(tmp_path, "me/guard").startswith("not uploaded to me/guard: no Hugging Face token")
    calls = []

    class Api:
        def create_repo(self, repo, exist_ok):
            calls.append(("create", repo, exist_ok))

        def upload_folder(self, folder_path, repo_id, commit_message):
            calls.append(("upload", folder_path, repo_id, commit_message))
            return (
                SimpleNamespace(commit_url="https://hub/me/guard/commit/1") if repo_id == "me/guard" else None
            )

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_x")
    monkeypatch.setattr(huggingface_hub, "HfApi", Api)
    assert upload_release(tmp_path, "me/guard") == "uploaded to https://hub/me/guard/commit/1"
    assert calls == [
        ("create", "me/guard", True),
        ("upload", str(tmp_path), "me/guard", "libra-export release"),
    ]
    assert upload_release(tmp_path, "me/other") == "uploaded to me/other"  # no commit URL: the repo


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


def _run_copy(trained_run, tmp_path, stages):
    """A run folder with `stages` as its manifest, its stage folders those of the shared run."""
    run = tmp_path / "run"
    run.mkdir()
    for name in ("stage1_pretrain", "stage2_sft"):
        (run / name).symlink_to(trained_run / name)
    (run / "config.yaml").symlink_to(trained_run / "config.yaml")
    (run / "manifest.json").write_text(json.dumps({"stages": stages}))
    return run


def test_a_run_is_exported_at_its_last_finished_stage_and_a_bad_record_is_named(trained_run, tmp_path):
    from huggingface_hub import ModelCard

    from libra_train.errors import CheckpointError

    stages = json.loads((trained_run / "manifest.json").read_text())["stages"]
    first, second = stages[0], stages[1]
    run = _run_copy(trained_run, tmp_path, [first, {**second, "status": "running"}])
    card = ModelCard.load(export(run, tmp_path / "out") / "README.md")
    results = {(r.dataset_name, r.metric_name): r.metric_value for r in card.data.eval_results}
    assert results[("heldout (synthetic)", "auprc")] == round(first["eval"]["heldout"]["auprc"], 4)
    (run / "manifest.json").write_text(json.dumps({"stages": [{**first, "status": "running"}]}))
    with pytest.raises(CheckpointError, match="has no finished stage to export"):
        export(run, tmp_path / "none")
    (run / "manifest.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=f"{run / 'manifest.json'} is corrupt"):
        export(run, tmp_path / "corrupt")
    assert not (tmp_path / "none").exists() and not (tmp_path / "corrupt").exists()


def test_a_format_that_writes_its_verdict_last_exports_without_a_guard_template(trained_run, tmp_path):
    from transformers import AutoTokenizer

    from libra_train.data.formats import FormatConfig

    out = export(trained_run, tmp_path / "front", named_format=FormatConfig(critic="front"))
    assert "no fixed input ends at the label" in (out / "README.md").read_text()
    template = AutoTokenizer.from_pretrained(str(out)).chat_template
    assert not isinstance(template, dict) or "guard" not in template
    assert json.loads((out / "guard_format.json").read_text())["format"]["critic"] == "front"


@pytest.mark.parametrize("task", ["response", "prompt", "both"])
def test_the_guard_template_renders_what_the_classifier_reads_and_refuses_what_it_never_learnt(
    trained_run, task
):
    from jinja2.exceptions import TemplateError
    from transformers import AutoTokenizer

    from libra_train.data.formats import FormatConfig
    from libra_train.export.classifier import UNTRAINED, classifier_input, classifier_template

    tokenizer = AutoTokenizer.from_pretrained(str(trained_run / "stage2_sft" / "checkpoint"))
    fmt = FormatConfig(task=task)
    template = classifier_template(tokenizer, fmt)
    question, response = (
        "怎么撬锁？",
        '他说："先准备铁丝"\n再试试。',
    )  # quotes, a line break: escaped literals
    pair = [{"role": "user", "content": question}, {"role": "assistant", "content": response}]
    alone = pair[:1]
    render = lambda messages: tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False)  # noqa: E731
    for messages, record, refused in (
        (pair, {"id": "a", "question": question, "response": response}, task == "prompt"),
        (alone, {"id": "b", "question": question}, task == "response"),
    ):
        if refused:
            with pytest.raises(TemplateError, match=re.escape(UNTRAINED[task][:40])):
                render(messages)
        else:
            assert render(messages) == classifier_input(record, tokenizer, fmt)


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


@pytest.mark.parametrize(
    "fmt_keys, message",
    [
        ({"critic": "front"}, "writes its verdict after generated text: label mode has no fixed position"),
        (
            {"prompt": "shieldlm"},
            r"has 3 verdicts \(不安全, 安全, 有争议\); a two-row classifier holds 安全 and 不安全 only",
        ),
    ],
)
def test_a_format_without_a_two_way_label_at_a_fixed_place_cannot_be_a_classifier(
    trained_run, fmt_keys, message
):
    from transformers import AutoTokenizer

    from libra_train.data.formats import FormatConfig
    from libra_train.export.classifier import check_classifiable

    tokenizer = AutoTokenizer.from_pretrained(str(trained_run / "stage2_sft" / "checkpoint"))
    with pytest.raises(ConfigError, match=message) as err:
        check_classifiable(FormatConfig(**fmt_keys), tokenizer)
    assert err.value.key == "classifier"


def test_a_source_is_a_run_a_checkpoint_an_adapter_or_an_ensemble_and_anything_else_is_named(tmp_path):
    """A checkpoint is claimed by the run two or three folders above it (RUN/STAGE/checkpoint or
    RUN/member/STAGE/checkpoint), not by one further up that merely holds it."""
    from libra_train.errors import CheckpointError
    from libra_train.export.release import resolve_source

    with pytest.raises(CheckpointError, match=f"checkpoint {tmp_path / 'gone'} does not exist"):
        resolve_source(str(tmp_path / "gone"))
    (tmp_path / "empty").mkdir()
    neither = (
        f"{tmp_path / 'empty'} is neither a run directory (manifest.json) nor a checkpoint (config.json, "
        "adapter_config.json or ensemble.json)"
    )
    with pytest.raises(CheckpointError, match=re.escape(neither)):
        resolve_source(str(tmp_path / "empty"))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    assert resolve_source(str(adapter)).run_dir is None
    run = tmp_path / "run"
    stage = {"name": "s", "status": "done", "checkpoint": "member0/s/checkpoint"}
    (run / "member0" / "s" / "checkpoint").mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"stages": [stage]}))
    for checkpoint in (run / "member0" / "s" / "checkpoint", run / "a" / "b" / "c" / "checkpoint"):
        checkpoint.mkdir(parents=True, exist_ok=True)
        (checkpoint / "config.json").write_text("{}")
    member = resolve_source(str(run / "member0" / "s" / "checkpoint"))
    assert member.run_dir == run and member.stage == stage
    assert resolve_source(str(run / "a" / "b" / "c" / "checkpoint")).run_dir is None


def test_the_format_comes_from_the_checkpoint_then_an_ensembles_first_member_then_the_run(tmp_path):
    from omegaconf import OmegaConf

    from libra_train.data.formats import FormatConfig
    from libra_train.data.recorded_format import save_format
    from libra_train.ensemble import write_ensemble
    from libra_train.export.release import Source, source_format

    run, checkpoint = tmp_path / "run", tmp_path / "run" / "s" / "checkpoint"
    checkpoint.mkdir(parents=True)
    OmegaConf.save({"format": {"critic": "front", "task": "both"}}, run / "config.yaml")
    at = Source(checkpoint, run, {})
    assert (source_format(at, None).critic, source_format(at, None).task) == ("front", "both")
    save_format(checkpoint, FormatConfig(task="prompt"))  # the record beside the weights comes first
    assert (source_format(at, None).critic, source_format(at, None).task) == ("rear", "prompt")
    assert source_format(at, None, {"critic": "front"}).critic == "front"  # the command line's keys on top
    ensemble = write_ensemble(tmp_path / "ensemble", [checkpoint])  # one member: its record
    assert source_format(Source(ensemble, None, {}), None).task == "prompt"
    save_format(ensemble, FormatConfig(task="both"))  # the ensemble's own record before its member's
    assert source_format(Source(ensemble, None, {}), None).task == "both"


def test_an_ensemble_release_keeps_its_members_as_guards_under_members(trained_run, tmp_path):
    from libra_train.ensemble import write_ensemble
    from libra_train.eval.decision import saved_decision

    source = trained_run / "stage2_sft" / "checkpoint"
    ensemble = write_ensemble(tmp_path / "ensemble", [source])
    out = export(ensemble, tmp_path / "release")
    member = out / "members" / "member0"
    assert json.loads((member / "config.json").read_text())["architectures"] == ["Qwen2ForCausalLM"]
    assert json.loads((out / "ensemble.json").read_text())["members"] == ["members/member0"]
    assert saved_decision(out).source == f"exported from {ensemble.resolve()}"
    assert saved_decision(member).source == f"exported from {source.resolve()}"


def test_a_release_is_written_in_the_dtype_asked_for(trained_run, tmp_path):
    from safetensors.torch import load_file

    checkpoint = trained_run / "stage2_sft" / "checkpoint"
    stored = {t.dtype for t in load_file(checkpoint / "model.safetensors").values()}
    out = export(checkpoint, tmp_path / "bf16", dtype="bf16")
    assert stored == {torch.float32}
    assert {t.dtype for t in load_file(out / "model.safetensors").values()} == {torch.bfloat16}


def test_a_lora_adapter_is_exported_merged_into_its_base(tiny_backbone, tmp_path):
    """The release of an adapter is one model: the base's weights with the adapter's product added,
    which scores as the adapter over its base does, and holds no adapter file."""
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from libra_train.data.formats import FormatConfig
    from libra_train.data.recorded_format import save_format

    base = AutoModelForCausalLM.from_pretrained(tiny_backbone, dtype=torch.float32)
    adapted = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    torch.manual_seed(0)
    for name, weight in adapted.named_parameters():
        if "lora_B" in name:  # a new adapter's B is zero: give it a product that moves the weights
            weight.data.normal_(0, 0.5)
    ids = torch.tensor([[3, 7, 11, 5]])
    with torch.no_grad():
        expected = adapted(input_ids=ids).logits
    adapter = tmp_path / "adapter"
    adapted.save_pretrained(adapter)
    AutoTokenizer.from_pretrained(tiny_backbone).save_pretrained(adapter)
    save_format(adapter, FormatConfig())
    out = export(adapter, tmp_path / "release")
    assert not (out / "adapter_config.json").exists() and not (out / "adapter_model.safetensors").exists()
    merged, plain = load_file(out / "model.safetensors"), load_file(tiny_backbone / "model.safetensors")
    moved = {k for k in plain if not torch.equal(plain[k], merged[k])}
    assert moved and all("q_proj.weight" in k for k in moved)
    with torch.no_grad():
        logits = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)(input_ids=ids).logits
    assert torch.allclose(logits, expected, atol=1e-4)


def test_an_export_fills_an_empty_or_nested_new_folder_through_a_hidden_staging_folder(
    trained_run, tmp_path, monkeypatch, caplog
):
    """A folder that exists but is empty is used, missing parents are made, and the release is written
    beside it in a hidden folder that is renamed into place, or removed when writing fails."""
    import logging

    from libra_train.export import release

    checkpoint = trained_run / "stage2_sft" / "checkpoint"
    (tmp_path / "empty").mkdir()
    with caplog.at_level(logging.INFO, logger="libra_train.export.release"):
        assert export(checkpoint, tmp_path / "empty") == tmp_path / "empty"
    assert f"exported {checkpoint} to {tmp_path / 'empty'}" in caplog.text
    assert (export(checkpoint, tmp_path / "a" / "b" / "rel") / "model.safetensors").is_file()
    staged = []

    def fail(source, fmt, decision, folder, cfg):
        staged.append(folder)
        (folder / "partial.bin").write_bytes(b"x")
        raise OSError("disk full")

    monkeypatch.setattr(release, "_write", fail)
    with pytest.raises(OSError, match="disk full"):
        export(checkpoint, tmp_path / "a" / "failed")
    assert staged[0].parent == tmp_path / "a" and staged[0].name.startswith(".failed.")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b"]  # neither the release nor staging


def test_the_threshold_and_format_keys_given_to_the_export_are_the_releases(trained_run, tmp_path):
    from libra_train.eval.decision import saved_decision

    checkpoint = trained_run / "stage2_sft" / "checkpoint"
    out = export(checkpoint, tmp_path / "given", threshold=0.6, format_keys={"task": "both"})
    assert saved_decision(out).threshold == 0.6 and "**0.6**" in (out / "README.md").read_text()
    assert json.loads((out / "guard_format.json").read_text())["format"]["task"] == "both"
    assert json.loads((checkpoint / "guard_format.json").read_text())["format"]["task"] == "response"


def test_a_checkpoint_without_a_format_or_a_run_and_a_run_without_stages_are_named(trained_run, tmp_path):
    from libra_train.errors import CheckpointError
    from libra_train.export.release import resolve_source

    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text("{}")
    with pytest.raises(
        ConfigError, match=f"{bare} records no format and no run is found: give format="
    ) as err:
        export(bare, tmp_path / "out")
    assert err.value.key == "format"
    run = tmp_path / "run"
    (run / "s" / "checkpoint").mkdir(parents=True)
    (run / "s" / "checkpoint" / "config.json").write_text("{}")
    (run / "manifest.json").write_text("{}")  # a run that has not recorded a stage yet
    with pytest.raises(CheckpointError, match="has no finished stage to export"):
        export(run, tmp_path / "none")
    assert resolve_source(str(run / "s" / "checkpoint")).stage == {}


def test_a_classifier_release_names_its_architecture_unties_its_head_and_keeps_the_dtype(
    trained_run, tmp_path
):
    """What engines read from config.json (vLLM and the pipeline pick the class by `architectures`), a
    head of its own rather than the tied embeddings, and the dtype asked for."""
    from safetensors.torch import load_file

    out = export(trained_run / "stage2_sft" / "checkpoint", tmp_path / "bf16", classifier=True, dtype="bf16")
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["Qwen2ForSequenceClassification"] and len(config["id2label"]) == 2
    assert config["tie_word_embeddings"] is False
    assert {t.dtype for t in load_file(out / "model.safetensors").values()} == {torch.bfloat16}


def test_a_tokenizer_whose_labels_never_part_and_a_template_that_misses_are_refused(trained_run, monkeypatch):
    from transformers import AutoTokenizer

    from libra_train.data.formats import FormatConfig
    from libra_train.export import classifier

    tokenizer = AutoTokenizer.from_pretrained(str(trained_run / "stage2_sft" / "checkpoint"))
    real = classifier.classifier_input

    def off_by_one(record, *args, **kwargs):  # the probe's text differs from what the template renders
        return real(record, *args, **kwargs) + ("x" if record["id"] == "probe" else "")

    monkeypatch.setattr(classifier, "classifier_input", off_by_one)
    with pytest.raises(
        ConfigError, match="format.prompt=guard: no chat template reproduces its input"
    ) as err:
        classifier.classifier_template(tokenizer, FormatConfig())
    assert err.value.key == "classifier"

    def never_part(*args):
        raise ValueError("安全 and 不安全 never part in this tokenizer")

    monkeypatch.setattr(classifier, "record_label_query", never_part)
    with pytest.raises(ConfigError, match="never part in this tokenizer") as err:
        classifier.check_classifiable(FormatConfig(), tokenizer)
    assert err.value.key == "classifier"
