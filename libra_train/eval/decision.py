"""The one place a label is decided from p(unsafe), for every command: the pipeline's evaluation,
libra-infer, libra-serve, libra-mine and selection, libra-eval and libra-compare.

Scoring (eval/scoring.py) gives probabilities only. A `Decision` turns them into labels: p(unsafe) is
tempered by the guard's temperature (1: unchanged; eval/calibration.py), then a sample is unsafe when
p(unsafe) > threshold. Each decided row records the threshold (and a temperature other than 1) that
decided it, so a predictions file says how its labels were made, and libra-eval reports that threshold.
A checkpoint keeps the decision its run evaluated it with beside its weights (guard_threshold.json).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from libra_train.data.formats import LABEL_KEY
from libra_train.data.schema import SAFE, UNSAFE
from libra_train.eval.calibration import tempered

THRESHOLD_FILE = "guard_threshold.json"  # beside a trained checkpoint: the decision it was evaluated with


@dataclass(frozen=True)
class Decision:
    threshold: float = 0.5
    temperature: float = 1.0
    source: str = "default"  # where the threshold came from: default, eval.threshold, calibrated on …

    def label(self, p_unsafe: float) -> str:
        """unsafe when (tempered) p(unsafe) > threshold."""
        return UNSAFE if p_unsafe > self.threshold else SAFE

    def apply(self, scored: dict) -> dict:
        """A scored row decided: p_unsafe (and p_question, the question alone's) tempered, pred_label, the
        label-only critic it implies, and the threshold that decided it. A row with no p(unsafe) (generate
        mode) keeps the label parsed from its text and records no threshold."""
        if scored.get("p_unsafe") is None:
            return {**scored, "threshold": None}
        p = tempered(scored["p_unsafe"], self.temperature)
        row = {**scored, "p_unsafe": p, "pred_label": self.label(p), "threshold": self.threshold}
        row["critic"] = json.dumps({LABEL_KEY: row["pred_label"]}, ensure_ascii=False)
        if scored.get("p_question") is not None:
            row["p_question"] = tempered(scored["p_question"], self.temperature)
        if self.temperature != 1.0:
            row["temperature"] = self.temperature
        return row

    def __str__(self) -> str:
        """What a command says it decides by: 'unsafe when p_unsafe > 0.37 (p tempered by 1.8)'."""
        tempered_by = f" (p tempered by {self.temperature:.3g})" if self.temperature != 1.0 else ""
        return f"unsafe when p_unsafe > {self.threshold:g}{tempered_by}"

    @property
    def record(self) -> dict:
        """What guard_threshold.json and metrics.json hold of it."""
        return {"threshold": self.threshold, "temperature": self.temperature, "source": self.source}


def saved_decision(checkpoint) -> Decision | None:
    """The decision saved beside a checkpoint by the run that trained it (or its export), if any."""
    path = Path(str(checkpoint)) / THRESHOLD_FILE
    if not path.exists():
        return None
    saved = json.loads(path.read_text())
    return Decision(
        float(saved["threshold"]), float(saved.get("temperature", 1.0)), saved.get("source") or ""
    )


def save_decision(checkpoint, decision: Decision) -> None:
    """Keep a checkpoint's decision beside it, for every command that decides with it to find."""
    from libra_train.data.io import atomic_write_text

    text = json.dumps(decision.record, ensure_ascii=False) + "\n"
    atomic_write_text(Path(str(checkpoint)) / THRESHOLD_FILE, text)


def command_decision(given: float | None, checkpoint) -> Decision:
    """The decision a command makes: the checkpoint's saved one (threshold and temperature), with
    `threshold=` as given on top (checked by the command's config); else 0.5 and no temperature. A saved
    0.0, flag everything, is kept."""
    saved = saved_decision(checkpoint) if checkpoint is not None else None
    base = saved or Decision()
    if given is not None:
        return Decision(float(given), base.temperature, "threshold=")
    if saved is None:
        return base
    return Decision(saved.threshold, saved.temperature, f"saved with {checkpoint}")
