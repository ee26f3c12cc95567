"""Fine-tuning a guard in another guard's format: libra-train format=llama_guard3 and format=shieldlm
train targets in that guard's layout; the trained guard's outputs parse by that guard's rules, and
label mode scores it."""

import json

import pytest

from libra_train.model import weights_fingerprint
from tests.conftest import read_jsonl, run_cli

LAYOUT = {"llama_guard3": ("\n\nsafe", "\n\nunsafe"), "shieldlm": ("[答案] 安全", "[答案] 不安全")}


# Past the CI budget (a minute of training and generation each): `pytest -m slow`. ShieldLM's target
# carries the analysis after the label, so its layout takes longer to learn.
@pytest.mark.slow
@pytest.mark.parametrize("group, steps", [("llama_guard3", 150), ("shieldlm", 150)])
def test_a_guard_trained_in_another_guards_format_writes_and_is_scored_in_it(tmp_path, group, steps):
    run_dir = tmp_path / "run"
    run_cli(
        "libra-train",
        f"paths.run_dir={run_dir}",
        "logger=none",
        "data.prepare.num_samples=280",
        "curriculum=pretrain_only",
        "eval.before_training=false",
        f"train.max_steps={steps}",
        "train.batch_size=8",
        f"train.save_steps={steps}",
        "train.learning_rate=3e-3",
        f"format={group}",
        "format.task=response",  # ShieldLM judges responses only; the embedded default trains both tasks
    )
    stage = json.loads((run_dir / "manifest.json").read_text())["stages"][0]
    assert stage["train"]["loss_last"] < stage["train"]["loss_first"] / 3
    from transformers import AutoModelForCausalLM

    trained = AutoModelForCausalLM.from_pretrained(run_dir / stage["checkpoint"])
    backbone = AutoModelForCausalLM.from_pretrained(run_dir / "backbone")
    assert weights_fingerprint(trained.named_parameters()) != weights_fingerprint(backbone.named_parameters())
    # label mode: the evaluator read p(unsafe) for every held-out sample after the guard's own opening
    rows = read_jsonl(run_dir / "stage1_pretrain" / "eval" / "heldout" / "predictions.jsonl")
    assert rows and all(0.0 <= r["p_unsafe"] <= 1.0 for r in rows)
    # generate mode: what the guard writes is its format's layout, and parses
    out = tmp_path / "gen"
    run_cli(
        "libra-infer",
        f"model={run_dir / stage['checkpoint']}",
        f"data={run_dir / 'data' / 'heldout.jsonl'}",
        f"output_dir={out}",
        "mode=generate",
        f"format={group}",
        "max_new_tokens=12",
    )
    generated = read_jsonl(out / "0-of-1.jsonl")
    assert len(generated) == len(rows)
    # a 1M-parameter guard after 150 steps may garble a sample or two; a broken layout garbles them all
    in_layout = [r for r in generated if r["critic"].startswith(LAYOUT[group])]
    assert len(in_layout) >= 0.9 * len(generated), [r["critic"] for r in generated][:8]
    assert all(r["pred_label"] in ("安全", "不安全") for r in in_layout)
