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
