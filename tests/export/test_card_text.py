"""The model card's text, word for word, against cards kept in tests/export/golden/: its headings,
table headers and fixed sentences are what a reader of the Hub page sees, so a change to any of them
should be a deliberate one. After a deliberate change, rewrite the files and read the diff:

    LIBRA_UPDATE_GOLDEN=1 pytest tests/export/test_card_text.py

The front matter (huggingface_hub's YAML, whose layout is the library's) is checked by its values in
test_release.py, not here."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from libra_train.data.formats import FormatConfig
from libra_train.eval.decision import Decision
from libra_train.eval.metrics import SYNTHETIC
from libra_train.export.card import write_card
from libra_train.export.release import Source

GOLDEN = Path(__file__).parent / "golden"
POINTS = {
    "best_accuracy": {"threshold": 0.61, "recall": 0.9, "fpr": 0.05},
    "best_f1": {"threshold": 0.42, "recall": 0.95, "fpr": 0.1},
    "fpr_at_recall": {"0.95": {"threshold": 0.42, "recall": 0.95, "fpr": 0.1}},
}
HELDOUT = {"n": 294, "auprc": 0.9, "per_source": {SYNTHETIC: {}}}  # synthetic only; no average: dashes
STAGES = [
    {"name": "stage1_pretrain", "status": "done", "train": {"steps": 120}, "data": {"/d/s1.jsonl": "ab12"}},
    {"name": "stage1b", "status": "failed"},
    {
        "name": "stage2_sft",
        "status": "done",
        "train": {"steps": 40},
        "data": {"/d/jade_train.jsonl": "cd34"},
        "eval": {
            "jade_dev": {
                "n": 102,
                "average": {"accuracy": 0.98, "f1_unsafe": 0.981, "f1_safe": 0.979},
                "auprc": 0.99,
                "threshold_source": "calibrated on jade_dev: optimistic",
            },
            "jade_test": {
                "n": 96,
                "average": {"accuracy": 0.9583, "f1_unsafe": 0.96, "f1_safe": 0.9565},
                "auprc": 0.97,
                "operating_points": POINTS,
            },
            "heldout": HELDOUT,
        },
    },
]


def _card(tmp_path, *, stages, fmt, decision, label_ids, **options) -> str:
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"stages": stages}))
    out = tmp_path / "release"
    out.mkdir()
    cfg = SimpleNamespace(
        output_dir=str(out), model_name=None, license="other", classifier=False, hub_repo=None
    )
    for key, value in options.items():
        setattr(cfg, key, value)
    final = [s for s in stages if s.get("status") == "done"][-1] if stages else {}
    write_card(out, Source(run / "ckpt", run if stages else None, final), fmt, decision, cfg, label_ids)
    text = (out / "README.md").read_text()
    return text.split("\n---\n", 1)[1].lstrip("\n")  # the card's text, after its front matter


CARDS = {
    "generative_tempered": dict(
        stages=STAGES, fmt=FormatConfig(), decision=Decision(0.37, 2.0), label_ids=(101, 202),
        hub_repo="team/guard",
    ),
    "classifier_questions": dict(
        stages=STAGES, fmt=FormatConfig(task="prompt"), decision=Decision(0.5), label_ids=(101, 202),
        classifier=True, model_name="libra-guard-q",
    ),
    "synthetic_only": dict(
        stages=[{**STAGES[2], "eval": {"heldout": {**HELDOUT, "operating_points": POINTS}}}],
        fmt=FormatConfig(), decision=Decision(0.5), label_ids=(101, 202),
    ),
    "verdict_last_no_run": dict(
        stages=[], fmt=FormatConfig(critic="front", task="both"), decision=Decision(0.5), label_ids=None,
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CARDS))
def test_the_card_reads_word_for_word_as_kept(tmp_path, name):
    text = _card(tmp_path, **CARDS[name])
    golden = GOLDEN / f"{name}.md"
    if os.environ.get("LIBRA_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text(), f"the card differs from {golden}: rewrite it if the change is meant"
