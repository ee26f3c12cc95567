"""The release's model card: README.md in the Hugging Face Hub's convention (YAML metadata, with the
evaluation results as model-index, then the text), built with huggingface_hub's ModelCard."""

from __future__ import annotations

import json
from pathlib import Path

from libra_train.data.formats import FormatConfig, render_target
from libra_train.data.schema import SAFE, UNSAFE
from libra_train.eval.metrics import synthetic_only
from libra_train.eval.operating_points import points_table
from libra_train.model import looks_local

TEMPLATE_INPUT = {  # by format.task: what the `guard` template takes
    "response": "a question and its response, [user, assistant]",
    "prompt": "one question, [user]",
    "both": "one question, [user], or a question and its response, [user, assistant]",
}
METRICS = (("accuracy", "accuracy"), ("f1_unsafe", "f1"), ("f1_safe", "f1"), ("auprc", "auprc"))


def eval_rows(stage: dict) -> list[dict]:
    """One row per eval set of the exported stage, as the run's manifest holds it."""
    rows = []
    for name, result in (stage.get("eval") or {}).items():
        average = result.get("average", {})
        rows.append(
            {
                "set": name,
                "n": result.get("n"),
                "accuracy": average.get("accuracy"),
                "f1_unsafe": average.get("f1_unsafe"),
                "f1_safe": average.get("f1_safe"),
                "auprc": result.get("auprc"),
                "operating_points": result.get("operating_points") or {},
                # the threshold was chosen on this set's own samples: its figures are optimistic
                "calibrated_here": str(result.get("threshold_source") or "").endswith("optimistic"),
                "synthetic": synthetic_only(result),
            }
        )
    return rows


def published_rows(rows: list[dict]) -> list[dict]:
    """The rows model-index publishes: not a set the threshold was calibrated on (optimistic there)."""
    return [r for r in rows if not r["calibrated_here"]]


def _note(row: dict) -> str:
    notes = ["calibrated here: optimistic"] if row["calibrated_here"] else []
    notes += ["synthetic only, from the generator that wrote the training data"] if row["synthetic"] else []
    return "; ".join(notes)


def card_data(source, cfg, rows: list[dict]):
    from huggingface_hub import EvalResult, ModelCardData

    base = _run_config(source).get("model", {}).get("name_or_path")
    results = [
        EvalResult(
            task_type="text-classification",
            task_name="safety judgement",
            dataset_type="synthetic" if row["synthetic"] else row["set"],
            dataset_name=f"{row['set']} (synthetic)" if row["synthetic"] else row["set"],
            metric_type=metric_type,
            metric_name=key,
            metric_value=round(float(row[key]), 4),
        )
        for row in published_rows(rows)
        for key, metric_type in METRICS
        if row.get(key) is not None
    ]
    return ModelCardData(
        model_name=cfg.model_name or Path(cfg.output_dir).name,
        base_model=base if base and not looks_local(str(base)) else None,
        language=["zh"],
        license=cfg.license,
        pipeline_tag="text-classification" if cfg.classifier else "text-generation",
        tags=["safety", "guard", "content-moderation", "libra-train"],
        eval_results=results or None,
    )


def write_card(folder: Path, source, fmt: FormatConfig, decision, cfg, label_ids=None) -> None:
    from huggingface_hub import ModelCard

    rows = eval_rows(source.stage)
    text = "\n\n".join(
        [
            f"# {cfg.model_name or Path(cfg.output_dir).name}",
            _judges(fmt, cfg.classifier),
            _threshold(decision, rows),
            _training(source),
            _usage(cfg, decision, label_ids, fmt.task),
        ]
    )
    card = ModelCard(f"---\n{card_data(source, cfg, rows).to_yaml()}\n---\n\n{text}\n")
    card.save(folder / "README.md")


def _run_config(source) -> dict:
    if not source.run_dir or not (source.run_dir / "config.yaml").is_file():
        return {}
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(source.run_dir / "config.yaml"))


def _judges(fmt: FormatConfig, classifier: bool) -> str:
    example = render_target({"id": "x", "question": "", "label": UNSAFE, "analyze": "……"}, fmt)
    layout = (
        f"A sequence classifier: labels `0: {SAFE}` (safe) and `1: {UNSAFE}` (unsafe); the softmax's "
        "second column is p(unsafe)."
        if classifier
        else f"It writes its verdict in this layout (format `{fmt.prompt}`, critic `{fmt.critic}`):\n\n"
        f"```\n{example}\n```"
    )
    task = {"response": "a model's response to a question", "prompt": "a question alone"}.get(
        fmt.task, "a question alone, or a question and a model's response to it,"
    )
    return (
        "## What it judges\n\n"
        f"A Chinese safety guard. It reads {task} and judges it {SAFE} (safe) or {UNSAFE} (unsafe).\n\n"
        + layout
    )


def _threshold(decision, rows: list[dict]) -> str:
    tempered = (
        f" p(unsafe) is tempered first: sigmoid(logit / {decision.temperature:.4g}), the temperature fitted "
        "with the threshold (`temperature` there; the classifier's head holds it already)."
        if decision.temperature != 1.0
        else ""
    )
    lines = [
        "## Threshold and evaluation",
        "",
        f"Unsafe when p(unsafe) > **{decision.threshold:.6g}** (saved in `guard_threshold.json`"
        " and, for the classifier, in `config.json` as `guard_threshold`)." + tempered,
    ]
    if rows:
        lines += [
            "",
            "| eval set | n | accuracy | F1-Unsafe | F1-Safe | AUPRC | note |",
            "|---|---|---|---|---|---|---|",
        ]
        keys = ("accuracy", "f1_unsafe", "f1_safe", "auprc")
        lines += [
            f"| {r['set']} | {r['n']} | " + " | ".join(_num(r[k]) for k in keys) + f" | {_note(r)} |"
            for r in rows
        ]
        # the operating points of a set the threshold was not chosen on, a real one where there is one
        shown = sorted(published_rows(rows) or rows, key=lambda r: r["synthetic"])[0]
        if shown["operating_points"]:
            what = f" ({_note(shown)})" if _note(shown) else ""
            lines += [
                "",
                f"Operating points on {shown['set']}{what}:",
                "",
                *points_table(shown["operating_points"]),
            ]
    return "\n".join(lines)


def _num(value) -> str:
    return "–" if value is None else f"{float(value):.4f}"


def _training(source) -> str:
    manifest = source.run_dir / "manifest.json" if source.run_dir else None
    stages = json.loads(manifest.read_text()).get("stages", []) if manifest else []
    if not stages:
        return "## Training\n\nNo run record was found beside the checkpoint."
    lines = [
        "## Training",
        "",
        "The curriculum, stage by stage, with the data each stage read (SHA-256):",
        "",
    ]
    for s in stages:
        if s.get("status") != "done":
            continue
        lines.append(f"- **{s['name']}**" + (f" ({s['train']['steps']} steps)" if s.get("train") else ""))
        for path, digest in (s.get("data") or {}).items():
            lines.append(f"  - `{Path(path).name}`: `{digest}`")
    return "\n".join(lines)


def _usage(cfg, decision, label_ids, task: str = "response") -> str:
    if label_ids is None:
        return (
            "## Usage\n\nThis format writes its verdict after generated text, so no fixed input "
            "ends at the label: `libra-infer model=PATH data=FILE output_dir=DIR mode=prompts` writes "
            "each record's exact prompt, and the guard's answer is generated from it."
        )
    messages = '[{"role": "user", "content": question}, {"role": "assistant", "content": response}]'
    if task == "prompt":  # the template refuses a response to a guard trained on questions alone
        messages = '[{"role": "user", "content": question}]'
    if cfg.classifier:
        code = f'''from transformers import AutoTokenizer, pipeline

PATH = "{cfg.hub_repo or "path/to/this/folder"}"
tokenizer = AutoTokenizer.from_pretrained(PATH)
guard = pipeline("text-classification", model=PATH, tokenizer=tokenizer, top_k=None)
text = tokenizer.apply_chat_template({messages}, chat_template="guard", tokenize=False)
scores = {{s["label"]: s["score"] for s in guard(text)}}
unsafe = scores["{UNSAFE}"] > {decision.threshold:.6g}'''
    else:
        code = f"""import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

PATH = "{cfg.hub_repo or "path/to/this/folder"}"
tokenizer = AutoTokenizer.from_pretrained(PATH)
model = AutoModelForCausalLM.from_pretrained(PATH)
text = tokenizer.apply_chat_template({messages}, chat_template="guard", tokenize=False)
ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
with torch.no_grad():
    logits = model(**ids).logits[0, -1]
safe_id, unsafe_id = {label_ids[0]}, {label_ids[1]}  # the label tokens after the answer's opening
p_unsafe = torch.softmax(logits[[safe_id, unsafe_id]] / {decision.temperature:.6g}, -1)[1].item()
unsafe = p_unsafe > {decision.threshold:.6g}"""
    return (
        "## Usage with transformers alone\n\n"
        "The `guard` chat template builds the guard's input from the plain messages "
        f"({TEMPLATE_INPUT[task]}): the prompt the guard was trained on, then the start of its answer up "
        "to the label. It raises an error for the kind of input the guard was not trained to judge.\n\n"
        f"```python\n{code}\n```"
    )
