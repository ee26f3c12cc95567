"""Other guards' formats (docs/evaluation.md, "Other guards"): each module renders, byte for byte, the model
input its guard's own release builds, reads that guard's own output, and writes targets in its layout
for fine-tuning. Each names the file (and revision) it reproduces.

A format module gives:
- `render(record, fmt)`: the whole model input, up to where the guard starts writing;
- `opening(record, fmt)`: the text the guard writes before its label, or None when generated text
  comes first (label mode then cannot reach the label);
- `words(record, fmt)`: the label words after the opening → SAFE, UNSAFE or CONTROVERSIAL, in that order;
- `parse(text, record, fmt)`: the guard's own output read by its own rules → Verdict;
- `target(record, fmt)`: the output a guard in this format is trained to write.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

CONTROVERSIAL = "有争议"  # a third verdict (ShieldLM, Qwen3Guard): mapped by eval.controversial_as
PEERS = ("shieldlm", "llama_guard3", "qwen3guard", "wildguard")


@dataclass(frozen=True)
class Verdict:
    """A guard output read: the label (SAFE, UNSAFE, CONTROVERSIAL, or None when it does not parse), the
    categories it names (in the guard's own names), and its analysis, where it writes one."""

    label: str | None
    categories: list[str] = field(default_factory=list)
    analysis: str = ""


def peer(name: str):
    """The format module of another guard (`format.prompt`), or None for ours and Libra's."""
    return importlib.import_module(f"libra_train.data.peers.{name}") if name in PEERS else None


def judges_questions(name: str) -> bool:
    """Whether a format's prompt can hold a question alone (a module says JUDGES_QUESTIONS = False when
    it cannot, as ShieldLM's, which judges responses only)."""
    return getattr(peer(name), "JUDGES_QUESTIONS", True)
