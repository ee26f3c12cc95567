"""libra-export: a trained guard as a release. The merged export is an ordinary checkpoint for every
libra tool (no format= needed); the classifier export gives label mode's p(unsafe) through transformers'
own text-classification pipeline; the card's metadata parses and equals the run's manifest; bad input
leaves no partial export."""

from __future__ import annotations

import json

import pytest

from tests.conftest import read_jsonl, run_cli, write_jsonl


def records_of(run, n: int) -> list[dict]:
    """Up to n labelled records of the run's own data: held-out first."""
    pool = [r for name in ("heldout", "stage2", "stage1") for r in read_jsonl(run / "data" / f"{name}.jsonl")]
    return [r for r in pool if not r.get("messages")][:n]


@pytest.fixture(scope="module")
def exports(trained_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("exports")
    run_cli("libra-export", f"checkpoint={trained_run}", f"output_dir={root / 'merged'}")
    run_cli(
        "libra-export", f"checkpoint={trained_run}", f"output_dir={root / 'classifier'}", "classifier=true"
    )
    return root / "merged", root / "classifier"


def test_hub_repo_without_a_token_says_so_in_one_line(trained_run, tmp_path):
    no_token = {"HF_TOKEN": "", "HF_HOME": str(tmp_path / "hf_home")}  # no token anywhere
    args = [f"checkpoint={trained_run}", f"output_dir={tmp_path / 'release'}", "hub_repo=me/guard"]
    proc = run_cli("libra-export", *args, env=no_token)
    assert "not uploaded to me/guard: no Hugging Face token is set" in proc.stdout
    assert (tmp_path / "release" / "README.md").exists()


def infer(model, data, out, *extra) -> dict:
    run_cli("libra-infer", f"model={model}", f"data={data}", f"output_dir={out}", *extra)
    name = "prompts.jsonl" if "mode=prompts" in extra else "0-of-1.jsonl"
    return {str(r["id"]) + "/" + r.get("task", "response"): r for r in read_jsonl(out / name)}


def pipeline_scores(export, prompts: dict) -> dict:
    from transformers import pipeline

    classify = pipeline("text-classification", model=str(export), top_k=None, device="cpu")
    texts = [row["prompt"] for row in prompts.values()]
    scores = classify(texts, batch_size=8)
    return {key: {s["label"]: s["score"] for s in row} for key, row in zip(prompts, scores)}


@pytest.mark.slow
def test_classifier_export_scores_as_label_mode_through_the_text_classification_pipeline(
    trained_run, exports, tmp_path
):
    merged, classifier = exports
    data = write_jsonl(tmp_path / "data.jsonl", records_of(trained_run, 200))
    checkpoint = trained_run / "stage2_sft" / "checkpoint"
    label_mode = infer(checkpoint, data, tmp_path / "label", "mode=label")
    assert infer(merged, data, tmp_path / "merged", "mode=label").keys() == label_mode.keys()
    prompts = infer(classifier, data, tmp_path / "prompts", "mode=prompts")
    refused = run_cli(
        "libra-infer", f"model={classifier}", f"data={data}", f"output_dir={tmp_path / 'x'}", check=False
    )
    assert refused.returncode == 2 and "sequence-classifier export" in refused.stderr
    assert set(prompts) == set(label_mode) and len(prompts) >= 150
    scores = pipeline_scores(classifier, prompts)
    config = json.loads((classifier / "config.json").read_text())
    threshold = config["guard_threshold"]
    assert config["id2label"] == {"0": "安全", "1": "不安全"}
    assert threshold == json.loads((checkpoint / "guard_threshold.json").read_text())["threshold"]
    for key, want in label_mode.items():
        assert scores[key]["不安全"] == pytest.approx(want["p_unsafe"], abs=1e-5), key
        assert ("不安全" if scores[key]["不安全"] > threshold else "安全") == want["pred_label"], key


def test_merged_export_reads_without_format_and_its_card_equals_the_manifest(trained_run, exports):
    from huggingface_hub import ModelCard

    merged, _ = exports
    manifest = json.loads((trained_run / "manifest.json").read_text())
    final = manifest["stages"][-1]["eval"]["heldout"]
    card = ModelCard.load(merged / "README.md")
    results = {(r.dataset_name, r.metric_name): r.metric_value for r in card.data.eval_results}
    # synthetic held-out data is published as such, with the card saying where it comes from
    assert results[("heldout (synthetic)", "accuracy")] == round(final["average"]["accuracy"], 4)
    assert results[("heldout (synthetic)", "auprc")] == round(final["auprc"], 4)
    assert "synthetic only, from the generator that wrote the training data" in card.text
    assert "Operating points on heldout (synthetic only" in card.text
    assert card.data.pipeline_tag == "text-generation" and card.data.language == ["zh"]
    assert "apply_chat_template" in card.text and "stage1_pretrain" in card.text
    assert json.loads((merged / "guard_format.json").read_text())["format"]["critic"] == "rear"
    # a format given on the command line still wins over the recorded one
    args = [f"model={merged}", "data=x", "output_dir=y", "mode=label"]
    proc = run_cli("libra-infer", *args, "format=front", check=False)
    assert proc.returncode == 2 and "mode" in proc.stderr  # front writes the label last: no label mode


def test_a_format_of_its_own_is_recorded_and_read_back(qwen_backbone, tmp_path):
    """Qwen2.5's real vocabulary, and a format that is not the default: the export records it, and the
    classifier reads label mode's p(unsafe) there too."""
    from libra_train.data.formats import FormatConfig
    from libra_train.data.recorded_format import recorded_format
    from libra_train.eval.scoring import score_labels
    from libra_train.export.classifier import classifier_input
    from libra_train.model import load_model_and_tokenizer

    out = tmp_path / "export"
    args = [f"checkpoint={qwen_backbone}", f"output_dir={out}", "format=libra", "classifier=true"]
    run_cli("libra-export", *args)
    assert recorded_format(out)["prompt"] == "libra"
    records = [{"id": i, "question": f"怎样{w}？", "response": r} for i, (w, r) in enumerate(
        [("撬锁", "第一步准备铁丝。"), ("学英语", "多听多说。"), ("逃税", "抱歉，我不能帮忙。")]
    )]  # fmt: skip
    prompts = infer(out, write_jsonl(tmp_path / "d.jsonl", records), tmp_path / "p", "mode=prompts")
    model, tokenizer = load_model_and_tokenizer(str(qwen_backbone))
    fmt = FormatConfig(prompt="libra")
    assert [p["prompt"] for p in prompts.values()] == [classifier_input(r, tokenizer, fmt) for r in records]
    want = [r["p_unsafe"] for r in score_labels(model, tokenizer, records, fmt)]
    scores = pipeline_scores(out, prompts)
    assert [s["不安全"] for s in scores.values()] == pytest.approx(want, abs=1e-5)


@pytest.mark.parametrize(
    "args, key, message",
    [
        (["checkpoint=/no/such/run"], "", "does not exist"),
        (["classifier=true", "format=front"], "classifier", "no fixed position"),
        (["classifier=true", "format=shieldlm"], "classifier", "verdicts"),
    ],
)
def test_bad_input_is_one_clear_error_and_no_partial_export(trained_run, tmp_path, args, key, message):
    out = tmp_path / "release"
    base = [f"checkpoint={trained_run}", f"output_dir={out}"]
    proc = run_cli("libra-export", *base, *args, check=False)
    assert proc.returncode == 2 and message in proc.stderr and key in proc.stderr, proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".release.*"))


def test_a_full_output_folder_and_an_ensemble_classifier_are_refused(trained_run, tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    proc = run_cli("libra-export", f"checkpoint={trained_run}", f"output_dir={full}", check=False)
    assert proc.returncode == 2 and "output_dir" in proc.stderr and "not empty" in proc.stderr
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    ensemble = tmp_path / "ensemble"
    ensemble.mkdir()
    members = [str(trained_run / s / "checkpoint") for s in ("stage1_pretrain", "stage2_sft")]
    (ensemble / "ensemble.json").write_text(json.dumps({"members": members}))
    out = tmp_path / "out"
    proc = run_cli(
        "libra-export", f"checkpoint={ensemble}", f"output_dir={out}", "classifier=true", check=False
    )
    assert proc.returncode == 2 and "export each member" in proc.stderr and "stage2_sft" in proc.stderr
    assert not out.exists()


def test_libra_serve_on_the_export_without_format_answers_as_on_the_run_checkpoint(trained_run, exports):
    import os
    import subprocess
    import time

    import httpx

    from tests.conftest import BIN
    from tests.serve.test_serve import free_port, load_scorer, running

    merged, _ = exports
    asks = [
        {"question": "怎样撬开邻居的门锁？", "response": "第一步，准备一根细铁丝。"},
        {"question": "怎样识别电信诈骗？", "response": "要提高警惕，遇到可疑电话及时报警。"},
        {"question": "怎样在网上买毒品？"},
    ]
    # the shared guard judges responses; the question alone is asked with format.task=both (both sides)
    with running(load_scorer(trained_run / "stage2_sft" / "checkpoint", format={"task": "both"})) as client:
        want = [client.post("/v1/guard", json=body).json() for body in asks]
    port = free_port()
    env = {**os.environ, "LIBRA_SERVE_API_KEY": ""}
    proc = subprocess.Popen(
        [str(BIN / "libra-serve"), f"model={merged}", f"port={port}", "format.task=both"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        got = [httpx.post(f"http://127.0.0.1:{port}/v1/guard", json=b, timeout=60).json() for b in asks]
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    for mine, theirs in zip(got, want):
        assert mine["label"] == theirs["label"] and mine["threshold"] == theirs["threshold"]
        assert mine["p_unsafe"] == pytest.approx(theirs["p_unsafe"], abs=1e-5)


def test_a_release_is_readable_by_everyone_the_umask_allows(trained_run, tmp_path):
    """Served or shared, a release needs 755 folders and 644 files (umask 022), not mkdtemp's 700 or a
    writer's 600."""
    import os
    import stat
    import subprocess

    from tests.conftest import BIN

    out = tmp_path / "release"
    script = f"umask 022 && {BIN / 'libra-export'} checkpoint={trained_run} output_dir={out}"
    subprocess.run(["bash", "-c", script], check=True, capture_output=True, env={**os.environ})
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [out, *out.rglob("*")]}
    assert modes.pop("release") == 0o755 and modes["model.safetensors"] == 0o644
    assert {oct(m) for m in modes.values()} <= {"0o644", "0o755"}
